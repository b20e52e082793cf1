//! A fake of Google's OAuth 2.0 (authorize, token, userinfo, revoke), Gmail drafts and Calendar
//! events APIs, all on one base URL on 127.0.0.1, for integration tests.
//!
//! ```ignore
//! let google = FakeGoogle::start("cid.apps.googleusercontent.com", "GOCSPX-secret").await;
//! google.set_account("sam@seller.example");
//! // configure the bot with google.auth_url(), token_url(), userinfo_url(), revoke_url(),
//! // gmail_api_url() and calendar_api_url(); then play the browser on its consent link:
//! let callback = google.consent(&link_the_bot_posted).await?; // {redirect_uri}?state=…&code=…
//! reqwest::get(callback).await?;
//! let drafts = google.wait_for_drafts(1, Duration::from_secs(5)).await?;
//! assert_eq!(drafts[0].owner, "sam@seller.example");
//! ```
//!
//! Behaviour worth knowing:
//! - Every request is recorded as a [`GoogleCall`] (method, path, query, bearer, status).
//!   Unknown paths → 404 `{"error":{"code":404,"message":"Not Found","status":"NOT_FOUND"}}`;
//!   a known path with the wrong method → 405.
//! - `GET /o/oauth2/v2/auth` records its query ([`FakeGoogle::authorize_calls`]) and checks, in
//!   order: `client_id`, `redirect_uri` (non-empty, a URL), `response_type=code`,
//!   `code_challenge_method=S256`, `code_challenge` non-empty, and `scope` holding every one of
//!   [`REQUIRED_SCOPES`]. A violation → 400 text/plain naming it (Google shows an error page; it
//!   does not redirect). Otherwise the account of [`FakeGoogle::set_account`] (default
//!   [`DEFAULT_ACCOUNT`]; `login_hint` is only recorded) "consents" and the answer is 302 to
//!   `{redirect_uri}?state=…&code=…&scope=…&authuser=0[&prompt=…]` (`state` only when sent), or
//!   after [`FakeGoogle::deny_next`] to `{redirect_uri}?error=access_denied[&state=…]`.
//! - Granted scopes are spelled as Google returns them: `email` becomes
//!   [`SCOPE_USERINFO_EMAIL`] (`profile` likewise), in the redirect and in token answers.
//!   [`FakeGoogle::uncheck_scopes_next`] leaves scopes out of the next grant (granular consent);
//!   with `include_granted_scopes=true` the scopes of the account's live grants are added.
//! - Codes look like Google's (`4/0A…`, with a `/`), are valid once (any exchange attempt that
//!   passes client authentication consumes one) and are bound to client, redirect_uri,
//!   code_challenge, account, scope and `access_type` (no `refresh_token` unless it was
//!   `offline`, as Google).
//! - `POST /token` takes a form; client credentials come as HTTP Basic (urlencoded id and
//!   secret, RFC 6749 §2.3.1) or as `client_id`/`client_secret` in the form. Checks, in order: a
//!   queued [`FakeGoogle::fail_token_next`] answer (served as given; touches no state);
//!   unknown client → 401 `invalid_client` "The OAuth client was not found.", wrong or missing
//!   secret → 401 `invalid_client` "Unauthorized"; with [`FakeGoogle::register_redirect_uris`]
//!   called, an `authorization_code` exchange whose `redirect_uri` is not one of them → 400
//!   `redirect_uri_mismatch` "Bad Request" (before its code is looked at; without the call any
//!   URI is registered); then per `grant_type` (missing →
//!   400 `invalid_request`, other → 400 `unsupported_grant_type`):
//!   - `authorization_code`: missing `code` → 400 `invalid_request`; unknown or used code,
//!     `redirect_uri` mismatch or a wrong `code_verifier` → 400 `invalid_grant` "Bad Request";
//!     a missing verifier → 400 `invalid_grant` "Missing code verifier.". Success →
//!     `{access_token, expires_in, refresh_token, scope, token_type:"Bearer", id_token}`
//!     (`refresh_token` left out after [`FakeGoogle::omit_refresh_token_next`]).
//!   - `refresh_token`: unknown or revoked → 400 `invalid_grant` "Token has been expired or
//!     revoked."; success → a new access token, without `refresh_token`.
//! - Every token call is a [`TokenCall`] (form minus `client_secret`); every `refresh_token`
//!   call, whatever it answered, counts in [`FakeGoogle::refresh_count`].
//!   [`FakeGoogle::set_token_delay`] delays every answer (the state changes on arrival).
//! - `id_token` (only when `openid` was granted) is `b64url(header).b64url(payload).
//!   b64url("signature")`, payload `{iss, aud, azp, sub, email, email_verified, iat, exp}`;
//!   `sub` is [`sub_for`] the account. [`id_token_claims`] decodes one.
//! - Access tokens (`ya29.…`) live [`FakeGoogle::set_access_ttl`] seconds (default 3599; 0 or
//!   less: born expired), checked against the monotonic clock at each use;
//!   [`FakeGoogle::expire_access_tokens`] expires every one now. Refresh tokens (`1//…`) never
//!   expire.
//! - `GET|POST /v1/userinfo` with a live bearer → `{sub, email, email_verified:true}`, else 401
//!   `{"error":"invalid_token","error_description":"Invalid Credentials"}`.
//! - `POST /revoke` takes `token` from the query or a form body. A live access or refresh token
//!   → 200 `{}` and the account's whole grant goes (every refresh and access token issued to it
//!   so far, as Google removes the app's access); unknown, expired or already revoked → 400
//!   `invalid_token` "Token expired or revoked"; no token → 400 `invalid_request`. Each token
//!   given is listed in [`FakeGoogle::revoked_tokens`]. [`FakeGoogle::revoke_grant`] does the
//!   same from the test side (the user removed access).
//! - Gmail and Calendar routes check the bearer first: expired, revoked or unknown → 401
//!   `{"error":{"code":401,"message":"Request had invalid authentication credentials.",
//!   "status":"UNAUTHENTICATED"}}`; a live token without the API's scope (`gmail.compose`,
//!   `gmail.modify` or `https://mail.google.com/`; `calendar.events` or `calendar`) → 403
//!   `PERMISSION_DENIED` "Request had insufficient authentication scopes.". A 401/403 does not
//!   consume a queued failure.
//! - `POST /gmail/v1/users/me/drafts` `{"message":{"raw":…}}`: `raw` is base64url with or
//!   without padding, or standard base64. Missing, empty or undecodable → 400 "Invalid value
//!   for ByteString" (a body that is not JSON → 400 "Invalid JSON payload received."). Stored as a [`Draft`] of the bearer's account (its `Message-ID` without
//!   angle brackets, parsed with mail-parser) and answered `{"id":"r…","message":{"id","threadId",
//!   "labelIds":["DRAFT"]}}`; `threadId` is `message.threadId` when sent, else the message id.
//!   [`FakeGoogle::fail_gmail_next`] answers one create as given, storing nothing;
//!   [`FakeGoogle::set_gmail_delay`] delays the answer after storing.
//! - `GET /gmail/v1/users/me/drafts[?q=rfc822msgid:<id>]` lists the account's drafts, newest
//!   first: `{"drafts":[{"id","message":{"id","threadId"}}],"resultSizeEstimate":N}`, or just
//!   `{"resultSizeEstimate":0}` when none. `rfc822msgid:` matches the Message-ID exactly, with or
//!   without angle brackets; any other `q` is ignored (all drafts).
//! - `POST /calendar/v3/calendars/primary/events` records query and body as a
//!   [`CalendarEvent`]. Checks: body a JSON object; a given `id` is 5–1024 chars of `[a-v0-9]`
//!   else 400 `invalidResourceId`; an `id` the account already has → 409 `duplicate`;
//!   `start.dateTime` / `end.dateTime` required (400 `required`; all-day `date` events are not
//!   supported), RFC 3339, or local time with a `timeZone` (else 400); end before start (both
//!   with offsets) → 400 `timeRangeEmpty`; a `createRequest` with a `conferenceSolutionKey.type`
//!   other than `hangoutsMeet` → 400 `invalid`. Success → the body echoed with `id` (generated,
//!   `fakeev…`, if not given), `status:"confirmed"` (unless given), `htmlLink`, `kind`, `etag`,
//!   `iCalUID`, `creator`/`organizer` (the account), `created`/`updated`, and attendees'
//!   `responseStatus:"needsAction"`. `conferenceData` is dropped unless
//!   `conferenceDataVersion=1`; then a `createRequest` yields `hangoutLink` [`MEET_LINK`] and
//!   `conferenceData.{conferenceId, conferenceSolution, entryPoints}` with the request's
//!   `status.statusCode:"success"`. [`FakeGoogle::fail_calendar_next`] answers one insert as
//!   given (nothing stored); [`FakeGoogle::set_calendar_delay`] delays the answer after storing.
//! - `GET /calendar/v3/calendars/primary/events/{id}` → the stored event of the account, else
//!   404 `notFound`. Nothing else of Calendar is faked (`events.list`, patch, delete → 405).
//! - Draft ids (`r7000…`), Gmail message ids and generated event ids count up from the start
//!   of the fake; codes and tokens are random.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub const DEFAULT_ACCOUNT: &str = "seller@gmail.example";
pub const SCOPE_GMAIL_COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";
pub const SCOPE_CALENDAR_EVENTS: &str = "https://www.googleapis.com/auth/calendar.events";
pub const SCOPE_USERINFO_EMAIL: &str = "https://www.googleapis.com/auth/userinfo.email";
pub const SCOPE_USERINFO_PROFILE: &str = "https://www.googleapis.com/auth/userinfo.profile";
/// What the authorize endpoint insists on (as requested; `email` is granted as
/// [`SCOPE_USERINFO_EMAIL`]).
pub const REQUIRED_SCOPES: [&str; 4] = [
    "openid",
    "email",
    SCOPE_GMAIL_COMPOSE,
    SCOPE_CALENDAR_EVENTS,
];
pub const GMAIL_SCOPES: [&str; 3] = [
    SCOPE_GMAIL_COMPOSE,
    "https://www.googleapis.com/auth/gmail.modify",
    "https://mail.google.com/",
];
pub const CALENDAR_SCOPES: [&str; 2] = [
    SCOPE_CALENDAR_EVENTS,
    "https://www.googleapis.com/auth/calendar",
];
pub const DEFAULT_ACCESS_TTL: i64 = 3599;
pub const MEET_CODE: &str = "abc-defg-hij";
pub const MEET_LINK: &str = "https://meet.google.com/abc-defg-hij";

