//! The response writer: the exact bytes of each kind of response, mostly the examples
//! of RFC 9051 and of the extensions that define them.

use std::num::NonZeroU32;

use postcell_imap_proto::command::{Section, SectionText};
use postcell_imap_proto::mailbox::{decode_mutf7, encode_mutf7};
use postcell_imap_proto::response::{
    Address, BodyFields, BodyStructure, Code, Continuation, Data, Disposition, ESearchResponse,
    Envelope, FetchItem, ListAttribute, ListExtendedItem, ListItem, MultipartExtension,
    NamespaceDescription, QuotaResource, SinglePartExtension, SinglePartKind, StatusResponse,
    StatusValue, ThreadNode, write_astring, write_literal, write_quoted, write_string,
};
use postcell_imap_proto::{Date, DateTime, Flag, MailboxName, SequenceSet, SpecialUse, Utf8Mode};

fn data(data: Data) -> String {
    String::from_utf8(data.to_bytes(Utf8Mode::Off)).unwrap()
}

fn status(status: StatusResponse) -> String {
    String::from_utf8(status.to_bytes(Utf8Mode::Off)).unwrap()
}

fn tag(tag: &str) -> Option<String> {
    Some(tag.to_owned())
}

fn set(numbers: &[u32]) -> SequenceSet {
    SequenceSet::from_numbers(numbers.iter().copied()).unwrap()
}

fn mailbox(name: &str) -> MailboxName {
    MailboxName::new(name)
}

#[test]
fn select_responses_rfc_9051_section_6_3_2() {
    let system_flags = vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ];
    assert_eq!(data(Data::Exists(172)), "* 172 EXISTS\r\n");
    assert_eq!(
        status(StatusResponse::ok(None, "UIDs valid").with_code(Code::UidValidity(3_857_529_045))),
        "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
    );
    assert_eq!(
        status(StatusResponse::ok(None, "Predicted next UID").with_code(Code::UidNext(4392))),
        "* OK [UIDNEXT 4392] Predicted next UID\r\n"
    );
    assert_eq!(
        data(Data::Flags(system_flags)),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    );
    assert_eq!(
        status(
            StatusResponse::ok(None, "Limited").with_code(Code::PermanentFlags {
                flags: vec![Flag::Deleted, Flag::Seen],
                new_keywords: true
            })
        ),
        "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
    );
    assert_eq!(
        status(
            StatusResponse::ok(None, "").with_code(Code::PermanentFlags {
                flags: vec![],
                new_keywords: false
            })
        ),
        "* OK [PERMANENTFLAGS ()] completed\r\n"
    );
    assert_eq!(
        status(StatusResponse::ok(tag("A142"), "SELECT completed").with_code(Code::ReadWrite)),
        "A142 OK [READ-WRITE] SELECT completed\r\n"
    );
    assert_eq!(
        status(StatusResponse::ok(tag("A932"), "EXAMINE completed").with_code(Code::ReadOnly)),
        "A932 OK [READ-ONLY] EXAMINE completed\r\n"
    );
    assert_eq!(
        status(StatusResponse::ok(None, "Message 12 is first unseen").with_code(Code::Unseen(12))),
        "* OK [UNSEEN 12] Message 12 is first unseen\r\n"
    );
    assert_eq!(data(Data::Recent(1)), "* 1 RECENT\r\n");
}

