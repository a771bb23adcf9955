//! The session's own view of the selected mailbox: its sequence map (message number to
//! UID), each message's flags and MODSEQ as last reported to the client, and the
//! highest MODSEQ up to which it has read the store's changes (design rule 5).
//!
//! The map is read whole once, at SELECT, in a compact form (no blob ids, dates or
//! sizes: those are read in batches by the commands that need them). After that it is
//! brought up to date with `Store::changes_since(mailbox, modseq)` only, at command
//! boundaries, on change-feed hints, and on a timer during IDLE ([`SelectedMailbox::apply`]
//! is that step, with no I/O, so it is tested on its own).
//!
//! RFC 9051 section 7.5.1 forbids `EXPUNGE` while the client may still be using message
//! numbers it has (during FETCH, STORE and SEARCH). A message another session expunged
//! then stays in the map, marked, until a command that may report it: its number keeps
//! naming it, and a FETCH of it finds nothing to send.

use std::sync::Arc;

use postcell_imap_proto::{Flag, MessageSet, SequenceSet};
use postcell_store::{Change, MailboxChanges, MailboxSnapshot, MessageFlags, flags};
use tokio::sync::broadcast;

use crate::command::search::SearchState;
use crate::map_cache::SharedMap;

/// One message as the session last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub uid: u32,
    pub modseq: u64,
    /// System flags as the store's bits (see `postcell_store::flags`).
    pub flags: i64,
    /// Keywords, space separated, sorted; usually empty (no allocation).
    pub keywords: Box<str>,
    /// Expunged by someone else and not yet reported to the client.
    pub expunged: bool,
}

impl Message {
    #[cfg(test)]
    pub fn new(uid: u32, modseq: u64, flags: i64, keywords: &str) -> Message {
        Message {
            uid,
            modseq,
            flags,
            keywords: keywords.into(),
            expunged: false,
        }
    }

    fn from_row(uid: i64, modseq: i64, flags: i64, keywords: &str) -> Message {
        Message {
            uid: uid_u32(uid),
            modseq: modseq.max(0) as u64,
            flags,
            keywords: keywords.into(),
            expunged: false,
        }
    }

    /// The flags as IMAP names them.
    pub fn flag_list(&self) -> Vec<Flag> {
        flag_list(self.flags, &self.keywords)
    }

    pub fn has(&self, bit: i64) -> bool {
        self.flags & bit != 0
    }
}

/// UIDs are 32-bit in IMAP; the store keeps them in 64-bit columns.
fn uid_u32(uid: i64) -> u32 {
    u32::try_from(uid).unwrap_or(u32::MAX)
}

/// What changed in the map, for the client to hear.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Updates {
    /// Messages removed from the map, as `(message number, UID)` at the time of each
    /// removal, highest number first, so that each `* n EXPUNGE` is right as sent.
    pub expunged: Vec<(u32, u32)>,
    /// Messages whose flags changed: their indexes (`seq - 1`) after the expunges.
    pub flags_changed: Vec<usize>,
    /// The new message count, when messages were added.
    pub exists: Option<u32>,
}

impl Updates {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.expunged.is_empty() && self.flags_changed.is_empty() && self.exists.is_none()
    }
}

pub(crate) struct SelectedMailbox {
    pub mailbox_id: i64,
    pub read_only: bool,
    pub uid_validity: u32,
    /// Index `n - 1` holds message `n`, in UID order. Shared with other sessions (and
    /// the node's [`MapCache`](crate::map_cache::MapCache)) until this one changes it.
    messages: Arc<Vec<Message>>,
    /// How many of `messages` are marked expunged: every command asks, so no scan.
    marked_expunged: usize,
    /// Every change up to this MODSEQ is in the map (changes of our own may be newer).
    known_modseq: i64,
    /// Hints that this mailbox changed; `None` after the channel closed.
    feed: Option<broadcast::Receiver<Change>>,
    /// A hint arrived (or may have been lost) since the last sync.
    hinted: bool,
    /// The saved search result (`$`) and how far the mailbox is known to be indexed.
    pub search: SearchState,
}

impl SelectedMailbox {
    /// The map of a freshly read mailbox. `feed` must have been subscribed before
    /// `snapshot` was read, so that no change falls between the two.
    pub fn new(
        mailbox_id: i64,
        read_only: bool,
        snapshot: MailboxSnapshot,
        feed: broadcast::Receiver<Change>,
    ) -> SelectedMailbox {
        let messages = snapshot
            .messages
            .into_iter()
            .map(|m: MessageFlags| Message {
                uid: uid_u32(m.uid),
                modseq: m.modseq.max(0) as u64,
                flags: m.flags,
                keywords: m.keywords.into_boxed_str(),
                expunged: false,
            })
            .collect();
        SelectedMailbox {
            mailbox_id,
            read_only,
            uid_validity: uid_u32(snapshot.uid_validity),
            messages: Arc::new(messages),
            marked_expunged: 0,
            known_modseq: snapshot.highest_modseq,
            feed: Some(feed),
            hinted: false,
            search: SearchState::default(),
        }
    }

