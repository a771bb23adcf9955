//! Submission and the outbound relay against real peers: swaks submits to Postcell,
//! a private Postfix (started by the test harness on loopback) is the remote MTA and
//! also relays into Postcell's `mx`; POP3 and IMAP clients read what arrived.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, DOMAIN, Node, NodeOptions, PASSWORD, python};
use postcell_smtp::dns::{Dns, ResolverMode};
use postcell_testkit::{PostfixOptions, TempPostfix};

const REMOTE: &str = TempPostfix::DOMAIN;

/// A fast retry schedule and a route to the Postfix at `port`, plus `more` TOML.
fn relay_section(routes: &str, more: &str) -> String {
    format!(
        "[relay]\nretry_initial = \"1s\"\nretry_max = \"2s\"\npoll_interval = \"200ms\"\n\
         lease_ttl = \"3s\"\nconnect_timeout = \"5s\"\n{more}\n{routes}\n"
    )
}

fn route_to(postfix: &TempPostfix) -> String {
    format!(
        "[relay.routes]\n\"{REMOTE}\" = \"127.0.0.1:{}\"\n",
        postfix.port()
    )
}

fn postfix(mailboxes: &[&str]) -> TempPostfix {
    TempPostfix::start(PostfixOptions {
        mailboxes: mailboxes.iter().map(|m| m.to_string()).collect(),
        ..PostfixOptions::default()
    })
    .expect("start postfix")
}

