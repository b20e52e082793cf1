//! The App Home tab: what the bot does and how to start.

use async_trait::async_trait;
use slack_morphism::prelude::SlackView;

use crate::blocks::{HOME, Vars};
use crate::dispatch::{Ctx, Handler, HandlerResult};
use crate::slack::envelope::SlackEvent;

pub fn register(features: &mut crate::registry::Features) {
    features.event("app_home_opened", HomeOpened);
}

pub struct HomeOpened;

#[async_trait]
impl Handler for HomeOpened {
    async fn handle(&self, cx: &Ctx, _event: SlackEvent) -> HandlerResult {
        let name = cx
            .user
            .real_name
            .clone()
            .unwrap_or_else(|| "there".to_owned());
        let view: SlackView = HOME.render_as(&Vars::new().set("name", name))?;
        cx.services
            .slack
            .views_publish(&cx.user.slack_user_id, view)
            .await?;
        Ok(())
    }
}
