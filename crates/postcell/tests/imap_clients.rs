//! Real IMAP clients against a real node: Python's imaplib reads what smtplib
//! delivered, and a raw socket checks how bad input is answered.

mod common;

use common::{Node, NodeOptions, PASSWORD, python};

/// imaplib against the `imap` listener (loopback, so LOGIN is allowed without TLS).
#[test]
fn imaplib_logs_in_lists_selects_and_fetches_what_smtplib_delivered() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let out = python(
        r#"
import imaplib, poplib, re, smtplib, sys
smtp_port, imap_port, pop_port, password = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def check(condition, message):
    if not condition:
        print("FAILED: " + message)
        sys.exit(1)

original = (b"From: Bob <bob@example.net>\r\n"
            b"To: alice@example.test\r\n"
            b"Subject: Lunch on Friday\r\n"
            b"Message-ID: <imap-1@example.net>\r\n"
            b"\r\n"
            b"Shall we meet at noon?\r\n"
            b".leading dot\r\n")
with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
    check(s.sendmail("bob@example.net", ["alice@example.test"], original) == {}, "refused")

m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=30)
check("IMAP4REV1" in m.capabilities, f"greeting capabilities: {m.capabilities}")
check("LOGINDISABLED" not in m.capabilities, "LOGIN disabled on loopback")

# A command in the wrong state is refused and the session goes on.
# (imaplib checks states itself, so it is told it may send SELECT now.)
m.state = "AUTH"
try:
    m.select("INBOX")
    check(False, "SELECT before LOGIN was accepted")
except imaplib.IMAP4.error as e:
    check("Command not valid in this state" in str(e), f"SELECT before LOGIN: {e}")
m.state = "NONAUTH"

typ, _ = m.login("alice@example.test", password)
check(typ == "OK", "LOGIN")
typ, caps = m.capability()
check(typ == "OK" and b"IMAP4rev1" in caps[0], f"CAPABILITY: {caps}")
for extension in [b"UIDPLUS", b"MOVE", b"SPECIAL-USE", b"ESEARCH", b"NAMESPACE"]:
    check(extension in caps[0].split(), f"CAPABILITY lacks {extension}: {caps}")
typ, data = m.namespace()
check(typ == "OK" and data == [b'(("" "/")) NIL NIL'], f"NAMESPACE: {data}")

typ, listing = m.list('""', "*")
check(typ == "OK", "LIST")
lines = [l.decode() for l in listing]
print("\n".join(lines))
for name, attribute in [("INBOX", None), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                        ("Trash", "\\Trash"), ("Junk", "\\Junk"), ("Archive", "\\Archive")]:
    line = [l for l in lines if l.endswith(f'"/" {name}') or l.endswith(f'"/" "{name}"')]
    check(len(line) == 1, f"{name} missing from LIST: {lines}")
    if attribute:
        check(attribute in line[0], f"{name} lacks {attribute}: {line[0]}")
    check("\\HasNoChildren" in line[0], f"{name} lacks \\HasNoChildren: {line[0]}")

typ, data = m.select("INBOX")
check(typ == "OK" and data == [b"1"], f"SELECT INBOX: {typ} {data}")
check(m.untagged_responses.get("UIDVALIDITY"), "no UIDVALIDITY")

# BODY.PEEK does not set \Seen; header fields and a partial fetch cut what they should.
typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
check(typ == "OK", "FETCH header fields")
check(data[0][1] == b"Subject: Lunch on Friday\r\n\r\n", f"HEADER.FIELDS: {data}")
check(b"\\Seen" not in data[0][0], f"PEEK set \\Seen: {data}")
typ, data = m.fetch("1", "(BODY.PEEK[]<0.10>)")
check(data[0][0].endswith(b"BODY[]<0> {10}"), f"partial: {data}")
typ, data = m.uid("FETCH", "1:*", "(UID RFC822.SIZE INTERNALDATE)")
check(typ == "OK" and b"UID 1" in data[0] and b"INTERNALDATE" in data[0], f"UID FETCH: {data}")

# RFC822 gives the very bytes POP3 gives; a non-PEEK fetch sets \Seen.
typ, data = m.fetch("1", "(RFC822)")
imap_bytes = data[0][1]
check(b"\\Seen" in data[0][0] or b"\\Seen" in data[1], f"RFC822 did not report \\Seen: {data}")
p = poplib.POP3("127.0.0.1", pop_port, timeout=30)
p.user("alice@example.test"); p.pass_(password)
p._putcmd("RETR 1"); p._getresp()
pop_lines = []
while True:
    line = p.file.readline()
    if line == b".\r\n":
        break
    pop_lines.append(line[1:] if line.startswith(b"..") else line)
p.quit()
check(imap_bytes == b"".join(pop_lines), "RFC822 differs from POP3 RETR")
check(imap_bytes.endswith(original), "the delivered message lost bytes")
typ, data = m.fetch("1", "(FLAGS)")
check(b"\\Seen" in data[0], f"\\Seen not kept: {data}")