/// swaks over STARTTLS with AUTH PLAIN to the submission port; returns the transcript
/// and whether swaks succeeded.
fn swaks(
    node: &Node,
    user: &str,
    from: &str,
    to: &str,
    headers: &[&str],
    body: &str,
) -> (bool, String) {
    let swaks = postcell_testkit::expect_tool("swaks");
    let mut command = Command::new(swaks);
    command
        .args(["--server", &node.submission.to_string()])
        .args([
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            user,
            "--auth-password",
            PASSWORD,
        ])
        .args(["--from", from, "--to", to, "--helo", "client.example.test"])
        .args(["--body", body]);
    for header in headers {
        command.args(["--header", header]);
    }
    let out = command.output().expect("run swaks");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Polls the delivery log until `check` is satisfied by the lines for `address`.
fn wait_for_log(
    node: &Node,
    address: &str,
    what: &str,
    check: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let out = node.cli_ok(&["log", "search", "--address", address]);
        let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
        lines.reverse(); // oldest first
        if check(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: delivery log for {address} never matched:\n{}\n--- node log ---\n{}",
            lines.join("\n"),
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count(lines: &[String], direction_status: &str) -> usize {
    lines
        .iter()
        .filter(|l| l.contains(direction_status))
        .count()
}

/// The DNS record `dkim generate` printed, as a `NAME TXT VALUE` line.
fn dkim_record(generated: &str) -> String {
    let line = generated
        .lines()
        .find(|l| l.contains(" IN TXT "))
        .unwrap_or_else(|| panic!("no TXT record in {generated:?}"));
    let (name, rest) = line.split_once(". IN TXT ").expect("name");
    let value: String = rest
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, part)| part)
        .collect();
    format!("{name} TXT {value}")
}

async fn dkim_results(record: &str, message: &[u8]) -> Vec<mail_auth::DkimResult> {
    let dns = Dns::new(ResolverMode::Static, &[record.to_owned()]).expect("dns");
    let parsed = mail_auth::AuthenticatedMessage::parse(message).expect("parse");
    dns.authenticator()
        .verify_dkim(dns.parameters(&parsed))
        .await
        .iter()
        .map(|o| o.result().clone())
        .collect()
}

fn header_value(message: &[u8], name: &str) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse_headers(message)?;
    parsed.header_raw(name).map(|v| v.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn swaks_submits_over_starttls_and_postfix_receives_it_intact_and_dkim_signed() {
    let remote = postfix(&["carol"]);
    let node = Node::start(NodeOptions {
        extra_config: relay_section(&route_to(&remote), ""),
        ..NodeOptions::default()
    });
    node.add_user("alice@example.test", None);
    let generated = node.cli_ok(&["dkim", "generate", DOMAIN, "--selector", "s2026"]);
    assert!(generated.contains("RSA-2048"), "{generated}");
    let record = dkim_record(&generated);
    assert!(
        record.starts_with("s2026._domainkey.example.test TXT v=DKIM1; k=rsa; p=MII"),
        "{record}"
    );

    let body = "Hello Carol,\nthis line is long enough to be interesting and has = signs.\n.leading dot\nBye.";
    let (ok, transcript) = swaks(
        &node,
        "alice@example.test",
        "alice@example.test",
        &format!("carol@{REMOTE}"),
        &["Subject: relayed through Postcell", "X-Test: 1"],
        body,
    );
    assert!(ok, "swaks failed:\n{transcript}");
    assert!(
        transcript.contains("<~  250 2.0.0 Ok: queued as "),
        "not over TLS:\n{transcript}"
    );

    let messages = remote.wait_for_messages("carol", 1, Duration::from_secs(30));
    assert_eq!(
        messages.len(),
        1,
        "postfix log:\n{}\nnode log:\n{}",
        remote.log(),
        node.log_text()
    );
    let message = &messages[0];
    let text = String::from_utf8_lossy(message);
    // Intact: the body line by line, with the dot-stuffed line restored (Postfix
    // writes Maildir files with LF line ends).
    assert!(text.contains(body), "body changed:\n{text}");
    assert_eq!(
        header_value(message, "Subject").as_deref(),
        Some("relayed through Postcell")
    );
    assert_eq!(header_value(message, "X-Test").as_deref(), Some("1"));
    // Postfix writes the envelope sender as Return-Path; ours was stripped.
    assert_eq!(text.matches("Return-Path:").count(), 1, "{text}");
    assert_eq!(
        header_value(message, "Return-Path").as_deref(),
        Some("<alice@example.test>")
    );
    assert!(header_value(message, "Message-ID").is_some(), "{text}");
    assert!(text.contains("(Postcell) with ESMTPSA id "), "{text}");
    assert_eq!(
        dkim_results(&record, message).await,
        vec![mail_auth::DkimResult::Pass],
        "{text}"
    );

    let lines = wait_for_log(&node, &format!("carol@{REMOTE}"), "delivered", |l| {
        count(l, "\toutbound\tdelivered\t") == 1
    });
    let delivered = lines
        .iter()
        .find(|l| l.contains("\toutbound\tdelivered\t"))
        .unwrap();
    assert!(
        delivered.contains(&format!("remote=127.0.0.1[127.0.0.1]:{}", remote.port()))
            && delivered.contains("reply=250 2.0.0 Ok: queued as "),
        "{delivered}"
    );
    assert_eq!(node.cli_ok(&["queue", "list"]), "", "the queue is empty");
}

#[tokio::test(flavor = "multi_thread")]
async fn from_rewriting_shows_the_canonical_address_in_what_postfix_receives() {
    let remote = postfix(&["carol"]);
    let node = Node::start(NodeOptions {
        extra_config: relay_section(&route_to(&remote), ""),
        ..NodeOptions::default()
    });
    node.add_user("alice@example.test", None);
    node.cli_ok(&[
        "address",
        "add",
        "a.liddell@example.test",
        "alice@example.test",
    ]);
    let set = node.cli_ok(&["user", "set", "alice@example.test", "--rewrite-from", "on"]);
    assert!(set.contains("rewrite-from on"), "{set}");
    let (ok, transcript) = swaks(
        &node,
        "alice@example.test",
        "a.liddell@example.test",
        &format!("carol@{REMOTE}"),
        &[
            "From: Alice Liddell <a.liddell@example.test>",
            "Subject: rewritten",
        ],
        "Hi.",
    );
    assert!(ok, "{transcript}");
    let messages = remote.wait_for_messages("carol", 1, Duration::from_secs(30));
    assert_eq!(messages.len(), 1, "{}", node.log_text());
    let message = &messages[0];
    assert_eq!(
        header_value(message, "From").as_deref(),
        Some("Alice Liddell <alice@example.test>")
    );
    assert_eq!(
        header_value(message, "Return-Path").as_deref(),
        Some("<alice@example.test>")
    );
    assert!(!String::from_utf8_lossy(message).contains("a.liddell@"));
}

#[test]
fn a_remote_4xx_is_retried_and_delivered_once_with_each_attempt_logged() {
    let remote = postfix(&["flaky"]);
    remote
        .set_access(&format!("flaky@{REMOTE} 450 4.2.0 Try again later\n"))
        .expect("access map");
    let node = Node::start(NodeOptions {
        extra_config: relay_section(&route_to(&remote), ""),
        ..NodeOptions::default()
    });
    node.add_user("alice@example.test", None);
    let rcpt = format!("flaky@{REMOTE}");
    let (ok, transcript) = swaks(
        &node,
        "alice@example.test",
        "alice@example.test",
        &rcpt,
        &[],
        "retry me",
    );
    assert!(ok, "{transcript}");
    let lines = wait_for_log(&node, &rcpt, "two deferrals", |l| {
        count(l, "\toutbound\tdeferred\t") >= 2
    });
    let deferred = lines.iter().find(|l| l.contains("\tdeferred\t")).unwrap();
    assert!(
        deferred.contains(
            "reply=450 4.2.0 <flaky@remote.test>: Recipient address rejected: Try again later"
        ),
        "{deferred}"
    );
    let queue = node.cli_ok(&["queue", "list"]);
    assert!(
        queue.contains(&format!("to=<{rcpt}>")) && queue.contains("450 4.2.0"),
        "{queue}"
    );
    let id = queue.split('\t').next().unwrap().to_owned();
    let show = node.cli_ok(&["queue", "show", &id]);
    assert!(
        show.contains("log:") && show.contains("\tdeferred\t"),
        "{show}"
    );
    assert!(remote.messages("flaky").is_empty());

    remote.set_access("").expect("access map");
    let lines = wait_for_log(&node, &rcpt, "delivered", |l| {
        count(l, "\toutbound\tdelivered\t") == 1
    });
    let messages = remote.wait_for_messages("flaky", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2)); // time for a duplicate to show up
    assert_eq!(remote.messages("flaky").len(), 1, "delivered exactly once");
    assert!(String::from_utf8_lossy(&messages[0]).contains("retry me"));
    // Queued, deferred at least twice, delivered once, in that order.
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l.split('\t').nth(3).unwrap_or(""))
        .collect();
    assert_eq!(statuses.first(), Some(&"queued"), "{lines:?}");
    assert_eq!(statuses.last(), Some(&"delivered"), "{lines:?}");
    assert!(
        statuses[1..statuses.len() - 1]
            .iter()
            .all(|s| *s == "deferred"),
        "{lines:?}"
    );
    assert_eq!(node.cli_ok(&["queue", "list"]), "");
}

