//! EXPUNGE and UID EXPUNGE (RFC 4315): remove `\Deleted` messages and report each
//! removal as `* n EXPUNGE`, highest number first so the others stay valid.

use postcell_imap_proto::MessageSet;
use postcell_imap_proto::response::{Code, Data, StatusResponse};
use postcell_store::UidRanges;

use crate::command::mailbox::unavailable;
use crate::selected::SelectedMailbox;
use crate::session::{Login, Session};

pub(crate) async fn expunge(
    session: &mut Session,
    tag: String,
    login: &Login,
    selected: &mut SelectedMailbox,
    uids: Option<&MessageSet>,
) {
    if selected.read_only {
        session.write_status(
            StatusResponse::no(Some(tag), "Mailbox is read-only").with_code(Code::ReadOnly),
        );
        return;
    }
    let range = match uids {
        None => UidRanges::all(),
        Some(set) => match selected.resolve(set, true) {
            Some(indexes) => UidRanges::from_uids(
                &indexes
                    .iter()
                    .map(|&i| selected.messages[i].uid)
                    .collect::<Vec<_>>(),
            ),
            None => UidRanges::default(),
        },
    };
    let store = session.store().clone();
    let expunged = match store
        .expunge_deleted(login.account_id, selected.mailbox_id, &range)
        .await
    {
        Ok(expunged) => expunged,
        Err(error) => return unavailable(session, tag, &error),
    };
    let mut seq = selected.messages.len();
    while seq > 0 {
        if expunged.contains(&selected.messages[seq - 1].uid) {
            selected.messages.remove(seq - 1);
            session.write_data(&Data::Expunge(seq as u32));
        }
        seq -= 1;
    }
    session.write_status(StatusResponse::ok(Some(tag), "EXPUNGE completed"));
}
