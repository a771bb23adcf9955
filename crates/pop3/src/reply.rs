//! Every reply the POP3 server sends, in one place, and the framing of multi-line
//! responses (RFC 1939 section 3: dot-stuffing and the `.` terminator).
//!
//! Response codes in brackets are RFC 2449 (`[IN-USE]`, `[SYS/TEMP]`) and RFC 3206
//! (`[AUTH]`, `[SYS/TEMP]`); the server announces them with `RESP-CODES` and
//! `AUTH-RESP-CODE`.

use std::io::Write;

// Greeting and farewell.

pub fn greeting(hostname: &str) -> Vec<u8> {
    format!("+OK {hostname} POP3 server ready\r\n").into_bytes()
}

pub fn signing_off(hostname: &str) -> Vec<u8> {
    format!("+OK {hostname} POP3 server signing off\r\n").into_bytes()
}

/// QUIT in TRANSACTION after the UPDATE state committed.
pub fn signing_off_after_update(hostname: &str, deleted: usize) -> Vec<u8> {
    format!("+OK {hostname} POP3 server signing off ({deleted} messages deleted)\r\n").into_bytes()
}

/// RFC 2449 section 8.1.2: the UPDATE failed and nothing was removed.
pub const UPDATE_FAILED: &[u8] = b"-ERR [SYS/TEMP] Some deleted messages not removed\r\n";

// CAPA (RFC 2449).

pub const CAPA_HEADER: &[u8] = b"+OK Capability list follows\r\n";

// STLS (RFC 2595).

pub const STLS_BEGIN: &[u8] = b"+OK Begin TLS negotiation\r\n";
pub const STLS_UNAVAILABLE: &[u8] = b"-ERR STLS not available\r\n";
pub const STLS_ALREADY_ACTIVE: &[u8] = b"-ERR TLS already active\r\n";

// Authorization: USER/PASS (RFC 1939) and AUTH (RFC 5034).

pub const USER_ACCEPTED: &[u8] = b"+OK Send PASS\r\n";
pub const PASS_WITHOUT_USER: &[u8] = b"-ERR Send USER first\r\n";
pub const SASL_CONTINUE: &[u8] = b"+ \r\n";
pub const SASL_MECHANISMS_HEADER: &[u8] = b"+OK Supported SASL mechanisms follow\r\n";
pub const AUTH_UNSUPPORTED_MECHANISM: &[u8] = b"-ERR Unsupported authentication mechanism\r\n";
pub const AUTH_CANCELLED: &[u8] = b"-ERR Authentication cancelled\r\n";
pub const AUTH_INVALID_BASE64: &[u8] = b"-ERR [AUTH] Invalid base64 data\r\n";
pub const AUTH_MALFORMED: &[u8] = b"-ERR [AUTH] Malformed PLAIN response\r\n";
pub const AUTH_AUTHZID_MISMATCH: &[u8] =
    b"-ERR [AUTH] Authorization identity must be the user itself\r\n";
pub const AUTH_PLAINTEXT_DISALLOWED: &[u8] =
    b"-ERR [AUTH] Plaintext authentication disallowed on non-encrypted connections\r\n";
/// Wrong password and unknown user alike (RFC 1939 section 13).
pub const AUTH_FAILED: &[u8] = b"-ERR [AUTH] Authentication failed\r\n";
pub const AUTH_DISABLED: &[u8] = b"-ERR [AUTH] Account disabled\r\n";
pub const AUTH_UNAVAILABLE: &[u8] = b"-ERR [SYS/TEMP] Authentication temporarily unavailable\r\n";
/// RFC 2449 section 8.1.1: another session holds the maildrop.
pub const MAILDROP_IN_USE: &[u8] = b"-ERR [IN-USE] Maildrop is locked by another session\r\n";
pub const MAILDROP_UNAVAILABLE: &[u8] =
    b"-ERR [SYS/TEMP] Unable to open the maildrop, try again later\r\n";

pub fn logged_in(messages: usize, octets: u64) -> Vec<u8> {
    format!("+OK Logged in, maildrop has {messages} messages ({octets} octets)\r\n").into_bytes()
}

// TRANSACTION.

pub const OK: &[u8] = b"+OK\r\n";
pub const NO_SUCH_MESSAGE: &[u8] = b"-ERR No such message\r\n";
pub const UIDL_HEADER: &[u8] = b"+OK Unique-ID listing follows\r\n";
pub const TOP_HEADER: &[u8] = b"+OK Top of message follows\r\n";

pub fn already_deleted(message: u64) -> Vec<u8> {
    format!("-ERR Message {message} already deleted\r\n").into_bytes()
}

pub fn message_unreadable(message: u64) -> Vec<u8> {
    format!("-ERR [SYS/TEMP] Unable to read message {message}\r\n").into_bytes()
}

pub fn stat(messages: usize, octets: u64) -> Vec<u8> {
    format!("+OK {messages} {octets}\r\n").into_bytes()
}

pub fn list_header(messages: usize, octets: u64) -> Vec<u8> {
    format!("+OK {messages} messages ({octets} octets)\r\n").into_bytes()
}

/// `+OK n size` for `LIST n`, or `n size` as a line of the listing.
pub fn scan_listing(out: &mut Vec<u8>, single: bool, message: u64, size: u64) {
    let _ = write!(
        out,
        "{}{message} {size}\r\n",
        if single { "+OK " } else { "" }
    );
}

/// `+OK n unique-id` for `UIDL n`, or `n unique-id` as a line of the listing.
pub fn unique_id_listing(out: &mut Vec<u8>, single: bool, message: u64, unique_id: &str) {
    let _ = write!(
        out,
        "{}{message} {unique_id}\r\n",
        if single { "+OK " } else { "" }
    );
}

