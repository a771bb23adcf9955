//! FETCH and UID FETCH (RFC 9051 section 6.4.5), with BINARY (RFC 3516) and the
//! CHANGEDSINCE and VANISHED modifiers (RFC 7162).
//!
//! ```text
//! C: A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])
//! C: A655 FETCH 1 BODY.PEEK[1.2.MIME]<0.2048>
//! C: A656 FETCH 1:* FAST
//! C: A657 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)
//! C: A658 FETCH 1 (BINARY.PEEK[1]<0.100> BINARY.SIZE[1])
//! ```

use std::num::NonZeroU32;

use super::CommandBody;
use crate::lexer::{Cursor, PResult, syntax, utf8_string};
use crate::sequence::{MessageSet, message_set};

/// A FETCH or UID FETCH command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchCommand {
    pub uid: bool,
    pub set: MessageSet,
    pub items: FetchItems,
    /// `(CHANGEDSINCE n)`: only messages whose mod-sequence is above `n` (RFC 7162).
    pub changed_since: Option<u64>,
    /// `(... VANISHED)`: report expunged UIDs with `* VANISHED (EARLIER)`. Only allowed
    /// in UID FETCH with CHANGEDSINCE; the parser refuses it otherwise.
    pub vanished: bool,
}

/// What to fetch: a macro or a list of attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItems {
    /// `ALL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`
    All,
    /// `FAST` = `(FLAGS INTERNALDATE RFC822.SIZE)`
    Fast,
    /// `FULL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)`
    Full,
    Attributes(Vec<FetchAttribute>),
}

impl FetchItems {
    /// The attributes, with a macro expanded.
    pub fn attributes(&self) -> Vec<FetchAttribute> {
        use FetchAttribute::*;
        match self {
            FetchItems::All => vec![Flags, InternalDate, Rfc822Size, Envelope],
            FetchItems::Fast => vec![Flags, InternalDate, Rfc822Size],
            FetchItems::Full => vec![Flags, InternalDate, Rfc822Size, Envelope, Body],
            FetchItems::Attributes(attributes) => attributes.clone(),
        }
    }
}

/// `fetch-att`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttribute {
    Envelope,
    Flags,
    InternalDate,
    Rfc822Size,
    /// IMAP4rev1 `RFC822` (= `BODY[]`).
    Rfc822,
    /// IMAP4rev1 `RFC822.HEADER` (= `BODY.PEEK[HEADER]`).
    Rfc822Header,
    /// IMAP4rev1 `RFC822.TEXT` (= `BODY[TEXT]`).
    Rfc822Text,
    /// `BODY`: the body structure without extension data.
    Body,
    BodyStructure,
    Uid,
    /// RFC 7162.
    ModSeq,
    /// `BODY[section]<partial>` or, with `peek`, `BODY.PEEK[...]` (which does not set
    /// `\Seen`).
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK[part]<partial>` (RFC 3516).
    Binary {
        peek: bool,
        part: Vec<NonZeroU32>,
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]` (RFC 3516).
    BinarySize {
        part: Vec<NonZeroU32>,
    },
}

/// `section-spec`: `[]`, `[1.2]`, `[HEADER]`, `[1.2.HEADER.FIELDS (FROM)]`, `[3.MIME]`...
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// The MIME part (`1.2.3`); empty for the whole message.
    pub part: Vec<NonZeroU32>,
    pub text: Option<SectionText>,
}

