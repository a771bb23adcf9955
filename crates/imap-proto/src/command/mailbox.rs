//! Commands on mailboxes as a whole: SELECT and EXAMINE (with CONDSTORE and QRESYNC,
//! RFC 7162), CREATE (with USE, RFC 6154), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
//! STATUS and LSUB.
//!
//! ```text
//! C: A142 SELECT INBOX
//! C: A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))
//! C: t1 CREATE MySpecialArchive (USE (\Archive))
//! C: A042 STATUS blurdybloop (UIDNEXT MESSAGES)
//! ```

use std::num::NonZeroU32;

use super::CommandBody;
use crate::error::ErrorKind;
use crate::lexer::{Cursor, PResult, fail, syntax};
use crate::mailbox::{MailboxName, SpecialUse, decode_name, list_mailbox, mailbox};
use crate::sequence::{SequenceSet, sequence_set};

/// The parameters of SELECT and EXAMINE (RFC 4466 `select-params`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParameters {
    /// `(CONDSTORE)`: enable CONDSTORE and report HIGHESTMODSEQ.
    pub condstore: bool,
    /// `(QRESYNC (...))`
    pub qresync: Option<QresyncParameters>,
}

/// `QRESYNC (uidvalidity mod-sequence-value [known-uids] [(known-sequence-set known-uid-set)])`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParameters {
    pub uid_validity: NonZeroU32,
    pub mod_sequence: u64,
    /// UIDs the client knows; never contains `*`.
    pub known_uids: Option<SequenceSet>,
    /// `seq-match-data`: message numbers and the UIDs the client believes they have.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// `status-att` (RFC 9051, plus RECENT of IMAP4rev1 and HIGHESTMODSEQ of RFC 7162).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    Recent,
    HighestModSeq,
}

impl StatusItem {
    pub fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::Recent => "RECENT",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
        }
    }
}

/// `SP mailbox`, the only argument of DELETE, SUBSCRIBE, UNSUBSCRIBE and GETQUOTAROOT.
pub(crate) fn one_mailbox(c: &mut Cursor<'_>) -> PResult<MailboxName> {
    c.sp()?;
    mailbox(c)
}

