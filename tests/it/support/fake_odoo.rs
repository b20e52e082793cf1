//! A fake Odoo on 127.0.0.1 speaking both external APIs, following `../shared/API_NOTES.md`:
//!
//! - JSON-2: `POST /json/2/<model>/<method>` with named arguments, `Authorization: bearer
//!   <api key>` and `X-Odoo-Database`; errors answer with an HTTP status and `{name, message}`
//!   (401 for a bad key). Off (404, as before Odoo 19) after [`FakeOdoo::without_json2`].
//! - JSON-RPC: `POST /jsonrpc` `{jsonrpc, method:"call", params:{service, method, args}}`:
//!   `common.authenticate(db, login, key, {})` → uid or `false`; `object.execute_kw(db, uid,
//!   key, model, method, args, kwargs)`. Errors are HTTP 200 with `error.data.name`
//!   (`odoo.exceptions.AccessDenied`). Off (404, as in Odoo 22) after
//!   [`FakeOdoo::without_jsonrpc`].
//!
//! Models are lists of records with integer ids; many2one fields are `[id, "name"]`.
//! `search_read` understands the domain operators `=`, `!=`, `ilike`, `=ilike`, `in` and
//! `child_of` (on `partner_id`, with `parent_id` children), `limit`, `offset`; archived
//! records (`active: false`) are left out unless the domain names `active`, as Odoo does.
//! `write(ids, vals)`, `create(vals_list | vals)`, `message_post(ids, body, message_type,
//! subtype_xmlid)` (kept in `mail.message`). For the mirror: `>`, `>=`, `<`, `<=` (numbers,
//! and `write_date` as Odoo's `YYYY-MM-DD HH:MM:SS` text), `order: "id"`; every record has a
//! `write_date`, set to now by [`FakeOdoo::touch`]; [`FakeOdoo::unlink`] deletes one. Seeded: `ir.model` res.partner, the activity
//! types Email / Call / To-Do, the stages New, Qualified, Proposition, Won (`is_won`).
//!
//! Faults: [`FakeOdoo::fail_next`] answers the next model calls with an HTTP status (with
//! `Retry-After`) or [`FakeOdoo::rpc_error_next`] with an HTTP-200 error of a given name.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

pub const DATABASE: &str = "acme-prod";
pub const LOGIN: &str = "admin@acme.example";
pub const UID: i64 = 2;

enum Fault {
    Http(u16, Option<u64>),
    Rpc(String),
}

#[derive(Default)]
struct St {
    keys: Vec<String>,
    json2: bool,
    jsonrpc: bool,
    models: std::collections::HashMap<String, Vec<Value>>,
    next_id: i64,
    /// (protocol, model, method, arguments as received)
    requests: Vec<(String, String, String, Value)>,
    faults: VecDeque<Fault>,
    delay: Duration,
}

#[derive(Clone)]
pub struct FakeOdoo {
    url: String,
    st: Arc<Mutex<St>>,
    changed: Arc<Notify>,
}

type Shared = (Arc<Mutex<St>>, Arc<Notify>);

