//! The tokens of RFC 9051 section 9 (formal syntax) over one framed command: atoms,
//! astrings, quoted strings, literals, numbers, dates and nesting.
//!
//! A [`Cursor`] never panics and never reads past its input. Running out of input is
//! an error, except inside a literal whose data has not arrived yet: that is
//! [`Fail::Incomplete`], which is how the reader checks a command before it asks the
//! client for a literal (see [`crate::reader`]).

use std::borrow::Cow;
use std::num::NonZeroU32;

use crate::datetime::{Date, DateTime};
use crate::error::ErrorKind;
use crate::limits::{Limits, Utf8Mode};

/// Why a parse stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fail {
    /// The command so far is valid and stops at a literal whose data is not there yet.
    Incomplete,
    /// The command does not match the grammar or breaks a limit.
    Error {
        kind: ErrorKind,
        message: Cow<'static, str>,
    },
}

pub(crate) type PResult<T> = Result<T, Fail>;

/// The most digits a literal's size may have (`u64::MAX` has 20).
pub(crate) const MAX_SIZE_DIGITS: usize = 20;

pub(crate) fn syntax(message: impl Into<Cow<'static, str>>) -> Fail {
    Fail::Error {
        kind: ErrorKind::Syntax,
        message: message.into(),
    }
}

