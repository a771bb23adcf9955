//! The I/O side of one IMAP session: the [`Connection`], the command reader that frames
//! commands and literals, what the client has enabled, and the loop that reads a
//! command, has [`state`](crate::state) run it, and writes the answers.

use std::sync::Arc;

use postcell_imap_proto::response::{Continuation, Data, StatusResponse};
use postcell_imap_proto::{Command, CommandReader, Limits, NonSyncLiterals, Progress, Utf8Mode};
use postcell_net::{Connection, LineError};

use crate::ImapServer;
use crate::state::{self, State};

/// Longest line read from the socket; the reader's `max_line` bounds a whole command.
const LINE_LIMIT: usize = 64 * 1024;

/// Literal data is read from the socket in pieces of at most this many octets.
const LITERAL_CHUNK: usize = 64 * 1024;

/// The largest literal accepted before login (a password at most).
const PRE_LOGIN_MAX_LITERAL: u64 = 8 * 1024;

/// Responses are flushed to the socket once this much is waiting, so a FETCH of a whole
/// mailbox does not build its answer in memory.
pub(crate) const FLUSH_THRESHOLD: usize = 256 * 1024;

/// What the client turned on with ENABLE (RFC 5161), or with a CONDSTORE-enabling
/// command (RFC 7162 section 3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Enabled {
    /// MODSEQ in FETCH responses.
    pub condstore: bool,
    /// VANISHED instead of EXPUNGE; implies `condstore`.
    pub qresync: bool,
    /// RFC 6855: UTF-8 in quoted strings and mailbox names.
    pub utf8_accept: bool,
    /// RFC 9051 semantics (no `\Recent`, UTF-8 names, ESEARCH for SEARCH).
    pub imap4rev2: bool,
}

/// Everything a session holds whatever its state.
pub(crate) struct Session {
    pub server: Arc<ImapServer>,
    pub conn: Connection,
    pub reader: CommandReader,
    pub utf8: Utf8Mode,
    pub enabled: Enabled,
    /// Failed LOGIN and AUTHENTICATE attempts in this session.
    pub auth_failures: u32,
    /// Bytes written since the last flush (an estimate, for [`FLUSH_THRESHOLD`]).
    unflushed: usize,
}

impl Session {
    /// Queues a response; it leaves with the next flush.
    pub fn write_data(&mut self, data: &Data) {
        let bytes = data.to_bytes(self.utf8);
        self.unflushed += bytes.len();
        self.conn.write(&bytes);
    }

    pub fn write_status(&mut self, status: StatusResponse) {
        let bytes = status.to_bytes(self.utf8);
        self.unflushed += bytes.len();
        self.conn.write(&bytes);
    }

    pub fn write_continuation(&mut self, continuation: &Continuation) {
        let bytes = continuation.to_bytes();
        self.unflushed += bytes.len();
        self.conn.write(&bytes);
    }

