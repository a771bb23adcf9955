//! The streaming command reader: bytes in, commands out, literals handled.
//!
//! A command is one or more lines; a line that ends with a literal announcement
//! (`{n}`, `{n+}` or `~{n}` just before its CRLF) is followed by `n` octets of literal
//! data and then by the rest of the command (RFC 9051 section 4.3):
//!
//! ```text
//! C: A001 LOGIN {11}
//! S: + Ready for literal data          <- Progress::NeedContinuation { literal_size: 11 }
//! C: FRED FOOBAR {7}
//! S: + Ready for literal data
//! C: fat man
//! S: A001 OK LOGIN completed           <- Progress::Command(LOGIN "FRED FOOBAR" "fat man")
//! ```
//!
//! The reader finds where each command ends from these announcements alone, so it never
//! mistakes literal data for command text. Before it asks for (or accepts) a literal it
//! checks the command so far, so a broken command or an oversized literal is refused
//! before the client sends the data. After any error it skips the rest of the bad
//! command, including the octets of any non-synchronizing literal the client announced,
//! and reads the next command from a clean line.

use crate::command::{self, Command};
use crate::error::{ErrorKind, ParseError};
use crate::lexer::{Cursor, Fail, MAX_SIZE_DIGITS, is_tag_char, parse_u64};
use crate::limits::{LITERAL_MINUS_MAX, Limits, NonSyncLiterals, Utf8Mode};

/// What [`CommandReader::read_command`] has for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A whole command.
    Command(Command),
    /// Feed more bytes and ask again.
    NeedMore,
    /// The client announced a synchronizing literal and waits: send
    /// `+ Ready for literal data` (see
    /// [`Continuation::ready`](crate::response::Continuation::ready)), then feed more bytes
    /// and ask again. Returned once per literal.
    NeedContinuation { literal_size: u64 },
}

/// Where in the current command the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    /// Start of the current line; beyond the buffer while literal data is awaited.
    line_start: usize,
    /// Up to here the current line has no LF.
    scanned: usize,
    /// Text octets of the command's finished lines (literal data not counted).
    text: usize,
    literals: usize,
}

impl Frame {
    fn at(position: usize) -> Self {
        Self {
            line_start: position,
            scanned: position,
            text: 0,
            literals: 0,
        }
    }

    fn shift(&mut self, by: usize) {
        self.line_start -= by;
        self.scanned -= by;
    }
}

/// The last octets of a line being skipped, to spot a literal announcement at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tail {
    bytes: [u8; 32],
    len: usize,
}

impl Tail {
    fn new() -> Self {
        Self {
            bytes: [0; 32],
            len: 0,
        }
    }

    fn push(&mut self, data: &[u8]) {
        let capacity = self.bytes.len();
        if data.len() >= capacity {
            let start = data.len() - capacity;
            self.bytes
                .copy_from_slice(data.get(start..).unwrap_or_default());
            self.len = capacity;
            return;
        }
        let keep = (capacity - data.len()).min(self.len);
        self.bytes.copy_within(self.len - keep..self.len, 0);
        if let Some(slot) = self.bytes.get_mut(keep..keep + data.len()) {
            slot.copy_from_slice(data);
        }
        self.len = keep + data.len();
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the command that starts at `start`.
    Command(Frame),
    /// Skipping literal data of a refused command, then the rest of its line.
    SkipLiteral { remaining: u64 },
    /// Skipping the rest of a line of a refused command.
    SkipLine { tail: Tail },
}

/// A literal announced at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announcement {
    size: u64,
    non_sync: bool,
}

/// `{n}`, `{n+}` (and so `~{n}`) just before the end of `line` (its LF removed).
fn announcement(line: &[u8]) -> Option<Announcement> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = inner.get(open + 1..)?;
    let non_sync = match digits.strip_suffix(b"+") {
        Some(rest) => {
            digits = rest;
            true
        }
        None => false,
    };
    // More than 20 digits is not a size (the lexer refuses it too); this also keeps every
    // announcement within the 32 octets a skipped line's `Tail` remembers.
    if digits.is_empty() || digits.len() > MAX_SIZE_DIGITS || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    // An announcement too large for 64 bits is refused as too large.
    let size = parse_u64(digits).unwrap_or(u64::MAX);
    Some(Announcement { size, non_sync })
}

