//! Submission's refusals (RFC 6409, RFC 4954, RFC 8314) with Python's smtplib and a
//! raw socket, and the `mx` role's SPF/DKIM/DMARC verdicts with DNS answered from the
//! configuration.

mod common;

use std::time::{Duration, Instant};

use common::{Node, NodeOptions, PASSWORD, Wire, python};

const LIMITS: &str = "[auth]\nfailures_before_delay = 2\nfailure_delay = \"300ms\"\n\
    max_failure_delay = \"1s\"\nfailures_before_lockout = 4\nlockout = \"60s\"\n\n\
    [submission]\nloopback_plaintext = false\n";

#[test]
fn submission_refuses_plaintext_auth_foreign_senders_relaying_and_repeated_failures() {
    let node = Node::start(NodeOptions {
        extra_config: LIMITS.into(),
        ..NodeOptions::default()
    });
    node.add_user("alice@example.test", None);
    node.add_user("bob@example.test", None);

    // Without TLS (loopback plaintext is off here, as for any remote peer): AUTH is
    // not offered and refused, and nothing can be sent without it.
    let mut wire = Wire::connect(node.submission);
    assert!(wire.reply().starts_with("220 "));
    let ehlo = wire.cmd("EHLO client.example.test");
    assert!(ehlo.contains("250 STARTTLS"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "AUTH offered without TLS:\n{ehlo}");
    assert_eq!(
        wire.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQtcGFzc3dvcmQ="),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    assert_eq!(
        wire.cmd("MAIL FROM:<alice@example.test>"),
        "530 5.7.0 Authentication required"
    );
    wire.cmd("QUIT");

    // Over STARTTLS, authenticated: the envelope and the From: must be alice's.
    let out = python(
        r#"
import smtplib, ssl, sys
ctx = ssl._create_unverified_context()
def session():
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
    s.starttls(context=ctx)
    s.login("alice@example.test", sys.argv[2])
    return s
s = session()
print("foreign envelope", s.mail("mallory@example.test"))
s.rset()
print("own envelope", s.mail("alice@example.test"))
s.rcpt("bob@example.test")
code, text = s.data(b"From: Bob <bob@example.test>\r\nSubject: forged\r\n\r\nx\r\n")
print("foreign From", code, text.decode())
s.rset()
s.mail("alice+lists@example.test")
s.rcpt("bob@example.test")
code, text = s.data(b"From: Alice <alice@example.test>\r\nSubject: mine\r\n\r\nok\r\n")
print("own From", code)
s.quit()
"#,
        &[&node.submission.port().to_string(), PASSWORD],
    );
    assert_eq!(
        out,
        "foreign envelope (553, b'5.7.1 <mallory@example.test>: Sender address rejected: not owned by user alice@example.test')\n\
         own envelope (250, b'2.1.0 OK')\n\
         foreign From 553 5.7.1 From: header address not owned by the authenticated user\n\
         own From 250\n"
    );
    // The accepted message got a Message-ID and a Date.
    let stored = python(
        r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)
p.user("bob@example.test"); p.pass_(sys.argv[2])
text = b"\n".join(p.retr(1)[1]).decode()
print(p.stat()[0], "Message-ID: <" in text, "\nDate: " in text)
p.quit()
"#,
        &[&node.pop3.port().to_string(), PASSWORD],
    );
    assert_eq!(stored, "1 True True\n");

    // Unauthenticated relaying: refused on the mx port too.
    let mut mx = Wire::connect(node.smtp);
    mx.reply();
    mx.cmd("EHLO client.example.test");
    mx.cmd("MAIL FROM:<alice@example.test>");
    assert_eq!(
        mx.cmd("RCPT TO:<carol@remote.test>"),
        "554 5.7.1 <carol@remote.test>: Relay access denied"
    );
    mx.cmd("QUIT");

    // Wrong passwords: 535 each time, slowed down after two, then 454 for a while,
    // even with the right password.
    let out = python(
        r#"
import smtplib, ssl, sys, time
ctx = ssl._create_unverified_context()
for attempt, password in enumerate(["wrong1", "wrong2", "wrong3", "wrong4", sys.argv[2]]):
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
    s.starttls(context=ctx)
    s.ehlo()
    # One mechanism per attempt (login() would try PLAIN, then LOGIN).
    s.user, s.password = "alice@example.test", password
    started = time.monotonic()
    try:
        code, text = s.auth("PLAIN", s.auth_plain)
        result = "%d" % code
    except smtplib.SMTPAuthenticationError as e:
        result = "%d %s" % (e.smtp_code, e.smtp_error.decode())
    print(attempt + 1, result, int((time.monotonic() - started) * 1000))
    s.close()
"#,
        &[&node.submission.port().to_string(), PASSWORD],
    );
    let lines: Vec<(String, u64)> = out
        .lines()
        .map(|line| {
            let (reply, ms) = line.rsplit_once(' ').expect("reply and time");
            (reply.to_owned(), ms.parse().expect("milliseconds"))
        })
        .collect();
    let replies: Vec<&str> = lines.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        replies,
        [
            "1 535 5.7.8 Authentication credentials invalid",
            "2 535 5.7.8 Authentication credentials invalid",
            "3 535 5.7.8 Authentication credentials invalid",
            "4 535 5.7.8 Authentication credentials invalid",
            "5 454 4.7.0 Too many failed authentication attempts, try again later",
        ],
        "{}",
        node.log_text()
    );
    // The third and fourth answers were held back 300 ms and 600 ms (the server says
    // so in its log: timing the replies from here would measure the password hash).
    for delay in ["delay=300ms", "delay=600ms"] {
        assert!(
            node.log_text()
                .lines()
                .any(|l| l.contains("answer delayed") && l.contains(delay)),
            "no {delay} in the log:\n{}",
            node.log_text()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.log_text().contains("too many failed logins") {
        assert!(
            Instant::now() < deadline,
            "the lockout was not logged:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn submissions_with_implicit_tls_delivers_local_recipients_directly() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    node.add_user("bob@example.test", None);
    let out = python(
        r#"
import smtplib, ssl, sys
ctx = ssl._create_unverified_context()
with smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=30) as s:
    s.login("alice@example.test", sys.argv[2])
    print(s.sendmail("alice@example.test", ["bob@example.test"],
        b"From: alice@example.test\r\nMessage-ID: <keep@example.test>\r\nSubject: 465\r\n\r\nhi\r\n"))
"#,
        &[&node.submissions.port().to_string(), PASSWORD],
    );
    assert_eq!(out, "{}\n");
    let log = node.cli_ok(&["log", "search", "--address", "bob@example.test"]);
    assert!(
        log.contains("\tinbound\tdelivered\t") && log.contains("message-id=keep@example.test"),
        "{log}"
    );
    assert_eq!(
        node.cli_ok(&["queue", "list"]),
        "",
        "nothing queued for a local recipient"
    );
}

#[test]
fn mx_writes_spf_dkim_and_dmarc_verdicts_and_refuses_dmarc_reject_failures() {
    let (private_key, public_key) = postcell_smtp::dkim::generate_key().expect("key");
    let key = postcell_store::DkimKey {
        domain: "signed.example".into(),
        selector: "sel".into(),
        algorithm: postcell_smtp::dkim::ALGORITHM.into(),
        private_key,
        public_key,
        created_at: 0,
    };
    let (name, value) = postcell_smtp::dkim::dns_record(&key);
    let records = [
        "pass.example TXT v=spf1 ip4:127.0.0.1 -all".to_owned(),
        "_dmarc.pass.example TXT v=DMARC1; p=reject".to_owned(),
        "fail.example TXT v=spf1 ip4:192.0.2.1 -all".to_owned(),
        "_dmarc.fail.example TXT v=DMARC1; p=reject".to_owned(),
        "signed.example TXT v=spf1 -all".to_owned(),
        "_dmarc.signed.example TXT v=DMARC1; p=reject".to_owned(),
        format!("{name} TXT {value}"),
    ];
    let records: Vec<String> = records.iter().map(|r| format!("{r:?}")).collect();
    let node = Node::start(NodeOptions {
        extra_config: format!(
            "[mx]\nverify = true\nreject_dmarc_failures = true\n\n[dns]\nresolver = \"static\"\nrecords = [{}]\n",
            records.join(", ")
        ),
        ..NodeOptions::default()
    });
    node.add_user("bob@example.test", None);
    let signed_message = "From: Sam <sam@signed.example>\r\nTo: bob@example.test\r\nSubject: signed\r\n\r\nsigned body\r\n";
    let signature = postcell_smtp::dkim::sign(&key, signed_message.as_bytes()).expect("sign");
    let signed = format!("{signature}{signed_message}");
    let out = python(
        r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    s.ehlo("client.example")
    print("pass", s.sendmail("bob@pass.example", ["bob@example.test"],
        b"Authentication-Results: mail.example.test; dkim=pass header.d=forged.example\r\n"
        b"From: bob@pass.example\r\nSubject: spf\r\n\r\nhi\r\n"))
    try:
        s.sendmail("eve@fail.example", ["bob@example.test"],
            b"From: eve@fail.example\r\nSubject: forged\r\n\r\nhi\r\n")
    except smtplib.SMTPDataError as e:
        print("fail", e.smtp_code, e.smtp_error.decode())
    print("signed", s.sendmail("sam@signed.example", ["bob@example.test"], sys.argv[2].encode()))
"#,
        &[&node.smtp.port().to_string(), &signed],
    );
    assert_eq!(
        out,
        "pass {}\nfail 550 5.7.1 Message rejected: DMARC policy of the From: domain says reject\nsigned {}\n"
    );
    let stored = python(
        r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)
p.user("bob@example.test"); p.pass_(sys.argv[2])
for i in range(1, p.stat()[0] + 1):
    lines = p.retr(i)[1]
    header = []
    for line in lines:
        if not line:
            break
        header.append(line.decode())
    # Unfold the Authentication-Results field.
    text = "\n".join(header).replace("\n\t", " ").replace("\n ", " ")
    results = [l for l in text.split("\n") if l.startswith("Authentication-Results:")]
    print(len(results), results[0])
p.quit()
"#,
        &[&node.pop3.port().to_string(), PASSWORD],
    );
    let lines: Vec<&str> = stored.lines().collect();
    assert_eq!(lines.len(), 2, "{stored}");
    for (line, expected) in [
        (
            lines[0],
            &[
                "1 Authentication-Results: mail.example.test;",
                "spf=pass",
                "smtp.mailfrom=bob@pass.example",
                "dmarc=pass header.from=pass.example",
            ][..],
        ),
        (
            lines[1],
            &[
                "dkim=pass header.d=signed.example header.s=sel",
                "spf=fail",
                "dmarc=pass header.from=signed.example",
            ][..],
        ),
    ] {
        for part in expected {
            assert!(line.contains(part), "{part:?} missing in {line}");
        }
    }
    let rejected = node.cli_ok(&["log", "search", "--status", "rejected"]);
    assert!(
        rejected.contains("from=<eve@fail.example>") && rejected.contains("DMARC policy"),
        "{rejected}"
    );
}
