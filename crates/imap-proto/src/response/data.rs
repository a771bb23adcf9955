//! Untagged data responses.
//!
//! ```text
//! S: * CAPABILITY IMAP4rev2 STARTTLS AUTH=PLAIN
//! S: * ENABLED CONDSTORE
//! S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
//! S: * 172 EXISTS
//! S: * 44 EXPUNGE
//! S: * VANISHED (EARLIER) 300:310,405,411
//! S: * LIST (\HasNoChildren \Drafts) "/" Drafts ("OLDNAME" ("Entw&APw-rfe"))
//! S: * STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)
//! S: * ESEARCH (TAG "A285") UID MIN 7 MAX 3800
//! S: * SEARCH 2 84 882
//! S: * SORT 2 84 882
//! S: * THREAD (2)(3 6 (4 23)(44 7 96))
//! S: * NAMESPACE (("" "/")) NIL NIL
//! S: * ID ("name" "Postcell")
//! S: * QUOTA "" (STORAGE 10 512)
//! S: * QUOTAROOT INBOX ""
//! ```

use super::fetch::FetchItem;
use super::{
    write_adjacent_or_nil, write_atom, write_list, write_mailbox, write_nstring, write_string,
};
use crate::flag::Flag;
use crate::limits::Utf8Mode;
use crate::mailbox::{MailboxName, SpecialUse, encode_name};
use crate::sequence::SequenceSet;

/// An untagged data response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Capability(Vec<String>),
    /// RFC 5161.
    Enabled(Vec<String>),
    Flags(Vec<Flag>),
    Exists(u32),
    /// IMAP4rev1.
    Recent(u32),
    Expunge(u32),
    /// RFC 7162: `* VANISHED [(EARLIER)] uids`.
    Vanished {
        earlier: bool,
        uids: SequenceSet,
    },
    List(ListItem),
    /// IMAP4rev1.
    Lsub(ListItem),
    Status {
        mailbox: MailboxName,
        items: Vec<StatusValue>,
    },
    ESearch(ESearchResponse),
    /// `* SEARCH 2 84 882`, with `(MODSEQ n)` after a CONDSTORE search (RFC 7162).
    Search {
        numbers: Vec<u32>,
        mod_sequence: Option<u64>,
    },
    /// RFC 5256: `* SORT 5 3 4`, in the sorted order, with `(MODSEQ n)` after a
    /// CONDSTORE search (RFC 7162).
    Sort {
        numbers: Vec<u32>,
        mod_sequence: Option<u64>,
    },
    /// RFC 5256: `* THREAD (2)(3 6 (4 23)(44 7 96))`, one list per thread.
    Thread(Vec<ThreadNode>),
    Fetch {
        seq: u32,
        items: Vec<FetchItem>,
    },
    /// RFC 2342: personal, other users' and shared namespaces (each `NIL` when empty).
    Namespace {
        personal: Vec<NamespaceDescription>,
        other_users: Vec<NamespaceDescription>,
        shared: Vec<NamespaceDescription>,
    },
    /// RFC 2971: the server's identification, or `NIL`.
    Id(Option<Vec<(String, Option<String>)>>),
    /// RFC 9208.
    Quota {
        root: String,
        resources: Vec<QuotaResource>,
    },
    /// RFC 9208.
    QuotaRoot {
        mailbox: MailboxName,
        roots: Vec<String>,
    },
}

/// `mbx-list-flags`: a mailbox attribute in LIST.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListAttribute {
    NoInferiors,
    NoSelect,
    Marked,
    Unmarked,
    HasChildren,
    HasNoChildren,
    NonExistent,
    Subscribed,
    Remote,
    SpecialUse(SpecialUse),
    /// Another `\atom`, without the backslash.
    Other(String),
}

