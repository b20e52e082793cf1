//! A fake Crono external API (`/api/v1`) on 127.0.0.1, following the shapes in
//! `../shared/API_NOTES.md`.
//!
//! Behaviour worth knowing:
//! - Every request must carry a registered `X-Api-Key` / `X-Api-Secret` pair; anything else
//!   answers 401 `{data:null, isSuccess:false, errors:[{code, message}]}`, or HTTP 200 with
//!   that body after [`FakeCrono::refuse_with_200`] (the wrapped shape allows both).
//! - Answers are wrapped `{data, isSuccess:true, errors:[]}`; records are camelCase with
//!   `objectId`.
//! - Every request is recorded on arrival ([`FakeCrono::requests`], [`FakeCrono::count`]),
//!   then a queued [`FakeCrono::fail_next`] answer is used (FIFO, any route but `/Users`),
//!   then [`FakeCrono::set_delay`] applies, then the normal answer.
//! - Routes: `GET /Users`; `POST /Accounts/search {name, pagination}` (name contains, any
//!   case); `GET /Accounts/{id}`; `POST /Prospects/search {name?|email?|accountId?,
//!   pagination, includes:{withAccount}}` (`account:{objectId,name,website}` when asked);
//!   `POST /Opportunities/search {accountId, pagination}` — it ignores `isClosed`, as a
//!   client must not count on the filter, and carries no closed flag, so only the stage ids
//!   (`closedwon`, `closedlost`) tell closed deals apart; `GET /Opportunities/stages`
//!   (unverified in Crono's docs; 404 after [`FakeCrono::set_stages_missing`]);
//!   `PATCH /Opportunities {data:{opportunityId, accountId, amount?, stage?, description?}}`;
//!   `POST /Notes {data:{accountId (required), description, opportunityId?, prospectIds?}}`;
//!   `POST /Tasks {data:{accountId, prospectId, type, subject, description, activityDate
//!   (RFC 3339), automatic}}`. Unknown routes answer 404.
//! - Listing for the mirror: every search takes `lastModifiedDateFrom` (RFC 3339; records
//!   with an older `lastModifiedDate` are left out) and pages by `pagination.offset` in the
//!   order records were added. Changes made through the helpers ([`FakeCrono::rename_account`],
//!   [`FakeCrono::set_deal_stage`], …) and through `PATCH /Opportunities` stamp
//!   `lastModifiedDate` with the current time; deletions ([`FakeCrono::delete`]) are not
//!   listed anywhere, as in Crono. [`FakeCrono::set_search_delay`] delays only searches that
//!   name something (`name` or `email`), i.e. what autocomplete and matching send, not
//!   listings.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

const PREFIX: &str = "/api/v1";

#[derive(Default)]
struct St {
    keys: HashSet<(String, String)>,
    calls: Vec<Option<String>>,
    refuse_with_200: bool,
    accounts: Vec<Value>,
    prospects: Vec<Value>,
    deals: Vec<Value>,
    notes: Vec<Value>,
    tasks: Vec<Value>,
    requests: Vec<(String, String, Value)>,
    failures: VecDeque<(u16, Option<u64>)>,
    delay: Duration,
    search_delay: Duration,
    stages_missing: bool,
    deleted: Vec<String>,
}