/// The tag at the start of a command, if it has a valid one followed by a space within
/// the first `max_line` octets (all that is sure to be buffered when a line is refused
/// as too long, so the answer does not depend on how the bytes arrived).
fn leading_tag(command: &[u8], max_line: usize) -> Option<String> {
    let command = command
        .get(..max_line.min(command.len()))
        .unwrap_or_default();
    let n = command.iter().take_while(|&&b| is_tag_char(b)).count();
    (n > 0 && command.get(n) == Some(&b' '))
        .then(|| String::from_utf8_lossy(command.get(..n).unwrap_or_default()).into_owned())
}

fn find_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Parses one whole framed command (its lines, CRLFs and literal data).
///
/// ```
/// use postcell_imap_proto::{CommandBody, Limits, Utf8Mode, parse_command};
/// let command = parse_command(b"a1 NOOP\r\n", &Limits::default(), Utf8Mode::Off).unwrap();
/// assert_eq!((command.tag.as_str(), command.body), ("a1", CommandBody::Noop));
/// ```
pub fn parse_command(input: &[u8], limits: &Limits, utf8: Utf8Mode) -> Result<Command, ParseError> {
    let mut cursor = Cursor::new(input, limits, utf8);
    command::command(&mut cursor).map_err(|(tag, fail)| match fail {
        Fail::Incomplete => {
            ParseError::new(tag, ErrorKind::Syntax, "the command ends inside a literal")
        }
        Fail::Error { kind, message } => ParseError::new(tag, kind, message),
    })
}

/// Checks a command up to a literal announcement at the end of its last line: `Ok` if
/// it is valid so far and stops at that literal.
fn check_before_literal(input: &[u8], limits: &Limits, utf8: Utf8Mode) -> Result<(), ParseError> {
    let mut cursor = Cursor::new(input, limits, utf8);
    match command::command(&mut cursor) {
        Err((_, Fail::Incomplete)) => Ok(()),
        Err((tag, Fail::Error { kind, message })) => Err(ParseError::new(tag, kind, message)),
        Ok(command) => Err(ParseError::new(
            Some(command.tag),
            ErrorKind::Syntax,
            "unexpected literal after the end of the command",
        )),
    }
}

/// Reads commands from the bytes a session receives.
///
/// ```
/// use postcell_imap_proto::{CommandBody, CommandReader, Progress};
///
/// let mut reader = CommandReader::default();
/// reader.feed(b"a1 LOGIN {4}\r\n");
/// assert_eq!(reader.read_command(), Ok(Progress::NeedContinuation { literal_size: 4 }));
/// // The session sends "+ Ready for literal data".
/// assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
/// reader.feed(b"fred secret\r\na2 NOOP\r\n");
/// let Ok(Progress::Command(login)) = reader.read_command() else { panic!() };
/// assert!(matches!(login.body, CommandBody::Login { .. }));
/// let Ok(Progress::Command(noop)) = reader.read_command() else { panic!() };
/// assert_eq!(noop.body, CommandBody::Noop);
/// assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
/// ```
#[derive(Debug, Clone)]
pub struct CommandReader {
    limits: Limits,
    utf8: Utf8Mode,
    non_sync: NonSyncLiterals,
    buffer: Vec<u8>,
    /// Start of the current command, or of the bytes being skipped.
    start: usize,
    state: State,
}

impl Default for CommandReader {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl CommandReader {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            utf8: Utf8Mode::Off,
            non_sync: NonSyncLiterals::default(),
            buffer: Vec::new(),
            start: 0,
            state: State::Command(Frame::at(0)),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// New limits, from the next check on (for instance, larger ones after login).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Whether mailbox names are UTF-8 (after `ENABLE UTF8=ACCEPT` or `ENABLE IMAP4rev2`)
    /// or modified UTF-7.
    pub fn set_utf8_mode(&mut self, utf8: Utf8Mode) {
        self.utf8 = utf8;
    }

    pub fn utf8_mode(&self) -> Utf8Mode {
        self.utf8
    }

    /// LITERAL- (the default, as IMAP4rev2 requires) or LITERAL+, as advertised.
    pub fn set_non_sync_literals(&mut self, mode: NonSyncLiterals) {
        self.non_sync = mode;
    }

