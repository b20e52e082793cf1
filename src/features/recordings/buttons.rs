//! The meeting-ready DM's buttons. They carry a recording id; only the person whose Fathom
//! listed it can use them.

use anyhow::Context;
use async_trait::async_trait;

use crate::dispatch::{Ctx, Handler, HandlerError, HandlerResult};
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::action_value;

/// The announcement's CRM buttons: they act on a follow-up, which the recording has not yet.
#[derive(Clone, Copy)]
pub enum Later {
    CrmNote,
    Task,
    Deals,
}

impl Later {
    fn answer(self) -> &'static str {
        match self {
            Later::CrmNote => {
                "Press *Draft follow-up* first: the CRM note is written from the meeting, and \
                 the follow-up's message has a CRM Note button that pushes it to the account."
            }
            Later::Task => {
                "Press *Draft follow-up* first: the follow-up's message has a Create Task button \
                 prefilled with the meeting and its contact."
            }
            Later::Deals => {
                "Press *Draft follow-up* first: the follow-up's message has a View Deals button \
                 for the meeting's account."
            }
        }
    }
}

/// "Draft follow-up" (`None`), or a CRM button that needs the follow-up.
pub struct RecordingAction(pub Option<Later>);

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
            Some(later) => {
                cx.tell(later.answer()).await?;
                Ok(())
            }
        }
    }
}
