//! Real mail clients against a real node: Python's smtplib and poplib, swaks and
//! `openssl s_client`. What goes in over SMTP must come out over POP3 byte for byte,
//! behind the two trace headers Postcell adds (`Return-Path:` and `Received:`).
//!
//! The tools are installed by `scripts/test`; a missing one fails the test (never a
//! silent skip).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Node, NodeOptions, PASSWORD, fixture, python};
use postcell_testkit::expect_tool;

/// Python helpers put in front of every script of this file.
///
/// `raw_retr` reads RETR's answer on poplib's own connection, line by line as the octets
/// arrive. It is the most exact way to see what the server sends: `poplib.retr()`
/// strips every line end (CRLF, a bare LF or a bare CR alike) and would hide exactly the
/// differences these tests are about. Only the POP3 framing is undone: the terminating
/// `.` line and the dot-stuffing (RFC 1939 section 3). The octet count of the `+OK`
/// line is checked against the bytes received.
const PY_PRELUDE: &str = r#"
import email, poplib, re, smtplib, socket, ssl, sys
from email.header import decode_header, make_header

HOSTNAME = "mail.example.test"

def check(condition, message):
    if not condition:
        raise AssertionError(message)

def first_difference(a, b):
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return (f"lengths {len(a)} and {len(b)}; first difference at byte {n}:\n"
            f"  {a[max(0, n - 60):n + 60]!r}\n  {b[max(0, n - 60):n + 60]!r}")

def pop_login(port, user, password, host="127.0.0.1"):
    p = poplib.POP3(host, port, timeout=30)
    check(p.getwelcome() == b"+OK mail.example.test POP3 server ready", p.getwelcome())
    p.user(user)
    p.pass_(password)
    return p

def raw_retr(p, n):
    p.sock.sendall(b"RETR %d\r\n" % n)
    status = p.file.readline()
    check(re.fullmatch(rb"\+OK \d+ octets\r\n", status), f"RETR {n} answered {status!r}")
    octets = int(status.split()[1])
    data = bytearray()
    while True:
        line = p.file.readline()
        check(line.endswith(b"\r\n"), f"RETR {n}: a line without CRLF (or the end of the stream): {line!r}")
        if line == b".\r\n":
            break
        data += line[1:] if line.startswith(b".") else line
    check(len(data) == octets, f"RETR {n}: '+OK' announced {octets} octets, {len(data)} came")
    return bytes(data)

def check_trace(got, original, sender, helo, protocol, recipient):
    """got must be exactly 'Return-Path:' + one 'Received:' + original; returns the
    Received header, unfolded."""
    tail = got[len(got) - len(original):] if len(got) >= len(original) else got
    check(got.endswith(original),
          "the retrieved message does not end with the message as sent: "
          + first_difference(tail, original))
    trace = got[:len(got) - len(original)]
    return_path = b"Return-Path: <%s>\r\n" % sender.encode()
    check(trace.startswith(return_path), f"the trace does not start with {return_path!r}: {trace!r}")
    received = trace[len(return_path):]
    check(received.startswith(b"Received: ") and received.endswith(b"\r\n"),
          f"no Received header after Return-Path: {trace!r}")
    lines = received[:-2].split(b"\r\n")
    check(all(line[:1] in (b" ", b"\t") for line in lines[1:]),
          f"more than Return-Path and one Received were added: {trace!r}")
    unfolded = re.sub(r"\s+", " ", received.decode("ascii").replace("\r\n", ""))
    pattern = (rf"Received: from {re.escape(helo)} \(\[127\.0\.0\.1\]\) by mail\.example\.test "
               rf"\(Postcell\) with {protocol} id [0-9A-F]{{12}} for <{re.escape(recipient)}>; "
               r"\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}")
    check(re.fullmatch(pattern, unfolded), f"unexpected Received header: {unfolded!r}")
    return unfolded.strip()

def tls_context(cafile):
    # Trust exactly the node's self-signed certificate, and check the host name.
    context = ssl.create_default_context(cafile=cafile)
    check(context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED, "verifying context")
    return context
"#;

fn script(body: &str) -> String {
    format!("{PY_PRELUDE}\n{body}")
}

