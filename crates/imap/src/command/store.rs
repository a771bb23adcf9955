//! STORE and UID STORE, with `.SILENT` and `UNCHANGEDSINCE` (RFC 7162 `[MODIFIED]`).
//!
//! ```text
//! C: a5 STORE 1 +FLAGS (\Deleted)
//! S: * 1 FETCH (FLAGS (\Deleted \Seen))
//! S: a5 OK STORE completed
//! ```

use postcell_imap_proto::command::{StoreAction, StoreCommand};
use postcell_imap_proto::response::{Code, Data, FetchItem, StatusResponse};
use postcell_imap_proto::{Flag, SequenceSet};
use postcell_store::{FlagChange, FlagOperation, UidRanges, flags};

use crate::command::mailbox::unavailable;
use crate::selected::{SelectedMailbox, flag_list};
use crate::session::{Login, Session};

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
        session.write_status(
            StatusResponse::no(Some(tag), "Mailbox is read-only").with_code(Code::ReadOnly),
        );
        return;
    }
    let Some(indexes) = selected.resolve(&command.set, command.uid) else {
        session.write_status(StatusResponse::bad(
            Some(tag),
            "Invalid message sequence number",
        ));
        return;
    };
    let (bits, keywords) = flag_bits(&command.flags);
    let change = FlagChange {
        operation: match command.action {
            StoreAction::Add => FlagOperation::Add,
            StoreAction::Remove => FlagOperation::Remove,
            StoreAction::Replace => FlagOperation::Replace,
        },
        flags: bits,
        keywords,
        unchanged_since: command.unchanged_since.map(|n| n as i64),
    };
    let uids: Vec<i64> = indexes.iter().map(|&i| selected.messages[i].uid).collect();
    let store = session.store().clone();
    let outcome = match store
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
    };
    for updated in outcome.updated {
        let Some(index) = selected.messages.iter().position(|m| m.uid == updated.uid) else {
            continue;
        };
        selected.messages[index] = updated;
        if !command.silent {
            let meta = &selected.messages[index];
            let mut items = vec![FetchItem::Flags(flag_list(meta))];
            if command.uid {
                items.insert(0, FetchItem::Uid(meta.uid as u32));
            }
            if command.unchanged_since.is_some() {
                items.push(FetchItem::ModSeq(meta.modseq as u64));
            }
            session.write_data(&Data::Fetch {
                seq: index as u32 + 1,
                items,
            });
        }
    }
    let modified: Vec<u32> = if command.uid {
        outcome.modified.iter().map(|&uid| uid as u32).collect()
    } else {
        outcome
            .modified
            .iter()
            .filter_map(|&uid| selected.messages.iter().position(|m| m.uid == uid))
            .map(|i| i as u32 + 1)
            .collect()
    };
    let mut status = StatusResponse::ok(Some(tag), "STORE completed");
    if let Some(set) = SequenceSet::from_numbers(modified) {
        status = status.with_code(Code::Modified(set));
    }
    session.write_status(status);
}
