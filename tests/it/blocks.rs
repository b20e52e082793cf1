//! Block Kit: every template renders, parses into slack-morphism's types and fits Slack's
//! limits; the rendered views are snapshotted so a change to a modal shows up in review.

use followup_bot::blocks::{self, Vars, check_limits};
use followup_bot::domain::followup::{Draft, Followup};
use followup_bot::domain::ids::{FollowupId, TenantId, UserId};
use followup_bot::domain::meeting::Meeting;
use followup_bot::domain::person::User;
use followup_bot::features::followup::{edit_view, meeting_label, ready_message};
use followup_bot::features::settings::settings_view;
use serde_json::{Value, json};
use slack_morphism::prelude::{SlackMessageContent, SlackView};

fn user() -> User {
    User {
        id: UserId(1),
        tenant_id: TenantId(1),
        slack_user_id: "U1".into(),
        email: Some("ada@acme.test".into()),
        real_name: Some("Ada Lovelace".into()),
        tz: Some("Europe/Rome".into()),
        tz_offset_secs: Some(3600),
        profile_refreshed_at: None,
        email_tone: "friendly".into(),
        language_override: None,
        signature: Some("Ada".into()),
        default_task_type: "call".into(),
        default_task_time: "09:00".into(),
        meeting_dms: true,
    }
}

fn followup(body: &str) -> Followup {
    Followup {
        id: FollowupId("f00d".into()),
        tenant_id: TenantId(1),
        user_id: UserId(1),
        recording_id: 7,
        meeting_title: "Acme discovery".into(),
        meeting_url: None,
        meeting_started_at: Some("2026-11-20T09:00:00Z".parse().unwrap()),
        language: Some("en".into()),
        status: "ready".into(),
        generator: Some("ai".into()),
        draft: Some(Draft {
            subject: "Thanks for today".into(),
            body: body.into(),
            summary: "They want faster onboarding.".into(),
            crm_note: "Tech stack: Salesforce\n\nPain points: onboarding".into(),
            attendees: "cto@acme.test".into(),
            next_meeting: None,
        }),
        edited: None,
        dm_channel: Some("D1".into()),
        dm_ts: Some("1.2".into()),
        invitees: Vec::new(),
        gmail: None,
        calendar: None,
    }
}

fn assert_fits(value: &Value) {
    let problems = check_limits(value);
    assert!(problems.is_empty(), "{problems:?} in {value}");
}

fn sample() -> Vars {
    let option = json!({ "text": { "type": "plain_text", "text": "x" }, "value": "x" });
    Vars::new()
        .set("name", "Ada")
        .set("callback_id", "cb")
        .set("title", "Acme discovery")
        .set("text", "Hello")
        .set("metadata", "{}")
        .set("heading", "Your meetings today")
        .set("options", json!([option.clone()]))
        .set("paging", json!([]))
        .set("cursor", "{}")
        .set("summary", "Summary")
        .set("generator_note", "Drafted by Claude")
        .set("id", "f00d")
        .set("reason", "Fathom is not answering")
        .set("when", "Fri 20 Nov, 10:00")
        .set("recording", "7")
        .set("notices", json!([]))
        .set("subject", "s")
        .set("body", "b")
        .set("crm_note", "n")
        .set("attendees", "a@b.c")
        .set("url", "https://example.test/x?a=1&b=2")
        .set("email", "sam@seller.test")
        .set("date", "2026-12-09")
        .set("time", "10:00")
        .set("description", "d")
        .set("tz", "Europe/Rome")
        .set("icon", ":email:")
        .set("label", "Open")
        .set("status", "Not connected yet.")
        .set(
            "status_text",
            json!({ "type": "mrkdwn", "text": "Crono is connected (by <@U1>)." }),
        )
}

