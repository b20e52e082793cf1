//! Slack may deliver an envelope more than once (retries, reconnects, several replicas):
//! the first to record its key handles it.

use chrono::{DateTime, Utc};

use super::{Store, now, on_pool};

impl Store {
    /// True the first time `key` is seen; false for every redelivery.
    pub async fn first_delivery(&self, key: &str) -> anyhow::Result<bool> {
        let now = now();
        let done = on_pool!(self, pool => sqlx::query(
            "INSERT INTO processed_envelopes (dedupe_key, received_at) VALUES ($1, $2)
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Forgets keys older than `before` (Slack stops retrying after minutes).
    pub async fn prune_deliveries(&self, before: DateTime<Utc>) -> anyhow::Result<u64> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM processed_envelopes WHERE received_at < $1",
        )
        .bind(super::truncate(before))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}
