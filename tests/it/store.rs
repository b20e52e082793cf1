//! The store test-suite, run against both SQLite and PostgreSQL.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::TestDb;
use followup_bot::crypto::{Cipher, generate_key};
use followup_bot::domain::person::Profile;
use followup_bot::domain::provider::Provider;
use followup_bot::store::credentials::{NewCredential, Subject};
use followup_bot::store::{Store, oauth_states};
use secrecy::{ExposeSecret, SecretString};

both_backends!(
    tenants_and_users_are_created_once,
    users_are_scoped_to_their_tenant,
    credentials_are_sealed_at_rest,
    revoked_credentials_are_not_served,
    oauth_state_is_single_use,
    expired_oauth_state_is_refused,
    jobs_are_claimed_completed_retried_and_dead_lettered,
    job_dedupe_key_enqueues_once,
    a_job_whose_worker_died_is_claimed_again,
    released_jobs_do_not_count_an_attempt,
    concurrent_claims_never_share_a_job,
    deliveries_are_recorded_once,
    leases_have_one_holder,
    audit_entries_are_kept,
    a_follow_up_its_job_and_the_click_key_are_written_together,
    a_worker_whose_lease_was_taken_over_cannot_touch_the_job,
    credentials_move_to_the_current_key_so_old_keys_can_go,
    what_doctor_reads,
    the_crm_mirror_upserts_searches_sweeps_and_pauses,
);

/// `doctor`'s reads: the migrations against the binary's, which key sealed each credential,
/// who has a Fathom webhook.
async fn what_doctor_reads(store: Store, db: &TestDb) {
    let status = store.migration_status().await.unwrap();
    let ours = match &store {
        Store::Sqlite(_) => followup_bot::store::SQLITE_MIGRATIONS.iter().count(),
        Store::Postgres(_) => followup_bot::store::POSTGRES_MIGRATIONS.iter().count(),
    };
    assert!(status.is_current(), "{status:?}");
    assert_eq!(status.applied, ours);
    let again = Store::connect_existing(&db.url).await.unwrap();
    assert_eq!(again.migration_status().await.unwrap(), status);
    again.close().await;

    let old_key = SecretString::from(generate_key());
    let old = Cipher::new(&old_key, &[]).unwrap();
    let new = cipher();
    let tenant = store.ensure_tenant("T1").await.unwrap();
    assert_eq!(store.credential_key_ids().await.unwrap(), []);
    assert_eq!(store.fathom_webhook_coverage().await.unwrap(), (0, 0));
    let mut users = Vec::new();
    for (slack_id, sealer) in [("U1", &old), ("U2", &old), ("U3", &new)] {
        let user = store.ensure_user(tenant.id, slack_id).await.unwrap();
        crate::support::put_fathom_key(&store, sealer, &user, "fathom-key-0123456789").await;
        users.push(user);
    }
    let mut ids = store.credential_key_ids().await.unwrap();
    ids.sort_by_key(|(_, n)| *n);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0].1, 1);
    assert_eq!(ids[1].1, 2);
    assert!(new.knows_key_id(&ids[0].0) && !new.knows_key_id(&ids[1].0));
    assert_eq!(followup_bot::crypto::hex(&ids[0].0), new.key_id());
    let rotating = Cipher::new(&SecretString::from(generate_key()), &[old_key]).unwrap();
    assert!(rotating.knows_key_id(&ids[1].0) && !rotating.knows_key_id(&ids[0].0));

    store
        .put_fathom_webhook(
            &new,
            tenant.id,
            users[0].id,
            "path-one",
            &SecretString::from("whsec_abc".to_owned()),
        )
        .await
        .unwrap();
    assert_eq!(store.fathom_webhook_coverage().await.unwrap(), (3, 1));
}