fn stamp() -> Value {
    json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[derive(Clone)]
pub struct FakeCrono {
    url: String,
    st: Arc<Mutex<St>>,
    changed: Arc<Notify>,
}

type Shared = (Arc<Mutex<St>>, Arc<Notify>);

impl FakeCrono {
    pub async fn start() -> Self {
        let st = Arc::new(Mutex::new(St::default()));
        let changed = Arc::new(Notify::new());
        let app = Router::new()
            .fallback(handle)
            .with_state((st.clone(), changed.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { url, st, changed }
    }

    /// `CRONO_API_URL` (the host; the bot appends `/api/v1`).
    pub fn base_url(&self) -> String {
        self.url.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_keys(&self, public: &str, private: &str) {
        self.lock()
            .keys
            .insert((public.to_owned(), private.to_owned()));
    }

    pub fn refuse_with_200(&self) {
        self.lock().refuse_with_200 = true;
    }

    pub fn add_account(&self, id: &str, name: &str, website: &str) {
        self.lock().accounts.push(json!({
            "objectId": id, "name": name, "website": website,
            "lastModifiedDate": "2026-11-30T10:00:00Z",
        }));
    }

    pub fn add_prospect(&self, id: &str, first: &str, last: &str, email: &str, account: &str) {
        self.lock().prospects.push(json!({
            "objectId": id, "firstName": first, "lastName": last, "email": email,
            "accountId": account, "lastModifiedDate": "2026-11-30T10:00:00Z",
        }));
    }

    pub fn add_deal(
        &self,
        id: &str,
        account: &str,
        name: &str,
        stage: &str,
        amount: f64,
        currency: &str,
    ) {
        self.lock().deals.push(json!({
            "objectId": id, "accountId": account, "name": name, "stage": stage,
            "amount": amount, "currency": currency, "closeDate": "2027-03-31",
            "lastModifiedDate": "2026-11-30T10:00:00Z",
        }));
    }

    /// The next `n` requests (any route but `/Users`) answer `status`, with `Retry-After`.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let mut st = self.lock();
        for _ in 0..n {
            st.failures.push_back((status, retry_after));
        }
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Searches naming something (`name` or `email`: autocomplete, matching) wait this long
    /// first; listings do not.
    pub fn set_search_delay(&self, delay: Duration) {
        self.lock().search_delay = delay;
    }

    /// Renames an account (modified now).
    pub fn rename_account(&self, id: &str, name: &str) {
        let mut st = self.lock();
        if let Some(a) = st.accounts.iter_mut().find(|a| a["objectId"] == id) {
            a["name"] = json!(name);
            a["lastModifiedDate"] = stamp();
        }
    }

    /// Renames a prospect (modified now).
    pub fn rename_prospect(&self, id: &str, first: &str, last: &str) {
        let mut st = self.lock();
        if let Some(p) = st.prospects.iter_mut().find(|p| p["objectId"] == id) {
            p["firstName"] = json!(first);
            p["lastName"] = json!(last);
            p["lastModifiedDate"] = stamp();
        }
    }

    /// Moves a deal to a stage (modified now).
    pub fn set_deal_stage(&self, id: &str, stage: &str) {
        let mut st = self.lock();
        if let Some(d) = st.deals.iter_mut().find(|d| d["objectId"] == id) {
            d["stage"] = json!(stage);
            d["lastModifiedDate"] = stamp();
        }
    }

    /// Deletes an account, prospect or deal: it is simply gone.
    pub fn delete(&self, id: &str) {
        let mut st = self.lock();
        st.accounts.retain(|r| r["objectId"] != id);
        st.prospects.retain(|r| r["objectId"] != id);
        st.deals.retain(|r| r["objectId"] != id);
        st.deleted.push(id.to_owned());
    }

    /// The ids deleted so far.
    pub fn deleted(&self) -> Vec<String> {
        self.lock().deleted.clone()
    }

    /// The searches naming nothing (listings) sent to a path ending with `suffix`.
    pub fn listings(&self, suffix: &str) -> Vec<Value> {
        self.lock()
            .requests
            .iter()
            .filter(|(_, p, b)| p.ends_with(suffix) && !names_something(b))
            .map(|(_, _, b)| b.clone())
            .collect()
    }

    /// The searches naming something sent to a path ending with `suffix`.
    pub fn searches(&self, suffix: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|(_, p, b)| p.ends_with(suffix) && names_something(b))
            .count()
    }

    /// `GET /Opportunities/stages` answers 404, as if Crono had no such route.
    pub fn set_stages_missing(&self) {
        self.lock().stages_missing = true;
    }

    /// The public key of every call, in order.
    pub fn calls(&self) -> Vec<Option<String>> {
        self.lock().calls.clone()
    }

    /// (method, path under `/api/v1`, JSON body or null) of every request, in order.
    pub fn requests(&self) -> Vec<(String, String, Value)> {
        self.lock().requests.clone()
    }

    /// How many requests went to a path ending with `suffix`.
    pub fn count(&self, suffix: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|(_, p, _)| p.ends_with(suffix))
            .count()
    }

    /// The notes made (their `data`, with `objectId`).
    pub fn notes(&self) -> Vec<Value> {
        self.lock().notes.clone()
    }

    pub fn tasks(&self) -> Vec<Value> {
        self.lock().tasks.clone()
    }

    pub fn deal(&self, id: &str) -> Option<Value> {
        self.lock()
            .deals
            .iter()
            .find(|d| d["objectId"] == id)
            .cloned()
    }

    async fn wait_for(&self, what: &str, n: usize, get: impl Fn(&St) -> &Vec<Value>) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.changed.notified();
            {
                let st = self.lock();
                let list = get(&st);
                if list.len() >= n {
                    return list.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let st = self.lock();
                panic!(
                    "timed out waiting for {n} {what}; have {}; requests: {:?}",
                    get(&st).len(),
                    st.requests
                );
            }
        }
    }

    /// Waits (10 s at most) until `n` notes were made; all of them.
    pub async fn wait_for_notes(&self, n: usize) -> Vec<Value> {
        self.wait_for("notes", n, |st| &st.notes).await
    }

    pub async fn wait_for_tasks(&self, n: usize) -> Vec<Value> {
        self.wait_for("tasks", n, |st| &st.tasks).await
    }
}

fn wrapped(status: StatusCode, data: Value) -> Response {
    (
        status,
        axum::Json(json!({ "data": data, "isSuccess": true, "errors": [] })),
    )
        .into_response()
}

fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "data": null,
            "isSuccess": false,
            "errors": [{ "code": code, "message": message }]
        })),
    )
        .into_response()
}

