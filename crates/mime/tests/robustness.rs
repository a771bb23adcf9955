//! Whatever the octets, summarising never panics and the summary describes them:
//! random octets, random MIME-shaped text, every truncation of every corpus message,
//! corrupted corpus messages, and nesting past the limits.

mod common;

use postcell_mime::{
    Content, MAX_DEPTH, MAX_PARTS, SectionSpec, SectionText, Summary, decode_binary, search_text,
    section, summarize,
};

use common::{corpus, dotted, numbered_parts};

/// xorshift64*: deterministic, and enough to shake a parser.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap()).unwrap()
    }
}

/// The summary of `raw` holds together: spans inside the message, every part's section
/// the octets between its offsets, and every operation answers without panicking.
fn check(raw: &[u8], summary: &Summary, what: &str) {
    let whole = |text| {
        section(
            raw,
            summary,
            &SectionSpec {
                part: Vec::new(),
                text: Some(text),
            },
        )
        .unwrap_or_else(|| panic!("{what}: a top-level section"))
        .into_owned()
    };
    assert_eq!(
        [whole(SectionText::Header), whole(SectionText::Text)].concat(),
        raw,
        "{what}: HEADER + TEXT"
    );
    for (path, entity) in numbered_parts(&summary.body) {
        let at = format!("{what}, part {}", dotted(&path));
        assert!(entity.header_span.end == entity.body_span.start, "{at}");
        assert!(entity.body_span.end <= raw.len(), "{at}");
        let spec = SectionSpec {
            part: path.clone(),
            text: None,
        };
        assert_eq!(
            section(raw, summary, &spec).as_deref(),
            Some(&raw[entity.body_span.start..entity.body_span.end]),
            "{at}"
        );
        let mime = SectionSpec {
            part: path.clone(),
            text: Some(SectionText::Mime),
        };
        assert_eq!(
            section(raw, summary, &mime).as_deref(),
            Some(&raw[entity.header_span.start..entity.header_span.end]),
            "{at}"
        );
        let fields = SectionSpec {
            part: path.clone(),
            text: Some(SectionText::HeaderFields(vec!["Subject".into()])),
        };
        let _ = section(raw, summary, &fields);
        let _ = decode_binary(raw, summary, &path);
        if let Content::Message { body, .. } = &entity.content {
            assert_eq!(body.header_span.start, entity.body_span.start, "{at}");
        }
    }
    let _ = summary.search_text(raw);
}

#[test]
fn random_octets() {
    let mut rng = Rng(0x5eed_c0ff_ee00);
    for round in 0..1000 {
        let len = rng.below(600);
        let raw: Vec<u8> = (0..len).map(|_| (rng.next() >> 24) as u8).collect();
        let summary = summarize(&raw);
        check(&raw, &summary, &format!("random octets #{round}"));
    }
}

#[test]
fn random_mime_shaped_text() {
    const PIECES: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"--b",
        b"--b--",
        b"--",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: multipart/digest; boundary=\"b\"\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Type: text/plain; charset=iso-2022-jp\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Content-Disposition: attachment; filename*0*=UTF-8''%E6; filename*1*=%97\r\n",
        b"From: =?UTF-8?B?5pel?= <a@b>, g: c@d;\r\n",
        b"Subject: \x93\xfa\r\n",
        b" folded\r\n",
        b"To: \"",
        b"(",
        b")",
        b"=?",
        b"?=",
        b"=3D",
        b"=\r\n",
        b":",
        b";",
        b"\x1b$B",
        b"text",
        b"\x00",
        b"\xff",
    ];
    let mut rng = Rng(42);
    for round in 0..1000 {
        let mut raw = Vec::new();
        for _ in 0..rng.below(60) {
            raw.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
        let summary = summarize(&raw);
        check(&raw, &summary, &format!("MIME-shaped #{round}"));
        let back = Summary::from_bytes(&summary.to_bytes()).expect("the cache reads back");
        assert_eq!(back, summary, "MIME-shaped #{round}");
    }
}

