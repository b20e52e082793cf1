//! A full run with every secret configured and logs at their most verbose: no configured
//! secret, and no credential the bot stored, may appear in any log line.
//! (Its own test binary: it installs the process-wide subscriber.)

use std::time::Duration;

use crate::support::fake_slack::FakeSlack;
use crate::support::{Backend, TestDb, bot, payloads};
use followup_bot::config::LogFormat;
use followup_bot::domain::provider::Provider;
use followup_bot::store::credentials::{NewCredential, Subject};
use secrecy::SecretString;

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let capture = crate::support::LogCapture::default();
    let writer = capture.clone();
    followup_bot::telemetry::init_logs_to(LogFormat::Json, "trace", move || writer.clone());
    crate::support::init();

    let slack = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = bot::settings(&slack, &db);
    for (name, value) in [
        ("ANTHROPIC_API_KEY", "sk-ant-SECRETANTHROPIC0001"),
        ("GOOGLE_CLIENT_ID", "google-client-id"),
        ("GOOGLE_CLIENT_SECRET", "GOCSPX-SECRETGOOGLE0002"),
        ("HUBSPOT_CLIENT_ID", "hubspot-client-id"),
        ("HUBSPOT_CLIENT_SECRET", "SECRETHUBSPOT0003"),
        ("ZOHO_CLIENT_ID", "zoho-client-id"),
        ("ZOHO_CLIENT_SECRET", "SECRETZOHO0004"),
    ] {
        settings.push((name.to_owned(), value.to_owned()));
    }
    let config = bot::config(&settings);
    let mut secrets = config.secret_values();
    assert_eq!(secrets.len(), 7, "every configured secret is checked");
    let running = bot::start_with(config, followup_bot::features::all(), &slack).await;
    let app = running.services.clone();

    // Traffic of every kind: commands, home, a button, junk, a reconnect, a stored credential.
    let wait = Duration::from_secs(10);
    let cmd = payloads::slash_command("T1", "U1", "/nope", "my text", &slack.response_url("a"));
    let id = slack.send_envelope(cmd).unwrap();
    slack.wait_for_ack(&id, wait).await.unwrap();
    let id = slack
        .send_envelope(payloads::app_home_opened("T1", "U1"))
        .unwrap();
    slack.wait_for_ack(&id, wait).await.unwrap();
    slack.wait_for_call("views.publish", wait).await.unwrap();
    let mut button = payloads::block_actions("T1", "U1", "old_button", "v", None);
    button["payload"]["response_url"] = serde_json::json!(slack.response_url("b"));
    let id = slack.send_envelope(button).unwrap();
    slack.wait_for_ack(&id, wait).await.unwrap();
    slack.wait_for_response_post("b", wait).await.unwrap();
    slack.send_raw("{\"type\": broken").unwrap();
    let conn = slack.open_connection_ids()[0];
    slack.send_disconnect(conn, "refresh_requested").unwrap();
    slack.wait_for_connection_closed(conn, wait).await.unwrap();

    let tenant = app.store.ensure_tenant("T1").await.unwrap();
    let user = app.store.ensure_user(tenant.id, "U1").await.unwrap();
    let stored = "fathom-SECRETSTOREDKEY0005";
    app.store
        .put_credential(
            &app.cipher,
            NewCredential {
                tenant: tenant.id,
                subject: Subject::User(user.id),
                provider: Provider::Fathom,
                secret: &SecretString::from(stored.to_owned()),
                account_email: None,
                api_domain: None,
                expires_at: None,
                scopes: None,
                metadata: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    app.store
        .credential(
            &app.cipher,
            tenant.id,
            Subject::User(user.id),
            Provider::Fathom,
        )
        .await
        .unwrap()
        .unwrap();
    tracing::info!(config = ?app.config, "the whole config, as a careless log line would print it");
    reqwest::get(format!("{}/metrics", bot::base_url(&running)))
        .await
        .unwrap();
    running.shutdown();
    running.stopped().await;

    secrets.push(stored.to_owned());
    let logs = capture.text();
    assert!(logs.lines().count() > 20, "logs were captured:\n{logs}");
    assert!(logs.contains("Socket Mode connection ready"));
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs"
        );
    }
    for line in logs.lines().filter(|l| l.contains("my text")) {
        eprintln!("LEAK: {}", &line[..line.len().min(400)]);
    }
    assert!(
        !logs.contains("my text"),
        "people's text stays out of the logs"
    );
}
