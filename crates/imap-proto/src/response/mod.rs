//! What a server sends, as typed values that serialise themselves correctly quoted.
//!
//! ```text
//! S: * 23 EXISTS                                  Data::Exists(23)
//! S: * OK [UIDVALIDITY 3857529045] UIDs valid     StatusResponse + Code::UidValidity
//! S: A142 OK [READ-WRITE] SELECT completed
//! S: + Ready for literal data                     Continuation::ready()
//! ```
//!
//! Strings are written as atoms, quoted strings or literals as their content requires:
//! a quoted string never holds CR, LF or NUL, nor 8-bit bytes unless the session is in
//! UTF-8 mode ([`Utf8Mode::On`]); anything else becomes a literal. Mailbox names are
//! written in modified UTF-7 unless the session is in UTF-8 mode.

mod body;
mod data;
mod fetch;
mod status;

pub use body::{
    BodyFields, BodyStructure, Disposition, MAX_BODY_DEPTH, MultipartExtension,
    SinglePartExtension, SinglePartKind,
};
pub use data::{
    Data, ESearchResponse, ListAttribute, ListExtendedItem, ListItem, NamespaceDescription,
    QuotaResource, StatusValue, ThreadNode,
};
pub use fetch::{Address, Envelope, FetchItem};
pub use status::{Code, Continuation, StatusKind, StatusResponse};

use crate::lexer::is_astring_char;
use crate::limits::Utf8Mode;
use crate::mailbox::encode_name;

/// Any one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Status(StatusResponse),
    Data(Data),
    Continuation(Continuation),
}

impl Response {
    pub fn encode(&self, out: &mut Vec<u8>, utf8: Utf8Mode) {
        match self {
            Response::Status(status) => status.encode(out, utf8),
            Response::Data(data) => data.encode(out, utf8),
            Response::Continuation(continuation) => continuation.encode(out),
        }
    }

    pub fn to_bytes(&self, utf8: Utf8Mode) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out, utf8);
        out
    }
}

impl From<StatusResponse> for Response {
    fn from(status: StatusResponse) -> Self {
        Response::Status(status)
    }
}

impl From<Data> for Response {
    fn from(data: Data) -> Self {
        Response::Data(data)
    }
}

impl From<Continuation> for Response {
    fn from(continuation: Continuation) -> Self {
        Response::Continuation(continuation)
    }
}

/// Whether `bytes` may be sent as a quoted string in this mode.
pub fn can_quote(bytes: &[u8], utf8: Utf8Mode) -> bool {
    let safe = bytes.iter().all(|&b| !matches!(b, 0 | b'\r' | b'\n'));
    let eight_bit_ok =
        bytes.is_ascii() || (utf8 == Utf8Mode::On && std::str::from_utf8(bytes).is_ok());
    safe && eight_bit_ok
}

/// `quoted`: writes `bytes` between double quotes, `"` and `\` escaped, if
/// [`can_quote`] allows; otherwise writes nothing and returns false.
pub fn write_quoted(out: &mut Vec<u8>, bytes: &[u8], utf8: Utf8Mode) -> bool {
    if !can_quote(bytes, utf8) {
        return false;
    }
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    true
}

