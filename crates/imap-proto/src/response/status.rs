//! Status responses (OK, NO, BAD, PREAUTH, BYE) with their response codes, and
//! continuation requests.
//!
//! ```text
//! S: * OK [PERMANENTFLAGS (\Deleted \Seen \*)] Limited
//! S: A003 OK [APPENDUID 38505 3955] APPEND completed
//! S: A004 NO [TRYCREATE] No such mailbox
//! S: + Ready for literal data
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{write_atom, write_list, write_text};
use crate::flag::Flag;
use crate::lexer::{is_atom_char, is_tag_char};
use crate::limits::Utf8Mode;
use crate::sequence::SequenceSet;

/// The kind of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

impl StatusKind {
    fn keyword(self) -> &'static str {
        match self {
            StatusKind::Ok => "OK",
            StatusKind::No => "NO",
            StatusKind::Bad => "BAD",
            StatusKind::PreAuth => "PREAUTH",
            StatusKind::Bye => "BYE",
        }
    }

    fn default_text(self) -> &'static str {
        match self {
            StatusKind::Ok => "completed",
            StatusKind::No => "failed",
            StatusKind::Bad => "invalid",
            StatusKind::PreAuth => "ready",
            StatusKind::Bye => "closing",
        }
    }
}

/// `resp-text-code` (RFC 9051 section 7.1 and the extensions that add codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    AlreadyExists,
    /// RFC 4315: `[APPENDUID uidvalidity uid-set]`.
    AppendUid {
        uid_validity: u32,
        uids: SequenceSet,
    },
    AuthenticationFailed,
    AuthorizationFailed,
    /// `[BADCHARSET (UTF-8 US-ASCII)]`; an empty list writes `[BADCHARSET]`.
    BadCharset(Vec<String>),
    Cannot,
    Capability(Vec<String>),
    ClientBug,
    /// RFC 7162: the previous mailbox is closed (before a SELECT's responses).
    Closed,
    ContactAdmin,
    /// RFC 4315: `[COPYUID uidvalidity source-uids destination-uids]`.
    CopyUid {
        uid_validity: u32,
        source: SequenceSet,
        destination: SequenceSet,
    },
    Corruption,
    Expired,
    ExpungeIssued,
    HasChildren,
    /// RFC 7162.
    HighestModSeq(u64),
    InUse,
    Limit,
    /// RFC 7162: messages that failed an UNCHANGEDSINCE test.
    Modified(SequenceSet),
    /// RFC 7162.
    NoModSeq,
    Nonexistent,
    NoPerm,
    NotSaved,
    OverQuota,
    Parse,
    /// `[PERMANENTFLAGS (...)]`; `new_keywords` adds `\*`.
    PermanentFlags {
        flags: Vec<Flag>,
        new_keywords: bool,
    },
    PrivacyRequired,
    ReadOnly,
    ReadWrite,
    ServerBug,
    TooBig,
    TryCreate,
    UidNext(u32),
    /// RFC 4315.
    UidNotSticky,
    UidValidity(u32),
    Unavailable,
    UnknownCte,
    /// IMAP4rev1: the first unseen message.
    Unseen(u32),
    /// RFC 6154: CREATE with a special use the server does not support.
    UseAttr,
    /// Any other code: an atom and optional text (no `]`).
    Other {
        name: String,
        text: Option<String>,
    },
}

