//! Durable jobs: anything slow or that must survive a restart (LLM drafts, CRM writes,
//! meeting polls) is queued in the database and run by a pool of workers.
//!
//! A job is retried with exponential backoff and jitter, dead-lettered after its attempts run
//! out, and picked up again after a crash (its lease expires; with SQLite, at start). On
//! shutdown a running job gets a grace period to finish, else it is released untouched.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::app::App;
use crate::ids::JobId;
use crate::store::jobs::Job;

pub mod generate;
pub mod poller;

/// How long a claimed job is ours before another worker may take it over.
pub const LEASE: Duration = Duration::from_secs(300);
/// A job running longer than this is stopped and retried (well inside the lease).
pub const TIMEOUT: Duration = Duration::from_secs(240);

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (a provider answered 429/5xx, a timeout).
    #[error(transparent)]
    Retry(anyhow::Error),
    /// Will fail the same way every time: dead-letter at once.
    #[error(transparent)]
    Permanent(anyhow::Error),
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        JobError::Retry(e)
    }
}

#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, app: &Arc<App>, job: &Job) -> Result<(), JobError>;

    /// Called once when the job is dead-lettered, e.g. to tell the person what failed.
    async fn dead(&self, _app: &Arc<App>, _job: &Job, _error: &str) {}
}

#[derive(Default, Clone)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn add(&mut self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.handlers.insert(kind.to_owned(), handler);
    }
}

/// Wakes idle workers when a job is queued by this process.
#[derive(Default)]
pub struct Queue {
    notify: Notify,
}

impl Queue {
    pub fn notify(&self) {
        self.notify.notify_waiters();
    }
}

impl App {
    /// Queues a job (once per `dedupe_key`) and wakes a worker.
    pub async fn enqueue(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        dedupe_key: Option<&str>,
    ) -> anyhow::Result<Option<JobId>> {
        let id = self
            .store
            .enqueue_job(
                kind,
                payload,
                dedupe_key,
                self.config.job_max_attempts,
                None,
            )
            .await?;
        self.queue.notify();
        Ok(id)
    }
}

fn backoff(attempts: i64) -> chrono::Duration {
    let base = 5i64.saturating_mul(1 << attempts.clamp(0, 7)).min(600);
    let jitter = rand::thread_rng().gen_range(0..=base / 2);
    chrono::Duration::seconds(base + jitter)
}

/// Runs `count` workers until `shutdown`.
pub async fn run_workers(
    app: Arc<App>,
    registry: Registry,
    count: usize,
    shutdown: CancellationToken,
) {
    match app.store.requeue_orphaned_jobs().await {
        Ok(0) => {}
        Ok(n) => info!(jobs = n, "requeued jobs cut off by the last stop"),
        Err(e) => warn!(error = %e, "could not requeue orphaned jobs"),
    }
    let registry = Arc::new(registry);
    let workers: Vec<_> = (0..count)
        .map(|n| {
            let worker = format!("{}-{n}", app.instance_id);
            tokio::spawn(worker_loop(
                app.clone(),
                registry.clone(),
                worker,
                shutdown.clone(),
            ))
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}

async fn worker_loop(
    app: Arc<App>,
    registry: Arc<Registry>,
    worker: String,
    shutdown: CancellationToken,
) {
    let idle = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        let job = match app.store.claim_job(&worker, LEASE).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = app.queue.notify.notified() => {}
                    _ = tokio::time::sleep(idle) => {}
                }
                continue;
            }
            Err(e) => {
                warn!(error = %e, "could not claim a job");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(idle * 4) => {}
                }
                continue;
            }
        };
        let span = info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempts);
        run_one(&app, &registry, job, &shutdown)
            .instrument(span)
            .await;
    }
}

async fn run_one(app: &Arc<App>, registry: &Registry, job: Job, shutdown: &CancellationToken) {
    let Some(handler) = registry.handlers.get(&job.kind).cloned() else {
        error!("no handler for this kind of job; dead-lettered");
        let _ = app
            .store
            .fail_job(job.id, &format!("no handler for kind {}", job.kind), None)
            .await;
        metrics::counter!("jobs_total", "kind" => job.kind.clone(), "outcome" => "dead")
            .increment(1);
        return;
    };
    if job.attempts > job.max_attempts {
        finish(
            app,
            &*handler,
            &job,
            Err(JobError::Permanent(anyhow::anyhow!(
                "attempts exhausted (the job was interrupted {} times)",
                job.attempts - 1
            ))),
        )
        .await;
        return;
    }
    let started = std::time::Instant::now();
    // Its own task, so a panic in a handler fails this attempt instead of killing the worker.
    let task = {
        let (handler, app, job) = (handler.clone(), app.clone(), job.clone());
        tokio::spawn(
            async move { handler.run(&app, &job).await }.instrument(tracing::Span::current()),
        )
    };
    let abort = task.abort_handle();
    let work = tokio::time::timeout(TIMEOUT, task);
    tokio::pin!(work);
    let result = tokio::select! {
        result = &mut work => result,
        _ = shutdown.cancelled() => {
            match tokio::time::timeout(app.config.job_shutdown_grace, &mut work).await {
                Ok(result) => result,
                Err(_) => {
                    abort.abort();
                    warn!("still running at shutdown; released for the next start");
                    if let Err(e) = app.store.release_job(job.id).await {
                        error!(error = %e, "could not release the job; its lease will expire");
                    }
                    return;
                }
            }
        }
    };
    metrics::histogram!("job_seconds", "kind" => job.kind.clone())
        .record(started.elapsed().as_secs_f64());
    let result = match result {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(JobError::Retry(anyhow::anyhow!("the job panicked: {join}"))),
        Err(_) => {
            abort.abort();
            Err(JobError::Retry(anyhow::anyhow!(
                "timed out after {} s",
                TIMEOUT.as_secs()
            )))
        }
    };
    finish(app, &*handler, &job, result).await;
}

async fn finish(app: &Arc<App>, handler: &dyn JobHandler, job: &Job, result: Result<(), JobError>) {
    let outcome = match result {
        Ok(()) => match app.store.complete_job(job.id).await {
            Ok(()) => "done",
            Err(e) => {
                error!(error = %e, "job done but not marked so; it may run again");
                "done"
            }
        },
        Err(JobError::Retry(e)) if job.attempts < job.max_attempts => {
            let at = crate::store::now() + backoff(job.attempts);
            warn!(error = ?e, retry_at = %at, "job failed; will retry");
            if let Err(e2) = app
                .store
                .fail_job(job.id, &format!("{e:#}"), Some(at))
                .await
            {
                error!(error = %e2, "could not schedule the retry; the lease will expire");
            }
            "retry"
        }
        Err(JobError::Retry(e) | JobError::Permanent(e)) => {
            let text = format!("{e:#}");
            error!(error = ?e, "job failed for good; dead-lettered");
            if let Err(e2) = app.store.fail_job(job.id, &text, None).await {
                error!(error = %e2, "could not dead-letter the job");
            }
            handler.dead(app, job, &text).await;
            "dead"
        }
    };
    metrics::counter!("jobs_total", "kind" => job.kind.clone(), "outcome" => outcome).increment(1);
}
