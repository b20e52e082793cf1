//! The Slack Web API as handlers see it: a small trait of ours, implemented with
//! slack-morphism's client (with its rate control), so handlers can be tested without Slack.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::domain::person::Profile;

#[derive(Debug, thiserror::Error)]
pub enum SlackApiError {
    /// Slack answered `ok: false` with this code (e.g. `expired_trigger_id`, `invalid_auth`).
    #[error("Slack answered {0}")]
    Slack(String),
    #[error("Slack rate-limited the call")]
    RateLimited,
    #[error("could not reach Slack: {0}")]
    Transport(String),
}

impl From<SlackClientError> for SlackApiError {
    fn from(e: SlackClientError) -> Self {
        match e {
            SlackClientError::ApiError(api) => SlackApiError::Slack(api.code),
            SlackClientError::RateLimitError(_) => SlackApiError::RateLimited,
            other => {
                // The library's text is a debug dump; operators get plain words, the log the rest.
                let detail = other.to_string();
                tracing::debug!(%detail, "Slack transport error");
                SlackApiError::Transport(transport_trouble(&detail).to_owned())
            }
        }
    }
}

/// What went wrong on the way to Slack, in plain words, from the library's error text.
fn transport_trouble(detail: &str) -> &'static str {
    let d = detail.to_ascii_lowercase();
    if d.contains("dns error") || d.contains("lookup address") {
        "DNS lookup failed"
    } else if d.contains("connection refused") {
        "the connection was refused"
    } else if d.contains("timed out") || d.contains("timeout") {
        "the connection timed out"
    } else if d.contains("certificate") || d.contains("tls") || d.contains("handshake") {
        "the TLS handshake failed"
    } else if d.contains("decode") || d.contains("json") || d.contains("parse") {
        "Slack's answer could not be read"
    } else {
        "the connection failed"
    }
}

pub type SlackResult<T> = Result<T, SlackApiError>;

/// Counts and times a Web API call for `/metrics`.
async fn observe<T>(
    method: &'static str,
    call: impl std::future::Future<Output = SlackResult<T>>,
) -> SlackResult<T> {
    let started = std::time::Instant::now();
    let result = call.await;
    let status = match &result {
        Ok(_) => "ok",
        Err(SlackApiError::Slack(code)) => code.as_str(),
        Err(SlackApiError::RateLimited) => "ratelimited",
        Err(SlackApiError::Transport(_)) => "transport_error",
    };
    crate::telemetry::record_external("slack", method, status, started.elapsed());
    result
}

/// Who the bot token belongs to, from `auth.test`.
#[derive(Clone, Debug)]
pub struct BotIdentity {
    pub team_id: String,
    pub team: String,
    pub user_id: String,
    pub url: String,
}

#[async_trait]
pub trait SlackApi: Send + Sync {
    /// `apps.connections.open` with the app-level token: a single-use websocket URL.
    async fn open_socket_url(&self) -> SlackResult<String>;
    async fn auth_test(&self) -> SlackResult<BotIdentity>;
    /// Returns the new view's id.
    async fn views_open(&self, trigger_id: &str, view: SlackView) -> SlackResult<String>;
    /// Pushes a view onto the open modal's stack; returns the new view's id.
    async fn views_push(&self, trigger_id: &str, view: SlackView) -> SlackResult<String>;
    async fn views_update(
        &self,
        view_id: &str,
        hash: Option<&str>,
        view: SlackView,
    ) -> SlackResult<()>;
    async fn views_publish(&self, user_id: &str, view: SlackView) -> SlackResult<()>;
    /// Returns the message `ts`.
    async fn chat_post(&self, channel: &str, content: SlackMessageContent) -> SlackResult<String>;
    async fn chat_update(
        &self,
        channel: &str,
        ts: &str,
        content: SlackMessageContent,
    ) -> SlackResult<()>;
    /// Posts to an interaction's `response_url` (ephemeral unless `replace_original`).
    async fn respond(&self, response_url: &str, content: SlackMessageContent) -> SlackResult<()>;
    /// The id of the bot's DM channel with a user.
    async fn open_dm(&self, user_id: &str) -> SlackResult<String>;
    async fn user_info(&self, user_id: &str) -> SlackResult<Profile>;
}

