//! The durable job queue run by the real bot's workers, on both backends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::fake_slack::FakeSlack;
use crate::support::{TestDb, bot};
use async_trait::async_trait;
use followup_bot::domain::ids::JobId;
use followup_bot::jobs::{Dead, JobError, JobHandler};
use followup_bot::registry::Features;
use followup_bot::services::Services;
use followup_bot::startup::Running;
use followup_bot::store::Store;
use followup_bot::store::jobs::Job;
use serde_json::json;

#[derive(Clone, Copy)]
enum Behaviour {
    Succeed,
    FailRetry,
    FailPermanent,
    Panic,
    Sleep(Duration),
}

#[derive(Clone)]
struct Recorder {
    behaviour: Behaviour,
    runs: Arc<Mutex<Vec<(JobId, i64)>>>,
    dead: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            runs: Arc::default(),
            dead: Arc::default(),
        }
    }
}

#[async_trait]
impl JobHandler for Recorder {
    async fn run(&self, _app: &Arc<Services>, job: &Job) -> Result<(), JobError> {
        self.runs.lock().unwrap().push((job.id, job.attempts));
        match self.behaviour {
            Behaviour::Succeed => Ok(()),
            Behaviour::FailRetry => Err(JobError::Retry(anyhow::anyhow!("Fathom answered 503"))),
            Behaviour::FailPermanent => Err(JobError::Permanent(anyhow::anyhow!("bad payload"))),
            Behaviour::Panic => panic!("a bug in a job handler"),
            Behaviour::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
        }
    }

    async fn dead(&self, _services: &Arc<Services>, _job: &Job, dead: Dead<'_>) {
        self.dead.lock().unwrap().push(dead.error.to_owned());
    }
}

async fn start(
    slack: &FakeSlack,
    db: &TestDb,
    recorder: &Recorder,
    extra: &[(&str, &str)],
) -> Running {
    let mut features = Features::new(followup_bot::features::fallback::Unknown);
    features.jobs.add("test.job", Arc::new(recorder.clone()));
    let mut settings = bot::settings(slack, db);
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    bot::start_with(bot::config(&settings), features, slack).await
}

async fn wait_status(store: &Store, id: JobId, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let job = crate::support::job(store, id).await;
        if job.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} stayed {} ({:?})",
            job.status,
            job.last_error
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

both_backends!(
    a_queued_job_runs_once,
    a_failing_job_is_retried_later,
    a_permanent_failure_is_dead_lettered_and_reported,
    a_job_cut_off_by_a_crash_runs_after_restart,
    shutdown_lets_a_short_job_finish,
    shutdown_releases_a_long_job_untouched,
    a_panicking_job_fails_its_attempt_and_the_worker_goes_on,
);

