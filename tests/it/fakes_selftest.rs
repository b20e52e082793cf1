//! Checks the Fathom and Anthropic fakes themselves with a plain reqwest client.

use crate::support::{fake_anthropic, fake_fathom};

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use fake_anthropic::FakeAnthropic;
use fake_fathom::{FakeFathom, Invitee, meeting, ts};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const KEY: &str = "fk-alice";

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

async fn get(url: &str, key: Option<&str>, query: &[(&str, &str)]) -> (u16, Value, Option<String>) {
    let mut req = reqwest::Client::new().get(url).query(query);
    if let Some(k) = key {
        req = req.header("X-Api-Key", k);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.json::<Value>().await.expect("json body");
    (status, body, retry_after)
}

fn ids(body: &Value) -> Vec<u64> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["recording_id"].as_u64().expect("recording_id"))
        .collect()
}

#[tokio::test]
async fn fathom_meeting_shape_and_filters() {
    let f = FakeFathom::start().await;
    f.add_key(KEY);
    let h = chrono::Duration::hours;
    f.add_meeting(KEY, meeting(1, "Oldest", t0() - h(3), 30));
    f.add_meeting(
        KEY,
        meeting(2, "Middle", t0() - h(2), 45).transcript_language(None),
    );
    f.add_meeting(
        KEY,
        meeting(3, "Internal sync", t0() - h(1), 15)
            .invitees(vec![Invitee::new(
                "Sam Seller",
                "sam@seller.example",
                false,
            )])
            .recorded_by("Rita Rep", "rita@seller.example"),
    );
    f.add_meeting_json(
        KEY,
        json!({"recording_id": 4, "title": "Raw", "created_at": ts(t0()), "odd": true}),
    );
    let url = format!("{}/meetings", f.base_url());
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(url.ends_with("/external/v1/meetings"));

    let (status, body, _) = get(&url, Some(KEY), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), vec![4, 3, 2, 1], "newest first");
    assert_eq!(body["limit"], 10);
    assert_eq!(body["next_cursor"], Value::Null);
    assert_eq!(body["items"][0]["odd"], true, "raw JSON served as given");

    // Full shape of a built meeting.
    let m = &body["items"][3];
    assert_eq!(m["title"], "Oldest");
    assert_eq!(m["meeting_title"], "Oldest");
    assert_eq!(m["recording_id"], 1);
    assert_eq!(m["created_at"], "2025-03-01T09:00:00Z");
    assert_eq!(m["scheduled_start_time"], "2025-03-01T08:29:00Z");
    assert_eq!(m["scheduled_end_time"], "2025-03-01T08:59:00Z");
    assert_eq!(m["recording_start_time"], "2025-03-01T08:29:30Z");
    assert_eq!(m["recording_end_time"], "2025-03-01T08:59:30Z");
    assert_eq!(m["transcript_language"], "en");
    assert!(m["url"].as_str().unwrap().starts_with("https://"));
    assert!(m["share_url"].as_str().unwrap().starts_with("https://"));
    let inv = m["calendar_invitees"].as_array().unwrap();
    assert_eq!(inv.len(), 2);
    assert_eq!(inv[0]["is_external"], false);
    assert_eq!(inv[0]["email_domain"], "seller.example");
    assert_eq!(inv[1]["is_external"], true);
    assert_eq!(inv[1]["email"], "chris@customer.example");
    assert_eq!(inv[1]["email_domain"], "customer.example");
    assert_eq!(m["recorded_by"]["email"], "sam@seller.example");
    assert_eq!(m["recorded_by"]["email_domain"], "seller.example");
    assert!(m["recorded_by"]["name"].is_string());
    for k in [
        "default_summary",
        "transcript",
        "action_items",
        "crm_matches",
    ] {
        assert!(
            m.get(k).is_none(),
            "{k} must not be in list items by default"
        );
    }
    assert_eq!(body["items"][2]["transcript_language"], Value::Null);

    // created_after / created_before are strict.
    let after = ts(t0() - h(2));
    let (_, body, _) = get(&url, Some(KEY), &[("created_after", after.as_str())]).await;
    assert_eq!(ids(&body), vec![4, 3]);
    let before = ts(t0() - h(1));
    let (_, body, _) = get(
        &url,
        Some(KEY),
        &[
            ("created_after", "2025-03-01T08:00:00Z"),
            ("created_before", before.as_str()),
        ],
    )
    .await;
    assert_eq!(ids(&body), vec![2, 1]);
    let (_, body, _) = get(
        &url,
        Some(KEY),
        &[("created_after", "2025-03-01T13:00:00+02:00")],
    )
    .await;
    assert_eq!(ids(&body), vec![4], "offsets are honoured");
    let (status, body, _) = get(&url, Some(KEY), &[("created_after", "yesterday")]).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("created_after"));

    // Other filters.
    let (_, body, _) = get(&url, Some(KEY), &[("recorded_by[]", "rita@seller.example")]).await;
    assert_eq!(ids(&body), vec![3]);
    let (_, body, _) = get(
        &url,
        Some(KEY),
        &[("calendar_invitees_domains[]", "customer.example")],
    )
    .await;
    assert_eq!(ids(&body), vec![2, 1]);
    let (_, body, _) = get(
        &url,
        Some(KEY),
        &[("calendar_invitees_domains_type", "one_or_more_external")],
    )
    .await;
    assert_eq!(ids(&body), vec![2, 1]);

    // include_* embeds content and is recorded.
    f.set_summary(2, "## Summary\nMiddle summary");
    let (_, body, _) = get(
        &url,
        Some(KEY),
        &[("include_summary", "true"), ("include_transcript", "false")],
    )
    .await;
    assert_eq!(
        body["items"][2]["default_summary"]["markdown_formatted"],
        "## Summary\nMiddle summary"
    );
    assert!(body["items"][2].get("transcript").is_none());
    let calls = f.calls_of("meetings");
    assert!(
        calls[..calls.len() - 1]
            .iter()
            .all(|c| c.includes().is_empty())
    );
    let last = calls.last().unwrap();
    assert_eq!(last.includes(), vec!["include_summary".to_string()]);
    assert_eq!(f.include_requests().len(), 1);
    assert_eq!(last.param("include_transcript"), Some("false"));
    assert_eq!(last.api_key.as_deref(), Some(KEY));
    assert_eq!(last.path, "/external/v1/meetings");
    assert_eq!(last.status, 200);
}