/// A database nobody migrated yet: every migration pending, and reading that creates nothing.
async fn an_empty_database_has_every_migration_pending(backend: crate::support::Backend) {
    let db = TestDb::new(backend).await;
    // The (empty) SQLite file exists, as after someone created it by hand.
    Store::connect(&db.url).await.unwrap().close().await;
    let store = Store::connect_existing(&db.url).await.unwrap();
    let status = store.migration_status().await.unwrap();
    assert_eq!(status.applied, 0);
    assert!(
        !status.pending.is_empty() && !status.is_current(),
        "{status:?}"
    );
    assert_eq!(status.pending[0], 1);
    assert_eq!(
        store.migration_status().await.unwrap(),
        status,
        "nothing was created"
    );
    store.close().await;
}

#[tokio::test]
async fn an_empty_sqlite_database_has_every_migration_pending() {
    an_empty_database_has_every_migration_pending(crate::support::Backend::Sqlite).await;
}

#[tokio::test]
async fn an_empty_postgres_database_has_every_migration_pending() {
    an_empty_database_has_every_migration_pending(crate::support::Backend::Postgres).await;
}

#[tokio::test]
async fn a_missing_sqlite_file_is_not_created_by_connect_existing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/bot.db?mode=rwc", dir.path().display());
    assert_eq!(
        followup_bot::store::sqlite_file(&url),
        Some(dir.path().join("data/bot.db"))
    );
    assert!(Store::connect_existing(&url).await.is_err());
    assert!(!dir.path().join("data").exists(), "nothing created");
}

fn cipher() -> Cipher {
    Cipher::new(&SecretString::from(generate_key()), &[]).unwrap()
}

async fn tenants_and_users_are_created_once(store: Store, _db: &TestDb) {
    let t1 = store.ensure_tenant("T001").await.unwrap();
    let t2 = store.ensure_tenant("T001").await.unwrap();
    assert_eq!(t1.id, t2.id);
    let u1 = store.ensure_user(t1.id, "U001").await.unwrap();
    let u2 = store.ensure_user(t1.id, "U001").await.unwrap();
    assert_eq!(u1.id, u2.id);
    assert_eq!(u1.email_tone, "professional");
    assert!(u1.meeting_dms);
    assert!(u1.profile_refreshed_at.is_none());

    let profile = Profile {
        email: Some("ada@example.com".into()),
        real_name: Some("Ada Lovelace".into()),
        tz: Some("Europe/Rome".into()),
        tz_offset_secs: Some(3600),
        is_admin: false,
    };
    store.update_profile(u1.id, &profile).await.unwrap();
    let u = store.user(t1.id, u1.id).await.unwrap().unwrap();
    assert_eq!(u.email.as_deref(), Some("ada@example.com"));
    assert_eq!(u.tz.as_deref(), Some("Europe/Rome"));
    assert_eq!(u.tz_offset_secs, Some(3600));
    assert!(u.profile_refreshed_at.is_some());
}

async fn users_are_scoped_to_their_tenant(store: Store, _db: &TestDb) {
    let a = store.ensure_tenant("TA").await.unwrap();
    let b = store.ensure_tenant("TB").await.unwrap();
    let ua = store.ensure_user(a.id, "U1").await.unwrap();
    let ub = store.ensure_user(b.id, "U1").await.unwrap();
    assert_ne!(
        ua.id, ub.id,
        "the same Slack user id in two teams is two people"
    );
    assert!(store.user(b.id, ua.id).await.unwrap().is_none());
}

