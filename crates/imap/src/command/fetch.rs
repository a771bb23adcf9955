//! FETCH and UID FETCH (RFC 9051 section 6.4.5), with BINARY (RFC 3516) and
//! CONDSTORE/QRESYNC's CHANGEDSINCE and VANISHED modifiers (RFC 7162).
//!
//! ```text
//! C: a3 FETCH 1 (FLAGS ENVELOPE BODY.PEEK[1.MIME] BINARY[2]<0.64>)
//! S: * 1 FETCH (FLAGS (\Seen) ENVELOPE (...) BODY[1.MIME] {41}
//! S: Content-Type: text/plain; charset=utf-8
//! S:  BINARY[2]<0> {64}
//! S: ...)
//! S: a3 OK FETCH completed
//! C: a4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)
//! S: * VANISHED (EARLIER) 300:310
//! S: * 2 FETCH (UID 4 FLAGS (\Deleted) MODSEQ (12350))
//! S: a4 OK FETCH completed
//! ```
//!
//! Flags, UIDs and MODSEQs come from the session's own map, so `UID FETCH 1:* (FLAGS)`
//! reads nothing from the store. Everything else is read in batches of
//! [`BATCH`] messages: one query for their sizes and dates, one for their cached
//! summaries (envelope and structure, so many ENVELOPEs parse no message). Bodies are
//! read one message at a time, each with its size and date in one query, so a FETCH of
//! a whole mailbox never holds more than one body, and the one-message FETCH a client
//! sends per message it downloads is one query. A message stored without a summary gets
//! one computed and saved.

use std::borrow::Cow;

use postcell_imap_proto::command::{FetchAttribute, FetchCommand, Partial, Section, SectionText};
use postcell_imap_proto::response::{Code, Data, FetchItem, StatusResponse};
use postcell_imap_proto::{DateTime, MessageSet, SequenceSet};
use postcell_mime::{BinaryError, SectionSpec, Summary};
use postcell_store::{FlagChange, FlagOperation, MessageMeta, Store, UidRanges, flags};

use crate::reply::{self, unavailable};
use crate::selected::SelectedMailbox;
use crate::session::{Enabled, Session};
use crate::state::Login;
use crate::summary::{self, body_structure, envelope};

/// Messages whose metadata and summaries are read with one query each.
const BATCH: usize = 256;

/// What the attributes of one FETCH need from the store.
#[derive(Debug, Clone, Copy, Default)]
struct Needs {
    /// Size, internal date, blob id.
    meta: bool,
    /// Envelope and structure (also for section offsets).
    summary: bool,
    /// The message itself.
    body: bool,
}

fn needs(attributes: &[FetchAttribute]) -> Needs {
    let mut needs = Needs::default();
    for attribute in attributes {
        match attribute {
            FetchAttribute::Flags | FetchAttribute::Uid | FetchAttribute::ModSeq => {}
            FetchAttribute::InternalDate | FetchAttribute::Rfc822Size => needs.meta = true,
            FetchAttribute::Envelope | FetchAttribute::Body | FetchAttribute::BodyStructure => {
                needs.summary = true
            }
            FetchAttribute::Rfc822 => needs.body = true,
            FetchAttribute::BodySection { section, .. }
                if section.part.is_empty() && section.text.is_none() =>
            {
                needs.body = true
            }
            FetchAttribute::Rfc822Header
            | FetchAttribute::Rfc822Text
            | FetchAttribute::BodySection { .. }
            | FetchAttribute::Binary { .. }
            | FetchAttribute::BinarySize { .. } => {
                needs.body = true;
                needs.summary = true;
            }
        }
    }
    // The blob id is in the metadata, and a missing summary is computed from the body.
    needs.meta |= needs.body || needs.summary;
    needs
}

/// Whether the attribute sets `\Seen` (RFC 9051 section 6.4.5: the non-PEEK forms).
fn sets_seen(attribute: &FetchAttribute) -> bool {
    matches!(
        attribute,
        FetchAttribute::Rfc822
            | FetchAttribute::Rfc822Text
            | FetchAttribute::BodySection { peek: false, .. }
            | FetchAttribute::Binary { peek: false, .. }
    )
}

/// How the FETCH ended, beyond the responses sent.
#[derive(Debug, Default)]
struct Outcome {
    /// Some messages were expunged by someone else and could not be sent.
    expunge_issued: bool,
    /// Some part has a transfer encoding that BINARY cannot undo (RFC 3516 4.3).
    unknown_cte: bool,
}

