//! `BODY[section]` (RFC 9051 section 6.4.5): the octets a section names, sliced from the
//! raw message at the offsets the [`Summary`] recorded.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::header;
use crate::{BodyStructure, Summary};

/// A section specification: part numbers, then what of that part.
///
/// ```text
/// BODY[]                      part: [],     text: None
/// BODY[HEADER]                part: [],     text: Some(Header)
/// BODY[1]                     part: [1],    text: None
/// BODY[2.MIME]                part: [2],    text: Some(Mime)
/// BODY[3.HEADER.FIELDS (To)]  part: [3],    text: Some(HeaderFields(["To"]))
/// BODY[4.2.TEXT]              part: [4, 2], text: Some(Text)
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionSpec {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

/// What of a part a section names, after its part numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SectionText {
    /// The header of the message (or encapsulated message), its empty line included.
    Header,
    /// Only the header fields named (compared without ASCII case), in message order, and
    /// the empty line.
    HeaderFields(Vec<String>),
    /// All header fields but those named, and the empty line.
    HeaderFieldsNot(Vec<String>),
    /// The body of the message (or encapsulated message), without its header.
    Text,
    /// The MIME header of a part; needs a part number.
    Mime,
}

/// The octets of `spec` in the message `raw` that `summary` describes, or `None` when the
/// message has no such section: a part number past the last part, a number below a part
/// that is neither a multipart nor a message/rfc822, HEADER or TEXT of a part that is not
/// a message/rfc822, MIME without a part number, or a `raw` that is not the summarised
/// message. What the session then answers (NIL, or an empty string) is its choice.
///
/// A part that is not a multipart is its own part 1, so `BODY[1]` of a one-part message
/// is its body and `BODY[1.MIME]` its header. Partial fetches (`<origin.octets>`) slice
/// the result.
pub fn section<'a>(raw: &'a [u8], summary: &Summary, spec: &SectionSpec) -> Option<Cow<'a, [u8]>> {
    if spec.part.is_empty() {
        let whole = &summary.body;
        return match &spec.text {
            None => Some(Cow::Borrowed(raw)),
            Some(SectionText::Mime) => None,
            Some(text) => message_section(raw, whole, text),
        };
    }
    let part = summary.body.part(&spec.part)?;
    match &spec.text {
        None => part.body_span.slice(raw).map(Cow::Borrowed),
        Some(SectionText::Mime) => part.header_span.slice(raw).map(Cow::Borrowed),
        Some(text) => message_section(raw, part.message_body()?, text),
    }
}

/// HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT or TEXT of the message whose body is `body`.
fn message_section<'a>(
    raw: &'a [u8],
    body: &BodyStructure,
    text: &SectionText,
) -> Option<Cow<'a, [u8]>> {
    let header = body.header_span.slice(raw)?;
    match text {
        SectionText::Header => Some(Cow::Borrowed(header)),
        SectionText::Text => body.body_span.slice(raw).map(Cow::Borrowed),
        SectionText::HeaderFields(names) => Some(Cow::Owned(header_fields(
            header,
            !body.body_span.is_empty(),
            names,
            true,
        ))),
        SectionText::HeaderFieldsNot(names) => Some(Cow::Owned(header_fields(
            header,
            !body.body_span.is_empty(),
            names,
            false,
        ))),
        SectionText::Mime => None,
    }
}

/// The fields of `header` whose names are (`keep`) or are not (`!keep`) among `names`, as
/// they appear and in their order, then the empty line. RFC 9051 section 6.4.5: "the blank
/// line is always included in HEADER fetches, except in the case of a message which has no
/// body and no blank line"; a header that a body follows without one (a malformed message)
/// gets one, in the line breaks the header uses.
fn header_fields(header: &[u8], has_body: bool, names: &[String], keep: bool) -> Vec<u8> {
    let mut subset = Vec::new();
    for field in header::fields(header) {
        let named = names.iter().any(|name| field.is(name));
        if named == keep {
            subset.extend_from_slice(field.raw);
        }
    }
    match header::empty_line(header) {
        Some(empty_line) => subset.extend_from_slice(empty_line),
        None if has_body => {
            let bare_line_feeds = header.contains(&b'\n') && !header.contains(&b'\r');
            subset.extend_from_slice(if bare_line_feeds { b"\n" } else { b"\r\n" });
        }
        None => {}
    }
    subset
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summarize;

    fn fields(raw: &[u8], names: &[&str]) -> Vec<u8> {
        let spec = SectionSpec {
            part: Vec::new(),
            text: Some(SectionText::HeaderFields(
                names.iter().map(|name| name.to_string()).collect(),
            )),
        };
        section(raw, &summarize(raw), &spec)
            .map(Cow::into_owned)
            .unwrap_or_default()
    }

    #[test]
    fn header_fields_end_with_the_empty_line_unless_there_is_no_body() {
        assert_eq!(
            fields(b"Subject: a\r\nTo: b\r\n\r\nbody", &["to"]),
            b"To: b\r\n\r\n"
        );
        assert_eq!(fields(b"Subject: a\r\nTo: b\r\n", &["to"]), b"To: b\r\n");
        // A body without an empty line before it: the empty line is supplied.
        assert_eq!(
            fields(b"Subject: a\r\nbody line\r\n", &["subject"]),
            b"Subject: a\r\n\r\n"
        );
        assert_eq!(
            fields(b"Subject: a\nbody line\n", &["subject"]),
            b"Subject: a\n\n"
        );
        assert_eq!(fields(b"Subject: a\r\n\r\n", &["x"]), b"\r\n");
    }
}
