//! Builders for Socket Mode envelopes shaped like Slack's (slash_commands, interactive,
//! events_api). Every builder returns the full envelope
//! `{envelope_id, type, payload, accepts_response_payload[, retry_attempt, retry_reason]}`
//! with a fresh uuid `envelope_id`; payloads parse with slack-morphism's models.
//!
//! Ids: the api_app_id is [`APP_ID`] ("A1", as in the fake's hello); a user's DM channel is
//! `D` + the user id without its `U`/`W` (as the fake's `conversations.open` answers).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub const APP_ID: &str = "A1";
pub const TEAM_DOMAIN: &str = "fake-team";
pub const BOT_USER_ID: &str = "U0FAKEBOT";
pub const BOT_ID: &str = "B0FAKEBOT";
/// The channel slash commands are typed in (a public channel, not the DM).
pub const CHANNEL_ID: &str = "C0FAKECHAN";
pub const CHANNEL_NAME: &str = "sales";
/// The deprecated verification token Slack still puts in payloads.
pub const VERIFICATION_TOKEN: &str = "fAkEvErIfIcAtIoNtOkEn42";

static COUNTER: AtomicU64 = AtomicU64::new(1);

fn next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `<secs>.<6 digits>`, unique within the test process.
pub fn new_ts() -> String {
    format!("{}.{:06}", now_secs(), next() % 1_000_000)
}

pub fn new_envelope_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Shaped like Slack's: `<13 digits>.<10 digits>.<32 hex>`, unique.
pub fn new_trigger_id() -> String {
    format!(
        "{}.{:010}.{}",
        1_000_000_000_000u64 + next(),
        1_234_567_890u64,
        uuid::Uuid::new_v4().simple()
    )
}

/// `Ev` + 10 uppercase alphanumerics, unique.
pub fn new_event_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("Ev{}", &hex[..10])
}

pub fn new_view_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("V{}", &hex[..10])
}

/// The DM channel between the bot and this user (same rule as the fake).
pub fn dm_channel_id(user_id: &str) -> String {
    format!("D{}", user_id.strip_prefix(['U', 'W']).unwrap_or(user_id))
}

/// Wraps a payload in an envelope of `kind` (`slash_commands`, `interactive`, `events_api`).
pub fn envelope(kind: &str, payload: Value, accepts_response_payload: bool) -> Value {
    json!({
        "envelope_id": new_envelope_id(),
        "type": kind,
        "payload": payload,
        "accepts_response_payload": accepts_response_payload,
    })
}

/// The same payload (so the same event_id) delivered again as Slack retries it: a fresh
/// envelope_id (each delivery is its own envelope), `retry_attempt`, `retry_reason: "timeout"`.
pub fn with_retry(envelope: &Value, attempt: u32) -> Value {
    let mut e = envelope.clone();
    e["envelope_id"] = json!(new_envelope_id());
    e["retry_attempt"] = json!(attempt);
    e["retry_reason"] = json!("timeout");
    e
}

pub fn envelope_id(envelope: &Value) -> &str {
    envelope["envelope_id"].as_str().unwrap_or_default()
}

fn team(team_id: &str) -> Value {
    json!({"id": team_id, "domain": TEAM_DOMAIN})
}

fn user(team_id: &str, user_id: &str) -> Value {
    let name = format!("user.{}", user_id.to_lowercase());
    json!({"id": user_id, "username": name, "name": name, "team_id": team_id})
}

// ------------------------------------------------------------------------ slash commands

/// `/command text` typed in [`CHANNEL_ID`].
pub fn slash_command(
    team_id: &str,
    user_id: &str,
    command: &str,
    text: &str,
    response_url: &str,
) -> Value {
    slash_command_in(
        team_id,
        user_id,
        CHANNEL_ID,
        CHANNEL_NAME,
        command,
        text,
        response_url,
    )
}

pub fn slash_command_in(
    team_id: &str,
    user_id: &str,
    channel_id: &str,
    channel_name: &str,
    command: &str,
    text: &str,
    response_url: &str,
) -> Value {
    // Slack forwards the form fields of the HTTP variant as strings.
    envelope(
        "slash_commands",
        json!({
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": format!("user.{}", user_id.to_lowercase()),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": new_trigger_id(),
        }),
        true,
    )
}

// ------------------------------------------------------------------------ interactive

/// A button action object.
pub fn button_action(action_id: &str, value: &str) -> Value {
    json!({
        "type": "button",
        "action_id": action_id,
        "block_id": format!("{action_id}_block"),
        "text": {"type": "plain_text", "text": "Click", "emoji": true},
        "value": value,
        "action_ts": new_ts(),
    })
}

