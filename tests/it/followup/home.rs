//! App Home: what each person sees (their connections, settings and own follow-ups only) and
//! where its buttons lead.

use std::time::{Duration, Instant};

use super::crm::C;
use super::*;

/// The latest Home published for `user`, waiting for the `n`th (from 1) publication.
async fn home_of(w: &World, user: &str, n: usize) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let published: Vec<Value> = w
            .slack
            .calls("views.publish")
            .into_iter()
            .filter(|c| c.body["user_id"] == user && c.response["ok"] == true)
            .map(|c| c.body["view"].clone())
            .collect();
        if published.len() >= n {
            return published[n - 1].clone();
        }
        assert!(
            Instant::now() < deadline,
            "Home #{n} of {user} never published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn publications(w: &World, user: &str) -> usize {
    w.slack
        .calls("views.publish")
        .iter()
        .filter(|c| c.body["user_id"] == user)
        .count()
}

/// Opens the Home tab; returns the view published for it.
async fn open_home(w: &World, user: &str) -> Value {
    let n = publications(w, user);
    let started = Instant::now();
    let id = w.send(payloads::app_home_opened(TEAM, user));
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    let view = home_of(w, user, n + 1).await;
    println!(
        "App Home for {user} published {} ms after app_home_opened",
        started.elapsed().as_millis()
    );
    view
}

/// A click on a Home button (the payload Slack sends from the Home tab).
fn click_home(w: &World, user: &str, home: &Value, action: &str, value: &str) -> String {
    let envelope = payloads::block_actions(TEAM, user, action, value, Some(home.clone()));
    w.send(envelope)
}

fn action_ids(view: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for block in view["blocks"].as_array().unwrap() {
        if let Some(id) = block["accessory"]["action_id"].as_str() {
            ids.push(id.to_owned());
        }
    }
    ids
}

