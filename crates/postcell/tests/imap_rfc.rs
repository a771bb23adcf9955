//! The IMAP server against real clients on real sockets: Python's imaplib for what it
//! can send, a raw socket (tests/fixtures/imap_helpers.py) for the rest. Each test reads
//! like the RFC exchange it checks.

mod common;

use common::{Backend, Node, NodeOptions, PASSWORD, fixture, python};

/// Runs `script` after the shared helpers, with the node's ports and the password as
/// arguments: `sys.argv[1]` IMAP, `[2]` SMTP, `[3]` password, `[4]` IMAPS, `[5]` the
/// certificate, `[6]` the node folder.
fn run(node: &Node, script: &str) -> String {
    let helpers = std::fs::read_to_string(fixture("fixtures/imap_helpers.py")).expect("helpers");
    let out = python(
        &format!("{helpers}\n{script}"),
        &[
            &node.imap.port().to_string(),
            &node.smtp.port().to_string(),
            PASSWORD,
            &node.imaps.port().to_string(),
            node.cert_path().to_str().expect("utf-8 path"),
            node.dir.path().to_str().expect("utf-8 path"),
        ],
    );
    assert!(out.ends_with("ok\n"), "{out}");
    out
}

fn node_with(backend: Backend, extra_config: &str) -> Node {
    let node = Node::start(NodeOptions {
        backend,
        extra_config: extra_config.to_owned(),
    });
    node.add_user("alice@example.test", None);
    node
}

const PRELUDE: &str = r#"
PORT, SMTP, PASSWORD, IMAPS, CERT, NODE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
USER = "alice@example.test"

def connect():
    m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
    m.login(USER, PASSWORD)
    return m

def deliver(message, to=USER):
    import smtplib
    with smtplib.SMTP("127.0.0.1", SMTP, timeout=30) as s:
        check(s.sendmail("bob@example.net", [to], message) == {}, "SMTP refused")
"#;

#[test]
fn capabilities_enable_id_and_namespace() {
    let node = node_with(Backend::Sqlite, "");
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
raw = Raw(PORT)
check(raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev2 IMAP4rev1 "), raw.greeting)
untagged = raw.ok("CAPABILITY")
before = untagged[0].split()
for capability in [b"IMAP4rev2", b"IMAP4rev1", b"STARTTLS", b"AUTH=PLAIN", b"AUTH=LOGIN",
                   b"AUTH=SCRAM-SHA-256", b"SASL-IR", b"LITERAL+", b"ENABLE", b"ID", b"IDLE",
                   b"NAMESPACE", b"UIDPLUS", b"MOVE", b"UNSELECT", b"CHILDREN", b"SPECIAL-USE",
                   b"CREATE-SPECIAL-USE", b"LIST-EXTENDED", b"LIST-STATUS", b"ESEARCH",
                   b"CONDSTORE", b"QRESYNC", b"QUOTA", b"QUOTA=RES-STORAGE", b"UTF8=ACCEPT",
                   b"STATUS=SIZE", b"BINARY"]:
    check(capability in before, f"{capability} missing before login: {before}")
check(b"LOGINDISABLED" not in before, "LOGIN is allowed from loopback")
check(any(c.startswith(b"APPENDLIMIT=") for c in before), before)
# ENABLE is for the authenticated state only.
tagged, _ = raw.command("ENABLE CONDSTORE")
check(tagged.endswith(b"BAD Command not valid in this state"), tagged)

tagged, _ = raw.command(f'LOGIN "{USER}" "{PASSWORD}"')
check(b"OK [CAPABILITY IMAP4rev2 IMAP4rev1" in tagged, tagged)
after = raw.ok("CAPABILITY")[0].split()
check(b"AUTH=PLAIN" not in after and b"STARTTLS" not in after and b"IDLE" in after, after)

untagged = raw.ok("ENABLE CONDSTORE X-UNKNOWN qresync")
check(untagged == [b"* ENABLED CONDSTORE QRESYNC"], untagged)
untagged = raw.ok("ENABLE CONDSTORE")
check(untagged == [b"* ENABLED"], f"already enabled: {untagged}")
untagged = raw.ok("ENABLE UTF8=ACCEPT IMAP4rev2")
check(untagged == [b"* ENABLED UTF8=ACCEPT IMAP4REV2"], untagged)

untagged = raw.ok('ID ("name" "test-client" "version" "1")')
check(untagged[0].startswith(b'* ID ("name" "Postcell" "version" '), untagged)
untagged = raw.ok("ID NIL")
check(len(untagged) == 1, untagged)
untagged = raw.ok("NAMESPACE")
check(untagged == [b'* NAMESPACE (("" "/")) NIL NIL'], untagged)

# ENABLE after SELECT is refused (RFC 5161 section 3.1).
raw.ok("SELECT INBOX")
tagged, _ = raw.command("ENABLE CONDSTORE")
check(b"BAD Command not valid in this state" in tagged, tagged)
raw.ok("UNSELECT")
tagged, untagged = raw.command("LOGOUT")
check(untagged == [b"* BYE Logging out"] and b"OK LOGOUT completed" in tagged, (tagged, untagged))
print("ok")
"#
        ),
    );
}

