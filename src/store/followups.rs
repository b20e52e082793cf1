//! Follow-ups (one per meeting a person drafts for), the meetings Fathom listed, recordings
//! already announced, and per-person settings.

use chrono::{DateTime, Utc};

use super::{Store, now, on_pool, truncate};
use crate::domain::followup::{Created, Draft, Followup};
use crate::domain::ids::{FollowupId, TenantId, UserId};
use crate::domain::meeting::Meeting;
use crate::domain::person::Settings;

#[derive(sqlx::FromRow)]
struct Row {
    id: FollowupId,
    tenant_id: TenantId,
    user_id: UserId,
    recording_id: i64,
    meeting_title: String,
    meeting_url: Option<String>,
    meeting_started_at: Option<DateTime<Utc>>,
    language: Option<String>,
    status: String,
    generator: Option<String>,
    draft: Option<String>,
    edited: Option<String>,
    dm_channel: Option<String>,
    dm_ts: Option<String>,
    gmail_draft_id: Option<String>,
    gmail_draft_link: Option<String>,
    calendar_event_id: Option<String>,
    calendar_event_link: Option<String>,
    attendees: String,
}

impl From<Row> for Followup {
    fn from(r: Row) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Followup {
            id: r.id,
            tenant_id: r.tenant_id,
            user_id: r.user_id,
            recording_id: r.recording_id,
            meeting_title: r.meeting_title,
            meeting_url: r.meeting_url,
            meeting_started_at: r.meeting_started_at,
            language: r.language,
            status: r.status,
            generator: r.generator,
            draft: parse(r.draft),
            edited: parse(r.edited),
            dm_channel: r.dm_channel,
            dm_ts: r.dm_ts,
            invitees: serde_json::from_str(&r.attendees).unwrap_or_default(),
            gmail: r.gmail_draft_id.map(|id| Created {
                id,
                link: r.gmail_draft_link,
            }),
            calendar: r.calendar_event_id.map(|id| Created {
                id,
                link: r.calendar_event_link,
            }),
        }
    }
}

/// What a new follow-up is made of (see `Store::create_followup`).
pub struct NewFollowup<'a> {
    pub tenant: TenantId,
    pub user: UserId,
    pub meeting: &'a Meeting,
    pub job_kind: &'a str,
    pub max_attempts: i32,
    /// How long the drafting job waits for the caller's "Drafting…" message.
    pub hold: std::time::Duration,
    /// A second ask for the same recording within this window is a double click.
    pub click_window: std::time::Duration,
}

/// Makes a held job due now; written once, run on either backend's connection.
macro_rules! release_held_job {
    ($executor:expr, $job_key:expr, $now:expr) => {
        sqlx::query(
            "UPDATE jobs SET run_at = $2, updated_at = $2
             WHERE dedupe_key = $1 AND status = 'queued' AND run_at > $2",
        )
        .bind($job_key)
        .bind($now)
        .execute($executor)
        .await
    };
}

/// A person whose Fathom is polled for new recordings.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PollTarget {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub slack_user_id: String,
    pub tz_offset_secs: Option<i64>,
    /// The person's Slack workspace.
    pub slack_team_id: String,
}