/// A static_select action object.
pub fn static_select_action(action_id: &str, value: &str, text: &str) -> Value {
    json!({
        "type": "static_select",
        "action_id": action_id,
        "block_id": format!("{action_id}_block"),
        "selected_option": {"text": {"type": "plain_text", "text": text, "emoji": true}, "value": value},
        "placeholder": {"type": "plain_text", "text": "Select", "emoji": true},
        "action_ts": new_ts(),
    })
}

/// A button click: in a message in the user's DM (`view: None`), or in that view (a bare
/// view, or a full one as the fake's views.open returned it).
pub fn block_actions(
    team_id: &str,
    user_id: &str,
    action_id: &str,
    value: &str,
    view: Option<Value>,
) -> Value {
    block_actions_with(team_id, user_id, button_action(action_id, value), view)
}

/// Same with any action object (see [`button_action`], [`static_select_action`]).
pub fn block_actions_with(
    team_id: &str,
    user_id: &str,
    action: Value,
    view: Option<Value>,
) -> Value {
    let mut p = json!({
        "type": "block_actions",
        "user": user(team_id, user_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": new_trigger_id(),
        "team": team(team_id),
        "enterprise": null,
        "is_enterprise_install": false,
        "actions": [action.clone()],
    });
    match view {
        Some(v) => {
            let v = full_view(team_id, v);
            p["container"] = json!({"type": "view", "view_id": v["id"]});
            p["view"] = v;
        }
        None => {
            let channel = dm_channel_id(user_id);
            let ts = new_ts();
            let mut element = action.clone();
            if let Some(o) = element.as_object_mut() {
                for k in ["block_id", "action_ts", "selected_option"] {
                    o.remove(k);
                }
            }
            p["container"] = json!({"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false});
            p["channel"] = json!({"id": channel, "name": "directmessage"});
            p["message"] = json!({
                "type": "message",
                "subtype": "bot_message",
                "text": "New recording ready",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "app_id": APP_ID,
                "team": team_id,
                "ts": ts,
                "blocks": [{
                    "type": "actions",
                    "block_id": action["block_id"].clone(),
                    "elements": [element],
                }],
            });
            p["state"] = json!({"values": {}});
            // Loopback with nothing listening: tests never reach the internet. A test that
            // reads the answer sets it to `FakeSlack::response_url(id)`.
            p["response_url"] = json!(format!(
                "http://127.0.0.1:9/actions/{team_id}/{}/{}",
                next(),
                uuid::Uuid::new_v4().simple()
            ));
        }
    }
    envelope("interactive", p, false)
}

/// Fills in what Slack adds to a view it shows (id, team_id, hash, state, ...), keeping what
/// is already there.
pub fn full_view(team_id: &str, view: Value) -> Value {
    let mut v: Map<String, Value> = view.as_object().cloned().unwrap_or_default();
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(new_view_id);
    let is_home = v.get("type").and_then(Value::as_str) == Some("home");
    v.insert("id".into(), json!(id));
    v.entry("type").or_insert(json!("modal"));
    v.entry("team_id").or_insert(json!(team_id));
    v.entry("blocks").or_insert(json!([]));
    for k in ["private_metadata", "callback_id", "external_id"] {
        v.entry(k).or_insert(json!(""));
    }
    if !is_home {
        v.entry("title")
            .or_insert(json!({"type": "plain_text", "text": "Follow-up", "emoji": true}));
        v.entry("close")
            .or_insert(json!({"type": "plain_text", "text": "Cancel", "emoji": true}));
        v.entry("submit")
            .or_insert(json!({"type": "plain_text", "text": "Submit", "emoji": true}));
        v.entry("clear_on_close").or_insert(json!(false));
        v.entry("notify_on_close").or_insert(json!(false));
    }
    v.entry("state").or_insert(json!({"values": {}}));
    v.entry("hash").or_insert(json!(format!(
        "{}.{}",
        now_secs(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )));
    v.entry("previous_view_id").or_insert(Value::Null);
    v.entry("root_view_id").or_insert(json!(id));
    v.entry("app_id").or_insert(json!(APP_ID));
    v.entry("app_installed_team_id").or_insert(json!(team_id));
    v.entry("bot_id").or_insert(json!(BOT_ID));
    Value::Object(v)
}

/// A modal submitted with `state_values` (`{block_id: {action_id: {type, value…}}}`, see
/// [`state`]).
pub fn view_submission(
    team_id: &str,
    user_id: &str,
    callback_id: &str,
    private_metadata: &str,
    state_values: Value,
) -> Value {
    let view =
        json!({"type": "modal", "callback_id": callback_id, "private_metadata": private_metadata});
    view_submission_for(team_id, user_id, &view, state_values)
}

/// Submits a given view (e.g. the `view` the fake returned from views.open, so id, blocks,
/// callback_id and private_metadata match what the bot opened).
pub fn view_submission_for(
    team_id: &str,
    user_id: &str,
    view: &Value,
    state_values: Value,
) -> Value {
    let mut v = full_view(team_id, view.clone());
    v["state"] = json!({"values": state_values});
    envelope(
        "interactive",
        json!({
            "type": "view_submission",
            "team": team(team_id),
            "user": user(team_id, user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": new_trigger_id(),
            "view": v,
            "response_urls": [],
            "is_enterprise_install": false,
            "enterprise": null,
        }),
        true,
    )
}

/// The user closed a modal opened with `notify_on_close: true`.
pub fn view_closed(
    team_id: &str,
    user_id: &str,
    callback_id: &str,
    private_metadata: &str,
) -> Value {
    let view = full_view(
        team_id,
        json!({"type": "modal", "callback_id": callback_id, "private_metadata": private_metadata, "notify_on_close": true}),
    );
    envelope(
        "interactive",
        json!({
            "type": "view_closed",
            "team": team(team_id),
            "user": user(team_id, user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "view": view,
            "is_cleared": false,
            "is_enterprise_install": false,
            "enterprise": null,
        }),
        false,
    )
}

/// An external_select in a modal asks for options matching `value` (block id
/// `{action_id}_block`).
pub fn block_suggestion(team_id: &str, user_id: &str, action_id: &str, value: &str) -> Value {
    block_suggestion_in(
        team_id,
        user_id,
        &format!("{action_id}_block"),
        action_id,
        value,
        None,
    )
}

pub fn block_suggestion_in(
    team_id: &str,
    user_id: &str,
    block_id: &str,
    action_id: &str,
    value: &str,
    view: Option<Value>,
) -> Value {
    let v = full_view(team_id, view.unwrap_or_else(|| json!({"type": "modal"})));
    envelope(
        "interactive",
        json!({
            "type": "block_suggestion",
            "user": user(team_id, user_id),
            "container": {"type": "view", "view_id": v["id"]},
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "team": team(team_id),
            "enterprise": null,
            "is_enterprise_install": false,
            "view": v,
        }),
        true,
    )
}

// ------------------------------------------------------------------------ events API

/// The user opened the bot's Home tab.
pub fn app_home_opened(team_id: &str, user_id: &str) -> Value {
    events_api(
        team_id,
        json!({
            "type": "app_home_opened",
            "user": user_id,
            "channel": dm_channel_id(user_id),
            "tab": "home",
            "event_ts": new_ts(),
        }),
    )
}

/// Wraps any event in an `event_callback` (fresh event_id, retry_attempt 0).
pub fn events_api(team_id: &str, event: Value) -> Value {
    let mut e = envelope(
        "events_api",
        json!({
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "context_team_id": team_id,
            "context_enterprise_id": null,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": new_event_id(),
            "event_time": now_secs(),
            "authorizations": [{
                "enterprise_id": null,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": true,
                "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
        }),
        false,
    );
    e["retry_attempt"] = json!(0);
    e["retry_reason"] = json!("");
    e
}

// ------------------------------------------------------------------------ view state values

/// `{block_id: {action_id: value}}` from `(block_id, action_id, value)` triples.
pub fn state(entries: &[(&str, &str, Value)]) -> Value {
    let mut values = Map::new();
    for (block_id, action_id, value) in entries {
        let block = values
            .entry(block_id.to_string())
            .or_insert_with(|| json!({}));
        block[*action_id] = value.clone();
    }
    Value::Object(values)
}

pub fn text_input(value: &str) -> Value {
    json!({"type": "plain_text_input", "value": value})
}

pub fn number_input(value: &str) -> Value {
    json!({"type": "number_input", "value": value})
}

/// `YYYY-MM-DD`
pub fn date_input(date: &str) -> Value {
    json!({"type": "datepicker", "selected_date": date})
}

/// `HH:MM`
pub fn time_input(time: &str) -> Value {
    json!({"type": "timepicker", "selected_time": time})
}

pub fn static_select_input(value: &str, text: &str) -> Value {
    json!({"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": text, "emoji": true}, "value": value}})
}

pub fn external_select_input(value: &str, text: &str) -> Value {
    json!({"type": "external_select", "selected_option": {"text": {"type": "plain_text", "text": text, "emoji": true}, "value": value}})
}

/// An empty input (Slack sends `value: null` for untouched optional inputs).
pub fn empty_text_input() -> Value {
    json!({"type": "plain_text_input", "value": null})
}
