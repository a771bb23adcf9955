//! Settings of the `mx` role. The defaults are safe on the open internet.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Our name in the greeting, the EHLO reply and `Received:` headers.
    pub hostname: String,
    /// Announced as `SIZE` in the EHLO reply and enforced at MAIL FROM and DATA.
    pub max_message_size: usize,
    /// Recipients accepted per transaction; more get `452 4.5.3`.
    pub max_recipients: usize,
    /// Longest command line (without CRLF); longer ones get `500 5.5.2 Line too long`.
    pub max_line_length: usize,
    /// Error replies (any 5yz) a session may collect before it is closed with `421`.
    pub max_errors: usize,
    /// How long a session may stay silent before it is closed with `421`.
    pub idle_timeout: Duration,
    /// Offer AUTH without TLS to peers that are not on the loopback interface. Off by
    /// default: passwords must not cross the network in the clear.
    pub allow_plaintext_auth: bool,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            hostname: default_hostname(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_line_length: 2048,
            max_errors: 10,
            idle_timeout: Duration::from_secs(300),
            allow_plaintext_auth: false,
        }
    }
}

/// The system's host name, as a fallback until configuration names one.
fn default_hostname() -> String {
    let name = gethostname::gethostname().to_string_lossy().into_owned();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}
