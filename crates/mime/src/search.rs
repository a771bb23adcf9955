//! The text of a message as SEARCH and the search index read it: decoded from its
//! transfer encodings, encoded words and charsets into UTF-8; and the sent date that
//! SENTBEFORE, SENTON, SENTSINCE and SORT DATE compare.

use mail_parser::HeaderValue;
use mail_parser::decoders::charsets::DecoderFnc;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;
use mail_parser::parsers::MessageStream;
use serde::{Deserialize, Serialize};

use crate::binary::decode_body;
use crate::header;
use crate::{BodyStructure, Content, Summary, summarize};

/// A message's searchable text, in UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchText {
    /// The fields of the message header, one `Name: value` line each, values decoded
    /// (encoded words, RFC 6532 UTF-8, and raw 8-bit or ISO-2022-JP text read in the
    /// message's charset).
    pub headers: String,
    /// The text of every `text/*` part, HTML reduced to its text, each decoded from its
    /// transfer encoding and charset; and the header and text of encapsulated messages.
    /// Parts are separated by a line feed.
    pub body: String,
    /// The decoded values of the From, To, Cc, Bcc and Subject fields, one line per
    /// field (a message may repeat them).
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    /// The References field as written, unfolded (message ids are not decoded), for
    /// threading.
    pub references: String,
    /// The first Date field, when it can be read.
    pub sent: Option<SentDate>,
}

/// A Date field (RFC 5322 section 3.3), read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentDate {
    /// The instant, in seconds since the Unix epoch.
    pub timestamp: i64,
    /// The day as written in the field, in the sender's zone, as days since 1970-01-01:
    /// SENTBEFORE and friends compare this day, "disregarding time and timezone" (RFC
    /// 9051 section 6.4.4).
    pub day: i64,
}

/// Reads a Date field value (`Tue, 1 Jul 2003 10:52:37 +0200`); `None` when it is not
/// a date.
pub fn sent_date(value: &[u8]) -> Option<SentDate> {
    let mut line = header::unfold(value);
    line.push(b'\n');
    match MessageStream::new(&line).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => Some(SentDate {
            timestamp: date.to_timestamp(),
            day: date.to_timestamp_local().div_euclid(86_400),
        }),
        _ => None,
    }
}

/// A header field value as text for display and sorting: encoded words decoded (RFC
/// 2047), UTF-8 and ISO-2022-JP octets read as such, other octets replaced.
pub fn decode_header_text(value: &[u8]) -> String {
    decode_header_value(value, None)
}

/// The searchable text of `raw`.
pub fn search_text(raw: &[u8]) -> SearchText {
    summarize(raw).search_text(raw)
}

impl Summary {
    /// The searchable text of `raw`, the message this summary describes.
    pub fn search_text(&self, raw: &[u8]) -> SearchText {
        let fallback = first_charset(&self.body).and_then(charset_decoder);
        let mut body = String::new();
        body_text(raw, &self.body, fallback, &mut body);
        let header = self.body.header_span.slice(raw).unwrap_or_default();
        let mut text = SearchText {
            body,
            ..SearchText::default()
        };
        for field in header::fields(header) {
            let Some(name) = field.name else { continue };
            let value = decode_header_value(field.value, fallback);
            text.headers.push_str(&String::from_utf8_lossy(name));
            text.headers.push_str(": ");
            text.headers.push_str(&value);
            text.headers.push('\n');
            let own = if field.is("From") {
                &mut text.from
            } else if field.is("To") {
                &mut text.to
            } else if field.is("Cc") {
                &mut text.cc
            } else if field.is("Bcc") {
                &mut text.bcc
            } else if field.is("Subject") {
                &mut text.subject
            } else {
                if field.is("References") && text.references.is_empty() {
                    text.references = String::from_utf8_lossy(&header::unfold(field.value)).into();
                } else if field.is("Date") && text.sent.is_none() {
                    text.sent = sent_date(field.value);
                }
                continue;
            };
            separate(own);
            own.push_str(&value);
        }
        text
    }
}

/// The charset a message's text is written in, guessed from its first text part: the
/// best reading of header octets that are not UTF-8 (Japanese mail often has raw
/// Shift_JIS or ISO-2022-JP in its Subject).
fn first_charset(entity: &BodyStructure) -> Option<&[u8]> {
    match &entity.content {
        Content::Text { .. } => entity.param("charset").map(|charset| charset.as_bytes()),
        Content::Multipart { parts } => parts.iter().find_map(first_charset),
        Content::Basic(_) | Content::Message { .. } => None,
    }
}

fn header_text(header: &[u8], fallback: Option<DecoderFnc>) -> String {
    let mut text = String::new();
    for field in header::fields(header) {
        let Some(name) = field.name else { continue };
        text.push_str(&String::from_utf8_lossy(name));
        text.push_str(": ");
        text.push_str(&decode_header_value(field.value, fallback));
        text.push('\n');
    }
    text
}

