//! Clients of external APIs: one struct per API with its base URL and typed requests; errors,
//! timeouts, retry hints and metrics handled here once.

use std::time::{Duration, Instant};

pub mod crm;
pub mod fathom;
pub mod google;
pub mod llm;

/// The one HTTP client of the process (rustls on ring, pooled connections).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("followup-bot/", env!("CARGO_PKG_VERSION")))
        // APIs answer where they are asked; a redirect is never followed (the OAuth token
        // exchange must not be sent elsewhere).
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client builds with rustls")
}

/// What went wrong talking to a provider, in terms a handler can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{provider} rejected the credentials ({status})")]
    Unauthorized { provider: &'static str, status: u16 },
    #[error("{provider} asked us to slow down")]
    RateLimited {
        provider: &'static str,
        retry_after: Option<Duration>,
        /// The start of the answer's body (e.g. a spend-limit message).
        detail: String,
    },
    #[error("{provider} is having trouble ({status})")]
    Unavailable { provider: &'static str, status: u16 },
    #[error("{provider} did not answer in time")]
    Timeout { provider: &'static str },
    #[error("{provider} refused the request ({status}): {}", crate::telemetry::outside(.message))]
    Rejected {
        provider: &'static str,
        status: u16,
        message: String,
    },
    #[error("{provider} sent an answer we could not read: {detail}")]
    Decode {
        provider: &'static str,
        detail: String,
    },
    #[error("could not reach {provider}: {detail}")]
    Transport {
        provider: &'static str,
        detail: String,
    },
}

impl ApiError {
    /// Worth trying again later (429, 5xx, timeouts, network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Unavailable { .. }
                | ApiError::Timeout { .. }
                | ApiError::Transport { .. }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs; treated as absent).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// Sends a request, records it in `/metrics`, and maps failures to `ApiError`. On success
/// returns the body text (decoded by the caller, so decode errors name the provider).
pub async fn send(
    provider: &'static str,
    operation: &str,
    request: reqwest::RequestBuilder,
) -> Result<String, ApiError> {
    let started = Instant::now();
    let result = request.send().await;
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            let status = if e.is_timeout() {
                "timeout"
            } else {
                "transport_error"
            };
            crate::telemetry::record_external(provider, operation, status, started.elapsed());
            return Err(if e.is_timeout() {
                ApiError::Timeout { provider }
            } else {
                ApiError::Transport {
                    provider,
                    detail: e.without_url().to_string(),
                }
            });
        }
    };
    let status = response.status();
    let retry = retry_after(response.headers());
    let body = response.text().await;
    crate::telemetry::record_external(provider, operation, status.as_str(), started.elapsed());
    let body = body.map_err(|e| ApiError::Transport {
        provider,
        detail: e.without_url().to_string(),
    })?;
    let code = status.as_u16();
    match code {
        200..=299 => Ok(body),
        // Only conditional requests (Zoho's `If-Modified-Since`) get it: nothing changed.
        304 => Ok(String::new()),
        401 | 403 => Err(ApiError::Unauthorized {
            provider,
            status: code,
        }),
        429 => Err(ApiError::RateLimited {
            provider,
            retry_after: retry,
            detail: body.chars().take(300).collect(),
        }),
        500..=599 => Err(ApiError::Unavailable {
            provider,
            status: code,
        }),
        _ => Err(ApiError::Rejected {
            provider,
            status: code,
            message: body.chars().take(300).collect(),
        }),
    }
}

pub fn decode<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    body: &str,
) -> Result<T, ApiError> {
    serde_json::from_str(body).map_err(|e| ApiError::Decode {
        provider,
        detail: crate::telemetry::parse_error(&e.to_string()),
    })
}
