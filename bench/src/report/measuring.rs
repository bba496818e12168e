//! The report's measurements: each row's figures, measured side by side in this process (P5 in
//! child processes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tld_bench_hints::{ALL, H00};

use super::setup;
use crate::bpf::{Bench, BenchGuard, Prog, ProgStats, Timed};
use crate::measure::{self, interleave, median, ns_per_call, slope, Comparison};
use crate::registration;
use crate::rust_side::{self, SyscallHint};

// ---------------------------------------------------------------------------------------------
// P1, P2: the Rust side.

pub(crate) struct P1 {
    pub(crate) cmp: Comparison,
}

pub(crate) fn p1(quick: bool) -> P1 {
    pub(crate) const CALLS: u64 = 1_000_000;
    let rounds = if quick { 11 } else { 41 };
    // Warm both paths (and the page) before timing.
    ns_per_call(CALLS, rust_side::set_hint);
    ns_per_call(CALLS, rust_side::set_thread_local);
    let cmp = interleave(
        rounds,
        || ns_per_call(CALLS, rust_side::set_hint),
        || ns_per_call(CALLS, rust_side::set_thread_local),
    );
    assert_eq!(H00.get(), CALLS - 1, "the hint store did not happen");
    assert_eq!(rust_side::thread_local_value(), CALLS - 1);
    P1 { cmp }
}

pub(crate) struct P2 {
    /// a: the syscall approach, b: a hint store; ratio = how many times faster hints are.
    pub(crate) cmp: Comparison,
}

pub(crate) fn p2(bench: &'static Bench, quick: bool) -> Result<P2, String> {
    pub(crate) const SYSCALLS: u64 = 2_000;
    pub(crate) const STORES: u64 = 1_000_000;
    let rounds = if quick { 7 } else { 21 };
    let sys = SyscallHint::for_current_thread(bench.hint_value_map())
        .map_err(|e| format!("pidfd_open: errno {e}"))?;
    let mut failed = None;
    let mut syscall_batch = || {
        ns_per_call(SYSCALLS, |v| {
            if let Err(rc) = sys.set(v) {
                failed.get_or_insert(rc);
            }
        })
    };
    syscall_batch();
    let cmp = interleave(rounds, &mut syscall_batch, || {
        ns_per_call(STORES, rust_side::set_hint)
    });
    if let Some(rc) = failed {
        return Err(format!("bpf_map_update_elem(hint_value_map) failed: {rc}"));
    }
    Ok(P2 { cmp })
}

// ---------------------------------------------------------------------------------------------
// P3: the BPF side.

/// The floor programs, K = 1, 4, 16.
pub(crate) const FLOOR: [Prog; 3] = [Prog::FloorK1, Prog::FloorK4, Prog::FloorK16];
/// Ours on the fast path (the pages carry the generated header's fingerprint), K = 1, 4, 16.
pub(crate) const FAST: [Prog; 3] = [Prog::TldK1, Prog::TldK4, Prog::TldK16];
/// Ours on the cached path, K = 1, 4, 16.
pub(crate) const CACHED: [Prog; 3] = [Prog::CachedK1, Prog::CachedK4, Prog::CachedK16];

/// The 16-pair program of a path whose K-series is `progs`.
pub(crate) fn pair_prog(progs: [Prog; 3]) -> Prog {
    if progs == CACHED {
        Prog::CachedX16
    } else {
        Prog::TldX16
    }
}

pub(crate) struct P3 {
    /// The lowest kernel-reported ns per run over the rounds, per program.
    pub(crate) ns: HashMap<Prog, f64>,
    pub(crate) stats: HashMap<Prog, ProgStats>,
    pub(crate) repeat: u32,
    pub(crate) rounds: usize,
}

impl P3 {
    pub(crate) fn ns(&self, p: Prog) -> f64 {
        self.ns[&p]
    }
    /// Ns per run above the empty program's: the program's own cost.
    pub(crate) fn net(&self, p: Prog) -> f64 {
        self.ns(p) - self.ns(Prog::Empty)
    }
    /// `progs`' runs of K = 1, 4, 16, as "a / b / c ns".
    pub(crate) fn runs(&self, progs: [Prog; 3]) -> String {
        let [a, b, c] = progs.map(|p| self.ns(p));
        format!("{a:.0} / {b:.0} / {c:.0} ns")
    }
    /// Least-squares ns per extra lookup over the K = 1, 4, 16 programs `progs`.
    pub(crate) fn slope(&self, progs: [Prog; 3]) -> f64 {
        let ns: Vec<f64> = progs.iter().map(|&p| self.ns(p)).collect();
        slope(&[1.0, 4.0, 16.0], &ns)
    }
}

