//! `/followup-settings`: tone, language, signature, default task type and time, and whether
//! to be told when a new recording is ready; and "Delete my data", confirmed in a modal
//! pushed over the settings, then done by a durable job.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use crate::blocks::{DELETE_DATA, FOLLOWUP_SETTINGS, MODAL_MESSAGE, Vars};
use crate::dispatch::{Ack, Ctx, Handler, HandlerResult, field_errors};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::language::LANGUAGES;
use crate::domain::person::{Settings, User};
use crate::jobs::{JobError, JobHandler};
use crate::services::Services;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{state_value, trigger_id, view_id};
use crate::store::jobs::Job;

const TONES: &[(&str, &str)] = &[
    ("professional", "Professional"),
    ("friendly", "Friendly"),
    ("formal", "Formal"),
];
const TASK_TYPES: &[(&str, &str)] = &[
    ("email", "Email"),
    ("call", "Call"),
    ("linkedin", "LinkedIn"),
    ("inmail", "InMail"),
];
const AUTO: &str = "auto";
/// The longest the admin check may hold the settings window.
const ADMIN_CHECK: std::time::Duration = std::time::Duration::from_millis(1000);

fn option(value: &str, text: &str) -> Value {
    json!({ "text": { "type": "plain_text", "text": text }, "value": value })
}

fn options(pairs: &[(&str, &str)]) -> Vec<Value> {
    pairs.iter().map(|(v, t)| option(v, t)).collect()
}

fn pick(pairs: &[(&str, &str)], value: &str) -> Value {
    let (v, t) = pairs.iter().find(|(v, _)| *v == value).unwrap_or(&pairs[0]);
    option(v, t)
}

fn languages() -> Vec<(&'static str, &'static str)> {
    std::iter::once((AUTO, "The meeting's language"))
        .chain(LANGUAGES.iter().copied())
        .collect()
}

/// The person's settings; `admin` adds the button to the team's settings.
pub fn settings_view(user: &User, admin: bool) -> anyhow::Result<SlackView> {
    let languages = languages();
    let team = if admin {
        vec![crate::blocks::TEAM_SETTINGS_BUTTON.render(&Vars::new())?]
    } else {
        Vec::new()
    };
    let dms = [("on", "Yes"), ("off", "No")];
    Ok(FOLLOWUP_SETTINGS.render_as(
        &Vars::new()
            .set("tone_options", options(TONES))
            .set("tone_initial", pick(TONES, &user.email_tone))
            .set("language_options", options(&languages))
            .set(
                "language_initial",
                pick(
                    &languages,
                    user.language_override.as_deref().unwrap_or(AUTO),
                ),
            )
            .set("signature", user.signature.clone().unwrap_or_default())
            .set("task_type_options", options(TASK_TYPES))
            .set(
                "task_type_initial",
                pick(TASK_TYPES, &user.default_task_type),
            )
            .set("task_time", user.default_task_time.clone())
            .set("dms_options", options(&dms))
            .set(
                "dms_initial",
                pick(&dms, if user.meeting_dms { "on" } else { "off" }),
            )
            .set("team", Value::Array(team)),
    )?)
}

pub fn register(features: &mut crate::registry::Features) {
    features.command("/followup-settings", SettingsCommand);
    features.submission("followup_settings", SettingsSubmit);
    features.action(
        crate::services::home::actions::SETTINGS_EDIT,
        SettingsCommand,
    );
    features.action(DELETE_BUTTON, DeleteAsk);
    features.submission(DELETE_CALLBACK, DeleteConfirmed);
    features.jobs.add(DELETE_JOB, Arc::new(DeleteData));
}

/// The settings modal's "Delete my data" button, its confirmation modal, and the job.
const DELETE_BUTTON: &str = "settings_delete_data";
const DELETE_CALLBACK: &str = "delete_my_data";
pub const DELETE_JOB: &str = "person.delete_data";

pub struct SettingsCommand;

#[async_trait]
impl Handler for SettingsCommand {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        // Asked before the window opens, so within the trigger's 3 s: a slow Slack costs the
        // Team settings button (App Home has it too), never the window.
        let admin = tokio::time::timeout(
            ADMIN_CHECK,
            cx.services
                .is_team_admin(cx.tenant.id, &cx.user.slack_user_id),
        )
        .await
        .unwrap_or(false);
        cx.services
            .slack
            .views_open(&trigger, settings_view(&cx.user, admin)?)
            .await?;
        Ok(())
    }
}

fn read(payload: &Value) -> Result<Settings, Vec<(&'static str, &'static str)>> {
    let get = |block: &str| state_value(payload, block, "value");
    let mut errors = Vec::new();
    let tone = get("tone").filter(|t| TONES.iter().any(|(v, _)| v == t));
    if tone.is_none() {
        errors.push(("tone", "Pick a tone."));
    }
    let language = get("language").unwrap_or_else(|| AUTO.to_owned());
    if !languages().iter().any(|(v, _)| *v == language) {
        errors.push(("language", "Pick a language from the list."));
    }
    let task_type = get("task_type").filter(|t| TASK_TYPES.iter().any(|(v, _)| v == t));
    if task_type.is_none() {
        errors.push(("task_type", "Pick a task type."));
    }
    let time = get("task_time").filter(|t| chrono::NaiveTime::parse_from_str(t, "%H:%M").is_ok());
    if time.is_none() {
        errors.push(("task_time", "Pick a time such as 09:00."));
    }
    let signature = get("signature")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if signature.as_ref().is_some_and(|s| s.chars().count() > 500) {
        errors.push(("signature", "Keep the signature under 500 characters."));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Settings {
        email_tone: tone.unwrap_or_default(),
        language_override: (language != AUTO).then_some(language),
        signature,
        default_task_type: task_type.unwrap_or_default(),
        default_task_time: time.unwrap_or_default(),
        meeting_dms: get("meeting_dms").as_deref() != Some("off"),
    })
}

