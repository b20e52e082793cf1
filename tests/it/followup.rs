//! `/followup` end to end: the real bot against fake Slack, Fathom and Anthropic.

use std::time::{Duration, Instant};

use crate::support::fake_anthropic::FakeAnthropic;
use crate::support::fake_fathom::{FakeFathom, meeting};
use crate::support::fake_slack::FakeSlack;
use crate::support::{Backend, TestDb, bot, payloads};
use chrono::Utc;
use followup_bot::domain::ids::FollowupId;
use followup_bot::domain::provider::Provider;
use followup_bot::startup::Running;
use followup_bot::store::credentials::Subject;
use serde_json::{Value, json};

mod admins;
mod crm;
mod crm_connect;
mod crm_oauth;
mod crm_odoo;
mod google;
mod home;
mod install;
mod lifecycle;
mod mirror;
mod mirror_providers;
mod pii;
mod webhooks;

const TEAM: &str = "T0SALES";
const ADA: &str = "U0ADA";
const BOB: &str = "U0BOB";
const ADA_KEY: &str = "fathom-key-ada-0123456789";
const AI_KEY: &str = "sk-ant-test-key-0001";
const WAIT: Duration = Duration::from_secs(15);

struct World {
    slack: FakeSlack,
    fathom: FakeFathom,
    anthropic: FakeAnthropic,
    _db: TestDb,
    settings: Vec<(String, String)>,
    running: Option<Running>,
}

impl World {
    async fn new(backend: Backend, ai: bool, extra: &[(&str, &str)]) -> Self {
        let slack = FakeSlack::start().await;
        let fathom = FakeFathom::start().await;
        let anthropic = FakeAnthropic::start().await;
        anthropic.add_key(AI_KEY);
        fathom.add_key(ADA_KEY);
        let db = TestDb::new(backend).await;
        let mut settings = bot::settings(&slack, &db);
        settings.retain(|(k, _)| k != "FATHOM_API_URL" && k != "ANTHROPIC_API_URL");
        settings.push(("FATHOM_API_URL".into(), fathom.base_url()));
        settings.push(("ANTHROPIC_API_URL".into(), anthropic.base_url()));
        if ai {
            settings.push(("ANTHROPIC_API_KEY".into(), AI_KEY.into()));
        }
        for (k, v) in extra {
            settings.push((k.to_string(), v.to_string()));
        }
        let mut world = World {
            slack,
            fathom,
            anthropic,
            _db: db,
            settings,
            running: None,
        };
        world.start().await;
        world
    }

    async fn start(&mut self) {
        let running = bot::start_with(
            bot::config(&self.settings),
            followup_bot::features::all(),
            &self.slack,
        )
        .await;
        self.running = Some(running);
    }

