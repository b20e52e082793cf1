//! Reading what handlers need from a payload: a modal's live values, the clicked button's
//! value, the trigger id and the response URL. slack-morphism's models drop some of these
//! (a modal's `view.state` on `block_actions`), so the raw payload is read where needed.

use slack_morphism::prelude::*;

use super::envelope::SlackEvent;

/// A value from a modal's live state in the raw payload (`view.state.values`), whatever the
/// element: text input, select, radio buttons, time picker.
pub fn state_value(payload: &serde_json::Value, block: &str, action: &str) -> Option<String> {
    let v = &payload["view"]["state"]["values"][block][action];
    v["value"]
        .as_str()
        .or_else(|| v["selected_option"]["value"].as_str())
        .or_else(|| v["selected_time"].as_str())
        .or_else(|| v["selected_date"].as_str())
        .map(str::to_owned)
}

/// The value of the clicked button (the first action of a `block_actions` payload).
pub fn action_value(payload: &serde_json::Value) -> Option<String> {
    payload["actions"][0]["value"]
        .as_str()
        .or_else(|| payload["actions"][0]["selected_option"]["value"].as_str())
        .map(str::to_owned)
}

/// The modal an interaction came from: its id and its `private_metadata`.
pub fn view_id(payload: &serde_json::Value) -> Option<&str> {
    payload["view"]["id"].as_str()
}

pub fn private_metadata(payload: &serde_json::Value) -> Option<&str> {
    payload["view"]["private_metadata"].as_str()
}

pub fn callback_id(payload: &serde_json::Value) -> Option<&str> {
    payload["view"]["callback_id"].as_str()
}

/// The trigger for opening a modal (valid 3 s after the person's action).
pub fn trigger_id(event: &SlackEvent) -> Option<String> {
    match event {
        SlackEvent::Command(c) => Some(c.trigger_id.to_string()),
        SlackEvent::Interaction(i) => match i.as_ref() {
            SlackInteractionEvent::BlockActions(a) => Some(a.trigger_id.to_string()),
            SlackInteractionEvent::ViewSubmission(v) => {
                v.trigger_id.as_ref().map(|t| t.to_string())
            }
            _ => None,
        },
        SlackEvent::Push(_) => None,
    }
}

/// Where to answer the person privately for this event, if Slack gave one.
pub fn response_url(event: &SlackEvent) -> Option<String> {
    match event {
        SlackEvent::Command(c) => Some(c.response_url.0.to_string()),
        SlackEvent::Interaction(i) => match i.as_ref() {
            SlackInteractionEvent::BlockActions(a) => {
                a.response_url.as_ref().map(|u| u.0.to_string())
            }
            _ => None,
        },
        SlackEvent::Push(_) => None,
    }
}
