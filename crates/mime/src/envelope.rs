//! ENVELOPE (RFC 9051 section 7.5.2): the fields of a message header that IMAP sends as a
//! structure, undecoded.

use mail_parser::parsers::MessageStream;
use mail_parser::{Addr, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::Bytes;
use crate::header;

/// The host of an address that has a mailbox but no `@domain` (`From: MAILER-DAEMON`).
/// IMAP cannot send it as NIL, which would make the address a group start; Dovecot sends
/// the same placeholder.
pub const MISSING_DOMAIN: &str = "MISSING_DOMAIN";

/// The mailbox of an entry that has a display name and no address at all.
pub const MISSING_MAILBOX: &str = "MISSING_MAILBOX";

/// The envelope of a message.
///
/// Text fields are the raw field values, unfolded (line breaks removed) and trimmed, with
/// encoded words left encoded and 8-bit octets kept as they are: IMAP servers send header
/// text undecoded, and clients decode it. A field that is absent is `None`; the first of
/// repeated fields is used. An address list that is absent, empty or holds no address is
/// empty, which IMAP sends as NIL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<Address>,
    /// The Sender field, or `from` when it is absent or empty (RFC 9051 requires it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sender: Vec<Address>,
    /// The Reply-To field, or `from` when it is absent or empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Bytes>,
}

/// One entry of an address list in an envelope (RFC 9051 `address`).
///
/// Groups (RFC 5322 section 3.4) become two markers around their members: the start has
/// no host and the group's display name as mailbox, the end has neither mailbox nor host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The display name as it appears: quotes and backslashes removed, blanks collapsed,
    /// encoded words left encoded, 8-bit octets kept. A comment stands in for a missing
    /// name (`a@example.org (Ann)`) and follows a present one (`Ann (work) <a@...>` gives
    /// `Ann (work)`), as mail-parser reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Bytes>,
    /// The source route; always `None` (routes are obsolete and servers send NIL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adl: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Bytes>,
}

impl Address {
    /// A mailbox `mailbox@host` with an optional display name.
    pub fn new(name: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address {
            name: name.map(Bytes::from),
            adl: None,
            mailbox: Some(mailbox.into()),
            host: Some(host.into()),
        }
    }

    /// The marker that starts the group `name`.
    pub fn group_start(name: impl Into<Bytes>) -> Address {
        Address {
            mailbox: Some(name.into()),
            ..Address::default()
        }
    }

    /// The marker that ends a group.
    pub fn group_end() -> Address {
        Address::default()
    }

    pub fn is_group_start(&self) -> bool {
        self.host.is_none() && self.mailbox.is_some()
    }

    pub fn is_group_end(&self) -> bool {
        self.host.is_none() && self.mailbox.is_none()
    }
}

impl Envelope {
    /// The envelope of the message whose header section is `header`.
    pub(crate) fn parse(header: &[u8]) -> Envelope {
        let text = |name: &str| {
            header::first(header, name).map(|field| Bytes(header::unfold(field.value)))
        };
        let addresses = |name: &str| {
            header::first(header, name)
                .map(|field| parse_addresses(field.value))
                .unwrap_or_default()
        };
        let from = addresses("From");
        let mut sender = addresses("Sender");
        if sender.is_empty() {
            sender.clone_from(&from);
        }
        let mut reply_to = addresses("Reply-To");
        if reply_to.is_empty() {
            reply_to.clone_from(&from);
        }
        Envelope {
            date: text("Date"),
            subject: text("Subject"),
            from,
            sender,
            reply_to,
            to: addresses("To"),
            cc: addresses("Cc"),
            bcc: addresses("Bcc"),
            in_reply_to: text("In-Reply-To"),
            message_id: text("Message-ID"),
        }
    }
}

