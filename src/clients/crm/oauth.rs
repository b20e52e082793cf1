//! The OAuth side of the CRMs a team connects with an app (HubSpot, Zoho CRM), through the
//! `oauth2` crate: the consent link, the code exchange and refreshes, the client secret always
//! sent in the body. Zoho's token endpoint depends on the data centre (the callback's
//! `accounts-server`), so each exchange may name its own token URL; Zoho also answers errors
//! with HTTP 200 `{"error": ...}`, which is read as the error it is.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Zoho's token answers name the data centre's API host.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ApiDomain {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_domain: Option<String>,
}

impl ExtraTokenFields for ApiDomain {}

type Tokens = StandardTokenResponse<ApiDomain, BasicTokenType>;

type Client = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A token answer, in the bot's terms.
#[derive(Debug)]
pub struct CrmGrant {
    pub access_token: SecretString,
    /// With a code exchange; a refresh answer may have none (the old one stays valid).
    pub refresh_token: Option<SecretString>,
    pub expires_at: DateTime<Utc>,
    pub api_domain: Option<String>,
}

/// Why the token endpoint said no.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The code or refresh token is expired, used or revoked.
    #[error("{0} answered that the grant is invalid")]
    InvalidGrant(&'static str),
    /// Refused for another reason (a wrong client, a bad request): the log says which.
    #[error("{0} refused the token request: {1}")]
    Refused(&'static str, String),
    /// Too many token requests (Zoho: 10 access tokens per refresh token per 10 minutes).
    #[error("{0} refused the token request: too many")]
    RateLimited(&'static str),
    /// Unreachable or unreadable: worth retrying.
    #[error("{0}'s token endpoint failed: {1}")]
    Unavailable(&'static str, String),
}

/// One CRM's OAuth app (client id and secret, its endpoints and scopes).
#[derive(Clone)]
pub struct OAuthApp {
    pub provider: &'static str,
    http: reqwest::Client,
    client_id: String,
    client_secret: SecretString,
    auth_url: String,
    token_url: String,
    redirect_url: String,
    scopes: Vec<String>,
    /// Extra parameters of the consent link (`access_type=offline` for Zoho).
    auth_params: Vec<(String, String)>,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What an `OAuthApp` is made of.
pub struct AppSettings<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
    pub auth_url: &'a str,
    pub token_url: &'a str,
    pub redirect_url: &'a str,
    pub scopes: &'a [&'a str],
    pub auth_params: &'a [(&'a str, &'a str)],
}

impl OAuthApp {
    pub fn new(
        provider: &'static str,
        http: reqwest::Client,
        settings: AppSettings<'_>,
    ) -> anyhow::Result<Self> {
        let app = Self {
            provider,
            http,
            client_id: settings.client_id.to_owned(),
            client_secret: settings.client_secret.clone(),
            auth_url: settings.auth_url.to_owned(),
            token_url: settings.token_url.to_owned(),
            redirect_url: settings.redirect_url.to_owned(),
            scopes: settings.scopes.iter().map(|s| (*s).to_owned()).collect(),
            auth_params: settings
                .auth_params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        app.client(None)?;
        Ok(app)
    }

    fn client(&self, token_url: Option<&str>) -> anyhow::Result<Client> {
        Ok(oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(AuthUrl::new(self.auth_url.clone())?)
            .set_token_uri(TokenUrl::new(
                token_url.unwrap_or(&self.token_url).to_owned(),
            )?)
            .set_redirect_uri(RedirectUrl::new(self.redirect_url.clone())?)
            .set_auth_type(AuthType::RequestBody))
    }

    /// The consent link for `state`.
    pub fn authorize_url(&self, state: &str) -> anyhow::Result<String> {
        let state = state.to_owned();
        let client = self.client(None)?;
        let mut request = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes.iter().map(|s| Scope::new(s.clone())));
        for (k, v) in &self.auth_params {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        Ok(request.url().0.to_string())
    }

    /// Exchanges a callback's code (at `token_url` when the data centre names its own).
    pub async fn exchange_code(
        &self,
        token_url: Option<&str>,
        code: &str,
    ) -> Result<CrmGrant, TokenError> {
        let client = self
            .client(token_url)
            .map_err(|e| TokenError::Refused(self.provider, e.to_string()))?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .request_async(&self.http)
            .await;
        self.grant(answer)
    }

    pub async fn refresh(
        &self,
        token_url: Option<&str>,
        refresh_token: &SecretString,
    ) -> Result<CrmGrant, TokenError> {
        let client = self
            .client(token_url)
            .map_err(|e| TokenError::Refused(self.provider, e.to_string()))?;
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let answer = client
            .exchange_refresh_token(&token)
            .request_async(&self.http)
            .await;
        self.grant(answer)
    }

    fn grant<E: std::error::Error>(
        &self,
        answer: Result<Tokens, RequestTokenError<E, BasicErrorResponse>>,
    ) -> Result<CrmGrant, TokenError> {
        let provider = self.provider;
        let tokens = match answer {
            Ok(tokens) => tokens,
            Err(RequestTokenError::ServerResponse(e)) => {
                let description = e.error_description().cloned().unwrap_or_default();
                return Err(match e.error() {
                    BasicErrorResponseType::InvalidGrant => TokenError::InvalidGrant(provider),
                    other => error_named(provider, other.as_ref(), &description),
                });
            }
            Err(RequestTokenError::Parse(e, body)) => {
                // Zoho: HTTP 200 with `{"error": "invalid_code"}`.
                return Err(match failure(&body) {
                    Some((error, description)) => error_named(provider, &error, &description),
                    None => TokenError::Unavailable(provider, format!("unreadable answer: {e}")),
                });
            }
            Err(RequestTokenError::Request(e)) => {
                return Err(TokenError::Unavailable(provider, e.to_string()));
            }
            Err(RequestTokenError::Other(e)) => return Err(TokenError::Unavailable(provider, e)),
        };
        let lifetime = tokens
            .expires_in()
            .unwrap_or(Duration::from_secs(3600))
            .min(Duration::from_secs(86_400));
        Ok(CrmGrant {
            access_token: SecretString::from(tokens.access_token().secret().clone()),
            refresh_token: tokens
                .refresh_token()
                .map(|t| SecretString::from(t.secret().clone()))
                .filter(|t| !t.expose_secret().is_empty()),
            expires_at: Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or_default(),
            api_domain: tokens.extra_fields().api_domain.clone(),
        })
    }
}

/// An error answer the standard shape did not cover: Zoho's HTTP-200 `{"error": …}`, or
/// HubSpot's own `{"status": "BAD_REFRESH_TOKEN", "message": …}` (UNVERIFIED whether its v3
/// endpoint still sends that; both are read).
fn failure(body: &[u8]) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |key: &str| value[key].as_str().map(str::to_owned);
    if let Some(error) = text("error") {
        return Some((error, text("error_description").unwrap_or_default()));
    }
    let status = text("status")?;
    let error = match status.as_str() {
        "BAD_REFRESH_TOKEN" | "BAD_AUTH_CODE" | "EXPIRED_AUTH_CODE" => "invalid_grant".to_owned(),
        _ => status,
    };
    Some((error, text("message").unwrap_or_default()))
}

fn error_named(provider: &'static str, error: &str, description: &str) -> TokenError {
    let lowered = format!("{error} {description}").to_ascii_lowercase();
    if matches!(error, "invalid_grant" | "invalid_code" | "invalid_token") {
        TokenError::InvalidGrant(provider)
    } else if lowered.contains("too many") {
        TokenError::RateLimited(provider)
    } else {
        TokenError::Refused(
            provider,
            format!(
                "{error}: {}",
                description.chars().take(200).collect::<String>()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_of_every_shape_are_read() {
        let read = |body: &str| {
            let (error, description) = failure(body.as_bytes()).unwrap();
            error_named("X", &error, &description)
        };
        assert!(matches!(
            read(r#"{"error":"invalid_code"}"#),
            TokenError::InvalidGrant(_)
        ));
        assert!(matches!(
            read(r#"{"status":"BAD_REFRESH_TOKEN","message":"missing or invalid refresh token"}"#),
            TokenError::InvalidGrant(_)
        ));
        assert!(matches!(
            read(r#"{"status":"BAD_CLIENT_ID","message":"no"}"#),
            TokenError::Refused(..)
        ));
        assert!(matches!(
            read(
                r#"{"error":"Access Denied","error_description":"You have made too many requests continuously."}"#
            ),
            TokenError::RateLimited(_)
        ));
        assert!(failure(b"<html>").is_none());
    }
}