    async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown();
            running.stopped().await;
        }
    }

    fn app(&self) -> &followup_bot::services::Services {
        &self.running.as_ref().expect("running").services
    }

    /// Ada's Fathom key, stored as `/fathom-connect` would.
    async fn connect(&self, user: &str, key: &str) {
        let app = self.app();
        let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
        let user = app.store.ensure_user(tenant.id, user).await.unwrap();
        crate::support::put_fathom_key(&app.store, &app.cipher, &user, key).await;
    }

    /// Ada's draft of a new recording fails: her key is revoked in Fathom between listing
    /// and drafting (nothing to retry blindly). Returns the "could not be drafted" message.
    async fn failed_draft(&self, recording: u64, title: &str) -> Value {
        add_today(&self.fathom, ADA_KEY, recording, title);
        let picker = self.open_picker(ADA).await;
        self.fathom.remove_key(ADA_KEY);
        self.pick(ADA, &picker, recording).await
    }

    /// Ada presses Retry on a failed draft; waits for "Follow-up ready".
    async fn retry_until_ready(&self, failed: &Value, title: &str) {
        let id = followup_id(failed);
        let click = self.click(ADA, "followup_retry", &id, "retry");
        self.slack.wait_for_ack(&click, WAIT).await.unwrap();
        self.wait_for_sent(
            "chat.update",
            &format!("Follow-up ready: {title}"),
            Duration::from_secs(30),
        )
        .await;
    }

    /// Makes the person's next Fathom poll due now, counting from a minute ago.
    async fn poll_due_now(&self, user: &str) {
        let store = &self.app().store;
        let tenant = store.ensure_tenant(TEAM).await.unwrap();
        let user = store.ensure_user(tenant.id, user).await.unwrap();
        let now = followup_bot::store::now();
        store
            .set_fathom_poll(user.id, now - chrono::Duration::minutes(1), now)
            .await
            .unwrap();
    }

    fn send(&self, envelope: Value) -> String {
        self.slack.send_envelope(envelope).unwrap()
    }

    async fn command(&self, user: &str, command: &str) -> (String, String) {
        let url_id = uuid::Uuid::new_v4().simple().to_string();
        let id = self.send(payloads::slash_command(
            TEAM,
            user,
            command,
            "",
            &self.slack.response_url(&url_id),
        ));
        self.slack.wait_for_ack(&id, WAIT).await.unwrap();
        (id, url_id)
    }

    /// Waits until the view `id` satisfies `check`; returns it.
    async fn view_where(&self, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(view) = self.slack.view(id)
                && check(&view)
            {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "view {id} never matched: {:?}",
                self.slack.view(id)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `/followup`, and the picker once it shows meetings (or a message).
    async fn open_picker(&self, user: &str) -> Value {
        let before = self.slack.call_count("views.open");
        self.command(user, "/followup").await;
        let opened = self
            .slack
            .wait_for_calls("views.open", before + 1, WAIT)
            .await
            .unwrap();
        let view_id = opened[before].response["view"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.view_where(&view_id, |v| !text_of(v).contains("Loading"))
            .await
    }

    /// Picks `recording` in the picker and waits for the "ready" (or "failed") DM update.
    async fn pick(&self, user: &str, picker: &Value, recording: u64) -> Value {
        let updates = self.slack.call_count("chat.update");
        let envelope = payloads::view_submission_for(
            TEAM,
            user,
            picker,
            payloads::state(&[(
                "meeting",
                "recording",
                payloads::static_select_input(&recording.to_string(), "m"),
            )]),
        );
        let id = self.send(envelope);
        let ack = self.slack.wait_for_ack(&id, WAIT).await.unwrap();
        assert!(
            ack.payload.is_none() || ack.payload == Some(Value::Null),
            "closes: {ack:?}"
        );
        let calls = self
            .slack
            .wait_for_calls("chat.update", updates + 1, Duration::from_secs(30))
            .await
            .unwrap();
        calls[updates].body.clone()
    }

    /// Waits until Slack accepted a `method` call whose body mentions `needle`.
    async fn wait_for_sent(&self, method: &str, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self
            .slack
            .calls(method)
            .iter()
            .any(|c| c.response["ok"] == true && text_of(&c.body).contains(needle))
        {
            assert!(
                Instant::now() < deadline,
                "no {method} with {needle:?} was sent"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn click(&self, user: &str, action: &str, value: &str, url_id: &str) -> String {
        let mut envelope = payloads::block_actions(TEAM, user, action, value, None);
        envelope["payload"]["response_url"] = json!(self.slack.response_url(url_id));
        self.send(envelope)
    }
}

fn text_of(v: &Value) -> String {
    v.to_string()
}

fn options_of(view: &Value) -> Vec<String> {
    view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["block_id"] == "meeting")
        .flat_map(|b| {
            b["element"]["options"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|o| o["text"]["text"].as_str().unwrap().to_owned())
        .collect()
}

fn earlier_value(view: &Value) -> Option<String> {
    view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["block_id"] == "paging")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["action_id"] == "followup_earlier")
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}

fn followup_id(message: &Value) -> String {
    message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["action_id"] == "followup_view" || e["action_id"] == "followup_retry")
        .and_then(|e| e["value"].as_str().map(str::to_owned))
        .expect("a button with the follow-up id")
}

fn ai_answer(subject: &str, body: &str) -> String {
    json!({
        "email_subject": subject,
        "email_body": body,
        "meeting_summary": "They want to cut onboarding time.",
        "crm_note": {
            "tech_stack": "Salesforce",
            "pain_points": "Slow onboarding",
            "impact": "Two weeks lost per hire",
            "next_steps": "Send pricing",
            "roadblocks": ""
        },
        "next_meeting": null
    })
    .to_string()
}

fn add_today(fathom: &FakeFathom, key: &str, id: u64, title: &str) {
    fathom.add_meeting(
        key,
        meeting(id, title, Utc::now() - chrono::Duration::seconds(30), 30),
    );
}

#[tokio::test]
async fn connect_with_a_bad_then_a_good_key() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.command(ADA, "/fathom-connect").await;
    let opened = w.slack.wait_for_call("views.open", WAIT).await.unwrap();
    let modal = opened.response["view"].clone();
    assert_eq!(modal["callback_id"], "fathom_connect");

    let submit = |key: &str| {
        payloads::view_submission_for(
            TEAM,
            ADA,
            &modal,
            payloads::state(&[("api_key", "value", payloads::text_input(key))]),
        )
    };
    let id = w.send(submit("wrong-key-0000000000000"));
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    let payload = ack.payload.expect("inline error");
    assert_eq!(payload["response_action"], "errors");
    assert!(
        payload["errors"]["api_key"]
            .as_str()
            .unwrap()
            .contains("did not accept"),
        "{payload}"
    );
    let id = w.send(submit("short"));
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert_eq!(ack.payload.unwrap()["response_action"], "errors");

    let id = w.send(submit(ADA_KEY));
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert!(ack.payload.is_none(), "closes the modal: {ack:?}");
    let dm = w
        .slack
        .wait_for_call("chat.postMessage", WAIT)
        .await
        .unwrap();
    assert!(text_of(&dm.body).contains("Fathom is connected"));
    assert_eq!(
        dm.str("channel"),
        Some(FakeSlack::dm_channel_id(ADA).as_str())
    );

    let app = w.app();
    let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
    let ada = app.store.ensure_user(tenant.id, ADA).await.unwrap();
    let stored = app
        .store
        .credential(
            &app.cipher,
            tenant.id,
            Subject::User(ada.id),
            Provider::Fathom,
        )
        .await
        .unwrap()
        .expect("stored");
    use secrecy::ExposeSecret;
    assert_eq!(stored.secret.expose_secret(), ADA_KEY);
    // Another person of the team has no key: the key serves Ada only.
    let bob = app.store.ensure_user(tenant.id, BOB).await.unwrap();
    assert!(
        app.store
            .credential(
                &app.cipher,
                tenant.id,
                Subject::User(bob.id),
                Provider::Fathom
            )
            .await
            .unwrap()
            .is_none()
    );
    w.stop().await;
}

#[tokio::test]
async fn the_modal_opens_before_fathom_answers() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 1, "Acme discovery");
    w.fathom.set_delay("meetings", Duration::from_secs(5));
    let sent = Instant::now();
    w.command(ADA, "/followup").await;
    let opened = w.slack.wait_for_call("views.open", WAIT).await.unwrap();
    assert!(
        opened.received_at.duration_since(sent) < Duration::from_secs(2),
        "views.open came {:?} after the command",
        opened.received_at.duration_since(sent)
    );
    assert!(text_of(&opened.body).contains("Loading"));
    w.fathom
        .wait_for_calls("meetings", 1, WAIT)
        .await
        .expect("Fathom is being asked while the modal shows");
    assert!(
        w.slack.calls("views.update").is_empty(),
        "no picker before Fathom answers"
    );
    let view_id = opened.response["view"]["id"].as_str().unwrap().to_owned();
    let picker = w.view_where(&view_id, |v| !options_of(v).is_empty()).await;
    assert!(options_of(&picker)[0].contains("Acme discovery"));
    assert!(
        w.fathom.include_requests().is_empty(),
        "meetings are listed without summaries or transcripts"
    );
    w.stop().await;
}

