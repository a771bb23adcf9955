//! Delivery status notifications (RFC 3464) for mail that could not be delivered: a
//! `multipart/report; report-type=delivery-status` with a human-readable part, the
//! machine-readable status, and the original message's header (RFC 6522).
//!
//! ```text
//! Reporting-MTA: dns; relay.example.org
//! Arrival-Date: Tue, 1 Jul 2003 10:52:37 +0000
//!
//! Final-Recipient: rfc822; bob@example.net
//! Action: failed
//! Status: 5.1.1
//! Remote-MTA: dns; mx.example.net
//! Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected
//! ```
//! A DSN has the null sender, so it never causes another DSN (RFC 5321 6.1).

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;

/// One recipient that could not be delivered.
#[derive(Debug, Clone)]
pub struct FailedRecipient<'a> {
    pub recipient: &'a str,
    /// The remote's reply (`550 5.1.1 ...`), or why none was had.
    pub diagnostic: &'a str,
    /// The host that gave the reply, if one did.
    pub remote_mta: Option<&'a str>,
    /// The RFC 3463 status: from the reply, or ours.
    pub status: String,
}

/// The RFC 3463 status code in a reply text (`550 5.1.1 ...` -> `5.1.1`), else the
/// generic one of its class.
pub fn status_of(diagnostic: &str, permanent: bool) -> String {
    let enhanced = diagnostic
        .split_whitespace()
        .take(2)
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned);
    match enhanced {
        Some(code) if permanent && code.starts_with('4') => format!("5{}", &code[1..]),
        Some(code) => code,
        None if permanent => "5.0.0".into(),
        None => "4.0.0".into(),
    }
}

/// The header section of the original message, for the `text/rfc822-headers` part.
fn original_header(original: &[u8]) -> String {
    let end = original
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(original.len().min(64 * 1024));
    String::from_utf8_lossy(&original[..end]).into_owned()
}

/// The text with anything but printable ASCII, CR and LF replaced by `?`.
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || matches!(c, ' ' | '\r' | '\n') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Builds the DSN to `sender` (`MAILER-DAEMON@hostname` writes it).
pub fn build(
    hostname: &str,
    sender: &str,
    failures: &[FailedRecipient<'_>],
    original: &[u8],
    arrival_date: i64,
) -> std::io::Result<Vec<u8>> {
    let arrival = chrono::DateTime::from_timestamp(arrival_date, 0)
        .map(|d| d.to_rfc2822())
        .unwrap_or_default();
    let mut human = format!(
        "This is the mail system at host {hostname}.\r\n\r\n\
         Your message could not be delivered to one or more recipients.\r\n\
         It is attached below.\r\n\r\n"
    );
    let mut status = format!("Reporting-MTA: dns; {hostname}\r\nArrival-Date: {arrival}\r\n");
    for failure in failures {
        human.push_str(&format!("<{}>: ", failure.recipient));
        match failure.remote_mta {
            Some(host) => human.push_str(&format!("host {host} said: {}\r\n", failure.diagnostic)),
            None => human.push_str(&format!("{}\r\n", failure.diagnostic)),
        }
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\n",
            failure.recipient, failure.status
        ));
        if let Some(host) = failure.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {host}\r\n"));
        }
        status.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\n",
            failure.diagnostic.replace(['\r', '\n'], " ")
        ));
    }
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "utf-8"),
                human,
            ),
            // RFC 3464 2.1: 7bit, so the fields stay readable by machines.
            MimePart::new(ContentType::new("message/delivery-status"), ascii(&status))
                .transfer_encoding("7bit"),
            MimePart::new(
                ContentType::new("text/rfc822-headers"),
                original_header(original),
            ),
        ],
    );
    let mailer_daemon = format!("MAILER-DAEMON@{hostname}");
    MessageBuilder::new()
        .from(("Mail Delivery System", mailer_daemon.as_str()))
        .to(sender)
        .subject("Undelivered Mail Returned to Sender")
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-replied"),
        )
        .message_id(format!("{:016x}.dsn@{hostname}", rand::random::<u64>()))
        .date(postcell_store::now())
        .body(report)
        .write_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_come_from_the_reply() {
        assert_eq!(
            status_of("550 5.1.1 <b@example.net>: no such user", true),
            "5.1.1"
        );
        assert_eq!(status_of("554 Transaction failed", true), "5.0.0");
        assert_eq!(status_of("451 4.3.0 try later", false), "4.3.0");
        // Given up after temporary failures: permanent now.
        assert_eq!(status_of("451 4.3.0 try later", true), "5.3.0");
        assert_eq!(
            status_of("5.1.2 Host or domain name not found", true),
            "5.1.2"
        );
    }

    #[test]
    fn the_report_names_the_recipient_and_the_reply() {
        let original = b"From: alice@example.org\r\nSubject: hello\r\n\r\nsecret body\r\n";
        let dsn = build(
            "relay.example.org",
            "alice@example.org",
            &[FailedRecipient {
                recipient: "bob@example.net",
                diagnostic: "550 5.1.1 <bob@example.net>: Recipient address rejected",
                remote_mta: Some("mx.example.net"),
                status: "5.1.1".into(),
            }],
            original,
            1_000_000_000,
        )
        .unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Undelivered Mail Returned to Sender")
        );
        use mail_parser::MimeHeaders;
        let content_type = parsed.content_type().unwrap();
        assert_eq!(content_type.ctype(), "multipart");
        assert_eq!(content_type.subtype(), Some("report"));
        assert_eq!(
            content_type.attribute("report-type"),
            Some("delivery-status")
        );
        let text = String::from_utf8_lossy(&dsn);
        for expected in [
            "Final-Recipient: rfc822; bob@example.net",
            "Action: failed",
            "Status: 5.1.1",
            "Remote-MTA: dns; mx.example.net",
            "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected",
            "Subject: hello",
            "Auto-Submitted: auto-replied",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in\n{text}");
        }
        assert!(!text.contains("secret body"), "only the header is returned");
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "CRLF line ends only"
        );
    }
}