async fn home_shows_each_person_their_own(backend: Backend) {
    let c = C::new(backend).await;
    let w = &c.w;

    // Bob, brand new: what to connect first, with the buttons; the team's CRM and who
    // connected it; no CRM button (not an admin).
    let bob = open_home(w, BOB).await;
    assert_eq!(bob["type"], "home");
    let text = text_of(&bob);
    assert!(text.contains("Start here"), "{text}");
    assert!(
        text.contains("Crono is connected for the team (by <@U0ADMIN>)"),
        "{text}"
    );
    assert!(text.contains("No follow-ups yet"), "{text}");
    let ids = action_ids(&bob);
    assert!(ids.contains(&"home_fathom_connect".to_owned()), "{ids:?}");
    assert!(ids.contains(&"home_settings_edit".to_owned()), "{ids:?}");
    assert!(!ids.iter().any(|id| id.starts_with("home_crm")), "{ids:?}");
    // The Messages tab sends the same event: nothing is published for it.
    let before = publications(w, BOB);
    let mut messages_tab = payloads::app_home_opened(TEAM, BOB);
    messages_tab["payload"]["event"]["tab"] = json!("messages");
    let id = w.send(messages_tab);
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();

    // Ada drafts a follow-up of a meeting whose title tries to ping everyone.
    let title = "Acme <!channel> & *Co* renewal";
    let id = c
        .followup_with(7, title, &[("Marco Rossi", "marco@acme.example")])
        .await;
    let ada = open_home(w, ADA).await;
    let text = text_of(&ada);
    assert!(
        text.contains("Acme &lt;!channel&gt; &amp; *Co* renewal"),
        "{text}"
    );
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(text.contains("Draft ready"), "{text}");
    assert!(text.contains("*Fathom* is connected"), "{text}");
    let view_button = ada["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["accessory"]["action_id"] == "followup_view")
        .expect("a View & Edit button");
    assert_eq!(view_button["accessory"]["value"], id.as_str());

    // Bob never sees Ada's follow-up, and her id in his click opens nothing.
    let bob = open_home(w, BOB).await;
    assert!(!text_of(&bob).contains("Acme"), "{bob}");
    assert!(!text_of(&bob).contains(&id), "{bob}");
    assert_eq!(
        publications(w, BOB),
        before + 1,
        "the Messages tab drew nothing"
    );
    let opens = w.slack.call_count("views.open");
    let click = click_home(w, BOB, &bob, "followup_view", &id);
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    w.wait_for_sent("chat.postMessage", "belongs to someone else", WAIT)
        .await;
    assert_eq!(
        w.slack.call_count("views.open"),
        opens,
        "nothing opened for Bob"
    );

    // Ada's View & Edit opens her follow-up as the DM's button does.
    let click = click_home(w, ADA, &ada, "followup_view", &id);
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let edit = w.opened(opens).await;
    assert_eq!(edit["callback_id"], "followup_edit");
    assert_eq!(edit["private_metadata"], id.as_str());

    // Edit settings opens the settings modal; saving refreshes Home with the new summary.
    let click = click_home(w, ADA, &ada, "home_settings_edit", "settings");
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let settings = w.opened(opens + 1).await;
    assert_eq!(settings["callback_id"], "followup_settings");
    let n = publications(w, ADA);
    let saved = payloads::view_submission_for(
        TEAM,
        ADA,
        &settings,
        payloads::state(&[
            (
                "tone",
                "value",
                payloads::static_select_input("formal", "Formal"),
            ),
            (
                "language",
                "value",
                payloads::static_select_input("auto", "auto"),
            ),
            ("signature", "value", payloads::text_input("")),
            (
                "task_type",
                "value",
                payloads::static_select_input("call", "Call"),
            ),
            (
                "task_time",
                "value",
                json!({ "type": "timepicker", "selected_time": "10:30" }),
            ),
            (
                "meeting_dms",
                "value",
                payloads::static_select_input("on", "Yes"),
            ),
        ]),
    );
    w.slack.wait_for_ack(&w.send(saved), WAIT).await.unwrap();
    let refreshed = home_of(w, ADA, n + 1).await;
    let text = text_of(&refreshed);
    assert!(
        text.contains("formal tone") && text.contains("Call at 10:30"),
        "{text}"
    );

    // Disconnect Fathom from Home: the key is gone and Home offers to connect again, whose
    // button opens the connect modal.
    let n = publications(w, ADA);
    let click = click_home(w, ADA, &refreshed, "home_fathom_disconnect", "disconnect");
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let after = home_of(w, ADA, n + 1).await;
    assert!(
        action_ids(&after).contains(&"home_fathom_connect".to_owned()),
        "{after}"
    );
    let app = w.app();
    let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
    let ada_row = app.store.ensure_user(tenant.id, ADA).await.unwrap();
    assert!(matches!(
        app.fathom_key(tenant.id, ada_row.id).await,
        Ok(Err(_))
    ));
    // Her follow-up is still listed: disconnecting deletes the key, not her work.
    assert!(text_of(&after).contains("renewal"));
    let opens = w.slack.call_count("views.open");
    let click = click_home(w, ADA, &after, "home_fathom_connect", "connect");
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let connect = w.opened(opens).await;
    assert_eq!(connect["callback_id"], "fathom_connect");
}

#[tokio::test]
async fn home_shows_each_person_their_own_sqlite() {
    home_shows_each_person_their_own(Backend::Sqlite).await;
}

#[tokio::test]
async fn home_shows_each_person_their_own_postgres() {
    home_shows_each_person_their_own(Backend::Postgres).await;
}

/// A workspace admin gets the CRM's buttons on Home; they lead to the CRM's own modal and
/// disconnect, which check again that the person is an admin.
#[tokio::test]
async fn admins_get_the_crm_buttons() {
    let c = C::new(Backend::Sqlite).await;
    let w = &c.w;
    w.slack.set_user(
        ADA,
        json!({ "id": ADA, "team_id": TEAM, "is_admin": true, "real_name": "Ada Seller",
                "profile": { "email": "ada@seller.example", "real_name": "Ada Seller" } }),
    );
    let ada = open_home(w, ADA).await;
    assert!(
        action_ids(&ada).contains(&"home_crm_disconnect".to_owned()),
        "{ada}"
    );
    let n = publications(w, ADA);
    let click = click_home(w, ADA, &ada, "home_crm_disconnect", "disconnect");
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let after = home_of(w, ADA, n + 1).await;
    assert!(
        action_ids(&after).contains(&"home_crm_connect".to_owned()),
        "{after}"
    );
    let app = w.app();
    let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
    assert_eq!(app.store.team_crm(tenant.id).await.unwrap(), None);
    let opens = w.slack.call_count("views.open");
    let click = click_home(w, ADA, &after, "home_crm_connect", "connect");
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    assert_eq!(w.opened(opens).await["callback_id"], "crm_connect");
}
