//! `followup-bot doctor`, the shipped binary, against the loopback fakes: a healthy
//! configuration, a broken one, and Slack out of reach. It must change nothing in the database.

use secrecy::SecretString;

use crate::binary::bot;
use crate::support::bot::{APP_TOKEN, BOT_TOKEN};
use crate::support::fake_anthropic::FakeAnthropic;
use crate::support::fake_google::FakeGoogle;
use crate::support::fake_slack::FakeSlack;

const PUBLIC: &str = "https://bot.example.com";
const REDIRECT: &str = "https://bot.example.com/oauth/google/callback";
const ANTHROPIC_KEY: &str = "sk-ant-api03-SECRETANTHROPICKEY0123456789";
const GOOGLE_ID: &str = "1234-doctor.apps.googleusercontent.com";
const GOOGLE_SECRET: &str = "GOCSPX-SECRETGOOGLECLIENT0123";

/// One row of the table: its status and its text (detail and fix, unwrapped).
#[derive(Debug)]
struct Row {
    check: String,
    status: String,
    text: String,
}

/// The rows of doctor's table, read by the columns its header sets out.
fn rows(stdout: &str) -> Vec<Row> {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with("CHECK "));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no table header: {stdout}"));
    let status_at = header.find("STATUS").expect("a STATUS column");
    let detail_at = header.find("DETAIL").expect("a DETAIL column");
    let mut rows: Vec<Row> = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let cut = |from: usize, to: usize| line.get(from..to.min(line.len())).unwrap_or("").trim();
        if line.starts_with(' ') {
            let row = rows.last_mut().expect("a continuation follows a row");
            row.text.push(' ');
            row.text.push_str(line.trim());
        } else {
            rows.push(Row {
                check: cut(0, status_at).to_owned(),
                status: cut(status_at, detail_at).to_owned(),
                text: cut(detail_at, line.len()).to_owned(),
            });
        }
    }
    rows
}

fn row<'a>(rows: &'a [Row], check: &str, status: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.check == check && r.status == status)
        .unwrap_or_else(|| panic!("no {status} row for {check}: {rows:#?}"))
}

/// The `_sqlx_migrations` rows of a SQLite file, read directly (`None`: no such table).
async fn migrations_table(file: &std::path::Path) -> Option<Vec<(i64, Vec<u8>, String)>> {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", file.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT version, checksum, CAST(installed_on AS TEXT) FROM _sqlx_migrations
         ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .ok();
    conn.close().await.unwrap();
    rows
}

