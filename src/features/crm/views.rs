//! The CRM's modals and messages, filled from `blocks/crm_*.json`.

use chrono::{Duration, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use crate::blocks::{self, Vars};
use crate::domain::crm::{Account, Contact, Deal, Stage, TaskType, contact_label, cut};
use crate::domain::ids::FollowupId;
use crate::domain::person::User;

/// Slack's limit for an option's text.
pub const OPTION_TEXT: usize = 75;
/// The option values that mean "nothing to pick" (a hint shown as an option).
pub const NONE_VALUE: &str = "none";

pub fn option(text: &str, value: &str) -> Value {
    json!({
        "text": { "type": "plain_text", "text": cut(text, OPTION_TEXT) },
        "value": value,
    })
}

/// A contact as an option: its value carries the contact and its account.
pub fn contact_option(contact: &Contact) -> Value {
    let value = ContactRef {
        contact: contact.id.clone(),
        account: contact.account_id.clone(),
        name: cut(&contact.name, 40),
        account_name: contact.account_name.as_deref().map(|a| cut(a, 40)),
    };
    option(
        &contact_label(contact),
        &serde_json::to_string(&value).unwrap_or_default(),
    )
}

pub fn account_option(account: &Account) -> Value {
    let label = match account.website.as_deref() {
        Some(w) if !w.is_empty() => format!("{} – {}", account.name, w),
        _ => account.name.clone(),
    };
    let value = AccountRef {
        account: account.id.clone(),
        name: cut(&account.name, 60),
    };
    option(&label, &serde_json::to_string(&value).unwrap_or_default())
}

/// What a contact option's value holds (Slack's 150 characters are enough for CRM ids and
/// shortened names).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ContactRef {
    #[serde(rename = "c")]
    pub contact: String,
    #[serde(rename = "a", default)]
    pub account: Option<String>,
    #[serde(rename = "n", default)]
    pub name: String,
    #[serde(rename = "an", default)]
    pub account_name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountRef {
    #[serde(rename = "a")]
    pub account: String,
    #[serde(rename = "n", default)]
    pub name: String,
}

/// What the task modal carries between opening and submit.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TaskMeta {
    #[serde(default)]
    pub followup: Option<FollowupId>,
    /// When opened on an account (from a search), the contact may stay empty.
    #[serde(default)]
    pub account: Option<AccountRef>,
}

/// What the task modal opens with.
#[derive(Clone, Debug, Default)]
pub struct TaskPrefill {
    pub meta: TaskMeta,
    pub contact: Option<Contact>,
    pub subject: String,
    pub description: String,
    pub intro: Option<String>,
}

pub fn task_view(prefill: &TaskPrefill, user: &User) -> anyhow::Result<SlackView> {
    let kind = TaskType::parse(&user.default_task_type).unwrap_or(TaskType::Email);
    let time = NaiveTime::parse_from_str(&user.default_task_time, "%H:%M")
        .unwrap_or(NaiveTime::from_hms_opt(9, 0, 0).expect("9:00"));
    let today = Utc::now().with_timezone(&user.utc_offset()).date_naive();
    let date = today + Duration::days(1);
    let mut element = json!({
        "type": "external_select",
        "action_id": "crm_contact",
        "min_query_length": 2,
        "placeholder": { "type": "plain_text", "text": "Type 2 letters of a name" },
    });
    if let Some(contact) = &prefill.contact {
        element["initial_option"] = contact_option(contact);
    }
    let intro: Vec<Value> = prefill
        .intro
        .iter()
        .map(|text| json!({ "type": "section", "text": { "type": "mrkdwn", "text": blocks::escape(text) } }))
        .collect();
    let options: Vec<Value> = TaskType::ALL
        .iter()
        .map(|t| option(t.label(), t.as_str()))
        .collect();
    let (subject, _) = blocks::fit(&prefill.subject, 250);
    let (description, _) = blocks::fit(&prefill.description, 3000);
    Ok(blocks::CRM_TASK.render_as(
        &Vars::new()
            .set("meta", serde_json::to_string(&prefill.meta)?)
            .set("intro", intro)
            .set("contact_optional", prefill.meta.account.is_some())
            .set("contact_element", element)
            .set("subject", subject)
            .set("date", date.format("%Y-%m-%d").to_string())
            .set("time", time.format("%H:%M").to_string())
            .set("tz", user.tz.clone().unwrap_or_else(|| "UTC".to_owned()))
            .set("type_option", option(kind.label(), kind.as_str()))
            .set("type_options", options)
            .set("description", description),
    )?)
}

