//! What every feature uses: the store, Slack, the clients, the cipher, the job queue, the
//! people directory and the configuration, with the helpers features share (a DM to a
//! person, a person's Fathom key, queueing a job, starting a follow-up). It imports no
//! feature, no dispatch and not startup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use slack_morphism::prelude::SlackMessageContent;
use tracing::warn;

use crate::blocks::{self, Vars};
use crate::clients::crm::Limits;
use crate::clients::crm::crono::Crono;
use crate::clients::crm::hubspot::HubSpot;
use crate::clients::crm::odoo::Odoo;
use crate::clients::crm::zoho::Zoho;
use crate::clients::fathom::Fathom;
use crate::clients::google::Google;
use crate::clients::llm::Llm;
use crate::config::Config;
use crate::crypto::Cipher;
use crate::domain::followup::DRAFT_JOB;
use crate::domain::ids::{JobId, TenantId, UserId};
use crate::domain::person::{Tenant, User};
use crate::domain::provider::Provider;
use crate::jobs::queue::Queue;
use crate::slack::api::SlackApi;
use crate::store::Store;
use crate::store::credentials::{CredentialError, Subject};
use crate::store::followups::NewFollowup;

pub struct Services {
    pub config: Config,
    pub store: Store,
    pub slack: Arc<dyn SlackApi>,
    pub cipher: Cipher,
    pub queue: Queue,
    /// Names this process in job locks and leases.
    pub instance_id: String,
    pub fathom: Fathom,
    /// Tenants and users by Slack ids (created on first contact, cached briefly).
    pub people: Directory,
    /// `None` without `ANTHROPIC_API_KEY`: drafts come from the template.
    pub llm: Option<Arc<dyn Llm>>,
    /// `None` without `GOOGLE_CLIENT_ID`/`SECRET` and `PUBLIC_BASE_URL`.
    pub google: Option<Google>,
    pub crono: Crono,
    pub odoo: Odoo,
    pub hubspot: HubSpot,
    pub zoho: Zoho,
    /// One token refresh at a time per team and CRM.
    pub(crate) crm_refresh: CrmRefreshLocks,
    /// Each workspace's bot token, for `slack` (installs and uninstalls drop it).
    pub workspaces: Arc<slack::Workspaces>,
    /// The CRMs' token buckets, per (provider, team).
    pub crm_limits: Arc<Limits>,
    /// Autocomplete answers, kept briefly per team.
    pub suggestions: cache::SuggestCache,
    /// One token refresh at a time per person.
    pub(crate) google_refresh: RefreshLocks,
}

/// "Delete my data" and the retention purge (`impl Services` there).
pub mod admins;
/// Autocomplete answers, kept briefly per team.
pub mod cache;
/// The team's CRM: its connection and attendee matching (`impl Services` there).
pub mod crm;
/// The follow-up's edit modal, as the buttons of several features save it.
pub mod followups;
/// A person's Google connection (`impl Services` there).
pub mod google;
/// App Home: connections, settings and latest follow-ups (`impl Services` there).
pub mod home;
pub mod lifecycle;
/// The CRM mirror: reads that answer from it, writes copied into it, the sync's status and
/// pause switch (`impl Services` there).
pub mod mirror;
/// The Web API for the current workspace, with its own bot token.
pub mod slack;
/// Each person's Fathom webhook (`impl Services` there).
pub mod webhooks;

/// Per-person locks, so concurrent token refreshes for one person collapse into one.
#[derive(Default)]
pub struct RefreshLocks(Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>);

impl RefreshLocks {
    pub(crate) fn get(&self, user: UserId) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(user).or_default().clone()
    }
}

type TeamLock = Arc<tokio::sync::Mutex<()>>;

/// Per-(team, CRM) locks, so concurrent CRM token refreshes collapse into one.
#[derive(Default)]
pub struct CrmRefreshLocks(Mutex<HashMap<(TenantId, Provider), TeamLock>>);

impl CrmRefreshLocks {
    pub(crate) fn get(&self, tenant: TenantId, provider: Provider) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((tenant, provider)).or_default().clone()
    }
}

/// How long a new follow-up's job waits for its "Drafting…" message before it runs anyway.
const DRAFTING_HOLD: Duration = Duration::from_secs(10);
/// A second ask for the same recording within this long is a double click.
const DOUBLE_CLICK_WINDOW: Duration = Duration::from_secs(120);