#[test]
fn status_responses_and_their_codes() {
    let cases: Vec<(StatusResponse, &str)> = vec![
        (
            StatusResponse::preauth("IMAP4rev2 server logged in as Smith"),
            "* PREAUTH IMAP4rev2 server logged in as Smith\r\n",
        ),
        (
            StatusResponse::bye("Autologout; idle for too long"),
            "* BYE Autologout; idle for too long\r\n",
        ),
        (
            StatusResponse::ok(None, "").with_code(Code::Alert),
            "* OK [ALERT] completed\r\n",
        ),
        (
            StatusResponse::ok(None, "ready").with_code(Code::Capability(vec![
                "IMAP4rev2".into(),
                "AUTH=PLAIN".into(),
            ])),
            "* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] ready\r\n",
        ),
        (
            StatusResponse::no(tag("A003"), "No such mailbox").with_code(Code::TryCreate),
            "A003 NO [TRYCREATE] No such mailbox\r\n",
        ),
        (
            StatusResponse::ok(tag("A003"), "APPEND completed").with_code(Code::AppendUid {
                uid_validity: 38505,
                uids: set(&[3955]),
            }),
            "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
        ),
        (
            StatusResponse::ok(tag("A004"), "Done").with_code(Code::CopyUid {
                uid_validity: 38505,
                source: set(&[304, 319, 320]),
                destination: set(&[3956, 3957, 3958]),
            }),
            "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
        ),
        (
            StatusResponse::ok(None, "Ok").with_code(Code::HighestModSeq(715_194_045_007)),
            "* OK [HIGHESTMODSEQ 715194045007] Ok\r\n",
        ),
        (
            StatusResponse::ok(
                None,
                "Sorry, this mailbox format doesn't support modsequences",
            )
            .with_code(Code::NoModSeq),
            "* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n",
        ),
        (
            StatusResponse::ok(tag("d105"), "Conditional STORE failed")
                .with_code(Code::Modified(set(&[7, 9]))),
            "d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n",
        ),
        (
            StatusResponse::ok(None, "Previous mailbox is now closed").with_code(Code::Closed),
            "* OK [CLOSED] Previous mailbox is now closed\r\n",
        ),
        (
            StatusResponse::no(tag("A1"), "BADCHARSET")
                .with_code(Code::BadCharset(vec!["UTF-8".into(), "US-ASCII".into()])),
            "A1 NO [BADCHARSET (UTF-8 US-ASCII)] BADCHARSET\r\n",
        ),
        (
            StatusResponse::no(tag("t1"), "Unsupported special use").with_code(Code::UseAttr),
            "t1 NO [USEATTR] Unsupported special use\r\n",
        ),
        (
            StatusResponse::no(tag("a"), "x").with_code(Code::Other {
                name: "X-FOO".into(),
                text: Some("a]b".into()),
            }),
            "a NO [X-FOO a b] x\r\n",
        ),
    ];
    for (response, expected) in cases {
        assert_eq!(status(response), expected);
    }
    let simple = [
        (Code::UidNotSticky, "UIDNOTSTICKY"),
        (Code::Nonexistent, "NONEXISTENT"),
        (Code::AlreadyExists, "ALREADYEXISTS"),
        (Code::TooBig, "TOOBIG"),
        (Code::OverQuota, "OVERQUOTA"),
        (Code::Limit, "LIMIT"),
        (Code::Unavailable, "UNAVAILABLE"),
        (Code::ServerBug, "SERVERBUG"),
        (Code::ClientBug, "CLIENTBUG"),
        (Code::Cannot, "CANNOT"),
        (Code::InUse, "INUSE"),
        (Code::ExpungeIssued, "EXPUNGEISSUED"),
        (Code::NoPerm, "NOPERM"),
        (Code::AuthenticationFailed, "AUTHENTICATIONFAILED"),
        (Code::AuthorizationFailed, "AUTHORIZATIONFAILED"),
        (Code::Expired, "EXPIRED"),
        (Code::PrivacyRequired, "PRIVACYREQUIRED"),
        (Code::ContactAdmin, "CONTACTADMIN"),
        (Code::Corruption, "CORRUPTION"),
        (Code::HasChildren, "HASCHILDREN"),
        (Code::NotSaved, "NOTSAVED"),
        (Code::UnknownCte, "UNKNOWN-CTE"),
        (Code::Parse, "PARSE"),
    ];
    for (code, name) in simple {
        assert_eq!(
            status(StatusResponse::no(tag("A1"), "x").with_code(code)),
            format!("A1 NO [{name}] x\r\n")
        );
    }
}

#[test]
fn status_text_cannot_break_the_framing() {
    assert_eq!(
        status(StatusResponse::bad(tag("A1"), "bad\r\nA2 OK injected")),
        "A1 BAD bad  A2 OK injected\r\n"
    );
    assert_eq!(
        status(StatusResponse::bad(tag("bad tag\r\n"), "x")),
        "* BAD x\r\n"
    );
    assert_eq!(
        String::from_utf8(StatusResponse::ok(None, "Grüße").to_bytes(Utf8Mode::On)).unwrap(),
        "* OK Grüße\r\n"
    );
    assert_eq!(status(StatusResponse::ok(None, "Grüße")), "* OK Gr??e\r\n");
}

