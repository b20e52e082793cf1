//! A meeting as Fathom lists it, and its transcript.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest meeting title shown anywhere.
pub const TITLE_MAX: usize = 200;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Invitee {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_domain: Option<String>,
    #[serde(default)]
    pub is_external: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Summary {
    #[serde(default)]
    pub template_name: Option<String>,
    #[serde(default)]
    pub markdown_formatted: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ActionItem {
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Meeting {
    pub recording_id: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub meeting_title: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub share_url: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub scheduled_start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub scheduled_end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub recording_start_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub recording_end_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub transcript_language: Option<String>,
    #[serde(default)]
    pub calendar_invitees: Vec<Invitee>,
    #[serde(default)]
    pub default_summary: Option<Summary>,
    #[serde(default)]
    pub action_items: Option<Vec<ActionItem>>,
}

impl Meeting {
    /// The title to show, at most `TITLE_MAX` characters (whoever sent the invite wrote it,
    /// at any length; Slack refuses over-long blocks).
    pub fn display_title(&self) -> String {
        let title = self
            .title
            .as_deref()
            .or(self.meeting_title.as_deref())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("Untitled meeting");
        if title.chars().count() <= TITLE_MAX {
            return title.to_owned();
        }
        let mut cut: String = title.chars().take(TITLE_MAX - 1).collect();
        cut.push('…');
        cut
    }

    /// When the meeting started: the recording, else the calendar slot, else creation.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.recording_start_time
            .or(self.scheduled_start_time)
            .or(self.created_at)
    }

    pub fn duration_minutes(&self) -> Option<i64> {
        let start = self.recording_start_time.or(self.scheduled_start_time)?;
        let end = self.recording_end_time.or(self.scheduled_end_time)?;
        let minutes = (end - start).num_seconds().div_euclid(60);
        (minutes >= 0).then_some(minutes.max(1))
    }

    /// Invitees from outside the recorder's company.
    pub fn external_attendees(&self) -> Vec<Invitee> {
        self.calendar_invitees
            .iter()
            .filter(|i| i.is_external.unwrap_or(true))
            .cloned()
            .collect()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct TranscriptLine {
    #[serde(default)]
    pub speaker: Option<Speaker>,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub timestamp: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Speaker {
    #[serde(default)]
    pub display_name: Option<String>,
}
