//! OAuth `state` values: random, stored only as a hash, single use, ten minutes.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Store, now, on_pool};
use crate::domain::ids::{TenantId, UserId};

pub const STATE_TTL: Duration = Duration::from_secs(600);

/// What a consumed state says about the flow it started.
#[derive(Debug, sqlx::FromRow)]
pub struct OAuthState {
    pub provider: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub pkce_verifier: Option<Vec<u8>>,
    pub extra: String,
    pub browser_hash: Option<String>,
}

pub fn hash(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh state value: 256 random bits, URL-safe.
pub fn new_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Store {
    /// Records a new state (hash only); `pkce_verifier` should already be sealed.
    pub async fn create_oauth_state(
        &self,
        state: &str,
        provider: &str,
        tenant: TenantId,
        user: UserId,
        pkce_verifier: Option<Vec<u8>>,
        extra: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let now = now();
        let expires = now + chrono::Duration::from_std(STATE_TTL)?;
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO oauth_states (state_hash, provider, tenant_id, user_id, pkce_verifier,
                                       extra, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(hash(state))
        .bind(provider)
        .bind(tenant)
        .bind(user)
        .bind(pkce_verifier)
        .bind(extra.to_string())
        .bind(expires)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks the state used and returns it, once: a replay, an expired or an unknown state,
    /// or one for another provider, gets `None`.
    pub async fn consume_oauth_state(
        &self,
        state: &str,
        provider: &str,
    ) -> anyhow::Result<Option<OAuthState>> {
        let now = now();
        Ok(on_pool!(self, pool => sqlx::query_as::<_, OAuthState>(
            "UPDATE oauth_states SET used_at = $3
             WHERE state_hash = $1 AND provider = $2 AND used_at IS NULL AND expires_at > $3
             RETURNING provider, tenant_id, user_id, pkce_verifier, extra, browser_hash",
        )
        .bind(hash(state))
        .bind(provider)
        .bind(now)
        .fetch_optional(pool)
        .await)?)
    }

    /// Ties an unused, unexpired state to the browser that opened its link (a hash of that
    /// browser's cookie) and returns it; the same browser may open it again, another may
    /// not. `None` for an unknown, used, expired or already-claimed state.
    pub async fn bind_oauth_browser(
        &self,
        state: &str,
        provider: &str,
        browser_hash: &str,
    ) -> anyhow::Result<Option<OAuthState>> {
        let now = now();
        Ok(on_pool!(self, pool => sqlx::query_as::<_, OAuthState>(
            "UPDATE oauth_states SET browser_hash = $3
             WHERE state_hash = $1 AND provider = $2 AND used_at IS NULL AND expires_at > $4
               AND (browser_hash IS NULL OR browser_hash = $3)
             RETURNING provider, tenant_id, user_id, pkce_verifier, extra, browser_hash",
        )
        .bind(hash(state))
        .bind(provider)
        .bind(browser_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?)
    }

    /// Records a new install state (hash only).
    pub async fn create_install_state(&self, state: &str) -> anyhow::Result<()> {
        let now = now();
        let expires = now + chrono::Duration::from_std(STATE_TTL)?;
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO slack_install_states (state_hash, expires_at, created_at)
             VALUES ($1, $2, $3)",
        )
        .bind(hash(state))
        .bind(expires)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Uses an install state, once: false for a replayed, expired or unknown one.
    pub async fn consume_install_state(&self, state: &str) -> anyhow::Result<bool> {
        let now = now();
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE slack_install_states SET used_at = $2
             WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(hash(state))
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }
}
