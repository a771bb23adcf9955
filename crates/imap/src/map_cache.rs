//! Sequence maps shared between the sessions of one node.
//!
//! Every session keeps its own map of the selected mailbox (RFC 9051 section 2.3.1.2:
//! message numbers are per session), but most of the time the maps of the sessions on
//! one mailbox are the same: a phone, a laptop and a webmail idling on one INBOX, or a
//! client that opens a second connection. So a map is held behind an `Arc` and copied
//! only when its session changes it (`Arc::make_mut`), and the node keeps the latest
//! clean map of each recently selected mailbox here, with the MODSEQ it is known up to.
//! SELECT then starts from that map and reads only `changes_since` its MODSEQ, instead of
//! the whole mailbox, and sessions that selected the same state share one map.
//!
//! A map is only put here when it has no expunge waiting to be reported; what it holds
//! is the mailbox at its MODSEQ, possibly with some later changes already applied (a
//! session's own STOREs), which reading the changes since that MODSEQ again sets right.
//! The cache is bounded by the messages it holds; the least recently used mailboxes go
//! first. A map still used by a session lives on in that session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::selected::Message;

/// Messages held at most (about 40 octets each): a few large mailboxes or many small.
pub(crate) const MAX_CACHED_MESSAGES: usize = 1_000_000;

/// A clean map of one mailbox, known up to `modseq`.
#[derive(Clone)]
pub(crate) struct SharedMap {
    pub uid_validity: u32,
    pub modseq: i64,
    pub messages: Arc<Vec<Message>>,
}

struct Entry {
    map: SharedMap,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<i64, Entry>,
    messages: usize,
    clock: u64,
}

pub(crate) struct MapCache {
    limit: usize,
    inner: Mutex<Inner>,
}

impl MapCache {
    pub fn new(limit: usize) -> MapCache {
        MapCache {
            limit,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The latest map of this mailbox, if one is held.
    pub fn get(&self, mailbox_id: i64) -> Option<SharedMap> {
        let mut inner = self.inner.lock().ok()?;
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(&mailbox_id)?;
        entry.last_used = now;
        Some(entry.map.clone())
    }

    /// Offers a map; it replaces the one held if it is known further (or the mailbox
    /// was recreated with a new UIDVALIDITY).
    pub fn offer(&self, mailbox_id: i64, map: SharedMap) {
        if map.messages.len() > self.limit {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.clock += 1;
        let now = inner.clock;
        let len = map.messages.len();
        if let Some(entry) = inner.entries.get_mut(&mailbox_id) {
            let newer = map.modseq > entry.map.modseq || map.uid_validity != entry.map.uid_validity;
            if !newer {
                entry.last_used = now;
                return;
            }
            let old = std::mem::replace(&mut entry.map, map);
            entry.last_used = now;
            inner.messages = inner.messages - old.messages.len() + len;
        } else {
            inner.entries.insert(
                mailbox_id,
                Entry {
                    map,
                    last_used: now,
                },
            );
            inner.messages += len;
        }
        while inner.messages > self.limit {
            let Some(oldest) = inner
                .entries
                .iter()
                .filter(|(id, _)| **id != mailbox_id)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some(entry) = inner.entries.remove(&oldest) {
                inner.messages -= entry.map.messages.len();
            }
        }
    }

    /// Forgets a mailbox (deleted, or its map could not be brought up to date).
    pub fn forget(&self, mailbox_id: i64) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(entry) = inner.entries.remove(&mailbox_id)
        {
            inner.messages -= entry.map.messages.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(modseq: i64, messages: usize) -> SharedMap {
        SharedMap {
            uid_validity: 7,
            modseq,
            messages: Arc::new(
                (1..=messages as u32)
                    .map(|uid| Message::new(uid, 1, 0, ""))
                    .collect(),
            ),
        }
    }

    #[test]
    fn a_map_known_further_replaces_an_older_one_only() {
        let cache = MapCache::new(100);
        cache.offer(1, map(5, 3));
        cache.offer(1, map(4, 9));
        assert_eq!(cache.get(1).unwrap().modseq, 5);
        cache.offer(1, map(6, 4));
        let held = cache.get(1).unwrap();
        assert_eq!((held.modseq, held.messages.len()), (6, 4));
        assert!(cache.get(2).is_none());
    }

    #[test]
    fn the_least_recently_used_mailboxes_leave_first() {
        let cache = MapCache::new(10);
        cache.offer(1, map(1, 4));
        cache.offer(2, map(1, 4));
        cache.get(1);
        cache.offer(3, map(1, 4));
        assert!(cache.get(1).is_some());
        assert!(cache.get(2).is_none());
        assert!(cache.get(3).is_some());
        // Larger than the whole cache: not kept.
        cache.offer(4, map(1, 11));
        assert!(cache.get(4).is_none());
        cache.forget(1);
        assert!(cache.get(1).is_none());
    }
}
