//! The one typed configuration, read once at start from the environment (and `.env`).
//!
//! Nothing else in the crate reads environment variables. Every problem found is reported
//! together, each with what to do about it.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::clients::fathom::Fathom;
use crate::clients::google::{Endpoints, Google};
use crate::clients::llm::{Anthropic, Llm};
use crate::crypto::Cipher;
use crate::slack::api::MorphismSlack;
use crate::store::Store;
pub use crate::telemetry::LogFormat;

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

#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Everything the bot is configured with, one section per part it configures.
#[derive(Clone, Debug)]
pub struct Config {
    pub slack: SlackConfig,
    pub database: DatabaseConfig,
    pub encryption: EncryptionConfig,
    pub http: HttpConfig,
    pub anthropic: AnthropicConfig,
    pub fathom: FathomConfig,
    pub google: GoogleConfig,
    pub crm: CrmConfig,
    pub jobs: JobsConfig,
    pub retention: RetentionConfig,
    pub log: LogConfig,
}

#[derive(Clone, Debug)]
pub struct SlackConfig {
    pub app_token: SecretString,
    /// Empty when the app is installed by OAuth only (`client` set, no `SLACK_BOT_TOKEN`).
    pub bot_token: SecretString,
    /// `SLACK_CLIENT_ID`/`SECRET`: installing into many workspaces through the sidecar.
    pub client: Option<OAuthClient>,
    pub authorize_url: String,
    /// How many Socket Mode connections to hold open at once (Slack allows up to 10).
    pub connections: usize,
    /// How often each connection pings Slack; a link silent for two intervals is replaced.
    pub ping_interval: Duration,
    pub api_url: String,
}

#[derive(Clone)]
pub struct DatabaseConfig {
    pub url: String,
}

#[derive(Clone, Debug)]
pub struct EncryptionConfig {
    /// `None` with SQLite: `key_file` is used (created on first start).
    pub key: Option<SecretString>,
    /// Older keys still accepted for decryption while secrets are re-encrypted.
    pub previous: Vec<SecretString>,
    /// Beside the SQLite database, for when `key` is not set.
    pub key_file: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    pub public_base_url: Option<Url>,
    pub limits: crate::server::Limits,
    pub guard: crate::server::Guard,
    /// With it set, `/metrics` answers only this bearer token.
    pub metrics_token: Option<SecretString>,
}

#[derive(Clone, Debug)]
pub struct AnthropicConfig {
    /// `None`: drafts come from the template.
    pub api_key: Option<SecretString>,
    pub model: String,
    pub api_url: String,
    /// The longest a person waits for the AI's draft before the template is used.
    pub draft_budget: Duration,
}

#[derive(Clone, Debug)]
pub struct FathomConfig {
    pub api_url: String,
    /// How often each connected person's Fathom is checked for new recordings.
    pub poll_interval: Duration,
}

#[derive(Clone, Debug)]
pub struct GoogleConfig {
    pub client: Option<OAuthClient>,
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub userinfo_url: String,
    pub gmail_api_url: String,
    pub calendar_api_url: String,
}

