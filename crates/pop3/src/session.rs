//! One POP3 session: the AUTHORIZATION, TRANSACTION and UPDATE states of RFC 1939.
//!
//! Each state is its own type and answers only the commands RFC 1939 allows in it, so
//! RETR before login or USER after it cannot reach code that assumes otherwise.
//! AUTHORIZATION becomes TRANSACTION once the credentials check out and the maildrop
//! lease is ours; QUIT in TRANSACTION consumes it into UPDATE, which removes the
//! messages marked deleted in one store transaction and only then says goodbye.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use postcell_directory::AuthOutcome;
use postcell_directory::sasl::{self, SaslError};
use postcell_net::{CancellationToken, Connection, LineError};
use postcell_store::Store;
use thiserror::Error;

use crate::command::{self, Command, MessageNumber, Secret};
use crate::maildrop::{Lookup, Maildrop, MaildropLease};
use crate::{Pop3Server, reply};

/// RFC 2449 section 4 allows 255 octets for a command line; AUTH with an initial
/// response may need more, so command lines get some room beyond that.
const COMMAND_LINE_LIMIT: usize = 512;
/// A SASL response on its own line: a 1024-byte password and two identities in base64.
const SASL_LINE_LIMIT: usize = 2048;
/// After this many bad commands (unknown, malformed, out of state, failed logins) the
/// session is closed.
const MAX_ERRORS: u32 = 10;

/// The states a session can be in between commands. UPDATE is not among them: it is
/// entered by QUIT and ends the session.
enum State {
    Authorization(Authorization),
    // Boxed: it holds the maildrop and its lease, many times the size of the other.
    Transaction(Box<Transaction>),
}

/// What a command did to the session.
enum Step {
    Stay,
    Become(Box<State>),
    /// QUIT in TRANSACTION: enter UPDATE.
    Update,
    Close,
}