#[test]
fn authenticate_plain_login_and_scram_sha_256() {
    let node = node_with(Backend::Sqlite, "");
    node.add_user("nosecrets@example.test", None);
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()

# SASL-IR: PLAIN with the initial response on the command line (RFC 4959).
raw = Raw(PORT)
tagged, _ = raw.command("AUTHENTICATE PLAIN " + plain(USER, PASSWORD))
check(b"OK [CAPABILITY" in tagged and b"Logged in" in tagged, tagged)
raw.close()

# PLAIN without an initial response: an empty challenge first.
raw = Raw(PORT)
raw.send(b"a AUTHENTICATE PLAIN\r\n")
check(raw.line() == b"+ ", "empty challenge")
raw.send(plain(USER, PASSWORD).encode() + b"\r\n")
check(b"a OK" in raw.line(), "PLAIN after the challenge")
raw.close()

# imaplib's AUTHENTICATE with the LOGIN mechanism (two challenges).
m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
answers = iter([USER.encode(), PASSWORD.encode()])
typ, data = m.authenticate("LOGIN", lambda challenge: next(answers))
check(typ == "OK", f"AUTHENTICATE LOGIN: {typ} {data}")
m.logout()

# SCRAM-SHA-256, computed here with hashlib and hmac; the server proves itself too.
m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
client = ScramClient(USER, PASSWORD)
typ, data = m.authenticate("SCRAM-SHA-256", client.imaplib_handler())
check(typ == "OK" and client.verified, f"SCRAM: {typ} {data} verified={client.verified}")
typ, data = m.select("INBOX")
check(typ == "OK", "SELECT after SCRAM")
m.logout()

# SCRAM with SASL-IR.
raw = Raw(PORT)
client = ScramClient(USER, PASSWORD)
raw.send(b"s1 AUTHENTICATE SCRAM-SHA-256 " + base64.b64encode(client.first()) + b"\r\n")
line = raw.line()
check(line.startswith(b"+ "), line)
raw.send(base64.b64encode(client.final(base64.b64decode(line[2:]))) + b"\r\n")
line = raw.line()
check(line.startswith(b"+ "), line)
raw.send(base64.b64encode(client.check_server_final(base64.b64decode(line[2:]))) + b"\r\n")
check(b"s1 OK" in raw.line(), "SCRAM with SASL-IR")
raw.close()

# A wrong SCRAM password, and an unknown user, fail the same way.
for user, password in [(USER, "wrong"), ("nobody@example.test", PASSWORD)]:
    m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
    try:
        m.authenticate("SCRAM-SHA-256", ScramClient(user, password).imaplib_handler())
        check(False, f"SCRAM accepted {user} / {password}")
    except imaplib.IMAP4.error as e:
        check("AUTHENTICATIONFAILED" in str(e), f"SCRAM failure: {e}")
    m.shutdown()

# An account without SCRAM secrets (its password set before they were kept) cannot
# use SCRAM, and still logs in with a password.
import sqlite3
db = sqlite3.connect(os.path.join(NODE, "data", "postcell.db"), timeout=30)
db.execute("UPDATE accounts SET scram_salt = NULL, scram_iterations = NULL, scram_stored_key = NULL, scram_server_key = NULL WHERE name = 'nosecrets@example.test'")
db.commit()
db.close()
m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
try:
    m.authenticate("SCRAM-SHA-256", ScramClient("nosecrets@example.test", PASSWORD).imaplib_handler())
    check(False, "SCRAM without secrets")
except imaplib.IMAP4.error as e:
    check("AUTHENTICATIONFAILED" in str(e), e)
m.shutdown()
m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
check(m.login("nosecrets@example.test", PASSWORD)[0] == "OK", "LOGIN without secrets")
m.logout()

# Cancelling, bad base64, an unknown mechanism, channel binding.
raw = Raw(PORT)
raw.send(b"c1 AUTHENTICATE PLAIN\r\n")
raw.line()
raw.send(b"*\r\n")
check(raw.line() == b"c1 BAD Authentication cancelled", "cancel")
tagged, _ = raw.command("AUTHENTICATE PLAIN !!!!")
check(b"BAD" in tagged, tagged)
raw.send(b"c2 AUTHENTICATE PLAIN\r\n")
raw.line()
raw.send(b"%%%\r\n")
check(raw.line() == b"c2 BAD Invalid base64 data", "bad base64")
tagged, _ = raw.command("AUTHENTICATE GSSAPI")
check(b"NO [CANNOT] Unsupported authentication mechanism" in tagged, tagged)
tagged, _ = raw.command("AUTHENTICATE SCRAM-SHA-256 " + base64.b64encode(b"p=tls-unique,,n=a,r=x").decode())
check(b"BAD Channel binding is not supported" in tagged, tagged)
# Failures are slowed down: the second wrong password is answered after 2 seconds.
start = time.monotonic()
tagged, _ = raw.command(f'LOGIN "{USER}" "wrong"')
first = time.monotonic() - start
check(b"NO [AUTHENTICATIONFAILED] Invalid credentials" in tagged, tagged)
start = time.monotonic()
tagged, _ = raw.command(f'LOGIN "{USER}" "wrong"')
second = time.monotonic() - start
check(first >= 0.9 and second >= 1.9, f"delays {first:.2f}s then {second:.2f}s")
raw.ok(f'LOGIN "{USER}" "{PASSWORD}"')
print("ok")
"#
        ),
    );
}

/// A password changed with `postcell user passwd` changes for every mechanism.
#[test]
fn user_passwd_changes_the_scram_secrets_too() {
    let node = node_with(Backend::Sqlite, "");
    let mut child = std::process::Command::new(common::postcell_bin())
        .arg("--config")
        .arg(&node.config)
        .args(["user", "passwd", "alice@example.test", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"new-password\n")
        .expect("write");
    assert!(child.wait().expect("wait").success());
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
for password, works in [(PASSWORD, False), ("new-password", True)]:
    m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
    try:
        m.authenticate("SCRAM-SHA-256", ScramClient(USER, password).imaplib_handler())
        check(works, f"the old password still works with SCRAM")
    except imaplib.IMAP4.error as e:
        check(not works and "AUTHENTICATIONFAILED" in str(e), f"{password}: {e}")
    m.shutdown()
print("ok")
"#
        ),
    );
}

#[test]
fn five_failed_logins_end_the_session() {
    let node = node_with(Backend::Sqlite, "");
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
raw = Raw(PORT, timeout=30)
for attempt in range(4):
    tagged, _ = raw.command(f'LOGIN "{USER}" "wrong"')
    check(b"NO [AUTHENTICATIONFAILED]" in tagged, tagged)
raw.send(b"last LOGIN x y\r\n")
check(b"last NO [AUTHENTICATIONFAILED]" in raw.line(), "fifth failure")
check(raw.line() == b"* BYE Too many authentication failures", "BYE")
try:
    raw.line()
    check(False, "the connection stayed open")
except EOFError:
    pass
print("ok")
"#
        ),
    );
}

#[test]
fn starttls_upgrades_and_discards_what_was_pipelined() {
    let node = node_with(Backend::Sqlite, "");
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
context = ssl.create_default_context(cafile=CERT)
context.check_hostname = False
m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
check("STARTTLS" in m.capabilities, m.capabilities)
typ, data = m.starttls(ssl_context=context)
check(typ == "OK" and isinstance(m.sock, ssl.SSLSocket), f"STARTTLS: {typ} {data}")
typ, caps = m.capability()
check(b"STARTTLS" not in caps[0] and b"AUTH=PLAIN" in caps[0], caps)
m.login(USER, PASSWORD)
m.logout()

# A command pipelined behind STARTTLS in the clear must not run inside TLS.
raw = Raw(PORT)
raw.send(b"t1 STARTTLS\r\nt2 LOGIN alice@example.test " + PASSWORD.encode() + b"\r\n")
check(raw.line() == b"t1 OK Begin TLS negotiation now", "STARTTLS answer")
tls = context.wrap_socket(raw.sock)
tls.settimeout(5)
tls.sendall(b"t3 NOOP\r\n")
answer = b""
while b"\r\n" not in answer:
    answer += tls.recv(4096)
check(answer.startswith(b"t3 OK"), f"the pipelined LOGIN was answered: {answer!r}")
tls.sendall(b"t4 STARTTLS\r\n")
answer = b""
while b"\r\n" not in answer:
    answer += tls.recv(4096)
check(answer.startswith(b"t4 BAD TLS is already active"), answer)
print("ok")
"#
        ),
    );
}

