//! Postcell's POP3 server: RFC 1939, with CAPA and response codes (RFC 2449), SASL
//! PLAIN (RFC 5034, RFC 4616) and STLS (RFC 2595).
//!
//! [`command`] turns lines into typed commands without any I/O; `session` runs the
//! AUTHORIZATION, TRANSACTION and UPDATE states over one [`Connection`]; the maildrop
//! a session works on is a snapshot taken under a cell-wide lease (`maildrop`);
//! [`reply`] holds every text the server sends.
//!
//! ```text
//! S: +OK mail.example.org POP3 server ready
//! C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHB3
//! S: +OK Logged in, maildrop has 2 messages (320 octets)
//! C: RETR 1
//! S: +OK 120 octets
//! S: ...
//! S: .
//! C: DELE 1
//! S: +OK Message 1 deleted
//! C: QUIT
//! S: +OK mail.example.org POP3 server signing off (1 messages deleted)
//! ```

pub mod command;
mod maildrop;
pub mod reply;
mod session;

use std::sync::Arc;
use std::time::Duration;

use postcell_directory::Directory;
use postcell_net::{Connection, TlsAcceptor};
use tracing::Instrument;

/// What a listener sends, instead of the greeting, when it has no room for another
/// connection (RFC 2449 `[SYS/TEMP]`).
pub const BUSY_REPLY: &[u8] = b"-ERR [SYS/TEMP] Too many connections, try again later\r\n";

#[derive(Debug, Clone)]
pub struct Pop3Config {
    /// The name in the greeting and the farewell.
    pub hostname: String,
    /// How long a client may stay silent; RFC 1939 section 3 asks for at least 10 minutes.
    pub idle_timeout: Duration,
    /// Allow USER/PASS and AUTH PLAIN on connections that are neither TLS nor from a
    /// loopback address. Off by default: passwords in the clear are for tests and
    /// trusted networks only (RFC 2595 section 2.3).
    pub allow_plaintext_auth: bool,
    /// Time to live of the maildrop lease, renewed every third of it while the session
    /// lives; a node that dies frees the maildrop after at most this long.
    pub lease_ttl: Duration,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            hostname: "localhost".to_owned(),
            idle_timeout: Duration::from_secs(10 * 60),
            allow_plaintext_auth: false,
            lease_ttl: Duration::from_secs(60),
        }
    }
}

/// The POP3 service of one node: configuration, the directory (and through it the
/// store) and the certificate for STLS. One per listener set, shared by all sessions.
pub struct Pop3Server {
    config: Pop3Config,
    directory: Directory,
    tls: Option<TlsAcceptor>,
}

impl Pop3Server {
    /// `tls` enables STLS; for implicit TLS (port 995) the listener does the handshake
    /// and the session sees a connection that is already TLS.
    pub fn new(
        config: Pop3Config,
        directory: Directory,
        tls: Option<TlsAcceptor>,
    ) -> Arc<Pop3Server> {
        Arc::new(Pop3Server {
            config,
            directory,
            tls,
        })
    }

    pub fn config(&self) -> &Pop3Config {
        &self.config
    }

    /// Runs one POP3 session to its end. The connection is closed when this returns,
    /// and the maildrop lease (if any) is given back.
    pub async fn handle(self: Arc<Self>, connection: Connection) {
        let span = tracing::info_span!("pop3", user = tracing::field::Empty);
        session::run(self, connection).instrument(span).await
    }
}
