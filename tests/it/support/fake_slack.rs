//! A fake Slack on 127.0.0.1 for integration tests: the Web API (axum) and Socket Mode
//! (tokio-tungstenite on its own listener).
//!
//! ```ignore
//! let fake = FakeSlack::start().await;
//! // point the bot at fake.api_url() with tokens "xapp-…" / "xoxb-…", start it, then:
//! let conns = fake.wait_for_connections(1, Duration::from_secs(5)).await?;
//! let id = fake.send_envelope(payloads::slash_command("T1", "U1", "/followup", "", &fake.response_url("r1")))?;
//! let ack = fake.wait_for_ack(&id, Duration::from_secs(3)).await?;
//! let call = fake.wait_for_call("views.open", Duration::from_secs(3)).await?;
//! ```
//!
//! Behaviour worth knowing:
//! - Every `/api/{method}` request (GET or POST; JSON, form or query string) is recorded as a
//!   [`Call`]. String fields `view`, `blocks`, `attachments`, `metadata` that hold JSON text (as
//!   form-encoded clients send them) are decoded into JSON in [`Call::body`]; `raw_body` keeps
//!   the bytes as sent.
//! - Tokens: `apps.connections.open` wants `xapp-…`, every other known method wants `xoxb-…`
//!   (Authorization `Bearer`, or a `token` body field). Missing token → `not_authed`, wrong kind
//!   → `invalid_auth`.
//! - Answers to a call with a token Slack accepts carry `x-oauth-scopes`, as Slack's do: the
//!   bot token's scopes (the manifest's bot scopes unless [`FakeSlack::set_bot_scopes`] says
//!   otherwise, none at all after [`FakeSlack::omit_scopes_header`]), `connections:write` for
//!   the app token.
//! - Trigger ids found in envelopes sent by this fake are single use (`exchanged_trigger_id`)
//!   and expire [`FakeSlack::set_trigger_ttl`] (default 3 s) after the envelope was sent
//!   (`expired_trigger_id`), for `views.open` and `views.push`. Unknown trigger ids are accepted.
//! - `views.update` with a `hash` that differs from the stored view's current hash answers
//!   `hash_conflict`.
//! - Envelopes go round-robin to open connections that are neither silent nor told to
//!   disconnect (falling back to any non-silent open one).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request as WsRequest, Response as WsResponse,
};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub const TEAM_ID: &str = "T0FAKETEAM";
pub const TEAM_NAME: &str = "Fake Team";
pub const TEAM_DOMAIN: &str = "fake-team";
pub const TEAM_URL: &str = "https://fake-team.slack.com/";
pub const APP_ID: &str = "A1";
pub const BOT_USER_ID: &str = "U0FAKEBOT";
pub const BOT_ID: &str = "B0FAKEBOT";
pub const BOT_NAME: &str = "followup-bot";

/// One Web API request.
#[derive(Clone, Debug)]
pub struct Call {
    /// Slack method, e.g. `chat.postMessage`.
    pub method: String,
    /// `GET` or `POST`.
    pub http_method: String,
    /// Query string + body merged into one JSON object.
    pub body: Value,
    pub raw_body: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub received_at: Instant,
    /// What the fake answered (status, JSON body).
    pub status: u16,
    pub response: Value,
}

impl Call {
    /// The bearer token from the Authorization header, else the `token` body field.
    pub fn token(&self) -> Option<&str> {
        self.authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .or_else(|| self.body.get("token").and_then(Value::as_str))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.body.get(key)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }
}

/// A POST to `/response/{id}` (a response_url).
#[derive(Clone, Debug)]
pub struct ResponsePost {
    pub id: String,
    pub body: Value,
    pub raw_body: String,
    pub content_type: Option<String>,
    pub received_at: Instant,
}

/// A text frame from the bot that carried an `envelope_id`.
#[derive(Clone, Debug)]
pub struct Ack {
    pub envelope_id: String,
    /// The `payload` field, if the frame had one (recorded as sent, `null` included).
    pub payload: Option<Value>,
    pub raw: String,
    pub conn_id: u64,
    pub received_at: Instant,
    /// Since the latest send of this envelope id (None if this fake never sent it).
    pub latency: Option<Duration>,
}

/// An envelope (or raw frame) written to a connection.
#[derive(Clone, Debug)]
pub struct SentFrame {
    pub envelope_id: Option<String>,
    pub conn_id: u64,
    pub text: String,
    pub sent_at: Instant,
    /// False when the connection was silent or already gone (Slack thinks it sent it).
    pub delivered: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// The client sent a close frame (code, if any).
    ClientCloseFrame(Option<u16>),
    /// TCP closed (FIN) by the client without a close frame.
    ClientEof,
    /// Read/write error (e.g. reset).
    Error(String),
    /// [`FakeSlack::drop_connection`] / [`FakeSlack::reset_connection`].
    ServerDropped,
    /// [`FakeSlack::close_connection`] (close frame from the fake).
    ServerClosed,
}

#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub id: u64,
    pub ticket: String,
    pub opened_at: Instant,
    pub closed_at: Option<Instant>,
    pub close_kind: Option<CloseKind>,
    pub disconnect_sent_at: Option<Instant>,
    pub silent: bool,
    /// Set when closed: did a connection open (hello sent) after `disconnect_sent_at` (or after
    /// this one opened, if no disconnect was sent) and before this one closed?
    pub replaced_before_close: Option<bool>,
    pub pings_received: u64,
    pub pongs_received: u64,
    pub text_frames_received: u64,
}

impl ConnectionInfo {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}

