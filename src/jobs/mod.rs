//! The durable job queue's runtime: anything slow or that must survive a restart (LLM
//! drafts, CRM writes) is queued in the database and run by a pool of workers. The kinds of
//! job and their handlers belong to the features, which register them through startup.
//!
//! A job is retried with exponential backoff and jitter, dead-lettered after its attempts run
//! out, and picked up again after a crash (its lease expires; with SQLite, at start). On
//! shutdown a running job gets a grace period to finish, else it is released untouched.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::services::Services;
use crate::store::jobs::Job;

pub mod queue;
mod worker;

pub use worker::{run_due, run_workers};

/// Why a job's attempt failed, and so what happens next.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (a provider answered 429/5xx, a timeout).
    #[error(transparent)]
    Retry(anyhow::Error),
    /// Will fail the same way every time: dead-letter at once.
    #[error(transparent)]
    Permanent(anyhow::Error),
    /// Will fail the same way every time, and the person can fix it: dead-letter at once and
    /// give them these words (plain, with what to do next).
    #[error("{0}")]
    Person(String),
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        JobError::Retry(e)
    }
}

/// What a dead-lettered job leaves behind.
#[derive(Debug)]
pub struct Dead<'a> {
    /// The last error, as logged.
    pub error: &'a str,
    /// Words for the person, when the failure was one they can fix.
    pub for_person: Option<&'a str>,
}

#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, services: &Arc<Services>, job: &Job) -> Result<(), JobError>;

    /// Called once when the job is dead-lettered, e.g. to tell the person what failed.
    async fn dead(&self, _services: &Arc<Services>, _job: &Job, _dead: Dead<'_>) {}
}

/// Job handlers by kind.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn add(&mut self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.handlers.insert(kind.to_owned(), handler);
    }

    fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }
}
