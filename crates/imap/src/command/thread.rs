//! THREAD and UID THREAD (RFC 5256 section 4): ORDEREDSUBJECT and REFERENCES.
//!
//! ```text
//! C: A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000
//! S: * THREAD (166)(167)(168)(169)(172)(170)(171)(173)(174 (175)(176)(178)(181)(180))
//! C: A284 UID THREAD REFERENCES US-ASCII ALL
//! S: * THREAD (2)(3 6 (4 23)(44 7 96))((3)(5))
//! ```
//!
//! The fields come from the cached summaries (subject, date, Message-ID, In-Reply-To)
//! and the References field kept by the search index. Both algorithms work on an arena
//! and never recurse, so a mailbox whose References form one long chain cannot exhaust
//! the stack.

use std::collections::HashMap;

use postcell_imap_proto::command::{ThreadAlgorithm, ThreadCommand};
use postcell_imap_proto::response::{Data, StatusResponse, ThreadNode};
use postcell_store::{Store, StoreError, UidRanges};

use crate::command::search::{bad_charset, charset_supported, ensure_indexed, matching};
use crate::command::sort::{MessageFields, message_fields};
use crate::reply::unavailable;
use crate::selected::SelectedMailbox;
use crate::session::Session;

pub(crate) async fn thread(
    session: &mut Session,
    tag: String,
    selected: &mut SelectedMailbox,
    command: ThreadCommand,
) {
    if let ThreadAlgorithm::Other(name) = &command.algorithm {
        session.write_status(StatusResponse::bad(
            Some(tag),
            format!("Unknown threading algorithm {name}; use ORDEREDSUBJECT or REFERENCES"),
        ));
        return;
    }
    if !charset_supported(&command.charset) {
        return bad_charset(session, tag);
    }
    let store = session.store().clone();
    let messages = match thread_messages(&store, selected, &command).await {
        Ok(messages) => messages,
        Err(error) => return unavailable(session, tag, &error),
    };
    metrics::counter!("postcell_imap_search_total", "command" => "thread").increment(1);
    let threads = match command.algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(&messages),
        _ => references(&messages),
    };
    session.write_data(&Data::Thread(threads));
    session.write_status(StatusResponse::ok(Some(tag), "THREAD completed"));
}

/// One message as the threading algorithms see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ThreadMessage {
    /// What the response shows: the message number or the UID.
    pub number: u32,
    /// The sent date (RFC 5256 section 2.2).
    pub sent: i64,
    /// The base subject, as compared (i;ascii-casemap).
    pub subject: Vec<u8>,
    pub is_reply: bool,
    pub message_id: Option<String>,
    /// The References field's ids, or else the first id of In-Reply-To.
    pub references: Vec<String>,
}

async fn thread_messages(
    store: &Store,
    selected: &mut SelectedMailbox,
    command: &ThreadCommand,
) -> Result<Vec<ThreadMessage>, StoreError> {
    let found = matching(store, selected, &command.search).await?;
    let fields = message_fields(store, selected, &found).await?;
    let mut references: HashMap<i64, String> = HashMap::new();
    if command.algorithm == ThreadAlgorithm::References {
        // The References field is kept by the search index.
        ensure_indexed(store, selected).await?;
        for chunk in fields.chunks(500) {
            let uids: Vec<i64> = chunk.iter().map(|f| f.uid).collect();
            references.extend(
                store
                    .message_references(selected.mailbox_id, &UidRanges::from_uids(&uids))
                    .await?,
            );
        }
    }
    let numbers = selected.numbers(&found, command.uid);
    Ok(fields
        .into_iter()
        .zip(numbers)
        .map(|(fields, number)| {
            let refs = references.get(&fields.uid).map(String::as_str);
            thread_message(fields, number, refs)
        })
        .collect())
}

fn thread_message(fields: MessageFields, number: u32, references: Option<&str>) -> ThreadMessage {
    let mut ids: Vec<String> = references
        .map(|text| message_ids(text.as_bytes()).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        ids.extend(
            fields
                .in_reply_to
                .as_deref()
                .and_then(|text| message_ids(text).next()),
        );
    }
    ThreadMessage {
        number,
        sent: fields.sent,
        subject: fields.sort_subject,
        is_reply: fields.is_reply,
        message_id: fields.message_id,
        references: ids,
    }
}

