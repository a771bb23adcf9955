//! LIST, basic and extended (RFC 9051 section 6.3.9, LIST-EXTENDED RFC 5258,
//! LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154).
//!
//! ```text
//! C: A101 LIST "" ""
//! C: A102 LIST #news.comp.mail.misc ""
//! C: A02 LIST (SUBSCRIBED) "" "*"
//! C: A03 LIST () "" ("foo" "foo/*") RETURN (CHILDREN)
//! C: A04 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (SUBSCRIBED)
//! C: A05 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))
//! C: t1 LIST (SPECIAL-USE) "" "*"
//! ```

use super::CommandBody;
use super::mailbox::{StatusItem, reference, status_items};
use crate::lexer::{Cursor, PResult, syntax};
use crate::mailbox::list_mailbox;

/// A LIST command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCommand {
    /// Selection options (`LIST (SUBSCRIBED) ...`).
    pub selection: ListSelectOptions,
    /// The reference name, decoded; often `""`.
    pub reference: String,
    /// One or more patterns with `*` and `%` wildcards, decoded.
    pub patterns: Vec<String>,
    /// Return options (`... RETURN (CHILDREN)`).
    pub returns: ListReturnOptions,
    /// Whether the client used the extended syntax (selection options, several
    /// patterns or return options): the reply then follows RFC 5258 (`\NonExistent`,
    /// CHILDINFO) rather than the basic LIST rules.
    pub extended: bool,
}

/// `list-select-opts` (RFC 5258, RFC 6154).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListSelectOptions {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// `list-return-opts` (RFC 5258, RFC 5819, RFC 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturnOptions {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    /// `STATUS (MESSAGES UNSEEN)`: a STATUS response for each listed mailbox.
    pub status: Option<Vec<StatusItem>>,
}

/// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`
pub(crate) fn list(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mut extended = false;
    let mut selection = ListSelectOptions::default();
    if c.peek() == Some(b'(') {
        extended = true;
        selection = select_options(c)?;
        c.sp()?;
    }
    let reference = reference(c)?;
    c.sp()?;
    let mut patterns = Vec::new();
    if c.eat(b'(') {
        extended = true;
        loop {
            patterns.push(list_mailbox(c)?);
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    } else {
        patterns.push(list_mailbox(c)?);
    }
    let mut returns = ListReturnOptions::default();
    if c.eat(b' ') {
        if !c.try_keyword("RETURN") {
            return Err(syntax("expected RETURN after the LIST patterns"));
        }
        extended = true;
        c.sp()?;
        returns = return_options(c)?;
    }
    Ok(CommandBody::List(ListCommand {
        selection,
        reference,
        patterns,
        returns,
        extended,
    }))
}

/// `list-select-opts = "(" [list-select-option *(SP list-select-option)] ")"`
fn select_options(c: &mut Cursor<'_>) -> PResult<ListSelectOptions> {
    c.expect(b'(', "expected ( before LIST selection options")?;
    let mut options = ListSelectOptions::default();
    if !c.eat(b')') {
        loop {
            let name = c.atom("expected a LIST selection option")?;
            match name.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => options.subscribed = true,
                "REMOTE" => options.remote = true,
                "RECURSIVEMATCH" => options.recursive_match = true,
                "SPECIAL-USE" => options.special_use = true,
                _ => return Err(syntax("unknown LIST selection option")),
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    // RFC 5258 section 3: RECURSIVEMATCH alone is an error.
    if options.recursive_match && !options.subscribed && !options.special_use {
        return Err(syntax("RECURSIVEMATCH needs another selection option"));
    }
    Ok(options)
}

/// `list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"`
fn return_options(c: &mut Cursor<'_>) -> PResult<ListReturnOptions> {
    c.expect(b'(', "expected ( after RETURN")?;
    let mut options = ListReturnOptions::default();
    if c.eat(b')') {
        return Ok(options);
    }
    loop {
        let name = c.atom("expected a LIST return option")?;
        match name.to_ascii_uppercase().as_str() {
            "SUBSCRIBED" => options.subscribed = true,
            "CHILDREN" => options.children = true,
            "SPECIAL-USE" => options.special_use = true,
            "STATUS" => {
                c.sp()?;
                options.status = Some(status_items(c)?);
            }
            _ => return Err(syntax("unknown LIST return option")),
        }
        if c.eat(b')') {
            return Ok(options);
        }
        c.sp()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::tests::{body, body_utf8, error_kind};

    fn list(input: &[u8]) -> ListCommand {
        match body(input) {
            CommandBody::List(list) => list,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn basic_list() {
        let l = list(b"A101 LIST \"\" \"\"\r\n");
        assert_eq!(
            (l.reference.as_str(), l.patterns.as_slice(), l.extended),
            ("", &["".to_owned()][..], false)
        );
        let l = list(b"A102 LIST #news.comp.mail.misc \"\"\r\n");
        assert_eq!(l.reference, "#news.comp.mail.misc");
        let l = list(b"A202 LIST ~/Mail/ %\r\n");
        assert_eq!(
            (l.reference.as_str(), l.patterns[0].as_str()),
            ("~/Mail/", "%")
        );
        let l = list(b"A1 LIST \"\" Entw&APw-rfe/*\r\n");
        assert_eq!(l.patterns, vec!["Entwürfe/*".to_owned()]);
        let l = list(b"A1 LIST \"\" INBOX]\r\n");
        assert_eq!(l.patterns, vec!["INBOX]".to_owned()]);
    }

    #[test]
    fn extended_list_with_selection_patterns_and_return_options() {
        // RFC 5258 section 5, examples 4 and 10.
        let l = list(b"A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n");
        assert!(l.extended && l.selection.subscribed && !l.selection.remote);
        let l = list(b"A03 LIST () \"\" (\"foo\" \"foo/*\") RETURN (CHILDREN)\r\n");
        assert_eq!(l.patterns, vec!["foo".to_owned(), "foo/*".to_owned()]);
        assert!(l.returns.children && !l.returns.subscribed);
        let l = list(b"A04 LIST (SUBSCRIBED RECURSIVEMATCH REMOTE) \"\" % RETURN (SUBSCRIBED SPECIAL-USE)\r\n");
        assert!(l.selection.recursive_match && l.selection.remote);
        assert!(l.returns.subscribed && l.returns.special_use);
        let l = list(b"t1 LIST (SPECIAL-USE) \"\" \"*\"\r\n");
        assert!(l.selection.special_use);
        let l = list(b"A1 LIST \"\" % RETURN ()\r\n");
        assert!(l.extended);
        assert_eq!(l.returns, ListReturnOptions::default());
    }

    #[test]
    fn list_status() {
        // RFC 5819 section 3.
        let l = list(b"A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n");
        assert_eq!(
            l.returns.status,
            Some(vec![StatusItem::Messages, StatusItem::Unseen])
        );
        let l = list(b"A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (STATUS (MESSAGES))\r\n");
        assert_eq!(l.returns.status, Some(vec![StatusItem::Messages]));
    }

    #[test]
    fn invalid_extended_lists() {
        assert_eq!(
            error_kind(b"A LIST (RECURSIVEMATCH) \"\" %\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(error_kind(b"A LIST (FOO) \"\" %\r\n"), ErrorKind::Syntax);
        assert_eq!(
            error_kind(b"A LIST \"\" % RETURN (FOO)\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(error_kind(b"A LIST \"\" % FOO\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"A LIST \"\" ()\r\n"), ErrorKind::Syntax);
    }

    #[test]
    fn utf8_patterns_after_enable() {
        let CommandBody::List(l) = body_utf8("A LIST \"\" \"送信済み/*\"\r\n".as_bytes())
        else {
            panic!()
        };
        assert_eq!(l.patterns, vec!["送信済み/*".to_owned()]);
    }
}
