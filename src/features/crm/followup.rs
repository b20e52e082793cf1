//! The follow-up's CRM buttons: *CRM Note* pushes the edited note (with the recording link)
//! to the account the attendees match; *View Deals* shows that account's open deals; *Create
//! Task* opens the task modal prefilled. The account is matched by an attendee's exact
//! contact email, then an exact website domain; when no single account is certain, the
//! person picks it, never a first fuzzy hit.

use async_trait::async_trait;
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use super::deals::{Place, show_deals};
use super::jobs::{self, Request};
use super::task::acting;
use super::views::{
    AccountRef, NONE_VALUE, PickMeta, Purpose, TaskMeta, TaskPrefill, pick_view, task_view,
};
use crate::blocks;
use crate::clients::crm::Calls;
use crate::dispatch::{Ack, Ctx, Handler, HandlerError, HandlerResult, field_errors};
use crate::domain::crm::{Account, AccountMatch, NewNote};
use crate::domain::followup::Followup;
use crate::domain::ids::FollowupId;
use crate::domain::person::{Tenant, User};
use crate::services::Services;
use crate::services::crm::Matched;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{
    action_value, callback_id, private_metadata, state_value, trigger_id, view_id,
};
use crate::store::crm::Queued;

pub const PICK_CALLBACK: &str = "crm_pick_account";

const NOT_YOURS: &str = "This follow-up belongs to someone else, so I can't open or change it.";

/// The note as pushed: the edited CRM note, then the meeting and its recording.
pub fn note_text(followup: &Followup) -> String {
    let note = followup
        .current()
        .map(|d| d.crm_note.trim().to_owned())
        .unwrap_or_default();
    let mut text = format!("Meeting: {}", followup.meeting_title);
    if let Some(at) = followup.meeting_started_at {
        text.push_str(&format!(" ({})", at.format("%Y-%m-%d")));
    }
    text.push_str("\n\n");
    text.push_str(if note.is_empty() { "(no notes)" } else { &note });
    if let Some(url) = &followup.meeting_url {
        text.push_str(&format!("\n\nRecording: {url}"));
    }
    text
}

fn note_key(followup: &FollowupId) -> String {
    format!("note:followup:{}", followup.0)
}

/// Queues the follow-up's note for `account` (once per follow-up); words for the person.
async fn queue_note(
    services: &Services,
    tenant: &Tenant,
    user: &User,
    followup: &Followup,
    account: &Account,
    contact_ids: Vec<String>,
) -> anyhow::Result<String> {
    let request = Request::Note {
        note: NewNote {
            account_id: account.id.clone(),
            text: note_text(followup),
            deal_id: None,
            contact_ids,
        },
        account_name: account.name.clone(),
        meeting: Some(followup.meeting_title.clone()),
    };
    let queued = jobs::queue(
        services,
        tenant,
        user,
        Some(&followup.id),
        &note_key(&followup.id),
        &request,
    )
    .await?;
    Ok(match queued {
        Queued::New(_) => format!(
            "Pushing the note to *{}* in the CRM… I will confirm in our DM.",
            blocks::escape(&account.name)
        ),
        Queued::Existing(write) => jobs::already(&write),
    })
}

fn why(matched: &AccountMatch) -> &'static str {
    match matched {
        AccountMatch::Ambiguous(_) => {
            "More than one account matches the meeting's attendees. Pick the right one, so \
             nothing lands on the wrong account."
        }
        _ => {
            "No account matches the meeting's attendees exactly (by contact email or website \
             domain). Pick the account:"
        }
    }
}

/// A follow-up's CRM button.
pub struct FollowupButton(pub Purpose);

