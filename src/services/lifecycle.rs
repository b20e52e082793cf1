//! A person's "Delete my data" and the retention purge, below the features that start them.

use tracing::info;

use super::Services;
use crate::domain::ids::{TenantId, UserId};
use crate::store::lifecycle::Purged;

impl Services {
    /// Deletes a person's data and tokens: their Fathom webhook deleted at Fathom and their
    /// Google grant revoked at Google (best effort: the tokens go here whatever those answer),
    /// then everything stored about them. Audited. Safe to run twice.
    pub async fn delete_person_data(&self, tenant: TenantId, user: UserId) -> anyhow::Result<u64> {
        let slack_user = self
            .store
            .user(tenant, user)
            .await?
            .map(|u| u.slack_user_id);
        self.disconnect_fathom(tenant, user).await?;
        self.disconnect_google(tenant, user).await?;
        let followups = self.store.delete_person_data(tenant, user).await?;
        self.store
            .audit(tenant, Some(user), "delete_data", "person", "ok", None)
            .await?;
        if let (Some(slack_user), Ok(Some(team))) =
            (slack_user, self.store.tenant_team(tenant).await)
        {
            self.people.forget(&team, &slack_user);
        }
        info!(user = %user, followups, "deleted a person's data");
        Ok(followups)
    }

    /// Purges what is older than the retention periods.
    pub async fn purge_expired(&self) -> anyhow::Result<Purged> {
        let retention = &self.config.retention;
        let now = crate::store::now();
        let mut purged = self
            .store
            .purge_older_than(
                now - chrono::Duration::days(i64::from(retention.days)),
                now - chrono::Duration::days(i64::from(retention.audit_days)),
            )
            .await?;
        // Teams that chose a shorter period of their own.
        for (tenant, days) in self.store.team_retentions().await? {
            if days < retention.days {
                purged.team += self
                    .store
                    .purge_team_older_than(tenant, now - chrono::Duration::days(i64::from(days)))
                    .await?;
            }
        }
        if purged.total() > 0 {
            info!(?purged, "purged data older than the retention period");
        }
        metrics::counter!("retention_purged_rows_total").increment(purged.total());
        Ok(purged)
    }
}
