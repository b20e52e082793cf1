//! Tenants (one per Slack workspace) and their users, created on first contact.

use super::{Store, now, on_pool};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::person::{Profile, Tenant, User};

/// The columns of `users` that make a `User`, in one place for every query that reads one.
macro_rules! user_columns {
    () => {
        "id, tenant_id, slack_user_id, email, real_name, tz, tz_offset_secs, profile_refreshed_at,
         email_tone, language_override, signature, default_task_type, default_task_time,
         meeting_dms"
    };
}

impl Store {
    /// The tenant for a Slack team, created on first contact.
    pub async fn ensure_tenant(&self, slack_team_id: &str) -> anyhow::Result<Tenant> {
        // Read first: after first contact this is a read, not a write.
        let found = on_pool!(self, pool => sqlx::query_as::<_, Tenant>(
            "SELECT id, slack_team_id FROM tenants WHERE slack_team_id = $1",
        )
        .bind(slack_team_id)
        .fetch_optional(pool)
        .await)?;
        if let Some(tenant) = found {
            return Ok(tenant);
        }
        let now = now();
        let tenant = on_pool!(self, pool => sqlx::query_as::<_, Tenant>(
            "INSERT INTO tenants (slack_team_id, created_at, updated_at) VALUES ($1, $2, $2)
             ON CONFLICT (slack_team_id) DO UPDATE SET slack_team_id = excluded.slack_team_id
             RETURNING id, slack_team_id",
        )
        .bind(slack_team_id)
        .bind(now)
        .fetch_one(pool)
        .await)?;
        Ok(tenant)
    }

    /// The user row for a Slack user of a tenant, created on first contact.
    pub async fn ensure_user(&self, tenant: TenantId, slack_user_id: &str) -> anyhow::Result<User> {
        let found = on_pool!(self, pool => sqlx::query_as::<_, User>(
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE tenant_id = $1 AND slack_user_id = $2"
            ),
        )
        .bind(tenant)
        .bind(slack_user_id)
        .fetch_optional(pool)
        .await)?;
        if let Some(user) = found {
            return Ok(user);
        }
        let now = now();
        Ok(on_pool!(self, pool => sqlx::query_as::<_, User>(
            concat!(
                "INSERT INTO users (tenant_id, slack_user_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $3)
                 ON CONFLICT (tenant_id, slack_user_id) DO UPDATE SET tenant_id = excluded.tenant_id
                 RETURNING ",
                user_columns!()
            ),
        )
        .bind(tenant)
        .bind(slack_user_id)
        .bind(now)
        .fetch_one(pool)
        .await)?)
    }

    /// A user of a tenant; `None` when the id belongs to another tenant.
    pub async fn user(&self, tenant: TenantId, id: UserId) -> anyhow::Result<Option<User>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, User>(
            concat!("SELECT ", user_columns!(), " FROM users WHERE tenant_id = $1 AND id = $2"),
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    pub async fn update_profile(&self, user: UserId, profile: &Profile) -> anyhow::Result<()> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE users SET email = $2, real_name = $3, tz = $4, tz_offset_secs = $5,
                    profile_refreshed_at = $6, updated_at = $6
             WHERE id = $1",
        )
        .bind(user)
        .bind(&profile.email)
        .bind(&profile.real_name)
        .bind(&profile.tz)
        .bind(profile.tz_offset_secs)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A team's Slack id (its workspace, or its enterprise for an org-wide install).
    pub async fn tenant_team(&self, tenant: TenantId) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT slack_team_id FROM tenants WHERE id = $1",
        )
        .bind(tenant)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(t,)| t))
    }

    /// The team known by this Slack id, if any (never created here).
    pub async fn tenant_by_team(&self, slack_team_id: &str) -> anyhow::Result<Option<TenantId>> {
        let row: Option<(TenantId,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id FROM tenants WHERE slack_team_id = $1",
        )
        .bind(slack_team_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(t,)| t))
    }

    /// Remembers that a workspace belongs to an org-wide install's enterprise.
    pub async fn set_tenant_enterprise(
        &self,
        tenant: TenantId,
        enterprise: &str,
    ) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE tenants SET enterprise_id = $2
             WHERE id = $1 AND (enterprise_id IS NULL OR enterprise_id <> $2)",
        )
        .bind(tenant)
        .bind(enterprise)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The enterprise a workspace was seen belonging to (org-wide installs).
    pub async fn team_enterprise(&self, slack_team_id: &str) -> anyhow::Result<Option<String>> {
        let row: Option<(Option<String>,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT enterprise_id FROM tenants WHERE slack_team_id = $1",
        )
        .bind(slack_team_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.and_then(|(e,)| e))
    }
}