impl FakeOdoo {
    pub async fn start() -> Self {
        let mut st = St {
            json2: true,
            jsonrpc: true,
            next_id: 100,
            ..Default::default()
        };
        st.models.insert(
            "ir.model".into(),
            vec![json!({"id": 80, "model": "res.partner", "name": "Contact"})],
        );
        st.models.insert(
            "mail.activity.type".into(),
            vec![
                json!({"id": 1, "name": "Email"}),
                json!({"id": 2, "name": "Call"}),
                json!({"id": 4, "name": "To-Do"}),
            ],
        );
        st.models.insert(
            "crm.stage".into(),
            vec![
                json!({"id": 1, "name": "New", "sequence": 1, "is_won": false}),
                json!({"id": 2, "name": "Qualified", "sequence": 2, "is_won": false}),
                json!({"id": 3, "name": "Proposition", "sequence": 3, "is_won": false}),
                json!({"id": 4, "name": "Won", "sequence": 70, "is_won": true}),
            ],
        );
        let st = Arc::new(Mutex::new(st));
        let changed = Arc::new(Notify::new());
        let app = Router::new()
            .fallback(handle)
            .with_state((st.clone(), changed.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { url, st, changed }
    }

    /// What an admin types as the Odoo address.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_key(&self, key: &str) {
        self.lock().keys.push(key.to_owned());
    }

    /// An Odoo before 19: `/json/2/...` answers 404.
    pub fn without_json2(&self) {
        self.lock().json2 = false;
    }

    /// Odoo 22: `/jsonrpc` answers 404.
    pub fn without_jsonrpc(&self) {
        self.lock().jsonrpc = false;
    }

    pub fn add_company(&self, id: i64, name: &str, website: &str) {
        self.insert(
            "res.partner",
            json!({"id": id, "name": name, "is_company": true, "website": website,
                   "email": false, "parent_id": false, "active": true}),
        );
    }

    pub fn add_person(&self, id: i64, name: &str, email: &str, company: i64) {
        let company_name = self
            .record("res.partner", company)
            .map(|c| c["name"].clone());
        self.insert(
            "res.partner",
            json!({"id": id, "name": name, "is_company": false, "website": false,
                   "email": email, "parent_id": [company, company_name], "active": true}),
        );
    }

    /// An opportunity of a partner; `active: false` is how Odoo keeps a lost one.
    pub fn add_lead(
        &self,
        id: i64,
        partner: i64,
        name: &str,
        stage: i64,
        revenue: f64,
        active: bool,
    ) {
        let stage_name = self.record("crm.stage", stage).map(|s| s["name"].clone());
        self.insert(
            "crm.lead",
            json!({"id": id, "name": name, "type": "opportunity", "partner_id": [partner, "p"],
                   "stage_id": [stage, stage_name], "expected_revenue": revenue,
                   "company_currency": [1, "EUR"], "date_deadline": "2027-03-31",
                   "active": active, "description": false}),
        );
    }

    /// Writes values on a record, as Odoo's `write` (its `write_date` now).
    pub fn touch(&self, model: &str, id: i64, values: Value) {
        let mut st = self.lock();
        let Some(record) = st
            .models
            .get_mut(model)
            .and_then(|list| list.iter_mut().find(|r| r["id"] == id))
        else {
            return;
        };
        for (k, v) in values.as_object().cloned().unwrap_or_default() {
            record[k] = v;
        }
        record["write_date"] = json!(chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string());
    }

    /// Deletes a record, as Odoo's `unlink`.
    pub fn unlink(&self, model: &str, id: i64) {
        if let Some(list) = self.lock().models.get_mut(model) {
            list.retain(|r| r["id"] != id);
        }
    }

    fn insert(&self, model: &str, record: Value) {
        let mut record = record;
        if record.get("write_date").is_none() {
            record["write_date"] = json!("2026-11-30 10:00:00");
        }
        self.lock()
            .models
            .entry(model.to_owned())
            .or_default()
            .push(record);
    }

    pub fn record(&self, model: &str, id: i64) -> Option<Value> {
        self.lock()
            .models
            .get(model)?
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
    }

    pub fn records(&self, model: &str) -> Vec<Value> {
        self.lock().models.get(model).cloned().unwrap_or_default()
    }

    /// The next `n` model calls answer this HTTP status (with `Retry-After` seconds).
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let mut st = self.lock();
        for _ in 0..n {
            st.faults.push_back(Fault::Http(status, retry_after));
        }
    }

    /// The next model call answers HTTP 200 with an `error` of this exception name.
    pub fn rpc_error_next(&self, name: &str) {
        self.lock().faults.push_back(Fault::Rpc(name.to_owned()));
    }

    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// (protocol `json2`|`jsonrpc`, model, method, arguments) of every model call.
    pub fn requests(&self) -> Vec<(String, String, String, Value)> {
        self.lock().requests.clone()
    }

    pub fn count(&self, model: &str, method: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|(_, m, f, _)| m == model && f == method)
            .count()
    }

    /// Waits (10 s at most) until the model holds `n` records made by the bot (ids ≥ 100).
    pub async fn wait_for_made(&self, model: &str, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.changed.notified();
            let made: Vec<Value> = self
                .records(model)
                .into_iter()
                .filter(|r| r["id"].as_i64().unwrap_or(0) >= 100)
                .collect();
            if made.len() >= n {
                return made;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {n} {model}; have {}; requests: {:?}",
                    made.len(),
                    self.requests()
                );
            }
        }
    }
}