    /// Appends bytes received from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            if let State::Command(frame) = &mut self.state {
                frame.shift(self.start);
            }
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Octets of literal data the reader expects before it looks for a line again: the
    /// rest of a literal being read, or of a refused non-synchronizing literal being
    /// skipped. A session reads this many octets as they come (they need not be lines)
    /// before it reads the next line.
    pub fn literal_remaining(&self) -> u64 {
        match self.state {
            State::Command(frame) if frame.line_start > self.buffer.len() => {
                (frame.line_start - self.buffer.len()) as u64
            }
            State::SkipLiteral { remaining } => {
                remaining.saturating_sub((self.buffer.len() - self.start) as u64)
            }
            _ => 0,
        }
    }

    /// Gives the buffer's memory back when everything in it has been read and no
    /// command is in progress, so that a connection waiting for its next command (or in
    /// IDLE) holds none; the next [`feed`](Self::feed) allocates again.
    pub fn release_idle(&mut self) {
        if self.start == self.buffer.len() && self.state == State::Command(Frame::at(self.start)) {
            self.buffer = Vec::new();
            self.start = 0;
            self.state = State::Command(Frame::at(0));
        }
    }

    /// Octets received and not yet consumed (after STARTTLS these must be discarded).
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// Forgets everything buffered and any command in progress (as after STARTTLS,
    /// where plaintext pipelined before the handshake must not be used: CVE-2011-0411).
    pub fn reset(&mut self) {
        self.buffer.clear();
        self.start = 0;
        self.state = State::Command(Frame::at(0));
    }

    /// The next command, or what the reader needs to get to it.
    ///
    /// An error refuses one command: the session answers it (`TAG BAD ...`, see
    /// [`ParseError::status_response`]) and calls again; the reader has already moved
    /// past the bad command.
    pub fn read_command(&mut self) -> Result<Progress, ParseError> {
        loop {
            match self.state {
                State::SkipLiteral { .. } | State::SkipLine { .. } => {
                    if !self.skip() {
                        return Ok(Progress::NeedMore);
                    }
                }
                State::Command(frame) => {
                    if let Some(progress) = self.step(frame)? {
                        return Ok(progress);
                    }
                }
            }
        }
    }

    /// The next raw line (without its CRLF), for what the session reads outside
    /// commands: SASL responses after AUTHENTICATE, `DONE` after IDLE. `None` until a
    /// whole line has arrived.
    pub fn read_line(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        while !matches!(self.state, State::Command(_)) {
            if !self.skip() {
                return Ok(None);
            }
        }
        let from = match self.state {
            State::Command(frame) if frame.line_start == self.start => frame.scanned,
            _ => self.start,
        };
        let rest = self.buffer.get(from..).unwrap_or_default();
        match find_lf(rest) {
            Some(offset) => {
                let lf = from + offset;
                let line = self.buffer.get(self.start..lf).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                self.start = lf + 1;
                self.state = State::Command(Frame::at(self.start));
                Ok(Some(line))
            }
            None if self.buffer.len() - self.start > self.limits.max_line => {
                let mut tail = Tail::new();
                tail.push(self.buffer.get(self.start..).unwrap_or_default());
                self.start = self.buffer.len();
                self.state = State::SkipLine { tail };
                Err(ParseError::new(
                    None,
                    ErrorKind::LineTooLong,
                    "line too long",
                ))
            }
            None => {
                let mut frame = Frame::at(self.start);
                frame.scanned = self.buffer.len();
                self.state = State::Command(frame);
                Ok(None)
            }
        }
    }

    /// Advances a skip; false when it needs more bytes.
    fn skip(&mut self) -> bool {
        match self.state {
            State::SkipLiteral { remaining } => {
                let available = (self.buffer.len() - self.start) as u64;
                let taken = remaining.min(available);
                self.start += taken as usize;
                if taken < remaining {
                    self.state = State::SkipLiteral {
                        remaining: remaining - taken,
                    };
                    return false;
                }
                self.state = State::SkipLine { tail: Tail::new() };
                true
            }
            State::SkipLine { mut tail } => {
                let rest = self.buffer.get(self.start..).unwrap_or_default();
                match find_lf(rest) {
                    None => {
                        tail.push(rest);
                        self.start = self.buffer.len();
                        self.state = State::SkipLine { tail };
                        false
                    }
                    Some(offset) => {
                        tail.push(rest.get(..offset).unwrap_or_default());
                        self.start += offset + 1;
                        self.state = match announcement(tail.as_slice()) {
                            // The client sends a non-synchronizing literal without waiting.
                            Some(literal) if literal.non_sync => State::SkipLiteral {
                                remaining: literal.size,
                            },
                            // It waits for a "+" to a synchronizing one, which never comes.
                            _ => State::Command(Frame::at(self.start)),
                        };
                        true
                    }
                }
            }
            State::Command(_) => true,
        }
    }

