//! A description of the machine the benchmark ran on, read from /proc.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model name from /proc/cpuinfo ("unknown" if unreadable).
    pub cpu_model: String,
    /// Logical CPUs listed in /proc/cpuinfo (falls back to what the OS reports).
    pub cores: usize,
    /// Logical CPUs this process may run on.
    pub cores_available: usize,
    /// MemTotal from /proc/meminfo, in bytes.
    pub memory_total_bytes: Option<u64>,
    /// Kernel release from /proc/sys/kernel/osrelease.
    pub kernel: Option<String>,
    pub os: &'static str,
    pub arch: &'static str,
}

impl Machine {
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cores_available = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let listed = count_processors(&cpuinfo);
        Machine {
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".to_string()),
            cores: if listed > 0 { listed } else { cores_available },
            cores_available,
            memory_total_bytes: mem_total(&meminfo),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string()),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (key, value) = line.split_once(':')?;
    (key.trim() == name).then(|| value.trim())
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    // x86 says "model name"; some ARM kernels say "Hardware" or "Model".
    for name in ["model name", "Hardware", "Model", "cpu model"] {
        if let Some(v) = cpuinfo.lines().find_map(|l| field(l, name))
            && !v.is_empty()
        {
            return Some(v.to_string());
        }
    }
    None
}

fn count_processors(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|l| field(l, "processor").is_some())
        .count()
}

fn mem_total(meminfo: &str) -> Option<u64> {
    let v = meminfo.lines().find_map(|l| field(l, "MemTotal"))?;
    let kib: u64 = v.trim_end_matches("kB").trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n\nprocessor\t: 1\nmodel name\t: Example CPU @ 2.0GHz\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Example CPU @ 2.0GHz"));
        assert_eq!(count_processors(cpuinfo), 2);
        assert_eq!(
            mem_total("MemTotal:       24684340 kB\nMemFree: 1 kB\n"),
            Some(24684340 * 1024)
        );
    }
}
