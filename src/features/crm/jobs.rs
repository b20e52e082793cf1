//! The one job that writes to the CRM (a note, a task, a deal update): queued with its
//! `crm_writes` row under an idempotency key, run by a worker, recorded, audited, and
//! confirmed to the person with a link to the record.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::SlackMessageContent;
use tracing::warn;

use super::views::money;
use crate::blocks;
use crate::clients::crm::{Calls, CrmError};
use crate::domain::crm::{DealChange, Made, NewNote, NewTask};
use crate::domain::ids::FollowupId;
use crate::domain::person::{Tenant, User};
use crate::domain::provider::Provider;
use crate::jobs::{Dead, JobError, JobHandler};
use crate::services::Services;
use crate::store::crm::{CrmWrite, NewCrmWrite, Queued};
use crate::store::jobs::Job;

pub const WRITE_JOB: &str = "crm.write";

/// What the person asked the CRM for, with what the confirmation names.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Request {
    Note {
        note: NewNote,
        account_name: String,
        #[serde(default)]
        meeting: Option<String>,
    },
    Task {
        task: NewTask,
        #[serde(default)]
        account_name: Option<String>,
        #[serde(default)]
        contact_name: Option<String>,
        /// The due time as the person entered it, with their zone.
        local_due: String,
    },
    Deal {
        change: DealChange,
        deal_name: String,
        account_name: String,
        #[serde(default)]
        stage_label: Option<String>,
        #[serde(default)]
        currency: Option<String>,
    },
}

impl Request {
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Note { .. } => "note",
            Request::Task { .. } => "task",
            Request::Deal { .. } => "deal",
        }
    }

    fn account_id(&self) -> &str {
        match self {
            Request::Note { note, .. } => &note.account_id,
            Request::Task { task, .. } => &task.account_id,
            Request::Deal { change, .. } => &change.account_id,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Request::Note { .. } => "The note",
            Request::Task { .. } => "The task",
            Request::Deal { .. } => "The deal change",
        }
    }
}

/// Queues a write (durable, with its job) unless the same key was seen; wakes a worker.
pub async fn queue(
    services: &Services,
    tenant: &Tenant,
    user: &User,
    followup: Option<&FollowupId>,
    key: &str,
    request: &Request,
) -> anyhow::Result<Queued> {
    let json = serde_json::to_value(request)?;
    let queued = services
        .store
        .queue_crm_write(NewCrmWrite {
            tenant: tenant.id,
            user: user.id,
            followup,
            provider: "crono",
            kind: request.kind(),
            idem_key: key,
            request: &json,
            job_kind: WRITE_JOB,
            max_attempts: services.config.jobs.max_attempts,
        })
        .await?;
    services.queue.notify();
    Ok(queued)
}

/// Words for "you asked for this already".
pub fn already(write: &CrmWrite) -> String {
    let what = match write.kind.as_str() {
        "note" => "This note",
        "task" => "This task",
        _ => "This change",
    };
    match (write.status.as_str(), &write.link) {
        ("done", Some(link)) => format!(
            "{what} is already in the CRM: <{}|open the account>.",
            blocks::escape(link)
        ),
        ("done", None) => format!("{what} is already in the CRM."),
        _ => format!("{what} is on its way to the CRM; I will confirm in a moment."),
    }
}

fn job_error(e: CrmError, provider: Provider) -> JobError {
    match e {
        e if e.is_transient() => JobError::Retry(e.into()),
        // An OAuth CRM refusing a live token: it was marked expired, so the next attempt
        // refreshes it (or learns the grant is gone and says so). A 401 made nothing.
        e @ CrmError::Refused { .. } if matches!(provider, Provider::Hubspot | Provider::Zoho) => {
            JobError::Retry(e.into())
        }
        e => {
            warn!(error = %e, "the CRM refused a write");
            JobError::Person(e.words())
        }
    }
}

async fn load(services: &Services, job: &Job) -> Result<(CrmWrite, Request, User), JobError> {
    let payload: serde_json::Value = serde_json::from_str(&job.payload)
        .context("job payload")
        .map_err(JobError::Permanent)?;
    let id = payload["write"]
        .as_str()
        .context("the job names no write")
        .map_err(JobError::Permanent)?;
    let write = services
        .store
        .crm_write(id)
        .await?
        .context("the CRM write no longer exists")
        .map_err(JobError::Permanent)?;
    let request: Request = serde_json::from_str(&write.request)
        .context("the CRM write's request")
        .map_err(JobError::Permanent)?;
    let user = services
        .store
        .user(write.tenant_id, write.user_id)
        .await?
        .context("the write's owner no longer exists")
        .map_err(JobError::Permanent)?;
    Ok((write, request, user))
}

pub struct WriteToCrm;