pub(crate) fn p3(bench: &'static dyn Timed, quick: bool) -> Result<P3, String> {
    let repeat: u32 = if quick { 50_000 } else { 200_000 };
    let rounds = if quick { 7 } else { 21 };

    // Distinct values, so that a program reading the wrong bytes returns the wrong sum.
    let mut values = [0u64; 16];
    for (i, (v, hint)) in values.iter_mut().zip(ALL).enumerate() {
        *v = 0x1_0000_0001 * (i as u64 + 1) + 7;
        hint.set(*v);
    }
    let inline = 0xfeed;
    SyscallHint::for_current_thread(bench.hint_value_map())
        .and_then(|s| s.set(inline))
        .map_err(|e| format!("setting hint_value_map: {e}"))?;

    // The first run of ours resolves the keys into the cache; every later run is cached.
    for p in Prog::ALL {
        let run = bench.run(p, 1)?;
        let want = p.expected(&values, inline);
        if run.ret != want {
            return Err(format!(
                "{} returned {:#x}, expected {want:#x}: it does not read the hints this thread \
                 set",
                p.name(),
                run.ret
            ));
        }
    }

    let mut samples: HashMap<Prog, Vec<f64>> = HashMap::new();
    for round in 0..rounds {
        // Rotate the order every round, so that no program always runs right after another.
        for i in 0..Prog::ALL.len() {
            let p = Prog::ALL[(i + round) % Prog::ALL.len()];
            let run = bench.run(p, repeat)?;
            samples.entry(p).or_default().push(run.ns as f64);
        }
    }
    // The least disturbed test run of each program: interference on a shared machine only adds
    // time, and it comes in bursts that can cover half the rounds, which moves a median.
    let ns = samples
        .into_iter()
        .map(|(p, v)| (p, v.into_iter().fold(f64::INFINITY, f64::min)))
        .collect();
    let mut stats = HashMap::new();
    for p in Prog::ALL {
        stats.insert(p, bench.stats(p)?);
    }
    Ok(P3 {
        ns,
        stats,
        repeat,
        rounds,
    })
}

// ---------------------------------------------------------------------------------------------
// G1: what the guard's check adds to bpf_tld_init.

pub(crate) struct G1 {
    /// The least disturbed ns per run of each init, without and with the check: fast path,
    /// cached path.
    pub(crate) fast: (f64, f64),
    pub(crate) cached: (f64, f64),
    pub(crate) rounds: usize,
}

