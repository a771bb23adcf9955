//! One IMAP session: the read loop and the Not-Authenticated / Authenticated /
//! Selected / Logout states of RFC 9051 section 3.

use std::sync::Arc;

use postcell_imap_proto::response::{Continuation, Data, NamespaceDescription, StatusResponse};
use postcell_imap_proto::{Command, CommandBody, CommandReader, Limits, Progress, Utf8Mode};
use postcell_net::{Connection, LineError};

use crate::ImapServer;
use crate::command;
use crate::selected::SelectedMailbox;

/// Longest command line we read; the reader's `max_line` bounds the whole command.
const LINE_LIMIT: usize = 64 * 1024;

/// The largest literal accepted before login.
const PRE_LOGIN_MAX_LITERAL: u64 = 8 * 1024;

/// The state between commands.
pub(crate) enum State {
    NotAuthenticated,
    Authenticated(Login),
    Selected(Login, SelectedMailbox),
    Logout,
}

/// Who logged in.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub account_id: i64,
}

/// Everything a session holds whatever its state.
pub(crate) struct Session {
    pub server: Arc<ImapServer>,
    pub conn: Connection,
    pub utf8: Utf8Mode,
}

impl Session {
    /// Queues a response; it leaves with the next flush.
    pub fn write_data(&mut self, data: &Data) {
        let bytes = data.to_bytes(self.utf8);
        self.conn.write(&bytes);
    }

    pub fn write_status(&mut self, status: StatusResponse) {
        let bytes = status.to_bytes(self.utf8);
        self.conn.write(&bytes);
    }

    /// Whether LOGIN and AUTHENTICATE PLAIN may run on this connection.
    pub fn plaintext_allowed(&self) -> bool {
        self.conn.is_tls()
            || self.conn.peer().ip().is_loopback()
            || self.server.config.allow_plaintext_auth
    }

    pub fn store(&self) -> &postcell_store::Store {
        self.server.directory.store()
    }
}

pub(crate) async fn run(server: Arc<ImapServer>, mut conn: Connection) {
    metrics::counter!("postcell_imap_sessions_total").increment(1);
    conn.set_idle_timeout(server.config.idle_timeout);
    let mut session = Session {
        server,
        conn,
        utf8: Utf8Mode::Off,
    };
    let greeting = format!(
        "* OK [CAPABILITY {}] {} IMAP server ready\r\n",
        command::auth::capabilities(&session, false).join(" "),
        session.server.config.hostname
    );
    session.conn.write(greeting.as_bytes());
    // Before login nothing needs a large literal (a password at most), so an
    // unauthenticated client cannot make us read 64 MiB.
    let mut reader = CommandReader::new(Limits {
        max_literal: PRE_LOGIN_MAX_LITERAL,
        ..Limits::default()
    });
    let mut state = State::NotAuthenticated;
    loop {
        let command = match reader.read_command() {
            Ok(Progress::Command(command)) => command,
            Ok(Progress::NeedMore) => {
                if session.conn.flush().await.is_err() {
                    return;
                }
                match session.conn.read_line(LINE_LIMIT).await {
                    Ok(line) => {
                        reader.feed(&line.text);
                        reader.feed(b"\r\n");
                    }
                    Err(LineError::TooLong) => {
                        reader.reset();
                        session.write_status(StatusResponse::bad(None, "Command line too long"));
                    }
                    Err(end) => {
                        farewell(&mut session, &end).await;
                        return;
                    }
                }
                continue;
            }
            Ok(Progress::NeedContinuation { literal_size }) => {
                // The reader checked the size against its limit before asking.
                session.conn.write(&Continuation::ready().to_bytes());
                if session.conn.flush().await.is_err() {
                    return;
                }
                match session.conn.read_exact(literal_size as usize).await {
                    Ok(data) => reader.feed(&data),
                    Err(end) => {
                        farewell(&mut session, &end).await;
                        return;
                    }
                }
                continue;
            }
            Err(error) => {
                session.write_status(error.status_response());
                continue;
            }
        };
        let was_authenticated = !matches!(state, State::NotAuthenticated);
        state = execute(&mut session, state, command).await;
        if !was_authenticated && matches!(state, State::Authenticated(_)) {
            reader.set_limits(Limits::default());
        }
        if matches!(state, State::Logout) {
            let _ = session.conn.flush().await;
            session.conn.close().await;
            return;
        }
    }
}

