//! HubSpot and Zoho CRM end to end: connected by an admin from `/crono-connect` through the
//! sidecar's OAuth routes (the state random, single use, ten minutes, tied to the browser;
//! forged, expired and replayed ones refused with no exchange), Zoho in another data centre,
//! then search, open deals (closed ones by the CRM's own flags, not names), a deal update,
//! notes and tasks with their associations, a 429 retried, double submits making one record,
//! token refreshes collapsing into one, a revoked grant told to the admin, and the
//! follow-up's CRM Note.

use super::crm::{button_value, ok_ack, settled, walk};
use super::google::{PUBLIC, Page};
use super::*;
use crate::support::fake_hubspot::FakeHubSpot;
use crate::support::fake_slack::Ack;
use crate::support::fake_zoho::{FakeZoho, Region};
use followup_bot::clients::crm::Calls;
use followup_bot::store::Store;

const HUB_ID: &str = "hub-client-0001";
const HUB_SECRET: &str = "hub-SECRETclient-0001";
const ZOHO_ID: &str = "1000.ZOHOCLIENT0001";
const ZOHO_SECRET: &str = "zoho-SECRETclient-0001";

fn person(user: &str, is_admin: bool) -> Value {
    json!({
        "id": user, "team_id": TEAM, "name": user.to_lowercase(), "real_name": "Ada Seller",
        "is_admin": is_admin, "is_owner": false, "tz": "Europe/Rome", "tz_offset": 3600,
        "profile": { "email": "ada@seller.example", "real_name": "Ada Seller" }
    })
}

pub(super) struct O {
    pub(super) w: World,
    pub(super) hub: FakeHubSpot,
    pub(super) zoho: FakeZoho,
}

impl std::ops::Deref for O {
    type Target = World;
    fn deref(&self) -> &World {
        &self.w
    }
}

impl O {
    async fn new(backend: Backend) -> Self {
        Self::with(backend, &[]).await
    }

    /// `new`, with more settings (the mirror's, say).
    pub(super) async fn with(backend: Backend, more: &[(&str, &str)]) -> Self {
        let hub = FakeHubSpot::start(HUB_ID, HUB_SECRET).await;
        let zoho = FakeZoho::start(ZOHO_ID, ZOHO_SECRET).await;
        let servers = format!(
            "{},{}",
            zoho.accounts_url(Region::Us),
            zoho.accounts_url(Region::Eu)
        );
        let settings = [
            ("PUBLIC_BASE_URL", PUBLIC.to_owned()),
            ("HUBSPOT_CLIENT_ID", HUB_ID.to_owned()),
            ("HUBSPOT_CLIENT_SECRET", HUB_SECRET.to_owned()),
            ("HUBSPOT_API_URL", hub.api_url()),
            ("HUBSPOT_AUTH_URL", hub.auth_url()),
            ("HUBSPOT_TOKEN_URL", hub.token_url()),
            ("ZOHO_CLIENT_ID", ZOHO_ID.to_owned()),
            ("ZOHO_CLIENT_SECRET", ZOHO_SECRET.to_owned()),
            ("ZOHO_ACCOUNTS_URL", zoho.accounts_url(Region::Us)),
            ("ZOHO_ACCOUNTS_SERVERS", servers),
        ];
        let mut extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        extra.extend_from_slice(more);
        let w = World::new(backend, false, &extra).await;
        w.slack.set_user(ADA, person(ADA, true));
        O { w, hub, zoho }
    }

    pub(super) async fn tenant(&self) -> followup_bot::domain::ids::TenantId {
        self.app().store.ensure_tenant(TEAM).await.unwrap().id
    }

    /// `/crono-connect`, pick `crm`: the one-time link the modal turns into.
    async fn connect_link(&self, user: &str, crm: &str, label: &str) -> String {
        let before = self.slack.call_count("views.open");
        self.command(user, "/crono-connect").await;
        let opened = self
            .slack
            .wait_for_calls("views.open", before + 1, WAIT)
            .await
            .unwrap();
        let modal = opened[before].response["view"].clone();
        let values = payloads::state(&[(
            "provider",
            "value",
            payloads::static_select_input(crm, label),
        )]);
        let ack = self.submit(&modal, values).await;
        let payload = ack.payload.expect("the modal is updated");
        assert_eq!(payload["response_action"], "update", "{payload}");
        let mut url = None;
        walk(&payload["view"], &mut |v| {
            if v["action_id"] == "crm_oauth_open" {
                url = v["url"].as_str().map(str::to_owned);
            }
        });
        let url = url.unwrap_or_else(|| panic!("no link in {payload}"));
        assert!(
            url.starts_with(&format!("{PUBLIC}/oauth/{crm}/start?state=")),
            "{url}"
        );
        url
    }

