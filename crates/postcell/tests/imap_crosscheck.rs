//! Two IMAP clients written apart read the same ENVELOPE and BODYSTRUCTURE from the
//! server: async-imap (Rust, whose parser is the imap-proto crate) and Python's imaplib
//! (whose raw FETCH data is parsed by tests/fixtures/imap_helpers.py). The messages are
//! postcell-mime's corpus (crates/mime/tests/corpus): multipart/mixed and alternative,
//! nested message/rfc822, RFC 2231 file names, ISO-2022-JP, Shift_JIS, EUC-JP and UTF-8
//! headers, messages without a body, broken structures.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_imap::imap_proto::{
    Address, BodyContentCommon, BodyContentSinglePart, BodyStructure, ContentEncoding, Envelope,
};
use common::{Node, NodeOptions, PASSWORD, fixture, python};
use futures::TryStreamExt;
use serde_json::{Value, json};

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mime/tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

/// Octets as text without loss: each octet is one char (ISO 8859-1).
fn text(bytes: &[u8]) -> Value {
    Value::String(bytes.iter().map(|&b| b as char).collect())
}

fn nstring(bytes: Option<&[u8]>) -> Value {
    bytes.map_or(Value::Null, text)
}

fn addresses(list: &Option<Vec<Address<'_>>>) -> Value {
    match list {
        None => Value::Null,
        Some(list) => Value::Array(
            list.iter()
                .map(|a| {
                    json!([
                        nstring(a.name.as_deref()),
                        nstring(a.adl.as_deref()),
                        nstring(a.mailbox.as_deref()),
                        nstring(a.host.as_deref())
                    ])
                })
                .collect(),
        ),
    }
}

fn envelope(e: &Envelope<'_>) -> Value {
    json!([
        nstring(e.date.as_deref()),
        nstring(e.subject.as_deref()),
        addresses(&e.from),
        addresses(&e.sender),
        addresses(&e.reply_to),
        addresses(&e.to),
        addresses(&e.cc),
        addresses(&e.bcc),
        nstring(e.in_reply_to.as_deref()),
        nstring(e.message_id.as_deref()),
    ])
}

fn string(value: &Option<std::borrow::Cow<'_, str>>) -> Value {
    value.as_deref().map_or(Value::Null, |s| text(s.as_bytes()))
}

fn params(params: &Option<Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)>>) -> Value {
    match params {
        None => Value::Null,
        Some(list) => Value::Array(
            list.iter()
                .map(|(k, v)| json!([text(k.as_bytes()), text(v.as_bytes())]))
                .collect(),
        ),
    }
}

fn common_fields(common: &BodyContentCommon<'_>) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("type".into(), json!(common.ty.ty.to_lowercase()));
    map.insert("subtype".into(), json!(common.ty.subtype.to_lowercase()));
    map.insert("params".into(), params(&common.ty.params));
    map.insert(
        "disposition".into(),
        common.disposition.as_ref().map_or(Value::Null, |d| {
            json!([text(d.ty.as_bytes()), params(&d.params)])
        }),
    );
    map.insert(
        "language".into(),
        common.language.as_ref().map_or(Value::Null, |list| {
            Value::Array(list.iter().map(|l| text(l.as_bytes())).collect())
        }),
    );
    map.insert("location".into(), string(&common.location));
    map
}

fn single_fields(map: &mut serde_json::Map<String, Value>, other: &BodyContentSinglePart<'_>) {
    let encoding = match &other.transfer_encoding {
        ContentEncoding::SevenBit => "7bit".to_owned(),
        ContentEncoding::EightBit => "8bit".to_owned(),
        ContentEncoding::Binary => "binary".to_owned(),
        ContentEncoding::Base64 => "base64".to_owned(),
        ContentEncoding::QuotedPrintable => "quoted-printable".to_owned(),
        ContentEncoding::Other(other) => other.to_lowercase(),
    };
    map.insert("id".into(), string(&other.id));
    map.insert("description".into(), string(&other.description));
    map.insert("encoding".into(), json!(encoding));
    map.insert("size".into(), json!(other.octets));
    map.insert("md5".into(), string(&other.md5));
}

fn structure(body: &BodyStructure<'_>) -> Value {
    let map = match body {
        BodyStructure::Basic { common, other, .. } => {
            let mut map = common_fields(common);
            single_fields(&mut map, other);
            map
        }
        BodyStructure::Text {
            common,
            other,
            lines,
            ..
        } => {
            let mut map = common_fields(common);
            single_fields(&mut map, other);
            map.insert("lines".into(), json!(lines));
            map
        }
        BodyStructure::Message {
            common,
            other,
            envelope: inner,
            body,
            lines,
            ..
        } => {
            let mut map = common_fields(common);
            single_fields(&mut map, other);
            map.insert("envelope".into(), envelope(inner));
            map.insert("body".into(), structure(body));
            map.insert("lines".into(), json!(lines));
            map
        }
        BodyStructure::Multipart { common, bodies, .. } => {
            let mut map = common_fields(common);
            map.insert(
                "parts".into(),
                Value::Array(bodies.iter().map(structure).collect()),
            );
            map
        }
    };
    Value::Object(map)
}

