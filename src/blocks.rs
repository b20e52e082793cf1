//! Block Kit views and messages live in `blocks/` as JSON that can be pasted into Slack's
//! Block Kit Builder. Code fills values in by walking the JSON tree (never by concatenating
//! JSON text), so a value can never break the structure, then parses the result into
//! slack-morphism's types.
//!
//! Placeholders: a string that is exactly `"{{name}}"` becomes the value (any JSON type); an
//! array element `"{{...name}}"` splices the elements of an array value; `{{name}}` inside a
//! longer string is replaced by the value's text.
//!
//! Values are text from outside (meeting titles, names, summaries, model output), so inside
//! `mrkdwn` text objects, and in a message's top-level `text` (its notification, which Slack
//! renders as mrkdwn), their `&`, `<` and `>` are escaped as Slack documents: no `<!channel>`,
//! `<@U…>` or disguised `<https://…|…>` link from outside ever renders. Plain-text objects
//! and every other field take values as they are.

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {0} is not valid JSON: {1}")]
    Template(&'static str, serde_json::Error),
    #[error("template {template} uses {{{{{name}}}}} but no value was given")]
    Missing {
        template: &'static str,
        name: String,
    },
    #[error("template {template}: {{{{...{name}}}}} needs an array value")]
    NotAnArray {
        template: &'static str,
        name: String,
    },
    #[error("template {0} does not fit Block Kit: {1}")]
    Shape(&'static str, serde_json::Error),
}

/// A named template, embedded at build time.
#[derive(Clone, Copy, Debug)]
pub struct Template {
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! template {
    ($name:literal) => {
        Template {
            name: $name,
            source: include_str!(concat!("../blocks/", $name, ".json")),
        }
    };
}

pub const HOME: Template = template!("home");
/// App Home's pieces: a line with a button, a line alone, the buttons.
pub const HOME_ROW: Template = template!("home_row");
pub const HOME_TEXT: Template = template!("home_text");
pub const HOME_BUTTON: Template = template!("home_button");
pub const HOME_DISCONNECT: Template = template!("home_disconnect");
pub const HOME_VIEW_BUTTON: Template = template!("home_view_button");
/// A modal with one message (loading, errors, "connect first").
pub const MODAL_MESSAGE: Template = template!("modal_message");
pub const FATHOM_CONNECT: Template = template!("fathom_connect");
pub const FOLLOWUP_PICKER: Template = template!("followup_picker");
pub const FOLLOWUP_PICKER_EMPTY: Template = template!("followup_picker_empty");
/// The "Earlier meetings" actions block, present only when there is an earlier page.
pub const EARLIER_BUTTON: Template = template!("earlier_button");
pub const FOLLOWUP_DRAFTING: Template = template!("followup_drafting");
pub const FOLLOWUP_READY: Template = template!("followup_ready");
pub const FOLLOWUP_FAILED: Template = template!("followup_failed");
pub const FOLLOWUP_EDIT: Template = template!("followup_edit");
pub const NOTICE: Template = template!("notice");
pub const FOLLOWUP_SETTINGS: Template = template!("followup_settings");
/// "Delete my data"'s confirmation, pushed over the settings.
pub const DELETE_DATA: Template = template!("delete_data");
/// The team's settings (admins), and the button to them in the person's settings.
pub const TEAM_SETTINGS: Template = template!("team_settings");
pub const TEAM_SETTINGS_BUTTON: Template = template!("team_settings_button");
pub const RECORDING_READY: Template = template!("recording_ready");
/// `/gmail-connect`'s answer: the connect button.
pub const GMAIL_CONNECT: Template = template!("gmail_connect");
pub const GMAIL_CONNECTED: Template = template!("gmail_connected");
/// Offered after connecting from a follow-up's Gmail Draft button.
pub const GMAIL_PENDING_DRAFT: Template = template!("gmail_pending_draft");
pub const CALENDAR_EVENT: Template = template!("calendar_event");
/// `/crono-connect`: the team's CRM and its keys (admins only).
pub const CRM_CONNECT: Template = template!("crm_connect");
pub const CRM_OAUTH: Template = template!("crm_oauth");
/// What a follow-up's action made ("Draft saved", "Event created"), with its link.
pub const FOLLOWUP_RESULT: Template = template!("followup_result");
/// In the edit modal: what was made from the follow-up, with its link.
pub const FOLLOWUP_STATUS: Template = template!("followup_status");
/// In the edit modal: an action under way.
pub const FOLLOWUP_WORKING: Template = template!("followup_working");
/// The CRM's modals and the search results.
pub const CRM_TASK: Template = template!("crm_task");
pub const CRM_NOTE: Template = template!("crm_note");
pub const CRM_PICK_ACCOUNT: Template = template!("crm_pick_account");
pub const CRM_DEALS: Template = template!("crm_deals");
pub const CRM_DEAL_EDIT: Template = template!("crm_deal_edit");
pub const CRM_SEARCH: Template = template!("crm_search");

/// Every template, so tests can check each one parses and fits Block Kit.
pub const ALL: &[Template] = &[
    HOME,
    HOME_ROW,
    HOME_TEXT,
    HOME_BUTTON,
    HOME_DISCONNECT,
    HOME_VIEW_BUTTON,
    MODAL_MESSAGE,
    FATHOM_CONNECT,
    FOLLOWUP_PICKER,
    FOLLOWUP_PICKER_EMPTY,
    EARLIER_BUTTON,
    FOLLOWUP_DRAFTING,
    FOLLOWUP_READY,
    FOLLOWUP_FAILED,
    FOLLOWUP_EDIT,
    NOTICE,
    FOLLOWUP_SETTINGS,
    DELETE_DATA,
    TEAM_SETTINGS,
    TEAM_SETTINGS_BUTTON,
    RECORDING_READY,
    GMAIL_CONNECT,
    GMAIL_CONNECTED,
    GMAIL_PENDING_DRAFT,
    CALENDAR_EVENT,
    CRM_CONNECT,
    CRM_OAUTH,
    FOLLOWUP_RESULT,
    FOLLOWUP_STATUS,
    FOLLOWUP_WORKING,
    CRM_TASK,
    CRM_NOTE,
    CRM_PICK_ACCOUNT,
    CRM_DEALS,
    CRM_DEAL_EDIT,
    CRM_SEARCH,
];

/// Block Kit's limits, checked on a rendered view or message. Returns every breach.
pub fn check_limits(view: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["title", "submit", "close"] {
        if let Some(text) = view
            .get(key)
            .and_then(|t| t.get("text"))
            .and_then(Value::as_str)
            && text.chars().count() > 24
        {
            problems.push(format!("{key} is over 24 characters: {text:?}"));
        }
    }
    if let Some(meta) = view.get("private_metadata").and_then(Value::as_str)
        && meta.len() > 3000
    {
        problems.push("private_metadata is over 3000 characters".to_owned());
    }
    let blocks = view
        .get("blocks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if blocks.len() > 100 {
        problems.push(format!("{} blocks (at most 100)", blocks.len()));
    }
    let mut block_ids = std::collections::HashSet::new();
    for block in &blocks {
        if let Some(id) = block.get("block_id").and_then(Value::as_str)
            && !block_ids.insert(id.to_owned())
        {
            problems.push(format!("block_id {id} is used twice"));
        }
        let mut action_ids = std::collections::HashSet::new();
        walk(block, &mut |node| {
            if let Some(id) = node.get("action_id").and_then(Value::as_str)
                && !action_ids.insert(id.to_owned())
            {
                problems.push(format!("action_id {id} is used twice in one block"));
            }
            if let Some(options) = node.get("options").and_then(Value::as_array) {
                if options.len() > 100 {
                    problems.push(format!("{} options (at most 100)", options.len()));
                }
                for option in options {
                    let text = option["text"]["text"].as_str().unwrap_or_default();
                    if text.chars().count() > 75 {
                        problems.push(format!("option text over 75 characters: {text:?}"));
                    }
                    if option["value"].as_str().unwrap_or_default().len() > 150 {
                        problems.push("option value over 150 characters".to_owned());
                    }
                }
            }
            if matches!(
                node.get("type").and_then(Value::as_str),
                Some("actions" | "context")
            ) && node
                .get("elements")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                problems.push("an actions or context block with no elements".to_owned());
            }
            if node.get("type").and_then(Value::as_str) == Some("button")
                && node
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .len()
                    > 2000
            {
                problems.push("button value over 2000 characters".to_owned());
            }
            if let Some(initial) = node.get("initial_value").and_then(Value::as_str) {
                let max = node
                    .get("max_length")
                    .and_then(Value::as_u64)
                    .unwrap_or(3000);
                if initial.chars().count() as u64 > max {
                    problems.push(format!("initial_value over its max_length {max}"));
                }
            }
            if matches!(
                node.get("type").and_then(Value::as_str),
                Some("mrkdwn" | "plain_text")
            ) && node
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .count()
                > 3000
            {
                problems.push("a text over 3000 characters".to_owned());
            }
        });
    }
    problems
}

fn walk(node: &Value, f: &mut impl FnMut(&Value)) {
    f(node);
    match node {
        Value::Array(items) => items.iter().for_each(|i| walk(i, f)),
        Value::Object(map) => map.values().for_each(|v| walk(v, f)),
        _ => {}
    }
}

/// Cuts a text to `max` characters, saying so at the end, so nothing is dropped silently.
pub fn fit(text: &str, max: usize) -> (String, bool) {
    if text.chars().count() <= max {
        return (text.to_owned(), false);
    }
    const MARK: &str = " […]";
    let keep = max.saturating_sub(MARK.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(MARK);
    (out, true)
}

/// A one-message modal (loading, errors, "connect first").
pub fn message_modal(
    callback_id: &str,
    title: &str,
    text: &str,
) -> Result<slack_morphism::prelude::SlackView, RenderError> {
    MODAL_MESSAGE.render_as(
        &Vars::new()
            .set("callback_id", callback_id)
            .set("title", title)
            .set("text", text),
    )
}

/// Values for a template.
#[derive(Default, Debug, Clone)]
pub struct Vars(Map<String, Value>);

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.insert(name.to_owned(), value.into());
        self
    }
}

