//! A cell for tests: one private PostgreSQL, one shared blob folder, and several
//! `postcell serve` processes on their own loopback addresses (127.0.0.2, .3, .4...;
//! Linux routes all of 127.0.0.0/8 to the loopback interface, no set-up needed).
//!
//! ```text
//! let cell = Cell::start(CellOptions::new(env!("CARGO_BIN_EXE_postcell")));
//! cell.add_user("alice@example.test");
//! let smtp = cell.node(1).addr(Service::Smtp);   // node B
//! cell.node_mut(1).kill();                        // SIGKILL, as a crash
//! cell.pg().stop()?; cell.pg().start_again()?;    // a database outage
//! ```
//!
//! Every node listens on every protocol Postcell serves (SMTP, POP3, POP3S, IMAP,
//! IMAPS, HTTP), so tests of one protocol across nodes (IMAP IDLE on A seeing a
//! delivery on B; a relay queue entry leased by B taken over by C) need only this
//! harness and their own client. Short cell timings (1 s heartbeat, 3 s leases, 2 s
//! drain announce) keep failover tests quick; [`CellOptions::extra_config`] and
//! [`CellOptions::node_config`] add or override sections.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{ChildGuard, TempPostgres, free_port, wait_for_port};

pub const DOMAIN: &str = "example.test";
pub const PASSWORD: &str = "secret-password";

/// The listeners of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Smtp,
    Pop3,
    Pop3s,
    Imap,
    Imaps,
    Http,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::Smtp,
        Service::Pop3,
        Service::Pop3s,
        Service::Imap,
        Service::Imaps,
        Service::Http,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Pop3 => "pop3",
            Service::Pop3s => "pop3s",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Http => "http",
        }
    }
}

/// Where message bodies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blobs {
    /// One folder all nodes share, as a CephFS or GlusterFS mount would be.
    SharedFolder,
    /// The `blobs` table.
    Database,
}

#[derive(Debug, Clone)]
pub struct CellOptions {
    /// The `postcell` binary (`env!("CARGO_BIN_EXE_postcell")` in the binary's tests).
    pub binary: PathBuf,
    pub nodes: usize,
    pub blobs: Blobs,
    /// TOML appended to every node's file (new sections only: TOML refuses a section
    /// twice, so the sections the harness writes are overridden with `node_config`).
    pub extra_config: String,
    /// Replaces, for node `i`, the harness's `[listen]` values: `(i, service, value)`,
    /// e.g. `(0, Service::Smtp, "{ address = \"ADDR\", proxy_protocol = true, ... }")`
    /// where `ADDR` stands for the node's address for that service.
    pub listen_overrides: Vec<(usize, Service, String)>,
    /// More TOML for node `i` alone (appended after `extra_config`).
    pub node_config: Vec<(usize, String)>,
    /// `drain.timeout` of every node (the harness writes the `[drain]` section).
    pub drain_timeout: String,
}

impl CellOptions {
    pub fn new(binary: impl Into<PathBuf>) -> CellOptions {
        CellOptions {
            binary: binary.into(),
            nodes: 3,
            blobs: Blobs::SharedFolder,
            extra_config: String::new(),
            listen_overrides: Vec::new(),
            node_config: Vec::new(),
            drain_timeout: "15s".to_owned(),
        }
    }
}

pub struct Cell {
    pg: TempPostgres,
    url: String,
    blob_dir: TempDir,
    nodes: Vec<CellNode>,
    binary: PathBuf,
}

pub struct CellNode {
    /// `node-a`, `node-b`...
    pub id: String,
    pub ip: Ipv4Addr,
    pub dir: TempDir,
    pub config: PathBuf,
    addrs: Vec<(Service, SocketAddr)>,
    binary: PathBuf,
    child: Option<ChildGuard>,
    log: PathBuf,
}

