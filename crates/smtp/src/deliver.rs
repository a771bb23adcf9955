//! The delivery pipeline: trace headers in front of the message text, the blob
//! written, then one store transaction for every target. The caller says 250 only
//! when this returns `Done`: the message is committed (DESIGN rules 1 and 3).

use std::net::IpAddr;

use postcell_directory::Address;
use postcell_store::{Delivery, DeliveryOutcome, DeliveryTarget, Store, StoreError};

/// Longest line we write into a header (RFC 5322 2.1.1), without CRLF.
const MAX_HEADER_LINE: usize = 78;

/// What the `Received:` header says about the hop (RFC 5321 4.4).
#[derive(Debug, Clone)]
pub struct Trace<'a> {
    /// The HELO/EHLO argument.
    pub helo: &'a str,
    pub peer: IpAddr,
    pub hostname: &'a str,
    /// `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA` or `ESMTPSA` (RFC 3848).
    pub protocol: &'static str,
    pub queue_id: &'a str,
    /// The recipient, when there is exactly one (more would disclose Bcc recipients).
    pub recipient: Option<&'a Address>,
    /// RFC 5322 date-time.
    pub date: &'a str,
}

/// The `with` keyword of RFC 3848.
pub fn protocol(extended: bool, tls: bool, authenticated: bool) -> &'static str {
    match (extended, tls, authenticated) {
        (false, _, _) => "SMTP",
        (true, false, false) => "ESMTP",
        (true, true, false) => "ESMTPS",
        (true, false, true) => "ESMTPA",
        (true, true, true) => "ESMTPSA",
    }
}

/// A short id naming one accepted message in replies and logs.
pub fn new_queue_id() -> String {
    format!("{:012X}", rand::random::<u64>() & 0xFFFF_FFFF_FFFF)
}

/// Now, as RFC 5322 writes dates.
pub fn now_rfc5322() -> String {
    chrono::Local::now().to_rfc2822()
}

/// `Received: from HELO ([IP]) by HOST (Postcell) with ESMTP id ID for <rcpt>; DATE`,
/// folded so that no line is longer than 78 characters, ending in CRLF.
pub fn received_header(trace: &Trace<'_>) -> String {
    let mut words: Vec<String> = vec![
        "Received:".into(),
        "from".into(),
        printable(trace.helo),
        format!("({})", address_literal(trace.peer)),
        "by".into(),
        printable(trace.hostname),
        "(Postcell)".into(),
        "with".into(),
        trace.protocol.into(),
        "id".into(),
        trace.queue_id.into(),
    ];
    if let Some(recipient) = trace.recipient {
        words.push("for".into());
        words.push(format!("<{recipient}>"));
    }
    if let Some(last) = words.last_mut() {
        last.push(';');
    }
    // The date stays on one line: folding inside it is legal but hard to read.
    words.push(trace.date.to_owned());
    fold(&words)
}

/// `Return-Path: <sender>` (RFC 5321 4.4), added at final delivery.
pub fn return_path_header(sender: Option<&Address>) -> String {
    match sender {
        Some(sender) => format!("Return-Path: <{sender}>\r\n"),
        None => "Return-Path: <>\r\n".to_owned(),
    }
}

/// Joins words (which may hold spaces) into header lines of at most 78 characters;
/// continuation lines start with a tab. A single word longer than a line stays whole.
fn fold(words: &[String]) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in words {
        if line.is_empty() {
            line.push_str(word);
        } else if line.chars().count() + 1 + word.chars().count() > MAX_HEADER_LINE {
            out.push_str(&line);
            out.push_str("\r\n");
            line = format!("\t{word}");
        } else {
            line.push(' ');
            line.push_str(word);
        }
    }
    out.push_str(&line);
    out.push_str("\r\n");
    out
}

/// The client chose its HELO name: keep it from breaking the header's structure.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            let fits = (c.is_ascii_graphic() && c != '(' && c != ')' && c != ';')
                || (!c.is_ascii() && !c.is_control() && !c.is_whitespace());
            if fits { c } else { '?' }
        })
        .collect()
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 4.1.3).
pub fn address_literal(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    }
}

/// The Message-ID of the message text, without angle brackets.
pub fn message_id(message: &[u8]) -> Option<String> {
    mail_parser::MessageParser::default()
        .parse_headers(message)
        .and_then(|parsed| parsed.message_id().map(str::to_owned))
}

/// One message ready to store.
pub struct Submission<'a> {
    pub sender: Option<&'a Address>,
    pub targets: &'a [DeliveryTarget],
    pub trace: Trace<'a>,
    /// Header fields this hop adds below its `Received:` (`Authentication-Results:`,
    /// `DKIM-Signature:`), with CRLFs; often empty.
    pub extra_headers: &'a str,
    /// The message text as received (CRLF line ends, unstuffed).
    pub message: &'a [u8],
}

