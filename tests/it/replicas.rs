//! Two replicas of the shipped binary side by side on one PostgreSQL, against one fake Slack
//! that spreads envelopes over all their Socket Mode connections (issue 13, item 4): every
//! envelope is acked once and answered once, an Events API redelivery reaching the other
//! replica is handled once, each draft job runs once, the poller and the webhook backfill
//! run on one replica at a time (one announcement, one webhook per person), and an OAuth
//! flow and a Fathom webhook delivery work whichever replica's sidecar they reach.

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use secrecy::SecretString;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::support::bot::{APP_TOKEN, BOT_TOKEN};
use crate::support::fake_anthropic::FakeAnthropic;
use crate::support::fake_fathom::{FakeFathom, meeting};
use crate::support::fake_google::FakeGoogle;
use crate::support::fake_slack::FakeSlack;
use crate::support::{Backend, TestDb, payloads};
use followup_bot::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_followup-bot");
const TEAM: &str = "T0REPL";
const ADA: &str = "U0ADA";
const BOB: &str = "U0BOB";
const ADA_KEY: &str = "fathom-key-ada-replicas-0123456789";
const BOB_KEY: &str = "fathom-key-bob-replicas-0123456789";
const AI_KEY: &str = "sk-ant-replicas-0001";
const CLIENT_ID: &str = "cid-replicas.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "GOCSPX-SECRETreplicas0001";
const PUBLIC: &str = "https://followup.example";
const WAIT: Duration = Duration::from_secs(20);

use crate::support::free_port;

/// One bot process: its sidecar port, its log file, its Socket Mode connections.
struct Replica {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    conns: Vec<u64>,
}

impl Replica {
    /// A public URL of the bot, reached on this replica's loopback sidecar.
    fn local(&self, url: &str) -> String {
        assert!(url.starts_with(PUBLIC), "{url}");
        url.replacen(PUBLIC, &format!("http://127.0.0.1:{}", self.port), 1)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text[text.floor_char_boundary(start)..].to_owned()
    }
}

struct Cluster {
    slack: FakeSlack,
    fathom: FakeFathom,
    anthropic: FakeAnthropic,
    google: FakeGoogle,
    db: TestDb,
    key: String,
    dir: tempfile::TempDir,
    replicas: Vec<Replica>,
}

