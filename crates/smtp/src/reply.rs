//! Every reply the SMTP server sends, in one place (RFC 5321 codes with RFC 3463
//! enhanced status codes, RFC 2034).
//!
//! `HOST` is [`SmtpConfig::hostname`](crate::SmtpConfig), `<addr>` the recipient as
//! given (normalised), `ID` the queue id of an accepted message.
//!
//! | when | reply |
//! |---|---|
//! | connection opened | `220 HOST ESMTP Postcell` |
//! | HELO | `250 HOST` |
//! | EHLO | `250-HOST`, then `PIPELINING`, `8BITMIME`, `SMTPUTF8`, `SIZE n`, `ENHANCEDSTATUSCODES`, `STARTTLS` (TLS configured and not active), `AUTH PLAIN LOGIN` (TLS active, loopback peer, or plaintext AUTH allowed) |
//! | NOOP, RSET | `250 2.0.0 OK` |
//! | QUIT | `221 2.0.0 Bye` |
//! | VRFY | `252 2.5.2 Cannot VRFY user, but will accept message` |
//! | HELP | `214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH` |
//! | MAIL accepted | `250 2.1.0 OK` |
//! | RCPT accepted | `250 2.1.5 OK` |
//! | DATA | `354 End data with <CR><LF>.<CR><LF>` |
//! | message stored | `250 2.0.0 Ok: queued as ID` |
//! | STARTTLS | `220 2.0.0 Ready to start TLS` |
//! | AUTH challenge | `334 ` + base64 (empty for PLAIN without initial response) |
//! | AUTH success | `235 2.7.0 Authentication successful` |
//! | too many errors (then closed) | `421 4.7.0 Too many errors, closing connection` |
//! | idle timeout (then closed) | `421 4.4.2 HOST Idle timeout, closing connection` |
//! | server shutting down (then closed) | `421 4.3.2 HOST Service shutting down` |
//! | connection limit (by the listener) | `421 4.3.2 Too many connections, try again later` |
//! | store unavailable (RCPT, DATA) | `451 4.3.0 Temporary failure, please try again later` |
//! | recipient limit | `452 4.5.3 Too many recipients` |
//! | RCPT: account over quota or cannot fit SIZE | `452 4.2.2 <addr>: Mailbox full` |
//! | DATA: an account has no room now | `452 4.2.2 Mailbox full, try again later` |
//! | STARTTLS without TLS configured | `454 4.7.0 TLS not available` |
//! | AUTH: directory unavailable | `454 4.7.0 Temporary authentication failure` |
//! | unknown command | `500 5.5.1 Command unrecognized` |
//! | command line over the limit | `500 5.5.2 Line too long` |
//! | command line ending in a bare LF | `500 5.5.2 Bare LF not allowed; end lines with CRLF` |
//! | NUL byte in a command line | `500 5.5.2 NUL character not allowed` |
//! | SASL response over the limit | `500 5.5.6 Authentication exchange line is too long` |
//! | command syntax | `501 5.5.4 Syntax: <grammar>`, e.g. `501 5.5.4 Syntax: HELO domain` |
//! | MAIL FROM address malformed | `501 5.1.7 Bad sender address syntax` |
//! | RCPT TO address malformed (or `<>`) | `501 5.1.3 Bad recipient address syntax` |
//! | parameter with a bad value (`SIZE=x`, `BODY=y`) | `501 5.5.4 Invalid parameter: NAME` |
//! | AUTH: response is not base64 | `501 5.5.2 Invalid base64 data` |
//! | AUTH: client sent `*` | `501 5.0.0 Authentication cancelled` |
//! | EXPN, ETRN, ATRN, BURL, BDAT, LHLO | `502 5.5.1 Command not implemented` |
//! | MAIL before HELO/EHLO | `503 5.5.1 Error: send HELO/EHLO first` |
//! | AUTH before EHLO (or after HELO) | `503 5.5.1 Error: send EHLO first` |
//! | MAIL inside a transaction | `503 5.5.1 Error: nested MAIL command` |
//! | RCPT or DATA without MAIL | `503 5.5.1 Error: need MAIL command` |
//! | DATA without RCPT | `503 5.5.1 Error: need RCPT command` |
//! | STARTTLS with TLS active | `503 5.5.1 Error: TLS already active` |
//! | AUTH when authenticated | `503 5.5.1 Error: already authenticated` |
//! | AUTH inside a transaction | `503 5.5.1 Error: AUTH not allowed during a mail transaction` |
//! | AUTH with another mechanism | `504 5.5.4 Unrecognized authentication mechanism` |
//! | AUTH: wrong user or password, disabled account, malformed PLAIN/LOGIN | `535 5.7.8 Authentication credentials invalid` |
//! | AUTH without TLS from a remote peer | `538 5.7.11 Encryption required for requested authentication mechanism` |
//! | RCPT: no such user in a local domain | `550 5.1.1 <addr>: Recipient address rejected: User unknown` |
//! | RCPT: account disabled | `550 5.2.1 <addr>: Recipient address rejected: mailbox disabled` |
//! | RCPT: SIZE larger than the account's whole quota | `552 5.2.2 <addr>: Mailbox full` |
//! | DATA: message larger than an account's whole quota | `552 5.2.2 Mailbox full` |
//! | MAIL SIZE= or DATA over the limit | `552 5.3.4 Message size exceeds fixed maximum message size` |
//! | submission: MAIL before AUTH | `530 5.7.0 Authentication required` |
//! | submission: MAIL FROM not one of the user's addresses | `553 5.7.1 <addr>: Sender address rejected: not owned by user USER` |
//! | submission: a `From:` address not the user's | `553 5.7.1 From: header address not owned by the authenticated user` |
//! | submission: no `From:` field | `550 5.6.0 Message has no From: header field` |
//! | AUTH after too many failures from the address | `454 4.7.0 Too many failed authentication attempts, try again later` |
//! | mx: DMARC fails and the domain's policy is reject (when configured) | `550 5.7.1 Message rejected: DMARC policy of the From: domain says reject` |
//! | RCPT: not a local domain, not authenticated | `554 5.7.1 <addr>: Relay access denied` |
//! | DATA with a bare LF or a NUL byte | `554 5.6.0 Message contains bare LF or NUL; lines must end with CRLF` |
//! | a MAIL/RCPT parameter we do not offer | `555 5.5.4 Unsupported parameter: NAME` |
//!
//! Every 5yz reply counts toward [`SmtpConfig::max_errors`](crate::SmtpConfig).

