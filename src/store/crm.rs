//! CRM writes: a note, a task or a deal update a person asked for, stored with its job in one
//! transaction under an idempotency key, so asking twice (a double click, a Slack retry, a
//! second submit of the same modal) makes one record, and a restart loses none.

use super::{Store, now, on_pool};
use crate::domain::ids::{FollowupId, TenantId, UserId};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CrmWrite {
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub followup_id: Option<FollowupId>,
    pub provider: String,
    pub kind: String,
    pub idem_key: String,
    /// The request as JSON (a `NewNote`, `NewTask` or `DealChange` with what to report).
    pub request: String,
    /// `queued`, `done` or `failed`.
    pub status: String,
    pub external_id: Option<String>,
    pub link: Option<String>,
}

pub struct NewCrmWrite<'a> {
    pub tenant: TenantId,
    pub user: UserId,
    pub followup: Option<&'a FollowupId>,
    pub provider: &'a str,
    pub kind: &'a str,
    pub idem_key: &'a str,
    pub request: &'a serde_json::Value,
    pub job_kind: &'a str,
    pub max_attempts: i32,
}

/// What queueing a write found.
#[derive(Clone, Debug)]
pub enum Queued {
    /// A new write and its job.
    New(String),
    /// The same request was already made (or is on its way): this is it.
    Existing(Box<CrmWrite>),
}

impl Store {
    /// The write and its job in one transaction; an idempotency key seen before returns the
    /// earlier write instead (a failed one is queued again: the person fixed the cause).
    pub async fn queue_crm_write(&self, new: NewCrmWrite<'_>) -> anyhow::Result<Queued> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now();
        let request = new.request.to_string();
        let job_payload = serde_json::json!({ "write": id }).to_string();
        let job_key = format!("crm:{}", new.idem_key);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let earlier: Option<CrmWrite> = sqlx::query_as(
                "SELECT id, tenant_id, user_id, followup_id, provider, kind, idem_key, request,
                        status, external_id, link
                 FROM crm_writes WHERE idem_key = $1",
            )
            .bind(new.idem_key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(earlier) = earlier {
                if earlier.status != "failed" {
                    return Ok(Queued::Existing(Box::new(earlier)));
                }
                sqlx::query("DELETE FROM crm_writes WHERE id = $1")
                    .bind(&earlier.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM jobs WHERE dedupe_key = $1")
                    .bind(&job_key)
                    .execute(&mut *tx)
                    .await?;
            }
            let inserted = sqlx::query(
                "INSERT INTO crm_writes (id, tenant_id, user_id, followup_id, provider, kind,
                                         idem_key, request, status, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9)
                 ON CONFLICT (idem_key) DO NOTHING",
            )
            .bind(&id)
            .bind(new.tenant)
            .bind(new.user)
            .bind(new.followup)
            .bind(new.provider)
            .bind(new.kind)
            .bind(new.idem_key)
            .bind(&request)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                // Another replica's transaction took the key between our read and insert.
                tx.rollback().await?;
                return match self.crm_write_by_key(new.idem_key).await? {
                    Some(earlier) => Ok(Queued::Existing(Box::new(earlier))),
                    None => anyhow::bail!("a CRM write vanished while being queued"),
                };
            }
            sqlx::query(super::jobs::INSERT_JOB)
                .bind(new.job_kind)
                .bind(&job_payload)
                .bind(i64::from(new.max_attempts))
                .bind(now)
                .bind(&job_key)
                .bind(now)
                .bind(crate::workspace::current())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(Queued::New(id))
    }

    pub async fn crm_write(&self, id: &str) -> anyhow::Result<Option<CrmWrite>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, CrmWrite>(
            "SELECT id, tenant_id, user_id, followup_id, provider, kind, idem_key, request,
                    status, external_id, link
             FROM crm_writes WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    pub async fn crm_write_by_key(&self, key: &str) -> anyhow::Result<Option<CrmWrite>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, CrmWrite>(
            "SELECT id, tenant_id, user_id, followup_id, provider, kind, idem_key, request,
                    status, external_id, link
             FROM crm_writes WHERE idem_key = $1",
        )
        .bind(key)
        .fetch_optional(pool)
        .await)?)
    }

    /// The follow-up's writes of one kind that were made (newest first).
    pub async fn crm_writes_of_followup(
        &self,
        followup: &FollowupId,
        kind: &str,
    ) -> anyhow::Result<Vec<CrmWrite>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, CrmWrite>(
            "SELECT id, tenant_id, user_id, followup_id, provider, kind, idem_key, request,
                    status, external_id, link
             FROM crm_writes WHERE followup_id = $1 AND kind = $2 AND status = 'done'
             ORDER BY created_at DESC",
        )
        .bind(followup)
        .bind(kind)
        .fetch_all(pool)
        .await)?)
    }

    /// Records what the CRM made. False when it was already recorded.
    pub async fn finish_crm_write(
        &self,
        id: &str,
        external_id: &str,
        link: Option<&str>,
    ) -> anyhow::Result<bool> {
        let now = now();
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE crm_writes SET status = 'done', external_id = $2, link = $3, done_at = $4
             WHERE id = $1 AND status <> 'done'",
        )
        .bind(id)
        .bind(external_id)
        .bind(link)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(changed > 0)
    }

    pub async fn fail_crm_write(&self, id: &str) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE crm_writes SET status = 'failed' WHERE id = $1 AND status = 'queued'",
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
