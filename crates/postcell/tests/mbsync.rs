//! mbsync (isync) against a real node: a full two-way sync of an account with 1,000
//! messages in five folders with a local Maildir, a second run that transfers nothing,
//! then flag changes made on either side that the next run carries to the other.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Node, NodeOptions, PASSWORD, python};

/// Folders and how many messages each side starts with (server, Maildir).
const FOLDERS: [(&str, usize, usize); 5] = [
    ("INBOX", 200, 0),
    ("Archive", 150, 50),
    ("Sent", 200, 0),
    ("Drafts", 0, 200),
    ("Projects", 0, 200),
];

fn mbsync(config: &Path) -> String {
    assert!(
        postcell_testkit::require_tool("mbsync"),
        "{}",
        postcell_testkit::process::missing_tool_message("mbsync")
    );
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(config)
        .args(["-V", "-a"])
        .output()
        .expect("run mbsync");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{text}");
    text
}

/// Every message file of a Maildir folder: its name (without the folder) and content.
fn maildir(folder: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("maildir entry");
            let name = format!("{sub}/{}", entry.file_name().to_string_lossy());
            files.insert(name, std::fs::read(entry.path()).expect("read message"));
        }
    }
    files
}

/// Writes `count` messages into a new Maildir folder, every third one seen.
fn fill_maildir(folder: &Path, name: &str, count: usize) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(folder.join(sub)).expect("maildir folder");
    }
    for n in 0..count {
        let flags = if n % 3 == 0 { "S" } else { "" };
        let file = folder
            .join("cur")
            .join(format!("1700000000.{n}_{name}.local:2,{flags}"));
        let body = format!(
            "From: alice@example.test\r\nTo: bob@example.net\r\nSubject: local {name} {n}\r\n\
             Date: Mon, 2 Mar 2026 10:{:02}:00 +0000\r\nMessage-ID: <local-{name}-{n}@example.test>\r\n\r\n\
             Written in the Maildir, number {n}.\r\n",
            n % 60
        );
        std::fs::write(file, body).expect("write message");
    }
}

/// The server's view, per folder: (MESSAGES, UIDNEXT, HIGHESTMODSEQ).
fn server_state(node: &Node) -> String {
    let names: Vec<&str> = FOLDERS.iter().map(|(name, _, _)| *name).collect();
    python(
        r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=60)
m.login("alice@example.test", sys.argv[2])
for name in sys.argv[3:]:
    typ, data = m.status(name, "(MESSAGES UIDNEXT HIGHESTMODSEQ)")
    assert typ == "OK", (name, data)
    print(data[0].decode())
m.logout()
"#,
        &[&[&node.imap.port().to_string(), PASSWORD][..], &names[..]].concat(),
    )
}

#[test]
fn mbsync_two_way_sync_of_1000_messages_in_5_folders() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let mail = node.path("mail");
    // The server side: APPENDed with imaplib, every fourth one \Seen.
    let counts: Vec<String> = FOLDERS
        .iter()
        .map(|(name, server, _)| format!("{name}={server}"))
        .collect();
    python(
        r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=60)
m.login("alice@example.test", sys.argv[2])
for spec in sys.argv[3:]:
    name, count = spec.split("=")
    for n in range(int(count)):
        flags = "(\\Seen)" if n % 4 == 0 else None
        raw = ("From: bob@example.net\r\nTo: alice@example.test\r\nSubject: server %s %d\r\n"
               "Date: Tue, 3 Mar 2026 09:%02d:00 +0000\r\nMessage-ID: <server-%s-%d@example.net>\r\n\r\n"
               "Stored on the server, number %d.\r\n" % (name, n, n % 60, name, n, n)).encode()
        typ, data = m.append(name, flags, None, raw)
        assert typ == "OK", data
m.logout()
"#,
        &[
            &[&node.imap.port().to_string(), PASSWORD][..],
            &counts.iter().map(String::as_str).collect::<Vec<_>>()[..],
        ]
        .concat(),
    );
    for (name, _, local) in FOLDERS {
        if local > 0 {
            fill_maildir(&mail.join(name), name, local);
        }
    }
    let config = node.path("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount postcell\nHost 127.0.0.1\nPort {port}\nUser alice@example.test\n\
             Pass {PASSWORD}\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore server\nAccount postcell\n\n\
             MaildirStore local\nPath {mail}/\nInbox {mail}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :server:\nNear :local:\n\
             Patterns INBOX Archive Sent Drafts Projects\n\
             Create Both\nExpunge Both\nSyncState *\nSync All\nCopyArrivalDate yes\n",
            port = node.imap.port(),
            mail = mail.display(),
        ),
    )
    .expect("write mbsyncrc");

    // 1. The full sync: every message on both sides.
    let first = mbsync(&config);
    let state = server_state(&node);
    for (name, server, local) in FOLDERS {
        let total = server + local;
        assert!(
            state.contains(&format!("{name} (MESSAGES {total} ")),
            "{name} on the server after the first sync:\n{state}\n{first}"
        );
        let files = maildir(&mail.join(name));
        assert_eq!(files.len(), total, "{name} in the Maildir:\n{first}");
    }
    // Content survives both ways, and so do flags.
    let inbox = maildir(&mail.join("INBOX"));
    let (name, raw) = inbox
        .iter()
        .find(|(_, raw)| find(raw, b"Subject: server INBOX 8"))
        .expect("server INBOX 8 in the Maildir");
    assert!(find(raw, b"Stored on the server, number 8."), "{name}");
    assert!(name.ends_with(":2,S"), "INBOX 8 was \\Seen: {name}");
    let uploaded = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=60)
