//! The shipped binary, started as an operator would: from an empty folder, configured by the
//! environment only.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::bot::{APP_TOKEN, BOT_TOKEN};
use crate::support::fake_slack::FakeSlack;
use crate::support::payloads;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_followup-bot");

use crate::support::free_port;

/// The shipped binary in `dir`, with an empty environment (the caller sets what it needs).
pub(crate) fn bot(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Only the two tokens and the (fake) Slack URL: it creates its SQLite database, connects,
/// acks a slash command, serves /health and /ready, and stops cleanly on SIGTERM.
#[tokio::test]
async fn starts_with_only_the_two_tokens() {
    crate::support::init();
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // HTTP_ADDR only picks a free loopback port so the test cannot collide with port 8080.
    let mut child = bot(dir.path())
        .env("SLACK_APP_TOKEN", APP_TOKEN)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("SLACK_API_URL", slack.api_url())
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .spawn()
        .unwrap();

    wait_ready(&format!("http://127.0.0.1:{port}/ready")).await;
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        dir.path().join("data/bot.db").exists(),
        "SQLite file created"
    );
    let key = dir.path().join("data/encryption.key");
    assert!(key.exists(), "a key is generated for the SQLite default");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let envelope = payloads::slash_command("T1", "U1", "/frobnicate", "", &slack.response_url("r"));
    let id = slack.send_envelope(envelope).unwrap();
    let ack = slack
        .wait_for_ack(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(ack.payload.is_some());

    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops within seconds of SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn a_missing_token_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = bot(dir.path())
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("SLACK_API_URL", "http://127.0.0.1:9")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SLACK_APP_TOKEN is missing"), "{stderr}");
    assert!(stderr.contains("connections:write"), "{stderr}");
    assert!(
        !stderr.contains(BOT_TOKEN),
        "secrets are never echoed: {stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing created");
}

#[tokio::test]
async fn manifest_and_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let out = bot(dir.path()).arg("manifest").output().await.unwrap();
    let manifest = String::from_utf8(out.stdout).unwrap();
    assert!(manifest.contains("socket_mode_enabled: true"));
    for (command, _) in followup_bot::features::fallback::COMMANDS {
        assert!(
            manifest.contains(&format!("command: {command}\n")),
            "{command} missing from the manifest"
        );
    }
    let out = bot(dir.path()).arg("keygen").output().await.unwrap();
    let key = String::from_utf8(out.stdout).unwrap();
    assert!(followup_bot::crypto::parse_key(key.trim()).is_ok());
}

