//! `/followup-settings`: tone, language, signature, default task type and time, and whether
//! to be told when a new recording is ready.

use async_trait::async_trait;
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use crate::blocks::{FOLLOWUP_SETTINGS, Vars};
use crate::dispatch::{Ack, Ctx, Handler, HandlerResult, field_errors};
use crate::domain::language::LANGUAGES;
use crate::domain::person::{Settings, User};
use crate::services::Services;
use crate::slack::envelope::SlackEvent;
use crate::slack::payload::{state_value, trigger_id};

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

pub fn settings_view(user: &User) -> anyhow::Result<SlackView> {
    let languages = languages();
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
            ),
    )?)
}

pub fn register(features: &mut crate::registry::Features) {
    features.command("/followup-settings", SettingsCommand);
    features.submission("followup_settings", SettingsSubmit);
    features.action(
        crate::services::home::actions::SETTINGS_EDIT,
        SettingsCommand,
    );
}

pub struct SettingsCommand;

#[async_trait]
impl Handler for SettingsCommand {
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult {
        let Some(trigger) = trigger_id(&event) else {
            return Ok(());
        };
        cx.services
            .slack
            .views_open(&trigger, settings_view(&cx.user)?)
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
