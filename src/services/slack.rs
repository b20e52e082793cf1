//! Slack's Web API for the workspace of the current work (`crate::workspace`): with
//! `SLACK_CLIENT_ID`/`SECRET` (many workspaces) each installed team's own bot token, looked
//! up once and kept a minute; the team `SLACK_BOT_TOKEN` belongs to (`auth.test`) uses that
//! one. Work for a team with no installation gets an error, never another team's token.
//! Without them (one workspace) every call uses `SLACK_BOT_TOKEN`, as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::*;
use tracing::warn;

use crate::crypto::Cipher;
use crate::domain::person::Profile;
use crate::domain::provider::Provider;
use crate::slack::api::{BotIdentity, MorphismSlack, SlackApi, SlackApiError, SlackResult};
use crate::store::Store;
use crate::store::credentials::Subject;

/// How long a team's token is used before it is read again (an uninstall also drops it).
const KEEP: Duration = Duration::from_secs(60);

/// A workspace's bot tokens, sealed together.
#[derive(Deserialize, Serialize)]
pub struct BotTokens {
    pub bot_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

type Cached = (Arc<MorphismSlack>, Instant);

pub struct Workspaces {
    default: Arc<MorphismSlack>,
    /// `None`: one workspace, every call on `SLACK_BOT_TOKEN`.
    installs: Option<Installs>,
}

struct Installs {
    store: Store,
    cipher: Cipher,
    has_default_token: bool,
    default_team: tokio::sync::OnceCell<Option<String>>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Workspaces {
    pub fn single(default: MorphismSlack) -> Self {
        Self {
            default: Arc::new(default),
            installs: None,
        }
    }

    pub fn many(
        default: MorphismSlack,
        has_default_token: bool,
        store: Store,
        cipher: Cipher,
    ) -> Self {
        Self {
            default: Arc::new(default),
            installs: Some(Installs {
                store,
                cipher,
                has_default_token,
                default_team: Default::default(),
                cache: Default::default(),
            }),
        }
    }

    /// Forgets a team's token (installed again, uninstalled, rotated).
    pub fn forget(&self, team: &str) {
        if let Some(installs) = &self.installs {
            installs
                .cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(team);
        }
    }

    /// Whether work for `team` can reach Slack (always with one workspace).
    pub async fn installed(&self, team: &str) -> bool {
        self.installs.is_none() || crate::workspace::within(team, self.pick()).await.is_ok()
    }

    /// The client for the current workspace.
    async fn pick(&self) -> SlackResult<Arc<MorphismSlack>> {
        let Some(installs) = &self.installs else {
            return Ok(self.default.clone());
        };
        let Some(team) = crate::workspace::current() else {
            // Work for no workspace (startup checks): only the deployment's own token.
            return if installs.has_default_token {
                Ok(self.default.clone())
            } else {
                Err(SlackApiError::Slack("not_installed".to_owned()))
            };
        };
        if let Some((client, at)) = installs
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&team)
            && at.elapsed() < KEEP
        {
            return Ok(client.clone());
        }
        if installs.has_default_token {
            let default_team = installs
                .default_team
                .get_or_init(|| async {
                    match self.default.auth_test().await {
                        Ok(me) => Some(me.team_id),
                        Err(e) => {
                            warn!(error = %e, "SLACK_BOT_TOKEN's team could not be asked");
                            None
                        }
                    }
                })
                .await;
            if default_team.as_deref() == Some(team.as_str()) {
                return Ok(self.default.clone());
            }
        }
        let Some(token) = installs.token(&team).await else {
            warn!(team = %team, "work for a workspace with no installation; nothing is sent");
            return Err(SlackApiError::Slack("not_installed".to_owned()));
        };
        let client = Arc::new(self.default.with_bot_token(&token));
        installs
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(team, (client.clone(), Instant::now()));
        Ok(client)
    }
}

impl Installs {
    async fn token(&self, team: &str) -> Option<SecretString> {
        let tenant = match self.store.tenant_by_team(team).await {
            Ok(Some(tenant)) => tenant,
            Ok(None) => return None,
            Err(e) => {
                warn!(error = ?e, "could not read a workspace");
                return None;
            }
        };
        let credential = self
            .store
            .credential(&self.cipher, tenant, Subject::Tenant, Provider::Slack)
            .await
            .ok()
            .flatten()?;
        let tokens: BotTokens = serde_json::from_str(credential.secret.expose_secret()).ok()?;
        Some(SecretString::from(tokens.bot_token))
    }
}

#[async_trait]
impl SlackApi for Workspaces {
    async fn open_socket_url(&self) -> SlackResult<String> {
        self.default.open_socket_url().await
    }

    async fn auth_test(&self) -> SlackResult<BotIdentity> {
        self.pick().await?.auth_test().await
    }

    async fn views_open(&self, trigger_id: &str, view: SlackView) -> SlackResult<String> {
        self.pick().await?.views_open(trigger_id, view).await
    }

    async fn views_push(&self, trigger_id: &str, view: SlackView) -> SlackResult<String> {
        self.pick().await?.views_push(trigger_id, view).await
    }

    async fn views_update(
        &self,
        view_id: &str,
        hash: Option<&str>,
        view: SlackView,
    ) -> SlackResult<()> {
        self.pick().await?.views_update(view_id, hash, view).await
    }

    async fn views_publish(&self, user_id: &str, view: SlackView) -> SlackResult<()> {
        self.pick().await?.views_publish(user_id, view).await
    }

    async fn chat_post(&self, channel: &str, content: SlackMessageContent) -> SlackResult<String> {
        self.pick().await?.chat_post(channel, content).await
    }

    async fn chat_update(
        &self,
        channel: &str,
        ts: &str,
        content: SlackMessageContent,
    ) -> SlackResult<()> {
        self.pick().await?.chat_update(channel, ts, content).await
    }

    async fn respond(&self, response_url: &str, content: SlackMessageContent) -> SlackResult<()> {
        // A response URL needs no token: any client posts it.
        self.default.respond(response_url, content).await
    }

    async fn open_dm(&self, user_id: &str) -> SlackResult<String> {
        self.pick().await?.open_dm(user_id).await
    }

    async fn user_info(&self, user_id: &str) -> SlackResult<Profile> {
        self.pick().await?.user_info(user_id).await
    }
}
