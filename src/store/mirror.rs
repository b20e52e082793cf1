//! The CRM mirror: each team's accounts, contacts and open deals as its CRM last listed them
//! (keyed by tenant, provider and the CRM's id), where each (team, provider, object) sync
//! stands, its log, and the admins' pause switch. The CRM stays the source of truth: what is
//! here was read from it, or written to it first.

use chrono::{DateTime, Utc};

use super::{Store, now, on_pool, truncate};
use crate::domain::crm::{Account, Contact, Deal, MirrorObject, Record, website_domain};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::provider::Provider;

/// How a listing runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// The first full listing.
    Backfill,
    /// What changed since the cursor.
    Delta,
    /// A full listing again, to find what was deleted (no provider lists deletions).
    Sweep,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Backfill => "backfill",
            SyncMode::Delta => "delta",
            SyncMode::Sweep => "sweep",
        }
    }

    pub fn parse(value: &str) -> Self {
        match value {
            "delta" => SyncMode::Delta,
            "sweep" => SyncMode::Sweep,
            _ => SyncMode::Backfill,
        }
    }
}

/// Where one (team, provider, object) sync stands.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncCursor {
    pub tenant: TenantId,
    pub provider: Provider,
    pub object: MirrorObject,
    /// The delta's modified-since; `None` until the backfill has ended.
    pub since: Option<DateTime<Utc>>,
    /// The listing under way (or the next to start).
    pub mode: SyncMode,
    /// The provider's paging token where the listing under way goes on.
    pub after: Option<String>,
    /// The newest modification the listing under way has seen.
    pub newest: Option<DateTime<Utc>>,
    /// When the listing under way started (a sweep deletes what it saw before this).
    pub listing_started_at: Option<DateTime<Utc>>,
    pub last_sweep_at: Option<DateTime<Utc>>,
}

impl SyncCursor {
    /// A sync that has not begun: a backfill from the first page.
    pub fn new(tenant: TenantId, provider: Provider, object: MirrorObject) -> Self {
        Self {
            tenant,
            provider,
            object,
            since: None,
            mode: SyncMode::Backfill,
            after: None,
            newest: None,
            listing_started_at: None,
            last_sweep_at: None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CursorRow {
    since: Option<DateTime<Utc>>,
    mode: String,
    after: Option<String>,
    newest: Option<DateTime<Utc>>,
    listing_started_at: Option<DateTime<Utc>>,
    last_sweep_at: Option<DateTime<Utc>>,
}

/// One sync run of one object, as the log keeps it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct SyncRun {
    pub object: String,
    pub mode: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `ok` (the listing ended), `partial` (it goes on next run) or `error`.
    pub outcome: String,
    pub pages: i64,
    pub upserted: i64,
    pub removed: i64,
    /// A machine code (`rate_limited`, `unavailable`, …), never the provider's text.
    pub error_code: Option<String>,
}

/// The pause switch as last set.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PauseSwitch {
    pub paused: bool,
    pub changed_by: Option<UserId>,
    pub changed_at: DateTime<Utc>,
}

/// How many records the mirror holds for a team's CRM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MirrorCounts {
    pub accounts: i64,
    pub contacts: i64,
    pub deals: i64,
}

/// What applying a page did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub upserted: u64,
    pub removed: u64,
}

/// The longest name and search text kept: both are in an index, whose entries PostgreSQL
/// caps at about 2.7 kB, and a label shows 75 characters anyway.
const NAME_CHARS: usize = 300;

/// Lowercased for `LIKE` (Rust's lowercasing, so non-ASCII letters match on SQLite too).
fn folded(parts: &[Option<&str>]) -> String {
    let text = parts
        .iter()
        .flatten()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    text.chars().take(2 * NAME_CHARS).collect()
}

fn name(text: &str) -> String {
    text.chars().take(NAME_CHARS).collect()
}

