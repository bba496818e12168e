//! The sequence counter protocol of consistent hints, on the Rust side.
//!
//! A consistent hint's entry in a thread's page is a `u64` counter followed by the value
//! ([`wire::SEQ_OFFSET`], [`wire::SEQ_VALUE_OFFSET`]). The counter is even while nobody writes
//! and odd while a writer is in the middle of a write:
//!
//! - A **writer** claims the counter with a compare-and-swap from an even `s` to `s + 1`, writes
//!   the value, and publishes `s + 2`. Claiming by compare-and-swap makes writers exclude each
//!   other, so a Rust writer and a BPF writer (or BPF on two CPUs) never mix their bytes: the one
//!   that claims second waits for the first to publish.
//! - A **reader** loads the counter, copies the value and loads the counter again. The copy is
//!   whole if both loads saw the same even number; otherwise it tries again.
//!
//! Orderings, against a reader or writer on another CPU: the claim is an acquire RMW followed by
//! a release fence (the odd counter is visible before any byte of the value), and the publishing
//! store is a release (every byte is visible before the even counter). The reader's first load
//! is an acquire (the copy cannot start before it) and an acquire fence separates the copy from
//! the second load (the copy is finished before it). BPF's side (`task_local_data.bpf.h`) uses
//! atomic compare-and-swap and fetch-add, which are fully ordered.
//!
//! Nothing waits for long: a writer that finds the counter odd, or a reader that keeps finding a
//! write in progress, spins for at most [`MAX_WAIT`] and then gives up with [`Busy`]. That is
//! what happens when a BPF program stopped in the middle of a write and left the counter odd,
//! and also when a signal handler interrupts its own thread's write of the same hint.
//!
//! The value itself is copied with volatile accesses (it is shared with BPF, never reached
//! through a reference); the counter is reached as an [`AtomicU64`].
//!
//! [`wire::SEQ_OFFSET`]: crate::wire::SEQ_OFFSET
//! [`wire::SEQ_VALUE_OFFSET`]: crate::wire::SEQ_VALUE_OFFSET

use std::cell::Cell;
use std::hint::spin_loop;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::wire;

/// How long a read or write of a consistent hint waits, at most, for a write in progress.
///
/// A write by BPF takes tens of nanoseconds, so a reader or writer that still finds the counter
/// odd after this long is facing a writer that stopped in the middle (a BPF program aborted
/// mid-write, or preempted for longer than this), or its own thread's write, interrupted by a
/// signal handler. It then gives up: see [`ConsistentTaskLocal`](crate::ConsistentTaskLocal).
pub const MAX_WAIT: Duration = Duration::from_micros(50);

/// Failed attempts before a wait first looks at the clock, and between its looks.
const SPINS_PER_CLOCK: u32 = 64;

/// A writer held the counter odd for all of [`MAX_WAIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

thread_local! {
    /// Read attempts of this thread that had to start over.
    static READ_RETRIES: Cell<u64> = const { Cell::new(0) };
    /// Write attempts of this thread that found another writer holding the counter.
    static WRITE_WAITS: Cell<u64> = const { Cell::new(0) };
}

/// How often the calling thread's accesses to consistent hints met a write in progress.
///
/// Counted only on the slow path (an access that had to try again), so counting costs an
/// uncontended access nothing. For monitoring how contended a hint is; the counts only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retries {
    /// Reads that had to start over: the counter was odd, or changed during the copy.
    pub reads: u64,
    /// Writes (and replaces) that found another writer holding the counter, and waited.
    pub writes: u64,
}

/// The calling thread's [`Retries`] so far.
pub fn retries() -> Retries {
    Retries {
        reads: READ_RETRIES.try_with(Cell::get).unwrap_or(0),
        writes: WRITE_WAITS.try_with(Cell::get).unwrap_or(0),
    }
}

fn count(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    let _ = counter.try_with(|c| c.set(c.get().wrapping_add(1)));
}

