//! Socket Mode frames: control frames (`hello`, `disconnect`) parsed tolerantly, envelopes
//! parsed into slack-morphism's event and interaction models.

use std::sync::Arc;

use serde::Deserialize;
use slack_morphism::prelude::*;

/// The outer shape of every text frame Slack sends. Everything but `type` is optional so a
/// frame missing `debug_info` (or anything else we do not need) still parses.
#[derive(Debug, Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    envelope_id: Option<String>,
    payload: Option<serde_json::Value>,
    retry_attempt: Option<u32>,
    retry_reason: Option<String>,
    reason: Option<String>,
}

/// A payload, typed.
#[derive(Debug, Clone)]
pub enum SlackEvent {
    Command(Box<SlackCommandEvent>),
    Interaction(Box<SlackInteractionEvent>),
    Push(Box<SlackPushEventCallback>),
}

impl SlackEvent {
    pub fn team_id(&self) -> Option<String> {
        match self {
            SlackEvent::Command(c) => Some(c.team_id.to_string()),
            SlackEvent::Interaction(i) => Some(interaction_team(i).to_string()),
            SlackEvent::Push(p) => Some(p.team_id.to_string()),
        }
    }

    pub fn user_id(&self) -> Option<String> {
        match self {
            SlackEvent::Command(c) => Some(c.user_id.to_string()),
            SlackEvent::Interaction(i) => interaction_user(i).map(|u| u.to_string()),
            SlackEvent::Push(p) => match &p.event {
                SlackEventCallbackBody::AppHomeOpened(e) => Some(e.user.to_string()),
                _ => None,
            },
        }
    }
}

fn interaction_team(event: &SlackInteractionEvent) -> &SlackTeamId {
    match event {
        SlackInteractionEvent::BlockActions(e) => &e.team.id,
        SlackInteractionEvent::BlockSuggestion(e) => &e.team.id,
        SlackInteractionEvent::DialogSubmission(e) => &e.team.id,
        SlackInteractionEvent::MessageAction(e) => &e.team.id,
        SlackInteractionEvent::Shortcut(e) => &e.team.id,
        SlackInteractionEvent::ViewSubmission(e) => &e.team.id,
        SlackInteractionEvent::ViewClosed(e) => &e.team.id,
    }
}

fn interaction_user(event: &SlackInteractionEvent) -> Option<&SlackUserId> {
    match event {
        SlackInteractionEvent::BlockActions(e) => e.user.as_ref().map(|u| &u.id),
        SlackInteractionEvent::BlockSuggestion(e) => Some(&e.user.id),
        SlackInteractionEvent::DialogSubmission(e) => Some(&e.user.id),
        SlackInteractionEvent::MessageAction(e) => Some(&e.user.id),
        SlackInteractionEvent::Shortcut(e) => Some(&e.user.id),
        SlackInteractionEvent::ViewSubmission(e) => Some(&e.user.id),
        SlackInteractionEvent::ViewClosed(e) => Some(&e.user.id),
    }
}

#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    /// `events_api`, `slash_commands` or `interactive`.
    pub kind: String,
    pub event: SlackEvent,
    /// The payload as Slack sent it. Some fields are lost in slack-morphism's models (a
    /// modal's live `view.state` on `block_actions`, for one); handlers read them here.
    pub payload: Arc<serde_json::Value>,
    pub retry_attempt: Option<u32>,
    pub retry_reason: Option<String>,
    /// Stable across redeliveries: the Events API `event_id` where there is one, else the
    /// envelope id.
    pub dedupe_key: String,
}

