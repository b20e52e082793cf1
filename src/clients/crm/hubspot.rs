//! HubSpot CRM v3 (`{HUBSPOT_API_URL}/crm/v3`), with a team's OAuth access token. Companies
//! are the accounts, contacts the contacts (their company is `associatedcompanyid`: HubSpot
//! gives the id only, so the name comes from the company when it is needed), deals are found
//! by `associations.company`. Which stages are closed comes from the deal pipelines
//! (`metadata.isClosed`), never from a stage's id or label: portals name their own. Notes and
//! tasks are associated with the HubSpot-defined association type ids.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::oauth::OAuthApp;
use super::{Crm, CrmError, Guard};
use crate::clients::{decode, send};
use crate::domain::crm::{
    Account, Contact, Deal, DealChange, Listed, Listing, Made, MirrorObject, NewNote, NewTask,
    Record, Stage, TaskType, parse_modified, website_domain, with_email,
};
use crate::domain::provider::Provider;

const PROVIDER: &str = "HubSpot";
/// What the bot asks HubSpot for.
pub const SCOPES: [&str; 7] = [
    "oauth",
    "crm.objects.owners.read",
    "crm.objects.companies.read",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
];
const PAGE: usize = 100;
const MAX_DEAL_PAGES: usize = 20;
const COMPANY_PROPERTIES: [&str; 3] = ["name", "domain", "website"];
const CONTACT_PROPERTIES: [&str; 4] = ["firstname", "lastname", "email", "associatedcompanyid"];
const DEAL_PROPERTIES: [&str; 6] = [
    "dealname",
    "dealstage",
    "amount",
    "closedate",
    "deal_currency_code",
    "pipeline",
];

// HubSpot-defined association type ids.
const NOTE_TO_COMPANY: u32 = 190;
const NOTE_TO_CONTACT: u32 = 202;
const NOTE_TO_DEAL: u32 = 214;
const TASK_TO_COMPANY: u32 = 192;
const TASK_TO_CONTACT: u32 = 204;

#[derive(Clone)]
pub struct HubSpot {
    http: reqwest::Client,
    api: String,
    /// `None` without `HUBSPOT_CLIENT_ID`/`SECRET` (or `PUBLIC_BASE_URL`).
    pub oauth: Option<OAuthApp>,
}

impl HubSpot {
    pub fn new(http: reqwest::Client, api_url: &str, oauth: Option<OAuthApp>) -> Self {
        Self {
            http,
            api: api_url.trim_end_matches('/').to_owned(),
            oauth,
        }
    }

    pub fn session(&self, access: SecretString, guard: Guard) -> Arc<dyn Crm> {
        Arc::new(Session {
            hubspot: self.clone(),
            access,
            guard,
        })
    }
}

struct Session {
    hubspot: HubSpot,
    access: SecretString,
    guard: Guard,
}

impl Session {
    async fn call(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CrmError> {
        self.guard
            .run(operation, || {
                let mut request = self
                    .hubspot
                    .http
                    .request(method.clone(), format!("{}{path}", self.hubspot.api))
                    .timeout(std::time::Duration::from_secs(20))
                    .bearer_auth(self.access.expose_secret());
                if let Some(body) = &body {
                    request = request.json(body);
                }
                async move {
                    let text = send(PROVIDER, operation, request).await?;
                    if text.trim().is_empty() {
                        return Ok(Value::Null);
                    }
                    Ok(decode::<Value>(PROVIDER, &text)?)
                }
            })
            .await
    }

    async fn search(
        &self,
        operation: &'static str,
        object: &str,
        body: Value,
    ) -> Result<(Vec<Value>, Option<String>), CrmError> {
        let answer = self
            .call(
                operation,
                reqwest::Method::POST,
                &format!("/crm/v3/objects/{object}/search"),
                Some(body),
            )
            .await?;
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        let after = answer["paging"]["next"]["after"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                answer["paging"]["next"]["after"]
                    .as_u64()
                    .map(|n| n.to_string())
            });
        Ok((results, after))
    }

    async fn companies(&self, body: Value) -> Result<Vec<Account>, CrmError> {
        let (found, _) = self.search("companies.search", "companies", body).await?;
        Ok(found.iter().filter_map(company).collect())
    }

    async fn contacts(&self, body: Value) -> Result<Vec<Contact>, CrmError> {
        let (found, _) = self.search("contacts.search", "contacts", body).await?;
        Ok(found.iter().filter_map(contact).collect())
    }
}