    /// A map that starts as a shared one; `feed` must have been subscribed before the
    /// shared map's changes are read (with [`SelectedMailbox::apply`]).
    pub fn from_shared(
        mailbox_id: i64,
        read_only: bool,
        map: SharedMap,
        feed: broadcast::Receiver<Change>,
    ) -> SelectedMailbox {
        SelectedMailbox {
            mailbox_id,
            read_only,
            uid_validity: map.uid_validity,
            // A map is shared only without expunge marks (see `shared`).
            messages: map.messages,
            marked_expunged: 0,
            known_modseq: map.modseq,
            feed: Some(feed),
            hinted: false,
            search: SearchState::default(),
        }
    }

    /// The map to share with later sessions, when no expunge waits to be reported in it.
    pub fn shared(&self) -> Option<SharedMap> {
        if self.marked_expunged > 0 {
            return None;
        }
        Some(SharedMap {
            uid_validity: self.uid_validity,
            modseq: self.known_modseq,
            messages: Arc::clone(&self.messages),
        })
    }

    /// Message count, unreported expunges included (they keep their numbers).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn message(&self, index: usize) -> Option<&Message> {
        self.messages.get(index)
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The largest UID in the map (what `*` means in a UID set), 0 when empty.
    pub fn largest_uid(&self) -> u32 {
        self.messages.last().map_or(0, |m| m.uid)
    }