use std::borrow::Cow;
use std::fmt;

use postcell_directory::Address;

/// One single-line reply: a code and its text (which starts with the enhanced status
/// code where there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    text: Cow<'static, str>,
}

impl Reply {
    pub const fn new(code: u16, text: &'static str) -> Reply {
        Reply {
            code,
            text: Cow::Borrowed(text),
        }
    }

    fn owned(code: u16, text: String) -> Reply {
        Reply {
            code,
            text: Cow::Owned(text),
        }
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    /// A permanent negative reply (5yz): counts as a client error.
    pub fn is_permanent_failure(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The reply as it goes on the wire, with CRLF.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!("{self}\r\n").into_bytes()
    }
}

/// The reply without its CRLF: how it is written to logs and the delivery log.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

// Session.
pub fn greeting(hostname: &str) -> Reply {
    Reply::owned(220, format!("{hostname} ESMTP Postcell"))
}
pub fn helo(hostname: &str) -> Reply {
    Reply::owned(250, hostname.to_owned())
}
pub const OK: Reply = Reply::new(250, "2.0.0 OK");
pub const BYE: Reply = Reply::new(221, "2.0.0 Bye");
pub const CANNOT_VRFY: Reply = Reply::new(252, "2.5.2 Cannot VRFY user, but will accept message");
pub const HELP: Reply = Reply::new(
    214,
    "2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
);

// Closing the session.
pub const TOO_MANY_ERRORS: Reply = Reply::new(421, "4.7.0 Too many errors, closing connection");
pub fn idle_timeout(hostname: &str) -> Reply {
    Reply::owned(
        421,
        format!("4.4.2 {hostname} Idle timeout, closing connection"),
    )
}
pub fn shutting_down(hostname: &str) -> Reply {
    Reply::owned(421, format!("4.3.2 {hostname} Service shutting down"))
}

// Framing and syntax.
pub const UNRECOGNIZED: Reply = Reply::new(500, "5.5.1 Command unrecognized");
pub const LINE_TOO_LONG: Reply = Reply::new(500, "5.5.2 Line too long");
pub const BARE_LF: Reply = Reply::new(500, "5.5.2 Bare LF not allowed; end lines with CRLF");
pub const NUL_CHARACTER: Reply = Reply::new(500, "5.5.2 NUL character not allowed");
pub fn syntax(grammar: &str) -> Reply {
    Reply::owned(501, format!("5.5.4 Syntax: {grammar}"))
}
pub const BAD_SENDER: Reply = Reply::new(501, "5.1.7 Bad sender address syntax");
pub const BAD_RECIPIENT: Reply = Reply::new(501, "5.1.3 Bad recipient address syntax");
pub fn invalid_parameter(name: &str) -> Reply {
    Reply::owned(501, format!("5.5.4 Invalid parameter: {name}"))
}
pub fn unsupported_parameter(name: &str) -> Reply {
    Reply::owned(555, format!("5.5.4 Unsupported parameter: {name}"))
}
pub const NOT_IMPLEMENTED: Reply = Reply::new(502, "5.5.1 Command not implemented");

// Command order.
pub const SEND_HELO_FIRST: Reply = Reply::new(503, "5.5.1 Error: send HELO/EHLO first");
pub const SEND_EHLO_FIRST: Reply = Reply::new(503, "5.5.1 Error: send EHLO first");
pub const NESTED_MAIL: Reply = Reply::new(503, "5.5.1 Error: nested MAIL command");
pub const NEED_MAIL: Reply = Reply::new(503, "5.5.1 Error: need MAIL command");
pub const NEED_RCPT: Reply = Reply::new(503, "5.5.1 Error: need RCPT command");

// STARTTLS (RFC 3207).
pub const READY_FOR_TLS: Reply = Reply::new(220, "2.0.0 Ready to start TLS");
pub const TLS_NOT_AVAILABLE: Reply = Reply::new(454, "4.7.0 TLS not available");
pub const TLS_ALREADY_ACTIVE: Reply = Reply::new(503, "5.5.1 Error: TLS already active");

// AUTH (RFC 4954).
pub fn auth_challenge(base64: &str) -> Reply {
    Reply::owned(334, base64.to_owned())
}
pub const AUTH_SUCCEEDED: Reply = Reply::new(235, "2.7.0 Authentication successful");
pub const AUTH_FAILED: Reply = Reply::new(535, "5.7.8 Authentication credentials invalid");
pub const AUTH_TEMPORARY_FAILURE: Reply = Reply::new(454, "4.7.0 Temporary authentication failure");
pub const AUTH_INVALID_BASE64: Reply = Reply::new(501, "5.5.2 Invalid base64 data");
pub const AUTH_CANCELLED: Reply = Reply::new(501, "5.0.0 Authentication cancelled");
pub const AUTH_LINE_TOO_LONG: Reply =
    Reply::new(500, "5.5.6 Authentication exchange line is too long");
pub const AUTH_ENCRYPTION_REQUIRED: Reply = Reply::new(
    538,
    "5.7.11 Encryption required for requested authentication mechanism",
);
pub const AUTH_UNKNOWN_MECHANISM: Reply =
    Reply::new(504, "5.5.4 Unrecognized authentication mechanism");
pub const ALREADY_AUTHENTICATED: Reply = Reply::new(503, "5.5.1 Error: already authenticated");
pub const AUTH_IN_TRANSACTION: Reply = Reply::new(
    503,
    "5.5.1 Error: AUTH not allowed during a mail transaction",
);

// Envelope.
pub const SENDER_OK: Reply = Reply::new(250, "2.1.0 OK");
pub const RECIPIENT_OK: Reply = Reply::new(250, "2.1.5 OK");
pub const TOO_MANY_RECIPIENTS: Reply = Reply::new(452, "4.5.3 Too many recipients");
pub fn unknown_user(recipient: &Address) -> Reply {
    Reply::owned(
        550,
        format!("5.1.1 <{recipient}>: Recipient address rejected: User unknown"),
    )
}
pub fn mailbox_disabled(recipient: &Address) -> Reply {
    Reply::owned(
        550,
        format!("5.2.1 <{recipient}>: Recipient address rejected: mailbox disabled"),
    )
}
pub fn relay_denied(recipient: &Address) -> Reply {
    Reply::owned(554, format!("5.7.1 <{recipient}>: Relay access denied"))
}
pub fn recipient_mailbox_full(recipient: &Address) -> Reply {
    Reply::owned(452, format!("4.2.2 <{recipient}>: Mailbox full"))
}
pub fn recipient_quota_exceeded(recipient: &Address) -> Reply {
    Reply::owned(552, format!("5.2.2 <{recipient}>: Mailbox full"))
}

// Submission (RFC 6409, RFC 4954) and inbound policy.
pub const AUTH_REQUIRED: Reply = Reply::new(530, "5.7.0 Authentication required");
pub fn sender_not_owned(sender: &str, user: &str) -> Reply {
    Reply::owned(
        553,
        format!("5.7.1 <{sender}>: Sender address rejected: not owned by user {user}"),
    )
}
pub const FROM_NOT_OWNED: Reply = Reply::new(
    553,
    "5.7.1 From: header address not owned by the authenticated user",
);
pub const NO_FROM_HEADER: Reply = Reply::new(550, "5.6.0 Message has no From: header field");
pub const TOO_MANY_AUTH_FAILURES: Reply = Reply::new(
    454,
    "4.7.0 Too many failed authentication attempts, try again later",
);
pub const DMARC_REJECT: Reply = Reply::new(
    550,
    "5.7.1 Message rejected: DMARC policy of the From: domain says reject",
);

// Message.
pub const START_DATA: Reply = Reply::new(354, "End data with <CR><LF>.<CR><LF>");
pub fn queued(queue_id: &str) -> Reply {
    Reply::owned(250, format!("2.0.0 Ok: queued as {queue_id}"))
}
pub const MESSAGE_TOO_BIG: Reply =
    Reply::new(552, "5.3.4 Message size exceeds fixed maximum message size");
pub const BARE_LF_IN_MESSAGE: Reply = Reply::new(
    554,
    "5.6.0 Message contains bare LF or NUL; lines must end with CRLF",
);
pub const MAILBOX_FULL_TRY_LATER: Reply = Reply::new(452, "4.2.2 Mailbox full, try again later");
pub const MAILBOX_FULL: Reply = Reply::new(552, "5.2.2 Mailbox full");
pub const TEMPORARY_FAILURE: Reply =
    Reply::new(451, "4.3.0 Temporary failure, please try again later");

/// The capabilities a session offers in its EHLO reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub max_message_size: usize,
    pub starttls: bool,
    pub auth: bool,
}