#[test]
fn continuations() {
    assert_eq!(
        Continuation::ready().to_bytes(),
        b"+ Ready for literal data\r\n"
    );
    assert_eq!(
        Continuation::Text("idling".into()).to_bytes(),
        b"+ idling\r\n"
    );
    assert_eq!(
        Continuation::Challenge(b"\0fred\0secret".to_vec()).to_bytes(),
        b"+ AGZyZWQAc2VjcmV0\r\n"
    );
    assert_eq!(Continuation::Challenge(vec![]).to_bytes(), b"+ \r\n");
}

#[test]
fn capability_enabled_expunge_vanished() {
    assert_eq!(
        data(Data::Capability(vec![
            "IMAP4rev2".into(),
            "STARTTLS".into(),
            "AUTH=GSSAPI".into(),
            "LOGINDISABLED".into()
        ])),
        "* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n"
    );
    assert_eq!(
        data(Data::Enabled(vec!["X-GOOD-IDEA".into()])),
        "* ENABLED X-GOOD-IDEA\r\n"
    );
    assert_eq!(data(Data::Enabled(vec![])), "* ENABLED\r\n");
    assert_eq!(data(Data::Expunge(44)), "* 44 EXPUNGE\r\n");
    // RFC 7162 section 3.2.10, and compaction of unsorted UIDs.
    let uids: Vec<u32> = (300..=310).chain([405, 411]).collect();
    assert_eq!(
        data(Data::Vanished {
            earlier: true,
            uids: set(&uids)
        }),
        "* VANISHED (EARLIER) 300:310,405,411\r\n"
    );
    assert_eq!(
        data(Data::Vanished {
            earlier: false,
            uids: set(&[7, 3, 1, 2])
        }),
        "* VANISHED 1:3,7\r\n"
    );
}

#[test]
fn list_and_lsub() {
    let item = |attributes, delimiter, name: &str| ListItem {
        attributes,
        delimiter,
        mailbox: mailbox(name),
        extended: vec![],
    };
    // RFC 9051 section 6.3.9.
    assert_eq!(
        data(Data::List(item(
            vec![ListAttribute::NoSelect],
            Some('/'),
            ""
        ))),
        "* LIST (\\Noselect) \"/\" \"\"\r\n"
    );
    assert_eq!(
        data(Data::List(item(vec![], Some('.'), "#news.comp.mail.misc"))),
        "* LIST () \".\" #news.comp.mail.misc\r\n"
    );
    assert_eq!(
        data(Data::List(item(
            vec![ListAttribute::Marked, ListAttribute::NoInferiors],
            None,
            "inbox"
        ))),
        "* LIST (\\Marked \\Noinferiors) NIL INBOX\r\n"
    );
    assert_eq!(
        data(Data::List(item(
            vec![
                ListAttribute::HasNoChildren,
                ListAttribute::SpecialUse(SpecialUse::Drafts)
            ],
            Some('/'),
            "Entwürfe"
        ))),
        "* LIST (\\HasNoChildren \\Drafts) \"/\" Entw&APw-rfe\r\n"
    );
    assert_eq!(
        data(Data::List(item(
            vec![ListAttribute::NonExistent, ListAttribute::Subscribed],
            Some('\\'),
            "a b"
        ))),
        "* LIST (\\NonExistent \\Subscribed) \"\\\\\" \"a b\"\r\n"
    );
    // RFC 5258 section 5, example 6, and RFC 9051 OLDNAME.
    let mut tofu = item(vec![], Some('/'), "Tofu");
    tofu.extended = vec![ListExtendedItem::ChildInfo(vec!["SUBSCRIBED".into()])];
    assert_eq!(
        data(Data::List(tofu)),
        "* LIST () \"/\" Tofu (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
    );
    let mut renamed = item(vec![], Some('/'), "NewMailbox");
    renamed.extended = vec![ListExtendedItem::OldName(mailbox("Old Mailbox"))];
    assert_eq!(
        data(Data::List(renamed)),
        "* LIST () \"/\" NewMailbox (\"OLDNAME\" (\"Old Mailbox\"))\r\n"
    );
    assert_eq!(
        data(Data::Lsub(item(vec![], Some('.'), "#news.comp.mail.mime"))),
        "* LSUB () \".\" #news.comp.mail.mime\r\n"
    );
    // UTF-8 names are sent as they are once UTF8=ACCEPT is enabled.
    assert_eq!(
        Data::List(item(vec![], Some('/'), "送信済み")).to_bytes(Utf8Mode::On),
        "* LIST () \"/\" \"送信済み\"\r\n".as_bytes()
    );
}

