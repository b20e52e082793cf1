//! The one typed configuration, read once at start from the environment (and `.env`).
//!
//! Nothing else in the crate reads environment variables. Every problem found is reported
//! together, each with what to do about it.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/bot.db?mode=rwc";

/// Where the values come from: the process environment merged over `.env`, or a map in tests.
pub struct Source {
    vars: HashMap<String, String>,
}

impl Source {
    /// Process environment over `.env` (the environment wins). `.env` is optional.
    pub fn from_env_and_dotenv() -> Self {
        let mut vars = HashMap::new();
        if let Ok(iter) = dotenvy::dotenv_iter() {
            for (key, value) in iter.flatten() {
                vars.insert(key, value);
            }
        }
        for (key, value) in std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        {
            vars.insert(key, value);
        }
        Self { vars }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The base URLs of every external service; tests point them at local fakes.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub slack_api: String,
    pub fathom_api: String,
    pub anthropic_api: String,
    pub google_auth: String,
    pub google_token: String,
    pub google_revoke: String,
    pub google_userinfo: String,
    pub gmail_api: String,
    pub google_calendar_api: String,
    pub crono_api: String,
    pub hubspot_api: String,
    pub hubspot_auth: String,
    pub hubspot_token: String,
    pub zoho_accounts: String,
}

#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: SecretString,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub slack_app_token: SecretString,
    pub slack_bot_token: SecretString,
    /// How many Socket Mode connections to hold open at once (Slack allows up to 10).
    pub slack_connections: usize,
    /// How often each connection pings Slack; a link silent for two intervals is replaced.
    pub slack_ping_interval: Duration,
    pub database_url: String,
    /// `None` with SQLite: a key file beside the database is used (created on first start).
    pub encryption_key: Option<SecretString>,
    /// Older keys still accepted for decryption while secrets are re-encrypted.
    pub encryption_keys_previous: Vec<SecretString>,
    pub http_addr: SocketAddr,
    pub public_base_url: Option<Url>,
    pub anthropic_api_key: Option<SecretString>,
    pub anthropic_model: String,
    pub google: Option<OAuthClient>,
    pub hubspot: Option<OAuthClient>,
    pub zoho: Option<OAuthClient>,
    pub fathom_poll_interval: Duration,
    pub job_workers: usize,
    pub job_max_attempts: i32,
    /// On shutdown, how long a running job may take to finish before it is released.
    pub job_shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub rust_log: String,
    pub endpoints: Endpoints,
}

/// Every problem found in the configuration, each with the fix.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the configuration has {} problem(s) (see .env.example):",
            self.0.len()
        )?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

struct Reader<'a> {
    source: &'a Source,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn secret(&mut self, name: &str) -> Option<SecretString> {
        self.source
            .get(name)
            .map(|v| SecretString::from(v.to_owned()))
    }

    fn token(&mut self, name: &str, prefix: &str, how: &str) -> SecretString {
        match self.source.get(name) {
            None => {
                self.problems.push(format!(
                    "{name} is missing: {how} (it starts with {prefix})"
                ));
                SecretString::from(String::new())
            }
            Some(v) if !v.starts_with(prefix) => {
                self.problems
                    .push(format!("{name} must start with {prefix}: {how}"));
                SecretString::from(String::new())
            }
            Some(v) => SecretString::from(v.to_owned()),
        }
    }

    fn string(&mut self, name: &str, default: &str) -> String {
        self.source.get(name).unwrap_or(default).to_owned()
    }

    fn base_url(&mut self, name: &str, default: &str) -> String {
        let raw = self.source.get(name).unwrap_or(default);
        match Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                raw.trim_end_matches('/').to_owned()
            }
            _ => {
                self.problems.push(format!(
                    "{name} must be an http(s) URL such as {default}, got {raw:?}"
                ));
                default.to_owned()
            }
        }
    }

    fn number<T: std::str::FromStr + Copy + PartialOrd + fmt::Display>(
        &mut self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        match self.source.get(name) {
            None => default,
            Some(raw) => match raw.parse::<T>() {
                Ok(v) if v >= min && v <= max => v,
                _ => {
                    self.problems.push(format!(
                        "{name} must be a whole number from {min} to {max}, got {raw:?}"
                    ));
                    default
                }
            },
        }
    }

    fn oauth(&mut self, prefix: &str, console: &str) -> Option<OAuthClient> {
        let id_name = format!("{prefix}_CLIENT_ID");
        let secret_name = format!("{prefix}_CLIENT_SECRET");
        match (self.source.get(&id_name), self.source.get(&secret_name)) {
            (Some(id), Some(secret)) => Some(OAuthClient {
                client_id: id.to_owned(),
                client_secret: SecretString::from(secret.to_owned()),
            }),
            (None, None) => None,
            _ => {
                self.problems.push(format!(
                    "{id_name} and {secret_name} go together: set both (from {console}) or neither"
                ));
                None
            }
        }
    }
}

