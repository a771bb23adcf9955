//! Postcell is not an open relay: an unauthenticated client cannot get mail for another
//! domain accepted, whatever address trick it tries, and nothing reaches the outbound
//! queue. Every refusal is in the delivery log.

mod common;

use common::{Node, NodeOptions, PASSWORD, Wire};

const ALICE: &str = "alice@example.test";

fn relay_denied(address: &str) -> String {
    format!("554 5.7.1 <{address}>: Relay access denied")
}

fn unknown_user(address: &str) -> String {
    format!("550 5.1.1 <{address}>: Recipient address rejected: User unknown")
}

const BAD_RECIPIENT: &str = "501 5.1.3 Bad recipient address syntax";
const RECIPIENT_OK: &str = "250 2.1.5 OK";

/// A new unauthenticated session, greeted, with `MAIL FROM:<sender>` accepted.
fn session(node: &Node, helo: &str, sender: &str) -> Wire {
    let mut wire = Wire::connect(node.smtp);
    assert_eq!(wire.reply(), "220 mail.example.test ESMTP Postcell");
    let greeting = wire.cmd(&format!("{helo} client.example.net"));
    assert!(greeting.starts_with("250"), "{helo}: {greeting}");
    assert_eq!(
        wire.cmd(&format!("MAIL FROM:<{sender}>")),
        "250 2.1.0 OK",
        "MAIL FROM:<{sender}>"
    );
    wire
}

/// One RCPT in its own session; returns the reply after checking the session is still
/// usable (RSET answers) and quitting.
fn probe(node: &Node, helo: &str, sender: &str, recipient: &str) -> String {
    let mut wire = session(node, helo, sender);
    let reply = wire.cmd(&format!("RCPT TO:<{recipient}>"));
    assert_eq!(
        wire.cmd("RSET"),
        "250 2.0.0 OK",
        "after RCPT TO:<{recipient}>"
    );
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");
    reply
}