#[test]
fn status_esearch_search() {
    assert_eq!(
        data(Data::Status {
            mailbox: mailbox("blurdybloop"),
            items: vec![StatusValue::Messages(231), StatusValue::UidNext(44292)]
        }),
        "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
    );
    assert_eq!(
        data(Data::Status {
            mailbox: mailbox("INBOX"),
            items: vec![
                StatusValue::UidValidity(1),
                StatusValue::Unseen(2),
                StatusValue::Deleted(3),
                StatusValue::Size(4_294_967_296),
                StatusValue::Recent(0),
                StatusValue::HighestModSeq(7)
            ]
        }),
        "* STATUS INBOX (UIDVALIDITY 1 UNSEEN 2 DELETED 3 SIZE 4294967296 RECENT 0 HIGHESTMODSEQ 7)\r\n"
    );
    // RFC 4731 section 3.1.
    assert_eq!(
        data(Data::ESearch(ESearchResponse {
            tag: tag("A282"),
            min: Some(2),
            count: Some(3),
            ..Default::default()
        })),
        "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"
    );
    assert_eq!(
        data(Data::ESearch(ESearchResponse {
            tag: tag("A283"),
            all: Some(set(&[2, 10, 11])),
            ..Default::default()
        })),
        "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n"
    );
    assert_eq!(
        data(Data::ESearch(ESearchResponse {
            tag: tag("A285"),
            uid: true,
            min: Some(7),
            max: Some(3800),
            mod_sequence: Some(917_162_500),
            ..Default::default()
        })),
        "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800 MODSEQ 917162500\r\n"
    );
    assert_eq!(
        data(Data::ESearch(ESearchResponse {
            tag: tag("A286"),
            ..Default::default()
        })),
        "* ESEARCH (TAG \"A286\")\r\n"
    );
    assert_eq!(
        data(Data::Search {
            numbers: vec![2, 84, 882],
            mod_sequence: None
        }),
        "* SEARCH 2 84 882\r\n"
    );
    assert_eq!(
        data(Data::Search {
            numbers: vec![],
            mod_sequence: None
        }),
        "* SEARCH\r\n"
    );
    assert_eq!(
        data(Data::Search {
            numbers: vec![2, 5, 6],
            mod_sequence: Some(917_162_500)
        }),
        "* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"
    );
}

#[test]
fn sort_and_thread_rfc_5256() {
    assert_eq!(
        data(Data::Sort {
            numbers: vec![2, 84, 882],
            mod_sequence: None
        }),
        "* SORT 2 84 882\r\n"
    );
    assert_eq!(
        data(Data::Sort {
            numbers: vec![],
            mod_sequence: None
        }),
        "* SORT\r\n"
    );
    assert_eq!(
        data(Data::Sort {
            numbers: vec![5, 3],
            mod_sequence: Some(9)
        }),
        "* SORT 5 3 (MODSEQ 9)\r\n"
    );
    let leaf = |n| ThreadNode::message(n, vec![]);
    // RFC 5256 section 4: "(2)(3 6 (4 23)(44 7 96))".
    let threads = vec![
        leaf(2),
        ThreadNode::message(
            3,
            vec![ThreadNode::message(
                6,
                vec![
                    ThreadNode::message(4, vec![leaf(23)]),
                    ThreadNode::message(44, vec![ThreadNode::message(7, vec![leaf(96)])]),
                ],
            )],
        ),
    ];
    assert_eq!(
        data(Data::Thread(threads)),
        "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
    );
    // A missing parent with two answers, and one with a single answer.
    let dummy = |children| ThreadNode {
        number: None,
        children,
    };
    assert_eq!(
        data(Data::Thread(vec![
            dummy(vec![leaf(3), leaf(5)]),
            dummy(vec![leaf(8)])
        ])),
        "* THREAD ((3)(5))(8)\r\n"
    );
    assert_eq!(
        data(Data::Thread(vec![ThreadNode::message(
            1,
            vec![dummy(vec![leaf(2), leaf(4)])]
        )])),
        "* THREAD (1 (2)(4))\r\n"
    );
    assert_eq!(data(Data::Thread(vec![])), "* THREAD\r\n");
    // A thread 100,000 answers deep does not exhaust the stack.
    let mut deep = leaf(100_000);
    for n in (1..100_000).rev() {
        deep = ThreadNode::message(n, vec![deep, leaf(200_000 + n)]);
    }
    let written = data(Data::Thread(vec![deep]));
    assert!(
        written.starts_with("* THREAD (1 (2 (3 (4 "),
        "{}",
        &written[..40]
    );
    assert!(written.ends_with("(200001))\r\n"));
}

