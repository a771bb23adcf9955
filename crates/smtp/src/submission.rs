//! What submission (RFC 6409) does to a message before it is stored: the `From:`
//! addresses are checked against the user's own, `From:` is rewritten to the canonical
//! address when the user asked for it, and a missing `Message-ID:` or `Date:` is added
//! (RFC 6409 8.2, 8.3). Pure functions over the message text; the session asks the
//! directory which addresses are the user's.

use mail_parser::{HeaderName, HeaderValue, MessageParser};

/// The addresses in the `From:` fields, as written (every mailbox of every field).
pub fn from_addresses(message: &[u8]) -> Vec<String> {
    let Some(parsed) = MessageParser::default().parse_headers(message) else {
        return Vec::new();
    };
    let mut addresses = Vec::new();
    for header in parsed.headers() {
        if header.name != HeaderName::From {
            continue;
        }
        if let HeaderValue::Address(address) = &header.value {
            for addr in address.iter() {
                if let Some(text) = addr.address() {
                    addresses.push(text.to_owned());
                }
            }
        }
    }
    addresses
}

/// The display name of the first `From:` mailbox, if it has one.
fn from_display_name(message: &[u8]) -> Option<String> {
    let parsed = MessageParser::default().parse_headers(message)?;
    parsed
        .from()
        .and_then(|from| from.first())
        .and_then(|addr| addr.name())
        .map(str::to_owned)
}

/// Where each header field of the header section starts and ends (the end includes
/// its CRLF), with its name.
fn fields(message: &[u8]) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        if message[pos..].starts_with(b"\r\n") || message[pos..].starts_with(b"\n") {
            break; // the blank line ending the header section
        }
        let start = pos;
        // A field runs to the line end not followed by whitespace (folding).
        loop {
            match message[pos..].iter().position(|&b| b == b'\n') {
                Some(nl) => pos += nl + 1,
                None => {
                    pos = message.len();
                    break;
                }
            }
            if !matches!(message.get(pos), Some(b' ' | b'\t')) {
                break;
            }
        }
        let line = &message[start..pos];
        let name = line
            .iter()
            .position(|&b| b == b':')
            .map(|colon| String::from_utf8_lossy(&line[..colon]).trim().to_owned())
            .unwrap_or_default();
        out.push((name, start..pos));
    }
    out
}

