//! A fake Zoho (accounts server and CRM v8) in two data centres, each on its own 127.0.0.1
//! listener serving both its OAuth and its API routes over one shared org, following
//! `../shared/API_NOTES.md`:
//!
//! - Consent is played by [`FakeZoho::consent`]: the person's account lives in one region, so
//!   the code is good only at that region's `POST /oauth/v2/token`, and the redirect carries
//!   `location` and `accounts-server`. Token errors are HTTP 200 `{"error":"invalid_code"}`
//!   (a bad, used or other-region code; a revoked refresh token) or `invalid_client`; more
//!   than 10 refreshes of one refresh token in 10 minutes is 400 "Access Denied … too many
//!   requests". Answers carry `api_domain`; a refresh answers no refresh token.
//! - API routes under `/crm/v8/` need `Authorization: Zoho-oauthtoken <token of this
//!   region>` (401 `INVALID_TOKEN`), then a queued [`FakeZoho::fail_next`] answer, then
//!   [`FakeZoho::set_delay`].
//! - Searches (`/Accounts/search`, `/Contacts/search` by `word` (≥ 2 characters), `email`
//!   or `criteria=(Field:equals|starts_with:value)`) answer **204 with no body** when nothing
//!   matches. `GET /Accounts/{id}` (204 when unknown), `GET /Accounts/{id}/Deals` (related
//!   list, paged), `GET /settings/fields?module=Deals` (the Stage picklist with
//!   `forecast_type`: a custom "Signed" stage is won, so a name match fails), `PUT /Deals`,
//!   `POST /Notes`, `POST /Tasks` with per-record results (a refused record is HTTP 202 with
//!   `status: "error"`).
//! - For the mirror: `GET /crm/v8/{Accounts|Contacts|Deals}?fields&sort_by=Modified_Time&
//!   sort_order=asc&page&per_page` (≤ 200; `info.more_records`), with `If-Modified-Since`
//!   leaving out records modified before it and answering **304** when none is left.
//!   [`FakeZoho::touch`] changes a record (modified now), [`FakeZoho::delete`] removes one.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    Us,
    Eu,
}

impl Region {
    fn name(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
        }
    }
}

#[derive(Default)]
struct St {
    client_id: String,
    client_secret: String,
    urls: HashMap<Region, String>,
    access_ttl: u64,
    codes: HashMap<String, (Region, String)>,
    access: Vec<(Region, String)>,
    refresh: Vec<(Region, String)>,
    refresh_revoked: bool,
    refreshes_at: HashMap<String, Vec<Instant>>,
    token_calls: Vec<(Region, String)>,
    token_delay: Duration,
    accounts: Vec<Value>,
    contacts: Vec<Value>,
    deals: Vec<Value>,
    notes: Vec<Value>,
    tasks: Vec<Value>,
    requests: Vec<(Region, String, String, Value)>,
    failures: VecDeque<(u16, Option<u64>)>,
    delay: Duration,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeZoho {
    st: Arc<Mutex<St>>,
    changed: Arc<Notify>,
}

type Shared = (Region, Arc<Mutex<St>>, Arc<Notify>);

/// (value, forecast type, forecast category)
const STAGES: [(&str, &str, &str); 8] = [
    ("Qualification", "Open", "Pipeline"),
    ("Needs Analysis", "Open", "Pipeline"),
    ("Proposal/Price Quote", "Open", "Pipeline"),
    ("Negotiation/Review", "Open", "Pipeline"),
    ("Closed Won", "Closed Won", "Closed"),
    ("Closed Lost", "Closed Lost", "Omitted"),
    ("Closed Lost to Competition", "Closed Lost", "Omitted"),
    ("Signed", "Closed Won", "Closed"),
];

fn token(prefix: &str) -> String {
    format!("1000.{prefix}{}", uuid::Uuid::new_v4().simple())
}

impl FakeZoho {
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let st = Arc::new(Mutex::new(St {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            access_ttl: 3600,
            next_id: 5_000_000,
            ..Default::default()
        }));
        let changed = Arc::new(Notify::new());
        for region in [Region::Us, Region::Eu] {
            let app =
                Router::new()
                    .fallback(handle)
                    .with_state((region, st.clone(), changed.clone()));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            st.lock().unwrap().urls.insert(region, url);
            tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        }
        Self { st, changed }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn accounts_url(&self, region: Region) -> String {
        self.lock().urls[&region].clone()
    }

