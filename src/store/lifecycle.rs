//! What the bot keeps, and for how long: the retention purge (everything older than the
//! retention period, the audit log after its own) and a person's "Delete my data".

use chrono::{DateTime, Utc};

use super::{Store, now, on_pool, truncate};
use crate::domain::ids::{TenantId, UserId};

/// How many rows a purge removed, by table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub followups: u64,
    pub crm_writes: u64,
    pub jobs: u64,
    pub envelopes: u64,
    pub meetings: u64,
    pub oauth_states: u64,
    pub audit_log: u64,
    /// Rows of teams with a shorter retention of their own.
    pub team: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.followups
            + self.crm_writes
            + self.jobs
            + self.envelopes
            + self.meetings
            + self.oauth_states
            + self.audit_log
            + self.team
    }
}

/// Runs one statement with one timestamp on either backend's connection; rows removed.
macro_rules! delete_before {
    ($executor:expr, $sql:literal, $before:expr) => {
        sqlx::query($sql)
            .bind($before)
            .execute($executor)
            .await
            .map(|r| r.rows_affected())?
    };
}

/// Runs one statement about one person on either backend's connection; rows removed.
macro_rules! delete_of {
    ($executor:expr, $sql:literal, $user:expr) => {
        sqlx::query($sql)
            .bind($user)
            .execute($executor)
            .await
            .map(|r| r.rows_affected())?
    };
}

impl Store {
    /// Deletes follow-ups (with their CRM writes), finished jobs, delivered envelopes,
    /// listed meetings and used or expired OAuth states older than `before`, and audit
    /// entries older than `audit_before`. Queued and running jobs are never touched.
    pub async fn purge_older_than(
        &self,
        before: DateTime<Utc>,
        audit_before: DateTime<Utc>,
    ) -> anyhow::Result<Purged> {
        let before = truncate(before);
        let audit_before = truncate(audit_before);
        let mut purged = Purged::default();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            purged.crm_writes = delete_before!(
                &mut *tx,
                "DELETE FROM crm_writes WHERE created_at < $1
                    OR followup_id IN (SELECT id FROM followups WHERE created_at < $1)",
                before
            );
            purged.followups =
                delete_before!(&mut *tx, "DELETE FROM followups WHERE created_at < $1", before);
            purged.jobs = delete_before!(
                &mut *tx,
                "DELETE FROM jobs WHERE status IN ('done', 'dead') AND updated_at < $1",
                before
            );
            purged.envelopes = delete_before!(
                &mut *tx,
                "DELETE FROM processed_envelopes WHERE received_at < $1",
                before
            );
            purged.meetings =
                delete_before!(&mut *tx, "DELETE FROM meetings WHERE listed_at < $1", before);
            delete_before!(&mut *tx, "DELETE FROM seen_meetings WHERE seen_at < $1", before);
            // The CRM sync's log: a row per object per run.
            delete_before!(&mut *tx, "DELETE FROM crm_sync_log WHERE finished_at < $1", before);
            // OAuth links live ten minutes: any older than a day is spent.
            let day_ago = truncate(now() - chrono::Duration::days(1));
            purged.oauth_states = delete_before!(
                &mut *tx,
                "DELETE FROM oauth_states WHERE expires_at < $1",
                day_ago
            ) + delete_before!(
                &mut *tx,
                "DELETE FROM slack_install_states WHERE expires_at < $1",
                day_ago
            );
            purged.audit_log = delete_before!(
                &mut *tx,
                "DELETE FROM audit_log WHERE created_at < $1",
                audit_before
            );
            tx.commit().await?;
        });
        Ok(purged)
    }

    /// A team with a shorter retention of its own: its follow-ups (with their CRM writes)
    /// and listed meetings older than `before`. Rows removed.
    pub async fn purge_team_older_than(
        &self,
        tenant: TenantId,
        before: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let before = truncate(before);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut removed = 0;
            for sql in [
                "DELETE FROM crm_writes WHERE tenant_id = $1 AND followup_id IN
                    (SELECT id FROM followups WHERE tenant_id = $1 AND created_at < $2)",
                "DELETE FROM followups WHERE tenant_id = $1 AND created_at < $2",
                "DELETE FROM meetings WHERE listed_at < $2
                    AND user_id IN (SELECT id FROM users WHERE tenant_id = $1)",
            ] {
                removed += sqlx::query(sql)
                    .bind(tenant)
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(removed)
        })
    }

    /// Deletes everything the bot keeps about one person: follow-ups, CRM writes and the
    /// jobs still waiting to act on them, listed and announced meetings, polling state,
    /// webhook rows, every personal credential and OAuth state; their profile and settings are
    /// cleared. The person's row stays (the audit log refers to it by id). What was found
    /// first is returned: the number of follow-ups removed.
    pub async fn delete_person_data(&self, tenant: TenantId, user: UserId) -> anyhow::Result<u64> {
        let now = now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // The jobs of their follow-ups and CRM writes, by the ids in their payloads.
            let ids: Vec<(String,)> = sqlx::query_as(
                "SELECT id FROM followups WHERE tenant_id = $1 AND user_id = $2
                 UNION ALL
                 SELECT id FROM crm_writes WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant)
            .bind(user)
            .fetch_all(&mut *tx)
            .await?;
            for (id,) in &ids {
                sqlx::query("DELETE FROM jobs WHERE status <> 'running' AND payload LIKE $1")
                    .bind(format!("%\"{id}\"%"))
                    .execute(&mut *tx)
                    .await?;
            }
            delete_of!(&mut *tx, "DELETE FROM crm_writes WHERE user_id = $1", user);
            let followups = delete_of!(&mut *tx, "DELETE FROM followups WHERE user_id = $1", user);
            delete_of!(&mut *tx, "DELETE FROM meetings WHERE user_id = $1", user);
            delete_of!(&mut *tx, "DELETE FROM seen_meetings WHERE user_id = $1", user);
            delete_of!(&mut *tx, "DELETE FROM announce_failures WHERE user_id = $1", user);
            delete_of!(&mut *tx, "DELETE FROM fathom_polls WHERE user_id = $1", user);
            delete_of!(&mut *tx, "DELETE FROM fathom_webhooks WHERE user_id = $1", user);
            delete_of!(&mut *tx, "DELETE FROM oauth_states WHERE user_id = $1", user);
            sqlx::query("DELETE FROM credentials WHERE tenant_id = $1 AND subject = $2")
                .bind(tenant)
                .bind(format!("user:{user}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE users SET email = NULL, real_name = NULL, tz = NULL,
                        tz_offset_secs = NULL, profile_refreshed_at = NULL,
                        email_tone = 'professional', language_override = NULL, signature = NULL,
                        default_task_type = 'email', default_task_time = '09:00',
                        meeting_dms = TRUE, updated_at = $2
                 WHERE id = $1",
            )
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(followups)
        })
    }
}
