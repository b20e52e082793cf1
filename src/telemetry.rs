//! Logs (tracing, pretty or JSON) and metrics (Prometheus text on `/metrics`).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// How log lines are written: for people, or one JSON object a line for a collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber (once; later calls are ignored, which suits tests).
pub fn init_logs(format: LogFormat, filter: &str) {
    init_logs_to(format, filter, std::io::stdout);
}

/// Same, writing somewhere else (tests capture the logs this way).
pub fn init_logs_to<W>(format: LogFormat, filter: &str, writer: W)
where
    W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    // tungstenite logs whole websocket frames (people's meeting text) at trace: never let
    // it below info, whatever RUST_LOG asks for.
    const PRIVATE: &str = "tungstenite=info,tokio_tungstenite=info";
    let filter = EnvFilter::try_new(format!("{filter},{PRIVATE}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{PRIVATE}")));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().compact().with_writer(writer))
            .try_init(),
    };
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("slack_ack_seconds".to_owned()),
                    &[
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
                        1.0, 3.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets(&[0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Only fails when another recorder is already installed; ours is then unused.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Counts and times one call to an external service.
pub fn record_external(provider: &'static str, operation: &str, status: &str, took: Duration) {
    metrics::counter!("external_requests_total", "provider" => provider,
        "operation" => operation.to_owned(), "status" => status.to_owned())
    .increment(1);
    metrics::histogram!("external_request_seconds", "provider" => provider,
        "operation" => operation.to_owned())
    .record(took.as_secs_f64());
}
