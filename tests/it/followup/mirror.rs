//! The CRM mirror with Crono, end to end: a backfill in bounded pages over several runs, a
//! delta on `lastModifiedDate` picking up what changed after the cursor, a closed deal and a
//! deleted one leaving the open list (the closed one by the delta, the deleted one by a
//! sweep), a deal edit copied in, autocomplete answered from the mirror while Crono takes 5 s
//! a search (and from Crono while the mirror is empty), a follow-up's attendees matched to
//! their account from the mirror, and the pause switch stopping every sync of the team.

use super::*;
use followup_bot::domain::crm::MirrorObject;
use followup_bot::domain::ids::TenantId;
use followup_bot::features::crm::sync_team;
use followup_bot::store::mirror::SyncMode;

struct M {
    w: World,
    crono: crate::support::fake_crono::FakeCrono,
    tenant: TenantId,
}

impl std::ops::Deref for M {
    type Target = World;
    fn deref(&self) -> &World {
        &self.w
    }
}

impl M {
    /// The bot with Crono connected; `prospects` extra prospects of Acme Corp besides Marco
    /// and Maria; two pages of each object per run.
    async fn new(backend: Backend, prospects: usize) -> Self {
        let super::crm::C { w, crono } = super::crm::C::with(
            backend,
            &[
                ("CRM_SYNC_PAGES_PER_RUN", "2"),
                ("CRM_REQUESTS_PER_SECOND", "11"),
            ],
        )
        .await;
        let tenant = w.app().store.ensure_tenant(TEAM).await.unwrap();
        for n in 0..prospects {
            crono.add_prospect(
                &format!("px-{n:03}"),
                "Person",
                &format!("Number{n:03}"),
                &format!("p{n}@acme.example"),
                "acc-1",
            );
        }
        crono.add_deal("deal-1", "acc-1", "Acme renewal", "proposal", 1000.0, "EUR");
        crono.add_deal(
            "deal-2",
            "acc-1",
            "Acme upsell",
            "negotiation",
            2000.0,
            "EUR",
        );
        crono.add_deal("deal-3", "acc-1", "Acme pilot", "closedwon", 500.0, "EUR");
        M {
            w,
            crono,
            tenant: tenant.id,
        }
    }

    async fn sync(&self) -> followup_bot::features::crm::TeamRun {
        sync_team(self.app(), self.tenant).await.unwrap()
    }

    async fn open_deals(&self) -> Vec<String> {
        let deals = self
            .app()
            .store
            .mirror_open_deals(self.tenant, Provider::Crono, "acc-1")
            .await
            .unwrap();
        deals.into_iter().map(|d| d.id).collect()
    }

    /// Autocomplete answered in the ack of a `block_suggestion` (no modal needed).
    async fn suggest(&self, action: &str, query: &str) -> Vec<String> {
        let envelope = payloads::block_suggestion_in(TEAM, ADA, "b", action, query, None);
        let ack = self
            .slack
            .wait_for_ack(&self.send(envelope), WAIT)
            .await
            .unwrap();
        ack.payload.expect("options in the ack")["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["text"]["text"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn backfill_in_pages_then_a_delta(backend: Backend) {
    let mut m = M::new(backend, 118).await; // 120 prospects: three pages of 50
    let store = &m.app().store;

    // Run 1: accounts and deals fit one page each; prospects stop after two pages.
    let first = m.sync().await;
    assert!(first.errors.is_empty(), "{first:?}");
    assert!(
        store
            .mirror_ready(m.tenant, Provider::Crono, MirrorObject::Accounts)
            .await
            .unwrap()
    );
    assert!(
        !store
            .mirror_ready(m.tenant, Provider::Crono, MirrorObject::Contacts)
            .await
            .unwrap(),
        "the prospects' backfill is not over"
    );
    let listed = m.crono.listings("/Prospects/search");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["pagination"]["offset"], 0);
    assert_eq!(listed[0]["pagination"]["limit"], 50);
    // The next page starts five early, so a deletion between pages skips no one.
    assert_eq!(listed[1]["pagination"]["offset"], 45);
    assert!(listed.iter().all(|b| b["lastModifiedDateFrom"].is_null()));
    let cursor = store
        .sync_cursor(m.tenant, Provider::Crono, MirrorObject::Contacts)
        .await
        .unwrap();
    assert_eq!(cursor.mode, SyncMode::Backfill);
    assert_eq!(cursor.after.as_deref(), Some("90"));

    // Run 2 ends the backfill where run 1 stopped.
    m.sync().await;
    let listed = m.crono.listings("/Prospects/search");
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed[2]["pagination"]["offset"], 90);
    let counts = store
        .mirror_counts(m.tenant, Provider::Crono)
        .await
        .unwrap();
    assert_eq!(
        (counts.accounts, counts.contacts, counts.deals),
        (2, 120, 2)
    );
    let cursor = store
        .sync_cursor(m.tenant, Provider::Crono, MirrorObject::Contacts)
        .await
        .unwrap();
    let since = cursor
        .since
        .expect("a delta cursor once the backfill ended");
    assert_eq!(cursor.after, None);

