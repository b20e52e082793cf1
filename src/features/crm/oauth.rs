//! The browser side of connecting HubSpot or Zoho CRM for a team: `/oauth/<crm>/start` ties the
//! one-time state (made when an admin picked the CRM in `/crono-connect`) to the browser and
//! sends it to the consent page; `/oauth/<crm>/callback` consumes the state (single use, ten
//! minutes, the same browser), asks Slack again whether the person is still an admin,
//! exchanges the code (Zoho: at the callback's `accounts-server`, only when it is one of the
//! allowed data centres, so the client secret never goes to a host a crafted link names),
//! saves the tokens sealed and replaces the team's previous CRM. Every failure is a small page
//! that says what happened, and changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use slack_morphism::prelude::SlackMessageContent;
use tracing::{error, info, warn};

use crate::clients::crm::oauth::TokenError;
use crate::domain::provider::Provider;
use crate::server::pages::{browser_cookie, consent_redirect, page};
use crate::services::Services;
use crate::store::oauth_states::{self, new_state};

pub fn routes(services: Arc<Services>) -> Router {
    let mut router = Router::new();
    for crm in ["hubspot", "zoho"] {
        router = router
            .route(
                &format!("/oauth/{crm}/start"),
                get(move |s, q, h| start(s, crm, q, h)),
            )
            .route(
                &format!("/oauth/{crm}/callback"),
                get(move |s, q, h| callback(s, crm, q, h)),
            );
    }
    router.with_state(services)
}

const AGAIN: &str = "A workspace admin can type /crono-connect in Slack for a fresh link.";

fn provider_of(name: &str) -> Option<Provider> {
    match name {
        "hubspot" => Some(Provider::Hubspot),
        "zoho" => Some(Provider::Zoho),
        _ => None,
    }
}

fn expired() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link has expired",
        &format!(
            "This link is unknown, more than 10 minutes old, or was already used. Nothing was \
             changed. {AGAIN}"
        ),
    )
}

fn not_set_up() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not set up",
        "This bot has no OAuth app configured for that CRM.",
    )
}

fn unavailable(label: &str) -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        &format!(
            "The bot could not finish connecting {label} just now. Nothing was changed. {AGAIN}"
        ),
    )
}

async fn start(
    State(services): State<Arc<Services>>,
    crm: &'static str,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(provider) = provider_of(crm) else {
        return not_set_up();
    };
    let Some(app) = services.crm_oauth(provider) else {
        return not_set_up();
    };
    let Some(state) = query.get("state") else {
        return expired();
    };
    let browser = browser_cookie(&headers).unwrap_or_else(new_state);
    match services
        .store
        .bind_oauth_browser(state, provider.as_str(), &oauth_states::hash(&browser))
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return expired(),
        Err(e) => {
            error!(error = ?e, "could not read an OAuth state");
            return unavailable(provider.label());
        }
    }
    match app.authorize_url(state) {
        Ok(location) => {
            consent_redirect(&location, &browser, services.config.http.public_is_https())
        }
        Err(e) => {
            error!(error = %e, "could not build a CRM consent link");
            unavailable(provider.label())
        }
    }
}

