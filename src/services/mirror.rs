//! The CRM mirror as the features read it: autocomplete and attendee matching answered from
//! the database once the mirror of that object has been backfilled (live from the CRM
//! before), what the bot wrote to the CRM copied in after the CRM took it, and the sync's
//! status and pause switch for admins. The sync itself is the CRM feature's task
//! (`features/crm/mirror.rs`).

use chrono::{DateTime, Utc};
use tracing::warn;

use super::Services;
use crate::clients::crm::{Crm, CrmError};
use crate::domain::crm::{Account, Contact, Deal, DealChange, MirrorObject, Record};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::provider::Provider;
use crate::store::mirror::{MirrorCounts, SyncMode, SyncRun};

/// What admins see of the team's CRM sync (App Home). Every field is the bot's own data:
/// counts, times and machine codes, never the CRM's text.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncStatus {
    /// The CRM connected now (`None`: none, so nothing syncs).
    pub provider: Option<Provider>,
    pub paused: bool,
    /// Who last flipped the switch, and when.
    pub paused_by: Option<UserId>,
    pub paused_at: Option<DateTime<Utc>>,
    pub counts: MirrorCounts,
    pub objects: Vec<ObjectStatus>,
}

/// One object's sync (accounts, contacts or deals).
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectStatus {
    pub object: MirrorObject,
    /// The backfill has ended: lookups are answered from the mirror.
    pub ready: bool,
    /// The listing under way or next (`backfill`, `delta`, `sweep`).
    pub mode: SyncMode,
    pub last_run: Option<SyncRun>,
    /// The latest run that failed, and how (`rate_limited`, `refused`, …).
    pub last_error: Option<SyncRun>,
}

impl Services {
    /// The team's CRM sync, for admins. The other engineer's App Home wires this in, shown to
    /// bot admins only: this function checks no one's rights.
    pub async fn crm_sync_status(&self, tenant: TenantId) -> anyhow::Result<SyncStatus> {
        let provider = self.store.team_crm(tenant).await?;
        let pause = self.store.crm_sync_pause(tenant).await?;
        let mut status = SyncStatus {
            provider,
            paused: pause.as_ref().is_some_and(|p| p.paused),
            paused_by: pause.as_ref().and_then(|p| p.changed_by),
            paused_at: pause.as_ref().map(|p| p.changed_at),
            counts: MirrorCounts::default(),
            objects: Vec::new(),
        };
        let Some(provider) = provider else {
            return Ok(status);
        };
        status.counts = self.store.mirror_counts(tenant, provider).await?;
        let runs = self.store.sync_runs(tenant, provider, 200).await?;
        for object in MirrorObject::ALL {
            let cursor = self.store.sync_cursor(tenant, provider, object).await?;
            let mine = || runs.iter().filter(|r| r.object == object.as_str());
            status.objects.push(ObjectStatus {
                object,
                ready: cursor.since.is_some(),
                mode: cursor.mode,
                last_run: mine().next().cloned(),
                last_error: mine().find(|r| r.outcome == "error").cloned(),
            });
        }
        Ok(status)
    }

    /// Pauses (or resumes) every sync of the team's CRM at once, audited. The caller must
    /// have checked that `by_user` is a bot admin: this function does not (the admin gating
    /// and its App Home button are the bot-admin change's).
    pub async fn set_crm_sync_paused(
        &self,
        tenant: TenantId,
        by_user: UserId,
        paused: bool,
    ) -> anyhow::Result<()> {
        self.store
            .set_crm_sync_pause(tenant, Some(by_user), paused)
            .await?;
        self.store
            .audit(
                tenant,
                Some(by_user),
                if paused {
                    "crm_sync_paused"
                } else {
                    "crm_sync_resumed"
                },
                "crm_mirror",
                "ok",
                None,
            )
            .await?;
        tracing::info!(tenant = %tenant, paused, "CRM sync switch changed");
        Ok(())
    }

    /// Is the team's sync paused?
    pub async fn crm_sync_is_paused(&self, tenant: TenantId) -> anyhow::Result<bool> {
        Ok(self
            .store
            .crm_sync_pause(tenant)
            .await?
            .is_some_and(|p| p.paused))
    }

