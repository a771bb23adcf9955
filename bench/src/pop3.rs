//! A small POP3 client (RFC 1939) for the load generator: one command, one
//! status line, and for multi-line answers the lines up to the lone `.`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub struct Pop3Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    line: Vec<u8>,
    io_timeout: Duration,
    deadline: Instant,
}

/// A multi-line answer: its line count and octets (dot-stuffing undone, CRLFs
/// counted), and the lines themselves when asked for.
#[derive(Debug, Default)]
pub struct Listing {
    pub lines: usize,
    pub octets: u64,
    pub kept: Vec<String>,
}

fn bounded(io_timeout: Duration, deadline: Instant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        bail!("the run's time is up");
    }
    Ok(io_timeout.min(left))
}

impl Pop3Client {
    /// Connects and reads the `+OK` greeting.
    pub async fn connect(
        addr: SocketAddr,
        io_timeout: Duration,
        deadline: Instant,
    ) -> Result<Pop3Client> {
        let limit = bounded(io_timeout, deadline)?;
        let stream = tokio::time::timeout(limit, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connect to {addr}: timed out"))?
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        let (r, w) = stream.into_split();
        let mut client = Pop3Client {
            reader: BufReader::with_capacity(16 * 1024, r),
            writer: w,
            line: Vec::with_capacity(512),
            io_timeout,
            deadline,
        };
        let limit = bounded(io_timeout, deadline)?;
        let greeting = tokio::time::timeout(limit, client.read_line())
            .await
            .map_err(|_| anyhow!("timed out waiting for the greeting"))??;
        if !greeting.starts_with("+OK") {
            bail!("greeting: {greeting}");
        }
        Ok(client)
    }

    /// Sends a command and returns its status line; `-ERR` is an error.
    pub async fn command(&mut self, command: &str) -> Result<String> {
        let verb = command.split(' ').next().unwrap_or("").to_string();
        let limit = bounded(self.io_timeout, self.deadline)?;
        let status = tokio::time::timeout(limit, async {
            self.send(command).await?;
            self.read_line().await
        })
        .await
        .map_err(|_| anyhow!("{verb}: timed out after {limit:?}"))??;
        if !status.starts_with("+OK") {
            bail!("{verb}: {status}");
        }
        Ok(status)
    }

    /// A command with a multi-line answer (UIDL, LIST, RETR, TOP); with `keep`
    /// the lines are returned too.
    pub async fn multi_line(&mut self, command: &str, keep: bool) -> Result<Listing> {
        self.command(command).await?;
        let verb = command.split(' ').next().unwrap_or("").to_string();
        let limit = bounded(self.io_timeout, self.deadline)?;
        tokio::time::timeout(limit, self.read_listing(keep))
            .await
            .map_err(|_| anyhow!("{verb}: timed out after {limit:?}"))?
            .with_context(|| verb)
    }

    /// QUIT, then closes the socket.
    pub async fn quit(mut self) -> Result<String> {
        self.io_timeout = self.io_timeout.min(Duration::from_secs(5));
        let status = self.command("QUIT").await?;
        let _ = self.writer.shutdown().await;
        Ok(status)
    }

    async fn send(&mut self, command: &str) -> Result<()> {
        let mut out = Vec::with_capacity(command.len() + 2);
        out.extend_from_slice(command.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.writer.write_all(&out).await.context("sending")
    }

    async fn read_raw(&mut self) -> Result<()> {
        self.line.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.line)
            .await
            .context("reading")?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        Ok(())
    }

    async fn read_line(&mut self) -> Result<String> {
        self.read_raw().await?;
        let text = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    async fn read_listing(&mut self, keep: bool) -> Result<Listing> {
        let mut listing = Listing::default();
        loop {
            self.read_raw().await?;
            let line = self.line.as_slice();
            if line == b".\r\n" || line == b".\n" {
                return Ok(listing);
            }
            let line = line.strip_prefix(b".").unwrap_or(line);
            listing.lines += 1;
            listing.octets += line.len() as u64;
            if keep {
                let text = line.strip_suffix(b"\r\n").unwrap_or(line);
                listing
                    .kept
                    .push(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
}
