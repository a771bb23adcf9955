//! From `postcell-mime`'s summary of a message (computed once at delivery and cached)
//! to the ENVELOPE and BODYSTRUCTURE values the response writer sends.
//!
//! The summary keeps header text as the octets of the message (encoded words
//! undecoded, raw 8-bit kept), which is what IMAP sends; nothing is decoded here.

use postcell_imap_proto::response::{
    Address, BodyFields, BodyStructure, Disposition, Envelope, MultipartExtension,
    SinglePartExtension, SinglePartKind,
};
use postcell_mime::{Bytes, Content, Param, Summary};
use postcell_store::{MessageMeta, Store};

/// The cached summary, or one computed from the body (read if need be) and saved for
/// next time.
pub(crate) async fn cached_or_computed(
    store: &Store,
    mailbox_id: i64,
    meta: &MessageMeta,
    cached: Option<&[u8]>,
    body: &mut Option<Vec<u8>>,
) -> postcell_store::Result<Summary> {
    if let Some(summary) = cached.and_then(|bytes| Summary::from_bytes(bytes).ok()) {
        return Ok(summary);
    }
    if body.is_none() {
        *body = Some(store.get_message_blob(&meta.blob_id, meta.size).await?);
    }
    let summary = postcell_mime::summarize(body.as_deref().unwrap_or_default());
    if let Err(error) = store
        .set_message_summary(mailbox_id, meta.uid, &summary.to_bytes())
        .await
    {
        // The answer does not depend on it: the summary is computed again next time.
        tracing::warn!(%error, uid = meta.uid, "cannot save a message summary");
    }
    Ok(summary)
}

fn bytes(value: &Option<Bytes>) -> Option<Vec<u8>> {
    value.as_ref().map(|b| b.as_bytes().to_vec())
}

fn params(params: &[Param]) -> Vec<(Vec<u8>, Vec<u8>)> {
    params
        .iter()
        .map(|p| (p.name.as_bytes().to_vec(), p.value.as_bytes().to_vec()))
        .collect()
}

fn addresses(list: &[postcell_mime::Address]) -> Vec<Address> {
    list.iter()
        .map(|a| Address {
            name: bytes(&a.name),
            adl: bytes(&a.adl),
            mailbox: bytes(&a.mailbox),
            host: bytes(&a.host),
        })
        .collect()
}

/// ENVELOPE.
pub(crate) fn envelope(envelope: &postcell_mime::Envelope) -> Envelope {
    Envelope {
        date: bytes(&envelope.date),
        subject: bytes(&envelope.subject),
        from: addresses(&envelope.from),
        sender: addresses(&envelope.sender),
        reply_to: addresses(&envelope.reply_to),
        to: addresses(&envelope.to),
        cc: addresses(&envelope.cc),
        bcc: addresses(&envelope.bcc),
        in_reply_to: bytes(&envelope.in_reply_to),
        message_id: bytes(&envelope.message_id),
    }
}

fn disposition(disposition: &Option<postcell_mime::Disposition>) -> Option<Disposition> {
    disposition.as_ref().map(|d| Disposition {
        kind: d.kind.clone(),
        params: params(&d.params),
    })
}

fn languages(language: &[Bytes]) -> Vec<Vec<u8>> {
    language.iter().map(|l| l.as_bytes().to_vec()).collect()
}