/// Sends `message` with swaks (`--data @FILE`) and returns swaks' transcript.
///
/// swaks always ends DATA by appending `CRLF .` to the text it was given (after
/// dot-stuffing it), so a file that already ends in CRLF would arrive with one more
/// empty line. The file it gets is therefore the message without its final CRLF, and
/// what arrives is exactly `message`.
fn swaks(node: &Node, message: &[u8], helo: &str, from: &str, to: &str, extra: &[&str]) -> String {
    let swaks = expect_tool("swaks");
    let text = message
        .strip_suffix(b"\r\n")
        .expect("test messages end in CRLF");
    let tokens = [
        "\\n",
        "%NEWLINE%",
        "%FROM_ADDRESS%",
        "%TO_ADDRESS%",
        "%MESSAGEID%",
        "%SWAKS_VERSION%",
        "%DATE%",
        "%NEW_HEADERS%",
        "%BODY%",
    ];
    for token in tokens {
        assert!(
            !text.windows(token.len()).any(|w| w == token.as_bytes()),
            "swaks would rewrite {token:?} in the data; keep it out of the message"
        );
    }
    let file = node.path(&format!("swaks-{}.eml", next_file_number()));
    std::fs::write(&file, text).expect("write the swaks data file");
    let out = Command::new(swaks)
        .args(["--server", &node.smtp.to_string(), "--helo", helo])
        .args(["--from", from, "--to", to])
        .arg("--data")
        .arg(format!("@{}", file.display()))
        .args(["--suppress-data", "--timeout", "30"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run swaks");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "swaks failed ({}):\n{transcript}",
        out.status
    );
    transcript
}

fn next_file_number() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn write_message(node: &Node, name: &str, message: &[u8]) -> String {
    let path = node.path(name);
    std::fs::write(&path, message).expect("write message file");
    path.display().to_string()
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

/// For smtplib: headers with a folded line, UTF-8 (sent with BODY=8BITMIME), lines that
/// are or start with a dot, a `From ` line, trailing white space, a tab, a 998-octet
/// line and empty lines at the end.
fn smtplib_message() -> Vec<u8> {
    let mut m = b"From: Bob <bob@example.net>\r\n\
        To: Alice <alice@example.test>\r\n\
        Subject: =?utf-8?q?caf=C3=A9?= and a folded\r\n \tsubject line\r\n\
        Message-ID: <smtplib-1@example.net>\r\n\
        X-Empty:\r\n\
        \r\n\
        .\r\n\
        ..two dots\r\n\
        . a dot and a space\r\n\
        From the start of a line\r\n\
        caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac 8-bit text\r\n\
        trailing white space \t \r\n\
        \tleading tab\r\n"
        .to_vec();
    m.extend(std::iter::repeat_n(b'x', 998));
    m.extend_from_slice(b"\r\n\r\n\r\n");
    m
}

/// For swaks: plain 7-bit text with dot lines (swaks stuffs them, the server unstuffs).
fn swaks_message() -> Vec<u8> {
    b"From: Carol <carol@example.net>\r\n\
      To: alice@example.test\r\n\
      Subject: sent with swaks\r\n\
      Message-ID: <swaks-1@example.net>\r\n\
      X-Folded: first part\r\n\tsecond part\r\n\
      \r\n\
      .hidden\r\n\
      .\r\n\
      ...\r\n\
      last line  \r\n"
        .to_vec()
}

#[test]
fn smtplib_and_swaks_deliver_and_poplib_reads_the_same_bytes_back() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let first = write_message(&node, "first.eml", &smtplib_message());
    let second = write_message(&node, "second.eml", &swaks_message());

    python(
        &script(
            r#"
smtp_port = int(sys.argv[1])
original = open(sys.argv[2], "rb").read()
with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="py.example.net", timeout=30) as s:
    refused = s.sendmail("bob@example.net", ["alice@example.test"], original,
                         mail_options=["BODY=8BITMIME"])
    check(refused == {}, f"refused: {refused}")
"#,
        ),
        &[&node.smtp.port().to_string(), &first],
    );
    let transcript = swaks(
        &node,
        &swaks_message(),
        "swaks.example.net",
        "carol@example.net",
        "alice@example.test",
        &[],
    );
    assert!(
        transcript.contains("<-  250 2.0.0 Ok: queued as "),
        "swaks was not told the message is queued:\n{transcript}"
    );

    let out = python(
        &script(
            r#"
pop_port, password = int(sys.argv[1]), sys.argv[2]
first, second = open(sys.argv[3], "rb").read(), open(sys.argv[4], "rb").read()
p = pop_login(pop_port, "alice@example.test", password)
count, total = p.stat()
check(count == 2, f"STAT says {count} messages, expected 2")
sizes = {}
for n, original, sender, helo in [(1, first, "bob@example.net", "py.example.net"),
                                  (2, second, "carol@example.net", "swaks.example.net")]:
    got = raw_retr(p, n)
    received = check_trace(got, original, sender, helo, "ESMTP", "alice@example.test")
    print(f"message {n}: {received}")
    # poplib's own view agrees once its line splitting is undone.
    resp, lines, octets = p.retr(n)
    check(b"\r\n".join(lines) + b"\r\n" == got, f"poplib.retr({n}) differs: "
          + first_difference(b"\r\n".join(lines) + b"\r\n", got))
    sizes[n] = len(got)
listing = p.list()[1]
check(listing == [b"1 %d" % sizes[1], b"2 %d" % sizes[2]], f"LIST: {listing}")
check(total == sizes[1] + sizes[2], f"STAT octets {total} != {sizes}")
check(p.quit() == b"+OK mail.example.test POP3 server signing off (0 messages deleted)", "QUIT")
print("ok")
"#,
        ),
        &[&node.pop3.port().to_string(), PASSWORD, &first, &second],
    );
    assert!(
        out.contains("message 1: Received: from py.example.net ([127.0.0.1]) by mail.example.test (Postcell) with ESMTP id ")
            && out.contains("message 2: Received: from swaks.example.net ([127.0.0.1]) by mail.example.test (Postcell) with ESMTP id ")
            && out.trim_end().ends_with("ok"),
        "{out}"
    );
}

