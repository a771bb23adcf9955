//! The client side of the examples of RFC 9051 section 6, fed to a `CommandReader` as a
//! session would: line by line, answering continuation requests, reading IDLE's `DONE`
//! and AUTHENTICATE's responses as raw lines.

use std::num::NonZeroU32;

use postcell_imap_proto::command::{
    AppendCommand, FetchAttribute, FetchCommand, FetchItems, SearchCommand, SearchKey,
    SearchReturnOptions, Section, SectionText, StoreAction,
};
use postcell_imap_proto::response::Continuation;
use postcell_imap_proto::{
    CommandBody, CommandReader, Date, ErrorKind, Flag, MailboxName, MessageSet, Password, Progress,
    SequenceSet,
};

/// A server's view of one connection: what the client sent, and what the reader made
/// of it.
struct Server {
    reader: CommandReader,
}

impl Server {
    fn new() -> Self {
        Self {
            reader: CommandReader::default(),
        }
    }

    /// `C: line` (CRLF added); returns the command it completes, if any.
    fn client(&mut self, line: &str) -> Option<(String, CommandBody)> {
        self.client_bytes(line.as_bytes())
    }

    fn client_bytes(&mut self, line: &[u8]) -> Option<(String, CommandBody)> {
        self.reader.feed(line);
        self.reader.feed(b"\r\n");
        match self.reader.read_command().expect("a valid command") {
            Progress::Command(command) => Some((command.tag, command.body)),
            Progress::NeedMore => None,
            Progress::NeedContinuation { literal_size } => {
                panic!("unexpected literal of {literal_size}")
            }
        }
    }

    /// `C: line` that ends with a synchronizing literal: the reader asks for it, and
    /// this returns the `+` line the server sends.
    fn client_literal(&mut self, line: &str, size: u64) -> Vec<u8> {
        self.reader.feed(line.as_bytes());
        self.reader.feed(b"\r\n");
        assert_eq!(
            self.reader.read_command(),
            Ok(Progress::NeedContinuation { literal_size: size })
        );
        assert_eq!(self.reader.read_command(), Ok(Progress::NeedMore));
        Continuation::ready().to_bytes()
    }

    /// A line the session reads itself (IDLE's DONE, a SASL response).
    fn raw_line(&mut self, line: &str) -> Vec<u8> {
        self.reader.feed(line.as_bytes());
        self.reader.feed(b"\r\n");
        self.reader
            .read_line()
            .expect("a line")
            .expect("a whole line")
    }
}

fn command(line: &str) -> (String, CommandBody) {
    Server::new().client(line).expect("a whole command")
}

fn body(line: &str) -> CommandBody {
    command(line).1
}

fn mailbox(name: &str) -> MailboxName {
    MailboxName::new(name)
}

fn set(text: &str) -> MessageSet {
    let CommandBody::Fetch(fetch) = body(&format!("x FETCH {text} FLAGS")) else {
        panic!()
    };
    fetch.set
}

#[test]
fn section_6_1_any_state() {
    assert_eq!(
        command("abcd CAPABILITY"),
        ("abcd".into(), CommandBody::Capability)
    );
    assert_eq!(command("a002 NOOP"), ("a002".into(), CommandBody::Noop));
    assert_eq!(command("A023 LOGOUT"), ("A023".into(), CommandBody::Logout));
}

