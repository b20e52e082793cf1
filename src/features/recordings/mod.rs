//! Meeting-ready DMs: the poller that finds each connected person's new Fathom recordings
//! and announces each once, and the buttons of that announcement.

use crate::registry::Features;
use crate::services::Pending;

mod buttons;
mod poller;

pub use poller::poll_once;

pub fn register(features: &mut Features) {
    features.action("recording_draft", buttons::RecordingAction(None));
    for (id, pending) in [
        ("recording_crm_note", Pending::CrmNote),
        ("recording_task", Pending::Task),
        ("recording_deals", Pending::Deals),
    ] {
        features.action(id, buttons::RecordingAction(Some(pending)));
    }
    features.task(poller::run);
}