#[test]
fn starttls_with_swaks_and_poplib_and_pop3s_with_openssl() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let cert = arg(&node.cert_path());
    let message = swaks_message();
    let transcript = swaks(
        &node,
        &message,
        "swaks.example.net",
        "carol@example.net",
        "alice@example.test",
        &[
            "-tls",
            "--tls-verify",
            "--tls-ca-path",
            &cert,
            "--tls-sni",
            "mail.example.test",
        ],
    );
    for expected in [
        " -> STARTTLS",
        "<-  220 2.0.0 Ready to start TLS",
        "=== TLS started with cipher TLSv1.3:",
        // After the handshake swaks marks the lines it sends and reads with `~`.
        " ~> EHLO swaks.example.net",
        "<~  250 2.0.0 Ok: queued as ",
    ] {
        assert!(
            transcript.contains(expected),
            "swaks transcript lacks {expected:?}:\n{transcript}"
        );
    }
    let original = write_message(&node, "tls.eml", &message);

    // POP3 with STLS. poplib takes the name to check from the host it connected to; the
    // connection goes to 127.0.0.1, and the name checked is the node's host name.
    let out = python(
        &script(
            r#"
pop_port, password, cafile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
original = open(sys.argv[4], "rb").read()
p = poplib.POP3("127.0.0.1", pop_port, timeout=30)
check("STLS" in p.capa(), "CAPA before STLS lacks STLS")
p.host = HOSTNAME
resp = p.stls(tls_context(cafile))
check(resp == b"+OK Begin TLS negotiation", f"STLS answered {resp!r}")
check(isinstance(p.sock, ssl.SSLSocket), "poplib did not switch to TLS")
cert = p.sock.getpeercert()
names = sorted(v for k, v in cert["subjectAltName"] if k == "DNS")
print("tls", p.sock.version(), "names", ",".join(names))
caps = p.capa()
check("STLS" not in caps and "USER" in caps, f"CAPA after STLS: {caps}")
p.user("alice@example.test")
resp = p.pass_(password)
check(resp == b"+OK Logged in, maildrop has 1 messages (%d octets)" % p.stat()[1], resp)
got = raw_retr(p, 1)
print(check_trace(got, original, "carol@example.net", "swaks.example.net", "ESMTPS", "alice@example.test"))
p.quit()
"#,
        ),
        &[&node.pop3.port().to_string(), PASSWORD, &cert, &original],
    );
    assert!(
        out.contains("tls TLSv1.3 names localhost,mail.example.test"),
        "{out}"
    );
    assert!(
        out.contains("with ESMTPS id "),
        "the Received header should say ESMTPS after STARTTLS:\n{out}"
    );

    // POP3S with openssl s_client: the handshake verifies against the node's
    // certificate and host name, then the POP3 greeting comes over TLS.
    let openssl = expect_tool("openssl");
    let mut child = Command::new(openssl)
        .args(["s_client", "-connect", &node.pop3s.to_string()])
        .args(["-servername", "mail.example.test"])
        .args([
            "-verify_hostname",
            "mail.example.test",
            "-verify_return_error",
        ])
        .args(["-CAfile", &cert, "-crlf", "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"QUIT\n").expect("write QUIT");
    }
    let out = wait_with_timeout(child, 30);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openssl s_client failed:\n{all}");
    for expected in [
        "+OK mail.example.test POP3 server ready",
        "+OK mail.example.test POP3 server signing off",
        "Verify return code: 0 (ok)",
    ] {
        assert!(
            all.contains(expected),
            "openssl s_client output lacks {expected:?}:\n{all}"
        );
    }
    assert!(
        all.lines()
            .any(|l| l.contains("Protocol") && l.contains("TLSv1.3")),
        "openssl s_client did not report TLSv1.3 as the protocol:\n{all}"
    );
}