#[tokio::test]
async fn earlier_meetings_page_back_through_fathom() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    w.fathom.set_page_size(10);
    add_today(&w.fathom, ADA_KEY, 100, "Today call");
    for n in 0..15u64 {
        w.fathom.add_meeting(
            ADA_KEY,
            meeting(
                n + 1,
                &format!("Old call {n}"),
                Utc::now() - chrono::Duration::days(2 + n as i64),
                45,
            ),
        );
    }
    let picker = w.open_picker(ADA).await;
    let options = options_of(&picker);
    assert_eq!(options.len(), 1, "{options:?}");
    assert!(options[0].contains("Today call") && options[0].contains("(30 min)"));
    let view_id = picker["id"].as_str().unwrap().to_owned();

    let mut seen = Vec::new();
    let mut current = picker;
    for expected in [10usize, 5] {
        let value = earlier_value(&current).expect("an Earlier meetings button");
        let mut envelope =
            payloads::block_actions(TEAM, ADA, "followup_earlier", &value, Some(current.clone()));
        envelope["payload"]["view"]["id"] = json!(view_id);
        let id = w.send(envelope);
        w.slack.wait_for_ack(&id, WAIT).await.unwrap();
        let previous = current.clone();
        current = w
            .view_where(&view_id, |v| {
                v != &previous && !options_of(v).is_empty() && !text_of(v).contains("Loading")
            })
            .await;
        let options = options_of(&current);
        assert_eq!(options.len(), expected, "{options:?}");
        seen.extend(options);
    }
    assert!(earlier_value(&current).is_none(), "no more pages");
    let problems = followup_bot::blocks::check_limits(&current);
    assert!(
        problems.is_empty(),
        "the last page fits Block Kit: {problems:?}"
    );
    assert!(seen[0].contains("Old call 0"), "newest first: {seen:?}");
    assert!(seen.iter().all(|o| o.chars().count() <= 75));
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 15);
    w.stop().await;
}

#[tokio::test]
async fn fathom_trouble_is_shown_in_the_modal() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, "revoked-key-0000000000").await;
    let view = w.open_picker(ADA).await;
    assert!(text_of(&view).contains("/fathom-connect"), "{view}");

    w.connect(ADA, ADA_KEY).await;
    w.fathom.rate_limit_next("meetings", 42, 1);
    let view = w.open_picker(ADA).await;
    assert!(text_of(&view).contains("42 seconds"), "{view}");

    w.fathom.fail_next("meetings", 503, 1);
    let view = w.open_picker(ADA).await;
    assert!(text_of(&view).contains("not answering"), "{view}");
    w.stop().await;
}

#[tokio::test]
async fn without_a_fathom_key_the_modal_says_how_to_connect() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    let view = w.open_picker(BOB).await;
    assert!(text_of(&view).contains("/fathom-connect"));
    assert_eq!(w.fathom.calls().len(), 0);
    w.stop().await;
}

#[tokio::test]
async fn an_ai_draft_in_the_meeting_language_reaches_the_dm_and_the_edit_modal() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let mut w = World::new(backend, true, &[]).await;
        w.connect(ADA, ADA_KEY).await;
        w.fathom.add_meeting(
            ADA_KEY,
            meeting(
                7,
                "Riunione Acme",
                Utc::now() - chrono::Duration::seconds(30),
                30,
            )
            .transcript_language(Some("it")),
        );
        w.fathom
            .set_summary(7, "## Riepilogo\nVogliono ridurre i tempi.");
        w.anthropic
            .push_text(ai_answer("Grazie per la call", "Ciao Marco,\n\ngrazie..."));
        let picker = w.open_picker(ADA).await;
        let channel_before = w.slack.calls("chat.postMessage").len();
        let ready = w.pick(ADA, &picker, 7).await;
        // The "Drafting…" message went to Ada's DM, not the channel of the command.
        let posts = w.slack.calls("chat.postMessage");
        let drafting = &posts[channel_before];
        assert_eq!(
            drafting.str("channel"),
            Some(FakeSlack::dm_channel_id(ADA).as_str())
        );
        assert!(text_of(&drafting.body).contains("Drafting your follow-up for"));
        assert!(
            text_of(&ready).contains("Follow-up ready: Riunione Acme"),
            "{ready}"
        );
        assert!(text_of(&ready).contains("Drafted by Claude"));
        for action in [
            "followup_view",
            "followup_gmail",
            "followup_calendar",
            "followup_crm_note",
            "followup_deals",
            "followup_task",
        ] {
            assert!(text_of(&ready).contains(action), "{action} button");
        }
        let request = &w.anthropic.requests()[0];
        let system = request.system_text().unwrap();
        assert!(system.contains("in Italian"), "{system}");
        assert!(!system.contains("None"));
        assert!(request.all_text().contains("Vogliono ridurre"));
        assert_eq!(
            w.fathom.call_count("summary") + w.fathom.call_count("transcript"),
            2
        );

        // View & Edit shows the generated text.
        let id = followup_id(&ready);
        let opens = w.slack.call_count("views.open");
        let click = w.click(ADA, "followup_view", &id, "view");
        w.slack.wait_for_ack(&click, WAIT).await.unwrap();
        let calls = w
            .slack
            .wait_for_calls("views.open", opens + 1, WAIT)
            .await
            .unwrap();
        let edit = &calls[opens].body["view"];
        assert_eq!(edit["title"]["text"], "Edit Follow-up");
        let text = text_of(edit);
        assert!(text.contains("Grazie per la call") && text.contains("Ciao Marco"));
        assert!(
            text.contains("Pain points: Slow onboarding"),
            "the CRM note is filled"
        );
        w.stop().await;
    }
}

