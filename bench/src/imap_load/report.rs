//! What every imap-load workload shares: the target options, the bounds, the
//! errors it keeps, and the report around its result.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use postcell_bench::loopback::resolve_loopback;
use postcell_bench::machine::Machine;
use postcell_bench::process::{MemorySample, ServerProcesses, load_average, own_cpu_seconds};
use postcell_bench::stats::unix_now;
use serde::Serialize;

/// Errors kept verbatim for the report; the rest are only counted.
pub const ERROR_SAMPLES: usize = 5;

#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// IMAP server (plain TCP), host:port; must resolve to a loopback address.
    /// Repeatable (imap-mix): session n goes to target n mod (number of targets),
    /// so the nodes of a cell share the sessions evenly; the other workloads and
    /// the mix's warm-up use the first.
    #[arg(long = "target", default_value = "127.0.0.1:143")]
    pub targets: Vec<String>,
    /// An account to log in as (repeatable); sessions take them in turn.
    #[arg(long = "user")]
    pub users: Vec<String>,
    /// File of accounts, one per line ('#' starts a comment).
    #[arg(long)]
    pub users_file: Option<PathBuf>,
    /// The password of every account.
    #[arg(long, env = "IMAP_LOAD_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// A server process to measure (repeatable): the CPU time and resident
    /// memory of it and all its descendants are reported.
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Hard bound on the run, in seconds: nothing new starts after it and
    /// every pending command is cut at it.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub max_seconds: u64,
    /// Longest wait for any one command's tagged response, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub io_timeout: u64,
    /// Free text copied into the report (e.g. the server's name).
    #[arg(long)]
    pub label: Option<String>,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
}

/// The resolved target and the run's bounds.
pub struct Run {
    /// The first target.
    pub addr: SocketAddr,
    pub addrs: Vec<SocketAddr>,
    pub users: Vec<String>,
    pub password: String,
    pub io_timeout: Duration,
    pub deadline: Instant,
    pub server: Option<ServerProcesses>,
}

impl Run {
    /// Every target, comma separated, for the report.
    pub fn target_list(&self) -> String {
        self.addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Common {
    pub async fn resolve(&self) -> Result<Run> {
        let mut addrs = Vec::new();
        for target in &self.targets {
            addrs.push(resolve_loopback(target).await?);
        }
        let addr = addrs[0];
        let users = self.load_users()?;
        let server = if self.server_pids.is_empty() {
            None
        } else {
            Some(ServerProcesses::new(self.server_pids.clone())?)
        };
        Ok(Run {
            addr,
            addrs,
            users,
            password: self.password.clone(),
            io_timeout: Duration::from_secs(self.io_timeout),
            deadline: Instant::now() + Duration::from_secs(self.max_seconds),
            server,
        })
    }

    fn load_users(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if let Some(path) = &self.users_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("").trim();
                if !line.is_empty() {
                    out.push(line.to_string());
                }
            }
        }
        out.extend(self.users.iter().map(|u| u.trim().to_string()));
        if out.is_empty() {
            bail!("no accounts: give --user ADDRESS or --users-file FILE");
        }
        if let Some(bad) = out
            .iter()
            .find(|u| u.chars().any(|c| c.is_control() || c == '"' || c == '\\'))
        {
            bail!("not a usable account name: {bad:?}");
        }
        Ok(out)
    }
}

/// The first few errors of a run and how many there were.
#[derive(Default)]
pub struct Errors {
    pub count: u64,
    samples: Vec<(Instant, String)>,
}

impl Errors {
    pub fn note(&mut self, error: String) {
        self.count += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push((Instant::now(), error));
        }
    }

    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        self.samples.extend(other.samples);
    }

    /// The first few, in the order they happened.
    pub fn samples(mut self) -> Vec<String> {
        self.samples.sort_by_key(|(at, _)| *at);
        self.samples.truncate(ERROR_SAMPLES);
        self.samples.into_iter().map(|(_, e)| e).collect()
    }
}

/// What the server used during the measured part of a workload.
#[derive(Serialize)]
pub struct ServerUsage {
    pub pids: Vec<u32>,
    /// User + system CPU seconds of the server's processes (and of the
    /// children they reaped) during the measured part.
    pub cpu_seconds: f64,
    pub memory_start: MemorySample,
    pub memory_end: MemorySample,
}

/// Readings taken when the measured part starts, to report what it cost.
pub struct Meter {
    started: Instant,
    started_unix: f64,
    date: String,
    load_start: Option<[f64; 3]>,
    own_cpu: f64,
    server: Option<(ServerProcesses, f64, MemorySample)>,
}

