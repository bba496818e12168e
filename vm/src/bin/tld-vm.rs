//! `tld-vm`: runs scx_tld and the kernel tests in a VM whose kernel has sched_ext.
//!
//! ```text
//! tld-vm test [--only GROUPS]  the VM suite (make vm-test); GROUPS, comma-separated, runs a
//!                              subset: kernel, bench, hints, c-library, latency,
//!                              lifecycle, starvation, preemption, nice, exec, error-exit
//! tld-vm demo                  the latency table: what the hints change (make demo-sched)
//! tld-vm kernel [--refresh]    fetch (or find in the cache) the kernel and print its path
//! tld-vm sources               fetch (or find in the cache) the kernel's task local data
//!                              selftests and print their directory
//! ```
//!
//! Environment: `TLD_REQUIRE_BPF=1` turns a missing capability (qemu, cpio, busybox, the kernel
//! package) into a failure instead of a skip; `TLD_VM_KERNEL` pins the kernel package,
//! `TLD_VM_DEBIAN_MIRROR` the mirror, `TLD_VM_CACHE` the cache directory, `TLD_VM_ACCEL`
//! (`kvm` or `tcg`) the accelerator, `TLD_VM_TIMEOUT` the guest's timeout in seconds (every
//! wait inside the guest ends before it), `TLD_VM_CPUS` the scheduler tests' CPUs (4),
//! `TLD_VM_LATENCY_CPUS` the latency cases' (the host's CPUs, 2 to 4), `TLD_VM_TCG_THREADS=multi`
//! one host thread per vCPU for the scheduler tests too, `TLD_LINUX_SOURCE` the source package
//! of the selftests.
//!
//! Both write the figures the guest measured for the performance report to the cache
//! directory, a file per group, where `tld-bench-report` finds them: `p7.txt` (the latency
//! cases) and `p4g.txt` (registration with the guard, from `tld-bench-vm`).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tld_vm::console::{markdown_table, tail, Report, PREFIX};
use tld_vm::initramfs::Initramfs;
use tld_vm::{artifacts, cache_dir, kernel, qemu, required, workspace_dir, Error, Result};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let start = Instant::now();
    let only = match args.iter().position(|a| a == "--only") {
        Some(i) => match args.get(i + 1) {
            Some(groups) => Some(groups.clone()),
            None => {
                eprintln!("tld-vm: --only needs a comma-separated list of groups");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let outcome = match args.first().map(String::as_str) {
        Some("test") => suite(Mode::Test, only.as_deref()),
        Some("demo") => suite(Mode::Demo, None),
        Some("kernel") => {
            kernel::obtain(&cache_dir(), args.iter().any(|a| a == "--refresh")).map(|k| {
                println!("{} {}", k.package, k.vmlinuz.display());
                true
            })
        }
        Some("sources") => tld_upstream::selftests(&cache_dir())
            .map_err(Error::from)
            .map(|s| {
                println!("{} {}", s.package, s.dir.display());
                true
            }),
        _ => {
            eprintln!("usage: tld-vm test [--only GROUPS] | demo | kernel [--refresh] | sources");
            return ExitCode::from(2);
        }
    };
    let took = start.elapsed().as_secs_f64();
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            println!("tld-vm: FAILED after {took:.0} s");
            ExitCode::FAILURE
        }
        Err(Error::Unavailable(why)) if !required() => {
            println!(
                "SKIPPED VM suite: {why}\n(set TLD_REQUIRE_BPF=1 to make this a failure; `make \
                 deps` installs what the VM needs)"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let required = if matches!(e, Error::Unavailable(_)) {
                " (TLD_REQUIRE_BPF=1: a missing capability is a failure)"
            } else {
                ""
            };
            println!("tld-vm: FAILED after {took:.0} s: {e}{required}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Test,
    Demo,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The guest's `/init`: mounts what the programs need, runs the guest program, powers off.
/// `deadline` is the guest uptime, in seconds, by which every test must have ended: the guest
/// programs bound their own waits by it, so that they report rather than get killed.
fn init_script(command: &str, deadline: u64) -> String {
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
ip link set lo up  # loopback, for the tokio server test
export PATH=/bin HOME=/tmp TLD_REQUIRE_BPF=1 TLD_WATCH_INTERVAL_MS=100 RUST_BACKTRACE=1
export TLD_VM_DEADLINE={deadline}
cd /tmp
echo "TLDVM BOOTED $(uname -r)"
{command}
echo "TLDVM EXIT $?"
poweroff -f
"#
    )
}

/// The host's 1-minute load average, from `/proc/loadavg`.
fn host_load() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Samples the host's load average every 5 s while a guest runs: how disturbed the host was.
struct LoadSampler {
    samples: Arc<Mutex<Vec<f64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoadSampler {
    fn start() -> LoadSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&samples), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut last = Instant::now() - Duration::from_secs(5);
            while !st.load(Ordering::Relaxed) {
                if last.elapsed() >= Duration::from_secs(5) {
                    if let Some(l) = host_load() {
                        s.lock().unwrap().push(l);
                    }
                    last = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        LoadSampler {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// (min, mean, max) of the samples.
    fn finish(mut self) -> Option<(f64, f64, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let v = self.samples.lock().unwrap().clone();
        if v.is_empty() {
            return None;
        }
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        Some((min, v.iter().sum::<f64>() / v.len() as f64, max))
    }
}

fn suite(mode: Mode, only: Option<&str>) -> Result<bool> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)
        .map_err(|e| Error::Failed(format!("{}: {e}", cache.display())))?;
    // Capabilities first, before minutes of building.
    Initramfs::new(&cache.join("probe"))?;
    if !qemu_present() {
        return Err(Error::Unavailable(format!(
            "{} is not installed (`make deps` installs Debian's qemu-system-x86)",
            qemu::QEMU
        )));
    }
    let started = Instant::now();
    let kernel = kernel::obtain(&cache, false)?;
    println!(
        "tld-vm: kernel {} ({:.1} s to fetch or find in {})",
        kernel.package,
        started.elapsed().as_secs_f64(),
        cache.display()
    );

    let built = Instant::now();
    let with_kernel_tests =
        mode == Mode::Test && only.is_none_or(|g| g.split(',').any(|g| g == "kernel"));
    let art = artifacts::build(&workspace_dir(), with_kernel_tests)?;
    println!(
        "tld-vm: guest programs built in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    let mut fs = Initramfs::new(&cache.join("initramfs"))?;
    fs.add_program(&art.scheduler, "bin/scx_tld")?;
    fs.add_program(&art.guest, "bin/tld-vm-guest")?;
    fs.add_program(&art.other_layout, "bin/tld-vm-other-layout")?;
    fs.add_program(&art.tokio_server, "bin/tokio_server")?;
    fs.add_program(&art.bench_vm, "bin/tld-bench-vm")?;
    match &art.kernel_c_app {
        Ok(app) => fs.add_program(app, "bin/tld-kernel-c-app")?,
        Err(e) if tld_vm::required() => {
            return Err(Error::Failed(format!(
                "TLD_REQUIRE_BPF=1, but the application on the kernel's C library was not \
                 built: {e}"
            )))
        }
        Err(e) => println!(
            "tld-vm: SKIPPED the scheduler's test with the kernel's C library (not built: {e}); \
             set TLD_REQUIRE_BPF=1 to fail"
        ),
    }
    for (name, path) in &art.kernel_tests {
        fs.add_program(path, &format!("tests/{name}"))?;
    }

    // A boot takes 2 to 3 minutes on a quiet host, up to 10 beside a large build.
    let timeout = Duration::from_secs(env_u64("TLD_VM_TIMEOUT", 900));
    let mut all = Report::default();
    let mut ok = true;
    let mut flaky = 0;
    for run in plan(mode, only) {
        let initrd = cache.join(format!("{}.cpio", run.label));
        // The guest's own deadline leaves it time to report, power off and be read.
        let deadline = timeout.as_secs().saturating_sub(30).max(30);
        fs.add_file("init", &init_script(&run.command, deadline), true)?;
        fs.pack(&initrd)?;
        let boot = qemu::Boot {
            kernel: kernel.vmlinuz.clone(),
            initrd,
            append: qemu::default_append(),
            cpus: run.cpus,
            memory_mib: 2048,
            timeout,
            console: cache.join(format!("console-{}.log", run.label)),
            tcg_single_thread: run.tcg_single_thread,
        };
        println!(
            "\ntld-vm: guest '{}' ({}): booting {} with {} vCPUs (timeout {} s); console: {}",
            run.label,
            run.what,
            kernel.package,
            boot.cpus,
            timeout.as_secs(),
            boot.console.display()
        );
        let guest = run_guest(&boot, &cache)?;
        flaky += guest.flaky;
        ok &= guest.ok;
        if !guest.report.rows.is_empty() {
            let table = markdown_table(&guest.report.rows);
            println!("\nWake-up delay of a thread sleeping 1 ms (measured in the VM):\n\n{table}");
            let file = cache.join("latency.md");
            let _ = std::fs::write(
                &file,
                format!(
                    "Kernel {}, {} vCPUs, {} acceleration.\n\n{table}",
                    kernel.package,
                    boot.cpus,
                    guest.accel.name()
                ),
            );
            println!("(also written to {})\n", file.display());
            if mode == Mode::Demo {
                println!(
                    "Each row: one thread sleeps 1 ms, 50 times per round over 4 to 8 rounds, \
                     and measures how late it got the CPU\nafter its timer fired; CPU-bound threads without hints keep every \
                     vCPU busy. With\nLATENCY.set(LatencyHint::interactive(500)) (a plain store \
                     in the thread's page), scx_tld\npreempts the CPU it runs on for it: it \
                     waits about as long as on an idle VM.\nWithout the hint, or under scx_tld \
                     --no-hints, it waits for a hog's 20 ms slice to end.\n"
                );
            }
        }
        if let Some(line) = p7_verdict(&guest.report.figures) {
            println!("{line}\n");
        }
        // Each group of figures (the name's prefix: p7, p4g) goes to a file of its own.
        let mut groups: Vec<&str> = guest
            .report
            .figures
            .iter()
            .map(|(name, _)| figure_group(name))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        for group in groups {
            let file = cache.join(format!("{group}.txt"));
            let mut text = format!(
                "kernel {}\nvcpus {}\naccel {}\nhost_load {}\nwhen_unix {}\n",
                kernel.package,
                boot.cpus,
                guest.accel.name(),
                guest.load.map_or(f64::NAN, |l| l.1),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            );
            for (name, value) in &guest.report.figures {
                if figure_group(name) == group {
                    text.push_str(&format!("{name} {value}\n"));
                }
            }
            if std::fs::write(&file, text).is_ok() {
                println!(
                    "(figures {group}_* of the performance report are in {})\n",
                    file.display()
                );
            }
        }
        all.results.extend(guest.report.results);
    }
    Ok(print_results(&all, mode, flaky) && ok)
}

/// The group of figure `name`: its prefix up to the first `_` (`p7`, `p4g`).
fn figure_group(name: &str) -> &str {
    name.split('_').next().unwrap_or(name)
}

/// P7's verdict, from the figures the guest measured: the strict goals of the performance
/// report (the suite's own checks, with a margin for a busy host, are its PASS/FAIL lines).
fn p7_verdict(figures: &[(String, String)]) -> Option<String> {
    let get = |name: &str| {
        figures
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.parse::<f64>().ok())
    };
    let (unhinted, control, idle) = (
        get("p7_vs_unhinted")?,
        get("p7_vs_control")?,
        get("p7_vs_idle")?,
    );
    let met = unhinted >= 20.0 && control >= 20.0 && idle <= 2.0;
    Some(format!(
        "P7 (the performance report's strict goals, over every sample): no hint {unhinted:.1}x \
         and control {control:.1}x the hinted p50 (goal >= 20x), hinted {idle:.2}x idle (goal \
         <= 2x): {}",
        if met {
            "met"
        } else {
            "MISSED (on a busy host these are the host's figures; see docs/scheduling.md)"
        }
    ))
}

/// One boot of the guest.
struct GuestRun {
    /// Names its console and initramfs.
    label: &'static str,
    what: &'static str,
    cpus: u32,
    command: String,
    /// Under TCG, every vCPU on one host thread (see `qemu::Boot::tcg_single_thread`).
    tcg_single_thread: bool,
}

/// The groups of the guest suite that run in the latency boot.
const LATENCY_GROUPS: [&str; 1] = ["latency"];

/// The boots a mode needs. The scheduler's tests run with `TLD_VM_CPUS` vCPUs (4), enough for
/// a preemption to have a choice of victims, all on one host thread under TCG (they count and
/// compare CPU time, which does not need the host's parallelism, and a single thread cannot
/// crash with the emulator's int3 when a scheduler attaches; `TLD_VM_TCG_THREADS=multi` gives
/// each vCPU a thread). The wake-up latency cases run in a boot of their
/// own with `TLD_VM_LATENCY_CPUS` vCPUs, by default as many as the host has CPUs (2 to 4):
/// with more busy vCPUs than host CPUs, the host deschedules vCPUs for milliseconds, and a
/// thread's wake-up waits for its vCPU to get a host CPU back, whatever the guest's
/// scheduler does; the figure would measure the host.
fn plan(mode: Mode, only: Option<&str>) -> Vec<GuestRun> {
    let cpus = env_u64("TLD_VM_CPUS", 4) as u32;
    let host = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let latency_cpus = env_u64("TLD_VM_LATENCY_CPUS", host.clamp(2, 4)) as u32;
    let latency = GuestRun {
        label: "latency",
        what: "the wake-up latency cases and the tokio server",
        cpus: latency_cpus,
        tcg_single_thread: false,
        command: match mode {
            Mode::Test => "/bin/tld-vm-guest suite --only latency".to_string(),
            Mode::Demo => "/bin/tld-vm-guest demo".to_string(),
        },
    };
    if mode == Mode::Demo {
        return vec![latency];
    }
    let groups: Vec<&str> = match only {
        Some(g) => g.split(',').collect(),
        None => GROUPS.to_vec(),
    };
    let main: Vec<&str> = groups
        .iter()
        .copied()
        .filter(|g| !LATENCY_GROUPS.contains(g))
        .collect();
    let mut runs = Vec::new();
    if !main.is_empty() {
        runs.push(GuestRun {
            label: "suite",
            what: "the kernel tests and the scheduler's tests",
            cpus,
            tcg_single_thread: std::env::var("TLD_VM_TCG_THREADS").as_deref() != Ok("multi"),
            command: format!("/bin/tld-vm-guest suite --only {}", main.join(",")),
        });
    }
    if groups.iter().any(|g| LATENCY_GROUPS.contains(g)) {
        runs.push(latency);
    }
    runs
}

/// Every group of the guest suite (`tld-vm-guest suite --only`).
const GROUPS: [&str; 11] = [
    "kernel",
    "bench",
    "hints",
    "c-library",
    "preemption",
    "nice",
    "exec",
    "starvation",
    "latency",
    "lifecycle",
    "error-exit",
];

/// How one boot went.
struct Guest {
    report: Report,
    accel: qemu::Accel,
    /// Runs repeated after the emulator's known crash.
    flaky: usize,
    /// Whether the guest ran to its end, without a crash or a timeout.
    ok: bool,
    /// The host's load average while it ran: (min, mean, max).
    load: Option<(f64, f64, f64)>,
}

/// Boots `boot`, repeating the run after the emulator's known crash (twice at most), and
/// reads its console.
fn run_guest(boot: &qemu::Boot, cache: &std::path::Path) -> Result<Guest> {
    // Under TCG the guest kernel can crash where it patches its own code (see
    // `qemu::Crash::is_known_emulator_crash`): such a run is repeated, MAX_FLAKY times at most,
    // and reported as flaky. Any other crash fails the suite at once.
    const MAX_FLAKY: u32 = 2;
    let mut flaky = Vec::new();
    let load_before = host_load();
    let sampler = LoadSampler::start();
    let mut outcome = qemu::run(boot)?;
    static KVM_SAID: AtomicBool = AtomicBool::new(false);
    if let Some(why) = &outcome.kvm_failure {
        if !KVM_SAID.swap(true, Ordering::Relaxed) {
            println!("tld-vm: KVM is not usable here ({why}); the guest runs under TCG emulation");
        }
    }
    let mut crashed = None;
    while let Some(crash) = qemu::kernel_crash(&outcome.console) {
        let booted = outcome.console.contains(&format!("{PREFIX} BOOTED"));
        if !crash.is_known_emulator_crash(outcome.accel) || flaky.len() as u32 >= MAX_FLAKY {
            println!(
                "tld-vm: the guest kernel crashed ({}) after {:.1} s, {}; last lines of the \
                 console:\n{}",
                crash.line,
                outcome.elapsed.as_secs_f64(),
                if booted {
                    "after the guest's init started"
                } else {
                    "while booting"
                },
                tail(&outcome.console, 40)
            );
            crashed = Some(crash.line);
            break;
        }
        println!(
            "FLAKY guest: the guest kernel crashed with the emulator's known int3 after {:.1} s \
             ({}), {}: under TCG a vCPU can run a stale translation of kernel code just patched \
             {}; running the guest again (console kept in console-crashed.log). Last lines:\n{}",
            outcome.elapsed.as_secs_f64(),
            crash.line,
            if booted {
                "after the guest's init started"
            } else {
                "while booting"
            },
            if booted {
                "at a scheduler's attach or detach"
            } else {
                "at boot"
            },
            tail(&outcome.console, 15)
        );
        flaky.push(crash.line);
        let _ = std::fs::rename(&boot.console, cache.join("console-crashed.log"));
        outcome = qemu::run(boot)?;
    }
    let load = sampler.finish();
    let load_text = match (load_before, load) {
        (Some(b), Some((min, mean, max))) => format!(
            "{b:.2} when it started; {min:.2} to {max:.2} (mean {mean:.2}) while the guest ran"
        ),
        (Some(b), None) => format!("{b:.2} when it started"),
        _ => "unknown".to_string(),
    };
    println!(
        "tld-vm: the guest ran for {:.1} s under {} with {} vCPUs; the host's load average \
         (1 min, {} CPUs): {load_text}",
        outcome.elapsed.as_secs_f64(),
        outcome.accel.name(),
        boot.cpus,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let report = Report::parse(&outcome.console);
    let mut ok = true;
    let timeout = boot.timeout;
    if let Some(line) = &crashed {
        ok = false;
        println!("FAIL guest: the guest kernel crashed ({line})");
    } else if outcome.timed_out || !report.done {
        ok = false;
        println!(
            "FAIL guest: {}; last lines of the console:\n{}",
            if outcome.timed_out {
                format!("timed out after {} s and was killed", timeout.as_secs())
            } else {
                "stopped before the end".to_string()
            },
            tail(&outcome.console, 60)
        );
    }
    if !flaky.is_empty() {
        println!(
            "tld-vm: FLAKY: {} run(s) of the guest crashed with the emulator's known int3 and \
             were repeated: {}",
            flaky.len(),
            flaky.join("; ")
        );
    }
    Ok(Guest {
        report,
        accel: outcome.accel,
        flaky: flaky.len(),
        ok,
        load,
    })
}

fn qemu_present() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(qemu::QEMU).is_file()))
}

/// Prints every result and the closing count; returns whether all passed.
fn print_results(report: &Report, mode: Mode, flaky: usize) -> bool {
    for r in &report.results {
        println!(
            "{} {}: {}",
            if r.passed { "PASS" } else { "FAIL" },
            r.name,
            r.details
        );
    }
    let (passed, failed) = report.counts();
    println!(
        "\n{}{}:",
        match mode {
            Mode::Test => "VM suite",
            Mode::Demo => "VM demo",
        },
        if flaky > 0 {
            format!(" ({flaky} flaky guest crash(es) repeated)")
        } else {
            String::new()
        }
    );
    println!("{passed} passed, {failed} failed");
    failed == 0 && passed > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p7_verdict_judges_the_strict_goals() {
        let figures = |u: &str, c: &str, i: &str| {
            vec![
                ("p7_vs_unhinted".to_string(), u.to_string()),
                ("p7_vs_control".to_string(), c.to_string()),
                ("p7_vs_idle".to_string(), i.to_string()),
            ]
        };
        assert!(p7_verdict(&figures("56.9", "45.4", "1.0"))
            .unwrap()
            .ends_with(": met"));
        assert!(p7_verdict(&figures("7.3", "7.3", "8.6"))
            .unwrap()
            .contains("MISSED"));
        assert_eq!(p7_verdict(&[]), None);
    }

    #[test]
    fn the_latency_cases_get_a_boot_of_their_own() {
        let runs = plan(Mode::Test, None);
        assert_eq!(runs.len(), 2);
        assert!(!runs[0].command.contains("latency") && runs[0].tcg_single_thread);
        assert!(runs[1].command.ends_with("--only latency") && !runs[1].tcg_single_thread);
        let only = plan(Mode::Test, Some("nice,exec"));
        assert_eq!(only.len(), 1);
        assert!(only[0].command.ends_with("--only nice,exec"));
        assert_eq!(plan(Mode::Demo, None)[0].command, "/bin/tld-vm-guest demo");
    }
}
