//! Zoho CRM v8 (`{api_domain}/crm/v8`, the data centre's API host stored per team from the
//! token answer), with `Authorization: Zoho-oauthtoken <access token>`. Searches answer 204
//! with no body when nothing matches: that is "none". Writes answer per record
//! (`data[].status`), so a 200/202 may still carry a refused record. Which stages are closed
//! comes from the Deals module's Stage picklist (`forecast_type` / `forecast_category`, a
//! name starting with "Closed" only when Zoho sends neither: UNVERIFIED which one every
//! edition sends).

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::oauth::OAuthApp;
use super::{Crm, CrmError, Guard};
use crate::clients::{decode, send};
use crate::domain::crm::{
    Account, Contact, Deal, DealChange, Listed, Listing, Made, MirrorObject, NewNote, NewTask,
    Record, Stage, parse_modified, with_domain, with_email,
};
use crate::domain::provider::Provider;

const PROVIDER: &str = "Zoho CRM";
/// Zoho wants its scopes separated by commas: one value.
pub const SCOPES: [&str; 1] = ["ZohoCRM.modules.ALL,ZohoCRM.settings.fields.READ"];
const PAGE: usize = 200;
const MAX_DEAL_PAGES: usize = 10;

#[derive(Clone)]
pub struct Zoho {
    http: reqwest::Client,
    /// `None` without `ZOHO_CLIENT_ID`/`SECRET` (or `PUBLIC_BASE_URL`).
    pub oauth: Option<OAuthApp>,
    /// The accounts servers a callback may name (the client secret is only sent there).
    pub accounts_servers: Vec<String>,
}

impl Zoho {
    pub fn new(
        http: reqwest::Client,
        oauth: Option<OAuthApp>,
        accounts_servers: Vec<String>,
    ) -> Self {
        Self {
            http,
            oauth,
            accounts_servers,
        }
    }

    /// The callback's `accounts-server`, when it is one of the allowed ones.
    pub fn allowed_accounts_server(&self, server: &str) -> Option<String> {
        let server = server.trim().trim_end_matches('/');
        self.accounts_servers
            .iter()
            .find(|s| s.trim_end_matches('/').eq_ignore_ascii_case(server))
            .map(|s| s.trim_end_matches('/').to_owned())
    }

    /// `api_domain` is the team's (`https://www.zohoapis.eu`).
    pub fn session(&self, api_domain: &str, access: SecretString, guard: Guard) -> Arc<dyn Crm> {
        Arc::new(Session {
            zoho: self.clone(),
            base: format!("{}/crm/v8", api_domain.trim_end_matches('/')),
            api_domain: api_domain.trim_end_matches('/').to_owned(),
            access,
            guard,
        })
    }
}

struct Session {
    zoho: Zoho,
    base: String,
    api_domain: String,
    access: SecretString,
    guard: Guard,
}

