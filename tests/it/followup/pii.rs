//! Personal data out of the logs (issue 14, item 4): a whole follow-up flow with logs at
//! debug level (the person's Slack profile read, the meeting announced, listed, drafted by
//! the model, opened and edited) leaves no name, email address, meeting title or email text
//! in any log line of the bot or of the libraries it uses.
//!
//! The logs are captured by a subscriber for this test's thread only (`set_default`): the
//! test runs on a current-thread runtime, so the bot and every task it spawns log there.

use super::*;
use crate::support::fake_fathom::Invitee;
use tracing_subscriber::layer::SubscriberExt;

/// Words found nowhere but in this test's people and meeting.
const PERSONAL: &[&str] = &[
    "Wilhelmina",
    "Zanzibar",
    "wilhelmina.zanzibar",
    "Quokkasaurus",
    "Philomena",
    "Quibble",
    "philomena.quibble",
    "Bartholomew",
    "Xylophonic",
    "Zebulon",
];

#[tokio::test(flavor = "current_thread")]
async fn a_whole_follow_up_flow_at_debug_level_logs_no_personal_data() {
    let capture = crate::support::LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(
            "debug,tungstenite=info,tokio_tungstenite=info",
        ))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(move || writer.clone()),
        );
    let _guard = tracing::subscriber::set_default(subscriber);

    // PostgreSQL: its driver runs on this runtime, where SQLite's runs on threads of its own
    // (whose logs this thread's subscriber would not see).
    let mut w = World::new(Backend::Postgres, true, &[]).await;
    w.slack.set_user(
        ADA,
        json!({
            "id": ADA, "team_id": TEAM, "name": "wilhelmina.zanzibar",
            "real_name": "Wilhelmina Zanzibar", "tz": "Europe/Rome", "tz_offset": 3600,
            "profile": {
                "real_name": "Wilhelmina Zanzibar", "display_name": "Wilhelmina",
                "email": "wilhelmina.zanzibar@seller.example"
            },
            "is_admin": false, "is_owner": false
        }),
    );
    w.connect(ADA, ADA_KEY).await;
    w.fathom.add_meeting(
        ADA_KEY,
        meeting(
            4242,
            "Quokkasaurus renewal",
            Utc::now() - chrono::Duration::seconds(30),
            30,
        )
        .invitees(vec![
            Invitee::new(
                "Wilhelmina Zanzibar",
                "wilhelmina.zanzibar@seller.example",
                false,
            ),
            Invitee::new(
                "Philomena Quibble",
                "philomena.quibble@customer.example",
                true,
            ),
        ])
        .recorded_by("Wilhelmina Zanzibar", "wilhelmina.zanzibar@seller.example"),
    );
    // The recording is announced (a poll), then drafted by the model.
    w.poll_due_now(ADA).await;
    followup_bot::features::recordings::poll_once(w.app()).await;
    w.wait_for_sent("chat.postMessage", "Recording ready", WAIT)
        .await;
    // Junk from Slack and a model refusing with the person's words in its answer: logged
    // with their codes, never their text.
    w.slack
        .send_raw(r#"{"type":"interactive","envelope_id":"e1","payload": Philomena Quibble"#)
        .unwrap();
    w.fathom.add_meeting(
        ADA_KEY,
        meeting(
            4243,
            "Quokkasaurus pilot",
            Utc::now() - chrono::Duration::seconds(20),
            30,
        )
        .invitees(vec![Invitee::new(
            "Philomena Quibble",
            "philomena.quibble@customer.example",
            true,
        )]),
    );
    w.anthropic.push_error(
        400,
        "invalid_request_error",
        "Cannot draft for Philomena Quibble <philomena.quibble@customer.example>",
        None,
    );
    let picker = w.open_picker(ADA).await;
    let failed = w.pick(ADA, &picker, 4243).await;
    assert!(text_of(&failed).contains("template"), "{failed}");
    w.anthropic.push_text(ai_answer(
        "Quokkasaurus next steps",
        "Dear Philomena, thank you for the Xylophonic demo. Bartholomew will follow up.",
    ));
    let picker = w.open_picker(ADA).await;
    let ready = w.pick(ADA, &picker, 4242).await;
    let id = followup_id(&ready);
    // View & Edit, then a save with new words.
    let opens = w.slack.call_count("views.open");
    let click = w.click(ADA, "followup_view", &id, "v1");
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let calls = w
        .slack
        .wait_for_calls("views.open", opens + 1, WAIT)
        .await
        .unwrap();
    let edit = calls[opens].response["view"].clone();
    let submit = w.send(payloads::view_submission_for(
        TEAM,
        ADA,
        &edit,
        payloads::state(&[
            (
                "subject",
                "value",
                payloads::text_input("Quokkasaurus, edited"),
            ),
            (
                "body",
                "value",
                payloads::text_input("Dear Philomena, Zebulon here."),
            ),
            (
                "summary",
                "value",
                payloads::text_input("Philomena wants it"),
            ),
            ("crm_note", "value", payloads::text_input("Zebulon's note")),
            (
                "attendees",
                "value",
                payloads::text_input("philomena.quibble@customer.example"),
            ),
        ]),
    ));
    w.slack.wait_for_ack(&submit, WAIT).await.unwrap();
    let fid = FollowupId(id.clone());
    let deadline = Instant::now() + WAIT;
    while w
        .app()
        .store
        .followup_by_id(&fid)
        .await
        .unwrap()
        .unwrap()
        .edited
        .is_none()
    {
        assert!(Instant::now() < deadline, "edits never saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.stop().await;

    let text = capture.text();
    if let Ok(path) = std::env::var("PII_LOG_DUMP") {
        std::fs::write(path, &text).unwrap();
    }
    let lines: Vec<&str> = text
        .lines()
        // The fakes' own lines (test support code) are not the bot's.
        .filter(|l| !l.contains("\"target\":\"it::"))
        .collect();
    assert!(
        lines.len() > 50 && text.contains("4242") && text.contains("invalid_request_error"),
        "the capture saw the flow ({} lines)",
        lines.len()
    );
    for word in PERSONAL {
        let leaks: Vec<&&str> = lines.iter().filter(|l| l.contains(word)).collect();
        assert!(
            leaks.is_empty(),
            "{word:?} in {} log lines, e.g. {}",
            leaks.len(),
            leaks[0]
        );
    }
    println!("{} log lines at debug level, no personal data", lines.len());
}
