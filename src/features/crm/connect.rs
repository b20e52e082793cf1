//! `/crono-connect` (also `/crm-connect`): a workspace admin or owner connects the team's CRM.
//! Crono with its public and private key; Odoo with its address, database, login and API key.
//! Either is checked with the CRM before it is saved (sealed, per team; it replaces the CRM
//! connected before), the change written to `audit_log`. Anyone else is told who can do it,
//! and nothing is sent to a CRM with their values. The admin check is asked of Slack when the
//! modal opens and again at submit.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use slack_morphism::prelude::*;

use crate::blocks::{self, Vars};
use crate::clients::ApiError;
use crate::clients::crm::CrmError;
use crate::clients::crm::crono::CronoKeys;
use crate::clients::crm::odoo::{OdooKeys, check_url};
use crate::dispatch::{Ack, Ctx, Handler, HandlerResult, field_errors};
use crate::domain::provider::Provider;
use crate::services::Services;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{state_value, trigger_id};
use crate::store::credentials::{NewCredential, Subject};

pub const CALLBACK: &str = "crm_connect";
/// The admin check and the CRM's check together must answer well inside Slack's 3 s for the
/// modal to show its verdict.
const CHECK_BUDGET: Duration = Duration::from_millis(2000);

const ADMINS_ONLY: &str = "Only a Slack workspace admin or owner can connect or change the \
    team's CRM. Ask one of them to run `/crono-connect`.";
/// What only admins may do here, for `Services::only_admins`.
const CONNECT_WHAT: &str = "connect or change the team's CRM";

pub struct ConnectCommand;

