//! "View Deals": every open deal of an account (closed ones excluded by the provider's stage
//! ids), each with Edit: amount, stage (the provider's stages) and description. A save
//! queues one write per modal, in the ack.

use async_trait::async_trait;
use serde_json::Value;

use super::jobs::{self, Request};
use super::task::acting;
use super::views::{AccountRef, DealMeta, DealsMeta, deal_edit_view, deals_view, stage_label};
use crate::blocks;
use crate::clients::crm::Calls;
use crate::dispatch::{Ack, Ctx, Handler, HandlerResult, field_errors};
use crate::domain::crm::DealChange;
use crate::services::Services;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{action_value, private_metadata, state_value, trigger_id, view_id};

pub const CALLBACK: &str = "crm_deal";

/// Where the deals are shown.
pub enum Place<'a> {
    /// Open (or push onto the modal the click came from) a new modal with this trigger.
    Open { trigger: &'a str, push: bool },
    /// A modal already open (e.g. the one the person just submitted).
    Update(String),
}

/// Shows the account's open deals: a "Loading…" modal at once (the trigger lives 3 s),
/// then the list.
pub async fn show_deals(cx: &Ctx, account: &AccountRef, place: Place<'_>) -> HandlerResult {
    let services = &cx.services;
    let loading = blocks::message_modal(
        "crm_deals",
        "Open deals",
        &format!(
            "Loading the open deals of *{}*…",
            blocks::escape(&account.name)
        ),
    )?;
    let view = match place {
        Place::Open { trigger, push } => {
            let opened = if push {
                services.slack.views_push(trigger, loading).await
            } else {
                services.slack.views_open(trigger, loading).await
            };
            match opened {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!(error = %e, "could not open the deals modal");
                    cx.tell(
                        "Slack did not let me open the deals window in time. Please try again.",
                    )
                    .await?;
                    return Ok(());
                }
            }
        }
        Place::Update(id) => id,
    };
    let shown = match services.crm(cx.tenant.id, Calls::Read).await? {
        Err(no) => blocks::message_modal("crm_deals", "Open deals", no.words())?,
        Ok(crm) => {
            let found = async {
                let deals = crm.open_deals(&account.account).await?;
                let stages = crm.stages().await?;
                Ok::<_, crate::clients::crm::CrmError>((deals, stages))
            }
            .await;
            match found {
                Ok((deals, stages)) => deals_view(account, &deals, &stages)?,
                Err(e) => {
                    tracing::warn!(error = %e, "could not load the open deals");
                    blocks::message_modal("crm_deals", "Open deals", &e.words())?
                }
            }
        }
    };
    if let Err(e) = services.slack.views_update(&view, None, shown).await {
        tracing::warn!(error = %e, "could not show the deals (modal closed?)");
    }
    Ok(())
}

/// "Edit" on one deal: the edit modal, pushed over the list.
pub struct EditDeal;

#[async_trait]
impl Handler for EditDeal {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let Some(deal_id) = action_value(&cx.payload) else {
            return Ok(());
        };
        let Some(meta) =
            private_metadata(&cx.payload).and_then(|m| serde_json::from_str::<DealsMeta>(m).ok())
        else {
            return Ok(());
        };
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        let services = &cx.services;
        let loading = blocks::message_modal("crm_deal_loading", "Edit deal", "Loading the deal…")?;
        let view = match services.slack.views_push(&trigger, loading).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "could not open the deal editor");
                return Ok(());
            }
        };
        let shown = match services.crm(cx.tenant.id, Calls::Read).await? {
            Err(no) => blocks::message_modal("crm_deal_loading", "Edit deal", no.words())?,
            Ok(crm) => {
                let found = async {
                    let deals = crm.open_deals(&meta.account.account).await?;
                    let stages = crm.stages().await?;
                    Ok::<_, crate::clients::crm::CrmError>((deals, stages))
                }
                .await;
                match found {
                    Ok((deals, stages)) => match deals.iter().find(|d| d.id == deal_id) {
                        Some(deal) => deal_edit_view(&meta.account, deal, &stages)?,
                        None => blocks::message_modal(
                            "crm_deal_loading",
                            "Edit deal",
                            "That deal is no longer open (it may have been closed or deleted).",
                        )?,
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "could not load the deal");
                        blocks::message_modal("crm_deal_loading", "Edit deal", &e.words())?
                    }
                }
            }
        };
        if let Err(e) = services.slack.views_update(&view, None, shown).await {
            tracing::warn!(error = %e, "could not show the deal editor (closed?)");
        }
        Ok(())
    }
}

