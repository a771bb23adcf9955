//! `imap-mix`: C clients, each running whole sessions one after the other,
//! like people opening their mail.
//!
//! ```text
//! C: A1 LOGIN "user3@bench.test" "secret"                  login
//! C: A2 SELECT "INBOX"                                      select
//! C: A3 FETCH 412:431 (UID ENVELOPE)                        fetch_envelope
//! C: A4 FETCH 77 (BODY.PEEK[])          (5 times)           fetch_body
//! C: A5 STORE 610 +FLAGS (\Flagged)     (or -FLAGS)         store
//! C: A6 SEARCH SUBJECT "message 908 of"                     search
//! C: A7 LOGOUT                                              logout
//! ```
//!
//! Messages are picked at random (seeded); the search looks for the subject
//! of one message of the mailbox (`postcell-bench message N of M`, as
//! `imap-load seed` writes them), so it must find exactly one. Before the
//! measured run, one unmeasured pass opens every account's mailbox, fetches
//! every envelope and searches once, so that the server's caches and indexes
//! are warm; a step the server refuses there (NO or BAD) is reported as
//! unsupported and left out of the measured sessions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use postcell_bench::imap::{Client, Completion, search_count, untagged_number};
use postcell_bench::pace::{Pace, Start, parse_rate};
use postcell_bench::stats::{Summary, micros, summarize};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::report::{Common, Errors, Meter, Run, open_loop_line, p50_p99};
use crate::session;

/// A client gives up after this many failed sessions in a row.
const MAX_CONSECUTIVE_FAILURES: u32 = 3;
/// Envelopes per session, bodies per session.
const ENVELOPES: u32 = 20;
const BODIES: u32 = 5;

/// The steps of a session, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Login,
    Select,
    FetchEnvelope,
    FetchBody,
    Store,
    Search,
    Logout,
}

/// Steps that may be left out (--skip) or found unsupported in the warm-up.
const OPTIONAL: [Step; 4] = [
    Step::FetchEnvelope,
    Step::FetchBody,
    Step::Store,
    Step::Search,
];

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Login => "login",
            Step::Select => "select",
            Step::FetchEnvelope => "fetch_envelope",
            Step::FetchBody => "fetch_body",
            Step::Store => "store",
            Step::Search => "search",
            Step::Logout => "logout",
        }
    }
}

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
    /// Mailbox each session selects.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Leave a step out of every session (repeatable).
    #[arg(long = "skip", value_enum)]
    pub skip: Vec<Step>,
    /// No unmeasured warm-up pass (nor its check of which steps the server serves).
    #[arg(long)]
    pub no_warmup: bool,
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
    mailbox: String,
    clients: u32,
    sessions: u64,
    envelopes_per_session: u32,
    bodies_per_session: u32,
    skipped: Vec<Step>,
    warmup: bool,
    seed: u64,
    /// Open loop: sessions offered per second.
    rate: Option<f64>,
    max_seconds: u64,
    io_timeout_seconds: u64,
}

#[derive(Serialize)]
struct RunResult {
    /// Steps the server refused in the warm-up (NO or BAD), with its answer;
    /// they were left out of the measured sessions.
    unsupported: BTreeMap<&'static str, String>,
    /// Steps left out: --skip and unsupported ones.
    steps_left_out: Vec<Step>,
    warmup_seconds: f64,
    sessions_started: u64,
    sessions_completed: u64,
    sessions_failed: u64,
    /// Commands answered OK (LOGOUT included; connect not counted).
    commands_ok: u64,
    hit_max_seconds: bool,
    /// Open loop only: sessions that started more than 10 ms after their due
    /// time, every client being busy.
    late_starts: Option<u64>,
    /// Completed sessions / wall time of the measured run.
    sessions_per_second: f64,
    /// Commands answered OK / wall time of the measured run.
    commands_per_second: f64,
    /// Connect to greeting, then each command sent -> tagged OK.
    latency_ms: BTreeMap<&'static str, Summary>,
    /// Connect to the tagged OK of LOGOUT, completed sessions only.
    session_ms: Summary,
    body_bytes: u64,
    search_hits: u64,
}

