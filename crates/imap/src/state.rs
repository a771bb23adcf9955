//! The states of an IMAP session (RFC 9051 section 3) and which commands each allows.
//!
//! ```text
//!   NotAuthenticated --LOGIN/AUTHENTICATE--> Authenticated --SELECT/EXAMINE--> Selected
//!         |                                     ^   |                             |
//!         |                                     |   +------------ LOGOUT ---------+--> Logout
//!         +---------------- LOGOUT -------------|-------------------------------------^
//!                                               +--- CLOSE / UNSELECT / failed SELECT -+
//! ```
//!
//! A command reaches its handler only in a state that allows it: the handler's
//! arguments (a [`Login`], a [`SelectedMailbox`]) exist only there. Everything else is
//! answered `BAD Command not valid in this state` by one arm.

use postcell_imap_proto::response::StatusResponse;
use postcell_imap_proto::{Command, CommandBody};
use postcell_net::LineError;

use crate::command;
use crate::selected::SelectedMailbox;
use crate::session::Session;

/// The state between commands.
pub(crate) enum State {
    NotAuthenticated,
    Authenticated(Login),
    Selected(Login, SelectedMailbox),
    Logout,
    /// The connection ended in the middle of a command (during IDLE or a SASL
    /// exchange): the session says why, if it can, and stops.
    Closed(LineError),
}

/// Who logged in.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub account_id: i64,
}

fn command_name(body: &CommandBody) -> &'static str {
    match body {
        CommandBody::Capability => "capability",
        CommandBody::Noop => "noop",
        CommandBody::Logout => "logout",
        CommandBody::Id { .. } => "id",
        CommandBody::StartTls => "starttls",
        CommandBody::Authenticate { .. } => "authenticate",
        CommandBody::Login { .. } => "login",
        CommandBody::Enable { .. } => "enable",
        CommandBody::Select { .. } => "select",
        CommandBody::Examine { .. } => "examine",
        CommandBody::Create { .. } => "create",
        CommandBody::Delete { .. } => "delete",
        CommandBody::Rename { .. } => "rename",
        CommandBody::Subscribe { .. } => "subscribe",
        CommandBody::Unsubscribe { .. } => "unsubscribe",
        CommandBody::List(_) => "list",
        CommandBody::Lsub { .. } => "lsub",
        CommandBody::Namespace => "namespace",
        CommandBody::Status { .. } => "status",
        CommandBody::Append(_) => "append",
        CommandBody::Idle => "idle",
        CommandBody::GetQuota { .. } => "getquota",
        CommandBody::GetQuotaRoot { .. } => "getquotaroot",
        CommandBody::SetQuota { .. } => "setquota",
        CommandBody::Check => "check",
        CommandBody::Close => "close",
        CommandBody::Unselect => "unselect",
        CommandBody::Expunge => "expunge",
        CommandBody::UidExpunge { .. } => "uid_expunge",
        CommandBody::Search(_) => "search",
        CommandBody::Sort(_) => "sort",
        CommandBody::Thread(_) => "thread",
        CommandBody::Fetch(_) => "fetch",
        CommandBody::Store(_) => "store",
        CommandBody::Copy { .. } => "copy",
        CommandBody::Move { .. } => "move",
    }
}

/// Runs one command in `state` and returns the next state.
///
/// IDLE runs here, every other command in [`dispatch`], boxed: an async function's
/// state is as large as the largest of the futures it awaits, and a session waiting in
/// IDLE holds this one, so unboxed the biggest command (a FETCH, a SEARCH) would set
/// what each of thousands of idling connections keeps: 17.6 KB, against 1.6 KB. The box
/// costs one allocation per command.
pub(crate) async fn execute(session: &mut Session, state: State, command: Command) -> State {
    let Command { tag, body } = command;
    metrics::counter!("postcell_imap_commands_total", "command" => command_name(&body))
        .increment(1);
    match (state, body) {
        (State::Authenticated(login), CommandBody::Idle) => command::idle::idle(session, tag, None)
            .await
            .map_or_else(State::Closed, |()| State::Authenticated(login)),
        (State::Selected(login, mut selected), CommandBody::Idle) => {
            match command::idle::idle(session, tag, Some(&mut selected)).await {
                Ok(()) => State::Selected(login, selected),
                Err(end) => State::Closed(end),
            }
        }
        (state, body) => Box::pin(dispatch(session, state, tag, body)).await,
    }
}

