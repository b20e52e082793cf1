//! Bot admins (issue 14, item 1): Slack's workspace admins and owners, and the bot admins
//! they name in `/followup-settings`, may change the team's settings (bot admins, retention,
//! the CRM); everyone else is refused with who can, checked again at submit; every change
//! audited. A team's own shorter retention purges only that team's follow-ups.

use super::*;
use crate::support::exec_at;

fn person(user: &str, is_admin: bool) -> Value {
    json!({
        "id": user, "team_id": TEAM, "name": user.to_lowercase(), "real_name": "Someone",
        "is_admin": is_admin, "is_owner": false, "tz": "Europe/Rome", "tz_offset": 3600,
        "profile": { "email": format!("{}@seller.example", user.to_lowercase()), "real_name": "Someone" }
    })
}

impl World {
    /// `/followup-settings` from `user`: the modal.
    pub(super) async fn settings_modal(&self, user: &str) -> Value {
        let before = self.slack.call_count("views.open");
        self.command(user, "/followup-settings").await;
        let opened = self
            .slack
            .wait_for_calls("views.open", before + 1, WAIT)
            .await
            .unwrap();
        opened[before].response["view"].clone()
    }

    /// `user` presses Team settings in their settings modal: what is pushed over it.
    async fn press_team_settings(&self, user: &str, settings: &Value) -> Value {
        let before = self.slack.call_count("views.push");
        let click = self.send(payloads::block_actions_with(
            TEAM,
            user,
            payloads::button_action("team_settings_open", ""),
            Some(settings.clone()),
        ));
        self.slack.wait_for_ack(&click, WAIT).await.unwrap();
        let pushed = self
            .slack
            .wait_for_calls("views.push", before + 1, WAIT)
            .await
            .unwrap();
        pushed[before].response["view"].clone()
    }

    fn submit_team(&self, user: &str, view: &Value, admins: &[&str], retention: &str) -> String {
        let state = json!({
            "bot_admins": { "value": { "type": "multi_users_select", "selected_users": admins } },
            "retention": { "value": { "type": "static_select",
                "selected_option": { "value": retention, "text": { "type": "plain_text", "text": retention } } } },
        });
        self.send(payloads::view_submission_for(TEAM, user, view, state))
    }
}

async fn bot_admins(backend: Backend) {
    let w = World::new(backend, false, &[]).await;
    w.slack.set_user(ADA, person(ADA, true));
    w.slack.set_user(BOB, person(BOB, false));
    let app = w.app();
    let tenant = app.store.ensure_tenant(TEAM).await.unwrap();

    // Bob is nobody's admin: no button, and a forged click or submit is refused naming who.
    let bobs = w.settings_modal(BOB).await;
    assert!(!bobs.to_string().contains("team_settings_open"), "{bobs}");
    let refused = w.press_team_settings(BOB, &bobs).await;
    assert!(
        text_of(&refused).contains("Only a Slack workspace admin or owner can change the team"),
        "{refused}"
    );
    let forged = json!({ "type": "modal", "callback_id": "team_settings" });
    let id = w.submit_team(BOB, &forged, &[BOB], "30");
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert!(
        text_of(&ack.payload.unwrap()).contains("Only a Slack workspace admin or owner"),
        "refused at submit"
    );
    assert!(app.store.bot_admins(tenant.id).await.unwrap().is_empty());

    // Ada, a Slack admin, names Bob and a shorter retention.
    let adas = w.settings_modal(ADA).await;
    assert!(adas.to_string().contains("team_settings_open"), "{adas}");
    let team = w.press_team_settings(ADA, &adas).await;
    assert_eq!(team["callback_id"], "team_settings", "{team}");
    assert!(text_of(&team).contains("30 days"), "{team}");
    let id = w.submit_team(ADA, &team, &[BOB], "30");
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert!(ack.payload.is_none(), "{ack:?}");
    assert_eq!(app.store.bot_admins(tenant.id).await.unwrap(), vec![BOB]);
    assert_eq!(app.store.team_retention(tenant.id).await.unwrap(), Some(30));
    let audit = app.store.audit_entries(tenant.id).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "bot_admin_add" && e.target == BOB),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "retention_set" && e.detail.as_deref() == Some("30")),
        "{audit:?}"
    );
    // A period the list does not offer is refused.
    let id = w.submit_team(ADA, &team, &[BOB], "9999");
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert!(ack.payload.unwrap()["errors"]["retention"].is_string());

    // Bob, now a bot admin, gets the button and may connect the team's CRM.
    let bobs = w.settings_modal(BOB).await;
    assert!(bobs.to_string().contains("team_settings_open"), "{bobs}");
    let before = w.slack.call_count("views.open");
    let (_, url_id) = w.command(BOB, "/crono-connect").await;
    w.slack
        .wait_for_calls("views.open", before + 1, WAIT)
        .await
        .unwrap();
    assert!(w.slack.response_posts().iter().all(|p| p.id != url_id));

    // Ada demoted by Slack: refused at submit, told who can (Bob, by mention).
    w.slack.set_user(ADA, person(ADA, false));
    let id = w.submit_team(ADA, &team, &[], "default");
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    let words = text_of(&ack.payload.unwrap());
    assert!(words.contains("or a bot admin (<@U0BOB>)"), "{words}");
    assert_eq!(app.store.bot_admins(tenant.id).await.unwrap(), vec![BOB]);

    // Bob removes himself: the change is audited, and he is refused the next time.
    let team = w.press_team_settings(BOB, &bobs).await;
    let id = w.submit_team(BOB, &team, &[], "default");
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert!(ack.payload.is_none(), "{ack:?}");
    assert!(app.store.bot_admins(tenant.id).await.unwrap().is_empty());
    assert_eq!(app.store.team_retention(tenant.id).await.unwrap(), None);
    let audit = app.store.audit_entries(tenant.id).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "bot_admin_remove" && e.target == BOB)
    );
    let (_, url_id) = w.command(BOB, "/crono-connect").await;
    let post = w.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("Only a Slack workspace admin or owner"),
        "{}",
        post.body
    );
}

