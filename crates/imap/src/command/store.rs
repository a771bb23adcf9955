//! STORE and UID STORE (RFC 9051 section 6.4.6), with `.SILENT` and CONDSTORE's
//! UNCHANGEDSINCE (RFC 7162 section 3.1.3).
//!
//! ```text
//! C: a5 STORE 1 +FLAGS (\Deleted)
//! S: * 1 FETCH (FLAGS (\Deleted \Seen))
//! S: a5 OK STORE completed
//! C: d105 UID STORE 7,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\Deleted)
//! S: * 5 FETCH (UID 9 MODSEQ (320162350))
//! S: d105 OK [MODIFIED 7] Conditional STORE failed for some messages
//! ```
//!
//! Once CONDSTORE is on, every FETCH response a STORE causes carries the new MODSEQ,
//! and `.SILENT` still sends one with UID and MODSEQ for each message it changed
//! (RFC 7162 section 3.1.3), so the client learns the MODSEQ of its own change.

use postcell_imap_proto::command::{StoreAction, StoreCommand};
use postcell_imap_proto::response::{Code, Data, FetchItem, StatusResponse};
use postcell_imap_proto::{Flag, SequenceSet};
use postcell_store::{FlagChange, FlagOperation, UidRanges, flags};

use crate::reply::{self, unavailable};
use crate::selected::SelectedMailbox;
use crate::session::Session;
use crate::state::Login;

/// The store's flag bits and keywords for IMAP flags. `\Recent` and unknown system
/// flags cannot be stored (RFC 9051 section 2.3.2) and are left out.
pub(crate) fn flag_bits(list: &[Flag]) -> (i64, Vec<String>) {
    let mut bits = 0;
    let mut keywords = Vec::new();
    for flag in list {
        match flag {
            Flag::Seen => bits |= flags::SEEN,
            Flag::Answered => bits |= flags::ANSWERED,
            Flag::Flagged => bits |= flags::FLAGGED,
            Flag::Deleted => bits |= flags::DELETED,
            Flag::Draft => bits |= flags::DRAFT,
            Flag::Keyword(word) => keywords.push(word.clone()),
            Flag::Extension(_) => {}
        }
    }
    (bits, keywords)
}

pub(crate) async fn store(
    session: &mut Session,
    tag: String,
    login: &Login,
    selected: &mut SelectedMailbox,
    command: StoreCommand,
) {
    if selected.read_only {
        return reply::read_only(session, tag);
    }
    let Some(indexes) = selected.resolve(&command.set, command.uid) else {
        return reply::bad_sequence(session, tag);
    };
    if command.unchanged_since.is_some() {
        // RFC 7162 section 3.1: a CONDSTORE-enabling command.
        session.enabled.condstore = true;
    }
    let (bits, keywords) = flag_bits(&command.flags);
    let change = FlagChange {
        operation: match command.action {
            StoreAction::Add => FlagOperation::Add,
            StoreAction::Remove => FlagOperation::Remove,
            StoreAction::Replace => FlagOperation::Replace,
        },
        flags: bits,
        keywords,
        unchanged_since: command
            .unchanged_since
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
    };
    let uids: Vec<i64> = indexes
        .iter()
        .filter_map(|&i| selected.message(i))
        .filter(|m| !m.expunged)
        .map(|m| i64::from(m.uid))
        .collect();
    let store = session.store().clone();
    let outcome = if uids.is_empty() {
        Default::default()
    } else {
        match store
            .store_flags(
                login.account_id,
                selected.mailbox_id,
                &UidRanges::from_uids(&uids),
                &change,
            )
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => return unavailable(session, tag, &error),
        }
    };
    let mut changed: Vec<usize> = outcome
        .updated
        .iter()
        .filter_map(|row| selected.update_own(row.uid, row.modseq, row.flags, &row.keywords))
        .collect();
    changed.sort_unstable();
    let modified: Vec<u32> = outcome
        .modified
        .iter()
        .filter_map(|&uid| u32::try_from(uid).ok())
        .collect();
    let condstore = session.enabled.condstore;
    for &index in &indexes {
        let Some(message) = selected.message(index) else {
            continue;
        };
        let was_changed = changed.binary_search(&index).is_ok();
        let failed = modified.contains(&message.uid);
        if message.expunged || failed {
            continue;
        }
        let mut items = Vec::new();
        if command.uid || condstore {
            items.push(FetchItem::Uid(message.uid));
        }
        if command.silent {
            // .SILENT asks for no flags; CONDSTORE still owes the new MODSEQ.
            if !(condstore && was_changed) {
                continue;
            }
        } else {
            items.push(FetchItem::Flags(message.flag_list()));
        }
        if condstore {
            items.push(FetchItem::ModSeq(message.modseq));
        }
        session.write_data(&Data::Fetch {
            seq: index as u32 + 1,
            items,
        });
    }
    let modified_set = if command.uid {
        SequenceSet::from_numbers(modified)
    } else {
        SequenceSet::from_numbers(
            modified
                .iter()
                .filter_map(|&uid| selected.index_of_uid(uid))
                .map(|i| i as u32 + 1),
        )
    };
    let status = match modified_set {
        Some(set) => StatusResponse::ok(Some(tag), "Conditional STORE failed for some messages")
            .with_code(Code::Modified(set)),
        None => StatusResponse::ok(Some(tag), "STORE completed"),
    };
    session.write_status(status);
}