    pub fn api_domain(&self, region: Region) -> String {
        self.accounts_url(region)
    }

    /// The person consenting; their account lives in `region`.
    pub fn consent(&self, authorize_url: &str, region: Region) -> Result<String, String> {
        let expected = format!("{}/oauth/v2/auth", self.accounts_url(Region::Us));
        if !authorize_url.starts_with(&expected) {
            return Err(format!("not the consent page: {authorize_url}"));
        }
        let url = url::Url::parse(authorize_url).map_err(|e| e.to_string())?;
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let mut st = self.lock();
        if q.get("client_id") != Some(&st.client_id) {
            return Err("wrong client_id".into());
        }
        let scope = q.get("scope").cloned().unwrap_or_default();
        if !scope.split([' ', ',']).any(|s| s == "ZohoCRM.modules.ALL") {
            return Err(format!("scope lacks ZohoCRM.modules.ALL: {scope}"));
        }
        if q.get("response_type").map(String::as_str) != Some("code")
            || q.get("access_type").map(String::as_str) != Some("offline")
        {
            return Err("response_type=code and access_type=offline are needed".into());
        }
        let (Some(redirect), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
            return Err("no redirect_uri or state".into());
        };
        let code = token("code.");
        st.codes.insert(code.clone(), (region, redirect.clone()));
        let mut back = url::Url::parse(redirect).map_err(|e| e.to_string())?;
        back.query_pairs_mut()
            .append_pair("state", state)
            .append_pair("code", &code)
            .append_pair("location", region.name())
            .append_pair("accounts-server", &st.urls[&region]);
        Ok(back.to_string())
    }

    pub fn set_access_ttl(&self, secs: u64) {
        self.lock().access_ttl = secs;
    }

    pub fn expire_access_tokens(&self) {
        self.lock().access.clear();
    }

    pub fn revoke_refresh_tokens(&self) {
        self.lock().refresh_revoked = true;
    }

    pub fn set_token_delay(&self, d: Duration) {
        self.lock().token_delay = d;
    }

    pub fn token_calls(&self, region: Region, grant_type: &str) -> usize {
        self.lock()
            .token_calls
            .iter()
            .filter(|(r, g)| *r == region && g == grant_type)
            .count()
    }

    pub fn add_account(&self, id: &str, name: &str, website: &str) {
        self.lock().accounts.push(json!({
            "id": id, "Account_Name": name, "Website": website,
            "Modified_Time": "2026-11-30T10:00:00+01:00",
        }));
    }

    pub fn add_contact(&self, id: &str, first: &str, last: &str, email: &str, account_id: &str) {
        let mut st = self.lock();
        let account = st
            .accounts
            .iter()
            .find(|a| a["id"] == account_id)
            .map(|a| a["Account_Name"].clone())
            .unwrap_or(Value::Null);
        st.contacts.push(json!({
            "id": id, "First_Name": first, "Last_Name": last,
            "Full_Name": format!("{first} {last}"), "Email": email,
            "Account_Name": { "id": account_id, "name": account },
            "Modified_Time": "2026-11-30T10:00:00+01:00",
        }));
    }

    pub fn add_deal(&self, id: &str, account_id: &str, name: &str, stage: &str, amount: f64) {
        self.lock().deals.push(json!({
            "id": id, "Deal_Name": name, "Stage": stage, "Amount": amount,
            "Closing_Date": "2027-03-31", "Currency": "EUR",
            "Account_Name": { "id": account_id, "name": "" },
            "Modified_Time": "2026-11-30T10:00:00+01:00",
        }));
    }

    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let mut st = self.lock();
        for _ in 0..n {
            st.failures.push_back((status, retry_after));
        }
    }

    pub fn set_delay(&self, d: Duration) {
        self.lock().delay = d;
    }

