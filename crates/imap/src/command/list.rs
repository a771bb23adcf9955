//! LIST (RFC 9051 section 6.3.9) with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819)
//! and SPECIAL-USE (RFC 6154), and IMAP4rev1's LSUB.
//!
//! ```text
//! C: A01 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (CHILDREN STATUS (MESSAGES))
//! S: * LIST (\Subscribed \HasNoChildren) "/" INBOX
//! S: * STATUS INBOX (MESSAGES 17)
//! S: * LIST (\HasChildren) "/" Archive (("CHILDINFO" ("SUBSCRIBED")))
//! S: A01 OK LIST completed
//! ```
//!
//! A name that only exists as the parent of others (`a` when only `a/b` exists) is
//! listed as `\Noselect` (`\NonExistent` in an extended LIST) when a `%` stops at it.
//! There are no remote mailboxes, so REMOTE changes nothing.

use std::collections::BTreeMap;

use postcell_imap_proto::command::{ListCommand, StatusItem};
use postcell_imap_proto::response::{
    Data, ListAttribute, ListExtendedItem, ListItem, StatusResponse,
};
use postcell_imap_proto::{MailboxName, SpecialUse};
use postcell_store::{HIERARCHY_DELIMITER, Mailbox};

use crate::command::mailbox::status_values;
use crate::reply::unavailable;
use crate::session::Session;

/// One name of the hierarchy: a mailbox, or a level that only its children make.
struct Entry {
    mailbox: Option<Mailbox>,
    has_children: bool,
    /// Some descendant is subscribed / has a special use (for RECURSIVEMATCH).
    subscribed_child: bool,
    special_use_child: bool,
}

impl Entry {
    fn subscribed(&self) -> bool {
        self.mailbox.as_ref().is_some_and(|m| m.subscribed)
    }

    fn special_use(&self) -> Option<&str> {
        self.mailbox.as_ref().and_then(|m| m.special_use.as_deref())
    }
}

/// Every name of the account's hierarchy, mailboxes and the levels above them, sorted
/// (INBOX first).
fn hierarchy(mailboxes: Vec<Mailbox>) -> Vec<(String, Entry)> {
    let mut names: BTreeMap<String, Entry> = BTreeMap::new();
    for mailbox in mailboxes {
        let mut end = 0;
        while let Some(at) = mailbox.name[end..].find(HIERARCHY_DELIMITER) {
            end += at;
            let parent = names
                .entry(mailbox.name[..end].to_owned())
                .or_insert(Entry {
                    mailbox: None,
                    has_children: false,
                    subscribed_child: false,
                    special_use_child: false,
                });
            parent.has_children = true;
            parent.subscribed_child |= mailbox.subscribed;
            parent.special_use_child |= mailbox.special_use.is_some();
            end += HIERARCHY_DELIMITER.len_utf8();
        }
        let name = mailbox.name.clone();
        names
            .entry(name)
            .and_modify(|entry| entry.mailbox = Some(mailbox.clone()))
            .or_insert(Entry {
                mailbox: Some(mailbox),
                has_children: false,
                subscribed_child: false,
                special_use_child: false,
            });
    }
    let mut sorted: Vec<(String, Entry)> = names.into_iter().collect();
    sorted.sort_by_key(|(name, _)| name != "INBOX");
    sorted
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
    let inbox_prefix = |text: &str| {
        text.get(..5)
            .filter(|head| head.eq_ignore_ascii_case("INBOX"))
            .map(|_| format!("INBOX{}", &text[5..]))
    };
    // "inbox" and "inbox/..." name INBOX and its children whatever the case.
    let pattern = inbox_prefix(pattern).unwrap_or_else(|| pattern.to_owned());
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    go(&pattern, &name)
}

/// The special-use attribute of a stored `\Sent`.
fn special_use_attribute(stored: &str) -> ListAttribute {
    ListAttribute::SpecialUse(SpecialUse::from_name(stored.trim_start_matches('\\')))
}

