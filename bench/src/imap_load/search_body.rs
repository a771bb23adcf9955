//! `search-body`: how long a body SEARCH of a large mailbox takes, for an
//! English word and for a Japanese one, and whether it finds exactly the
//! messages `imap-load seed --search-words` put the word in.
//!
//! ```text
//! C: A0001 LOGIN "big@bench.test" "secret"                 (not timed)
//! C: A0002 CAPABILITY                                       (not timed; LITERAL+?)
//! C: A0003 SELECT "INBOX"                                   (not timed; EXISTS checked)
//! C: A0004 UID SEARCH BODY xylophone                        (timed: sent -> tagged OK)
//! C: A0005 LOGOUT
//! ...
//! C: A0004 UID SEARCH CHARSET UTF-8 BODY {9+}               (timed, the literal included)
//! C: 会議室
//! ```
//!
//! Each search is a new connection. For each word the first search is
//! reported apart (cold), then `--repeat` more give the median and p90. The
//! Japanese word goes as a non-synchronizing literal when the server offers
//! LITERAL+ or LITERAL- (RFC 7888), otherwise as a synchronizing one (its
//! continuation's round trip is then part of the time).
//!
//! With `--metrics`, before the searches the run waits (at most
//! `--catch-up-seconds`) until the server's gauge `--metric` (by default
//! `postcell_store_search_pending`, the blobs its store has not indexed yet)
//! is 0, and reports how long that took: the time of the first of the zero
//! readings that then last 2 s (the node refreshes the gauge about once a
//! second, so one 0 could predate the last deliveries). When the gauge is not
//! there the wait is skipped and the time is null.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use postcell_bench::imap::{has_capability, search_count};
use postcell_bench::loopback::resolve_loopback;
use postcell_bench::message::SearchWord;
use postcell_bench::metrics;
use postcell_bench::stats::{Summary, micros, summarize};
use serde::Serialize;

use crate::report::{Common, Errors, Meter, Run, p50_p99};
use crate::session;

/// Between two readings of the metrics endpoint.
const POLL: Duration = Duration::from_millis(200);
/// Longest wait for one reading.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the gauge must stay at 0 to count: a node refreshes it about once a
/// second, so a single 0 may predate the last deliveries.
const CONFIRM: Duration = Duration::from_secs(2);

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Mailbox to search (of the first account given).
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Searches per word after the first (cold) one.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeat: u32,
    /// How many messages `imap-load seed --search-words` wrote into the mailbox:
    /// the expected hits follow from it, and SELECT must report it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub messages: u64,
    /// The server's Prometheus endpoint (host:port of its http listener, loopback
    /// only): wait for --metric to reach 0 before the searches.
    #[arg(long)]
    pub metrics: Option<String>,
    /// The gauge to wait for.
    #[arg(long, default_value = "postcell_store_search_pending")]
    pub metric: String,
    /// Longest wait for the gauge, in seconds (not part of --max-seconds).
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub catch_up_seconds: u64,
    /// Send the Japanese word as a synchronizing literal even when the server
    /// offers LITERAL+ or LITERAL-.
    #[arg(long)]
    pub synchronizing_literal: bool,
}

#[derive(Serialize)]
struct Config {
    target: String,
    user: String,
    mailbox: String,
    messages: u64,
    repeat: u32,
    metrics: Option<String>,
    metric: String,
    catch_up_seconds: u64,
    synchronizing_literal: bool,
    max_seconds: u64,
    io_timeout_seconds: u64,
}

/// The wait for the server's index.
#[derive(Serialize, Default)]
struct CatchUp {
    /// Whether the endpoint showed the gauge (null without --metrics, or when
    /// the endpoint could not be read).
    present: Option<bool>,
    pending_at_start: Option<f64>,
    pending_at_end: Option<f64>,
    /// From the first reading to the one that showed 0; null when the gauge is
    /// absent, or did not reach 0 within --catch-up-seconds.
    seconds: Option<f64>,
    /// Seconds spent waiting in all (also when the bound was reached).
    waited_seconds: f64,
    caught_up: Option<bool>,
    readings: u32,
}

