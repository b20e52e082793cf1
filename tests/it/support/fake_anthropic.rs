//! A fake Anthropic Messages API (`POST /v1/messages`, and `GET /v1/models`) on 127.0.0.1 for
//! integration tests.
//!
//! ```ignore
//! let claude = FakeAnthropic::start().await;
//! claude.add_key("sk-ant-test");
//! claude.push_error(529, "overloaded_error", "Overloaded", None);
//! claude.push_text("Hi Chris, thanks for the call…");
//! // point the bot at claude.base_url() with key "sk-ant-test", then:
//! let reqs = claude.wait_for_requests(2, Duration::from_secs(5)).await?;
//! assert!(reqs[1].last_user_text().unwrap().contains("Acme"));
//! ```
//!
//! Behaviour worth knowing:
//! - `POST /v1/messages` (other methods there → 405) and `GET /v1/models` exist; other paths
//!   → 404 `not_found_error`. Every request to `/v1/messages` is recorded as an
//!   [`AnthropicRequest`]; `/v1/models` calls are only counted ([`FakeAnthropic::models_calls`]).
//! - `GET /v1/models[?limit=N]` checks `x-api-key` and `anthropic-version` as below, then lists
//!   [`MODELS`] (at most `limit`, default 20) as the API does: `{"data":[{"type":"model","id",
//!   "display_name","created_at"}],"has_more","first_id","last_id"}`.
//! - Checks, in order, none of which consumes a scripted answer: `x-api-key` missing or not
//!   registered with [`FakeAnthropic::add_key`] → 401 `authentication_error`; `anthropic-version`
//!   missing → 400 `anthropic-version: header is required`, or not a known version
//!   (`2023-06-01`, `2023-01-01`) → 400; body not JSON, or without a string `model`, a positive
//!   integer `max_tokens` and a non-empty `messages` array → 400 `invalid_request_error`.
//! - Then the next scripted answer (FIFO) is served; with none left, the default text (see
//!   [`FakeAnthropic::set_default_text`]) or, if unset, a 500 `api_error` so tests notice.
//! - Every answer has a `request-id` header; error bodies are
//!   `{"type":"error","error":{"type","message"},"request_id"}`, with `retry-after` when given.
//! - Success bodies echo the request's `model`; `usage` token counts are rough (chars / 4).
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub const KNOWN_VERSIONS: &[&str] = &["2023-06-01", "2023-01-01"];

/// What `GET /v1/models` lists: (id, display name).
pub const MODELS: &[(&str, &str)] = &[
    ("claude-sonnet-4-5", "Claude Sonnet 4.5"),
    ("claude-haiku-4-5", "Claude Haiku 4.5"),
];

/// One request to `/v1/messages`.
#[derive(Clone, Debug)]
pub struct AnthropicRequest {
    /// The JSON body (`Value::Null` if it did not parse; see `raw_body`).
    pub body: Value,
    pub raw_body: String,
    pub api_key: Option<String>,
    pub version: Option<String>,
    pub method: String,
    pub at: Instant,
    /// What the fake answered.
    pub status: u16,
}

impl AnthropicRequest {
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    pub fn max_tokens(&self) -> Option<u64> {
        self.body.get("max_tokens").and_then(Value::as_u64)
    }

    /// `system` as text (a string, or the `text` of its blocks joined by newlines).
    pub fn system_text(&self) -> Option<String> {
        self.body.get("system").map(content_text)
    }

    pub fn messages(&self) -> Vec<Value> {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Text of the last `user` message (string content, or its text blocks joined).
    pub fn last_user_text(&self) -> Option<String> {
        self.messages()
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| m.get("content"))
            .map(content_text)
    }

    /// System text and every message's text, for "does the prompt mention X" checks.
    pub fn all_text(&self) -> String {
        let mut out = self.system_text().unwrap_or_default();
        for m in self.messages() {
            if let Some(c) = m.get("content") {
                out.push('\n');
                out.push_str(&content_text(c));
            }
        }
        out
    }
}

fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[derive(Clone, Debug)]
enum Scripted {
    Text {
        text: String,
        stop_reason: String,
    },
    Error {
        status: u16,
        error_type: String,
        message: String,
        retry_after: Option<u64>,
    },
    Raw {
        status: u16,
        body: Value,
        retry_after: Option<u64>,
    },
}

