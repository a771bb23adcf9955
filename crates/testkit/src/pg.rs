//! A throwaway PostgreSQL server for tests, built from the system binaries.
//!
//! Two ways to use it:
//!
//! * [`TempPostgres::start`]: a private server owned by the caller, stopped
//!   and deleted on drop. About a second of `initdb` plus startup per server,
//!   so reserve it for tests that need a server to themselves (for example to
//!   stop it mid-test).
//! * [`shared`]: one server per test process, started on first use, with
//!   [`TempPostgres::fresh_database`] giving every test its own database.
//!   This is the cheap default.
//!
//! The server listens on 127.0.0.1 only, with `trust` authentication for the
//! `postgres` superuser, and `fsync=off`: data loss on a crash is fine for a
//! throwaway cluster and makes tests much faster.
//!
//! # Running as root
//!
//! `initdb` and `postgres` refuse to run as root, and CI containers run as
//! root. In that case the server-side commands (`initdb`, `pg_ctl`) run as the
//! `postgres` system user (created by Debian's postgresql package) through
//! `runuser -u postgres --`, and the data folder is chowned to that user.
//! The temporary folder must then be reachable by `postgres`, so when the
//! configured temp dir (`TMPDIR`) has a non-traversable ancestor, `/tmp` is
//! used instead. Client commands (`psql`, `createdb`) always run as the
//! current user over TCP.
//!
//! # Cleanup
//!
//! A private server is stopped (`pg_ctl stop -m immediate`) and its folder
//! deleted on drop. The shared server lives in a `static`, which Rust never
//! drops, so an `atexit` handler stops it and deletes its folder when the test
//! process exits normally (which includes failing tests: the harness exits
//! through `exit`). A process killed by a signal (Ctrl-C, a CI timeout) runs
//! no handler and leaves its server behind; to bound that leak, every start
//! first reaps servers whose owning process no longer exists, using the
//! `owner.pid` file kept in each server's folder.

use std::ffi::{CString, OsString};
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::ports::try_free_port;
use crate::process::{describe, find_tool, shell_quote};

/// Prefix of every server folder, so stale ones can be recognised and reaped.
const DIR_PREFIX: &str = "postcell-pg-";
/// Environment variable naming a PostgreSQL `bin` folder to use instead of
/// the newest one under `/usr/lib/postgresql`.
pub const BIN_ENV: &str = "POSTCELL_PG_BIN";
/// Ports are picked by binding port 0 and closing it, which races with other
/// processes doing the same; a few retries make a collision harmless.
const START_ATTEMPTS: usize = 5;
/// Seconds `pg_ctl` waits for start and stop; generous for slow CI machines.
const PG_CTL_TIMEOUT_SECS: &str = "60";

/// A PostgreSQL server in a temporary folder, stopped and deleted on drop.
#[derive(Debug)]
pub struct TempPostgres {
    bin: PgBin,
    root: TempDir,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    /// Set once the server is stopped (or was never started), so that drop
    /// and the exit handler stop it at most once.
    stopped: AtomicBool,
    db_counter: AtomicU64,
}

