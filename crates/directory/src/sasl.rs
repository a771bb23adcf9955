//! SASL mechanisms shared by SMTP AUTH, POP3 AUTH and IMAP AUTHENTICATE: decoding only;
//! the protocols own the exchange.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SaslError {
    #[error("invalid base64")]
    InvalidBase64,
    #[error("malformed {0} response")]
    Malformed(&'static str),
    #[error("authorization identity differs from the user")]
    AuthzidMismatch,
    #[error("authentication cancelled")]
    Cancelled,
}

/// A user name and password from PLAIN or LOGIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Decodes a base64 client response. `*` alone means the client cancelled (RFC 4954,
/// RFC 5034). An empty response decodes to nothing.
pub fn decode_response(text: &str) -> Result<Vec<u8>, SaslError> {
    let text = text.trim_end();
    if text == "*" {
        return Err(SaslError::Cancelled);
    }
    if text == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(text).map_err(|_| SaslError::InvalidBase64)
}

pub fn encode_challenge(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`. An authorization identity other
/// than the user itself is refused: nobody here may act as someone else.
pub fn decode_plain(response: &str) -> Result<Credentials, SaslError> {
    parse_plain(&decode_response(response)?)
}

/// PLAIN from the decoded octets (IMAP's parser decodes a SASL-IR initial response
/// itself).
pub fn parse_plain(bytes: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = bytes.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed("PLAIN"));
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed("PLAIN"));
    let (authzid, username, password) = (text(authzid)?, text(authcid)?, text(password)?);
    if username.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed("PLAIN"));
    }
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(&username) {
        return Err(SaslError::AuthzidMismatch);
    }
    Ok(Credentials { username, password })
}

/// One step of LOGIN: the base64 user name or password, as text.
pub fn decode_login_step(response: &str) -> Result<String, SaslError> {
    let bytes = decode_response(response)?;
    String::from_utf8(bytes).map_err(|_| SaslError::Malformed("LOGIN"))
}

/// The challenges LOGIN sends, base64 of "Username:" and "Password:".
pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decodes_user_and_password() {
        // "\0alice@example.org\0secret"
        let response = STANDARD.encode(b"\0alice@example.org\0secret");
        assert_eq!(
            decode_plain(&response).unwrap(),
            Credentials {
                username: "alice@example.org".into(),
                password: "secret".into()
            }
        );
        let same = STANDARD.encode(b"alice@example.org\0alice@example.org\0secret");
        assert!(decode_plain(&same).is_ok());
    }

    #[test]
    fn plain_refuses_bad_input() {
        assert_eq!(decode_plain("!!!not base64"), Err(SaslError::InvalidBase64));
        assert_eq!(
            decode_plain(&STANDARD.encode(b"no separators")),
            Err(SaslError::Malformed("PLAIN"))
        );
        assert_eq!(
            decode_plain(&STANDARD.encode(b"\0\0")),
            Err(SaslError::Malformed("PLAIN"))
        );
        assert_eq!(
            decode_plain(&STANDARD.encode(b"a\0b\0c\0d")),
            Err(SaslError::Malformed("PLAIN"))
        );
        assert_eq!(
            decode_plain(&STANDARD.encode(b"root\0alice\0pw")),
            Err(SaslError::AuthzidMismatch)
        );
        assert_eq!(decode_plain("*"), Err(SaslError::Cancelled));
    }

    #[test]
    fn login_steps_decode() {
        assert_eq!(
            STANDARD.decode(LOGIN_USERNAME_CHALLENGE).unwrap(),
            b"Username:"
        );
        assert_eq!(
            STANDARD.decode(LOGIN_PASSWORD_CHALLENGE).unwrap(),
            b"Password:"
        );
        assert_eq!(decode_login_step(&STANDARD.encode("bob")).unwrap(), "bob");
        assert_eq!(decode_login_step("%%%"), Err(SaslError::InvalidBase64));
    }
}
