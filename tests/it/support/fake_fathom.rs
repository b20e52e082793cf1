//! A fake Fathom External API (`/external/v1`) on 127.0.0.1 for integration tests.
//!
//! ```ignore
//! let fathom = FakeFathom::start().await;
//! fathom.add_key("fk-alice");
//! fathom.add_meeting("fk-alice", meeting(101, "Acme discovery", Utc::now() - chrono::Duration::hours(2), 30));
//! fathom.set_summary(101, "## Summary\nBudget approved.");
//! // point the bot at fathom.base_url() with API key "fk-alice", then:
//! let calls = fathom.wait_for_calls("summary", 1, Duration::from_secs(3)).await?;
//! assert!(fathom.calls().iter().all(|c| c.includes().is_empty()));
//! ```
//!
//! Behaviour worth knowing:
//! - Routes (GET only, else 405): `/external/v1/meetings`, `/external/v1/recordings/{id}/summary`,
//!   `/external/v1/recordings/{id}/transcript`; anything else answers 404 `{"error":"not found"}`.
//! - Every request is recorded as a [`FathomCall`] (unauthorized ones too), then answered in
//!   this order: wrong method → 405; missing or unregistered `X-Api-Key` → 401
//!   `{"error":"unauthorized"}` (no public source shows Fathom's exact 401 body; clients
//!   should not depend on it); a queued [`FakeFathom::fail_next`] /
//!   [`FakeFathom::rate_limit_next`] answer for that path kind (FIFO, shared by both); then
//!   the normal answer. A 401 does not consume queued failures.
//! - [`FakeFathom::set_delay`] delays every answer of that path kind (errors included); the
//!   call is recorded on arrival.
//! - Meetings belong to API keys. `GET /meetings` filters by `created_after` (strict: created_at
//!   \> value) and `created_before` (strict: created_at < value), both RFC 3339 (anything else →
//!   400), `recorded_by[]` (recorder email, any of), `calendar_invitees_domains[]` (any invitee
//!   domain, any of) and `calendar_invitees_domains_type` (`all` | `only_internal` |
//!   `one_or_more_external`). Results are newest first (created_at, then recording_id),
//!   `page_size` per page (default 10). `next_cursor` is base64 of `{"page_num":N}` like the
//!   documented example and null on the last page; filters are applied from each request, so
//!   a client must resend them with the cursor. A cursor that does not decode → 400.
//! - List items never carry `default_summary`, `transcript`, `action_items` or `crm_matches`
//!   unless the matching `include_*` param is `true` (or `1`); see [`FathomCall::includes`].
//! - `/recordings/{id}/summary|transcript` answer 404 unless a meeting with that recording id
//!   was added for the calling key. Without [`FakeFathom::set_summary`] /
//!   [`FakeFathom::set_transcript`] a small default summary / two-line transcript is served.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Path prefix of the API, as in `https://api.fathom.ai/external/v1`.
pub const BASE_PATH: &str = "/external/v1";
pub const INTERNAL_DOMAIN: &str = "seller.example";
pub const EXTERNAL_DOMAIN: &str = "customer.example";
pub const DEFAULT_RECORDER_NAME: &str = "Sam Seller";
pub const DEFAULT_RECORDER_EMAIL: &str = "sam@seller.example";
pub const DEFAULT_RECORDER_TEAM: &str = "Sales";
pub const DEFAULT_EXTERNAL_NAME: &str = "Chris Customer";
pub const DEFAULT_EXTERNAL_EMAIL: &str = "chris@customer.example";
pub const DEFAULT_PAGE_SIZE: usize = 10;

// ------------------------------------------------------------------------------ meeting builder

/// One calendar invitee; `email_domain` is derived from `email`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitee {
    pub name: String,
    pub email: String,
    pub is_external: bool,
}

impl Invitee {
    pub fn new(name: &str, email: &str, is_external: bool) -> Invitee {
        Invitee {
            name: name.to_string(),
            email: email.to_string(),
            is_external,
        }
    }
}

