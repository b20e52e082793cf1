//! The retention purge: follow-ups, finished jobs, delivered envelopes and listed meetings
//! older than `RETENTION_DAYS` (default 90), and the audit log after `AUDIT_RETENTION_DAYS`
//! (default 365), deleted every `RETENTION_PURGE_INTERVAL_SECS` by one replica at a time
//! (a lease in the database).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::services::Services;
use crate::store::lifecycle::Purged;

const LEASE: &str = "retention-purge";

pub fn register(features: &mut crate::registry::Features) {
    features.task(run);
}

async fn run(services: Arc<Services>, shutdown: CancellationToken) {
    let interval = services.config.retention.purge_interval;
    // Soon after start (a bot restarted daily still purges), then at each interval.
    let mut wait = interval.min(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = interval;
        // Held for the whole interval: the other replicas skip this round.
        match services
            .store
            .try_lease(LEASE, &services.instance_id, interval)
            .await
        {
            Ok(true) => {
                if let Err(e) = services.purge_expired().await {
                    warn!(error = ?e, "the retention purge failed; it runs again next interval");
                }
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not take the retention lease"),
        }
    }
}

/// One purge now: a test hook.
pub async fn purge_once(services: &Services) -> anyhow::Result<Purged> {
    services.purge_expired().await
}