/// `literal`: `{n}` CRLF and the bytes.
pub fn write_literal(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// `literal8` (RFC 3516): `~{n}` CRLF and the bytes, which may contain NUL.
pub fn write_literal8(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("~{{{}}}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// `string`: quoted if it can be, a literal otherwise.
pub fn write_string(out: &mut Vec<u8>, bytes: &[u8], utf8: Utf8Mode) {
    if !write_quoted(out, bytes, utf8) {
        write_literal(out, bytes);
    }
}

/// `nstring`: `NIL` or a string.
pub fn write_nstring(out: &mut Vec<u8>, bytes: Option<&[u8]>, utf8: Utf8Mode) {
    match bytes {
        Some(bytes) => write_string(out, bytes, utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `astring`: an atom when every byte is an ASTRING-CHAR (and it is not `NIL`, which a
/// client could read as nothing), a string otherwise.
pub fn write_astring(out: &mut Vec<u8>, bytes: &[u8], utf8: Utf8Mode) {
    let atom = !bytes.is_empty()
        && bytes.iter().all(|&b| is_astring_char(b))
        && !bytes.eq_ignore_ascii_case(b"NIL");
    if atom {
        out.extend_from_slice(bytes);
    } else {
        write_string(out, bytes, utf8);
    }
}

/// `mailbox`: the UTF-8 name, in modified UTF-7 unless in UTF-8 mode, as an astring.
pub fn write_mailbox(out: &mut Vec<u8>, name: &str, utf8: Utf8Mode) {
    write_astring(out, encode_name(name, utf8).as_bytes(), utf8)
}

/// `text` of a status response: CR, LF and NUL become spaces; outside UTF-8 mode,
/// anything but ASCII becomes `?`.
pub(crate) fn write_text(out: &mut Vec<u8>, text: &str, utf8: Utf8Mode) {
    for c in text.chars() {
        match c {
            '\r' | '\n' | '\0' => out.push(b' '),
            c if c.is_ascii() || utf8 == Utf8Mode::On => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
            _ => out.push(b'?'),
        }
    }
}

/// `"(" item *(SP item) ")"`, or `()` when empty.
pub(crate) fn write_list<T>(
    out: &mut Vec<u8>,
    items: &[T],
    mut write: impl FnMut(&mut Vec<u8>, &T),
) {
    out.push(b'(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write(out, item);
    }
    out.push(b')');
}

/// A list, or `NIL` when empty (`env-from`, `body-fld-param`, namespaces).
pub(crate) fn write_list_or_nil<T>(
    out: &mut Vec<u8>,
    items: &[T],
    write: impl FnMut(&mut Vec<u8>, &T),
) {
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        write_list(out, items, write);
    }
}

/// `"(" 1*item ")"` with nothing between the items (`env-from = "(" 1*address ")"`,
/// `namespace = "(" 1*namespace-descr ")"`), or `NIL` when empty.
pub(crate) fn write_adjacent_or_nil<T>(
    out: &mut Vec<u8>,
    items: &[T],
    mut write: impl FnMut(&mut Vec<u8>, &T),
) {
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for item in items {
        write(out, item);
    }
    out.push(b')');
}

/// An atom the server chose (a capability, a flag): written as given, minus anything an
/// atom may not contain, so a mistake cannot break the framing.
pub(crate) fn write_atom(out: &mut Vec<u8>, atom: &str) {
    out.extend(
        atom.bytes()
            .filter(|&b| b > b' ' && b != 0x7f && b.is_ascii()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(bytes: &[u8], utf8: Utf8Mode) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, bytes, utf8);
        out
    }

    fn astring(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_astring(&mut out, bytes, Utf8Mode::Off);
        out
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(
            string(br#"say "hi" \o/"#, Utf8Mode::Off),
            br#""say \"hi\" \\o/""#
        );
    }

    #[test]
    fn crlf_nul_and_8bit_force_a_literal() {
        assert_eq!(string(b"a\r\nb", Utf8Mode::On), b"{4}\r\na\r\nb");
        assert_eq!(string(b"a\0b", Utf8Mode::On), b"{3}\r\na\0b");
        assert_eq!(string("é".as_bytes(), Utf8Mode::Off), b"{2}\r\n\xc3\xa9");
        assert_eq!(string("é".as_bytes(), Utf8Mode::On), "\"é\"".as_bytes());
        assert_eq!(string(b"\xff", Utf8Mode::On), b"{1}\r\n\xff");
        assert_eq!(string(b"", Utf8Mode::Off), b"\"\"");
    }

    #[test]
    fn astrings_are_atoms_when_they_can_be() {
        assert_eq!(astring(b"INBOX"), b"INBOX");
        assert_eq!(astring(b"a]b"), b"a]b");
        assert_eq!(astring(b"two words"), b"\"two words\"");
        assert_eq!(astring(b""), b"\"\"");
        assert_eq!(astring(b"nil"), b"\"nil\"");
        assert_eq!(astring(b"a*"), b"\"a*\"");
    }

    #[test]
    fn mailbox_names_follow_the_mode() {
        let mut out = Vec::new();
        write_mailbox(&mut out, "送信済み", Utf8Mode::Off);
        out.push(b' ');
        write_mailbox(&mut out, "送信済み", Utf8Mode::On);
        out.push(b' ');
        write_mailbox(&mut out, "Tom & Jerry", Utf8Mode::Off);
        assert_eq!(
            out,
            "&kAFP4W4IMH8- \"送信済み\" \"Tom &- Jerry\"".as_bytes()
        );
    }

    #[test]
    fn text_cannot_break_the_line() {
        let mut out = Vec::new();
        write_text(&mut out, "a\r\nb é", Utf8Mode::Off);
        assert_eq!(out, b"a  b ?");
    }
}