/// A meeting to add with [`FakeFathom::add_meeting`]; build with [`meeting`].
///
/// Times derived from `created_at` and `minutes`: `scheduled_start_time = created_at −
/// (minutes + 1) min`, `scheduled_end_time = scheduled_start + minutes`, recording start/end
/// = scheduled start/end + 30 s (so the recording ends 30 s before `created_at`).
#[derive(Clone, Debug)]
pub struct MeetingSpec {
    pub recording_id: u64,
    pub title: String,
    /// Calendar event title; `None` → JSON null. Default: same as `title`.
    pub meeting_title: Option<String>,
    pub created_at: DateTime<Utc>,
    pub minutes: i64,
    /// Default `Some("en")`; `None` → JSON null.
    pub transcript_language: Option<String>,
    pub invitees: Vec<Invitee>,
    pub recorder_name: String,
    pub recorder_email: String,
    pub recorder_team: Option<String>,
    /// Top-level fields set last (override or add anything, e.g. `action_items`).
    pub extra: Map<String, Value>,
}

/// A full meeting with one internal invitee (the recorder, [`DEFAULT_RECORDER_EMAIL`]) and one
/// external invitee ([`DEFAULT_EXTERNAL_EMAIL`]).
pub fn meeting(
    recording_id: u64,
    title: &str,
    created_at: DateTime<Utc>,
    minutes: i64,
) -> MeetingSpec {
    MeetingSpec {
        recording_id,
        title: title.to_string(),
        meeting_title: Some(title.to_string()),
        created_at,
        minutes,
        transcript_language: Some("en".to_string()),
        invitees: vec![
            Invitee::new(DEFAULT_RECORDER_NAME, DEFAULT_RECORDER_EMAIL, false),
            Invitee::new(DEFAULT_EXTERNAL_NAME, DEFAULT_EXTERNAL_EMAIL, true),
        ],
        recorder_name: DEFAULT_RECORDER_NAME.to_string(),
        recorder_email: DEFAULT_RECORDER_EMAIL.to_string(),
        recorder_team: Some(DEFAULT_RECORDER_TEAM.to_string()),
        extra: Map::new(),
    }
}

impl MeetingSpec {
    pub fn meeting_title(mut self, meeting_title: Option<&str>) -> Self {
        self.meeting_title = meeting_title.map(str::to_string);
        self
    }

    pub fn transcript_language(mut self, lang: Option<&str>) -> Self {
        self.transcript_language = lang.map(str::to_string);
        self
    }

    /// Replaces the invitee list.
    pub fn invitees(mut self, invitees: Vec<Invitee>) -> Self {
        self.invitees = invitees;
        self
    }

    /// Appends one invitee.
    pub fn invitee(mut self, name: &str, email: &str, is_external: bool) -> Self {
        self.invitees.push(Invitee::new(name, email, is_external));
        self
    }

    /// Sets the recorder (does not touch the invitee list).
    pub fn recorded_by(mut self, name: &str, email: &str) -> Self {
        self.recorder_name = name.to_string();
        self.recorder_email = email.to_string();
        self
    }

    /// Sets (or overrides) a top-level field of the JSON.
    pub fn field(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    pub fn scheduled_start(&self) -> DateTime<Utc> {
        self.created_at - chrono::Duration::minutes(self.minutes + 1)
    }

    pub fn to_json(&self) -> Value {
        let start = self.scheduled_start();
        let end = start + chrono::Duration::minutes(self.minutes);
        let half = chrono::Duration::seconds(30);
        let id = self.recording_id;
        let invitees: Vec<Value> = self
            .invitees
            .iter()
            .map(|i| {
                json!({
                    "name": i.name,
                    "matched_speaker_display_name": i.name,
                    "email": i.email,
                    "email_domain": domain_of(&i.email),
                    "is_external": i.is_external,
                })
            })
            .collect();
        let mut v = json!({
            "title": self.title,
            "meeting_title": self.meeting_title,
            "recording_id": id,
            "url": format!("https://fathom.video/calls/{id}"),
            "share_url": format!("https://fathom.video/share/fake-{id}"),
            "created_at": ts(self.created_at),
            "scheduled_start_time": ts(start),
            "scheduled_end_time": ts(end),
            "recording_start_time": ts(start + half),
            "recording_end_time": ts(end + half),
            "calendar_invitees_domains_type": domains_type(&self.invitees),
            "transcript_language": self.transcript_language,
            "calendar_invitees": invitees,
            "recorded_by": {
                "name": self.recorder_name,
                "email": self.recorder_email,
                "email_domain": domain_of(&self.recorder_email),
                "team": self.recorder_team,
            },
        });
        if let Some(obj) = v.as_object_mut() {
            obj.extend(self.extra.clone());
        }
        v
    }
}

fn domains_type(invitees: &[Invitee]) -> &'static str {
    if invitees.iter().any(|i| i.is_external) {
        "one_or_more_external"
    } else {
        "only_internal"
    }
}