/// An amount as people type it: `12500`, `12,500.50`, `12.500,50`, `12 500`.
pub fn parse_amount(text: &str) -> Option<f64> {
    let s: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\'' && *c != '_')
        .collect();
    if s.is_empty() {
        return None;
    }
    let normal = match (s.rfind(','), s.rfind('.')) {
        (Some(c), Some(d)) if c > d => s.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => s.replace(',', ""),
        (Some(c), None) => {
            let decimals = s.len() - c - 1;
            if s.matches(',').count() == 1 && decimals <= 2 {
                s.replace(',', ".")
            } else {
                s.replace(',', "")
            }
        }
        _ => s,
    };
    normal
        .parse::<f64>()
        .ok()
        .filter(|a| a.is_finite() && *a >= 0.0 && *a < 1e15)
}

pub struct DealSubmit;

const NOT_SAVED: &str = "Sorry, the change could not be saved. Please press Save again.";

#[async_trait]
impl Handler for DealSubmit {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let Some((tenant, user)) = acting(services, event).await else {
            return field_errors(&[("amount", NOT_SAVED)]);
        };
        let Some(meta) =
            private_metadata(payload).and_then(|m| serde_json::from_str::<DealMeta>(m).ok())
        else {
            return field_errors(&[("amount", NOT_SAVED)]);
        };
        let amount_text = state_value(payload, "amount", "value").unwrap_or_default();
        let amount = if amount_text.trim().is_empty() {
            None
        } else {
            match parse_amount(&amount_text) {
                Some(a) => Some(a),
                None => {
                    return field_errors(&[(
                        "amount",
                        "Type the amount as a number, such as 12500 or 12,500.50.",
                    )]);
                }
            }
        };
        let stage = state_value(payload, "stage", "value").filter(|s| s != "none");
        let stage_text =
            payload["view"]["state"]["values"]["stage"]["value"]["selected_option"]["text"]["text"]
                .as_str()
                .map(str::to_owned);
        let description = state_value(payload, "description", "value")
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        let request = Request::Deal {
            change: DealChange {
                deal_id: meta.deal.clone(),
                account_id: meta.account.account.clone(),
                amount,
                stage: stage.clone(),
                description,
            },
            deal_name: meta.name.clone(),
            account_name: meta.account.name.clone(),
            stage_label: stage_text.or_else(|| stage.map(|s| stage_label(&[], &s))),
            currency: meta.currency.clone(),
        };
        let key = format!("deal:view:{}", view_id(payload).unwrap_or("none"));
        match jobs::queue(services, &tenant, &user, None, &key, &request).await {
            Ok(_) => Ack::Continue(None),
            Err(e) => {
                tracing::error!(error = ?e, "could not queue a deal update");
                field_errors(&[("amount", NOT_SAVED)])
            }
        }
    }

    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        Ok(()) // queued in the ack; the job confirms in the DM
    }
}

#[cfg(test)]
mod tests {
    use super::parse_amount;

    #[test]
    fn amounts_as_people_type_them() {
        assert_eq!(parse_amount("12500"), Some(12500.0));
        assert_eq!(parse_amount("12,500.50"), Some(12500.5));
        assert_eq!(parse_amount("12.500,50"), Some(12500.5));
        assert_eq!(parse_amount("12 500"), Some(12500.0));
        assert_eq!(parse_amount("1,5"), Some(1.5));
        assert_eq!(parse_amount("1,500"), Some(1500.0));
        assert_eq!(parse_amount("-3"), None);
        assert_eq!(parse_amount("abc"), None);
    }
}