impl Submission<'_> {
    /// The bytes to store: `Return-Path:` when every target is a local mailbox (we are
    /// the final delivery; a copy for the outbound queue must not carry one), then
    /// `Received:`, then this hop's other fields, then the message exactly as received.
    pub fn assemble(&self) -> Vec<u8> {
        let all_local = self
            .targets
            .iter()
            .all(|t| matches!(t, DeliveryTarget::Local { .. }));
        let received = received_header(&self.trace);
        let return_path = if all_local {
            return_path_header(self.sender)
        } else {
            String::new()
        };
        let mut bytes = Vec::with_capacity(
            return_path.len() + received.len() + self.extra_headers.len() + self.message.len(),
        );
        bytes.extend_from_slice(return_path.as_bytes());
        bytes.extend_from_slice(received.as_bytes());
        bytes.extend_from_slice(self.extra_headers.as_bytes());
        bytes.extend_from_slice(self.message);
        bytes
    }

    /// Commits the delivery to every target in one transaction, with the body (or,
    /// when it is large, after writing it to its own file).
    pub async fn store(
        &self,
        store: &Store,
    ) -> Result<(DeliveryOutcome, Option<String>), StoreError> {
        let bytes = self.assemble();
        let size = bytes.len() as i64;
        let message_id = message_id(self.message);
        // The IMAP summary is computed once here, not on every FETCH. The search index
        // row is written after the commit, by the store's indexer.
        let summary = postcell_mime::summarize(&bytes).to_bytes();
        let blob = store.stage_blob(bytes).await?;
        let delivery = Delivery {
            blob,
            size,
            internal_date: postcell_store::now(),
            message_id: message_id.clone(),
            summary: Some(summary),
            sender: self.sender.map(Address::to_string).unwrap_or_default(),
            remote: Some(format!("smtp from {}", self.trace.peer.to_canonical())),
            targets: self.targets.to_vec(),
        };
        let outcome = store.deliver(&delivery).await?;
        Ok((outcome, message_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace<'a>(recipient: Option<&'a Address>, helo: &'a str) -> Trace<'a> {
        Trace {
            helo,
            peer: "192.0.2.1".parse().unwrap(),
            hostname: "mx.example.org",
            protocol: "ESMTPS",
            queue_id: "0123456789AB",
            recipient,
            date: "Tue, 1 Jul 2003 10:52:37 +0200",
        }
    }

    #[test]
    fn received_follows_rfc_5321_and_folds_at_78() {
        let bob = Address::parse("bob@example.org").unwrap();
        let header = received_header(&trace(Some(&bob), "client.example.net"));
        assert_eq!(
            header,
            "Received: from client.example.net ([192.0.2.1]) by mx.example.org (Postcell)\r\n\
             \twith ESMTPS id 0123456789AB for <bob@example.org>;\r\n\
             \tTue, 1 Jul 2003 10:52:37 +0200\r\n"
        );
        for line in header.split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
    }

    #[test]
    fn received_names_no_recipient_when_there_are_several_and_tames_the_helo() {
        let header = received_header(&trace(None, "evil)\u{7}(name;x"));
        assert!(
            header.starts_with("Received: from evil???name?x ([192.0.2.1]) by"),
            "{header}"
        );
        assert!(!header.contains(" for "));
        assert!(header.contains("id 0123456789AB; Tue,"), "{header}");
    }

    #[test]
    fn a_long_word_stays_whole_on_its_own_line() {
        let long = "h".repeat(100);
        let header = received_header(&trace(None, &long));
        let lines: Vec<&str> = header.trim_end().split("\r\n").collect();
        assert_eq!(lines[0], "Received: from");
        assert_eq!(lines[1], format!("\t{long}"));
    }

    #[test]
    fn ipv6_peers_are_tagged_and_mapped_ipv4_is_plain() {
        assert_eq!(
            address_literal("2001:db8::1".parse().unwrap()),
            "[IPv6:2001:db8::1]"
        );
        assert_eq!(
            address_literal("::ffff:192.0.2.7".parse().unwrap()),
            "[192.0.2.7]"
        );
    }

    #[test]
    fn protocol_names_follow_rfc_3848() {
        assert_eq!(protocol(false, true, true), "SMTP");
        assert_eq!(protocol(true, false, false), "ESMTP");
        assert_eq!(protocol(true, true, false), "ESMTPS");
        assert_eq!(protocol(true, false, true), "ESMTPA");
        assert_eq!(protocol(true, true, true), "ESMTPSA");
    }

    #[test]
    fn return_path_only_for_local_final_delivery() {
        let alice = Address::parse("alice@example.org").unwrap();
        let local = [DeliveryTarget::Local {
            account_id: 1,
            recipient: "bob@example.org".into(),
        }];
        let submission = Submission {
            sender: Some(&alice),
            targets: &local,
            trace: trace(None, "client"),
            extra_headers: "",
            message: b"Subject: x\r\n\r\nbody\r\n",
        };
        let bytes = String::from_utf8(submission.assemble()).unwrap();
        assert!(
            bytes.starts_with("Return-Path: <alice@example.org>\r\nReceived: from client "),
            "{bytes}"
        );
        assert!(bytes.ends_with("+0200\r\nSubject: x\r\n\r\nbody\r\n"));
        let mixed = [
            local[0].clone(),
            DeliveryTarget::Remote {
                recipient: "carol@example.net".into(),
            },
        ];
        let submission = Submission {
            targets: &mixed,
            ..submission
        };
        assert!(submission.assemble().starts_with(b"Received: "));
        assert_eq!(return_path_header(None), "Return-Path: <>\r\n");
    }

    #[test]
    fn the_message_id_comes_from_the_header() {
        let message = b"From: a@example.org\r\nMessage-ID: <1234@example.org>\r\n\r\nbody\r\n";
        assert_eq!(message_id(message).as_deref(), Some("1234@example.org"));
        assert_eq!(message_id(b"Subject: none\r\n\r\nbody\r\n"), None);
    }

    #[test]
    fn queue_ids_are_short_and_distinct() {
        let (a, b) = (new_queue_id(), new_queue_id());
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
    }
}
