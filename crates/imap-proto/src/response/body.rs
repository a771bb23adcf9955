//! BODY and BODYSTRUCTURE: the MIME structure of a message as a typed tree.
//!
//! ```text
//! S: * 1 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)
//!     ("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff")
//!     "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED"))
//! ```
//!
//! `BODY` is the same tree without extension data. Header-derived text (parameters,
//! Content-ID, description, language, location) is octets as they appear in the
//! message; media types and encodings are ASCII tokens.

use super::fetch::Envelope;
use super::{write_list, write_list_or_nil, write_nstring, write_string};
use crate::limits::Utf8Mode;

/// Parts nested deeper than this are written as a bare `APPLICATION/OCTET-STREAM`, so a
/// hostile message cannot make the writer recurse without bound.
pub const MAX_BODY_DEPTH: usize = 64;

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFields {
    /// Content-Type parameters, such as `("CHARSET", "UTF-8")`; `NIL` when empty.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    pub id: Option<Vec<u8>>,
    pub description: Option<Vec<u8>>,
    /// Content-Transfer-Encoding, `7BIT` when the part has none.
    pub encoding: String,
    /// Size in octets of the part's body as stored (still encoded).
    pub size: u32,
}

impl Default for BodyFields {
    fn default() -> Self {
        Self {
            params: Vec::new(),
            id: None,
            description: None,
            encoding: "7BIT".to_owned(),
            size: 0,
        }
    }
}

/// What follows the body fields of a single part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinglePartKind {
    /// Any type but TEXT and MESSAGE/RFC822 (or MESSAGE/GLOBAL).
    Basic,
    /// `TEXT/*`: and its size in lines.
    Text { lines: u64 },
    /// `MESSAGE/RFC822` or `MESSAGE/GLOBAL`: the enclosed message's envelope and
    /// structure, and its size in lines.
    Message {
        envelope: Box<Envelope>,
        body: Box<BodyStructure>,
        lines: u64,
    },
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// `inline`, `attachment`, ...
    pub kind: String,
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

/// `body-ext-1part = body-fld-md5 SP body-fld-dsp SP body-fld-lang SP body-fld-loc`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinglePartExtension {
    pub md5: Option<Vec<u8>>,
    pub disposition: Option<Disposition>,
    /// Content-Language: `NIL` when empty, a string for one, a list for more.
    pub language: Vec<Vec<u8>>,
    pub location: Option<Vec<u8>>,
}

/// `body-ext-mpart = body-fld-param SP body-fld-dsp SP body-fld-lang SP body-fld-loc`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultipartExtension {
    /// Content-Type parameters, such as the boundary.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    pub disposition: Option<Disposition>,
    pub language: Vec<Vec<u8>>,
    pub location: Option<Vec<u8>>,
}

/// The structure of a message or of one of its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStructure {
    Single {
        /// `TEXT`, `IMAGE`, `APPLICATION`, ...
        media_type: String,
        /// `PLAIN`, `JPEG`, ...
        media_subtype: String,
        fields: BodyFields,
        kind: SinglePartKind,
        /// Sent with BODYSTRUCTURE only.
        extension: Option<SinglePartExtension>,
    },
    Multipart {
        /// At least one part; an empty list is written as one empty text part.
        parts: Vec<BodyStructure>,
        /// `MIXED`, `ALTERNATIVE`, ...
        subtype: String,
        /// Sent with BODYSTRUCTURE only.
        extension: Option<MultipartExtension>,
    },
}

fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)], utf8: Utf8Mode) {
    write_list_or_nil(out, params, |out, (name, value)| {
        write_string(out, name, utf8);
        out.push(b' ');
        write_string(out, value, utf8);
    });
}

fn write_opt(out: &mut Vec<u8>, value: &Option<Vec<u8>>, utf8: Utf8Mode) {
    write_nstring(out, value.as_deref(), utf8);
}

/// ` body-fld-dsp SP body-fld-lang SP body-fld-loc`
fn write_extension_tail(
    out: &mut Vec<u8>,
    disposition: &Option<Disposition>,
    language: &[Vec<u8>],
    location: &Option<Vec<u8>>,
    utf8: Utf8Mode,
) {
    out.push(b' ');
    match disposition {
        Some(disposition) => {
            out.push(b'(');
            write_string(out, disposition.kind.as_bytes(), utf8);
            out.push(b' ');
            write_params(out, &disposition.params, utf8);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match language {
        [] => out.extend_from_slice(b"NIL"),
        [one] => write_string(out, one, utf8),
        many => write_list(out, many, |out, language| write_string(out, language, utf8)),
    }
    out.push(b' ');
    write_opt(out, location, utf8);
}

impl BodyStructure {
    /// Writes `body`; with `extensible`, the extension data too (BODYSTRUCTURE).
    pub(crate) fn encode(&self, out: &mut Vec<u8>, extensible: bool, utf8: Utf8Mode) {
        self.encode_at(out, extensible, utf8, 0);
    }

    fn encode_at(&self, out: &mut Vec<u8>, extensible: bool, utf8: Utf8Mode, depth: usize) {
        if depth >= MAX_BODY_DEPTH {
            out.extend_from_slice(b"(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 0)");
            return;
        }
        out.push(b'(');
        match self {
            BodyStructure::Single {
                media_type,
                media_subtype,
                fields,
                kind,
                extension,
            } => {
                write_string(out, media_type.as_bytes(), utf8);
                out.push(b' ');
                write_string(out, media_subtype.as_bytes(), utf8);
                out.push(b' ');
                write_params(out, &fields.params, utf8);
                out.push(b' ');
                write_opt(out, &fields.id, utf8);
                out.push(b' ');
                write_opt(out, &fields.description, utf8);
                out.push(b' ');
                write_string(out, fields.encoding.as_bytes(), utf8);
                out.extend_from_slice(format!(" {}", fields.size).as_bytes());
                match kind {
                    SinglePartKind::Basic => {}
                    SinglePartKind::Text { lines } => {
                        out.extend_from_slice(format!(" {lines}").as_bytes())
                    }
                    SinglePartKind::Message {
                        envelope,
                        body,
                        lines,
                    } => {
                        out.push(b' ');
                        envelope.encode(out, utf8);
                        out.push(b' ');
                        body.encode_at(out, extensible, utf8, depth + 1);
                        out.extend_from_slice(format!(" {lines}").as_bytes());
                    }
                }
                if let (true, Some(extension)) = (extensible, extension) {
                    out.push(b' ');
                    write_opt(out, &extension.md5, utf8);
                    write_extension_tail(
                        out,
                        &extension.disposition,
                        &extension.language,
                        &extension.location,
                        utf8,
                    );
                }
            }
            BodyStructure::Multipart {
                parts,
                subtype,
                extension,
            } => {
                if parts.is_empty() {
                    out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
                }
                for part in parts {
                    part.encode_at(out, extensible, utf8, depth + 1);
                }
                out.push(b' ');
                write_string(out, subtype.as_bytes(), utf8);
                if let (true, Some(extension)) = (extensible, extension) {
                    out.push(b' ');
                    write_params(out, &extension.params, utf8);
                    write_extension_tail(
                        out,
                        &extension.disposition,
                        &extension.language,
                        &extension.location,
                        utf8,
                    );
                }
            }
        }
        out.push(b')');
    }
}
