//! Postcell's IMAP server: a first vertical slice of RFC 9051 / RFC 3501.
//!
//! Parsing and response encoding belong to `postcell-imap-proto`; this crate runs the
//! Not-Authenticated / Authenticated / Selected / Logout states over one
//! [`Connection`] (`session`) and keeps the per-session view of the selected mailbox
//! (`selected`). SEARCH, SORT and THREAD (`command::search`, `command::sort`,
//! `command::thread`) evaluate their keys over that view and the store's search index,
//! and sort and thread from the cached summaries: they never read message blobs.
//!
//! ```text
//! S: * OK [CAPABILITY IMAP4rev1 ...] mail.example.org IMAP server ready
//! C: a1 LOGIN alice@example.org secret
//! S: a1 OK [CAPABILITY ...] Logged in
//! C: a2 SELECT INBOX
//! C: a3 FETCH 1:* (FLAGS UID RFC822.SIZE)
//! C: a4 LOGOUT
//! ```

mod command;
mod selected;
mod session;

use std::sync::Arc;
use std::time::Duration;

use postcell_directory::Directory;
use postcell_net::{Connection, TlsAcceptor};
use tracing::Instrument;

/// What a listener sends, instead of the greeting, when it has no room for another
/// connection.
pub const BUSY_REPLY: &[u8] = b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n";

#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// The name in the greeting and the farewell.
    pub hostname: String,
    /// How long a client may stay silent; RFC 9051 section 5.4 asks for at least 30 minutes.
    pub idle_timeout: Duration,
    /// Allow LOGIN and AUTHENTICATE PLAIN on connections that are neither TLS nor from
    /// a loopback address (off by default, RFC 9051 section 11.1).
    pub allow_plaintext_auth: bool,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            hostname: "localhost".to_owned(),
            idle_timeout: Duration::from_secs(30 * 60),
            allow_plaintext_auth: false,
        }
    }
}

/// The IMAP service of one node, shared by all its sessions.
pub struct ImapServer {
    config: ImapConfig,
    directory: Directory,
    tls: Option<TlsAcceptor>,
}

impl ImapServer {
    /// `tls` enables STARTTLS; for implicit TLS (port 993) the listener does the
    /// handshake and the session sees a connection that is already TLS.
    pub fn new(
        config: ImapConfig,
        directory: Directory,
        tls: Option<TlsAcceptor>,
    ) -> Arc<ImapServer> {
        Arc::new(ImapServer {
            config,
            directory,
            tls,
        })
    }

    pub fn config(&self) -> &ImapConfig {
        &self.config
    }

    /// Runs one IMAP session to its end.
    pub async fn handle(self: Arc<Self>, connection: Connection) {
        let span = tracing::info_span!("imap", user = tracing::field::Empty);
        session::run(self, connection).instrument(span).await
    }
}