#[derive(Clone, Debug)]
struct ErrorSpec {
    error: String,
    status: u16,
    retry_after: Option<u64>,
    remaining: Option<usize>,
    /// Only calls whose body contains this text are refused.
    when_body_contains: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct MethodConfig {
    response: Option<Value>,
    delay: Option<Duration>,
    error: Option<ErrorSpec>,
}

enum Cmd {
    Text {
        text: String,
        envelope_id: Option<String>,
    },
    Ping(Vec<u8>),
    Close(u16, String),
    Drop {
        reset: bool,
    },
    Silent,
}

struct Conn {
    info: ConnectionInfo,
    tx: mpsc::UnboundedSender<Cmd>,
}

struct Trigger {
    sent_at: Instant,
    used: bool,
}

struct Inner {
    calls: Vec<Call>,
    method_cfg: HashMap<String, MethodConfig>,
    users: HashMap<String, Value>,
    missing_users: HashSet<String>,
    dms_opened: HashSet<String>,
    tickets: HashSet<String>,
    rejected_handshakes: usize,
    conns: BTreeMap<u64, Conn>,
    next_conn_id: u64,
    rr_next: usize,
    sent: Vec<SentFrame>,
    acks: Vec<Ack>,
    other_frames: Vec<(u64, String)>,
    response_posts: Vec<ResponsePost>,
    hello_without_debug_info: bool,
    views: HashMap<String, Value>,
    home_views: HashMap<String, String>,
    triggers: HashMap<String, Trigger>,
    trigger_ttl: Duration,
    teams: Teams,
    /// The bot token's scopes, sent in `x-oauth-scopes`; `None`: no header.
    bot_scopes: Option<String>,
}

/// Other workspaces: their bot tokens, installs (`oauth.v2.access`) and revocations.
#[derive(Default)]
struct Teams {
    /// bot token → (team id, team name)
    tokens: HashMap<String, (String, String)>,
    revoked: HashSet<String>,
    oauth_client: Option<(String, String)>,
    /// code → the install it completes
    codes: HashMap<String, Install>,
    /// refresh token → (team id, team name)
    refresh: HashMap<String, (String, String)>,
    exchanges: Vec<String>,
    issued: u64,
}

/// An install the fake's consent page completes.
#[derive(Clone, Debug)]
pub struct Install {
    pub team_id: String,
    pub team_name: String,
    pub installer: String,
    pub enterprise_id: Option<String>,
    pub redirect_uri: String,
    /// Token rotation on: a refresh token and `expires_in` come with the bot token.
    pub rotation: bool,
}

struct Shared {
    state: Mutex<Inner>,
    notify: Notify,
    counter: AtomicU64,
    http_addr: SocketAddr,
    ws_addr: SocketAddr,
}

/// Cheap to clone; all clones share one fake.
#[derive(Clone)]
pub struct FakeSlack {
    shared: Arc<Shared>,
}

impl FakeSlack {
    /// Binds two loopback ports (HTTP API, websocket) and serves them on the current runtime.
    pub async fn start() -> FakeSlack {
        let http = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake slack http");
        let ws = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake slack ws");
        let shared = Arc::new(Shared {
            state: Mutex::new(Inner {
                calls: Vec::new(),
                method_cfg: HashMap::new(),
                users: HashMap::new(),
                missing_users: HashSet::new(),
                dms_opened: HashSet::new(),
                tickets: HashSet::new(),
                rejected_handshakes: 0,
                conns: BTreeMap::new(),
                next_conn_id: 1,
                rr_next: 0,
                sent: Vec::new(),
                acks: Vec::new(),
                other_frames: Vec::new(),
                response_posts: Vec::new(),
                hello_without_debug_info: false,
                views: HashMap::new(),
                home_views: HashMap::new(),
                triggers: HashMap::new(),
                trigger_ttl: Duration::from_secs(3),
                teams: Teams::default(),
                bot_scopes: Some(followup_bot::slack::manifest::bot_scopes().join(",")),
            }),
            notify: Notify::new(),
            counter: AtomicU64::new(1),
            http_addr: http.local_addr().expect("http addr"),
            ws_addr: ws.local_addr().expect("ws addr"),
        });
        let fake = FakeSlack { shared };
        let app = Router::new()
            .route("/api/{method}", any(api_handler))
            .route("/response/{id}", post(response_url_handler))
            .fallback(fallback_handler)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(http, app).await;
        });
        let acceptor = fake.clone();
        tokio::spawn(async move {
            loop {
                match ws.accept().await {
                    Ok((stream, _)) => {
                        let fake = acceptor.clone();
                        tokio::spawn(async move { fake.handle_ws(stream).await });
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        fake
    }

    // ---------------------------------------------------------------- addresses

    /// `http://127.0.0.1:PORT/api` (no trailing slash).
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.shared.http_addr)
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.http_addr)
    }

    /// A response_url served by this fake; posts to it are recorded as [`ResponsePost`].
    pub fn response_url(&self, id: &str) -> String {
        format!("http://{}/response/{}", self.shared.http_addr, id)
    }

    pub fn ws_addr(&self) -> SocketAddr {
        self.shared.ws_addr
    }

    // ---------------------------------------------------------------- Web API config

    /// Answer `method` with exactly this JSON (HTTP 200) from now on. Include `"ok"`:
    /// slack-morphism requires it.
    pub fn set_response(&self, method: &str, response: Value) {
        self.cfg(method, |c| c.response = Some(response));
    }

    pub fn clear_response(&self, method: &str) {
        self.cfg(method, |c| c.response = None);
    }

    /// Delay the answer (the call is recorded on arrival).
    pub fn set_delay(&self, method: &str, delay: Duration) {
        self.cfg(method, |c| c.delay = Some(delay));
    }

    pub fn clear_delay(&self, method: &str) {
        self.cfg(method, |c| c.delay = None);
    }

    /// Answer `{"ok":false,"error":error}` from now on. `"ratelimited"` answers HTTP 429 with
    /// `Retry-After: 1`.
    /// Another workspace the app is installed in, with its own bot token.
    pub fn add_team(&self, team_id: &str, team_name: &str, bot_token: &str) {
        self.lock().teams.tokens.insert(
            bot_token.to_owned(),
            (team_id.to_owned(), team_name.to_owned()),
        );
    }

    /// The token stops working (`token_revoked`), as after an uninstall.
    pub fn revoke_token(&self, bot_token: &str) {
        self.lock().teams.revoked.insert(bot_token.to_owned());
    }

    /// The app's OAuth client, which `oauth.v2.access` checks.
    pub fn set_oauth_client(&self, client_id: &str, client_secret: &str) {
        self.lock().teams.oauth_client = Some((client_id.to_owned(), client_secret.to_owned()));
    }

    /// Plays Slack's consent page: a one-time code for this install.
    pub fn issue_install_code(&self, install: Install) -> String {
        let code = format!("code-{}", uuid::Uuid::new_v4().simple());
        self.lock().teams.codes.insert(code.clone(), install);
        code
    }

    /// `oauth.v2.access` calls by grant (`authorization_code` or `refresh_token`).
    pub fn oauth_exchanges(&self, grant: &str) -> usize {
        self.lock()
            .teams
            .exchanges
            .iter()
            .filter(|g| *g == grant)
            .count()
    }

    /// The team a bot token belongs to (the default team for unregistered `xoxb-` tokens).
    pub fn team_of_token(&self, token: &str) -> Option<String> {
        let st = self.lock();
        st.teams
            .tokens
            .get(token)
            .map(|(id, _)| id.clone())
            .or_else(|| token.starts_with("xoxb-").then(|| TEAM_ID.to_owned()))
    }

    /// The bot tokens the calls to `method` used, in order.
    pub fn tokens_used(&self, method: &str) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .filter_map(|c| c.token().map(str::to_owned))
            .collect()
    }

    pub fn set_error(&self, method: &str, error: &str) {
        self.set_error_spec(method, error, None);
    }

    /// Like [`set_error`](Self::set_error) for the next `times` calls only.
    pub fn set_error_times(&self, method: &str, error: &str, times: usize) {
        self.set_error_spec(method, error, Some(times));
    }

    /// HTTP 429 `{"ok":false,"error":"ratelimited"}` with `Retry-After: retry_after_secs`, for
    /// the next `times` calls (None: until cleared).
    pub fn set_rate_limited(&self, method: &str, retry_after_secs: u64, times: Option<usize>) {
        let spec = ErrorSpec {
            error: "ratelimited".into(),
            status: 429,
            retry_after: Some(retry_after_secs),
            remaining: times,
            when_body_contains: None,
        };
        self.cfg(method, |c| c.error = Some(spec));
    }

