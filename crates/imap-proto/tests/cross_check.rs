//! Cross-check against imap-codec: on every command of `tests/corpus.txt`, our parser
//! and imap-codec's must read the same command (kind, tag, mailbox names, sequence
//! sets, fetch items, flags, search keys, modifiers, literal data), or both refuse it.
//!
//! Each parse is rendered as a list of "key=value" facts in one vocabulary; the two
//! lists must be equal.

use std::borrow::Cow;
use std::fmt::Display;
use std::num::NonZeroU32;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{
    Command as CodecCommand, CommandBody as C, FetchModifier, SelectParameter, StoreModifier,
};
use imap_codec::imap_types::core::{AString, Charset, IString};
use imap_codec::imap_types::datetime::{DateTime as CodecDateTime, NaiveDate};
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItemName as N, Part, Section as CodecSection,
};
use imap_codec::imap_types::flag::{Flag as CodecFlag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::search::SearchKey as K;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet as CodecSequenceSet};
use imap_codec::imap_types::status::StatusDataItemName;
use postcell_imap_proto::command::{
    FetchAttribute, FetchItems, SearchKey, Section, SectionText, StoreAction, ThreadAlgorithm,
};
use postcell_imap_proto::mailbox::decode_mutf7;
use postcell_imap_proto::{
    Command, CommandBody, Date, DateTime, Flag, Limits, MailboxName, MessageSet, SequenceSet,
    Utf8Mode, parse_command,
};

/// The corpus: (line number, bytes, whether both must accept it).
fn corpus() -> Vec<(usize, Vec<u8>, bool)> {
    let text = include_str!("corpus.txt");
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| {
            let (accept, line) = match line.strip_prefix('!') {
                Some(line) => (false, line),
                None => (true, line),
            };
            let mut bytes = line
                .replace("\\r\\n", "\r\n")
                .replace("\\0", "\0")
                .into_bytes();
            bytes.extend_from_slice(b"\r\n");
            (i + 1, bytes, accept)
        })
        .collect()
}

fn bytes_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ----- our side -----

fn merged(set: &SequenceSet) -> String {
    set.resolve(u32::MAX)
        .iter()
        .map(|r| format!("{}-{}", r.start(), r.end()))
        .collect::<Vec<_>>()
        .join(",")
}

fn our_set(set: &MessageSet) -> String {
    match set {
        MessageSet::Set(set) => merged(set),
        MessageSet::SavedResult => "$".into(),
    }
}

