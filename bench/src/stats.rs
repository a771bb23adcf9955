//! Latency summaries and the clock readings they are made of.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Summarises latencies given in microseconds (sorts them in place).
pub fn summarize(micros: &mut [u64]) -> Summary {
    if micros.is_empty() {
        return Summary::default();
    }
    micros.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let sum: u128 = micros.iter().map(|&v| u128::from(v)).sum();
    Summary {
        count: micros.len(),
        p50: ms(percentile(micros, 50.0)),
        p90: ms(percentile(micros, 90.0)),
        p99: ms(percentile(micros, 99.0)),
        max: ms(micros[micros.len() - 1]),
        mean: sum as f64 / micros.len() as f64 / 1000.0,
    }
}

/// A duration in whole microseconds, the unit `summarize` takes.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Seconds since 1970, for reports.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Nearest-rank percentile of sorted, non-empty data.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().map(|x| x * 1000).collect();
        let s = summarize(&mut v);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50, 50.0);
        assert_eq!(s.p99, 99.0);
        assert_eq!(s.max, 100.0);
        assert_eq!(s.mean, 50.5);
        let mut one = vec![1500];
        assert_eq!(summarize(&mut one).p99, 1.5);
        assert_eq!(summarize(&mut []).count, 0);
    }
}
