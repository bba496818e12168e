//! P4 and P5: registering threads.
//!
//! "Ours" is what the runtime does on a thread's first touch, timed as
//! `tld_runtime::thread_init()` on a fresh thread: take a page from the pool (one retired when
//! an earlier thread exited, or a fresh one), fill it from the template, record the thread,
//! `pidfd_open`, one pinning update of `tld_data_map`, close.
//! "Bare" is the least any registration can do: `pidfd_open` plus the same pinning update, of a
//! page allocated and faulted in advance, into `bare_reg_map`, a map of the same layout in the
//! same object.
//!
//! Both are taken in the same fresh thread, one after the other, in alternating order. Before
//! either, the thread makes one untimed update of `hint_value_map`, so that the kernel's
//! per-task storage header exists already: otherwise whichever side came first would pay for
//! allocating it.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::bpf::{Bench, Timed};
use crate::rust_side::{pidfd_self, SyscallHint};

/// Pages allocated in advance for bare registrations, and faulted in (written once) before any
/// timing: a bare registration is then `pidfd_open` plus the update of a resident page, the
/// least there is, and what the runtime does with a page it reuses from its pool. Never
/// unmapped: the kernel may keep them pinned.
pub struct BarePages {
    base: usize,
    pages: usize,
    next: AtomicUsize,
    page_size: usize,
}

impl BarePages {
    /// Maps `pages` data pages plus one metadata page.
    pub fn new(pages: usize) -> Result<BarePages, i32> {
        let page_size = page_size();
        // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                (pages + 1) * page_size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::ENOMEM));
        }
        for i in 0..=pages {
            // SAFETY: byte 0 of page `i` lies inside the mapping just made, which nothing else
            // uses yet.
            unsafe { p.cast::<u8>().add(i * page_size).write_volatile(0) };
        }
        Ok(BarePages {
            base: p as usize,
            pages,
            next: AtomicUsize::new(0),
            page_size,
        })
    }

    /// The metadata page every bare registration points at.
    pub fn meta(&self) -> u64 {
        (self.base + self.pages * self.page_size) as u64
    }

    /// A data page no registration has used yet, or `None` when all are used.
    pub fn take(&self) -> Option<u64> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.pages).then(|| (self.base + i * self.page_size) as u64)
    }
}

/// The system page size ([`tld_wire::page_size`], which the runtime uses too).
pub fn page_size() -> usize {
    tld_wire::page_size()
}

/// The bare registration of the calling thread: `pidfd_open(gettid(), PIDFD_THREAD)`, one
/// `bpf_map_update_elem(map, &pidfd, &{data, meta}, BPF_ANY)` (which pins both pages), close.
pub fn bare_register(map: BorrowedFd<'_>, data: u64, meta: u64) -> Result<(), i32> {
    let pidfd = pidfd_self()?;
    let key: i32 = pidfd.as_raw_fd();
    let value = [data, meta];
    // SAFETY: key and value point at live locals of the map's key (4) and value (16) sizes.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_update_elem(
            map.as_raw_fd(),
            (&key as *const i32).cast(),
            value.as_ptr().cast(),
            libbpf_rs::libbpf_sys::BPF_ANY.into(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(rc)
    }
}

/// Both registrations of one fresh thread.
#[derive(Debug, Clone, Copy)]
pub struct RegSample {
    /// `tld_runtime::thread_init()`.
    pub ours: Duration,
    /// [`bare_register`].
    pub bare: Duration,
    /// Of `ours`, the time the thread was runnable but waiting for a CPU, where the kernel
    /// accounts it.
    pub ours_run_queue: Option<Duration>,
    /// Of `bare`, the same.
    pub bare_run_queue: Option<Duration>,
}

impl RegSample {
    /// Takes both registrations on the calling thread, which must be fresh, in the order
    /// `ours_first` says.
    pub fn take(bench: &'static Bench, pages: &BarePages, ours_first: bool) -> RegSample {
        let (ours, bare) = if ours_first {
            let ours = with_run_queue_wait(time_ours);
            (ours, with_run_queue_wait(|| time_bare(bench, pages)))
        } else {
            let bare = with_run_queue_wait(|| time_bare(bench, pages));
            (with_run_queue_wait(time_ours), bare)
        };
        RegSample {
            ours: ours.0,
            bare: bare.0,
            ours_run_queue: ours.1,
            bare_run_queue: bare.1,
        }
    }

    /// `ours` without its run-queue wait: time on a CPU, or blocked.
    pub fn ours_off_run_queue(&self) -> Option<Duration> {
        self.ours_run_queue.map(|w| self.ours.saturating_sub(w))
    }

    /// `bare` without its run-queue wait.
    pub fn bare_off_run_queue(&self) -> Option<Duration> {
        self.bare_run_queue.map(|w| self.bare.saturating_sub(w))
    }
}