#[derive(Serialize)]
struct WordResult {
    name: &'static str,
    word: &'static str,
    /// The command as sent (a literal shown as `{N+}` or `{N}` and its text).
    command: String,
    /// How the Japanese word was sent: "non-synchronizing" (LITERAL+ or
    /// LITERAL-) or "synchronizing"; null for the English word (an atom).
    literal: Option<&'static str>,
    /// Messages the generator put the word in.
    expected_hits: u64,
    /// What the first answered search found.
    hits: Option<u64>,
    /// Every answered search found exactly `expected_hits` (and one at least was answered).
    hits_match: bool,
    /// Searches answered OK whose count was not `expected_hits`.
    wrong_counts: u32,
    runs_ok: u32,
    runs_failed: u32,
    /// The first search (sent -> tagged OK); null if it failed.
    cold_ms: Option<f64>,
    /// The --repeat searches after it (answered ones): p50 is the median.
    repeat_ms: Summary,
    /// Every answered search in order, the cold one first.
    runs_ms: Vec<f64>,
}

#[derive(Serialize)]
struct RunResult {
    mailbox: String,
    messages: u64,
    /// `index_catch_up.seconds`, at the top for the report.
    index_catch_up_seconds: Option<f64>,
    index_catch_up: CatchUp,
    words: Vec<WordResult>,
    /// Every word's `hits_match`.
    hits_match: bool,
    hit_max_seconds: bool,
}

/// How the literal of one search went.
#[derive(Clone, Copy)]
enum Literal {
    None,
    NonSynchronizing,
    Synchronizing,
}

impl Literal {
    fn name(self) -> Option<&'static str> {
        match self {
            Literal::None => None,
            Literal::NonSynchronizing => Some("non-synchronizing"),
            Literal::Synchronizing => Some("synchronizing"),
        }
    }
}

struct Search {
    us: u64,
    hits: u64,
    literal: Literal,
}