fn domain_of(email: &str) -> String {
    email
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("")
        .to_string()
}

/// RFC 3339, seconds, `Z` (as Fathom writes them).
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ------------------------------------------------------------------------------ records

/// One request to the fake.
#[derive(Clone, Debug)]
pub struct FathomCall {
    /// Full request path, e.g. `/external/v1/meetings`.
    pub path: String,
    /// `meetings` | `summary` | `transcript` | `other`.
    pub kind: String,
    pub recording_id: Option<u64>,
    pub method: String,
    /// Decoded query pairs in order (array params keep their `[]`, e.g. `recorded_by[]`).
    pub query: Vec<(String, String)>,
    pub api_key: Option<String>,
    pub at: Instant,
    /// What the fake answered.
    pub status: u16,
}

impl FathomCall {
    /// First value of a query param.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a query param (for `recorded_by[]` etc.).
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Names of `include_*` params sent as `true`/`1` (what the bot asked to be embedded).
    pub fn includes(&self) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, v)| k.starts_with("include_") && truthy(v))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

fn truthy(v: &str) -> bool {
    v.eq_ignore_ascii_case("true") || v == "1"
}

// ------------------------------------------------------------------------------ state

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Meetings,
    Summary,
    Transcript,
    Other,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        match s {
            "meetings" => Kind::Meetings,
            "summary" => Kind::Summary,
            "transcript" => Kind::Transcript,
            "other" => Kind::Other,
            _ => panic!(
                "FakeFathom: unknown path kind {s:?} (meetings | summary | transcript | other)"
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Meetings => "meetings",
            Kind::Summary => "summary",
            Kind::Transcript => "transcript",
            Kind::Other => "other",
        }
    }
}

#[derive(Clone, Debug)]
struct Injected {
    status: u16,
    retry_after: Option<u64>,
}

#[derive(Clone, Debug)]
struct Stored {
    recording_id: u64,
    created_at: DateTime<Utc>,
    json: Value,
}

#[derive(Clone, Debug)]
enum TranscriptSrc {
    Lines(Vec<(String, String)>),
    Json(Value),
}

struct Inner {
    keys: HashSet<String>,
    meetings: HashMap<String, Vec<Stored>>,
    summaries: HashMap<u64, String>,
    transcripts: HashMap<u64, TranscriptSrc>,
    page_size: usize,
    delays: HashMap<Kind, Duration>,
    injected: HashMap<Kind, VecDeque<Injected>>,
    calls: Vec<FathomCall>,
    webhooks: Vec<FakeWebhook>,
    deleted_webhooks: Vec<String>,
}

/// A webhook the bot created: where Fathom would deliver, with which secret.
#[derive(Clone, Debug)]
pub struct FakeWebhook {
    pub id: String,
    pub api_key: String,
    pub destination_url: String,
    pub secret: String,
    pub body: Value,
}

impl FakeWebhook {
    /// Standard Webhooks headers for `body` as Fathom would send it at `at`, signed with
    /// this webhook's secret.
    pub fn headers(
        &self,
        message_id: &str,
        at: DateTime<Utc>,
        body: &str,
    ) -> Vec<(String, String)> {
        sign_with(&self.secret, message_id, at, body)
    }
}