const AUTH_PATH: &str = "/o/oauth2/v2/auth";
const TOKEN_PATH: &str = "/token";
const USERINFO_PATH: &str = "/v1/userinfo";
const REVOKE_PATH: &str = "/revoke";
const DRAFTS_PATH: &str = "/gmail/v1/users/me/drafts";
const EVENTS_PATH: &str = "/calendar/v3/calendars/primary/events";

// ------------------------------------------------------------------------------ records

/// One request to the fake.
#[derive(Clone, Debug)]
pub struct GoogleCall {
    pub method: String,
    pub path: String,
    /// Decoded query pairs in order.
    pub query: Vec<(String, String)>,
    /// The `Authorization: Bearer` token, if any.
    pub bearer: Option<String>,
    /// What the fake answered.
    pub status: u16,
    pub at: Instant,
}

impl GoogleCall {
    /// First value of a query param.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One `POST /token`.
#[derive(Clone, Debug)]
pub struct TokenCall {
    pub grant_type: String,
    /// The form as sent, minus `client_secret`.
    pub form: HashMap<String, String>,
    /// The client id, from Basic auth or the form.
    pub client_id: Option<String>,
    /// The client authenticated with HTTP Basic (else in the form, or not at all).
    pub basic_auth: bool,
    pub status: u16,
    pub at: Instant,
}

/// One draft made by `drafts.create`.
#[derive(Clone, Debug)]
pub struct Draft {
    /// The draft id, `r…`.
    pub id: String,
    /// The Gmail message id (hex).
    pub message_id: String,
    pub thread_id: String,
    /// The account of the bearer token.
    pub owner: String,
    /// The decoded RFC 5322 message.
    pub raw: Vec<u8>,
    /// Its `Message-ID` header, without angle brackets.
    pub rfc822_message_id: Option<String>,
}

impl Draft {
    pub fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// One event made by `events.insert`.
#[derive(Clone, Debug)]
pub struct CalendarEvent {
    pub id: String,
    pub owner: String,
    /// Query params of the insert (`sendUpdates`, `conferenceDataVersion`, …).
    pub query: HashMap<String, String>,
    /// The body as sent.
    pub body: Value,
    /// The event as answered (and served by `GET …/events/{id}`).
    pub resource: Value,
}

/// Tokens minted by [`FakeGoogle::issue_tokens`].
#[derive(Clone, Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Space separated, as a token answer would have it.
    pub scope: String,
    pub expires_in: i64,
}

// ------------------------------------------------------------------------------ state

#[derive(Clone, Debug)]
struct Code {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    email: String,
    scope: Vec<String>,
    offline: bool,
}

#[derive(Clone, Debug)]
struct Grant {
    email: String,
    scope: Vec<String>,
    revoked: bool,
}

#[derive(Clone, Debug)]
struct Access {
    grant: usize,
    issued: Instant,
    ttl: i64,
    expired: bool,
}

#[derive(Clone, Debug)]
struct Canned {
    status: u16,
    body: Value,
}

struct Inner {
    client_id: String,
    client_secret: String,
    account: String,
    deny_next: bool,
    omit_refresh_next: bool,
    unchecked_next: Vec<String>,
    access_ttl: i64,
    token_delay: Duration,
    gmail_delay: Duration,
    calendar_delay: Duration,
    fail_token: VecDeque<Canned>,
    /// The client's registered redirect URIs; `None`: every URI is.
    redirect_uris: Option<Vec<String>>,
    fail_gmail: VecDeque<Canned>,
    fail_calendar: VecDeque<Canned>,
    codes: HashMap<String, Code>,
    grants: Vec<Grant>,
    refresh_tokens: HashMap<String, usize>,
    access_tokens: HashMap<String, Access>,
    counter: u64,
    refresh_count: usize,
    calls: Vec<GoogleCall>,
    authorize_calls: Vec<HashMap<String, String>>,
    token_calls: Vec<TokenCall>,
    revoked_tokens: Vec<String>,
    drafts: Vec<Draft>,
    events: Vec<CalendarEvent>,
}

struct Shared {
    state: Mutex<Inner>,
    notify: Notify,
    addr: SocketAddr,
}

/// Cheap to clone; all clones share one fake.
#[derive(Clone)]
pub struct FakeGoogle {
    shared: Arc<Shared>,
}

impl FakeGoogle {
    /// Binds a loopback port and serves on the current runtime; only this OAuth client exists.
    pub async fn start(client_id: &str, client_secret: &str) -> FakeGoogle {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake google");
        let shared = Arc::new(Shared {
            state: Mutex::new(Inner {
                client_id: client_id.to_string(),
                client_secret: client_secret.to_string(),
                account: DEFAULT_ACCOUNT.to_string(),
                deny_next: false,
                omit_refresh_next: false,
                unchecked_next: Vec::new(),
                access_ttl: DEFAULT_ACCESS_TTL,
                token_delay: Duration::ZERO,
                gmail_delay: Duration::ZERO,
                calendar_delay: Duration::ZERO,
                fail_token: VecDeque::new(),
                redirect_uris: None,
                fail_gmail: VecDeque::new(),
                fail_calendar: VecDeque::new(),
                codes: HashMap::new(),
                grants: Vec::new(),
                refresh_tokens: HashMap::new(),
                access_tokens: HashMap::new(),
                counter: 0,
                refresh_count: 0,
                calls: Vec::new(),
                authorize_calls: Vec::new(),
                token_calls: Vec::new(),
                revoked_tokens: Vec::new(),
                drafts: Vec::new(),
                events: Vec::new(),
            }),
            notify: Notify::new(),
            addr: listener.local_addr().expect("fake google addr"),
        });
        let fake = FakeGoogle { shared };
        let app = Router::new().fallback(handler).with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `{base}/o/oauth2/v2/auth`.
    pub fn auth_url(&self) -> String {
        format!("{}{AUTH_PATH}", self.base_url())
    }

    /// `{base}/token`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    /// `{base}/v1/userinfo`.
    pub fn userinfo_url(&self) -> String {
        format!("{}{USERINFO_PATH}", self.base_url())
    }

    /// `{base}/revoke`.
    pub fn revoke_url(&self) -> String {
        format!("{}{REVOKE_PATH}", self.base_url())
    }

    /// `{base}`; the client appends `/gmail/v1/users/me/drafts`.
    pub fn gmail_api_url(&self) -> String {
        self.base_url()
    }

    /// `{base}/calendar/v3`; the client appends `/calendars/primary/events`.
    pub fn calendar_api_url(&self) -> String {
        format!("{}/calendar/v3", self.base_url())
    }

    pub fn client_id(&self) -> String {
        self.lock().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.lock().client_secret.clone()
    }

    // -------------------------------------------------------------------------- controls

    /// The Google account that consents on the next authorizations.
    pub fn set_account(&self, email: &str) {
        self.lock().account = email.to_string();
    }

    pub fn account(&self) -> String {
        self.lock().account.clone()
    }

    /// The next valid authorization redirects with `error=access_denied` (user clicked Cancel).
    pub fn deny_next(&self) {
        self.lock().deny_next = true;
    }

    /// The next successful code exchange leaves out `refresh_token`.
    pub fn omit_refresh_token_next(&self) {
        self.lock().omit_refresh_next = true;
    }

    /// The next successful authorization grants every requested scope but these (the user
    /// unticked them on the consent screen). `email` / `profile` match their long forms.
    pub fn uncheck_scopes_next(&self, scopes: &[&str]) {
        self.lock().unchecked_next = scopes.iter().map(|s| canonical_scope(s)).collect();
    }

    /// `expires_in` of access tokens issued from now on (default 3599; 0 or less: expired).
    pub fn set_access_ttl(&self, secs: i64) {
        self.lock().access_ttl = secs;
    }

    /// Delay every `/token` answer. `Duration::ZERO` clears it.
    pub fn set_token_delay(&self, delay: Duration) {
        self.lock().token_delay = delay;
    }

    /// Delay every `drafts.create` answer (the draft is stored first).
    pub fn set_gmail_delay(&self, delay: Duration) {
        self.lock().gmail_delay = delay;
    }

    /// Delay every `events.insert` answer (the event is stored first).
    pub fn set_calendar_delay(&self, delay: Duration) {
        self.lock().calendar_delay = delay;
    }

    /// The next `/token` call (any grant type) answers this, changing nothing (FIFO).
    /// Only these redirect URIs are registered for the client (the token endpoint answers
    /// `redirect_uri_mismatch` for any other).
    pub fn register_redirect_uris(&self, uris: &[&str]) {
        self.lock().redirect_uris = Some(uris.iter().map(|u| u.to_string()).collect());
    }

    pub fn fail_token_next(&self, status: u16, body: Value) {
        self.lock().fail_token.push_back(Canned { status, body });
    }

    /// The next authorized `drafts.create` answers this and stores nothing (FIFO).
    pub fn fail_gmail_next(&self, status: u16, body: Value) {
        self.lock().fail_gmail.push_back(Canned { status, body });
    }

    /// The next authorized `events.insert` answers this and stores nothing (FIFO).
    pub fn fail_calendar_next(&self, status: u16, body: Value) {
        self.lock().fail_calendar.push_back(Canned { status, body });
    }

    /// Revokes every refresh and access token of this account (the user removed access).
    pub fn revoke_grant(&self, email: &str) {
        revoke_account(&mut self.lock(), email);
    }

    /// Every access token issued so far is expired from now on (refresh tokens stay).
    pub fn expire_access_tokens(&self) {
        for a in self.lock().access_tokens.values_mut() {
            a.expired = true;
        }
    }

    /// A grant made without the consent flow: every [`REQUIRED_SCOPES`], a refresh token and an
    /// access token of the current ttl (for tests that store credentials directly).
    pub fn issue_tokens(&self, email: &str) -> IssuedTokens {
        let mut st = self.lock();
        let scope: Vec<String> = REQUIRED_SCOPES.iter().map(|s| canonical_scope(s)).collect();
        let grant = new_grant(&mut st, email, scope.clone());
        let refresh_token = new_refresh_token(&mut st, grant);
        let access_token = new_access_token(&mut st, grant);
        IssuedTokens {
            access_token,
            refresh_token,
            scope: scope.join(" "),
            expires_in: st.access_ttl,
        }
    }

    /// Plays the browser: GETs an authorize URL without following redirects and returns the
    /// `Location` it redirects to (the client's callback with `code` or `error`).
    pub async fn consent(&self, authorize_url: &str) -> anyhow::Result<String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let resp = client.get(authorize_url).send().await?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match location {
            Some(l) if status == StatusCode::FOUND => Ok(l),
            _ => {
                let body = resp.text().await.unwrap_or_default();
                anyhow::bail!("fake google authorize answered {status}: {body}")
            }
        }
    }

