//! A person's Google connection: the connect link (state and PKCE verifier stored first),
//! saving a grant, and an access token that is refreshed shortly before it expires, one
//! refresh at a time per person, with `invalid_grant` ending the connection.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::SlackMessageContent;
use tracing::{info, warn};

use super::Services;
use crate::clients::google::{Google, Grant, OAuthError};
use crate::domain::ids::{FollowupId, TenantId, UserId};
use crate::domain::person::User;
use crate::domain::provider::Provider;
use crate::store::credentials::{Credential, CredentialError, NewCredential, Subject};
use crate::store::oauth_states::new_state;

/// An access token this close to its expiry is refreshed before use.
const REFRESH_BEFORE: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// Seals the OAuth verifier kept with a state.
pub const VERIFIER_CONTEXT: &str = "oauth_state:google";

/// Both tokens, sealed together as one secret.
#[derive(Serialize, Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
}

/// A usable access token and the account it belongs to.
pub struct GoogleAccess {
    pub token: SecretString,
    pub email: Option<String>,
}

/// Why there is no Google access for a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoGoogle {
    /// The operator has not configured Google (client id/secret, `PUBLIC_BASE_URL`).
    NotConfigured,
    NotConnected,
    /// Google answered `invalid_grant`: the person removed access, or it expired.
    Revoked,
    /// Stored, but sealed with an encryption key the bot no longer has.
    Unreadable,
}

impl NoGoogle {
    pub fn words(self) -> &'static str {
        match self {
            NoGoogle::NotConfigured => {
                "Gmail and Google Calendar are not set up on this bot yet: the person who runs \
                 it needs to add a Google OAuth client (see the README's Google section)."
            }
            NoGoogle::NotConnected => {
                "Connect your Google account first: type `/gmail-connect`, then press the \
                 button again."
            }
            NoGoogle::Revoked => {
                "Google ended the bot's access to your account (it was removed or expired). \
                 Type `/gmail-connect` to connect again, then press the button again."
            }
            NoGoogle::Unreadable => {
                "Your Google connection can no longer be read (the bot's encryption key was \
                 changed). Type `/gmail-connect` to connect again."
            }
        }
    }
}

fn subject(user: UserId) -> Subject {
    Subject::User(user)
}

impl Services {
    /// A link that starts connecting Google for this person, valid ten minutes and once;
    /// `after` is a follow-up whose Gmail draft is offered once connected. `None` when
    /// Google is not configured.
    pub async fn google_connect_link(
        &self,
        tenant: TenantId,
        user: UserId,
        after: Option<&FollowupId>,
    ) -> anyhow::Result<Option<String>> {
        let (Some(_), Some(start)) = (
            &self.google,
            self.config.http.public_url("/oauth/google/start"),
        ) else {
            return Ok(None);
        };
        let state = new_state();
        let verifier = SecretString::from(Google::new_verifier());
        let sealed = self.cipher.seal_str(&verifier, VERIFIER_CONTEXT);
        let extra = match after {
            Some(id) => serde_json::json!({ "followup": id }),
            None => serde_json::json!({}),
        };
        self.store
            .create_oauth_state(
                &state,
                Provider::Google.as_str(),
                tenant,
                user,
                Some(sealed),
                &extra,
            )
            .await?;
        Ok(Some(format!("{start}?state={state}")))
    }

    /// The "Connect Google" message: `text`, then the one-time button. Without Google
    /// configured, the words saying so instead.
    pub async fn google_connect_message(
        &self,
        tenant: TenantId,
        user: UserId,
        after: Option<&FollowupId>,
        text: &str,
    ) -> anyhow::Result<SlackMessageContent> {
        let Some(url) = self.google_connect_link(tenant, user, after).await? else {
            return Ok(SlackMessageContent::new().with_text(NoGoogle::NotConfigured.words().into()));
        };
        Ok(crate::blocks::GMAIL_CONNECT
            .render_as(&crate::blocks::Vars::new().set("text", text).set("url", url))?)
    }

    /// Saves a grant from the callback. A grant without a refresh token keeps the stored
    /// one; with neither, nothing is saved and `false` comes back (reconnect with consent).
    pub async fn save_google_grant(
        &self,
        tenant: TenantId,
        user: UserId,
        grant: &Grant,
        email: &str,
    ) -> anyhow::Result<bool> {
        let stored = match self.google_tokens(tenant, user).await {
            Ok(found) => found.map(|(tokens, _)| tokens.refresh_token),
            Err(CredentialError::Database(e)) => return Err(e),
            Err(_) => None,
        };
        let refresh = match (&grant.refresh_token, stored) {
            (Some(new), _) => new.expose_secret().to_owned(),
            (None, Some(old)) if !old.is_empty() => old,
            _ => return Ok(false),
        };
        self.put_google_tokens(tenant, user, grant, refresh, Some(email))
            .await?;
        Ok(true)
    }

    async fn put_google_tokens(
        &self,
        tenant: TenantId,
        user: UserId,
        grant: &Grant,
        refresh_token: String,
        email: Option<&str>,
    ) -> anyhow::Result<()> {
        let secret = SecretString::from(serde_json::to_string(&Tokens {
            access_token: grant.access_token.expose_secret().to_owned(),
            refresh_token,
        })?);
        self.store
            .put_credential(
                &self.cipher,
                NewCredential {
                    tenant,
                    subject: subject(user),
                    provider: Provider::Google,
                    secret: &secret,
                    account_email: email,
                    api_domain: None,
                    expires_at: Some(grant.expires_at),
                    scopes: grant.scopes.as_deref(),
                    metadata: serde_json::json!({}),
                },
            )
            .await
    }