    /// Sends what is queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.unflushed = 0;
        self.conn.flush().await
    }

    /// Sends what is queued if it has grown large (long FETCH answers).
    pub async fn flush_if_large(&mut self) -> std::io::Result<()> {
        if self.unflushed >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        Ok(())
    }

    /// Whether LOGIN and AUTHENTICATE PLAIN/LOGIN may run on this connection.
    pub fn plaintext_allowed(&self) -> bool {
        self.conn.is_tls()
            || self.conn.peer().ip().is_loopback()
            || self.server.config.allow_plaintext_auth
    }

    pub fn store(&self) -> &postcell_store::Store {
        self.server.directory.store()
    }

    pub fn directory(&self) -> &postcell_directory::Directory {
        &self.server.directory
    }

    /// Turns on UTF-8 mode (ENABLE UTF8=ACCEPT or IMAP4rev2): names are read and written
    /// in UTF-8 from the next command on.
    pub fn set_utf8(&mut self) {
        self.utf8 = Utf8Mode::On;
        self.reader.set_utf8_mode(Utf8Mode::On);
    }

    /// After login: literals up to the message size limit.
    pub fn raise_limits(&mut self) {
        self.reader.set_limits(Limits {
            max_literal: self.server.config.max_message_size,
            ..Limits::default()
        });
    }

    /// The next command. Parse errors are answered here (`BAD ...`) and the next
    /// command is read; `Err` means the connection ended.
    async fn next_command(&mut self) -> Result<Command, LineError> {
        loop {
            match self.reader.read_command() {
                Ok(Progress::Command(command)) => return Ok(command),
                Ok(Progress::NeedMore) => {
                    self.reader.release_idle();
                    self.read_more(true).await?
                }
                Ok(Progress::NeedContinuation { .. }) => {
                    // The reader checked the size against its limit before asking.
                    self.write_continuation(&Continuation::ready());
                }
                Err(error) => {
                    tracing::debug!(%error, "unreadable command");
                    self.write_status(error.status_response());
                }
            }
        }
    }

    /// Reads what the reader waits for: literal octets, or the next line.
    /// `interruptible`: a shutdown may end a wait between commands.
    async fn read_more(&mut self, interruptible: bool) -> Result<(), LineError> {
        self.flush().await?;
        let literal = self.reader.literal_remaining();
        if literal > 0 {
            let n = usize::try_from(literal).map_or(LITERAL_CHUNK, |n| n.min(LITERAL_CHUNK));
            let data = self.conn.read_exact(n).await?;
            self.reader.feed(&data);
            return Ok(());
        }
        let line = if interruptible {
            self.conn.read_line(LINE_LIMIT).await
        } else {
            self.conn.read_continuation_line(LINE_LIMIT).await
        };
        match line {
            Ok(line) => {
                self.reader.feed(&line.text);
                // The line's own ending, so literal octet counts stay exact.
                self.reader.feed(if line.bare_lf { b"\n" } else { b"\r\n" });
                Ok(())
            }
            Err(LineError::TooLong) => {
                self.reader.reset();
                self.write_status(StatusResponse::bad(None, "Command line too long"));
                Ok(())
            }
            Err(end) => Err(end),
        }
    }

    /// The next raw line from the client, for what is not a command: a SASL response
    /// after AUTHENTICATE, `DONE` after IDLE. A line over the limit is an error.
    pub async fn read_raw_line(&mut self, interruptible: bool) -> Result<RawLine, LineError> {
        loop {
            match self.reader.read_line() {
                Ok(Some(line)) => return Ok(RawLine::Line(line)),
                Ok(None) => self.reader.release_idle(),
                Err(_) => return Ok(RawLine::TooLong),
            }
            self.flush().await?;
            let line = if interruptible {
                self.conn.read_line(LINE_LIMIT).await
            } else {
                self.conn.read_continuation_line(LINE_LIMIT).await
            };
            match line {
                Ok(line) => {
                    self.reader.feed(&line.text);
                    self.reader.feed(b"\r\n");
                }
                Err(LineError::TooLong) => return Ok(RawLine::TooLong),
                Err(end) => return Err(end),
            }
        }
    }
}

/// A raw line, or the news that it was too long (and was discarded).
pub(crate) enum RawLine {
    Line(Vec<u8>),
    TooLong,
}

pub(crate) async fn run(server: Arc<ImapServer>, mut conn: Connection) {
    metrics::counter!("postcell_imap_sessions_total").increment(1);
    metrics::gauge!("postcell_imap_sessions_active").increment(1.0);
    conn.set_idle_timeout(server.config.idle_timeout);
    // Before login nothing needs a large literal (a password at most), so an
    // unauthenticated client cannot make us read 64 MiB.
    let mut reader = CommandReader::new(Limits {
        max_literal: PRE_LOGIN_MAX_LITERAL,
        ..Limits::default()
    });
    reader.set_non_sync_literals(NonSyncLiterals::LiteralPlus);
    let mut session = Session {
        server,
        conn,
        reader,
        utf8: Utf8Mode::Off,
        enabled: Enabled::default(),
        auth_failures: 0,
        unflushed: 0,
    };
    let greeting = format!(
        "* OK [CAPABILITY {}] {} IMAP server ready\r\n",
        crate::command::any_state::capabilities(&session, false).join(" "),
        session.server.config.hostname
    );
    session.conn.write(greeting.as_bytes());
    let mut state = State::NotAuthenticated;
    loop {
        let command = match session.next_command().await {
            Ok(command) => command,
            Err(end) => {
                farewell(&mut session, &end).await;
                break;
            }
        };
        state = state::execute(&mut session, state, command).await;
        match state {
            State::Logout => {
                let _ = session.flush().await;
                session.conn.close().await;
                break;
            }
            State::Closed(ref end) => {
                farewell(&mut session, end).await;
                break;
            }
            _ => {}
        }
    }
    metrics::gauge!("postcell_imap_sessions_active").decrement(1.0);
}

/// Says why the session ends, when the client can still hear it.
pub(crate) async fn farewell(session: &mut Session, end: &LineError) {
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
