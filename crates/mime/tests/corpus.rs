//! The corpus in tests/corpus: invariants every message keeps, then what a reader of each
//! message by hand expects of its envelope, structure and sections.

mod common;

use postcell_mime::{
    Address, BinaryError, BodyStructure, Bytes, Content, Param, SectionSpec, SectionText, Summary,
    decode_binary, search_text, section, summarize,
};

use common::{corpus, dotted, message, numbered_parts};

fn fetch(
    raw: &[u8],
    summary: &Summary,
    part: &[u32],
    text: Option<SectionText>,
) -> Option<Vec<u8>> {
    section(
        raw,
        summary,
        &SectionSpec {
            part: part.to_vec(),
            text,
        },
    )
    .map(|octets| octets.into_owned())
}

/// `BODY[part]`, which must exist.
fn body(raw: &[u8], summary: &Summary, part: &[u32]) -> Vec<u8> {
    fetch(raw, summary, part, None).unwrap_or_else(|| panic!("BODY[{}] exists", dotted(part)))
}

fn body_with(raw: &[u8], summary: &Summary, part: &[u32], text: SectionText) -> Vec<u8> {
    fetch(raw, summary, part, Some(text.clone()))
        .unwrap_or_else(|| panic!("BODY[{}.{text:?}] exists", dotted(part)))
}

fn binary(raw: &[u8], summary: &Summary, part: &[u32]) -> Vec<u8> {
    decode_binary(raw, summary, part)
        .unwrap_or_else(|error| panic!("BINARY[{}]: {error}", dotted(part)))
        .into_owned()
}

fn part<'a>(summary: &'a Summary, path: &[u32]) -> &'a BodyStructure {
    summary
        .body
        .part(path)
        .unwrap_or_else(|| panic!("part {} exists", dotted(path)))
}

fn params(list: &[(&str, &str)]) -> Vec<Param> {
    list.iter()
        .map(|&(name, value)| Param::new(name, value))
        .collect()
}

fn shape(entity: &BodyStructure) -> String {
    let inner = match &entity.content {
        Content::Multipart { parts } => {
            let parts: Vec<String> = parts.iter().map(shape).collect();
            format!("({})", parts.join(" "))
        }
        Content::Message { body, .. } => format!("[{}]", shape(body)),
        Content::Basic(_) | Content::Text { .. } => String::new(),
    };
    format!("{}/{}{inner}", entity.media_type, entity.media_subtype)
}

fn text(value: &str) -> Option<Bytes> {
    Some(Bytes::from(value))
}

fn lines_of(octets: &[u8]) -> usize {
    // Independent of the crate's count: split into lines and count them.
    if octets.is_empty() {
        0
    } else {
        octets.split_inclusive(|&byte| byte == b'\n').count()
    }
}

// ---------------------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------------------

#[test]
fn the_corpus_has_at_least_30_messages() {
    assert!(corpus().len() >= 30, "{} messages", corpus().len());
}

#[test]
fn header_and_text_make_the_whole_message() {
    for (name, raw) in corpus() {
        let summary = summarize(&raw);
        let header = body_with(&raw, &summary, &[], SectionText::Header);
        let text = body_with(&raw, &summary, &[], SectionText::Text);
        assert_eq!(
            [header, text].concat(),
            raw,
            "{name}: HEADER + TEXT != BODY[]"
        );
        assert_eq!(body(&raw, &summary, &[]), raw, "{name}: BODY[]");
        assert_eq!(summary.body.header_span.start, 0, "{name}");
        assert_eq!(summary.body.body_span.end, raw.len(), "{name}");
    }
}