#[test]
fn namespace_id_quota() {
    let ns = |prefix: &str| NamespaceDescription {
        prefix: prefix.into(),
        delimiter: Some('/'),
    };
    assert_eq!(
        data(Data::Namespace {
            personal: vec![ns("")],
            other_users: vec![],
            shared: vec![]
        }),
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
    );
    // RFC 2342 example 5.9: several descriptions are written side by side.
    assert_eq!(
        data(Data::Namespace {
            personal: vec![ns("")],
            other_users: vec![ns("~")],
            shared: vec![ns("#shared/"), ns("#public/")]
        }),
        "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" \"/\"))\r\n"
    );
    assert_eq!(
        data(Data::Id(Some(vec![
            ("name".into(), Some("Cyrus".into())),
            ("version".into(), Some("1.5".into())),
            ("os".into(), None)
        ]))),
        "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" NIL)\r\n"
    );
    assert_eq!(data(Data::Id(None)), "* ID NIL\r\n");
    // RFC 9208 section 4.
    assert_eq!(
        data(Data::Quota {
            root: "".into(),
            resources: vec![QuotaResource {
                name: "STORAGE".into(),
                usage: 10,
                limit: 512
            }]
        }),
        "* QUOTA \"\" (STORAGE 10 512)\r\n"
    );
    assert_eq!(
        data(Data::QuotaRoot {
            mailbox: mailbox("INBOX"),
            roots: vec!["".into()]
        }),
        "* QUOTAROOT INBOX \"\"\r\n"
    );
    assert_eq!(
        data(Data::QuotaRoot {
            mailbox: mailbox("comp.mail.mime"),
            roots: vec![]
        }),
        "* QUOTAROOT comp.mail.mime\r\n"
    );
}

fn address(name: Option<&str>, mailbox: &str, host: &str) -> Address {
    Address {
        name: name.map(Into::into),
        adl: None,
        mailbox: Some(mailbox.into()),
        host: Some(host.into()),
    }
}

/// The envelope of RFC 3501 section 8.
fn rfc_envelope() -> Envelope {
    let gray = address(Some("Terry Gray"), "gray", "cac.washington.edu");
    Envelope {
        date: Some("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)".into()),
        subject: Some("IMAP4rev1 WG mtg summary and minutes".into()),
        from: vec![gray.clone()],
        sender: vec![gray.clone()],
        reply_to: vec![gray],
        to: vec![address(None, "imap", "cac.washington.edu")],
        cc: vec![
            address(None, "minutes", "CNRI.Reston.VA.US"),
            address(Some("John Klensin"), "KLENSIN", "MIT.EDU"),
        ],
        bcc: vec![],
        in_reply_to: None,
        message_id: Some("<B27397-0100000@cac.washington.edu>".into()),
    }
}

fn text_plain(size: u32, lines: u64, params: Vec<(Vec<u8>, Vec<u8>)>) -> BodyStructure {
    BodyStructure::Single {
        media_type: "TEXT".into(),
        media_subtype: "PLAIN".into(),
        fields: BodyFields {
            params,
            size,
            ..Default::default()
        },
        kind: SinglePartKind::Text { lines },
        extension: None,
    }
}

#[test]
fn fetch_with_envelope_and_body_rfc_3501_section_8() {
    let date = DateTime::new(Date::new(1996, 7, 17).unwrap(), 2, 44, 25, -420).unwrap();
    let items = vec![
        FetchItem::Flags(vec![Flag::Seen]),
        FetchItem::InternalDate(date),
        FetchItem::Rfc822Size(4286),
        FetchItem::Envelope(Box::new(rfc_envelope())),
        FetchItem::Body(Box::new(text_plain(
            3028,
            92,
            vec![("CHARSET".into(), "US-ASCII".into())],
        ))),
    ];
    assert_eq!(
        data(Data::Fetch { seq: 12, items }),
        "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 \
ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) \
((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \
\"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"
    );
}

