//! "Calendar Event": a small modal prefilled from the follow-up (the next meeting the model
//! found, else a week after the meeting at its hour; 30 minutes; the external attendees;
//! the summary), in the person's Slack time zone. Submitting queues one job per follow-up;
//! the event's own id is derived from the follow-up, so Google makes it once. Invitations
//! are only emailed when the person ticks the box.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use slack_morphism::prelude::*;
use tracing::warn;

use super::action_job::{ForFollowup, load, report_dead};
use super::edit::save_view_edits;
use super::owned::{NOT_YOURS, owned};
use crate::blocks::{self, Vars};
use crate::clients::ApiError;
use crate::clients::google::{self, NewEvent};
use crate::dispatch::{Ack, Ctx, Handler, HandlerError, HandlerResult, field_errors};
use crate::domain::followup::{CALENDAR_EVENT_JOB, Draft, Followup};
use crate::domain::ids::FollowupId;
use crate::domain::person::User;
use crate::jobs::{Dead, JobError, JobHandler};
use crate::services::Services;
use crate::services::google::NoGoogle;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{callback_id, private_metadata, state_value, trigger_id};
use crate::store::jobs::Job;

pub const CALLBACK: &str = "followup_calendar";

/// When the proposed event starts, in the person's local time.
pub fn proposed_start(
    draft: &Draft,
    followup: &Followup,
    user: &User,
    now: DateTime<Utc>,
) -> NaiveDateTime {
    let offset = user.utc_offset();
    let found = draft.next_meeting.as_deref().and_then(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
                    .ok()
                    .and_then(|n| n.and_local_timezone(offset).single())
                    .map(|t| t.with_timezone(&Utc))
            })
    });
    let start = match found.filter(|t| *t > now) {
        Some(t) => t,
        None => {
            let mut t = followup.meeting_started_at.unwrap_or(now) + Duration::days(7);
            while t < now + Duration::hours(1) {
                t += Duration::days(7);
            }
            t
        }
    };
    let local = start.with_timezone(&offset).naive_local();
    local
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(local)
}

/// The event's own id at Google (base32hex), the same for every try of one follow-up.
pub fn event_id(followup: &FollowupId) -> String {
    let digest = Sha256::digest(followup.0.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("fu{}", &hex[..32])
}

fn calendar_view(followup: &Followup, user: &User) -> anyhow::Result<SlackView> {
    let draft = followup.current().cloned().unwrap_or_default();
    let start = proposed_start(&draft, followup, user, Utc::now());
    let (title, _) = blocks::fit(&format!("Follow-up: {}", followup.meeting_title), 250);
    let (description, _) = blocks::fit(&draft.summary, 3000);
    Ok(blocks::CALENDAR_EVENT.render_as(
        &Vars::new()
            .set("id", followup.id.0.clone())
            .set("title", title)
            .set("date", start.format("%Y-%m-%d").to_string())
            .set("time", start.format("%H:%M").to_string())
            .set("attendees", draft.attendees.clone())
            .set("description", description)
            .set("tz", user.tz.clone().unwrap_or_else(|| "UTC".to_owned())),
    )?)
}

pub struct CalendarButton;

#[async_trait]
impl Handler for CalendarButton {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let followup = owned(cx).await?;
        let in_modal = callback_id(&cx.payload) == Some("followup_edit");
        if in_modal {
            save_view_edits(cx, &followup).await?;
        }
        let services = &cx.services;
        if let Some(link) = followup.calendar.as_ref().and_then(|c| c.link.as_deref()) {
            cx.tell(&format!(
                "The calendar event for this follow-up is already created: <{}|open it>.",
                blocks::escape(link)
            ))
            .await?;
            return Ok(());
        }
        if followup.current().is_none() {
            return Err(HandlerError::person(
                "This follow-up is still being drafted; I will message you when it is ready.",
            ));
        }
        if services.google.is_none() {
            return Err(HandlerError::person(NoGoogle::NotConfigured.words()));
        }
        if services
            .google_account(cx.tenant.id, cx.user.id)
            .await?
            .is_none()
        {
            let connect = services
                .google_connect_message(
                    cx.tenant.id,
                    cx.user.id,
                    None,
                    "To create calendar events, connect your Google account first, then press \
                     Calendar Event again.",
                )
                .await?;
            cx.tell_content(connect).await?;
            return Ok(());
        }
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        // Saved edits are part of the prefill.
        let followup = services
            .store
            .followup(cx.tenant.id, cx.user.id, &followup.id)
            .await?
            .unwrap_or(followup);
        let view = calendar_view(&followup, &cx.user)?;
        if in_modal {
            services.slack.views_push(&trigger, view).await?;
        } else {
            services.slack.views_open(&trigger, view).await?;
        }
        Ok(())
    }
}