/// The multi-line EHLO reply. CHUNKING (BDAT) is not offered: DATA's dot-stuffing is
/// the one framing we accept.
pub fn ehlo(hostname: &str, capabilities: Capabilities) -> Vec<u8> {
    let mut lines = vec![
        hostname.to_owned(),
        "PIPELINING".to_owned(),
        "8BITMIME".to_owned(),
        "SMTPUTF8".to_owned(),
        format!("SIZE {}", capabilities.max_message_size),
        "ENHANCEDSTATUSCODES".to_owned(),
    ];
    if capabilities.starttls {
        lines.push("STARTTLS".to_owned());
    }
    if capabilities.auth {
        lines.push("AUTH PLAIN LOGIN".to_owned());
    }
    let mut out = Vec::new();
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate() {
        let separator = if i == last { ' ' } else { '-' };
        out.extend_from_slice(format!("250{separator}{line}\r\n").as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_written_with_crlf() {
        assert_eq!(BYE.to_bytes(), b"221 2.0.0 Bye\r\n");
        assert_eq!(
            queued("0A1B2C").to_string(),
            "250 2.0.0 Ok: queued as 0A1B2C"
        );
        let bob = Address::parse("Bob@Example.org").unwrap();
        assert_eq!(
            unknown_user(&bob).to_string(),
            "550 5.1.1 <Bob@example.org>: Recipient address rejected: User unknown"
        );
    }

    #[test]
    fn the_ehlo_reply_lists_what_the_session_offers() {
        let plain = ehlo(
            "mx.example.org",
            Capabilities {
                max_message_size: 1000,
                starttls: true,
                auth: false,
            },
        );
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            "250-mx.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
             250-SIZE 1000\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
        );
        let secure = ehlo(
            "mx.example.org",
            Capabilities {
                max_message_size: 1000,
                starttls: false,
                auth: true,
            },
        );
        assert!(
            String::from_utf8(secure)
                .unwrap()
                .ends_with("250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN\r\n")
        );
    }

    #[test]
    fn only_5yz_replies_count_as_errors() {
        assert!(UNRECOGNIZED.is_permanent_failure());
        assert!(!TOO_MANY_RECIPIENTS.is_permanent_failure());
        assert!(!OK.is_permanent_failure());
    }
}