async fn callback(
    State(services): State<Arc<Services>>,
    crm: &'static str,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(provider) = provider_of(crm) else {
        return not_set_up();
    };
    let Some(app) = services.crm_oauth(provider) else {
        return not_set_up();
    };
    let label = provider.label();
    let Some(state) = query.get("state") else {
        return expired();
    };
    // Single use: consumed before anything else, whatever follows.
    let row = match services
        .store
        .consume_oauth_state(state, provider.as_str())
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return expired(),
        Err(e) => {
            error!(error = ?e, "could not consume an OAuth state");
            return unavailable(label);
        }
    };
    let same_browser = match (&row.browser_hash, browser_cookie(&headers)) {
        (Some(bound), Some(browser)) => *bound == oauth_states::hash(&browser),
        _ => false,
    };
    if !same_browser {
        warn!(tenant = %row.tenant_id, user = %row.user_id, %provider, "a CRM OAuth callback came from another browser than the one that opened the link");
        return page(
            StatusCode::BAD_REQUEST,
            "This sign-in was started elsewhere",
            &format!(
                "The link was opened in another browser (or by someone else), so it was not \
                 accepted. Nothing was changed. {AGAIN}"
            ),
        );
    }
    if let Some(error) = query.get("error") {
        info!(error = %error.chars().take(40).collect::<String>(), %provider, "CRM sign-in not completed");
        return page(
            StatusCode::OK,
            &format!("{label} was not connected"),
            &format!("Access was not allowed, so nothing was changed. {AGAIN}"),
        );
    }
    let Some(code) = query.get("code") else {
        return expired();
    };
    // Zoho's data centre: where the code is exchanged, and later refreshes go.
    let accounts_server = match provider {
        Provider::Zoho => {
            let named = query
                .get("accounts-server")
                .map(String::as_str)
                .unwrap_or(services.config.crm.zoho_accounts_url.as_str());
            match services.zoho.allowed_accounts_server(named) {
                Some(server) => Some(server),
                None => {
                    warn!(server = %named.chars().take(80).collect::<String>(), "a Zoho callback named an accounts server that is not allowed");
                    return page(
                        StatusCode::BAD_REQUEST,
                        "Zoho CRM was not connected",
                        &format!(
                            "The sign-in came back from a Zoho data centre this bot does not \
                             know, so nothing was changed. The person who runs the bot can add \
                             it to ZOHO_ACCOUNTS_SERVERS. {AGAIN}"
                        ),
                    );
                }
            }
        }
        _ => None,
    };
    let user = match services.store.user(row.tenant_id, row.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return expired(),
        Err(e) => {
            error!(error = ?e, "could not read the person of an OAuth state");
            return unavailable(label);
        }
    };
    if !services
        .is_team_admin(row.tenant_id, &user.slack_user_id)
        .await
    {
        return page(
            StatusCode::FORBIDDEN,
            &format!("{label} was not connected"),
            "Only a Slack workspace admin or owner, or a bot admin, can connect the team's \
             CRM. Nothing was changed.",
        );
    }
    let token_url = accounts_server
        .as_deref()
        .map(|s| format!("{s}/oauth/v2/token"));
    let grant = match app.exchange_code(token_url.as_deref(), code).await {
        Ok(grant) if grant.refresh_token.is_some() => grant,
        Ok(_) => {
            warn!(%provider, "the code exchange gave no refresh token");
            return page(
                StatusCode::BAD_GATEWAY,
                &format!("{label} was not connected"),
                &format!(
                    "{label} gave no lasting access, so the bot could not keep working for the \
                     team. Nothing was changed. {AGAIN}"
                ),
            );
        }
        Err(e) => {
            warn!(error = %e, "a CRM code exchange failed");
            let text = match e {
                TokenError::Unavailable(..) | TokenError::RateLimited(_) => format!(
                    "{label} did not answer properly, so nothing was changed. Please try again \
                     in a minute. {AGAIN}"
                ),
                _ => format!("{label} did not accept the sign-in, so nothing was changed. {AGAIN}"),
            };
            return page(
                StatusCode::BAD_GATEWAY,
                &format!("{label} was not connected"),
                &text,
            );
        }
    };
    if provider == Provider::Zoho && grant.api_domain.is_none() {
        warn!("Zoho's token answer had no api_domain");
        return unavailable(label);
    }
    if let Err(e) = services
        .save_crm_grant(
            row.tenant_id,
            provider,
            &grant,
            &user.slack_user_id,
            accounts_server.as_deref(),
        )
        .await
    {
        error!(error = ?e, "could not save a CRM grant");
        return unavailable(label);
    }
    if let Err(e) = services
        .store
        .audit(
            row.tenant_id,
            Some(row.user_id),
            "connect",
            provider.as_str(),
            "ok",
            None,
        )
        .await
    {
        warn!(error = ?e, "could not audit a CRM connect");
    }
    let text = format!(
        ":white_check_mark: {label} is connected for the whole workspace. Everyone can now use \
         `/crono-search`, `/crono-add-task`, `/crono-add-note` and the follow-up's CRM Note, \
         View Deals and Create Task buttons."
    );
    let dm = services.dm(
        &user.slack_user_id,
        SlackMessageContent::new().with_text(text),
    );
    if let Err(e) = services.in_workspace_of(row.tenant_id, dm).await {
        warn!(error = %e, "the CRM is connected but the confirmation DM failed");
    }
    services
        .in_workspace_of(
            row.tenant_id,
            services.refresh_home(row.tenant_id, row.user_id),
        )
        .await;
    page(
        StatusCode::OK,
        &format!("{label} connected"),
        &format!("{label} is connected for your Slack workspace; you can close this tab."),
    )
}