    // -------------------------------------------------------------------------- records

    pub fn calls(&self) -> Vec<GoogleCall> {
        self.lock().calls.clone()
    }

    /// Calls to exactly this path.
    pub fn calls_to(&self, path: &str) -> Vec<GoogleCall> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.path == path)
            .cloned()
            .collect()
    }

    /// The query of every authorize request.
    pub fn authorize_calls(&self) -> Vec<HashMap<String, String>> {
        self.lock().authorize_calls.clone()
    }

    pub fn token_calls(&self) -> Vec<TokenCall> {
        self.lock().token_calls.clone()
    }

    /// `grant_type=refresh_token` calls, whatever they answered.
    pub fn refresh_count(&self) -> usize {
        self.lock().refresh_count
    }

    /// The token of every `/revoke` call that gave one, in order (unknown ones too).
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.lock().revoked_tokens.clone()
    }

    pub fn drafts(&self) -> Vec<Draft> {
        self.lock().drafts.clone()
    }

    pub fn events(&self) -> Vec<CalendarEvent> {
        self.lock().events.clone()
    }

    /// The first `n` drafts, once there are at least `n`.
    pub async fn wait_for_drafts(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Draft>> {
        self.wait_until(timeout, |st| {
            (st.drafts.len() >= n).then(|| st.drafts[..n].to_vec())
        })
        .await
        .ok_or_else(|| self.timeout_error(timeout, n, "draft(s)"))
    }

    /// The first `n` events, once there are at least `n`.
    pub async fn wait_for_events(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<CalendarEvent>> {
        self.wait_until(timeout, |st| {
            (st.events.len() >= n).then(|| st.events[..n].to_vec())
        })
        .await
        .ok_or_else(|| self.timeout_error(timeout, n, "event(s)"))
    }

    /// The first `n` token calls, once there are at least `n`.
    pub async fn wait_for_token_calls(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<TokenCall>> {
        self.wait_until(timeout, |st| {
            (st.token_calls.len() >= n).then(|| st.token_calls[..n].to_vec())
        })
        .await
        .ok_or_else(|| self.timeout_error(timeout, n, "token call(s)"))
    }

    /// The first `n` calls to exactly `path`, once there are at least `n`.
    pub async fn wait_for_calls(
        &self,
        path: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<GoogleCall>> {
        self.wait_until(timeout, |st| {
            let v: Vec<GoogleCall> = st
                .calls
                .iter()
                .filter(|c| c.path == path)
                .take(n)
                .cloned()
                .collect();
            (v.len() >= n).then_some(v)
        })
        .await
        .ok_or_else(|| self.timeout_error(timeout, n, &format!("call(s) to {path}")))
    }

    // -------------------------------------------------------------------------- internals

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn timeout_error(&self, timeout: Duration, n: usize, what: &str) -> anyhow::Error {
        let seen: Vec<String> = self
            .lock()
            .calls
            .iter()
            .map(|c| format!("{} {} {}", c.method, c.path, c.status))
            .collect();
        anyhow::anyhow!(
            "timed out after {timeout:?} waiting for {n} google {what}; calls so far: {seen:?}"
        )
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&Inner) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = f(&self.lock()) {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return f(&self.lock());
            }
        }
    }
}

// ------------------------------------------------------------------------------ helpers

/// The stable `sub` of an account: 21 digits derived from the email.
pub fn sub_for(email: &str) -> String {
    let digest = Sha256::digest(email.to_ascii_lowercase().as_bytes());
    let mut n = [0u8; 8];
    n.copy_from_slice(&digest[..8]);
    format!("1{:020}", u64::from_be_bytes(n))
}

/// The payload of an `id_token` (no signature check).
pub fn id_token_claims(id_token: &str) -> Option<Value> {
    let payload = id_token.split('.').nth(1)?;
    serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()
}

/// `base64url_nopad(sha256(verifier))`, the S256 code challenge.
pub fn code_challenge_for(verifier: &str) -> String {
    B64URL.encode(Sha256::digest(verifier.as_bytes()))
}

/// The long form Google reports a scope in.
fn canonical_scope(s: &str) -> String {
    match s {
        "email" => SCOPE_USERINFO_EMAIL.to_string(),
        "profile" => SCOPE_USERINFO_PROFILE.to_string(),
        other => other.to_string(),
    }
}

fn random_string(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn new_grant(st: &mut Inner, email: &str, scope: Vec<String>) -> usize {
    st.grants.push(Grant {
        email: email.to_string(),
        scope,
        revoked: false,
    });
    st.grants.len() - 1
}

fn new_refresh_token(st: &mut Inner, grant: usize) -> String {
    let token = format!("1//0{}", random_string(40));
    st.refresh_tokens.insert(token.clone(), grant);
    token
}

fn new_access_token(st: &mut Inner, grant: usize) -> String {
    let token = format!("ya29.a0{}", random_string(60));
    let ttl = st.access_ttl;
    st.access_tokens.insert(
        token.clone(),
        Access {
            grant,
            issued: Instant::now(),
            ttl,
            expired: false,
        },
    );
    token
}

fn revoke_account(st: &mut Inner, email: &str) {
    for g in st.grants.iter_mut().filter(|g| g.email == email) {
        g.revoked = true;
    }
}

/// The grant behind a live access token.
fn live_access<'a>(st: &'a Inner, token: Option<&str>) -> Option<&'a Grant> {
    let a = st.access_tokens.get(token?)?;
    let alive =
        !a.expired && a.ttl > 0 && a.issued.elapsed() < Duration::from_secs(a.ttl.unsigned_abs());
    let g = &st.grants[a.grant];
    (alive && !g.revoked).then_some(g)
}

