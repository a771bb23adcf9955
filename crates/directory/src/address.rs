//! Mail addresses as RFC 5321 writes them, and the key they are looked up by.
//!
//! Matching rules: the domain is case-insensitive (DNS). RFC 5321 lets the receiving
//! host decide how to compare local parts; like nearly every server, Postcell compares
//! them without regard to ASCII case. A quoted local part means the same as its
//! unquoted content (`"john.doe"@x` is `john.doe@x`), so quoting cannot be used to slip
//! a different address past a check.

use std::fmt;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("the address is empty")]
    Empty,
    #[error("the address has no @domain")]
    NoDomain,
    #[error("the local part is not valid RFC 5321 syntax")]
    BadLocalPart,
    #[error("the domain is not valid")]
    BadDomain,
    #[error("the address is too long")]
    TooLong,
}

/// A parsed address. `local` is the local part with any quoting removed; `domain` is
/// lower case without a trailing dot (or an address literal such as `[192.0.2.1]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    local: String,
    domain: String,
}

/// RFC 5321 section 4.5.3.1: 64 octets of local part, 255 of domain.
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 255;

impl Address {
    /// Parses `local@domain` (without angle brackets). A source route (`@a,@b:u@d`),
    /// which RFC 5321 says to accept and ignore, is dropped.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let text = text.trim();
        let text = strip_source_route(text);
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        let (local, domain) = split_local_domain(text)?;
        let local = parse_local_part(local)?;
        let domain = normalise_domain(domain)?;
        if local.len() > MAX_LOCAL * 4 {
            return Err(AddressError::TooLong);
        }
        Ok(Address { local, domain })
    }

    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The lookup key: the local part in ASCII lower case, `@`, the domain.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_ascii_lowercase(), self.domain)
    }

    /// The address with its sub-address removed (`user+tag` -> `user`), if it has one.
    pub fn without_detail(&self, delimiter: char) -> Option<Address> {
        let (base, _) = self.local.split_once(delimiter)?;
        if base.is_empty() {
            return None;
        }
        Some(Address {
            local: base.to_owned(),
            domain: self.domain.clone(),
        })
    }

    pub fn is_address_literal(&self) -> bool {
        self.domain.starts_with('[')
    }
}

impl fmt::Display for Address {
    /// Writes the address back in RFC 5321 form, quoting the local part if it needs it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_dot_string(&self.local) {
            write!(f, "{}@{}", self.local, self.domain)
        } else {
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            write!(f, "\"@{}", self.domain)
        }
    }
}

/// Normalises a domain name: lower case, no trailing dot, valid labels.
pub fn normalise_domain(domain: &str) -> Result<String, AddressError> {
    if domain.starts_with('[') {
        return if domain.ends_with(']') && domain.len() > 2 && domain.len() <= MAX_DOMAIN {
            Ok(domain.to_ascii_lowercase())
        } else {
            Err(AddressError::BadDomain)
        };
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain).to_lowercase();
    if domain.is_empty() || domain.len() > MAX_DOMAIN {
        return Err(AddressError::BadDomain);
    }
    for label in domain.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
            });
        if !valid {
            return Err(AddressError::BadDomain);
        }
    }
    Ok(domain)
}

fn strip_source_route(text: &str) -> &str {
    if text.starts_with('@') {
        match text.find(':') {
            Some(colon) => &text[colon + 1..],
            None => text,
        }
    } else {
        text
    }
}

/// Splits at the `@` that ends the local part: the last one outside a quoted string.
fn split_local_domain(text: &str) -> Result<(&str, &str), AddressError> {
    let bytes = text.as_bytes();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut at = None;
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'@' if !in_quotes => {
                if at.is_some() {
                    // Two unquoted @: `a@b@c` is not an address.
                    return Err(AddressError::BadLocalPart);
                }
                at = Some(i);
            }
            _ => {}
        }
    }
    if in_quotes {
        return Err(AddressError::BadLocalPart);
    }
    let at = at.ok_or(AddressError::NoDomain)?;
    Ok((&text[..at], &text[at + 1..]))
}

