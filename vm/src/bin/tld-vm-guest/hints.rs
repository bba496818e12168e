//! What the scheduler reads, thread by thread: 32 threads with distinct hints, and a hint
//! changed at run time.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tld_sched_hints::{LatencyHint, LATENCY, PRIORITY};
use tld_vm::guest::{
    gettid, hinted_weight, intf, monotonic_ns, report, wake_until_read, Record, Records,
};

/// The hints thread `i` of the per-thread test sets: priorities -16 ..= 15, and a budget and a
/// class of its own.
fn hints_of(i: usize) -> (i32, LatencyHint) {
    (
        i as i32 - 16,
        LatencyHint {
            budget_us: 1000 + 37 * i as u32,
            class: (i % 3) as u32,
        },
    )
}

/// Why a record does not show what a thread set, if it does not.
pub fn mismatch(rec: Option<Record>, pid: u32, prio: i32, lat: LatencyHint) -> Option<String> {
    let Some(r) = rec else {
        return Some("no record".into());
    };
    let mut why = Vec::new();
    if r.tgid != pid as i32 {
        why.push(format!("tgid {} != {pid}", r.tgid));
    }
    if r.priority != prio {
        why.push(format!("priority {} != {prio}", r.priority));
    }
    if (r.budget_us, r.class) != (lat.budget_us, lat.class) {
        why.push(format!(
            "latency ({}, {}) != ({}, {})",
            r.budget_us, r.class, lat.budget_us, lat.class
        ));
    }
    // The test threads run at nice 0: the hint is relative to that.
    if r.weight != hinted_weight(0, prio) {
        why.push(format!("weight {} != {}", r.weight, hinted_weight(0, prio)));
    }
    if r.flags & (intf::TLD_REC_PRIORITY | intf::TLD_REC_LATENCY)
        != intf::TLD_REC_PRIORITY | intf::TLD_REC_LATENCY
    {
        why.push(format!("flags {:#x}: a hint was not found", r.flags));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// 32 threads with distinct priorities: the scheduler's record for each tid equals what that
/// thread set, read on the fast path (this program has exactly the scheduler's hints), and the
/// weight is the thread's nice moved by the hint (boosts capped).
pub fn per_thread() {
    const THREADS: usize = 32;
    let records = match Records::open() {
        Ok(r) => r,
        Err(e) => return report("hints/per-thread", false, &e),
    };
    let tids = Mutex::new(Vec::new());
    let set = Barrier::new(THREADS + 1);
    let checked = Barrier::new(THREADS + 1);
    let mut problems = Vec::new();
    let mut fast = 0;
    thread::scope(|s| {
        for i in 0..THREADS {
            let (tids, set, checked, records) = (&tids, &set, &checked, &records);
            s.spawn(move || {
                let (prio, lat) = hints_of(i);
                PRIORITY.set(prio);
                LATENCY.set(lat);
                wake_until_read(records, prio, 50);
                tids.lock().unwrap().push((i, gettid()));
                set.wait();
                checked.wait();
            });
        }
        set.wait();
        for &(i, tid) in tids.lock().unwrap().iter() {
            let (prio, lat) = hints_of(i);
            let rec = records.get(tid);
            if rec.is_some_and(|r| r.flags & intf::TLD_REC_FAST_PATH != 0) {
                fast += 1;
            }
            if let Some(why) = mismatch(rec, std::process::id(), prio, lat) {
                problems.push(format!("thread {i} (tid {tid}): {why}"));
            }
        }
        checked.wait();
    });
    let matching = THREADS - problems.len();
    report(
        "hints/per-thread",
        problems.is_empty() && fast == THREADS,
        &format!(
            "{matching}/{THREADS} threads: the scheduler's record equals what the thread set \
             (priority, weight, budget, class); {fast}/{THREADS} read on the fast path{}",
            if problems.is_empty() {
                String::new()
            } else {
                format!("; {}", problems.join("; "))
            }
        ),
    );
}

/// A hint changed at run time takes effect at the thread's next enqueue, and the thread makes
/// no system call in between: it stores the new value and spins. Two spinning threads without
/// hints make the CPUs busy, so that the changing thread is preempted and enqueued again when
/// its 2 ms slice (its budget) runs out.
pub fn changes() {
    const CHANGES: u32 = 5;
    let records = match Records::open() {
        Ok(r) => r,
        Err(e) => return report("hints/change-at-run-time", false, &e),
    };
    let stop = AtomicBool::new(false);
    let tid = AtomicU32::new(0);
    // The change the worker should make next, and when it made it (before, after the store).
    let want = AtomicU32::new(0);
    let done = AtomicU32::new(0);
    let t_before = AtomicU64::new(0);
    let t_after = AtomicU64::new(0);
    let mut problems = Vec::new();
    let mut seen = 0;
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        s.spawn(|| {
            LATENCY.set(LatencyHint {
                budget_us: 2000,
                class: LatencyHint::CLASS_NORMAL,
            });
            PRIORITY.set(100);
            tid.store(gettid() as u32, Ordering::Release);
            // From here on, no system call until `stop`: only stores, loads and vDSO clocks.
            while !stop.load(Ordering::Relaxed) {
                let n = want.load(Ordering::Acquire);
                if n != done.load(Ordering::Relaxed) {
                    t_before.store(monotonic_ns(), Ordering::Relaxed);
                    PRIORITY.set(100 + n as i32);
                    t_after.store(monotonic_ns(), Ordering::Relaxed);
                    done.store(n, Ordering::Release);
                }
                std::hint::spin_loop();
            }
        });
        while tid.load(Ordering::Acquire) == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        let tid = tid.load(Ordering::Acquire) as i32;
        // The first value must be read before it can change.
        let start = Instant::now();
        while records.get(tid).map(|r| r.priority) != Some(100) {
            if start.elapsed() > Duration::from_secs(10) {
                problems.push("the first value was never read".to_string());
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        for n in 1..=CHANGES {
            want.store(n, Ordering::Release);
            while done.load(Ordering::Acquire) != n {
                thread::sleep(Duration::from_millis(1));
            }
            let (before, after) = (
                t_before.load(Ordering::Relaxed),
                t_after.load(Ordering::Relaxed),
            );
            let start = Instant::now();
            let rec = loop {
                let rec = records.get(tid);
                if rec.is_some_and(|r| r.priority == 100 + n as i32) {
                    break rec;
                }
                if start.elapsed() > Duration::from_secs(10) {
                    break None;
                }
                thread::sleep(Duration::from_millis(2));
            };
            match rec {
                None => problems.push(format!("change {n}: never read within 10 s")),
                // The read before the change happened before the store ended, and the first
                // read of the new value after it began: the very next enqueue saw it.
                Some(r) if r.before_change_ns <= after && r.changed_ns >= before => seen += 1,
                Some(r) => problems.push(format!(
                    "change {n}: stored at [{before}, {after}] ns, but an enqueue at {} ns still \
                     read the old value (new value first read at {})",
                    r.before_change_ns, r.changed_ns
                )),
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    report(
        "hints/change-at-run-time",
        seen == CHANGES && problems.is_empty(),
        &format!(
            "{seen}/{CHANGES} priority changes, each a plain store on a spinning thread that \
             makes no system call, were read at the thread's next enqueue{}",
            if problems.is_empty() {
                String::new()
            } else {
                format!("; {}", problems.join("; "))
            }
        ),
    );
}
