//! imap-large-mailbox: fills one account's INBOX of a Postcell node with N messages
//! (straight into its embedded store), then times what a client does first with a
//! large mailbox: `SELECT INBOX` and `UID FETCH 1:* (FLAGS)`, over a real IMAP
//! connection to the running node. Loopback targets only.
//!
//! ```text
//! imap-large-mailbox fill --db node/data/postcell.db --blobs node/data/blobs \
//!     --user bench@example.test --messages 100000
//! imap-large-mailbox time --target 127.0.0.1:2143 --user bench@example.test --password ...
//! ```

mod machine;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use postcell_store::{BackendConfig, BlobConfig, Durability, NewMessage, Store, StoreConfig};
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(name = "imap-large-mailbox", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Appends N small messages to the user's INBOX, directly in the SQLite store (run
    /// it while the node is stopped, or on a node of its own).
    Fill {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        blobs: PathBuf,
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=2_000_000))]
        messages: u64,
    },
    /// Times SELECT INBOX and UID FETCH 1:* (FLAGS) against a running node.
    Time {
        #[arg(long, default_value = "127.0.0.1:2143")]
        target: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: String,
        /// Runs; the report gives each and the median.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
        #[arg(long)]
        json: bool,
    },
}

async fn fill(db: PathBuf, blobs: PathBuf, user: &str, messages: u64) -> Result<()> {
    let store = Store::open(&StoreConfig {
        backend: BackendConfig::Sqlite {
            path: db,
            // A benchmark fixture, not mail anyone waits for.
            durability: Durability::Normal,
        },
        blobs: BlobConfig::Folder(blobs),
        node_id: "imap-large-mailbox".into(),
    })
    .await?;
    let account = store
        .account_by_address(user)
        .await?
        .with_context(|| format!("no account {user}"))?;
    let inbox = store
        .mailbox_by_name(account.id, "INBOX")
        .await?
        .context("no INBOX")?;
    let started = Instant::now();
    for n in 0..messages {
        let body = format!(
            "From: bench@example.test\r\nTo: {user}\r\nSubject: message {n}\r\n\
             Message-ID: <{n}@bench.test>\r\n\r\nbody of message {n}\r\n"
        );
        let blob_id = store.put_blob(body.clone().into_bytes()).await?;
        // A few flags, so the answer is not all alike.
        let flags = match n % 4 {
            0 => postcell_store::flags::SEEN,
            1 => postcell_store::flags::SEEN | postcell_store::flags::FLAGGED,
            _ => 0,
        };
        store
            .append(
                account.id,
                inbox.id,
                &NewMessage {
                    blob_id,
                    size: body.len() as i64,
                    flags,
                    keywords: if n % 10 == 0 {
                        vec!["$Work".into()]
                    } else {
                        Vec::new()
                    },
                    internal_date: postcell_store::now(),
                    // FLAGS never reads a summary; the node computes any it needs.
                    summary: None,
                    // Indexed as a delivery would be, so the store is the same shape.
                },
            )
            .await?;
        if (n + 1) % 10_000 == 0 {
            eprintln!("{} messages ({:.0?})", n + 1, started.elapsed());
        }
    }
    store.close().await;
    eprintln!("filled {messages} messages in {:.1?}", started.elapsed());
    Ok(())
}

struct Client {
    reader: BufReader<TcpStream>,
    tag: u32,
}

impl Client {
    fn connect(addr: SocketAddr) -> Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        stream.set_nodelay(true)?;
        let mut client = Client {
            reader: BufReader::new(stream),
            tag: 0,
        };
        client.line()?;
        Ok(client)
    }

    fn line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 {
            bail!("the server closed the connection");
        }
        Ok(line)
    }

    /// Sends a command and reads to its tagged answer; the number of untagged lines.
    fn command(&mut self, text: &str) -> Result<usize> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.reader
            .get_mut()
            .write_all(format!("{tag} {text}\r\n").as_bytes())?;
        let mut untagged = 0;
        loop {
            let line = self.line()?;
            if line.starts_with(tag.as_bytes()) {
                if !line[tag.len()..].starts_with(b" OK") {
                    bail!("{text}: {}", String::from_utf8_lossy(&line));
                }
                return Ok(untagged);
            }
            untagged += 1;
        }
    }
}

#[derive(Serialize)]
struct Report {
    messages: usize,
    select_ms: Vec<f64>,
    uid_fetch_flags_ms: Vec<f64>,
    select_median_ms: f64,
    uid_fetch_flags_median_ms: f64,
    together_median_ms: f64,
    machine: machine::Machine,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn time(target: &str, user: &str, password: &str, runs: u32, json: bool) -> Result<()> {
    let addr = target
        .to_socket_addrs()?
        .next()
        .context("the target does not resolve")?;
    if !addr.ip().is_loopback() {
        bail!("{addr} is not a loopback address");
    }
    let mut select_ms = Vec::new();
    let mut fetch_ms = Vec::new();
    let mut together = Vec::new();
    let mut messages = 0;
    for _ in 0..runs {
        let mut client = Client::connect(addr)?;
        client.command(&format!("LOGIN \"{user}\" \"{password}\""))?;
        let start = Instant::now();
        client.command("SELECT INBOX")?;
        let selected = start.elapsed();
        messages = client.command("UID FETCH 1:* (FLAGS)")?;
        let both = start.elapsed();
        client.command("LOGOUT")?;
        select_ms.push(selected.as_secs_f64() * 1000.0);
        fetch_ms.push((both - selected).as_secs_f64() * 1000.0);
        together.push(both.as_secs_f64() * 1000.0);
    }
    let report = Report {
        messages,
        select_median_ms: median(&select_ms),
        uid_fetch_flags_median_ms: median(&fetch_ms),
        together_median_ms: median(&together),
        select_ms,
        uid_fetch_flags_ms: fetch_ms,
        machine: machine::Machine::detect(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} messages: SELECT {:.1} ms, UID FETCH 1:* (FLAGS) {:.1} ms, both {:.1} ms (median of {runs})",
            report.messages,
            report.select_median_ms,
            report.uid_fetch_flags_median_ms,
            report.together_median_ms
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Fill {
            db,
            blobs,
            user,
            messages,
        } => tokio::runtime::Runtime::new()?.block_on(fill(db, blobs, &user, messages)),
        Command::Time {
            target,
            user,
            password,
            runs,
            json,
        } => time(&target, &user, &password, runs, json),
    }
}