impl Store {
    /// Creates a follow-up (status drafting), its drafting job and the double-click key, in
    /// one transaction, before anything is shown to the person. `None` when the same person
    /// asked for the same recording within `click_window` (a double click, even on another
    /// replica): nothing is written. The job is held until `hold` from now so the caller can
    /// post "Drafting…" first (`attach_followup_message` releases it); if the caller dies,
    /// the job runs when the hold ends and posts the result itself.
    pub async fn create_followup(
        &self,
        new: NewFollowup<'_>,
    ) -> anyhow::Result<Option<FollowupId>> {
        let id = FollowupId::new();
        let now = now();
        let meeting = new.meeting;
        let attendees = serde_json::to_string(&meeting.external_attendees())?;
        let payload = serde_json::json!({ "followup": id }).to_string();
        let job_key = format!("generate:{id}");
        let click_key = format!("draft:{}:{}", new.user, meeting.recording_id);
        let click_cutoff = now - chrono::Duration::from_std(new.click_window)?;
        let run_at = now + chrono::Duration::from_std(new.hold)?;
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Sliding, not a fixed window: a fresh key refuses, a stale one is taken over.
            let fresh = sqlx::query(
                "INSERT INTO processed_envelopes (dedupe_key, received_at) VALUES ($1, $2)
                 ON CONFLICT (dedupe_key) DO UPDATE SET received_at = excluded.received_at
                 WHERE processed_envelopes.received_at < $3",
            )
            .bind(&click_key)
            .bind(now)
            .bind(click_cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if fresh == 0 {
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO followups (id, tenant_id, user_id, recording_id, meeting_title,
                                        meeting_url, meeting_started_at, attendees, language,
                                        status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'drafting', $10, $10)",
            )
            .bind(&id)
            .bind(new.tenant)
            .bind(new.user)
            .bind(meeting.recording_id)
            .bind(meeting.display_title())
            .bind(meeting.share_url.clone().or_else(|| meeting.url.clone()))
            .bind(meeting.started_at().map(truncate))
            .bind(attendees)
            .bind(meeting.transcript_language.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(super::jobs::INSERT_JOB)
                .bind(new.job_kind)
                .bind(&payload)
                .bind(i64::from(new.max_attempts))
                .bind(run_at)
                .bind(&job_key)
                .bind(now)
                .bind(crate::workspace::current())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(Some(id))
    }

    /// Records the "Drafting…" message a new follow-up's job will update, and releases the
    /// held job to run now. False when the job already posted a message of its own.
    pub async fn attach_followup_message(
        &self,
        id: &FollowupId,
        channel: &str,
        ts: &str,
    ) -> anyhow::Result<bool> {
        let now = now();
        let job_key = format!("generate:{id}");
        let attached = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let attached = sqlx::query(
                "UPDATE followups SET dm_channel = $2, dm_ts = $3, updated_at = $4
                 WHERE id = $1 AND dm_ts IS NULL",
            )
            .bind(id)
            .bind(channel)
            .bind(ts)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            release_held_job!(&mut *tx, &job_key, now)?;
            tx.commit().await?;
            attached
        });
        Ok(attached == 1)
    }

    /// Releases a new follow-up's held job to run now (no "Drafting…" message was posted).
    pub async fn release_followup_job(&self, id: &FollowupId) -> anyhow::Result<()> {
        let now = now();
        let job_key = format!("generate:{id}");
        on_pool!(self, pool => {
            release_held_job!(pool, &job_key, now)?;
        });
        Ok(())
    }

    /// A follow-up, only if it belongs to this person of this tenant.
    pub async fn followup(
        &self,
        tenant: TenantId,
        user: UserId,
        id: &FollowupId,
    ) -> anyhow::Result<Option<Followup>> {
        let row = on_pool!(self, pool => sqlx::query_as::<_, Row>(
            "SELECT id, tenant_id, user_id, recording_id, meeting_title, meeting_url,
                    meeting_started_at, language, status, generator, draft, edited, dm_channel,
                    dm_ts, gmail_draft_id, gmail_draft_link, calendar_event_id,
                    calendar_event_link, attendees
             FROM followups WHERE id = $1 AND tenant_id = $2 AND user_id = $3",
        )
        .bind(id)
        .bind(tenant)
        .bind(user)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(Followup::from))
    }

