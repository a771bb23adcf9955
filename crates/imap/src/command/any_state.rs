//! The commands of any state (RFC 9051 section 6.1): CAPABILITY, NOOP (in
//! `crate::state`), LOGOUT, and ID (RFC 2971).
//!
//! ```text
//! C: a1 CAPABILITY
//! S: * CAPABILITY IMAP4rev2 IMAP4rev1 AUTH=SCRAM-SHA-256 SASL-IR LITERAL+ ENABLE IDLE ...
//! S: a1 OK CAPABILITY completed
//! C: a2 ID ("name" "Thunderbird")
//! S: * ID ("name" "Postcell")
//! S: a2 OK ID completed
//! ```

use postcell_imap_proto::response::{Data, StatusResponse};

use crate::session::Session;

/// The extensions served in every state after login, in the order advertised.
const EXTENSIONS: &[&str] = &[
    "LITERAL+",
    "ENABLE",
    "ID",
    "NAMESPACE",
    "IDLE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "ESEARCH",
    "SEARCHRES",
    "SORT",
    "SORT=DISPLAY",
    "ESORT",
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "CONDSTORE",
    "QRESYNC",
    "QUOTA",
    "QUOTA=RES-STORAGE",
    "UTF8=ACCEPT",
    "STATUS=SIZE",
    "BINARY",
];

/// What CAPABILITY (and the greeting, and a successful login) advertises: before login
/// the ways to log in, after it what the session can use.
pub(crate) fn capabilities(session: &Session, authenticated: bool) -> Vec<String> {
    let mut list = vec!["IMAP4rev2".to_owned(), "IMAP4rev1".to_owned()];
    if !authenticated {
        if session.server.tls.is_some() && !session.conn.is_tls() {
            list.push("STARTTLS".to_owned());
        }
        if session.plaintext_allowed() {
            list.push("AUTH=PLAIN".to_owned());
            list.push("AUTH=LOGIN".to_owned());
        } else {
            // RFC 9051 section 6.2.3: LOGIN is refused until TLS is active.
            list.push("LOGINDISABLED".to_owned());
        }
        // SCRAM never sends the password, so it is offered on any connection.
        list.push("AUTH=SCRAM-SHA-256".to_owned());
        list.push("SASL-IR".to_owned());
    }
    list.extend(EXTENSIONS.iter().map(|e| (*e).to_owned()));
    list.push(format!(
        "APPENDLIMIT={}",
        session.server.config.max_message_size
    ));
    list
}

pub(crate) fn capability(session: &mut Session, tag: String, authenticated: bool) {
    let capabilities = capabilities(session, authenticated);
    session.write_data(&Data::Capability(capabilities));
    session.write_status(StatusResponse::ok(Some(tag), "CAPABILITY completed"));
}

/// RFC 2971: the server says who it is; what the client says is logged.
pub(crate) fn id(session: &mut Session, tag: String, client: Option<&[(String, Option<String>)]>) {
    if let Some(client) = client {
        let fields: Vec<String> = client
            .iter()
            .take(30)
            .map(|(field, value)| format!("{field}={}", value.as_deref().unwrap_or("NIL")))
            .collect();
        tracing::debug!(client = %fields.join(" "), "client identified itself");
    }
    session.write_data(&Data::Id(Some(vec![
        ("name".to_owned(), Some("Postcell".to_owned())),
        (
            "version".to_owned(),
            Some(env!("CARGO_PKG_VERSION").to_owned()),
        ),
    ])));
    session.write_status(StatusResponse::ok(Some(tag), "ID completed"));
}

pub(crate) fn logout(session: &mut Session, tag: String) {
    session.write_status(StatusResponse::bye("Logging out"));
    session.write_status(StatusResponse::ok(Some(tag), "LOGOUT completed"));
}
