//! The pool of blocks that threads' pages come from, and page retirement.
//!
//! A block is one page (more only for a layout that is not published) whose first page is what
//! the kernel pins. A thread takes a block when it first touches a hint and gives it back when
//! it exits; the next thread to start gets it.
//!
//! # No lock, no system call
//!
//! On a machine with more threads than CPUs, anything a registering thread may wait for is a
//! tail: a thread preempted while holding a lock (for well under a microsecond of work) stalls
//! everyone queued behind it for as long as it then waits for a CPU, milliseconds when
//! hundreds of threads are runnable; and mapping memory takes the process's memory-map lock for
//! writing, which waits for every thread being created or exiting. So taking and returning a
//! block is one compare-and-swap each, and no take maps memory:
//!
//! - Free blocks are an [`IndexStack`]: a thread preempted halfway through a push or pop holds
//!   nobody up.
//! - Blocks that no thread has used yet are carved, by one `fetch_add` of a counter, from
//!   *regions* of address space reserved ahead of need: the first of [`FIRST_REGION_BLOCKS`]
//!   blocks when the runtime is built, each next one twice the size of the last. Reserving is
//!   not allocating: a region is an anonymous `MAP_NORESERVE` mapping, marked
//!   `MADV_NOHUGEPAGE`, and a block becomes memory when its first thread writes it. When the
//!   counter passes the middle of a region, the thread that passed it reserves the next one
//!   (one thread, once per region: a handful of times in a process's life), and only a thread
//!   that finds every reserved block taken waits for that.
//!
//! A block is known by its index: regions are laid end to end in index space, so an index gives
//! the region and the block's place in it, and each block's stack link lives in a [`Segments`]
//! array, whose elements never move.
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
//! `MADV_NOHUGEPAGE` on every region.)
//!
//! Blocks are taken from the free stack before any unused one, so the pool's memory is the
//! peak number of threads that held a block at once: [`PagePool::total`] counts the blocks
//! ever used. Regions are never unmapped.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::kernel::sys;
use crate::threads::index_stack::{Head, IndexStack, Link};
use crate::threads::segments::Segments;

/// A block's address, as stored in shared tables.
pub type BlockAddr = usize;

/// Blocks in the first region, reserved when the runtime is built.
pub const FIRST_REGION_BLOCKS: usize = 1024;

/// The most blocks a pool holds: as many as it keeps stack links for (about a million). A
/// thread that finds them all in use works without a block, on private storage.
pub const MAX_BLOCKS: usize = Segments::<AtomicU32>::CAPACITY;

/// Regions at most: their blocks, `FIRST_REGION_BLOCKS * (2^REGIONS - 1)`, cover
/// [`MAX_BLOCKS`].
const REGIONS: usize = 11;

/// A region's state before it is reserved.
const UNRESERVED: usize = 0;
/// A region being reserved by some thread.
const RESERVING: usize = 1;

/// A block of a pool: its index there, and its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    index: u32,
    addr: BlockAddr,
}

impl Block {
    /// The block's first byte.
    pub fn addr(self) -> BlockAddr {
        self.addr
    }

    /// Its index in its pool and its address, for a table that stores them in atomics.
    pub fn to_parts(self) -> (u32, BlockAddr) {
        (self.index, self.addr)
    }

    /// The block that [`Block::to_parts`] gave these parts.
    pub fn from_parts(index: u32, addr: BlockAddr) -> Block {
        Block { index, addr }
    }
}

/// The region that holds block `index`, and the index of its first block.
fn region_of(index: usize) -> (usize, usize) {
    // Region r holds indices FIRST * (2^r - 1) .. FIRST * (2^(r+1) - 1).
    let r = (index / FIRST_REGION_BLOCKS + 1).ilog2() as usize;
    (r, FIRST_REGION_BLOCKS * ((1 << r) - 1))
}

/// Blocks in region `r`.
fn region_blocks(r: usize) -> usize {
    FIRST_REGION_BLOCKS << r
}

/// A value alone on its cache line (two lines: adjacent-line prefetch pairs them), so that
/// threads hammering it do not slow down readers of what would otherwise share its line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct CachePadded<T>(T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Free blocks, and the address space that unused ones come from.
#[derive(Debug)]
pub struct PagePool {
    block_size: usize,
    /// Each region's first byte, or [`UNRESERVED`] or [`RESERVING`].
    regions: [AtomicUsize; REGIONS],
    /// Blocks ever used: the next unused block's index. On a cache line of its own, apart
    /// from the free stack's head: threads that take new blocks and threads that take and
    /// return used ones do not contend for one line.
    used: CachePadded<AtomicUsize>,
    /// The free blocks' stack, its head on a cache line of its own.
    free: CachePadded<IndexStack>,
    /// Each block's link on the free stack.
    links: Segments<AtomicU32>,
}