impl Config {
    /// Reads and checks everything; on failure returns every problem at once.
    pub fn load(source: &Source) -> Result<Self, ConfigErrors> {
        let mut r = Reader {
            source,
            problems: Vec::new(),
        };
        let slack_app_token = r.token(
            "SLACK_APP_TOKEN",
            "xapp-",
            "create an app-level token with the connections:write scope \
             (Slack app settings → Basic Information → App-Level Tokens)",
        );
        let slack_bot_token = r.token(
            "SLACK_BOT_TOKEN",
            "xoxb-",
            "install the app to your workspace and copy the Bot User OAuth Token \
             (Slack app settings → OAuth & Permissions)",
        );
        let slack_connections = r.number("SLACK_SOCKET_CONNECTIONS", 2usize, 1, 10);
        let ping_secs = r.number("SLACK_PING_INTERVAL_SECS", 5u64, 1, 300);

        let database_url = r.string("DATABASE_URL", DEFAULT_DATABASE_URL);
        let is_postgres =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if !is_postgres && !database_url.starts_with("sqlite:") {
            r.problems.push(format!(
                "DATABASE_URL must start with sqlite: or postgres://, e.g. {DEFAULT_DATABASE_URL}"
            ));
        }

        let encryption_key = r.secret("ENCRYPTION_KEY");
        match &encryption_key {
            Some(key) => {
                if let Err(e) = crate::crypto::parse_key(key.expose_secret()) {
                    r.problems.push(format!(
                        "ENCRYPTION_KEY {e}; run `followup-bot keygen` to make one"
                    ));
                }
            }
            None if is_postgres => r.problems.push(
                "ENCRYPTION_KEY is required with PostgreSQL (every replica must share it): \
                 run `followup-bot keygen` and set the value it prints"
                    .to_owned(),
            ),
            None => {}
        }
        let encryption_keys_previous: Vec<SecretString> = r
            .source
            .get("ENCRYPTION_KEYS_PREVIOUS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::from(s.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        for key in &encryption_keys_previous {
            if crate::crypto::parse_key(key.expose_secret()).is_err() {
                r.problems.push(
                    "ENCRYPTION_KEYS_PREVIOUS must be a comma-separated list of keys made by \
                     `followup-bot keygen`"
                        .to_owned(),
                );
                break;
            }
        }

        let http_addr_raw = r.string("HTTP_ADDR", "0.0.0.0:8080");
        let http_addr = http_addr_raw.parse().unwrap_or_else(|_| {
            r.problems.push(format!(
                "HTTP_ADDR must be an address and port such as 0.0.0.0:8080, got {http_addr_raw:?}"
            ));
            SocketAddr::from(([0, 0, 0, 0], 8080))
        });
        let public_base_url = r.source.get("PUBLIC_BASE_URL").and_then(|raw| {
            match Url::parse(raw.trim_end_matches('/')) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
                _ => {
                    r.problems.push(format!(
                        "PUBLIC_BASE_URL must be the public http(s) address of this bot, \
                         e.g. https://followup-bot.fly.dev, got {raw:?}"
                    ));
                    None
                }
            }
        });

