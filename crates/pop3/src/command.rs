//! POP3 command lines as typed values (RFC 1939, RFC 2449, RFC 2595, RFC 5034).
//!
//! Parsing is pure: a line (without its CRLF) goes in, a [`Command`] comes out. Lines
//! that are not commands are values too ([`Command::Unknown`], [`Command::Invalid`]),
//! so the session answers them like any other command and nothing here can fail.
//!
//! ```text
//! C: TOP 1 10
//! C: PASS my secret password
//! C: AUTH PLAIN AGFsaWNlAHB3
//! ```

use std::fmt;

/// A message number as the client wrote it (1-based; 0 and numbers past the end of
/// the maildrop parse fine and are refused by the maildrop).
pub type MessageNumber = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `CAPA` (RFC 2449), in either state.
    Capa,
    /// `QUIT`, in either state.
    Quit,
    /// `STLS` (RFC 2595).
    Stls,
    /// `USER name`.
    User(String),
    /// `PASS string`: everything after the first space, spaces included (RFC 1939
    /// section 7 allows a server to take spaces as part of the password).
    Pass(Secret),
    /// `AUTH [mechanism [initial-response]]` (RFC 5034). Without a mechanism the client
    /// asks for the list of mechanisms, as older clients do.
    Auth {
        mechanism: Option<String>,
        initial_response: Option<Secret>,
    },
    Stat,
    List(Option<MessageNumber>),
    Retr(MessageNumber),
    Dele(MessageNumber),
    Noop,
    Rset,
    /// `TOP msg n`: the headers and the first `lines` lines of the body.
    Top {
        message: MessageNumber,
        lines: u64,
    },
    Uidl(Option<MessageNumber>),
    /// A known keyword whose arguments do not fit; carries the usage to show.
    Invalid {
        usage: &'static str,
    },
    /// Not a POP3 command we know.
    Unknown,
}

/// Text that must not reach the logs (a password or a SASL response).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Parses one command line (without CRLF).
pub fn parse(line: &[u8]) -> Command {
    let (keyword, rest) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &[][..]),
    };
    if !(3..=4).contains(&keyword.len()) {
        return Command::Unknown;
    }
    let keyword = keyword.to_ascii_uppercase();
    // PASS keeps its argument whole; every other command has space-separated words.
    if keyword == b"PASS" {
        return match std::str::from_utf8(rest) {
            Ok(password) if !password.is_empty() => Command::Pass(Secret(password.to_owned())),
            _ => Command::Invalid {
                usage: "PASS string",
            },
        };
    }
    let args: Vec<&[u8]> = rest
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .collect();
    match keyword.as_slice() {
        b"CAPA" => no_arguments(&args, Command::Capa, "CAPA"),
        b"QUIT" => no_arguments(&args, Command::Quit, "QUIT"),
        b"STLS" => no_arguments(&args, Command::Stls, "STLS"),
        b"STAT" => no_arguments(&args, Command::Stat, "STAT"),
        b"NOOP" => no_arguments(&args, Command::Noop, "NOOP"),
        b"RSET" => no_arguments(&args, Command::Rset, "RSET"),
        b"USER" => match args.as_slice() {
            [name] => match text(name) {
                Some(name) => Command::User(name),
                None => Command::Invalid { usage: "USER name" },
            },
            _ => Command::Invalid { usage: "USER name" },
        },
        b"AUTH" => auth(&args),
        b"LIST" => optional_number(&args, Command::List, "LIST [msg]"),
        b"UIDL" => optional_number(&args, Command::Uidl, "UIDL [msg]"),
        b"RETR" => match args.as_slice() {
            [n] => number(n).map_or(Command::Invalid { usage: "RETR msg" }, Command::Retr),
            _ => Command::Invalid { usage: "RETR msg" },
        },
        b"DELE" => match args.as_slice() {
            [n] => number(n).map_or(Command::Invalid { usage: "DELE msg" }, Command::Dele),
            _ => Command::Invalid { usage: "DELE msg" },
        },
        b"TOP" => match args.as_slice() {
            [n, k] => match (number(n), number(k)) {
                (Some(message), Some(lines)) => Command::Top { message, lines },
                _ => Command::Invalid { usage: "TOP msg n" },
            },
            _ => Command::Invalid { usage: "TOP msg n" },
        },
        _ => Command::Unknown,
    }
}

