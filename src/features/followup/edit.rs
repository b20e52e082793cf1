//! "View & Edit": the edit modal, and saving what the person typed in it.

use async_trait::async_trait;
use serde_json::Value;
use slack_morphism::prelude::*;

use super::owned::{NOT_YOURS, owned};
use crate::blocks::{self, Vars};
use crate::dispatch::{Ack, Ctx, Handler, HandlerError, HandlerResult, field_errors};
use crate::domain::followup::Followup;
use crate::domain::ids::FollowupId;
use crate::domain::person::User;
use crate::services::Services;
use crate::services::followups::edited_draft;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{private_metadata, trigger_id};

/// Renders "Edit Follow-up" with the current text, cut visibly where Slack's limits demand.
pub fn edit_view(followup: &Followup, user: &User) -> anyhow::Result<SlackView> {
    edit_view_with(followup, user, None)
}

/// What was made from the follow-up (Gmail draft, calendar event), as lines for its views.
pub(super) fn made_lines(followup: &Followup) -> anyhow::Result<Vec<Value>> {
    let mut lines = Vec::new();
    for (made, icon, text, label) in [
        (
            &followup.gmail,
            ":email:",
            "Gmail draft saved.",
            "Open it in Gmail",
        ),
        (
            &followup.calendar,
            ":calendar:",
            "Calendar event created.",
            "Open the event",
        ),
    ] {
        if let Some(link) = made.as_ref().and_then(|m| m.link.clone()) {
            lines.push(
                blocks::FOLLOWUP_STATUS.render(
                    &Vars::new()
                        .set("icon", icon)
                        .set("text", text)
                        .set("url", link)
                        .set("label", label),
                )?,
            );
        }
    }
    Ok(lines)
}

/// As `edit_view`, with a line saying what is under way (`working`).
pub(super) fn edit_view_with(
    followup: &Followup,
    user: &User,
    working: Option<&str>,
) -> anyhow::Result<SlackView> {
    let draft = followup.current().cloned().unwrap_or_default();
    let mut notices = Vec::new();
    let mut field = |name: &str, text: &str, max: usize| -> anyhow::Result<String> {
        let (text, cut) = blocks::fit(text, max);
        if cut {
            notices.push(blocks::NOTICE.render(&Vars::new().set(
                "text",
                format!(
                    "The {name} was longer than Slack allows ({max} characters) and is shown cut at the end; saving keeps the cut text."
                ),
            ))?);
        }
        Ok(text)
    };
    let subject = field("subject", &draft.subject, 250)?;
    let body = field("email", &draft.body, 3000)?;
    let summary = field("summary", &draft.summary, 3000)?;
    let crm_note = field("CRM note", &draft.crm_note, 3000)?;
    let attendees = field("attendee list", &draft.attendees, 3000)?;
    notices.extend(made_lines(followup)?);
    if let Some(text) = working {
        notices.push(blocks::FOLLOWUP_WORKING.render(&Vars::new().set("text", text))?);
    }
    let when = followup
        .meeting_started_at
        .map(|t| {
            t.with_timezone(&user.utc_offset())
                .format("%a %d %b %Y, %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    Ok(blocks::FOLLOWUP_EDIT.render_as(
        &Vars::new()
            .set("id", followup.id.0.clone())
            .set("title", followup.meeting_title.clone())
            .set("when", when)
            .set("notices", notices)
            .set("subject", subject)
            .set("body", body)
            .set("summary", summary)
            .set("crm_note", crm_note)
            .set("attendees", attendees),
    )?)
}

/// How long saving the edit modal may take inside the ack (well inside `ACK_BUDGET`).
const SAVE_BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

/// "View & Edit".
pub struct ViewFollowup;

#[async_trait]
impl Handler for ViewFollowup {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let followup = owned(cx).await?;
        if followup.current().is_none() && followup.status == "failed" {
            return Err(HandlerError::person(
                "This follow-up could not be drafted, so there is nothing to edit yet: press \
                 Retry in its message, or type `/followup` and pick the meeting again.",
            ));
        }
        if followup.current().is_none() {
            return Err(HandlerError::person(
                "This follow-up is still being drafted; I will message you when it is ready.",
            ));
        }
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        cx.services
            .slack
            .views_open(&trigger, edit_view(&followup, &cx.user)?)
            .await?;
        Ok(())
    }
}

/// Saving the edit modal. The save happens before the ack, so the modal only closes once the
/// text is safe; if it cannot be saved, the modal stays open with the text and says so.
pub struct EditSubmit;

async fn save_from_submission(
    services: &Services,
    event: &SlackEvent,
    payload: &Value,
) -> anyhow::Result<bool> {
    let (Some(team), Some(slack_user)) = (event.team_id(), event.user_id()) else {
        return Ok(false);
    };
    let Some(id) = private_metadata(payload) else {
        return Ok(false);
    };
    let store = &services.store;
    let tenant = store.ensure_tenant(&team).await?;
    let user = store.ensure_user(tenant.id, &slack_user).await?;
    let Some(followup) = store
        .followup(tenant.id, user.id, &FollowupId(id.to_owned()))
        .await?
    else {
        return Ok(false);
    };
    let draft = edited_draft(payload, followup.current());
    store
        .save_edits(tenant.id, user.id, &followup.id, &draft)
        .await
}

#[async_trait]
impl Handler for EditSubmit {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let draft = edited_draft(payload, None);
        let mut errors = Vec::new();
        if draft.subject.is_empty() {
            errors.push(("subject", "The email needs a subject."));
        }
        if draft.body.trim().is_empty() {
            errors.push(("body", "The email needs some text."));
        }
        if !errors.is_empty() {
            return field_errors(&errors);
        }
        // The modal closes only once the text is saved: a save that would outlast the ack
        // budget keeps the modal open with the text in it (saving again is harmless).
        let saved =
            tokio::time::timeout(SAVE_BUDGET, save_from_submission(services, event, payload))
                .await
                .unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("the save took longer than {SAVE_BUDGET:?}"))
                });
        match saved {
            Ok(true) => Ack::Stop(None),
            Ok(false) => field_errors(&[("subject", NOT_YOURS)]),
            Err(e) => {
                tracing::error!(error = ?e, "could not save the edits");
                field_errors(&[(
                    "body",
                    "Sorry, your edits could not be saved just now. Your text is still here: \
                     please press Save again in a moment.",
                )])
            }
        }
    }

    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        Ok(())
    }
}

/// Saves what the open edit modal holds before a button in it acts on the follow-up.
pub(super) async fn save_view_edits(cx: &Ctx, followup: &Followup) -> HandlerResult {
    if !cx
        .services
        .save_view_edits(&cx.payload, &cx.tenant, &cx.user, followup)
        .await?
    {
        return Err(HandlerError::person(NOT_YOURS));
    }
    Ok(())
}
