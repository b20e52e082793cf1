//! A fake HubSpot (OAuth v3 token endpoint and CRM v3) on 127.0.0.1, following
//! `../shared/API_NOTES.md`:
//!
//! - `GET /oauth/authorize` is played by [`FakeHubSpot::consent`], which checks the link and
//!   hands back the redirect with a one-time code.
//! - `POST /oauth/v3/token` (form): `authorization_code` (code, redirect_uri, client_id,
//!   client_secret) or `refresh_token`; a wrong secret is 400 `invalid_client`, a used or
//!   unknown code and a revoked refresh token 400 `invalid_grant`. A refresh answers a new
//!   access token and the same refresh token.
//! - CRM routes need `Authorization: Bearer <live access token>` (401
//!   `INVALID_AUTHENTICATION` otherwise), then a queued [`FakeHubSpot::fail_next`] answer is
//!   used, then [`FakeHubSpot::set_delay`] applies.
//! - `POST /crm/v3/objects/{companies|contacts|deals}/search` with `query` (substring over
//!   the names, domains and emails) or `filterGroups` (EQ, IN, CONTAINS_TOKEN; groups OR-ed;
//!   `associations.company` for deals), `limit` ≤ 200 (default 10), `after` (an offset);
//!   `GET /crm/v3/objects/{kind}/{id}`; `GET /crm/v3/pipelines/deals` (closed stages by
//!   `metadata.isClosed` only: a "Contract signed" closed stage and a "Closed-loop review" open
//!   one with numeric ids make a name match fail); `PATCH /crm/v3/objects/deals/{id}` (an
//!   unknown `dealstage` is 400); `POST /crm/v3/objects/notes` and `/tasks` with association
//!   type ids checked (note: 190 company, 202 contact, 214 deal; task: 192, 204, 216).
//!   Property values are strings; contacts carry `associatedcompanyid`, not the company name.
//! - For the mirror: filters also take `GT`, `GTE`, `LT`, `LTE` (numbers, and datetimes as
//!   epoch milliseconds), `hs_object_id` and the modified-since properties (`lastmodifieddate`
//!   on contacts, `hs_lastmodifieddate` on companies and deals, each record's own time);
//!   `sorts` by `hs_object_id` (numerically); `POST /crm/v4/associations/deals/companies/
//!   batch/read {inputs:[{id}]}` gives each deal's company. [`FakeHubSpot::touch`] changes a
//!   record (modified now), [`FakeHubSpot::delete`] removes one (search never lists it again).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

