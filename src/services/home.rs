//! App Home: a person's connections, settings and latest follow-ups, published on
//! `app_home_opened` and again whenever one of those changes. Built here, below the features,
//! because every feature that changes a connection or a setting refreshes it.
//!
//! The buttons' action ids are handled by the feature that owns each thing (Fathom's connect
//! modal, Google's link, the CRM's modal, the settings modal, "View & Edit").

use serde_json::{Value, json};
use slack_morphism::prelude::SlackView;
use tracing::warn;

use super::Services;
use crate::blocks::{self, Vars};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::person::User;
use crate::domain::provider::Provider;
use crate::store::credentials::Subject;
use crate::store::followups::Listed;

/// How many follow-ups Home lists.
pub const LATEST: i64 = 10;

/// The buttons App Home shows, each handled by the feature that owns the thing.
pub mod actions {
    pub const FATHOM_CONNECT: &str = "home_fathom_connect";
    pub const FATHOM_DISCONNECT: &str = "home_fathom_disconnect";
    pub const GMAIL_CONNECT: &str = "home_gmail_connect";
    pub const GMAIL_DISCONNECT: &str = "home_gmail_disconnect";
    pub const CRM_CONNECT: &str = "home_crm_connect";
    pub const CRM_DISCONNECT: &str = "home_crm_disconnect";
    pub const SETTINGS_EDIT: &str = "home_settings_edit";
    /// Pauses or resumes the team's CRM sync (value `pause` or `resume`; admins).
    pub const CRM_SYNC: &str = "home_crm_sync";
}

/// Gmail, as far as this person is concerned.
#[derive(Clone, Debug, PartialEq)]
pub enum Gmail {
    /// This deployment has no Google client.
    NotOffered,
    NotConnected,
    /// Connected, with the account's address when Google told it.
    Connected(Option<String>),
}

/// Everything App Home shows one person.
#[derive(Clone, Debug)]
pub struct HomeData {
    pub user: User,
    pub fathom: bool,
    pub gmail: Gmail,
    /// The team's CRM and the Slack id of who connected it.
    pub crm: Option<(Provider, Option<String>)>,
    /// Whether the person may connect the team's CRM.
    pub admin: bool,
    /// The team's CRM sync, for admins when a CRM is connected.
    pub sync: Option<super::mirror::SyncStatus>,
    pub followups: Vec<Listed>,
}

fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

fn button(action_id: &str, label: &str) -> anyhow::Result<Value> {
    Ok(blocks::HOME_BUTTON.render(
        &Vars::new()
            .set("action_id", action_id)
            .set("label", label)
            .set("value", "connect"),
    )?)
}

fn disconnect(action_id: &str, service: &str, consequence: &str) -> anyhow::Result<Value> {
    Ok(blocks::HOME_DISCONNECT.render(
        &Vars::new()
            .set("action_id", action_id)
            .set("service", service)
            .set("consequence", consequence),
    )?)
}

fn row(text: String, button: Value) -> anyhow::Result<Value> {
    Ok(blocks::HOME_ROW.render(&Vars::new().set("text", mrkdwn(text)).set("button", button))?)
}

fn line(text: String) -> anyhow::Result<Value> {
    Ok(blocks::HOME_TEXT.render(&Vars::new().set("text", mrkdwn(text)))?)
}

