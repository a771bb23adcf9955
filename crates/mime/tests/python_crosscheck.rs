//! Python's `email` package reads every corpus message, and its MIME tree (content types,
//! subtypes, parts, decoded file names) must be ours: two parsers written apart agree.
//! tests/mime_tree.py prints Python's tree and lists where the RFCs leave a choice.

mod common;

use std::process::Command;

use postcell_mime::{BodyStructure, Content, summarize};
use serde_json::{Value, json};

use common::{corpus, corpus_dir};

fn our_tree(entity: &BodyStructure) -> Value {
    let parts: Vec<Value> = match &entity.content {
        Content::Multipart { parts } => parts.iter().map(our_tree).collect(),
        // Python's payload of a message/rfc822 part is the one encapsulated message.
        Content::Message { body, .. } => vec![our_tree(body)],
        Content::Basic(_) | Content::Text { .. } => Vec::new(),
    };
    json!({
        "type": format!("{}/{}", entity.media_type, entity.media_subtype),
        "filename": entity.filename,
        "parts": parts,
    })
}

fn python_trees(paths: &[String]) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("mime_tree.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(paths)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "this test runs python3 (with its standard `email` package) to cross-check \
                 the MIME trees, and python3 could not be started: {error}. Install Python 3."
            )
        });
    assert!(
        output.status.success(),
        "python3 {} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("mime_tree.py prints JSON")
}

#[test]
fn python_reads_the_same_mime_trees() {
    let messages = corpus();
    let paths: Vec<String> = messages
        .iter()
        .map(|(name, _)| corpus_dir().join(name).to_string_lossy().into_owned())
        .collect();
    let python = python_trees(&paths);
    let mut compared = 0;
    for ((name, raw), path) in messages.iter().zip(&paths) {
        let ours = our_tree(&summarize(raw).body);
        let theirs = python
            .get(path)
            .unwrap_or_else(|| panic!("python printed no tree for {name}"));
        assert_eq!(
            &ours,
            theirs,
            "{name}: our MIME tree (left) differs from Python's (right):\n{}\n{}",
            serde_json::to_string_pretty(&ours).unwrap_or_default(),
            serde_json::to_string_pretty(theirs).unwrap_or_default()
        );
        compared += 1;
    }
    assert!(compared >= 30, "{compared} messages compared");
}
