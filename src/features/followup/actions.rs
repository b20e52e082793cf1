//! The follow-up's Retry button on a failed draft (Gmail and Calendar have their own modules;
//! the CRM buttons belong to the CRM feature).

use async_trait::async_trait;
use slack_morphism::prelude::*;

use super::owned::owned;
use crate::blocks::{self, Vars};
use crate::dispatch::{Ctx, Handler, HandlerResult};
use crate::domain::followup::DRAFT_JOB;
use crate::slack::envelope::SlackEvent;

/// "Retry" on a failed draft.
pub struct RetryFollowup;

#[async_trait]
impl Handler for RetryFollowup {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let followup = owned(cx).await?;
        let services = &cx.services;
        if !services
            .store
            .retry_followup(&followup.id, DRAFT_JOB, services.config.jobs.max_attempts)
            .await?
        {
            return Ok(()); // a second click, or it is not failed
        }
        services.queue.notify();
        // The job is queued: showing "Drafting…" again is a courtesy that may fail.
        if let (Some(channel), Some(ts)) = (&followup.dm_channel, &followup.dm_ts) {
            let drafting: SlackMessageContent = blocks::FOLLOWUP_DRAFTING
                .render_as(&Vars::new().set("title", followup.meeting_title.clone()))?;
            if let Err(e) = services.slack.chat_update(channel, ts, drafting).await {
                tracing::warn!(error = %e, "could not show Drafting… again; the draft is queued");
            }
        }
        Ok(())
    }
}
