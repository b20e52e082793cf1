//! The CRMs, behind one interface (`Crm`) that every feature uses: search, matching by email
//! and website domain, open deals and their stages, deal updates, notes and tasks. Crono is
//! the first implementation. Every request goes through a `Guard`: a token bucket per
//! (provider, team) from `governor`, retries with backoff and jitter that honour
//! `Retry-After`, and the `crm_*` metrics.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::clients::ApiError;
use crate::domain::crm::{
    Account, Contact, Deal, DealChange, Listed, Listing, Made, MirrorObject, NewNote, NewTask,
    Stage,
};
use crate::domain::ids::TenantId;
use crate::domain::provider::Provider;

pub mod crono;
pub mod hubspot;
pub mod oauth;
pub mod odoo;
pub mod zoho;

/// What went wrong with the CRM, in terms a feature turns into words.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error("{provider} refused the credentials")]
    Refused { provider: &'static str },
    /// HTTP 403: the credentials are good but lack a permission (a scope, a module right).
    #[error("{provider} does not allow this to the connected user")]
    Forbidden { provider: &'static str },
    #[error("{provider} is rate limiting us")]
    RateLimited {
        provider: &'static str,
        retry_after: Option<Duration>,
    },
    #[error("{provider} is unavailable: {detail}")]
    Unavailable {
        provider: &'static str,
        detail: String,
    },
    #[error("{provider} has no such record")]
    NotFound { provider: &'static str },
    /// The CRM refused this request (its message goes to the log, never to a seller).
    #[error("{provider} refused the request: {}", crate::telemetry::outside(.message))]
    Rejected {
        provider: &'static str,
        message: String,
    },
    #[error("{provider} sent an answer we could not read: {detail}")]
    Decode {
        provider: &'static str,
        detail: String,
    },
}

impl From<ApiError> for CrmError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unauthorized {
                provider,
                status: 403,
            } => CrmError::Forbidden { provider },
            ApiError::Unauthorized { provider, .. } => CrmError::Refused { provider },
            ApiError::RateLimited {
                provider,
                retry_after,
                ..
            } => CrmError::RateLimited {
                provider,
                retry_after,
            },
            ApiError::Unavailable { provider, status } => CrmError::Unavailable {
                provider,
                detail: format!("HTTP {status}"),
            },
            ApiError::Timeout { provider } => CrmError::Unavailable {
                provider,
                detail: "timed out".to_owned(),
            },
            ApiError::Transport { provider, detail } => CrmError::Unavailable { provider, detail },
            ApiError::Rejected {
                provider,
                status: 404,
                ..
            } => CrmError::NotFound { provider },
            ApiError::Rejected {
                provider,
                status,
                message,
            } => CrmError::Rejected {
                provider,
                message: format!("HTTP {status}: {message}"),
            },
            ApiError::Decode { provider, detail } => CrmError::Decode { provider, detail },
        }
    }
}

impl CrmError {
    /// Worth another try later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CrmError::RateLimited { .. } | CrmError::Unavailable { .. }
        )
    }

    /// A machine code for the kind of failure (metrics, the sync log): never provider text.
    pub fn kind(&self) -> &'static str {
        match self {
            CrmError::Refused { .. } => "refused",
            CrmError::Forbidden { .. } => "forbidden",
            CrmError::RateLimited { .. } => "rate_limited",
            CrmError::Unavailable { .. } => "unavailable",
            CrmError::NotFound { .. } => "not_found",
            CrmError::Rejected { .. } => "rejected",
            CrmError::Decode { .. } => "decode",
        }
    }

    /// Plain words for a seller (never the provider's own message).
    pub fn words(&self) -> String {
        match self {
            CrmError::Refused { provider } => {
                format!("{provider} refused the keys: an admin can run `/crono-connect` again.")
            }
            CrmError::Forbidden { provider } => format!(
                "{provider} does not allow this to the user the bot is connected as (a missing \
                 permission). Tell your admin."
            ),
            CrmError::RateLimited { provider, .. } => {
                format!("{provider} is rate limiting us; please try again in a minute.")
            }
            CrmError::Unavailable { provider, .. } => {
                format!("{provider} is not answering right now; please try again in a minute.")
            }
            CrmError::NotFound { provider } => {
                format!("{provider} no longer has that record (was it deleted or merged?).")
            }
            CrmError::Rejected { provider, .. } => format!(
                "{provider} refused the request. Check what you entered and try again; if it \
                 keeps happening, tell your admin."
            ),
            CrmError::Decode { provider, .. } => format!(
                "{provider} sent an answer I could not read. Please try again; if it keeps \
                 happening, tell your admin."
            ),
        }
    }
}

/// One team's connection to its CRM: what every feature calls.
#[async_trait]
pub trait Crm: Send + Sync {
    /// The CRM's name, for people ("Crono").
    fn name(&self) -> &'static str;
    fn provider(&self) -> Provider;