/// The message ids in a field (`<a@b> <c@d>`): each `<...>` without blanks, brackets
/// included.
pub(crate) fn message_ids(text: &[u8]) -> impl Iterator<Item = String> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            let open = rest.iter().position(|&b| b == b'<')?;
            let after = &rest[open + 1..];
            let Some(close) = after.iter().position(|&b| matches!(b, b'>' | b'<')) else {
                rest = &[];
                return None;
            };
            let id = &after[..close];
            let closed = after[close] == b'>';
            rest = &after[close + usize::from(closed)..];
            if closed && !id.is_empty() && !id.iter().any(|b| b.is_ascii_whitespace()) {
                return Some(format!("<{}>", String::from_utf8_lossy(id)));
            }
        }
    })
}

/// ORDEREDSUBJECT: messages grouped by base subject, each group one thread whose first
/// message (by sent date) is the parent of the others; threads in the order of their
/// first message's sent date.
pub(crate) fn ordered_subject(messages: &[ThreadMessage]) -> Vec<ThreadNode> {
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_by(|&a, &b| {
        let (a_msg, b_msg) = (&messages[a], &messages[b]);
        (&a_msg.subject, a_msg.sent, a).cmp(&(&b_msg.subject, b_msg.sent, b))
    });
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for index in order {
        match groups.last_mut() {
            Some(group) if messages[group[0]].subject == messages[index].subject => {
                group.push(index)
            }
            _ => groups.push(vec![index]),
        }
    }
    groups.sort_by_key(|group| (messages[group[0]].sent, group[0]));
    groups
        .into_iter()
        .map(|group| {
            let children = group[1..]
                .iter()
                .map(|&i| ThreadNode::message(messages[i].number, Vec::new()))
                .collect();
            ThreadNode::message(messages[group[0]].number, children)
        })
        .collect()
}

/// A node of the REFERENCES arena: a message, or a dummy for an id only referred to.
#[derive(Debug, Default)]
struct Container {
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Arena<'a> {
    messages: &'a [ThreadMessage],
    containers: Vec<Container>,
}

impl Arena<'_> {
    fn add(&mut self, message: Option<usize>) -> usize {
        self.containers.push(Container {
            message,
            ..Container::default()
        });
        self.containers.len() - 1
    }

    /// Whether making `parent` the parent of `child` would close a loop: `child` is
    /// `parent` or one of its ancestors.
    fn would_loop(&self, parent: usize, child: usize) -> bool {
        if self.containers[child].children.is_empty() {
            return parent == child;
        }
        let mut at = Some(parent);
        while let Some(node) = at {
            if node == child {
                return true;
            }
            at = self.containers[node].parent;
        }
        false
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.containers[child].parent = Some(parent);
        self.containers[parent].children.push(child);
    }

    fn unlink(&mut self, child: usize) {
        if let Some(parent) = self.containers[child].parent.take() {
            self.containers[parent].children.retain(|&c| c != child);
        }
    }

    /// The message a container stands for in comparisons: its own, or a dummy's first
    /// child's (children sorted first).
    fn representative(&self, container: usize) -> Option<usize> {
        match self.containers[container].message {
            Some(message) => Some(message),
            None => self.containers[container]
                .children
                .first()
                .and_then(|&c| self.containers[c].message),
        }
    }

    /// RFC 5256: by sent date, then by message order.
    fn date_key(&self, container: usize) -> (i64, usize) {
        self.representative(container)
            .map_or((i64::MAX, usize::MAX), |m| (self.messages[m].sent, m))
    }

    fn sort_by_date(&self, list: &mut [usize]) {
        list.sort_by_key(|&c| self.date_key(c));
    }

    /// The containers under `roots`, parents before children.
    fn preorder(&self, roots: &[usize]) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.containers.len());
        let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
        while let Some(node) = stack.pop() {
            order.push(node);
            stack.extend(self.containers[node].children.iter().rev());
        }
        order
    }
}