#[test]
fn bodystructure_multipart_with_extension_data() {
    // RFC 3501 section 7.4.2, plus extension data.
    let first = text_plain(1152, 23, vec![("CHARSET".into(), "US-ASCII".into())]);
    let second = BodyStructure::Single {
        media_type: "TEXT".into(),
        media_subtype: "PLAIN".into(),
        fields: BodyFields {
            params: vec![
                ("CHARSET".into(), "US-ASCII".into()),
                ("NAME".into(), "cc.diff".into()),
            ],
            id: Some("<960723163407.20117h@cac.washington.edu>".into()),
            description: Some("Compiler diff".into()),
            encoding: "BASE64".into(),
            size: 4554,
        },
        kind: SinglePartKind::Text { lines: 73 },
        extension: Some(SinglePartExtension {
            md5: None,
            disposition: Some(Disposition {
                kind: "attachment".into(),
                params: vec![("filename".into(), "cc.diff".into())],
            }),
            language: vec!["en".into(), "de".into()],
            location: None,
        }),
    };
    let multipart = BodyStructure::Multipart {
        parts: vec![first, second],
        subtype: "MIXED".into(),
        extension: Some(MultipartExtension {
            params: vec![("BOUNDARY".into(), "xyz".into())],
            disposition: None,
            language: vec!["en".into()],
            location: None,
        }),
    };
    let parts = "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)\
(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \"<960723163407.20117h@cac.washington.edu>\" \
\"Compiler diff\" \"BASE64\" 4554 73";
    assert_eq!(
        data(Data::Fetch {
            seq: 1,
            items: vec![FetchItem::Body(Box::new(multipart.clone()))]
        }),
        format!("* 1 FETCH (BODY ({parts}) \"MIXED\"))\r\n")
    );
    assert_eq!(
        data(Data::Fetch {
            seq: 1,
            items: vec![FetchItem::BodyStructure(Box::new(multipart))]
        }),
        format!(
            "* 1 FETCH (BODYSTRUCTURE ({parts} NIL (\"attachment\" (\"filename\" \"cc.diff\")) (\"en\" \"de\") NIL) \
\"MIXED\" (\"BOUNDARY\" \"xyz\") NIL \"en\" NIL))\r\n"
        )
    );
}

#[test]
fn bodystructure_of_an_attached_message_and_a_basic_part() {
    let inner = text_plain(10, 1, vec![]);
    let message = BodyStructure::Single {
        media_type: "MESSAGE".into(),
        media_subtype: "RFC822".into(),
        fields: BodyFields {
            size: 500,
            ..Default::default()
        },
        kind: SinglePartKind::Message {
            envelope: Box::new(Envelope::default()),
            body: Box::new(inner),
            lines: 12,
        },
        extension: None,
    };
    assert_eq!(
        data(Data::Fetch {
            seq: 3,
            items: vec![FetchItem::BodyStructure(Box::new(message))]
        }),
        "* 3 FETCH (BODYSTRUCTURE (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 500 \
(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10 1) 12))\r\n"
    );
    let image = BodyStructure::Single {
        media_type: "IMAGE".into(),
        media_subtype: "PNG".into(),
        fields: BodyFields {
            encoding: "BASE64".into(),
            size: 2048,
            ..Default::default()
        },
        kind: SinglePartKind::Basic,
        extension: Some(SinglePartExtension {
            md5: Some("abc".into()),
            ..Default::default()
        }),
    };
    assert_eq!(
        data(Data::Fetch {
            seq: 4,
            items: vec![FetchItem::BodyStructure(Box::new(image))]
        }),
        "* 4 FETCH (BODYSTRUCTURE (\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 2048 \"abc\" NIL NIL NIL))\r\n"
    );
}

#[test]
fn deeply_nested_body_structures_are_cut_off() {
    let mut body = text_plain(1, 1, vec![]);
    for _ in 0..200 {
        body = BodyStructure::Multipart {
            parts: vec![body],
            subtype: "MIXED".into(),
            extension: None,
        };
    }
    let bytes = Data::Fetch {
        seq: 1,
        items: vec![FetchItem::BodyStructure(Box::new(body))],
    }
    .to_bytes(Utf8Mode::Off);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.ends_with("\"MIXED\"))\r\n"));
    // 64 levels are written, the rest is one stand-in part.
    assert_eq!(text.matches("\"MIXED\"").count(), 64);
    assert_eq!(text.matches("\"OCTET-STREAM\"").count(), 1);
    assert!(!text.contains("\"PLAIN\""));
}

