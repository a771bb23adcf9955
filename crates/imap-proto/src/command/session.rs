//! ENABLE (RFC 5161) and ID (RFC 2971): what a session turns on and who the client is.
//!
//! ```text
//! C: t2 ENABLE CONDSTORE QRESYNC
//! C: a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")
//! C: a024 ID NIL
//! ```

use super::CommandBody;
use crate::lexer::{Cursor, PResult, syntax};

/// `enable = "ENABLE" 1*(SP capability)`
pub(crate) fn enable(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mut capabilities = Vec::new();
    loop {
        c.sp()?;
        capabilities.push(c.atom("expected a capability name")?.to_owned());
        if c.at_line_end() {
            return Ok(CommandBody::Enable { capabilities });
        }
    }
}

/// `id = "ID" SP id-params-list`,
/// `id-params-list = "(" [string SP nstring *(SP string SP nstring)] ")" / nil`
pub(crate) fn id(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    if c.try_keyword("NIL") {
        return Ok(CommandBody::Id { parameters: None });
    }
    c.expect(b'(', "expected ( or NIL")?;
    let mut parameters = Vec::new();
    if !c.eat(b')') {
        loop {
            let field = String::from_utf8_lossy(&c.string()?).into_owned();
            c.sp()?;
            let value = c
                .nstring()?
                .map(|v| String::from_utf8_lossy(&v).into_owned());
            parameters.push((field, value));
            if c.eat(b')') {
                break;
            }
            c.sp()
                .map_err(|_| syntax("expected ' ' or ')' in ID parameters"))?;
        }
    }
    Ok(CommandBody::Id {
        parameters: Some(parameters),
    })
}

#[cfg(test)]
mod tests {
    use crate::ErrorKind;
    use crate::command::CommandBody;
    use crate::tests::{body, error_kind};

    #[test]
    fn enable_lists_capabilities() {
        assert_eq!(
            body(b"t2 ENABLE CONDSTORE UTF8=ACCEPT\r\n"),
            CommandBody::Enable {
                capabilities: vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()]
            }
        );
        assert_eq!(error_kind(b"t2 ENABLE\r\n"), ErrorKind::Syntax);
    }

    #[test]
    fn id_parameters_and_nil() {
        assert_eq!(
            body(b"a023 ID (\"name\" \"sodr\" \"version\" NIL)\r\n"),
            CommandBody::Id {
                parameters: Some(vec![
                    ("name".into(), Some("sodr".into())),
                    ("version".into(), None)
                ])
            }
        );
        assert_eq!(
            body(b"a024 ID NIL\r\n"),
            CommandBody::Id { parameters: None }
        );
        assert_eq!(
            body(b"a024 ID ()\r\n"),
            CommandBody::Id {
                parameters: Some(vec![])
            }
        );
        assert_eq!(error_kind(b"a024 ID (\"name\")\r\n"), ErrorKind::Syntax);
    }
}