/// A message with every kind of part, stored by APPEND.
const STRUCTURED: &str = r#"
STRUCTURED = (b'From: "Ann Example" <ann@example.org>\r\n'
    b'To: alice@example.test, "Bob" <bob@example.net>\r\n'
    b'Cc: =?UTF-8?B?5bGx55Sw?= <yamada@example.jp>\r\n'
    b'Subject: Structure test\r\n'
    b'Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n'
    b'Message-ID: <struct@example.org>\r\n'
    b'MIME-Version: 1.0\r\n'
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b'\r\n'
    b'--outer\r\n'
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b'\r\n'
    b'--inner\r\n'
    b'Content-Type: text/plain; charset=utf-8\r\n'
    b'\r\n'
    b'Hello in plain text.\r\n'
    b'--inner\r\n'
    b'Content-Type: text/html; charset=utf-8\r\n'
    b'\r\n'
    b'<p>Hello</p>\r\n'
    b'--inner--\r\n'
    b'--outer\r\n'
    b'Content-Type: message/rfc822\r\n'
    b'\r\n'
    b'From: Carl <carl@example.org>\r\n'
    b'Subject: Inner message\r\n'
    b'\r\n'
    b'Inner body.\r\n'
    b'--outer\r\n'
    b'Content-Type: application/octet-stream; name="data.bin"\r\n'
    b'Content-Disposition: attachment; filename="data.bin"\r\n'
    b'Content-Transfer-Encoding: base64\r\n'
    b'\r\n'
    b'AAECAwQ=\r\n'
    b'--outer\r\n'
    b'Content-Type: text/plain\r\n'
    b'Content-Transfer-Encoding: x-uuencode\r\n'
    b'\r\n'
    b'begin 644 x\r\n'
    b'--outer--\r\n')
"#;

#[test]
fn fetch_envelope_structure_sections_binary_and_macros() {
    let node = node_with(Backend::Sqlite, "");
    run(
        &node,
        &format!(
            "{PRELUDE}{STRUCTURED}{}",
            r#"
m = connect()
typ, data = m.append("INBOX", None, '"07-Feb-1994 21:52:25 -0800"', STRUCTURED)
check(typ == "OK", data)
m.append("INBOX", None, None, b"Subject: headers only\r\n")
m.logout()

raw = Raw(PORT)
raw.login(USER, PASSWORD)
raw.ok("SELECT INBOX")

def fetch(what, seq=1):
    untagged = raw.ok(f"FETCH {seq} {what}")
    fetched = [fetch_items(r) for r in untagged if b" FETCH " in r]
    check(len(fetched) == 1, f"{what}: {untagged}")
    return fetched[0][1]

items = fetch("(ENVELOPE)")
envelope = items["ENVELOPE"]
check(envelope[0] == b"Mon, 7 Feb 1994 21:52:25 -0800" and envelope[1] == b"Structure test", envelope)
check(envelope[2] == [[b"Ann Example", None, b"ann", b"example.org"]], f"from: {envelope[2]}")
check(envelope[3] == envelope[2] and envelope[4] == envelope[2], "sender and reply-to default to from")
check(envelope[5] == [[None, None, b"alice", b"example.test"], [b"Bob", None, b"bob", b"example.net"]], envelope[5])
check(envelope[6] == [[b"=?UTF-8?B?5bGx55Sw?=", None, b"yamada", b"example.jp"]], f"cc is sent undecoded: {envelope[6]}")
check(envelope[7] is None and envelope[8] is None and envelope[9] == b"<struct@example.org>", envelope)

structure = fetch("(BODYSTRUCTURE)")["BODYSTRUCTURE"]
alternative, rfc822, attachment, unknown = structure[:4]
check(structure[4] == b"mixed" and structure[5] == [b"boundary", b"outer"], structure[4:])
check(alternative[0][:2] == [b"text", b"plain"] and alternative[1][:2] == [b"text", b"html"], alternative)
check(alternative[2] == b"alternative", alternative)
check(alternative[0][2] == [b"charset", b"utf-8"] and alternative[0][6] == 20 and alternative[0][7] == 1, alternative[0])
check(rfc822[:2] == [b"message", b"rfc822"] and rfc822[7][1] == b"Inner message", rfc822)
check(rfc822[8][:2] == [b"text", b"plain"] and rfc822[9] == 4, f"inner body and lines: {rfc822}")
check(attachment[:2] == [b"application", b"octet-stream"] and attachment[5] == b"base64", attachment)
check(attachment[8] == [b"attachment", [b"filename", b"data.bin"]], f"disposition: {attachment}")
check(unknown[5] == b"x-uuencode", unknown)

body = fetch("(BODY)")["BODY"]
check(body[4] == b"mixed" and len(body) == 5, f"BODY has no extension data: {body}")
check(len(body[2]) == 7, f"BODY's text part has no extension data: {body[2]}")

sections = fetch("(BODY.PEEK[1.1] BODY.PEEK[1.2.MIME] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] "
                 "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[HEADER.FIELDS.NOT (TO CC DATE MESSAGE-ID MIME-VERSION CONTENT-TYPE)] "
                 "BODY.PEEK[TEXT]<0.7> BODY.PEEK[3]<2.4> BODY.PEEK[9] BODY.PEEK[2.MIME])")
expect = {
    "BODY[1.1]": b"Hello in plain text.",
    "BODY[1.2.MIME]": b"Content-Type: text/html; charset=utf-8\r\n\r\n",
    "BODY[2.HEADER]": b"From: Carl <carl@example.org>\r\nSubject: Inner message\r\n\r\n",
    "BODY[2.TEXT]": b"Inner body.",
    "BODY[2.1]": b"Inner body.",
    'BODY[HEADER.FIELDS (SUBJECT FROM)]': b'From: "Ann Example" <ann@example.org>\r\nSubject: Structure test\r\n\r\n',
    'BODY[HEADER.FIELDS.NOT (TO CC DATE MESSAGE-ID MIME-VERSION CONTENT-TYPE)]': b'From: "Ann Example" <ann@example.org>\r\nSubject: Structure test\r\n\r\n',
    "BODY[TEXT]<0>": b"--outer",
    "BODY[3]<2>": b"ECAw",
    "BODY[9]": None,
    "BODY[2.MIME]": b"Content-Type: message/rfc822\r\n\r\n",
}
for key, value in expect.items():
    check(sections.get(key, "missing") == value, f"{key}: {sections.get(key, 'missing')!r}")
check("FLAGS" not in sections, "PEEK reported flags")

binary = fetch("(BINARY.PEEK[3] BINARY.SIZE[3] BINARY.PEEK[1.1]<0.5> BINARY.SIZE[1.1])")
check(binary["BINARY[3]"] == b"\x00\x01\x02\x03\x04" and binary["BINARY.SIZE[3]"] == 5, binary)
check(binary["BINARY[1.1]<0>"] == b"Hello" and binary["BINARY.SIZE[1.1]"] == 20, binary)
tagged, untagged = raw.command("FETCH 1 (BINARY.PEEK[4])")
check(b"NO [UNKNOWN-CTE]" in tagged and not untagged, (tagged, untagged))

items = fetch("(FLAGS)")
check(items["FLAGS"] == [], items)
items = fetch("(BODY[1.1])")
check(items["FLAGS"] == [Atom(b"\\Seen")], f"a non-PEEK fetch reports \\Seen: {items}")
items = fetch("(BINARY[3] FLAGS)", seq=2)
check(items["FLAGS"] == [Atom(b"\\Seen")], items)

items = fetch("FAST")
check(sorted(items) == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"] and items["RFC822.SIZE"] == len(STRUCTURED), items)
check(items["INTERNALDATE"] == b"08-Feb-1994 05:52:25 +0000", items["INTERNALDATE"])
check(sorted(fetch("ALL")) == ["ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE"], "ALL")
check(sorted(fetch("FULL")) == ["BODY", "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE"], "FULL")
items = fetch("(RFC822.HEADER UID MODSEQ)")
check(items["RFC822.HEADER"].endswith(b'boundary="outer"\r\n\r\n') and items["UID"] == 1, items)
check(isinstance(items["MODSEQ"], list) and items["MODSEQ"][0] > 0, items["MODSEQ"])

# A message without a body.
items = fetch("(BODYSTRUCTURE BODY.PEEK[TEXT] RFC822.SIZE)", seq=2)
check(items["BODY[TEXT]"] == b"" and items["BODYSTRUCTURE"][:2] == [b"text", b"plain"], items)
check(items["BODYSTRUCTURE"][6] == 0, items)

# UID FETCH answers with the UID; an unknown UID is no error.
untagged = raw.ok("UID FETCH 2 (FLAGS)")
check(fetch_items(untagged[0])[1]["UID"] == 2, untagged)
check(raw.ok("UID FETCH 99 (FLAGS)") == [], "unknown UID")
tagged, _ = raw.command("FETCH 3 (FLAGS)")
check(tagged.endswith(b"BAD Invalid message sequence number"), tagged)
raw.ok("LOGOUT")

# imaplib's partial fetch of a whole message.
m = connect()
m.select("INBOX")
typ, data = m.fetch("1", "(BODY.PEEK[]<0.10>)")
check(data[0][0].endswith(b"BODY[]<0> {10}") and data[0][1] == STRUCTURED[:10], data)
typ, data = m.fetch("1", "(BODY.PEEK[]<10.20>)")
check(data[0][0].endswith(b"BODY[]<10> {20}") and data[0][1] == STRUCTURED[10:30], data)
m.logout()

# A message stored without a summary gets one computed, and saved.
import sqlite3
db = sqlite3.connect(os.path.join(NODE, "data", "postcell.db"), timeout=30)
db.execute("UPDATE messages SET summary = NULL")
db.commit()
m = connect()
m.select("INBOX", readonly=True)
typ, data = m.fetch("1", "(ENVELOPE)")
check(b'"Structure test"' in data[0], data)
m.logout()
(missing,) = db.execute("SELECT COUNT(*) FROM messages WHERE summary IS NULL").fetchone()
check(missing == 1, f"{missing} messages still have no summary")
print("ok")
"#
        ),
    );
}

#[test]
fn append_with_literals_literal_plus_literal8_and_its_refusals() {
    let node = node_with(Backend::Sqlite, "[imap]\nmax_message_size = \"4K\"\n");
    node.add_user("small@example.test", Some("2K"));
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
raw = Raw(PORT)
check(b"APPENDLIMIT=4096" in raw.greeting, raw.greeting)
raw.login(USER, PASSWORD)
raw.ok("SELECT INBOX")
message = b"Subject: one\r\n\r\nfirst\r\n"
# A synchronizing literal: the server asks for it with "+".
raw.send(b"a1 APPEND INBOX (\\Seen $Work) \"01-Jan-2026 10:00:00 +0900\" {%d}\r\n" % len(message))
check(raw.line().startswith(b"+ "), "continuation")
raw.send(message + b"\r\n")
seen, _ = raw.wait_for(lambda r: r.startswith(b"a1 "), 10)
check(b"* 1 EXISTS" in seen, f"APPEND to the selected mailbox is reported: {seen}")
check(re.match(rb"a1 OK \[APPENDUID \d+ 1\] APPEND completed", seen[-1]), seen)
# LITERAL+: no continuation, the data follows at once.
second = b"Subject: two\r\n\r\nsecond\r\n"
raw.send(b"a2 APPEND INBOX {%d+}\r\n" % len(second) + second + b"\r\n")
seen, _ = raw.wait_for(lambda r: r.startswith(b"a2 "), 10)
check(b"OK [APPENDUID" in seen[-1] and not any(r.startswith(b"+") for r in seen), seen)
# BINARY's literal8: a message with NUL octets.
binary = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n"
raw.send(b"a3 APPEND INBOX ~{%d+}\r\n" % len(binary) + binary + b"\r\n")
seen, _ = raw.wait_for(lambda r: r.startswith(b"a3 "), 10)
check(b"OK [APPENDUID" in seen[-1], seen)
items = fetch_items(raw.ok("FETCH 3 (BINARY.PEEK[1])")[0])[1]
check(items["BINARY[1]"] == b"\x00\x01\x02\r\n", items)
# A NUL in an ordinary literal is refused.
raw.send(b"a4 APPEND INBOX {3+}\r\na\x00b\r\n")
check(raw.line().startswith(b"a4 BAD"), "NUL in a literal")
items = fetch_items(raw.ok("FETCH 1 (FLAGS INTERNALDATE)")[0])[1]
check(items["FLAGS"] == [Atom(b"\\Seen"), Atom(b"$Work")], items)
check(items["INTERNALDATE"] == b"01-Jan-2026 01:00:00 +0000", items)

# Over the size limit: refused before the client sends the data (no "+").
raw.send(b"a5 APPEND INBOX {5000}\r\n")
line = raw.line()
check(line.startswith(b"a5 BAD [TOOBIG]"), f"too big: {line}")
# ... and a non-synchronizing one is refused and its octets skipped.
raw.send(b"a6 APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\na7 NOOP\r\n")
check(raw.line().startswith(b"a6 BAD [TOOBIG]"), "non-synchronizing too big")
check(raw.line().startswith(b"a7 OK"), "the session goes on")
tagged, _ = raw.command("APPEND Nowhere {1+}\r\nx")
check(b"NO [TRYCREATE]" in tagged, tagged)
tagged, _ = raw.command("APPEND INBOX \"31-Feb-2026 10:00:00 +0000\" {1+}\r\nx")
check(b"BAD" in tagged, f"an impossible date: {tagged}")
raw.ok("LOGOUT")

# Over quota: NO [OVERQUOTA], and nothing was stored.
m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
m.login("small@example.test", PASSWORD)
typ, data = m.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"y" * 3000 + b"\r\n")
check(typ == "NO" and b"OVERQUOTA" in data[0], (typ, data))
typ, data = m.status("INBOX", "(MESSAGES)")
check(b"MESSAGES 0" in data[0], data)
check(m.append("INBOX", None, None, b"Subject: small\r\n\r\nok\r\n")[0] == "OK", "a message that fits")
m.logout()
print("ok")
"#
        ),
    );
}

