//! What `scx_tld` promises everyone else: boosts are bounded (a hostile process cannot starve
//! unhinted work), preemption is targeted (one CPU, in the waking task's cpumask), and nice
//! values keep their meaning (an unset hint changes nothing).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tld_sched_hints::{LatencyHint, LATENCY, PRIORITY};
use tld_vm::guest::{
    bounded, gettid, hinted_weight, monotonic_ns, per_cpu, pin_to_cpu, report, sched_stats,
    set_nice, sleep_ms, thread_cpu_ns, weight_of, Records,
};

use crate::sched::{self, Sched};

/// Spins until `stop`; returns the thread's CPU time and the longest gap, in nanoseconds,
/// between two consecutive looks at the clock (a gap is time the thread did not run).
fn spin(stop: &AtomicBool) -> (u64, u64) {
    let cpu0 = thread_cpu_ns();
    let mut last = monotonic_ns();
    let mut gap = 0;
    let mut x = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..200 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
        }
        let now = monotonic_ns();
        gap = gap.max(now - last);
        last = now;
    }
    (thread_cpu_ns() - cpu0, gap)
}

/// The short-lived critical threads of the starvation test alive now, and their CPU time.
static CHILDREN_LIVE: AtomicUsize = AtomicUsize::new(0);
static CHILDREN_NS: AtomicU64 = AtomicU64::new(0);

/// `scx_tld`'s defaults (the guest runs it with them): the share of each CPU boosted work may
/// take, and the shares that bound a thread and a process.
const BOOST_CPU_SHARE: f64 = 0.5;