pub(crate) fn fail(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Fail {
    Fail::Error {
        kind,
        message: message.into(),
    }
}

/// `CHAR = %x01-7F`
pub(crate) fn is_char(b: u8) -> bool {
    (0x01..=0x7f).contains(&b)
}

/// `CTL = %x00-1F / %x7F`
pub(crate) fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// `ATOM-CHAR = <any CHAR except atom-specials>` where
/// `atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials`.
pub(crate) fn is_atom_char(b: u8) -> bool {
    is_char(b)
        && !is_ctl(b)
        && !matches!(
            b,
            b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
        )
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `tag = 1*<any ASTRING-CHAR except "+">`
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// `list-char = ATOM-CHAR / list-wildcards / resp-specials`
pub(crate) fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || matches!(b, b'%' | b'*' | b']')
}

/// A cursor over one framed command (its lines, CRLFs and literal data, as received).
pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
    pub(crate) limits: &'a Limits,
    pub(crate) utf8: Utf8Mode,
    depth: usize,
    search_keys: usize,
    /// What string literals (all but APPEND's message) may still hold, in total.
    string_budget: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(input: &'a [u8], limits: &'a Limits, utf8: Utf8Mode) -> Self {
        Self {
            input,
            pos: 0,
            limits,
            utf8,
            depth: 0,
            search_keys: 0,
            string_budget: limits.max_line,
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, offset: usize) -> Option<u8> {
        self.input.get(self.pos.saturating_add(offset)).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.input.len());
    }

    /// Consumes `b` if it is next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.advance(1);
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, b: u8, message: &'static str) -> PResult<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(syntax(message))
        }
    }

    pub(crate) fn sp(&mut self) -> PResult<()> {
        self.expect(b' ', "expected a space")
    }

    /// True at the CRLF (or bare LF) that ends a line.
    pub(crate) fn at_line_end(&self) -> bool {
        matches!(self.peek(), Some(b'\r' | b'\n') | None)
    }

    /// `CRLF` (a bare LF is accepted too), which must end the command.
    pub(crate) fn end_of_command(&mut self) -> PResult<()> {
        match self.peek() {
            Some(b'\r') if self.peek_at(1) == Some(b'\n') => self.advance(2),
            Some(b'\n') => self.advance(1),
            Some(b' ') => return Err(syntax("unexpected space at the end of the command")),
            _ => return Err(syntax("unexpected characters at the end of the command")),
        }
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(syntax("unexpected data after the end of the command"))
        }
    }

    pub(crate) fn take_while(&mut self, predicate: impl Fn(u8) -> bool) -> &'a [u8] {
        let rest = self.rest();
        let n = rest.iter().take_while(|&&b| predicate(b)).count();
        self.advance(n);
        rest.get(..n).unwrap_or_default()
    }

    /// Consumes `keyword` (case-insensitively) if it is next and is a whole word, that is,
    /// not followed by another atom character.
    pub(crate) fn try_keyword(&mut self, keyword: &str) -> bool {
        let rest = self.rest();
        let n = keyword.len();
        let Some(head) = rest.get(..n) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(keyword.as_bytes()) {
            return false;
        }
        if rest.get(n).is_some_and(|&b| is_atom_char(b)) {
            return false;
        }
        self.advance(n);
        true
    }

    /// Consumes the exact bytes `prefix` (case-insensitively), with no word boundary check.
    pub(crate) fn try_prefix(&mut self, prefix: &str) -> bool {
        match self.rest().get(..prefix.len()) {
            Some(head) if head.eq_ignore_ascii_case(prefix.as_bytes()) => {
                self.advance(prefix.len());
                true
            }
            _ => false,
        }
    }

    /// `atom = 1*ATOM-CHAR`
    pub(crate) fn atom(&mut self, what: &'static str) -> PResult<&'a str> {
        let bytes = self.take_while(is_atom_char);
        if bytes.is_empty() {
            return Err(syntax(what));
        }
        // ATOM-CHARs are ASCII, so this never fails.
        std::str::from_utf8(bytes).map_err(|_| syntax(what))
    }

    /// `astring = 1*ASTRING-CHAR / string`
    pub(crate) fn astring(&mut self) -> PResult<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let bytes = self.take_while(is_astring_char);
                if bytes.is_empty() {
                    Err(syntax("expected an atom, a quoted string or a literal"))
                } else {
                    Ok(Cow::Borrowed(bytes))
                }
            }
        }
    }

    /// `string = quoted / literal`
    pub(crate) fn string(&mut self) -> PResult<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => {
                // String literals share one budget per command, so that the text a
                // command makes the parser go over (again, at each literal) stays bounded.
                let (data, _) = self.literal(self.string_budget as u64, false)?;
                self.string_budget -= data.len();
                Ok(Cow::Borrowed(data))
            }
            _ => Err(syntax("expected a quoted string or a literal")),
        }
    }

    /// `nstring = string / nil`
    pub(crate) fn nstring(&mut self) -> PResult<Option<Cow<'a, [u8]>>> {
        if self.try_keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`, where `QUOTED-CHAR` is any TEXT-CHAR but
    /// `"` and `\`, or `\` followed by one of them. Bytes above 0x7F are kept as they are
    /// (RFC 9051 allows UTF-8 here; the caller decides what 8-bit text means).
    pub(crate) fn quoted(&mut self) -> PResult<Cow<'a, [u8]>> {
        self.expect(b'"', "expected a quoted string")?;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => {
                    return Err(syntax("unterminated quoted string"));
                }
                Some(0) => return Err(syntax("NUL in a quoted string")),
                Some(b'"') => {
                    let raw = self.input.get(start..self.pos).unwrap_or_default();
                    self.advance(1);
                    return Ok(match owned {
                        Some(bytes) => Cow::Owned(bytes),
                        None => Cow::Borrowed(raw),
                    });
                }
                Some(b'\\') => {
                    let escaped = match self.peek_at(1) {
                        Some(b @ (b'"' | b'\\')) => b,
                        _ => {
                            return Err(syntax(
                                "a backslash in a quoted string may only escape \" or \\",
                            ));
                        }
                    };
                    let bytes = owned.get_or_insert_with(|| {
                        self.input.get(start..self.pos).unwrap_or_default().to_vec()
                    });
                    bytes.push(escaped);
                    self.advance(2);
                }
                Some(b) => {
                    if let Some(bytes) = owned.as_mut() {
                        bytes.push(b);
                    }
                    self.advance(1);
                }
            }
        }
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` and, when `binary` is allowed,
    /// `literal8 = "~{" number64 ["+"] "}" CRLF *OCTET` (RFC 3516). Returns the data and
    /// whether it was a literal8.
    ///
    /// A literal larger than `max` is refused before its data is looked at; a literal
    /// whose data is not (yet) in the input is [`Fail::Incomplete`].
    pub(crate) fn literal(&mut self, max: u64, binary: bool) -> PResult<(&'a [u8], bool)> {
        let is_literal8 = binary && self.peek() == Some(b'~');
        if is_literal8 {
            self.advance(1);
        }
        self.expect(b'{', "expected a literal")?;
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() || digits.len() > MAX_SIZE_DIGITS {
            return Err(syntax("expected the size of a literal"));
        }
        let size = parse_u64(digits)
            .ok_or_else(|| fail(ErrorKind::LiteralTooLarge, "literal size out of range"))?;
        self.eat(b'+');
        self.expect(b'}', "expected '}' after the size of a literal")?;
        match self.peek() {
            Some(b'\r') if self.peek_at(1) == Some(b'\n') => self.advance(2),
            Some(b'\n') => self.advance(1),
            _ => return Err(syntax("a literal's size must end the line")),
        }
        if size > max {
            return Err(fail(
                ErrorKind::LiteralTooLarge,
                format!("literal of {size} octets is larger than the {max} allowed here"),
            ));
        }
        let available = self.input.len() - self.pos;
        let Ok(size) = usize::try_from(size) else {
            return Err(fail(
                ErrorKind::LiteralTooLarge,
                "literal size out of range",
            ));
        };
        if available < size {
            return Err(Fail::Incomplete);
        }
        let data = self
            .input
            .get(self.pos..self.pos + size)
            .unwrap_or_default();
        if !is_literal8 && data.contains(&0) {
            return Err(syntax(
                "NUL in a literal (send binary data as a literal8 ~{n})",
            ));
        }
        self.advance(size);
        Ok((data, is_literal8))
    }

    /// `number = 1*DIGIT` that fits 32 bits.
    pub(crate) fn number(&mut self) -> PResult<u32> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(syntax("expected a number"));
        }
        parse_u64(digits)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| syntax("number out of range"))
    }

    /// `nz-number = digit-nz *DIGIT`
    pub(crate) fn nz_number(&mut self) -> PResult<NonZeroU32> {
        NonZeroU32::new(self.number()?).ok_or_else(|| syntax("expected a number greater than zero"))
    }

    /// `number64 = 1*DIGIT`, an unsigned 63-bit integer (RFC 9051).
    pub(crate) fn number64(&mut self) -> PResult<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(syntax("expected a number"));
        }
        parse_u64(digits)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| syntax("number out of range"))
    }

    /// `mod-sequence-value = 1*DIGIT`, 1 to 2^63-1 (RFC 7162).
    pub(crate) fn mod_sequence_value(&mut self) -> PResult<u64> {
        match self.number64()? {
            0 => Err(syntax("expected a mod-sequence greater than zero")),
            n => Ok(n),
        }
    }

    /// `date = date-text / DQUOTE date-text DQUOTE`, `date-text = date-day "-" date-month "-" date-year`
    pub(crate) fn date(&mut self) -> PResult<Date> {
        let quoted = self.eat(b'"');
        let day = self.take_while(|b| b.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            return Err(syntax("expected a date like 1-Feb-1994"));
        }
        let day = parse_u64(day).unwrap_or(0);
        let date = self.month_year(day)?;
        if quoted {
            self.expect(b'"', "expected '\"' after the date")?;
        }
        Ok(date)
    }

    fn month_year(&mut self, day: u64) -> PResult<Date> {
        self.expect(b'-', "expected a date like 1-Feb-1994")?;
        let month = self
            .rest()
            .get(..3)
            .and_then(crate::datetime::month_from_name);
        let Some(month) = month else {
            return Err(syntax("expected a month name (Jan, Feb, ...)"));
        };
        self.advance(3);
        self.expect(b'-', "expected a date like 1-Feb-1994")?;
        let year = self.take_while(|b| b.is_ascii_digit());
        if year.len() != 4 {
            return Err(syntax("expected a four-digit year"));
        }
        let year = parse_u64(year).unwrap_or(0);
        u8::try_from(day)
            .ok()
            .and_then(|day| Date::new(year as u16, month, day))
            .ok_or_else(|| syntax("no such date"))
    }

    /// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`
    pub(crate) fn date_time(&mut self) -> PResult<DateTime> {
        self.expect(
            b'"',
            "expected a date-time like \"17-Jul-1996 02:44:25 -0700\"",
        )?;
        let day = match (self.peek(), self.peek_at(1)) {
            (Some(b' '), Some(d)) if d.is_ascii_digit() => u64::from(d - b'0'),
            (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => {
                u64::from(a - b'0') * 10 + u64::from(b - b'0')
            }
            _ => {
                return Err(syntax(
                    "expected a date-time like \"17-Jul-1996 02:44:25 -0700\"",
                ));
            }
        };
        self.advance(2);
        let date = self.month_year(day)?;
        self.sp()?;
        let hour = self.two_digits()?;
        self.expect(b':', "expected a time like 02:44:25")?;
        let minute = self.two_digits()?;
        self.expect(b':', "expected a time like 02:44:25")?;
        let second = self.two_digits()?;
        self.sp()?;
        let sign: i16 = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(syntax("expected a zone like -0700")),
        };
        self.advance(1);
        let zone_hours = self.two_digits()?;
        let zone_minutes = self.two_digits()?;
        if zone_minutes > 59 {
            return Err(syntax("no such zone"));
        }
        self.expect(b'"', "expected '\"' after the date-time")?;
        let offset = sign * (i16::from(zone_hours) * 60 + i16::from(zone_minutes));
        DateTime::new(date, hour, minute, second, offset).ok_or_else(|| syntax("no such time"))
    }

    fn two_digits(&mut self) -> PResult<u8> {
        match (self.peek(), self.peek_at(1)) {
            (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => {
                self.advance(2);
                Ok((a - b'0') * 10 + (b - b'0'))
            }
            _ => Err(syntax("expected two digits")),
        }
    }

    /// Enters a nested construct (a parenthesised list, `NOT`, `OR`).
    pub(crate) fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.limits.max_nesting {
            Err(fail(
                ErrorKind::NestingTooDeep,
                format!("nested deeper than {} levels", self.limits.max_nesting),
            ))
        } else {
            Ok(())
        }
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Counts one more search key against [`Limits::max_search_keys`].
    pub(crate) fn count_search_key(&mut self) -> PResult<()> {
        self.search_keys += 1;
        if self.search_keys > self.limits.max_search_keys {
            Err(fail(
                ErrorKind::TooManySearchKeys,
                format!("more than {} search keys", self.limits.max_search_keys),
            ))
        } else {
            Ok(())
        }
    }
}

