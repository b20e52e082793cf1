//! Fathom's webhook deliveries: `POST /webhooks/fathom/<path id>` on the sidecar. Each is read
//! with a size cap, verified as Standard Webhooks with that person's secret (a bad signature
//! or a timestamp more than five minutes off is 401 and changes nothing; an unknown path is
//! 404), then made durable as a job keyed by its `webhook-id` (Fathom's retries of one
//! delivery are one job) and answered 2xx at once. The job announces the recording exactly as
//! the poller does, so whichever sees it first announces it, once.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clients::fathom::{Refusal, verify_delivery};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::meeting::Meeting;
use crate::jobs::{JobError, JobHandler};
use crate::services::Services;
use crate::services::webhooks::WebhookSecret;
use crate::store::followups::PollTarget;
use crate::store::jobs::Job;

pub const DELIVERY_JOB: &str = "fathom.delivery";
/// A meeting with its summary is well under this; anything bigger is not Fathom's.
const MAX_BODY: usize = 1024 * 1024;

pub fn routes(services: Arc<Services>) -> Router {
    Router::new()
        .route("/webhooks/fathom/{path_id}", post(deliver))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(services)
}

fn outcome(name: &'static str) {
    metrics::counter!("fathom_webhook_deliveries_total", "outcome" => name).increment(1);
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn deliver(
    State(services): State<Arc<Services>>,
    Path(path_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if path_id.len() > 100 {
        outcome("unknown");
        return StatusCode::NOT_FOUND.into_response();
    }
    let webhook = match services
        .store
        .fathom_webhook_at(&services.cipher, &path_id)
        .await
    {
        Ok(Some(webhook)) => webhook,
        Ok(None) => {
            outcome("unknown");
            return StatusCode::NOT_FOUND.into_response();
        }
        Err(e) => {
            warn!(error = ?e, "could not read a Fathom webhook");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let Some(secret) = WebhookSecret::open(&webhook.sealed) else {
        outcome("unknown");
        return StatusCode::NOT_FOUND.into_response();
    };
    let id = header(&headers, "webhook-id");
    let verified = verify_delivery(
        &secret.secret,
        id,
        header(&headers, "webhook-timestamp"),
        &body,
        header(&headers, "webhook-signature"),
        chrono::Utc::now(),
    );
    match verified {
        Ok(()) if !id.is_empty() && id.len() <= 200 => {}
        Ok(()) | Err(Refusal::BadSignature) => {
            outcome("bad_signature");
            warn!(user = %webhook.user_id, "a Fathom delivery with a bad signature was refused");
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Err(Refusal::Stale) => {
            outcome("stale");
            warn!(user = %webhook.user_id, "a stale Fathom delivery was refused");
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let payload = json!({
        "tenant": webhook.tenant_id,
        "user": webhook.user_id,
        "body": String::from_utf8_lossy(&body),
    });
    let key = format!("fathom-webhook:{}:{id}", webhook.user_id);
    let queued = services.in_workspace_of(
        webhook.tenant_id,
        services.enqueue(DELIVERY_JOB, &payload, Some(&key)),
    );
    match queued.await {
        Ok(Some(_)) => outcome("accepted"),
        Ok(None) => outcome("duplicate"),
        Err(e) => {
            warn!(error = ?e, "could not queue a Fathom delivery");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Announces a delivered recording, as the poller would.
pub struct Delivery;

#[async_trait]
impl JobHandler for Delivery {
    async fn run(&self, services: &Arc<Services>, job: &Job) -> Result<(), JobError> {
        let payload: serde_json::Value = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Permanent(anyhow::anyhow!("an unreadable delivery job: {e}")))?;
        let tenant: TenantId = serde_json::from_value(payload["tenant"].clone())
            .map_err(|e| JobError::Permanent(anyhow::anyhow!("a delivery without a team: {e}")))?;
        let user: UserId = serde_json::from_value(payload["user"].clone()).map_err(|e| {
            JobError::Permanent(anyhow::anyhow!("a delivery without a person: {e}"))
        })?;
        let body = payload["body"].as_str().unwrap_or_default();
        let meeting: Meeting = serde_json::from_str(body).map_err(|e| {
            JobError::Permanent(anyhow::anyhow!("a Fathom delivery that is no meeting: {e}"))
        })?;
        let Some(person) = services
            .store
            .user(tenant, user)
            .await
            .map_err(JobError::Retry)?
        else {
            return Ok(());
        };
        if !person.meeting_dms {
            return Ok(());
        }
        // Disconnected since: nothing to announce for.
        if !matches!(services.fathom_key(tenant, user).await, Ok(Ok(_))) {
            return Ok(());
        }
        services
            .store
            .remember_meetings(user, std::slice::from_ref(&meeting))
            .await
            .map_err(JobError::Retry)?;
        let target = PollTarget {
            user_id: user,
            tenant_id: tenant,
            slack_user_id: person.slack_user_id,
            tz_offset_secs: person.tz_offset_secs,
            slack_team_id: crate::workspace::current().unwrap_or_default(),
        };
        if let Err(e) = super::poller::announce(services, &target, &meeting).await {
            // Not seen after all: the retry (or the next poll) announces it.
            services
                .store
                .forget_recording_seen(user, meeting.recording_id)
                .await
                .map_err(JobError::Retry)?;
            return Err(JobError::Retry(e));
        }
        Ok(())
    }
}

/// At start, people connected before webhooks existed (or whose creation failed) get one.
/// One replica does it (a lease), so nobody gets two.
pub async fn backfill(services: Arc<Services>, shutdown: CancellationToken) {
    if !services.fathom_webhooks_on() {
        return;
    }
    match services
        .store
        .try_lease(
            "fathom-webhooks",
            &services.instance_id,
            std::time::Duration::from_secs(300),
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            warn!(error = ?e, "could not take the webhook lease");
            return;
        }
    }
    let people = match services.store.fathom_without_webhook().await {
        Ok(people) => people,
        Err(e) => {
            warn!(error = ?e, "could not list people without a Fathom webhook");
            return;
        }
    };
    for (tenant, user) in people {
        if shutdown.is_cancelled() {
            break;
        }
        let Ok(Ok(key)) = services.fathom_key(tenant, user).await else {
            continue;
        };
        match services
            .replace_fathom_webhook(tenant, user, None, &key)
            .await
        {
            Ok(_) => info!(user = %user, "gave a connected person a Fathom webhook"),
            Err(e) => {
                warn!(error = ?e, user = %user, "could not create a Fathom webhook; polling covers it")
            }
        }
    }
    let _ = services
        .store
        .release_lease("fathom-webhooks", &services.instance_id)
        .await;
}