    pub fn requests(&self) -> Vec<(Region, String, String, Value)> {
        self.lock().requests.clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|(_, m, p, _)| m == method && p.starts_with(path_prefix))
            .count()
    }

    pub fn notes(&self) -> Vec<Value> {
        self.lock().notes.clone()
    }

    pub fn tasks(&self) -> Vec<Value> {
        self.lock().tasks.clone()
    }

    pub fn deal(&self, id: &str) -> Option<Value> {
        self.lock().deals.iter().find(|d| d["id"] == id).cloned()
    }

    async fn wait_for(&self, what: &str, n: usize, get: impl Fn(&St) -> &Vec<Value>) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.changed.notified();
            {
                let st = self.lock();
                if get(&st).len() >= n {
                    return get(&st).clone();
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

    pub async fn wait_for_notes(&self, n: usize) -> Vec<Value> {
        self.wait_for("notes", n, |st| &st.notes).await
    }

    pub async fn wait_for_tasks(&self, n: usize) -> Vec<Value> {
        self.wait_for("tasks", n, |st| &st.tasks).await
    }
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": code, "details": {}, "message": message, "status": "error" })),
    )
        .into_response()
}

async fn handle(
    State((region, st, changed)): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let response = if path == "/oauth/v2/token" && method == Method::POST {
        let delay = st.lock().unwrap().token_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut params: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        params.extend(query);
        token_endpoint(&st, region, &params)
    } else if let Some(rest) = path.strip_prefix("/crm/v8") {
        let delay = {
            let mut s = st.lock().unwrap();
            let presented = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Zoho-oauthtoken "))
                .unwrap_or("");
            if !s.access.iter().any(|(r, t)| *r == region && t == presented) {
                return api_error(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_TOKEN",
                    "invalid oauth token",
                );
            }
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let full = uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or(path.clone());
            s.requests.push((region, method.to_string(), full, json));
            if let Some((status, retry_after)) = s.failures.pop_front() {
                let mut response = if status == 429 {
                    api_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "TOO_MANY_REQUESTS",
                        "too many requests",
                    )
                } else {
                    (StatusCode::from_u16(status).unwrap(), "internal error").into_response()
                };
                if let Some(after) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", after.to_string().parse().unwrap());
                }
                drop(s);
                changed.notify_waiters();
                return response;
            }
            s.delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut query = query;
        if let Some(since) = headers
            .get("if-modified-since")
            .and_then(|v| v.to_str().ok())
        {
            query.insert(IF_MODIFIED_SINCE.to_owned(), since.to_owned());
        }
        api(&st, &method, rest, &query, json)
    } else {
        api_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
    };
    changed.notify_waiters();
    response
}

