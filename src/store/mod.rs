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

pub mod admins;
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

/// The SQLite file a `DATABASE_URL` names (`None` for PostgreSQL or an in-memory database).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if is_postgres_url(url) {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.as_os_str().is_empty() && path != std::path::Path::new(":memory:"))
        .then(|| path.to_path_buf())
}

/// A row of `_sqlx_migrations`: version, success, checksum.
type AppliedRow = (i64, bool, Vec<u8>);

/// The database's migrations against this binary's (`doctor`): what `migrate` would do, and
/// what would stop it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Applied, and known to this binary with the same text.
    pub applied: usize,
    /// This binary's migrations not applied yet: `migrate` (or the next start) applies them.
    pub pending: Vec<i64>,
    /// Applied but not in this binary (a newer binary migrated the database).
    pub unknown: Vec<i64>,
    /// Applied, but their text has changed since.
    pub changed: Vec<i64>,
    /// Started and never finished (a failure halfway).
    pub failed: Vec<i64>,
}

impl MigrationStatus {
    fn compare(migrator: &sqlx::migrate::Migrator, applied: &[AppliedRow]) -> Self {
        let mut status = MigrationStatus::default();
        let ours: Vec<_> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .collect();
        for (version, success, checksum) in applied {
            match ours.iter().find(|m| m.version == *version) {
                _ if !success => status.failed.push(*version),
                None => status.unknown.push(*version),
                Some(m) if m.checksum.as_ref() != checksum.as_slice() => {
                    status.changed.push(*version)
                }
                Some(_) => status.applied += 1,
            }
        }
        status.pending = ours
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.iter().any(|(done, _, _)| done == v))
            .collect();
        status
    }

    /// Everything applied and nothing that would stop `migrate`.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
            && self.unknown.is_empty()
            && self.changed.is_empty()
            && self.failed.is_empty()
    }
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

    /// Connects to a database that already exists, changing nothing: no SQLite file or folder
    /// is created and no migration runs (`doctor`). See [`sqlite_file`] to tell a missing
    /// file from one that does not open.
    pub async fn connect_existing(url: &str) -> anyhow::Result<Self> {
        if is_postgres_url(url) {
            let options = PgConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("connecting to PostgreSQL (DATABASE_URL)")?;
            Ok(Store::Postgres(pool))
        } else {
            // `mode=rwc` in the URL would create the file: override it.
            let options = SqliteConnectOptions::from_str(url)
                .context("parsing DATABASE_URL")?
                .create_if_missing(false)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .with_context(|| format!("opening the SQLite database {url}"))?;
            Ok(Store::Sqlite(pool))
        }
    }

    /// How the database's applied migrations compare with this binary's, read without
    /// changing anything (the migrations table is not created when missing).
    pub async fn migration_status(&self) -> anyhow::Result<MigrationStatus> {
        const APPLIED: &str =
            "SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version";
        let (migrator, applied): (&sqlx::migrate::Migrator, Vec<AppliedRow>) = match self {
            Store::Sqlite(pool) => {
                let (tables,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM sqlite_master
                         WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(pool)
                .await?;
                let applied = if tables == 0 {
                    Vec::new()
                } else {
                    sqlx::query_as(APPLIED).fetch_all(pool).await?
                };
                (&SQLITE_MIGRATIONS, applied)
            }
            Store::Postgres(pool) => {
                let (exists,): (bool,) =
                    sqlx::query_as("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                        .fetch_one(pool)
                        .await?;
                let applied = if exists {
                    sqlx::query_as(APPLIED).fetch_all(pool).await?
                } else {
                    Vec::new()
                };
                (&POSTGRES_MIGRATIONS, applied)
            }
        };
        Ok(MigrationStatus::compare(migrator, &applied))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_compared_with_the_binarys() {
        let ours: Vec<_> = SQLITE_MIGRATIONS.iter().collect();
        let row = |i: usize| (ours[i].version, true, ours[i].checksum.to_vec());
        let all: Vec<AppliedRow> = (0..ours.len()).map(row).collect();
        let status = MigrationStatus::compare(&SQLITE_MIGRATIONS, &all);
        assert!(status.is_current(), "{status:?}");
        assert_eq!(status.applied, ours.len());

        let applied = vec![
            row(0),
            (ours[1].version, true, b"edited".to_vec()),
            (ours[2].version, false, ours[2].checksum.to_vec()),
            (9999, true, Vec::new()),
        ];
        let status = MigrationStatus::compare(&SQLITE_MIGRATIONS, &applied);
        assert_eq!(status.applied, 1);
        assert_eq!(status.changed, [ours[1].version]);
        assert_eq!(status.failed, [ours[2].version]);
        assert_eq!(status.unknown, [9999]);
        assert_eq!(
            status.pending,
            ours[3..].iter().map(|m| m.version).collect::<Vec<_>>()
        );
        assert!(!status.is_current());
    }
}
