//! `/followup`: pick a Fathom meeting, get a drafted follow-up in your DM, view and edit it,
//! and act on it. The picker, the edit modal, the action buttons, the views, the drafting job
//! and the prompt with its answer parsing all live here.
//!
//! Every button carries a follow-up id; each handler first checks the acting person owns it.

use crate::domain::followup::DRAFT_JOB;
use crate::registry::Features;
use crate::services::Pending;

mod actions;
mod draft_job;
pub mod drafting;
mod edit;
mod owned;
mod picker;
mod views;

pub use edit::edit_view;
pub use picker::meeting_label;
pub use views::ready_message;

pub fn register(features: &mut Features) {
    features.command("/followup", picker::FollowupCommand);
    features.action("followup_earlier", picker::EarlierMeetings);
    features.submission(picker::PICK, picker::PickSubmit);
    features.action("followup_view", edit::ViewFollowup);
    features.submission("followup_edit", edit::EditSubmit);
    features.action("followup_retry", actions::RetryFollowup);
    for (id, pending) in [
        ("followup_gmail", Pending::Gmail),
        ("followup_calendar", Pending::Calendar),
        ("followup_crm_note", Pending::CrmNote),
        ("followup_deals", Pending::Deals),
        ("followup_task", Pending::Task),
    ] {
        features.action(id, actions::FollowupAction(pending));
    }
    features
        .jobs
        .add(DRAFT_JOB, std::sync::Arc::new(draft_job::Generate));
}
