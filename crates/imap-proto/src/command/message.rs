//! Commands that change messages: STORE (with UNCHANGEDSINCE, RFC 7162), COPY, MOVE
//! (RFC 6851) and UID EXPUNGE (RFC 4315), each also as a UID command.
//!
//! ```text
//! C: A003 STORE 2:4 +FLAGS (\Deleted)
//! C: d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\Deleted)
//! C: A003 COPY 2:4 MEETING
//! C: a UID MOVE 42:69 foo
//! C: A202 UID EXPUNGE 3000:3002
//! ```

use super::CommandBody;
use crate::flag::{Flag, flag, flag_list};
use crate::lexer::{Cursor, PResult, syntax};
use crate::mailbox::mailbox;
use crate::sequence::{MessageSet, message_set};

/// `+FLAGS`, `-FLAGS` or `FLAGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreAction {
    /// `FLAGS`: the flags become exactly these.
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

/// A STORE or UID STORE command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCommand {
    pub uid: bool,
    pub set: MessageSet,
    /// `(UNCHANGEDSINCE n)`: only messages whose mod-sequence is at most `n` (RFC 7162).
    pub unchanged_since: Option<u64>,
    pub action: StoreAction,
    /// `.SILENT`: no untagged FETCH with the new flags.
    pub silent: bool,
    pub flags: Vec<Flag>,
}

/// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`,
/// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`
pub(crate) fn store(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = message_set(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.eat(b'(') {
        if !c.try_keyword("UNCHANGEDSINCE") {
            return Err(syntax("unknown STORE modifier"));
        }
        c.sp()?;
        unchanged_since = Some(c.number64()?);
        c.expect(b')', "expected ) after the STORE modifier")?;
        c.sp()?;
    }
    let action = if c.eat(b'+') {
        StoreAction::Add
    } else if c.eat(b'-') {
        StoreAction::Remove
    } else {
        StoreAction::Replace
    };
    let item = c.take_while(|b| b.is_ascii_alphabetic() || b == b'.');
    let silent = if item.eq_ignore_ascii_case(b"FLAGS") {
        false
    } else if item.eq_ignore_ascii_case(b"FLAGS.SILENT") {
        true
    } else {
        return Err(syntax("expected FLAGS, +FLAGS or -FLAGS"));
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        flag_list(c)?
    } else {
        let mut flags = vec![flag(c)?];
        while c.eat(b' ') {
            flags.push(flag(c)?);
        }
        flags
    };
    Ok(CommandBody::Store(StoreCommand {
        uid,
        set,
        unchanged_since,
        action,
        silent,
        flags,
    }))
}

fn set_and_mailbox(c: &mut Cursor<'_>) -> PResult<(MessageSet, crate::MailboxName)> {
    c.sp()?;
    let set = message_set(c)?;
    c.sp()?;
    Ok((set, mailbox(c)?))
}

/// `copy = "COPY" SP sequence-set SP mailbox`
pub(crate) fn copy(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    let (set, mailbox) = set_and_mailbox(c)?;
    Ok(CommandBody::Copy { uid, set, mailbox })
}

/// `move = "MOVE" SP sequence-set SP mailbox`
pub(crate) fn move_(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    let (set, mailbox) = set_and_mailbox(c)?;
    Ok(CommandBody::Move { uid, set, mailbox })
}

/// `uid-expunge = "UID" SP "EXPUNGE" SP sequence-set`
pub(crate) fn uid_expunge(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    Ok(CommandBody::UidExpunge {
        uids: message_set(c)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::MailboxName;
    use crate::tests::{body, error_kind, set};

    fn store(input: &[u8]) -> StoreCommand {
        match body(input) {
            CommandBody::Store(store) => store,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn store_forms() {
        let s = store(b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n");
        assert_eq!(s.set, MessageSet::Set(set("2:4")));
        assert_eq!(
            (s.action, s.silent, s.uid),
            (StoreAction::Add, false, false)
        );
        assert_eq!(s.flags, vec![Flag::Deleted]);
        let s = store(b"A STORE 1 -flags.silent \\Seen $Junk\r\n");
        assert_eq!((s.action, s.silent), (StoreAction::Remove, true));
        assert_eq!(s.flags, vec![Flag::Seen, Flag::Keyword("$Junk".into())]);
        let s = store(b"A UID STORE 1:* FLAGS ()\r\n");
        assert_eq!(
            (s.action, s.uid, s.flags.len()),
            (StoreAction::Replace, true, 0)
        );
        let s = store(b"A UID STORE $ +FLAGS (\\Seen)\r\n");
        assert_eq!(s.set, MessageSet::SavedResult);
    }

    #[test]
    fn store_unchangedsince() {
        // RFC 7162 section 3.1.3, example 10.
        let s = store(b"d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(s.unchanged_since, Some(320_162_338));
        assert_eq!(s.set, MessageSet::Set(set("7,5,9")));
        assert!(s.silent);
        let s = store(b"a STORE 1 (UNCHANGEDSINCE 0) FLAGS (\\Seen)\r\n");
        assert_eq!(s.unchanged_since, Some(0));
        assert_eq!(
            error_kind(b"a STORE 1 (FOO 1) FLAGS (\\Seen)\r\n"),
            ErrorKind::Syntax
        );
    }

    #[test]
    fn invalid_stores() {
        assert_eq!(error_kind(b"a STORE 1 FLAGS\r\n"), ErrorKind::Syntax);
        assert_eq!(
            error_kind(b"a STORE 1 +FLAG (\\Seen)\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(error_kind(b"a STORE 1 +FLAGS (\\*)\r\n"), ErrorKind::Syntax);
        assert_eq!(
            error_kind(b"a STORE 0 +FLAGS (\\Seen)\r\n"),
            ErrorKind::InvalidSequenceSet
        );
    }

    #[test]
    fn copy_move_and_uid_expunge() {
        assert_eq!(
            body(b"A003 COPY 2:4 MEETING\r\n"),
            CommandBody::Copy {
                uid: false,
                set: MessageSet::Set(set("2:4")),
                mailbox: MailboxName::new("MEETING")
            }
        );
        assert_eq!(
            body(b"a UID MOVE 42:69 foo\r\n"),
            CommandBody::Move {
                uid: true,
                set: MessageSet::Set(set("42:69")),
                mailbox: MailboxName::new("foo")
            }
        );
        assert_eq!(
            body(b"A202 UID EXPUNGE 3000:3002\r\n"),
            CommandBody::UidExpunge {
                uids: MessageSet::Set(set("3000:3002"))
            }
        );
        assert_eq!(error_kind(b"A202 UID EXPUNGE\r\n"), ErrorKind::Syntax);
        assert_eq!(error_kind(b"A202 UID FOO 1\r\n"), ErrorKind::UnknownCommand);
    }
}