/// `%query%`, with `LIKE`'s own characters escaped (`ESCAPE '\'`).
fn like_pattern(query: &str) -> String {
    let mut out = String::from("%");
    for c in query.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

const UPSERT_ACCOUNT: &str = "INSERT INTO crm_mirror_accounts
        (tenant_id, provider, remote_id, name, website, domain, search_text, seen_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (tenant_id, provider, remote_id) DO UPDATE SET
        name = excluded.name, website = excluded.website, domain = excluded.domain,
        search_text = excluded.search_text, seen_at = excluded.seen_at";

const UPSERT_CONTACT: &str = "INSERT INTO crm_mirror_contacts
        (tenant_id, provider, remote_id, name, email, account_id, account_name, search_text,
         seen_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (tenant_id, provider, remote_id) DO UPDATE SET
        name = excluded.name, email = excluded.email, account_id = excluded.account_id,
        account_name = excluded.account_name, search_text = excluded.search_text,
        seen_at = excluded.seen_at";

const UPSERT_DEAL: &str = "INSERT INTO crm_mirror_deals
        (tenant_id, provider, remote_id, account_id, name, stage, amount, currency, close_date,
         seen_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (tenant_id, provider, remote_id) DO UPDATE SET
        account_id = excluded.account_id, name = excluded.name, stage = excluded.stage,
        amount = excluded.amount, currency = excluded.currency,
        close_date = excluded.close_date, seen_at = excluded.seen_at";

const DELETE_DEAL: &str =
    "DELETE FROM crm_mirror_deals WHERE tenant_id = $1 AND provider = $2 AND remote_id = $3";

#[derive(sqlx::FromRow)]
struct AccountRow {
    remote_id: String,
    name: String,
    website: Option<String>,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Account {
            id: r.remote_id,
            name: r.name,
            website: r.website,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ContactRow {
    remote_id: String,
    name: String,
    email: Option<String>,
    account_id: Option<String>,
    account_name: Option<String>,
}

impl From<ContactRow> for Contact {
    fn from(r: ContactRow) -> Self {
        Contact {
            id: r.remote_id,
            name: r.name,
            email: r.email,
            account_id: r.account_id,
            account_name: r.account_name,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DealRow {
    remote_id: String,
    account_id: String,
    name: String,
    stage: String,
    amount: Option<f64>,
    currency: Option<String>,
    close_date: Option<String>,
}

impl From<DealRow> for Deal {
    fn from(r: DealRow) -> Self {
        Deal {
            id: r.remote_id,
            account_id: r.account_id,
            name: r.name,
            stage: r.stage,
            amount: r.amount,
            currency: r.currency,
            close_date: r.close_date,
        }
    }
}

impl Store {
    /// A page of listed records, in one transaction: accounts, contacts and open deals
    /// upserted (seen at `seen_at`), closed deals deleted.
    pub async fn mirror_apply(
        &self,
        tenant: TenantId,
        provider: Provider,
        records: &[Record],
        seen_at: DateTime<Utc>,
    ) -> anyhow::Result<Applied> {
        let seen_at = truncate(seen_at);
        let provider = provider.as_str();
        let mut applied = Applied::default();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for record in records {
                match record {
                    Record::Account(a) => {
                        let domain = a.website.as_deref().and_then(website_domain);
                        sqlx::query(UPSERT_ACCOUNT)
                            .bind(tenant)
                            .bind(provider)
                            .bind(&a.id)
                            .bind(name(&a.name))
                            .bind(&a.website)
                            .bind(domain)
                            .bind(folded(&[Some(&a.name)]))
                            .bind(seen_at)
                            .execute(&mut *tx)
                            .await?;
                        applied.upserted += 1;
                    }
                    Record::Contact(c) => {
                        let email = c
                            .email
                            .as_deref()
                            .map(|e| e.trim().to_lowercase().chars().take(NAME_CHARS).collect::<String>());
                        sqlx::query(UPSERT_CONTACT)
                            .bind(tenant)
                            .bind(provider)
                            .bind(&c.id)
                            .bind(name(&c.name))
                            .bind(&email)
                            .bind(&c.account_id)
                            .bind(&c.account_name)
                            .bind(folded(&[Some(&c.name), email.as_deref()]))
                            .bind(seen_at)
                            .execute(&mut *tx)
                            .await?;
                        applied.upserted += 1;
                    }
                    Record::Deal { deal, open: true } => {
                        sqlx::query(UPSERT_DEAL)
                            .bind(tenant)
                            .bind(provider)
                            .bind(&deal.id)
                            .bind(&deal.account_id)
                            .bind(name(&deal.name))
                            .bind(&deal.stage)
                            .bind(deal.amount)
                            .bind(&deal.currency)
                            .bind(&deal.close_date)
                            .bind(seen_at)
                            .execute(&mut *tx)
                            .await?;
                        applied.upserted += 1;
                    }
                    Record::Deal { deal, open: false } => {
                        applied.removed += sqlx::query(DELETE_DEAL)
                            .bind(tenant)
                            .bind(provider)
                            .bind(&deal.id)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(applied)
    }

    /// Deletes one mirrored record (the CRM said it is gone).
    pub async fn mirror_remove(
        &self,
        tenant: TenantId,
        provider: Provider,
        object: MirrorObject,
        remote_id: &str,
    ) -> anyhow::Result<bool> {
        let sql = match object {
            MirrorObject::Accounts => {
                "DELETE FROM crm_mirror_accounts WHERE tenant_id = $1 AND provider = $2 AND remote_id = $3"
            }
            MirrorObject::Contacts => {
                "DELETE FROM crm_mirror_contacts WHERE tenant_id = $1 AND provider = $2 AND remote_id = $3"
            }
            MirrorObject::Deals => DELETE_DEAL,
        };
        let n = on_pool!(self, pool => sqlx::query(sql)
            .bind(tenant)
            .bind(provider.as_str())
            .bind(remote_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// After a full listing that started at `before`: what it did not see is gone.
    pub async fn mirror_delete_unseen(
        &self,
        tenant: TenantId,
        provider: Provider,
        object: MirrorObject,
        before: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let sql = match object {
            MirrorObject::Accounts => {
                "DELETE FROM crm_mirror_accounts WHERE tenant_id = $1 AND provider = $2 AND seen_at < $3"
            }
            MirrorObject::Contacts => {
                "DELETE FROM crm_mirror_contacts WHERE tenant_id = $1 AND provider = $2 AND seen_at < $3"
            }
            MirrorObject::Deals => {
                "DELETE FROM crm_mirror_deals WHERE tenant_id = $1 AND provider = $2 AND seen_at < $3"
            }
        };
        Ok(on_pool!(self, pool => sqlx::query(sql)
            .bind(tenant)
            .bind(provider.as_str())
            .bind(truncate(before))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// The mirror and cursors of every CRM of the team but `keep` (a CRM connected before).
    pub async fn mirror_forget_other_crms(
        &self,
        tenant: TenantId,
        keep: Provider,
    ) -> anyhow::Result<()> {
        for sql in [
            "DELETE FROM crm_mirror_accounts WHERE tenant_id = $1 AND provider <> $2",
            "DELETE FROM crm_mirror_contacts WHERE tenant_id = $1 AND provider <> $2",
            "DELETE FROM crm_mirror_deals WHERE tenant_id = $1 AND provider <> $2",
            "DELETE FROM crm_sync_cursors WHERE tenant_id = $1 AND provider <> $2",
        ] {
            on_pool!(self, pool => sqlx::query(sql)
                .bind(tenant)
                .bind(keep.as_str())
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Everything mirrored of the team's CRM, and its cursors: the CRM was disconnected, so
    /// nothing of it stays here.
    pub async fn mirror_forget_team(&self, tenant: TenantId) -> anyhow::Result<()> {
        for sql in [
            "DELETE FROM crm_mirror_accounts WHERE tenant_id = $1",
            "DELETE FROM crm_mirror_contacts WHERE tenant_id = $1",
            "DELETE FROM crm_mirror_deals WHERE tenant_id = $1",
            "DELETE FROM crm_sync_cursors WHERE tenant_id = $1",
        ] {
            on_pool!(self, pool => sqlx::query(sql)
                .bind(tenant)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Accounts whose name contains `query` (any case), by name.
    pub async fn mirror_search_accounts(
        &self,
        tenant: TenantId,
        provider: Provider,
        query: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<Account>> {
        let rows: Vec<AccountRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT remote_id, name, website FROM crm_mirror_accounts
             WHERE tenant_id = $1 AND provider = $2 AND search_text LIKE $3 ESCAPE '\\'
             ORDER BY name, remote_id LIMIT $4",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(like_pattern(query))
        .bind(limit as i64)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Contacts whose name or email contains `query` (any case), with their account's name:
    /// the mirrored account's (a rename is listed on the account, not on its contacts), else
    /// the one the contact was listed with.
    pub async fn mirror_search_contacts(
        &self,
        tenant: TenantId,
        provider: Provider,
        query: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<Contact>> {
        let rows: Vec<ContactRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT c.remote_id, c.name, c.email, c.account_id,
                    COALESCE(a.name, c.account_name) AS account_name
             FROM crm_mirror_contacts c
             LEFT JOIN crm_mirror_accounts a
                    ON a.tenant_id = c.tenant_id AND a.provider = c.provider
                   AND a.remote_id = c.account_id
             WHERE c.tenant_id = $1 AND c.provider = $2 AND c.search_text LIKE $3 ESCAPE '\\'
             ORDER BY c.name, c.remote_id LIMIT $4",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(like_pattern(query))
        .bind(limit as i64)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Contacts with exactly this email (any case).
    pub async fn mirror_contacts_by_email(
        &self,
        tenant: TenantId,
        provider: Provider,
        email: &str,
    ) -> anyhow::Result<Vec<Contact>> {
        let rows: Vec<ContactRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT c.remote_id, c.name, c.email, c.account_id,
                    COALESCE(a.name, c.account_name) AS account_name
             FROM crm_mirror_contacts c
             LEFT JOIN crm_mirror_accounts a
                    ON a.tenant_id = c.tenant_id AND a.provider = c.provider
                   AND a.remote_id = c.account_id
             WHERE c.tenant_id = $1 AND c.provider = $2 AND c.email = $3
             ORDER BY c.remote_id LIMIT 50",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(email.trim().to_lowercase())
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Accounts whose website is this bare domain.
    pub async fn mirror_accounts_by_domain(
        &self,
        tenant: TenantId,
        provider: Provider,
        domain: &str,
    ) -> anyhow::Result<Vec<Account>> {
        let rows: Vec<AccountRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT remote_id, name, website FROM crm_mirror_accounts
             WHERE tenant_id = $1 AND provider = $2 AND domain = $3
             ORDER BY remote_id LIMIT 50",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(domain.trim().to_lowercase())
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn mirror_account(
        &self,
        tenant: TenantId,
        provider: Provider,
        id: &str,
    ) -> anyhow::Result<Option<Account>> {
        let row: Option<AccountRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT remote_id, name, website FROM crm_mirror_accounts
             WHERE tenant_id = $1 AND provider = $2 AND remote_id = $3",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(Into::into))
    }

    /// The account's open deals as mirrored.
    pub async fn mirror_open_deals(
        &self,
        tenant: TenantId,
        provider: Provider,
        account_id: &str,
    ) -> anyhow::Result<Vec<Deal>> {
        let rows: Vec<DealRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT remote_id, account_id, name, stage, amount, currency, close_date
             FROM crm_mirror_deals
             WHERE tenant_id = $1 AND provider = $2 AND account_id = $3
             ORDER BY name, remote_id",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(account_id)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One mirrored deal.
    pub async fn mirror_deal(
        &self,
        tenant: TenantId,
        provider: Provider,
        id: &str,
    ) -> anyhow::Result<Option<Deal>> {
        let row: Option<DealRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT remote_id, account_id, name, stage, amount, currency, close_date
             FROM crm_mirror_deals WHERE tenant_id = $1 AND provider = $2 AND remote_id = $3",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(Into::into))
    }

    pub async fn mirror_counts(
        &self,
        tenant: TenantId,
        provider: Provider,
    ) -> anyhow::Result<MirrorCounts> {
        let mut counts = MirrorCounts::default();
        for object in MirrorObject::ALL {
            let sql = match object {
                MirrorObject::Accounts => {
                    "SELECT COUNT(*) FROM crm_mirror_accounts WHERE tenant_id = $1 AND provider = $2"
                }
                MirrorObject::Contacts => {
                    "SELECT COUNT(*) FROM crm_mirror_contacts WHERE tenant_id = $1 AND provider = $2"
                }
                MirrorObject::Deals => {
                    "SELECT COUNT(*) FROM crm_mirror_deals WHERE tenant_id = $1 AND provider = $2"
                }
            };
            let (n,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql)
                .bind(tenant)
                .bind(provider.as_str())
                .fetch_one(pool)
                .await)?;
            match object {
                MirrorObject::Accounts => counts.accounts = n,
                MirrorObject::Contacts => counts.contacts = n,
                MirrorObject::Deals => counts.deals = n,
            }
        }
        Ok(counts)
    }

    /// Where the sync stands (a fresh backfill when it never ran).
    pub async fn sync_cursor(
        &self,
        tenant: TenantId,
        provider: Provider,
        object: MirrorObject,
    ) -> anyhow::Result<SyncCursor> {
        let row: Option<CursorRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT since, mode, after, newest, listing_started_at, last_sweep_at
             FROM crm_sync_cursors WHERE tenant_id = $1 AND provider = $2 AND object = $3",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(object.as_str())
        .fetch_optional(pool)
        .await)?;
        let mut cursor = SyncCursor::new(tenant, provider, object);
        if let Some(row) = row {
            cursor.since = row.since;
            cursor.mode = SyncMode::parse(&row.mode);
            cursor.after = row.after;
            cursor.newest = row.newest;
            cursor.listing_started_at = row.listing_started_at;
            cursor.last_sweep_at = row.last_sweep_at;
        }
        Ok(cursor)
    }

    pub async fn put_sync_cursor(&self, cursor: &SyncCursor) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO crm_sync_cursors
                (tenant_id, provider, object, since, mode, after, newest, listing_started_at,
                 last_sweep_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, provider, object) DO UPDATE SET
                since = excluded.since, mode = excluded.mode, after = excluded.after,
                newest = excluded.newest, listing_started_at = excluded.listing_started_at,
                last_sweep_at = excluded.last_sweep_at",
        )
        .bind(cursor.tenant)
        .bind(cursor.provider.as_str())
        .bind(cursor.object.as_str())
        .bind(cursor.since.map(truncate))
        .bind(cursor.mode.as_str())
        .bind(&cursor.after)
        .bind(cursor.newest.map(truncate))
        .bind(cursor.listing_started_at.map(truncate))
        .bind(cursor.last_sweep_at.map(truncate))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Has the first full listing of `object` ended (so the mirror can answer for it)?
    pub async fn mirror_ready(
        &self,
        tenant: TenantId,
        provider: Provider,
        object: MirrorObject,
    ) -> anyhow::Result<bool> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT object FROM crm_sync_cursors
             WHERE tenant_id = $1 AND provider = $2 AND object = $3 AND since IS NOT NULL",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(object.as_str())
        .fetch_optional(pool)
        .await)?;
        Ok(row.is_some())
    }

    pub async fn record_sync_run(
        &self,
        tenant: TenantId,
        provider: Provider,
        run: &SyncRun,
    ) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO crm_sync_log (tenant_id, provider, object, mode, started_at,
                                       finished_at, outcome, pages, upserted, removed,
                                       error_code)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(&run.object)
        .bind(&run.mode)
        .bind(truncate(run.started_at))
        .bind(truncate(run.finished_at))
        .bind(&run.outcome)
        .bind(run.pages)
        .bind(run.upserted)
        .bind(run.removed)
        .bind(&run.error_code)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The team's latest sync runs with this provider, newest first.
    pub async fn sync_runs(
        &self,
        tenant: TenantId,
        provider: Provider,
        limit: usize,
    ) -> anyhow::Result<Vec<SyncRun>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, SyncRun>(
            "SELECT object, mode, started_at, finished_at, outcome, pages, upserted, removed,
                    error_code
             FROM crm_sync_log WHERE tenant_id = $1 AND provider = $2
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(provider.as_str())
        .bind(limit as i64)
        .fetch_all(pool)
        .await)?)
    }

    /// The team's pause switch (`None`: never set, so syncing).
    pub async fn crm_sync_pause(&self, tenant: TenantId) -> anyhow::Result<Option<PauseSwitch>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, PauseSwitch>(
            "SELECT paused, changed_by, changed_at FROM crm_sync_settings WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(pool)
        .await)?)
    }

    pub async fn set_crm_sync_pause(
        &self,
        tenant: TenantId,
        by: Option<UserId>,
        paused: bool,
    ) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO crm_sync_settings (tenant_id, paused, changed_by, changed_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id) DO UPDATE SET paused = excluded.paused,
                changed_by = excluded.changed_by, changed_at = excluded.changed_at",
        )
        .bind(tenant)
        .bind(paused)
        .bind(by)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
