//! Who may change a team's settings: Slack's workspace admins and owners, and the bot admins
//! they (or other bot admins) named. Asked fresh every time (Slack's role by `users.info`,
//! the bot admins from the store): a demoted admin loses the right at once.

use tracing::warn;

use super::Services;
use crate::domain::ids::{TenantId, UserId};

/// The button that opens the team's settings (in the person's settings and App Home).
pub const OPEN_TEAM_SETTINGS: &str = "team_settings_open";

/// A Slack user id as Slack writes them (`U…` or `W…`).
pub fn is_slack_user_id(id: &str) -> bool {
    (id.starts_with('U') || id.starts_with('W'))
        && (3..=24).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl Services {
    /// Whether the person may change the team's settings (its CRM, the sync pause switch,
    /// retention, bot admins): a bot admin, or a Slack workspace admin or owner. A store or
    /// Slack failure counts as "no".
    pub async fn is_team_admin(&self, tenant: TenantId, slack_user: &str) -> bool {
        match self.store.is_bot_admin(tenant, slack_user).await {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not read the bot admins"),
        }
        self.is_workspace_admin(slack_user).await
    }

    /// The same, for an envelope that names only its Slack team.
    pub async fn is_team_admin_of(&self, team: &str, slack_user: &str) -> bool {
        match self.store.tenant_by_team(team).await {
            Ok(Some(tenant)) => self.is_team_admin(tenant, slack_user).await,
            Ok(None) => self.is_workspace_admin(slack_user).await,
            Err(e) => {
                warn!(error = %e, "could not read the team");
                false
            }
        }
    }

    /// "Only … can {what}.", naming who can: Slack's admins and owners, and the bot admins
    /// by mention.
    pub async fn only_admins(&self, tenant: Option<TenantId>, what: &str) -> String {
        let named = match tenant {
            Some(tenant) => self.store.bot_admins(tenant).await.unwrap_or_default(),
            None => Vec::new(),
        };
        if named.is_empty() {
            format!(
                "Only a Slack workspace admin or owner can {what}. Ask one of them; they can \
                 also name bot admins in `/followup-settings`."
            )
        } else {
            let mentions: Vec<String> = named.iter().map(|u| format!("<@{u}>")).collect();
            format!(
                "Only a Slack workspace admin or owner, or a bot admin ({}), can {what}. Ask \
                 one of them.",
                mentions.join(", ")
            )
        }
    }

    /// Makes the team's bot admins exactly `wanted`; each addition and removal audited.
    /// Returns (added, removed).
    pub async fn set_bot_admins(
        &self,
        tenant: TenantId,
        by: UserId,
        by_slack: &str,
        wanted: &[String],
    ) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let current = self.store.bot_admins(tenant).await?;
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for user in wanted.iter().filter(|u| !current.contains(u)) {
            if self.store.add_bot_admin(tenant, user, by_slack).await? {
                self.store
                    .audit(tenant, Some(by), "bot_admin_add", user, "ok", None)
                    .await?;
                added.push(user.clone());
            }
        }
        for user in current.iter().filter(|u| !wanted.contains(u)) {
            if self.store.remove_bot_admin(tenant, user).await? {
                self.store
                    .audit(tenant, Some(by), "bot_admin_remove", user, "ok", None)
                    .await?;
                removed.push(user.clone());
            }
        }
        Ok((added, removed))
    }

    /// The team's retention: its own, or the deployment's.
    pub async fn team_retention_days(&self, tenant: TenantId) -> u32 {
        self.store
            .team_retention(tenant)
            .await
            .ok()
            .flatten()
            .unwrap_or(self.config.retention.days)
    }

    /// Sets the team's own retention (`None`: the deployment's), audited when it changes.
    pub async fn set_team_retention(
        &self,
        tenant: TenantId,
        by: UserId,
        days: Option<u32>,
    ) -> anyhow::Result<bool> {
        if self.store.team_retention(tenant).await? == days {
            return Ok(false);
        }
        self.store.set_team_retention(tenant, days).await?;
        let detail = days.map_or_else(|| "default".to_owned(), |d| d.to_string());
        self.store
            .audit(
                tenant,
                Some(by),
                "retention_set",
                "team",
                "ok",
                Some(&detail),
            )
            .await?;
        Ok(true)
    }
}
