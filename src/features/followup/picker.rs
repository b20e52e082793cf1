//! The meeting picker: today's recordings first, then earlier days, one page at a time; its
//! submission starts the follow-up.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use super::views::fathom_trouble;
use crate::blocks::{self, Vars, message_modal};
use crate::clients::fathom::MeetingQuery;
use crate::dispatch::{Ack, Ctx, Handler, HandlerError, HandlerResult, field_errors};
use crate::domain::meeting::Meeting;
use crate::domain::person::{Tenant, User};
use crate::services::Services;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{action_value, state_value, view_id};

pub(super) const PICK: &str = "followup_pick";

fn start_of_today(user: &User) -> DateTime<Utc> {
    let tz = user.utc_offset();
    let local = Utc::now().with_timezone(&tz).date_naive();
    tz.from_local_datetime(&local.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
}

/// "HH:MM – title (N min)", with the day in front for earlier days; at most 75 characters.
pub fn meeting_label(meeting: &Meeting, user: &User, with_day: bool) -> String {
    let tz = user.utc_offset();
    let when = meeting
        .started_at()
        .map(|t| {
            let t = t.with_timezone(&tz);
            if with_day {
                t.format("%a %d %b %H:%M").to_string()
            } else {
                t.format("%H:%M").to_string()
            }
        })
        .unwrap_or_else(|| "--:--".to_owned());
    let minutes = meeting
        .duration_minutes()
        .map(|m| format!(" ({m} min)"))
        .unwrap_or_default();
    let head = format!("{when} – ");
    let room = 75usize.saturating_sub(head.chars().count() + minutes.chars().count());
    let (title, _) = blocks::fit(&meeting.display_title(), room.max(8));
    format!("{head}{title}{minutes}")
}

/// Which page of meetings a picker shows; kept in the modal's metadata and the paging button.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Page {
    /// Meetings created before this instant (earlier days); None: today's.
    before: Option<DateTime<Utc>>,
    cursor: Option<String>,
}

/// Renders the picker for one page of meetings.
async fn picker(
    services: &Services,
    tenant: &Tenant,
    user: &User,
    page: &Page,
) -> anyhow::Result<SlackView> {
    let key = match services.fathom_key(tenant.id, user.id).await? {
        Ok(key) => key,
        Err(no_key) => {
            let words = format!(
                "{} Then `/followup` lists your meetings.",
                no_key.fathom_words()
            );
            return Ok(message_modal(PICK, "Follow-up", &words)?);
        }
    };
    let query = MeetingQuery {
        created_after: page.before.is_none().then(|| start_of_today(user)),
        created_before: page.before,
        cursor: page.cursor.clone(),
    };
    let listed = match services.fathom.meetings(&key, &query).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(error = %e, "listing meetings failed");
            return Ok(message_modal(PICK, "Follow-up", &fathom_trouble(&e))?);
        }
    };
    let mut meetings = listed.items;
    meetings.sort_by_key(|m| std::cmp::Reverse(m.started_at()));
    services.store.remember_meetings(user.id, &meetings).await?;

    let earlier = match (page.before, listed.next_cursor) {
        // More of the same range (today's, or the earlier days').
        (before, Some(cursor)) => Some(Page {
            before,
            cursor: Some(cursor),
        }),
        // Today is done: go on to earlier days.
        (None, None) => Some(Page {
            before: Some(start_of_today(user)),
            cursor: None,
        }),
        (Some(_), None) => None,
    };
    let paging: Vec<Value> = match &earlier {
        Some(next) => vec![
            blocks::EARLIER_BUTTON
                .render(&Vars::new().set("cursor", serde_json::to_string(next)?))?,
        ],
        None => Vec::new(),
    };
    let metadata = serde_json::to_string(page)?;
    let with_day = page.before.is_some();
    let heading = match (with_day, meetings.is_empty()) {
        (false, false) => "Your meetings today, newest first. Pick one to draft its follow-up.",
        (false, true) => "No recorded meetings today yet. Look at earlier ones?",
        (true, false) => "Earlier meetings, newest first.",
        (true, true) => "No earlier recorded meetings found.",
    };
    let vars = Vars::new()
        .set("metadata", metadata)
        .set("heading", heading)
        .set("paging", paging);
    if meetings.is_empty() {
        return Ok(blocks::FOLLOWUP_PICKER_EMPTY.render_as(&vars)?);
    }
    let options: Vec<Value> = meetings
        .iter()
        .take(100)
        .map(|m| {
            json!({
                "text": { "type": "plain_text", "text": meeting_label(m, user, with_day) },
                "value": m.recording_id.to_string(),
            })
        })
        .collect();
    Ok(blocks::FOLLOWUP_PICKER.render_as(&vars.set("options", options))?)
}

pub struct FollowupCommand;

#[async_trait]
impl Handler for FollowupCommand {
    fn first_view(&self, _event: &SlackEvent) -> Option<SlackView> {
        message_modal(
            PICK,
            "Follow-up",
            ":hourglass_flowing_sand: Loading your meetings from Fathom…",
        )
        .ok()
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let Some(view_id) = &cx.view_id else {
            return Err(HandlerError::person(
                "Slack did not let me open the window in time. Please type `/followup` again.",
            ));
        };
        show_picker(cx, view_id, &Page::default()).await
    }
}

/// Replaces the loading modal with the picker; on any failure, with an apology rather than a
/// spinner that never ends.
async fn show_picker(cx: &Ctx, view_id: &str, page: &Page) -> HandlerResult {
    match picker(&cx.services, &cx.tenant, &cx.user, page).await {
        Ok(view) => {
            cx.services.slack.views_update(view_id, None, view).await?;
            Ok(())
        }
        Err(e) => {
            let sorry = message_modal(
                PICK,
                "Follow-up",
                "Sorry, something went wrong on our side while loading your meetings. Please try \
                 `/followup` again in a minute.",
            )?;
            if let Err(update) = cx.services.slack.views_update(view_id, None, sorry).await {
                tracing::warn!(error = %update, "could not replace the loading modal");
            }
            Err(HandlerError::Shown(e))
        }
    }
}

/// "Earlier meetings": the next page, in the same modal.
pub struct EarlierMeetings;

#[async_trait]
impl Handler for EarlierMeetings {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let view_id = view_id(&cx.payload).context("the button was not in a modal")?;
        let page: Page = action_value(&cx.payload)
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        let loading = message_modal(
            PICK,
            "Follow-up",
            ":hourglass_flowing_sand: Loading earlier meetings…",
        )?;
        cx.services
            .slack
            .views_update(view_id, None, loading)
            .await?;
        show_picker(cx, view_id, &page).await
    }
}

/// The picker's submission: close the modal, draft in the background.
pub struct PickSubmit;

#[async_trait]
impl Handler for PickSubmit {
    async fn ack(&self, _services: &Services, _event: &SlackEvent, payload: &Value) -> Ack {
        if payload["view"]["state"]["values"]["meeting"].is_null() {
            // The modal showed a message (no key, Fathom trouble): just close it.
            return Ack::Stop(None);
        }
        match state_value(payload, "meeting", "recording") {
            Some(_) => Ack::Continue(None),
            None => field_errors(&[("meeting", "Pick a meeting first.")]),
        }
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let recording: i64 = state_value(&cx.payload, "meeting", "recording")
            .and_then(|v| v.parse().ok())
            .context("no meeting picked")?;
        cx.services
            .start_followup(&cx.tenant, &cx.user, recording)
            .await?
            .map_err(HandlerError::Person)
    }
}
