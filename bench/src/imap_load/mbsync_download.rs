//! `mbsync-download`: how long mbsync (isync) takes to download a whole
//! mailbox into an empty local Maildir, over plain IMAP with LOGIN.
//!
//! Before the runs, one untimed session logs in and SELECTs the mailbox (its
//! EXISTS must be `--expect-messages`; a server that indexes a mailbox on its
//! first SELECT, as Dovecot does with seeded Maildir files, does it there, as
//! it would have at delivery). Then, `--runs` times: the local Maildir is
//! emptied, `mbsync -c WORK/mbsyncrc -a` runs (a channel that pulls INBOX,
//! creating it locally) and is timed from its start to its exit; the local
//! INBOX must then hold exactly `--expect-messages` files. After the runs, one
//! untimed session sums the messages' RFC822.SIZE: the bytes the server sent,
//! from which MB/s is computed (1 MB = 10^6 bytes).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use postcell_bench::process::children_cpu_seconds;
use postcell_bench::stats::{Summary, summarize};
use serde::Serialize;

use crate::report::{Common, Errors, Meter, Run};
use crate::session;

/// Lines of mbsync's output quoted when it fails.
const LOG_TAIL: usize = 5;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// The mbsync program.
    #[arg(long, default_value = "mbsync")]
    pub mbsync: PathBuf,
    /// Scratch folder: the mbsyncrc, the local Maildir and mbsync's logs go there.
    #[arg(long)]
    pub work: PathBuf,
    /// Downloads, each into an emptied local Maildir.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// The number of messages the mailbox holds (and each download must bring).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub expect_messages: u64,
}

#[derive(Serialize)]
struct Config {
    target: String,
    user: String,
    mailbox: &'static str,
    mbsync: String,
    mbsync_version: Option<String>,
    runs: u32,
    expect_messages: u64,
    max_seconds: u64,
}

#[derive(Serialize)]
struct Download {
    seconds: f64,
    exit_status: Option<i32>,
    /// Message files in the local INBOX (cur/ and new/) after the run.
    messages: u64,
    /// Their bytes (mbsync writes LF line ends, so fewer than the server's).
    local_bytes: u64,
    /// CPU seconds of mbsync itself.
    mbsync_cpu_seconds: f64,
    /// mailbox_bytes / seconds / 10^6.
    megabytes_per_second: Option<f64>,
}

#[derive(Serialize)]
struct RunResult {
    /// EXISTS of the mailbox before the runs.
    server_messages: Option<u64>,
    /// Sum of RFC822.SIZE over the mailbox: what a full download transfers.
    mailbox_bytes: Option<u64>,
    /// Every run found the mailbox and the local Maildir holding --expect-messages.
    messages_match: bool,
    runs_ok: u32,
    runs_failed: u32,
    hit_max_seconds: bool,
    /// The first run.
    first_seconds: Option<f64>,
    first_megabytes_per_second: Option<f64>,
    /// Every run that succeeded (p50 is the median).
    seconds: Summary,
    median_megabytes_per_second: Option<f64>,
    downloads: Vec<Download>,
}

