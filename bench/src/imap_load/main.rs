//! imap-load: IMAP workloads against a server on this machine (loopback
//! only), and the seeding of the mailboxes they run on.
//!
//! ```text
//! imap-load seed --maildir-root DIR --mailbox big@bench.test=100000 [--smtp 127.0.0.1:2525]
//! imap-load select-fetch-flags --target 127.0.0.1:1143 --user big@bench.test --password P
//! imap-load idle-memory --target ... --users-file users.txt --connections 1000 --server-pid PID
//! imap-load imap-mix --target ... --users-file users.txt --clients 50 --sessions 2000
//! imap-load pop3-mix --target 127.0.0.1:1110 --users-file users.txt --clients 50 --sessions 2000
//! imap-load search-body --target ... --user big@bench.test --messages 100000 --repeat 10 [--metrics 127.0.0.1:8080]
//! imap-load mbsync-download --target ... --user large@bench.test --expect-messages 3200 --work DIR
//! ```
//!
//! Exit status: 0 when the run was clean, 1 when the report shows errors or
//! unfinished work, 2 when it could not run. A feature the server does not
//! serve (IDLE, or a step of the mix) is reported as unsupported, not as an
//! error.

mod idle;
mod mbsync_download;
mod mix;
mod pop3_mix;
mod report;
mod search_body;
mod seed;
mod select_fetch;
mod session;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "imap-load",
    version,
    about = "IMAP and POP3 load generator: select-fetch-flags, idle-memory, imap-mix, pop3-mix, search-body, mbsync-download (loopback targets only)"
)]
struct Cli {
    /// Worker threads of the generator; 1 (the default) runs everything on
    /// one thread, leaving the other cores to the server.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64), global = true)]
    threads: u16,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// Write the mailboxes as Maildir files, and deliver the same files over SMTP.
    Seed(seed::Args),
    /// LOGIN, SELECT a large mailbox, UID FETCH 1:* (FLAGS); N times.
    SelectFetchFlags(select_fetch::Args),
    /// K connections in IDLE; the server's resident memory before and with them.
    IdleMemory(idle::Args),
    /// C clients running whole sessions: login, select, envelopes, bodies, store, search, logout.
    ImapMix(mix::Args),
    /// C clients running whole POP3 sessions: USER/PASS, STAT, UIDL, 3 x RETR, QUIT.
    Pop3Mix(pop3_mix::Args),
    /// UID SEARCH BODY of the seeded English and Japanese words, cold and repeated; hits checked.
    SearchBody(search_body::Args),
    /// mbsync downloading a whole mailbox into an empty Maildir, timed; messages checked.
    MbsyncDownload(mbsync_download::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(cli.threads))
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("imap-load: error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.workload)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("imap-load: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(workload: Workload) -> Result<bool> {
    match workload {
        Workload::Seed(args) => seed::run(args).await,
        Workload::SelectFetchFlags(args) => select_fetch::run(args).await,
        Workload::IdleMemory(args) => idle::run(args).await,
        Workload::ImapMix(args) => mix::run(args).await,
        Workload::Pop3Mix(args) => pop3_mix::run(args).await,
        Workload::SearchBody(args) => search_body::run(args).await,
        Workload::MbsyncDownload(args) => mbsync_download::run(args).await,
    }
}