#[async_trait]
impl JobHandler for WriteToCrm {
    async fn run(&self, services: &Arc<Services>, job: &Job) -> Result<(), JobError> {
        let (write, request, user) = load(services, job).await?;
        if write.status == "done" {
            return Ok(()); // made (and confirmed) by an earlier attempt
        }
        let crm = match services.crm(write.tenant_id, Calls::Write).await? {
            Ok(crm) => crm,
            Err(no) => return Err(JobError::Person(no.words().to_owned())),
        };
        let made = match &request {
            Request::Note { note, .. } => crm.create_note(note).await,
            Request::Task { task, .. } => crm.create_task(task).await,
            Request::Deal { change, .. } => crm.update_deal(change).await.map(|()| Made {
                id: change.deal_id.clone(),
            }),
        }
        .map_err(|e| job_error(e, crm.provider()))?;
        // The CRM took it: now the mirror (a closing stage takes the deal out).
        if let Request::Deal { change, .. } = &request {
            let closed = match &change.stage {
                Some(stage) => crm
                    .stages()
                    .await
                    .map(|stages| stages.iter().any(|s| s.closed && &s.id == stage))
                    .unwrap_or_else(|e| {
                        warn!(code = e.kind(), "could not read the stages for the mirror");
                        false
                    }),
                None => false,
            };
            services
                .mirror_deal_written(write.tenant_id, crm.provider(), change, closed)
                .await;
        }
        let link = crm.account_link(request.account_id());
        if !services
            .store
            .finish_crm_write(&write.id, &made.id, link.as_deref())
            .await?
        {
            return Ok(());
        }
        let target = write
            .followup_id
            .as_ref()
            .map_or_else(|| write.id.clone(), |f| f.0.clone());
        services
            .store
            .audit(
                write.tenant_id,
                Some(user.id),
                &format!("crm_{}", request.kind()),
                &target,
                "ok",
                Some(&made.id),
            )
            .await?;
        let text = confirmation(crm.name(), &request, link.as_deref());
        if let Err(e) = services
            .dm(
                &user.slack_user_id,
                SlackMessageContent::new().with_text(text),
            )
            .await
        {
            warn!(error = %e, "the CRM write is made but the confirmation DM failed");
        }
        Ok(())
    }

    async fn dead(&self, services: &Arc<Services>, job: &Job, dead: Dead<'_>) {
        let Ok((write, request, user)) = load(services, job).await else {
            return;
        };
        if let Err(e) = services.store.fail_crm_write(&write.id).await {
            warn!(error = ?e, "could not mark a CRM write failed");
        }
        if let Err(e) = services
            .store
            .audit(
                write.tenant_id,
                Some(user.id),
                &format!("crm_{}", request.kind()),
                &write.id,
                "failed",
                None,
            )
            .await
        {
            warn!(error = ?e, "could not audit a failed CRM write");
        }
        let text = format!(
            ":warning: {} was not saved in the CRM. {}",
            request.what(),
            blocks::escape(
                dead.for_person
                    .unwrap_or("The CRM kept failing. Please try again in a few minutes.")
            )
        );
        if let Err(e) = services
            .dm(
                &user.slack_user_id,
                SlackMessageContent::new().with_text(text),
            )
            .await
        {
            warn!(error = %e, "could not tell the person their CRM write failed");
        }
    }
}

fn confirmation(crm: &str, request: &Request, link: Option<&str>) -> String {
    let e = blocks::escape;
    let mut text = match request {
        Request::Note {
            account_name,
            meeting,
            ..
        } => match meeting {
            Some(m) => format!(
                ":white_check_mark: The note for *{}* is on *{}* in {crm}.",
                e(m),
                e(account_name)
            ),
            None => format!(
                ":white_check_mark: Note added to *{}* in {crm}.",
                e(account_name)
            ),
        },
        Request::Task {
            task,
            account_name,
            contact_name,
            local_due,
        } => {
            let whom = match (contact_name, account_name) {
                (Some(c), Some(a)) => format!(" with {} ({})", e(c), e(a)),
                (Some(c), None) => format!(" with {}", e(c)),
                (None, Some(a)) => format!(" on {}", e(a)),
                (None, None) => String::new(),
            };
            format!(
                ":white_check_mark: {} task “{}” created in {crm}{whom}, due {}.",
                task.kind.label(),
                e(&task.subject),
                e(local_due)
            )
        }
        Request::Deal {
            change,
            deal_name,
            account_name,
            stage_label,
            currency,
        } => format!(
            ":white_check_mark: *{}* ({}) updated in {crm}: {}, stage {}.",
            e(deal_name),
            e(account_name),
            e(&money(change.amount, currency.as_deref())),
            e(stage_label
                .as_deref()
                .or(change.stage.as_deref())
                .unwrap_or("unchanged"))
        ),
    };
    if let Some(link) = link {
        text.push_str(&format!(" <{}|Open the account>", e(link)));
    }
    text
}