fn connections(home: &HomeData) -> anyhow::Result<Vec<Value>> {
    use actions::*;
    let mut rows = Vec::new();
    rows.push(if home.fathom {
        row(
            ":white_check_mark: *Fathom* is connected: your recorded calls can be drafted."
                .to_owned(),
            disconnect(
                FATHOM_DISCONNECT,
                "Fathom",
                "Your Fathom key is deleted and no more meeting-ready messages come.",
            )?,
        )?
    } else {
        row(
            ":one: *Fathom* is not connected. Connect it first: every follow-up is drafted \
             from a Fathom recording."
                .to_owned(),
            button(FATHOM_CONNECT, "Connect Fathom")?,
        )?
    });
    match &home.gmail {
        Gmail::NotOffered => rows.push(line(
            ":email: *Gmail* drafts are not set up on this deployment (ask your admin).".to_owned(),
        )?),
        Gmail::NotConnected => rows.push(row(
            ":two: *Gmail* is not connected. Connect it to save follow-ups as drafts in your \
             own mailbox and add meetings to your calendar."
                .to_owned(),
            button(GMAIL_CONNECT, "Connect Gmail")?,
        )?),
        Gmail::Connected(email) => rows.push(row(
            match email {
                Some(email) => format!(
                    ":white_check_mark: *Gmail* is connected as {}.",
                    blocks::escape(email)
                ),
                None => ":white_check_mark: *Gmail* is connected.".to_owned(),
            },
            disconnect(
                GMAIL_DISCONNECT,
                "Gmail",
                "The bot's access is revoked at Google and its tokens deleted. Drafts already \
                 saved stay in Gmail.",
            )?,
        )?),
    }
    let crm = match &home.crm {
        Some((provider, Some(by))) => format!(
            ":white_check_mark: *CRM*: {} is connected for the team (by <@{}>).",
            provider.label(),
            blocks::escape(by)
        ),
        Some((provider, None)) => format!(
            ":white_check_mark: *CRM*: {} is connected for the team.",
            provider.label()
        ),
        None if home.admin => ":three: *CRM*: none connected yet. As an admin, you \
             can connect the team's Crono, HubSpot, Zoho or Odoo."
            .to_owned(),
        None => ":three: *CRM*: none connected yet. A workspace admin can connect it with \
             `/crono-connect`."
            .to_owned(),
    };
    rows.push(match (&home.crm, home.admin) {
        (None, true) => row(crm, button(CRM_CONNECT, "Connect the CRM")?)?,
        (Some((provider, _)), true) => row(
            crm,
            disconnect(
                CRM_DISCONNECT,
                provider.label(),
                "The CRM's keys are deleted for the whole workspace: nobody's notes or tasks \
                 reach it until an admin connects a CRM again.",
            )?,
        )?,
        (_, false) => line(crm)?,
    });
    if let (true, Some(sync)) = (home.admin, &home.sync) {
        let (action, label) = if sync.paused {
            ("resume", "Resume sync")
        } else {
            ("pause", "Pause sync")
        };
        rows.push(row(
            format!(
                ":arrows_counterclockwise: {}",
                super::mirror::sync_summary(sync)
            ),
            blocks::HOME_BUTTON.render(
                &Vars::new()
                    .set("action_id", CRM_SYNC)
                    .set("label", label)
                    .set("value", action),
            )?,
        )?);
    }
    if home.admin {
        rows.push(row(
            ":gear: *Team settings* (admins): bot admins and how long follow-ups are kept."
                .to_owned(),
            button(super::admins::OPEN_TEAM_SETTINGS, "Team settings")?,
        )?);
    }
    Ok(rows)
}

fn settings(user: &User) -> Value {
    let tone = match user.email_tone.as_str() {
        "friendly" => "friendly",
        "formal" => "formal",
        _ => "professional",
    };
    let language = match &user.language_override {
        Some(code) => crate::domain::language::LANGUAGES
            .iter()
            .find(|(c, _)| c == code)
            .map_or(code.as_str(), |(_, name)| name)
            .to_owned(),
        None => "the meeting's language".to_owned(),
    };
    let task = match user.default_task_type.as_str() {
        "call" => "Call",
        "linkedin" => "LinkedIn",
        "inmail" => "InMail",
        _ => "Email",
    };
    mrkdwn(format!(
        "*Your settings*\nEmails in a {tone} tone, in {}; signature {}.\nNew tasks: {task} at \
         {}. Meeting-ready messages: {}.",
        blocks::escape(&language),
        if user.signature.is_some() {
            "set"
        } else {
            "not set"
        },
        blocks::escape(&user.default_task_time),
        if user.meeting_dms { "on" } else { "off" },
    ))
}

/// What a follow-up's line says it has become.
fn states(f: &Listed) -> String {
    let mut states = vec![match f.status.as_str() {
        "drafting" => ":hourglass_flowing_sand: Drafting…",
        "failed" => ":warning: Could not be drafted",
        _ => ":memo: Draft ready",
    }];
    for (done, text) in [
        (f.gmail_draft, ":email: Gmail draft saved"),
        (f.calendar_event, ":calendar: Event created"),
        (f.crm_note, ":bookmark_tabs: Note pushed"),
        (f.crm_task, ":ballot_box_with_check: Task created"),
    ] {
        if done {
            states.push(text);
        }
    }
    states.join(" · ")
}

