//! `/fathom-connect`: each person pastes their own Fathom API key. It is checked with Fathom
//! before the modal closes, then stored sealed, and confirmed by DM.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use slack_morphism::prelude::*;

use crate::blocks::{FATHOM_CONNECT, Vars};
use crate::clients::ApiError;
use crate::dispatch::{Ack, Ctx, Handler, HandlerResult, field_errors};
use crate::domain::provider::Provider;
use crate::services::Services;
use crate::services::home::actions as home;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::state_value;
use crate::store::credentials::{NewCredential, Subject};

/// The Fathom check must answer well inside Slack's 3 s for the modal to show its verdict.
const CHECK_BUDGET: Duration = Duration::from_millis(2000);

pub fn register(features: &mut crate::registry::Features) {
    features.command("/fathom-connect", ConnectCommand);
    features.command("/fathom-disconnect", DisconnectCommand);
    features.submission("fathom_connect", ConnectSubmit);
    // The same, from App Home's buttons.
    features.action(home::FATHOM_CONNECT, ConnectCommand);
    features.action(home::FATHOM_DISCONNECT, DisconnectCommand);
}

pub struct ConnectCommand;

#[async_trait]
impl Handler for ConnectCommand {
    fn first_view(&self, _event: &SlackEvent) -> Option<SlackView> {
        FATHOM_CONNECT.render_as(&Vars::new()).ok()
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        if cx.view_id.is_none() {
            cx.tell("Slack did not let me open the window in time. Please type `/fathom-connect` again.")
                .await?;
        }
        Ok(())
    }
}

pub struct ConnectSubmit;

fn submitted_key(event: &SlackEvent, payload: &serde_json::Value) -> Option<String> {
    matches!(event, SlackEvent::Interaction(_))
        .then(|| state_value(payload, "api_key", "value"))
        .flatten()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
}

#[async_trait]
impl Handler for ConnectSubmit {
    async fn ack(
        &self,
        services: &Services,
        event: &SlackEvent,
        payload: &serde_json::Value,
    ) -> Ack {
        let Some(key) = submitted_key(event, payload) else {
            return field_errors(&[("api_key", "Paste your Fathom API key here.")]);
        };
        if key.len() < 16 || key.chars().any(char::is_whitespace) {
            return field_errors(&[(
                "api_key",
                "That does not look like a Fathom API key: copy it again from Fathom → Settings → API Access.",
            )]);
        }
        let key = SecretString::from(key);
        match tokio::time::timeout(CHECK_BUDGET, services.fathom.check_key(&key)).await {
            Ok(Ok(())) => Ack::Continue(None),
            Ok(Err(ApiError::Unauthorized { .. })) => field_errors(&[(
                "api_key",
                "Fathom did not accept this key. Copy it again from Fathom → Settings → API Access.",
            )]),
            Ok(Err(ApiError::RateLimited { .. })) => field_errors(&[(
                "api_key",
                "Fathom is busy right now, so the key was not saved. Please try again in a minute.",
            )]),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Fathom key check failed");
                field_errors(&[(
                    "api_key",
                    "Fathom did not answer properly, so the key was not saved. Please try again in a minute.",
                )])
            }
            Err(_) => field_errors(&[(
                "api_key",
                "Fathom did not answer in time, so the key was not saved. Please try again in a minute.",
            )]),
        }
    }

    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let Some(key) = submitted_key(&event, &cx.payload) else {
            return Ok(());
        };
        let key = SecretString::from(key);
        // The key connected before, whose webhook goes when this one gets its own.
        let old_key = cx
            .services
            .fathom_key(cx.tenant.id, cx.user.id)
            .await
            .ok()
            .and_then(Result::ok);
        cx.services
            .store
            .put_credential(
                &cx.services.cipher,
                NewCredential {
                    tenant: cx.tenant.id,
                    subject: Subject::User(cx.user.id),
                    provider: Provider::Fathom,
                    secret: &key,
                    account_email: None,
                    api_domain: None,
                    expires_at: None,
                    scopes: None,
                    metadata: serde_json::json!({}),
                },
            )
            .await?;
        // New recordings are announced from now on, not the whole history; a reconnect
        // keeps the clock where it was so nothing made meanwhile is skipped.
        cx.services
            .store
            .start_fathom_poll(cx.user.id, crate::store::now())
            .await?;
        // Meeting-ready DMs within seconds; polling stays as the safety net if this fails.
        if let Err(e) = cx
            .services
            .replace_fathom_webhook(cx.tenant.id, cx.user.id, old_key.as_ref(), &key)
            .await
        {
            tracing::warn!(error = ?e, "could not create the Fathom webhook; polling covers it");
        }
        cx.services
            .store
            .audit(
                cx.tenant.id,
                Some(cx.user.id),
                "connect",
                Provider::Fathom.as_str(),
                "ok",
                None,
            )
            .await?;
        cx.services.refresh_home(cx.tenant.id, cx.user.id).await;
        cx.services
            .dm(
                &cx.user.slack_user_id,
                SlackMessageContent::new().with_text(
                    ":white_check_mark: Fathom is connected. Type `/followup` after a call to draft \
                     the follow-up; I will also message you when a new recording is ready \
                     (turn that off in `/followup-settings`)."
                        .to_owned(),
                ),
            )
            .await?;
        Ok(())
    }
}

/// `/fathom-disconnect`: deletes the person's webhook at Fathom and their key.
pub struct DisconnectCommand;

#[async_trait]
impl Handler for DisconnectCommand {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let services = &cx.services;
        let removed = services.disconnect_fathom(cx.tenant.id, cx.user.id).await?;
        services.refresh_home(cx.tenant.id, cx.user.id).await;
        if removed {
            services
                .store
                .audit(
                    cx.tenant.id,
                    Some(cx.user.id),
                    "disconnect",
                    Provider::Fathom.as_str(),
                    "ok",
                    None,
                )
                .await?;
            cx.tell(
                "Fathom is disconnected: your key is deleted and no more meeting-ready messages \
                 come. Connect again with `/fathom-connect`.",
            )
            .await?;
        } else {
            cx.tell("Fathom was not connected. Connect it with `/fathom-connect`.")
                .await?;
        }
        Ok(())
    }
}
