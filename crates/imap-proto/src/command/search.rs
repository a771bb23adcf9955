//! SEARCH and UID SEARCH (RFC 9051 section 6.4.4), with ESEARCH's return options
//! (RFC 4731), SEARCHRES's `SAVE` and `$` (RFC 5182), CONDSTORE's `MODSEQ` (RFC 7162)
//! and WITHIN's `OLDER`/`YOUNGER` (RFC 5032).
//!
//! ```text
//! C: A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
//! C: A283 SEARCH TEXT "string not in mailbox"
//! C: A284 SEARCH CHARSET UTF-8 TEXT {12}
//! C: A285 UID SEARCH RETURN (MIN COUNT) OR (UNSEEN FLAGGED) MODSEQ 620162338
//! ```
//!
//! The parser counts every key (nested ones too) against
//! [`Limits::max_search_keys`](crate::Limits::max_search_keys) and every `NOT`, `OR`
//! and parenthesis against [`Limits::max_nesting`](crate::Limits::max_nesting), so a
//! hostile SEARCH is refused after at most that much work.

use super::CommandBody;
use crate::datetime::Date;
use crate::lexer::{Cursor, PResult, syntax, utf8_string};
use crate::sequence::{MessageSet, message_set};

/// A SEARCH or UID SEARCH command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCommand {
    pub uid: bool,
    /// `None` for a plain SEARCH (answered with `* SEARCH`); `Some` for
    /// `SEARCH RETURN (...)` (answered with `* ESEARCH`).
    pub return_options: Option<SearchReturnOptions>,
    /// `CHARSET name`, as given (`UTF-8`, `US-ASCII`, ...).
    pub charset: Option<String>,
    /// The keys, all of which a message must match. Never empty.
    pub criteria: Vec<SearchKey>,
}

/// `search-return-opts` (RFC 4731, RFC 5182). `RETURN ()` means `RETURN (ALL)`, and is
/// read as such.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturnOptions {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    /// Remember the result for `$` (RFC 5182).
    pub save: bool,
}

/// One search key. Strings are the bytes the client sent, in the command's charset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(Vec<u8>),
    Before(Date),
    Body(Vec<u8>),
    Cc(Vec<u8>),
    Deleted,
    Draft,
    Flagged,
    From(Vec<u8>),
    /// `HEADER field-name string`
    Header(String, Vec<u8>),
    Keyword(String),
    Larger(u64),
    /// IMAP4rev1.
    New,
    Not(Box<SearchKey>),
    /// IMAP4rev1.
    Old,
    /// RFC 5032: older than this many seconds.
    Older(u32),
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    /// IMAP4rev1.
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(Vec<u8>),
    Text(Vec<u8>),
    To(Vec<u8>),
    Uid(MessageSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    /// RFC 5032: younger than this many seconds.
    Younger(u32),
    /// RFC 7162: `MODSEQ ["/flags/\\Seen" all] 620162338`.
    ModSeq {
        entry: Option<(String, String)>,
        mod_sequence: u64,
    },
    /// A bare sequence set (message numbers), or `$`.
    SequenceSet(MessageSet),
    /// `( key key ... )`
    And(Vec<SearchKey>),
}

/// `search = "SEARCH" [search-return-opts] SP search-program`,
/// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`
pub(crate) fn search(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let mut return_options = None;
    if c.try_keyword("RETURN") {
        c.sp()?;
        return_options = Some(search_return_options(c)?);
        c.sp()?;
    }
    let mut charset = None;
    if c.try_keyword("CHARSET") {
        c.sp()?;
        let name = if c.peek() == Some(b'"') {
            utf8_string(c.quoted()?, "a charset name must be ASCII")?
        } else {
            c.atom("expected a charset name")?.to_owned()
        };
        charset = Some(name);
        c.sp()?;
    }
    let criteria = search_keys(c)?;
    Ok(CommandBody::Search(SearchCommand {
        uid,
        return_options,
        charset,
        criteria,
    }))
}

/// `search-key *(SP search-key)`: the keys of SEARCH, SORT and THREAD.
pub(crate) fn search_keys(c: &mut Cursor<'_>) -> PResult<Vec<SearchKey>> {
    let mut keys = vec![search_key(c)?];
    while c.eat(b' ') {
        keys.push(search_key(c)?);
    }
    Ok(keys)
}