    /// The browser half: the start link, the consent page at the fake, the callback.
    async fn consent(
        &self,
        link: &str,
        consent: impl FnOnce(&str) -> Result<String, String>,
    ) -> (Page, String, Option<String>) {
        let start = self.browse(link, None).await;
        assert_eq!(start.status, 302, "{}", start.body);
        let to_crm = start.location.clone().expect("redirects to the CRM");
        let callback = consent(&to_crm).unwrap();
        assert!(callback.starts_with(PUBLIC), "{callback}");
        let page = self.browse(&callback, start.cookie.as_deref()).await;
        (page, callback, start.cookie)
    }

    pub(super) async fn connect_hubspot(&self) {
        let link = self.connect_link(ADA, "hubspot", "HubSpot").await;
        let (page, _, _) = self.consent(&link, |url| self.hub.consent(url)).await;
        assert_eq!(page.status, 200, "{}", page.body);
    }

    /// Zoho connected by Ada for an account in `region`'s data centre.
    pub(super) async fn connect_zoho(&self, region: Region) {
        let link = self.connect_link(ADA, "zoho", "Zoho CRM").await;
        let (page, _, _) = self
            .consent(&link, |url| self.zoho.consent(url, region))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
    }

    async fn stored(
        &self,
        provider: Provider,
    ) -> Option<followup_bot::store::credentials::Credential> {
        self.app()
            .store
            .credential(
                &self.app().cipher,
                self.tenant().await,
                Subject::Tenant,
                provider,
            )
            .await
            .unwrap()
    }

    /// `n` CRM sessions opened at once after the access token expired: refreshes made.
    async fn concurrent_sessions(&self, provider: Provider, n: usize) {
        let tenant = self.tenant().await;
        self.app()
            .store
            .expire_credential(tenant, Subject::Tenant, provider)
            .await
            .unwrap();
        let app = self.app();
        let calls = (0..n).map(|_| async move {
            let crm = app.crm(tenant, Calls::Read).await.unwrap().unwrap();
            crm.stages().await.unwrap()
        });
        let answers = futures_util::future::join_all(calls).await;
        assert!(answers.iter().all(|stages| !stages.is_empty()));
    }
}

fn errors_text(ack: &Ack) -> String {
    text_of(&ack.payload.clone().expect("an answer in the ack"))
}