/// What the person asked for, as queued with the job.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EventRequest {
    pub summary: String,
    pub description: String,
    pub start: NaiveDateTime,
    pub minutes: i64,
    pub attendees: Vec<String>,
    pub meet: bool,
    pub invite: bool,
    pub time_zone: String,
}

fn read_request(payload: &Value, user: &User) -> Result<EventRequest, Vec<(&'static str, String)>> {
    let get = |block: &str| state_value(payload, block, "value").unwrap_or_default();
    let mut errors = Vec::new();
    let summary = get("title").trim().to_owned();
    if summary.is_empty() {
        errors.push(("title", "The event needs a title.".to_owned()));
    }
    let date = NaiveDate::parse_from_str(&get("date"), "%Y-%m-%d").ok();
    if date.is_none() {
        errors.push(("date", "Pick a date.".to_owned()));
    }
    let time = NaiveTime::parse_from_str(&get("time"), "%H:%M").ok();
    if time.is_none() {
        errors.push(("time", "Pick a start time.".to_owned()));
    }
    let minutes = get("duration").parse::<i64>().unwrap_or(30).clamp(5, 480);
    let (attendees, typos) = google::parse_recipients(&get("attendees"));
    if !typos.is_empty() {
        let (shown, _) = blocks::fit(&typos.join(", "), 120);
        errors.push(("attendees", format!("Not an email address: {shown}")));
    }
    let ticked: Vec<String> =
        payload["view"]["state"]["values"]["options"]["value"]["selected_options"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["value"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(date), Some(time)) = (date, time) else {
        return Err(errors);
    };
    Ok(EventRequest {
        summary,
        description: get("description"),
        start: date.and_time(time),
        minutes,
        attendees: attendees.into_iter().map(|m| m.email).collect(),
        meet: ticked.iter().any(|t| t == "meet"),
        invite: ticked.iter().any(|t| t == "invite"),
        time_zone: user.tz.clone().unwrap_or_else(|| "UTC".to_owned()),
    })
}

/// How long queueing the event may take inside the ack.
const QUEUE_BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

pub struct CalendarSubmit;

/// Queues the event (durable before the modal closes); false when the follow-up is not
/// the person's.
async fn queue_event(
    services: &Services,
    event: &SlackEvent,
    payload: &Value,
) -> anyhow::Result<Result<(), Vec<(&'static str, String)>>> {
    let (Some(team), Some(slack_user)) = (event.team_id(), event.user_id()) else {
        return Ok(Err(vec![("title", NOT_YOURS.to_owned())]));
    };
    let (tenant, user) = services
        .people
        .resolve(&services.store, services.slack.as_ref(), &team, &slack_user)
        .await?;
    let Some(id) = private_metadata(payload) else {
        return Ok(Err(vec![("title", NOT_YOURS.to_owned())]));
    };
    let Some(followup) = services
        .store
        .followup(tenant.id, user.id, &FollowupId(id.to_owned()))
        .await?
    else {
        return Ok(Err(vec![("title", NOT_YOURS.to_owned())]));
    };
    let request = match read_request(payload, &user) {
        Ok(r) => r,
        Err(errors) => return Ok(Err(errors)),
    };
    services
        .store
        .enqueue_once(
            CALENDAR_EVENT_JOB,
            &serde_json::json!({ "followup": followup.id, "event": request }),
            &format!("calendar:{}", followup.id.0),
            services.config.jobs.max_attempts,
        )
        .await?;
    services.queue.notify();
    Ok(Ok(()))
}

#[async_trait]
impl Handler for CalendarSubmit {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let queued = tokio::time::timeout(QUEUE_BUDGET, queue_event(services, event, payload))
            .await
            .unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "queueing took longer than {QUEUE_BUDGET:?}"
                ))
            });
        match queued {
            Ok(Ok(())) => Ack::Stop(None),
            Ok(Err(errors)) => {
                let errors: Vec<(&str, &str)> =
                    errors.iter().map(|(b, t)| (*b, t.as_str())).collect();
                field_errors(&errors)
            }
            Err(e) => {
                tracing::error!(error = ?e, "could not queue the calendar event");
                field_errors(&[(
                    "title",
                    "Sorry, the event could not be queued just now. Please press Create event \
                     again in a moment.",
                )])
            }
        }
    }

    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        Ok(())
    }
}