#[tokio::test]
async fn when_the_ai_keeps_failing_the_template_is_used_and_said() {
    let mut w = World::new(Backend::Sqlite, true, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 9, "Globex demo");
    w.fathom.set_summary(9, "Globex wants a pilot.");
    for _ in 0..4 {
        w.anthropic
            .push_error(529, "overloaded_error", "Overloaded", None);
    }
    let picker = w.open_picker(ADA).await;
    let ready = w.pick(ADA, &picker, 9).await;
    assert!(text_of(&ready).contains("Follow-up ready: Globex demo"));
    assert!(text_of(&ready).contains("template"), "{ready}");
    assert!(text_of(&ready).contains("AI was unavailable"), "{ready}");
    assert_eq!(
        w.anthropic.request_count(),
        4,
        "tried, retried 3 times, gave up"
    );

    // An answer that is not valid JSON twice also falls back.
    add_today(&w.fathom, ADA_KEY, 10, "Initech call");
    w.anthropic.push_text("Sure! Here's an email: Dear...");
    w.anthropic.push_text("{\"email_subject\": \"\"}");
    let picker = w.open_picker(ADA).await;
    let ready = w.pick(ADA, &picker, 10).await;
    assert!(text_of(&ready).contains("unusable twice"), "{ready}");
    let repair = &w.anthropic.requests()[5];
    assert!(
        repair
            .last_user_text()
            .unwrap()
            .contains("could not be used")
    );
    w.stop().await;
}

#[tokio::test]
async fn without_an_ai_key_the_template_is_used() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 11, "Umbrella intro");
    w.fathom.set_summary(11, "Umbrella needs SSO.");
    let picker = w.open_picker(ADA).await;
    let ready = w.pick(ADA, &picker, 11).await;
    assert!(
        text_of(&ready).contains("no AI key is configured"),
        "{ready}"
    );
    assert_eq!(w.anthropic.request_count(), 0);
    let app = w.app();
    let id = FollowupId(followup_id(&ready));
    let followup = app.store.followup_by_id(&id).await.unwrap().unwrap();
    let draft = followup.draft.unwrap();
    assert!(draft.body.contains("Umbrella needs SSO."), "{}", draft.body);
    assert_eq!(followup.generator.as_deref(), Some("template"));
    w.stop().await;
}