pub async fn run(args: Args) -> Result<bool> {
    let mut run = args.common.resolve().await?;
    let user = run.users[0].clone();
    let mut errors = Errors::default();

    let index_catch_up = match &args.metrics {
        Some(endpoint) => {
            catch_up(endpoint, &args.metric, args.catch_up_seconds, &mut errors).await?
        }
        None => CatchUp::default(),
    };
    // --max-seconds bounds the searches, not the wait before them.
    run.deadline = Instant::now() + Duration::from_secs(args.common.max_seconds);

    let meter = Meter::start(run.server.as_ref());
    let mut words = Vec::new();
    let mut hit_max_seconds = false;
    for word in SearchWord::ALL {
        let expected = word.expected_hits(args.messages);
        let mut out = WordResult {
            name: word.name(),
            word: word.word(),
            command: command_text(word, Literal::None),
            literal: None,
            expected_hits: expected,
            hits: None,
            hits_match: false,
            wrong_counts: 0,
            runs_ok: 0,
            runs_failed: 0,
            cold_ms: None,
            repeat_ms: Summary::default(),
            runs_ms: Vec::new(),
        };
        let mut repeat_us = Vec::new();
        for n in 0..=args.repeat {
            if Instant::now() >= run.deadline {
                hit_max_seconds = true;
                break;
            }
            let searched = search(
                &run,
                &user,
                &args.mailbox,
                args.messages,
                word,
                args.synchronizing_literal,
            )
            .await;
            match searched {
                Ok(s) => {
                    out.runs_ok += 1;
                    out.literal = s.literal.name();
                    out.command = command_text(word, s.literal);
                    out.runs_ms.push(s.us as f64 / 1000.0);
                    if n == 0 {
                        out.cold_ms = Some(s.us as f64 / 1000.0);
                    } else {
                        repeat_us.push(s.us);
                    }
                    out.hits.get_or_insert(s.hits);
                    if s.hits != expected {
                        out.wrong_counts += 1;
                        errors.note(format!(
                            "{}: {} found {} messages, {expected} expected",
                            word.name(),
                            out.command,
                            s.hits
                        ));
                    }
                }
                Err(e) => {
                    out.runs_failed += 1;
                    errors.note(format!("{} search {}: {e:#}", word.name(), n + 1));
                }
            }
        }
        out.repeat_ms = summarize(&mut repeat_us);
        out.hits_match = out.runs_ok > 0 && out.wrong_counts == 0;
        words.push(out);
    }
    let runs_planned = (u64::from(args.repeat) + 1) * SearchWord::ALL.len() as u64;
    let complete = words
        .iter()
        .map(|w| u64::from(w.runs_ok + w.runs_failed))
        .sum::<u64>()
        == runs_planned;
    let hits_match = words.iter().all(|w| w.hits_match);
    let result = RunResult {
        mailbox: args.mailbox.clone(),
        messages: args.messages,
        index_catch_up_seconds: index_catch_up.seconds,
        index_catch_up,
        words,
        hits_match,
        hit_max_seconds,
    };
    let config = Config {
        target: run.target_list(),
        user,
        mailbox: args.mailbox,
        messages: args.messages,
        repeat: args.repeat,
        metrics: args.metrics,
        metric: args.metric,
        catch_up_seconds: args.catch_up_seconds,
        synchronizing_literal: args.synchronizing_literal,
        max_seconds: args.common.max_seconds,
        io_timeout_seconds: args.common.io_timeout,
    };
    let report = meter.finish(
        "search-body",
        args.common.label.clone(),
        config,
        result,
        errors,
    );
    let clean = report.print(args.common.json, |r| {
        let c = &r.index_catch_up;
        let mut lines = vec![match (c.present, c.seconds) {
            (Some(true), Some(s)) => format!(
                "index caught up in {s:.2} s ({} pending at the start)",
                c.pending_at_start.unwrap_or(0.0)
            ),
            (Some(true), None) => format!(
                "index NOT caught up after {:.1} s ({} still pending)",
                c.waited_seconds,
                c.pending_at_end.unwrap_or(f64::NAN)
            ),
            (Some(false), _) => "no index gauge on the metrics endpoint: no wait".to_string(),
            (None, _) => "no wait for the index".to_string(),
        }];
        for w in &r.words {
            lines.push(format!(
                "{}: {} -> {} hits ({} expected{}); cold {}; then {}",
                w.name,
                w.command,
                w.hits.map_or("?".to_string(), |h| h.to_string()),
                w.expected_hits,
                if w.hits_match { "" } else { ", MISMATCH" },
                w.cold_ms
                    .map_or("failed".to_string(), |ms| format!("{ms:.3} ms")),
                p50_p99(&w.repeat_ms)
            ));
        }
        lines
    })?;
    Ok(clean && complete && hits_match)
}

/// The command of `word` as it goes on the wire (the literal shown with its
/// announcement).
fn command_text(word: SearchWord, literal: Literal) -> String {
    let text = word.word();
    match (word, literal) {
        (SearchWord::English, _) => format!("UID SEARCH BODY {text}"),
        (SearchWord::Japanese, Literal::Synchronizing) => {
            format!("UID SEARCH CHARSET UTF-8 BODY {{{}}} {text}", text.len())
        }
        (SearchWord::Japanese, _) => {
            format!("UID SEARCH CHARSET UTF-8 BODY {{{}+}} {text}", text.len())
        }
    }
}