# Bad input: an invalid sequence number, then a command that still works.
try:
    m.fetch("5", "(FLAGS)")
    check(False, "FETCH 5 of 1 message was accepted")
except imaplib.IMAP4.error as e:
    check("Invalid message sequence number" in str(e), f"FETCH 5 of 1: {e}")
typ, _ = m.noop()
check(typ == "OK", "NOOP after BAD")

# STORE reports the new flags; EXPUNGE removes what is \Deleted.
typ, data = m.store("1", "+FLAGS", "(\\Deleted $Later)")
check(typ == "OK" and b"\\Deleted" in data[0] and b"$Later" in data[0], f"STORE: {data}")
typ, data = m.status("INBOX", "(MESSAGES UNSEEN DELETED UIDNEXT)")
check(typ == "OK" and b"MESSAGES 1" in data[0] and b"DELETED 1" in data[0]
      and b"UNSEEN 0" in data[0] and b"UIDNEXT 2" in data[0], f"STATUS: {data}")
typ, data = m.expunge()
check(typ == "OK" and data == [b"1"], f"EXPUNGE: {typ} {data}")
typ, data = m.status("INBOX", "(MESSAGES)")
check(b"MESSAGES 0" in data[0], f"STATUS after EXPUNGE: {data}")

# A Japanese mailbox name travels as modified UTF-7 (RFC 3501 section 5.1.3).
typ, data = m.create("&kAFP4W4IMH8-")
check(typ == "OK", f"CREATE: {data}")
typ, data = m.create("Projects/2026/Q1")
check(typ == "OK", f"CREATE with parents: {data}")
typ, listing = m.list('""', "*")
names = [l.decode() for l in listing]
check(any(l.endswith('"/" &kAFP4W4IMH8-') for l in names), f"LIST: {names}")
check(any("\\HasChildren" in l and l.endswith('"/" Projects') for l in names), f"parents: {names}")
typ, data = m.rename("&kAFP4W4IMH8-", "Archive/&kAFP4W4IMH8-")
check(typ == "OK", f"RENAME: {data}")
typ, data = m.status("Archive/&kAFP4W4IMH8-", "(MESSAGES)")
check(typ == "OK" and b"MESSAGES 0" in data[0], f"STATUS of renamed: {data}")
typ, data = m.delete("Archive/&kAFP4W4IMH8-")
check(typ == "OK", f"DELETE: {data}")
typ, data = m.select("Archive/&kAFP4W4IMH8-")
check(typ == "NO" and b"NONEXISTENT" in data[0], f"SELECT deleted: {typ} {data}")
typ, data = m.select("INBOX")
check(typ == "OK" and data == [b"0"], f"SELECT INBOX again: {data}")

# Changes others make are reported at the next NOOP: a delivery over SMTP becomes
# EXISTS, a flag set by a second session becomes FETCH (FLAGS ...).
with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
    check(s.sendmail("bob@example.net", ["alice@example.test"], original) == {}, "refused")
typ, _ = m.noop()
check(m.untagged_responses.get("EXISTS", [b""])[-1] == b"1", f"NOOP after delivery: {m.untagged_responses}")
other = imaplib.IMAP4("127.0.0.1", imap_port, timeout=30)
other.login("alice@example.test", password)
other.select("INBOX")
typ, data = other.uid("STORE", "2", "+FLAGS.SILENT", "(\\Flagged)")
check(typ == "OK" and data == [None], f"UID STORE .SILENT: {data}")
other.logout()
typ, _ = m.noop()
fetched = m.untagged_responses.get("FETCH", [])
check(any(b"\\Flagged" in f for f in fetched), f"NOOP after the other session's STORE: {fetched}")

# SEARCH over flags and over the decoded text: a Japanese word in an ISO-2022-JP body.
japanese = ("From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>\r\n"
            "To: alice@example.test\r\nSubject: minutes\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n").encode() + \
           "会議の議事録です。\r\n".encode("iso-2022-jp")
with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
    check(s.sendmail("yamada@example.jp", ["alice@example.test"], japanese) == {}, "refused")
