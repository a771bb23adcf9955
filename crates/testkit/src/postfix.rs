//! A private Postfix instance for tests: its own configuration folder, queue and
//! Maildirs in a temporary folder, listening on a free loopback port, stopped on drop.
//!
//! It receives mail for [`TempPostfix::DOMAIN`] into Maildirs (virtual delivery as
//! `nobody`), relays everything else from loopback to an optional relayhost, and
//! answers recipients listed in its access map with the code given there, so a
//! test can make it say `450` and later `250` ([`TempPostfix::set_access`]).
//!
//! `postfix start` needs root (the master process binds the port, then drops to the
//! `postfix` user); tests run as root here and in CI. The system's Postfix is never
//! touched: every command gets `-c` with the private configuration folder.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::ports::{free_port, wait_for_port};
use crate::process::expect_tool;

/// How to start Postfix.
#[derive(Debug, Clone, Default)]
pub struct PostfixOptions {
    /// `[host]:port` to relay non-local mail to (`relayhost`), e.g. Postcell's `mx`.
    pub relayhost: Option<String>,
    /// Seconds smtpd waits after DATA before answering (`smtpd_data_restrictions =
    /// sleep N`): a slow remote, for tests that kill a client mid-transaction.
    pub data_delay: Option<u32>,
    /// Mailboxes to create (local parts at [`TempPostfix::DOMAIN`]).
    pub mailboxes: Vec<String>,
}

pub struct TempPostfix {
    dir: TempDir,
    conf: PathBuf,
    port: u16,
    stopped: bool,
}

impl TempPostfix {
    /// The domain this Postfix delivers locally.
    pub const DOMAIN: &'static str = "remote.test";

    pub fn start(options: PostfixOptions) -> anyhow::Result<TempPostfix> {
        let postfix = expect_tool("postfix");
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            bail!("a private Postfix needs root (postfix start); run the tests as root");
        }
        let dir = tempfile::Builder::new()
            .prefix("postcell-postfix-")
            .tempdir()?;
        let root = dir.path();
        let conf = root.join("etc");
        let queue = root.join("queue");
        let data = root.join("data");
        let maildirs = root.join("maildirs");
        for d in [&conf, &queue, &data, &maildirs] {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        set_mode(root, 0o755)?;
        set_mode(&queue, 0o755)?;
        let (postfix_uid, postfix_gid) = user_ids("postfix")?;
        std::os::unix::fs::chown(&data, Some(postfix_uid), Some(postfix_gid))?;
        let (nobody_uid, nobody_gid) = user_ids("nobody")?;
        std::os::unix::fs::chown(&maildirs, Some(nobody_uid), Some(nobody_gid))?;
        let port = free_port();
        let mut vmailbox = String::new();
        for local in &options.mailboxes {
            vmailbox.push_str(&format!("{local}@{} {local}/\n", Self::DOMAIN));
        }
        fs::write(conf.join("vmailbox"), vmailbox)?;
        fs::write(conf.join("access"), "")?;
        let relayhost = options.relayhost.clone().unwrap_or_default();
        let data_restrictions = match options.data_delay {
            Some(seconds) => format!("sleep {seconds}, permit"),
            None => "permit".into(),
        };
        let main_cf = format!(
            "# Private Postfix instance for a Postcell test: loopback only.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = mx.{domain}
mydomain = {domain}
myorigin = $myhostname
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = {relayhost}
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
smtpd_banner = $myhostname ESMTP
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:{conf}/access, permit_mynetworks, reject_unauth_destination
smtpd_data_restrictions = {data_restrictions}
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {maildirs}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_uid_maps = static:{nobody_uid}
virtual_gid_maps = static:{nobody_gid}
virtual_minimum_uid = 1
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
",
            queue = queue.display(),
            data = data.display(),
            root = root.display(),
            domain = Self::DOMAIN,
            conf = conf.display(),
            maildirs = maildirs.display(),
        );
        fs::write(conf.join("main.cf"), main_cf)?;
        let master_cf = format!(
            "# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{port} inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"
        );
        fs::write(conf.join("master.cf"), master_cf)?;
        let mut instance = TempPostfix {
            dir,
            conf,
            port,
            stopped: true,
        };
        let out = Command::new(&postfix)
            .arg("-c")
            .arg(&instance.conf)
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .context("running postfix start")?;
        if !out.status.success() {
            bail!(
                "postfix start failed: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                instance.log()
            );
        }
        instance.stopped = false;
        wait_for_port(instance.addr(), Duration::from_secs(30))
            .with_context(|| format!("postfix did not listen:\n{}", instance.log()))?;
        Ok(instance)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Postfix's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Replaces the recipient access map (`address action` lines, e.g.
    /// `flaky@remote.test 450 4.2.0 try again later`) and reloads Postfix.
    pub fn set_access(&self, lines: &str) -> anyhow::Result<()> {
        fs::write(self.conf.join("access"), lines)?;
        let out = Command::new(expect_tool("postfix"))
            .arg("-c")
            .arg(&self.conf)
            .arg("reload")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "postfix reload failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// The messages delivered to `local@remote.test`, oldest first.
    pub fn messages(&self, local: &str) -> Vec<Vec<u8>> {
        let base = self.dir.path().join("maildirs").join(local);
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = fs::read_dir(base.join(sub)) {
                for entry in entries.flatten() {
                    let modified = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    files.push((modified, entry.path()));
                }
            }
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| fs::read(path).ok())
            .collect()
    }

    /// Waits until `local` has at least `count` messages.
    pub fn wait_for_messages(&self, local: &str, count: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages(local);
            if messages.len() >= count || Instant::now() >= deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let postfix = expect_tool("postfix");
        let stop = Command::new(&postfix)
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .stdin(Stdio::null())
            .output();
        if !stop.is_ok_and(|o| o.status.success()) {
            let _ = Command::new(&postfix)
                .arg("-c")
                .arg(&self.conf)
                .arg("abort")
                .stdin(Stdio::null())
                .output();
        }
    }
}

impl Drop for TempPostfix {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

fn user_ids(name: &str) -> anyhow::Result<(u32, u32)> {
    let out = Command::new("id").arg("-u").arg(name).output()?;
    let uid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("no user {name}"))?;
    let out = Command::new("id").arg("-g").arg(name).output()?;
    let gid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("no group of user {name}"))?;
    Ok((uid, gid))
}
