//! `/crono-add-note` (also `/crm-add-note`): an account (autocomplete) and the note's text.
//! Submitting queues one write per modal, in the ack.

use async_trait::async_trait;
use serde_json::Value;

use super::jobs::{self, Request};
use super::task::acting;
use super::views::{AccountRef, NONE_VALUE, NoteMeta, note_view};
use crate::clients::crm::Calls;
use crate::dispatch::{Ack, Ctx, Handler, HandlerError, HandlerResult, field_errors};
use crate::domain::crm::{Account, NewNote};
use crate::services::Services;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{private_metadata, state_value, trigger_id, view_id};

pub const CALLBACK: &str = "crm_note";

/// Opens the note modal, on `account` when given.
pub async fn open_note(
    cx: &Ctx,
    trigger: &str,
    account: Option<&Account>,
    text: &str,
) -> HandlerResult {
    let view = note_view(&NoteMeta::default(), account, text)?;
    if let Err(e) = cx.services.slack.views_open(trigger, view).await {
        tracing::warn!(error = %e, "could not open the note modal");
        return Err(HandlerError::person(
            "Slack did not let me open the note window in time. Please try again.",
        ));
    }
    Ok(())
}

pub struct NoteCommand;

#[async_trait]
impl Handler for NoteCommand {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        if let Err(no) = cx.services.crm(cx.tenant.id, Calls::Interactive).await? {
            return Err(HandlerError::person(no.words()));
        }
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        let text = match &event {
            SlackEvent::Command(c) => c.text.clone().unwrap_or_default(),
            _ => String::new(),
        };
        open_note(cx, &trigger, None, text.trim()).await
    }
}

pub struct NoteSubmit;

const NOT_SAVED: &str = "Sorry, the note could not be saved. Please press Add note again.";

#[async_trait]
impl Handler for NoteSubmit {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let Some((tenant, user)) = acting(services, event).await else {
            return field_errors(&[("text", NOT_SAVED)]);
        };
        let _meta: NoteMeta = private_metadata(payload)
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        let account = state_value(payload, "account", "crm_account")
            .filter(|v| v != NONE_VALUE)
            .and_then(|v| serde_json::from_str::<AccountRef>(&v).ok());
        let text = state_value(payload, "text", "value").unwrap_or_default();
        let mut errors = Vec::new();
        if account.is_none() {
            errors.push((
                "account",
                "Pick an account: type at least 2 letters of its name.",
            ));
        }
        if text.trim().is_empty() {
            errors.push(("text", "Write the note first."));
        }
        let Some(account) = account.filter(|_| errors.is_empty()) else {
            return field_errors(&errors);
        };
        let request = Request::Note {
            note: NewNote {
                account_id: account.account,
                text: text.trim().to_owned(),
                deal_id: None,
                contact_ids: Vec::new(),
            },
            account_name: account.name,
            meeting: None,
        };
        let key = format!("note:view:{}", view_id(payload).unwrap_or("none"));
        match jobs::queue(services, &tenant, &user, None, &key, &request).await {
            Ok(_) => Ack::Continue(None),
            Err(e) => {
                tracing::error!(error = ?e, "could not queue a CRM note");
                field_errors(&[("text", NOT_SAVED)])
            }
        }
    }

    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        Ok(()) // queued in the ack; the job confirms in the DM
    }
}