    /// Refuses the current command at the end of a line that ended at `lf` (and
    /// announced `literal`, if any): what follows is skipped.
    fn refuse_at_line_end(
        &mut self,
        lf: usize,
        literal: Option<Announcement>,
        error: ParseError,
    ) -> ParseError {
        self.start = lf + 1;
        self.state = match literal {
            Some(literal) if literal.non_sync => State::SkipLiteral {
                remaining: literal.size,
            },
            _ => State::Command(Frame::at(self.start)),
        };
        error
    }

    /// One step through the current command: `Some` progress to report, `None` to go on.
    fn step(&mut self, mut frame: Frame) -> Result<Option<Progress>, ParseError> {
        if frame.line_start > self.buffer.len() {
            // Literal data still on its way.
            self.state = State::Command(frame);
            return Ok(Some(Progress::NeedMore));
        }
        let from = frame.scanned.max(frame.line_start);
        let Some(offset) = find_lf(self.buffer.get(from..).unwrap_or_default()) else {
            let line = self.buffer.len() - frame.line_start;
            if frame.text + line > self.limits.max_line {
                let tag = leading_tag(
                    self.buffer.get(self.start..).unwrap_or_default(),
                    self.limits.max_line,
                );
                let mut tail = Tail::new();
                tail.push(self.buffer.get(frame.line_start..).unwrap_or_default());
                self.start = self.buffer.len();
                self.state = State::SkipLine { tail };
                return Err(self.line_too_long(tag));
            }
            frame.scanned = self.buffer.len();
            self.state = State::Command(frame);
            return Ok(Some(Progress::NeedMore));
        };
        let lf = from + offset;
        let line = self.buffer.get(frame.line_start..lf).unwrap_or_default();
        let literal = announcement(line);
        frame.text += lf + 1 - frame.line_start;
        if frame.text > self.limits.max_line {
            let tag = leading_tag(
                self.buffer.get(self.start..).unwrap_or_default(),
                self.limits.max_line,
            );
            let error = self.line_too_long(tag);
            return Err(self.refuse_at_line_end(lf, literal, error));
        }
        if frame.line_start == self.start && matches!(line, b"" | b"\r") {
            // An empty line between commands: ignored.
            self.start = lf + 1;
            self.state = State::Command(Frame::at(self.start));
            return Ok(None);
        }
        let Some(literal) = literal else {
            let end = lf + 1;
            let result = parse_command(
                self.buffer.get(self.start..end).unwrap_or_default(),
                &self.limits,
                self.utf8,
            );
            self.start = end;
            self.state = State::Command(Frame::at(end));
            return result.map(|command| Some(Progress::Command(command)));
        };
        frame.literals += 1;
        if let Err(error) = self.check_literal(&frame, lf, literal) {
            return Err(self.refuse_at_line_end(lf, Some(literal), error));
        }
        // Checked against max_literal, which is a u64 that may exceed usize on small targets.
        let size = usize::try_from(literal.size).unwrap_or(usize::MAX);
        frame.line_start = (lf + 1).saturating_add(size);
        frame.scanned = frame.line_start;
        self.state = State::Command(frame);
        if literal.non_sync {
            Ok(None)
        } else {
            Ok(Some(Progress::NeedContinuation {
                literal_size: literal.size,
            }))
        }
    }

    fn line_too_long(&self, tag: Option<String>) -> ParseError {
        ParseError::new(
            tag,
            ErrorKind::LineTooLong,
            format!("command longer than {} octets", self.limits.max_line),
        )
    }