#[test]
fn a_remote_5xx_gives_the_sender_a_dsn_naming_the_recipient_and_the_reply() {
    let remote = postfix(&["carol"]);
    let node = Node::start(NodeOptions {
        extra_config: relay_section(&route_to(&remote), ""),
        ..NodeOptions::default()
    });
    node.add_user("alice@example.test", None);
    let rcpt = format!("nobody@{REMOTE}");
    let (ok, transcript) = swaks(
        &node,
        "alice@example.test",
        "alice@example.test",
        &rcpt,
        &["Subject: to nobody"],
        "lost",
    );
    assert!(ok, "{transcript}");
    let lines = wait_for_log(&node, &rcpt, "bounced", |l| {
        count(l, "\toutbound\tbounced\t") == 1
    });
    let bounced = lines.iter().find(|l| l.contains("\tbounced\t")).unwrap();
    assert!(bounced.contains("reply=550 5.1.1"), "{bounced}");
    // The DSN is in alice's INBOX: read it with POP3.
    let out = python(
        r#"
import poplib, sys, time
deadline = time.time() + 30
while True:
    p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)
    p.user("alice@example.test"); p.pass_(sys.argv[2])
    count, _ = p.stat()
    if count or time.time() > deadline:
        break
    p.quit(); time.sleep(0.3)
print(count)
if count:
    sys.stdout.write(b"\n".join(p.retr(1)[1]).decode("utf-8", "replace"))
p.quit()
"#,
        &[&node.pop3.port().to_string(), PASSWORD],
    );
    assert!(
        out.starts_with("1\n"),
        "one DSN expected:\n{out}\n{}",
        node.log_text()
    );
    for expected in [
        "Subject: Undelivered Mail Returned to Sender",
        "report-type=\"delivery-status\"",
        &format!("Final-Recipient: rfc822; {rcpt}"),
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1",
        "Subject: to nobody",
    ] {
        assert!(
            out.contains(expected),
            "{expected:?} missing in the DSN:\n{out}"
        );
    }
    assert!(
        out.contains("Return-Path: <>"),
        "a DSN has the null sender:\n{out}"
    );
    assert_eq!(node.cli_ok(&["queue", "list"]), "");
}

