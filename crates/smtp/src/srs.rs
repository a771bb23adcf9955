//! The Sender Rewriting Scheme for forwarded mail (the SRS0 form of Shevek's SRS paper,
//! as Postfix's postsrsd and Exim write it).
//!
//! A message forwarded to another domain keeps its content but gets our address as
//! envelope sender, so the next hop's SPF check sees our domain, and a bounce comes
//! back to us, which can undo the rewriting:
//!
//! ```text
//! bob@example.net  ->  SRS0=HHHH=TT=example.net=bob@forward.example.org
//! ```
//! `HHHH` is an HMAC-SHA1 of the rest (keyed with the configured secret, base64,
//! first four characters), `TT` the day (base32, modulo 1024): a rewritten address
//! cannot be forged, and expires.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Days a rewritten address stays valid for bounces.
const MAX_AGE_DAYS: u64 = 21;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

#[derive(Clone)]
pub struct Srs {
    key: aws_lc_rs::hmac::Key,
    /// The local domain rewritten senders are at.
    pub domain: String,
}

impl std::fmt::Debug for Srs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srs").field("domain", &self.domain).finish()
    }
}

impl Srs {
    pub fn new(secret: &str, domain: &str) -> Srs {
        Srs {
            key: aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                secret.as_bytes(),
            ),
            domain: domain.to_ascii_lowercase(),
        }
    }

    fn hash(&self, timestamp: &str, domain: &str, local: &str) -> String {
        let text = format!("{timestamp}{domain}{local}").to_ascii_lowercase();
        let tag = aws_lc_rs::hmac::sign(&self.key, text.as_bytes());
        BASE64.encode(tag.as_ref())[..4].to_owned()
    }

    /// `local@domain` as an SRS0 address at our domain. An address that is already
    /// ours is kept as it is.
    pub fn forward(&self, sender: &str, now: u64) -> String {
        let Some((local, domain)) = sender.rsplit_once('@') else {
            return sender.to_owned();
        };
        if domain.eq_ignore_ascii_case(&self.domain) {
            return sender.to_owned();
        }
        let timestamp = timestamp(now / 86400);
        let hash = self.hash(&timestamp, domain, local);
        format!("SRS0={hash}={timestamp}={domain}={local}@{}", self.domain)
    }

    /// The original sender of an SRS0 local part, if its hash is right and it has not
    /// expired.
    pub fn reverse(&self, local_part: &str, now: u64) -> Option<String> {
        let rest = local_part
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("SRS0="))
            .map(|_| &local_part[5..])?;
        let mut parts = rest.splitn(4, '=');
        let (hash, timestamp, domain, local) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if domain.is_empty() || local.is_empty() {
            return None;
        }
        let expected = self.hash(timestamp, domain, local);
        // Case-insensitive: some MTAs lower-case local parts on the way back.
        if !expected.eq_ignore_ascii_case(hash) {
            return None;
        }
        let then = decode_timestamp(timestamp)?;
        let today = (now / 86400) % 1024;
        let age = (today + 1024 - then) % 1024;
        (age <= MAX_AGE_DAYS).then(|| format!("{local}@{domain}"))
    }
}

fn timestamp(days: u64) -> String {
    let t = days % 1024;
    let chars = [BASE32[(t >> 5) as usize], BASE32[(t & 31) as usize]];
    String::from_utf8_lossy(&chars).into_owned()
}

fn decode_timestamp(text: &str) -> Option<u64> {
    let mut value = 0u64;
    if text.len() != 2 {
        return None;
    }
    for c in text.bytes() {
        let digit = BASE32.iter().position(|&b| b == c.to_ascii_uppercase())? as u64;
        value = value * 32 + digit;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86400;

    #[test]
    fn forward_and_back() {
        let srs = Srs::new("secret", "forward.example.org");
        let now = 20_000 * DAY;
        let rewritten = srs.forward("bob@example.net", now);
        assert!(rewritten.starts_with("SRS0="), "{rewritten}");
        assert!(
            rewritten.ends_with("=example.net=bob@forward.example.org"),
            "{rewritten}"
        );
        let local = rewritten.rsplit_once('@').unwrap().0;
        assert_eq!(srs.reverse(local, now).as_deref(), Some("bob@example.net"));
        assert_eq!(
            srs.reverse(&local.to_ascii_lowercase(), now + 3 * DAY)
                .as_deref(),
            Some("bob@example.net")
        );
        assert_eq!(srs.reverse(local, now + 30 * DAY), None, "expired");
        assert_eq!(
            Srs::new("other", "forward.example.org").reverse(local, now),
            None
        );
        let forged = local.replacen("example.net", "example.com", 1);
        assert_eq!(srs.reverse(&forged, now), None);
        assert_eq!(
            srs.forward("me@forward.example.org", now),
            "me@forward.example.org"
        );
        assert_eq!(srs.reverse("alice", now), None);
    }
}