m.login("alice@example.test", sys.argv[2])
m.select("Projects", readonly=True)
typ, data = m.uid("SEARCH", "HEADER", "Message-ID", "<local-Projects-9@example.test>")
uids = data[0].split()
assert len(uids) == 1, data
typ, data = m.uid("FETCH", uids[0], "(FLAGS BODY.PEEK[TEXT])")
print(data[0][0].decode())
print(data[0][1].decode(), end="")
typ, data = m.search(None, "SEEN")
print("seen", len(data[0].split()))
m.logout()
"#,
        &[&node.imap.port().to_string(), PASSWORD],
    );
    assert!(
        uploaded.contains("Written in the Maildir, number 9.\r\n"),
        "{uploaded}"
    );
    assert!(
        uploaded.contains("\\Seen"),
        "Projects 9 was seen: {uploaded}"
    );
    assert!(uploaded.contains("seen 67\n"), "{uploaded}");

    // 2. A second run transfers nothing: the server is not changed (no new UIDs, no
    // new mod-sequences) and neither is the Maildir.
    let local_before: Vec<_> = FOLDERS
        .iter()
        .map(|(name, _, _)| maildir(&mail.join(name)))
        .collect();
    let second = mbsync(&config);
    assert_eq!(
        server_state(&node),
        state,
        "the second run changed the server:\n{second}"
    );
    let local_after: Vec<_> = FOLDERS
        .iter()
        .map(|(name, _, _)| maildir(&mail.join(name)))
        .collect();
    assert!(
        local_after == local_before,
        "the second run changed the Maildir:\n{second}"
    );

    // 3. A flag set on the server reaches the Maildir; one set in the Maildir reaches
    // the server.
    python(
        r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=60)
m.login("alice@example.test", sys.argv[2])
m.select("INBOX")
typ, data = m.uid("SEARCH", "HEADER", "Message-ID", "<server-INBOX-8@example.net>")
typ, data = m.uid("STORE", data[0].decode(), "+FLAGS", "(\\Flagged)")
assert typ == "OK", data
m.logout()
"#,
        &[&node.imap.port().to_string(), PASSWORD],
    );
    let projects = mail.join("Projects");
    let (file, _) = maildir(&projects)
        .into_iter()
        .find(|(_, raw)| find(raw, b"Subject: local Projects 10"))
        .expect("Projects 10");
    assert!(!file.contains(":2,S") && !file.ends_with('S'), "{file}");
    let from: PathBuf = projects.join(&file);
    let to = projects.join(format!("{file}T").replace("/new/", "/cur/"));
    std::fs::rename(&from, &to).expect("mark the Maildir message deleted");
    let (file, _) = maildir(&projects)
        .into_iter()
        .find(|(_, raw)| find(raw, b"Subject: local Projects 11"))
        .expect("Projects 11");
    std::fs::rename(projects.join(&file), projects.join(format!("{file}F"))).expect("flag");
    let third = mbsync(&config);
    let inbox = maildir(&mail.join("INBOX"));
    let (name, _) = inbox
        .iter()
        .find(|(_, raw)| find(raw, b"Subject: server INBOX 8"))
        .expect("INBOX 8");
    assert!(
        name.ends_with(":2,FS"),
        "\\Flagged did not reach the Maildir: {name}\n{third}"
    );
    let flags = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=60)
m.login("alice@example.test", sys.argv[2])
m.select("Projects", readonly=True)
for n in (10, 11):
    typ, data = m.uid("SEARCH", "HEADER", "Message-ID", "<local-Projects-%d@example.test>" % n)
    print(n, data[0].decode() or "gone")
    if data[0]:
        typ, data = m.uid("FETCH", data[0].decode(), "(FLAGS)")
        print(data[0].decode())
typ, data = m.status("Projects", "(MESSAGES)")
print(data[0].decode())
m.logout()
"#,
        &[&node.imap.port().to_string(), PASSWORD],
    );
    // Trashed (T) in the Maildir with Expunge Both: expunged on the server too.
    // (mbsync expunges with CLOSE.)
    assert!(flags.contains("10 gone\n"), "{flags}\n{third}");
    assert!(flags.contains("\\Flagged"), "{flags}\n{third}");
    assert!(
        flags.contains("Projects (MESSAGES 199)"),
        "{flags}\n{third}"
    );
}

/// Whether `raw` has the line `line` (mbsync writes the Maildir with bare line feeds).
fn find(raw: &[u8], line: &[u8]) -> bool {
    [&b"\r\n"[..], b"\n"].iter().any(|end| {
        let needle = [line, end].concat();
        raw.windows(needle.len()).any(|w| w == needle)
    })
}
