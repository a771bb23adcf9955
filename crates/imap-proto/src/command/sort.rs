//! SORT and THREAD (RFC 5256), with UID forms, ESORT's return options (RFC 5267) and
//! DISPLAYFROM / DISPLAYTO (RFC 5957).
//!
//! ```text
//! C: A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994
//! C: A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL
//! C: A284 UID SORT RETURN (MIN MAX COUNT) (REVERSE ARRIVAL) US-ASCII UNSEEN
//! C: A285 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000
//! C: A286 UID THREAD REFERENCES US-ASCII TEXT "gewp"
//! ```
//!
//! The search keys after the charset are parsed by the SEARCH parser, under the same
//! limits.

use super::CommandBody;
use super::search::{SearchKey, SearchReturnOptions, search_keys, search_return_options};
use crate::lexer::{Cursor, PResult, syntax, utf8_string};

/// A SORT or UID SORT command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortCommand {
    pub uid: bool,
    /// `None` for a plain SORT (answered with `* SORT`); `Some` for
    /// `SORT RETURN (...)` (RFC 5267 ESORT, answered with `* ESEARCH`).
    pub return_options: Option<SearchReturnOptions>,
    /// Never empty.
    pub criteria: Vec<SortCriterion>,
    /// The charset of the search strings, as given (`UTF-8`, `US-ASCII`, ...).
    pub charset: String,
    /// The keys, all of which a message must match. Never empty.
    pub search: Vec<SearchKey>,
}

/// `sort-criterion = ["REVERSE" SP] sort-key`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// `sort-key` (RFC 5256 section 3, RFC 5957 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Arrival => "ARRIVAL",
            SortKey::Cc => "CC",
            SortKey::Date => "DATE",
            SortKey::From => "FROM",
            SortKey::Size => "SIZE",
            SortKey::Subject => "SUBJECT",
            SortKey::To => "TO",
            SortKey::DisplayFrom => "DISPLAYFROM",
            SortKey::DisplayTo => "DISPLAYTO",
        }
    }
}

/// A THREAD or UID THREAD command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCommand {
    pub uid: bool,
    pub algorithm: ThreadAlgorithm,
    pub charset: String,
    /// Never empty.
    pub search: Vec<SearchKey>,
}

/// `thread-alg`: the two of RFC 5256, or another name (upper-cased) that a server does
/// not serve and answers with `BAD`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
    Other(String),
}

/// The most criteria one SORT may give. RFC 5256 sets no limit; nine keys, each at
/// most once with or without REVERSE, is all that can make a difference.
const MAX_SORT_CRITERIA: usize = 18;

/// `sort = ["UID" SP] "SORT" [SP sort-return-opts] SP sort-criteria SP search-criteria`
pub(crate) fn sort(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let mut return_options = None;
    if c.try_keyword("RETURN") {
        c.sp()?;
        return_options = Some(search_return_options(c)?);
        c.sp()?;
    }
    let criteria = sort_criteria(c)?;
    c.sp()?;
    let charset = charset(c)?;
    c.sp()?;
    let search = search_keys(c)?;
    Ok(CommandBody::Sort(SortCommand {
        uid,
        return_options,
        criteria,
        charset,
        search,
    }))
}

/// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria`
pub(crate) fn thread(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let name = c.atom("expected a threading algorithm")?;
    let algorithm = match name.to_ascii_uppercase().as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        other => ThreadAlgorithm::Other(other.chars().take(64).collect()),
    };
    c.sp()?;
    let charset = charset(c)?;
    c.sp()?;
    let search = search_keys(c)?;
    Ok(CommandBody::Thread(ThreadCommand {
        uid,
        algorithm,
        charset,
        search,
    }))
}

/// `"(" sort-criterion *(SP sort-criterion) ")"`
fn sort_criteria(c: &mut Cursor<'_>) -> PResult<Vec<SortCriterion>> {
    c.expect(b'(', "expected ( before the sort criteria")?;
    let mut criteria = Vec::new();
    loop {
        if criteria.len() == MAX_SORT_CRITERIA {
            return Err(syntax("too many sort criteria"));
        }
        let mut name = c.atom("expected a sort key")?;
        let reverse = name.eq_ignore_ascii_case("REVERSE");
        if reverse {
            c.sp()?;
            name = c.atom("expected a sort key after REVERSE")?;
        }
        let key = match name.to_ascii_uppercase().as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            _ => return Err(syntax("unknown sort key")),
        };
        criteria.push(SortCriterion { reverse, key });
        if c.eat(b')') {
            return Ok(criteria);
        }
        c.sp()
            .map_err(|_| syntax("expected ' ' or ')' in the sort criteria"))?;
    }
}

