//! The handle features use to wake the workers after queueing a job.

use tokio::sync::Notify;

/// Wakes idle workers when a job is queued by this process (others find it on their next
/// look at the table).
#[derive(Default)]
pub struct Queue {
    notify: Notify,
}

impl Queue {
    pub fn notify(&self) {
        self.notify.notify_waiters();
    }

    /// Resolves at the next `notify`.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}