/// Escapes text for Slack's mrkdwn: `&`, `<` and `>` (Slack's own rule; nothing else).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether the strings being filled are rendered as mrkdwn.
#[derive(Clone, Copy, PartialEq)]
enum Markup {
    Plain,
    Mrkdwn,
}

impl Template {
    pub fn render(&self, vars: &Vars) -> Result<Value, RenderError> {
        let tree: Value =
            serde_json::from_str(self.source).map_err(|e| RenderError::Template(self.name, e))?;
        // A message (no `type` at its root) has its top-level `text` rendered as mrkdwn.
        let Value::Object(root) = tree else {
            return fill(tree, vars, self.name, Markup::Plain);
        };
        let is_message = !root.contains_key("type");
        let root = root
            .into_iter()
            .map(|(k, v)| {
                let markup = if is_message && k == "text" {
                    Markup::Mrkdwn
                } else {
                    Markup::Plain
                };
                Ok((k, fill(v, vars, self.name, markup)?))
            })
            .collect::<Result<_, RenderError>>()?;
        Ok(Value::Object(root))
    }

    /// Renders and parses into a slack-morphism type (`SlackView`, `SlackMessageContent`…).
    pub fn render_as<T: serde::de::DeserializeOwned>(&self, vars: &Vars) -> Result<T, RenderError> {
        serde_json::from_value(self.render(vars)?).map_err(|e| RenderError::Shape(self.name, e))
    }
}

