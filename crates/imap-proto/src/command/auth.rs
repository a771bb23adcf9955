//! LOGIN and AUTHENTICATE (RFC 9051 sections 6.2.2 and 6.2.3, SASL-IR RFC 4959).
//!
//! ```text
//! C: a001 LOGIN SMITH SESAME
//! C: a002 LOGIN {5+}
//! C: smith {6+}
//! C: sesame
//! C: a003 AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0
//! C: a004 AUTHENTICATE PLAIN
//! S: +
//! C: AGZyZWQAc2VjcmV0
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::CommandBody;
use crate::lexer::{Cursor, PResult, syntax};

/// A password as the client sent it. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// `login = "LOGIN" SP userid SP password`
pub(crate) fn login(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let username = String::from_utf8(c.astring()?.into_owned())
        .map_err(|_| syntax("the user name must be UTF-8"))?;
    c.sp()?;
    let password = Password(c.astring()?.into_owned());
    Ok(CommandBody::Login { username, password })
}

/// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]`,
/// `initial-resp = (base64 / "=")`
pub(crate) fn authenticate(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mechanism = c
        .atom("expected a SASL mechanism name")?
        .to_ascii_uppercase();
    let mut initial_response = None;
    if c.eat(b' ') {
        if c.eat(b'=') {
            initial_response = Some(Vec::new());
        } else {
            let text =
                c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            if text.is_empty() {
                return Err(syntax("expected a base64 initial response or ="));
            }
            let decoded = STANDARD
                .decode(text)
                .map_err(|_| syntax("the initial response is not valid base64"))?;
            initial_response = Some(decoded);
        }
    }
    Ok(CommandBody::Authenticate {
        mechanism,
        initial_response,
    })
}

#[cfg(test)]
mod tests {
    use crate::ErrorKind;
    use crate::command::{CommandBody, Password};
    use crate::tests::{body, error_kind};

    #[test]
    fn login_with_atoms_quoted_strings_and_literals() {
        assert_eq!(
            body(b"a001 LOGIN SMITH SESAME\r\n"),
            CommandBody::Login {
                username: "SMITH".into(),
                password: Password::new("SESAME")
            }
        );
        assert_eq!(
            body(b"a001 LOGIN \"fred smith\" \"p\\\"w\"\r\n"),
            CommandBody::Login {
                username: "fred smith".into(),
                password: Password::new("p\"w")
            }
        );
        assert_eq!(
            body(b"a001 LOGIN {5+}\r\nsmith {6}\r\nses me\r\n"),
            CommandBody::Login {
                username: "smith".into(),
                password: Password::new("ses me")
            }
        );
        assert!(!format!("{:?}", Password::new("secret")).contains("secret"));
    }

    #[test]
    fn authenticate_with_and_without_initial_response() {
        assert_eq!(
            body(b"a AUTHENTICATE plain AGZyZWQAc2VjcmV0\r\n"),
            CommandBody::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: Some(b"\0fred\0secret".to_vec())
            }
        );
        assert_eq!(
            body(b"a AUTHENTICATE EXTERNAL =\r\n"),
            CommandBody::Authenticate {
                mechanism: "EXTERNAL".into(),
                initial_response: Some(vec![])
            }
        );
        assert_eq!(
            body(b"a AUTHENTICATE GSSAPI\r\n"),
            CommandBody::Authenticate {
                mechanism: "GSSAPI".into(),
                initial_response: None
            }
        );
        assert_eq!(
            error_kind(b"a AUTHENTICATE PLAIN AGZy!\r\n"),
            ErrorKind::Syntax
        );
        assert_eq!(error_kind(b"a AUTHENTICATE PLAIN A\r\n"), ErrorKind::Syntax);
    }
}