async fn a_queued_job_runs_once(store: Store, db: &TestDb) {
    let slack = FakeSlack::start().await;
    let recorder = Recorder::new(Behaviour::Succeed);
    let running = start(&slack, db, &recorder, &[]).await;
    let id = running
        .services
        .enqueue("test.job", &json!({"n": 1}), Some("k1"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        running
            .services
            .enqueue("test.job", &json!({"n": 1}), Some("k1"))
            .await
            .unwrap()
            .is_none()
    );
    wait_status(&store, id, "done").await;
    assert_eq!(*recorder.runs.lock().unwrap(), vec![(id, 1)]);
    running.shutdown();
    running.stopped().await;
}

async fn a_failing_job_is_retried_later(store: Store, db: &TestDb) {
    let slack = FakeSlack::start().await;
    let recorder = Recorder::new(Behaviour::FailRetry);
    let running = start(&slack, db, &recorder, &[]).await;
    let id = running
        .services
        .enqueue("test.job", &json!({}), None)
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let job = crate::support::job(&store, id).await;
        if job.last_error.is_some() {
            break job;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job.status, "queued");
    assert_eq!(job.attempts, 1);
    assert!(job.last_error.unwrap().contains("503"));
    assert!(
        job.run_at > followup_bot::store::now() + chrono::Duration::seconds(5),
        "backed off: {}",
        job.run_at
    );
    running.shutdown();
    running.stopped().await;
}

async fn a_permanent_failure_is_dead_lettered_and_reported(store: Store, db: &TestDb) {
    let slack = FakeSlack::start().await;
    let recorder = Recorder::new(Behaviour::FailPermanent);
    let running = start(&slack, db, &recorder, &[]).await;
    let id = running
        .services
        .enqueue("test.job", &json!({}), None)
        .await
        .unwrap()
        .unwrap();
    wait_status(&store, id, "dead").await;
    assert_eq!(recorder.dead.lock().unwrap().len(), 1);
    // A kind nobody handles is dead-lettered rather than retried for ever.
    let orphan = running
        .services
        .enqueue("no.such.kind", &json!({}), None)
        .await
        .unwrap()
        .unwrap();
    wait_status(&store, orphan, "dead").await;
    running.shutdown();
    running.stopped().await;
}

async fn a_job_cut_off_by_a_crash_runs_after_restart(store: Store, db: &TestDb) {
    // A previous process claimed the job and died mid-run (its lease runs out in 1 s).
    let id = store
        .enqueue_job("test.job", &json!({}), None, 5, None)
        .await
        .unwrap()
        .unwrap();
    store
        .claim_job("crashed-process", Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    let slack = FakeSlack::start().await;
    let recorder = Recorder::new(Behaviour::Succeed);
    let running = start(&slack, db, &recorder, &[]).await;
    wait_status(&store, id, "done").await;
    let runs = recorder.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1, "delivered once");
    running.shutdown();
    running.stopped().await;
}

async fn shutdown_lets_a_short_job_finish(store: Store, db: &TestDb) {
    let slack = FakeSlack::start().await;
    let recorder = Recorder::new(Behaviour::Sleep(Duration::from_millis(500)));
    let running = start(&slack, db, &recorder, &[]).await;
    let id = running
        .services
        .enqueue("test.job", &json!({}), None)
        .await
        .unwrap()
        .unwrap();
    wait_status(&store, id, "running").await;
    running.shutdown();
    running.stopped().await;
    let store = db.store().await;
    assert_eq!(crate::support::job(&store, id).await.status, "done");
}

async fn shutdown_releases_a_long_job_untouched(store: Store, db: &TestDb) {
    let slack = FakeSlack::start().await;
    let recorder = Recorder::new(Behaviour::Sleep(Duration::from_secs(60)));
    let running = start(&slack, db, &recorder, &[("JOB_SHUTDOWN_GRACE_SECS", "1")]).await;
    let id = running
        .services
        .enqueue("test.job", &json!({}), None)
        .await
        .unwrap()
        .unwrap();
    wait_status(&store, id, "running").await;
    let stopping = Instant::now();
    running.shutdown();
    running.stopped().await;
    assert!(stopping.elapsed() < Duration::from_secs(8));
    let store = db.store().await;
    let job = crate::support::job(&store, id).await;
    assert_eq!(
        (job.status.as_str(), job.attempts),
        ("queued", 0),
        "released for the next start, the attempt not counted"
    );
}

async fn a_panicking_job_fails_its_attempt_and_the_worker_goes_on(store: Store, db: &TestDb) {
    let slack = FakeSlack::start().await;
    let recorder = Recorder::new(Behaviour::Panic);
    let running = start(&slack, db, &recorder, &[("JOB_WORKERS", "1")]).await;
    let first = running
        .services
        .enqueue("test.job", &json!({}), None)
        .await
        .unwrap()
        .unwrap();
    let second = running
        .services
        .enqueue("test.job", &json!({}), None)
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = crate::support::job(&store, first).await;
        let b = crate::support::job(&store, second).await;
        if let (Some(error), Some(_)) = (&a.last_error, &b.last_error) {
            assert!(error.contains("panicked"));
            assert_eq!(a.status, "queued", "retried later");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the one worker stopped after a panic"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn the_drain_hook_runs_due_jobs_without_workers() {
    let slack = FakeSlack::start().await;
    let db = TestDb::new(crate::support::Backend::Sqlite).await;
    let store = db.store().await;
    let recorder = Recorder::new(Behaviour::Succeed);
    let running = start(&slack, &db, &recorder, &[("JOB_WORKERS", "0")]).await;
    let id = running
        .services
        .enqueue("test.job", &json!({"n": 2}), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(crate::support::job(&store, id).await.status, "queued");
    assert_eq!(running.run_due_jobs().await.unwrap(), 1);
    assert_eq!(crate::support::job(&store, id).await.status, "done");
    assert_eq!(*recorder.runs.lock().unwrap(), vec![(id, 1)]);
    assert_eq!(running.run_due_jobs().await.unwrap(), 0, "nothing left");
    running.shutdown();
    running.stopped().await;
}
