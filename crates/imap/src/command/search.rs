//! SEARCH and UID SEARCH, with ESEARCH `RETURN (MIN MAX COUNT ALL)` (RFC 4731).
//!
//! Keys on flags, UIDs, message numbers, sizes, internal dates and mod-sequences are
//! read from the message metadata. Header and text keys scan
//! `postcell_mime::search_text` of each message's blob: a scan for now; a full-text
//! index is later work.
//!
//! ```text
//! C: a8 SEARCH UNSEEN FROM "bob"
//! S: * SEARCH 2 5
//! S: a8 OK SEARCH completed
//! ```

use postcell_imap_proto::command::{SearchCommand, SearchKey};
use postcell_imap_proto::response::{Data, ESearchResponse, StatusResponse};
use postcell_imap_proto::{Date, MessageSet, SequenceSet};
use postcell_mime::SearchText;
use postcell_store::{MessageMeta, Store, UidRanges, flags};

use crate::reply::unavailable;
use crate::selected::SelectedMailbox;
use crate::session::Session;

pub(crate) async fn search(
    session: &mut Session,
    tag: String,
    selected: &SelectedMailbox,
    command: SearchCommand,
) {
    let store = session.store().clone();
    let needs_text = command.criteria.iter().any(needs_text);
    let mut found = Vec::new();
    // The session's map holds no sizes or dates: they are read here, in one query.
    let metas = match store
        .message_meta(selected.mailbox_id, &UidRanges::all())
        .await
    {
        Ok(metas) => metas,
        Err(error) => return unavailable(session, tag, &error),
    };
    for meta in &metas {
        let Some(index) = selected.index_of_uid(meta.uid as u32) else {
            continue;
        };
        let text = if needs_text {
            match load_text(&store, meta).await {
                Ok(text) => Some(text),
                Err(error) => return unavailable(session, tag, &error),
            }
        } else {
            None
        };
        let context = Context {
            selected,
            seq: index as u32 + 1,
            meta,
            text: text.as_ref(),
        };
        if command.criteria.iter().all(|key| context.matches(key)) {
            found.push(if command.uid {
                meta.uid as u32
            } else {
                index as u32 + 1
            });
        }
    }
    match command.return_options {
        None => session.write_data(&Data::Search {
            numbers: found,
            mod_sequence: None,
        }),
        Some(options) => {
            let all_by_default = !(options.min || options.max || options.count || options.all);
            session.write_data(&Data::ESearch(ESearchResponse {
                tag: Some(tag.clone()),
                uid: command.uid,
                min: found.first().copied().filter(|_| options.min),
                max: found.last().copied().filter(|_| options.max),
                all: SequenceSet::from_numbers(found.iter().copied())
                    .filter(|_| options.all || all_by_default),
                count: Some(found.len() as u32).filter(|_| options.count),
                mod_sequence: None,
            }))
        }
    }
    session.write_status(StatusResponse::ok(Some(tag), "SEARCH completed"));
}

async fn load_text(store: &Store, meta: &MessageMeta) -> postcell_store::Result<SearchText> {
    let raw = store.get_blob(&meta.blob_id).await?;
    Ok(postcell_mime::search_text(&raw))
}

fn needs_text(key: &SearchKey) -> bool {
    match key {
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        SearchKey::Not(key) => needs_text(key),
        SearchKey::Or(a, b) => needs_text(a) || needs_text(b),
        SearchKey::And(keys) => keys.iter().any(needs_text),
        _ => false,
    }
}

struct Context<'a> {
    selected: &'a SelectedMailbox,
    seq: u32,
    meta: &'a MessageMeta,
    text: Option<&'a SearchText>,
}