    /// Autocomplete's contacts from the mirror; `None` while the mirror of contacts has not
    /// been backfilled (the caller searches the CRM).
    pub async fn mirror_contacts(
        &self,
        tenant: TenantId,
        provider: Provider,
        query: &str,
        limit: usize,
    ) -> anyhow::Result<Option<Vec<Contact>>> {
        if !self
            .store
            .mirror_ready(tenant, provider, MirrorObject::Contacts)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(
            self.store
                .mirror_search_contacts(tenant, provider, query, limit)
                .await?,
        ))
    }

    /// Autocomplete's accounts from the mirror, as `mirror_contacts`.
    pub async fn mirror_accounts(
        &self,
        tenant: TenantId,
        provider: Provider,
        query: &str,
        limit: usize,
    ) -> anyhow::Result<Option<Vec<Account>>> {
        if !self
            .store
            .mirror_ready(tenant, provider, MirrorObject::Accounts)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(
            self.store
                .mirror_search_accounts(tenant, provider, query, limit)
                .await?,
        ))
    }

    /// The open deals as mirrored, when the deals' backfill has ended.
    pub async fn mirror_open_deals(
        &self,
        tenant: TenantId,
        provider: Provider,
        account_id: &str,
    ) -> anyhow::Result<Option<Vec<Deal>>> {
        if !self
            .store
            .mirror_ready(tenant, provider, MirrorObject::Deals)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(
            self.store
                .mirror_open_deals(tenant, provider, account_id)
                .await?,
        ))
    }

    /// Contacts with this email: the mirror's once backfilled, else the CRM's. A database
    /// failure falls back to the CRM too (the lookup must still answer).
    pub(crate) async fn contacts_by_email_mirrored(
        &self,
        tenant: TenantId,
        crm: &dyn Crm,
        email: &str,
    ) -> Result<Vec<Contact>, CrmError> {
        let provider = crm.provider();
        match self
            .mirror_read(tenant, provider, MirrorObject::Contacts, async {
                self.store
                    .mirror_contacts_by_email(tenant, provider, email)
                    .await
            })
            .await
        {
            Some(found) => Ok(found),
            None => crm.contacts_by_email(email).await,
        }
    }

    /// Accounts with this website domain: the mirror's once backfilled, else the CRM's.
    pub(crate) async fn accounts_by_domain_mirrored(
        &self,
        tenant: TenantId,
        crm: &dyn Crm,
        domain: &str,
    ) -> Result<Vec<Account>, CrmError> {
        let provider = crm.provider();
        match self
            .mirror_read(tenant, provider, MirrorObject::Accounts, async {
                self.store
                    .mirror_accounts_by_domain(tenant, provider, domain)
                    .await
            })
            .await
        {
            Some(found) => Ok(found),
            None => crm.accounts_by_domain(domain).await,
        }
    }

    /// One account: the mirror's when it has it, else the CRM's (it may be newer than the
    /// last sync).
    pub(crate) async fn account_mirrored(
        &self,
        tenant: TenantId,
        crm: &dyn Crm,
        id: &str,
    ) -> Result<Option<Account>, CrmError> {
        let provider = crm.provider();
        match self
            .mirror_read(tenant, provider, MirrorObject::Accounts, async {
                self.store.mirror_account(tenant, provider, id).await
            })
            .await
        {
            Some(Some(found)) => Ok(Some(found)),
            _ => crm.account(id).await,
        }
    }

    /// `read` when the mirror of `object` is ready; `None` (ask the CRM) when it is not, or
    /// the database failed.
    async fn mirror_read<T>(
        &self,
        tenant: TenantId,
        provider: Provider,
        object: MirrorObject,
        read: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> Option<T> {
        let ready = match self.store.mirror_ready(tenant, provider, object).await {
            Ok(ready) => ready,
            Err(e) => {
                warn!(error = ?e, "could not read the CRM mirror; asking the CRM");
                return None;
            }
        };
        if !ready {
            return None;
        }
        match read.await {
            Ok(found) => Some(found),
            Err(e) => {
                warn!(error = ?e, "could not read the CRM mirror; asking the CRM");
                None
            }
        }
    }

    /// A deal change the CRM has taken, copied into the mirror: a closing stage removes the
    /// deal, another updates it. `closed` says whether the new stage is a closed one. A
    /// failure here is logged only: the next sync brings the mirror up to date.
    pub async fn mirror_deal_written(
        &self,
        tenant: TenantId,
        provider: Provider,
        change: &DealChange,
        closed: bool,
    ) {
        let result = async {
            if closed {
                self.store
                    .mirror_remove(tenant, provider, MirrorObject::Deals, &change.deal_id)
                    .await?;
                return anyhow::Ok(());
            }
            let Some(mut deal) = self
                .store
                .mirror_deal(tenant, provider, &change.deal_id)
                .await?
            else {
                return Ok(()); // not mirrored yet: the sync brings it
            };
            if let Some(amount) = change.amount {
                deal.amount = Some(amount);
            }
            if let Some(stage) = &change.stage {
                deal.stage = stage.clone();
            }
            self.store
                .mirror_apply(
                    tenant,
                    provider,
                    &[Record::Deal { deal, open: true }],
                    crate::store::now(),
                )
                .await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            warn!(error = ?e, tenant = %tenant, "could not copy a deal change into the CRM mirror");
        }
    }
}

/// The sync's state in one mrkdwn line for admins (App Home, the team settings): on or
/// paused, what is mirrored, the last run and the last error (a machine code, never the
/// CRM's words).
pub fn sync_summary(status: &SyncStatus) -> String {
    let time = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let state = if status.paused {
        match &status.paused_at {
            Some(at) => format!("paused since {}", time(at)),
            None => "paused".to_owned(),
        }
    } else if status.objects.iter().all(|o| o.ready) {
        "on".to_owned()
    } else {
        "on (the first copy is under way)".to_owned()
    };
    let c = &status.counts;
    let mut text = format!(
        "*CRM sync*: {state}. Mirrored: {} accounts, {} contacts, {} open deals.",
        c.accounts, c.contacts, c.deals
    );
    if let Some(last) = status
        .objects
        .iter()
        .filter_map(|o| o.last_run.as_ref())
        .max_by_key(|r| r.finished_at)
    {
        text.push_str(&format!(" Last run {}.", time(&last.finished_at)));
    }
    if let Some(error) = status
        .objects
        .iter()
        .filter_map(|o| o.last_error.as_ref())
        .max_by_key(|r| r.finished_at)
    {
        text.push_str(&format!(
            " Last error: {} {} at {}.",
            crate::blocks::escape(&error.object),
            crate::blocks::escape(error.error_code.as_deref().unwrap_or("error")),
            time(&error.finished_at)
        ));
    }
    text
}
