//! Open-loop pacing (`--rate`): item `i` (a message, a session) is due at
//! `start + i / rate`, whatever the server answers. A worker still busy with
//! an earlier item starts it late: that wait is queueing, and counts.

use std::time::{Duration, Instant};

/// An item that starts later than this after its due time waited for a free
/// worker (a connection, a client).
pub const LATE_START: Duration = Duration::from_millis(10);

/// When each item is due.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    start: Instant,
    interval: f64,
}

/// When an item starts, against its due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Not past `deadline`: it waited for its due time, or was less than
    /// [`LATE_START`] behind it.
    OnTime(Instant),
    /// More than [`LATE_START`] after its due time.
    Late(Instant),
    /// Due at or after the deadline: not to be started.
    PastDeadline,
}

impl Pace {
    /// `rate` items per second from `start`.
    pub fn new(start: Instant, rate: f64) -> Pace {
        Pace {
            start,
            interval: 1.0 / rate,
        }
    }

    /// Item `index`'s due time.
    pub fn due(&self, index: u64) -> Instant {
        self.start + Duration::from_secs_f64(index as f64 * self.interval)
    }

    /// Waits for item `index`'s due time (if it is still ahead) and says how
    /// it starts; the instant in `OnTime` and `Late` is the due time.
    pub async fn wait(&self, index: u64, deadline: Instant) -> Start {
        let due = self.due(index);
        if due >= deadline {
            return Start::PastDeadline;
        }
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
            Start::OnTime(due)
        } else if now - due > LATE_START {
            Start::Late(due)
        } else {
            Start::OnTime(due)
        }
    }
}

/// A positive, finite rate per second (for `--rate`).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0 => Ok(rate),
        _ => Err(format!(
            "not a rate per second (0 < R <= 1000000): {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_due_one_interval_apart() {
        let start = Instant::now();
        let pace = Pace::new(start, 4.0);
        assert_eq!(pace.due(0), start);
        assert_eq!(pace.due(2), start + Duration::from_millis(500));
    }

    #[tokio::test]
    async fn an_item_behind_its_due_time_is_late_and_one_past_the_deadline_is_not_started() {
        let start = Instant::now() - Duration::from_secs(1);
        let pace = Pace::new(start, 1.0);
        let deadline = start + Duration::from_secs(10);
        assert_eq!(pace.wait(0, deadline).await, Start::Late(start));
        assert_eq!(pace.wait(10, deadline).await, Start::PastDeadline);
        let ahead = pace.due(2);
        assert_eq!(pace.wait(2, deadline).await, Start::OnTime(ahead));
        assert!(Instant::now() >= ahead);
    }

    #[test]
    fn rates_must_be_positive_and_finite() {
        assert_eq!(parse_rate("277.8"), Ok(277.8));
        for bad in ["0", "-1", "inf", "NaN", "x", "2000000"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
