//! P4 with the guard: what the guard adds to registering a thread, measured where the guard
//! runs (the VM's Linux 7.x; the host refuses `fexit` programs).
//!
//! Two maps of the same 24-byte value, in one process: the guarded object's `tld_data_map`,
//! with the real guard attached (`tld_guard::Guard`, its event map pinned where this process's
//! runtime looks), and the plain benchmark object's. Rounds alternate between them: the
//! runtime connects to one map, then fresh threads register in it one after another
//! (`thread_init()`, timed in each thread), and the next round does the other map first. A
//! registration in the guarded map pays the guard's `fexit` program (the stamp) and the
//! runtime's check that the stamp is there; one in the plain map pays the guard's program up
//! to its map check, which returns at once.

use std::os::fd::AsFd;
use std::time::Duration;

use crate::bpf::{Bench, BenchGuard};
use crate::measure::{mean, median, percentile};
use crate::registration::{prepare_task_storage, time_ours};

/// The goal: registration with the guard costs at most this many times as much.
pub const GOAL: f64 = 1.10;

/// The figures, in µs per registration.
#[derive(Clone, Debug)]
pub struct GuardCost {
    /// Registrations in the guarded map: mean, p50, p99.
    pub guarded: (f64, f64, f64),
    /// Registrations in the plain map: mean, p50, p99.
    pub plain: (f64, f64, f64),
    /// Registrations per map.
    pub samples: usize,
    /// Whether the guard's `lsm/bpf` program ran too.
    pub lsm: bool,
    /// The guard's counts at the end: stamped, spoofed.
    pub stamped: u64,
}

impl GuardCost {
    /// Guarded mean over plain mean.
    pub fn mean_ratio(&self) -> f64 {
        self.guarded.0 / self.plain.0
    }

    /// Guarded p50 over plain p50.
    pub fn p50_ratio(&self) -> f64 {
        self.guarded.1 / self.plain.1
    }

    /// The figures as `name value` pairs, for the VM runner (`p4g_*`).
    pub fn figures(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("p4g_guarded_mean_us", self.guarded.0),
            ("p4g_guarded_p50_us", self.guarded.1),
            ("p4g_guarded_p99_us", self.guarded.2),
            ("p4g_plain_mean_us", self.plain.0),
            ("p4g_plain_p50_us", self.plain.1),
            ("p4g_plain_p99_us", self.plain.2),
            ("p4g_mean_ratio", self.mean_ratio()),
            ("p4g_p50_ratio", self.p50_ratio()),
            ("p4g_samples", self.samples as f64),
            ("p4g_lsm", f64::from(u8::from(self.lsm))),
            ("p4g_stamped", self.stamped as f64),
        ]
    }
}

/// Measures. `Err` says why it cannot run here (the guard's probe, a load).
pub fn measure(quick: bool) -> Result<GuardCost, String> {
    tld_guard::probe().map_err(|e| format!("the guard cannot run here: {e}"))?;
    // This process's runtime looks for the guard's events here; set before its first use.
    let events = format!("/sys/fs/bpf/tld_bench_guard_events_{}", std::process::id());
    std::env::set_var(tld_runtime::GUARD_EVENTS_ENV, &events);
    let plain = Bench::load()?;
    let guarded = BenchGuard::load_enabled()?;
    let guard = tld_guard::Guard::attach(guarded.data_map(), guarded.key_map())
        .map_err(|e| format!("attaching the guard: {e}"))?;
    guard
        .pin_events(&events)
        .map_err(|e| format!("pinning the guard's events: {e}"))?;
    let result = rounds(plain, guarded, quick);
    let counts = guard.counts();
    let _ = std::fs::remove_file(&events);
    let (g, p) = result?;
    let stats = |mut v: Vec<f64>| (mean(&v), median(&mut v), percentile(&mut v, 0.99));
    Ok(GuardCost {
        samples: g.len(),
        guarded: stats(g),
        plain: stats(p),
        lsm: guard.lsm(),
        stamped: counts.stamped,
    })
}

/// The alternating rounds: each map's registration times, in µs.
fn rounds(
    plain: &'static Bench,
    guarded: &'static BenchGuard,
    quick: bool,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let (rounds, per_round) = if quick { (6, 20) } else { (20, 50) };
    let (mut g, mut p) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for side in 0..2 {
            let guarded_side = (round + side) % 2 == 0;
            if guarded_side {
                tld_runtime::connect(guarded.data_map())
            } else {
                tld_runtime::connect(plain.skel().maps.tld_data_map.as_fd())
            }
            .map_err(|e| format!("tld_runtime::connect: {e}"))?;
            for _ in 0..per_round {
                let t = fresh_thread(plain)?;
                let us = t.as_nanos() as f64 / 1000.0;
                if guarded_side {
                    g.push(us);
                } else {
                    p.push(us);
                }
            }
        }
    }
    Ok((g, p))
}

/// One fresh thread's `thread_init()`.
fn fresh_thread(plain: &'static Bench) -> Result<Duration, String> {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            prepare_task_storage(plain).map_err(|rc| format!("hint_value_map update: {rc}"))?;
            Ok(time_ours())
        })
        .map_err(|e| format!("spawning a thread: {e}"))?
        .join()
        .map_err(|_| "a registering thread panicked".to_string())?
}