impl Services {
    /// Builds every service from the configuration (opening and migrating the database).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = config.database.open().await?;
        Self::build_on(config, store)
    }

    /// Everything on a store already opened (`doctor` opens one without migrating).
    pub fn build_on(config: Config, store: Store) -> anyhow::Result<Self> {
        let client = config
            .slack
            .client()
            .context("setting up the Slack client (TLS roots)")?;
        let cipher = config.encryption.cipher()?;
        let http = crate::clients::http_client();
        let workspaces = Arc::new(match &config.slack.client {
            Some(app) => slack::Workspaces::many(
                client,
                !config.slack.bot_token.expose_secret().is_empty(),
                store.clone(),
                config.encryption.cipher()?,
                slack::Refresher::new(
                    http.clone(),
                    &config.slack.api_url,
                    &app.client_id,
                    &app.client_secret,
                ),
            ),
            None => slack::Workspaces::single(client),
        });
        let slack: Arc<dyn SlackApi> = workspaces.clone();
        Ok(Self {
            fathom: config.fathom.client(&http),
            llm: config.anthropic.client(&http),
            google: config
                .google
                .client(&http, &config.http)
                .context("setting up the Google client")?,
            google_refresh: Default::default(),
            crono: Crono::new(
                http.clone(),
                &config.crm.crono_api_url,
                &config.crm.crono_app_url,
            ),
            odoo: Odoo::new(http.clone()),
            hubspot: config
                .crm
                .hubspot(&http, &config.http)
                .context("setting up the HubSpot client")?,
            zoho: config
                .crm
                .zoho(&http, &config.http)
                .context("setting up the Zoho client")?,
            crm_refresh: Default::default(),
            workspaces,
            crm_limits: Limits::new(config.crm.requests_per_second),
            suggestions: Default::default(),
            people: Directory::default(),
            store,
            slack,
            cipher,
            queue: Queue::default(),
            instance_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            config,
        })
    }

    /// Posts to a person's DM with the bot; returns (channel, ts).
    pub async fn dm(
        &self,
        slack_user: &str,
        content: SlackMessageContent,
    ) -> anyhow::Result<(String, String)> {
        let channel = self.slack.open_dm(slack_user).await?;
        let ts = self.slack.chat_post(&channel, content).await?;
        Ok((channel, ts))
    }

    /// Runs `work` in the Slack workspace of `tenant` (for work that does not come from an
    /// envelope: sidecar callbacks, webhook deliveries).
    pub async fn in_workspace_of<F: std::future::Future>(
        &self,
        tenant: TenantId,
        work: F,
    ) -> F::Output {
        match self.store.tenant_team(tenant).await {
            Ok(Some(team)) => crate::workspace::within(&team, work).await,
            Ok(None) | Err(_) => work.await,
        }
    }

    /// A person's Fathom API key, or why there is none to use.
    pub async fn fathom_key(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> anyhow::Result<Result<SecretString, NoKey>> {
        let found = self
            .store
            .credential(&self.cipher, tenant, Subject::User(user), Provider::Fathom)
            .await;
        Ok(match found {
            Ok(Some(credential)) => Ok(credential.secret),
            Ok(None) => Err(NoKey::NotConnected),
            Err(CredentialError::KeyGone) => Err(NoKey::Unreadable),
            Err(e) => return Err(e.into()),
        })
    }

    /// Queues a job (once per `dedupe_key`) and wakes a worker.
    pub async fn enqueue(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        dedupe_key: Option<&str>,
    ) -> anyhow::Result<Option<JobId>> {
        let id = self
            .store
            .enqueue_job(
                kind,
                payload,
                dedupe_key,
                self.config.jobs.max_attempts,
                None,
            )
            .await?;
        self.queue.notify();
        Ok(id)
    }

    /// Starts drafting the follow-up of one of the person's recordings: the follow-up and its
    /// job in one transaction, then "Drafting…" in their DM. `Err` carries words for the
    /// person when nothing was started. From the picker and the meeting-ready DM alike.
    pub async fn start_followup(
        &self,
        tenant: &Tenant,
        user: &User,
        recording: i64,
    ) -> anyhow::Result<Result<(), String>> {
        let Some(meeting) = self.store.remembered_meeting(user.id, recording).await? else {
            return Ok(Err(
                "I can't find that meeting among yours any more. Type `/followup` to pick it again."
                    .to_owned(),
            ));
        };
        // Durable first: the follow-up, its job and the double-click key in one transaction.
        // Only then "Drafting…"; if this process dies in between, the held job runs when the
        // hold ends and posts the result itself.
        let created = self
            .store
            .create_followup(NewFollowup {
                tenant: tenant.id,
                user: user.id,
                meeting: &meeting,
                job_kind: DRAFT_JOB,
                max_attempts: self.config.jobs.max_attempts,
                hold: DRAFTING_HOLD,
                click_window: DOUBLE_CLICK_WINDOW,
            })
            .await
            .context("creating the follow-up")?;
        let Some(id) = created else {
            return Ok(Err(format!(
                "I started the follow-up for {} a moment ago; it is (or will shortly be) in your DM.",
                blocks::escape(&meeting.display_title())
            )));
        };
        let drafting: SlackMessageContent = blocks::FOLLOWUP_DRAFTING
            .render_as(&Vars::new().set("title", meeting.display_title()))?;
        let released = match self.dm(&user.slack_user_id, drafting).await {
            Ok((channel, ts)) => match self.store.attach_followup_message(&id, &channel, &ts).await
            {
                // Slack took longer than the hold and the job posted the result itself: this
                // "Drafting…" would never change, so it points there instead.
                Ok(false) => {
                    self.retire_drafting(&channel, &ts).await;
                    Ok(())
                }
                other => other.map(drop),
            },
            Err(e) => {
                warn!(error = %e, "could not post Drafting…; the job will post the result");
                self.store.release_followup_job(&id).await
            }
        };
        if let Err(e) = released {
            // The job still runs when its hold ends.
            warn!(error = %e, "could not release the drafting job; it runs after the hold");
        }
        self.queue.notify();
        Ok(Ok(()))
    }
}

