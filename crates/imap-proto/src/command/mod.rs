//! Typed client commands, and the parser that turns one framed command into one.
//!
//! ```text
//! tag SP command-name [SP arguments] CRLF
//! C: a001 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)
//! ```
//!
//! Each group of commands has its module: [`auth`] (LOGIN, AUTHENTICATE), [`session`]
//! (ENABLE, ID), [`mailbox`] (SELECT to STATUS), [`list`], [`append`], [`message`]
//! (STORE, COPY, MOVE, UID EXPUNGE), [`search`], [`sort`] (SORT, THREAD), [`fetch`] and
//! [`quota`].

pub mod append;
pub mod auth;
pub mod fetch;
pub mod list;
pub mod mailbox;
pub mod message;
pub mod quota;
pub mod search;
pub mod session;
pub mod sort;

pub use append::AppendCommand;
pub use auth::Password;
pub use fetch::{FetchAttribute, FetchCommand, FetchItems, Partial, Section, SectionText};
pub use list::{ListCommand, ListReturnOptions, ListSelectOptions};
pub use mailbox::{QresyncParameters, SelectParameters, StatusItem};
pub use message::{StoreAction, StoreCommand};
pub use search::{SearchCommand, SearchKey, SearchReturnOptions};
pub use sort::{SortCommand, SortCriterion, SortKey, ThreadAlgorithm, ThreadCommand};

use crate::error::ErrorKind;
use crate::lexer::{Cursor, Fail, PResult, fail, is_tag_char, syntax};
use crate::mailbox::{MailboxName, SpecialUse};
use crate::sequence::MessageSet;

/// One client command: its tag and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// What a command asks, by state (RFC 9051 section 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    // Any state.
    /// ```text
    /// C: a CAPABILITY
    /// ```
    Capability,
    Noop,
    Logout,
    /// RFC 2971: `ID ("name" "Thunderbird" "version" "128.0")` or `ID NIL`.
    Id {
        parameters: Option<Vec<(String, Option<String>)>>,
    },

    // Not authenticated.
    StartTls,
    /// `AUTHENTICATE PLAIN [initial-response]` (RFC 4959 SASL-IR). `initial_response` is
    /// the decoded bytes; `=` (an empty response) is `Some(vec![])`. Later SASL lines are
    /// read with [`CommandReader::read_line`](crate::CommandReader::read_line).
    Authenticate {
        mechanism: String,
        initial_response: Option<Vec<u8>>,
    },
    /// `LOGIN user password`, each an atom, a quoted string or a literal.
    Login {
        username: String,
        password: Password,
    },

    // Authenticated.
    /// RFC 5161: `ENABLE CONDSTORE UTF8=ACCEPT`, capability names as sent.
    Enable {
        capabilities: Vec<String>,
    },
    /// `SELECT mailbox [(CONDSTORE) | (QRESYNC (...))]`
    Select {
        mailbox: MailboxName,
        parameters: SelectParameters,
    },
    Examine {
        mailbox: MailboxName,
        parameters: SelectParameters,
    },
    /// `CREATE mailbox [(USE (\Drafts))]` (RFC 6154 CREATE-SPECIAL-USE).
    Create {
        mailbox: MailboxName,
        special_use: Vec<SpecialUse>,
    },
    Delete {
        mailbox: MailboxName,
    },
    Rename {
        from: MailboxName,
        to: MailboxName,
    },
    Subscribe {
        mailbox: MailboxName,
    },
    Unsubscribe {
        mailbox: MailboxName,
    },
    List(ListCommand),
    /// IMAP4rev1's `LSUB reference pattern`.
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: MailboxName,
        items: Vec<StatusItem>,
    },
    Append(AppendCommand),
    /// RFC 2177; the session then reads `DONE` with
    /// [`CommandReader::read_line`](crate::CommandReader::read_line).
    Idle,
    /// RFC 9208 `GETQUOTA root`.
    GetQuota {
        root: String,
    },
    GetQuotaRoot {
        mailbox: MailboxName,
    },
    /// RFC 9208 `SETQUOTA root (STORAGE 512)`: resource names (uppercased) and limits.
    SetQuota {
        root: String,
        limits: Vec<(String, u64)>,
    },

    // Selected.
    Check,
    Close,
    Unselect,
    Expunge,
    /// RFC 4315 `UID EXPUNGE uid-set`.
    UidExpunge {
        uids: MessageSet,
    },
    Search(SearchCommand),
    /// RFC 5256 SORT, RFC 5267 ESORT.
    Sort(SortCommand),
    /// RFC 5256 THREAD.
    Thread(ThreadCommand),
    Fetch(FetchCommand),
    Store(StoreCommand),
    Copy {
        uid: bool,
        set: MessageSet,
        mailbox: MailboxName,
    },
    Move {
        uid: bool,
        set: MessageSet,
        mailbox: MailboxName,
    },
}

