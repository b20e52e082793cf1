//! Odoo, per team: its URL, database, login and API key (entered by an admin, checked by
//! authenticating before they are saved). Two protocols, chosen when the keys are checked:
//! JSON-2 (`POST {url}/json/2/<model>/<method>`, named arguments, `Authorization: bearer
//! <key>`, `X-Odoo-Database`) where the server has it (Odoo 19+), else JSON-RPC
//! (`POST {url}/jsonrpc`, `common.authenticate` for the uid, then `object.execute_kw`), which
//! is gone in Odoo 22. Errors may arrive as HTTP 200 with an `error` member: they are errors.
//!
//! Companies are `res.partner` with `is_company`; contacts are the other partners, their
//! account being `parent_id`. Deals are `crm.lead` opportunities of the partner: lost ones are
//! archived (`active = false`), won ones sit in a stage whose `is_won` is true, so open =
//! active and not in a won stage. Notes are `message_post` (an internal note), tasks are
//! `mail.activity` records, which carry a date only: the person's local date of the due time.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use super::{Crm, CrmError, Guard};
use crate::clients::{ApiError, decode, send};
use crate::domain::crm::{
    Account, Contact, Deal, DealChange, Listed, Listing, Made, MirrorObject, NewNote, NewTask,
    Record, Stage, TaskType, parse_modified, with_domain, with_email,
};
use crate::domain::provider::Provider;

const PROVIDER: &str = "Odoo";
const PAGE: usize = 50;
/// Opportunities of one partner read at most (pages of 50).
const MAX_DEAL_PAGES: usize = 20;
const PARTNER_FIELDS: [&str; 6] = ["id", "name", "website", "email", "parent_id", "is_company"];
const LEAD_FIELDS: [&str; 8] = [
    "id",
    "name",
    "partner_id",
    "stage_id",
    "expected_revenue",
    "company_currency",
    "date_deadline",
    "active",
];

/// Which of Odoo's two external APIs a server is spoken to with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Json2,
    Jsonrpc,
}

/// A team's Odoo connection, sealed together as one secret.
#[derive(Clone, Deserialize, Serialize)]
pub struct OdooKeys {
    /// `https://example.odoo.com` (no trailing slash).
    pub url: String,
    pub database: String,
    pub login: String,
    pub api_key: String,
    /// Found when the keys were checked.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// JSON-RPC's user id, from `common.authenticate`.
    #[serde(default)]
    pub uid: Option<i64>,
}

impl std::fmt::Debug for OdooKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OdooKeys(..)")
    }
}

impl OdooKeys {
    pub fn seal_text(&self) -> SecretString {
        SecretString::from(serde_json::to_string(self).unwrap_or_default())
    }

    pub fn from_secret(secret: &SecretString) -> Option<Self> {
        serde_json::from_str(secret.expose_secret()).ok()
    }
}

/// Why an Odoo address is not accepted.
pub fn check_url(url: &str) -> Result<String, &'static str> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = url::Url::parse(trimmed).map_err(|_| "That is not a web address.")?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("Use the https:// address of your Odoo."),
    }
    if host.is_empty()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
    {
        return Err("Use the address of your Odoo only, like https://yourcompany.odoo.com");
    }
    let path = parsed.path().trim_end_matches('/');
    // `/odoo` or `/web` as pasted from the browser: the server is the part before it.
    let path = ["/odoo", "/web"]
        .iter()
        .find_map(|p| path.strip_suffix(p))
        .unwrap_or(path);
    let mut base = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or(host)
    );
    if let Some(port) = parsed.port() {
        base.push_str(&format!(":{port}"));
    }
    base.push_str(path);
    Ok(base)
}

/// Odoo's client: one for the process; `session` binds a team's keys and guard.
#[derive(Clone)]
pub struct Odoo {
    http: reqwest::Client,
}

