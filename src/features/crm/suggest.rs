//! Autocomplete for the CRM's pickers (`external_select`): answered in the `block_suggestion`
//! ack itself, within Slack's 3 s: from the CRM mirror in the database once it is backfilled,
//! else with at most one CRM request per keystroke and answers cached briefly per team.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::views::{NONE_VALUE, account_option, contact_option, option};
use crate::clients::crm::Calls;
use crate::dispatch::{Ack, Ctx, Handler, HandlerResult};
use crate::domain::ids::TenantId;
use crate::services::Services;
use crate::slack::envelope::SlackEvent;

/// The CRM's share of the ack's time.
const SEARCH_BUDGET: Duration = Duration::from_millis(2000);
const RESULTS: usize = 20;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum List {
    Contacts,
    Accounts,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::Contacts => "contacts",
            List::Accounts => "accounts",
        }
    }

    fn empty(self) -> &'static str {
        match self {
            List::Contacts => "No contacts found",
            List::Accounts => "No accounts found",
        }
    }
}

pub struct Suggest(pub List);

fn options(list: Vec<Value>) -> Ack {
    Ack::Stop(Some(json!({ "options": list })))
}

fn hint(text: &str) -> Ack {
    options(vec![option(text, NONE_VALUE)])
}

/// The options from the CRM mirror, once the mirror of this list is backfilled (`None`
/// before, or when the database fails: the CRM is searched instead).
async fn from_mirror(
    services: &Services,
    tenant: TenantId,
    list: List,
    query: &str,
) -> Option<Vec<Value>> {
    let provider = match services.store.team_crm(tenant).await {
        Ok(Some(provider)) => provider,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = ?e, "autocomplete: could not read the team's CRM");
            return None;
        }
    };
    let found = match list {
        List::Contacts => services
            .mirror_contacts(tenant, provider, query, RESULTS)
            .await
            .map(|found| found.map(|l| l.iter().map(contact_option).collect::<Vec<_>>())),
        List::Accounts => services
            .mirror_accounts(tenant, provider, query, RESULTS)
            .await
            .map(|found| found.map(|l| l.iter().map(account_option).collect::<Vec<_>>())),
    };
    match found {
        Ok(Some(found)) if found.is_empty() => Some(vec![option(list.empty(), NONE_VALUE)]),
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = ?e, "autocomplete: could not read the CRM mirror");
            None
        }
    }
}

#[async_trait]
impl Handler for Suggest {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let query: String = payload["value"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .chars()
            .take(100)
            .collect();
        if query.chars().count() < 2 {
            return options(Vec::new());
        }
        let Some(team) = event.team_id() else {
            return options(Vec::new());
        };
        let tenant = match services.store.ensure_tenant(&team).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = ?e, "autocomplete: no tenant");
                return hint("Something went wrong; please type again");
            }
        };
        let key = query.to_lowercase();
        if let Some(cached) = services.suggestions.get(tenant.id, self.0.key(), &key) {
            return Ack::Stop(Some(json!({ "options": cached })));
        }
        if let Some(list) = from_mirror(services, tenant.id, self.0, &query).await {
            return options(list);
        }
        let crm = match services.crm(tenant.id, Calls::Interactive).await {
            Ok(Ok(crm)) => crm,
            Ok(Err(_)) => return hint("No CRM connected: an admin can run /crono-connect"),
            Err(e) => {
                tracing::warn!(error = ?e, "autocomplete: could not load the CRM");
                return hint("Something went wrong; please type again");
            }
        };
        let found = tokio::time::timeout(SEARCH_BUDGET, async {
            match self.0 {
                List::Contacts => crm
                    .search_contacts(&query, RESULTS)
                    .await
                    .map(|list| list.iter().map(contact_option).collect::<Vec<_>>()),
                List::Accounts => crm
                    .search_accounts(&query, RESULTS)
                    .await
                    .map(|list| list.iter().map(account_option).collect::<Vec<_>>()),
            }
        })
        .await;
        let list = match found {
            Ok(Ok(list)) if list.is_empty() => vec![option(self.0.empty(), NONE_VALUE)],
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "autocomplete: the CRM search failed");
                let text = match e {
                    crate::clients::crm::CrmError::Refused { .. } => {
                        format!(
                            "{} refused the keys: an admin can run /crono-connect",
                            crm.name()
                        )
                    }
                    crate::clients::crm::CrmError::RateLimited { .. } => {
                        format!("{} is rate limiting us: type again in a moment", crm.name())
                    }
                    _ => format!("{} is not answering: type again in a moment", crm.name()),
                };
                return hint(&text);
            }
            Err(_) => {
                return hint(&format!("{} is slow: type again in a moment", crm.name()));
            }
        };
        let list = Value::from(list);
        services
            .suggestions
            .put(tenant.id, self.0.key(), &key, list.clone());
        Ack::Stop(Some(json!({ "options": list })))
    }

    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        Ok(())
    }
}