impl TempPostgres {
    /// Creates a cluster with `initdb` and starts a server on a free port.
    pub fn start() -> anyhow::Result<Self> {
        let bin = PgBin::locate()?;
        let base = temp_base(bin.runuser.is_some());
        reap_stale_servers_once(&base, &bin);

        let root = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(&base)
            .with_context(|| format!("creating a temporary folder in {}", base.display()))?;
        // tempfile creates 0700 folders; the postgres user must get through.
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod 755 {}", root.path().display()))?;
        fs::write(
            root.path().join("owner.pid"),
            std::process::id().to_string(),
        )
        .context("writing owner.pid")?;

        let data_dir = root.path().join("data");
        let socket_dir = root.path().join("sock");
        // initdb insists on 0700 (or 0750) for an existing data folder.
        for (dir, mode) in [(&data_dir, 0o700), (&socket_dir, 0o755)] {
            fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .with_context(|| format!("chmod {mode:o} {}", dir.display()))?;
            if let Some((uid, gid)) = bin.owner {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid)).with_context(|| {
                    format!(
                        "chown postgres {} (needed to run initdb as root)",
                        dir.display()
                    )
                })?;
            }
        }

        let mut pg = TempPostgres {
            bin,
            root,
            data_dir,
            socket_dir,
            port: 0,
            stopped: AtomicBool::new(true),
            db_counter: AtomicU64::new(0),
        };
        pg.initdb()?;

        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            pg.port = try_free_port()?;
            let log_len_before = fs::metadata(pg.log_path()).map(|m| m.len()).unwrap_or(0);
            match pg.pg_ctl_start() {
                Ok(()) => {
                    pg.stopped.store(false, Ordering::SeqCst);
                    return Ok(pg);
                }
                Err(e) => {
                    // A timed-out start can leave a postmaster behind.
                    let _ = pg.pg_ctl_stop();
                    let log = pg.server_log();
                    let new_log = log.get(log_len_before as usize..).unwrap_or(&log);
                    let port_taken =
                        new_log.contains("could not bind") || new_log.contains("already in use");
                    let err = e.context(format!("server log:\n{new_log}"));
                    if !port_taken {
                        return Err(err);
                    }
                    last_err = Some(err);
                }
            }
        }
        Err(last_err
            .unwrap_or_else(|| anyhow::anyhow!("no start attempt made"))
            .context(format!(
                "PostgreSQL did not start after {START_ATTEMPTS} attempts"
            )))
    }

    /// The process-wide shared server; see [`shared`].
    pub fn shared() -> &'static TempPostgres {
        shared()
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Connection URL for database `db` as the `postgres` superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        if name.is_empty() {
            bail!("empty database name");
        }
        let mut cmd = self.client("createdb");
        // `--` so a name starting with '-' is not taken for an option.
        cmd.arg("--").arg(name);
        run(&mut cmd).with_context(|| format!("creating database {name:?}"))?;
        Ok(self.url(name))
    }

    /// Creates a database with a name unique within this server (and, thanks
    /// to the pid, recognisable per test process) and returns its URL.
    pub fn fresh_database(&self) -> anyhow::Result<String> {
        let n = self.db_counter.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("t_{}_{n}", std::process::id()))
    }

    /// Runs `sql` in database `db` with `psql` and returns its unaligned,
    /// tuples-only output (one row per line, columns separated by `|`).
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let mut cmd = self.client("psql");
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
            "-c",
            sql,
        ]);
        let out = run(&mut cmd).with_context(|| format!("running SQL in {db:?}: {sql}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The folder holding the PostgreSQL binaries in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin.dir
    }

    /// The cluster's data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The folder holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The temporary folder holding everything; deleted on drop.
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    /// The server's log file.
    ///
    /// Not called `log` because PostgreSQL's default `log_directory` is
    /// `log` inside the data folder, which would clash if someone enables
    /// `logging_collector`.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("postgres.log")
    }

    /// The server log so far, for failure messages; empty if unreadable.
    pub fn server_log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Stops the server now (immediate mode: no checkpoint, the data is
    /// thrown away anyway). Later calls, and drop, do nothing.
    pub fn stop(&self) -> anyhow::Result<()> {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.pg_ctl_stop()
    }

    /// Starts a server stopped with [`TempPostgres::stop`] again, on the same port
    /// and data, as an operator bringing a database back after an outage would.
    pub fn start_again(&self) -> anyhow::Result<()> {
        if !self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.pg_ctl_start()?;
        self.stopped.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let mut cmd = self.bin.server_command("initdb", self.root.path());
        cmd.args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C", "-D"])
            .arg(&self.data_dir);
        run(&mut cmd).context("initdb")?;
        Ok(())
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        // pg_ctl hands -o to /bin/sh, hence the quoting of the socket path.
        let mut options = OsString::from(format!("-p {} -k ", self.port));
        options.push(shell_quote(self.socket_dir.as_os_str()));
        options.push(" -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200");
        let mut cmd = self.bin.server_command("pg_ctl", self.root.path());
        cmd.args(["start", "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"])
            .arg(&self.data_dir)
            .arg("-l")
            .arg(self.log_path())
            .arg("-o")
            .arg(options);
        run(&mut cmd).with_context(|| format!("starting PostgreSQL on port {}", self.port))?;
        Ok(())
    }

    fn pg_ctl_stop(&self) -> anyhow::Result<()> {
        pg_ctl_stop(&self.bin, &self.data_dir, self.root.path())
    }

    /// A client command (psql, createdb) aimed at this server over TCP.
    fn client(&self, prog: &str) -> Command {
        let mut cmd = Command::new(self.bin.dir.join(prog));
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS");
        cmd
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            // Drop cannot fail; say so loudly, since a server is leaking.
            eprintln!(
                "postcell-testkit: could not stop PostgreSQL in {}: {e:#}",
                self.data_dir.display()
            );
        }
    }
}