#[tokio::test]
async fn edits_are_what_later_actions_see_and_other_people_are_refused() {
    let mut w = World::new(Backend::Sqlite, true, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 12, "Hooli pricing");
    w.anthropic
        .push_text(ai_answer("Original subject", "Original body"));
    let picker = w.open_picker(ADA).await;
    let ready = w.pick(ADA, &picker, 12).await;
    let id = followup_id(&ready);

    // Ada edits and saves.
    let opens = w.slack.call_count("views.open");
    let click = w.click(ADA, "followup_view", &id, "v1");
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let calls = w
        .slack
        .wait_for_calls("views.open", opens + 1, WAIT)
        .await
        .unwrap();
    let edit = calls[opens].response["view"].clone();
    let edited = |subject: &str, body: &str| {
        payloads::state(&[
            ("subject", "value", payloads::text_input(subject)),
            ("body", "value", payloads::text_input(body)),
            ("summary", "value", payloads::text_input("Edited summary")),
            ("crm_note", "value", payloads::text_input("Edited note")),
            ("attendees", "value", payloads::text_input("cto@hooli.com")),
        ])
    };
    let submit = w.send(payloads::view_submission_for(
        TEAM,
        ADA,
        &edit,
        edited("", "body"),
    ));
    let ack = w.slack.wait_for_ack(&submit, WAIT).await.unwrap();
    assert_eq!(
        ack.payload.unwrap()["errors"]["subject"],
        "The email needs a subject."
    );
    let submit = w.send(payloads::view_submission_for(
        TEAM,
        ADA,
        &edit,
        edited("Edited subject", "Edited body"),
    ));
    w.slack.wait_for_ack(&submit, WAIT).await.unwrap();
    let app = w.app();
    let fid = FollowupId(id.clone());
    let deadline = Instant::now() + WAIT;
    loop {
        let f = app.store.followup_by_id(&fid).await.unwrap().unwrap();
        if f.edited.is_some() {
            assert_eq!(f.current().unwrap().subject, "Edited subject");
            assert_eq!(f.current().unwrap().crm_note, "Edited note");
            break;
        }
        assert!(Instant::now() < deadline, "edits never saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A button inside the open modal saves what is typed there before acting.
    let mut in_modal =
        payloads::block_actions(TEAM, ADA, "followup_gmail", &id, Some(edit.clone()));
    in_modal["payload"]["view"]["state"] =
        json!({ "values": edited("Typed subject", "Typed body") });
    let click = w.send(in_modal);
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let f = app.store.followup_by_id(&fid).await.unwrap().unwrap();
        if f.current().unwrap().subject == "Typed subject" {
            assert_eq!(f.current().unwrap().body, "Typed body");
            break;
        }
        assert!(Instant::now() < deadline, "in-modal edits never saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The re-opened modal shows the latest text.
    let opens = w.slack.call_count("views.open");
    let click = w.click(ADA, "followup_view", &id, "v2");
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let calls = w
        .slack
        .wait_for_calls("views.open", opens + 1, WAIT)
        .await
        .unwrap();
    assert!(text_of(&calls[opens].body).contains("Typed body"));

    // Without a CRM, the CRM buttons say who can connect one.
    let click = w.click(ADA, "followup_crm_note", &id, "crm");
    w.slack.wait_for_ack(&click, WAIT).await.unwrap();
    let answer = w.slack.wait_for_response_post("crm", WAIT).await.unwrap();
    assert!(
        text_of(&answer.body).contains("No CRM is connected"),
        "{}",
        answer.body
    );

    // Bob clicks Ada's buttons: refused, nothing shown or changed.
    let opens = w.slack.call_count("views.open");
    for (action, url) in [
        ("followup_view", "b1"),
        ("followup_gmail", "b2"),
        ("followup_retry", "b3"),
    ] {
        let click = w.click(BOB, action, &id, url);
        w.slack.wait_for_ack(&click, WAIT).await.unwrap();
        let answer = w.slack.wait_for_response_post(url, WAIT).await.unwrap();
        assert!(
            text_of(&answer.body).contains("belongs to someone else"),
            "{action}: {}",
            answer.body
        );
    }
    let mut bob_edit = payloads::view_submission_for(TEAM, BOB, &edit, edited("Bob was here", "x"));
    bob_edit["payload"]["view"]["private_metadata"] = json!(id);
    let submit = w.send(bob_edit);
    w.slack.wait_for_ack(&submit, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.slack.call_count("views.open"), opens);
    let f = app.store.followup_by_id(&fid).await.unwrap().unwrap();
    assert_eq!(f.current().unwrap().subject, "Typed subject");
    w.stop().await;
}

#[tokio::test]
async fn a_restart_with_a_draft_in_flight_delivers_it_once() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let mut w = World::new(backend, false, &[("JOB_SHUTDOWN_GRACE_SECS", "0")]).await;
        w.connect(ADA, ADA_KEY).await;
        add_today(&w.fathom, ADA_KEY, 21, "Stark renewal");
        w.fathom.set_delay("summary", Duration::from_secs(3));
        let picker = w.open_picker(ADA).await;
        let envelope = payloads::view_submission_for(
            TEAM,
            ADA,
            &picker,
            payloads::state(&[(
                "meeting",
                "recording",
                payloads::static_select_input("21", "m"),
            )]),
        );
        let id = w.send(envelope);
        w.slack.wait_for_ack(&id, WAIT).await.unwrap();
        w.fathom.wait_for_calls("summary", 1, WAIT).await.unwrap();
        // The draft is mid-flight: stop now, and start again.
        w.stop().await;
        w.fathom.set_delay("summary", Duration::ZERO);
        w.start().await;
        let updates = w
            .slack
            .wait_for_calls("chat.update", 1, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(text_of(&updates[0].body).contains("Follow-up ready: Stark renewal"));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let ready = w
            .slack
            .calls("chat.update")
            .iter()
            .filter(|c| text_of(&c.body).contains("Follow-up ready"))
            .count();
        assert_eq!(ready, 1, "delivered once");
        w.stop().await;
    }
}

#[tokio::test]
async fn a_new_recording_is_announced_once_even_across_a_restart() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let mut w = World::new(backend, false, &[("FATHOM_POLL_INTERVAL_SECS", "1")]).await;
        w.connect(ADA, ADA_KEY).await;
        // The first poll only notes the time: older recordings are not announced.
        w.fathom.add_meeting(
            ADA_KEY,
            meeting(
                30,
                "Old history",
                Utc::now() - chrono::Duration::days(3),
                30,
            ),
        );
        w.fathom.wait_for_calls("meetings", 0, WAIT).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // A recording made after the person connected.
        w.fathom
            .add_meeting(ADA_KEY, meeting(31, "Wayne kickoff", Utc::now(), 30));
        let announced = |w: &World| {
            w.slack
                .calls("chat.postMessage")
                .iter()
                .filter(|c| text_of(&c.body).contains("Recording ready"))
                .map(|c| text_of(&c.body))
                .collect::<Vec<_>>()
        };
        w.wait_for_sent("chat.postMessage", "Recording ready", WAIT)
            .await;
        w.stop().await;
        w.start().await;
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let all = announced(&w);
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(all[0].contains("Wayne kickoff") && all[0].contains("recording_draft"));
        assert!(!all[0].contains("Old history"));

        // Its "Draft follow-up" button drafts; Bob cannot use it.
        let click = w.click(BOB, "recording_draft", "31", "bob");
        w.slack.wait_for_ack(&click, WAIT).await.unwrap();
        let answer = w.slack.wait_for_response_post("bob", WAIT).await.unwrap();
        assert!(text_of(&answer.body).contains("belongs to someone else"));
        let click = w.click(ADA, "recording_draft", "31", "ada");
        w.slack.wait_for_ack(&click, WAIT).await.unwrap();
        let updates = w
            .slack
            .wait_for_calls("chat.update", 1, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(text_of(&updates[0].body).contains("Follow-up ready: Wayne kickoff"));
        // A second click does not draft twice.
        let click = w.click(ADA, "recording_draft", "31", "again");
        w.slack.wait_for_ack(&click, WAIT).await.unwrap();
        let answer = w.slack.wait_for_response_post("again", WAIT).await.unwrap();
        assert!(
            text_of(&answer.body).contains("a moment ago"),
            "{}",
            answer.body
        );
        w.stop().await;
    }
}

#[tokio::test]
async fn an_announcement_slack_refused_is_sent_on_the_next_poll() {
    let mut w = World::new(
        Backend::Sqlite,
        false,
        &[("FATHOM_POLL_INTERVAL_SECS", "1")],
    )
    .await;
    w.connect(ADA, ADA_KEY).await;
    w.fathom.wait_for_calls("meetings", 0, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    w.slack
        .set_error_times("chat.postMessage", "internal_error", 1);
    w.fathom
        .add_meeting(ADA_KEY, meeting(60, "Tyrell sync", Utc::now(), 30));
    w.wait_for_sent("chat.postMessage", "Tyrell sync", WAIT)
        .await;
    let sent = w
        .slack
        .calls("chat.postMessage")
        .iter()
        .filter(|c| c.response["ok"] == true && text_of(&c.body).contains("Tyrell sync"))
        .count();
    assert_eq!(sent, 1, "announced once after Slack's error");
    assert!(
        w.slack
            .calls("chat.postMessage")
            .iter()
            .any(|c| c.status != 200 || c.response["ok"] == false),
        "the first attempt was refused"
    );
    w.stop().await;
}

#[tokio::test]
async fn settings_are_saved_and_used() {
    let mut w = World::new(Backend::Sqlite, true, &[]).await;
    w.command(ADA, "/followup-settings").await;
    let opened = w.slack.wait_for_call("views.open", WAIT).await.unwrap();
    let modal = opened.response["view"].clone();
    let state = |time: &str| {
        payloads::state(&[
            (
                "tone",
                "value",
                payloads::static_select_input("friendly", "Friendly"),
            ),
            (
                "language",
                "value",
                payloads::static_select_input("fr", "French"),
            ),
            (
                "signature",
                "value",
                payloads::text_input("Ada — Acme Sales"),
            ),
            (
                "task_type",
                "value",
                payloads::static_select_input("call", "Call"),
            ),
            ("task_time", "value", payloads::time_input(time)),
            (
                "meeting_dms",
                "value",
                payloads::static_select_input("off", "No"),
            ),
        ])
    };
    let id = w.send(payloads::view_submission_for(
        TEAM,
        ADA,
        &modal,
        state("25:99"),
    ));
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert!(ack.payload.unwrap()["errors"]["task_time"].is_string());
    let id = w.send(payloads::view_submission_for(
        TEAM,
        ADA,
        &modal,
        state("08:30"),
    ));
    let ack = w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    assert!(ack.payload.is_none());

    let app = w.app();
    let tenant = app.store.ensure_tenant(TEAM).await.unwrap();
    let deadline = Instant::now() + WAIT;
    let user = loop {
        let user = app.store.ensure_user(tenant.id, ADA).await.unwrap();
        if user.email_tone == "friendly" {
            break user;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(user.language_override.as_deref(), Some("fr"));
    assert_eq!(user.default_task_time, "08:30");
    assert!(!user.meeting_dms);

    // The draft uses them.
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 40, "Cyberdyne");
    w.anthropic.push_text(ai_answer("Merci", "Bonjour"));
    let picker = w.open_picker(ADA).await;
    w.pick(ADA, &picker, 40).await;
    let system = w.anthropic.requests()[0].system_text().unwrap();
    assert!(system.contains("in French") && system.contains("friendly tone"));
    assert!(system.contains("Ada — Acme Sales"));
    w.stop().await;
}

#[tokio::test]
async fn a_failed_draft_says_why_and_retry_recovers() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    let failed = w.failed_draft(50, "Soylent review").await;
    let text = text_of(&failed);
    assert!(text.contains("could not be drafted"), "{text}");
    assert!(text.contains("/fathom-connect"), "says what failed: {text}");
    assert!(text.contains("followup_retry"), "offers Retry: {text}");

    w.fathom.add_key(ADA_KEY);
    w.retry_until_ready(&failed, "Soylent review").await;
    w.stop().await;
}

#[tokio::test]
async fn the_poller_backs_off_when_fathom_rate_limits() {
    let mut w = World::new(
        Backend::Sqlite,
        false,
        &[("FATHOM_POLL_INTERVAL_SECS", "1")],
    )
    .await;
    w.fathom.rate_limit_next("meetings", 5, 1);
    w.connect(ADA, ADA_KEY).await;
    // First poll notes the time; the second asks Fathom and gets a 429 with Retry-After: 5.
    let calls = w.fathom.wait_for_calls("meetings", 1, WAIT).await.unwrap();
    assert_eq!(calls[0].status, 429);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        w.fathom.call_count("meetings"),
        1,
        "waits out Retry-After instead of polling every second"
    );
    w.fathom
        .wait_for_calls("meetings", 2, Duration::from_secs(10))
        .await
        .expect("polls again after the back-off");
    w.stop().await;
}

#[tokio::test]
async fn when_slack_refuses_drafting_the_draft_still_arrives() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 70, "Oscorp check-in");
    let picker = w.open_picker(ADA).await;
    w.slack
        .set_error_times("chat.postMessage", "internal_error", 1);
    let id = w.send(payloads::view_submission_for(
        TEAM,
        ADA,
        &picker,
        payloads::state(&[(
            "meeting",
            "recording",
            payloads::static_select_input("70", "m"),
        )]),
    ));
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    w.wait_for_sent(
        "chat.postMessage",
        "Follow-up ready: Oscorp check-in",
        Duration::from_secs(30),
    )
    .await;
    w.stop().await;
}