    /// The index (`seq - 1`) of the message with this UID.
    pub fn index_of_uid(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    pub fn known_modseq(&self) -> i64 {
        self.known_modseq
    }

    /// The indexes (`seq - 1`) a sequence or UID set names, in order. `None` when a
    /// message number is beyond the mailbox (RFC 9051 section 9: the client gets BAD);
    /// UIDs that do not exist simply name nothing. `$` (SEARCHRES) names the messages of
    /// the saved result still in the map.
    pub fn resolve(&self, set: &MessageSet, uid: bool) -> Option<Vec<usize>> {
        let set = match set {
            MessageSet::Set(set) => set,
            MessageSet::SavedResult => return Some(self.saved_result()),
        };
        if uid {
            Some(self.resolve_uids(set))
        } else {
            self.resolve_numbers(set)
        }
    }

    fn resolve_uids(&self, set: &SequenceSet) -> Vec<usize> {
        let mut indexes = Vec::new();
        for range in set.resolve(self.largest_uid()) {
            let start = self.messages.partition_point(|m| m.uid < *range.start());
            let end = self.messages.partition_point(|m| m.uid <= *range.end());
            indexes.extend(start..end);
        }
        indexes
    }

    fn resolve_numbers(&self, set: &SequenceSet) -> Option<Vec<usize>> {
        let largest = self.messages.len() as u32;
        if largest == 0 {
            // `1:*` in an empty mailbox names nothing rather than a missing message.
            return set.has_largest().then(Vec::new);
        }
        let mut indexes = Vec::new();
        for range in set.resolve(largest) {
            if *range.end() > largest {
                return None;
            }
            indexes.extend((*range.start() as usize - 1)..(*range.end() as usize));
        }
        Some(indexes)
    }

    /// Updates the map after a write of this session's own (STORE, a FETCH that set
    /// `\Seen`): the rows as the store returned them. The known MODSEQ stays where it is,
    /// since others may have written below these rows' MODSEQ; the next sync compares
    /// and reports nothing twice.
    pub fn update_own(
        &mut self,
        uid: i64,
        modseq: i64,
        flags: i64,
        keywords: &str,
    ) -> Option<usize> {
        let index = self.index_of_uid(uid_u32(uid))?;
        let message = &mut Arc::make_mut(&mut self.messages)[index];
        if !message.expunged {
            message.modseq = modseq.max(0) as u64;
            message.flags = flags;
            message.keywords = keywords.into();
        }
        Some(index)
    }

    /// Removes messages this session expunged itself (EXPUNGE, MOVE), returning their
    /// `(message number, UID)`, highest number first.
    pub fn remove_own(&mut self, uids: &[i64]) -> Vec<(u32, u32)> {
        let mut removed = Vec::new();
        for &uid in uids {
            if let Some(index) = self.index_of_uid(uid_u32(uid)) {
                removed.push(index);
            }
        }
        removed.sort_unstable();
        removed.dedup();
        let mut reported = Vec::with_capacity(removed.len());
        for &index in removed.iter().rev() {
            reported.push((index as u32 + 1, self.messages[index].uid));
        }
        let mut position = 0;
        Arc::make_mut(&mut self.messages).retain(|_| {
            let keep = removed.binary_search(&position).is_err();
            position += 1;
            keep
        });
        self.marked_expunged = self.messages.iter().filter(|m| m.expunged).count();
        reported
    }

    /// Applies the changes read from the store. With `allow_expunge`, messages expunged
    /// by others (now and before) leave the map; without, they are only marked.
    pub fn apply(&mut self, changes: MailboxChanges, allow_expunge: bool) -> Updates {
        for uid in &changes.expunged {
            if let Some(index) = self.index_of_uid(uid_u32(*uid))
                && !self.messages[index].expunged
            {
                Arc::make_mut(&mut self.messages)[index].expunged = true;
                self.marked_expunged += 1;
            }
        }
        let mut updates = Updates::default();
        let before = self.messages.len();
        let mut changed_uids = Vec::new();
        for row in &changes.changed {
            let uid = uid_u32(row.uid);
            match self.index_of_uid(uid) {
                Some(index) => {
                    let modseq = row.modseq.max(0) as u64;
                    let known = &self.messages[index];
                    if known.expunged || known.modseq >= modseq {
                        // Nothing new for this one (a shared map stays shared).
                        continue;
                    }
                    let known = &mut Arc::make_mut(&mut self.messages)[index];
                    if known.flags != row.flags || *known.keywords != *row.keywords {
                        known.flags = row.flags;
                        known.keywords = row.keywords.as_str().into();
                        known.modseq = modseq;
                        changed_uids.push(uid);
                    } else {
                        known.modseq = known.modseq.max(modseq);
                    }
                }
                // Rows come in UID order and new UIDs are above every known one.
                None if uid > self.largest_uid() => Arc::make_mut(&mut self.messages).push(
                    Message::from_row(row.uid, row.modseq, row.flags, &row.keywords),
                ),
                // Below the largest UID and not in the map: a message this session saw
                // expunged already; nothing to do.
                None => {}
            }
        }
        let added = self.messages.len() > before;
        if allow_expunge {
            updates.expunged = self.take_expunged();
        }
        for uid in changed_uids {
            if let Some(index) = self.index_of_uid(uid) {
                updates.flags_changed.push(index);
            }
        }
        // EXPUNGE already tells the client the count went down; EXISTS is for growth.
        if added {
            updates.exists = Some(self.messages.len() as u32);
        }
        self.known_modseq = self.known_modseq.max(changes.highest_modseq);
        updates
    }

    /// Removes the messages marked expunged; their `(message number, UID)`, highest
    /// number first.
    pub fn take_expunged(&mut self) -> Vec<(u32, u32)> {
        if self.marked_expunged == 0 {
            return Vec::new();
        }
        let reported = self
            .messages
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, m)| m.expunged)
            .map(|(index, m)| (index as u32 + 1, m.uid))
            .collect();
        Arc::make_mut(&mut self.messages).retain(|m| !m.expunged);
        self.marked_expunged = 0;
        reported
    }

    /// Takes the hints that arrived since the last call: whether any concerns this
    /// mailbox (or may: a lost hint, a lagging receiver). Never waits.
    pub fn drain_hints(&mut self) -> bool {
        let Some(feed) = &mut self.feed else {
            return false;
        };
        loop {
            match feed.try_recv() {
                Ok(Change::Mailbox { mailbox_id, .. }) if mailbox_id == self.mailbox_id => {
                    self.hinted = true
                }
                Ok(Change::Mailbox { .. }) => {}
                Ok(Change::Resync) | Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.hinted = true
                }
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(broadcast::error::TryRecvError::Closed) => {
                    self.feed = None;
                    break;
                }
            }
        }
        std::mem::take(&mut self.hinted)
    }

    /// Waits for a hint about this mailbox (or a lost one). Pending forever once the
    /// feed has closed (the poll timer still runs). Cancel-safe.
    pub async fn next_hint(&mut self) {
        let Some(feed) = &mut self.feed else {
            return std::future::pending().await;
        };
        loop {
            match feed.recv().await {
                Ok(Change::Mailbox { mailbox_id, .. }) if mailbox_id == self.mailbox_id => break,
                Ok(Change::Mailbox { .. }) => {}
                Ok(Change::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => {
                    self.feed = None;
                    return std::future::pending().await;
                }
            }
        }
        self.hinted = true;
    }
}

