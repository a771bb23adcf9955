//! COPY and MOVE (RFC 6851), with their UID forms and `[COPYUID]` (RFC 4315). MOVE
//! reports the moved messages as expunged.
//!
//! ```text
//! C: a7 UID MOVE 4:5 Archive
//! S: * OK [COPYUID 1700000000 4:5 12:13] Moved
//! S: * 2 EXPUNGE
//! S: * 2 EXPUNGE
//! S: a7 OK MOVE completed
//! ```

use postcell_imap_proto::response::{Code, Data, StatusResponse};
use postcell_imap_proto::{MailboxName, MessageSet, SequenceSet};
use postcell_store::{CopyOutcome, UidRanges};

use crate::command::mailbox::unavailable;
use crate::selected::SelectedMailbox;
use crate::session::{Login, Session};

#[allow(clippy::too_many_arguments)]
pub(crate) async fn copy(
    session: &mut Session,
    tag: String,
    login: &Login,
    selected: &mut SelectedMailbox,
    uid: bool,
    set: &MessageSet,
    destination: &MailboxName,
    remove_source: bool,
) {
    let command = if remove_source { "MOVE" } else { "COPY" };
    if remove_source && selected.read_only {
        session.write_status(
            StatusResponse::no(Some(tag), "Mailbox is read-only").with_code(Code::ReadOnly),
        );
        return;
    }
    let Some(indexes) = selected.resolve(set, uid) else {
        session.write_status(StatusResponse::bad(
            Some(tag),
            "Invalid message sequence number",
        ));
        return;
    };
    let store = session.store().clone();
    let target = match store
        .mailbox_by_name(login.account_id, destination.as_str())
        .await
    {
        Ok(Some(mailbox)) => mailbox,
        Ok(None) => {
            session.write_status(
                StatusResponse::no(Some(tag), "No such mailbox").with_code(Code::TryCreate),
            );
            return;
        }
        Err(error) => return unavailable(session, tag, &error),
    };
    let uids: Vec<i64> = indexes.iter().map(|&i| selected.messages[i].uid).collect();
    let outcome = match store
        .copy_messages(
            login.account_id,
            selected.mailbox_id,
            &UidRanges::from_uids(&uids),
            target.id,
            remove_source,
        )
        .await
    {
        Ok(outcome) => outcome,
        Err(error) => return unavailable(session, tag, &error),
    };
    let (uid_validity, pairs) = match outcome {
        CopyOutcome::Copied {
            uid_validity,
            pairs,
        } => (uid_validity, pairs),
        CopyOutcome::OverQuota => {
            session.write_status(
                StatusResponse::no(Some(tag), "Mailbox is over quota").with_code(Code::OverQuota),
            );
            return;
        }
    };
    let copy_uid = SequenceSet::from_numbers(pairs.iter().map(|&(from, _)| from as u32)).zip(
        SequenceSet::from_numbers(pairs.iter().map(|&(_, to)| to as u32)),
    );
    let code = copy_uid.map(|(source, destination)| Code::CopyUid {
        uid_validity: uid_validity as u32,
        source,
        destination,
    });
    if !remove_source {
        let mut status = StatusResponse::ok(Some(tag), "COPY completed");
        if let Some(code) = code {
            status = status.with_code(code);
        }
        session.write_status(status);
        return;
    }
    // RFC 6851 section 4.3: COPYUID goes in an untagged OK before the expunges.
    if let Some(code) = code {
        session.write_status(StatusResponse::ok(None, "Moved").with_code(code));
    }
    let moved: Vec<i64> = pairs.iter().map(|&(from, _)| from).collect();
    let mut seq = selected.messages.len();
    while seq > 0 {
        if moved.contains(&selected.messages[seq - 1].uid) {
            selected.messages.remove(seq - 1);
            session.write_data(&Data::Expunge(seq as u32));
        }
        seq -= 1;
    }
    session.write_status(StatusResponse::ok(
        Some(tag),
        format!("{command} completed"),
    ));
}