#[test]
fn store_copy_move_expunge_close_unselect_and_examine() {
    let node = node_with(Backend::Sqlite, "");
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
m = connect()
for i in range(1, 7):
    m.append("INBOX", None, None, b"Subject: message %d\r\n\r\nbody %d\r\n" % (i, i))
typ, data = m.select("INBOX")
check(data == [b"6"], data)

typ, data = m.store("1:2", "+FLAGS", "(\\Flagged $Later)")
check(typ == "OK" and len(data) == 2 and b"$Later" in data[0], data)
typ, data = m.store("2", "-FLAGS", "($Later)")
check(data == [b"2 (FLAGS (\\Flagged))"], data)
typ, data = m.store("2", "FLAGS.SILENT", "(\\Answered)")
check(data == [None], f".SILENT: {data}")
typ, data = m.fetch("2", "(FLAGS)")
check(data == [b"2 (FLAGS (\\Answered))"], data)
# The RFC 9051 section 7.5.1 wrong-number case: BAD, nothing changed.
try:
    m.store("7", "+FLAGS", "(\\Seen)")
    check(False, "STORE 7 of 6")
except imaplib.IMAP4.error as e:
    check("Invalid message sequence number" in str(e), e)

# UID MOVE: COPYUID in an untagged OK, then the expunges of the moved messages.
typ, data = m._simple_command("UID", "MOVE", "2:3", "Archive")
check(typ == "OK" and data == [b"MOVE completed"], (typ, data))
copyuid = m.untagged_responses.pop("OK", [])
check(any(re.match(rb"\[COPYUID \d+ 2:3 1:2\] Moved", r) for r in copyuid), copyuid)
expunges = m.untagged_responses.pop("EXPUNGE", [])
check(expunges == [b"3", b"2"], f"MOVE reports the expunges: {expunges} {m.untagged_responses}")
typ, data = m._simple_command("UID", "COPY", "4", "Archive")
check(typ == "OK" and re.match(rb"\[COPYUID \d+ 4 3\] COPY completed", data[0]), data)
typ, data = m.copy("1", "Nowhere")
check(typ == "NO" and b"TRYCREATE" in data[0], data)
typ, data = m._simple_command("MOVE", "1", "INBOX")
check(typ == "NO" and b"CANNOT" in data[0], data)
typ, data = m.status("Archive", "(MESSAGES UIDNEXT)")
check(b"MESSAGES 3" in data[0] and b"UIDNEXT 4" in data[0], data)

# EXPUNGE reports each removed message, highest number first.
m.store("1,3:4", "+FLAGS.SILENT", "(\\Deleted)")
typ, data = m.expunge()
check(data == [b"4", b"3", b"1"], f"EXPUNGE: {data}")
typ, data = m.select("INBOX")
check(data == [b"1"], data)
m.append("INBOX", None, None, b"Subject: seven\r\n\r\nx\r\n")
m.append("INBOX", None, None, b"Subject: eight\r\n\r\nx\r\n")
m.noop()
m.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
# UID EXPUNGE removes only the UIDs named.
typ, data = m.uid("EXPUNGE", "7")
check(typ == "OK" and m.untagged_responses.pop("EXPUNGE", None) == [b"2"], (typ, data))

# UNSELECT keeps \Deleted messages; CLOSE expunges them without a word.
typ, data = m.unselect()
check(typ == "OK", data)
typ, data = m.select("INBOX")
check(data == [b"2"], data)
typ, data = m.close()
check(typ == "OK" and "EXPUNGE" not in m.untagged_responses, (data, m.untagged_responses))
typ, data = m.status("INBOX", "(MESSAGES DELETED)")
check(b"MESSAGES 0" in data[0], f"CLOSE expunged: {data}")

# EXAMINE is read-only: STORE refused, FETCH BODY[] does not set \Seen, CLOSE expunges nothing.
m.append("INBOX", "(\\Deleted)", None, b"Subject: keep\r\n\r\nx\r\n")
typ, data = m.select("INBOX", readonly=True)
check(typ == "OK", data)
check(m.untagged_responses.get("READ-ONLY"), m.untagged_responses)
typ, data = m.store("1", "+FLAGS", "(\\Seen)")
check(typ == "NO" and b"READ-ONLY" in data[0], data)
typ, data = m.fetch("1", "(BODY[])")
check(b"\\Seen" not in data[0][0], data)
typ, data = m.expunge()
check(typ == "NO", f"EXPUNGE on EXAMINE: {data}")
m.close()
typ, data = m.status("INBOX", "(MESSAGES UNSEEN)")
check(b"MESSAGES 1" in data[0] and b"UNSEEN 1" in data[0], data)

# CHECK is a NOOP that may report changes.
m.select("INBOX")
check(m.check()[0] == "OK", "CHECK")
m.logout()
print("ok")
"#
        ),
    );
}

