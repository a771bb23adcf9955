//! smtp-load: delivers N messages of size S over C concurrent SMTP
//! connections to a server on this machine, and reports messages/s and
//! latency percentiles. Load goes to loopback addresses only.
//!
//! By default the load is closed-loop: each connection sends its next message
//! as soon as the previous one is answered. With `--rate R` it is open-loop:
//! message i arrives at `start + i / R` whatever the server's replies, and its
//! latency counts from that arrival, so a server that falls behind shows the
//! queueing delay instead of hiding it (no coordinated omission).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::task::JoinSet;

use postcell_bench::loopback::resolve_loopback;
use postcell_bench::machine::Machine;
use postcell_bench::message::{MessageFactory, dot_stuff, parse_size};
use postcell_bench::pace::{LATE_START, Pace, Start, parse_rate};
use postcell_bench::smtp::{Outcome, Session};
use postcell_bench::stats::{Summary, micros, summarize, unix_now};

/// Errors kept verbatim for the report; the rest are only counted.
const ERROR_SAMPLES: usize = 5;
/// A connection gives up after this many failures in a row.
const MAX_CONSECUTIVE_FAILURES: u32 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "smtp-load",
    version,
    about = "SMTP load generator: N messages of size S over C connections (loopback targets only)"
)]
struct Args {
    /// SMTP server to load, host:port; must resolve to a loopback address.
    /// Repeatable: connection c goes to target c mod (number of targets), so the
    /// nodes of a cell share the connections evenly.
    #[arg(long = "target", default_value = "127.0.0.1:2525")]
    targets: Vec<String>,
    /// Number of messages to deliver.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    messages: u64,
    /// Size of each message: 4k, 64k, 1m or a byte count (headers included).
    #[arg(long, default_value = "4k", value_parser = parse_size)]
    size: usize,
    /// Concurrent SMTP connections, each reused for many messages.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    connections: u32,
    /// File of recipient addresses, one per line ('#' starts a comment).
    #[arg(long)]
    recipients_file: Option<PathBuf>,
    /// A recipient address (repeatable); each message goes to one recipient drawn at random.
    #[arg(long = "recipient")]
    recipients: Vec<String>,
    /// Envelope and header sender.
    #[arg(long, default_value = "loadgen@load.test")]
    from: String,
    /// Name sent with EHLO (also the Message-ID domain).
    #[arg(long, default_value = "load.test")]
    helo: String,
    /// Hard bound on the run, in seconds: no new message starts after it and
    /// every pending read or write is cut at it.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    max_seconds: u64,
    /// Longest wait for any one reply or write, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    io_timeout: u64,
    /// Open-loop arrivals: messages per second offered at a fixed rate, whatever
    /// the replies; message i is due at start + i / RATE and waits for a free
    /// connection if all are busy. Without it, each connection sends as fast as
    /// it is answered.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Seed for the choice of recipients (random if not given).
    #[arg(long)]
    seed: Option<u64>,
    /// Free text copied into the report (e.g. the server's name).
    #[arg(long)]
    label: Option<String>,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    tool: &'static str,
    version: &'static str,
    label: Option<String>,
    date: String,
    started_unix: f64,
    finished_unix: f64,
    machine: Machine,
    config: Config,
    result: RunResult,
}

#[derive(Serialize)]
struct Config {
    target: String,
    messages: u64,
    size_bytes: usize,
    /// Actual size of the first message (differs from size_bytes only when
    /// the headers alone are longer).
    message_bytes: usize,
    connections: u32,
    recipients: usize,
    from: String,
    helo: String,
    max_seconds: u64,
    io_timeout_seconds: u64,
    seed: u64,
    /// Offered messages per second (open loop), or null for closed loop.
    rate: Option<f64>,
}

