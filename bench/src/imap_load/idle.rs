//! `idle-memory`: what K connections waiting in IDLE cost the server in
//! resident memory.
//!
//! ```text
//! (each of K connections, at most --concurrency setting up at once)
//! C: A1 LOGIN "user7@bench.test" "secret"
//! C: A2 SELECT "INBOX"
//! C: A3 IDLE
//! S: + idling
//! (all K idling: wait --settle-seconds, read the server's memory, then)
//! C: DONE
//! S: A3 OK Idle completed
//! C: A4 LOGOUT
//! ```
//!
//! Every connection must get the `+` continuation. A server that answers IDLE
//! with a tagged BAD or NO on every connection does not serve IDLE: that is
//! reported as unsupported (not an error), and the memory then measured is
//! that of K connections left in the selected state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use postcell_bench::imap::{Client, Idle, has_capability};
use postcell_bench::process::{MemorySample, raise_open_files};
use postcell_bench::stats::{Summary, micros, summarize};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::report::{Common, Errors, Meter, Run, mib, p50_p99};
use crate::session;

/// The receive buffer of each idle connection: they read little.
const READ_BUFFER: usize = 4096;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open and keep idling.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub connections: u32,
    /// Connections setting up (connect, LOGIN, SELECT, IDLE) at the same time.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// Mailbox each connection selects.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Seconds to wait after the last connection is set up (and after they
    /// are closed) before reading the server's memory.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub settle_seconds: u64,
}

#[derive(Serialize)]
struct Config {
    target: String,
    users: usize,
    mailbox: String,
    connections: u32,
    concurrency: u32,
    settle_seconds: u64,
    max_seconds: u64,
    io_timeout_seconds: u64,
    open_files_limit: u64,
}

#[derive(Serialize)]
struct RunResult {
    /// "supported": every connection got the continuation; "unsupported":
    /// every connection that got as far as IDLE was refused it; "partial":
    /// some were, some were not (an error).
    idle: &'static str,
    /// Whether the greeting, LOGIN's CAPABILITY code or CAPABILITY listed IDLE.
    idle_advertised: bool,
    /// Connections that got `+` to IDLE.
    idling: u32,
    /// Connections answered BAD/NO to IDLE (still held open, selected).
    idle_refused: u32,
    /// The first refusal, verbatim.
    idle_refusal: Option<String>,
    /// Connections that failed before IDLE (connect, LOGIN, SELECT).
    setup_failed: u32,
    /// Connections held open while the memory was read.
    held: u32,
    /// What the held connections were doing: "IDLE" or "selected (IDLE refused)".
    held_state: &'static str,
    /// Connect -> `+ idling` (or the refusal), per connection.
    setup_ms: Summary,
    /// From the first connect to the last connection set up.
    setup_seconds: f64,
    /// DONE answered OK / LOGOUT answered OK.
    done_ok: u32,
    logout_ok: u32,
    memory_before: Option<MemorySample>,
    memory_held: Option<MemorySample>,
    memory_after_close: Option<MemorySample>,
    /// (held - before) / held connections, from the sums of VmRSS and of Pss.
    rss_per_connection_bytes: Option<f64>,
    pss_per_connection_bytes: Option<f64>,
}

/// How a connection's set-up ended (times in microseconds; whether IDLE was
/// advertised to it).
enum Setup {
    Idling(u64, bool),
    Refused(u64, String, bool),
    Failed(String),
}

/// What a connection's task reports when it ends.
#[derive(Default)]
struct End {
    done_ok: bool,
    logout_ok: bool,
    errors: Errors,
}