/// BODYSTRUCTURE, with its extension data (BODY is the same value written without).
///
/// A `message/global` part (RFC 6532) carries its envelope and structure like a
/// `message/rfc822` one only for an IMAP4rev2 client: RFC 9051's grammar has
/// `"MESSAGE" "GLOBAL"` in `media-message`, RFC 3501's does not, and IMAP4rev1 parsers
/// read those fields as garbage. Others get it as a basic part.
pub(crate) fn body_structure(
    body: &postcell_mime::BodyStructure,
    imap4rev2: bool,
) -> BodyStructure {
    let fields = |f: &postcell_mime::BodyFields| BodyFields {
        params: params(&body.params),
        id: bytes(&f.id),
        description: bytes(&f.description),
        encoding: f.encoding.clone(),
        size: u32::try_from(f.size).unwrap_or(u32::MAX),
    };
    let single = |f: &postcell_mime::BodyFields, kind: SinglePartKind| BodyStructure::Single {
        media_type: body.media_type.clone(),
        media_subtype: body.media_subtype.clone(),
        fields: fields(f),
        kind,
        extension: Some(SinglePartExtension {
            md5: bytes(&f.md5),
            disposition: disposition(&body.disposition),
            language: languages(&body.language),
            location: bytes(&body.location),
        }),
    };
    let lines = |n: usize| n as u64;
    match &body.content {
        Content::Basic(f) => single(f, SinglePartKind::Basic),
        Content::Text { fields, lines: n } => {
            single(fields, SinglePartKind::Text { lines: lines(*n) })
        }
        Content::Message { fields, .. }
            if !imap4rev2 && body.media_subtype.eq_ignore_ascii_case("global") =>
        {
            single(fields, SinglePartKind::Basic)
        }
        Content::Message {
            fields,
            envelope: inner,
            body: inner_body,
            lines: n,
        } => single(
            fields,
            SinglePartKind::Message {
                envelope: Box::new(envelope(inner)),
                body: Box::new(body_structure(inner_body, imap4rev2)),
                lines: lines(*n),
            },
        ),
        Content::Multipart { parts } => BodyStructure::Multipart {
            parts: parts
                .iter()
                .map(|part| body_structure(part, imap4rev2))
                .collect(),
            subtype: body.media_subtype.clone(),
            extension: Some(MultipartExtension {
                params: params(&body.params),
                disposition: disposition(&body.disposition),
                language: languages(&body.language),
                location: bytes(&body.location),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postcell_imap_proto::Utf8Mode;
    use postcell_imap_proto::response::{Data, FetchItem};

    fn fetch(items: Vec<FetchItem>) -> String {
        String::from_utf8(Data::Fetch { seq: 1, items }.to_bytes(Utf8Mode::Off)).unwrap()
    }

    #[test]
    fn a_multipart_message_as_rfc_9051_writes_it() {
        let raw = b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: hi\r\n\
            MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n\
            --b\r\nContent-Type: application/pdf; name=a.pdf\r\n\
            Content-Disposition: attachment; filename=a.pdf\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n";
        let summary = postcell_mime::summarize(raw);
        let text = fetch(vec![
            FetchItem::Envelope(Box::new(envelope(&summary.envelope))),
            FetchItem::BodyStructure(Box::new(body_structure(&summary.body, false))),
            FetchItem::Body(Box::new(body_structure(&summary.body, false))),
        ]);
        assert!(
            text.contains(
                "ENVELOPE (NIL \"hi\" ((\"Ann\" NIL \"ann\" \"example.org\")) ((\"Ann\" NIL \"ann\" \"example.org\")) ((\"Ann\" NIL \"ann\" \"example.org\")) ((NIL NIL \"bob\" \"example.org\")) NIL NIL NIL NIL)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL)(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 4 NIL (\"attachment\" (\"filename\" \"a.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "BODY ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 1)(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 4) \"mixed\")"
            ),
            "{text}"
        );
    }

    #[test]
    fn message_global_is_a_message_for_imap4rev2_clients_only() {
        let raw = b"Content-Type: multipart/mixed; boundary=g\r\n\r\n--g\r\n\
            Content-Type: message/global\r\n\r\nSubject: inner\r\n\r\nbody\r\n--g--\r\n";
        let summary = postcell_mime::summarize(raw);
        let rev1 = fetch(vec![FetchItem::Body(Box::new(body_structure(
            &summary.body,
            false,
        )))]);
        let rev2 = fetch(vec![FetchItem::Body(Box::new(body_structure(
            &summary.body,
            true,
        )))]);
        assert!(
            rev1.contains("(\"message\" \"global\" NIL NIL NIL \"7bit\" 22)"),
            "{rev1}"
        );
        assert!(rev2.contains("\"inner\""), "{rev2}");
    }
}