/// Whether the header section has a field of this name.
pub fn has_field(message: &[u8], name: &str) -> bool {
    fields(message)
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The message without the header fields named `name`.
pub fn remove_fields(message: &[u8], name: &str) -> Vec<u8> {
    remove_fields_where(message, name, |_| true)
}

/// The message without the header fields named `name` whose value (after the colon)
/// `matches` says to remove.
pub fn remove_fields_where(message: &[u8], name: &str, matches: impl Fn(&str) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut copied = 0;
    for (field, range) in fields(message) {
        let text = String::from_utf8_lossy(&message[range.clone()]);
        let value = text.split_once(':').map(|(_, v)| v).unwrap_or("");
        if field.eq_ignore_ascii_case(name) && matches(value) {
            out.extend_from_slice(&message[copied..range.start]);
            copied = range.end;
        }
    }
    out.extend_from_slice(&message[copied..]);
    out
}

/// Replaces every `From:` field with one naming `canonical` (keeping the display name
/// of the first mailbox).
pub fn rewrite_from(message: &[u8], canonical: &str) -> Vec<u8> {
    let display = from_display_name(message);
    let field = match display {
        Some(name) => format!("From: {} <{canonical}>\r\n", quote_display_name(&name)),
        None => format!("From: <{canonical}>\r\n"),
    };
    let mut out = Vec::with_capacity(message.len() + field.len());
    let mut copied = 0;
    let mut written = false;
    for (name, range) in fields(message) {
        if name.eq_ignore_ascii_case("From") {
            out.extend_from_slice(&message[copied..range.start]);
            if !written {
                out.extend_from_slice(field.as_bytes());
                written = true;
            }
            copied = range.end;
        }
    }
    if !written {
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&message[copied..]);
    out
}

/// A display name as an RFC 5322 phrase: an encoded word for non-ASCII text, a
/// quoted string when it has specials.
fn quote_display_name(name: &str) -> String {
    use base64::Engine;
    if !name.is_ascii() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(name.as_bytes());
        return format!("=?UTF-8?B?{encoded}?=");
    }
    let atom = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c));
    if atom {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Adds `Message-ID:` and `Date:` in front when the message has none.
pub fn add_missing_fields(message: &[u8], hostname: &str, date: &str) -> Vec<u8> {
    let mut prefix = String::new();
    if !has_field(message, "Message-ID") {
        prefix.push_str(&format!(
            "Message-ID: <{:016x}.{:08x}@{hostname}>\r\n",
            rand::random::<u64>(),
            rand::random::<u32>()
        ));
    }
    if !has_field(message, "Date") {
        prefix.push_str(&format!("Date: {date}\r\n"));
    }
    let mut out = Vec::with_capacity(prefix.len() + message.len());
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"Subject: hi\r\nFrom: \"Alice A.\" <alice@example.org>,\r\n carol@example.org\r\nTo: bob@example.net\r\n\r\nFrom: not a header\r\n";

    #[test]
    fn from_addresses_lists_every_mailbox() {
        assert_eq!(
            from_addresses(MESSAGE),
            vec![
                "alice@example.org".to_owned(),
                "carol@example.org".to_owned()
            ]
        );
        assert!(from_addresses(b"Subject: none\r\n\r\nbody\r\n").is_empty());
    }

    #[test]
    fn from_is_rewritten_in_place_and_the_body_is_untouched() {
        let rewritten = rewrite_from(MESSAGE, "alice.a@example.org");
        assert_eq!(
            String::from_utf8(rewritten).unwrap(),
            "Subject: hi\r\nFrom: \"Alice A.\" <alice.a@example.org>\r\nTo: bob@example.net\r\n\r\nFrom: not a header\r\n"
        );
        let japanese = "From: =?UTF-8?B?5bGx55Sw?= <yamada@example.org>\r\n\r\nx\r\n";
        let rewritten =
            String::from_utf8(rewrite_from(japanese.as_bytes(), "t.yamada@example.org")).unwrap();
        assert_eq!(
            rewritten,
            "From: =?UTF-8?B?5bGx55Sw?= <t.yamada@example.org>\r\n\r\nx\r\n"
        );
    }

    #[test]
    fn missing_message_id_and_date_are_added_once() {
        let added = add_missing_fields(
            b"Subject: x\r\n\r\nbody\r\n",
            "mail.example.org",
            "Tue, 1 Jul 2003 10:52:37 +0200",
        );
        let text = String::from_utf8(added.clone()).unwrap();
        assert!(text.starts_with("Message-ID: <"), "{text}");
        assert!(
            text.contains(
                "@mail.example.org>\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\nSubject: x\r\n"
            ),
            "{text}"
        );
        assert_eq!(add_missing_fields(&added, "h", "d"), added);
    }

    #[test]
    fn only_matching_fields_are_removed() {
        let message = b"Authentication-Results: mx.example.org; spf=pass\r\n\
            Authentication-Results: other.example; dkim=pass\r\n\r\nbody\r\n";
        let kept = remove_fields_where(message, "Authentication-Results", |v| {
            v.trim_start().starts_with("mx.example.org")
        });
        assert_eq!(
            kept,
            b"Authentication-Results: other.example; dkim=pass\r\n\r\nbody\r\n".to_vec()
        );
    }

    #[test]
    fn fields_are_removed_by_name_only_in_the_header() {
        let message =
            b"Return-Path: <a@b>\r\nReceived: x\r\nreturn-path: <c@d>\r\n\r\nReturn-Path: body\r\n";
        assert_eq!(
            remove_fields(message, "Return-Path"),
            b"Received: x\r\n\r\nReturn-Path: body\r\n".to_vec()
        );
    }
}
