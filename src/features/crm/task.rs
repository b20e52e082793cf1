//! `/crono-add-task` (also `/crm-add-task`), and the task modal every "Create Task" button
//! opens: contact (autocomplete), subject, due date and time in the person's own time zone,
//! type and description, defaults from `/followup-settings`. Submitting queues one write per
//! modal, in the ack, so a double submit makes one task and a crash loses none.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveTime};
use serde_json::Value;

use super::jobs::{self, Request};
use super::views::{AccountRef, ContactRef, NONE_VALUE, TaskMeta, TaskPrefill, task_view};
use crate::dispatch::{Ack, Ctx, Handler, HandlerError, HandlerResult, field_errors};
use crate::domain::crm::{NewTask, TaskType};
use crate::domain::person::{Tenant, User};
use crate::services::Services;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{private_metadata, state_value, trigger_id, view_id};

pub const CALLBACK: &str = "crm_task";

/// Opens the task modal (or says why not).
pub async fn open_task(
    cx: &Ctx,
    trigger: &str,
    prefill: &TaskPrefill,
    push: bool,
) -> HandlerResult {
    let view = task_view(prefill, &cx.user)?;
    let opened = if push {
        cx.services.slack.views_push(trigger, view).await
    } else {
        cx.services.slack.views_open(trigger, view).await
    };
    if let Err(e) = opened {
        tracing::warn!(error = %e, "could not open the task modal");
        return Err(HandlerError::person(
            "Slack did not let me open the task window in time. Please try again.",
        ));
    }
    Ok(())
}

pub struct TaskCommand;

#[async_trait]
impl Handler for TaskCommand {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        if let Err(no) = cx
            .services
            .crm(cx.tenant.id, crate::clients::crm::Calls::Interactive)
            .await?
        {
            return Err(HandlerError::person(no.words()));
        }
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        open_task(cx, &trigger, &TaskPrefill::default(), false).await
    }
}

/// The task as submitted, or the fields to fix.
fn read_task(
    payload: &Value,
    meta: &TaskMeta,
    user: &User,
) -> Result<Request, Vec<(&'static str, String)>> {
    let get = |block: &str| state_value(payload, block, "value").unwrap_or_default();
    let mut errors = Vec::new();
    let picked = state_value(payload, "contact", "crm_contact")
        .filter(|v| v != NONE_VALUE)
        .and_then(|v| serde_json::from_str::<ContactRef>(&v).ok());
    let account: Option<AccountRef> = picked
        .as_ref()
        .and_then(|c| {
            c.account.clone().map(|a| AccountRef {
                account: a,
                name: c.account_name.clone().unwrap_or_default(),
            })
        })
        .or_else(|| meta.account.clone());
    match (&picked, &account) {
        (None, None) => errors.push((
            "contact",
            "Pick a contact: type at least 2 letters of their name.".to_owned(),
        )),
        (Some(_), None) => errors.push((
            "contact",
            "This contact has no account in the CRM, and a task needs one. Pick another \
             contact, or give them an account in the CRM first."
                .to_owned(),
        )),
        _ => {}
    }
    let subject = get("subject").trim().to_owned();
    if subject.is_empty() {
        errors.push(("subject", "The task needs a subject.".to_owned()));
    }
    let date = NaiveDate::parse_from_str(&get("date"), "%Y-%m-%d").ok();
    if date.is_none() {
        errors.push(("date", "Pick a due date.".to_owned()));
    }
    let time = NaiveTime::parse_from_str(&get("time"), "%H:%M").ok();
    if time.is_none() {
        errors.push(("time", "Pick a due time.".to_owned()));
    }
    let kind = TaskType::parse(&get("type"));
    if kind.is_none() {
        errors.push(("type", "Pick a type.".to_owned()));
    }
    let due = match (date, time) {
        (Some(d), Some(t)) => match user.local_to_utc(d.and_time(t)) {
            Some(due) => Some(due),
            None => {
                errors.push((
                    "time",
                    "That time does not exist in your time zone.".to_owned(),
                ));
                None
            }
        },
        _ => None,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(account), Some(kind), Some(due), Some(date), Some(time)) =
        (account, kind, due, date, time)
    else {
        return Err(vec![("subject", "Please check the fields.".to_owned())]);
    };
    let zone = user.tz.clone().unwrap_or_else(|| "UTC".to_owned());
    Ok(Request::Task {
        task: NewTask {
            account_id: account.account,
            contact_id: picked.as_ref().map(|c| c.contact.clone()),
            kind,
            subject,
            description: get("description"),
            due,
            due_date: Some(date),
        },
        account_name: Some(account.name).filter(|n| !n.is_empty()),
        contact_name: picked.map(|c| c.name).filter(|n| !n.is_empty()),
        local_due: format!(
            "{} {} ({zone})",
            date.format("%a %-d %b %Y"),
            time.format("%H:%M")
        ),
    })
}

/// The acting person, in an ack (where no `Ctx` exists yet).
pub async fn acting(services: &Services, event: &SlackEvent) -> Option<(Tenant, User)> {
    let (team, user) = (event.team_id()?, event.user_id()?);
    match services
        .people
        .resolve(&services.store, &*services.slack, &team, &user)
        .await
    {
        Ok(found) => Some(found),
        Err(e) => {
            tracing::warn!(error = ?e, "could not load the person for an ack");
            None
        }
    }
}

pub struct TaskSubmit;

const NOT_SAVED: &str = "Sorry, the task could not be saved. Please press Create task again.";

#[async_trait]
impl Handler for TaskSubmit {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let Some((tenant, user)) = acting(services, event).await else {
            return field_errors(&[("subject", NOT_SAVED)]);
        };
        let meta: TaskMeta = private_metadata(payload)
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        let request = match read_task(payload, &meta, &user) {
            Ok(r) => r,
            Err(errors) => {
                let refs: Vec<(&str, &str)> =
                    errors.iter().map(|(b, t)| (*b, t.as_str())).collect();
                return field_errors(&refs);
            }
        };
        // A follow-up named by the modal is recorded only when it is the person's own.
        let followup = match &meta.followup {
            Some(id) => match services.store.followup(tenant.id, user.id, id).await {
                Ok(found) => found.map(|f| f.id),
                Err(_) => None,
            },
            None => None,
        };
        let key = format!("task:view:{}", view_id(payload).unwrap_or("none"));
        match jobs::queue(services, &tenant, &user, followup.as_ref(), &key, &request).await {
            Ok(_) => Ack::Continue(None),
            Err(e) => {
                tracing::error!(error = ?e, "could not queue a CRM task");
                field_errors(&[("subject", NOT_SAVED)])
            }
        }
    }

    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        Ok(()) // queued in the ack; the job confirms in the DM
    }
}