impl PagePool {
    /// An empty pool of blocks of `block_size` bytes (a multiple of the page size), with no
    /// address space reserved yet.
    pub const fn new(block_size: usize) -> PagePool {
        PagePool {
            block_size,
            regions: [const { AtomicUsize::new(UNRESERVED) }; REGIONS],
            used: CachePadded(AtomicUsize::new(0)),
            free: CachePadded(IndexStack::new()),
            links: Segments::new(),
        }
    }

    /// Reserves the first region now, so that no thread's first access does it. Makes system
    /// calls; returns the errno if the address space could not be had.
    pub fn prepare(&self) -> Result<(), i32> {
        self.reserve(0)
    }

    fn link(&self, index: u32) -> &AtomicU32 {
        self.links
            .get(index as usize)
            .expect("a free block has a link")
    }

    /// A block, free or never used, or the errno if address space for a new one could not be
    /// reserved. Never waits for another thread, unless every reserved block is taken and the
    /// next region is being reserved. The block's contents are unspecified; the caller fills
    /// it.
    pub fn take(&self) -> Result<Block, i32> {
        let prepare = |index: usize| {
            let (r, _) = region_of(index);
            if self.regions[r].load(Ordering::Acquire) <= RESERVING {
                self.reserve(r)?;
            }
            // The link's segment, allocated by the first block of each segment's worth.
            match self.links.get_or_allocate(index) {
                Some(_) => Ok(()),
                None => Err(libc::ENOMEM),
            }
        };
        match take_index(&self.free, &*self.used, |i| self.link(i), prepare)? {
            Taken::Free(index) => Ok(self.block(index as usize)),
            Taken::Fresh(index) => {
                let (r, first) = region_of(index);
                if index == first + region_blocks(r) / 2 && r + 1 < REGIONS {
                    // Half of this region is used: reserve the next one ahead of need.
                    let _ = self.reserve(r + 1);
                }
                Ok(self.block(index))
            }
        }
    }

    /// Reserves region `r` if nobody has, or waits while another thread does.
    fn reserve(&self, r: usize) -> Result<(), i32> {
        let region = &self.regions[r];
        loop {
            match region.compare_exchange(
                UNRESERVED,
                RESERVING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(RESERVING) => std::thread::yield_now(),
                Err(_) => return Ok(()),
            }
        }
        match Self::map_region(self.block_size * region_blocks(r)) {
            Ok(base) => {
                region.store(base, Ordering::Release);
                Ok(())
            }
            Err(errno) => {
                // The next thread that needs the region tries again.
                region.store(UNRESERVED, Ordering::Release);
                Err(errno)
            }
        }
    }

    /// Reserves `len` bytes of address space for blocks.
    fn map_region(len: usize) -> Result<BlockAddr, i32> {
        let base = sys::reserve_pages(len)?.as_ptr() as BlockAddr;
        // Best effort: without it, a retired page could keep a huge page alive (see above).
        // SAFETY: the region was just mapped by `reserve_pages`, and nothing points into it.
        let _ = unsafe { sys::madvise(base, len, libc::MADV_NOHUGEPAGE) };
        Ok(base)
    }

    /// Block `index`, whose region is reserved.
    fn block(&self, index: usize) -> Block {
        let (r, first) = region_of(index);
        let base = self.regions[r].load(Ordering::Acquire);
        debug_assert!(base > RESERVING, "a used block's region is reserved");
        Block {
            index: index as u32,
            addr: base + (index - first) * self.block_size,
        }
    }

