//! Churn: create and join many threads in waves, each setting hints and some checked by BPF.
//! Afterwards the process's memory and its pool of pages are bounded by the peak concurrency,
//! not by the number of threads, and no thread died with its `tld_data_map` element still in
//! place.
//!
//! 10,000 threads by default; `TLD_CHURN_THREADS=100000` for the long run.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags};
use tld_tests::*;

const TEST: &str = "churning_threads_leak_no_pages_memory_or_storage";

/// Threads alive at once: the peak concurrency.
const WAVE: usize = 100;
/// Every `CHECK_EVERY`-th thread has BPF check its values.
const CHECK_EVERY: usize = 10;
/// Small stacks: a wave of 100 threads costs 6.4 MiB of stack at most.
const STACK: usize = 64 * 1024;
/// The wave after which memory is measured for the first time: by then the thread stack cache,
/// the allocator's arenas and the page pool have reached their steady state.
const WARM_UP_WAVES: usize = 5;
/// How much the resident set may grow between the end of the warm-up and the end of the run.
/// It must not depend on the number of threads: a leak of one page per thread would be 39 MiB
/// for the default 10,000 threads.
const RSS_SLACK_KIB: u64 = 4 * 1024;

/// The pool's bound, from `tld-runtime/src/threads/pool.rs`: the peak number of threads that held a
/// block at once. A block whose thread exits is retired (its physical page dropped) and goes
/// back to the free stack before the thread is joined, and a take reuses a free block before
/// it touches a new one, so the pool never holds more, however fast threads come and go. Peak
/// live threads is the wave plus, at most, the test's own thread; the slack covers a few
/// blocks in flight between a thread's exit and its join. One block is one page when the
/// layout is published, as it is here.
const POOL_SLACK: usize = 8;