async fn dispatch(session: &mut Session, state: State, tag: String, body: CommandBody) -> State {
    match (state, body) {
        // Any state (RFC 9051 section 6.1).
        (state, CommandBody::Capability) => {
            command::any_state::capability(session, tag, !matches!(state, State::NotAuthenticated));
            state
        }
        (State::Selected(login, mut selected), CommandBody::Noop | CommandBody::Check) => {
            command::select::sync(session, &mut selected, true).await;
            session.write_status(StatusResponse::ok(Some(tag), "Completed"));
            State::Selected(login, selected)
        }
        (state, CommandBody::Noop) => {
            session.write_status(StatusResponse::ok(Some(tag), "NOOP completed"));
            state
        }
        (state, CommandBody::Id { parameters }) => {
            command::any_state::id(session, tag, parameters.as_deref());
            state
        }
        (_, CommandBody::Logout) => {
            command::any_state::logout(session, tag);
            State::Logout
        }

        // Not authenticated (section 6.2).
        (State::NotAuthenticated, CommandBody::StartTls) => {
            command::auth::starttls(session, tag).await
        }
        (State::NotAuthenticated, CommandBody::Login { username, password }) => {
            command::auth::login(session, tag, &username, password.as_bytes()).await
        }
        (
            State::NotAuthenticated,
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            },
        ) => command::auth::authenticate(session, tag, &mechanism, initial_response).await,

        // Authenticated, and so also selected (section 6.3).
        (State::Authenticated(login), CommandBody::Enable { capabilities }) => {
            command::enable::enable(session, tag, &capabilities);
            State::Authenticated(login)
        }
        (
            state @ (State::Authenticated(_) | State::Selected(..)),
            CommandBody::Select {
                mailbox,
                parameters,
            },
        ) => command::select::select(session, tag, state, &mailbox, &parameters, false).await,
        (
            state @ (State::Authenticated(_) | State::Selected(..)),
            CommandBody::Examine {
                mailbox,
                parameters,
            },
        ) => command::select::select(session, tag, state, &mailbox, &parameters, true).await,
        (State::Authenticated(login), body) if is_authenticated_command(&body) => {
            authenticated(session, tag, &login, None, body).await;
            State::Authenticated(login)
        }
        (State::Selected(login, mut selected), body) if is_authenticated_command(&body) => {
            authenticated(session, tag, &login, Some(&mut selected), body).await;
            State::Selected(login, selected)
        }
        // Selected (section 6.4).
        (State::Selected(login, mut selected), body) => {
            match selected_command(session, tag, &login, &mut selected, body).await {
                Selected::Stay => State::Selected(login, selected),
                Selected::Close => State::Authenticated(login),
                Selected::NotHere(tag) => {
                    session.write_status(StatusResponse::bad(
                        Some(tag),
                        "Command not valid in this state",
                    ));
                    State::Selected(login, selected)
                }
            }
        }
        (state, _) => {
            session.write_status(StatusResponse::bad(
                Some(tag),
                "Command not valid in this state",
            ));
            state
        }
    }
}

/// The commands of the authenticated state that need nothing of the selected mailbox
/// beyond a sync of it.
fn is_authenticated_command(body: &CommandBody) -> bool {
    matches!(
        body,
        CommandBody::Create { .. }
            | CommandBody::Delete { .. }
            | CommandBody::Rename { .. }
            | CommandBody::Subscribe { .. }
            | CommandBody::Unsubscribe { .. }
            | CommandBody::List(_)
            | CommandBody::Lsub { .. }
            | CommandBody::Namespace
            | CommandBody::Status { .. }
            | CommandBody::Append(_)
            | CommandBody::GetQuota { .. }
            | CommandBody::GetQuotaRoot { .. }
            | CommandBody::SetQuota { .. }
    )
}