const CONDSTORE_QRESYNC: &str = r#"
a = Raw(PORT)
a.login(USER, PASSWORD)
for i in range(1, 6):
    a.ok(b"APPEND INBOX {%d+}\r\nSubject: %d\r\n\r\nx\r\n" % (len(b"Subject: %d\r\n\r\nx\r\n" % i), i))
untagged = a.ok("SELECT INBOX (CONDSTORE)")
highest = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(untagged)).group(1))
validity = int(re.search(rb"UIDVALIDITY (\d+)", b"\n".join(untagged)).group(1))

# STORE with UNCHANGEDSINCE: done where the message is unchanged, [MODIFIED] where not.
untagged = a.ok(f"STORE 1 (UNCHANGEDSINCE {highest}) +FLAGS (\\Seen)")
seq, items = fetch_items(untagged[0])
check(seq == 1 and items["FLAGS"] == [Atom(b"\\Seen")] and items["MODSEQ"][0] > highest, untagged)
after_store = items["MODSEQ"][0]
tagged, untagged = a.command(f"STORE 1,2 (UNCHANGEDSINCE {highest}) +FLAGS (\\Flagged)")
check(b"OK [MODIFIED 1]" in tagged, tagged)
check(len(untagged) == 1 and fetch_items(untagged[0])[0] == 2, f"only message 2 changed: {untagged}")
tagged, untagged = a.command(f"UID STORE 1 (UNCHANGEDSINCE {highest}) -FLAGS.SILENT (\\Seen)")
check(b"OK [MODIFIED 1]" in tagged and untagged == [], (tagged, untagged))
# .SILENT with CONDSTORE still tells the new MODSEQ of what it changed.
untagged = a.ok("STORE 3 +FLAGS.SILENT (\\Answered)")
seq, items = fetch_items(untagged[0])
check(seq == 3 and "FLAGS" not in items and "MODSEQ" in items and items["UID"] == 3, untagged)

# FETCH (CHANGEDSINCE): only what changed after the MODSEQ, with its MODSEQ.
untagged = a.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {after_store})")
changed = sorted(fetch_items(r)[0] for r in untagged)
check(changed == [2, 3], untagged)
check(all("MODSEQ" in fetch_items(r)[1] for r in untagged), untagged)
untagged = a.ok("STATUS INBOX (HIGHESTMODSEQ)")
known = int(re.search(rb"HIGHESTMODSEQ (\d+)", untagged[0]).group(1))
a.ok("LOGOUT")

# Another session changes and expunges while the first is away.
b = Raw(PORT)
b.login(USER, PASSWORD)
b.ok("SELECT INBOX")
b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
b.ok("EXPUNGE")
b.ok("UID STORE 4 +FLAGS.SILENT (\\Answered)")

