//! A description of the machine the numbers were taken on.

/// The machine, as the report describes it.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Total memory in GiB.
    pub mem_gib: f64,
    /// Whether the BPF JIT is on (`/proc/sys/net/core/bpf_jit_enable`).
    pub bpf_jit: String,
    /// The rustc that built the benchmark.
    pub rustc: &'static str,
    /// The 1-minute load average when the description was taken (`/proc/loadavg`).
    pub load: String,
}

impl Machine {
    /// Reads the description from `/proc`.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into())
        };
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease"),
            mem_gib: mem_kib / (1024.0 * 1024.0),
            bpf_jit: read("/proc/sys/net/core/bpf_jit_enable"),
            rustc: env!("TLD_BENCH_RUSTC"),
            load: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .unwrap_or("unknown")
                .to_string(),
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} CPUs), {:.0} GiB, Linux {}, BPF JIT {}, {}",
            self.cpu,
            self.cpus,
            self.mem_gib,
            self.kernel,
            if self.bpf_jit == "1" || self.bpf_jit == "2" {
                "on"
            } else {
                "off"
            },
            self.rustc
        )
    }
}
