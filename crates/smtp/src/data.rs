//! The message text after DATA (RFC 5321 4.1.1.4, 4.5.2), as a state machine over the
//! lines [`postcell_net::Connection`] reads: no socket needed to test it.
//!
//! ```text
//! C: DATA
//! S: 354 End data with <CR><LF>.<CR><LF>
//! C: Subject: hi
//! C:
//! C: ..a line that starts with a dot
//! C: .
//! S: 250 2.0.0 Ok: queued as 3F2A9C01B7E4
//! ```
//!
//! * The text ends only at `<CRLF>.<CRLF>`: a line that is exactly `.`, ends in CRLF,
//!   and follows a line that ended in CRLF. `<LF>.<LF>`, `<CRLF>.<LF>` and
//!   `<LF>.<CRLF>` are not the end. Servers that disagree with their peer about where a
//!   message ends let a sender smuggle a second message into the first ("SMTP
//!   smuggling", CVE-2023-51764/51765/51766).
//! * A leading dot is removed (dot-unstuffing); lines are stored with CRLF, as received.
//! * Past the size limit, the reader keeps reading to the end so the session stays in
//!   step with the client, but keeps nothing.
//! * A bare LF or a NUL anywhere refuses the message (RFC 5321 2.3.8, 4.1.1.4).

/// Whether the end of the message text has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    More,
    End,
}

/// Why a complete message text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataError {
    /// Larger than the size limit.
    TooBig,
    /// A line ended in a bare LF, or the text holds a NUL byte.
    BareLfOrNul,
}

#[derive(Debug)]
pub struct DataReader {
    message: Vec<u8>,
    /// Bytes of message text seen, kept or not.
    size: usize,
    max_size: usize,
    too_big: bool,
    bare_lf_or_nul: bool,
    /// The previous line ended in a bare LF, so a `.` line now is no end marker.
    after_bare_lf: bool,
}

impl DataReader {
    /// `expected_size` is the client's `SIZE=` declaration, used only to size the buffer.
    pub fn new(max_size: usize, expected_size: Option<usize>) -> DataReader {
        let capacity = expected_size.unwrap_or(16 * 1024).min(max_size);
        DataReader {
            message: Vec::with_capacity(capacity),
            size: 0,
            max_size,
            too_big: false,
            bare_lf_or_nul: false,
            // The DATA command line itself ended in CRLF (bare LF commands are refused).
            after_bare_lf: false,
        }
    }

    /// Takes one line, without its terminator; `bare_lf` when it ended in LF alone.
    pub fn push_line(&mut self, text: &[u8], bare_lf: bool) -> Progress {
        if text == b"." && !bare_lf && !self.after_bare_lf {
            return Progress::End;
        }
        self.after_bare_lf = bare_lf;
        if bare_lf || text.contains(&0) {
            self.bare_lf_or_nul = true;
        }
        let text = text.strip_prefix(b".").unwrap_or(text);
        self.size = self.size.saturating_add(text.len() + 2);
        if self.size > self.max_size {
            self.set_too_big();
        } else {
            self.message.extend_from_slice(text);
            self.message.extend_from_slice(b"\r\n");
        }
        Progress::More
    }

    /// A line longer than the connection would read: the message is too big.
    pub fn push_overlong_line(&mut self) {
        self.set_too_big();
    }

    fn set_too_big(&mut self) {
        if !self.too_big {
            self.too_big = true;
            self.message = Vec::new();
        }
    }