#[tokio::test]
async fn doctor_passes_a_healthy_configuration_and_changes_nothing() {
    crate::support::init();
    let slack = FakeSlack::start().await;
    let claude = FakeAnthropic::start().await;
    claude.add_key(ANTHROPIC_KEY);
    let google = FakeGoogle::start(GOOGLE_ID, GOOGLE_SECRET).await;
    google.register_redirect_uris(&[REDIRECT]);
    let dir = tempfile::tempdir().unwrap();
    let key = followup_bot::crypto::generate_key();
    let run = |args: &[&str]| {
        let mut cmd = bot(dir.path());
        cmd.env("SLACK_APP_TOKEN", APP_TOKEN)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_API_URL", slack.api_url())
            .env("ENCRYPTION_KEY", &key)
            .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
            .env("ANTHROPIC_API_URL", claude.base_url())
            .env("GOOGLE_CLIENT_ID", GOOGLE_ID)
            .env("GOOGLE_CLIENT_SECRET", GOOGLE_SECRET)
            .env("GOOGLE_TOKEN_URL", google.token_url())
            .env("PUBLIC_BASE_URL", PUBLIC)
            .args(args);
        cmd
    };
    let out = run(&["migrate"]).output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let file = dir.path().join("data/bot.db");
    // One person with Fathom and a webhook, sealed with the configured key.
    {
        let url = format!("sqlite://{}", file.display());
        let store = followup_bot::store::Store::connect(&url).await.unwrap();
        let cipher =
            followup_bot::crypto::Cipher::new(&SecretString::from(key.clone()), &[]).unwrap();
        let tenant = store.ensure_tenant("T0FAKETEAM").await.unwrap();
        let ada = store.ensure_user(tenant.id, "U0ADA").await.unwrap();
        crate::support::put_fathom_key(&store, &cipher, &ada, "fathom-key-0123456789").await;
        store
            .put_fathom_webhook(
                &cipher,
                tenant.id,
                ada.id,
                "doctorpath",
                &SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
            )
            .await
            .unwrap();
        store.close().await;
    }
    let before = migrations_table(&file).await.expect("migrated");

    let out = run(&["doctor"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("\nCHECK ")
            && stdout
                .lines()
                .any(|l| l.starts_with("CHECK ") && l.contains("  STATUS  DETAIL")),
        "the table's header: {stdout}"
    );
    let rows = rows(&stdout);
    for r in &rows {
        assert!(
            matches!(r.status.as_str(), "ok" | "off"),
            "{r:?} in {stdout}"
        );
    }
    let migrations = followup_bot::store::SQLITE_MIGRATIONS.iter().count();
    assert_eq!(
        row(&rows, "migrations", "ok").text,
        format!("{migrations} applied, none pending")
    );
    assert!(
        row(&rows, "database", "ok")
            .text
            .starts_with("sqlite at data/bot.db")
    );
    assert!(
        row(&rows, "stored secrets", "ok")
            .text
            .starts_with("1 sealed with a configured key")
    );
    assert!(
        row(&rows, "SLACK_BOT_TOKEN", "ok")
            .text
            .contains("workspace Fake Team (T0FAKETEAM)")
    );
    assert!(
        row(&rows, "bot token scopes", "ok")
            .text
            .contains("chat:write, commands, im:write, users:read, users:read.email")
    );
    row(&rows, "SLACK_APP_TOKEN", "ok");
    assert!(
        row(&rows, "Anthropic", "ok")
            .text
            .starts_with("key accepted")
    );
    assert_eq!(claude.models_calls(), 1);
    assert_eq!(claude.request_count(), 0, "no draft was asked for");
    assert!(
        row(&rows, "Google redirect URI", "ok")
            .text
            .starts_with(REDIRECT)
    );
    assert_eq!(
        row(&rows, "Google client", "ok").text,
        "client id and secret accepted"
    );
    let token_calls = google.token_calls();
    assert_eq!(token_calls.len(), 1, "{token_calls:?}");
    assert_eq!(token_calls[0].grant_type, "authorization_code");
    assert!(
        row(&rows, "Fathom webhooks", "ok")
            .text
            .contains("1 of 1 people connected to Fathom have one")
    );
    row(&rows, "workspaces", "off");
    row(&rows, "team CRMs", "off");
    assert!(
        stdout.contains("\nall required checks passed\n"),
        "{stdout}"
    );

    assert_eq!(
        migrations_table(&file).await,
        Some(before),
        "doctor does not migrate"
    );

    // Personal data in the logs, for debugging: a warning, not a failure.
    let out = run(&["doctor"])
        .env("LOG_PII", "true")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let with_pii = self::rows(&stdout);
    assert!(
        row(&with_pii, "LOG_PII", "warn")
            .text
            .contains("written to the logs")
    );
    assert!(stdout.contains("set LOG_PII=false"), "{stdout}");
}

#[tokio::test]
async fn doctor_names_each_broken_integration_with_its_fix_and_fails() {
    crate::support::init();
    let slack = FakeSlack::start().await;
    slack.set_bot_scopes(&["chat:write", "commands"]);
    slack.set_error("apps.connections.open", "invalid_auth");
    let claude = FakeAnthropic::start().await; // knows no key
    let google = FakeGoogle::start(GOOGLE_ID, "GOCSPX-the-right-one").await;
    let dir = tempfile::tempdir().unwrap();
    // A fresh, empty database: the file exists, nothing was migrated.
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let file = dir.path().join("data/bot.db");
    std::fs::write(&file, b"").unwrap();
    let key = followup_bot::crypto::generate_key();
    let out = bot(dir.path())
        .env("SLACK_APP_TOKEN", APP_TOKEN)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("SLACK_API_URL", slack.api_url())
        .env("ENCRYPTION_KEY", &key)
        .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        .env("ANTHROPIC_API_URL", claude.base_url())
        .env("GOOGLE_CLIENT_ID", GOOGLE_ID)
        .env("GOOGLE_CLIENT_SECRET", GOOGLE_SECRET)
        .env("GOOGLE_TOKEN_URL", google.token_url())
        .env("PUBLIC_BASE_URL", PUBLIC)
        .arg("doctor")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let rows = rows(&stdout);

    let pending = followup_bot::store::SQLITE_MIGRATIONS.iter().count();
    let migrations = row(&rows, "migrations", "FAIL");
    assert!(
        migrations
            .text
            .starts_with(&format!("0 applied, {pending} pending (0001, ")),
        "{migrations:?}"
    );
    assert!(
        migrations.text.ends_with("fix: run `followup-bot migrate`"),
        "{migrations:?}"
    );
    let scopes = row(&rows, "bot token scopes", "FAIL");
    assert_eq!(
        scopes.text,
        "missing im:write, users:read, users:read.email fix: add them under OAuth & \
         Permissions (or re-create the app from `followup-bot manifest`) and reinstall"
    );
    let app = row(&rows, "SLACK_APP_TOKEN", "FAIL");
    assert!(app.text.contains("invalid_auth"), "{app:?}");
    assert!(
        app.text
            .contains("fix: make an app-level token with connections:write"),
        "{app:?}"
    );
    let anthropic = row(&rows, "Anthropic", "FAIL");
    assert_eq!(
        anthropic.text,
        "the key was refused (401) fix: make a new one in the Anthropic console and set \
         ANTHROPIC_API_KEY"
    );
    let client = row(&rows, "Google client", "FAIL");
    assert!(
        client.text.ends_with(
            "fix: the client id or secret is wrong: copy them again from Google Cloud Console \
             → Credentials"
        ),
        "{client:?}"
    );
    // What needs the store is skipped, saying why.
    for check in ["stored secrets", "team CRMs", "Fathom webhooks"] {
        assert!(
            row(&rows, check, "warn")
                .text
                .starts_with("not checked: the database's migrations"),
            "{rows:#?}"
        );
    }
    row(&rows, "SLACK_BOT_TOKEN", "ok");
    row(&rows, "database", "ok");
    row(&rows, "encryption key", "ok");
    let failed = rows.iter().filter(|r| r.status == "FAIL").count();
    assert_eq!(failed, 5, "{rows:#?}");
    assert!(
        stdout.contains("\n5 required checks failed (3 warnings)\n"),
        "{stdout}"
    );
    for r in rows
        .iter()
        .filter(|r| r.status == "FAIL" || r.status == "warn")
    {
        assert!(
            r.text.contains(" fix: "),
            "every problem says what to do: {r:?}"
        );
    }
    for secret in [
        APP_TOKEN,
        BOT_TOKEN,
        key.as_str(),
        ANTHROPIC_KEY,
        GOOGLE_SECRET,
        "GOCSPX-the-right-one",
    ] {
        assert!(!stdout.contains(secret), "{secret} in stdout: {stdout}");
        assert!(!stderr.contains(secret), "{secret} in stderr: {stderr}");
    }
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        0,
        "doctor created nothing in the database"
    );
}

