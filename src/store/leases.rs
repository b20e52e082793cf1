//! Named leases: at most one holder at a time across replicas (e.g. the meeting poller).

use std::time::Duration;

use super::{Store, now, on_pool};

impl Store {
    /// Takes or renews the lease `name` for `holder` when it is free, expired or already ours.
    /// On PostgreSQL the database's clock decides (replicas' clocks may disagree).
    pub async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> anyhow::Result<bool> {
        let row: Option<(String,)> = match self {
            Store::Sqlite(pool) => {
                let now = now();
                let until = now + chrono::Duration::from_std(ttl)?;
                sqlx::query_as(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                                                      expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at < $4
                     RETURNING holder",
                )
                .bind(name)
                .bind(holder)
                .bind(until)
                .bind(now)
                .fetch_optional(pool)
                .await?
            }
            Store::Postgres(pool) => {
                sqlx::query_as(
                    "INSERT INTO leases (name, holder, expires_at)
                     VALUES ($1, $2, now() + make_interval(secs => $3))
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                                                      expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at < now()
                     RETURNING holder",
                )
                .bind(name)
                .bind(holder)
                .bind(ttl.as_secs_f64())
                .fetch_optional(pool)
                .await?
            }
        };
        Ok(row.is_some())
    }

    pub async fn release_lease(&self, name: &str, holder: &str) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