/// Parses ASCII digits; `None` on overflow or anything but digits.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Text that must be UTF-8 (a keyword, a header name): bytes to `String`.
pub(crate) fn utf8_string(bytes: Cow<'_, [u8]>, what: &'static str) -> PResult<String> {
    String::from_utf8(bytes.into_owned()).map_err(|_| syntax(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(input: &[u8]) -> Cursor<'_> {
        static LIMITS: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(Limits::default);
        Cursor::new(input, &LIMITS, Utf8Mode::Off)
    }

    #[test]
    fn quoted_strings_unescape_quote_and_backslash() {
        let mut c = cursor(br#""a \"b\" \\ c" "#);
        assert_eq!(c.quoted().unwrap().as_ref(), br#"a "b" \ c"#);
        assert_eq!(c.peek(), Some(b' '));
    }

    #[test]
    fn unterminated_quoted_string_is_a_syntax_error() {
        let mut c = cursor(b"\"abc\r\n");
        assert_eq!(
            c.quoted().unwrap_err(),
            syntax("unterminated quoted string")
        );
        let mut c = cursor(b"\"abc");
        assert!(c.quoted().is_err());
    }

    #[test]
    fn other_escapes_are_refused() {
        assert!(cursor(br#""a\b""#).quoted().is_err());
    }

    #[test]
    fn literal_reads_exactly_its_size() {
        let mut c = cursor(b"{3}\r\nabc)");
        assert_eq!(c.literal(10, false).unwrap(), (&b"abc"[..], false));
        assert_eq!(c.peek(), Some(b')'));
        let mut c = cursor(b"{3+}\r\nabc");
        assert_eq!(c.literal(10, false).unwrap().0, b"abc");
        let mut c = cursor(b"~{3}\r\na\0c");
        assert_eq!(c.literal(10, true).unwrap(), (&b"a\0c"[..], true));
    }

    #[test]
    fn literal_without_its_data_is_incomplete_and_oversized_is_refused_first() {
        assert_eq!(
            cursor(b"{5}\r\nab").literal(10, false).unwrap_err(),
            Fail::Incomplete
        );
        let error = cursor(b"{500}\r\n").literal(10, false).unwrap_err();
        assert!(matches!(
            error,
            Fail::Error {
                kind: ErrorKind::LiteralTooLarge,
                ..
            }
        ));
        let error = cursor(b"{99999999999999999999}\r\n")
            .literal(10, false)
            .unwrap_err();
        assert!(matches!(
            error,
            Fail::Error {
                kind: ErrorKind::LiteralTooLarge,
                ..
            }
        ));
        let error = cursor(b"{000000000000000000005}\r\nabcde")
            .literal(10, false)
            .unwrap_err();
        assert!(matches!(
            error,
            Fail::Error {
                kind: ErrorKind::Syntax,
                ..
            }
        ));
    }

    #[test]
    fn nul_is_only_allowed_in_literal8() {
        assert!(cursor(b"{3}\r\na\0c").literal(10, false).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(cursor(b"4294967295").number().unwrap(), u32::MAX);
        assert!(cursor(b"4294967296").number().is_err());
        assert!(cursor(b"0").nz_number().is_err());
        assert_eq!(
            cursor(b"9223372036854775807").number64().unwrap(),
            i64::MAX as u64
        );
        assert!(cursor(b"9223372036854775808").number64().is_err());
        assert!(cursor(b"0").mod_sequence_value().is_err());
    }

    #[test]
    fn dates_and_date_times() {
        let date = cursor(b"1-Feb-1994").date().unwrap();
        assert_eq!((date.year(), date.month(), date.day()), (1994, 2, 1));
        let date = cursor(b"\"29-feb-2024\"").date().unwrap();
        assert_eq!((date.year(), date.month(), date.day()), (2024, 2, 29));
        assert!(cursor(b"29-Feb-2023").date().is_err());
        assert!(cursor(b"1-Foo-1994").date().is_err());
        let dt = cursor(b"\"17-Jul-1996 02:44:25 -0700\"")
            .date_time()
            .unwrap();
        assert_eq!(
            (dt.hour(), dt.minute(), dt.second(), dt.zone_minutes()),
            (2, 44, 25, -420)
        );
        let dt = cursor(b"\" 7-Jul-1996 02:44:25 +0130\"")
            .date_time()
            .unwrap();
        assert_eq!((dt.date().day(), dt.zone_minutes()), (7, 90));
        assert!(
            cursor(b"\"17-Jul-1996 24:44:25 -0700\"")
                .date_time()
                .is_err()
        );
    }

    #[test]
    fn keywords_need_a_word_boundary() {
        let mut c = cursor(b"ALLX");
        assert!(!c.try_keyword("ALL"));
        let mut c = cursor(b"all)");
        assert!(c.try_keyword("ALL"));
        assert_eq!(c.peek(), Some(b')'));
    }
}
