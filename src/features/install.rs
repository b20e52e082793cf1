//! Installing the app into another workspace (Slack OAuth v2), on the sidecar, when
//! `SLACK_CLIENT_ID`/`SECRET` are set: `/slack/install` sends the browser to Slack's consent
//! page with a state (random, stored hashed, single use, ten minutes); `/slack/oauth_redirect`
//! checks it, exchanges the code with `oauth.v2.access`, keeps the team's bot token sealed
//! (with its refresh token and expiry when token rotation is on), records who installed it,
//! and DMs the installer a welcome with the new team's own token. Every failure is a small
//! page and changes nothing. Org-wide (Enterprise Grid) installs are keyed by enterprise id.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use slack_morphism::prelude::SlackMessageContent;
use tracing::{error, info, warn};

use crate::domain::provider::Provider;
use crate::registry::Features;
use crate::server::pages::page;
use crate::services::Services;
use crate::services::slack::BotTokens;
use crate::store::credentials::{NewCredential, Subject};
use crate::store::oauth_states::new_state;

/// The bot scopes of the manifest.
pub const BOT_SCOPES: &str = "chat:write,commands,im:write,users:read,users:read.email";

pub fn register(features: &mut Features) {
    features.http.push(Box::new(routes));
    features.event("app_uninstalled", Uninstalled);
    features.event("tokens_revoked", Uninstalled);
}

/// `app_uninstalled` / `tokens_revoked`: the workspace's bot token goes at once (its data
/// stays, so a reinstall restores the team); nothing calls Slack for it any more, and its
/// jobs and polls stop (they find no token). Done in the ack: these events carry no person.
pub struct Uninstalled;

#[async_trait::async_trait]
impl crate::dispatch::Handler for Uninstalled {
    async fn ack(
        &self,
        services: &Services,
        event: &crate::slack::envelope::SlackEvent,
        payload: &serde_json::Value,
    ) -> crate::dispatch::Ack {
        let kind = payload["event"]["type"].as_str().unwrap_or_default();
        // `tokens_revoked` names user tokens too; only the bot's matter here.
        let bot_revoked = kind == "app_uninstalled"
            || payload["event"]["tokens"]["bot"]
                .as_array()
                .is_some_and(|bots| !bots.is_empty());
        if let (true, Some(team)) = (bot_revoked, event.team_id()) {
            let key = payload["enterprise_id"]
                .as_str()
                .filter(|_| payload["is_enterprise_install"] == true)
                .map(str::to_owned)
                .unwrap_or(team);
            forget_workspace(services, &key, kind).await;
        }
        crate::dispatch::Ack::Stop(None)
    }

    async fn handle(
        &self,
        _cx: &crate::dispatch::Ctx,
        _event: crate::slack::envelope::SlackEvent,
    ) -> crate::dispatch::HandlerResult {
        Ok(())
    }
}

async fn forget_workspace(services: &Services, team: &str, why: &str) {
    services.workspaces.forget(team);
    let tenant = match services.store.tenant_by_team(team).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => return,
        Err(e) => {
            error!(error = ?e, "could not read an uninstalled workspace");
            return;
        }
    };
    match services
        .store
        .delete_credential(tenant, Subject::Tenant, Provider::Slack)
        .await
    {
        Ok(true) => {
            info!(team = %team, why, "the workspace's bot token is deleted");
            let _ = services
                .store
                .audit(tenant, None, "uninstall", "slack", why, None)
                .await;
        }
        Ok(false) => info!(team = %team, why, "a workspace with no stored token was uninstalled"),
        Err(e) => error!(error = ?e, "could not delete an uninstalled workspace's token"),
    }
    services.workspaces.forget(team);
}

fn routes(services: Arc<Services>) -> Router {
    Router::new()
        .route("/slack/install", get(install))
        .route("/slack/oauth_redirect", get(redirect))
        .with_state(services)
}

const AGAIN: &str = "Open the install link again for a fresh start.";

fn not_set_up() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not set up",
        "This bot is not set up to be installed into other workspaces.",
    )
}

fn failed(status: StatusCode, text: &str) -> Response {
    page(status, "The app was not installed", text)
}

