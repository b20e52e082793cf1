//! Google: OAuth 2.0 for web server apps (through the `oauth2` crate, PKCE S256), Gmail
//! drafts and Calendar events. Every endpoint is configuration (`GoogleConfig`).
//!
//! Revocation is a plain POST: `oauth2` refuses a revocation endpoint that is not https,
//! which the loopback fakes in the tests are.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDateTime, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, decode, send};

const PROVIDER: &str = "Google";

/// What the bot asks for: who the account is, drafts in Gmail, events in Calendar.
pub const SCOPES: [&str; 4] = [
    "openid",
    "email",
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/calendar.events",
];

/// Token answers carry an `id_token` besides the standard fields.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;

type OAuthClient = oauth2::Client<
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

/// Where each Google endpoint is.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub userinfo_url: String,
    pub gmail_api_url: String,
    pub calendar_api_url: String,
}

pub struct Google {
    http: reqwest::Client,
    oauth: OAuthClient,
    endpoints: Endpoints,
}

/// A token answer, in the bot's terms.
#[derive(Debug)]
pub struct Grant {
    pub access_token: SecretString,
    /// Google sends one only with consent; a refresh answer never has one.
    pub refresh_token: Option<SecretString>,
    pub expires_at: DateTime<Utc>,
    pub scopes: Option<String>,
    /// From the `id_token` (received straight from the token endpoint over TLS, so its
    /// signature need not be checked: OpenID Connect Core 3.1.3.7).
    pub email: Option<String>,
}

/// Why the token endpoint said no.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The code or refresh token is expired or revoked: the person must connect again.
    #[error("Google answered invalid_grant")]
    InvalidGrant,
    /// Google refused for another reason (a wrong client, a bad request): the log says which.
    #[error("Google refused the token request: {0}")]
    Refused(String),
    /// Google could not be reached or answered something unreadable: worth retrying.
    #[error("Google's token endpoint failed: {0}")]
    Unavailable(String),
}

/// A draft in Gmail.
#[derive(Clone, Debug, PartialEq)]
pub struct GmailDraft {
    pub id: String,
    pub message_id: String,
}

/// An event to create.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// Chosen by the bot (base32hex), so creating it twice makes one event.
    pub id: String,
    pub summary: String,
    pub description: String,
    /// Local wall-clock times in `time_zone`.
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub time_zone: String,
    pub attendees: Vec<String>,
    pub meet: bool,
    /// Whether Google emails the invitations (`sendUpdates=all`) or not (`none`).
    pub invite: bool,
}

/// A created event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: String,
    pub html_link: String,
    pub meet_link: Option<String>,
}