/// `"(" [search-return-opt *(SP search-return-opt)] ")"` (ESORT's `sort-return-opts`
/// has the same form).
pub(crate) fn search_return_options(c: &mut Cursor<'_>) -> PResult<SearchReturnOptions> {
    c.expect(b'(', "expected ( after RETURN")?;
    let mut options = SearchReturnOptions::default();
    if c.eat(b')') {
        options.all = true;
        return Ok(options);
    }
    loop {
        let name = c.atom("expected a SEARCH return option")?;
        match name.to_ascii_uppercase().as_str() {
            "MIN" => options.min = true,
            "MAX" => options.max = true,
            "ALL" => options.all = true,
            "COUNT" => options.count = true,
            "SAVE" => options.save = true,
            _ => return Err(syntax("unknown SEARCH return option")),
        }
        if c.eat(b')') {
            return Ok(options);
        }
        c.sp()?;
    }
}

fn astring_arg(c: &mut Cursor<'_>) -> PResult<Vec<u8>> {
    c.sp()?;
    Ok(c.astring()?.into_owned())
}

fn date_arg(c: &mut Cursor<'_>) -> PResult<Date> {
    c.sp()?;
    c.date()
}

fn keyword_arg(c: &mut Cursor<'_>) -> PResult<String> {
    c.sp()?;
    Ok(c.atom("expected a keyword")?.to_owned())
}

/// A key that contains keys: counts one level of nesting around `parse`.
fn nested<T>(c: &mut Cursor<'_>, parse: impl FnOnce(&mut Cursor<'_>) -> PResult<T>) -> PResult<T> {
    c.enter()?;
    let result = parse(c);
    c.leave();
    result
}

/// `search-key`
pub(crate) fn search_key(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    c.count_search_key()?;
    match c.peek() {
        Some(b'(') => {
            return nested(c, |c| {
                c.eat(b'(');
                let mut keys = vec![search_key(c)?];
                loop {
                    if c.eat(b')') {
                        return Ok(SearchKey::And(keys));
                    }
                    c.sp()
                        .map_err(|_| syntax("expected ' ' or ')' in a list of search keys"))?;
                    keys.push(search_key(c)?);
                }
            });
        }
        Some(b) if b.is_ascii_digit() || b == b'*' || b == b'$' => {
            return message_set(c).map(SearchKey::SequenceSet);
        }
        _ => {}
    }
    let name = c.atom("expected a search key")?;
    let key = match name.to_ascii_uppercase().as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Answered,
        "BCC" => SearchKey::Bcc(astring_arg(c)?),
        "BEFORE" => SearchKey::Before(date_arg(c)?),
        "BODY" => SearchKey::Body(astring_arg(c)?),
        "CC" => SearchKey::Cc(astring_arg(c)?),
        "DELETED" => SearchKey::Deleted,
        "DRAFT" => SearchKey::Draft,
        "FLAGGED" => SearchKey::Flagged,
        "FROM" => SearchKey::From(astring_arg(c)?),
        "HEADER" => {
            let field = utf8_string(astring_arg(c)?.into(), "a header field name must be ASCII")?;
            SearchKey::Header(field, astring_arg(c)?)
        }
        "KEYWORD" => SearchKey::Keyword(keyword_arg(c)?),
        "LARGER" => {
            c.sp()?;
            SearchKey::Larger(c.number64()?)
        }
        "NEW" => SearchKey::New,
        "NOT" => nested(c, |c| {
            c.sp()?;
            Ok(SearchKey::Not(Box::new(search_key(c)?)))
        })?,
        "OLD" => SearchKey::Old,
        "OLDER" => {
            c.sp()?;
            SearchKey::Older(c.nz_number()?.get())
        }
        "ON" => SearchKey::On(date_arg(c)?),
        "OR" => nested(c, |c| {
            c.sp()?;
            let left = search_key(c)?;
            c.sp()?;
            let right = search_key(c)?;
            Ok(SearchKey::Or(Box::new(left), Box::new(right)))
        })?,
        "RECENT" => SearchKey::Recent,
        "SEEN" => SearchKey::Seen,
        "SENTBEFORE" => SearchKey::SentBefore(date_arg(c)?),
        "SENTON" => SearchKey::SentOn(date_arg(c)?),
        "SENTSINCE" => SearchKey::SentSince(date_arg(c)?),
        "SINCE" => SearchKey::Since(date_arg(c)?),
        "SMALLER" => {
            c.sp()?;
            SearchKey::Smaller(c.number64()?)
        }
        "SUBJECT" => SearchKey::Subject(astring_arg(c)?),
        "TEXT" => SearchKey::Text(astring_arg(c)?),
        "TO" => SearchKey::To(astring_arg(c)?),
        "UID" => {
            c.sp()?;
            SearchKey::Uid(message_set(c)?)
        }
        "UNANSWERED" => SearchKey::Unanswered,
        "UNDELETED" => SearchKey::Undeleted,
        "UNDRAFT" => SearchKey::Undraft,
        "UNFLAGGED" => SearchKey::Unflagged,
        "UNKEYWORD" => SearchKey::Unkeyword(keyword_arg(c)?),
        "UNSEEN" => SearchKey::Unseen,
        "YOUNGER" => {
            c.sp()?;
            SearchKey::Younger(c.nz_number()?.get())
        }
        "MODSEQ" => modseq(c)?,
        _ => return Err(syntax("unknown search key")),
    };
    Ok(key)
}

