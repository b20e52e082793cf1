//! The browser side of connecting Google. Every failure answers a small page that says what
//! happened and what to do, and changes nothing stored.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use secrecy::ExposeSecret;
use slack_morphism::prelude::SlackMessageContent;
use tracing::{error, info, warn};

use crate::blocks::{self, Vars};
use crate::clients::google::OAuthError;
use crate::domain::ids::FollowupId;
use crate::domain::provider::Provider;
use crate::server::pages::{browser_cookie, consent_redirect, page};
use crate::services::Services;
use crate::store::oauth_states::{self, OAuthState, new_state};

pub fn routes(services: Arc<Services>) -> Router {
    Router::new()
        .route("/oauth/google/start", get(start))
        .route("/oauth/google/callback", get(callback))
        .with_state(services)
}

const AGAIN: &str = "Type /gmail-connect in Slack for a fresh link.";

fn expired() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link has expired",
        &format!(
            "This sign-in link is unknown, more than 10 minutes old, or was already used. \
             Nothing was changed. {AGAIN}"
        ),
    )
}

/// `/oauth/google/start?state=…`: binds the state to this browser, then off to Google.
async fn start(
    State(services): State<Arc<Services>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(google) = &services.google else {
        return page(
            StatusCode::NOT_FOUND,
            "Google is not set up",
            "This bot has no Google OAuth client configured.",
        );
    };
    let Some(state) = query.get("state") else {
        return expired();
    };
    let browser = browser_cookie(&headers).unwrap_or_else(new_state);
    let bound = services
        .store
        .bind_oauth_browser(
            state,
            Provider::Google.as_str(),
            &oauth_states::hash(&browser),
        )
        .await;
    let row = match bound {
        Ok(Some(row)) => row,
        Ok(None) => return expired(),
        Err(e) => {
            error!(error = ?e, "could not read an OAuth state");
            return unavailable();
        }
    };
    let Some(verifier) = open_verifier(&services, &row) else {
        return expired();
    };
    let location = google.authorize_url(state, &verifier, None);
    consent_redirect(&location, &browser, services.config.http.public_is_https())
}

fn open_verifier(services: &Services, row: &OAuthState) -> Option<String> {
    let sealed = row.pkce_verifier.as_deref()?;
    match services
        .cipher
        .open_str(sealed, crate::services::google::VERIFIER_CONTEXT)
    {
        Ok(v) => Some(v.expose_secret().to_owned()),
        Err(e) => {
            warn!(error = %e, "an OAuth state's verifier could not be opened");
            None
        }
    }
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        &format!(
            "The bot could not finish connecting Google just now. Nothing was changed. {AGAIN}"
        ),
    )
}