async fn wait_until(what: &str, check: impl AsyncFn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn hubspot_connects_through_the_sidecar_and_its_states_are_single_use() {
    let mut o = O::new(Backend::Sqlite).await;

    // The modal offers the CRMs this deployment is set up for.
    o.command(ADA, "/crono-connect").await;
    let opened = o.slack.wait_for_call("views.open", WAIT).await.unwrap();
    let shown = text_of(&opened.response["view"]);
    assert!(
        shown.contains("\"value\":\"hubspot\"") && shown.contains("\"value\":\"zoho\""),
        "{shown}"
    );
    // Bob is no admin: no link.
    let bobs = payloads::view_submission_for(
        TEAM,
        BOB,
        &opened.response["view"],
        payloads::state(&[(
            "provider",
            "value",
            payloads::static_select_input("hubspot", "HubSpot"),
        )]),
    );
    let ack = o.slack.wait_for_ack(&o.send(bobs), WAIT).await.unwrap();
    assert!(errors_text(&ack).contains("Only a Slack workspace admin"));

    // Forged states: refused at both ends, no exchange.
    let forged = o
        .browse(
            &format!("{PUBLIC}/oauth/hubspot/start?state=forged-0123456789"),
            None,
        )
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    let forged = o
        .browse(
            &format!("{PUBLIC}/oauth/hubspot/callback?state=forged&code=abc"),
            Some("some-cookie"),
        )
        .await;
    assert_eq!(forged.status, 400);
    assert_eq!(o.hub.token_calls("authorization_code"), 0);

    // A code HubSpot does not accept (a good state, the right browser): nothing saved.
    let link = o.connect_link(ADA, "hubspot", "HubSpot").await;
    let (page, _, _) = o
        .consent(&link, |url| {
            o.hub
                .consent(url)
                .map(|back| back.replace("code=", "code=tampered"))
        })
        .await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(
        page.body.contains("did not accept the sign-in"),
        "{}",
        page.body
    );
    assert!(o.stored(Provider::Hubspot).await.is_none());
    // Denied on HubSpot's page: said plainly, nothing saved.
    let link = o.connect_link(ADA, "hubspot", "HubSpot").await;
    let (page, _, _) = o
        .consent(&link, |url| {
            o.hub.consent(url).map(|back| {
                let state = url::Url::parse(&back)
                    .unwrap()
                    .query_pairs()
                    .find(|(k, _)| k == "state")
                    .unwrap()
                    .1
                    .into_owned();
                format!("{PUBLIC}/oauth/hubspot/callback?error=access_denied&state={state}")
            })
        })
        .await;
    assert!(page.body.contains("was not allowed"), "{}", page.body);
    assert!(o.stored(Provider::Hubspot).await.is_none());

    // The real flow: consent, one exchange, tokens sealed for the team, the admin told.
    let exchanges = o.hub.token_calls("authorization_code") + 1;
    let link = o.connect_link(ADA, "hubspot", "HubSpot").await;
    let (page, callback, cookie) = o.consent(&link, |url| o.hub.consent(url)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("HubSpot connected"), "{}", page.body);
    assert_eq!(o.hub.token_calls("authorization_code"), exchanges);
    o.wait_for_sent(
        "chat.postMessage",
        "HubSpot is connected for the whole workspace",
        WAIT,
    )
    .await;
    let credential = o.stored(Provider::Hubspot).await.expect("saved");
    assert_eq!(credential.metadata["connected_by"], ADA);
    assert!(credential.expires_at.is_some());
    let audit = o.app().store.audit_entries(o.tenant().await).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "connect" && e.target == "hubspot")
    );
    // The raw database holds no token in clear.
    let tokens: Value =
        serde_json::from_str(secrecy::ExposeSecret::expose_secret(&credential.secret)).unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    if let Store::Sqlite(pool) = &o.app().store {
        sqlx::query("PRAGMA wal_checkpoint(FULL)")
            .execute(pool)
            .await
            .unwrap();
    }
    for entry in std::fs::read_dir(o.w._db.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(refresh.len())
                .any(|b| b == refresh.as_bytes()),
            "the refresh token in clear"
        );
    }

    // Replayed: the same callback again is refused, with no second exchange.
    let replay = o.browse(&callback, cookie.as_deref()).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(o.hub.token_calls("authorization_code"), exchanges);

    // Expired: a link more than ten minutes old.
    let link = o.connect_link(ADA, "hubspot", "HubSpot").await;
    let past = followup_bot::store::now() - chrono::Duration::minutes(11);
    if let Store::Sqlite(pool) = &o.app().store {
        sqlx::query("UPDATE oauth_states SET expires_at = $1 WHERE used_at IS NULL")
            .bind(past)
            .execute(pool)
            .await
            .unwrap();
    }
    let expired = o.browse(&link, None).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("10 minutes"), "{}", expired.body);
    assert_eq!(o.hub.token_calls("authorization_code"), exchanges);

    // Five sessions at once after the access token expired: one refresh.
    o.concurrent_sessions(Provider::Hubspot, 5).await;
    assert_eq!(o.hub.token_calls("refresh_token"), 1);

    // HubSpot refusing a token before its expiry: that request says so, the next one
    // refreshes and works.
    o.hub.expire_access_tokens();
    let refreshes = o.hub.token_calls("refresh_token");
    let url_id = o.command_with(ADA, "/crono-search", "acme").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("HubSpot refused"),
        "{}",
        post.body
    );
    let url_id = o.command_with(ADA, "/crono-search", "acme").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("Nothing in HubSpot matches"),
        "{}",
        post.body
    );
    assert_eq!(o.hub.token_calls("refresh_token"), refreshes + 1);

    // Revoked at HubSpot: the admin is told once, nothing is retried with the dead grant.
    o.hub.revoke_refresh_tokens();
    let tenant = o.tenant().await;
    o.app()
        .store
        .expire_credential(tenant, Subject::Tenant, Provider::Hubspot)
        .await
        .unwrap();
    let url_id = o.command_with(ADA, "/crono-search", "acme").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("no longer accepts the bot"),
        "{}",
        post.body
    );
    o.wait_for_sent(
        "chat.postMessage",
        "HubSpot no longer accepts the bot",
        WAIT,
    )
    .await;
    let refreshes = o.hub.token_calls("refresh_token");
    let url_id = o.command_with(ADA, "/crono-search", "acme").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("/crono-connect"),
        "{}",
        post.body
    );
    assert_eq!(o.hub.token_calls("refresh_token"), refreshes, "not retried");
    let audit = o.app().store.audit_entries(tenant).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "revoked" && e.target == "hubspot")
    );
    o.w.stop().await;
}