/// A bounded wait: spins, and after [`MAX_WAIT`] says to stop.
struct Wait {
    spins: u32,
    deadline: Option<Instant>,
}

impl Wait {
    fn new() -> Wait {
        Wait {
            spins: 0,
            deadline: None,
        }
    }

    /// Whether to try again, after a pause.
    fn again(&mut self) -> bool {
        spin_loop();
        self.spins = self.spins.wrapping_add(1);
        if self.spins % SPINS_PER_CLOCK != 0 {
            return true;
        }
        let now = Instant::now();
        match self.deadline {
            None => {
                self.deadline = Some(now + MAX_WAIT);
                true
            }
            Some(deadline) => now < deadline,
        }
    }
}

/// A consistent hint's entry: its counter and its value.
#[derive(Clone, Copy)]
pub(crate) struct Entry<R> {
    seq: *const AtomicU64,
    value: *mut R,
}

impl<R: Copy> Entry<R> {
    /// The entry at `p`.
    ///
    /// # Safety
    /// `p` is 8-aligned and valid for reads and writes of [`wire::SEQ_VALUE_OFFSET`] +
    /// `size_of::<R>()` bytes for as long as the entry is used; `R` has alignment 8 at most;
    /// the counter is only ever accessed atomically (Rust) or with the protocol's atomics and
    /// aligned loads (BPF).
    #[inline(always)]
    pub(crate) unsafe fn at(p: *mut u8) -> Entry<R> {
        Entry {
            seq: p.cast::<AtomicU64>(),
            // SAFETY: the value follows the counter inside the entry (the caller's promise), and
            // offset 8 keeps any alignment of at most 8.
            value: unsafe { p.add(wire::SEQ_VALUE_OFFSET) }.cast::<R>(),
        }
    }