/// `charset = atom / quoted`; sent as given, checked by the session.
fn charset(c: &mut Cursor<'_>) -> PResult<String> {
    if c.peek() == Some(b'"') {
        utf8_string(c.quoted()?, "a charset name must be ASCII")
    } else {
        Ok(c.atom("expected a charset name")?.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::tests::{body, error_kind};

    fn sort(input: &[u8]) -> SortCommand {
        match body(input) {
            CommandBody::Sort(sort) => sort,
            other => panic!("{other:?}"),
        }
    }

    fn thread(input: &[u8]) -> ThreadCommand {
        match body(input) {
            CommandBody::Thread(thread) => thread,
            other => panic!("{other:?}"),
        }
    }

    fn criterion(reverse: bool, key: SortKey) -> SortCriterion {
        SortCriterion { reverse, key }
    }

    #[test]
    fn rfc_5256_sort_examples() {
        let s = sort(b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n");
        assert_eq!(s.criteria, vec![criterion(false, SortKey::Subject)]);
        assert_eq!(s.charset, "UTF-8");
        assert_eq!(s.search.len(), 1);
        assert!(!s.uid && s.return_options.is_none());
        let s = sort(b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n");
        assert_eq!(
            s.criteria,
            vec![
                criterion(false, SortKey::Subject),
                criterion(true, SortKey::Date)
            ]
        );
        let s = sort(b"A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"\r\n");
        assert_eq!(s.charset, "US-ASCII");
        assert_eq!(s.search, vec![SearchKey::Text(b"not in mailbox".to_vec())]);
    }

    #[test]
    fn every_sort_key_uid_and_esort() {
        let s = sort(
            b"a UID SORT RETURN (MIN MAX COUNT ALL) (ARRIVAL cc Date FROM SIZE SUBJECT TO \
              DISPLAYFROM reverse DISPLAYTO) \"UTF-8\" UNSEEN FROM x\r\n",
        );
        assert!(s.uid);
        let options = s.return_options.unwrap();
        assert!(options.min && options.max && options.count && options.all);
        let keys: Vec<SortKey> = s.criteria.iter().map(|c| c.key).collect();
        assert_eq!(
            keys,
            vec![
                SortKey::Arrival,
                SortKey::Cc,
                SortKey::Date,
                SortKey::From,
                SortKey::Size,
                SortKey::Subject,
                SortKey::To,
                SortKey::DisplayFrom,
                SortKey::DisplayTo
            ]
        );
        assert!(s.criteria[8].reverse && !s.criteria[7].reverse);
        assert_eq!(s.search.len(), 2);
    }

    #[test]
    fn rfc_5256_thread_examples() {
        let t = thread(b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n");
        assert_eq!(t.algorithm, ThreadAlgorithm::OrderedSubject);
        assert_eq!(t.charset, "UTF-8");
        let t = thread(b"A284 UID THREAD references US-ASCII TEXT \"gewp\"\r\n");
        assert!(t.uid);
        assert_eq!(t.algorithm, ThreadAlgorithm::References);
        assert_eq!(t.search, vec![SearchKey::Text(b"gewp".to_vec())]);
        let t = thread(b"A285 THREAD REFS UTF-8 ALL\r\n");
        assert_eq!(t.algorithm, ThreadAlgorithm::Other("REFS".into()));
    }

    #[test]
    fn invalid_sorts_and_threads() {
        for bad in [
            &b"a SORT\r\n"[..],
            b"a SORT () UTF-8 ALL\r\n",
            b"a SORT (SUBJECT) ALL\r\n",
            b"a SORT (SUBJECT) UTF-8\r\n",
            b"a SORT SUBJECT UTF-8 ALL\r\n",
            b"a SORT (NAME) UTF-8 ALL\r\n",
            b"a SORT (REVERSE) UTF-8 ALL\r\n",
            b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL\r\n",
            b"a SORT (DATE  SIZE) UTF-8 ALL\r\n",
            b"a SORT (DATE UTF-8 ALL\r\n",
            b"a SORT RETURN (SAVE (DATE) UTF-8 ALL\r\n",
            b"a THREAD REFERENCES\r\n",
            b"a THREAD REFERENCES UTF-8\r\n",
            b"a THREAD (REFERENCES) UTF-8 ALL\r\n",
            b"a UID THREAD REFERENCES UTF-8 FOO\r\n",
        ] {
            assert_eq!(
                error_kind(bad),
                ErrorKind::Syntax,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut many = b"a SORT (".to_vec();
        for _ in 0..=MAX_SORT_CRITERIA {
            many.extend_from_slice(b"DATE ");
        }
        many.extend_from_slice(b"SIZE) UTF-8 ALL\r\n");
        assert_eq!(error_kind(&many), ErrorKind::Syntax);
    }

    #[test]
    fn search_limits_apply_to_sort_and_thread() {
        let mut line = b"a SORT (DATE) UTF-8".to_vec();
        for _ in 0..2_000 {
            line.extend_from_slice(b" SEEN");
        }
        line.extend_from_slice(b"\r\n");
        assert_eq!(error_kind(&line), ErrorKind::TooManySearchKeys);
        let mut line = b"a THREAD REFERENCES UTF-8 ".to_vec();
        line.extend(std::iter::repeat_n(b'(', 40));
        line.extend_from_slice(b"SEEN");
        line.extend(std::iter::repeat_n(b')', 40));
        line.extend_from_slice(b"\r\n");
        assert_eq!(error_kind(&line), ErrorKind::NestingTooDeep);
    }
}
