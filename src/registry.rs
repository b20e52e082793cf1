//! What the features register, for startup to run: routes and the fallback for the
//! dispatcher, job kinds for the workers, background tasks, and routes for the sidecar.
//! It stands outside `features/` so that no feature imports the list of all features.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::dispatch::{Handler, Route};
use crate::jobs::Registry;
use crate::services::Services;

/// A long-running task a feature needs beside the handlers (the meeting poller).
pub type Task = Box<
    dyn FnOnce(Arc<Services>, CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send,
>;

/// Routes a feature adds to the HTTP sidecar (OAuth callbacks, webhooks), built once the
/// services exist.
pub type HttpRoutes = Box<dyn FnOnce(Arc<Services>) -> axum::Router + Send>;

/// What the features register: routes, the fallback, job kinds, background tasks and
/// sidecar routes.
pub struct Features {
    pub routes: Vec<(Route, Arc<dyn Handler>)>,
    /// Answers what no route claims.
    pub fallback: Arc<dyn Handler>,
    pub jobs: Registry,
    pub tasks: Vec<Task>,
    pub http: Vec<HttpRoutes>,
}

impl Features {
    /// Nothing registered yet; `fallback` answers whatever no route claims.
    pub fn new(fallback: impl Handler + 'static) -> Self {
        Self {
            routes: Vec::new(),
            fallback: Arc::new(fallback),
            jobs: Registry::default(),
            tasks: Vec::new(),
            http: Vec::new(),
        }
    }

    pub fn route(&mut self, route: Route, handler: impl Handler + 'static) {
        self.routes.push((route, Arc::new(handler)));
    }

    pub fn command(&mut self, command: &str, handler: impl Handler + 'static) {
        self.route(Route::Command(command.to_owned()), handler);
    }

    pub fn action(&mut self, action_id: &str, handler: impl Handler + 'static) {
        self.route(Route::Action(action_id.to_owned()), handler);
    }

    pub fn submission(&mut self, callback_id: &str, handler: impl Handler + 'static) {
        self.route(Route::Submission(callback_id.to_owned()), handler);
    }

    pub fn event(&mut self, event: &str, handler: impl Handler + 'static) {
        self.route(Route::Event(event.to_owned()), handler);
    }

    pub fn task<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(Arc<Services>, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(Box::new(move |services, shutdown| {
            Box::pin(task(services, shutdown))
        }));
    }
}
