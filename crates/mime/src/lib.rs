//! Postcell's MIME summary: everything IMAP needs to know about a message's structure,
//! computed once at delivery and cached, so that FETCH never parses a message again.
//!
//! [`summarize`] reads a raw message into a [`Summary`]: its [`Envelope`] (RFC 9051
//! section 7.5.2 ENVELOPE) and its [`BodyStructure`] tree (BODYSTRUCTURE), with the byte
//! offsets of every part's header and body. [`Summary::to_bytes`] and
//! [`Summary::from_bytes`] store it. With the raw message and its summary,
//! [`section()`] slices out `BODY[section]` (RFC 9051 section 6.4.5), [`decode_binary`] undoes
//! transfer encodings for `BINARY[section]` (RFC 3516), and [`search_text`] decodes the
//! text SEARCH looks into.
//!
//! ```text
//! C: A1 FETCH 1 (ENVELOPE BODYSTRUCTURE BODY.PEEK[2.MIME] BINARY.PEEK[2])
//!                ^ Summary::envelope
//!                         ^ Summary::body
//!                                       ^ section(raw, &summary, &SectionSpec { part: vec![2], text: Some(SectionText::Mime) })
//!                                                        ^ decode_binary(raw, &summary, &[2])
//! ```
//!
//! No I/O, no store, no IMAP syntax: the IMAP crate renders these values on the wire.
//!
//! # Choices
//!
//! - **Header text is raw.** Envelope fields, display names, parameter values, Content-ID,
//!   Content-Description are [`Bytes`]: the field value unfolded (line breaks removed) and
//!   trimmed, encoded words left encoded, raw 8-bit (RFC 6532 UTF-8, or legacy Shift_JIS)
//!   kept as the same octets, as IMAP servers send them. Addresses are read by
//!   mail-parser, which decodes names; the value is shielded first so that names come
//!   back in their raw form (see `envelope.rs`). [`search_text`] is where text is decoded.
//! - **Parameters as they appear.** RFC 2231 `filename*0*=` stays an attribute named
//!   `filename*0*`; [`BodyStructure::filename`] holds the decoded name for display.
//!   Media type, subtype, disposition type and transfer encoding are lower-cased tokens.
//! - **Defaults are explicit.** A missing or unusable Content-Type is `text/plain;
//!   charset=us-ascii` (`message/rfc822` in a multipart/digest); a text part that names no
//!   charset gets `charset=us-ascii`; a missing Content-Transfer-Encoding is `7bit`.
//! - **Broken structure degrades, never fails.** A multipart with no boundary or no
//!   delimiter is text/plain; a message/rfc822 part in base64 or quoted-printable (which
//!   RFC 2046 forbids) and containers nested deeper than [`MAX_DEPTH`] are
//!   application/octet-stream; a missing closing delimiter ends the last part at the end
//!   of its parent. Delimiters are whole lines (RFC 2046 section 5.1.1).
//! - **Sizes and offsets are octets of the message exactly as given**: a message stored
//!   with bare line feeds is measured with bare line feeds. Lines are line feeds, plus one
//!   for a last line without one (a part's body ends before the line break that belongs
//!   to the next delimiter).

mod binary;
mod bytes;
mod envelope;
mod header;
mod search;
mod section;
mod structure;

use serde::{Deserialize, Serialize};

pub use binary::{BinaryError, decode_binary};
pub use bytes::Bytes;
pub use envelope::{Address, Envelope, MISSING_DOMAIN, MISSING_MAILBOX};
pub use search::{SearchText, SentDate, decode_header_text, search_text, sent_date};
pub use section::{SectionSpec, SectionText, section};
pub use structure::{
    BodyFields, BodyStructure, Content, Disposition, MAX_DEPTH, MAX_PARTS, Param, Span,
};

/// The version of the layout [`Summary::to_bytes`] writes. A cached summary of another
/// version is refused by [`Summary::from_bytes`], and the caller summarises the message
/// again.
pub const FORMAT_VERSION: u32 = 1;

/// What IMAP needs to know about one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub envelope: Envelope,
    /// The body of the message. Its `header_span` is the message header, its `body_span`
    /// the message text; for a multipart message, its parts are parts 1, 2, ...
    pub body: BodyStructure,
}

/// Why a cached summary cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the cached summary is not valid: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the cached summary has format version {found}; this build reads {expected}")]
    Version { found: u32, expected: u32 },
}

#[derive(Serialize)]
struct StoredRef<'a> {
    version: u32,
    envelope: &'a Envelope,
    body: &'a BodyStructure,
}

#[derive(Deserialize)]
struct StoredVersion {
    version: u32,
}

#[derive(Deserialize)]
struct Stored {
    envelope: Envelope,
    body: BodyStructure,
}

impl Summary {
    /// The summary as JSON, with its [`FORMAT_VERSION`], for the message's cache entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        let stored = StoredRef {
            version: FORMAT_VERSION,
            envelope: &self.envelope,
            body: &self.body,
        };
        // Serialising plain data to a Vec cannot fail: no map has non-string keys.
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    /// A summary [`to_bytes`](Self::to_bytes) wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Summary, Error> {
        let StoredVersion { version } = serde_json::from_slice(bytes)?;
        if version != FORMAT_VERSION {
            return Err(Error::Version {
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let Stored { envelope, body } = serde_json::from_slice(bytes)?;
        Ok(Summary { envelope, body })
    }
}

/// The summary of the raw message `raw`. Never fails and never panics: whatever the
/// octets, the result describes them. Octets with no header at all are a message with an
/// empty header whose whole content is one `text/plain` body.
pub fn summarize(raw: &[u8]) -> Summary {
    let body = structure::Parser::new(raw).message(0, raw.len(), 0);
    let envelope = Envelope::parse(body.header_span.slice(raw).unwrap_or_default());
    Summary { envelope, body }
}
