//! Team-level administration: the bot admins a team named, and the team's own retention.

use super::{Store, now, on_pool};
use crate::domain::ids::TenantId;

impl Store {
    /// The team's bot admins (Slack user ids), oldest first.
    pub async fn bot_admins(&self, tenant: TenantId) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT slack_user_id FROM bot_admins WHERE tenant_id = $1
             ORDER BY added_at, slack_user_id",
        )
        .bind(tenant)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(u,)| u).collect())
    }

    pub async fn is_bot_admin(&self, tenant: TenantId, slack_user: &str) -> anyhow::Result<bool> {
        let (n,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM bot_admins WHERE tenant_id = $1 AND slack_user_id = $2",
        )
        .bind(tenant)
        .bind(slack_user)
        .fetch_one(pool)
        .await)?;
        Ok(n > 0)
    }

    /// Names a bot admin; false when they already were one.
    pub async fn add_bot_admin(
        &self,
        tenant: TenantId,
        slack_user: &str,
        added_by: &str,
    ) -> anyhow::Result<bool> {
        let done = on_pool!(self, pool => sqlx::query(
            "INSERT INTO bot_admins (tenant_id, slack_user_id, added_by, added_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(slack_user)
        .bind(added_by)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Removes a bot admin; false when they were not one.
    pub async fn remove_bot_admin(
        &self,
        tenant: TenantId,
        slack_user: &str,
    ) -> anyhow::Result<bool> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM bot_admins WHERE tenant_id = $1 AND slack_user_id = $2",
        )
        .bind(tenant)
        .bind(slack_user)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// The team's own retention in days, if it chose one.
    pub async fn team_retention(&self, tenant: TenantId) -> anyhow::Result<Option<u32>> {
        let row: Option<(Option<i64>,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT CAST(retention_days AS BIGINT) FROM tenants WHERE id = $1",
        )
        .bind(tenant)
        .fetch_optional(pool)
        .await)?;
        Ok(row.and_then(|(d,)| d).and_then(|d| u32::try_from(d).ok()))
    }

    pub async fn set_team_retention(
        &self,
        tenant: TenantId,
        days: Option<u32>,
    ) -> anyhow::Result<()> {
        let days = days.map(i64::from);
        on_pool!(self, pool => sqlx::query(
            "UPDATE tenants SET retention_days = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(tenant)
        .bind(days)
        .bind(now())
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Every team with its own retention: (team, days).
    pub async fn team_retentions(&self) -> anyhow::Result<Vec<(TenantId, u32)>> {
        let rows: Vec<(TenantId, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, CAST(retention_days AS BIGINT) FROM tenants WHERE retention_days IS NOT NULL",
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(t, d)| u32::try_from(d).ok().map(|d| (t, d)))
            .collect())
    }
}
