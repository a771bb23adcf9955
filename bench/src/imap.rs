//! A small IMAP client for load generation, over plain TCP: tagged commands,
//! untagged responses and literals in responses (RFC 9051 section 2.2), and
//! IDLE (RFC 2177). Arguments are quoted strings, except in
//! [`Client::command_with_literal`], which sends one literal (non-synchronizing,
//! RFC 7888 LITERAL+, or synchronizing, waiting for the `+` continuation);
//! elsewhere a `+` continuation is only expected after IDLE.
//!
//! ```text
//! S: * OK [CAPABILITY IMAP4rev1 IDLE] ready
//! C: A1 LOGIN "user1@bench.test" "secret"
//! S: A1 OK Logged in
//! C: A2 UID FETCH 1:* (FLAGS)
//! S: * 1 FETCH (UID 1 FLAGS (\Seen))
//! S: A2 OK Fetch completed
//! ```
//!
//! Every command is bounded in time: the I/O timeout, cut to the run's deadline.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Longest line (between literals) accepted from a server.
const MAX_LINE: u64 = 1024 * 1024;
/// Largest literal accepted from a server.
const MAX_LITERAL: usize = 64 * 1024 * 1024;

/// The result word of a tagged response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// A tagged response: the command is complete.
#[derive(Debug, Clone)]
pub struct Completion {
    pub status: Status,
    /// Everything after the status word (response code included).
    pub text: String,
}

impl Completion {
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

impl fmt::Display for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.status {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        };
        write!(f, "{word} {}", self.text)
    }
}

/// How a server answered IDLE.
#[derive(Debug)]
pub enum Idle {
    /// `+ idling` (any continuation): the connection is idling until DONE.
    Started,
    /// A tagged response instead of the continuation (BAD or NO from a server
    /// without IDLE).
    Refused(Completion),
}

pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_tag: u32,
    /// The tag of an IDLE waiting for DONE.
    idle_tag: Option<String>,
    /// One response, its literals included.
    response: Vec<u8>,
    out: Vec<u8>,
    io_timeout: Duration,
    deadline: Instant,
    /// The greeting line, without its CRLF.
    pub greeting: String,
}

