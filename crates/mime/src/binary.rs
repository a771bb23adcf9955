//! `BINARY[section]` (RFC 3516): a part with its Content-Transfer-Encoding undone.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::parsers::MessageStream;

use crate::{BodyStructure, Summary};

/// Why a part cannot be sent decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one this crate decodes; the session
    /// answers `NO [UNKNOWN-CTE]` (RFC 3516 section 4.3).
    #[error("unknown Content-Transfer-Encoding {encoding:?}")]
    UnknownCte { encoding: String },
    /// The message has no such part (or `raw` is not the summarised message).
    #[error("no such part")]
    NoSuchPart,
}

/// The body of the part at `part` (IMAP part numbers, `[]` for the whole message) with its
/// transfer encoding undone: base64 and quoted-printable are decoded, the identity
/// encodings (7bit, 8bit, binary) are the body as it is.
///
/// Decoding is lenient where RFC 2045 asks for it: octets outside the base64 alphabet are
/// ignored (section 6.8), and a quoted-printable `=` that starts no valid escape is kept
/// as it is (section 6.7, note 1). A multipart, and a message/rfc822 part (which the
/// summary only makes of identity-encoded ones), is sent as it is.
pub fn decode_binary<'a>(
    raw: &'a [u8],
    summary: &Summary,
    part: &[u32],
) -> Result<Cow<'a, [u8]>, BinaryError> {
    if part.is_empty() {
        return Ok(Cow::Borrowed(raw));
    }
    let entity = summary.body.part(part).ok_or(BinaryError::NoSuchPart)?;
    let body = entity.body_span.slice(raw).ok_or(BinaryError::NoSuchPart)?;
    decode_body(entity, body)
}

/// `body`, the body of `entity`, with its transfer encoding undone.
pub(crate) fn decode_body<'a>(
    entity: &BodyStructure,
    body: &'a [u8],
) -> Result<Cow<'a, [u8]>, BinaryError> {
    let Some(fields) = entity.fields() else {
        return Ok(Cow::Borrowed(body));
    };
    match fields.encoding.as_str() {
        "7bit" | "8bit" | "binary" => Ok(Cow::Borrowed(body)),
        "base64" => Ok(Cow::Owned(decode_base64(body))),
        "quoted-printable" => Ok(Cow::Owned(decode_quoted_printable(body))),
        other => Err(BinaryError::UnknownCte {
            encoding: other.to_owned(),
        }),
    }
}

fn decode_base64(body: &[u8]) -> Vec<u8> {
    let alphabet: Vec<u8> = body
        .iter()
        .copied()
        .filter(|&byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'='))
        .collect();
    base64_decode(&alphabet).unwrap_or_default()
}

fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    // With no boundary, mail-parser's part decoder reads to the end and keeps invalid
    // escapes as they are.
    let (_, decoded) = MessageStream::new(body).decode_quoted_printable_mime(b"");
    decoded.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_ignores_what_is_outside_its_alphabet() {
        assert_eq!(decode_base64(b"aGVs\r\nbG8=\r\n"), b"hello");
        assert_eq!(decode_base64(b"aGVs*bG8=\r\n"), b"hello");
        assert_eq!(decode_base64(b""), b"");
    }

    #[test]
    fn quoted_printable_joins_soft_breaks_and_keeps_bad_escapes() {
        assert_eq!(
            decode_quoted_printable(b"caf=C3=A9 =\r\nau lait=3D\r\nnext"),
            "café au lait=\r\nnext".as_bytes()
        );
        assert_eq!(decode_quoted_printable(b"a=zz b"), b"a=zz b");
    }
}