/// The process-wide shared server, started on first use.
///
/// Every test binary (process) gets its own server, shared by its tests,
/// which should each take a database from [`TempPostgres::fresh_database`]
/// rather than share one. It is stopped by an `atexit` handler when the
/// process exits (see the module docs for what that does not cover). Under
/// cargo-nextest, which runs every test in its own process, this costs one
/// server per test.
///
/// # Panics
///
/// If the server cannot be started. The failure is remembered, so later
/// tests in the process panic at once with the same message instead of
/// retrying a slow start that will fail again.
pub fn shared() -> &'static TempPostgres {
    static SHARED: OnceLock<Result<TempPostgres, String>> = OnceLock::new();
    let slot = SHARED.get_or_init(|| {
        let pg = TempPostgres::start().map_err(|e| format!("{e:#}"))?;
        let data_dir = pg.data_dir.clone();
        let root = pg.root.path().to_path_buf();
        let bin = pg.bin.clone();
        // The handler cannot see SHARED before get_or_init returns, so it
        // gets its own copy of what it needs.
        if SHARED_EXIT.set((bin, data_dir, root)).is_ok() {
            // SAFETY: registering a plain extern "C" fn with no preconditions.
            let rc = unsafe { libc::atexit(stop_shared_at_exit) };
            if rc != 0 {
                eprintln!("postcell-testkit: atexit failed; the shared PostgreSQL will leak");
            }
        }
        Ok(pg)
    });
    match slot {
        Ok(pg) => pg,
        Err(e) => panic!("could not start the shared test PostgreSQL: {e}"),
    }
}

/// What the exit handler needs to stop the shared server.
static SHARED_EXIT: OnceLock<(PgBin, PathBuf, PathBuf)> = OnceLock::new();

extern "C" fn stop_shared_at_exit() {
    // Unwinding out of an extern "C" fn aborts the process; never risk it.
    let _ = std::panic::catch_unwind(|| {
        if let Some((bin, data_dir, root)) = SHARED_EXIT.get() {
            let _ = pg_ctl_stop(bin, data_dir, root);
            let _ = fs::remove_dir_all(root);
        }
    });
}

/// The PostgreSQL binaries and how to run the server-side ones.
#[derive(Debug, Clone)]
struct PgBin {
    dir: PathBuf,
    /// Path of `runuser` when running as root.
    runuser: Option<PathBuf>,
    /// uid and gid of the `postgres` user when running as root.
    owner: Option<(u32, u32)>,
}

impl PgBin {
    fn locate() -> anyhow::Result<Self> {
        let dir = find_bin_dir()?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(PgBin {
                dir,
                runuser: None,
                owner: None,
            });
        }
        let runuser = find_tool("runuser").context(
            "running as root, so initdb must run as user postgres via runuser, \
             which is missing (apt-get install util-linux)",
        )?;
        let owner = lookup_user("postgres").context(
            "running as root, so initdb must run as user postgres, which does not exist \
             (the Debian postgresql package creates it; install it with scripts/test)",
        )?;
        Ok(PgBin {
            dir,
            runuser: Some(runuser),
            owner: Some(owner),
        })
    }

    /// A server-side command (initdb, pg_ctl), run as `postgres` when root.
    ///
    /// `cwd` must be reachable by that user: initdb and pg_ctl complain when
    /// they cannot stat the working directory, and root's home is 0700.
    fn server_command(&self, prog: &str, cwd: &Path) -> Command {
        let program = self.dir.join(prog);
        let mut cmd = match &self.runuser {
            Some(runuser) => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", "postgres", "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.current_dir(cwd);
        cmd
    }
}

fn pg_ctl_stop(bin: &PgBin, data_dir: &Path, cwd: &Path) -> anyhow::Result<()> {
    let mut cmd = bin.server_command("pg_ctl", cwd);
    cmd.args([
        "stop",
        "-w",
        "-t",
        PG_CTL_TIMEOUT_SECS,
        "-m",
        "immediate",
        "-D",
    ])
    .arg(data_dir);
    run(&mut cmd).context("stopping PostgreSQL")?;
    Ok(())
}

/// Runs `cmd` without stdin and fails with its output unless it succeeds.
fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run {}", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end(),
        );
    }
    Ok(out)
}

/// `$POSTCELL_PG_BIN`, or the newest `/usr/lib/postgresql/<version>/bin`.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_ENV) {
        let dir = PathBuf::from(dir);
        if !dir.join("initdb").is_file() {
            bail!("{BIN_ENV}={} has no initdb", dir.display());
        }
        return Ok(dir);
    }
    let root = Path::new("/usr/lib/postgresql");
    let entries = fs::read_dir(root).map_err(|e| not_found(format!("{}: {e}", root.display())))?;
    let newest = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = parse_version(&entry.file_name().to_string_lossy())?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    match newest {
        Some((_, bin)) => Ok(bin),
        None => Err(not_found(format!("no {}/*/bin/initdb", root.display()))),
    }
}

fn not_found(detail: String) -> anyhow::Error {
    anyhow::anyhow!(
        "PostgreSQL server binaries not found ({detail}); install them with scripts/test \
         (apt-get install -y --no-install-recommends postgresql) or point {BIN_ENV} at a \
         folder containing initdb, pg_ctl, psql and createdb"
    )
}

