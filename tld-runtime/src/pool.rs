//! The pool of blocks that threads' pages come from, and page retirement.
//!
//! A block is one page (more only for a layout that is not published) whose first page is what
//! the kernel pins. Blocks are carved from anonymous mappings of [`BLOCKS_PER_CHUNK`] blocks,
//! marked `MADV_NOHUGEPAGE`, and never unmapped.
//!
//! # Growing
//!
//! Mapping a chunk takes the process's memory-map lock for writing, which waits for every
//! thread that is being created or is exiting (their stacks are mapped and unmapped under the
//! same lock): on a busy process that can take milliseconds. So no chunk is ever mapped under
//! the pool's lock. When a take leaves fewer than [`LOW_WATER`] blocks free, the thread that
//! took it maps the next chunk (one thread at a time) with no lock held, while other threads go
//! on taking the blocks that are left, and threads that exit go on returning theirs. Only a
//! thread that finds the pool empty while the next chunk is being mapped waits for it.
//!
//! # Retirement
//!
//! Once a block has been registered, some map element may name its physical page for longer
//! than its thread lives: an old scheduler's map that still holds the thread's element, a delete
//! whose unpinning waits for an RCU-tasks-trace grace period, a sleepable or long-running BPF
//! program that looked the page up before the thread exited. BPF writes through such a stale
//! element must never reach the next thread that gets the block.
//!
//! So a block leaves its thread by [`retire`]: `madvise(MADV_DONTNEED)` drops the process's
//! mapping of its physical pages. A pinned page survives in the kernel, held by the elements
//! that still name it, and every stale write lands there, where no thread ever looks again; the
//! kernel frees it when the last such element goes (deleted, replaced, or its task freed). The
//! virtual block gets fresh zeroed pages on its next touch and can go to a new thread at once.
//! No grace period, no quarantine, no background thread. (`MADV_FREE` would not do: the kernel
//! never discards a pinned page, so both sides would keep sharing it. And a retired 4 KiB page
//! that is part of a transparent huge page keeps the whole 2 MiB page alive, hence
//! `MADV_NOHUGEPAGE` on every chunk.)
//!
//! The pool therefore never holds more than the peak number of live threads plus
//! `LOW_WATER + BLOCKS_PER_CHUNK - 1` blocks (63).

use std::sync::Mutex;

use crate::locks::lock;
use crate::sys;

/// A block's address, as stored in shared tables.
pub type BlockAddr = usize;

/// Blocks mapped at a time when the pool runs low.
pub const BLOCKS_PER_CHUNK: usize = 48;

/// A take that leaves fewer free blocks than this maps the next chunk.
pub const LOW_WATER: usize = 16;

/// Free blocks, and how many have ever been mapped.
#[derive(Debug)]
pub struct PagePool {
    block_size: usize,
    free: Vec<BlockAddr>,
    /// Blocks ever mapped: the pool's size.
    total: usize,
    /// A thread is mapping the next chunk.
    growing: bool,
}

/// What [`PagePool::take`] gives.
#[derive(Debug, Clone, Copy)]
pub struct Take {
    /// A free block, if there was one.
    pub block: Option<BlockAddr>,
    /// The caller must map the next chunk ([`Chunk::map`], with no lock held) and hand it to
    /// [`PagePool::add`]; no other thread does meanwhile.
    pub grow: bool,
}

/// A newly mapped chunk of [`BLOCKS_PER_CHUNK`] blocks, not yet in a pool.
#[derive(Debug)]
pub struct Chunk(BlockAddr);

impl Chunk {
    /// Maps a chunk of blocks of `block_size` bytes. Makes system calls: never call it with a
    /// lock held. Returns the errno if no memory could be mapped.
    pub fn map(block_size: usize) -> Result<Chunk, i32> {
        let len = block_size * BLOCKS_PER_CHUNK;
        let chunk = sys::map_pages(len)?.as_ptr() as BlockAddr;
        // Best effort: without it, a retired page could keep a huge page alive (see above).
        // SAFETY: the chunk was just mapped by `map_pages`, and nothing points into it yet.
        let _ = unsafe { sys::madvise(chunk, len, libc::MADV_NOHUGEPAGE) };
        Ok(Chunk(chunk))
    }
}

impl PagePool {
    /// An empty pool of blocks of `block_size` bytes (a multiple of the page size).
    pub const fn new(block_size: usize) -> PagePool {
        PagePool {
            block_size,
            free: Vec::new(),
            total: 0,
            growing: false,
        }
    }

    /// A free block, if there is one, and whether the caller must map the next chunk. The
    /// block's contents are unspecified; the caller fills it.
    pub fn take(&mut self) -> Take {
        let block = self.free.pop();
        let grow = !self.growing && self.free.len() < LOW_WATER;
        self.growing |= grow;
        Take { block, grow }
    }