/// What a failed call's `error` member says.
fn rpc_error(error: &Value) -> CrmError {
    let name = error["data"]["name"]
        .as_str()
        .or_else(|| error["name"].as_str())
        .unwrap_or_default();
    let message = error["data"]["message"]
        .as_str()
        .or_else(|| error["message"].as_str())
        .unwrap_or_default();
    classify(name, message)
}

fn classify(name: &str, message: &str) -> CrmError {
    let lowered = message.to_ascii_lowercase();
    if name.ends_with("AccessDenied") || name.ends_with("SessionExpiredException") {
        CrmError::Refused { provider: PROVIDER }
    } else if name.ends_with("TooManyRequests") || lowered.contains("too many") {
        CrmError::RateLimited {
            provider: PROVIDER,
            retry_after: None,
        }
    } else if name.ends_with("MissingError") {
        CrmError::NotFound { provider: PROVIDER }
    } else {
        CrmError::Rejected {
            provider: PROVIDER,
            message: format!("{name}: {}", message.chars().take(300).collect::<String>()),
        }
    }
}

impl From<ApiError> for OdooFailure {
    fn from(e: ApiError) -> Self {
        OdooFailure::Api(e)
    }
}

/// A call's failure before it is a `CrmError`: a JSON-2 route the server does not have is
/// how the protocol is told apart.
enum OdooFailure {
    Api(ApiError),
    Crm(CrmError),
}

impl OdooFailure {
    fn into_crm(self) -> CrmError {
        match self {
            OdooFailure::Api(ApiError::Rejected {
                status, message, ..
            }) if status != 404 => {
                // JSON-2 answers errors with a status and `{name, message}`.
                match serde_json::from_str::<Value>(&message) {
                    Ok(body) if body.get("name").is_some() => rpc_error(&body),
                    _ => ApiError::Rejected {
                        provider: PROVIDER,
                        status,
                        message,
                    }
                    .into(),
                }
            }
            OdooFailure::Api(e) => e.into(),
            OdooFailure::Crm(e) => e,
        }
    }
}

impl Odoo {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    async fn json2(
        &self,
        keys: &OdooKeys,
        operation: &'static str,
        model: &str,
        method: &str,
        body: &Value,
    ) -> Result<Value, OdooFailure> {
        let request = self
            .http
            .post(format!("{}/json/2/{model}/{method}", keys.url))
            .timeout(std::time::Duration::from_secs(20))
            .bearer_auth(&keys.api_key)
            .header("X-Odoo-Database", &keys.database)
            .json(body);
        let text = send(PROVIDER, operation, request).await?;
        let answer: Value = decode(PROVIDER, &text)?;
        if let Some(error) = answer.as_object().and_then(|o| o.get("error")) {
            return Err(OdooFailure::Crm(rpc_error(error)));
        }
        Ok(answer)
    }

    async fn jsonrpc(
        &self,
        keys: &OdooKeys,
        operation: &'static str,
        service: &str,
        method: &str,
        args: Value,
    ) -> Result<Value, OdooFailure> {
        let body = json!({
            "jsonrpc": "2.0",
            "method": "call",
            "params": { "service": service, "method": method, "args": args },
            "id": rand::random::<u32>(),
        });
        let request = self
            .http
            .post(format!("{}/jsonrpc", keys.url))
            .timeout(std::time::Duration::from_secs(20))
            .json(&body);
        let text = send(PROVIDER, operation, request).await?;
        let answer: Value = decode(PROVIDER, &text)?;
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            return Err(OdooFailure::Crm(rpc_error(error)));
        }
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    async fn authenticate(&self, keys: &OdooKeys) -> Result<i64, OdooFailure> {
        let uid = self
            .jsonrpc(
                keys,
                "common.authenticate",
                "common",
                "authenticate",
                json!([keys.database, keys.login, keys.api_key, {}]),
            )
            .await?;
        // `false` is how Odoo says no.
        uid.as_i64()
            .ok_or(OdooFailure::Crm(CrmError::Refused { provider: PROVIDER }))
    }

