//! Thread pages: each thread's block, the pool they come from, and the table of live threads.
//!
//! A block is one page (more only for a layout that is not published) whose first page is what
//! the kernel pins. Blocks are carved from large anonymous mappings and are never unmapped:
//! after a thread exits, the kernel may still hold its page pinned for a grace period, and a BPF
//! program may still write to it. A released block waits in quarantine until an RCU grace period
//! has passed, and only then serves a new thread. The wait happens on a background thread
//! (`tld-reclaim`), which runs grace periods back to back while the quarantine is not empty. A
//! new thread that finds no free block gets a fresh one, unless the pool is already as large as
//! its bound: the peak number of live threads, plus a fixed slack, plus one chunk. Then, and only
//! then, it waits for the reclaimer's grace period (threads that come and go faster than grace
//! periods end).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::sys;

thread_local! {
    /// The calling thread's block, or null before its first access and after it exits.
    static BLOCK: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
    /// Set once the thread has released its block: it must never take another.
    static EXITED: Cell<bool> = const { Cell::new(false) };
    /// Storage for values that have no place in a block (see [`fallback_slot`]).
    static FALLBACK: RefCell<Vec<(usize, Box<[u64]>)>> = const { RefCell::new(Vec::new()) };
}

/// The calling thread's block, or null. The hot path: one TLS load.
#[inline(always)]
pub fn current_block() -> *mut u8 {
    BLOCK.with(Cell::get)
}

/// Whether the calling thread has released its block for good.
pub fn current_thread_exited() -> bool {
    EXITED.with(Cell::get)
}

/// A block's address, as stored in shared tables.
pub type BlockAddr = usize;

/// One live thread that has a block.
#[derive(Debug, Clone, Copy)]
pub struct ThreadRecord {
    /// Kernel thread id.
    pub tid: i32,
    /// Its block.
    pub block: BlockAddr,
    /// The connection generation it is registered under (0: none).
    pub registered: u64,
}

/// Blocks handed out per mapping when the pool runs dry.
const BLOCKS_PER_CHUNK: usize = 64;
/// Blocks the pool may hold beyond the peak number of live threads for those waiting out their
/// grace period, before a new thread waits for the reclaimer instead of mapping more.
const RECLAIM_SLACK: usize = 128;
/// Without `membarrier`, how long a batch waits: several RCU grace periods on any normal system.
const FALLBACK_GRACE: Duration = Duration::from_millis(100);
/// The longest a new thread waits for the reclaimer before it maps a block anyway.
const MAX_WAIT_FOR_RECLAIM: Duration = Duration::from_millis(500);

/// The pool of blocks and the table of threads using them.
pub struct Pages {
    block_size: usize,
    state: Mutex<PagesState>,
    /// Wakes the reclaimer when a block enters quarantine.
    quarantine_full: Condvar,
    /// Wakes threads waiting for the reclaimer's batch.
    blocks_freed: Condvar,
}

#[derive(Default)]
struct PagesState {
    free: Vec<BlockAddr>,
    quarantine: Vec<BlockAddr>,
    /// Blocks ever mapped: the pool's size.
    total: usize,
    /// Live threads with a block, by block.
    threads: HashMap<BlockAddr, ThreadRecord>,
    /// The most threads ever live at once.
    peak_live: usize,
    /// Blocks the reclaimer holds while it waits for a grace period.
    in_flight: usize,
    /// The reclaimer thread is running.
    reclaiming: bool,
}

impl Pages {
    /// An empty pool of blocks of `block_size` bytes (a multiple of the page size).
    pub fn new(block_size: usize) -> Pages {
        Pages {
            block_size,
            state: Mutex::new(PagesState::default()),
            quarantine_full: Condvar::new(),
            blocks_freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PagesState> {
        // Every critical section leaves the state consistent at each step: recover from a
        // poisoned lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the calling thread a block filled from `template`, and records the thread.
    ///
    /// Returns its record, or the errno when no memory could be mapped. A thread that has
    /// exited never gets a block again.
    pub fn attach_current_thread(&'static self, template: &[u8]) -> Result<ThreadRecord, i32> {
        if current_thread_exited() {
            return Err(libc::ESRCH);
        }
        debug_assert!(current_block().is_null());
        let block = self.take()?;
        // SAFETY: `block` is a block of `block_size` bytes that no thread uses (it came from
        // the free list or a fresh mapping); `template` has `block_size` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(template.as_ptr(), block as *mut u8, self.block_size)
        };
        let record = ThreadRecord {
            tid: sys::gettid(),
            block,
            registered: 0,
        };
        let mut state = self.lock();
        state.threads.insert(block, record);
        state.peak_live = state.peak_live.max(state.threads.len());
        drop(state);
        BLOCK.with(|b| b.set(block as *mut u8));
        Ok(record)
    }

    /// Takes the calling thread's block away for good and removes the thread from the table.
    /// The caller unregisters it from the kernel, then hands the record to [`Pages::release`].
    pub fn detach_current_thread(&self) -> Option<ThreadRecord> {
        EXITED.with(|e| e.set(true));
        let block = BLOCK.with(|b| b.replace(std::ptr::null_mut())) as BlockAddr;
        if block == 0 {
            return None;
        }
        self.lock().threads.remove(&block)
    }

    /// Returns a detached thread's block to the pool: at once if the kernel never saw it,
    /// otherwise through quarantine.
    pub fn release(&self, record: ThreadRecord) {
        let mut state = self.lock();
        if record.registered == 0 {
            state.free.push(record.block);
        } else {
            state.quarantine.push(record.block);
            self.quarantine_full.notify_one();
        }
    }

    /// Runs `f` on the table of live threads, under the lock.
    pub fn with_threads<R>(&self, f: impl FnOnce(&mut HashMap<BlockAddr, ThreadRecord>) -> R) -> R {
        f(&mut self.lock().threads)
    }

    /// Holds the lock across `fork()`, so that the child inherits a consistent table.
    pub fn lock_for_fork(&'static self) -> PagesForkLock {
        PagesForkLock(self.lock())
    }

    /// Live threads, and blocks ever mapped (the pool's size).
    pub fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.threads.len(), s.total)
    }

