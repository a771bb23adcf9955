//! Commands on mailboxes as a whole (RFC 9051 section 6.3): CREATE (with
//! CREATE-SPECIAL-USE, RFC 6154), DELETE, RENAME (the INBOX rule included), SUBSCRIBE,
//! UNSUBSCRIBE, STATUS (with STATUS=SIZE, RFC 8438, and CONDSTORE's HIGHESTMODSEQ) and
//! NAMESPACE (RFC 2342).
//!
//! ```text
//! C: t1 CREATE Archive/2026 (USE (\Archive))
//! S: t1 OK CREATE completed
//! C: A042 STATUS INBOX (MESSAGES UNSEEN SIZE HIGHESTMODSEQ)
//! S: * STATUS INBOX (MESSAGES 231 UNSEEN 3 SIZE 1048576 HIGHESTMODSEQ 7011231777)
//! S: A042 OK STATUS completed
//! ```
//!
//! Names arrive decoded (modified UTF-7 or, after ENABLE UTF8=ACCEPT, UTF-8) and are
//! kept in UTF-8 with `/` between levels.

use postcell_imap_proto::command::StatusItem;
use postcell_imap_proto::response::{
    Code, Data, NamespaceDescription, StatusResponse, StatusValue,
};
use postcell_imap_proto::{MailboxName, SpecialUse};
use postcell_store::{HIERARCHY_DELIMITER, Mailbox, Store, StoreError};

use crate::reply::{self, unavailable};
use crate::session::Session;

/// Why a name cannot be a mailbox here, if it cannot.
fn invalid_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("A mailbox name cannot be empty");
    }
    if name.contains(['*', '%']) {
        return Some("A mailbox name cannot contain * or %");
    }
    if name.chars().any(char::is_control) {
        return Some("A mailbox name cannot contain control characters");
    }
    if name
        .split(HIERARCHY_DELIMITER)
        .any(|level| level.is_empty())
    {
        return Some("A mailbox name cannot have an empty level");
    }
    None
}

/// The special uses a mailbox can be created with: the ones of real mailboxes
/// (virtual ones such as `\All` and `\Flagged` are not kept here).
fn storable_special_use(special_use: &SpecialUse) -> Option<&'static str> {
    match special_use {
        SpecialUse::Sent => Some("\\Sent"),
        SpecialUse::Drafts => Some("\\Drafts"),
        SpecialUse::Trash => Some("\\Trash"),
        SpecialUse::Junk => Some("\\Junk"),
        SpecialUse::Archive => Some("\\Archive"),
        _ => None,
    }
}

/// Creates the superiors of `name` that do not exist yet (RFC 9051 sections 6.3.4 and
/// 6.3.6: CREATE and RENAME make the hierarchy they need).
async fn create_parents(store: &Store, account_id: i64, name: &str) -> Result<(), StoreError> {
    let mut end = 0;
    while let Some(at) = name[end..].find(HIERARCHY_DELIMITER) {
        end += at;
        let parent = &name[..end];
        if store.mailbox_by_name(account_id, parent).await?.is_none() {
            match store.create_mailbox(account_id, parent, None).await {
                Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
                Err(error) => return Err(error),
            }
        }
        end += HIERARCHY_DELIMITER.len_utf8();
    }
    Ok(())
}

/// `CREATE name [(USE (\Sent))]`. A trailing delimiter only says that the client means
/// to create names below it (RFC 9051 section 6.3.4).
pub(crate) async fn create(
    session: &mut Session,
    tag: String,
    account_id: i64,
    name: &MailboxName,
    special_use: &[SpecialUse],
) {
    let name = name.as_str().trim_end_matches(HIERARCHY_DELIMITER);
    if name.eq_ignore_ascii_case("INBOX") {
        session.write_status(
            StatusResponse::no(Some(tag), "INBOX always exists").with_code(Code::AlreadyExists),
        );
        return;
    }
    if let Some(reason) = invalid_name(name) {
        session.write_status(StatusResponse::no(Some(tag), reason).with_code(Code::Cannot));
        return;
    }
    let attribute = match special_use {
        [] => None,
        [one] => match storable_special_use(one) {
            Some(attribute) => Some(attribute),
            None => {
                session.write_status(
                    StatusResponse::no(Some(tag), format!("Special use {one} is not supported"))
                        .with_code(Code::UseAttr),
                );
                return;
            }
        },
        _ => {
            session.write_status(
                StatusResponse::no(Some(tag), "A mailbox has at most one special use here")
                    .with_code(Code::UseAttr),
            );
            return;
        }
    };
    let store = session.store().clone();
    if let Err(error) = create_parents(&store, account_id, name).await {
        return unavailable(session, tag, &error);
    }
    match store.create_mailbox(account_id, name, attribute).await {
        Ok(_) => session.write_status(StatusResponse::ok(Some(tag), "CREATE completed")),
        Err(error) => unavailable(session, tag, &error),
    }
}

pub(crate) async fn delete(
    session: &mut Session,
    tag: String,
    account_id: i64,
    name: &MailboxName,
) {
    if name.is_inbox() {
        session.write_status(
            StatusResponse::no(Some(tag), "INBOX cannot be deleted").with_code(Code::Cannot),
        );
        return;
    }
    let store = session.store().clone();
    // SQLite may give a deleted mailbox's id to the next one created: the node's shared
    // map of it must go with it.
    if let Ok(Some(mailbox)) = store.mailbox_by_name(account_id, name.as_str()).await {
        session.server.maps.forget(mailbox.id);
    }
    match store.delete_mailbox(account_id, name.as_str()).await {
        Ok(()) => session.write_status(StatusResponse::ok(Some(tag), "DELETE completed")),
        Err(error) => unavailable(session, tag, &error),
    }
}

