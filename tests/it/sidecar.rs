//! The public sidecar's limits (issue 14, item 3): a per-client rate limit on the OAuth and
//! install routes with `Retry-After`, the webhooks' own higher limit, the body cap, `/metrics`
//! behind `METRICS_TOKEN`, the security headers and the privacy page.

use crate::support::fake_slack::FakeSlack;
use crate::support::{Backend, TestDb, bot};

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

async fn sidecar(extra: &[(&str, &str)]) -> (FakeSlack, TestDb, followup_bot::startup::Running) {
    let slack = FakeSlack::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = bot::settings(&slack, &db);
    for (k, v) in extra {
        settings.push((k.to_string(), v.to_string()));
    }
    let running = bot::start_with(
        bot::config(&settings),
        followup_bot::features::all(),
        &slack,
    )
    .await;
    (slack, db, running)
}

#[tokio::test]
async fn the_oauth_routes_are_limited_per_client_and_webhooks_have_their_own_limit() {
    let (_slack, _db, running) = sidecar(&[
        ("HTTP_RATE_LIMIT_PER_MINUTE", "3"),
        ("HTTP_CLIENT_IP_HEADER", "Fly-Client-IP"),
        ("PUBLIC_BASE_URL", "https://followup.example"),
    ])
    .await;
    let base = format!("http://{}", running.http_addr);
    let http = reqwest::Client::new();
    let get = |path: &str, client: &str| {
        http.get(format!("{base}{path}"))
            .header("fly-client-ip", client)
            .send()
    };
    for _ in 0..3 {
        let r = get("/oauth/google/callback?state=x&code=y", "203.0.113.7")
            .await
            .unwrap();
        assert_ne!(r.status(), 429);
    }
    let refused = get("/oauth/google/callback?state=x&code=y", "203.0.113.7")
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The install routes share the limit; another client does not.
    assert_eq!(
        get("/slack/install", "203.0.113.7").await.unwrap().status(),
        429
    );
    assert_ne!(
        get("/oauth/google/callback?state=x&code=y", "203.0.113.8")
            .await
            .unwrap()
            .status(),
        429
    );
    // Fathom's deliveries and the probes are not behind the callbacks' limit.
    for _ in 0..5 {
        let r = http
            .post(format!("{base}/webhooks/fathom/not-a-webhook"))
            .header("fly-client-ip", "203.0.113.7")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    assert_eq!(get("/health", "203.0.113.7").await.unwrap().status(), 200);
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn bodies_are_capped_except_on_the_webhook_route() {
    let (_slack, _db, running) = sidecar(&[("PUBLIC_BASE_URL", "https://followup.example")]).await;
    let base = format!("http://{}", running.http_addr);
    let http = reqwest::Client::new();
    let big = "x".repeat(100 * 1024);
    let r = http
        .post(format!("{base}/oauth/google/callback"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // A webhook delivery of 100 KiB is read (and refused only as unknown).
    let r = http
        .post(format!("{base}/webhooks/fathom/not-a-webhook"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let (_slack, _db, running) = sidecar(&[("METRICS_TOKEN", METRICS_TOKEN)]).await;
    let url = format!("http://{}/metrics", running.http_addr);
    let http = reqwest::Client::new();
    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = http
        .get(&url)
        .bearer_auth("metrics-token-0123456789abcdeX")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = http
        .get(&url)
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("# TYPE"));
    running.shutdown();
    running.stopped().await;
}

#[tokio::test]
async fn the_privacy_page_and_every_page_carry_the_security_headers() {
    let (_slack, _db, running) = sidecar(&[
        ("PUBLIC_BASE_URL", "https://followup.example"),
        ("RETENTION_DAYS", "45"),
    ])
    .await;
    let base = format!("http://{}", running.http_addr);
    let privacy = reqwest::get(format!("{base}/privacy")).await.unwrap();
    assert_eq!(privacy.status(), 200);
    let check = |headers: &reqwest::header::HeaderMap, html: bool| {
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        if html {
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert!(csp.contains("default-src 'none'"), "{csp}");
        }
    };
    check(privacy.headers(), true);
    assert!(
        privacy.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = privacy.text().await.unwrap();
    for needle in [
        "Delete my data",
        "after 45 days",
        "never reads or sends mail",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    // An OAuth error page, and a JSON probe, too.
    let page = reqwest::get(format!("{base}/oauth/google/callback"))
        .await
        .unwrap();
    check(
        page.headers(),
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
    );
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    check(health.headers(), false);
    running.shutdown();
    running.stopped().await;
}
