//! SCRAM-SHA-256 (RFC 5802, RFC 7677): the secrets kept for an account, and the server
//! side of one exchange. Without channel binding: `SCRAM-SHA-256-PLUS` is not offered.
//!
//! ```text
//! C: n,,n=alice@example.org,r=rOprNGfwEbeRWgbNEkqO
//! S: r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096
//! C: c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=
//! S: v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=
//! ```
//!
//! The protocol owns the framing (IMAP `+` lines, SMTP `334`); this module sees the
//! decoded messages only. An unknown user, and an account whose password was set before
//! SCRAM secrets were kept, get a made-up salt and fail at the proof, like a wrong
//! password: the exchange does not tell who exists.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use postcell_store::{Account, ScramCredentials};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::sasl::SaslError;
use crate::{Address, Directory, PasswordError};

/// PBKDF2 rounds for new secrets: the RFC 7677 recommendation, which is also what
/// clients expect to compute in reasonable time.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// What [`SaslError::Malformed`] names when a client asks for channel binding, which
/// SCRAM-SHA-256 (without -PLUS) does not have.
pub const CHANNEL_BINDING: &str = "SCRAM-SHA-256 channel binding";

/// Clients send at most this many octets in a SCRAM message; more is refused.
const MAX_MESSAGE: usize = 2048;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// SaltedPassword, ClientKey, StoredKey and ServerKey of RFC 5802 section 3.
fn derive(password: &[u8], salt: &[u8], iterations: u32) -> ScramCredentials {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    ScramCredentials {
        salt: salt.to_vec(),
        iterations,
        stored_key: Sha256::digest(client_key).to_vec(),
        server_key: hmac(&salted, b"Server Key").to_vec(),
    }
}

/// The SCRAM-SHA-256 secrets of `password` with a new random salt. The password is
/// SASLprep-ed first (RFC 5802 section 2.2), as clients do; a password SASLprep refuses
/// (control characters, for instance) gets no secrets, so that account cannot use SCRAM.
/// Runs on the blocking pool: PBKDF2 is deliberately slow.
pub async fn scram_credentials(password: &str) -> Result<Option<ScramCredentials>, PasswordError> {
    let Ok(prepared) = stringprep::saslprep(password) else {
        return Ok(None);
    };
    let prepared = prepared.into_owned();
    let salt: [u8; 16] = rand::random();
    tokio::task::spawn_blocking(move || Some(derive(prepared.as_bytes(), &salt, SCRAM_ITERATIONS)))
        .await
        .map_err(|_| PasswordError::Interrupted)
}

/// A per-process key for the made-up salts of unknown users, so that asking twice for
/// the same user gives the same salt.
fn decoy_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(rand::random)
}

/// Secrets that no password matches, with a salt that is stable for `username`.
fn decoy(username: &str) -> ScramCredentials {
    let salt = hmac(decoy_key(), username.as_bytes());
    ScramCredentials {
        salt: salt[..16].to_vec(),
        iterations: SCRAM_ITERATIONS,
        stored_key: rand::random::<[u8; 32]>().to_vec(),
        server_key: rand::random::<[u8; 32]>().to_vec(),
    }
}