fn id_token(client_id: &str, email: &str) -> String {
    let now = Utc::now().timestamp();
    let header = json!({"alg": "RS256", "kid": "fake", "typ": "JWT"});
    let payload = json!({
        "iss": "https://accounts.google.com",
        "aud": client_id,
        "azp": client_id,
        "sub": sub_for(email),
        "email": email,
        "email_verified": true,
        "iat": now,
        "exp": now + 3600,
    });
    format!(
        "{}.{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(payload.to_string()),
        B64URL.encode("signature")
    )
}

fn parse_pairs(s: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn bearer_of(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// `(client_id, client_secret)` of an `Authorization: Basic` header (each urlencoded).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(B64.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// base64url with or without padding, or standard base64.
fn decode_raw(s: &str) -> Option<Vec<u8>> {
    let cleaned: String = s
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    if cleaned.is_empty() {
        return None;
    }
    B64URL.decode(cleaned).ok()
}

// ------------------------------------------------------------------------------ answers

enum Answer {
    Json(u16, Value),
    Text(u16, String),
    Redirect(String),
}

impl Answer {
    fn status(&self) -> u16 {
        match self {
            Answer::Json(s, _) | Answer::Text(s, _) => *s,
            Answer::Redirect(_) => 302,
        }
    }

    fn into_response(self) -> Response {
        let status = |s: u16| StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self {
            Answer::Json(s, body) => (
                status(s),
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=UTF-8"),
                )],
                body.to_string(),
            )
                .into_response(),
            Answer::Text(s, text) => (
                status(s),
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                text,
            )
                .into_response(),
            Answer::Redirect(location) => {
                let mut resp = StatusCode::FOUND.into_response();
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                resp
            }
        }
    }
}

