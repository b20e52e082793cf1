//! The CRM mirror with HubSpot, Zoho and Odoo, end to end through the bot (Crono's is in
//! `mirror`): a team connected as an admin connects it (HubSpot and Zoho through the OAuth
//! routes, Odoo with its stored keys), then a first sync backfills accounts, contacts and
//! open deals (found by autocomplete without asking the CRM), a delta picks up what changed
//! after the cursor and, once the cursor has moved past them, no longer lists what did not
//! change, a deal closed by that CRM's own rule leaves the open list with the next delta, and
//! a deleted deal and contact leave with the next sweep.

use super::crm_oauth::O as OAuthTeam;
use super::crm_odoo::O as OdooTeam;
use super::*;
use crate::support::fake_zoho::Region;
use followup_bot::clients::crm::odoo::Protocol;
use followup_bot::domain::crm::MirrorObject;
use followup_bot::domain::ids::TenantId;
use followup_bot::features::crm::{TeamRun, sync_team};
use followup_bot::services::Services;
use followup_bot::store::mirror::{SyncMode, SyncRun};

const SETTINGS: &[(&str, &str)] = &[
    ("CRM_REQUESTS_PER_SECOND", "11"),
    ("CRM_SYNC_PAGES_PER_RUN", "5"),
];

/// The team's mirror of one CRM, as the store keeps it.
struct Mirror<'a> {
    w: &'a World,
    tenant: TenantId,
    provider: Provider,
}

