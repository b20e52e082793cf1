//! Tenants (one per Slack workspace), the people in them, and their settings.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

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

    /// A wall-clock time in the person's Slack time zone as UTC, with the zone's rules on
    /// that date (summer time included); their current offset when the zone is unknown. A
    /// time that does not exist (skipped by a clock change) moves an hour later.
    pub fn local_to_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self
            .tz
            .as_deref()
            .and_then(|t| t.parse::<chrono_tz::Tz>().ok())
        {
            Some(zone) => zone
                .from_local_datetime(&local)
                .earliest()
                .or_else(|| {
                    zone.from_local_datetime(&(local + chrono::TimeDelta::hours(1)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc)),
            None => self
                .utc_offset()
                .from_local_datetime(&local)
                .single()
                .map(|t| t.with_timezone(&Utc)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn person(tz: Option<&str>, offset: Option<i64>) -> User {
        User {
            id: UserId(1),
            tenant_id: TenantId(1),
            slack_user_id: "U1".into(),
            email: None,
            real_name: None,
            tz: tz.map(Into::into),
            tz_offset_secs: offset,
            profile_refreshed_at: None,
            email_tone: "professional".into(),
            language_override: None,
            signature: None,
            default_task_type: "email".into(),
            default_task_time: "09:00".into(),
            meeting_dms: true,
        }
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn local_times_use_the_zone_rules_of_that_date() {
        // Slack says +01:00 today (winter), but a July date in Rome is +02:00.
        let rome = person(Some("Europe/Rome"), Some(3600));
        assert_eq!(
            rome.local_to_utc(at("2027-07-01 09:00"))
                .unwrap()
                .to_rfc3339(),
            "2027-07-01T07:00:00+00:00"
        );
        assert_eq!(
            rome.local_to_utc(at("2027-01-15 09:00"))
                .unwrap()
                .to_rfc3339(),
            "2027-01-15T08:00:00+00:00"
        );
        // 02:30 on the spring-forward night does not exist: an hour later.
        assert_eq!(
            rome.local_to_utc(at("2027-03-28 02:30"))
                .unwrap()
                .to_rfc3339(),
            "2027-03-28T01:30:00+00:00"
        );
        let unknown = person(None, Some(-5 * 3600));
        assert_eq!(
            unknown
                .local_to_utc(at("2027-07-01 09:00"))
                .unwrap()
                .to_rfc3339(),
            "2027-07-01T14:00:00+00:00"
        );
    }
}