/// RENAME, children included. RENAME INBOX moves its messages to the new mailbox and
/// leaves INBOX empty (RFC 9051 section 6.3.6).
pub(crate) async fn rename(
    session: &mut Session,
    tag: String,
    account_id: i64,
    from: &MailboxName,
    to: &MailboxName,
) {
    let target = to.as_str().trim_end_matches(HIERARCHY_DELIMITER);
    if to.is_inbox() {
        session.write_status(
            StatusResponse::no(Some(tag), "INBOX already exists").with_code(Code::AlreadyExists),
        );
        return;
    }
    if let Some(reason) = invalid_name(target) {
        session.write_status(StatusResponse::no(Some(tag), reason).with_code(Code::Cannot));
        return;
    }
    let store = session.store().clone();
    match store.mailbox_by_name(account_id, from.as_str()).await {
        Ok(Some(_)) => {}
        Ok(None) => return reply::no_such_mailbox(session, tag),
        Err(error) => return unavailable(session, tag, &error),
    }
    if let Err(error) = create_parents(&store, account_id, target).await {
        return unavailable(session, tag, &error);
    }
    match store
        .rename_mailbox(account_id, from.as_str(), target)
        .await
    {
        Ok(()) => session.write_status(StatusResponse::ok(Some(tag), "RENAME completed")),
        Err(error) => unavailable(session, tag, &error),
    }
}

pub(crate) async fn subscribe(
    session: &mut Session,
    tag: String,
    account_id: i64,
    name: &MailboxName,
    subscribed: bool,
) {
    let store = session.store().clone();
    let command = if subscribed {
        "SUBSCRIBE"
    } else {
        "UNSUBSCRIBE"
    };
    match store
        .set_subscribed(account_id, name.as_str(), subscribed)
        .await
    {
        Ok(()) => session.write_status(StatusResponse::ok(
            Some(tag),
            format!("{command} completed"),
        )),
        Err(error) => unavailable(session, tag, &error),
    }
}

/// The values of `items` for one mailbox: one counting query, whatever the size.
pub(crate) async fn status_values(
    store: &Store,
    mailbox: &Mailbox,
    items: &[StatusItem],
) -> Result<Vec<StatusValue>, StoreError> {
    let needs_counts = items.iter().any(|item| {
        matches!(
            item,
            StatusItem::Messages | StatusItem::Unseen | StatusItem::Deleted | StatusItem::Size
        )
    });
    let counts = if needs_counts {
        store.mailbox_counts(mailbox.id).await?
    } else {
        Default::default()
    };
    let n = |value: i64| u32::try_from(value).unwrap_or(u32::MAX);
    Ok(items
        .iter()
        .map(|item| match item {
            StatusItem::Messages => StatusValue::Messages(n(counts.messages)),
            StatusItem::UidNext => StatusValue::UidNext(n(mailbox.uid_next)),
            StatusItem::UidValidity => StatusValue::UidValidity(n(mailbox.uid_validity)),
            StatusItem::Unseen => StatusValue::Unseen(n(counts.unseen)),
            StatusItem::Deleted => StatusValue::Deleted(n(counts.deleted)),
            StatusItem::Size => StatusValue::Size(counts.size.max(0) as u64),
            StatusItem::Recent => StatusValue::Recent(0),
            StatusItem::HighestModSeq => {
                StatusValue::HighestModSeq(mailbox.highest_modseq.max(0) as u64)
            }
        })
        .collect())
}

/// `STATUS name (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ)`.
pub(crate) async fn status(
    session: &mut Session,
    tag: String,
    account_id: i64,
    name: &MailboxName,
    items: &[StatusItem],
) {
    if items.contains(&StatusItem::HighestModSeq) {
        // RFC 7162 section 3.1: a CONDSTORE-enabling command.
        session.enabled.condstore = true;
    }
    let store = session.store().clone();
    let mailbox = match store.mailbox_by_name(account_id, name.as_str()).await {
        Ok(Some(mailbox)) => mailbox,
        Ok(None) => return reply::no_such_mailbox(session, tag),
        Err(error) => return unavailable(session, tag, &error),
    };
    match status_values(&store, &mailbox, items).await {
        Ok(values) => {
            session.write_data(&Data::Status {
                mailbox: name.clone(),
                items: values,
            });
            session.write_status(StatusResponse::ok(Some(tag), "STATUS completed"));
        }
        Err(error) => unavailable(session, tag, &error),
    }
}

/// RFC 2342: one personal namespace, no others.
pub(crate) fn namespace(session: &mut Session, tag: String) {
    session.write_data(&Data::Namespace {
        personal: vec![NamespaceDescription {
            prefix: String::new(),
            delimiter: Some(HIERARCHY_DELIMITER),
        }],
        other_users: Vec::new(),
        shared: Vec::new(),
    });
    session.write_status(StatusResponse::ok(Some(tag), "NAMESPACE completed"));
}

#[cfg(test)]
mod tests {
    use super::invalid_name;

    #[test]
    fn names_that_cannot_be_mailboxes() {
        assert_eq!(invalid_name("Archive/2026"), None);
        assert_eq!(invalid_name("送信済み"), None);
        assert!(invalid_name("").is_some());
        assert!(invalid_name("a*").is_some());
        assert!(invalid_name("a%b").is_some());
        assert!(invalid_name("a//b").is_some());
        assert!(invalid_name("/a").is_some());
        assert!(invalid_name("a\tb").is_some());
    }
}
