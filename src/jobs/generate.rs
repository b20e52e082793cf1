//! The draft of a follow-up: Fathom's summary and transcript of the chosen meeting, then the
//! model (or the template), then the "Follow-up ready" DM.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use serde::Deserialize;
use slack_morphism::prelude::*;

use super::{JobError, JobHandler};
use crate::app::App;
use crate::blocks::{self, Vars};
use crate::clients::ApiError;
use crate::clients::fathom::Meeting;
use crate::drafting::{self, Generator, Material};
use crate::handlers::followup::{fathom_trouble, ready_message};
use crate::ids::FollowupId;
use crate::store::credentials::Subject;
use crate::store::followups::Followup;
use crate::store::jobs::Job;

#[derive(Deserialize)]
struct Payload {
    followup: FollowupId,
}

pub struct Generate;

fn fathom_error(e: ApiError) -> JobError {
    if e.is_transient() {
        JobError::Retry(e.into())
    } else {
        JobError::Permanent(anyhow::anyhow!(fathom_trouble(&e)))
    }
}

async fn load(app: &App, job: &Job) -> anyhow::Result<Followup> {
    let payload: Payload = serde_json::from_str(&job.payload).context("job payload")?;
    app.store
        .followup_by_id(&payload.followup)
        .await?
        .context("the follow-up no longer exists")
}

#[async_trait]
impl JobHandler for Generate {
    async fn run(&self, app: &Arc<App>, job: &Job) -> Result<(), JobError> {
        let followup = load(app, job).await.map_err(JobError::Permanent)?;
        let user = app
            .store
            .user(followup.tenant_id, followup.user_id)
            .await?
            .context("the follow-up's owner no longer exists")
            .map_err(JobError::Permanent)?;
        let key = app
            .store
            .credential(&app.cipher, followup.tenant_id, Subject::User(user.id), "fathom")
            .await?
            .map(|c| c.secret)
            .ok_or_else(|| {
                JobError::Permanent(anyhow::anyhow!(
                    "Fathom is not connected any more: connect it with `/fathom-connect`, then press Retry."
                ))
            })?;
        let meeting = app
            .store
            .remembered_meeting(user.id, followup.recording_id)
            .await?
            .unwrap_or_else(|| Meeting {
                recording_id: followup.recording_id,
                title: Some(followup.meeting_title.clone()),
                meeting_title: None,
                url: followup.meeting_url.clone(),
                share_url: None,
                created_at: None,
                scheduled_start_time: None,
                scheduled_end_time: None,
                recording_start_time: followup.meeting_started_at,
                recording_end_time: None,
                transcript_language: followup.language.clone(),
                calendar_invitees: Vec::new(),
                default_summary: None,
                action_items: None,
            });
        let summary = app
            .fathom
            .summary(&key, followup.recording_id)
            .await
            .map_err(fathom_error)?;
        let transcript = app
            .fathom
            .transcript(&key, followup.recording_id)
            .await
            .map_err(fathom_error)?;
        let attendees: String = meeting
            .external_attendees()
            .iter()
            .filter_map(|a| a.email.clone())
            .collect::<Vec<_>>()
            .join("\n");
        let material = Material {
            meeting: &meeting,
            summary: summary.as_deref(),
            transcript: &transcript,
            user: &user,
        };
        let (draft, generator) = match &app.llm {
            None => (
                drafting::template(&material, &attendees),
                Generator::Template("no AI key is configured".to_owned()),
            ),
            Some(llm) => match drafting::with_model(llm.as_ref(), &material, &attendees).await {
                Ok(draft) => (draft, Generator::Ai(llm.name().to_owned())),
                Err(failure) => {
                    tracing::warn!(error = %failure, "AI draft failed; using the template");
                    (
                        drafting::template(&material, &attendees),
                        Generator::Template(format!("the AI was unavailable: {failure}")),
                    )
                }
            },
        };
        app.store
            .save_draft(&followup.id, generator.code(), &draft)
            .await?;
        let followup = app
            .store
            .followup_by_id(&followup.id)
            .await?
            .context("the follow-up vanished")?;
        let message = ready_message(&followup, &generator.note())?;
        deliver(app, &followup, &user.slack_user_id, message).await?;
        app.store
            .audit(
                followup.tenant_id,
                Some(followup.user_id),
                "followup.draft",
                generator.code(),
                "ok",
                None,
            )
            .await?;
        Ok(())
    }

    async fn dead(&self, app: &Arc<App>, job: &Job, error: &str) {
        let Ok(followup) = load(app, job).await else {
            return;
        };
        let result = async {
            app.store
                .set_followup_status(&followup.id, "failed", Some(error))
                .await?;
            let user = app
                .store
                .user(followup.tenant_id, followup.user_id)
                .await?
                .context("owner gone")?;
            let reason = if error.contains("Fathom") || error.contains("fathom") {
                error.to_owned()
            } else {
                "Something went wrong while drafting; nothing was lost. Press Retry to try again."
                    .to_owned()
            };
            let message: SlackMessageContent = blocks::FOLLOWUP_FAILED.render_as(
                &Vars::new()
                    .set("id", followup.id.0.clone())
                    .set("title", followup.meeting_title.clone())
                    .set("reason", reason),
            )?;
            deliver(app, &followup, &user.slack_user_id, message).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = ?e, "could not report the failed draft");
        }
    }
}

/// Replaces the "Drafting…" DM (or posts a new one when there is none).
async fn deliver(
    app: &App,
    followup: &Followup,
    slack_user: &str,
    message: SlackMessageContent,
) -> anyhow::Result<()> {
    match (&followup.dm_channel, &followup.dm_ts) {
        (Some(channel), Some(ts)) => app.slack.chat_update(channel, ts, message).await?,
        _ => {
            let dm = app.slack.open_dm(slack_user).await?;
            let ts = app.slack.chat_post(&dm, message).await?;
            app.store
                .set_followup_message(&followup.id, &dm, &ts)
                .await?;
        }
    }
    Ok(())
}
