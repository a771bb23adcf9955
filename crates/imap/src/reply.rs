//! The one place where store errors become IMAP answers, and the answers that several
//! commands share.
//!
//! A database or blob failure is `NO [UNAVAILABLE]`: nothing the command asked for was
//! committed (the store commits whole transactions or nothing), so the client may try
//! again. The session goes on.

use postcell_imap_proto::response::{Code, StatusResponse};
use postcell_store::StoreError;

use crate::session::Session;

pub(crate) const UNAVAILABLE_TEXT: &str = "Store unavailable, try again later";

/// The answer to a command the store refused.
pub(crate) fn store_error(tag: String, error: &StoreError) -> StatusResponse {
    let (code, text) = match error {
        StoreError::NotFound(_) => (Code::Nonexistent, "No such mailbox".to_owned()),
        StoreError::AlreadyExists(_) => (Code::AlreadyExists, "Mailbox already exists".to_owned()),
        StoreError::Invalid(reason) => (Code::Cannot, reason.clone()),
        _ => {
            tracing::warn!(%error, "store error");
            metrics::counter!("postcell_imap_store_errors_total").increment(1);
            (Code::Unavailable, UNAVAILABLE_TEXT.to_owned())
        }
    };
    StatusResponse::no(Some(tag), text).with_code(code)
}

/// Writes [`store_error`].
pub(crate) fn unavailable(session: &mut Session, tag: String, error: &StoreError) {
    session.write_status(store_error(tag, error));
}

pub(crate) fn no_such_mailbox(session: &mut Session, tag: String) {
    session.write_status(
        StatusResponse::no(Some(tag), "No such mailbox").with_code(Code::Nonexistent),
    );
}

pub(crate) fn read_only(session: &mut Session, tag: String) {
    session.write_status(
        StatusResponse::no(Some(tag), "Mailbox is read-only").with_code(Code::ReadOnly),
    );
}

pub(crate) fn bad_sequence(session: &mut Session, tag: String) {
    session.write_status(StatusResponse::bad(
        Some(tag),
        "Invalid message sequence number",
    ));
}