impl ListAttribute {
    fn encode(&self, out: &mut Vec<u8>) {
        let name = match self {
            ListAttribute::NoInferiors => "\\Noinferiors",
            ListAttribute::NoSelect => "\\Noselect",
            ListAttribute::Marked => "\\Marked",
            ListAttribute::Unmarked => "\\Unmarked",
            ListAttribute::HasChildren => "\\HasChildren",
            ListAttribute::HasNoChildren => "\\HasNoChildren",
            ListAttribute::NonExistent => "\\NonExistent",
            ListAttribute::Subscribed => "\\Subscribed",
            ListAttribute::Remote => "\\Remote",
            ListAttribute::SpecialUse(special_use) => {
                return write_atom(out, &special_use.to_string());
            }
            ListAttribute::Other(name) => return write_atom(out, &format!("\\{name}")),
        };
        out.extend_from_slice(name.as_bytes());
    }
}

/// `mbox-list-extended-item` (RFC 5258, RFC 9051).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListExtendedItem {
    /// `("CHILDINFO" ("SUBSCRIBED"))`: children match the selection although the
    /// mailbox itself does not.
    ChildInfo(Vec<String>),
    /// `("OLDNAME" (name))` after a RENAME.
    OldName(MailboxName),
}

/// One LIST or LSUB line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    pub attributes: Vec<ListAttribute>,
    /// The hierarchy delimiter, `None` for a flat name space (`NIL`).
    pub delimiter: Option<char>,
    pub mailbox: MailboxName,
    pub extended: Vec<ListExtendedItem>,
}

impl ListItem {
    fn encode(&self, out: &mut Vec<u8>, utf8: Utf8Mode) {
        write_list(out, &self.attributes, |out, attribute| {
            attribute.encode(out)
        });
        out.push(b' ');
        write_delimiter(out, self.delimiter);
        out.push(b' ');
        write_mailbox(out, self.mailbox.as_str(), utf8);
        if !self.extended.is_empty() {
            out.push(b' ');
            write_list(out, &self.extended, |out, item| match item {
                ListExtendedItem::ChildInfo(options) => {
                    out.extend_from_slice(b"\"CHILDINFO\" ");
                    write_list(out, options, |out, option| {
                        write_string(out, option.as_bytes(), utf8)
                    });
                }
                ListExtendedItem::OldName(name) => {
                    out.extend_from_slice(b"\"OLDNAME\" (");
                    write_mailbox(out, name.as_str(), utf8);
                    out.push(b')');
                }
            });
        }
    }
}

/// `DQUOTE QUOTED-CHAR DQUOTE / nil`
fn write_delimiter(out: &mut Vec<u8>, delimiter: Option<char>) {
    match delimiter {
        Some(c) if !c.is_control() => {
            out.push(b'"');
            if c == '"' || c == '\\' {
                out.push(b'\\');
            }
            let mut buffer = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            out.push(b'"');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
}

/// `status-att-val`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusValue {
    Messages(u32),
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    Deleted(u32),
    Size(u64),
    Recent(u32),
    HighestModSeq(u64),
}

impl StatusValue {
    fn encode(&self, out: &mut Vec<u8>) {
        let text = match self {
            StatusValue::Messages(n) => format!("MESSAGES {n}"),
            StatusValue::UidNext(n) => format!("UIDNEXT {n}"),
            StatusValue::UidValidity(n) => format!("UIDVALIDITY {n}"),
            StatusValue::Unseen(n) => format!("UNSEEN {n}"),
            StatusValue::Deleted(n) => format!("DELETED {n}"),
            StatusValue::Size(n) => format!("SIZE {n}"),
            StatusValue::Recent(n) => format!("RECENT {n}"),
            StatusValue::HighestModSeq(n) => format!("HIGHESTMODSEQ {n}"),
        };
        out.extend_from_slice(text.as_bytes());
    }
}

/// `esearch-response` (RFC 4731, RFC 9051): only the parts that are `Some` are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ESearchResponse {
    /// The tag of the SEARCH command this answers.
    pub tag: Option<String>,
    pub uid: bool,
    pub min: Option<u32>,
    pub max: Option<u32>,
    /// `None` also when the result is empty: RFC 4731 omits ALL then.
    pub all: Option<SequenceSet>,
    pub count: Option<u32>,
    /// RFC 7162: the highest mod-sequence of the messages found.
    pub mod_sequence: Option<u64>,
}