    /// Whether the literal announced at the end of the line ending at `lf` may be read.
    fn check_literal(
        &self,
        frame: &Frame,
        lf: usize,
        literal: Announcement,
    ) -> Result<(), ParseError> {
        let so_far = self.buffer.get(self.start..=lf).unwrap_or_default();
        let tag = || leading_tag(so_far, self.limits.max_line);
        if frame.literals > self.limits.max_literals {
            return Err(ParseError::new(
                tag(),
                ErrorKind::TooManyLiterals,
                format!(
                    "more than {} literals in one command",
                    self.limits.max_literals
                ),
            ));
        }
        if literal.size > self.limits.max_literal {
            return Err(ParseError::new(
                tag(),
                ErrorKind::LiteralTooLarge,
                format!("literal larger than {} octets", self.limits.max_literal),
            ));
        }
        if literal.non_sync
            && self.non_sync == NonSyncLiterals::LiteralMinus
            && literal.size > LITERAL_MINUS_MAX
        {
            return Err(ParseError::new(
                tag(),
                ErrorKind::LiteralTooLarge,
                "LITERAL- allows non-synchronizing literals of at most 4096 octets",
            ));
        }
        check_before_literal(so_far, &self.limits, self.utf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CommandBody;

    fn commands(reader: &mut CommandReader) -> Vec<Result<Progress, ParseError>> {
        let mut out = Vec::new();
        loop {
            let result = reader.read_command();
            if result == Ok(Progress::NeedMore) {
                return out;
            }
            out.push(result);
        }
    }

    fn kinds(results: &[Result<Progress, ParseError>]) -> Vec<String> {
        results
            .iter()
            .map(|r| match r {
                Ok(Progress::Command(c)) => format!("{} {}", c.tag, c.body.name()),
                Ok(Progress::NeedContinuation { literal_size }) => format!("+{literal_size}"),
                Ok(Progress::NeedMore) => "more".into(),
                Err(e) => format!("{:?} {:?}", e.tag, e.kind),
            })
            .collect()
    }

    #[test]
    fn announcement_forms() {
        assert_eq!(
            announcement(b"A LOGIN {5}"),
            Some(Announcement {
                size: 5,
                non_sync: false
            })
        );
        assert_eq!(
            announcement(b"A LOGIN {5+}\r"),
            Some(Announcement {
                size: 5,
                non_sync: true
            })
        );
        assert_eq!(
            announcement(b"A APPEND x ~{12}"),
            Some(Announcement {
                size: 12,
                non_sync: false
            })
        );
        assert_eq!(announcement(b"{}"), None);
        assert_eq!(announcement(b"{+}"), None);
        assert_eq!(announcement(b"{5a}"), None);
        assert_eq!(announcement(b"{5}x"), None);
        assert_eq!(
            announcement(b"{99999999999999999999}"),
            Some(Announcement {
                size: u64::MAX,
                non_sync: false
            })
        );
        assert_eq!(announcement(b"{000000000000000000005}"), None);
    }

    #[test]
    fn tail_keeps_the_last_octets() {
        let mut tail = Tail::new();
        tail.push(b"abc");
        tail.push(b"def");
        assert_eq!(tail.as_slice(), b"abcdef");
        tail.push(&[b'x'; 40]);
        tail.push(b"{7+}\r");
        assert_eq!(tail.as_slice().len(), 32);
        assert!(tail.as_slice().ends_with(b"xx{7+}\r"));
    }

    #[test]
    fn pipelined_commands_and_blank_lines() {
        let mut reader = CommandReader::default();
        reader.feed(b"a NOOP\r\n\r\nb CAPABILITY\nc LOGOUT\r\n");
        assert_eq!(
            kinds(&commands(&mut reader)),
            ["a NOOP", "b CAPABILITY", "c LOGOUT"]
        );
    }

    #[test]
    fn synchronizing_literal_asks_once_and_waits() {
        let mut reader = CommandReader::default();
        reader.feed(b"A1 LOGIN {5}\r\n");
        assert_eq!(
            reader.read_command(),
            Ok(Progress::NeedContinuation { literal_size: 5 })
        );
        assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
        reader.feed(b"fre");
        assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
        reader.feed(b"d\n sec");
        assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
        reader.feed(b"ret\r\n");
        let Ok(Progress::Command(command)) = reader.read_command() else {
            panic!()
        };
        assert_eq!(
            command.body,
            CommandBody::Login {
                username: "fred\n".into(),
                password: crate::Password::new("secret")
            }
        );
    }

    #[test]
    fn non_synchronizing_literals_need_no_continuation() {
        let mut reader = CommandReader::default();
        reader.feed(b"A1 LOGIN {4+}\r\nfred {6+}\r\nsecret\r\n");
        assert_eq!(kinds(&commands(&mut reader)), ["A1 LOGIN"]);
    }

    #[test]
    fn literal_minus_refuses_large_non_synchronizing_literals_and_skips_them() {
        let mut reader = CommandReader::default();
        let mut input = b"A1 APPEND INBOX {4097+}\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 4097));
        input.extend_from_slice(b" more {3+}\r\nabc)\r\nA2 NOOP\r\n");
        reader.feed(&input);
        assert_eq!(
            kinds(&commands(&mut reader)),
            ["Some(\"A1\") LiteralTooLarge", "A2 NOOP"]
        );

        let mut reader = CommandReader::default();
        reader.set_non_sync_literals(NonSyncLiterals::LiteralPlus);
        let mut input = b"A1 APPEND INBOX {4097+}\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 4097));
        input.extend_from_slice(b"\r\n");
        reader.feed(&input);
        assert_eq!(kinds(&commands(&mut reader)), ["A1 APPEND"]);

        let mut reader = CommandReader::default();
        reader.feed(b"A1 APPEND INBOX {4096+}\r\n");
        reader.feed(&[b'y'; 4096]);
        reader.feed(b"\r\n");
        assert_eq!(kinds(&commands(&mut reader)), ["A1 APPEND"]);
    }

    #[test]
    fn literal_over_the_limit_is_refused_before_it_is_read() {
        let limits = Limits {
            max_literal: 100,
            ..Limits::default()
        };
        let mut reader = CommandReader::new(limits);
        reader.feed(b"A1 APPEND INBOX {101}\r\nA2 NOOP\r\n");
        let results = commands(&mut reader);
        assert_eq!(kinds(&results), ["Some(\"A1\") LiteralTooLarge", "A2 NOOP"]);
        assert!(reader.buffered() == 0);

        // A string literal may not exceed max_line, even when max_literal allows it.
        let limits = Limits {
            max_line: 1000,
            ..Limits::default()
        };
        let mut reader = CommandReader::new(limits);
        reader.feed(b"A1 LOGIN {1001}\r\nA2 LOGIN fred {5000}\r\nA3 APPEND INBOX {5000}\r\n");
        assert_eq!(
            kinds(&commands(&mut reader)),
            [
                "Some(\"A1\") LiteralTooLarge",
                "Some(\"A2\") LiteralTooLarge",
                "+5000"
            ]
        );
    }

    #[test]
    fn string_literals_share_one_budget_per_command() {
        let limits = Limits {
            max_line: 1000,
            ..Limits::default()
        };
        let mut reader = CommandReader::new(limits);
        reader.feed(b"A1 LOGIN {600+}\r\n");
        reader.feed(&[b'u'; 600]);
        reader.feed(b" {500}\r\n");
        assert_eq!(
            kinds(&commands(&mut reader)),
            ["Some(\"A1\") LiteralTooLarge"]
        );
        reader.feed(b"A2 LOGIN {600+}\r\n");
        reader.feed(&[b'u'; 600]);
        reader.feed(b" {400}\r\n");
        assert_eq!(kinds(&commands(&mut reader)), ["+400"]);
        reader.feed(&[b'p'; 400]);
        reader.feed(b"\r\n");
        assert_eq!(kinds(&commands(&mut reader)), ["A2 LOGIN"]);
    }

    #[test]
    fn broken_command_is_refused_before_its_literal() {
        let mut reader = CommandReader::default();
        reader.feed(b"A1 FROB {5}\r\nA2 LOGIN \"fred {5}\r\nA3 NOOP {5}\r\nA4 NOOP\r\n");
        assert_eq!(
            kinds(&commands(&mut reader)),
            [
                "Some(\"A1\") UnknownCommand",
                "Some(\"A2\") Syntax",
                "Some(\"A3\") Syntax",
                "A4 NOOP"
            ]
        );
    }

    #[test]
    fn line_over_the_limit_is_refused_and_skipped() {
        let limits = Limits {
            max_line: 64,
            ..Limits::default()
        };
        let mut reader = CommandReader::new(limits);
        reader.feed(b"A1 LOGIN ");
        reader.feed(&[b'x'; 100]);
        assert_eq!(kinds(&commands(&mut reader)), ["Some(\"A1\") LineTooLong"]);
        reader.feed(&[b'x'; 1000]);
        assert_eq!(commands(&mut reader), vec![]);
        reader.feed(b" {3+}\r\nabc\r\nA2 NOOP\r\n");
        assert_eq!(kinds(&commands(&mut reader)), ["A2 NOOP"]);

        // Text over several lines counts as one command.
        let mut reader = CommandReader::new(Limits {
            max_line: 64,
            ..Limits::default()
        });
        let mut input = b"A1 SEARCH TEXT {1+}\r\nx".to_vec();
        for _ in 0..10 {
            input.extend_from_slice(b" TEXT {1+}\r\nx");
        }
        input.extend_from_slice(b"\r\nA2 NOOP\r\n");
        reader.feed(&input);
        assert_eq!(
            kinds(&commands(&mut reader)),
            ["Some(\"A1\") LineTooLong", "A2 NOOP"]
        );
    }

    #[test]
    fn too_many_literals() {
        let mut reader = CommandReader::new(Limits {
            max_literals: 2,
            ..Limits::default()
        });
        reader.feed(b"A1 SEARCH TEXT {1+}\r\na TEXT {1+}\r\nb TEXT {1+}\r\nc\r\nA2 NOOP\r\n");
        assert_eq!(
            kinds(&commands(&mut reader)),
            ["Some(\"A1\") TooManyLiterals", "A2 NOOP"]
        );
    }

    #[test]
    fn errors_carry_the_tag_when_there_is_one() {
        let mut reader = CommandReader::default();
        reader.feed(b"A1 FROB\r\n+ NOOP\r\n NOOP\r\nA2\r\nA3 NOOP \r\n");
        assert_eq!(
            kinds(&commands(&mut reader)),
            [
                "Some(\"A1\") UnknownCommand",
                "None Syntax",
                "None Syntax",
                "Some(\"A2\") Syntax",
                "Some(\"A3\") Syntax"
            ]
        );
    }

    #[test]
    fn literal_remaining_counts_what_is_still_to_come() {
        let mut reader = CommandReader::default();
        reader.feed(b"A1 LOGIN {4+}\r\nfr");
        assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
        assert_eq!(reader.literal_remaining(), 2);
        reader.feed(b"ed");
        assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
        assert_eq!(reader.literal_remaining(), 0);

        // A refused non-synchronizing literal is skipped, however large.
        let mut reader = CommandReader::new(Limits {
            max_literal: 10,
            ..Limits::default()
        });
        reader.feed(b"A1 APPEND INBOX {100+}\r\n");
        assert!(reader.read_command().is_err());
        assert_eq!(reader.literal_remaining(), 100);
        reader.feed(&[b'x'; 60]);
        assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
        assert_eq!(reader.literal_remaining(), 40);
        reader.feed(&[b'x'; 40]);
        reader.feed(b"\r\nA2 NOOP\r\n");
        assert_eq!(kinds(&commands(&mut reader)), ["A2 NOOP"]);
        assert_eq!(reader.literal_remaining(), 0);
    }

    #[test]
    fn unterminated_literal_waits_forever() {
        let mut reader = CommandReader::default();
        reader.feed(b"A1 LOGIN {4+}\r\nfr");
        assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
        assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
    }

    #[test]
    fn raw_lines_for_authenticate_and_idle() {
        let mut reader = CommandReader::default();
        reader.feed(b"A1 IDLE\r\nDO");
        assert_eq!(kinds(&commands(&mut reader)), ["A1 IDLE"]);
        assert_eq!(reader.read_line(), Ok(None));
        reader.feed(b"NE\r\nA2 NOOP\r\n");
        assert_eq!(reader.read_line(), Ok(Some(b"DONE".to_vec())));
        assert_eq!(kinds(&commands(&mut reader)), ["A2 NOOP"]);

        let mut reader = CommandReader::new(Limits {
            max_line: 10,
            ..Limits::default()
        });
        reader.feed(b"AAAAAAAAAAAAAAAAAAAA");
        assert_eq!(reader.read_line().unwrap_err().kind, ErrorKind::LineTooLong);
        reader.feed(b"AAA\r\nA2 NOOP\r\n");
        assert_eq!(kinds(&commands(&mut reader)), ["A2 NOOP"]);
    }

    #[test]
    fn reset_forgets_pipelined_plaintext() {
        let mut reader = CommandReader::default();
        reader.feed(b"A1 STARTTLS\r\nA2 LOGIN fred secret\r\n");
        assert_eq!(kinds(&[reader.read_command()]), ["A1 STARTTLS"]);
        assert!(reader.buffered() > 0);
        reader.reset();
        assert_eq!(reader.buffered(), 0);
        assert_eq!(reader.read_command(), Ok(Progress::NeedMore));
    }
}
