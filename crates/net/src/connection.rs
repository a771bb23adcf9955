//! A client connection, framed in lines, that may switch to TLS mid-stream.
//!
//! This is the only type that touches socket bytes: protocol sessions ask it for lines
//! (with a length limit and an idle timeout) and give it replies to buffer and flush.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::{Stream, TlsAcceptor};

#[derive(Debug, Error)]
pub enum LineError {
    /// The line exceeded the limit. It was read to its end and thrown away, so the
    /// session can answer and carry on.
    #[error("line too long")]
    TooLong,
    #[error("connection closed by the peer")]
    Closed,
    #[error("idle timeout")]
    Timeout,
    /// The server is shutting down and the session was idle between commands.
    #[error("server shutting down")]
    Shutdown,
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Reads what the peer sent into `input`. `read_buf` fills spare capacity and only then
/// grows the length, and `readable` is cancel-safe, so a read cancelled by the caller
/// (IMAP IDLE waits on the socket and on the change feed at once) leaves the buffer as
/// it was. On plain TCP with nothing buffered, it waits for the socket to be readable
/// before taking a buffer, so that an idle connection holds no read buffer.
async fn read_into(stream: &mut Stream, input: &mut Vec<u8>) -> io::Result<usize> {
    if let Stream::Plain(tcp) = stream
        && input.is_empty()
    {
        loop {
            tcp.readable().await?;
            input.reserve(READ_CHUNK);
            match tcp.try_read_buf(input) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A spurious wake-up: wait again without the buffer.
                    *input = Vec::new();
                }
                Err(e) => return Err(e),
            }
        }
    }
    // TLS decrypts into its own buffers; with nothing pending, a small read buffer
    // serves a command line.
    input.reserve(if input.is_empty() {
        IDLE_KEEP
    } else {
        READ_CHUNK
    });
    stream.read_buf(input).await
}

/// One line as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line without its terminator.
    pub text: Vec<u8>,
    /// The line ended in a bare LF rather than CRLF.
    pub bare_lf: bool,
}

const READ_CHUNK: usize = 16 * 1024;

/// Buffer capacity a connection keeps between commands; beyond it, an emptied buffer is
/// given back, so that thousands of idle connections hold next to nothing.
const IDLE_KEEP: usize = 4 * 1024;

pub struct Connection {
    stream: Option<Stream>,
    input: Vec<u8>,
    /// Start of unread data in `input`.
    consumed: usize,
    output: Vec<u8>,
    peer: SocketAddr,
    local: SocketAddr,
    idle_timeout: Duration,
    shutdown: CancellationToken,
}

impl Connection {
    pub fn new(
        tcp: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        shutdown: CancellationToken,
    ) -> Connection {
        Connection {
            stream: Some(Stream::Plain(tcp)),
            input: Vec::new(),
            consumed: 0,
            output: Vec::new(),
            peer,
            local,
            idle_timeout: Duration::from_secs(300),
            shutdown,
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
    }

    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(Stream::is_tls)
    }

    pub fn tls_description(&self) -> Option<String> {
        self.stream.as_ref().and_then(Stream::tls_description)
    }

    /// The server is stopping: sessions finish what they are doing and say goodbye.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Whether the peer sent more than we have read (pipelined commands). Replies can
    /// wait in the buffer until this is false (RFC 2920).
    pub fn has_buffered_input(&self) -> bool {
        self.consumed < self.input.len()
    }

    /// Reads a command line. While waiting for its first byte, a shutdown request
    /// interrupts the wait with [`LineError::Shutdown`].
    ///
    /// Cancel-safe between reads: dropping the future (in a `select!`) loses no input,
    /// so a session can wait for a line and for something else at once.
    pub async fn read_line(&mut self, limit: usize) -> Result<Line, LineError> {
        self.read_line_inner(limit, true).await
    }

    /// Reads a line that continues something already started (message text, a SASL
    /// response): a shutdown request does not interrupt it.
    pub async fn read_continuation_line(&mut self, limit: usize) -> Result<Line, LineError> {
        self.read_line_inner(limit, false).await
    }

    async fn read_line_inner(
        &mut self,
        limit: usize,
        interruptible: bool,
    ) -> Result<Line, LineError> {
        let mut scanned = self.consumed;
        let mut overflowed = false;
        loop {
            if let Some(offset) = self.input[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + offset;
                let line = &self.input[self.consumed..end];
                let bare_lf = line.last() != Some(&b'\r');
                let text = if bare_lf {
                    line
                } else {
                    &line[..line.len() - 1]
                };
                let result = if overflowed || text.len() > limit {
                    Err(LineError::TooLong)
                } else {
                    Ok(Line {
                        text: text.to_vec(),
                        bare_lf,
                    })
                };
                self.consumed = end + 1;
                self.compact();
                return result;
            }
            scanned = self.input.len();
            if scanned - self.consumed > limit + 2 {
                // Keep only the tail so an endless line cannot exhaust memory.
                overflowed = true;
                self.consumed = self.input.len();
                self.compact();
                scanned = 0;
            }
            let idle = interruptible && self.consumed == self.input.len() && !overflowed;
            self.fill(idle).await?;
        }
    }

    /// Reads exactly `n` bytes (an IMAP literal, say).
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, LineError> {
        while self.input.len() - self.consumed < n {
            self.fill(false).await?;
        }
        let data = self.input[self.consumed..self.consumed + n].to_vec();
        self.consumed += n;
        self.compact();
        Ok(data)
    }