fn prop(record: &Value, name: &str) -> Option<String> {
    match &record["properties"][name] {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn id_of(record: &Value) -> Option<String> {
    match &record["id"] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn company(record: &Value) -> Option<Account> {
    let domain = prop(record, "domain");
    Some(Account {
        id: id_of(record)?,
        name: prop(record, "name")
            .or_else(|| domain.clone())
            .unwrap_or_else(|| "(no name)".to_owned()),
        website: prop(record, "website").or(domain),
    })
}

fn contact(record: &Value) -> Option<Contact> {
    let name = [prop(record, "firstname"), prop(record, "lastname")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Some(Contact {
        id: id_of(record)?,
        name,
        email: prop(record, "email"),
        account_id: prop(record, "associatedcompanyid"),
        account_name: None,
    })
}

fn deal(record: &Value, account_id: &str) -> Option<Deal> {
    Some(Deal {
        id: id_of(record)?,
        account_id: account_id.to_owned(),
        name: prop(record, "dealname").unwrap_or_else(|| "(no name)".to_owned()),
        stage: prop(record, "dealstage").unwrap_or_default(),
        amount: prop(record, "amount").and_then(|a| a.parse().ok()),
        currency: prop(record, "deal_currency_code"),
        close_date: prop(record, "closedate").map(|d| d.chars().take(10).collect()),
    })
}

fn eq(property: &str, value: &str) -> Value {
    json!({ "filters": [{ "propertyName": property, "operator": "EQ", "value": value }] })
}

fn association(id: &str, type_id: u32) -> Value {
    json!({
        "to": { "id": id },
        "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id }]
    })
}

fn task_type(kind: TaskType) -> &'static str {
    match kind {
        TaskType::Email => "EMAIL",
        TaskType::Call => "CALL",
        TaskType::Linkedin | TaskType::Inmail => "TODO",
    }
}

/// Plain text as the HTML HubSpot's note and task bodies hold.
fn html(text: &str) -> String {
    crate::clients::google::escape_html(text).replace('\n', "<br>")
}

#[async_trait]
impl Crm for Session {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn provider(&self) -> Provider {
        Provider::Hubspot
    }

    async fn search_accounts(&self, query: &str, limit: usize) -> Result<Vec<Account>, CrmError> {
        self.companies(json!({
            "query": query,
            "properties": COMPANY_PROPERTIES,
            "limit": limit.clamp(1, PAGE),
        }))
        .await
    }

    async fn search_contacts(&self, query: &str, limit: usize) -> Result<Vec<Contact>, CrmError> {
        self.contacts(json!({
            "query": query,
            "properties": CONTACT_PROPERTIES,
            "limit": limit.clamp(1, PAGE),
        }))
        .await
    }

    async fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, CrmError> {
        let found = self
            .contacts(json!({
                "filterGroups": [eq("email", email.trim())],
                "properties": CONTACT_PROPERTIES,
                "limit": 10,
            }))
            .await?;
        Ok(with_email(found, email))
    }

    async fn accounts_by_domain(&self, domain: &str) -> Result<Vec<Account>, CrmError> {
        let found = self
            .search(
                "companies.search",
                "companies",
                json!({
                    "filterGroups": [eq("domain", domain), eq("website", domain)],
                    "properties": COMPANY_PROPERTIES,
                    "limit": 50,
                }),
            )
            .await?
            .0;
        Ok(found
            .iter()
            .filter(|r| {
                [prop(r, "domain"), prop(r, "website")]
                    .iter()
                    .flatten()
                    .filter_map(|w| website_domain(w))
                    .any(|w| w == domain)
            })
            .filter_map(company)
            .collect())
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, CrmError> {
        let path = format!(
            "/crm/v3/objects/companies/{}?properties={}",
            urlencode(id),
            COMPANY_PROPERTIES.join(",")
        );
        match self
            .call("companies.get", reqwest::Method::GET, &path, None)
            .await
        {
            Ok(record) => Ok(company(&record)),
            Err(CrmError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn open_deals(&self, account_id: &str) -> Result<Vec<Deal>, CrmError> {
        let closed: Vec<String> = self
            .stages()
            .await?
            .into_iter()
            .filter(|s| s.closed)
            .map(|s| s.id)
            .collect();
        let mut open = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_DEAL_PAGES {
            let mut body = json!({
                "filterGroups": [eq("associations.company", account_id)],
                "properties": DEAL_PROPERTIES,
                "limit": PAGE,
            });
            if let Some(after) = &after {
                body["after"] = json!(after);
            }
            let (found, next) = self.search("deals.search", "deals", body).await?;
            open.extend(
                found
                    .iter()
                    .filter_map(|r| deal(r, account_id))
                    .filter(|d| !closed.contains(&d.stage)),
            );
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(open)
    }

    async fn stages(&self) -> Result<Vec<Stage>, CrmError> {
        let answer = self
            .call(
                "pipelines.list",
                reqwest::Method::GET,
                "/crm/v3/pipelines/deals",
                None,
            )
            .await?;
        let pipelines = answer["results"].as_array().cloned().unwrap_or_default();
        let several = pipelines.len() > 1;
        let mut stages = Vec::new();
        for pipeline in &pipelines {
            let pipeline_label = pipeline["label"].as_str().unwrap_or_default();
            for stage in pipeline["stages"].as_array().into_iter().flatten() {
                let Some(id) = stage["id"].as_str().map(str::to_owned) else {
                    continue;
                };
                let label = stage["label"].as_str().unwrap_or(&id).to_owned();
                // `"true"` as a string, as HubSpot sends it (a boolean accepted too).
                let closed = match &stage["metadata"]["isClosed"] {
                    Value::String(s) => s.eq_ignore_ascii_case("true"),
                    Value::Bool(b) => *b,
                    _ => false,
                };
                stages.push(Stage {
                    label: if several {
                        format!("{pipeline_label}: {label}")
                    } else {
                        label
                    },
                    id,
                    closed,
                });
            }
        }
        Ok(stages)
    }

    async fn update_deal(&self, change: &DealChange) -> Result<(), CrmError> {
        let mut properties = serde_json::Map::new();
        if let Some(amount) = change.amount {
            properties.insert("amount".into(), json!(amount.to_string()));
        }
        if let Some(stage) = &change.stage {
            properties.insert("dealstage".into(), json!(stage));
        }
        if let Some(description) = &change.description {
            properties.insert("description".into(), json!(description));
        }
        if properties.is_empty() {
            return Ok(());
        }
        self.call(
            "deals.update",
            reqwest::Method::PATCH,
            &format!("/crm/v3/objects/deals/{}", urlencode(&change.deal_id)),
            Some(json!({ "properties": properties })),
        )
        .await
        .map(drop)
    }

    async fn create_note(&self, note: &NewNote) -> Result<Made, CrmError> {
        let mut associations = vec![association(&note.account_id, NOTE_TO_COMPANY)];
        associations.extend(
            note.contact_ids
                .iter()
                .map(|c| association(c, NOTE_TO_CONTACT)),
        );
        if let Some(deal) = &note.deal_id {
            associations.push(association(deal, NOTE_TO_DEAL));
        }
        let made = self
            .call(
                "notes.create",
                reqwest::Method::POST,
                "/crm/v3/objects/notes",
                Some(json!({
                    "properties": {
                        "hs_timestamp": chrono::Utc::now()
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "hs_note_body": html(&note.text),
                    },
                    "associations": associations,
                })),
            )
            .await?;
        Ok(Made {
            id: id_of(&made).unwrap_or_default(),
        })
    }

    async fn create_task(&self, task: &NewTask) -> Result<Made, CrmError> {
        let mut associations = vec![association(&task.account_id, TASK_TO_COMPANY)];
        if let Some(contact) = &task.contact_id {
            associations.push(association(contact, TASK_TO_CONTACT));
        }
        let made = self
            .call(
                "tasks.create",
                reqwest::Method::POST,
                "/crm/v3/objects/tasks",
                Some(json!({
                    "properties": {
                        "hs_timestamp": task.due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "hs_task_subject": task.subject,
                        "hs_task_body": html(&task.description),
                        "hs_task_status": "NOT_STARTED",
                        "hs_task_priority": "MEDIUM",
                        "hs_task_type": task_type(task.kind),
                    },
                    "associations": associations,
                })),
            )
            .await?;
        Ok(Made {
            id: id_of(&made).unwrap_or_default(),
        })
    }

    fn account_link(&self, _account_id: &str) -> Option<String> {
        // A record's page needs the portal id, which the token answer does not carry.
        None
    }

    /// The search endpoint filtered on the modified-since property (`lastmodifieddate` for
    /// contacts, `hs_lastmodifieddate` for companies and deals) and paged by id
    /// (`hs_object_id GT` the last one, ascending), not by `after`: a search pages through
    /// at most 10,000 results, and a keyset has no such end. A deal's company comes from the
    /// v4 associations (one batch read per page), its openness from the pipelines' stages.
    async fn list_changed(
        &self,
        object: MirrorObject,
        listing: &Listing,
    ) -> Result<Listed, CrmError> {
        let (kind, modified, properties): (&str, &str, Vec<&str>) = match object {
            MirrorObject::Accounts => (
                "companies",
                "hs_lastmodifieddate",
                COMPANY_PROPERTIES.to_vec(),
            ),
            MirrorObject::Contacts => ("contacts", "lastmodifieddate", CONTACT_PROPERTIES.to_vec()),
            MirrorObject::Deals => ("deals", "hs_lastmodifieddate", DEAL_PROPERTIES.to_vec()),
        };
        let mut properties = properties;
        properties.push(modified);
        let mut filters = Vec::new();
        if let Some(since) = listing.since {
            filters.push(json!({ "propertyName": modified, "operator": "GTE",
                                 "value": since.timestamp_millis().to_string() }));
        }
        if let Some(after) = &listing.after {
            filters.push(json!({ "propertyName": "hs_object_id", "operator": "GT",
                                 "value": after }));
        }
        let mut body = json!({
            "properties": properties,
            "sorts": [{ "propertyName": "hs_object_id", "direction": "ASCENDING" }],
            "limit": LIST_PAGE,
        });
        if !filters.is_empty() {
            body["filterGroups"] = json!([{ "filters": filters }]);
        }
        let operation = match object {
            MirrorObject::Accounts => "companies.search",
            MirrorObject::Contacts => "contacts.search",
            MirrorObject::Deals => "deals.search",
        };
        let (found, _) = self.search(operation, kind, body).await?;
        let mut listed = Listed {
            next: if found.len() >= LIST_PAGE {
                found.last().and_then(id_of)
            } else {
                None
            },
            newest: found
                .iter()
                .filter_map(|r| prop(r, modified).and_then(|t| hubspot_time(&t)))
                .max(),
            ..Listed::default()
        };
        match object {
            MirrorObject::Accounts => {
                listed.records = found
                    .iter()
                    .filter_map(company)
                    .map(Record::Account)
                    .collect();
            }
            MirrorObject::Contacts => {
                listed.records = found
                    .iter()
                    .filter_map(contact)
                    .map(Record::Contact)
                    .collect();
            }
            MirrorObject::Deals => {
                if found.is_empty() {
                    return Ok(listed);
                }
                let closed: Vec<String> = self
                    .stages()
                    .await?
                    .into_iter()
                    .filter(|s| s.closed)
                    .map(|s| s.id)
                    .collect();
                let ids: Vec<String> = found.iter().filter_map(id_of).collect();
                let companies = self.deal_companies(&ids).await?;
                listed.records = found
                    .iter()
                    .filter_map(|r| {
                        let id = id_of(r)?;
                        let company = companies
                            .iter()
                            .find(|(deal, _)| *deal == id)
                            .map(|(_, c)| c.as_str())
                            .unwrap_or("");
                        deal(r, company)
                    })
                    .map(|d| Record::Deal {
                        open: !closed.contains(&d.stage),
                        deal: d,
                    })
                    .collect();
            }
        }
        Ok(listed)
    }
}

/// Records per listing page (a search allows 200).
const LIST_PAGE: usize = 100;

/// HubSpot's times: ISO 8601, or epoch milliseconds.
fn hubspot_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    parse_modified(text).or_else(|| {
        text.parse::<i64>()
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
    })
}

impl Session {
    /// (deal id, company id) of each deal with a company: `POST
    /// /crm/v4/associations/deals/companies/batch/read`.
    async fn deal_companies(&self, deals: &[String]) -> Result<Vec<(String, String)>, CrmError> {
        let inputs: Vec<Value> = deals.iter().map(|id| json!({ "id": id })).collect();
        let answer = self
            .call(
                "associations.read",
                reqwest::Method::POST,
                "/crm/v4/associations/deals/companies/batch/read",
                Some(json!({ "inputs": inputs })),
            )
            .await?;
        let mut out = Vec::new();
        for result in answer["results"].as_array().into_iter().flatten() {
            let from = match &result["from"]["id"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            let to = result["to"].as_array().and_then(|t| t.first()).and_then(
                |t| match &t["toObjectId"] {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                },
            );
            if let Some(to) = to {
                out.push((from, to));
            }
        }
        Ok(out)
    }
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
