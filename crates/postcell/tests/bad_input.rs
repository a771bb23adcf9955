//! Bad input over raw sockets: every mistake gets its exact documented reply, the
//! session goes on where it should (or ends where it should), and afterwards the server
//! still takes and serves mail.

mod common;

use std::time::{Duration, Instant};

use common::{Node, NodeOptions, PASSWORD, Wire};

const ALICE: &str = "alice@example.test";
const GREETING: &str = "220 mail.example.test ESMTP Postcell";
const OK: &str = "250 2.0.0 OK";
const SENDER_OK: &str = "250 2.1.0 OK";
const RECIPIENT_OK: &str = "250 2.1.5 OK";
const START_DATA: &str = "354 End data with <CR><LF>.<CR><LF>";
const LINE_TOO_LONG: &str = "500 5.5.2 Line too long";
const BARE_LF: &str = "500 5.5.2 Bare LF not allowed; end lines with CRLF";
const NUL: &str = "500 5.5.2 NUL character not allowed";
const TOO_BIG: &str = "552 5.3.4 Message size exceeds fixed maximum message size";
const BARE_LF_IN_MESSAGE: &str =
    "554 5.6.0 Message contains bare LF or NUL; lines must end with CRLF";
const POP3_GREETING: &str = "+OK mail.example.test POP3 server ready";
const WRONG_STATE: &str = "-ERR Command not valid in this state";

/// The limits the tests run against: 64 KiB messages, 5 recipients, 10 errors.
const LIMITS: &str = "[smtp]\nmax_message_size = \"64K\"\nmax_recipients = 5\nmax_errors = 10\n";

/// A node with [`LIMITS`] (and `more` configuration) and the account alice.
fn node_with(more: &str) -> Node {
    let node = Node::start(NodeOptions {
        extra_config: format!("{LIMITS}{more}"),
        ..NodeOptions::default()
    });
    node.add_user(ALICE, None);
    node
}

/// An SMTP session past the greeting and EHLO.
fn smtp(node: &Node) -> Wire {
    let mut wire = Wire::connect(node.smtp);
    assert_eq!(wire.reply(), GREETING);
    let ehlo = wire.cmd("EHLO client.example.net");
    assert!(ehlo.starts_with("250-mail.example.test\n"), "{ehlo}");
    wire
}

fn ok_stored(reply: &str) {
    assert!(
        reply.starts_with("250 2.0.0 Ok: queued as "),
        "expected the message to be stored, got {reply:?}"
    );
}

/// Sends one complete transaction to alice on `wire`; returns the final reply.
fn transaction(wire: &mut Wire, text: &str) -> String {
    assert_eq!(wire.cmd("MAIL FROM:<sender@example.net>"), SENDER_OK);
    assert_eq!(wire.cmd(&format!("RCPT TO:<{ALICE}>")), RECIPIENT_OK);
    assert_eq!(wire.cmd("DATA"), START_DATA);
    wire.send(text.as_bytes());
    wire.send(b".\r\n");
    wire.reply()
}

/// A POP3 session logged in as alice with USER/PASS.
fn pop3_login(node: &Node) -> Wire {
    let mut wire = Wire::connect(node.pop3);
    assert_eq!(wire.line(), POP3_GREETING);
    assert_eq!(pop(&mut wire, &format!("USER {ALICE}")), "+OK Send PASS");
    let login = pop(&mut wire, &format!("PASS {PASSWORD}"));
    assert!(login.starts_with("+OK Logged in, maildrop has "), "{login}");
    wire
}

fn pop(wire: &mut Wire, command: &str) -> String {
    wire.send(format!("{command}\r\n").as_bytes());
    wire.line()
}

