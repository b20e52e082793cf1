//! `/fathom-connect`: each person pastes their own Fathom API key. It is checked with Fathom
//! before the modal closes, then stored sealed, and confirmed by DM.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use slack_morphism::prelude::*;

use super::{Ack, Ctx, Handler, field_errors, state_value};
use crate::app::App;
use crate::blocks::{FATHOM_CONNECT, Vars};
use crate::clients::ApiError;
use crate::slack::envelope::SlackEvent;
use crate::store::credentials::{NewCredential, Subject};

pub const FATHOM: &str = "fathom";
/// The Fathom check must answer well inside Slack's 3 s for the modal to show its verdict.
const CHECK_BUDGET: Duration = Duration::from_millis(2000);

pub struct ConnectCommand;

#[async_trait]
impl Handler for ConnectCommand {
    fn first_view(&self, _event: &SlackEvent) -> Option<SlackView> {
        FATHOM_CONNECT.render_as(&Vars::new()).ok()
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> anyhow::Result<()> {
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
    async fn ack(&self, app: &App, event: &SlackEvent, payload: &serde_json::Value) -> Ack {
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
        match tokio::time::timeout(CHECK_BUDGET, app.fathom.check_key(&key)).await {
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

    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> anyhow::Result<()> {
        let Some(key) = submitted_key(&event, &cx.payload) else {
            return Ok(());
        };
        let key = SecretString::from(key);
        cx.app
            .store
            .put_credential(
                &cx.app.cipher,
                NewCredential {
                    tenant: cx.tenant.id,
                    subject: Subject::User(cx.user.id),
                    provider: FATHOM,
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
        cx.app
            .store
            .start_fathom_poll(cx.user.id, crate::store::now())
            .await?;
        cx.app
            .store
            .audit(
                cx.tenant.id,
                Some(cx.user.id),
                "connect",
                FATHOM,
                "ok",
                None,
            )
            .await?;
        let dm = cx.app.slack.open_dm(&cx.user.slack_user_id).await?;
        cx.app
            .slack
            .chat_post(
                &dm,
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
