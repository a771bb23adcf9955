//! Recently verified passwords, so that a client that logs in again and again (a mail
//! client opening several connections, a phone polling) costs one argon2 check per
//! `ttl` instead of one per login.
//!
//! What is kept is safe to keep:
//! - Only successes, and only as an HMAC-SHA-256, under a key drawn at random when the
//!   node starts and never stored, of the account's stored hash and the password. No
//!   password, and nothing that can be checked without that key, is held.
//! - The stored hash is in the key: changing a password stores a new hash (with a new
//!   salt), so the old password stops hitting the cache at once. Whether the account
//!   exists and is enabled is read from the store on every login, as before.
//! - A wrong password is never cached, so a guess always costs a full check and goes
//!   through the failed-login limiter; an unknown user always costs a check of the
//!   dummy hash. A hit only ever answers a caller who already has the right password,
//!   so its speed tells them nothing they do not know.
//! - Entries expire after `ttl`, and the table is bounded: what remains exposed to
//!   someone who could read the node's memory (key and entries both) is the passwords
//!   used within the last `ttl`, each then open to a guess per HMAC rather than per
//!   argon2 check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub(crate) struct VerifiedLogins {
    ttl: Duration,
    max_entries: usize,
    key: [u8; 32],
    entries: Arc<Mutex<HashMap<[u8; 32], Instant>>>,
}

impl VerifiedLogins {
    /// `max_entries` 0 (or a zero `ttl`) keeps nothing.
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> VerifiedLogins {
        VerifiedLogins {
            ttl,
            max_entries,
            key: rand::random(),
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn enabled(&self) -> bool {
        self.max_entries > 0 && !self.ttl.is_zero()
    }

    fn tag(&self, stored_hash: &str, password: &str) -> [u8; 32] {
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key");
        // Length-prefixed, so that no two (hash, password) pairs give the same input.
        mac.update(&(stored_hash.len() as u64).to_be_bytes());
        mac.update(stored_hash.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// True when this password was verified against this stored hash within `ttl`.
    pub(crate) fn contains(&self, stored_hash: &str, password: &str) -> bool {
        if !self.enabled() {
            return false;
        }
        let tag = self.tag(stored_hash, password);
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        match entries.get(&tag) {
            Some(verified) if verified.elapsed() < self.ttl => true,
            Some(_) => {
                entries.remove(&tag);
                false
            }
            None => false,
        }
    }

    /// Remembers a successful check (the expiry runs from the first success, not the
    /// last: a password is re-checked at least once per `ttl`).
    pub(crate) fn insert(&self, stored_hash: &str, password: &str) {
        if !self.enabled() {
            return;
        }
        let tag = self.tag(stored_hash, password);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max_entries {
            let ttl = self.ttl;
            entries.retain(|_, verified| verified.elapsed() < ttl);
            if entries.len() >= self.max_entries {
                // Still full of live entries: start again rather than grow.
                entries.clear();
            }
        }
        entries.entry(tag).or_insert_with(Instant::now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_password_is_known_for_its_hash_only() {
        let cache = VerifiedLogins::new(Duration::from_secs(60), 10);
        cache.insert("$argon2id$hash-a", "pw");
        assert!(cache.contains("$argon2id$hash-a", "pw"));
        assert!(!cache.contains("$argon2id$hash-a", "pW"));
        // A new hash (a changed password) does not hit, even with the same password.
        assert!(!cache.contains("$argon2id$hash-b", "pw"));
        // Moving a character across the boundary is another input.
        assert!(!cache.contains("$argon2id$hash-ap", "w"));
    }

    #[test]
    fn entries_expire() {
        let cache = VerifiedLogins::new(Duration::from_millis(30), 10);
        cache.insert("h", "pw");
        assert!(cache.contains("h", "pw"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!cache.contains("h", "pw"));
    }

    #[test]
    fn the_table_stays_bounded_and_off_means_off() {
        let cache = VerifiedLogins::new(Duration::from_secs(60), 3);
        for n in 0..10 {
            cache.insert(&format!("h{n}"), "pw");
        }
        assert!(cache.entries.lock().unwrap().len() <= 3);
        assert!(cache.contains("h9", "pw"));
        let off = VerifiedLogins::new(Duration::from_secs(60), 0);
        off.insert("h", "pw");
        assert!(!off.contains("h", "pw"));
    }

    #[test]
    fn two_nodes_do_not_share_tags() {
        let a = VerifiedLogins::new(Duration::from_secs(60), 10);
        let b = VerifiedLogins::new(Duration::from_secs(60), 10);
        assert_ne!(a.tag("h", "pw"), b.tag("h", "pw"));
    }
}
