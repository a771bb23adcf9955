//! Failed logins per client address: after a few, each answer is slowed down; after
//! more, the address is refused for a while. Any protocol that checks passwords uses
//! the same limiter (one per node, in memory: a node restart forgets it, and a client
//! spreading guesses over the nodes of a cell meets each node's limit).
//!
//! ```text
//! failures:  1 .. slow_after      answered at once
//!            slow_after+1 ..      answered after delay * (failures - slow_after), capped
//!            lock_after           refused for `lockout` (SMTP 454 4.7.0, ...)
//! ```
//! A success from the address forgets its failures; failures older than `window` are
//! forgotten too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The limits; the defaults suit an internet-facing server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures answered without delay.
    pub slow_after: u32,
    /// Added per failure beyond `slow_after`, up to `max_delay`.
    pub delay: Duration,
    pub max_delay: Duration,
    /// Failures after which the address is refused.
    pub lock_after: u32,
    /// How long a refused address stays refused.
    pub lockout: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            slow_after: 3,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            lock_after: 10,
            lockout: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Whether an address may try to log in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    Open,
    /// Refused until this much time has passed.
    Locked(Duration),
}

#[derive(Debug)]
struct Record {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// Clients tracked at most; beyond this the oldest records are dropped, so that a
/// flood of addresses cannot exhaust memory.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone)]
pub struct LoginLimiter {
    limits: LoginLimits,
    records: Arc<Mutex<HashMap<IpAddr, Record>>>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> LoginLimiter {
        LoginLimiter {
            limits,
            records: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn limits(&self) -> LoginLimits {
        self.limits
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Record>> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks before checking a password.
    pub fn check(&self, peer: IpAddr) -> LoginGate {
        let now = Instant::now();
        let mut records = self.records();
        let Some(record) = records.get_mut(&peer) else {
            return LoginGate::Open;
        };
        if let Some(until) = record.locked_until {
            if until > now {
                return LoginGate::Locked(until - now);
            }
            records.remove(&peer);
            return LoginGate::Open;
        }
        if now.duration_since(record.last_failure) > self.limits.window {
            records.remove(&peer);
        }
        LoginGate::Open
    }

    /// Records a failed login and returns how long to wait before answering it.
    pub fn failed(&self, peer: IpAddr) -> Duration {
        let now = Instant::now();
        let mut records = self.records();
        if records.len() >= MAX_TRACKED && !records.contains_key(&peer) {
            let oldest = records
                .iter()
                .min_by_key(|(_, r)| r.last_failure)
                .map(|(ip, _)| *ip);
            if let Some(oldest) = oldest {
                records.remove(&oldest);
            }
        }
        let record = records.entry(peer).or_insert(Record {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        if now.duration_since(record.last_failure) > self.limits.window {
            record.failures = 0;
        }
        record.failures += 1;
        record.last_failure = now;
        let failures = record.failures;
        if failures >= self.limits.lock_after {
            record.locked_until = Some(now + self.limits.lockout);
            tracing::warn!(
                %peer,
                failures,
                lockout = ?self.limits.lockout,
                "too many failed logins: address refused for a while"
            );
            metrics::counter!("postcell_login_lockouts_total").increment(1);
        }
        let beyond = failures.saturating_sub(self.limits.slow_after);
        self.limits
            .delay
            .saturating_mul(beyond)
            .min(self.limits.max_delay)
    }

    /// A successful login forgets the address's failures.
    pub fn succeeded(&self, peer: IpAddr) {
        self.records().remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginLimits {
        LoginLimits {
            slow_after: 2,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            lock_after: 5,
            lockout: Duration::from_secs(60),
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn failures_slow_down_then_lock_one_address_only() {
        let limiter = LoginLimiter::new(limits());
        let bad: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let delays: Vec<Duration> = (0..4).map(|_| limiter.failed(bad)).collect();
        assert_eq!(
            delays,
            [0, 0, 100, 200].map(Duration::from_millis).to_vec(),
            "no delay, then growing"
        );
        assert_eq!(limiter.check(bad), LoginGate::Open);
        assert_eq!(limiter.failed(bad), Duration::from_millis(250), "capped");
        assert!(matches!(limiter.check(bad), LoginGate::Locked(d) if d > Duration::from_secs(59)));
        assert_eq!(limiter.check(other), LoginGate::Open);
    }

    #[test]
    fn a_success_forgets_the_failures() {
        let limiter = LoginLimiter::new(limits());
        let peer: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..4 {
            limiter.failed(peer);
        }
        limiter.succeeded(peer);
        assert_eq!(limiter.failed(peer), Duration::ZERO);
    }

    #[test]
    fn a_lockout_ends() {
        let limiter = LoginLimiter::new(LoginLimits {
            lock_after: 1,
            lockout: Duration::from_millis(50),
            ..limits()
        });
        let peer: IpAddr = "192.0.2.9".parse().unwrap();
        limiter.failed(peer);
        assert!(matches!(limiter.check(peer), LoginGate::Locked(_)));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(limiter.check(peer), LoginGate::Open);
    }
}
