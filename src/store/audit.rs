//! The audit trail: who did what to which external system, and how it went. No secrets.

use super::{Store, now, on_pool};
use crate::domain::ids::{TenantId, UserId};

#[derive(Debug, sqlx::FromRow)]
pub struct AuditEntry {
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: Option<String>,
}

impl Store {
    pub async fn audit(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        action: &str,
        target: &str,
        outcome: &str,
        detail: Option<&str>,
    ) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO audit_log (tenant_id, user_id, action, target, outcome, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant)
        .bind(user)
        .bind(action)
        .bind(target)
        .bind(outcome)
        .bind(detail)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn audit_entries(&self, tenant: TenantId) -> anyhow::Result<Vec<AuditEntry>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, AuditEntry>(
            "SELECT action, target, outcome, detail FROM audit_log
             WHERE tenant_id = $1 ORDER BY id",
        )
        .bind(tenant)
        .fetch_all(pool)
        .await)?)
    }
}
