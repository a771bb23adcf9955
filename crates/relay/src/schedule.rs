//! When to try again: the first retry after `initial`, each later one after twice the
//! previous wait, never more than `max` apart, until the entry is `expiry` old.
//!
//! ```text
//! initial 5m, max 4h:  5m 10m 20m 40m 80m 160m 4h 4h ... until 5 days
//! ```

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    pub initial: Duration,
    pub max: Duration,
    /// How long after it was queued an entry is given up and bounced.
    pub expiry: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            initial: Duration::from_secs(5 * 60),
            max: Duration::from_secs(4 * 3600),
            expiry: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// What to do after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(i64),
    GiveUp,
}

impl RetrySchedule {
    /// The wait after the `attempts`-th failed attempt (1 for the first).
    pub fn delay(&self, attempts: i64) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
        self.initial
            .saturating_mul(1u32 << doublings.min(20))
            .min(self.max)
    }

    /// The entry queued at `created_at` failed for the `attempts`-th time at `now`.
    /// The last retry is at the expiry itself; a failure at or after it gives up.
    pub fn after_failure(&self, created_at: i64, attempts: i64, now: i64) -> AfterFailure {
        let expires_at = created_at + self.expiry.as_secs() as i64;
        if now >= expires_at {
            return AfterFailure::GiveUp;
        }
        let next = now + self.delay(attempts).as_secs().max(1) as i64;
        AfterFailure::RetryAt(next.min(expires_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_doubles_from_five_minutes_to_four_hours() {
        let schedule = RetrySchedule::default();
        let minutes: Vec<u64> = (1..=9).map(|n| schedule.delay(n).as_secs() / 60).collect();
        assert_eq!(minutes, [5, 10, 20, 40, 80, 160, 240, 240, 240]);
        assert_eq!(schedule.delay(1000), Duration::from_secs(4 * 3600));
    }

    #[test]
    fn the_last_retry_is_at_the_expiry_then_it_gives_up() {
        let schedule = RetrySchedule {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(100),
            expiry: Duration::from_secs(60),
        };
        assert_eq!(schedule.after_failure(0, 1, 5), AfterFailure::RetryAt(15));
        assert_eq!(schedule.after_failure(0, 4, 50), AfterFailure::RetryAt(60));
        assert_eq!(schedule.after_failure(0, 5, 60), AfterFailure::GiveUp);
    }
}
