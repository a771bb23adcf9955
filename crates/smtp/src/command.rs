//! Command lines to typed commands, with no I/O: smtp-proto recognises the verb and
//! the ESMTP parameters; envelope addresses are parsed by
//! [`postcell_directory::Address`], the same rules the directory looks them up by.
//!
//! Why the address is not taken from smtp-proto: its path grammar drops the quotes of
//! a quoted local part (`"a@b"@example.org` would come out as `a@b@example.org`) and
//! refuses address literals, while the relay checks must see the address exactly as
//! the directory does. So [`parse`] cuts the `<path>` out of a MAIL or RCPT line
//! itself, hands smtp-proto the line with a placeholder path to parse the verb and
//! the parameters, and parses the path with `Address`.

use std::borrow::Cow;

use postcell_directory::Address;
use smtp_proto::{Error as ProtoError, Request};

use crate::reply::{self, Reply};

/// One SMTP command.
///
/// ```text
/// MAIL FROM:<alice@example.org> SIZE=1024 BODY=8BITMIME
/// RCPT TO:<@relay.example:bob@example.org>
/// AUTH PLAIN AGFsaWNlAHNlY3JldA==
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo {
        host: String,
    },
    Ehlo {
        host: String,
    },
    Mail(MailFrom),
    Rcpt(RcptTo),
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    StartTls,
    Auth {
        mechanism: Mechanism,
        initial_response: Option<String>,
    },
    /// A command RFC 5321 or an extension defines that we do not offer (EXPN, BDAT...).
    NotImplemented(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    /// `None` for the null reverse-path `<>` (bounces).
    pub sender: Option<Address>,
    /// The `SIZE=` the client declared (RFC 1870), if any.
    pub size: Option<usize>,
    /// `BODY=8BITMIME` (RFC 6152).
    pub eight_bit: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    pub recipient: Address,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    /// Any other SASL mechanism: we offer none.
    Other,
}

/// Why a command line was refused; [`CommandError::reply`] says how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    Nul,
    Unrecognized,
    Syntax(&'static str),
    BadSender,
    BadRecipient,
    InvalidParameter(String),
    UnsupportedParameter(String),
}

impl CommandError {
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Nul => reply::NUL_CHARACTER,
            CommandError::Unrecognized => reply::UNRECOGNIZED,
            CommandError::Syntax(grammar) => reply::syntax(grammar),
            CommandError::BadSender => reply::BAD_SENDER,
            CommandError::BadRecipient => reply::BAD_RECIPIENT,
            CommandError::InvalidParameter(name) => reply::invalid_parameter(name),
            CommandError::UnsupportedParameter(name) => reply::unsupported_parameter(name),
        }
    }
}

/// A path that smtp-proto accepts, put where the client's path was.
const PLACEHOLDER_PATH: &[u8] = b"placeholder@postcell.invalid";

/// Parses one command line, without its line ending.
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    if line.contains(&0) {
        return Err(CommandError::Nul);
    }
    let verb = line
        .split(|b| b.is_ascii_whitespace())
        .find(|word| !word.is_empty())
        .unwrap_or_default();
    if verb.eq_ignore_ascii_case(b"MAIL") {
        return parse_envelope_command(line, "MAIL FROM:<reverse-path> [parameters]");
    }
    if verb.eq_ignore_ascii_case(b"RCPT") {
        return parse_envelope_command(line, "RCPT TO:<forward-path> [parameters]");
    }
    let mut framed = line.to_vec();
    framed.push(b'\n');
    let request = Request::parse(&mut framed.iter()).map_err(proto_error)?;
    Ok(match request {
        Request::Helo { host } => Command::Helo {
            host: host.into_owned(),
        },
        Request::Ehlo { host } => Command::Ehlo {
            host: host.into_owned(),
        },
        Request::Data => Command::Data,
        Request::Rset => Command::Rset,
        Request::Noop { .. } => Command::Noop,
        Request::Quit => Command::Quit,
        Request::Vrfy { .. } => Command::Vrfy,
        Request::Help { .. } => Command::Help,
        Request::StartTls => Command::StartTls,
        Request::Auth {
            mechanism,
            initial_response,
        } => Command::Auth {
            mechanism: match mechanism {
                smtp_proto::AUTH_PLAIN => Mechanism::Plain,
                smtp_proto::AUTH_LOGIN => Mechanism::Login,
                _ => Mechanism::Other,
            },
            initial_response: Some(initial_response.into_owned()).filter(|r| !r.is_empty()),
        },
        Request::Expn { .. } => Command::NotImplemented("EXPN"),
        Request::Etrn { .. } => Command::NotImplemented("ETRN"),
        Request::Atrn { .. } => Command::NotImplemented("ATRN"),
        Request::Burl { .. } => Command::NotImplemented("BURL"),
        Request::Bdat { .. } => Command::NotImplemented("BDAT"),
        Request::Lhlo { .. } => Command::NotImplemented("LHLO"),
        // Handled above; smtp-proto cannot return them for other verbs.
        Request::Mail { .. } | Request::Rcpt { .. } => return Err(CommandError::Unrecognized),
    })
}