#[tokio::test]
async fn admins_and_named_bot_admins_may_change_the_team_settings_sqlite() {
    bot_admins(Backend::Sqlite).await;
}

#[tokio::test]
async fn admins_and_named_bot_admins_may_change_the_team_settings_postgres() {
    bot_admins(Backend::Postgres).await;
}

async fn team_retention(backend: Backend) {
    let w = World::new(backend, false, &[]).await;
    let app = w.app();
    let store = &app.store;
    let ours = store.ensure_tenant(TEAM).await.unwrap();
    let theirs = store.ensure_tenant("T0OTHER").await.unwrap();
    let meeting: followup_bot::domain::meeting::Meeting =
        serde_json::from_value(json!({ "recording_id": 501, "title": "Initech" })).unwrap();
    for tenant in [&ours, &theirs] {
        let ada = store.ensure_user(tenant.id, ADA).await.unwrap();
        store
            .create_followup(followup_bot::store::followups::NewFollowup {
                tenant: tenant.id,
                user: ada.id,
                meeting: &meeting,
                job_kind: "test.none",
                max_attempts: 1,
                hold: Duration::ZERO,
                click_window: Duration::ZERO,
            })
            .await
            .unwrap()
            .unwrap();
    }
    exec_at(
        store,
        "UPDATE followups SET created_at = $1",
        followup_bot::store::now() - chrono::Duration::days(45),
    )
    .await;
    store.set_team_retention(ours.id, Some(30)).await.unwrap();
    let purged = followup_bot::features::retention::purge_once(app)
        .await
        .unwrap();
    assert!(purged.team >= 1, "{purged:?}");
    let count = |tenant| async move {
        let ada = store.ensure_user(tenant, ADA).await.unwrap();
        store
            .latest_followups(tenant, ada.id, 10)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(
        count(ours.id).await,
        0,
        "our 30 days purge a 45-day-old follow-up"
    );
    assert_eq!(count(theirs.id).await, 1, "their 90 days keep theirs");
}

#[tokio::test]
async fn a_teams_shorter_retention_purges_only_its_own_sqlite() {
    team_retention(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_teams_shorter_retention_purges_only_its_own_postgres() {
    team_retention(Backend::Postgres).await;
}

async fn sync_switch(backend: Backend) {
    let c = super::crm::C::new(backend).await;
    let w = &c.w;
    w.slack.set_user(BOB, person(BOB, true));
    let app = w.app();
    let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
    let paused = || async { app.crm_sync_status(tenant.id).await.unwrap().paused };
    let press = |user: &'static str, value: &'static str| {
        let url = format!("sync-{user}-{value}");
        let mut click = payloads::block_actions(TEAM, user, "home_crm_sync", value, None);
        click["payload"]["response_url"] = json!(w.slack.response_url(&url));
        let id = w.send(click);
        (id, url)
    };

    // Ada (no admin) is refused, naming who can; nothing changes.
    let (id, url) = press(ADA, "pause");
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    let post = w.slack.wait_for_response_post(&url, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains(
            "Only a Slack workspace admin or owner can pause or resume the team's CRM sync"
        ),
        "{}",
        post.body
    );
    assert!(!paused().await);

    // Bob (a Slack admin) pauses it from App Home; audited.
    let (id, _) = press(BOB, "pause");
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while !paused().await {
        assert!(Instant::now() < deadline, "never paused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let audit = app.store.audit_entries(tenant.id).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "crm_sync_paused"),
        "{audit:?}"
    );

    // Bob names Ada a bot admin; she resumes it from the team settings' switch.
    let bob = app.store.ensure_user(tenant.id, BOB).await.unwrap();
    app.set_bot_admins(tenant.id, bob.id, BOB, &[ADA.to_owned()])
        .await
        .unwrap();
    let settings = w.settings_modal(ADA).await;
    let team = w.press_team_settings(ADA, &settings).await;
    assert!(
        text_of(&team).contains("*CRM sync*: paused since"),
        "{team}"
    );
    let state = json!({
        "bot_admins": { "value": { "type": "multi_users_select", "selected_users": [ADA] } },
        "retention": { "value": { "type": "static_select",
            "selected_option": { "value": "default", "text": { "type": "plain_text", "text": "d" } } } },
        "crm_sync": { "value": { "type": "radio_buttons",
            "selected_option": { "value": "on", "text": { "type": "plain_text", "text": "On" } } } },
    });
    let id = w.send(payloads::view_submission_for(TEAM, ADA, &team, state));
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert!(ack.payload.is_none(), "{ack:?}");
    assert!(!paused().await, "resumed");
    let audit = app.store.audit_entries(tenant.id).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "crm_sync_resumed"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn only_admins_and_bot_admins_flip_the_crm_sync_switch_sqlite() {
    sync_switch(Backend::Sqlite).await;
}

#[tokio::test]
async fn only_admins_and_bot_admins_flip_the_crm_sync_switch_postgres() {
    sync_switch(Backend::Postgres).await;
}