#[test]
fn fetch_sections_binary_and_the_other_items() {
    let part = |n: &[u32]| {
        n.iter()
            .map(|&n| NonZeroU32::new(n).unwrap())
            .collect::<Vec<_>>()
    };
    let items = vec![
        FetchItem::Uid(4_827_313),
        FetchItem::ModSeq(12_121_231_000),
        FetchItem::BodySection {
            section: Section {
                part: vec![],
                text: Some(SectionText::HeaderFields(vec![
                    "DATE".into(),
                    "FROM".into(),
                ])),
            },
            origin: None,
            data: Some(b"Date: x\r\n\r\n".to_vec()),
        },
        FetchItem::BodySection {
            section: Section {
                part: part(&[1, 2]),
                text: Some(SectionText::Mime),
            },
            origin: Some(0),
            data: None,
        },
        FetchItem::BodySection {
            section: Section::default(),
            origin: Some(100),
            data: Some(b"abc".to_vec()),
        },
        FetchItem::Binary {
            part: part(&[1]),
            origin: None,
            data: Some(b"a\0b".to_vec()),
        },
        FetchItem::Binary {
            part: vec![],
            origin: Some(5),
            data: Some(b"ab".to_vec()),
        },
        FetchItem::BinarySize {
            part: part(&[1, 2]),
            size: 77,
        },
        FetchItem::Rfc822Header(Some(b"H: v\r\n".to_vec())),
        FetchItem::Rfc822Text(None),
        FetchItem::Rfc822(Some(b"x".to_vec())),
        FetchItem::Flags(vec![
            Flag::Extension("Recent".into()),
            Flag::Keyword("$Forwarded".into()),
        ]),
    ];
    let bytes = Data::Fetch { seq: 12, items }.to_bytes(Utf8Mode::Off);
    assert_eq!(
        bytes,
        b"* 12 FETCH (UID 4827313 MODSEQ (12121231000) BODY[HEADER.FIELDS (DATE FROM)] {11}\r\nDate: x\r\n\r\n \
BODY[1.2.MIME]<0> NIL BODY[]<100> {3}\r\nabc BINARY[1] ~{3}\r\na\0b BINARY[]<5> {2}\r\nab BINARY.SIZE[1.2] 77 \
RFC822.HEADER {6}\r\nH: v\r\n RFC822.TEXT NIL RFC822 {1}\r\nx FLAGS (\\Recent $Forwarded))\r\n"
    );
}