/// MAIL or RCPT; `grammar` is smtp-proto's wording of the command's syntax.
fn parse_envelope_command(line: &[u8], grammar: &'static str) -> Result<Command, CommandError> {
    let (open, close) = find_path(line).ok_or(CommandError::Syntax(grammar))?;
    let path = std::str::from_utf8(&line[open + 1..close]);
    let mut framed = Vec::with_capacity(line.len() + PLACEHOLDER_PATH.len());
    framed.extend_from_slice(&line[..=open]);
    if path != Ok("") {
        framed.extend_from_slice(PLACEHOLDER_PATH);
    }
    framed.extend_from_slice(&line[close..]);
    framed.push(b'\n');
    let request = Request::parse(&mut framed.iter()).map_err(proto_error)?;
    match request {
        Request::Mail { from } => {
            check_mail_parameters(&from)?;
            let sender = match path {
                Ok("") => None,
                Ok(text) => Some(Address::parse(text).map_err(|_| CommandError::BadSender)?),
                Err(_) => return Err(CommandError::BadSender),
            };
            Ok(Command::Mail(MailFrom {
                sender,
                size: Some(from.size).filter(|&size| size > 0),
                eight_bit: from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0,
                smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
            }))
        }
        Request::Rcpt { to } => {
            check_rcpt_parameters(&to)?;
            let recipient = path
                .ok()
                .filter(|text| !text.is_empty())
                .and_then(|text| Address::parse(text).ok())
                .ok_or(CommandError::BadRecipient)?;
            Ok(Command::Rcpt(RcptTo { recipient }))
        }
        _ => Err(CommandError::Unrecognized),
    }
}

/// The positions of `<` and of the `>` that closes it, outside any quoted string.
fn find_path(line: &[u8]) -> Option<(usize, usize)> {
    let open = line.iter().position(|&b| b == b'<')?;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in line.iter().enumerate().skip(open + 1) {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'>' if !in_quotes => return Some((open, i)),
            _ => {}
        }
    }
    None
}

/// Refuses parameters of extensions smtp-proto knows but we do not offer (RFC 5321
/// 4.1.1.11: 555). `AUTH=` (RFC 4954) is accepted and ignored.
fn check_mail_parameters(from: &smtp_proto::MailFrom<Cow<'_, str>>) -> Result<(), CommandError> {
    use smtp_proto::*;
    let unsupported = |name: &str| Err(CommandError::UnsupportedParameter(name.to_owned()));
    if from.flags & MAIL_BODY_BINARYMIME != 0 {
        return unsupported("BODY=BINARYMIME");
    }
    if from.flags & (MAIL_RET_FULL | MAIL_RET_HDRS) != 0 {
        return unsupported("RET");
    }
    if from.env_id.is_some() {
        return unsupported("ENVID");
    }
    if from.flags & MAIL_REQUIRETLS != 0 {
        return unsupported("REQUIRETLS");
    }
    if from.flags & MAIL_CONPERM != 0 {
        return unsupported("CONPERM");
    }
    if from.by != 0 || from.flags & (MAIL_BY_NOTIFY | MAIL_BY_RETURN | MAIL_BY_TRACE) != 0 {
        return unsupported("BY");
    }
    if from.hold_for != 0 {
        return unsupported("HOLDFOR");
    }
    if from.hold_until != 0 {
        return unsupported("HOLDUNTIL");
    }
    if from.trans_id.is_some() {
        return unsupported("TRANSID");
    }
    if from.solicit.is_some() {
        return unsupported("SOLICIT");
    }
    if from.mtrk.is_some() {
        return unsupported("MTRK");
    }
    if from.mt_priority != 0 {
        return unsupported("MT-PRIORITY");
    }
    Ok(())
}