impl CommandBody {
    /// The command's name as a session would log it or name it in a reply: `UID FETCH`.
    pub fn name(&self) -> &'static str {
        match self {
            CommandBody::Capability => "CAPABILITY",
            CommandBody::Noop => "NOOP",
            CommandBody::Logout => "LOGOUT",
            CommandBody::Id { .. } => "ID",
            CommandBody::StartTls => "STARTTLS",
            CommandBody::Authenticate { .. } => "AUTHENTICATE",
            CommandBody::Login { .. } => "LOGIN",
            CommandBody::Enable { .. } => "ENABLE",
            CommandBody::Select { .. } => "SELECT",
            CommandBody::Examine { .. } => "EXAMINE",
            CommandBody::Create { .. } => "CREATE",
            CommandBody::Delete { .. } => "DELETE",
            CommandBody::Rename { .. } => "RENAME",
            CommandBody::Subscribe { .. } => "SUBSCRIBE",
            CommandBody::Unsubscribe { .. } => "UNSUBSCRIBE",
            CommandBody::List(_) => "LIST",
            CommandBody::Lsub { .. } => "LSUB",
            CommandBody::Namespace => "NAMESPACE",
            CommandBody::Status { .. } => "STATUS",
            CommandBody::Append(_) => "APPEND",
            CommandBody::Idle => "IDLE",
            CommandBody::GetQuota { .. } => "GETQUOTA",
            CommandBody::GetQuotaRoot { .. } => "GETQUOTAROOT",
            CommandBody::SetQuota { .. } => "SETQUOTA",
            CommandBody::Check => "CHECK",
            CommandBody::Close => "CLOSE",
            CommandBody::Unselect => "UNSELECT",
            CommandBody::Expunge => "EXPUNGE",
            CommandBody::UidExpunge { .. } => "UID EXPUNGE",
            CommandBody::Search(search) if search.uid => "UID SEARCH",
            CommandBody::Search(_) => "SEARCH",
            CommandBody::Sort(sort) if sort.uid => "UID SORT",
            CommandBody::Sort(_) => "SORT",
            CommandBody::Thread(thread) if thread.uid => "UID THREAD",
            CommandBody::Thread(_) => "THREAD",
            CommandBody::Fetch(fetch) if fetch.uid => "UID FETCH",
            CommandBody::Fetch(_) => "FETCH",
            CommandBody::Store(store) if store.uid => "UID STORE",
            CommandBody::Store(_) => "STORE",
            CommandBody::Copy { uid: true, .. } => "UID COPY",
            CommandBody::Copy { .. } => "COPY",
            CommandBody::Move { uid: true, .. } => "UID MOVE",
            CommandBody::Move { .. } => "MOVE",
        }
    }
}