fn no_arguments(args: &[&[u8]], command: Command, usage: &'static str) -> Command {
    if args.is_empty() {
        command
    } else {
        Command::Invalid { usage }
    }
}

fn optional_number(
    args: &[&[u8]],
    command: fn(Option<MessageNumber>) -> Command,
    usage: &'static str,
) -> Command {
    match args {
        [] => command(None),
        [n] => number(n).map_or(Command::Invalid { usage }, |n| command(Some(n))),
        _ => Command::Invalid { usage },
    }
}

fn auth(args: &[&[u8]]) -> Command {
    const USAGE: &str = "AUTH mechanism [initial-response]";
    let mut words = Vec::with_capacity(args.len());
    for arg in args {
        match text(arg) {
            Some(word) => words.push(word),
            None => return Command::Invalid { usage: USAGE },
        }
    }
    let mut words = words.into_iter();
    match (words.next(), words.next(), words.next()) {
        (mechanism, initial_response, None) => Command::Auth {
            mechanism: mechanism.map(|m| m.to_ascii_uppercase()),
            initial_response: initial_response.map(Secret),
        },
        _ => Command::Invalid { usage: USAGE },
    }
}

/// Printable ASCII (RFC 1939 section 3) or UTF-8: user names may be internationalised.
fn text(word: &[u8]) -> Option<String> {
    let word = std::str::from_utf8(word).ok()?;
    (!word.chars().any(char::is_control)).then(|| word.to_owned())
}

