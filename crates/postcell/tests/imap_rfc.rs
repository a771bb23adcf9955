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