impl Code {
    fn encode(&self, out: &mut Vec<u8>, utf8: Utf8Mode) {
        let simple = |out: &mut Vec<u8>, name: &str| out.extend_from_slice(name.as_bytes());
        match self {
            Code::Alert => simple(out, "ALERT"),
            Code::AlreadyExists => simple(out, "ALREADYEXISTS"),
            Code::AppendUid { uid_validity, uids } => {
                out.extend_from_slice(format!("APPENDUID {uid_validity} {uids}").as_bytes())
            }
            Code::AuthenticationFailed => simple(out, "AUTHENTICATIONFAILED"),
            Code::AuthorizationFailed => simple(out, "AUTHORIZATIONFAILED"),
            Code::BadCharset(charsets) => {
                simple(out, "BADCHARSET");
                if !charsets.is_empty() {
                    out.push(b' ');
                    write_list(out, charsets, |out, charset| {
                        // `charset = atom / quoted`; an astring's "]" would end the code.
                        let bytes = charset.as_bytes();
                        if !bytes.is_empty() && bytes.iter().all(|&b| is_atom_char(b)) {
                            out.extend_from_slice(bytes);
                        } else {
                            super::write_string(out, bytes, utf8);
                        }
                    });
                }
            }
            Code::Cannot => simple(out, "CANNOT"),
            Code::Capability(capabilities) => {
                simple(out, "CAPABILITY");
                for capability in capabilities {
                    out.push(b' ');
                    write_atom(out, capability);
                }
            }
            Code::ClientBug => simple(out, "CLIENTBUG"),
            Code::Closed => simple(out, "CLOSED"),
            Code::ContactAdmin => simple(out, "CONTACTADMIN"),
            Code::CopyUid {
                uid_validity,
                source,
                destination,
            } => out.extend_from_slice(
                format!("COPYUID {uid_validity} {source} {destination}").as_bytes(),
            ),
            Code::Corruption => simple(out, "CORRUPTION"),
            Code::Expired => simple(out, "EXPIRED"),
            Code::ExpungeIssued => simple(out, "EXPUNGEISSUED"),
            Code::HasChildren => simple(out, "HASCHILDREN"),
            Code::HighestModSeq(n) => {
                out.extend_from_slice(format!("HIGHESTMODSEQ {n}").as_bytes())
            }
            Code::InUse => simple(out, "INUSE"),
            Code::Limit => simple(out, "LIMIT"),
            Code::Modified(set) => out.extend_from_slice(format!("MODIFIED {set}").as_bytes()),
            Code::NoModSeq => simple(out, "NOMODSEQ"),
            Code::Nonexistent => simple(out, "NONEXISTENT"),
            Code::NoPerm => simple(out, "NOPERM"),
            Code::NotSaved => simple(out, "NOTSAVED"),
            Code::OverQuota => simple(out, "OVERQUOTA"),
            Code::Parse => simple(out, "PARSE"),
            Code::PermanentFlags {
                flags,
                new_keywords,
            } => {
                simple(out, "PERMANENTFLAGS (");
                for (i, flag) in flags.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    write_atom(out, &flag.to_string());
                }
                if *new_keywords {
                    if !flags.is_empty() {
                        out.push(b' ');
                    }
                    out.extend_from_slice(b"\\*");
                }
                out.push(b')');
            }
            Code::PrivacyRequired => simple(out, "PRIVACYREQUIRED"),
            Code::ReadOnly => simple(out, "READ-ONLY"),
            Code::ReadWrite => simple(out, "READ-WRITE"),
            Code::ServerBug => simple(out, "SERVERBUG"),
            Code::TooBig => simple(out, "TOOBIG"),
            Code::TryCreate => simple(out, "TRYCREATE"),
            Code::UidNext(n) => out.extend_from_slice(format!("UIDNEXT {n}").as_bytes()),
            Code::UidNotSticky => simple(out, "UIDNOTSTICKY"),
            Code::UidValidity(n) => out.extend_from_slice(format!("UIDVALIDITY {n}").as_bytes()),
            Code::Unavailable => simple(out, "UNAVAILABLE"),
            Code::UnknownCte => simple(out, "UNKNOWN-CTE"),
            Code::Unseen(n) => out.extend_from_slice(format!("UNSEEN {n}").as_bytes()),
            Code::UseAttr => simple(out, "USEATTR"),
            Code::Other { name, text } => {
                write_atom(out, &name.replace(['[', ']'], ""));
                if let Some(text) = text {
                    out.push(b' ');
                    write_text(out, &text.replace(']', " "), utf8);
                }
            }
        }
    }
}

/// A status response: `* OK ...`, `A1 NO [TRYCREATE] ...`, `* BYE ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResponse {
    /// The command's tag; `None` for an untagged (`*`) response.
    pub tag: Option<String>,
    pub kind: StatusKind,
    pub code: Option<Code>,
    /// Human-readable text; CR and LF are written as spaces, an empty text as a word
    /// that fits the kind ("completed", "failed", ...).
    pub text: String,
}

impl StatusResponse {
    pub fn new(tag: Option<String>, kind: StatusKind, text: impl Into<String>) -> Self {
        Self {
            tag,
            kind,
            code: None,
            text: text.into(),
        }
    }

    pub fn ok(tag: Option<String>, text: impl Into<String>) -> Self {
        Self::new(tag, StatusKind::Ok, text)
    }

    pub fn no(tag: Option<String>, text: impl Into<String>) -> Self {
        Self::new(tag, StatusKind::No, text)
    }

    pub fn bad(tag: Option<String>, text: impl Into<String>) -> Self {
        Self::new(tag, StatusKind::Bad, text)
    }

    pub fn bye(text: impl Into<String>) -> Self {
        Self::new(None, StatusKind::Bye, text)
    }

    pub fn preauth(text: impl Into<String>) -> Self {
        Self::new(None, StatusKind::PreAuth, text)
    }

    pub fn with_code(mut self, code: Code) -> Self {
        self.code = Some(code);
        self
    }

    /// `(tag / "*") SP kind SP ["[" resp-text-code "]" SP] text CRLF`
    pub fn encode(&self, out: &mut Vec<u8>, utf8: Utf8Mode) {
        match &self.tag {
            Some(tag) if !tag.is_empty() && tag.bytes().all(is_tag_char) => {
                out.extend_from_slice(tag.as_bytes())
            }
            _ => out.push(b'*'),
        }
        out.push(b' ');
        out.extend_from_slice(self.kind.keyword().as_bytes());
        out.push(b' ');
        if let Some(code) = &self.code {
            out.push(b'[');
            code.encode(out, utf8);
            out.extend_from_slice(b"] ");
        }
        let text = if self.text.is_empty() {
            self.kind.default_text()
        } else {
            &self.text
        };
        write_text(out, text, utf8);
        out.extend_from_slice(b"\r\n");
    }

    pub fn to_bytes(&self, utf8: Utf8Mode) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out, utf8);
        out
    }
}

/// A continuation request: `+ text` or `+ base64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    Text(String),
    /// A SASL challenge, written in base64 (empty: `+ `).
    Challenge(Vec<u8>),
}

impl Continuation {
    /// `+ Ready for literal data`, the answer to [`Progress::NeedContinuation`](crate::Progress::NeedContinuation).
    pub fn ready() -> Self {
        Continuation::Text("Ready for literal data".to_owned())
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"+ ");
        match self {
            Continuation::Text(text) => write_text(out, text, Utf8Mode::Off),
            Continuation::Challenge(bytes) => {
                out.extend_from_slice(STANDARD.encode(bytes).as_bytes())
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}
