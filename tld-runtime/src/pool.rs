//! The pool of blocks that threads' pages come from, and page retirement.
//!
//! A block is one page (more only for a layout that is not published) whose first page is what
//! the kernel pins. Blocks are carved from anonymous mappings of [`BLOCKS_PER_CHUNK`] blocks,
//! marked `MADV_NOHUGEPAGE`, and never unmapped.
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
//! The pool therefore never holds more than the peak number of live threads plus one chunk.

use crate::sys;

/// A block's address, as stored in shared tables.
pub type BlockAddr = usize;

/// Blocks mapped at a time when the pool runs dry.
pub const BLOCKS_PER_CHUNK: usize = 64;

/// Free blocks, and how many have ever been mapped.
#[derive(Debug)]
pub struct PagePool {
    block_size: usize,
    free: Vec<BlockAddr>,
    /// Blocks ever mapped: the pool's size.
    total: usize,
}

impl PagePool {
    /// An empty pool of blocks of `block_size` bytes (a multiple of the page size).
    pub const fn new(block_size: usize) -> PagePool {
        PagePool {
            block_size,
            free: Vec::new(),
            total: 0,
        }
    }

    /// A free block, mapping a new chunk if there is none. The block's contents are
    /// unspecified; the caller fills it. Returns the errno if no memory could be mapped.
    pub fn take(&mut self) -> Result<BlockAddr, i32> {
        if let Some(b) = self.free.pop() {
            return Ok(b);
        }
        let len = self.block_size * BLOCKS_PER_CHUNK;
        let chunk = sys::map_pages(len)?.as_ptr() as BlockAddr;
        // Best effort: without it, a retired page could keep a huge page alive (see above).
        // SAFETY: the chunk was just mapped by `map_pages`, and nothing points into it yet.
        let _ = unsafe { sys::madvise(chunk, len, libc::MADV_NOHUGEPAGE) };
        self.total += BLOCKS_PER_CHUNK;
        self.free.extend(
            (1..BLOCKS_PER_CHUNK)
                .rev()
                .map(|i| chunk + i * self.block_size),
        );
        Ok(chunk)
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