/// The headers of a delivery signed with `secret` (`whsec_…`).
pub fn sign_with(
    secret: &str,
    message_id: &str,
    at: DateTime<Utc>,
    body: &str,
) -> Vec<(String, String)> {
    use hmac::{KeyInit, Mac};
    let key = B64
        .decode(secret.trim_start_matches("whsec_"))
        .expect("a base64 secret");
    let timestamp = at.timestamp().to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{message_id}.{timestamp}.{body}").as_bytes());
    let signature = B64.encode(mac.finalize().into_bytes());
    vec![
        ("webhook-id".to_owned(), message_id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp),
        ("webhook-signature".to_owned(), format!("v1,{signature}")),
        ("content-type".to_owned(), "application/json".to_owned()),
    ]
}

struct Shared {
    state: Mutex<Inner>,
    notify: Notify,
    addr: SocketAddr,
}

/// Cheap to clone; all clones share one fake.
#[derive(Clone)]
pub struct FakeFathom {
    shared: Arc<Shared>,
}

impl FakeFathom {
    /// Binds a loopback port and serves on the current runtime.
    pub async fn start() -> FakeFathom {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake fathom");
        let shared = Arc::new(Shared {
            state: Mutex::new(Inner {
                keys: HashSet::new(),
                meetings: HashMap::new(),
                summaries: HashMap::new(),
                transcripts: HashMap::new(),
                page_size: DEFAULT_PAGE_SIZE,
                delays: HashMap::new(),
                injected: HashMap::new(),
                calls: Vec::new(),
                webhooks: Vec::new(),
                deleted_webhooks: Vec::new(),
            }),
            notify: Notify::new(),
            addr: listener.local_addr().expect("fake fathom addr"),
        });
        let fake = FakeFathom { shared };
        let app = Router::new()
            .route(
                &format!("{BASE_PATH}/webhooks"),
                axum::routing::post(create_webhook),
            )
            .route(
                &format!("{BASE_PATH}/webhooks/{{id}}"),
                axum::routing::delete(delete_webhook),
            )
            .fallback(handler)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    /// `http://127.0.0.1:PORT/external/v1` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.shared.addr, BASE_PATH)
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    // -------------------------------------------------------------------------- data

    pub fn add_key(&self, key: &str) {
        self.lock().keys.insert(key.to_string());
    }

    /// Requests with this key answer 401 from now on (its meetings are kept).
    pub fn remove_key(&self, key: &str) {
        self.lock().keys.remove(key);
    }

    /// Adds (or replaces, by recording id) a meeting visible to `key`.
    pub fn add_meeting(&self, key: &str, spec: MeetingSpec) {
        self.add_meeting_json(key, spec.to_json());
    }

    /// Adds (or replaces) a raw meeting. It must have an integer `recording_id` and an RFC 3339
    /// `created_at` (used for filtering and ordering); everything else is served as given.
    pub fn add_meeting_json(&self, key: &str, meeting: Value) {
        let recording_id = meeting
            .get("recording_id")
            .and_then(Value::as_u64)
            .expect("FakeFathom::add_meeting_json: integer recording_id required");
        let created_at = meeting
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .expect("FakeFathom::add_meeting_json: RFC 3339 created_at required");
        let mut st = self.lock();
        let list = st.meetings.entry(key.to_string()).or_default();
        list.retain(|m| m.recording_id != recording_id);
        list.push(Stored {
            recording_id,
            created_at,
            json: meeting,
        });
    }

    pub fn remove_meeting(&self, key: &str, recording_id: u64) {
        if let Some(list) = self.lock().meetings.get_mut(key) {
            list.retain(|m| m.recording_id != recording_id);
        }
    }

    /// The stored JSON of every meeting of `key`, newest first.
    pub fn meetings(&self, key: &str) -> Vec<Value> {
        let st = self.lock();
        let mut list: Vec<Stored> = st.meetings.get(key).cloned().unwrap_or_default();
        sort_newest_first(&mut list);
        list.into_iter().map(|m| m.json).collect()
    }

    /// `markdown_formatted` of this recording's summary (template `general`).
    pub fn set_summary(&self, recording_id: u64, markdown: impl Into<String>) {
        self.lock().summaries.insert(recording_id, markdown.into());
    }

    /// Transcript lines `(speaker display name, text)`. `matched_calendar_invitee_email` is the
    /// email of the meeting's invitee (or recorder) with that name, else null; timestamps go
    /// `00:00:02`, `00:00:19`, … (17 s apart).
    pub fn set_transcript<S, T>(&self, recording_id: u64, lines: impl IntoIterator<Item = (S, T)>)
    where
        S: Into<String>,
        T: Into<String>,
    {
        let lines = lines
            .into_iter()
            .map(|(s, t)| (s.into(), t.into()))
            .collect();
        self.lock()
            .transcripts
            .insert(recording_id, TranscriptSrc::Lines(lines));
    }

    /// The `transcript` array served as given.
    pub fn set_transcript_json(&self, recording_id: u64, transcript: Value) {
        self.lock()
            .transcripts
            .insert(recording_id, TranscriptSrc::Json(transcript));
    }

    /// Items per page of `GET /meetings` (default 10); also the `limit` field.
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = n.max(1);
    }