#[test]
fn quoting_and_literals() {
    let mut out = Vec::new();
    assert!(write_quoted(
        &mut out,
        br#"a "quoted" \ string"#,
        Utf8Mode::Off
    ));
    assert_eq!(out, br#""a \"quoted\" \\ string""#);
    let mut out = Vec::new();
    assert!(!write_quoted(&mut out, b"two\r\nlines", Utf8Mode::On));
    assert!(out.is_empty());
    write_string(&mut out, b"two\r\nlines", Utf8Mode::On);
    assert_eq!(out, b"{10}\r\ntwo\r\nlines");
    let mut out = Vec::new();
    write_literal(&mut out, b"");
    assert_eq!(out, b"{0}\r\n");
    let mut out = Vec::new();
    write_astring(&mut out, b"INBOX", Utf8Mode::Off);
    out.push(b' ');
    write_astring(&mut out, "Grüße".as_bytes(), Utf8Mode::Off);
    out.push(b' ');
    write_astring(&mut out, "Grüße".as_bytes(), Utf8Mode::On);
    assert_eq!(out, "INBOX {7}\r\nGrüße \"Grüße\"".as_bytes());
    // A subject with CRLF inside an envelope becomes a literal.
    let envelope = Envelope {
        subject: Some("a\r\n b".into()),
        ..Default::default()
    };
    let bytes = Data::Fetch {
        seq: 1,
        items: vec![FetchItem::Envelope(Box::new(envelope))],
    }
    .to_bytes(Utf8Mode::Off);
    assert_eq!(
        bytes,
        b"* 1 FETCH (ENVELOPE (NIL {5}\r\na\r\n b NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
    );
}

#[test]
fn raw_8bit_header_text_is_sent_as_a_literal_unless_utf8_allows_quoting() {
    let envelope = |subject: &[u8]| {
        let envelope = Envelope {
            subject: Some(subject.to_vec()),
            ..Default::default()
        };
        Data::Fetch {
            seq: 1,
            items: vec![FetchItem::Envelope(Box::new(envelope))],
        }
    };
    let tail = b" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n";
    // Shift_JIS octets, as postcell-mime keeps them: never UTF-8, so always a literal.
    let shift_jis = b"\x93\xfa\x96\x7b";
    for mode in [Utf8Mode::Off, Utf8Mode::On] {
        let mut expected = b"* 1 FETCH (ENVELOPE (NIL {4}\r\n\x93\xfa\x96\x7b".to_vec();
        expected.extend_from_slice(tail);
        assert_eq!(envelope(shift_jis).to_bytes(mode), expected);
    }
    // UTF-8 is quoted once the client has enabled UTF-8, a literal before.
    let mut expected = "* 1 FETCH (ENVELOPE (NIL \"日本\"".as_bytes().to_vec();
    expected.extend_from_slice(tail);
    assert_eq!(envelope("日本".as_bytes()).to_bytes(Utf8Mode::On), expected);
    let mut expected = "* 1 FETCH (ENVELOPE (NIL {6}\r\n日本".as_bytes().to_vec();
    expected.extend_from_slice(tail);
    assert_eq!(
        envelope("日本".as_bytes()).to_bytes(Utf8Mode::Off),
        expected
    );
}

#[test]
fn modified_utf7_round_trips() {
    for (utf8, mutf7) in [
        ("送信済み", "&kAFP4W4IMH8-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("&", "&-"),
        ("Tom & Jerry", "Tom &- Jerry"),
    ] {
        assert_eq!(encode_mutf7(utf8), mutf7);
        assert_eq!(decode_mutf7(mutf7).as_deref(), Some(utf8));
    }
}

mod round_trips {
    use postcell_imap_proto::mailbox::{decode_mutf7, encode_mutf7};
    use postcell_imap_proto::response::{write_astring, write_mailbox, write_string};
    use postcell_imap_proto::{CommandBody, Limits, MailboxName, Utf8Mode, parse_command};
    use proptest::prelude::*;

    fn mode(utf8: bool) -> Utf8Mode {
        if utf8 { Utf8Mode::On } else { Utf8Mode::Off }
    }

    /// The password of `a LOGIN user <written>`, as our parser reads it back.
    fn read_back(written: &[u8], utf8: Utf8Mode) -> Vec<u8> {
        let mut line = b"a LOGIN user ".to_vec();
        line.extend_from_slice(written);
        line.extend_from_slice(b"\r\n");
        match parse_command(&line, &Limits::default(), utf8) {
            Ok(command) => match command.body {
                CommandBody::Login { password, .. } => password.as_bytes().to_vec(),
                other => panic!("{other:?}"),
            },
            Err(error) => panic!(
                "{:?} does not parse: {error}",
                String::from_utf8_lossy(&line)
            ),
        }
    }

    proptest! {
        #[test]
        fn strings_read_back_as_written(bytes in prop::collection::vec(1u8..=255, 0..80), utf8 in any::<bool>()) {
            let mut out = Vec::new();
            write_string(&mut out, &bytes, mode(utf8));
            prop_assert_eq!(read_back(&out, mode(utf8)), bytes.clone());
            let mut out = Vec::new();
            write_astring(&mut out, &bytes, mode(utf8));
            prop_assert_eq!(read_back(&out, mode(utf8)), bytes);
        }

        #[test]
        fn text_strings_are_quoted_unless_they_cannot_be(text in "[ -~]{0,40}") {
            let mut out = Vec::new();
            write_string(&mut out, text.as_bytes(), Utf8Mode::Off);
            prop_assert_eq!(out.first(), Some(&b'"'));
        }

        #[test]
        fn mutf7_round_trips(name in any::<String>()) {
            let encoded = encode_mutf7(&name);
            prop_assert!(encoded.bytes().all(|b| (0x20..0x7f).contains(&b)));
            prop_assert_eq!(decode_mutf7(&encoded), Some(name));
        }

        #[test]
        fn mailbox_names_read_back_as_written(name in "[^\\x00-\\x1f\\x7f-\\x9f]{0,20}", utf8 in any::<bool>()) {
            let mut line = b"a SELECT ".to_vec();
            write_mailbox(&mut line, &name, mode(utf8));
            line.extend_from_slice(b"\r\n");
            let command = parse_command(&line, &Limits::default(), mode(utf8));
            let Ok(command) = command else { panic!("{:?}: {command:?}", String::from_utf8_lossy(&line)) };
            let CommandBody::Select { mailbox, .. } = command.body else { panic!() };
            prop_assert_eq!(mailbox, MailboxName::new(name));
        }
    }
}