/// What the note modal carries.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NoteMeta {
    #[serde(default)]
    pub followup: Option<FollowupId>,
}

pub fn note_view(
    meta: &NoteMeta,
    account: Option<&Account>,
    text: &str,
) -> anyhow::Result<SlackView> {
    let mut element = json!({
        "type": "external_select",
        "action_id": "crm_account",
        "min_query_length": 2,
        "placeholder": { "type": "plain_text", "text": "Type 2 letters of the account's name" },
    });
    if let Some(account) = account {
        element["initial_option"] = account_option(account);
    }
    let (text, _) = blocks::fit(text, 3000);
    Ok(blocks::CRM_NOTE.render_as(
        &Vars::new()
            .set("meta", serde_json::to_string(meta)?)
            .set("account_element", element)
            .set("text", text),
    )?)
}

/// What the person picks an account for.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Note,
    Deals,
    Task,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PickMeta {
    pub followup: FollowupId,
    pub purpose: Purpose,
}

pub fn pick_view(meta: &PickMeta, why: &str, candidates: &[Account]) -> anyhow::Result<SlackView> {
    let choices: Vec<Value> = if candidates.is_empty() {
        Vec::new()
    } else {
        let options: Vec<Value> = candidates.iter().take(10).map(account_option).collect();
        vec![json!({
            "type": "input",
            "block_id": "candidate",
            "optional": true,
            "label": { "type": "plain_text", "text": "Accounts that match the attendees" },
            "element": { "type": "radio_buttons", "action_id": "value", "options": options },
        })]
    };
    let search_label = if candidates.is_empty() {
        "Account"
    } else {
        "Or another account"
    };
    Ok(blocks::CRM_PICK_ACCOUNT.render_as(
        &Vars::new()
            .set("meta", serde_json::to_string(meta)?)
            .set("why", why)
            .set("choices", choices)
            .set("search_label", search_label),
    )?)
}

/// An amount with its currency, as people read it.
pub fn money(amount: Option<f64>, currency: Option<&str>) -> String {
    match amount {
        Some(a) => {
            let number = if a.fract() == 0.0 {
                format!("{a:.0}")
            } else {
                format!("{a:.2}")
            };
            match currency {
                Some(c) if !c.is_empty() => format!("{number} {c}"),
                _ => number,
            }
        }
        None => "no amount".to_owned(),
    }
}

pub fn stage_label(stages: &[Stage], id: &str) -> String {
    stages
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.label.clone())
        .unwrap_or_else(|| id.to_owned())
}

/// What the deals modal carries, for the Edit buttons.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DealsMeta {
    pub account: AccountRef,
}

pub fn deals_view(
    account: &AccountRef,
    deals: &[Deal],
    stages: &[Stage],
) -> anyhow::Result<SlackView> {
    let summary = match deals.len() {
        0 => "no open deals.".to_owned(),
        1 => "1 open deal.".to_owned(),
        n => format!("{n} open deals."),
    };
    let mut rows: Vec<Value> = Vec::new();
    // A modal holds 100 blocks; the header takes one.
    for deal in deals.iter().take(98) {
        let mut text = format!(
            "*{}*\n{} · {}",
            blocks::escape(&deal.name),
            blocks::escape(&stage_label(stages, &deal.stage)),
            blocks::escape(&money(deal.amount, deal.currency.as_deref())),
        );
        if let Some(close) = &deal.close_date {
            text.push_str(&format!(
                " · closes {}",
                blocks::escape(close.get(..10).unwrap_or(close))
            ));
        }
        rows.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": text },
            "accessory": {
                "type": "button",
                "action_id": "crm_deal_edit",
                "text": { "type": "plain_text", "text": "Edit" },
                "value": deal.id,
            },
        }));
    }
    if deals.len() > 98 {
        rows.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": format!("…and {} more: open the account in the CRM to see them all.", deals.len() - 98) }],
        }));
    }
    let meta = DealsMeta {
        account: account.clone(),
    };
    Ok(blocks::CRM_DEALS.render_as(
        &Vars::new()
            .set("meta", serde_json::to_string(&meta)?)
            .set("account", account.name.clone())
            .set("summary", summary)
            .set("deals", rows),
    )?)
}

/// What the deal edit modal carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DealMeta {
    pub deal: String,
    pub account: AccountRef,
    pub name: String,
    #[serde(default)]
    pub currency: Option<String>,
}

