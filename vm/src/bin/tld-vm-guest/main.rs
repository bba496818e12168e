//! Runs inside the VM (started by its `/init`): the tests of `scx_tld` under a kernel with
//! sched_ext, and the kernel tests of `tests/tests/`. Every outcome is a `TLDVM RESULT` line on
//! the console (see `tld_vm::console`), which the host reads.
//!
//! ```text
//! tld-vm-guest suite [--only GROUPS]  every test, or the groups named (comma-separated):
//!                       kernel, bench, hints, c-library, latency, lifecycle, exec,
//!                       starvation, preemption, nice, error-exit
//! tld-vm-guest demo     the latency measurements only (a sleeping thread, the tokio server),
//!                       for `make demo-sched`
//! tld-vm-guest app      (internal) the application process of the lifecycle tests
//! tld-vm-guest fork-exec  (internal) the fork-and-exec role
//! ```

mod bounds;
mod c_library;
mod hints;
mod kernel_tests;
mod latency;
mod lifecycle;
mod sched;
mod server;

use std::sync::atomic::Ordering;
use std::time::Duration;

use tld_vm::console::PREFIX;
use tld_vm::guest::report;

// This program's hints are exactly the scheduler's: name the crate so that they are linked in.
use tld_sched_hints as _;

use sched::Sched;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let code = match mode.as_str() {
        "suite" => {
            let args: Vec<String> = std::env::args().collect();
            let only = args
                .iter()
                .position(|a| a == "--only")
                .and_then(|i| args.get(i + 1))
                .map(|g| g.split(',').map(str::to_string).collect());
            suite(&Groups(only));
            0
        }
        "demo" => {
            demo();
            0
        }
        "app" => lifecycle::app_main(),
        "fork-exec" => lifecycle::fork_exec_main(),
        "exec-launcher" => lifecycle::exec_launcher_main(),
        _ => {
            eprintln!("usage: tld-vm-guest suite|demo");
            2
        }
    };
    std::process::exit(code);
}

/// Checks that the kernel can run the scheduler at all.
fn environment() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let state = sched::state();
    let ok = state == "disabled";
    report(
        "environment",
        ok,
        &format!(
            "Linux {} with {cpus} CPUs; sched_ext state before any scheduler: {state}",
            release.trim()
        ),
    );
    ok
}

/// The groups of tests to run: all, or those named.
pub struct Groups(Option<Vec<String>>);

impl Groups {
    fn has(&self, group: &str) -> bool {
        self.0.as_ref().is_none_or(|g| g.iter().any(|n| n == group))
    }
}

fn suite(groups: &Groups) {
    if environment() {
        if groups.has("kernel") {
            kernel_tests::run_all("/tests");
        }
        if groups.has("bench") {
            bench_vm();
        }
        // Every attach and detach flips static keys, which the kernel patches into its code
        // while the other CPU runs; under emulation that is where a guest can crash (see
        // tld_vm::qemu), so the suite attaches and detaches no more often than its tests need.
        match Sched::start(&[]) {
            Ok(sched) => scheduler_tests(sched, groups),
            Err(e) => report("scheduler/attach", false, &e),
        }
        let (stopped, clean) = (
            sched::STOPPED.load(Ordering::Relaxed),
            sched::CLEAN.load(Ordering::Relaxed),
        );
        report(
            "scheduler/never-errored",
            stopped > 0 && stopped == clean,
            &format!(
                "{clean}/{stopped} scx_tld runs stopped by SIGINT or SIGTERM detached cleanly \
                 with exit code 0; the kernel ejected none (but the error-exit test's, on purpose)"
            ),
        );
    }
    println!("{PREFIX} DONE");
}

