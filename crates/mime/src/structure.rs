//! The MIME tree of a message (RFC 2045, RFC 2046) with what BODYSTRUCTURE reports of every
//! part (RFC 9051 section 7.5.2) and where each part sits in the raw message.
//!
//! The tree is split here rather than taken from mail-parser's [`Message`](mail_parser::Message):
//! IMAP needs the exact octets of every part, and mail-parser accepts a delimiter in the
//! middle of a line and parses an encoded message/rfc822 part from its decoded copy, whose
//! offsets are not offsets into the message. mail-parser reads every header value that is
//! decoded (Content-Type, Content-Disposition, addresses).

use std::borrow::Cow;

use mail_parser::parsers::MessageStream;
use mail_parser::{Attribute, ContentType, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::Bytes;
use crate::envelope::Envelope;
use crate::header;

/// The deepest nesting of multiparts and encapsulated messages that is split into parts;
/// a container deeper than this is summarised as one `application/octet-stream` part.
/// Real mail stays far below; the limit keeps the cached JSON within serde_json's nesting
/// limit (128) and the parser's recursion shallow.
pub const MAX_DEPTH: usize = 24;

/// The most entities (the message body and every part, of any kind) one message is split
/// into, give or take one per level of nesting. Past it, the rest of a multipart body stays
/// in its last part, so a hostile message of a million empty parts costs a bounded summary.
pub const MAX_PARTS: usize = 10_000;

/// Octets `start..end` of the raw message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start,
            end: end.max(start),
        }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// These octets of `raw`, or `None` when `raw` is not the message this span was
    /// computed from (it is too short).
    pub fn slice<'a>(&self, raw: &'a [u8]) -> Option<&'a [u8]> {
        raw.get(self.start..self.end)
    }
}

/// One `attribute=value` of a Content-Type or Content-Disposition field, as it appears:
/// the value without its quotes and backslashes, the attribute name untouched, so an
/// RFC 2231 `filename*0*=UTF-8''%E6%97%A5` stays attribute `filename*0*` with value
/// `UTF-8''%E6%97%A5` (what IMAP servers send; [`BodyStructure::filename`] has the decoded
/// name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: Bytes,
    pub value: Bytes,
}