/// `search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer`,
/// `search-modseq-ext = SP entry-name SP entry-type-req`
fn modseq(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    c.sp()?;
    let mut entry = None;
    if c.peek() == Some(b'"') {
        let name = utf8_string(c.quoted()?, "a MODSEQ entry name must be ASCII")?;
        c.sp()?;
        let kind = c.atom("expected priv, shared or all")?.to_ascii_lowercase();
        if !matches!(kind.as_str(), "priv" | "shared" | "all") {
            return Err(syntax("expected priv, shared or all"));
        }
        entry = Some((name, kind));
        c.sp()?;
    }
    Ok(SearchKey::ModSeq {
        entry,
        mod_sequence: c.number64()?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::tests::{body, error_kind, parse_with, set};
    use crate::{ErrorKind, Limits};

    fn search(input: &[u8]) -> SearchCommand {
        match body(input) {
            CommandBody::Search(search) => search,
            other => panic!("{other:?}"),
        }
    }

    fn date(y: u16, m: u8, d: u8) -> Date {
        Date::new(y, m, d).unwrap()
    }

    #[test]
    fn rfc_9051_examples() {
        let s = search(b"A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
        assert_eq!(
            s.criteria,
            vec![
                SearchKey::Flagged,
                SearchKey::Since(date(1994, 2, 1)),
                SearchKey::Not(Box::new(SearchKey::From(b"Smith".to_vec())))
            ]
        );
        assert_eq!((s.uid, s.return_options, s.charset), (false, None, None));
        let s = search(b"A283 SEARCH TEXT \"string not in mailbox\"\r\n");
        assert_eq!(
            s.criteria,
            vec![SearchKey::Text(b"string not in mailbox".to_vec())]
        );
        let s = search(b"A284 SEARCH CHARSET UTF-8 TEXT {12}\r\n\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xa7\r\n");
        assert_eq!(s.charset.as_deref(), Some("UTF-8"));
        assert_eq!(
            s.criteria,
            vec![SearchKey::Text("日本語で".as_bytes().to_vec())]
        );
    }

    #[test]
    fn esearch_return_options() {
        // RFC 4731 section 3.1 and RFC 9051 section 6.4.4.
        let s = search(
            b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
        );
        let options = s.return_options.unwrap();
        assert!(options.min && options.count && !options.max && !options.all);
        assert_eq!(s.criteria.len(), 3);
        let s = search(b"A283 UID SEARCH RETURN () 1:*\r\n");
        assert!(s.uid);
        assert!(s.return_options.unwrap().all);
        let s = search(b"A1 SEARCH RETURN (SAVE) FLAGGED\r\n");
        let options = s.return_options.unwrap();
        assert!(options.save && !options.all);
        assert_eq!(
            error_kind(b"A1 SEARCH RETURN (FOO) ALL\r\n"),
            ErrorKind::Syntax
        );
    }

    #[test]
    fn every_key_form() {
        let s = search(
            b"A SEARCH ALL ANSWERED BCC x BEFORE 1-Jan-2000 BODY \"b\" CC c DELETED DRAFT FLAGGED FROM f \
HEADER Message-ID <x@y> KEYWORD $Forwarded LARGER 100 NEW OLD OLDER 60 ON 2-Jan-2000 RECENT SEEN \
SENTBEFORE 3-Jan-2000 SENTON 4-Jan-2000 SENTSINCE 5-Jan-2000 SINCE 6-Jan-2000 SMALLER 5000000000 \
SUBJECT s TEXT t TO u UID 1:5 UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD Junk UNSEEN YOUNGER 5 \
MODSEQ 12 2:* $ (SEEN FLAGGED) OR SEEN (NOT DRAFT)\r\n",
        );
        assert_eq!(s.criteria.len(), 40);
        assert_eq!(
            s.criteria.last(),
            Some(&SearchKey::Or(
                Box::new(SearchKey::Seen),
                Box::new(SearchKey::And(vec![SearchKey::Not(Box::new(
                    SearchKey::Draft
                ))]))
            ))
        );
        let s = search(b"A SEARCH UID 1:5 HEADER Message-ID <x@y> LARGER 100 SMALLER 5000000000 UNKEYWORD Junk\r\n");
        assert_eq!(
            s.criteria,
            vec![
                SearchKey::Uid(MessageSet::Set(set("1:5"))),
                SearchKey::Header("Message-ID".into(), b"<x@y>".to_vec()),
                SearchKey::Larger(100),
                SearchKey::Smaller(5_000_000_000),
                SearchKey::Unkeyword("Junk".into()),
            ]
        );
        let s = search(b"A SEARCH $ UID $ OR SEEN (FLAGGED DRAFT)\r\n");
        assert_eq!(
            s.criteria,
            vec![
                SearchKey::SequenceSet(MessageSet::SavedResult),
                SearchKey::Uid(MessageSet::SavedResult),
                SearchKey::Or(
                    Box::new(SearchKey::Seen),
                    Box::new(SearchKey::And(vec![SearchKey::Flagged, SearchKey::Draft]))
                ),
            ]
        );
    }

    #[test]
    fn saved_result_only_as_a_whole_set() {
        assert_eq!(
            error_kind(b"A SEARCH UID 1:5,$\r\n"),
            ErrorKind::InvalidSequenceSet
        );
    }

    #[test]
    fn modseq_keys() {
        // RFC 7162 section 3.1.5.
        let s = search(b"a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n");
        assert_eq!(
            s.criteria,
            vec![SearchKey::ModSeq {
                entry: Some(("/flags/\\draft".into(), "all".into())),
                mod_sequence: 620_162_338
            }]
        );
        let s = search(b"t SEARCH OR NOT MODSEQ 720162338 LARGER 50000\r\n");
        assert_eq!(
            s.criteria,
            vec![SearchKey::Or(
                Box::new(SearchKey::Not(Box::new(SearchKey::ModSeq {
                    entry: None,
                    mod_sequence: 720_162_338
                }))),
                Box::new(SearchKey::Larger(50_000))
            )]
        );
        assert_eq!(
            error_kind(b"a SEARCH MODSEQ \"/flags/x\" every 1\r\n"),
            ErrorKind::Syntax
        );
    }

    #[test]
    fn ten_thousand_keys_are_refused_quickly() {
        let mut line = b"A1 SEARCH".to_vec();
        for _ in 0..10_000 {
            line.extend_from_slice(b" SEEN");
        }
        line.extend_from_slice(b"\r\n");
        let started = Instant::now();
        let error = parse_with(&line, &Limits::default()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::TooManySearchKeys);
        assert_eq!(error.tag.as_deref(), Some("A1"));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn nesting_over_the_limit_is_refused() {
        let limits = Limits::default();
        let deep = |n: usize| {
            let mut line = b"A SEARCH ".to_vec();
            line.extend(std::iter::repeat_n(b'(', n));
            line.extend_from_slice(b"SEEN");
            line.extend(std::iter::repeat_n(b')', n));
            line.extend_from_slice(b"\r\n");
            line
        };
        assert!(parse_with(&deep(limits.max_nesting), &limits).is_ok());
        assert_eq!(
            parse_with(&deep(limits.max_nesting + 1), &limits)
                .unwrap_err()
                .kind,
            ErrorKind::NestingTooDeep
        );
        let mut nots = b"A SEARCH ".to_vec();
        for _ in 0..5000 {
            nots.extend_from_slice(b"NOT ");
        }
        nots.extend_from_slice(b"SEEN\r\n");
        assert_eq!(
            parse_with(&nots, &limits).unwrap_err().kind,
            ErrorKind::NestingTooDeep
        );
        let mut ors = b"A SEARCH ".to_vec();
        for _ in 0..5000 {
            ors.extend_from_slice(b"OR SEEN ");
        }
        ors.extend_from_slice(b"SEEN\r\n");
        assert_eq!(
            parse_with(&ors, &limits).unwrap_err().kind,
            ErrorKind::NestingTooDeep
        );
    }

    #[test]
    fn invalid_searches() {
        assert_eq!(error_kind(b"A SEARCH\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"A SEARCH FOO\r\n"), ErrorKind::Syntax);
        assert_eq!(
            error_kind(b"A SEARCH SINCE 31-Feb-2020\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(error_kind(b"A SEARCH (SEEN\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"A SEARCH ()\r\n"), ErrorKind::Syntax);
        assert_eq!(
            error_kind(b"A SEARCH 0:5\r\n"),
            ErrorKind::InvalidSequenceSet
        );
        assert_eq!(error_kind(b"A SEARCH SEEN \r\n"), ErrorKind::Syntax);
    }
}
