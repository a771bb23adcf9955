//! EXPUNGE and UID EXPUNGE (RFC 9051 section 6.4.3, RFC 4315): remove `\Deleted`
//! messages and report each removal, as `* n EXPUNGE` highest number first (so every
//! number is right when sent), or as one `* VANISHED` once QRESYNC is on.
//!
//! ```text
//! C: A202 EXPUNGE
//! S: * 4 EXPUNGE
//! S: * 3 EXPUNGE
//! S: A202 OK EXPUNGE completed
//! ```

use postcell_imap_proto::MessageSet;
use postcell_imap_proto::response::StatusResponse;
use postcell_store::UidRanges;

use crate::command::select::report_expunged;
use crate::reply::{self, unavailable};
use crate::selected::SelectedMailbox;
use crate::session::Session;
use crate::state::Login;

pub(crate) async fn expunge(
    session: &mut Session,
    tag: String,
    login: &Login,
    selected: &mut SelectedMailbox,
    uids: Option<&MessageSet>,
) {
    if selected.read_only {
        return reply::read_only(session, tag);
    }
    let range = match uids {
        None => UidRanges::all(),
        Some(set) => {
            let uids: Vec<i64> = selected
                .resolve(set, true)
                .unwrap_or_default()
                .iter()
                .filter_map(|&i| selected.message(i))
                .map(|m| i64::from(m.uid))
                .collect();
            UidRanges::from_uids(&uids)
        }
    };
    let store = session.store().clone();
    let expunged = match store
        .expunge_deleted(login.account_id, selected.mailbox_id, &range)
        .await
    {
        Ok(expunged) => expunged,
        Err(error) => return unavailable(session, tag, &error),
    };
    let removed = selected.remove_own(&expunged);
    report_expunged(session, &removed);
    session.write_status(StatusResponse::ok(Some(tag), "EXPUNGE completed"));
}
