//! What the corpus tests share: reading tests/corpus and numbering parts as IMAP does.

#![allow(dead_code)]

use std::path::PathBuf;

use postcell_mime::{BodyStructure, Content};

pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("corpus")
}

/// Every `tests/corpus/*.eml`, by name, in name order.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut messages: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus is readable")
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let raw = std::fs::read(&path).expect("a corpus message is readable");
            (name, raw)
        })
        .collect();
    messages.sort();
    messages
}

/// One corpus message by file name.
pub fn message(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// Every numbered part under the body of a message, with its IMAP part number, in the
/// order of the message: the parts of a multipart body are 1, 2, ...; a body that is not a
/// multipart is part 1; a message/rfc822 part's own parts follow its number.
pub fn numbered_parts(body: &BodyStructure) -> Vec<(Vec<u32>, &BodyStructure)> {
    let mut out = Vec::new();
    message_parts(body, &[], &mut out);
    out
}

fn message_parts<'a>(
    body: &'a BodyStructure,
    prefix: &[u32],
    out: &mut Vec<(Vec<u32>, &'a BodyStructure)>,
) {
    match &body.content {
        Content::Multipart { parts } => {
            for (index, part) in parts.iter().enumerate() {
                walk(part, with(prefix, index), out);
            }
        }
        _ => walk(body, with(prefix, 0), out),
    }
}

fn walk<'a>(part: &'a BodyStructure, path: Vec<u32>, out: &mut Vec<(Vec<u32>, &'a BodyStructure)>) {
    out.push((path.clone(), part));
    match &part.content {
        Content::Multipart { parts } => {
            for (index, child) in parts.iter().enumerate() {
                walk(child, with(&path, index), out);
            }
        }
        Content::Message { body, .. } => message_parts(body, &path, out),
        Content::Basic(_) | Content::Text { .. } => {}
    }
}

fn with(prefix: &[u32], index: usize) -> Vec<u32> {
    let mut path = prefix.to_vec();
    path.push(u32::try_from(index + 1).expect("few parts"));
    path
}

/// `BODY[1.2.MIME]`-style name of a part number, for messages.
pub fn dotted(path: &[u32]) -> String {
    path.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}
