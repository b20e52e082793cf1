//! The durable job queue. A job is claimed with a lease (`locked_until`); a job whose worker
//! died is claimed again once its lease runs out. PostgreSQL claims with `SKIP LOCKED` so
//! replicas never take the same job; SQLite has a single writer, so one UPDATE is enough.
//!
//! Every write about a claimed job is fenced: it touches the row only while the claim that
//! read it still holds it (`locked_by` plus the attempt number, which each claim bumps), so a
//! worker whose lease ran out and was taken over cannot complete, fail or release the job
//! under its new owner. On PostgreSQL, lease times come from the database's clock (replicas'
//! clocks may disagree); SQLite is one process with one clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Store, now, on_pool, truncate};
use crate::domain::ids::JobId;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: String,
    /// With `locked_by`, names this claim (each claim bumps it).
    pub attempts: i64,
    pub max_attempts: i64,
    pub locked_by: String,
    /// The Slack workspace it was queued for (`crate::workspace`).
    pub slack_team: Option<String>,
}

/// Queues one job; shared by `enqueue_job` and the writes that queue a job with their row.
pub(super) const INSERT_JOB: &str =
    "INSERT INTO jobs (kind, payload, status, attempts, max_attempts,
                                       run_at, dedupe_key, created_at, updated_at, slack_team)
     VALUES ($1, $2, 'queued', 0, $3, $4, $5, $6, $6, $7)
     ON CONFLICT (dedupe_key) DO NOTHING
     RETURNING id";

const CLAIM_SQLITE: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1,
        locked_until = $2, locked_by = $3, updated_at = $1
    WHERE id = (SELECT id FROM jobs
                WHERE (status = 'queued' AND run_at <= $1)
                   OR (status = 'running' AND locked_until < $1)
                ORDER BY run_at, id LIMIT 1)
    RETURNING id, kind, payload, attempts, max_attempts, locked_by, slack_team";

const CLAIM_POSTGRES: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1,
        locked_until = now() + make_interval(secs => $2), locked_by = $3, updated_at = $1
    WHERE id = (SELECT id FROM jobs
                WHERE (status = 'queued' AND run_at <= now())
                   OR (status = 'running' AND locked_until < now())
                ORDER BY run_at, id LIMIT 1
                FOR UPDATE SKIP LOCKED)
    RETURNING id, kind, payload, attempts, max_attempts, locked_by, slack_team";

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
        .bind(crate::workspace::current())
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(id,)| id))
    }

    /// Queues a person's action once per `dedupe_key`: while a job with the key is queued,
    /// running or done, a second ask gets `None`; one whose earlier job was dead-lettered
    /// (the person fixed the cause and asks again) is queued afresh. One transaction.
    pub async fn enqueue_once(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        dedupe_key: &str,
        max_attempts: i32,
    ) -> anyhow::Result<Option<JobId>> {
        let now = now();
        let payload = payload.to_string();
        let row: Option<(JobId,)> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM jobs WHERE dedupe_key = $1 AND status = 'dead'")
                .bind(dedupe_key)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query_as(INSERT_JOB)
                .bind(kind)
                .bind(&payload)
                .bind(i64::from(max_attempts))
                .bind(now)
                .bind(dedupe_key)
                .bind(now)
                .bind(crate::workspace::current())
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
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
                    .bind(lease.as_secs_f64())
                    .bind(worker)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(job)
    }

    /// Marks a claimed job done; false when this claim no longer holds it.
    pub async fn complete_job(&self, job: &Job) -> anyhow::Result<bool> {
        let now = now();
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET status = 'done', locked_until = NULL, locked_by = NULL,
                    last_error = NULL, updated_at = $2
             WHERE id = $1 AND status = 'running' AND locked_by = $3 AND attempts = $4",
        )
        .bind(job.id)
        .bind(now)
        .bind(&job.locked_by)
        .bind(job.attempts)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Records a failure: the job runs again at `retry_at`, or is dead-lettered when `None`.
    /// False when this claim no longer holds the job.
    pub async fn fail_job(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<bool> {
        let now = now();
        let (status, run_at) = match retry_at {
            Some(at) => ("queued", truncate(at)),
            None => ("dead", now),
        };
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET status = $2, run_at = $3, last_error = $4, locked_until = NULL,
                    locked_by = NULL, updated_at = $5
             WHERE id = $1 AND status = 'running' AND locked_by = $6 AND attempts = $7",
        )
        .bind(job.id)
        .bind(status)
        .bind(run_at)
        .bind(error)
        .bind(now)
        .bind(&job.locked_by)
        .bind(job.attempts)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Gives a claimed job back untouched (shutdown): the attempt does not count. False when
    /// this claim no longer holds it.
    pub async fn release_job(&self, job: &Job) -> anyhow::Result<bool> {
        let now = now();
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = attempts - 1, locked_until = NULL,
                    locked_by = NULL, updated_at = $2
             WHERE id = $1 AND status = 'running' AND locked_by = $3 AND attempts = $4",
        )
        .bind(job.id)
        .bind(now)
        .bind(&job.locked_by)
        .bind(job.attempts)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Extends a long job's lease by `lease` from now; false when this claim lost it.
    pub async fn renew_job_lease(&self, job: &Job, lease: Duration) -> anyhow::Result<bool> {
        let done = match self {
            Store::Sqlite(pool) => {
                let until = now() + chrono::Duration::from_std(lease)?;
                sqlx::query(
                    "UPDATE jobs SET locked_until = $2
                     WHERE id = $1 AND status = 'running' AND locked_by = $3 AND attempts = $4",
                )
                .bind(job.id)
                .bind(until)
                .bind(&job.locked_by)
                .bind(job.attempts)
                .execute(pool)
                .await?
                .rows_affected()
            }
            Store::Postgres(pool) => sqlx::query(
                "UPDATE jobs SET locked_until = now() + make_interval(secs => $2)
                 WHERE id = $1 AND status = 'running' AND locked_by = $3 AND attempts = $4",
            )
            .bind(job.id)
            .bind(lease.as_secs_f64())
            .bind(&job.locked_by)
            .bind(job.attempts)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(done == 1)
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