fn wait_with_timeout(child: std::process::Child, seconds: u64) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(seconds)) {
        Ok(out) => out.expect("wait for the child"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("process {pid} did not finish within {seconds} s")
        }
    }
}

#[test]
fn iso_2022_jp_message_with_attachment_arrives_intact_with_swaks_and_smtplib() {
    let node = Node::start(NodeOptions::default());
    node.add_user("yamada@example.test", None);
    let path = fixture("fixtures/iso-2022-jp.eml");
    let message = std::fs::read(&path).expect("read the fixture");
    assert!(
        message.ends_with(b"\r\n") && !has_bare_lf(&message),
        "{} must have CRLF line ends (see fixtures/.gitattributes)",
        path.display()
    );
    let transcript = swaks(
        &node,
        &message,
        "swaks.example.net",
        "suzuki@example.net",
        "yamada@example.test",
        &[],
    );
    assert!(
        transcript.contains("<-  250 2.0.0 Ok: queued as "),
        "{transcript}"
    );
    let generator = fixture("fixtures/make_iso_2022_jp.py");
    let out = python(
        &script(
            r#"
smtp_port, pop_port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
original = open(sys.argv[4], "rb").read()
fx = {"__name__": "fixture"}
exec(open(sys.argv[5], encoding="utf-8").read(), fx)
with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="py.example.net", timeout=30) as s:
    check(s.sendmail("suzuki@example.net", ["yamada@example.test"], original) == {}, "refused")
p = pop_login(pop_port, "yamada@example.test", password)
check(p.stat()[0] == 2, f"STAT: {p.stat()}")
for n, helo in [(1, "swaks.example.net"), (2, "py.example.net")]:
    got = raw_retr(p, n)
    check_trace(got, original, "suzuki@example.net", helo, "ESMTP", "yamada@example.test")
    message = email.message_from_bytes(got)
    subject = str(make_header(decode_header(message["Subject"])))
    check(subject == fx["SUBJECT"], f"message {n}: subject {subject!r}")
    parts = message.get_payload()
    check(len(parts) == 2, f"message {n}: {len(parts)} parts")
    text, attachment = parts
    check(text.get_content_charset() == "iso-2022-jp", text.get_content_charset())
    body = text.get_payload(decode=True).decode("iso-2022-jp").replace("\r\n", "\n")
    check(body == fx["BODY"], f"message {n}: body {body!r}")
    check(attachment.get_filename() == fx["FILENAME"], f"message {n}: filename {attachment.get_filename()!r}")
    data = attachment.get_payload(decode=True)
    check(data == fx["attachment"](), f"message {n}: the attachment differs ({len(data)} bytes)")
    print(f"message {n}: {subject} | {attachment.get_filename()} | {len(data)} bytes")
p.quit()
"#,
        ),
        &[
            &node.smtp.port().to_string(),
            &node.pop3.port().to_string(),
            PASSWORD,
            &arg(&path),
            &arg(&generator),
        ],
    );
    for n in [1, 2] {
        assert!(
            out.contains(&format!(
                "message {n}: 会議の議事録と報告書の送付について | 報告書.bin | 3072 bytes"
            )),
            "{out}"
        );
    }
}

