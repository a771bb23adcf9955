//! `pop3-mix`: C clients, each running whole POP3 sessions one after the
//! other, as mail clients that download by POP3 do.
//!
//! ```text
//! C: USER user3@bench.test                                  login (USER + PASS)
//! C: PASS secret
//! C: STAT                                                   stat
//! C: UIDL                                                   uidl
//! C: RETR 412                     (3 times)                 retr
//! C: QUIT                                                   quit
//! ```
//!
//! Client `c` always uses account `c mod accounts`, so that two clients never
//! hold one maildrop at once (RFC 1939 lets a server lock it for the session).
//! Messages are picked at random (seeded); nothing is deleted, so the
//! mailboxes stay as seeded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use postcell_bench::pace::{Pace, Start, parse_rate};
use postcell_bench::pop3::Pop3Client;
use postcell_bench::stats::{Summary, micros, summarize};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::report::{Common, Errors, Meter, Run, open_loop_line, p50_p99};
use crate::session;

const MAX_CONSECUTIVE_FAILURES: u32 = 3;
/// Messages downloaded per session.
const RETRIEVED: u32 = 3;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Concurrent clients.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: u32,
    /// Sessions to run in all (the run also stops at --max-seconds).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub sessions: u64,
    /// Seed for the choice of messages (random if not given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Open loop: sessions offered at this rate (per second) whatever the
    /// answers; session i is due at start + i / RATE and waits for a free
    /// client if every client is busy. Without it, each client starts its
    /// next session as soon as its last one ends.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
}

#[derive(Serialize)]
struct Config {
    target: String,
    users: usize,
    clients: u32,
    sessions: u64,
    retrieved_per_session: u32,
    seed: u64,
    /// Open loop: sessions offered per second.
    rate: Option<f64>,
    max_seconds: u64,
    io_timeout_seconds: u64,
}

#[derive(Serialize)]
struct RunResult {
    sessions_started: u64,
    sessions_completed: u64,
    sessions_failed: u64,
    /// Commands answered +OK (USER and PASS count as one login; QUIT included).
    commands_ok: u64,
    hit_max_seconds: bool,
    /// Open loop only: sessions that started more than 10 ms after their due
    /// time, every client being busy.
    late_starts: Option<u64>,
    sessions_per_second: f64,
    commands_per_second: f64,
    /// Connect to greeting, then each command sent -> its whole answer.
    latency_ms: BTreeMap<&'static str, Summary>,
    /// Connect to the answer to QUIT, completed sessions only.
    session_ms: Summary,
    retrieved_bytes: u64,
}

#[derive(Default)]
struct ClientResult {
    started: u64,
    completed: u64,
    failed: u64,
    late_starts: u64,
    commands_ok: u64,
    latency_us: BTreeMap<&'static str, Vec<u64>>,
    session_us: Vec<u64>,
    retrieved_bytes: u64,
    errors: Errors,
}

struct Shared {
    run: Run,
    next: AtomicU64,
    total: u64,
    /// Open loop: when each session is due.
    pace: Option<Pace>,
}