fn our_date(date: &Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

fn our_date_time(dt: &DateTime) -> String {
    let zone = dt.zone_minutes();
    let sign = if zone < 0 { '-' } else { '+' };
    format!(
        "{} {:02}:{:02}:{:02} {sign}{:02}:{:02}",
        our_date(&dt.date()),
        dt.hour(),
        dt.minute(),
        dt.second(),
        zone.unsigned_abs() / 60,
        zone.unsigned_abs() % 60
    )
}

fn flags<T: Display>(flags: &[T]) -> String {
    flags
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn part_text(part: &[NonZeroU32]) -> String {
    part.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

fn our_section(section: &Section) -> String {
    let part = part_text(&section.part);
    let text = match &section.text {
        None => String::new(),
        Some(SectionText::Header) => "HEADER".into(),
        Some(SectionText::HeaderFields(names)) => format!("HEADER.FIELDS ({})", names.join(" ")),
        Some(SectionText::HeaderFieldsNot(names)) => {
            format!("HEADER.FIELDS.NOT ({})", names.join(" "))
        }
        Some(SectionText::Text) => "TEXT".into(),
        Some(SectionText::Mime) => "MIME".into(),
    };
    match (part.is_empty(), text.is_empty()) {
        (true, _) => text,
        (false, true) => part,
        (false, false) => format!("{part}.{text}"),
    }
}

fn our_attribute(attribute: &FetchAttribute) -> String {
    match attribute {
        FetchAttribute::Envelope => "ENVELOPE".into(),
        FetchAttribute::Flags => "FLAGS".into(),
        FetchAttribute::InternalDate => "INTERNALDATE".into(),
        FetchAttribute::Rfc822Size => "RFC822.SIZE".into(),
        FetchAttribute::Rfc822 => "RFC822".into(),
        FetchAttribute::Rfc822Header => "RFC822.HEADER".into(),
        FetchAttribute::Rfc822Text => "RFC822.TEXT".into(),
        FetchAttribute::Body => "BODY".into(),
        FetchAttribute::BodyStructure => "BODYSTRUCTURE".into(),
        FetchAttribute::Uid => "UID".into(),
        FetchAttribute::ModSeq => "MODSEQ".into(),
        FetchAttribute::BodySection {
            peek,
            section,
            partial,
        } => format!(
            "BODY{}[{}]{}",
            if *peek { ".PEEK" } else { "" },
            our_section(section),
            partial
                .map(|p| format!("<{}.{}>", p.offset, p.length))
                .unwrap_or_default()
        ),
        FetchAttribute::Binary {
            peek,
            part,
            partial,
        } => format!(
            "BINARY{}[{}]{}",
            if *peek { ".PEEK" } else { "" },
            part_text(part),
            partial
                .map(|p| format!("<{}.{}>", p.offset, p.length))
                .unwrap_or_default()
        ),
        FetchAttribute::BinarySize { part } => format!("BINARY.SIZE[{}]", part_text(part)),
    }
}

fn our_key(key: &SearchKey) -> String {
    let s = |name: &str, value: &[u8]| format!("{name} {}", bytes_text(value));
    match key {
        SearchKey::All => "ALL".into(),
        SearchKey::Answered => "ANSWERED".into(),
        SearchKey::Bcc(v) => s("BCC", v),
        SearchKey::Before(d) => format!("BEFORE {}", our_date(d)),
        SearchKey::Body(v) => s("BODY", v),
        SearchKey::Cc(v) => s("CC", v),
        SearchKey::Deleted => "DELETED".into(),
        SearchKey::Draft => "DRAFT".into(),
        SearchKey::Flagged => "FLAGGED".into(),
        SearchKey::From(v) => s("FROM", v),
        SearchKey::Header(name, v) => format!("HEADER {name} {}", bytes_text(v)),
        SearchKey::Keyword(k) => format!("KEYWORD {k}"),
        SearchKey::Larger(n) => format!("LARGER {n}"),
        SearchKey::New => "NEW".into(),
        SearchKey::Not(k) => format!("NOT({})", our_key(k)),
        SearchKey::Old => "OLD".into(),
        SearchKey::Older(n) => format!("OLDER {n}"),
        SearchKey::On(d) => format!("ON {}", our_date(d)),
        SearchKey::Or(a, b) => format!("OR({}, {})", our_key(a), our_key(b)),
        SearchKey::Recent => "RECENT".into(),
        SearchKey::Seen => "SEEN".into(),
        SearchKey::SentBefore(d) => format!("SENTBEFORE {}", our_date(d)),
        SearchKey::SentOn(d) => format!("SENTON {}", our_date(d)),
        SearchKey::SentSince(d) => format!("SENTSINCE {}", our_date(d)),
        SearchKey::Since(d) => format!("SINCE {}", our_date(d)),
        SearchKey::Smaller(n) => format!("SMALLER {n}"),
        SearchKey::Subject(v) => s("SUBJECT", v),
        SearchKey::Text(v) => s("TEXT", v),
        SearchKey::To(v) => s("TO", v),
        SearchKey::Uid(set) => format!("UID {}", our_set(set)),
        SearchKey::Unanswered => "UNANSWERED".into(),
        SearchKey::Undeleted => "UNDELETED".into(),
        SearchKey::Undraft => "UNDRAFT".into(),
        SearchKey::Unflagged => "UNFLAGGED".into(),
        SearchKey::Unkeyword(k) => format!("UNKEYWORD {k}"),
        SearchKey::Unseen => "UNSEEN".into(),
        SearchKey::Younger(n) => format!("YOUNGER {n}"),
        SearchKey::ModSeq {
            entry,
            mod_sequence,
        } => match entry {
            Some((name, kind)) => format!(
                "MODSEQ {} {kind} {mod_sequence}",
                name.strip_prefix("/flags/")
                    .unwrap_or(name)
                    .to_ascii_lowercase()
            ),
            None => format!("MODSEQ {mod_sequence}"),
        },
        SearchKey::SequenceSet(set) => format!("SET {}", our_set(set)),
        SearchKey::And(keys) => format!(
            "AND({})",
            keys.iter().map(our_key).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn ours(command: &Command) -> Vec<String> {
    let mut facts = vec![
        format!("tag={}", command.tag),
        format!("command={}", command.body.name()),
    ];
    let mut fact = |key: &str, value: String| facts.push(format!("{key}={value}"));
    match &command.body {
        CommandBody::Capability
        | CommandBody::Noop
        | CommandBody::Logout
        | CommandBody::StartTls
        | CommandBody::Namespace
        | CommandBody::Idle
        | CommandBody::Check
        | CommandBody::Close
        | CommandBody::Unselect
        | CommandBody::Expunge => {}
        CommandBody::Id { parameters } => fact("id", format!("{parameters:?}")),
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => {
            fact("mechanism", mechanism.to_ascii_uppercase());
            fact("initial", format!("{initial_response:?}"));
        }
        CommandBody::Login { username, password } => {
            fact("user", username.clone());
            fact("password", bytes_text(password.as_bytes()));
        }
        CommandBody::Enable { capabilities } => fact("capabilities", capabilities.join(" ")),
        CommandBody::Select {
            mailbox,
            parameters,
        }
        | CommandBody::Examine {
            mailbox,
            parameters,
        } => {
            fact("mailbox", mailbox.to_string());
            fact("condstore", parameters.condstore.to_string());
            if let Some(q) = &parameters.qresync {
                fact("uidvalidity", q.uid_validity.to_string());
                fact("modseq", q.mod_sequence.to_string());
                fact(
                    "known",
                    q.known_uids.as_ref().map(merged).unwrap_or_default(),
                );
                fact(
                    "seqmatch",
                    q.seq_match
                        .as_ref()
                        .map(|(a, b)| format!("{} {}", merged(a), merged(b)))
                        .unwrap_or_default(),
                );
            }
        }
        CommandBody::Create {
            mailbox,
            special_use,
        } => {
            fact("mailbox", mailbox.to_string());
            assert!(special_use.is_empty());
        }
        CommandBody::Delete { mailbox }
        | CommandBody::Subscribe { mailbox }
        | CommandBody::Unsubscribe { mailbox }
        | CommandBody::GetQuotaRoot { mailbox } => fact("mailbox", mailbox.to_string()),
        CommandBody::Rename { from, to } => {
            fact("from", from.to_string());
            fact("to", to.to_string());
        }
        CommandBody::List(list) => {
            assert!(!list.extended);
            fact(
                "reference",
                MailboxName::new(list.reference.clone()).to_string(),
            );
            fact("pattern", list.patterns.join(" "));
        }
        CommandBody::Lsub { reference, pattern } => {
            fact("reference", MailboxName::new(reference.clone()).to_string());
            fact("pattern", pattern.clone());
        }
        CommandBody::Status { mailbox, items } => {
            fact("mailbox", mailbox.to_string());
            fact(
                "items",
                items.iter().map(|i| i.name()).collect::<Vec<_>>().join(" "),
            );
        }
        CommandBody::Append(append) => {
            fact("mailbox", append.mailbox.to_string());
            fact("flags", flags(&append.flags));
            fact(
                "date",
                append.date.as_ref().map(our_date_time).unwrap_or_default(),
            );
            fact("message", bytes_text(&append.message));
            fact("binary", append.binary.to_string());
        }
        CommandBody::GetQuota { root } => fact("root", root.clone()),
        CommandBody::SetQuota { root, limits } => {
            fact("root", root.clone());
            fact("limits", format!("{limits:?}"));
        }
        CommandBody::UidExpunge { uids } => fact("set", our_set(uids)),
        CommandBody::Search(search) => {
            assert!(search.return_options.is_none());
            fact("charset", search.charset.clone().unwrap_or_default());
            fact(
                "criteria",
                search
                    .criteria
                    .iter()
                    .map(our_key)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        CommandBody::Sort(sort) => {
            assert!(sort.return_options.is_none());
            let criteria: Vec<String> = sort
                .criteria
                .iter()
                .map(|c| format!("{}{}", if c.reverse { "-" } else { "" }, c.key.name()))
                .collect();
            fact("sort", criteria.join(" "));
            fact("charset", sort.charset.clone());
            fact(
                "criteria",
                sort.search
                    .iter()
                    .map(our_key)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        CommandBody::Thread(thread) => {
            let algorithm = match &thread.algorithm {
                ThreadAlgorithm::OrderedSubject => "ORDEREDSUBJECT".to_owned(),
                ThreadAlgorithm::References => "REFERENCES".to_owned(),
                ThreadAlgorithm::Other(name) => name.clone(),
            };
            fact("algorithm", algorithm);
            fact("charset", thread.charset.clone());
            fact(
                "criteria",
                thread
                    .search
                    .iter()
                    .map(our_key)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        CommandBody::Fetch(fetch) => {
            fact("set", our_set(&fetch.set));
            let items = match &fetch.items {
                FetchItems::All => "ALL".into(),
                FetchItems::Fast => "FAST".into(),
                FetchItems::Full => "FULL".into(),
                FetchItems::Attributes(attributes) => attributes
                    .iter()
                    .map(our_attribute)
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            fact("items", items);
            fact(
                "changedsince",
                fetch
                    .changed_since
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            );
            fact("vanished", fetch.vanished.to_string());
        }
        CommandBody::Store(store) => {
            fact("set", our_set(&store.set));
            fact(
                "unchangedsince",
                store
                    .unchanged_since
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            );
            let action = match store.action {
                StoreAction::Replace => "replace",
                StoreAction::Add => "add",
                StoreAction::Remove => "remove",
            };
            fact("action", action.into());
            fact("silent", store.silent.to_string());
            fact("flags", flags::<Flag>(&store.flags));
        }
        CommandBody::Copy { set, mailbox, .. } | CommandBody::Move { set, mailbox, .. } => {
            fact("set", our_set(set));
            fact("mailbox", mailbox.to_string());
        }
    }
    facts
}

// ----- imap-codec's side -----

fn codec_set(set: &CodecSequenceSet) -> String {
    let value = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => u32::MAX,
    };
    let mut ranges: Vec<(u32, u32)> = set
        .0
        .as_ref()
        .iter()
        .map(|sequence| match sequence {
            Sequence::Single(s) => (value(s), value(s)),
            Sequence::Range(a, b) => (value(a).min(value(b)), value(a).max(value(b))),
        })
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (a, b) in ranges {
        match merged.last_mut() {
            Some(last) if last.1.saturating_add(1) >= a => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
        .iter()
        .map(|(a, b)| format!("{a}-{b}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn astring(value: &AString<'_>) -> String {
    bytes_text(value.as_ref())
}

fn istring(value: &IString<'_>) -> String {
    bytes_text(value.as_ref())
}

/// imap-codec keeps the wire form; we decode modified UTF-7 and normalise INBOX.
fn decoded(raw: &[u8]) -> String {
    let text = bytes_text(raw);
    let text = decode_mutf7(&text).unwrap_or(text);
    MailboxName::new(text).to_string()
}

fn mailbox(value: &Mailbox<'_>) -> String {
    match value {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(other) => decoded(other.as_ref()),
    }
}

fn list_mailbox(value: &ListMailbox<'_>) -> String {
    let raw: Cow<'_, [u8]> = match value {
        ListMailbox::Token(token) => Cow::Borrowed(token.as_ref()),
        ListMailbox::String(string) => Cow::Borrowed(string.as_ref()),
    };
    let text = bytes_text(&raw);
    decode_mutf7(&text).unwrap_or(text)
}

fn codec_date(date: &NaiveDate) -> String {
    date.as_ref().to_string()
}

fn codec_date_time(dt: &CodecDateTime) -> String {
    // chrono prints "1996-07-17 02:44:25 -07:00".
    dt.as_ref().to_string()
}

fn codec_part(part: &Part) -> String {
    part_text(part.0.as_ref())
}

fn codec_section(section: &Option<CodecSection<'_>>) -> String {
    let with_part = |part: &Option<Part>, text: String| match part {
        Some(part) => format!("{}.{text}", codec_part(part)),
        None => text,
    };
    let names = |names: &[AString<'_>]| names.iter().map(astring).collect::<Vec<_>>().join(" ");
    match section {
        None => String::new(),
        Some(CodecSection::Part(part)) => codec_part(part),
        Some(CodecSection::Header(part)) => with_part(part, "HEADER".into()),
        Some(CodecSection::HeaderFields(part, list)) => {
            with_part(part, format!("HEADER.FIELDS ({})", names(list.as_ref())))
        }
        Some(CodecSection::HeaderFieldsNot(part, list)) => with_part(
            part,
            format!("HEADER.FIELDS.NOT ({})", names(list.as_ref())),
        ),
        Some(CodecSection::Text(part)) => with_part(part, "TEXT".into()),
        Some(CodecSection::Mime(part)) => format!("{}.MIME", codec_part(part)),
    }
}

fn codec_item(item: &N<'_>) -> String {
    match item {
        N::Body => "BODY".into(),
        N::BodyExt {
            section,
            partial,
            peek,
        } => format!(
            "BODY{}[{}]{}",
            if *peek { ".PEEK" } else { "" },
            codec_section(section),
            partial
                .map(|(a, b)| format!("<{a}.{b}>"))
                .unwrap_or_default()
        ),
        N::BodyStructure => "BODYSTRUCTURE".into(),
        N::Envelope => "ENVELOPE".into(),
        N::Flags => "FLAGS".into(),
        N::InternalDate => "INTERNALDATE".into(),
        N::Rfc822 => "RFC822".into(),
        N::Rfc822Header => "RFC822.HEADER".into(),
        N::Rfc822Size => "RFC822.SIZE".into(),
        N::Rfc822Text => "RFC822.TEXT".into(),
        N::Uid => "UID".into(),
        N::Binary {
            section,
            partial,
            peek,
        } => format!(
            "BINARY{}[{}]{}",
            if *peek { ".PEEK" } else { "" },
            part_text(section),
            partial
                .map(|(a, b)| format!("<{a}.{b}>"))
                .unwrap_or_default()
        ),
        N::BinarySize { section } => format!("BINARY.SIZE[{}]", part_text(section)),
        N::ModSeq => "MODSEQ".into(),
    }
}

fn codec_key(key: &K<'_>) -> String {
    let s = |name: &str, value: &AString<'_>| format!("{name} {}", astring(value));
    match key {
        K::And(keys) => format!(
            "AND({})",
            keys.as_ref()
                .iter()
                .map(codec_key)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        K::SequenceSet(set) => format!("SET {}", codec_set(set)),
        K::All => "ALL".into(),
        K::Answered => "ANSWERED".into(),
        K::Bcc(v) => s("BCC", v),
        K::Before(d) => format!("BEFORE {}", codec_date(d)),
        K::Body(v) => s("BODY", v),
        K::Cc(v) => s("CC", v),
        K::Deleted => "DELETED".into(),
        K::Draft => "DRAFT".into(),
        K::Flagged => "FLAGGED".into(),
        K::From(v) => s("FROM", v),
        K::Header(name, v) => format!("HEADER {} {}", astring(name), astring(v)),
        K::Keyword(k) => format!("KEYWORD {k}"),
        K::Larger(n) => format!("LARGER {n}"),
        K::New => "NEW".into(),
        K::Not(k) => format!("NOT({})", codec_key(k)),
        K::Old => "OLD".into(),
        K::On(d) => format!("ON {}", codec_date(d)),
        K::Or(a, b) => format!("OR({}, {})", codec_key(a), codec_key(b)),
        K::Recent => "RECENT".into(),
        K::Seen => "SEEN".into(),
        K::SentBefore(d) => format!("SENTBEFORE {}", codec_date(d)),
        K::SentOn(d) => format!("SENTON {}", codec_date(d)),
        K::SentSince(d) => format!("SENTSINCE {}", codec_date(d)),
        K::Since(d) => format!("SINCE {}", codec_date(d)),
        K::Smaller(n) => format!("SMALLER {n}"),
        K::Subject(v) => s("SUBJECT", v),
        K::Text(v) => s("TEXT", v),
        K::To(v) => s("TO", v),
        K::Uid(set) => format!("UID {}", codec_set(set)),
        K::Unanswered => "UNANSWERED".into(),
        K::Undeleted => "UNDELETED".into(),
        K::Undraft => "UNDRAFT".into(),
        K::Unflagged => "UNFLAGGED".into(),
        K::Unkeyword(k) => format!("UNKEYWORD {k}"),
        K::Unseen => "UNSEEN".into(),
        K::ModSequence { entry, modseq } => match entry {
            // imap-codec keeps the entry name's quoted-string escape: "\\draft" for \draft.
            Some((flag, kind)) => {
                format!(
                    "MODSEQ {} {kind} {modseq}",
                    flag.to_string().replace("\\\\", "\\").to_ascii_lowercase()
                )
            }
            None => format!("MODSEQ {modseq}"),
        },
    }
}

fn codec_charset(charset: &Charset<'_>) -> String {
    match charset {
        Charset::Atom(atom) => atom.to_string(),
        Charset::Quoted(quoted) => quoted.inner().to_owned(),
    }
}

fn codec_flags(flags: &[CodecFlag<'_>]) -> String {
    flags
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn theirs(command: &CodecCommand<'_>) -> Vec<String> {
    let name = |base: &str, uid: bool| {
        if uid {
            format!("UID {base}")
        } else {
            base.to_owned()
        }
    };
    let kind = match &command.body {
        C::Capability => "CAPABILITY".into(),
        C::Noop => "NOOP".into(),
        C::Logout => "LOGOUT".into(),
        C::StartTLS => "STARTTLS".into(),
        C::Authenticate { .. } => "AUTHENTICATE".into(),
        C::Login { .. } => "LOGIN".into(),
        C::Select { .. } => "SELECT".into(),
        C::Unselect => "UNSELECT".into(),
        C::Examine { .. } => "EXAMINE".into(),
        C::Create { .. } => "CREATE".into(),
        C::Delete { .. } => "DELETE".into(),
        C::Rename { .. } => "RENAME".into(),
        C::Subscribe { .. } => "SUBSCRIBE".into(),
        C::Unsubscribe { .. } => "UNSUBSCRIBE".into(),
        C::List { .. } => "LIST".into(),
        C::Lsub { .. } => "LSUB".into(),
        C::Status { .. } => "STATUS".into(),
        C::Append { .. } => "APPEND".into(),
        C::Check => "CHECK".into(),
        C::Close => "CLOSE".into(),
        C::Expunge => "EXPUNGE".into(),
        C::ExpungeUid { .. } => "UID EXPUNGE".into(),
        C::Search { uid, .. } => name("SEARCH", *uid),
        C::Sort { uid, .. } => name("SORT", *uid),
        C::Thread { uid, .. } => name("THREAD", *uid),
        C::Fetch { uid, .. } => name("FETCH", *uid),
        C::Store { uid, .. } => name("STORE", *uid),
        C::Copy { uid, .. } => name("COPY", *uid),
        C::Move { uid, .. } => name("MOVE", *uid),
        C::Idle => "IDLE".into(),
        C::Enable { .. } => "ENABLE".into(),
        C::GetQuota { .. } => "GETQUOTA".into(),
        C::GetQuotaRoot { .. } => "GETQUOTAROOT".into(),
        C::SetQuota { .. } => "SETQUOTA".into(),
        C::Id { .. } => "ID".into(),
        C::Namespace => "NAMESPACE".into(),
        other => panic!("unexpected command {other:?}"),
    };
    let mut facts = vec![
        format!("tag={}", command.tag.as_ref()),
        format!("command={kind}"),
    ];
    let mut fact = |key: &str, value: String| facts.push(format!("{key}={value}"));
    match &command.body {
        C::Id { parameters } => {
            let parameters: Option<Vec<(String, Option<String>)>> =
                parameters.as_ref().map(|parameters| {
                    parameters
                        .iter()
                        .map(|(field, value)| (istring(field), value.0.as_ref().map(istring)))
                        .collect()
                });
            fact("id", format!("{parameters:?}"));
        }
        C::Authenticate {
            mechanism,
            initial_response,
        } => {
            fact("mechanism", mechanism.to_string().to_ascii_uppercase());
            fact(
                "initial",
                format!(
                    "{:?}",
                    initial_response.as_ref().map(|r| r.declassify().to_vec())
                ),
            );
        }
        C::Login { username, password } => {
            fact("user", astring(username));
            fact("password", astring(password.declassify()));
        }
        C::Enable { capabilities } => fact(
            "capabilities",
            capabilities
                .as_ref()
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        C::Select {
            mailbox: m,
            parameters,
        }
        | C::Examine {
            mailbox: m,
            parameters,
        } => {
            fact("mailbox", mailbox(m));
            fact(
                "condstore",
                parameters.contains(&SelectParameter::CondStore).to_string(),
            );
            for parameter in parameters {
                if let SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    seq_match_data,
                } = parameter
                {
                    fact("uidvalidity", uid_validity.to_string());
                    fact("modseq", mod_sequence_value.to_string());
                    fact(
                        "known",
                        known_uids.as_ref().map(codec_set).unwrap_or_default(),
                    );
                    fact(
                        "seqmatch",
                        seq_match_data
                            .as_ref()
                            .map(|(a, b)| format!("{} {}", codec_set(a), codec_set(b)))
                            .unwrap_or_default(),
                    );
                }
            }
        }
        C::Create { mailbox: m }
        | C::Delete { mailbox: m }
        | C::Subscribe { mailbox: m }
        | C::Unsubscribe { mailbox: m }
        | C::GetQuotaRoot { mailbox: m } => fact("mailbox", mailbox(m)),
        C::Rename { from, to } => {
            fact("from", mailbox(from));
            fact("to", mailbox(to));
        }
        C::List {
            reference,
            mailbox_wildcard,
        }
        | C::Lsub {
            reference,
            mailbox_wildcard,
        } => {
            fact("reference", mailbox(reference));
            fact("pattern", list_mailbox(mailbox_wildcard));
        }
        C::Status {
            mailbox: m,
            item_names,
        } => {
            fact("mailbox", mailbox(m));
            let items = item_names
                .iter()
                .map(|item| match item {
                    StatusDataItemName::Messages => "MESSAGES",
                    StatusDataItemName::Recent => "RECENT",
                    StatusDataItemName::UidNext => "UIDNEXT",
                    StatusDataItemName::UidValidity => "UIDVALIDITY",
                    StatusDataItemName::Unseen => "UNSEEN",
                    StatusDataItemName::Deleted => "DELETED",
                    StatusDataItemName::Size => "SIZE",
                    StatusDataItemName::HighestModSeq => "HIGHESTMODSEQ",
                    other => panic!("unexpected status item {other:?}"),
                })
                .collect::<Vec<_>>()
                .join(" ");
            fact("items", items);
        }
        C::Append {
            mailbox: m,
            flags,
            date,
            message,
        } => {
            fact("mailbox", mailbox(m));
            fact("flags", codec_flags(flags));
            fact(
                "date",
                date.as_ref().map(codec_date_time).unwrap_or_default(),
            );
            let (data, binary) = match message {
                LiteralOrLiteral8::Literal(literal) => (literal.data().to_vec(), false),
                LiteralOrLiteral8::Literal8(literal8) => (literal8.data.to_vec(), true),
            };
            fact("message", bytes_text(&data));
            fact("binary", binary.to_string());
        }
        C::GetQuota { root } => fact("root", astring(root)),
        C::SetQuota { root, quotas } => {
            fact("root", astring(root));
            let limits: Vec<(String, u64)> = quotas
                .iter()
                .map(|q| (q.resource.to_string().to_ascii_uppercase(), q.limit))
                .collect();
            fact("limits", format!("{limits:?}"));
        }
        C::ExpungeUid { sequence_set } => fact("set", codec_set(sequence_set)),
        C::Search {
            charset, criteria, ..
        } => {
            let charset = match charset {
                Some(Charset::Atom(atom)) => atom.to_string(),
                Some(Charset::Quoted(quoted)) => quoted.inner().to_owned(),
                None => String::new(),
            };
            fact("charset", charset);
            fact(
                "criteria",
                criteria
                    .as_ref()
                    .iter()
                    .map(codec_key)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        C::Sort {
            sort_criteria,
            charset,
            search_criteria,
            ..
        } => {
            let criteria: Vec<String> = sort_criteria
                .as_ref()
                .iter()
                .map(|c| format!("{}{}", if c.reverse { "-" } else { "" }, c.key.as_ref()))
                .collect();
            fact("sort", criteria.join(" "));
            fact("charset", codec_charset(charset));
            fact(
                "criteria",
                search_criteria
                    .as_ref()
                    .iter()
                    .map(codec_key)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        C::Thread {
            algorithm,
            charset,
            search_criteria,
            ..
        } => {
            fact("algorithm", algorithm.to_string().to_ascii_uppercase());
            fact("charset", codec_charset(charset));
            fact(
                "criteria",
                search_criteria
                    .as_ref()
                    .iter()
                    .map(codec_key)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        C::Fetch {
            sequence_set,
            macro_or_item_names,
            modifiers,
            ..
        } => {
            fact("set", codec_set(sequence_set));
            let items = match macro_or_item_names {
                MacroOrMessageDataItemNames::Macro(m) => m.to_string(),
                MacroOrMessageDataItemNames::MessageDataItemNames(items) => {
                    items.iter().map(codec_item).collect::<Vec<_>>().join(" ")
                }
            };
            fact("items", items);
            let changed_since = modifiers.iter().find_map(|m| match m {
                FetchModifier::ChangedSince(n) => Some(n.to_string()),
                FetchModifier::Vanished => None,
            });
            fact("changedsince", changed_since.unwrap_or_default());
            fact(
                "vanished",
                modifiers.contains(&FetchModifier::Vanished).to_string(),
            );
        }
        C::Store {
            sequence_set,
            kind,
            response,
            flags,
            modifiers,
            ..
        } => {
            fact("set", codec_set(sequence_set));
            let unchanged_since = modifiers
                .iter()
                .map(|StoreModifier::UnchangedSince(n)| n.to_string())
                .next();
            fact("unchangedsince", unchanged_since.unwrap_or_default());
            let action = match kind {
                StoreType::Replace => "replace",
                StoreType::Add => "add",
                StoreType::Remove => "remove",
            };
            fact("action", action.into());
            fact(
                "silent",
                matches!(response, StoreResponse::Silent).to_string(),
            );
            fact("flags", codec_flags(flags));
        }
        C::Copy {
            sequence_set,
            mailbox: m,
            ..
        }
        | C::Move {
            sequence_set,
            mailbox: m,
            ..
        } => {
            fact("set", codec_set(sequence_set));
            fact("mailbox", mailbox(m));
        }
        _ => {}
    }
    facts
}

#[test]
fn corpus_agrees_with_imap_codec() {
    let codec = CommandCodec::default();
    let limits = Limits::default();
    let mut accepted = 0;
    let mut refused = 0;
    for (line, input, accept) in corpus() {
        let shown = String::from_utf8_lossy(&input).into_owned();
        let our_result = parse_command(&input, &limits, Utf8Mode::Off);
        let their_result = codec.decode(&input);
        if accept {
            let command =
                our_result.unwrap_or_else(|e| panic!("line {line}: we refuse {shown:?}: {e:?}"));
            let (rest, their_command) = their_result
                .unwrap_or_else(|e| panic!("line {line}: imap-codec refuses {shown:?}: {e:?}"));
            assert!(rest.is_empty(), "line {line}: imap-codec left {rest:?}");
            assert_eq!(
                ours(&command),
                theirs(&their_command),
                "line {line}: {shown:?}"
            );
            accepted += 1;
        } else {
            assert!(
                our_result.is_err(),
                "line {line}: we accept {shown:?}: {our_result:?}"
            );
            assert!(
                !matches!(their_result, Ok((rest, _)) if rest.is_empty()),
                "line {line}: imap-codec accepts {shown:?}"
            );
            refused += 1;
        }
    }
    assert!(
        accepted >= 100,
        "only {accepted} accepted commands in the corpus"
    );
    assert!(refused >= 10);
}

/// The reason this crate exists: IMAP4rev2 requires these, imap-codec cannot parse them.
#[test]
fn imap4rev2_commands_imap_codec_cannot_parse() {
    let codec = CommandCodec::default();
    for input in [
        &b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994\r\n"[..],
        b"A283 UID SEARCH RETURN () 1:*\r\n",
        b"A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n",
        b"A03 LIST () \"\" (\"foo\" \"foo/*\") RETURN (CHILDREN)\r\n",
        b"A05 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n",
        b"t1 CREATE MySpecialArchive (USE (\\Archive))\r\n",
    ] {
        let shown = String::from_utf8_lossy(input);
        assert!(
            parse_command(input, &Limits::default(), Utf8Mode::Off).is_ok(),
            "{shown}"
        );
        assert!(
            !matches!(codec.decode(input), Ok((rest, _)) if rest.is_empty()),
            "imap-codec parses {shown}"
        );
    }
}