impl Services {
    /// Whether a person is a workspace admin or owner, asked of Slack now (never cached:
    /// a demoted admin loses the right at once). Slack failing counts as "no".
    pub async fn is_workspace_admin(&self, slack_user: &str) -> bool {
        match self.slack.user_info(slack_user).await {
            Ok(profile) => profile.is_admin,
            Err(e) => {
                warn!(error = %e, "users.info failed; treating the person as not an admin");
                false
            }
        }
    }

    /// Turns a "Drafting…" message that lost the race to the job's own result message into
    /// a pointer to it, so it does not wait forever.
    pub async fn retire_drafting(&self, channel: &str, ts: &str) {
        let moved = SlackMessageContent::new()
            .with_text("Your follow-up is in the message below.".to_owned());
        if let Err(e) = self.slack.chat_update(channel, ts, moved).await {
            warn!(error = %e, "could not retire a superseded Drafting… message");
        }
    }
}

/// Why a person's key for a service cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoKey {
    NotConnected,
    /// Stored, but sealed with an encryption key the bot no longer has.
    Unreadable,
}

impl NoKey {
    /// What the person does about it, for Fathom.
    pub fn fathom_words(self) -> &'static str {
        match self {
            NoKey::NotConnected => {
                "Connect your Fathom account first: type `/fathom-connect` and paste your API key \
                 (Fathom → Settings → API Access)."
            }
            NoKey::Unreadable => {
                "Your saved Fathom key can no longer be read (the bot's encryption key was \
                 changed). Connect Fathom again with `/fathom-connect`."
            }
        }
    }
}

/// Tenants and users by Slack ids, created on first contact; profiles from `users.info`,
/// refreshed daily; rows cached in memory for a minute (other replicas may change them).
#[derive(Default)]
pub struct Directory {
    cache: Mutex<HashMap<PersonKey, Person>>,
}

/// (Slack team id, Slack user id).
type PersonKey = (String, String);
/// A resolved person and when they were cached.
type Person = (Tenant, User, Instant);

const CACHE_FOR: Duration = Duration::from_secs(60);
const REFRESH_PROFILE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

impl Directory {
    /// Drops a cached person after their row changed.
    pub fn forget(&self, team: &str, user: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&(team.to_owned(), user.to_owned()));
        }
    }

    pub async fn resolve(
        &self,
        store: &Store,
        slack: &dyn SlackApi,
        team: &str,
        user: &str,
    ) -> anyhow::Result<(Tenant, User)> {
        let key = (team.to_owned(), user.to_owned());
        if let Ok(cache) = self.cache.lock()
            && let Some((tenant, user, at)) = cache.get(&key)
            && at.elapsed() < CACHE_FOR
        {
            return Ok((tenant.clone(), user.clone()));
        }
        let tenant = store.ensure_tenant(team).await?;
        let mut row = store.ensure_user(tenant.id, user).await?;
        let stale = row
            .profile_refreshed_at
            .is_none_or(|at| crate::store::now() - at > REFRESH_PROFILE_AFTER);
        if stale {
            match slack.user_info(user).await {
                Ok(profile) => {
                    store.update_profile(row.id, &profile).await?;
                    row.email = profile.email;
                    row.real_name = profile.real_name;
                    row.tz = profile.tz;
                    row.tz_offset_secs = profile.tz_offset_secs;
                    row.profile_refreshed_at = Some(crate::store::now());
                }
                Err(e) => warn!(error = %e, "users.info failed; going on without the profile"),
            }
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, (tenant.clone(), row.clone(), Instant::now()));
        }
        Ok((tenant, row))
    }
}