#[derive(Serialize)]
struct RunResult {
    /// Messages for which MAIL FROM was attempted.
    attempted: u64,
    /// Messages answered 250 after the end of DATA.
    accepted: u64,
    /// Replies other than the expected one (MAIL/RCPT/DATA/end of DATA).
    rejected: u64,
    /// Connection failures, timeouts, protocol errors.
    io_errors: u64,
    /// rejected + io_errors.
    errors: u64,
    /// Messages never attempted (deadline, or every connection gave up).
    not_sent: u64,
    /// Connections opened (more than `connections` if some were re-opened).
    connects: u64,
    /// Whether --max-seconds cut the run short.
    hit_max_seconds: bool,
    elapsed_seconds: f64,
    /// accepted / elapsed_seconds.
    messages_per_second: f64,
    /// accepted * message size / elapsed, in MiB/s.
    mebibytes_per_second: f64,
    /// From the end of DATA (".") being written to the 250 reply.
    latency_end_of_data_ms: Summary,
    /// From MAIL FROM being written to the 250 reply after DATA.
    latency_message_ms: Summary,
    /// Open loop only: from the message's due time (start + i / rate) to the 250
    /// after DATA, so waiting for a free connection counts.
    latency_from_arrival_ms: Option<Summary>,
    /// Open loop only: messages that started more than 10 ms after their due time
    /// because every connection was busy.
    late_starts: Option<u64>,
    /// The first few errors, verbatim.
    error_samples: Vec<String>,
}

/// What one connection's task did.
#[derive(Default)]
struct WorkerResult {
    attempted: u64,
    accepted: u64,
    rejected: u64,
    io_errors: u64,
    connects: u64,
    end_of_data_us: Vec<u64>,
    message_us: Vec<u64>,
    arrival_us: Vec<u64>,
    late_starts: u64,
    /// The first errors of this connection, with when they happened.
    errors: Vec<(Instant, String)>,
}

impl WorkerResult {
    fn note(&mut self, error: String) {
        if self.errors.len() < ERROR_SAMPLES {
            self.errors.push((Instant::now(), error));
        }
    }
}