fn odoo_error(name: &str, message: &str) -> Value {
    json!({"name": name, "message": message, "arguments": [message], "context": {}, "debug": ""})
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "<html><body>404: Not Found</body></html>",
    )
        .into_response()
}

async fn handle(
    State((st, changed)): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let delay = st.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = if let Some(rest) = path.strip_prefix("/json/2/") {
        json2(&st, rest, &headers, body)
    } else if path == "/jsonrpc" {
        jsonrpc(&st, body)
    } else {
        not_found()
    };
    changed.notify_waiters();
    response
}

fn json2(st: &Mutex<St>, rest: &str, headers: &HeaderMap, body: Value) -> Response {
    let mut st = st.lock().unwrap();
    if !st.json2 {
        return not_found();
    }
    let Some((model, method)) = rest.split_once('/') else {
        return not_found();
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let key = header("authorization")
        .strip_prefix("bearer ")
        .or_else(|| header("authorization").strip_prefix("Bearer "))
        .unwrap_or("");
    if !st.keys.iter().any(|k| k == key) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(odoo_error(
                "werkzeug.exceptions.Unauthorized",
                "Invalid apikey",
            )),
        )
            .into_response();
    }
    if header("x-odoo-database") != DATABASE {
        return not_found();
    }
    st.requests
        .push(("json2".into(), model.into(), method.into(), body.clone()));
    if let Some(fault) = st.faults.pop_front() {
        return match fault {
            Fault::Http(status, retry_after) => {
                let mut response = (
                    StatusCode::from_u16(status).unwrap(),
                    axum::Json(odoo_error(
                        "werkzeug.exceptions.TooManyRequests",
                        "slow down",
                    )),
                )
                    .into_response();
                if let Some(after) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", after.to_string().parse().unwrap());
                }
                response
            }
            Fault::Rpc(name) => {
                axum::Json(json!({"error": odoo_error(&name, "refused")})).into_response()
            }
        };
    }
    let mut named = body.as_object().cloned().unwrap_or_default();
    let ids = named.remove("ids");
    match run(&mut st, model, method, ids, named, false) {
        Ok(result) => axum::Json(result).into_response(),
        Err((name, message)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(odoo_error(&name, &message)),
        )
            .into_response(),
    }
}

fn rpc_answer(id: &Value, result: Result<Value, (String, String)>) -> Response {
    match result {
        Ok(result) => axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})),
        Err((name, message)) => axum::Json(json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": 200, "message": "Odoo Server Error",
                      "data": {"name": name, "message": message, "arguments": [message]}}
        })),
    }
    .into_response()
}