#[async_trait]
impl Handler for FollowupButton {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let services = &cx.services;
        let id = action_value(&cx.payload)
            .or_else(|| private_metadata(&cx.payload).map(str::to_owned))
            .ok_or_else(|| HandlerError::person(NOT_YOURS))?;
        let id = FollowupId(id);
        let Some(followup) = services
            .store
            .followup(cx.tenant.id, cx.user.id, &id)
            .await?
        else {
            return Err(HandlerError::person(NOT_YOURS));
        };
        let in_modal = callback_id(&cx.payload) == Some("followup_edit");
        if in_modal
            && !services
                .save_view_edits(&cx.payload, &cx.tenant, &cx.user, &followup)
                .await?
        {
            return Err(HandlerError::person(NOT_YOURS));
        }
        let followup = services
            .store
            .followup(cx.tenant.id, cx.user.id, &id)
            .await?
            .unwrap_or(followup);
        if followup.current().is_none() {
            return Err(HandlerError::person(
                "This follow-up is still being drafted; I will message you when it is ready.",
            ));
        }
        if self.0 == Purpose::Note
            && let Some(write) = services.store.crm_write_by_key(&note_key(&id)).await?
            && write.status != "failed"
        {
            cx.tell(&jobs::already(&write)).await?;
            return Ok(());
        }
        let crm = match services.crm(cx.tenant.id, Calls::Read).await? {
            Ok(crm) => crm,
            Err(no) => return Err(HandlerError::person(no.words())),
        };
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        // The trigger lives 3 s and matching asks the CRM: a "Looking…" modal first.
        let loading = blocks::message_modal(
            "crm_matching",
            "CRM",
            &format!("Looking for the meeting's account in {}…", crm.name()),
        )?;
        let opened = if in_modal {
            services.slack.views_push(&trigger, loading).await
        } else {
            services.slack.views_open(&trigger, loading).await
        };
        let view = match opened {
            Ok(view) => view,
            Err(e) => {
                tracing::warn!(error = %e, "could not open the CRM modal");
                cx.tell(
                    "Slack did not let me open the window in time. Please press the button again.",
                )
                .await?;
                return Ok(());
            }
        };
        let shown = view.clone();
        let show = |v: SlackView| async move {
            if let Err(e) = cx.services.slack.views_update(&shown, None, v).await {
                tracing::warn!(error = %e, "could not update the CRM modal (closed?)");
            }
        };
        let matched = match services
            .match_account(&*crm, &followup, cx.user.email.as_deref())
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "matching the attendees failed");
                show(blocks::message_modal("crm_matching", "CRM", &e.words())?).await;
                return Ok(());
            }
        };
        let Matched { account, contacts } = matched;
        let pick = PickMeta {
            followup: id.clone(),
            purpose: self.0,
        };
        match (self.0, &account) {
            (Purpose::Note, AccountMatch::One(a)) => {
                let ids = contacts
                    .iter()
                    .filter(|c| c.account_id.as_deref() == Some(a.id.as_str()))
                    .map(|c| c.id.clone())
                    .collect();
                let words = queue_note(services, &cx.tenant, &cx.user, &followup, a, ids).await?;
                show(blocks::message_modal("crm_matching", "CRM note", &words)?).await;
            }
            (Purpose::Deals, AccountMatch::One(a)) => {
                let account = AccountRef {
                    account: a.id.clone(),
                    name: a.name.clone(),
                };
                show_deals(cx, &account, Place::Update(view.clone())).await?;
            }
            (Purpose::Task, _) => {
                let one = match &account {
                    AccountMatch::One(a) => Some(a),
                    _ => None,
                };
                let contact = contacts
                    .iter()
                    .find(|c| {
                        c.account_id.is_some()
                            && one.is_none_or(|a| c.account_id.as_deref() == Some(a.id.as_str()))
                    })
                    .cloned();
                let meta_account = match (&contact, one) {
                    (None, Some(a)) => Some(AccountRef {
                        account: a.id.clone(),
                        name: a.name.clone(),
                    }),
                    _ => None,
                };
                let prefill = TaskPrefill {
                    meta: TaskMeta {
                        followup: Some(id.clone()),
                        account: meta_account,
                    },
                    contact,
                    subject: format!("Follow-up: {}", followup.meeting_title),
                    description: followup
                        .current()
                        .map(|d| d.summary.clone())
                        .unwrap_or_default(),
                    intro: None,
                };
                show(task_view(&prefill, &cx.user)?).await;
            }
            (_, matched) => {
                show(pick_view(&pick, why(matched), &matched.candidates())?).await;
            }
        }
        Ok(())
    }
}

