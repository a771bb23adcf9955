//! APPEND (RFC 9051 section 6.3.12), with BINARY's literal8 (RFC 3516).
//!
//! ```text
//! C: A003 APPEND saved-messages (\Seen) {326}
//! S: + Ready for literal data
//! C: Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)
//! C: ...
//! C:
//! S: A003 OK APPEND completed
//! C: A004 APPEND Drafts (\Draft) "17-Jul-1996 02:44:25 -0700" ~{1234+}
//! ```
//!
//! The reader delivers the message's bytes in the command: a session never reads
//! the literal itself.

use std::fmt;

use super::CommandBody;
use crate::datetime::DateTime;
use crate::flag::{Flag, flag_list};
use crate::lexer::{Cursor, PResult, syntax};
use crate::mailbox::MailboxName;

/// An APPEND command and its message.
#[derive(Clone, PartialEq, Eq)]
pub struct AppendCommand {
    pub mailbox: MailboxName,
    pub flags: Vec<Flag>,
    /// The internal date to give the message, if the client chose one.
    pub date: Option<DateTime>,
    /// The message, exactly as sent.
    pub message: Vec<u8>,
    /// Whether it came as a literal8 (`~{n}`, RFC 3516): it may contain NUL and
    /// binary content-transfer-encoding.
    pub binary: bool,
}

impl fmt::Debug for AppendCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppendCommand")
            .field("mailbox", &self.mailbox)
            .field("flags", &self.flags)
            .field("date", &self.date)
            .field("message", &format_args!("<{} octets>", self.message.len()))
            .field("binary", &self.binary)
            .finish()
    }
}

/// `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP (literal / literal8)`
pub(crate) fn append(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mailbox = crate::mailbox::mailbox(c)?;
    c.sp()?;
    let mut flags = Vec::new();
    if c.peek() == Some(b'(') {
        flags = flag_list(c)?;
        c.sp()?;
    }
    let mut date = None;
    if c.peek() == Some(b'"') {
        date = Some(c.date_time()?);
        c.sp()?;
    }
    if !matches!(c.peek(), Some(b'{' | b'~')) {
        return Err(syntax("expected the message as a literal"));
    }
    let (message, binary) = c.literal(c.limits.max_literal, true)?;
    Ok(CommandBody::Append(AppendCommand {
        mailbox,
        flags,
        date,
        message: message.to_vec(),
        binary,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::tests::{body, error_kind};

    fn append(input: &[u8]) -> AppendCommand {
        match body(input) {
            CommandBody::Append(append) => append,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn append_with_flags_date_and_message() {
        let a = append(
            b"A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {22}\r\nSubject: hi\r\n\r\nhello\r\n\r\n",
        );
        assert_eq!(a.mailbox, MailboxName::new("saved-messages"));
        assert_eq!(a.flags, vec![Flag::Seen]);
        assert_eq!(a.date.unwrap().to_string(), "17-Jul-1996 02:44:25 -0700");
        assert_eq!(a.message, b"Subject: hi\r\n\r\nhello\r\n");
        assert!(!a.binary);
        assert!(format!("{a:?}").contains("<22 octets>"));
    }

    #[test]
    fn append_minimal_and_binary() {
        let a = append(b"A APPEND INBOX {0}\r\n\r\n");
        assert!(a.flags.is_empty() && a.date.is_none() && a.message.is_empty());
        let a = append(b"A APPEND INBOX () ~{3+}\r\na\0b\r\n");
        assert!(a.binary);
        assert_eq!(a.message, b"a\0b");
    }

    #[test]
    fn append_needs_a_literal() {
        assert_eq!(
            error_kind(b"A APPEND INBOX \"hello\"\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(error_kind(b"A APPEND INBOX hello\r\n"), ErrorKind::Syntax);
        assert_eq!(
            error_kind(b"A APPEND INBOX (\\Seen) \"17-Jul-1996 02:44:25\" {1}\r\nx\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(
            error_kind(b"A APPEND INBOX {3}\r\na\0b\r\n"),
            ErrorKind::Syntax
        );
    }
}