fn followups(home: &HomeData) -> anyhow::Result<Vec<Value>> {
    if home.followups.is_empty() {
        let text = if home.fathom {
            "No follow-ups yet. After your next customer call, type `/followup` and pick the \
             meeting (or press *Draft follow-up* in the message I send when it is ready)."
        } else {
            "No follow-ups yet. Connect Fathom above, then type `/followup` after a call."
        };
        return Ok(vec![line(text.to_owned())?]);
    }
    home.followups
        .iter()
        .map(|f| {
            let (title, _) = blocks::fit(&f.meeting_title, 150);
            let when = f.meeting_started_at.unwrap_or(f.created_at);
            // Slack shows the date in the reader's own time zone; the fallback is UTC.
            let date = format!(
                "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
                when.timestamp(),
                when.format("%d %b %Y %H:%M UTC")
            );
            let text = format!("*{}*\n{date} · {}", blocks::escape(&title), states(f));
            let view =
                blocks::HOME_VIEW_BUTTON.render(&Vars::new().set("followup_id", f.id.0.clone()))?;
            row(text, view)
        })
        .collect()
}

/// App Home for one person, from what `HomeData` holds.
pub fn home_view(home: &HomeData) -> anyhow::Result<SlackView> {
    let name = home
        .user
        .real_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("there");
    let intro = if home.fathom {
        format!(
            "Hi {}! After a customer call, type `/followup`, pick the meeting and get the \
             follow-up email drafted in the meeting's language, ready to edit and send on.",
            blocks::escape(name)
        )
    } else {
        format!(
            "Hi {}! I draft your follow-up emails from your recorded customer calls. *Start \
             here:* connect Fathom (your calls' recordings), then Gmail (drafts in your own \
             mailbox); after your next call, type `/followup`.",
            blocks::escape(name)
        )
    };
    Ok(blocks::HOME.render_as(
        &Vars::new()
            .set("intro", mrkdwn(intro))
            .set("connections", connections(home)?)
            .set("settings", settings(&home.user))
            .set("followups", followups(home)?),
    )?)
}

impl Services {
    /// What App Home shows this person now.
    pub async fn home_data(&self, tenant: TenantId, user: UserId) -> anyhow::Result<HomeData> {
        let user = self
            .store
            .user(tenant, user)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no such person"))?;
        let fathom = self.fathom_key(tenant, user.id).await?.is_ok();
        let gmail = if self.google.is_none() {
            Gmail::NotOffered
        } else {
            match self.google_account(tenant, user.id).await? {
                Some(email) => Gmail::Connected(email),
                None => Gmail::NotConnected,
            }
        };
        let crm = match self.store.team_crm(tenant).await? {
            Some(provider) => {
                let by = self
                    .store
                    .credential(&self.cipher, tenant, Subject::Tenant, provider)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|c| c.metadata["connected_by"].as_str().map(str::to_owned));
                Some((provider, by))
            }
            None => None,
        };
        let admin = self.is_team_admin(tenant, &user.slack_user_id).await;
        let sync = if admin && crm.is_some() {
            match self.crm_sync_status(tenant).await {
                Ok(status) => Some(status),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the CRM sync's status");
                    None
                }
            }
        } else {
            None
        };
        let followups = self.store.latest_followups(tenant, user.id, LATEST).await?;
        Ok(HomeData {
            user,
            fathom,
            gmail,
            crm,
            admin,
            sync,
            followups,
        })
    }

    /// Publishes the person's App Home.
    pub async fn publish_home(&self, tenant: TenantId, user: UserId) -> anyhow::Result<()> {
        let home = self.home_data(tenant, user).await?;
        let view = home_view(&home)?;
        self.slack
            .views_publish(&home.user.slack_user_id, view)
            .await?;
        Ok(())
    }

    /// As `publish_home`, after something on it changed: a failure is logged, never the
    /// person's problem (Home is published again when they open it).
    pub async fn refresh_home(&self, tenant: TenantId, user: UserId) {
        if let Err(e) = self.publish_home(tenant, user).await {
            warn!(error = ?e, "could not refresh App Home");
        }
    }
}