#[test]
fn the_fallback_relay_gets_the_message_when_the_relayhost_is_down() {
    let remote = postfix(&["carol"]);
    let closed = postcell_testkit::free_port();
    let node = Node::start(NodeOptions {
        extra_config: relay_section(
            "",
            &format!(
                "relayhost = \"[127.0.0.1]:{closed}\"\nfallback_relay = \"[127.0.0.1]:{}\"\n",
                remote.port()
            ),
        ),
        ..NodeOptions::default()
    });
    node.add_user("alice@example.test", None);
    let rcpt = format!("carol@{REMOTE}");
    let (ok, transcript) = swaks(
        &node,
        "alice@example.test",
        "alice@example.test",
        &rcpt,
        &[],
        "via fallback",
    );
    assert!(ok, "{transcript}");
    let messages = remote.wait_for_messages("carol", 1, Duration::from_secs(30));
    assert_eq!(messages.len(), 1, "{}", node.log_text());
    let lines = wait_for_log(&node, &rcpt, "delivered", |l| {
        count(l, "\tdelivered\t") == 1
    });
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("remote=127.0.0.1[127.0.0.1]:{}", remote.port()))),
        "{lines:?}"
    );
    assert!(
        node.log_text().contains(&format!("127.0.0.1:{closed}")),
        "the relayhost was tried first:\n{}",
        node.log_text()
    );
}

#[test]
fn postfix_relays_into_postcell_mx_and_pop3_and_imap_see_it() {
    let node = Node::start(NodeOptions::default());
    node.add_user("bob@example.test", None);
    let remote = TempPostfix::start(PostfixOptions {
        relayhost: Some(format!("[127.0.0.1]:{}", node.smtp.port())),
        ..PostfixOptions::default()
    })
    .expect("postfix");
    python(
        r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    s.sendmail("dave@remote.test", ["bob@example.test"],
        b"From: dave@remote.test\r\nTo: bob@example.test\r\nSubject: through postfix\r\n\r\nHi Bob.\r\n")
"#,
        &[&remote.port().to_string()],
    );
    let out = python(
        r#"
import imaplib, poplib, sys, time
deadline = time.time() + 30
while True:
    p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)
    p.user("bob@example.test"); p.pass_(sys.argv[3])
    count, _ = p.stat()
    if count or time.time() > deadline:
        break
    p.quit(); time.sleep(0.3)
text = b"\n".join(p.retr(1)[1]).decode() if count else ""
p.quit()
print("pop3", count, "through postfix" in text, "Hi Bob." in text)
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[2]))
m.login("bob@example.test", sys.argv[3])
m.select("INBOX")
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("imap", data[0][1].decode().strip())
m.logout()
"#,
        &[
            &node.pop3.port().to_string(),
            &node.imap.port().to_string(),
            PASSWORD,
        ],
    );
    assert_eq!(
        out,
        "pop3 1 True True\nimap Subject: through postfix\n",
        "postfix log:\n{}\nnode log:\n{}",
        remote.log(),
        node.log_text()
    );
}

