//! `tld-vm`: runs scx_tld and the kernel tests in a VM whose kernel has sched_ext.
//!
//! ```text
//! tld-vm test              the VM suite (make vm-test)
//! tld-vm demo              the latency table: what the hints change (make demo-sched)
//! tld-vm kernel [--refresh]  fetch (or find in the cache) the kernel and print its path
//! tld-vm sources           fetch (or find in the cache) the kernel's task local data
//!                          selftests and print their directory
//! ```
//!
//! Environment: `TLD_REQUIRE_BPF=1` turns a missing capability (qemu, cpio, busybox, the kernel
//! package) into a failure instead of a skip; `TLD_VM_KERNEL` pins the kernel package,
//! `TLD_VM_DEBIAN_MIRROR` the mirror, `TLD_VM_CACHE` the cache directory, `TLD_VM_ACCEL`
//! (`kvm` or `tcg`) the accelerator, `TLD_VM_TIMEOUT` the guest's timeout in seconds,
//! `TLD_VM_CPUS` its CPUs (2), `TLD_LINUX_SOURCE` the source package of the selftests.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tld_vm::console::{markdown_table, tail, Report, PREFIX};
use tld_vm::initramfs::Initramfs;
use tld_vm::{artifacts, cache_dir, kernel, qemu, required, workspace_dir, Error, Result};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let start = Instant::now();
    let outcome = match args.first().map(String::as_str) {
        Some("test") => suite(Mode::Test),
        Some("demo") => suite(Mode::Demo),
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
            eprintln!("usage: tld-vm test | demo | kernel [--refresh] | sources");
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
fn init_script(command: &str) -> String {
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
cd /tmp
echo "TLDVM BOOTED $(uname -r)"
{command}
echo "TLDVM EXIT $?"
poweroff -f
"#
    )
}

fn suite(mode: Mode) -> Result<bool> {
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
    let art = artifacts::build(&workspace_dir(), mode == Mode::Test)?;
    println!(
        "tld-vm: guest programs built in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    let initrd = cache.join(match mode {
        Mode::Test => "suite.cpio",
        Mode::Demo => "demo.cpio",
    });
    let mut fs = Initramfs::new(&cache.join("initramfs"))?;
    fs.add_program(&art.scheduler, "bin/scx_tld")?;
    fs.add_program(&art.guest, "bin/tld-vm-guest")?;
    fs.add_program(&art.other_layout, "bin/tld-vm-other-layout")?;
    fs.add_program(&art.tokio_server, "bin/tokio_server")?;
    for (name, path) in &art.kernel_tests {
        fs.add_program(path, &format!("tests/{name}"))?;
    }
    let command = match mode {
        Mode::Test => "/bin/tld-vm-guest suite",
        Mode::Demo => "/bin/tld-vm-guest demo",
    };
    fs.add_file("init", &init_script(command), true)?;
    fs.pack(&initrd)?;

    let timeout = Duration::from_secs(env_u64("TLD_VM_TIMEOUT", 480));
    let boot = qemu::Boot {
        kernel: kernel.vmlinuz.clone(),
        initrd,
        append: qemu::default_append(),
        cpus: env_u64("TLD_VM_CPUS", 2) as u32,
        memory_mib: 2048,
        timeout,
        console: cache.join("console.log"),
    };
    println!(
        "tld-vm: booting {} with {} vCPUs (timeout {} s); console: {}",
        kernel.package,
        boot.cpus,
        timeout.as_secs(),
        boot.console.display()
    );
    // Under TCG the guest kernel can crash where it patches its own code (see the README). A
    // crash after our init started gets another run, MAX_CRASHES_AFTER_BOOT of them at most;
    // one during boot, before any program of ours ran, cannot be ours and does not count (up to
    // MAX_BOOT_CRASHES of them).
    const MAX_CRASHES_AFTER_BOOT: u32 = 2;
    const MAX_BOOT_CRASHES: u32 = 2;
    let (mut crashes_after_boot, mut boot_crashes) = (0, 0);
    let mut outcome = qemu::run(&boot)?;
    while let Some(crash) = qemu::kernel_crash(&outcome.console) {
        let booted = outcome.console.contains(&format!("{PREFIX} BOOTED"));
        if booted {
            crashes_after_boot += 1;
        } else {
            boot_crashes += 1;
        }
        if crashes_after_boot > MAX_CRASHES_AFTER_BOOT || boot_crashes > MAX_BOOT_CRASHES {
            println!("FAIL guest: the guest kernel crashed again ({crash})");
            break;
        }
        println!(
            "tld-vm: the guest kernel crashed ({crash}) after {:.1} s, {}; last lines of the \
             console:\n{}\ntld-vm: under TCG this is most likely the emulator running a stale \
             translation of kernel code patched {}; running the guest again",
            outcome.elapsed.as_secs_f64(),
            if booted {
                "after the guest's init started"
            } else {
                "while booting, before any program of ours ran"
            },
            tail(&outcome.console, 25),
            if booted {
                "at attach or detach"
            } else {
                "at boot"
            }
        );
        let _ = std::fs::rename(&boot.console, cache.join("console-crashed.log"));
        outcome = qemu::run(&boot)?;
    }
    if let Some(why) = &outcome.kvm_failure {
        println!("tld-vm: KVM did not work here ({why}); used TCG");
    }
    println!(
        "tld-vm: the guest ran for {:.1} s under {}",
        outcome.elapsed.as_secs_f64(),
        outcome.accel.name()
    );

    let report = Report::parse(&outcome.console);
    let mut ok = true;
    if outcome.timed_out || !report.done {
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
    if !report.rows.is_empty() {
        let table = markdown_table(&report.rows);
        println!("\nWake-up delay of a thread sleeping 1 ms (measured in the VM):\n\n{table}");
        let file = cache.join("latency.md");
        let _ = std::fs::write(
            &file,
            format!(
                "Kernel {}, {} vCPUs, {} acceleration.\n\n{table}",
                kernel.package,
                boot.cpus,
                outcome.accel.name()
            ),
        );
        println!("(also written to {})\n", file.display());
        if mode == Mode::Demo {
            println!(
                "Each row: one thread sleeps 1 ms, 200 times, and measures how late it got the \
                 CPU\nafter its timer fired; CPU-bound threads without hints keep every vCPU busy. \
                 With\nLATENCY.set(LatencyHint::interactive(500)) (a plain store in the thread's \
                 page), scx_tld\nqueues it ahead of the hogs and preempts one: it waits about as \
                 long as on an idle VM.\nWithout the hint, or under scx_tld --no-hints, it waits \
                 for a hog's 20 ms slice to end.\n"
            );
        }
    }
    let hang = match mode {
        Mode::Test => Some(hung_guest_check(&kernel.vmlinuz, &cache)?),
        Mode::Demo => None,
    };
    Ok(print_results(&report, hang, mode) && ok)
}

