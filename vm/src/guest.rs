//! Pieces shared by the programs that run inside the VM (`tld-vm-guest` and
//! `tld-vm-other-layout`): how they report, how they bound their waits, and how they read what
//! `scx_tld` read and counted.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::console::PREFIX;

/// Where the guest has `scx_tld` pin its map of per-thread records (`--pin-records`).
pub const RECORDS_PIN: &str = "/sys/fs/bpf/scx_tld_records";

/// Where `scx_tld` pins `tld_data_map`, and where tld-runtime looks for it.
pub const DATA_MAP_PIN: &str = tld_wire::paths::DEFAULT_DATA_MAP_PIN;

/// Where scx schedulers serve their statistics (`scx_stats`).
pub const STATS_SOCKET: &str = "/var/run/scx/root/stats";

/// Nice levels a priority hint may take a thread below its own nice: `scx_tld --max-boost`'s
/// default, which the guest runs it with.
pub const MAX_BOOST: i32 = 5;

/// Prints one figure of the performance report's VM row (P7) for the host.
pub fn figure(name: &str, value: f64) {
    println!("{PREFIX} FIGURE {name} {value}");
}

/// Seconds since the guest booted.
pub fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// How long the guest may still run before the host's timeout (`TLD_VM_DEADLINE`, guest
/// uptime in seconds, set by the init script); an hour if it is not set.
pub fn remaining() -> Duration {
    let deadline: f64 = std::env::var("TLD_VM_DEADLINE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600.0);
    Duration::from_secs_f64((deadline - uptime()).max(0.0))
}

/// `want`, or less if the guest's deadline comes first: every wait of the guest programs goes
/// through this, so that a test that hangs fails and reports before the host kills the guest.
pub fn bounded(want: Duration) -> Duration {
    want.min(remaining())
}

/// Prints one test's outcome for the host.
pub fn report(name: &str, passed: bool, details: &str) {
    let verdict = if passed { "PASS" } else { "FAIL" };
    println!(
        "{PREFIX} RESULT {name} {verdict} {}",
        details.replace('\n', " ")
    );
}

/// What `scx_tld` last read for one thread: `struct tld_sched_record` of the scheduler's
/// `intf.h`, generated from it. Its `flags` are `TLD_REC_*` ([`intf`]).
pub use scx_tld_intf::TldSchedRecord as Record;

/// The scheduler's `intf.h`: the `records` map's value and its `TLD_REC_*` flags.
pub use scx_tld_intf as intf;

/// The pinned records map of the running scheduler.
pub struct Records {
    map: MapHandle,
}

impl Records {
    /// Opens the map pinned at [`RECORDS_PIN`].
    pub fn open() -> Result<Records, String> {
        MapHandle::from_pinned_path(Path::new(RECORDS_PIN))
            .map(|map| Records { map })
            .map_err(|e| format!("opening {RECORDS_PIN}: {e}"))
    }

    /// What the scheduler last read for thread `tid`, if it read anything.
    pub fn get(&self, tid: i32) -> Option<Record> {
        self.map
            .lookup(&tid.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|b| Record::from_bytes(&b))
    }

    /// The records of every thread of process `tgid`, by thread id.
    pub fn of_process(&self, tgid: i32) -> Vec<(i32, Record)> {
        self.map
            .keys()
            .filter_map(|k| Some(i32::from_ne_bytes(k.get(..4)?.try_into().ok()?)))
            .filter_map(|tid| Some((tid, self.get(tid)?)))
            .filter(|(_, r)| r.tgid == tgid)
            .collect()
    }
}

/// The kernel's nice-to-weight table: the weight of nice `nice` (clamped to -20 ..= 19).
pub fn weight_of(nice: i32) -> u32 {
    const WEIGHTS: [u32; 40] = [
        88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100,
        4904, 3906, 3121, 2501, 1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172,
        137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
    ];
    WEIGHTS[(nice.clamp(-20, 19) + 20) as usize]
}

/// The weight `scx_tld` gives a thread of nice `nice` whose priority hint is `priority`: the
/// hint moves the nice, by at most [`MAX_BOOST`] levels down.
pub fn hinted_weight(nice: i32, priority: i32) -> u32 {
    weight_of(nice + priority.clamp(-MAX_BOOST, 39))
}

/// The calling thread's CPU time, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE for the guests this runs in (a few CPUs).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(format!(
            "sched_setaffinity(CPU {cpu}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Sets the calling thread's nice value (Linux: nice is per thread).
pub fn set_nice(nice: i32) -> Result<(), String> {
    // SAFETY: setpriority takes plain integers; who 0 is the calling thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if rc != 0 {
        return Err(format!(
            "setpriority({nice}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The running scheduler's counters, as its statistics socket serves them (`scx_stats`'s
/// protocol: one JSON request per line, one JSON answer per line): `{"total": {...}, "cpus":
/// {"0": {...}, ...}}`.
pub fn sched_stats() -> Result<serde_json::Value, String> {
    let stream = std::os::unix::net::UnixStream::connect(STATS_SOCKET)
        .map_err(|e| format!("connecting to {STATS_SOCKET}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    writer
        .write_all(b"{\"req\": \"stats\", \"args\": {\"target\": \"top\"}}\n")
        .map_err(|e| format!("writing to {STATS_SOCKET}: {e}"))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("reading {STATS_SOCKET}: {e}"))?;
    let answer: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("{e}: {line:?}"))?;
    if answer["errno"] != 0 {
        return Err(format!("the statistics socket answered {line}"));
    }
    Ok(answer["args"]["resp"].clone())
}

/// One counter of every CPU (`stats["cpus"][cpu][name]`), by CPU number.
pub fn per_cpu(stats: &serde_json::Value, name: &str) -> Vec<u64> {
    let Some(cpus) = stats["cpus"].as_object() else {
        return Vec::new();
    };
    let mut v: Vec<(usize, u64)> = cpus
        .iter()
        .filter_map(|(k, c)| Some((k.parse().ok()?, c[name].as_u64()?)))
        .collect();
    v.sort();
    v.into_iter().map(|(_, n)| n).collect()
}

/// The calling thread's id.
pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// `CLOCK_MONOTONIC` in nanoseconds, through the vDSO: no system call. The clock BPF's
/// `bpf_ktime_get_ns()` reads.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps for `ms` milliseconds: the thread blocks, and its wake-up is an enqueue.
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// Sleeps 1 ms at a time (each wake-up is an enqueue, where the scheduler reads the hints)
/// until the scheduler's record of the calling thread shows `priority`, at most `max` times;
/// returns the number of wake-ups. Usually 1: a read can miss when the kernel's task storage is
/// busy on that CPU (threads registering or exiting at the same moment), and the scheduler then
/// applies the default policy for that one enqueue.
pub fn wake_until_read(records: &Records, priority: i32, max: u32) -> u32 {
    let tid = gettid();
    for n in 1..=max {
        sleep_ms(1);
        if records.get(tid).is_some_and(|r| r.priority == priority) {
            return n;
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights() {
        assert_eq!(
            (weight_of(0), weight_of(-40), weight_of(19)),
            (1024, 88761, 15)
        );
        // A hint moves the thread's own nice, down by MAX_BOOST levels at most.
        assert_eq!(hinted_weight(0, 0), 1024);
        assert_eq!(hinted_weight(19, 0), 15);
        assert_eq!(hinted_weight(0, -20), weight_of(-MAX_BOOST));
        assert_eq!(hinted_weight(10, -3), weight_of(7));
        assert_eq!(hinted_weight(0, 100), 15);
    }
}