/// What one client did.
#[derive(Default)]
struct ClientResult {
    started: u64,
    completed: u64,
    failed: u64,
    late_starts: u64,
    commands_ok: u64,
    latency_us: BTreeMap<&'static str, Vec<u64>>,
    session_us: Vec<u64>,
    body_bytes: u64,
    search_hits: u64,
    errors: Errors,
}

struct Shared {
    run: Run,
    mailbox: String,
    steps: Vec<Step>,
    next: AtomicU64,
    total: u64,
    /// Open loop: when each session is due.
    pace: Option<Pace>,
}

pub async fn run(args: Args) -> Result<bool> {
    let run = args.common.resolve().await?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut errors = Errors::default();

    let warmup_started = Instant::now();
    let unsupported = if args.no_warmup {
        BTreeMap::new()
    } else {
        warm_up(&run, &args, &mut errors).await
    };
    let warmup_seconds = warmup_started.elapsed().as_secs_f64();

    let left_out: Vec<Step> = OPTIONAL
        .into_iter()
        .filter(|s| args.skip.contains(s) || unsupported.contains_key(s.name()))
        .collect();
    let steps: Vec<Step> = [
        Step::Login,
        Step::Select,
        Step::FetchEnvelope,
        Step::FetchBody,
        Step::Store,
        Step::Search,
        Step::Logout,
    ]
    .into_iter()
    .filter(|s| !left_out.contains(s))
    .collect();

    let server = run.server.clone();
    let meter = Meter::start(server.as_ref());
    let shared = Arc::new(Shared {
        run,
        mailbox: args.mailbox.clone(),
        steps,
        next: AtomicU64::new(0),
        total: args.sessions,
        pace: args.rate.map(|rate| Pace::new(Instant::now(), rate)),
    });
    let mut tasks = JoinSet::new();
    for c in 0..args.clients {
        let shared = Arc::clone(&shared);
        let rng = StdRng::seed_from_u64(seed.wrapping_add(u64::from(c)));
        tasks.spawn(client(shared, rng));
    }
    let mut total = ClientResult::default();
    let results = session::join_within(&mut tasks, shared.run.deadline).await?;
    let elapsed = meter.elapsed().as_secs_f64().max(1e-9);
    for r in results {
        let r = r.map_err(|e| anyhow!("a client task failed: {e}"))?;
        total.started += r.started;
        total.completed += r.completed;
        total.failed += r.failed;
        total.late_starts += r.late_starts;
        total.commands_ok += r.commands_ok;
        total.body_bytes += r.body_bytes;
        total.search_hits += r.search_hits;
        total.session_us.extend(r.session_us);
        for (k, v) in r.latency_us {
            total.latency_us.entry(k).or_default().extend(v);
        }
        errors.merge(r.errors);
    }
    let hit_max_seconds = Instant::now() >= shared.run.deadline && total.completed < args.sessions;
    let result = RunResult {
        unsupported: unsupported
            .into_iter()
            .map(|(step, answer)| (step, answer.to_string()))
            .collect(),
        steps_left_out: left_out.clone(),
        warmup_seconds,
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
        body_bytes: total.body_bytes,
        search_hits: total.search_hits,
    };
    let complete = total.completed == args.sessions;
    let config = Config {
        target: shared.run.target_list(),
        users: shared.run.users.len(),
        mailbox: args.mailbox,
        clients: args.clients,
        sessions: args.sessions,
        envelopes_per_session: ENVELOPES,
        bodies_per_session: BODIES,
        skipped: args.skip,
        warmup: !args.no_warmup,
        seed,
        rate: args.rate,
        max_seconds: args.common.max_seconds,
        io_timeout_seconds: args.common.io_timeout,
    };
    let report = meter.finish(
        "imap-mix",
        args.common.label.clone(),
        config,
        result,
        errors,
    );
    let clean = report.print(args.common.json, |r| {
        let mut lines = vec![
            format!(
                "sessions {} completed, {} failed; {:.1} sessions/s, {:.1} commands/s",
                r.sessions_completed,
                r.sessions_failed,
                r.sessions_per_second,
                r.commands_per_second
            ),
            format!("warm-up pass {:.2} s", r.warmup_seconds),
        ];
        if let (Some(rate), Some(late)) = (args.rate, r.late_starts) {
            lines.push(open_loop_line(rate, late));
        }
        for (step, answer) in &r.unsupported {
            lines.push(format!("unsupported, left out: {step} ({answer})"));
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

/// The unmeasured pass: for every account, one session that selects the
/// mailbox, fetches all flags and envelopes and searches once. Returns the
/// optional steps the server refused, with its answer.
async fn warm_up(
    run: &Run,
    args: &Args,
    errors: &mut Errors,
) -> BTreeMap<&'static str, Completion> {
    let mut unsupported = BTreeMap::new();
    for user in &run.users {
        match warm_up_one(run, user, &args.mailbox, &args.skip).await {
            Ok(refused) => {
                for (step, answer) in refused {
                    unsupported.entry(step.name()).or_insert(answer);
                }
            }
            Err(e) => errors.note(format!("warm-up {user}: {e:#}")),
        }
    }
    unsupported
}

async fn warm_up_one(
    run: &Run,
    user: &str,
    mailbox: &str,
    skip: &[Step],
) -> Result<Vec<(Step, Completion)>> {
    let mut client = session::connect(run, 256 * 1024).await?;
    session::login(&mut client, user, &run.password).await?;
    let exists = session::select(&mut client, mailbox).await?;
    let mut refused = Vec::new();
    let mut check = |step: Step, done: Completion| -> Result<()> {
        match done.status {
            postcell_bench::imap::Status::Ok => Ok(()),
            _ if OPTIONAL.contains(&step) => {
                refused.push((step, done));
                Ok(())
            }
            _ => bail!("{}: {done}", step.name()),
        }
    };
    let done = client.simple("FETCH 1:* (FLAGS)").await?;
    if !done.is_ok() {
        bail!("FETCH 1:* (FLAGS): {done}");
    }
    if !skip.contains(&Step::FetchEnvelope) {
        let done = client.simple("FETCH 1:* (UID ENVELOPE)").await?;
        check(Step::FetchEnvelope, done)?;
    }
    if !skip.contains(&Step::FetchBody) && exists > 0 {
        let done = client.simple("FETCH 1 (BODY.PEEK[])").await?;
        check(Step::FetchBody, done)?;
    }
    if !skip.contains(&Step::Search) {
        let done = client.simple("SEARCH SUBJECT \"message 1 of\"").await?;
        check(Step::Search, done)?;
    }
    // STORE changes the mailbox: try it on the first message and undo it.
    if !skip.contains(&Step::Store) && exists > 0 {
        let done = client.simple("STORE 1 +FLAGS.SILENT (\\Flagged)").await?;
        let ok = done.is_ok();
        check(Step::Store, done)?;
        if ok {
            let undo = client.simple("STORE 1 -FLAGS.SILENT (\\Flagged)").await?;
            if !undo.is_ok() {
                bail!("STORE 1 -FLAGS.SILENT: {undo}");
            }
        }
    }
    let bye = client.logout().await?;
    if !bye.is_ok() {
        bail!("LOGOUT: {bye}");
    }
    Ok(refused)
}

/// One client: sessions one after the other until none are left or the time is up.
async fn client(shared: Arc<Shared>, mut rng: StdRng) -> ClientResult {
    let mut out = ClientResult::default();
    let mut failures = 0;
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
        let user = &shared.run.users[(index % shared.run.users.len() as u64) as usize];
        let t0 = Instant::now();
        match one_session(&shared, index, user, &mut rng, &mut out).await {
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

/// Times `command` and checks it answered OK.
async fn timed(
    client: &mut Client,
    out: &mut ClientResult,
    step: Step,
    command: &str,
    on_untagged: impl FnMut(&[u8]),
) -> Result<()> {
    let t = Instant::now();
    let done = client.command(command, on_untagged).await?;
    if !done.is_ok() {
        bail!("{command}: {done}");
    }
    out.latency_us
        .entry(step.name())
        .or_default()
        .push(micros(t.elapsed()));
    out.commands_ok += 1;
    Ok(())
}

/// Whether `response` holds `item` (an IMAP data item name, upper case).
fn contains(response: &[u8], item: &[u8]) -> bool {
    response
        .windows(item.len())
        .any(|w| w.eq_ignore_ascii_case(item))
}

async fn one_session(
    shared: &Shared,
    index: u64,
    user: &str,
    rng: &mut StdRng,
    out: &mut ClientResult,
) -> Result<()> {
    let run = &shared.run;
    let t = Instant::now();
    let mut client = session::connect_to(run, index, 64 * 1024).await?;
    out.latency_us
        .entry("connect")
        .or_default()
        .push(micros(t.elapsed()));

    let t = Instant::now();
    session::login(&mut client, user, &run.password).await?;
    out.latency_us
        .entry(Step::Login.name())
        .or_default()
        .push(micros(t.elapsed()));
    out.commands_ok += 1;

    let t = Instant::now();
    let exists = session::select(&mut client, &shared.mailbox).await?;
    out.latency_us
        .entry(Step::Select.name())
        .or_default()
        .push(micros(t.elapsed()));
    out.commands_ok += 1;
    if exists == 0 {
        bail!("{} is empty", shared.mailbox);
    }

    for &step in &shared.steps {
        match step {
            Step::Login | Step::Select | Step::Logout => {}
            Step::FetchEnvelope => {
                let first = rng.random_range(1..=exists.saturating_sub(ENVELOPES - 1).max(1));
                let last = (first + ENVELOPES - 1).min(exists);
                let mut got = 0;
                let command = format!("FETCH {first}:{last} (UID ENVELOPE)");
                // Other sessions' flag changes may come as FETCH (FLAGS) too.
                timed(&mut client, out, step, &command, |r| {
                    if untagged_number(r, b"FETCH").is_some() && contains(r, b"ENVELOPE") {
                        got += 1;
                    }
                })
                .await?;
                if got != last - first + 1 {
                    bail!("{command}: {got} FETCH responses");
                }
            }
            Step::FetchBody => {
                for _ in 0..BODIES {
                    let n = rng.random_range(1..=exists);
                    let (mut got, mut bytes) = (0, 0);
                    let command = format!("FETCH {n} (BODY.PEEK[])");
                    timed(&mut client, out, step, &command, |r| {
                        if untagged_number(r, b"FETCH") == Some(n) && contains(r, b"BODY[]") {
                            got += 1;
                            bytes += r.len() as u64;
                        }
                    })
                    .await?;
                    if got != 1 {
                        bail!("{command}: {got} FETCH responses");
                    }
                    out.body_bytes += bytes;
                }
            }
            Step::Store => {
                let n = rng.random_range(1..=exists);
                let sign = if rng.random_bool(0.5) { '+' } else { '-' };
                let command = format!("STORE {n} {sign}FLAGS (\\Flagged)");
                timed(&mut client, out, step, &command, |_| {}).await?;
            }
            Step::Search => {
                // Each account's messages are numbered 1..=M in their subjects.
                let n = rng.random_range(1..=exists);
                let mut hits = None;
                let command = format!("SEARCH SUBJECT \"message {n} of\"");
                timed(&mut client, out, step, &command, |r| {
                    hits = hits.or(search_count(r));
                })
                .await?;
                let hits = hits.ok_or_else(|| anyhow!("{command}: no SEARCH response"))?;
                if hits != 1 {
                    bail!("{command}: {hits} messages found, 1 expected");
                }
                out.search_hits += hits as u64;
            }
        }
    }

    let t = Instant::now();
    let bye = client.logout().await?;
    if !bye.is_ok() {
        bail!("LOGOUT: {bye}");
    }
    out.latency_us
        .entry(Step::Logout.name())
        .or_default()
        .push(micros(t.elapsed()));
    out.commands_ok += 1;
    Ok(())
}
