//! `seed`: the same mailboxes for every server. The messages are generated
//! once and written as Maildir files (what Dovecot serves); then, when
//! `--smtp` is given, those very files are delivered over SMTP (to Postcell's
//! `mx` listener), each to its account.
//!
//! Mailbox `user1@bench.test=1000` becomes ROOT/user1/ with messages whose
//! subjects are `postcell-bench message 1 of 1000` .. `1000 of 1000`, dated
//! one second apart; `large@bench.test=3200:64k` gives that mailbox its own
//! message size. The mailboxes named by `--search-words` get the search words
//! of `imap-load search-body` (one message in 100 each, see
//! `postcell_bench::message::SearchWord`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use chrono::{TimeDelta, Utc};
use postcell_bench::loopback::resolve_loopback;
use postcell_bench::maildir::Maildir;
use postcell_bench::message::{MessageFactory, SearchWord, dot_stuff, parse_size};
use postcell_bench::smtp::{Outcome, Session};
use postcell_bench::stats::{Summary, micros, summarize};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::report::{Errors, Meter, p50_p99};

/// Tries per message before the seeding gives up.
const TRIES: u32 = 3;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the Maildirs go: one folder per account, named by its local part.
    #[arg(long)]
    pub maildir_root: PathBuf,
    /// ADDRESS=COUNT or ADDRESS=COUNT:SIZE: an account, how many messages its
    /// INBOX gets and (optionally) their size instead of --size (repeatable).
    #[arg(long = "mailbox", value_parser = parse_mailbox, required = true)]
    pub mailboxes: Vec<Mailbox>,
    /// Size of each message: 4k, 64k or a byte count (headers included).
    #[arg(long, default_value = "4k", value_parser = parse_size)]
    pub size: usize,
    /// An account whose messages carry the search words (repeatable; it must
    /// be one of the --mailbox accounts).
    #[arg(long = "search-words")]
    pub search_words: Vec<String>,
    /// Also deliver the messages to this SMTP server (host:port, loopback only).
    #[arg(long)]
    pub smtp: Option<String>,
    /// Concurrent SMTP connections for the delivery.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,
    /// Envelope and header sender.
    #[arg(long, default_value = "loadgen@load.test")]
    pub from: String,
    /// EHLO name, also the Message-ID domain.
    #[arg(long, default_value = "load.test")]
    pub helo: String,
    /// Hard bound on the SMTP delivery, in seconds.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub max_seconds: u64,
    /// Longest wait for any one SMTP reply, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub io_timeout: u64,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
}

/// One `--mailbox`: the account, its message count, and its own size if given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    pub address: String,
    pub messages: u64,
    pub size_bytes: Option<usize>,
}

fn parse_mailbox(s: &str) -> Result<Mailbox, String> {
    let (address, count) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?}: use ADDRESS=COUNT or ADDRESS=COUNT:SIZE"))?;
    let (count, size_bytes) = match count.split_once(':') {
        Some((count, size)) => (count, Some(parse_size(size)?)),
        None => (count, None),
    };
    let local = address.split('@').next().unwrap_or("");
    if !address.contains('@')
        || local.is_empty()
        || address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '/'))
    {
        return Err(format!("{address:?} is not a usable address"));
    }
    let count: u64 = count
        .parse()
        .map_err(|_| format!("{count:?} is not a message count"))?;
    if !(1..=10_000_000).contains(&count) {
        return Err(format!("{count} messages: between 1 and 10000000"));
    }
    Ok(Mailbox {
        address: address.to_string(),
        messages: count,
        size_bytes,
    })
}

#[derive(Serialize)]
struct Config {
    maildir_root: String,
    mailboxes: Vec<Mailbox>,
    size_bytes: usize,
    search_words: Vec<String>,
    smtp: Option<String>,
    connections: u32,
}

#[derive(Serialize)]
struct RunResult {
    messages: u64,
    message_bytes: u64,
    maildir_seconds: f64,
    /// Per account given to --search-words: how many of its messages carry
    /// each word (what a body SEARCH must find).
    search_words: Vec<SearchWordCount>,
    smtp: Option<SmtpResult>,
}

#[derive(Serialize)]
struct SearchWordCount {
    mailbox: String,
    name: &'static str,
    word: &'static str,
    messages: u64,
}

