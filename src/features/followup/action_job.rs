//! What the follow-up's action jobs (Gmail draft, calendar event) share: loading the
//! follow-up and its owner from the job, and telling the owner when the job died.

use anyhow::Context;
use serde::de::DeserializeOwned;
use slack_morphism::prelude::SlackMessageContent;
use tracing::warn;

use crate::blocks;
use crate::domain::followup::Followup;
use crate::domain::ids::FollowupId;
use crate::domain::person::User;
use crate::jobs::{Dead, JobError};
use crate::services::Services;
use crate::store::jobs::Job;

/// A job payload that names its follow-up.
pub(super) trait ForFollowup: DeserializeOwned {
    fn followup(&self) -> &FollowupId;
}

/// The job's payload, its follow-up and the follow-up's owner.
pub(super) async fn load<P: ForFollowup>(
    services: &Services,
    job: &Job,
) -> Result<(P, Followup, User), JobError> {
    let payload: P = serde_json::from_str(&job.payload)
        .context("job payload")
        .map_err(JobError::Permanent)?;
    let followup = services
        .store
        .followup_by_id(payload.followup())
        .await?
        .context("the follow-up no longer exists")
        .map_err(JobError::Permanent)?;
    let user = services
        .store
        .user(followup.tenant_id, followup.user_id)
        .await?
        .context("the follow-up's owner no longer exists")
        .map_err(JobError::Permanent)?;
    Ok((payload, followup, user))
}

/// A dead action job: audited as failed (`action`), and the owner told "`what` for
/// <meeting> `outcome`." followed by the words for them, or `otherwise`.
pub(super) async fn report_dead<P: ForFollowup>(
    services: &Services,
    job: &Job,
    dead: Dead<'_>,
    action: &str,
    (what, outcome): (&str, &str),
    otherwise: &str,
) {
    let Ok((_, followup, user)) = load::<P>(services, job).await else {
        return;
    };
    if let Err(e) = services
        .store
        .audit(
            followup.tenant_id,
            Some(user.id),
            action,
            &followup.id.0,
            "failed",
            None,
        )
        .await
    {
        warn!(error = ?e, action, "could not audit a failed action");
    }
    let text = format!(
        ":warning: {what} for *{}* {outcome}. {}",
        blocks::escape(&followup.meeting_title),
        blocks::escape(dead.for_person.unwrap_or(otherwise))
    );
    if let Err(e) = services
        .dm(
            &user.slack_user_id,
            SlackMessageContent::new().with_text(text),
        )
        .await
    {
        warn!(error = %e, action, "could not tell the person their action failed");
    }
}