/// Times `bpf_tld_init` alone, fast and cached, in the plain object and in the one with the
/// guard's check, interleaved, each the least disturbed of the rounds.
pub(crate) fn g1(
    plain: &'static Bench,
    guarded: &'static BenchGuard,
    quick: bool,
) -> Result<G1, String> {
    let repeat: u32 = if quick { 50_000 } else { 200_000 };
    let rounds = if quick { 7 } else { 21 };
    let runs: [(&'static dyn Timed, Prog); 4] = [
        (plain, Prog::InitX16),
        (guarded, Prog::InitX16),
        (plain, Prog::InitCachedX16),
        (guarded, Prog::InitCachedX16),
    ];
    // Each must see this thread's pages, through the check where there is one.
    for (i, (b, p)) in runs.iter().enumerate() {
        let r = b.run(*p, 1)?;
        if r.ret != 1 {
            return Err(format!(
                "{} (run {i}) returned {}: bpf_tld_init failed for this thread",
                p.name(),
                r.ret
            ));
        }
    }
    let mut best = [f64::INFINITY; 4];
    for round in 0..rounds {
        for k in 0..4 {
            let i = (k + round) % 4;
            let (b, p) = runs[i];
            best[i] = best[i].min(b.run(p, repeat)?.ns as f64);
        }
    }
    // Per init: the programs run 16 of them.
    Ok(G1 {
        fast: (best[0] / 16.0, best[1] / 16.0),
        cached: (best[2] / 16.0, best[3] / 16.0),
        rounds,
    })
}

// ---------------------------------------------------------------------------------------------
// P6: what the verifier pays for lookups, and what loading costs.

/// The programs whose load time P6 reports.
pub(crate) const P6_LOADED: [Prog; 5] = [
    Prog::FloorK1,
    Prog::TldK1,
    Prog::TldK16,
    Prog::CachedK1,
    Prog::CachedK16,
];

pub(crate) struct P6 {
    /// Verified instructions per additional key, from K = 1 to K = 16.
    pub(crate) fast_per_key: f64,
    pub(crate) cached_per_key: f64,
    /// The floor's, per additional fixed-offset read.
    pub(crate) floor_per_read: f64,
    /// The lowest load time of the object with only that program enabled, in µs.
    pub(crate) load_us: HashMap<Prog, f64>,
    pub(crate) load_reps: usize,
}

pub(crate) fn p6(p3: &P3, quick: bool, load_times: bool) -> Result<P6, String> {
    let per_key = |progs: [Prog; 3]| {
        (f64::from(p3.stats[&progs[2]].verified_insns)
            - f64::from(p3.stats[&progs[0]].verified_insns))
            / 15.0
    };
    let load_reps = if quick { 3 } else { 9 };
    let mut load_us = HashMap::new();
    if load_times {
        for p in P6_LOADED {
            load_us.insert(p, crate::bpf::load_time_us(p, load_reps)?);
        }
    }
    Ok(P6 {
        fast_per_key: per_key(FAST),
        cached_per_key: per_key(CACHED),
        floor_per_read: per_key(FLOOR),
        load_us,
        load_reps,
    })
}

// ---------------------------------------------------------------------------------------------
// P4: registering threads under sustained churn.

/// The p50, p99, max and mean of a set of times, in µs.
#[derive(Clone, Copy)]
pub(crate) struct Dist {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

impl Dist {
    pub(crate) fn of(mut v: Vec<f64>) -> Dist {
        Dist {
            mean: measure::mean(&v),
            max: v.iter().copied().fold(0.0, f64::max),
            p99: measure::percentile(&mut v, 0.99),
            p50: median(&mut v),
        }
    }
}

pub(crate) struct P4 {
    /// `thread_init()` on each fresh thread.
    pub(crate) ours: Dist,
    /// The bare registration in the same threads.
    pub(crate) bare: Dist,
    pub(crate) samples: usize,
    pub(crate) period_us: f64,
    pub(crate) elapsed_s: f64,
    pub(crate) peak_live: usize,
    pub(crate) pool_pages: usize,
    /// The slowest registrations without the time their threads waited for a CPU (ours,
    /// bare), in µs; `None` where the kernel does not account that wait.
    pub(crate) off_run_queue_max: Option<(f64, f64)>,
}

pub(crate) fn p4(bench: &'static Bench, quick: bool) -> P4 {
    let period = Duration::from_micros(50);
    let duration = Duration::from_millis(if quick { 500 } else { 2500 });
    let max_threads = (duration.as_micros() / period.as_micros()) as usize + 1000;
    let churn = registration::sustained_churn(bench, period, duration, max_threads);
    let us = |d: Duration| d.as_nanos() as f64 / 1000.0;
    P4 {
        ours: Dist::of(churn.samples.iter().map(|s| us(s.ours)).collect()),
        bare: Dist::of(churn.samples.iter().map(|s| us(s.bare)).collect()),
        samples: churn.samples.len(),
        period_us: us(churn.period),
        elapsed_s: churn.elapsed.as_secs_f64(),
        peak_live: churn.peak_live,
        pool_pages: churn.pool_pages,
        off_run_queue_max: churn
            .samples
            .iter()
            .map(|s| Some((us(s.ours_off_run_queue()?), us(s.bare_off_run_queue()?))))
            .try_fold((0.0f64, 0.0f64), |(o, b), s| {
                s.map(|(so, sb)| (o.max(so), b.max(sb)))
            }),
    }
}

// ---------------------------------------------------------------------------------------------
// P5: many live threads, in child processes.

/// One child's figures.
#[derive(Debug, Default, Clone)]
pub(crate) struct P5Child {
    pub(crate) threads: usize,
    /// Spawning every thread until all have touched (or skipped) their hint, in ms.
    pub(crate) wall_ms: f64,
    pub(crate) rss_delta: f64,
    pub(crate) anon_delta: f64,
    /// Per-thread first-touch times in µs: median, mean, first 1000, last 1000.
    pub(crate) touch_median_us: f64,
    pub(crate) touch_mean_us: f64,
    pub(crate) touch_first_us: f64,
    pub(crate) touch_last_us: f64,
    pub(crate) pool_pages: f64,
    pub(crate) registered: f64,
}

pub(crate) const P5_STACK: usize = 64 * 1024;

/// Runs in a child: spawns `threads` threads with 64 KiB stacks that each (in mode `tld`)
/// touch a hint and then wait, and prints the figures on one line.
pub fn p5_child(mode: &str, threads: usize) -> Result<(), String> {
    let touch = match mode {
        "tld" => true,
        "baseline" => false,
        _ => return Err(format!("unknown --p5-child mode {mode:?}")),
    };
    setup()?;
    let times: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect());
    let touched = Arc::new(Barrier::new(threads + 1));
    let release = Arc::new(Barrier::new(threads + 1));
    let (rss0, anon0) = measure::rss_bytes();
    let start = Instant::now();
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let (times, touched, release) = (times.clone(), touched.clone(), release.clone());
        let handle = std::thread::Builder::new()
            .stack_size(P5_STACK)
            .spawn(move || {
                if touch {
                    let t = Instant::now();
                    H00.set(i as u64);
                    times[i].store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
                touched.wait();
                release.wait();
            })
            .map_err(|e| format!("spawning thread {i}: {e}"))?;
        handles.push(handle);
    }
    touched.wait();
    let wall = start.elapsed();
    let (rss1, anon1) = measure::rss_bytes();
    let status = tld_runtime::status();
    release.wait();
    for h in handles {
        h.join().map_err(|_| "a P5 thread panicked".to_string())?;
    }

    let us: Vec<f64> = times
        .iter()
        .map(|t| t.load(Ordering::Relaxed) as f64 / 1000.0)
        .collect();
    let edge = threads.min(1000);
    let r = P5Child {
        threads,
        wall_ms: wall.as_secs_f64() * 1000.0,
        rss_delta: rss1 as f64 - rss0 as f64,
        anon_delta: anon1 as f64 - anon0 as f64,
        touch_median_us: median(&mut us.clone()),
        touch_mean_us: measure::mean(&us),
        touch_first_us: median(&mut us[..edge].to_vec()),
        touch_last_us: median(&mut us[threads - edge..].to_vec()),
        pool_pages: status.pool_pages as f64,
        registered: status.registered_threads as f64,
    };
    println!(
        "P5 threads={} wall_ms={} rss_delta={} anon_delta={} touch_median_us={} \
         touch_mean_us={} touch_first_us={} touch_last_us={} pool_pages={} registered={}",
        r.threads,
        r.wall_ms,
        r.rss_delta,
        r.anon_delta,
        r.touch_median_us,
        r.touch_mean_us,
        r.touch_first_us,
        r.touch_last_us,
        r.pool_pages,
        r.registered
    );
    Ok(())
}

pub(crate) fn run_p5_child(mode: &str, threads: usize) -> Result<P5Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = std::process::Command::new(exe)
        .args(["--p5-child", mode, "--threads", &threads.to_string()])
        .output()
        .map_err(|e| format!("running the P5 child: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the P5 {mode} child failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("P5 "))
        .ok_or_else(|| format!("the P5 {mode} child printed no result: {stdout}"))?;
    let fields: HashMap<&str, f64> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect();
    let get = |k: &str| fields.get(k).copied().unwrap_or(f64::NAN);
    Ok(P5Child {
        threads: get("threads") as usize,
        wall_ms: get("wall_ms"),
        rss_delta: get("rss_delta"),
        anon_delta: get("anon_delta"),
        touch_median_us: get("touch_median_us"),
        touch_mean_us: get("touch_mean_us"),
        touch_first_us: get("touch_first_us"),
        touch_last_us: get("touch_last_us"),
        pool_pages: get("pool_pages"),
        registered: get("registered"),
    })
}
