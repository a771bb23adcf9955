//! COPY and MOVE (RFC 9051 sections 6.4.7 and 6.4.8, RFC 6851), their UID forms, and
//! `[COPYUID]` (RFC 4315). MOVE reports the moved messages as expunged (or VANISHED).
//!
//! ```text
//! C: a7 UID MOVE 4:5 Archive
//! S: * OK [COPYUID 1700000000 4:5 12:13] Moved
//! S: * 3 EXPUNGE
//! S: * 2 EXPUNGE
//! S: a7 OK MOVE completed
//! ```

use postcell_imap_proto::response::{Code, StatusResponse};
use postcell_imap_proto::{MailboxName, MessageSet, SequenceSet};
use postcell_store::{CopyOutcome, UidRanges};

use crate::command::select::report_expunged;
use crate::reply::{self, unavailable};
use crate::selected::SelectedMailbox;
use crate::session::Session;
use crate::state::Login;

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
        return reply::read_only(session, tag);
    }
    let Some(indexes) = selected.resolve(set, uid) else {
        return reply::bad_sequence(session, tag);
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
    if remove_source && target.id == selected.mailbox_id {
        session.write_status(
            StatusResponse::no(Some(tag), "Cannot move messages to the mailbox they are in")
                .with_code(Code::Cannot),
        );
        return;
    }
    let uids: Vec<i64> = indexes
        .iter()
        .filter_map(|&i| selected.message(i))
        .filter(|m| !m.expunged)
        .map(|m| i64::from(m.uid))
        .collect();
    if uids.is_empty() {
        session.write_status(StatusResponse::ok(
            Some(tag),
            format!("{command} completed, nothing to do"),
        ));
        return;
    }
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
    let as_u32 = |uid: i64| u32::try_from(uid).unwrap_or(0);
    let copy_uid = SequenceSet::from_numbers(pairs.iter().map(|&(from, _)| as_u32(from))).zip(
        SequenceSet::from_numbers(pairs.iter().map(|&(_, to)| as_u32(to))),
    );
    let code = copy_uid.map(|(source, destination)| Code::CopyUid {
        uid_validity: as_u32(uid_validity),
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
    let removed = selected.remove_own(&moved);
    report_expunged(session, &removed);
    session.write_status(StatusResponse::ok(Some(tag), "MOVE completed"));
}