/// `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is an error.
fn decode_saslname(value: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::Malformed("SCRAM-SHA-256")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn malformed() -> SaslError {
    SaslError::Malformed("SCRAM-SHA-256")
}

/// The first message of an exchange, read.
struct ClientFirst {
    /// `gs2-header`, for the `c=` check of the final message.
    gs2_header: String,
    username: String,
    nonce: String,
    /// `client-first-message-bare`, part of the AuthMessage.
    bare: String,
}

/// `client-first-message = gs2-header client-first-message-bare`,
/// `gs2-header = gs2-cbind-flag "," [ authzid ] ","`,
/// `client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]`
fn parse_client_first(message: &[u8]) -> Result<ClientFirst, SaslError> {
    if message.len() > MAX_MESSAGE {
        return Err(malformed());
    }
    let text = std::str::from_utf8(message).map_err(|_| malformed())?;
    let mut parts = text.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    match flag {
        // "y": the client could bind but believes we cannot; we indeed cannot.
        "n" | "y" => {}
        // Channel binding ("p=tls-unique"): only SCRAM-SHA-256-PLUS has it.
        _ if flag.starts_with("p=") => return Err(SaslError::Malformed(CHANNEL_BINDING)),
        _ => return Err(malformed()),
    }
    let gs2_header = format!("{flag},{authzid},");
    let mut fields = bare.split(',');
    let username = match fields.next() {
        Some(field) if field.starts_with("m=") => return Err(malformed()),
        Some(field) => field.strip_prefix("n=").ok_or_else(malformed)?,
        None => return Err(malformed()),
    };
    let username = decode_saslname(username)?;
    let nonce = fields
        .next()
        .and_then(|field| field.strip_prefix("r="))
        .filter(|nonce| !nonce.is_empty() && nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .ok_or_else(malformed)?;
    if !authzid.is_empty() {
        let authzid = decode_saslname(authzid.strip_prefix("a=").ok_or_else(malformed)?)?;
        if !authzid.eq_ignore_ascii_case(&username) {
            return Err(SaslError::AuthzidMismatch);
        }
    }
    if username.is_empty() {
        return Err(malformed());
    }
    Ok(ClientFirst {
        gs2_header,
        username,
        nonce: nonce.to_owned(),
        bare: bare.to_owned(),
    })
}

/// How an exchange ended.
#[derive(Debug, Clone)]
pub enum ScramOutcome {
    /// The proof is right: send `server_final` (`v=...`) to the client, which checks it.
    Success {
        account: Account,
        server_final: Vec<u8>,
    },
    /// Right proof, disabled account.
    Disabled,
    /// Wrong proof, unknown user, or an account without SCRAM secrets.
    Failure,
}

/// The server's side of one SCRAM-SHA-256 exchange, between its two messages.
pub struct ScramExchange {
    account: Option<Account>,
    credentials: ScramCredentials,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl std::fmt::Debug for ScramExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramExchange").finish_non_exhaustive()
    }
}

impl Directory {
    /// Reads the client's first message and looks the user up; the exchange then holds
    /// the server's first message.
    pub async fn scram_start(&self, client_first: &[u8]) -> Result<ScramExchange, ScramStartError> {
        let first = parse_client_first(client_first)?;
        let account = match Address::parse(&first.username) {
            Ok(address) => self.store.account_by_address(&address.key()).await?,
            Err(_) => None,
        };
        let stored = match &account {
            Some(account) => self.store.scram_credentials(account.id).await?,
            None => None,
        };
        let credentials = stored.unwrap_or_else(|| decoy(&first.username.to_lowercase()));
        let server_nonce: [u8; 18] = rand::random();
        let nonce = format!("{}{}", first.nonce, STANDARD.encode(server_nonce));
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&credentials.salt),
            credentials.iterations
        );
        Ok(ScramExchange {
            account,
            credentials,
            gs2_header: first.gs2_header,
            client_first_bare: first.bare,
            server_first,
            nonce,
        })
    }
}

