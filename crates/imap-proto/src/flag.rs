//! Message flags: the system flags, keywords, and the extra forms responses use
//! (`\Recent` in FETCH of IMAP4rev1, `\*` in PERMANENTFLAGS).
//!
//! ```text
//! C: A1 STORE 2:4 +FLAGS (\Deleted $Forwarded)
//! S: * OK [PERMANENTFLAGS (\Deleted \Seen \*)] Limited
//! ```

use std::fmt;

use crate::lexer::{Cursor, PResult, syntax};

/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword / flag-extension`
///
/// Keywords keep the case the client gave; IMAP compares them without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    Answered,
    Flagged,
    Deleted,
    Seen,
    Draft,
    /// `flag-keyword = atom`, such as `$Forwarded` or `NonJunk`.
    Keyword(String),
    /// `flag-extension = "\" atom`: a system flag this crate does not name, without the
    /// backslash (`\Recent` is `Extension("Recent")`).
    Extension(String),
}

impl Flag {
    /// Parses a flag as it appears on the wire: `\Seen`, `$Forwarded`.
    pub fn parse(s: &str) -> Option<Self> {
        let limits = crate::Limits::default();
        let mut c = Cursor::new(s.as_bytes(), &limits, crate::Utf8Mode::Off);
        let flag = flag(&mut c).ok()?;
        c.peek().is_none().then_some(flag)
    }

    /// Whether this is `\Recent` (IMAP4rev1 only; it may not be stored).
    pub fn is_recent(&self) -> bool {
        matches!(self, Flag::Extension(name) if name.eq_ignore_ascii_case("Recent"))
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Answered => f.write_str("\\Answered"),
            Flag::Flagged => f.write_str("\\Flagged"),
            Flag::Deleted => f.write_str("\\Deleted"),
            Flag::Seen => f.write_str("\\Seen"),
            Flag::Draft => f.write_str("\\Draft"),
            Flag::Keyword(keyword) => f.write_str(keyword),
            Flag::Extension(name) => write!(f, "\\{name}"),
        }
    }
}

/// `flag`
pub(crate) fn flag(c: &mut Cursor<'_>) -> PResult<Flag> {
    if c.eat(b'\\') {
        let name = c.atom("expected a flag name after '\\'")?;
        Ok(match name.to_ascii_uppercase().as_str() {
            "ANSWERED" => Flag::Answered,
            "FLAGGED" => Flag::Flagged,
            "DELETED" => Flag::Deleted,
            "SEEN" => Flag::Seen,
            "DRAFT" => Flag::Draft,
            _ => Flag::Extension(name.to_owned()),
        })
    } else {
        Ok(Flag::Keyword(c.atom("expected a flag")?.to_owned()))
    }
}

/// `flag-list = "(" [flag *(SP flag)] ")"`
pub(crate) fn flag_list(c: &mut Cursor<'_>) -> PResult<Vec<Flag>> {
    c.expect(b'(', "expected a flag list like (\\Seen)")?;
    let mut flags = Vec::new();
    if c.eat(b')') {
        return Ok(flags);
    }
    loop {
        flags.push(flag(c)?);
        match c.peek() {
            Some(b' ') => c.sp()?,
            Some(b')') => {
                c.eat(b')');
                return Ok(flags);
            }
            _ => return Err(syntax("expected ' ' or ')' in a flag list")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_flags_are_case_insensitive_and_keywords_keep_their_case() {
        assert_eq!(Flag::parse("\\seen"), Some(Flag::Seen));
        assert_eq!(
            Flag::parse("$Forwarded"),
            Some(Flag::Keyword("$Forwarded".into()))
        );
        assert_eq!(Flag::parse("\\Recent").map(|f| f.is_recent()), Some(true));
        assert_eq!(Flag::parse("\\Foo").unwrap().to_string(), "\\Foo");
        assert_eq!(Flag::parse("a b"), None);
        assert_eq!(Flag::parse("\\"), None);
    }
}