/// The remaining failures: the redirect URI Google does not know, a secret sealed with a key
/// gone from the configuration, a person without a webhook (a warning), a bot token whose
/// scopes cannot be read (a warning); and without ENCRYPTION_KEY, the key file warning.
#[tokio::test]
async fn doctor_gives_the_exact_uri_to_register_and_counts_what_is_lost() {
    crate::support::init();
    let slack = FakeSlack::start().await;
    slack.omit_scopes_header();
    let google = FakeGoogle::start(GOOGLE_ID, GOOGLE_SECRET).await;
    google.register_redirect_uris(&["https://elsewhere.example.com/oauth/google/callback"]);
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = bot(dir.path());
        cmd.env("SLACK_APP_TOKEN", APP_TOKEN)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_API_URL", slack.api_url())
            .env("GOOGLE_CLIENT_ID", GOOGLE_ID)
            .env("GOOGLE_CLIENT_SECRET", GOOGLE_SECRET)
            .env("GOOGLE_TOKEN_URL", google.token_url())
            .env("PUBLIC_BASE_URL", PUBLIC)
            .args(args);
        cmd
    };
    assert!(run(&["migrate"]).output().await.unwrap().status.success());
    {
        let url = format!("sqlite://{}/data/bot.db", dir.path().display());
        let store = followup_bot::store::Store::connect(&url).await.unwrap();
        let gone = followup_bot::crypto::Cipher::new(
            &SecretString::from(followup_bot::crypto::generate_key()),
            &[],
        )
        .unwrap();
        let tenant = store.ensure_tenant("T0FAKETEAM").await.unwrap();
        for person in ["U1", "U2"] {
            let user = store.ensure_user(tenant.id, person).await.unwrap();
            crate::support::put_fathom_key(&store, &gone, &user, "fathom-key-0123456789").await;
        }
        store.close().await;
    }
    // Before the first start there is no key file yet: doctor says so and creates none.
    let out = run(&["doctor"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let rows = rows(&stdout);
    let client = row(&rows, "Google client", "FAIL");
    assert_eq!(
        client.text,
        format!(
            "the redirect URI is not registered for this client fix: add exactly {REDIRECT} \
             under Authorized redirect URIs (Google Cloud Console → Credentials → the client)"
        )
    );
    let lost = row(&rows, "stored secrets", "FAIL");
    assert!(
        lost.text.starts_with(
            "2 stored secrets were sealed with a key that is no longer configured (key id "
        ),
        "{lost:?}"
    );
    assert!(
        lost.text.ends_with(
            "fix: put that key back in ENCRYPTION_KEYS_PREVIOUS, or those people reconnect"
        ),
        "{lost:?}"
    );
    let webhooks = row(&rows, "Fathom webhooks", "warn");
    assert_eq!(
        webhooks.text,
        "2 people connected to Fathom have no webhook yet (0 of 2 have one) fix: they get one \
         at the next start (meeting-ready DMs come by polling meanwhile)"
    );
    assert!(
        row(&rows, "bot token scopes", "warn")
            .text
            .starts_with("could not read the token's scopes")
    );
    let key_file = row(&rows, "encryption key", "warn");
    assert!(
        key_file
            .text
            .contains("a copy of that folder holds both the secrets and their key"),
        "{key_file:?}"
    );
    assert!(
        !dir.path().join("data/encryption.key").exists(),
        "doctor generates no key"
    );
    row(&rows, "Anthropic", "off");
    assert!(
        stdout.contains("\n2 required checks failed (3 warnings)\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn doctor_says_in_plain_words_when_slack_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let out = bot(dir.path())
        .env("SLACK_APP_TOKEN", APP_TOKEN)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("SLACK_API_URL", "http://127.0.0.1:9/api")
        .arg("doctor")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let rows = rows(&stdout);
    for check in ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"] {
        assert_eq!(
            row(&rows, check, "FAIL").text,
            "could not reach 127.0.0.1:9: the connection was refused fix: check the network \
             or SLACK_API_URL",
        );
    }
    // No database yet: a warning, not a failure, and nothing created.
    assert!(
        row(&rows, "database", "warn")
            .text
            .starts_with("sqlite: data/bot.db does not exist yet")
    );
    assert!(!dir.path().join("data").exists(), "doctor created nothing");
    for debug in ["hyper", "Os {", "ConnectError", "Some("] {
        assert!(
            !stdout.contains(debug),
            "library debug output {debug:?}: {stdout}"
        );
    }
}

#[tokio::test]
async fn doctor_lists_every_configuration_problem_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = bot(dir.path())
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("SLACK_API_URL", "not a url")
        .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        .arg("doctor")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let rows = rows(&stdout);
    let problems: Vec<_> = rows.iter().filter(|r| r.check == "configuration").collect();
    assert_eq!(problems.len(), 2, "{rows:#?}");
    assert!(problems.iter().all(|r| r.status == "FAIL"));
    assert!(
        problems[0].text.contains("SLACK_APP_TOKEN is missing"),
        "{problems:?}"
    );
    assert!(
        problems[1]
            .text
            .contains("SLACK_API_URL must be an http(s) URL"),
        "{problems:?}"
    );
    assert!(stdout.contains("\n2 required checks failed\n"), "{stdout}");
    assert!(!stdout.contains(BOT_TOKEN) && !stdout.contains(ANTHROPIC_KEY));
    assert!(!dir.path().join("data").exists(), "nothing created");
}

#[tokio::test]
async fn doctor_names_an_unreachable_database_by_its_redacted_url() {
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = bot(dir.path())
        .env("SLACK_APP_TOKEN", APP_TOKEN)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("SLACK_API_URL", slack.api_url())
        .env(
            "DATABASE_URL",
            "postgres://bot:SECRETDBPASSWORD@127.0.0.1:9/bot",
        )
        .env("ENCRYPTION_KEY", followup_bot::crypto::generate_key())
        .arg("doctor")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let rows = rows(&stdout);
    let database = row(&rows, "database", "FAIL");
    assert!(
        database
            .text
            .starts_with("postgres at postgres://bot:REDACTED@127.0.0.1:9/bot could not be opened"),
        "{database:?}"
    );
    assert!(
        database.text.contains("fix: check DATABASE_URL"),
        "{database:?}"
    );
    for check in ["stored secrets", "team CRMs"] {
        assert_eq!(
            row(&rows, check, "warn").text,
            "not checked: the database could not be opened fix: fix the database rows above \
             first"
        );
    }
    assert!(
        stdout.contains("\n1 required check failed (2 warnings)\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("SECRETDBPASSWORD") && !stderr.contains("SECRETDBPASSWORD"));
}