/// `section-text`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// `HEADER.FIELDS (DATE FROM)`, field names as sent.
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (...)`
    HeaderFieldsNot(Vec<String>),
    Text,
    /// Only after a part number: `[1.MIME]`.
    Mime,
}

/// `partial = "<" number64 "." nz-number64 ">"`: `length` octets from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partial {
    pub offset: u64,
    /// At least 1.
    pub length: u64,
}

/// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
/// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]`
pub(crate) fn fetch(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = message_set(c)?;
    c.sp()?;
    let items = if c.eat(b'(') {
        let mut attributes = Vec::new();
        loop {
            let name = item_name(c);
            attributes.push(fetch_attribute(c, &name)?);
            if c.eat(b')') {
                break;
            }
            c.sp()
                .map_err(|_| syntax("expected ' ' or ')' in a list of FETCH items"))?;
        }
        FetchItems::Attributes(attributes)
    } else {
        let name = item_name(c);
        match name.as_str() {
            "ALL" => FetchItems::All,
            "FAST" => FetchItems::Fast,
            "FULL" => FetchItems::Full,
            _ => FetchItems::Attributes(vec![fetch_attribute(c, &name)?]),
        }
    };
    let mut changed_since = None;
    let mut vanished = false;
    if c.eat(b' ') {
        c.expect(b'(', "expected ( before FETCH modifiers")?;
        loop {
            if c.try_keyword("CHANGEDSINCE") {
                c.sp()?;
                changed_since = Some(c.mod_sequence_value()?);
            } else if c.try_keyword("VANISHED") {
                vanished = true;
            } else {
                return Err(syntax("unknown FETCH modifier"));
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    if vanished && !uid {
        return Err(syntax("VANISHED is only allowed in UID FETCH"));
    }
    if vanished && changed_since.is_none() {
        return Err(syntax("VANISHED needs CHANGEDSINCE"));
    }
    Ok(CommandBody::Fetch(FetchCommand {
        uid,
        set,
        items,
        changed_since,
        vanished,
    }))
}

/// The name of a FETCH item, uppercased: letters, digits and dots (`RFC822.SIZE`).
fn item_name(c: &mut Cursor<'_>) -> String {
    let name = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'.');
    String::from_utf8_lossy(name).to_ascii_uppercase()
}

fn fetch_attribute(c: &mut Cursor<'_>, name: &str) -> PResult<FetchAttribute> {
    let has_section = c.peek() == Some(b'[');
    let attribute = match (name, has_section) {
        ("ENVELOPE", false) => FetchAttribute::Envelope,
        ("FLAGS", false) => FetchAttribute::Flags,
        ("INTERNALDATE", false) => FetchAttribute::InternalDate,
        ("RFC822.SIZE", false) => FetchAttribute::Rfc822Size,
        ("RFC822", false) => FetchAttribute::Rfc822,
        ("RFC822.HEADER", false) => FetchAttribute::Rfc822Header,
        ("RFC822.TEXT", false) => FetchAttribute::Rfc822Text,
        ("BODY", false) => FetchAttribute::Body,
        ("BODYSTRUCTURE", false) => FetchAttribute::BodyStructure,
        ("UID", false) => FetchAttribute::Uid,
        ("MODSEQ", false) => FetchAttribute::ModSeq,
        ("BODY" | "BODY.PEEK", true) => FetchAttribute::BodySection {
            peek: name == "BODY.PEEK",
            section: section(c)?,
            partial: partial(c)?,
        },
        ("BINARY" | "BINARY.PEEK", true) => FetchAttribute::Binary {
            peek: name == "BINARY.PEEK",
            part: section_binary(c)?,
            partial: partial(c)?,
        },
        ("BINARY.SIZE", true) => FetchAttribute::BinarySize {
            part: section_binary(c)?,
        },
        ("BODY.PEEK" | "BINARY" | "BINARY.PEEK" | "BINARY.SIZE", false) => {
            return Err(syntax("expected [ after the FETCH item"));
        }
        ("", _) => return Err(syntax("expected a FETCH item")),
        _ => return Err(syntax("unknown FETCH item")),
    };
    Ok(attribute)
}

/// `section-part = nz-number *("." nz-number)`; stops before a `.` that is not followed
/// by a digit.
fn section_part(c: &mut Cursor<'_>) -> PResult<Vec<NonZeroU32>> {
    let mut part = vec![c.nz_number()?];
    while c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
        c.eat(b'.');
        part.push(c.nz_number()?);
    }
    Ok(part)
}

/// `section = "[" [section-spec] "]"`
fn section(c: &mut Cursor<'_>) -> PResult<Section> {
    c.expect(b'[', "expected [")?;
    let mut section = Section::default();
    if c.eat(b']') {
        return Ok(section);
    }
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        section.part = section_part(c)?;
        if c.eat(b'.') {
            section.text = Some(section_text(c, true)?);
        }
    } else {
        section.text = Some(section_text(c, false)?);
    }
    c.expect(b']', "expected ] after the section")?;
    Ok(section)
}

