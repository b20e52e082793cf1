//! `/followup`: pick a Fathom meeting, get a drafted follow-up in your DM, view and edit it,
//! and act on it. The picker, the edit modal, the action buttons, the views, the drafting job
//! and the prompt with its answer parsing all live here.
//!
//! Every button carries a follow-up id; each handler first checks the acting person owns it.

use crate::domain::followup::{CALENDAR_EVENT_JOB, DRAFT_JOB, GMAIL_DRAFT_JOB};
use crate::registry::Features;

mod action_job;
mod actions;
mod calendar;
mod draft_job;
pub mod drafting;
mod edit;
mod gmail;
mod owned;
mod picker;
mod views;

pub use calendar::{event_id, proposed_start};
pub use edit::edit_view;
pub use gmail::message_id;
pub use picker::meeting_label;
pub use views::ready_message;

pub fn register(features: &mut Features) {
    features.command("/followup", picker::FollowupCommand);
    features.action("followup_earlier", picker::EarlierMeetings);
    features.submission(picker::PICK, picker::PickSubmit);
    features.action("followup_view", edit::ViewFollowup);
    features.submission("followup_edit", edit::EditSubmit);
    features.action("followup_retry", actions::RetryFollowup);
    features.action("followup_gmail", gmail::GmailDraft);
    features.action("followup_calendar", calendar::CalendarButton);
    features.submission(calendar::CALLBACK, calendar::CalendarSubmit);
    features
        .jobs
        .add(DRAFT_JOB, std::sync::Arc::new(draft_job::Generate));
    features
        .jobs
        .add(GMAIL_DRAFT_JOB, std::sync::Arc::new(gmail::SaveDraft));
    features.jobs.add(
        CALENDAR_EVENT_JOB,
        std::sync::Arc::new(calendar::CreateEvent),
    );
}