    /// The most blocks the pool maps for the threads it has seen.
    fn bound(state: &PagesState) -> usize {
        state.peak_live + 1 + RECLAIM_SLACK + BLOCKS_PER_CHUNK
    }

    /// A free block, or a fresh one. Waits for the reclaimer only when the pool has reached its
    /// bound and the blocks it lacks are waiting for their grace period.
    fn take(&'static self) -> Result<BlockAddr, i32> {
        let mut state = self.lock();
        if !state.quarantine.is_empty() && !state.reclaiming {
            // Started here, on a thread in its normal life, rather than in an exiting thread's
            // destructor, where spawning a thread is not safe.
            state.reclaiming = std::thread::Builder::new()
                .name("tld-reclaim".into())
                .stack_size(64 * 1024)
                .spawn(move || self.reclaim())
                .is_ok();
        }
        let mut waited = false;
        loop {
            if let Some(b) = state.free.pop() {
                return Ok(b);
            }
            let pending = state.quarantine.len() + state.in_flight;
            let at_bound = state.total + BLOCKS_PER_CHUNK > Self::bound(&state);
            if pending == 0 || !at_bound || !state.reclaiming || waited {
                break;
            }
            let (s, _) = self
                .blocks_freed
                .wait_timeout_while(state, MAX_WAIT_FOR_RECLAIM, |s| s.free.is_empty())
                .unwrap_or_else(|e| e.into_inner());
            state = s;
            waited = true;
        }
        let chunk = sys::map_pages(self.block_size * BLOCKS_PER_CHUNK)?.as_ptr() as BlockAddr;
        state.total += BLOCKS_PER_CHUNK;
        state
            .free
            .extend((1..BLOCKS_PER_CHUNK).map(|i| chunk + i * self.block_size));
        Ok(chunk)
    }

    /// The reclaimer's loop: takes whatever is in quarantine, waits for a grace period, frees
    /// it, and starts over; sleeps while the quarantine is empty.
    fn reclaim(&self) {
        let mut state = self.lock();
        loop {
            state = self
                .quarantine_full
                .wait_while(state, |s| s.quarantine.is_empty())
                .unwrap_or_else(|e| e.into_inner());
            // Blocks quarantined before the barrier starts are safe once it returns: every
            // non-sleepable BPF program that could have found their (deleted) storage is done.
            let batch = std::mem::take(&mut state.quarantine);
            state.in_flight = batch.len();
            drop(state);
            if sys::membarrier_global().is_err() {
                std::thread::sleep(FALLBACK_GRACE);
            }
            state = self.lock();
            state.in_flight = 0;
            state.free.extend(batch);
            self.blocks_freed.notify_all();
        }
    }
}

/// The table, locked by the thread calling `fork()`; see [`Pages::lock_for_fork`].
pub struct PagesForkLock(MutexGuard<'static, PagesState>);

impl PagesForkLock {
    /// In a forked child only the calling thread exists, and the kernel registered none of the
    /// child's pages. Keeps the calling thread's record, with its new tid and unregistered, and
    /// makes every other block free: they are the child's private copies, which nothing pins.
    pub fn reset_in_child(&mut self) -> Option<ThreadRecord> {
        let state = &mut *self.0;
        let mine = current_block() as BlockAddr;
        let mut kept = None;
        for (block, _) in std::mem::take(&mut state.threads) {
            if block == mine {
                kept = Some(ThreadRecord {
                    tid: sys::gettid(),
                    block,
                    registered: 0,
                });
            } else {
                state.free.push(block);
            }
        }
        let quarantined = std::mem::take(&mut state.quarantine);
        state.free.extend(quarantined);
        // No reclaimer thread survives fork, nor do the threads that were waiting for it.
        state.reclaiming = false;
        state.in_flight = 0;
        state.peak_live = 1;
        if let Some(r) = kept {
            state.threads.insert(r.block, r);
        }
        kept
    }

    /// Records that the thread with `block` is registered under connection generation `gen`.
    pub fn set_registered(&mut self, block: BlockAddr, gen: u64) {
        if let Some(r) = self.0.threads.get_mut(&block) {
            r.registered = gen;
        }
    }
}

/// Per-thread storage for a value that has no place in the thread's block: a hint whose
/// registration was not linked in, or any value on a thread whose block is gone. `id` names the
/// value; `init` is its first content. The values stay private to the thread. Returns `None`
/// while the thread's thread-locals are being destroyed.
pub fn fallback_slot(id: usize, init: &[u8]) -> Option<*mut u8> {
    FALLBACK
        .try_with(|slots| {
            let mut slots = slots.try_borrow_mut().ok()?;
            if let Some((_, buf)) = slots.iter_mut().find(|(k, _)| *k == id) {
                return Some(buf.as_mut_ptr().cast::<u8>());
            }
            let mut buf = vec![0u64; init.len().div_ceil(8).max(1)].into_boxed_slice();
            // SAFETY: `buf` has at least `init.len()` bytes, and the two do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    init.as_ptr(),
                    buf.as_mut_ptr().cast::<u8>(),
                    init.len(),
                )
            };
            let p = buf.as_mut_ptr().cast::<u8>();
            slots.push((id, buf));
            Some(p)
        })
        .ok()
        .flatten()
}