/// REFERENCES (RFC 5256 section 4, steps 1 to 6).
pub(crate) fn references(messages: &[ThreadMessage]) -> Vec<ThreadNode> {
    let mut arena = Arena {
        messages,
        containers: Vec::with_capacity(messages.len() * 2),
    };
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    // (1) Link messages to what they refer to.
    for (index, message) in messages.iter().enumerate() {
        // (A) A message id used by an earlier message counts as no id.
        let own = match message.message_id.as_deref() {
            Some(id) => match by_id.get(id).copied() {
                Some(c) if arena.containers[c].message.is_none() => {
                    arena.containers[c].message = Some(index);
                    c
                }
                Some(_) => arena.add(Some(index)),
                None => {
                    let c = arena.add(Some(index));
                    by_id.insert(id, c);
                    c
                }
            },
            None => arena.add(Some(index)),
        };
        // (B) The references, in order, each the parent of the next, unless that
        // would change an existing link or close a loop.
        let mut chain = Vec::with_capacity(message.references.len());
        for id in &message.references {
            let c = match by_id.get(id.as_str()).copied() {
                Some(c) => c,
                None => {
                    let c = arena.add(None);
                    by_id.insert(id, c);
                    c
                }
            };
            chain.push(c);
        }
        for pair in chain.windows(2) {
            let (parent, child) = (pair[0], pair[1]);
            if arena.containers[child].parent.is_none() && !arena.would_loop(parent, child) {
                arena.link(parent, child);
            }
        }
        // (C) The last reference is the message's parent, whatever it was before.
        match chain.last() {
            Some(&parent) if !arena.would_loop(parent, own) => {
                if arena.containers[own].parent != Some(parent) {
                    arena.unlink(own);
                    arena.link(parent, own);
                }
            }
            Some(_) => {}
            None => arena.unlink(own),
        }
    }
    // (2) The root set.
    let roots: Vec<usize> = (0..arena.containers.len())
        .filter(|&c| arena.containers[c].parent.is_none())
        .collect();
    // (3) Prune dummies, children before parents.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Fate {
        Keep,
        Drop,
        Promote,
    }
    let mut fate = vec![Fate::Keep; arena.containers.len()];
    for &node in arena.preorder(&roots).iter().rev() {
        let mut kept = Vec::new();
        for &child in &arena.containers[node].children {
            match fate[child] {
                Fate::Keep => kept.push(child),
                Fate::Drop => {}
                Fate::Promote => kept.extend_from_slice(&arena.containers[child].children),
            }
        }
        for &child in &kept {
            arena.containers[child].parent = Some(node);
        }
        arena.containers[node].children = kept;
        if arena.containers[node].message.is_none() {
            fate[node] = if arena.containers[node].children.is_empty() {
                Fate::Drop
            } else {
                Fate::Promote
            };
        }
    }
    let mut top: Vec<usize> = Vec::new();
    for &root in &roots {
        match fate[root] {
            Fate::Drop => {}
            // A dummy at the top goes only if it has a single child.
            Fate::Promote if arena.containers[root].children.len() == 1 => {
                let child = arena.containers[root].children[0];
                arena.containers[child].parent = None;
                top.push(child);
            }
            Fate::Promote | Fate::Keep => top.push(root),
        }
    }
    // (4) Sort the top level by date (a dummy by its earliest child).
    for &node in &top {
        if arena.containers[node].message.is_none() {
            let mut children = std::mem::take(&mut arena.containers[node].children);
            arena.sort_by_date(&mut children);
            arena.containers[node].children = children;
        }
    }
    arena.sort_by_date(&mut top);
    // (5) Gather threads with the same base subject.
    let subject_of = |arena: &Arena<'_>, c: usize| {
        arena
            .representative(c)
            .map(|m| (&messages[m].subject, messages[m].is_reply))
    };
    let mut table: HashMap<&Vec<u8>, usize> = HashMap::new();
    for &node in &top {
        let Some((subject, _)) = subject_of(&arena, node).filter(|(s, _)| !s.is_empty()) else {
            continue;
        };
        match table.get(subject).copied() {
            None => {
                table.insert(subject, node);
            }
            Some(held) => {
                let held_dummy = arena.containers[held].message.is_none();
                let node_dummy = arena.containers[node].message.is_none();
                let held_reply = subject_of(&arena, held).is_some_and(|(_, r)| r);
                let node_reply = subject_of(&arena, node).is_some_and(|(_, r)| r);
                if !held_dummy && (node_dummy || (held_reply && !node_reply)) {
                    table.insert(subject, node);
                }
            }
        }
    }
    let mut gone = vec![false; arena.containers.len()];
    let mut replaced: HashMap<usize, usize> = HashMap::new();
    for &node in &top {
        let Some((subject, node_reply)) = subject_of(&arena, node).filter(|(s, _)| !s.is_empty())
        else {
            continue;
        };
        let Some(&held) = table.get(subject) else {
            continue;
        };
        if held == node {
            continue;
        }
        let held_dummy = arena.containers[held].message.is_none();
        let node_dummy = arena.containers[node].message.is_none();
        let held_reply = subject_of(&arena, held).is_some_and(|(_, r)| r);
        if held_dummy && node_dummy {
            let children = std::mem::take(&mut arena.containers[node].children);
            for &child in &children {
                arena.containers[child].parent = Some(held);
            }
            arena.containers[held].children.extend(children);
        } else if held_dummy || (node_reply && !held_reply) {
            arena.link(held, node);
        } else {
            let dummy = arena.add(None);
            gone.push(false);
            arena.link(dummy, held);
            arena.link(dummy, node);
            replaced.insert(held, dummy);
            table.insert(subject, dummy);
        }
        gone[node] = true;
    }
    let mut top: Vec<usize> = top
        .into_iter()
        .filter(|&c| !gone[c])
        .map(|c| replaced.get(&c).copied().unwrap_or(c))
        .collect();
    // (6) Sort every set of siblings by date, children before parents.
    for &node in arena.preorder(&top).iter().rev() {
        let mut children = std::mem::take(&mut arena.containers[node].children);
        arena.sort_by_date(&mut children);
        arena.containers[node].children = children;
    }
    arena.sort_by_date(&mut top);
    build(&arena, &top)
}

