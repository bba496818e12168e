//! The table of live threads that have a block: who they are, where their block is, and in
//! which map they are registered.
//!
//! A slab: each thread keeps its [`SlotId`] in a thread-local, so finding, updating and removing
//! its record takes no search and no hashing. Freed slots are reused, so the table's size is
//! the peak number of live threads.
//!
//! # No lock of its own
//!
//! Inserting and removing are a few atomic operations on the slot and on an [`IndexStack`] of
//! vacant slots, so that a thread preempted halfway through never holds up the others (see
//! [`crate::threads::index_stack`]). Every field of a record is an atomic, so any thread may read any
//! record at any time; what makes a reading *consistent* is the runtime's connection lock (see
//! [`crate::runtime`]):
//!
//! - threads insert and remove their own records, and note their own registrations, while they
//!   hold the connection's read lock (many at once);
//! - whoever walks the table to act on what it finds (connecting, detaching, the forked child)
//!   holds the write lock, so no record changes under it, and every thread whose record it did
//!   not see will find the new connection when it registers.
//!
//! `status()` counts threads with only the read lock: a snapshot that may be a moment old.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::threads::index_stack::IndexStack;
use crate::threads::pool::Block;
use crate::threads::segments::Segments;

/// A thread's place in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId(u32);

/// One live thread that has a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadRecord {
    /// Kernel thread id.
    pub tid: i32,
    /// Its block.
    pub block: Block,
    /// The connection generation it is registered under (0: none).
    pub registered: u64,
    /// A connect has handed its block to the kernel (the thread's own registrations are noted
    /// in its thread state), so some element may still name the block's physical pages.
    pub exposed: bool,
}

/// A slot: a record's fields, and whether they hold one.
#[derive(Debug, Default)]
struct Slot {
    /// Set after the other fields are written, cleared before the slot is vacated.
    occupied: AtomicBool,
    tid: AtomicI32,
    block_index: AtomicU32,
    block_addr: AtomicUsize,
    registered: AtomicU64,
    exposed: AtomicBool,
    /// The vacant slot below it, while it is vacant.
    link: AtomicU32,
}

impl Slot {
    fn record(&self) -> Option<ThreadRecord> {
        if !self.occupied.load(Ordering::Acquire) {
            return None;
        }
        Some(ThreadRecord {
            tid: self.tid.load(Ordering::Relaxed),
            block: Block::from_parts(
                self.block_index.load(Ordering::Relaxed),
                self.block_addr.load(Ordering::Relaxed),
            ),
            registered: self.registered.load(Ordering::Relaxed),
            exposed: self.exposed.load(Ordering::Relaxed),
        })
    }
}

/// The live threads.
#[derive(Debug)]
pub struct ThreadTable {
    slots: Segments<Slot>,
    /// Slots ever used: every record is below this index.
    used: AtomicU32,
    vacant: IndexStack,
    live: AtomicUsize,
}

impl ThreadTable {
    /// An empty table.
    pub const fn new() -> ThreadTable {
        ThreadTable {
            slots: Segments::new(),
            used: AtomicU32::new(0),
            vacant: IndexStack::new(),
            live: AtomicUsize::new(0),
        }
    }

    fn slot(&self, id: SlotId) -> Option<&Slot> {
        self.slots.get(id.0 as usize)
    }

    /// The stack link of slot `index`, which the vacant stack names: it has been used.
    fn link(&self, index: u32) -> &AtomicU32 {
        &self
            .slots
            .get(index as usize)
            .expect("a vacant slot has been used")
            .link
    }

