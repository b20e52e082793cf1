//! The workers: claim a due job, run its handler in its own task (a panic fails the attempt,
//! not the worker), record the outcome.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::{Dead, JobError, JobHandler, Registry};
use crate::services::Services;
use crate::store::jobs::Job;

/// How long a claimed job is ours before another worker may take it over; a running job
/// renews it every `LEASE / 3`, so a crashed worker's job is taken over within a minute.
pub const LEASE: Duration = Duration::from_secs(60);
/// A job running longer than this is stopped and retried (well inside the lease).
pub const TIMEOUT: Duration = Duration::from_secs(240);

/// Runs `count` workers until `shutdown`.
pub async fn run_workers(
    services: Arc<Services>,
    registry: Registry,
    count: usize,
    shutdown: CancellationToken,
) {
    match services.store.requeue_orphaned_jobs().await {
        Ok(0) => {}
        Ok(n) => info!(jobs = n, "requeued jobs cut off by the last stop"),
        Err(e) => warn!(error = %e, "could not requeue orphaned jobs"),
    }
    let registry = Arc::new(registry);
    let workers: Vec<_> = (0..count)
        .map(|n| {
            let worker = format!("{}-{n}", services.instance_id);
            tokio::spawn(worker_loop(
                services.clone(),
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

/// Runs every job that is due now, one after another, and returns how many ran: a test hook
/// to drain the queue without waiting for the workers' next look.
pub async fn run_due(services: &Arc<Services>, registry: &Registry) -> anyhow::Result<usize> {
    let worker = format!("{}-drain", services.instance_id);
    let never = CancellationToken::new();
    let mut ran = 0;
    while let Some(job) = services.store.claim_job(&worker, LEASE).await? {
        run_one(services, registry, job, &never).await;
        ran += 1;
    }
    Ok(ran)
}

async fn worker_loop(
    services: Arc<Services>,
    registry: Arc<Registry>,
    worker: String,
    shutdown: CancellationToken,
) {
    let idle = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        let job = match services.store.claim_job(&worker, LEASE).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = services.queue.notified() => {}
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
        run_one(&services, &registry, job, &shutdown).await;
    }
}

async fn run_one(
    services: &Arc<Services>,
    registry: &Registry,
    job: Job,
    shutdown: &CancellationToken,
) {
    let span = info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempts);
    // The whole run (the handler, and `dead` telling the person) is for the job's workspace.
    let team = job.slack_team.clone().unwrap_or_default();
    let run = async {
        let Some(handler) = registry.get(&job.kind) else {
            error!("no handler for this kind of job; dead-lettered");
            let _ = services
                .store
                .fail_job(&job, &format!("no handler for kind {}", job.kind), None)
                .await;
            metrics::counter!("jobs_total", "kind" => job.kind.clone(), "outcome" => "dead")
                .increment(1);
            return;
        };
        let uninstalled = match &job.slack_team {
            Some(team) => !services.workspaces.installed(team).await,
            None => false,
        };
        let result = if uninstalled {
            // Its workspace removed the app: nothing of it may call Slack again.
            Err(JobError::Permanent(anyhow::anyhow!(
                "the workspace uninstalled the app"
            )))
        } else if job.attempts > job.max_attempts {
            Err(JobError::Permanent(anyhow::anyhow!(
                "attempts exhausted (the job was interrupted {} times)",
                job.attempts - 1
            )))
        } else {
            match attempt(services, &handler, &job, shutdown).await {
                Some(result) => result,
                None => return, // released at shutdown
            }
        };
        finish(services, &*handler, &job, result).await;
    };
    crate::workspace::within_owned(team, run.instrument(span)).await
}

/// One run of the handler, in its own task, bounded by `TIMEOUT`; `None` when shutdown cut
/// it off and the job was released.
async fn attempt(
    services: &Arc<Services>,
    handler: &Arc<dyn JobHandler>,
    job: &Job,
    shutdown: &CancellationToken,
) -> Option<Result<(), JobError>> {
    let started = std::time::Instant::now();
    let task = {
        let (handler, services, job) = (handler.clone(), services.clone(), job.clone());
        let team = job.slack_team.clone().unwrap_or_default();
        tokio::spawn(
            crate::workspace::within_owned(team, async move { handler.run(&services, &job).await })
                .instrument(tracing::Span::current()),
        )
    };
    let abort = task.abort_handle();
    let work = tokio::time::timeout(TIMEOUT, task);
    tokio::pin!(work);
    let lost = renew_until_lost(services, job);
    tokio::pin!(lost);
    let result = tokio::select! {
        result = &mut work => result,
        () = &mut lost => {
            abort.abort();
            warn!("lost the job's lease to another worker; stopped this run");
            return None;
        }
        _ = shutdown.cancelled() => {
            match tokio::time::timeout(services.config.jobs.shutdown_grace, &mut work).await {
                Ok(result) => result,
                Err(_) => {
                    abort.abort();
                    warn!("still running at shutdown; released for the next start");
                    match services.store.release_job(job).await {
                        Ok(true) => {}
                        Ok(false) => warn!("the job's lease was already taken over"),
                        Err(e) => error!(error = %e, "could not release the job; its lease will expire"),
                    }
                    return None;
                }
            }
        }
    };
    metrics::histogram!("job_seconds", "kind" => job.kind.clone())
        .record(started.elapsed().as_secs_f64());
    Some(match result {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(JobError::Retry(anyhow::anyhow!("the job panicked: {join}"))),
        Err(_) => {
            abort.abort();
            Err(JobError::Retry(anyhow::anyhow!(
                "timed out after {} s",
                TIMEOUT.as_secs()
            )))
        }
    })
}

/// Renews the job's lease every `LEASE / 3`; returns only if another claim took it over.
async fn renew_until_lost(services: &Services, job: &Job) {
    let mut tick = tokio::time::interval(LEASE / 3);
    tick.tick().await; // the claim itself just set the lease
    loop {
        tick.tick().await;
        match services.store.renew_job_lease(job, LEASE).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => warn!(error = %e, "could not renew the job's lease"),
        }
    }
}

/// The lease was lost between the run and its outcome: another worker owns the job now.
fn fenced(written: anyhow::Result<bool>, what: &str) {
    match written {
        Ok(true) => {}
        Ok(false) => warn!("the job's lease was taken over; its new owner records the outcome"),
        Err(e) => error!(error = %e, "could not record that the job {what}"),
    }
}

async fn finish(
    services: &Arc<Services>,
    handler: &dyn JobHandler,
    job: &Job,
    result: Result<(), JobError>,
) {
    let store = &services.store;
    let outcome = match result {
        Ok(()) => {
            fenced(store.complete_job(job).await, "is done; it may run again");
            "done"
        }
        Err(JobError::Retry(e)) if job.attempts < job.max_attempts => {
            let wait = crate::retry::backoff(
                u32::try_from(job.attempts).unwrap_or(0),
                Duration::from_secs(5),
                Duration::from_secs(300),
            );
            let at = crate::store::now()
                + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(5));
            warn!(error = ?e, retry_at = %at, "job failed; will retry");
            fenced(
                store.fail_job(job, &format!("{e:#}"), Some(at)).await,
                "is to be retried; its lease will expire",
            );
            "retry"
        }
        Err(failure) => {
            let (text, for_person) = match &failure {
                JobError::Person(words) => (words.clone(), Some(words.as_str())),
                JobError::Retry(e) | JobError::Permanent(e) => (format!("{e:#}"), None),
            };
            error!(error = ?failure, "job failed for good; dead-lettered");
            match store.fail_job(job, &text, None).await {
                Ok(true) => {
                    let dead = Dead {
                        error: &text,
                        for_person,
                    };
                    handler.dead(services, job, dead).await;
                }
                // Another worker owns the job now; it will report its own outcome.
                other => fenced(other, "failed for good"),
            }
            "dead"
        }
    };
    metrics::counter!("jobs_total", "kind" => job.kind.clone(), "outcome" => outcome).increment(1);
}
