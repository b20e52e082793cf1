//! The job that drafts a follow-up: Fathom's summary and transcript of the chosen meeting,
//! then the model (or the template), then the "Follow-up ready" DM.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use serde::Deserialize;
use slack_morphism::prelude::*;

use super::drafting::{self, DraftFailure, Generator, Material};
use super::views::{failed_message, fathom_trouble, ready_message};
use crate::clients::ApiError;
use crate::domain::followup::{Draft, Followup};
use crate::domain::ids::FollowupId;
use crate::domain::meeting::Meeting;
use crate::domain::person::User;
use crate::jobs::{Dead, JobError, JobHandler};
use crate::services::{NoKey, Services};
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
        JobError::Person(fathom_trouble(&e))
    }
}

async fn load(services: &Services, job: &Job) -> anyhow::Result<Followup> {
    let payload: Payload = serde_json::from_str(&job.payload).context("job payload")?;
    services
        .store
        .followup_by_id(&payload.followup)
        .await?
        .context("the follow-up no longer exists")
}

async fn owner(services: &Services, followup: &Followup) -> Result<User, JobError> {
    services
        .store
        .user(followup.tenant_id, followup.user_id)
        .await?
        .context("the follow-up's owner no longer exists")
        .map_err(JobError::Permanent)
}

/// The meeting as Fathom listed it, or what the follow-up kept of it.
async fn meeting_of(
    services: &Services,
    user: &User,
    followup: &Followup,
) -> anyhow::Result<Meeting> {
    Ok(services
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
        }))
}

/// The model's draft, or the template's with the reason the model was not used.
async fn draft(services: &Services, material: &Material<'_>) -> (Draft, Generator) {
    let attendees: String = material
        .meeting
        .external_attendees()
        .iter()
        .filter_map(|a| a.email.clone())
        .collect::<Vec<_>>()
        .join("\n");
    let Some(llm) = &services.llm else {
        return (
            drafting::template(material, &attendees),
            Generator::Template("no AI key is configured".to_owned()),
        );
    };
    // One budget for the whole draft, retries and repair included: then the template.
    let budget = services.config.anthropic.draft_budget;
    let answer = tokio::time::timeout(
        budget,
        drafting::with_model(llm.as_ref(), material, &attendees),
    )
    .await
    .unwrap_or(Err(DraftFailure::OverBudget(budget)));
    match answer {
        Ok(draft) => (draft, Generator::Ai(llm.name().to_owned())),
        Err(failure) => {
            tracing::warn!(error = %failure, "AI draft failed; using the template");
            (
                drafting::template(material, &attendees),
                Generator::Template(failure.for_person()),
            )
        }
    }
}

#[async_trait]
impl JobHandler for Generate {
    async fn run(&self, services: &Arc<Services>, job: &Job) -> Result<(), JobError> {
        let followup = load(services, job).await.map_err(JobError::Permanent)?;
        let user = owner(services, &followup).await?;
        let key = services
            .fathom_key(followup.tenant_id, user.id)
            .await?
            .map_err(|no_key| {
                JobError::Person(match no_key {
                    NoKey::NotConnected => "Fathom is not connected any more: connect it with \
                                            `/fathom-connect`, then press Retry."
                        .to_owned(),
                    NoKey::Unreadable => format!("{} Then press Retry.", no_key.fathom_words()),
                })
            })?;
        let meeting = meeting_of(services, &user, &followup).await?;
        let summary = services
            .fathom
            .summary(&key, followup.recording_id)
            .await
            .map_err(fathom_error)?;
        let transcript = services
            .fathom
            .transcript(&key, followup.recording_id)
            .await
            .map_err(fathom_error)?;
        let material = Material {
            meeting: &meeting,
            summary: summary.as_deref(),
            transcript: &transcript,
            user: &user,
        };
        let (draft, generator) = draft(services, &material).await;
        services
            .store
            .save_draft(&followup.id, generator.code(), &draft)
            .await?;
        let followup = services
            .store
            .followup_by_id(&followup.id)
            .await?
            .context("the follow-up vanished")?;
        let message = ready_message(&followup, &generator.note())?;
        deliver(services, &followup, &user.slack_user_id, message).await?;
        services
            .store
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

    async fn dead(&self, services: &Arc<Services>, job: &Job, dead: Dead<'_>) {
        let Ok(followup) = load(services, job).await else {
            return;
        };
        let result = async {
            services
                .store
                .set_followup_status(&followup.id, "failed", Some(dead.error))
                .await?;
            let user = services
                .store
                .user(followup.tenant_id, followup.user_id)
                .await?
                .context("owner gone")?;
            let reason = dead.for_person.unwrap_or(
                "Something went wrong while drafting; nothing was lost. Press Retry to try again.",
            );
            let message = failed_message(&followup, reason)?;
            deliver(services, &followup, &user.slack_user_id, message).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = ?e, "could not report the failed draft");
        }
    }
}

/// Replaces the "Drafting…" DM (or posts a new one when there is none).
async fn deliver(
    services: &Services,
    followup: &Followup,
    slack_user: &str,
    message: SlackMessageContent,
) -> anyhow::Result<()> {
    match (&followup.dm_channel, &followup.dm_ts) {
        (Some(channel), Some(ts)) => services.slack.chat_update(channel, ts, message).await?,
        _ => {
            let store = &services.store;
            let (dm, ts) = services.dm(slack_user, message).await?;
            if !store
                .attach_followup_message(&followup.id, &dm, &ts)
                .await?
            {
                // The person's "Drafting…" landed while this was posted: point it here.
                if let Some(Followup {
                    dm_channel: Some(channel),
                    dm_ts: Some(drafting),
                    ..
                }) = store.followup_by_id(&followup.id).await?
                {
                    services.retire_drafting(&channel, &drafting).await;
                }
                store.set_followup_message(&followup.id, &dm, &ts).await?;
            }
        }
    }
    Ok(())
}
