//! Ack latency under a burst: the release binary against the fake Slack on loopback.
//!
//! `cargo bench --bench ack_latency` sends 1,000 slash-command envelopes with 20 in flight and
//! prints ack latency p50/p99/max (from the fake writing the envelope to it reading the ack)
//! and the bot's resident memory afterwards. Figures, not assertions.

#[path = "../tests/it/support/fake_slack.rs"]
mod fake_slack;
#[path = "../tests/it/support/payloads.rs"]
mod payloads;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_slack::FakeSlack;

const TOTAL: usize = 1_000;
const IN_FLIGHT: usize = 20;

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
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_followup-bot"));
    command.current_dir(dir.path()).env_clear();
    // Allocator experiments pass through, e.g. MALLOC_ARENA_MAX=2.
    if let Ok(arenas) = std::env::var("MALLOC_ARENA_MAX") {
        command.env("MALLOC_ARENA_MAX", arenas);
    }
    let mut child = command
        .env("SLACK_APP_TOKEN", "xapp-1-A1-1-bench")
        .env("SLACK_BOT_TOKEN", "xoxb-1-2-bench")
        .env("SLACK_API_URL", slack.api_url())
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the release binary starts");
    let pid = child.id().unwrap();
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/ready")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "ready after {:?} (process start to /ready 200)",
        started.elapsed()
    );

    let burst = |n: usize| {
        let slack = slack.clone();
        async move {
            let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut waits = Vec::with_capacity(n);
            for i in 0..n {
                let permit = permits.clone().acquire_owned().await.unwrap();
                let envelope = payloads::slash_command(
                    "T0BENCH",
                    &format!("U{}", i % 25),
                    "/frobnicate",
                    "acme",
                    &slack.response_url("bench"),
                );
                let id = slack.send_envelope(envelope).unwrap();
                let slack = slack.clone();
                waits.push(tokio::spawn(async move {
                    let ack = slack.wait_for_ack(&id, Duration::from_secs(10)).await;
                    drop(permit);
                    ack.unwrap().latency.unwrap()
                }));
            }
            let mut latencies = Vec::with_capacity(n);
            for w in waits {
                latencies.push(w.await.unwrap());
            }
            latencies
        }
    };
    burst(100).await; // warm up: first contact with each user, caches, connections
    let t = Instant::now();
    let mut latencies = burst(TOTAL).await;
    let wall = t.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.trim_start_matches("VmRSS:").trim().to_owned())
        })
        .unwrap_or_else(|| "n/a".to_owned());
    println!(
        "ack latency over {TOTAL} slash commands, {IN_FLIGHT} in flight, 2 connections: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} envelopes/s; bot RSS after: {rss}",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap()),
        TOTAL as f64 / wall.as_secs_f64(),
    );

    // /followup: from the envelope leaving the fake to the bot's views.open reaching it
    // (the loading modal opens before any Fathom call; here the person has no Fathom key, so
    // the path to views.open is the same and Fathom is not involved).
    let mut open = Vec::with_capacity(200);
    for i in 0..200 {
        let before = slack.call_count("views.open");
        let envelope = payloads::slash_command(
            "T0BENCH",
            &format!("U{}", i % 25),
            "/followup",
            "",
            &slack.response_url("bench"),
        );
        let sent = Instant::now();
        slack.send_envelope(envelope).unwrap();
        let calls = slack
            .wait_for_calls("views.open", before + 1, Duration::from_secs(10))
            .await
            .unwrap();
        open.push(calls[before].received_at.duration_since(sent));
    }
    open.sort();
    let at = |p: f64| open[((open.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    println!(
        "/followup envelope to views.open, 200 sequential: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(*open.last().unwrap()),
    );
    if std::env::var("BENCH_METRICS").is_ok() {
        let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in metrics.lines().filter(|l| {
            l.contains("views.open")
                || l.starts_with("slack_ack_seconds")
                || l.contains("first_view")
        }) {
            println!("  {line}");
        }
    }
    let _ = child.start_kill();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
