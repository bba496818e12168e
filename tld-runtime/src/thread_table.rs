//! The table of live threads that have a block: who they are, where their block is, and in
//! which map they are registered.
//!
//! A slab: each thread keeps its [`SlotId`] in a thread-local, so finding, updating and removing
//! its record takes no search and no hashing. Freed slots are reused, so the table's size is
//! the peak number of live threads.

use crate::pool::BlockAddr;

/// A thread's place in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId(u32);

/// One live thread that has a block.
#[derive(Debug, Clone, Copy)]
pub struct ThreadRecord {
    /// Kernel thread id.
    pub tid: i32,
    /// Its block.
    pub block: BlockAddr,
    /// The connection generation it is registered under (0: none).
    pub registered: u64,
    /// A connect has handed its block to the kernel (the thread's own registrations are noted
    /// in its thread state), so some element may still name the block's physical pages.
    pub exposed: bool,
}

/// The live threads.
#[derive(Debug, Default)]
pub struct ThreadTable {
    slots: Vec<Option<ThreadRecord>>,
    vacant: Vec<SlotId>,
    live: usize,
}

impl ThreadTable {
    /// An empty table.
    pub const fn new() -> ThreadTable {
        ThreadTable {
            slots: Vec::new(),
            vacant: Vec::new(),
            live: 0,
        }
    }

    /// Records a thread and returns its slot.
    pub fn insert(&mut self, record: ThreadRecord) -> SlotId {
        let id = match self.vacant.pop() {
            Some(id) => {
                self.slots[id.0 as usize] = Some(record);
                id
            }
            None => {
                self.slots.push(Some(record));
                SlotId((self.slots.len() - 1) as u32)
            }
        };
        self.live += 1;
        id
    }

    /// Removes the thread in `id`, returning its record.
    pub fn remove(&mut self, id: SlotId) -> Option<ThreadRecord> {
        let record = self.slots.get_mut(id.0 as usize)?.take()?;
        self.vacant.push(id);
        self.live -= 1;
        Some(record)
    }

    /// The record in `id`.
    pub fn get(&self, id: SlotId) -> Option<&ThreadRecord> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    /// Notes that the thread in `id` is registered under connection generation `generation`
    /// (a later generation is never replaced by an earlier one).
    pub fn mark_registered(&mut self, id: SlotId, generation: u64) {
        if let Some(Some(r)) = self.slots.get_mut(id.0 as usize) {
            r.registered = r.registered.max(generation);
        }
    }

    /// Every live thread.
    pub fn iter(&self) -> impl Iterator<Item = (SlotId, &ThreadRecord)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (SlotId(i as u32), r)))
    }

    /// Every live thread, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SlotId, &mut ThreadRecord)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, r)| r.as_mut().map(|r| (SlotId(i as u32), r)))
    }

    /// The number of live threads.
    pub fn len(&self) -> usize {
        self.live
    }

    /// The number of live threads registered under `generation`.
    pub fn registered_in(&self, generation: u64) -> usize {
        self.iter()
            .filter(|(_, r)| r.registered == generation)
            .count()
    }

    /// Makes room so that [`ThreadTable::keep_only`] allocates nothing.
    pub fn reserve_for_fork(&mut self) {
        self.vacant.reserve(self.live);
    }

    /// In a forked child: keeps only the thread in `id` (the one that forked, if it has a
    /// block), with its new `tid` and unregistered, and hands every other thread's block to
    /// `release`. Allocates nothing after [`ThreadTable::reserve_for_fork`].
    pub fn keep_only(&mut self, id: Option<SlotId>, tid: i32, mut release: impl FnMut(BlockAddr)) {
        let keep = id.map(|id| id.0 as usize);
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(record) = slot else { continue };
            if Some(i) == keep {
                record.tid = tid;
                record.registered = 0;
                // The child's copy of the page is its own: no element names it.
                record.exposed = false;
                continue;
            }
            release(record.block);
            *slot = None;
            self.vacant.push(SlotId(i as u32));
        }
        self.live = usize::from(id.is_some_and(|id| self.get(id).is_some()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tid: i32) -> ThreadRecord {
        ThreadRecord {
            tid,
            block: tid as usize * 4096,
            registered: 0,
            exposed: false,
        }
    }

    #[test]
    fn slots_are_reused_and_counted() {
        let mut t = ThreadTable::new();
        let a = t.insert(record(1));
        let b = t.insert(record(2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(a).map(|r| r.tid), Some(1));
        assert!(t.remove(a).is_none());
        let c = t.insert(record(3));
        assert_eq!(c, a, "a freed slot is reused");
        t.mark_registered(b, 4);
        t.mark_registered(b, 2);
        assert_eq!(t.get(b).unwrap().registered, 4);
        assert_eq!(t.registered_in(4), 1);
        assert_eq!(t.iter().count(), 2);
    }

    #[test]
    fn a_forked_child_keeps_only_its_thread() {
        let mut t = ThreadTable::new();
        let ids: Vec<_> = (1..=5).map(|i| t.insert(record(i))).collect();
        t.mark_registered(ids[2], 7);
        t.reserve_for_fork();
        let mut released = Vec::new();
        t.keep_only(Some(ids[2]), 99, |b| released.push(b));
        assert_eq!(released.len(), 4);
        assert_eq!(t.len(), 1);
        let me = t.get(ids[2]).unwrap();
        assert_eq!((me.tid, me.registered), (99, 0));
    }
}