#[test]
fn every_part_is_the_octets_between_its_offsets() {
    for (name, raw) in corpus() {
        let summary = summarize(&raw);
        for (path, entity) in numbered_parts(&summary.body) {
            let at = format!("{name} part {}", dotted(&path));
            let found = summary.body.part(&path).expect(&at);
            assert!(
                std::ptr::eq(found, entity),
                "{at}: part() finds another part"
            );

            let header = entity.header_span;
            let body_span = entity.body_span;
            assert!(header.start <= header.end, "{at}");
            assert_eq!(header.end, body_span.start, "{at}: header and body touch");
            assert!(body_span.end <= raw.len(), "{at}: inside the message");
            assert_eq!(
                body(&raw, &summary, &path),
                raw[body_span.start..body_span.end],
                "{at}: BODY[part]"
            );
            assert_eq!(
                body_with(&raw, &summary, &path, SectionText::Mime),
                raw[header.start..header.end],
                "{at}: BODY[part.MIME]"
            );
            if let Some(fields) = entity.fields() {
                assert_eq!(fields.size, body_span.len(), "{at}: size");
            }
            match &entity.content {
                Content::Text { lines, .. } | Content::Message { lines, .. } => {
                    assert_eq!(
                        *lines,
                        lines_of(&raw[body_span.start..body_span.end]),
                        "{at}"
                    );
                }
                _ => {}
            }

            // The parts of a multipart lie in order inside its body.
            let mut previous_end = body_span.start;
            for child in entity.parts() {
                assert!(
                    child.header_span.start >= previous_end,
                    "{at}: parts in order"
                );
                assert!(child.body_span.end <= body_span.end, "{at}: parts inside");
                previous_end = child.body_span.end;
            }

            match &entity.content {
                Content::Message { body: inner, .. } => {
                    assert_eq!(inner.header_span.start, body_span.start, "{at}");
                    assert_eq!(inner.body_span.end, body_span.end, "{at}");
                    let inner_header = body_with(&raw, &summary, &path, SectionText::Header);
                    let inner_text = body_with(&raw, &summary, &path, SectionText::Text);
                    assert_eq!(
                        [inner_header, inner_text].concat(),
                        body(&raw, &summary, &path),
                        "{at}: HEADER + TEXT of an encapsulated message"
                    );
                }
                _ => {
                    assert_eq!(
                        fetch(&raw, &summary, &path, Some(SectionText::Header)),
                        None,
                        "{at}"
                    );
                    assert_eq!(
                        fetch(&raw, &summary, &path, Some(SectionText::Text)),
                        None,
                        "{at}"
                    );
                }
            }

            match decode_binary(&raw, &summary, &path) {
                Ok(decoded) => {
                    let encoding = entity.fields().map_or("7bit", |f| f.encoding.as_str());
                    if matches!(encoding, "7bit" | "8bit" | "binary") {
                        assert_eq!(decoded, body(&raw, &summary, &path), "{at}: identity");
                    }
                }
                Err(BinaryError::UnknownCte { .. }) => {}
                Err(error) => panic!("{at}: {error}"),
            }
        }
    }
}

#[test]
fn header_fields_select_and_keep_message_order() {
    for (name, raw) in corpus() {
        let summary = summarize(&raw);
        let header = body_with(&raw, &summary, &[], SectionText::Header);
        let all_names: Vec<String> = header
            .split(|&byte| byte == b'\n')
            .filter_map(|line| {
                let colon = line.iter().position(|&byte| byte == b':')?;
                let name = &line[..colon];
                (!name.is_empty() && !name.starts_with(b" ") && !name.starts_with(b"\t"))
                    .then(|| String::from_utf8_lossy(name).to_ascii_uppercase())
            })
            .collect();
        if all_names.is_empty() {
            continue;
        }
        assert_eq!(
            body_with(
                &raw,
                &summary,
                &[],
                SectionText::HeaderFields(all_names.clone())
            ),
            header,
            "{name}: every field named is the whole header"
        );
        assert_eq!(
            body_with(
                &raw,
                &summary,
                &[],
                SectionText::HeaderFieldsNot(Vec::new())
            ),
            header,
            "{name}: no field excluded is the whole header"
        );
        let none = body_with(&raw, &summary, &[], SectionText::HeaderFieldsNot(all_names));
        assert!(
            none == b"\r\n" || none == b"\n" || none.is_empty(),
            "{name}: every field excluded leaves the empty line: {none:?}"
        );
    }
}

