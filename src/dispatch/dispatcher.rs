//! Receives parsed envelopes from the socket loop, acks them within the budget, and runs the
//! handler once per delivery, reporting failures to the person.

use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, error, info_span, warn};

use super::{ACK_BUDGET, Ack, Ctx, Handler, HandlerError, Route, Router};
use crate::blocks::message_modal;
use crate::services::Services;
use crate::slack::envelope::{Envelope, kind_label};
use crate::slack::payload::{response_url, trigger_id};
use crate::slack::socket::{Acker, EnvelopeHandler};

pub struct Dispatcher {
    services: Arc<Services>,
    router: Router,
    /// Envelopes being handled, so shutdown can let them finish before the pool closes.
    tasks: tokio_util::task::TaskTracker,
}

/// What a person is told of a failure that is ours; the id is in the log line beside it.
fn sorry(id: &str) -> String {
    format!(
        "Sorry, something went wrong on our side and nothing was changed. Please try again in \
         a minute; if it keeps happening, tell your admin the error id `{id}`."
    )
}

/// How one envelope ended, for the metrics.
enum Outcome {
    Handled,
    Duplicate,
    Failed,
}

impl Dispatcher {
    pub fn new(services: Arc<Services>, router: Router) -> Self {
        Self {
            services,
            router,
            tasks: tokio_util::task::TaskTracker::new(),
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

    async fn run(self: Arc<Self>, envelope: Envelope, acker: Acker) {
        let route = Route::of(&envelope.event);
        let label = route
            .as_ref()
            .map_or_else(|| "unrouted".to_owned(), Route::label);
        let handler = self.router.find(route.as_ref());
        let ack = tokio::time::timeout(
            ACK_BUDGET,
            handler.ack(&self.services, &envelope.event, &envelope.payload),
        )
        .await
        .unwrap_or_else(|_| {
            warn!(route = %label, "the ack took too long; sent empty");
            Ack::Continue(None)
        });
        let outcome = match ack {
            Ack::Stop(payload) => {
                acker.ack(payload);
                Outcome::Handled
            }
            Ack::Continue(payload) => {
                acker.ack(payload);
                self.process(&envelope, handler).await
            }
        };
        let outcome = match outcome {
            Outcome::Handled => "handled",
            Outcome::Duplicate => "duplicate",
            Outcome::Failed => "failed",
        };
        metrics::counter!("slack_envelopes_total", "type" => kind_label(&envelope.kind), "outcome" => outcome)
            .increment(1);
        tracing::debug!(route = %label, outcome, "envelope done");
    }

    /// Everything after the ack: dedupe, the first modal, the person, the handler.
    async fn process(&self, envelope: &Envelope, handler: Arc<dyn Handler>) -> Outcome {
        if !self.first_delivery(envelope).await {
            return Outcome::Duplicate;
        }
        let view_id = self.open_first_view(envelope, &*handler).await;
        let (Some(team), Some(user_id)) = (envelope.event.team_id(), envelope.event.user_id())
        else {
            return Outcome::Handled;
        };
        let services = &self.services;
        let resolved = services
            .people
            .resolve(&services.store, &*services.slack, &team, &user_id)
            .await;
        let (tenant, user) = match resolved {
            Ok(found) => {
                // An org-wide install's workspace: its polls and jobs find the org's token.
                if let Some(scope) = crate::workspace::current()
                    && scope != team
                    && let Err(e) = services
                        .store
                        .set_tenant_enterprise(found.0.id, &scope)
                        .await
                {
                    warn!(error = ?e, "could not note a workspace's enterprise");
                }
                found
            }
            Err(e) => {
                // The same words, with an error id, as any unexpected failure.
                let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
                error!(error = ?e, error_id = %id, "could not load the tenant and user");
                if let Some(view_id) = &view_id {
                    self.show_in_modal(view_id, &sorry(&id)).await;
                }
                return Outcome::Failed;
            }
        };
        let cx = Ctx {
            services: services.clone(),
            tenant,
            user,
            response_url: response_url(&envelope.event),
            payload: envelope.payload.clone(),
            view_id,
        };
        match handler.handle(&cx, envelope.event.clone()).await {
            Ok(()) => Outcome::Handled,
            Err(e) => {
                self.report(&cx, e).await;
                Outcome::Failed
            }
        }
    }

    /// The socket loop already dropped redeliveries this process has seen. Replicas share
    /// PostgreSQL, so there the first to record the key handles it. SQLite is one process:
    /// the in-memory record suffices, and a write here would put SQLite's checkpoint stalls
    /// (measured: up to ~100 ms) between the ack and the first modal.
    async fn first_delivery(&self, envelope: &Envelope) -> bool {
        if !self.services.store.is_postgres() {
            return true;
        }
        match self
            .services
            .store
            .first_delivery(&envelope.dedupe_key)
            .await
        {
            Ok(first) => first,
            Err(e) => {
                // Better to risk handling twice than to drop the person's request.
                warn!(error = %e, "could not record the delivery; handling it anyway");
                true
            }
        }
    }

    /// Opens the handler's first modal right away, while the trigger is fresh.
    async fn open_first_view(&self, envelope: &Envelope, handler: &dyn Handler) -> Option<String> {
        let view = handler.first_view(&envelope.event)?;
        let trigger = trigger_id(&envelope.event)?;
        match self.services.slack.views_open(&trigger, view).await {
            Ok(id) => Some(id),
            Err(e) => {
                warn!(error = %e, "could not open the modal");
                None
            }
        }
    }

    /// Tells the person what failed: in the modal they are looking at, else privately.
    async fn report(&self, cx: &Ctx, failure: HandlerError) {
        let message = match failure {
            HandlerError::Person(text) => text,
            HandlerError::Shown(e) => {
                error!(error = ?e, "handler failed (the person was told in the modal)");
                return;
            }
            HandlerError::Unexpected { id, error } => {
                error!(error = ?error, error_id = %id, "handler failed");
                sorry(&id)
            }
        };
        match &cx.view_id {
            Some(view_id) => self.show_in_modal(view_id, &message).await,
            None => {
                if let Err(e) = cx.tell(&message).await {
                    warn!(error = %e, "could not tell the person about the failure");
                }
            }
        }
    }

    /// Replaces the modal a handler opened (e.g. a loading spinner) with a message.
    async fn show_in_modal(&self, view_id: &str, text: &str) {
        let shown = match message_modal("notice", "Sorry", text) {
            Ok(view) => self
                .services
                .slack
                .views_update(view_id, None, view)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = shown {
            warn!(error = %e, "could not show the failure in the modal");
        }
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
            retry_reason = envelope.retry_reason.as_deref().unwrap_or("-"),
        );
        let tasks = self.tasks.clone();
        // Every Web API call and every job of this envelope is for its workspace.
        let team = workspace_of(&envelope);
        tasks.spawn(
            crate::workspace::within_owned(team, self.run(envelope, acker)).instrument(span),
        );
    }
}

/// The workspace an envelope is for: its enterprise for an org-wide install (whose token is
/// stored under the enterprise id), else its team.
fn workspace_of(envelope: &Envelope) -> String {
    let p = &envelope.payload;
    let org_wide = p["is_enterprise_install"] == true || p["is_enterprise_install"] == "true";
    let enterprise = p["enterprise_id"]
        .as_str()
        .or_else(|| p["enterprise"]["id"].as_str())
        .or_else(|| p["team"]["enterprise_id"].as_str())
        .filter(|e| !e.is_empty());
    match (org_wide, enterprise) {
        (true, Some(enterprise)) => enterprise.to_owned(),
        _ => envelope.event.team_id().unwrap_or_default(),
    }
}