#[derive(Default)]
struct St {
    client_id: String,
    client_secret: String,
    access_ttl: u64,
    codes: HashMap<String, String>,
    access: Vec<String>,
    refresh: Vec<String>,
    refresh_revoked: bool,
    token_calls: Vec<String>,
    token_delay: Duration,
    companies: Vec<Value>,
    contacts: Vec<Value>,
    deals: Vec<Value>,
    notes: Vec<Value>,
    tasks: Vec<Value>,
    requests: Vec<(String, String, Value)>,
    failures: VecDeque<(u16, Option<u64>)>,
    delay: Duration,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeHubSpot {
    url: String,
    st: Arc<Mutex<St>>,
    changed: Arc<Notify>,
}

type Shared = (Arc<Mutex<St>>, Arc<Notify>);

const STAGES: [(&str, &str, bool); 7] = [
    ("appointmentscheduled", "Appointment Scheduled", false),
    ("qualifiedtobuy", "Qualified To Buy", false),
    ("presentationscheduled", "Presentation Scheduled", false),
    ("closedwon", "Closed Won", true),
    ("closedlost", "Closed Lost", true),
    ("1234567", "Contract signed", true),
    ("7654321", "Closed-loop review", false),
];

fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl FakeHubSpot {
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let st = Arc::new(Mutex::new(St {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            access_ttl: 1800,
            next_id: 9000,
            ..Default::default()
        }));
        let changed = Arc::new(Notify::new());
        let app = Router::new()
            .fallback(handle)
            .with_state((st.clone(), changed.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { url, st, changed }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn api_url(&self) -> String {
        self.url.clone()
    }

    pub fn auth_url(&self) -> String {
        format!("{}/oauth/authorize", self.url)
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth/v3/token", self.url)
    }

    /// The person clicking "Connect app": the redirect back with a one-time code.
    pub fn consent(&self, authorize_url: &str) -> Result<String, String> {
        let url = url::Url::parse(authorize_url).map_err(|e| e.to_string())?;
        if !authorize_url.starts_with(&self.auth_url()) {
            return Err(format!("not our consent page: {authorize_url}"));
        }
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let mut st = self.lock();
        if q.get("client_id") != Some(&st.client_id) {
            return Err("wrong client_id".into());
        }
        let scope = q.get("scope").cloned().unwrap_or_default();
        if !scope.split(' ').any(|s| s == "crm.objects.companies.read") {
            return Err(format!("scope lacks companies.read: {scope}"));
        }
        let (Some(redirect), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
            return Err("no redirect_uri or state".into());
        };
        let code = token();
        st.codes.insert(code.clone(), redirect.clone());
        let mut back = url::Url::parse(redirect).map_err(|e| e.to_string())?;
        back.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", state);
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

    pub fn token_calls(&self, grant_type: &str) -> usize {
        self.lock()
            .token_calls
            .iter()
            .filter(|g| *g == grant_type)
            .count()
    }

    pub fn add_company(&self, id: &str, name: &str, domain: &str) {
        self.lock().companies.push(json!({
            "id": id,
            "properties": { "name": name, "domain": domain,
                            "website": format!("https://www.{domain}/") }
        }));
    }

    pub fn add_contact(&self, id: &str, first: &str, last: &str, email: &str, company_id: &str) {
        self.lock().contacts.push(json!({
            "id": id,
            "properties": { "firstname": first, "lastname": last, "email": email,
                            "associatedcompanyid": company_id }
        }));
    }

    pub fn add_deal(&self, id: &str, company_id: &str, name: &str, stage: &str, amount: f64) {
        self.lock().deals.push(json!({
            "id": id,
            "company": company_id,
            "properties": { "dealname": name, "dealstage": stage, "amount": amount.to_string(),
                            "pipeline": "default", "closedate": "2027-03-31T00:00:00Z",
                            "deal_currency_code": "EUR" }
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

    pub fn requests(&self) -> Vec<(String, String, Value)> {
        self.lock().requests.clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|(m, p, _)| m == method && p.starts_with(path_prefix))
            .count()
    }

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
            .find(|d| d["id"] == id)
            .map(|d| json!({ "id": d["id"], "properties": d["properties"] }))
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

fn error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "status": "error", "message": message, "category": category,
            "correlationId": "00000000-0000-0000-0000-000000000000"
        })),
    )
        .into_response()
}

async fn handle(
    State((st, changed)): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let response = if path == "/oauth/v3/token" && method == Method::POST {
        let delay = st.lock().unwrap().token_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        token_endpoint(&st, &body)
    } else {
        let delay = {
            let mut s = st.lock().unwrap();
            let bearer = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !s.access.iter().any(|t| t == bearer) {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found.",
                );
            }
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let full = uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or(path.clone());
            s.requests.push((method.to_string(), full, json));
            if let Some((status, retry_after)) = s.failures.pop_front() {
                let mut response = if status == 429 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        axum::Json(json!({
                            "status": "error",
                            "message": "You have reached your secondly limit.",
                            "errorType": "RATE_LIMIT", "policyName": "SECONDLY"
                        })),
                    )
                        .into_response()
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
        let query: HashMap<String, String> = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        crm(&st, &method, &path, &query, json)
    };
    changed.notify_waiters();
    response
}

fn token_endpoint(st: &Mutex<St>, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let mut st = st.lock().unwrap();
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    st.token_calls.push(grant.clone());
    let bad = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    };
    if form.get("client_id") != Some(&st.client_id)
        || form.get("client_secret") != Some(&st.client_secret)
    {
        return bad("invalid_client", "missing or unknown client id or secret");
    }
    let refresh = match grant.as_str() {
        "authorization_code" => {
            let code = form.get("code").cloned().unwrap_or_default();
            match st.codes.remove(&code) {
                Some(redirect) if form.get("redirect_uri") == Some(&redirect) => token(),
                _ => return bad("invalid_grant", "missing or invalid code"),
            }
        }
        "refresh_token" => {
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            if st.refresh_revoked || !st.refresh.contains(&refresh) {
                return bad("invalid_grant", "missing or invalid refresh token");
            }
            refresh
        }
        _ => return bad("unsupported_grant_type", "grant_type"),
    };
    let access = token();
    st.access.push(access.clone());
    if !st.refresh.contains(&refresh) {
        st.refresh.push(refresh.clone());
    }
    axum::Json(json!({
        "access_token": access, "refresh_token": refresh,
        "expires_in": st.access_ttl, "token_type": "bearer"
    }))
    .into_response()
}

impl FakeHubSpot {
    /// Sets properties of a record (`companies`, `contacts`, `deals`), modified now.
    pub fn touch(&self, kind: &str, id: &str, properties: Value) {
        let mut st = self.st.lock().unwrap();
        let Some(list) = kind_list(&mut st, kind) else {
            return;
        };
        if let Some(record) = list.iter_mut().find(|r| r["id"] == id) {
            for (k, v) in properties.as_object().cloned().unwrap_or_default() {
                record["properties"][k] = v;
            }
            record["modified"] =
                json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        }
    }

    /// A live access token, as if a token call had made it.
    pub fn issue_access_token(&self) -> String {
        let token = format!("hs-access-{}", uuid::Uuid::new_v4().simple());
        self.st.lock().unwrap().access.push(token.clone());
        token
    }

    /// Deletes a record: no search finds it again.
    pub fn delete(&self, kind: &str, id: &str) {
        let mut st = self.st.lock().unwrap();
        if let Some(list) = kind_list(&mut st, kind) {
            list.retain(|r| r["id"] != id);
        }
    }
}

const SEEDED: &str = "2026-11-30T10:00:00Z";

fn modified_of(record: &Value) -> String {
    record["modified"].as_str().unwrap_or(SEEDED).to_owned()
}

fn millis(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn kind_list<'a>(st: &'a mut St, kind: &str) -> Option<&'a mut Vec<Value>> {
    match kind {
        "companies" => Some(&mut st.companies),
        "contacts" => Some(&mut st.contacts),
        "deals" => Some(&mut st.deals),
        _ => None,
    }
}

fn public(record: &Value, properties: &[String]) -> Value {
    let mut props = Map::new();
    let all = record["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for name in properties {
        props.insert(name.clone(), all.get(name).cloned().unwrap_or(Value::Null));
    }
    if properties.is_empty() {
        props = all;
    }
    let modified = modified_of(record);
    props.insert("hs_object_id".into(), record["id"].clone());
    props.insert("createdate".into(), json!("2026-11-01T10:00:00Z"));
    props.insert("hs_lastmodifieddate".into(), json!(modified));
    props.insert("lastmodifieddate".into(), json!(modified));
    json!({
        "id": record["id"], "properties": props,
        "createdAt": "2026-11-01T10:00:00Z", "updatedAt": modified,
        "archived": false
    })
}

fn value_of(record: &Value, property: &str) -> String {
    if property == "associations.company" {
        return record["company"].as_str().unwrap_or("").to_owned();
    }
    if property == "hs_object_id" {
        return record["id"].as_str().unwrap_or("").to_owned();
    }
    if property == "hs_lastmodifieddate" || property == "lastmodifieddate" {
        return millis(&modified_of(record)).unwrap_or(0).to_string();
    }
    match &record["properties"][property] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn filter_matches(record: &Value, filter: &Value) -> bool {
    let property = filter["propertyName"].as_str().unwrap_or("");
    let actual = value_of(record, property).to_lowercase();
    let value = filter["value"].as_str().unwrap_or("").to_lowercase();
    match filter["operator"].as_str().unwrap_or("") {
        "EQ" => actual == value,
        "IN" => filter["values"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v.as_str().is_some_and(|v| v.to_lowercase() == actual)),
        "CONTAINS_TOKEN" => actual.contains(value.trim_matches('*')),
        "HAS_PROPERTY" => !actual.is_empty(),
        op @ ("GT" | "GTE" | "LT" | "LTE") => {
            let (Ok(a), Ok(v)) = (actual.parse::<f64>(), value.parse::<f64>()) else {
                return false;
            };
            match op {
                "GT" => a > v,
                "GTE" => a >= v,
                "LT" => a < v,
                _ => a <= v,
            }
        }
        _ => false,
    }
}

fn crm(
    st: &Mutex<St>,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    body: Value,
) -> Response {
    let mut st = st.lock().unwrap();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["crm", "v3", "objects", kind, "search"]) => {
            let limit = body["limit"].as_u64().unwrap_or(10) as usize;
            if limit > 200 {
                return error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "limit must be at most 200",
                );
            }
            let offset: usize = body["after"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            let properties: Vec<String> = body["properties"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect();
            let text_fields: &[&str] = match *kind {
                "companies" => &["name", "domain"],
                "contacts" => &["firstname", "lastname", "email"],
                _ => &["dealname"],
            };
            let Some(list) = kind_list(&mut st, kind) else {
                return error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "no such object");
            };
            let query_text = body["query"].as_str().map(str::to_lowercase);
            let groups = body["filterGroups"].as_array().cloned().unwrap_or_default();
            let found: Vec<Value> = list
                .iter()
                .filter(|r| {
                    query_text.as_ref().is_none_or(|q| {
                        text_fields
                            .iter()
                            .any(|f| value_of(r, f).to_lowercase().contains(q.as_str()))
                    })
                })
                .filter(|r| {
                    groups.is_empty()
                        || groups.iter().any(|g| {
                            g["filters"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .all(|f| filter_matches(r, f))
                        })
                })
                .cloned()
                .collect();
            let mut found = found;
            if body["sorts"][0]["propertyName"] == "hs_object_id" {
                found.sort_by_key(|r| r["id"].as_str().and_then(|i| i.parse::<u64>().ok()));
                if body["sorts"][0]["direction"] == "DESCENDING" {
                    found.reverse();
                }
            }
            let total = found.len();
            let results: Vec<Value> = found
                .iter()
                .skip(offset)
                .take(limit)
                .map(|r| public(r, &properties))
                .collect();
            let mut answer = json!({ "total": total, "results": results });
            if offset + limit < total {
                answer["paging"] = json!({ "next": { "after": (offset + limit).to_string() } });
            }
            axum::Json(answer).into_response()
        }
        ("GET", ["crm", "v3", "pipelines", "deals"]) => {
            let stages: Vec<Value> = STAGES
                .iter()
                .enumerate()
                .map(|(n, (id, label, closed))| {
                    json!({
                        "id": id, "label": label, "displayOrder": n,
                        "metadata": { "isClosed": if *closed { "true" } else { "false" },
                                      "probability": if *closed { "1.0" } else { "0.2" } }
                    })
                })
                .collect();
            axum::Json(json!({ "results": [{
                "id": "default", "label": "Sales Pipeline", "displayOrder": 0, "stages": stages
            }]}))
            .into_response()
        }
        (
            "POST",
            [
                "crm",
                "v4",
                "associations",
                "deals",
                "companies",
                "batch",
                "read",
            ],
        ) => {
            let results: Vec<Value> = body["inputs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|input| {
                    let deal = st.deals.iter().find(|d| d["id"] == input["id"])?;
                    let company = deal["company"].as_str().filter(|c| !c.is_empty())?;
                    Some(json!({
                        "from": { "id": deal["id"] },
                        "to": [{ "toObjectId": company.parse::<u64>().map(Value::from)
                                    .unwrap_or_else(|_| json!(company)),
                                 "associationTypes": [{ "category": "HUBSPOT_DEFINED",
                                                        "typeId": 5, "label": null }] }]
                    }))
                })
                .collect();
            axum::Json(json!({ "status": "COMPLETE", "results": results })).into_response()
        }
        ("GET", ["crm", "v3", "objects", kind, id]) => {
            let properties: Vec<String> = query
                .get("properties")
                .map(|p| p.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            let Some(list) = kind_list(&mut st, kind) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "OBJECT_NOT_FOUND",
                    "resource not found",
                );
            };
            match list.iter().find(|r| r["id"] == *id) {
                Some(record) => axum::Json(public(record, &properties)).into_response(),
                None => error(
                    StatusCode::NOT_FOUND,
                    "OBJECT_NOT_FOUND",
                    "resource not found",
                ),
            }
        }
        ("PATCH", ["crm", "v3", "objects", "deals", id]) => {
            let changes = body["properties"].as_object().cloned().unwrap_or_default();
            if let Some(stage) = changes.get("dealstage").and_then(Value::as_str)
                && !STAGES.iter().any(|(s, ..)| *s == stage)
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    &format!("{stage} is not a valid deal stage"),
                );
            }
            let Some(deal) = st.deals.iter_mut().find(|d| d["id"] == *id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "OBJECT_NOT_FOUND",
                    "resource not found",
                );
            };
            for (k, v) in changes {
                deal["properties"][k] = v;
            }
            let answer = json!({ "id": deal["id"], "properties": deal["properties"] });
            axum::Json(answer).into_response()
        }
        ("POST", ["crm", "v3", "objects", kind @ ("notes" | "tasks")]) => {
            let props = &body["properties"];
            let timestamp_ok = match &props["hs_timestamp"] {
                Value::String(s) => {
                    chrono::DateTime::parse_from_rfc3339(s).is_ok() || s.parse::<i64>().is_ok()
                }
                Value::Number(_) => true,
                _ => false,
            };
            if !timestamp_ok {
                return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "hs_timestamp");
            }
            let note = *kind == "notes";
            if note && props["hs_note_body"].as_str().is_none_or(str::is_empty) {
                return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "hs_note_body");
            }
            if !note {
                if props["hs_task_subject"].as_str().is_none_or(str::is_empty) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        "hs_task_subject",
                    );
                }
                if !matches!(
                    props["hs_task_type"].as_str(),
                    Some("EMAIL" | "CALL" | "TODO" | "LINKED_IN")
                ) {
                    return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "hs_task_type");
                }
            }
            let (company, contact, deal) = if note {
                (190, 202, 214)
            } else {
                (192, 204, 216)
            };
            for association in body["associations"].as_array().into_iter().flatten() {
                let to = association["to"]["id"].as_str().unwrap_or("");
                let type_id = association["types"][0]["associationTypeId"]
                    .as_u64()
                    .unwrap_or(0);
                let expected = if st.companies.iter().any(|c| c["id"] == to) {
                    company
                } else if st.contacts.iter().any(|c| c["id"] == to) {
                    contact
                } else if st.deals.iter().any(|c| c["id"] == to) {
                    deal
                } else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        &format!("no object {to} to associate"),
                    );
                };
                if type_id != expected
                    || association["types"][0]["associationCategory"] != "HUBSPOT_DEFINED"
                {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        &format!("association type {type_id} does not fit {to}"),
                    );
                }
            }
            st.next_id += 1;
            let id = st.next_id.to_string();
            let made = json!({
                "id": id, "properties": props, "associations": body["associations"]
            });
            if note {
                st.notes.push(made);
            } else {
                st.tasks.push(made);
            }
            (
                StatusCode::CREATED,
                axum::Json(json!({
                    "id": id, "properties": props, "createdAt": "2026-12-03T10:00:00Z"
                })),
            )
                .into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route"),
    }
}