/// Why a session stops reading commands, other than QUIT.
#[derive(Debug, Error)]
enum SessionEnd {
    #[error("connection closed by the client")]
    Closed,
    #[error("idle timeout")]
    Timeout,
    #[error("server shutting down")]
    Shutdown,
    #[error("the maildrop lease was lost")]
    LeaseLost,
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

impl From<LineError> for SessionEnd {
    fn from(error: LineError) -> Self {
        match error {
            // Callers answer TooLong themselves; as an end it means the line never ended.
            LineError::TooLong | LineError::Closed => SessionEnd::Closed,
            LineError::Timeout => SessionEnd::Timeout,
            LineError::Shutdown => SessionEnd::Shutdown,
            LineError::Io(e) => SessionEnd::Io(e),
        }
    }
}

/// Everything a session holds whatever its state.
struct Session {
    server: Arc<Pop3Server>,
    conn: Connection,
    /// Bad commands so far.
    errors: u32,
    /// This session's name as a lease owner: unique in the cell.
    lease_owner: String,
}

pub(crate) async fn run(server: Arc<Pop3Server>, mut conn: Connection) {
    metrics::counter!("postcell_pop3_sessions_total").increment(1);
    conn.set_idle_timeout(server.config.idle_timeout);
    let lease_owner = format!(
        "{}:{:016x}",
        server.directory.store().node_id(),
        rand::random::<u64>()
    );
    let mut session = Session {
        server,
        conn,
        errors: 0,
        lease_owner,
    };
    session
        .conn
        .write(&reply::greeting(&session.server.config.hostname));
    let mut state = State::Authorization(Authorization::default());
    loop {
        let lease_lost = match &state {
            State::Transaction(transaction) => Some(transaction.lease.lost().clone()),
            State::Authorization(_) => None,
        };
        let command = match session.read_command(lease_lost).await {
            Ok(Some(command)) => command,
            Ok(None) => match session.bad_command(reply::LINE_TOO_LONG) {
                Step::Close => break,
                _ => continue,
            },
            Err(end) => {
                session.farewell(&end);
                break;
            }
        };
        let step = match &mut state {
            State::Authorization(authorization) => {
                authorization.handle(&mut session, command).await
            }
            State::Transaction(transaction) => transaction.handle(&mut session, command).await,
        };
        match step {
            Step::Stay => {}
            Step::Become(next) => state = *next,
            Step::Close => break,
            Step::Update => {
                if let State::Transaction(transaction) = state {
                    Update::from(*transaction).run(&mut session).await;
                }
                session.conn.close().await;
                return;
            }
        }
    }
    if let State::Transaction(transaction) = state {
        // Without QUIT nothing is deleted (RFC 1939 section 6); the lock goes.
        transaction.lease.release().await;
    }
    session.conn.close().await;
}

impl Session {
    /// Reads the next command: `Ok(None)` for a line over the limit (already skipped).
    /// In TRANSACTION the wait also ends if the maildrop lease is lost.
    async fn read_command(
        &mut self,
        lease_lost: Option<CancellationToken>,
    ) -> Result<Option<Command>, SessionEnd> {
        // Replies go out before the wait, so the read below never has output to flush and
        // abandoning it when the lease is lost cannot cut a reply in half.
        self.conn.flush().await?;
        let read = self.conn.read_line(COMMAND_LINE_LIMIT);
        let line = match lease_lost {
            Some(lost) => tokio::select! {
                biased;
                _ = lost.cancelled() => return Err(SessionEnd::LeaseLost),
                line = read => line,
            },
            None => read.await,
        };
        match line {
            Ok(line) => Ok(Some(command::parse(&line.text))),
            Err(LineError::TooLong) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Says why the session ends, where there is someone to tell.
    fn farewell(&mut self, end: &SessionEnd) {
        match end {
            SessionEnd::Closed => tracing::debug!("client closed the connection"),
            SessionEnd::Io(e) => tracing::info!(error = %e, "connection failed"),
            SessionEnd::Timeout => {
                tracing::info!("idle timeout");
                self.conn.write(reply::IDLE_TIMEOUT);
            }
            SessionEnd::Shutdown => self.conn.write(reply::SHUTTING_DOWN),
            SessionEnd::LeaseLost => {
                tracing::warn!("maildrop lease lost, ending the session");
                self.conn.write(reply::LEASE_LOST);
            }
        }
    }

    /// Answers a bad command, or closes the session once there have been too many.
    fn bad_command(&mut self, answer: &[u8]) -> Step {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            tracing::info!(errors = self.errors, "too many errors, closing");
            self.conn.write(reply::TOO_MANY_ERRORS);
            Step::Close
        } else {
            self.conn.write(answer);
            Step::Stay
        }
    }

    fn store(&self) -> &Store {
        self.server.directory.store()
    }

    fn plaintext_allowed(&self) -> bool {
        plaintext_allowed(
            self.conn.is_tls(),
            self.conn.peer().ip(),
            self.server.config.allow_plaintext_auth,
        )
    }

    /// CAPA (RFC 2449 section 5). Login and STLS capabilities are only shown while
    /// they can be used.
    fn capabilities(&mut self, authorization: bool) {
        let mut out = reply::CAPA_HEADER.to_vec();
        for capability in ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"] {
            reply::line(&mut out, capability);
        }
        if authorization && self.plaintext_allowed() {
            reply::line(&mut out, "USER");
            reply::line(&mut out, "SASL PLAIN");
        }
        if authorization && self.server.tls.is_some() && !self.conn.is_tls() {
            reply::line(&mut out, "STLS");
        }
        for capability in ["IMPLEMENTATION Postcell", "EXPIRE NEVER", "LOGIN-DELAY 0"] {
            reply::line(&mut out, capability);
        }
        out.extend_from_slice(reply::END_OF_MULTILINE);
        self.conn.write(&out);
    }
}

/// Passwords may cross a connection that is TLS, or that never leaves this host, or
/// any connection if the operator said so.
fn plaintext_allowed(is_tls: bool, peer: IpAddr, allow_plaintext_auth: bool) -> bool {
    is_tls || allow_plaintext_auth || peer.to_canonical().is_loopback()
}

fn login_metric(result: &'static str) {
    metrics::counter!("postcell_logins_total", "protocol" => "pop3", "result" => result)
        .increment(1);
}

/// AUTHORIZATION: the client has yet to prove who it is.
#[derive(Default)]
struct Authorization {
    /// The name given by USER, waiting for PASS.
    user: Option<String>,
}

impl Authorization {
    async fn handle(&mut self, session: &mut Session, command: Command) -> Step {
        match command {
            Command::Capa => {
                session.capabilities(true);
                Step::Stay
            }
            Command::Quit => {
                let farewell = reply::signing_off(&session.server.config.hostname);
                session.conn.write(&farewell);
                Step::Close
            }
            Command::Stls => self.start_tls(session).await,
            Command::User(name) => {
                if !session.plaintext_allowed() {
                    return session.bad_command(reply::AUTH_PLAINTEXT_DISALLOWED);
                }
                // Any name is accepted here, so USER does not tell who exists.
                self.user = Some(name);
                session.conn.write(reply::USER_ACCEPTED);
                Step::Stay
            }
            Command::Pass(password) => match self.user.take() {
                None => session.bad_command(reply::PASS_WITHOUT_USER),
                Some(user) => login(session, &user, password.expose()).await,
            },
            Command::Auth {
                mechanism: None, ..
            } => {
                let mut out = reply::SASL_MECHANISMS_HEADER.to_vec();
                if session.plaintext_allowed() {
                    reply::line(&mut out, "PLAIN");
                }
                out.extend_from_slice(reply::END_OF_MULTILINE);
                session.conn.write(&out);
                Step::Stay
            }
            Command::Auth {
                mechanism: Some(mechanism),
                initial_response,
            } => {
                self.user = None;
                if mechanism != "PLAIN" {
                    return session.bad_command(reply::AUTH_UNSUPPORTED_MECHANISM);
                }
                authenticate_plain(session, initial_response).await
            }
            Command::Invalid { usage } => session.bad_command(&reply::invalid_arguments(usage)),
            Command::Unknown => session.bad_command(reply::UNKNOWN_COMMAND),
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top { .. }
            | Command::Uidl(_) => session.bad_command(reply::WRONG_STATE),
        }
    }