async fn install(State(services): State<Arc<Services>>) -> Response {
    let (Some(client), Some(redirect)) = (
        &services.config.slack.client,
        services.config.http.public_url("/slack/oauth_redirect"),
    ) else {
        return not_set_up();
    };
    let state = new_state();
    if let Err(e) = services.store.create_install_state(&state).await {
        error!(error = ?e, "could not store an install state");
        return failed(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Something went wrong. {AGAIN}"),
        );
    }
    let mut url = match url::Url::parse(&services.config.slack.authorize_url) {
        Ok(url) => url,
        Err(_) => return not_set_up(),
    };
    url.query_pairs_mut()
        .append_pair("client_id", &client.client_id)
        .append_pair("scope", BOT_SCOPES)
        .append_pair("redirect_uri", &redirect)
        .append_pair("state", &state);
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `oauth.v2.access`'s answer (only what the bot keeps).
#[derive(Deserialize)]
struct Access {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    bot_user_id: Option<String>,
    #[serde(default)]
    team: Option<Named>,
    #[serde(default)]
    enterprise: Option<Named>,
    #[serde(default)]
    is_enterprise_install: bool,
    #[serde(default)]
    authed_user: Option<Named>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

async fn redirect(
    State(services): State<Arc<Services>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (Some(client), Some(redirect)) = (
        &services.config.slack.client,
        services.config.http.public_url("/slack/oauth_redirect"),
    ) else {
        return not_set_up();
    };
    let Some(state) = query.get("state") else {
        return failed(
            StatusCode::BAD_REQUEST,
            &format!("This link is incomplete. {AGAIN}"),
        );
    };
    match services.store.consume_install_state(state).await {
        Ok(true) => {}
        Ok(false) => {
            return failed(
                StatusCode::BAD_REQUEST,
                &format!(
                    "This install link is unknown, more than 10 minutes old, or was already \
                     used. Nothing was changed. {AGAIN}"
                ),
            );
        }
        Err(e) => {
            error!(error = ?e, "could not consume an install state");
            return failed(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Something went wrong. {AGAIN}"),
            );
        }
    }
    if query.contains_key("error") {
        return page(
            StatusCode::OK,
            "The app was not installed",
            &format!("The install was cancelled on Slack's page, so nothing was changed. {AGAIN}"),
        );
    }
    let Some(code) = query.get("code") else {
        return failed(
            StatusCode::BAD_REQUEST,
            &format!("This link is incomplete. {AGAIN}"),
        );
    };
    let exchanged = crate::clients::http_client()
        .post(format!("{}/oauth.v2.access", services.config.slack.api_url))
        .timeout(std::time::Duration::from_secs(20))
        .form(&[
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.expose_secret()),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
        ])
        .send()
        .await;
    let access: Access = match exchanged {
        Ok(response) => match response.json().await {
            Ok(access) => access,
            Err(e) => {
                warn!(error = %e, "oauth.v2.access answered something unreadable");
                return failed(
                    StatusCode::BAD_GATEWAY,
                    &format!("Slack did not answer properly. Nothing was changed. {AGAIN}"),
                );
            }
        },
        Err(e) => {
            warn!(error = %e.without_url(), "oauth.v2.access failed");
            return failed(
                StatusCode::BAD_GATEWAY,
                &format!("Slack could not be reached. Nothing was changed. {AGAIN}"),
            );
        }
    };
    let (true, Some(token), Some(team), Some(installer)) = (
        access.ok,
        access.access_token.clone(),
        access.team.as_ref(),
        access.authed_user.as_ref(),
    ) else {
        warn!(
            error = access.error.as_deref().unwrap_or("-"),
            "Slack refused the install exchange"
        );
        return failed(
            StatusCode::BAD_GATEWAY,
            &format!("Slack did not accept the install. Nothing was changed. {AGAIN}"),
        );
    };
    // An org-wide install serves every workspace of the enterprise: keyed by its id.
    let key = match (&access.enterprise, access.is_enterprise_install) {
        (Some(enterprise), true) => enterprise.id.clone(),
        _ => team.id.clone(),
    };
    let saved = async {
        let tenant = services.store.ensure_tenant(&key).await?;
        let secret = SecretString::from(serde_json::to_string(&BotTokens {
            bot_token: token.clone(),
            refresh_token: access.refresh_token.clone(),
        })?);
        services
            .store
            .put_credential(
                &services.cipher,
                NewCredential {
                    tenant: tenant.id,
                    subject: Subject::Tenant,
                    provider: Provider::Slack,
                    secret: &secret,
                    account_email: None,
                    api_domain: None,
                    expires_at: access
                        .expires_in
                        .map(|s| crate::store::now() + chrono::Duration::seconds(s)),
                    scopes: None,
                    metadata: serde_json::json!({
                        "installed_by": installer.id,
                        "team_name": team.name,
                        "bot_user_id": access.bot_user_id,
                        "enterprise_id": access.enterprise.as_ref().map(|e| e.id.clone()),
                    }),
                },
            )
            .await?;
        let user = services.store.ensure_user(tenant.id, &installer.id).await?;
        services
            .store
            .audit(tenant.id, Some(user.id), "install", "slack", "ok", None)
            .await?;
        anyhow::Ok(())
    };
    if let Err(e) = saved.await {
        error!(error = ?e, "could not save a workspace's install");
        return failed(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Something went wrong saving the install. {AGAIN}"),
        );
    }
    services.workspaces.forget(&key);
    info!(team = %key, "installed into a workspace");
    let welcome = SlackMessageContent::new().with_text(
        ":wave: Thanks for installing the follow-up assistant! Next steps: each seller types \
         `/fathom-connect` (their Fathom API key) and `/gmail-connect` (drafts in their own \
         Gmail); a workspace admin connects the team's CRM with `/crono-connect`. Then \
         `/followup` after a call."
            .to_owned(),
    );
    if let Err(e) = crate::workspace::within(&key, services.dm(&installer.id, welcome)).await {
        warn!(error = %e, "installed, but the welcome DM failed");
    }
    let name = team.name.as_deref().unwrap_or("your workspace");
    page(
        StatusCode::OK,
        "Installed",
        &format!(
            "The follow-up assistant is installed in {name}. Open Slack: a welcome message is waiting."
        ),
    )
}
