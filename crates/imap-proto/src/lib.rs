//! Postcell's IMAP protocol crate: the IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501)
//! command parser and response writer, with no I/O and no store.
//!
//! A session feeds the bytes it reads to a [`CommandReader`], sends `+ ` when the
//! reader asks for a literal, and runs the typed [`Command`]s that come out; it answers
//! with [`response`] values, which serialise themselves correctly quoted.
//!
//! ```text
//! C: a1 ENABLE IMAP4rev2
//! C: a2 SELECT INBOX (CONDSTORE)
//! C: a3 UID SEARCH RETURN (MIN MAX COUNT) UNSEEN
//! C: a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)]) (CHANGEDSINCE 42)
//! C: a5 APPEND Drafts (\Draft) {310}
//! S: + Ready for literal data
//! C: ...
//! ```
//!
//! ```
//! use postcell_imap_proto::response::{Code, Data, StatusResponse};
//! use postcell_imap_proto::{CommandBody, CommandReader, Progress, Utf8Mode};
//!
//! let mut reader = CommandReader::default();
//! reader.feed(b"a2 SELECT INBOX\r\n");
//! let Ok(Progress::Command(command)) = reader.read_command() else { panic!() };
//! assert!(matches!(command.body, CommandBody::Select { .. }));
//!
//! let mut out = Vec::new();
//! Data::Exists(172).encode(&mut out, Utf8Mode::Off);
//! StatusResponse::ok(Some(command.tag), "SELECT completed")
//!     .with_code(Code::ReadWrite)
//!     .encode(&mut out, Utf8Mode::Off);
//! assert_eq!(out, b"* 172 EXISTS\r\na2 OK [READ-WRITE] SELECT completed\r\n");
//! ```
//!
//! # Why our own parser
//!
//! imap-codec 2.0 (alpha) parses IMAP4rev1 well, but cannot parse what IMAP4rev2
//! requires of a server: ESEARCH (`SEARCH RETURN (...)`, RFC 4731), LIST-EXTENDED
//! (`LIST (selection) reference patterns RETURN (...)`, RFC 5258, and so LIST-STATUS)
//! and `CREATE name (USE (\Drafts))` (RFC 6154). So we own a streaming, literal-aware
//! parser, built for a server's needs (limits checked before allocation, errors that
//! carry the tag, resynchronisation after a bad command), and we cross-check it
//! against imap-codec on every command imap-codec does parse (`tests/cross_check.rs`,
//! over `tests/corpus.txt`). A fuzz target (`fuzz/`) feeds it arbitrary bytes in
//! arbitrary chunks.
//!
//! # Layout
//!
//! - [`reader`]: framing (lines and literals), continuation requests, limits,
//!   resynchronisation.
//! - [`command`]: the typed commands, one module per group, each with its parser.
//! - `lexer`: the tokens of the formal syntax (atoms, strings, literals, numbers,
//!   dates).
//! - [`sequence`], [`mailbox`], [`flag`], [`datetime`]: values shared by commands and
//!   responses.
//! - [`response`]: status responses, untagged data, FETCH items, envelopes and body
//!   structures.

pub mod command;
pub mod datetime;
mod error;
pub mod flag;
mod lexer;
mod limits;
pub mod mailbox;
pub mod reader;
pub mod response;
pub mod sequence;

pub use command::{Command, CommandBody, Password};
pub use datetime::{Date, DateTime};
pub use error::{ErrorKind, ParseError};
pub use flag::Flag;
pub use limits::{LITERAL_MINUS_MAX, Limits, NonSyncLiterals, Utf8Mode};
pub use mailbox::{MailboxName, SpecialUse};
pub use reader::{CommandReader, Progress, parse_command};
pub use sequence::{MessageSet, SeqNumber, SeqRange, SequenceSet};

#[cfg(test)]
pub(crate) mod tests {
    //! Helpers for the unit tests of the command modules.

    use crate::command::CommandBody;
    use crate::{ErrorKind, Limits, MessageSet, ParseError, SequenceSet, Utf8Mode, parse_command};

    pub(crate) fn parse_with(input: &[u8], limits: &Limits) -> Result<crate::Command, ParseError> {
        parse_command(input, limits, Utf8Mode::Off)
    }

    /// The body of a command that must parse (modified UTF-7 mode).
    pub(crate) fn body(input: &[u8]) -> CommandBody {
        match parse_with(input, &Limits::default()) {
            Ok(command) => command.body,
            Err(error) => panic!("{:?}: {error:?}", String::from_utf8_lossy(input)),
        }
    }

    /// The body of a command that must parse in UTF-8 mode.
    pub(crate) fn body_utf8(input: &[u8]) -> CommandBody {
        match parse_command(input, &Limits::default(), Utf8Mode::On) {
            Ok(command) => command.body,
            Err(error) => panic!("{:?}: {error:?}", String::from_utf8_lossy(input)),
        }
    }

    /// The kind of error of a command that must not parse.
    pub(crate) fn error_kind(input: &[u8]) -> ErrorKind {
        match parse_with(input, &Limits::default()) {
            Ok(command) => panic!("{:?} parsed as {command:?}", String::from_utf8_lossy(input)),
            Err(error) => error.kind,
        }
    }

    pub(crate) fn set(text: &str) -> SequenceSet {
        let input = format!("a FETCH {text} FLAGS\r\n");
        match body(input.as_bytes()) {
            CommandBody::Fetch(fetch) => match fetch.set {
                MessageSet::Set(set) => set,
                MessageSet::SavedResult => panic!("$"),
            },
            other => panic!("{other:?}"),
        }
    }
}