    /// Checks the keys by authenticating: JSON-2 first (a one-partner read with the key), and
    /// JSON-RPC's `common.authenticate` when the server has no JSON-2. Returns the keys with
    /// the protocol (and uid) found.
    pub async fn check(&self, keys: &OdooKeys) -> Result<OdooKeys, CrmError> {
        let probe = json!({ "domain": [], "fields": ["id"], "limit": 1 });
        let mut found = keys.clone();
        match self
            .json2(keys, "partners.check", "res.partner", "search_read", &probe)
            .await
        {
            Ok(_) => {
                found.protocol = Some(Protocol::Json2);
                found.uid = None;
                return Ok(found);
            }
            Err(OdooFailure::Api(ApiError::Rejected { status: 404, .. })) => {}
            Err(e) => return Err(e.into_crm()),
        }
        let uid = self
            .authenticate(keys)
            .await
            .map_err(OdooFailure::into_crm)?;
        found.protocol = Some(Protocol::Jsonrpc);
        found.uid = Some(uid);
        Ok(found)
    }

    /// The team's Odoo, as the CRM interface.
    pub fn session(&self, keys: OdooKeys, guard: Guard) -> Arc<dyn Crm> {
        let uid = OnceCell::new_with(keys.uid);
        Arc::new(Session {
            odoo: self.clone(),
            keys,
            guard,
            uid,
            lookups: Default::default(),
        })
    }
}

struct Session {
    odoo: Odoo,
    keys: OdooKeys,
    guard: Guard,
    uid: OnceCell<i64>,
    /// `ir.model` and `mail.activity.type` ids, looked up once per session.
    lookups: tokio::sync::Mutex<std::collections::HashMap<String, Option<i64>>>,
}

impl Session {
    /// One model method through the guard: `named` are its keyword arguments, `ids` the
    /// records it runs on.
    async fn call(
        &self,
        operation: &'static str,
        model: &str,
        method: &str,
        ids: Option<Vec<i64>>,
        named: Value,
    ) -> Result<Value, CrmError> {
        self.guard
            .run(operation, || {
                let named = named.clone();
                let ids = ids.clone();
                async move {
                    match self.keys.protocol.unwrap_or(Protocol::Json2) {
                        Protocol::Json2 => {
                            let mut body = named;
                            if let Some(ids) = ids {
                                body["ids"] = json!(ids);
                            }
                            self.odoo
                                .json2(&self.keys, operation, model, method, &body)
                                .await
                                .map_err(OdooFailure::into_crm)
                        }
                        Protocol::Jsonrpc => {
                            let uid = self.uid().await?;
                            let args = match ids {
                                Some(ids) => json!([ids]),
                                None => json!([]),
                            };
                            self.odoo
                                .jsonrpc(
                                    &self.keys,
                                    operation,
                                    "object",
                                    "execute_kw",
                                    json!([
                                        self.keys.database,
                                        uid,
                                        self.keys.api_key,
                                        model,
                                        method,
                                        args,
                                        named
                                    ]),
                                )
                                .await
                                .map_err(OdooFailure::into_crm)
                        }
                    }
                }
            })
            .await
    }

    async fn uid(&self) -> Result<i64, CrmError> {
        self.uid
            .get_or_try_init(|| async {
                self.odoo
                    .authenticate(&self.keys)
                    .await
                    .map_err(OdooFailure::into_crm)
            })
            .await
            .copied()
    }