/// The response's nested nodes, built bottom-up without recursion.
fn build(arena: &Arena<'_>, top: &[usize]) -> Vec<ThreadNode> {
    let mut built: Vec<Option<ThreadNode>> = Vec::new();
    built.resize_with(arena.containers.len(), || None);
    for &node in arena.preorder(top).iter().rev() {
        let children = arena.containers[node]
            .children
            .iter()
            .filter_map(|&c| built[c].take())
            .collect();
        built[node] = Some(ThreadNode {
            number: arena.containers[node]
                .message
                .map(|m| arena.messages[m].number),
            children,
        });
    }
    top.iter().filter_map(|&c| built[c].take()).collect()
}

#[cfg(test)]
mod tests {
    use postcell_imap_proto::Utf8Mode;

    use super::*;

    fn message(number: u32, sent: i64, subject: &str, id: &str, refs: &[&str]) -> ThreadMessage {
        let (base, is_reply) = crate::command::sort::base_subject(subject);
        ThreadMessage {
            number,
            sent,
            subject: base.to_ascii_uppercase().into_bytes(),
            is_reply,
            message_id: (!id.is_empty()).then(|| format!("<{id}>")),
            references: refs.iter().map(|r| format!("<{r}>")).collect(),
        }
    }

    fn wire(threads: Vec<ThreadNode>) -> String {
        let bytes = Data::Thread(threads).to_bytes(Utf8Mode::Off);
        String::from_utf8(bytes).unwrap().trim_end().to_owned()
    }

    #[test]
    fn message_ids_are_read_from_fields() {
        let ids: Vec<String> = message_ids(b" <a@x>\t<b@y> junk <c d> <> <e@z").collect();
        assert_eq!(ids, vec!["<a@x>", "<b@y>"]);
        let ids: Vec<String> = message_ids(b"<<f@x>").collect();
        assert_eq!(ids, vec!["<f@x>"]);
    }

    #[test]
    fn ordered_subject_groups_by_base_subject_then_date() {
        let messages = vec![
            message(1, 100, "Lunch", "1@x", &[]),
            message(2, 50, "Budget", "2@x", &[]),
            message(3, 300, "Re: Lunch", "3@x", &[]),
            message(4, 200, "re: lunch", "4@x", &[]),
            message(5, 60, "Hello", "5@x", &[]),
        ];
        assert_eq!(
            wire(ordered_subject(&messages)),
            "* THREAD (2)(5)(1 (4)(3))"
        );
        let pair = vec![
            message(1, 1, "x", "1@x", &[]),
            message(2, 2, "Re: x", "2@x", &[]),
        ];
        assert_eq!(wire(ordered_subject(&pair)), "* THREAD (1 2)");
    }

