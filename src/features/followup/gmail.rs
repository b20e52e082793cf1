//! "Gmail Draft": the follow-up as a draft in the person's own Gmail. The click queues a job
//! keyed by the follow-up (so two clicks, or a Slack retry, make one draft); the job builds
//! the RFC 5322 message and calls `users.drafts.create`. The message's own `Message-ID` is
//! derived from the follow-up, so every attempt first looks for the draft an earlier one
//! may have made.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use serde::Deserialize;
use slack_morphism::prelude::*;
use tracing::warn;

use super::action_job::{ForFollowup, load, report_dead};
use super::edit::{edit_view_with, save_view_edits};
use super::owned::owned;
use crate::blocks::{self, Vars};
use crate::clients::ApiError;
use crate::clients::google::{self, Email, Mailbox};
use crate::dispatch::{Ctx, Handler, HandlerError, HandlerResult};
use crate::domain::followup::{Followup, GMAIL_DRAFT_JOB};
use crate::domain::ids::FollowupId;
use crate::domain::person::User;
use crate::jobs::{Dead, JobError, JobHandler};
use crate::services::Services;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{callback_id, view_id};
use crate::store::jobs::Job;

#[derive(Deserialize)]
struct Payload {
    followup: FollowupId,
    /// The edit modal the click came from, to show the result in.
    #[serde(default)]
    view: Option<String>,
}

impl ForFollowup for Payload {
    fn followup(&self) -> &FollowupId {
        &self.followup
    }
}

/// Shows a line in the open edit modal (best effort: it may have been closed).
pub(super) async fn show_in_modal(
    services: &Services,
    view: &str,
    followup: &Followup,
    user: &User,
    working: Option<&str>,
) {
    let updated = match edit_view_with(followup, user, working) {
        Ok(v) => v,
        Err(e) => {
            warn!(error = ?e, "could not render the edit modal");
            return;
        }
    };
    if let Err(e) = services.slack.views_update(view, None, updated).await {
        tracing::debug!(error = %e, "the edit modal could not be updated (closed?)");
    }
}

pub struct GmailDraft;

#[async_trait]
impl Handler for GmailDraft {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let mut followup = owned(cx).await?;
        let modal = (callback_id(&cx.payload) == Some("followup_edit"))
            .then(|| view_id(&cx.payload).map(str::to_owned))
            .flatten();
        if modal.is_some() {
            save_view_edits(cx, &followup).await?;
        }
        let services = &cx.services;
        if let Some(link) = followup.gmail.as_ref().and_then(|g| g.link.as_deref()) {
            cx.tell(&format!(
                "This follow-up is already saved as a Gmail draft: <{}|open it in Gmail>.",
                blocks::escape(link)
            ))
            .await?;
            return Ok(());
        }
        if followup.current().is_none() {
            return Err(HandlerError::person(
                "This follow-up is still being drafted; I will message you when it is ready.",
            ));
        }
        if services.google.is_none() {
            return Err(HandlerError::person(
                crate::services::google::NoGoogle::NotConfigured.words(),
            ));
        }
        if services
            .google_account(cx.tenant.id, cx.user.id)
            .await?
            .is_none()
        {
            let connect = services
                .google_connect_message(
                    cx.tenant.id,
                    cx.user.id,
                    Some(&followup.id),
                    "To save this follow-up as a Gmail draft, connect your Google account \
                     first. Once it is connected I will offer to save this draft in one click.",
                )
                .await?;
            cx.tell_content(connect).await?;
            if let Some(view) = &modal {
                show_in_modal(
                    services,
                    view,
                    &followup,
                    &cx.user,
                    Some("Google is not connected yet: the link to connect it is in our DM."),
                )
                .await;
            }
            return Ok(());
        }
        // Durable first: the job, keyed by the follow-up, before anything says it is coming.
        let queued = services
            .store
            .enqueue_once(
                GMAIL_DRAFT_JOB,
                &serde_json::json!({ "followup": followup.id, "view": modal }),
                &format!("gmail:{}", followup.id.0),
                services.config.jobs.max_attempts,
            )
            .await?;
        services.queue.notify();
        let words = if queued.is_some() {
            "Saving the draft to your Gmail…"
        } else {
            "The Gmail draft is on its way; the link will be here in a moment."
        };
        match &modal {
            Some(view) => {
                if let Some(fresh) = services
                    .store
                    .followup(cx.tenant.id, cx.user.id, &followup.id)
                    .await?
                {
                    followup = fresh;
                }
                show_in_modal(services, view, &followup, &cx.user, Some(words)).await;
            }
            None => cx.tell(words).await?,
        }
        Ok(())
    }
}

/// The recipients: the attendees as edited, with names from the meeting where it had them.
fn recipients(followup: &Followup, edited: &str) -> Vec<Mailbox> {
    let (mut to, _typos) = google::parse_recipients(edited);
    for m in &mut to {
        if m.name.is_none() {
            m.name = followup
                .invitees
                .iter()
                .find(|i| {
                    i.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(&m.email))
                })
                .and_then(|i| i.name.clone())
                .filter(|n| !n.trim().is_empty());
        }
    }
    to
}