impl Cluster {
    async fn spawn(&mut self, name: &str) {
        let port = free_port();
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let err = file.try_clone().unwrap();
        let before = self.slack.open_connection_ids();
        let child = Command::new(BIN)
            .current_dir(self.dir.path())
            .env_clear()
            .env("SLACK_APP_TOKEN", APP_TOKEN)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_API_URL", self.slack.api_url())
            .env("DATABASE_URL", &self.db.url)
            .env("ENCRYPTION_KEY", &self.key)
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("PUBLIC_BASE_URL", PUBLIC)
            .env("FATHOM_API_URL", self.fathom.base_url())
            .env("FATHOM_POLL_INTERVAL_SECS", "1")
            .env("ANTHROPIC_API_URL", self.anthropic.base_url())
            .env("ANTHROPIC_API_KEY", AI_KEY)
            .env("GOOGLE_CLIENT_ID", CLIENT_ID)
            .env("GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
            .env("GOOGLE_AUTH_URL", self.google.auth_url())
            .env("GOOGLE_TOKEN_URL", self.google.token_url())
            .env("GOOGLE_USERINFO_URL", self.google.userinfo_url())
            .env("GOOGLE_REVOKE_URL", self.google.revoke_url())
            .env("GMAIL_API_URL", self.google.gmail_api_url())
            .env("GOOGLE_CALENDAR_API_URL", self.google.calendar_api_url())
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut replica = Replica {
            child,
            port,
            log,
            conns: Vec::new(),
        };
        // Each replica opens two connections (SLACK_SOCKET_CONNECTIONS' default).
        let open = match self
            .slack
            .wait_for_connections(before.len() + 2, WAIT)
            .await
        {
            Ok(open) => open,
            Err(e) => panic!("{name} never connected: {e}\n{}", replica.log_tail()),
        };
        replica.conns = open.into_iter().filter(|c| !before.contains(c)).collect();
        assert_eq!(replica.conns.len(), 2, "{name}: {:?}", replica.conns);
        let ready = format!("http://127.0.0.1:{port}/ready");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = reqwest::get(&ready).await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never ready\n{}",
                replica.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.replicas.push(replica);
    }

    fn logs(&self) -> String {
        self.replicas
            .iter()
            .enumerate()
            .map(|(i, r)| format!("--- replica {i}\n{}", r.log_tail()))
            .collect()
    }

    /// Waits until `count()` reaches `n`, then a little longer to see it stay there.
    async fn settles_at(&self, what: &str, n: usize, count: impl Fn() -> usize) {
        let deadline = Instant::now() + WAIT;
        while count() < n {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {n}\n{}",
                count(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(count(), n, "{what}: more than once\n{}", self.logs());
    }

    fn sent_with(&self, method: &str, needle: &str) -> usize {
        self.slack
            .calls(method)
            .iter()
            .filter(|c| c.response["ok"] == true && c.body.to_string().contains(needle))
            .count()
    }
}

fn ai_answer() -> String {
    json!({
        "email_subject": "Next steps",
        "email_body": "Thanks for the call.",
        "meeting_summary": "They want to cut onboarding time.",
        "crm_note": {
            "tech_stack": "", "pain_points": "", "impact": "", "next_steps": "", "roadblocks": ""
        },
        "next_meeting": null
    })
    .to_string()
}

#[tokio::test]
async fn two_bot_processes_on_one_postgres_share_the_work_once() {
    crate::support::init();
    let slack = FakeSlack::start().await;
    let fathom = FakeFathom::start().await;
    let anthropic = FakeAnthropic::start().await;
    let google = FakeGoogle::start(CLIENT_ID, CLIENT_SECRET).await;
    anthropic.add_key(AI_KEY);
    anthropic.set_default_text(ai_answer());
    fathom.add_key(ADA_KEY);
    fathom.add_key(BOB_KEY);
    let db = TestDb::new(Backend::Postgres).await;
    let key = followup_bot::crypto::generate_key();

    // Ada and Bob connected Fathom before; Ada's recording is new since her last poll.
    let recorded = Utc::now() - chrono::Duration::minutes(1);
    fathom.add_meeting(ADA_KEY, meeting(91, "Initech renewal", recorded, 30));
    {
        let store = Store::open(&db.url).await.unwrap();
        let cipher =
            followup_bot::crypto::Cipher::new(&SecretString::from(key.clone()), &[]).unwrap();
        let tenant = store.ensure_tenant(TEAM).await.unwrap();
        let now = followup_bot::store::now();
        for (user, fathom_key) in [(ADA, ADA_KEY), (BOB, BOB_KEY)] {
            let person = store.ensure_user(tenant.id, user).await.unwrap();
            crate::support::put_fathom_key(&store, &cipher, &person, fathom_key).await;
            store
                .set_fathom_poll(person.id, now - chrono::Duration::minutes(10), now)
                .await
                .unwrap();
        }
        // Listed, as `/followup` would have.
        for (user, recording, title) in
            [(ADA, 91, "Initech renewal"), (BOB, 92, "Umbrella kickoff")]
        {
            let person = store.ensure_user(tenant.id, user).await.unwrap();
            let listed: followup_bot::domain::meeting::Meeting =
                serde_json::from_value(json!({ "recording_id": recording, "title": title }))
                    .unwrap();
            store.remember_meetings(person.id, &[listed]).await.unwrap();
        }
        store.close().await;
    }

    let mut c = Cluster {
        slack,
        fathom,
        anthropic,
        google,
        db,
        key,
        dir: tempfile::tempdir().unwrap(),
        replicas: Vec::new(),
    };
    c.spawn("a").await;
    c.spawn("b").await;
    let all: Vec<u64> = c.replicas.iter().flat_map(|r| r.conns.clone()).collect();
    assert_eq!(all.len(), 4);

    // The webhook backfill ran on one replica: one webhook each, not two.
    c.settles_at("webhooks", 2, || c.fathom.webhooks().len())
        .await;
    for k in [ADA_KEY, BOB_KEY] {
        assert_eq!(
            c.fathom
                .webhooks()
                .iter()
                .filter(|h| h.api_key == k)
                .count(),
            1
        );
    }
    // Both pollers run every second; the lease lets one at a time poll: one announcement.
    c.settles_at("Ada's recording announced", 1, || {
        c.sent_with("chat.postMessage", "Initech renewal")
    })
    .await;

    // Commands spread over all four connections: each acked once, each answered once.
    let opened = c.slack.call_count("views.open");
    let mut ids = Vec::new();
    for (i, conn) in all.iter().cycle().take(8).enumerate() {
        let user = if i % 2 == 0 { ADA } else { BOB };
        let envelope = payloads::slash_command(
            TEAM,
            user,
            "/followup-settings",
            "",
            &c.slack.response_url("s"),
        );
        ids.push(c.slack.send_envelope_to(*conn, envelope).unwrap());
    }
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for id in &ids {
        c.slack.wait_for_ack(id, WAIT).await.unwrap();
        slowest = slowest.max(started.elapsed());
    }
    c.settles_at("settings modals", opened + 8, || {
        c.slack.call_count("views.open")
    })
    .await;
    for id in &ids {
        assert_eq!(c.slack.ack_count(id), 1, "{id}");
    }
    println!("8 commands over 4 connections of 2 replicas: all acked within {slowest:?}");

    // An Events API redelivery (same event id) reaching the other replica: handled once.
    let published = c.slack.call_count("views.publish");
    let home = payloads::app_home_opened(TEAM, ADA);
    let first = c
        .slack
        .send_envelope_to(c.replicas[0].conns[0], home.clone())
        .unwrap();
    let again = c
        .slack
        .send_envelope_to(c.replicas[1].conns[0], payloads::with_retry(&home, 1))
        .unwrap();
    for id in [&first, &again] {
        c.slack.wait_for_ack(id, WAIT).await.unwrap();
    }
    c.settles_at("App Home published", published + 1, || {
        c.slack.call_count("views.publish")
    })
    .await;

    // Bob's recording reaches a webhook: delivered to replica b's sidecar, Fathom's retry
    // of it (same webhook-id) to replica a's: one announcement.
    let hook = c
        .fathom
        .webhooks()
        .into_iter()
        .find(|h| h.api_key == BOB_KEY)
        .unwrap();
    let spec = meeting(92, "Umbrella kickoff", recorded, 30);
    let body = spec.to_json().to_string();
    c.fathom.add_meeting(BOB_KEY, spec);
    let headers = hook.headers("msg_repl_1", Utc::now(), &body);
    let http = reqwest::Client::new();
    for replica in [&c.replicas[1], &c.replicas[0]] {
        let mut request = http
            .post(replica.local(&hook.destination_url))
            .body(body.clone());
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), 204);
    }
    c.settles_at("Bob's recording announced", 1, || {
        c.sent_with("chat.postMessage", "Umbrella kickoff")
    })
    .await;

    // Ada drafts through replica a, Bob through replica b: one model call and one
    // "Follow-up ready" each, although both replicas run job workers.
    for (user, recording, title, conn) in [
        (ADA, 91, "Initech renewal", c.replicas[0].conns[1]),
        (BOB, 92, "Umbrella kickoff", c.replicas[1].conns[1]),
    ] {
        let pick = payloads::view_submission(
            TEAM,
            user,
            "followup_pick",
            "",
            payloads::state(&[(
                "meeting",
                "recording",
                payloads::static_select_input(&recording.to_string(), title),
            )]),
        );
        let id = c.slack.send_envelope_to(conn, pick).unwrap();
        c.slack.wait_for_ack(&id, WAIT).await.unwrap();
    }
    c.settles_at("Follow-up ready", 2, || {
        c.sent_with("chat.update", "Follow-up ready")
    })
    .await;
    assert_eq!(c.anthropic.request_count(), 2, "one model call per draft");

    // Google: the link from replica a's answer, started on replica b's sidecar, the
    // callback on replica a's. Connected once.
    let command = payloads::slash_command(
        TEAM,
        ADA,
        "/gmail-connect",
        "",
        &c.slack.response_url("gmail"),
    );
    let id = c
        .slack
        .send_envelope_to(c.replicas[0].conns[0], command)
        .unwrap();
    c.slack.wait_for_ack(&id, WAIT).await.unwrap();
    let post = c.slack.wait_for_response_post("gmail", WAIT).await.unwrap();
    let link = post.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find_map(|e| e["url"].as_str().map(str::to_owned))
        .expect("a Connect Google button");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = browser
        .get(c.replicas[1].local(&link))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status().as_u16(), 302, "{}", c.logs());
    let cookie = start
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("a state cookie");
    let to_google = start.headers()["location"].to_str().unwrap().to_owned();
    let callback = c.google.consent(&to_google).await.unwrap();
    let done = browser
        .get(c.replicas[0].local(&callback))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status().as_u16(), 200, "{}", c.logs());
    let store = Store::open(&c.db.url).await.unwrap();
    if let Store::Postgres(pool) = &store {
        let (google,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM credentials WHERE provider = 'google'")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(google, 1);
    }
    store.close().await;

    for replica in &mut c.replicas {
        let pid = replica.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let exit = tokio::time::timeout(WAIT, replica.child.wait())
            .await
            .expect("stops on SIGTERM")
            .unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}