/// Says why the session ends, when the client can still hear it.
async fn farewell(session: &mut Session, end: &LineError) {
    let text: &[u8] = match end {
        LineError::Timeout => b"* BYE Autologout; idle for too long\r\n",
        LineError::Shutdown => b"* BYE [UNAVAILABLE] Server shutting down\r\n",
        _ => b"",
    };
    if !text.is_empty() {
        let _ = session.conn.send(text).await;
    }
    session.conn.close().await;
}

fn command_name(body: &CommandBody) -> &'static str {
    match body {
        CommandBody::Capability => "capability",
        CommandBody::Noop => "noop",
        CommandBody::Logout => "logout",
        CommandBody::Login { .. } => "login",
        CommandBody::Select { .. } => "select",
        CommandBody::Examine { .. } => "examine",
        CommandBody::List(_) => "list",
        CommandBody::Fetch(_) => "fetch",
        CommandBody::Check => "check",
        CommandBody::Close => "close",
        CommandBody::Unselect => "unselect",
        CommandBody::Create { .. } => "create",
        CommandBody::Delete { .. } => "delete",
        CommandBody::Rename { .. } => "rename",
        CommandBody::Subscribe { .. } => "subscribe",
        CommandBody::Unsubscribe { .. } => "unsubscribe",
        CommandBody::Status { .. } => "status",
        CommandBody::Store(_) => "store",
        CommandBody::Expunge => "expunge",
        CommandBody::Append(_) => "append",
        CommandBody::Search(_) => "search",
        CommandBody::Sort(_) => "sort",
        CommandBody::Thread(_) => "thread",
        CommandBody::Id { .. } => "id",
        CommandBody::Namespace => "namespace",
        CommandBody::Copy { .. } => "copy",
        CommandBody::Move { .. } => "move",
        CommandBody::UidExpunge { .. } => "uid_expunge",
        _ => "other",
    }
}