struct Inner {
    keys: HashSet<String>,
    queue: VecDeque<Scripted>,
    default_text: Option<String>,
    delay: Duration,
    requests: Vec<AnthropicRequest>,
    counter: u64,
    models_calls: usize,
}

struct Shared {
    state: Mutex<Inner>,
    notify: Notify,
    addr: SocketAddr,
}

/// Cheap to clone; all clones share one fake.
#[derive(Clone)]
pub struct FakeAnthropic {
    shared: Arc<Shared>,
}

impl FakeAnthropic {
    /// Binds a loopback port and serves on the current runtime.
    pub async fn start() -> FakeAnthropic {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake anthropic");
        let shared = Arc::new(Shared {
            state: Mutex::new(Inner {
                keys: HashSet::new(),
                queue: VecDeque::new(),
                default_text: None,
                delay: Duration::ZERO,
                requests: Vec::new(),
                counter: 0,
                models_calls: 0,
            }),
            notify: Notify::new(),
            addr: listener.local_addr().expect("fake anthropic addr"),
        });
        let fake = FakeAnthropic { shared };
        let app = Router::new()
            .route("/v1/messages", any(messages_handler))
            .route("/v1/models", get(models_handler))
            .fallback(fallback_handler)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    /// `http://127.0.0.1:PORT` (no trailing slash; the client posts to `{base}/v1/messages`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// How many `GET /v1/models` calls arrived (whatever they were answered).
    pub fn models_calls(&self) -> usize {
        self.lock().models_calls
    }

    pub fn add_key(&self, key: &str) {
        self.lock().keys.insert(key.to_string());
    }

    pub fn remove_key(&self, key: &str) {
        self.lock().keys.remove(key);
    }

    // -------------------------------------------------------------------------- script

    /// Queues a successful answer with one text block, `stop_reason: "end_turn"`.
    pub fn push_text(&self, text: impl Into<String>) {
        self.push_text_stop(text, "end_turn");
    }

    /// Like [`push_text`](Self::push_text) with another `stop_reason` (e.g. `max_tokens`).
    pub fn push_text_stop(&self, text: impl Into<String>, stop_reason: &str) {
        self.lock().queue.push_back(Scripted::Text {
            text: text.into(),
            stop_reason: stop_reason.to_string(),
        });
    }

    /// Queues an error `{"type":"error","error":{"type":error_type,"message":message}}`, e.g.
    /// (429, `rate_limit_error`), (529, `overloaded_error`), (500, `api_error`),
    /// (400, `invalid_request_error`). `retry_after` → `retry-after` header (seconds).
    pub fn push_error(
        &self,
        status: u16,
        error_type: &str,
        message: &str,
        retry_after: Option<u64>,
    ) {
        self.lock().queue.push_back(Scripted::Error {
            status,
            error_type: error_type.to_string(),
            message: message.to_string(),
            retry_after,
        });
    }

    /// Queues an arbitrary answer (body served as given).
    pub fn push_raw(&self, status: u16, body: Value, retry_after: Option<u64>) {
        self.lock().queue.push_back(Scripted::Raw {
            status,
            body,
            retry_after,
        });
    }

    /// Scripted answers not served yet.
    pub fn pending(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn clear_script(&self) {
        self.lock().queue.clear();
    }

    /// Answer this text when the queue is empty (default: 500 `api_error`).
    pub fn set_default_text(&self, text: impl Into<String>) {
        self.lock().default_text = Some(text.into());
    }

    pub fn clear_default_text(&self) {
        self.lock().default_text = None;
    }

    /// Delay every answer (the request is recorded on arrival). `Duration::ZERO` clears it.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    // -------------------------------------------------------------------------- records

    pub fn requests(&self) -> Vec<AnthropicRequest> {
        self.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    /// The first `n` requests, once there are at least `n`.
    pub async fn wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<AnthropicRequest>> {
        self.wait_until(timeout, |st| {
            (st.requests.len() >= n).then(|| st.requests[..n].to_vec())
        })
        .await
        .ok_or_else(|| {
            let got = self.request_count();
            anyhow::anyhow!(
                "timed out after {timeout:?} waiting for {n} anthropic request(s); got {got}"
            )
        })
    }

    // -------------------------------------------------------------------------- internals

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

fn error_body(error_type: &str, message: &str, request_id: &str) -> Value {
    json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    })
}

/// Why the request is refused before the script is consulted, if it is.
fn precheck(
    st: &Inner,
    method: &Method,
    api_key: Option<&str>,
    version: Option<&str>,
    body: &Value,
) -> Option<(u16, &'static str, String)> {
    if method != Method::POST {
        return Some((
            405,
            "invalid_request_error",
            format!("Method {method} not allowed"),
        ));
    }
    match api_key {
        None => {
            return Some((
                401,
                "authentication_error",
                "x-api-key header is required".into(),
            ));
        }
        Some(k) if !st.keys.contains(k) => {
            return Some((401, "authentication_error", "invalid x-api-key".into()));
        }
        Some(_) => {}
    }
    match version {
        None => {
            return Some((
                400,
                "invalid_request_error",
                "anthropic-version: header is required".into(),
            ));
        }
        Some(v) if !KNOWN_VERSIONS.contains(&v) => {
            return Some((
                400,
                "invalid_request_error",
                format!("anthropic-version: \"{v}\" is not a valid version"),
            ));
        }
        Some(_) => {}
    }
    let bad = |m: &str| Some((400, "invalid_request_error", m.to_string()));
    if !body.is_object() {
        return bad("There was an issue with your request body: expected a JSON object");
    }
    if !body.get("model").is_some_and(Value::is_string) {
        return bad("model: Field required");
    }
    if body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .is_none_or(|n| n == 0)
    {
        return bad("max_tokens: Field required (positive integer)");
    }
    match body.get("messages").and_then(Value::as_array) {
        None => return bad("messages: Field required"),
        Some(a) if a.is_empty() => return bad("messages: at least one message is required"),
        Some(a) => {
            for (i, m) in a.iter().enumerate() {
                let role_ok = matches!(
                    m.get("role").and_then(Value::as_str),
                    Some("user" | "assistant")
                );
                let content_ok = m
                    .get("content")
                    .is_some_and(|c| c.is_string() || c.is_array());
                if !role_ok || !content_ok {
                    return Some((
                        400,
                        "invalid_request_error",
                        format!("messages.{i}: needs role user|assistant and content"),
                    ));
                }
            }
        }
    }
    None
}

/// The tool a request forces with `tool_choice: {"type": "tool", "name": …}`, if it is one
/// of its `tools`.
fn forced_tool(body: &Value) -> Option<String> {
    let name = body["tool_choice"]
        .as_object()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("tool"))?
        .get("name")?
        .as_str()?;
    body["tools"]
        .as_array()?
        .iter()
        .any(|t| t["name"] == name)
        .then(|| name.to_owned())
}

/// What the scripted answer becomes: under a forced tool, a JSON object is the tool's
/// `input` (as the real API answers); anything else stays a text block (a model that
/// strays, for the repair path).
fn content_for(body: &Value, text: &str) -> Value {
    match (forced_tool(body), serde_json::from_str::<Value>(text)) {
        (Some(name), Ok(input)) if input.is_object() => json!([{
            "type": "tool_use",
            "id": "toolu_fake_01",
            "name": name,
            "input": input,
        }]),
        _ => json!([{"type": "text", "text": text}]),
    }
}

fn respond(status: u16, body: &Value, retry_after: Option<u64>, request_id: &str) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("request-id", v);
    }
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn messages_handler(
    State(fake): State<FakeAnthropic>,
    method: Method,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let at = Instant::now();
    let header_of = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let api_key = header_of("x-api-key");
    let version = header_of("anthropic-version");
    let raw_body = String::from_utf8_lossy(&raw).into_owned();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);

    let (status, resp_body, retry_after, delay, request_id) = {
        let mut st = fake.lock();
        st.counter += 1;
        let n = st.counter;
        let request_id = format!("req_fake_{n:08}");
        let (status, resp_body, retry_after) = match precheck(
            &st,
            &method,
            api_key.as_deref(),
            version.as_deref(),
            &body,
        ) {
            Some((status, kind, msg)) => (status, error_body(kind, &msg, &request_id), None),
            None => {
                let next = st.queue.pop_front().or_else(|| {
                    st.default_text.clone().map(|text| Scripted::Text {
                        text,
                        stop_reason: "end_turn".into(),
                    })
                });
                match next {
                    Some(Scripted::Text { text, stop_reason }) => {
                        let content = content_for(&body, &text);
                        let stop = if content[0]["type"] == "tool_use" {
                            "tool_use"
                        } else {
                            stop_reason.as_str()
                        };
                        let input_chars = body.get("messages").map_or(0, |m| m.to_string().len())
                            + body.get("system").map_or(0, |s| s.to_string().len());
                        let ok = json!({
                            "id": format!("msg_fake_{n:08}"),
                            "type": "message",
                            "role": "assistant",
                            "model": body["model"],
                            "content": content,
                            "stop_reason": stop,
                            "stop_sequence": null,
                            "usage": {
                                "input_tokens": (input_chars / 4).max(1),
                                "output_tokens": (text.len() / 4).max(1),
                                "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 0,
                            },
                        });
                        (200, ok, None)
                    }
                    Some(Scripted::Error {
                        status,
                        error_type,
                        message,
                        retry_after,
                    }) => (
                        status,
                        error_body(&error_type, &message, &request_id),
                        retry_after,
                    ),
                    Some(Scripted::Raw {
                        status,
                        body,
                        retry_after,
                    }) => (status, body, retry_after),
                    None => (
                        500,
                        error_body(
                            "api_error",
                            "fake anthropic: no scripted response (push_text / set_default_text)",
                            &request_id,
                        ),
                        None,
                    ),
                }
            }
        };
        st.requests.push(AnthropicRequest {
            body,
            raw_body,
            api_key,
            version,
            method: method.to_string(),
            at,
            status,
        });
        (status, resp_body, retry_after, st.delay, request_id)
    };
    fake.shared.notify.notify_waiters();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    respond(status, &resp_body, retry_after, &request_id)
}

