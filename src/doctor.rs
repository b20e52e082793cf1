//! `doctor`: checks the configuration, the database and both Slack tokens, and says what to fix.

use std::process::ExitCode;

use crate::config::{Config, Source};
use crate::slack::api::SlackApi;

struct Report {
    failed: bool,
}

impl Report {
    fn ok(&self, what: &str) {
        println!("  ok    {what}");
    }

    fn fail(&mut self, what: &str, fix: &str) {
        self.failed = true;
        println!("  FAIL  {what}\n        {fix}");
    }
}

pub async fn run(source: &Source) -> ExitCode {
    let mut report = Report { failed: false };
    println!("followup-bot doctor");
    let config = match Config::load(source) {
        Ok(config) => {
            report.ok("configuration");
            config
        }
        Err(problems) => {
            for problem in problems.0 {
                report.fail("configuration", &problem);
            }
            println!("\nfix the configuration first (see .env.example)");
            return ExitCode::FAILURE;
        }
    };

    match config.database.open().await {
        Ok(store) => {
            report.ok(&format!(
                "database reachable and migrated ({})",
                store.backend()
            ));
            store.close().await;
        }
        Err(e) => report.fail(
            "database",
            &format!("{e:#}; check DATABASE_URL and that the server is running"),
        ),
    }
    match config.encryption.cipher() {
        Ok(cipher) => report.ok(&format!("encryption key (id {})", cipher.key_id())),
        Err(e) => report.fail("encryption key", &format!("{e:#}")),
    }

    let slack = match config.slack.client() {
        Ok(slack) => slack,
        Err(e) => {
            report.fail("TLS setup", &e.to_string());
            return ExitCode::FAILURE;
        }
    };
    match slack.auth_test().await {
        Ok(id) => report.ok(&format!(
            "SLACK_BOT_TOKEN works: workspace {} ({}), bot user {}",
            id.team, id.team_id, id.user_id
        )),
        Err(e) => report.fail(
            "SLACK_BOT_TOKEN",
            &format!("auth.test failed ({e}); reinstall the app and copy the Bot User OAuth Token"),
        ),
    }
    match slack.open_socket_url().await {
        Ok(_) => report.ok("SLACK_APP_TOKEN can open Socket Mode connections"),
        Err(e) => report.fail(
            "SLACK_APP_TOKEN",
            &format!(
                "apps.connections.open failed ({e}); make an app-level token with connections:write \
                 and check Socket Mode is enabled"
            ),
        ),
    }
    for (name, set) in [
        (
            "ANTHROPIC_API_KEY (AI drafts; without it a template is used)",
            config.anthropic.api_key.is_some(),
        ),
        (
            "GOOGLE_CLIENT_ID/SECRET (Gmail drafts, calendar events)",
            config.google.client.is_some(),
        ),
        ("HUBSPOT_CLIENT_ID/SECRET", config.crm.hubspot.is_some()),
        ("ZOHO_CLIENT_ID/SECRET", config.crm.zoho.is_some()),
        (
            "PUBLIC_BASE_URL (OAuth redirects)",
            config.http.public_base_url.is_some(),
        ),
    ] {
        println!("  {}  {name}", if set { "set " } else { "----" });
    }
    if report.failed {
        println!("\nsome checks failed");
        ExitCode::FAILURE
    } else {
        println!("\nall checks passed");
        ExitCode::SUCCESS
    }
}