/// Node B on node A's store (the same SQLite folder, or the same PostgreSQL database)
/// under another node id.
fn second_node(a: &Node, backend: Backend, extra: &str) -> Node {
    let b = Node::create(NodeOptions {
        backend: Backend::Sqlite,
        extra_config: extra.to_owned(),
    });
    let a_config = std::fs::read_to_string(&a.config).expect("config of A");
    let store: String = a_config
        .split("[store]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("store section")
        .to_owned();
    let store = match backend {
        // Relative paths of A's folder, made absolute.
        Backend::Sqlite => format!(
            "backend = \"sqlite\"\npath = \"{}\"\nblob_dir = \"{}\"\n",
            a.path("data/postcell.db").display(),
            a.path("data/blobs").display()
        ),
        Backend::Postgres => store,
    };
    let b_config = std::fs::read_to_string(&b.config).expect("config of B");
    let before = b_config.split("[store]\n").next().unwrap();
    let after = b_config.split("[store]\n").nth(1).unwrap();
    let after = &after[after.find("\n[").unwrap() + 1..];
    let text = format!("{before}[store]\n{store}\n{after}")
        .replace("id = \"test-node\"", "id = \"node-b\"");
    std::fs::write(&b.config, text).expect("write config of B");
    b
}

fn lease_takeover(backend: Backend) {
    // Postfix answers DATA only after 6 s: node A is killed while it waits.
    let remote = TempPostfix::start(PostfixOptions {
        mailboxes: vec!["carol".into()],
        data_delay: Some(6),
        ..PostfixOptions::default()
    })
    .expect("postfix");
    let relay = relay_section(&route_to(&remote), "command_timeout = \"30s\"\n");
    let mut a = Node::start(NodeOptions {
        backend,
        extra_config: relay.clone(),
    });
    a.add_user("alice@example.test", None);
    let rcpt = format!("carol@{REMOTE}");
    let (ok, transcript) = swaks(
        &a,
        "alice@example.test",
        "alice@example.test",
        &rcpt,
        &[],
        "exactly once",
    );
    assert!(ok, "{transcript}");
    // Wait until A holds the lease and is inside the SMTP transaction.
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let queue = a.cli_ok(&["queue", "list"]);
        if let Some(id) = queue.split('\t').next().filter(|id| !id.is_empty()) {
            let show = a.cli_ok(&["queue", "show", id.trim()]);
            if show.contains("being sent:  by test-node/") {
                break id.trim().to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "A never claimed the entry:\n{}",
            a.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(1500)); // A is waiting for the DATA reply
    a.kill();
    let killed_at = Instant::now();
    let mut b = second_node(&a, backend, &relay);
    b.spawn();
    let lines = wait_for_log(&b, &rcpt, "delivered by B", |l| {
        count(l, "\toutbound\tdelivered\t") >= 1
    });
    let delivered: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\tdelivered\t"))
        .collect();
    assert_eq!(delivered.len(), 1, "{lines:?}");
    assert!(
        delivered[0].contains("\tnode-b\t"),
        "B delivered it: {lines:?}"
    );
    // Not before A's lease (3 s) ran out.
    assert!(
        killed_at.elapsed() >= Duration::from_secs(1),
        "taken over too early"
    );
    let messages = remote.wait_for_messages("carol", 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(8)); // any copy from A's connection would be in by now
    let messages_now = remote.messages("carol");
    // A was killed before the remote's 250 (it was waiting for the DATA reply), so
    // the message must be there exactly once.
    assert_eq!(
        messages_now.len(),
        1,
        "exactly once; postfix log:\n{}\nA:\n{}\nB:\n{}",
        remote.log(),
        a.log_text(),
        b.log_text()
    );
    assert!(String::from_utf8_lossy(&messages[0]).contains("exactly once"));
    assert!(
        b.cli(&["queue", "show", &id]).status.code() != Some(0),
        "the entry is gone"
    );
}

#[test]
fn a_killed_relay_worker_is_taken_over_after_its_lease_expires_on_sqlite() {
    lease_takeover(Backend::Sqlite);
}

#[test]
fn a_killed_relay_worker_is_taken_over_after_its_lease_expires_on_postgres() {
    lease_takeover(Backend::Postgres);
}

#[test]
fn forwarding_sends_local_and_remote_copies_with_srs() {
    let remote = postfix(&["carol"]);
    let node = Node::start(NodeOptions {
        extra_config: format!(
            "{}\n[srs]\nsecret = \"test secret\"\ndomain = \"{DOMAIN}\"\n",
            relay_section(&route_to(&remote), "")
        ),
        ..NodeOptions::default()
    });
    node.add_user("alice@example.test", None);
    node.add_user("bob@example.test", None);
    let out = node.cli_ok(&[
        "user",
        "forward",
        "add",
        "alice@example.test",
        "bob@example.test",
        &format!("carol@{REMOTE}"),
    ]);
    assert!(
        out.contains("forwards to bob@example.test, carol@remote.test"),
        "{out}"
    );
    node.cli_ok(&[
        "user",
        "set",
        "alice@example.test",
        "--forward-keep-copy",
        "off",
    ]);
    let show = node.cli_ok(&["user", "show", "alice@example.test"]);
    assert!(show.contains("(no copy kept)"), "{show}");
    python(
        r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    s.sendmail("dave@elsewhere.example", ["alice@example.test"],
        b"From: dave@elsewhere.example\r\nSubject: forward me\r\n\r\nHi.\r\n")
"#,
        &[&node.smtp.port().to_string()],
    );
    let messages = remote.wait_for_messages("carol", 1, Duration::from_secs(30));
    assert_eq!(messages.len(), 1, "{}", node.log_text());
    let return_path = header_value(&messages[0], "Return-Path").unwrap_or_default();
    assert!(
        return_path.starts_with("<SRS0=")
            && return_path.ends_with("=elsewhere.example=dave@example.test>"),
        "{return_path}"
    );
    let counts = python(
        r#"
import poplib, sys
for user in ["alice@example.test", "bob@example.test"]:
    p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)
    p.user(user); p.pass_(sys.argv[2])
    print(user, p.stat()[0])
    p.quit()
"#,
        &[&node.pop3.port().to_string(), PASSWORD],
    );
    assert_eq!(counts, "alice@example.test 0\nbob@example.test 1\n");
    // A bounce to the SRS address is accepted and goes back to the original sender.
    let srs_local = return_path.trim_matches(['<', '>']).to_owned();
    let reply = python(
        r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    s.ehlo("mx.remote.test")
    s.mail("")
    print(s.rcpt(sys.argv[2])[0], s.rcpt("SRS0=xxxx=AA=elsewhere.example=dave@example.test")[0])
"#,
        &[&node.smtp.port().to_string(), &srs_local],
    );
    assert_eq!(reply, "250 550\n", "a forged SRS address is unknown");
}

#[test]
fn messages_to_one_host_share_one_connection() {
    let remote = postfix(&["carol", "dave"]);
    // Queue three messages while the relay is off, then let it find them all at once.
    let mut node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    python(
        r#"
import smtplib, ssl, sys
ctx = ssl._create_unverified_context()
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    s.starttls(context=ctx)
    s.login("alice@example.test", sys.argv[2])
    for i, to in enumerate(["carol@remote.test", "dave@remote.test", "carol@remote.test"]):
        s.sendmail("alice@example.test", [to],
            b"From: alice@example.test\r\nSubject: batch %d\r\n\r\nx\r\n" % i)
"#,
        &[&node.submission.port().to_string(), PASSWORD],
    );
    assert_eq!(node.cli_ok(&["queue", "list"]).lines().count(), 3);
    assert!(node.terminate().success());
    let config = std::fs::read_to_string(&node.config).expect("config");
    let config = config.replace(
        "[relay]\nenabled = false\n",
        &relay_section(&route_to(&remote), "per_destination = 1\n"),
    );
    std::fs::write(&node.config, config).expect("config");
    node.spawn();
    let carol = remote.wait_for_messages("carol", 2, Duration::from_secs(30));
    let dave = remote.wait_for_messages("dave", 1, Duration::from_secs(30));
    assert_eq!((carol.len(), dave.len()), (2, 1), "{}", node.log_text());
    // Sessions that sent commands (the harness's port probe sent none), counted once
    // Postcell has said QUIT.
    let sessions = |log: &str| {
        log.lines()
            .filter(|l| l.contains("postfix/smtpd") && l.contains("disconnect from"))
            .filter(|l| !l.contains("commands=0/0"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while sessions(&remote.log()) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        sessions(&remote.log()),
        1,
        "one connection for three messages:\n{}",
        remote.log()
    );
}