#[test]
fn every_template_renders_parses_and_fits() {
    for template in blocks::ALL {
        if template.name == "followup_settings"
            || template.name.starts_with("home")
            || template.name.starts_with("team_")
            || (template.name.starts_with("crm_")
                && !matches!(template.name, "crm_connect" | "crm_oauth"))
        {
            continue; // rendered through their views (settings_view, home_view, the CRM's)
        }
        let value = template.render(&sample()).unwrap();
        match value["type"].as_str() {
            Some("modal") | Some("home") => {
                serde_json::from_value::<SlackView>(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", template.name));
            }
            Some("actions") | Some("context") | Some("section") => {}
            _ => {
                serde_json::from_value::<SlackMessageContent>(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", template.name));
            }
        }
        assert_fits(&value);
    }
}

#[test]
fn the_edit_modal_shows_long_texts_cut_visibly() {
    let long = "word ".repeat(1000);
    let view = serde_json::to_value(edit_view(&followup(&long), &user()).unwrap()).unwrap();
    assert_fits(&view);
    let text = view.to_string();
    assert!(text.contains("longer than Slack allows (3000 characters)"));
    assert!(text.contains("[…]"));
    let body = view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == "body")
        .unwrap();
    assert_eq!(
        body["element"]["initial_value"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        3000
    );
}

#[test]
fn meeting_labels_fit_an_option() {
    let mut meeting: Meeting = serde_json::from_value(json!({
        "recording_id": 1,
        "title": "A very long meeting title that goes on and on about quarterly business review topics",
        "recording_start_time": "2026-11-20T09:00:00Z",
        "recording_end_time": "2026-11-20T09:45:00Z",
    }))
    .unwrap();
    let label = meeting_label(&meeting, &user(), false);
    assert!(label.starts_with("10:00 – A very long"), "{label}");
    assert!(label.ends_with("(45 min)"), "{label}");
    assert!(label.chars().count() <= 75);
    meeting.title = None;
    let label = meeting_label(&meeting, &user(), true);
    assert_eq!(label, "Fri 20 Nov 10:00 – Untitled meeting (45 min)");
}

#[test]
fn snapshots() {
    let edit = serde_json::to_value(edit_view(&followup("Hi Marco,\n\nthanks."), &user()).unwrap())
        .unwrap();
    assert_fits(&edit);
    insta::assert_json_snapshot!("edit_modal", edit);

    let ready = serde_json::to_value(
        ready_message(
            &followup("Hi"),
            "Drafted by Claude from the meeting's transcript.",
        )
        .unwrap(),
    )
    .unwrap();
    assert_fits(&ready);
    insta::assert_json_snapshot!("ready_message", ready);

    let settings = serde_json::to_value(settings_view(&user(), false).unwrap()).unwrap();
    assert_fits(&settings);
    insta::assert_json_snapshot!("settings_modal", settings);
}

/// The calendar form's start: the next meeting the model found when it is ahead, in the
/// person's time zone; else a week after the meeting at its hour (later weeks once past).
#[test]
fn the_calendar_prefill_takes_the_next_meeting_the_model_found() {
    use followup_bot::features::followup::proposed_start;
    let now: chrono::DateTime<chrono::Utc> = "2026-11-21T12:00:00Z".parse().unwrap();
    let f = followup("b"); // the meeting started 2026-11-20 09:00 UTC; Ada is UTC+1
    let mut draft = f.draft.clone().unwrap();
    draft.next_meeting = Some("2026-12-03T15:30:00Z".into());
    assert_eq!(
        proposed_start(&draft, &f, &user(), now).to_string(),
        "2026-12-03 16:30:00"
    );
    // A next meeting in the past, or none: a week after the call, at its local hour.
    draft.next_meeting = Some("2026-11-01T10:00:00Z".into());
    assert_eq!(
        proposed_start(&draft, &f, &user(), now).to_string(),
        "2026-11-27 10:00:00"
    );
    draft.next_meeting = None;
    let later: chrono::DateTime<chrono::Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
    assert_eq!(
        proposed_start(&draft, &f, &user(), later).to_string(),
        "2026-12-04 10:00:00"
    );
}

fn listed(id: &str, title: &str, status: &str) -> followup_bot::store::followups::Listed {
    followup_bot::store::followups::Listed {
        id: FollowupId(id.into()),
        meeting_title: title.into(),
        meeting_started_at: Some("2026-11-20T09:00:00Z".parse().unwrap()),
        created_at: "2026-11-20T10:00:00Z".parse().unwrap(),
        status: status.into(),
        gmail_draft: false,
        calendar_event: false,
        crm_note: false,
        crm_task: false,
    }
}

/// App Home for a brand-new person (what to connect first, with the buttons) and for one with
/// everything connected and follow-ups in every state.
#[test]
fn home_snapshots() {
    use followup_bot::domain::provider::Provider;
    use followup_bot::services::home::{Gmail, HomeData, home_view};
    let mut new = user();
    new.real_name = None;
    new.signature = None;
    new.email_tone = "professional".into();
    new.default_task_type = "email".into();
    let fresh = HomeData {
        user: new,
        fathom: false,
        gmail: Gmail::NotConnected,
        crm: None,
        admin: false,
        sync: None,
        followups: Vec::new(),
    };
    let view = serde_json::to_value(home_view(&fresh).unwrap()).unwrap();
    assert_fits(&view);
    let text = view.to_string();
    assert!(text.contains("home_fathom_connect") && text.contains("home_gmail_connect"));
    assert!(
        !text.contains("home_crm_connect"),
        "only admins connect the CRM"
    );
    insta::assert_json_snapshot!("home_new_person", view);

    let mut done = listed("f2", "Acme <!channel> & *co* renewal", "ready");
    done.gmail_draft = true;
    done.calendar_event = true;
    done.crm_note = true;
    done.crm_task = true;
    let connected = HomeData {
        user: user(),
        fathom: true,
        gmail: Gmail::Connected(Some("ada@acme.test".into())),
        crm: Some((Provider::Hubspot, Some("U0ADMIN".into()))),
        admin: true,
        sync: Some(sync_status()),
        followups: vec![
            done,
            listed("f1", "Globex discovery", "drafting"),
            listed("f0", "Initech demo", "failed"),
        ],
    };
    let view = serde_json::to_value(home_view(&connected).unwrap()).unwrap();
    assert_fits(&view);
    let text = view.to_string();
    assert!(
        text.contains("Acme &lt;!channel&gt; &amp; *co* renewal"),
        "{text}"
    );
    assert!(!text.contains("<!channel>"));
    assert!(
        text.contains("*CRM sync*: on. Mirrored: 120 accounts, 4500 contacts, 17 open deals."),
        "{text}"
    );
    assert!(
        text.contains("Last error: contacts rate_limited at 2026-12-01 09:05 UTC."),
        "{text}"
    );
    assert!(
        text.contains("home_crm_sync") && text.contains("Pause sync"),
        "{text}"
    );
    insta::assert_json_snapshot!("home_connected", view);
}

/// A team's CRM sync: every object copied, the contacts' last run rate limited.
fn sync_status() -> followup_bot::services::mirror::SyncStatus {
    use followup_bot::domain::crm::MirrorObject;
    use followup_bot::services::mirror::{ObjectStatus, SyncStatus};
    use followup_bot::store::mirror::{MirrorCounts, SyncMode, SyncRun};
    let at = |h: u32, m: u32| {
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 12, 1, h, m, 0).unwrap()
    };
    let run = |object: MirrorObject, finished, outcome: &str, code: Option<&str>| SyncRun {
        object: object.as_str().to_owned(),
        mode: "delta".to_owned(),
        started_at: finished,
        finished_at: finished,
        outcome: outcome.to_owned(),
        pages: 1,
        upserted: 3,
        removed: 0,
        error_code: code.map(str::to_owned),
    };
    SyncStatus {
        provider: Some(followup_bot::domain::provider::Provider::Hubspot),
        paused: false,
        paused_by: None,
        paused_at: None,
        counts: MirrorCounts {
            accounts: 120,
            contacts: 4500,
            deals: 17,
        },
        objects: MirrorObject::ALL
            .into_iter()
            .map(|object| ObjectStatus {
                object,
                ready: true,
                mode: SyncMode::Delta,
                last_run: Some(run(object, at(9, 10), "ok", None)),
                last_error: (object == MirrorObject::Contacts)
                    .then(|| run(object, at(9, 5), "error", Some("rate_limited"))),
            })
            .collect(),
    }
}