pub(crate) async fn fetch(
    session: &mut Session,
    tag: String,
    login: &Login,
    selected: &mut SelectedMailbox,
    command: FetchCommand,
) {
    let Some(mut indexes) = selected.resolve(&command.set, command.uid) else {
        return reply::bad_sequence(session, tag);
    };
    let mut attributes = command.items.attributes();
    if command.uid && !attributes.contains(&FetchAttribute::Uid) {
        attributes.insert(0, FetchAttribute::Uid);
    }
    if command.vanished && !session.enabled.qresync {
        // RFC 7162 section 3.2.6.
        session.write_status(StatusResponse::bad(
            Some(tag),
            "VANISHED needs QRESYNC to be enabled first",
        ));
        return;
    }
    if let Some(since) = command.changed_since {
        // RFC 7162 section 3.1.4.1: only what changed, with its MODSEQ.
        session.enabled.condstore = true;
        if !attributes.contains(&FetchAttribute::ModSeq) {
            attributes.push(FetchAttribute::ModSeq);
        }
        indexes.retain(|&i| selected.message(i).is_some_and(|m| m.modseq > since));
        if command.vanished
            && let Err(error) = vanished(session, selected, &command.set, since).await
        {
            return unavailable(session, tag, &error);
        }
    }
    if attributes.contains(&FetchAttribute::ModSeq) {
        session.enabled.condstore = true;
    }
    let store = session.store().clone();
    let mut seen_now = Vec::new();
    if !selected.read_only && attributes.iter().any(sets_seen) {
        match mark_seen(&store, login, selected, &indexes).await {
            Ok(marked) => seen_now = marked,
            Err(error) => return unavailable(session, tag, &error),
        }
    }
    let needs = needs(&attributes);
    let mut outcome = Outcome::default();
    for batch in indexes.chunks(BATCH) {
        if let Err(error) = fetch_batch(
            session,
            &store,
            selected,
            batch,
            &attributes,
            needs,
            &seen_now,
            &mut outcome,
        )
        .await
        {
            return unavailable(session, tag, &error);
        }
        let _ = session.flush_if_large().await;
    }
    let status = if outcome.unknown_cte {
        StatusResponse::no(Some(tag), "Unknown Content-Transfer-Encoding in some part")
            .with_code(Code::UnknownCte)
    } else if outcome.expunge_issued {
        StatusResponse::no(
            Some(tag),
            "Some of the messages were expunged by another session",
        )
        .with_code(Code::ExpungeIssued)
    } else {
        StatusResponse::ok(Some(tag), "FETCH completed")
    };
    session.write_status(status);
}

/// `* VANISHED (EARLIER)` for the UIDs of `set` expunged after `since`.
async fn vanished(
    session: &mut Session,
    selected: &SelectedMailbox,
    set: &MessageSet,
    since: u64,
) -> Result<(), postcell_store::StoreError> {
    let MessageSet::Set(set) = set else {
        return Ok(());
    };
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let expunged = session
        .store()
        .expunged_since(selected.mailbox_id, since)
        .await?;
    // `*` reaches past the last message here: tombstones can be above every UID left.
    let uids = expunged
        .iter()
        .filter_map(|&uid| u32::try_from(uid).ok())
        .filter(|&uid| set.contains(uid, u32::MAX));
    if let Some(uids) = SequenceSet::from_numbers(uids) {
        session.write_data(&Data::Vanished {
            earlier: true,
            uids,
        });
    }
    Ok(())
}

/// Sets `\Seen` on the messages that lack it, in one store call; the indexes whose
/// flags changed.
async fn mark_seen(
    store: &Store,
    login: &Login,
    selected: &mut SelectedMailbox,
    indexes: &[usize],
) -> postcell_store::Result<Vec<usize>> {
    let unseen: Vec<i64> = indexes
        .iter()
        .filter_map(|&i| selected.message(i))
        .filter(|m| !m.expunged && !m.has(flags::SEEN))
        .map(|m| i64::from(m.uid))
        .collect();
    if unseen.is_empty() {
        return Ok(Vec::new());
    }
    let change = FlagChange {
        operation: FlagOperation::Add,
        flags: flags::SEEN,
        keywords: Vec::new(),
        unchanged_since: None,
    };
    let outcome = store
        .store_flags(
            login.account_id,
            selected.mailbox_id,
            &UidRanges::from_uids(&unseen),
            &change,
        )
        .await?;
    let mut changed: Vec<usize> = outcome
        .updated
        .iter()
        .filter_map(|row| selected.update_own(row.uid, row.modseq, row.flags, &row.keywords))
        .collect();
    changed.sort_unstable();
    Ok(changed)
}