    /// Ends the growth that a [`Take`] asked the caller for: adds the chunk it mapped, or
    /// nothing if mapping failed (the next take that runs low tries again).
    pub fn add(&mut self, chunk: Result<Chunk, i32>) {
        self.growing = false;
        if let Ok(Chunk(base)) = chunk {
            self.total += BLOCKS_PER_CHUNK;
            self.free.extend(
                (0..BLOCKS_PER_CHUNK)
                    .rev()
                    .map(|i| base + i * self.block_size),
            );
        }
    }

    /// In a forked child: the thread that was mapping the next chunk, if any, does not exist.
    pub fn forget_growth(&mut self) {
        self.growing = false;
    }

    /// Returns a block that no thread uses and no element names (never registered, or
    /// [`retire`]d) to the pool.
    pub fn put(&mut self, block: BlockAddr) {
        self.free.push(block);
    }

    /// Blocks ever mapped: the pool's size.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Makes room for `more` blocks, so that [`PagePool::put`] of as many allocates nothing
    /// (in a forked child).
    pub fn reserve(&mut self, more: usize) {
        self.free.reserve(more);
    }
}

/// A free block from `pool` (of blocks of `block_size` bytes), growing the pool when it runs
/// low, with no lock held while a chunk is mapped. Returns the errno if the pool is empty and no
/// memory could be mapped.
pub fn take_block(pool: &Mutex<PagePool>, block_size: usize) -> Result<BlockAddr, i32> {
    loop {
        let Take { block, grow } = lock(pool).take();
        if grow {
            let chunk = Chunk::map(block_size);
            let failed = chunk.as_ref().err().copied();
            lock(pool).add(chunk);
            if let (Some(errno), None) = (failed, block) {
                return Err(errno);
            }
        }
        if let Some(block) = block {
            return Ok(block);
        }
        if !grow {
            // Empty, and another thread is mapping the next chunk: wait for it.
            std::thread::yield_now();
        }
    }
}

/// Retires the physical pages of `block` (`size` bytes): from now on no BPF program can reach
/// the memory a new user of the block sees. The block is left resident and zeroed, so that its
/// next user does not take the page fault. Returns `false` if the kernel refused, in which case
/// the block must never be used again.
///
/// # Safety
/// `block` must be a whole block of this pool that no thread uses any more: its thread has
/// detached it, and it is not in the pool's free list.
pub unsafe fn retire(block: BlockAddr, size: usize) -> bool {
    // SAFETY: the caller hands over a block of a chunk mapped by `map_pages`, which only raw
    // pointers ever reach and which nobody uses now.
    if unsafe { sys::madvise(block, size, libc::MADV_DONTNEED) }.is_err() {
        return false;
    }
    let page = sys::page_size();
    for at in (0..size).step_by(page) {
        // SAFETY: `block..block + size` is a mapped, writable block that no thread uses (its
        // thread is gone and it is not yet in the pool); after `MADV_DONTNEED` the write faults
        // in a fresh zeroed page that only this process maps.
        unsafe { ((block + at) as *mut u8).write_volatile(0) };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_at_a_time_grows_the_pool_before_it_runs_dry() {
        let block_size = sys::page_size();
        let pool = Mutex::new(PagePool::new(block_size));
        // Empty: the first take gets nothing and must grow; a second one meanwhile waits.
        let first = lock(&pool).take();
        assert!(first.block.is_none() && first.grow);
        let second = lock(&pool).take();
        assert!(second.block.is_none() && !second.grow);
        lock(&pool).add(Chunk::map(block_size));
        assert_eq!(lock(&pool).total(), BLOCKS_PER_CHUNK);

        // Takes down to the low-water mark ask for nothing; the one below it asks once.
        let mut taken = Vec::new();
        let mut grows = 0;
        for _ in 0..BLOCKS_PER_CHUNK {
            let t = lock(&pool).take();
            taken.push(t.block.expect("a free block"));
            grows += usize::from(t.grow);
        }
        assert_eq!(grows, 1);
        assert_eq!(lock(&pool).take().block, None);
        // A failed mapping ends the growth: the next take may try again.
        lock(&pool).add(Err(libc::ENOMEM));
        assert!(lock(&pool).take().grow);
        lock(&pool).add(Err(libc::ENOMEM));

        // take_block grows the pool by itself; the blocks are distinct and block-aligned.
        let more: Vec<_> = (0..BLOCKS_PER_CHUNK)
            .map(|_| take_block(&pool, block_size).expect("a block"))
            .collect();
        taken.extend(more);
        let mut sorted = taken.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), taken.len());
        assert!(taken.iter().all(|b| b % block_size == 0));
        // Never more than the blocks in use plus LOW_WATER + BLOCKS_PER_CHUNK - 1.
        assert!(lock(&pool).total() < taken.len() + LOW_WATER + BLOCKS_PER_CHUNK);
    }
}
