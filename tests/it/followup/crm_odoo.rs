//! The CRM with Odoo, end to end through the fake Slack against a fake Odoo that speaks JSON-2
//! and JSON-RPC: connecting (address, database, login, API key checked by authenticating,
//! the protocol found), search, open deals (lost = archived and won stages left out), a deal
//! update, notes via `message_post`, tasks as `mail.activity` on the person's local date, an
//! HTTP 429 and Odoo's own rate error retried, double submits making one record, and the
//! follow-up's CRM Note.

use super::crm::{ok_ack, settled};
use super::*;
use crate::support::fake_odoo::{self, FakeOdoo};
use crate::support::fake_slack::Ack;
use followup_bot::clients::crm::odoo::{OdooKeys, Protocol};
use followup_bot::store::Store;
use followup_bot::store::credentials::NewCredential;

const API_KEY: &str = "odoo-SECRETkey-0001";

fn person(user: &str, is_admin: bool) -> Value {
    json!({
        "id": user, "team_id": TEAM, "name": user.to_lowercase(), "real_name": "Ada Seller",
        "is_admin": is_admin, "is_owner": false, "tz": "Europe/Rome", "tz_offset": 3600,
        "profile": { "email": "ada@seller.example", "real_name": "Ada Seller" }
    })
}

fn connect_form(url: &str, database: &str, login: &str, key: &str) -> Value {
    payloads::state(&[
        (
            "provider",
            "value",
            payloads::static_select_input("odoo", "Odoo"),
        ),
        (
            "odoo_url",
            "value",
            json!({"type": "url_text_input", "value": url}),
        ),
        ("odoo_database", "value", payloads::text_input(database)),
        ("odoo_login", "value", payloads::text_input(login)),
        ("odoo_key", "value", payloads::text_input(key)),
    ])
}

fn errors_of(ack: &Ack) -> Value {
    let payload = ack.payload.clone().expect("field errors");
    assert_eq!(payload["response_action"], "errors", "{payload}");
    payload["errors"].clone()
}