fn qemu_present() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(qemu::QEMU).is_file()))
}

/// Prints every result and the closing count; returns whether all passed.
fn print_results(report: &Report, extra: Option<(bool, String)>, mode: Mode) -> bool {
    let mut results = report.results.clone();
    if let Some((passed, details)) = extra {
        results.push(tld_vm::console::TestResult {
            name: "runner/hung-guest-killed".into(),
            passed,
            details,
        });
    }
    for r in &results {
        println!(
            "{} {}: {}",
            if r.passed { "PASS" } else { "FAIL" },
            r.name,
            r.details
        );
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let failed = results.len() - passed;
    println!(
        "\n{}:",
        match mode {
            Mode::Test => "VM suite",
            Mode::Demo => "VM demo",
        }
    );
    println!("{passed} passed, {failed} failed");
    failed == 0 && passed > 0
}

/// Boots a guest that hangs, and checks that the runner kills it at the timeout and shows
/// the console's tail.
fn hung_guest_check(vmlinuz: &Path, cache: &Path) -> Result<(bool, String)> {
    let mut fs = Initramfs::new(&cache.join("initramfs-hang"))?;
    fs.add_file(
        "init",
        "#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n\
         echo TLDVM HANGING-NOW\nexec /bin/busybox sleep 100000\n",
        true,
    )?;
    let initrd = cache.join("hang.cpio");
    fs.pack(&initrd)?;
    let timeout = Duration::from_secs(env_u64("TLD_VM_HANG_TIMEOUT", 30));
    let outcome = qemu::run(&qemu::Boot {
        kernel: vmlinuz.to_path_buf(),
        initrd,
        append: qemu::default_append(),
        cpus: 1,
        memory_mib: 256,
        timeout,
        console: cache.join("hang-console.log"),
    })?;
    let shown = tail(&outcome.console, 3);
    let passed = outcome.timed_out && shown.contains("TLDVM HANGING-NOW");
    Ok((
        passed,
        format!(
            "a guest whose init sleeps forever was {} after {:.1} s (timeout {} s); console tail: {:?}",
            if outcome.timed_out { "killed" } else { "NOT killed" },
            outcome.elapsed.as_secs_f64(),
            timeout.as_secs(),
            shown
        ),
    ))
}
