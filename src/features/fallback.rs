//! What nobody else handles: unknown commands and buttons get a friendly private answer.

use async_trait::async_trait;
use serde_json::json;
use slack_morphism::prelude::*;

use crate::dispatch::{Ack, Ctx, Handler, HandlerResult, canonical_command};
use crate::services::Services;
use crate::slack::envelope::SlackEvent;

/// The commands of the Slack app manifest, for a helpful answer to a typo.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "/followup",
        "draft a follow-up email from a recorded meeting",
    ),
    ("/fathom-connect", "connect your Fathom account"),
    ("/fathom-disconnect", "disconnect Fathom"),
    ("/gmail-connect", "save drafts in your own Gmail"),
    ("/gmail-disconnect", "disconnect Gmail"),
    (
        "/crono-connect",
        "connect the team's CRM (workspace admins)",
    ),
    (
        "/crono-disconnect",
        "disconnect the team's CRM (workspace admins)",
    ),
    ("/crono-add-task", "create a CRM task"),
    ("/crono-add-note", "add a note to a CRM account"),
    ("/crono-search", "search CRM accounts and contacts"),
    (
        "/followup-settings",
        "tone, language, signature and reminders",
    ),
];

pub struct Unknown;

fn command_list() -> String {
    COMMANDS
        .iter()
        .map(|(c, what)| format!("• `{c}`: {what}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[async_trait]
impl Handler for Unknown {
    async fn ack(
        &self,
        _services: &Services,
        event: &SlackEvent,
        _payload: &serde_json::Value,
    ) -> Ack {
        Ack::Continue(match event {
            SlackEvent::Command(c) => {
                let name = canonical_command(&c.command.0);
                let text = if COMMANDS.iter().any(|(known, _)| *known == name) {
                    format!(
                        "`{}` is not available in this version of the bot yet. Here is what works:\n{}",
                        c.command.0,
                        command_list()
                    )
                } else {
                    format!(
                        "Sorry, I don't know `{}`. Here is what I can do:\n{}",
                        c.command.0,
                        command_list()
                    )
                };
                Some(json!({ "response_type": "ephemeral", "text": text }))
            }
            SlackEvent::Interaction(i) => match i.as_ref() {
                SlackInteractionEvent::BlockSuggestion(_) => Some(json!({ "options": [] })),
                SlackInteractionEvent::ViewSubmission(_) => {
                    Some(json!({ "response_action": "clear" }))
                }
                _ => None,
            },
            SlackEvent::Push(_) => None,
        })
    }

    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        match event {
            SlackEvent::Interaction(i) => match i.as_ref() {
                SlackInteractionEvent::BlockActions(_) => {
                    cx.tell(
                        "Sorry, that button is no longer supported. Type `/followup` to start again.",
                    )
                    .await?;
                    Ok(())
                }
                SlackInteractionEvent::ViewSubmission(_) => {
                    cx.tell("Sorry, that form is no longer supported and nothing was saved. Please open it again.")
                        .await?;
                    Ok(())
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}
