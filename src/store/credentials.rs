//! Credentials (API keys, OAuth tokens): sealed with the `Cipher` before they reach a row.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::{Store, now, on_pool};
use crate::crypto::{Cipher, CryptoError};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::provider::Provider;

/// Whose credential it is: the whole workspace's, or one person's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Tenant,
    User(UserId),
}

impl Subject {
    fn key(self) -> String {
        match self {
            Subject::Tenant => "tenant".to_owned(),
            Subject::User(id) => format!("user:{id}"),
        }
    }

    fn user_id(self) -> Option<UserId> {
        match self {
            Subject::Tenant => None,
            Subject::User(id) => Some(id),
        }
    }
}

/// What goes in; everything but `secret` is non-secret metadata kept in clear.
#[derive(Debug)]
pub struct NewCredential<'a> {
    pub tenant: TenantId,
    pub subject: Subject,
    pub provider: Provider,
    pub secret: &'a SecretString,
    pub account_email: Option<&'a str>,
    pub api_domain: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Option<&'a str>,
    pub metadata: serde_json::Value,
}

#[derive(Debug)]
pub struct Credential {
    pub id: i64,
    pub secret: SecretString,
    pub account_email: Option<String>,
    pub api_domain: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Option<String>,
    pub metadata: serde_json::Value,
    pub status: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    secret: Vec<u8>,
    account_email: Option<String>,
    api_domain: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    scopes: Option<String>,
    metadata: String,
    status: String,
}

/// Binds a sealed secret to its row, so a blob copied into another row will not open.
/// (`reseal_credentials` builds the same text from the row's columns.)
fn context(tenant: TenantId, provider: Provider, subject: Subject) -> String {
    format!("credential:{tenant}:{provider}:{}", subject.key())
}

/// Why a stored credential could not be served.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Sealed with a key no longer configured: its owner has to connect that service again.
    #[error("the credential was sealed with a key that is no longer configured")]
    KeyGone,
    /// Tampered with, or not ours.
    #[error(transparent)]
    Unreadable(CryptoError),
    #[error(transparent)]
    Database(#[from] anyhow::Error),
}