/// Issue 7, item 1: the shipped binary killed with SIGKILL while "Drafting…" is being posted
/// (the follow-up already durable), then restarted: the person gets exactly one "Follow-up
/// ready", and nothing is lost.
#[tokio::test]
async fn a_sigkill_while_drafting_is_shown_loses_nothing_and_sends_once() {
    use secrecy::SecretString;

    crate::support::init();
    let slack = FakeSlack::start().await;
    let fathom = crate::support::fake_fathom::FakeFathom::start().await;
    let fathom_key = "fathom-key-kill-0123456789";
    fathom.add_key(fathom_key);
    fathom.add_meeting(
        fathom_key,
        crate::support::fake_fathom::meeting(61, "Initech renewal", chrono::Utc::now(), 30),
    );
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/bot.db?mode=rwc", dir.path().display());
    let key = followup_bot::crypto::generate_key();

    // Ada connected Fathom and her meetings were listed, as after `/followup`.
    {
        let store = followup_bot::store::Store::open(&db_url).await.unwrap();
        let cipher =
            followup_bot::crypto::Cipher::new(&SecretString::from(key.clone()), &[]).unwrap();
        let tenant = store.ensure_tenant("T0KILL").await.unwrap();
        let ada = store.ensure_user(tenant.id, "U0ADA").await.unwrap();
        crate::support::put_fathom_key(&store, &cipher, &ada, fathom_key).await;
        let listed: followup_bot::domain::meeting::Meeting = serde_json::from_value(
            serde_json::json!({ "recording_id": 61, "title": "Initech renewal" }),
        )
        .unwrap();
        store.remember_meetings(ada.id, &[listed]).await.unwrap();
        store.close().await;
    }
    let start = || {
        let mut cmd = bot(dir.path());
        cmd.env("SLACK_APP_TOKEN", APP_TOKEN)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_API_URL", slack.api_url())
            .env("FATHOM_API_URL", fathom.base_url())
            .env("ANTHROPIC_API_URL", "http://127.0.0.1:9")
            .env("DATABASE_URL", &db_url)
            .env("ENCRYPTION_KEY", &key)
            .env("HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
            .spawn()
            .unwrap()
    };
    let mut child = start();
    slack
        .wait_for_connections(2, Duration::from_secs(20))
        .await
        .unwrap();
    // "Drafting…" hangs at Slack, so the kill lands between the durable write and the post.
    slack.set_delay("chat.postMessage", Duration::from_secs(60));
    let pick = payloads::view_submission(
        "T0KILL",
        "U0ADA",
        "followup_pick",
        "",
        payloads::state(&[(
            "meeting",
            "recording",
            payloads::static_select_input("61", "Initech renewal"),
        )]),
    );
    let id = slack.send_envelope(pick).unwrap();
    slack
        .wait_for_ack(&id, Duration::from_secs(10))
        .await
        .unwrap();
    slack
        .wait_for_call("chat.postMessage", Duration::from_secs(10))
        .await
        .unwrap();
    child.kill().await.unwrap(); // SIGKILL
    slack.clear_delay("chat.postMessage");

    let mut child = start();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = |slack: &FakeSlack| {
        ["chat.postMessage", "chat.update"]
            .iter()
            .flat_map(|m| slack.calls(m))
            .filter(|c| c.response["ok"] == true && c.body.to_string().contains("Follow-up ready"))
            .count()
    };
    while ready(&slack) == 0 {
        assert!(
            Instant::now() < deadline,
            "the request was lost: no Follow-up ready within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ready(&slack), 1, "exactly one Follow-up ready");
    child.kill().await.unwrap();
}

/// Issue 8: the shipped binary killed with SIGKILL after Google made the Gmail draft but
/// before its answer reached the bot, then restarted: the request is not lost, and the
/// retry finds that draft instead of making a second one.
#[tokio::test]
async fn a_sigkill_between_the_gmail_click_and_googles_answer_makes_one_draft() {
    use followup_bot::domain::provider::Provider;
    use followup_bot::store::Store;
    use followup_bot::store::credentials::{NewCredential, Subject};
    use secrecy::SecretString;

    crate::support::init();
    let slack = FakeSlack::start().await;
    let google =
        crate::support::fake_google::FakeGoogle::start("cid-kill", "GOCSPX-SECRETkill0001").await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/bot.db?mode=rwc", dir.path().display());
    let key = followup_bot::crypto::generate_key();

    // Ada has a ready follow-up and a Google connection.
    let followup = {
        let store = Store::open(&db_url).await.unwrap();
        let cipher =
            followup_bot::crypto::Cipher::new(&SecretString::from(key.clone()), &[]).unwrap();
        let tenant = store.ensure_tenant("T0KILL").await.unwrap();
        let ada = store.ensure_user(tenant.id, "U0ADA").await.unwrap();
        let meeting: followup_bot::domain::meeting::Meeting =
            serde_json::from_value(serde_json::json!({ "recording_id": 62, "title": "Initech" }))
                .unwrap();
        let id = store
            .create_followup(followup_bot::store::followups::NewFollowup {
                tenant: tenant.id,
                user: ada.id,
                meeting: &meeting,
                job_kind: "followup.generate",
                max_attempts: 5,
                hold: Duration::ZERO,
                click_window: Duration::ZERO,
            })
            .await
            .unwrap()
            .unwrap();
        let draft = followup_bot::domain::followup::Draft {
            subject: "Next steps".into(),
            body: "Hi,\n\nthanks.".into(),
            summary: "s".into(),
            crm_note: "n".into(),
            attendees: "cto@initech.example".into(),
            next_meeting: None,
        };
        store.save_draft(&id, "template", &draft).await.unwrap();
        if let Store::Sqlite(pool) = &store {
            sqlx::query("DELETE FROM jobs").execute(pool).await.unwrap();
        }
        let tokens = google.issue_tokens("ada@seller.example");
        let secret = SecretString::from(
            serde_json::json!({
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
            })
            .to_string(),
        );
        store
            .put_credential(
                &cipher,
                NewCredential {
                    tenant: tenant.id,
                    subject: Subject::User(ada.id),
                    provider: Provider::Google,
                    secret: &secret,
                    account_email: Some("ada@seller.example"),
                    api_domain: None,
                    expires_at: Some(chrono::Utc::now() + chrono::Duration::minutes(50)),
                    scopes: Some(&tokens.scope),
                    metadata: serde_json::json!({}),
                },
            )
            .await
            .unwrap();
        store.close().await;
        id
    };
    let start = || {
        let mut cmd = bot(dir.path());
        cmd.env("SLACK_APP_TOKEN", APP_TOKEN)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_API_URL", slack.api_url())
            .env("FATHOM_API_URL", "http://127.0.0.1:9")
            .env("DATABASE_URL", &db_url)
            .env("ENCRYPTION_KEY", &key)
            .env("HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("PUBLIC_BASE_URL", "https://followup.example")
            .env("GOOGLE_CLIENT_ID", "cid-kill")
            .env("GOOGLE_CLIENT_SECRET", "GOCSPX-SECRETkill0001")
            .env("GOOGLE_AUTH_URL", google.auth_url())
            .env("GOOGLE_TOKEN_URL", google.token_url())
            .env("GOOGLE_REVOKE_URL", google.revoke_url())
            .env("GOOGLE_USERINFO_URL", google.userinfo_url())
            .env("GMAIL_API_URL", google.gmail_api_url())
            .env("GOOGLE_CALENDAR_API_URL", google.calendar_api_url())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    slack
        .wait_for_connections(2, Duration::from_secs(20))
        .await
        .unwrap();
    // Google stores the draft, then its answer hangs: the kill lands in between.
    google.set_gmail_delay(Duration::from_secs(60));
    let click = payloads::block_actions("T0KILL", "U0ADA", "followup_gmail", &followup.0, None);
    let id = slack.send_envelope(click).unwrap();
    slack
        .wait_for_ack(&id, Duration::from_secs(10))
        .await
        .unwrap();
    google
        .wait_for_drafts(1, Duration::from_secs(10))
        .await
        .unwrap();
    child.kill().await.unwrap(); // SIGKILL
    google.set_gmail_delay(Duration::ZERO);

    let mut child = start();
    let saved = |slack: &FakeSlack| {
        slack
            .calls("chat.postMessage")
            .iter()
            .filter(|c| {
                c.response["ok"] == true && c.body.to_string().contains("Draft saved in Gmail")
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while saved(&slack) == 0 {
        assert!(
            Instant::now() < deadline,
            "the request was lost: no Draft saved within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(google.drafts().len(), 1, "one draft, not two");
    assert_eq!(saved(&slack), 1);
    child.kill().await.unwrap();
}

/// Issue 7, item 9: the shipped (release) profile unwinds, so the panic isolation of jobs and
/// envelopes that the tests exercise in the test profile holds in the shipped binary too.
/// (A release build is not run in CI: it would double CI's build time.)
#[test]
fn the_release_profile_unwinds_panics() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("a release profile")
        .split("\n[")
        .next()
        .unwrap_or_default();
    let aborts = release
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.replace(' ', "") == "panic=\"abort\"");
    assert!(
        !aborts,
        "panic = \"abort\" would let one panic kill the whole bot"
    );
}