#[tokio::test]
async fn a_double_click_drafts_once() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let mut w = World::new(backend, false, &[]).await;
        w.connect(ADA, ADA_KEY).await;
        add_today(&w.fathom, ADA_KEY, 80, "Initrode demo");
        w.open_picker(ADA).await; // Fathom listed it for Ada
        let a = w.click(ADA, "recording_draft", "80", "first");
        let b = w.click(ADA, "recording_draft", "80", "second");
        w.slack.wait_for_ack(&a, WAIT).await.unwrap();
        w.slack.wait_for_ack(&b, WAIT).await.unwrap();
        w.slack
            .wait_for_calls("chat.update", 1, Duration::from_secs(30))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        let drafted = w
            .slack
            .calls("chat.update")
            .iter()
            .filter(|c| text_of(&c.body).contains("Follow-up ready: Initrode demo"))
            .count();
        assert_eq!(drafted, 1, "one draft for two clicks");
        let told = w
            .slack
            .response_posts()
            .iter()
            .filter(|p| text_of(&p.body).contains("a moment ago"))
            .count();
        assert_eq!(told, 1, "the second click is answered");
        w.stop().await;
    }
}

#[tokio::test]
async fn the_poll_hook_announces_without_waiting_for_the_tick() {
    let mut w = World::new(
        Backend::Sqlite,
        false,
        &[("FATHOM_POLL_INTERVAL_SECS", "86400"), ("JOB_WORKERS", "0")],
    )
    .await;
    w.connect(ADA, ADA_KEY).await;
    w.poll_due_now(ADA).await;
    let services = w.app();
    w.fathom
        .add_meeting(ADA_KEY, meeting(41, "Hooked call", Utc::now(), 30));
    followup_bot::features::recordings::poll_once(services).await;
    w.wait_for_sent("chat.postMessage", "Hooked call", Duration::from_secs(2))
        .await;
    w.stop().await;
}