fn oauth_error(status: u16, error: &str, description: &str) -> Answer {
    Answer::Json(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// Google's API error shape with a `status` string (Gmail, auth failures).
fn api_error(code: u16, message: &str, status: &str) -> Answer {
    Answer::Json(
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

/// Calendar's error shape with `errors[].reason`.
fn calendar_error(code: u16, message: &str, reason: &str) -> Answer {
    Answer::Json(
        code,
        json!({"error": {
            "code": code,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }}),
    )
}

fn unauthenticated() -> Answer {
    api_error(
        401,
        "Request had invalid authentication credentials.",
        "UNAUTHENTICATED",
    )
}

fn insufficient_scope() -> Answer {
    api_error(
        403,
        "Request had insufficient authentication scopes.",
        "PERMISSION_DENIED",
    )
}

fn method_not_allowed() -> Answer {
    api_error(405, "Method Not Allowed", "METHOD_NOT_ALLOWED")
}

fn not_found() -> Answer {
    api_error(404, "Not Found", "NOT_FOUND")
}

/// Bearer → (account, has one of `scopes`), or the 401/403 to answer.
fn authorize_api(st: &Inner, bearer: Option<&str>, scopes: &[&str]) -> Result<String, Answer> {
    let grant = live_access(st, bearer).ok_or_else(unauthenticated)?;
    if !grant.scope.iter().any(|s| scopes.contains(&s.as_str())) {
        return Err(insufficient_scope());
    }
    Ok(grant.email.clone())
}

fn authorize(st: &mut Inner, query: &[(String, String)]) -> Answer {
    let q: HashMap<String, String> = query.iter().cloned().collect();
    st.authorize_calls.push(q.clone());
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let bad = |msg: String| Answer::Text(400, msg);
    if get("client_id") != st.client_id {
        return bad(format!(
            "invalid_client: The OAuth client was not found (client_id={:?}).",
            get("client_id")
        ));
    }
    let redirect_uri = get("redirect_uri");
    if redirect_uri.is_empty() {
        return bad("invalid_request: Missing required parameter: redirect_uri".into());
    }
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return bad(format!(
            "invalid_request: redirect_uri is not a URL: {redirect_uri:?}"
        ));
    };
    if get("response_type") != "code" {
        return bad(format!(
            "unsupported_response_type: response_type must be code, got {:?}",
            get("response_type")
        ));
    }
    if get("code_challenge_method") != "S256" {
        return bad(format!(
            "invalid_request: code_challenge_method must be S256, got {:?}",
            get("code_challenge_method")
        ));
    }
    if get("code_challenge").is_empty() {
        return bad("invalid_request: Missing required parameter: code_challenge".into());
    }
    let requested: Vec<&str> = get("scope").split_whitespace().collect();
    let missing: Vec<&str> = REQUIRED_SCOPES
        .iter()
        .copied()
        .filter(|s| !requested.contains(s))
        .collect();
    if !missing.is_empty() {
        return bad(format!(
            "invalid_scope: scope is missing {}",
            missing.join(" ")
        ));
    }

    let state = q.get("state");
    if std::mem::take(&mut st.deny_next) {
        {
            let mut pairs = location.query_pairs_mut();
            pairs.append_pair("error", "access_denied");
            if let Some(s) = state {
                pairs.append_pair("state", s);
            }
        }
        return Answer::Redirect(location.to_string());
    }

    let email = st.account.clone();
    let unchecked = std::mem::take(&mut st.unchecked_next);
    let mut scope: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !scope.contains(&s) {
            scope.push(s);
        }
    };
    for s in &requested {
        let s = canonical_scope(s);
        if !unchecked.contains(&s) {
            add(s);
        }
    }
    if get("include_granted_scopes") == "true" {
        for g in st.grants.iter().filter(|g| g.email == email && !g.revoked) {
            for s in &g.scope {
                add(s.clone());
            }
        }
    }
    let code = format!("4/0A{}", random_string(40));
    st.codes.insert(
        code.clone(),
        Code {
            client_id: st.client_id.clone(),
            redirect_uri: redirect_uri.to_string(),
            code_challenge: get("code_challenge").to_string(),
            email,
            scope: scope.clone(),
            offline: get("access_type") == "offline",
        },
    );
    {
        let mut pairs = location.query_pairs_mut();
        if let Some(s) = state {
            pairs.append_pair("state", s);
        }
        pairs.append_pair("code", &code);
        pairs.append_pair("scope", &scope.join(" "));
        pairs.append_pair("authuser", "0");
        if !get("prompt").is_empty() {
            pairs.append_pair("prompt", get("prompt"));
        }
    }
    Answer::Redirect(location.to_string())
}

fn token(st: &mut Inner, headers: &HeaderMap, body: &[u8]) -> Answer {
    let form: HashMap<String, String> = parse_pairs(body).into_iter().collect();
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let (client_id, client_secret, basic_auth) = match basic_credentials(headers) {
        Some((id, secret)) => (Some(id), Some(secret), true),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
            false,
        ),
    };
    let answer = token_answer(
        st,
        &grant_type,
        &form,
        client_id.as_deref(),
        client_secret.as_deref(),
    );
    if grant_type == "refresh_token" {
        st.refresh_count += 1;
    }
    let mut recorded = form;
    recorded.remove("client_secret");
    st.token_calls.push(TokenCall {
        grant_type,
        form: recorded,
        client_id,
        basic_auth,
        status: answer.status(),
        at: Instant::now(),
    });
    answer
}

fn token_answer(
    st: &mut Inner,
    grant_type: &str,
    form: &HashMap<String, String>,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> Answer {
    if let Some(c) = st.fail_token.pop_front() {
        return Answer::Json(c.status, c.body);
    }
    if client_id != Some(st.client_id.as_str()) {
        return oauth_error(401, "invalid_client", "The OAuth client was not found.");
    }
    if client_secret != Some(st.client_secret.as_str()) {
        return oauth_error(401, "invalid_client", "Unauthorized");
    }
    let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if grant_type == "authorization_code"
        && let Some(registered) = &st.redirect_uris
        && !field("redirect_uri").is_some_and(|uri| registered.iter().any(|r| r == uri))
    {
        return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
    }
    match grant_type {
        "authorization_code" => {
            let Some(code) = field("code") else {
                return oauth_error(400, "invalid_request", "Missing required parameter: code");
            };
            let bad_grant = || oauth_error(400, "invalid_grant", "Bad Request");
            let Some(c) = st.codes.remove(code) else {
                return bad_grant();
            };
            if c.client_id != st.client_id || field("redirect_uri") != Some(&c.redirect_uri) {
                return bad_grant();
            }
            let Some(verifier) = field("code_verifier") else {
                return oauth_error(400, "invalid_grant", "Missing code verifier.");
            };
            if code_challenge_for(verifier) != c.code_challenge {
                return bad_grant();
            }
            let grant = new_grant(st, &c.email, c.scope.clone());
            let refresh = (c.offline && !std::mem::take(&mut st.omit_refresh_next))
                .then(|| new_refresh_token(st, grant));
            let mut body = token_body(st, grant);
            if let Some(r) = refresh {
                body.insert("refresh_token".into(), json!(r));
            }
            Answer::Json(200, Value::Object(body))
        }
        "refresh_token" => {
            let Some(refresh) = field("refresh_token") else {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Missing required parameter: refresh_token",
                );
            };
            match st.refresh_tokens.get(refresh).copied() {
                Some(grant) if !st.grants[grant].revoked => {
                    Answer::Json(200, Value::Object(token_body(st, grant)))
                }
                _ => oauth_error(400, "invalid_grant", "Token has been expired or revoked."),
            }
        }
        "" => oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: grant_type",
        ),
        other => oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
    }
}