impl Client {
    /// Connects and reads the greeting (`* OK` or `* PREAUTH`). `read_buffer`
    /// is the size of the receive buffer (small for many idle connections,
    /// large for big responses).
    pub async fn connect(
        addr: SocketAddr,
        io_timeout: Duration,
        deadline: Instant,
        read_buffer: usize,
    ) -> Result<Client> {
        let limit = bounded(io_timeout, deadline)?;
        let stream = tokio::time::timeout(limit, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connect to {addr}: timed out"))?
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        let (r, w) = stream.into_split();
        let mut client = Client {
            reader: BufReader::with_capacity(read_buffer.max(512), r),
            writer: w,
            next_tag: 1,
            idle_tag: None,
            response: Vec::with_capacity(4096),
            out: Vec::with_capacity(256),
            io_timeout,
            deadline,
            greeting: String::new(),
        };
        let limit = bounded(io_timeout, deadline)?;
        tokio::time::timeout(limit, client.read_response())
            .await
            .map_err(|_| anyhow!("timed out waiting for the greeting"))?
            .context("greeting")?;
        let line = String::from_utf8_lossy(trim_crlf(&client.response)).into_owned();
        let upper = line.to_ascii_uppercase();
        if !(upper.starts_with("* OK") || upper.starts_with("* PREAUTH")) {
            bail!("greeting: {line}");
        }
        client.greeting = line;
        Ok(client)
    }

    /// Sends `TAG command` and reads until its tagged response; every untagged
    /// response on the way (its literals included, CRLF at the end) goes to
    /// `on_untagged`.
    pub async fn command(
        &mut self,
        command: &str,
        on_untagged: impl FnMut(&[u8]),
    ) -> Result<Completion> {
        if self.idle_tag.is_some() {
            bail!("a command while idling");
        }
        let limit = bounded(self.io_timeout, self.deadline)?;
        let verb = command.split(' ').next().unwrap_or("");
        tokio::time::timeout(limit, self.exchange(command, on_untagged))
            .await
            .map_err(|_| anyhow!("{verb}: timed out after {limit:?}"))?
            .with_context(|| verb.to_string())
    }

    /// Sends `TAG before{N}` CRLF, the N octets of `literal`, then `after` and
    /// CRLF, and reads until the tagged response (untagged ones go to
    /// `on_untagged`). With `non_synchronizing` the literal is announced as
    /// `{N+}` and everything goes at once (the server must offer LITERAL+);
    /// otherwise the literal follows the server's `+` continuation, and a
    /// tagged response instead of it ends the command there.
    pub async fn command_with_literal(
        &mut self,
        before: &str,
        literal: &[u8],
        after: &str,
        non_synchronizing: bool,
        on_untagged: impl FnMut(&[u8]),
    ) -> Result<Completion> {
        if self.idle_tag.is_some() {
            bail!("a command while idling");
        }
        let limit = bounded(self.io_timeout, self.deadline)?;
        let verb = before.split(' ').next().unwrap_or("").to_string();
        tokio::time::timeout(
            limit,
            self.exchange_literal(before, literal, after, non_synchronizing, on_untagged),
        )
        .await
        .map_err(|_| anyhow!("{verb}: timed out after {limit:?}"))?
        .with_context(|| verb.clone())
    }

    /// Like `command`, ignoring untagged responses.
    pub async fn simple(&mut self, command: &str) -> Result<Completion> {
        self.command(command, |_| {}).await
    }

    /// Sends IDLE and waits for the continuation (or a refusal).
    pub async fn idle(&mut self) -> Result<Idle> {
        if self.idle_tag.is_some() {
            bail!("already idling");
        }
        let limit = bounded(self.io_timeout, self.deadline)?;
        tokio::time::timeout(limit, self.start_idle())
            .await
            .map_err(|_| anyhow!("IDLE: timed out after {limit:?}"))?
            .context("IDLE")
    }

    /// Ends IDLE with DONE and reads the IDLE command's tagged response;
    /// untagged responses that came during IDLE go to `on_untagged`.
    pub async fn done(&mut self, on_untagged: impl FnMut(&[u8])) -> Result<Completion> {
        let Some(tag) = self.idle_tag.take() else {
            bail!("DONE without IDLE");
        };
        let limit = bounded(self.io_timeout, self.deadline)?;
        tokio::time::timeout(limit, async {
            self.send(b"DONE\r\n").await?;
            self.until_tagged(&tag, on_untagged).await
        })
        .await
        .map_err(|_| anyhow!("DONE: timed out after {limit:?}"))?
        .context("DONE")
    }

    /// LOGOUT, waiting (briefly) for its tagged OK, then closes the socket.
    pub async fn logout(mut self) -> Result<Completion> {
        self.io_timeout = self.io_timeout.min(Duration::from_secs(5));
        let done = self.simple("LOGOUT").await?;
        let _ = self.writer.shutdown().await;
        Ok(done)
    }

    fn take_tag(&mut self) -> String {
        let tag = format!("A{:04}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes).await.context("sending")?;
        Ok(())
    }

    async fn send_command(&mut self, tag: &str, command: &str) -> Result<()> {
        self.out.clear();
        self.out.extend_from_slice(tag.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(command.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        let out = std::mem::take(&mut self.out);
        let sent = self.send(&out).await;
        self.out = out;
        sent
    }

    async fn exchange(
        &mut self,
        command: &str,
        on_untagged: impl FnMut(&[u8]),
    ) -> Result<Completion> {
        let tag = self.take_tag();
        self.send_command(&tag, command).await?;
        self.until_tagged(&tag, on_untagged).await
    }

    async fn exchange_literal(
        &mut self,
        before: &str,
        literal: &[u8],
        after: &str,
        non_synchronizing: bool,
        mut on_untagged: impl FnMut(&[u8]),
    ) -> Result<Completion> {
        let tag = self.take_tag();
        let plus = if non_synchronizing { "+" } else { "" };
        let head = format!("{tag} {before}{{{}{plus}}}\r\n", literal.len());
        let mut rest = Vec::with_capacity(literal.len() + after.len() + 2);
        rest.extend_from_slice(literal);
        rest.extend_from_slice(after.as_bytes());
        rest.extend_from_slice(b"\r\n");
        if non_synchronizing {
            let mut all = head.into_bytes();
            all.extend_from_slice(&rest);
            self.send(&all).await?;
        } else {
            self.send(head.as_bytes()).await?;
            loop {
                self.read_response().await?;
                match classify(&self.response, &tag) {
                    Kind::Continuation => break,
                    Kind::Untagged => on_untagged(&self.response),
                    Kind::Tagged => return completion(&self.response, &tag),
                    Kind::Other => bail!("unexpected response {}", show(&self.response)),
                }
            }
            self.send(&rest).await?;
        }
        self.until_tagged(&tag, on_untagged).await
    }

    async fn start_idle(&mut self) -> Result<Idle> {
        let tag = self.take_tag();
        self.send_command(&tag, "IDLE").await?;
        loop {
            self.read_response().await?;
            match classify(&self.response, &tag) {
                Kind::Continuation => {
                    self.idle_tag = Some(tag);
                    return Ok(Idle::Started);
                }
                Kind::Untagged => {}
                Kind::Tagged => return Ok(Idle::Refused(completion(&self.response, &tag)?)),
                Kind::Other => bail!("unexpected response {}", show(&self.response)),
            }
        }
    }

    async fn until_tagged(
        &mut self,
        tag: &str,
        mut on_untagged: impl FnMut(&[u8]),
    ) -> Result<Completion> {
        loop {
            self.read_response().await?;
            match classify(&self.response, tag) {
                Kind::Untagged => on_untagged(&self.response),
                Kind::Tagged => return completion(&self.response, tag),
                Kind::Continuation => bail!("unexpected continuation {}", show(&self.response)),
                Kind::Other => bail!("unexpected response {}", show(&self.response)),
            }
        }
    }

    /// Reads one whole response into `self.response`: a line, and when it ends
    /// with a literal `{N}` (or `~{N}`, `{N+}`), the N octets and the rest of
    /// the response after them, as many times as needed.
    async fn read_response(&mut self) -> Result<()> {
        self.response.clear();
        loop {
            let start = self.response.len();
            let n = (&mut self.reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut self.response)
                .await
                .context("reading")?;
            if n == 0 {
                if start == 0 {
                    bail!("connection closed by the server");
                }
                bail!("connection closed in the middle of a response");
            }
            if self.response.last() != Some(&b'\n') {
                bail!("response line longer than {MAX_LINE} bytes");
            }
            let Some(size) = literal_size(&self.response[start..])? else {
                return Ok(());
            };
            if size > MAX_LITERAL {
                bail!("literal of {size} bytes (more than {MAX_LITERAL})");
            }
            let at = self.response.len();
            self.response.resize(at + size, 0);
            self.reader
                .read_exact(&mut self.response[at..])
                .await
                .context("reading a literal")?;
        }
    }
}

enum Kind {
    Untagged,
    Continuation,
    Tagged,
    Other,
}

fn classify(response: &[u8], tag: &str) -> Kind {
    if response.starts_with(b"* ") {
        Kind::Untagged
    } else if response.starts_with(b"+") {
        Kind::Continuation
    } else if response.starts_with(tag.as_bytes()) && response.get(tag.len()) == Some(&b' ') {
        Kind::Tagged
    } else {
        Kind::Other
    }
}

fn completion(response: &[u8], tag: &str) -> Result<Completion> {
    let rest = String::from_utf8_lossy(trim_crlf(&response[tag.len() + 1..])).into_owned();
    let (word, text) = rest.split_once(' ').unwrap_or((rest.as_str(), ""));
    let status = match word.to_ascii_uppercase().as_str() {
        "OK" => Status::Ok,
        "NO" => Status::No,
        "BAD" => Status::Bad,
        _ => bail!("tagged response without OK/NO/BAD: {}", show(response)),
    };
    Ok(Completion {
        status,
        text: text.to_string(),
    })
}

/// The size of the literal announced at the end of `line` (`{N}\r\n`), if any.
fn literal_size(line: &[u8]) -> Result<Option<usize>> {
    let line = trim_crlf(line);
    let Some(body) = line.strip_suffix(b"}") else {
        return Ok(None);
    };
    let Some(open) = body.iter().rposition(|&b| b == b'{') else {
        return Ok(None);
    };
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        // `{...}` that is not a literal, e.g. inside a response text.
        return Ok(None);
    }
    let size = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .ok_or_else(|| anyhow!("literal size too large"))?;
    Ok(Some(size))
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The start of a response, for error messages.
pub fn show(response: &[u8]) -> String {
    let line = trim_crlf(response);
    let cut = &line[..line.len().min(200)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if line.len() > cut.len() {
        s.push_str("...");
    }
    s
}

/// `* N WORD` (EXISTS, RECENT, EXPUNGE, FETCH): N when the response is of that kind.
pub fn untagged_number(response: &[u8], word: &[u8]) -> Option<u32> {
    let rest = response.strip_prefix(b"* ")?;
    let space = rest.iter().position(|&b| b == b' ')?;
    let n = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
    let after = &rest[space + 1..];
    let matches = after.len() >= word.len()
        && after[..word.len()].eq_ignore_ascii_case(word)
        && matches!(
            after.get(word.len()),
            None | Some(b' ' | b'\r' | b'\n' | b'(')
        );
    matches.then_some(n)
}

/// The numbers of a `* SEARCH 1 4 9` response; None for other responses.
pub fn search_count(response: &[u8]) -> Option<usize> {
    let rest = trim_crlf(response.strip_prefix(b"* ")?);
    if rest.len() < 6 || !rest[..6].eq_ignore_ascii_case(b"SEARCH") {
        return None;
    }
    Some(
        rest[6..]
            .split(|&b| b == b' ')
            .filter(|t| !t.is_empty() && t.iter().all(u8::is_ascii_digit))
            .count(),
    )
}

/// Whether `text` (a greeting or a CAPABILITY response) lists `capability`.
pub fn has_capability(text: &str, capability: &str) -> bool {
    text.split([' ', '[', ']'])
        .any(|word| word.eq_ignore_ascii_case(capability))
}

/// An IMAP quoted string (RFC 9051 section 4.3).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The time a command may take: the I/O timeout, cut to the run's deadline.
fn bounded(io_timeout: Duration, deadline: Instant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        bail!("--max-seconds reached");
    }
    Ok(io_timeout.min(left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    use tokio::net::TcpListener;

    #[test]
    fn literals() {
        assert_eq!(
            literal_size(b"* 1 FETCH (BODY[] {42}\r\n").unwrap(),
            Some(42)
        );
        assert_eq!(
            literal_size(b"* 1 FETCH (BINARY[] ~{7}\r\n").unwrap(),
            Some(7)
        );
        assert_eq!(literal_size(b"* 1 FETCH (X {7+}\r\n").unwrap(), Some(7));
        assert_eq!(literal_size(b"* OK {x}\r\n").unwrap(), None);
        assert_eq!(literal_size(b"* OK done\r\n").unwrap(), None);
        assert!(literal_size(b"* X {99999999999999999999999}\r\n").is_err());
    }

    #[test]
    fn untagged() {
        assert_eq!(untagged_number(b"* 172 EXISTS\r\n", b"EXISTS"), Some(172));
        assert_eq!(
            untagged_number(b"* 3 FETCH (FLAGS ())\r\n", b"FETCH"),
            Some(3)
        );
        assert_eq!(untagged_number(b"* 3 FETCHX\r\n", b"FETCH"), None);
        assert_eq!(untagged_number(b"* OK [UIDNEXT 4]\r\n", b"EXISTS"), None);
        assert_eq!(search_count(b"* SEARCH 2 84 882\r\n"), Some(3));
        assert_eq!(search_count(b"* SEARCH\r\n"), Some(0));
        assert_eq!(search_count(b"* 1 EXISTS\r\n"), None);
        assert!(has_capability(
            "* OK [CAPABILITY IMAP4rev1 IDLE] ready",
            "idle"
        ));
        assert!(!has_capability(
            "* OK [CAPABILITY IMAP4rev1 IDLEX] ready",
            "IDLE"
        ));
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    /// Literals sent both ways: LITERAL+ at once, and after a continuation.
    #[tokio::test]
    async fn sends_literals() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let word = "会議室";
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, mut w) = stream.into_split();
            let mut r = tokio::io::BufReader::new(r);
            w.write_all(b"* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n")
                .await
                .unwrap();
            let mut line = Vec::new();
            r.read_until(b'\n', &mut line).await.unwrap();
            assert_eq!(line, b"A0001 UID SEARCH CHARSET UTF-8 BODY {9+}\r\n");
            let mut rest = vec![0u8; 9 + 2];
            r.read_exact(&mut rest).await.unwrap();
            assert_eq!(rest, "会議室\r\n".as_bytes());
            w.write_all(b"* SEARCH 3 9\r\nA0001 OK done\r\n")
                .await
                .unwrap();
            line.clear();
            r.read_until(b'\n', &mut line).await.unwrap();
            assert_eq!(line, b"A0002 UID SEARCH CHARSET UTF-8 BODY {9}\r\n");
            w.write_all(b"+ go on\r\n").await.unwrap();
            let mut rest = vec![0u8; 9 + 6];
            r.read_exact(&mut rest).await.unwrap();
            assert_eq!(rest, "会議室 ALL\r\n".as_bytes());
            w.write_all(b"* SEARCH 4\r\nA0002 OK done\r\n")
                .await
                .unwrap();
            line.clear();
            r.read_until(b'\n', &mut line).await.unwrap();
            assert_eq!(line, b"A0003 SEARCH CHARSET X BODY {9}\r\n");
            w.write_all(b"A0003 NO [BADCHARSET (UTF-8)] no\r\n")
                .await
                .unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut c = Client::connect(addr, Duration::from_secs(5), deadline, 4096)
            .await
            .unwrap();
        let mut hits = None;
        let done = c
            .command_with_literal(
                "UID SEARCH CHARSET UTF-8 BODY ",
                word.as_bytes(),
                "",
                true,
                |r| hits = search_count(r),
            )
            .await
            .unwrap();
        assert!(done.is_ok());
        assert_eq!(hits, Some(2));
        let done = c
            .command_with_literal(
                "UID SEARCH CHARSET UTF-8 BODY ",
                word.as_bytes(),
                " ALL",
                false,
                |r| hits = search_count(r),
            )
            .await
            .unwrap();
        assert!(done.is_ok());
        assert_eq!(hits, Some(1));
        let refused = c
            .command_with_literal("SEARCH CHARSET X BODY ", word.as_bytes(), "", false, |_| {})
            .await
            .unwrap();
        assert_eq!(refused.status, Status::No);
        server.await.unwrap();
    }

    /// A scripted server on loopback: literals in responses, NO, IDLE.
    #[tokio::test]
    async fn talks_to_a_scripted_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, mut w) = stream.into_split();
            let mut r = tokio::io::BufReader::new(r);
            let mut line = String::new();
            w.write_all(b"* OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n")
                .await
                .unwrap();
            let mut expect = async |want: &str| {
                line.clear();
                r.read_line(&mut line).await.unwrap();
                assert_eq!(line, want);
            };
            expect("A0001 FETCH 1 (BODY.PEEK[])\r\n").await;
            w.write_all(b"* 1 FETCH (BODY[] {5}\r\na\r\nb) UID 9)\r\nA0001 OK done\r\n")
                .await
                .unwrap();
            expect("A0002 FETCH 1 (ENVELOPE)\r\n").await;
            w.write_all(b"A0002 NO not here\r\n").await.unwrap();
            expect("A0003 IDLE\r\n").await;
            w.write_all(b"+ idling\r\n").await.unwrap();
            expect("DONE\r\n").await;
            w.write_all(b"* 2 EXISTS\r\nA0003 OK IDLE terminated\r\n")
                .await
                .unwrap();
            expect("A0004 IDLE\r\n").await;
            w.write_all(b"A0004 BAD Command not implemented yet\r\n")
                .await
                .unwrap();
            expect("A0005 LOGOUT\r\n").await;
            w.write_all(b"* BYE bye\r\nA0005 OK bye\r\n").await.unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut c = Client::connect(addr, Duration::from_secs(5), deadline, 4096)
            .await
            .unwrap();
        assert!(has_capability(&c.greeting, "IDLE"));
        let mut seen = Vec::new();
        let done = c
            .command("FETCH 1 (BODY.PEEK[])", |r| seen.push(r.to_vec()))
            .await
            .unwrap();
        assert!(done.is_ok());
        assert_eq!(
            seen,
            vec![b"* 1 FETCH (BODY[] {5}\r\na\r\nb) UID 9)\r\n".to_vec()]
        );
        let no = c.simple("FETCH 1 (ENVELOPE)").await.unwrap();
        assert_eq!(no.status, Status::No);
        assert_eq!(no.text, "not here");
        assert!(matches!(c.idle().await.unwrap(), Idle::Started));
        assert!(c.simple("NOOP").await.is_err(), "no command while idling");
        let mut exists = None;
        let done = c
            .done(|r| exists = exists.or(untagged_number(r, b"EXISTS")))
            .await
            .unwrap();
        assert!(done.is_ok());
        assert_eq!(exists, Some(2));
        match c.idle().await.unwrap() {
            Idle::Refused(c) => assert_eq!(c.status, Status::Bad),
            Idle::Started => panic!("IDLE should be refused"),
        }
        assert!(c.logout().await.unwrap().is_ok());
        server.await.unwrap();
    }
}