/// The flags of a message as IMAP names them.
pub(crate) fn flag_list(bits: i64, keywords: &str) -> Vec<Flag> {
    let mut list = Vec::new();
    for (bit, flag) in [
        (flags::SEEN, Flag::Seen),
        (flags::ANSWERED, Flag::Answered),
        (flags::FLAGGED, Flag::Flagged),
        (flags::DELETED, Flag::Deleted),
        (flags::DRAFT, Flag::Draft),
    ] {
        if bits & bit != 0 {
            list.push(flag);
        }
    }
    list.extend(
        keywords
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| Flag::Keyword(w.to_owned())),
    );
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use postcell_store::{BlobId, MessageMeta};

    fn snapshot(uids: &[i64]) -> MailboxSnapshot {
        MailboxSnapshot {
            uid_validity: 7,
            uid_next: uids.last().map_or(1, |u| u + 1),
            highest_modseq: 10,
            messages: uids
                .iter()
                .map(|&uid| MessageFlags {
                    uid,
                    modseq: 5,
                    flags: 0,
                    keywords: String::new(),
                })
                .collect(),
        }
    }

    fn mailbox(uids: &[i64]) -> SelectedMailbox {
        let (sender, receiver) = broadcast::channel(4);
        drop(sender);
        SelectedMailbox::new(1, false, snapshot(uids), receiver)
    }

    fn row(uid: i64, modseq: i64, flags: i64) -> MessageMeta {
        MessageMeta {
            uid,
            modseq,
            flags,
            keywords: String::new(),
            size: 1,
            internal_date: 0,
            blob_id: BlobId::of(b""),
        }
    }

    fn changes(changed: Vec<MessageMeta>, expunged: Vec<i64>, highest: i64) -> MailboxChanges {
        MailboxChanges {
            changed,
            expunged,
            highest_modseq: highest,
            uid_next: 0,
        }
    }

    fn set(text: &str) -> MessageSet {
        let input = format!("a FETCH {text} FLAGS\r\n");
        let command = postcell_imap_proto::parse_command(
            input.as_bytes(),
            &Default::default(),
            Default::default(),
        )
        .unwrap();
        match command.body {
            postcell_imap_proto::CommandBody::Fetch(fetch) => fetch.set,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_shared_map_brought_forward_equals_a_fresh_read_and_others_keep_theirs() {
        let first = mailbox(&[1, 2, 3, 4]);
        let shared = first.shared().unwrap();
        let (sender, receiver) = broadcast::channel(4);
        drop(sender);
        let mut second = SelectedMailbox::from_shared(1, false, shared.clone(), receiver);
        assert!(Arc::ptr_eq(&first.messages, &second.messages));
        // Since MODSEQ 10: message 2 flagged, 3 expunged, 5 delivered.
        second.apply(
            changes(vec![row(2, 11, flags::FLAGGED), row(5, 12, 0)], vec![3], 12),
            true,
        );
        assert_eq!(
            second.messages().iter().map(|m| m.uid).collect::<Vec<_>>(),
            [1, 2, 4, 5]
        );
        assert!(second.message(1).unwrap().has(flags::FLAGGED));
        assert_eq!(second.known_modseq(), 12);
        // The first session's map is as it was, and the shared one too.
        assert_eq!(first.len(), 4);
        assert!(!first.message(1).unwrap().has(flags::FLAGGED));
        assert_eq!(shared.messages.len(), 4);
        // Changes already in a map (its own STORE) copy nothing.
        let mut third = SelectedMailbox::from_shared(1, false, second.shared().unwrap(), {
            let (sender, receiver) = broadcast::channel(4);
            drop(sender);
            receiver
        });
        third.apply(changes(vec![row(2, 11, flags::FLAGGED)], vec![], 12), true);
        assert!(Arc::ptr_eq(&second.messages, &third.messages));
    }

    #[test]
    fn a_map_with_an_unreported_expunge_is_not_shared() {
        let mut m = mailbox(&[1, 2, 3]);
        m.apply(changes(vec![], vec![2], 11), false);
        assert!(m.shared().is_none());
        m.take_expunged();
        assert_eq!(m.shared().unwrap().modseq, 11);
    }

    #[test]
    fn sets_resolve_against_numbers_and_uids() {
        let m = mailbox(&[3, 5, 9, 12]);
        assert_eq!(m.resolve(&set("2:3"), false), Some(vec![1, 2]));
        assert_eq!(m.resolve(&set("3:*"), false), Some(vec![2, 3]));
        assert_eq!(m.resolve(&set("5"), false), None);
        assert_eq!(m.resolve(&set("4:10"), true), Some(vec![1, 2]));
        assert_eq!(m.resolve(&set("10:*"), true), Some(vec![3]));
        assert_eq!(m.resolve(&set("100:200"), true), Some(vec![]));
        // `n:*` with n above the largest UID still names the last message (RFC 9051 9).
        assert_eq!(m.resolve(&set("20:*"), true), Some(vec![3]));
        let empty = mailbox(&[]);
        assert_eq!(empty.resolve(&set("1:*"), false), Some(vec![]));
        assert_eq!(empty.resolve(&set("1"), false), None);
    }

    #[test]
    fn expunges_wait_until_they_may_be_reported() {
        let mut m = mailbox(&[1, 2, 3, 4]);
        // Another session expunged UID 2 and set \Seen on UID 4, during a FETCH.
        let updates = m.apply(changes(vec![row(4, 11, flags::SEEN)], vec![2], 12), false);
        assert!(updates.expunged.is_empty());
        assert_eq!(updates.flags_changed, vec![3]);
        assert_eq!(updates.exists, None);
        assert_eq!(m.len(), 4, "message numbers keep naming the same messages");
        assert!(m.message(1).unwrap().expunged);
        assert_eq!(m.known_modseq(), 12);
        // At the next NOOP the expunge is reported, and numbers shift.
        let updates = m.apply(changes(vec![], vec![], 12), true);
        assert_eq!(updates.expunged, vec![(2, 2)]);
        assert_eq!(updates.exists, None);
        assert_eq!(m.len(), 3);
        assert_eq!(m.index_of_uid(4), Some(2));
    }

    #[test]
    fn expunges_are_numbered_as_sent_highest_first() {
        let mut m = mailbox(&[1, 2, 3, 4, 5]);
        let updates = m.apply(changes(vec![], vec![2, 4, 5], 11), true);
        assert_eq!(updates.expunged, vec![(5, 5), (4, 4), (2, 2)]);
        assert_eq!(
            m.messages().iter().map(|m| m.uid).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }

    #[test]
    fn new_messages_are_appended_and_counted() {
        let mut m = mailbox(&[1, 2]);
        let updates = m.apply(
            changes(vec![row(3, 11, 0), row(4, 12, flags::FLAGGED)], vec![], 12),
            true,
        );
        assert_eq!(updates.exists, Some(4));
        assert!(updates.flags_changed.is_empty());
        assert!(m.message(3).unwrap().has(flags::FLAGGED));
        // A message added and expunged between two syncs is never seen.
        let updates = m.apply(changes(vec![], vec![5], 14), true);
        assert!(updates.is_empty(), "{updates:?}");
        // New messages and an expunge together: EXISTS is the count after the expunge.
        let updates = m.apply(changes(vec![row(6, 15, 0)], vec![1], 15), true);
        assert_eq!(updates.expunged, vec![(1, 1)]);
        assert_eq!(updates.exists, Some(4));
    }

    #[test]
    fn own_changes_are_not_reported_again() {
        let mut m = mailbox(&[1, 2]);
        assert_eq!(m.update_own(2, 11, flags::SEEN, ""), Some(1));
        assert_eq!(m.known_modseq(), 10);
        let updates = m.apply(changes(vec![row(2, 11, flags::SEEN)], vec![], 11), true);
        assert!(updates.is_empty(), "{updates:?}");
        let removed = m.remove_own(&[1, 2]);
        assert_eq!(removed, vec![(2, 2), (1, 1)]);
        assert_eq!(m.len(), 0);
        // The tombstones of our own expunge come back from the store: ignored.
        let updates = m.apply(changes(vec![], vec![1, 2], 12), true);
        assert!(updates.is_empty(), "{updates:?}");
    }

    #[test]
    fn hints_for_other_mailboxes_are_ignored() {
        let (sender, receiver) = broadcast::channel(2);
        let mut m = SelectedMailbox::new(1, false, snapshot(&[1]), receiver);
        assert!(!m.drain_hints());
        let other = Change::Mailbox {
            account_id: 1,
            mailbox_id: 2,
            modseq: 3,
        };
        sender.send(other).unwrap();
        assert!(!m.drain_hints());
        sender
            .send(Change::Mailbox {
                account_id: 1,
                mailbox_id: 1,
                modseq: 3,
            })
            .unwrap();
        assert!(m.drain_hints());
        assert!(!m.drain_hints());
        // A receiver that fell behind may have missed one of ours.
        for _ in 0..3 {
            sender.send(other).unwrap();
        }
        assert!(m.drain_hints());
    }
}
