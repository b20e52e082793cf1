//! The HTTP sidecar (axum): health, readiness and metrics, plus the routes startup mounts
//! (OAuth callbacks, webhooks). Slack traffic never comes here (Socket Mode). Internal error
//! text is never echoed. It sees a narrow state, never the features.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::TimeoutLayer;

pub mod guard;
pub mod pages;

pub use guard::Guard;

use crate::slack::socket::SocketStatus;
use crate::store::Store;

/// What the sidecar's own routes read.
#[derive(Clone)]
pub struct SidecarState {
    pub store: Store,
    pub socket: SocketStatus,
    pub metrics: PrometheusHandle,
    /// With a token, `/metrics` answers only `Authorization: Bearer <token>`.
    pub metrics_token: Option<secrecy::SecretString>,
    /// What `/privacy` says about how long data is kept.
    pub retention_days: u32,
    pub audit_days: u32,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What keeps the public sidecar from being held open.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A client must send a request's headers within this long (slow-loris).
    pub header_timeout: Duration,
    /// A request must be answered within this long, or it gets 408.
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
}

/// The sidecar's routes, with `mounted` (routes the features bring) beside them.
pub fn router(state: SidecarState, mounted: Router, limits: Limits, guard: Guard) -> Router {
    let max_body = guard.max_body;
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/privacy", get(privacy))
        .with_state(Arc::new(state))
        .merge(mounted)
        // Routes with a larger body (Fathom's webhook) set their own, inside.
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            guard::Limiters::new(guard),
            guard::limit,
        ))
        .layer(axum::middleware::from_fn(guard::headers))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
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

/// Renders what is recorded; no database work at scrape time (housekeeping refreshes the
/// job gauges, see `record_job_counts`).
async fn metrics(State(app): State<Arc<SidecarState>>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &app.metrics_token
        && !bearer_matches(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "The metrics need the METRICS_TOKEN as a bearer token.\n",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Whether the request carries `Authorization: Bearer <token>`. The digests are compared,
/// so the time taken says nothing about how much of the token was right.
fn bearer_matches(headers: &axum::http::HeaderMap, token: &secrecy::SecretString) -> bool {
    use secrecy::ExposeSecret;
    use sha2::{Digest, Sha256};
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.expose_secret().as_bytes())
}

/// A plain privacy page the OAuth consent screens can link to.
async fn privacy(State(app): State<Arc<SidecarState>>) -> Response {
    pages::document(
        StatusCode::OK,
        "Privacy",
        &[
            (
                "What the bot keeps",
                "For each person who uses it: their Slack user id, name, email address and time \
                 zone as Slack gives them, their follow-up settings, and the follow-ups drafted \
                 from their recorded meetings (the meeting's title, time and attendees, the \
                 summary, the drafted email and CRM note). The keys and tokens people connect \
                 (Fathom, Google) and the team's CRM connection are stored encrypted."
                    .to_owned(),
            ),
            (
                "Where it sends what",
                "A meeting's summary and transcript go to Anthropic's Claude to draft the \
                 follow-up, when the operator set that up; otherwise a template is used. On a \
                 person's click, and only then: the email is saved as a draft in their own \
                 Gmail, an event is created in their own Google Calendar, and a note, task or \
                 deal change is written to the team's CRM. The bot asks Google only to compose \
                 drafts and manage calendar events: it never reads or sends mail."
                    .to_owned(),
            ),
            (
                "How long",
                format!(
                    "Follow-ups, the work done for them and the meetings listed from Fathom are \
                     deleted after {} days. The audit log (who connected, disconnected or deleted \
                     what, and the CRM writes) is kept for {} days.",
                    app.retention_days, app.audit_days
                ),
            ),
            (
                "Deleting your data",
                "In Slack, type /followup-settings and press Delete my data: your follow-ups, \
                 your Fathom key (and the webhook in your Fathom account), your Google \
                 connection (revoked at Google) and your settings are deleted. \
                 /gmail-disconnect and /fathom-disconnect remove one connection. What was \
                 already saved in Gmail, your calendar or the CRM stays there."
                    .to_owned(),
            ),
            (
                "Who to ask",
                "This bot is run by your company's Slack workspace administrators: ask them \
                 about this deployment."
                    .to_owned(),
            ),
        ],
    )
}

/// Refreshes the `jobs` gauges from the store (called periodically, never per scrape).
pub async fn record_job_counts(store: &Store) {
    match store.job_counts().await {
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
}

/// Serves `router` on `listener` until `shutdown`, within `limits`: a header-read timeout
/// per connection and a cap on connections served at once; on shutdown, connections finish
/// their request in flight (up to 10 s).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(e) => {
                    tracing::warn!(error = %e, "the sidecar could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(tower::util::MapRequest::new(
            router.clone(),
            move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(guard::Peer(peer));
                request
            },
        ));
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let done = tokio::select! {
                done = conn.as_mut() => done,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                tracing::debug!(error = %e, "sidecar connection ended");
            }
        });
    }
    connections.close();
    if tokio::time::timeout(Duration::from_secs(10), connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some sidecar connections were still open at shutdown");
    }
}
