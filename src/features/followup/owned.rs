//! Whose follow-up a button points at: every handler checks the acting person owns it.

use anyhow::Context;

use crate::dispatch::{Ctx, HandlerError};
use crate::domain::followup::Followup;
use crate::domain::ids::FollowupId;
use crate::slack::payload::{action_value, private_metadata};

pub(super) const NOT_YOURS: &str =
    "This follow-up belongs to someone else, so I can't open or change it.";

/// The follow-up a button (or the modal it sits in) points at, if the acting person owns it.
pub(super) async fn owned(cx: &Ctx) -> Result<Followup, HandlerError> {
    let id = action_value(&cx.payload)
        .or_else(|| private_metadata(&cx.payload).map(str::to_owned))
        .context("the button carries no follow-up id")?;
    cx.services
        .store
        .followup(cx.tenant.id, cx.user.id, &FollowupId(id))
        .await?
        .ok_or_else(|| HandlerError::person(NOT_YOURS))
}