    fn compact(&mut self) {
        if self.consumed == self.input.len() {
            // Everything read: the buffer is given back (plain TCP waits without one,
            // see `fill`).
            self.input = Vec::new();
            self.consumed = 0;
        } else if self.consumed > READ_CHUNK {
            self.input.drain(..self.consumed);
            self.consumed = 0;
        }
    }

    /// Reads more input, flushing pending replies first so the peer is never left
    /// waiting for an answer we hold.
    async fn fill(&mut self, interruptible: bool) -> Result<(), LineError> {
        self.flush().await?;
        if self.output.capacity() > IDLE_KEEP {
            // A large answer went out (a FETCH of many messages): do not keep its
            // buffer while waiting.
            self.output = Vec::new();
        }
        let stream = self.stream.as_mut().ok_or(LineError::Closed)?;
        let read = read_into(stream, &mut self.input);
        let outcome = if interruptible {
            tokio::select! {
                r = tokio::time::timeout(self.idle_timeout, read) => Some(r),
                _ = self.shutdown.cancelled() => None,
            }
        } else {
            Some(tokio::time::timeout(self.idle_timeout, read).await)
        };
        let n = match outcome {
            None => return Err(LineError::Shutdown),
            Some(Err(_)) => return Err(LineError::Timeout),
            Some(Ok(Err(e))) => return Err(LineError::Io(e)),
            Some(Ok(Ok(n))) => n,
        };
        if n == 0 {
            return Err(LineError::Closed);
        }
        metrics::counter!("postcell_net_bytes_received_total").increment(n as u64);
        Ok(())
    }

    /// Buffers a reply; it goes out at the next flush or read.
    pub fn write(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let written = tokio::time::timeout(self.idle_timeout, async {
            stream.write_all(&self.output).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?;
        metrics::counter!("postcell_net_bytes_sent_total").increment(self.output.len() as u64);
        self.output.clear();
        written
    }

    /// Writes and flushes at once.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(bytes);
        self.flush().await
    }

    /// Upgrades to TLS after STARTTLS/STLS has been answered. Anything the client sent
    /// after the command and before the handshake is discarded: it was sent in the
    /// clear and must not be taken as coming from inside TLS (CVE-2011-0411).
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        self.flush().await?;
        if self.has_buffered_input() {
            tracing::warn!(peer = %self.peer, "discarding input pipelined before the TLS handshake");
        }
        self.input.clear();
        self.consumed = 0;
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err(io::Error::other("TLS is already active"));
        };
        let tls = tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        self.stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }

    /// Closes the connection, flushing what is buffered.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        if let Some(mut stream) = self.stream.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.shutdown()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (Connection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        (
            Connection::new(server, peer, addr, CancellationToken::new()),
            client,
        )
    }

    #[tokio::test]
    async fn lines_split_at_crlf_and_note_bare_lf() {
        let (mut conn, mut client) = pair().await;
        client.write_all(b"HELO a\r\nNOOP\nQUIT\r\n").await.unwrap();
        assert_eq!(
            conn.read_line(100).await.unwrap(),
            Line {
                text: b"HELO a".to_vec(),
                bare_lf: false
            }
        );
        assert_eq!(
            conn.read_line(100).await.unwrap(),
            Line {
                text: b"NOOP".to_vec(),
                bare_lf: true
            }
        );
        assert!(conn.has_buffered_input());
        assert_eq!(conn.read_line(100).await.unwrap().text, b"QUIT");
        assert!(!conn.has_buffered_input());
    }

    #[tokio::test]
    async fn a_long_line_is_skipped_whole_and_the_next_one_reads() {
        let (mut conn, mut client) = pair().await;
        let mut long = vec![b'x'; 100_000];
        long.extend_from_slice(b"\r\nNEXT\r\n");
        client.write_all(&long).await.unwrap();
        assert!(matches!(conn.read_line(512).await, Err(LineError::TooLong)));
        assert_eq!(conn.read_line(512).await.unwrap().text, b"NEXT");
    }

    #[tokio::test]
    async fn a_cancelled_read_loses_nothing() {
        let (mut conn, mut client) = pair().await;
        client.write_all(b"DO").await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(100), conn.read_line(100)).await;
        assert!(waited.is_err(), "no line yet");
        client.write_all(b"NE\r\n").await.unwrap();
        assert_eq!(conn.read_line(100).await.unwrap().text, b"DONE");
    }

    #[tokio::test]
    async fn idle_peers_time_out_and_closed_peers_are_noticed() {
        let (mut conn, client) = pair().await;
        conn.set_idle_timeout(Duration::from_millis(50));
        assert!(matches!(conn.read_line(100).await, Err(LineError::Timeout)));
        drop(client);
        assert!(matches!(conn.read_line(100).await, Err(LineError::Closed)));
    }

    #[tokio::test]
    async fn shutdown_interrupts_only_an_idle_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let token = CancellationToken::new();
        let mut conn = Connection::new(server, peer, addr, token.clone());
        token.cancel();
        assert!(matches!(
            conn.read_line(100).await,
            Err(LineError::Shutdown)
        ));
        client.write_all(b"text\r\n").await.unwrap();
        assert_eq!(
            conn.read_continuation_line(100).await.unwrap().text,
            b"text"
        );
    }
}
