//! The CRM with Crono, end to end through the fake Slack: `/crono-search` with its buttons,
//! open deals (closed ones excluded, every page) and their edit, `/crono-add-note` and
//! `/crono-add-task` with autocomplete answered in the ack, a task in the person's time zone,
//! double submits making one record, a 429 that succeeds on retry, and the follow-up's CRM
//! Note / View Deals / Create Task, including "pick the account" when two look alike.

use super::*;
use crate::support::fake_crono::FakeCrono;
use crate::support::fake_fathom::Invitee;
use crate::support::fake_slack::Ack;
use followup_bot::clients::crm::crono::CronoKeys;
use followup_bot::store::credentials::NewCredential;

const PUBLIC_KEY: &str = "crono-pub-0002";
const PRIVATE_KEY: &str = "crono-SECRETprivate-0002";

pub(super) struct C {
    pub(super) w: World,
    pub(super) crono: FakeCrono,
}

impl C {
    pub(super) async fn new(backend: Backend) -> Self {
        Self::with(backend, &[]).await
    }

    /// The bot, with `more` settings, and Crono connected with Acme Corp, Acme Labs and
    /// their two prospects.
    pub(super) async fn with(backend: Backend, more: &[(&str, &str)]) -> Self {
        let crono = FakeCrono::start().await;
        crono.add_keys(PUBLIC_KEY, PRIVATE_KEY);
        let url = crono.base_url();
        let mut settings = vec![
            ("CRONO_API_URL", url.as_str()),
            ("CRONO_APP_URL", "https://app.crono.example"),
        ];
        settings.extend_from_slice(more);
        let w = World::new(backend, false, &settings).await;
        w.slack.set_user(
            ADA,
            json!({
                "id": ADA, "team_id": TEAM, "name": "ada", "real_name": "Ada Seller",
                "is_admin": false, "is_owner": false, "tz": "Europe/Rome", "tz_offset": 3600,
                "profile": { "email": "ada@seller.example", "real_name": "Ada Seller" }
            }),
        );
        // The team's Crono keys, as /crono-connect stores them (tested in crm_connect).
        let app = w.app();
        let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
        let keys = CronoKeys {
            public_key: PUBLIC_KEY.into(),
            private_key: PRIVATE_KEY.into(),
        };
        app.store
            .put_credential(
                &app.cipher,
                NewCredential {
                    tenant: tenant.id,
                    subject: Subject::Tenant,
                    provider: Provider::Crono,
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
        crono.add_account("acc-1", "Acme Corp", "https://www.acme.example/");
        crono.add_account("acc-2", "Acme Labs", "acmelabs.example");
        crono.add_prospect("pr-1", "Marco", "Rossi", "marco@acme.example", "acc-1");
        crono.add_prospect(
            "pr-2",
            "Maria",
            "Bianchi",
            "maria@acmelabs.example",
            "acc-2",
        );
        C { w, crono }
    }
}

impl std::ops::Deref for C {
    type Target = World;
    fn deref(&self) -> &World {
        &self.w
    }
}

/// What the CRM tests do through Slack, whichever CRM is behind.
impl World {
    /// A command with text; the response URL's id.
    pub(super) async fn command_with(&self, user: &str, command: &str, text: &str) -> String {
        let url_id = uuid::Uuid::new_v4().simple().to_string();
        let id = self.send(payloads::slash_command(
            TEAM,
            user,
            command,
            text,
            &self.slack.response_url(&url_id),
        ));
        self.slack.wait_for_ack(&id, WAIT).await.unwrap();
        url_id
    }

    /// The `n`-th views.open (0-based) once made; its view as Slack shows it now.
    pub(super) async fn opened(&self, n: usize) -> Value {
        let calls = self
            .slack
            .wait_for_calls("views.open", n + 1, WAIT)
            .await
            .unwrap();
        calls[n].response["view"].clone()
    }

    /// The suggestions the bot answered in the ack for `query` typed in `view`.
    pub(super) async fn suggest(
        &self,
        view: &Value,
        action: &str,
        query: &str,
    ) -> Vec<(String, String)> {
        let envelope =
            payloads::block_suggestion_in(TEAM, ADA, "b", action, query, Some(view.clone()));
        let ack = self
            .slack
            .wait_for_ack(&self.send(envelope), WAIT)
            .await
            .unwrap();
        let payload = ack.payload.expect("options in the ack");
        payload["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["text"]["text"].as_str().unwrap().to_owned(),
                    o["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    pub(super) async fn submit(&self, view: &Value, values: Value) -> Ack {
        let envelope = payloads::view_submission_for(TEAM, ADA, view, values);
        self.slack
            .wait_for_ack(&self.send(envelope), WAIT)
            .await
            .unwrap()
    }

    /// Clicks a button in a modal Slack shows (by its current view).
    pub(super) fn click_in(&self, view_id: &str, action: &str, value: &str) -> String {
        let view = self.slack.view(view_id).expect("the view is shown");
        let envelope = payloads::block_actions(TEAM, ADA, action, value, Some(view));
        self.send(envelope)
    }

    /// A drafted follow-up of a meeting with these external attendees.
    pub(super) async fn followup_with(
        &self,
        recording: u64,
        title: &str,
        attendees: &[(&str, &str)],
    ) -> String {
        self.connect(ADA, ADA_KEY).await;
        let mut invitees = vec![Invitee::new("Ada Seller", "ada@seller.example", false)];
        invitees.extend(attendees.iter().map(|(n, e)| Invitee::new(n, e, true)));
        self.fathom.add_meeting(
            ADA_KEY,
            meeting(
                recording,
                title,
                Utc::now() - chrono::Duration::seconds(30),
                30,
            )
            .invitees(invitees),
        );
        let picker = self.open_picker(ADA).await;
        let ready = self.pick(ADA, &picker, recording).await;
        assert!(text_of(&ready).contains("Follow-up ready"), "{ready}");
        followup_id(&ready)
    }
}

pub(super) fn ok_ack(ack: &Ack) -> bool {
    ack.payload.is_none() || ack.payload == Some(Value::Null)
}

/// The value of the first button with this action id in a message or view.
pub(super) fn button_value(message: &Value, action: &str) -> String {
    let mut found = None;
    walk(message, &mut |v| {
        if found.is_none() && v["action_id"] == action && v["type"] == "button" {
            found = v["value"].as_str().map(str::to_owned);
        }
    });
    found.unwrap_or_else(|| panic!("no {action} button in {message}"))
}

pub(super) fn walk(v: &Value, f: &mut impl FnMut(&Value)) {
    f(v);
    match v {
        Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
        Value::Object(o) => o.values().for_each(|x| walk(x, f)),
        _ => {}
    }
}

/// Waits until the view `id` no longer says "Loading"/"Looking".
pub(super) async fn settled(w: &World, id: &str) -> Value {
    w.view_where(id, |v| {
        let t = text_of(v);
        !t.contains("Loading") && !t.contains("Looking for")
    })
    .await
}

#[tokio::test]
async fn search_open_deals_and_a_deal_update() {
    let mut c = C::new(Backend::Sqlite).await;
    c.crono
        .add_deal("d-1", "acc-1", "Acme pilot", "proposal", 10000.0, "EUR");
    c.crono
        .add_deal("d-won", "acc-1", "Acme old win", "closedwon", 3000.0, "EUR");
    c.crono.add_deal(
        "d-lost",
        "acc-1",
        "Acme lost bid",
        "closedlost",
        2000.0,
        "EUR",
    );
    c.crono
        .add_deal("d-other", "acc-2", "Labs deal", "proposal", 1.0, "EUR");
    // More than one page of open deals: every one is listed, not only the first page.
    for n in 0..55 {
        c.crono.add_deal(
            &format!("d-x{n}"),
            "acc-1",
            &format!("Seat pack {n}"),
            "qualification",
            100.0,
            "EUR",
        );
    }

    let url_id = c.command_with(ADA, "/crono-search", "acme").await;
    let post =
        c.w.slack
            .wait_for_response_post(&url_id, WAIT)
            .await
            .unwrap();
    let results = text_of(&post.body);
    assert!(
        results.contains("Acme Corp") && results.contains("Acme Labs"),
        "{results}"
    );
    assert!(
        text_of(&post.body).contains("crm_search_deals"),
        "{}",
        post.body
    );
    // Contacts by name, with their account and email, and their own buttons.
    let url_id = c.command_with(ADA, "/crm-search", "marco").await;
    let post =
        c.w.slack
            .wait_for_response_post(&url_id, WAIT)
            .await
            .unwrap();
    let results = text_of(&post.body);
    assert!(
        results.contains("Marco Rossi (Acme Corp) – marco@acme.example"),
        "{results}"
    );
    assert!(results.contains("crm_search_contact_task"), "{results}");
    // Nothing found says so.
    let url_id = c
        .command_with(ADA, "/crono-search", "nothing-like-this")
        .await;
    let post =
        c.w.slack
            .wait_for_response_post(&url_id, WAIT)
            .await
            .unwrap();
    assert!(
        text_of(&post.body).contains("Nothing in Crono matches"),
        "{}",
        post.body
    );

    // View Deals on Acme Corp: a modal at once, then every open deal, closed ones left out.
    let first = {
        let url_id = c.command_with(ADA, "/crono-search", "acme corp").await;
        c.w.slack
            .wait_for_response_post(&url_id, WAIT)
            .await
            .unwrap()
    };
    let value = button_value(&first.body, "crm_search_deals");
    let click = c.w.click(ADA, "crm_search_deals", &value, "deals");
    c.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let modal = c.opened(0).await;
    let id = modal["id"].as_str().unwrap().to_owned();
    let deals = settled(&c.w, &id).await;
    let text = text_of(&deals);
    assert!(text.contains("56 open deals"), "{text}");
    assert!(
        text.contains("Acme pilot") && text.contains("Seat pack 54"),
        "{text}"
    );
    assert!(
        !text.contains("Acme old win") && !text.contains("Acme lost bid"),
        "{text}"
    );
    assert!(!text.contains("Labs deal"));
    assert!(
        text.contains("Proposal") && text.contains("10000 EUR"),
        "{text}"
    );
    assert!(followup_bot::blocks::check_limits(&deals).is_empty());

    // Edit: amount and stage (the provider's stages), saved once, confirmed.
    let click = c.click_in(&id, "crm_deal_edit", "d-1");
    c.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let pushed = c.w.slack.wait_for_call("views.push", WAIT).await.unwrap();
    let edit_id = pushed.response["view"]["id"].as_str().unwrap().to_owned();
    let edit = settled(&c.w, &edit_id).await;
    let text = text_of(&edit);
    assert!(
        text.contains("Negotiation") && text.contains("Closed won"),
        "{text}"
    );
    assert!(text.contains("10000") && text.contains("EUR"), "{text}");
    let values = payloads::state(&[
        ("amount", "value", payloads::text_input("12,500.50")),
        (
            "stage",
            "value",
            payloads::static_select_input("negotiation", "Negotiation"),
        ),
        ("description", "value", payloads::empty_text_input()),
    ]);
    let bad = payloads::state(&[
        ("amount", "value", payloads::text_input("twelve")),
        (
            "stage",
            "value",
            payloads::static_select_input("negotiation", "Negotiation"),
        ),
    ]);
    let ack = c.submit(&edit, bad).await;
    assert!(text_of(&ack.payload.unwrap()).contains("as a number"));
    let ack = c.submit(&edit, values.clone()).await;
    assert!(ok_ack(&ack), "{ack:?}");
    let ack = c.submit(&edit, values).await;
    assert!(ok_ack(&ack), "a double submit is accepted quietly");
    c.w.wait_for_sent("chat.postMessage", "updated in Crono", WAIT)
        .await;
    let deal = c.crono.deal("d-1").unwrap();
    assert_eq!(deal["amount"], json!(12500.5));
    assert_eq!(deal["stage"], "negotiation");
    let patches: Vec<_> = c
        .crono
        .requests()
        .into_iter()
        .filter(|(m, _, _)| m == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].2["data"]["opportunityId"], "d-1");
    assert_eq!(patches[0].2["data"]["accountId"], "acc-1");
    c.w.stop().await;
}

#[tokio::test]
async fn notes_with_suggestions_in_the_ack_one_per_submit_and_a_429_retried() {
    let mut c = C::new(Backend::Sqlite).await;
    c.command_with(ADA, "/crono-add-note", "").await;
    let modal = c.opened(0).await;
    assert_eq!(modal["callback_id"], "crm_note");

    let options = c.suggest(&modal, "crm_account", "ac").await;
    let labels: Vec<&str> = options.iter().map(|(l, _)| l.as_str()).collect();
    assert!(
        labels.iter().any(|l| l.starts_with("Acme Corp")),
        "{labels:?}"
    );
    assert!(labels.iter().all(|l| l.chars().count() <= 75));
    let searches = c.crono.count("/Accounts/search");
    let again = c.suggest(&modal, "crm_account", "AC").await;
    assert_eq!(again, options, "the same answer");
    assert_eq!(
        c.crono.count("/Accounts/search"),
        searches,
        "from the cache"
    );
    let none = c.suggest(&modal, "crm_account", "zzz").await;
    assert_eq!(none[0].0, "No accounts found");
    let short = c.suggest(&modal, "crm_account", "a").await;
    assert!(short.is_empty(), "under 2 characters asks nothing");

    let acme = options
        .iter()
        .find(|(l, _)| l.starts_with("Acme Corp"))
        .unwrap()
        .1
        .clone();
    let values = |text: &str| {
        payloads::state(&[
            (
                "account",
                "crm_account",
                payloads::external_select_input(&acme, "Acme Corp"),
            ),
            ("text", "value", payloads::text_input(text)),
        ])
    };
    let empty = c
        .submit(
            &modal,
            payloads::state(&[("text", "value", payloads::text_input("x"))]),
        )
        .await;
    assert!(text_of(&empty.payload.unwrap()).contains("Pick an account"));
    let ack = c
        .submit(&modal, values("They sign in March <!channel>"))
        .await;
    assert!(ok_ack(&ack), "{ack:?}");
    let ack = c
        .submit(&modal, values("They sign in March <!channel>"))
        .await;
    assert!(ok_ack(&ack));
    let notes = c.crono.wait_for_notes(1).await;
    assert_eq!(notes[0]["accountId"], "acc-1");
    assert_eq!(notes[0]["description"], "They sign in March <!channel>");
    c.w.wait_for_sent(
        "chat.postMessage",
        "Note added to *Acme Corp* in Crono",
        WAIT,
    )
    .await;
    c.w.wait_for_sent(
        "chat.postMessage",
        "https://app.crono.example/account/acc-1",
        WAIT,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        c.crono.notes().len(),
        1,
        "two submits of one modal, one note"
    );

    // Crono answers 429 with Retry-After: the write waits and succeeds.
    c.command_with(ADA, "/crm-add-note", "").await;
    let second = c.opened(1).await;
    let posts = c.crono.count("/Notes");
    c.crono.fail_next(1, 429, Some(1));
    let ack = c
        .submit(
            &second,
            payloads::state(&[
                (
                    "account",
                    "crm_account",
                    payloads::external_select_input(&acme, "Acme Corp"),
                ),
                ("text", "value", payloads::text_input("Second call")),
            ]),
        )
        .await;
    assert!(ok_ack(&ack));
    let notes = c.crono.wait_for_notes(2).await;
    assert_eq!(notes[1]["description"], "Second call");
    assert_eq!(
        c.crono.count("/Notes"),
        posts + 2,
        "refused once, then made"
    );

    // The audit trail has both (written once the note is made).
    let store = &c.w.app().store;
    let tenant = store.ensure_tenant(TEAM).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let audited = store.audit_entries(tenant.id).await.unwrap();
        let ok = audited
            .iter()
            .filter(|e| e.action == "crm_note" && e.outcome == "ok")
            .count();
        if ok == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "audited notes: {ok}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.w.stop().await;
}

async fn task_in_the_persons_time_zone(backend: Backend) {
    let mut c = C::new(backend).await;
    c.command_with(ADA, "/crono-add-task", "").await;
    let modal = c.opened(0).await;
    assert_eq!(modal["callback_id"], "crm_task");
    let text = text_of(&modal);
    assert!(
        text.contains("Europe/Rome"),
        "the hint names the zone: {text}"
    );
    assert!(
        text.contains("\"initial_time\":\"09:00\""),
        "the settings' default time"
    );
    assert!(text.contains("\"min_query_length\":2"));

    let options = c.suggest(&modal, "crm_contact", "ma").await;
    let labels: Vec<&str> = options.iter().map(|(l, _)| l.as_str()).collect();
    assert!(
        labels.contains(&"Marco Rossi (Acme Corp) – marco@acme.example"),
        "{labels:?}"
    );
    assert!(labels.contains(&"Maria Bianchi (Acme Labs) – maria@acmelabs.example"));
    let none = c.suggest(&modal, "crm_contact", "qq").await;
    assert_eq!(
        none,
        vec![("No contacts found".to_owned(), "none".to_owned())]
    );
    let marco = options
        .iter()
        .find(|(l, _)| l.starts_with("Marco"))
        .unwrap()
        .1
        .clone();

    let values = |contact: Value| {
        payloads::state(&[
            ("contact", "crm_contact", contact),
            ("subject", "value", payloads::text_input("Send the pricing")),
            ("date", "value", payloads::date_input("2027-07-01")),
            ("time", "value", payloads::time_input("09:00")),
            (
                "type",
                "value",
                payloads::static_select_input("call", "Call"),
            ),
            ("description", "value", payloads::text_input("As promised")),
        ])
    };
    let nobody = c
        .submit(
            &modal,
            values(payloads::external_select_input("none", "No contacts found")),
        )
        .await;
    assert!(text_of(&nobody.payload.unwrap()).contains("Pick a contact"));
    let chosen = values(payloads::external_select_input(&marco, "Marco"));
    assert!(ok_ack(&c.submit(&modal, chosen.clone()).await));
    assert!(ok_ack(&c.submit(&modal, chosen).await));
    let tasks = c.crono.wait_for_tasks(1).await;
    let task = &tasks[0];
    // 09:00 in Rome on 1 July is 07:00 UTC (summer time), though Slack says +01:00 today.
    assert_eq!(task["activityDate"], "2027-07-01T07:00:00Z");
    assert_eq!(task["accountId"], "acc-1");
    assert_eq!(task["prospectId"], "pr-1");
    assert_eq!(task["subject"], "Send the pricing");
    assert_eq!(task["automatic"], false);
    assert!(task["type"] == "Call" || task["type"] == 1, "{task}");
    c.w.wait_for_sent("chat.postMessage", "Call task “Send the pricing” created in Crono with Marco Rossi (Acme Corp), due Thu 1 Jul 2027 09:00 (Europe/Rome)", WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.crono.tasks().len(), 1, "submitting twice makes one task");
    c.w.stop().await;
}

#[tokio::test]
async fn a_task_in_the_persons_time_zone_is_made_once_sqlite() {
    task_in_the_persons_time_zone(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_task_in_the_persons_time_zone_is_made_once_postgres() {
    task_in_the_persons_time_zone(Backend::Postgres).await;
}

#[tokio::test]
async fn the_followups_crm_buttons_match_the_account_or_let_the_person_pick() {
    let mut c = C::new(Backend::Sqlite).await;
    c.crono
        .add_deal("d-1", "acc-1", "Acme pilot", "proposal", 10000.0, "EUR");
    c.crono
        .add_deal("d-won", "acc-1", "Acme old win", "closedwon", 3000.0, "EUR");
    let id = c
        .followup_with(
            31,
            "Acme discovery",
            &[("Marco Rossi", "marco@acme.example")],
        )
        .await;

    // CRM Note: Marco's exact email names Acme Corp; the note carries the recording link.
    let click = c.w.click(ADA, "followup_crm_note", &id, "note-1");
    c.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let modal = c.opened(1).await;
    let shown = settled(&c.w, modal["id"].as_str().unwrap()).await;
    assert!(
        text_of(&shown).contains("Pushing the note to *Acme Corp*"),
        "{shown}"
    );
    let notes = c.crono.wait_for_notes(1).await;
    assert_eq!(notes[0]["accountId"], "acc-1");
    assert_eq!(notes[0]["prospectIds"], json!(["pr-1"]));
    let note = notes[0]["description"].as_str().unwrap();
    assert!(note.contains("Meeting: Acme discovery"), "{note}");
    assert!(note.contains("Recording: https://"), "{note}");
    c.w.wait_for_sent("chat.postMessage", "is on *Acme Corp* in Crono", WAIT)
        .await;
    // A second click makes no second note.
    let again = c.w.click(ADA, "followup_crm_note", &id, "note-2");
    c.w.slack.wait_for_ack(&again, WAIT).await.unwrap();
    let post =
        c.w.slack
            .wait_for_response_post("note-2", WAIT)
            .await
            .unwrap();
    assert!(
        text_of(&post.body).contains("already in the CRM"),
        "{}",
        post.body
    );
    assert_eq!(c.crono.notes().len(), 1);
    // Bob cannot push Ada's follow-up.
    let bobs = c.w.click(BOB, "followup_crm_note", &id, "note-bob");
    c.w.slack.wait_for_ack(&bobs, WAIT).await.unwrap();
    let post =
        c.w.slack
            .wait_for_response_post("note-bob", WAIT)
            .await
            .unwrap();
    assert!(text_of(&post.body).contains("belongs to someone else"));

    // View Deals: the matched account's open deals.
    let click = c.w.click(ADA, "followup_deals", &id, "deals");
    c.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let modal = c.opened(2).await;
    let deals = settled(&c.w, modal["id"].as_str().unwrap()).await;
    let text = text_of(&deals);
    assert!(
        text.contains("Acme pilot") && !text.contains("Acme old win"),
        "{text}"
    );

    // Create Task: prefilled with the meeting and Marco.
    let click = c.w.click(ADA, "followup_task", &id, "task");
    c.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let modal = c.opened(3).await;
    let task = settled(&c.w, modal["id"].as_str().unwrap()).await;
    let text = text_of(&task);
    assert_eq!(task["callback_id"], "crm_task", "{text}");
    assert!(text.contains("Follow-up: Acme discovery"), "{text}");
    assert!(text.contains("Marco Rossi (Acme Corp)"), "{text}");

    // Two accounts with the attendee's exact domain: the person picks, nothing is guessed.
    c.crono.add_account("acc-t1", "Tinexta", "tinexta.com");
    c.crono
        .add_account("acc-t2", "Tinexta Group", "https://www.tinexta.com/");
    c.crono.add_account("acc-t3", "Tinext", "tinext.io");
    let id2 = c
        .followup_with(32, "Tinexta intro", &[("Paola Verdi", "paola@tinexta.com")])
        .await;
    let click = c.w.click(ADA, "followup_crm_note", &id2, "note-3");
    c.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let modal = c.opened(5).await;
    let pick = settled(&c.w, modal["id"].as_str().unwrap()).await;
    assert_eq!(pick["callback_id"], "crm_pick_account", "{pick}");
    let text = text_of(&pick);
    assert!(
        text.contains("Tinexta Group") && text.contains("More than one account"),
        "{text}"
    );
    assert!(
        !text.contains("Tinext –") && !text.contains("tinext.io"),
        "{text}"
    );
    assert_eq!(c.crono.notes().len(), 1, "nothing pushed before the pick");
    let choice = {
        let mut v = None;
        walk(&pick, &mut |o| {
            if v.is_none()
                && o["text"]["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Tinexta Group"))
            {
                v = o["value"].as_str().map(str::to_owned);
            }
        });
        v.unwrap()
    };
    let values = payloads::state(&[(
        "candidate",
        "value",
        json!({
            "type": "radio_buttons",
            "selected_option": {
                "text": { "type": "plain_text", "text": "Tinexta Group" },
                "value": choice
            }
        }),
    )]);
    let ack = c.submit(&pick, values).await;
    let payload = ack.payload.expect("the modal says what happens");
    assert_eq!(payload["response_action"], "update");
    assert!(text_of(&payload).contains("Pushing the note to *Tinexta Group*"));
    let notes = c.crono.wait_for_notes(2).await;
    assert_eq!(notes[1]["accountId"], "acc-t2");
    assert!(
        notes[1]["description"]
            .as_str()
            .unwrap()
            .contains("Tinexta intro")
    );

    // "Tinext" is not "Tinexta": the exact domain decides, with no question asked.
    let id3 = c
        .followup_with(33, "Tinext call", &[("Luca Neri", "luca@tinext.io")])
        .await;
    let click = c.w.click(ADA, "followup_crm_note", &id3, "note-4");
    c.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let notes = c.crono.wait_for_notes(3).await;
    assert_eq!(notes[2]["accountId"], "acc-t3");

    // Free mail says nothing: no account is guessed from gmail.com.
    let id4 = c
        .followup_with(34, "Freelancer chat", &[("Gio", "gio@gmail.com")])
        .await;
    let before = c.w.slack.call_count("views.open");
    let click = c.w.click(ADA, "followup_crm_note", &id4, "note-5");
    c.w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let modal = c.opened(before).await;
    let pick = settled(&c.w, modal["id"].as_str().unwrap()).await;
    assert!(text_of(&pick).contains("No account matches"), "{pick}");
    assert_eq!(c.crono.notes().len(), 3);
    c.w.stop().await;
}

#[tokio::test]
async fn without_a_crm_the_commands_say_who_can_connect_one() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    let url_id = uuid::Uuid::new_v4().simple().to_string();
    let id = w.send(payloads::slash_command(
        TEAM,
        ADA,
        "/crono-add-task",
        "",
        &w.slack.response_url(&url_id),
    ));
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    let post = w.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("/crono-connect"),
        "{}",
        post.body
    );
    assert_eq!(w.slack.call_count("views.open"), 0);
    let envelope = payloads::block_suggestion_in(TEAM, ADA, "b", "crm_contact", "ma", None);
    let ack = w.slack.wait_for_ack(&w.send(envelope), WAIT).await.unwrap();
    assert!(text_of(&ack.payload.unwrap()).contains("No CRM connected"));
    w.stop().await;
}

#[tokio::test]
async fn suggestions_say_when_crono_struggles_and_only_admins_disconnect() {
    let mut c = C::new(Backend::Sqlite).await;
    c.command_with(ADA, "/crono-add-task", "").await;
    let modal = c.opened(0).await;

    // Crono slower than the ack allows: a hint inside Slack's 3 s, not a spinner.
    c.crono.set_delay(Duration::from_secs(5));
    let slow = c.suggest(&modal, "crm_contact", "ma").await;
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert!(slow[0].0.contains("Crono is slow"), "{slow:?}");
    assert_eq!(slow[0].1, "none");
    c.crono.set_delay(Duration::ZERO);
    // Rate limited, and refused keys: one try each (the person is waiting), plain words.
    c.crono.fail_next(1, 429, Some(5));
    let limited = c.suggest(&modal, "crm_contact", "mar").await;
    assert!(
        limited[0].0.contains("Crono is rate limiting us"),
        "{limited:?}"
    );
    c.crono.fail_next(1, 401, None);
    let refused = c.suggest(&modal, "crm_contact", "mari").await;
    assert!(
        refused[0]
            .0
            .contains("Crono refused the keys: an admin can run /crono-connect"),
        "{refused:?}"
    );
    // None of those answers was cached: the next keystroke asks Crono again.
    let found = c.suggest(&modal, "crm_contact", "ma").await;
    assert!(
        found.iter().any(|(l, _)| l.starts_with("Marco Rossi")),
        "{found:?}"
    );
    assert_eq!(c.crono.count("/Prospects/search"), 4);

    // Every request is counted by provider, operation and status.
    let metrics = reqwest::get(format!(
        "{}/metrics",
        bot::base_url(c.w.running.as_ref().unwrap())
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    for needle in [
        "crm_requests_total{provider=\"crono\",operation=\"prospects.search\",status=\"ok\"}",
        "crm_errors_total{provider=\"crono\",operation=\"prospects.search\",kind=\"rate_limited\"}",
        "crm_request_duration_seconds",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(needle)),
            "{needle} in {metrics}"
        );
    }

    // Ada is not an admin: her /crono-disconnect changes nothing.
    let url_id = c.command_with(ADA, "/crono-disconnect", "").await;
    let post =
        c.w.slack
            .wait_for_response_post(&url_id, WAIT)
            .await
            .unwrap();
    assert!(
        text_of(&post.body).contains("Only a Slack workspace admin or owner"),
        "{}",
        post.body
    );
    let app = c.w.app();
    let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
    let stored = || async {
        app.store
            .credential(&app.cipher, tenant.id, Subject::Tenant, Provider::Crono)
            .await
            .unwrap()
    };
    assert!(stored().await.is_some());
    // As an admin she can: the keys are gone, audited, and the pickers say so at once.
    c.w.slack.set_user(
        ADA,
        json!({
            "id": ADA, "team_id": TEAM, "name": "ada", "real_name": "Ada Seller",
            "is_admin": true, "is_owner": false, "tz": "Europe/Rome", "tz_offset": 3600,
            "profile": { "email": "ada@seller.example", "real_name": "Ada Seller" }
        }),
    );
    let url_id = c.command_with(ADA, "/crm-disconnect", "").await;
    let post =
        c.w.slack
            .wait_for_response_post(&url_id, WAIT)
            .await
            .unwrap();
    assert!(
        text_of(&post.body).contains("Crono is disconnected"),
        "{}",
        post.body
    );
    assert!(stored().await.is_none());
    let audited = app.store.audit_entries(tenant.id).await.unwrap();
    assert!(
        audited
            .iter()
            .any(|e| e.action == "disconnect" && e.outcome == "ok"),
        "{audited:?}"
    );
    let after = c.suggest(&modal, "crm_contact", "ma").await;
    assert!(after[0].0.contains("No CRM connected"), "{after:?}");
    c.w.stop().await;
}
