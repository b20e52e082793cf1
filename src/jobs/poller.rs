//! Meeting-ready DMs: each connected person's Fathom is checked for new recordings, and each
//! recording is announced once. One replica polls at a time (a lease in the database); a
//! recording is announced by whoever first records it as seen.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use slack_morphism::prelude::*;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::App;
use crate::blocks::{self, Vars};
use crate::clients::ApiError;
use crate::clients::fathom::MeetingQuery;
use crate::handlers::followup::offset;
use crate::store::credentials::Subject;
use crate::store::followups::PollTarget;

const LEASE: &str = "fathom-poller";
/// Pages read per person per poll (newest first), so one busy account cannot starve others.
const MAX_PAGES: usize = 10;

pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let interval = app.config.fathom_poll_interval;
    let tick = interval.min(Duration::from_secs(30));
    let lease = (interval * 3).max(Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
        match app.store.try_lease(LEASE, &app.instance_id, lease).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                warn!(error = %e, "could not take the poller lease");
                continue;
            }
        }
        let targets = match app.store.due_fathom_polls().await {
            Ok(targets) => targets,
            Err(e) => {
                warn!(error = %e, "could not list people to poll");
                continue;
            }
        };
        for target in targets {
            if shutdown.is_cancelled() {
                break;
            }
            if let Err(e) = poll(&app, &target).await {
                warn!(error = ?e, user = %target.user_id, "meeting poll failed");
            }
        }
    }
    let _ = app.store.release_lease(LEASE, &app.instance_id).await;
}

async fn poll(app: &App, target: &PollTarget) -> anyhow::Result<()> {
    let interval = chrono::Duration::from_std(app.config.fathom_poll_interval)?;
    let now = crate::store::now();
    let Some(key) = app
        .store
        .credential(
            &app.cipher,
            target.tenant_id,
            Subject::User(target.user_id),
            "fathom",
        )
        .await?
    else {
        return Ok(());
    };
    let since = match app.store.fathom_poll_since(target.user_id).await? {
        Some(since) => since,
        None => {
            // First poll: start from now, not the whole history.
            app.store
                .set_fathom_poll(target.user_id, now, now + interval)
                .await?;
            return Ok(());
        }
    };
    let mut meetings = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let query = MeetingQuery {
            created_after: Some(since),
            created_before: None,
            cursor: cursor.clone(),
        };
        match app.fathom.meetings(&key.secret, &query).await {
            Ok(page) => {
                meetings.extend(page.items);
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            Err(e) => {
                let wait = match &e {
                    ApiError::RateLimited { retry_after, .. } => chrono::Duration::from_std(
                        retry_after
                            .unwrap_or_default()
                            .max(app.config.fathom_poll_interval),
                    )?,
                    ApiError::Unauthorized { .. } => chrono::Duration::hours(6),
                    _ => interval,
                };
                warn!(error = %e, retry_in_s = wait.num_seconds(), "Fathom poll failed; backing off");
                app.store
                    .set_fathom_poll(target.user_id, since, now + wait)
                    .await?;
                return Ok(());
            }
        }
    }
    if cursor.is_some() {
        warn!(user = %target.user_id, "more new recordings than one poll reads; the rest next time");
    }
    meetings.sort_by_key(|m| m.created_at.or(m.started_at()));
    app.store
        .remember_meetings(target.user_id, &meetings)
        .await?;
    let mut newest = since;
    let tz = offset_of(app, target).await;
    for meeting in &meetings {
        if let Some(created) = meeting.created_at {
            newest = newest.max(crate::store::truncate(created));
        }
        if !app
            .store
            .mark_recording_seen(target.user_id, meeting.recording_id)
            .await?
        {
            continue;
        }
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
        let posted = async {
            let dm = app.slack.open_dm(&target.slack_user_id).await?;
            app.slack.chat_post(&dm, message).await
        }
        .await;
        if let Err(e) = posted {
            // Not announced: forget it was seen and keep the clock, so the next poll retries.
            app.store
                .forget_recording_seen(target.user_id, meeting.recording_id)
                .await?;
            app.store
                .set_fathom_poll(target.user_id, since, now + interval)
                .await?;
            return Err(anyhow::anyhow!(e).context("announcing a recording"));
        }
        info!(
            recording = meeting.recording_id,
            "announced a new recording"
        );
    }
    // Only move the clock when every page of new recordings was read.
    let since = if cursor.is_none() { newest } else { since };
    app.store
        .set_fathom_poll(target.user_id, since, Utc::now() + interval)
        .await?;
    Ok(())
}

async fn offset_of(app: &App, target: &PollTarget) -> chrono::FixedOffset {
    match app.store.user(target.tenant_id, target.user_id).await {
        Ok(Some(user)) => offset(&user),
        _ => chrono::FixedOffset::east_opt(0).expect("zero offset"),
    }
}
