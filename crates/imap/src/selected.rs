//! The per-session view of the selected mailbox: the sequence number to UID map and
//! each message's flags and mod-sequence as last reported to the client.

use postcell_imap_proto::response::{Data, FetchItem};
use postcell_imap_proto::{Flag, MessageSet};
use postcell_store::{MessageMeta, Store, flags};

use crate::command::search::SearchState;

pub(crate) struct SelectedMailbox {
    pub mailbox_id: i64,
    pub read_only: bool,
    /// Index `n - 1` holds message `n`, in UID order.
    pub messages: Vec<MessageMeta>,
    /// The saved search result (`$`) and how far the mailbox is known to be indexed.
    pub search: SearchState,
}

impl SelectedMailbox {
    pub async fn open(
        store: &Store,
        mailbox_id: i64,
        read_only: bool,
    ) -> postcell_store::Result<SelectedMailbox> {
        let mut messages = store.mailbox_messages(mailbox_id).await?;
        messages.sort_by_key(|m| m.uid);
        Ok(SelectedMailbox {
            mailbox_id,
            read_only,
            messages,
            search: SearchState::default(),
        })
    }

    /// Reads the mailbox again and reports what others changed: `EXPUNGE` (only when
    /// `allow_expunge`; RFC 9051 section 7.5.1 forbids them during FETCH, STORE and
    /// SEARCH), `EXISTS` and `FETCH (FLAGS)`. A full reload for now; `changes_since` is
    /// the next step.
    pub async fn sync(
        &mut self,
        store: &Store,
        allow_expunge: bool,
    ) -> postcell_store::Result<Vec<Data>> {
        let mut current = store.mailbox_messages(self.mailbox_id).await?;
        current.sort_by_key(|m| m.uid);
        let mut updates = Vec::new();
        if allow_expunge {
            let mut seq = self.messages.len();
            while seq > 0 {
                let uid = self.messages[seq - 1].uid;
                if current.binary_search_by_key(&uid, |m| m.uid).is_err() {
                    self.messages.remove(seq - 1);
                    updates.push(Data::Expunge(seq as u32));
                }
                seq -= 1;
            }
        }
        for (index, known) in self.messages.iter_mut().enumerate() {
            if let Ok(at) = current.binary_search_by_key(&known.uid, |m| m.uid) {
                let now = &current[at];
                if now.flags != known.flags || now.keywords != known.keywords {
                    updates.push(Data::Fetch {
                        seq: index as u32 + 1,
                        items: vec![
                            FetchItem::Uid(now.uid as u32),
                            FetchItem::Flags(flag_list(now)),
                        ],
                    });
                }
                *known = now.clone();
            }
        }
        let last_uid = self.messages.last().map_or(0, |m| m.uid);
        let before = self.messages.len();
        self.messages
            .extend(current.into_iter().filter(|m| m.uid > last_uid));
        if self.messages.len() != before {
            updates.push(Data::Exists(self.messages.len() as u32));
        }
        Ok(updates)
    }

    /// The indexes (`seq - 1`) a sequence or UID set names, in order. `None` when the
    /// set names a sequence number beyond the mailbox (RFC 9051: a BAD).
    pub fn resolve(&self, set: &MessageSet, uid: bool) -> Option<Vec<usize>> {
        let set = match set {
            MessageSet::Set(set) => set,
            MessageSet::SavedResult => return Some(self.saved_result()),
        };
        if uid {
            let largest = self.messages.last().map_or(0, |m| m.uid as u32);
            Some(
                self.messages
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| set.contains(m.uid as u32, largest))
                    .map(|(i, _)| i)
                    .collect(),
            )
        } else if self.messages.is_empty() {
            // `1:*` in an empty mailbox names nothing rather than a missing message.
            Some(Vec::new()).filter(|_: &Vec<usize>| set.has_largest())
        } else {
            let largest = self.messages.len() as u32;
            let mut indexes = Vec::new();
            for range in set.resolve(largest) {
                if *range.end() > largest || *range.start() == 0 {
                    return None;
                }
                indexes.extend(range.map(|n| n as usize - 1));
            }
            indexes.sort_unstable();
            indexes.dedup();
            Some(indexes)
        }
    }
}

/// The flags of a message as IMAP names them.
pub(crate) fn flag_list(meta: &MessageMeta) -> Vec<Flag> {
    let mut list = Vec::new();
    for (bit, flag) in [
        (flags::SEEN, Flag::Seen),
        (flags::ANSWERED, Flag::Answered),
        (flags::FLAGGED, Flag::Flagged),
        (flags::DELETED, Flag::Deleted),
        (flags::DRAFT, Flag::Draft),
    ] {
        if meta.flags & bit != 0 {
            list.push(flag);
        }
    }
    list.extend(
        meta.keywords
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| Flag::Keyword(w.to_owned())),
    );
    list
}
