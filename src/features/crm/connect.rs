//! `/crono-connect` (also `/crm-connect`): a workspace admin or owner connects the team's CRM.
//! For Crono: the public and private key, checked with Crono before they are saved (sealed,
//! per team), the change written to `audit_log`. Anyone else is told who can do it, and
//! nothing is sent to Crono with their keys. The admin check is asked of Slack when the modal
//! opens and again at submit.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use slack_morphism::prelude::*;

use crate::blocks::{self, Vars};
use crate::clients::ApiError;
use crate::clients::crm::crono::CronoKeys;
use crate::dispatch::{Ack, Ctx, Handler, HandlerResult, field_errors};
use crate::domain::provider::Provider;
use crate::services::Services;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{state_value, trigger_id};
use crate::store::credentials::{NewCredential, Subject};

pub const CALLBACK: &str = "crm_connect";
/// The admin check and the key check together must answer well inside Slack's 3 s for the
/// modal to show its verdict.
const CHECK_BUDGET: Duration = Duration::from_millis(2000);

const ADMINS_ONLY: &str = "Only a Slack workspace admin or owner can connect or change the \
    team's CRM. Ask one of them to run `/crono-connect`.";

pub struct ConnectCommand;

#[async_trait]
impl Handler for ConnectCommand {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let services = &cx.services;
        if !services.is_workspace_admin(&cx.user.slack_user_id).await {
            cx.tell(ADMINS_ONLY).await?;
            return Ok(());
        }
        let connected = services
            .store
            .credential(
                &services.cipher,
                cx.tenant.id,
                Subject::Tenant,
                Provider::Crono,
            )
            .await
            .ok()
            .flatten();
        let status =
            match connected.and_then(|c| c.metadata["connected_by"].as_str().map(str::to_owned)) {
                Some(by) => format!(
                    "Crono is connected (by <@{}>). New keys replace the current ones.",
                    blocks::escape(&by)
                ),
                None => "No CRM is connected yet. HubSpot, Zoho and Odoo come in a later version."
                    .to_owned(),
            };
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        let view: SlackView = blocks::CRM_CONNECT.render_as(&Vars::new().set("status", status))?;
        if let Err(e) = services.slack.views_open(&trigger, view).await {
            tracing::warn!(error = %e, "could not open the CRM modal");
            cx.tell(
                "Slack did not let me open the window in time. Please type `/crono-connect` again.",
            )
            .await?;
        }
        Ok(())
    }
}

fn submitted_keys(payload: &Value) -> Option<CronoKeys> {
    let get = |block: &str| {
        state_value(payload, block, "value")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    Some(CronoKeys {
        public_key: get("public_key")?,
        private_key: get("private_key")?,
    })
}

pub struct ConnectSubmit;

#[async_trait]
impl Handler for ConnectSubmit {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let Some(slack_user) = event.user_id() else {
            return field_errors(&[("public_key", ADMINS_ONLY)]);
        };
        let Some(keys) = submitted_keys(payload) else {
            return field_errors(&[("private_key", "Paste both Crono keys.")]);
        };
        if [&keys.public_key, &keys.private_key]
            .iter()
            .any(|k| k.chars().any(char::is_whitespace) || k.len() > 200)
        {
            return field_errors(&[(
                "public_key",
                "That does not look like a Crono key: copy it again.",
            )]);
        }
        // Slack first (the person may have lost the role since the modal opened), then
        // Crono; both inside one budget.
        let checked = tokio::time::timeout(CHECK_BUDGET, async {
            if !services.is_workspace_admin(&slack_user).await {
                return None;
            }
            Some(services.crono.check(&keys).await)
        })
        .await;
        match checked {
            Ok(None) => field_errors(&[("public_key", ADMINS_ONLY)]),
            Ok(Some(Ok(()))) => Ack::Continue(None),
            Ok(Some(Err(ApiError::Unauthorized { .. }))) => field_errors(&[(
                "public_key",
                "Crono did not accept these keys. Copy both again from Crono's API settings.",
            )]),
            Ok(Some(Err(ApiError::RateLimited { .. }))) => field_errors(&[(
                "public_key",
                "Crono is rate limiting us, so the keys were not saved. Please try again in a minute.",
            )]),
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "Crono key check failed");
                field_errors(&[(
                    "public_key",
                    "Crono did not answer properly, so the keys were not saved. Please try again in a minute.",
                )])
            }
            Err(_) => field_errors(&[(
                "public_key",
                "Slack or Crono did not answer in time, so the keys were not saved. Please try again in a minute.",
            )]),
        }
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let Some(keys) = submitted_keys(&cx.payload) else {
            return Ok(());
        };
        let services = &cx.services;
        let secret = keys.seal_text();
        services
            .store
            .put_credential(
                &services.cipher,
                NewCredential {
                    tenant: cx.tenant.id,
                    subject: Subject::Tenant,
                    provider: Provider::Crono,
                    secret: &secret,
                    account_email: None,
                    api_domain: None,
                    expires_at: None,
                    scopes: None,
                    metadata: serde_json::json!({ "connected_by": cx.user.slack_user_id }),
                },
            )
            .await?;
        services.suggestions.forget_team(cx.tenant.id);
        services
            .store
            .audit(
                cx.tenant.id,
                Some(cx.user.id),
                "connect",
                Provider::Crono.as_str(),
                "ok",
                None,
            )
            .await?;
        cx.tell(
            ":white_check_mark: Crono is connected for the whole workspace. Everyone can now \
             use `/crono-search`, `/crono-add-task`, `/crono-add-note` and the follow-up's CRM \
             Note, View Deals and Create Task buttons.",
        )
        .await?;
        Ok(())
    }
}

/// `/crono-disconnect` (also `/crm-disconnect`): a workspace admin or owner removes the
/// team's CRM keys. Audited; nobody's follow-ups are touched.
pub struct DisconnectCommand;

#[async_trait]
impl Handler for DisconnectCommand {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let services = &cx.services;
        if !services.is_workspace_admin(&cx.user.slack_user_id).await {
            cx.tell(
                "Only a Slack workspace admin or owner can disconnect the team's CRM. Ask one \
                 of them to run `/crono-disconnect`.",
            )
            .await?;
            return Ok(());
        }
        let removed = services
            .store
            .delete_credential(cx.tenant.id, Subject::Tenant, Provider::Crono)
            .await?;
        services.suggestions.forget_team(cx.tenant.id);
        if removed {
            services
                .store
                .audit(
                    cx.tenant.id,
                    Some(cx.user.id),
                    "disconnect",
                    Provider::Crono.as_str(),
                    "ok",
                    None,
                )
                .await?;
            cx.tell(
                "Crono is disconnected for the workspace; its keys are deleted. Connect it \
                 again with `/crono-connect`.",
            )
            .await?;
        } else {
            cx.tell("No CRM was connected for this workspace.").await?;
        }
        Ok(())
    }
}
