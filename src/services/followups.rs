//! What the follow-up's buttons share across features: the edits in the open "Edit
//! Follow-up" modal, saved before any button in it acts.

use serde_json::Value;

use super::Services;
use crate::domain::followup::{Draft, Followup};
use crate::domain::person::{Tenant, User};
use crate::slack::payload::state_value;

/// The text fields of the edit modal, from the payload's live view state.
pub fn edited_draft(payload: &Value, previous: Option<&Draft>) -> Draft {
    let get = |block: &str| state_value(payload, block, "value").unwrap_or_default();
    Draft {
        subject: get("subject").trim().to_owned(),
        body: get("body"),
        summary: get("summary"),
        crm_note: get("crm_note"),
        attendees: get("attendees"),
        next_meeting: previous.and_then(|d| d.next_meeting.clone()),
    }
}

impl Services {
    /// Saves what the open edit modal holds (when the click came from it). False when the
    /// follow-up is not the person's.
    pub async fn save_view_edits(
        &self,
        payload: &Value,
        tenant: &Tenant,
        user: &User,
        followup: &Followup,
    ) -> anyhow::Result<bool> {
        let draft = edited_draft(payload, followup.current());
        if draft.subject.is_empty() && draft.body.trim().is_empty() {
            return Ok(true);
        }
        self.store
            .save_edits(tenant.id, user.id, &followup.id, &draft)
            .await
    }
}
