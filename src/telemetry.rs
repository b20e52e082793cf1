//! Logs (tracing, pretty or JSON) and metrics (Prometheus text on `/metrics`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
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

static LOG_PII: AtomicBool = AtomicBool::new(false);

/// `LOG_PII=true`: text from outside is logged as it is (for debugging only).
pub fn allow_pii(on: bool) {
    LOG_PII.store(on, Ordering::Relaxed);
}

pub fn pii_allowed() -> bool {
    LOG_PII.load(Ordering::Relaxed)
}

/// A provider's answer (or a Slack frame) as a log line or error may show it. Bodies echo
/// what they were sent (names, emails, CRM text), so unless `LOG_PII=true` only their length
/// and the machine codes in them (`error`, `code`, `type`, ... when JSON) are shown.
pub fn outside(text: &str) -> Outside<'_> {
    Outside(text)
}

pub struct Outside<'a>(&'a str);

/// The keys whose short values are machine codes, not people's words.
const CODE_KEYS: &[&str] = &[
    "error",
    "error_code",
    "errorCode",
    "code",
    "type",
    "status",
    "category",
    "subCategory",
    "name",
];

fn is_code(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

fn codes(value: &serde_json::Value, depth: u8, out: &mut Vec<String>) {
    if depth > 3 || out.len() >= 6 {
        return;
    }
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match v {
                    serde_json::Value::String(s)
                        if CODE_KEYS.contains(&key.as_str()) && is_code(s) =>
                    {
                        out.push(format!("{key}={s}"));
                    }
                    serde_json::Value::Number(n) if CODE_KEYS.contains(&key.as_str()) => {
                        out.push(format!("{key}={n}"));
                    }
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                        codes(v, depth + 1, out);
                    }
                    _ => {}
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items.iter().take(3) {
                codes(v, depth + 1, out);
            }
        }
        _ => {}
    }
}

impl std::fmt::Display for Outside<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if pii_allowed() {
            return f.write_str(self.0);
        }
        let mut found = Vec::new();
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(self.0) {
            codes(&json, 0, &mut found);
        }
        let n = self.0.chars().count();
        if found.is_empty() {
            write!(f, "[{n} characters withheld; LOG_PII=true shows them]")
        } else {
            write!(f, "[{}; {n} characters withheld]", found.join(", "))
        }
    }
}

/// A parser's error message (serde's quote the values they choke on) with every quoted
/// value withheld unless `LOG_PII=true`; what was expected, and where, stays.
pub fn parse_error(text: &str) -> String {
    if pii_allowed() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
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