/// No RCPT parameter is offered (no DSN, RRVS or CONNEG).
fn check_rcpt_parameters(to: &smtp_proto::RcptTo<Cow<'_, str>>) -> Result<(), CommandError> {
    use smtp_proto::*;
    let unsupported = |name: &str| Err(CommandError::UnsupportedParameter(name.to_owned()));
    if to.flags
        & (RCPT_NOTIFY_NEVER | RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_DELAY)
        != 0
    {
        return unsupported("NOTIFY");
    }
    if to.orcpt.is_some() {
        return unsupported("ORCPT");
    }
    if to.rrvs != 0 || to.flags & (RCPT_RRVS_REJECT | RCPT_RRVS_CONTINUE) != 0 {
        return unsupported("RRVS");
    }
    if to.flags & RCPT_CONNEG != 0 {
        return unsupported("CONNEG");
    }
    Ok(())
}

fn proto_error(error: ProtoError) -> CommandError {
    match error {
        ProtoError::UnknownCommand => CommandError::Unrecognized,
        ProtoError::SyntaxError { syntax } => CommandError::Syntax(syntax),
        ProtoError::InvalidSenderAddress => CommandError::BadSender,
        ProtoError::InvalidRecipientAddress => CommandError::BadRecipient,
        ProtoError::InvalidParameter { param } => CommandError::InvalidParameter(param.to_owned()),
        ProtoError::UnsupportedParameter { param } => CommandError::UnsupportedParameter(param),
        // The line always ends in LF, so the parser cannot run short of data; whatever
        // else it reports is a line it could not make sense of.
        ProtoError::NeedsMoreData { .. }
        | ProtoError::ResponseTooLong
        | ProtoError::InvalidResponse { .. } => CommandError::Unrecognized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Address {
        Address::parse(text).unwrap()
    }

    fn mail(line: &str) -> MailFrom {
        match parse(line.as_bytes()) {
            Ok(Command::Mail(from)) => from,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn rcpt(line: &str) -> Result<Address, CommandError> {
        match parse(line.as_bytes())? {
            Command::Rcpt(to) => Ok(to.recipient),
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn simple_commands_ignore_case() {
        assert_eq!(
            parse(b"ehlo client.example.net"),
            Ok(Command::Ehlo {
                host: "client.example.net".into()
            })
        );
        assert_eq!(
            parse(b"HELO [192.0.2.1]"),
            Ok(Command::Helo {
                host: "[192.0.2.1]".into()
            })
        );
        assert_eq!(parse(b"Data"), Ok(Command::Data));
        assert_eq!(parse(b"RSET"), Ok(Command::Rset));
        assert_eq!(parse(b"NOOP anything"), Ok(Command::Noop));
        assert_eq!(parse(b"QUIT"), Ok(Command::Quit));
        assert_eq!(parse(b"VRFY bob"), Ok(Command::Vrfy));
        assert_eq!(parse(b"HELP"), Ok(Command::Help));
        assert_eq!(parse(b"STARTTLS"), Ok(Command::StartTls));
        assert_eq!(parse(b"EXPN staff"), Ok(Command::NotImplemented("EXPN")));
        assert_eq!(parse(b"BDAT 100 LAST"), Ok(Command::NotImplemented("BDAT")));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(parse(b"FOO bar"), Err(CommandError::Unrecognized));
        assert_eq!(parse(b""), Err(CommandError::Unrecognized));
        assert_eq!(
            parse(b"MAILX FROM:<a@b.org>"),
            Err(CommandError::Unrecognized)
        );
        assert_eq!(parse(b"HELO"), Err(CommandError::Syntax("HELO domain")));
        assert_eq!(parse(b"EHLO"), Err(CommandError::Syntax("EHLO domain")));
        assert_eq!(parse(b"NOOP\0"), Err(CommandError::Nul));
        assert_eq!(
            parse(b"MAIL FROM:alice@example.org"),
            Err(CommandError::Syntax(
                "MAIL FROM:<reverse-path> [parameters]"
            ))
        );
        assert_eq!(
            parse(b"MAIL TO:<alice@example.org>"),
            Err(CommandError::Syntax(
                "MAIL FROM:<reverse-path> [parameters]"
            ))
        );
        assert_eq!(
            parse(b"RCPT TO:<bob@example.org"),
            Err(CommandError::Syntax("RCPT TO:<forward-path> [parameters]"))
        );
        assert_eq!(
            parse(b"MAIL FROM:<not an address>"),
            Err(CommandError::BadSender)
        );
        assert_eq!(
            parse(b"MAIL FROM:<a..b@example.org>"),
            Err(CommandError::BadSender)
        );
        assert_eq!(rcpt("RCPT TO:<>"), Err(CommandError::BadRecipient));
        assert_eq!(rcpt("RCPT TO:<bob>"), Err(CommandError::BadRecipient));
        assert_eq!(
            rcpt("RCPT TO:<a@b@example.org>"),
            Err(CommandError::BadRecipient)
        );
    }

    #[test]
    fn mail_from_reads_its_parameters() {
        let from = mail("MAIL FROM:<alice@example.org> SIZE=1024 BODY=8BITMIME SMTPUTF8");
        assert_eq!(from.sender, Some(address("alice@example.org")));
        assert_eq!(from.size, Some(1024));
        assert!(from.eight_bit && from.smtputf8);
        let plain = mail("mail from: <alice@example.org>");
        assert_eq!(
            (plain.size, plain.eight_bit, plain.smtputf8),
            (None, false, false)
        );
        assert_eq!(mail("MAIL FROM:<> SIZE=10").sender, None);
        assert_eq!(
            mail("MAIL FROM:<alice@example.org> AUTH=<>").sender,
            Some(address("alice@example.org"))
        );
        assert_eq!(
            mail("MAIL FROM:<山田@例え.jp> SMTPUTF8").sender,
            Some(address("山田@例え.jp"))
        );
    }

    #[test]
    fn parameters_we_do_not_offer_are_refused() {
        let unsupported = |name: &str| Err(CommandError::UnsupportedParameter(name.into()));
        assert_eq!(
            parse(b"MAIL FROM:<a@example.org> BODY=BINARYMIME"),
            unsupported("BODY=BINARYMIME")
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@example.org> RET=FULL"),
            unsupported("RET")
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@example.org> REQUIRETLS"),
            unsupported("REQUIRETLS")
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@example.org> XFOO=1"),
            unsupported("XFOO=1")
        );
        assert_eq!(
            parse(b"RCPT TO:<b@example.org> NOTIFY=NEVER"),
            unsupported("NOTIFY")
        );
        assert_eq!(
            parse(b"RCPT TO:<b@example.org> ORCPT=rfc822;b@example.org"),
            unsupported("ORCPT")
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@example.org> SIZE=big"),
            Err(CommandError::InvalidParameter("SIZE".into()))
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@example.org> BODY=9BIT"),
            Err(CommandError::InvalidParameter("BODY".into()))
        );
    }

    #[test]
    fn recipients_keep_what_relay_checks_need_to_see() {
        // Source routes are dropped (RFC 5321 4.1.1.3).
        assert_eq!(
            rcpt("RCPT TO:<@relay.example:bob@example.org>"),
            Ok(address("bob@example.org"))
        );
        // A quoted local part keeps its @: the domain is the one after the quotes.
        let quoted = rcpt("RCPT TO:<\"bob@other.net\"@example.org>").unwrap();
        assert_eq!(
            (quoted.local_part(), quoted.domain()),
            ("bob@other.net", "example.org")
        );
        let tricky = rcpt("RCPT TO:<\"a>b\"@example.org>").unwrap();
        assert_eq!(tricky.local_part(), "a>b");
        // The percent hack stays a local part of our domain.
        assert_eq!(
            rcpt("RCPT TO:<bob%other.net@example.org>")
                .unwrap()
                .domain(),
            "example.org"
        );
        // Address literals are addresses (that resolve as not local).
        assert!(
            rcpt("RCPT TO:<root@[192.0.2.1]>")
                .unwrap()
                .is_address_literal()
        );
    }

    #[test]
    fn auth_names_its_mechanism_and_initial_response() {
        assert_eq!(
            parse(b"AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
            Ok(Command::Auth {
                mechanism: Mechanism::Plain,
                initial_response: Some("AGFsaWNlAHNlY3JldA==".into())
            })
        );
        assert_eq!(
            parse(b"auth login"),
            Ok(Command::Auth {
                mechanism: Mechanism::Login,
                initial_response: None
            })
        );
        assert_eq!(
            parse(b"AUTH CRAM-MD5"),
            Ok(Command::Auth {
                mechanism: Mechanism::Other,
                initial_response: None
            })
        );
        assert_eq!(
            parse(b"AUTH"),
            Err(CommandError::Syntax("AUTH mechanism [initial-response]"))
        );
    }
}