impl Google {
    pub fn new(
        http: reqwest::Client,
        client_id: &str,
        client_secret: &SecretString,
        redirect_url: &str,
        endpoints: Endpoints,
    ) -> anyhow::Result<Self> {
        let oauth = oauth2::Client::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.expose_secret().to_owned()))
            .set_auth_uri(AuthUrl::new(endpoints.auth_url.clone())?)
            .set_token_uri(TokenUrl::new(endpoints.token_url.clone())?)
            .set_redirect_uri(RedirectUrl::new(redirect_url.to_owned())?)
            .set_auth_type(AuthType::RequestBody);
        Ok(Self {
            http,
            oauth,
            endpoints,
        })
    }

    /// A fresh PKCE verifier (kept sealed with the state until the callback).
    pub fn new_verifier() -> String {
        let (_, verifier) = PkceCodeChallenge::new_random_sha256();
        verifier.secret().clone()
    }

    /// Where to send the person's browser: consent for offline access with PKCE S256.
    pub fn authorize_url(&self, state: &str, verifier: &str, login_hint: Option<&str>) -> String {
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.into()));
        let state = state.to_owned();
        let mut request = self
            .oauth
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
            .set_pkce_challenge(challenge)
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent")
            .add_extra_param("include_granted_scopes", "true");
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_owned());
        }
        request.url().0.to_string()
    }

    /// Exchanges the callback's code, with the verifier its state kept.
    pub async fn exchange_code(&self, code: &str, verifier: &str) -> Result<Grant, OAuthError> {
        let answer = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&self.http)
            .await;
        self.grant(answer).await
    }

    /// A new access token from the refresh token (which Google keeps the same).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<Grant, OAuthError> {
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let answer = self
            .oauth
            .exchange_refresh_token(&token)
            .request_async(&self.http)
            .await;
        self.grant(answer).await
    }

    async fn grant<E: std::error::Error>(
        &self,
        answer: Result<Tokens, RequestTokenError<E, BasicErrorResponse>>,
    ) -> Result<Grant, OAuthError> {
        let tokens = match answer {
            Ok(tokens) => tokens,
            Err(RequestTokenError::ServerResponse(e)) => {
                return Err(match e.error() {
                    BasicErrorResponseType::InvalidGrant => OAuthError::InvalidGrant,
                    other => OAuthError::Refused(format!(
                        "{other}{}",
                        e.error_description()
                            .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                            .unwrap_or_default()
                    )),
                });
            }
            Err(RequestTokenError::Request(e)) => {
                return Err(OAuthError::Unavailable(e.to_string()));
            }
            Err(RequestTokenError::Parse(e, _)) => {
                return Err(OAuthError::Unavailable(format!("unreadable answer: {e}")));
            }
            Err(RequestTokenError::Other(e)) => return Err(OAuthError::Unavailable(e)),
        };
        let lifetime = tokens
            .expires_in()
            .unwrap_or(Duration::from_secs(3600))
            .min(Duration::from_secs(86_400));
        let expires_at = Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or_default();
        let email = tokens
            .extra_fields()
            .id_token
            .as_deref()
            .and_then(email_from_id_token);
        Ok(Grant {
            access_token: SecretString::from(tokens.access_token().secret().clone()),
            refresh_token: tokens
                .refresh_token()
                .map(|t| SecretString::from(t.secret().clone()))
                .filter(|t| !t.expose_secret().is_empty()),
            expires_at,
            scopes: tokens
                .scopes()
                .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
            email,
        })
    }

    /// The account's email, when the token answer had no `id_token`.
    pub async fn userinfo_email(&self, access: &SecretString) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Info {
            email: String,
        }
        let body = send(
            PROVIDER,
            "userinfo",
            self.http
                .get(&self.endpoints.userinfo_url)
                .bearer_auth(access.expose_secret()),
        )
        .await?;
        Ok(decode::<Info>(PROVIDER, &body)?.email)
    }

    /// Revokes the grant (either token revokes it all).
    pub async fn revoke(&self, token: &SecretString) -> Result<(), ApiError> {
        send(
            PROVIDER,
            "revoke",
            self.http
                .post(&self.endpoints.revoke_url)
                .form(&[("token", token.expose_secret())]),
        )
        .await
        .map(drop)
    }

    fn drafts_url(&self) -> String {
        format!("{}/gmail/v1/users/me/drafts", self.endpoints.gmail_api_url)
    }

    /// `users.drafts.create` with a whole RFC 5322 message.
    pub async fn create_draft(
        &self,
        access: &SecretString,
        message: &[u8],
    ) -> Result<GmailDraft, ApiError> {
        let body = send(
            PROVIDER,
            "gmail.drafts.create",
            self.http
                .post(self.drafts_url())
                .bearer_auth(access.expose_secret())
                .json(&json!({ "message": { "raw": URL_SAFE.encode(message) } })),
        )
        .await?;
        parse_draft(&decode(PROVIDER, &body)?)
    }

    /// The draft whose message carries this `Message-ID`, if one was made already (a retry
    /// after the bot died before recording Google's answer).
    pub async fn find_draft(
        &self,
        access: &SecretString,
        message_id: &str,
    ) -> Result<Option<GmailDraft>, ApiError> {
        let body = send(
            PROVIDER,
            "gmail.drafts.list",
            self.http
                .get(self.drafts_url())
                .bearer_auth(access.expose_secret())
                .query(&[("q", format!("rfc822msgid:{message_id}"))]),
        )
        .await?;
        let list: serde_json::Value = decode(PROVIDER, &body)?;
        match list["drafts"].as_array().and_then(|d| d.first()) {
            Some(draft) => parse_draft(draft).map(Some),
            None => Ok(None),
        }
    }

    fn events_url(&self) -> String {
        format!(
            "{}/calendars/primary/events",
            self.endpoints.calendar_api_url
        )
    }

    /// `events.insert`; the event's own id makes a second insert answer 409, which then
    /// reads the event made the first time.
    pub async fn insert_event(
        &self,
        access: &SecretString,
        event: &NewEvent,
    ) -> Result<Event, ApiError> {
        let time = |t: &NaiveDateTime| json!({ "dateTime": t.format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": event.time_zone });
        let mut body = json!({
            "id": event.id,
            "summary": event.summary,
            "description": event.description,
            "start": time(&event.start),
            "end": time(&event.end),
            "attendees": event.attendees.iter().map(|e| json!({ "email": e })).collect::<Vec<_>>(),
        });
        if event.meet {
            body["conferenceData"] = json!({
                "createRequest": {
                    "requestId": event.id,
                    "conferenceSolutionKey": { "type": "hangoutsMeet" }
                }
            });
        }
        let answer = send(
            PROVIDER,
            "calendar.events.insert",
            self.http
                .post(self.events_url())
                .bearer_auth(access.expose_secret())
                .query(&[
                    ("sendUpdates", if event.invite { "all" } else { "none" }),
                    ("conferenceDataVersion", if event.meet { "1" } else { "0" }),
                ])
                .json(&body),
        )
        .await;
        let text = match answer {
            Ok(text) => text,
            Err(ApiError::Rejected { status: 409, .. }) => {
                send(
                    PROVIDER,
                    "calendar.events.get",
                    self.http
                        .get(format!("{}/{}", self.events_url(), event.id))
                        .bearer_auth(access.expose_secret()),
                )
                .await?
            }
            Err(e) => return Err(e),
        };
        let v: serde_json::Value = decode(PROVIDER, &text)?;
        let (Some(id), Some(link)) = (v["id"].as_str(), v["htmlLink"].as_str()) else {
            return Err(ApiError::Decode {
                provider: PROVIDER,
                detail: "the event has no id or htmlLink".to_owned(),
            });
        };
        Ok(Event {
            id: id.to_owned(),
            html_link: link.to_owned(),
            meet_link: v["hangoutLink"].as_str().map(str::to_owned),
        })
    }
}

fn parse_draft(v: &serde_json::Value) -> Result<GmailDraft, ApiError> {
    match (v["id"].as_str(), v["message"]["id"].as_str()) {
        (Some(id), Some(message)) => Ok(GmailDraft {
            id: id.to_owned(),
            message_id: message.to_owned(),
        }),
        _ => Err(ApiError::Decode {
            provider: PROVIDER,
            detail: "the draft has no id or message id".to_owned(),
        }),
    }
}

/// The `email` claim of an id token (its payload only; see `Grant::email`).
pub fn email_from_id_token(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["email"].as_str().map(str::to_owned)
}

/// The link that opens a draft in Gmail, in the right account.
pub fn draft_link(account: Option<&str>, message_id: &str) -> String {
    let account = account
        .map(|a| url::form_urlencoded::byte_serialize(a.as_bytes()).collect::<String>())
        .unwrap_or_else(|| "0".to_owned());
    format!("https://mail.google.com/mail/u/{account}/#drafts?compose={message_id}")
}

/// An email address and, when known, the person's name.
#[derive(Clone, Debug, PartialEq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: String,
}