pub async fn run(args: Args) -> Result<bool> {
    let run = args.common.resolve().await?;
    let user = run.users[0].clone();
    let mut errors = Errors::default();
    std::fs::create_dir_all(&args.work)
        .with_context(|| format!("creating {}", args.work.display()))?;
    let version = mbsync_version(&args.mbsync).await;
    let config_path = args.work.join("mbsyncrc");
    let local = args.work.join("local");
    write_config(&config_path, &run, &user, &local)?;

    let server_messages = match exists(&run, &user).await {
        Ok(n) => Some(n),
        Err(e) => {
            errors.note(format!("before the runs: {e:#}"));
            None
        }
    };
    let mut messages_match = server_messages == Some(args.expect_messages);
    if let Some(n) = server_messages
        && n != args.expect_messages
    {
        errors.note(format!(
            "INBOX holds {n} messages, {} expected",
            args.expect_messages
        ));
    }

    let meter = Meter::start(run.server.as_ref());
    let mut downloads = Vec::new();
    let mut hit_max_seconds = false;
    let mut runs_failed = 0;
    for n in 1..=args.runs {
        if Instant::now() >= run.deadline {
            hit_max_seconds = true;
            break;
        }
        match download(&args, &run, &config_path, &local, n).await {
            Ok(d) => {
                if d.messages != args.expect_messages {
                    messages_match = false;
                    errors.note(format!(
                        "run {n}: the local INBOX holds {} messages, {} expected",
                        d.messages, args.expect_messages
                    ));
                }
                downloads.push(d);
            }
            Err(e) => {
                runs_failed += 1;
                messages_match = false;
                errors.note(format!("run {n}: {e:#}"));
            }
        }
    }
    let elapsed_runs = meter.elapsed();
    let mailbox_bytes = match mailbox_bytes(&run, &user).await {
        Ok(b) => Some(b),
        Err(e) => {
            errors.note(format!("after the runs: {e:#}"));
            None
        }
    };
    let rate = |seconds: f64| mailbox_bytes.map(|b| b as f64 / seconds.max(1e-9) / 1e6);
    for d in &mut downloads {
        d.megabytes_per_second = rate(d.seconds);
    }
    // summarize() turns microseconds into milliseconds: given milliseconds,
    // it gives seconds.
    let mut ms: Vec<u64> = downloads
        .iter()
        .map(|d| (d.seconds * 1e3).round() as u64)
        .collect();
    let seconds = summarize(&mut ms);
    let first = downloads.first().map(|d| d.seconds);
    let result = RunResult {
        server_messages,
        mailbox_bytes,
        messages_match,
        runs_ok: downloads.len() as u32,
        runs_failed,
        hit_max_seconds,
        first_seconds: first,
        first_megabytes_per_second: first.and_then(rate),
        median_megabytes_per_second: if seconds.count > 0 {
            rate(seconds.p50)
        } else {
            None
        },
        seconds,
        downloads,
    };
    let config = Config {
        target: run.target_list(),
        user,
        mailbox: "INBOX",
        mbsync: args.mbsync.display().to_string(),
        mbsync_version: version,
        runs: args.runs,
        expect_messages: args.expect_messages,
        max_seconds: args.common.max_seconds,
    };
    let report = meter.finish(
        "mbsync-download",
        args.common.label.clone(),
        config,
        result,
        errors,
    );
    let complete = report.result.runs_ok == args.runs;
    let clean = report.print(args.common.json, |r| {
        let mut lines = vec![format!(
            "INBOX: {} messages, {} bytes; {} downloads ok, {} failed (the runs took {:.1} s)",
            r.server_messages.map_or("?".into(), |n| n.to_string()),
            r.mailbox_bytes.map_or("?".into(), |n| n.to_string()),
            r.runs_ok,
            r.runs_failed,
            elapsed_runs.as_secs_f64()
        )];
        for (n, d) in r.downloads.iter().enumerate() {
            lines.push(format!(
                "run {}: {:.2} s, {} messages, {} local bytes, {} MB/s, mbsync CPU {:.2} s",
                n + 1,
                d.seconds,
                d.messages,
                d.local_bytes,
                d.megabytes_per_second
                    .map_or("?".to_string(), |r| format!("{r:.1}")),
                d.mbsync_cpu_seconds
            ));
        }
        lines
    })?;
    Ok(clean && complete && report.result.messages_match)
}

/// The mbsync configuration: one account on the target with LOGIN and no TLS,
/// one channel that pulls INBOX into `local`, creating it there.
fn config_text(run: &Run, user: &str, password: &str, local: &Path) -> String {
    let local = local.display().to_string();
    format!(
        "# imap-load mbsync-download: pull INBOX into an empty Maildir.\n\
         IMAPAccount bench\n\
         Host {host}\n\
         Port {port}\n\
         User {user}\n\
         Pass {password}\n\
         SSLType None\n\
         AuthMechs LOGIN\n\
         \n\
         IMAPStore server\n\
         Account bench\n\
         \n\
         MaildirStore local\n\
         Path {path}\n\
         Inbox {inbox}\n\
         \n\
         Channel download\n\
         Far :server:\n\
         Near :local:\n\
         Patterns INBOX\n\
         Create Near\n\
         Sync Pull\n\
         Expunge None\n\
         SyncState *\n",
        host = run.addr.ip(),
        port = run.addr.port(),
        user = quote(user),
        password = quote(password),
        path = quote(&format!("{local}/")),
        inbox = quote(&format!("{local}/INBOX")),
    )
}

/// A string in mbsync's configuration: double quotes, with `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn write_config(path: &Path, run: &Run, user: &str, local: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if run
        .password
        .chars()
        .chain(user.chars())
        .any(|c| c.is_control())
    {
        bail!("the account or password holds a control character, which mbsyncrc cannot");
    }
    // It holds the password: readable by us only.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(config_text(run, user, &run.password, local).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

async fn mbsync_version(mbsync: &Path) -> Option<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(mbsync)
            .arg("--version")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