#[derive(Clone, Debug)]
pub struct CrmConfig {
    pub crono_api_url: String,
    /// Where Crono's own pages live, for links to the records the bot makes.
    pub crono_app_url: String,
    /// Requests per second to a team's CRM (bursts of twice that).
    pub requests_per_second: u32,
    /// The CRM mirror's sync: how often (zero: never, the mirror stays empty and every
    /// lookup goes to the CRM), how many pages of each object one run reads at most, and how
    /// often a full listing looks for deleted records.
    pub sync_interval: std::time::Duration,
    pub sync_pages_per_run: usize,
    pub sync_sweep_interval: std::time::Duration,
    pub hubspot: Option<OAuthClient>,
    pub hubspot_api_url: String,
    pub hubspot_auth_url: String,
    pub hubspot_token_url: String,
    pub zoho: Option<OAuthClient>,
    pub zoho_accounts_url: String,
    /// The Zoho accounts servers (data centres) a callback's `accounts-server` may name.
    pub zoho_accounts_servers: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct JobsConfig {
    pub workers: usize,
    pub max_attempts: i32,
    /// On shutdown, how long a running job may take to finish before it is released.
    pub shutdown_grace: Duration,
}

/// How long what the bot keeps stays: follow-ups, jobs, delivered envelopes and listed
/// meetings for `days`; the audit log for `audit_days`.
#[derive(Clone, Debug)]
pub struct RetentionConfig {
    pub days: u32,
    pub audit_days: u32,
    /// How often one replica purges what is older.
    pub purge_interval: Duration,
}

impl RetentionConfig {
    fn read(r: &mut Reader) -> Self {
        let days = r.number("RETENTION_DAYS", 90u32, 1, 3650);
        let audit_days = r.number("AUDIT_RETENTION_DAYS", 365u32, 1, 36_500);
        if audit_days < days {
            r.problems.push(format!(
                "AUDIT_RETENTION_DAYS ({audit_days}) must be at least RETENTION_DAYS ({days}): \
                 the audit log is kept longer than what it records"
            ));
        }
        Self {
            days,
            audit_days,
            purge_interval: Duration::from_secs(r.number(
                "RETENTION_PURGE_INTERVAL_SECS",
                3600u64,
                1,
                86_400,
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
    /// `LOG_PII=true`: text from outside (providers' messages, frames) is logged as it is,
    /// for debugging. Off by default: log lines carry ids only.
    pub pii: bool,
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
        let database = DatabaseConfig::read(&mut r);
        let config = Config {
            slack: SlackConfig::read(&mut r),
            encryption: EncryptionConfig::read(&mut r, &database),
            http: HttpConfig::read(&mut r),
            anthropic: AnthropicConfig {
                api_key: r.secret("ANTHROPIC_API_KEY"),
                model: r.string("ANTHROPIC_MODEL", "claude-sonnet-4-5"),
                api_url: r.base_url("ANTHROPIC_API_URL", "https://api.anthropic.com"),
                draft_budget: Duration::from_secs(r.number(
                    "ANTHROPIC_DRAFT_BUDGET_SECS",
                    60u64,
                    5,
                    600,
                )),
            },
            fathom: FathomConfig {
                api_url: r.base_url("FATHOM_API_URL", "https://api.fathom.ai/external/v1"),
                poll_interval: Duration::from_secs(r.number(
                    "FATHOM_POLL_INTERVAL_SECS",
                    300u64,
                    1,
                    86_400,
                )),
            },
            google: GoogleConfig::read(&mut r),
            crm: CrmConfig::read(&mut r),
            jobs: JobsConfig {
                // 0: this process runs no jobs (another replica does, or a test drains them).
                workers: r.number("JOB_WORKERS", 4usize, 0, 64),
                max_attempts: r.number("JOB_MAX_ATTEMPTS", 5i32, 1, 100),
                shutdown_grace: Duration::from_secs(r.number(
                    "JOB_SHUTDOWN_GRACE_SECS",
                    10u64,
                    0,
                    600,
                )),
            },
            retention: RetentionConfig::read(&mut r),
            log: LogConfig::read(&mut r),
            database,
        };
        if r.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(r.problems))
        }
    }

    /// Every secret value configured, for the log-leak test and log redaction checks.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = vec![
            self.slack.app_token.expose_secret().to_owned(),
            self.slack.bot_token.expose_secret().to_owned(),
        ];
        out.extend(
            self.encryption
                .key
                .iter()
                .chain(self.encryption.previous.iter())
                .chain(self.anthropic.api_key.iter())
                .chain(self.http.metrics_token.iter())
                .map(|s| s.expose_secret().to_owned()),
        );
        for client in [
            &self.google.client,
            &self.crm.hubspot,
            &self.crm.zoho,
            &self.slack.client,
        ]
        .into_iter()
        .flatten()
        {
            out.push(client.client_secret.expose_secret().to_owned());
        }
        out.extend(self.database.password());
        out.retain(|s| !s.is_empty());
        out
    }
}

impl SlackConfig {
    fn read(r: &mut Reader) -> Self {
        Self {
            app_token: r.token(
                "SLACK_APP_TOKEN",
                "xapp-",
                "create an app-level token with the connections:write scope \
                 (Slack app settings → Basic Information → App-Level Tokens)",
            ),
            client: None,
            authorize_url: String::new(),
            bot_token: SecretString::from(String::new()),
            connections: r.number("SLACK_SOCKET_CONNECTIONS", 2usize, 1, 10),
            ping_interval: Duration::from_secs(r.number("SLACK_PING_INTERVAL_SECS", 5u64, 1, 300)),
            api_url: r.base_url("SLACK_API_URL", "https://slack.com/api"),
        }
        .with_install(r)
    }