/// One search on a new connection: login, select (EXISTS must be `messages`),
/// then the timed search.
async fn search(
    run: &Run,
    user: &str,
    mailbox: &str,
    messages: u64,
    word: SearchWord,
    force_synchronizing: bool,
) -> Result<Search> {
    let mut client = session::connect(run, 64 * 1024).await?;
    session::login(&mut client, user, &run.password).await?;
    let literal = match word {
        SearchWord::English => Literal::None,
        SearchWord::Japanese => {
            let caps = session::capabilities(&mut client).await?;
            if !force_synchronizing
                && (has_capability(&caps, "LITERAL+") || has_capability(&caps, "LITERAL-"))
            {
                Literal::NonSynchronizing
            } else {
                Literal::Synchronizing
            }
        }
    };
    let exists = session::select(&mut client, mailbox).await?;
    if u64::from(exists) != messages {
        bail!("{mailbox} holds {exists} messages, {messages} expected");
    }
    let mut hits: Option<u64> = None;
    let mut on_untagged = |r: &[u8]| {
        if let Some(n) = search_count(r) {
            *hits.get_or_insert(0) += n as u64;
        }
    };
    let started = Instant::now();
    let done = match literal {
        Literal::None => {
            client
                .command(&command_text(word, literal), &mut on_untagged)
                .await?
        }
        Literal::NonSynchronizing | Literal::Synchronizing => {
            client
                .command_with_literal(
                    "UID SEARCH CHARSET UTF-8 BODY ",
                    word.word().as_bytes(),
                    "",
                    matches!(literal, Literal::NonSynchronizing),
                    &mut on_untagged,
                )
                .await?
        }
    };
    let us = micros(started.elapsed());
    if !done.is_ok() {
        bail!("{}: {done}", command_text(word, literal));
    }
    let Some(hits) = hits else {
        bail!("{}: no SEARCH response", command_text(word, literal));
    };
    let bye = client.logout().await?;
    if !bye.is_ok() {
        bail!("LOGOUT: {bye}");
    }
    Ok(Search { us, hits, literal })
}