fn parse_local_part(local: &str) -> Result<String, AddressError> {
    if local.is_empty() {
        return Err(AddressError::BadLocalPart);
    }
    if local.len() > MAX_LOCAL * 4 {
        return Err(AddressError::TooLong);
    }
    if let Some(inner) = local.strip_prefix('"') {
        let inner = inner.strip_suffix('"').ok_or(AddressError::BadLocalPart)?;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            let c = if c == '\\' {
                chars.next().ok_or(AddressError::BadLocalPart)?
            } else {
                c
            };
            // qtextSMTP / quoted-pairSMTP: printable ASCII and space, or UTF-8 (RFC 6531).
            if c.is_ascii_control() {
                return Err(AddressError::BadLocalPart);
            }
            out.push(c);
        }
        if out.is_empty() {
            return Err(AddressError::BadLocalPart);
        }
        return Ok(out);
    }
    if is_dot_string(local) {
        Ok(local.to_owned())
    } else {
        Err(AddressError::BadLocalPart)
    }
}

/// RFC 5321 Dot-string: atoms of atext separated by single dots (UTF-8 allowed, RFC 6531).
fn is_dot_string(local: &str) -> bool {
    !local.is_empty()
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom.chars().all(|c| {
                    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Result<String, AddressError> {
        Address::parse(text).map(|a| a.key())
    }

    #[test]
    fn domains_are_case_insensitive_and_lose_the_trailing_dot() {
        assert_eq!(key("Alice@Example.ORG.").unwrap(), "alice@example.org");
    }

    #[test]
    fn quoting_does_not_change_the_address() {
        assert_eq!(
            key("\"john.doe\"@example.org").unwrap(),
            "john.doe@example.org"
        );
        assert_eq!(
            Address::parse("\"john.doe\"@example.org")
                .unwrap()
                .to_string(),
            "john.doe@example.org"
        );
    }

    #[test]
    fn quoted_local_parts_keep_their_special_characters() {
        let a = Address::parse("\"user@other.net\"@example.org").unwrap();
        assert_eq!(a.local_part(), "user@other.net");
        assert_eq!(a.domain(), "example.org");
        assert_eq!(a.to_string(), "\"user@other.net\"@example.org");
        let b = Address::parse("\"a\\\"b\"@example.org").unwrap();
        assert_eq!(b.local_part(), "a\"b");
    }

    #[test]
    fn source_routes_are_ignored() {
        assert_eq!(
            key("@relay.example:bob@example.org").unwrap(),
            "bob@example.org"
        );
        assert_eq!(key("@a,@b:bob@other.net").unwrap(), "bob@other.net");
    }

    #[test]
    fn percent_hack_stays_a_local_part() {
        let a = Address::parse("user%other.net@example.org").unwrap();
        assert_eq!(a.domain(), "example.org");
        assert_eq!(a.local_part(), "user%other.net");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        assert_eq!(key(""), Err(AddressError::Empty));
        assert_eq!(key("alice"), Err(AddressError::NoDomain));
        assert_eq!(key("a@b@example.org"), Err(AddressError::BadLocalPart));
        assert_eq!(key("a..b@example.org"), Err(AddressError::BadLocalPart));
        assert_eq!(key(".a@example.org"), Err(AddressError::BadLocalPart));
        assert_eq!(key("a b@example.org"), Err(AddressError::BadLocalPart));
        assert_eq!(
            key("\"unterminated@example.org"),
            Err(AddressError::BadLocalPart)
        );
        assert_eq!(key("a@"), Err(AddressError::BadDomain));
        assert_eq!(key("a@-bad.org"), Err(AddressError::BadDomain));
        assert_eq!(key("a@bad..org"), Err(AddressError::BadDomain));
        assert_eq!(
            key(&format!("{}@example.org", "x".repeat(300))),
            Err(AddressError::TooLong)
        );
    }

    #[test]
    fn address_literals_are_domains_of_their_own() {
        let a = Address::parse("root@[127.0.0.1]").unwrap();
        assert!(a.is_address_literal());
    }

    #[test]
    fn sub_addresses_are_split_at_the_delimiter() {
        let a = Address::parse("bob+lists@example.org").unwrap();
        assert_eq!(a.without_detail('+').unwrap().key(), "bob@example.org");
        assert_eq!(
            Address::parse("+x@example.org")
                .unwrap()
                .without_detail('+'),
            None
        );
        assert_eq!(
            Address::parse("bob@example.org")
                .unwrap()
                .without_detail('+'),
            None
        );
    }

    #[test]
    fn utf8_addresses_are_accepted() {
        assert_eq!(key("山田@例え.jp").unwrap(), "山田@例え.jp");
    }
}
