//! SEARCH and UID SEARCH (RFC 9051 section 6.4.4), with ESEARCH's `RETURN (MIN MAX
//! COUNT ALL)` (RFC 4731), SEARCHRES's `SAVE` and `$` (RFC 5182) and CONDSTORE's
//! `MODSEQ` (RFC 7162).
//!
//! Keys on flags, keywords, UIDs, message numbers and mod-sequences are evaluated over
//! the session's view of the mailbox ([`SelectedMailbox::messages`]), without touching
//! the store; sizes and internal dates, which the view does not hold, are read in one
//! query when a key needs them. Keys on text (FROM, TO,
//! CC, BCC, SUBJECT, HEADER, BODY, TEXT) and on the Date field (SENTBEFORE, SENTON,
//! SENTSINCE) each become one query on the search index (`postcell_store::search`);
//! the key tree is then evaluated with their answers. Blobs are never read, except to
//! index messages stored before the index existed, on the first search of their
//! mailbox.
//!
//! ```text
//! C: a8 SEARCH UNSEEN FROM "bob"
//! S: * SEARCH 2 5
//! S: a8 OK SEARCH completed
//! C: a9 UID SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 BODY {9}
//! C: 議事録
//! S: * ESEARCH (TAG "a9") UID MIN 4 COUNT 2
//! S: a9 OK SEARCH completed
//! C: b1 UID FETCH $ (FLAGS)
//! ```

use std::collections::{HashMap, HashSet};

use postcell_imap_proto::command::{SearchCommand, SearchKey, SearchReturnOptions};
use postcell_imap_proto::response::{Code, Data, ESearchResponse, StatusResponse};
use postcell_imap_proto::{Date, MessageSet, SequenceSet};
use postcell_store::{SentDay, Store, StoreError, TextField, UidRanges, flags, fold};

use crate::reply::unavailable;
use crate::selected::{Message, SelectedMailbox};
use crate::session::Session;

/// What a session remembers between searches of its selected mailbox.
#[derive(Debug, Default)]
pub(crate) struct SearchState {
    /// RFC 5182: the UIDs of the last `RETURN (SAVE)` result, sorted; `$` names them.
    /// Messages expunged since drop out, because `$` is resolved against the session's
    /// view of the mailbox.
    pub saved: Vec<u32>,
}

impl SelectedMailbox {
    /// What a result reports for each message: its UID, or its message number.
    pub(crate) fn numbers(&self, found: &[usize], uid: bool) -> Vec<u32> {
        found
            .iter()
            .map(|&i| {
                if uid {
                    self.messages()[i].uid
                } else {
                    i as u32 + 1
                }
            })
            .collect()
    }

    /// The indexes (`seq - 1`) of the messages `$` names, in order.
    pub(crate) fn saved_result(&self) -> Vec<usize> {
        self.messages()
            .iter()
            .enumerate()
            .filter(|(_, m)| self.search.saved.binary_search(&m.uid).is_ok())
            .map(|(i, _)| i)
            .collect()
    }
}

/// The charsets SEARCH, SORT and THREAD accept (search strings are then read as UTF-8:
/// US-ASCII is a subset).
pub(crate) fn charset_supported(charset: &str) -> bool {
    charset.eq_ignore_ascii_case("UTF-8") || charset.eq_ignore_ascii_case("US-ASCII")
}

/// `NO [BADCHARSET (UTF-8 US-ASCII)]` (RFC 9051 section 7.1).
pub(crate) fn bad_charset(session: &mut Session, tag: String) {
    session.write_status(
        StatusResponse::no(Some(tag), "Charset not supported; use UTF-8 or US-ASCII")
            .with_code(Code::BadCharset(vec!["UTF-8".into(), "US-ASCII".into()])),
    );
}

