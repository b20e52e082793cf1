//! Fathom webhooks end to end: created with the person's key on `/fathom-connect`, replaced
//! on a reconnect with another key, deleted on `/fathom-disconnect`; deliveries verified as
//! Standard Webhooks (forged, another webhook's secret, ten minutes old: 401 and nothing
//! announced), made durable before the 2xx, announced within seconds with polling at 300 s,
//! once across retries, redeliveries, a poll and a restart.

use super::google::PUBLIC;
use super::*;
use crate::support::fake_fathom::{FakeWebhook, sign_with};

const ADA_SECOND_KEY: &str = "fathom-key-ada-second-0123456789";
const BOB_KEY: &str = "fathom-key-bob-0123456789";

async fn webhook_world(backend: Backend, workers: &str) -> World {
    let w = World::new(
        backend,
        false,
        &[
            ("PUBLIC_BASE_URL", PUBLIC),
            ("FATHOM_POLL_INTERVAL_SECS", "300"),
            ("JOB_WORKERS", workers),
        ],
    )
    .await;
    w.fathom.add_key(ADA_SECOND_KEY);
    w.fathom.add_key(BOB_KEY);
    w
}

impl World {
    /// `/fathom-connect` with `key`, through the modal.
    pub(super) async fn connect_fathom(&self, user: &str, key: &str) {
        let before = self.slack.call_count("views.open");
        self.command(user, "/fathom-connect").await;
        let opened = self
            .slack
            .wait_for_calls("views.open", before + 1, WAIT)
            .await
            .unwrap();
        let modal = opened[before].response["view"].clone();
        let envelope = payloads::view_submission_for(
            TEAM,
            user,
            &modal,
            payloads::state(&[("api_key", "value", payloads::text_input(key))]),
        );
        let ack = self
            .slack
            .wait_for_ack(&self.send(envelope), WAIT)
            .await
            .unwrap();
        assert!(ack.payload.is_none(), "{ack:?}");
    }

