//! The follow-up's messages: "Follow-up ready", and the words for Fathom's failures.

use slack_morphism::prelude::*;

use crate::blocks::{self, Vars};
use crate::clients::ApiError;
use crate::domain::followup::Followup;

/// The "Follow-up ready" message.
pub fn ready_message(followup: &Followup, note: &str) -> anyhow::Result<SlackMessageContent> {
    let summary = followup
        .current()
        .map(|d| d.summary.clone())
        .unwrap_or_default();
    let (summary, _) = blocks::fit(&summary, 2500);
    Ok(blocks::FOLLOWUP_READY.render_as(
        &Vars::new()
            .set("id", followup.id.0.clone())
            .set("title", followup.meeting_title.clone())
            .set("summary", summary)
            .set("generator_note", note),
    )?)
}

/// The "could not draft" message, with Retry.
pub fn failed_message(followup: &Followup, reason: &str) -> anyhow::Result<SlackMessageContent> {
    Ok(blocks::FOLLOWUP_FAILED.render_as(
        &Vars::new()
            .set("id", followup.id.0.clone())
            .set("title", followup.meeting_title.clone())
            .set("reason", reason),
    )?)
}

/// What people see when Fathom fails, per kind of failure.
pub fn fathom_trouble(e: &ApiError) -> String {
    match e {
        ApiError::Unauthorized { .. } => {
            "Fathom did not accept your API key any more. Connect it again with `/fathom-connect`."
                .to_owned()
        }
        ApiError::RateLimited { retry_after, .. } => format!(
            "Fathom is busy (too many requests). Please try again in {} seconds.",
            retry_after.map_or(60, |d| d.as_secs().max(1))
        ),
        ApiError::Timeout { .. } | ApiError::Unavailable { .. } | ApiError::Transport { .. } => {
            "Fathom is not answering right now. Please try again in a minute.".to_owned()
        }
        _ => "Fathom sent an answer I could not read. Please try again; if it keeps happening, \
              tell your admin."
            .to_owned(),
    }
}
