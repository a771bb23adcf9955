//! Child processes and external tools for tests.

use std::env;
use std::ffi::OsStr;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{Context, bail};

/// A child process that is killed (SIGKILL) and reaped when dropped.
///
/// Tests that start servers or clients must not leave them running when an
/// assertion panics halfway through; SIGKILL rather than a polite signal
/// because a test server has nothing worth flushing and must not hang the
/// test run.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Spawns `cmd` and guards the resulting child.
    pub fn spawn(cmd: &mut Command) -> anyhow::Result<Self> {
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
        Ok(Self(child))
    }
}

impl Deref for ChildGuard {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Errors mean the child already exited and was reaped: nothing to do.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `python3 -c SCRIPT ARGS...` and returns its output.
///
/// A non-zero exit status is not an error here, so that tests can assert on
/// the script's stderr; use [`ensure_success`] when only success matters.
/// Inside the script, `sys.argv[1:]` are `args`.
pub fn python3(script: &str, args: &[&str]) -> anyhow::Result<Output> {
    Command::new(tool_path("python3")?)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running python3 -c")
}

/// Runs `python3 PATH ARGS...` and returns its output (see [`python3`]).
pub fn run_python_file(path: impl AsRef<Path>, args: &[&str]) -> anyhow::Result<Output> {
    let path = path.as_ref();
    Command::new(tool_path("python3")?)
        .arg(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running python3 {}", path.display()))
}

/// Fails with the command's stdout and stderr unless it exited successfully.
pub fn ensure_success(output: &Output, what: &str) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

/// Where `name` is found: on `PATH`, or else in `/usr/sbin` and `/sbin`.
///
/// The sbin fallback matters for tools like `postfix` and `postconf`, which
/// Debian installs in /usr/sbin, outside a normal user's `PATH`. Invoke the
/// returned path rather than the bare name for that reason.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let path_var = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path_var)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether the external tool `name` is available (see [`find_tool`]).
///
/// Tests must not skip when this is false; call [`expect_tool`] instead, or
/// panic with [`missing_tool_message`].
pub fn require_tool(name: &str) -> bool {
    find_tool(name).is_some()
}

/// Returns the tool's path or panics with a message saying how to install it.
pub fn expect_tool(name: &str) -> PathBuf {
    match find_tool(name) {
        Some(path) => path,
        None => panic!("{}", missing_tool_message(name)),
    }
}

/// The message tests give when `name` is missing: which tool, and how to get
/// it. `scripts/test` installs every tool the test suite needs.
pub fn missing_tool_message(name: &str) -> String {
    format!(
        "required test tool `{name}` not found on PATH (nor in /usr/sbin); \
         install it with scripts/test (which runs apt-get for missing tools), \
         or by hand: apt-get install -y --no-install-recommends {}",
        debian_package(name)
    )
}

fn debian_package(tool: &str) -> &str {
    match tool {
        "postfix" | "postconf" | "postqueue" | "postmap" | "sendmail" => "postfix",
        "psql" | "createdb" | "dropdb" | "pg_isready" => "postgresql-client",
        "initdb" | "pg_ctl" | "postgres" => "postgresql",
        other => other,
    }
}

fn tool_path(name: &str) -> anyhow::Result<PathBuf> {
    find_tool(name).with_context(|| missing_tool_message(name))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Renders a command line for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&shell_quote(arg));
    }
    text
}

/// Quotes `arg` for a POSIX shell.
pub(crate) fn shell_quote(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        arg.into_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn child_guard_kills_on_drop() {
        let guard = ChildGuard::spawn(Command::new("sleep").arg("30")).unwrap();
        let pid = guard.id() as libc::pid_t;
        let start = Instant::now();
        drop(guard);
        assert!(start.elapsed() < Duration::from_secs(5));
        // The child was reaped, so the pid no longer names our child.
        let rc = unsafe { libc::kill(pid, 0) };
        assert!(rc != 0 || pid_is_not_sleep(pid));
    }

    fn pid_is_not_sleep(pid: libc::pid_t) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|comm| comm.trim() != "sleep")
            .unwrap_or(true)
    }

    #[test]
    fn python3_passes_args() {
        let out = python3("import sys; print(','.join(sys.argv[1:]))", &["a", "b c"]).unwrap();
        ensure_success(&out, "python3").unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "a,b c");
    }

    #[test]
    fn python3_failure_is_reported() {
        let out = python3("import sys; sys.stderr.write('boom'); sys.exit(3)", &[]).unwrap();
        let err = ensure_success(&out, "python3 boom").unwrap_err();
        assert!(format!("{err:#}").contains("boom"), "{err:#}");
    }

    #[test]
    fn run_python_file_runs_file() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hello.py");
        std::fs::write(&script, "import sys\nprint('hi', sys.argv[1])\n").unwrap();
        let out = run_python_file(&script, &["there"]).unwrap();
        ensure_success(&out, "hello.py").unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi there");
    }

    #[test]
    fn tool_lookup() {
        assert!(require_tool("sh"));
        assert!(!require_tool("postcell-no-such-tool"));
        let msg = missing_tool_message("postconf");
        assert!(
            msg.contains("scripts/test")
                && msg.contains("install -y --no-install-recommends postfix")
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote(OsStr::new("/tmp/a-b")), "/tmp/a-b");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }
}