struct Shared {
    addrs: Vec<SocketAddr>,
    /// Open loop: when each message is due.
    pace: Option<Pace>,
    next: AtomicU64,
    total: u64,
    deadline: Instant,
    io_timeout: Duration,
    from: String,
    helo: String,
    recipients: Vec<String>,
    factory: MessageFactory,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("smtp-load: error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        // All messages accepted.
        Ok(true) => ExitCode::SUCCESS,
        // The report is out, but the run was not clean.
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("smtp-load: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the load and prints the report; Ok(true) if every message was accepted.
async fn run(args: Args) -> Result<bool> {
    let recipients = load_recipients(&args)?;
    let mut addrs = Vec::new();
    for target in &args.targets {
        addrs.push(resolve_loopback(target).await?);
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let now_unix = unix_now();
    let run_id = format!("{:x}.{:08x}", now_unix as u64, rand::random::<u32>());
    let factory = MessageFactory::new(args.size, &args.from, &run_id, &args.helo, args.messages);
    let message_bytes = factory.build(0, &recipients[0]).len();

    let machine = Machine::detect();
    let date = chrono::Utc::now().to_rfc3339();
    let started = Instant::now();
    let started_unix = unix_now();
    let shared = Arc::new(Shared {
        addrs,
        pace: args.rate.map(|rate| Pace::new(started, rate)),
        next: AtomicU64::new(0),
        total: args.messages,
        deadline: started + Duration::from_secs(args.max_seconds),
        io_timeout: Duration::from_secs(args.io_timeout),
        from: args.from.clone(),
        helo: args.helo.clone(),
        recipients,
        factory,
    });

    let mut tasks = JoinSet::new();
    for c in 0..args.connections {
        let shared = Arc::clone(&shared);
        let rng = StdRng::seed_from_u64(seed.wrapping_add(u64::from(c)));
        let addr = shared.addrs[c as usize % shared.addrs.len()];
        tasks.spawn(worker(shared, rng, addr));
    }
    // Every I/O step is already cut at the deadline; this is a second bound.
    let hard_bound = Duration::from_secs(args.max_seconds) + Duration::from_secs(10);
    let mut results = Vec::new();
    let joined = tokio::time::timeout(hard_bound, async {
        while let Some(r) = tasks.join_next().await {
            results.push(r);
        }
    })
    .await;
    if joined.is_err() {
        tasks.abort_all();
        bail!("the run did not end within --max-seconds + 10 s");
    }
    let elapsed = started.elapsed();
    let finished_unix = unix_now();

    let mut total = WorkerResult::default();
    for r in results {
        let r = r.context("a connection task failed")?;
        total.attempted += r.attempted;
        total.accepted += r.accepted;
        total.rejected += r.rejected;
        total.io_errors += r.io_errors;
        total.connects += r.connects;
        total.end_of_data_us.extend(r.end_of_data_us);
        total.message_us.extend(r.message_us);
        total.arrival_us.extend(r.arrival_us);
        total.late_starts += r.late_starts;
        total.errors.extend(r.errors);
    }
    // The first few errors of the whole run, in the order they happened.
    total.errors.sort_by_key(|(at, _)| *at);
    total.errors.truncate(ERROR_SAMPLES);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let hit_max_seconds = Instant::now() >= shared.deadline && total.accepted < args.messages;
    let result = RunResult {
        attempted: total.attempted,
        accepted: total.accepted,
        rejected: total.rejected,
        io_errors: total.io_errors,
        errors: total.rejected + total.io_errors,
        not_sent: args.messages - total.attempted.min(args.messages),
        connects: total.connects,
        hit_max_seconds,
        elapsed_seconds: secs,
        messages_per_second: total.accepted as f64 / secs,
        mebibytes_per_second: total.accepted as f64 * message_bytes as f64
            / secs
            / (1024.0 * 1024.0),
        latency_end_of_data_ms: summarize(&mut total.end_of_data_us),
        latency_message_ms: summarize(&mut total.message_us),
        latency_from_arrival_ms: args.rate.map(|_| summarize(&mut total.arrival_us)),
        late_starts: args.rate.map(|_| total.late_starts),
        error_samples: total.errors.into_iter().map(|(_, e)| e).collect(),
    };
    let complete = result.accepted == args.messages;
    let report = Report {
        tool: "smtp-load",
        version: env!("CARGO_PKG_VERSION"),
        label: args.label.clone(),
        date,
        started_unix,
        finished_unix,
        machine,
        config: Config {
            target: shared
                .addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(","),
            messages: args.messages,
            size_bytes: args.size,
            message_bytes,
            connections: args.connections,
            recipients: shared.recipients.len(),
            from: args.from.clone(),
            helo: args.helo.clone(),
            max_seconds: args.max_seconds,
            io_timeout_seconds: args.io_timeout,
            seed,
            rate: args.rate,
        },
        result,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("encoding the report")?
        );
    } else {
        print_text(&report);
    }
    Ok(complete)
}

/// One connection: takes message numbers until none are left, reconnecting
/// after a failure, giving up after a few failures in a row.
async fn worker(shared: Arc<Shared>, mut rng: StdRng, addr: SocketAddr) -> WorkerResult {
    let mut out = WorkerResult::default();
    let mut session: Option<Session> = None;
    let mut failures = 0u32;
    loop {
        if Instant::now() >= shared.deadline || failures >= MAX_CONSECUTIVE_FAILURES {
            break;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= shared.total {
            break;
        }
        // Open loop: wait for this message's due time; a late start is queueing.
        let due = match &shared.pace {
            None => None,
            Some(pace) => match pace.wait(index, shared.deadline).await {
                Start::PastDeadline => break,
                Start::OnTime(due) => Some(due),
                Start::Late(due) => {
                    out.late_starts += 1;
                    Some(due)
                }
            },
        };
        out.attempted += 1;
        if session.is_none() {
            match Session::connect(addr, &shared.helo, shared.io_timeout, shared.deadline).await {
                Ok(s) => {
                    out.connects += 1;
                    session = Some(s);
                }
                Err(e) => {
                    out.io_errors += 1;
                    failures += 1;
                    out.note(format!("message {}: {e:#}", index + 1));
                    if failures < MAX_CONSECUTIVE_FAILURES {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            }
        }
        let Some(s) = session.as_mut() else {
            continue;
        };
        let rcpt = &shared.recipients[rng.random_range(0..shared.recipients.len())];
        let payload = dot_stuff(&shared.factory.build(index, rcpt));
        match s.deliver(&shared.from, rcpt, &payload).await {
            Ok(Outcome::Accepted { end_of_data, total }) => {
                failures = 0;
                out.accepted += 1;
                out.end_of_data_us.push(micros(end_of_data));
                out.message_us.push(micros(total));
                if let Some(due) = due {
                    out.arrival_us.push(micros(due.elapsed()));
                }
            }
            Ok(Outcome::Rejected { stage, reply }) => {
                out.rejected += 1;
                out.note(format!("message {} to {rcpt}: {stage}: {reply}", index + 1));
                // 421: the server is closing the connection.
                let keep = reply.code != 421 && s.rset().await.is_ok();
                if !keep {
                    session = None;
                }
            }
            Err(e) => {
                out.io_errors += 1;
                failures += 1;
                out.note(format!("message {} to {rcpt}: {e:#}", index + 1));
                session = None;
            }
        }
    }
    if let Some(s) = session
        && let Err(e) = s.quit().await
    {
        out.note(format!("QUIT: {e:#}"));
    }
    out
}

fn load_recipients(args: &Args) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if let Some(path) = &args.recipients_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if !line.is_empty() {
                out.push(line.to_string());
            }
        }
    }
    out.extend(args.recipients.iter().map(|r| r.trim().to_string()));
    if out.is_empty() {
        bail!("no recipients: give --recipient ADDRESS or --recipients-file FILE");
    }
    for address in out.iter().chain(std::iter::once(&args.from)) {
        let ok = address.contains('@')
            && !address
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        if !ok {
            bail!("not a usable address: {address:?}");
        }
    }
    if args.helo.is_empty()
        || args
            .helo
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("not a usable --helo name: {:?}", args.helo);
    }
    Ok(out)
}

fn print_text(r: &Report) {
    let c = &r.config;
    let x = &r.result;
    if let Some(label) = &r.label {
        println!("== {label} ==");
    }
    println!(
        "smtp-load: {} messages of {} bytes over {} connection(s) to {}, {} recipient(s)",
        c.messages, c.message_bytes, c.connections, c.target, c.recipients
    );
    let mem = r
        .machine
        .memory_total_bytes
        .map(|b| format!("{:.1} GiB", b as f64 / (1024.0 * 1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown memory".to_string());
    println!(
        "machine: {}, {} cores, {}; date {}",
        r.machine.cpu_model, r.machine.cores, mem, r.date
    );
    println!(
        "accepted {}/{}; errors {} (rejected {}, I/O {}); not sent {}; connections opened {}{}",
        x.accepted,
        c.messages,
        x.errors,
        x.rejected,
        x.io_errors,
        x.not_sent,
        x.connects,
        if x.hit_max_seconds {
            "; stopped by --max-seconds"
        } else {
            ""
        }
    );
    println!(
        "elapsed {:.3} s: {:.1} messages/s, {:.2} MiB/s",
        x.elapsed_seconds, x.messages_per_second, x.mebibytes_per_second
    );
    if let (Some(rate), Some(late)) = (c.rate, x.late_starts) {
        println!(
            "open loop: {rate:.1} messages/s offered; {late} started more than {} ms late",
            LATE_START.as_millis()
        );
    }
    let mut latencies = vec![
        ("end of DATA -> 250", &x.latency_end_of_data_ms),
        ("per message (MAIL FROM -> 250)", &x.latency_message_ms),
    ];
    if let Some(arrival) = &x.latency_from_arrival_ms {
        latencies.push(("from arrival (due time -> 250)", arrival));
    }
    for (name, s) in latencies {
        if s.count == 0 {
            println!("latency {name}: no message accepted");
            continue;
        }
        println!(
            "latency {name}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms, mean {:.3} ms",
            s.p50, s.p90, s.p99, s.max, s.mean
        );
    }
    if !x.error_samples.is_empty() {
        println!("first errors:");
        for e in &x.error_samples {
            println!("  {e}");
        }
    }
}