/// One message of a THREAD response and the messages that answer it. `number` is
/// `None` for a message the thread refers to but the mailbox lacks: its answers are
/// then siblings, as in `((3)(5))`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadNode {
    pub number: Option<u32>,
    pub children: Vec<ThreadNode>,
}

/// Dropped without recursion: a thread built from hostile References fields can be as
/// deep as the mailbox is large.
impl Drop for ThreadNode {
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.children);
        while let Some(mut node) = pending.pop() {
            pending.append(&mut node.children);
        }
    }
}

impl ThreadNode {
    pub fn message(number: u32, children: Vec<ThreadNode>) -> ThreadNode {
        ThreadNode {
            number: Some(number),
            children,
        }
    }

    /// `thread-list = "(" (thread-members / thread-nested) ")"`: a chain of single
    /// answers is one list (`(3 6 9)`), two or more answers are nested lists
    /// (`(3 (6)(9))`). Written without recursion, so a deep thread cannot exhaust the
    /// stack.
    fn encode(&self, out: &mut Vec<u8>) {
        enum Step<'a> {
            Open(&'a ThreadNode),
            Close,
        }
        let mut steps = vec![Step::Open(self)];
        while let Some(step) = steps.pop() {
            let Step::Open(mut node) = step else {
                out.push(b')');
                continue;
            };
            out.push(b'(');
            let mut first = true;
            loop {
                if let Some(number) = node.number {
                    if !first {
                        out.push(b' ');
                    }
                    out.extend_from_slice(number.to_string().as_bytes());
                    first = false;
                }
                match node.children.as_slice() {
                    [] => {
                        out.push(b')');
                        break;
                    }
                    [only] => node = only,
                    children => {
                        if !first {
                            out.push(b' ');
                        }
                        steps.push(Step::Close);
                        steps.extend(children.iter().rev().map(Step::Open));
                        break;
                    }
                }
            }
        }
    }
}

/// `namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDescription {
    pub prefix: String,
    pub delimiter: Option<char>,
}

/// `quota-resource = resource-name SP resource-usage SP resource-limit`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaResource {
    /// `STORAGE` (in units of 1024 octets), `MESSAGE`, ...
    pub name: String,
    pub usage: u64,
    pub limit: u64,
}