/// `/oauth/google/callback?state=…&code=…` (or `&error=…`).
async fn callback(
    State(services): State<Arc<Services>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(google) = &services.google else {
        return expired();
    };
    let Some(state) = query.get("state") else {
        return expired();
    };
    // Single use: consumed before anything else, whatever follows.
    let row = match services
        .store
        .consume_oauth_state(state, Provider::Google.as_str())
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return expired(),
        Err(e) => {
            error!(error = ?e, "could not consume an OAuth state");
            return unavailable();
        }
    };
    let same_browser = match (&row.browser_hash, browser_cookie(&headers)) {
        (Some(bound), Some(browser)) => *bound == oauth_states::hash(&browser),
        _ => false,
    };
    if !same_browser {
        warn!(tenant = %row.tenant_id, user = %row.user_id, "an OAuth callback came from another browser than the one that opened the link");
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
        info!(error = %error.chars().take(40).collect::<String>(), "Google sign-in not completed");
        return if error == "access_denied" {
            page(
                StatusCode::OK,
                "Google was not connected",
                &format!("You chose not to allow access, so nothing was changed. {AGAIN}"),
            )
        } else {
            page(
                StatusCode::BAD_REQUEST,
                "Google was not connected",
                &format!("Google did not complete the sign-in. Nothing was changed. {AGAIN}"),
            )
        };
    }
    let (Some(code), Some(verifier)) = (query.get("code"), open_verifier(&services, &row)) else {
        return expired();
    };
    let grant = match google.exchange_code(code, &verifier).await {
        Ok(grant) => grant,
        Err(e) => {
            warn!(error = %e, "the Google code exchange failed");
            let text = match e {
                OAuthError::Unavailable(_) => format!(
                    "Google did not answer properly, so nothing was changed. Please try again \
                     in a minute. {AGAIN}"
                ),
                _ => format!("Google did not accept the sign-in, so nothing was changed. {AGAIN}"),
            };
            return page(StatusCode::BAD_GATEWAY, "Google was not connected", &text);
        }
    };
    // Google lets people untick permissions on the consent screen; without these two the
    // buttons could only fail later, so say it now and keep nothing.
    if let Some(granted) = &grant.scopes {
        let missing: Vec<&str> = [
            ("gmail.compose", "write Gmail drafts"),
            ("calendar.events", "create calendar events"),
        ]
        .iter()
        .filter(|(scope, _)| !granted.split(' ').any(|g| g.ends_with(scope)))
        .map(|(_, what)| *what)
        .collect();
        if !missing.is_empty() {
            return page(
                StatusCode::BAD_REQUEST,
                "Some permissions were not allowed",
                &format!(
                    "The bot was not allowed to {}, so nothing was changed. {AGAIN} On \
                     Google's screen, tick every box.",
                    missing.join(" or ")
                ),
            );
        }
    }
    let email = match &grant.email {
        Some(email) => email.clone(),
        None => match google.userinfo_email(&grant.access_token).await {
            Ok(email) => email,
            Err(e) => {
                warn!(error = %e, "Google's userinfo failed after the exchange");
                return page(
                    StatusCode::BAD_GATEWAY,
                    "Google was not connected",
                    &format!(
                        "Google did not say which account signed in, so nothing was changed. {AGAIN}"
                    ),
                );
            }
        },
    };
    match services
        .save_google_grant(row.tenant_id, row.user_id, &grant, &email)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Google gave no lasting access",
                "Google connected without offline access, so the bot could not keep working \
                 for you. Remove the bot at https://myaccount.google.com/permissions, then \
                 type /gmail-connect in Slack again and accept every permission. Nothing was \
                 changed.",
            );
        }
        Err(e) => {
            error!(error = ?e, "could not save the Google tokens");
            return unavailable();
        }
    }
    if let Err(e) = services
        .store
        .audit(
            row.tenant_id,
            Some(row.user_id),
            "connect",
            Provider::Google.as_str(),
            "ok",
            None,
        )
        .await
    {
        warn!(error = ?e, "could not audit a Google connect");
    }
    services
        .in_workspace_of(row.tenant_id, tell_connected(&services, &row, &email))
        .await;
    page(
        StatusCode::OK,
        "Gmail connected",
        &format!("Gmail connected as {email}; you can close this tab."),
    )
}

/// The DM that confirms the connection, with the follow-up draft it was started from.
async fn tell_connected(services: &Services, row: &OAuthState, email: &str) {
    let sent = async {
        let Some(user) = services.store.user(row.tenant_id, row.user_id).await? else {
            return Ok(());
        };
        let mut message: serde_json::Value =
            blocks::GMAIL_CONNECTED.render(&Vars::new().set("email", email))?;
        let extra: serde_json::Value = serde_json::from_str(&row.extra).unwrap_or_default();
        if let Some(id) = extra["followup"].as_str()
            && let Some(followup) = services
                .store
                .followup(row.tenant_id, row.user_id, &FollowupId(id.to_owned()))
                .await?
            && followup.gmail.is_none()
        {
            let offer = blocks::GMAIL_PENDING_DRAFT.render(
                &Vars::new()
                    .set("title", followup.meeting_title)
                    .set("id", followup.id.0),
            )?;
            if let Some(list) = message["blocks"].as_array_mut() {
                list.push(offer);
            }
        }
        let content: SlackMessageContent = serde_json::from_value(message)?;
        services.dm(&user.slack_user_id, content).await?;
        services.refresh_home(row.tenant_id, row.user_id).await;
        anyhow::Ok(())
    };
    if let Err(e) = sent.await {
        warn!(error = ?e, "Google is connected but the confirmation DM failed");
    }
}