impl Context<'_> {
    fn matches(&self, key: &SearchKey) -> bool {
        let flag = |bit: i64| self.meta.flags & bit != 0;
        let day = Date::from_days_since_unix_epoch(self.meta.internal_date.div_euclid(86_400));
        match key {
            SearchKey::All => true,
            SearchKey::Answered => flag(flags::ANSWERED),
            SearchKey::Deleted => flag(flags::DELETED),
            SearchKey::Draft => flag(flags::DRAFT),
            SearchKey::Flagged => flag(flags::FLAGGED),
            SearchKey::Seen => flag(flags::SEEN),
            SearchKey::Unanswered => !flag(flags::ANSWERED),
            SearchKey::Undeleted => !flag(flags::DELETED),
            SearchKey::Undraft => !flag(flags::DRAFT),
            SearchKey::Unflagged => !flag(flags::FLAGGED),
            SearchKey::Unseen => !flag(flags::SEEN),
            // No message is \Recent in this server (IMAP4rev2 dropped it).
            SearchKey::Recent | SearchKey::New => false,
            SearchKey::Old => true,
            SearchKey::Keyword(word) => self.has_keyword(word),
            SearchKey::Unkeyword(word) => !self.has_keyword(word),
            SearchKey::Larger(n) => self.meta.size as u64 > *n,
            SearchKey::Smaller(n) => (self.meta.size as u64) < *n,
            SearchKey::Before(date) => day.is_some_and(|d| d < *date),
            SearchKey::On(date) => day.is_some_and(|d| d == *date),
            SearchKey::Since(date) => day.is_some_and(|d| d >= *date),
            SearchKey::Older(seconds) => self.meta.internal_date <= now() - i64::from(*seconds),
            SearchKey::Younger(seconds) => self.meta.internal_date >= now() - i64::from(*seconds),
            SearchKey::ModSeq { mod_sequence, .. } => self.meta.modseq as u64 >= *mod_sequence,
            SearchKey::Uid(set) => self.in_set(set, true),
            SearchKey::SequenceSet(set) => self.in_set(set, false),
            SearchKey::Not(key) => !self.matches(key),
            SearchKey::Or(a, b) => self.matches(a) || self.matches(b),
            SearchKey::And(keys) => keys.iter().all(|k| self.matches(k)),
            SearchKey::Body(needle) => self.text_has(|t| &t.body, needle),
            SearchKey::Text(needle) => {
                self.text_has(|t| &t.headers, needle) || self.text_has(|t| &t.body, needle)
            }
            SearchKey::From(needle) => self.header_has("From", needle),
            SearchKey::To(needle) => self.header_has("To", needle),
            SearchKey::Cc(needle) => self.header_has("Cc", needle),
            SearchKey::Bcc(needle) => self.header_has("Bcc", needle),
            SearchKey::Subject(needle) => self.header_has("Subject", needle),
            SearchKey::Header(name, needle) => self.header_has(name, needle),
            // Sent dates need the Date: field parsed; not done yet, so nothing matches.
            SearchKey::SentBefore(_) | SearchKey::SentOn(_) | SearchKey::SentSince(_) => false,
        }
    }

    fn has_keyword(&self, word: &str) -> bool {
        self.meta
            .keywords
            .split(' ')
            .any(|k| k.eq_ignore_ascii_case(word))
    }

    fn in_set(&self, set: &MessageSet, uid: bool) -> bool {
        let MessageSet::Set(set) = set else {
            return false;
        };
        if uid {
            let largest = self.selected.largest_uid();
            set.contains(self.meta.uid as u32, largest)
        } else {
            set.contains(self.seq, self.selected.len() as u32)
        }
    }

    fn text_has(&self, part: impl Fn(&SearchText) -> &String, needle: &[u8]) -> bool {
        let Some(text) = self.text else {
            return false;
        };
        contains(part(text), needle)
    }

    /// Whether a header field `name` holds `needle` (an empty needle: the field exists).
    fn header_has(&self, name: &str, needle: &[u8]) -> bool {
        let Some(text) = self.text else {
            return false;
        };
        let mut in_field = false;
        for line in text.headers.lines() {
            if !line.starts_with([' ', '\t']) {
                in_field = line
                    .split_once(':')
                    .is_some_and(|(field, _)| field.trim().eq_ignore_ascii_case(name));
                if in_field && needle.is_empty() {
                    return true;
                }
            }
            if in_field && contains(line.split_once(':').map_or(line, |(_, v)| v), needle) {
                return true;
            }
        }
        false
    }
}

/// Case-insensitive substring test (RFC 9051 section 6.4.4).
fn contains(haystack: &str, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    haystack.to_lowercase().contains(&needle)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
