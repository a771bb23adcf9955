//! APPEND (RFC 9051 section 6.3.12) with `[APPENDUID]` (RFC 4315).
//!
//! ```text
//! C: a6 APPEND Drafts (\Draft) {310}
//! S: + Ready for literal data
//! C: ...
//! S: a6 OK [APPENDUID 1700000000 7] APPEND completed
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use postcell_imap_proto::SequenceSet;
use postcell_imap_proto::command::AppendCommand;
use postcell_imap_proto::response::{Code, StatusResponse};
use postcell_store::{AppendOutcome, NewMessage, SearchDocument};

use crate::command::mailbox::unavailable;
use crate::command::store::flag_bits;
use crate::session::Session;

pub(crate) async fn append(
    session: &mut Session,
    tag: String,
    account_id: i64,
    command: AppendCommand,
) {
    let store = session.store().clone();
    let mailbox = match store
        .mailbox_by_name(account_id, command.mailbox.as_str())
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
    let (flags, keywords) = flag_bits(&command.flags);
    let internal_date = match command.date {
        Some(date) => date.unix_timestamp(),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let size = command.message.len() as i64;
    let summary = postcell_mime::summarize(&command.message);
    // Indexed in the same transaction as the message, like a delivery.
    let search = SearchDocument::from_summary(&summary, &command.message);
    let summary = summary.to_bytes();
    let blob_id = match store.put_blob(command.message).await {
        Ok(id) => id,
        Err(error) => return unavailable(session, tag, &error),
    };
    let message = NewMessage {
        blob_id,
        size,
        flags,
        keywords,
        internal_date,
        summary: Some(summary),
        search: Some(search),
    };
    match store.append(account_id, mailbox.id, &message).await {
        Ok(AppendOutcome::Appended {
            uid_validity, uid, ..
        }) => {
            let mut status = StatusResponse::ok(Some(tag), "APPEND completed");
            if let Some(uids) = SequenceSet::from_numbers([uid as u32]) {
                status = status.with_code(Code::AppendUid {
                    uid_validity: uid_validity as u32,
                    uids,
                });
            }
            session.write_status(status);
        }
        Ok(AppendOutcome::OverQuota) => session.write_status(
            StatusResponse::no(Some(tag), "Mailbox is over quota").with_code(Code::OverQuota),
        ),
        Err(error) => unavailable(session, tag, &error),
    }
}
