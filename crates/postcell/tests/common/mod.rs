//! Support for the end-to-end tests: a real `postcell` process in a temporary folder,
//! on free loopback ports, with the embedded store or a throwaway PostgreSQL.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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
    pub http: SocketAddr,
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
        let (smtp, pop3, pop3s, http) = (
            addr(free_port()),
            addr(free_port()),
            addr(free_port()),
            addr(free_port()),
        );
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
        let text = format!(
            "[node]\nid = \"test-node\"\nhostname = \"{HOSTNAME}\"\n\n[store]\n{store}\n\
             [listen]\nsmtp = \"{smtp}\"\npop3 = \"{pop3}\"\npop3s = \"{pop3s}\"\nhttp = \"{http}\"\n\n\
             [log]\nlevel = \"info,postcell=debug\"\n\n{}\n",
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
            http,
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
        for addr in [self.smtp, self.pop3, self.pop3s, self.http] {
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
