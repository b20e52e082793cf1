//! Crono (`{CRONO_API_URL}/api/v1`), with a team's public key (`X-Api-Key`) and private key
//! (`X-Api-Secret`). Answers are wrapped `{data, isSuccess, errors}`; `isSuccess: false` is a
//! failure even with HTTP 200. Records are camelCase with `objectId`; PascalCase is accepted
//! too (both are seen, which one is canonical is unverified). Requests are sent camelCase.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Crm, CrmError, Guard};
use crate::clients::{ApiError, decode, send};
use crate::domain::crm::{
    Account, Contact, Deal, DealChange, Listed, Listing, Made, MirrorObject, NewNote, NewTask,
    Record, Stage, TaskType, parse_modified, with_domain, with_email,
};
use crate::domain::provider::Provider;

const PROVIDER: &str = "Crono";
/// Crono's closed stage ids (not "closed won").
const CLOSED_STAGES: [&str; 2] = ["closedwon", "closedlost"];
const PAGE: usize = 50;
/// Deals of one account read at most (pages of 50).
const MAX_DEAL_PAGES: usize = 20;

/// A team's Crono keys, sealed together as one secret.
#[derive(Clone, Deserialize, Serialize)]
pub struct CronoKeys {
    pub public_key: String,
    pub private_key: String,
}

impl std::fmt::Debug for CronoKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CronoKeys(..)")
    }
}

impl CronoKeys {
    pub fn seal_text(&self) -> SecretString {
        SecretString::from(serde_json::to_string(self).unwrap_or_default())
    }

    pub fn from_secret(secret: &SecretString) -> Option<Self> {
        serde_json::from_str(secret.expose_secret()).ok()
    }
}

/// Crono's endpoints; `session` binds a team's keys and guard into a `Crm`.
#[derive(Clone)]
pub struct Crono {
    http: reqwest::Client,
    base: String,
    app: String,
}

#[derive(Deserialize)]
struct Wrapped {
    #[serde(default, rename = "isSuccess", alias = "IsSuccess")]
    is_success: Option<bool>,
    #[serde(default, alias = "Data")]
    data: Value,
}

impl Crono {
    /// `api_url` is the host (`https://ext.crono.one`); `/api/v1` is appended. `app_url` is
    /// where Crono's own pages are, for links.
    pub fn new(http: reqwest::Client, api_url: &str, app_url: &str) -> Self {
        Self {
            http,
            base: format!("{}/api/v1", api_url.trim_end_matches('/')),
            app: app_url.trim_end_matches('/').to_owned(),
        }
    }

    fn request(
        &self,
        keys: &CronoKeys,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .timeout(std::time::Duration::from_secs(20))
            .header("X-Api-Key", &keys.public_key)
            .header("X-Api-Secret", &keys.private_key)
    }

    /// Checks a pair of keys with `GET /Users`. An answer of `isSuccess: false` is a refusal
    /// even when it comes with HTTP 200.
    pub async fn check(&self, keys: &CronoKeys) -> Result<(), ApiError> {
        let body = send(
            PROVIDER,
            "users.list",
            self.request(keys, reqwest::Method::GET, "/Users"),
        )
        .await?;
        let answer: Wrapped = decode(PROVIDER, &body)?;
        match answer.is_success {
            Some(false) => Err(ApiError::Unauthorized {
                provider: PROVIDER,
                status: 200,
            }),
            _ => Ok(()),
        }
    }

    /// The team's Crono, as the CRM interface.
    pub fn session(&self, keys: CronoKeys, guard: Guard) -> Arc<dyn Crm> {
        Arc::new(Session {
            crono: self.clone(),
            keys,
            guard,
        })
    }
}

struct Session {
    crono: Crono,
    keys: CronoKeys,
    guard: Guard,
}