pub struct SettingsSubmit;

#[async_trait]
impl Handler for SettingsSubmit {
    async fn ack(&self, _services: &Services, _event: &SlackEvent, payload: &Value) -> Ack {
        match read(payload) {
            Ok(_) => Ack::Continue(None),
            Err(errors) => field_errors(&errors),
        }
    }

    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        if let Ok(settings) = read(&cx.payload) {
            cx.services
                .store
                .update_settings(cx.user.id, &settings)
                .await?;
            if settings.meeting_dms && !cx.user.meeting_dms {
                // Back on: announce from now, not everything recorded while it was off.
                let now = crate::store::now();
                cx.services
                    .store
                    .set_fathom_poll(cx.user.id, now, now)
                    .await?;
            }
            cx.services
                .people
                .forget(&cx.tenant.slack_team_id, &cx.user.slack_user_id);
            cx.services.refresh_home(cx.tenant.id, cx.user.id).await;
        }
        Ok(())
    }
}

/// "Delete my data" pressed: the confirmation, pushed over the settings (Cancel goes back).
pub struct DeleteAsk;

#[async_trait]
impl Handler for DeleteAsk {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        cx.services
            .slack
            .views_push(&trigger, DELETE_DATA.render_as(&Vars::new())?)
            .await?;
        Ok(())
    }
}

const NOT_STARTED: &str = "Sorry, I could not start deleting your data. Nothing was deleted: \
    please close this and press *Delete my data* again in a minute.";

#[derive(serde::Serialize, serde::Deserialize)]
struct DeletePayload {
    tenant: TenantId,
    user: UserId,
    slack_user: String,
}

/// Confirmed: the job is queued (keyed by the confirmation's view, so a redelivered or
/// double-pressed Delete queues one) before the modals close.
pub struct DeleteConfirmed;

#[async_trait]
impl Handler for DeleteConfirmed {
    async fn ack(&self, services: &Services, event: &SlackEvent, payload: &Value) -> Ack {
        match queue_delete(services, event, payload).await {
            Ok(()) => Ack::Stop(Some(json!({ "response_action": "clear" }))),
            Err(e) => {
                tracing::error!(error = ?e, "could not queue a person's data deletion");
                match MODAL_MESSAGE.render(
                    &Vars::new()
                        .set("callback_id", "delete_not_started")
                        .set("title", "Delete my data")
                        .set("text", NOT_STARTED),
                ) {
                    Ok(view) => {
                        Ack::Stop(Some(json!({ "response_action": "update", "view": view })))
                    }
                    Err(_) => Ack::Stop(None),
                }
            }
        }
    }

    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        Ok(()) // queued in the ack; the job confirms in the DM
    }
}

async fn queue_delete(
    services: &Services,
    event: &SlackEvent,
    payload: &Value,
) -> anyhow::Result<()> {
    let (Some(team), Some(slack_user)) = (event.team_id(), event.user_id()) else {
        anyhow::bail!("a confirmation without its team or person");
    };
    let (tenant, user) = services
        .people
        .resolve(&services.store, &*services.slack, &team, &slack_user)
        .await?;
    let job = DeletePayload {
        tenant: tenant.id,
        user: user.id,
        slack_user: user.slack_user_id.clone(),
    };
    let key = format!(
        "delete-data:{}:{}",
        user.id,
        view_id(payload).unwrap_or("none")
    );
    services
        .store
        .enqueue_once(
            DELETE_JOB,
            &serde_json::to_value(&job)?,
            &key,
            services.config.jobs.max_attempts,
        )
        .await?;
    services.queue.notify();
    Ok(())
}

const DELETED: &str = "Done: I deleted your data. Your follow-ups, your Fathom key and its \
    webhook, your Google connection and your settings are gone. To start again, type \
    `/fathom-connect`.";

/// Deletes the person's data (Fathom's webhook and Google's grant revoked at the source
/// first), then says so and redraws their Home. Running it twice is harmless.
pub struct DeleteData;

#[async_trait]
impl JobHandler for DeleteData {
    async fn run(&self, services: &Arc<Services>, job: &Job) -> Result<(), JobError> {
        let payload: DeletePayload = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Permanent(anyhow::anyhow!("an unreadable deletion job: {e}")))?;
        services
            .delete_person_data(payload.tenant, payload.user)
            .await
            .map_err(JobError::Retry)?;
        if let Err(e) = services
            .dm(
                &payload.slack_user,
                SlackMessageContent::new().with_text(DELETED.to_owned()),
            )
            .await
        {
            tracing::warn!(error = %e, "could not tell a person their data is deleted");
        }
        services.refresh_home(payload.tenant, payload.user).await;
        Ok(())
    }

    async fn dead(&self, services: &Arc<Services>, job: &Job, _dead: crate::jobs::Dead<'_>) {
        if let Ok(payload) = serde_json::from_str::<DeletePayload>(&job.payload) {
            let text = "Sorry, I could not finish deleting your data. Please open \
                `/followup-settings` and press *Delete my data* again; if it fails again, \
                ask your Slack admin.";
            let _ = services
                .dm(
                    &payload.slack_user,
                    SlackMessageContent::new().with_text(text.to_owned()),
                )
                .await;
        }
    }
}