pub type Connector = SlackClientHyperConnector<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
>;

/// slack-morphism's client with our two tokens.
pub struct MorphismSlack {
    client: Arc<SlackClient<Connector>>,
    bot_token: SlackApiToken,
    app_token: SlackApiToken,
}

impl MorphismSlack {
    /// `api_url` has no trailing slash (the client joins `{url}/{method}`). Plain `http://`
    /// is allowed so tests can point it at a loopback fake.
    pub fn new(
        api_url: &str,
        bot_token: &SecretString,
        app_token: &SecretString,
    ) -> std::io::Result<Self> {
        // TCP_NODELAY: without it a request written in two segments waits for the peer's
        // delayed ACK (measured: a 200 ms tail on views.open).
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp);
        let rate_control = SlackApiRateControlConfig::new()
            .with_max_retries(3)
            .with_max_delay_timeout(Duration::from_secs(20));
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_rate_control(rate_control)
            .with_slack_api_url(api_url);
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            bot_token: token(bot_token),
            app_token: token(app_token),
        })
    }
}

impl MorphismSlack {
    /// The same client (connections, rate control) speaking for another workspace's bot.
    pub fn with_bot_token(&self, bot_token: &SecretString) -> Self {
        Self {
            client: self.client.clone(),
            bot_token: token(bot_token),
            app_token: self.app_token.clone(),
        }
    }
}

fn token(secret: &SecretString) -> SlackApiToken {
    SlackApiToken::new(SlackApiTokenValue::new(secret.expose_secret().to_owned()))
}

#[async_trait]
impl SlackApi for MorphismSlack {
    async fn open_socket_url(&self) -> SlackResult<String> {
        observe("apps.connections.open", async move {
            let session = self.client.open_session(&self.app_token);
            let response = session
                .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
                .await?;
            Ok(response.url.0.to_string())
        })
        .await
    }

    async fn auth_test(&self) -> SlackResult<BotIdentity> {
        observe("auth.test", async move {
            let session = self.client.open_session(&self.bot_token);
            let r = session.auth_test().await?;
            Ok(BotIdentity {
                team_id: r.team_id.to_string(),
                team: r.team,
                user_id: r.user_id.to_string(),
                url: r.url.0.to_string(),
            })
        })
        .await
    }

    async fn views_open(&self, trigger_id: &str, view: SlackView) -> SlackResult<String> {
        observe("views.open", async move {
            let session = self.client.open_session(&self.bot_token);
            let r = session
                .views_open(&SlackApiViewsOpenRequest::new(trigger_id.into(), view))
                .await?;
            Ok(r.view.state_params.id.to_string())
        })
        .await
    }

    async fn views_push(&self, trigger_id: &str, view: SlackView) -> SlackResult<String> {
        observe("views.push", async move {
            let session = self.client.open_session(&self.bot_token);
            let r = session
                .views_push(&SlackApiViewsPushRequest::new(trigger_id.into(), view))
                .await?;
            Ok(r.view.state_params.id.to_string())
        })
        .await
    }

    async fn views_update(
        &self,
        view_id: &str,
        hash: Option<&str>,
        view: SlackView,
    ) -> SlackResult<()> {
        observe("views.update", async move {
            let session = self.client.open_session(&self.bot_token);
            let request = SlackApiViewsUpdateRequest::new(view)
                .with_view_id(view_id.into())
                .opt_hash(hash.map(str::to_owned));
            session.views_update(&request).await?;
            Ok(())
        })
        .await
    }