impl Cell {
    /// Starts PostgreSQL, creates the schema and the domain, and starts every node;
    /// returns once every node's listeners accept connections.
    pub fn start(options: CellOptions) -> Cell {
        let pg = TempPostgres::start().expect("start PostgreSQL");
        let url = pg.create_database("cell").expect("create the database");
        let blob_dir = tempfile::tempdir().expect("blob folder");
        let mut taken: Vec<u16> = Vec::new();
        let mut port = || loop {
            let p = free_port();
            if !taken.contains(&p) {
                taken.push(p);
                return p;
            }
        };
        let mut nodes = Vec::new();
        for i in 0..options.nodes {
            let letter = (b'a' + i as u8) as char;
            let ip = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
            let dir = tempfile::tempdir().expect("node folder");
            let init = Command::new(&options.binary)
                .args(["init", "--dir"])
                .arg(dir.path())
                .args(["--domain", DOMAIN, "--hostname"])
                .arg(format!("{letter}.mail.{DOMAIN}"))
                .output()
                .expect("run postcell init");
            assert!(
                init.status.success(),
                "init failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
            let addrs: Vec<(Service, SocketAddr)> = Service::ALL
                .iter()
                .map(|&s| (s, SocketAddr::from((ip, port()))))
                .collect();
            let mut listen = String::new();
            for (service, addr) in &addrs {
                let value = options
                    .listen_overrides
                    .iter()
                    .find(|(n, s, _)| *n == i && s == service)
                    .map(|(_, _, v)| v.replace("ADDR", &addr.to_string()))
                    .unwrap_or_else(|| format!("\"{addr}\""));
                listen.push_str(&format!("{} = {value}\n", service.key()));
            }
            let blobs = match options.blobs {
                Blobs::SharedFolder => format!(
                    "blobs = \"folder\"\nblob_dir = \"{}\"\n",
                    blob_dir.path().display()
                ),
                Blobs::Database => "blobs = \"database\"\n".to_owned(),
            };
            let own: String = options
                .node_config
                .iter()
                .filter(|(n, _)| *n == i)
                .map(|(_, text)| format!("{text}\n"))
                .collect();
            let text = format!(
                "[node]\nid = \"node-{letter}\"\nhostname = \"{letter}.mail.{DOMAIN}\"\n\n\
                 [store]\nbackend = \"postgres\"\nurl = \"{url}\"\n{blobs}\n\
                 [listen]\n{listen}\n\
                 [cell]\nheartbeat = \"1s\"\njob_lease = \"3s\"\nmetric_samples = \"2s\"\n\n\
                 [drain]\nannounce = \"2s\"\ntimeout = \"{drain_timeout}\"\n\n\
                 [pop3]\nlease_ttl = \"3s\"\n\n\
                 [log]\nlevel = \"info,postcell=debug\"\n\n{}\n{own}",
                options.extra_config,
                drain_timeout = options.drain_timeout,
            );
            let config = dir.path().join("postcell.toml");
            std::fs::write(&config, text).expect("write the node's configuration");
            let log = dir.path().join("serve.log");
            nodes.push(CellNode {
                id: format!("node-{letter}"),
                ip,
                dir,
                config,
                addrs,
                binary: options.binary.clone(),
                child: None,
                log,
            });
        }
        let cell = Cell {
            pg,
            url,
            blob_dir,
            nodes,
            binary: options.binary,
        };
        // The first command creates the schema, so nodes do not all migrate at once.
        cell.node(0).cli_ok(&["domain", "add", DOMAIN]);
        let mut cell = cell;
        for node in &mut cell.nodes {
            node.spawn_quietly();
        }
        for node in &cell.nodes {
            node.wait_until_listening();
        }
        cell
    }

    pub fn node(&self, i: usize) -> &CellNode {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut CellNode {
        &mut self.nodes[i]
    }

    pub fn nodes(&self) -> &[CellNode] {
        &self.nodes
    }

    /// The cell's PostgreSQL: stop it and start it again for outage tests.
    pub fn pg(&self) -> &TempPostgres {
        &self.pg
    }

    pub fn database_url(&self) -> &str {
        &self.url
    }

    pub fn blob_dir(&self) -> &Path {
        self.blob_dir.path()
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Runs SQL on the cell's database; rows as lines, columns separated by `|`.
    pub fn sql(&self, query: &str) -> String {
        self.pg
            .psql("cell", query)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Creates an account with [`PASSWORD`] through node A's command line.
    pub fn add_user(&self, address: &str) {
        let mut child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.nodes[0].config)
            .args(["user", "add", address, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn postcell user add");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .expect("write the password");
        let out = child.wait_with_output().expect("wait for user add");
        assert!(
            out.status.success(),
            "user add {address}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("===== {} =====\n{}", n.id, n.log_text()))
            .collect()
    }
}

impl CellNode {
    pub fn addr(&self, service: Service) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, a)| *a)
            .expect("every node has every service")
    }

    fn spawn_quietly(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = ChildGuard::spawn(
            Command::new(&self.binary)
                .arg("--config")
                .arg(&self.config)
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log),
        )
        .expect("spawn postcell serve");
        self.child = Some(child);
    }

    fn wait_until_listening(&self) {
        for (_, addr) in &self.addrs {
            // Generous: three debug builds starting at once on a busy machine.
            if let Err(e) = wait_for_port(*addr, Duration::from_secs(60)) {
                panic!("{} did not open {addr}: {e}\n{}", self.id, self.log_text());
            }
        }
    }

    /// Starts `postcell serve` (again) and waits for its listeners.
    pub fn spawn(&mut self) {
        self.spawn_quietly();
        self.wait_until_listening();
    }

    /// SIGKILL, as a crash or a power cut would stop it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (SIGTERM, SIGUSR1...) to the running server.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("server running");
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
    }

    /// Waits for the server to exit by itself; `None` if it is still running after
    /// `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(child) => child.try_wait().ok().flatten().is_none(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `postcell --config FILE ARGS...` with this node's configuration.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run postcell")
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "postcell {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `GET path` on the node's http listener: status code and body.
    pub fn http_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.addr(Service::Http), path)
    }
}

/// A plain HTTP/1.1 GET with `Connection: close`; status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes; returns
/// whether it did.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