async fn hubspot_crm(backend: Backend) {
    let mut o = O::new(backend).await;
    o.hub.add_company("101", "Acme Corp", "acme.example");
    o.hub.add_company("102", "Acme Labs", "acmelabs.example");
    o.hub
        .add_contact("201", "Marco", "Rossi", "marco@acme.example", "101");
    o.hub
        .add_deal("301", "101", "Acme pilot", "presentationscheduled", 10000.0);
    o.hub
        .add_deal("302", "101", "Acme old win", "closedwon", 3000.0);
    o.hub
        .add_deal("303", "101", "Acme lost bid", "closedlost", 2000.0);
    o.hub
        .add_deal("304", "101", "Acme signed", "1234567", 4000.0);
    o.hub
        .add_deal("305", "101", "Acme review", "7654321", 500.0);
    o.hub
        .add_deal("306", "102", "Labs deal", "qualifiedtobuy", 1.0);
    o.connect_hubspot().await;
    o.w.slack.set_user(ADA, person(ADA, false));

    // Search, then View Deals: closed ones left out by the pipeline's isClosed, not names.
    let url_id = o.command_with(ADA, "/crono-search", "acme").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    let results = text_of(&post.body);
    assert!(
        results.contains("Acme Corp") && results.contains("Acme Labs"),
        "{results}"
    );
    let url_id = o.command_with(ADA, "/crono-search", "acme corp").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    let value = button_value(&post.body, "crm_search_deals");
    let click = o.click(ADA, "crm_search_deals", &value, "deals");
    o.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let modal = o.opened(1).await;
    let id = modal["id"].as_str().unwrap().to_owned();
    let deals = settled(&o.w, &id).await;
    let text = text_of(&deals);
    assert!(text.contains("2 open deals"), "{text}");
    assert!(
        text.contains("Acme pilot") && text.contains("Acme review"),
        "{text}"
    );
    for closed in ["Acme old win", "Acme lost bid", "Acme signed", "Labs deal"] {
        assert!(!text.contains(closed), "{closed} in {text}");
    }

    // The edit: one PATCH for two submits.
    let click = o.click_in(&id, "crm_deal_edit", "301");
    o.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let pushed = o.slack.wait_for_call("views.push", WAIT).await.unwrap();
    let edit_id = pushed.response["view"]["id"].as_str().unwrap().to_owned();
    let edit = settled(&o.w, &edit_id).await;
    assert!(text_of(&edit).contains("Qualified To Buy"), "{edit}");
    let values = payloads::state(&[
        ("amount", "value", payloads::text_input("12500")),
        (
            "stage",
            "value",
            payloads::static_select_input("qualifiedtobuy", "Qualified To Buy"),
        ),
        ("description", "value", payloads::empty_text_input()),
    ]);
    assert!(ok_ack(&o.submit(&edit, values.clone()).await));
    assert!(ok_ack(&o.submit(&edit, values).await));
    o.wait_for_sent("chat.postMessage", "updated in HubSpot", WAIT)
        .await;
    let deal = o.hub.deal("301").unwrap();
    assert_eq!(deal["properties"]["dealstage"], "qualifiedtobuy");
    assert_eq!(deal["properties"]["amount"], "12500");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(o.hub.count("PATCH", "/crm/v3/objects/deals/301"), 1);

    // A note after a 429: retried, made once for two submits, associated with the company.
    o.command_with(ADA, "/crono-add-note", "").await;
    let note_modal = o.opened(2).await;
    let options = o.suggest(&note_modal, "crm_account", "acm").await;
    let acme = options
        .iter()
        .find(|(l, _)| l.starts_with("Acme Corp"))
        .unwrap_or_else(|| panic!("{options:?}"))
        .1
        .clone();
    o.hub.fail_next(1, 429, Some(1));
    let values = payloads::state(&[
        (
            "account",
            "crm_account",
            payloads::external_select_input(&acme, "Acme Corp"),
        ),
        (
            "text",
            "value",
            payloads::text_input("They sign in March <b>"),
        ),
    ]);
    assert!(ok_ack(&o.submit(&note_modal, values.clone()).await));
    assert!(ok_ack(&o.submit(&note_modal, values).await));
    let notes = o.hub.wait_for_notes(1).await;
    let note = &notes[0];
    assert_eq!(
        note["properties"]["hs_note_body"],
        "They sign in March &lt;b&gt;"
    );
    assert_eq!(note["associations"][0]["to"]["id"], "101");
    assert_eq!(
        note["associations"][0]["types"][0]["associationTypeId"],
        190
    );
    o.wait_for_sent(
        "chat.postMessage",
        "Note added to *Acme Corp* in HubSpot",
        WAIT,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(o.hub.notes().len(), 1);
    assert_eq!(
        o.hub.count("POST", "/crm/v3/objects/notes"),
        2,
        "429, then made"
    );

    // A task at 00:30 in Rome on 1 July: 22:30 UTC the day before, with its associations.
    o.command_with(ADA, "/crono-add-task", "").await;
    let task_modal = o.opened(3).await;
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
    let ack = o.submit(&task_modal, values.clone()).await;
    assert!(ok_ack(&ack), "{ack:?}");
    assert!(ok_ack(&o.submit(&task_modal, values).await));
    let tasks = o.hub.wait_for_tasks(1).await;
    let task = &tasks[0];
    assert_eq!(
        task["properties"]["hs_timestamp"],
        "2027-06-30T22:30:00.000Z"
    );
    assert_eq!(task["properties"]["hs_task_type"], "CALL");
    let types: Vec<(Value, Value)> = task["associations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["to"]["id"].clone(),
                a["types"][0]["associationTypeId"].clone(),
            )
        })
        .collect();
    assert!(types.contains(&(json!("101"), json!(192))), "{types:?}");
    assert!(types.contains(&(json!("201"), json!(204))), "{types:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(o.hub.tasks().len(), 1);

    // The follow-up's CRM Note: Marco's exact email names Acme Corp (its name fetched).
    let id = o
        .followup_with(
            51,
            "Acme discovery",
            &[("Marco Rossi", "marco@acme.example")],
        )
        .await;
    let click = o.click(ADA, "followup_crm_note", &id, "note-f");
    o.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let notes = o.hub.wait_for_notes(2).await;
    let body = notes[1]["properties"]["hs_note_body"].as_str().unwrap();
    assert!(body.contains("Meeting: Acme discovery"), "{body}");
    let ids: Vec<&Value> = notes[1]["associations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["to"]["id"])
        .collect();
    assert!(
        ids.contains(&&json!("101")) && ids.contains(&&json!("201")),
        "{ids:?}"
    );
    o.wait_for_sent("chat.postMessage", "is on *Acme Corp* in HubSpot", WAIT)
        .await;
    o.w.stop().await;
}

#[tokio::test]
async fn hubspot_search_deals_notes_tasks_and_the_followup_sqlite() {
    hubspot_crm(Backend::Sqlite).await;
}

#[tokio::test]
async fn hubspot_search_deals_notes_tasks_and_the_followup_postgres() {
    hubspot_crm(Backend::Postgres).await;
}

#[tokio::test]
async fn zoho_connects_in_its_data_centre_and_works_there() {
    let mut o = O::new(Backend::Sqlite).await;
    o.zoho
        .add_account("z1", "Acme Corp", "https://www.acme.example/");
    o.zoho.add_account("z2", "Acme Labs", "acmelabs.example");
    o.zoho
        .add_contact("zc1", "Marco", "Rossi", "marco@acme.example", "z1");
    o.zoho
        .add_deal("zd1", "z1", "Acme pilot", "Negotiation/Review", 10000.0);
    o.zoho
        .add_deal("zd2", "z1", "Acme old win", "Closed Won", 3000.0);
    o.zoho.add_deal(
        "zd3",
        "z1",
        "Acme lost",
        "Closed Lost to Competition",
        2000.0,
    );
    o.zoho
        .add_deal("zd4", "z1", "Acme signed", "Signed", 4000.0);

    // An accounts server outside the allowed data centres: refused, the secret not sent.
    let link = o.connect_link(ADA, "zoho", "Zoho CRM").await;
    let start = o.browse(&link, None).await;
    assert_eq!(start.status, 302);
    let callback = o
        .zoho
        .consent(start.location.as_deref().unwrap(), Region::Eu)
        .unwrap();
    let evil = callback.replace(
        &url::form_urlencoded::byte_serialize(o.zoho.accounts_url(Region::Eu).as_bytes())
            .collect::<String>(),
        "https%3A%2F%2Faccounts.evil.example",
    );
    assert_ne!(evil, callback);
    let page = o.browse(&evil, start.cookie.as_deref()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("data centre"), "{}", page.body);
    assert!(o.stored(Provider::Zoho).await.is_none());

    // A forged state: refused, no exchange anywhere.
    let forged = o
        .browse(
            &format!("{PUBLIC}/oauth/zoho/callback?state=forged&code=1000.abc"),
            Some("cookie"),
        )
        .await;
    assert_eq!(forged.status, 400);
    for region in [Region::Us, Region::Eu] {
        assert_eq!(o.zoho.token_calls(region, "authorization_code"), 0);
    }

    // An EU account: the code is exchanged at the EU accounts server, the EU API is used.
    let link = o.connect_link(ADA, "zoho", "Zoho CRM").await;
    let (page, callback, cookie) = o
        .consent(&link, |url| o.zoho.consent(url, Region::Eu))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Replayed: refused, no second exchange.
    let replay = o.browse(&callback, cookie.as_deref()).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    // Expired: a link more than ten minutes old.
    let stale = o.connect_link(ADA, "zoho", "Zoho CRM").await;
    if let Store::Sqlite(pool) = &o.app().store {
        sqlx::query("UPDATE oauth_states SET expires_at = $1 WHERE used_at IS NULL")
            .bind(followup_bot::store::now() - chrono::Duration::minutes(11))
            .execute(pool)
            .await
            .unwrap();
    }
    let expired = o.browse(&stale, None).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("10 minutes"), "{}", expired.body);
    assert_eq!(o.zoho.token_calls(Region::Eu, "authorization_code"), 1);
    assert_eq!(o.zoho.token_calls(Region::Us, "authorization_code"), 0);
    let credential = o.stored(Provider::Zoho).await.expect("saved");
    assert_eq!(
        credential.api_domain.as_deref(),
        Some(o.zoho.api_domain(Region::Eu).as_str())
    );
    o.wait_for_sent(
        "chat.postMessage",
        "Zoho CRM is connected for the whole workspace",
        WAIT,
    )
    .await;
    o.w.slack.set_user(ADA, person(ADA, false));

    // Search, and nothing found (Zoho's 204) said so.
    let url_id = o.command_with(ADA, "/crono-search", "acme").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(text_of(&post.body).contains("Acme Labs"), "{}", post.body);
    let url_id = o.command_with(ADA, "/crono-search", "zzzz").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("Nothing in Zoho CRM matches"),
        "{}",
        post.body
    );

    // View Deals: closed by the picklist's forecast type ("Signed" is won), not by name.
    let url_id = o.command_with(ADA, "/crono-search", "acme corp").await;
    let post = o.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    let value = button_value(&post.body, "crm_search_deals");
    let click = o.click(ADA, "crm_search_deals", &value, "deals");
    o.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let modal = o.opened(3).await;
    let id = modal["id"].as_str().unwrap().to_owned();
    let deals = settled(&o.w, &id).await;
    let text = text_of(&deals);
    assert!(text.contains("1 open deal"), "{text}");
    assert!(text.contains("Acme pilot"), "{text}");
    for closed in ["Acme old win", "Acme lost", "Acme signed"] {
        assert!(!text.contains(closed), "{closed} in {text}");
    }
    let click = o.click_in(&id, "crm_deal_edit", "zd1");
    o.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let pushed = o.slack.wait_for_call("views.push", WAIT).await.unwrap();
    let edit_id = pushed.response["view"]["id"].as_str().unwrap().to_owned();
    let edit = settled(&o.w, &edit_id).await;
    assert!(text_of(&edit).contains("Proposal/Price Quote"), "{edit}");
    let values = payloads::state(&[
        ("amount", "value", payloads::text_input("12500")),
        (
            "stage",
            "value",
            payloads::static_select_input("Proposal/Price Quote", "Proposal/Price Quote"),
        ),
        ("description", "value", payloads::empty_text_input()),
    ]);
    assert!(ok_ack(&o.submit(&edit, values.clone()).await));
    assert!(ok_ack(&o.submit(&edit, values).await));
    o.wait_for_sent("chat.postMessage", "updated in Zoho CRM", WAIT)
        .await;
    assert_eq!(o.zoho.deal("zd1").unwrap()["Stage"], "Proposal/Price Quote");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(o.zoho.count("PUT", "/crm/v8/Deals"), 1);

    // A note after a 429, once for two submits, on the account.
    o.command_with(ADA, "/crono-add-note", "").await;
    let note_modal = o.opened(4).await;
    let options = o.suggest(&note_modal, "crm_account", "acm").await;
    let acme = options
        .iter()
        .find(|(l, _)| l.starts_with("Acme Corp"))
        .unwrap_or_else(|| panic!("{options:?}"))
        .1
        .clone();
    o.zoho.fail_next(1, 429, Some(1));
    let values = payloads::state(&[
        (
            "account",
            "crm_account",
            payloads::external_select_input(&acme, "Acme Corp"),
        ),
        ("text", "value", payloads::text_input("They sign in March")),
    ]);
    assert!(ok_ack(&o.submit(&note_modal, values.clone()).await));
    assert!(ok_ack(&o.submit(&note_modal, values).await));
    let notes = o.zoho.wait_for_notes(1).await;
    assert_eq!(notes[0]["Note_Content"], "They sign in March");
    assert_eq!(notes[0]["Parent_Id"]["id"], "z1");
    assert_eq!(notes[0]["Parent_Id"]["module"]["api_name"], "Accounts");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(o.zoho.notes().len(), 1);
    assert_eq!(o.zoho.count("POST", "/crm/v8/Notes"), 2, "429, then made");

    // A task due 00:30 in Rome on 1 July: Zoho's Due_Date is that local date.
    o.command_with(ADA, "/crono-add-task", "").await;
    let task_modal = o.opened(5).await;
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
    let tasks = o.zoho.wait_for_tasks(1).await;
    assert_eq!(tasks[0]["Due_Date"], "2027-07-01", "{}", tasks[0]);
    assert_eq!(tasks[0]["What_Id"]["id"], "z1");
    assert_eq!(tasks[0]["Who_Id"]["id"], "zc1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(o.zoho.tasks().len(), 1);

    // The follow-up's CRM Note reaches Zoho's EU API.
    let id = o
        .followup_with(
            61,
            "Acme discovery",
            &[("Marco Rossi", "marco@acme.example")],
        )
        .await;
    let click = o.click(ADA, "followup_crm_note", &id, "note-f");
    o.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let notes = o.zoho.wait_for_notes(2).await;
    assert!(
        notes[1]["Note_Content"]
            .as_str()
            .unwrap()
            .contains("Meeting: Acme discovery")
    );
    o.wait_for_sent("chat.postMessage", "is on *Acme Corp* in Zoho CRM", WAIT)
        .await;

    // Access tokens are kept until they expire: none of the above refreshed one; five
    // sessions at once after it expired refresh once, at the EU accounts server.
    assert_eq!(o.zoho.token_calls(Region::Eu, "refresh_token"), 0);
    o.concurrent_sessions(Provider::Zoho, 5).await;
    assert_eq!(o.zoho.token_calls(Region::Eu, "refresh_token"), 1);
    assert_eq!(o.zoho.token_calls(Region::Us, "refresh_token"), 0);
    assert!(
        o.zoho
            .requests()
            .iter()
            .all(|(region, ..)| *region == Region::Eu),
        "every call at the EU API"
    );
    wait_until("the audit row", || async {
        let audit = o.app().store.audit_entries(o.tenant().await).await.unwrap();
        audit
            .iter()
            .any(|e| e.action == "connect" && e.target == "zoho")
    })
    .await;
    o.w.stop().await;
}
