//! The one backoff schedule for everything that waits before trying again (a failed job, a
//! lost Socket Mode connection): exponential from `first`, capped at `cap`, with jitter so
//! many waiters do not retry in step. Built on `backon`.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The wait before try number `attempt + 1` (attempt 0 is the first retry).
pub fn backoff(attempt: u32, first: Duration, cap: Duration) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(cap)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.min(32) as usize)
        .unwrap_or(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_under_the_cap_with_jitter() {
        let first = Duration::from_secs(5);
        let cap = Duration::from_secs(600);
        assert!(backoff(0, first, cap) >= first);
        assert!(backoff(0, first, cap) <= first * 2);
        assert!(backoff(3, first, cap) >= first * 8);
        for attempt in [10, 20, 1000] {
            assert!(backoff(attempt, first, cap) <= cap * 2, "{attempt}");
            assert!(backoff(attempt, first, cap) >= cap);
        }
    }
}