/// A decimal number: digits only, no sign, at most 19 digits so it fits a u64.
fn number(word: &[u8]) -> Option<u64> {
    if word.is_empty() || word.len() > 19 || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1939_examples_parse() {
        assert_eq!(parse(b"USER mrose"), Command::User("mrose".into()));
        assert_eq!(
            parse(b"PASS secret"),
            Command::Pass(Secret("secret".into()))
        );
        assert_eq!(parse(b"STAT"), Command::Stat);
        assert_eq!(parse(b"LIST"), Command::List(None));
        assert_eq!(parse(b"LIST 2"), Command::List(Some(2)));
        assert_eq!(parse(b"RETR 1"), Command::Retr(1));
        assert_eq!(parse(b"DELE 1"), Command::Dele(1));
        assert_eq!(parse(b"NOOP"), Command::Noop);
        assert_eq!(parse(b"RSET"), Command::Rset);
        assert_eq!(
            parse(b"TOP 1 10"),
            Command::Top {
                message: 1,
                lines: 10
            }
        );
        assert_eq!(parse(b"UIDL"), Command::Uidl(None));
        assert_eq!(parse(b"UIDL 2"), Command::Uidl(Some(2)));
        assert_eq!(parse(b"QUIT"), Command::Quit);
    }

    #[test]
    fn extension_commands_parse() {
        assert_eq!(parse(b"CAPA"), Command::Capa);
        assert_eq!(parse(b"STLS"), Command::Stls);
        assert_eq!(
            parse(b"AUTH"),
            Command::Auth {
                mechanism: None,
                initial_response: None
            }
        );
        assert_eq!(
            parse(b"AUTH plain"),
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: None
            }
        );
        assert_eq!(
            parse(b"AUTH PLAIN AGFsaWNlAHB3"),
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some(Secret("AGFsaWNlAHB3".into())),
            }
        );
        assert_eq!(
            parse(b"AUTH PLAIN ="),
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some(Secret("=".into()))
            }
        );
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(parse(b"stat"), Command::Stat);
        assert_eq!(parse(b"Retr 3"), Command::Retr(3));
        assert_eq!(parse(b"uSeR bob"), Command::User("bob".into()));
    }

    #[test]
    fn pass_keeps_spaces_in_the_password() {
        assert_eq!(
            parse(b"PASS  two  spaces "),
            Command::Pass(Secret(" two  spaces ".into()))
        );
        assert_eq!(
            parse(b"PASS"),
            Command::Invalid {
                usage: "PASS string"
            }
        );
        assert_eq!(
            parse(b"PASS "),
            Command::Invalid {
                usage: "PASS string"
            }
        );
        assert_eq!(
            parse(b"PASS \xff\xfe"),
            Command::Invalid {
                usage: "PASS string"
            }
        );
    }

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let debug = format!("{:?}", parse(b"PASS hunter2"));
        assert!(!debug.contains("hunter2"), "{debug}");
        let debug = format!("{:?}", parse(b"AUTH PLAIN AGFsaWNlAHB3"));
        assert!(!debug.contains("AGFsaWNlAHB3"), "{debug}");
    }

    #[test]
    fn trailing_and_repeated_spaces_are_tolerated() {
        assert_eq!(parse(b"STAT "), Command::Stat);
        assert_eq!(
            parse(b"TOP  1   0 "),
            Command::Top {
                message: 1,
                lines: 0
            }
        );
    }

    #[test]
    fn bad_arguments_are_invalid_commands() {
        assert_eq!(parse(b"RETR"), Command::Invalid { usage: "RETR msg" });
        assert_eq!(parse(b"RETR x"), Command::Invalid { usage: "RETR msg" });
        assert_eq!(parse(b"RETR -1"), Command::Invalid { usage: "RETR msg" });
        assert_eq!(parse(b"RETR +1"), Command::Invalid { usage: "RETR msg" });
        assert_eq!(parse(b"RETR 1 2"), Command::Invalid { usage: "RETR msg" });
        assert_eq!(parse(b"DELE"), Command::Invalid { usage: "DELE msg" });
        assert_eq!(parse(b"TOP 1"), Command::Invalid { usage: "TOP msg n" });
        assert_eq!(parse(b"TOP 1 x"), Command::Invalid { usage: "TOP msg n" });
        assert_eq!(
            parse(b"LIST 1 2"),
            Command::Invalid {
                usage: "LIST [msg]"
            }
        );
        assert_eq!(
            parse(b"UIDL a"),
            Command::Invalid {
                usage: "UIDL [msg]"
            }
        );
        assert_eq!(parse(b"STAT 1"), Command::Invalid { usage: "STAT" });
        assert_eq!(parse(b"QUIT now"), Command::Invalid { usage: "QUIT" });
        assert_eq!(parse(b"USER"), Command::Invalid { usage: "USER name" });
        assert_eq!(parse(b"USER a b"), Command::Invalid { usage: "USER name" });
        assert_eq!(parse(b"USER \x01"), Command::Invalid { usage: "USER name" });
        assert_eq!(
            parse(b"AUTH PLAIN a b"),
            Command::Invalid {
                usage: "AUTH mechanism [initial-response]"
            }
        );
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        assert_eq!(
            parse(b"RETR 18446744073709551615"),
            Command::Invalid { usage: "RETR msg" }
        );
        assert_eq!(
            parse(b"RETR 9999999999999999999"),
            Command::Retr(9_999_999_999_999_999_999)
        );
        assert_eq!(parse(b"RETR 0"), Command::Retr(0));
    }

    #[test]
    fn anything_else_is_unknown() {
        assert_eq!(parse(b""), Command::Unknown);
        assert_eq!(parse(b" STAT"), Command::Unknown);
        assert_eq!(
            parse(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
            Command::Unknown
        );
        assert_eq!(parse(b"HELO"), Command::Unknown);
        assert_eq!(parse(b"STATS"), Command::Unknown);
        assert_eq!(parse(b"\xff\xfe\xfd"), Command::Unknown);
        assert_eq!(parse(b"\0\0\0\0 1"), Command::Unknown);
    }
}