impl Session {
    /// One call through the guard; `Null` for Zoho's 204 (nothing found).
    async fn call(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CrmError> {
        self.call_since(operation, method, path, body, None).await
    }

    /// `call`, with `If-Modified-Since` when `since` is given (304 reads as nothing).
    async fn call_since(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Value, CrmError> {
        self.guard
            .run(operation, || {
                let mut request = self
                    .zoho
                    .http
                    .request(method.clone(), format!("{}{path}", self.base))
                    .timeout(std::time::Duration::from_secs(20))
                    .header(
                        "Authorization",
                        format!("Zoho-oauthtoken {}", self.access.expose_secret()),
                    );
                if let Some(body) = &body {
                    request = request.json(body);
                }
                if let Some(since) = since {
                    request = request.header(
                        "If-Modified-Since",
                        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    );
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

    async fn get(&self, operation: &'static str, path: &str) -> Result<Vec<Value>, CrmError> {
        let answer = self
            .call(operation, reqwest::Method::GET, path, None)
            .await?;
        Ok(answer["data"].as_array().cloned().unwrap_or_default())
    }

    /// A write of one record; its id, or the record's refusal.
    async fn write(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        module: &str,
        record: Value,
    ) -> Result<Made, CrmError> {
        let answer = self
            .call(
                operation,
                method,
                &format!("/{module}"),
                Some(json!({ "data": [record] })),
            )
            .await?;
        let first = &answer["data"][0];
        if first["status"].as_str() != Some("success") {
            return Err(CrmError::Rejected {
                provider: PROVIDER,
                message: first.to_string().chars().take(300).collect(),
            });
        }
        Ok(Made {
            id: text(&first["details"], "id").unwrap_or_default(),
        })
    }
}

fn text(record: &Value, key: &str) -> Option<String> {
    match record.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn account(record: &Value) -> Option<Account> {
    Some(Account {
        id: text(record, "id")?,
        name: text(record, "Account_Name").unwrap_or_else(|| "(no name)".to_owned()),
        website: text(record, "Website"),
    })
}

fn contact(record: &Value) -> Option<Contact> {
    let name = text(record, "Full_Name").unwrap_or_else(|| {
        [text(record, "First_Name"), text(record, "Last_Name")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    });
    let account = &record["Account_Name"];
    Some(Contact {
        id: text(record, "id")?,
        name,
        email: text(record, "Email"),
        account_id: text(account, "id"),
        account_name: text(account, "name"),
    })
}

fn deal(record: &Value, account_id: &str) -> Option<Deal> {
    Some(Deal {
        id: text(record, "id")?,
        account_id: account_id.to_owned(),
        name: text(record, "Deal_Name").unwrap_or_else(|| "(no name)".to_owned()),
        stage: text(record, "Stage").unwrap_or_default(),
        amount: record["Amount"].as_f64(),
        currency: text(record, "Currency"),
        close_date: text(record, "Closing_Date"),
    })
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// Zoho's search words: at least two characters, and no parentheses or commas (criteria
/// syntax).
fn search_word(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '(' | ')' | ',' | '\\'))
        .collect::<String>()
        .trim()
        .to_owned()
}

#[async_trait]
impl Crm for Session {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn provider(&self) -> Provider {
        Provider::Zoho
    }

    async fn search_accounts(
        &self,
        query_text: &str,
        limit: usize,
    ) -> Result<Vec<Account>, CrmError> {
        let word = search_word(query_text);
        if word.chars().count() < 2 {
            return Ok(Vec::new());
        }
        let per_page = limit.clamp(1, PAGE).to_string();
        let found = self
            .get(
                "accounts.search",
                &format!(
                    "/Accounts/search?{}",
                    query(&[("word", &word), ("per_page", &per_page)])
                ),
            )
            .await?;
        Ok(found.iter().filter_map(account).collect())
    }

    async fn search_contacts(
        &self,
        query_text: &str,
        limit: usize,
    ) -> Result<Vec<Contact>, CrmError> {
        let word = search_word(query_text);
        if word.chars().count() < 2 {
            return Ok(Vec::new());
        }
        let per_page = limit.clamp(1, PAGE).to_string();
        let found = self
            .get(
                "contacts.search",
                &format!(
                    "/Contacts/search?{}",
                    query(&[("word", &word), ("per_page", &per_page)])
                ),
            )
            .await?;
        Ok(found.iter().filter_map(contact).collect())
    }

    async fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, CrmError> {
        let found = self
            .get(
                "contacts.search",
                &format!("/Contacts/search?{}", query(&[("email", email.trim())])),
            )
            .await?;
        Ok(with_email(found.iter().filter_map(contact), email))
    }

    async fn accounts_by_domain(&self, domain: &str) -> Result<Vec<Account>, CrmError> {
        // Websites are stored as typed ("https://www.acme.com/"): search the domain's stem,
        // keep exact website matches.
        let stem = crate::domain::crm::domain_stem(domain);
        let found = self.search_accounts(stem, PAGE).await?;
        Ok(with_domain(found, domain))
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, CrmError> {
        match self
            .get("accounts.get", &format!("/Accounts/{}", urlencode(id)))
            .await
        {
            Ok(found) => Ok(found.first().and_then(account)),
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
        for page in 1..=MAX_DEAL_PAGES {
            let answer = self
                .call(
                    "deals.of_account",
                    reqwest::Method::GET,
                    &format!(
                        "/Accounts/{}/Deals?{}",
                        urlencode(account_id),
                        query(&[
                            ("fields", "Deal_Name,Stage,Amount,Closing_Date,Currency"),
                            ("page", &page.to_string()),
                            ("per_page", &PAGE.to_string()),
                        ])
                    ),
                    None,
                )
                .await?;
            let list = answer["data"].as_array().cloned().unwrap_or_default();
            open.extend(
                list.iter()
                    .filter_map(|r| deal(r, account_id))
                    .filter(|d| !closed.contains(&d.stage)),
            );
            if answer["info"]["more_records"].as_bool() != Some(true) {
                break;
            }
        }
        Ok(open)
    }

    async fn stages(&self) -> Result<Vec<Stage>, CrmError> {
        let answer = self
            .call(
                "fields.deals",
                reqwest::Method::GET,
                "/settings/fields?module=Deals",
                None,
            )
            .await?;
        let Some(stage) = answer["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["api_name"] == "Stage")
        else {
            return Ok(Vec::new());
        };
        Ok(stage["pick_list_values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let id = text(v, "actual_value").or_else(|| text(v, "display_value"))?;
                let label = text(v, "display_value").unwrap_or_else(|| id.clone());
                let forecast = text(v, "forecast_type");
                let category = text(&v["forecast_category"], "name");
                let closed = match (forecast, category) {
                    (Some(f), _) => f.to_ascii_lowercase().starts_with("closed"),
                    (None, Some(c)) => matches!(c.as_str(), "Closed" | "Omitted"),
                    (None, None) => id.to_ascii_lowercase().starts_with("closed"),
                };
                Some(Stage { id, label, closed })
            })
            .collect())
    }

    async fn update_deal(&self, change: &DealChange) -> Result<(), CrmError> {
        let mut record = json!({ "id": change.deal_id });
        if let Some(amount) = change.amount {
            record["Amount"] = json!(amount);
        }
        if let Some(stage) = &change.stage {
            record["Stage"] = json!(stage);
        }
        if let Some(description) = &change.description {
            record["Description"] = json!(description);
        }
        self.write("deals.update", reqwest::Method::PUT, "Deals", record)
            .await
            .map(drop)
    }

    async fn create_note(&self, note: &NewNote) -> Result<Made, CrmError> {
        let (module, id) = match &note.deal_id {
            Some(deal) => ("Deals", deal.as_str()),
            None => ("Accounts", note.account_id.as_str()),
        };
        let title: String = note
            .text
            .lines()
            .next()
            .unwrap_or("Follow-up")
            .chars()
            .take(120)
            .collect();
        self.write(
            "notes.create",
            reqwest::Method::POST,
            "Notes",
            json!({
                "Note_Title": title,
                "Note_Content": note.text,
                "Parent_Id": { "module": { "api_name": module }, "id": id },
            }),
        )
        .await
    }

    async fn create_task(&self, task: &NewTask) -> Result<Made, CrmError> {
        let mut record = json!({
            "Subject": task.subject,
            "Due_Date": task.local_date().format("%Y-%m-%d").to_string(),
            "Status": "Not Started",
            "Description": task.description,
            "What_Id": { "id": task.account_id },
            "$se_module": "Accounts",
        });
        if let Some(contact) = &task.contact_id {
            record["Who_Id"] = json!({ "id": contact });
        }
        self.write("tasks.create", reqwest::Method::POST, "Tasks", record)
            .await
    }

    fn account_link(&self, account_id: &str) -> Option<String> {
        // `https://www.zohoapis.eu` → `https://crm.zoho.eu`; other hosts (tests) get none.
        let tld = self.api_domain.strip_prefix("https://www.zohoapis.")?;
        Some(format!(
            "https://crm.zoho.{tld}/crm/tab/Accounts/{}",
            urlencode(account_id)
        ))
    }

    /// `GET /crm/v8/{module}?fields&sort_by=Modified_Time&sort_order=asc&per_page=200` with
    /// `If-Modified-Since` for a delta (304, or 204, is nothing changed). Pages by `page` up
    /// to Zoho's 2,000 records, then by the `page_token` Zoho hands out for more: the
    /// token is `p:<page>` or `t:<page_token>`.
    async fn list_changed(
        &self,
        object: MirrorObject,
        listing: &Listing,
    ) -> Result<Listed, CrmError> {
        let (module, fields, operation) = match object {
            MirrorObject::Accounts => (
                "Accounts",
                "Account_Name,Website,Modified_Time",
                "accounts.list",
            ),
            MirrorObject::Contacts => (
                "Contacts",
                "Full_Name,First_Name,Last_Name,Email,Account_Name,Modified_Time",
                "contacts.list",
            ),
            MirrorObject::Deals => (
                "Deals",
                "Deal_Name,Stage,Amount,Closing_Date,Currency,Account_Name,Modified_Time",
                "deals.list",
            ),
        };
        let per_page = PAGE.to_string();
        let mut pairs = vec![
            ("fields", fields.to_owned()),
            ("per_page", per_page),
            ("sort_by", "Modified_Time".to_owned()),
            ("sort_order", "asc".to_owned()),
        ];
        let after = listing.after.as_deref().unwrap_or("p:1");
        let page: usize = match after.split_once(':') {
            Some(("t", token)) => {
                pairs.push(("page_token", token.to_owned()));
                0
            }
            Some((_, n)) => n.parse().unwrap_or(1),
            None => 1,
        };
        if page > 0 {
            pairs.push(("page", page.to_string()));
        }
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = self
            .call_since(
                operation,
                reqwest::Method::GET,
                &format!("/{module}?{}", query(&refs)),
                None,
                listing.since,
            )
            .await?;
        let list = answer["data"].as_array().cloned().unwrap_or_default();
        let info = &answer["info"];
        let next = if info["more_records"].as_bool() == Some(true) {
            match text(info, "next_page_token") {
                Some(token) => Some(format!("t:{token}")),
                None if page > 0 => Some(format!("p:{}", page + 1)),
                None => None,
            }
        } else {
            None
        };
        let mut listed = Listed {
            next,
            newest: list
                .iter()
                .filter_map(|r| text(r, "Modified_Time").and_then(|t| parse_modified(&t)))
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
                let closed: Vec<String> = self
                    .stages()
                    .await?
                    .into_iter()
                    .filter(|s| s.closed)
                    .map(|s| s.id)
                    .collect();
                list.iter()
                    .filter_map(|r| {
                        let account = text(&r["Account_Name"], "id").unwrap_or_default();
                        deal(r, &account)
                    })
                    .map(|d| Record::Deal {
                        open: !closed.contains(&d.stage),
                        deal: d,
                    })
                    .collect()
            }
        };
        Ok(listed)
    }
}
