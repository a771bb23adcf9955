//! Mailbox names: `INBOX` without regard to case, and the modified UTF-7 of RFC 3501
//! section 5.1.3 that IMAP4rev1 clients use for anything but printable ASCII.
//!
//! ```text
//! C: A1 SELECT "&kAFP4W4IMH8-"          (IMAP4rev1: modified UTF-7 for 送信済み)
//! C: A1 SELECT "送信済み"                (after ENABLE UTF8=ACCEPT or ENABLE IMAP4rev2)
//! ```
//!
//! The parser turns both into the UTF-8 name `送信済み`; the response writer turns it back
//! into whichever form the session has enabled.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::lexer::{Cursor, PResult, is_list_char, syntax};
use crate::limits::Utf8Mode;

/// A mailbox name in UTF-8, with `INBOX` in any case turned into `INBOX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName(String);

impl MailboxName {
    /// `name` as given, except that any case of `inbox` becomes `INBOX`.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        if name.eq_ignore_ascii_case("INBOX") {
            Self("INBOX".to_owned())
        } else {
            Self(name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MailboxName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A special use of a mailbox (RFC 6154, RFC 8457): the `\Drafts` of `CREATE Drafts
/// (USE (\Drafts))` and of `* LIST (\Drafts) "/" Drafts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
    /// RFC 8457.
    Important,
    /// Another `\atom`, without the backslash; CREATE answers it with `NO [USEATTR]`.
    Other(String),
}

impl SpecialUse {
    /// From the attribute name without its backslash, case-insensitively.
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "ALL" => SpecialUse::All,
            "ARCHIVE" => SpecialUse::Archive,
            "DRAFTS" => SpecialUse::Drafts,
            "FLAGGED" => SpecialUse::Flagged,
            "JUNK" => SpecialUse::Junk,
            "SENT" => SpecialUse::Sent,
            "TRASH" => SpecialUse::Trash,
            "IMPORTANT" => SpecialUse::Important,
            _ => SpecialUse::Other(name.to_owned()),
        }
    }
}

impl fmt::Display for SpecialUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SpecialUse::All => "All",
            SpecialUse::Archive => "Archive",
            SpecialUse::Drafts => "Drafts",
            SpecialUse::Flagged => "Flagged",
            SpecialUse::Junk => "Junk",
            SpecialUse::Sent => "Sent",
            SpecialUse::Trash => "Trash",
            SpecialUse::Important => "Important",
            SpecialUse::Other(name) => name,
        };
        write!(f, "\\{name}")
    }
}

/// RFC 3501's "modified BASE64": RFC 4648 base64 with `,` for `/` and no padding.
const MODIFIED_BASE64: GeneralPurpose = {
    let alphabet =
        match Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,") {
            Ok(alphabet) => alphabet,
            Err(_) => panic!("the modified base64 alphabet is valid"),
        };
    let config = GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false);
    GeneralPurpose::new(&alphabet, config)
};

fn is_printable_ascii(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Encodes a UTF-8 mailbox name in modified UTF-7: printable ASCII stands for itself
/// (`&` as `&-`), anything else is UTF-16 in modified base64 between `&` and `-`.
///
/// ```
/// use postcell_imap_proto::mailbox::encode_mutf7;
/// assert_eq!(encode_mutf7("送信済み"), "&kAFP4W4IMH8-");
/// assert_eq!(encode_mutf7("Tom & Jerry"), "Tom &- Jerry");
/// ```
pub fn encode_mutf7(name: &str) -> String {
    let engine = &MODIFIED_BASE64;
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<u8>, out: &mut String| {
        if !pending.is_empty() {
            out.push('&');
            out.push_str(&engine.encode(&pending));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if is_printable_ascii(c) {
            flush(&mut pending, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                pending.extend_from_slice(&unit.to_be_bytes());
            }
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a modified UTF-7 mailbox name; `None` if it is not valid modified UTF-7:
/// 8-bit or control bytes, an `&` without its `-`, bad base64, leftover bits, a lone
/// UTF-16 surrogate, or printable ASCII that was encoded although it stands for itself.
///
/// ```
/// use postcell_imap_proto::mailbox::decode_mutf7;
/// assert_eq!(decode_mutf7("&kAFP4W4IMH8-").as_deref(), Some("送信済み"));
/// assert_eq!(decode_mutf7("Entw&APw-rfe").as_deref(), Some("Entwürfe"));
/// assert_eq!(decode_mutf7("&-").as_deref(), Some("&"));
/// assert_eq!(decode_mutf7("&AGE-"), None); // "a" must not be encoded
/// ```
pub fn decode_mutf7(name: &str) -> Option<String> {
    let engine = &MODIFIED_BASE64;
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if c == '&' {
            let after = rest.get(1..)?;
            let end = after.find('-')?;
            let encoded = after.get(..end)?;
            rest = after.get(end + 1..)?;
            if encoded.is_empty() {
                out.push('&');
                continue;
            }
            let bytes = engine.decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units = bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            for decoded in char::decode_utf16(units) {
                let decoded = decoded.ok()?;
                if is_printable_ascii(decoded) {
                    return None;
                }
                out.push(decoded);
            }
        } else if is_printable_ascii(c) {
            out.push(c);
            rest = rest.get(1..)?;
        } else {
            return None;
        }
    }
    Some(out)
}

/// The UTF-8 name a client sent, decoded per the session's mode.
pub(crate) fn decode_name(bytes: &[u8], utf8: Utf8Mode) -> PResult<String> {
    let name = match utf8 {
        Utf8Mode::On => std::str::from_utf8(bytes)
            .map_err(|_| syntax("a mailbox name must be UTF-8"))?
            .to_owned(),
        Utf8Mode::Off => {
            let ascii = std::str::from_utf8(bytes)
                .ok()
                .filter(|s| s.is_ascii())
                .ok_or_else(|| {
                    syntax("8-bit mailbox name without ENABLE UTF8=ACCEPT (use modified UTF-7)")
                })?;
            decode_mutf7(ascii).ok_or_else(|| syntax("mailbox name is not valid modified UTF-7"))?
        }
    };
    if name.chars().any(|c| c.is_control()) {
        return Err(syntax("control characters in a mailbox name"));
    }
    Ok(name)
}

/// The name as it goes on the wire in the session's mode.
pub(crate) fn encode_name(name: &str, utf8: Utf8Mode) -> Cow<'_, str> {
    match utf8 {
        Utf8Mode::On => Cow::Borrowed(name),
        Utf8Mode::Off => Cow::Owned(encode_mutf7(name)),
    }
}

/// `mailbox = "INBOX" / astring`
pub(crate) fn mailbox(c: &mut Cursor<'_>) -> PResult<MailboxName> {
    let bytes = c.astring()?;
    decode_name(&bytes, c.utf8).map(MailboxName::new)
}

/// `list-mailbox = 1*list-char / string`: a LIST pattern, with `*` and `%` wildcards.
pub(crate) fn list_mailbox(c: &mut Cursor<'_>) -> PResult<String> {
    let bytes = match c.peek() {
        Some(b'"' | b'{') => c.string()?,
        _ => {
            let bytes = c.take_while(is_list_char);
            if bytes.is_empty() {
                return Err(syntax("expected a mailbox pattern"));
            }
            Cow::Borrowed(bytes)
        }
    };
    decode_name(&bytes, c.utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutf7_round_trips() {
        for (utf8, mutf7) in [
            ("送信済み", "&kAFP4W4IMH8-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("&", "&-"),
            ("a&b", "a&-b"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("😀", "&2D3eAA-"),
            ("", ""),
        ] {
            assert_eq!(encode_mutf7(utf8), mutf7, "{utf8}");
            assert_eq!(decode_mutf7(mutf7).as_deref(), Some(utf8), "{mutf7}");
        }
    }

    #[test]
    fn invalid_mutf7_is_refused() {
        for bad in [
            "&", "&kAFP", "&AGE-", "a\u{7f}", "&2D0-", "&kAF-", "&kA,-", "é",
        ] {
            assert_eq!(decode_mutf7(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn inbox_is_case_insensitive() {
        assert!(MailboxName::new("inBoX").is_inbox());
        assert_eq!(MailboxName::new("inbox").as_str(), "INBOX");
        assert!(!MailboxName::new("INBOX/sub").is_inbox());
    }

    #[test]
    fn decoding_depends_on_the_mode() {
        assert_eq!(
            decode_name(b"&kAFP4W4IMH8-", Utf8Mode::Off).unwrap(),
            "送信済み"
        );
        assert_eq!(
            decode_name(b"&kAFP4W4IMH8-", Utf8Mode::On).unwrap(),
            "&kAFP4W4IMH8-"
        );
        assert_eq!(
            decode_name("送信済み".as_bytes(), Utf8Mode::On).unwrap(),
            "送信済み"
        );
        assert!(decode_name("送信済み".as_bytes(), Utf8Mode::Off).is_err());
        assert!(decode_name(b"\xff", Utf8Mode::On).is_err());
        assert!(decode_name(b"a\x01b", Utf8Mode::On).is_err());
    }
}