    /// Records a thread and returns its slot, or `None` if the table is full (about a million
    /// live threads). May allocate.
    pub fn insert(&self, record: ThreadRecord) -> Option<SlotId> {
        let (index, slot) = match self.vacant.pop(|i| self.link(i)) {
            Some(index) => (index, self.slots.get(index as usize)?),
            None => {
                let index = self
                    .used
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        ((n as usize) < Segments::<Slot>::CAPACITY).then_some(n + 1)
                    })
                    .ok()?;
                (index, self.slots.get_or_allocate(index as usize)?)
            }
        };
        let (block_index, block_addr) = record.block.to_parts();
        slot.tid.store(record.tid, Ordering::Relaxed);
        slot.block_index.store(block_index, Ordering::Relaxed);
        slot.block_addr.store(block_addr, Ordering::Relaxed);
        slot.registered.store(record.registered, Ordering::Relaxed);
        slot.exposed.store(record.exposed, Ordering::Relaxed);
        slot.occupied.store(true, Ordering::Release);
        self.live.fetch_add(1, Ordering::Relaxed);
        Some(SlotId(index))
    }

    /// Removes the thread in `id`, returning its record. Allocates nothing.
    pub fn remove(&self, id: SlotId) -> Option<ThreadRecord> {
        let slot = self.slot(id)?;
        let record = slot.record()?;
        if !slot.occupied.swap(false, Ordering::AcqRel) {
            return None;
        }
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.vacant.push(id.0, &slot.link);
        Some(record)
    }

    /// The record in `id`.
    pub fn get(&self, id: SlotId) -> Option<ThreadRecord> {
        self.slot(id)?.record()
    }

    /// Notes that the thread in `id` is registered under connection generation `generation`
    /// (a later generation is never replaced by an earlier one).
    pub fn mark_registered(&self, id: SlotId, generation: u64) {
        if let Some(slot) = self.slot(id) {
            slot.registered.fetch_max(generation, Ordering::Relaxed);
        }
    }

    /// Notes that a connect handed the block of the thread in `id` to the kernel.
    pub fn mark_exposed(&self, id: SlotId) {
        if let Some(slot) = self.slot(id) {
            slot.exposed.store(true, Ordering::Relaxed);
        }
    }

    /// Every live thread.
    pub fn iter(&self) -> impl Iterator<Item = (SlotId, ThreadRecord)> + '_ {
        let used = self.used.load(Ordering::Acquire);
        (0..used).filter_map(|i| {
            let id = SlotId(i);
            Some((id, self.get(id)?))
        })
    }

    /// The number of live threads.
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The number of live threads registered under `generation`.
    pub fn registered_in(&self, generation: u64) -> usize {
        self.iter()
            .filter(|(_, r)| r.registered == generation)
            .count()
    }

    /// In a forked child: keeps only the thread in `id` (the one that forked, if it has a
    /// block), with its new `tid` and unregistered, and hands every other thread's block to
    /// `release`. Allocates nothing.
    pub fn keep_only(&self, id: Option<SlotId>, tid: i32, mut release: impl FnMut(Block)) {
        for (other, record) in self.iter() {
            if Some(other) != id {
                if self.remove(other).is_some() {
                    release(record.block);
                }
                continue;
            }
            if let Some(slot) = self.slot(other) {
                slot.tid.store(tid, Ordering::Relaxed);
                slot.registered.store(0, Ordering::Relaxed);
                // The child's copy of the page is its own: no element names it.
                slot.exposed.store(false, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tid: i32) -> ThreadRecord {
        ThreadRecord {
            tid,
            block: Block::from_parts(tid as u32, tid as usize * 4096),
            registered: 0,
            exposed: false,
        }
    }

    #[test]
    fn slots_are_reused_and_counted() {
        let t = ThreadTable::new();
        let a = t.insert(record(1)).unwrap();
        let b = t.insert(record(2)).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(a).map(|r| r.tid), Some(1));
        assert!(t.remove(a).is_none());
        assert!(t.get(a).is_none());
        let c = t.insert(record(3)).unwrap();
        assert_eq!(c, a, "a freed slot is reused");
        t.mark_registered(b, 4);
        t.mark_registered(b, 2);
        t.mark_exposed(b);
        let rb = t.get(b).unwrap();
        assert_eq!((rb.registered, rb.exposed), (4, true));
        assert_eq!(t.registered_in(4), 1);
        assert_eq!(t.iter().count(), 2);
        assert_eq!(t.get(c), Some(record(3)));
    }

    #[test]
    fn threads_inserting_and_removing_at_once_keep_their_own_records() {
        let t = ThreadTable::new();
        std::thread::scope(|s| {
            for thread in 0..4 {
                let t = &t;
                s.spawn(move || {
                    // Fewer rounds under miri, which checks every access of each one.
                    let rounds = if cfg!(miri) { 50 } else { 5_000 };
                    for i in 0..rounds {
                        let tid = thread * 100_000 + i;
                        let id = t.insert(record(tid)).unwrap();
                        t.mark_registered(id, tid as u64);
                        let back = t.remove(id).unwrap();
                        assert_eq!((back.tid, back.registered), (tid, tid as u64));
                    }
                });
            }
        });
        assert_eq!(t.len(), 0);
        assert_eq!(t.iter().count(), 0);
        assert!(t.used.load(Ordering::Relaxed) <= 4, "slots are reused");
    }

    #[test]
    fn a_forked_child_keeps_only_its_thread() {
        let t = ThreadTable::new();
        let ids: Vec<_> = (1..=5).map(|i| t.insert(record(i)).unwrap()).collect();
        t.mark_registered(ids[2], 7);
        t.mark_exposed(ids[2]);
        let mut released = Vec::new();
        t.keep_only(Some(ids[2]), 99, |b| released.push(b));
        assert_eq!(released.len(), 4);
        assert_eq!(t.len(), 1);
        let me = t.get(ids[2]).unwrap();
        assert_eq!((me.tid, me.registered, me.exposed), (99, 0, false));
    }
}