#[test]
fn every_truncation_of_every_corpus_message() {
    for (name, raw) in corpus() {
        for len in 0..=raw.len() {
            let truncated = &raw[..len];
            let summary = summarize(truncated);
            check(truncated, &summary, &format!("{name} cut at {len}"));
        }
        // search_text of a cut message, in full only every so often (it is the slowest).
        for len in (0..=raw.len()).step_by(97) {
            let _ = search_text(&raw[..len]);
        }
    }
}

#[test]
fn corrupted_corpus_messages() {
    let mut rng = Rng(7);
    for (name, raw) in corpus() {
        for round in 0..40 {
            let mut corrupted = raw.clone();
            for _ in 0..=rng.below(8) {
                if corrupted.is_empty() {
                    break;
                }
                let at = rng.below(corrupted.len());
                match rng.below(3) {
                    0 => corrupted[at] = (rng.next() >> 32) as u8,
                    1 => {
                        corrupted.remove(at);
                    }
                    _ => corrupted.insert(at, b"-\r\n:;\"("[rng.below(7)]),
                }
            }
            let summary = summarize(&corrupted);
            check(&corrupted, &summary, &format!("{name} corrupted #{round}"));
        }
    }
}

/// A message of `depth` multiparts, each inside the previous one.
fn nested_multiparts(depth: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    for level in 0..depth {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
    }
    raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\ninnermost");
    for level in (0..depth).rev() {
        raw.extend_from_slice(format!("\r\n--b{level}--").as_bytes());
    }
    raw
}

fn depth_of(entity: &postcell_mime::BodyStructure) -> usize {
    match &entity.content {
        Content::Multipart { parts } => 1 + parts.iter().map(depth_of).max().unwrap_or(0),
        Content::Message { body, .. } => 1 + depth_of(body),
        Content::Basic(_) | Content::Text { .. } => 0,
    }
}

#[test]
fn nesting_stops_at_the_depth_limit_and_still_caches() {
    let raw = nested_multiparts(MAX_DEPTH);
    let summary = summarize(&raw);
    assert_eq!(depth_of(&summary.body), MAX_DEPTH, "every level is split");
    let path = vec![1; MAX_DEPTH];
    let innermost = SectionSpec {
        part: path,
        text: None,
    };
    assert_eq!(
        section(&raw, &summary, &innermost).as_deref(),
        Some(&b"innermost"[..])
    );
    assert_eq!(Summary::from_bytes(&summary.to_bytes()).unwrap(), summary);

    let raw = nested_multiparts(MAX_DEPTH + 10);
    let summary = summarize(&raw);
    assert_eq!(
        depth_of(&summary.body),
        MAX_DEPTH,
        "deeper levels are one opaque part"
    );
    check(&raw, &summary, "too deep");
    assert_eq!(Summary::from_bytes(&summary.to_bytes()).unwrap(), summary);

    // Messages in messages, far past the limit.
    let mut raw = Vec::new();
    for _ in 0..10_000 {
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    raw.extend_from_slice(b"Subject: innermost\r\n\r\ntext");
    let summary = summarize(&raw);
    assert_eq!(depth_of(&summary.body), MAX_DEPTH);
    check(&raw, &summary, "messages in messages");
    assert_eq!(Summary::from_bytes(&summary.to_bytes()).unwrap(), summary);
}

#[test]
fn the_number_of_parts_is_bounded() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..(MAX_PARTS * 3) {
        raw.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    let summary = summarize(&raw);
    let parts = summary.body.parts().len();
    assert!(parts < MAX_PARTS, "{parts} parts");
    let last = summary.body.parts().last().unwrap();
    assert_eq!(
        last.body_span.end,
        raw.len(),
        "the last part holds the rest"
    );
    check(&raw, &summary, "many parts");
}
