//! The steps every workload's sessions begin with.

use anyhow::{Result, anyhow, bail};
use postcell_bench::imap::{Client, Completion, quote, untagged_number};

use crate::report::Run;

pub async fn connect(run: &Run, read_buffer: usize) -> Result<Client> {
    connect_to(run, 0, read_buffer).await
}

/// Connects to target `which` mod the number of targets.
pub async fn connect_to(run: &Run, which: u64, read_buffer: usize) -> Result<Client> {
    let addr = run.addrs[(which % run.addrs.len() as u64) as usize];
    Client::connect(addr, run.io_timeout, run.deadline, read_buffer).await
}

/// LOGIN; anything but OK is an error. The completion's text may carry a
/// `[CAPABILITY ...]` code.
pub async fn login(client: &mut Client, user: &str, password: &str) -> Result<Completion> {
    let done = client
        .simple(&format!("LOGIN {} {}", quote(user), quote(password)))
        .await?;
    if !done.is_ok() {
        bail!("LOGIN {user}: {done}");
    }
    Ok(done)
}

/// SELECT; returns the number of messages (`* N EXISTS`).
pub async fn select(client: &mut Client, mailbox: &str) -> Result<u32> {
    let mut exists = None;
    let done = client
        .command(&format!("SELECT {}", quote(mailbox)), |r| {
            if let Some(n) = untagged_number(r, b"EXISTS") {
                exists = Some(n);
            }
        })
        .await?;
    if !done.is_ok() {
        bail!("SELECT {mailbox}: {done}");
    }
    exists.ok_or_else(|| anyhow!("SELECT {mailbox}: no EXISTS response"))
}

/// Waits for every client task, at most until `deadline` plus 10 s (the clients stop
/// starting work at the deadline); past that the tasks are aborted and the run fails.
pub async fn join_within<T: 'static>(
    tasks: &mut tokio::task::JoinSet<T>,
    deadline: std::time::Instant,
) -> Result<Vec<Result<T, tokio::task::JoinError>>> {
    let bound = deadline.saturating_duration_since(std::time::Instant::now())
        + std::time::Duration::from_secs(10);
    let joined = tokio::time::timeout(bound, async {
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.push(r);
        }
        all
    })
    .await;
    let Ok(results) = joined else {
        tasks.abort_all();
        bail!("the run did not end within --max-seconds + 10 s");
    };
    Ok(results)
}

/// CAPABILITY; returns the capabilities the server lists (every `* CAPABILITY`
/// response, joined).
pub async fn capabilities(client: &mut Client) -> Result<String> {
    let mut listed = String::new();
    let done = client
        .command("CAPABILITY", |r| {
            let line = String::from_utf8_lossy(r);
            let line = line.trim_end();
            if let Some(rest) = line.strip_prefix("* ")
                && rest
                    .get(..10)
                    .is_some_and(|w| w.eq_ignore_ascii_case("CAPABILITY"))
            {
                listed.push_str(rest.get(10..).unwrap_or(""));
                listed.push(' ');
            }
        })
        .await?;
    if !done.is_ok() {
        bail!("CAPABILITY: {done}");
    }
    Ok(listed.trim().to_string())
}