/// Every message in alice's maildrop, as text (unstuffed, CRLF line ends).
fn alice_messages(node: &Node) -> Vec<String> {
    let mut wire = pop3_login(node);
    let stat = pop(&mut wire, "STAT");
    let count: usize = stat
        .strip_prefix("+OK ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("STAT answered {stat:?}"));
    let mut messages = Vec::new();
    for n in 1..=count {
        let header = pop(&mut wire, &format!("RETR {n}"));
        assert!(
            header.starts_with("+OK ") && header.ends_with(" octets"),
            "{header}"
        );
        let mut text = String::new();
        loop {
            let line = wire.line();
            if line == "." {
                break;
            }
            text.push_str(line.strip_prefix('.').unwrap_or(&line));
            text.push_str("\r\n");
        }
        messages.push(text);
    }
    let bye = pop(&mut wire, "QUIT");
    assert!(
        bye.starts_with("+OK mail.example.test POP3 server signing off"),
        "{bye}"
    );
    messages
}

/// The server survived: a fresh SMTP session delivers a message and POP3 serves it.
fn still_serves(node: &Node) {
    let marker = format!("still alive {:?}", Instant::now());
    let mut wire = smtp(node);
    ok_stored(&transaction(
        &mut wire,
        &format!("Subject: check\r\n\r\n{marker}\r\n"),
    ));
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");
    let messages = alice_messages(node);
    assert!(
        messages.last().is_some_and(|m| m.contains(&marker)),
        "the message delivered after the bad input is not served back: {messages:?}"
    );
}

/// Standard base64 (RFC 4648) with padding, for SASL responses.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn plain_credentials() -> String {
    base64(format!("\0{ALICE}\0{PASSWORD}").as_bytes())
}

#[test]
fn base64_encodes_like_rfc_4648() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn smtp_overlong_command_lines_are_refused_and_the_session_continues() {
    let node = node_with("");
    let mut wire = smtp(&node);
    // 2,048 octets (the default max_line_length) are allowed, one more is not.
    let at_limit = format!("NOOP {}", "x".repeat(2048 - 5));
    assert_eq!(wire.cmd(&at_limit), OK);
    let over = format!("NOOP {}", "x".repeat(2048 - 4));
    assert_eq!(wire.cmd(&over), LINE_TOO_LONG);
    assert_eq!(wire.cmd("NOOP"), OK);
    // A megabyte in one line: one refusal, the session stays in step.
    let huge = format!("MAIL FROM:<{}@example.net>", "a".repeat(1 << 20));
    assert_eq!(wire.cmd(&huge), LINE_TOO_LONG);
    assert_eq!(wire.cmd("NOOP"), OK);
    // The refused MAIL started no transaction.
    ok_stored(&transaction(
        &mut wire,
        "Subject: after a long line\r\n\r\nhi\r\n",
    ));
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");
    assert_eq!(alice_messages(&node).len(), 1);
    still_serves(&node);
}

#[test]
fn smtp_bare_lf_and_nul_in_command_lines_are_refused() {
    let node = node_with("");
    let mut wire = smtp(&node);
    wire.send(b"NOOP\n");
    assert_eq!(wire.reply(), BARE_LF);
    wire.send(b"MAIL FROM:<sender@example.net>\n");
    assert_eq!(wire.reply(), BARE_LF);
    assert_eq!(wire.cmd("NOOP"), OK);
    wire.send(b"NO\0OP\r\n");
    assert_eq!(wire.reply(), NUL);
    wire.send(b"MAIL FROM:<sen\0der@example.net>\r\n");
    assert_eq!(wire.reply(), NUL);
    assert_eq!(wire.cmd("NOOP"), OK);
    // None of the refused MAIL commands started a transaction.
    assert_eq!(
        wire.cmd(&format!("RCPT TO:<{ALICE}>")),
        "503 5.5.1 Error: need MAIL command"
    );
    // In the message text, a NUL refuses the whole message; the session goes on.
    assert_eq!(
        transaction(&mut wire, "Subject: nul\r\n\r\na\0b\r\n"),
        BARE_LF_IN_MESSAGE
    );
    assert_eq!(wire.cmd("NOOP"), OK);
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");
    assert!(alice_messages(&node).is_empty());
    still_serves(&node);
}

