//! Routing of typed Slack events to one handler per feature, and what every handler shares:
//! the acting tenant and user (created on first contact), replies, and error reporting.
//!
//! Each envelope runs on its own task. The handler's `ack` is computed first from the event
//! alone (quick, local work) and sent at once; `handle` runs after, deduplicated through the
//! store so a redelivery reaching another connection or replica is handled once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use slack_morphism::prelude::*;
use tracing::{Instrument, error, info_span, warn};

use crate::app::App;
use crate::slack::envelope::{Envelope, SlackEvent};
use crate::slack::socket::{Acker, EnvelopeHandler};
use crate::store::tenants::{Tenant, User};

pub mod connect;
pub mod fallback;
pub mod followup;
pub mod home;
pub mod settings;

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
                    Route::Submission(v.view.view.callback_id()?)
                }
                SlackInteractionEvent::ViewClosed(v) => Route::Closed(v.view.view.callback_id()?),
                SlackInteractionEvent::BlockSuggestion(s) => {
                    Route::Suggestion(s.action_id.to_string())
                }
                _ => return None,
            },
            SlackEvent::Push(p) => Route::Event(match &p.event {
                SlackEventCallbackBody::AppHomeOpened(_) => "app_home_opened".to_owned(),
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

trait CallbackId {
    fn callback_id(&self) -> Option<String>;
}

impl CallbackId for SlackView {
    fn callback_id(&self) -> Option<String> {
        match self {
            SlackView::Modal(m) => m.callback_id.as_ref().map(|c| c.to_string()),
            SlackView::Home(h) => h.callback_id.as_ref().map(|c| c.to_string()),
        }
    }
}

/// Marks an error the person was already told about (in a modal): logged, not repeated.
#[derive(Debug, thiserror::Error)]
#[error("already reported to the person")]
pub struct Reported;

/// A problem the person can fix: shown to them in plain words, not logged as an error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

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

/// One feature's handling of one kind of event.
#[async_trait]
pub trait Handler: Send + Sync {
    /// The ack: a slash command's immediate reply, a view submission's `response_action`, a
    /// block suggestion's options. Quick, local work; the rare remote check (a key validated
    /// before a modal closes) must bound itself well inside `ACK_BUDGET`. Default: empty ack.
    async fn ack(&self, _app: &App, _event: &SlackEvent, _payload: &serde_json::Value) -> Ack {
        Ack::Continue(None)
    }

    /// A modal to open at once, before anything slow runs (a `trigger_id` lives 3 s). Its id
    /// reaches `handle` as `Ctx::view_id`, to be updated with the real content.
    fn first_view(&self, _event: &SlackEvent) -> Option<SlackView> {
        None
    }

    /// Everything else, after the ack has gone out.
    async fn handle(&self, cx: &Ctx, event: SlackEvent) -> anyhow::Result<()>;
}

/// The acting person and the services, for one envelope.
pub struct Ctx {
    pub app: Arc<App>,
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
        let content = SlackMessageContent::new().with_text(text.to_owned());
        if let Some(url) = &self.response_url
            && self.app.slack.respond(url, content.clone()).await.is_ok()
        {
            return Ok(());
        }
        let dm = self.app.slack.open_dm(&self.user.slack_user_id).await?;
        self.app.slack.chat_post(&dm, content).await?;
        Ok(())
    }
}

/// Handlers by route, with fallbacks for what no handler claims.
pub struct Router {
    routes: HashMap<Route, Arc<dyn Handler>>,
    fallback: Arc<dyn Handler>,
}

impl Router {
    pub fn new() -> Self {
        let mut router = Self {
            routes: HashMap::new(),
            fallback: Arc::new(fallback::Unknown),
        };
        router.add(
            Route::Event("app_home_opened".to_owned()),
            Arc::new(home::HomeOpened),
        );
        router
    }

    pub fn add(&mut self, route: Route, handler: Arc<dyn Handler>) {
        self.routes.insert(route, handler);
    }

    fn find(&self, route: Option<&Route>) -> Arc<dyn Handler> {
        route
            .and_then(|r| self.routes.get(r))
            .cloned()
            .unwrap_or_else(|| self.fallback.clone())
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

/// Receives parsed envelopes from the socket loop and runs them.
pub struct Dispatcher {
    app: Arc<App>,
    router: Router,
    /// Envelopes being handled, so shutdown can let them finish before the pool closes.
    tasks: tokio_util::task::TaskTracker,
}

const SORRY: &str = "Sorry, something went wrong on our side and nothing was changed. Please \
                     try again in a minute.";

impl Dispatcher {
    /// Replaces the modal a handler opened (e.g. a loading spinner) with a message.
    async fn show_in_modal(&self, view_id: &str, text: &str) {
        let shown = match message_modal("notice", "Sorry", text) {
            Ok(view) => self
                .app
                .slack
                .views_update(view_id, None, view)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = shown {
            warn!(error = %e, "could not show the failure in the modal");
        }
    }

    /// Waits (up to `limit`) for the envelopes being handled; call once no more arrive.
    pub async fn drain(&self, limit: Duration) {
        self.tasks.close();
        if tokio::time::timeout(limit, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("some envelopes were still being handled at shutdown");
        }
    }

    pub fn new(app: Arc<App>, router: Router) -> Self {
        Self {
            app,
            router,
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    async fn run(self: Arc<Self>, envelope: Envelope, acker: Acker) {
        let route = Route::of(&envelope.event);
        let label = route
            .as_ref()
            .map_or_else(|| "unrouted".to_owned(), Route::label);
        let handler = self.router.find(route.as_ref());
        let ack = tokio::time::timeout(
            ACK_BUDGET,
            handler.ack(&self.app, &envelope.event, &envelope.payload),
        )
        .await
        .unwrap_or_else(|_| {
            warn!(route = %label, "the ack took too long; sent empty");
            Ack::Continue(None)
        });
        let outcome = match ack {
            Ack::Stop(payload) => {
                acker.ack(payload);
                Ok(true)
            }
            Ack::Continue(payload) => {
                acker.ack(payload);
                self.process(&envelope, handler).await
            }
        };
        let outcome = match outcome {
            Ok(true) => "handled",
            Ok(false) => "duplicate",
            Err(()) => "failed",
        };
        metrics::counter!("slack_envelopes_total", "type" => crate::slack::envelope::kind_label(&envelope.kind), "outcome" => outcome)
            .increment(1);
        tracing::debug!(route = %label, outcome, "envelope done");
    }

    /// Ok(false) for a redelivery; Err after the failure was reported to the person.
    async fn process(&self, envelope: &Envelope, handler: Arc<dyn Handler>) -> Result<bool, ()> {
        // The socket loop already dropped redeliveries this process has seen. Replicas share
        // PostgreSQL, so there the first to record the key handles it. SQLite is one process:
        // the in-memory record suffices, and a write here would put SQLite's checkpoint
        // stalls (measured: up to ~100 ms) between the ack and the first modal.
        if matches!(self.app.store, crate::store::Store::Postgres(_)) {
            match self.app.store.first_delivery(&envelope.dedupe_key).await {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    // Better to risk handling twice than to drop the person's request.
                    warn!(error = %e, "could not record the delivery; handling it anyway");
                }
            }
        }
        let view_id = match (
            handler.first_view(&envelope.event),
            trigger_id(&envelope.event),
        ) {
            (Some(view), Some(trigger)) => match self.app.slack.views_open(&trigger, view).await {
                Ok(id) => Some(id),
                Err(e) => {
                    warn!(error = %e, "could not open the modal");
                    None
                }
            },
            _ => None,
        };
        let (Some(team), Some(user_id)) = (envelope.event.team_id(), envelope.event.user_id())
        else {
            return Ok(true);
        };
        let (tenant, user) = match self.app.people.resolve(&self.app, &team, &user_id).await {
            Ok(found) => found,
            Err(e) => {
                error!(error = ?e, "could not load the tenant and user");
                if let Some(view_id) = &view_id {
                    self.show_in_modal(view_id, SORRY).await;
                }
                return Err(());
            }
        };
        let cx = Ctx {
            app: self.app.clone(),
            tenant,
            user,
            response_url: response_url(&envelope.event),
            payload: envelope.payload.clone(),
            view_id,
        };
        match handler.handle(&cx, envelope.event.clone()).await {
            Ok(()) => Ok(true),
            Err(e) if e.downcast_ref::<Reported>().is_some() => {
                error!(error = ?e, "handler failed (the person was told in the modal)");
                Err(())
            }
            Err(e) => {
                let message = match e.downcast_ref::<UserError>() {
                    Some(user_error) => user_error.0.clone(),
                    None => {
                        let id = uuid::Uuid::new_v4().simple().to_string();
                        let id = &id[..8];
                        error!(error = ?e, error_id = id, "handler failed");
                        format!(
                            "Sorry, something went wrong on our side and nothing was changed. \
                             Please try again in a minute; if it keeps happening, tell your admin \
                             the error id `{id}`."
                        )
                    }
                };
                // A modal the person is looking at shows the message; otherwise, privately.
                match &cx.view_id {
                    Some(view_id) => self.show_in_modal(view_id, &message).await,
                    None => {
                        if let Err(e) = cx.tell(&message).await {
                            warn!(error = %e, "could not tell the person about the failure");
                        }
                    }
                }
                Err(())
            }
        }
    }
}

fn trigger_id(event: &SlackEvent) -> Option<String> {
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

fn response_url(event: &SlackEvent) -> Option<String> {
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

impl EnvelopeHandler for Dispatcher {
    fn handle(self: Arc<Self>, envelope: Envelope, acker: Acker) {
        let route = Route::of(&envelope.event);
        let span = info_span!(
            "envelope",
            envelope_id = %envelope.id,
            kind = %envelope.kind,
            team = envelope.event.team_id().as_deref().unwrap_or("-"),
            user = envelope.event.user_id().as_deref().unwrap_or("-"),
            route = route.as_ref().map_or_else(|| "unrouted".to_owned(), Route::label),
            retry = envelope.retry_attempt.unwrap_or(0),
        );
        let tasks = self.tasks.clone();
        tasks.spawn(self.run(envelope, acker).instrument(span));
    }
}

/// Tenants and users by Slack ids, created on first contact; profiles from `users.info`,
/// refreshed daily; rows cached in memory for a minute (other replicas may change them).
#[derive(Default)]
pub struct Directory {
    cache: Mutex<HashMap<PersonKey, Person>>,
}

/// (Slack team id, Slack user id).
type PersonKey = (String, String);
/// A resolved person and when they were cached.
type Person = (Tenant, User, Instant);

const CACHE_FOR: Duration = Duration::from_secs(60);
const REFRESH_PROFILE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

impl Directory {
    /// Drops a cached person after their row changed.
    pub fn forget(&self, team: &str, user: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&(team.to_owned(), user.to_owned()));
        }
    }

    pub async fn resolve(
        &self,
        app: &App,
        team: &str,
        user: &str,
    ) -> anyhow::Result<(Tenant, User)> {
        let key = (team.to_owned(), user.to_owned());
        if let Ok(cache) = self.cache.lock()
            && let Some((tenant, user, at)) = cache.get(&key)
            && at.elapsed() < CACHE_FOR
        {
            return Ok((tenant.clone(), user.clone()));
        }
        let tenant = app.store.ensure_tenant(team).await?;
        let mut row = app.store.ensure_user(tenant.id, user).await?;
        let stale = row
            .profile_refreshed_at
            .is_none_or(|at| crate::store::now() - at > REFRESH_PROFILE_AFTER);
        if stale {
            match app.slack.user_info(user).await {
                Ok(profile) => {
                    app.store.update_profile(row.id, &profile).await?;
                    row.email = profile.email;
                    row.real_name = profile.real_name;
                    row.tz = profile.tz;
                    row.tz_offset_secs = profile.tz_offset_secs;
                    row.profile_refreshed_at = Some(crate::store::now());
                }
                Err(e) => warn!(error = %e, "users.info failed; going on without the profile"),
            }
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, (tenant.clone(), row.clone(), Instant::now()));
        }
        Ok((tenant, row))
    }
}

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

/// A one-message modal (loading, errors, "connect first").
pub fn message_modal(callback_id: &str, title: &str, text: &str) -> anyhow::Result<SlackView> {
    Ok(crate::blocks::MODAL_MESSAGE.render_as(
        &crate::blocks::Vars::new()
            .set("callback_id", callback_id)
            .set("title", title)
            .set("text", text),
    )?)
}