/// What async-imap reads, by UID.
async fn async_imap_view(port: u16) -> BTreeMap<String, Value> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut client = async_imap::Client::new(tcp);
    client
        .read_response()
        .await
        .expect("greeting")
        .expect("a greeting");
    let mut session = client
        .login("alice@example.test", PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .expect("login");
    session.select("INBOX").await.expect("select");
    let fetches: Vec<_> = session
        .fetch("1:*", "(UID ENVELOPE BODYSTRUCTURE)")
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("async-imap reads every FETCH response");
    let mut view = BTreeMap::new();
    for fetch in &fetches {
        let uid = fetch.uid.expect("UID").to_string();
        let envelope = envelope(fetch.envelope().expect("ENVELOPE"));
        let body = structure(fetch.bodystructure().expect("BODYSTRUCTURE"));
        view.insert(uid, json!({"envelope": envelope, "body": body}));
    }
    session.logout().await.expect("logout");
    view
}

const IMAPLIB_VIEW: &str = r#"
PORT, PASSWORD = int(sys.argv[1]), sys.argv[2]
paths = sys.argv[3:]
import json

def text(value):
    return None if value is None else bytes(value).decode("latin-1")

def addresses(value):
    return None if value is None else [[text(part) for part in address] for address in value]

def envelope(e):
    return [text(e[0]), text(e[1])] + [addresses(e[i]) for i in range(2, 8)] + [text(e[8]), text(e[9])]

def params(value):
    return None if value is None else [[text(value[i]), text(value[i + 1])] for i in range(0, len(value), 2)]

def extension(out, rest):
    # body-fld-dsp, body-fld-lang, body-fld-loc, each optional.
    dsp = rest[0] if len(rest) > 0 else None
    out["disposition"] = None if dsp is None else [text(dsp[0]), params(dsp[1])]
    lang = rest[1] if len(rest) > 1 else None
    out["language"] = None if lang is None else ([text(lang)] if isinstance(lang, bytes) else [text(l) for l in lang])
    out["location"] = text(rest[2]) if len(rest) > 2 else None

def structure(b):
    if isinstance(b[0], list):
        n = next(i for i, v in enumerate(b) if not isinstance(v, list))
        out = {"type": "multipart", "subtype": text(b[n]).lower(), "parts": [structure(p) for p in b[:n]]}
        rest = b[n + 1:]
        out["params"] = params(rest[0]) if rest else None
        extension(out, rest[1:])
        return out
    out = {"type": text(b[0]).lower(), "subtype": text(b[1]).lower(), "params": params(b[2]),
           "id": text(b[3]), "description": text(b[4]), "encoding": text(b[5]).lower(), "size": b[6]}
    rest = b[7:]
    if out["type"] == "text":
        out["lines"], rest = rest[0], rest[1:]
    elif out["type"] == "message" and (out["subtype"] == "rfc822" or (rest and isinstance(rest[0], list))):
        out["envelope"], out["body"], out["lines"] = envelope(rest[0]), structure(rest[1]), rest[2]
        rest = rest[3:]
    out["md5"] = text(rest[0]) if rest else None
    extension(out, rest[1:])
    return out

m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
m.login("alice@example.test", PASSWORD)
for path in paths:
    data = open(path, "rb").read()
    if b"\0" in data:
        # A NUL needs BINARY's literal8, which imaplib cannot send.
        tag = m._new_tag()
        m.send(tag + b" APPEND INBOX ~{%d}\r\n" % len(data))
        check(m.readline().startswith(b"+"), "continuation")
        m.send(data + b"\r\n")
        while not (line := m.readline()).startswith(tag):
            pass
        check(b" OK " in line, line)
    else:
        typ, answer = m.append("INBOX", None, None, data)
        check(typ == "OK", (path, answer))
m.select("INBOX")
typ, data = m.fetch("1:*", "(UID ENVELOPE BODYSTRUCTURE)")
check(typ == "OK", data)
view = {}
for response in imaplib_fetch_responses(data):
    _, items = fetch_items(response)
    view[str(items["UID"])] = {"envelope": envelope(items["ENVELOPE"]), "body": structure(items["BODYSTRUCTURE"])}
m.logout()
print(json.dumps(view, sort_keys=True))
"#;

#[test]
fn async_imap_and_imaplib_read_the_same_envelopes_and_structures() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let files = corpus();
    assert!(files.len() >= 30, "the corpus has {} messages", files.len());
    let helpers = std::fs::read_to_string(fixture("fixtures/imap_helpers.py")).expect("helpers");
    let mut args = vec![node.imap.port().to_string(), PASSWORD.to_owned()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let imaplib: BTreeMap<String, Value> =
        serde_json::from_str(&python(&format!("{helpers}\n{IMAPLIB_VIEW}"), &args))
            .expect("the imaplib view is JSON");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let async_imap = runtime.block_on(async_imap_view(node.imap.port()));

    assert_eq!(imaplib.len(), files.len(), "every message was appended");
    assert_eq!(
        imaplib.keys().collect::<Vec<_>>(),
        async_imap.keys().collect::<Vec<_>>()
    );
    for (uid, ours) in &imaplib {
        let theirs = &async_imap[uid];
        let file = &files[uid.parse::<usize>().expect("uid") - 1];
        assert_eq!(
            ours,
            theirs,
            "{}: imaplib and async-imap disagree",
            file.display()
        );
    }
    // The views are not trivially alike: the structures the corpus is made of are there.
    let all = serde_json::to_string(&imaplib).expect("json");
    for needle in [
        "\"subtype\":\"alternative\"",
        "\"subtype\":\"mixed\"",
        "\"subtype\":\"rfc822\"",
        "filename*0*",
        "=?iso-2022-jp?B?",
        "\"type\":\"multipart\"",
    ] {
        assert!(all.contains(needle), "{needle} not in the corpus views");
    }
}
