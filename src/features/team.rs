//! The team's settings, for Slack's workspace admins and owners and the bot admins: who the
//! bot admins are, how long the team's follow-ups are kept, and the CRM sync's pause switch
//! (also on App Home). Everyone else is refused with
//! who can do it; the right is checked again at submit, fresh. Every change is audited.

use async_trait::async_trait;
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use crate::blocks::{TEAM_SETTINGS, Vars, escape, message_modal};
use crate::dispatch::{Ack, Ctx, Handler, HandlerResult, field_errors};
use crate::domain::ids::TenantId;
use crate::services::Services;
use crate::services::admins::{OPEN_TEAM_SETTINGS, is_slack_user_id};
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{action_value, trigger_id};

const CALLBACK: &str = "team_settings";
/// The most bot admins a team may name.
const MAX_ADMINS: usize = 20;
const DEFAULT: &str = "default";
/// The periods a team may choose, when shorter than the deployment's.
const PERIODS: &[u32] = &[7, 14, 30, 60, 90, 180, 365];
const WHAT: &str = "change the team's settings";

pub fn register(features: &mut crate::registry::Features) {
    features.action(OPEN_TEAM_SETTINGS, TeamOpen);
    features.submission(CALLBACK, TeamSubmit);
    features.action(crate::services::home::actions::CRM_SYNC, SyncSwitch);
}

const SYNC_WHAT: &str = "pause or resume the team's CRM sync";

fn option(value: &str, text: &str) -> Value {
    json!({ "text": { "type": "plain_text", "text": text }, "value": value })
}

/// The retention choices: the deployment's default, then every shorter period.
fn periods(default_days: u32) -> Vec<(String, String)> {
    std::iter::once((
        DEFAULT.to_owned(),
        format!("{default_days} days (the default)"),
    ))
    .chain(
        PERIODS
            .iter()
            .filter(|d| **d < default_days)
            .map(|d| (d.to_string(), format!("{d} days"))),
    )
    .collect()
}

/// The team's settings as they are now.
pub async fn team_view(services: &Services, tenant: TenantId) -> anyhow::Result<SlackView> {
    let admins = services.store.bot_admins(tenant).await?;
    let mut element = json!({
        "type": "multi_users_select",
        "action_id": "value",
        "max_selected_items": MAX_ADMINS,
        "placeholder": { "type": "plain_text", "text": "Pick people" },
    });
    if !admins.is_empty() {
        element["initial_users"] = json!(admins);
    }
    let choices = periods(services.config.retention.days);
    let current = services
        .store
        .team_retention(tenant)
        .await?
        .map_or_else(|| DEFAULT.to_owned(), |d| d.to_string());
    let initial = choices
        .iter()
        .find(|(v, _)| *v == current)
        .unwrap_or(&choices[0]);
    let crm = match services.store.team_crm(tenant).await? {
        Some(provider) => format!(
            "*CRM*: {} is connected. `/crono-connect` changes it, `/crono-disconnect` removes it.",
            escape(provider.label())
        ),
        None => "*CRM*: none connected yet. `/crono-connect` connects the team's CRM.".to_owned(),
    };
    Ok(TEAM_SETTINGS.render_as(
        &Vars::new()
            .set("crm_text", json!({ "type": "mrkdwn", "text": crm }))
            .set("admins_element", element)
            .set("retention_initial", option(&initial.0, &initial.1))
            .set(
                "retention_options",
                Value::Array(choices.iter().map(|(v, t)| option(v, t)).collect()),
            )
            .set("more", Value::Array(sync_blocks(services, tenant).await)),
    )?)
}

/// With a CRM connected: the sync's state, and its switch.
async fn sync_blocks(services: &Services, tenant: TenantId) -> Vec<Value> {
    let status = match services.crm_sync_status(tenant).await {
        Ok(status) if status.provider.is_some() => status,
        Ok(_) => return Vec::new(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the CRM sync's status");
            return Vec::new();
        }
    };
    let on = option("on", "On: the CRM is copied here for instant search");
    let paused = option("paused", "Paused: nothing is read from the CRM");
    vec![
        json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": crate::services::mirror::sync_summary(&status),
            }],
        }),
        json!({
            "type": "input",
            "block_id": "crm_sync",
            "label": { "type": "plain_text", "text": "CRM sync" },
            "element": {
                "type": "radio_buttons",
                "action_id": "value",
                "initial_option": if status.paused { paused.clone() } else { on.clone() },
                "options": [on, paused],
            },
        }),
    ]
}

/// "Team settings" pressed (in the person's settings or App Home).
pub struct TeamOpen;

