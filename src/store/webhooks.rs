//! Each person's Fathom webhook: the random path id its deliveries arrive on, and Fathom's
//! webhook id and signing secret, sealed together (bound to the path id).

use secrecy::SecretString;

use super::{Store, now, on_pool};
use crate::crypto::{Cipher, CryptoError};
use crate::domain::ids::{TenantId, UserId};

/// A stored webhook, opened.
#[derive(Debug)]
pub struct FathomWebhook {
    pub path_id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// `{"id": …, "secret": "whsec_…"}`, sealed at rest.
    pub sealed: SecretString,
}

fn context(path_id: &str) -> String {
    format!("fathom_webhook:{path_id}")
}

#[derive(sqlx::FromRow)]
struct Row {
    path_id: String,
    tenant_id: TenantId,
    user_id: UserId,
    sealed: Vec<u8>,
}

impl Row {
    fn open(self, cipher: &Cipher) -> Result<FathomWebhook, CryptoError> {
        let sealed = cipher.open_str(&self.sealed, &context(&self.path_id))?;
        Ok(FathomWebhook {
            path_id: self.path_id,
            tenant_id: self.tenant_id,
            user_id: self.user_id,
            sealed,
        })
    }
}

impl Store {
    /// Stores (or replaces) a person's webhook.
    pub async fn put_fathom_webhook(
        &self,
        cipher: &Cipher,
        tenant: TenantId,
        user: UserId,
        path_id: &str,
        secret: &SecretString,
    ) -> anyhow::Result<()> {
        let sealed = cipher.seal_str(secret, &context(path_id));
        let now = now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM fathom_webhooks WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO fathom_webhooks (path_id, tenant_id, user_id, sealed, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(path_id)
            .bind(tenant)
            .bind(user)
            .bind(sealed)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// The webhook deliveries to `path_id` are for (`None` when unknown or unreadable).
    pub async fn fathom_webhook_at(
        &self,
        cipher: &Cipher,
        path_id: &str,
    ) -> anyhow::Result<Option<FathomWebhook>> {
        let row: Option<Row> = on_pool!(self, pool => sqlx::query_as(
            "SELECT path_id, tenant_id, user_id, sealed FROM fathom_webhooks WHERE path_id = $1",
        )
        .bind(path_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.and_then(|r| r.open(cipher).ok()))
    }

    pub async fn fathom_webhook_of(
        &self,
        cipher: &Cipher,
        user: UserId,
    ) -> anyhow::Result<Option<FathomWebhook>> {
        let row: Option<Row> = on_pool!(self, pool => sqlx::query_as(
            "SELECT path_id, tenant_id, user_id, sealed FROM fathom_webhooks WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(pool)
        .await)?;
        Ok(row.and_then(|r| r.open(cipher).ok()))
    }

    /// Whether the person has a webhook (polling is then only the safety net).
    pub async fn has_fathom_webhook(&self, user: UserId) -> anyhow::Result<bool> {
        let found: Option<(UserId,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT user_id FROM fathom_webhooks WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(pool)
        .await)?;
        Ok(found.is_some())
    }

    pub async fn delete_fathom_webhook(&self, user: UserId) -> anyhow::Result<bool> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM fathom_webhooks WHERE user_id = $1")
            .bind(user)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// How many people have Fathom connected, and how many of them have a webhook.
    pub async fn fathom_webhook_coverage(&self) -> anyhow::Result<(i64, i64)> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*),
                    COUNT(*) FILTER (WHERE EXISTS
                        (SELECT 1 FROM fathom_webhooks w WHERE w.user_id = c.user_id))
             FROM credentials c
             WHERE c.provider = 'fathom' AND c.status = 'connected' AND c.user_id IS NOT NULL",
        )
        .fetch_one(pool)
        .await)?)
    }

    /// People with Fathom connected and no webhook: (team, person).
    pub async fn fathom_without_webhook(&self) -> anyhow::Result<Vec<(TenantId, UserId)>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT c.tenant_id, c.user_id FROM credentials c
             WHERE c.provider = 'fathom' AND c.status = 'connected' AND c.user_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM fathom_webhooks w WHERE w.user_id = c.user_id)",
        )
        .fetch_all(pool)
        .await)?)
    }
}
