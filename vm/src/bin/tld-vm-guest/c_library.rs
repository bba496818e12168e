//! An application on the kernel's own 7.x C library (`tests/c/kernel_library_sched_app.c`),
//! not on tld-runtime: the scheduler, built on tld's header with the guard on, reads the hints
//! its threads set, and reads them again after a restart (the pinned guard key keeps its
//! secret, and this application never registers again).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tld_sched_hints::LatencyHint;
use tld_vm::guest::{bounded, intf, report, Records, DATA_MAP_PIN};

use crate::hints::mismatch;
use crate::sched::{self, Sched};

/// Where the VM runner puts the application.
const APP: &str = "/bin/tld-kernel-c-app";

/// The application's threads.
const THREADS: usize = 32;

/// What thread `i` of the application sets (as the C source says).
fn hints_of(i: usize) -> (i32, LatencyHint) {
    let j = (i % 32) as u32;
    (
        j as i32 - 16,
        LatencyHint {
            budget_us: 1000 + 37 * j,
            class: (i % 3) as u32,
        },
    )
}

/// The running application: its pid and its threads' ids, in order.
struct App {
    child: Child,
    tids: Vec<i32>,
}

impl App {
    fn start() -> Result<App, String> {
        let mut child = Command::new(APP)
            .args([DATA_MAP_PIN, &THREADS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {APP}: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let tids: Vec<i32> = line
            .strip_prefix("TIDS")
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if read.is_err() || tids.len() != THREADS {
            let _ = child.kill();
            let status = child.wait();
            return Err(format!(
                "{APP} printed {line:?} instead of {THREADS} thread ids (exit {status:?})"
            ));
        }
        Ok(App { child, tids })
    }

    /// Waits until the scheduler's record of every thread shows what it set, at most `limit`;
    /// returns the threads that never did, with why, and how many were read on the fast path.
    fn wait_read(&self, records: &Records, limit: Duration) -> (Vec<String>, usize) {
        let start = Instant::now();
        let limit = bounded(limit);
        loop {
            let mut wrong = Vec::new();
            let mut fast = 0;
            for (i, &tid) in self.tids.iter().enumerate() {
                let (prio, lat) = hints_of(i);
                let rec = records.get(tid);
                if rec.is_some_and(|r| r.flags & intf::TLD_REC_FAST_PATH != 0) {
                    fast += 1;
                }
                if let Some(why) = mismatch(rec, self.child.id(), prio, lat) {
                    wrong.push(format!("thread {i} (tid {tid}): {why}"));
                }
            }
            if wrong.is_empty() || start.elapsed() > limit {
                return (wrong, fast);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Closes its standard input and waits for it; whether it exited with 0.
    fn quit(mut self) -> bool {
        drop(self.child.stdin.take());
        self.child.wait().is_ok_and(|s| s.success())
    }
}

/// The test. Takes the running scheduler and returns the one running at the end, or why none
/// runs.
pub fn kernel_c_library(sched: Sched) -> Result<Sched, String> {
    if !Path::new(APP).exists() {
        // The host could not build it, and said so (a failure under TLD_REQUIRE_BPF=1).
        println!("SKIPPED c-library: {APP} is not in this guest");
        return Ok(sched);
    }
    let guard_on = sched::wait_log(&sched, "guard on", Duration::from_secs(10));
    let app = match App::start() {
        Ok(app) => app,
        Err(e) => {
            report("c-library/read", false, &e);
            return Ok(sched);
        }
    };
    let first = Records::open().map(|r| app.wait_read(&r, Duration::from_secs(20)));
    let first_ok = first
        .as_ref()
        .is_ok_and(|(wrong, fast)| wrong.is_empty() && *fast == 0);
    report(
        "c-library/read",
        first_ok && guard_on,
        &format!(
            "{THREADS} threads of a C application on the kernel's 7.x library (its default \
             small blocks), guard {}: {}",
            if guard_on { "on" } else { "NOT on" },
            describe(&first)
        ),
    );

    // Restart while it runs: it never registers again, so its elements must still verify.
    let stopped = sched.stop(libc::SIGTERM);
    let disabled = sched::wait_state("disabled", Duration::from_secs(10));
    let sched = match Sched::start(&[]) {
        Ok(s) => s,
        Err(e) => {
            app.quit();
            return Err(e);
        }
    };
    let kept = sched::wait_log(
        &sched,
        "the pinned key's secret kept",
        Duration::from_secs(10),
    );
    let second = Records::open().map(|r| app.wait_read(&r, Duration::from_secs(20)));
    let second_ok = second.as_ref().is_ok_and(|(wrong, _)| wrong.is_empty());
    let quit = app.quit();
    report(
        "c-library/after-restart",
        stopped.clean() && disabled && kept && second_ok && quit,
        &format!(
            "after SIGTERM ({}) and a new start (guard key {}), without the application \
             registering again: {}; it exited cleanly: {quit}",
            stopped.status,
            if kept { "kept" } else { "NOT kept" },
            describe(&second)
        ),
    );
    Ok(sched)
}

fn describe(outcome: &Result<(Vec<String>, usize), String>) -> String {
    match outcome {
        Err(e) => e.clone(),
        Ok((wrong, fast)) if wrong.is_empty() => format!(
            "the scheduler's record of every thread equals what it set (priority, weight, \
             budget, class), {fast} read on the fast path (none expected: the library's pages \
             carry no fingerprint)"
        ),
        Ok((wrong, _)) => format!("{} of {THREADS} wrong: {}", wrong.len(), wrong.join("; ")),
    }
}