/// A token answer with a new access token (no `refresh_token`).
fn token_body(st: &mut Inner, grant: usize) -> Map<String, Value> {
    let access = new_access_token(st, grant);
    let g = st.grants[grant].clone();
    let mut body = Map::new();
    body.insert("access_token".into(), json!(access));
    body.insert("expires_in".into(), json!(st.access_ttl));
    body.insert("scope".into(), json!(g.scope.join(" ")));
    body.insert("token_type".into(), json!("Bearer"));
    if g.scope.iter().any(|s| s == "openid") {
        body.insert("id_token".into(), json!(id_token(&st.client_id, &g.email)));
    }
    body
}

fn userinfo(st: &Inner, bearer: Option<&str>) -> Answer {
    match live_access(st, bearer) {
        Some(g) => Answer::Json(
            200,
            json!({"sub": sub_for(&g.email), "email": g.email, "email_verified": true}),
        ),
        None => oauth_error(401, "invalid_token", "Invalid Credentials"),
    }
}

fn revoke(st: &mut Inner, query: &[(String, String)], body: &[u8]) -> Answer {
    let token = query
        .iter()
        .chain(parse_pairs(body).iter())
        .find(|(k, v)| k == "token" && !v.is_empty())
        .map(|(_, v)| v.clone());
    let Some(token) = token else {
        return oauth_error(400, "invalid_request", "Missing required parameter: token");
    };
    st.revoked_tokens.push(token.clone());
    let email = match st.refresh_tokens.get(&token) {
        Some(&g) if !st.grants[g].revoked => Some(st.grants[g].email.clone()),
        _ => live_access(st, Some(&token)).map(|g| g.email.clone()),
    };
    match email {
        Some(email) => {
            revoke_account(st, &email);
            Answer::Json(200, json!({}))
        }
        None => oauth_error(400, "invalid_token", "Token expired or revoked"),
    }
}