#[test]
fn summaries_survive_the_cache() {
    for (name, raw) in corpus() {
        let summary = summarize(&raw);
        let bytes = summary.to_bytes();
        let back = Summary::from_bytes(&bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(back, summary, "{name}");
    }
}

#[test]
fn a_cache_entry_of_another_version_is_refused() {
    let summary = summarize(&message("01-plain.eml"));
    let json = String::from_utf8(summary.to_bytes()).unwrap();
    assert!(json.starts_with("{\"version\":1,"), "{json}");
    let other = json.replacen("{\"version\":1,", "{\"version\":999,", 1);
    assert!(matches!(
        Summary::from_bytes(other.as_bytes()),
        Err(postcell_mime::Error::Version {
            found: 999,
            expected: 1
        })
    ));
    assert!(matches!(
        Summary::from_bytes(b"not json"),
        Err(postcell_mime::Error::Corrupt(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Messages read by hand
// ---------------------------------------------------------------------------------------

#[test]
fn plain_text_message() {
    let raw = message("01-plain.eml");
    let summary = summarize(&raw);
    let envelope = &summary.envelope;
    assert_eq!(envelope.date, text("Mon, 6 Jan 2025 09:59:58 +0100"));
    assert_eq!(envelope.subject, text("Lunch on Friday?"));
    let alice = Address::new(Some("Alice Example"), "alice", "example.org");
    assert_eq!(envelope.from, std::slice::from_ref(&alice));
    assert_eq!(envelope.sender, std::slice::from_ref(&alice));
    assert_eq!(envelope.reply_to, [alice]);
    assert_eq!(
        envelope.to,
        [
            Address::new(Some("Bob"), "bob", "example.net"),
            Address::new(None, "carol", "example.net"),
        ]
    );
    assert_eq!(
        envelope.cc,
        [Address::new(Some("Dave, the Third"), "dave", "example.net")]
    );
    assert!(envelope.bcc.is_empty());
    assert_eq!(envelope.in_reply_to, text("<prev-1@example.net>"));
    assert_eq!(
        envelope.message_id,
        text("<20250106095958.1234@example.org>")
    );

    let text_body = b"Hi Bob,\r\n\r\nLunch on Friday at noon?\r\n\r\nAlice\r\n";
    assert_eq!(shape(&summary.body), "text/plain");
    assert_eq!(summary.body.params, params(&[("charset", "us-ascii")]));
    let Content::Text { fields, lines } = &summary.body.content else {
        panic!("a text part");
    };
    assert_eq!(fields.encoding, "7bit");
    assert_eq!(fields.size, text_body.len());
    assert_eq!(*lines, 5);
    assert_eq!(fields.id, None);

    // BODY[1] of a message that is not multipart is its body; BODY[1.MIME] its header.
    assert_eq!(body(&raw, &summary, &[1]), text_body);
    assert_eq!(body_with(&raw, &summary, &[], SectionText::Text), text_body);
    assert_eq!(
        body_with(&raw, &summary, &[1], SectionText::Mime),
        body_with(&raw, &summary, &[], SectionText::Header)
    );
    assert_eq!(
        body_with(
            &raw,
            &summary,
            &[],
            SectionText::HeaderFields(vec!["subject".into(), "FROM".into()])
        ),
        b"From: Alice Example <alice@example.org>\r\nSubject: Lunch on Friday?\r\n\r\n"
    );
    let without_trace = body_with(
        &raw,
        &summary,
        &[],
        SectionText::HeaderFieldsNot(vec!["Received".into(), "return-path".into()]),
    );
    assert!(without_trace.starts_with(b"Date: Mon, 6 Jan 2025"));
    assert!(without_trace.ends_with(b"charset=us-ascii\r\n\r\n"));
    assert_eq!(fetch(&raw, &summary, &[2], None), None);
    assert_eq!(fetch(&raw, &summary, &[1, 1], None), None);
    assert_eq!(fetch(&raw, &summary, &[0], None), None);
    assert_eq!(fetch(&raw, &summary, &[1], Some(SectionText::Header)), None);
    assert_eq!(fetch(&raw, &summary, &[], Some(SectionText::Mime)), None);
}

const PDF: &[u8] =
    b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n1 0 obj\n<</Type/Catalog>>\nendobj\ntrailer\n<</Root 1 0 R>>\n%%EOF\n";

#[test]
fn mixed_with_an_attachment() {
    let raw = message("02-mixed-attachment.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/mixed(text/plain application/pdf)"
    );
    assert_eq!(
        summary.body.params,
        params(&[("boundary", "XyZ-boundary-1")])
    );

    let text_part = part(&summary, &[1]);
    assert_eq!(text_part.params, params(&[("charset", "utf-8")]));
    assert_eq!(
        body(&raw, &summary, &[1]),
        b"Please find the report attached."
    );
    assert_eq!(
        text_part.content,
        Content::Text {
            fields: postcell_mime::BodyFields {
                id: None,
                description: None,
                encoding: "7bit".into(),
                size: 32,
                md5: None,
            },
            lines: 1,
        }
    );

    let pdf = part(&summary, &[2]);
    assert_eq!(pdf.params, params(&[("name", "report.pdf")]));
    let disposition = pdf.disposition.as_ref().expect("a disposition");
    assert_eq!(disposition.kind, "attachment");
    assert_eq!(disposition.params, params(&[("filename", "report.pdf")]));
    assert_eq!(pdf.filename.as_deref(), Some("report.pdf"));
    assert_eq!(pdf.fields().unwrap().encoding, "base64");
    assert_eq!(binary(&raw, &summary, &[2]), PDF);
    assert_eq!(
        body_with(&raw, &summary, &[2], SectionText::Mime),
        b"Content-Type: application/pdf; name=\"report.pdf\"\r\n\
          Content-Transfer-Encoding: base64\r\n\
          Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n"
    );
    let text = body_with(&raw, &summary, &[], SectionText::Text);
    assert!(text.starts_with(b"This is a multi-part message in MIME format.\r\n"));
    assert!(text.ends_with(b"--XyZ-boundary-1--\r\n"));
    assert_eq!(fetch(&raw, &summary, &[3], None), None);
}

#[test]
fn alternative_text_and_html_in_quoted_printable() {
    let raw = message("03-alternative.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/alternative(text/plain text/html)"
    );
    assert_eq!(body(&raw, &summary, &[1]), b"Caf=C3=A9 au lait");
    assert_eq!(binary(&raw, &summary, &[1]), "Café au lait".as_bytes());
    assert_eq!(
        binary(&raw, &summary, &[2]),
        "<p>Café <b>au lait</b></p>".as_bytes()
    );
    assert_eq!(part(&summary, &[2]).params, params(&[("charset", "utf-8")]));
    let search = search_text(&raw);
    assert!(search.body.contains("Café au lait"), "{search:?}");
    assert!(search.headers.contains("Subject: Coffee\n"), "{search:?}");
}

#[test]
fn nested_multiparts() {
    let raw = message("04-nested.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/mixed(multipart/alternative(text/plain multipart/related(text/html image/png)) application/zip)"
    );
    assert_eq!(body(&raw, &summary, &[1, 1]), b"See the picture.");
    assert_eq!(
        body(&raw, &summary, &[1, 2, 1]),
        b"<img src=\"cid:logo@example.org\"> See the picture."
    );
    let related = part(&summary, &[1, 2]);
    assert_eq!(
        related.params,
        params(&[("boundary", "inner"), ("type", "text/html")])
    );
    let image = part(&summary, &[1, 2, 2]);
    assert_eq!(image.fields().unwrap().id, text("<logo@example.org>"));
    assert_eq!(image.disposition.as_ref().unwrap().kind, "inline");
    assert!(binary(&raw, &summary, &[1, 2, 2]).starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(binary(&raw, &summary, &[2]).starts_with(b"PK\x03\x04"));
    assert_eq!(part(&summary, &[2]).filename.as_deref(), Some("files.zip"));
    // A multipart part's body runs from its header to the next delimiter of its parent.
    let alternative = body(&raw, &summary, &[1]);
    assert!(alternative.starts_with(b"--middle\r\n"));
    assert!(alternative.ends_with(b"--middle--"));
    assert_eq!(fetch(&raw, &summary, &[1, 3], None), None);
    assert_eq!(fetch(&raw, &summary, &[1, 1, 1], None), None);
}

#[test]
fn an_attached_message_with_its_own_parts() {
    let raw = message("05-rfc822-attachment.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/mixed(text/plain message/rfc822[multipart/mixed(text/plain application/octet-stream)])"
    );
    let attached = part(&summary, &[2]);
    let Content::Message {
        fields,
        envelope,
        lines,
        ..
    } = &attached.content
    else {
        panic!("a message part");
    };
    assert_eq!(fields.description, text("Original message"));
    assert_eq!(envelope.subject, text("Original"));
    assert_eq!(
        envelope.from,
        [Address::new(Some("Carol"), "carol", "example.net")]
    );
    assert_eq!(envelope.message_id, text("<orig@example.net>"));
    assert_eq!(envelope.date, text("Thu, 9 Jan 2025 18:00:00 +0000"));

    let inner_header = b"From: Carol <carol@example.net>\r\n\
        To: Bob <bob@example.net>\r\n\
        Subject: Original\r\n\
        Date: Thu, 9 Jan 2025 18:00:00 +0000\r\n\
        Message-ID: <orig@example.net>\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"orig\"\r\n\r\n";
    assert_eq!(
        body_with(&raw, &summary, &[2], SectionText::Header),
        inner_header
    );
    let inner_text = body_with(&raw, &summary, &[2], SectionText::Text);
    assert!(inner_text.starts_with(b"--orig\r\n"));
    assert!(inner_text.ends_with(b"--orig--"));
    assert_eq!(
        body(&raw, &summary, &[2]),
        [&inner_header[..], &inner_text].concat()
    );
    assert_eq!(fields.size, inner_header.len() + inner_text.len());
    assert_eq!(*lines, lines_of(&body(&raw, &summary, &[2])));
    assert_eq!(
        body_with(
            &raw,
            &summary,
            &[2],
            SectionText::HeaderFields(vec!["Subject".into()])
        ),
        b"Subject: Original\r\n\r\n"
    );
    assert_eq!(body(&raw, &summary, &[2, 1]), b"The original text.");
    assert_eq!(body(&raw, &summary, &[2, 2]), b"AAECAwQFBgc=");
    assert_eq!(binary(&raw, &summary, &[2, 2]), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(
        body_with(&raw, &summary, &[2, 2], SectionText::Mime),
        b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n"
    );
    assert_eq!(fetch(&raw, &summary, &[2, 3], None), None);
    assert_eq!(fetch(&raw, &summary, &[1], Some(SectionText::Header)), None);
    assert_eq!(
        fetch(&raw, &summary, &[2, 1], Some(SectionText::Header)),
        None
    );
}

#[test]
fn rfc2231_file_names_stay_raw_in_params() {
    let raw = message("06-rfc2231-filename.eml");
    let summary = summarize(&raw);
    let file = part(&summary, &[2]);
    assert_eq!(
        file.params,
        params(&[
            ("charset", "utf-8"),
            ("name*", "UTF-8''%E6%97%A5%E6%9C%AC.txt")
        ])
    );
    assert_eq!(
        file.disposition.as_ref().unwrap().params,
        params(&[("filename*", "UTF-8''%E6%97%A5%E6%9C%AC.txt")])
    );
    assert_eq!(file.filename.as_deref(), Some("日本.txt"));
    assert_eq!(
        binary(&raw, &summary, &[2]),
        "日本語のテキスト\n".as_bytes()
    );

    let raw = message("07-rfc2231-continuations.eml");
    let summary = summarize(&raw);
    // A text part that names no charset gets the RFC 2045 default.
    assert_eq!(
        part(&summary, &[1]).params,
        params(&[("charset", "us-ascii")])
    );
    let file = part(&summary, &[2]);
    assert_eq!(
        file.params,
        params(&[("name*0", "very-long-"), ("name*1", "name.pdf")])
    );
    assert_eq!(
        file.disposition.as_ref().unwrap().params,
        params(&[
            ("filename*0*", "UTF-8''%E9%95%B7%E3%81%84"),
            ("filename*1*", "%E5%90%8D%E5%89%8D"),
            ("filename*2", ".pdf"),
        ])
    );
    assert_eq!(file.filename.as_deref(), Some("長い名前.pdf"));
    assert_eq!(binary(&raw, &summary, &[2]), PDF);
}

#[test]
fn japanese_charsets() {
    let raw = message("08-iso2022jp.eml");
    let summary = summarize(&raw);
    assert_eq!(
        summary.envelope.subject,
        text("=?iso-2022-jp?B?GyRCRnxLXDhsJE43b0w+GyhC?=")
    );
    assert_eq!(
        summary.envelope.from,
        [Address::new(
            Some("=?iso-2022-jp?B?GyRCOzNFREJATzobKEI=?="),
            "taro",
            "example.jp"
        )]
    );
    assert_eq!(summary.body.params, params(&[("charset", "ISO-2022-JP")]));
    let search = search_text(&raw);
    assert!(
        search.headers.contains("Subject: 日本語の件名\n"),
        "{search:?}"
    );
    assert!(
        search
            .headers
            .contains("From: 山田太郎 <taro@example.jp>\n"),
        "{search:?}"
    );
    assert_eq!(search.body, "こんにちは、世界。\r\nテストです。\r\n");

    let raw = message("09-shift-jis.eml");
    let summary = summarize(&raw);
    assert_eq!(
        summary.envelope.subject,
        text("=?shift_jis?B?g1aDdINnSklTgsyMj5a8?=")
    );
    assert_eq!(summary.body.fields().unwrap().encoding, "8bit");
    let search = search_text(&raw);
    assert!(
        search.headers.contains("Subject: シフトJISの件名\n"),
        "{search:?}"
    );
    assert_eq!(search.body, "シフトJISの本文です。\r\n");

    let raw = message("10-euc-jp.eml");
    let search = search_text(&raw);
    assert!(
        search.headers.contains("Subject: EUC-JPの件名\n"),
        "{search:?}"
    );
    assert_eq!(search.body, "EUC-JPの本文です。\r\n");
}

#[test]
fn encoded_words_stay_encoded_in_the_envelope() {
    let raw = message("11-utf8-encoded-words.eml");
    let summary = summarize(&raw);
    let envelope = &summary.envelope;
    assert_eq!(
        envelope.from,
        [Address::new(
            Some("=?UTF-8?Q?Jos=C3=A9_Garc=C3=ADa?="),
            "jose",
            "example.es"
        )]
    );
    assert_eq!(
        envelope.to,
        [
            Address::new(Some("Doe, Jane"), "jane", "example.com"),
            Address::new(Some("=?UTF-8?B?5bGx55Sw?="), "yamada", "example.jp"),
        ]
    );
    assert_eq!(
        envelope.subject,
        text("=?UTF-8?Q?Caf=C3=A9?= =?UTF-8?B?IOaXpeacrA==?=")
    );
    let search = search_text(&raw);
    assert!(
        search.headers.contains("Subject: Café 日本\n"),
        "{search:?}"
    );
    assert!(search.headers.contains("José García"), "{search:?}");
    assert_eq!(search.body, "¡Hola! 日本\r\n");
}

#[test]
fn eight_bit_headers_keep_their_octets() {
    let raw = message("12-raw-utf8-headers.eml");
    let summary = summarize(&raw);
    assert_eq!(summary.envelope.subject, text("日本語の件名"));
    assert_eq!(
        summary.envelope.from,
        [Address::new(Some("山田太郎"), "yamada", "example.jp")]
    );
    assert_eq!(
        summary.envelope.to,
        [Address::new(None, "用户", "例子.广告")]
    );

    let raw = message("13-raw-8bit-sjis-header.eml");
    let summary = summarize(&raw);
    let subject_sjis = b"\x8c\x8f\x96\xbc\x83e\x83X\x83g";
    assert_eq!(summary.envelope.subject, Some(Bytes(subject_sjis.to_vec())));
    assert_eq!(
        summary.envelope.from[0].name,
        Some(Bytes(b"\x8eR\x93c".to_vec()))
    );
    assert_eq!(summary.envelope.from[0].mailbox, text("yamada"));
    // Shift_JIS survives the JSON cache as octets.
    let back = Summary::from_bytes(&summary.to_bytes()).unwrap();
    assert_eq!(back.envelope.subject, Some(Bytes(subject_sjis.to_vec())));
    // Search reads raw 8-bit header text in the message's charset.
    let search = search_text(&raw);
    assert!(
        search.headers.contains("Subject: 件名テスト\n"),
        "{search:?}"
    );
    assert!(
        search.headers.contains("From: 山田 <yamada@example.jp>\n"),
        "{search:?}"
    );
    assert_eq!(search.body, "本文テスト\r\n");
}

#[test]
fn groups_in_address_lists() {
    let raw = message("14-group-addresses.eml");
    let summary = summarize(&raw);
    assert_eq!(
        summary.envelope.to,
        [
            Address::group_start("undisclosed-recipients"),
            Address::group_end()
        ]
    );
    assert_eq!(
        summary.envelope.cc,
        [
            Address::group_start("Team"),
            Address::new(None, "ann", "example.org"),
            Address::new(Some("Bob B"), "bob", "example.org"),
            Address::group_end(),
            Address::new(None, "carl", "example.org"),
        ]
    );
    assert!(summary.envelope.to[0].is_group_start());
    assert!(summary.envelope.to[1].is_group_end());
}

#[test]
fn missing_fields_are_absent_and_sender_defaults_to_from() {
    let raw = message("15-missing-date-msgid.eml");
    let summary = summarize(&raw);
    let envelope = &summary.envelope;
    assert_eq!(envelope.date, None);
    assert_eq!(envelope.message_id, None);
    assert_eq!(envelope.in_reply_to, None);
    assert_eq!(envelope.from, [Address::new(None, "nobody", "example.org")]);
    assert_eq!(envelope.sender, envelope.from);
    assert_eq!(envelope.reply_to, envelope.from);
    assert_eq!(shape(&summary.body), "text/plain");
    assert_eq!(summary.body.params, params(&[("charset", "us-ascii")]));

    let raw = message("32-sender-replyto.eml");
    let summary = summarize(&raw);
    assert_eq!(
        summary.envelope.sender,
        [Address::new(Some("Secretary"), "secretary", "example.org")]
    );
    // Reply-To is present but empty: it takes From.
    assert_eq!(
        summary.envelope.reply_to,
        [Address::new(Some("Boss"), "boss", "example.org")]
    );
}

#[test]
fn a_message_with_no_body_and_one_with_an_empty_body() {
    let raw = message("16-headers-only.eml");
    assert_eq!(raw, b"From: ann@example.org\r\nSubject: headers only\r\n");
    let summary = summarize(&raw);
    assert_eq!(body_with(&raw, &summary, &[], SectionText::Header), raw);
    assert_eq!(body_with(&raw, &summary, &[], SectionText::Text), b"");
    assert_eq!(body(&raw, &summary, &[1]), b"");
    // No blank line in the message, so none in the subset either.
    assert_eq!(
        body_with(
            &raw,
            &summary,
            &[],
            SectionText::HeaderFields(vec!["Subject".into()])
        ),
        b"Subject: headers only\r\n"
    );
    assert_eq!(summary.body.fields().unwrap().size, 0);
    assert_eq!(summary.envelope.subject, text("headers only"));

    let raw = message("17-blank-line-body.eml");
    let summary = summarize(&raw);
    assert_eq!(body_with(&raw, &summary, &[], SectionText::Header), raw);
    assert_eq!(body_with(&raw, &summary, &[], SectionText::Text), b"");
    assert_eq!(
        body_with(
            &raw,
            &summary,
            &[],
            SectionText::HeaderFields(vec!["From".into()])
        ),
        b"From: ann@example.org\r\n\r\n"
    );
    assert_eq!(
        summary.body.content,
        Content::Text {
            fields: postcell_mime::BodyFields {
                id: None,
                description: None,
                encoding: "7bit".into(),
                size: 0,
                md5: None
            },
            lines: 0
        }
    );
}

#[test]
fn base64_and_quoted_printable_decode_and_unknown_encodings_do_not() {
    let raw = message("18-base64-qp.eml");
    let summary = summarize(&raw);
    assert_eq!(
        binary(&raw, &summary, &[1]),
        b"Soft line breaks, an equals sign = and caf\xe9."
    );
    assert_eq!(
        binary(&raw, &summary, &[2]),
        (0..=255u8).collect::<Vec<_>>()
    );
    assert!(
        search_text(&raw)
            .body
            .contains("an equals sign = and café.")
    );

    let raw = message("19-unknown-cte.eml");
    let summary = summarize(&raw);
    assert_eq!(
        decode_binary(&raw, &summary, &[2]),
        Err(BinaryError::UnknownCte {
            encoding: "x-uuencode".into()
        })
    );
    assert!(body(&raw, &summary, &[2]).starts_with(b"begin 644 hi.txt"));
    assert_eq!(
        decode_binary(&raw, &summary, &[3]),
        Err(BinaryError::NoSuchPart)
    );
    assert_eq!(binary(&raw, &summary, &[]), raw);
}

#[test]
fn every_extension_field() {
    let raw = message("20-content-fields.eml");
    let summary = summarize(&raw);
    let root = &summary.body;
    assert_eq!(root.language, [Bytes::from("en")]);
    assert_eq!(root.location, text("http://example.org/all"));
    assert_eq!(root.disposition.as_ref().unwrap().kind, "inline");
    assert!(root.disposition.as_ref().unwrap().params.is_empty());

    let doc = part(&summary, &[1]);
    let fields = doc.fields().unwrap();
    assert_eq!(fields.id, text("<doc@example.org>"));
    assert_eq!(fields.description, text("=?UTF-8?Q?D=C3=A9tails?="));
    assert_eq!(fields.md5, text("Q2hlY2sgSW50ZWdyaXR5IQ=="));
    assert_eq!(fields.size, "Details here.".len());
    assert_eq!(doc.language, [Bytes::from("en"), Bytes::from("fr")]);
    assert_eq!(doc.location, text("http://example.org/doc.txt"));
    let disposition = doc.disposition.as_ref().unwrap();
    assert_eq!(disposition.kind, "inline");
    assert_eq!(
        disposition.params,
        params(&[
            ("filename", "doc.txt"),
            ("size", "13"),
            ("creation-date", "Mon, 6 Jan 2025 10:00:00 +0000"),
        ])
    );
}

#[test]
fn long_folded_headers_are_unfolded() {
    let raw = message("21-long-folded.eml");
    let summary = summarize(&raw);
    assert_eq!(
        summary.envelope.subject,
        text(
            "This subject is long enough that it had to be folded over several lines by \
             the sending client, which is allowed by RFC 5322 section 2.2.3"
        )
    );
    assert_eq!(summary.envelope.message_id, text("<folded@example.org>"));
    let to: Vec<_> = summary
        .envelope
        .to
        .iter()
        .map(|address| address.mailbox.as_ref().unwrap().to_string_lossy())
        .collect();
    assert_eq!(to, ["one", "two", "three", "four", "five", "six"]);
    assert_eq!(summary.envelope.to[4].name, text("Five, Esq."));
    // HEADER.FIELDS copies a field with its folds.
    assert_eq!(
        body_with(&raw, &summary, &[], SectionText::HeaderFields(vec!["references".into()])),
        b"References: <a1@example.org> <a2@example.org>\r\n <a3@example.org>\r\n <a4@example.org>\r\n\r\n"
    );
}

#[test]
fn bare_line_feeds_are_measured_as_they_are() {
    let raw = message("22-lf-only.eml");
    assert!(!raw.contains(&b'\r'));
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/alternative(text/plain text/html)"
    );
    assert_eq!(body(&raw, &summary, &[1]), b"Line one\nLine two");
    let Content::Text { fields, lines } = &part(&summary, &[1]).content else {
        panic!("text");
    };
    assert_eq!((fields.size, *lines), (17, 2));
    assert_eq!(
        body_with(&raw, &summary, &[1], SectionText::Mime),
        b"Content-Type: text/plain; charset=us-ascii\n\n"
    );
    assert_eq!(
        body_with(
            &raw,
            &summary,
            &[],
            SectionText::HeaderFields(vec!["Subject".into()])
        ),
        b"Subject: Bare line feeds\n\n"
    );
    assert_eq!(body(&raw, &summary, &[2]), b"<p>Line one<br>Line two</p>");
}

#[test]
fn digest_parts_default_to_messages() {
    let raw = message("23-digest.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/digest(message/rfc822[text/plain] message/rfc822[text/plain])"
    );
    let Content::Message { envelope, .. } = &part(&summary, &[1]).content else {
        panic!("a message");
    };
    assert_eq!(envelope.subject, text("First"));
    assert!(part(&summary, &[1]).params.is_empty());
    assert_eq!(
        body_with(&raw, &summary, &[1], SectionText::Text),
        b"First message."
    );
    assert_eq!(body(&raw, &summary, &[1, 1]), b"First message.");
    assert_eq!(body(&raw, &summary, &[2, 1]), b"Second message.");
    assert_eq!(
        body_with(
            &raw,
            &summary,
            &[2],
            SectionText::HeaderFields(vec!["from".into()])
        ),
        b"From: two@example.org\r\n\r\n"
    );
}

#[test]
fn broken_multiparts() {
    // No boundary: the body is text.
    let raw = message("25-multipart-no-boundary.eml");
    let summary = summarize(&raw);
    assert_eq!(shape(&summary.body), "text/plain");
    assert!(body(&raw, &summary, &[1]).starts_with(b"--what\r\n"));

    // No closing delimiter: the last part runs to the end.
    let raw = message("26-missing-close-delimiter.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/mixed(text/plain text/plain)"
    );
    assert_eq!(body(&raw, &summary, &[1]), b"First.");
    assert_eq!(
        body(&raw, &summary, &[2]),
        b"Second, and the message ends.\r\n"
    );

    // Preamble and epilogue belong to no part; padding after a delimiter is allowed.
    let raw = message("27-preamble-epilogue.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/mixed(text/plain text/plain)"
    );
    assert_eq!(
        body(&raw, &summary, &[1]),
        b"Part one, after a delimiter with transport padding."
    );
    assert_eq!(body(&raw, &summary, &[2]), b"Part two.\r\n");
    assert_eq!(summary.body.params, params(&[("boundary", "simple")]));

    // A delimiter is a whole line: `--=_abc_inner` is not a delimiter of `=_abc`.
    let raw = message("28-boundary-prefix.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/mixed(multipart/alternative(text/plain text/html) text/plain)"
    );
    assert_eq!(body(&raw, &summary, &[1, 1]), b"plain");
    assert_eq!(body(&raw, &summary, &[1, 2]), b"<p>html</p>");
    assert_eq!(body(&raw, &summary, &[2]), b"last");

    // A part with an empty header is text/plain.
    let raw = message("31-part-without-headers.eml");
    let summary = summarize(&raw);
    assert_eq!(body_with(&raw, &summary, &[1], SectionText::Mime), b"\r\n");
    assert_eq!(
        body(&raw, &summary, &[1]),
        b"This part has an empty header."
    );
    assert_eq!(
        part(&summary, &[1]).params,
        params(&[("charset", "us-ascii")])
    );
}

#[test]
fn a_message_whose_body_is_a_message() {
    let raw = message("29-message-rfc822-top.eml");
    let summary = summarize(&raw);
    assert_eq!(shape(&summary.body), "message/rfc822[text/plain]");
    let inner_header = b"From: inner@example.org\r\nTo: ann@example.org\r\nSubject: Inner\r\n\
        Date: Thu, 23 Jan 2025 09:00:00 +0000\r\n\r\n";
    assert_eq!(
        body_with(&raw, &summary, &[1], SectionText::Header),
        inner_header
    );
    assert_eq!(
        body_with(&raw, &summary, &[1], SectionText::Text),
        b"Inner text.\r\n"
    );
    assert_eq!(body(&raw, &summary, &[1, 1]), b"Inner text.\r\n");
    assert_eq!(
        body(&raw, &summary, &[1]),
        body_with(&raw, &summary, &[], SectionText::Text)
    );
    assert_eq!(
        summary.envelope.subject,
        text("A whole message as the body")
    );
    let Content::Message { envelope, .. } = &summary.body.content else {
        panic!("a message");
    };
    assert_eq!(envelope.subject, text("Inner"));
}

#[test]
fn an_encoded_message_is_opaque() {
    let raw = message("30-encoded-rfc822.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/mixed(text/plain application/octet-stream)"
    );
    assert_eq!(
        binary(&raw, &summary, &[2]),
        b"From: inner@example.org\r\nSubject: Encoded inner\r\n\r\nInner.\r\n"
    );
}

#[test]
fn octets_without_a_header_are_one_text_body() {
    let raw = message("33-no-header-binary.eml");
    let summary = summarize(&raw);
    assert_eq!(shape(&summary.body), "text/plain");
    assert!(summary.body.header_span.is_empty());
    assert_eq!(summary.body.fields().unwrap().size, raw.len());
    assert_eq!(body(&raw, &summary, &[1]), raw);
    assert_eq!(summary.envelope, postcell_mime::Envelope::default());
}

#[test]
fn delivery_status_notification() {
    let raw = message("34-dsn-report.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/report(text/plain message/delivery-status text/rfc822-headers)"
    );
    assert!(matches!(part(&summary, &[2]).content, Content::Basic(_)));
    assert_eq!(
        part(&summary, &[2]).fields().unwrap().description,
        text("Delivery report")
    );
    assert_eq!(
        summary.body.params,
        params(&[("report-type", "delivery-status"), ("boundary", "dsn")])
    );
    // MAILER-DAEMON@host is an ordinary mailbox.
    assert_eq!(
        summary.envelope.from,
        [Address::new(None, "MAILER-DAEMON", "mx.example.org")]
    );
}

#[test]
fn an_internationalised_message_attached() {
    let raw = message("35-message-global.eml");
    let summary = summarize(&raw);
    assert_eq!(
        shape(&summary.body),
        "multipart/mixed(text/plain message/global[text/plain])"
    );
    let Content::Message { envelope, .. } = &part(&summary, &[2]).content else {
        panic!("a message");
    };
    assert_eq!(envelope.subject, text("国際化メール"));
    assert_eq!(
        envelope.from,
        [Address::new(Some("山田"), "山田", "例え.jp")]
    );
    assert_eq!(body(&raw, &summary, &[2, 1]), "こんにちは".as_bytes());
}

#[test]
fn odd_parameter_syntax() {
    let raw = message("36-quoted-params.eml");
    let summary = summarize(&raw);
    assert_eq!(shape(&summary.body), "text/plain");
    assert_eq!(
        summary.body.params,
        params(&[("Charset", "UTF-8"), ("format", "flowed")])
    );
    assert_eq!(summary.body.fields().unwrap().encoding, "8bit");

    let raw = message("37-encoded-word-filename.eml");
    let summary = summarize(&raw);
    let file = part(&summary, &[2]);
    assert_eq!(
        file.params,
        params(&[("name", "=?UTF-8?B?5pel5pys6KqeLnR4dA==?=")])
    );
    assert_eq!(file.filename.as_deref(), Some("日本語.txt"));
}

#[test]
fn html_only_in_windows_1252() {
    let raw = message("24-html-only.eml");
    let summary = summarize(&raw);
    assert_eq!(shape(&summary.body), "text/html");
    assert_eq!(
        binary(&raw, &summary, &[1]),
        b"<html><body><p>Caf\xe9 \x80 5</p></body></html>\r\n"
    );
    let search = search_text(&raw);
    assert!(search.body.contains("Café € 5"), "{search:?}");
    assert!(!search.body.contains("<p>"), "{search:?}");
}
