//! Postcell's SMTP server (RFC 5321) in two roles of one session code: `mx` receives
//! mail for the local domains, checks each recipient against the directory at RCPT,
//! and writes SPF/DKIM/DMARC verdicts; `submission` (RFC 6409, RFC 8314) takes mail
//! from authenticated users, checks that the sender is theirs, rewrites `From:` when
//! asked, and DKIM-signs it. Either acknowledges a message only once it is committed
//! to the store.
//!
//! Layout (parsing apart from state apart from I/O):
//! * [`command`]: command lines to typed commands (smtp-proto plus our address rules);
//! * [`data`]: the DATA text as a state machine over lines (dot-unstuffing, the end
//!   marker, size limit, bare LF);
//! * [`reply`]: every reply text and code;
//! * `session`: the dialogue state as types and the commands that move it;
//! * `auth`: AUTH PLAIN and LOGIN;
//! * [`deliver`]: trace headers, blob, one store transaction;
//! * `forward`: account forwarding applied to the recipients, with [`srs`];
//! * [`submission`]: `From:` checks and rewriting, `Message-ID:` and `Date:`;
//! * [`dkim`]: signing; [`verdict`]: SPF, DKIM, DMARC; [`dns`]: the resolver.
//!
//! Extensions offered: PIPELINING, 8BITMIME, SMTPUTF8, SIZE, ENHANCEDSTATUSCODES,
//! STARTTLS, AUTH PLAIN LOGIN. Not offered: CHUNKING, DSN, VRFY/EXPN disclosure.

mod auth;
pub mod command;
mod config;
pub mod data;
pub mod deliver;
pub mod dkim;
pub mod dns;
mod error;
mod forward;
pub mod reply;
mod session;
pub mod srs;
pub mod submission;
pub mod verdict;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tracing::Instrument;

pub use config::{Role, SmtpConfig};

use postcell_directory::Directory;
use postcell_net::{Connection, TlsAcceptor};
use postcell_store::Store;

/// What the listener answers when it has no room for another session.
pub const BUSY_REPLY: &[u8] = b"421 4.3.2 Too many connections, try again later\r\n";

/// The SMTP service of one node, shared by all its sessions.
pub struct SmtpServer {
    config: SmtpConfig,
    directory: Directory,
    tls: Option<TlsAcceptor>,
}

impl SmtpServer {
    pub fn new(
        config: SmtpConfig,
        directory: Directory,
        tls: Option<TlsAcceptor>,
    ) -> Arc<SmtpServer> {
        Arc::new(SmtpServer {
            config,
            directory,
            tls,
        })
    }

    fn store(&self) -> &Store {
        self.directory.store()
    }

    /// Runs one session to its end. Never panics: a bug in a session is logged and
    /// ends that session only.
    pub async fn handle(self: Arc<Self>, connection: Connection) {
        let span = tracing::info_span!(
            "smtp",
            role = ?self.config.role,
            helo = tracing::field::Empty,
            tls = tracing::field::Empty,
            user = tracing::field::Empty,
        );
        let session = session::Session::new(self, connection);
        let outcome = AssertUnwindSafe(session.run())
            .catch_unwind()
            .instrument(span)
            .await;
        if outcome.is_err() {
            tracing::error!("SMTP session panicked; its connection was dropped");
        }
    }
}