/// `GET /v1/models`: the key and version checked as for messages, then [`MODELS`].
async fn models_handler(
    State(fake): State<FakeAnthropic>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let header_of = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (status, body, request_id) = {
        let mut st = fake.lock();
        st.models_calls += 1;
        st.counter += 1;
        let request_id = format!("req_fake_{:08}", st.counter);
        let refused = match (header_of("x-api-key"), header_of("anthropic-version")) {
            (None, _) => Some((401, "authentication_error", "x-api-key header is required")),
            (Some(k), _) if !st.keys.contains(k) => {
                Some((401, "authentication_error", "invalid x-api-key"))
            }
            (_, None) => Some((
                400,
                "invalid_request_error",
                "anthropic-version: header is required",
            )),
            (_, Some(v)) if !KNOWN_VERSIONS.contains(&v) => Some((
                400,
                "invalid_request_error",
                "anthropic-version: not a valid version",
            )),
            _ => None,
        };
        match refused {
            Some((status, kind, message)) => {
                (status, error_body(kind, message, &request_id), request_id)
            }
            None => {
                let limit = query
                    .get("limit")
                    .and_then(|l| l.parse::<usize>().ok())
                    .unwrap_or(20)
                    .clamp(1, 1000);
                let data: Vec<Value> = MODELS
                    .iter()
                    .take(limit)
                    .map(|(id, name)| {
                        json!({"type": "model", "id": id, "display_name": name,
                               "created_at": "2025-09-29T00:00:00Z"})
                    })
                    .collect();
                let body = json!({
                    "data": data,
                    "has_more": limit < MODELS.len(),
                    "first_id": data.first().map(|m| m["id"].clone()),
                    "last_id": data.last().map(|m| m["id"].clone()),
                });
                (200, body, request_id)
            }
        }
    };
    fake.shared.notify.notify_waiters();
    respond(status, &body, None, &request_id)
}

async fn fallback_handler() -> Response {
    respond(
        404,
        &error_body("not_found_error", "Not found", "req_fake_notfound"),
        None,
        "req_fake_notfound",
    )
}