    /// For jobs, which carry the id they were queued with.
    pub async fn followup_by_id(&self, id: &FollowupId) -> anyhow::Result<Option<Followup>> {
        let row = on_pool!(self, pool => sqlx::query_as::<_, Row>(
            "SELECT id, tenant_id, user_id, recording_id, meeting_title, meeting_url,
                    meeting_started_at, language, status, generator, draft, edited, dm_channel,
                    dm_ts, gmail_draft_id, gmail_draft_link, calendar_event_id,
                    calendar_event_link, attendees
             FROM followups WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(Followup::from))
    }

    pub async fn set_followup_message(
        &self,
        id: &FollowupId,
        channel: &str,
        ts: &str,
    ) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE followups SET dm_channel = $2, dm_ts = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(channel)
        .bind(ts)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_followup_status(
        &self,
        id: &FollowupId,
        status: &str,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE followups SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn save_draft(
        &self,
        id: &FollowupId,
        generator: &str,
        draft: &Draft,
    ) -> anyhow::Result<()> {
        let now = now();
        let draft = serde_json::to_string(draft)?;
        on_pool!(self, pool => sqlx::query(
            "UPDATE followups SET status = 'ready', generator = $2, draft = $3, last_error = NULL,
                    updated_at = $4
             WHERE id = $1",
        )
        .bind(id)
        .bind(generator)
        .bind(draft)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Saves the person's edit; false when the follow-up is not theirs.
    pub async fn save_edits(
        &self,
        tenant: TenantId,
        user: UserId,
        id: &FollowupId,
        edited: &Draft,
    ) -> anyhow::Result<bool> {
        let now = now();
        let edited = serde_json::to_string(edited)?;
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE followups SET edited = $4, updated_at = $5
             WHERE id = $1 AND tenant_id = $2 AND user_id = $3",
        )
        .bind(id)
        .bind(tenant)
        .bind(user)
        .bind(edited)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Remembers meetings as Fathom listed them for this person.
    pub async fn remember_meetings(
        &self,
        user: UserId,
        meetings: &[Meeting],
    ) -> anyhow::Result<()> {
        let now = now();
        for meeting in meetings {
            let data = serde_json::to_string(meeting)?;
            on_pool!(self, pool => sqlx::query(
                "INSERT INTO meetings (user_id, recording_id, data, listed_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id, recording_id) DO UPDATE SET data = excluded.data,
                                                                   listed_at = excluded.listed_at",
            )
            .bind(user)
            .bind(meeting.recording_id)
            .bind(data)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    pub async fn remembered_meeting(
        &self,
        user: UserId,
        recording_id: i64,
    ) -> anyhow::Result<Option<Meeting>> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT data FROM meetings WHERE user_id = $1 AND recording_id = $2",
        )
        .bind(user)
        .bind(recording_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.and_then(|(data,)| serde_json::from_str(&data).ok()))
    }

    /// True the first time a recording is announced to a person (across replicas).
    pub async fn mark_recording_seen(
        &self,
        user: UserId,
        recording_id: i64,
    ) -> anyhow::Result<bool> {
        let now = now();
        let done = on_pool!(self, pool => sqlx::query(
            "INSERT INTO seen_meetings (user_id, recording_id, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, recording_id) DO NOTHING",
        )
        .bind(user)
        .bind(recording_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Counts one refused announcement of a recording; returns how many so far.
    pub async fn record_announce_failure(
        &self,
        user: UserId,
        recording_id: i64,
    ) -> anyhow::Result<i64> {
        let (failures,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "INSERT INTO announce_failures (user_id, recording_id, failures) VALUES ($1, $2, 1)
             ON CONFLICT (user_id, recording_id)
             DO UPDATE SET failures = announce_failures.failures + 1
             RETURNING failures",
        )
        .bind(user)
        .bind(recording_id)
        .fetch_one(pool)
        .await)?;
        Ok(failures)
    }

    /// Undoes `mark_recording_seen` when the announcement could not be sent.
    pub async fn forget_recording_seen(
        &self,
        user: UserId,
        recording_id: i64,
    ) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query(
            "DELETE FROM seen_meetings WHERE user_id = $1 AND recording_id = $2",
        )
        .bind(user)
        .bind(recording_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records the Gmail draft made from a follow-up (its draft id and the link that opens it).
    pub async fn set_gmail_draft(
        &self,
        id: &FollowupId,
        draft_id: &str,
        link: &str,
    ) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE followups SET gmail_draft_id = $2, gmail_draft_link = $3, updated_at = $4
             WHERE id = $1",
        )
        .bind(id)
        .bind(draft_id)
        .bind(link)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records the calendar event made from a follow-up, with its link.
    pub async fn set_calendar_event(
        &self,
        id: &FollowupId,
        event_id: &str,
        link: &str,
    ) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE followups SET calendar_event_id = $2, calendar_event_link = $3, updated_at = $4
             WHERE id = $1",
        )
        .bind(id)
        .bind(event_id)
        .bind(link)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Puts a failed follow-up back to drafting and queues its drafting job, in one
    /// transaction (never "drafting" without a job); false when it was not failed (a second
    /// click on Retry, or already drafting).
    pub async fn retry_followup(
        &self,
        id: &FollowupId,
        job_kind: &str,
        max_attempts: i32,
    ) -> anyhow::Result<bool> {
        let now = now();
        let payload = serde_json::json!({ "followup": id }).to_string();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let flipped = sqlx::query(
                "UPDATE followups SET status = 'drafting', last_error = NULL, updated_at = $2
                 WHERE id = $1 AND status = 'failed'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if flipped == 0 {
                return Ok(false);
            }
            sqlx::query(super::jobs::INSERT_JOB)
                .bind(job_kind)
                .bind(&payload)
                .bind(i64::from(max_attempts))
                .bind(now)
                .bind(None::<String>)
                .bind(now)
                .bind(crate::workspace::current())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Starts the poll clock for a person if it is not running (a reconnect keeps it).
    pub async fn start_fathom_poll(
        &self,
        user: UserId,
        since: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO fathom_polls (user_id, since, next_poll) VALUES ($1, $2, $2)
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user)
        .bind(truncate(since))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn update_settings(&self, user: UserId, s: &Settings) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE users SET email_tone = $2, language_override = $3, signature = $4,
                    default_task_type = $5, default_task_time = $6, meeting_dms = $7,
                    updated_at = $8
             WHERE id = $1",
        )
        .bind(user)
        .bind(&s.email_tone)
        .bind(&s.language_override)
        .bind(&s.signature)
        .bind(&s.default_task_type)
        .bind(&s.default_task_time)
        .bind(s.meeting_dms)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// People with a connected Fathom key and meeting-ready messages on, due for a poll.
    pub async fn due_fathom_polls(&self) -> anyhow::Result<Vec<PollTarget>> {
        let now = now();
        Ok(on_pool!(self, pool => sqlx::query_as::<_, PollTarget>(
            "SELECT u.id AS user_id, u.tenant_id, u.slack_user_id, u.tz_offset_secs,
                    t.slack_team_id
             FROM credentials c
             JOIN users u ON u.id = c.user_id
             JOIN tenants t ON t.id = u.tenant_id
             LEFT JOIN fathom_polls p ON p.user_id = u.id
             WHERE c.provider = 'fathom' AND c.status = 'connected' AND u.meeting_dms
               AND (p.next_poll IS NULL OR p.next_poll <= $1)
             ORDER BY u.id",
        )
        .bind(now)
        .fetch_all(pool)
        .await)?)
    }

    /// Where the last poll of this person's Fathom got to (None: never polled).
    pub async fn fathom_poll_since(&self, user: UserId) -> anyhow::Result<Option<DateTime<Utc>>> {
        let row: Option<(DateTime<Utc>,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT since FROM fathom_polls WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(t,)| t))
    }

    pub async fn set_fathom_poll(
        &self,
        user: UserId,
        since: DateTime<Utc>,
        next_poll: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO fathom_polls (user_id, since, next_poll) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET since = excluded.since,
                                                 next_poll = excluded.next_poll",
        )
        .bind(user)
        .bind(truncate(since))
        .bind(truncate(next_poll))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// A follow-up as App Home lists it: what it is and what was made from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub id: FollowupId,
    pub meeting_title: String,
    pub meeting_started_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// `drafting`, `ready` or `failed`.
    pub status: String,
    pub gmail_draft: bool,
    pub calendar_event: bool,
    pub crm_note: bool,
    pub crm_task: bool,
}

#[derive(sqlx::FromRow)]
struct ListedRow {
    id: FollowupId,
    meeting_title: String,
    meeting_started_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    status: String,
    gmail_draft_id: Option<String>,
    calendar_event_id: Option<String>,
    notes: i64,
    tasks: i64,
}

impl Store {
    /// A person's latest follow-ups, newest first, with what was made from each. Only theirs:
    /// the tenant and the person are both in the query.
    pub async fn latest_followups(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: i64,
    ) -> anyhow::Result<Vec<Listed>> {
        let rows: Vec<ListedRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT f.id, f.meeting_title, f.meeting_started_at, f.created_at, f.status,
                    f.gmail_draft_id, f.calendar_event_id,
                    (SELECT COUNT(*) FROM crm_writes w
                      WHERE w.followup_id = f.id AND w.kind = 'note' AND w.status = 'done') AS notes,
                    (SELECT COUNT(*) FROM crm_writes w
                      WHERE w.followup_id = f.id AND w.kind = 'task' AND w.status = 'done') AS tasks
             FROM followups f
             WHERE f.tenant_id = $1 AND f.user_id = $2
             ORDER BY f.created_at DESC, f.id DESC
             LIMIT $3",
        )
        .bind(tenant)
        .bind(user)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|r| Listed {
                id: r.id,
                meeting_title: r.meeting_title,
                meeting_started_at: r.meeting_started_at,
                created_at: r.created_at,
                status: r.status,
                gmail_draft: r.gmail_draft_id.is_some(),
                calendar_event: r.calendar_event_id.is_some(),
                crm_note: r.notes > 0,
                crm_task: r.tasks > 0,
            })
            .collect())
    }
}