    // Changed in Crono after the cursor: the delta asks for what changed since it.
    m.crono.rename_prospect("pr-1", "Marcello", "Rossi");
    m.crono.rename_account("acc-2", "Acme Laboratories");
    let before = m.crono.listings("/Prospects/search").len();
    m.sync().await;
    let delta = &m.crono.listings("/Prospects/search")[before..];
    assert!(!delta.is_empty());
    let from = delta[0]["lastModifiedDateFrom"]
        .as_str()
        .expect("a modified-since filter");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(from)
            .unwrap()
            .timestamp(),
        since.timestamp()
    );
    let found = store
        .mirror_search_contacts(m.tenant, Provider::Crono, "marcello", 20)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, "pr-1");
    assert_eq!(found[0].account_name.as_deref(), Some("Acme Corp"));
    let labs = store
        .mirror_account(m.tenant, Provider::Crono, "acc-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(labs.name, "Acme Laboratories");
    // The log has each run, with counts.
    let runs = store
        .sync_runs(m.tenant, Provider::Crono, 50)
        .await
        .unwrap();
    assert!(
        runs.iter()
            .any(|r| r.object == "contacts" && r.outcome == "partial")
    );
    assert!(runs.iter().all(|r| r.error_code.is_none()), "{runs:?}");
    m.w.stop().await;
}

async fn closed_and_deleted_deals_leave_the_open_list(backend: Backend) {
    let mut m = M::new(backend, 0).await;
    m.sync().await;
    // deal-3 was closed (won) from the start: never in the open list.
    assert_eq!(m.open_deals().await, ["deal-1", "deal-2"]);

    // A deal edit the CRM took is copied in (the write job calls this after the CRM).
    let app = m.app();
    let change = |stage: &str| followup_bot::domain::crm::DealChange {
        deal_id: "deal-2".into(),
        account_id: "acc-1".into(),
        amount: Some(2500.0),
        stage: Some(stage.into()),
        description: None,
    };
    app.mirror_deal_written(m.tenant, Provider::Crono, &change("qualification"), false)
        .await;
    let edited = app
        .store
        .mirror_deal(m.tenant, Provider::Crono, "deal-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (edited.amount, edited.stage.as_str()),
        (Some(2500.0), "qualification")
    );

    // Lost in Crono: the delta lists it closed, and it leaves.
    m.crono.set_deal_stage("deal-1", "closedlost");
    let run = m.sync().await;
    assert_eq!(m.open_deals().await, ["deal-2"]);
    assert!(run.removed >= 1, "{run:?}");

    // Deleted in Crono: no listing says so; the next sweep does not see it, and it leaves.
    m.crono.delete("deal-2");
    m.sync().await;
    assert_eq!(
        m.open_deals().await,
        ["deal-2"],
        "a delta cannot see a deletion"
    );
    let store = &m.app().store;
    let mut cursor = store
        .sync_cursor(m.tenant, Provider::Crono, MirrorObject::Deals)
        .await
        .unwrap();
    cursor.last_sweep_at = None; // as when CRM_SYNC_SWEEP_INTERVAL_SECS has passed
    store.put_sync_cursor(&cursor).await.unwrap();
    m.sync().await;
    assert!(m.open_deals().await.is_empty());
    let cursor = store
        .sync_cursor(m.tenant, Provider::Crono, MirrorObject::Deals)
        .await
        .unwrap();
    assert!(cursor.last_sweep_at.is_some());
    m.w.stop().await;
}

async fn the_pause_switch_stops_every_sync(backend: Backend) {
    let mut m = M::new(backend, 0).await;
    let app = m.app();
    let admin = app.store.ensure_user(m.tenant, "U0ADMIN").await.unwrap();
    app.set_crm_sync_paused(m.tenant, admin.id, true)
        .await
        .unwrap();
    let run = m.sync().await;
    assert!(run.paused);
    assert_eq!(
        m.crono.requests().len(),
        0,
        "nothing asked of Crono while paused"
    );
    followup_bot::features::crm::sync_once(app).await.unwrap();
    assert_eq!(m.crono.requests().len(), 0);
    let status = app.crm_sync_status(m.tenant).await.unwrap();
    assert!(status.paused);
    assert_eq!(status.paused_by, Some(admin.id));
    assert!(
        status
            .objects
            .iter()
            .all(|o| !o.ready && o.last_run.is_none())
    );

    app.set_crm_sync_paused(m.tenant, admin.id, false)
        .await
        .unwrap();
    let run = m.sync().await;
    assert!(!run.paused);
    assert!(m.crono.listings("/Accounts/search").len() == 1);
    let status = app.crm_sync_status(m.tenant).await.unwrap();
    assert!(!status.paused);
    assert_eq!(status.provider, Some(Provider::Crono));
    assert_eq!(
        (
            status.counts.accounts,
            status.counts.contacts,
            status.counts.deals
        ),
        (2, 2, 2)
    );
    assert!(
        status
            .objects
            .iter()
            .all(|o| o.ready && o.last_run.is_some())
    );
    let audit = app.store.audit_entries(m.tenant).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert!(actions.contains(&"crm_sync_paused"), "{actions:?}");
    assert!(actions.contains(&"crm_sync_resumed"), "{actions:?}");

    // A Slack admin disconnects the CRM: nothing of its records stays mirrored.
    m.slack.set_user(
        "U0ADMIN",
        serde_json::json!({ "id": "U0ADMIN", "team_id": TEAM, "is_admin": true,
            "real_name": "Ann Admin", "profile": { "email": "ann@seller.example" } }),
    );
    let (_, url_id) = m.command("U0ADMIN", "/crono-disconnect").await;
    m.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    let left = app
        .store
        .mirror_counts(m.tenant, Provider::Crono)
        .await
        .unwrap();
    assert_eq!((left.accounts, left.contacts, left.deals), (0, 0, 0));
    m.w.stop().await;
}

