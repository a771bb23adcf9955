//! SELECT / EXAMINE and LIST, and the sync that reports others' changes.
//!
//! ```text
//! C: a2 SELECT INBOX
//! S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
//! S: * 3 EXISTS
//! S: * OK [UIDVALIDITY 1700000000] UIDs valid
//! S: * OK [UIDNEXT 4] Predicted next UID
//! S: a2 OK [READ-WRITE] SELECT completed
//! ```

use postcell_imap_proto::command::StatusItem;
use postcell_imap_proto::response::{
    Code, Data, ListAttribute, ListItem, StatusResponse, StatusValue,
};
use postcell_imap_proto::{CommandBody, Flag, MailboxName, SpecialUse};
use postcell_store::{StoreError, flags};
/// The store keeps names with `/` between levels (`postcell_store::mailbox::HIERARCHY_DELIMITER`,
/// which the store crate does not re-export).
const HIERARCHY_DELIMITER: char = '/';

use crate::selected::SelectedMailbox;
use crate::session::{Login, Session, State};

/// The one place store errors become IMAP answers.
pub(crate) fn unavailable(session: &mut Session, tag: String, error: &StoreError) {
    let (code, text) = match error {
        StoreError::NotFound(_) => (Code::Nonexistent, error.to_string()),
        StoreError::AlreadyExists(_) => (Code::AlreadyExists, error.to_string()),
        StoreError::Invalid(_) => (Code::Cannot, error.to_string()),
        _ => {
            tracing::warn!(%error, "store error");
            (
                Code::Unavailable,
                "Store unavailable, try again later".to_owned(),
            )
        }
    };
    session.write_status(StatusResponse::no(Some(tag), text).with_code(code));
}

/// `CREATE name [(USE (\Sent))]`: parents are created first (RFC 9051 section 6.3.4).
pub(crate) async fn create(
    session: &mut Session,
    tag: String,
    account_id: i64,
    name: &str,
    special_use: &[SpecialUse],
) {
    let name = name.trim_end_matches(HIERARCHY_DELIMITER);
    let store = session.store().clone();
    let mut parent = String::new();
    for level in name.split(HIERARCHY_DELIMITER) {
        if !parent.is_empty() {
            parent.push(HIERARCHY_DELIMITER);
        }
        parent.push_str(level);
        if parent.len() == name.len() {
            break;
        }
        match store.mailbox_by_name(account_id, &parent).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                if let Err(error) = store.create_mailbox(account_id, &parent, None).await {
                    return unavailable(session, tag, &error);
                }
            }
            Err(error) => return unavailable(session, tag, &error),
        }
    }
    let attribute = special_use.first().map(|u| u.to_string());
    match store
        .create_mailbox(account_id, name, attribute.as_deref())
        .await
    {
        Ok(_) => session.write_status(StatusResponse::ok(Some(tag), "CREATE completed")),
        Err(error) => unavailable(session, tag, &error),
    }
}

/// DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE: one store call each.
pub(crate) async fn manage(session: &mut Session, tag: String, account_id: i64, body: CommandBody) {
    let store = session.store().clone();
    let (result, command) = match &body {
        CommandBody::Delete { mailbox } => (
            store.delete_mailbox(account_id, mailbox.as_str()).await,
            "DELETE",
        ),
        CommandBody::Rename { from, to } => (
            store
                .rename_mailbox(account_id, from.as_str(), to.as_str())
                .await,
            "RENAME",
        ),
        CommandBody::Subscribe { mailbox } => (
            store
                .set_subscribed(account_id, mailbox.as_str(), true)
                .await,
            "SUBSCRIBE",
        ),
        CommandBody::Unsubscribe { mailbox } => (
            store
                .set_subscribed(account_id, mailbox.as_str(), false)
                .await,
            "UNSUBSCRIBE",
        ),
        _ => return,
    };
    match result {
        Ok(()) => session.write_status(StatusResponse::ok(
            Some(tag),
            format!("{command} completed"),
        )),
        Err(error) => unavailable(session, tag, &error),
    }
}

/// `STATUS name (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ)`.
pub(crate) async fn status(
    session: &mut Session,
    tag: String,
    account_id: i64,
    name: &MailboxName,
    items: &[StatusItem],
) {
    let store = session.store().clone();
    let mailbox = match store.mailbox_by_name(account_id, name.as_str()).await {
        Ok(Some(mailbox)) => mailbox,
        Ok(None) => {
            session.write_status(
                StatusResponse::no(Some(tag), "No such mailbox").with_code(Code::Nonexistent),
            );
            return;
        }
        Err(error) => return unavailable(session, tag, &error),
    };
    let messages = match store.mailbox_messages(mailbox.id).await {
        Ok(messages) => messages,
        Err(error) => return unavailable(session, tag, &error),
    };
    let count = |bit: i64, set: bool| {
        messages
            .iter()
            .filter(|m| (m.flags & bit != 0) == set)
            .count() as u32
    };
    let values = items
        .iter()
        .map(|item| match item {
            StatusItem::Messages => StatusValue::Messages(messages.len() as u32),
            StatusItem::UidNext => StatusValue::UidNext(mailbox.uid_next as u32),
            StatusItem::UidValidity => StatusValue::UidValidity(mailbox.uid_validity as u32),
            StatusItem::Unseen => StatusValue::Unseen(count(flags::SEEN, false)),
            StatusItem::Deleted => StatusValue::Deleted(count(flags::DELETED, true)),
            StatusItem::Size => StatusValue::Size(messages.iter().map(|m| m.size as u64).sum()),
            StatusItem::Recent => StatusValue::Recent(0),
            StatusItem::HighestModSeq => StatusValue::HighestModSeq(mailbox.highest_modseq as u64),
        })
        .collect();
    session.write_data(&Data::Status {
        mailbox: name.clone(),
        items: values,
    });
    session.write_status(StatusResponse::ok(Some(tag), "STATUS completed"));
}

