//! The PROXY protocol on real listeners: the session, the `Received:` header, the
//! delivery log and the plaintext-password rule all see the client address from the
//! header; a connection without a valid header, too slow with it, or from a proxy that
//! is not trusted is closed without a greeting.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Node, NodeOptions, PASSWORD};

/// A node whose SMTP and POP3 listeners take PROXY headers from 127.0.0.1, and whose
/// POP3S listener takes them only from 10.0.0.0/8 (so loopback is untrusted there).
fn proxied_node() -> Node {
    let mut node = Node::create(NodeOptions::default());
    let text = std::fs::read_to_string(&node.config).unwrap();
    let table = |addr: SocketAddr, trusted: &str| {
        format!(
            "{{ address = \"{addr}\", proxy_protocol = true, trusted_proxies = [\"{trusted}\"], proxy_timeout = \"1s\" }}"
        )
    };
    let text = text
        .replace(
            &format!("smtp = \"{}\"", node.smtp),
            &format!("smtp = {}", table(node.smtp, "127.0.0.1")),
        )
        .replace(
            &format!("pop3 = \"{}\"", node.pop3),
            &format!("pop3 = {}", table(node.pop3, "127.0.0.0/8")),
        )
        .replace(
            &format!("pop3s = \"{}\"", node.pop3s),
            &format!("pop3s = {}", table(node.pop3s, "10.0.0.0/8")),
        );
    std::fs::write(&node.config, text).unwrap();
    node.spawn();
    node.add_user("alice@example.test", None);
    node
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    BufReader::new(stream)
}

fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

fn send(reader: &mut BufReader<TcpStream>, bytes: &[u8]) {
    reader.get_mut().write_all(bytes).unwrap();
}

/// Reads until the server closes; what came before.
fn until_closed(reader: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) => rest,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => rest,
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
}

fn v2_header(command: u8, source: [u8; 4], source_port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.push(0x20 | command);
    header.push(0x11);
    let mut payload = source.to_vec();
    payload.extend_from_slice(&[127, 0, 0, 1]);
    payload.extend_from_slice(&source_port.to_be_bytes());
    payload.extend_from_slice(&110u16.to_be_bytes());
    // A TLV, as HAProxy adds them (PP2_TYPE_AUTHORITY).
    payload.extend_from_slice(&[0x02, 0x00, 0x04]);
    payload.extend_from_slice(b"mail");
    header.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    header.extend_from_slice(&payload);
    header
}

fn smtp_cmd(reader: &mut BufReader<TcpStream>, command: &str) -> String {
    send(reader, format!("{command}\r\n").as_bytes());
    let mut lines = vec![line(reader)];
    while lines.last().unwrap().as_bytes().get(3) == Some(&b'-') {
        lines.push(line(reader));
    }
    lines.join("\n")
}

#[test]
fn the_client_address_comes_from_the_header() {
    let node = proxied_node();
    // SMTP with a v1 header for a client on the internet.
    let mut smtp = connect(node.smtp);
    send(&mut smtp, b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 25\r\n");
    assert!(line(&mut smtp).starts_with("220 "));
    let ehlo = smtp_cmd(&mut smtp, "EHLO client.example.net");
    assert!(ehlo.starts_with("250"), "{ehlo}");
    // Not loopback, not TLS: no passwords in the clear.
    assert!(
        !ehlo.contains("AUTH"),
        "AUTH offered to a remote client: {ehlo}"
    );
    for (command, code) in [
        ("MAIL FROM:<bob@example.net>", "250"),
        ("RCPT TO:<alice@example.test>", "250"),
        ("DATA", "354"),
    ] {
        let reply = smtp_cmd(&mut smtp, command);
        assert!(reply.starts_with(code), "{command}: {reply}");
    }
    let reply = smtp_cmd(&mut smtp, "Subject: proxied\r\n\r\nHello.\r\n.");
    assert!(reply.starts_with("250 "), "{reply}");
    smtp_cmd(&mut smtp, "QUIT");
    let log = node.cli_ok(&["log", "search", "--address", "alice@example.test"]);
    assert!(log.contains("\tremote=smtp from 203.0.113.7\t"), "{log}");

    // POP3 with a v2 header for a remote client: USER is refused.
    let mut pop = connect(node.pop3);
    send(&mut pop, &v2_header(1, [198, 51, 100, 4], 40000));
    assert!(line(&mut pop).starts_with("+OK"));
    send(&mut pop, b"USER alice@example.test\r\n");
    let refused = line(&mut pop);
    assert!(refused.starts_with("-ERR"), "{refused}");

    // A v2 LOCAL header (the proxy's own health check) keeps the real, loopback
    // address: the login works, and the stored message names the proxied client.
    let mut pop = connect(node.pop3);
    send(&mut pop, &v2_header(0, [198, 51, 100, 4], 40000));
    assert!(line(&mut pop).starts_with("+OK"));
    send(&mut pop, b"USER alice@example.test\r\n");
    assert!(line(&mut pop).starts_with("+OK"));
    send(&mut pop, format!("PASS {PASSWORD}\r\n").as_bytes());
    assert!(line(&mut pop).starts_with("+OK"));
    send(&mut pop, b"RETR 1\r\n");
    assert!(line(&mut pop).starts_with("+OK"));
    let mut message = String::new();
    loop {
        let l = line(&mut pop);
        if l == "." {
            break;
        }
        message.push_str(&l);
        message.push('\n');
    }
    assert!(message.contains("([203.0.113.7])"), "{message}");
    send(&mut pop, b"QUIT\r\n");
}

#[test]
fn connections_without_a_good_header_or_from_elsewhere_are_closed() {
    let node = proxied_node();
    // No header: the client speaks first, as a direct client would.
    let mut direct = connect(node.smtp);
    send(&mut direct, b"EHLO client.example.net\r\n");
    assert_eq!(
        until_closed(&mut direct),
        b"",
        "a greeting without a header"
    );

    // A header that breaks off, then nothing: closed after proxy_timeout (1 s).
    let mut slow = connect(node.smtp);
    send(&mut slow, b"PROXY TCP4 203.0.113.7 ");
    let started = Instant::now();
    assert_eq!(until_closed(&mut slow), b"");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(10),
        "{waited:?}"
    );

    // Too long, malformed v2, truncated.
    let mut long = connect(node.smtp);
    send(
        &mut long,
        format!("PROXY TCP4 {}\r\n", "9".repeat(150)).as_bytes(),
    );
    assert_eq!(until_closed(&mut long), b"");
    let mut bad = connect(node.pop3);
    let mut header = v2_header(1, [198, 51, 100, 4], 1);
    header[12] = 0x2f; // no such command
    send(&mut bad, &header);
    assert_eq!(until_closed(&mut bad), b"");
    let mut cut = connect(node.pop3);
    let header = v2_header(1, [198, 51, 100, 4], 1);
    send(&mut cut, &header[..20]);
    cut.get_mut().shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(until_closed(&mut cut), b"");

    // A perfectly good header from a source the listener does not trust.
    let mut untrusted = connect(node.pop3s);
    send(
        &mut untrusted,
        b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 995\r\n",
    );
    assert_eq!(until_closed(&mut untrusted), b"");

    // Each refusal is counted by reason.
    let metrics = postcell_testkit::cell::http_get(node.http, "/metrics")
        .unwrap()
        .1;
    for reason in [
        "signature",
        "timeout",
        "too_long",
        "invalid",
        "truncated",
        "untrusted",
    ] {
        assert!(
            metrics.contains(&format!("reason=\"{reason}\"")),
            "no {reason} refusal counted:\n{metrics}"
        );
    }
}