/// The addresses of an address-list field value, read by mail-parser.
///
/// mail-parser decodes encoded words and turns octets that are not UTF-8 into U+FFFD, and
/// IMAP wants neither: the value is first rewritten so that both survive as private-use
/// characters mail-parser treats as ordinary text (see [`shield`]), and restored after.
pub(crate) fn parse_addresses(value: &[u8]) -> Vec<Address> {
    // mail-parser reads a field up to the line break that ends it.
    let mut shielded = shield(value);
    shielded.push('\n');
    let parsed = MessageStream::new(shielded.as_bytes()).parse_address();
    let mut addresses = Vec::new();
    match parsed {
        HeaderValue::Address(mail_parser::Address::List(list)) => {
            addresses.extend(list.iter().filter_map(address));
        }
        HeaderValue::Address(mail_parser::Address::Group(groups)) => {
            for group in groups {
                let name = group
                    .name
                    .as_deref()
                    .map(unshield)
                    .filter(|name| !name.is_empty());
                match name {
                    Some(name) => {
                        addresses.push(Address::group_start(name));
                        addresses.extend(group.addresses.iter().filter_map(address));
                        addresses.push(Address::group_end());
                    }
                    None => addresses.extend(group.addresses.iter().filter_map(address)),
                }
            }
        }
        _ => {}
    }
    addresses
}

fn address(parsed: &Addr<'_>) -> Option<Address> {
    let name = parsed
        .name
        .as_deref()
        .map(unshield)
        .filter(|name| !name.is_empty());
    let spec = parsed
        .address
        .as_deref()
        .map(unshield)
        .filter(|spec| !spec.is_empty());
    let Some(mut spec) = spec else {
        // Only a name. One word is a mailbox without a domain (`MAILER-DAEMON`).
        let name = name?;
        if !name.iter().any(u8::is_ascii_whitespace) {
            return Some(Address {
                name: None,
                adl: None,
                mailbox: Some(Bytes(name)),
                host: Some(MISSING_DOMAIN.into()),
            });
        }
        return Some(Address {
            name: Some(Bytes(name)),
            adl: None,
            mailbox: Some(MISSING_MAILBOX.into()),
            host: Some(MISSING_DOMAIN.into()),
        });
    };
    // An obsolete source route `@relay:user@host` is dropped.
    if spec.first() == Some(&b'@')
        && let Some(colon) = spec.iter().position(|&byte| byte == b':')
    {
        spec = spec.get(colon + 1..).unwrap_or_default().to_vec();
    }
    let (mailbox, host) = match spec.iter().rposition(|&byte| byte == b'@') {
        Some(at) => (
            spec.get(..at).unwrap_or_default().to_vec(),
            spec.get(at + 1..).unwrap_or_default().to_vec(),
        ),
        None => (spec, MISSING_DOMAIN.as_bytes().to_vec()),
    };
    Some(Address {
        name: name.map(Bytes),
        adl: None,
        mailbox: Some(Bytes(mailbox)),
        host: Some(Bytes(host)),
    })
}

/// Stands for the `=` that opens an encoded word, so mail-parser leaves the word alone.
const ENCODED_WORD_START: char = '\u{E000}';
/// `OCTET_BASE + n` stands for the octet `n` where it is not part of UTF-8 text.
const OCTET_BASE: u32 = 0xE100;

/// `value` as UTF-8 text mail-parser can read without changing what IMAP must send: the
/// `=` of every `=?` becomes [`ENCODED_WORD_START`], and every octet that is not part of
/// a UTF-8 character becomes a private-use character. Private-use characters already in
/// the value (U+E000 to U+E1FF) are shielded octet by octet too, so [`unshield`] restores
/// exactly the original octets.
fn shield(value: &[u8]) -> String {
    let mut text = String::with_capacity(value.len());
    let mut rest = value;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                shield_text(valid, &mut text);
                break;
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                shield_text(std::str::from_utf8(valid).unwrap_or_default(), &mut text);
                let invalid = error.error_len().unwrap_or(after.len());
                for &octet in after.get(..invalid).unwrap_or_default() {
                    text.push(shielded_octet(octet));
                }
                rest = after.get(invalid..).unwrap_or_default();
            }
        }
    }
    text
}