fn token_endpoint(st: &Mutex<St>, region: Region, form: &HashMap<String, String>) -> Response {
    let mut st = st.lock().unwrap();
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    st.token_calls.push((region, grant.clone()));
    let refused = |error: &str| axum::Json(json!({ "error": error })).into_response();
    if form.get("client_id") != Some(&st.client_id)
        || form.get("client_secret") != Some(&st.client_secret)
    {
        return refused("invalid_client");
    }
    let api_domain = st.urls[&region].clone();
    let access = token("access.");
    match grant.as_str() {
        "authorization_code" => {
            let code = form.get("code").cloned().unwrap_or_default();
            match st.codes.get(&code).cloned() {
                Some((at, redirect))
                    if at == region && form.get("redirect_uri") == Some(&redirect) =>
                {
                    st.codes.remove(&code);
                }
                _ => return refused("invalid_code"),
            }
            let refresh = token("refresh.");
            st.refresh.push((region, refresh.clone()));
            st.access.push((region, access.clone()));
            axum::Json(json!({
                "access_token": access, "refresh_token": refresh, "api_domain": api_domain,
                "token_type": "Bearer", "expires_in": st.access_ttl
            }))
            .into_response()
        }
        "refresh_token" => {
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            if st.refresh_revoked || !st.refresh.contains(&(region, refresh.clone())) {
                return refused("invalid_code");
            }
            let now = Instant::now();
            let recent = st.refreshes_at.entry(refresh).or_default();
            recent.retain(|at| now.duration_since(*at) < Duration::from_secs(600));
            if recent.len() >= 10 {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({
                        "error": "Access Denied",
                        "error_description": "You have made too many requests continuously. Please try again after some time."
                    })),
                )
                    .into_response();
            }
            recent.push(now);
            st.access.push((region, access.clone()));
            axum::Json(json!({
                "access_token": access, "api_domain": api_domain,
                "token_type": "Bearer", "expires_in": st.access_ttl
            }))
            .into_response()
        }
        _ => refused("unsupported_grant_type"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("name").map(text).unwrap_or_default(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `(Field:equals:value)` or `(Field:starts_with:value)`.
fn criteria_matches(record: &Value, criteria: &str) -> bool {
    let inner = criteria
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')');
    let mut parts = inner.splitn(3, ':');
    let (Some(field), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let actual = text(&record[field]).to_lowercase();
    let value = value.to_lowercase();
    match op {
        "equals" => actual == value,
        "starts_with" => actual.starts_with(&value),
        _ => false,
    }
}

/// Where the `If-Modified-Since` header travels to `api`, beside the query.
const IF_MODIFIED_SINCE: &str = "\u{0}if-modified-since";

impl FakeZoho {
    /// Sets fields of a record (`Accounts`, `Contacts`, `Deals`), modified now.
    pub fn touch(&self, module: &str, id: &str, fields: Value) {
        let mut st = self.lock();
        let list = match module {
            "Accounts" => &mut st.accounts,
            "Contacts" => &mut st.contacts,
            _ => &mut st.deals,
        };
        if let Some(record) = list.iter_mut().find(|r| r["id"] == id) {
            for (k, v) in fields.as_object().cloned().unwrap_or_default() {
                record[k] = v;
            }
            record["Modified_Time"] = json!(chrono::Utc::now().to_rfc3339());
        }
    }

    /// Deletes a record.
    pub fn delete(&self, id: &str) {
        let mut st = self.lock();
        st.accounts.retain(|r| r["id"] != id);
        st.contacts.retain(|r| r["id"] != id);
        st.deals.retain(|r| r["id"] != id);
    }

    /// A live access token of `region`, as if a token call had made it.
    pub fn issue_access_token(&self, region: Region) -> String {
        let token = format!("zoho-access-{}", uuid::Uuid::new_v4().simple());
        self.lock().access.push((region, token.clone()));
        token
    }
}

fn modified(record: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    record["Modified_Time"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
}

/// A module's records list, modified since the header's time, oldest change first.
fn list_module(list: &[Value], query: &HashMap<String, String>) -> Response {
    let since = query
        .get(IF_MODIFIED_SINCE)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let mut found: Vec<Value> = list
        .iter()
        .filter(|r| since.is_none_or(|s| modified(r).is_none_or(|m| m >= s)))
        .cloned()
        .collect();
    if query.get("sort_by").map(String::as_str) == Some("Modified_Time") {
        found.sort_by_key(modified);
    }
    if since.is_some() && found.is_empty() {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    page_of(found, query)
}

fn page_of(list: Vec<Value>, query: &HashMap<String, String>) -> Response {
    if list.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(200)
        .min(200);
    let start = (page.max(1) - 1) * per_page;
    let data: Vec<Value> = list.iter().skip(start).take(per_page).cloned().collect();
    if data.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    axum::Json(json!({
        "data": data,
        "info": { "per_page": per_page, "count": data.len(), "page": page,
                  "more_records": start + per_page < list.len() }
    }))
    .into_response()
}

/// A per-record answer: success, or Zoho's per-record refusal (HTTP 202).
fn record_result(created: bool, result: Result<String, &str>) -> Response {
    match result {
        Ok(id) => (
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            axum::Json(json!({ "data": [{
                "code": "SUCCESS",
                "details": { "id": id, "Created_Time": "2026-12-03T10:00:00+01:00" },
                "message": if created { "record added" } else { "record updated" },
                "status": "success"
            }]})),
        )
            .into_response(),
        Err(field) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "data": [{
                "code": "INVALID_DATA", "details": { "api_name": field },
                "message": "invalid data", "status": "error"
            }]})),
        )
            .into_response(),
    }
}