#[async_trait]
impl Handler for TeamOpen {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        let services = &cx.services;
        let view = if services
            .is_team_admin(cx.tenant.id, &cx.user.slack_user_id)
            .await
        {
            team_view(services, cx.tenant.id).await?
        } else {
            let words = services.only_admins(Some(cx.tenant.id), WHAT).await;
            message_modal("team_settings_refused", "Team settings", &words)?
        };
        // Over the person's settings when pressed there; a window of its own from App Home.
        if cx.payload["view"]["type"] == "modal" {
            services.slack.views_push(&trigger, view).await?;
        } else {
            services.slack.views_open(&trigger, view).await?;
        }
        Ok(())
    }
}

/// What was submitted, checked.
struct Submitted {
    admins: Vec<String>,
    retention: Option<u32>,
    /// The sync's switch, when the window had it: paused or not.
    sync_paused: Option<bool>,
}

fn read(
    payload: &Value,
    default_days: u32,
) -> Result<Submitted, Vec<(&'static str, &'static str)>> {
    let values = &payload["view"]["state"]["values"];
    let admins: Vec<String> = values["bot_admins"]["value"]["selected_users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut errors = Vec::new();
    if admins.len() > MAX_ADMINS || !admins.iter().all(|u| is_slack_user_id(u)) {
        errors.push(("bot_admins", "Pick up to 20 people from the list."));
    }
    let retention = values["retention"]["value"]["selected_option"]["value"]
        .as_str()
        .unwrap_or(DEFAULT);
    let retention = if retention == DEFAULT {
        Some(None)
    } else {
        retention
            .parse::<u32>()
            .ok()
            .filter(|d| PERIODS.contains(d) && *d < default_days)
            .map(Some)
    };
    let Some(retention) = retention else {
        errors.push(("retention", "Pick a period from the list."));
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut unique = Vec::new();
    for a in admins {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    let sync_paused = match values["crm_sync"]["value"]["selected_option"]["value"].as_str() {
        Some("paused") => Some(true),
        Some("on") => Some(false),
        _ => None,
    };
    Ok(Submitted {
        admins: unique,
        retention,
        sync_paused,
    })
}

const NOT_SAVED: &str = "Sorry, the team settings could not be saved just now. Please press \
    Save again in a minute.";

pub struct TeamSubmit;

#[async_trait]
impl Handler for TeamSubmit {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        let (Some(team), Some(slack_user)) = (event.team_id(), event.user_id()) else {
            return field_errors(&[("bot_admins", NOT_SAVED)]);
        };
        let (tenant, user) = match services
            .people
            .resolve(&services.store, &*services.slack, &team, &slack_user)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = ?e, "could not load the person for the team settings");
                return field_errors(&[("bot_admins", NOT_SAVED)]);
            }
        };
        // Asked again now: the right may have gone since the window opened.
        if !services.is_team_admin(tenant.id, &slack_user).await {
            let words = services.only_admins(Some(tenant.id), WHAT).await;
            return Ack::Stop(Some(json!({
                "response_action": "errors",
                "errors": { "bot_admins": words },
            })));
        }
        let submitted = match read(payload, services.config.retention.days) {
            Ok(s) => s,
            Err(errors) => return field_errors(&errors),
        };
        let saved = async {
            services
                .set_bot_admins(tenant.id, user.id, &slack_user, &submitted.admins)
                .await?;
            services
                .set_team_retention(tenant.id, user.id, submitted.retention)
                .await?;
            if let Some(paused) = submitted.sync_paused
                && services.crm_sync_status(tenant.id).await?.paused != paused
            {
                services
                    .set_crm_sync_paused(tenant.id, user.id, paused)
                    .await?;
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(crate::dispatch::ACK_BUDGET / 2, saved).await {
            Ok(Ok(())) => Ack::Continue(None),
            Ok(Err(e)) => {
                tracing::error!(error = ?e, "could not save the team settings");
                field_errors(&[("bot_admins", NOT_SAVED)])
            }
            Err(_) => field_errors(&[("bot_admins", NOT_SAVED)]),
        }
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        cx.services.refresh_home(cx.tenant.id, cx.user.id).await;
        Ok(())
    }
}

/// App Home's Pause sync / Resume sync (admins; asked again here).
pub struct SyncSwitch;

#[async_trait]
impl Handler for SyncSwitch {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let services = &cx.services;
        if !services
            .is_team_admin(cx.tenant.id, &cx.user.slack_user_id)
            .await
        {
            cx.tell(&services.only_admins(Some(cx.tenant.id), SYNC_WHAT).await)
                .await?;
            return Ok(());
        }
        let paused = match action_value(&cx.payload).as_deref() {
            Some("pause") => true,
            Some("resume") => false,
            _ => return Ok(()),
        };
        if services.crm_sync_status(cx.tenant.id).await?.paused != paused {
            services
                .set_crm_sync_paused(cx.tenant.id, cx.user.id, paused)
                .await?;
        }
        services.refresh_home(cx.tenant.id, cx.user.id).await;
        Ok(())
    }
}
