//! `doctor`: checks every configured integration (the configuration, the database and its
//! migrations, the encryption key, both Slack tokens and the bot's scopes, Anthropic, Google,
//! the CRM apps, each team's CRM, Fathom webhooks) without changing anything, and prints one
//! table row per check with what to do for each problem.
//!
//! A `FAIL` is something the operator must fix (the exit code is 1); a `warn` is worth
//! knowing or is fixed by a team, not the operator (a team's CRM, a person's webhook); `off`
//! is an integration that is not configured.

use std::fmt::Write as _;
use std::process::ExitCode;

use secrecy::ExposeSecret;

use crate::clients::ApiError;
use crate::clients::google::ClientCheck;
use crate::config::{Config, Source};
use crate::slack::api::{SlackApi, SlackApiError};
use crate::store::{MigrationStatus, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    Fail,
    Warn,
    Off,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fail => "FAIL",
            Status::Warn => "warn",
            Status::Off => "off",
        }
    }
}

struct Row {
    check: String,
    status: Status,
    detail: String,
    /// What to do: every `FAIL` and `warn` has one.
    fix: Option<String>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

/// The table's width; longer details wrap within their column.
const WIDTH: usize = 100;

impl Report {
    fn row(&mut self, check: &str, status: Status, detail: String, fix: Option<String>) {
        self.rows.push(Row {
            check: check.to_owned(),
            status,
            detail,
            fix,
        });
    }

    fn ok(&mut self, check: &str, detail: impl Into<String>) {
        self.row(check, Status::Ok, detail.into(), None);
    }

    fn off(&mut self, check: &str, detail: impl Into<String>) {
        self.row(check, Status::Off, detail.into(), None);
    }

    fn warn(&mut self, check: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.row(check, Status::Warn, detail.into(), Some(fix.into()));
    }

    fn fail(&mut self, check: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.row(check, Status::Fail, detail.into(), Some(fix.into()));
    }

    fn count(&self, status: Status) -> usize {
        self.rows.iter().filter(|r| r.status == status).count()
    }

    /// The table: CHECK, STATUS, DETAIL, each fix under its row, then the summary line.
    fn render(&self) -> String {
        let check_width = self
            .rows
            .iter()
            .map(|r| r.check.chars().count())
            .chain(["CHECK".len()])
            .max()
            .unwrap_or(5);
        let status_width = "STATUS".len();
        let indent = check_width + 2 + status_width + 2;
        let detail_width = WIDTH.saturating_sub(indent).max(40);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:check_width$}  {:status_width$}  DETAIL",
            "CHECK", "STATUS"
        );
        for row in &self.rows {
            let mut lines = wrap(&row.detail, detail_width).into_iter();
            let _ = writeln!(
                out,
                "{:check_width$}  {:status_width$}  {}",
                row.check,
                row.status.label(),
                lines.next().unwrap_or_default()
            );
            let fix = row
                .fix
                .iter()
                .flat_map(|fix| wrap(&format!("fix: {fix}"), detail_width - 5));
            let fix = fix.enumerate().map(
                |(i, line)| {
                    if i == 0 { line } else { format!("     {line}") }
                },
            );
            for line in lines.chain(fix) {
                let _ = writeln!(out, "{:indent$}{line}", "");
            }
        }
        let failed = self.count(Status::Fail);
        let warnings = match self.count(Status::Warn) {
            0 => String::new(),
            1 => " (1 warning)".to_owned(),
            n => format!(" ({n} warnings)"),
        };
        let _ = match failed {
            0 => writeln!(out, "\nall required checks passed{warnings}"),
            1 => writeln!(out, "\n1 required check failed{warnings}"),
            n => writeln!(out, "\n{n} required checks failed{warnings}"),
        };
        out
    }
}

/// Splits text into lines of at most `width` characters at spaces (a longer word, such as a
/// URL, stays whole on its own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Why the checks that read the store did not run.
type Skipped = &'static str;