#[tokio::test]
async fn fathom_pages_through_25_meetings() {
    let f = FakeFathom::start().await;
    f.add_key(KEY);
    f.set_page_size(10);
    for i in 1..=25u64 {
        let at = t0() + chrono::Duration::minutes(i as i64 * 10);
        f.add_meeting(KEY, meeting(1000 + i, &format!("Call {i}"), at, 20));
    }
    let url = format!("{}/meetings", f.base_url());
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut q = vec![("created_after", "2025-01-01T00:00:00Z")];
        if let Some(c) = cursor.as_deref() {
            q.push(("cursor", c));
        }
        let (status, body, _) = get(&url, Some(KEY), &q).await;
        assert_eq!(status, 200);
        assert_eq!(body["limit"], 10);
        pages.push(ids(&body));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages.len() < 10, "runaway paging");
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    let all: Vec<u64> = pages.concat();
    let expected: Vec<u64> = (1001..=1025).rev().collect();
    assert_eq!(all, expected, "newest first, no gaps or repeats");
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 25);
    assert_eq!(f.call_count("meetings"), 3);
    let calls = f.calls_of("meetings");
    assert!(calls[0].param("cursor").is_none());
    assert!(calls[1].param("cursor").is_some());

    let (status, _, _) = get(&url, Some(KEY), &[("cursor", "not-a-cursor!")]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn fathom_auth_and_ownership() {
    let f = FakeFathom::start().await;
    f.add_key("fk-a");
    f.add_key("fk-b");
    f.add_meeting("fk-a", meeting(7, "A's call", t0(), 30));
    f.add_meeting("fk-b", meeting(8, "B's call", t0(), 30));
    let base = f.base_url();
    let url = format!("{base}/meetings");

    // A queued failure is not consumed by unauthorized requests.
    f.fail_next("meetings", 500, 1);
    let (status, body, _) = get(&url, None, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"error": "unauthorized"}));
    let (status, _, _) = get(&url, Some("fk-unknown"), &[]).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(&url, Some("fk-a"), &[]).await;
    assert_eq!(status, 500);

    let (_, body, _) = get(&url, Some("fk-a"), &[]).await;
    assert_eq!(ids(&body), vec![7]);
    let (_, body, _) = get(&url, Some("fk-b"), &[]).await;
    assert_eq!(ids(&body), vec![8]);

    for what in ["summary", "transcript"] {
        let (status, _, _) = get(&format!("{base}/recordings/7/{what}"), Some("fk-a"), &[]).await;
        assert_eq!(status, 200, "{what}");
        let (status, body, _) =
            get(&format!("{base}/recordings/8/{what}"), Some("fk-a"), &[]).await;
        assert_eq!(status, 404, "{what} of another key's recording");
        assert!(body["error"].is_string());
        let (status, _, _) = get(&format!("{base}/recordings/999/{what}"), Some("fk-a"), &[]).await;
        assert_eq!(status, 404);
    }

    f.remove_key("fk-a");
    let (status, _, _) = get(&url, Some("fk-a"), &[]).await;
    assert_eq!(status, 401);

    let unauthorized = f.calls().iter().filter(|c| c.status == 401).count();
    assert_eq!(unauthorized, 3);
    assert_eq!(f.calls()[0].api_key, None);
    assert_eq!(f.calls()[1].api_key.as_deref(), Some("fk-unknown"));
}