/// Writes the untagged updates of others' changes since the last report.
pub(crate) async fn sync(
    session: &mut Session,
    selected: &mut SelectedMailbox,
    allow_expunge: bool,
) {
    match selected.sync(session.store(), allow_expunge).await {
        Ok(updates) => {
            for update in &updates {
                session.write_data(update);
            }
        }
        Err(error) => tracing::warn!(%error, "mailbox sync failed"),
    }
}

pub(crate) async fn select(
    session: &mut Session,
    tag: String,
    login: Login,
    name: &str,
    read_only: bool,
) -> State {
    let store = session.store().clone();
    let mailbox = match store.mailbox_by_name(login.account_id, name).await {
        Ok(Some(mailbox)) => mailbox,
        Ok(None) => {
            session.write_status(
                StatusResponse::no(Some(tag), "No such mailbox").with_code(Code::Nonexistent),
            );
            return State::Authenticated(login);
        }
        Err(error) => {
            unavailable(session, tag, &error);
            return State::Authenticated(login);
        }
    };
    let selected = match SelectedMailbox::open(&store, mailbox.id, read_only).await {
        Ok(selected) => selected,
        Err(error) => {
            unavailable(session, tag, &error);
            return State::Authenticated(login);
        }
    };
    let system_flags = vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ];
    session.write_data(&Data::Flags(system_flags.clone()));
    session.write_data(&Data::Exists(selected.messages.len() as u32));
    session.write_data(&Data::Recent(0));
    let codes = [
        Code::UidValidity(mailbox.uid_validity as u32),
        Code::UidNext(mailbox.uid_next as u32),
        Code::PermanentFlags {
            flags: if read_only { Vec::new() } else { system_flags },
            new_keywords: !read_only,
        },
        Code::HighestModSeq(mailbox.highest_modseq as u64),
    ];
    for code in codes {
        session.write_status(StatusResponse::ok(None, "Ok").with_code(code));
    }
    let (code, command) = if read_only {
        (Code::ReadOnly, "EXAMINE")
    } else {
        (Code::ReadWrite, "SELECT")
    };
    session.write_status(
        StatusResponse::ok(Some(tag), format!("{command} completed")).with_code(code),
    );
    State::Selected(login, selected)
}

/// `LIST reference pattern`: the mailboxes whose names match, with special-use and
/// child attributes (RFC 6154, RFC 5258).
pub(crate) async fn list(
    session: &mut Session,
    tag: String,
    account_id: i64,
    reference: &str,
    patterns: &[String],
) {
    if patterns.iter().all(String::is_empty) {
        // RFC 9051 section 6.3.9: an empty pattern asks for the delimiter.
        session.write_data(&Data::List(ListItem {
            attributes: vec![ListAttribute::NoSelect],
            delimiter: Some(HIERARCHY_DELIMITER),
            mailbox: MailboxName::new(""),
            extended: Vec::new(),
        }));
        session.write_status(StatusResponse::ok(Some(tag), "LIST completed"));
        return;
    }
    let mailboxes = match session.store().mailboxes(account_id).await {
        Ok(mailboxes) => mailboxes,
        Err(error) => return unavailable(session, tag, &error),
    };
    for mailbox in &mailboxes {
        let matched = patterns
            .iter()
            .any(|pattern| matches(&format!("{reference}{pattern}"), &mailbox.name));
        if !matched {
            continue;
        }
        let prefix = format!("{}{}", mailbox.name, HIERARCHY_DELIMITER);
        let has_children = mailboxes.iter().any(|m| m.name.starts_with(&prefix));
        let mut attributes = vec![if has_children {
            ListAttribute::HasChildren
        } else {
            ListAttribute::HasNoChildren
        }];
        if let Some(special_use) = &mailbox.special_use {
            attributes.push(ListAttribute::SpecialUse(SpecialUse::from_name(
                special_use.trim_start_matches('\\'),
            )));
        }
        session.write_data(&Data::List(ListItem {
            attributes,
            delimiter: Some(HIERARCHY_DELIMITER),
            mailbox: MailboxName::new(mailbox.name.clone()),
            extended: Vec::new(),
        }));
    }
    session.write_status(StatusResponse::ok(Some(tag), "LIST completed"));
}

/// LIST wildcard matching: `*` matches anything, `%` anything but the delimiter.
/// INBOX matches case-insensitively.
fn matches(pattern: &str, name: &str) -> bool {
    fn go(pattern: &[char], name: &[char]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some(('*', rest)) => (0..=name.len()).any(|i| go(rest, &name[i..])),
            Some(('%', rest)) => (0..=name.len())
                .take_while(|&i| i == 0 || name[i - 1] != HIERARCHY_DELIMITER)
                .any(|i| go(rest, &name[i..])),
            Some((c, rest)) => name.first() == Some(c) && go(rest, &name[1..]),
        }
    }
    let (pattern, name) = if name.eq_ignore_ascii_case("INBOX") {
        (pattern.to_owned(), "INBOX".to_owned())
    } else {
        (pattern.to_owned(), name.to_owned())
    };
    let pattern = if pattern.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_owned()
    } else {
        pattern
    };
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    go(&pattern, &name)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn list_wildcards_follow_rfc_9051_section_6_3_9() {
        assert!(matches("*", "Archive/2024"));
        assert!(!matches("%", "Archive/2024"));
        assert!(matches("Archive/%", "Archive/2024"));
        assert!(matches("inbox", "INBOX"));
        assert!(!matches("Sent", "Sent/Old"));
    }
}
