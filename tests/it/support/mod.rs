//! Test support: fresh databases on both backends, fakes of the outside world, and a way to
//! start the real bot against them.
#![allow(dead_code)]

pub mod bot;
pub mod fake_anthropic;
pub mod fake_crono;
pub mod fake_fathom;
pub mod fake_google;
pub mod fake_hubspot;
pub mod fake_odoo;
pub mod fake_slack;
pub mod fake_zoho;
pub mod payloads;

use std::sync::Once;

use followup_bot::store::Store;
use sqlx::Connection;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        init();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}/bot.db?mode=rwc", dir.path().display()),
            Backend::Postgres => {
                let base = std::env::var("TEST_POSTGRES_URL").expect(
                    "TEST_POSTGRES_URL is not set: run scripts/test (it starts a throwaway \
                     PostgreSQL), or point it at a role with CREATEDB",
                );
                let mut admin = sqlx::PgConnection::connect(&base)
                    .await
                    .expect("connect to TEST_POSTGRES_URL");
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create a test database");
                let mut url = url::Url::parse(&base).expect("TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                url.to_string()
            }
        };
        Self { url, dir }
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.url).await.expect("open and migrate")
    }
}

/// Process-wide test setup: the ring TLS provider, and logs when `TEST_LOG=1`.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
            followup_bot::telemetry::init_logs(
                followup_bot::config::LogFormat::Pretty,
                "debug,sqlx=warn,hyper=info,tungstenite=info,tokio_tungstenite=info",
            );
        }
    });
}

/// Runs a store test against both backends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::support::TestDb::new($crate::support::Backend::Sqlite).await;
                    super::$name(db.store().await, &db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::support::TestDb::new($crate::support::Backend::Postgres).await;
                    super::$name(db.store().await, &db).await;
                }
            )*
        }
    };
}

/// A job's row as the tests look at it (the shipped bot has no use for reading one).
#[derive(Debug, sqlx::FromRow)]
pub struct JobRow {
    pub id: followup_bot::domain::ids::JobId,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub run_at: chrono::DateTime<chrono::Utc>,
}

pub async fn job(store: &Store, id: followup_bot::domain::ids::JobId) -> JobRow {
    const SQL: &str =
        "SELECT id, kind, payload, status, attempts, last_error, run_at FROM jobs WHERE id = $1";
    match store {
        Store::Sqlite(pool) => sqlx::query_as(SQL).bind(id).fetch_one(pool).await,
        Store::Postgres(pool) => sqlx::query_as(SQL).bind(id).fetch_one(pool).await,
    }
    .expect("the job exists")
}

/// Stores `key` as a person's Fathom key, as `/fathom-connect` does.
pub async fn put_fathom_key(
    store: &Store,
    cipher: &followup_bot::crypto::Cipher,
    user: &followup_bot::domain::person::User,
    key: &str,
) {
    use followup_bot::store::credentials::{NewCredential, Subject};
    store
        .put_credential(
            cipher,
            NewCredential {
                tenant: user.tenant_id,
                subject: Subject::User(user.id),
                provider: followup_bot::domain::provider::Provider::Fathom,
                secret: &secrecy::SecretString::from(key.to_owned()),
                account_email: None,
                api_domain: None,
                expires_at: None,
                scopes: None,
                metadata: serde_json::json!({}),
            },
        )
        .await
        .expect("the key is stored");
}

/// Log lines written to memory, for tests that read what the bot logged.
#[derive(Clone, Default)]
pub struct LogCapture(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs one statement with one timestamp (e.g. to age rows) on the store's backend.
pub async fn exec_at(store: &Store, sql: &'static str, at: chrono::DateTime<chrono::Utc>) {
    match store {
        Store::Sqlite(pool) => {
            sqlx::query(sql).bind(at).execute(pool).await.unwrap();
        }
        Store::Postgres(pool) => {
            sqlx::query(sql).bind(at).execute(pool).await.unwrap();
        }
    }
}

/// One `SELECT COUNT(*) …` on the store's backend.
pub async fn count_rows(store: &Store, sql: &'static str) -> i64 {
    match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

/// A loopback port nobody listens on (for a spawned bot's sidecar).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
