//! Postcell's IMAP server: IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) with the
//! extensions clients rely on (see `docs/protocols.md` for the list and every reply).
//!
//! Parsing and response encoding belong to `postcell-imap-proto`. This crate has three
//! layers, kept apart:
//!
//! - I/O: [`session`] owns the [`Connection`] and the command reader: it frames
//!   commands, literals, SASL responses and IDLE's `DONE`, and writes responses.
//! - State: [`state`] is the Not-Authenticated / Authenticated / Selected / Logout enum
//!   of RFC 9051 section 3, and runs each command in the state that allows it ("SELECT
//!   before LOGIN" is answered by the type, not by a flag); [`selected`] is the
//!   session's own sequence map of the selected mailbox, kept up to date from the
//!   store's changes.
//! - Commands: one module per group in `command/`, each running its commands against
//!   the store and writing the responses. SEARCH, SORT and THREAD (`command::search`,
//!   `command::sort`, `command::thread`) evaluate their keys over the sequence map and
//!   the store's search index, and sort and thread from the cached summaries: they
//!   never read message blobs.
//!
//! ```text
//! S: * OK [CAPABILITY IMAP4rev2 IMAP4rev1 ...] mail.example.org IMAP server ready
//! C: a1 AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==
//! S: a1 OK [CAPABILITY ...] Logged in
//! C: a2 ENABLE QRESYNC
//! C: a3 SELECT INBOX (QRESYNC (1700000000 42))
//! C: a4 IDLE
//! S: + idling
//! S: * 4 EXISTS
//! C: DONE
//! ```

mod command;
mod map_cache;
mod reply;
mod selected;
mod session;
mod state;
mod summary;

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
    /// How long a client may stay silent (IDLE included); RFC 9051 section 5.4 asks for
    /// at least 30 minutes.
    pub idle_timeout: Duration,
    /// Allow LOGIN and AUTHENTICATE PLAIN/LOGIN on connections that are neither TLS nor
    /// from a loopback address (off by default, RFC 9051 section 11.1).
    pub allow_plaintext_auth: bool,
    /// The largest message APPEND accepts (advertised as APPENDLIMIT, RFC 7889); a larger
    /// literal is refused before the client sends it.
    pub max_message_size: u64,
    /// How often a session in IDLE reads the store's changes even when no change-feed
    /// hint came: the backstop for a lost hint.
    pub poll_interval: Duration,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            hostname: "localhost".to_owned(),
            idle_timeout: Duration::from_secs(30 * 60),
            allow_plaintext_auth: false,
            max_message_size: 64 * 1024 * 1024,
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// The IMAP service of one node, shared by all its sessions.
pub struct ImapServer {
    config: ImapConfig,
    directory: Directory,
    tls: Option<TlsAcceptor>,
    /// The latest sequence maps of recently selected mailboxes, shared by sessions.
    maps: map_cache::MapCache,
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
            maps: map_cache::MapCache::new(map_cache::MAX_CACHED_MESSAGES),
        })
    }

    pub fn config(&self) -> &ImapConfig {
        &self.config
    }

    /// Runs one IMAP session to its end.
    pub async fn handle(self: Arc<Self>, connection: Connection) {
        // The listener's span already names the session and the peer.
        let span = tracing::info_span!("imap", user = tracing::field::Empty);
        session::run(self, connection).instrument(span).await
    }
}
