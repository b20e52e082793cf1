//! The team's settings, for Slack's workspace admins and owners and the bot admins: who the
//! bot admins are and how long the team's follow-ups are kept. Everyone else is refused with
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
use crate::slack::payload::trigger_id;

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
}

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
            .set("more", Value::Array(Vec::new())),
    )?)
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
    Ok(Submitted {
        admins: unique,
        retention,
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