fn api(
    st: &Mutex<St>,
    method: &Method,
    rest: &str,
    query: &HashMap<String, String>,
    body: Value,
) -> Response {
    let mut st = st.lock().unwrap();
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", [module @ ("Accounts" | "Contacts"), "search"]) => {
            let list = if *module == "Accounts" {
                &st.accounts
            } else {
                &st.contacts
            };
            let fields: &[&str] = if *module == "Accounts" {
                &["Account_Name", "Website"]
            } else {
                &["Full_Name", "Email"]
            };
            let found: Vec<Value> = if let Some(word) = query.get("word") {
                if word.chars().count() < 2 {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_QUERY",
                        "the word must have at least 2 characters",
                    );
                }
                let word = word.to_lowercase();
                list.iter()
                    .filter(|r| {
                        fields
                            .iter()
                            .any(|f| text(&r[*f]).to_lowercase().contains(&word))
                    })
                    .cloned()
                    .collect()
            } else if let Some(email) = query.get("email") {
                list.iter()
                    .filter(|r| text(&r["Email"]).eq_ignore_ascii_case(email))
                    .cloned()
                    .collect()
            } else if let Some(criteria) = query.get("criteria") {
                list.iter()
                    .filter(|r| criteria_matches(r, criteria))
                    .cloned()
                    .collect()
            } else {
                return api_error(StatusCode::BAD_REQUEST, "REQUIRED_PARAM_MISSING", "word");
            };
            page_of(found, query)
        }
        ("GET", ["Accounts", id]) => match st.accounts.iter().find(|a| a["id"] == *id) {
            Some(account) => axum::Json(json!({ "data": [account] })).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
        ("GET", ["Accounts"]) => list_module(&st.accounts, query),
        ("GET", ["Contacts"]) => list_module(&st.contacts, query),
        ("GET", ["Deals"]) => list_module(&st.deals, query),
        ("GET", ["Accounts", id, "Deals"]) => {
            let found: Vec<Value> = st
                .deals
                .iter()
                .filter(|d| d["Account_Name"]["id"] == *id)
                .cloned()
                .collect();
            page_of(found, query)
        }
        ("GET", ["settings", "fields"])
            if query.get("module").map(String::as_str) == Some("Deals") =>
        {
            let values: Vec<Value> = STAGES
                .iter()
                .enumerate()
                .map(|(n, (value, forecast, category))| {
                    json!({
                        "display_value": value, "actual_value": value, "id": format!("{}", 900 + n),
                        "sequence_number": n + 1, "forecast_type": forecast,
                        "forecast_category": { "name": category, "id": format!("{}", 800 + n) }
                    })
                })
                .collect();
            axum::Json(json!({ "fields": [
                { "api_name": "Deal_Name", "data_type": "text" },
                { "api_name": "Stage", "data_type": "picklist", "pick_list_values": values }
            ]}))
            .into_response()
        }
        ("PUT", ["Deals"]) => {
            let record = body["data"][0].clone();
            if let Some(stage) = record["Stage"].as_str()
                && !STAGES.iter().any(|(s, ..)| *s == stage)
            {
                return record_result(false, Err("Stage"));
            }
            let Some(deal) = st.deals.iter_mut().find(|d| d["id"] == record["id"]) else {
                return record_result(false, Err("id"));
            };
            for (k, v) in record.as_object().cloned().unwrap_or_default() {
                deal[k] = v;
            }
            let id = text(&deal["id"]);
            record_result(false, Ok(id))
        }
        ("POST", [module @ ("Notes" | "Tasks")]) => {
            let record = body["data"][0].clone();
            let exists = |id: &str| {
                st.accounts.iter().any(|a| a["id"] == id)
                    || st.deals.iter().any(|d| d["id"] == id)
                    || st.contacts.iter().any(|c| c["id"] == id)
            };
            if *module == "Notes" {
                let parent = match &record["Parent_Id"] {
                    Value::Object(p) => p.get("id").map(text),
                    Value::String(id) => Some(id.clone()),
                    _ => None,
                };
                if !parent.as_deref().is_some_and(exists) {
                    return record_result(true, Err("Parent_Id"));
                }
            } else {
                if record["Subject"].as_str().is_none_or(str::is_empty) {
                    return record_result(true, Err("Subject"));
                }
                let due = record["Due_Date"].as_str().unwrap_or("");
                if chrono::NaiveDate::parse_from_str(due, "%Y-%m-%d").is_err() {
                    return record_result(true, Err("Due_Date"));
                }
                if !exists(&text(&record["What_Id"]["id"])) {
                    return record_result(true, Err("What_Id"));
                }
            }
            st.next_id += 1;
            let id = st.next_id.to_string();
            let mut made = record;
            made["id"] = json!(id);
            if *module == "Notes" {
                st.notes.push(made);
            } else {
                st.tasks.push(made);
            }
            record_result(true, Ok(id))
        }
        _ => api_error(
            StatusCode::NOT_FOUND,
            "INVALID_URL_PATTERN",
            "no such route",
        ),
    }
}