#[derive(Serialize)]
struct SmtpResult {
    target: String,
    delivered: u64,
    failed: u64,
    /// Tries that were repeated after an error.
    retries: u64,
    seconds: f64,
    messages_per_second: f64,
    /// MAIL FROM -> 250 after DATA.
    latency_message_ms: Summary,
}

/// One file to deliver, and to whom.
struct Item {
    path: PathBuf,
    rcpt: String,
}

pub async fn run(args: Args) -> Result<bool> {
    let meter = Meter::start(None);
    let started = Instant::now();
    // Mailboxes seeded in the same run share a date; message i is dated i
    // seconds after it, so that dates, like UIDs, follow the delivery order.
    let base = Utc::now() - TimeDelta::days(30);
    if let Some(stray) = args
        .search_words
        .iter()
        .find(|a| !args.mailboxes.iter().any(|m| &m.address == *a))
    {
        bail!("--search-words {stray}: not one of the --mailbox accounts");
    }
    let mut items = Vec::new();
    let mut message_bytes = 0u64;
    let mut search_words = Vec::new();
    for mailbox in &args.mailboxes {
        let (address, count) = (&mailbox.address, &mailbox.messages);
        let local = address.split('@').next().unwrap_or(address);
        let dir = args.maildir_root.join(local);
        let maildir = Maildir::create(&dir)?;
        if !maildir.messages()?.is_empty() {
            bail!(
                "{} already holds messages; seed an empty root",
                dir.display()
            );
        }
        let run_id = format!("{}.{local}", base.timestamp());
        let size = mailbox.size_bytes.unwrap_or(args.size);
        let mut factory =
            MessageFactory::new(size, &args.from, &run_id, &args.helo, *count).with_date(base);
        if args.search_words.contains(address) {
            factory = factory.with_search_words();
            for word in SearchWord::ALL {
                search_words.push(SearchWordCount {
                    mailbox: address.clone(),
                    name: word.name(),
                    word: word.word(),
                    messages: word.expected_hits(*count),
                });
            }
        }
        for i in 0..*count {
            let message = factory.build(i, address);
            message_bytes += message.len() as u64;
            let path = maildir.deliver(i, &message)?;
            items.push(Item {
                path,
                rcpt: address.clone(),
            });
        }
    }
    let maildir_seconds = started.elapsed().as_secs_f64();

    let mut errors = Errors::default();
    let smtp = match &args.smtp {
        Some(target) => Some(deliver(&args, target, items, &mut errors).await?),
        None => None,
    };
    let messages: u64 = args.mailboxes.iter().map(|m| m.messages).sum();
    let complete = smtp.as_ref().is_none_or(|s| s.delivered == messages);
    let result = RunResult {
        messages,
        message_bytes,
        maildir_seconds,
        search_words,
        smtp,
    };
    let config = Config {
        maildir_root: display(&args.maildir_root),
        mailboxes: args.mailboxes.clone(),
        size_bytes: args.size,
        search_words: args.search_words.clone(),
        smtp: args.smtp.clone(),
        connections: args.connections,
    };
    let report = meter.finish("seed", None, config, result, errors);
    let clean = report.print(args.json, |r| {
        let mut lines = vec![format!(
            "{} messages ({:.1} MiB) written as Maildir files in {:.2} s",
            r.messages,
            r.message_bytes as f64 / (1024.0 * 1024.0),
            r.maildir_seconds
        )];
        if let Some(s) = &r.smtp {
            lines.push(format!(
                "delivered {} over SMTP to {} in {:.2} s ({:.1} messages/s), {} failed, {} retries; per message {}",
                s.delivered, s.target, s.seconds, s.messages_per_second, s.failed, s.retries,
                p50_p99(&s.latency_message_ms)
            ));
        }
        lines
    })?;
    Ok(clean && complete)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

struct Shared {
    items: Vec<Item>,
    next: AtomicU64,
    addr: std::net::SocketAddr,
    from: String,
    helo: String,
    io_timeout: Duration,
    deadline: Instant,
}

#[derive(Default)]
struct WorkerResult {
    delivered: u64,
    failed: u64,
    retries: u64,
    message_us: Vec<u64>,
    errors: Errors,
}

async fn deliver(
    args: &Args,
    target: &str,
    items: Vec<Item>,
    errors: &mut Errors,
) -> Result<SmtpResult> {
    let addr = resolve_loopback(target).await?;
    let started = Instant::now();
    let shared = Arc::new(Shared {
        items,
        next: AtomicU64::new(0),
        addr,
        from: args.from.clone(),
        helo: args.helo.clone(),
        io_timeout: Duration::from_secs(args.io_timeout),
        deadline: started + Duration::from_secs(args.max_seconds),
    });
    let mut tasks = JoinSet::new();
    for _ in 0..args.connections {
        tasks.spawn(worker(Arc::clone(&shared)));
    }
    let mut total = WorkerResult::default();
    while let Some(r) = tasks.join_next().await {
        let r = r.map_err(|e| anyhow!("a delivery task failed: {e}"))?;
        total.delivered += r.delivered;
        total.failed += r.failed;
        total.retries += r.retries;
        total.message_us.extend(r.message_us);
        errors.merge(r.errors);
    }
    let seconds = started.elapsed().as_secs_f64();
    let not_tried = shared.items.len() as u64 - total.delivered - total.failed;
    if not_tried > 0 {
        errors.note(format!(
            "{not_tried} messages not delivered (deadline, or every connection gave up)"
        ));
    }
    Ok(SmtpResult {
        target: addr.to_string(),
        delivered: total.delivered,
        failed: total.failed + not_tried,
        retries: total.retries,
        seconds,
        messages_per_second: total.delivered as f64 / seconds.max(1e-9),
        latency_message_ms: summarize(&mut total.message_us),
    })
}

/// One SMTP connection: takes files until none are left; each is tried up to
/// TRIES times (on a new connection after an I/O error).
async fn worker(shared: Arc<Shared>) -> WorkerResult {
    let mut out = WorkerResult::default();
    let mut session: Option<Session> = None;
    loop {
        if Instant::now() >= shared.deadline {
            break;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed) as usize;
        let Some(item) = shared.items.get(index) else {
            break;
        };
        let payload = match std::fs::read(&item.path) {
            Ok(message) => dot_stuff(&message),
            Err(e) => {
                out.failed += 1;
                out.errors
                    .note(format!("reading {}: {e}", item.path.display()));
                continue;
            }
        };
        let mut delivered = false;
        for attempt in 0..TRIES {
            if attempt > 0 {
                out.retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if session.is_none() {
                match Session::connect(
                    shared.addr,
                    &shared.helo,
                    shared.io_timeout,
                    shared.deadline,
                )
                .await
                {
                    Ok(s) => session = Some(s),
                    Err(e) => {
                        out.errors.note(format!("connect: {e:#}"));
                        continue;
                    }
                }
            }
            let Some(s) = session.as_mut() else { continue };
            match s.deliver(&shared.from, &item.rcpt, &payload).await {
                Ok(Outcome::Accepted { total, .. }) => {
                    out.message_us.push(micros(total));
                    delivered = true;
                    break;
                }
                Ok(Outcome::Rejected { stage, reply }) => {
                    out.errors.note(format!(
                        "{} to {}: {stage}: {reply}",
                        item.path.display(),
                        item.rcpt
                    ));
                    if reply.code == 421 || s.rset().await.is_err() {
                        session = None;
                    }
                }
                Err(e) => {
                    out.errors
                        .note(format!("{} to {}: {e:#}", item.path.display(), item.rcpt));
                    session = None;
                }
            }
        }
        if delivered {
            out.delivered += 1;
        } else {
            out.failed += 1;
        }
    }
    if let Some(s) = session {
        let _ = s.quit().await;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_specs() {
        assert_eq!(
            parse_mailbox("big@bench.test=100000"),
            Ok(Mailbox {
                address: "big@bench.test".to_string(),
                messages: 100_000,
                size_bytes: None
            })
        );
        assert_eq!(
            parse_mailbox("large@bench.test=3200:64k"),
            Ok(Mailbox {
                address: "large@bench.test".to_string(),
                messages: 3200,
                size_bytes: Some(65536)
            })
        );
        assert!(parse_mailbox("large@bench.test=3200:").is_err());
        assert!(parse_mailbox("large@bench.test=3200:1").is_err());
        assert!(parse_mailbox("large@bench.test=:64k").is_err());
        assert!(parse_mailbox("big@bench.test").is_err());
        assert!(parse_mailbox("big=10").is_err());
        assert!(parse_mailbox("a/b@bench.test=10").is_err());
        assert!(parse_mailbox("big@bench.test=0").is_err());
    }
}