#[async_trait]
impl Handler for ConnectCommand {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let services = &cx.services;
        if !services
            .is_team_admin(cx.tenant.id, &cx.user.slack_user_id)
            .await
        {
            cx.tell(&services.only_admins(Some(cx.tenant.id), CONNECT_WHAT).await)
                .await?;
            return Ok(());
        }
        let status = match connected(services, cx.tenant.id).await {
            Some((provider, Some(by))) => format!(
                "{} is connected (by <@{}>). Connecting a CRM replaces it.",
                provider.label(),
                blocks::escape(&by)
            ),
            Some((provider, None)) => format!(
                "{} is connected. Connecting a CRM replaces it.",
                provider.label()
            ),
            None => "No CRM is connected yet. Pick yours and fill in its fields.".to_owned(),
        };
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        // Trusted mrkdwn (a mention), so given whole: the template escapes text it fills in.
        let status = serde_json::json!({ "type": "mrkdwn", "text": status });
        let mut view = blocks::CRM_CONNECT.render(&Vars::new().set("status_text", status))?;
        // HubSpot and Zoho are offered where this deployment has their OAuth apps.
        for provider in [Provider::Hubspot, Provider::Zoho] {
            if services.crm_oauth(provider).is_some()
                && let Some(options) = view["blocks"][1]["element"]["options"].as_array_mut()
            {
                options.push(serde_json::json!({
                    "text": { "type": "plain_text", "text": provider.label() },
                    "value": provider.as_str(),
                }));
            }
        }
        let view: SlackView = serde_json::from_value(view)?;
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

/// The team's CRM and who connected it.
async fn connected(
    services: &Services,
    tenant: crate::domain::ids::TenantId,
) -> Option<(Provider, Option<String>)> {
    let provider = services.store.team_crm(tenant).await.ok().flatten()?;
    let by = services
        .store
        .credential(&services.cipher, tenant, Subject::Tenant, provider)
        .await
        .ok()
        .flatten()
        .and_then(|c| c.metadata["connected_by"].as_str().map(str::to_owned));
    Some((provider, by))
}

/// What the admin filled in, for the CRM they picked.
enum Submitted {
    Crono(CronoKeys),
    Odoo(OdooKeys),
    /// HubSpot or Zoho: connected in the browser, through the sidecar.
    OAuth(Provider),
}

impl Submitted {
    fn provider(&self) -> Provider {
        match self {
            Submitted::Crono(_) => Provider::Crono,
            Submitted::Odoo(_) => Provider::Odoo,
            Submitted::OAuth(provider) => *provider,
        }
    }
}

/// Reads and checks the form; field errors (block, words) when it is not complete.
fn submitted(payload: &Value) -> Result<Submitted, Vec<(&'static str, &'static str)>> {
    let get = |block: &str| {
        state_value(payload, block, "value")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let token_like = |v: &str| !v.chars().any(char::is_whitespace) && v.len() <= 200;
    match get("provider").as_deref().unwrap_or("crono") {
        "crono" => {
            let (public, private) = (get("public_key"), get("private_key"));
            let mut errors = Vec::new();
            if public.is_none() {
                errors.push(("public_key", "Paste Crono's public key."));
            }
            if private.is_none() {
                errors.push(("private_key", "Paste Crono's private key."));
            }
            let (Some(public_key), Some(private_key)) = (public, private) else {
                return Err(errors);
            };
            if !token_like(&public_key) || !token_like(&private_key) {
                return Err(vec![(
                    "public_key",
                    "That does not look like a Crono key: copy it again.",
                )]);
            }
            Ok(Submitted::Crono(CronoKeys {
                public_key,
                private_key,
            }))
        }
        "odoo" => {
            let mut errors = Vec::new();
            let url = match get("odoo_url").as_deref().map(check_url) {
                None => {
                    errors.push(("odoo_url", "Enter your Odoo's address."));
                    None
                }
                Some(Err(why)) => {
                    errors.push(("odoo_url", why));
                    None
                }
                Some(Ok(url)) => Some(url),
            };
            let database = get("odoo_database");
            match &database {
                None => errors.push(("odoo_database", "Enter the Odoo database's name.")),
                Some(d) if !token_like(d) => errors.push((
                    "odoo_database",
                    "A database name has no spaces; check it in Odoo's Settings.",
                )),
                _ => {}
            }
            let login = get("odoo_login");
            match &login {
                None => errors.push(("odoo_login", "Enter the login of the Odoo user.")),
                Some(l) if !token_like(l) => {
                    errors.push(("odoo_login", "A login has no spaces: usually an email."))
                }
                _ => {}
            }
            let api_key = get("odoo_key");
            match &api_key {
                None => errors.push(("odoo_key", "Paste an API key of that Odoo user.")),
                Some(k) if !token_like(k) => errors.push((
                    "odoo_key",
                    "That does not look like an Odoo API key: copy it again.",
                )),
                _ => {}
            }
            match (url, database, login, api_key) {
                (Some(url), Some(database), Some(login), Some(api_key)) if errors.is_empty() => {
                    Ok(Submitted::Odoo(OdooKeys {
                        url,
                        database,
                        login,
                        api_key,
                        protocol: None,
                        uid: None,
                    }))
                }
                _ => Err(errors),
            }
        }
        "hubspot" => Ok(Submitted::OAuth(Provider::Hubspot)),
        "zoho" => Ok(Submitted::OAuth(Provider::Zoho)),
        _ => Err(vec![("provider", "Pick a CRM from the list.")]),
    }
}

/// The CRM's verdict on what was submitted: the values to store, or words for the modal
/// (under which block).
async fn check(
    services: &Services,
    submitted: Submitted,
) -> Result<Submitted, (&'static str, String)> {
    match submitted {
        Submitted::Crono(keys) => match services.crono.check(&keys).await {
            Ok(()) => Ok(Submitted::Crono(keys)),
            Err(ApiError::Unauthorized { .. }) => Err((
                "public_key",
                "Crono did not accept these keys. Copy both again from Crono's API settings."
                    .to_owned(),
            )),
            Err(ApiError::RateLimited { .. }) => Err((
                "public_key",
                "Crono is rate limiting us, so the keys were not saved. Please try again in a \
                 minute."
                    .to_owned(),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "Crono key check failed");
                Err((
                    "public_key",
                    "Crono did not answer properly, so the keys were not saved. Please try \
                     again in a minute."
                        .to_owned(),
                ))
            }
        },
        Submitted::OAuth(provider) => Ok(Submitted::OAuth(provider)),
        Submitted::Odoo(keys) => match services.odoo.check(&keys).await {
            Ok(found) => Ok(Submitted::Odoo(found)),
            Err(CrmError::Refused { .. }) => Err((
                "odoo_key",
                "Odoo did not accept this login and API key for that database. Check all \
                 three and try again."
                    .to_owned(),
            )),
            Err(CrmError::RateLimited { .. }) => Err((
                "odoo_key",
                "Odoo is rate limiting us, so nothing was saved. Please try again in a minute."
                    .to_owned(),
            )),
            Err(e @ (CrmError::NotFound { .. } | CrmError::Rejected { .. })) => {
                tracing::warn!(error = %e, "Odoo check refused");
                Err((
                    "odoo_url",
                    "Odoo did not recognise this address or database. Check both and try again."
                        .to_owned(),
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "Odoo check failed");
                Err((
                    "odoo_url",
                    "Odoo did not answer properly at this address, so nothing was saved. Check \
                     it, or try again in a minute."
                        .to_owned(),
                ))
            }
        },
    }
}

/// The modal turns into a one-time link to the CRM's consent page (through the sidecar's
/// `/oauth/<crm>/start`, which ties it to the browser that opens it).
async fn oauth_link(
    services: &Services,
    event: &SlackEvent,
    slack_user: &str,
    provider: Provider,
) -> Ack {
    let start = services
        .config
        .http
        .public_url(&format!("/oauth/{provider}/start"));
    let (Some(start), Some(_)) = (start, services.crm_oauth(provider)) else {
        return field_errors(&[(
            "provider",
            "This bot is not set up for that CRM (its OAuth app is not configured).",
        )]);
    };
    let made = async {
        let team = event.team_id().ok_or_else(|| anyhow::anyhow!("no team"))?;
        let tenant = services.store.ensure_tenant(&team).await?;
        let user = services.store.ensure_user(tenant.id, slack_user).await?;
        let state = crate::store::oauth_states::new_state();
        services
            .store
            .create_oauth_state(
                &state,
                provider.as_str(),
                tenant.id,
                user.id,
                None,
                &serde_json::json!({}),
            )
            .await?;
        anyhow::Ok(format!("{start}?state={state}"))
    };
    let url = match made.await {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = ?e, "could not start a CRM OAuth flow");
            return field_errors(&[(
                "provider",
                "Something went wrong starting the connection. Please try again.",
            )]);
        }
    };
    let label = provider.label();
    let view = blocks::CRM_OAUTH.render(
        &Vars::new()
            .set(
                "text",
                format!(
                    "Open the link to connect {label} for the whole workspace: you sign in \
                     to {label} and allow the bot. I'll confirm here in Slack."
                ),
            )
            .set("label", format!("Connect {label}"))
            .set("url", url),
    );
    match view {
        Ok(view) => Ack::Stop(Some(
            serde_json::json!({ "response_action": "update", "view": view }),
        )),
        Err(e) => {
            tracing::error!(error = %e, "the CRM OAuth view did not render");
            field_errors(&[("provider", "Something went wrong. Please try again.")])
        }
    }
}

pub struct ConnectSubmit;

#[async_trait]
impl Handler for ConnectSubmit {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let Some(slack_user) = event.user_id() else {
            return field_errors(&[("provider", ADMINS_ONLY)]);
        };
        // Slack first (the person may have lost the role since the modal opened): nothing
        // goes to a CRM for a non-admin, even with a complete form.
        let team = event.team_id().unwrap_or_default();
        let admin =
            tokio::time::timeout(CHECK_BUDGET, services.is_team_admin_of(&team, &slack_user))
                .await
                .unwrap_or(false);
        if !admin {
            let tenant = services.store.tenant_by_team(&team).await.ok().flatten();
            let words = services.only_admins(tenant, CONNECT_WHAT).await;
            return Ack::Stop(Some(serde_json::json!({
                "response_action": "errors",
                "errors": { "provider": words },
            })));
        }
        let form = match submitted(payload) {
            Ok(form) => form,
            Err(errors) => return field_errors(&errors),
        };
        let provider = form.provider();
        if let Submitted::OAuth(provider) = form {
            return oauth_link(services, event, &slack_user, provider).await;
        }
        match tokio::time::timeout(CHECK_BUDGET, check(services, form)).await {
            Ok(Ok(_)) => Ack::Continue(None),
            Ok(Err((block, words))) => field_errors(&[(block, &words)]),
            Err(_) => {
                let block = if provider == Provider::Odoo {
                    "odoo_url"
                } else {
                    "public_key"
                };
                field_errors(&[(
                    block,
                    &format!(
                        "{} did not answer in time, so nothing was saved. Please try again in a \
                         minute.",
                        provider.label()
                    ),
                )])
            }
        }
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let Ok(form) = submitted(&cx.payload) else {
            return Ok(());
        };
        let services = &cx.services;
        let provider = form.provider();
        // Odoo's check also found which protocol the server speaks: asked again here (the
        // ack's answer is not kept), outside Slack's 3 s.
        let form = match form {
            Submitted::Odoo(_) => match check(services, form).await {
                Ok(form) => form,
                Err((_, words)) => {
                    cx.tell(&format!("Odoo was not connected: {words}")).await?;
                    return Ok(());
                }
            },
            form => form,
        };
        let secret = match &form {
            Submitted::Crono(keys) => keys.seal_text(),
            Submitted::Odoo(keys) => keys.seal_text(),
            // Connected in the browser; the callback saves it.
            Submitted::OAuth(_) => return Ok(()),
        };
        services
            .store
            .put_credential(
                &services.cipher,
                NewCredential {
                    tenant: cx.tenant.id,
                    subject: Subject::Tenant,
                    provider,
                    secret: &secret,
                    account_email: None,
                    api_domain: match &form {
                        Submitted::Odoo(keys) => Some(keys.url.as_str()),
                        _ => None,
                    },
                    expires_at: None,
                    scopes: None,
                    metadata: serde_json::json!({ "connected_by": cx.user.slack_user_id }),
                },
            )
            .await?;
        // One CRM per team: the one connected before goes.
        for other in Provider::CRMS.into_iter().filter(|p| *p != provider) {
            services
                .store
                .delete_credential(cx.tenant.id, Subject::Tenant, other)
                .await?;
        }
        services.suggestions.forget_team(cx.tenant.id);
        services
            .store
            .audit(
                cx.tenant.id,
                Some(cx.user.id),
                "connect",
                provider.as_str(),
                "ok",
                None,
            )
            .await?;
        services.refresh_home(cx.tenant.id, cx.user.id).await;
        cx.tell(&format!(
            ":white_check_mark: {} is connected for the whole workspace. Everyone can now \
             use `/crono-search`, `/crono-add-task`, `/crono-add-note` and the follow-up's CRM \
             Note, View Deals and Create Task buttons.",
            provider.label()
        ))
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
        if !services
            .is_team_admin(cx.tenant.id, &cx.user.slack_user_id)
            .await
        {
            cx.tell(
                &services
                    .only_admins(Some(cx.tenant.id), "disconnect the team's CRM")
                    .await,
            )
            .await?;
            return Ok(());
        }
        let provider = services.store.team_crm(cx.tenant.id).await?;
        let mut removed = false;
        for crm in Provider::CRMS {
            // Not while a token refresh is in flight (it would write the tokens back).
            let _refreshing = services
                .crm_refresh
                .get(cx.tenant.id, crm)
                .lock_owned()
                .await;
            removed |= services
                .store
                .delete_credential(cx.tenant.id, Subject::Tenant, crm)
                .await?;
        }
        services.suggestions.forget_team(cx.tenant.id);
        // The mirror of its records goes with the connection.
        services.store.mirror_forget_team(cx.tenant.id).await?;
        services.refresh_home(cx.tenant.id, cx.user.id).await;
        if removed {
            let provider = provider.unwrap_or(Provider::Crono);
            services
                .store
                .audit(
                    cx.tenant.id,
                    Some(cx.user.id),
                    "disconnect",
                    provider.as_str(),
                    "ok",
                    None,
                )
                .await?;
            cx.tell(&format!(
                "{} is disconnected for the workspace; its keys are deleted. Connect a CRM \
                 again with `/crono-connect`.",
                provider.label()
            ))
            .await?;
        } else {
            cx.tell("No CRM was connected for this workspace.").await?;
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