    /// Accounts whose name matches, for autocomplete (one request).
    async fn search_accounts(&self, query: &str, limit: usize) -> Result<Vec<Account>, CrmError>;
    /// Contacts whose name matches, with their account's name where the CRM gives it in the
    /// same answer (one request).
    async fn search_contacts(&self, query: &str, limit: usize) -> Result<Vec<Contact>, CrmError>;
    /// Contacts with exactly this email address.
    async fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, CrmError>;
    /// Accounts whose website is exactly this domain (`www.` and scheme aside).
    async fn accounts_by_domain(&self, domain: &str) -> Result<Vec<Account>, CrmError>;
    async fn account(&self, id: &str) -> Result<Option<Account>, CrmError>;
    /// Every open deal of the account (closed ones excluded by the provider's stage ids).
    async fn open_deals(&self, account_id: &str) -> Result<Vec<Deal>, CrmError>;
    /// The provider's deal stages (possibly empty when it does not list them).
    async fn stages(&self) -> Result<Vec<Stage>, CrmError>;
    async fn update_deal(&self, change: &DealChange) -> Result<(), CrmError>;
    async fn create_note(&self, note: &NewNote) -> Result<Made, CrmError>;
    async fn create_task(&self, task: &NewTask) -> Result<Made, CrmError>;
    /// A link to the account's page in the CRM, for confirmations.
    fn account_link(&self, account_id: &str) -> Option<String>;
    /// One bounded page of the records of `object` modified since `listing.since` (every
    /// record without it), for the mirror, on the provider's own modified-since field. Deals
    /// come open and closed alike, so closed ones can leave the mirror. Deleted records are
    /// not listed by any of the four: the mirror finds them with a full listing (a sweep).
    async fn list_changed(
        &self,
        object: MirrorObject,
        listing: &Listing,
    ) -> Result<Listed, CrmError>;
}

/// How a request may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calls {
    /// A person is waiting inside Slack's 3 s (autocomplete, a modal): one try, no waiting.
    Interactive,
    /// A read outside the ack: retried on 429/5xx/timeouts.
    Read,
    /// A write: retried only when the CRM said it did nothing (429), so a retry never makes
    /// a second record; other failures go back to the job, which knows what it made.
    Write,
}

/// The token buckets, one per (provider, team), shared by the whole process.
pub struct Limits {
    buckets: DefaultKeyedRateLimiter<(Provider, TenantId)>,
    /// HubSpot's own limit on searches (5 per second per account), besides the bucket above
    /// (which must stay under its 110 requests per 10 s: `CRM_REQUESTS_PER_SECOND` ≤ 11).
    searches: DefaultKeyedRateLimiter<(Provider, TenantId)>,
    /// How long a waiting request (outside an ack) may wait for the CRM's `Retry-After`.
    max_wait: Duration,
}

impl Limits {
    /// `per_second` requests per team and provider, with bursts of twice that.
    pub fn new(per_second: u32) -> Arc<Self> {
        let rate = NonZeroU32::new(per_second.max(1)).expect("at least one");
        let burst = NonZeroU32::new(per_second.max(1) * 2).expect("at least one");
        Arc::new(Self {
            buckets: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            searches: RateLimiter::keyed(
                Quota::per_second(NonZeroU32::new(5).expect("five"))
                    .allow_burst(NonZeroU32::new(5).expect("five")),
            ),
            max_wait: Duration::from_secs(30),
        })
    }
}

/// The per-request machinery every CRM client runs its requests through.
#[derive(Clone)]
pub struct Guard {
    pub limits: Arc<Limits>,
    pub tenant: TenantId,
    pub provider: Provider,
    pub calls: Calls,
}

const ATTEMPTS: u32 = 4;

impl Guard {
    /// Runs one CRM request (`attempt` builds and sends it), waiting for the team's bucket,
    /// retrying as `self.calls` allows, and recording the metrics.
    pub async fn run<T, F, Fut>(&self, operation: &'static str, attempt: F) -> Result<T, CrmError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, CrmError>>,
    {
        let provider = self.provider.as_str();
        let mut tries = 0;
        loop {
            tries += 1;
            let key = (self.provider, self.tenant);
            self.limits.buckets.until_key_ready(&key).await;
            if self.provider == Provider::Hubspot && operation.ends_with(".search") {
                self.limits.searches.until_key_ready(&key).await;
            }
            let started = Instant::now();
            let result = attempt().await;
            let status = match &result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            };
            metrics::counter!("crm_requests_total", "provider" => provider,
                "operation" => operation, "status" => status)
            .increment(1);
            metrics::histogram!("crm_request_duration_seconds", "provider" => provider,
                "operation" => operation)
            .record(started.elapsed().as_secs_f64());
            let error = match result {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            metrics::counter!("crm_errors_total", "provider" => provider,
                "operation" => operation, "kind" => error.kind())
            .increment(1);
            let retryable = match self.calls {
                Calls::Interactive => false,
                Calls::Read => error.is_transient(),
                Calls::Write => matches!(error, CrmError::RateLimited { .. }),
            };
            if !retryable || tries >= ATTEMPTS {
                return Err(error);
            }
            let backoff = crate::retry::backoff(
                tries - 1,
                Duration::from_millis(250),
                Duration::from_secs(8),
            );
            let wait = match &error {
                CrmError::RateLimited {
                    retry_after: Some(after),
                    ..
                } => (*after).max(backoff.min(Duration::from_millis(500))),
                _ => backoff,
            };
            if wait > self.limits.max_wait {
                return Err(error);
            }
            tracing::info!(provider, operation, wait_ms = wait.as_millis() as u64, error = %error,
                "CRM request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}