impl Data {
    /// `"*" SP response-data CRLF`
    pub fn encode(&self, out: &mut Vec<u8>, utf8: Utf8Mode) {
        out.extend_from_slice(b"* ");
        match self {
            Data::Capability(capabilities) | Data::Enabled(capabilities) => {
                let name: &[u8] = if matches!(self, Data::Capability(_)) {
                    b"CAPABILITY"
                } else {
                    b"ENABLED"
                };
                out.extend_from_slice(name);
                for capability in capabilities {
                    out.push(b' ');
                    write_atom(out, capability);
                }
            }
            Data::Flags(flags) => {
                out.extend_from_slice(b"FLAGS ");
                write_list(out, flags, |out, flag| write_atom(out, &flag.to_string()));
            }
            Data::Exists(n) => out.extend_from_slice(format!("{n} EXISTS").as_bytes()),
            Data::Recent(n) => out.extend_from_slice(format!("{n} RECENT").as_bytes()),
            Data::Expunge(n) => out.extend_from_slice(format!("{n} EXPUNGE").as_bytes()),
            Data::Vanished { earlier, uids } => {
                let earlier = if *earlier { "(EARLIER) " } else { "" };
                out.extend_from_slice(format!("VANISHED {earlier}{uids}").as_bytes());
            }
            Data::List(item) => {
                out.extend_from_slice(b"LIST ");
                item.encode(out, utf8);
            }
            Data::Lsub(item) => {
                out.extend_from_slice(b"LSUB ");
                item.encode(out, utf8);
            }
            Data::Status { mailbox, items } => {
                out.extend_from_slice(b"STATUS ");
                write_mailbox(out, mailbox.as_str(), utf8);
                out.push(b' ');
                write_list(out, items, |out, item| item.encode(out));
            }
            Data::ESearch(esearch) => esearch.encode(out, utf8),
            Data::Search {
                numbers,
                mod_sequence,
            } => {
                out.extend_from_slice(b"SEARCH");
                for n in numbers {
                    out.extend_from_slice(format!(" {n}").as_bytes());
                }
                if let Some(mod_sequence) = mod_sequence {
                    out.extend_from_slice(format!(" (MODSEQ {mod_sequence})").as_bytes());
                }
            }
            Data::Sort {
                numbers,
                mod_sequence,
            } => {
                out.extend_from_slice(b"SORT");
                for n in numbers {
                    out.extend_from_slice(format!(" {n}").as_bytes());
                }
                if let Some(mod_sequence) = mod_sequence {
                    out.extend_from_slice(format!(" (MODSEQ {mod_sequence})").as_bytes());
                }
            }
            Data::Thread(threads) => {
                out.extend_from_slice(b"THREAD");
                if !threads.is_empty() {
                    out.push(b' ');
                }
                for thread in threads {
                    thread.encode(out);
                }
            }
            Data::Fetch { seq, items } => {
                out.extend_from_slice(format!("{seq} FETCH ").as_bytes());
                write_list(out, items, |out, item| item.encode(out, utf8));
            }
            Data::Namespace {
                personal,
                other_users,
                shared,
            } => {
                out.extend_from_slice(b"NAMESPACE");
                for namespaces in [personal, other_users, shared] {
                    out.push(b' ');
                    write_adjacent_or_nil(out, namespaces, |out, namespace| {
                        out.push(b'(');
                        write_string(out, encode_name(&namespace.prefix, utf8).as_bytes(), utf8);
                        out.push(b' ');
                        write_delimiter(out, namespace.delimiter);
                        out.push(b')');
                    });
                }
            }
            Data::Id(parameters) => {
                out.extend_from_slice(b"ID ");
                match parameters {
                    None => out.extend_from_slice(b"NIL"),
                    Some(parameters) => write_list(out, parameters, |out, (field, value)| {
                        write_string(out, field.as_bytes(), utf8);
                        out.push(b' ');
                        write_nstring(out, value.as_deref().map(str::as_bytes), utf8);
                    }),
                }
            }
            Data::Quota { root, resources } => {
                out.extend_from_slice(b"QUOTA ");
                super::write_astring(out, root.as_bytes(), utf8);
                out.push(b' ');
                write_list(out, resources, |out, resource| {
                    write_atom(out, &resource.name);
                    out.extend_from_slice(
                        format!(" {} {}", resource.usage, resource.limit).as_bytes(),
                    );
                });
            }
            Data::QuotaRoot { mailbox, roots } => {
                out.extend_from_slice(b"QUOTAROOT ");
                write_mailbox(out, mailbox.as_str(), utf8);
                for root in roots {
                    out.push(b' ');
                    super::write_astring(out, root.as_bytes(), utf8);
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn to_bytes(&self, utf8: Utf8Mode) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out, utf8);
        out
    }
}

impl ESearchResponse {
    fn encode(&self, out: &mut Vec<u8>, utf8: Utf8Mode) {
        out.extend_from_slice(b"ESEARCH");
        if let Some(tag) = &self.tag {
            out.extend_from_slice(b" (TAG ");
            write_string(out, tag.as_bytes(), utf8);
            out.push(b')');
        }
        if self.uid {
            out.extend_from_slice(b" UID");
        }
        let mut part = |text: String| out.extend_from_slice(text.as_bytes());
        if let Some(min) = self.min {
            part(format!(" MIN {min}"));
        }
        if let Some(max) = self.max {
            part(format!(" MAX {max}"));
        }
        if let Some(all) = &self.all {
            part(format!(" ALL {all}"));
        }
        if let Some(count) = self.count {
            part(format!(" COUNT {count}"));
        }
        if let Some(mod_sequence) = self.mod_sequence {
            part(format!(" MODSEQ {mod_sequence}"));
        }
    }
}