impl Param {
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Param {
        Param {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Content-Disposition (RFC 2183): `body-fld-dsp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    /// `inline`, `attachment`, ..., in lower case.
    pub kind: String,
    pub params: Vec<Param>,
}

/// `body-fields` of a non-multipart part, plus its MD5 (the first extension item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyFields {
    /// Content-ID, as it appears (angle brackets included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Bytes>,
    /// Content-Description, as it appears (encoded words stay encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Bytes>,
    /// Content-Transfer-Encoding in lower case; `7bit` when the field is absent.
    pub encoding: String,
    /// Octets of the body in its transfer encoding (`body-fld-octets`).
    pub size: usize,
    /// Content-MD5, as it appears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<Bytes>,
}

/// What kind of part this is, with what BODYSTRUCTURE reports only for that kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// Any part that is neither text, nor an encapsulated message, nor a multipart.
    Basic(BodyFields),
    /// A `text/*` part.
    Text {
        fields: BodyFields,
        /// Lines of the body in its transfer encoding (`body-fld-lines`).
        lines: usize,
    },
    /// A `message/rfc822` or `message/global` part in an identity encoding (7bit, 8bit,
    /// binary), whose body is itself a message.
    Message {
        fields: BodyFields,
        envelope: Box<Envelope>,
        /// The body of the encapsulated message; its `header_span` is that message's
        /// header.
        body: Box<BodyStructure>,
        lines: usize,
    },
    /// A `multipart/*` part with at least one part.
    Multipart { parts: Vec<BodyStructure> },
}

/// One MIME entity: the body of a message, or one part of it, with its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyStructure {
    /// `text`, `image`, `multipart`, ..., in lower case.
    pub media_type: String,
    /// `plain`, `mixed`, ..., in lower case.
    pub media_subtype: String,
    /// Content-Type parameters as they appear (see [`Param`]). A text part that names no
    /// charset gets `charset=us-ascii`, the RFC 2045 default, as IMAP servers report it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Content-Language tags; empty when the field is absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub language: Vec<Bytes>,
    /// Content-Location, as it appears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Bytes>,
    /// The file name decoded (RFC 2231 continuations and charsets, encoded words) from
    /// Content-Disposition `filename` or else Content-Type `name`: for display and search,
    /// never sent by IMAP, which sends [`params`](Self::params) as they appear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The header of this entity, its empty line included when it has one: for the body of
    /// a message, the message header; for a part of a multipart, its MIME header.
    pub header_span: Span,
    /// The body of this entity. For a part of a multipart it stops before the line break
    /// that precedes the next delimiter, which belongs to the delimiter (RFC 2046 5.1.1).
    pub body_span: Span,
    pub content: Content,
}

impl BodyStructure {
    pub fn is_multipart(&self) -> bool {
        matches!(self.content, Content::Multipart { .. })
    }

    /// The parts of a multipart; nothing for any other entity.
    pub fn parts(&self) -> &[BodyStructure] {
        match &self.content {
            Content::Multipart { parts } => parts,
            _ => &[],
        }
    }

    /// `body-fields` and MD5, for all but multiparts.
    pub fn fields(&self) -> Option<&BodyFields> {
        match &self.content {
            Content::Basic(fields)
            | Content::Text { fields, .. }
            | Content::Message { fields, .. } => Some(fields),
            Content::Multipart { .. } => None,
        }
    }

    /// The body of the encapsulated message, for a message/rfc822 part.
    pub fn message_body(&self) -> Option<&BodyStructure> {
        match &self.content {
            Content::Message { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The value of the first parameter called `name` (compared without ASCII case).
    pub fn param(&self, name: &str) -> Option<&Bytes> {
        self.params
            .iter()
            .find(|param| param.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|param| &param.value)
    }

    /// The part that an IMAP section part number names (`[2, 1]` for `BODY[2.1]`),
    /// starting from the body of a message (RFC 9051 section 6.4.5): a multipart's parts
    /// are numbered from 1; a part that is not a multipart is its own part 1; a number
    /// after a message/rfc822 part numbers the parts of the encapsulated message. The
    /// empty path names this entity.
    pub fn part(&self, path: &[u32]) -> Option<&BodyStructure> {
        let mut current = self;
        for (depth, &number) in path.iter().enumerate() {
            if depth > 0 {
                match &current.content {
                    Content::Message { body, .. } => current = body,
                    Content::Multipart { .. } => {}
                    Content::Basic(_) | Content::Text { .. } => return None,
                }
            }
            current = match &current.content {
                Content::Multipart { parts } => {
                    parts.get(usize::try_from(number.checked_sub(1)?).ok()?)?
                }
                _ if number == 1 => current,
                _ => return None,
            };
        }
        Some(current)
    }
}

/// Splits one message into its tree.
pub(crate) struct Parser<'a> {
    raw: &'a [u8],
    parts: usize,
}

/// The type an entity has when it has no (usable) Content-Type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefaultType {
    /// `text/plain; charset=us-ascii` (RFC 2045 section 5.2).
    TextPlain,
    /// `message/rfc822`, inside a multipart/digest (RFC 2046 section 5.1.5).
    Message,
}

/// The MIME fields of one header section.
struct MimeHeader {
    content_type: Option<ContentType<'static>>,
    content_type_raw: Option<Vec<u8>>,
    encoding: Option<String>,
    id: Option<Bytes>,
    description: Option<Bytes>,
    md5: Option<Bytes>,
    disposition: Option<ContentType<'static>>,
    disposition_raw: Option<Vec<u8>>,
    language: Vec<Bytes>,
    location: Option<Bytes>,
}

impl MimeHeader {
    fn read(header: &[u8]) -> MimeHeader {
        let mut mime = MimeHeader {
            content_type: None,
            content_type_raw: None,
            encoding: None,
            id: None,
            description: None,
            md5: None,
            disposition: None,
            disposition_raw: None,
            language: Vec::new(),
            location: None,
        };
        let mut seen_language = false;
        for field in header::fields(header) {
            let Some(name) = field.name else { continue };
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            match name.as_str() {
                "content-type" if mime.content_type_raw.is_none() => {
                    mime.content_type = content_type(field.value);
                    mime.content_type_raw = Some(header::unfold(field.value));
                }
                "content-transfer-encoding" if mime.encoding.is_none() => {
                    let value = header::unfold(field.value);
                    let token = value
                        .split(|&byte| byte.is_ascii_whitespace() || byte == b'(' || byte == b';')
                        .next()
                        .unwrap_or_default();
                    if !token.is_empty() {
                        mime.encoding = Some(String::from_utf8_lossy(token).to_ascii_lowercase());
                    }
                }
                "content-id" if mime.id.is_none() => mime.id = Some(unfolded(field.value)),
                "content-description" if mime.description.is_none() => {
                    mime.description = Some(unfolded(field.value));
                }
                "content-md5" if mime.md5.is_none() => mime.md5 = Some(unfolded(field.value)),
                "content-disposition" if mime.disposition_raw.is_none() => {
                    mime.disposition = content_type(field.value);
                    mime.disposition_raw = Some(header::unfold(field.value));
                }
                "content-language" if !seen_language => {
                    seen_language = true;
                    mime.language = header::unfold(field.value)
                        .split(|&byte| byte == b',')
                        .map(header::trim_blanks)
                        .filter(|tag| !tag.is_empty())
                        .map(Bytes::from)
                        .collect();
                }
                "content-location" if mime.location.is_none() => {
                    mime.location = Some(unfolded(field.value));
                }
                _ => {}
            }
        }
        mime
    }

    /// The decoded file name, as mail-parser reads RFC 2231 and encoded words.
    fn filename(&self) -> Option<String> {
        self.disposition
            .as_ref()
            .and_then(|disposition| disposition.attribute("filename"))
            .or_else(|| {
                self.content_type
                    .as_ref()
                    .and_then(|content_type| content_type.attribute("name"))
            })
            .map(str::to_owned)
    }
}

fn unfolded(value: &[u8]) -> Bytes {
    Bytes(header::unfold(value))
}

/// A Content-Type or Content-Disposition value read by mail-parser.
fn content_type(value: &[u8]) -> Option<ContentType<'static>> {
    // mail-parser reads a field up to the line break that ends it.
    let mut line = Vec::with_capacity(value.len() + 1);
    line.extend_from_slice(value);
    line.push(b'\n');
    match MessageStream::new(&line).parse_content_type() {
        HeaderValue::ContentType(content_type) => Some(ContentType {
            c_type: content_type.c_type.into_owned().into(),
            c_subtype: content_type
                .c_subtype
                .map(|subtype| subtype.into_owned().into()),
            attributes: content_type.attributes.map(|attributes| {
                attributes
                    .into_iter()
                    .map(|attribute| Attribute {
                        name: attribute.name.into_owned().into(),
                        value: attribute.value.into_owned().into(),
                    })
                    .collect()
            }),
        }),
        _ => None,
    }
}

/// What the entity is, once its Content-Type is read.
struct MediaType {
    media_type: String,
    media_subtype: String,
    params: Vec<Param>,
}

impl MediaType {
    fn default_for(default: DefaultType) -> MediaType {
        match default {
            DefaultType::TextPlain => MediaType::text_plain(),
            DefaultType::Message => MediaType {
                media_type: "message".into(),
                media_subtype: "rfc822".into(),
                params: Vec::new(),
            },
        }
    }

    fn text_plain() -> MediaType {
        MediaType {
            media_type: "text".into(),
            media_subtype: "plain".into(),
            params: vec![Param::new("charset", "us-ascii")],
        }
    }

    fn octet_stream(params: Vec<Param>) -> MediaType {
        MediaType {
            media_type: "application".into(),
            media_subtype: "octet-stream".into(),
            params,
        }
    }
}

impl<'a> Parser<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Parser<'a> {
        Parser { raw, parts: 0 }
    }

    /// The entity (header and body) in `start..end`, as the body of a message.
    pub(crate) fn message(&mut self, start: usize, end: usize, depth: usize) -> BodyStructure {
        self.entity(start, end, DefaultType::TextPlain, depth)
    }

    fn entity(
        &mut self,
        start: usize,
        end: usize,
        default: DefaultType,
        depth: usize,
    ) -> BodyStructure {
        self.parts = self.parts.saturating_add(1);
        let raw = self.raw;
        let end = end.min(raw.len());
        let start = start.min(end);
        let header_end = header::section_end(raw, start, end);
        let header_span = Span::new(start, header_end);
        let body_span = Span::new(header_end, end);
        let header = header_span.slice(raw).unwrap_or_default();
        let mime = MimeHeader::read(header);

        let mut media = match (&mime.content_type, &mime.content_type_raw) {
            (Some(content_type), Some(raw_value)) => match content_type.c_subtype.as_deref() {
                Some(subtype) if !content_type.c_type.is_empty() && !subtype.is_empty() => {
                    MediaType {
                        media_type: content_type.c_type.to_ascii_lowercase(),
                        media_subtype: subtype.to_ascii_lowercase(),
                        params: raw_params(raw_value),
                    }
                }
                _ => MediaType::default_for(default),
            },
            _ => MediaType::default_for(default),
        };
        let encoding = mime.encoding.clone().unwrap_or_else(|| "7bit".into());
        let identity = matches!(encoding.as_str(), "7bit" | "8bit" | "binary");
        let encapsulated = |media: &MediaType| {
            media.media_type == "message"
                && matches!(media.media_subtype.as_str(), "rfc822" | "global")
        };

        let mut content = None;
        if media.media_type == "multipart" {
            let boundary = mime
                .content_type
                .as_ref()
                .and_then(|content_type| content_type.attribute("boundary"))
                .filter(|boundary| !boundary.is_empty());
            if depth >= MAX_DEPTH {
                media = MediaType::octet_stream(media.params);
            } else if let Some(parts) = boundary.and_then(|boundary| {
                self.split(body_span, boundary.as_bytes(), &media.media_subtype, depth)
            }) {
                content = Some(Content::Multipart { parts });
            } else {
                // No boundary, or no delimiter in the body: the parts cannot be found, so
                // the body is text, as RFC 2045 section 5.2 treats an unusable Content-Type.
                media = MediaType::text_plain();
            }
        } else if encapsulated(&media) && (depth >= MAX_DEPTH || !identity) {
            // RFC 2046 section 5.2.1 allows message/rfc822 only 7bit, 8bit and binary. An
            // encoded one cannot be sliced into parts, and IMAP has no way to send
            // message/rfc822 without an envelope and a structure: it is opaque data.
            media = MediaType::octet_stream(media.params);
        }

        let fields = BodyFields {
            id: mime.id.clone(),
            description: mime.description.clone(),
            encoding,
            size: body_span.len(),
            md5: mime.md5.clone(),
        };
        let body_bytes = body_span.slice(raw).unwrap_or_default();
        let content = match content {
            Some(content) => content,
            None if encapsulated(&media) => {
                let inner = self.message(body_span.start, body_span.end, depth + 1);
                let envelope = Envelope::parse(inner.header_span.slice(raw).unwrap_or_default());
                Content::Message {
                    fields,
                    envelope: Box::new(envelope),
                    body: Box::new(inner),
                    lines: count_lines(body_bytes),
                }
            }
            None if media.media_type == "text" => Content::Text {
                fields,
                lines: count_lines(body_bytes),
            },
            None => Content::Basic(fields),
        };

        if media.media_type == "text"
            && !media
                .params
                .iter()
                .any(|param| is_charset_name(param.name.as_bytes()))
        {
            media.params.push(Param::new("charset", "us-ascii"));
        }

        BodyStructure {
            filename: mime.filename(),
            media_type: media.media_type,
            media_subtype: media.media_subtype,
            params: media.params,
            disposition: mime.disposition.as_ref().map(|disposition| Disposition {
                kind: disposition.c_type.to_ascii_lowercase(),
                params: mime
                    .disposition_raw
                    .as_deref()
                    .map(raw_params)
                    .unwrap_or_default(),
            }),
            language: mime.language,
            location: mime.location,
            header_span,
            body_span,
            content,
        }
    }

    /// The parts of a multipart whose body is `body`, or `None` when the body holds no
    /// delimiter line (RFC 2046 section 5.1.1: `--boundary`, then optionally `--` for the
    /// last one, then only blanks, at the start of a line).
    fn split(
        &mut self,
        body: Span,
        boundary: &[u8],
        subtype: &str,
        depth: usize,
    ) -> Option<Vec<BodyStructure>> {
        let raw = self.raw;
        let default = if subtype == "digest" {
            DefaultType::Message
        } else {
            DefaultType::TextPlain
        };
        let mut parts = Vec::new();
        // Where the part after the last delimiter seen starts; none before the first.
        let mut part_start = None;
        let mut line_start = body.start;
        while line_start < body.end {
            let line_end = header::line_end(raw, line_start, body.end);
            let line = raw.get(line_start..line_end).unwrap_or_default();
            if let Some(closes) = delimiter(line, boundary) {
                match part_start {
                    // A closing delimiter first: there are no parts.
                    None if closes => return None,
                    None => {}
                    // Leave room for the last part, which then holds the rest.
                    Some(_) if self.parts.saturating_add(1) >= MAX_PARTS => break,
                    Some(start) => {
                        // The line break before a delimiter belongs to the delimiter.
                        let before = raw.get(..line_start).unwrap_or_default();
                        let line_break = if before.ends_with(b"\r\n") {
                            2
                        } else {
                            usize::from(before.ends_with(b"\n"))
                        };
                        let end = line_start.saturating_sub(line_break).max(start);
                        parts.push(self.entity(start, end, default, depth + 1));
                        if closes {
                            return Some(parts);
                        }
                    }
                }
                part_start = Some(line_end);
            }
            line_start = line_end;
        }
        // No closing delimiter (or too many parts): the last part runs to the end.
        parts.push(self.entity(part_start?, body.end, default, depth + 1));
        Some(parts)
    }
}

/// Whether `line` is a delimiter line for `boundary`, and if so whether it closes.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (closes, rest) = match rest.strip_prefix(b"--") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    rest.iter()
        .all(|&byte| matches!(byte, b' ' | b'\t' | b'\r' | b'\n'))
        .then_some(closes)
}

fn is_charset_name(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"charset")
        || name
            .get(..8)
            .is_some_and(|start| start.eq_ignore_ascii_case(b"charset*"))
}

/// Lines of a body: its line feeds, and one more for a last line without one.
pub(crate) fn count_lines(body: &[u8]) -> usize {
    let feeds = body.iter().filter(|&&byte| byte == b'\n').count();
    match body.last() {
        Some(b'\n') | None => feeds,
        Some(_) => feeds + 1,
    }
}

/// The parameters of an unfolded Content-Type or Content-Disposition value, as they appear
/// (see [`Param`]). Lenient like the parsers mail meets: a value may be any run of octets
/// up to `;` or a blank, comments are skipped, a parameter without `=` is dropped.
pub(crate) fn raw_params(value: &[u8]) -> Vec<Param> {
    let mut params = Vec::new();
    let mut at = 0;
    // Skip the type (or disposition type), up to the first `;` outside comments.
    while let Some(&byte) = value.get(at) {
        match byte {
            b';' => break,
            b'(' => at = skip_comment(value, at),
            _ => at += 1,
        }
    }
    while at < value.len() {
        at = skip_blanks_and_comments(value, at);
        match value.get(at) {
            None => break,
            Some(b';') => {
                at += 1;
                continue;
            }
            Some(_) => {}
        }
        let name_start = at;
        while let Some(&byte) = value.get(at) {
            if matches!(byte, b'=' | b';' | b'(' | b'"') || byte.is_ascii_whitespace() {
                break;
            }
            at += 1;
        }
        let name = value.get(name_start..at).unwrap_or_default();
        if name.is_empty() {
            // A stray quote or similar: step over it.
            at += 1;
            continue;
        }
        at = skip_blanks_and_comments(value, at);
        if value.get(at) != Some(&b'=') {
            continue;
        }
        at = skip_blanks_and_comments(value, at + 1);
        let (param_value, next) = if value.get(at) == Some(&b'"') {
            quoted_string(value, at)
        } else {
            let value_start = at;
            while let Some(&byte) = value.get(at) {
                if byte == b';' || byte == b'(' || byte.is_ascii_whitespace() {
                    break;
                }
                at += 1;
            }
            (
                Cow::Borrowed(value.get(value_start..at).unwrap_or_default()),
                at,
            )
        };
        at = next;
        params.push(Param::new(name, param_value.into_owned()));
    }
    params
}

/// The content of the quoted string that starts at `at` (a `"`), and where it ends.
fn quoted_string(value: &[u8], at: usize) -> (Cow<'_, [u8]>, usize) {
    let mut content = Vec::new();
    let mut position = at + 1;
    while let Some(&byte) = value.get(position) {
        match byte {
            b'"' => return (Cow::Owned(content), position + 1),
            b'\\' => {
                if let Some(&escaped) = value.get(position + 1) {
                    content.push(escaped);
                }
                position += 2;
            }
            _ => {
                content.push(byte);
                position += 1;
            }
        }
    }
    (Cow::Owned(content), value.len())
}

fn skip_blanks_and_comments(value: &[u8], mut at: usize) -> usize {
    while let Some(&byte) = value.get(at) {
        match byte {
            b'(' => at = skip_comment(value, at),
            _ if byte.is_ascii_whitespace() => at += 1,
            _ => break,
        }
    }
    at
}

/// Past the (possibly nested) comment that starts at `at`.
fn skip_comment(value: &[u8], mut at: usize) -> usize {
    let mut depth = 0usize;
    while let Some(&byte) = value.get(at) {
        match byte {
            b'\\' => at += 1,
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return at + 1;
                }
            }
            _ => {}
        }
        at += 1;
    }
    value.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_values(params: &[Param]) -> Vec<(String, String)> {
        params
            .iter()
            .map(|param| (param.name.to_string_lossy(), param.value.to_string_lossy()))
            .collect()
    }

    #[test]
    fn params_keep_their_names_and_lose_their_quotes() {
        let params = raw_params(
            b"Text/Plain (comment) ; Charset = \"utf-8\" (more);format=flowed; delsp=\"a\\\"b\"",
        );
        assert_eq!(
            names_and_values(&params),
            [
                ("Charset".into(), "utf-8".into()),
                ("format".into(), "flowed".into()),
                ("delsp".into(), "a\"b".into()),
            ]
        );
    }

    #[test]
    fn rfc2231_params_stay_as_they_appear() {
        let params = raw_params(
            b"attachment; filename*0*=UTF-8''%E6%97%A5; filename*1*=%E6%9C%AC.txt; size=12",
        );
        assert_eq!(
            names_and_values(&params),
            [
                ("filename*0*".into(), "UTF-8''%E6%97%A5".into()),
                ("filename*1*".into(), "%E6%9C%AC.txt".into()),
                ("size".into(), "12".into()),
            ]
        );
    }

    #[test]
    fn broken_params_do_not_stop_the_rest() {
        let params = raw_params(b"multipart/mixed; ; novalue; boundary=----=_Part_1; x=\"open");
        assert_eq!(
            names_and_values(&params),
            [
                ("boundary".into(), "----=_Part_1".into()),
                ("x".into(), "open".into()),
            ]
        );
    }

    #[test]
    fn delimiters_are_whole_lines() {
        assert_eq!(delimiter(b"--abc\r\n", b"abc"), Some(false));
        assert_eq!(delimiter(b"--abc--\r\n", b"abc"), Some(true));
        assert_eq!(delimiter(b"--abc  \t\r\n", b"abc"), Some(false));
        assert_eq!(delimiter(b"--abc", b"abc"), Some(false));
        assert_eq!(delimiter(b"--abcdef\r\n", b"abc"), None);
        assert_eq!(delimiter(b"x--abc\r\n", b"abc"), None);
    }

    #[test]
    fn lines_count_a_last_line_without_a_line_feed() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a"), 1);
        assert_eq!(count_lines(b"a\r\n"), 1);
        assert_eq!(count_lines(b"a\r\nb"), 2);
        assert_eq!(count_lines(b"\r\n\r\n"), 2);
    }
}