/// `section-text = section-msgtext / "MIME"`,
/// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`
fn section_text(c: &mut Cursor<'_>, after_part: bool) -> PResult<SectionText> {
    if c.try_prefix("HEADER.FIELDS.NOT") {
        c.sp()?;
        Ok(SectionText::HeaderFieldsNot(header_list(c)?))
    } else if c.try_prefix("HEADER.FIELDS") {
        c.sp()?;
        Ok(SectionText::HeaderFields(header_list(c)?))
    } else if c.try_prefix("HEADER") {
        Ok(SectionText::Header)
    } else if c.try_prefix("TEXT") {
        Ok(SectionText::Text)
    } else if after_part && c.try_prefix("MIME") {
        Ok(SectionText::Mime)
    } else {
        Err(syntax(
            "expected HEADER, HEADER.FIELDS, TEXT or MIME in the section",
        ))
    }
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`
fn header_list(c: &mut Cursor<'_>) -> PResult<Vec<String>> {
    c.expect(b'(', "expected ( before the header field names")?;
    let mut names = Vec::new();
    loop {
        names.push(utf8_string(
            c.astring()?,
            "a header field name must be ASCII",
        )?);
        if c.eat(b')') {
            return Ok(names);
        }
        c.sp()?;
    }
}

/// `section-binary = "[" [section-part] "]"`
fn section_binary(c: &mut Cursor<'_>) -> PResult<Vec<NonZeroU32>> {
    c.expect(b'[', "expected [")?;
    if c.eat(b']') {
        return Ok(Vec::new());
    }
    let part = section_part(c)?;
    c.expect(b']', "expected ] after the part number")?;
    Ok(part)
}

/// `[partial]`
fn partial(c: &mut Cursor<'_>) -> PResult<Option<Partial>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let offset = c.number64()?;
    c.expect(b'.', "expected . in <offset.length>")?;
    let length = c.number64()?;
    if length == 0 {
        return Err(syntax("a partial length must be greater than zero"));
    }
    c.expect(b'>', "expected > after <offset.length>")?;
    Ok(Some(Partial { offset, length }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::tests::{body, error_kind, set};

    fn fetch(input: &[u8]) -> FetchCommand {
        match body(input) {
            CommandBody::Fetch(fetch) => fetch,
            other => panic!("{other:?}"),
        }
    }

    fn part(numbers: &[u32]) -> Vec<NonZeroU32> {
        numbers
            .iter()
            .map(|&n| NonZeroU32::new(n).unwrap())
            .collect()
    }

    #[test]
    fn rfc_9051_example() {
        let f = fetch(b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n");
        assert_eq!(f.set, MessageSet::Set(set("2:4")));
        assert_eq!(
            f.items,
            FetchItems::Attributes(vec![
                FetchAttribute::Flags,
                FetchAttribute::BodySection {
                    peek: false,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(vec![
                            "DATE".into(),
                            "FROM".into()
                        ]))
                    },
                    partial: None
                }
            ])
        );
        assert!(!f.uid && f.changed_since.is_none() && !f.vanished);
    }

    #[test]
    fn macros_and_single_items() {
        assert_eq!(fetch(b"a FETCH 1:* ALL\r\n").items, FetchItems::All);
        assert_eq!(fetch(b"a FETCH 1 fast\r\n").items, FetchItems::Fast);
        assert_eq!(fetch(b"a FETCH 1 FULL\r\n").items.attributes().len(), 5);
        assert_eq!(
            fetch(b"a FETCH 1 rfc822.size\r\n").items,
            FetchItems::Attributes(vec![FetchAttribute::Rfc822Size])
        );
        let f = fetch(b"a FETCH 1 (UID MODSEQ ENVELOPE BODY BODYSTRUCTURE INTERNALDATE RFC822 RFC822.HEADER RFC822.TEXT)\r\n");
        assert_eq!(f.items.attributes().len(), 9);
    }

    #[test]
    fn sections_and_partial_fetches() {
        let f = fetch(b"a FETCH 1 (BODY.PEEK[1.2.MIME]<0.2048> BODY[] BODY[3.TEXT] BODY[HEADER.FIELDS.NOT (Received \"X-Spam\")] BODY[2]<100.1>)\r\n");
        assert_eq!(
            f.items,
            FetchItems::Attributes(vec![
                FetchAttribute::BodySection {
                    peek: true,
                    section: Section {
                        part: part(&[1, 2]),
                        text: Some(SectionText::Mime)
                    },
                    partial: Some(Partial {
                        offset: 0,
                        length: 2048
                    })
                },
                FetchAttribute::BodySection {
                    peek: false,
                    section: Section::default(),
                    partial: None
                },
                FetchAttribute::BodySection {
                    peek: false,
                    section: Section {
                        part: part(&[3]),
                        text: Some(SectionText::Text)
                    },
                    partial: None
                },
                FetchAttribute::BodySection {
                    peek: false,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFieldsNot(vec![
                            "Received".into(),
                            "X-Spam".into()
                        ]))
                    },
                    partial: None
                },
                FetchAttribute::BodySection {
                    peek: false,
                    section: Section {
                        part: part(&[2]),
                        text: None
                    },
                    partial: Some(Partial {
                        offset: 100,
                        length: 1
                    })
                },
            ])
        );
        assert_eq!(error_kind(b"a FETCH 1 BODY[MIME]\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"a FETCH 1 BODY[1.0]\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"a FETCH 1 BODY[]<0.0>\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"a FETCH 1 BODY[]<5>\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"a FETCH 1 BODY.PEEK\r\n"), ErrorKind::Syntax);
        assert_eq!(
            error_kind(b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n"),
            ErrorKind::Syntax
        );
    }

    #[test]
    fn binary_items() {
        let f = fetch(b"a FETCH 1 (BINARY.PEEK[1]<0.100> BINARY[] BINARY.SIZE[1.2])\r\n");
        assert_eq!(
            f.items,
            FetchItems::Attributes(vec![
                FetchAttribute::Binary {
                    peek: true,
                    part: part(&[1]),
                    partial: Some(Partial {
                        offset: 0,
                        length: 100
                    })
                },
                FetchAttribute::Binary {
                    peek: false,
                    part: vec![],
                    partial: None
                },
                FetchAttribute::BinarySize {
                    part: part(&[1, 2])
                },
            ])
        );
        assert_eq!(
            error_kind(b"a FETCH 1 BINARY[HEADER]\r\n"),
            ErrorKind::Syntax
        );
    }

    #[test]
    fn changedsince_and_vanished() {
        // RFC 7162 sections 3.1.4.1 and 3.2.6.
        let f = fetch(b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n");
        assert_eq!(
            (f.uid, f.changed_since, f.vanished),
            (true, Some(12345), false)
        );
        let f = fetch(b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n");
        assert_eq!((f.changed_since, f.vanished), (Some(12345), true));
        assert_eq!(
            error_kind(b"s FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(
            error_kind(b"s UID FETCH 1:* (FLAGS) (VANISHED)\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(
            error_kind(b"s UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)\r\n"),
            ErrorKind::Syntax
        );
    }

    #[test]
    fn invalid_fetches() {
        assert_eq!(error_kind(b"a FETCH 1 ()\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"a FETCH 1 (FLAGS\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"a FETCH 1 FOO\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"a FETCH 1 FLAGS[]\r\n"), ErrorKind::Syntax);
        assert_eq!(
            error_kind(b"a FETCH 1: FLAGS\r\n"),
            ErrorKind::InvalidSequenceSet
        );
        assert_eq!(
            error_kind(b"a FETCH a FLAGS\r\n"),
            ErrorKind::InvalidSequenceSet
        );
    }
}