    pub fn clear_error(&self, method: &str) {
        self.cfg(method, |c| c.error = None);
    }

    /// Deep-merged over the default `users.info` user for `user_id`.
    pub fn set_user(&self, user_id: &str, user: Value) {
        let mut st = self.lock();
        st.missing_users.remove(user_id);
        st.users.insert(user_id.to_string(), user);
    }

    /// `users.info` for this user answers `user_not_found`.
    pub fn set_user_not_found(&self, user_id: &str) {
        self.lock().missing_users.insert(user_id.to_string());
    }

    /// How long trigger ids from sent envelopes stay valid (default 3 s).
    /// The scopes the bot token holds (`x-oauth-scopes`); the default is the manifest's.
    pub fn set_bot_scopes(&self, scopes: &[&str]) {
        self.lock().bot_scopes = Some(scopes.join(","));
    }

    /// Answers without `x-oauth-scopes`, as an older fake or proxy would.
    pub fn omit_scopes_header(&self) {
        self.lock().bot_scopes = None;
    }

    pub fn set_trigger_ttl(&self, ttl: Duration) {
        self.lock().trigger_ttl = ttl;
    }

    /// Send `{"type":"hello"}` only, on connections opened from now on.
    pub fn set_hello_without_debug_info(&self, on: bool) {
        self.lock().hello_without_debug_info = on;
    }

    /// The DM channel id `conversations.open` returns for this user (stable).
    pub fn dm_channel_id(user_id: &str) -> String {
        dm_id(user_id)
    }