/// One download into an emptied `local`.
async fn download(args: &Args, run: &Run, config: &Path, local: &Path, n: u32) -> Result<Download> {
    if local.exists() {
        std::fs::remove_dir_all(local).with_context(|| format!("emptying {}", local.display()))?;
    }
    std::fs::create_dir_all(local).with_context(|| format!("creating {}", local.display()))?;
    let log_path = args.work.join(format!("mbsync-{n}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .with_context(|| format!("opening {}", log_path.display()))?;
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&args.mbsync)
        .arg("-c")
        .arg(config)
        .arg("-a")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", args.mbsync.display()))?;
    let left = run.deadline.saturating_duration_since(Instant::now());
    let status = match tokio::time::timeout(left, child.wait()).await {
        Ok(status) => status.context("waiting for mbsync")?,
        Err(_) => {
            let _ = child.kill().await;
            bail!("mbsync did not finish within --max-seconds; killed");
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let mbsync_cpu_seconds = children_cpu_seconds() - cpu_before;
    if !status.success() {
        bail!(
            "mbsync exited with {status}; the end of its output ({}):\n{}",
            log_path.display(),
            tail(&log_path)
        );
    }
    let (messages, local_bytes) = count_maildir(&local.join("INBOX"))?;
    Ok(Download {
        seconds,
        exit_status: status.code(),
        messages,
        local_bytes,
        mbsync_cpu_seconds,
        megabytes_per_second: None,
    })
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}

/// Message files in a Maildir folder's cur/ and new/, and their bytes.
fn count_maildir(folder: &Path) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for sub in ["cur", "new"] {
        let dir = folder.join(sub);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let meta = entry
                .metadata()
                .with_context(|| format!("reading {}", entry.path().display()))?;
            if meta.is_file() {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}

/// EXISTS of INBOX.
async fn exists(run: &Run, user: &str) -> Result<u64> {
    let mut client = session::connect(run, 64 * 1024).await?;
    session::login(&mut client, user, &run.password).await?;
    let exists = session::select(&mut client, "INBOX").await?;
    let _ = client.logout().await;
    Ok(u64::from(exists))
}

/// The sum of RFC822.SIZE over INBOX.
async fn mailbox_bytes(run: &Run, user: &str) -> Result<u64> {
    let mut client = session::connect(run, 256 * 1024).await?;
    session::login(&mut client, user, &run.password).await?;
    let exists = session::select(&mut client, "INBOX").await?;
    let (mut bytes, mut seen) = (0u64, 0u32);
    let done = client
        .command("FETCH 1:* (RFC822.SIZE)", |r| {
            if let Some(size) = rfc822_size(r) {
                bytes += size;
                seen += 1;
            }
        })
        .await?;
    if !done.is_ok() {
        bail!("FETCH 1:* (RFC822.SIZE): {done}");
    }
    if seen != exists {
        bail!("FETCH 1:* (RFC822.SIZE) gave {seen} sizes for {exists} messages");
    }
    let _ = client.logout().await;
    Ok(bytes)
}

/// The RFC822.SIZE of a FETCH response.
fn rfc822_size(response: &[u8]) -> Option<u64> {
    let key = b"RFC822.SIZE ";
    let at = response
        .windows(key.len())
        .position(|w| w.eq_ignore_ascii_case(key))?;
    let digits: Vec<u8> = response[at + key.len()..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_fetch_responses() {
        assert_eq!(
            rfc822_size(b"* 1 FETCH (RFC822.SIZE 65536)\r\n"),
            Some(65536)
        );
        assert_eq!(
            rfc822_size(b"* 12 FETCH (UID 4 rfc822.size 7 FLAGS ())\r\n"),
            Some(7)
        );
        assert_eq!(rfc822_size(b"* 1 FETCH (FLAGS ())\r\n"), None);
        assert_eq!(rfc822_size(b"* 1 FETCH (RFC822.SIZE x)\r\n"), None);
    }

    #[test]
    fn counts_maildir_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(count_maildir(dir.path()).unwrap(), (0, 0));
        for (sub, name, body) in [("cur", "a:2,S", "abc"), ("new", "b", "de")] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join(name), body).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/c"), "ignored").unwrap();
        std::fs::write(dir.path().join(".mbsyncstate"), "ignored").unwrap();
        assert_eq!(count_maildir(dir.path()).unwrap(), (2, 5));
    }

    #[test]
    fn mbsync_config() {
        let run = Run {
            addr: "127.0.0.1:2143".parse().unwrap(),
            addrs: vec!["127.0.0.1:2143".parse().unwrap()],
            users: vec!["large@bench.test".into()],
            password: "secret".into(),
            io_timeout: Duration::from_secs(1),
            deadline: Instant::now(),
            server: None,
        };
        let text = config_text(&run, "large@bench.test", "secret", Path::new("/w/local"));
        for line in [
            "Host 127.0.0.1\n",
            "Port 2143\n",
            "User \"large@bench.test\"\n",
            "Pass \"secret\"\n",
            "SSLType None\n",
            "AuthMechs LOGIN\n",
            "Path \"/w/local/\"\n",
            "Inbox \"/w/local/INBOX\"\n",
            "Far :server:\n",
            "Near :local:\n",
            "Patterns INBOX\n",
            "Sync Pull\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
    }

    #[test]
    fn mbsync_strings() {
        assert_eq!(quote(r#"se"c\ret"#), r#""se\"c\\ret""#);
        assert_eq!(quote("large@bench.test"), "\"large@bench.test\"");
    }
}