#[tokio::test]
async fn odoo_connects_with_credentials_it_accepts_over_json2_or_jsonrpc() {
    let odoo = FakeOdoo::start().await;
    odoo.add_key(API_KEY);
    let old = FakeOdoo::start().await;
    old.add_key(API_KEY);
    old.without_json2();
    let world = World::new(Backend::Sqlite, false, &[]).await;
    let w = &world;
    w.slack.set_user(ADA, person(ADA, true));
    let app = w.app();
    let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
    // Crono was connected before: connecting Odoo replaces it.
    app.store
        .put_credential(
            &app.cipher,
            NewCredential {
                tenant: tenant.id,
                subject: Subject::Tenant,
                provider: Provider::Crono,
                secret: &secrecy::SecretString::from(
                    r#"{"public_key":"p","private_key":"q"}"#.to_owned(),
                ),
                account_email: None,
                api_domain: None,
                expires_at: None,
                scopes: None,
                metadata: json!({ "connected_by": "U0OLD" }),
            },
        )
        .await
        .unwrap();

    w.command(ADA, "/crono-connect").await;
    let opened = w.slack.wait_for_call("views.open", WAIT).await.unwrap();
    let modal = opened.response["view"].clone();
    let shown = text_of(&modal);
    assert!(
        shown.contains("Crono is connected (by <@U0OLD>)"),
        "{shown}"
    );
    assert!(shown.contains("odoo_url") && shown.contains("public_key"));
    let modal = &modal;
    let submit = |values: Value| {
        let envelope = payloads::view_submission_for(TEAM, ADA, modal, values);
        let id = w.send(envelope);
        async move { w.slack.wait_for_ack(&id, WAIT).await.unwrap() }
    };

    // Incomplete or unsafe forms: errors under the fields, Odoo not asked.
    let errors = errors_of(&submit(connect_form("", "", "", "")).await);
    for block in ["odoo_url", "odoo_database", "odoo_login", "odoo_key"] {
        assert!(errors[block].is_string(), "{errors}");
    }
    let errors = errors_of(
        &submit(connect_form(
            "http://odoo.acme.example",
            fake_odoo::DATABASE,
            fake_odoo::LOGIN,
            API_KEY,
        ))
        .await,
    );
    assert!(
        errors["odoo_url"].as_str().unwrap().contains("https://"),
        "{errors}"
    );
    assert!(odoo.requests().is_empty(), "nothing sent to Odoo");

    // A wrong key: refused by Odoo, nothing saved.
    let errors = errors_of(
        &submit(connect_form(
            &odoo.url(),
            fake_odoo::DATABASE,
            fake_odoo::LOGIN,
            "wrong-key",
        ))
        .await,
    );
    assert!(
        errors["odoo_key"]
            .as_str()
            .unwrap()
            .contains("did not accept"),
        "{errors}"
    );
    // A wrong database: said under the address.
    let errors =
        errors_of(&submit(connect_form(&odoo.url(), "nope", fake_odoo::LOGIN, API_KEY)).await);
    assert!(errors["odoo_url"].is_string(), "{errors}");
    let stored = |provider| async move {
        app.store
            .credential(&app.cipher, tenant.id, Subject::Tenant, provider)
            .await
            .unwrap()
    };
    assert!(stored(Provider::Odoo).await.is_none());

    // The right ones over JSON-2 (the address as pasted from the browser): saved sealed,
    // the protocol kept, Crono's keys gone, audited, confirmed.
    let ack = submit(connect_form(
        &format!("{}/odoo/", odoo.url()),
        fake_odoo::DATABASE,
        fake_odoo::LOGIN,
        API_KEY,
    ))
    .await;
    assert!(ok_ack(&ack), "{ack:?}");
    w.wait_for_sent(
        "chat.postMessage",
        "Odoo is connected for the whole workspace",
        WAIT,
    )
    .await;
    let credential = stored(Provider::Odoo).await.expect("saved");
    let keys = OdooKeys::from_secret(&credential.secret).unwrap();
    assert_eq!(keys.url, odoo.url());
    assert_eq!(keys.protocol, Some(Protocol::Json2));
    assert_eq!(keys.database, fake_odoo::DATABASE);
    assert!(stored(Provider::Crono).await.is_none(), "one CRM per team");
    assert_eq!(
        app.store.team_crm(tenant.id).await.unwrap(),
        Some(Provider::Odoo)
    );
    let audit = app.store.audit_entries(tenant.id).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "connect" && e.target == "odoo")
    );
    if let Store::Sqlite(pool) = &app.store {
        sqlx::query("PRAGMA wal_checkpoint(FULL)")
            .execute(pool)
            .await
            .unwrap();
    }
    for entry in std::fs::read_dir(w._db.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(API_KEY.len())
                .any(|b| b == API_KEY.as_bytes()),
            "the API key in clear"
        );
    }

    // An Odoo without JSON-2: JSON-RPC's authenticate decides; a wrong login is refused.
    let errors = errors_of(
        &submit(connect_form(
            &old.url(),
            fake_odoo::DATABASE,
            "someone@else.example",
            API_KEY,
        ))
        .await,
    );
    assert!(
        errors["odoo_key"]
            .as_str()
            .unwrap()
            .contains("did not accept"),
        "{errors}"
    );
    let ack = submit(connect_form(
        &old.url(),
        fake_odoo::DATABASE,
        fake_odoo::LOGIN,
        API_KEY,
    ))
    .await;
    assert!(ok_ack(&ack), "{ack:?}");
    let deadline = Instant::now() + WAIT;
    let keys = loop {
        let keys = stored(Provider::Odoo)
            .await
            .and_then(|c| OdooKeys::from_secret(&c.secret));
        if let Some(keys) = keys.filter(|k| k.url == old.url()) {
            break keys;
        }
        assert!(Instant::now() < deadline, "the JSON-RPC Odoo was not saved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(keys.protocol, Some(Protocol::Jsonrpc));
    assert_eq!(keys.uid, Some(fake_odoo::UID));

    // Demoted: refused at submit, Odoo not asked.
    w.slack.set_user(ADA, person(ADA, false));
    let before = odoo.requests().len();
    let ack = submit(connect_form(
        &odoo.url(),
        fake_odoo::DATABASE,
        fake_odoo::LOGIN,
        API_KEY,
    ))
    .await;
    assert!(text_of(&ack.payload.unwrap()).contains("Only a Slack workspace admin"));
    assert_eq!(odoo.requests().len(), before);
}

/// A team with Odoo connected over `protocol`, Ada in Rome, and a small CRM.
pub(super) struct O {
    pub(super) w: World,
    pub(super) odoo: FakeOdoo,
}

impl std::ops::Deref for O {
    type Target = World;
    fn deref(&self) -> &World {
        &self.w
    }
}

impl O {
    pub(super) async fn new(backend: Backend, protocol: Protocol) -> Self {
        Self::with(backend, protocol, &[]).await
    }

    /// `new`, with more settings (the mirror's, say).
    pub(super) async fn with(
        backend: Backend,
        protocol: Protocol,
        settings: &[(&str, &str)],
    ) -> Self {
        let odoo = FakeOdoo::start().await;
        odoo.add_key(API_KEY);
        if protocol == Protocol::Jsonrpc {
            odoo.without_json2();
        }
        let w = World::new(backend, false, settings).await;
        w.slack.set_user(ADA, person(ADA, false));
        let app = w.app();
        let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
        let keys = OdooKeys {
            url: odoo.url(),
            database: fake_odoo::DATABASE.into(),
            login: fake_odoo::LOGIN.into(),
            api_key: API_KEY.into(),
            protocol: Some(protocol),
            uid: None,
        };
        app.store
            .put_credential(
                &app.cipher,
                NewCredential {
                    tenant: tenant.id,
                    subject: Subject::Tenant,
                    provider: Provider::Odoo,
                    secret: &keys.seal_text(),
                    account_email: None,
                    api_domain: None,
                    expires_at: None,
                    scopes: None,
                    metadata: json!({ "connected_by": "U0ADMIN" }),
                },
            )
            .await
            .unwrap();
        odoo.add_company(10, "Acme Corp", "https://www.acme.example/");
        odoo.add_company(20, "Acme Labs", "acmelabs.example");
        odoo.add_person(11, "Marco Rossi", "marco@acme.example", 10);
        odoo.add_person(21, "Maria Bianchi", "maria@acmelabs.example", 20);
        O { w, odoo }
    }
}

async fn odoo_end_to_end(backend: Backend, protocol: Protocol) {
    let mut o = O::new(backend, protocol).await;
    o.odoo.add_lead(1, 10, "Acme pilot", 3, 10000.0, true);
    o.odoo.add_lead(2, 11, "Marco's seats", 1, 500.0, true);
    o.odoo.add_lead(3, 10, "Acme old win", 4, 3000.0, true);
    o.odoo.add_lead(4, 10, "Acme lost bid", 2, 2000.0, false);
    o.odoo.add_lead(5, 20, "Labs deal", 2, 1.0, true);

    // Search: accounts, then contacts with their company.
    let url_id = o.command_with(ADA, "/crono-search", "acme").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    let results = text_of(&post.body);
    assert!(
        results.contains("Acme Corp") && results.contains("Acme Labs"),
        "{results}"
    );
    let url_id = o.command_with(ADA, "/crono-search", "marco").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("Marco Rossi (Acme Corp) – marco@acme.example"),
        "{}",
        post.body
    );
    let url_id = o.command_with(ADA, "/crono-search", "zzz").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("Nothing in Odoo matches"),
        "{}",
        post.body
    );

    // View Deals on Acme Corp: its opportunities and its contacts' ones; won and lost out.
    let url_id = o.command_with(ADA, "/crono-search", "acme corp").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    let value = super::crm::button_value(&post.body, "crm_search_deals");
    let click = o.click(ADA, "crm_search_deals", &value, "deals");
    o.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let modal = o.opened(0).await;
    let id = modal["id"].as_str().unwrap().to_owned();
    let deals = settled(&o.w, &id).await;
    let text = text_of(&deals);
    assert!(text.contains("2 open deals"), "{text}");
    assert!(
        text.contains("Acme pilot") && text.contains("Marco's seats"),
        "{text}"
    );
    assert!(
        !text.contains("Acme old win") && !text.contains("Acme lost bid"),
        "{text}"
    );
    assert!(!text.contains("Labs deal"), "{text}");
    assert!(text.contains("Proposition"), "stage names: {text}");

    // The edit: Odoo's stages offered, one write with the stage's id.
    let click = o.click_in(&id, "crm_deal_edit", "1");
    o.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let pushed = o.slack.wait_for_call("views.push", WAIT).await.unwrap();
    let edit_id = pushed.response["view"]["id"].as_str().unwrap().to_owned();
    let edit = settled(&o.w, &edit_id).await;
    assert!(text_of(&edit).contains("Qualified"), "{edit}");
    let values = payloads::state(&[
        ("amount", "value", payloads::text_input("12500")),
        (
            "stage",
            "value",
            payloads::static_select_input("2", "Qualified"),
        ),
        ("description", "value", payloads::empty_text_input()),
    ]);
    assert!(ok_ack(&o.submit(&edit, values.clone()).await));
    assert!(ok_ack(&o.submit(&edit, values).await));
    o.wait_for_sent("chat.postMessage", "updated in Odoo", WAIT)
        .await;
    let lead = o.odoo.record("crm.lead", 1).unwrap();
    assert_eq!(lead["expected_revenue"], json!(12500.0));
    assert_eq!(lead["stage_id"][0], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        o.odoo.count("crm.lead", "write"),
        1,
        "one write for two submits"
    );

    // A note: suggestions in the ack, two submits → one message_post; a rate error first.
    o.command_with(ADA, "/crono-add-note", "").await;
    let note_modal = o.opened(1).await;
    let options = o.suggest(&note_modal, "crm_account", "acm").await;
    let acme = options
        .iter()
        .find(|(l, _)| l.starts_with("Acme Corp"))
        .unwrap_or_else(|| panic!("{options:?}"))
        .1
        .clone();
    match protocol {
        Protocol::Json2 => o.odoo.fail_next(1, 429, Some(1)),
        Protocol::Jsonrpc => o.odoo.rpc_error_next("werkzeug.exceptions.TooManyRequests"),
    }
    let values = payloads::state(&[
        (
            "account",
            "crm_account",
            payloads::external_select_input(&acme, "Acme Corp"),
        ),
        (
            "text",
            "value",
            payloads::text_input("They sign in March <b>\nBudget ok"),
        ),
    ]);
    assert!(ok_ack(&o.submit(&note_modal, values.clone()).await));
    assert!(ok_ack(&o.submit(&note_modal, values).await));
    let notes = o.odoo.wait_for_made("mail.message", 1).await;
    assert_eq!(notes[0]["model"], "res.partner");
    assert_eq!(notes[0]["res_id"], 10);
    assert_eq!(notes[0]["subtype_xmlid"], "mail.mt_note");
    assert_eq!(
        notes[0]["body"],
        "They sign in March &lt;b&gt;<br>Budget ok"
    );
    o.wait_for_sent(
        "chat.postMessage",
        "Note added to *Acme Corp* in Odoo",
        WAIT,
    )
    .await;
    o.wait_for_sent("chat.postMessage", "/web#id=10", WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(o.odoo.records("mail.message").len(), 1, "one note");
    assert_eq!(
        o.odoo.count("res.partner", "message_post"),
        2,
        "refused once, then made"
    );

    // A task at 00:30 in Rome on 1 July: still 30 June in UTC, due 1 July in Odoo.
    o.command_with(ADA, "/crono-add-task", "").await;
    let task_modal = o.opened(2).await;
    let options = o.suggest(&task_modal, "crm_contact", "mar").await;
    let marco = options
        .iter()
        .find(|(l, _)| l.starts_with("Marco Rossi"))
        .unwrap_or_else(|| panic!("{options:?}"))
        .1
        .clone();
    let values = payloads::state(&[
        (
            "contact",
            "crm_contact",
            payloads::external_select_input(&marco, "Marco"),
        ),
        ("subject", "value", payloads::text_input("Send the pricing")),
        ("date", "value", payloads::date_input("2027-07-01")),
        ("time", "value", payloads::time_input("00:30")),
        (
            "type",
            "value",
            payloads::static_select_input("call", "Call"),
        ),
        ("description", "value", payloads::text_input("As promised")),
    ]);
    assert!(ok_ack(&o.submit(&task_modal, values.clone()).await));
    assert!(ok_ack(&o.submit(&task_modal, values).await));
    let tasks = o.odoo.wait_for_made("mail.activity", 1).await;
    let task = &tasks[0];
    assert_eq!(task["date_deadline"], "2027-07-01", "{task}");
    assert_eq!(task["res_model_id"], 80);
    assert_eq!(task["res_id"], 11, "on Marco");
    assert_eq!(task["activity_type_id"], 2, "Call");
    assert_eq!(task["summary"], "Send the pricing");
    o.wait_for_sent("chat.postMessage", "created in Odoo", WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(o.odoo.records("mail.activity").len(), 1, "one task");
    // `doctor` asks each team's CRM for its stages.
    let report = followup_bot::doctor::crm_report(o.app()).await;
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(report[0].ok(), "{report:?}");
    assert_eq!(report[0].team, "T0SALES", "{report:?}");
    assert_eq!(
        report[0].detail, "Odoo answers (4 deal stages)",
        "{report:?}"
    );
    let expected = match protocol {
        Protocol::Json2 => "json2",
        Protocol::Jsonrpc => "jsonrpc",
    };
    assert!(
        o.odoo.requests().iter().all(|(p, ..)| p == expected),
        "{:?}",
        o.odoo.requests()
    );
    o.w.stop().await;
}

#[tokio::test]
async fn odoo_search_deals_notes_and_tasks_over_json2_sqlite() {
    odoo_end_to_end(Backend::Sqlite, Protocol::Json2).await;
}

#[tokio::test]
async fn odoo_search_deals_notes_and_tasks_over_jsonrpc_postgres() {
    odoo_end_to_end(Backend::Postgres, Protocol::Jsonrpc).await;
}

#[tokio::test]
async fn the_followups_crm_note_reaches_odoo() {
    let mut o = O::new(Backend::Sqlite, Protocol::Json2).await;
    let id = o
        .followup_with(
            41,
            "Acme discovery",
            &[("Marco Rossi", "marco@acme.example")],
        )
        .await;
    let click = o.click(ADA, "followup_crm_note", &id, "note-1");
    o.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let notes = o.odoo.wait_for_made("mail.message", 1).await;
    assert_eq!(notes[0]["model"], "res.partner");
    assert_eq!(
        notes[0]["res_id"], 10,
        "Marco's company, by his exact email"
    );
    let body = notes[0]["body"].as_str().unwrap();
    assert!(body.contains("Meeting: Acme discovery"), "{body}");
    assert!(body.contains("Recording: https://"), "{body}");
    o.wait_for_sent("chat.postMessage", "is on *Acme Corp* in Odoo", WAIT)
        .await;
    let again = o.click(ADA, "followup_crm_note", &id, "note-2");
    o.slack.wait_for_ack(&again, WAIT).await.unwrap();
    let post = o
        .slack
        .wait_for_response_post("note-2", WAIT)
        .await
        .unwrap();
    assert!(text_of(&post.body).contains("already in the CRM"));
    assert_eq!(o.odoo.records("mail.message").len(), 1);
    o.w.stop().await;
}