/// A search for something by name or email (not a listing).
fn names_something(body: &Value) -> bool {
    ["name", "email"]
        .iter()
        .any(|k| body[k].as_str().is_some_and(|v| !v.is_empty()))
}

/// Leaves out records modified before the body's `lastModifiedDateFrom`.
fn modified_since(list: Vec<Value>, body: &Value) -> Vec<Value> {
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let Some(since) = parse(&body["lastModifiedDateFrom"]) else {
        return list;
    };
    list.into_iter()
        .filter(|r| parse(&r["lastModifiedDate"]).is_none_or(|at| at >= since))
        .collect()
}

fn page(list: Vec<Value>, body: &Value) -> Value {
    let list = modified_since(list, body);
    let limit = body["pagination"]["limit"].as_u64().unwrap_or(25).min(100) as usize;
    let offset = body["pagination"]["offset"].as_u64().unwrap_or(0) as usize;
    list.into_iter().skip(offset).take(limit).collect()
}

fn contains(haystack: &Value, needle: &str) -> bool {
    haystack
        .as_str()
        .is_some_and(|h| h.to_lowercase().contains(&needle.to_lowercase()))
}

async fn handle(
    State((st, changed)): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let Some(path) = uri.path().strip_prefix(PREFIX).map(str::to_owned) else {
        return refused(StatusCode::NOT_FOUND, "NotFound", "no such route");
    };
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return refused(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON"),
        }
    };
    let (public, private) = (header("x-api-key"), header("x-api-secret"));
    let (failure, delay) = {
        let mut st = st.lock().unwrap_or_else(|e| e.into_inner());
        st.calls.push(public.clone());
        st.requests
            .push((method.to_string(), path.clone(), body.clone()));
        let known = matches!((&public, &private),
            (Some(p), Some(s)) if st.keys.contains(&(p.clone(), s.clone())));
        if !known {
            let status = if st.refuse_with_200 {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            return refused(status, "Unauthorized", "Invalid api key");
        }
        let failure = if path == "/Users" {
            None
        } else {
            st.failures.pop_front()
        };
        let delay = if path.ends_with("/search") && names_something(&body) {
            st.delay + st.search_delay
        } else {
            st.delay
        };
        (failure, delay)
    };
    changed.notify_waiters();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some((status, retry_after)) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut answer = refused(status, "Error", "try again later");
        if let Some(secs) = retry_after {
            answer
                .headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
        }
        return answer;
    }
    let answer = {
        let mut st = st.lock().unwrap_or_else(|e| e.into_inner());
        route(&mut st, &method, &path, &body)
    };
    changed.notify_waiters();
    answer
}