/// What a follow-up email says.
#[derive(Clone, Debug)]
pub struct Email {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub subject: String,
    pub body: String,
    /// Without the angle brackets: `<id>@<domain>`.
    pub message_id: String,
}

/// The RFC 5322 message: multipart/alternative with a text/plain and a text/html part made
/// from the same body (the HTML escaped), headers encoded where they are not ASCII.
pub fn compose(email: &Email) -> std::io::Result<Vec<u8>> {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::address::Address;
    let mailbox = |m: &Mailbox| -> Address<'static> {
        match &m.name {
            Some(name) => Address::from((name.clone(), m.email.clone())),
            None => Address::from(m.email.clone()),
        }
    };
    let mut message = MessageBuilder::new()
        .from(mailbox(&email.from))
        .subject(email.subject.clone())
        .message_id(email.message_id.clone())
        .text_body(email.body.clone())
        .html_body(html_body(&email.body));
    if !email.to.is_empty() {
        message = message.to(email.to.iter().map(mailbox).collect::<Vec<_>>());
    }
    message.write_to_vec()
}

/// Text made safe inside HTML (element content or a quoted attribute).
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The body as simple HTML: escaped, paragraphs on blank lines, line breaks kept.
pub fn html_body(text: &str) -> String {
    let escape = escape_html;
    let paragraphs: Vec<String> = text
        .replace("\r\n", "\n")
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            format!(
                "<p>{}</p>",
                escape(p.trim_matches('\n')).replace('\n', "<br>\n")
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>{}</body></html>",
        paragraphs.join("\n")
    )
}