#[derive(Debug)]
pub enum Incoming {
    Hello,
    Disconnect {
        reason: String,
    },
    Envelope(Box<Envelope>),
    /// An envelope we could not read: ack it anyway (so Slack stops retrying) and log it.
    Unreadable {
        envelope_id: String,
        kind: String,
        error: String,
    },
    /// A frame of a type we do not know; ignored.
    Other {
        kind: String,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("malformed frame: {0}")]
pub struct MalformedFrame(String);

pub fn parse(text: &str) -> Result<Incoming, MalformedFrame> {
    let frame: Frame = serde_json::from_str(text)
        .map_err(|e| MalformedFrame(crate::telemetry::parse_error(&e.to_string())))?;
    match frame.kind.as_str() {
        "hello" => return Ok(Incoming::Hello),
        "disconnect" => {
            return Ok(Incoming::Disconnect {
                reason: frame.reason.unwrap_or_else(|| "unspecified".to_owned()),
            });
        }
        _ => {}
    }
    let Some(envelope_id) = frame.envelope_id else {
        return Ok(Incoming::Other { kind: frame.kind });
    };
    let mut payload = frame.payload.unwrap_or(serde_json::Value::Null);
    if frame.kind == "interactive" {
        fill_in_team(&mut payload);
    }
    let event_id = payload
        .get("event_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let parsed = match frame.kind.as_str() {
        "slash_commands" => {
            SlackCommandEvent::deserialize(&payload).map(|e| SlackEvent::Command(Box::new(e)))
        }
        "interactive" => SlackInteractionEvent::deserialize(&payload)
            .map(|e| SlackEvent::Interaction(Box::new(e))),
        "events_api" => {
            SlackPushEventCallback::deserialize(&payload).map(|e| SlackEvent::Push(Box::new(e)))
        }
        _ => return Ok(Incoming::Other { kind: frame.kind }),
    };
    match parsed {
        Ok(event) => Ok(Incoming::Envelope(Box::new(Envelope {
            dedupe_key: event_id
                .map(|id| format!("event:{id}"))
                .unwrap_or_else(|| format!("envelope:{envelope_id}")),
            id: envelope_id,
            kind: frame.kind,
            event,
            payload: Arc::new(payload),
            retry_attempt: frame.retry_attempt,
            retry_reason: frame.retry_reason,
        }))),
        Err(e) => Ok(Incoming::Unreadable {
            envelope_id,
            kind: frame.kind,
            error: crate::telemetry::parse_error(&e.to_string()),
        }),
    }
}

/// Org-wide (Enterprise Grid) installs send interactions with `team: null`; the tenant is
/// the workspace the action came from: the view's `team_id`, else the acting user's.
/// slack-morphism's models require a team, so it is filled in before parsing.
fn fill_in_team(payload: &mut serde_json::Value) {
    let has_team = payload["team"]["id"]
        .as_str()
        .is_some_and(|id| !id.is_empty());
    if has_team || !payload.is_object() {
        return;
    }
    let workspace = payload["view"]["team_id"]
        .as_str()
        .or_else(|| payload["user"]["team_id"].as_str())
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    if let Some(id) = workspace {
        payload["team"] = serde_json::json!({ "id": id });
    }
}

/// The envelope type as a metrics label (a fixed set, whatever Slack sends).
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "slash_commands" => "slash_commands",
        "interactive" => "interactive",
        "events_api" => "events_api",
        _ => "other",
    }
}

/// A frame for a log line: its length and type codes only, unless `LOG_PII=true`, and then
/// cut short: never a whole payload with people's text in it.
pub fn excerpt(text: &str) -> String {
    if !crate::telemetry::pii_allowed() {
        return crate::telemetry::outside(text).to_string();
    }
    cut(text)
}

fn cut(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} bytes)", &text[..i], text.len()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_without_debug_info() {
        assert!(matches!(parse(r#"{"type":"hello"}"#), Ok(Incoming::Hello)));
        match parse(r#"{"type":"disconnect","reason":"refresh_requested"}"#) {
            Ok(Incoming::Disconnect { reason }) => assert_eq!(reason, "refresh_requested"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(r#"{"type":"disconnect"}"#),
            Ok(Incoming::Disconnect { .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"no_type":1}"#).is_err());
        assert!(matches!(
            parse(r#"{"type":"slash_commands","envelope_id":"e1","payload":{"x":1}}"#),
            Ok(Incoming::Unreadable { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"something_new"}"#),
            Ok(Incoming::Other { .. })
        ));
    }

    #[test]
    fn excerpts_are_short_and_char_safe() {
        let long = "é".repeat(500);
        let short = cut(&long);
        assert!(short.chars().count() < 110, "{short}");
        assert!(short.ends_with("(1000 bytes)"));
    }

    #[test]
    fn without_log_pii_a_frame_shows_its_codes_only() {
        let frame = r#"{"type":"interactive","payload":{"text":"Philomena Quibble"}}"#;
        let shown = excerpt(frame);
        assert!(shown.contains("type=interactive"), "{shown}");
        assert!(!shown.contains("Philomena"), "{shown}");
        let broken = excerpt(r#"{"type": broken "Philomena"#);
        assert!(!broken.contains("Philomena"), "{broken}");
        let error = crate::telemetry::parse_error(
            "invalid type: string \"Philomena\", expected u64 at line 1 column 9",
        );
        assert_eq!(
            error,
            "invalid type: string \"…\", expected u64 at line 1 column 9"
        );
    }
}