    /// The webhook made with `key`, once it exists.
    pub(super) async fn webhook_of(&self, key: &str) -> FakeWebhook {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(found) = self
                .fathom
                .webhooks()
                .into_iter()
                .find(|h| h.api_key == key)
            {
                return found;
            }
            assert!(Instant::now() < deadline, "no webhook for {key}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs a delivery to the bot's sidecar; the status.
    async fn deliver(&self, url: &str, headers: &[(String, String)], body: &str) -> u16 {
        let mut request = reqwest::Client::new()
            .post(self.local(url))
            .body(body.to_owned());
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.send().await.unwrap().status().as_u16()
    }

    fn announcements(&self) -> Vec<String> {
        self.slack
            .calls("chat.postMessage")
            .iter()
            .map(|c| text_of(&c.body))
            .filter(|t| t.contains("Recording ready"))
            .collect()
    }

    async fn metrics(&self) -> String {
        self.browse(&format!("{PUBLIC}/metrics"), None).await.body
    }
}

#[tokio::test]
async fn deliveries_are_verified_announced_within_seconds_and_once() {
    let mut w = webhook_world(Backend::Sqlite, "2").await;
    w.connect_fathom(ADA, ADA_KEY).await;
    let hook = w.webhook_of(ADA_KEY).await;
    assert!(
        hook.destination_url
            .starts_with(&format!("{PUBLIC}/webhooks/fathom/")),
        "{}",
        hook.destination_url
    );
    let path_id = hook.destination_url.rsplit('/').next().unwrap();
    assert!(
        path_id.len() >= 32 && !path_id.contains("U0ADA"),
        "{path_id}"
    );
    assert_eq!(hook.body["triggered_for"], json!(["my_recordings"]));
    assert_eq!(hook.body["include_summary"], true);
    // The secret is sealed at rest.
    if let followup_bot::store::Store::Sqlite(pool) = &w.app().store {
        sqlx::query("PRAGMA wal_checkpoint(FULL)")
            .execute(pool)
            .await
            .unwrap();
    }
    for entry in std::fs::read_dir(w._db.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(hook.secret.len())
                .any(|b| b == hook.secret.as_bytes()),
            "the webhook secret in clear"
        );
    }
    w.connect_fathom(BOB, BOB_KEY).await;
    let bobs = w.webhook_of(BOB_KEY).await;

    let spec = meeting(
        41,
        "Acme kickoff",
        Utc::now() - chrono::Duration::minutes(1),
        30,
    );
    let body = spec.to_json().to_string();
    w.fathom.add_meeting(ADA_KEY, spec);
    let now = Utc::now();

    // Forged, another webhook's secret, ten minutes old, an unknown path: refused.
    let forged = sign_with("whsec_Zm9yZ2VkLXNlY3JldA==", "msg_1", now, &body);
    assert_eq!(w.deliver(&hook.destination_url, &forged, &body).await, 401);
    let borrowed = bobs.headers("msg_2", now, &body);
    assert_eq!(
        w.deliver(&hook.destination_url, &borrowed, &body).await,
        401
    );
    let stale = hook.headers("msg_3", now - chrono::Duration::minutes(10), &body);
    assert_eq!(w.deliver(&hook.destination_url, &stale, &body).await, 401);
    let tampered = hook.headers("msg_4", now, &body);
    assert_eq!(
        w.deliver(
            &hook.destination_url,
            &tampered,
            &body.replace("Acme", "Evil")
        )
        .await,
        401
    );
    let unknown = format!("{PUBLIC}/webhooks/fathom/not-a-webhook");
    assert_eq!(
        w.deliver(&unknown, &hook.headers("msg_5", now, &body), &body)
            .await,
        404
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.announcements().is_empty(), "nothing announced");

    // A good delivery: announced within seconds although polling is every 300 s.
    let good = hook.headers("msg_ok", now, &body);
    let sent = Instant::now();
    assert_eq!(w.deliver(&hook.destination_url, &good, &body).await, 204);
    w.wait_for_sent(
        "chat.postMessage",
        "Recording ready",
        Duration::from_secs(5),
    )
    .await;
    let figure = sent.elapsed();
    assert!(w.announcements()[0].contains("Acme kickoff"));
    // Fathom retrying that delivery (same webhook-id), a second delivery of the same
    // recording, and a poll that finds it: still one announcement.
    assert_eq!(w.deliver(&hook.destination_url, &good, &body).await, 204);
    let again = hook.headers("msg_again", Utc::now(), &body);
    assert_eq!(w.deliver(&hook.destination_url, &again, &body).await, 204);
    w.poll_due_now(ADA).await;
    followup_bot::features::recordings::poll_once(w.app()).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(w.announcements().len(), 1, "{:?}", w.announcements());
    // With a webhook, the next poll is the half-hourly safety net.
    let tenant = w.app().store.ensure_tenant(TEAM).await.unwrap();
    let ada = w.app().store.ensure_user(tenant.id, ADA).await.unwrap();
    assert!(w.app().store.has_fathom_webhook(ada.id).await.unwrap());
    if let followup_bot::store::Store::Sqlite(pool) = &w.app().store {
        let (next,): (chrono::DateTime<Utc>,) =
            sqlx::query_as("SELECT next_poll FROM fathom_polls WHERE user_id = $1")
                .bind(ada.id)
                .fetch_one(pool)
                .await
                .unwrap();
        assert!(next > Utc::now() + chrono::Duration::minutes(29), "{next}");
    }
    // A body over the cap is refused before anything reads it.
    let huge = "x".repeat(2 * 1024 * 1024);
    assert_eq!(
        w.deliver(
            &hook.destination_url,
            &hook.headers("big", Utc::now(), &huge),
            &huge
        )
        .await,
        413
    );
    let metrics = w.metrics().await;
    for (outcome, n) in [
        ("accepted", 2),
        ("duplicate", 1),
        ("bad_signature", 3),
        ("stale", 1),
        ("unknown", 1),
    ] {
        // The recorder is the process's: other tests' deliveries may count too.
        let prefix = format!("fathom_webhook_deliveries_total{{outcome=\"{outcome}\"}} ");
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"));
        assert!(count >= n, "{prefix}{count}");
    }
    eprintln!("webhook delivery to DM: {} ms", figure.as_millis());

    // Reconnecting with another key: the old webhook is deleted at Fathom, a new one made.
    w.connect_fathom(ADA, ADA_SECOND_KEY).await;
    let second = w.webhook_of(ADA_SECOND_KEY).await;
    assert!(w.fathom.deleted_webhooks().contains(&hook.id));
    assert_ne!(second.destination_url, hook.destination_url);
    let body2 = meeting(42, "Old path", Utc::now(), 30)
        .to_json()
        .to_string();
    assert_eq!(
        w.deliver(
            &hook.destination_url,
            &hook.headers("m6", Utc::now(), &body2),
            &body2
        )
        .await,
        404,
        "the old webhook's path is gone"
    );

    // /fathom-disconnect: deleted at Fathom too.
    let (_, url_id) = w.command(ADA, "/fathom-disconnect").await;
    let post = w.slack.wait_for_response_post(&url_id, WAIT).await.unwrap();
    assert!(
        text_of(&post.body).contains("Fathom is disconnected"),
        "{}",
        post.body
    );
    assert!(w.fathom.deleted_webhooks().contains(&second.id));
    assert!(!w.app().store.has_fathom_webhook(ada.id).await.unwrap());
    w.stop().await;
}

/// A delivery answered 2xx is already a job in the database: with no worker running (as if
/// the process died right after the answer), it is announced once the bot starts again.
async fn a_delivery_survives_a_crash_after_its_2xx(backend: Backend) {
    let mut w = webhook_world(backend, "0").await;
    w.connect(ADA, ADA_KEY).await;
    let tenant = w.app().store.ensure_tenant(TEAM).await.unwrap();
    let ada = w.app().store.ensure_user(tenant.id, ADA).await.unwrap();
    let key = secrecy::SecretString::from(ADA_KEY.to_owned());
    assert!(
        w.app()
            .replace_fathom_webhook(tenant.id, ada.id, None, &key)
            .await
            .unwrap()
    );
    let hook = w.webhook_of(ADA_KEY).await;
    let body = meeting(51, "Wayne kickoff", Utc::now(), 30)
        .to_json()
        .to_string();
    let headers = hook.headers("msg_crash", Utc::now(), &body);
    assert_eq!(w.deliver(&hook.destination_url, &headers, &body).await, 204);
    w.stop().await;
    assert!(w.announcements().is_empty());
    w.settings.retain(|(k, _)| k != "JOB_WORKERS");
    w.settings.push(("JOB_WORKERS".into(), "2".into()));
    w.start().await;
    w.wait_for_sent("chat.postMessage", "Wayne kickoff", WAIT)
        .await;
    // Fathom retrying after the restart changes nothing.
    assert_eq!(w.deliver(&hook.destination_url, &headers, &body).await, 204);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(w.announcements().len(), 1);
    w.stop().await;
}

#[tokio::test]
async fn a_delivery_survives_a_crash_after_its_2xx_sqlite() {
    a_delivery_survives_a_crash_after_its_2xx(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_delivery_survives_a_crash_after_its_2xx_postgres() {
    a_delivery_survives_a_crash_after_its_2xx(Backend::Postgres).await;
}

/// People connected before webhooks existed get one when the bot starts.
#[tokio::test]
async fn people_connected_before_get_a_webhook_at_start() {
    let mut w = webhook_world(Backend::Sqlite, "2").await;
    w.connect(ADA, ADA_KEY).await;
    assert!(w.fathom.webhooks().is_empty());
    w.stop().await;
    w.start().await;
    let hook = w.webhook_of(ADA_KEY).await;
    assert!(hook.destination_url.starts_with(PUBLIC));
    w.stop().await;
}
