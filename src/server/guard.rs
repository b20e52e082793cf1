//! What guards the public sidecar beyond its timeouts: a per-client rate limit on the OAuth
//! and Slack install routes (and a separate, higher one for Fathom's webhooks, so real
//! deliveries are never dropped behind someone hammering a callback), a request-size cap,
//! and security headers on every answer.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The sidecar's per-client limits, from the configuration.
#[derive(Clone, Debug)]
pub struct Guard {
    /// Requests per minute per client to `/oauth/*`, `/slack/*` and the pages (bursts of as
    /// many).
    pub per_minute: u32,
    /// Requests per minute per client to `/webhooks/*`.
    pub webhooks_per_minute: u32,
    /// A header the proxy in front sets to the client's address (`Fly-Client-IP` on Fly.io);
    /// without it, the connection's peer address is the client.
    pub client_ip_header: Option<HeaderName>,
    /// The largest request body outside the webhook routes (which have their own).
    pub max_body: usize,
}

/// The connection's peer address, put on each request by `serve`.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Which limit a path falls under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Health, readiness and metrics: probes and scrapers, never limited.
    Probe,
    Webhook,
    Public,
}

fn class(path: &str) -> Class {
    match path {
        "/health" | "/ready" | "/metrics" => Class::Probe,
        p if p.starts_with("/webhooks/") => Class::Webhook,
        _ => Class::Public,
    }
}

pub struct Limiters {
    guard: Guard,
    public: DefaultKeyedRateLimiter<IpAddr>,
    webhooks: DefaultKeyedRateLimiter<IpAddr>,
}

/// Past this many clients remembered, the ones whose limit has refilled are forgotten.
const REMEMBERED: usize = 10_000;

impl Limiters {
    pub fn new(guard: Guard) -> Arc<Self> {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Arc::new(Self {
            public: RateLimiter::keyed(quota(guard.per_minute)),
            webhooks: RateLimiter::keyed(quota(guard.webhooks_per_minute)),
            guard,
        })
    }

    /// The client: the proxy's header when configured and readable, else the peer.
    fn client(&self, request: &Request) -> Option<IpAddr> {
        if let Some(name) = &self.guard.client_ip_header
            && let Some(ip) = request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
        request.extensions().get::<Peer>().map(|p| p.0.ip())
    }
}

/// Rate limit and size cap, before any handler runs.
pub async fn limit(
    State(limiters): State<Arc<Limiters>>,
    request: Request,
    next: Next,
) -> Response {
    let class = class(request.uri().path());
    if class == Class::Public
        && request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > limiters.guard.max_body)
    {
        metrics::counter!("http_refused_total", "reason" => "too_large").increment(1);
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let limiter = match class {
        Class::Probe => return next.run(request).await,
        Class::Webhook => &limiters.webhooks,
        Class::Public => &limiters.public,
    };
    let Some(client) = limiters.client(&request) else {
        return next.run(request).await;
    };
    if let Err(not_until) = limiter.check_key(&client) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        metrics::counter!("http_refused_total", "reason" => "rate_limited").increment(1);
        tracing::info!(path = %request.uri().path(), retry_after = seconds, "rate limited a client");
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests: please wait a moment and try again.\n",
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    if limiter.len() > REMEMBERED {
        limiter.retain_recent();
    }
    next.run(request).await
}

/// No framing, no sniffing, no referrer, on every answer; HTML pages also get a policy that
/// lets them load nothing but their own inline style.
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
                 base-uri 'none'; form-action 'none'",
            ),
        );
    }
    response
}
