//! QUOTA (RFC 9208): the account's quota is the one quota root, `""`, over every
//! mailbox of the account. Its only resource is STORAGE (in units of 1024 octets); an
//! account without a limit has no quota root. Users cannot change their quota.
//!
//! ```text
//! C: G0002 GETQUOTAROOT INBOX
//! S: * QUOTAROOT INBOX ""
//! S: * QUOTA "" (STORAGE 10 512)
//! S: G0002 OK GETQUOTAROOT completed
//! C: S0000 SETQUOTA "" (STORAGE 1024)
//! S: S0000 NO [NOPERM] Only an administrator can change a quota
//! ```

use postcell_imap_proto::MailboxName;
use postcell_imap_proto::response::{Code, Data, QuotaResource, StatusResponse};
use postcell_store::Account;

use crate::reply::{self, unavailable};
use crate::session::Session;

/// The account's quota root.
const ROOT: &str = "";

fn quota(account: &Account) -> Option<Data> {
    (account.quota_bytes > 0).then(|| Data::Quota {
        root: ROOT.to_owned(),
        resources: vec![QuotaResource {
            name: "STORAGE".to_owned(),
            usage: (account.used_bytes.max(0) as u64).div_ceil(1024),
            limit: (account.quota_bytes / 1024) as u64,
        }],
    })
}

async fn account(session: &mut Session, tag: &str, account_id: i64) -> Option<Account> {
    match session.store().account_by_id(account_id).await {
        Ok(Some(account)) => Some(account),
        Ok(None) => {
            session.write_status(
                StatusResponse::no(Some(tag.to_owned()), "Account not found")
                    .with_code(Code::Nonexistent),
            );
            None
        }
        Err(error) => {
            unavailable(session, tag.to_owned(), &error);
            None
        }
    }
}

pub(crate) async fn get_quota(session: &mut Session, tag: String, account_id: i64, root: &str) {
    let Some(account) = account(session, &tag, account_id).await else {
        return;
    };
    match quota(&account).filter(|_| root == ROOT) {
        Some(data) => {
            session.write_data(&data);
            session.write_status(StatusResponse::ok(Some(tag), "GETQUOTA completed"));
        }
        None => session.write_status(
            StatusResponse::no(Some(tag), "No such quota root").with_code(Code::Nonexistent),
        ),
    }
}

pub(crate) async fn get_quota_root(
    session: &mut Session,
    tag: String,
    account_id: i64,
    mailbox: &MailboxName,
) {
    match session
        .store()
        .mailbox_by_name(account_id, mailbox.as_str())
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return reply::no_such_mailbox(session, tag),
        Err(error) => return unavailable(session, tag, &error),
    }
    let Some(account) = account(session, &tag, account_id).await else {
        return;
    };
    let quota = quota(&account);
    session.write_data(&Data::QuotaRoot {
        mailbox: mailbox.clone(),
        roots: quota.iter().map(|_| ROOT.to_owned()).collect(),
    });
    if let Some(quota) = quota {
        session.write_data(&quota);
    }
    session.write_status(StatusResponse::ok(Some(tag), "GETQUOTAROOT completed"));
}

/// Quotas are set by the administrator (`postcell user quota`), never by the user.
pub(crate) fn set_quota(session: &mut Session, tag: String) {
    session.write_status(
        StatusResponse::no(Some(tag), "Only an administrator can change a quota")
            .with_code(Code::NoPerm),
    );
}