impl Store {
    /// Stores (or replaces) a credential, sealed; marks it connected.
    pub async fn put_credential(
        &self,
        cipher: &Cipher,
        c: NewCredential<'_>,
    ) -> anyhow::Result<()> {
        let sealed = cipher.seal_str(c.secret, &context(c.tenant, c.provider, c.subject));
        let now = now();
        let metadata = c.metadata.to_string();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO credentials (tenant_id, user_id, subject, provider, secret, account_email,
                                      api_domain, expires_at, scopes, metadata, status,
                                      created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'connected', $11, $11)
             ON CONFLICT (tenant_id, provider, subject) DO UPDATE SET
                 secret = excluded.secret, account_email = excluded.account_email,
                 api_domain = excluded.api_domain, expires_at = excluded.expires_at,
                 scopes = excluded.scopes, metadata = excluded.metadata,
                 status = 'connected', updated_at = excluded.updated_at",
        )
        .bind(c.tenant)
        .bind(c.subject.user_id())
        .bind(c.subject.key())
        .bind(c.provider.as_str())
        .bind(sealed)
        .bind(c.account_email)
        .bind(c.api_domain)
        .bind(c.expires_at.map(super::truncate))
        .bind(c.scopes)
        .bind(metadata)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The connected credential of a subject for a provider, opened.
    pub async fn credential(
        &self,
        cipher: &Cipher,
        tenant: TenantId,
        subject: Subject,
        provider: Provider,
    ) -> Result<Option<Credential>, CredentialError> {
        let row = on_pool!(self, pool => sqlx::query_as::<_, Row>(
            "SELECT id, secret, account_email, api_domain, expires_at, scopes, metadata, status
             FROM credentials
             WHERE tenant_id = $1 AND provider = $2 AND subject = $3 AND status = 'connected'",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(subject.key())
        .fetch_optional(pool)
        .await)
        .map_err(|e| CredentialError::Database(e.into()))?;
        let Some(row) = row else { return Ok(None) };
        let context = context(tenant, provider, subject);
        let secret = match cipher.open_str(&row.secret, &context) {
            Ok(secret) => secret,
            Err(CryptoError::UnknownKey(id)) => {
                // Its key left the configuration: unusable, so the person connects again.
                tracing::error!(key_id = %id, %provider, "a credential is sealed with a key that is no longer configured; its owner must connect again");
                return Err(CredentialError::KeyGone);
            }
            Err(e) => return Err(CredentialError::Unreadable(e)),
        };
        if cipher.needs_reseal(&row.secret) {
            // Sealed with a previous key: move it to the current one, so old keys can go.
            if let Err(e) = self
                .reseal(row.id, &row.secret, cipher.seal_str(&secret, &context))
                .await
            {
                tracing::warn!(error = %e, "could not re-seal a credential with the current key");
            }
        }
        Ok(Some(Credential {
            id: row.id,
            secret,
            account_email: row.account_email,
            api_domain: row.api_domain,
            expires_at: row.expires_at,
            scopes: row.scopes,
            metadata: serde_json::from_str(&row.metadata).unwrap_or_default(),
            status: row.status,
        }))
    }

    /// Replaces a sealed secret, unless it changed meanwhile (a reconnect wins).
    async fn reseal(&self, id: i64, old: &[u8], new: Vec<u8>) -> anyhow::Result<bool> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE credentials SET secret = $3 WHERE id = $1 AND secret = $2",
        )
        .bind(id)
        .bind(old)
        .bind(new)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Re-seals every credential sealed with a previous key (`rotate-keys`). Returns
    /// (re-sealed, unreadable): unreadable ones were sealed with a key no longer configured.
    pub async fn reseal_credentials(&self, cipher: &Cipher) -> anyhow::Result<(u64, u64)> {
        let rows: Vec<(i64, TenantId, String, String, Vec<u8>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, tenant_id, provider, subject, secret FROM credentials
             WHERE status = 'connected'",
        )
        .fetch_all(pool)
        .await)?;
        let (mut resealed, mut unreadable) = (0, 0);
        for (id, tenant, provider, subject, secret) in rows {
            if !cipher.needs_reseal(&secret) {
                continue;
            }
            let context = format!("credential:{tenant}:{provider}:{subject}");
            match cipher.open(&secret, &context) {
                Ok(plain) => {
                    if self
                        .reseal(id, &secret, cipher.seal(&plain, &context))
                        .await?
                    {
                        resealed += 1;
                    }
                }
                Err(_) => unreadable += 1,
            }
        }
        Ok((resealed, unreadable))
    }

    /// How many connected credentials each key sealed: (key id as sealed, count). The key id
    /// is bytes 2 to 5 of a sealed value (see `crypto`); `doctor` compares them with the
    /// configured keys.
    pub async fn credential_key_ids(&self) -> anyhow::Result<Vec<(Vec<u8>, i64)>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT substr(secret, 2, 4) AS key_id, COUNT(*) FROM credentials
             WHERE status = 'connected'
             GROUP BY substr(secret, 2, 4) ORDER BY 1",
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Marks a credential revoked (it stays for the audit trail, but is never used again).
    pub async fn revoke_credential(
        &self,
        tenant: TenantId,
        subject: Subject,
        provider: Provider,
    ) -> anyhow::Result<bool> {
        let now = now();
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE credentials SET status = 'revoked', secret = $4, updated_at = $5
             WHERE tenant_id = $1 AND provider = $2 AND subject = $3 AND status = 'connected'",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(subject.key())
        .bind(Vec::<u8>::new())
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Deletes a subject's credential for a provider (a disconnect); true when one was there.
    pub async fn delete_credential(
        &self,
        tenant: TenantId,
        subject: Subject,
        provider: Provider,
    ) -> anyhow::Result<bool> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM credentials WHERE tenant_id = $1 AND provider = $2 AND subject = $3",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(subject.key())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Marks a credential's access token as expired, so the next use refreshes it (a
    /// provider refused a token the bot thought valid).
    pub async fn expire_credential(
        &self,
        tenant: TenantId,
        subject: Subject,
        provider: Provider,
    ) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE credentials SET expires_at = $4, updated_at = $4
             WHERE tenant_id = $1 AND provider = $2 AND subject = $3",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(subject.key())
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Which CRM the team has connected (the newest, should there be more than one).
    pub async fn team_crm(&self, tenant: TenantId) -> anyhow::Result<Option<Provider>> {
        let found: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT provider FROM credentials
             WHERE tenant_id = $1 AND subject = 'tenant' AND status = 'connected'
               AND provider IN ('crono', 'hubspot', 'zoho', 'odoo')
             ORDER BY updated_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant)
        .fetch_optional(pool)
        .await)?;
        Ok(found.and_then(|(name,)| Provider::parse(&name)))
    }

    /// Every team's CRM connection: (team, Slack team id, provider name, status).
    pub async fn crm_connections(&self) -> anyhow::Result<Vec<(TenantId, String, String, String)>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT c.tenant_id, t.slack_team_id, c.provider, c.status
             FROM credentials c JOIN tenants t ON t.id = c.tenant_id
             WHERE c.subject = 'tenant' AND c.provider IN ('crono', 'hubspot', 'zoho', 'odoo')
             ORDER BY t.slack_team_id, c.provider",
        )
        .fetch_all(pool)
        .await)?)
    }
}