impl Mirror<'_> {
    fn app(&self) -> &Services {
        self.w.app()
    }

    /// One run of the team's sync, which must not fail.
    async fn sync(&self) -> TeamRun {
        let run = sync_team(self.app(), self.tenant).await.unwrap();
        assert!(run.errors.is_empty() && !run.paused, "{run:?}");
        run
    }

    async fn counts(&self) -> (i64, i64, i64) {
        let c = self
            .app()
            .store
            .mirror_counts(self.tenant, self.provider)
            .await
            .unwrap();
        (c.accounts, c.contacts, c.deals)
    }

    /// The account's open deals' ids, by name.
    async fn open_deals(&self, account: &str) -> Vec<String> {
        let deals = self
            .app()
            .mirror_open_deals(self.tenant, self.provider, account)
            .await
            .unwrap()
            .expect("the deals' backfill has ended");
        deals.into_iter().map(|d| d.id).collect()
    }

    /// (id, name, account name) of the contacts the mirror finds for `query`.
    async fn contacts(&self, query: &str) -> Vec<(String, String, Option<String>)> {
        let found = self
            .app()
            .store
            .mirror_search_contacts(self.tenant, self.provider, query, 20)
            .await
            .unwrap();
        found
            .into_iter()
            .map(|c| (c.id, c.name, c.account_name))
            .collect()
    }

    async fn account_name(&self, id: &str) -> String {
        self.app()
            .store
            .mirror_account(self.tenant, self.provider, id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("account {id} is mirrored"))
            .name
    }

    async fn since(&self, object: MirrorObject) -> chrono::DateTime<chrono::Utc> {
        let cursor = self
            .app()
            .store
            .sync_cursor(self.tenant, self.provider, object)
            .await
            .unwrap();
        cursor.since.expect("a delta cursor after the backfill")
    }

    /// The last run of `object` in the sync log.
    async fn last_run(&self, object: MirrorObject) -> SyncRun {
        let runs = self
            .app()
            .store
            .sync_runs(self.tenant, self.provider, 50)
            .await
            .unwrap();
        runs.into_iter()
            .find(|r| r.object == object.as_str())
            .expect("a run in the log")
    }

    /// As when `CRM_SYNC_SWEEP_INTERVAL_SECS` has passed since the last full listing.
    async fn sweep_due(&self, object: MirrorObject) {
        let store = &self.app().store;
        let mut cursor = store
            .sync_cursor(self.tenant, self.provider, object)
            .await
            .unwrap();
        cursor.last_sweep_at = None;
        store.put_sync_cursor(&cursor).await.unwrap();
    }

    /// Autocomplete answered in the ack of a `block_suggestion`.
    async fn suggest(&self, action: &str, query: &str) -> Vec<String> {
        let envelope = payloads::block_suggestion_in(TEAM, ADA, "b", action, query, None);
        let ack = self
            .w
            .slack
            .wait_for_ack(&self.w.send(envelope), WAIT)
            .await
            .unwrap();
        ack.payload.expect("options in the ack")["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["text"]["text"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The first backfill's common checks: every object ready, with a delta cursor, listed
    /// in full (`ok`), and autocomplete answering Marco and Acme Labs from the mirror.
    async fn backfilled(&self, marco: &str, acme: &str) {
        for object in MirrorObject::ALL {
            let run = self.last_run(object).await;
            assert_eq!(
                (run.mode.as_str(), run.outcome.as_str()),
                ("backfill", "ok"),
                "{run:?}"
            );
            let cursor = self
                .app()
                .store
                .sync_cursor(self.tenant, self.provider, object)
                .await
                .unwrap();
            assert!(cursor.since.is_some() && cursor.last_sweep_at.is_some());
            assert_eq!(cursor.after, None);
        }
        assert_eq!(
            self.contacts("marco").await,
            [(
                marco.to_owned(),
                "Marco Rossi".to_owned(),
                Some("Acme Corp".to_owned())
            )]
        );
        let contacts = self.suggest("crm_contact", "mar").await;
        assert!(
            contacts
                .iter()
                .any(|l| l.starts_with("Marco Rossi (Acme Corp)")),
            "{contacts:?}"
        );
        assert!(
            contacts
                .iter()
                .any(|l| l.starts_with("Maria Bianchi (Acme Labs)")),
            "{contacts:?}"
        );
        let accounts = self.suggest("crm_account", "acme l").await;
        assert_eq!(accounts.len(), 1, "{accounts:?}");
        assert!(accounts[0].starts_with("Acme Labs"), "{accounts:?}");
        assert_eq!(self.account_name(acme).await, "Acme Corp");
    }

    /// After Marco was renamed Marcello, Acme Labs Acme Laboratories and Giulia added to
    /// Acme Corp (all after the cursor), and a delta ran: the mirror has the changes; then a
    /// delta with nothing changed lists only what changed within the skew, not Maria nor
    /// Acme Corp.
    async fn delta_applied(&self, marco: &str, giulia: &str, maria: &str, labs: &str) {
        let acme = Some("Acme Corp".to_owned());
        assert_eq!(
            self.contacts("marcello").await,
            [(marco.to_owned(), "Marcello Rossi".to_owned(), acme.clone())]
        );
        assert_eq!(
            self.contacts("giulia").await,
            [(giulia.to_owned(), "Giulia Verdi".to_owned(), acme)]
        );
        assert!(
            self.suggest("crm_contact", "marco r").await == ["No contacts found"],
            "the old name left"
        );
        assert_eq!(self.account_name(labs).await, "Acme Laboratories");
        // Maria's account, renamed: her label says its new name.
        assert_eq!(
            self.contacts("maria").await,
            [(
                maria.to_owned(),
                "Maria Bianchi".to_owned(),
                Some("Acme Laboratories".to_owned())
            )]
        );
        let contacts = self.suggest("crm_contact", "marcello").await;
        assert!(
            contacts
                .iter()
                .any(|l| l.starts_with("Marcello Rossi (Acme Corp)")),
            "{contacts:?}"
        );
        let run = self.last_run(MirrorObject::Contacts).await;
        assert_eq!((run.mode.as_str(), run.outcome.as_str()), ("delta", "ok"));
        assert!(run.upserted >= 2, "{run:?}");

        // Nothing changed since: the cursor has moved past Maria and Acme Corp.
        let since = self.since(MirrorObject::Contacts).await;
        assert!(
            since > chrono::Utc::now() - chrono::Duration::minutes(6),
            "the cursor moved to the delta's start less the skew: {since}"
        );
        self.sync().await;
        let contacts = self.last_run(MirrorObject::Contacts).await;
        assert_eq!(
            (contacts.mode.as_str(), contacts.upserted),
            ("delta", 2),
            "Marcello and Giulia only (changed within the skew): {contacts:?}"
        );
        let accounts = self.last_run(MirrorObject::Accounts).await;
        assert_eq!(
            (accounts.mode.as_str(), accounts.upserted),
            ("delta", 1),
            "Acme Laboratories only: {accounts:?}"
        );
    }

    /// The deal and contact deleted in the CRM: a delta cannot see it, the next sweep does.
    async fn deletions_swept(&self, account: &str, open_before: &[&str], open_after: &[&str]) {
        let counts = self.counts().await;
        self.sync().await;
        assert_eq!(
            self.open_deals(account).await,
            open_before,
            "a delta cannot see a deletion"
        );
        assert_eq!(self.counts().await, counts);
        let started = chrono::Utc::now();
        for object in [MirrorObject::Contacts, MirrorObject::Deals] {
            self.sweep_due(object).await;
        }
        let run = self.sync().await;
        assert_eq!(self.open_deals(account).await, open_after);
        assert_eq!(
            self.counts().await,
            (counts.0, counts.1 - 1, counts.2 - 1),
            "the deleted contact and deal left, nothing else"
        );
        assert!(run.removed >= 2, "{run:?}");
        for object in [MirrorObject::Contacts, MirrorObject::Deals] {
            let run = self.last_run(object).await;
            assert_eq!(
                (run.mode.as_str(), run.outcome.as_str(), run.removed),
                ("sweep", "ok", 1),
                "{run:?}"
            );
            let cursor = self
                .app()
                .store
                .sync_cursor(self.tenant, self.provider, object)
                .await
                .unwrap();
            assert!(cursor.last_sweep_at.is_some_and(|t| t >= started));
            assert_eq!(cursor.mode, SyncMode::Sweep);
        }
        // Accounts were not due: a delta still.
        assert_eq!(self.last_run(MirrorObject::Accounts).await.mode, "delta");
    }
}

async fn hubspot_mirror(backend: Backend) {
    let mut o = OAuthTeam::with(backend, SETTINGS).await;
    let hub = o.hub.clone();
    hub.add_company("101", "Acme Corp", "acme.example");
    hub.add_company("102", "Acme Labs", "acmelabs.example");
    hub.add_contact("201", "Marco", "Rossi", "marco@acme.example", "101");
    hub.add_contact("202", "Maria", "Bianchi", "maria@acmelabs.example", "102");
    hub.add_deal("301", "101", "Acme pilot", "presentationscheduled", 10000.0);
    hub.add_deal("302", "101", "Acme upsell", "qualifiedtobuy", 2000.0);
    hub.add_deal("303", "101", "Acme old win", "closedwon", 3000.0);
    // Closed by the pipeline's isClosed only ("Contract signed"), and open though named
    // "Closed-loop review".
    hub.add_deal("304", "101", "Acme signed", "1234567", 4000.0);
    hub.add_deal("305", "101", "Acme review", "7654321", 500.0);
    hub.add_deal("306", "102", "Labs deal", "appointmentscheduled", 1.0);
    o.connect_hubspot().await;
    let tenant = o.tenant().await;
    {
        let m = Mirror {
            w: &o.w,
            tenant,
            provider: Provider::Hubspot,
        };

        // 1. The backfill.
        let run = m.sync().await;
        assert_eq!(m.counts().await, (2, 2, 4));
        assert_eq!(m.open_deals("101").await, ["301", "305", "302"]);
        assert_eq!(m.open_deals("102").await, ["306"]);
        assert!(run.upserted >= 8, "{run:?}");
        let searches = hub.count("POST", "/crm/v3/objects/contacts/search");
        m.backfilled("201", "101").await;
        assert_eq!(
            hub.count("POST", "/crm/v3/objects/contacts/search"),
            searches,
            "autocomplete did not search HubSpot"
        );
        assert_eq!(hub.count("POST", "/crm/v3/objects/companies/search"), 1);

        // 2. Changed after the cursor: the delta asks for what changed since it.
        let since = m.since(MirrorObject::Contacts).await;
        hub.touch("contacts", "201", json!({ "firstname": "Marcello" }));
        hub.touch("companies", "102", json!({ "name": "Acme Laboratories" }));
        hub.add_contact("203", "Giulia", "Verdi", "giulia@acme.example", "101");
        hub.touch("contacts", "203", json!({}));
        let before = hub.requests().len();
        m.sync().await;
        let sent = hub.requests()[before..]
            .iter()
            .find(|(_, path, _)| path.ends_with("/contacts/search"))
            .expect("contacts listed")
            .2
            .clone();
        let filters = sent["filterGroups"][0]["filters"].clone();
        assert_eq!(
            filters,
            json!([{ "propertyName": "lastmodifieddate", "operator": "GTE",
                     "value": since.timestamp_millis().to_string() }]),
            "{sent}"
        );
        assert_eq!(m.counts().await, (2, 3, 4));
        m.delta_applied("201", "203", "202", "102").await;

        // 3. Closed by isClosed ("Contract signed"): the delta lists it closed, it leaves.
        hub.touch("deals", "301", json!({ "dealstage": "1234567" }));
        let run = m.sync().await;
        assert_eq!(m.open_deals("101").await, ["305", "302"]);
        assert_eq!(m.last_run(MirrorObject::Deals).await.removed, 1, "{run:?}");

        // Deleted: the sweep lists everything, without a modified-since filter.
        hub.delete("deals", "302");
        hub.delete("contacts", "202");
        let before = hub.requests().len();
        m.deletions_swept("101", &["305", "302"], &["305"]).await;
        let swept = hub.requests()[before..]
            .iter()
            .rev()
            .find(|(_, path, _)| path.ends_with("/deals/search"))
            .unwrap()
            .2
            .clone();
        let filters = swept["filterGroups"][0]["filters"].as_array().cloned();
        assert!(
            filters
                .unwrap_or_default()
                .iter()
                .all(|f| f["propertyName"] != "hs_lastmodifieddate"),
            "{swept}"
        );
        assert_eq!(m.open_deals("102").await, ["306"]);
    }
    o.w.stop().await;
}

async fn zoho_mirror(backend: Backend) {
    let mut o = OAuthTeam::with(backend, SETTINGS).await;
    let zoho = o.zoho.clone();
    zoho.add_account("z1", "Acme Corp", "https://www.acme.example/");
    zoho.add_account("z2", "Acme Labs", "acmelabs.example");
    zoho.add_contact("zc1", "Marco", "Rossi", "marco@acme.example", "z1");
    zoho.add_contact("zc2", "Maria", "Bianchi", "maria@acmelabs.example", "z2");
    zoho.add_deal("zd1", "z1", "Acme pilot", "Negotiation/Review", 10000.0);
    zoho.add_deal("zd2", "z1", "Acme upsell", "Qualification", 2000.0);
    zoho.add_deal("zd3", "z1", "Acme old win", "Closed Won", 3000.0);
    zoho.add_deal(
        "zd4",
        "z1",
        "Acme lost",
        "Closed Lost to Competition",
        2000.0,
    );
    // Won by its forecast type only.
    zoho.add_deal("zd5", "z1", "Acme signed", "Signed", 4000.0);
    zoho.add_deal("zd6", "z2", "Labs deal", "Needs Analysis", 1.0);
    o.connect_zoho(Region::Eu).await;
    let tenant = o.tenant().await;
    {
        let m = Mirror {
            w: &o.w,
            tenant,
            provider: Provider::Zoho,
        };

        // 1. The backfill, in the EU data centre.
        m.sync().await;
        assert_eq!(m.counts().await, (2, 2, 3));
        assert_eq!(m.open_deals("z1").await, ["zd1", "zd2"]);
        assert_eq!(m.open_deals("z2").await, ["zd6"]);
        let listed = |module: &str| {
            zoho.requests()
                .into_iter()
                .filter(|(region, method, path, _)| {
                    *region == Region::Eu
                        && method == "GET"
                        && path.starts_with(&format!("/crm/v8/{module}?"))
                })
                .map(|(_, _, path, _)| path)
                .collect::<Vec<_>>()
        };
        let contacts = listed("Contacts");
        assert_eq!(contacts.len(), 1, "{contacts:?}");
        assert!(
            contacts[0].contains("sort_by=Modified_Time") && contacts[0].contains("page=1"),
            "{contacts:?}"
        );
        let searches = zoho.count("GET", "/crm/v8/Contacts/search");
        m.backfilled("zc1", "z1").await;
        assert_eq!(
            zoho.count("GET", "/crm/v8/Contacts/search"),
            searches,
            "autocomplete did not search Zoho"
        );

        // 2. Changed after the cursor (If-Modified-Since leaves the rest out).
        zoho.touch("Contacts", "zc1", json!({ "Full_Name": "Marcello Rossi" }));
        zoho.touch(
            "Accounts",
            "z2",
            json!({ "Account_Name": "Acme Laboratories" }),
        );
        zoho.add_contact("zc3", "Giulia", "Verdi", "giulia@acme.example", "z1");
        zoho.touch("Contacts", "zc3", json!({}));
        m.sync().await;
        assert_eq!(listed("Contacts").len(), 2);
        assert_eq!(m.counts().await, (2, 3, 3));
        m.delta_applied("zc1", "zc3", "zc2", "z2").await;

        // 3. Moved to "Signed", won by its forecast type: the delta lists it closed.
        zoho.touch("Deals", "zd1", json!({ "Stage": "Signed" }));
        m.sync().await;
        assert_eq!(m.open_deals("z1").await, ["zd2"]);
        assert_eq!(m.last_run(MirrorObject::Deals).await.removed, 1);

        // Deleted: the next sweep does not see them.
        zoho.delete("zd2");
        zoho.delete("zc2");
        m.deletions_swept("z1", &["zd2"], &[]).await;
        assert_eq!(m.open_deals("z2").await, ["zd6"]);
        assert_eq!(
            zoho.requests()
                .iter()
                .filter(|(region, ..)| *region == Region::Us)
                .count(),
            0,
            "nothing asked of the other data centre"
        );
    }
    o.w.stop().await;
}

async fn odoo_mirror(backend: Backend, protocol: Protocol) {
    // Companies 10 Acme Corp and 20 Acme Labs; Marco (11) of Acme Corp, Maria (21) of Labs.
    let mut o = OdooTeam::with(backend, protocol, SETTINGS).await;
    let odoo = o.odoo.clone();
    odoo.add_lead(1, 10, "Acme pilot", 3, 10000.0, true);
    odoo.add_lead(2, 10, "Acme upsell", 1, 2000.0, true);
    odoo.add_lead(3, 10, "Acme old win", 4, 3000.0, true); // the won stage
    odoo.add_lead(4, 10, "Acme lost bid", 2, 2000.0, false); // archived: lost
    odoo.add_lead(5, 11, "Marco's seats", 1, 500.0, true); // Marco's: Acme Corp's
    odoo.add_lead(6, 20, "Labs deal", 2, 1.0, true);
    let tenant = o.app().store.ensure_tenant(TEAM).await.unwrap().id;
    {
        let m = Mirror {
            w: &o.w,
            tenant,
            provider: Provider::Odoo,
        };

        // 1. The backfill.
        m.sync().await;
        assert_eq!(m.counts().await, (2, 2, 4));
        assert_eq!(m.open_deals("10").await, ["1", "2", "5"]);
        assert_eq!(m.open_deals("20").await, ["6"]);
        let partner_searches = || {
            odoo.requests()
                .into_iter()
                .filter(|(_, model, method, _)| model == "res.partner" && method == "search_read")
                .count()
        };
        let searches = partner_searches();
        m.backfilled("11", "10").await;
        assert_eq!(
            partner_searches(),
            searches,
            "autocomplete did not ask Odoo"
        );

        // 2. Changed after the cursor: `write_date >=` it.
        let since = m.since(MirrorObject::Contacts).await;
        odoo.touch("res.partner", 11, json!({ "name": "Marcello Rossi" }));
        odoo.touch("res.partner", 20, json!({ "name": "Acme Laboratories" }));
        odoo.add_person(12, "Giulia Verdi", "giulia@acme.example", 10);
        odoo.touch("res.partner", 12, json!({}));
        let before = odoo.requests().len();
        m.sync().await;
        let domains: Vec<String> = odoo.requests()[before..]
            .iter()
            .filter(|(_, model, ..)| model == "res.partner")
            .map(|(.., sent)| sent.to_string())
            .collect();
        let cursor = since.format("%Y-%m-%d %H:%M:%S").to_string();
        assert!(
            domains
                .iter()
                .any(|d| d.contains(&format!(r#"["write_date",">=","{cursor}"]"#))),
            "{domains:?}"
        );
        assert_eq!(m.counts().await, (2, 3, 4));
        m.delta_applied("11", "12", "21", "20").await;

        // 3. Won (its stage is_won) and lost (archived): the delta lists both closed.
        odoo.touch("crm.lead", 1, json!({ "stage_id": [4, "Won"] }));
        odoo.touch("crm.lead", 2, json!({ "active": false }));
        m.sync().await;
        assert_eq!(m.open_deals("10").await, ["5"]);
        assert_eq!(m.last_run(MirrorObject::Deals).await.removed, 2);

        // Deleted (unlinked): the next sweep does not see them.
        odoo.unlink("crm.lead", 5);
        odoo.unlink("res.partner", 21);
        m.deletions_swept("10", &["5"], &[]).await;
        assert_eq!(m.open_deals("20").await, ["6"]);
    }
    o.w.stop().await;
}

#[tokio::test]
async fn hubspot_mirror_backfill_delta_closed_and_deleted_sqlite() {
    hubspot_mirror(Backend::Sqlite).await;
}

#[tokio::test]
async fn hubspot_mirror_backfill_delta_closed_and_deleted_postgres() {
    hubspot_mirror(Backend::Postgres).await;
}

#[tokio::test]
async fn zoho_mirror_backfill_delta_closed_and_deleted_sqlite() {
    zoho_mirror(Backend::Sqlite).await;
}

#[tokio::test]
async fn zoho_mirror_backfill_delta_closed_and_deleted_postgres() {
    zoho_mirror(Backend::Postgres).await;
}

#[tokio::test]
async fn odoo_mirror_backfill_delta_closed_and_deleted_over_json2_sqlite() {
    odoo_mirror(Backend::Sqlite, Protocol::Json2).await;
}

#[tokio::test]
async fn odoo_mirror_backfill_delta_closed_and_deleted_over_jsonrpc_postgres() {
    odoo_mirror(Backend::Postgres, Protocol::Jsonrpc).await;
}
