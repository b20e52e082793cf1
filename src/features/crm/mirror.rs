//! The CRM mirror's sync: every `CRM_SYNC_INTERVAL_SECS`, one replica at a time (a lease),
//! each team's accounts, contacts and deals are listed from its CRM into the database: first
//! a backfill of everything, then deltas on the provider's modified-since field, and every
//! `CRM_SYNC_SWEEP_INTERVAL_SECS` a full listing again (a sweep), after which what it did
//! not see is deleted (no provider tells what was deleted). A run reads at most
//! `CRM_SYNC_PAGES_PER_RUN` pages of each object; a longer listing keeps its place in the
//! cursor and goes on next run. Requests take the team's token bucket like any other CRM
//! call, and the sync spaces its pages so that it uses about half of it, leaving the rest to
//! people. A paused team is not synced at all. Failures go to the sync log as machine codes.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clients::crm::{Calls, Crm};
use crate::domain::crm::{Listing, MirrorObject};
use crate::domain::ids::TenantId;
use crate::services::Services;
use crate::store::mirror::{SyncCursor, SyncMode, SyncRun};

const LEASE: &str = "crm-mirror-sync";
/// The delta's modified-since stays this far behind the start of the listing that set it,
/// for records changed while it ran and for the CRM's clock being behind ours.
const SKEW: chrono::Duration = chrono::Duration::minutes(5);

pub fn register(features: &mut crate::registry::Features) {
    features.task(run);
}

async fn run(services: Arc<Services>, shutdown: CancellationToken) {
    let interval = services.config.crm.sync_interval;
    if interval.is_zero() {
        return;
    }
    let mut wait = interval.min(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = interval;
        match services
            .store
            .try_lease(LEASE, &services.instance_id, interval)
            .await
        {
            Ok(true) => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    result = sync_all(&services, Some(interval)) => if let Err(e) = result {
                        warn!(error = ?e, "the CRM sync failed; it runs again next interval");
                    },
                }
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not take the CRM sync lease"),
        }
    }
}

/// What one team's run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamRun {
    /// The team is paused: nothing was asked of its CRM.
    pub paused: bool,
    pub pages: u64,
    pub upserted: u64,
    pub removed: u64,
    /// The objects whose run failed, with the failure's code.
    pub errors: Vec<(MirrorObject, String)>,
}

/// One run over every team with a connected CRM (a test hook).
pub async fn sync_once(services: &Services) -> anyhow::Result<()> {
    sync_all(services, None).await
}

/// The task's run: with `lease`, the lease is renewed before each team (a run may outlast
/// one interval) and the run stops if another replica holds it by then.
async fn sync_all(services: &Services, lease: Option<Duration>) -> anyhow::Result<()> {
    let mut teams: Vec<TenantId> = services
        .store
        .crm_connections()
        .await?
        .into_iter()
        .filter(|(_, _, _, status)| status == "connected")
        .map(|(tenant, ..)| tenant)
        .collect();
    teams.dedup();
    for tenant in teams {
        if let Some(ttl) = lease
            && !services
                .store
                .try_lease(LEASE, &services.instance_id, ttl)
                .await?
        {
            warn!("another replica took the CRM sync over; this run stops");
            break;
        }
        if let Err(e) = sync_team(services, tenant).await {
            warn!(error = ?e, tenant = %tenant, "the CRM sync of a team failed");
        }
    }
    Ok(())
}

/// One run of one team: each object's listing for at most a run's pages.
pub async fn sync_team(services: &Services, tenant: TenantId) -> anyhow::Result<TeamRun> {
    let mut run = TeamRun::default();
    if services.crm_sync_is_paused(tenant).await? {
        run.paused = true;
        return Ok(run);
    }
    let crm = match services.crm(tenant, Calls::Read).await? {
        Ok(crm) => crm,
        Err(no) => {
            info!(tenant = %tenant, reason = ?no, "no CRM to sync");
            return Ok(run);
        }
    };
    let provider = crm.provider();
    services
        .store
        .mirror_forget_other_crms(tenant, provider)
        .await?;
    for object in MirrorObject::ALL {
        let outcome = sync_object(services, &*crm, tenant, object, &mut run).await?;
        if outcome == Outcome::Paused {
            run.paused = true;
            break;
        }
        if outcome == Outcome::Throttled {
            break; // the CRM asked us to slow down: the other objects wait for next run
        }
    }
    Ok(run)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The run's pages were read (the listing may go on next run).
    Done,
    Failed,
    Throttled,
    Paused,
}

