//! Storage: one `Store` API over SQLite (embedded default) and PostgreSQL (production).
//!
//! Each query is written once and compiled for both pools by `on_pool!`. Timestamps are bound
//! from Rust, truncated to microseconds (SQLite would keep nanoseconds, PostgreSQL cannot).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, DurationRound, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub mod audit;
pub mod credentials;
pub mod crm;
pub mod dedupe;
pub mod followups;
pub mod jobs;
pub mod leases;
pub mod lifecycle;
pub mod mirror;
pub mod oauth_states;
pub mod tenants;
pub mod webhooks;

pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same expression against whichever pool the store holds; the body is compiled
/// once per backend, so one query text serves both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The current time as both backends store it.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::Duration::microseconds(1))
        .unwrap_or(t)
}

/// Does `DATABASE_URL` name PostgreSQL (else SQLite)? The one place that decides.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Store {
    /// Connects to `url` (creating the SQLite folder and file when needed). Does not migrate.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if is_postgres_url(url) {
            let options = PgConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("connecting to PostgreSQL (DATABASE_URL)")?;
            Ok(Store::Postgres(pool))
        } else {
            let options = SqliteConnectOptions::from_str(url)
                .context("parsing DATABASE_URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: durable across crashes of the process, one fsync per checkpoint.
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let path = options.get_filename();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the database folder {}", dir.display()))?;
            }
            // One connection: SQLite has a single writer anyway, and queueing in the pool is
            // immediate where SQLite's busy handler would sleep (tens to hundreds of ms).
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .with_context(|| format!("opening the SQLite database {url}"))?;
            Ok(Store::Sqlite(pool))
        }
    }

    /// Connects and applies the migrations for the backend.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Store::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
        .context("applying database migrations")
    }

    /// Several replicas may share a PostgreSQL database; a SQLite file has one process.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Is the database answering? Used by `/ready` and `doctor`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}