pub async fn run(args: Args) -> Result<bool> {
    let run = args.common.resolve().await?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut errors = Errors::default();
    let server = run.server.clone();
    let meter = Meter::start(server.as_ref());
    let shared = Arc::new(Shared {
        run,
        next: AtomicU64::new(0),
        total: args.sessions,
        pace: args.rate.map(|rate| Pace::new(Instant::now(), rate)),
    });
    let mut tasks = JoinSet::new();
    for c in 0..args.clients {
        let shared = Arc::clone(&shared);
        let rng = StdRng::seed_from_u64(seed.wrapping_add(u64::from(c)));
        tasks.spawn(client(shared, c as usize, rng));
    }
    let results = session::join_within(&mut tasks, shared.run.deadline).await?;
    let elapsed = meter.elapsed().as_secs_f64().max(1e-9);
    let mut total = ClientResult::default();
    for r in results {
        let r = r.map_err(|e| anyhow!("a client task failed: {e}"))?;
        total.started += r.started;
        total.completed += r.completed;
        total.failed += r.failed;
        total.late_starts += r.late_starts;
        total.commands_ok += r.commands_ok;
        total.retrieved_bytes += r.retrieved_bytes;
        total.session_us.extend(r.session_us);
        for (k, v) in r.latency_us {
            total.latency_us.entry(k).or_default().extend(v);
        }
        errors.merge(r.errors);
    }
    let hit_max_seconds = Instant::now() >= shared.run.deadline && total.completed < args.sessions;
    let result = RunResult {
        sessions_started: total.started,
        sessions_completed: total.completed,
        sessions_failed: total.failed,
        commands_ok: total.commands_ok,
        hit_max_seconds,
        late_starts: args.rate.map(|_| total.late_starts),
        sessions_per_second: total.completed as f64 / elapsed,
        commands_per_second: total.commands_ok as f64 / elapsed,
        latency_ms: total
            .latency_us
            .iter_mut()
            .map(|(k, v)| (*k, summarize(v)))
            .collect(),
        session_ms: summarize(&mut total.session_us),
        retrieved_bytes: total.retrieved_bytes,
    };
    let complete = total.completed == args.sessions;
    let config = Config {
        target: shared.run.addr.to_string(),
        users: shared.run.users.len(),
        clients: args.clients,
        sessions: args.sessions,
        retrieved_per_session: RETRIEVED,
        seed,
        rate: args.rate,
        max_seconds: args.common.max_seconds,
        io_timeout_seconds: args.common.io_timeout,
    };
    let report = meter.finish(
        "pop3-mix",
        args.common.label.clone(),
        config,
        result,
        errors,
    );
    let clean = report.print(args.common.json, |r| {
        let mut lines = vec![format!(
            "sessions {} completed, {} failed; {:.1} sessions/s, {:.1} commands/s",
            r.sessions_completed, r.sessions_failed, r.sessions_per_second, r.commands_per_second
        )];
        if let (Some(rate), Some(late)) = (args.rate, r.late_starts) {
            lines.push(open_loop_line(rate, late));
        }
        for (name, s) in &r.latency_ms {
            lines.push(format!("{name:>15}: {}", p50_p99(s)));
        }
        lines.push(format!(
            "{:>15}: {}",
            "whole session",
            p50_p99(&r.session_ms)
        ));
        lines
    })?;
    Ok(clean && complete)
}

async fn client(shared: Arc<Shared>, number: usize, mut rng: StdRng) -> ClientResult {
    let mut out = ClientResult::default();
    let mut failures = 0;
    let user = &shared.run.users[number % shared.run.users.len()];
    loop {
        if Instant::now() >= shared.run.deadline || failures >= MAX_CONSECUTIVE_FAILURES {
            break;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= shared.total {
            break;
        }
        if let Some(pace) = &shared.pace {
            match pace.wait(index, shared.run.deadline).await {
                Start::PastDeadline => break,
                Start::Late(_) => out.late_starts += 1,
                Start::OnTime(_) => {}
            }
        }
        out.started += 1;
        let t0 = Instant::now();
        match one_session(&shared.run, user, &mut rng, &mut out).await {
            Ok(()) => {
                failures = 0;
                out.completed += 1;
                out.session_us.push(micros(t0.elapsed()));
            }
            Err(e) => {
                failures += 1;
                out.failed += 1;
                out.errors
                    .note(format!("session {} ({user}): {e:#}", index + 1));
            }
        }
    }
    out
}

fn record(out: &mut ClientResult, step: &'static str, since: Instant) {
    out.latency_us
        .entry(step)
        .or_default()
        .push(micros(since.elapsed()));
    out.commands_ok += 1;
}

async fn one_session(
    run: &Run,
    user: &str,
    rng: &mut StdRng,
    out: &mut ClientResult,
) -> Result<()> {
    let t = Instant::now();
    let mut client = Pop3Client::connect(run.addr, run.io_timeout, run.deadline).await?;
    out.latency_us
        .entry("connect")
        .or_default()
        .push(micros(t.elapsed()));

    let t = Instant::now();
    client.command(&format!("USER {user}")).await?;
    client.command(&format!("PASS {}", run.password)).await?;
    record(out, "login", t);

    let t = Instant::now();
    let stat = client.command("STAT").await?;
    record(out, "stat", t);
    let count: u32 = stat
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("STAT: {stat}"))?;
    if count == 0 {
        bail!("{user}'s maildrop is empty");
    }

    let t = Instant::now();
    let uidl = client.multi_line("UIDL", false).await?;
    record(out, "uidl", t);
    if uidl.lines != count as usize {
        bail!("UIDL: {} lines for {count} messages", uidl.lines);
    }

    for _ in 0..RETRIEVED {
        let n = rng.random_range(1..=count);
        let t = Instant::now();
        let message = client.multi_line(&format!("RETR {n}"), false).await?;
        record(out, "retr", t);
        if message.lines == 0 {
            bail!("RETR {n}: an empty message");
        }
        out.retrieved_bytes += message.octets;
    }

    let t = Instant::now();
    client.quit().await?;
    record(out, "quit", t);
    Ok(())
}