#[derive(Deserialize)]
struct Payload {
    followup: FollowupId,
    event: EventRequest,
}

impl ForFollowup for Payload {
    fn followup(&self) -> &FollowupId {
        &self.followup
    }
}

pub struct CreateEvent;

#[async_trait]
impl JobHandler for CreateEvent {
    async fn run(&self, services: &Arc<Services>, job: &Job) -> Result<(), JobError> {
        let (payload, followup, user) = load::<Payload>(services, job).await?;
        if followup.calendar.is_some() {
            return Ok(());
        }
        let Some(google) = &services.google else {
            return Err(JobError::Person(NoGoogle::NotConfigured.words().to_owned()));
        };
        let access = match services.google_access(followup.tenant_id, &user).await? {
            Ok(access) => access,
            Err(no) => return Err(JobError::Person(no.words().to_owned())),
        };
        let r = &payload.event;
        let event = NewEvent {
            id: event_id(&followup.id),
            summary: r.summary.clone(),
            description: r.description.clone(),
            start: r.start,
            end: r.start + Duration::minutes(r.minutes),
            time_zone: r.time_zone.clone(),
            attendees: r.attendees.clone(),
            meet: r.meet,
            invite: r.invite,
        };
        let made = match google.insert_event(&access.token, &event).await {
            Ok(made) => made,
            Err(e) if e.is_transient() => return Err(JobError::Retry(e.into())),
            Err(ApiError::Unauthorized { status: 403, .. }) => {
                return Err(JobError::Person(
                    "Google says the bot may not create events in your calendar (a permission \
                     was not allowed when you connected). Type `/gmail-connect`, allow every \
                     permission, then press Calendar Event again."
                        .to_owned(),
                ));
            }
            Err(e @ ApiError::Unauthorized { .. }) => {
                services
                    .distrust_google_access(followup.tenant_id, user.id)
                    .await?;
                return Err(JobError::Retry(e.into()));
            }
            Err(e) => {
                warn!(error = %e, "Google Calendar refused the event");
                return Err(JobError::Person(
                    "Google Calendar refused it. Check the attendees and the time, then \
                     press Calendar Event again."
                        .to_owned(),
                ));
            }
        };
        services
            .store
            .set_calendar_event(&followup.id, &made.id, &made.html_link)
            .await?;
        services
            .store
            .audit(
                followup.tenant_id,
                Some(user.id),
                "calendar_event",
                &followup.id.0,
                "ok",
                Some(&made.id),
            )
            .await?;
        let mut text = if r.invite {
            "Event created (Google emailed the invitations) for".to_owned()
        } else {
            "Event created (no invitations were emailed) for".to_owned()
        };
        if made.meet_link.is_some() {
            text = text.replacen("Event created", "Event with a Meet link created", 1);
        }
        let message = blocks::FOLLOWUP_RESULT.render_as::<SlackMessageContent>(
            &Vars::new()
                .set("text", text)
                .set("title", followup.meeting_title.clone())
                .set("url", made.html_link.clone())
                .set("label", "Open the event"),
        );
        match message {
            Ok(message) => {
                if let Err(e) = services.dm(&user.slack_user_id, message).await {
                    warn!(error = %e, "the event is created but the DM failed");
                }
            }
            Err(e) => warn!(error = ?e, "could not render Event created"),
        }
        Ok(())
    }

    async fn dead(&self, services: &Arc<Services>, job: &Job, dead: Dead<'_>) {
        report_dead::<Payload>(
            services,
            job,
            dead,
            "calendar_event",
            ("The calendar event", "was not created"),
            "Google kept failing. Press Calendar Event again in a few minutes.",
        )
        .await;
    }
}