/// Every secret must be unreadable in the raw database: the SQLite file (and its WAL) bytes,
/// or every credentials row as text on PostgreSQL.
async fn credentials_are_sealed_at_rest(store: Store, db: &TestDb) {
    let cipher = cipher();
    let tenant = store.ensure_tenant("T1").await.unwrap();
    let user = store.ensure_user(tenant.id, "U1").await.unwrap();
    let secret = SecretString::from("fathom-live-key-ABCDEF123456".to_owned());
    store
        .put_credential(
            &cipher,
            NewCredential {
                tenant: tenant.id,
                subject: Subject::User(user.id),
                provider: Provider::Fathom,
                secret: &secret,
                account_email: Some("ada@example.com"),
                api_domain: None,
                expires_at: None,
                scopes: None,
                metadata: serde_json::json!({"note": "checked"}),
            },
        )
        .await
        .unwrap();
    let found = store
        .credential(&cipher, tenant.id, Subject::User(user.id), Provider::Fathom)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(found.secret.expose_secret(), "fathom-live-key-ABCDEF123456");
    assert_eq!(found.account_email.as_deref(), Some("ada@example.com"));
    assert_eq!(found.metadata["note"], "checked");
    // Another user of the same tenant does not get it.
    let other = store.ensure_user(tenant.id, "U2").await.unwrap();
    assert!(
        store
            .credential(
                &cipher,
                tenant.id,
                Subject::User(other.id),
                Provider::Fathom
            )
            .await
            .unwrap()
            .is_none()
    );

    let needle = b"ABCDEF123456";
    match &store {
        Store::Sqlite(pool) => {
            sqlx::query("PRAGMA wal_checkpoint(FULL)")
                .execute(pool)
                .await
                .unwrap();
            for entry in std::fs::read_dir(db.dir.path()).unwrap() {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                if path.extension().is_some_and(|e| e == "key") {
                    continue;
                }
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "secret found in clear in {}",
                    path.display()
                );
            }
        }
        Store::Postgres(pool) => {
            let rows: Vec<(String,)> =
                sqlx::query_as("SELECT row_to_json(c)::text FROM credentials c")
                    .fetch_all(pool)
                    .await
                    .unwrap();
            assert_eq!(rows.len(), 1);
            for (row,) in rows {
                assert!(!row.contains("ABCDEF123456"), "secret in clear: {row}");
                // BYTEA renders as hex in JSON: check that too.
                let hex: String = needle.iter().map(|b| format!("{b:02x}")).collect();
                assert!(!row.contains(&hex), "secret in clear (hex): {row}");
            }
        }
    }

    // A blob copied to another row does not open there.
    let stranger = Cipher::new(&SecretString::from(generate_key()), &[]).unwrap();
    assert!(
        store
            .credential(
                &stranger,
                tenant.id,
                Subject::User(user.id),
                Provider::Fathom
            )
            .await
            .is_err(),
        "another key cannot open it"
    );
}