# QRESYNC: SELECT with what the client knew tells it what vanished and what changed.
c = Raw(PORT)
c.login(USER, PASSWORD)
tagged, _ = c.command(f"SELECT INBOX (QRESYNC ({validity} {known} 1:5))")
check(b"BAD" in tagged, f"QRESYNC before ENABLE: {tagged}")
check(c.ok("ENABLE QRESYNC") == [b"* ENABLED QRESYNC"], "ENABLE QRESYNC")
untagged = c.ok(f"SELECT INBOX (QRESYNC ({validity} {known} 1:5))")
check(b"* VANISHED (EARLIER) 3" in untagged, f"VANISHED (EARLIER): {untagged}")
fetched = [fetch_items(r) for r in untagged if b" FETCH " in r]
check(len(fetched) == 1 and fetched[0][1]["UID"] == 4 and fetched[0][1]["FLAGS"] == [Atom(b"\\Answered")], fetched)
check(b"* 4 EXISTS" in untagged and any(b"[HIGHESTMODSEQ" in r for r in untagged), untagged)
# Known UIDs limit VANISHED to what the client knew.
untagged = c.ok(f"SELECT INBOX (QRESYNC ({validity} {known} 4:5))")
check(b"[CLOSED]" in untagged[0], f"the old mailbox is closed first: {untagged[0]}")
check(not any(r.startswith(b"* VANISHED") for r in untagged), untagged)
# Another UIDVALIDITY: the client's cache is worthless, nothing is resynchronised.
untagged = c.ok(f"SELECT INBOX (QRESYNC ({validity + 1} {known}))")
check(not any(r.startswith(b"* VANISHED") or b" FETCH " in r for r in untagged), untagged)

# UID FETCH (CHANGEDSINCE ... VANISHED).
untagged = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {known} VANISHED)")
check(untagged[0] == b"* VANISHED (EARLIER) 3", untagged)
check([fetch_items(r)[1]["UID"] for r in untagged[1:]] == [4], untagged)

# With QRESYNC on, an expunge by another session is VANISHED, never EXPUNGE.
b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
b.ok("EXPUNGE")
untagged = c.ok("NOOP")
check(untagged == [b"* VANISHED 1"], f"NOOP: {untagged}")
c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
untagged = c.ok("EXPUNGE")
check(untagged == [b"* VANISHED 2"], f"own EXPUNGE: {untagged}")
print("ok")
"#;

#[test]
fn condstore_and_qresync_sqlite() {
    let node = node_with(Backend::Sqlite, "");
    run(&node, &format!("{PRELUDE}{CONDSTORE_QRESYNC}"));
}

#[test]
fn condstore_and_qresync_postgres() {
    let node = node_with(Backend::Postgres, "");
    run(&node, &format!("{PRELUDE}{CONDSTORE_QRESYNC}"));
}

/// Two sessions on one mailbox, one in IDLE: a delivery over SMTP, a flag change and an
/// expunge from the other session reach it in order, each within a second.
const IDLE_TWO_SESSIONS: &str = r#"
deliver(b"Subject: first\r\n\r\nalready here\r\n")
watcher = Raw(PORT)
watcher.login(USER, PASSWORD)
watcher.ok("SELECT INBOX")
other = connect()
other.select("INBOX")

watcher.send(b"i1 IDLE\r\n")
check(watcher.line() == b"+ idling", "continuation")

start = time.monotonic()
deliver(b"Subject: second\r\n\r\nnew mail\r\n")
seen, _ = watcher.wait_for(lambda r: r == b"* 2 EXISTS", 1.0)
delivery_time = time.monotonic() - start

start = time.monotonic()
other.store("1", "+FLAGS", "(\\Flagged)")
seen_flags, _ = watcher.wait_for(lambda r: b" FETCH " in r, 1.0)
flag_time = time.monotonic() - start
seq, items = fetch_items(seen_flags[-1])
check(seq == 1 and items["FLAGS"] == [Atom(b"\\Flagged")] and items["UID"] == 1, seen_flags)

start = time.monotonic()
other.store("2", "+FLAGS.SILENT", "(\\Deleted)")
other.expunge()
seen_expunge, _ = watcher.wait_for(lambda r: r == b"* 2 EXPUNGE", 1.0)
expunge_time = time.monotonic() - start

order = seen + seen_flags + seen_expunge
check(order.index(b"* 2 EXISTS") < order.index(seen_flags[-1]) < order.index(b"* 2 EXPUNGE"), order)
watcher.send(b"DONE\r\n")
check(watcher.line() == b"i1 OK IDLE terminated", "DONE")
untagged = watcher.ok("FETCH 1:* (UID FLAGS)")
check(len(untagged) == 1 and fetch_items(untagged[0])[1]["UID"] == 1, f"the map is right after IDLE: {untagged}")
print(f"delivery {delivery_time:.3f}s, flag {flag_time:.3f}s, expunge {expunge_time:.3f}s")
other.logout()
print("ok")
"#;

#[test]
fn idle_sees_delivery_flag_change_and_expunge_in_order_sqlite() {
    let node = node_with(Backend::Sqlite, "");
    let out = run(&node, &format!("{PRELUDE}{IDLE_TWO_SESSIONS}"));
    eprintln!("{out}");
}

#[test]
fn idle_sees_delivery_flag_change_and_expunge_in_order_postgres() {
    let node = node_with(Backend::Postgres, "");
    let out = run(&node, &format!("{PRELUDE}{IDLE_TWO_SESSIONS}"));
    eprintln!("{out}");
}

/// A change that comes with no hint (here written straight into the database, as a
/// lost hint would leave it) still reaches an idling client: the poll timer.
#[test]
fn idle_polls_when_no_hint_comes() {
    let node = node_with(Backend::Sqlite, "[imap]\npoll_interval = \"1s\"\n");
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
deliver(b"Subject: first\r\n\r\nx\r\n")
watcher = Raw(PORT)
watcher.login(USER, PASSWORD)
watcher.ok("SELECT INBOX")
watcher.send(b"i1 IDLE\r\n")
check(watcher.line() == b"+ idling", "continuation")
import sqlite3
db = sqlite3.connect(os.path.join(NODE, "data", "postcell.db"), timeout=30)
(inbox,) = db.execute("SELECT m.id FROM mailboxes m JOIN accounts a ON a.id = m.account_id WHERE a.name = ? AND m.name = 'INBOX'", (USER,)).fetchone()
db.execute("UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?", (inbox,))
db.execute("UPDATE messages SET flags = flags | 4, modseq = (SELECT highest_modseq FROM mailboxes WHERE id = ?) WHERE mailbox_id = ? AND uid = 1", (inbox, inbox))
db.commit()
seen, took = watcher.wait_for(lambda r: b" FETCH " in r, 3.0)
check(b"\\Flagged" in seen[-1], seen)
watcher.send(b"DONE\r\n")
check(watcher.line() == b"i1 OK IDLE terminated", "DONE")
print("ok")
"#
        ),
    );
}

/// IDLE ends with `* BYE` at the idle timeout, and at a server shutdown.
#[test]
fn idle_times_out_and_ends_at_shutdown() {
    let mut node = node_with(Backend::Sqlite, "[imap]\nidle_timeout = \"2s\"\n");
    let script = r#"
raw = Raw(PORT)
raw.login(USER, PASSWORD)
raw.ok("SELECT INBOX")
raw.send(b"i1 IDLE\r\n")
check(raw.line() == b"+ idling", "continuation")
start = time.monotonic()
check(raw.line() == b"* BYE Autologout; idle for too long", "idle timeout")
check(time.monotonic() - start >= 1.5, "too early")
print("ok")
"#;
    run(&node, &format!("{PRELUDE}{script}"));
    // Shutdown: the idling client hears BYE, then the server exits cleanly.
    let helpers = std::fs::read_to_string(fixture("fixtures/imap_helpers.py")).expect("helpers");
    let waiter = format!(
        "{helpers}{PRELUDE}{}",
        r#"
raw = Raw(PORT)
raw.login(USER, PASSWORD)
raw.ok("SELECT INBOX")
raw.send(b"i1 IDLE\r\n")
check(raw.line() == b"+ idling", "continuation")
print("idling", flush=True)
check(raw.line() == b"* BYE [UNAVAILABLE] Server shutting down", "shutdown BYE")
print("ok")
"#
    );
    let args: Vec<String> = vec![
        node.imap.port().to_string(),
        node.smtp.port().to_string(),
        PASSWORD.to_owned(),
        node.imaps.port().to_string(),
        node.cert_path().display().to_string(),
        node.dir.path().display().to_string(),
    ];
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(&waiter)
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("read");
    assert_eq!(line, "idling\n");
    let status = node.terminate();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read");
    assert!(child.wait().expect("wait").success(), "{rest}");
    assert_eq!(rest, "ok\n");
}