        let log_format = match r.string("LOG_FORMAT", "pretty").as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                r.problems
                    .push(format!("LOG_FORMAT must be pretty or json, got {other:?}"));
                LogFormat::Pretty
            }
        };

        let endpoints = Endpoints {
            slack_api: r.base_url("SLACK_API_URL", "https://slack.com/api"),
            fathom_api: r.base_url("FATHOM_API_URL", "https://api.fathom.ai/external/v1"),
            anthropic_api: r.base_url("ANTHROPIC_API_URL", "https://api.anthropic.com"),
            google_auth: r.base_url(
                "GOOGLE_AUTH_URL",
                "https://accounts.google.com/o/oauth2/v2/auth",
            ),
            google_token: r.base_url("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"),
            google_revoke: r.base_url("GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke"),
            google_userinfo: r.base_url(
                "GOOGLE_USERINFO_URL",
                "https://openidconnect.googleapis.com/v1/userinfo",
            ),
            gmail_api: r.base_url("GMAIL_API_URL", "https://gmail.googleapis.com"),
            google_calendar_api: r.base_url(
                "GOOGLE_CALENDAR_API_URL",
                "https://www.googleapis.com/calendar/v3",
            ),
            crono_api: r.base_url("CRONO_API_URL", "https://ext.crono.one"),
            hubspot_api: r.base_url("HUBSPOT_API_URL", "https://api.hubapi.com"),
            hubspot_auth: r.base_url(
                "HUBSPOT_AUTH_URL",
                "https://app.hubspot.com/oauth/authorize",
            ),
            hubspot_token: r.base_url("HUBSPOT_TOKEN_URL", "https://api.hubapi.com/oauth/v3/token"),
            zoho_accounts: r.base_url("ZOHO_ACCOUNTS_URL", "https://accounts.zoho.com"),
        };

        let config = Config {
            slack_app_token,
            slack_bot_token,
            slack_connections,
            slack_ping_interval: Duration::from_secs(ping_secs),
            database_url,
            encryption_key,
            encryption_keys_previous,
            http_addr,
            public_base_url,
            anthropic_api_key: r.secret("ANTHROPIC_API_KEY"),
            anthropic_model: r.string("ANTHROPIC_MODEL", "claude-sonnet-4-5"),
            google: r.oauth("GOOGLE", "Google Cloud console → Credentials"),
            hubspot: r.oauth("HUBSPOT", "your HubSpot developer app → Auth"),
            zoho: r.oauth("ZOHO", "Zoho API console"),
            fathom_poll_interval: Duration::from_secs(r.number(
                "FATHOM_POLL_INTERVAL_SECS",
                300u64,
                1,
                86_400,
            )),
            job_workers: r.number("JOB_WORKERS", 4usize, 1, 64),
            job_max_attempts: r.number("JOB_MAX_ATTEMPTS", 5i32, 1, 100),
            job_shutdown_grace: Duration::from_secs(r.number(
                "JOB_SHUTDOWN_GRACE_SECS",
                10u64,
                0,
                600,
            )),
            log_format,
            rust_log: r.string("RUST_LOG", "info,sqlx=warn"),
            endpoints,
        };
        if r.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(r.problems))
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// The folder holding the SQLite file (and the generated key file), if SQLite is used.
    pub fn sqlite_dir(&self) -> Option<PathBuf> {
        if self.is_postgres() {
            return None;
        }
        let path = self
            .database_url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        Some(
            PathBuf::from(path)
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default(),
        )
    }

    /// Every secret value configured, for the log-leak test and log redaction checks.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = vec![
            self.slack_app_token.expose_secret().to_owned(),
            self.slack_bot_token.expose_secret().to_owned(),
        ];
        out.extend(
            self.encryption_key
                .iter()
                .chain(self.encryption_keys_previous.iter())
                .chain(self.anthropic_api_key.iter())
                .map(|s| s.expose_secret().to_owned()),
        );
        for client in [&self.google, &self.hubspot, &self.zoho]
            .into_iter()
            .flatten()
        {
            out.push(client.client_secret.expose_secret().to_owned());
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("SLACK_APP_TOKEN", "xapp-1-A1-1-abc"),
            ("SLACK_BOT_TOKEN", "xoxb-1-2-abc"),
        ]
    }

    #[test]
    fn two_tokens_are_enough() {
        let config = Config::load(&Source::from_pairs(base())).expect("valid");
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(config.endpoints.slack_api, "https://slack.com/api");
        assert_eq!(config.slack_connections, 2);
        assert_eq!(config.sqlite_dir(), Some(PathBuf::from("data")));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::load(&Source::from_pairs([
            ("SLACK_BOT_TOKEN", "xoxp-user-token"),
            ("SLACK_API_URL", "not a url"),
            ("DATABASE_URL", "postgres://localhost/bot"),
            ("FATHOM_POLL_INTERVAL_SECS", "soon"),
            ("GOOGLE_CLIENT_ID", "abc"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "SLACK_APP_TOKEN is missing",
            "connections:write",
            "SLACK_BOT_TOKEN must start with xoxb-",
            "SLACK_API_URL",
            "ENCRYPTION_KEY is required with PostgreSQL",
            "FATHOM_POLL_INTERVAL_SECS",
            "GOOGLE_CLIENT_SECRET",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        assert_eq!(err.0.len(), 6, "{text}");
    }

    #[test]
    fn base_urls_lose_their_trailing_slash() {
        let mut pairs = base();
        pairs.push(("SLACK_API_URL", "http://127.0.0.1:9999/api/"));
        let config = Config::load(&Source::from_pairs(pairs)).unwrap();
        assert_eq!(config.endpoints.slack_api, "http://127.0.0.1:9999/api");
    }

    #[test]
    fn a_bad_encryption_key_is_named() {
        let mut pairs = base();
        pairs.push(("ENCRYPTION_KEY", "c2hvcnQ="));
        let err = Config::load(&Source::from_pairs(pairs)).unwrap_err();
        assert!(err.to_string().contains("ENCRYPTION_KEY"), "{err}");
        assert!(
            !err.to_string().contains("c2hvcnQ="),
            "the value is not echoed"
        );
    }
}
