//! `Crm::list_changed` of HubSpot, Zoho and Odoo against their fakes: a full listing in
//! pages, a delta on the provider's modified-since field, closed deals listed as not open,
//! and the deal's account. (Crono's runs end to end in `followup::mirror`.)

use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_hubspot::FakeHubSpot;
use crate::support::fake_odoo::{self, FakeOdoo};
use crate::support::fake_zoho::{FakeZoho, Region};
use followup_bot::clients::crm::hubspot::HubSpot;
use followup_bot::clients::crm::odoo::{Odoo, OdooKeys, Protocol};
use followup_bot::clients::crm::zoho::Zoho;
use followup_bot::clients::crm::{Calls, Crm, Guard, Limits};
use followup_bot::domain::crm::{Listed, Listing, MirrorObject, Record};
use followup_bot::domain::ids::TenantId;
use followup_bot::domain::provider::Provider;
use secrecy::SecretString;
use serde_json::json;

fn guard(provider: Provider) -> Guard {
    Guard {
        limits: Limits::new(11),
        tenant: TenantId(1),
        provider,
        calls: Calls::Read,
    }
}

/// Every page of a listing; the pages' count too.
async fn all(
    crm: &dyn Crm,
    object: MirrorObject,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> (Vec<Record>, usize, Listed) {
    let mut listing = Listing { since, after: None };
    let mut records = Vec::new();
    let mut pages = 0;
    loop {
        let page = crm.list_changed(object, &listing).await.unwrap();
        pages += 1;
        records.extend(page.records.clone());
        match page.next.clone() {
            Some(next) => listing.after = Some(next),
            None => return (records, pages, page),
        }
        assert!(pages < 100, "a listing that never ends");
    }
}

fn ids(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.id().to_owned()).collect()
}