async fn authenticated(
    session: &mut Session,
    tag: String,
    login: &Login,
    mut selected: Option<&mut SelectedMailbox>,
    body: CommandBody,
) {
    let account_id = login.account_id;
    if let Some(selected) = selected.as_deref_mut()
        && !matches!(body, CommandBody::Append(_))
    {
        command::select::sync(session, selected, true).await;
    }
    match body {
        CommandBody::Create {
            mailbox,
            special_use,
        } => command::mailbox::create(session, tag, account_id, &mailbox, &special_use).await,
        CommandBody::Delete { mailbox } => {
            command::mailbox::delete(session, tag, account_id, &mailbox).await
        }
        CommandBody::Rename { from, to } => {
            command::mailbox::rename(session, tag, account_id, &from, &to).await
        }
        CommandBody::Subscribe { mailbox } => {
            command::mailbox::subscribe(session, tag, account_id, &mailbox, true).await
        }
        CommandBody::Unsubscribe { mailbox } => {
            command::mailbox::subscribe(session, tag, account_id, &mailbox, false).await
        }
        CommandBody::Status { mailbox, items } => {
            command::mailbox::status(session, tag, account_id, &mailbox, &items).await
        }
        CommandBody::Namespace => command::mailbox::namespace(session, tag),
        CommandBody::List(list) => command::list::list(session, tag, account_id, &list).await,
        CommandBody::Lsub { reference, pattern } => {
            command::list::lsub(session, tag, account_id, &reference, &pattern).await
        }
        CommandBody::Append(append) => {
            command::append::append(session, tag, account_id, append, selected).await
        }
        CommandBody::GetQuota { root } => {
            command::quota::get_quota(session, tag, account_id, &root).await
        }
        CommandBody::GetQuotaRoot { mailbox } => {
            command::quota::get_quota_root(session, tag, account_id, &mailbox).await
        }
        CommandBody::SetQuota { .. } => command::quota::set_quota(session, tag),
        _ => session.write_status(StatusResponse::bad(
            Some(tag),
            "Command not valid in this state",
        )),
    }
}

/// What a command of the selected state leaves behind.
enum Selected {
    Stay,
    /// CLOSE or UNSELECT: back to the authenticated state.
    Close,
    /// Not a command of the selected state.
    NotHere(String),
}

async fn selected_command(
    session: &mut Session,
    tag: String,
    login: &Login,
    selected: &mut SelectedMailbox,
    body: CommandBody,
) -> Selected {
    // Others' changes are reported before the command's own answers. RFC 9051 section
    // 7.5.1: no EXPUNGE during FETCH, STORE or SEARCH (their UID forms may have them);
    // SORT and THREAD answer with message numbers as SEARCH does.
    let allow_expunge = match &body {
        CommandBody::Fetch(fetch) => Some(fetch.uid),
        CommandBody::Store(store) => Some(store.uid),
        CommandBody::Search(search) => Some(search.uid),
        CommandBody::Sort(sort) => Some(sort.uid),
        CommandBody::Thread(thread) => Some(thread.uid),
        // CLOSE and UNSELECT leave the mailbox (IDLE, which reads changes itself, runs
        // in `execute`).
        CommandBody::Close | CommandBody::Unselect => None,
        _ => Some(true),
    };
    if let Some(allow_expunge) = allow_expunge {
        command::select::sync(session, selected, allow_expunge).await;
    }
    match body {
        CommandBody::Fetch(fetch) => {
            command::fetch::fetch(session, tag, login, selected, fetch).await
        }
        CommandBody::Store(store) => {
            command::store::store(session, tag, login, selected, store).await
        }
        CommandBody::Search(search) => {
            command::search::search(session, tag, selected, search).await
        }
        CommandBody::Sort(sort) => command::sort::sort(session, tag, selected, sort).await,
        CommandBody::Thread(thread) => {
            command::thread::thread(session, tag, selected, thread).await
        }
        CommandBody::Copy { uid, set, mailbox } => {
            command::copy::copy(session, tag, login, selected, uid, &set, &mailbox, false).await
        }
        CommandBody::Move { uid, set, mailbox } => {
            command::copy::copy(session, tag, login, selected, uid, &set, &mailbox, true).await
        }
        CommandBody::Expunge => {
            command::expunge::expunge(session, tag, login, selected, None).await
        }
        CommandBody::UidExpunge { uids } => {
            command::expunge::expunge(session, tag, login, selected, Some(&uids)).await
        }
        CommandBody::Close => {
            command::select::close(session, tag, login, selected).await;
            return Selected::Close;
        }
        CommandBody::Unselect => {
            session.write_status(StatusResponse::ok(Some(tag), "UNSELECT completed"));
            return Selected::Close;
        }
        _ => return Selected::NotHere(tag),
    }
    Selected::Stay
}