#[tokio::test]
async fn fathom_summary_and_transcript() {
    let f = FakeFathom::start().await;
    f.add_key(KEY);
    f.add_meeting(KEY, meeting(42, "Acme demo", t0(), 30));
    f.add_meeting(KEY, meeting(43, "Beta demo", t0(), 30));
    let base = f.base_url();

    let (_, body, _) = get(&format!("{base}/recordings/42/summary"), Some(KEY), &[]).await;
    assert_eq!(body["summary"]["template_name"], "general");
    assert!(
        body["summary"]["markdown_formatted"]
            .as_str()
            .unwrap()
            .contains("Acme demo")
    );
    f.set_summary(42, "## Summary\nThey want a quote by Friday.");
    let (_, body, _) = get(&format!("{base}/recordings/42/summary"), Some(KEY), &[]).await;
    assert_eq!(
        body,
        json!({"summary": {"template_name": "general",
            "markdown_formatted": "## Summary\nThey want a quote by Friday."}})
    );

    // Default transcript: two lines by the two invitees.
    let (_, body, _) = get(&format!("{base}/recordings/43/transcript"), Some(KEY), &[]).await;
    let lines = body["transcript"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1]["speaker"]["matched_calendar_invitee_email"],
        "chris@customer.example"
    );

    f.set_transcript(
        42,
        vec![
            ("Sam Seller", "Hi Chris."),
            ("Chris Customer", "Hi Sam, send me the quote."),
            ("Unknown Guest", "Hello."),
        ],
    );
    let (status, body, _) = get(&format!("{base}/recordings/42/transcript"), Some(KEY), &[]).await;
    assert_eq!(status, 200);
    let lines = body["transcript"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["speaker"]["display_name"], "Sam Seller");
    assert_eq!(
        lines[0]["speaker"]["matched_calendar_invitee_email"],
        "sam@seller.example"
    );
    assert_eq!(lines[1]["text"], "Hi Sam, send me the quote.");
    assert_eq!(
        lines[2]["speaker"]["matched_calendar_invitee_email"],
        Value::Null
    );
    assert_eq!(lines[0]["timestamp"], "00:00:02");
    assert_eq!(lines[1]["timestamp"], "00:00:19");

    let calls = f.calls_of("transcript");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].recording_id, Some(42));
    assert_eq!(calls[1].path, "/external/v1/recordings/42/transcript");
}

#[tokio::test]
async fn fathom_rate_limits_failures_and_delays() {
    let f = FakeFathom::start().await;
    f.add_key(KEY);
    f.add_meeting(KEY, meeting(5, "Call", t0(), 30));
    let base = f.base_url();
    let summary = format!("{base}/recordings/5/summary");

    f.rate_limit_next("summary", 7, 2);
    f.fail_next("summary", 503, 1);
    let (status, body, retry) = get(&summary, Some(KEY), &[]).await;
    assert_eq!((status, retry.as_deref()), (429, Some("7")));
    assert!(body["error"].is_string());
    // Other kinds are unaffected.
    let (status, _, _) = get(&format!("{base}/meetings"), Some(KEY), &[]).await;
    assert_eq!(status, 200);
    let (status, _, retry) = get(&summary, Some(KEY), &[]).await;
    assert_eq!((status, retry.as_deref()), (429, Some("7")));
    let (status, _, retry) = get(&summary, Some(KEY), &[]).await;
    assert_eq!((status, retry), (503, None));
    let (status, _, _) = get(&summary, Some(KEY), &[]).await;
    assert_eq!(status, 200);

    // Delays: only the configured kind, and the call is visible before the answer.
    f.set_delay("transcript", Duration::from_millis(800));
    let started = Instant::now();
    let (status, _, _) = get(&format!("{base}/meetings"), Some(KEY), &[]).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_millis(700));

    let url = format!("{base}/recordings/5/transcript");
    let started = Instant::now();
    let pending = tokio::spawn(async move { get(&url, Some(KEY), &[]).await });
    let calls = f.wait_for_calls("transcript", 1, WAIT).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(700));
    assert_eq!(calls[0].recording_id, Some(5));
    assert!(!pending.is_finished());
    let (status, _, _) = pending.await.unwrap();
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(800));

    f.set_delay("transcript", Duration::ZERO);
    let err = f
        .wait_for_calls("transcript", 2, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"));
    assert_eq!(f.call_count("summary"), 4);

    let (status, _, _) = get(&format!("{base}/nope"), Some(KEY), &[]).await;
    assert_eq!(status, 404);
    assert_eq!(f.call_count("other"), 1);
}

