//! The HTTP sidecar (axum): health, readiness and metrics, plus the routes startup mounts
//! (OAuth callbacks, webhooks). Slack traffic never comes here (Socket Mode). Internal error
//! text is never echoed. It sees a narrow state, never the features.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::slack::socket::SocketStatus;
use crate::store::Store;

/// What the sidecar's own routes read.
#[derive(Clone)]
pub struct SidecarState {
    pub store: Store,
    pub socket: SocketStatus,
    pub metrics: PrometheusHandle,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The sidecar's routes, with `mounted` (routes the features bring) beside them.
pub fn router(state: SidecarState, mounted: Router) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(state))
        .merge(mounted)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: query strings may carry OAuth codes and states.
                tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The process is up.
async fn health() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// The database answers and at least one Socket Mode connection is open.
async fn ready(State(app): State<Arc<SidecarState>>) -> Response {
    let mut reasons = Vec::new();
    if let Err(e) = app.store.ping().await {
        tracing::warn!(error = %e, "readiness: database unreachable");
        reasons.push("database unreachable");
    }
    if app.socket.open_connections() == 0 {
        reasons.push("no Slack Socket Mode connection open");
    }
    if reasons.is_empty() {
        (
            StatusCode::OK,
            axum::Json(json!({
                "status": "ready",
                "slack_connections": app.socket.open_connections(),
                "database": app.store.backend(),
            })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unavailable", "reason": reasons.join("; ") })),
        )
            .into_response()
    }
}

async fn metrics(State(app): State<Arc<SidecarState>>) -> Response {
    match app.store.job_counts().await {
        Ok(counts) => {
            for status in ["queued", "running", "done", "dead"] {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == status)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("jobs", "status" => status).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not count jobs"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