/// Reads an edited recipient list: one per line or separated by commas or semicolons, as
/// `email` or `Name <email>`; what is not an address is returned apart, to be shown.
pub fn parse_recipients(text: &str) -> (Vec<Mailbox>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in text.split(['\n', ',', ';']) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (name, email) = match (item.rfind('<'), item.ends_with('>')) {
            (Some(open), true) => {
                let name = item[..open].trim().trim_matches('"').trim();
                (
                    (!name.is_empty()).then(|| name.to_owned()),
                    item[open + 1..item.len() - 1].trim(),
                )
            }
            _ => (None, item),
        };
        if is_email(email) {
            if !good
                .iter()
                .any(|m: &Mailbox| m.email.eq_ignore_ascii_case(email))
            {
                good.push(Mailbox {
                    name,
                    email: email.to_owned(),
                });
            }
        } else {
            bad.push(item.to_owned());
        }
    }
    (good, bad)
}

/// A plain `local@domain.tld` check: enough to catch typos, never a full RFC 5321 parser.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || "<>()[],;:\"\\".contains(c))
        && !domain.contains('@')
}

/// What Google's token endpoint says of the OAuth client (`doctor`).
#[derive(Debug, PartialEq, Eq)]
pub enum ClientCheck {
    /// The client id and secret were accepted (the made-up code was not: `invalid_grant`).
    Accepted,
    /// `invalid_client` or `unauthorized_client`: the id or the secret is wrong.
    WrongClient,
    /// `redirect_uri_mismatch`: the redirect URI is not registered for the client.
    RedirectMismatch,
    /// No verdict (Google unreachable, or an answer we did not expect): a short reason.
    Unknown(String),
}

/// Exchanges a made-up code at the token endpoint: Google checks the client (and the
/// redirect URI) before the code, so its error says whether the client is right. Nothing is
/// granted; the answer's body goes to the log, not to the caller.
pub async fn check_client(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: &SecretString,
    redirect_uri: &str,
) -> ClientCheck {
    let request = http
        .post(token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "followup-bot-doctor-check"),
            ("client_id", client_id),
            ("client_secret", client_secret.expose_secret()),
            ("redirect_uri", redirect_uri),
        ])
        .timeout(Duration::from_secs(20));
    let (status, body) = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(e) => {
            let why = if e.is_timeout() {
                "Google did not answer in time"
            } else {
                "Google's token endpoint could not be reached"
            };
            tracing::warn!(error = %e.without_url(), "checking the Google client");
            return ClientCheck::Unknown(why.to_owned());
        }
    };
    #[derive(Deserialize)]
    struct OAuthAnswer {
        error: String,
    }
    let error = serde_json::from_str::<OAuthAnswer>(&body).map(|a| a.error);
    match error.as_deref() {
        Ok("invalid_grant") => ClientCheck::Accepted,
        Ok("invalid_client" | "unauthorized_client") => ClientCheck::WrongClient,
        Ok("redirect_uri_mismatch") => ClientCheck::RedirectMismatch,
        _ => {
            let start: String = body.chars().take(300).collect();
            tracing::warn!(status, body = %start, "unexpected answer checking the Google client");
            ClientCheck::Unknown(format!("Google answered {status}, unexpectedly"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_read_with_names_and_typos_set_apart() {
        let (good, bad) = parse_recipients(
            "ana@acme.test\nJosé Núñez <jose@acme.test>, not-an-email; \"Zoë\" <zoe@acme.test>\nana@ACME.test",
        );
        assert_eq!(
            good.iter().map(|m| m.email.as_str()).collect::<Vec<_>>(),
            ["ana@acme.test", "jose@acme.test", "zoe@acme.test"]
        );
        assert_eq!(good[1].name.as_deref(), Some("José Núñez"));
        assert_eq!(good[2].name.as_deref(), Some("Zoë"));
        assert_eq!(bad, ["not-an-email"]);
    }

    #[test]
    fn the_html_part_is_escaped() {
        let html = html_body("Hi <b>Ana</b> & co,\n\nline one\nline two");
        assert!(html.contains("<p>Hi &lt;b&gt;Ana&lt;/b&gt; &amp; co,</p>"));
        assert!(html.contains("line one<br>\nline two"));
    }

    #[test]
    fn the_email_claim_is_read_from_an_id_token() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"email":"sam@seller.test","sub":"1"}"#);
        assert_eq!(
            email_from_id_token(&format!("e30.{payload}.sig")).as_deref(),
            Some("sam@seller.test")
        );
        assert_eq!(email_from_id_token("garbage"), None);
    }
}
