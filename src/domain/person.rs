//! Tenants (one per Slack workspace), the people in them, and their settings.

use chrono::{DateTime, FixedOffset, Utc};

use super::ids::{TenantId, UserId};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub slack_team_id: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub slack_user_id: String,
    pub email: Option<String>,
    pub real_name: Option<String>,
    pub tz: Option<String>,
    pub tz_offset_secs: Option<i64>,
    pub profile_refreshed_at: Option<DateTime<Utc>>,
    pub email_tone: String,
    pub language_override: Option<String>,
    pub signature: Option<String>,
    pub default_task_type: String,
    pub default_task_time: String,
    pub meeting_dms: bool,
}

impl User {
    /// The person's UTC offset (from Slack's profile; UTC when unknown).
    pub fn utc_offset(&self) -> FixedOffset {
        utc_offset(self.tz_offset_secs)
    }
}

/// A UTC offset in seconds as a `FixedOffset`; UTC when unknown or out of range.
pub fn utc_offset(secs: Option<i64>) -> FixedOffset {
    secs.and_then(|s| i32::try_from(s).ok())
        .and_then(FixedOffset::east_opt)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

/// What `users.info` told us about a person.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub email: Option<String>,
    pub real_name: Option<String>,
    pub tz: Option<String>,
    pub tz_offset_secs: Option<i64>,
    /// A workspace admin or owner (`is_admin`/`is_owner`): may connect the team's CRM.
    pub is_admin: bool,
}

/// A person's settings, as `/followup-settings` edits them.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub email_tone: String,
    pub language_override: Option<String>,
    pub signature: Option<String>,
    pub default_task_type: String,
    pub default_task_time: String,
    pub meeting_dms: bool,
}
