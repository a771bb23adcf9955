//! The items of a FETCH response, and the envelope.
//!
//! ```text
//! S: * 12 FETCH (FLAGS (\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700"
//!     RFC822.SIZE 4286 ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)"
//!     "IMAP4rev2 WG mtg summary and minutes"
//!     (("Terry Gray" NIL "gray" "cac.washington.edu")) ...)
//!     BODY[HEADER.FIELDS (DATE FROM)] {57}
//! S: Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
//! S: From: ...
//! S: )
//! ```

use std::num::NonZeroU32;

use super::body::BodyStructure;
use super::{
    write_adjacent_or_nil, write_astring, write_atom, write_list, write_literal, write_literal8,
    write_nstring,
};
use crate::command::{Section, SectionText};
use crate::datetime::DateTime;
use crate::flag::Flag;
use crate::limits::Utf8Mode;

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`.
///
/// A group is written as RFC 9051 section 7.5.2 describes: an address with a `mailbox`
/// (the group name) and no `host` opens it, one with neither closes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub name: Option<Vec<u8>>,
    /// The source route; always `None` in practice.
    pub adl: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
}

/// `envelope`: the main header fields. Text is octets as they appear in the header (raw
/// 8-bit included, encoded words left encoded): it is sent quoted when it can be, as a
/// literal otherwise. Empty address lists are sent as `NIL`.
/// RFC 9051 asks for `sender` and `reply_to` to default to `from` when the message has
/// none: that is for the one who fills this in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub date: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub from: Vec<Address>,
    pub sender: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<Vec<u8>>,
    pub message_id: Option<Vec<u8>>,
}

fn nstring(out: &mut Vec<u8>, value: &Option<Vec<u8>>, utf8: Utf8Mode) {
    write_nstring(out, value.as_deref(), utf8);
}

impl Envelope {
    pub(crate) fn encode(&self, out: &mut Vec<u8>, utf8: Utf8Mode) {
        out.push(b'(');
        nstring(out, &self.date, utf8);
        out.push(b' ');
        nstring(out, &self.subject, utf8);
        for addresses in [
            &self.from,
            &self.sender,
            &self.reply_to,
            &self.to,
            &self.cc,
            &self.bcc,
        ] {
            out.push(b' ');
            write_adjacent_or_nil(out, addresses, |out, address| {
                out.push(b'(');
                nstring(out, &address.name, utf8);
                out.push(b' ');
                nstring(out, &address.adl, utf8);
                out.push(b' ');
                nstring(out, &address.mailbox, utf8);
                out.push(b' ');
                nstring(out, &address.host, utf8);
                out.push(b')');
            });
        }
        out.push(b' ');
        nstring(out, &self.in_reply_to, utf8);
        out.push(b' ');
        nstring(out, &self.message_id, utf8);
        out.push(b')');
    }
}

/// One item of a FETCH response (`msg-att`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// Flags, `\Recent` included for IMAP4rev1 clients.
    Flags(Vec<Flag>),
    InternalDate(DateTime),
    Rfc822Size(u64),
    Uid(u32),
    /// RFC 7162: `MODSEQ (n)`.
    ModSeq(u64),
    Envelope(Box<Envelope>),
    /// `BODY`: the structure without extension data.
    Body(Box<BodyStructure>),
    /// `BODYSTRUCTURE`: the structure with its extension data.
    BodyStructure(Box<BodyStructure>),
    /// `BODY[section]<origin> data`: `origin` is the offset of a partial fetch; `None` data
    /// is `NIL`. The data is always sent as a literal.
    BodySection {
        section: Section,
        origin: Option<u64>,
        data: Option<Vec<u8>>,
    },
    /// `BINARY[part]<origin> data` (RFC 3516): a literal8 when the data holds NUL.
    Binary {
        part: Vec<NonZeroU32>,
        origin: Option<u64>,
        data: Option<Vec<u8>>,
    },
    /// `BINARY.SIZE[part] n` (RFC 3516).
    BinarySize {
        part: Vec<NonZeroU32>,
        size: u64,
    },
    /// IMAP4rev1 `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`.
    Rfc822(Option<Vec<u8>>),
    Rfc822Header(Option<Vec<u8>>),
    Rfc822Text(Option<Vec<u8>>),
}

fn write_part(out: &mut Vec<u8>, part: &[NonZeroU32]) {
    for (i, n) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(n.to_string().as_bytes());
    }
}

/// `"[" [section-spec] "]"`
pub(crate) fn write_section(out: &mut Vec<u8>, section: &Section, utf8: Utf8Mode) {
    out.push(b'[');
    write_part(out, &section.part);
    if let Some(text) = &section.text {
        if !section.part.is_empty() {
            out.push(b'.');
        }
        let header_list = |out: &mut Vec<u8>, keyword: &str, names: &[String]| {
            out.extend_from_slice(keyword.as_bytes());
            out.push(b' ');
            write_list(out, names, |out, name| {
                write_astring(out, name.as_bytes(), utf8)
            });
        };
        match text {
            SectionText::Header => out.extend_from_slice(b"HEADER"),
            SectionText::HeaderFields(names) => header_list(out, "HEADER.FIELDS", names),
            SectionText::HeaderFieldsNot(names) => header_list(out, "HEADER.FIELDS.NOT", names),
            SectionText::Text => out.extend_from_slice(b"TEXT"),
            SectionText::Mime => out.extend_from_slice(b"MIME"),
        }
    }
    out.push(b']');
}

fn write_data(out: &mut Vec<u8>, data: &Option<Vec<u8>>) {
    match data {
        Some(data) => write_literal(out, data),
        None => out.extend_from_slice(b"NIL"),
    }
}

impl FetchItem {
    pub(crate) fn encode(&self, out: &mut Vec<u8>, utf8: Utf8Mode) {
        match self {
            FetchItem::Flags(flags) => {
                out.extend_from_slice(b"FLAGS ");
                write_list(out, flags, |out, flag| write_atom(out, &flag.to_string()));
            }
            FetchItem::InternalDate(date) => {
                out.extend_from_slice(format!("INTERNALDATE \"{date}\"").as_bytes())
            }
            FetchItem::Rfc822Size(size) => {
                out.extend_from_slice(format!("RFC822.SIZE {size}").as_bytes())
            }
            FetchItem::Uid(uid) => out.extend_from_slice(format!("UID {uid}").as_bytes()),
            FetchItem::ModSeq(n) => out.extend_from_slice(format!("MODSEQ ({n})").as_bytes()),
            FetchItem::Envelope(envelope) => {
                out.extend_from_slice(b"ENVELOPE ");
                envelope.encode(out, utf8);
            }
            FetchItem::Body(body) => {
                out.extend_from_slice(b"BODY ");
                body.encode(out, false, utf8);
            }
            FetchItem::BodyStructure(body) => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                body.encode(out, true, utf8);
            }
            FetchItem::BodySection {
                section,
                origin,
                data,
            } => {
                out.extend_from_slice(b"BODY");
                write_section(out, section, utf8);
                if let Some(origin) = origin {
                    out.extend_from_slice(format!("<{origin}>").as_bytes());
                }
                out.push(b' ');
                write_data(out, data);
            }
            FetchItem::Binary { part, origin, data } => {
                out.extend_from_slice(b"BINARY[");
                write_part(out, part);
                out.push(b']');
                if let Some(origin) = origin {
                    out.extend_from_slice(format!("<{origin}>").as_bytes());
                }
                out.push(b' ');
                match data {
                    Some(data) if data.contains(&0) => write_literal8(out, data),
                    _ => write_data(out, data),
                }
            }
            FetchItem::BinarySize { part, size } => {
                out.extend_from_slice(b"BINARY.SIZE[");
                write_part(out, part);
                out.extend_from_slice(format!("] {size}").as_bytes());
            }
            FetchItem::Rfc822(data) => {
                out.extend_from_slice(b"RFC822 ");
                write_data(out, data);
            }
            FetchItem::Rfc822Header(data) => {
                out.extend_from_slice(b"RFC822.HEADER ");
                write_data(out, data);
            }
            FetchItem::Rfc822Text(data) => {
                out.extend_from_slice(b"RFC822.TEXT ");
                write_data(out, data);
            }
        }
    }
}
