//! Any message: the summary never panics, survives its cache round trip, and every part
//! it records can be sliced out of the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postcell_mime::{SectionSpec, Summary};

fuzz_target!(|raw: &[u8]| {
    let summary = postcell_mime::summarize(raw);
    let cached =
        Summary::from_bytes(&summary.to_bytes()).expect("a summary reads back from its cache");
    assert_eq!(cached, summary);
    let whole = postcell_mime::section(
        raw,
        &summary,
        &SectionSpec {
            part: vec![],
            text: None,
        },
    );
    assert_eq!(whole.as_deref(), Some(raw));
    for n in 1..4 {
        let _ = postcell_mime::section(
            raw,
            &summary,
            &SectionSpec {
                part: vec![n],
                text: None,
            },
        );
        let _ = postcell_mime::decode_binary(raw, &summary, &[n]);
    }
});