#[test]
fn section_6_2_not_authenticated() {
    // 6.2.1 STARTTLS: after it, anything pipelined in plaintext is thrown away.
    let mut server = Server::new();
    assert_eq!(
        server.client("a002 STARTTLS"),
        Some(("a002".into(), CommandBody::StartTls))
    );
    server.reader.feed(b"a003 LOGIN injected\r\n");
    server.reader.reset();
    assert_eq!(server.reader.read_command(), Ok(Progress::NeedMore));

    // 6.2.2 AUTHENTICATE, with the client's responses read as raw lines.
    let mut server = Server::new();
    assert_eq!(
        server.client("A001 AUTHENTICATE GSSAPI"),
        Some((
            "A001".into(),
            CommandBody::Authenticate {
                mechanism: "GSSAPI".into(),
                initial_response: None
            }
        ))
    );
    assert_eq!(server.raw_line("YIIB+wYJKoZIhvcSAQICAQBuggHqMIIB5qADAgEFoQMCAQ6iBwMFACAAAACjggEmYYIBIjCCAR6gAwIBBaESGxB1"),
        b"YIIB+wYJKoZIhvcSAQICAQBuggHqMIIB5qADAgEFoQMCAQ6iBwMFACAAAACjggEmYYIBIjCCAR6gAwIBBaESGxB1");
    assert_eq!(server.raw_line(""), b"");
    assert_eq!(
        server.client("A002 NOOP"),
        Some(("A002".into(), CommandBody::Noop))
    );

    // 6.2.3 LOGIN.
    assert_eq!(
        body("a001 LOGIN SMITH SESAME"),
        CommandBody::Login {
            username: "SMITH".into(),
            password: Password::new("SESAME")
        }
    );
}

#[test]
fn section_6_3_authenticated() {
    assert_eq!(
        body("t2 ENABLE CONDSTORE X-GOOD-IDEA"),
        CommandBody::Enable {
            capabilities: vec!["CONDSTORE".into(), "X-GOOD-IDEA".into()]
        }
    );
    assert_eq!(
        body("A142 SELECT INBOX"),
        CommandBody::Select {
            mailbox: mailbox("INBOX"),
            parameters: Default::default()
        }
    );
    assert_eq!(
        body("A932 EXAMINE blurdybloop"),
        CommandBody::Examine {
            mailbox: mailbox("blurdybloop"),
            parameters: Default::default()
        }
    );
    assert_eq!(
        body("A003 CREATE owatagusiam/"),
        CommandBody::Create {
            mailbox: mailbox("owatagusiam/"),
            special_use: vec![]
        }
    );
    assert_eq!(
        body("A683 DELETE blurdybloop"),
        CommandBody::Delete {
            mailbox: mailbox("blurdybloop")
        }
    );
    assert_eq!(
        body("A684 RENAME foo zowie"),
        CommandBody::Rename {
            from: mailbox("foo"),
            to: mailbox("zowie")
        }
    );
    assert_eq!(
        body("A002 SUBSCRIBE #news.comp.mail.mime"),
        CommandBody::Subscribe {
            mailbox: mailbox("#news.comp.mail.mime")
        }
    );
    assert_eq!(
        body("A002 UNSUBSCRIBE #news.comp.mail.mime"),
        CommandBody::Unsubscribe {
            mailbox: mailbox("#news.comp.mail.mime")
        }
    );
    assert_eq!(body("A001 NAMESPACE"), CommandBody::Namespace);
    assert!(matches!(
        body("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
        CommandBody::Status { .. }
    ));
}

#[test]
fn section_6_3_9_list_examples() {
    for (line, extended, patterns) in [
        ("A101 LIST \"\" \"\"", false, vec![""]),
        ("A102 LIST #news.comp.mail.misc \"\"", false, vec![""]),
        ("A103 LIST /usr/staff/jones \"\"", false, vec![""]),
        ("A202 LIST ~/Mail/ %", false, vec!["%"]),
        ("A02 LIST (SUBSCRIBED) \"\" \"*\"", true, vec!["*"]),
        ("A03 LIST () \"\" \"%\" RETURN (CHILDREN)", true, vec!["%"]),
        (
            "A04 LIST (REMOTE) \"\" \"%\" RETURN (CHILDREN)",
            true,
            vec!["%"],
        ),
        ("A05 LIST (REMOTE SUBSCRIBED) \"\" \"*\"", true, vec!["*"]),
        (
            "A06 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"",
            true,
            vec!["%"],
        ),
        (
            "C04 LIST () \"\" (\"foo\" \"foo/*\")",
            true,
            vec!["foo", "foo/*"],
        ),
        (
            "B06 LIST \"\" \"%\" RETURN (STATUS (MESSAGES UNSEEN))",
            true,
            vec!["%"],
        ),
    ] {
        let CommandBody::List(list) = body(line) else {
            panic!("{line}")
        };
        assert_eq!(list.extended, extended, "{line}");
        assert_eq!(list.patterns, patterns, "{line}");
    }
}

#[test]
fn section_6_3_12_append_with_a_synchronizing_literal() {
    let message = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
    assert_eq!(message.len(), 326);
    let mut server = Server::new();
    assert_eq!(
        server.client_literal("A003 APPEND saved-messages (\\Seen) {326}", 326),
        b"+ Ready for literal data\r\n"
    );
    for line in message.split_inclusive("\r\n") {
        server.reader.feed(line.as_bytes());
        assert_eq!(server.reader.read_command(), Ok(Progress::NeedMore));
    }
    // The CRLF that ends the command, after the literal.
    let got = server.client("");
    let (
        tag,
        CommandBody::Append(AppendCommand {
            mailbox: name,
            flags,
            date,
            message: data,
            binary,
        }),
    ) = got.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (tag.as_str(), name, flags, date, binary),
        (
            "A003",
            mailbox("saved-messages"),
            vec![Flag::Seen],
            None,
            false
        )
    );
    assert_eq!(data, message.as_bytes());
}