fn create_draft(st: &mut Inner, bearer: Option<&str>, body: &[u8]) -> Answer {
    let owner = match authorize_api(st, bearer, &GMAIL_SCOPES) {
        Ok(owner) => owner,
        Err(a) => return a,
    };
    if let Some(c) = st.fail_gmail.pop_front() {
        return Answer::Json(c.status, c.body);
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return api_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT");
    };
    let Some(raw) = body["message"]["raw"].as_str().and_then(decode_raw) else {
        return api_error(400, "Invalid value for ByteString", "INVALID_ARGUMENT");
    };
    st.counter += 1;
    let n = st.counter;
    let id = format!("r{}", 7_000_000_000_000_000_000u64 + n);
    let message_id = format!("{:016x}", 0x18f0_0000_0000_0000u64 + n);
    let thread_id = body["message"]["threadId"]
        .as_str()
        .map_or_else(|| message_id.clone(), str::to_string);
    let rfc822_message_id = mail_parser::MessageParser::default()
        .parse(&raw)
        .and_then(|m| {
            m.message_id()
                .map(|s| s.trim_matches(['<', '>']).to_string())
        });
    st.drafts.push(Draft {
        id: id.clone(),
        message_id: message_id.clone(),
        thread_id: thread_id.clone(),
        owner,
        raw,
        rfc822_message_id,
    });
    Answer::Json(
        200,
        json!({
            "id": id,
            "message": {"id": message_id, "threadId": thread_id, "labelIds": ["DRAFT"]},
        }),
    )
}

fn list_drafts(st: &Inner, bearer: Option<&str>, query: &[(String, String)]) -> Answer {
    let owner = match authorize_api(st, bearer, &GMAIL_SCOPES) {
        Ok(owner) => owner,
        Err(a) => return a,
    };
    let wanted = query
        .iter()
        .find(|(k, _)| k == "q")
        .and_then(|(_, q)| q.trim().strip_prefix("rfc822msgid:"))
        .map(|id| id.trim().trim_matches(['<', '>']).to_string());
    let drafts: Vec<Value> = st
        .drafts
        .iter()
        .rev()
        .filter(|d| d.owner == owner)
        .filter(|d| {
            wanted
                .as_ref()
                .is_none_or(|w| d.rfc822_message_id.as_ref() == Some(w))
        })
        .map(|d| json!({"id": d.id, "message": {"id": d.message_id, "threadId": d.thread_id}}))
        .collect();
    if drafts.is_empty() {
        Answer::Json(200, json!({"resultSizeEstimate": 0}))
    } else {
        let n = drafts.len();
        Answer::Json(200, json!({"drafts": drafts, "resultSizeEstimate": n}))
    }
}

fn valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