    // -------------------------------------------------------------------------- controls

    /// Delay every answer for `path_kind` (`meetings` | `summary` | `transcript` | `other`);
    /// `Duration::ZERO` clears it.
    pub fn set_delay(&self, path_kind: &str, delay: Duration) {
        let kind = Kind::parse(path_kind);
        self.lock().delays.insert(kind, delay);
    }

    /// The next `n` authorized requests of `path_kind` answer `status` with
    /// `{"error":"<reason>"}`.
    pub fn fail_next(&self, path_kind: &str, status: u16, n: usize) {
        self.inject(path_kind, status, None, n);
    }

    /// The next `n` authorized requests of `path_kind` answer 429 `{"error":"rate limit
    /// exceeded"}` with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, path_kind: &str, retry_after_secs: u64, n: usize) {
        self.inject(path_kind, 429, Some(retry_after_secs), n);
    }

    /// Drops queued failures for every path kind.
    pub fn clear_failures(&self) {
        self.lock().injected.clear();
    }

    fn inject(&self, path_kind: &str, status: u16, retry_after: Option<u64>, n: usize) {
        let kind = Kind::parse(path_kind);
        let mut st = self.lock();
        let q = st.injected.entry(kind).or_default();
        for _ in 0..n {
            q.push_back(Injected {
                status,
                retry_after,
            });
        }
    }

    // -------------------------------------------------------------------------- records

    pub fn calls(&self) -> Vec<FathomCall> {
        self.lock().calls.clone()
    }

    pub fn calls_of(&self, path_kind: &str) -> Vec<FathomCall> {
        let kind = Kind::parse(path_kind).name();
        self.lock()
            .calls
            .iter()
            .filter(|c| c.kind == kind)
            .cloned()
            .collect()
    }

    /// Calls that asked for any `include_*` content (see [`FathomCall::includes`]).
    pub fn include_requests(&self) -> Vec<FathomCall> {
        self.lock()
            .calls
            .iter()
            .filter(|c| !c.includes().is_empty())
            .cloned()
            .collect()
    }

    pub fn call_count(&self, path_kind: &str) -> usize {
        let kind = Kind::parse(path_kind).name();
        self.lock().calls.iter().filter(|c| c.kind == kind).count()
    }

    /// The first `n` calls of `path_kind`, once there are at least `n`.
    pub async fn wait_for_calls(
        &self,
        path_kind: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<FathomCall>> {
        let kind = Kind::parse(path_kind).name();
        self.wait_until(timeout, |st| {
            let v: Vec<FathomCall> = st
                .calls
                .iter()
                .filter(|c| c.kind == kind)
                .take(n)
                .cloned()
                .collect();
            (v.len() >= n).then_some(v)
        })
        .await
        .ok_or_else(|| {
            let seen: Vec<String> = self
                .lock()
                .calls
                .iter()
                .map(|c| format!("{} {}", c.path, c.status))
                .collect();
            anyhow::anyhow!(
                "timed out after {timeout:?} waiting for {n} fathom {kind} call(s); calls so far: {seen:?}"
            )
        })
    }

    // -------------------------------------------------------------------------- internals

    /// The webhooks that exist (created and not deleted).
    pub fn webhooks(&self) -> Vec<FakeWebhook> {
        self.lock().webhooks.clone()
    }

    /// Ids of the webhooks the bot deleted.
    pub fn deleted_webhooks(&self) -> Vec<String> {
        self.lock().deleted_webhooks.clone()
    }

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

/// Status, body, Retry-After.
fn answer(
    st: &mut Inner,
    method: &Method,
    kind: Kind,
    recording_id: Option<u64>,
    query: &[(String, String)],
    api_key: Option<&str>,
) -> (u16, Value, Option<u64>) {
    if kind == Kind::Other {
        return (404, json!({"error": "not found"}), None);
    }
    if method != Method::GET {
        return (405, json!({"error": "method not allowed"}), None);
    }
    let Some(key) = api_key.filter(|k| st.keys.contains(*k)) else {
        return (401, json!({"error": "unauthorized"}), None);
    };
    if let Some(inj) = st.injected.get_mut(&kind).and_then(VecDeque::pop_front) {
        let body = if inj.status == 429 {
            json!({"error": "rate limit exceeded"})
        } else {
            let reason = StatusCode::from_u16(inj.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error")
                .to_ascii_lowercase();
            json!({"error": reason})
        };
        return (inj.status, body, inj.retry_after);
    }
    let key = key.to_string();
    match kind {
        Kind::Meetings => match list_meetings(st, &key, query) {
            Ok(v) => (200, v, None),
            Err(msg) => (400, json!({"error": msg}), None),
        },
        Kind::Summary | Kind::Transcript => {
            let id = recording_id.unwrap_or_default();
            let Some(m) = st
                .meetings
                .get(&key)
                .and_then(|l| l.iter().find(|m| m.recording_id == id))
            else {
                return (404, json!({"error": "not found"}), None);
            };
            if kind == Kind::Summary {
                (200, json!({"summary": summary_of(st, m)}), None)
            } else {
                (200, json!({"transcript": transcript_of(st, m)}), None)
            }
        }
        Kind::Other => unreachable!(),
    }
}

fn sort_newest_first(list: &mut [Stored]) {
    list.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(b.recording_id.cmp(&a.recording_id))
    });
}