    /// The bot token, and the OAuth client that installs the app into more workspaces.
    fn with_install(mut self, r: &mut Reader) -> Self {
        self.client = r.oauth(
            "SLACK",
            "Slack app settings → Basic Information → App Credentials",
        );
        self.authorize_url = r.base_url(
            "SLACK_AUTHORIZE_URL",
            "https://slack.com/oauth/v2/authorize",
        );
        // With the install flow on, SLACK_BOT_TOKEN is optional.
        if self.client.is_none() || r.source.get("SLACK_BOT_TOKEN").is_some() {
            self.bot_token = r.token(
                "SLACK_BOT_TOKEN",
                "xoxb-",
                "install the app to your workspace and copy the Bot User OAuth Token \
                 (Slack app settings → OAuth & Permissions)",
            );
        }
        self
    }

    /// Whether the app is installed into workspaces through the sidecar.
    pub fn many_workspaces(&self) -> bool {
        self.client.is_some()
    }

    /// The Web API client with both tokens.
    pub fn client(&self) -> std::io::Result<MorphismSlack> {
        MorphismSlack::new(&self.api_url, &self.bot_token, &self.app_token)
    }
}

impl DatabaseConfig {
    fn read(r: &mut Reader) -> Self {
        let url = r.string("DATABASE_URL", DEFAULT_DATABASE_URL);
        if !crate::store::is_postgres_url(&url) && !url.starts_with("sqlite:") {
            r.problems.push(format!(
                "DATABASE_URL must start with sqlite: or postgres://, e.g. {DEFAULT_DATABASE_URL}"
            ));
        }
        Self { url }
    }

    pub fn is_postgres(&self) -> bool {
        crate::store::is_postgres_url(&self.url)
    }

    /// Opens the database and applies its migrations.
    pub async fn open(&self) -> anyhow::Result<Store> {
        Store::open(&self.url).await
    }

    /// The folder holding the SQLite file (and the generated key file), if SQLite is used.
    pub fn sqlite_dir(&self) -> Option<PathBuf> {
        if self.is_postgres() {
            return None;
        }
        let path = self
            .url
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

    /// The password inside a PostgreSQL URL, if any.
    fn password(&self) -> Option<String> {
        Url::parse(&self.url).ok()?.password().map(|p| {
            url::form_urlencoded::parse(p.as_bytes())
                .map(|(k, _)| k)
                .collect()
        })
    }

    /// The URL with its password replaced, for logs and `doctor`.
    pub fn redacted_url(&self) -> String {
        match Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("REDACTED"));
                url.to_string()
            }
            _ => self.url.clone(),
        }
    }
}

/// Never prints the database password (the URL may carry one).
impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.redacted_url())
            .finish()
    }
}

impl EncryptionConfig {
    fn read(r: &mut Reader, database: &DatabaseConfig) -> Self {
        let key = r.secret("ENCRYPTION_KEY");
        match &key {
            Some(key) => {
                if let Err(e) = crate::crypto::parse_key(key.expose_secret()) {
                    r.problems.push(format!(
                        "ENCRYPTION_KEY {e}; run `followup-bot keygen` to make one"
                    ));
                }
            }
            None if database.is_postgres() => r.problems.push(
                "ENCRYPTION_KEY is required with PostgreSQL (every replica must share it): \
                 run `followup-bot keygen` and set the value it prints"
                    .to_owned(),
            ),
            None => {}
        }
        let previous: Vec<SecretString> = r
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
        if previous
            .iter()
            .any(|k| crate::crypto::parse_key(k.expose_secret()).is_err())
        {
            r.problems.push(
                "ENCRYPTION_KEYS_PREVIOUS must be a comma-separated list of keys made by \
                 `followup-bot keygen`"
                    .to_owned(),
            );
        }
        Self {
            key,
            previous,
            key_file: database.sqlite_dir().map(|d| d.join("encryption.key")),
        }
    }

