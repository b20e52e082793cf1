//! Autocomplete latency: `block_suggestion` envelopes answered in the ack, with the team's CRM
//! a fake Crono that takes 50 ms to answer each search.
//!
//! `cargo bench --bench suggest_latency` runs the bot in process (release build, SQLite)
//! against the fake Slack and the fake Crono on loopback and prints, from the fake Slack
//! writing the envelope to it reading the ack with the options:
//! 1. 100 distinct queries, one every 250 ms (a person typing; under the 5 requests/s limit):
//!    each one a Crono search;
//! 2. the same 100 again, back to back: answered from the per-team cache;
//! 3. 60 distinct queries with 10 in flight: the per-team limiter (5/s, bursts of 10) makes
//!    some wait; those past the 2 s search budget are answered "Crono is slow".
//!
//! Figures, not assertions.

#[path = "../tests/it/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use followup_bot::clients::crm::crono::CronoKeys;
use followup_bot::domain::provider::Provider;
use followup_bot::store::credentials::{NewCredential, Subject};
use serde_json::json;
use support::fake_crono::FakeCrono;
use support::fake_slack::FakeSlack;
use support::{Backend, TestDb, bot, payloads};

const TEAM: &str = "T0BENCH";
const PUBLIC_KEY: &str = "crono-pub-bench";
const PRIVATE_KEY: &str = "crono-private-bench";
const CRM_DELAY: Duration = Duration::from_millis(50);

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let slack = FakeSlack::start().await;
    let crono = FakeCrono::start().await;
    crono.add_keys(PUBLIC_KEY, PRIVATE_KEY);
    crono.add_account("acc-1", "Acme Corp", "acme.example");
    for i in 0..300 {
        crono.add_prospect(
            &format!("pr-{i}"),
            &format!("Person{i:03}"),
            "Tester",
            &format!("p{i}@acme.example"),
            "acc-1",
        );
    }
    crono.set_delay(CRM_DELAY);
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = bot::settings(&slack, &db);
    settings.retain(|(k, _)| k != "CRONO_API_URL");
    settings.push(("CRONO_API_URL".into(), crono.base_url()));
    settings.push(("LOG_FORMAT".into(), "json".into()));
    let running = bot::start_with(
        bot::config(&settings),
        followup_bot::features::all(),
        &slack,
    )
    .await;
    let app = running.services.clone();
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

    // Warm up: the first contact, the connections, one search.
    ask(&slack, "warm".to_owned()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let searches_before = crono.count("/Prospects/search");
    let mut typed = Vec::new();
    for i in 0..100 {
        typed.push(ask(&slack, format!("person{i:03}")).await.0);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let searches = crono.count("/Prospects/search") - searches_before;
    report(
        &format!(
            "100 distinct queries, 4/s, Crono at {} ms ({searches} searches)",
            CRM_DELAY.as_millis()
        ),
        &mut typed,
    );

    let searches_before = crono.count("/Prospects/search");
    let mut cached = Vec::new();
    for i in 0..100 {
        cached.push(ask(&slack, format!("person{i:03}")).await.0);
    }
    let searches = crono.count("/Prospects/search") - searches_before;
    report(
        &format!("the same 100 again, back to back ({searches} searches)"),
        &mut cached,
    );

    tokio::time::sleep(Duration::from_secs(3)).await; // the bucket refills
    let permits = Arc::new(tokio::sync::Semaphore::new(10));
    let mut waits = Vec::new();
    for i in 100..160 {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let slack = slack.clone();
        waits.push(tokio::spawn(async move {
            let answer = ask(&slack, format!("person{i:03}")).await;
            drop(permit);
            answer
        }));
    }
    let mut burst = Vec::new();
    let mut slow = 0;
    for w in waits {
        let (latency, was_slow) = w.await.unwrap();
        burst.push(latency);
        slow += usize::from(was_slow);
    }
    report(
        &format!("60 distinct queries, 10 in flight ({slow} answered \"Crono is slow\")"),
        &mut burst,
    );
    running.shutdown();
    running.stopped().await;
}

/// One keystroke's suggestion request; its ack latency and whether it said "is slow".
async fn ask(slack: &FakeSlack, query: String) -> (Duration, bool) {
    let envelope =
        payloads::block_suggestion_in(TEAM, "U0BENCH", "contact", "crm_contact", &query, None);
    let id = slack.send_envelope(envelope).unwrap();
    let ack = slack
        .wait_for_ack(&id, Duration::from_secs(10))
        .await
        .unwrap();
    let slow = ack
        .payload
        .as_ref()
        .is_some_and(|p| p.to_string().contains("is slow"));
    (ack.latency.unwrap(), slow)
}

fn report(what: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    println!(
        "block_suggestion ack, {what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(*latencies.last().unwrap()),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