fn route(st: &mut St, method: &Method, path: &str, body: &Value) -> Response {
    match (method.as_str(), path) {
        ("GET", "/Users") => wrapped(
            StatusCode::OK,
            json!([{ "objectId": "u-1", "email": "admin@seller.example", "firstName": "Admin" }]),
        ),
        ("POST", "/Accounts/search") => {
            let name = body["name"].as_str().unwrap_or("");
            let found: Vec<Value> = st
                .accounts
                .iter()
                .filter(|a| name.is_empty() || contains(&a["name"], name))
                .cloned()
                .collect();
            wrapped(StatusCode::OK, page(found, body))
        }
        ("GET", p) if p.starts_with("/Accounts/") => {
            let id = &p["/Accounts/".len()..];
            match st.accounts.iter().find(|a| a["objectId"] == id) {
                Some(a) => wrapped(StatusCode::OK, a.clone()),
                None => refused(StatusCode::NOT_FOUND, "NotFound", "account not found"),
            }
        }
        ("POST", "/Prospects/search") => {
            let name = body["name"].as_str().filter(|s| !s.is_empty());
            let email = body["email"].as_str().filter(|s| !s.is_empty());
            let account = body["accountId"].as_str().filter(|s| !s.is_empty());
            let with_account = body["includes"]["withAccount"] == true;
            let found: Vec<Value> = st
                .prospects
                .iter()
                .filter(|p| {
                    let full = json!(format!(
                        "{} {}",
                        p["firstName"].as_str().unwrap_or(""),
                        p["lastName"].as_str().unwrap_or("")
                    ));
                    name.is_none_or(|n| contains(&full, n))
                        && email.is_none_or(|e| {
                            p["email"]
                                .as_str()
                                .is_some_and(|x| x.eq_ignore_ascii_case(e))
                        })
                        && account.is_none_or(|a| p["accountId"] == a)
                })
                .map(|p| {
                    let mut p = p.clone();
                    if let Some(a) = st
                        .accounts
                        .iter()
                        .find(|a| with_account && a["objectId"] == p["accountId"])
                    {
                        p["account"] = a.clone();
                    }
                    p
                })
                .collect();
            wrapped(StatusCode::OK, page(found, body))
        }
        ("POST", "/Opportunities/search") => {
            let account = body["accountId"].as_str().filter(|s| !s.is_empty());
            let found: Vec<Value> = st
                .deals
                .iter()
                .filter(|d| account.is_none_or(|a| d["accountId"] == a))
                .cloned()
                .collect();
            wrapped(StatusCode::OK, page(found, body))
        }
        ("GET", "/Opportunities/stages") => {
            if st.stages_missing {
                return refused(StatusCode::NOT_FOUND, "NotFound", "no such route");
            }
            wrapped(
                StatusCode::OK,
                json!([
                    { "id": "qualification", "name": "Qualification" },
                    { "id": "proposal", "name": "Proposal" },
                    { "id": "negotiation", "name": "Negotiation" },
                    { "id": "closedwon", "name": "Closed won" },
                    { "id": "closedlost", "name": "Closed lost" },
                ]),
            )
        }
        ("PATCH", "/Opportunities") => {
            let data = &body["data"];
            let Some(deal) = st.deals.iter_mut().find(|d| {
                d["objectId"] == data["opportunityId"] && d["accountId"] == data["accountId"]
            }) else {
                return refused(StatusCode::NOT_FOUND, "NotFound", "opportunity not found");
            };
            for field in ["amount", "stage", "description"] {
                if !data[field].is_null() {
                    deal[field] = data[field].clone();
                }
            }
            deal["lastModifiedDate"] = stamp();
            wrapped(StatusCode::OK, deal.clone())
        }
        ("POST", "/Notes") => {
            let data = &body["data"];
            let Some(account) = data["accountId"].as_str().filter(|s| !s.is_empty()) else {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "Validation",
                    "accountId is required",
                );
            };
            if !st.accounts.iter().any(|a| a["objectId"] == account) {
                return refused(StatusCode::NOT_FOUND, "NotFound", "account not found");
            }
            let mut note = data.clone();
            note["objectId"] = json!(format!("note-{}", st.notes.len() + 1));
            st.notes.push(note.clone());
            wrapped(StatusCode::OK, note)
        }
        ("POST", "/Tasks") => {
            let data = &body["data"];
            let account = data["accountId"].as_str().unwrap_or("");
            if !st.accounts.iter().any(|a| a["objectId"] == account) {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "Validation",
                    "accountId is required",
                );
            }
            if data["prospectId"].as_str().is_none_or(str::is_empty) {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "Validation",
                    "prospectId is required",
                );
            }
            let date_ok = data["activityDate"]
                .as_str()
                .is_some_and(|d| chrono::DateTime::parse_from_rfc3339(d).is_ok());
            if !date_ok {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "Validation",
                    "activityDate is invalid",
                );
            }
            let mut task = data.clone();
            task["objectId"] = json!(format!("task-{}", st.tasks.len() + 1));
            st.tasks.push(task.clone());
            wrapped(StatusCode::OK, task)
        }
        _ => refused(StatusCode::NOT_FOUND, "NotFound", "no such route"),
    }
}
