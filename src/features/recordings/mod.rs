//! Meeting-ready DMs: the poller that finds each connected person's new Fathom recordings
//! and announces each once, and the buttons of that announcement.

use crate::registry::Features;

mod buttons;
mod poller;

pub use poller::poll_once;

pub fn register(features: &mut Features) {
    features.action("recording_draft", buttons::RecordingAction(None));
    for (id, pending) in [
        ("recording_crm_note", buttons::Later::CrmNote),
        ("recording_task", buttons::Later::Task),
        ("recording_deals", buttons::Later::Deals),
    ] {
        features.action(id, buttons::RecordingAction(Some(pending)));
    }
    features.task(poller::run);
}
