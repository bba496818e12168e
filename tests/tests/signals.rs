//! A hint access that interrupts a thread's first access (a signal handler that reads and
//! writes hints) never blocks: during the setup it reads the initial value and its store is
//! dropped; the thread then finishes its setup and registers normally.
//!
//! 10,000 threads make their first access while another thread sends them signals as fast as
//! it can. The handler reads and writes hints. A handler that waited for the setup it
//! interrupted would wait forever: the test would hang (and its watchdog fail it).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use tld_tests::*;

const TEST: &str = "a_signal_storm_during_first_accesses_never_blocks";
const THREADS: usize = 10_000;
/// Threads alive at once.
const WAVE: usize = 20;
/// Every `CHECK_EVERY`-th thread has BPF check that it registered.
const CHECK_EVERY: usize = 50;
/// The whole storm must end within this; a deadlock would not (a watchdog then aborts).
const DEADLINE: Duration = Duration::from_secs(120);

thread_local! {
    /// Set just before the thread's first hint access: from then on the handler may touch
    /// hints (a handler must not be the one that makes a thread's very first access).
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Set once the thread's first access has returned.
    static SET_UP: Cell<bool> = const { Cell::new(false) };
}

/// Handler runs, and those that interrupted a first access.
static HANDLED: AtomicU64 = AtomicU64::new(0);
static DURING_SETUP: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    // Only const-initialized thread-locals without destructors and atomics here: the handler
    // is async-signal-safe, apart from what it tests.
    if !ARMED.with(Cell::get) {
        return;
    }
    if !SET_UP.with(Cell::get) {
        DURING_SETUP.fetch_add(1, Ordering::Relaxed);
    }
    let seen = HINT_A.get();
    HINT_A.set(seen.wrapping_add(1));
    let _ = VALUE1.get();
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn install_handler() {
    // SAFETY: a zeroed sigaction is valid; the handler is an `extern "C"` fn of the right
    // type that lives forever; SA_RESTART keeps interrupted system calls going.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

fn worker(skel: &TldTestSkel<'_>, n: usize, my_tid: &AtomicI32) {
    my_tid.store(gettid(), Ordering::Release);
    let value = n as i32 + 1;
    ARMED.with(|a| a.set(true));
    // The first access: setup and registration, under fire.
    VALUE1.set(value);
    SET_UP.with(|s| s.set(true));
    assert_eq!(VALUE1.get(), value, "thread {n}: its own store was lost");
    if n.is_multiple_of(CHECK_EVERY) {
        let r = bpf_read(skel);
        assert_eq!(r.init_ret, 0, "thread {n} is not registered");
        assert_eq!(
            r.value1,
            i64::from(value),
            "thread {n}: BPF sees another value"
        );
    }
    my_tid.store(0, Ordering::Release);
    ARMED.with(|a| a.set(false));
}

#[test]
fn a_signal_storm_during_first_accesses_never_blocks() {
    let Some(skel) = shared(TEST) else {
        return;
    };
    install_handler();
    let started = Instant::now();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    // A deadlock would leave the test waiting forever: turn it into a failure.
    let watchdog_done = done.clone();
    thread::spawn(move || {
        while started.elapsed() < DEADLINE {
            if watchdog_done.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{TEST}: the storm did not end in {DEADLINE:?}: a first access blocked");
        std::process::abort();
    });
    let stop = AtomicBool::new(false);
    let tids: Vec<AtomicI32> = (0..WAVE).map(|_| AtomicI32::new(0)).collect();
    let sent = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    thread::scope(|s| {
        let (stop, tids, sent) = (&stop, &tids, &sent);
        // The storm: signals to every live worker, over and over.
        s.spawn(move || {
            let pid = std::process::id() as libc::pid_t;
            while !stop.load(Ordering::Relaxed) {
                for t in tids {
                    let tid = t.load(Ordering::Acquire);
                    if tid == 0 {
                        continue;
                    }
                    // SAFETY: tgkill sends a signal to a thread of this process; a tid that
                    // has just exited gives ESRCH, which is fine.
                    let rc = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
                    if rc == 0 {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                thread::yield_now();
            }
        });
        let mut n = 0;
        while n < THREADS {
            let wave = WAVE.min(THREADS - n);
            thread::scope(|w| {
                let handles: Vec<_> = (0..wave)
                    .map(|i| {
                        let slot = &tids[i];
                        let failures = &failures;
                        thread::Builder::new()
                            .stack_size(64 * 1024)
                            .spawn_scoped(w, move || {
                                let result =
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                        worker(skel, n + i, slot)
                                    }));
                                slot.store(0, Ordering::Release);
                                if let Err(e) = result {
                                    let msg = e
                                        .downcast_ref::<String>()
                                        .cloned()
                                        .unwrap_or_else(|| "panic".into());
                                    failures.lock().unwrap().push(msg);
                                }
                            })
                            .expect("spawn a worker")
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
            });
            n += wave;
        }
        stop.store(true, Ordering::Relaxed);
    });
    done.store(true, Ordering::Relaxed);
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "signal storm: {THREADS} first accesses in {:.1?}, {} signals sent, {} handled, {} of \
         them during a first access",
        started.elapsed(),
        sent.load(Ordering::Relaxed),
        HANDLED.load(Ordering::Relaxed),
        DURING_SETUP.load(Ordering::Relaxed)
    );
    assert!(
        failures.is_empty(),
        "{} workers failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        DURING_SETUP.load(Ordering::Relaxed) > 0,
        "no signal arrived during a first access: the storm tested nothing"
    );
}