    async fn views_publish(&self, user_id: &str, view: SlackView) -> SlackResult<()> {
        observe("views.publish", async move {
            let session = self.client.open_session(&self.bot_token);
            session
                .views_publish(&SlackApiViewsPublishRequest::new(user_id.into(), view))
                .await?;
            Ok(())
        })
        .await
    }

    async fn chat_post(&self, channel: &str, content: SlackMessageContent) -> SlackResult<String> {
        observe("chat.postMessage", async move {
            let session = self.client.open_session(&self.bot_token);
            let r = session
                .chat_post_message(&SlackApiChatPostMessageRequest::new(
                    channel.into(),
                    content,
                ))
                .await?;
            Ok(r.ts.to_string())
        })
        .await
    }

    async fn chat_update(
        &self,
        channel: &str,
        ts: &str,
        content: SlackMessageContent,
    ) -> SlackResult<()> {
        observe("chat.update", async move {
            let session = self.client.open_session(&self.bot_token);
            session
                .chat_update(&SlackApiChatUpdateRequest::new(
                    channel.into(),
                    content,
                    ts.into(),
                ))
                .await?;
            Ok(())
        })
        .await
    }

    async fn respond(&self, response_url: &str, content: SlackMessageContent) -> SlackResult<()> {
        observe("response_url", async move {
            let url = url::Url::parse(response_url)
                .map_err(|_| SlackApiError::Slack("invalid_response_url".to_owned()))?;
            self.client
                .respond_to_event(
                    &SlackResponseUrl::new(url),
                    &SlackApiPostWebhookMessageRequest::new(content),
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn open_dm(&self, user_id: &str) -> SlackResult<String> {
        observe("conversations.open", async move {
            let session = self.client.open_session(&self.bot_token);
            let r = session
                .conversations_open(
                    &SlackApiConversationsOpenRequest::new().with_users(vec![user_id.into()]),
                )
                .await?;
            Ok(r.channel.id.to_string())
        })
        .await
    }

    async fn user_info(&self, user_id: &str) -> SlackResult<Profile> {
        observe("users.info", async move {
            let session = self.client.open_session(&self.bot_token);
            let r = session
                .users_info(&SlackApiUsersInfoRequest::new(user_id.into()))
                .await?;
            let user = r.user;
            let profile = user.profile.as_ref();
            Ok(Profile {
                email: profile
                    .and_then(|p| p.email.as_ref())
                    .map(|e| e.to_string()),
                real_name: user
                    .real_name
                    .clone()
                    .or_else(|| profile.and_then(|p| p.real_name.clone())),
                tz: user.tz.clone(),
                tz_offset_secs: user.tz_offset.map(i64::from),
                is_admin: user.flags.is_admin.unwrap_or(false)
                    || user.flags.is_owner.unwrap_or(false)
                    || user.flags.is_primary_owner.unwrap_or(false),
            })
        })
        .await
    }
}

/// The scopes a bot token holds, from the `x-oauth-scopes` header Slack puts on Web API
/// answers (slack-morphism does not expose headers, hence a plain POST to `auth.test`).
/// `Ok(None)`: Slack answered without the header.
pub async fn token_scopes(
    http: &reqwest::Client,
    api_url: &str,
    token: &SecretString,
) -> SlackResult<Option<Vec<String>>> {
    let response = http
        .post(format!("{api_url}/auth.test"))
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .map_err(|e| SlackApiError::Transport(transport_trouble(&e.to_string()).to_owned()))?;
    let scopes = response
        .headers()
        .get("x-oauth-scopes")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        });
    #[derive(serde::Deserialize)]
    struct Answer {
        ok: bool,
        #[serde(default)]
        error: Option<String>,
    }
    let answer: Answer = response
        .json()
        .await
        .map_err(|_| SlackApiError::Transport("Slack's answer could not be read".to_owned()))?;
    if !answer.ok {
        return Err(SlackApiError::Slack(
            answer.error.unwrap_or_else(|| "unknown_error".to_owned()),
        ));
    }
    Ok(scopes)
}
