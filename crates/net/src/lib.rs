//! Network plumbing shared by every protocol: listeners with graceful shutdown (and
//! the drain of a whole node, [`shutdown`]), the PROXY protocol in front of a listener
//! ([`proxy`]), a line-framed [`Connection`] that is the only thing touching socket
//! bytes, STARTTLS and implicit TLS with rustls.

mod connection;
mod listener;
pub mod proxy;
pub mod shutdown;
mod stream;
pub mod tls;

pub use connection::{Connection, Line, LineError};
pub use ipnet::IpNet;
pub use listener::{Listener, ListenerOptions, serve};
pub use proxy::ProxyProtocol;
pub use stream::Stream;
pub use tls::{TlsAcceptor, TlsError};
pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;

/// A short random id that ties together the log lines of one session.
pub fn session_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}