/// Waits, at most `bound_seconds`, for the gauge `metric` at `endpoint` to reach 0.
async fn catch_up(
    endpoint: &str,
    metric: &str,
    bound_seconds: u64,
    errors: &mut Errors,
) -> Result<CatchUp> {
    let addr = resolve_loopback(endpoint).await?;
    let mut out = CatchUp::default();
    let started = Instant::now();
    let bound = Duration::from_secs(bound_seconds);
    let most = (bound + CONFIRM).as_millis() as u64 / POLL.as_millis() as u64 + 2;
    // When the current run of zero readings began.
    let mut zero_since: Option<Duration> = None;
    for _ in 0..most {
        let body = match metrics::get(addr, "/metrics", SCRAPE_TIMEOUT).await {
            Ok(body) => body,
            Err(e) => {
                errors.note(format!("reading the metrics: {e:#}"));
                break;
            }
        };
        out.readings += 1;
        let pending = metrics::value(&body, metric);
        if out.readings == 1 {
            out.present = Some(pending.is_some());
            out.pending_at_start = pending;
        }
        let Some(pending) = pending else {
            // Absent from the start: no wait. Gone since: nothing is pending.
            if out.readings > 1 {
                out.seconds = Some(started.elapsed().as_secs_f64());
                out.caught_up = Some(true);
            }
            break;
        };
        out.pending_at_end = Some(pending);
        if pending <= 0.0 {
            let since = *zero_since.get_or_insert(started.elapsed());
            if started.elapsed() >= since + CONFIRM || started.elapsed() >= bound + CONFIRM {
                out.seconds = Some(since.as_secs_f64());
                out.caught_up = Some(true);
                break;
            }
        } else {
            zero_since = None;
        }
        if zero_since.is_none() && started.elapsed() >= bound {
            out.caught_up = Some(false);
            errors.note(format!(
                "{metric} still {pending} after {bound_seconds} s (--catch-up-seconds): the searches ran on a store not yet indexed"
            ));
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    if out.present == Some(true) && out.caught_up.is_none() {
        out.caught_up = Some(false);
    }
    out.waited_seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A metrics endpoint that answers each GET with the next of `bodies`
    /// (the last one again once they are used up).
    async fn endpoint(bodies: Vec<&'static str>) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let body = bodies[n.min(bodies.len() - 1)];
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn waits_for_the_gauge() {
        let addr = endpoint(vec![
            "postcell_store_search_pending 40\n",
            "postcell_store_search_pending 7\n",
            "# TYPE postcell_store_search_pending gauge\npostcell_store_search_pending 0\n",
        ])
        .await;
        let mut errors = Errors::default();
        let c = catch_up(
            &addr.to_string(),
            "postcell_store_search_pending",
            60,
            &mut errors,
        )
        .await
        .unwrap();
        assert_eq!(errors.count, 0);
        assert_eq!(c.present, Some(true));
        assert!(c.readings >= 3 + 10, "{}", c.readings);
        assert_eq!(c.pending_at_start, Some(40.0));
        assert_eq!(c.pending_at_end, Some(0.0));
        assert_eq!(c.caught_up, Some(true));
        // The first 0 came with the third reading, two polls in; then 2 s of zeros.
        let seconds = c.seconds.unwrap();
        assert!((0.35..1.5).contains(&seconds), "{seconds}");
        assert!(c.waited_seconds >= seconds + 2.0, "{}", c.waited_seconds);
    }

    #[tokio::test]
    async fn a_zero_must_last() {
        let addr = endpoint(vec![
            "postcell_store_search_pending 0\n",
            "postcell_store_search_pending 9\n",
            "postcell_store_search_pending 0\n",
        ])
        .await;
        let mut errors = Errors::default();
        let c = catch_up(
            &addr.to_string(),
            "postcell_store_search_pending",
            60,
            &mut errors,
        )
        .await
        .unwrap();
        assert_eq!(errors.count, 0);
        assert_eq!(c.pending_at_start, Some(0.0));
        assert_eq!(c.caught_up, Some(true));
        // Counted from the second 0, not the first.
        let seconds = c.seconds.unwrap();
        assert!(seconds >= 0.35, "{seconds}");
    }

    #[tokio::test]
    async fn no_gauge_no_wait() {
        let addr = endpoint(vec!["postcell_store_messages_stored_total 5\n"]).await;
        let mut errors = Errors::default();
        let c = catch_up(
            &addr.to_string(),
            "postcell_store_search_pending",
            60,
            &mut errors,
        )
        .await
        .unwrap();
        assert_eq!(errors.count, 0);
        assert_eq!((c.present, c.seconds, c.readings), (Some(false), None, 1));
        assert_eq!(c.caught_up, None);
    }

    #[tokio::test]
    async fn the_wait_is_bounded() {
        let addr = endpoint(vec!["postcell_store_search_pending 3\n"]).await;
        let mut errors = Errors::default();
        let c = catch_up(
            &addr.to_string(),
            "postcell_store_search_pending",
            1,
            &mut errors,
        )
        .await
        .unwrap();
        assert_eq!(errors.count, 1);
        assert_eq!(c.caught_up, Some(false));
        assert_eq!(c.seconds, None);
        assert_eq!(c.pending_at_end, Some(3.0));
        assert!(c.waited_seconds >= 1.0 && c.waited_seconds < 5.0);
    }

    #[test]
    fn commands() {
        assert_eq!(
            command_text(SearchWord::English, Literal::None),
            "UID SEARCH BODY xylophone"
        );
        assert_eq!(
            command_text(SearchWord::Japanese, Literal::NonSynchronizing),
            "UID SEARCH CHARSET UTF-8 BODY {9+} 会議室"
        );
        assert_eq!(
            command_text(SearchWord::Japanese, Literal::Synchronizing),
            "UID SEARCH CHARSET UTF-8 BODY {9} 会議室"
        );
    }
}