    #[test]
    fn references_builds_chains_branches_and_dummies() {
        let messages = vec![
            message(1, 10, "Plan", "a@x", &[]),
            message(2, 20, "Re: Plan", "b@x", &["a@x"]),
            message(3, 30, "Re: Plan", "c@x", &["a@x", "b@x"]),
            message(4, 40, "Re: Plan", "d@x", &["a@x"]),
            // Two replies to a message that is not in the mailbox.
            message(5, 50, "Other", "e@x", &["missing@x"]),
            message(6, 60, "Re: Other", "f@x", &["missing@x"]),
            // A reply whose parent arrives later (out of order).
            message(7, 15, "Solo", "g@x", &["h@x"]),
            message(8, 5, "Solo", "h@x", &[]),
        ];
        assert_eq!(
            wire(references(&messages)),
            "* THREAD (8 7)(1 (2 3)(4))((5)(6))"
        );
    }

    #[test]
    fn references_gathers_by_subject_and_survives_loops_and_duplicates() {
        let messages = vec![
            // No references, same base subject: the reply joins the original.
            message(1, 10, "Report", "a@x", &[]),
            message(2, 20, "Re: Report", "b@x", &[]),
            // Two originals with one subject get a dummy parent.
            message(3, 30, "Status", "c@x", &[]),
            message(4, 40, "Status", "d@x", &[]),
            // A loop: each refers to the other; the later link is the one refused.
            message(5, 50, "Loop", "e@x", &["f@x"]),
            message(6, 60, "Loop2", "f@x", &["e@x"]),
            // A duplicate message id, and a message that refers to itself.
            message(7, 70, "Dup", "g@x", &[]),
            message(8, 80, "Dup copy", "g@x", &["g@x"]),
            message(9, 90, "Self", "i@x", &["i@x"]),
        ];
        let wire = wire(references(&messages));
        assert_eq!(wire, "* THREAD (1 2)((3)(4))(6 5)(7 8)(9)", "{wire}");
    }

    #[test]
    fn every_message_appears_exactly_once_whatever_the_references() {
        // A deterministic scramble of references, ids and subjects, long chains included.
        let mut state = 0x2545_f491_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for round in 0..50 {
            let count = 1 + next(60) as u32;
            let messages: Vec<ThreadMessage> = (1..=count)
                .map(|n| {
                    let refs: Vec<String> =
                        (0..next(5)).map(|_| format!("<{}@x>", next(80))).collect();
                    ThreadMessage {
                        number: n,
                        sent: next(20) as i64,
                        subject: format!("S{}", next(6)).into_bytes(),
                        is_reply: next(2) == 0,
                        message_id: (next(10) != 0).then(|| format!("<{}@x>", next(80))),
                        references: refs,
                    }
                })
                .collect();
            for threads in [references(&messages), ordered_subject(&messages)] {
                let mut seen = Vec::new();
                let mut stack: Vec<&ThreadNode> = threads.iter().collect();
                while let Some(node) = stack.pop() {
                    seen.extend(node.number);
                    stack.extend(node.children.iter());
                }
                seen.sort_unstable();
                assert_eq!(seen, (1..=count).collect::<Vec<_>>(), "round {round}");
            }
        }
        // One chain 50,000 messages long.
        let chain: Vec<ThreadMessage> = (1..=50_000u32)
            .map(|n| ThreadMessage {
                number: n,
                sent: i64::from(n),
                subject: b"CHAIN".to_vec(),
                is_reply: n > 1,
                message_id: Some(format!("<{n}@x>")),
                references: if n > 1 {
                    vec![format!("<{}@x>", n - 1)]
                } else {
                    vec![]
                },
            })
            .collect();
        let threads = references(&chain);
        assert_eq!(threads.len(), 1);
        assert!(wire(threads).starts_with("* THREAD (1 2 3 4 5 "));
    }
}
