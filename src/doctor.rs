//! `doctor`: checks the configuration, the database, the encryption key and both Slack
//! tokens, and says in plain words what to fix.

use std::process::ExitCode;

use crate::config::{Config, Source};
use crate::slack::api::{SlackApi, SlackApiError};

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
    check_storage(&config, &mut report).await;
    check_slack(&config, &mut report).await;
    list_optional(&config);
    check_google(&config, &mut report);
    check_crms(&config).await;
    match (
        &config.slack.client,
        config.http.public_url("/slack/install"),
    ) {
        (Some(_), Some(link)) => println!(
            "  ok    many workspaces: installed through {link} (each team's own bot token; \
             SLACK_BOT_TOKEN, if set, serves its own team)"
        ),
        (Some(_), None) => report.fail(
            "many workspaces",
            "SLACK_CLIENT_ID is set but PUBLIC_BASE_URL is not: set it, and register \
             {PUBLIC_BASE_URL}/slack/oauth_redirect as the app's redirect URL",
        ),
        (None, _) => println!(
            "  info  one workspace (SLACK_BOT_TOKEN); set SLACK_CLIENT_ID/SECRET and \
             PUBLIC_BASE_URL to install into more"
        ),
    }
    match config.http.public_url("/webhooks/fathom/") {
        Some(url) => println!(
            "  ok    Fathom: meeting-ready DMs by webhook ({url}…), polling every 30 minutes as \
             the safety net"
        ),
        None => println!(
            "  info  Fathom: polling every {} s (set PUBLIC_BASE_URL for webhooks: DMs within \
             seconds)",
            config.fathom.poll_interval.as_secs()
        ),
    }
    if report.failed {
        println!("\nsome checks failed");
        ExitCode::FAILURE
    } else {
        println!("\nall checks passed");
        ExitCode::SUCCESS
    }
}

async fn check_storage(config: &Config, report: &mut Report) {
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
            &format!(
                "{e:#}; check DATABASE_URL ({}) and that the server is running",
                config.database.redacted_url()
            ),
        ),
    }
    match config.encryption.cipher() {
        Ok(cipher) => report.ok(&format!("encryption key (id {})", cipher.key_id())),
        Err(e) => report.fail("encryption key", &format!("{e:#}")),
    }
    if let (None, Some(file)) = (&config.encryption.key, &config.encryption.key_file) {
        println!(
            "  warn  ENCRYPTION_KEY is not set, so the key is the file {} beside the database: a \
             copy of that folder holds both the secrets and their key. Fine for trying the bot; \
             in production set ENCRYPTION_KEY (`followup-bot keygen`) and keep it elsewhere.",
            file.display()
        );
    }
}

async fn check_slack(config: &Config, report: &mut Report) {
    let slack = match config.slack.client() {
        Ok(slack) => slack,
        Err(e) => {
            report.fail(
                "TLS setup",
                &format!("the system's CA certificates could not be loaded ({e})"),
            );
            return;
        }
    };
    let unreachable = |e: &SlackApiError| match e {
        SlackApiError::Transport(why) => Some(format!(
            "could not reach {}: {why}; check the network or SLACK_API_URL",
            host_of(&config.slack.api_url)
        )),
        _ => None,
    };
    match slack.auth_test().await {
        Ok(id) => report.ok(&format!(
            "SLACK_BOT_TOKEN works: workspace {} ({}), bot user {}",
            id.team, id.team_id, id.user_id
        )),
        Err(e) => report.fail(
            "SLACK_BOT_TOKEN",
            &unreachable(&e).unwrap_or_else(|| {
                format!(
                    "auth.test failed ({e}); reinstall the app and copy the Bot User OAuth Token"
                )
            }),
        ),
    }
    match slack.open_socket_url().await {
        Ok(_) => report.ok("SLACK_APP_TOKEN can open Socket Mode connections"),
        Err(e) => report.fail(
            "SLACK_APP_TOKEN",
            &unreachable(&e).unwrap_or_else(|| {
                format!(
                    "apps.connections.open failed ({e}); make an app-level token with \
                     connections:write and check Socket Mode is enabled"
                )
            }),
        ),
    }
}

/// The host (and port, if any) of a base URL, for messages.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| url.to_owned())
}

/// Google needs the public address for its redirect URI, which must be registered exactly.
fn check_google(config: &Config, report: &mut Report) {
    if config.google.client.is_none() {
        return;
    }
    match config.http.public_url("/oauth/google/callback") {
        Some(uri) => {
            report.ok(&format!(
                "Google redirect URI (register exactly this one): {uri}"
            ));
            if !config.http.public_is_https() {
                println!("        note: Google accepts http redirect URIs only for localhost");
            }
        }
        None => report.fail(
            "Google",
            "GOOGLE_CLIENT_ID is set but PUBLIC_BASE_URL is not: set it to the bot's public \
             https address, then register {PUBLIC_BASE_URL}/oauth/google/callback as the \
             client's redirect URI",
        ),
    }
}

/// Each team's CRM connection, asked for its deal stages (one read). Problems are warnings:
/// one workspace's CRM does not stop the bot serving the others.
async fn check_crms(config: &Config) {
    let services = match crate::services::Services::build(config.clone()).await {
        Ok(services) => services,
        Err(e) => {
            println!("  warn  the teams' CRM connections were not checked: {e:#}");
            return;
        }
    };
    for (ok, line) in crm_report(&services).await {
        println!("  {}  {line}", if ok { "ok  " } else { "warn" });
    }
    services.store.close().await;
}

/// One line per team with a CRM: whether it answers, and what to do when it does not.
pub async fn crm_report(services: &crate::services::Services) -> Vec<(bool, String)> {
    use crate::clients::crm::Calls;
    let connections = match services.store.crm_connections().await {
        Ok(found) => found,
        Err(e) => return vec![(false, format!("CRM connections unreadable: {e:#}"))],
    };
    let mut lines = Vec::new();
    for (tenant, team, provider, status) in connections {
        let label = crate::domain::provider::Provider::parse(&provider)
            .map(|p| p.label())
            .unwrap_or("a CRM");
        if status != "connected" {
            lines.push((
                false,
                format!(
                    "team {team}: {label} is {status}; a workspace admin there runs /crono-connect"
                ),
            ));
            continue;
        }
        let line = match services.crm(tenant, Calls::Interactive).await {
            Ok(Ok(crm)) => match crm.stages().await {
                Ok(stages) => (
                    true,
                    format!(
                        "team {team}: {label} answers ({} deal stages)",
                        stages.len()
                    ),
                ),
                Err(e) => (false, format!("team {team}: {e}. {}", e.words())),
            },
            Ok(Err(no)) => (false, format!("team {team}: {}", no.words())),
            Err(e) => (
                false,
                format!("team {team}: {label} could not be used: {e:#}"),
            ),
        };
        lines.push(line);
    }
    lines
}

fn list_optional(config: &Config) {
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
}
