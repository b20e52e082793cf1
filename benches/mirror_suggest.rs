//! Autocomplete from the CRM mirror: `block_suggestion` envelopes answered in the ack from
//! 50,000 mirrored contacts, while the team's CRM (a fake Crono) would take 5 s a search.
//!
//! `cargo bench --bench mirror_suggest` mirrors 50,000 contacts into SQLite (and PostgreSQL
//! too when `TEST_POSTGRES_URL` is set), through the store's own page-apply in pages of 1,000,
//! runs the bot in process (release build) against the fake Slack and the fake Crono on
//! loopback, and prints, from the fake Slack writing the envelope to it reading the ack:
//! 1. 300 queries a person would type (2 to 4 letters of a first name, which match thousands
//!    of contacts; a full first and last name, which matches a few; an email's start);
//! 2. the same store query alone (no Slack round trip), 300 times.
//!
//! On PostgreSQL both run again after `VACUUM ANALYZE` (what autovacuum soon does after a
//! bulk load: index-only scans need the visibility map).
//!
//! It checks that Crono was not searched once. Figures, not assertions.

#[path = "../tests/it/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::time::{Duration, Instant};

use followup_bot::clients::crm::crono::CronoKeys;
use followup_bot::domain::crm::{Contact, MirrorObject, Record};
use followup_bot::domain::provider::Provider;
use followup_bot::store::credentials::{NewCredential, Subject};
use followup_bot::store::mirror::{SyncCursor, SyncMode};
use serde_json::json;
use support::fake_crono::FakeCrono;
use support::fake_slack::FakeSlack;
use support::{Backend, TestDb, bot, payloads};

const TEAM: &str = "T0MIRROR";
const PUBLIC_KEY: &str = "crono-pub-bench";
const PRIVATE_KEY: &str = "crono-private-bench";
const CONTACTS: usize = 50_000;

const FIRST: [&str; 40] = [
    "Marco",
    "Maria",
    "Giulia",
    "Luca",
    "Anna",
    "Paolo",
    "Sara",
    "Davide",
    "Elena",
    "Matteo",
    "Chiara",
    "Andrea",
    "Laura",
    "Simone",
    "Francesca",
    "Stefano",
    "Martina",
    "Alessandro",
    "Valentina",
    "Federico",
    "Ada",
    "Bob",
    "Claire",
    "Daniel",
    "Emma",
    "Frank",
    "Grace",
    "Henry",
    "Irene",
    "Jack",
    "Karen",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Peter",
    "Quinn",
    "Rosa",
    "Sofia",
    "Tom",
];
const LAST: [&str; 25] = [
    "Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti",
    "Smith", "Jones", "Brown", "Taylor", "Wilson", "Müller", "Schmidt", "Dubois", "Martin",
    "Bernard", "García", "López", "Novak", "Kowalski", "Jensen",
];

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            run(Backend::Sqlite).await;
            if std::env::var("TEST_POSTGRES_URL").is_ok() {
                run(Backend::Postgres).await;
            } else {
                println!("(PostgreSQL skipped: TEST_POSTGRES_URL is not set)");
            }
        });
}

fn contact(i: usize) -> Contact {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len()) % LAST.len()];
    Contact {
        id: format!("pr-{i:05}"),
        name: format!("{first} {last} {i}"),
        email: Some(format!(
            "{}.{}{i}@company{}.example",
            first.to_lowercase(),
            last.to_lowercase(),
            i % 997
        )),
        account_id: Some(format!("acc-{}", i % 997)),
        account_name: Some(format!("Company {}", i % 997)),
    }
}

fn queries() -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..300 {
        let c = contact(i * 167 % CONTACTS);
        let first = c.name.split(' ').next().unwrap().to_lowercase();
        out.push(match i % 3 {
            0 => first.chars().take(2 + i % 3).collect(),
            1 => c.name.to_lowercase(),
            _ => c.email.unwrap().chars().take(6).collect(),
        });
    }
    out
}

async fn run(backend: Backend) {
    let name = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let slack = FakeSlack::start().await;
    let crono = FakeCrono::start().await;
    crono.add_keys(PUBLIC_KEY, PRIVATE_KEY);
    crono.set_search_delay(Duration::from_secs(5));
    let db = TestDb::new(backend).await;
    let mut settings = bot::settings(&slack, &db);
    settings.retain(|(k, _)| k != "CRONO_API_URL");
    settings.push(("CRONO_API_URL".into(), crono.base_url()));
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

    // The mirror, as a backfill writes it: pages of 1,000, then the cursor that says ready.
    let started = Instant::now();
    for page in 0..CONTACTS / 1000 {
        let records: Vec<Record> = (page * 1000..(page + 1) * 1000)
            .map(|i| Record::Contact(contact(i)))
            .collect();
        app.store
            .mirror_apply(
                tenant.id,
                Provider::Crono,
                &records,
                followup_bot::store::now(),
            )
            .await
            .unwrap();
    }
    let took = started.elapsed();
    let mut cursor = SyncCursor::new(tenant.id, Provider::Crono, MirrorObject::Contacts);
    cursor.mode = SyncMode::Delta;
    cursor.since = Some(followup_bot::store::now());
    app.store.put_sync_cursor(&cursor).await.unwrap();
    println!(
        "{name}: mirrored {CONTACTS} contacts in {:.1} s ({:.0} per second)",
        took.as_secs_f64(),
        CONTACTS as f64 / took.as_secs_f64()
    );

    ask(&slack, "warm".to_owned()).await;
    measure(&slack, &app, tenant.id, name, "just loaded").await;
    if let followup_bot::store::Store::Postgres(pool) = &app.store {
        // What autovacuum does soon after a bulk load: the visibility map (for index-only
        // scans) and the planner's statistics.
        sqlx::query("VACUUM ANALYZE crm_mirror_contacts")
            .execute(pool)
            .await
            .unwrap();
        measure(&slack, &app, tenant.id, name, "after VACUUM ANALYZE").await;
    }
    println!(
        "{name}: Crono searched {} times (it takes 5 s a search)",
        crono.searches("/Prospects/search")
    );
    running.shutdown();
    running.stopped().await;
}

/// The Slack round trip and the store's query alone, over the same queries.
async fn measure(
    slack: &FakeSlack,
    app: &followup_bot::services::Services,
    tenant: followup_bot::domain::ids::TenantId,
    name: &str,
    when: &str,
) {
    let mut acks = Vec::new();
    for q in queries() {
        acks.push(ask(slack, q).await);
    }
    report(
        &format!("{name} ({when}), block_suggestion ack from the mirror of {CONTACTS} contacts"),
        &mut acks,
    );
    let mut store_only = Vec::new();
    for q in queries() {
        let at = Instant::now();
        let found = app
            .store
            .mirror_search_contacts(tenant, Provider::Crono, &q, 20)
            .await
            .unwrap();
        store_only.push(at.elapsed());
        assert!(!found.is_empty(), "{q} finds someone");
    }
    report(
        &format!("{name} ({when}), the store's search alone"),
        &mut store_only,
    );
}

/// One keystroke's suggestion request; its ack latency.
async fn ask(slack: &FakeSlack, query: String) -> Duration {
    let envelope =
        payloads::block_suggestion_in(TEAM, "U0BENCH", "contact", "crm_contact", &query, None);
    let id = slack.send_envelope(envelope).unwrap();
    let ack = slack
        .wait_for_ack(&id, Duration::from_secs(10))
        .await
        .unwrap();
    ack.latency.unwrap()
}

fn report(what: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} queries)",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(*latencies.last().unwrap()),
        latencies.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
