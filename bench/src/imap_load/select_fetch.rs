//! `select-fetch-flags`: how long a client waits to open a large mailbox and
//! learn the flags of every message in it.
//!
//! ```text
//! C: A1 LOGIN "big@bench.test" "secret"          (timed apart: login_ms)
//! C: A2 SELECT "INBOX"                           (select_ms)
//! C: A3 UID FETCH 1:* (FLAGS)                    (fetch_ms)
//! C: A4 LOGOUT
//! ```
//!
//! Each repetition is a new connection, so nothing a session keeps in memory
//! helps the next one; the first `--warmup` repetitions are not measured.

use std::time::Instant;

use anyhow::{Result, bail};
use postcell_bench::imap::untagged_number;
use postcell_bench::stats::{Summary, micros, summarize};
use serde::Serialize;

use crate::report::{Common, Errors, Meter, Run, p50_p99};
use crate::session;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Mailbox to open (of the first account given).
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Measured repetitions.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeat: u32,
    /// Unmeasured repetitions first (they warm the server's caches and indexes).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub warmup: u32,
    /// The number of messages the mailbox must hold (checked on every repetition).
    #[arg(long)]
    pub expect_messages: Option<u32>,
}

#[derive(Serialize)]
struct Config {
    target: String,
    user: String,
    mailbox: String,
    repeat: u32,
    warmup: u32,
    expect_messages: Option<u32>,
    max_seconds: u64,
    io_timeout_seconds: u64,
}

#[derive(Serialize)]
struct RunResult {
    /// Messages in the mailbox (EXISTS of the last good repetition).
    messages: Option<u32>,
    repetitions_ok: u32,
    repetitions_failed: u32,
    /// Whether --max-seconds cut the run short.
    hit_max_seconds: bool,
    /// Connect + greeting + LOGIN.
    login_ms: Summary,
    /// SELECT sent -> tagged OK.
    select_ms: Summary,
    /// UID FETCH 1:* (FLAGS) sent -> tagged OK, every FETCH response read.
    fetch_ms: Summary,
    /// select + fetch of the same repetition.
    select_plus_fetch_ms: Summary,
    /// Bytes of untagged responses to one UID FETCH 1:* (FLAGS).
    fetch_response_bytes: u64,
}

struct Repetition {
    exists: u32,
    login_us: u64,
    select_us: u64,
    fetch_us: u64,
    fetch_bytes: u64,
}

pub async fn run(args: Args) -> Result<bool> {
    let run = args.common.resolve().await?;
    let user = run.users[0].clone();

    let mut errors = Errors::default();
    for n in 0..args.warmup {
        if let Err(e) = repetition(&run, &user, &args.mailbox, args.expect_messages).await {
            errors.note(format!("warm-up {}: {e:#}", n + 1));
        }
    }

    let meter = Meter::start(run.server.as_ref());
    let (mut login, mut select, mut fetch, mut both) = (vec![], vec![], vec![], vec![]);
    let (mut ok, mut failed, mut messages, mut fetch_bytes) = (0, 0, None, 0);
    let mut hit_max_seconds = false;
    for n in 0..args.repeat {
        if Instant::now() >= run.deadline {
            hit_max_seconds = true;
            break;
        }
        match repetition(&run, &user, &args.mailbox, args.expect_messages).await {
            Ok(r) => {
                ok += 1;
                messages = Some(r.exists);
                fetch_bytes = r.fetch_bytes;
                login.push(r.login_us);
                select.push(r.select_us);
                fetch.push(r.fetch_us);
                both.push(r.select_us + r.fetch_us);
            }
            Err(e) => {
                failed += 1;
                errors.note(format!("repetition {}: {e:#}", n + 1));
            }
        }
    }
    let result = RunResult {
        messages,
        repetitions_ok: ok,
        repetitions_failed: failed,
        hit_max_seconds,
        login_ms: summarize(&mut login),
        select_ms: summarize(&mut select),
        fetch_ms: summarize(&mut fetch),
        select_plus_fetch_ms: summarize(&mut both),
        fetch_response_bytes: fetch_bytes,
    };
    let complete = ok == args.repeat;
    let config = Config {
        target: run.addr.to_string(),
        user,
        mailbox: args.mailbox,
        repeat: args.repeat,
        warmup: args.warmup,
        expect_messages: args.expect_messages,
        max_seconds: args.common.max_seconds,
        io_timeout_seconds: args.common.io_timeout,
    };
    let report = meter.finish(
        "select-fetch-flags",
        args.common.label.clone(),
        config,
        result,
        errors,
    );
    let clean = report.print(args.common.json, |r| {
        vec![
            format!(
                "{} messages; {} repetitions ok, {} failed",
                r.messages.map(|m| m.to_string()).unwrap_or("?".into()),
                r.repetitions_ok,
                r.repetitions_failed
            ),
            format!("login:          {}", p50_p99(&r.login_ms)),
            format!("SELECT:         {}", p50_p99(&r.select_ms)),
            format!("UID FETCH 1:* (FLAGS): {}", p50_p99(&r.fetch_ms)),
            format!("SELECT + FETCH: {}", p50_p99(&r.select_plus_fetch_ms)),
        ]
    })?;
    Ok(clean && complete)
}

async fn repetition(
    run: &Run,
    user: &str,
    mailbox: &str,
    expect: Option<u32>,
) -> Result<Repetition> {
    let t0 = Instant::now();
    let mut client = session::connect(run, 256 * 1024).await?;
    session::login(&mut client, user, &run.password).await?;
    let t1 = Instant::now();
    let exists = session::select(&mut client, mailbox).await?;
    let t2 = Instant::now();
    if let Some(want) = expect
        && exists != want
    {
        bail!("{mailbox} holds {exists} messages, {want} expected");
    }
    let (mut responses, mut bytes) = (0u32, 0u64);
    let done = client
        .command("UID FETCH 1:* (FLAGS)", |r| {
            bytes += r.len() as u64;
            if untagged_number(r, b"FETCH").is_some() {
                responses += 1;
            }
        })
        .await?;
    let t3 = Instant::now();
    if !done.is_ok() {
        bail!("UID FETCH 1:* (FLAGS): {done}");
    }
    if responses != exists {
        bail!("UID FETCH 1:* (FLAGS) gave {responses} FETCH responses for {exists} messages");
    }
    let bye = client.logout().await?;
    if !bye.is_ok() {
        bail!("LOGOUT: {bye}");
    }
    Ok(Repetition {
        exists,
        login_us: micros(t1 - t0),
        select_us: micros(t2 - t1),
        fetch_us: micros(t3 - t2),
        fetch_bytes: bytes,
    })
}