/// A header field value as text: its octets read as UTF-8 (or ISO-2022-JP when it has
/// escape sequences, or else the message's charset), then its encoded words decoded.
fn decode_header_value(value: &[u8], fallback: Option<DecoderFnc>) -> String {
    let mut unfolded = header::unfold(value);
    let text = if unfolded.contains(&0x1b) {
        charset_decoder(b"iso-2022-jp").map_or_else(
            || String::from_utf8_lossy(&unfolded).into_owned(),
            |decoder| decoder(&unfolded),
        )
    } else {
        match String::from_utf8(unfolded) {
            Ok(text) => text,
            Err(error) => {
                unfolded = error.into_bytes();
                match fallback {
                    Some(decoder) => decoder(&unfolded),
                    None => String::from_utf8_lossy(&unfolded).into_owned(),
                }
            }
        }
    };
    let mut line = text.into_bytes();
    line.push(b'\n');
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

fn body_text(raw: &[u8], entity: &BodyStructure, fallback: Option<DecoderFnc>, out: &mut String) {
    match &entity.content {
        Content::Multipart { parts } => {
            for part in parts {
                body_text(raw, part, fallback, out);
            }
        }
        Content::Message { body, .. } => {
            separate(out);
            out.push_str(&header_text(
                body.header_span.slice(raw).unwrap_or_default(),
                fallback,
            ));
            body_text(raw, body, fallback, out);
        }
        Content::Text { .. } => {
            let Some(encoded) = entity.body_span.slice(raw) else {
                return;
            };
            // A part in an unknown transfer encoding is searched as it is.
            let decoded = decode_body(entity, encoded).unwrap_or(encoded.into());
            let mut text = decode_text(&decoded, entity.param("charset").map(|c| c.as_bytes()));
            if entity.media_subtype == "html" {
                text = html_to_text(&text);
            }
            separate(out);
            out.push_str(&text);
        }
        Content::Basic(_) => {}
    }
}

/// Text in `charset`. Text that is valid UTF-8 is read as UTF-8 when the charset is
/// absent, unknown, or US-ASCII (mislabelled UTF-8 is common; real US-ASCII is UTF-8).
fn decode_text(octets: &[u8], charset: Option<&[u8]>) -> String {
    let declared_ascii = charset.is_none_or(|charset| {
        charset.eq_ignore_ascii_case(b"us-ascii") || charset.eq_ignore_ascii_case(b"ascii")
    });
    if declared_ascii && let Ok(text) = std::str::from_utf8(octets) {
        return text.to_owned();
    }
    match charset.and_then(charset_decoder) {
        Some(decoder) => decoder(octets),
        None if octets.contains(&0x1b) => charset_decoder(b"iso-2022-jp").map_or_else(
            || String::from_utf8_lossy(octets).into_owned(),
            |decoder| decoder(octets),
        ),
        None => String::from_utf8_lossy(octets).into_owned(),
    }
}

fn separate(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_decoded() {
        assert_eq!(
            decode_header_value(b" =?UTF-8?B?5pel5pys?= =?UTF-8?Q?_x?=", None),
            "日本 x"
        );
        assert_eq!(decode_header_value(b" \x1b$BF|K\\\x1b(B", None), "日本");
        let shift_jis = charset_decoder(b"shift_jis");
        assert_eq!(decode_header_value(b" \x93\xfa\x96\x7b", shift_jis), "日本");
    }

    #[test]
    fn fields_are_kept_apart_and_dates_read() {
        let raw = b"From: =?UTF-8?B?5pel5pys?= <a@example.jp>\r\nTo: b@example.org\r\n\
To: c@example.org\r\nSubject: Re: hi\r\nDate: Tue, 1 Jul 2003 23:52:37 -0200\r\n\
References: <1@x>\r\n <2@x>\r\n\r\nbody\r\n";
        let text = search_text(raw);
        assert_eq!(text.from, "日本 <a@example.jp>");
        assert_eq!(text.to, "b@example.org\nc@example.org");
        assert_eq!(text.subject, "Re: hi");
        assert_eq!(text.references, "<1@x> <2@x>");
        assert!(
            text.headers
                .starts_with("From: 日本 <a@example.jp>\nTo: b@example.org\n")
        );
        let sent = text.sent.unwrap();
        // 2003-07-02T01:52:37Z, written as 1 July in the sender's zone.
        assert_eq!(sent.timestamp, 1_057_110_757);
        assert_eq!(sent.day, 12_234);
        assert_eq!(sent_date(b"not a date"), None);
        assert_eq!(search_text(b"Subject: x\r\n\r\n").sent, None);
    }

    #[test]
    fn text_is_decoded_from_its_charset() {
        assert_eq!(decode_text(b"\xc6\xfc\xcb\xdc", Some(b"EUC-JP")), "日本");
        assert_eq!(decode_text("日本".as_bytes(), Some(b"us-ascii")), "日本");
        assert_eq!(decode_text(b"caf\xe9", Some(b"iso-8859-1")), "café");
    }
}