pub fn retr_header(octets: u64) -> Vec<u8> {
    format!("+OK {octets} octets\r\n").into_bytes()
}

pub fn deleted(message: u64) -> Vec<u8> {
    format!("+OK Message {message} deleted\r\n").into_bytes()
}

pub fn reset(messages: usize, octets: u64) -> Vec<u8> {
    format!("+OK Maildrop has {messages} messages ({octets} octets)\r\n").into_bytes()
}

// Errors in any state.

pub const UNKNOWN_COMMAND: &[u8] = b"-ERR Unknown command\r\n";
pub const WRONG_STATE: &[u8] = b"-ERR Command not valid in this state\r\n";
pub const LINE_TOO_LONG: &[u8] = b"-ERR Line too long\r\n";
pub const TOO_MANY_ERRORS: &[u8] = b"-ERR Too many errors, closing connection\r\n";
pub const IDLE_TIMEOUT: &[u8] = b"-ERR [SYS/TEMP] Idle timeout, closing connection\r\n";
pub const SHUTTING_DOWN: &[u8] = b"-ERR [SYS/TEMP] Server shutting down\r\n";
pub const LEASE_LOST: &[u8] = b"-ERR [SYS/TEMP] Maildrop lock lost, closing connection\r\n";

pub fn invalid_arguments(usage: &str) -> Vec<u8> {
    format!("-ERR Syntax error, usage: {usage}\r\n").into_bytes()
}

// Multi-line responses.

/// The line that ends a multi-line response.
pub const END_OF_MULTILINE: &[u8] = b".\r\n";

/// Appends one line of a multi-line response (a CAPA line, a SASL mechanism).
pub fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a message as the body of a multi-line response, terminator included.
///
/// With `body_lines` (TOP), only the header, the blank line after it and that many
/// body lines go out. Lines that begin with `.` get a second one (dot-stuffing); every
/// line ends in CRLF, so a stored bare LF or a missing final line end cannot break the
/// framing. Messages are stored with CRLF, so for them the octets sent before
/// stuffing are exactly the size that LIST reports.
pub fn message(out: &mut Vec<u8>, data: &[u8], body_lines: Option<u64>) {
    out.reserve(data.len() + data.len() / 64 + 8);
    let mut in_header = true;
    let mut body_sent = 0u64;
    for piece in data.split_inclusive(|&b| b == b'\n') {
        let text = piece.strip_suffix(b"\n").unwrap_or(piece);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if !in_header {
            if body_lines.is_some_and(|limit| body_sent >= limit) {
                break;
            }
            body_sent += 1;
        } else if text.is_empty() {
            in_header = false;
        }
        if text.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(END_OF_MULTILINE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retr(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        message(&mut out, data, None);
        out
    }

    fn top(data: &[u8], lines: u64) -> Vec<u8> {
        let mut out = Vec::new();
        message(&mut out, data, Some(lines));
        out
    }

    #[test]
    fn lines_starting_with_a_dot_are_stuffed() {
        assert_eq!(
            retr(b"Subject: x\r\n\r\n.\r\n..two\r\n.leading\r\nmiddle.\r\n"),
            b"Subject: x\r\n\r\n..\r\n...two\r\n..leading\r\nmiddle.\r\n.\r\n"
        );
    }

    #[test]
    fn a_message_with_crlf_goes_out_byte_for_byte() {
        let data = b"From: a@example.org\r\nSubject: hi\r\n\r\nline 1\r\n\r\nline 3\r\n";
        let mut expected = data.to_vec();
        expected.extend_from_slice(b".\r\n");
        assert_eq!(retr(data), expected);
    }

    #[test]
    fn a_missing_final_line_end_is_added() {
        assert_eq!(retr(b"A: b\r\n\r\nno end"), b"A: b\r\n\r\nno end\r\n.\r\n");
        assert_eq!(retr(b".\r\n."), b"..\r\n..\r\n.\r\n");
        assert_eq!(retr(b""), b".\r\n");
    }

    #[test]
    fn bare_line_feeds_become_crlf() {
        assert_eq!(retr(b"A: b\n\n.x\n"), b"A: b\r\n\r\n..x\r\n.\r\n");
        // A lone CR inside a line is data, not a line end.
        assert_eq!(retr(b"a\rb\r\n"), b"a\rb\r\n.\r\n");
    }

    #[test]
    fn top_sends_the_header_the_blank_line_and_n_body_lines() {
        let data = b"From: a\r\nTo: b\r\n\r\nbody 1\r\n.body 2\r\nbody 3\r\n";
        assert_eq!(top(data, 0), b"From: a\r\nTo: b\r\n\r\n.\r\n");
        assert_eq!(
            top(data, 2),
            b"From: a\r\nTo: b\r\n\r\nbody 1\r\n..body 2\r\n.\r\n"
        );
        assert_eq!(top(data, 100), retr(data));
    }

    #[test]
    fn top_of_a_message_without_a_body_is_the_whole_header() {
        assert_eq!(
            top(b"From: a\r\nTo: b\r\n", 0),
            b"From: a\r\nTo: b\r\n.\r\n"
        );
    }

    #[test]
    fn listings_have_the_rfc_shape() {
        let mut out = Vec::new();
        scan_listing(&mut out, true, 2, 200);
        scan_listing(&mut out, false, 3, 320);
        unique_id_listing(&mut out, true, 1, "1700000000.5");
        unique_id_listing(&mut out, false, 2, "1700000000.6");
        assert_eq!(
            out,
            b"+OK 2 200\r\n3 320\r\n+OK 1 1700000000.5\r\n2 1700000000.6\r\n"
        );
    }
}
