//! A minimal SMTP client session for load generation: one TCP connection,
//! reused for many transactions. Every read and write is bounded in time.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const MAX_LINE: u64 = 4096;
const MAX_REPLY_LINES: usize = 128;

/// A server reply: the code and the text of all its lines.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// What became of one message.
pub enum Outcome {
    /// 250 after the end of DATA.
    Accepted {
        /// From the end of DATA being written to the 250 reply.
        end_of_data: Duration,
        /// From MAIL FROM being written to the 250 reply.
        total: Duration,
    },
    /// A reply that was not the expected one, at `stage`.
    Rejected { stage: &'static str, reply: Reply },
}

pub struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    line: String,
    io_timeout: Duration,
    deadline: Instant,
}

impl Session {
    /// Connects, reads the 220 greeting and sends EHLO.
    pub async fn connect(
        addr: SocketAddr,
        helo: &str,
        io_timeout: Duration,
        deadline: Instant,
    ) -> Result<Session> {
        let limit = bounded(io_timeout, deadline)?;
        let stream = tokio::time::timeout(limit, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connect to {addr}: timed out"))?
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        let (r, w) = stream.into_split();
        let mut s = Session {
            reader: BufReader::with_capacity(16 * 1024, r),
            writer: w,
            line: String::with_capacity(256),
            io_timeout,
            deadline,
        };
        let greeting = s.read_reply().await.context("greeting")?;
        if greeting.code != 220 {
            bail!("greeting: {greeting}");
        }
        let reply = s.command(&format!("EHLO {helo}\r\n")).await?;
        if reply.code != 250 {
            bail!("EHLO: {reply}");
        }
        Ok(s)
    }

    /// One mail transaction: MAIL FROM, RCPT TO, DATA, the message
    /// (already dot-stuffed and terminated by `dot_stuff`), final reply.
    pub async fn deliver(&mut self, from: &str, rcpt: &str, payload: &[u8]) -> Result<Outcome> {
        let start = Instant::now();
        let reply = self.command(&format!("MAIL FROM:<{from}>\r\n")).await?;
        if reply.code != 250 {
            return Ok(Outcome::Rejected {
                stage: "MAIL FROM",
                reply,
            });
        }
        let reply = self.command(&format!("RCPT TO:<{rcpt}>\r\n")).await?;
        if reply.code != 250 && reply.code != 251 {
            return Ok(Outcome::Rejected {
                stage: "RCPT TO",
                reply,
            });
        }
        let reply = self.command("DATA\r\n").await?;
        if reply.code != 354 {
            return Ok(Outcome::Rejected {
                stage: "DATA",
                reply,
            });
        }
        self.write(payload).await.context("sending message")?;
        let end_of_data = Instant::now();
        let reply = self.read_reply().await.context("reply to end of DATA")?;
        let done = Instant::now();
        if reply.code != 250 {
            return Ok(Outcome::Rejected {
                stage: "end of DATA",
                reply,
            });
        }
        Ok(Outcome::Accepted {
            end_of_data: done - end_of_data,
            total: done - start,
        })
    }

    /// Resets the transaction after a rejection.
    pub async fn rset(&mut self) -> Result<()> {
        let reply = self.command("RSET\r\n").await?;
        if reply.code != 250 {
            bail!("RSET: {reply}");
        }
        Ok(())
    }

    /// Sends QUIT and waits (briefly) for the 221.
    pub async fn quit(mut self) -> Result<()> {
        self.io_timeout = self.io_timeout.min(Duration::from_secs(2));
        self.deadline = Instant::now() + self.io_timeout;
        let reply = self.command("QUIT\r\n").await?;
        if reply.code != 221 {
            bail!("QUIT: {reply}");
        }
        let _ = self.writer.shutdown().await;
        Ok(())
    }

    async fn command(&mut self, line: &str) -> Result<Reply> {
        self.write(line.as_bytes())
            .await
            .with_context(|| format!("sending {}", line.trim_end()))?;
        self.read_reply()
            .await
            .with_context(|| format!("reply to {}", line.trim_end()))
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let limit = bounded(self.io_timeout, self.deadline)?;
        tokio::time::timeout(limit, self.writer.write_all(bytes))
            .await
            .map_err(|_| anyhow!("write timed out"))??;
        Ok(())
    }

    async fn read_reply(&mut self) -> Result<Reply> {
        let mut text = String::new();
        for _ in 0..MAX_REPLY_LINES {
            self.line.clear();
            let limit = bounded(self.io_timeout, self.deadline)?;
            let mut limited = (&mut self.reader).take(MAX_LINE);
            let n = tokio::time::timeout(limit, limited.read_line(&mut self.line))
                .await
                .map_err(|_| anyhow!("timed out waiting for a reply"))??;
            if n == 0 {
                bail!("connection closed by the server");
            }
            if !self.line.ends_with('\n') {
                bail!("reply line longer than {MAX_LINE} bytes");
            }
            let l = self.line.trim_end_matches(['\r', '\n']);
            let code: u16 = l
                .get(..3)
                .and_then(|c| c.parse().ok())
                .filter(|c| (200..600).contains(c))
                .ok_or_else(|| anyhow!("malformed reply line {l:?}"))?;
            let more = l.as_bytes().get(3) == Some(&b'-');
            if !text.is_empty() {
                text.push_str(" / ");
            }
            text.push_str(l.get(4..).unwrap_or("").trim());
            if !more {
                return Ok(Reply { code, text });
            }
        }
        bail!("reply of more than {MAX_REPLY_LINES} lines")
    }
}

/// The time an operation may take: the I/O timeout, cut to the run's deadline.
fn bounded(io_timeout: Duration, deadline: Instant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        bail!("--max-seconds reached");
    }
    Ok(io_timeout.min(left))
}