fn parse_time(name: &str, v: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid {name}: {v:?} ({e})"))
}

pub fn encode_cursor(page_num: usize) -> String {
    B64.encode(json!({"page_num": page_num}).to_string())
}

fn decode_cursor(c: &str) -> Option<usize> {
    let bytes = B64
        .decode(c.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(c.trim()))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("page_num")
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .filter(|n| *n >= 1)
}

fn list_meetings(st: &Inner, key: &str, query: &[(String, String)]) -> Result<Value, String> {
    let one = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let many = |name: &str| -> Vec<&str> {
        query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let after = one("created_after")
        .map(|v| parse_time("created_after", v))
        .transpose()?;
    let before = one("created_before")
        .map(|v| parse_time("created_before", v))
        .transpose()?;
    let page = match one("cursor").filter(|c| !c.is_empty()) {
        Some(c) => decode_cursor(c).ok_or_else(|| format!("invalid cursor: {c:?}"))?,
        None => 1,
    };
    let recorders = many("recorded_by[]");
    let domains = many("calendar_invitees_domains[]");
    let domains_type = one("calendar_invitees_domains_type").unwrap_or("all");
    if !matches!(
        domains_type,
        "all" | "only_internal" | "one_or_more_external"
    ) {
        return Err(format!(
            "invalid calendar_invitees_domains_type: {domains_type:?}"
        ));
    }
    let include = |name: &str| one(name).is_some_and(truthy);

    let mut list: Vec<Stored> = st
        .meetings
        .get(key)
        .map(|l| {
            l.iter()
                .filter(|m| after.is_none_or(|a| m.created_at > a))
                .filter(|m| before.is_none_or(|b| m.created_at < b))
                .filter(|m| {
                    recorders.is_empty() || {
                        let email = m.json["recorded_by"]["email"].as_str().unwrap_or("");
                        recorders.iter().any(|r| r.eq_ignore_ascii_case(email))
                    }
                })
                .filter(|m| {
                    let inv = invitee_list(&m.json);
                    let domain_ok = domains.is_empty()
                        || inv.iter().any(|(_, d, _)| {
                            domains.iter().any(|want| want.eq_ignore_ascii_case(d))
                        });
                    let any_external = inv.iter().any(|(_, _, ext)| *ext);
                    let type_ok = match domains_type {
                        "only_internal" => !any_external,
                        "one_or_more_external" => any_external,
                        _ => true,
                    };
                    domain_ok && type_ok
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    sort_newest_first(&mut list);

    let size = st.page_size;
    let start = (page - 1).saturating_mul(size);
    let next_cursor = if start.saturating_add(size) < list.len() {
        Value::String(encode_cursor(page + 1))
    } else {
        Value::Null
    };
    let items: Vec<Value> = list
        .iter()
        .skip(start)
        .take(size)
        .map(|m| {
            let mut item = m.json.clone();
            if let Some(obj) = item.as_object_mut() {
                for k in [
                    "default_summary",
                    "transcript",
                    "action_items",
                    "crm_matches",
                ] {
                    obj.remove(k);
                }
                if include("include_summary") {
                    obj.insert("default_summary".into(), summary_of(st, m));
                }
                if include("include_transcript") {
                    obj.insert("transcript".into(), transcript_of(st, m));
                }
                if include("include_action_items") {
                    let v = m.json.get("action_items").cloned().unwrap_or(json!([]));
                    obj.insert("action_items".into(), v);
                }
                if include("include_crm_matches") {
                    let v = m
                        .json
                        .get("crm_matches")
                        .cloned()
                        .unwrap_or(json!({"contacts": [], "companies": [], "deals": []}));
                    obj.insert("crm_matches".into(), v);
                }
            }
            item
        })
        .collect();
    Ok(json!({"limit": size, "next_cursor": next_cursor, "items": items}))
}

/// (email, domain, is_external) of each invitee in a meeting's JSON.
fn invitee_list(m: &Value) -> Vec<(String, String, bool)> {
    m.get("calendar_invitees")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|i| {
                    let email = i["email"].as_str().unwrap_or("").to_string();
                    let domain = i["email_domain"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| domain_of(&email));
                    (email, domain, i["is_external"].as_bool().unwrap_or(false))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn summary_of(st: &Inner, m: &Stored) -> Value {
    let markdown = st.summaries.get(&m.recording_id).cloned().unwrap_or_else(|| {
        let title = m.json["title"].as_str().unwrap_or("meeting");
        format!(
            "## Summary\nFake summary of \"{title}\".\n\n## Next steps\n- Send a follow-up email\n"
        )
    });
    json!({"template_name": "general", "markdown_formatted": markdown})
}

fn transcript_of(st: &Inner, m: &Stored) -> Value {
    let lines: Vec<(String, String)> = match st.transcripts.get(&m.recording_id) {
        Some(TranscriptSrc::Json(v)) => return v.clone(),
        Some(TranscriptSrc::Lines(l)) => l.clone(),
        None => {
            let names: Vec<String> = m.json["calendar_invitees"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let first = names
                .first()
                .cloned()
                .unwrap_or_else(|| DEFAULT_RECORDER_NAME.to_string());
            let second = names.get(1).cloned().unwrap_or_else(|| first.clone());
            vec![
                (
                    first,
                    "Thanks for joining, let's go through the proposal.".into(),
                ),
                (
                    second,
                    "Sounds good, please send the pricing after the call.".into(),
                ),
            ]
        }
    };
    let email_of = |name: &str| -> Value {
        let from_invitees = m.json["calendar_invitees"].as_array().and_then(|a| {
            a.iter()
                .find(|i| i["name"].as_str() == Some(name))
                .and_then(|i| i["email"].as_str())
        });
        let from_recorder = (m.json["recorded_by"]["name"].as_str() == Some(name))
            .then(|| m.json["recorded_by"]["email"].as_str())
            .flatten();
        from_invitees
            .or(from_recorder)
            .map_or(Value::Null, |e| json!(e))
    };
    let items: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (speaker, text))| {
            let secs = 2 + 17 * i as u64;
            json!({
                "speaker": {
                    "display_name": speaker,
                    "matched_calendar_invitee_email": email_of(speaker),
                },
                "text": text,
                "timestamp": format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            })
        })
        .collect();
    Value::Array(items)
}

/// (kind, recording id) of a request path.
fn route(path: &str) -> (Kind, Option<u64>) {
    let Some(rest) = path.strip_prefix(BASE_PATH) else {
        return (Kind::Other, None);
    };
    let rest = rest.trim_end_matches('/');
    if rest == "/meetings" {
        return (Kind::Meetings, None);
    }
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["recordings", id, what] => match (id.parse::<u64>(), *what) {
            (Ok(id), "summary") => (Kind::Summary, Some(id)),
            (Ok(id), "transcript") => (Kind::Transcript, Some(id)),
            _ => (Kind::Other, None),
        },
        _ => (Kind::Other, None),
    }
}

fn json_response(status: u16, body: &Value, retry_after: Option<u64>) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
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

async fn handler(
    State(fake): State<FakeFathom>,
    method: Method,
    uri: Uri,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let at = Instant::now();
    let path = uri.path().to_string();
    let (kind, recording_id) = route(&path);
    let query: Vec<(String, String)> = raw_query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, body, retry_after, delay) = {
        let mut st = fake.lock();
        let (status, body, retry_after) = answer(
            &mut st,
            &method,
            kind,
            recording_id,
            &query,
            api_key.as_deref(),
        );
        st.calls.push(FathomCall {
            path,
            kind: kind.name().to_string(),
            recording_id,
            method: method.to_string(),
            query,
            api_key,
            at,
            status,
        });
        let delay = st.delays.get(&kind).copied().unwrap_or_default();
        (status, body, retry_after, delay)
    };
    fake.shared.notify.notify_waiters();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    json_response(status, &body, retry_after)
}

/// `POST /webhooks {destination_url, triggered_for, include_*}` → `{id, url, secret, …}`.
async fn create_webhook(
    State(fake): State<FakeFathom>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = fake.lock();
    if !st.keys.contains(&key) {
        return json_response(401, &json!({"error": "invalid api key"}), None);
    }
    let includes = [
        "include_transcript",
        "include_summary",
        "include_action_items",
        "include_crm_matches",
    ];
    let url = body["destination_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !url.starts_with("https://")
        || body["triggered_for"].as_array().is_none_or(Vec::is_empty)
        || !includes.iter().any(|i| body[*i] == true)
    {
        return json_response(
            422,
            &json!({"error": "destination_url, triggered_for and an include are required"}),
            None,
        );
    }
    let id = format!("wh_{}", st.webhooks.len() + st.deleted_webhooks.len() + 1);
    let secret = format!("whsec_{}", B64.encode(uuid::Uuid::new_v4().as_bytes()));
    st.webhooks.push(FakeWebhook {
        id: id.clone(),
        api_key: key,
        destination_url: url.clone(),
        secret: secret.clone(),
        body: body.clone(),
    });
    drop(st);
    fake.shared.notify.notify_waiters();
    json_response(
        201,
        &json!({"id": id, "url": url, "secret": secret, "created_at": ts(Utc::now()),
                "include_summary": body["include_summary"], "triggered_for": body["triggered_for"]}),
        None,
    )
}

async fn delete_webhook(
    State(fake): State<FakeFathom>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut st = fake.lock();
    let Some(at) = st.webhooks.iter().position(|w| w.id == id) else {
        return json_response(404, &json!({"error": "not found"}), None);
    };
    if st.webhooks[at].api_key != key {
        return json_response(404, &json!({"error": "not found"}), None);
    }
    st.webhooks.remove(at);
    st.deleted_webhooks.push(id);
    drop(st);
    fake.shared.notify.notify_waiters();
    StatusCode::NO_CONTENT.into_response()
}