/// `tag SP command CRLF` over one whole framed command. On failure, the tag if it was
/// readable.
pub(crate) fn command(c: &mut Cursor<'_>) -> Result<Command, (Option<String>, Fail)> {
    let tag = c.take_while(is_tag_char);
    if tag.is_empty() {
        return Err((None, syntax("expected a tag")));
    }
    // Tag characters are ASCII.
    let tag = String::from_utf8_lossy(tag).into_owned();
    if !c.eat(b' ') {
        let message = if c.at_line_end() {
            "expected a command after the tag"
        } else {
            "invalid character in the tag"
        };
        return Err((Some(tag), syntax(message)));
    }
    match command_body(c).and_then(|body| c.end_of_command().map(|()| body)) {
        Ok(body) => Ok(Command { tag, body }),
        Err(error) => Err((Some(tag), error)),
    }
}

fn unknown(name: &str) -> Fail {
    let shown: String = name.chars().take(32).collect();
    fail(
        ErrorKind::UnknownCommand,
        format!("unknown command {shown}"),
    )
}

fn command_body(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let name = c.atom("expected a command name")?;
    let body = match name.to_ascii_uppercase().as_str() {
        "CAPABILITY" => CommandBody::Capability,
        "NOOP" => CommandBody::Noop,
        "LOGOUT" => CommandBody::Logout,
        "ID" => session::id(c)?,
        "STARTTLS" => CommandBody::StartTls,
        "AUTHENTICATE" => auth::authenticate(c)?,
        "LOGIN" => auth::login(c)?,
        "ENABLE" => session::enable(c)?,
        "SELECT" => mailbox::select(c, false)?,
        "EXAMINE" => mailbox::select(c, true)?,
        "CREATE" => mailbox::create(c)?,
        "DELETE" => CommandBody::Delete {
            mailbox: mailbox::one_mailbox(c)?,
        },
        "RENAME" => mailbox::rename(c)?,
        "SUBSCRIBE" => CommandBody::Subscribe {
            mailbox: mailbox::one_mailbox(c)?,
        },
        "UNSUBSCRIBE" => CommandBody::Unsubscribe {
            mailbox: mailbox::one_mailbox(c)?,
        },
        "LIST" => list::list(c)?,
        "LSUB" => mailbox::lsub(c)?,
        "NAMESPACE" => CommandBody::Namespace,
        "STATUS" => mailbox::status(c)?,
        "APPEND" => append::append(c)?,
        "IDLE" => CommandBody::Idle,
        "GETQUOTA" => quota::get_quota(c)?,
        "GETQUOTAROOT" => CommandBody::GetQuotaRoot {
            mailbox: mailbox::one_mailbox(c)?,
        },
        "SETQUOTA" => quota::set_quota(c)?,
        "CHECK" => CommandBody::Check,
        "CLOSE" => CommandBody::Close,
        "UNSELECT" => CommandBody::Unselect,
        "EXPUNGE" => CommandBody::Expunge,
        "SEARCH" => search::search(c, false)?,
        "SORT" => sort::sort(c, false)?,
        "THREAD" => sort::thread(c, false)?,
        "FETCH" => fetch::fetch(c, false)?,
        "STORE" => message::store(c, false)?,
        "COPY" => message::copy(c, false)?,
        "MOVE" => message::move_(c, false)?,
        "UID" => {
            c.sp()?;
            let name = c.atom("expected a command after UID")?;
            match name.to_ascii_uppercase().as_str() {
                "SEARCH" => search::search(c, true)?,
                "SORT" => sort::sort(c, true)?,
                "THREAD" => sort::thread(c, true)?,
                "FETCH" => fetch::fetch(c, true)?,
                "STORE" => message::store(c, true)?,
                "COPY" => message::copy(c, true)?,
                "MOVE" => message::move_(c, true)?,
                "EXPUNGE" => message::uid_expunge(c)?,
                _ => return Err(unknown(&format!("UID {name}"))),
            }
        }
        _ => return Err(unknown(name)),
    };
    Ok(body)
}