pub async fn run(source: &Source) -> ExitCode {
    let mut report = Report::default();
    println!("followup-bot doctor\n");
    let config = match Config::load(source) {
        Ok(config) => config,
        Err(problems) => {
            for problem in problems.0 {
                report.fail(
                    "configuration",
                    problem,
                    "correct it in the environment or .env (.env.example describes every \
                     variable); the other checks run once the configuration is valid",
                );
            }
            print!("{}", report.render());
            return ExitCode::FAILURE;
        }
    };
    // Logs (the providers' own answers) go to stderr; the table is stdout.
    crate::telemetry::allow_pii(config.log.pii);
    crate::telemetry::init_logs_to(config.log.format, &config.log.filter, std::io::stderr);
    report.ok("configuration", "read from the environment and .env");
    if config.log.pii {
        report.warn(
            "LOG_PII",
            "on: names, emails, meeting titles and providers' messages are written to the logs",
            "set LOG_PII=false (or remove it) once the debugging is done",
        );
    }
    let http = crate::clients::http_client();

    let store = check_database(&config, &mut report).await;
    let usable = match &store {
        Opened::Current(store) => Ok(Some(store)),
        Opened::Missing => Ok(None),
        Opened::Behind(_) => Err("the database's migrations are not current"),
        Opened::Unreachable => Err("the database could not be opened"),
    };
    check_encryption(&config, usable, &mut report).await;
    check_slack(&config, &http, &mut report).await;
    check_workspaces(&config, &mut report);
    check_anthropic(&config, &http, &mut report).await;
    check_google(&config, &http, &mut report).await;
    check_crm_apps(&config, &mut report);
    check_crms(&config, usable, &mut report).await;
    check_fathom(&config, usable, &mut report).await;
    if let Opened::Current(store) | Opened::Behind(store) = &store {
        store.close().await;
    }

    print!("{}", report.render());
    if report.count(Status::Fail) > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The database as `doctor` found it.
enum Opened {
    /// Reachable and migrated.
    Current(Store),
    /// Reachable, migrations to apply (or that would stop `migrate`).
    Behind(Store),
    /// A SQLite file that does not exist yet (the first start creates it).
    Missing,
    Unreachable,
}

/// Opens the database without creating or migrating anything and compares its migrations
/// with this binary's.
async fn check_database(config: &Config, report: &mut Report) -> Opened {
    let url = &config.database.url;
    let backend = if config.database.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let file = crate::store::sqlite_file(url);
    if let Some(file) = file.as_ref().filter(|f| !f.exists()) {
        report.warn(
            "database",
            format!("sqlite: {} does not exist yet", file.display()),
            "nothing to do: the first start creates and migrates it (or `followup-bot \
             migrate`)",
        );
        return Opened::Missing;
    }
    let place = match &file {
        Some(file) => file.display().to_string(),
        None => config.database.redacted_url(),
    };
    let store = match Store::connect_existing(url).await {
        Ok(store) => store,
        Err(e) => {
            report.fail(
                "database",
                format!("{backend} at {place} could not be opened: {e:#}"),
                format!(
                    "check DATABASE_URL ({}) and that the database server is running",
                    config.database.redacted_url()
                ),
            );
            return Opened::Unreachable;
        }
    };
    if let Err(e) = store.ping().await {
        report.fail(
            "database",
            format!("{backend} at {place} does not answer: {e:#}"),
            "check that the database server is running and accepts this user",
        );
        store.close().await;
        return Opened::Unreachable;
    }
    report.ok("database", format!("{backend} at {place}"));
    match store.migration_status().await {
        Ok(status) => {
            report_migrations(&status, report);
            if status.is_current() {
                Opened::Current(store)
            } else {
                Opened::Behind(store)
            }
        }
        Err(e) => {
            report.fail(
                "migrations",
                format!("the migrations table could not be read: {e:#}"),
                "check that the database user may read _sqlx_migrations",
            );
            Opened::Behind(store)
        }
    }
}

fn versions(list: &[i64]) -> String {
    list.iter()
        .map(|v| format!("{v:04}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn report_migrations(status: &MigrationStatus, report: &mut Report) {
    if status.is_current() {
        report.ok(
            "migrations",
            format!("{} applied, none pending", status.applied),
        );
        return;
    }
    if !status.pending.is_empty() {
        report.fail(
            "migrations",
            format!(
                "{} applied, {} pending ({})",
                status.applied,
                status.pending.len(),
                versions(&status.pending)
            ),
            "run `followup-bot migrate`",
        );
    }
    if !status.unknown.is_empty() {
        report.fail(
            "migrations",
            format!(
                "the database has migrations this binary does not know ({}): a newer \
                 followup-bot migrated it, and this one will not start on it",
                versions(&status.unknown)
            ),
            "run the newer release (or restore the backup taken before the upgrade)",
        );
    }
    if !status.changed.is_empty() {
        report.fail(
            "migrations",
            format!(
                "migrations {} differ from the ones applied: the bot will not start",
                versions(&status.changed)
            ),
            "run the release that applied them; a shipped migration must not be edited",
        );
    }
    if !status.failed.is_empty() {
        report.fail(
            "migrations",
            format!("migration {} failed halfway", versions(&status.failed)),
            "repair the database by hand (the log of the failed start says what failed), \
             delete that version's row from _sqlx_migrations, then run `followup-bot migrate`",
        );
    }
}

/// The key loads, and every stored secret was sealed with a key that is configured.
async fn check_encryption(
    config: &Config,
    store: Result<Option<&Store>, Skipped>,
    report: &mut Report,
) {
    let enc = &config.encryption;
    const KEY_FILE_FIX: &str = "fine for trying the bot: a copy of that folder holds both the \
         secrets and their key. In production set ENCRYPTION_KEY (`followup-bot keygen`) and \
         keep it elsewhere.";
    let cipher = match (&enc.key, &enc.key_file) {
        // Not created here: `doctor` changes nothing.
        (None, Some(file)) if !file.exists() => {
            report.warn(
                "encryption key",
                format!(
                    "ENCRYPTION_KEY is not set, so the key is the file {} beside the database \
                     (the first start creates it)",
                    file.display()
                ),
                KEY_FILE_FIX,
            );
            None
        }
        _ => match enc.cipher() {
            Ok(cipher) => {
                let previous = match enc.previous.len() {
                    0 => String::new(),
                    n => format!(", and {n} previous key(s) for opening"),
                };
                report.ok(
                    "encryption key",
                    format!("key id {}{previous}", cipher.key_id()),
                );
                if let (None, Some(file)) = (&enc.key, &enc.key_file) {
                    report.warn(
                        "encryption key",
                        format!(
                            "ENCRYPTION_KEY is not set, so the key is the file {} beside the \
                             database",
                            file.display()
                        ),
                        KEY_FILE_FIX,
                    );
                }
                Some(cipher)
            }
            Err(e) => {
                report.fail(
                    "encryption key",
                    format!("{e:#}"),
                    "set ENCRYPTION_KEY to a key made by `followup-bot keygen` (the one the \
                     stored secrets were sealed with)",
                );
                None
            }
        },
    };
    let store = match store {
        Ok(Some(store)) => store,
        Ok(None) => return,
        Err(why) => {
            report.warn(
                "stored secrets",
                format!("not checked: {why}"),
                "fix the database rows above first",
            );
            return;
        }
    };
    let key_ids = match store.credential_key_ids().await {
        Ok(found) => found,
        Err(e) => {
            report.fail(
                "stored secrets",
                format!("the credentials could not be read: {e:#}"),
                "check that the database user may read the credentials table",
            );
            return;
        }
    };
    let total: i64 = key_ids.iter().map(|(_, n)| n).sum();
    let known = |id: &[u8]| cipher.as_ref().is_some_and(|c| c.knows_key_id(id));
    let lost: Vec<_> = key_ids.iter().filter(|(id, _)| !known(id)).collect();
    let lost_count: i64 = lost.iter().map(|(_, n)| n).sum();
    let older: i64 = key_ids
        .iter()
        .filter(|(id, _)| {
            known(id) && cipher.as_ref().map(|c| c.key_id()) != Some(crate::crypto::hex(id))
        })
        .map(|(_, n)| n)
        .sum();
    if total == 0 {
        report.ok("stored secrets", "none stored yet");
    } else if lost_count == 0 {
        let older = match older {
            0 => String::new(),
            n => format!(" ({n} with a previous key: `followup-bot rotate-keys` re-seals them)"),
        };
        report.ok(
            "stored secrets",
            format!("{total} sealed with a configured key{older}"),
        );
    } else {
        let ids: Vec<String> = lost.iter().map(|(id, _)| crate::crypto::hex(id)).collect();
        report.fail(
            "stored secrets",
            format!(
                "{lost_count} stored secrets were sealed with a key that is no longer \
                 configured (key id {})",
                ids.join(", ")
            ),
            "put that key back in ENCRYPTION_KEYS_PREVIOUS, or those people reconnect",
        );
    }
}

async fn check_slack(config: &Config, http: &reqwest::Client, report: &mut Report) {
    let slack = match config.slack.client() {
        Ok(slack) => slack,
        Err(e) => {
            report.fail(
                "TLS setup",
                format!("the system's CA certificates could not be loaded ({e})"),
                "install the CA certificates (e.g. the ca-certificates package)",
            );
            return;
        }
    };
    let unreachable = |e: &SlackApiError| match e {
        SlackApiError::Transport(why) => Some(format!(
            "could not reach {}: {why}",
            host_of(&config.slack.api_url)
        )),
        _ => None,
    };
    const NETWORK: &str = "check the network or SLACK_API_URL";
    if config.slack.bot_token.expose_secret().is_empty() {
        report.off(
            "SLACK_BOT_TOKEN",
            "not set: each workspace's own token comes from its install",
        );
    } else {
        match slack.auth_test().await {
            Ok(id) => {
                report.ok(
                    "SLACK_BOT_TOKEN",
                    format!(
                        "works: workspace {} ({}), bot user {}",
                        id.team, id.team_id, id.user_id
                    ),
                );
                check_scopes(config, http, report).await;
            }
            Err(e) => match unreachable(&e) {
                Some(why) => report.fail("SLACK_BOT_TOKEN", why, NETWORK),
                None => report.fail(
                    "SLACK_BOT_TOKEN",
                    format!("auth.test failed ({e})"),
                    "reinstall the app and copy the Bot User OAuth Token (OAuth & Permissions)",
                ),
            },
        }
    }
    match slack.open_socket_url().await {
        Ok(_) => report.ok("SLACK_APP_TOKEN", "can open Socket Mode connections"),
        Err(e) => match unreachable(&e) {
            Some(why) => report.fail("SLACK_APP_TOKEN", why, NETWORK),
            None => report.fail(
                "SLACK_APP_TOKEN",
                format!("apps.connections.open failed ({e})"),
                "make an app-level token with connections:write (Basic Information → \
                 App-Level Tokens) and check Socket Mode is enabled",
            ),
        },
    }
}

/// The bot token's scopes against the ones the manifest asks for.
async fn check_scopes(config: &Config, http: &reqwest::Client, report: &mut Report) {
    const CHECK: &str = "bot token scopes";
    let wanted = crate::slack::manifest::bot_scopes();
    let unread_fix = "compare OAuth & Permissions → Scopes with `followup-bot manifest`";
    match crate::slack::api::token_scopes(http, &config.slack.api_url, &config.slack.bot_token)
        .await
    {
        Ok(Some(held)) => {
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|w| !held.iter().any(|h| h == w))
                .collect();
            if missing.is_empty() {
                report.ok(
                    CHECK,
                    format!("every scope the manifest asks for: {}", wanted.join(", ")),
                );
            } else {
                report.fail(
                    CHECK,
                    format!("missing {}", missing.join(", ")),
                    "add them under OAuth & Permissions (or re-create the app from \
                     `followup-bot manifest`) and reinstall",
                );
            }
        }
        Ok(None) => report.warn(
            CHECK,
            "could not read the token's scopes (Slack sent no x-oauth-scopes header)",
            unread_fix,
        ),
        Err(e) => report.warn(
            CHECK,
            format!("could not read the token's scopes ({e})"),
            unread_fix,
        ),
    }
}

fn check_workspaces(config: &Config, report: &mut Report) {
    match (
        &config.slack.client,
        config.http.public_url("/slack/install"),
    ) {
        (Some(_), Some(link)) => report.ok(
            "workspaces",
            format!(
                "many: installed through {link} (each team's own bot token; SLACK_BOT_TOKEN, \
                 if set, serves its own team)"
            ),
        ),
        (Some(_), None) => report.fail(
            "workspaces",
            "SLACK_CLIENT_ID is set but PUBLIC_BASE_URL is not",
            "set PUBLIC_BASE_URL, and register {PUBLIC_BASE_URL}/slack/oauth_redirect as the \
             app's redirect URL",
        ),
        (None, _) => report.off(
            "workspaces",
            "one workspace (SLACK_BOT_TOKEN); set SLACK_CLIENT_ID/SECRET and PUBLIC_BASE_URL to \
             install into more",
        ),
    }
}

async fn check_anthropic(config: &Config, http: &reqwest::Client, report: &mut Report) {
    const CHECK: &str = "Anthropic";
    let Some(key) = &config.anthropic.api_key else {
        report.off(
            CHECK,
            "ANTHROPIC_API_KEY is not set: drafts use the template",
        );
        return;
    };
    let later = "drafts fall back to the template meanwhile; run doctor again later";
    match crate::clients::llm::check_key(http, &config.anthropic.api_url, key).await {
        Ok(()) => report.ok(
            CHECK,
            format!("key accepted (model {})", config.anthropic.model),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "checking the Anthropic key");
            match e {
                ApiError::Unauthorized { status, .. } => report.fail(
                    CHECK,
                    format!("the key was refused ({status})"),
                    "make a new one in the Anthropic console and set ANTHROPIC_API_KEY",
                ),
                ApiError::Rejected { status, .. } => report.fail(
                    CHECK,
                    format!("Anthropic refused the check ({status})"),
                    format!(
                        "check ANTHROPIC_API_URL ({}); the log has Anthropic's answer",
                        config.anthropic.api_url
                    ),
                ),
                ApiError::RateLimited { .. } => {
                    report.warn(CHECK, "Anthropic is rate limiting the key (429)", later)
                }
                ApiError::Unavailable { status, .. } => report.warn(
                    CHECK,
                    format!("Anthropic is having trouble ({status})"),
                    later,
                ),
                ApiError::Timeout { .. } => {
                    report.warn(CHECK, "Anthropic did not answer in time", later)
                }
                ApiError::Transport { .. } | ApiError::Decode { .. } => report.warn(
                    CHECK,
                    format!("could not reach {}", host_of(&config.anthropic.api_url)),
                    later,
                ),
            }
        }
    }
}

/// Google needs the public address for its redirect URI, which must be registered exactly,
/// and a client id and secret its token endpoint accepts.
async fn check_google(config: &Config, http: &reqwest::Client, report: &mut Report) {
    let Some(client) = &config.google.client else {
        report.off(
            "Google",
            "GOOGLE_CLIENT_ID is not set: no Gmail drafts or calendar events",
        );
        return;
    };
    let Some(uri) = config.http.public_url("/oauth/google/callback") else {
        report.fail(
            "Google redirect URI",
            "GOOGLE_CLIENT_ID is set but PUBLIC_BASE_URL is not",
            "set PUBLIC_BASE_URL to the bot's public https address, then register \
             {PUBLIC_BASE_URL}/oauth/google/callback as the client's redirect URI",
        );
        return;
    };
    let loopback = config
        .http
        .public_base_url
        .as_ref()
        .and_then(|u| u.host_str())
        .is_some_and(|h| matches!(h, "localhost" | "127.0.0.1" | "[::1]"));
    if config.http.public_is_https() || loopback {
        report.ok(
            "Google redirect URI",
            format!("{uri} (register exactly this one)"),
        );
    } else {
        report.warn(
            "Google redirect URI",
            format!("{uri} is http: Google accepts http redirect URIs only for localhost"),
            "set PUBLIC_BASE_URL to the bot's https address",
        );
    }
    let check = crate::clients::google::check_client(
        http,
        &config.google.token_url,
        &client.client_id,
        &client.client_secret,
        &uri,
    )
    .await;
    match check {
        ClientCheck::Accepted => report.ok("Google client", "client id and secret accepted"),
        ClientCheck::WrongClient => report.fail(
            "Google client",
            "Google refused the client",
            "the client id or secret is wrong: copy them again from Google Cloud Console → \
             Credentials",
        ),
        ClientCheck::RedirectMismatch => report.fail(
            "Google client",
            "the redirect URI is not registered for this client",
            format!(
                "add exactly {uri} under Authorized redirect URIs (Google Cloud Console → \
                 Credentials → the client)"
            ),
        ),
        ClientCheck::Unknown(why) => report.warn(
            "Google client",
            format!("not checked: {why}"),
            "run doctor again later; Gmail drafts and calendar events may fail meanwhile",
        ),
    }
}

/// HubSpot's and Zoho's OAuth apps need the public address for their redirect URLs.
fn check_crm_apps(config: &Config, report: &mut Report) {
    for (name, set, path) in [
        (
            "HubSpot",
            config.crm.hubspot.is_some(),
            "/oauth/hubspot/callback",
        ),
        ("Zoho", config.crm.zoho.is_some(), "/oauth/zoho/callback"),
    ] {
        let var = name.to_ascii_uppercase();
        match (set, config.http.public_url(path)) {
            (false, _) => report.off(
                name,
                format!("{var}_CLIENT_ID is not set: teams cannot connect {name}"),
            ),
            (true, Some(url)) => report.ok(
                name,
                format!("OAuth app set; its redirect URL is {url} (register exactly this one)"),
            ),
            (true, None) => report.fail(
                name,
                format!("{var}_CLIENT_ID is set but PUBLIC_BASE_URL is not"),
                format!(
                    "set PUBLIC_BASE_URL, and register {{PUBLIC_BASE_URL}}{path} as the app's \
                     redirect URL"
                ),
            ),
        }
    }
}

/// Each team's CRM connection, asked for its deal stages (one read). Problems are warnings:
/// a team's admin fixes them, and one team's CRM does not stop the bot serving the others.
async fn check_crms(config: &Config, store: Result<Option<&Store>, Skipped>, report: &mut Report) {
    let store = match store {
        Ok(Some(store)) => store,
        Ok(None) => {
            report.off("team CRMs", "no team has connected one yet");
            return;
        }
        Err(why) => {
            report.warn(
                "team CRMs",
                format!("not checked: {why}"),
                "fix the database rows above first",
            );
            return;
        }
    };
    match store.crm_connections().await {
        Ok(found) if found.is_empty() => {
            report.off("team CRMs", "no team has connected one yet");
            return;
        }
        Ok(_) => {}
        Err(e) => {
            report.warn(
                "team CRMs",
                format!("the CRM connections could not be read: {e:#}"),
                "check that the database user may read the credentials table",
            );
            return;
        }
    }
    let enc = &config.encryption;
    if enc.key.is_none() && enc.key_file.as_ref().is_none_or(|f| !f.exists()) {
        // Building the services would generate the key file: `doctor` changes nothing.
        report.warn(
            "team CRMs",
            "not checked: there is no encryption key to open their credentials with",
            "see the encryption key rows above",
        );
        return;
    }
    let services = match crate::services::Services::build_on(config.clone(), store.clone()) {
        Ok(services) => services,
        Err(e) => {
            report.warn(
                "team CRMs",
                format!("not checked: {e:#}"),
                "fix the rows above first",
            );
            return;
        }
    };
    for check in crm_report(&services).await {
        let name = format!("CRM of {}", check.team);
        match check.fix {
            None => report.ok(&name, check.detail),
            Some(fix) => report.warn(&name, check.detail, fix),
        }
    }
}

/// One team's CRM: whether it answers, and what its admins do when it does not.
#[derive(Debug)]
pub struct CrmCheck {
    /// The Slack team id (or "CRM connections" when they could not be read).
    pub team: String,
    pub detail: String,
    /// `None` when the CRM answers.
    pub fix: Option<String>,
}

impl CrmCheck {
    pub fn ok(&self) -> bool {
        self.fix.is_none()
    }
}

/// One check per team with a CRM, each asked for its deal stages.
pub async fn crm_report(services: &crate::services::Services) -> Vec<CrmCheck> {
    use crate::clients::crm::Calls;
    let connections = match services.store.crm_connections().await {
        Ok(found) => found,
        Err(e) => {
            return vec![CrmCheck {
                team: "every team".to_owned(),
                detail: format!("the CRM connections could not be read: {e:#}"),
                fix: Some("check the database".to_owned()),
            }];
        }
    };
    let mut checks = Vec::new();
    for (tenant, team, provider, status) in connections {
        let label = crate::domain::provider::Provider::parse(&provider)
            .map(|p| p.label())
            .unwrap_or("a CRM");
        let (detail, fix) = if status != "connected" {
            (
                format!("{label} is {status}"),
                Some("a workspace admin there runs /crono-connect".to_owned()),
            )
        } else {
            match services.crm(tenant, Calls::Interactive).await {
                Ok(Ok(crm)) => match crm.stages().await {
                    Ok(stages) => (
                        format!("{label} answers ({} deal stages)", stages.len()),
                        None,
                    ),
                    Err(e) => {
                        tracing::warn!(%team, error = %e, "a team's CRM did not answer doctor");
                        // The provider's own message stays in the log.
                        let short = e.to_string();
                        let short = short.split(": ").next().unwrap_or_default().to_owned();
                        (short, Some(e.words()))
                    }
                },
                Ok(Err(no)) => (
                    format!("{label} cannot be used"),
                    Some(no.words().to_owned()),
                ),
                Err(e) => (
                    format!("{label} could not be used: {e:#}"),
                    Some("see the log; a workspace admin there can run /crono-connect".to_owned()),
                ),
            }
        };
        checks.push(CrmCheck { team, detail, fix });
    }
    checks
}

/// Fathom: webhooks (with a public address) or polling, and who still lacks a webhook.
async fn check_fathom(
    config: &Config,
    store: Result<Option<&Store>, Skipped>,
    report: &mut Report,
) {
    const CHECK: &str = "Fathom webhooks";
    let Some(url) = config.http.public_url("/webhooks/fathom/") else {
        report.off(
            CHECK,
            format!(
                "PUBLIC_BASE_URL is not set: polling every {} s (set it for webhooks: DMs \
                 within seconds)",
                config.fathom.poll_interval.as_secs()
            ),
        );
        return;
    };
    let connected = match store {
        Ok(None) => Ok((0, 0)),
        Ok(Some(store)) => store
            .fathom_webhook_coverage()
            .await
            .map_err(|e| format!("{e:#}")),
        Err(why) => Err(why.to_owned()),
    };
    match connected {
        Ok((0, _)) => report.ok(
            CHECK,
            format!(
                "delivered to {url}…; nobody has connected Fathom yet (polling every 30 \
                 minutes as the safety net)"
            ),
        ),
        Ok((people, with)) if with >= people => report.ok(
            CHECK,
            format!(
                "delivered to {url}…; {with} of {people} people connected to Fathom have one \
                 (polling every 30 minutes as the safety net)"
            ),
        ),
        Ok((people, with)) => report.warn(
            CHECK,
            format!(
                "{} people connected to Fathom have no webhook yet ({with} of {people} have one)",
                people - with
            ),
            "they get one at the next start (meeting-ready DMs come by polling meanwhile)",
        ),
        Err(why) => report.warn(
            CHECK,
            format!("not checked: {why}"),
            "fix the database rows above first",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_wraps_and_sums_up() {
        let mut report = Report::default();
        report.ok("configuration", "read");
        report.fail(
            "bot token scopes",
            "missing users:read.email",
            "add them under OAuth & Permissions (or re-create the app from `followup-bot \
             manifest`) and reinstall, a sentence long enough to wrap onto a second line",
        );
        report.warn("CRM of T1", "Crono is unavailable", "try later");
        report.off("Anthropic", "not set");
        let table = report.render();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "CHECK             STATUS  DETAIL");
        assert_eq!(lines[1], "configuration     ok      read");
        assert_eq!(
            lines[2],
            "bot token scopes  FAIL    missing users:read.email"
        );
        assert!(
            lines[3].starts_with("                          fix: add them"),
            "{table}"
        );
        assert!(
            lines[4].starts_with("                               "),
            "{table}"
        );
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "{table}");
        assert!(table.contains("CRM of T1         warn    Crono is unavailable\n"));
        assert!(table.contains("fix: try later"));
        assert!(table.contains("Anthropic         off     not set\n"));
        assert!(
            table.ends_with("\n1 required check failed (1 warning)\n"),
            "{table}"
        );
    }

    #[test]
    fn only_failures_fail() {
        let mut report = Report::default();
        report.warn("a", "b", "c");
        report.off("d", "e");
        assert!(
            report
                .render()
                .ends_with("all required checks passed (1 warning)\n")
        );
    }

    #[test]
    fn a_long_word_stays_whole() {
        let url = "https://example.com/".to_owned() + &"x".repeat(60);
        assert_eq!(
            wrap(&format!("see {url} now"), 40),
            ["see", url.as_str(), "now"]
        );
        assert_eq!(wrap("", 40), [""]);
    }
}