#[allow(clippy::too_many_arguments)]
async fn fetch_batch(
    session: &mut Session,
    store: &Store,
    selected: &SelectedMailbox,
    batch: &[usize],
    attributes: &[FetchAttribute],
    needs: Needs,
    seen_now: &[usize],
    outcome: &mut Outcome,
) -> postcell_store::Result<()> {
    let uids: Vec<i64> = batch
        .iter()
        .filter_map(|&i| selected.message(i))
        .filter(|m| !m.expunged)
        .map(|m| i64::from(m.uid))
        .collect();
    let ranges = UidRanges::from_uids(&uids);
    // With bodies, each message's metadata comes with its body, one message at a time.
    let metas = if needs.meta && !needs.body && !uids.is_empty() {
        store.message_meta(selected.mailbox_id, &ranges).await?
    } else {
        Vec::new()
    };
    let summaries = if needs.summary && !uids.is_empty() {
        store
            .message_summaries(selected.mailbox_id, &ranges)
            .await?
    } else {
        Vec::new()
    };
    for &index in batch {
        let Some(message) = selected.message(index) else {
            continue;
        };
        let mut body = None;
        let read_with_body;
        let meta = if message.expunged {
            None
        } else if needs.body {
            let found = store
                .message_with_body(selected.mailbox_id, i64::from(message.uid))
                .await?;
            (read_with_body, body) = found.unzip();
            read_with_body.as_ref()
        } else {
            metas
                .binary_search_by_key(&i64::from(message.uid), |m| m.uid)
                .ok()
                .map(|at| &metas[at])
        };
        if message.expunged || (needs.meta && meta.is_none()) {
            outcome.expunge_issued = true;
            continue;
        }
        let summary = match (needs.summary, meta) {
            (true, Some(meta)) => {
                let cached = summaries
                    .binary_search_by_key(&meta.uid, |(uid, _)| *uid)
                    .ok()
                    .and_then(|at| summaries[at].1.as_deref());
                Some(
                    summary::cached_or_computed(
                        store,
                        selected.mailbox_id,
                        meta,
                        cached,
                        &mut body,
                    )
                    .await?,
                )
            }
            _ => None,
        };
        let seen_changed = seen_now.binary_search(&index).is_ok();
        let Some(items) = items(
            attributes,
            message,
            meta,
            body.as_deref(),
            summary.as_ref(),
            seen_changed,
            session.enabled,
        ) else {
            outcome.unknown_cte = true;
            continue;
        };
        session.write_data(&Data::Fetch {
            seq: index as u32 + 1,
            items,
        });
        let _ = session.flush_if_large().await;
    }
    Ok(())
}

fn mime_spec(section: &Section) -> SectionSpec {
    SectionSpec {
        part: section.part.iter().map(|n| n.get()).collect(),
        text: section.text.as_ref().map(|text| match text {
            SectionText::Header => postcell_mime::SectionText::Header,
            SectionText::HeaderFields(names) => {
                postcell_mime::SectionText::HeaderFields(names.clone())
            }
            SectionText::HeaderFieldsNot(names) => {
                postcell_mime::SectionText::HeaderFieldsNot(names.clone())
            }
            SectionText::Text => postcell_mime::SectionText::Text,
            SectionText::Mime => postcell_mime::SectionText::Mime,
        }),
    }
}

/// `<offset.length>` of `data`; past the end is empty (RFC 9051 section 6.4.5).
fn partial(data: &[u8], partial: &Option<Partial>) -> (Option<u64>, Vec<u8>) {
    match partial {
        Some(Partial { offset, length }) => {
            let start = usize::try_from(*offset)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let end = start
                .saturating_add(usize::try_from(*length).unwrap_or(usize::MAX))
                .min(data.len());
            (Some(*offset), data[start..end].to_vec())
        }
        None => (None, data.to_vec()),
    }
}