/// Whether the bytes hold a line feed without a carriage return before it.
fn has_bare_lf(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

#[test]
fn a_second_pop3_session_gets_in_use_and_deletions_take_effect_at_quit() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let out = python(
        &script(
            r#"
smtp_port, pop_port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
    for n in range(1, 5):
        body = (f"From: bob@example.net\r\nTo: alice@example.test\r\nSubject: number {n}\r\n"
                f"Message-ID: <m{n}@example.net>\r\n\r\nThis is message {n}.\r\n").encode()
        check(s.sendmail("bob@example.net", ["alice@example.test"], body) == {}, "refused")

first = pop_login(pop_port, "alice@example.test", password)
check(first.stat()[0] == 4, f"STAT: {first.stat()}")
second = poplib.POP3("127.0.0.1", pop_port, timeout=30)
second.user("alice@example.test")
try:
    second.pass_(password)
    raise AssertionError("a second session logged in while the first holds the maildrop")
except poplib.error_proto as e:
    print("second login:", e.args[0].decode())
check(first.dele(1) == b"+OK Message 1 deleted", "DELE 1")
check(first.dele(3) == b"+OK Message 3 deleted", "DELE 3")
print("quit:", first.quit().decode())
second.quit()

third = pop_login(pop_port, "alice@example.test", password)
count, octets = third.stat()
retrieved = 0
for n in range(1, count + 1):
    data = raw_retr(third, n)
    retrieved += len(data)
    lines = data.split(b"\r\n")
    ids = [l.decode() for l in lines if l.lower().startswith(b"message-id:")]
    print(f"message {n}:", ids[0], lines[-2].decode())
check(retrieved == octets, f"STAT says {octets} octets, the messages hold {retrieved}")
print("left:", count, retrieved)
third.quit()
"#,
        ),
        &[
            &node.smtp.port().to_string(),
            &node.pop3.port().to_string(),
            PASSWORD,
        ],
    );
    assert!(
        out.contains("second login: -ERR [IN-USE] Maildrop is locked by another session\n"),
        "{out}"
    );
    assert!(
        out.contains("quit: +OK mail.example.test POP3 server signing off (2 messages deleted)\n"),
        "{out}"
    );
    assert!(
        out.contains("message 1: Message-ID: <m2@example.net> This is message 2.\n")
            && out.contains("message 2: Message-ID: <m4@example.net> This is message 4.\n"),
        "after deleting 1 and 3 of 4, messages 2 and 4 should remain:\n{out}"
    );
    let left = out
        .lines()
        .find_map(|l| l.strip_prefix("left: "))
        .expect("left line");
    let (count, octets) = left.split_once(' ').expect("count and octets");
    assert_eq!(count, "2", "{out}");
    let show = node.cli_ok(&["user", "show", "alice@example.test"]);
    assert!(
        show.contains(&format!("used:      {octets} bytes\n")),
        "user show should report the {octets} bytes of the two remaining messages:\n{show}"
    );
    assert!(
        show.contains(&format!("mailbox:   INBOX (2 messages, {octets} bytes)")),
        "{show}"
    );
}

#[test]
fn pop3s_with_poplib_lists_unique_ids_and_tops_headers_only() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let cert = arg(&node.cert_path());
    let out = python(
        &script(
            r#"
smtp_port, pop3s_port, password, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
    for n in (1, 2):
        body = (f"From: bob@example.net\r\nSubject: top {n}\r\nMessage-ID: <t{n}@example.net>\r\n"
                f"\r\nBody line one of {n}.\r\n.Body line two.\r\n").encode()
        check(s.sendmail("bob@example.net", ["alice@example.test"], body) == {}, "refused")

def session():
    # The server's certificate names "localhost": connect by that name and check it.
    p = poplib.POP3_SSL("localhost", pop3s_port, context=tls_context(cafile), timeout=30)
    check(p.getwelcome() == b"+OK mail.example.test POP3 server ready", p.getwelcome())
    check(p.sock.version() == "TLSv1.3", p.sock.version())
    check("STLS" not in p.capa() and "USER" in p.capa(), f"CAPA on POP3S: {p.capa()}")
    p.user("alice@example.test")
    p.pass_(password)
    return p

p = session()
resp, listing, _ = p.uidl()
check(resp == b"+OK Unique-ID listing follows", resp)
uids = [line.split() for line in listing]
check([n for n, _ in uids] == [b"1", b"2"], f"UIDL: {listing}")
check(all(re.fullmatch(rb"\d+\.\d+", u) for _, u in uids) and uids[0][1] != uids[1][1], f"UIDL: {listing}")
check(p.uidl(2) == b"+OK 2 " + uids[1][1], f"UIDL 2: {p.uidl(2)}")
whole = raw_retr(p, 1)
header = whole.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
resp, lines, _ = p.top(1, 0)
check(resp == b"+OK Top of message follows", resp)
check(lines == header + [b""], f"TOP 1 0 should be the header and the blank line:\n{lines}\nvs\n{header}")
check(not any(b"Body line" in l for l in lines), "TOP 1 0 sent body lines")
resp, lines, _ = p.top(2, 1)
check(lines[-2:] == [b"", b"Body line one of 2."], f"TOP 2 1: {lines}")
print("uids", b" ".join(u for _, u in uids).decode())
print("top", len(lines))
p.quit()

# The ids are stable: a new session sees the same ones.
p = session()
again = [line.split() for line in p.uidl()[1]]
check(again == uids, f"UIDL changed between sessions: {uids} then {again}")
p.quit()
print("ok")
"#,
        ),
        &[
            &node.smtp.port().to_string(),
            &node.pop3s.port().to_string(),
            PASSWORD,
            &cert,
        ],
    );
    assert!(out.trim_end().ends_with("ok"), "{out}");
}