/// Issue 7, items 4 and 5: a title from outside can neither ping the channel nor hide a
/// link, and a huge one still fits Slack's limits.
#[tokio::test]
async fn a_hostile_or_huge_title_is_announced_escaped_and_within_limits() {
    let mut w = World::new(
        Backend::Sqlite,
        false,
        &[("FATHOM_POLL_INTERVAL_SECS", "86400"), ("JOB_WORKERS", "0")],
    )
    .await;
    w.connect(ADA, ADA_KEY).await;
    w.poll_due_now(ADA).await;
    let services = w.app();
    let hostile =
        "Globex R&D <> Acme <!channel> <https://evil.test/login|Reconnect Fathom> <@U0BOSS>";
    w.fathom
        .add_meeting(ADA_KEY, meeting(51, hostile, Utc::now(), 30));
    let huge = "Q".repeat(3200);
    w.fathom.add_meeting(
        ADA_KEY,
        meeting(52, &huge, Utc::now() + chrono::Duration::seconds(1), 30),
    );
    followup_bot::features::recordings::poll_once(services).await;
    let posts = w
        .slack
        .wait_for_calls("chat.postMessage", 2, Duration::from_secs(5))
        .await
        .unwrap();
    let hostile_post = posts
        .iter()
        .find(|c| text_of(&c.body).contains("Globex"))
        .expect("the hostile title was announced");
    let text = hostile_post.body.to_string();
    for live in ["<!channel>", "<https://evil.test", "<@U0BOSS>", "R&D <>"] {
        assert!(!text.contains(live), "{live:?} would render: {text}");
    }
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
    assert!(text.contains("R&amp;D &lt;&gt; Acme"), "{text}");
    for post in &posts {
        assert_eq!(
            post.response["ok"], true,
            "Slack accepted it: {}",
            post.response
        );
        let blocks = post.body["blocks"].clone();
        let problems = followup_bot::blocks::check_limits(&json!({ "blocks": blocks }));
        assert!(problems.is_empty(), "{problems:?}");
    }
    w.stop().await;
}

/// Issue 7, item 3: Retry is queued with its flip, so Slack refusing the "Drafting…" update
/// cannot leave the follow-up stuck in drafting.
#[tokio::test]
async fn retry_is_not_stuck_when_slack_refuses_the_drafting_update() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    let failed = w.failed_draft(57, "Hooli retry").await;
    assert!(text_of(&failed).contains("could not be drafted"));
    w.fathom.add_key(ADA_KEY);
    w.slack
        .set_error_times("chat.update", "message_not_found", 1);
    w.retry_until_ready(&failed, "Hooli retry").await;
    w.stop().await;
}

/// Issue 7, items 6 and 7: a model answering 429 with `retry-after: 300` does not keep the
/// person waiting, and a provider's own error text never reaches their DM.
#[tokio::test]
async fn a_struggling_model_falls_back_quickly_and_its_words_stay_in_the_log() {
    let mut w = World::new(
        Backend::Sqlite,
        true,
        &[("ANTHROPIC_DRAFT_BUDGET_SECS", "5")],
    )
    .await;
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 71, "Umbrella sync");
    w.anthropic.push_error(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
        Some(300),
    );
    let picker = w.open_picker(ADA).await;
    let started = Instant::now();
    let ready = w.pick(ADA, &picker, 71).await;
    let text = text_of(&ready);
    assert!(text.contains("Follow-up ready: Umbrella sync"), "{text}");
    assert!(text.contains("template"), "{text}");
    assert!(!text.contains("per-minute"), "provider text leaked: {text}");
    println!("429 retry-after 300: draft after {:?}", started.elapsed());

    add_today(&w.fathom, ADA_KEY, 72, "Stark audit");
    w.anthropic.push_error(
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API.",
        None,
    );
    let picker = w.open_picker(ADA).await;
    let ready = w.pick(ADA, &picker, 72).await;
    let text = text_of(&ready);
    assert!(text.contains("Follow-up ready: Stark audit"), "{text}");
    assert!(
        !text.contains("credit balance"),
        "provider text leaked: {text}"
    );
    assert!(text.contains("tell your admin"), "{text}");

    // A model that never answers: the budget ends the wait, with the reason.
    add_today(&w.fathom, ADA_KEY, 73, "Wonka tasting");
    w.anthropic.set_delay(Duration::from_secs(30));
    let picker = w.open_picker(ADA).await;
    let ready = w.pick(ADA, &picker, 73).await;
    let text = text_of(&ready);
    assert!(text.contains("longer than 5 seconds"), "{text}");
    w.stop().await;
}

/// Issue 7, item 2: a save that stalls past the ack budget keeps the modal open saying so,
/// never closes it with the edits lost; once the store answers, Save works.
#[tokio::test]
async fn a_stalled_save_keeps_the_edit_modal_open() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 81, "Cyberdyne scope");
    let picker = w.open_picker(ADA).await;
    let ready = w.pick(ADA, &picker, 81).await;
    let id = followup_id(&ready);
    let view = json!({"type": "modal", "callback_id": "followup_edit", "private_metadata": id});
    let edited = payloads::state(&[
        ("subject", "value", payloads::text_input("Stalled subject")),
        ("body", "value", payloads::text_input("Stalled body")),
        ("summary", "value", payloads::text_input("s")),
        ("crm_note", "value", payloads::text_input("n")),
        ("attendees", "value", payloads::text_input("a@b.c")),
    ]);
    // Another connection holds SQLite's write lock: the bot's write waits.
    let locker = w._db.store().await;
    let followup_bot::store::Store::Sqlite(pool) = &locker else {
        unreachable!()
    };
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut *conn)
        .await
        .unwrap();
    let submit = w.send(payloads::view_submission_for(
        TEAM,
        ADA,
        &view,
        edited.clone(),
    ));
    let ack = w.slack.wait_for_ack(&submit, WAIT).await.unwrap();
    let errors = ack.payload.expect("the modal stays open")["errors"].to_string();
    assert!(errors.contains("could not be saved"), "{errors}");
    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
    drop(conn);

    let submit = w.send(payloads::view_submission_for(TEAM, ADA, &view, edited));
    let ack = w.slack.wait_for_ack(&submit, WAIT).await.unwrap();
    assert!(
        ack.payload.is_none() || ack.payload == Some(Value::Null),
        "{ack:?}"
    );
    let f = w
        .app()
        .store
        .followup_by_id(&FollowupId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.current().unwrap().subject, "Stalled subject");
    w.stop().await;
}