pub(crate) async fn search(
    session: &mut Session,
    tag: String,
    selected: &mut SelectedMailbox,
    command: SearchCommand,
) {
    let save = command.return_options.is_some_and(|o| o.save);
    if command
        .charset
        .as_deref()
        .is_some_and(|charset| !charset_supported(charset))
    {
        if save {
            selected.search.saved.clear();
        }
        return bad_charset(session, tag);
    }
    let store = session.store().clone();
    let found = match matching(&store, selected, &command.criteria).await {
        Ok(found) => found,
        Err(error) => {
            if save {
                selected.search.saved.clear();
            }
            return unavailable(session, tag, &error);
        }
    };
    metrics::counter!("postcell_imap_search_total", "command" => "search").increment(1);
    let numbers = selected.numbers(&found, command.uid);
    let with_modseq = command.criteria.iter().any(uses_modseq);
    // RFC 9051 section 6.4.4: for an IMAP4rev2 client a SEARCH without RETURN is
    // RETURN (ALL), answered with ESEARCH.
    let return_options = command.return_options.or_else(|| {
        session.enabled.imap4rev2.then_some(SearchReturnOptions {
            all: true,
            ..SearchReturnOptions::default()
        })
    });
    match return_options {
        None => {
            let mod_sequence = with_modseq
                .then(|| highest_modseq(selected, &found))
                .flatten();
            session.write_data(&Data::Search {
                numbers,
                mod_sequence,
            });
        }
        Some(options) => {
            let response = esearch(selected, &found, &numbers, options, with_modseq, false);
            if let Some(mut response) = response {
                response.tag = Some(tag.clone());
                response.uid = command.uid;
                session.write_data(&Data::ESearch(response));
            }
        }
    }
    session.write_status(StatusResponse::ok(Some(tag), "SEARCH completed"));
}

/// The ESEARCH response for a result: `found` (indexes, in the order reported) and
/// `numbers` (what is reported for each). With SAVE, it also saves the result for `$`
/// (RFC 5182 section 2.4: MIN and/or MAX alone save only those messages). `None` when
/// only SAVE was asked: then nothing is sent. MIN and MAX are the first and the last
/// reported: the lowest and highest for SEARCH, the first and last in sort order for
/// ESORT (RFC 5267 section 3.2); with `in_order`, ALL keeps the order too.
pub(crate) fn esearch(
    selected: &mut SelectedMailbox,
    found: &[usize],
    numbers: &[u32],
    options: SearchReturnOptions,
    with_modseq: bool,
    in_order: bool,
) -> Option<ESearchResponse> {
    let only_extremes = (options.min || options.max) && !(options.all || options.count);
    let mut reported: Vec<usize> = Vec::new();
    if only_extremes {
        if options.min {
            reported.extend(found.first());
        }
        if options.max {
            reported.extend(found.last());
        }
        reported.dedup();
    } else {
        reported.extend_from_slice(found);
    }
    if options.save {
        let mut saved: Vec<u32> = reported
            .iter()
            .map(|&i| selected.messages()[i].uid)
            .collect();
        saved.sort_unstable();
        saved.dedup();
        selected.search.saved = saved;
    }
    if !(options.min || options.max || options.count || options.all) {
        return None;
    }
    let all = if in_order {
        SequenceSet::from_numbers_in_order(numbers.iter().copied())
    } else {
        SequenceSet::from_numbers(numbers.iter().copied())
    };
    Some(ESearchResponse {
        tag: None,
        uid: false,
        min: numbers.first().copied().filter(|_| options.min),
        max: numbers.last().copied().filter(|_| options.max),
        all: all.filter(|_| options.all),
        count: Some(found.len() as u32).filter(|_| options.count),
        mod_sequence: with_modseq
            .then(|| highest_modseq(selected, &reported))
            .flatten(),
    })
}

/// RFC 7162 section 3.1.5: the highest mod-sequence of the messages returned, when a
/// search used MODSEQ; none when nothing was found.
pub(crate) fn highest_modseq(selected: &SelectedMailbox, found: &[usize]) -> Option<u64> {
    found.iter().map(|&i| selected.messages()[i].modseq).max()
}

pub(crate) fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq { .. } => true,
        SearchKey::Not(key) => uses_modseq(key),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        _ => false,
    }
}

/// The indexes (`seq - 1`) of the messages that match every key, in mailbox order.
pub(crate) async fn matching(
    store: &Store,
    selected: &mut SelectedMailbox,
    keys: &[SearchKey],
) -> Result<Vec<usize>, StoreError> {
    let mut queries = HashSet::new();
    for key in keys {
        collect_queries(key, &mut queries);
    }
    let mut answers = HashMap::with_capacity(queries.len());
    if !queries.is_empty() {
        ensure_indexed(store, selected).await?;
        for query in queries {
            let uids = query.run(store, selected).await?;
            answers.insert(query, uids);
        }
    }
    let details = if keys.iter().any(needs_details) {
        Some(details(store, selected).await?)
    } else {
        None
    };
    let selected = &*selected;
    let now = now();
    Ok(selected
        .messages()
        .iter()
        .enumerate()
        .filter(|(index, message)| {
            if message.expunged {
                // Expunged by another session, not reported yet: nothing to match.
                return false;
            }
            let context = Context {
                selected,
                seq: *index as u32 + 1,
                message,
                details: details.as_ref().and_then(|d| d.get(&message.uid)).copied(),
                answers: &answers,
                now,
            };
            keys.iter().all(|key| context.matches(key))
        })
        .map(|(index, _)| index)
        .collect())
}

