//! The one error type of this crate: why a command could not be read.

use thiserror::Error;

/// What kind of problem made a command unreadable.
///
/// Every kind is answered with a tagged `BAD` (or an untagged `* BAD` when the tag
/// itself was unreadable); [`ParseError::status_response`] shows the mapping this crate
/// suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The command text (everything but literal data) is longer than
    /// [`Limits::max_line`](crate::Limits::max_line).
    LineTooLong,
    /// A literal is larger than the limits allow; refused before its data is read. For a
    /// synchronizing literal the client sends nothing more; a non-synchronizing literal's
    /// bytes are skipped by the reader.
    LiteralTooLarge,
    /// More literals in one command than [`Limits::max_literals`](crate::Limits::max_literals).
    TooManyLiterals,
    /// Parenthesised lists, `NOT` or `OR` nested deeper than
    /// [`Limits::max_nesting`](crate::Limits::max_nesting).
    NestingTooDeep,
    /// More search keys than [`Limits::max_search_keys`](crate::Limits::max_search_keys).
    TooManySearchKeys,
    /// A sequence set that is malformed (`0`, `1:`, `a`) or has more ranges than
    /// [`Limits::max_sequence_ranges`](crate::Limits::max_sequence_ranges).
    InvalidSequenceSet,
    /// The command name is not one this crate knows.
    UnknownCommand,
    /// Anything else that does not match the grammar.
    Syntax,
}

/// A command that could not be read.
///
/// `tag` is the command's tag when it could be read (so the session can answer
/// `TAG BAD ...`), `None` when the line did not even start with a valid tag (answer
/// `* BAD ...`). `message` is a short English text without CR or LF, safe to send.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ParseError {
    pub tag: Option<String>,
    pub kind: ErrorKind,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(tag: Option<String>, kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        message.retain(|c| c != '\r' && c != '\n');
        Self { tag, kind, message }
    }

    /// The reply this crate suggests for the error:
    ///
    /// ```text
    /// A1 BAD [TOOBIG] Literal too large        (LineTooLong, LiteralTooLarge)
    /// A1 BAD [LIMIT] Too many search keys      (TooManyLiterals, NestingTooDeep, TooManySearchKeys)
    /// A1 BAD Unknown command                   (everything else)
    /// * BAD Invalid tag                        (no readable tag)
    /// ```
    ///
    /// RFC 7888 asks for `BAD [TOOBIG]` when a LITERAL- client sends a non-synchronizing
    /// literal over 4096 octets; a session may prefer `NO [TOOBIG]` for an APPEND whose
    /// synchronizing literal it refused.
    pub fn status_response(&self) -> crate::response::StatusResponse {
        use crate::response::{Code, StatusResponse};
        let code = match self.kind {
            ErrorKind::LineTooLong | ErrorKind::LiteralTooLarge => Some(Code::TooBig),
            ErrorKind::TooManyLiterals
            | ErrorKind::NestingTooDeep
            | ErrorKind::TooManySearchKeys => Some(Code::Limit),
            _ => None,
        };
        let mut response = StatusResponse::bad(self.tag.clone(), self.message.clone());
        response.code = code;
        response
    }
}
