//! A follow-up: one meeting a person drafts for, its draft and their edits of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{FollowupId, TenantId, UserId};
use super::meeting::Invitee;

/// The job kind that drafts a follow-up (queued with the follow-up, run by its feature).
pub const DRAFT_JOB: &str = "followup.generate";

/// The CRM note's sections.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct CrmNote {
    #[serde(default)]
    pub tech_stack: String,
    #[serde(default)]
    pub pain_points: String,
    #[serde(default)]
    pub impact: String,
    #[serde(default)]
    pub next_steps: String,
    #[serde(default)]
    pub roadblocks: String,
}

impl CrmNote {
    /// As one editable text, section per paragraph.
    pub fn to_text(&self) -> String {
        [
            ("Tech stack", &self.tech_stack),
            ("Pain points", &self.pain_points),
            ("Impact", &self.impact),
            ("Next steps", &self.next_steps),
            ("Roadblocks", &self.roadblocks),
        ]
        .iter()
        .map(|(label, text)| format!("{label}: {}", text.trim()))
        .collect::<Vec<_>>()
        .join("\n\n")
    }
}

/// What the draft (or the person's edit of it) says.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Draft {
    pub subject: String,
    pub body: String,
    pub summary: String,
    /// The CRM note as one text (sections as drafted; free text once edited).
    pub crm_note: String,
    /// External attendees' emails, one per line.
    #[serde(default)]
    pub attendees: String,
    /// A next meeting the call agreed on (RFC 3339), if any.
    #[serde(default)]
    pub next_meeting: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Followup {
    pub id: FollowupId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub recording_id: i64,
    pub meeting_title: String,
    pub meeting_url: Option<String>,
    pub meeting_started_at: Option<DateTime<Utc>>,
    pub language: Option<String>,
    pub status: String,
    /// `ai` or `template`, once drafted.
    pub generator: Option<String>,
    pub draft: Option<Draft>,
    pub edited: Option<Draft>,
    pub dm_channel: Option<String>,
    pub dm_ts: Option<String>,
    /// The meeting's external invitees (names and emails), as Fathom listed them.
    pub invitees: Vec<Invitee>,
    /// The Gmail draft made from it, with the link that opens it.
    pub gmail: Option<Created>,
    /// The calendar event made from it (`link`: the event's page).
    pub calendar: Option<Created>,
}

/// Something made at a provider from a follow-up.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    pub id: String,
    pub link: Option<String>,
}

/// The job kinds that save a follow-up as a Gmail draft and create its calendar event.
pub const GMAIL_DRAFT_JOB: &str = "followup.gmail_draft";
pub const CALENDAR_EVENT_JOB: &str = "followup.calendar_event";

impl Followup {
    /// What every action must use: the person's latest edit, else the draft.
    pub fn current(&self) -> Option<&Draft> {
        self.edited.as_ref().or(self.draft.as_ref())
    }
}