impl Meter {
    pub fn start(server: Option<&ServerProcesses>) -> Meter {
        Meter {
            started: Instant::now(),
            started_unix: unix_now(),
            date: chrono::Utc::now().to_rfc3339(),
            load_start: load_average(),
            own_cpu: own_cpu_seconds(),
            server: server.map(|s| (s.clone(), s.cpu_seconds(), s.memory())),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The report of a workload: `config` and `result` are its own.
    pub fn finish<C: Serialize, R: Serialize>(
        self,
        workload: &'static str,
        label: Option<String>,
        config: C,
        result: R,
        errors: Errors,
    ) -> Report<C, R> {
        let server = self.server.map(|(s, cpu, memory_start)| ServerUsage {
            pids: s.roots().to_vec(),
            cpu_seconds: s.cpu_seconds() - cpu,
            memory_start,
            memory_end: s.memory(),
        });
        Report {
            tool: "imap-load",
            version: env!("CARGO_PKG_VERSION"),
            workload,
            label,
            date: self.date,
            started_unix: self.started_unix,
            finished_unix: unix_now(),
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            machine: Machine::detect(),
            load_average_start: self.load_start,
            load_average_end: load_average(),
            generator_cpu_seconds: own_cpu_seconds() - self.own_cpu,
            server,
            config,
            result,
            errors: errors.count,
            error_samples: errors.samples(),
        }
    }
}

#[derive(Serialize)]
pub struct Report<C, R> {
    pub tool: &'static str,
    pub version: &'static str,
    pub workload: &'static str,
    pub label: Option<String>,
    pub date: String,
    pub started_unix: f64,
    pub finished_unix: f64,
    /// Wall time of the measured part.
    pub elapsed_seconds: f64,
    pub machine: Machine,
    /// /proc/loadavg (1, 5, 15 minutes) at the start and at the end.
    pub load_average_start: Option<[f64; 3]>,
    pub load_average_end: Option<[f64; 3]>,
    /// User + system CPU seconds of imap-load itself during the measured part.
    pub generator_cpu_seconds: f64,
    pub server: Option<ServerUsage>,
    pub config: C,
    pub result: R,
    pub errors: u64,
    pub error_samples: Vec<String>,
}

impl<C: Serialize, R: Serialize> Report<C, R> {
    /// Prints the report (JSON, or the lines `text` gives and the common
    /// ones); Ok(true) when the run had no errors.
    pub fn print(&self, json: bool, text: impl FnOnce(&R) -> Vec<String>) -> Result<bool> {
        if json {
            println!(
                "{}",
                serde_json::to_string(self).context("encoding the report")?
            );
            return Ok(self.errors == 0);
        }
        if let Some(label) = &self.label {
            println!("== {label} ==");
        }
        let gib = self
            .machine
            .memory_total_bytes
            .map(|b| format!("{:.1} GiB", b as f64 / (1024.0 * 1024.0 * 1024.0)))
            .unwrap_or_else(|| "unknown memory".to_string());
        println!(
            "imap-load {}: machine {}, {} cores, {gib}; date {}",
            self.workload, self.machine.cpu_model, self.machine.cores, self.date
        );
        for line in text(&self.result) {
            println!("{line}");
        }
        let load = |l: &Option<[f64; 3]>| {
            l.map(|[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"))
                .unwrap_or_else(|| "?".to_string())
        };
        println!(
            "elapsed {:.3} s; imap-load CPU {:.3} s; load average {} -> {}",
            self.elapsed_seconds,
            self.generator_cpu_seconds,
            load(&self.load_average_start),
            load(&self.load_average_end)
        );
        if let Some(s) = &self.server {
            println!(
                "server {:?}: CPU {:.3} s; memory {} -> {} processes, RSS {:.1} -> {:.1} MiB, PSS {:.1} -> {:.1} MiB",
                s.pids,
                s.cpu_seconds,
                s.memory_start.processes,
                s.memory_end.processes,
                mib(s.memory_start.rss_bytes),
                mib(s.memory_end.rss_bytes),
                mib(s.memory_start.pss_bytes),
                mib(s.memory_end.pss_bytes)
            );
        }
        println!("errors {}", self.errors);
        for e in &self.error_samples {
            println!("  {e}");
        }
        Ok(self.errors == 0)
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// "p50 / p99 ms" of a summary, for text reports.
pub fn p50_p99(s: &postcell_bench::stats::Summary) -> String {
    if s.count == 0 {
        return "none".to_string();
    }
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples)",
        s.p50, s.p99, s.max, s.count
    )
}

/// The line that says how an open-loop run went.
pub fn open_loop_line(rate: f64, late_starts: u64) -> String {
    format!(
        "open loop: {rate:.1} sessions/s offered; {late_starts} started more than {} ms late",
        postcell_bench::pace::LATE_START.as_millis()
    )
}
