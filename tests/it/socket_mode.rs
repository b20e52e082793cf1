//! End to end: the real bot against the fake Slack (Socket Mode websocket + Web API).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::fake_slack::FakeSlack;
use crate::support::{Backend, TestDb, bot, payloads};
use async_trait::async_trait;
use followup_bot::dispatch::{Ctx, Handler, HandlerResult, Route};
use followup_bot::registry::Features;
use followup_bot::slack::envelope::SlackEvent;
use serde_json::json;

const TEAM: &str = "T0TEAM";
const USER: &str = "U0ADA";
const WAIT: Duration = Duration::from_secs(10);

async fn setup(backend: Backend) -> (FakeSlack, TestDb, followup_bot::startup::Running) {
    let slack = FakeSlack::start().await;
    let db = TestDb::new(backend).await;
    let running = bot::start(&slack, &db).await;
    (slack, db, running)
}

fn slash(slack: &FakeSlack, command: &str, text: &str) -> (serde_json::Value, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    (
        payloads::slash_command(TEAM, USER, command, text, &slack.response_url(&id)),
        id,
    )
}

async fn get(url: String) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.expect("sidecar answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(json!({ "text": text })),
    )
}

#[tokio::test]
async fn connects_with_two_connections_and_serves_health_and_ready() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    assert_eq!(slack.open_connections(), 2, "two connections by default");
    let app_token_calls = slack.calls("apps.connections.open");
    assert!(
        app_token_calls
            .iter()
            .all(|c| c.token() == Some(bot::APP_TOKEN))
    );

    let base = bot::base_url(&running);
    let (status, body) = get(format!("{base}/health")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let response = reqwest::get(format!("{base}/health")).await.unwrap();
    assert!(
        response.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let missing = reqwest::get(format!("{base}/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
    let (status, body) = get(format!("{base}/ready")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["slack_connections"], 2);
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn acks_a_slash_command_and_answers_an_unknown_one() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (slack, _db, running) = setup(backend).await;
        let (envelope, _) = slash(&slack, "/frobnicate", "now");
        let id = slack.send_envelope(envelope).unwrap();
        let ack = slack.wait_for_ack(&id, WAIT).await.unwrap();
        let payload = ack.payload.expect("unknown command answered in the ack");
        assert_eq!(payload["response_type"], "ephemeral");
        let text = payload["text"].as_str().unwrap();
        assert!(text.contains("I don't know `/frobnicate`"), "{text}");
        assert!(text.contains("/followup"), "{text}");
        running.shutdown();
        running.stopped().await;
    }
}

#[tokio::test]
async fn creates_tenant_and_user_on_first_contact_and_publishes_home() {
    let (slack, db, running) = setup(Backend::Sqlite).await;
    let envelope = payloads::app_home_opened(TEAM, USER);
    let id = slack.send_envelope(envelope).unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    let publish = slack.wait_for_call("views.publish", WAIT).await.unwrap();
    assert_eq!(publish.str("user_id"), Some(USER));
    assert_eq!(publish.token(), Some(bot::BOT_TOKEN));
    let view = publish.get("view").expect("view sent");
    let view: serde_json::Value = match view {
        serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
        v => v.clone(),
    };
    assert_eq!(view["type"], "home");

    let store = db.store().await;
    let tenant = store.ensure_tenant(TEAM).await.unwrap();
    let user = store.ensure_user(tenant.id, USER).await.unwrap();
    assert!(user.email.is_some(), "profile from users.info: {user:?}");
    assert!(user.tz.is_some());

    // A second contact uses the cached profile: users.info is asked again only for Home's
    // admin check (whether to offer the CRM's buttons), once per Home: 1 profile + 2 checks.
    let id = slack
        .send_envelope(payloads::app_home_opened(TEAM, USER))
        .unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    slack
        .wait_for_calls("views.publish", 2, WAIT)
        .await
        .unwrap();
    assert_eq!(slack.call_count("users.info"), 3);
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn a_redelivered_envelope_is_handled_once() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (slack, _db, running) = setup(backend).await;
        // Events API retry: same event_id, new envelope id, retry_attempt 1.
        let first = payloads::app_home_opened(TEAM, USER);
        let retry = payloads::with_retry(&first, 1);
        let a = slack.send_envelope(first.clone()).unwrap();
        let b = slack.send_envelope(retry).unwrap();
        // Reconnect redelivery: the very same envelope again.
        let c = slack.send_envelope(first).unwrap();
        for id in [&a, &b, &c] {
            slack.wait_for_ack(id, WAIT).await.unwrap();
        }
        slack.wait_for_call("views.publish", WAIT).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(slack.call_count("views.publish"), 1, "handled once");
        running.shutdown();
        running.stopped().await;
    }
}

/// The same envelope reaching two replicas (two bots on one PostgreSQL) is handled once.
#[tokio::test]
async fn two_replicas_handle_a_redelivery_once() {
    let slack = FakeSlack::start().await;
    let db = TestDb::new(Backend::Postgres).await;
    let mut settings = bot::settings(&slack, &db);
    settings.push(("SLACK_SOCKET_CONNECTIONS".into(), "1".into()));
    let key = settings
        .iter()
        .find(|(k, _)| k == "ENCRYPTION_KEY")
        .unwrap()
        .1
        .clone();
    let one = bot::start_with(
        bot::config(&settings),
        followup_bot::features::all(),
        &slack,
    )
    .await;
    let mut second = bot::settings(&slack, &db);
    second.retain(|(k, _)| k != "ENCRYPTION_KEY");
    second.push(("ENCRYPTION_KEY".into(), key));
    second.push(("SLACK_SOCKET_CONNECTIONS".into(), "1".into()));
    let two = followup_bot::startup::start(bot::config(&second), followup_bot::features::all())
        .await
        .unwrap();
    let conns = slack.wait_for_connections(2, WAIT).await.unwrap();
    let envelope = payloads::app_home_opened(TEAM, USER);
    let a = slack.send_envelope_to(conns[0], envelope.clone()).unwrap();
    let b = slack
        .send_envelope_to(conns[1], payloads::with_retry(&envelope, 1))
        .unwrap();
    slack.wait_for_ack(&a, WAIT).await.unwrap();
    slack.wait_for_ack(&b, WAIT).await.unwrap();
    slack.wait_for_call("views.publish", WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(slack.call_count("views.publish"), 1);
    for running in [one, two] {
        running.shutdown();
        running.stopped().await;
    }
}

#[tokio::test]
async fn disconnect_opens_the_replacement_before_closing() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    let before = slack.open_connection_ids();
    let old = before[0];
    slack.send_disconnect(old, "refresh_requested").unwrap();
    let info = slack.wait_for_connection_closed(old, WAIT).await.unwrap();
    assert_eq!(info.replaced_before_close, Some(true), "{info:?}");
    slack.wait_for_connections(2, WAIT).await.unwrap();
    assert_eq!(slack.connections_opened_total(), 3);

    // And the new link works.
    let (envelope, _) = slash(&slack, "/nope", "");
    let id = slack.send_envelope(envelope).unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn disconnect_without_debug_info_and_hello_without_it_are_fine() {
    let slack = FakeSlack::start().await;
    slack.set_hello_without_debug_info(true);
    let db = TestDb::new(Backend::Sqlite).await;
    let running = bot::start(&slack, &db).await;
    let old = slack.open_connection_ids()[0];
    slack
        .send_raw_to(old, r#"{"type":"disconnect","reason":"warning"}"#)
        .unwrap();
    let info = slack.wait_for_connection_closed(old, WAIT).await.unwrap();
    assert_eq!(info.replaced_before_close, Some(true));
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn a_dropped_socket_is_replaced_within_seconds() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    let victim = slack.open_connection_ids()[0];
    let dropped_at = std::time::Instant::now();
    slack.drop_connection(victim).unwrap();
    slack.wait_for_total_connections(3, WAIT).await.unwrap();
    slack.wait_for_connections(2, WAIT).await.unwrap();
    assert!(dropped_at.elapsed() < Duration::from_secs(5));
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn a_silent_socket_is_replaced_within_seconds() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    let victim = slack.open_connection_ids()[0];
    let silent_at = std::time::Instant::now();
    slack.go_silent(victim).unwrap();
    // Ping interval is 1 s in tests: two missed intervals and it is replaced.
    slack.wait_for_total_connections(3, WAIT).await.unwrap();
    let took = silent_at.elapsed();
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let (envelope, _) = slash(&slack, "/nope", "");
    let fresh = *slack.open_connection_ids().last().unwrap();
    let id = slack.send_envelope_to(fresh, envelope).unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn malformed_frames_are_survived() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    let conn = slack.open_connection_ids()[0];
    for junk in [
        "not json at all",
        "{\"type\":",
        "[]",
        "{\"no_type\":true}",
        "{\"type\":\"brand_new_frame\"}",
        &"x".repeat(200_000),
    ] {
        slack.send_raw_to(conn, junk).unwrap();
    }
    // An envelope whose payload is not a slash command is still acked (so Slack stops).
    slack
        .send_raw_to(
            conn,
            r#"{"envelope_id":"broken-1","type":"slash_commands","payload":{"oops":1},"accepts_response_payload":true}"#,
        )
        .unwrap();
    slack.wait_for_ack("broken-1", WAIT).await.unwrap();
    // Still alive on the same connection.
    let (envelope, _) = slash(&slack, "/nope", "");
    let id = slack.send_envelope_to(conn, envelope).unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert!(slack.connection(conn).unwrap().is_open());
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn an_unknown_button_gets_a_friendly_private_answer() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    let mut envelope = payloads::block_actions(TEAM, USER, "retired_button", "x", None);
    envelope["payload"]["response_url"] = json!(slack.response_url("r1"));
    let id = slack.send_envelope(envelope).unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    let post = slack
        .wait_for_response_post("r1", WAIT)
        .await
        .expect("an answer through response_url");
    let text = post.body["text"].as_str().unwrap_or_default();
    assert!(text.contains("no longer supported"), "{text}");
    running.shutdown();
    running.stopped().await;
}

/// A handler that takes its time, to show it does not hold back other envelopes' acks.
struct Slow(Arc<AtomicUsize>);

#[async_trait]
impl Handler for Slow {
    async fn handle(&self, _cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_slow_handler_does_not_delay_other_acks() {
    let slack = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let done = Arc::new(AtomicUsize::new(0));
    let mut features = Features::new(followup_bot::features::fallback::Unknown);
    features
        .routes
        .push((Route::Command("/slow".into()), Arc::new(Slow(done.clone()))));
    let mut settings = bot::settings(&slack, &db);
    settings.push(("SLACK_SOCKET_CONNECTIONS".into(), "1".into()));
    let running = bot::start_with(bot::config(&settings), features, &slack).await;

    let (slow, _) = slash(&slack, "/slow", "");
    let slow_id = slack.send_envelope(slow).unwrap();
    let (fast, _) = slash(&slack, "/nope", "");
    let fast_id = slack.send_envelope(fast).unwrap();
    let slow_ack = slack.wait_for_ack(&slow_id, WAIT).await.unwrap();
    let fast_ack = slack.wait_for_ack(&fast_id, WAIT).await.unwrap();
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "the slow work is still running"
    );
    assert!(slow_ack.latency.unwrap() < Duration::from_secs(1));
    assert!(fast_ack.latency.unwrap() < Duration::from_secs(1));
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn ready_is_503_with_a_reason_when_slack_refuses_the_app_token() {
    let slack = FakeSlack::start().await;
    slack.set_error("apps.connections.open", "invalid_auth");
    let db = TestDb::new(Backend::Sqlite).await;
    crate::support::init();
    let running = followup_bot::startup::start(
        bot::config(&bot::settings(&slack, &db)),
        followup_bot::features::all(),
    )
    .await
    .unwrap();
    let (status, body) = get(format!("{}/ready", bot::base_url(&running))).await;
    assert_eq!(status, 503);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("no Slack Socket Mode connection"),
        "{body}"
    );
    let (status, _) = get(format!("{}/health", bot::base_url(&running))).await;
    assert_eq!(status, 200);
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn metrics_count_envelopes_and_ack_latency() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    let (envelope, _) = slash(&slack, "/nope", "");
    let id = slack.send_envelope(envelope).unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    let text = reqwest::get(format!("{}/metrics", bot::base_url(&running)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "slack_envelopes_total",
        "slack_ack_seconds_bucket",
        "external_requests_total",
        "jobs{status=\"queued\"}",
        "slack_connections_open",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn shutdown_closes_the_sockets_cleanly() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    let ids = slack.open_connection_ids();
    running.shutdown();
    tokio::time::timeout(Duration::from_secs(10), running.stopped())
        .await
        .expect("stops within seconds");
    for id in ids {
        let info = slack.wait_for_connection_closed(id, WAIT).await.unwrap();
        assert!(
            matches!(
                info.close_kind,
                Some(crate::support::fake_slack::CloseKind::ClientCloseFrame(_))
            ),
            "{info:?}"
        );
    }
}

#[tokio::test]
async fn a_rate_limited_web_api_call_is_retried_after_retry_after() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    slack.set_rate_limited("views.publish", 1, Some(1));
    let id = slack
        .send_envelope(payloads::app_home_opened(TEAM, USER))
        .unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    let calls = slack
        .wait_for_calls("views.publish", 2, WAIT)
        .await
        .unwrap();
    assert_eq!(calls[0].status, 429);
    assert_eq!(calls[1].status, 200);
    assert!(
        calls[1].received_at.duration_since(calls[0].received_at) >= Duration::from_millis(900),
        "waited for Retry-After"
    );
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn shutdown_lets_acked_envelopes_finish() {
    let slack = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let done = Arc::new(AtomicUsize::new(0));
    let mut features = Features::new(followup_bot::features::fallback::Unknown);
    features
        .routes
        .push((Route::Command("/slow".into()), Arc::new(Slow(done.clone()))));
    let running = bot::start_with(bot::config(&bot::settings(&slack, &db)), features, &slack).await;
    let (slow, _) = slash(&slack, "/slow", "");
    let id = slack.send_envelope(slow).unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    running.shutdown();
    running.stopped().await;
    assert_eq!(
        done.load(Ordering::SeqCst),
        1,
        "the acked envelope was handled before the process let go"
    );
}

/// Issue 7, item 15: an org-wide install's interaction (`team: null`) and one whose user
/// belongs to another workspace are handled, for the workspace the action came from.
#[tokio::test]
async fn interactions_without_a_team_or_from_a_guest_are_handled() {
    let (slack, _db, running) = setup(Backend::Sqlite).await;
    let mut org_wide = payloads::block_actions("T0WORKSPACE", USER, "retired_button", "x", None);
    org_wide["payload"]["team"] = serde_json::Value::Null;
    org_wide["payload"]["response_url"] = json!(slack.response_url("org"));
    let id = slack.send_envelope(org_wide).unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    let post = slack
        .wait_for_response_post("org", WAIT)
        .await
        .expect("handled, not dropped as unreadable");
    assert!(post.body.to_string().contains("no longer supported"));

    let mut guest = payloads::block_actions("T0HOST", USER, "retired_button", "x", None);
    guest["payload"]["user"]["team_id"] = json!("T0GUESTHOME");
    guest["payload"]["response_url"] = json!(slack.response_url("guest"));
    let id = slack.send_envelope(guest).unwrap();
    slack.wait_for_ack(&id, WAIT).await.unwrap();
    slack
        .wait_for_response_post("guest", WAIT)
        .await
        .expect("handled");

    let store = &running.services.store;
    let followup_bot::store::Store::Sqlite(pool) = store else {
        unreachable!()
    };
    let teams: Vec<(String,)> = sqlx::query_as("SELECT slack_team_id FROM tenants ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let teams: Vec<String> = teams.into_iter().map(|(t,)| t).collect();
    assert!(teams.contains(&"T0WORKSPACE".to_owned()), "{teams:?}");
    assert!(teams.contains(&"T0HOST".to_owned()), "{teams:?}");
    assert!(!teams.contains(&"T0GUESTHOME".to_owned()), "{teams:?}");
    running.shutdown();
    running.stopped().await;
}

/// Issue 7, item 14: the public sidecar cannot be held open: a client that never finishes
/// its headers is cut off, and connections beyond the cap wait instead of piling up.
#[tokio::test]
async fn the_sidecar_cannot_be_held_open() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let slack = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = bot::settings(&slack, &db);
    settings.push(("HTTP_HEADER_TIMEOUT_SECS".into(), "1".into()));
    settings.push(("HTTP_MAX_CONNECTIONS".into(), "2".into()));
    let running = bot::start_with(
        bot::config(&settings),
        followup_bot::features::all(),
        &slack,
    )
    .await;
    let addr = running.http_addr;

    // Two slow-loris clients take both slots.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: bot\r\n")
            .await
            .unwrap();
        slow.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        reqwest::get(format!("http://{addr}/health")),
    )
    .await
    .expect("answered once the slow clients were cut off")
    .unwrap();
    assert_eq!(health.status(), 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "the third connection waited for a slot ({waited:?})"
    );
    // The slow clients were closed by the server.
    for mut conn in slow {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the server closed the slow connection");
    }
    running.shutdown();
    running.stopped().await;
}

/// Issue 7, item 14: a `/metrics` scrape does no database work, so it answers even while
/// the jobs table is locked (a scrape used to count the whole table each time).
#[tokio::test]
async fn a_metrics_scrape_does_not_wait_for_the_database() {
    let (_slack, db, running) = setup(Backend::Postgres).await;
    let locker = db.store().await;
    let followup_bot::store::Store::Postgres(pool) = &locker else {
        unreachable!()
    };
    let mut tx = pool.begin().await.unwrap();
    sqlx::raw_sql("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let scrape = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::get(format!("{}/metrics", bot::base_url(&running))),
    )
    .await
    .expect("the scrape did not wait for the locked table")
    .unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(
        scrape
            .text()
            .await
            .unwrap()
            .contains("jobs{status=\"queued\"}")
    );
    tx.rollback().await.unwrap();
    running.shutdown();
    running.stopped().await;
}
