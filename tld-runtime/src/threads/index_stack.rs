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

/// The word that holds the stack's head: an [`AtomicU64`], or the model checker's in tests.
pub trait Head {
    /// [`AtomicU64::load`].
    fn load(&self, order: Ordering) -> u64;
    /// [`AtomicU64::compare_exchange_weak`].
    fn compare_exchange_weak(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
}

/// An index's link: an [`AtomicU32`], or the model checker's in tests.
pub trait Link {
    /// [`AtomicU32::load`].
    fn load(&self, order: Ordering) -> u32;
    /// [`AtomicU32::store`].
    fn store(&self, value: u32, order: Ordering);
}

impl Head for AtomicU64 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    #[inline(always)]
    fn compare_exchange_weak(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        AtomicU64::compare_exchange_weak(self, current, new, success, failure)
    }
}

impl Link for AtomicU32 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    #[inline(always)]
    fn store(&self, value: u32, order: Ordering) {
        AtomicU32::store(self, value, order)
    }
}

/// The stack: `tag << 32 | top`, `top == NONE` when empty.
#[derive(Debug)]
pub struct IndexStack<H = AtomicU64> {
    head: H,
}

fn pack(tag: u32, top: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(top)
}

fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

/// The head of an empty stack (tag 0).
pub const EMPTY: u64 = NONE as u64;

impl IndexStack {
    /// An empty stack.
    pub const fn new() -> IndexStack {
        IndexStack {
            head: AtomicU64::new(EMPTY),
        }
    }
}

impl<H: Head> IndexStack<H> {
    /// The largest index the stack can hold.
    pub const MAX_INDEX: u32 = NONE - 1;

    /// A stack whose head is `head`, which holds [`EMPTY`] for an empty one.
    #[cfg(test)]
    pub fn with_head(head: H) -> IndexStack<H> {
        IndexStack { head }
    }

    /// Pushes `first`, and the indices linked below it down to the one whose link is `last`.
    /// The links from `first` down to that one must already be set; `last` is set here.
    #[inline]
    pub fn push_chain(&self, first: u32, last: &impl Link) {
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
    #[inline]
    pub fn push(&self, index: u32, link: &impl Link) {
        self.push_chain(index, link);
    }

    /// Pops the top index, if any; `link(i)` is index `i`'s link.
    #[inline]
    pub fn pop<'a, L: Link + 'a>(&self, link: impl Fn(u32) -> &'a L) -> Option<u32> {
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
                    for _ in 0..if cfg!(miri) { 200 } else { 20_000 } {
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

/// The stack, model-checked with loom: every interleaving (within a preemption bound) of
/// threads that pop an index and push it back, over the same code the runtime runs, with
/// loom's atomics for the head and the links. Checked: no index is ever held by two threads
/// at once, and every index is on the stack again at the end, once.
#[cfg(test)]
pub(crate) mod model {
    use loom::sync::atomic::{AtomicBool, AtomicU32 as LoomU32, AtomicU64 as LoomU64};
    use loom::sync::Arc;

    use super::*;

    impl Head for LoomU64 {
        fn load(&self, order: Ordering) -> u64 {
            LoomU64::load(self, order)
        }
        fn compare_exchange_weak(
            &self,
            current: u64,
            new: u64,
            success: Ordering,
            failure: Ordering,
        ) -> Result<u64, u64> {
            LoomU64::compare_exchange_weak(self, current, new, success, failure)
        }
    }

    impl Link for LoomU32 {
        fn load(&self, order: Ordering) -> u32 {
            LoomU32::load(self, order)
        }
        fn store(&self, value: u32, order: Ordering) {
            LoomU32::store(self, value, order)
        }
    }

    /// Explores every interleaving of `f`'s threads with at most `preemptions` preemptions.
    pub(crate) fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(preemptions);
        builder.check(f);
    }

    /// Indices `0..n` on a stack, each with its link and a flag its holder sets.
    pub(crate) struct Stacked {
        pub stack: IndexStack<LoomU64>,
        pub links: Vec<LoomU32>,
        pub held: Vec<AtomicBool>,
    }

    impl Stacked {
        pub(crate) fn new(n: u32) -> Arc<Stacked> {
            let s = Stacked {
                stack: IndexStack::with_head(LoomU64::new(EMPTY)),
                links: (0..n).map(|_| LoomU32::new(NONE)).collect(),
                held: (0..n).map(|_| AtomicBool::new(false)).collect(),
            };
            for i in 0..n {
                s.stack.push(i, &s.links[i as usize]);
            }
            Arc::new(s)
        }

        pub(crate) fn pop(&self) -> Option<u32> {
            self.stack.pop(|i| &self.links[i as usize])
        }

        /// Marks `i` held by the caller; fails the model if another holds it.
        pub(crate) fn hold(&self, i: u32) {
            assert!(
                !self.held[i as usize].swap(true, Ordering::Relaxed),
                "index {i} handed out twice"
            );
        }

        pub(crate) fn release(&self, i: u32) {
            self.held[i as usize].store(false, Ordering::Relaxed);
        }

        /// Empties the stack (single-threaded, at the end) and checks that it held every
        /// index in `0..n`, once each.
        pub(crate) fn check_all_back(&self) {
            let mut seen = Vec::new();
            while let Some(i) = self.pop() {
                assert!(seen.len() <= self.links.len(), "the stack loops");
                seen.push(i);
            }
            seen.sort_unstable();
            let all: Vec<u32> = (0..self.links.len() as u32).collect();
            assert_eq!(seen, all, "indices lost or duplicated");
        }
    }

    #[test]
    fn popping_and_pushing_back_never_shares_or_loses_an_index() {
        model(2, || {
            let s = Stacked::new(3);
            let other = {
                let s = s.clone();
                loom::thread::spawn(move || {
                    if let Some(i) = s.pop() {
                        s.hold(i);
                        s.release(i);
                        s.stack.push(i, &s.links[i as usize]);
                    }
                })
            };
            // Takes the top two and gives back the first before the second: a pop that read
            // the head before this, and so the first's old link, must fail (the tag).
            let a = s.pop();
            let b = s.pop();
            for i in [a, b].into_iter().flatten() {
                s.hold(i);
            }
            for i in [a, b].into_iter().flatten() {
                s.release(i);
                s.stack.push(i, &s.links[i as usize]);
            }
            other.join().unwrap();
            s.check_all_back();
        });
    }
}
