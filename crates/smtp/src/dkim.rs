//! DKIM signing (RFC 6376) of submitted mail, with mail-auth.
//!
//! Keys are RSA-2048 with rsa-sha256: every DKIM verifier checks rsa-sha256, while
//! ed25519-sha256 (RFC 8463) is still ignored by many receivers, so an ed25519-only
//! signature would count as no signature there. 2048 bits is what RFC 8301 asks
//! verifiers to support and fits in one DNS TXT record.
//!
//! Mail is signed when submission accepts it, not when the relay sends it: what is
//! signed is what the authenticated user sent (after From rewriting), the signature
//! is computed once and stored with the message, and forwarded or relayed mail that
//! merely passes through is never signed with our keys.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use postcell_store::DkimKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use thiserror::Error;

/// The header fields signed when present (RFC 6376 5.4.1's list, trimmed to what
/// mail clients write). `From` is listed twice so that a second `From:` added on the
/// way breaks the signature (oversigning).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

pub const ALGORITHM: &str = "rsa-sha256";

#[derive(Debug, Error)]
pub enum DkimError {
    #[error("cannot generate an RSA key")]
    Generate,
    #[error("the stored key of {domain} is unusable: {reason}")]
    Key { domain: String, reason: String },
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// A new key pair: the private key (PKCS#8 DER, base64) and the public key as the
/// DNS record's `p=` (SubjectPublicKeyInfo DER, base64).
pub fn generate_key() -> Result<(String, String), DkimError> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| DkimError::Generate)?;
    let private: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| DkimError::Generate)?;
    let public: PublicKeyX509Der<'static> = pair
        .public_key()
        .as_der()
        .map_err(|_| DkimError::Generate)?;
    Ok((
        BASE64.encode(private.as_ref()),
        BASE64.encode(public.as_ref()),
    ))
}

/// The TXT record to publish: `SELECTOR._domainkey.DOMAIN` and its value.
pub fn dns_record(key: &DkimKey) -> (String, String) {
    (
        format!("{}._domainkey.{}", key.selector, key.domain),
        format!("v=DKIM1; k=rsa; p={}", key.public_key),
    )
}

/// The `DKIM-Signature:` header for `message`, with CRLF.
pub fn sign(key: &DkimKey, message: &[u8]) -> Result<String, DkimError> {
    let unusable = |reason: String| DkimError::Key {
        domain: key.domain.clone(),
        reason,
    };
    let der = BASE64
        .decode(key.private_key.as_bytes())
        .map_err(|e| unusable(e.to_string()))?;
    let rsa = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)))
        .map_err(|e| unusable(e.to_string()))?;
    let signature = DkimSigner::from_key(rsa)
        .domain(key.domain.as_str())
        .selector(key.selector.as_str())
        .headers(SIGNED_HEADERS.iter().copied())
        .sign(message)
        .map_err(|e| DkimError::Sign(e.to_string()))?;
    Ok(signature.to_header())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Dns, ResolverMode};
    use mail_auth::{AuthenticatedMessage, DkimResult};

    #[tokio::test]
    async fn a_signed_message_verifies_against_the_published_record() {
        let (private_key, public_key) = generate_key().unwrap();
        let key = DkimKey {
            domain: "example.org".into(),
            selector: "s1".into(),
            algorithm: ALGORITHM.into(),
            private_key,
            public_key,
            created_at: 0,
        };
        let message = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n\
            Subject: signed\r\n\r\nHello.\r\n";
        let header = sign(&key, message).unwrap();
        assert!(
            header.starts_with("DKIM-Signature: v=1; a=rsa-sha256;"),
            "{header}"
        );
        let (name, value) = dns_record(&key);
        assert_eq!(name, "s1._domainkey.example.org");
        let dns = Dns::new(ResolverMode::Static, &[format!("{name} TXT {value}")]).unwrap();
        let mut signed = header.into_bytes();
        signed.extend_from_slice(message);
        let parsed = AuthenticatedMessage::parse(&signed).unwrap();
        let results = dns
            .authenticator()
            .verify_dkim(dns.parameters(&parsed))
            .await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].result(), &DkimResult::Pass);

        // One changed byte in the body breaks it.
        let mut tampered = signed.clone();
        let last = tampered.len() - 3;
        tampered[last] = b'?';
        let parsed = AuthenticatedMessage::parse(&tampered).unwrap();
        let results = dns
            .authenticator()
            .verify_dkim(dns.parameters(&parsed))
            .await;
        // mail-auth calls a body hash mismatch "neutral" (RFC 6376 6.1.3: the
        // signature does not verify); anything but pass will do.
        assert!(
            matches!(
                results[0].result(),
                DkimResult::Fail(_) | DkimResult::Neutral(_)
            ),
            "{:?}",
            results[0].result()
        );
    }
}
