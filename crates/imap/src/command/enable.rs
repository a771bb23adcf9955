//! ENABLE (RFC 5161): CONDSTORE, QRESYNC (RFC 7162), UTF8=ACCEPT (RFC 6855) and
//! IMAP4rev2 (RFC 9051). Only in the authenticated state, before a mailbox is selected.
//!
//! ```text
//! C: t2 ENABLE QRESYNC UTF8=ACCEPT X-UNKNOWN
//! S: * ENABLED QRESYNC UTF8=ACCEPT
//! S: t2 OK ENABLE completed
//! ```
//!
//! `* ENABLED` lists what this command turned on; unknown names and what was already
//! on are left out, as RFC 5161 asks.

use postcell_imap_proto::response::{Data, StatusResponse};

use crate::session::Session;

pub(crate) fn enable(session: &mut Session, tag: String, names: &[String]) {
    let mut enabled = Vec::new();
    for name in names {
        let upper = name.to_ascii_uppercase();
        let newly = match upper.as_str() {
            "CONDSTORE" => !std::mem::replace(&mut session.enabled.condstore, true),
            "QRESYNC" => {
                // RFC 7162 section 3.2.3: QRESYNC implies CONDSTORE.
                session.enabled.condstore = true;
                !std::mem::replace(&mut session.enabled.qresync, true)
            }
            "UTF8=ACCEPT" => !std::mem::replace(&mut session.enabled.utf8_accept, true),
            "IMAP4REV2" => !std::mem::replace(&mut session.enabled.imap4rev2, true),
            _ => false,
        };
        if newly && !enabled.contains(&upper) {
            enabled.push(upper);
        }
    }
    // Both switch mailbox names to UTF-8 (RFC 6855 section 3, RFC 9051 section 5.1).
    if session.enabled.utf8_accept || session.enabled.imap4rev2 {
        session.set_utf8();
    }
    session.write_data(&Data::Enabled(enabled));
    session.write_status(StatusResponse::ok(Some(tag), "ENABLE completed"));
}