m.noop()
typ, data = m.search(None, "UNSEEN")
check(data == [b"1 2"], f"SEARCH UNSEEN: {data}")
typ, data = m.search(None, "FROM", "bob")
check(data == [b"1"], f"SEARCH FROM: {data}")
typ, data = m.search(None, "SUBJECT", '"lunch on"')
check(data == [b"1"], f"SEARCH SUBJECT: {data}")
typ, data = m.search(None, "FLAGGED", "NOT", "SEEN")
check(data == [b"1"], f"SEARCH FLAGGED NOT SEEN: {data}")
m.literal = "議事録".encode()
typ, data = m.search("UTF-8", "BODY")
check(data == [b"2"], f"SEARCH BODY in ISO-2022-JP: {data}")
typ, data = m.uid("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
check(typ == "OK", f"ESEARCH: {data}")
typ, data = m._simple_command("SEARCH", "RETURN", "(COUNT)", "ALL")
check(any(b"COUNT 2" in r for r in m.untagged_responses.get("ESEARCH", [])), f"ESEARCH COUNT: {m.untagged_responses}")

# APPEND with a literal (imaplib sends a synchronizing one) and APPENDUID.
draft = b"From: alice@example.test\r\nSubject: Draft\r\n\r\nNot finished.\r\n"
typ, data = m.append("Drafts", "(\\Draft)", None, draft)
check(typ == "OK" and b"APPENDUID" in data[0], f"APPEND: {data}")
uid_validity, appended_uid = re.search(rb"APPENDUID (\d+) (\d+)", data[0]).groups()
typ, data = m.append("Nowhere", None, None, draft)
check(typ == "NO" and b"TRYCREATE" in data[0], f"APPEND to a missing mailbox: {data}")

# UID COPY and UID MOVE answer with COPYUID; MOVE expunges the source.
typ, data = m._simple_command("UID", "COPY", "2", "Archive")  # m.uid() hides the tagged text
check(typ == "OK" and b"COPYUID" in data[0], f"UID COPY: {data}")
typ, data = m._simple_command("UID", "MOVE", "2", "Trash")
check(typ == "OK", f"UID MOVE: {data}")
check(any(b"COPYUID" in r for r in m.untagged_responses.get("OK", [])), f"MOVE: {m.untagged_responses}")
check(m.untagged_responses.get("EXPUNGE", [b""])[-1] == b"1", f"MOVE expunge: {m.untagged_responses}")
typ, data = m.status("Archive", "(MESSAGES)")
check(b"MESSAGES 1" in data[0], f"Archive after COPY: {data}")
typ, data = m.status("Trash", "(MESSAGES)")
check(b"MESSAGES 1" in data[0], f"Trash after MOVE: {data}")
typ, data = m.select("Drafts")
typ, data = m.uid("FETCH", appended_uid.decode(), "(FLAGS BODY.PEEK[])")
check(data[0][1] == draft and b"\\Draft" in data[0][0], f"appended message: {data}")

typ, _ = m.close()
check(typ == "OK", "CLOSE")
typ, data = m.logout()
check(typ == "BYE", f"LOGOUT: {typ} {data}")
print("ok")
"#,
        &[
            &node.smtp.port().to_string(),
            &node.imap.port().to_string(),
            &node.pop3.port().to_string(),
            PASSWORD,
        ],
    );
    assert!(out.ends_with("ok\n"), "{out}");
}

/// Bad input on a raw socket: each gets BAD and the session goes on.
#[test]
fn bad_input_gets_bad_and_the_session_continues() {
    let node = Node::start(NodeOptions::default());
    let out = python(
        r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
def check(condition, message):
    if not condition:
        print("FAILED: " + message)
        sys.exit(1)
check(f.readline().startswith(b"* OK"), "greeting")

# A literal over the limit is refused before the client sends it: no "+".
s.sendall(b"a1 LOGIN {999999999999}\r\n")
line = f.readline()
check(line.startswith(b"a1 BAD") or line.startswith(b"a1 NO"), f"huge literal: {line}")

# Before login even a 10,000-octet literal is too much (8 KiB at most).
s.sendall(b"a1b LOGIN {10000}\r\n")
line = f.readline()
check(line.startswith(b"a1b BAD") or line.startswith(b"a1b NO"), f"pre-login literal: {line}")

# A line over the limit.
s.sendall(b"a2 NOOP " + b"x" * 70000 + b"\r\n")
line = f.readline()
check(b"BAD" in line, f"long line: {line}")

# Garbage and an unknown command.
s.sendall(b"a3 FROBNICATE\r\n")
line = f.readline()
check(line.startswith(b"a3 BAD"), f"unknown command: {line}")

s.sendall(b"a4 NOOP\r\n")
line = f.readline()
check(line.startswith(b"a4 OK"), f"NOOP after bad input: {line}")
s.sendall(b"a5 LOGOUT\r\n")
check(f.readline().startswith(b"* BYE"), "BYE")
check(f.readline().startswith(b"a5 OK"), "LOGOUT")
print("ok")
"#,
        &[&node.imap.port().to_string()],
    );
    assert!(out.ends_with("ok\n"), "{out}");
}

/// imaplib over implicit TLS (`imaps`), checking the node's certificate.
#[test]
fn imaplib_over_imaps_logs_in_and_lists() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let out = python(
        r#"
import imaplib, ssl, sys
port, password, cafile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
# The certificate must verify; its name (mail.example.test) does not resolve here, so
# the client connects to 127.0.0.1 and skips only the name check.
context = ssl.create_default_context(cafile=cafile)
context.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=30)
assert isinstance(m.sock, ssl.SSLSocket)
typ, _ = m.login("alice@example.test", password)
assert typ == "OK", typ
typ, data = m.list('""', "INBOX")
assert typ == "OK" and len(data) == 1 and data[0].endswith(b"INBOX"), data
m.logout()
print("ok")
"#,
        &[
            &node.imaps.port().to_string(),
            PASSWORD,
            node.cert_path().to_str().expect("utf-8 path"),
        ],
    );
    assert!(out.ends_with("ok\n"), "{out}");
}