    // ---------------------------------------------------------------- Web API records

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    pub fn all_calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn call_count(&self, method: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// First call of `method` (already made or upcoming).
    pub async fn wait_for_call(&self, method: &str, timeout: Duration) -> anyhow::Result<Call> {
        let mut calls = self.wait_for_calls(method, 1, timeout).await?;
        Ok(calls.swap_remove(0))
    }

    /// The first `n` calls of `method`, once there are at least `n`.
    pub async fn wait_for_calls(
        &self,
        method: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Call>> {
        let got = self
            .wait_until(timeout, |st| {
                let v: Vec<Call> = st
                    .calls
                    .iter()
                    .filter(|c| c.method == method)
                    .take(n)
                    .cloned()
                    .collect();
                (v.len() >= n).then_some(v)
            })
            .await;
        got.ok_or_else(|| {
            let st = self.lock();
            let seen: Vec<&str> = st.calls.iter().map(|c| c.method.as_str()).collect();
            anyhow::anyhow!(
                "timed out after {timeout:?} waiting for {n} call(s) of {method}; calls so far: {seen:?}"
            )
        })
    }

    pub fn response_posts(&self) -> Vec<ResponsePost> {
        self.lock().response_posts.clone()
    }

    /// First post to `response_url(id)`.
    pub async fn wait_for_response_post(
        &self,
        id: &str,
        timeout: Duration,
    ) -> anyhow::Result<ResponsePost> {
        self.wait_until(timeout, |st| {
            st.response_posts.iter().find(|p| p.id == id).cloned()
        })
        .await
        .ok_or_else(|| {
            anyhow::anyhow!("timed out after {timeout:?} waiting for response_url post {id}")
        })
    }

    /// The current stored view (as last returned by views.open/push/update/publish).
    pub fn view(&self, view_id: &str) -> Option<Value> {
        self.lock().views.get(view_id).cloned()
    }

    // ---------------------------------------------------------------- Socket Mode: connections

    pub fn open_connections(&self) -> usize {
        self.lock()
            .conns
            .values()
            .filter(|c| c.info.is_open())
            .count()
    }

    pub fn open_connection_ids(&self) -> Vec<u64> {
        self.lock()
            .conns
            .values()
            .filter(|c| c.info.is_open())
            .map(|c| c.info.id)
            .collect()
    }

    /// Connections that completed the handshake (hello sent), ever.
    pub fn connections_opened_total(&self) -> usize {
        self.lock().conns.len()
    }

    /// Handshakes refused for a missing, unknown or reused ticket.
    pub fn rejected_handshakes(&self) -> usize {
        self.lock().rejected_handshakes
    }

    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.lock().conns.values().map(|c| c.info.clone()).collect()
    }

    pub fn connection(&self, conn_id: u64) -> Option<ConnectionInfo> {
        self.lock().conns.get(&conn_id).map(|c| c.info.clone())
    }

    /// Waits until at least `n` connections are open; returns the open ids.
    pub async fn wait_for_connections(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<u64>> {
        self.wait_until(timeout, |st| {
            let ids: Vec<u64> =
                st.conns.values().filter(|c| c.info.is_open()).map(|c| c.info.id).collect();
            (ids.len() >= n).then_some(ids)
        })
        .await
        .ok_or_else(|| {
            anyhow::anyhow!(
                "timed out after {timeout:?} waiting for {n} open connection(s); open: {}, opened total: {}",
                self.open_connections(),
                self.connections_opened_total()
            )
        })
    }

    /// Waits until `n` connections have ever been opened.
    pub async fn wait_for_total_connections(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        self.wait_until(timeout, |st| (st.conns.len() >= n).then_some(()))
            .await
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "timed out after {timeout:?} waiting for {n} connections opened in total; got {}",
                    self.connections_opened_total()
                )
            })
    }

    pub async fn wait_for_connection_closed(
        &self,
        conn_id: u64,
        timeout: Duration,
    ) -> anyhow::Result<ConnectionInfo> {
        self.wait_until(timeout, |st| {
            st.conns
                .get(&conn_id)
                .filter(|c| !c.info.is_open())
                .map(|c| c.info.clone())
        })
        .await
        .ok_or_else(|| {
            anyhow::anyhow!("timed out after {timeout:?} waiting for connection {conn_id} to close")
        })
    }

    /// None while open (or unknown); see [`ConnectionInfo::replaced_before_close`].
    pub fn replaced_before_close(&self, conn_id: u64) -> Option<bool> {
        self.lock()
            .conns
            .get(&conn_id)
            .and_then(|c| c.info.replaced_before_close)
    }

    // ---------------------------------------------------------------- Socket Mode: sending

    /// Sends an envelope (an `envelope_id` is added if missing) round-robin; returns its id.
    pub fn send_envelope(&self, envelope: Value) -> anyhow::Result<String> {
        let conn_id = self.pick_connection()?;
        self.send_envelope_to(conn_id, envelope)
    }

    pub fn send_envelope_to(&self, conn_id: u64, mut envelope: Value) -> anyhow::Result<String> {
        let obj = envelope
            .as_object_mut()
            .ok_or_else(|| anyhow::anyhow!("envelope must be a JSON object"))?;
        let envelope_id = match obj.get("envelope_id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                obj.insert("envelope_id".into(), Value::String(id.clone()));
                id
            }
        };
        let trigger = envelope
            .pointer("/payload/trigger_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let text = envelope.to_string();
        let mut st = self.lock();
        if let Some(t) = trigger {
            st.triggers.entry(t).or_insert(Trigger {
                sent_at: Instant::now(),
                used: false,
            });
        }
        let conn = st
            .conns
            .get(&conn_id)
            .filter(|c| c.info.is_open())
            .ok_or_else(|| anyhow::anyhow!("connection {conn_id} is not open"))?;
        let _ = conn.tx.send(Cmd::Text {
            text,
            envelope_id: Some(envelope_id.clone()),
        });
        Ok(envelope_id)
    }

    /// Sends any text (malformed JSON included) round-robin; returns the connection id.
    pub fn send_raw(&self, text: &str) -> anyhow::Result<u64> {
        let conn_id = self.pick_connection()?;
        self.send_raw_to(conn_id, text)?;
        Ok(conn_id)
    }

    pub fn send_raw_to(&self, conn_id: u64, text: &str) -> anyhow::Result<()> {
        self.command(
            conn_id,
            Cmd::Text {
                text: text.to_string(),
                envelope_id: None,
            },
        )
    }

    /// `{"type":"disconnect","reason":reason,"debug_info":{"host":"applink-1"}}`; the socket
    /// stays open until the client closes it.
    pub fn send_disconnect(&self, conn_id: u64, reason: &str) -> anyhow::Result<()> {
        self.send_disconnect_with(conn_id, reason, true)
    }

    pub fn send_disconnect_with(
        &self,
        conn_id: u64,
        reason: &str,
        with_debug_info: bool,
    ) -> anyhow::Result<()> {
        let msg = if with_debug_info {
            json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-1"}})
        } else {
            json!({"type": "disconnect", "reason": reason})
        };
        {
            let mut st = self.lock();
            if let Some(c) = st.conns.get_mut(&conn_id) {
                c.info.disconnect_sent_at.get_or_insert_with(Instant::now);
            }
        }
        self.send_raw_to(conn_id, &msg.to_string())
    }

    /// Close frame (1000) from the fake; the connection ends when the client answers/closes.
    pub fn close_connection(&self, conn_id: u64) -> anyhow::Result<()> {
        self.command(conn_id, Cmd::Close(1000, String::new()))
    }

    /// Drops the TCP socket (FIN) without a websocket close frame.
    pub fn drop_connection(&self, conn_id: u64) -> anyhow::Result<()> {
        self.command(conn_id, Cmd::Drop { reset: false })
    }

    /// Drops the TCP socket with SO_LINGER 0 (RST).
    pub fn reset_connection(&self, conn_id: u64) -> anyhow::Result<()> {
        self.command(conn_id, Cmd::Drop { reset: true })
    }

    /// Keeps TCP open but never answers again (no pongs, no acks recorded, envelopes sent to it
    /// are lost). The connection counts as open until the client closes TCP or it is dropped.
    pub fn go_silent(&self, conn_id: u64) -> anyhow::Result<()> {
        {
            let mut st = self.lock();
            if let Some(c) = st.conns.get_mut(&conn_id) {
                c.info.silent = true;
            }
        }
        self.command(conn_id, Cmd::Silent)
    }

    /// A websocket ping from the fake; pongs are counted in [`ConnectionInfo::pongs_received`].
    pub fn send_ping(&self, conn_id: u64) -> anyhow::Result<()> {
        self.command(conn_id, Cmd::Ping(b"fake-slack".to_vec()))
    }

    // ---------------------------------------------------------------- Socket Mode: records

    pub fn sent_frames(&self) -> Vec<SentFrame> {
        self.lock().sent.clone()
    }

    pub fn acks(&self) -> Vec<Ack> {
        self.lock().acks.clone()
    }

    pub fn ack_count(&self, envelope_id: &str) -> usize {
        self.lock()
            .acks
            .iter()
            .filter(|a| a.envelope_id == envelope_id)
            .count()
    }

    /// Text frames from the bot without an `envelope_id` (conn id, text).
    pub fn other_frames(&self) -> Vec<(u64, String)> {
        self.lock().other_frames.clone()
    }

    /// First ack of `envelope_id`.
    pub async fn wait_for_ack(&self, envelope_id: &str, timeout: Duration) -> anyhow::Result<Ack> {
        self.wait_until(timeout, |st| {
            st.acks
                .iter()
                .find(|a| a.envelope_id == envelope_id)
                .cloned()
        })
        .await
        .ok_or_else(|| {
            anyhow::anyhow!("timed out after {timeout:?} waiting for ack of {envelope_id}")
        })
    }

    // ---------------------------------------------------------------- internals

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.shared.notify.notify_waiters();
    }

    fn next_n(&self) -> u64 {
        self.shared.counter.fetch_add(1, Ordering::Relaxed)
    }

    fn cfg(&self, method: &str, f: impl FnOnce(&mut MethodConfig)) {
        let mut st = self.lock();
        f(st.method_cfg.entry(method.to_string()).or_default());
    }

    fn set_error_spec(&self, method: &str, error: &str, remaining: Option<usize>) {
        let rl = error == "ratelimited";
        let spec = ErrorSpec {
            error: error.to_string(),
            status: if rl { 429 } else { 200 },
            retry_after: rl.then_some(1),
            remaining,
            when_body_contains: None,
        };
        self.cfg(method, |c| c.error = Some(spec));
    }

    /// Refuses every `method` call whose body contains `needle` with `error`, for good.
    pub fn set_error_when(&self, method: &str, needle: &str, error: &str) {
        let spec = ErrorSpec {
            error: error.to_string(),
            status: 200,
            retry_after: None,
            remaining: None,
            when_body_contains: Some(needle.to_string()),
        };
        self.cfg(method, |c| c.error = Some(spec));
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

    fn pick_connection(&self) -> anyhow::Result<u64> {
        let mut st = self.lock();
        let preferred: Vec<u64> = st
            .conns
            .values()
            .filter(|c| c.info.is_open() && !c.info.silent && c.info.disconnect_sent_at.is_none())
            .map(|c| c.info.id)
            .collect();
        let ids = if preferred.is_empty() {
            st.conns
                .values()
                .filter(|c| c.info.is_open() && !c.info.silent)
                .map(|c| c.info.id)
                .collect()
        } else {
            preferred
        };
        if ids.is_empty() {
            anyhow::bail!("no open Socket Mode connection to send to");
        }
        let i = st.rr_next % ids.len();
        st.rr_next = st.rr_next.wrapping_add(1);
        Ok(ids[i])
    }

    fn command(&self, conn_id: u64, cmd: Cmd) -> anyhow::Result<()> {
        let st = self.lock();
        let conn = st
            .conns
            .get(&conn_id)
            .filter(|c| c.info.is_open())
            .ok_or_else(|| anyhow::anyhow!("connection {conn_id} is not open"))?;
        conn.tx
            .send(cmd)
            .map_err(|_| anyhow::anyhow!("connection {conn_id} task has ended"))
    }

    fn mark_closed(&self, conn_id: u64, kind: CloseKind) {
        let now = Instant::now();
        let mut st = self.lock();
        let Some(reference) = st.conns.get(&conn_id).and_then(|c| {
            c.info
                .is_open()
                .then(|| c.info.disconnect_sent_at.unwrap_or(c.info.opened_at))
        }) else {
            return;
        };
        let replaced = st.conns.values().any(|c| {
            c.info.id != conn_id && c.info.opened_at >= reference && c.info.opened_at <= now
        });
        if let Some(c) = st.conns.get_mut(&conn_id) {
            c.info.closed_at = Some(now);
            c.info.close_kind = Some(kind);
            c.info.replaced_before_close = Some(replaced);
        }
        drop(st);
        self.changed();
    }

    fn record_sent(
        &self,
        conn_id: u64,
        text: String,
        envelope_id: Option<String>,
        delivered: bool,
    ) {
        self.lock().sent.push(SentFrame {
            envelope_id,
            conn_id,
            text,
            sent_at: Instant::now(),
            delivered,
        });
        self.changed();
    }

    fn on_text(&self, conn_id: u64, text: &str) {
        let received_at = Instant::now();
        let parsed: Option<Value> = serde_json::from_str(text).ok();
        let envelope_id = parsed
            .as_ref()
            .and_then(|v| v.get("envelope_id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut st = self.lock();
        if let Some(c) = st.conns.get_mut(&conn_id) {
            c.info.text_frames_received += 1;
        }
        match envelope_id {
            Some(envelope_id) => {
                let latency = st
                    .sent
                    .iter()
                    .rev()
                    .find(|s| s.envelope_id.as_deref() == Some(envelope_id.as_str()))
                    .map(|s| received_at.saturating_duration_since(s.sent_at));
                let payload = parsed.as_ref().and_then(|v| v.get("payload")).cloned();
                st.acks.push(Ack {
                    envelope_id,
                    payload,
                    raw: text.to_string(),
                    conn_id,
                    received_at,
                    latency,
                });
            }
            None => st.other_frames.push((conn_id, text.to_string())),
        }
        drop(st);
        self.changed();
    }

    fn bump(&self, conn_id: u64, f: impl FnOnce(&mut ConnectionInfo)) {
        if let Some(c) = self.lock().conns.get_mut(&conn_id) {
            f(&mut c.info);
        }
        self.changed();
    }

    async fn handle_ws(self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let accepted_ticket: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let fake = self.clone();
        let slot = accepted_ticket.clone();
        #[allow(clippy::result_large_err)] // the signature tungstenite's Callback requires
        let callback =
            move |req: &WsRequest, resp: WsResponse| -> Result<WsResponse, ErrorResponse> {
                let ticket = req.uri().query().and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "ticket")
                        .map(|(_, v)| v.into_owned())
                });
                let mut st = fake.lock();
                let valid = req.uri().path().starts_with("/link")
                    && ticket.as_ref().is_some_and(|t| st.tickets.remove(t));
                if valid {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = ticket;
                    Ok(resp)
                } else {
                    st.rejected_handshakes += 1;
                    let mut err = http::Response::new(Some("invalid or used ticket".to_string()));
                    *err.status_mut() = http::StatusCode::UNAUTHORIZED;
                    Err(err)
                }
            };
        let mut ws = match tokio_tungstenite::accept_hdr_async(stream, callback).await {
            Ok(ws) => ws,
            Err(_) => {
                self.changed();
                return;
            }
        };
        let ticket = accepted_ticket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (conn_id, hello) = {
            let mut st = self.lock();
            let id = st.next_conn_id;
            st.next_conn_id += 1;
            st.conns.insert(
                id,
                Conn {
                    info: ConnectionInfo {
                        id,
                        ticket,
                        opened_at: Instant::now(),
                        closed_at: None,
                        close_kind: None,
                        disconnect_sent_at: None,
                        silent: false,
                        replaced_before_close: None,
                        pings_received: 0,
                        pongs_received: 0,
                        text_frames_received: 0,
                    },
                    tx,
                },
            );
            let n = st.conns.values().filter(|c| c.info.is_open()).count();
            let hello = if st.hello_without_debug_info {
                json!({"type": "hello"})
            } else {
                json!({
                    "type": "hello",
                    "num_connections": n,
                    "debug_info": {"host": "applink-1", "build_number": 1, "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID}
                })
            };
            (id, hello)
        };
        self.changed();
        if let Err(e) = ws.send(Message::text(hello.to_string())).await {
            self.mark_closed(conn_id, CloseKind::Error(e.to_string()));
            return;
        }
        let mut client_close: Option<CloseKind> = None;
        let mut server_closed = false;
        loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => self.on_text(conn_id, t.as_str()),
                    Some(Ok(Message::Binary(b))) => {
                        let text = String::from_utf8_lossy(&b).into_owned();
                        self.on_text(conn_id, &text);
                    }
                    Some(Ok(Message::Ping(_))) => {
                        self.bump(conn_id, |c| c.pings_received += 1);
                        // tungstenite queued the pong; push it out now.
                        let _ = ws.flush().await;
                    }
                    Some(Ok(Message::Pong(_))) => self.bump(conn_id, |c| c.pongs_received += 1),
                    Some(Ok(Message::Close(frame))) => {
                        if !server_closed {
                            client_close = Some(CloseKind::ClientCloseFrame(frame.map(|f| u16::from(f.code))));
                        }
                        let _ = ws.flush().await;
                    }
                    Some(Ok(Message::Frame(_))) => {}
                    Some(Err(e)) => {
                        let kind = if server_closed {
                            CloseKind::ServerClosed
                        } else if let Some(k) = client_close.take() {
                            k
                        } else if matches!(
                            e,
                            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
                                | WsError::ConnectionClosed
                                | WsError::AlreadyClosed
                        ) {
                            CloseKind::ClientEof
                        } else {
                            CloseKind::Error(e.to_string())
                        };
                        self.mark_closed(conn_id, kind);
                        return;
                    }
                    None => {
                        let kind = if server_closed {
                            CloseKind::ServerClosed
                        } else {
                            client_close.take().unwrap_or(CloseKind::ClientEof)
                        };
                        self.mark_closed(conn_id, kind);
                        return;
                    }
                },
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Text { text, envelope_id }) => {
                        self.record_sent(conn_id, text.clone(), envelope_id, true);
                        if let Err(e) = ws.send(Message::text(text)).await {
                            self.mark_closed(conn_id, CloseKind::Error(e.to_string()));
                            return;
                        }
                    }
                    Some(Cmd::Ping(p)) => {
                        let _ = ws.send(Message::Ping(p.into())).await;
                    }
                    Some(Cmd::Close(code, reason)) => {
                        server_closed = true;
                        let _ = ws
                            .close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }))
                            .await;
                    }
                    Some(Cmd::Drop { reset }) => {
                        if reset {
                            let _ = ws.get_ref().set_zero_linger();
                        }
                        drop(ws);
                        self.mark_closed(conn_id, CloseKind::ServerDropped);
                        return;
                    }
                    Some(Cmd::Silent) => {
                        self.silent_loop(conn_id, ws.into_inner(), rx).await;
                        return;
                    }
                    None => {
                        drop(ws);
                        self.mark_closed(conn_id, CloseKind::ServerDropped);
                        return;
                    }
                }
            }
        }
    }

    /// Reads and discards raw bytes (so no pong is ever produced) until the client goes away.
    async fn silent_loop(
        &self,
        conn_id: u64,
        mut tcp: TcpStream,
        mut rx: mpsc::UnboundedReceiver<Cmd>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            tokio::select! {
                r = tcp.read(&mut buf) => match r {
                    Ok(0) => {
                        self.mark_closed(conn_id, CloseKind::ClientEof);
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.mark_closed(conn_id, CloseKind::Error(e.to_string()));
                        return;
                    }
                },
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Text { text, envelope_id }) => self.record_sent(conn_id, text, envelope_id, false),
                    Some(Cmd::Drop { reset }) => {
                        if reset {
                            let _ = tcp.set_zero_linger();
                        }
                        drop(tcp);
                        self.mark_closed(conn_id, CloseKind::ServerDropped);
                        return;
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        }
    }

    // ---------------------------------------------------------------- Web API answers

    fn new_ts(&self) -> String {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("{}.{:06}", secs, self.next_n() % 1_000_000)
    }

    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}{:09}", self.next_n())
    }

    /// (status, json, retry_after, delay)
    fn answer(
        &self,
        method: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (u16, Value, Option<u64>, Option<Duration>) {
        let mut st = self.lock();
        let cfg = st.method_cfg.get_mut(method);
        let delay = cfg.as_ref().and_then(|c| c.delay);
        if let Some(c) = cfg {
            if let Some(spec) = c.error.clone()
                && spec
                    .when_body_contains
                    .as_ref()
                    .is_none_or(|needle| body.to_string().contains(needle.as_str()))
            {
                let active = spec.remaining.is_none_or(|n| n > 0);
                if let Some(n) = c.error.as_mut().and_then(|e| e.remaining.as_mut()) {
                    *n = n.saturating_sub(1);
                }
                if active {
                    return (
                        spec.status,
                        json!({"ok": false, "error": spec.error}),
                        spec.retry_after,
                        delay,
                    );
                }
            }
            if let Some(resp) = c.response.clone() {
                return (200, resp, None, delay);
            }
        }
        let resp = self.default_answer(&mut st, method, body, token);
        (200, resp, None, delay)
    }

    fn default_answer(
        &self,
        st: &mut Inner,
        method: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Value {
        const BOT_METHODS: &[&str] = &[
            "auth.test",
            "chat.postMessage",
            "chat.update",
            "chat.postEphemeral",
            "chat.delete",
            "conversations.open",
            "users.info",
            "views.open",
            "views.update",
            "views.push",
            "views.publish",
        ];
        let s = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        let err = |e: &str| json!({"ok": false, "error": e});
        if method == "oauth.v2.access" {
            return oauth_access(&mut st.teams, body);
        }
        if let Some(t) = token {
            if st.teams.revoked.contains(t) {
                return err("token_revoked");
            }
            if method == "auth.test"
                && let Some((team_id, team_name)) = st.teams.tokens.get(t)
            {
                return json!({
                    "ok": true, "url": format!("https://{team_id}.slack.com/"), "team": team_name,
                    "user": BOT_NAME, "team_id": team_id, "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID, "is_enterprise_install": false
                });
            }
        }
        let required_prefix = if method == "apps.connections.open" {
            "xapp-"
        } else if BOT_METHODS.contains(&method) {
            "xoxb-"
        } else {
            return json!({"ok": false, "error": "unknown_method", "req_method": method});
        };
        match token {
            None | Some("") => return err("not_authed"),
            Some(t) if !t.starts_with(required_prefix) => return err("invalid_auth"),
            _ => {}
        }
        match method {
            "apps.connections.open" => {
                let ticket = uuid::Uuid::new_v4().to_string();
                st.tickets.insert(ticket.clone());
                json!({"ok": true, "url": format!("ws://{}/link/?ticket={}&app_id={}", self.shared.ws_addr, ticket, APP_ID)})
            }
            "auth.test" => json!({
                "ok": true, "url": TEAM_URL, "team": TEAM_NAME, "user": BOT_NAME,
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
                "is_enterprise_install": false
            }),
            "chat.postMessage" => {
                let Some(channel) = s("channel") else {
                    return err("channel_not_found");
                };
                if s("text").is_none()
                    && body.get("blocks").is_none()
                    && body.get("attachments").is_none()
                {
                    return err("no_text");
                }
                let channel = if is_user_id(channel) {
                    dm_id(channel)
                } else {
                    channel.to_string()
                };
                let ts = self.new_ts();
                let mut message = bot_message(body, &ts);
                if let Some(thread_ts) = s("thread_ts") {
                    message["thread_ts"] = json!(thread_ts);
                }
                json!({"ok": true, "channel": channel, "ts": ts, "message": message})
            }
            "chat.update" => {
                let (Some(channel), Some(ts)) = (s("channel"), s("ts")) else {
                    return err(if s("channel").is_none() {
                        "channel_not_found"
                    } else {
                        "message_not_found"
                    });
                };
                let mut message = bot_message(body, ts);
                if let Some(m) = message.as_object_mut() {
                    m.remove("ts");
                    m.remove("type");
                }
                json!({"ok": true, "channel": channel, "ts": ts, "text": s("text").unwrap_or(""), "message": message})
            }
            "chat.postEphemeral" => {
                if s("channel").is_none() {
                    return err("channel_not_found");
                }
                if s("user").is_none() {
                    return err("user_not_in_channel");
                }
                json!({"ok": true, "message_ts": self.new_ts()})
            }
            "chat.delete" => match (s("channel"), s("ts")) {
                (Some(c), Some(ts)) => json!({"ok": true, "channel": c, "ts": ts}),
                _ => err("message_not_found"),
            },
            "conversations.open" => {
                let users: Vec<String> = match body.get("users") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    Some(Value::String(s)) => s
                        .split(',')
                        .map(str::trim)
                        .filter(|u| !u.is_empty())
                        .map(str::to_string)
                        .collect(),
                    _ => Vec::new(),
                };
                let id = if let Some(ch) = s("channel") {
                    ch.to_string()
                } else if users.len() == 1 {
                    dm_id(&users[0])
                } else if users.len() > 1 {
                    format!(
                        "G{}",
                        users
                            .iter()
                            .map(|u| u.trim_start_matches(['U', 'W']))
                            .collect::<String>()
                    )
                } else {
                    return err("users_list_not_supplied");
                };
                let already = !st.dms_opened.insert(id.clone());
                let return_im = matches!(body.get("return_im"), Some(Value::Bool(true)))
                    || matches!(body.get("return_im"), Some(Value::String(v)) if v == "true" || v == "1");
                let channel = if return_im {
                    let created = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    json!({
                        "id": id, "created": created, "is_im": true, "is_org_shared": false,
                        "user": users.first().cloned().unwrap_or_default(),
                        "last_read": "0000000000.000000", "latest": null,
                        "unread_count": 0, "unread_count_display": 0, "is_open": true, "priority": 0
                    })
                } else {
                    json!({"id": id})
                };
                if already {
                    json!({"ok": true, "no_op": true, "already_open": true, "channel": channel})
                } else {
                    json!({"ok": true, "channel": channel})
                }
            }
            "users.info" => {
                let Some(user) = s("user") else {
                    return err("user_not_found");
                };
                if st.missing_users.contains(user) {
                    return err("user_not_found");
                }
                let mut u = default_user(user);
                if let Some(o) = st.users.get(user) {
                    merge(&mut u, o);
                }
                let with_locale = matches!(body.get("include_locale"), Some(Value::Bool(true)))
                    || matches!(body.get("include_locale"), Some(Value::String(v)) if v == "true" || v == "1");
                if with_locale && u.get("locale").is_none() {
                    u["locale"] = json!("en-US");
                }
                json!({"ok": true, "user": u})
            }
            "views.open" | "views.push" => {
                let Some(trigger) = s("trigger_id") else {
                    return err("invalid_arguments");
                };
                if let Some(t) = st.triggers.get_mut(trigger) {
                    if t.used {
                        return err("exchanged_trigger_id");
                    }
                    if t.sent_at.elapsed() > st.trigger_ttl {
                        return err("expired_trigger_id");
                    }
                    t.used = true;
                }
                let Some(view) = body.get("view").filter(|v| v.is_object()) else {
                    return err("invalid_arguments");
                };
                let id = self.new_id("V");
                let full = self.stateful_view(view, &id, None, &id);
                st.views.insert(id, full.clone());
                json!({"ok": true, "view": full})
            }
            "views.update" => {
                let Some(view) = body.get("view").filter(|v| v.is_object()) else {
                    return err("invalid_arguments");
                };
                let id =
                    match (s("view_id"), s("external_id")) {
                        (Some(id), _) => id.to_string(),
                        (None, Some(ext)) => match st.views.iter().find(|(_, v)| {
                            v.get("external_id").and_then(Value::as_str) == Some(ext)
                        }) {
                            Some((id, _)) => id.clone(),
                            None => return err("not_found"),
                        },
                        (None, None) => return err("invalid_arguments"),
                    };
                let old = st.views.get(&id).cloned();
                if let (Some(hash), Some(old)) = (s("hash"), old.as_ref())
                    && old.get("hash").and_then(Value::as_str) != Some(hash)
                {
                    return err("hash_conflict");
                }
                let root = old
                    .as_ref()
                    .and_then(|o| o.get("root_view_id"))
                    .and_then(Value::as_str)
                    .unwrap_or(&id)
                    .to_string();
                let previous = old
                    .as_ref()
                    .and_then(|o| o.get("previous_view_id"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let full = self.stateful_view(view, &id, previous.as_deref(), &root);
                st.views.insert(id, full.clone());
                json!({"ok": true, "view": full})
            }
            "views.publish" => {
                let Some(user) = s("user_id") else {
                    return err("invalid_arguments");
                };
                let Some(view) = body.get("view").filter(|v| v.is_object()) else {
                    return err("invalid_arguments");
                };
                if view.get("type").and_then(Value::as_str) != Some("home") {
                    return err("invalid_arguments");
                }
                let id = st
                    .home_views
                    .entry(user.to_string())
                    .or_insert_with(|| self.new_id("VH"))
                    .clone();
                if let (Some(hash), Some(old)) = (s("hash"), st.views.get(&id))
                    && old.get("hash").and_then(Value::as_str) != Some(hash)
                {
                    return err("hash_conflict");
                }
                let full = self.stateful_view(view, &id, None, &id);
                st.views.insert(id, full.clone());
                json!({"ok": true, "view": full})
            }
            _ => json!({"ok": false, "error": "unknown_method", "req_method": method}),
        }
    }

    fn stateful_view(
        &self,
        submitted: &Value,
        id: &str,
        previous: Option<&str>,
        root: &str,
    ) -> Value {
        let mut v: Map<String, Value> = submitted.as_object().cloned().unwrap_or_default();
        let is_home = v.get("type").and_then(Value::as_str) == Some("home");
        v.entry("type").or_insert(json!("modal"));
        v.entry("blocks").or_insert(json!([]));
        for k in ["private_metadata", "callback_id", "external_id"] {
            v.entry(k).or_insert(json!(""));
        }
        if !is_home {
            v.entry("close").or_insert(Value::Null);
            v.entry("submit").or_insert(Value::Null);
            v.entry("clear_on_close").or_insert(json!(false));
            v.entry("notify_on_close").or_insert(json!(false));
        }
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let hash = format!(
            "{}.{}",
            secs,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        v.insert("id".into(), json!(id));
        v.insert("team_id".into(), json!(TEAM_ID));
        v.insert("state".into(), json!({"values": {}}));
        v.insert("hash".into(), json!(hash));
        v.insert("previous_view_id".into(), json!(previous));
        v.insert("root_view_id".into(), json!(root));
        v.insert("app_id".into(), json!(APP_ID));
        v.insert("app_installed_team_id".into(), json!(TEAM_ID));
        v.insert("bot_id".into(), json!(BOT_ID));
        Value::Object(v)
    }
}

fn is_user_id(s: &str) -> bool {
    (s.starts_with('U') || s.starts_with('W')) && s.len() > 1
}

fn dm_id(user_id: &str) -> String {
    let rest = user_id.strip_prefix(['U', 'W']).unwrap_or(user_id);
    format!("D{rest}")
}

fn bot_message(body: &Value, ts: &str) -> Value {
    let mut m = json!({
        "type": "message",
        "text": body.get("text").and_then(Value::as_str).unwrap_or(""),
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "ts": ts,
        "bot_profile": {
            "id": BOT_ID, "app_id": APP_ID, "name": BOT_NAME, "deleted": false,
            "updated": 1_700_000_000, "team_id": TEAM_ID,
            "icons": {"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"}
        }
    });
    for k in ["blocks", "attachments", "metadata"] {
        if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
            m[k] = v.clone();
        }
    }
    m
}

fn default_user(user_id: &str) -> Value {
    let short = user_id.to_lowercase();
    let real_name = format!("Test User {user_id}");
    json!({
        "id": user_id,
        "team_id": TEAM_ID,
        "name": format!("user.{short}"),
        "deleted": false,
        "color": "9f69e7",
        "real_name": real_name,
        "tz": "Europe/Rome",
        "tz_label": "Central European Time",
        "tz_offset": 3600,
        "profile": {
            "title": "Account Executive",
            "phone": "",
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": format!("tester-{short}"),
            "display_name_normalized": format!("tester-{short}"),
            "status_text": "",
            "status_emoji": "",
            "avatar_hash": "g1234567890a",
            "email": format!("{short}@example.com"),
            "first_name": "Test",
            "last_name": format!("User {user_id}"),
            "image_24": "https://secure.gravatar.com/avatar/0.jpg?s=24",
            "image_72": "https://secure.gravatar.com/avatar/0.jpg?s=72",
            "team": TEAM_ID
        },
        "is_admin": false,
        "is_owner": false,
        "is_primary_owner": false,
        "is_restricted": false,
        "is_ultra_restricted": false,
        "is_bot": false,
        "is_app_user": false,
        "updated": 1_700_000_000,
        "is_email_confirmed": true,
        "who_can_share_contact_card": "EVERYONE"
    })
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Query string + body (JSON or form) → one JSON object; JSON-in-string fields decoded.
fn parse_body(content_type: Option<&str>, body: &[u8], query: Option<&str>) -> Value {
    let mut obj = Map::new();
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            obj.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let trimmed = String::from_utf8_lossy(body);
    let trimmed = trimmed.trim();
    if !trimmed.is_empty() {
        let as_json = ct.contains("json") || (!ct.contains("form") && trimmed.starts_with('{'));
        if as_json {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(Value::Object(m)) => obj.extend(m),
                Ok(other) => {
                    obj.insert("_body".into(), other);
                }
                Err(_) => {
                    obj.insert("_unparsed".into(), Value::String(trimmed.to_string()));
                }
            }
        } else {
            for (k, v) in url::form_urlencoded::parse(trimmed.as_bytes()) {
                obj.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    for k in ["view", "blocks", "attachments", "metadata"] {
        let decoded = obj
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| s.trim_start().starts_with(['{', '[']))
            .and_then(|s| serde_json::from_str::<Value>(s).ok());
        if let Some(v) = decoded {
            obj.insert(k.into(), v);
        }
    }
    Value::Object(obj)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn json_response(status: u16, body: &Value, retry_after: Option<u64>) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body.to_string(),
    )
        .into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn api_handler(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    http_method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_at = Instant::now();
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let authorization = header_str(&headers, header::AUTHORIZATION);
    let mut parsed = parse_body(content_type.as_deref(), &body, query.as_deref());
    if let Some(basic) = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        && let Ok(decoded) =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, basic)
        && let Some((id, secret)) = String::from_utf8_lossy(&decoded).split_once(':')
        && let Some(map) = parsed.as_object_mut()
    {
        map.entry("client_id").or_insert_with(|| json!(id));
        map.entry("client_secret").or_insert_with(|| json!(secret));
    }
    let token = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .or_else(|| parsed.get("token").and_then(Value::as_str))
        .map(str::to_string);
    let (status, resp, retry_after, delay) = fake.answer(&method, &parsed, token.as_deref());
    let refused = [
        "not_authed",
        "invalid_auth",
        "token_revoked",
        "unknown_method",
    ]
    .contains(&resp["error"].as_str().unwrap_or_default());
    let scopes = match token.as_deref() {
        Some(t) if !refused && t.starts_with("xapp-") => Some("connections:write".to_owned()),
        Some(t) if !refused && !t.is_empty() => fake.lock().bot_scopes.clone(),
        _ => None,
    };
    fake.lock().calls.push(Call {
        method,
        http_method: http_method.to_string(),
        body: parsed,
        raw_body: String::from_utf8_lossy(&body).into_owned(),
        authorization,
        content_type,
        received_at,
        status,
        response: resp.clone(),
    });
    fake.changed();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let mut response = json_response(status, &resp, retry_after);
    if let Some(v) = scopes.and_then(|s| HeaderValue::from_str(&s).ok()) {
        response.headers_mut().insert("x-oauth-scopes", v);
    }
    response
}

async fn response_url_handler(
    State(fake): State<FakeSlack>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let parsed = parse_body(content_type.as_deref(), &body, None);
    fake.lock().response_posts.push(ResponsePost {
        id,
        body: parsed,
        raw_body: String::from_utf8_lossy(&body).into_owned(),
        content_type,
        received_at: Instant::now(),
    });
    fake.changed();
    json_response(200, &json!({"ok": true}), None)
}

/// `oauth.v2.access`: a code from [`FakeSlack::issue_install_code`], or
/// `grant_type=refresh_token` with a rotating install's refresh token. Errors are HTTP 200
/// `{ok:false, error}` as Slack answers them.
fn oauth_access(teams: &mut Teams, body: &Value) -> Value {
    let s = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let err = |e: &str| json!({"ok": false, "error": e});
    let grant = if s("grant_type") == "refresh_token" {
        "refresh_token"
    } else {
        "authorization_code"
    };
    teams.exchanges.push(grant.to_owned());
    match &teams.oauth_client {
        Some((id, secret)) if *id == s("client_id") && *secret == s("client_secret") => {}
        _ => return err("invalid_client_id"),
    }
    teams.issued += 1;
    let n = teams.issued;
    if grant == "refresh_token" {
        let Some((team_id, team_name)) = teams.refresh.remove(&s("refresh_token")) else {
            return err("invalid_refresh_token");
        };
        let token = format!("xoxe.xoxb-{team_id}-{n}");
        let refresh = format!("xoxe-1-{team_id}-{n}");
        teams
            .tokens
            .insert(token.clone(), (team_id.clone(), team_name.clone()));
        teams
            .refresh
            .insert(refresh.clone(), (team_id.clone(), team_name.clone()));
        return json!({
            "ok": true, "access_token": token, "token_type": "bot", "refresh_token": refresh,
            "expires_in": 43200, "team": {"id": team_id, "name": team_name}
        });
    }
    let Some(install) = teams.codes.remove(&s("code")) else {
        return err("invalid_code");
    };
    if install.redirect_uri != s("redirect_uri") {
        return err("bad_redirect_uri");
    }
    let token = if install.rotation {
        format!("xoxe.xoxb-{}-{n}", install.team_id)
    } else {
        format!("xoxb-{}-{n}", install.team_id)
    };
    teams.tokens.insert(
        token.clone(),
        (install.team_id.clone(), install.team_name.clone()),
    );
    let mut answer = json!({
        "ok": true, "access_token": token, "token_type": "bot",
        "scope": "commands,chat:write,im:write,users:read,users:read.email",
        "bot_user_id": BOT_USER_ID, "app_id": APP_ID,
        "team": {"id": install.team_id, "name": install.team_name},
        "enterprise": install.enterprise_id.as_ref().map(|id| json!({"id": id, "name": "Org"})),
        "authed_user": {"id": install.installer},
        "is_enterprise_install": install.enterprise_id.is_some(),
    });
    if install.rotation {
        let refresh = format!("xoxe-1-{}-{n}", install.team_id);
        teams.refresh.insert(
            refresh.clone(),
            (install.team_id.clone(), install.team_name.clone()),
        );
        answer["refresh_token"] = json!(refresh);
        answer["expires_in"] = json!(43200);
    }
    answer
}

async fn fallback_handler() -> Response {
    json_response(404, &json!({"ok": false, "error": "unknown_method"}), None)
}
