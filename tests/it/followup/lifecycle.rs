//! The data lifecycle (issue 13, item 7): "Delete my data" from `/followup-settings` (with its
//! confirmation; Fathom's webhook deleted and Google's grant revoked at the source; nobody
//! else's data touched) and the scheduled retention purge, on both backends.

use super::google::G;
use super::*;
use crate::support::{count_rows as count, exec_at};
use followup_bot::domain::person::Settings;

const BOB_KEY: &str = "fathom-key-bob-0123456789";

/// `user` drafts a follow-up (by the template) of a meeting recorded today; its id.
async fn followup_of(w: &World, user: &str, key: &str, recording: u64, title: &str) -> String {
    add_today(&w.fathom, key, recording, title);
    let picker = w.open_picker(user).await;
    let ready = w.pick(user, &picker, recording).await;
    assert!(text_of(&ready).contains("Follow-up ready"), "{ready}");
    followup_id(&ready)
}

async fn delete_my_data(backend: Backend) {
    let g = G::new(backend).await;
    let w = &g.w;
    w.fathom.add_key(BOB_KEY);
    // Ada: Fathom through the modal (so with a webhook), Google, a follow-up, settings.
    w.connect_fathom(ADA, ADA_KEY).await;
    let hook = w.webhook_of(ADA_KEY).await;
    g.connect(ADA).await;
    followup_of(w, ADA, ADA_KEY, 71, "Initech renewal").await;
    // Bob: the same team, his own key and follow-up.
    w.connect(BOB, BOB_KEY).await;
    followup_of(w, BOB, BOB_KEY, 72, "Umbrella kickoff").await;
    let (tenant, ada) = g.person(ADA).await;
    let (_, bob) = g.person(BOB).await;
    let app = g.app();
    app.store
        .update_settings(
            ada.id,
            &Settings {
                email_tone: "friendly".into(),
                language_override: Some("fr".into()),
                signature: Some("Ada — Acme Sales".into()),
                default_task_type: "call".into(),
                default_task_time: "08:30".into(),
                meeting_dms: false,
            },
        )
        .await
        .unwrap();

    // The settings modal has the button; it pushes the confirmation.
    let settings = w.settings_modal(ADA).await;
    assert!(
        settings.to_string().contains("settings_delete_data"),
        "{settings}"
    );
    let click = w.send(payloads::block_actions_with(
        TEAM,
        ADA,
        payloads::button_action("settings_delete_data", ""),
        Some(settings.clone()),
    ));
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let pushed = w.slack.wait_for_call("views.push", WAIT).await.unwrap();
    let confirm = pushed.response["view"].clone();
    assert_eq!(confirm["callback_id"], "delete_my_data");
    assert!(text_of(&confirm).contains("Fathom key"), "{confirm}");
    // Nothing is deleted before the confirmation.
    assert_eq!(
        app.store
            .latest_followups(tenant.id, ada.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Confirmed, and the submission redelivered: both close every modal, one deletion.
    let submit = payloads::view_submission_for(TEAM, ADA, &confirm, payloads::state(&[]));
    for _ in 0..2 {
        let ack = w
            .slack
            .wait_for_ack(&w.send(submit.clone()), WAIT)
            .await
            .unwrap();
        assert_eq!(ack.payload.unwrap()["response_action"], "clear");
    }
    w.wait_for_sent("chat.postMessage", "I deleted your data", WAIT)
        .await;

    // At the source: the webhook is gone from Ada's Fathom account, the grant revoked.
    assert!(
        w.fathom.webhooks().iter().all(|h| h.id != hook.id),
        "{:?}",
        w.fathom.webhooks()
    );
    assert_eq!(g.google.revoked_tokens().len(), 1);
    // Here: no follow-ups, no credentials, settings and profile back to the defaults.
    assert!(
        app.store
            .latest_followups(tenant.id, ada.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!matches!(
        app.fathom_key(tenant.id, ada.id).await,
        Ok(Ok(_))
    ));
    assert_eq!(app.google_account(tenant.id, ada.id).await.unwrap(), None);
    let ada_now = app.store.user(tenant.id, ada.id).await.unwrap().unwrap();
    assert_eq!(ada_now.signature, None);
    assert_eq!(ada_now.email_tone, "professional");
    assert_eq!(ada_now.language_override, None);
    assert!(ada_now.meeting_dms);
    let audit = app.store.audit_entries(tenant.id).await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.action == "delete_data").count(),
        1,
        "{audit:?}"
    );
    // Bob keeps everything.
    assert_eq!(
        app.store
            .latest_followups(tenant.id, bob.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(app.fathom_key(tenant.id, bob.id).await, Ok(Ok(_))));

    // One DM, however often the confirmation arrived.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dms = w
        .slack
        .calls("chat.postMessage")
        .iter()
        .filter(|c| text_of(&c.body).contains("I deleted your data"))
        .count();
    assert_eq!(dms, 1);
}

#[tokio::test]
async fn delete_my_data_revokes_at_the_source_and_keeps_the_others_sqlite() {
    delete_my_data(Backend::Sqlite).await;
}

#[tokio::test]
async fn delete_my_data_revokes_at_the_source_and_keeps_the_others_postgres() {
    delete_my_data(Backend::Postgres).await;
}

async fn retention(backend: Backend) {
    let w = World::new(
        backend,
        false,
        &[
            ("RETENTION_DAYS", "30"),
            ("AUDIT_RETENTION_DAYS", "60"),
            ("RETENTION_PURGE_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    w.connect(ADA, ADA_KEY).await;
    let old = followup_of(&w, ADA, ADA_KEY, 81, "Old call").await;
    let app = w.app();
    let store = &app.store;
    let tenant = store.ensure_tenant(TEAM).await.unwrap();
    let ada = store.ensure_user(tenant.id, ADA).await.unwrap();
    // A job still waiting (queued a month ago, due later), and two audit entries.
    store
        .enqueue_job(
            "test.waiting",
            &json!({}),
            None,
            5,
            Some(Utc::now() + chrono::Duration::days(1)),
        )
        .await
        .unwrap();
    store
        .audit(tenant.id, Some(ada.id), "test_old", "person", "ok", None)
        .await
        .unwrap();
    store
        .audit(tenant.id, Some(ada.id), "test_middle", "person", "ok", None)
        .await
        .unwrap();
    // The old draft's job finishes (it marks itself done just after the DM) before it ages.
    let deadline = Instant::now() + WAIT;
    while count(store, "SELECT COUNT(*) FROM jobs WHERE status = 'done'").await != 1 {
        assert!(Instant::now() < deadline, "the draft job never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let days_ago = |d: i64| followup_bot::store::now() - chrono::Duration::days(d);
    // Everything so far is 31 days old; the audit entries 61 and 45.
    exec_at(store, "UPDATE followups SET created_at = $1", days_ago(31)).await;
    exec_at(
        store,
        "UPDATE jobs SET created_at = $1, updated_at = $1",
        days_ago(31),
    )
    .await;
    exec_at(
        store,
        "UPDATE processed_envelopes SET received_at = $1",
        days_ago(31),
    )
    .await;
    exec_at(store, "UPDATE meetings SET listed_at = $1", days_ago(31)).await;
    exec_at(
        store,
        "UPDATE audit_log SET created_at = $1 WHERE action = 'test_old'",
        days_ago(61),
    )
    .await;
    exec_at(
        store,
        "UPDATE audit_log SET created_at = $1 WHERE action = 'test_middle'",
        days_ago(45),
    )
    .await;
    // Then a fresh follow-up.
    let fresh = followup_of(&w, ADA, ADA_KEY, 82, "New call").await;

    // The scheduled purge (every second here) removes the old, keeps the fresh.
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = store.latest_followups(tenant.id, ada.id, 10).await.unwrap();
        if listed.len() == 1 {
            assert_eq!(listed[0].id.0, fresh);
            break;
        }
        assert!(Instant::now() < deadline, "never purged: {listed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(old, fresh);
    // Let the purge that removed them finish its transaction's neighbours too.
    let deadline = Instant::now() + WAIT;
    while count(
        store,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'test_old'",
    )
    .await
        > 0
    {
        assert!(Instant::now() < deadline, "the old audit entry stays");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'test_middle'"
        )
        .await,
        1,
        "the audit log is kept longer"
    );
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM jobs WHERE kind = 'test.waiting'"
        )
        .await,
        1,
        "a waiting job is never purged"
    );
    // Only the fresh draft's job is left (once it has finished).
    let deadline = Instant::now() + WAIT;
    while count(
        store,
        "SELECT COUNT(*) FROM jobs WHERE kind <> 'test.waiting' AND status = 'done'",
    )
    .await
        != 1
    {
        assert!(
            Instant::now() < deadline,
            "the old draft job stays, or the new one never ends"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let purged = followup_bot::features::retention::purge_once(app)
        .await
        .unwrap();
    assert_eq!(purged.total(), 0, "nothing more to purge: {purged:?}");
}

#[tokio::test]
async fn the_retention_purge_keeps_fresh_data_waiting_jobs_and_the_audit_log_sqlite() {
    retention(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_retention_purge_keeps_fresh_data_waiting_jobs_and_the_audit_log_postgres() {
    retention(Backend::Postgres).await;
}