#[test]
fn list_extended_lsub_utf8_names_and_rename_inbox() {
    let node = node_with(Backend::Sqlite, "");
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
m = connect()
check(m.create("Work/2026/Q1")[0] == "OK", "CREATE with parents")
check(m.create("&kAFP4W4IMH8-")[0] == "OK", "CREATE in modified UTF-7")
m.unsubscribe("Work")
m.unsubscribe("Work/2026")
typ, data = m.create("INBOX")
check(typ == "NO" and b"ALREADYEXISTS" in data[0], data)
typ, data = m.create('"Bad*Name"')
check(typ == "NO" and b"CANNOT" in data[0], data)
typ, data = m._simple_command("CREATE", "Everything", "(USE (\\All))")
check(typ == "NO" and b"USEATTR" in data[0], data)
typ, data = m._simple_command("CREATE", "Receipts", "(USE (\\Archive))")
check(typ == "OK", data)
m.logout()

raw = Raw(PORT)
raw.login(USER, PASSWORD)
def listing(command):
    return [r for r in raw.ok(command) if r.startswith(b"* LIST") or r.startswith(b"* LSUB") or r.startswith(b"* STATUS")]

lines = listing('LIST "" %')
check(lines[0] == b'* LIST (\\HasNoChildren) "/" INBOX', f"INBOX first: {lines}")
for expected in [b'* LIST (\\HasNoChildren \\Sent) "/" Sent', b'* LIST (\\HasChildren) "/" Work',
                 b'* LIST (\\HasNoChildren) "/" &kAFP4W4IMH8-', b'* LIST (\\HasNoChildren \\Archive) "/" Receipts']:
    check(expected in lines, f"{expected} not in {lines}")
check(not any(b"Work/2026" in l for l in lines), "% stops at the delimiter")
check(listing('LIST "" ""') == [b'* LIST (\\Noselect) "/" ""'], "the delimiter")
check(listing('LIST "Work/" %') == [b'* LIST (\\HasChildren) "/" Work/2026'], "a reference")

lines = listing('LIST (SUBSCRIBED) "" "*"')
check(b'* LIST (\\Subscribed \\HasNoChildren) "/" Work/2026/Q1' in lines, lines)
check(not any(l.endswith(b'"/" Work') or l.endswith(b'"/" Work/2026') for l in lines), lines)
lines = listing('LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
check(b'* LIST (\\HasChildren) "/" Work ("CHILDINFO" ("SUBSCRIBED"))' in lines, lines)
lines = listing('LIST (SPECIAL-USE) "" "*"')
check(sorted(l.rsplit(b" ", 1)[1] for l in lines) == [b"Archive", b"Drafts", b"Junk", b"Receipts", b"Sent", b"Trash"], lines)
lines = listing('LIST () "" ("INBOX" "Work/%") RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)')
check(lines == [b'* LIST (\\Subscribed \\HasNoChildren) "/" INBOX', b'* LIST (\\HasChildren) "/" Work/2026'], lines)
lines = listing('LIST "" "Sent" RETURN (STATUS (MESSAGES UNSEEN SIZE))')
check(lines == [b'* LIST (\\HasNoChildren \\Sent) "/" Sent', b"* STATUS Sent (MESSAGES 0 UNSEEN 0 SIZE 0)"], lines)

lines = listing('LSUB "" "*"')
check(b'* LSUB () "/" Work/2026/Q1' in lines and not any(l.endswith(b" Work") for l in lines), lines)
lines = listing('LSUB "" "%"')
check(b'* LSUB (\\Noselect) "/" Work' in lines, f"LSUB % shows the level above a subscription: {lines}")

# A level that only its children make (the parent was deleted).
raw.ok("DELETE Work")
check(b'* LIST (\\Noselect \\HasChildren) "/" Work' in listing('LIST "" %'), "basic LIST")
check(b'* LIST (\\NonExistent \\HasChildren) "/" Work' in listing('LIST () "" %'), "extended LIST")
tagged, _ = raw.command("SELECT Work")
check(b"NO [NONEXISTENT]" in tagged, tagged)

# UTF-8 names once UTF8=ACCEPT is on; the same mailbox either way.
raw.ok("ENABLE UTF8=ACCEPT")
check('* LIST (\\HasNoChildren) "/" "送信済み"'.encode() in listing('LIST "" %'), "UTF-8 LIST")
raw.ok('SELECT "送信済み"'.encode())
raw.ok('CREATE "日本語/メモ"'.encode())
raw.ok("LOGOUT")
m = connect()
typ, data = m.list('""', "*")
check(b'(\\HasNoChildren) "/" &ZeVnLIqe-/&MOEw4g-' in data and b'(\\HasChildren) "/" &ZeVnLIqe-' in data, f"modified UTF-7 for others: {data}")
m.logout()

# RENAME INBOX moves its messages to the new mailbox and leaves INBOX empty.
m = connect()
for i in range(3):
    m.append("INBOX", None, None, b"Subject: %d\r\n\r\nx\r\n" % i)
check(m.rename("INBOX", "Old/Inbox")[0] == "OK", "RENAME INBOX")
typ, data = m.status("INBOX", "(MESSAGES)")
check(b"MESSAGES 0" in data[0], data)
typ, data = m.status("Old/Inbox", "(MESSAGES)")
check(b"MESSAGES 3" in data[0], data)
check(m.rename("Old", "New")[0] == "OK", "RENAME with children")
typ, data = m.status("New/Inbox", "(MESSAGES)")
check(b"MESSAGES 3" in data[0], data)
typ, data = m.rename("New", "New/Deeper")
check(typ == "NO", f"rename into itself: {data}")
typ, data = m.rename("Sent", "INBOX")
check(typ == "NO" and b"ALREADYEXISTS" in data[0], data)
typ, data = m.delete("INBOX")
check(typ == "NO", data)
m.logout()
print("ok")
"#
        ),
    );
}