fn whole(s: &str) -> Option<&str> {
    s.strip_prefix("{{")?
        .strip_suffix("}}")
        .filter(|n| !n.contains('{'))
}

fn lookup<'a>(
    vars: &'a Vars,
    name: &str,
    template: &'static str,
) -> Result<&'a Value, RenderError> {
    vars.0.get(name).ok_or_else(|| RenderError::Missing {
        template,
        name: name.to_owned(),
    })
}

fn fill(
    value: Value,
    vars: &Vars,
    template: &'static str,
    markup: Markup,
) -> Result<Value, RenderError> {
    let outside = |text: &str| match markup {
        Markup::Mrkdwn => escape(text),
        Markup::Plain => text.to_owned(),
    };
    Ok(match value {
        Value::String(s) => {
            if let Some(name) = whole(&s) {
                match lookup(vars, name, template)? {
                    Value::String(text) => Value::String(outside(text)),
                    other => other.clone(),
                }
            } else if s.contains("{{") {
                Value::String(interpolate(&s, vars, template, &outside)?)
            } else {
                Value::String(s)
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some(name) = item
                    .as_str()
                    .and_then(whole)
                    .and_then(|n| n.strip_prefix("..."))
                {
                    match lookup(vars, name, template)? {
                        Value::Array(spliced) => out.extend(spliced.iter().cloned()),
                        _ => {
                            return Err(RenderError::NotAnArray {
                                template,
                                name: name.to_owned(),
                            });
                        }
                    }
                } else {
                    out.push(fill(item, vars, template, Markup::Plain)?);
                }
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            // `{"type": "mrkdwn", "text": …}`: its text is rendered as mrkdwn.
            let mrkdwn = map.get("type").and_then(Value::as_str) == Some("mrkdwn");
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let markup = if mrkdwn && k == "text" {
                            Markup::Mrkdwn
                        } else {
                            Markup::Plain
                        };
                        Ok((k, fill(v, vars, template, markup)?))
                    })
                    .collect::<Result<_, RenderError>>()?,
            )
        }
        other => other,
    })
}

fn interpolate(
    s: &str,
    vars: &Vars,
    template: &'static str,
    outside: &dyn Fn(&str) -> String,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = &rest[start + 2..start + len];
        match lookup(vars, name, template)? {
            Value::String(text) => out.push_str(&outside(text)),
            other => out.push_str(&outside(&other.to_string())),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Template = Template {
        name: "test",
        source: r#"{"a":"{{x}}","b":"Hi {{name}}, \"{{q}}\"","list":[1,"{{...more}}",4]}"#,
    };

    #[test]
    fn values_cannot_break_the_structure() {
        let hostile = r#"", "type": "evil"} ]"#;
        let out = T
            .render(
                &Vars::new()
                    .set("x", serde_json::json!({"k": 1}))
                    .set("name", hostile)
                    .set("q", "ok")
                    .set("more", serde_json::json!([2, 3])),
            )
            .unwrap();
        assert_eq!(out["a"], serde_json::json!({"k": 1}));
        assert_eq!(out["b"], format!("Hi {hostile}, \"ok\""));
        assert_eq!(out["list"], serde_json::json!([1, 2, 3, 4]));
    }

    #[test]
    fn a_missing_value_is_an_error() {
        assert!(matches!(
            T.render(&Vars::new()),
            Err(RenderError::Missing { .. })
        ));
    }
}