/// `select = "SELECT" SP mailbox [select-params]`, and EXAMINE alike.
pub(crate) fn select(c: &mut Cursor<'_>, read_only: bool) -> PResult<CommandBody> {
    let mailbox = one_mailbox(c)?;
    let mut parameters = SelectParameters::default();
    if c.eat(b' ') {
        c.expect(b'(', "expected ( before SELECT parameters")?;
        loop {
            if c.try_keyword("CONDSTORE") {
                parameters.condstore = true;
            } else if c.try_keyword("QRESYNC") {
                parameters.qresync = Some(qresync(c)?);
            } else {
                return Err(syntax("unknown SELECT parameter"));
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(if read_only {
        CommandBody::Examine {
            mailbox,
            parameters,
        }
    } else {
        CommandBody::Select {
            mailbox,
            parameters,
        }
    })
}

fn set_without_star(c: &mut Cursor<'_>) -> PResult<SequenceSet> {
    let set = sequence_set(c)?;
    if set.has_largest() {
        return Err(fail(
            ErrorKind::InvalidSequenceSet,
            "* is not allowed in QRESYNC parameters",
        ));
    }
    Ok(set)
}

/// `"QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`
fn qresync(c: &mut Cursor<'_>) -> PResult<QresyncParameters> {
    c.sp()?;
    c.expect(b'(', "expected ( after QRESYNC")?;
    let uid_validity = c.nz_number()?;
    c.sp()?;
    let mod_sequence = c.mod_sequence_value()?;
    let mut known_uids = None;
    let mut seq_match = None;
    if c.eat(b' ') {
        if c.peek() == Some(b'(') {
            seq_match = Some(seq_match_data(c)?);
        } else {
            known_uids = Some(set_without_star(c)?);
            if c.eat(b' ') {
                seq_match = Some(seq_match_data(c)?);
            }
        }
    }
    c.expect(b')', "expected ) after QRESYNC parameters")?;
    Ok(QresyncParameters {
        uid_validity,
        mod_sequence,
        known_uids,
        seq_match,
    })
}

/// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`
fn seq_match_data(c: &mut Cursor<'_>) -> PResult<(SequenceSet, SequenceSet)> {
    c.expect(b'(', "expected ( before seq-match-data")?;
    let sequence_numbers = set_without_star(c)?;
    c.sp()?;
    let uids = set_without_star(c)?;
    c.expect(b')', "expected ) after seq-match-data")?;
    Ok((sequence_numbers, uids))
}

/// `create = "CREATE" SP mailbox [create-params]`,
/// `create-param = "USE" SP "(" [use-attr *(SP use-attr)] ")"` (RFC 6154)
pub(crate) fn create(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mailbox = one_mailbox(c)?;
    let mut special_use = Vec::new();
    if c.eat(b' ') {
        c.expect(b'(', "expected ( before CREATE parameters")?;
        loop {
            if !c.try_keyword("USE") {
                return Err(syntax("unknown CREATE parameter"));
            }
            c.sp()?;
            c.expect(b'(', "expected ( after USE")?;
            if !c.eat(b')') {
                loop {
                    c.expect(b'\\', "expected a special-use attribute like \\Drafts")?;
                    special_use.push(SpecialUse::from_name(
                        c.atom("expected a special-use attribute")?,
                    ));
                    if c.eat(b')') {
                        break;
                    }
                    c.sp()?;
                }
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(CommandBody::Create {
        mailbox,
        special_use,
    })
}

/// `rename = "RENAME" SP mailbox SP mailbox`
pub(crate) fn rename(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let from = one_mailbox(c)?;
    let to = one_mailbox(c)?;
    Ok(CommandBody::Rename { from, to })
}

/// `status-att *(SP status-att) ")"` after the opening parenthesis.
pub(crate) fn status_items(c: &mut Cursor<'_>) -> PResult<Vec<StatusItem>> {
    c.expect(b'(', "expected ( before status items")?;
    let mut items = Vec::new();
    loop {
        let name = c.atom("expected a status item like MESSAGES")?;
        let item = match name.to_ascii_uppercase().as_str() {
            "MESSAGES" => StatusItem::Messages,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "SIZE" => StatusItem::Size,
            "RECENT" => StatusItem::Recent,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            _ => return Err(syntax("unknown status item")),
        };
        items.push(item);
        if c.eat(b')') {
            return Ok(items);
        }
        c.sp()?;
    }
}

/// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`
pub(crate) fn status(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mailbox = one_mailbox(c)?;
    c.sp()?;
    let items = status_items(c)?;
    Ok(CommandBody::Status { mailbox, items })
}

/// The reference argument of LIST and LSUB: a `mailbox`, decoded but not
/// INBOX-normalised (it is a prefix, not a name).
pub(crate) fn reference(c: &mut Cursor<'_>) -> PResult<String> {
    let bytes = c.astring()?;
    decode_name(&bytes, c.utf8)
}

/// `lsub = "LSUB" SP mailbox SP list-mailbox`
pub(crate) fn lsub(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let reference = reference(c)?;
    c.sp()?;
    let pattern = list_mailbox(c)?;
    Ok(CommandBody::Lsub { reference, pattern })
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::tests::{body, error_kind, set};

    #[test]
    fn select_and_examine() {
        assert_eq!(
            body(b"A142 SELECT INBOX\r\n"),
            CommandBody::Select {
                mailbox: MailboxName::new("INBOX"),
                parameters: Default::default()
            }
        );
        assert_eq!(
            body(b"A932 EXAMINE blurdybloop\r\n"),
            CommandBody::Examine {
                mailbox: MailboxName::new("blurdybloop"),
                parameters: Default::default()
            }
        );
        let CommandBody::Select {
            mailbox,
            parameters,
        } = body(b"a SELECT inbox (CONDSTORE)\r\n")
        else {
            panic!()
        };
        assert!(mailbox.is_inbox());
        assert!(parameters.condstore);
        assert_eq!(error_kind(b"a SELECT INBOX (FOO)\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"a SELECT INBOX ()\r\n"), ErrorKind::Syntax);
    }

    #[test]
    fn qresync_with_known_uids_and_seq_match() {
        // RFC 7162 section 3.2.5.2.
        let CommandBody::Select { parameters, .. } =
            body(b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n")
        else {
            panic!()
        };
        let qresync = parameters.qresync.unwrap();
        assert_eq!(qresync.uid_validity, NonZeroU32::new(67_890_007).unwrap());
        assert_eq!(qresync.mod_sequence, 20_050_715_194_045_000);
        assert_eq!(qresync.known_uids, Some(set("41,43:211,214:541")));
        assert_eq!(qresync.seq_match, None);

        let CommandBody::Select { parameters, .. } = body(
            b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n",
        ) else {
            panic!()
        };
        let qresync = parameters.qresync.unwrap();
        assert_eq!(qresync.known_uids, Some(set("1:29997")));
        let (numbers, uids) = qresync.seq_match.unwrap();
        assert_eq!(numbers, set("5000,7500,9000,9990:9999"));
        assert_eq!(uids.ranges().len(), 13);

        let CommandBody::Examine { parameters, .. } =
            body(b"a EXAMINE INBOX (QRESYNC (1 2 (1:3 4:6)) CONDSTORE)\r\n")
        else {
            panic!()
        };
        assert!(parameters.condstore);
        let qresync = parameters.qresync.unwrap();
        assert_eq!(qresync.known_uids, None);
        assert_eq!(qresync.seq_match, Some((set("1:3"), set("4:6"))));

        assert_eq!(
            error_kind(b"a SELECT INBOX (QRESYNC (1 2 1:*))\r\n"),
            ErrorKind::InvalidSequenceSet
        );
        assert_eq!(
            error_kind(b"a SELECT INBOX (QRESYNC (0 2))\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(
            error_kind(b"a SELECT INBOX (QRESYNC (1 0))\r\n"),
            ErrorKind::Syntax
        );
    }

    #[test]
    fn create_with_special_use() {
        // RFC 6154 section 5.2.
        assert_eq!(
            body(b"t1 CREATE MySpecialArchive (USE (\\Archive))\r\n"),
            CommandBody::Create {
                mailbox: MailboxName::new("MySpecialArchive"),
                special_use: vec![SpecialUse::Archive]
            }
        );
        assert_eq!(
            body(b"t1 CREATE Drafts (USE (\\Drafts \\X-Foo))\r\n"),
            CommandBody::Create {
                mailbox: MailboxName::new("Drafts"),
                special_use: vec![SpecialUse::Drafts, SpecialUse::Other("X-Foo".into())]
            }
        );
        assert_eq!(
            body(b"A003 CREATE owatagusiam/\r\n"),
            CommandBody::Create {
                mailbox: MailboxName::new("owatagusiam/"),
                special_use: vec![]
            }
        );
        assert_eq!(
            error_kind(b"t1 CREATE x (FOO (\\Drafts))\r\n"),
            ErrorKind::Syntax
        );
    }

    #[test]
    fn rename_delete_subscribe() {
        assert_eq!(
            body(b"A683 RENAME blurdybloop sarasoop\r\n"),
            CommandBody::Rename {
                from: MailboxName::new("blurdybloop"),
                to: MailboxName::new("sarasoop")
            }
        );
        assert_eq!(
            body(b"A683 DELETE \"&kAFP4W4IMH8-\"\r\n"),
            CommandBody::Delete {
                mailbox: MailboxName::new("送信済み")
            }
        );
        assert_eq!(
            body(b"A002 SUBSCRIBE #news.comp.mail.mime\r\n"),
            CommandBody::Subscribe {
                mailbox: MailboxName::new("#news.comp.mail.mime")
            }
        );
        assert_eq!(
            body(b"A002 UNSUBSCRIBE {4+}\r\nEntw\r\n"),
            CommandBody::Unsubscribe {
                mailbox: MailboxName::new("Entw")
            }
        );
    }

    #[test]
    fn status_items_of_rev2_and_extensions() {
        assert_eq!(
            body(b"A042 STATUS blurdybloop (UIDNEXT MESSAGES size deleted HIGHESTMODSEQ)\r\n"),
            CommandBody::Status {
                mailbox: MailboxName::new("blurdybloop"),
                items: vec![
                    StatusItem::UidNext,
                    StatusItem::Messages,
                    StatusItem::Size,
                    StatusItem::Deleted,
                    StatusItem::HighestModSeq
                ]
            }
        );
        assert_eq!(error_kind(b"A042 STATUS x ()\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"A042 STATUS x (FOO)\r\n"), ErrorKind::Syntax);
    }

    #[test]
    fn lsub() {
        assert_eq!(
            body(b"A002 LSUB \"#news.\" \"comp.mail.*\"\r\n"),
            CommandBody::Lsub {
                reference: "#news.".into(),
                pattern: "comp.mail.*".into()
            }
        );
        assert_eq!(
            body(b"A002 LSUB \"\" %\r\n"),
            CommandBody::Lsub {
                reference: "".into(),
                pattern: "%".into()
            }
        );
    }
}
