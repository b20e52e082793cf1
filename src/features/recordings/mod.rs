//! Meeting-ready DMs: Fathom's webhook deliveries and the poller (the safety net) find each
//! connected person's new recordings and announce each once; the buttons of that
//! announcement.

use crate::registry::Features;

mod buttons;
mod poller;
mod webhooks;

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
    features.task(webhooks::backfill);
    features.jobs.add(
        webhooks::DELIVERY_JOB,
        std::sync::Arc::new(webhooks::Delivery),
    );
    features.http.push(Box::new(webhooks::routes));
}