impl Session {
    /// One call through the guard; the unwrapped `data`.
    async fn call(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CrmError> {
        self.guard
            .run(operation, || {
                let mut request = self.crono.request(&self.keys, method.clone(), path);
                if let Some(body) = &body {
                    request = request.json(body);
                }
                async move {
                    let text = send(PROVIDER, operation, request).await?;
                    let answer: Value = decode(PROVIDER, &text)?;
                    // Wrapped `{data, isSuccess, errors}`, or (unverified) the bare records.
                    let wrapped = ["data", "Data", "isSuccess", "IsSuccess"]
                        .iter()
                        .any(|k| answer.get(k).is_some());
                    if !wrapped {
                        return Ok(answer);
                    }
                    let wrapped: Wrapped =
                        serde_json::from_value(answer).map_err(|e| CrmError::Decode {
                            provider: PROVIDER,
                            detail: crate::telemetry::parse_error(&e.to_string()),
                        })?;
                    if wrapped.is_success == Some(false) {
                        let message: String = text.chars().take(300).collect();
                        return Err(CrmError::Rejected {
                            provider: PROVIDER,
                            message,
                        });
                    }
                    Ok(wrapped.data)
                }
            })
            .await
    }

    async fn post(
        &self,
        operation: &'static str,
        path: &str,
        body: Value,
    ) -> Result<Value, CrmError> {
        self.call(operation, reqwest::Method::POST, path, Some(body))
            .await
    }

    async fn search_prospects(&self, filter: Value) -> Result<Vec<Contact>, CrmError> {
        let data = self
            .post("prospects.search", "/Prospects/search", filter)
            .await?;
        Ok(records(&data).iter().filter_map(contact).collect())
    }
}

/// The records of an answer's `data` (a list, or `{items|records: [...]}`).
fn records(data: &Value) -> Vec<Value> {
    if let Some(list) = data.as_array() {
        return list.clone();
    }
    for key in ["items", "Items", "records", "Records", "data", "Data"] {
        if let Some(list) = data.get(key).and_then(Value::as_array) {
            return list.clone();
        }
    }
    Vec::new()
}

/// A field in camelCase or PascalCase.
fn field<'a>(record: &'a Value, camel: &str) -> Option<&'a Value> {
    record.get(camel).filter(|v| !v.is_null()).or_else(|| {
        let mut pascal = camel.to_owned();
        if let Some(first) = pascal.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        record.get(&pascal).filter(|v| !v.is_null())
    })
}