fn threads_to_create() -> usize {
    std::env::var("TLD_CHURN_THREADS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(10_000)
}

/// Distinct values for thread number `n`.
fn value1_for(n: usize) -> i32 {
    -(n as i32) - 1
}

fn hint_a_for(n: usize) -> u64 {
    0xC4 << 56 | (n as u64) << 8 | 0x5A
}

/// The body of churn thread number `n`.
fn churn_thread(skel: &TldTestSkel<'_>, n: usize) {
    // The 10th, 20th, ... thread (with CHECK_EVERY = 10).
    let check = n % CHECK_EVERY == CHECK_EVERY - 1;
    if check {
        // A page handed down from an exited thread starts from the initial values, in Rust and
        // in BPF.
        tld_runtime::thread_init().expect("registered");
        let r = bpf_read(skel);
        assert_eq!(r.init_ret, 0, "thread {n}: not registered");
        assert_eq!(r.tid, gettid(), "thread {n}: BPF ran as another task");
        assert_eq!(
            (r.value1, r.hint_a),
            (0, 0xA0A0_A0A0),
            "thread {n}: a new thread's page does not hold the initial values"
        );
    }
    assert_eq!(VALUE1.get(), 0, "thread {n}: VALUE1 does not start at 0");
    VALUE1.set(value1_for(n));
    HINT_A.set(hint_a_for(n));
    if check {
        let r = bpf_read(skel);
        assert_eq!(r.init_ret, 0, "thread {n}: not registered");
        let both = found::VALUE1 | found::HINT_A;
        assert_eq!(r.found & both, both, "thread {n}: keys not found");
        assert_eq!(
            (r.value1, r.hint_a),
            (i64::from(value1_for(n)), hint_a_for(n)),
            "thread {n}: BPF does not see exactly this thread's values"
        );
    }
    assert_eq!((VALUE1.get(), HINT_A.get()), (value1_for(n), hint_a_for(n)));
}

/// VmRSS of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// (`churn_freed`, `churn_freed_with_storage`) as the BPF program has counted them, read with
/// a lookup of the object's `.bss` map (an array with one element, key 0).
fn counters(skel: &TldTestSkel<'_>) -> (u64, u64) {
    let bss = skel
        .maps
        .bss
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .expect("look up .bss")
        .expect(".bss has element 0");
    // Layout of the .bss (see the generated skeleton): int churn_tgid (+4 bytes of padding),
    // u64 churn_freed, u64 churn_freed_with_storage.
    let word = |at: usize| u64::from_ne_bytes(bss[at..at + 8].try_into().unwrap());
    (word(8), word(16))
}

/// How many times the kernel skipped `churn_count_frees` because an instance of it was already
/// running on that CPU (a tracing program preempted by another free): those frees are not
/// counted.
fn recursion_misses(skel: &TldTestSkel<'_>) -> u64 {
    let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    let fd = skel.progs.churn_count_frees.as_fd().as_raw_fd();
    // SAFETY: `info` is a writable bpf_prog_info of `len` bytes; the fd is the program's.
    let rc = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    assert_eq!(rc, 0, "bpf_prog_get_info_by_fd");
    info.recursion_misses
}

#[test]
fn churning_threads_leak_no_pages_memory_or_storage() {
    let Some(mut skel) = load(TEST) else {
        return;
    };
    let threads = threads_to_create();
    assert!(
        threads >= WAVE * (WARM_UP_WAVES + 2),
        "TLD_CHURN_THREADS={threads} is too few for the test to mean anything"
    );
    let bss = skel.maps.bss_data.as_deref_mut().expect(".bss is mmap'd");
    bss.churn_tgid = std::process::id() as i32;
    let _link = skel
        .progs
        .churn_count_frees
        .attach()
        .expect("attach churn_count_frees (tp_btf/sched_process_free)");
    tld_runtime::connect(skel.maps.tld_data_map.as_fd()).expect("connect to tld_data_map");
    let skel = &skel;

    let started = Instant::now();
    let waves = threads.div_ceil(WAVE);
    let mut early = None;
    let mut spawned = 0;
    // (wave, pool pages after it) each time the pool grew.
    let mut growth = Vec::new();
    for wave in 0..waves {
        let size = WAVE.min(threads - spawned);
        thread::scope(|s| {
            let handles: Vec<_> = (spawned..spawned + size)
                .map(|n| {
                    thread::Builder::new()
                        .stack_size(STACK)
                        .spawn_scoped(s, move || churn_thread(skel, n))
                        .expect("spawn a churn thread")
                })
                .collect();
            // Joined one by one: the end of a scope waits only for the closures to return,
            // not for the threads' thread-local destructors (where the runtime releases a
            // page), so the next wave could overlap this one's exits.
            for h in handles {
                if let Err(panic) = h.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        });
        spawned += size;
        let pool = tld_runtime::status().pool_pages;
        if growth.last().is_none_or(|&(_, p)| p != pool) {
            growth.push((wave, pool));
        }
        if wave + 1 == WARM_UP_WAVES {
            early = Some((rss_kib(), tld_runtime::status().pool_pages));
        }
    }
    let elapsed = started.elapsed();
    let (rss_early, pool_early) = early.expect("measured after the warm-up");
    let rss_end = rss_kib();
    let status = tld_runtime::status();
    eprintln!(
        "churn: {spawned} threads in {waves} waves of {WAVE} in {elapsed:.2?}; pool {pool_early} \
         -> {} pages (grew after waves {growth:?}); VmRSS {rss_early} -> {rss_end} KiB",
        status.pool_pages
    );

    // Every finding is collected, so that one run reports all of them.
    let mut problems = Vec::new();

    // Every thread has been joined: none holds a page any more.
    if !status.is_connected() || (status.live_threads, status.registered_threads) != (0, 0) {
        problems.push(format!(
            "after every thread was joined the runtime still lists some: {status}"
        ));
    }

    // (a) The pool is bounded by the peak concurrency, not by the number of threads.
    let pool_bound = (WAVE + 1) + POOL_SLACK;
    if status.pool_pages > pool_bound {
        problems.push(format!(
            "the pool grew to {} pages for {spawned} threads (peak concurrency {WAVE}, bound \
             {pool_bound}; {pool_early} after the warm-up; (wave, pool) at each growth: \
             {growth:?})",
            status.pool_pages
        ));
    }

    // (b) So is the resident set.
    if rss_end > rss_early + RSS_SLACK_KIB {
        problems.push(format!(
            "VmRSS grew from {rss_early} KiB after wave {WARM_UP_WAVES} to {rss_end} KiB after \
             {spawned} threads (allowed: {RSS_SLACK_KIB} KiB)"
        ));
    }

    // (c) No thread was freed with its element still in the map. Task structs are freed after
    // an RCU grace period, so wait for the frees to be counted.
    //
    // Why the check is sound: `churn_count_frees` runs at sched_process_free, from the RCU
    // callback that drops the exit reference of the task; the kernel frees a task's storage
    // only later, in `__put_task_struct`, when the last reference goes. So an element that the
    // runtime did not delete is still there when the program looks, and is counted. (d) below
    // makes sure that the program looked at (nearly) every thread, and the control at the end
    // shows that it does see an element that was left in place.
    //
    // Observed on Linux 6.18: some frees are never counted, with no recursion miss reported
    // for the program, even after 30 s: about 0.1% in the 100,000-thread mode, and once 1.8%
    // of 10,000 on a loaded machine. The check therefore asks for 95% of the frees: a runtime
    // that left elements behind could still not pass, since every thread here was registered
    // and any counted free of one of them would show its element.
    let wanted = spawned as u64 * 95 / 100;
    // Wait for every free, but stop early once 95% are in and the count has not moved for
    // 2 s: the stragglers are then the uncounted ones.
    let (mut last, mut last_change) = (0, Instant::now());
    let counted = wait_for(Duration::from_secs(30), || {
        let now = counters(skel).0;
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        now >= spawned as u64 || (now >= wanted && last_change.elapsed() > Duration::from_secs(2))
    });
    let counted = counted && counters(skel).0 >= spawned as u64;
    let (freed, with_storage) = counters(skel);
    let misses = recursion_misses(skel);
    eprintln!(
        "churn: {freed} of {spawned} frees counted ({misses} recursion misses reported), \
         {with_storage} with a tld_data_map element"
    );
    // (d) The counter is not vacuous: it saw the threads we created be freed.
    if !counted && freed < wanted {
        problems.push(format!(
            "after 30 s only {freed} frees of tasks of this process were counted ({misses} \
             recursion misses), for {spawned} threads created: the counter does not see the \
             threads"
        ));
    }
    if with_storage != 0 {
        problems.push(format!(
            "{with_storage} of {freed} freed tasks still had a tld_data_map element: the \
             runtime did not delete them at thread exit"
        ));
    }

    // Control: threads whose element is left in place (nobody deletes it) are counted. Three
    // of them, since a rare free may go uncounted (see above); at least one must be seen, and
    // no more than three.
    const CONTROLS: u64 = 3;
    for _ in 0..CONTROLS {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let control = thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                tid_tx.send(gettid()).unwrap();
                // It never touches a hint: the runtime knows nothing of it.
                let _ = go_rx.recv();
            })
            .expect("spawn a control thread");
        let tid = tid_rx.recv().unwrap();
        let pidfd = pidfd_of_thread(tid);
        // Both user pointers NULL: the kernel pins nothing, but the element exists. (The value
        // is longer than the pointers where the BPF program keeps its cache in it.)
        let value = vec![0u8; skel.maps.tld_data_map.value_size() as usize];
        skel.maps
            .tld_data_map
            .update(&pidfd.as_raw_fd().to_ne_bytes(), &value, MapFlags::ANY)
            .expect("create the control thread's element");
        drop(pidfd);
        go_tx.send(()).unwrap();
        control.join().unwrap();
    }
    let (mut last, mut last_change) = (with_storage, Instant::now());
    let seen = wait_for(Duration::from_secs(30), || {
        let now = counters(skel).1;
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        now >= with_storage + CONTROLS
            || (now > with_storage && last_change.elapsed() > Duration::from_secs(2))
    });
    let (freed_after, with_storage_after) = counters(skel);
    if with_storage_after == with_storage {
        problems.push(format!(
            "{CONTROLS} control threads died with an element, but the counter saw none of them \
             ({freed_after} frees counted): the storage check proves nothing"
        ));
    } else if with_storage_after > with_storage + CONTROLS {
        problems.push(format!(
            "{} more tasks than the control threads died with an element",
            with_storage_after - with_storage - CONTROLS
        ));
    } else if !seen {
        eprintln!(
            "churn: {} of {CONTROLS} control frees counted",
            with_storage_after - with_storage
        );
    }

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