/// The `Message-ID` of a follow-up's draft: the same on every attempt.
pub fn message_id(followup: &FollowupId) -> String {
    format!("followup-{}@followup-bot.invalid", followup.0)
}

pub struct SaveDraft;

/// Google answered 403: the grant lacks the permission (unticked on the consent screen).
const NOT_ALLOWED: &str = "Google says the bot may not do this in your account (a permission \
    was not allowed when you connected). Type `/gmail-connect`, allow every permission, then \
    press the button again.";

#[async_trait]
impl JobHandler for SaveDraft {
    async fn run(&self, services: &Arc<Services>, job: &Job) -> Result<(), JobError> {
        let (payload, followup, user) = load::<Payload>(services, job).await?;
        if followup.gmail.is_some() {
            return Ok(()); // made (and announced) by an earlier attempt
        }
        let Some(google) = &services.google else {
            return Err(JobError::Person(
                crate::services::google::NoGoogle::NotConfigured
                    .words()
                    .to_owned(),
            ));
        };
        let draft = followup
            .current()
            .cloned()
            .context("the follow-up has no text")
            .map_err(JobError::Permanent)?;
        let access = match services.google_access(followup.tenant_id, &user).await? {
            Ok(access) => access,
            Err(no) => return Err(JobError::Person(no.words().to_owned())),
        };
        let from_email = access
            .email
            .clone()
            .or_else(|| user.email.clone())
            .context("no address to send from")
            .map_err(JobError::Permanent)?;
        let email = Email {
            from: Mailbox {
                name: user.real_name.clone().filter(|n| !n.trim().is_empty()),
                email: from_email,
            },
            to: recipients(&followup, &draft.attendees),
            subject: draft.subject.clone(),
            body: draft.body.clone(),
            message_id: message_id(&followup.id),
        };
        let raw = google::compose(&email)
            .context("building the message")
            .map_err(JobError::Permanent)?;
        let gmail_error = |e: ApiError| -> JobError {
            match e {
                e if e.is_transient() => JobError::Retry(e.into()),
                ApiError::Unauthorized { .. } => JobError::Retry(e.into()),
                e => {
                    warn!(error = %e, "Gmail refused the draft");
                    JobError::Person(
                        "Gmail refused it. Check the recipients in View & Edit and press \
                         Gmail Draft again."
                            .to_owned(),
                    )
                }
            }
        };
        // An earlier attempt may have made it before this process died or was stopped
        // (a stopped attempt does not count as one), so look for it first, every time.
        let made = google
            .find_draft(&access.token, &email.message_id)
            .await
            .map_err(gmail_error)?;
        let made = match made {
            Some(made) => made,
            None => match google.create_draft(&access.token, &raw).await {
                Ok(made) => made,
                Err(ApiError::Unauthorized { status: 403, .. }) => {
                    return Err(JobError::Person(NOT_ALLOWED.to_owned()));
                }
                Err(e @ ApiError::Unauthorized { .. }) => {
                    services
                        .distrust_google_access(followup.tenant_id, user.id)
                        .await?;
                    return Err(gmail_error(e));
                }
                Err(e) => return Err(gmail_error(e)),
            },
        };
        let link = google::draft_link(access.email.as_deref(), &made.message_id);
        services
            .store
            .set_gmail_draft(&followup.id, &made.id, &link)
            .await?;
        services
            .store
            .audit(
                followup.tenant_id,
                Some(user.id),
                "gmail_draft",
                &followup.id.0,
                "ok",
                Some(&made.id),
            )
            .await?;
        announce(services, &payload, &followup.id, &user).await;
        Ok(())
    }

    async fn dead(&self, services: &Arc<Services>, job: &Job, dead: Dead<'_>) {
        report_dead::<Payload>(
            services,
            job,
            dead,
            "gmail_draft",
            ("The Gmail draft", "was not saved"),
            "Google kept failing. Press Gmail Draft again in a few minutes.",
        )
        .await;
    }
}

/// "Draft saved" in the DM, and in the edit modal when the click came from there.
async fn announce(services: &Services, payload: &Payload, id: &FollowupId, user: &User) {
    let Ok(Some(followup)) = services.store.followup_by_id(id).await else {
        return;
    };
    let Some(link) = followup.gmail.as_ref().and_then(|g| g.link.clone()) else {
        return;
    };
    if let Some(view) = &payload.view {
        show_in_modal(services, view, &followup, user, None).await;
    }
    let message = blocks::FOLLOWUP_RESULT.render_as::<SlackMessageContent>(
        &Vars::new()
            .set("text", "Draft saved in Gmail for")
            .set("title", followup.meeting_title.clone())
            .set("url", link)
            .set("label", "Open your draft"),
    );
    match message {
        Ok(message) => {
            if let Err(e) = services.dm(&user.slack_user_id, message).await {
                warn!(error = %e, "the Gmail draft is saved but the DM failed");
            }
        }
        Err(e) => warn!(error = ?e, "could not render Draft saved"),
    }
}
