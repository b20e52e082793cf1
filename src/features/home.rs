//! The App Home tab: the person's connections, settings and latest follow-ups (built in
//! `services::home`, since the features that change them refresh it too).

use async_trait::async_trait;

use crate::dispatch::{Ctx, Handler, HandlerResult};
use crate::slack::envelope::SlackEvent;

pub fn register(features: &mut crate::registry::Features) {
    features.event("app_home_opened", HomeOpened);
}

pub struct HomeOpened;

#[async_trait]
impl Handler for HomeOpened {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        // Opening the Messages tab sends the same event; only Home is ours to draw.
        if cx.payload["event"]["tab"]
            .as_str()
            .is_some_and(|tab| tab != "home")
        {
            return Ok(());
        }
        cx.services.publish_home(cx.tenant.id, cx.user.id).await?;
        Ok(())
    }
}