    /// In a forked child: a region that a thread of the parent was reserving is left to be
    /// reserved again, since that thread does not exist in the child.
    pub fn forget_growth(&self) {
        for region in &self.regions {
            let _ = region.compare_exchange(
                RESERVING,
                UNRESERVED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Returns a block that no thread uses and no element names (never registered, or
    /// [`retire`]d) to the pool. Allocates nothing.
    pub fn put(&self, block: Block) {
        self.free.push(block.index, self.link(block.index));
    }

    /// Blocks ever used: the pool's size.
    pub fn total(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Where [`take_index`] found an index.
enum Taken {
    /// On the free stack.
    Free(u32),
    /// Never used before.
    Fresh(usize),
}

/// The counter of blocks ever used: an [`AtomicUsize`], or the model checker's in tests.
trait Counter {
    fn load(&self, order: Ordering) -> usize;
    fn compare_exchange_weak(
        &self,
        current: usize,
        new: usize,
        success: Ordering,
        failure: Ordering,
    ) -> Result<usize, usize>;
}

impl Counter for AtomicUsize {
    #[inline(always)]
    fn load(&self, order: Ordering) -> usize {
        AtomicUsize::load(self, order)
    }
    #[inline(always)]
    fn compare_exchange_weak(
        &self,
        current: usize,
        new: usize,
        success: Ordering,
        failure: Ordering,
    ) -> Result<usize, usize> {
        AtomicUsize::compare_exchange_weak(self, current, new, success, failure)
    }
}

/// The lock-free core of [`PagePool::take`] (which the model-checking test runs with loom's
/// atomics): an index popped from `free`, else the next never-used one, claimed by one
/// compare-and-swap of `used` once `prepare(index)` has made it usable (its region reserved,
/// its link allocated) or said why it cannot be.
#[inline]
fn take_index<'a, H: Head, L: Link + 'a, C: Counter>(
    free: &IndexStack<H>,
    used: &C,
    link: impl Fn(u32) -> &'a L,
    mut prepare: impl FnMut(usize) -> Result<(), i32>,
) -> Result<Taken, i32> {
    if let Some(index) = free.pop(link) {
        return Ok(Taken::Free(index));
    }
    let mut index = used.load(Ordering::Relaxed);
    loop {
        if index >= MAX_BLOCKS {
            return Err(libc::ENOMEM);
        }
        prepare(index)?;
        match used.compare_exchange_weak(index, index + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Ok(Taken::Fresh(index)),
            Err(now) => index = now,
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
    // SAFETY: the caller hands over a block of a region mapped by `reserve_pages`, which only raw
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
    fn the_counter_and_the_free_stack_are_on_separate_cache_lines() {
        let pool = PagePool::new(sys::page_size());
        let used = std::ptr::addr_of!(pool.used) as usize;
        let free = std::ptr::addr_of!(pool.free) as usize;
        assert_eq!(used % 128, 0);
        assert_eq!(free % 128, 0);
        assert!(used.abs_diff(free) >= 128);
    }

    #[test]
    fn regions_lie_end_to_end_in_index_space() {
        assert_eq!(region_of(0), (0, 0));
        assert_eq!(region_of(FIRST_REGION_BLOCKS - 1), (0, 0));
        assert_eq!(region_of(FIRST_REGION_BLOCKS), (1, FIRST_REGION_BLOCKS));
        assert_eq!(
            region_of(3 * FIRST_REGION_BLOCKS - 1),
            (1, FIRST_REGION_BLOCKS)
        );
        assert_eq!(
            region_of(3 * FIRST_REGION_BLOCKS),
            (2, 3 * FIRST_REGION_BLOCKS)
        );
        let last = FIRST_REGION_BLOCKS * ((1 << REGIONS) - 1) - 1;
        assert_eq!(region_of(last).0, REGIONS - 1);
        assert!(
            last + 1 >= MAX_BLOCKS,
            "the regions cover every block a pool can hold"
        );
        assert!(MAX_BLOCKS <= IndexStack::<std::sync::atomic::AtomicU64>::MAX_INDEX as usize);
    }

    #[test]
    fn free_blocks_go_first_and_new_ones_come_from_reserved_regions() {
        let block_size = sys::page_size();
        let pool = PagePool::new(block_size);
        pool.prepare().expect("reserving address space");
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_eq!(b.addr(), a.addr() + block_size);
        assert_eq!(pool.total(), 2);
        // A block put back is the next one taken, and the pool does not grow.
        pool.put(a);
        assert_eq!(pool.take().unwrap(), a);
        assert_eq!(pool.total(), 2);
        // Past the first region: the next region was reserved on the way, and its blocks
        // do not overlap the first region's.
        let mut taken = vec![a, b];
        for _ in 0..FIRST_REGION_BLOCKS {
            taken.push(pool.take().unwrap());
        }
        assert!(pool.regions[1].load(Ordering::Relaxed) > RESERVING);
        assert!(pool.regions[2].load(Ordering::Relaxed) == UNRESERVED);
        let mut addrs: Vec<_> = taken.iter().map(|b| b.addr()).collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), taken.len());
        assert!(addrs.iter().all(|b| b % block_size == 0));
        assert_eq!(pool.total(), taken.len());
        // Every block is writable memory.
        for block in &taken {
            // SAFETY: the pool gave the block to this test alone; it is mapped and writable.
            unsafe { (block.addr() as *mut u8).write_volatile(1) };
        }
    }

    #[test]
    fn threads_take_and_return_blocks_without_sharing_one() {
        let block_size = sys::page_size();
        let pool = PagePool::new(block_size);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    for round in 0..2_000 {
                        let block = pool.take().expect("a block");
                        let word = block.addr() as *mut usize;
                        // SAFETY: the pool gave this block to this thread alone; it is mapped
                        // and writable, and page-aligned.
                        unsafe { word.write_volatile(block.addr()) };
                        mine.push(block);
                        if round % 3 != 0 {
                            let block = mine.swap_remove(round % mine.len());
                            // SAFETY: as above: the block is still this thread's.
                            let seen = unsafe { (block.addr() as *const usize).read_volatile() };
                            assert_eq!(seen, block.addr(), "another thread wrote into my block");
                            pool.put(block);
                        }
                    }
                    for block in mine {
                        pool.put(block);
                    }
                });
            }
        });
        // Never more blocks than the most held at once (4 threads, each holding at most
        // about a third of its 2,000 takes).
        assert!(pool.total() <= 4 * 700, "the pool grew to {}", pool.total());
        let mut count = 0;
        while pool.free.pop(|i| pool.link(i)).is_some() {
            count += 1;
        }
        assert_eq!(count, pool.total(), "every block came back");
    }
}

/// The pool's take and return, model-checked with loom: every interleaving (within a
/// preemption bound) of threads that take an index ([`take_index`], the code `take` runs) and
/// give it back (a push, as `put` does), with loom's atomics for the stack, the links and the
/// counter. Checked: no index is held by two threads at once, every index comes back once,
/// and the pool never grows past the most indices held at once.
#[cfg(test)]
mod model {
    use loom::sync::atomic::AtomicUsize as LoomUsize;
    use loom::sync::Arc;