#[test]
fn section_6_3_13_idle_and_done() {
    let mut server = Server::new();
    assert_eq!(
        server.client("A001 IDLE"),
        Some(("A001".into(), CommandBody::Idle))
    );
    assert_eq!(
        Continuation::Text("idling".into()).to_bytes(),
        b"+ idling\r\n"
    );
    assert_eq!(server.raw_line("DONE"), b"DONE");
    assert_eq!(
        server.client("A002 NOOP"),
        Some(("A002".into(), CommandBody::Noop))
    );
}

#[test]
fn section_6_4_selected() {
    assert_eq!(body("A341 CLOSE"), CommandBody::Close);
    assert_eq!(body("A342 UNSELECT"), CommandBody::Unselect);
    assert_eq!(body("A202 EXPUNGE"), CommandBody::Expunge);
    assert_eq!(
        body("A003 COPY 2:4 MEETING"),
        CommandBody::Copy {
            uid: false,
            set: set("2:4"),
            mailbox: mailbox("MEETING")
        }
    );
    assert_eq!(
        body("a UID MOVE 42:69 foo"),
        CommandBody::Move {
            uid: true,
            set: set("42:69"),
            mailbox: mailbox("foo")
        }
    );
    assert_eq!(
        body("A202 UID EXPUNGE 3000:3002"),
        CommandBody::UidExpunge {
            uids: set("3000:3002")
        }
    );
    let CommandBody::Store(store) = body("A003 STORE 2:4 +FLAGS (\\Deleted)") else {
        panic!()
    };
    assert_eq!(
        (store.action, store.flags),
        (StoreAction::Add, vec![Flag::Deleted])
    );
    let CommandBody::Fetch(FetchCommand {
        uid,
        set: fetched,
        items,
        ..
    }) = body("A999 UID FETCH 4827313:4828442 FLAGS")
    else {
        panic!()
    };
    assert!(uid);
    assert_eq!(fetched, set("4827313:4828442"));
    assert_eq!(items, FetchItems::Attributes(vec![FetchAttribute::Flags]));
    let CommandBody::Fetch(fetch) = body("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])")
    else {
        panic!()
    };
    assert_eq!(
        fetch.items.attributes()[1],
        FetchAttribute::BodySection {
            peek: false,
            section: Section {
                part: vec![],
                text: Some(SectionText::HeaderFields(vec![
                    "DATE".into(),
                    "FROM".into()
                ]))
            },
            partial: None
        }
    );
}