#[test]
fn plain_pop3_from_loopback_offers_stls_and_user_and_logs_in() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let out = python(
        &script(
            r#"
pop_port, password = int(sys.argv[1]), sys.argv[2]
p = poplib.POP3("127.0.0.1", pop_port, timeout=30)
caps = p.capa()
print("capa:", " ".join(sorted(caps)))
check("STLS" in caps, f"CAPA over plain TCP lacks STLS: {caps}")
check("USER" in caps, f"CAPA from loopback lacks USER: {caps}")
check(caps.get("SASL") == ["PLAIN"], f"SASL: {caps.get('SASL')}")
# Loopback may send the password in the clear.
check(p.user("alice@example.test") == b"+OK Send PASS", "USER")
resp = p.pass_(password)
print("pass:", resp.decode())
caps = p.capa()
check("USER" not in caps and "STLS" not in caps, f"CAPA after login: {caps}")
try:
    p._shortcmd("STLS")
    raise AssertionError("STLS accepted after login")
except poplib.error_proto as e:
    print("stls after login:", e.args[0].decode())
p.quit()
"#,
        ),
        &[&node.pop3.port().to_string(), PASSWORD],
    );
    assert!(
        out.contains(
            "capa: AUTH-RESP-CODE EXPIRE IMPLEMENTATION LOGIN-DELAY PIPELINING RESP-CODES SASL STLS TOP UIDL USER\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("pass: +OK Logged in, maildrop has 0 messages (0 octets)\n"),
        "{out}"
    );
    assert!(
        out.contains("stls after login: -ERR Command not valid in this state\n"),
        "{out}"
    );
}

/// A long-lived connection that carries many messages (a peer MTA, a load generator)
/// logs each message with its own sender and queue id: the transaction's fields live
/// in a span of the transaction, not of the session, where every message would add
/// one more copy to every later log line.
#[test]
fn many_messages_on_one_connection_keep_log_lines_short() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    python(
        &script(
            r#"
smtp_port = int(sys.argv[1])
with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="py.example.net", timeout=30) as s:
    for n in range(30):
        message = (f"From: bob@example.net\r\nTo: alice@example.test\r\n"
                   f"Subject: number {n}\r\nMessage-ID: <n{n}@example.net>\r\n\r\nBody {n}\r\n")
        refused = s.sendmail(f"bob{n}@example.net", ["alice@example.test"], message.encode())
        check(refused == {}, f"refused: {refused}")
"#,
        ),
        &[&node.smtp.port().to_string()],
    );
    let log = node.log_text();
    let accepted: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("message accepted"))
        .collect();
    assert_eq!(accepted.len(), 30, "one event per message:\n{log}");
    for (n, line) in accepted.iter().enumerate() {
        assert_eq!(
            line.matches("mail_from=").count(),
            1,
            "message {n}: the sender appears once in its line:\n{line}"
        );
        assert!(
            line.contains(&format!("mail_from=bob{n}@example.net")),
            "message {n} is logged with its own sender:\n{line}"
        );
        assert_eq!(
            line.matches("queue_id=").count(),
            2,
            "span and event:\n{line}"
        );
    }
}