/// The instant of `start`/`end` (None for a local time with a zone), or the 400 to answer.
fn event_time(body: &Value, which: &str) -> Result<Option<DateTime<Utc>>, Answer> {
    let Some(dt) = body[which]["dateTime"].as_str() else {
        return Err(calendar_error(
            400,
            &format!("Missing {which} time."),
            "required",
        ));
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(dt) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if NaiveDateTime::parse_from_str(dt, "%Y-%m-%dT%H:%M:%S%.f").is_err() {
        return Err(calendar_error(
            400,
            &format!("Invalid {which} time."),
            "invalid",
        ));
    }
    if body[which]["timeZone"].as_str().is_none_or(str::is_empty) {
        return Err(calendar_error(
            400,
            &format!("Missing time zone definition for {which} time."),
            "required",
        ));
    }
    Ok(None)
}

fn insert_event(
    st: &mut Inner,
    bearer: Option<&str>,
    query: &[(String, String)],
    body: &[u8],
) -> Answer {
    let owner = match authorize_api(st, bearer, &CALENDAR_SCOPES) {
        Ok(owner) => owner,
        Err(a) => return a,
    };
    let query: HashMap<String, String> = query.iter().cloned().collect();
    if let Some(c) = st.fail_calendar.pop_front() {
        return Answer::Json(c.status, c.body);
    }
    let body: Value = match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => v,
        _ => return calendar_error(400, "Parse Error", "parseError"),
    };
    let id = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if valid_event_id(id) => Some(id.clone()),
        Some(_) => return calendar_error(400, "Invalid resource id value.", "invalidResourceId"),
    };
    if let Some(id) = &id
        && st.events.iter().any(|e| e.owner == owner && &e.id == id)
    {
        return calendar_error(409, "The requested identifier already exists.", "duplicate");
    }
    let start = match event_time(&body, "start") {
        Ok(t) => t,
        Err(a) => return a,
    };
    let end = match event_time(&body, "end") {
        Ok(t) => t,
        Err(a) => return a,
    };
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return calendar_error(400, "The specified time range is empty.", "timeRangeEmpty");
    }
    let create = body["conferenceData"]["createRequest"].as_object().cloned();
    if let Some(req) = &create {
        let kind = req
            .get("conferenceSolutionKey")
            .and_then(|k| k.get("type"))
            .and_then(Value::as_str);
        if kind != Some("hangoutsMeet") {
            return calendar_error(400, "Invalid conference type value.", "invalid");
        }
    }

    st.counter += 1;
    let n = st.counter;
    let id = id.unwrap_or_else(|| format!("fakeev{n:020}"));
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut r = body.as_object().cloned().unwrap_or_default();
    r.insert("kind".into(), json!("calendar#event"));
    r.insert("etag".into(), json!(format!("\"3{n:015}\"")));
    r.insert("id".into(), json!(id));
    r.entry("status").or_insert(json!("confirmed"));
    r.insert(
        "htmlLink".into(),
        json!(format!("https://www.google.com/calendar/event?eid={id}")),
    );
    r.insert("created".into(), json!(now));
    r.insert("updated".into(), json!(now));
    r.insert("creator".into(), json!({"email": owner, "self": true}));
    r.insert("organizer".into(), json!({"email": owner, "self": true}));
    r.insert("iCalUID".into(), json!(format!("{id}@google.com")));
    r.insert("sequence".into(), json!(0));
    r.entry("reminders").or_insert(json!({"useDefault": true}));
    r.insert("eventType".into(), json!("default"));
    if let Some(attendees) = r.get_mut("attendees").and_then(Value::as_array_mut) {
        for a in attendees.iter_mut().filter_map(Value::as_object_mut) {
            a.entry("responseStatus").or_insert(json!("needsAction"));
        }
    }
    r.remove("conferenceData");
    if query.get("conferenceDataVersion").map(String::as_str) == Some("1")
        && let Some(mut req) = create
    {
        req.insert("status".into(), json!({"statusCode": "success"}));
        r.insert("hangoutLink".into(), json!(MEET_LINK));
        r.insert(
            "conferenceData".into(),
            json!({
                "createRequest": req,
                "entryPoints": [{
                    "entryPointType": "video",
                    "uri": MEET_LINK,
                    "label": MEET_LINK.trim_start_matches("https://"),
                }],
                "conferenceSolution": {
                    "key": {"type": "hangoutsMeet"},
                    "name": "Google Meet",
                    "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png",
                },
                "conferenceId": MEET_CODE,
            }),
        );
    }
    let resource = Value::Object(r);
    st.events.push(CalendarEvent {
        id,
        owner,
        query,
        body,
        resource: resource.clone(),
    });
    Answer::Json(200, resource)
}

fn get_event(st: &Inner, bearer: Option<&str>, id: &str) -> Answer {
    let owner = match authorize_api(st, bearer, &CALENDAR_SCOPES) {
        Ok(owner) => owner,
        Err(a) => return a,
    };
    match st.events.iter().find(|e| e.owner == owner && e.id == id) {
        Some(e) => Answer::Json(200, e.resource.clone()),
        None => calendar_error(404, "Not Found", "notFound"),
    }
}

/// The answer and how long to hold it back.
fn route(
    st: &mut Inner,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
    bearer: Option<&str>,
) -> (Answer, Duration) {
    let now = Duration::ZERO;
    let (get, post) = (method == Method::GET, method == Method::POST);
    match path {
        AUTH_PATH if get => (authorize(st, query), now),
        TOKEN_PATH if post => (token(st, headers, body), st.token_delay),
        USERINFO_PATH if get || post => (userinfo(st, bearer), now),
        REVOKE_PATH if post => (revoke(st, query, body), now),
        DRAFTS_PATH if post => (create_draft(st, bearer, body), st.gmail_delay),
        DRAFTS_PATH if get => (list_drafts(st, bearer, query), now),
        AUTH_PATH | TOKEN_PATH | USERINFO_PATH | REVOKE_PATH | DRAFTS_PATH => {
            (method_not_allowed(), now)
        }
        _ => match path.strip_prefix(EVENTS_PATH) {
            Some("" | "/") if post => (insert_event(st, bearer, query, body), st.calendar_delay),
            Some("" | "/") => (method_not_allowed(), now),
            Some(rest) if rest.starts_with('/') && !rest.trim_matches('/').contains('/') => {
                if get {
                    (get_event(st, bearer, rest.trim_matches('/')), now)
                } else {
                    (method_not_allowed(), now)
                }
            }
            _ => (not_found(), now),
        },
    }
}

async fn handler(
    State(fake): State<FakeGoogle>,
    method: Method,
    uri: Uri,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri.path().to_string();
    let query = parse_pairs(raw_query.as_deref().unwrap_or("").as_bytes());
    let bearer = bearer_of(&headers);
    let (answer, delay) = {
        let mut st = fake.lock();
        let (answer, delay) = route(
            &mut st,
            &method,
            &path,
            &query,
            &headers,
            &body,
            bearer.as_deref(),
        );
        st.calls.push(GoogleCall {
            method: method.to_string(),
            path,
            query,
            bearer,
            status: answer.status(),
            at,
        });
        (answer, delay)
    };
    fake.shared.notify.notify_waiters();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    answer.into_response()
}
