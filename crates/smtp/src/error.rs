use thiserror::Error;

use postcell_net::LineError;

/// Why a session ended before QUIT. Refusals of commands are not errors here: they
/// are replies ([`crate::reply`]); store failures become `451`/`454` replies too.
#[derive(Debug, Error)]
pub(crate) enum SmtpError {
    /// Reading from the client failed: closed, idle, shutting down, or I/O.
    #[error("{0}")]
    Read(#[from] LineError),
    #[error("write failed: {0}")]
    Write(#[from] std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
}
