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
use crate::domain::ids::TenantId;
use crate::domain::person::Profile;
use crate::domain::provider::Provider;
use crate::slack::api::{BotIdentity, MorphismSlack, SlackApi, SlackApiError, SlackResult};
use crate::store::Store;
use crate::store::credentials::{Credential, NewCredential, Subject};

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
    /// For refreshing rotating tokens.
    refresh: Refresher,
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
        refresh: Refresher,
    ) -> Self {
        Self {
            default: Arc::new(default),
            installs: Some(Installs {
                store,
                cipher,
                refresh,
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
        if let Some(token) = self.own_token(team).await {
            return Some(token);
        }
        // A workspace of an org-wide install: the enterprise's token.
        let enterprise = self.store.team_enterprise(team).await.ok().flatten()?;
        self.own_token(&enterprise).await
    }

    async fn own_token(&self, team: &str) -> Option<SecretString> {
        let tenant = match self.store.tenant_by_team(team).await {
            Ok(Some(tenant)) => tenant,
            Ok(None) => return None,
            Err(e) => {
                warn!(error = ?e, "could not read a workspace");
                return None;
            }
        };
        let mut credential = self.read(tenant).await?;
        let soon = |c: &Credential| {
            c.expires_at
                .is_some_and(|at| at - crate::store::now() < REFRESH_BEFORE)
        };
        if soon(&credential) {
            // One refresh at a time per team: in this process (the lock) and across replicas
            // (a lease); whoever waited reads the token the other saved.
            let lock = self.refresh.lock(team);
            let _held = lock.lock().await;
            credential = self.read(tenant).await?;
            if soon(&credential) {
                credential = self.rotate(team, tenant, credential).await?;
            }
        }
        let tokens: BotTokens = serde_json::from_str(credential.secret.expose_secret()).ok()?;
        Some(SecretString::from(tokens.bot_token))
    }

    async fn read(&self, tenant: TenantId) -> Option<Credential> {
        self.store
            .credential(&self.cipher, tenant, Subject::Tenant, Provider::Slack)
            .await
            .ok()
            .flatten()
    }

    /// Refreshes a rotating token (`oauth.v2.access` with `grant_type=refresh_token`) and
    /// saves the new pair; the stored one when another replica holds the refresh.
    async fn rotate(
        &self,
        team: &str,
        tenant: TenantId,
        credential: Credential,
    ) -> Option<Credential> {
        let lease = format!("slack-refresh:{team}");
        let holder = uuid::Uuid::new_v4().simple().to_string();
        for _ in 0..50 {
            match self
                .store
                .try_lease(&lease, &holder, Duration::from_secs(30))
                .await
            {
                Ok(true) => break,
                Ok(false) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let now = self.read(tenant).await?;
                    if now.expires_at != credential.expires_at {
                        return Some(now); // refreshed by another replica
                    }
                }
                Err(e) => {
                    warn!(error = ?e, "could not take the token refresh lease");
                    return Some(credential);
                }
            }
        }
        let tokens: BotTokens = serde_json::from_str(credential.secret.expose_secret()).ok()?;
        let Some(refresh_token) = tokens.refresh_token else {
            let _ = self.store.release_lease(&lease, &holder).await;
            return Some(credential);
        };
        let answer = self.refresh.exchange(&refresh_token).await;
        let saved = match answer {
            Some((bot_token, refresh_token, expires_in)) => {
                let secret = SecretString::from(
                    serde_json::to_string(&BotTokens {
                        bot_token,
                        refresh_token: Some(refresh_token),
                    })
                    .ok()?,
                );
                let stored = self
                    .store
                    .put_credential(
                        &self.cipher,
                        NewCredential {
                            tenant,
                            subject: Subject::Tenant,
                            provider: Provider::Slack,
                            secret: &secret,
                            account_email: None,
                            api_domain: None,
                            expires_at: Some(
                                crate::store::now() + chrono::Duration::seconds(expires_in),
                            ),
                            scopes: None,
                            metadata: credential.metadata.clone(),
                        },
                    )
                    .await;
                if let Err(e) = stored {
                    warn!(error = ?e, "could not save a refreshed Slack token");
                }
                tracing::info!(team = %team, "refreshed a rotating Slack bot token");
                self.read(tenant).await
            }
            None => Some(credential),
        };
        let _ = self.store.release_lease(&lease, &holder).await;
        saved
    }
}

/// Rotating bot tokens are refreshed when they expire within this long.
const REFRESH_BEFORE: chrono::Duration = chrono::Duration::minutes(5);

/// What refreshing a rotating token needs: the app's client, Slack's API, a lock per team.
pub struct Refresher {
    http: reqwest::Client,
    api_url: String,
    client_id: String,
    client_secret: SecretString,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Refresher {
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        client_id: &str,
        client_secret: &SecretString,
    ) -> Self {
        Self {
            http,
            api_url: api_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.clone(),
            locks: Default::default(),
        }
    }

    fn lock(&self, team: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(team.to_owned())
            .or_default()
            .clone()
    }

    /// (bot token, refresh token, expires in seconds), or `None` when Slack said no.
    async fn exchange(&self, refresh_token: &str) -> Option<(String, String, i64)> {
        #[derive(Deserialize)]
        struct Answer {
            ok: bool,
            #[serde(default)]
            error: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            refresh_token: Option<String>,
            #[serde(default)]
            expires_in: Option<i64>,
        }
        let sent = self
            .http
            .post(format!("{}/oauth.v2.access", self.api_url))
            .timeout(Duration::from_secs(20))
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose_secret()),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await;
        let answer: Answer = match sent {
            Ok(response) => response.json().await.ok()?,
            Err(e) => {
                warn!(error = %e.without_url(), "could not refresh a Slack token");
                return None;
            }
        };
        match (answer.ok, answer.access_token, answer.refresh_token) {
            (true, Some(token), Some(refresh)) => {
                Some((token, refresh, answer.expires_in.unwrap_or(43_200)))
            }
            _ => {
                warn!(
                    error = answer.error.as_deref().unwrap_or("-"),
                    "Slack refused a token refresh"
                );
                None
            }
        }
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