fn shield_text(valid: &str, text: &mut String) {
    let mut chars = valid.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '=' && chars.peek() == Some(&'?') {
            text.push(ENCODED_WORD_START);
        } else if ('\u{E000}'..='\u{E1FF}').contains(&ch) {
            let mut buffer = [0u8; 4];
            for &octet in ch.encode_utf8(&mut buffer).as_bytes() {
                text.push(shielded_octet(octet));
            }
        } else {
            text.push(ch);
        }
    }
}

fn shielded_octet(octet: u8) -> char {
    char::from_u32(OCTET_BASE + u32::from(octet)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The octets [`shield`] stood in for.
fn unshield(text: &str) -> Vec<u8> {
    let mut octets = Vec::with_capacity(text.len());
    for ch in text.chars() {
        let code = u32::from(ch);
        if ch == ENCODED_WORD_START {
            octets.push(b'=');
        } else if (OCTET_BASE..OCTET_BASE + 0x100).contains(&code) {
            octets.push(u8::try_from(code - OCTET_BASE).unwrap_or(b'?'));
        } else {
            let mut buffer = [0u8; 4];
            octets.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
        }
    }
    octets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shielding_round_trips_any_octets() {
        for value in [
            &b"plain"[..],
            b"=?UTF-8?B?5pel5pys?=",
            b"\x93\xfa\x96\x7b",
            "\u{E000}\u{E1FF}日本".as_bytes(),
            b"\xff=?\xe6\x97",
        ] {
            assert_eq!(unshield(&shield(value)), value);
        }
    }

    #[test]
    fn names_stay_encoded() {
        let addresses =
            parse_addresses(b" =?UTF-8?B?5pel5pys?= <a@example.org>, \"Doe, Jane\" <jane@x.org>");
        assert_eq!(
            addresses,
            [
                Address::new(Some("=?UTF-8?B?5pel5pys?="), "a", "example.org"),
                Address::new(Some("Doe, Jane"), "jane", "x.org"),
            ]
        );
    }

    #[test]
    fn eight_bit_names_keep_their_octets() {
        let addresses = parse_addresses(b" \x93\xfa\x96\x7b <a@example.jp>");
        assert_eq!(addresses.len(), 1);
        assert_eq!(addresses[0].name.as_deref(), Some(&b"\x93\xfa\x96\x7b"[..]));
    }

    #[test]
    fn groups_become_markers() {
        let addresses =
            parse_addresses(b" Friends: a@b.example, \"B\" <b@c.example>;, solo@x.example");
        assert_eq!(
            addresses,
            [
                Address::group_start("Friends"),
                Address::new(None, "a", "b.example"),
                Address::new(Some("B"), "b", "c.example"),
                Address::group_end(),
                Address::new(None, "solo", "x.example"),
            ]
        );
        assert_eq!(
            parse_addresses(b" undisclosed-recipients:;"),
            [
                Address::group_start("undisclosed-recipients"),
                Address::group_end()
            ]
        );
    }

    #[test]
    fn addresses_without_a_domain_get_a_placeholder_host() {
        assert_eq!(
            parse_addresses(b" MAILER-DAEMON"),
            [Address {
                name: None,
                adl: None,
                mailbox: Some("MAILER-DAEMON".into()),
                host: Some(MISSING_DOMAIN.into()),
            }]
        );
        assert_eq!(
            parse_addresses(b" <@relay.example:user@host.example>"),
            [Address::new(None, "user", "host.example")]
        );
        assert!(parse_addresses(b"  ").is_empty());
    }

    #[test]
    fn sender_and_reply_to_default_to_from() {
        let envelope =
            Envelope::parse(b"From: Ann <ann@example.org>\r\nReply-To:\r\nSubject: x\r\n\r\n");
        assert_eq!(
            envelope.from,
            [Address::new(Some("Ann"), "ann", "example.org")]
        );
        assert_eq!(envelope.sender, envelope.from);
        assert_eq!(envelope.reply_to, envelope.from);
        assert_eq!(envelope.subject, Some("x".into()));
        assert_eq!(envelope.date, None);
    }
}