async fn revoked_credentials_are_not_served(store: Store, _db: &TestDb) {
    let cipher = cipher();
    let tenant = store.ensure_tenant("T1").await.unwrap();
    let secret = SecretString::from("crono-secret".to_owned());
    store
        .put_credential(
            &cipher,
            NewCredential {
                tenant: tenant.id,
                subject: Subject::Tenant,
                provider: Provider::Crono,
                secret: &secret,
                account_email: None,
                api_domain: None,
                expires_at: Some(chrono::Utc::now()),
                scopes: Some("all"),
                metadata: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .revoke_credential(tenant.id, Subject::Tenant, Provider::Crono)
            .await
            .unwrap()
    );
    assert!(
        store
            .credential(&cipher, tenant.id, Subject::Tenant, Provider::Crono)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !store
            .revoke_credential(tenant.id, Subject::Tenant, Provider::Crono)
            .await
            .unwrap()
    );
}

async fn oauth_state_is_single_use(store: Store, _db: &TestDb) {
    let tenant = store.ensure_tenant("T1").await.unwrap();
    let user = store.ensure_user(tenant.id, "U1").await.unwrap();
    let state = oauth_states::new_state();
    assert!(state.len() >= 43);
    store
        .create_oauth_state(
            &state,
            "google",
            tenant.id,
            user.id,
            Some(vec![1, 2, 3]),
            &serde_json::json!({"followup": "x"}),
        )
        .await
        .unwrap();
    assert!(
        store
            .consume_oauth_state(&state, "hubspot")
            .await
            .unwrap()
            .is_none(),
        "a state is bound to its provider"
    );
    let used = store
        .consume_oauth_state(&state, "google")
        .await
        .unwrap()
        .expect("first use");
    assert_eq!(used.user_id, user.id);
    assert_eq!(used.pkce_verifier, Some(vec![1, 2, 3]));
    assert!(
        store
            .consume_oauth_state(&state, "google")
            .await
            .unwrap()
            .is_none(),
        "replay refused"
    );
    assert!(
        store
            .consume_oauth_state("made-up", "google")
            .await
            .unwrap()
            .is_none()
    );
}

async fn expired_oauth_state_is_refused(store: Store, _db: &TestDb) {
    let tenant = store.ensure_tenant("T1").await.unwrap();
    let user = store.ensure_user(tenant.id, "U1").await.unwrap();
    let state = oauth_states::new_state();
    store
        .create_oauth_state(
            &state,
            "zoho",
            tenant.id,
            user.id,
            None,
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    let past = followup_bot::store::now() - chrono::Duration::minutes(11);
    match &store {
        Store::Sqlite(p) => sqlx::query("UPDATE oauth_states SET expires_at = $1")
            .bind(past)
            .execute(p)
            .await
            .map(|_| ()),
        Store::Postgres(p) => sqlx::query("UPDATE oauth_states SET expires_at = $1")
            .bind(past)
            .execute(p)
            .await
            .map(|_| ()),
    }
    .unwrap();
    assert!(
        store
            .consume_oauth_state(&state, "zoho")
            .await
            .unwrap()
            .is_none()
    );
}

async fn jobs_are_claimed_completed_retried_and_dead_lettered(store: Store, _db: &TestDb) {
    let lease = Duration::from_secs(60);
    assert!(store.claim_job("w", lease).await.unwrap().is_none());
    let a = store
        .enqueue_job("draft", &serde_json::json!({"n": 1}), None, 2, None)
        .await
        .unwrap()
        .unwrap();
    let later = followup_bot::store::now() + chrono::Duration::hours(1);
    store
        .enqueue_job("draft", &serde_json::json!({"n": 2}), None, 2, Some(later))
        .await
        .unwrap()
        .unwrap();

    let job = store.claim_job("w", lease).await.unwrap().expect("due job");
    assert_eq!(job.id, a);
    assert_eq!(job.attempts, 1);
    assert_eq!(job.payload, r#"{"n":1}"#);
    assert!(
        store.claim_job("w", lease).await.unwrap().is_none(),
        "the other job is not due and this one is leased"
    );

    // Retry: due again at once (retry_at now), attempts counted.
    store
        .fail_job(&job, "429 from Fathom", Some(followup_bot::store::now()))
        .await
        .unwrap();
    let rec = crate::support::job(&store, job.id).await;
    assert_eq!(rec.status, "queued");
    assert_eq!(rec.last_error.as_deref(), Some("429 from Fathom"));
    let again = store.claim_job("w", lease).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (a, 2));

    store.fail_job(&again, "still failing", None).await.unwrap();
    let rec = crate::support::job(&store, a).await;
    assert_eq!(rec.status, "dead");

    let counts = store.job_counts().await.unwrap();
    assert!(counts.contains(&("dead".to_owned(), 1)), "{counts:?}");
    assert!(counts.contains(&("queued".to_owned(), 1)), "{counts:?}");

    let b = store
        .enqueue_job("draft", &serde_json::json!({}), None, 2, None)
        .await
        .unwrap()
        .unwrap();
    let job = store.claim_job("w", lease).await.unwrap().unwrap();
    assert_eq!(job.id, b);
    assert!(store.complete_job(&job).await.unwrap());
    assert_eq!(crate::support::job(&store, b).await.status, "done");
}

async fn job_dedupe_key_enqueues_once(store: Store, _db: &TestDb) {
    let payload = serde_json::json!({"followup": "f1"});
    let first = store
        .enqueue_job("gmail", &payload, Some("gmail:f1"), 3, None)
        .await
        .unwrap();
    let second = store
        .enqueue_job("gmail", &payload, Some("gmail:f1"), 3, None)
        .await
        .unwrap();
    assert!(first.is_some());
    assert!(second.is_none(), "double click enqueues once");
}

async fn a_job_whose_worker_died_is_claimed_again(store: Store, _db: &TestDb) {
    let id = store
        .enqueue_job("draft", &serde_json::json!({}), None, 3, None)
        .await
        .unwrap()
        .unwrap();
    let job = store
        .claim_job("dead-worker", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, id);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = store
        .claim_job("live-worker", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the lease ran out, so the job is claimable again");
    assert_eq!((again.id, again.attempts), (id, 2));

    // SQLite (one process) requeues a running job at start without waiting for the lease.
    let requeued = store.requeue_orphaned_jobs().await.unwrap();
    match store {
        Store::Sqlite(_) => {
            assert_eq!(requeued, 1);
            assert_eq!(crate::support::job(&store, id).await.status, "queued");
        }
        Store::Postgres(_) => assert_eq!(requeued, 0, "replicas rely on leases"),
    }
}

async fn released_jobs_do_not_count_an_attempt(store: Store, _db: &TestDb) {
    let id = store
        .enqueue_job("draft", &serde_json::json!({}), None, 3, None)
        .await
        .unwrap()
        .unwrap();
    let job = store
        .claim_job("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(store.release_job(&job).await.unwrap());
    let rec = crate::support::job(&store, id).await;
    assert_eq!((rec.status.as_str(), rec.attempts), ("queued", 0));
}

async fn concurrent_claims_never_share_a_job(store: Store, _db: &TestDb) {
    for n in 0..30 {
        store
            .enqueue_job("draft", &serde_json::json!({ "n": n }), None, 3, None)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(job) = store
                .claim_job(&format!("w{w}"), Duration::from_secs(60))
                .await
                .unwrap()
            {
                got.push(job.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 30, "every job claimed");
    assert_eq!(unique.len(), 30, "no job claimed twice");
}

async fn deliveries_are_recorded_once(store: Store, _db: &TestDb) {
    assert!(store.first_delivery("event:Ev1").await.unwrap());
    assert!(!store.first_delivery("event:Ev1").await.unwrap());
    assert!(store.first_delivery("envelope:e2").await.unwrap());
    let pruned = store
        .prune_deliveries(followup_bot::store::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    assert!(store.first_delivery("event:Ev1").await.unwrap());
}

async fn leases_have_one_holder(store: Store, _db: &TestDb) {
    let ttl = Duration::from_millis(200);
    assert!(store.try_lease("poller", "a", ttl).await.unwrap());
    assert!(
        store.try_lease("poller", "a", ttl).await.unwrap(),
        "renewal"
    );
    assert!(!store.try_lease("poller", "b", ttl).await.unwrap());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        store.try_lease("poller", "b", ttl).await.unwrap(),
        "expired"
    );
    assert!(!store.try_lease("poller", "a", ttl).await.unwrap());
    store.release_lease("poller", "b").await.unwrap();
    assert!(store.try_lease("poller", "a", ttl).await.unwrap());
}

async fn audit_entries_are_kept(store: Store, _db: &TestDb) {
    let tenant = store.ensure_tenant("T1").await.unwrap();
    let user = store.ensure_user(tenant.id, "U1").await.unwrap();
    store
        .audit(
            tenant.id,
            Some(user.id),
            "gmail.draft",
            "google",
            "ok",
            None,
        )
        .await
        .unwrap();
    let entries = store.audit_entries(tenant.id).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "gmail.draft");
}

/// Issue 7, items 1 and 11: the follow-up, its (held) job and the double-click key in one
/// write; the click window slides, so two clicks never straddle a boundary.
async fn a_follow_up_its_job_and_the_click_key_are_written_together(store: Store, _db: &TestDb) {
    use followup_bot::store::followups::NewFollowup;
    let tenant = store.ensure_tenant("T1").await.unwrap();
    let user = store.ensure_user(tenant.id, "U1").await.unwrap();
    let meeting: followup_bot::domain::meeting::Meeting =
        serde_json::from_value(serde_json::json!({ "recording_id": 7, "title": "Kickoff" }))
            .unwrap();
    let new = || NewFollowup {
        tenant: tenant.id,
        user: user.id,
        meeting: &meeting,
        job_kind: "followup.generate",
        max_attempts: 5,
        hold: Duration::from_secs(10),
        click_window: Duration::from_secs(120),
    };
    let id = store
        .create_followup(new())
        .await
        .unwrap()
        .expect("created");
    assert!(
        store.create_followup(new()).await.unwrap().is_none(),
        "double click"
    );
    // Held: not claimable until "Drafting…" is attached (or the hold ends).
    assert!(
        store
            .claim_job("w", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .attach_followup_message(&id, "D1", "1.1")
            .await
            .unwrap()
    );
    let job = store
        .claim_job("w", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("released");
    assert!(job.payload.contains(&id.0));
    let followup = store.followup_by_id(&id).await.unwrap().unwrap();
    assert_eq!(followup.dm_ts.as_deref(), Some("1.1"));
    assert!(
        !store
            .attach_followup_message(&id, "D1", "2.2")
            .await
            .unwrap(),
        "once"
    );

    // 119 s after the first click is still a double click, whatever the clock's minute.
    let age = |secs: i64| followup_bot::store::now() - chrono::Duration::seconds(secs);
    let key = format!("draft:{}:7", user.id);
    set_delivery_time(&store, &key, age(119)).await;
    assert!(
        store.create_followup(new()).await.unwrap().is_none(),
        "still fresh"
    );
    set_delivery_time(&store, &key, age(121)).await;
    assert!(
        store.create_followup(new()).await.unwrap().is_some(),
        "a new ask"
    );
}

async fn set_delivery_time(store: &Store, key: &str, at: chrono::DateTime<chrono::Utc>) {
    const SQL: &str = "UPDATE processed_envelopes SET received_at = $2 WHERE dedupe_key = $1";
    match store {
        Store::Sqlite(pool) => {
            sqlx::query(SQL)
                .bind(key)
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
        Store::Postgres(pool) => {
            sqlx::query(SQL)
                .bind(key)
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

/// Issue 7, item 10: complete, fail, release and renew are fenced by the claim.
async fn a_worker_whose_lease_was_taken_over_cannot_touch_the_job(store: Store, _db: &TestDb) {
    let id = store
        .enqueue_job("draft", &serde_json::json!({}), None, 5, None)
        .await
        .unwrap()
        .unwrap();
    let first = store
        .claim_job("slow-worker", Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = store
        .claim_job("other-worker", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the expired lease is taken over");
    assert_eq!(second.id, id);
    assert!(
        !store.complete_job(&first).await.unwrap(),
        "complete is fenced"
    );
    assert!(
        !store.fail_job(&first, "late", None).await.unwrap(),
        "fail is fenced"
    );
    assert!(
        !store.release_job(&first).await.unwrap(),
        "release is fenced"
    );
    assert!(
        !store
            .renew_job_lease(&first, Duration::from_secs(60))
            .await
            .unwrap(),
        "renew is fenced"
    );
    let row = crate::support::job(&store, id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("running", 2));
    assert!(row.last_error.is_none());

    // The same worker claiming again is a new claim: the old one stays fenced.
    assert!(
        store
            .renew_job_lease(&second, Duration::from_millis(50))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = store
        .claim_job("other-worker", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(!store.complete_job(&second).await.unwrap());
    assert!(store.complete_job(&third).await.unwrap());
    assert_eq!(crate::support::job(&store, id).await.status, "done");

    // A renewed lease is not taken over.
    let id = store
        .enqueue_job("draft", &serde_json::json!({}), None, 5, None)
        .await
        .unwrap()
        .unwrap();
    let job = store
        .claim_job("w", Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, id);
    assert!(
        store
            .renew_job_lease(&job, Duration::from_secs(60))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        store
            .claim_job("x", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
}

/// Issue 7, item 12: a credential sealed with a previous key is re-sealed with the current one
/// when read, and `reseal_credentials` (`rotate-keys`) does the rest; one whose key is gone
/// says so.
async fn credentials_move_to_the_current_key_so_old_keys_can_go(store: Store, _db: &TestDb) {
    use followup_bot::store::credentials::CredentialError;
    let old_key = SecretString::from(generate_key());
    let new_key = SecretString::from(generate_key());
    let old = Cipher::new(&old_key, &[]).unwrap();
    let rotating = Cipher::new(&new_key, std::slice::from_ref(&old_key)).unwrap();
    let new_only = Cipher::new(&new_key, &[]).unwrap();
    let tenant = store.ensure_tenant("T1").await.unwrap();
    let mut users = Vec::new();
    for (slack_id, secret) in [
        ("U1", "fathom-one-0123456789"),
        ("U2", "fathom-two-0123456789"),
    ] {
        let user = store.ensure_user(tenant.id, slack_id).await.unwrap();
        crate::support::put_fathom_key(&store, &old, &user, secret).await;
        users.push(user);
    }
    // Read during the rotation: re-sealed with the new key on the way.
    let found = read(&store, &rotating, &users[0]).await.unwrap().unwrap();
    assert_eq!(found.secret.expose_secret(), "fathom-one-0123456789");
    let found = read(&store, &new_only, &users[0]).await.unwrap().unwrap();
    assert_eq!(found.secret.expose_secret(), "fathom-one-0123456789");
    // Not read yet: the new key alone cannot open it; rotate-keys moves it.
    assert!(matches!(
        read(&store, &new_only, &users[1]).await,
        Err(CredentialError::KeyGone)
    ));
    assert_eq!(store.reseal_credentials(&rotating).await.unwrap(), (1, 0));
    let found = read(&store, &new_only, &users[1]).await.unwrap().unwrap();
    assert_eq!(found.secret.expose_secret(), "fathom-two-0123456789");
    assert_eq!(store.reseal_credentials(&new_only).await.unwrap(), (0, 0));
}

async fn read(
    store: &Store,
    cipher: &Cipher,
    user: &followup_bot::domain::person::User,
) -> Result<
    Option<followup_bot::store::credentials::Credential>,
    followup_bot::store::credentials::CredentialError,
> {
    store
        .credential(
            cipher,
            user.tenant_id,
            Subject::User(user.id),
            Provider::Fathom,
        )
        .await
}

async fn the_crm_mirror_upserts_searches_sweeps_and_pauses(store: Store, _db: &TestDb) {
    use followup_bot::domain::crm::{Account, Contact, Deal, MirrorObject, Record};
    let tenant = store.ensure_tenant("T0MIRROR").await.unwrap().id;
    let other = store.ensure_tenant("T0OTHER").await.unwrap().id;
    let crono = Provider::Crono;
    let account = |id: &str, name: &str, web: &str| {
        Record::Account(Account {
            id: id.into(),
            name: name.into(),
            website: Some(web.into()),
        })
    };
    let contact = |id: &str, name: &str, email: &str, account: Option<&str>| {
        Record::Contact(Contact {
            id: id.into(),
            name: name.into(),
            email: Some(email.into()),
            account_id: account.map(Into::into),
            account_name: None,
        })
    };
    let deal = |id: &str, open: bool| Record::Deal {
        deal: Deal {
            id: id.into(),
            account_id: "a1".into(),
            name: format!("Deal {id}"),
            stage: "proposal".into(),
            amount: Some(10.5),
            currency: Some("EUR".into()),
            close_date: None,
        },
        open,
    };
    let t0 = followup_bot::store::now();
    let applied = store
        .mirror_apply(
            tenant,
            crono,
            &[
                account("a1", "Ünicorn 100% Labs", "https://www.unicorn.example/"),
                account("a2", "Other_Co", "other.example"),
                contact("c1", "Zoë Müller", "Zoe@Unicorn.example", Some("a1")),
                contact("c2", "Zed", "zed@other.example", None),
                deal("d1", true),
                deal("d2", true),
            ],
            t0,
        )
        .await
        .unwrap();
    assert_eq!(applied.upserted, 6);
    // Case-insensitive beyond ASCII, LIKE's own characters taken literally.
    let found = store
        .mirror_search_accounts(tenant, crono, "ünicorn", 20)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        store
            .mirror_search_accounts(tenant, crono, "100%", 20)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .mirror_search_accounts(tenant, crono, "r_c", 20)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .mirror_search_accounts(tenant, crono, "%", 20)
            .await
            .unwrap()
            .len(),
        1
    );
    let zoe = store
        .mirror_search_contacts(tenant, crono, "ZOË", 20)
        .await
        .unwrap();
    assert_eq!(
        zoe[0].account_name.as_deref(),
        Some("Ünicorn 100% Labs"),
        "from the account"
    );
    assert_eq!(
        store
            .mirror_search_contacts(tenant, crono, "zoe@", 20)
            .await
            .unwrap()
            .len(),
        1
    );
    let by_email = store
        .mirror_contacts_by_email(tenant, crono, " ZOE@unicorn.EXAMPLE ")
        .await
        .unwrap();
    assert_eq!(by_email.len(), 1);
    let by_domain = store
        .mirror_accounts_by_domain(tenant, crono, "unicorn.example")
        .await
        .unwrap();
    assert_eq!(by_domain[0].id, "a1");
    // Scoped to the team and the provider.
    assert!(
        store
            .mirror_search_accounts(other, crono, "uni", 20)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .mirror_search_accounts(tenant, Provider::Hubspot, "uni", 20)
            .await
            .unwrap()
            .is_empty()
    );

    // A closed deal leaves; a sweep deletes what it did not see.
    let applied = store
        .mirror_apply(tenant, crono, &[deal("d1", false)], t0)
        .await
        .unwrap();
    assert_eq!(applied.removed, 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let sweep = followup_bot::store::now();
    store
        .mirror_apply(
            tenant,
            crono,
            &[account("a1", "Ünicorn", "unicorn.example")],
            sweep,
        )
        .await
        .unwrap();
    let gone = store
        .mirror_delete_unseen(tenant, crono, MirrorObject::Accounts, sweep)
        .await
        .unwrap();
    assert_eq!(gone, 1);
    assert!(
        store
            .mirror_account(tenant, crono, "a2")
            .await
            .unwrap()
            .is_none()
    );
    let counts = store.mirror_counts(tenant, crono).await.unwrap();
    assert_eq!((counts.accounts, counts.contacts, counts.deals), (1, 2, 1));
    store
        .mirror_forget_other_crms(tenant, Provider::Hubspot)
        .await
        .unwrap();
    assert_eq!(
        store.mirror_counts(tenant, crono).await.unwrap().contacts,
        0
    );

    // Cursors, the log and the pause switch.
    assert!(
        !store
            .mirror_ready(tenant, crono, MirrorObject::Deals)
            .await
            .unwrap()
    );
    let mut cursor = store
        .sync_cursor(tenant, crono, MirrorObject::Deals)
        .await
        .unwrap();
    cursor.since = Some(t0);
    cursor.after = Some("45".into());
    store.put_sync_cursor(&cursor).await.unwrap();
    assert_eq!(
        store
            .sync_cursor(tenant, crono, MirrorObject::Deals)
            .await
            .unwrap(),
        cursor
    );
    assert!(
        store
            .mirror_ready(tenant, crono, MirrorObject::Deals)
            .await
            .unwrap()
    );
    assert!(store.crm_sync_pause(tenant).await.unwrap().is_none());
    let user = store.ensure_user(tenant, "U0ADMIN").await.unwrap();
    store
        .set_crm_sync_pause(tenant, Some(user.id), true)
        .await
        .unwrap();
    let pause = store.crm_sync_pause(tenant).await.unwrap().unwrap();
    assert!(pause.paused);
    assert_eq!(pause.changed_by, Some(user.id));
    store
        .set_crm_sync_pause(tenant, Some(user.id), false)
        .await
        .unwrap();
    assert!(!store.crm_sync_pause(tenant).await.unwrap().unwrap().paused);
}