fn jsonrpc(st: &Mutex<St>, body: Value) -> Response {
    let mut st = st.lock().unwrap();
    if !st.jsonrpc {
        return not_found();
    }
    let id = body["id"].clone();
    let params = &body["params"];
    let args = params["args"].as_array().cloned().unwrap_or_default();
    let denied = || {
        Err((
            "odoo.exceptions.AccessDenied".to_owned(),
            "Access Denied".to_owned(),
        ))
    };
    match (params["service"].as_str(), params["method"].as_str()) {
        (Some("common"), Some("authenticate")) => {
            st.requests.push((
                "jsonrpc".into(),
                "common".into(),
                "authenticate".into(),
                Value::Array(args.clone()),
            ));
            if args.first() != Some(&json!(DATABASE)) {
                return rpc_answer(
                    &id,
                    Err((
                        "psycopg2.OperationalError".into(),
                        "database does not exist".into(),
                    )),
                );
            }
            let ok = args.get(1) == Some(&json!(LOGIN))
                && args
                    .get(2)
                    .and_then(Value::as_str)
                    .is_some_and(|k| st.keys.iter().any(|x| x == k));
            rpc_answer(&id, Ok(if ok { json!(UID) } else { json!(false) }))
        }
        (Some("object"), Some("execute_kw")) => {
            let key_ok = args
                .get(2)
                .and_then(Value::as_str)
                .is_some_and(|k| st.keys.iter().any(|x| x == k));
            if args.first() != Some(&json!(DATABASE)) || args.get(1) != Some(&json!(UID)) || !key_ok
            {
                return rpc_answer(&id, denied());
            }
            let model = args.get(3).and_then(Value::as_str).unwrap_or("").to_owned();
            let method = args.get(4).and_then(Value::as_str).unwrap_or("").to_owned();
            let positional = args.get(5).cloned().unwrap_or(json!([]));
            let kwargs = args
                .get(6)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            st.requests.push((
                "jsonrpc".into(),
                model.clone(),
                method.clone(),
                json!({"args": positional, "kwargs": kwargs}),
            ));
            if let Some(fault) = st.faults.pop_front() {
                return match fault {
                    Fault::Http(status, retry_after) => {
                        let mut response =
                            (StatusCode::from_u16(status).unwrap(), "busy").into_response();
                        if let Some(after) = retry_after {
                            response
                                .headers_mut()
                                .insert("retry-after", after.to_string().parse().unwrap());
                        }
                        response
                    }
                    Fault::Rpc(name) => rpc_answer(&id, Err((name, "refused".into()))),
                };
            }
            // Positional: `[ids]` for record methods, `[domain]` / `[vals]` otherwise.
            let mut named = kwargs;
            let first = positional.as_array().and_then(|a| a.first()).cloned();
            let ids = match (method.as_str(), first) {
                ("search_read", Some(domain)) => {
                    named.insert("domain".into(), domain);
                    None
                }
                ("create", Some(vals)) => {
                    named.insert("vals_list".into(), vals);
                    None
                }
                (_, first) => first,
            };
            let result = run(&mut st, &model, &method, ids, named, true);
            rpc_answer(&id, result)
        }
        _ => rpc_answer(
            &id,
            Err((
                "werkzeug.exceptions.NotFound".into(),
                "no such service".into(),
            )),
        ),
    }
}

type Run = Result<Value, (String, String)>;