/// What the session's view lacks of a message: its size and internal date.
#[derive(Debug, Clone, Copy)]
struct Details {
    size: i64,
    internal_date: i64,
}

/// The size and internal date of every message of the mailbox, by UID, in one query.
async fn details(
    store: &Store,
    selected: &SelectedMailbox,
) -> Result<HashMap<u32, Details>, StoreError> {
    let metas = store
        .message_meta(selected.mailbox_id, &UidRanges::all())
        .await?;
    Ok(metas
        .into_iter()
        .map(|meta| {
            let details = Details {
                size: meta.size,
                internal_date: meta.internal_date,
            };
            (meta.uid as u32, details)
        })
        .collect())
}

/// Whether a key needs what the session's view does not hold (sizes, internal dates).
fn needs_details(key: &SearchKey) -> bool {
    match key {
        SearchKey::Larger(_)
        | SearchKey::Smaller(_)
        | SearchKey::Before(_)
        | SearchKey::On(_)
        | SearchKey::Since(_)
        | SearchKey::Older(_)
        | SearchKey::Younger(_) => true,
        SearchKey::Not(key) => needs_details(key),
        SearchKey::Or(a, b) => needs_details(a) || needs_details(b),
        SearchKey::And(keys) => keys.iter().any(needs_details),
        _ => false,
    }
}

/// Writes the index rows of the mailbox's messages that the store's indexer has not
/// reached yet, so that the search sees every message.
pub(crate) async fn ensure_indexed(
    store: &Store,
    selected: &SelectedMailbox,
) -> Result<(), StoreError> {
    store.index_mailbox(selected.mailbox_id).await?;
    Ok(())
}

/// One question for the search index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IndexQuery {
    Text(TextField, String),
    /// HEADER field-name string: the field name folded.
    Header(String, String),
    Sent(SentDay),
}

impl IndexQuery {
    fn of(key: &SearchKey) -> Option<IndexQuery> {
        let text = |field, needle: &[u8]| {
            Some(IndexQuery::Text(
                field,
                String::from_utf8_lossy(needle).into_owned(),
            ))
        };
        let day = |date: &Date| date.days_since_unix_epoch();
        match key {
            SearchKey::From(needle) => text(TextField::From, needle),
            SearchKey::To(needle) => text(TextField::To, needle),
            SearchKey::Cc(needle) => text(TextField::Cc, needle),
            SearchKey::Bcc(needle) => text(TextField::Bcc, needle),
            SearchKey::Subject(needle) => text(TextField::Subject, needle),
            SearchKey::Body(needle) => text(TextField::Body, needle),
            SearchKey::Text(needle) => text(TextField::Text, needle),
            SearchKey::Header(name, needle) => Some(IndexQuery::Header(
                fold(name.trim()),
                String::from_utf8_lossy(needle).into_owned(),
            )),
            SearchKey::SentBefore(date) => Some(IndexQuery::Sent(SentDay::Before(day(date)))),
            SearchKey::SentOn(date) => Some(IndexQuery::Sent(SentDay::On(day(date)))),
            SearchKey::SentSince(date) => Some(IndexQuery::Sent(SentDay::Since(day(date)))),
            _ => None,
        }
    }

    /// The UIDs of the mailbox's messages that answer the query.
    async fn run(
        &self,
        store: &Store,
        selected: &SelectedMailbox,
    ) -> Result<HashSet<i64>, StoreError> {
        let mailbox_id = selected.mailbox_id;
        let messages = selected.messages().len();
        Ok(match self {
            IndexQuery::Text(field, needle) => store
                .search_text(mailbox_id, messages, *field, needle)
                .await?
                .into_iter()
                .collect(),
            IndexQuery::Header(name, needle) => {
                let needle = fold(needle);
                store
                    .search_headers(mailbox_id, messages, &needle)
                    .await?
                    .into_iter()
                    .filter(|(_, headers)| header_has(headers, name, &needle))
                    .map(|(uid, _)| uid)
                    .collect()
            }
            IndexQuery::Sent(condition) => store
                .search_sent_day(mailbox_id, *condition)
                .await?
                .into_iter()
                .collect(),
        })
    }
}