/// How long the calling thread has been runnable but waiting for a CPU, in total: the second
/// field of `/proc/thread-self/schedstat`. `None` where the kernel does not account it.
pub fn run_queue_wait() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `timed`, which returns how long its timed part took, and returns that with how long
/// the thread waited for a CPU meanwhile. The wait is read just outside `timed`, so it may
/// include a wait of the untimed code around the timed part; it is capped at the timed time.
fn with_run_queue_wait(timed: impl FnOnce() -> Duration) -> (Duration, Option<Duration>) {
    let before = run_queue_wait();
    let elapsed = timed();
    let after = run_queue_wait();
    let waited = before
        .zip(after)
        .map(|(b, a)| a.saturating_sub(b).min(elapsed));
    (elapsed, waited)
}

/// Makes sure the calling thread's kernel task storage header exists, by one untimed update of
/// `hint_value_map` (see the module documentation).
pub fn prepare_task_storage(bench: &'static Bench) -> Result<(), i32> {
    SyscallHint::for_current_thread(bench.hint_value_map())?.set(0)
}

/// Times the runtime's registration of the calling thread, which must be fresh: it has never
/// touched a hint.
pub fn time_ours() -> Duration {
    let start = Instant::now();
    let result = tld_runtime::thread_init();
    let elapsed = start.elapsed();
    if let Err(e) = result {
        panic!("tld_runtime::thread_init() failed: {e}");
    }
    elapsed
}

/// Times the bare registration of the calling thread with a fresh page from `pages`.
pub fn time_bare(bench: &'static Bench, pages: &BarePages) -> Duration {
    let data = pages.take().expect("BarePages has a page for every sample");
    let start = Instant::now();
    let result = bare_register(bench.bare_reg_map(), data, pages.meta());
    let elapsed = start.elapsed();
    if let Err(rc) = result {
        panic!("bare registration failed: {rc}");
    }
    elapsed
}

/// Spawns a fresh thread, takes both registrations in it (`ours_first` says in which order),
/// and joins it.
pub fn sample_fresh_thread(
    bench: &'static Bench,
    pages: &'static BarePages,
    ours_first: bool,
) -> RegSample {
    std::thread::spawn(move || {
        prepare_task_storage(bench).expect("updating hint_value_map");
        RegSample::take(bench, pages, ours_first)
    })
    .join()
    .expect("the sampling thread panicked")
}

/// What [`sustained_churn`] measured.
pub struct Churn {
    /// Both registrations of every thread, in spawn order.
    pub samples: Vec<RegSample>,
    /// The interval between spawns that was asked for.
    pub period: Duration,
    /// How long threads were spawned for.
    pub elapsed: Duration,
    /// The most threads that held a page at once (counted from before each thread's first
    /// touch until after the runtime released its page).
    pub peak_live: usize,
    /// The runtime's pool, in pages, after every thread exited.
    pub pool_pages: usize,
}

/// Registers threads under sustained churn: a new thread every `period` for `duration` (at
/// most `max_threads`), each taking both registrations as [`sample_fresh_thread`] does, while
/// earlier threads are still exiting. Threads are never waited for before the next one starts,
/// so pages of exited threads are reused as fast as threads come and go.
pub fn sustained_churn(
    bench: &'static Bench,
    period: Duration,
    duration: Duration,
    max_threads: usize,
) -> Churn {
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    let pages: &'static BarePages = Box::leak(Box::new(
        BarePages::new(max_threads).expect("mapping pages for bare registrations"),
    ));
    // Sleeps of tens of µs: without this the kernel rounds them up by its default 50 µs slack.
    // SAFETY: prctl(PR_SET_TIMERSLACK) takes integers and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
    let (tx, rx) = std::sync::mpsc::channel::<(usize, RegSample)>();
    let peak = AtomicUsize::new(0);
    let start = Instant::now();
    let mut spawned = 0;
    std::thread::scope(|s| {
        let peak = &peak;
        let mut next = start;
        while spawned < max_threads && start.elapsed() < duration {
            let tx = tx.clone();
            let n = spawned;
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn_scoped(s, move || {
                    // Counted until the runtime has released the thread's page.
                    tld_runtime::at_thread_exit(|| {
                        LIVE.fetch_sub(1, Ordering::Relaxed);
                    })
                    .expect("an exit hook");
                    let live = LIVE.fetch_add(1, Ordering::Relaxed) + 1;
                    peak.fetch_max(live, Ordering::Relaxed);
                    prepare_task_storage(bench).expect("updating hint_value_map");
                    let sample = RegSample::take(bench, pages, n % 2 == 0);
                    let _ = tx.send((n, sample));
                })
                .expect("spawn a churn thread");
            spawned += 1;
            next += period;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    });
    let elapsed = start.elapsed();
    drop(tx);
    let mut samples: Vec<(usize, RegSample)> = rx.iter().collect();
    samples.sort_by_key(|(n, _)| *n);
    // Scoped threads are joined, but their exit hooks (where the runtime releases pages) may
    // still be running: wait for the last of them.
    let settle = Instant::now();
    while LIVE.load(Ordering::Relaxed) > 0 && settle.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    Churn {
        samples: samples.into_iter().map(|(_, s)| s).collect(),
        period,
        elapsed,
        peak_live: peak.load(Ordering::Relaxed),
        pool_pages: tld_runtime::status().pool_pages,
    }
}
