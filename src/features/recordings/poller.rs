//! Each connected person's Fathom is checked for new recordings, and each recording is
//! announced once. One replica polls at a time (a lease in the database); a recording is
//! announced by whoever first records it as seen.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use slack_morphism::prelude::*;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::blocks::{self, Vars};
use crate::clients::ApiError;
use crate::clients::fathom::MeetingQuery;
use crate::domain::meeting::Meeting;
use crate::domain::person::utc_offset;
use crate::services::Services;
use crate::store::followups::PollTarget;

const LEASE: &str = "fathom-poller";
/// Pages read per person per poll (newest first), so one busy account cannot starve others.
const MAX_PAGES: usize = 10;
/// Polls that try one recording's announcement before it is skipped.
const ANNOUNCE_TRIES: i64 = 3;
/// How often someone with a Fathom webhook is polled anyway.
const WEBHOOK_POLL: chrono::Duration = chrono::Duration::minutes(30);

pub async fn run(services: Arc<Services>, shutdown: CancellationToken) {
    let interval = services.config.fathom.poll_interval;
    let tick = interval.min(Duration::from_secs(30));
    let lease = (interval * 3).max(Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
        match services
            .store
            .try_lease(LEASE, &services.instance_id, lease)
            .await
        {
            Ok(true) => poll_due(&services, &shutdown).await,
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not take the poller lease"),
        }
    }
    let _ = services
        .store
        .release_lease(LEASE, &services.instance_id)
        .await;
}

/// One pass over everyone due, without waiting for the next tick: a test hook. The caller
/// makes sure no other poller runs (tests start the bot with a long poll interval).
pub async fn poll_once(services: &Services) {
    poll_due(services, &CancellationToken::new()).await;
}

async fn poll_due(services: &Services, shutdown: &CancellationToken) {
    let targets = match services.store.due_fathom_polls().await {
        Ok(targets) => targets,
        Err(e) => {
            warn!(error = %e, "could not list people to poll");
            return;
        }
    };
    for target in targets {
        if shutdown.is_cancelled() {
            break;
        }
        if !services.workspaces.installed(&target.slack_team_id).await {
            continue; // uninstalled: nothing to announce with
        }
        let polled = crate::workspace::within(&target.slack_team_id, poll(services, &target));
        if let Err(e) = polled.await {
            warn!(error = ?e, user = %target.user_id, "meeting poll failed");
        }
    }
}

/// New recordings since the clock, at most `MAX_PAGES` pages; `more` when pages were left.
struct NewRecordings {
    meetings: Vec<Meeting>,
    more: bool,
}

async fn poll(services: &Services, target: &PollTarget) -> anyhow::Result<()> {
    let interval = chrono::Duration::from_std(services.config.fathom.poll_interval)?;
    let now = crate::store::now();
    let store = &services.store;
    let Ok(key) = services
        .fathom_key(target.tenant_id, target.user_id)
        .await?
    else {
        return Ok(()); // nothing to poll with; `/followup` tells the person
    };
    let Some(since) = store.fathom_poll_since(target.user_id).await? else {
        // First poll: start from now, not the whole history.
        store
            .set_fathom_poll(target.user_id, now, now + interval)
            .await?;
        return Ok(());
    };
    let found = match list_new(services, &key, since).await {
        Ok(found) => found,
        Err(e) => {
            let wait = match &e {
                ApiError::RateLimited { retry_after, .. } => chrono::Duration::from_std(
                    retry_after
                        .unwrap_or_default()
                        .max(services.config.fathom.poll_interval),
                )?,
                ApiError::Unauthorized { .. } => chrono::Duration::hours(6),
                _ => interval,
            };
            warn!(error = %e, retry_in_s = wait.num_seconds(), "Fathom poll failed; backing off");
            store
                .set_fathom_poll(target.user_id, since, now + wait)
                .await?;
            return Ok(());
        }
    };
    if found.more {
        warn!(user = %target.user_id, "more new recordings than one poll reads; the rest next time");
    }
    store
        .remember_meetings(target.user_id, &found.meetings)
        .await?;
    let mut newest = since;
    let mut retry_later = false;
    for meeting in &found.meetings {
        if let Some(created) = meeting.created_at {
            newest = newest.max(crate::store::truncate(created));
        }
        if let Err(e) = announce(services, target, meeting).await {
            // One refusal never holds back the others: retried on the next polls (the clock
            // stays), skipped for good after a few tries.
            let failures = store
                .record_announce_failure(target.user_id, meeting.recording_id)
                .await?;
            if failures >= ANNOUNCE_TRIES {
                warn!(error = ?e, recording = meeting.recording_id, failures,
                      "Slack kept refusing this announcement; skipped");
            } else {
                warn!(error = ?e, recording = meeting.recording_id, failures,
                      "announcement refused; retried on the next poll");
                store
                    .forget_recording_seen(target.user_id, meeting.recording_id)
                    .await?;
                retry_later = true;
            }
        }
    }
    // Only move the clock when every page was read and nothing waits for a retry.
    let since = if found.more || retry_later {
        since
    } else {
        newest
    };
    // With a webhook, polling is the safety net for lost deliveries: every half hour.
    let next = if store.has_fathom_webhook(target.user_id).await? {
        interval.max(WEBHOOK_POLL)
    } else {
        interval
    };
    store
        .set_fathom_poll(target.user_id, since, Utc::now() + next)
        .await?;
    Ok(())
}

/// Reads the pages of recordings created since `since`, oldest first.
async fn list_new(
    services: &Services,
    key: &SecretString,
    since: DateTime<Utc>,
) -> Result<NewRecordings, ApiError> {
    let mut meetings = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let query = MeetingQuery {
            created_after: Some(since),
            created_before: None,
            cursor: cursor.clone(),
        };
        let page = services.fathom.meetings(key, &query).await?;
        meetings.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    meetings.sort_by_key(|m| m.created_at.or(m.started_at()));
    Ok(NewRecordings {
        meetings,
        more: cursor.is_some(),
    })
}

/// Announces a recording unless it was already (marking it seen first, across replicas).
pub(super) async fn announce(
    services: &Services,
    target: &PollTarget,
    meeting: &Meeting,
) -> anyhow::Result<()> {
    let store = &services.store;
    if !store
        .mark_recording_seen(target.user_id, meeting.recording_id)
        .await?
    {
        return Ok(());
    }
    let tz = utc_offset(target.tz_offset_secs);
    let when = meeting
        .started_at()
        .map(|t| t.with_timezone(&tz).format("%a %d %b, %H:%M").to_string())
        .unwrap_or_default();
    let message: SlackMessageContent = blocks::RECORDING_READY.render_as(
        &Vars::new()
            .set("title", meeting.display_title())
            .set("when", when)
            .set("recording", meeting.recording_id.to_string()),
    )?;
    services
        .dm(&target.slack_user_id, message)
        .await
        .map_err(|e| e.context("announcing a recording"))?;
    info!(
        recording = meeting.recording_id,
        "announced a new recording"
    );
    Ok(())
}
