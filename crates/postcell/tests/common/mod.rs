//! Support for the end-to-end tests: a real `postcell` process in a temporary folder,
//! on free loopback ports, with the embedded store or a throwaway PostgreSQL.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub mod cell;

use postcell_testkit::{ChildGuard, free_port, wait_for_port};
use tempfile::TempDir;

pub const DOMAIN: &str = "example.test";
pub const HOSTNAME: &str = "mail.example.test";
pub const PASSWORD: &str = "secret-password";

pub fn postcell_bin() -> &'static str {
    env!("CARGO_BIN_EXE_postcell")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub backend: Backend,
    /// More TOML appended to the generated file (sections like `[smtp]`).
    pub extra_config: String,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            backend: Backend::Sqlite,
            extra_config: String::new(),
        }
    }
}

pub struct Node {
    pub dir: TempDir,
    pub config: PathBuf,
    pub smtp: SocketAddr,
    pub pop3: SocketAddr,
    pub pop3s: SocketAddr,
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    pub http: SocketAddr,
    pub submission: SocketAddr,
    pub submissions: SocketAddr,
    child: Option<ChildGuard>,
    log: PathBuf,
}

impl Node {
    /// Makes the node folder with `postcell init`, rewrites the configuration with free
    /// ports (and PostgreSQL if asked), and starts `postcell serve`.
    pub fn start(options: NodeOptions) -> Node {
        let node = Node::create(options);
        let mut node = node;
        node.spawn();
        node
    }

    /// Like [`Node::start`] but does not start the server.
    pub fn create(options: NodeOptions) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let init = Command::new(postcell_bin())
            .args(["init", "--dir"])
            .arg(dir.path())
            .args(["--domain", DOMAIN, "--hostname", HOSTNAME])
            .output()
            .expect("run postcell init");
        assert!(
            init.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        // free_port() may hand out the same port twice: every listener gets a port
        // none of the others has, so a node never fails on a duplicate listener.
        let mut taken: Vec<SocketAddr> = Vec::new();
        let mut distinct_port = || loop {
            let candidate = addr(free_port());
            if !taken.contains(&candidate) {
                taken.push(candidate);
                return candidate;
            }
        };
        let (smtp, pop3, pop3s, http) = (
            distinct_port(),
            distinct_port(),
            distinct_port(),
            distinct_port(),
        );
        let (imap, imaps) = (distinct_port(), distinct_port());
        let (submission, submissions) = (distinct_port(), distinct_port());
        let store = match options.backend {
            Backend::Sqlite => {
                "backend = \"sqlite\"\npath = \"data/postcell.db\"\nblob_dir = \"data/blobs\"\n"
                    .to_owned()
            }
            Backend::Postgres => {
                let url = postcell_testkit::shared_postgres()
                    .fresh_database()
                    .expect("database");
                format!("backend = \"postgres\"\nurl = \"{url}\"\nblobs = \"database\"\n")
            }
        };
        // Tests never reach outside the machine: no DNS queries, no verdicts that
        // would need them, no relay sending to the internet, unless a test configures
        // the section itself.
        let mut isolation = String::new();
        for (section, off) in [
            ("[dns]", "resolver = \"static\""),
            ("[mx]", "verify = false"),
            ("[relay]", "enabled = false"),
        ] {
            if !options.extra_config.contains(section) {
                isolation.push_str(&format!("{section}\n{off}\n\n"));
            }
        }
        let text = format!(
            "[node]\nid = \"test-node\"\nhostname = \"{HOSTNAME}\"\n\n[store]\n{store}\n\
             [listen]\nsmtp = \"{smtp}\"\npop3 = \"{pop3}\"\npop3s = \"{pop3s}\"\nimap = \"{imap}\"\nimaps = \"{imaps}\"\nhttp = \"{http}\"\n\
             submission = \"{submission}\"\nsubmissions = \"{submissions}\"\n\n\
             [log]\nlevel = \"info,postcell=debug\"\n\n{isolation}{}\n",
            options.extra_config
        );
        let config = dir.path().join("postcell.toml");
        std::fs::write(&config, text).expect("write config");
        let log = dir.path().join("serve.log");
        let node = Node {
            dir,
            config,
            smtp,
            pop3,
            pop3s,
            imap,
            imaps,
            http,
            submission,
            submissions,
            child: None,
            log,
        };
        if options.backend == Backend::Postgres {
            node.cli_ok(&["domain", "add", DOMAIN]);
        }
        node
    }

    /// Starts `postcell serve` and waits until every listener accepts connections.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = ChildGuard::spawn(
            Command::new(postcell_bin())
                .arg("--config")
                .arg(&self.config)
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log),
        )
        .expect("spawn postcell serve");
        self.child = Some(child);
        for addr in [
            self.smtp,
            self.pop3,
            self.pop3s,
            self.imap,
            self.imaps,
            self.http,
            self.submission,
            self.submissions,
        ] {
            if let Err(e) = wait_for_port(addr, Duration::from_secs(30)) {
                panic!("postcell did not open {addr}: {e}\n{}", self.log_text());
            }
        }
    }

    /// Kills the server at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        // SAFETY: kill(2) with a pid we spawned and still own; no memory is involved.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "postcell did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `postcell --config FILE ARGS...`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(postcell_bin())
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

    /// Creates an account with [`PASSWORD`] (or the given quota, e.g. "10K").
    pub fn add_user(&self, address: &str, quota: Option<&str>) {
        let mut command = Command::new(postcell_bin());
        command.arg("--config").arg(&self.config).args([
            "user",
            "add",
            address,
            "--password-stdin",
        ]);
        if let Some(quota) = quota {
            command.args(["--quota", quota]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .expect("write password");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "user add {address}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls/cert.pem")
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }
}

/// Runs a Python script (as a string) with arguments and returns its standard output;
/// panics with both outputs if it fails.
pub fn python(script: &str, args: &[&str]) -> String {
    assert!(
        postcell_testkit::require_tool("python3"),
        "{}",
        postcell_testkit::process::missing_tool_message("python3")
    );
    let out = postcell_testkit::python3(script, args).expect("run python3");
    assert!(
        out.status.success(),
        "python failed:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Path of a file under `crates/postcell/tests/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// A raw client for line protocols (SMTP, POP3) on a plain `TcpStream`, for tests that
/// must control every byte. Every read and write times out after 20 seconds.
pub struct Wire {
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl Wire {
    pub fn connect(addr: SocketAddr) -> Wire {
        let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let _ = stream.set_nodelay(true);
        Wire {
            reader: std::io::BufReader::new(stream),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("send to the server");
    }

    /// One line without its CRLF; `None` at EOF. Panics on a timeout.
    pub fn try_line(&mut self) -> Option<String> {
        use std::io::BufRead;
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => {
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                Some(String::from_utf8_lossy(text).into_owned())
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("reading from the server: {e}"),
        }
    }

    pub fn line(&mut self) -> String {
        self.try_line()
            .expect("the server closed the connection instead of replying")
    }

    /// An SMTP reply; a multi-line reply comes back with its lines joined by `\n`.
    pub fn reply(&mut self) -> String {
        let mut lines = vec![self.line()];
        while lines.last().unwrap().as_bytes().get(3) == Some(&b'-') {
            lines.push(self.line());
        }
        lines.join("\n")
    }

    /// Sends `line` with CRLF and returns the SMTP reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Reads to the end of the stream (within the read timeout) and returns what came.
    pub fn rest(&mut self) -> Vec<u8> {
        use std::io::Read;
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => rest,
            Err(e) => panic!("the server did not close the connection: {e} (got {rest:?})"),
        }
    }
}
