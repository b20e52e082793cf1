//! Handlers by route, with a fallback for what no handler claims.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Handler, Route};

pub struct Router {
    routes: HashMap<Route, Arc<dyn Handler>>,
    fallback: Arc<dyn Handler>,
}

impl Router {
    /// `fallback` answers whatever no route claims (an unknown command, an old button).
    pub fn new(fallback: Arc<dyn Handler>) -> Self {
        Self {
            routes: HashMap::new(),
            fallback,
        }
    }

    pub fn add(&mut self, route: Route, handler: Arc<dyn Handler>) {
        self.routes.insert(route, handler);
    }

    pub(super) fn find(&self, route: Option<&Route>) -> Arc<dyn Handler> {
        route
            .and_then(|r| self.routes.get(r))
            .cloned()
            .unwrap_or_else(|| self.fallback.clone())
    }
}