    /// STLS (RFC 2595 section 4): once, before login, when we have a certificate.
    async fn start_tls(&mut self, session: &mut Session) -> Step {
        if session.conn.is_tls() {
            return session.bad_command(reply::STLS_ALREADY_ACTIVE);
        }
        let Some(acceptor) = session.server.tls.clone() else {
            return session.bad_command(reply::STLS_UNAVAILABLE);
        };
        session.conn.write(reply::STLS_BEGIN);
        match session.conn.start_tls(&acceptor).await {
            Ok(()) => {
                // Nothing learnt in the clear carries over into TLS.
                *self = Authorization::default();
                tracing::debug!(tls = ?session.conn.tls_description(), "STLS done");
                Step::Stay
            }
            Err(e) => {
                tracing::info!(error = %e, "STLS handshake failed");
                Step::Close
            }
        }
    }
}

/// AUTH PLAIN (RFC 5034 with RFC 4616), with the response on the command line or on a
/// line of its own after an empty `+ ` challenge.
async fn authenticate_plain(session: &mut Session, initial_response: Option<Secret>) -> Step {
    if !session.plaintext_allowed() {
        return session.bad_command(reply::AUTH_PLAINTEXT_DISALLOWED);
    }
    let response = match initial_response {
        Some(response) => response,
        None => {
            session.conn.write(reply::SASL_CONTINUE);
            match session.conn.read_continuation_line(SASL_LINE_LIMIT).await {
                Ok(line) => match String::from_utf8(line.text) {
                    Ok(text) => Secret(text),
                    Err(_) => return session.bad_command(reply::AUTH_INVALID_BASE64),
                },
                Err(LineError::TooLong) => return session.bad_command(reply::LINE_TOO_LONG),
                Err(e) => {
                    session.farewell(&e.into());
                    return Step::Close;
                }
            }
        }
    };
    match sasl::decode_plain(response.expose()) {
        Ok(credentials) => login(session, &credentials.username, &credentials.password).await,
        Err(SaslError::Cancelled) => {
            session.conn.write(reply::AUTH_CANCELLED);
            Step::Stay
        }
        Err(SaslError::InvalidBase64) => session.bad_command(reply::AUTH_INVALID_BASE64),
        Err(SaslError::Malformed(_)) => session.bad_command(reply::AUTH_MALFORMED),
        Err(SaslError::AuthzidMismatch) => session.bad_command(reply::AUTH_AUTHZID_MISMATCH),
    }
}

/// Checks the credentials, locks the maildrop and takes its snapshot: the way from
/// AUTHORIZATION into TRANSACTION.
async fn login(session: &mut Session, username: &str, password: &str) -> Step {
    let account = match session
        .server
        .directory
        .authenticate(username, password)
        .await
    {
        Ok(AuthOutcome::Success(account)) => account,
        Ok(AuthOutcome::Failure) => {
            login_metric("failure");
            tracing::info!(user = ?username, "login failed");
            return session.bad_command(reply::AUTH_FAILED);
        }
        Ok(AuthOutcome::Disabled) => {
            login_metric("disabled");
            tracing::info!(user = ?username, "login to a disabled account");
            return session.bad_command(reply::AUTH_DISABLED);
        }
        Ok(AuthOutcome::Busy) => {
            login_metric("busy");
            tracing::warn!("too many password checks waiting");
            session.conn.write(reply::AUTH_UNAVAILABLE);
            return Step::Stay;
        }
        Err(e) => {
            login_metric("error");
            tracing::warn!(error = %e, "cannot check credentials");
            session.conn.write(reply::AUTH_UNAVAILABLE);
            return Step::Stay;
        }
    };
    let store = session.store().clone();
    let ttl = session.server.config.lease_ttl;
    let lease = match MaildropLease::acquire(&store, account.id, &session.lease_owner, ttl).await {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            login_metric("in_use");
            tracing::info!(user = %account.name, "maildrop in use by another session");
            session.conn.write(reply::MAILDROP_IN_USE);
            return Step::Stay;
        }
        Err(e) => {
            login_metric("error");
            tracing::warn!(user = %account.name, error = %e, "cannot lock the maildrop");
            session.conn.write(reply::MAILDROP_UNAVAILABLE);
            return Step::Stay;
        }
    };
    let maildrop = match store.maildrop(account.id).await {
        Ok((mailbox_id, uid_validity, messages)) => {
            Maildrop::new(mailbox_id, uid_validity, messages)
        }
        Err(e) => {
            lease.release().await;
            login_metric("error");
            tracing::warn!(user = %account.name, error = %e, "cannot read the maildrop");
            session.conn.write(reply::MAILDROP_UNAVAILABLE);
            return Step::Stay;
        }
    };
    tracing::Span::current().record("user", account.name.as_str());
    login_metric("success");
    let (messages, octets) = maildrop.stat();
    tracing::info!(messages, octets, "logged in");
    session.conn.write(&reply::logged_in(messages, octets));
    Step::Become(Box::new(State::Transaction(Box::new(Transaction {
        account_id: account.id,
        maildrop,
        lease,
    }))))
}

