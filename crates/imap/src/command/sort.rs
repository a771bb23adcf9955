//! SORT and UID SORT (RFC 5256), with DISPLAYFROM / DISPLAYTO (RFC 5957) and ESORT's
//! return options (RFC 5267); and the per-message fields SORT and THREAD compare.
//!
//! The search keys are evaluated as SEARCH evaluates them. The fields come from the
//! summary cached with each message (its ENVELOPE), never from the blob, except for a
//! message stored before summaries existed, which is summarized once and its summary
//! kept.
//!
//! ```text
//! C: A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL
//! S: * SORT 5 3 4 1 2
//! S: A283 OK SORT completed
//! C: A284 UID SORT RETURN (MIN COUNT) (ARRIVAL) UTF-8 UNSEEN
//! S: * ESEARCH (TAG "A284") UID MIN 12 COUNT 3
//! ```
//!
//! Strings compare as RFC 5256 asks (i;ascii-casemap: ASCII letters without case, other
//! octets as they are); display names (RFC 5957) compare in Unicode lower case.

use std::cmp::Ordering;

use postcell_imap_proto::command::{SortCommand, SortCriterion, SortKey};
use postcell_imap_proto::response::{Data, StatusResponse};
use postcell_mime::{Address, Envelope, decode_header_text, sent_date};
use postcell_store::{Store, StoreError, UidRanges, fold};

use crate::command::search::{
    bad_charset, charset_supported, esearch, highest_modseq, matching, uses_modseq,
};
use crate::reply::unavailable;
use crate::selected::SelectedMailbox;
use crate::session::Session;
use crate::summary;

/// Summaries read per query, so that sorting a large mailbox never holds them all.
const SUMMARY_BATCH: usize = 500;

pub(crate) async fn sort(
    session: &mut Session,
    tag: String,
    selected: &mut SelectedMailbox,
    command: SortCommand,
) {
    let save = command.return_options.is_some_and(|o| o.save);
    if !charset_supported(&command.charset) {
        if save {
            selected.search.saved.clear();
        }
        return bad_charset(session, tag);
    }
    let store = session.store().clone();
    let sorted = match sorted(&store, selected, &command).await {
        Ok(sorted) => sorted,
        Err(error) => {
            if save {
                selected.search.saved.clear();
            }
            return unavailable(session, tag, &error);
        }
    };
    metrics::counter!("postcell_imap_search_total", "command" => "sort").increment(1);
    let numbers = selected.numbers(&sorted, command.uid);
    let with_modseq = command.search.iter().any(uses_modseq);
    match command.return_options {
        None => {
            let mod_sequence = with_modseq
                .then(|| highest_modseq(selected, &sorted))
                .flatten();
            session.write_data(&Data::Sort {
                numbers,
                mod_sequence,
            });
        }
        Some(options) => {
            if let Some(mut response) =
                esearch(selected, &sorted, &numbers, options, with_modseq, true)
            {
                response.tag = Some(tag.clone());
                response.uid = command.uid;
                session.write_data(&Data::ESearch(response));
            }
        }
    }
    session.write_status(StatusResponse::ok(Some(tag), "SORT completed"));
}

/// The indexes of the matching messages in sorted order.
async fn sorted(
    store: &Store,
    selected: &mut SelectedMailbox,
    command: &SortCommand,
) -> Result<Vec<usize>, StoreError> {
    let found = matching(store, selected, &command.search).await?;
    let fields = message_fields(store, selected, &found).await?;
    let mut order: Vec<usize> = (0..found.len()).collect();
    // A stable sort on indexes in mailbox order: messages equal by every criterion
    // stay in message-number order (RFC 5256 section 3).
    order.sort_by(|&a, &b| compare(&command.criteria, &fields[a], &fields[b]));
    Ok(order.into_iter().map(|i| found[i]).collect())
}

