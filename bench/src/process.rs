//! What the servers under load and the generator itself use, read from /proc:
//! resident memory and CPU time of a process tree, the load average, and the
//! open-file limit (raised for many connections).

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Result, bail};
use serde::Serialize;

/// Memory of one group of processes with the same name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NamedMemory {
    pub processes: usize,
    /// Sum of VmRSS.
    pub rss_bytes: u64,
    /// Sum of Pss (smaps_rollup), where readable.
    pub pss_bytes: u64,
}

/// Memory of a server: every process of the trees rooted at the given pids.
///
/// `rss_bytes` adds up VmRSS, which counts a page shared by several processes
/// (libraries, a forked parent's pages) once per process: for a server made of
/// many processes it over-states what the machine spends. `pss_bytes` adds up
/// the proportional set size, which splits each shared page among its users,
/// so it sums to what the processes really occupy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemorySample {
    pub processes: usize,
    pub rss_bytes: u64,
    pub pss_bytes: u64,
    /// Per process name (`imap`, `imap-login`, `dovecot`, `postcell`, ...).
    pub by_name: BTreeMap<String, NamedMemory>,
}

/// One process as read from /proc/PID/stat.
#[derive(Debug, Clone)]
struct Stat {
    pid: u32,
    ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks: the process's own CPU
    /// and that of its children it has already reaped.
    ticks: u64,
}

/// Parses /proc/PID/stat; the name (field 2) may hold spaces and parentheses,
/// so the fields are counted from its last ')'.
fn parse_stat(pid: u32, text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ppid = u32::try_from(field(4)?).ok()?;
    let ticks = field(14)? + field(15)? + field(16)? + field(17)?;
    Some(Stat { pid, ppid, ticks })
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

fn all_stats() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// The pids of the trees rooted at `roots` (roots included), from one scan of /proc.
fn tree(roots: &[u32], stats: &[Stat]) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for s in stats {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut out = HashSet::new();
    let mut todo: Vec<u32> = roots
        .iter()
        .copied()
        .filter(|r| stats.iter().any(|s| s.pid == *r))
        .collect();
    while let Some(pid) = todo.pop() {
        if !out.insert(pid) {
            continue;
        }
        if let Some(c) = children.get(&pid) {
            todo.extend(c);
        }
    }
    out
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// A set of server processes to watch: the trees rooted at some pids.
#[derive(Debug, Clone)]
pub struct ServerProcesses {
    roots: Vec<u32>,
}

impl ServerProcesses {
    /// Fails if none of the roots is running.
    pub fn new(roots: Vec<u32>) -> Result<Self> {
        if roots.is_empty() {
            bail!("no server pid given");
        }
        let stats = all_stats();
        if tree(&roots, &stats).is_empty() {
            bail!("no process with pid {roots:?} is running");
        }
        Ok(ServerProcesses { roots })
    }

    pub fn roots(&self) -> &[u32] {
        &self.roots
    }

    /// CPU seconds (user + system) used so far by the trees, counting children
    /// that have exited and been reaped by a process of the tree.
    pub fn cpu_seconds(&self) -> f64 {
        let stats = all_stats();
        let pids = tree(&self.roots, &stats);
        let ticks: u64 = stats
            .iter()
            .filter(|s| pids.contains(&s.pid))
            .map(|s| s.ticks)
            .sum();
        ticks as f64 / clock_ticks_per_second()
    }

    /// Resident memory of every process of the trees, now.
    pub fn memory(&self) -> MemorySample {
        let stats = all_stats();
        let mut sample = MemorySample::default();
        for pid in tree(&self.roots, &stats) {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue; // it exited since the scan
            };
            let name = status_field(&status, "Name").unwrap_or("?").to_string();
            let rss = status_field(&status, "VmRSS")
                .and_then(parse_kib)
                .unwrap_or(0);
            let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
                .ok()
                .and_then(|t| status_field(&t, "Pss").and_then(parse_kib))
                .unwrap_or(rss);
            sample.processes += 1;
            sample.rss_bytes += rss;
            sample.pss_bytes += pss;
            let named = sample.by_name.entry(name).or_default();
            named.processes += 1;
            named.rss_bytes += rss;
            named.pss_bytes += pss;
        }
        sample
    }
}

/// `Name:\tvalue` lines of /proc/PID/status and smaps_rollup.
fn status_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

/// "1234 kB" in bytes.
fn parse_kib(value: &str) -> Option<u64> {
    let kib: u64 = value.strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// CPU seconds (user + system) this process has used so far.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(libc::RUSAGE_SELF)
}

/// CPU seconds (user + system) of this process's children that have ended
/// and been waited for (a client program it ran, such as mbsync).
pub fn children_cpu_seconds() -> f64 {
    cpu_seconds(libc::RUSAGE_CHILDREN)
}

fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct we pass and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Raises this process's open-file limit to at least `want` descriptors (the
/// hard limit too, which only root may do); returns the new soft limit.
pub fn raise_open_files(want: u64) -> Result<u64> {
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!("getrlimit: {}", std::io::Error::last_os_error());
    }
    if limit.rlim_cur >= want {
        return Ok(limit.rlim_cur);
    }
    if limit.rlim_max < want {
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: want,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(want);
        }
    }
    limit.rlim_cur = want.min(limit.rlim_max);
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        bail!("setrlimit: {}", std::io::Error::last_os_error());
    }
    if limit.rlim_cur < want {
        bail!(
            "the open-file limit is {} (hard), {want} are needed: raise it (ulimit -n) or run as root",
            limit.rlim_max
        );
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_name() {
        let text = "4242 (imap (x) y) S 17 4242 4242 0 -1 4194560 500 0 0 0 30 12 4 2 20 0 1 0 100 1000 200 0 0";
        let s = parse_stat(4242, text).unwrap();
        assert_eq!(s.ppid, 17);
        assert_eq!(s.ticks, 30 + 12 + 4 + 2);
    }

    #[test]
    fn status_lines() {
        let status = "Name:\timap-login\nVmRSS:\t    5120 kB\n";
        assert_eq!(status_field(status, "Name"), Some("imap-login"));
        assert_eq!(
            status_field(status, "VmRSS").and_then(parse_kib),
            Some(5 << 20)
        );
        assert_eq!(parse_kib("12 MB"), None);
    }

    #[test]
    fn measures_this_process() {
        let me = ServerProcesses::new(vec![std::process::id()]).unwrap();
        let m = me.memory();
        assert!(m.processes >= 1);
        assert!(m.rss_bytes > 0 && m.pss_bytes > 0);
        assert!(me.cpu_seconds() >= 0.0);
        assert!(load_average().is_some());
        assert!(ServerProcesses::new(vec![]).is_err());
    }

    #[test]
    fn trees() {
        let stats = vec![
            Stat {
                pid: 1,
                ppid: 0,
                ticks: 1,
            },
            Stat {
                pid: 10,
                ppid: 1,
                ticks: 1,
            },
            Stat {
                pid: 11,
                ppid: 10,
                ticks: 1,
            },
            Stat {
                pid: 12,
                ppid: 10,
                ticks: 1,
            },
            Stat {
                pid: 20,
                ppid: 1,
                ticks: 1,
            },
        ];
        let mut t: Vec<u32> = tree(&[10], &stats).into_iter().collect();
        t.sort();
        assert_eq!(t, vec![10, 11, 12]);
        assert!(tree(&[99], &stats).is_empty());
    }
}