fn collect_queries(key: &SearchKey, queries: &mut HashSet<IndexQuery>) {
    match key {
        SearchKey::Not(key) => collect_queries(key, queries),
        SearchKey::Or(a, b) => {
            collect_queries(a, queries);
            collect_queries(b, queries);
        }
        SearchKey::And(keys) => keys.iter().for_each(|key| collect_queries(key, queries)),
        key => {
            if let Some(query) = IndexQuery::of(key) {
                queries.insert(query);
            }
        }
    }
}

/// Whether the folded header text holds a field `name` (folded) whose value contains
/// `needle` (folded); with an empty needle, whether the field is there at all.
fn header_has(headers: &str, name: &str, needle: &str) -> bool {
    headers.lines().any(|line| {
        line.split_once(':').is_some_and(|(field, value)| {
            field.trim() == name && (needle.is_empty() || value.contains(needle))
        })
    })
}

struct Context<'a> {
    selected: &'a SelectedMailbox,
    seq: u32,
    message: &'a Message,
    /// Read only when a key needs them; a message without them matches none of those.
    details: Option<Details>,
    answers: &'a HashMap<IndexQuery, HashSet<i64>>,
    now: i64,
}

impl Context<'_> {
    fn matches(&self, key: &SearchKey) -> bool {
        let flag = |bit: i64| self.message.has(bit);
        let size = self.details.map(|d| d.size as u64);
        let date = self.details.map(|d| d.internal_date);
        let day = date.and_then(|date| Date::from_days_since_unix_epoch(date.div_euclid(86_400)));
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
            // No message is \Recent in this server (IMAP4rev2 dropped it), so NEW
            // (RECENT UNSEEN) matches nothing and OLD (NOT RECENT) everything.
            SearchKey::Recent | SearchKey::New => false,
            SearchKey::Old => true,
            SearchKey::Keyword(word) => self.has_keyword(word),
            SearchKey::Unkeyword(word) => !self.has_keyword(word),
            SearchKey::Larger(n) => size.is_some_and(|size| size > *n),
            SearchKey::Smaller(n) => size.is_some_and(|size| size < *n),
            SearchKey::Before(date) => day.is_some_and(|d| d < *date),
            SearchKey::On(date) => day.is_some_and(|d| d == *date),
            SearchKey::Since(date) => day.is_some_and(|d| d >= *date),
            SearchKey::Older(seconds) => {
                date.is_some_and(|date| date <= self.now - i64::from(*seconds))
            }
            SearchKey::Younger(seconds) => {
                date.is_some_and(|date| date >= self.now - i64::from(*seconds))
            }
            // The entry name (RFC 7162 "/flags/\Seen") does not narrow the test: every
            // change of a message's flags takes the message's one mod-sequence.
            SearchKey::ModSeq { mod_sequence, .. } => self.message.modseq >= *mod_sequence,
            SearchKey::Uid(set) => self.in_set(set, true),
            SearchKey::SequenceSet(set) => self.in_set(set, false),
            SearchKey::Not(key) => !self.matches(key),
            SearchKey::Or(a, b) => self.matches(a) || self.matches(b),
            SearchKey::And(keys) => keys.iter().all(|k| self.matches(k)),
            key => IndexQuery::of(key)
                .and_then(|query| self.answers.get(&query))
                .is_some_and(|uids| uids.contains(&i64::from(self.message.uid))),
        }
    }

    fn has_keyword(&self, word: &str) -> bool {
        self.message
            .keywords
            .split(' ')
            .any(|k| k.eq_ignore_ascii_case(word))
    }

    fn in_set(&self, set: &MessageSet, uid: bool) -> bool {
        let set = match set {
            MessageSet::Set(set) => set,
            MessageSet::SavedResult => {
                return self
                    .selected
                    .search
                    .saved
                    .binary_search(&self.message.uid)
                    .is_ok();
            }
        };
        if uid {
            set.contains(self.message.uid, self.selected.largest_uid())
        } else {
            set.contains(self.seq, self.selected.len() as u32)
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_matched_by_name_then_value() {
        let headers = "from: bob <bob@example.net>\nx-spam-flag: yes\nsubject: re: x-spam-flag\n";
        assert!(header_has(headers, "x-spam-flag", "yes"));
        assert!(header_has(headers, "x-spam-flag", ""));
        assert!(!header_has(headers, "x-spam-flag", "no"));
        assert!(!header_has(headers, "subject", "bob"));
        assert!(header_has(headers, "subject", "x-spam"));
        assert!(!header_has(headers, "x-spam", ""));
    }

    #[test]
    fn charsets() {
        assert!(charset_supported("utf-8") && charset_supported("US-ASCII"));
        assert!(!charset_supported("ISO-2022-JP") && !charset_supported("UTF8"));
    }
}