/// Every test that needs the scheduler, which they take turns restarting.
fn scheduler_tests(mut sched: Sched, groups: &Groups) {
    attached(&sched);
    if groups.has("hints") {
        hints::per_thread();
        hints::changes();
    }
    if groups.has("c-library") {
        sched = match c_library::kernel_c_library(sched) {
            Ok(s) => s,
            Err(e) => return report("c-library/after-restart", false, &e),
        };
    }
    if groups.has("preemption") {
        bounds::targeted_preemption(&mut sched);
    }
    if groups.has("nice") {
        bounds::nice(&mut sched);
    }
    if groups.has("exec") {
        lifecycle::exec_clears(&mut sched);
    }
    if groups.has("starvation") {
        bounds::starvation(&mut sched);
    }
    if groups.has("latency") {
        sched = match latency::measure(sched, latency::Mode::Test) {
            Ok((measured, sched)) => {
                latency::report_all(&measured, latency::Mode::Test);
                sched
            }
            Err(e) => return report("latency", false, &e),
        };
    }
    if groups.has("lifecycle") {
        sched = match lifecycle::app_first_and_restart(sched) {
            Ok(s) => s,
            Err(e) => return report("lifecycle", false, &e),
        };
        lifecycle::churn(&mut sched);
        lifecycle::fork_exec(&mut sched);
    }
    if groups.has("error-exit") {
        error_exit_reported(sched);
    } else {
        sched.stop(libc::SIGINT);
    }
}

/// The benchmarks that only run here (`tld-bench-vm`: registration with the guard), before
/// any scheduler runs: its figures go to the host for the performance report. The test is that
/// it measured, not what it measured (a benchmark's goal is the report's).
fn bench_vm() {
    let out = std::process::Command::new("/bin/tld-bench-vm").output();
    let (passed, details) = match out {
        Err(e) => (false, format!("starting /bin/tld-bench-vm: {e}")),
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut n = 0;
            for (name, value) in stdout.lines().filter_map(|l| l.split_once(' ')) {
                if let Ok(v) = value.trim().parse::<f64>() {
                    tld_vm::guest::figure(name, v);
                    n += 1;
                }
            }
            let said = String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', "; ");
            (
                out.status.success() && n > 0,
                format!("exit {}, {n} figures: {said}", out.status),
            )
        }
    };
    report("bench/guard-registration", passed, &details);
}

/// The scheduler attached: state `enabled`, and its ops name. (Detaching cleanly is checked
/// where the tests stop it: SIGINT before the latency control, SIGTERM in the restart test.)
fn attached(sched: &Sched) {
    let state = sched::state();
    let ops = sched::ops_name().unwrap_or_default();
    // This kernel runs the guard, so `--guard=auto` (the default) must have turned it on. The
    // loader prints its start line just after the kernel enables it.
    sched::wait_log(sched, "attached as", Duration::from_secs(10));
    let log = sched.log_text();
    let guard = log
        .split("; ")
        .find(|part| part.starts_with("guard "))
        .unwrap_or("no guard in its output")
        .to_string();
    report(
        "scheduler/attach",
        state == "enabled" && ops.starts_with("tld_") && guard.starts_with("guard on"),
        &format!("{}: state {state}, ops {ops}, {guard}", sched.args),
    );
}

/// When the kernel ejects the scheduler (here: SysRq-S, which switches every task back to the
/// fair class), the loader notices, prints scx's exit information and exits non-zero.
fn error_exit_reported(sched: Sched) {
    let trigger = std::fs::write("/proc/sysrq-trigger", "S");
    let exited = sched.wait_exit(Duration::from_secs(30));
    let disabled = sched::wait_state("disabled", Duration::from_secs(10));
    let (passed, details) = match (&trigger, &exited) {
        (Err(e), _) => (false, format!("writing /proc/sysrq-trigger: {e}")),
        (Ok(()), None) => (false, "still running 30 s after SysRq-S".to_string()),
        (Ok(()), Some(s)) => {
            let exit_line = s
                .log
                .lines()
                .find(|l| l.contains("EXIT:"))
                .unwrap_or("no EXIT line")
                .trim()
                .to_string();
            (
                !s.status.success() && exit_line.contains("EXIT:") && disabled,
                format!(
                    "after SysRq-S: exit {}, reported {exit_line:?}, state disabled: {disabled}",
                    s.status
                ),
            )
        }
    };
    report("scheduler/error-exit-reported", passed, &details);
}

/// `make demo-sched`: the latency cases only (with the tokio server's).
fn demo() {
    if environment() {
        match Sched::start(&[]) {
            Ok(sched) => match latency::measure(sched, latency::Mode::Demo) {
                Ok((measured, sched)) => {
                    latency::report_all(&measured, latency::Mode::Demo);
                    sched.stop(libc::SIGINT);
                }
                Err(e) => report("latency", false, &e),
            },
            Err(e) => report("scheduler/start", false, &e),
        }
    }
    println!("{PREFIX} DONE");
}
