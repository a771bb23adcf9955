//! APPEND (RFC 9051 section 6.3.12) with `[APPENDUID]` (RFC 4315), LITERAL+ (RFC 7888)
//! and BINARY's literal8 (RFC 3516). The message is acknowledged only once it is
//! committed; one over the size limit was refused by the reader before it was sent.
//!
//! ```text
//! C: a6 APPEND Drafts (\Draft) {310+}
//! C: ...
//! S: a6 OK [APPENDUID 1700000000 7] APPEND completed
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use postcell_imap_proto::SequenceSet;
use postcell_imap_proto::command::AppendCommand;
use postcell_imap_proto::response::{Code, StatusResponse};
use postcell_store::{AppendOutcome, NewMessage};

use crate::command::select::sync;
use crate::command::store::flag_bits;
use crate::reply::unavailable;
use crate::selected::SelectedMailbox;
use crate::session::Session;

pub(crate) async fn append(
    session: &mut Session,
    tag: String,
    account_id: i64,
    command: AppendCommand,
    selected: Option<&mut SelectedMailbox>,
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
    // Summarised now, so FETCH of ENVELOPE or BODYSTRUCTURE never parses it again.
    let summary = postcell_mime::summarize(&command.message);
    let summary = summary.to_bytes();
    // Rule 1: the blob is durable before the row that points to it.
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
    };
    match store.append(account_id, mailbox.id, &message).await {
        Ok(AppendOutcome::Appended {
            uid_validity, uid, ..
        }) => {
            metrics::counter!("postcell_imap_appends_total").increment(1);
            // RFC 9051 section 6.3.12: an APPEND to the selected mailbox is reported.
            if let Some(selected) = selected {
                sync(session, selected, true).await;
            }
            let mut status = StatusResponse::ok(Some(tag), "APPEND completed");
            if let Some(uids) = SequenceSet::from_numbers([u32::try_from(uid).unwrap_or(0)]) {
                status = status.with_code(Code::AppendUid {
                    uid_validity: u32::try_from(uid_validity).unwrap_or(0),
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