#[test]
fn smtp_messages_over_the_size_limit_are_refused() {
    let node = node_with("");
    let mut wire = Wire::connect(node.smtp);
    assert_eq!(wire.reply(), GREETING);
    let ehlo = wire.cmd("EHLO client.example.net");
    assert!(ehlo.contains("\n250-SIZE 65536\n"), "{ehlo}");

    // Declared too big: refused at MAIL, and no transaction starts.
    assert_eq!(
        wire.cmd("MAIL FROM:<sender@example.net> SIZE=65537"),
        TOO_BIG
    );
    assert_eq!(
        wire.cmd(&format!("RCPT TO:<{ALICE}>")),
        "503 5.5.1 Error: need MAIL command"
    );
    // Declared at the limit but sent bigger: refused after the data.
    assert_eq!(
        wire.cmd("MAIL FROM:<sender@example.net> SIZE=65536"),
        SENDER_OK
    );
    assert_eq!(wire.cmd(&format!("RCPT TO:<{ALICE}>")), RECIPIENT_OK);
    assert_eq!(wire.cmd("DATA"), START_DATA);
    let line = format!("{}\r\n", "y".repeat(98));
    wire.send(b"Subject: too big\r\n\r\n");
    for _ in 0..700 {
        wire.send(line.as_bytes()); // 70,000 octets
    }
    wire.send(b".\r\n");
    assert_eq!(wire.reply(), TOO_BIG);
    assert_eq!(wire.cmd("NOOP"), OK);

    // Undeclared, and a single line longer than the whole limit.
    let huge_line = format!("Subject: one line\r\n\r\n{}\r\n", "z".repeat(100_000));
    assert_eq!(transaction(&mut wire, &huge_line), TOO_BIG);
    assert_eq!(wire.cmd("NOOP"), OK);

    // Just under the limit is fine.
    let mut fits = String::from("Subject: fits\r\n\r\n");
    while fits.len() + line.len() <= 64 * 1024 {
        fits.push_str(&line);
    }
    ok_stored(&transaction(&mut wire, &fits));
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");

    let messages = alice_messages(&node);
    assert_eq!(messages.len(), 1, "only the message that fits is stored");
    assert!(messages[0].ends_with(&fits));
    let log = node.cli_ok(&["log", "search", "--status", "rejected"]);
    assert_eq!(
        log.lines()
            .filter(|l| l.contains(&format!("\tto=<{ALICE}>\t"))
                && l.ends_with(&format!("\treply={TOO_BIG}")))
            .count(),
        2,
        "both refused messages are in the delivery log:\n{log}"
    );
    still_serves(&node);
}

#[test]
fn smtp_recipients_over_the_limit_get_452() {
    let node = node_with("");
    let mut wire = smtp(&node);
    assert_eq!(wire.cmd("MAIL FROM:<sender@example.net>"), SENDER_OK);
    for i in 1..=5 {
        assert_eq!(
            wire.cmd(&format!("RCPT TO:<alice+{i}@example.test>")),
            RECIPIENT_OK,
            "recipient {i}"
        );
    }
    for i in 6..=7 {
        assert_eq!(
            wire.cmd(&format!("RCPT TO:<alice+{i}@example.test>")),
            "452 4.5.3 Too many recipients",
            "recipient {i}"
        );
    }
    // The five accepted recipients still get the message (one account: one copy).
    assert_eq!(wire.cmd("DATA"), START_DATA);
    wire.send(b"Subject: five\r\n\r\nto five addresses\r\n.\r\n");
    ok_stored(&wire.reply());
    // 452 is no error toward max_errors, and the next transaction starts afresh.
    ok_stored(&transaction(&mut wire, "Subject: next\r\n\r\nnext\r\n"));
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");
    let messages = alice_messages(&node);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].ends_with("Subject: five\r\n\r\nto five addresses\r\n"));
    still_serves(&node);
}