fn compare(criteria: &[SortCriterion], a: &MessageFields, b: &MessageFields) -> Ordering {
    for criterion in criteria {
        let ordering = match criterion.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Date => a.sent.cmp(&b.sent),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Subject => a.sort_subject.cmp(&b.sort_subject),
            SortKey::From => a.from_mailbox.cmp(&b.from_mailbox),
            SortKey::To => a.to_mailbox.cmp(&b.to_mailbox),
            SortKey::Cc => a.cc_mailbox.cmp(&b.cc_mailbox),
            SortKey::DisplayFrom => a.display_from.cmp(&b.display_from),
            SortKey::DisplayTo => a.display_to.cmp(&b.display_to),
        };
        let ordering = if criterion.reverse {
            ordering.reverse()
        } else {
            ordering
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// What SORT and THREAD compare of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MessageFields {
    pub uid: i64,
    pub arrival: i64,
    pub size: i64,
    /// RFC 5256 section 2.2: the Date field in UTC, or the internal date when the field
    /// is missing or unreadable.
    pub sent: i64,
    /// RFC 5256 section 2.1, in UTF-8.
    pub base_subject: String,
    /// The base subject as SORT compares it (i;ascii-casemap).
    pub sort_subject: Vec<u8>,
    /// Whether removing re/fwd prefixes or trailers changed the subject (THREAD).
    pub is_reply: bool,
    /// `addr-mailbox` of the first address, i;ascii-casemap.
    pub from_mailbox: Vec<u8>,
    pub to_mailbox: Vec<u8>,
    pub cc_mailbox: Vec<u8>,
    /// RFC 5957: the display name of the first address, or its address, folded.
    pub display_from: String,
    pub display_to: String,
    pub message_id: Option<String>,
    pub in_reply_to: Option<Vec<u8>>,
}

impl MessageFields {
    fn new(uid: i64, arrival: i64, size: i64, envelope: &Envelope) -> MessageFields {
        let subject = envelope
            .subject
            .as_ref()
            .map(|s| decode_header_text(s.as_bytes()))
            .unwrap_or_default();
        let (base_subject, is_reply) = base_subject(&subject);
        MessageFields {
            uid,
            arrival,
            size,
            sent: envelope
                .date
                .as_ref()
                .and_then(|date| sent_date(date.as_bytes()))
                .map_or(arrival, |sent| sent.timestamp),
            sort_subject: ascii_casemap(base_subject.as_bytes()),
            base_subject,
            is_reply,
            from_mailbox: addr_mailbox(&envelope.from),
            to_mailbox: addr_mailbox(&envelope.to),
            cc_mailbox: addr_mailbox(&envelope.cc),
            display_from: display(&envelope.from),
            display_to: display(&envelope.to),
            message_id: envelope
                .message_id
                .as_ref()
                .and_then(|id| crate::command::thread::message_ids(id.as_bytes()).next()),
            in_reply_to: envelope.in_reply_to.as_ref().map(|v| v.as_bytes().to_vec()),
        }
    }
}

/// The fields of the messages at `indexes`, in the same order, from the cached
/// summaries.
pub(crate) async fn message_fields(
    store: &Store,
    selected: &SelectedMailbox,
    indexes: &[usize],
) -> Result<Vec<MessageFields>, StoreError> {
    let mut fields = Vec::with_capacity(indexes.len());
    for chunk in indexes.chunks(SUMMARY_BATCH) {
        let uids: Vec<i64> = chunk
            .iter()
            .map(|&i| i64::from(selected.messages()[i].uid))
            .collect();
        let ranges = UidRanges::from_uids(&uids);
        // Sizes and arrival dates are not in the session's view: read with the batch.
        let metas = store.message_meta(selected.mailbox_id, &ranges).await?;
        let summaries = store
            .message_summaries(selected.mailbox_id, &ranges)
            .await?;
        for &index in chunk {
            let uid = i64::from(selected.messages()[index].uid);
            let Ok(at) = metas.binary_search_by_key(&uid, |m| m.uid) else {
                // Expunged since it matched: it sorts as an empty message.
                fields.push(MessageFields::new(uid, 0, 0, &Envelope::default()));
                continue;
            };
            let meta = &metas[at];
            let cached = summaries
                .binary_search_by_key(&meta.uid, |(uid, _)| *uid)
                .ok()
                .and_then(|at| summaries[at].1.as_deref());
            let mut body = None;
            let envelope = match summary::cached_or_computed(
                store,
                selected.mailbox_id,
                meta,
                cached,
                &mut body,
            )
            .await
            {
                Ok(summary) => summary.envelope,
                // A message whose blob is gone sorts as an empty message.
                Err(StoreError::BlobMissing(_)) => Envelope::default(),
                Err(error) => return Err(error),
            };
            fields.push(MessageFields::new(
                meta.uid,
                meta.internal_date,
                meta.size,
                &envelope,
            ));
        }
    }
    Ok(fields)
}

/// i;ascii-casemap (RFC 4790): ASCII letters upper-cased, other octets unchanged.
fn ascii_casemap(text: &[u8]) -> Vec<u8> {
    text.to_ascii_uppercase()
}

/// The first address of a list that is not a group marker.
fn first_address(list: &[Address]) -> Option<&Address> {
    list.iter()
        .find(|a| !a.is_group_start() && !a.is_group_end())
}

/// RFC 5256: the `addr-mailbox` of the first address, or the empty string.
fn addr_mailbox(list: &[Address]) -> Vec<u8> {
    first_address(list)
        .and_then(|a| a.mailbox.as_ref())
        .map(|mailbox| ascii_casemap(mailbox.as_bytes()))
        .unwrap_or_default()
}

/// RFC 5957: the decoded display name of the first address if it has one, else
/// `mailbox@host`; the empty string when there is no address.
fn display(list: &[Address]) -> String {
    let Some(address) = first_address(list) else {
        return String::new();
    };
    let name = address
        .name
        .as_ref()
        .map(|name| decode_header_text(name.as_bytes()))
        .filter(|name| !name.trim().is_empty());
    let text = name.unwrap_or_else(|| {
        let part = |b: &Option<postcell_mime::Bytes>| {
            b.as_ref().map(|b| b.to_string_lossy()).unwrap_or_default()
        };
        format!("{}@{}", part(&address.mailbox), part(&address.host))
    });
    fold(text.trim())
}

/// RFC 5256 section 2.1: the base subject of a decoded subject, and whether a reply or
/// forward marker was removed (`Re:`, `Fwd:`, `(fwd)`, `[fwd: ...]`).
pub(crate) fn base_subject(subject: &str) -> (String, bool) {
    // (1) Blanks and folds become single spaces.
    let mut text = String::with_capacity(subject.len());
    let mut blank = false;
    for c in subject.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !blank {
                text.push(' ');
            }
            blank = true;
        } else {
            text.push(c);
            blank = false;
        }
    }
    let mut reply = false;
    loop {
        // (2) Trailers: "(fwd)" and blanks.
        loop {
            if text.ends_with(' ') {
                text.pop();
            } else if ends_with_ignore_case(&text, "(fwd)") {
                text.truncate(text.len() - "(fwd)".len());
                reply = true;
            } else {
                break;
            }
        }
        // (3) to (5): leaders and blobs, as long as any is left.
        loop {
            if let Some(rest) = text.strip_prefix(' ') {
                text = rest.to_owned();
            } else if let Some(end) = refwd_leader(&text) {
                text.drain(..end);
                reply = true;
            } else if let Some(end) = blob(&text, 0).filter(|&end| end < text.len()) {
                // (4) A leading blob goes when something is left after it.
                text.drain(..end);
            } else {
                break;
            }
        }
        // (6) "[fwd: ...]" around the whole subject.
        if text.len() >= "[fwd:]".len()
            && starts_with_ignore_case(&text, "[fwd:")
            && text.ends_with(']')
        {
            text = text["[fwd:".len()..text.len() - 1].to_owned();
            reply = true;
            continue;
        }
        return (text, reply);
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP` at byte `at`: where it ends.
fn blob(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at..)?;
    let inner = rest.strip_prefix('[')?;
    let close = inner.find(['[', ']'])?;
    if !inner[close..].starts_with(']') {
        return None;
    }
    let mut end = at + 1 + close + 1;
    while text[end..].starts_with(' ') {
        end += 1;
    }
    Some(end)
}

/// `*subj-blob subj-refwd`, where `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob]
/// ":"`: where the leader ends, if the subject starts with one.
fn refwd_leader(text: &str) -> Option<usize> {
    let mut at = 0;
    while let Some(end) = blob(text, at) {
        at = end;
    }
    let rest = &text[at..];
    let word = if starts_with_ignore_case(rest, "fwd") {
        3
    } else if starts_with_ignore_case(rest, "fw") || starts_with_ignore_case(rest, "re") {
        2
    } else {
        return None;
    };
    at += word;
    while text[at..].starts_with(' ') {
        at += 1;
    }
    if let Some(end) = blob(text, at) {
        at = end;
    }
    text[at..].starts_with(':').then_some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(subject: &str) -> (String, bool) {
        base_subject(subject)
    }

    #[test]
    fn base_subjects_rfc_5256_section_2_1() {
        assert_eq!(base("Lunch"), ("Lunch".into(), false));
        assert_eq!(base("Re: Lunch"), ("Lunch".into(), true));
        assert_eq!(base("RE:  re:Lunch  "), ("Lunch".into(), true));
        assert_eq!(base("Fwd: Lunch"), ("Lunch".into(), true));
        assert_eq!(base("FW: Lunch"), ("Lunch".into(), true));
        assert_eq!(base("Lunch (fwd)"), ("Lunch".into(), true));
        assert_eq!(base("Lunch (FWD) (fwd) "), ("Lunch".into(), true));
        assert_eq!(base("[fwd: Lunch]"), ("Lunch".into(), true));
        assert_eq!(base("[Fwd: Re: Lunch (fwd)]"), ("Lunch".into(), true));
        assert_eq!(base("Re[2]: Lunch"), ("Lunch".into(), true));
        assert_eq!(base("Re [2] : Lunch"), ("Lunch".into(), true));
        assert_eq!(base("[list] Re: Lunch"), ("Lunch".into(), true));
        assert_eq!(base("Re: [list] Re: Lunch"), ("Lunch".into(), true));
        // A blob alone is kept when nothing would be left.
        assert_eq!(base("[list]"), ("[list]".into(), false));
        assert_eq!(base("[list] Lunch"), ("Lunch".into(), false));
        assert_eq!(base("[a][b] Lunch"), ("Lunch".into(), false));
        // Not a leader: no colon, or another word.
        assert_eq!(base("Reply: Lunch"), ("Reply: Lunch".into(), false));
        assert_eq!(base("Rebate"), ("Rebate".into(), false));
        assert_eq!(base("Re"), ("Re".into(), false));
        assert_eq!(
            base("\tLunch \t on\r\n Friday"),
            ("Lunch on Friday".into(), false)
        );
        assert_eq!(base(""), ("".into(), false));
        assert_eq!(base("Re: "), ("".into(), true));
        assert_eq!(base("Re: 日本語 (fwd)"), ("日本語".into(), true));
        assert_eq!(base("[日本] Re: 件名"), ("件名".into(), true));
    }

    #[test]
    fn fields_from_an_envelope() {
        let summary = postcell_mime::summarize(
            b"From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.org>\r\nTo: undisclosed:;, bob@example.org\r\n\
Cc: x@example.org\r\nSubject: =?UTF-8?B?UmU6IOaXpeacrA==?=\r\n\
Date: Thu, 1 Jan 2026 00:00:00 +0900\r\nMessage-ID: <m1@example.org>\r\n\r\n",
        );
        let fields = MessageFields::new(7, 100, 42, &summary.envelope);
        assert_eq!(fields.base_subject, "日本");
        assert!(fields.is_reply);
        assert_eq!(fields.sent, 1_767_193_200);
        assert_eq!(fields.from_mailbox, b"ZOE");
        assert_eq!(fields.to_mailbox, b"BOB");
        assert_eq!(fields.cc_mailbox, b"X");
        assert_eq!(fields.display_from, "zoë");
        assert_eq!(fields.display_to, "bob@example.org");
        assert_eq!(fields.message_id.as_deref(), Some("<m1@example.org>"));
        let none = MessageFields::new(1, 100, 1, &Envelope::default());
        assert_eq!((none.sent, none.display_from.as_str()), (100, ""));
    }

    #[test]
    fn criteria_compare_in_order_and_reverse() {
        let a = MessageFields {
            size: 10,
            sort_subject: b"A".to_vec(),
            ..MessageFields::default()
        };
        let b = MessageFields {
            size: 20,
            sort_subject: b"A".to_vec(),
            ..MessageFields::default()
        };
        let c = |reverse, key| SortCriterion { reverse, key };
        assert_eq!(compare(&[c(false, SortKey::Size)], &a, &b), Ordering::Less);
        assert_eq!(
            compare(&[c(true, SortKey::Size)], &a, &b),
            Ordering::Greater
        );
        assert_eq!(
            compare(
                &[c(false, SortKey::Subject), c(true, SortKey::Size)],
                &a,
                &b
            ),
            Ordering::Greater
        );
        assert_eq!(
            compare(&[c(false, SortKey::Subject)], &a, &b),
            Ordering::Equal
        );
    }
}