fn open_deals(records: &[Record]) -> Vec<(String, String)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Deal { deal, open: true } => Some((deal.id.clone(), deal.account_id.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn hubspot_lists_by_id_keyset_and_lastmodifieddate() {
    crate::support::init();
    let fake = FakeHubSpot::start("hs-client", "hs-secret").await;
    let token = fake.issue_access_token();
    fake.add_company("900", "Acme Corp", "acme.example");
    for n in 0..250u32 {
        fake.add_contact(
            &format!("{}", 1000 + n),
            "Person",
            &format!("N{n}"),
            &format!("p{n}@acme.example"),
            "900",
        );
    }
    fake.add_deal("5001", "900", "Renewal", "qualifiedtobuy", 100.0);
    fake.add_deal("5002", "900", "Signed", "1234567", 100.0); // closed by metadata only
    fake.add_deal("5003", "900", "Review", "7654321", 100.0); // open, "Closed-" in its name
    let crm = HubSpot::new(followup_bot::clients::http_client(), &fake.api_url(), None)
        .session(SecretString::from(token), guard(Provider::Hubspot));

    let (contacts, pages, _) = all(&*crm, MirrorObject::Contacts, None).await;
    assert_eq!(pages, 3, "pages of 100");
    assert_eq!(contacts.len(), 250);
    let mut seen = ids(&contacts);
    seen.dedup();
    assert_eq!(seen.len(), 250, "no repeats, nothing skipped");
    let searches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|(_, p, _)| p.ends_with("/contacts/search"))
        .collect();
    assert_eq!(searches[0].2["sorts"][0]["propertyName"], "hs_object_id");
    assert_eq!(
        searches[1].2["filterGroups"][0]["filters"][0]["operator"],
        "GT"
    );
    assert_eq!(
        searches[1].2["filterGroups"][0]["filters"][0]["value"],
        "1099"
    );

    let (deals, _, _) = all(&*crm, MirrorObject::Deals, None).await;
    assert_eq!(
        open_deals(&deals),
        [
            ("5001".to_owned(), "900".to_owned()),
            ("5003".to_owned(), "900".to_owned())
        ]
    );
    assert_eq!(deals.len(), 3, "the closed one is listed, as not open");

    // A delta: only what changed since the cursor (contacts on `lastmodifieddate`).
    let cursor = chrono::Utc::now() - chrono::Duration::seconds(1);
    fake.touch("contacts", "1007", json!({ "firstname": "Renamed" }));
    fake.touch("deals", "5001", json!({ "dealstage": "closedlost" }));
    let (changed, pages, last) = all(&*crm, MirrorObject::Contacts, Some(cursor)).await;
    assert_eq!((ids(&changed), pages), (vec!["1007".to_owned()], 1));
    assert!(last.newest.is_some_and(|n| n >= cursor));
    let sent = fake.requests().last().unwrap().2.clone();
    let filters = sent["filterGroups"][0]["filters"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        filters
            .iter()
            .any(|f| f["propertyName"] == "lastmodifieddate" && f["operator"] == "GTE"),
        "{sent}"
    );
    let (changed, _, _) = all(&*crm, MirrorObject::Deals, Some(cursor)).await;
    assert!(matches!(&changed[..], [Record::Deal { open: false, deal }] if deal.id == "5001"));
    let sent = fake
        .requests()
        .iter()
        .rev()
        .find(|(_, p, _)| p.ends_with("/deals/search"))
        .unwrap()
        .2
        .clone();
    assert!(sent.to_string().contains("hs_lastmodifieddate"), "{sent}");
}

#[tokio::test]
async fn zoho_lists_on_modified_time_with_if_modified_since() {
    crate::support::init();
    let fake = FakeZoho::start("zoho-client", "zoho-secret").await;
    let token = fake.issue_access_token(Region::Eu);
    fake.add_account("z-1", "Acme Corp", "https://acme.example");
    for n in 0..450u32 {
        fake.add_contact(
            &format!("zc-{n:03}"),
            "Person",
            &format!("N{n}"),
            &format!("p{n}@acme.example"),
            "z-1",
        );
    }
    fake.add_deal("zd-1", "z-1", "Renewal", "Qualification", 10.0);
    fake.add_deal("zd-2", "z-1", "Signed deal", "Signed", 10.0); // won by forecast type
    let zoho = Zoho::new(followup_bot::clients::http_client(), None, Vec::new());
    let crm: Arc<dyn Crm> = zoho.session(
        &fake.api_domain(Region::Eu),
        SecretString::from(token),
        guard(Provider::Zoho),
    );
    let (contacts, pages, _) = all(&*crm, MirrorObject::Contacts, None).await;
    assert_eq!((contacts.len(), pages), (450, 3), "pages of 200");
    let Record::Contact(first) = &contacts[0] else {
        panic!("a contact");
    };
    assert_eq!(first.account_id.as_deref(), Some("z-1"));
    let (deals, _, _) = all(&*crm, MirrorObject::Deals, None).await;
    assert_eq!(open_deals(&deals), [("zd-1".to_owned(), "z-1".to_owned())]);

    // Nothing changed since: 304, an empty page.
    let cursor = chrono::Utc::now() - chrono::Duration::seconds(1);
    let (none, pages, _) = all(&*crm, MirrorObject::Contacts, Some(cursor)).await;
    assert_eq!((none.len(), pages), (0, 1));
    fake.touch(
        "Contacts",
        "zc-042",
        json!({ "Full_Name": "Renamed Person" }),
    );
    let (changed, _, last) = all(&*crm, MirrorObject::Contacts, Some(cursor)).await;
    assert_eq!(ids(&changed), ["zc-042"]);
    assert!(last.newest.is_some());
    let (_, _, path, _) = fake.requests().last().unwrap().clone();
    assert!(path.contains("sort_by=Modified_Time"), "{path}");
}

#[tokio::test]
async fn odoo_lists_on_write_date_with_archived_opportunities() {
    crate::support::init();
    let fake = FakeOdoo::start().await;
    fake.add_key("odoo-key-mirror");
    fake.add_company(10, "Acme Corp", "https://acme.example");
    for n in 0..130 {
        fake.add_person(
            100 + n,
            &format!("Person {n}"),
            &format!("p{n}@acme.example"),
            10,
        );
    }
    fake.add_lead(500, 10, "Renewal", 2, 100.0, true);
    fake.add_lead(501, 10, "Lost one", 2, 100.0, false); // archived: lost
    fake.add_lead(502, 10, "Won one", 4, 100.0, true);
    for protocol in [Protocol::Json2, Protocol::Jsonrpc] {
        let keys = OdooKeys {
            url: fake.url(),
            database: fake_odoo::DATABASE.into(),
            login: fake_odoo::LOGIN.into(),
            api_key: "odoo-key-mirror".into(),
            protocol: Some(protocol),
            uid: None,
        };
        let crm =
            Odoo::new(followup_bot::clients::http_client()).session(keys, guard(Provider::Odoo));
        let (contacts, pages, _) = all(&*crm, MirrorObject::Contacts, None).await;
        assert_eq!(
            (contacts.len(), pages),
            (130, 2),
            "{protocol:?}: pages of 100"
        );
        let (accounts, _, _) = all(&*crm, MirrorObject::Accounts, None).await;
        assert_eq!(ids(&accounts), ["10"]);
        let (deals, _, _) = all(&*crm, MirrorObject::Deals, None).await;
        assert_eq!(deals.len(), 3, "archived ones are listed too");
        assert_eq!(open_deals(&deals), [("500".to_owned(), "10".to_owned())]);
    }
    let keys = OdooKeys {
        url: fake.url(),
        database: fake_odoo::DATABASE.into(),
        login: fake_odoo::LOGIN.into(),
        api_key: "odoo-key-mirror".into(),
        protocol: Some(Protocol::Json2),
        uid: None,
    };
    let crm = Odoo::new(followup_bot::clients::http_client()).session(keys, guard(Provider::Odoo));
    let cursor = chrono::Utc::now() - chrono::Duration::seconds(2);
    tokio::time::sleep(Duration::from_millis(10)).await;
    fake.touch("res.partner", 142, json!({ "name": "Renamed" }));
    fake.touch("crm.lead", 500, json!({ "active": false }));
    let (changed, _, _) = all(&*crm, MirrorObject::Contacts, Some(cursor)).await;
    assert_eq!(ids(&changed), ["142"]);
    let (changed, _, _) = all(&*crm, MirrorObject::Deals, Some(cursor)).await;
    assert!(matches!(&changed[..], [Record::Deal { open: false, deal }] if deal.id == "500"));
    let (_, _, _, sent) = fake
        .requests()
        .into_iter()
        .rfind(|(_, model, _, _)| model == "crm.lead")
        .unwrap();
    assert!(sent.to_string().contains("write_date"), "{sent}");
}