#[test]
fn smtp_too_many_errors_close_the_connection() {
    let node = node_with("");
    let mut wire = smtp(&node);
    let bad: [(&str, &str); 9] = [
        ("XYZZY", "500 5.5.1 Command unrecognized"),
        (
            "MAIL FROM:bad",
            "501 5.5.4 Syntax: MAIL FROM:<reverse-path> [parameters]",
        ),
        (
            "RCPT TO:<alice@example.test>",
            "503 5.5.1 Error: need MAIL command",
        ),
        ("DATA", "503 5.5.1 Error: need MAIL command"),
        ("EXPN staff", "502 5.5.1 Command not implemented"),
        (
            "MAIL FROM:<not an address>",
            "501 5.1.7 Bad sender address syntax",
        ),
        ("HELO", "501 5.5.4 Syntax: HELO domain"),
        (
            "AUTH CRAM-MD5",
            "504 5.5.4 Unrecognized authentication mechanism",
        ),
        ("FOO", "500 5.5.1 Command unrecognized"),
    ];
    for (i, (command, expected)) in bad.iter().enumerate() {
        assert_eq!(wire.cmd(command), *expected, "bad command {}", i + 1);
        // Good commands in between do not reset the count.
        assert_eq!(wire.cmd("NOOP"), OK);
    }
    // The tenth error is answered, then the server says 421 and hangs up.
    assert_eq!(wire.cmd("BAR"), "500 5.5.1 Command unrecognized");
    assert_eq!(
        wire.reply(),
        "421 4.7.0 Too many errors, closing connection"
    );
    assert_eq!(wire.rest(), b"", "nothing after 421, then EOF");
    // Relay probing counts too.
    let mut wire = smtp(&node);
    assert_eq!(wire.cmd("MAIL FROM:<sender@example.net>"), SENDER_OK);
    for i in 1..=10 {
        assert_eq!(
            wire.cmd(&format!("RCPT TO:<user{i}@other.test>")),
            format!("554 5.7.1 <user{i}@other.test>: Relay access denied")
        );
    }
    assert_eq!(
        wire.reply(),
        "421 4.7.0 Too many errors, closing connection"
    );
    assert_eq!(wire.rest(), b"");
    still_serves(&node);
}

#[test]
fn smtp_idle_clients_are_told_421_and_disconnected() {
    let node = node_with("idle_timeout = \"2s\"\n");
    // Silent after the greeting.
    let mut wire = Wire::connect(node.smtp);
    assert_eq!(wire.reply(), GREETING);
    let started = Instant::now();
    assert_eq!(
        wire.reply(),
        "421 4.4.2 mail.example.test Idle timeout, closing connection"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "the idle timeout is 2 s, the server waited {waited:?}"
    );
    assert_eq!(wire.rest(), b"");

    // Silent in the middle of the message text: nothing is stored.
    let mut wire = smtp(&node);
    assert_eq!(wire.cmd("MAIL FROM:<sender@example.net>"), SENDER_OK);
    assert_eq!(wire.cmd(&format!("RCPT TO:<{ALICE}>")), RECIPIENT_OK);
    assert_eq!(wire.cmd("DATA"), START_DATA);
    wire.send(b"Subject: cut\r\n\r\nhalf a mess");
    assert_eq!(
        wire.reply(),
        "421 4.4.2 mail.example.test Idle timeout, closing connection"
    );
    assert_eq!(wire.rest(), b"");
    assert!(alice_messages(&node).is_empty());
    still_serves(&node);
}