/// TRANSACTION: the maildrop is ours, as it was at login, with deleted marks.
struct Transaction {
    account_id: i64,
    maildrop: Maildrop,
    lease: MaildropLease,
}

impl Transaction {
    async fn handle(&mut self, session: &mut Session, command: Command) -> Step {
        match command {
            Command::Capa => session.capabilities(false),
            Command::Stat => {
                let (messages, octets) = self.maildrop.stat();
                session.conn.write(&reply::stat(messages, octets));
            }
            Command::List(None) => {
                let (messages, octets) = self.maildrop.stat();
                let mut out = reply::list_header(messages, octets);
                for (number, entry) in self.maildrop.visible() {
                    reply::scan_listing(&mut out, false, number, entry.size);
                }
                out.extend_from_slice(reply::END_OF_MULTILINE);
                session.conn.write(&out);
            }
            Command::List(Some(number)) => match self.maildrop.get(number) {
                Ok(entry) => {
                    let mut out = Vec::new();
                    reply::scan_listing(&mut out, true, number, entry.size);
                    session.conn.write(&out);
                }
                Err(lookup) => refuse(session, number, lookup),
            },
            Command::Uidl(None) => {
                let mut out = reply::UIDL_HEADER.to_vec();
                for (number, entry) in self.maildrop.visible() {
                    reply::unique_id_listing(
                        &mut out,
                        false,
                        number,
                        &self.maildrop.unique_id(entry),
                    );
                }
                out.extend_from_slice(reply::END_OF_MULTILINE);
                session.conn.write(&out);
            }
            Command::Uidl(Some(number)) => match self.maildrop.get(number) {
                Ok(entry) => {
                    let mut out = Vec::new();
                    reply::unique_id_listing(
                        &mut out,
                        true,
                        number,
                        &self.maildrop.unique_id(entry),
                    );
                    session.conn.write(&out);
                }
                Err(lookup) => refuse(session, number, lookup),
            },
            Command::Retr(number) => self.send_message(session, number, None).await,
            Command::Top { message, lines } => {
                self.send_message(session, message, Some(lines)).await
            }
            Command::Dele(number) => match self.maildrop.delete(number) {
                Ok(()) => session.conn.write(&reply::deleted(number)),
                Err(lookup) => refuse(session, number, lookup),
            },
            Command::Noop => session.conn.write(reply::OK),
            Command::Rset => {
                self.maildrop.reset();
                let (messages, octets) = self.maildrop.stat();
                session.conn.write(&reply::reset(messages, octets));
            }
            Command::Quit => return Step::Update,
            Command::Invalid { usage } => {
                return session.bad_command(&reply::invalid_arguments(usage));
            }
            Command::Unknown => return session.bad_command(reply::UNKNOWN_COMMAND),
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Stls => {
                return session.bad_command(reply::WRONG_STATE);
            }
        }
        Step::Stay
    }

