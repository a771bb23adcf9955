//! Settings of the `mx` and `submission` roles. The defaults are safe on the open
//! internet.

use std::time::Duration;

use crate::dns::Dns;
use crate::srs::Srs;

/// Which service a listener offers: the same session code, different rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Port 25: mail for the local domains from anyone; relaying only after AUTH.
    #[default]
    Mx,
    /// Ports 587 and 465 (RFC 6409, RFC 8314): AUTH first, the sender must be the
    /// user's own, `Message-ID:`/`Date:` added, DKIM-signed.
    Submission,
}

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
    pub role: Role,
    /// Accept AUTH without TLS from loopback peers (local scripts, webmail on the same
    /// host). Off means TLS always comes first.
    pub loopback_plaintext_auth: bool,
    /// `mx`: check SPF, DKIM and DMARC and write `Authentication-Results:`.
    pub verify_inbound: bool,
    /// `mx`: refuse (`550 5.7.1`) a message that fails DMARC when its domain's
    /// policy is `p=reject`.
    pub reject_dmarc_failures: bool,
    /// The resolver the verdicts use.
    pub dns: Dns,
    /// Rewrite the envelope sender of forwarded mail (SRS); `None` keeps it.
    pub srs: Option<Srs>,
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
            role: Role::Mx,
            loopback_plaintext_auth: true,
            verify_inbound: false,
            reject_dmarc_failures: false,
            dns: Dns::default(),
            srs: None,
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