#[tokio::test]
async fn a_backfill_in_bounded_pages_then_a_delta_on_last_modified_sqlite() {
    backfill_in_pages_then_a_delta(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_backfill_in_bounded_pages_then_a_delta_on_last_modified_postgres() {
    backfill_in_pages_then_a_delta(Backend::Postgres).await;
}

#[tokio::test]
async fn closed_and_deleted_deals_leave_the_mirrors_open_list_sqlite() {
    closed_and_deleted_deals_leave_the_open_list(Backend::Sqlite).await;
}

#[tokio::test]
async fn closed_and_deleted_deals_leave_the_mirrors_open_list_postgres() {
    closed_and_deleted_deals_leave_the_open_list(Backend::Postgres).await;
}

#[tokio::test]
async fn the_pause_switch_stops_every_sync_of_the_team_sqlite() {
    the_pause_switch_stops_every_sync(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_pause_switch_stops_every_sync_of_the_team_postgres() {
    the_pause_switch_stops_every_sync(Backend::Postgres).await;
}

#[tokio::test]
async fn autocomplete_answers_from_the_mirror_while_crono_takes_5_s_a_search() {
    let mut m = M::new(Backend::Sqlite, 0).await;
    m.sync().await;
    m.crono.set_search_delay(Duration::from_secs(5));
    let contacts = m.suggest("crm_contact", "mar").await;
    assert!(
        contacts
            .iter()
            .any(|l| l.starts_with("Marco Rossi (Acme Corp)")),
        "{contacts:?}"
    );
    assert!(
        contacts.iter().any(|l| l.starts_with("Maria Bianchi")),
        "{contacts:?}"
    );
    let accounts = m.suggest("crm_account", "acme l").await;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert!(accounts[0].starts_with("Acme Labs"), "{accounts:?}");
    let none = m.suggest("crm_contact", "zzz").await;
    assert_eq!(none, ["No contacts found"]);
    assert_eq!(
        m.crono.searches("/Prospects/search"),
        0,
        "Crono was not searched"
    );
    assert_eq!(m.crono.searches("/Accounts/search"), 0);
    m.w.stop().await;
}

#[tokio::test]
async fn autocomplete_searches_crono_while_the_mirror_is_empty() {
    let mut m = M::new(Backend::Sqlite, 0).await;
    let contacts = m.suggest("crm_contact", "mar").await;
    assert!(
        contacts.iter().any(|l| l.starts_with("Marco Rossi")),
        "{contacts:?}"
    );
    assert_eq!(m.crono.searches("/Prospects/search"), 1);
    // Paused before any backfill: still Crono, as the mirror is still empty.
    let app = m.app();
    let admin = app.store.ensure_user(m.tenant, "U0ADMIN").await.unwrap();
    app.set_crm_sync_paused(m.tenant, admin.id, true)
        .await
        .unwrap();
    m.sync().await;
    let accounts = m.suggest("crm_account", "acme").await;
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    assert_eq!(m.crono.searches("/Accounts/search"), 1);
    m.w.stop().await;
}

#[tokio::test]
async fn the_followups_account_is_matched_from_the_mirror() {
    let mut m = M::new(Backend::Sqlite, 0).await;
    m.sync().await;
    m.crono.set_search_delay(Duration::from_secs(5));
    let id =
        m.w.followup_with(
            41,
            "Acme discovery",
            &[("Marco Rossi", "marco@acme.example")],
        )
        .await;
    // CRM Note: Marco's exact email, found in the mirror, names Acme Corp.
    let click = m.w.click(ADA, "followup_crm_note", &id, "note-1");
    m.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let notes = m.crono.wait_for_notes(1).await;
    assert_eq!(notes[0]["accountId"], "acc-1");
    assert_eq!(notes[0]["prospectIds"], json!(["pr-1"]));
    assert_eq!(
        m.crono.searches("/Prospects/search"),
        0,
        "matched without Crono"
    );
    assert_eq!(m.crono.searches("/Accounts/search"), 0);
    m.w.stop().await;
}