    async fn google_tokens(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<(Tokens, Credential)>, CredentialError> {
        let Some(credential) = self
            .store
            .credential(&self.cipher, tenant, subject(user), Provider::Google)
            .await?
        else {
            return Ok(None);
        };
        let tokens: Tokens = serde_json::from_str(credential.secret.expose_secret())
            .map_err(|e| CredentialError::Database(e.into()))?;
        Ok(Some((tokens, credential)))
    }

    /// The account a person connected, if any.
    pub async fn google_account(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> anyhow::Result<Option<Option<String>>> {
        match self.google_tokens(tenant, user).await {
            Ok(found) => Ok(found.map(|(_, c)| c.account_email)),
            Err(CredentialError::Database(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// A person's access token, refreshed first when it is about to expire. `Err` of the
    /// outer result is worth retrying (the database, or Google's token endpoint, failed).
    pub async fn google_access(
        &self,
        tenant: TenantId,
        user: &User,
    ) -> anyhow::Result<Result<GoogleAccess, NoGoogle>> {
        let Some(google) = &self.google else {
            return Ok(Err(NoGoogle::NotConfigured));
        };
        let fresh = |expires: Option<DateTime<Utc>>| {
            expires.is_some_and(|at| at - crate::store::now() > REFRESH_BEFORE)
        };
        let read = |found: Result<Option<(Tokens, Credential)>, CredentialError>| match found {
            Ok(Some(pair)) => Ok(Ok(pair)),
            Ok(None) => Ok(Err(NoGoogle::NotConnected)),
            Err(CredentialError::Database(e)) => Err(e),
            Err(_) => Ok(Err(NoGoogle::Unreadable)),
        };
        // Read, and if the token is about to expire, read again holding this person's refresh
        // lock: whoever waited for another caller's refresh finds it saved.
        let mut held = None;
        let (tokens, credential) = loop {
            let (tokens, credential) = match read(self.google_tokens(tenant, user.id).await)? {
                Ok(pair) => pair,
                Err(no) => return Ok(Err(no)),
            };
            if fresh(credential.expires_at) {
                return Ok(Ok(GoogleAccess {
                    token: SecretString::from(tokens.access_token),
                    email: credential.account_email,
                }));
            }
            if held.is_some() {
                break (tokens, credential);
            }
            held = Some(self.google_refresh.get(user.id).lock_owned().await);
        };
        let refresh = SecretString::from(tokens.refresh_token.clone());
        match google.refresh(&refresh).await {
            Ok(grant) => {
                self.put_google_tokens(
                    tenant,
                    user.id,
                    &grant,
                    tokens.refresh_token,
                    credential.account_email.as_deref(),
                )
                .await?;
                info!(user = %user.id, "refreshed a Google access token");
                Ok(Ok(GoogleAccess {
                    token: grant.access_token,
                    email: credential.account_email,
                }))
            }
            Err(OAuthError::InvalidGrant) => {
                self.google_revoked(tenant, user).await?;
                Ok(Err(NoGoogle::Revoked))
            }
            Err(e) => Err(anyhow::Error::new(e).context("refreshing a Google access token")),
        }
    }

    /// Google refused the refresh token: the connection is marked revoked (never used
    /// again) and the person told once how to reconnect.
    async fn google_revoked(&self, tenant: TenantId, user: &User) -> anyhow::Result<()> {
        let flipped = self
            .store
            .revoke_credential(tenant, subject(user.id), Provider::Google)
            .await?;
        if !flipped {
            return Ok(());
        }
        warn!(user = %user.id, "Google answered invalid_grant; the connection is marked revoked");
        self.store
            .audit(
                tenant,
                Some(user.id),
                "revoked",
                Provider::Google.as_str(),
                "invalid_grant",
                None,
            )
            .await?;
        let text = ":warning: Google no longer accepts the bot's access to your account (it \
                    was removed, or it expired). Type `/gmail-connect` to connect again; \
                    nothing else is lost.";
        if let Err(e) = self
            .dm(
                &user.slack_user_id,
                SlackMessageContent::new().with_text(text.to_owned()),
            )
            .await
        {
            warn!(error = %e, "could not tell the person their Google access ended");
        }
        Ok(())
    }

    /// Google refused an access token before its expiry: the next use refreshes it (and
    /// learns from the refresh whether the grant is gone).
    pub async fn distrust_google_access(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> anyhow::Result<()> {
        self.store
            .expire_credential(tenant, subject(user), Provider::Google)
            .await
    }

    /// Revokes the person's grant at Google (best effort) and deletes the stored tokens.
    /// False when there was nothing to disconnect.
    pub async fn disconnect_google(&self, tenant: TenantId, user: UserId) -> anyhow::Result<bool> {
        if let (Some(google), Ok(Some((tokens, _)))) =
            (&self.google, self.google_tokens(tenant, user).await)
            && let Err(e) = google
                .revoke(&SecretString::from(tokens.refresh_token))
                .await
        {
            warn!(error = %e, "Google did not confirm the revocation; the tokens are deleted anyway");
        }
        self.store
            .delete_credential(tenant, subject(user), Provider::Google)
            .await
    }
}