    /// Opens the cipher: `ENCRYPTION_KEY`, or with SQLite the key file beside the database.
    pub fn cipher(&self) -> anyhow::Result<Cipher> {
        match (&self.key, &self.key_file) {
            (Some(key), _) => {
                Cipher::new(key, &self.previous).map_err(|e| anyhow::anyhow!("ENCRYPTION_KEY {e}"))
            }
            (None, Some(path)) => Cipher::from_key_file(path),
            (None, None) => {
                anyhow::bail!("ENCRYPTION_KEY is required unless the database is a SQLite file")
            }
        }
    }
}

impl HttpConfig {
    fn read(r: &mut Reader) -> Self {
        let raw = r.string("HTTP_ADDR", "0.0.0.0:8080");
        let addr = raw.parse().unwrap_or_else(|_| {
            r.problems.push(format!(
                "HTTP_ADDR must be an address and port such as 0.0.0.0:8080, got {raw:?}"
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
        let limits = crate::server::Limits {
            header_timeout: Duration::from_secs(r.number(
                "HTTP_HEADER_TIMEOUT_SECS",
                10u64,
                1,
                120,
            )),
            request_timeout: Duration::from_secs(r.number(
                "HTTP_REQUEST_TIMEOUT_SECS",
                30u64,
                1,
                300,
            )),
            max_connections: r.number("HTTP_MAX_CONNECTIONS", 256usize, 1, 10_000),
        };
        let client_ip_header = r.source.get("HTTP_CLIENT_IP_HEADER").and_then(|raw| {
            match axum::http::HeaderName::from_bytes(raw.trim().as_bytes()) {
                Ok(name) => Some(name),
                Err(_) => {
                    r.problems.push(format!(
                        "HTTP_CLIENT_IP_HEADER must be a header name such as Fly-Client-IP, \
                         got {raw:?}"
                    ));
                    None
                }
            }
        });
        let guard = crate::server::Guard {
            per_minute: r.number("HTTP_RATE_LIMIT_PER_MINUTE", 60u32, 1, 100_000),
            webhooks_per_minute: r.number(
                "HTTP_WEBHOOK_RATE_LIMIT_PER_MINUTE",
                1200u32,
                1,
                1_000_000,
            ),
            client_ip_header,
            max_body: r.number(
                "HTTP_MAX_BODY_BYTES",
                64 * 1024usize,
                1024,
                16 * 1024 * 1024,
            ),
        };
        let metrics_token = r
            .source
            .get("METRICS_TOKEN")
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            r.problems.push(
                "METRICS_TOKEN must be at least 16 characters (e.g. `followup-bot keygen`)"
                    .to_owned(),
            );
        }
        Self {
            addr,
            public_base_url,
            limits,
            guard,
            metrics_token: metrics_token.map(SecretString::from),
        }
    }
}

impl HttpConfig {
    /// `{PUBLIC_BASE_URL}{path}` (`path` starts with `/`), when the bot has a public address.
    pub fn public_url(&self, path: &str) -> Option<String> {
        self.public_base_url
            .as_ref()
            .map(|base| format!("{}{path}", base.as_str().trim_end_matches('/')))
    }

    /// Whether the public address is https (cookies are then `Secure`).
    pub fn public_is_https(&self) -> bool {
        self.public_base_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https")
    }
}

impl AnthropicConfig {
    /// The model client, or `None` without a key.
    pub fn client(&self, http: &reqwest::Client) -> Option<Arc<dyn Llm>> {
        let key = self.api_key.clone()?;
        Some(Arc::new(Anthropic::new(
            http.clone(),
            &self.api_url,
            key,
            &self.model,
        )))
    }
}

impl FathomConfig {
    pub fn client(&self, http: &reqwest::Client) -> Fathom {
        Fathom::new(http.clone(), &self.api_url)
    }
}

impl GoogleConfig {
    fn read(r: &mut Reader) -> Self {
        Self {
            client: r.oauth("GOOGLE", "Google Cloud console → Credentials"),
            auth_url: r.base_url(
                "GOOGLE_AUTH_URL",
                "https://accounts.google.com/o/oauth2/v2/auth",
            ),
            token_url: r.base_url("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"),
            revoke_url: r.base_url("GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke"),
            userinfo_url: r.base_url(
                "GOOGLE_USERINFO_URL",
                "https://openidconnect.googleapis.com/v1/userinfo",
            ),
            gmail_api_url: r.base_url("GMAIL_API_URL", "https://gmail.googleapis.com"),
            calendar_api_url: r.base_url(
                "GOOGLE_CALENDAR_API_URL",
                "https://www.googleapis.com/calendar/v3",
            ),
        }
    }
}

impl GoogleConfig {
    /// The Google client, when `GOOGLE_CLIENT_ID`/`SECRET` and `PUBLIC_BASE_URL` are set
    /// (the redirect URL is `{PUBLIC_BASE_URL}/oauth/google/callback`).
    pub fn client(
        &self,
        http: &reqwest::Client,
        web: &HttpConfig,
    ) -> anyhow::Result<Option<Google>> {
        let (Some(client), Some(redirect)) =
            (&self.client, web.public_url("/oauth/google/callback"))
        else {
            return Ok(None);
        };
        Google::new(
            http.clone(),
            &client.client_id,
            &client.client_secret,
            &redirect,
            Endpoints {
                auth_url: self.auth_url.clone(),
                token_url: self.token_url.clone(),
                revoke_url: self.revoke_url.clone(),
                userinfo_url: self.userinfo_url.clone(),
                gmail_api_url: self.gmail_api_url.clone(),
                calendar_api_url: self.calendar_api_url.clone(),
            },
        )
        .map(Some)
    }
}

/// Zoho's data centres' accounts servers.
const ZOHO_DATA_CENTRES: &str = "https://accounts.zoho.com,https://accounts.zoho.eu,\
    https://accounts.zoho.in,https://accounts.zoho.com.au,https://accounts.zoho.jp,\
    https://accounts.zoho.com.cn,https://accounts.zoho.sa,https://accounts.zohocloud.ca,\
    https://accounts.zoho.uk";

impl CrmConfig {
    /// HubSpot, with its OAuth app when `HUBSPOT_CLIENT_ID`/`SECRET` and `PUBLIC_BASE_URL`
    /// are set (the redirect URL is `{PUBLIC_BASE_URL}/oauth/hubspot/callback`).
    pub fn hubspot(
        &self,
        http: &reqwest::Client,
        web: &HttpConfig,
    ) -> anyhow::Result<crate::clients::crm::hubspot::HubSpot> {
        use crate::clients::crm::{hubspot, oauth};
        let app = match (&self.hubspot, web.public_url("/oauth/hubspot/callback")) {
            (Some(client), Some(redirect)) => Some(oauth::OAuthApp::new(
                "HubSpot",
                http.clone(),
                oauth::AppSettings {
                    client_id: &client.client_id,
                    client_secret: &client.client_secret,
                    auth_url: &self.hubspot_auth_url,
                    token_url: &self.hubspot_token_url,
                    redirect_url: &redirect,
                    scopes: &hubspot::SCOPES,
                    auth_params: &[],
                },
            )?),
            _ => None,
        };
        Ok(hubspot::HubSpot::new(
            http.clone(),
            &self.hubspot_api_url,
            app,
        ))
    }

    /// Zoho CRM, with its OAuth app when `ZOHO_CLIENT_ID`/`SECRET` and `PUBLIC_BASE_URL` are
    /// set (the redirect URL is `{PUBLIC_BASE_URL}/oauth/zoho/callback`).
    pub fn zoho(
        &self,
        http: &reqwest::Client,
        web: &HttpConfig,
    ) -> anyhow::Result<crate::clients::crm::zoho::Zoho> {
        use crate::clients::crm::{oauth, zoho};
        let app = match (&self.zoho, web.public_url("/oauth/zoho/callback")) {
            (Some(client), Some(redirect)) => Some(oauth::OAuthApp::new(
                "Zoho CRM",
                http.clone(),
                oauth::AppSettings {
                    client_id: &client.client_id,
                    client_secret: &client.client_secret,
                    auth_url: &format!("{}/oauth/v2/auth", self.zoho_accounts_url),
                    token_url: &format!("{}/oauth/v2/token", self.zoho_accounts_url),
                    redirect_url: &redirect,
                    scopes: &zoho::SCOPES,
                    auth_params: &[("access_type", "offline"), ("prompt", "consent")],
                },
            )?),
            _ => None,
        };
        let mut servers = self.zoho_accounts_servers.clone();
        servers.push(self.zoho_accounts_url.clone());
        Ok(zoho::Zoho::new(http.clone(), app, servers))
    }

    fn read(r: &mut Reader) -> Self {
        Self {
            crono_api_url: r.base_url("CRONO_API_URL", "https://ext.crono.one"),
            crono_app_url: r.base_url("CRONO_APP_URL", "https://app.crono.one"),
            requests_per_second: r.number("CRM_REQUESTS_PER_SECOND", 5, 1, 11),
            sync_interval: Duration::from_secs(r.number(
                "CRM_SYNC_INTERVAL_SECS",
                600u64,
                0,
                86_400,
            )),
            sync_pages_per_run: r.number("CRM_SYNC_PAGES_PER_RUN", 50usize, 1, 10_000),
            sync_sweep_interval: Duration::from_secs(r.number(
                "CRM_SYNC_SWEEP_INTERVAL_SECS",
                86_400u64,
                0,
                604_800,
            )),
            hubspot: r.oauth("HUBSPOT", "your HubSpot developer app → Auth"),
            hubspot_api_url: r.base_url("HUBSPOT_API_URL", "https://api.hubapi.com"),
            hubspot_auth_url: r.base_url(
                "HUBSPOT_AUTH_URL",
                "https://app.hubspot.com/oauth/authorize",
            ),
            hubspot_token_url: r
                .base_url("HUBSPOT_TOKEN_URL", "https://api.hubapi.com/oauth/v3/token"),
            zoho: r.oauth("ZOHO", "Zoho API console"),
            zoho_accounts_url: r.base_url("ZOHO_ACCOUNTS_URL", "https://accounts.zoho.com"),
            zoho_accounts_servers: r
                .string("ZOHO_ACCOUNTS_SERVERS", ZOHO_DATA_CENTRES)
                .split(',')
                .map(|s| s.trim().trim_end_matches('/').to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }
}

impl LogConfig {
    fn read(r: &mut Reader) -> Self {
        let format = match r.string("LOG_FORMAT", "pretty").as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                r.problems
                    .push(format!("LOG_FORMAT must be pretty or json, got {other:?}"));
                LogFormat::Pretty
            }
        };
        let pii = match r.string("LOG_PII", "false").to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" | "" => false,
            other => {
                r.problems
                    .push(format!("LOG_PII must be true or false, got {other:?}"));
                false
            }
        };
        Self {
            format,
            filter: r.string("RUST_LOG", "info,sqlx=warn"),
            pii,
        }
    }

    /// Installs the process's log subscriber.
    pub fn init(&self) {
        crate::telemetry::allow_pii(self.pii);
        crate::telemetry::init_logs(self.format, &self.filter);
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
        assert_eq!(config.database.url, DEFAULT_DATABASE_URL);
        assert_eq!(config.slack.api_url, "https://slack.com/api");
        assert_eq!(config.slack.connections, 2);
        assert_eq!(config.database.sqlite_dir(), Some(PathBuf::from("data")));
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
    fn retention_defaults_and_the_audit_log_outlives_what_it_records() {
        let config = Config::load(&Source::from_pairs(base())).expect("valid");
        assert_eq!(config.retention.days, 90);
        assert_eq!(config.retention.audit_days, 365);
        let mut pairs = base();
        pairs.push(("RETENTION_DAYS", "400"));
        let text = Config::load(&Source::from_pairs(pairs))
            .unwrap_err()
            .to_string();
        assert!(text.contains("AUDIT_RETENTION_DAYS (365)"), "{text}");
        let mut pairs = base();
        pairs.push(("RETENTION_DAYS", "0"));
        assert!(Config::load(&Source::from_pairs(pairs)).is_err());
    }

    #[test]
    fn base_urls_lose_their_trailing_slash() {
        let mut pairs = base();
        pairs.push(("SLACK_API_URL", "http://127.0.0.1:9999/api/"));
        let config = Config::load(&Source::from_pairs(pairs)).unwrap();
        assert_eq!(config.slack.api_url, "http://127.0.0.1:9999/api");
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

    #[test]
    fn debug_never_shows_the_database_password() {
        let mut pairs = base();
        pairs.push((
            "DATABASE_URL",
            "postgres://bot:hunter2secret@db.internal:5432/bot",
        ));
        pairs.push((
            "ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ));
        let config = Config::load(&Source::from_pairs(pairs)).expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2secret"), "{debug}");
        assert!(debug.contains("db.internal"), "{debug}");
        assert!(config.secret_values().contains(&"hunter2secret".to_owned()));
    }
}