/// How a recipient is refused; the address is the one the reply and the delivery log
/// name (normalised: domain in lower case, no trailing dot, no source route).
enum Refusal {
    Relay(&'static str),
    UnknownUser(&'static str),
    /// Not an address: refused before any lookup, and not logged.
    Syntax,
}

impl Refusal {
    fn reply(&self) -> String {
        match self {
            Refusal::Relay(address) => relay_denied(address),
            Refusal::UnknownUser(address) => unknown_user(address),
            Refusal::Syntax => BAD_RECIPIENT.to_owned(),
        }
    }

    fn logged_as(&self) -> Option<&'static str> {
        match self {
            Refusal::Relay(address) | Refusal::UnknownUser(address) => Some(address),
            Refusal::Syntax => None,
        }
    }
}

/// Every recipient an unauthenticated client tries, as written in `RCPT TO:<...>`.
fn relay_attempts() -> Vec<(&'static str, Refusal)> {
    use Refusal::*;
    vec![
        // Plainly another domain.
        ("user@other.test", Relay("user@other.test")),
        // The percent hack stays a local part of our domain: an unknown user, not relayed.
        (
            "user%other.test@example.test",
            UnknownUser("user%other.test@example.test"),
        ),
        // A quoted local part holding an @: a (nonexistent) local user.
        (
            "\"user@other.test\"@example.test",
            UnknownUser("\"user@other.test\"@example.test"),
        ),
        // A source route through us: the route is ignored, the final domain decides.
        ("@example.test:user@other.test", Relay("user@other.test")),
        (
            "@mail.example.test,@example.test:user@other.test",
            Relay("user@other.test"),
        ),
        // Two unquoted @: not an address at all.
        ("user@other.test@example.test", Syntax),
        // Address literals are never local, not even our own loopback.
        ("user@[127.0.0.1]", Relay("user@[127.0.0.1]")),
        ("user@[IPv6:::1]", Relay("user@[ipv6:::1]")),
        // A trailing dot, upper case: still the other domain.
        ("user@other.test.", Relay("user@other.test")),
        ("user@OTHER.TEST", Relay("user@other.test")),
        ("user@OTHER.test", Relay("user@other.test")),
        ("User@Other.Test.", Relay("User@other.test")),
        // Our domain as a prefix, a parent or a substring is not our domain.
        (
            "user@example.test.other.test",
            Relay("user@example.test.other.test"),
        ),
        ("user@sub.example.test", Relay("user@sub.example.test")),
        (
            "user@example.testother.test",
            Relay("user@example.testother.test"),
        ),
    ]
}

#[test]
fn unauthenticated_clients_cannot_relay() {
    let node = Node::start(NodeOptions::default());
    node.add_user(ALICE, None);

    let mut logged = Vec::new();
    for (recipient, refusal) in relay_attempts() {
        let expected = refusal.reply();
        // The same answer whatever the client's greeting and sender, including a forged
        // local sender and the null sender.
        for (helo, sender) in [
            ("EHLO", "spammer@other.test"),
            ("HELO", "spammer@other.test"),
            ("EHLO", ALICE),
            ("EHLO", ""),
        ] {
            let reply = probe(&node, helo, sender, recipient);
            assert_eq!(
                reply, expected,
                "RCPT TO:<{recipient}> after {helo}, MAIL FROM:<{sender}>"
            );
            if let Some(name) = refusal.logged_as() {
                logged.push((name, sender, expected.clone()));
            }
        }
    }

    // Our own domain, however it is written, is local: accepted.
    for recipient in [
        "alice@example.test.",
        "alice@EXAMPLE.TEST",
        "ALICE@Example.Test.",
        "@other.test:alice@example.test",
    ] {
        assert_eq!(
            probe(&node, "EHLO", "friend@other.test", recipient),
            RECIPIENT_OK,
            "RCPT TO:<{recipient}>"
        );
    }

    // A failed AUTH grants nothing.
    let mut wire = Wire::connect(node.smtp);
    wire.reply();
    assert!(
        wire.cmd("EHLO client.example.net")
            .contains("AUTH PLAIN LOGIN")
    );
    // "\0alice@example.test\0wrong"
    assert_eq!(
        wire.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw=="),
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(wire.cmd("MAIL FROM:<alice@example.test>"), "250 2.1.0 OK");
    assert_eq!(
        wire.cmd("RCPT TO:<user@other.test>"),
        relay_denied("user@other.test")
    );
    logged.push(("user@other.test", ALICE, relay_denied("user@other.test")));
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");

    // A transaction mixing a local and a remote recipient delivers the local copy only.
    let mut wire = session(&node, "EHLO", "friend@other.test");
    assert_eq!(wire.cmd("RCPT TO:<alice@example.test>"), RECIPIENT_OK);
    assert_eq!(
        wire.cmd("RCPT TO:<victim@other.test>"),
        relay_denied("victim@other.test")
    );
    logged.push((
        "victim@other.test",
        "friend@other.test",
        relay_denied("victim@other.test"),
    ));
    assert_eq!(wire.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    wire.send(b"Subject: mixed\r\nMessage-ID: <mixed@other.test>\r\n\r\nfor alice only\r\n.\r\n");
    let stored = wire.reply();
    assert!(stored.starts_with("250 2.0.0 Ok: queued as "), "{stored}");
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");

    // Nothing was queued for the relay, by any of it.
    let queue = node.cli_ok(&["queue", "list"]);
    assert_eq!(queue, "", "the outbound queue must be empty");
    let queued = node.cli_ok(&["log", "search", "--status", "queued"]);
    assert_eq!(queued, "", "nothing may be logged as queued");
    let status = node.cli_ok(&["status"]);
    let queued_count = status
        .lines()
        .find(|line| line.starts_with("queued"))
        .unwrap_or_else(|| panic!("no queued count in `status`:\n{status}"));
    assert_eq!(
        queued_count.split_whitespace().collect::<Vec<_>>(),
        ["queued", "0"],
        "{status}"
    );

    // Alice got the one message, once.
    let pop = common::python(
        r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=20)
p.user("alice@example.test"); p.pass_(sys.argv[2])
print(p.stat()[0])
print(b"\n".join(p.retr(1)[1]).decode())
p.quit()
"#,
        &[&node.pop3.port().to_string(), PASSWORD],
    );
    assert!(pop.starts_with("1\n"), "alice's maildrop:\n{pop}");
    assert!(pop.contains("for alice only"), "{pop}");

    // Every refusal is in the delivery log, with its reply.
    let log = node.cli_ok(&["log", "search", "--status", "rejected", "--limit", "1000"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.len(),
        logged.len(),
        "one rejected record per refused recipient:\n{log}"
    );
    for line in &lines {
        assert!(
            line.contains("\tinbound\trejected\t")
                && line.contains("\tremote=smtp from 127.0.0.1\t"),
            "{line}"
        );
    }
    for (recipient, sender, reply) in &logged {
        let wanted = format!("\tfrom=<{sender}>\tto=<{recipient}>\t");
        let reply_field = format!("\treply={reply}");
        let count = lines
            .iter()
            .filter(|line| line.contains(&wanted) && line.ends_with(&reply_field))
            .count();
        let expected = logged
            .iter()
            .filter(|(r, s, x)| r == recipient && s == sender && x == reply)
            .count();
        assert_eq!(
            count, expected,
            "log records for {recipient} from <{sender}> with `{reply}`:\n{log}"
        );
    }
}