async fn sync_object(
    services: &Services,
    crm: &dyn Crm,
    tenant: TenantId,
    object: MirrorObject,
    run: &mut TeamRun,
) -> anyhow::Result<Outcome> {
    let provider = crm.provider();
    let config = &services.config.crm;
    let started = crate::store::now();
    let mut cursor = services.store.sync_cursor(tenant, provider, object).await?;
    if cursor.listing_started_at.is_none() {
        start_listing(&mut cursor, started, config.sync_sweep_interval);
    }
    let mut log = SyncRun {
        object: object.as_str().to_owned(),
        mode: cursor.mode.as_str().to_owned(),
        started_at: started,
        finished_at: started,
        outcome: "partial".to_owned(),
        pages: 0,
        upserted: 0,
        removed: 0,
        error_code: None,
    };
    // About half the team's bucket: one page per two tokens' time.
    let spacing = Duration::from_secs(2) / config.requests_per_second.max(1);
    let mut outcome = Outcome::Done;
    let mut finished = false;
    for page in 0..config.sync_pages_per_run {
        if page > 0 {
            tokio::time::sleep(spacing).await;
            if services.crm_sync_is_paused(tenant).await? {
                outcome = Outcome::Paused;
                break;
            }
        }
        let listing = Listing {
            since: (cursor.mode == SyncMode::Delta)
                .then_some(cursor.since)
                .flatten(),
            after: cursor.after.clone(),
        };
        let listed = match crm.list_changed(object, &listing).await {
            Ok(listed) => listed,
            Err(e) => {
                let code = e.kind();
                warn!(tenant = %tenant, %provider, object = object.as_str(), code,
                    "a CRM sync page failed; it goes on from there next run");
                log.outcome = "error".to_owned();
                log.error_code = Some(code.to_owned());
                run.errors.push((object, code.to_owned()));
                outcome = if matches!(e, crate::clients::crm::CrmError::RateLimited { .. }) {
                    Outcome::Throttled
                } else {
                    Outcome::Failed
                };
                break;
            }
        };
        let applied = services
            .store
            .mirror_apply(tenant, provider, &listed.records, crate::store::now())
            .await?;
        log.pages += 1;
        log.upserted += applied.upserted as i64;
        log.removed += applied.removed as i64;
        cursor.newest = cursor.newest.max(listed.newest);
        match listed.next {
            Some(next) => cursor.after = Some(next),
            None => {
                finished = true;
                break;
            }
        }
    }
    if finished {
        let began = cursor.listing_started_at.unwrap_or(started);
        if cursor.mode != SyncMode::Delta {
            log.removed += services
                .store
                .mirror_delete_unseen(tenant, provider, object, began)
                .await? as i64;
            cursor.last_sweep_at = Some(began);
        }
        cursor.since = Some(match cursor.newest {
            Some(newest) => newest.min(began - SKEW),
            None => cursor.since.unwrap_or(began - SKEW),
        });
        cursor.after = None;
        cursor.newest = None;
        cursor.listing_started_at = None;
        log.outcome = "ok".to_owned();
    }
    services.store.put_sync_cursor(&cursor).await?;
    log.finished_at = crate::store::now();
    services
        .store
        .record_sync_run(tenant, provider, &log)
        .await?;
    run.pages += log.pages as u64;
    run.upserted += log.upserted as u64;
    run.removed += log.removed as u64;
    Ok(outcome)
}

/// The listing to start: the backfill until one has ended, a sweep when the last full
/// listing is older than `sweep_every`, else a delta.
fn start_listing(
    cursor: &mut SyncCursor,
    now: chrono::DateTime<chrono::Utc>,
    sweep_every: Duration,
) {
    let sweep_every = chrono::Duration::from_std(sweep_every).unwrap_or(chrono::Duration::MAX);
    cursor.mode = match (cursor.since, cursor.last_sweep_at) {
        (None, _) => SyncMode::Backfill,
        (Some(_), Some(last)) if now - last < sweep_every => SyncMode::Delta,
        (Some(_), _) => SyncMode::Sweep,
    };
    cursor.newest = None;
    cursor.listing_started_at = Some(now);
}
