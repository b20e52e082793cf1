//! Tenants (one per Slack workspace) and their users, created on first contact.

use chrono::{DateTime, Utc};

use super::{Store, now, on_pool};
use crate::ids::{TenantId, UserId};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub slack_team_id: String,
    pub name: Option<String>,
    pub crm_provider: Option<String>,
    pub time_zone: Option<String>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub slack_user_id: String,
    pub email: Option<String>,
    pub real_name: Option<String>,
    pub tz: Option<String>,
    pub tz_offset_secs: Option<i64>,
    pub profile_refreshed_at: Option<DateTime<Utc>>,
    pub email_tone: String,
    pub language_override: Option<String>,
    pub signature: Option<String>,
    pub default_task_type: String,
    pub default_task_time: String,
    pub meeting_dms: bool,
}

/// What `users.info` told us about a person.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub email: Option<String>,
    pub real_name: Option<String>,
    pub tz: Option<String>,
    pub tz_offset_secs: Option<i64>,
}

impl Store {
    /// The tenant for a Slack team, created on first contact.
    pub async fn ensure_tenant(&self, slack_team_id: &str) -> anyhow::Result<Tenant> {
        // Read first: after first contact this is a read, not a write.
        let found = on_pool!(self, pool => sqlx::query_as::<_, Tenant>(
            "SELECT id, slack_team_id, name, crm_provider, time_zone FROM tenants
             WHERE slack_team_id = $1",
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
             RETURNING id, slack_team_id, name, crm_provider, time_zone",
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
            "SELECT id, tenant_id, slack_user_id, email, real_name, tz, tz_offset_secs,
                    profile_refreshed_at, email_tone, language_override, signature,
                    default_task_type, default_task_time, meeting_dms
             FROM users WHERE tenant_id = $1 AND slack_user_id = $2",
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
            "INSERT INTO users (tenant_id, slack_user_id, created_at, updated_at)
             VALUES ($1, $2, $3, $3)
             ON CONFLICT (tenant_id, slack_user_id) DO UPDATE SET tenant_id = excluded.tenant_id
             RETURNING id, tenant_id, slack_user_id, email, real_name, tz, tz_offset_secs,
                       profile_refreshed_at, email_tone, language_override, signature,
                       default_task_type, default_task_time, meeting_dms",
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
            "SELECT id, tenant_id, slack_user_id, email, real_name, tz, tz_offset_secs,
                    profile_refreshed_at, email_tone, language_override, signature,
                    default_task_type, default_task_time, meeting_dms
             FROM users WHERE tenant_id = $1 AND id = $2",
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
}