/// Why an exchange could not start.
#[derive(Debug, thiserror::Error)]
pub enum ScramStartError {
    #[error(transparent)]
    Sasl(#[from] SaslError),
    #[error(transparent)]
    Store(#[from] postcell_store::StoreError),
}

impl ScramExchange {
    /// `server-first-message`, to send to the client.
    pub fn server_first(&self) -> &[u8] {
        self.server_first.as_bytes()
    }

    /// Checks the client's final message:
    /// `client-final-message = "c=" base64(gs2-header) "," "r=" nonce ["," extensions] "," "p=" base64(proof)`.
    pub fn finish(self, client_final: &[u8]) -> Result<ScramOutcome, SaslError> {
        if client_final.len() > MAX_MESSAGE {
            return Err(malformed());
        }
        let text = std::str::from_utf8(client_final).map_err(|_| malformed())?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(malformed)?;
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| SaslError::InvalidBase64)?;
        let mut fields = without_proof.split(',');
        let binding = fields
            .next()
            .and_then(|field| field.strip_prefix("c="))
            .ok_or_else(malformed)?;
        if STANDARD.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(malformed());
        }
        let nonce = fields
            .next()
            .and_then(|field| field.strip_prefix("r="))
            .ok_or_else(malformed)?;
        if nonce != self.nonce {
            return Err(malformed());
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = hmac(&self.credentials.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Ok(ScramOutcome::Failure);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let matches: bool = Sha256::digest(&client_key)
            .as_slice()
            .ct_eq(&self.credentials.stored_key)
            .into();
        let Some(account) = self.account.filter(|_| matches) else {
            return Ok(ScramOutcome::Failure);
        };
        if !account.enabled {
            return Ok(ScramOutcome::Disabled);
        }
        let server_signature = hmac(&self.credentials.server_key, auth_message.as_bytes());
        Ok(ScramOutcome::Success {
            account,
            server_final: format!("v={}", STANDARD.encode(server_signature)).into_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: the test vector, user "user", password "pencil".
    #[test]
    fn rfc_7677_test_vector() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credentials = derive(b"pencil", &salt, 4096);
        let client_first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let first = parse_client_first(client_first).unwrap();
        assert_eq!(first.username, "user");
        let exchange = ScramExchange {
            account: None,
            credentials,
            gs2_header: first.gs2_header,
            client_first_bare: first.bare,
            server_first:
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                    .into(),
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        };
        let auth_message = format!(
            "{},{},c=biws,r={}",
            exchange.client_first_bare, exchange.server_first, exchange.nonce
        );
        // The RFC's expected server signature proves the derived ServerKey.
        let server_signature = hmac(&exchange.credentials.server_key, auth_message.as_bytes());
        assert_eq!(
            STANDARD.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // The RFC's proof is accepted by the proof check; without an account the
        // outcome is still a failure (nobody to log in as).
        let final_message = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let client_signature = hmac(&exchange.credentials.stored_key, auth_message.as_bytes());
        let proof = STANDARD
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(
            Sha256::digest(&client_key).as_slice(),
            exchange.credentials.stored_key
        );
        assert!(matches!(
            exchange.finish(final_message),
            Ok(ScramOutcome::Failure)
        ));
    }

    fn account(enabled: bool) -> Account {
        Account {
            id: 1,
            name: "user@example.org".into(),
            domain_id: 1,
            password_hash: String::new(),
            quota_bytes: 0,
            used_bytes: 0,
            enabled,
            is_admin: false,
            created_at: 0,
        }
    }

    /// What a client computes for the final message (RFC 5802 section 3).
    fn client_final(password: &[u8], exchange: &ScramExchange) -> Vec<u8> {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            password,
            &exchange.credentials.salt,
            exchange.credentials.iterations,
            &mut salted,
        );
        let client_key = hmac(&salted, b"Client Key");
        let without_proof = format!("c=biws,r={}", exchange.nonce);
        let auth_message = format!(
            "{},{},{without_proof}",
            exchange.client_first_bare, exchange.server_first
        );
        let signature = hmac(&Sha256::digest(client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes()
    }

    fn exchange(password: &[u8], enabled: bool) -> ScramExchange {
        let first = parse_client_first(b"n,,n=user@example.org,r=abcdef").unwrap();
        ScramExchange {
            account: Some(account(enabled)),
            credentials: derive(password, b"salt", 4096),
            gs2_header: first.gs2_header,
            client_first_bare: first.bare,
            server_first: "r=abcdefXYZ,s=c2FsdA==,i=4096".into(),
            nonce: "abcdefXYZ".into(),
        }
    }

    #[test]
    fn right_password_succeeds_and_the_server_proves_itself() {
        let ok = exchange(b"pencil", true);
        let message = client_final(b"pencil", &ok);
        let server_key = ok.credentials.server_key.clone();
        let auth_message = format!(
            "{},{},c=biws,r={}",
            ok.client_first_bare, ok.server_first, ok.nonce
        );
        let Ok(ScramOutcome::Success {
            account,
            server_final,
        }) = ok.finish(&message)
        else {
            panic!("the right proof failed")
        };
        assert_eq!(account.id, 1);
        let expected = format!(
            "v={}",
            STANDARD.encode(hmac(&server_key, auth_message.as_bytes()))
        );
        assert_eq!(server_final, expected.into_bytes());

        let wrong = exchange(b"pencil", true);
        let message = client_final(b"crayon", &wrong);
        assert!(matches!(wrong.finish(&message), Ok(ScramOutcome::Failure)));

        let disabled = exchange(b"pencil", false);
        let message = client_final(b"pencil", &disabled);
        assert!(matches!(
            disabled.finish(&message),
            Ok(ScramOutcome::Disabled)
        ));

        // A final message for another nonce or binding is malformed, not a login.
        let other = exchange(b"pencil", true);
        assert!(other.finish(b"c=biws,r=abcdefOTHER,p=AAAA").is_err());
        let other = exchange(b"pencil", true);
        assert!(other.finish(b"c=eSws,r=abcdefXYZ,p=AAAA").is_err());
    }

    #[test]
    fn client_first_forms() {
        let first = parse_client_first(b"y,a=Bob,n=bob,r=abc,ext=1").unwrap();
        assert_eq!(
            (first.username.as_str(), first.nonce.as_str()),
            ("bob", "abc")
        );
        assert_eq!(first.gs2_header, "y,a=Bob,");
        assert_eq!(
            parse_client_first(b"n,,n=a=2Cb=3Dc,r=x").unwrap().username,
            "a,b=c"
        );
        assert_eq!(
            parse_client_first(b"p=tls-unique,,n=u,r=x").err(),
            Some(SaslError::Malformed(CHANNEL_BINDING))
        );
        assert_eq!(
            parse_client_first(b"n,a=root,n=bob,r=x").err(),
            Some(SaslError::AuthzidMismatch)
        );
        for bad in [
            &b"n,,r=x"[..],
            b"n,,n=bob",
            b"n,,n=bob,r=",
            b"n,,m=ext,n=bob,r=x",
            b"x,,n=bob,r=x",
            b"n,,n=b=ob,r=x",
            b"n,,n=,r=x",
            b"\xff",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decoys_are_stable_per_user_and_never_match() {
        assert_eq!(decoy("a@example.org").salt, decoy("a@example.org").salt);
        assert_ne!(decoy("a@example.org").salt, decoy("b@example.org").salt);
        assert_ne!(
            decoy("a@example.org").stored_key,
            decoy("a@example.org").stored_key
        );
    }

    #[tokio::test]
    async fn credentials_are_saslprepped_and_salted() {
        let one = scram_credentials("pencil").await.unwrap().unwrap();
        let two = scram_credentials("pencil").await.unwrap().unwrap();
        assert_eq!(one.iterations, SCRAM_ITERATIONS);
        assert_ne!(one.salt, two.salt);
        // U+00A0 NO-BREAK SPACE maps to a space under SASLprep.
        let prepared = scram_credentials("a\u{a0}b").await.unwrap().unwrap();
        assert_eq!(derive(b"a b", &prepared.salt, 4096), prepared);
        assert_eq!(scram_credentials("bell\u{7}").await.unwrap(), None);
    }
}
