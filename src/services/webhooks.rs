//! Each person's Fathom webhook, so a meeting-ready DM comes seconds after Fathom finishes:
//! created with their key on connect (and at start for people connected before), deleted at
//! Fathom on reconnect with another key and on disconnect. Without `PUBLIC_BASE_URL` there are
//! none and polling does the work.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::Services;
use crate::domain::ids::{TenantId, UserId};

/// What is sealed for a webhook.
#[derive(Deserialize, Serialize)]
pub struct WebhookSecret {
    pub id: String,
    pub secret: String,
}

impl WebhookSecret {
    pub fn open(sealed: &SecretString) -> Option<Self> {
        serde_json::from_str(sealed.expose_secret()).ok()
    }
}

impl Services {
    /// Whether deliveries can reach the bot (it has a public address).
    pub fn fathom_webhooks_on(&self) -> bool {
        self.config.http.public_base_url.is_some()
    }

    /// Gives the person a webhook made with `key`, deleting the one made with `old_key` (a
    /// reconnect with another key) first. `false` when webhooks are off.
    pub async fn replace_fathom_webhook(
        &self,
        tenant: TenantId,
        user: UserId,
        old_key: Option<&SecretString>,
        key: &SecretString,
    ) -> anyhow::Result<bool> {
        let path_id = crate::store::oauth_states::new_state();
        let Some(destination) = self
            .config
            .http
            .public_url(&format!("/webhooks/fathom/{path_id}"))
        else {
            return Ok(false);
        };
        self.remove_fathom_webhook(user, old_key.unwrap_or(key))
            .await;
        let made = self.fathom.create_webhook(key, &destination).await?;
        let sealed = SecretString::from(serde_json::to_string(&WebhookSecret {
            id: made.id.clone(),
            secret: made.secret,
        })?);
        if let Err(e) = self
            .store
            .put_fathom_webhook(&self.cipher, tenant, user, &path_id, &sealed)
            .await
        {
            // Not kept here: not left at Fathom either, firing at a path nobody answers.
            if let Err(gone) = self.fathom.delete_webhook(key, &made.id).await {
                warn!(error = %gone, "a Fathom webhook could not be stored nor deleted");
            }
            return Err(e);
        }
        info!(user = %user, "created a Fathom webhook");
        Ok(true)
    }

    /// Deletes the person's webhook at Fathom (with `key`, best effort) and here.
    pub async fn remove_fathom_webhook(&self, user: UserId, key: &SecretString) {
        let stored = match self.store.fathom_webhook_of(&self.cipher, user).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(e) => {
                warn!(error = ?e, "could not read a Fathom webhook");
                return;
            }
        };
        if let Some(webhook) = WebhookSecret::open(&stored.sealed)
            && let Err(e) = self.fathom.delete_webhook(key, &webhook.id).await
        {
            warn!(error = %e, "Fathom did not delete a webhook; it is forgotten here anyway");
        }
        if let Err(e) = self.store.delete_fathom_webhook(user).await {
            warn!(error = ?e, "could not delete a Fathom webhook row");
        }
    }

    /// Disconnects a person's Fathom: their webhook deleted at Fathom (while the key still
    /// works) and here, then the key. `true` when there was a key.
    pub async fn disconnect_fathom(&self, tenant: TenantId, user: UserId) -> anyhow::Result<bool> {
        if let Ok(Ok(key)) = self.fathom_key(tenant, user).await {
            self.remove_fathom_webhook(user, &key).await;
        }
        self.store
            .delete_credential(
                tenant,
                crate::store::credentials::Subject::User(user),
                crate::domain::provider::Provider::Fathom,
            )
            .await
    }
}
