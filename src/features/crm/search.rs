//! `/crono-search <query>` (also `/crm-search`): the accounts and contacts that match, shown
//! only to the person, each with Add Note, Create Task and View Deals.

use async_trait::async_trait;

use super::deals::{Place, show_deals};
use super::note::open_note;
use super::task::open_task;
use super::views::{AccountRef, ContactRef, TaskMeta, TaskPrefill, search_message};
use crate::clients::crm::Calls;
use crate::dispatch::{Ctx, Handler, HandlerError, HandlerResult};
use crate::domain::crm::{Account, Contact};
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{action_value, trigger_id};

pub struct SearchCommand;

#[async_trait]
impl Handler for SearchCommand {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let query = match &event {
            SlackEvent::Command(c) => c.text.clone().unwrap_or_default(),
            _ => String::new(),
        };
        let query: String = query.trim().chars().take(100).collect();
        if query.chars().count() < 2 {
            return Err(HandlerError::person(
                "Type what to look for after the command, e.g. `/crono-search Acme` (at least 2 letters).",
            ));
        }
        let crm = match cx.services.crm(cx.tenant.id, Calls::Read).await? {
            Ok(crm) => crm,
            Err(no) => return Err(HandlerError::person(no.words())),
        };
        let (accounts, contacts) = tokio::join!(
            crm.search_accounts(&query, 10),
            crm.search_contacts(&query, 10)
        );
        let (accounts, contacts) = match (accounts, contacts) {
            (Ok(a), Ok(c)) => (a, c),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "CRM search failed");
                return Err(HandlerError::person(e.words()));
            }
        };
        let message = search_message(&query, crm.name(), &accounts, &contacts)?;
        cx.tell_content(message).await?;
        Ok(())
    }
}

/// What a search result's button does.
#[derive(Clone, Copy)]
pub enum Then {
    Note,
    Task,
    Deals,
}

/// A button on a search result: `contact` when the result is a contact.
pub struct SearchButton {
    pub then: Then,
    pub contact: bool,
}

#[async_trait]
impl Handler for SearchButton {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let Some(value) = action_value(&cx.payload) else {
            return Ok(());
        };
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        let (account, contact) = if self.contact {
            let Ok(c) = serde_json::from_str::<ContactRef>(&value) else {
                return Ok(());
            };
            let account = c.account.clone().map(|a| AccountRef {
                account: a,
                name: c.account_name.clone().unwrap_or_default(),
            });
            let contact = Contact {
                id: c.contact,
                name: c.name,
                email: None,
                account_id: c.account,
                account_name: c.account_name,
            };
            (account, Some(contact))
        } else {
            let Ok(a) = serde_json::from_str::<AccountRef>(&value) else {
                return Ok(());
            };
            (Some(a), None)
        };
        match self.then {
            Then::Note => {
                let Some(account) = account else {
                    return Ok(());
                };
                let account = Account {
                    id: account.account,
                    name: account.name,
                    website: None,
                };
                open_note(cx, &trigger, Some(&account), "").await
            }
            Then::Task => {
                let prefill = TaskPrefill {
                    meta: TaskMeta {
                        followup: None,
                        account: if contact.is_none() { account } else { None },
                    },
                    contact,
                    ..Default::default()
                };
                open_task(cx, &trigger, &prefill, false).await
            }
            Then::Deals => {
                let Some(account) = account else {
                    return Ok(());
                };
                show_deals(
                    cx,
                    &account,
                    Place::Open {
                        trigger: &trigger,
                        push: false,
                    },
                )
                .await
            }
        }
    }
}
