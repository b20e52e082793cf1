//! From a parsed envelope to the feature that handles it: routes, the `Handler` trait, the
//! ack and its budget, the handler context, typed handler errors, the router and the
//! dispatcher. Features register handlers here through startup; dispatch imports no feature.
//!
//! Each envelope runs on its own task. The handler's `ack` is computed first from the event
//! alone (quick, local work) and sent at once; `handle` runs after, deduplicated through the
//! store so a redelivery reaching another connection or replica is handled once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slack_morphism::prelude::*;

use crate::blocks::RenderError;
use crate::domain::person::{Tenant, User};
use crate::services::Services;
use crate::slack::api::SlackApiError;
use crate::slack::envelope::SlackEvent;

mod dispatcher;
mod router;

pub use dispatcher::Dispatcher;
pub use router::Router;

/// What an envelope asks for: the key handlers are registered under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Command(String),
    Action(String),
    Submission(String),
    Closed(String),
    Suggestion(String),
    Event(String),
}

impl Route {
    pub fn of(event: &SlackEvent) -> Option<Route> {
        Some(match event {
            SlackEvent::Command(c) => Route::Command(canonical_command(&c.command.0)),
            SlackEvent::Interaction(i) => match i.as_ref() {
                SlackInteractionEvent::BlockActions(a) => Route::Action(
                    a.actions
                        .as_ref()
                        .and_then(|actions| actions.first())
                        .map(|a| a.action_id.to_string())?,
                ),
                SlackInteractionEvent::ViewSubmission(v) => {
                    Route::Submission(callback_id(&v.view.view)?)
                }
                SlackInteractionEvent::ViewClosed(v) => Route::Closed(callback_id(&v.view.view)?),
                SlackInteractionEvent::BlockSuggestion(s) => {
                    Route::Suggestion(s.action_id.to_string())
                }
                _ => return None,
            },
            SlackEvent::Push(p) => Route::Event(match &p.event {
                SlackEventCallbackBody::AppHomeOpened(_) => "app_home_opened".to_owned(),
                SlackEventCallbackBody::AppUninstalled(_) => "app_uninstalled".to_owned(),
                SlackEventCallbackBody::Unknown(raw) if raw["type"] == "tokens_revoked" => {
                    "tokens_revoked".to_owned()
                }
                _ => return None,
            }),
        })
    }

    /// A short label for logs and metrics.
    pub fn label(&self) -> String {
        match self {
            Route::Command(c) => c.clone(),
            Route::Action(a) => format!("action:{a}"),
            Route::Submission(c) => format!("submit:{c}"),
            Route::Closed(c) => format!("closed:{c}"),
            Route::Suggestion(a) => format!("suggest:{a}"),
            Route::Event(e) => format!("event:{e}"),
        }
    }
}

/// `/crm-add-task` and `/crono-add-task` are the same command.
pub fn canonical_command(command: &str) -> String {
    match command.strip_prefix("/crm-") {
        Some(rest) => format!("/crono-{rest}"),
        None => command.to_owned(),
    }
}

fn callback_id(view: &SlackView) -> Option<String> {
    match view {
        SlackView::Modal(m) => m.callback_id.as_ref().map(|c| c.to_string()),
        SlackView::Home(h) => h.callback_id.as_ref().map(|c| c.to_string()),
    }
}

/// What to send as the ack, and whether `handle` runs after it.
#[derive(Debug)]
pub enum Ack {
    /// Ack (with this payload, if any), then run `handle`.
    Continue(Option<serde_json::Value>),
    /// Ack and stop: the ack said it all (e.g. a modal's field errors).
    Stop(Option<serde_json::Value>),
}

/// The longest an ack may take before it goes out empty (Slack waits 3 s).
pub const ACK_BUDGET: Duration = Duration::from_millis(2500);

/// A `response_action: errors` ack for a modal's fields.
pub fn field_errors(errors: &[(&str, &str)]) -> Ack {
    let map: serde_json::Map<String, serde_json::Value> = errors
        .iter()
        .map(|(block, text)| ((*block).to_owned(), serde_json::Value::from(*text)))
        .collect();
    Ack::Stop(Some(
        serde_json::json!({ "response_action": "errors", "errors": map }),
    ))
}

/// How a handler failed, and so what the person is told.
#[derive(Debug)]
pub enum HandlerError {
    /// Something the person can act on: shown to them as it is, not logged as an error.
    Person(String),
    /// The person was already told (in the modal they are looking at): logged, not repeated.
    Shown(anyhow::Error),
    /// Unexpected: logged with this error id; the person sees an apology naming the id.
    Unexpected { id: String, error: anyhow::Error },
}

impl HandlerError {
    pub fn person(text: impl Into<String>) -> Self {
        HandlerError::Person(text.into())
    }

    pub fn unexpected(error: impl Into<anyhow::Error>) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        HandlerError::Unexpected {
            id,
            error: error.into(),
        }
    }
}

impl From<anyhow::Error> for HandlerError {
    fn from(e: anyhow::Error) -> Self {
        HandlerError::unexpected(e)
    }
}

impl From<SlackApiError> for HandlerError {
    fn from(e: SlackApiError) -> Self {
        HandlerError::unexpected(e)
    }
}

impl From<RenderError> for HandlerError {
    fn from(e: RenderError) -> Self {
        HandlerError::unexpected(e)
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        HandlerError::unexpected(e)
    }
}

pub type HandlerResult = Result<(), HandlerError>;

/// One feature's handling of one kind of event.
#[async_trait]
pub trait Handler: Send + Sync {
    /// The ack: a slash command's immediate reply, a view submission's `response_action`, a
    /// block suggestion's options. Quick, local work; the rare remote check (a key validated
    /// before a modal closes) must bound itself well inside `ACK_BUDGET`. Default: empty ack.
    async fn ack(
        &self,
        _services: &Services,
        _event: &SlackEvent,
        _payload: &serde_json::Value,
    ) -> Ack {
        Ack::Continue(None)
    }

    /// A modal to open at once, before anything slow runs (a `trigger_id` lives 3 s). Its id
    /// reaches `handle` as `Ctx::view_id`, to be updated with the real content.
    fn first_view(&self, _event: &SlackEvent) -> Option<SlackView> {
        None
    }

    /// Everything else, after the ack has gone out.
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> HandlerResult;
}

/// The acting person and the services, for one envelope.
pub struct Ctx {
    pub services: Arc<Services>,
    pub tenant: Tenant,
    pub user: User,
    /// Where to answer the person privately for this event, if Slack gave one.
    pub response_url: Option<String>,
    /// The raw payload, for what slack-morphism's models drop (see `Envelope::payload`).
    pub payload: Arc<serde_json::Value>,
    /// The modal opened from `Handler::first_view`, if any.
    pub view_id: Option<String>,
}

impl Ctx {
    /// Tells the acting person something privately: via the event's `response_url` when
    /// there is one, else in their DM with the bot. Never in a shared channel.
    pub async fn tell(&self, text: &str) -> anyhow::Result<()> {
        self.tell_content(SlackMessageContent::new().with_text(text.to_owned()))
            .await
    }

    /// As `tell`, with blocks.
    pub async fn tell_content(&self, content: SlackMessageContent) -> anyhow::Result<()> {
        if let Some(url) = &self.response_url
            && self
                .services
                .slack
                .respond(url, content.clone())
                .await
                .is_ok()
        {
            return Ok(());
        }
        self.services.dm(&self.user.slack_user_id, content).await?;
        Ok(())
    }
}
