//! Thread pages: each thread's block, the pool they come from, and the table of live threads.
//!
//! A block is one page (more only for a layout that is not published) whose first page is what
//! the kernel pins. Blocks are carved from large anonymous mappings and are never unmapped:
//! after a thread exits, the kernel may still hold its page pinned for a grace period, and a BPF
//! program may still write to it. A released block waits in quarantine until an RCU grace period
//! has passed, and only then serves a new thread.

use std::cell::{Cell, RefCell};
use std::sync::Mutex;

use crate::sys;

thread_local! {
    /// The calling thread's block, or null before its first access and after it exits.
    static BLOCK: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
    /// Set once the thread has released its block: it must never take another.
    static EXITED: Cell<bool> = const { Cell::new(false) };
    /// Storage for hints the layout never saw (see [`fallback_slot`]).
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
/// Quarantined blocks that make it worth waiting for a grace period to reuse them.
const QUARANTINE_BATCH: usize = 64;

/// The pool of blocks and the table of threads using them.
pub struct Pages {
    block_size: usize,
    state: Mutex<PagesState>,
}

#[derive(Default)]
struct PagesState {
    free: Vec<BlockAddr>,
    quarantine: Vec<BlockAddr>,
    /// Blocks ever mapped: the pool's size.
    total: usize,
    threads: Vec<ThreadRecord>,
}

impl Pages {
    /// An empty pool of blocks of `block_size` bytes (a multiple of the page size).
    pub fn new(block_size: usize) -> Pages {
        Pages {
            block_size,
            state: Mutex::new(PagesState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PagesState> {
        // A panic while holding the lock cannot leave the vectors inconsistent: recover.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the calling thread a block filled from `template`, and records the thread.
    ///
    /// Returns the block, or the errno when no memory could be mapped. A thread that has
    /// exited never gets a block again.
    pub fn attach_current_thread(&self, template: &[u8]) -> Result<BlockAddr, i32> {
        if current_thread_exited() {
            return Err(libc::ESRCH);
        }
        let existing = current_block();
        if !existing.is_null() {
            return Ok(existing as BlockAddr);
        }
        let block = self.take()?;
        // SAFETY: `block` is a block of `block_size` bytes that no thread uses (it came from
        // the free list or a fresh mapping); `template` has `block_size` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(template.as_ptr(), block as *mut u8, self.block_size)
        };
        self.lock().threads.push(ThreadRecord {
            tid: sys::gettid(),
            block,
            registered: 0,
        });
        BLOCK.with(|b| b.set(block as *mut u8));
        Ok(block)
    }

    /// Takes the calling thread's block away for good and removes the thread from the table.
    /// The caller unregisters it from the kernel, then hands the record to [`Pages::release`].
    pub fn detach_current_thread(&self) -> Option<ThreadRecord> {
        EXITED.with(|e| e.set(true));
        let block = BLOCK.with(|b| b.replace(std::ptr::null_mut())) as BlockAddr;
        if block == 0 {
            return None;
        }
        let mut state = self.lock();
        let i = state.threads.iter().position(|t| t.block == block)?;
        Some(state.threads.swap_remove(i))
    }

    /// Returns a detached thread's block to the pool: at once if the kernel never saw it,
    /// otherwise through quarantine.
    pub fn release(&self, record: ThreadRecord) {
        let mut state = self.lock();
        if record.registered == 0 {
            state.free.push(record.block);
        } else {
            state.quarantine.push(record.block);
        }
    }

    /// Runs `f` on the table of live threads, under the lock.
    pub fn with_threads<R>(&self, f: impl FnOnce(&mut [ThreadRecord]) -> R) -> R {
        f(&mut self.lock().threads)
    }

    /// Holds the lock across `fork()`, so that the child inherits a consistent table.
    pub fn lock_for_fork(&'static self) -> PagesForkLock {
        PagesForkLock(self.lock())
    }

    /// Live threads, blocks ever mapped, blocks free, blocks in quarantine.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let s = self.lock();
        (s.threads.len(), s.total, s.free.len(), s.quarantine.len())
    }

    fn take(&self) -> Result<BlockAddr, i32> {
        let mut state = self.lock();
        if let Some(b) = state.free.pop() {
            return Ok(b);
        }
        if state.quarantine.len() >= QUARANTINE_BATCH {
            // Blocks quarantined before the barrier starts are safe once it returns: every
            // non-sleepable BPF program that could have found their (deleted) storage is done.
            let ready = std::mem::take(&mut state.quarantine);
            drop(state);
            if sys::membarrier_global().is_ok() {
                let mut state = self.lock();
                state.free.extend(ready);
                return Ok(state.free.pop().expect("the batch is not empty"));
            }
            state = self.lock();
            state.quarantine.extend(ready);
        }
        let chunk = sys::map_pages(self.block_size * BLOCKS_PER_CHUNK)?.as_ptr() as BlockAddr;
        state.total += BLOCKS_PER_CHUNK;
        state
            .free
            .extend((1..BLOCKS_PER_CHUNK).map(|i| chunk + i * self.block_size));
        Ok(chunk)
    }
}

/// The table, locked by the thread calling `fork()`; see [`Pages::lock_for_fork`].
pub struct PagesForkLock(std::sync::MutexGuard<'static, PagesState>);

impl PagesForkLock {
    /// In a forked child only the calling thread exists, and the kernel registered none of the
    /// child's pages. Keeps the calling thread's record, with its new tid and unregistered, and
    /// makes every other block free: they are the child's private copies, which nothing pins.
    pub fn reset_in_child(&mut self) -> Option<ThreadRecord> {
        let state = &mut *self.0;
        let mine = current_block() as BlockAddr;
        let mut kept = None;
        for r in std::mem::take(&mut state.threads) {
            if r.block == mine {
                kept = Some(ThreadRecord {
                    tid: sys::gettid(),
                    block: r.block,
                    registered: 0,
                });
            } else {
                state.free.push(r.block);
            }
        }
        let quarantined = std::mem::take(&mut state.quarantine);
        state.free.extend(quarantined);
        state.threads.extend(kept);
        kept
    }

    /// Records that the thread with `block` is registered under connection generation `gen`.
    pub fn set_registered(&mut self, block: BlockAddr, gen: u64) {
        if let Some(r) = self.0.threads.iter_mut().find(|r| r.block == block) {
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