fn run(
    st: &mut St,
    model: &str,
    method: &str,
    ids: Option<Value>,
    named: Map<String, Value>,
    rpc: bool,
) -> Run {
    let bad = |m: &str| Err(("odoo.exceptions.ValidationError".to_owned(), m.to_owned()));
    let ids: Vec<i64> = ids
        .as_ref()
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    match method {
        "search_read" => {
            let domain = named.get("domain").cloned().unwrap_or(json!([]));
            let records = st.models.get(model).cloned().unwrap_or_default();
            let names_active = domain.to_string().contains("\"active\"");
            let mut found: Vec<Value> = records
                .iter()
                .filter(|r| names_active || r.get("active") != Some(&Value::Bool(false)))
                .filter(|r| matches(st, r, &domain))
                .cloned()
                .collect();
            if named.get("order").and_then(Value::as_str) == Some("id") {
                found.sort_by_key(|r| r["id"].as_i64());
            }
            if named.get("order").and_then(Value::as_str) == Some("sequence, id") {
                found.sort_by_key(|r| (r["sequence"].as_i64(), r["id"].as_i64()));
            }
            let offset = named.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
            let limit = named
                .get("limit")
                .and_then(Value::as_u64)
                .map(|l| l as usize)
                .unwrap_or(usize::MAX);
            let fields: Vec<String> = named
                .get("fields")
                .and_then(Value::as_array)
                .map(|f| {
                    f.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Ok(found
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|r| {
                    if fields.is_empty() {
                        return r;
                    }
                    let mut out = Map::new();
                    for f in &fields {
                        out.insert(f.clone(), r.get(f).cloned().unwrap_or(Value::Bool(false)));
                    }
                    Value::Object(out)
                })
                .collect())
        }
        "write" => {
            let Some(vals) = named.get("vals").and_then(Value::as_object).cloned() else {
                return bad("write needs vals");
            };
            let stages = st.models.get("crm.stage").cloned().unwrap_or_default();
            let list = st.models.entry(model.to_owned()).or_default();
            for id in &ids {
                let Some(record) = list.iter_mut().find(|r| r["id"] == *id) else {
                    return Err((
                        "odoo.exceptions.MissingError".into(),
                        "Record does not exist or has been deleted.".into(),
                    ));
                };
                for (k, v) in &vals {
                    let v = if k == "stage_id" {
                        let Some(stage) = stages.iter().find(|s| s["id"] == *v) else {
                            return bad("no such stage");
                        };
                        json!([v, stage["name"]])
                    } else {
                        v.clone()
                    };
                    record[k] = v;
                }
            }
            Ok(json!(true))
        }
        "create" => {
            let (list, single) = match named.get("vals_list") {
                Some(Value::Array(list)) => (list.clone(), false),
                Some(Value::Object(one)) => (vec![Value::Object(one.clone())], true),
                _ => return bad("create needs vals_list"),
            };
            let mut made = Vec::new();
            for mut vals in list {
                if model == "mail.activity" {
                    if vals["res_model_id"] != 80 || vals["date_deadline"].as_str().is_none() {
                        return bad("an activity needs res_model_id and date_deadline");
                    }
                    if chrono::NaiveDate::parse_from_str(
                        vals["date_deadline"].as_str().unwrap_or(""),
                        "%Y-%m-%d",
                    )
                    .is_err()
                    {
                        return bad("date_deadline is a date");
                    }
                }
                st.next_id += 1;
                vals["id"] = json!(st.next_id);
                made.push(st.next_id);
                st.models.entry(model.to_owned()).or_default().push(vals);
            }
            Ok(if single && rpc {
                json!(made[0])
            } else {
                json!(made)
            })
        }
        "message_post" => {
            let Some(&id) = ids.first() else {
                return bad("message_post runs on a record");
            };
            if !st
                .models
                .get(model)
                .is_some_and(|l| l.iter().any(|r| r["id"] == id))
            {
                return Err((
                    "odoo.exceptions.MissingError".into(),
                    "Record does not exist or has been deleted.".into(),
                ));
            }
            st.next_id += 1;
            let message = json!({
                "id": st.next_id, "model": model, "res_id": id,
                "body": named.get("body").cloned().unwrap_or_default(),
                "message_type": named.get("message_type").cloned().unwrap_or(json!("notification")),
                "subtype_xmlid": named.get("subtype_xmlid").cloned().unwrap_or_default(),
            });
            st.models
                .entry("mail.message".into())
                .or_default()
                .push(message);
            Ok(json!(st.next_id))
        }
        _ => Err((
            "werkzeug.exceptions.NotFound".into(),
            format!("{model} has no method {method}"),
        )),
    }
}

/// A domain of AND-ed `[field, operator, value]` terms.
fn matches(st: &St, record: &Value, domain: &Value) -> bool {
    domain.as_array().into_iter().flatten().all(|term| {
        let Some([field, op, value]) = term.as_array().map(Vec::as_slice) else {
            return true; // "&" and friends: everything here is AND-ed anyway
        };
        let field = field.as_str().unwrap_or("");
        let actual = record.get(field).cloned().unwrap_or(Value::Bool(false));
        // A many2one compares by its id.
        let scalar = match &actual {
            Value::Array(pair) => pair.first().cloned().unwrap_or(Value::Null),
            v => v.clone(),
        };
        let text = |v: &Value| v.as_str().unwrap_or("").to_lowercase();
        match op.as_str().unwrap_or("") {
            "=" => scalar == *value,
            "!=" => scalar != *value,
            "ilike" => text(&scalar).contains(&text(value)),
            "=ilike" => text(&scalar) == text(value),
            "in" => value.as_array().is_some_and(|l| l.contains(&scalar)),
            op @ (">" | ">=" | "<" | "<=") => {
                let order = match (&scalar, value) {
                    (Value::Number(a), Value::Number(b)) => a
                        .as_f64()
                        .partial_cmp(&b.as_f64())
                        .unwrap_or(std::cmp::Ordering::Equal),
                    (Value::String(a), Value::String(b)) => a.cmp(b),
                    _ => return false,
                };
                match op {
                    ">" => order.is_gt(),
                    ">=" => order.is_ge(),
                    "<" => order.is_lt(),
                    _ => order.is_le(),
                }
            }
            "child_of" => {
                let Some(root) = value.as_i64() else {
                    return false;
                };
                let Some(id) = scalar.as_i64() else {
                    return false;
                };
                id == root
                    || st.models.get("res.partner").is_some_and(|partners| {
                        partners.iter().any(|p| {
                            p["id"] == id
                                && p["parent_id"].as_array().and_then(|a| a.first())
                                    == Some(&json!(root))
                        })
                    })
            }
            _ => false,
        }
    })
}