/// "15" -> [15], "9.6" -> [9, 6]; None for anything that is not a version.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// Where server folders go: the usual temp dir, unless the `postgres` user
/// would be unable to reach it (e.g. TMPDIR under /root), then `/tmp`.
fn temp_base(as_postgres: bool) -> PathBuf {
    let base = std::env::temp_dir();
    if !as_postgres {
        return base;
    }
    let traversable = base.ancestors().all(|dir| {
        fs::metadata(dir)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    });
    if traversable {
        base
    } else {
        PathBuf::from("/tmp")
    }
}

fn lookup_user(name: &str) -> anyhow::Result<(u32, u32)> {
    let c_name = CString::new(name).context("user name contains NUL")?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data; getpwnam_r fills it in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and buf.len() is its size;
    // the reentrant variant because tests call this from many threads.
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc)).context(format!("looking up user {name}"));
    }
    if result.is_null() {
        bail!("no user named {name}");
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

/// Stops and deletes servers left by test processes that died without
/// running their exit handler. Best effort: a folder that cannot be cleaned
/// (another user's, say) is left alone.
fn reap_stale_servers_once(base: &Path, bin: &PgBin) {
    static REAPED: Once = Once::new();
    REAPED.call_once(|| {
        let Ok(entries) = fs::read_dir(base) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
                continue;
            }
            let dir = entry.path();
            // No owner.pid yet may mean a server being set up right now.
            let Some(owner) = fs::read_to_string(dir.join("owner.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            if process_exists(owner) {
                continue;
            }
            let data_dir = dir.join("data");
            if data_dir.join("postmaster.pid").exists() {
                let _ = pg_ctl_stop(bin, &data_dir, base);
            }
            let _ = fs::remove_dir_all(&dir);
        }
    });
}

fn process_exists(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return true; // Not a real owner; never touch such a folder.
    }
    // SAFETY: signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::is_port_open;

    /// Runs `psql -c 'select 1'` from the server's bin folder, as the brief
    /// for this harness requires, rather than through [`TempPostgres::psql`].
    fn select_one(pg: &TempPostgres, url: &str) -> String {
        let out = Command::new(pg.bin_dir().join("psql"))
            .args(["-X", "-A", "-t", "-c", "select 1", url])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[test]
    fn start_create_query_and_drop() {
        let pg = TempPostgres::start().unwrap();
        let a = pg.create_database("alpha").unwrap();
        let b = pg.create_database("beta").unwrap();
        assert_eq!(
            a,
            format!("postgres://postgres@127.0.0.1:{}/alpha", pg.port())
        );
        assert_eq!(b, pg.url("beta"));
        assert_eq!(select_one(&pg, &a), "1");
        assert_eq!(select_one(&pg, &b), "1");
        assert_eq!(
            pg.psql("beta", "select current_database()").unwrap().trim(),
            "beta"
        );
        assert!(
            pg.create_database("alpha").is_err(),
            "duplicate database accepted"
        );

        let addr = pg.addr();
        let root = pg.root_dir().to_path_buf();
        assert!(is_port_open(addr));
        drop(pg);
        assert!(!is_port_open(addr), "server still listening after drop");
        assert!(!root.exists(), "{} not deleted", root.display());
    }

    #[test]
    fn shared_server_gives_fresh_databases() {
        let pg = shared();
        assert!(std::ptr::eq(pg, TempPostgres::shared()));
        let a = pg.fresh_database().unwrap();
        let b = pg.fresh_database().unwrap();
        assert_ne!(a, b);
        assert_eq!(select_one(pg, &a), "1");
        assert_eq!(select_one(pg, &b), "1");
    }

    const CHILD_ENV: &str = "POSTCELL_TESTKIT_ATEXIT_CHILD";

    /// Run by `shared_server_stops_at_exit` in a child process.
    #[test]
    #[ignore = "helper for shared_server_stops_at_exit"]
    fn atexit_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let pg = shared();
        pg.fresh_database().unwrap();
        println!("CHILD port={} root={}", pg.port(), pg.root_dir().display());
    }

    #[test]
    fn shared_server_stops_at_exit() {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "pg::tests::atexit_child",
                "--nocapture",
            ])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("CHILD "))
            .expect(&stdout);
        let (port, root) = line.split_once(' ').unwrap();
        let port: u16 = port.strip_prefix("port=").unwrap().parse().unwrap();
        let root = PathBuf::from(root.strip_prefix("root=").unwrap());
        assert!(!is_port_open(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
        assert!(!root.exists(), "{} left behind", root.display());
    }

    #[test]
    fn versions_order_numerically() {
        assert!(parse_version("9.6") < parse_version("10"));
        assert!(parse_version("15") < parse_version("16"));
        assert_eq!(parse_version("main"), None);
    }
}