    /// RETR (`body_lines` None) and TOP: the stored bytes, dot-stuffed.
    async fn send_message(
        &self,
        session: &mut Session,
        number: MessageNumber,
        body_lines: Option<u64>,
    ) {
        let entry = match self.maildrop.get(number) {
            Ok(entry) => entry,
            Err(lookup) => return refuse(session, number, lookup),
        };
        let data = match session
            .store()
            .get_message_blob(
                &entry.blob_id,
                i64::try_from(entry.size).unwrap_or(i64::MAX),
            )
            .await
        {
            Ok(data) => data,
            Err(e) => {
                tracing::error!(uid = entry.uid, blob = %entry.blob_id, error = %e, "cannot read a message");
                session.conn.write(&reply::message_unreadable(number));
                return;
            }
        };
        let mut out = match body_lines {
            None => reply::retr_header(entry.size),
            Some(_) => reply::TOP_HEADER.to_vec(),
        };
        reply::message(&mut out, &data, body_lines);
        session.conn.write(&out);
        if body_lines.is_none() {
            metrics::counter!("postcell_pop3_messages_retrieved_total").increment(1);
        }
    }
}

fn refuse(session: &mut Session, number: MessageNumber, lookup: Lookup) {
    match lookup {
        Lookup::NoSuchMessage => session.conn.write(reply::NO_SUCH_MESSAGE),
        Lookup::AlreadyDeleted => session.conn.write(&reply::already_deleted(number)),
    }
}

/// UPDATE (RFC 1939 section 6): entered by QUIT from TRANSACTION, it removes the
/// messages marked deleted, all or none, and ends the session.
struct Update {
    account_id: i64,
    maildrop: Maildrop,
    lease: MaildropLease,
}

impl From<Transaction> for Update {
    fn from(transaction: Transaction) -> Self {
        Update {
            account_id: transaction.account_id,
            maildrop: transaction.maildrop,
            lease: transaction.lease,
        }
    }
}

impl Update {
    async fn run(self, session: &mut Session) {
        let Update {
            account_id,
            maildrop,
            lease,
        } = self;
        let uids = maildrop.deleted_uids();
        // The reply waits for the commit (design rule 3) and for the lease to be given
        // back, so a client that reconnects at once finds the maildrop free.
        let answer = if uids.is_empty() {
            lease.release().await;
            reply::signing_off_after_update(&session.server.config.hostname, 0)
        } else if !lease.confirm().await {
            // Another session may own the maildrop now: touch nothing.
            lease.release().await;
            tracing::warn!("maildrop lease lost before UPDATE; nothing deleted");
            reply::UPDATE_FAILED.to_vec()
        } else {
            let outcome = session
                .store()
                .expunge_uids(account_id, maildrop.mailbox_id, &uids)
                .await;
            lease.release().await;
            match outcome {
                Ok(removed) => {
                    metrics::counter!("postcell_pop3_messages_deleted_total").increment(removed);
                    tracing::info!(deleted = uids.len(), removed, "maildrop updated");
                    reply::signing_off_after_update(&session.server.config.hostname, uids.len())
                }
                Err(e) => {
                    tracing::error!(error = %e, "UPDATE failed; nothing deleted");
                    reply::UPDATE_FAILED.to_vec()
                }
            }
        };
        session.conn.write(&answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_the_clear_only_over_tls_loopback_or_by_choice() {
        let remote: IpAddr = "192.0.2.1".parse().unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped_loopback: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(!plaintext_allowed(false, remote, false));
        assert!(plaintext_allowed(true, remote, false));
        assert!(plaintext_allowed(false, remote, true));
        assert!(plaintext_allowed(false, loopback, false));
        assert!(plaintext_allowed(false, "::1".parse().unwrap(), false));
        assert!(plaintext_allowed(false, mapped_loopback, false));
    }
}
