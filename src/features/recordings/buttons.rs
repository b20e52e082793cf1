//! The meeting-ready DM's buttons. They carry a recording id; only the person whose Fathom
//! listed it can use them.

use anyhow::Context;
use async_trait::async_trait;

use crate::dispatch::{Ctx, Handler, HandlerError, HandlerResult};
use crate::services::Pending;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::action_value;

/// "Draft follow-up" (`None`) or an action still to come.
pub struct RecordingAction(pub Option<Pending>);

#[async_trait]
impl Handler for RecordingAction {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let recording: i64 = action_value(&cx.payload)
            .and_then(|v| v.parse().ok())
            .context("the button carries no recording id")?;
        let services = &cx.services;
        if services
            .store
            .remembered_meeting(cx.user.id, recording)
            .await?
            .is_none()
        {
            return Err(HandlerError::person(
                "This recording belongs to someone else, so I can't act on it.",
            ));
        }
        match self.0 {
            None => services
                .start_followup(&cx.tenant, &cx.user, recording)
                .await?
                .map_err(HandlerError::Person),
            Some(pending) => {
                cx.tell(pending.answer()).await?;
                Ok(())
            }
        }
    }
}