/// The account the person picked: a listed candidate, or one found by searching.
fn picked(payload: &Value) -> Option<AccountRef> {
    state_value(payload, "account", "crm_account")
        .or_else(|| state_value(payload, "candidate", "value"))
        .filter(|v| v != NONE_VALUE)
        .and_then(|v| serde_json::from_str(&v).ok())
}

fn update(view: SlackView) -> Ack {
    Ack::Stop(Some(json!({ "response_action": "update", "view": view })))
}

/// "Which account?" submitted: the note queued, or the deals or task modal in its place.
pub struct PickSubmit;

#[async_trait]
impl Handler for PickSubmit {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let Some(meta) =
            private_metadata(payload).and_then(|m| serde_json::from_str::<PickMeta>(m).ok())
        else {
            return field_errors(&[(
                "account",
                "Sorry, this window is out of date. Press the button again.",
            )]);
        };
        let Some(account) = picked(payload) else {
            return field_errors(&[("account", "Pick an account first.")]);
        };
        let Some((tenant, user)) = acting(services, event).await else {
            return field_errors(&[("account", "Sorry, something went wrong. Please try again.")]);
        };
        let followup = match services
            .store
            .followup(tenant.id, user.id, &meta.followup)
            .await
        {
            Ok(Some(f)) => f,
            Ok(None) => return field_errors(&[("account", NOT_YOURS)]),
            Err(e) => {
                tracing::error!(error = ?e, "could not load the follow-up");
                return field_errors(&[(
                    "account",
                    "Sorry, something went wrong. Please try again.",
                )]);
            }
        };
        let rendered = match meta.purpose {
            Purpose::Note => {
                let chosen = Account {
                    id: account.account.clone(),
                    name: account.name.clone(),
                    website: None,
                };
                match queue_note(services, &tenant, &user, &followup, &chosen, Vec::new()).await {
                    Ok(words) => blocks::message_modal("crm_matching", "CRM note", &words),
                    Err(e) => {
                        tracing::error!(error = ?e, "could not queue the follow-up's note");
                        return field_errors(&[(
                            "account",
                            "Sorry, the note could not be saved. Please press Continue again.",
                        )]);
                    }
                }
            }
            Purpose::Deals => blocks::message_modal(
                "crm_deals",
                "Open deals",
                &format!(
                    "Loading the open deals of *{}*…",
                    blocks::escape(&account.name)
                ),
            ),
            Purpose::Task => {
                let prefill = TaskPrefill {
                    meta: TaskMeta {
                        followup: Some(followup.id.clone()),
                        account: Some(account.clone()),
                    },
                    contact: None,
                    subject: format!("Follow-up: {}", followup.meeting_title),
                    description: followup
                        .current()
                        .map(|d| d.summary.clone())
                        .unwrap_or_default(),
                    intro: None,
                };
                match task_view(&prefill, &user) {
                    Ok(v) => return update(v),
                    Err(e) => {
                        tracing::error!(error = ?e, "could not render the task modal");
                        return field_errors(&[("account", "Sorry, something went wrong.")]);
                    }
                }
            }
        };
        match rendered {
            Ok(view) => {
                if meta.purpose == Purpose::Deals {
                    // The deals load after the ack (in `handle`), into this same view.
                    Ack::Continue(Some(json!({ "response_action": "update", "view": view })))
                } else {
                    update(view)
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, "could not render the CRM modal");
                field_errors(&[("account", "Sorry, something went wrong.")])
            }
        }
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let Some(meta) =
            private_metadata(&cx.payload).and_then(|m| serde_json::from_str::<PickMeta>(m).ok())
        else {
            return Ok(());
        };
        if meta.purpose != Purpose::Deals {
            return Ok(());
        }
        let (Some(account), Some(view)) = (picked(&cx.payload), view_id(&cx.payload)) else {
            return Ok(());
        };
        show_deals(cx, &account, Place::Update(view.to_owned())).await
    }
}
