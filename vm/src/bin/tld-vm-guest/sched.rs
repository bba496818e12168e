//! Starting and stopping `scx_tld` inside the guest, and what the kernel says about it.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tld_vm::guest::{bounded, RECORDS_PIN};

/// Where the scheduler binary is in the guest.
pub const SCX_TLD: &str = "/bin/scx_tld";

/// A running `scx_tld`.
pub struct Sched {
    child: Child,
    log: PathBuf,
    /// Its arguments, for messages.
    pub args: String,
}

/// How a scheduler run ended.
pub struct Stopped {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed.
    pub log: String,
}

impl Stopped {
    /// Exited with 0 after detaching itself: not ejected by the kernel for an error.
    pub fn clean(&self) -> bool {
        self.status.success() && self.log.contains("unregistered from user space")
    }
}

/// The kernel's sched_ext state: `enabled`, `disabled`, ...
pub fn state() -> String {
    fs::read_to_string("/sys/kernel/sched_ext/state")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "missing".into())
}

/// The running scheduler's name, if one runs.
pub fn ops_name() -> Option<String> {
    fs::read_to_string("/sys/kernel/sched_ext/root/ops")
        .ok()
        .map(|s| s.trim().to_string())
}

static RUNS: AtomicU32 = AtomicU32::new(0);

/// Every scheduler run's outcome so far: (runs, clean exits).
pub static CLEAN: AtomicU32 = AtomicU32::new(0);
/// Runs stopped so far.
pub static STOPPED: AtomicU32 = AtomicU32::new(0);

impl Sched {
    /// Starts `scx_tld` with `extra` arguments and waits until the kernel reports it enabled.
    pub fn start(extra: &[&str]) -> Result<Sched, String> {
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let log = PathBuf::from(format!("/tmp/scx_tld.{n}.log"));
        let out = fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut args = vec!["--stats", "0", "--pin-records", RECORDS_PIN];
        args.extend_from_slice(extra);
        let child = Command::new(SCX_TLD)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {SCX_TLD}: {e}"))?;
        let mut sched = Sched {
            child,
            log,
            args: args.join(" "),
        };
        let start = Instant::now();
        // Loading takes a few seconds under emulation (BTF, the verifier).
        let limit = bounded(Duration::from_secs(90));
        while start.elapsed() < limit {
            if let Ok(Some(status)) = sched.child.try_wait() {
                return Err(format!(
                    "scx_tld {} exited with {status} before attaching:\n{}",
                    sched.args,
                    sched.log_text()
                ));
            }
            if state() == "enabled" && std::path::Path::new(RECORDS_PIN).exists() {
                return Ok(sched);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let args = sched.args.clone();
        let stopped = sched.stop(libc::SIGKILL);
        Err(format!(
            "scx_tld {args} did not attach within {} s (state {}):\n{}",
            limit.as_secs(),
            state(),
            stopped.log
        ))
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it printed so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and waits (30 s at most, then SIGKILL) for it to exit.
    pub fn stop(mut self, signal: i32) -> Stopped {
        // SAFETY: kill takes a pid and a signal number and touches no memory of ours.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let start = Instant::now();
        let limit = bounded(Duration::from_secs(30));
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            if start.elapsed() > limit {
                if limit < Duration::from_secs(30) {
                    println!(
                        "scx_tld {}: the guest's deadline is {} s away: killing it",
                        self.args,
                        limit.as_secs()
                    );
                }
                let _ = self.child.kill();
                break self.child.wait().expect("wait for scx_tld");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stopped = Stopped {
            status,
            log: self.log_text(),
        };
        STOPPED.fetch_add(1, Ordering::Relaxed);
        if stopped.clean() {
            CLEAN.fetch_add(1, Ordering::Relaxed);
        } else {
            println!(
                "scx_tld {} did not exit cleanly ({}):\n{}",
                self.args, stopped.status, stopped.log
            );
        }
        stopped
    }
}

impl Sched {
    /// Waits up to `timeout` for it to exit by itself (after the kernel ejected it), without
    /// signalling it; `None` if it is still running then (it is killed). Not counted among the
    /// stops of [`CLEAN`] and [`STOPPED`].
    pub fn wait_exit(mut self, timeout: Duration) -> Option<Stopped> {
        let start = Instant::now();
        let timeout = bounded(timeout);
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(Stopped {
                    status,
                    log: self.log_text(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

/// Waits up to `timeout` for the scheduler's output to contain `text`.
pub fn wait_log(sched: &Sched, text: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    let timeout = bounded(timeout);
    loop {
        if sched.log_text().contains(text) {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `timeout` for `state()` to become `want`.
pub fn wait_state(want: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    let timeout = bounded(timeout);
    while start.elapsed() < timeout {
        if state() == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    state() == want
}
