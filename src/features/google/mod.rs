//! `/gmail-connect` and `/gmail-disconnect`, and the sidecar's Google OAuth routes:
//! `/oauth/google/start` (binds the state to the browser, redirects to Google with PKCE) and
//! `/oauth/google/callback` (checks the state, exchanges the code, saves the tokens sealed,
//! tells the person). Saving drafts and events lives with the follow-up.

use async_trait::async_trait;
use slack_morphism::prelude::*;

use crate::blocks;
use crate::dispatch::{Ctx, Handler, HandlerResult};
use crate::domain::provider::Provider;
use crate::registry::Features;
use crate::services::home::actions as home;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::trigger_id;

mod oauth;

pub fn register(features: &mut Features) {
    features.command("/gmail-connect", ConnectCommand);
    features.command("/gmail-disconnect", DisconnectCommand);
    // The Connect Google link button: Slack reports the click; the browser does the rest.
    features.action("gmail_connect_open", LinkOpened);
    // App Home's buttons: the link in a modal, and the same disconnect.
    features.action(home::GMAIL_CONNECT, HomeConnect);
    features.action(home::GMAIL_DISCONNECT, DisconnectCommand);
    features.http.push(Box::new(oauth::routes));
}

/// The "Connect Google" answer, or why it cannot be offered.
async fn connect_answer(cx: &Ctx) -> anyhow::Result<SlackMessageContent> {
    let services = &cx.services;
    let text = match services.google_account(cx.tenant.id, cx.user.id).await? {
        Some(Some(email)) => format!(
            "Gmail is connected as *{}*. To connect another Google account, use the button \
             (it replaces this one).",
            blocks::escape(&email)
        ),
        _ => "Connect your Google account to save follow-ups as Gmail drafts and add \
              follow-up meetings to your calendar."
            .to_owned(),
    };
    services
        .google_connect_message(cx.tenant.id, cx.user.id, None, &text)
        .await
}

pub struct ConnectCommand;

#[async_trait]
impl Handler for ConnectCommand {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        cx.tell_content(connect_answer(cx).await?).await?;
        Ok(())
    }
}

pub struct DisconnectCommand;

#[async_trait]
impl Handler for DisconnectCommand {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let services = &cx.services;
        let removed = services.disconnect_google(cx.tenant.id, cx.user.id).await?;
        services.refresh_home(cx.tenant.id, cx.user.id).await;
        if removed {
            services
                .store
                .audit(
                    cx.tenant.id,
                    Some(cx.user.id),
                    "disconnect",
                    Provider::Google.as_str(),
                    "ok",
                    None,
                )
                .await?;
            cx.tell(
                "Google is disconnected: the bot's access was revoked at Google and its tokens \
                 deleted. `/gmail-connect` connects again.",
            )
            .await?;
        } else {
            cx.tell("Google was not connected, so there was nothing to disconnect.")
                .await?;
        }
        Ok(())
    }
}

/// App Home's "Connect Gmail": the same answer as `/gmail-connect`, in a modal (Home has no
/// conversation to answer in).
pub struct HomeConnect;

#[async_trait]
impl Handler for HomeConnect {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        let content = connect_answer(cx).await?;
        let mut view =
            serde_json::to_value(blocks::message_modal("gmail_connect", "Connect Gmail", "")?)?;
        view["blocks"] = serde_json::to_value(content.blocks.unwrap_or_default())?;
        if view["blocks"].as_array().is_none_or(Vec::is_empty) {
            // No Google client here: say so in the modal.
            view = serde_json::to_value(blocks::message_modal(
                "gmail_connect",
                "Connect Gmail",
                content.text.as_deref().unwrap_or_default(),
            )?)?;
        }
        if let Err(e) = cx
            .services
            .slack
            .views_open(&trigger, serde_json::from_value(view)?)
            .await
        {
            tracing::warn!(error = %e, "could not open the Gmail modal");
            cx.tell_content(connect_answer(cx).await?).await?;
        }
        Ok(())
    }
}

/// A click on a link button: acknowledged, nothing to do (the link opens in the browser).
pub struct LinkOpened;

#[async_trait]
impl Handler for LinkOpened {
    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        Ok(())
    }
}