    #[inline(always)]
    fn seq(self) -> &'static AtomicU64 {
        // SAFETY: `at`'s caller promised an aligned counter, valid while the entry is used and
        // accessed only atomically. The reference lives no longer than the entry's use.
        unsafe { &*self.seq }
    }

    /// One read attempt: the value, if no write was in progress during the copy.
    #[inline(always)]
    fn read_once(self) -> Option<R> {
        let before = self.seq().load(Ordering::Acquire);
        if before & 1 != 0 {
            return None;
        }
        // SAFETY: `value` is valid for reads (see `at`); every bit pattern is a valid `R` for
        // the raw forms this module is used with (`TldType::Raw` is `Pod`). A torn copy is
        // detected below and thrown away.
        let value = unsafe { self.value.read_volatile() };
        fence(Ordering::Acquire);
        let after = self.seq().load(Ordering::Relaxed);
        (after == before).then_some(value)
    }

    /// A whole copy of the value, or [`Busy`] if writes kept it from succeeding for
    /// [`MAX_WAIT`].
    #[inline(always)]
    pub(crate) fn read(self) -> Result<R, Busy> {
        match self.read_once() {
            Some(value) => Ok(value),
            None => self.read_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn read_slow(self) -> Result<R, Busy> {
        let mut wait = Wait::new();
        loop {
            count(&READ_RETRIES);
            if !wait.again() {
                return Err(Busy);
            }
            if let Some(value) = self.read_once() {
                return Ok(value);
            }
        }
    }

    /// One attempt to claim the counter: its even value before the claim.
    #[inline(always)]
    fn try_claim(self) -> Option<u64> {
        let seq = self.seq().load(Ordering::Relaxed);
        if seq & 1 == 0
            && self
                .seq()
                .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // The odd counter is visible before any byte of the value that follows.
            fence(Ordering::Release);
            return Some(seq);
        }
        None
    }

    /// Claims the counter, waiting up to [`MAX_WAIT`] for another writer: its even value
    /// before the claim.
    #[cold]
    #[inline(never)]
    fn claim_slow(self) -> Result<u64, Busy> {
        let mut wait = Wait::new();
        loop {
            count(&WRITE_WAITS);
            if !wait.again() {
                return Err(Busy);
            }
            if let Some(seq) = self.try_claim() {
                return Ok(seq);
            }
        }
    }

    /// Stores `value` and publishes the write that claimed the counter at `seq`.
    #[inline(always)]
    fn store(self, value: R, seq: u64) {
        // SAFETY: `value` is valid for writes (see `at`), and the claim keeps every writer that
        // follows the protocol away until the counter is even again.
        unsafe { self.value.write_volatile(value) };
        self.seq().store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Stores `value` and returns the value it replaces, then publishes, under the claim at
    /// `seq`.
    #[inline(always)]
    fn swap(self, value: R, seq: u64) -> R {
        // SAFETY: as in `store`; while the claim is held no writer changes the value, so the
        // read is whole.
        let old = unsafe { self.value.read_volatile() };
        self.store(value, seq);
        old
    }

    /// Writes the value that `value` makes as one whole, or gives up with [`Busy`] without
    /// writing.
    ///
    /// `value` runs after the claim, so that the caller's value is not first spilled to the
    /// stack: a locked instruction waits for every earlier store to reach the cache, which
    /// more than doubles the cost of the claim.
    #[inline(always)]
    pub(crate) fn write(self, value: impl FnOnce() -> R) -> Result<(), Busy> {
        match self.try_claim() {
            Some(seq) => {
                self.store(value(), seq);
                Ok(())
            }
            None => self.write_slow(value()),
        }
    }

    #[cold]
    #[inline(never)]
    fn write_slow(self, value: R) -> Result<(), Busy> {
        let seq = self.claim_slow()?;
        self.store(value, seq);
        Ok(())
    }

    /// Writes the value that `value` makes and returns the value it replaced, as one step for
    /// every writer that follows the protocol; or gives up with [`Busy`] without writing.
    #[inline(always)]
    pub(crate) fn replace(self, value: impl FnOnce() -> R) -> Result<R, Busy> {
        match self.try_claim() {
            Some(seq) => Ok(self.swap(value(), seq)),
            None => self.replace_slow(value()),
        }
    }

    #[cold]
    #[inline(never)]
    fn replace_slow(self, value: R) -> Result<R, Busy> {
        let seq = self.claim_slow()?;
        Ok(self.swap(value, seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(8))]
    struct Cell40([u64; 5]);

    fn entry(cell: &mut Cell40) -> Entry<[u64; 4]> {
        // SAFETY: `cell` is 8-aligned, 40 bytes, and outlives the entry in each test.
        unsafe { Entry::at((cell as *mut Cell40).cast::<u8>()) }
    }

    #[test]
    fn writes_and_reads_under_the_counter() {
        let mut cell = Cell40([0; 5]);
        let e = entry(&mut cell);
        assert_eq!(e.read(), Ok([0; 4]));
        e.write(|| [1, 2, 3, 4]).unwrap();
        assert_eq!(e.replace(|| [5, 6, 7, 8]), Ok([1, 2, 3, 4]));
        assert_eq!(e.read(), Ok([5, 6, 7, 8]));
        assert_eq!(cell.0[0], 4, "two writes add 4 to the counter");
    }

    #[test]
    fn an_odd_counter_gives_up_in_bounded_time() {
        let mut cell = Cell40([7, 1, 1, 1, 1]);
        let e = entry(&mut cell);
        let before = retries();
        let start = Instant::now();
        assert_eq!(e.read(), Err(Busy));
        assert_eq!(e.write(|| [2; 4]), Err(Busy));
        assert_eq!(e.replace(|| [2; 4]), Err(Busy));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            cell.0,
            [7, 1, 1, 1, 1],
            "nothing written while the counter is odd"
        );
        let after = retries();
        assert!(after.reads > before.reads && after.writes > before.writes);
    }
}