    use super::*;
    use crate::threads::index_stack::model::{model, Stacked};

    impl Counter for LoomUsize {
        fn load(&self, order: Ordering) -> usize {
            LoomUsize::load(self, order)
        }
        fn compare_exchange_weak(
            &self,
            current: usize,
            new: usize,
            success: Ordering,
            failure: Ordering,
        ) -> Result<usize, usize> {
            LoomUsize::compare_exchange_weak(self, current, new, success, failure)
        }
    }

    /// A pool of at most `LINKS` indices: its free stack (with index 0 returned once already),
    /// and its counter.
    struct Pool {
        free: Stacked,
        used: LoomUsize,
    }

    const LINKS: u32 = 4;

    impl Pool {
        fn new() -> Arc<Pool> {
            // Index 0 was used and given back: on the stack. The others were never used.
            let free = Arc::try_unwrap(Stacked::new(LINKS))
                .ok()
                .expect("not shared yet");
            for _ in 1..LINKS {
                let i = free.pop().expect("pushed above");
                assert_ne!(i, 0, "0 was pushed first, so it is popped last");
            }
            Arc::new(Pool {
                free,
                used: LoomUsize::new(1),
            })
        }

        fn take(&self) -> u32 {
            let taken = take_index(
                &self.free.stack,
                &self.used,
                |i| &self.free.links[i as usize],
                |i| match i < LINKS as usize {
                    true => Ok(()),
                    false => Err(libc::ENOMEM),
                },
            );
            let i = match taken.expect("room for every thread") {
                Taken::Free(i) => i,
                Taken::Fresh(i) => i as u32,
            };
            self.free.hold(i);
            i
        }

        fn put(&self, i: u32) {
            self.free.release(i);
            self.free.stack.push(i, &self.free.links[i as usize]);
        }
    }

    #[test]
    fn take_and_return_never_share_lose_or_overgrow() {
        model(2, || {
            let pool = Pool::new();
            let others: Vec<_> = (0..2)
                .map(|_| {
                    let pool = pool.clone();
                    loom::thread::spawn(move || {
                        let i = pool.take();
                        pool.put(i);
                    })
                })
                .collect();
            let i = pool.take();
            pool.put(i);
            for t in others {
                t.join().unwrap();
            }
            let used = pool.used.load(Ordering::Relaxed);
            // Three threads hold at most three indices at once.
            assert!(used <= 3, "the pool grew to {used}");
            // Every index ever used is on the stack, once; the others never were.
            let mut seen = Vec::new();
            while let Some(i) = pool.free.pop() {
                assert!(seen.len() <= LINKS as usize, "the stack loops");
                seen.push(i);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..used as u32).collect::<Vec<_>>());
        });
    }
}