pub(crate) async fn list(
    session: &mut Session,
    tag: String,
    account_id: i64,
    command: &ListCommand,
) {
    if !command.extended && command.patterns.iter().all(String::is_empty) {
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
    let status_items: Option<&[StatusItem]> = command.returns.status.as_deref();
    if status_items.is_some_and(|items| items.contains(&StatusItem::HighestModSeq)) {
        session.enabled.condstore = true;
    }
    let store = session.store().clone();
    let mailboxes = match store.mailboxes(account_id).await {
        Ok(mailboxes) => mailboxes,
        Err(error) => return unavailable(session, tag, &error),
    };
    let selection = command.selection;
    let show_subscribed = selection.subscribed || command.returns.subscribed;
    let patterns: Vec<String> = command
        .patterns
        .iter()
        .map(|pattern| format!("{}{pattern}", command.reference))
        .collect();
    for (name, entry) in hierarchy(mailboxes) {
        if !patterns.iter().any(|pattern| matches(pattern, &name)) {
            continue;
        }
        let meets = (!selection.subscribed || entry.subscribed())
            && (!selection.special_use || entry.special_use().is_some());
        let mut extended = Vec::new();
        if !meets {
            // RFC 5258 section 3.5: a name whose children meet the selection.
            let mut child_info = Vec::new();
            if selection.recursive_match {
                if selection.subscribed && entry.subscribed_child {
                    child_info.push("SUBSCRIBED".to_owned());
                }
                if selection.special_use && entry.special_use_child {
                    child_info.push("SPECIAL-USE".to_owned());
                }
            }
            if child_info.is_empty() {
                continue;
            }
            extended.push(ListExtendedItem::ChildInfo(child_info));
        }
        let mut attributes = Vec::new();
        if entry.mailbox.is_none() {
            attributes.push(if command.extended {
                ListAttribute::NonExistent
            } else {
                ListAttribute::NoSelect
            });
        }
        if show_subscribed && entry.subscribed() {
            attributes.push(ListAttribute::Subscribed);
        }
        attributes.push(if entry.has_children {
            ListAttribute::HasChildren
        } else {
            ListAttribute::HasNoChildren
        });
        if let Some(special_use) = entry.special_use() {
            attributes.push(special_use_attribute(special_use));
        }
        let mailbox_name = MailboxName::new(name.clone());
        session.write_data(&Data::List(ListItem {
            attributes,
            delimiter: Some(HIERARCHY_DELIMITER),
            mailbox: mailbox_name.clone(),
            extended,
        }));
        // RFC 5819: STATUS right after the LIST of each selectable mailbox.
        if let (Some(items), Some(mailbox)) = (status_items, &entry.mailbox) {
            match status_values(&store, mailbox, items).await {
                Ok(values) => session.write_data(&Data::Status {
                    mailbox: mailbox_name,
                    items: values,
                }),
                Err(error) => return unavailable(session, tag, &error),
            }
        }
    }
    session.write_status(StatusResponse::ok(Some(tag), "LIST completed"));
}

/// IMAP4rev1's LSUB: the subscribed names that match. A `%` that stops above a
/// subscribed name lists that level as `\Noselect` (RFC 3501 section 6.3.9).
pub(crate) async fn lsub(
    session: &mut Session,
    tag: String,
    account_id: i64,
    reference: &str,
    pattern: &str,
) {
    let store = session.store().clone();
    let mailboxes = match store.mailboxes(account_id).await {
        Ok(mailboxes) => mailboxes,
        Err(error) => return unavailable(session, tag, &error),
    };
    let pattern = format!("{reference}{pattern}");
    for (name, entry) in hierarchy(mailboxes) {
        if !matches(&pattern, &name) {
            continue;
        }
        let attributes = if entry.subscribed() {
            Vec::new()
        } else if entry.subscribed_child && pattern.ends_with('%') {
            vec![ListAttribute::NoSelect]
        } else {
            continue;
        };
        session.write_data(&Data::Lsub(ListItem {
            attributes,
            delimiter: Some(HIERARCHY_DELIMITER),
            mailbox: MailboxName::new(name),
            extended: Vec::new(),
        }));
    }
    session.write_status(StatusResponse::ok(Some(tag), "LSUB completed"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: &str, subscribed: bool, special_use: Option<&str>) -> Mailbox {
        Mailbox {
            id: 0,
            account_id: 0,
            name: name.into(),
            special_use: special_use.map(str::to_owned),
            subscribed,
            uid_validity: 1,
            uid_next: 1,
            highest_modseq: 1,
        }
    }

    #[test]
    fn list_wildcards_follow_rfc_9051_section_6_3_9() {
        assert!(matches("*", "Archive/2024"));
        assert!(!matches("%", "Archive/2024"));
        assert!(matches("Archive/%", "Archive/2024"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("inbox/%", "INBOX/Sub"));
        assert!(!matches("Sent", "Sent/Old"));
        assert!(matches("%/2024", "Archive/2024"));
        assert!(matches("送信*", "送信済み"));
    }

    #[test]
    fn the_hierarchy_has_implied_parents_and_child_information() {
        let names = hierarchy(vec![
            mailbox("Work/2026/Q1", true, None),
            mailbox("INBOX", false, None),
            mailbox("Archive", false, Some("\\Archive")),
        ]);
        let listed: Vec<(&str, bool, bool, bool)> = names
            .iter()
            .map(|(name, entry)| {
                (
                    name.as_str(),
                    entry.mailbox.is_some(),
                    entry.has_children,
                    entry.subscribed_child,
                )
            })
            .collect();
        assert_eq!(
            listed,
            vec![
                ("INBOX", true, false, false),
                ("Archive", true, false, false),
                ("Work", false, true, true),
                ("Work/2026", false, true, true),
                ("Work/2026/Q1", true, false, false),
            ]
        );
    }
}