/// Issue 7, item 5: an announcement Slack keeps refusing never holds back the recordings
/// after it; it is tried a bounded number of times, then skipped.
#[tokio::test]
async fn a_refused_announcement_never_blocks_the_ones_after_it() {
    let mut w = World::new(
        Backend::Sqlite,
        false,
        &[("FATHOM_POLL_INTERVAL_SECS", "86400"), ("JOB_WORKERS", "0")],
    )
    .await;
    w.connect(ADA, ADA_KEY).await;
    w.poll_due_now(ADA).await;
    w.slack
        .set_error_when("chat.postMessage", "Refused sync", "invalid_blocks");
    let t0 = Utc::now() - chrono::Duration::seconds(30);
    w.fathom
        .add_meeting(ADA_KEY, meeting(91, "Refused sync", t0, 30));
    w.fathom.add_meeting(
        ADA_KEY,
        meeting(92, "Fine sync", t0 + chrono::Duration::seconds(1), 30),
    );
    let tries = |w: &World| {
        w.slack
            .calls("chat.postMessage")
            .iter()
            .filter(|c| text_of(&c.body).contains("Refused sync"))
            .count()
    };
    followup_bot::features::recordings::poll_once(w.app()).await;
    w.wait_for_sent("chat.postMessage", "Fine sync", Duration::from_secs(2))
        .await;
    for _ in 0..4 {
        // The clock stays while the refused one is retried; make the next poll due.
        let store = &w.app().store;
        let tenant = store.ensure_tenant(TEAM).await.unwrap();
        let ada = store.ensure_user(tenant.id, ADA).await.unwrap();
        let since = store.fathom_poll_since(ada.id).await.unwrap().unwrap();
        store
            .set_fathom_poll(ada.id, since, followup_bot::store::now())
            .await
            .unwrap();
        followup_bot::features::recordings::poll_once(w.app()).await;
    }
    assert_eq!(tries(&w), 3, "tried three times, then skipped");
    let fine = w
        .slack
        .calls("chat.postMessage")
        .iter()
        .filter(|c| text_of(&c.body).contains("Fine sync"))
        .count();
    assert_eq!(fine, 1, "the one after it was announced once");
    w.stop().await;
}

/// Issue 7, item 12: a Fathom key sealed with an encryption key the bot no longer has tells
/// its owner to connect again, instead of "Sorry, something went wrong".
#[tokio::test]
async fn a_key_sealed_with_a_removed_encryption_key_asks_to_reconnect() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    w.stop().await;
    w.settings.retain(|(k, _)| k != "ENCRYPTION_KEY");
    w.settings.push((
        "ENCRYPTION_KEY".into(),
        followup_bot::crypto::generate_key(),
    ));
    w.start().await;
    let picker = w.open_picker(ADA).await;
    let text = text_of(&picker);
    assert!(text.contains("can no longer be read"), "{text}");
    assert!(text.contains("/fathom-connect"), "{text}");
    assert!(!text.contains("Sorry"), "{text}");
    w.stop().await;
}

/// Issue 7, item 8: the model is asked with forced tool use, the meeting material fenced as
/// data, and a partly invalid answer keeps its valid parts.
#[tokio::test]
async fn the_model_answers_through_a_forced_tool_and_a_bad_note_keeps_the_email() {
    let mut w = World::new(Backend::Sqlite, true, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 95, "Vandelay imports");
    w.anthropic.push_text(
        json!({
            "email_subject": "Vandelay next steps",
            "email_body": "Hi Art,\nthanks for today.",
            "meeting_summary": "Latex imports.",
            "crm_note": "not an object",
            "next_meeting": 17
        })
        .to_string(),
    );
    let picker = w.open_picker(ADA).await;
    let ready = w.pick(ADA, &picker, 95).await;
    assert!(text_of(&ready).contains("Drafted by Claude"), "{ready}");
    let request = &w.anthropic.requests()[0];
    assert_eq!(request.body["tool_choice"]["type"], "tool");
    assert_eq!(request.body["tool_choice"]["name"], "write_followup");
    assert_eq!(request.body["tools"][0]["name"], "write_followup");
    assert!(
        request.body["tools"][0]["input_schema"]["properties"]["crm_note"].is_object(),
        "the schema is the draft's shape"
    );
    let user_text = request.last_user_text().unwrap();
    assert!(user_text.starts_with("<meeting_material>"), "{user_text}");
    assert!(user_text.contains("Vandelay imports"));
    let f = w
        .app()
        .store
        .followup_by_id(&FollowupId(followup_id(&ready)))
        .await
        .unwrap()
        .unwrap();
    let draft = f.current().unwrap();
    assert_eq!(draft.subject, "Vandelay next steps");
    assert_eq!(draft.crm_note, "not an object");
    assert_eq!(draft.next_meeting, None);
    w.stop().await;
}

/// Issue 7, item 1: when Slack is slower than the drafting hold, the job posts the result
/// itself; the late "Drafting…" then points to it instead of waiting forever, and there is
/// still exactly one "Follow-up ready".
#[tokio::test]
async fn a_drafting_message_slower_than_the_hold_points_to_the_result() {
    let mut w = World::new(Backend::Sqlite, false, &[]).await;
    w.connect(ADA, ADA_KEY).await;
    add_today(&w.fathom, ADA_KEY, 97, "Pied Piper demo");
    let picker = w.open_picker(ADA).await;
    w.slack
        .set_delay("chat.postMessage", Duration::from_secs(12));
    let id = w.send(payloads::view_submission_for(
        TEAM,
        ADA,
        &picker,
        payloads::state(&[(
            "meeting",
            "recording",
            payloads::static_select_input("97", "m"),
        )]),
    ));
    w.slack.wait_for_ack(&id, WAIT).await.unwrap();
    w.wait_for_sent(
        "chat.postMessage",
        "Follow-up ready: Pied Piper demo",
        Duration::from_secs(40),
    )
    .await;
    // The fake records a call before its delay: the result post returns 12 s later.
    w.wait_for_sent(
        "chat.update",
        "in the message below",
        Duration::from_secs(20),
    )
    .await;
    let ready = ["chat.postMessage", "chat.update"]
        .iter()
        .flat_map(|m| w.slack.calls(m))
        .filter(|c| c.response["ok"] == true && text_of(&c.body).contains("Follow-up ready"))
        .count();
    assert_eq!(ready, 1);
    w.stop().await;
}