#[test]
fn section_6_4_4_search_examples() {
    let since = SearchKey::Since(Date::new(1994, 2, 1).unwrap());
    let not_smith = SearchKey::Not(Box::new(SearchKey::From(b"Smith".to_vec())));
    let CommandBody::Search(SearchCommand {
        return_options,
        criteria,
        ..
    }) = body("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"")
    else {
        panic!()
    };
    assert_eq!(
        return_options,
        Some(SearchReturnOptions {
            min: true,
            count: true,
            ..Default::default()
        })
    );
    assert_eq!(
        criteria,
        vec![SearchKey::Flagged, since.clone(), not_smith.clone()]
    );
    let CommandBody::Search(search) =
        body("A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"")
    else {
        panic!()
    };
    assert_eq!(
        search.return_options,
        Some(SearchReturnOptions {
            all: true,
            ..Default::default()
        })
    );

    // A SEARCH whose string is a synchronizing literal of UTF-8.
    let mut server = Server::new();
    server.client_literal("A284 SEARCH CHARSET UTF-8 TEXT {12}", 12);
    let (_, CommandBody::Search(search)) = server.client_bytes("日本語で".as_bytes()).unwrap()
    else {
        panic!()
    };
    assert_eq!(search.charset.as_deref(), Some("UTF-8"));
    assert_eq!(
        search.criteria,
        vec![SearchKey::Text("日本語で".as_bytes().to_vec())]
    );

    // SEARCHRES (section 6.4.4.4): save, then use "$".
    let CommandBody::Search(search) =
        body("A301 SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM \"Smith\"")
    else {
        panic!()
    };
    assert!(search.return_options.unwrap().save);
    assert_eq!(
        body("A302 COPY $ \"Other Messages\""),
        CommandBody::Copy {
            uid: false,
            set: MessageSet::SavedResult,
            mailbox: mailbox("Other Messages")
        }
    );
}

#[test]
fn errors_answer_the_right_tag_and_move_on() {
    let mut server = Server::new();
    server.reader.feed(b"A1 FETCH 0 FLAGS\r\nA2 FETCH 1: FLAGS\r\nA3 FETCH a FLAGS\r\nA4 LOGIN \"fred\r\nA5 NOOP\r\n");
    for tag in ["A1", "A2", "A3"] {
        let error = server.reader.read_command().unwrap_err();
        assert_eq!(
            (error.tag.as_deref(), error.kind),
            (Some(tag), ErrorKind::InvalidSequenceSet)
        );
    }
    let error = server.reader.read_command().unwrap_err();
    assert_eq!(
        (error.tag.as_deref(), error.kind),
        (Some("A4"), ErrorKind::Syntax)
    );
    assert_eq!(error.message, "unterminated quoted string");
    assert_eq!(
        error.status_response().to_bytes(Default::default()),
        b"A4 BAD unterminated quoted string\r\n"
    );
    assert!(matches!(server.reader.read_command(), Ok(Progress::Command(c)) if c.tag == "A5"));
}

#[test]
fn sequence_sets_of_section_9() {
    let MessageSet::Set(s) = set("2,4:7,9,12:*") else {
        panic!()
    };
    assert_eq!(s.resolve(15), vec![2..=2, 4..=7, 9..=9, 12..=15]);
    let MessageSet::Set(s) = set("*:4,5:7") else {
        panic!()
    };
    assert_eq!(s.resolve(10), vec![4..=10]);
    assert_eq!(
        SequenceSet::from_numbers([2, 4, 5, 6, 7, 9, 12, 13, 14, 15])
            .unwrap()
            .to_string(),
        "2,4:7,9,12:15"
    );
    assert_eq!(s.ranges()[0].first, postcell_imap_proto::SeqNumber::Largest);
    assert_eq!(
        s.ranges()[0].last,
        postcell_imap_proto::SeqNumber::Value(NonZeroU32::new(4).unwrap())
    );
}