    /// Bytes of message text read so far (after unstuffing, with CRLFs).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The message, once [`Progress::End`] was reached.
    pub fn finish(self) -> Result<Vec<u8>, DataError> {
        if self.too_big {
            Err(DataError::TooBig)
        } else if self.bare_lf_or_nul {
            Err(DataError::BareLfOrNul)
        } else {
            Ok(self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds raw bytes split the way `Connection` splits them: at LF, noting CR.
    fn read(raw: &[u8], max_size: usize) -> (Result<Vec<u8>, DataError>, usize) {
        let mut reader = DataReader::new(max_size, None);
        let mut consumed = 0;
        for piece in raw.split_inclusive(|&b| b == b'\n') {
            consumed += piece.len();
            let line = piece.strip_suffix(b"\n").expect("test input ends in LF");
            let (text, bare_lf) = match line.strip_suffix(b"\r") {
                Some(text) => (text, false),
                None => (line, true),
            };
            if reader.push_line(text, bare_lf) == Progress::End {
                return (reader.finish(), consumed);
            }
        }
        panic!("no end of data in {:?}", String::from_utf8_lossy(raw));
    }

    #[test]
    fn dots_are_unstuffed_and_crlf_kept() {
        let (message, _) = read(b"Subject: x\r\n\r\n..leading dot\r\n.\r\n", 1000);
        assert_eq!(message.unwrap(), b"Subject: x\r\n\r\n.leading dot\r\n");
    }

    #[test]
    fn the_end_is_the_dot_line_and_what_follows_is_left_alone() {
        let raw = b"a\r\n.\r\nQUIT\r\n";
        let (message, consumed) = read(raw, 1000);
        assert_eq!(message.unwrap(), b"a\r\n");
        assert_eq!(&raw[consumed..], b"QUIT\r\n");
    }

    #[test]
    fn an_empty_message_is_empty() {
        assert_eq!(read(b".\r\n", 1000).0.unwrap(), b"");
    }

    #[test]
    fn a_dot_line_with_a_bare_lf_does_not_end_the_message() {
        // The smuggling attempt: "\n.\n" then a second envelope, then the real end.
        let raw = b"Subject: one\r\n\r\nhello\n.\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n\r\n.\r\n";
        let (message, consumed) = read(raw, 10_000);
        assert_eq!(consumed, raw.len(), "the whole input is one message");
        assert_eq!(message, Err(DataError::BareLfOrNul));
        // "\r\n.\n" (CRLF before, bare LF after) is not an end either.
        let raw = b"hello\r\n.\nmore\r\n.\r\n";
        let (message, consumed) = read(raw, 10_000);
        assert_eq!(consumed, raw.len());
        assert_eq!(message, Err(DataError::BareLfOrNul));
        // Nor is "\n.\r\n" (bare LF before, CRLF after).
        let raw = b"hello\n.\r\nmore\r\n.\r\n";
        let (message, consumed) = read(raw, 10_000);
        assert_eq!(consumed, raw.len());
        assert_eq!(message, Err(DataError::BareLfOrNul));
        // A lone CR is no line end at all: "\r.\r\n" is the text "\r.".
        let raw = b"hello\r.\r\nmore\r\n.\r\n";
        let (message, consumed) = read(raw, 10_000);
        assert_eq!(consumed, raw.len());
        assert_eq!(message.unwrap(), b"hello\r.\r\nmore\r\n");
    }

    #[test]
    fn nul_bytes_refuse_the_message() {
        assert_eq!(read(b"a\0b\r\n.\r\n", 1000).0, Err(DataError::BareLfOrNul));
    }

    #[test]
    fn the_size_limit_counts_stored_bytes_and_reads_to_the_end() {
        // "12345678\r\n" is 10 bytes: exactly at the limit is fine, one more is not.
        assert_eq!(read(b"12345678\r\n.\r\n", 10).0.unwrap(), b"12345678\r\n");
        assert_eq!(read(b"..2345678\r\n.\r\n", 10).0.unwrap(), b".2345678\r\n");
        let raw = b"123456789\r\nmore\r\n.\r\n";
        let (message, consumed) = read(raw, 10);
        assert_eq!(message, Err(DataError::TooBig));
        assert_eq!(consumed, raw.len());
    }

    #[test]
    fn an_overlong_line_makes_the_message_too_big() {
        let mut reader = DataReader::new(100, Some(50));
        assert_eq!(reader.push_line(b"a", false), Progress::More);
        reader.push_overlong_line();
        assert_eq!(reader.push_line(b".", false), Progress::End);
        assert_eq!(reader.finish(), Err(DataError::TooBig));
    }
}
