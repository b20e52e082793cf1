//! `/followup`: pick a Fathom meeting, get a drafted follow-up in your DM, view and edit it,
//! and act on it. Also the buttons of the meeting-ready DM.
//!
//! Every button carries a follow-up id (or a recording id); each handler first checks the
//! acting person owns it.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use super::{Ack, Ctx, Handler, UserError, action_value, field_errors, message_modal, state_value};
use crate::app::App;
use crate::blocks::{self, Vars};
use crate::clients::ApiError;
use crate::clients::fathom::{Meeting, MeetingQuery};
use crate::ids::FollowupId;
use crate::slack::envelope::SlackEvent;
use crate::store::credentials::Subject;
use crate::store::followups::{Draft, Followup};
use crate::store::tenants::{Tenant, User};

pub const GENERATE_JOB: &str = "followup.generate";
const PICK: &str = "followup_pick";
const NOT_YOURS: &str = "This follow-up belongs to someone else, so I can't open or change it.";

/// The person's UTC offset (from Slack's profile; UTC when unknown).
pub fn offset(user: &User) -> FixedOffset {
    user.tz_offset_secs
        .and_then(|s| i32::try_from(s).ok())
        .and_then(FixedOffset::east_opt)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

fn start_of_today(user: &User) -> DateTime<Utc> {
    let tz = offset(user);
    let local = Utc::now().with_timezone(&tz).date_naive();
    tz.from_local_datetime(&local.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
}

/// "HH:MM – title (N min)", with the day in front for earlier days; at most 75 characters.
pub fn meeting_label(meeting: &Meeting, user: &User, with_day: bool) -> String {
    let tz = offset(user);
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

/// What people see when Fathom fails, per kind of failure.
pub fn fathom_trouble(e: &ApiError) -> String {
    match e {
        ApiError::Unauthorized { .. } => {
            "Fathom did not accept your API key any more. Connect it again with `/fathom-connect`."
                .to_owned()
        }
        ApiError::RateLimited { retry_after, .. } => format!(
            "Fathom is busy (too many requests). Please try again in {} seconds.",
            retry_after.map_or(60, |d| d.as_secs().max(1))
        ),
        ApiError::Timeout { .. } | ApiError::Unavailable { .. } | ApiError::Transport { .. } => {
            "Fathom is not answering right now. Please try again in a minute.".to_owned()
        }
        _ => "Fathom sent an answer I could not read. Please try again; if it keeps happening, \
              tell your admin."
            .to_owned(),
    }
}

async fn fathom_key(
    app: &App,
    tenant: &Tenant,
    user: &User,
) -> anyhow::Result<Option<secrecy::SecretString>> {
    Ok(app
        .store
        .credential(
            &app.cipher,
            tenant.id,
            Subject::User(user.id),
            super::connect::FATHOM,
        )
        .await?
        .map(|c| c.secret))
}

/// Renders the picker for one page of meetings.
async fn picker(app: &App, tenant: &Tenant, user: &User, page: &Page) -> anyhow::Result<SlackView> {
    let Some(key) = fathom_key(app, tenant, user).await? else {
        return message_modal(
            PICK,
            "Follow-up",
            "Connect your Fathom account first: type `/fathom-connect` and paste your API key \
             (Fathom → Settings → API Access). Then `/followup` lists your meetings.",
        );
    };
    let query = MeetingQuery {
        created_after: page.before.is_none().then(|| start_of_today(user)),
        created_before: page.before,
        cursor: page.cursor.clone(),
    };
    let listed = match app.fathom.meetings(&key, &query).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(error = %e, "listing meetings failed");
            return message_modal(PICK, "Follow-up", &fathom_trouble(&e));
        }
    };
    let mut meetings = listed.items;
    meetings.sort_by_key(|m| std::cmp::Reverse(m.started_at()));
    app.store.remember_meetings(user.id, &meetings).await?;

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

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> anyhow::Result<()> {
        let Some(view_id) = &cx.view_id else {
            return Err(UserError(
                "Slack did not let me open the window in time. Please type `/followup` again."
                    .to_owned(),
            )
            .into());
        };
        show_picker(cx, view_id, &Page::default()).await
    }
}

/// Replaces the loading modal with the picker; on any failure, with an apology rather than a
/// spinner that never ends.
async fn show_picker(cx: &Ctx, view_id: &str, page: &Page) -> anyhow::Result<()> {
    match picker(&cx.app, &cx.tenant, &cx.user, page).await {
        Ok(view) => {
            cx.app.slack.views_update(view_id, None, view).await?;
            Ok(())
        }
        Err(e) => {
            let sorry = message_modal(
                PICK,
                "Follow-up",
                "Sorry, something went wrong on our side while loading your meetings. Please try \
                 `/followup` again in a minute.",
            )?;
            if let Err(update) = cx.app.slack.views_update(view_id, None, sorry).await {
                tracing::warn!(error = %update, "could not replace the loading modal");
            }
            Err(e.context(super::Reported))
        }
    }
}

/// "Earlier meetings": the next page, in the same modal.
pub struct EarlierMeetings;

#[async_trait]
impl Handler for EarlierMeetings {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> anyhow::Result<()> {
        let view_id = cx.payload["view"]["id"]
            .as_str()
            .context("the button was not in a modal")?;
        let page: Page = action_value(&cx.payload)
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        let loading = message_modal(
            PICK,
            "Follow-up",
            ":hourglass_flowing_sand: Loading earlier meetings…",
        )?;
        cx.app.slack.views_update(view_id, None, loading).await?;
        show_picker(cx, view_id, &page).await
    }
}

/// The picker's submission: close the modal, draft in the background.
pub struct PickSubmit;

#[async_trait]
impl Handler for PickSubmit {
    async fn ack(&self, _app: &App, _event: &SlackEvent, payload: &Value) -> Ack {
        if payload["view"]["state"]["values"]["meeting"].is_null() {
            // The modal showed a message (no key, Fathom trouble): just close it.
            return Ack::Stop(None);
        }
        match state_value(payload, "meeting", "recording") {
            Some(_) => Ack::Continue(None),
            None => field_errors(&[("meeting", "Pick a meeting first.")]),
        }
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> anyhow::Result<()> {
        let recording: i64 = state_value(&cx.payload, "meeting", "recording")
            .and_then(|v| v.parse().ok())
            .context("no meeting picked")?;
        start_followup(cx, recording).await
    }
}

/// Creates the follow-up, posts "Drafting…" in the person's DM and queues the draft.
async fn start_followup(cx: &Ctx, recording: i64) -> anyhow::Result<()> {
    let meeting = cx
        .app
        .store
        .remembered_meeting(cx.user.id, recording)
        .await?
        .ok_or_else(|| {
            UserError(
                "I can't find that meeting among yours any more. Type `/followup` to pick it again."
                    .to_owned(),
            )
        })?;
    // A double click (even one reaching another replica) must not draft twice: the first to
    // record this key within the same two-minute window drafts.
    let window = Utc::now().timestamp().div_euclid(120);
    let key = format!("draft:{}:{recording}:{window}", cx.user.id);
    if !cx.app.store.first_delivery(&key).await? {
        return Err(UserError(format!(
            "I started the follow-up for {} a moment ago; it is (or will shortly be) in your DM.",
            meeting.display_title()
        ))
        .into());
    }
    // "Drafting…" first, then the row and its job together (one transaction, carrying the
    // message to update): a follow-up never waits on a job that does not exist, and the job
    // never races the handler for the message. If Slack refuses the post, the job posts its
    // own message when the draft is ready.
    let drafting: SlackMessageContent =
        blocks::FOLLOWUP_DRAFTING.render_as(&Vars::new().set("title", meeting.display_title()))?;
    let message = async {
        let dm = cx.app.slack.open_dm(&cx.user.slack_user_id).await?;
        let ts = cx.app.slack.chat_post(&dm, drafting).await?;
        anyhow::Ok((dm, ts))
    }
    .await;
    let message = match message {
        Ok(message) => Some(message),
        Err(e) => {
            tracing::warn!(error = %e, "could not post Drafting…; the job will post the result");
            None
        }
    };
    cx.app
        .store
        .create_followup(
            cx.tenant.id,
            cx.user.id,
            &meeting,
            message.as_ref().map(|(dm, ts)| (dm.as_str(), ts.as_str())),
            GENERATE_JOB,
            cx.app.config.job_max_attempts,
        )
        .await?;
    cx.app.queue.notify();
    Ok(())
}

/// The follow-up a button points at, if the acting person owns it.
async fn owned(cx: &Ctx) -> anyhow::Result<Followup> {
    let id = action_value(&cx.payload)
        .or_else(|| {
            cx.payload["view"]["private_metadata"]
                .as_str()
                .map(str::to_owned)
        })
        .context("the button carries no follow-up id")?;
    cx.app
        .store
        .followup(cx.tenant.id, cx.user.id, &FollowupId(id))
        .await?
        .ok_or_else(|| UserError(NOT_YOURS.to_owned()).into())
}

/// The text fields of the edit modal, from the payload's live view state.
fn edited_draft(payload: &Value, previous: Option<&Draft>) -> Draft {
    let get = |block: &str| state_value(payload, block, "value").unwrap_or_default();
    Draft {
        subject: get("subject").trim().to_owned(),
        body: get("body"),
        summary: get("summary"),
        crm_note: get("crm_note"),
        attendees: get("attendees"),
        next_meeting: previous.and_then(|d| d.next_meeting.clone()),
    }
}

/// Renders "Edit Follow-up" with the current text, cut visibly where Slack's limits demand.
pub fn edit_view(followup: &Followup, user: &User) -> anyhow::Result<SlackView> {
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
    let when = followup
        .meeting_started_at
        .map(|t| {
            t.with_timezone(&offset(user))
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

/// "View & Edit".
pub struct ViewFollowup;

#[async_trait]
impl Handler for ViewFollowup {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> anyhow::Result<()> {
        let followup = owned(cx).await?;
        if followup.current().is_none() {
            return Err(UserError(
                "This follow-up is still being drafted; I will message you when it is ready."
                    .to_owned(),
            )
            .into());
        }
        let trigger = match &event {
            SlackEvent::Interaction(i) => match i.as_ref() {
                SlackInteractionEvent::BlockActions(a) => a.trigger_id.to_string(),
                _ => anyhow::bail!("not a button"),
            },
            _ => anyhow::bail!("not a button"),
        };
        cx.app
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
    app: &App,
    event: &SlackEvent,
    payload: &Value,
) -> anyhow::Result<bool> {
    let (Some(team), Some(slack_user)) = (event.team_id(), event.user_id()) else {
        return Ok(false);
    };
    let Some(id) = payload["view"]["private_metadata"].as_str() else {
        return Ok(false);
    };
    let tenant = app.store.ensure_tenant(&team).await?;
    let user = app.store.ensure_user(tenant.id, &slack_user).await?;
    let Some(followup) = app
        .store
        .followup(tenant.id, user.id, &FollowupId(id.to_owned()))
        .await?
    else {
        return Ok(false);
    };
    let draft = edited_draft(payload, followup.current());
    app.store
        .save_edits(tenant.id, user.id, &followup.id, &draft)
        .await
}

#[async_trait]
impl Handler for EditSubmit {
    async fn ack(&self, app: &App, event: &SlackEvent, payload: &Value) -> Ack {
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
        match save_from_submission(app, event, payload).await {
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

    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> anyhow::Result<()> {
        Ok(())
    }
}

async fn save_view_edits(cx: &Ctx, followup: &Followup) -> anyhow::Result<()> {
    let draft = edited_draft(&cx.payload, followup.current());
    if draft.subject.is_empty() && draft.body.trim().is_empty() {
        return Ok(());
    }
    if !cx
        .app
        .store
        .save_edits(cx.tenant.id, cx.user.id, &followup.id, &draft)
        .await?
    {
        return Err(UserError(NOT_YOURS.to_owned()).into());
    }
    Ok(())
}

/// What a follow-up action needs that this version does not have yet.
#[derive(Clone, Copy)]
pub enum Pending {
    Gmail,
    Calendar,
    CrmNote,
    Deals,
    Task,
}

impl Pending {
    fn answer(self) -> &'static str {
        match self {
            Pending::Gmail => {
                "Gmail is not connected yet: saving drafts to your mailbox comes with `/gmail-connect`, which this version does not have. Your text is saved here; copy it from *View & Edit* meanwhile."
            }
            Pending::Calendar => {
                "Google Calendar is not connected yet: proposing events comes with `/gmail-connect`, which this version does not have."
            }
            Pending::CrmNote => {
                "No CRM is connected yet: notes go to the CRM once `/crono-connect` is available in a coming version. Your CRM note is saved with the follow-up."
            }
            Pending::Deals => {
                "No CRM is connected yet: open deals show here once `/crono-connect` is available in a coming version."
            }
            Pending::Task => {
                "No CRM is connected yet: tasks can be created once `/crono-connect` is available in a coming version."
            }
        }
    }
}

/// The follow-up's action buttons, until their integrations land: ownership first, edits made
/// in the open modal saved, then an honest answer.
pub struct FollowupAction(pub Pending);

#[async_trait]
impl Handler for FollowupAction {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> anyhow::Result<()> {
        let followup = owned(cx).await?;
        if cx.payload["view"]["callback_id"].as_str() == Some("followup_edit") {
            save_view_edits(cx, &followup).await?;
        }
        cx.tell(self.0.answer()).await
    }
}

/// "Retry" on a failed draft.
pub struct RetryFollowup;

#[async_trait]
impl Handler for RetryFollowup {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> anyhow::Result<()> {
        let followup = owned(cx).await?;
        if !cx.app.store.restart_followup(&followup.id).await? {
            return Ok(()); // a second click, or it is not failed
        }
        if let (Some(channel), Some(ts)) = (&followup.dm_channel, &followup.dm_ts) {
            let drafting: SlackMessageContent = blocks::FOLLOWUP_DRAFTING
                .render_as(&Vars::new().set("title", followup.meeting_title.clone()))?;
            cx.app.slack.chat_update(channel, ts, drafting).await?;
        }
        cx.app
            .enqueue(GENERATE_JOB, &json!({ "followup": followup.id }), None)
            .await?;
        Ok(())
    }
}

/// The meeting-ready DM's buttons carry a recording id; only the person whose Fathom listed
/// it can use them.
pub struct RecordingAction(pub Option<Pending>);

#[async_trait]
impl Handler for RecordingAction {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> anyhow::Result<()> {
        let recording: i64 = action_value(&cx.payload)
            .and_then(|v| v.parse().ok())
            .context("the button carries no recording id")?;
        if cx
            .app
            .store
            .remembered_meeting(cx.user.id, recording)
            .await?
            .is_none()
        {
            return Err(UserError(
                "This recording belongs to someone else, so I can't act on it.".to_owned(),
            )
            .into());
        }
        match self.0 {
            None => start_followup(cx, recording).await,
            Some(pending) => cx.tell(pending.answer()).await,
        }
    }
}

/// The "Follow-up ready" message.
pub fn ready_message(followup: &Followup, note: &str) -> anyhow::Result<SlackMessageContent> {
    let summary = followup
        .current()
        .map(|d| d.summary.clone())
        .unwrap_or_default();
    let (summary, _) = blocks::fit(&summary, 2500);
    Ok(blocks::FOLLOWUP_READY.render_as(
        &Vars::new()
            .set("id", followup.id.0.clone())
            .set("title", followup.meeting_title.clone())
            .set("summary", summary)
            .set("generator_note", note),
    )?)
}
