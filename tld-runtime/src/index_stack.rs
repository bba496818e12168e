//! A lock-free stack of indices (a Treiber stack), for the pool's free blocks and the thread
//! table's vacant slots.
//!
//! Each index's link to the one below it lives with the element it indexes (the caller passes
//! `link` to find it), so the stack itself is one word: the top index and a tag that every
//! change increments. The tag is what makes a pop safe when, between reading the top and its
//! link, other threads popped that index and pushed it back with a different link: the top
//! then carries another tag and the compare-and-swap fails.
//!
//! No thread ever waits for another: a thread that is preempted halfway through a push or pop
//! has changed nothing that others need, so the rest go on. That is the point of it on a
//! machine with more threads than CPUs, where a preempted lock holder stalls everyone queued
//! behind it for as long as it waits for a CPU.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The link of the bottom of the stack.
const NONE: u32 = u32::MAX;

/// The stack: `tag << 32 | top`, `top == NONE` when empty.
#[derive(Debug)]
pub struct IndexStack {
    head: AtomicU64,
}

fn pack(tag: u32, top: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(top)
}

fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

impl IndexStack {
    /// The largest index the stack can hold.
    pub const MAX_INDEX: u32 = NONE - 1;

    /// An empty stack.
    pub const fn new() -> IndexStack {
        IndexStack {
            // Tag 0, empty.
            head: AtomicU64::new(NONE as u64),
        }
    }

    /// Pushes `first`, and the indices linked below it down to the one whose link is `last`.
    /// The links from `first` down to that one must already be set; `last` is set here.
    pub fn push_chain(&self, first: u32, last: &AtomicU32) {
        debug_assert!(first <= Self::MAX_INDEX);
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let (tag, top) = unpack(head);
            last.store(top, Ordering::Relaxed);
            // Release: whoever pops `first` sees its links, and what the pusher wrote to the
            // element before giving it back.
            match self.head.compare_exchange_weak(
                head,
                pack(tag.wrapping_add(1), first),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Pushes `index`, whose link is `link`.
    pub fn push(&self, index: u32, link: &AtomicU32) {
        self.push_chain(index, link);
    }

    /// Pops the top index, if any; `link(i)` is index `i`'s link.
    pub fn pop<'a>(&self, link: impl Fn(u32) -> &'a AtomicU32) -> Option<u32> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (tag, top) = unpack(head);
            if top == NONE {
                return None;
            }
            // If `top` was popped and pushed back since `head` was read, this link may be
            // another one, but the tag has changed too, and the exchange below fails.
            let below = link(top).load(Ordering::Relaxed);
            match self.head.compare_exchange_weak(
                head,
                pack(tag.wrapping_add(1), below),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(top),
                Err(now) => head = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn threads_pushing_and_popping_never_lose_or_share_an_index() {
        const N: u32 = 256;
        let links: Vec<AtomicU32> = (0..N).map(|_| AtomicU32::new(NONE)).collect();
        let held: Vec<AtomicBool> = (0..N).map(|_| AtomicBool::new(false)).collect();
        let stack = IndexStack::new();
        // A chain of all indices, pushed at once.
        for i in 0..N - 1 {
            links[i as usize].store(i + 1, Ordering::Relaxed);
        }
        stack.push_chain(0, &links[N as usize - 1]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        let Some(i) = stack.pop(|i| &links[i as usize]) else {
                            continue;
                        };
                        // Nobody else holds it.
                        assert!(!held[i as usize].swap(true, Ordering::AcqRel));
                        held[i as usize].store(false, Ordering::Release);
                        stack.push(i, &links[i as usize]);
                    }
                });
            }
        });
        let mut seen = Vec::new();
        while let Some(i) = stack.pop(|i| &links[i as usize]) {
            seen.push(i);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..N).collect::<Vec<_>>());
    }
}