fn text(record: &Value, camel: &str) -> Option<String> {
    match field(record, camel)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn id_of(record: &Value) -> Option<String> {
    text(record, "objectId").or_else(|| text(record, "id"))
}

fn account(record: &Value) -> Option<Account> {
    Some(Account {
        id: id_of(record)?,
        name: text(record, "name").unwrap_or_else(|| "(no name)".to_owned()),
        website: text(record, "website"),
    })
}

fn contact(record: &Value) -> Option<Contact> {
    let name = text(record, "name").unwrap_or_else(|| {
        [text(record, "firstName"), text(record, "lastName")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    });
    let nested = field(record, "account");
    Some(Contact {
        id: id_of(record)?,
        name,
        email: text(record, "email"),
        account_id: text(record, "accountId").or_else(|| nested.and_then(id_of)),
        account_name: nested
            .and_then(|a| text(a, "name"))
            .or_else(|| text(record, "accountName")),
    })
}

fn number(record: &Value, camel: &str) -> Option<f64> {
    match field(record, camel)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn deal(record: &Value, account_id: &str) -> Option<Deal> {
    Some(Deal {
        id: id_of(record)?,
        account_id: text(record, "accountId").unwrap_or_else(|| account_id.to_owned()),
        name: text(record, "name").unwrap_or_else(|| "(no name)".to_owned()),
        stage: text(record, "stage").unwrap_or_default(),
        amount: number(record, "amount"),
        currency: text(record, "currency"),
        close_date: text(record, "closeDate"),
    })
}

fn is_closed_stage(stage: &str) -> bool {
    CLOSED_STAGES.contains(&stage.trim().to_ascii_lowercase().as_str())
}

fn flag(record: &Value, camel: &str) -> bool {
    field(record, camel).and_then(Value::as_bool) == Some(true)
}

/// Crono's task type as sent (strings are what its app shows; integers are also seen).
fn task_type(kind: TaskType) -> &'static str {
    match kind {
        TaskType::Email => "Email",
        TaskType::Call => "Call",
        TaskType::Linkedin => "Linkedin",
        TaskType::Inmail => "InMail",
    }
}

fn pagination(limit: usize, offset: usize) -> Value {
    json!({ "limit": limit, "offset": offset })
}

#[async_trait]
impl Crm for Session {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn provider(&self) -> Provider {
        Provider::Crono
    }

    async fn search_accounts(&self, query: &str, limit: usize) -> Result<Vec<Account>, CrmError> {
        let body = json!({ "name": query, "pagination": pagination(limit.min(PAGE), 0) });
        let data = self
            .post("accounts.search", "/Accounts/search", body)
            .await?;
        Ok(records(&data).iter().filter_map(account).collect())
    }

    async fn search_contacts(&self, query: &str, limit: usize) -> Result<Vec<Contact>, CrmError> {
        self.search_prospects(json!({
            "name": query,
            "pagination": pagination(limit.min(PAGE), 0),
            "includes": { "withAccount": true },
        }))
        .await
    }

    async fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, CrmError> {
        let found = self
            .search_prospects(json!({
                "email": email,
                "pagination": pagination(10, 0),
                "includes": { "withAccount": true },
            }))
            .await?;
        // The filter is the CRM's; exactness is ours.
        Ok(with_email(found, email))
    }

    async fn accounts_by_domain(&self, domain: &str) -> Result<Vec<Account>, CrmError> {
        // Crono's search is by name: search the domain's stem, keep exact website matches.
        let stem = crate::domain::crm::domain_stem(domain);
        let found = self.search_accounts(stem, PAGE).await?;
        Ok(with_domain(found, domain))
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, CrmError> {
        let path = format!("/Accounts/{}", urlencode(id));
        match self
            .call("accounts.get", reqwest::Method::GET, &path, None)
            .await
        {
            Ok(data) => Ok(account(&data)),
            Err(CrmError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn open_deals(&self, account_id: &str) -> Result<Vec<Deal>, CrmError> {
        let mut open = Vec::new();
        for page in 0..MAX_DEAL_PAGES {
            let body = json!({
                "accountId": account_id,
                "isClosed": false,
                "pagination": pagination(PAGE, page * PAGE),
                "includes": { "withAccount": null },
            });
            let data = self
                .post("opportunities.search", "/Opportunities/search", body)
                .await?;
            let list = records(&data);
            let count = list.len();
            open.extend(
                list.iter()
                    .filter(|r| !flag(r, "isClosed") && !flag(r, "isWon"))
                    .filter_map(|r| deal(r, account_id))
                    .filter(|d| d.account_id == account_id && !is_closed_stage(&d.stage)),
            );
            if count < PAGE {
                break;
            }
        }
        Ok(open)
    }

    async fn stages(&self) -> Result<Vec<Stage>, CrmError> {
        // UNVERIFIED endpoint; a CRM without it gets the stages seen on its deals instead.
        let data = match self
            .call(
                "opportunities.stages",
                reqwest::Method::GET,
                "/Opportunities/stages",
                None,
            )
            .await
        {
            Ok(data) => data,
            Err(CrmError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(records(&data)
            .iter()
            .filter_map(|r| {
                let (id, label) = match r {
                    Value::String(s) => (s.clone(), s.clone()),
                    r => {
                        let id = text(r, "id")
                            .or_else(|| text(r, "value"))
                            .or_else(|| id_of(r))?;
                        let label = text(r, "name")
                            .or_else(|| text(r, "label"))
                            .unwrap_or_else(|| id.clone());
                        (id, label)
                    }
                };
                let closed = is_closed_stage(&id) || flag(r, "isClosed") || flag(r, "isWon");
                Some(Stage { id, label, closed })
            })
            .collect())
    }

    async fn update_deal(&self, change: &DealChange) -> Result<(), CrmError> {
        let mut data = json!({
            "opportunityId": change.deal_id,
            "accountId": change.account_id,
        });
        if let Some(amount) = change.amount {
            data["amount"] = json!(amount);
        }
        if let Some(stage) = &change.stage {
            data["stage"] = json!(stage);
        }
        if let Some(description) = &change.description {
            data["description"] = json!(description);
        }
        self.call(
            "opportunities.update",
            reqwest::Method::PATCH,
            "/Opportunities",
            Some(json!({ "data": data })),
        )
        .await
        .map(drop)
    }

    async fn create_note(&self, note: &NewNote) -> Result<Made, CrmError> {
        let mut data = json!({ "accountId": note.account_id, "description": note.text });
        if let Some(deal) = &note.deal_id {
            data["opportunityId"] = json!(deal);
        }
        if !note.contact_ids.is_empty() {
            data["prospectIds"] = json!(note.contact_ids);
        }
        let made = self
            .post("notes.create", "/Notes", json!({ "data": data }))
            .await?;
        Ok(Made {
            id: id_of(&made).unwrap_or_default(),
        })
    }

    async fn create_task(&self, task: &NewTask) -> Result<Made, CrmError> {
        let data = json!({
            "accountId": task.account_id,
            "prospectId": task.contact_id,
            "type": task_type(task.kind),
            "subject": task.subject,
            "description": task.description,
            "activityDate": task.due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "automatic": false,
        });
        let made = self
            .post("tasks.create", "/Tasks", json!({ "data": data }))
            .await?;
        Ok(Made {
            id: id_of(&made).unwrap_or_default(),
        })
    }

    fn account_link(&self, account_id: &str) -> Option<String> {
        (!self.crono.app.is_empty())
            .then(|| format!("{}/account/{}", self.crono.app, urlencode(account_id)))
    }

    /// `POST /{Accounts|Prospects|Opportunities}/search` with `lastModifiedDateFrom` (the
    /// filter's name is unverified: the records' `lastModifiedDate` is checked here as well,
    /// so a Crono that ignores it costs pages, not correctness). Crono pages by offset only;
    /// the next page starts `OVERLAP` records early, so a record deleted between two pages
    /// does not shift an unseen one past us (repeats are harmless upserts).
    async fn list_changed(
        &self,
        object: MirrorObject,
        listing: &Listing,
    ) -> Result<Listed, CrmError> {
        let offset: usize = listing
            .after
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let mut body = json!({ "pagination": pagination(PAGE, offset) });
        if let Some(since) = listing.since {
            body["lastModifiedDateFrom"] =
                json!(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        let (operation, path) = match object {
            MirrorObject::Accounts => ("accounts.list", "/Accounts/search"),
            MirrorObject::Contacts => {
                body["includes"] = json!({ "withAccount": true });
                ("prospects.list", "/Prospects/search")
            }
            MirrorObject::Deals => ("opportunities.list", "/Opportunities/search"),
        };
        let data = self.post(operation, path, body).await?;
        let list = records(&data);
        let modified = |r: &Value| text(r, "lastModifiedDate").and_then(|t| parse_modified(&t));
        let mut listed = Listed {
            next: (list.len() >= PAGE).then(|| (offset + list.len() - OVERLAP).to_string()),
            ..Listed::default()
        };
        for r in &list {
            let changed = modified(r);
            if let (Some(since), Some(at)) = (listing.since, changed)
                && at < since
            {
                continue;
            }
            listed.newest = listed.newest.max(changed);
            let record = match object {
                MirrorObject::Accounts => account(r).map(Record::Account),
                MirrorObject::Contacts => contact(r).map(Record::Contact),
                MirrorObject::Deals => deal(r, "").map(|d| Record::Deal {
                    open: !flag(r, "isClosed") && !flag(r, "isWon") && !is_closed_stage(&d.stage),
                    deal: d,
                }),
            };
            listed.records.extend(record);
        }
        Ok(listed)
    }
}

/// How many records each listing page repeats of the one before.
const OVERLAP: usize = 5;

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