#[test]
fn smtp_auth_with_invalid_base64_gets_501() {
    let node = node_with("");
    let mut wire = Wire::connect(node.smtp);
    assert_eq!(wire.reply(), GREETING);
    let ehlo = wire.cmd("EHLO client.example.net");
    assert!(
        ehlo.ends_with("\n250 AUTH PLAIN LOGIN") || ehlo.contains("\n250-AUTH PLAIN LOGIN\n"),
        "{ehlo}"
    );
    let invalid = "501 5.5.2 Invalid base64 data";
    assert_eq!(wire.cmd("AUTH PLAIN !!!!not-base64"), invalid);
    assert_eq!(wire.cmd("AUTH PLAIN"), "334 ");
    assert_eq!(wire.cmd("%%%%"), invalid);
    assert_eq!(wire.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6");
    assert_eq!(wire.cmd("@@@@"), invalid);
    assert_eq!(wire.cmd("NOOP"), OK);
    // Still not authenticated: no relaying.
    assert_eq!(wire.cmd("MAIL FROM:<alice@example.test>"), SENDER_OK);
    assert_eq!(
        wire.cmd("RCPT TO:<bob@other.test>"),
        "554 5.7.1 <bob@other.test>: Relay access denied"
    );
    assert_eq!(wire.cmd("RSET"), OK);
    // And a correct AUTH PLAIN still works on the same session.
    assert_eq!(
        wire.cmd(&format!("AUTH PLAIN {}", plain_credentials())),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");
    still_serves(&node);
}

#[test]
fn smtp_smuggling_a_second_message_is_not_possible() {
    let node = node_with("");
    let mut wire = smtp(&node);
    // Each "end" is one a lenient server might take for <CRLF>.<CRLF>; behind it, a
    // second transaction. Sent in one write with a NOOP after the real end: the server
    // must give exactly two replies (the message refused, the NOOP).
    for fake_end in ["\n.\n", "\r\n.\n", "\n.\r\n", "\r\n.\r"] {
        assert_eq!(wire.cmd("MAIL FROM:<sender@example.net>"), SENDER_OK);
        assert_eq!(wire.cmd(&format!("RCPT TO:<{ALICE}>")), RECIPIENT_OK);
        assert_eq!(wire.cmd("DATA"), START_DATA);
        let text = format!(
            "From: sender@example.net\r\nSubject: first\r\n\r\nfirst part{fake_end}\
             MAIL FROM:<evil@example.net>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n\
             From: ceo@example.test\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\nNOOP\r\n"
        );
        wire.send(text.as_bytes());
        let first = wire.reply();
        if fake_end == "\r\n.\r" {
            // A lone CR is no line end: this is a clean message whose text holds the
            // smuggled lines (as ordinary, harmless text).
            ok_stored(&first);
        } else {
            assert_eq!(first, BARE_LF_IN_MESSAGE, "fake end {fake_end:?}");
        }
        assert_eq!(wire.reply(), OK, "the NOOP after fake end {fake_end:?}");
        assert_eq!(wire.cmd("NOOP"), OK, "nothing else was pending");
    }
    assert_eq!(wire.cmd("QUIT"), "221 2.0.0 Bye");
    let messages = alice_messages(&node);
    assert_eq!(messages.len(), 1, "{messages:?}");
    // The one stored message is the first one, whole: its text holds the would-be
    // second envelope, and no separate "smuggled" message exists.
    assert!(
        messages[0].contains("Subject: first\r\n"),
        "{}",
        messages[0]
    );
    // (".\rMAIL FROM..." is a line with a leading dot: unstuffed like any other.)
    assert!(
        messages[0].contains("first part\r\n\rMAIL FROM:<evil@example.net>\r\n"),
        "{:?}",
        messages[0]
    );
    assert!(messages[0].ends_with("smuggled body\r\n"));
    still_serves(&node);
}

#[test]
fn pop3_commands_in_the_wrong_state_are_refused() {
    let node = node_with("");
    still_serves(&node); // alice has one message
    let mut wire = Wire::connect(node.pop3);
    assert_eq!(wire.line(), POP3_GREETING);
    for command in [
        "RETR 1", "STAT", "LIST", "UIDL", "DELE 1", "TOP 1 0", "NOOP", "RSET",
    ] {
        assert_eq!(
            pop(&mut wire, command),
            WRONG_STATE,
            "{command} before login"
        );
    }
    assert_eq!(pop(&mut wire, "PASS secret"), "-ERR Send USER first");
    assert_eq!(
        pop(&mut wire, "QUIT"),
        "+OK mail.example.test POP3 server signing off"
    );
    assert_eq!(wire.rest(), b"");

    let mut wire = pop3_login(&node);
    for command in [
        format!("USER {ALICE}"),
        format!("PASS {PASSWORD}"),
        format!("AUTH PLAIN {}", plain_credentials()),
        "STLS".to_owned(),
    ] {
        assert_eq!(
            pop(&mut wire, &command),
            WRONG_STATE,
            "{command} after login"
        );
    }
    let stat = pop(&mut wire, "STAT");
    assert!(stat.starts_with("+OK 1 "), "{stat}");
    assert_eq!(
        pop(&mut wire, "QUIT"),
        "+OK mail.example.test POP3 server signing off (0 messages deleted)"
    );
    // DELE before login deleted nothing.
    assert_eq!(alice_messages(&node).len(), 1);
    still_serves(&node);
}

#[test]
fn pop3_overlong_lines_are_refused_and_the_session_continues() {
    let node = node_with("");
    let mut wire = Wire::connect(node.pop3);
    assert_eq!(wire.line(), POP3_GREETING);
    // 512 octets are a command line; 513 are not.
    let name = "a".repeat(512 - 5);
    assert_eq!(pop(&mut wire, &format!("USER {name}")), "+OK Send PASS");
    let name = "a".repeat(512 - 4);
    assert_eq!(
        pop(&mut wire, &format!("USER {name}")),
        "-ERR Line too long"
    );
    assert_eq!(
        pop(&mut wire, &format!("USER {}", "b".repeat(1 << 20))),
        "-ERR Line too long"
    );
    assert_eq!(pop(&mut wire, "CAPA"), "+OK Capability list follows");
    while wire.line() != "." {}
    assert_eq!(pop(&mut wire, &format!("USER {ALICE}")), "+OK Send PASS");
    let login = pop(&mut wire, &format!("PASS {PASSWORD}"));
    assert!(
        login.starts_with("+OK Logged in, maildrop has 0 messages"),
        "{login}"
    );
    assert_eq!(
        pop(&mut wire, &format!("NOOP {}", "c".repeat(600))),
        "-ERR Line too long"
    );
    assert_eq!(pop(&mut wire, "NOOP"), "+OK");
    assert!(pop(&mut wire, "QUIT").starts_with("+OK "));
    still_serves(&node);
}

#[test]
fn pop3_auth_plain_with_invalid_base64_is_refused() {
    let node = node_with("");
    let mut wire = Wire::connect(node.pop3);
    assert_eq!(wire.line(), POP3_GREETING);
    let invalid = "-ERR [AUTH] Invalid base64 data";
    assert_eq!(pop(&mut wire, "AUTH PLAIN !!!!not-base64"), invalid);
    assert_eq!(pop(&mut wire, "AUTH PLAIN"), "+ ");
    assert_eq!(pop(&mut wire, "%%%%"), invalid);
    // Valid base64 of something that is not a PLAIN response.
    assert_eq!(
        pop(
            &mut wire,
            &format!("AUTH PLAIN {}", base64(b"no separators"))
        ),
        "-ERR [AUTH] Malformed PLAIN response"
    );
    let login = pop(&mut wire, &format!("AUTH PLAIN {}", plain_credentials()));
    assert_eq!(login, "+OK Logged in, maildrop has 0 messages (0 octets)");
    assert!(pop(&mut wire, "QUIT").starts_with("+OK "));
    still_serves(&node);
}

#[test]
fn pop3_too_many_errors_close_the_connection() {
    let node = node_with("");
    let mut wire = Wire::connect(node.pop3);
    assert_eq!(wire.line(), POP3_GREETING);
    for i in 1..=9 {
        assert_eq!(pop(&mut wire, "XYZZY"), "-ERR Unknown command", "error {i}");
    }
    assert_eq!(
        pop(&mut wire, "XYZZY"),
        "-ERR Too many errors, closing connection"
    );
    assert_eq!(wire.rest(), b"");
    still_serves(&node);
}