    async fn search_read(
        &self,
        operation: &'static str,
        model: &str,
        domain: Value,
        fields: &[&str],
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Value>, CrmError> {
        let answer = self
            .call(
                operation,
                model,
                "search_read",
                None,
                json!({
                    "domain": domain,
                    "fields": fields,
                    "limit": limit,
                    "offset": offset,
                    "order": "id",
                }),
            )
            .await?;
        match answer {
            Value::Array(list) => Ok(list),
            other => Err(CrmError::Decode {
                provider: PROVIDER,
                detail: format!("search_read answered {}", kind_of(&other)),
            }),
        }
    }

    async fn partners(&self, domain: Value, limit: usize) -> Result<Vec<Value>, CrmError> {
        self.search_read(
            "partners.search",
            "res.partner",
            domain,
            &PARTNER_FIELDS,
            limit,
            0,
        )
        .await
    }

    /// The id of the first record named so (`ir.model` by `model`, activity types by name).
    async fn lookup(
        &self,
        model: &'static str,
        field: &'static str,
        value: &str,
    ) -> Result<Option<i64>, CrmError> {
        let key = format!("{model}:{value}");
        if let Some(found) = self.lookups.lock().await.get(&key) {
            return Ok(*found);
        }
        let op = if model == "ir.model" {
            "models.lookup"
        } else {
            "activity_types.lookup"
        };
        let found = self
            .search_read(op, model, json!([[field, "=ilike", value]]), &["id"], 1, 0)
            .await?
            .first()
            .and_then(|r| r["id"].as_i64());
        self.lookups.lock().await.insert(key, found);
        Ok(found)
    }

    async fn won_stages(&self) -> Result<Vec<i64>, CrmError> {
        Ok(self
            .stages()
            .await?
            .into_iter()
            .filter(|s| s.closed)
            .filter_map(|s| s.id.parse().ok())
            .collect())
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Odoo's text fields are `false` when empty.
fn text(record: &Value, key: &str) -> Option<String> {
    match record.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A many2one: `[id, "display name"]`, or `false`.
fn many2one(record: &Value, key: &str) -> Option<(i64, Option<String>)> {
    match record.get(key)? {
        Value::Array(pair) => Some((
            pair.first()?.as_i64()?,
            pair.get(1).and_then(Value::as_str).map(str::to_owned),
        )),
        Value::Number(n) => Some((n.as_i64()?, None)),
        _ => None,
    }
}

fn id_of(record: &Value) -> Option<String> {
    record.get("id")?.as_i64().map(|id| id.to_string())
}

fn account(record: &Value) -> Option<Account> {
    Some(Account {
        id: id_of(record)?,
        name: text(record, "name").unwrap_or_else(|| "(no name)".to_owned()),
        website: text(record, "website"),
    })
}

fn contact(record: &Value) -> Option<Contact> {
    let parent = many2one(record, "parent_id");
    Some(Contact {
        id: id_of(record)?,
        name: text(record, "name").unwrap_or_default(),
        email: text(record, "email"),
        account_id: parent.as_ref().map(|(id, _)| id.to_string()),
        account_name: parent.and_then(|(_, name)| name),
    })
}

fn deal(record: &Value, account_id: &str) -> Option<Deal> {
    let amount = match record.get("expected_revenue") {
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    };
    Some(Deal {
        id: id_of(record)?,
        account_id: account_id.to_owned(),
        name: text(record, "name").unwrap_or_else(|| "(no name)".to_owned()),
        stage: many2one(record, "stage_id")
            .map(|(id, _)| id.to_string())
            .unwrap_or_default(),
        amount,
        currency: many2one(record, "company_currency").and_then(|(_, name)| name),
        close_date: text(record, "date_deadline"),
    })
}

/// An Odoo record id as the CRM interface carries it (a string).
fn record_id(id: &str) -> Result<i64, CrmError> {
    id.trim()
        .parse()
        .map_err(|_| CrmError::NotFound { provider: PROVIDER })
}

/// The id a `create` answered: one id, or a list of one (JSON-2's `vals_list`).
fn made_id(answer: &Value) -> Option<String> {
    match answer {
        Value::Number(n) => Some(n.to_string()),
        Value::Array(list) => list.first().and_then(made_id),
        Value::Object(o) => o.get("id").and_then(made_id),
        _ => None,
    }
}

/// Plain text as the HTML Odoo's chatter shows: escaped, line breaks kept.
fn note_html(text: &str) -> String {
    crate::clients::google::escape_html(text).replace('\n', "<br>")
}

/// Odoo's default activity types, by the bot's task kinds.
fn activity_type(kind: TaskType) -> &'static str {
    match kind {
        TaskType::Email => "Email",
        TaskType::Call => "Call",
        TaskType::Linkedin | TaskType::Inmail => "To-Do",
    }
}

#[async_trait]
impl Crm for Session {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn provider(&self) -> Provider {
        Provider::Odoo
    }

    async fn search_accounts(&self, query: &str, limit: usize) -> Result<Vec<Account>, CrmError> {
        let found = self
            .partners(
                json!([["is_company", "=", true], ["name", "ilike", query]]),
                limit.min(PAGE),
            )
            .await?;
        Ok(found.iter().filter_map(account).collect())
    }

    async fn search_contacts(&self, query: &str, limit: usize) -> Result<Vec<Contact>, CrmError> {
        let found = self
            .partners(
                json!([["is_company", "=", false], ["name", "ilike", query]]),
                limit.min(PAGE),
            )
            .await?;
        Ok(found.iter().filter_map(contact).collect())
    }

    async fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, CrmError> {
        let found = self
            .partners(
                json!([
                    ["is_company", "=", false],
                    ["email", "=ilike", email.trim()]
                ]),
                10,
            )
            .await?;
        Ok(with_email(found.iter().filter_map(contact), email))
    }

    async fn accounts_by_domain(&self, domain: &str) -> Result<Vec<Account>, CrmError> {
        let found = self
            .partners(
                json!([["is_company", "=", true], ["website", "ilike", domain]]),
                PAGE,
            )
            .await?;
        Ok(with_domain(found.iter().filter_map(account), domain))
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, CrmError> {
        let Ok(id) = id.trim().parse::<i64>() else {
            return Ok(None);
        };
        let found = self.partners(json!([["id", "=", id]]), 1).await?;
        Ok(found.first().and_then(account))
    }

    async fn open_deals(&self, account_id: &str) -> Result<Vec<Deal>, CrmError> {
        let partner = record_id(account_id)?;
        let won = self.won_stages().await?;
        let mut open = Vec::new();
        for page in 0..MAX_DEAL_PAGES {
            let list = self
                .search_read(
                    "opportunities.search",
                    "crm.lead",
                    json!([
                        ["type", "=", "opportunity"],
                        ["partner_id", "child_of", partner],
                        ["active", "=", true],
                    ]),
                    &LEAD_FIELDS,
                    PAGE,
                    page * PAGE,
                )
                .await?;
            let count = list.len();
            open.extend(
                list.iter()
                    .filter(|r| r.get("active") != Some(&Value::Bool(false)))
                    .filter(|r| {
                        many2one(r, "stage_id").is_none_or(|(stage, _)| !won.contains(&stage))
                    })
                    .filter_map(|r| deal(r, account_id)),
            );
            if count < PAGE {
                break;
            }
        }
        Ok(open)
    }

    async fn stages(&self) -> Result<Vec<Stage>, CrmError> {
        let list = self
            .call(
                "stages.list",
                "crm.stage",
                "search_read",
                None,
                json!({
                    "domain": [],
                    "fields": ["id", "name", "is_won", "sequence"],
                    "order": "sequence, id",
                }),
            )
            .await?;
        Ok(list
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|r| {
                let id = id_of(r)?;
                Some(Stage {
                    label: text(r, "name").unwrap_or_else(|| id.clone()),
                    closed: r.get("is_won") == Some(&Value::Bool(true)),
                    id,
                })
            })
            .collect())
    }

    async fn update_deal(&self, change: &DealChange) -> Result<(), CrmError> {
        let deal = record_id(&change.deal_id)?;
        let mut vals = Map::new();
        if let Some(amount) = change.amount {
            vals.insert("expected_revenue".into(), json!(amount));
        }
        if let Some(stage) = &change.stage {
            vals.insert("stage_id".into(), json!(record_id(stage)?));
        }
        if let Some(description) = &change.description {
            vals.insert("description".into(), json!(note_html(description)));
        }
        if vals.is_empty() {
            return Ok(());
        }
        self.call(
            "opportunities.update",
            "crm.lead",
            "write",
            Some(vec![deal]),
            json!({ "vals": vals }),
        )
        .await
        .map(drop)
    }

    async fn create_note(&self, note: &NewNote) -> Result<Made, CrmError> {
        let (model, id) = match &note.deal_id {
            Some(deal) => ("crm.lead", record_id(deal)?),
            None => ("res.partner", record_id(&note.account_id)?),
        };
        let made = self
            .call(
                "notes.create",
                model,
                "message_post",
                Some(vec![id]),
                json!({
                    "body": note_html(&note.text),
                    "message_type": "comment",
                    "subtype_xmlid": "mail.mt_note",
                }),
            )
            .await?;
        Ok(Made {
            id: made_id(&made).unwrap_or_default(),
        })
    }

    async fn create_task(&self, task: &NewTask) -> Result<Made, CrmError> {
        let partner = record_id(task.contact_id.as_deref().unwrap_or(&task.account_id))?;
        let Some(model) = self.lookup("ir.model", "model", "res.partner").await? else {
            return Err(CrmError::Rejected {
                provider: PROVIDER,
                message: "ir.model has no res.partner".to_owned(),
            });
        };
        let mut vals = json!({
            "res_model_id": model,
            "res_id": partner,
            "summary": task.subject,
            "note": note_html(&task.description),
            "date_deadline": task.local_date().format("%Y-%m-%d").to_string(),
        });
        if let Some(kind) = self
            .lookup("mail.activity.type", "name", activity_type(task.kind))
            .await?
        {
            vals["activity_type_id"] = json!(kind);
        }
        let made = self
            .call(
                "tasks.create",
                "mail.activity",
                "create",
                None,
                json!({ "vals_list": [vals] }),
            )
            .await?;
        Ok(Made {
            id: made_id(&made).unwrap_or_default(),
        })
    }

    fn account_link(&self, account_id: &str) -> Option<String> {
        let id = account_id.trim().parse::<i64>().ok()?;
        Some(format!(
            "{}/web#id={id}&model=res.partner&view_type=form",
            self.keys.url
        ))
    }

    /// `search_read` on `write_date >=` the cursor (Odoo's UTC `YYYY-MM-DD HH:MM:SS`), paged
    /// by id (`id >` the last one, ordered by id). Opportunities are asked for archived or
    /// not (`active in [true, false]`): a lost one is archived, and must leave the mirror.
    async fn list_changed(
        &self,
        object: MirrorObject,
        listing: &Listing,
    ) -> Result<Listed, CrmError> {
        let mut domain = match object {
            MirrorObject::Accounts => vec![json!(["is_company", "=", true])],
            MirrorObject::Contacts => vec![json!(["is_company", "=", false])],
            MirrorObject::Deals => vec![
                json!(["type", "=", "opportunity"]),
                json!(["active", "in", [true, false]]),
            ],
        };
        if let Some(since) = listing.since {
            domain.push(json!([
                "write_date",
                ">=",
                since.format("%Y-%m-%d %H:%M:%S").to_string()
            ]));
        }
        if let Some(after) = listing.after.as_deref().and_then(|a| a.parse::<i64>().ok()) {
            domain.push(json!(["id", ">", after]));
        }
        let (operation, model, fields): (&'static str, &str, Vec<&str>) = match object {
            MirrorObject::Deals => ("opportunities.list", "crm.lead", LEAD_FIELDS.to_vec()),
            MirrorObject::Accounts => ("partners.list", "res.partner", PARTNER_FIELDS.to_vec()),
            MirrorObject::Contacts => ("partners.list", "res.partner", PARTNER_FIELDS.to_vec()),
        };
        let mut fields = fields;
        fields.push("write_date");
        let list = self
            .search_read(operation, model, json!(domain), &fields, LIST_PAGE, 0)
            .await?;
        let mut listed = Listed {
            next: if list.len() >= LIST_PAGE {
                list.last().and_then(id_of)
            } else {
                None
            },
            newest: list
                .iter()
                .filter_map(|r| text(r, "write_date").and_then(|t| parse_modified(&t)))
                .max(),
            ..Listed::default()
        };
        listed.records = match object {
            MirrorObject::Accounts => list
                .iter()
                .filter_map(account)
                .map(Record::Account)
                .collect(),
            MirrorObject::Contacts => list
                .iter()
                .filter_map(contact)
                .map(Record::Contact)
                .collect(),
            MirrorObject::Deals => {
                if list.is_empty() {
                    return Ok(listed);
                }
                let won = self.won_stages().await?;
                let companies = self.companies_of(&list).await?;
                list.iter()
                    .filter_map(|r| {
                        // A person's opportunity is their company's, as `open_deals`'s
                        // `child_of` has it (a lead of Marco's is Acme Corp's).
                        let partner = many2one(r, "partner_id")
                            .map(|(id, _)| companies.get(&id).copied().unwrap_or(id).to_string())
                            .unwrap_or_default();
                        let open = r.get("active") != Some(&Value::Bool(false))
                            && many2one(r, "stage_id")
                                .is_none_or(|(stage, _)| !won.contains(&stage));
                        deal(r, &partner).map(|deal| Record::Deal { deal, open })
                    })
                    .collect()
            }
        };
        Ok(listed)
    }
}

/// Records per listing page.
const LIST_PAGE: usize = 100;

impl Session {
    /// The company (`parent_id`) of each of these opportunities' partners that is a person
    /// of one, archived or not: one `search_read` for the page.
    async fn companies_of(
        &self,
        leads: &[Value],
    ) -> Result<std::collections::HashMap<i64, i64>, CrmError> {
        let mut ids: Vec<i64> = leads
            .iter()
            .filter_map(|r| many2one(r, "partner_id").map(|(id, _)| id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let partners = self
            .search_read(
                "partners.list",
                "res.partner",
                json!([["id", "in", ids], ["active", "in", [true, false]]]),
                &["id", "parent_id"],
                ids.len(),
                0,
            )
            .await?;
        Ok(partners
            .iter()
            .filter_map(|p| Some((p["id"].as_i64()?, many2one(p, "parent_id")?.0)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_https_servers_without_the_web_client_path() {
        assert_eq!(
            check_url("https://acme.odoo.com/odoo/").as_deref(),
            Ok("https://acme.odoo.com")
        );
        assert_eq!(
            check_url(" https://erp.acme.example:8443/web ").as_deref(),
            Ok("https://erp.acme.example:8443")
        );
        assert_eq!(
            check_url("http://127.0.0.1:8069").as_deref(),
            Ok("http://127.0.0.1:8069")
        );
        assert!(check_url("http://acme.odoo.com").is_err());
        assert!(check_url("acme.odoo.com").is_err());
        assert!(check_url("https://u:p@acme.odoo.com").is_err());
        assert!(check_url("ftp://acme.odoo.com").is_err());
    }

    #[test]
    fn errors_inside_a_200_are_classified() {
        let denied = json!({"code": 200, "message": "Odoo Server Error",
            "data": {"name": "odoo.exceptions.AccessDenied", "message": "Access Denied"}});
        assert!(matches!(rpc_error(&denied), CrmError::Refused { .. }));
        let busy = json!({"data": {"name": "werkzeug.exceptions.TooManyRequests", "message": ""}});
        assert!(matches!(rpc_error(&busy), CrmError::RateLimited { .. }));
        let other = json!({"name": "odoo.exceptions.ValidationError", "message": "bad"});
        assert!(matches!(rpc_error(&other), CrmError::Rejected { .. }));
        assert_eq!(made_id(&json!([42])).as_deref(), Some("42"));
        assert_eq!(made_id(&json!(7)).as_deref(), Some("7"));
        assert_eq!(note_html("a <b>\nc"), "a &lt;b&gt;<br>c");
    }
}