pub fn deal_edit_view(
    account: &AccountRef,
    deal: &Deal,
    stages: &[Stage],
) -> anyhow::Result<SlackView> {
    // The provider's stages; the deal's own stage is kept even when the list lacks it.
    let mut choices: Vec<Stage> = stages.to_vec();
    if !choices.iter().any(|s| s.id == deal.stage) && !deal.stage.is_empty() {
        choices.insert(
            0,
            Stage {
                id: deal.stage.clone(),
                label: deal.stage.clone(),
                closed: false,
            },
        );
    }
    let options: Vec<Value> = choices
        .iter()
        .take(100)
        .map(|s| option(&s.label, &s.id))
        .collect();
    let current = choices
        .iter()
        .find(|s| s.id == deal.stage)
        .map(|s| option(&s.label, &s.id))
        .or_else(|| options.first().cloned())
        .unwrap_or_else(|| option("(no stages)", NONE_VALUE));
    let options = if options.is_empty() {
        vec![current.clone()]
    } else {
        options
    };
    let amount = match deal.amount {
        Some(a) if a.fract() == 0.0 => format!("{a:.0}"),
        Some(a) => format!("{a:.2}"),
        None => String::new(),
    };
    let meta = DealMeta {
        deal: deal.id.clone(),
        account: account.clone(),
        name: cut(&deal.name, 200),
        currency: deal.currency.clone(),
    };
    Ok(blocks::CRM_DEAL_EDIT.render_as(
        &Vars::new()
            .set("meta", serde_json::to_string(&meta)?)
            .set("name", deal.name.clone())
            .set(
                "currency",
                deal.currency
                    .clone()
                    .unwrap_or_else(|| "no currency set".to_owned()),
            )
            .set("amount", amount)
            .set("stage_option", current)
            .set("stage_options", options),
    )?)
}

/// `/crono-search` results: accounts, then contacts, each with its buttons.
pub fn search_message(
    query: &str,
    crm: &str,
    accounts: &[Account],
    contacts: &[Contact],
) -> anyhow::Result<SlackMessageContent> {
    let mut results: Vec<Value> = Vec::new();
    for account in accounts.iter().take(10) {
        let value = serde_json::to_string(&AccountRef {
            account: account.id.clone(),
            name: cut(&account.name, 60),
        })?;
        let mut text = format!(":office: *{}*", blocks::escape(&account.name));
        if let Some(w) = &account.website {
            text.push_str(&format!(" · {}", blocks::escape(w)));
        }
        results.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } }));
        results.push(json!({
            "type": "actions",
            "elements": [
                { "type": "button", "action_id": "crm_search_note", "text": { "type": "plain_text", "text": "Add Note" }, "value": value },
                { "type": "button", "action_id": "crm_search_task", "text": { "type": "plain_text", "text": "Create Task" }, "value": value },
                { "type": "button", "action_id": "crm_search_deals", "text": { "type": "plain_text", "text": "View Deals" }, "value": value },
            ],
        }));
    }
    for contact in contacts.iter().take(10) {
        let value = serde_json::to_string(&ContactRef {
            contact: contact.id.clone(),
            account: contact.account_id.clone(),
            name: cut(&contact.name, 40),
            account_name: contact.account_name.as_deref().map(|a| cut(a, 40)),
        })?;
        let text = format!(
            ":bust_in_silhouette: {}",
            blocks::escape(&contact_label(contact))
        );
        results.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } }));
        let mut buttons = vec![
            json!({ "type": "button", "action_id": "crm_search_contact_task", "text": { "type": "plain_text", "text": "Create Task" }, "value": value }),
        ];
        if contact.account_id.is_some() {
            buttons.insert(0, json!({ "type": "button", "action_id": "crm_search_contact_note", "text": { "type": "plain_text", "text": "Add Note" }, "value": value }));
            buttons.push(json!({ "type": "button", "action_id": "crm_search_contact_deals", "text": { "type": "plain_text", "text": "View Deals" }, "value": value }));
        }
        results.push(json!({ "type": "actions", "elements": buttons }));
    }
    let text = if results.is_empty() {
        format!("Nothing in {crm} matches “{}”.", cut(query, 100))
    } else {
        format!("{crm} results for “{}”:", cut(query, 100))
    };
    Ok(blocks::CRM_SEARCH.render_as(&Vars::new().set("text", text).set("results", results))?)
}