// ---------------------------------------------------------------------------------- anthropic

const AKEY: &str = "sk-ant-test";

fn body(user: &str) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "You write follow-up emails.",
        "messages": [{"role": "user", "content": user}],
    })
}

async fn post(
    fake: &FakeAnthropic,
    key: Option<&str>,
    version: Option<&str>,
    body: &Value,
) -> (u16, Value, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/messages", fake.base_url()))
        .json(body);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    if let Some(v) = version {
        req = req.header("anthropic-version", v);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    assert!(resp.headers().contains_key("request-id"));
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, resp.json().await.expect("json"), retry_after)
}

const V: Option<&str> = Some("2023-06-01");

#[tokio::test]
async fn anthropic_scripted_answers_and_errors() {
    let a = FakeAnthropic::start().await;
    a.add_key(AKEY);
    assert!(a.base_url().starts_with("http://127.0.0.1:"));
    a.push_text("Hello Chris!");
    a.push_error(429, "rate_limit_error", "Slow down", Some(3));
    a.push_error(529, "overloaded_error", "Overloaded", None);
    a.push_error(500, "api_error", "Internal server error", None);
    a.push_error(400, "invalid_request_error", "prompt is too long", None);
    assert_eq!(a.pending(), 5);

    let (status, ok, _) = post(&a, Some(AKEY), V, &body("Write to Chris")).await;
    assert_eq!(status, 200);
    assert_eq!(ok["type"], "message");
    assert_eq!(ok["role"], "assistant");
    assert_eq!(ok["model"], "claude-sonnet-4-5");
    assert!(ok["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        ok["content"],
        json!([{"type": "text", "text": "Hello Chris!"}])
    );
    assert_eq!(ok["stop_reason"], "end_turn");
    assert!(ok["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(ok["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let (status, err, retry) = post(&a, Some(AKEY), V, &body("x")).await;
    assert_eq!((status, retry.as_deref()), (429, Some("3")));
    assert_eq!(err["type"], "error");
    assert_eq!(
        err["error"],
        json!({"type": "rate_limit_error", "message": "Slow down"})
    );
    for (want_status, want_type) in [
        (529, "overloaded_error"),
        (500, "api_error"),
        (400, "invalid_request_error"),
    ] {
        let (status, err, retry) = post(&a, Some(AKEY), V, &body("x")).await;
        assert_eq!((status, retry), (want_status, None));
        assert_eq!(err["error"]["type"], want_type);
    }

    // Empty queue: 500 until a default is set.
    let (status, err, _) = post(&a, Some(AKEY), V, &body("x")).await;
    assert_eq!(status, 500);
    assert_eq!(err["error"]["type"], "api_error");
    a.set_default_text("default answer");
    let (status, ok, _) = post(&a, Some(AKEY), V, &body("x")).await;
    assert_eq!(status, 200);
    assert_eq!(ok["content"][0]["text"], "default answer");
    a.push_text_stop("cut sh", "max_tokens");
    let (_, ok, _) = post(&a, Some(AKEY), V, &body("x")).await;
    assert_eq!(ok["stop_reason"], "max_tokens");

    a.push_raw(200, json!({"content": [], "stop_reason": "end_turn"}), None);
    let (status, raw, _) = post(&a, Some(AKEY), V, &body("x")).await;
    assert_eq!(
        (status, raw),
        (200, json!({"content": [], "stop_reason": "end_turn"}))
    );

    let reqs = a.requests();
    assert_eq!(reqs.len(), 9);
    assert_eq!(a.request_count(), 9);
    assert_eq!(reqs[0].api_key.as_deref(), Some(AKEY));
    assert_eq!(reqs[0].version.as_deref(), Some("2023-06-01"));
    assert_eq!(reqs[0].model(), Some("claude-sonnet-4-5"));
    assert_eq!(reqs[0].max_tokens(), Some(1024));
    assert_eq!(
        reqs[0].system_text().as_deref(),
        Some("You write follow-up emails.")
    );
    assert_eq!(reqs[0].last_user_text().as_deref(), Some("Write to Chris"));
    assert!(reqs[0].all_text().contains("follow-up"));
    assert_eq!(reqs[0].body, body("Write to Chris"));
    assert_eq!(reqs[1].status, 429);
}

#[tokio::test]
async fn anthropic_auth_version_and_validation() {
    let a = FakeAnthropic::start().await;
    a.add_key(AKEY);
    a.push_text("only for a valid request");

    let (status, err, _) = post(&a, Some("sk-wrong"), V, &body("x")).await;
    assert_eq!(status, 401);
    assert_eq!(
        err["error"],
        json!({"type": "authentication_error", "message": "invalid x-api-key"})
    );
    assert_eq!(err["type"], "error");
    let (status, err, _) = post(&a, None, V, &body("x")).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["type"], "authentication_error");
    let (status, err, _) = post(&a, Some(AKEY), None, &body("x")).await;
    assert_eq!(status, 400);
    assert_eq!(
        err["error"],
        json!({"type": "invalid_request_error", "message": "anthropic-version: header is required"})
    );
    let (status, _, _) = post(&a, Some(AKEY), Some("2099-01-01"), &body("x")).await;
    assert_eq!(status, 400);
    let mut no_max = body("x");
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let (status, err, _) = post(&a, Some(AKEY), V, &no_max).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "invalid_request_error");
    let (status, _, _) = post(
        &a,
        Some(AKEY),
        V,
        &json!({"model": "m", "max_tokens": 5, "messages": []}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(a.pending(), 1, "refused requests do not consume the script");

    // Content blocks are understood too.
    let blocks = json!({
        "model": "m", "max_tokens": 5,
        "system": [{"type": "text", "text": "sys"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "block text"}]}],
    });
    let (status, _, _) = post(&a, Some(AKEY), V, &blocks).await;
    assert_eq!(status, 200);
    let last = a.requests().pop().unwrap();
    assert_eq!(last.system_text().as_deref(), Some("sys"));
    assert_eq!(last.last_user_text().as_deref(), Some("block text"));
    assert_eq!(a.request_count(), 7);

    let resp = reqwest::Client::new()
        .post(format!("{}/v1/other", a.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn anthropic_delay_and_wait() {
    let a = FakeAnthropic::start().await;
    a.add_key(AKEY);
    a.set_default_text("slow answer");
    a.set_delay(Duration::from_millis(800));
    let started = Instant::now();
    let client = a.clone();
    let pending = tokio::spawn(async move { post(&client, Some(AKEY), V, &body("hi")).await });
    let reqs = a.wait_for_requests(1, WAIT).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(700));
    assert_eq!(reqs[0].last_user_text().as_deref(), Some("hi"));
    assert!(!pending.is_finished());
    let (status, ok, _) = pending.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(ok["content"][0]["text"], "slow answer");
    assert!(started.elapsed() >= Duration::from_millis(800));

    a.set_delay(Duration::ZERO);
    let err = a
        .wait_for_requests(2, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"));
}

#[tokio::test]
async fn anthropic_lists_models_for_a_known_key_only() {
    let claude = FakeAnthropic::start().await;
    claude.add_key("sk-ant-good");
    let http = reqwest::Client::new();
    let get = |key: &'static str, query: &'static str| {
        http.get(format!("{}/v1/models{query}", claude.base_url()))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .send()
    };
    let r = get("sk-ant-good", "?limit=1").await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["data"][0]["type"], "model");
    assert_eq!(body["has_more"], true);
    assert_eq!(body["first_id"], body["data"][0]["id"]);
    let body: Value = get("sk-ant-good", "").await.unwrap().json().await.unwrap();
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        fake_anthropic::MODELS.len()
    );
    assert_eq!(body["has_more"], false);

    let r = get("sk-ant-unknown", "?limit=1").await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    assert_eq!(claude.models_calls(), 3);
    assert_eq!(
        claude.request_count(),
        0,
        "models calls are not message requests"
    );
}
