//! FETCH and UID FETCH: flags, UID, sizes, dates and whole-message / header / text
//! sections. A non-PEEK body fetch sets `\Seen` and reports the new flags.
//!
//! ```text
//! C: a3 FETCH 1 (FLAGS BODY[]<0.10>)
//! S: * 1 FETCH (FLAGS (\Seen) BODY[]<0> {10}
//! S: Return-Pat)
//! S: a3 OK FETCH completed
//! ```

use postcell_imap_proto::DateTime;
use postcell_imap_proto::command::{FetchAttribute, FetchCommand, Partial, Section, SectionText};
use postcell_imap_proto::response::{Code, Data, FetchItem, StatusResponse};
use postcell_store::{FlagChange, FlagOperation, UidRanges, flags};

use crate::selected::{SelectedMailbox, flag_list};
use crate::session::{Login, Session};

pub(crate) async fn fetch(
    session: &mut Session,
    tag: String,
    login: &Login,
    selected: &mut SelectedMailbox,
    fetch: FetchCommand,
) {
    let Some(indexes) = selected.resolve(&fetch.set, fetch.uid) else {
        session.write_status(StatusResponse::bad(
            Some(tag),
            "Invalid message sequence number",
        ));
        return;
    };
    let mut attributes = fetch.items.attributes();
    if fetch.uid && !attributes.contains(&FetchAttribute::Uid) {
        attributes.insert(0, FetchAttribute::Uid);
    }
    let unsupported = attributes.iter().find(|a| {
        matches!(
            a,
            FetchAttribute::Envelope
                | FetchAttribute::Body
                | FetchAttribute::BodyStructure
                | FetchAttribute::Binary { .. }
                | FetchAttribute::BinarySize { .. }
        ) || matches!(a, FetchAttribute::BodySection { section, .. } if !section.part.is_empty())
    });
    if unsupported.is_some() {
        session.write_status(StatusResponse::no(
            Some(tag),
            "ENVELOPE, BODYSTRUCTURE, BINARY and MIME part sections are not implemented yet",
        ));
        return;
    }
    let sets_seen = !selected.read_only
        && attributes.iter().any(|a| {
            matches!(
                a,
                FetchAttribute::Rfc822
                    | FetchAttribute::Rfc822Text
                    | FetchAttribute::BodySection { peek: false, .. }
            )
        });
    let needs_blob = attributes.iter().any(|a| {
        matches!(
            a,
            FetchAttribute::Rfc822
                | FetchAttribute::Rfc822Header
                | FetchAttribute::Rfc822Text
                | FetchAttribute::BodySection { .. }
        )
    });
    let store = session.store().clone();
    if sets_seen {
        let unseen: Vec<i64> = indexes
            .iter()
            .map(|&i| &selected.messages[i])
            .filter(|m| m.flags & flags::SEEN == 0)
            .map(|m| m.uid)
            .collect();
        if !unseen.is_empty() {
            let change = FlagChange {
                operation: FlagOperation::Add,
                flags: flags::SEEN,
                keywords: Vec::new(),
                unchanged_since: None,
            };
            match store
                .store_flags(
                    login.account_id,
                    selected.mailbox_id,
                    &UidRanges::from_uids(&unseen),
                    &change,
                )
                .await
            {
                Ok(outcome) => {
                    for updated in outcome.updated {
                        if let Some(known) =
                            selected.messages.iter_mut().find(|m| m.uid == updated.uid)
                        {
                            *known = updated;
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot set \\Seen"),
            }
        }
    }
    for index in indexes {
        let meta = selected.messages[index].clone();
        let blob = if needs_blob {
            match store.get_blob(&meta.blob_id).await {
                Ok(blob) => Some(blob),
                Err(error) => {
                    tracing::warn!(%error, uid = meta.uid, "cannot read message blob");
                    session.write_status(
                        StatusResponse::no(Some(tag), "Message data unavailable")
                            .with_code(Code::Unavailable),
                    );
                    return;
                }
            }
        } else {
            None
        };
        let blob = blob.as_deref().unwrap_or_default();
        let mut items = Vec::new();
        let mut flags_reported = false;
        for attribute in &attributes {
            match attribute {
                FetchAttribute::Flags => {
                    flags_reported = true;
                    items.push(FetchItem::Flags(flag_list(&meta)));
                }
                FetchAttribute::Uid => items.push(FetchItem::Uid(meta.uid as u32)),
                FetchAttribute::Rfc822Size => items.push(FetchItem::Rfc822Size(meta.size as u64)),
                FetchAttribute::ModSeq => items.push(FetchItem::ModSeq(meta.modseq as u64)),
                FetchAttribute::InternalDate => {
                    if let Some(date) = DateTime::from_unix_timestamp(meta.internal_date, 0) {
                        items.push(FetchItem::InternalDate(date));
                    }
                }
                FetchAttribute::Rfc822 => items.push(FetchItem::Rfc822(Some(blob.to_vec()))),
                FetchAttribute::Rfc822Header => {
                    items.push(FetchItem::Rfc822Header(Some(split(blob).0.to_vec())))
                }
                FetchAttribute::Rfc822Text => {
                    items.push(FetchItem::Rfc822Text(Some(split(blob).1.to_vec())))
                }
                FetchAttribute::BodySection {
                    section, partial, ..
                } => {
                    let data = section_text(blob, section);
                    let (origin, data) = match partial {
                        Some(Partial { offset, length }) => {
                            let start = (*offset as usize).min(data.len());
                            let end = start.saturating_add(*length as usize).min(data.len());
                            (Some(*offset), data[start..end].to_vec())
                        }
                        None => (None, data),
                    };
                    items.push(FetchItem::BodySection {
                        section: section.clone(),
                        origin,
                        data: Some(data),
                    });
                }
                _ => {}
            }
        }
        if sets_seen && !flags_reported {
            items.push(FetchItem::Flags(flag_list(&meta)));
        }
        session.write_data(&Data::Fetch {
            seq: index as u32 + 1,
            items,
        });
    }
    session.write_status(StatusResponse::ok(Some(tag), "FETCH completed"));
}

/// The header (with its blank line) and the body of a message.
fn split(message: &[u8]) -> (&[u8], &[u8]) {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| message.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(message.len());
    message.split_at(end)
}

/// A top-level section of the message (MIME part sections are not done yet).
fn section_text(message: &[u8], section: &Section) -> Vec<u8> {
    let (header, body) = split(message);
    match &section.text {
        None => message.to_vec(),
        Some(SectionText::Header) => header.to_vec(),
        Some(SectionText::Text) => body.to_vec(),
        Some(SectionText::Mime) => Vec::new(),
        Some(SectionText::HeaderFields(names)) => header_fields(header, names, true),
        Some(SectionText::HeaderFieldsNot(names)) => header_fields(header, names, false),
    }
}

/// The header fields named (or, with `keep = false`, not named), then a blank line.
fn header_fields(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut including = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let named = names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name.trim_ascii()));
            including = named == keep;
        }
        if including {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}
