//! Starts the real bot (the same `app::start` the binary uses) against the fakes.

use std::time::Duration;

use followup_bot::config::{Config, Source};
use followup_bot::registry::Features;
use followup_bot::startup::Running;

use super::TestDb;
use super::fake_slack::FakeSlack;

pub const APP_TOKEN: &str = "xapp-1-A0TEST-1-0123456789abcdefSECRETAPP";
pub const BOT_TOKEN: &str = "xoxb-1-2-SECRETBOTTOKEN0123456789";

/// The settings a test bot runs with: every external base URL on loopback (an unused port
/// where no fake is given), so nothing can reach the internet.
pub fn settings(slack: &FakeSlack, db: &TestDb) -> Vec<(String, String)> {
    let nowhere = "http://127.0.0.1:9";
    let mut pairs: Vec<(String, String)> = [
        ("SLACK_APP_TOKEN", APP_TOKEN.to_owned()),
        ("SLACK_BOT_TOKEN", BOT_TOKEN.to_owned()),
        ("SLACK_API_URL", slack.api_url()),
        ("SLACK_PING_INTERVAL_SECS", "1".to_owned()),
        ("DATABASE_URL", db.url.clone()),
        ("ENCRYPTION_KEY", followup_bot::crypto::generate_key()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        // The CRM mirror's sync runs only when a test asks (`features::crm::sync_once`).
        ("CRM_SYNC_INTERVAL_SECS", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for name in [
        "FATHOM_API_URL",
        "ANTHROPIC_API_URL",
        "GOOGLE_AUTH_URL",
        "GOOGLE_TOKEN_URL",
        "GOOGLE_REVOKE_URL",
        "GOOGLE_USERINFO_URL",
        "GMAIL_API_URL",
        "GOOGLE_CALENDAR_API_URL",
        "CRONO_API_URL",
        "HUBSPOT_API_URL",
        "HUBSPOT_AUTH_URL",
        "HUBSPOT_TOKEN_URL",
        "ZOHO_ACCOUNTS_URL",
    ] {
        pairs.push((name.to_owned(), nowhere.to_owned()));
    }
    pairs
}

pub fn config(pairs: &[(String, String)]) -> Config {
    Config::load(&Source::from_pairs(pairs.iter().cloned())).expect("test config is valid")
}

/// Starts the bot with the shipped features and waits until its sockets are up.
pub async fn start(slack: &FakeSlack, db: &TestDb) -> Running {
    start_with(
        config(&settings(slack, db)),
        followup_bot::features::all(),
        slack,
    )
    .await
}

pub async fn start_with(config: Config, features: Features, slack: &FakeSlack) -> Running {
    super::init();
    let connections = config.slack.connections;
    let running = followup_bot::startup::start(config, features)
        .await
        .expect("the bot starts");
    slack
        .wait_for_connections(connections, Duration::from_secs(10))
        .await
        .expect("the bot connects to the fake Slack");
    // The fake counts a connection once it sent hello; wait until the bot has read it too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running.socket.open_connections() < connections {
        assert!(
            std::time::Instant::now() < deadline,
            "the bot never saw hello"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running
}

pub fn base_url(running: &Running) -> String {
    format!("http://{}", running.http_addr)
}
