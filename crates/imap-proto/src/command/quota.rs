//! GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208).
//!
//! ```text
//! C: G0001 GETQUOTA "!partition.sda4"
//! C: G0002 GETQUOTAROOT INBOX
//! C: S0000 SETQUOTA "#user/alice" (STORAGE 510)
//! ```

use super::CommandBody;
use crate::lexer::{Cursor, PResult, utf8_string};

fn quota_root(c: &mut Cursor<'_>) -> PResult<String> {
    c.sp()?;
    utf8_string(c.astring()?, "a quota root must be UTF-8")
}

/// `getquota = "GETQUOTA" SP quota-root-name`
pub(crate) fn get_quota(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    Ok(CommandBody::GetQuota {
        root: quota_root(c)?,
    })
}

/// `setquota = "SETQUOTA" SP quota-root-name SP setquota-list`,
/// `setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"`
pub(crate) fn set_quota(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let root = quota_root(c)?;
    c.sp()?;
    c.expect(b'(', "expected ( before the quota limits")?;
    let mut limits = Vec::new();
    if !c.eat(b')') {
        loop {
            let resource = c
                .atom("expected a resource name like STORAGE")?
                .to_ascii_uppercase();
            c.sp()?;
            limits.push((resource, c.number64()?));
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(CommandBody::SetQuota { root, limits })
}

#[cfg(test)]
mod tests {
    use crate::MailboxName;
    use crate::command::CommandBody;
    use crate::tests::body;

    #[test]
    fn quota_commands() {
        assert_eq!(
            body(b"G0001 GETQUOTA \"!partition.sda4\"\r\n"),
            CommandBody::GetQuota {
                root: "!partition.sda4".into()
            }
        );
        assert_eq!(
            body(b"G0002 GETQUOTAROOT INBOX\r\n"),
            CommandBody::GetQuotaRoot {
                mailbox: MailboxName::new("INBOX")
            }
        );
        assert_eq!(
            body(b"S0000 SETQUOTA \"#user/alice\" (storage 510)\r\n"),
            CommandBody::SetQuota {
                root: "#user/alice".into(),
                limits: vec![("STORAGE".into(), 510)]
            }
        );
        assert_eq!(
            body(b"S0001 SETQUOTA \"\" ()\r\n"),
            CommandBody::SetQuota {
                root: "".into(),
                limits: vec![]
            }
        );
    }
}