#[test]
fn quota_and_status() {
    let node = node_with(Backend::Sqlite, "");
    node.add_user("limited@example.test", Some("10M"));
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
m = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
m.login("limited@example.test", PASSWORD)
message = b"Subject: q\r\n\r\n" + b"z" * 3000 + b"\r\n"
m.append("INBOX", "(\\Deleted)", None, message)
m.append("INBOX", None, None, message)
typ, data = m.getquotaroot("INBOX")
check(typ == "OK" and data[0] == [b'INBOX ""'], data)
check(data[1] == [b'"" (STORAGE 6 10240)'], data)
typ, data = m.getquota('""')
check(data == [b'"" (STORAGE 6 10240)'], data)
typ, data = m.getquota("other")
check(typ == "NO" and b"NONEXISTENT" in data[0], data)
typ, data = m.setquota('""', "(STORAGE 1)")
check(typ == "NO" and b"NOPERM" in data[0], data)
typ, data = m.getquotaroot("Nowhere")
check(typ == "NO" and b"NONEXISTENT" in data[0][0], data)
typ, data = m.status("INBOX", "(MESSAGES UNSEEN DELETED SIZE UIDNEXT UIDVALIDITY HIGHESTMODSEQ RECENT)")
check(typ == "OK", data)
for item in [b"MESSAGES 2", b"UNSEEN 2", b"DELETED 1", b"SIZE %d" % (2 * len(message)), b"UIDNEXT 3", b"RECENT 0"]:
    check(item in data[0], f"{item} not in {data}")
m.logout()
# No limit, no quota root.
m = connect()
typ, data = m.getquotaroot("INBOX")
check(typ == "OK" and data[0] == [b"INBOX"] and data[1] == [None], data)
m.logout()
print("ok")
"#
        ),
    );
}

/// Bad input of every kind gets BAD or NO with a clear text, and the session goes on.
#[test]
fn bad_input_is_refused_clearly_and_the_session_goes_on() {
    let node = node_with(Backend::Sqlite, "[imap]\nidle_timeout = \"3s\"\n");
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
raw = Raw(PORT)
# Commands in the wrong state.
for command, answer in [("SELECT INBOX", b"BAD Command not valid in this state"),
                        ("FETCH 1 FLAGS", b"BAD Command not valid in this state"),
                        ("IDLE", b"BAD Command not valid in this state"),
                        ("FROBNICATE", b"BAD unknown command FROBNICATE")]:
    tagged, _ = raw.command(command)
    check(tagged.endswith(answer), f"{command}: {tagged}")
raw.send(b"* NOOP\r\n")
check(raw.line().startswith(b"* BAD"), "an invalid tag")
# Before login a literal is at most 8 KiB, refused before it is sent (no "+").
raw.send(b"l1 LOGIN {9000}\r\n")
line = raw.line()
check(line.startswith(b"l1 BAD [TOOBIG]"), line)
raw.send(b"l2 LOGIN {99999999999999999999}\r\n")
check(raw.line().startswith(b"l2 BAD [TOOBIG]"), "an absurd literal")
# A line over the limit.
raw.send(b"l3 NOOP " + b"x" * 70000 + b"\r\n")
line = raw.line()
check(b"BAD" in line and (b"too long" in line or b"longer than" in line), line)
# Random bytes.
import random
rng = random.Random(7)
for _ in range(200):
    junk = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 300))).replace(b"\n", b" ").replace(b"{", b"(")
    raw.send(junk + b"\r\n")
    check(b"BAD" in raw.line(), "junk answered BAD")
raw.ok("NOOP")

raw.login(USER, PASSWORD)
tagged, _ = raw.command("LOGIN a b")
check(tagged.endswith(b"BAD Command not valid in this state"), tagged)
tagged, _ = raw.command("STARTTLS")
check(tagged.endswith(b"BAD Command not valid in this state"), tagged)
raw.ok("APPEND INBOX {20+}\r\nSubject: x\r\n\r\nbody\r\n")
raw.ok("SELECT INBOX")
# Invalid sequence sets.
for command in ["FETCH 0 FLAGS", "FETCH 1: FLAGS", "FETCH a FLAGS", "FETCH 1,,2 FLAGS"]:
    tagged, _ = raw.command(command)
    check(b" BAD " in tagged, f"{command}: {tagged}")
tagged, _ = raw.command("FETCH 2 FLAGS")
check(tagged.endswith(b"BAD Invalid message sequence number"), tagged)
tagged, _ = raw.command("STORE 1:5 +FLAGS (\\Seen)")
check(tagged.endswith(b"BAD Invalid message sequence number"), tagged)
# Nesting over the limit, and a SEARCH with 10,000 terms.
tagged, _ = raw.command("SEARCH " + "(" * 20 + "SEEN" + ")" * 20)
check(b"BAD [LIMIT]" in tagged, tagged)
tagged, _ = raw.command("SEARCH " + " ".join(["SEEN"] * 10000))
check(b"BAD [LIMIT]" in tagged, tagged)
# IDLE ended by something that is not DONE.
raw.send(b"i1 IDLE\r\n")
check(raw.line() == b"+ idling", "IDLE")
raw.send(b"NOOP\r\n")
check(raw.line() == b"i1 BAD Expected DONE to end IDLE", "not DONE")
# An unterminated literal swallows what follows as its data, then the rest is judged.
raw.send(b"u1 LOGIN {5}\r\n")
check(raw.line().startswith(b"+ "), "continuation")
raw.send(b"ab\r\nu2 NOOP\r\n")
line = raw.line()
check(line.startswith(b"u1 BAD"), f"the rest of the command: {line}")
raw.ok("NOOP")
items = fetch_items(raw.ok("FETCH 1 (UID)")[0])[1]
check(items["UID"] == 1, "the mailbox is intact")
# A client that stops in the middle of a literal is told BYE at the idle timeout.
raw.send(b"u3 APPEND INBOX {100}\r\n")
check(raw.line().startswith(b"+ "), "continuation")
raw.send(b"only part of it")
start = time.monotonic()
check(raw.line() == b"* BYE Autologout; idle for too long", "BYE in a literal")
check(time.monotonic() - start < 10, "the timeout came")

# A client that vanishes mid-literal leaves the server serving others.
gone = Raw(PORT)
gone.send(b"g1 LOGIN {10}\r\n")
gone.line()
gone.send(b"abc")
gone.close()
other = connect()
check(other.noop()[0] == "OK", "still serving")
other.logout()
print("ok")
"#
        ),
    );
}

/// A store that fails makes a command NO [UNAVAILABLE]; nothing half-done is
/// acknowledged, and the session goes on.
#[test]
fn store_failures_become_no_unavailable() {
    let node = node_with(Backend::Sqlite, "");
    run(
        &node,
        &format!(
            "{PRELUDE}{}",
            r#"
message = b"Subject: doomed\r\n\r\nthis message cannot be stored\r\n"
digest = hashlib.sha256(message).hexdigest()
# The blob would go to blobs/ab/cd/<sha256>: a file where the folder should be makes
# the write fail, as a full or broken disk would.
blobs = os.path.join(NODE, "data", "blobs")
os.makedirs(blobs, exist_ok=True)
with open(os.path.join(blobs, digest[:2]), "w") as f:
    f.write("in the way")
m = connect()
typ, data = m.append("INBOX", None, None, message)
check(typ == "NO" and data == [b"[UNAVAILABLE] Store unavailable, try again later"], (typ, data))
typ, data = m.status("INBOX", "(MESSAGES)")
check(b"MESSAGES 0" in data[0], f"nothing was stored: {data}")
check(m.append("INBOX", None, None, b"Subject: fine\r\n\r\nx\r\n")[0] == "OK", "other messages are stored")
m.logout()
print("ok")
"#
        ),
    );
}