/// Runs one command in `state` and returns the next state.
async fn execute(session: &mut Session, state: State, command: Command) -> State {
    let Command { tag, body } = command;
    metrics::counter!("postcell_imap_commands_total", "command" => command_name(&body))
        .increment(1);
    match (state, body) {
        (state, CommandBody::Capability) => {
            let authenticated = !matches!(state, State::NotAuthenticated);
            let capabilities = command::auth::capabilities(session, authenticated);
            session.write_data(&Data::Capability(capabilities));
            session.write_status(StatusResponse::ok(Some(tag), "CAPABILITY completed"));
            state
        }
        (State::Selected(login, mut selected), CommandBody::Noop | CommandBody::Check) => {
            command::mailbox::sync(session, &mut selected, true).await;
            session.write_status(StatusResponse::ok(Some(tag), "Completed"));
            State::Selected(login, selected)
        }
        (state, CommandBody::Noop) => {
            session.write_status(StatusResponse::ok(Some(tag), "NOOP completed"));
            state
        }
        (state, CommandBody::Id { .. }) => {
            // RFC 2971: the server's identification.
            session.write_data(&Data::Id(Some(vec![(
                "name".to_owned(),
                Some("Postcell".to_owned()),
            )])));
            session.write_status(StatusResponse::ok(Some(tag), "ID completed"));
            state
        }
        (state @ (State::Authenticated(_) | State::Selected(..)), CommandBody::Namespace) => {
            // RFC 2342: one personal namespace, no others.
            session.write_data(&Data::Namespace {
                personal: vec![NamespaceDescription {
                    prefix: String::new(),
                    delimiter: Some('/'),
                }],
                other_users: Vec::new(),
                shared: Vec::new(),
            });
            session.write_status(StatusResponse::ok(Some(tag), "NAMESPACE completed"));
            state
        }
        (_, CommandBody::Logout) => {
            session.conn.write(b"* BYE Logging out\r\n");
            session.write_status(StatusResponse::ok(Some(tag), "LOGOUT completed"));
            State::Logout
        }
        (State::NotAuthenticated, CommandBody::Login { username, password }) => {
            command::auth::login(session, tag, &username, password.as_bytes()).await
        }
        (
            State::Authenticated(login) | State::Selected(login, _),
            CommandBody::Select {
                mailbox,
                parameters: _,
            },
        ) => command::mailbox::select(session, tag, login, mailbox.as_str(), false).await,
        (
            State::Authenticated(login) | State::Selected(login, _),
            CommandBody::Examine {
                mailbox,
                parameters: _,
            },
        ) => command::mailbox::select(session, tag, login, mailbox.as_str(), true).await,
        (state @ (State::Authenticated(_) | State::Selected(..)), CommandBody::List(list)) => {
            let account_id = match &state {
                State::Authenticated(login) | State::Selected(login, _) => login.account_id,
                _ => unreachable!("matched above"),
            };
            command::mailbox::list(session, tag, account_id, &list.reference, &list.patterns).await;
            state
        }
        (
            state @ (State::Authenticated(_) | State::Selected(..)),
            body @ (CommandBody::Create { .. }
            | CommandBody::Delete { .. }
            | CommandBody::Rename { .. }
            | CommandBody::Subscribe { .. }
            | CommandBody::Unsubscribe { .. }
            | CommandBody::Status { .. }),
        ) => {
            let account_id = match &state {
                State::Authenticated(login) | State::Selected(login, _) => login.account_id,
                _ => unreachable!("matched above"),
            };
            match body {
                CommandBody::Create {
                    mailbox,
                    special_use,
                } => {
                    command::mailbox::create(
                        session,
                        tag,
                        account_id,
                        mailbox.as_str(),
                        &special_use,
                    )
                    .await
                }
                CommandBody::Status { mailbox, items } => {
                    command::mailbox::status(session, tag, account_id, &mailbox, &items).await
                }
                body => command::mailbox::manage(session, tag, account_id, body).await,
            }
            state
        }
        (State::Authenticated(login), CommandBody::Append(append)) => {
            command::append::append(session, tag, login.account_id, append).await;
            State::Authenticated(login)
        }
        (State::Selected(login, selected), CommandBody::Append(append)) => {
            // An APPEND to the selected mailbox is reported (EXISTS) by the next NOOP.
            command::append::append(session, tag, login.account_id, append).await;
            State::Selected(login, selected)
        }
        (State::Selected(login, mut selected), CommandBody::Copy { uid, set, mailbox }) => {
            command::copy::copy(
                session,
                tag,
                &login,
                &mut selected,
                uid,
                &set,
                &mailbox,
                false,
            )
            .await;
            State::Selected(login, selected)
        }
        (State::Selected(login, mut selected), CommandBody::Move { uid, set, mailbox }) => {
            command::copy::copy(
                session,
                tag,
                &login,
                &mut selected,
                uid,
                &set,
                &mailbox,
                true,
            )
            .await;
            State::Selected(login, selected)
        }
        (State::Selected(login, mut selected), CommandBody::Search(search)) => {
            command::search::search(session, tag, &mut selected, search).await;
            State::Selected(login, selected)
        }
        (State::Selected(login, mut selected), CommandBody::Sort(sort)) => {
            command::sort::sort(session, tag, &mut selected, sort).await;
            State::Selected(login, selected)
        }
        (State::Selected(login, mut selected), CommandBody::Thread(thread)) => {
            command::thread::thread(session, tag, &mut selected, thread).await;
            State::Selected(login, selected)
        }
        (State::Selected(login, mut selected), CommandBody::Store(store)) => {
            command::store::store(session, tag, &login, &mut selected, store).await;
            State::Selected(login, selected)
        }
        (State::Selected(login, mut selected), CommandBody::Expunge) => {
            command::expunge::expunge(session, tag, &login, &mut selected, None).await;
            State::Selected(login, selected)
        }
        (State::Selected(login, mut selected), CommandBody::UidExpunge { uids }) => {
            command::expunge::expunge(session, tag, &login, &mut selected, Some(&uids)).await;
            State::Selected(login, selected)
        }
        (State::Selected(login, mut selected), CommandBody::Fetch(fetch)) => {
            command::fetch::fetch(session, tag, &login, &mut selected, fetch).await;
            State::Selected(login, selected)
        }
        (State::Selected(login, selected), CommandBody::Close) if !selected.read_only => {
            // RFC 9051 section 6.4.2: CLOSE expunges, silently (mbsync expunges so).
            let store = session.store().clone();
            let all = postcell_store::UidRanges::all();
            match store
                .expunge_deleted(login.account_id, selected.mailbox_id, &all)
                .await
            {
                Ok(_) => {
                    session.write_status(StatusResponse::ok(Some(tag), "Mailbox closed"));
                    State::Authenticated(login)
                }
                Err(error) => {
                    command::mailbox::unavailable(session, tag, &error);
                    State::Selected(login, selected)
                }
            }
        }
        (State::Selected(login, _), CommandBody::Close | CommandBody::Unselect) => {
            session.write_status(StatusResponse::ok(Some(tag), "Mailbox closed"));
            State::Authenticated(login)
        }
        (state, body) => {
            let text = if is_known(&body) {
                "Command not valid in this state"
            } else {
                "Command not implemented yet"
            };
            let _ = body;
            session.write_status(StatusResponse::bad(Some(tag), text));
            state
        }
    }
}

/// Commands this slice runs in some state; the others are answered as not implemented.
fn is_known(body: &CommandBody) -> bool {
    command_name(body) != "other"
}