pub async fn run(args: Args) -> Result<bool> {
    let run = Arc::new(args.common.resolve().await?);
    let Some(server) = run.server.clone() else {
        bail!("idle-memory needs --server-pid (the server whose memory is measured)");
    };
    // Our sockets, and a margin for everything else.
    let open_files_limit = raise_open_files(u64::from(args.connections) + 256)?;

    let meter = Meter::start(Some(&server));
    let memory_before = server.memory();
    let setup_started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.concurrency as usize));
    let (report_tx, mut report_rx) = mpsc::unbounded_channel::<Setup>();
    let (release_tx, release_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for n in 0..args.connections {
        let run = Arc::clone(&run);
        let gate = Arc::clone(&gate);
        let report = report_tx.clone();
        let mut release = release_rx.clone();
        let user = run.users[n as usize % run.users.len()].clone();
        let mailbox = args.mailbox.clone();
        let ask_capability = n == 0;
        tasks.spawn(async move {
            let mut end = End::default();
            let permit = gate.acquire_owned().await;
            let t0 = Instant::now();
            let set_up = set_up(&run, &user, &mailbox, ask_capability).await;
            drop(permit);
            let (mut client, idling) = match set_up {
                Ok((client, Idle::Started, advertised)) => {
                    let _ = report.send(Setup::Idling(micros(t0.elapsed()), advertised));
                    (client, true)
                }
                Ok((client, Idle::Refused(why), advertised)) => {
                    let us = micros(t0.elapsed());
                    let _ = report.send(Setup::Refused(us, why.to_string(), advertised));
                    (client, false)
                }
                Err(e) => {
                    let _ = report.send(Setup::Failed(format!("connection {}: {e:#}", n + 1)));
                    return end;
                }
            };
            // Hold the connection until the memory has been read.
            let _ = release.wait_for(|go| *go).await;
            if idling {
                match client.done(|_| {}).await {
                    Ok(done) if done.is_ok() => end.done_ok = true,
                    Ok(done) => end
                        .errors
                        .note(format!("connection {}: DONE: {done}", n + 1)),
                    Err(e) => end.errors.note(format!("connection {}: {e:#}", n + 1)),
                }
            }
            match client.logout().await {
                Ok(done) if done.is_ok() => end.logout_ok = true,
                Ok(done) => end
                    .errors
                    .note(format!("connection {}: LOGOUT: {done}", n + 1)),
                Err(e) => end
                    .errors
                    .note(format!("connection {}: LOGOUT: {e:#}", n + 1)),
            }
            end
        });
    }
    drop(report_tx);

    // Wait for every connection to be set up (or to fail), bounded by the run.
    let mut errors = Errors::default();
    let (mut idling, mut refused, mut failed) = (0u32, 0u32, 0u32);
    let mut refusal = None;
    let mut setup_us = Vec::with_capacity(args.connections as usize);
    let mut advertised = false;
    let mut seen = 0;
    while seen < args.connections {
        let left = run.deadline.saturating_duration_since(Instant::now());
        let Ok(Some(setup)) = tokio::time::timeout(left, report_rx.recv()).await else {
            errors.note(format!(
                "only {seen} of {} connections were set up within --max-seconds",
                args.connections
            ));
            break;
        };
        seen += 1;
        match setup {
            Setup::Idling(us, listed) => {
                idling += 1;
                setup_us.push(us);
                advertised |= listed;
            }
            Setup::Refused(us, why, listed) => {
                refused += 1;
                setup_us.push(us);
                refusal.get_or_insert(why);
                advertised |= listed;
            }
            Setup::Failed(e) => {
                failed += 1;
                errors.note(e);
            }
        }
    }
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let memory_held = server.memory();
    let _ = release_tx.send(true);

    let (mut done_ok, mut logout_ok) = (0, 0);
    let left = run.deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(10);
    let joined = tokio::time::timeout(left, async {
        let mut ends = Vec::new();
        while let Some(end) = tasks.join_next().await {
            ends.push(end);
        }
        ends
    })
    .await;
    match joined {
        Ok(ends) => {
            for end in ends {
                match end {
                    Ok(end) => {
                        done_ok += u32::from(end.done_ok);
                        logout_ok += u32::from(end.logout_ok);
                        errors.merge(end.errors);
                    }
                    Err(e) => errors.note(format!("a connection task failed: {e}")),
                }
            }
        }
        Err(_) => {
            tasks.abort_all();
            errors.note("connections did not close within --max-seconds".to_string());
        }
    }
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let memory_after_close = server.memory();

    let idle = match (idling, refused) {
        (_, 0) if idling > 0 => "supported",
        (0, r) if r > 0 => "unsupported",
        (0, 0) => "unknown",
        _ => {
            errors.note(format!(
                "{idling} connections idling but {refused} refused IDLE"
            ));
            "partial"
        }
    };
    let held = idling + refused;
    let per = |after: u64, before: u64| {
        (held > 0).then(|| (after as f64 - before as f64) / f64::from(held))
    };
    let result = RunResult {
        idle,
        idle_advertised: advertised,
        idling,
        idle_refused: refused,
        idle_refusal: refusal,
        setup_failed: failed,
        held,
        held_state: if refused > 0 && idling == 0 {
            "selected (IDLE refused)"
        } else {
            "IDLE"
        },
        setup_ms: summarize(&mut setup_us),
        setup_seconds,
        done_ok,
        logout_ok,
        rss_per_connection_bytes: per(memory_held.rss_bytes, memory_before.rss_bytes),
        pss_per_connection_bytes: per(memory_held.pss_bytes, memory_before.pss_bytes),
        memory_before: Some(memory_before),
        memory_held: Some(memory_held),
        memory_after_close: Some(memory_after_close),
    };
    let config = Config {
        target: run.addr.to_string(),
        users: run.users.len(),
        mailbox: args.mailbox,
        connections: args.connections,
        concurrency: args.concurrency,
        settle_seconds: args.settle_seconds,
        max_seconds: args.common.max_seconds,
        io_timeout_seconds: args.common.io_timeout,
        open_files_limit,
    };
    let complete = failed == 0 && held == args.connections;
    let report = meter.finish(
        "idle-memory",
        args.common.label.clone(),
        config,
        result,
        errors,
    );
    let clean = report.print(args.common.json, |r| {
        let mem = |m: &Option<MemorySample>| {
            m.as_ref()
                .map(|m| {
                    format!(
                        "{} processes, RSS {:.1} MiB, PSS {:.1} MiB",
                        m.processes,
                        mib(m.rss_bytes),
                        mib(m.pss_bytes)
                    )
                })
                .unwrap_or_default()
        };
        vec![
            format!(
                "IDLE {} (advertised: {}); {} idling, {} refused{}, {} failed before IDLE",
                r.idle,
                r.idle_advertised,
                r.idling,
                r.idle_refused,
                r.idle_refusal
                    .as_ref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default(),
                r.setup_failed
            ),
            format!(
                "set-up of {} connections in {:.2} s; per connection {}",
                r.held,
                r.setup_seconds,
                p50_p99(&r.setup_ms)
            ),
            format!("memory before: {}", mem(&r.memory_before)),
            format!(
                "memory with {} connections {}: {}",
                r.held,
                r.held_state,
                mem(&r.memory_held)
            ),
            format!("memory after closing: {}", mem(&r.memory_after_close)),
            format!(
                "per connection: RSS {:.1} KiB, PSS {:.1} KiB",
                r.rss_per_connection_bytes.unwrap_or(0.0) / 1024.0,
                r.pss_per_connection_bytes.unwrap_or(0.0) / 1024.0
            ),
            format!("DONE ok {}, LOGOUT ok {}", r.done_ok, r.logout_ok),
        ]
    })?;
    Ok(clean && complete)
}

/// connect, LOGIN, SELECT, IDLE.
async fn set_up(
    run: &Run,
    user: &str,
    mailbox: &str,
    ask_capability: bool,
) -> Result<(Client, Idle, bool)> {
    let mut client = session::connect(run, READ_BUFFER).await?;
    let mut advertised = has_capability(&client.greeting, "IDLE");
    let login = session::login(&mut client, user, &run.password).await?;
    advertised |= has_capability(&login.text, "IDLE");
    if ask_capability {
        let mut listed = false;
        client
            .command("CAPABILITY", |r| {
                listed |= has_capability(&String::from_utf8_lossy(r), "IDLE")
            })
            .await?;
        advertised |= listed;
    }
    session::select(&mut client, mailbox).await?;
    let idle = client.idle().await?;
    Ok((client, idle, advertised))
}
