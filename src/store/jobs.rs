//! The durable job queue. A job is claimed with a lease (`locked_until`); a job whose worker
//! died is claimed again once its lease runs out. PostgreSQL claims with `SKIP LOCKED` so
//! replicas never take the same job; SQLite has a single writer, so one UPDATE is enough.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Store, now, on_pool, truncate};
use crate::domain::ids::JobId;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
    pub max_attempts: i64,
}

/// Queues one job; shared by `enqueue_job` and the writes that queue a job with their row.
pub(super) const INSERT_JOB: &str =
    "INSERT INTO jobs (kind, payload, status, attempts, max_attempts,
                                       run_at, dedupe_key, created_at, updated_at)
     VALUES ($1, $2, 'queued', 0, $3, $4, $5, $6, $6)
     ON CONFLICT (dedupe_key) DO NOTHING
     RETURNING id";

const CLAIM_SQLITE: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1,
        locked_until = $2, locked_by = $3, updated_at = $1
    WHERE id = (SELECT id FROM jobs
                WHERE (status = 'queued' AND run_at <= $1)
                   OR (status = 'running' AND locked_until < $1)
                ORDER BY run_at, id LIMIT 1)
    RETURNING id, kind, payload, attempts, max_attempts";

const CLAIM_POSTGRES: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1,
        locked_until = $2, locked_by = $3, updated_at = $1
    WHERE id = (SELECT id FROM jobs
                WHERE (status = 'queued' AND run_at <= $1)
                   OR (status = 'running' AND locked_until < $1)
                ORDER BY run_at, id LIMIT 1
                FOR UPDATE SKIP LOCKED)
    RETURNING id, kind, payload, attempts, max_attempts";

impl Store {
    /// Queues a job. With a `dedupe_key`, a second job with the same key is not queued
    /// (returns `None`), so double clicks and redeliveries enqueue once.
    pub async fn enqueue_job(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        dedupe_key: Option<&str>,
        max_attempts: i32,
        run_at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Option<JobId>> {
        let now = now();
        let run_at = run_at.map(truncate).unwrap_or(now);
        let row: Option<(JobId,)> = on_pool!(self, pool => sqlx::query_as(INSERT_JOB)
        .bind(kind)
        .bind(payload.to_string())
        .bind(i64::from(max_attempts))
        .bind(run_at)
        .bind(dedupe_key)
        .bind(now)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(id,)| id))
    }

    /// Claims the next due job (or one whose worker's lease ran out) for `worker`.
    pub async fn claim_job(&self, worker: &str, lease: Duration) -> anyhow::Result<Option<Job>> {
        let now = now();
        let until = now + chrono::Duration::from_std(lease)?;
        let job = match self {
            Store::Sqlite(pool) => {
                sqlx::query_as::<_, Job>(CLAIM_SQLITE)
                    .bind(now)
                    .bind(until)
                    .bind(worker)
                    .fetch_optional(pool)
                    .await?
            }
            Store::Postgres(pool) => {
                sqlx::query_as::<_, Job>(CLAIM_POSTGRES)
                    .bind(now)
                    .bind(until)
                    .bind(worker)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(job)
    }

    pub async fn complete_job(&self, id: JobId) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET status = 'done', locked_until = NULL, locked_by = NULL,
                    last_error = NULL, updated_at = $2
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records a failure: the job runs again at `retry_at`, or is dead-lettered when `None`.
    pub async fn fail_job(
        &self,
        id: JobId,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<()> {
        let now = now();
        let (status, run_at) = match retry_at {
            Some(at) => ("queued", truncate(at)),
            None => ("dead", now),
        };
        on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET status = $2, run_at = $3, last_error = $4, locked_until = NULL,
                    locked_by = NULL, updated_at = $5
             WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(run_at)
        .bind(error)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Gives a claimed job back untouched (shutdown): the attempt does not count.
    pub async fn release_job(&self, id: JobId) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = attempts - 1, locked_until = NULL,
                    locked_by = NULL, updated_at = $2
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// With SQLite only one process uses the file, so anything `running` at start was cut off
    /// by a crash: make it due now instead of waiting for its lease to run out.
    pub async fn requeue_orphaned_jobs(&self) -> anyhow::Result<u64> {
        let Store::Sqlite(pool) = self else {
            return Ok(0);
        };
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', locked_until = NULL, locked_by = NULL
             WHERE status = 'running'",
        )
        .execute(pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Jobs by status, for `/metrics`.
    pub async fn job_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, (String, i64)>(
            "SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status",
        )
        .fetch_all(pool)
        .await)?)
    }
}