/// Starvation: 8 threads of one process claim to be interactive (latency hint, priority -20)
/// and try every way around the hog rule while burning CPU: sleeping 1 µs every 79 ms,
/// toggling the hint, starting new critical threads. Beside them, 4 unhinted CPU-bound
/// threads run for 30 s. The unhinted threads get at least the share `docs/scheduling.md` promises
/// (half of their weighted fair share, counting the hostile threads' capped boost of their
/// weight and every hostile thread alive at once), none of them stops for long, and the
/// scheduler is neither ejected by the watchdog nor exits.
pub fn starvation(sched: &mut Sched) {
    const SECONDS: u64 = 30;
    const UNHINTED: usize = 4;
    const HOSTILE: usize = 8;
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let before = sched_stats();
    let stop = AtomicBool::new(false);
    let spawned = AtomicUsize::new(0);
    let most_children = AtomicUsize::new(0);
    let hostile_ns = AtomicU64::new(0);
    let unhinted = Mutex::new(Vec::new());
    let start = Instant::now();
    let duration = bounded(Duration::from_secs(SECONDS));
    thread::scope(|s| {
        for _ in 0..UNHINTED {
            s.spawn(|| {
                let r = spin(&stop);
                unhinted.lock().unwrap().push(r);
            });
        }
        for i in 0..HOSTILE {
            let (stop, spawned, most_children, hostile_ns) =
                (&stop, &spawned, &most_children, &hostile_ns);
            s.spawn(move || {
                let critical = LatencyHint::interactive(20_000);
                PRIORITY.set(-20);
                LATENCY.set(critical);
                let cpu0 = thread_cpu_ns();
                let mut n = 0u64;
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..2000 {
                        n = std::hint::black_box(n.wrapping_mul(31) + 7);
                    }
                    match i % 3 {
                        // Sleep 1 µs every 79 ms: a block that once reset the hog rule.
                        0 if last.elapsed() >= Duration::from_millis(79) => {
                            thread::sleep(Duration::from_micros(1));
                            last = Instant::now();
                        }
                        // Toggle the hint every 5 ms: a non-interactive read once reset it.
                        1 if last.elapsed() >= Duration::from_millis(5) => {
                            let now = LATENCY.get();
                            LATENCY.set(if now == critical {
                                LatencyHint::default()
                            } else {
                                critical
                            });
                            last = Instant::now();
                        }
                        // A new critical thread every 20 ms, which burns 40 ms and exits.
                        2 if last.elapsed() >= Duration::from_millis(20) => {
                            let now_live = CHILDREN_LIVE.fetch_add(1, Ordering::Relaxed) + 1;
                            most_children.fetch_max(now_live, Ordering::Relaxed);
                            spawned.fetch_add(1, Ordering::Relaxed);
                            // Not joined: the parent burns on while the child runs.
                            thread::spawn(move || {
                                PRIORITY.set(-20);
                                LATENCY.set(critical);
                                let c0 = thread_cpu_ns();
                                let until = Instant::now() + Duration::from_millis(40);
                                let mut m = 0u64;
                                while Instant::now() < until {
                                    m = std::hint::black_box(m.wrapping_mul(31) + 7);
                                }
                                CHILDREN_NS.fetch_add(thread_cpu_ns() - c0, Ordering::Relaxed);
                                CHILDREN_LIVE.fetch_sub(1, Ordering::Relaxed);
                            });
                            last = Instant::now();
                        }
                        _ => {}
                    }
                }
                hostile_ns.fetch_add(thread_cpu_ns() - cpu0, Ordering::Relaxed);
            });
        }
        while start.elapsed() < duration {
            thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed().as_secs_f64();
    let after = sched_stats();
    let alive = sched.alive() && sched::state() == "enabled";

    let unhinted = unhinted.into_inner().unwrap();
    let cpu_s: Vec<f64> = unhinted.iter().map(|(ns, _)| *ns as f64 / 1e9).collect();
    let got: f64 = cpu_s.iter().sum();
    let longest_gap = unhinted.iter().map(|(_, g)| *g).max().unwrap_or(0) as f64 / 1e9;
    // The promise: boosted work takes at most half of each CPU; the rest is shared by weight,
    // the hostile threads with their hint's capped weight, all of them counted as CPU-bound.
    let hostile_at_once = HOSTILE + most_children.load(Ordering::Relaxed);
    let w_unhinted = UNHINTED as f64 * weight_of(0) as f64;
    let w_hostile = hostile_at_once as f64 * hinted_weight(0, -20) as f64;
    let fair = w_unhinted / (w_unhinted + w_hostile) * cpus as f64 * elapsed;
    let promised = (1.0 - BOOST_CPU_SHARE) * fair;
    let (boost_share, hogs, stats_note) = match (&before, &after) {
        (Ok(b), Ok(a)) => {
            let boosted: Vec<u64> = per_cpu(a, "boosted_ns")
                .iter()
                .zip(per_cpu(b, "boosted_ns"))
                .map(|(x, y)| x - y)
                .collect();
            let most = boosted.iter().copied().max().unwrap_or(0) as f64 / 1e9 / elapsed;
            let hogs =
                a["total"]["hogs"].as_u64().unwrap_or(0) - b["total"]["hogs"].as_u64().unwrap_or(0);
            (most, hogs, String::new())
        }
        (Err(e), _) | (_, Err(e)) => (f64::NAN, 0, format!("; statistics: {e}")),
    };
    let passed = got >= promised
        && cpu_s.iter().all(|&c| c > 0.0)
        && longest_gap < 5.0
        && alive
        && boost_share <= BOOST_CPU_SHARE + 0.1;
    report(
        "bounds/starvation",
        passed,
        &format!(
            "{HOSTILE} hostile threads (latency interactive, priority -20; sleeping 1 us every \
             79 ms, toggling the hint, starting {} short critical threads, up to {} at once) \
             beside {UNHINTED} unhinted CPU-bound threads on {cpus} CPUs for {elapsed:.0} s: \
             the unhinted threads got {got:.1} CPU-s ({:.0}% of the machine; each {}), \
             promised >= {promised:.1} CPU-s (half of their weighted fair share {fair:.1}); \
             longest an unhinted thread waited: {longest_gap:.2} s (need < 5 s); the hostile \
             threads got {:.1} CPU-s; the busiest CPU ran boosted work {:.0}% of the time \
             (bound {:.0}%); hog verdicts {hogs}; scheduler still enabled: {alive}{stats_note}",
            spawned.load(Ordering::Relaxed),
            most_children.load(Ordering::Relaxed),
            100.0 * got / (cpus as f64 * elapsed),
            cpu_s
                .iter()
                .map(|c| format!("{c:.1}"))
                .collect::<Vec<_>>()
                .join("/"),
            (hostile_ns.load(Ordering::Relaxed) + CHILDREN_NS.load(Ordering::Relaxed)) as f64 / 1e9,
            boost_share * 100.0,
            BOOST_CPU_SHARE * 100.0
        ),
    );
}

/// Targeted preemption: with every CPU busy with unhinted hogs, one critical thread pinned to
/// CPU 1 wakes up 200 times. Each wake-up that finds CPU 1 busy preempts CPU 1, and no other:
/// every other CPU's count of preemptions for critical work, and of boosted tasks stopped at a
/// tick, stays 0.
pub fn targeted_preemption(sched: &mut Sched) {
    const WAKEUPS: usize = 200;
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return report(
            "bounds/targeted-preemption",
            false,
            &format!("needs 2 CPUs or more, the guest has {cpus}"),
        );
    }
    let stop = AtomicBool::new(false);
    let ready = Barrier::new(2);
    let mut outcome = None;
    thread::scope(|s| {
        for _ in 0..2 * cpus {
            s.spawn(|| spin(&stop));
        }
        let waker = s.spawn(|| {
            pin_to_cpu(1)?;
            // A timer slack of 1 ns: the delay measured is the scheduler's, not the timer's.
            // SAFETY: prctl with integer arguments touches no memory of ours.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
            LATENCY.set(LatencyHint::interactive(500));
            sleep_ms(1); // registered and read once
            ready.wait();
            let mut delays = Vec::with_capacity(WAKEUPS);
            for _ in 0..WAKEUPS {
                let before = monotonic_ns();
                thread::sleep(Duration::from_millis(1));
                delays.push(monotonic_ns().saturating_sub(before + 1_000_000));
            }
            ready.wait();
            Ok::<_, String>((gettid(), delays))
        });
        thread::sleep(Duration::from_millis(300));
        let before = sched_stats();
        ready.wait();
        ready.wait();
        let after = sched_stats();
        stop.store(true, Ordering::Relaxed);
        outcome = Some((
            before,
            after,
            waker.join().expect("the waker does not panic"),
        ));
    });
    let alive = sched.alive();
    let (before, after, waker) = outcome.expect("measured");
    let (after, before, (_, mut delays)) = match (after, before, waker) {
        (Ok(a), Ok(b), Ok(w)) => (a, b, w),
        (a, b, w) => {
            return report(
                "bounds/targeted-preemption",
                false,
                &format!(
                    "{:?} {:?} {:?}",
                    a.err(),
                    b.err(),
                    w.err().unwrap_or_default()
                ),
            )
        }
    };
    let delta = |name: &str| -> Vec<u64> {
        per_cpu(&after, name)
            .iter()
            .zip(per_cpu(&before, name))
            .map(|(a, b)| a - b)
            .collect()
    };
    let preempted = delta("preempted");
    let ticks = delta("tick_preempts");
    delays.sort_unstable();
    let p50 = delays[delays.len() / 2] as f64 / 1000.0;
    let on_1 = preempted.get(1).copied().unwrap_or(0);
    let elsewhere: u64 = preempted
        .iter()
        .enumerate()
        .filter(|(c, _)| *c != 1)
        .map(|(_, n)| n)
        .sum();
    let ticks_elsewhere: u64 = ticks
        .iter()
        .enumerate()
        .filter(|(c, _)| *c != 1)
        .map(|(_, n)| n)
        .sum();
    report(
        "bounds/targeted-preemption",
        on_1 as usize >= WAKEUPS / 2 && elsewhere == 0 && ticks_elsewhere == 0 && alive,
        &format!(
            "{WAKEUPS} wake-ups of a critical thread pinned to CPU 1, {} unhinted hogs: \
             preemptions per CPU {preempted:?} (need >= {} on CPU 1, 0 elsewhere); boosted \
             tasks stopped at a tick per CPU {ticks:?} (need 0 outside CPU 1); the waker's p50 \
             wake-up delay {p50:.0} us; scheduler running: {alive}",
            2 * cpus,
            WAKEUPS / 2
        ),
    );
}

/// Nice keeps its meaning. On one CPU, a nice-0 and a nice-19 hog without hints share the CPU
/// in the kernel's weight ratio (1024 : 15) within 20%. On another, a nice-0 hog and a nice-10
/// thread that set only its latency hint (budget 2 ms, class normal) share it as 1024 : 110:
/// an unset priority hint changes nothing. The scheduler's record of that thread, and of a
/// sleeping nice-10 thread with an interactive hint only, shows the nice-10 weight.
pub fn nice(sched: &mut Sched) {
    const SECONDS: u64 = 20;
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let (cpu_a, cpu_b) = (cpus.saturating_sub(2), cpus.saturating_sub(1));
    let records = match Records::open() {
        Ok(r) => r,
        Err(e) => return report("bounds/nice", false, &e),
    };
    let stop = AtomicBool::new(false);
    let start_line = Barrier::new(6);
    // (name, cpu, nice, latency hint)
    let roles: [(&str, usize, i32, Option<LatencyHint>); 4] = [
        ("A nice 0", cpu_a, 0, None),
        ("A nice 19", cpu_a, 19, None),
        ("B nice 0", cpu_b, 0, None),
        (
            "B nice 10, latency hint only",
            cpu_b,
            10,
            Some(LatencyHint {
                budget_us: 2000,
                class: LatencyHint::CLASS_NORMAL,
            }),
        ),
    ];
    let results = Mutex::new(Vec::new());
    let sleeper_tid = AtomicU64::new(0);
    let duration = bounded(Duration::from_secs(SECONDS));
    thread::scope(|s| {
        for (i, &(name, cpu, nice, hint)) in roles.iter().enumerate() {
            let (stop, start_line, results) = (&stop, &start_line, &results);
            s.spawn(move || {
                let setup = pin_to_cpu(cpu).and_then(|()| set_nice(nice));
                if let Some(h) = hint {
                    LATENCY.set(h);
                }
                start_line.wait();
                let (ns, _) = spin(stop);
                results.lock().unwrap().push((i, name, ns, gettid(), setup));
            });
        }
        let (stop, start_line, sleeper_tid) = (&stop, &start_line, &sleeper_tid);
        s.spawn(move || {
            let _ = set_nice(10);
            LATENCY.set(LatencyHint::interactive(500));
            sleeper_tid.store(gettid() as u64, Ordering::Relaxed);
            start_line.wait();
            while !stop.load(Ordering::Relaxed) {
                sleep_ms(2);
            }
        });
        start_line.wait();
        thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let alive = sched.alive();
    let mut problems: Vec<String> = results
        .iter()
        .filter_map(|r| r.4.as_ref().err().map(|e| format!("{}: {e}", r.1)))
        .collect();
    let ns = |i: usize| results.get(i).map_or(0, |r| r.2) as f64;
    let ratio_a = ns(0) / ns(1).max(1.0);
    let want_a = weight_of(0) as f64 / weight_of(19) as f64;
    let ratio_b = ns(2) / ns(3).max(1.0);
    let want_b = weight_of(0) as f64 / weight_of(10) as f64;
    for (pair, got, want) in [("A", ratio_a, want_a), ("B", ratio_b, want_b)] {
        if (got / want - 1.0).abs() > 0.2 {
            problems.push(format!(
                "pair {pair}: CPU time ratio {got:.1}, the weights' {want:.1}: off by more than 20%"
            ));
        }
    }
    let hinted_tid = results.get(3).map_or(0, |r| r.3);
    let sleeper = sleeper_tid.load(Ordering::Relaxed) as i32;
    for (who, tid) in [
        ("the hog with a latency hint", hinted_tid),
        ("the sleeper", sleeper),
    ] {
        match records.get(tid) {
            Some(r) if r.weight == weight_of(10) => {}
            Some(r) => problems.push(format!(
                "{who}: recorded weight {} (priority {}), want the nice-10 weight {}",
                r.weight,
                r.priority,
                weight_of(10)
            )),
            None => problems.push(format!("{who}: no record")),
        }
    }
    report(
        "bounds/nice",
        problems.is_empty() && alive,
        &format!(
            "{:.0} s on CPU {cpu_a}: nice 0 ran {:.2} s, nice 19 {:.3} s, ratio {ratio_a:.1} (the \
             kernel's weights: {want_a:.1}); on CPU {cpu_b}: nice 0 {:.2} s, nice 10 with only a \
             latency hint {:.3} s, ratio {ratio_b:.1} (weights: {want_b:.1}); recorded weights \
             of the latency-only threads are nice 10's ({}); scheduler running: {alive}{}",
            duration.as_secs_f64(),
            ns(0) / 1e9,
            ns(1) / 1e9,
            ns(2) / 1e9,
            ns(3) / 1e9,
            weight_of(10),
            if problems.is_empty() {
                String::new()
            } else {
                format!("; {}", problems.join("; "))
            }
        ),
    );
}
