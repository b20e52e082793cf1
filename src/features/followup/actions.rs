//! The follow-up's buttons: Retry on a failed draft, and the actions whose integrations are
//! still to come (Gmail, Calendar, CRM).

use async_trait::async_trait;
use slack_morphism::prelude::*;

use super::edit::save_view_edits;
use super::owned::owned;
use crate::blocks::{self, Vars};
use crate::dispatch::{Ctx, Handler, HandlerResult};
use crate::domain::followup::DRAFT_JOB;
use crate::services::Pending;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::callback_id;

/// The follow-up's action buttons, until their integrations land: ownership first, edits made
/// in the open modal saved, then an honest answer.
pub struct FollowupAction(pub Pending);

#[async_trait]
impl Handler for FollowupAction {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let followup = owned(cx).await?;
        if callback_id(&cx.payload) == Some("followup_edit") {
            save_view_edits(cx, &followup).await?;
        }
        cx.tell(self.0.answer()).await?;
        Ok(())
    }
}

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
