//! `/crono-connect`: admins and owners only (asked of Slack at open and at submit), keys
//! checked with Crono before they are saved sealed, the change audited.

use super::*;
use crate::support::fake_crono::FakeCrono;
use followup_bot::store::Store;

const PUBLIC_KEY: &str = "crono-pub-0001";
const PRIVATE_KEY: &str = "crono-SECRETprivate-0001";

fn admin(user: &str, is_admin: bool) -> Value {
    json!({
        "id": user, "team_id": TEAM, "name": user.to_lowercase(), "real_name": "Ada Admin",
        "is_admin": is_admin, "is_owner": false, "tz": "Europe/Rome", "tz_offset": 3600,
        "profile": { "email": "ada@seller.example", "real_name": "Ada Admin" }
    })
}

fn submit(modal: &Value, user: &str, public: &str, private: &str) -> Value {
    payloads::view_submission_for(
        TEAM,
        user,
        modal,
        payloads::state(&[
            (
                "provider",
                "value",
                payloads::static_select_input("crono", "Crono"),
            ),
            ("public_key", "value", payloads::text_input(public)),
            ("private_key", "value", payloads::text_input(private)),
        ]),
    )
}

#[tokio::test]
async fn only_admins_connect_crono_with_keys_crono_accepts() {
    let crono = FakeCrono::start().await;
    crono.add_keys(PUBLIC_KEY, PRIVATE_KEY);
    let url = crono.base_url();
    let w = World::new(Backend::Sqlite, false, &[("CRONO_API_URL", url.as_str())]).await;
    w.slack.set_user(ADA, admin(ADA, true));

    // Bob is no admin: told who can, no modal, nothing sent to Crono.
    let (_, url_id) = w.command(BOB, "/crono-connect").await;
    let post = w.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("Only a Slack workspace admin or owner"),
        "{}",
        post.body
    );
    assert_eq!(w.slack.call_count("views.open"), 0);
    // A submission he crafted without the modal is refused too, before Crono is asked.
    let forged = json!({ "callback_id": "crm_connect" });
    let ack = w
        .slack
        .wait_for_ack(&w.send(submit(&forged, BOB, PUBLIC_KEY, PRIVATE_KEY)), WAIT)
        .await
        .unwrap();
    assert!(text_of(&ack.payload.unwrap()).contains("Only a Slack workspace admin"));
    assert!(
        crono.calls().is_empty(),
        "nothing sent to Crono for a non-admin"
    );

    // Ada is: the modal opens (also as /crm-connect).
    w.command(ADA, "/crm-connect").await;
    let opened = w.slack.wait_for_call("views.open", WAIT).await.unwrap();
    let modal = opened.response["view"].clone();
    assert_eq!(modal["callback_id"], "crm_connect");

    // Wrong keys: an inline error, nothing saved.
    let ack = w
        .slack
        .wait_for_ack(
            &w.send(submit(&modal, ADA, PUBLIC_KEY, "wrong-private")),
            WAIT,
        )
        .await
        .unwrap();
    assert!(text_of(&ack.payload.unwrap()).contains("did not accept"));
    let store = &w.app().store;
    let tenant = store.ensure_tenant(TEAM).await.unwrap();
    let stored = || async {
        store
            .credential(&w.app().cipher, tenant.id, Subject::Tenant, Provider::Crono)
            .await
            .unwrap()
    };
    assert!(stored().await.is_none());
    // Crono answering HTTP 200 with isSuccess:false is a refusal too.
    crono.refuse_with_200();
    let ack = w
        .slack
        .wait_for_ack(
            &w.send(submit(&modal, ADA, "other-pub", "other-priv")),
            WAIT,
        )
        .await
        .unwrap();
    assert!(text_of(&ack.payload.unwrap()).contains("did not accept"));

    // The right keys: saved sealed for the team, audited, confirmed.
    let ack = w
        .slack
        .wait_for_ack(&w.send(submit(&modal, ADA, PUBLIC_KEY, PRIVATE_KEY)), WAIT)
        .await
        .unwrap();
    assert!(
        ack.payload.is_none() || ack.payload == Some(Value::Null),
        "{ack:?}"
    );
    w.wait_for_sent(
        "chat.postMessage",
        "Crono is connected for the whole workspace",
        WAIT,
    )
    .await;
    let credential = stored().await.expect("saved");
    let keys =
        followup_bot::clients::crm::crono::CronoKeys::from_secret(&credential.secret).unwrap();
    assert_eq!(keys.public_key, PUBLIC_KEY);
    assert_eq!(keys.private_key, PRIVATE_KEY);
    assert_eq!(credential.metadata["connected_by"], ADA);
    if let Store::Sqlite(pool) = store {
        sqlx::query("PRAGMA wal_checkpoint(FULL)")
            .execute(pool)
            .await
            .unwrap();
    }
    for entry in std::fs::read_dir(w._db.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(PRIVATE_KEY.len())
                .any(|b| b == PRIVATE_KEY.as_bytes()),
            "key in clear"
        );
    }
    let audit = store.audit_entries(tenant.id).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "connect" && e.target == "crono")
    );

    // Demoted between opening and submitting: refused at submit, Crono not asked.
    w.command(ADA, "/crono-connect").await;
    w.slack.wait_for_calls("views.open", 2, WAIT).await.unwrap();
    w.slack.set_user(ADA, admin(ADA, false));
    let calls = crono.calls().len();
    let ack = w
        .slack
        .wait_for_ack(&w.send(submit(&modal, ADA, "new-pub", "new-priv")), WAIT)
        .await
        .unwrap();
    assert!(text_of(&ack.payload.unwrap()).contains("Only a Slack workspace admin"));
    assert_eq!(crono.calls().len(), calls);
    assert_eq!(
        CronoKeysOf(stored().await.unwrap().secret).public(),
        PUBLIC_KEY,
        "unchanged"
    );
}

struct CronoKeysOf(secrecy::SecretString);

impl CronoKeysOf {
    fn public(&self) -> String {
        followup_bot::clients::crm::crono::CronoKeys::from_secret(&self.0)
            .unwrap()
            .public_key
    }
}