/// The items of one message's FETCH response, in the order asked; `None` when a
/// BINARY item meets a transfer encoding it cannot undo.
fn items(
    attributes: &[FetchAttribute],
    message: &crate::selected::Message,
    meta: Option<&MessageMeta>,
    body: Option<&[u8]>,
    summary: Option<&Summary>,
    seen_changed: bool,
    enabled: Enabled,
) -> Option<Vec<FetchItem>> {
    let (condstore, imap4rev2) = (enabled.condstore, enabled.imap4rev2);
    let raw = body.unwrap_or_default();
    let section = |spec: &SectionSpec| -> Option<Cow<'_, [u8]>> {
        summary.and_then(|summary| postcell_mime::section(raw, summary, spec))
    };
    let binary = |part: &[std::num::NonZeroU32]| -> Result<Option<Cow<'_, [u8]>>, ()> {
        let Some(summary) = summary else {
            return Ok(Some(Cow::Borrowed(raw)));
        };
        let part: Vec<u32> = part.iter().map(|n| n.get()).collect();
        match postcell_mime::decode_binary(raw, summary, &part) {
            Ok(data) => Ok(Some(data)),
            Err(BinaryError::NoSuchPart) => Ok(None),
            Err(BinaryError::UnknownCte { .. }) => Err(()),
        }
    };
    let mut items = Vec::with_capacity(attributes.len() + 2);
    for attribute in attributes {
        let item = match attribute {
            FetchAttribute::Flags => FetchItem::Flags(message.flag_list()),
            FetchAttribute::Uid => FetchItem::Uid(message.uid),
            FetchAttribute::ModSeq => FetchItem::ModSeq(message.modseq),
            FetchAttribute::InternalDate => {
                let Some(date) =
                    meta.and_then(|m| DateTime::from_unix_timestamp(m.internal_date, 0))
                else {
                    continue;
                };
                FetchItem::InternalDate(date)
            }
            FetchAttribute::Rfc822Size => {
                FetchItem::Rfc822Size(meta.map_or(0, |m| m.size.max(0) as u64))
            }
            FetchAttribute::Envelope => FetchItem::Envelope(Box::new(envelope(&summary?.envelope))),
            FetchAttribute::Body => {
                FetchItem::Body(Box::new(body_structure(&summary?.body, imap4rev2)))
            }
            FetchAttribute::BodyStructure => {
                FetchItem::BodyStructure(Box::new(body_structure(&summary?.body, imap4rev2)))
            }
            FetchAttribute::Rfc822 => FetchItem::Rfc822(Some(raw.to_vec())),
            FetchAttribute::Rfc822Header => FetchItem::Rfc822Header(
                section(&SectionSpec {
                    part: Vec::new(),
                    text: Some(postcell_mime::SectionText::Header),
                })
                .map(Cow::into_owned),
            ),
            FetchAttribute::Rfc822Text => FetchItem::Rfc822Text(
                section(&SectionSpec {
                    part: Vec::new(),
                    text: Some(postcell_mime::SectionText::Text),
                })
                .map(Cow::into_owned),
            ),
            FetchAttribute::BodySection {
                section: requested,
                partial: range,
                ..
            } => {
                let data = if requested.part.is_empty() && requested.text.is_none() {
                    Some(Cow::Borrowed(raw))
                } else {
                    section(&mime_spec(requested))
                };
                let (origin, data) = match data {
                    Some(data) => {
                        let (origin, data) = partial(&data, range);
                        (origin, Some(data))
                    }
                    None => (range.map(|p| p.offset), None),
                };
                FetchItem::BodySection {
                    section: requested.clone(),
                    origin,
                    data,
                }
            }
            FetchAttribute::Binary {
                part,
                partial: range,
                ..
            } => {
                let (origin, data) = match binary(part).ok()? {
                    Some(data) => {
                        let (origin, data) = partial(&data, range);
                        (origin, Some(data))
                    }
                    None => (range.map(|p| p.offset), None),
                };
                FetchItem::Binary {
                    part: part.clone(),
                    origin,
                    data,
                }
            }
            FetchAttribute::BinarySize { part } => FetchItem::BinarySize {
                part: part.clone(),
                size: binary(part).ok()?.map_or(0, |data| data.len() as u64),
            },
        };
        items.push(item);
    }
    if seen_changed {
        // RFC 9051 section 6.4.5: flags changed by the fetch are reported with it.
        if !attributes.contains(&FetchAttribute::Flags) {
            items.push(FetchItem::Flags(message.flag_list()));
        }
        // RFC 7162 section 3.1: and so is the new MODSEQ, once CONDSTORE is on.
        if condstore && !attributes.contains(&FetchAttribute::ModSeq) {
            items.push(FetchItem::ModSeq(message.modseq));
        }
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_fetches_cut_and_stop_at_the_end() {
        let range = |offset, length| Some(Partial { offset, length });
        assert_eq!(
            partial(b"hello world", &range(0, 5)),
            (Some(0), b"hello".to_vec())
        );
        assert_eq!(
            partial(b"hello world", &range(6, 100)),
            (Some(6), b"world".to_vec())
        );
        assert_eq!(partial(b"hello", &range(10, 5)), (Some(10), Vec::new()));
        assert_eq!(partial(b"hello", &None), (None, b"hello".to_vec()));
    }

    #[test]
    fn what_each_attribute_needs() {
        let n = needs(&[FetchAttribute::Flags, FetchAttribute::Uid]);
        assert!(!n.meta && !n.summary && !n.body);
        let n = needs(&[FetchAttribute::Envelope]);
        assert!(n.meta && n.summary && !n.body);
        let n = needs(&[FetchAttribute::BodySection {
            peek: true,
            section: Section::default(),
            partial: None,
        }]);
        assert!(n.body && !n.summary);
    }
}
