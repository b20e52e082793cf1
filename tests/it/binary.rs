//! The shipped binary, started as an operator would: from an empty folder, configured by the
//! environment only.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::bot::{APP_TOKEN, BOT_TOKEN};
use crate::support::fake_slack::FakeSlack;
use crate::support::payloads;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_followup-bot");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn bot(dir: &std::path::Path) -> Command {
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
async fn doctor_reports_what_works_and_what_does_not() {
    crate::support::init();
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |slack: &FakeSlack| {
        let mut cmd = bot(dir.path());
        cmd.env("SLACK_APP_TOKEN", APP_TOKEN)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_API_URL", slack.api_url())
            .arg("doctor");
        cmd
    };
    let out = run(&slack).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("SLACK_BOT_TOKEN works"), "{stdout}");
    assert!(stdout.contains("all checks passed"), "{stdout}");

    slack.set_error("apps.connections.open", "invalid_auth");
    let out = run(&slack).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  SLACK_APP_TOKEN"), "{stdout}");
    assert!(stdout.contains("invalid_auth"), "{stdout}");
    assert!(!stdout.contains(APP_TOKEN), "{stdout}");
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
    assert!(
        stdout.contains(
            "could not reach 127.0.0.1:9: the connection was refused; check the network or \
             SLACK_API_URL"
        ),
        "{stdout}"
    );
    for debug in ["hyper", "Os {", "ConnectError", "Some("] {
        assert!(
            !stdout.contains(debug),
            "library debug output {debug:?}: {stdout}"
        );
    }
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
