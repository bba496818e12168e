//! The latch protocol of consistent hints, on the Rust side.
//!
//! A consistent hint's entry in a thread's page is a `u64` sequence word followed by two copies
//! of the value ([`wire::SEQ_OFFSET`], [`wire::SEQ_VALUE_OFFSET`]). The word holds a version
//! `v` and two claim bits ([`wire::SEQ_CLAIM_THREAD`], [`wire::SEQ_CLAIM_BPF`]); bit 0
//! ([`wire::SEQ_LATCH`]) is always set. Copy `v & 1` holds the last whole value and no writer
//! ever touches it: a writer fills the *other* copy and then moves the version on, which makes
//! that copy the whole one. This is the idea of the kernel's `seqcount_latch`, with one copy
//! written per write because writers exclude each other:
//!
//! - A **writer** claims the word with a compare-and-swap from an unclaimed `s` to `s | claim`
//!   (the thread's own bit, or BPF's), writes the copy that is not whole, and publishes
//!   `s + SEQ_ONE` (the next version, unclaimed). Two writers (the thread and a BPF program, or
//!   BPF on two CPUs) therefore never write at once.
//! - A **reader** loads the word, copies the whole copy it names, and loads the word again. The
//!   copy is whole unless a writer has started on that copy meanwhile, which takes two versions
//!   ([`wire::seq_copy_whole`]). A writer that stopped, whatever it stopped in, never makes a
//!   reader wait: the whole copy is not the one it writes.
//! - A reader slower than a writer that writes back to back (a 1024-byte copy pulled from
//!   another CPU's cache takes longer than that CPU takes to write one) would be overtaken at
//!   every attempt. So the thread, when its first attempt fails and it finds the word
//!   unclaimed, claims it for the length of one copy and gives it back with the version
//!   unchanged: it always gets the last whole value, and a BPF writer meanwhile waits as it
//!   would for the thread's `set`. BPF readers never claim: they retry a bounded number of
//!   times.
//!
//! # Who holds a claim, and how long readers wait for it
//!
//! A reader does not need to wait for a writer, but a writer that crashed (a BPF program that
//! claimed the word and never published, a hand-written writer with a bug) should be reported,
//! not hidden behind its last value forever. The claim bit says which kind of writer holds it:
//!
//! - **The thread** ([`wire::SEQ_CLAIM_THREAD`]) is the only user-space writer of its page. If
//!   it holds the claim it is either running (and done within nanoseconds) or stopped: preempted,
//!   or interrupted by a signal handler of its own. Readers take the whole copy at once. A
//!   thread cannot crash mid-write and leave its page behind: a thread that exits gives up its
//!   page, and a fatal signal ends the process.
//! - **A BPF program** ([`wire::SEQ_CLAIM_BPF`]) runs to completion in bounded time. A reader
//!   that finds BPF's claim waits (up to [`MAX_WAIT`]) until the word moves, which a healthy
//!   writer's publication does within its copy's time, and then takes the whole copy. A claim
//!   that does not move for [`MAX_WAIT`] is a writer that stopped: [`ReadError::Stalled`],
//!   which carries the last whole value, and which `try_get` reports as `HintBusy`.
//!
//! Writers wait for BPF's claim the same way, and give up at once on the thread's own claim
//! (only a signal handler interrupting the thread's own write can meet it, and that write cannot
//! finish while the handler waits).
//!
//! # Orderings
//!
//! Against a reader or writer on another CPU: the claim is an acquire RMW followed by a release
//! fence (the claim is visible before any byte of the copy being written), and the publishing
//! store is a release (every byte is visible before the new version). The reader's first load is
//! an acquire (the copy cannot start before it) and an acquire fence separates the copy from the
//! second load (the copy is finished before it). BPF's side (`task_local_data.bpf.h`) uses atomic
//! compare-and-swap and fetch-add, which are fully ordered.
//!
//! The protocol is written once, over [`Latch`] (the memory of one entry) and [`Patience`] (how
//! long to wait): [`Entry`] is the page's, and the model-checking test at the end of this file
//! runs the same functions over loom's atomics. The values are copied with volatile accesses
//! (they are shared with BPF, never reached through a reference); the word is an [`AtomicU64`].
//!
//! [`wire::SEQ_OFFSET`]: crate::page::wire::SEQ_OFFSET
//! [`wire::SEQ_VALUE_OFFSET`]: crate::page::wire::SEQ_VALUE_OFFSET
//! [`wire::SEQ_CLAIM_THREAD`]: crate::page::wire::SEQ_CLAIM_THREAD
//! [`wire::SEQ_CLAIM_BPF`]: crate::page::wire::SEQ_CLAIM_BPF
//! [`wire::SEQ_LATCH`]: crate::page::wire::SEQ_LATCH
//! [`wire::seq_copy_whole`]: crate::page::wire::seq_copy_whole

use std::cell::Cell;
use std::hint::spin_loop;
use std::marker::PhantomData;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::page::wire::{
    self, SEQ_CLAIMS, SEQ_CLAIM_BPF, SEQ_CLAIM_THREAD, SEQ_LATCH, SEQ_ONE, SEQ_WANT,
};

/// How long a read or write of a consistent hint waits for a BPF program that holds the hint's
/// claim before it gives up.
///
/// A write by BPF takes tens to hundreds of nanoseconds, so a claim that stays put for this long
/// belongs to a writer that stopped in the middle (a BPF program that claimed the hint and never
/// published). Reads then give up with the last whole value, and writes without writing: see
/// [`ConsistentTaskLocal`](crate::ConsistentTaskLocal). The wait also lasts at least 1024
/// attempts, so that a thread preempted while it waits still watches the writer before it
/// judges it: about this long again on a machine that is not loaded.
pub const MAX_WAIT: Duration = Duration::from_micros(50);

/// Failed attempts before a wait first looks at the clock, and between its looks.
const SPINS_PER_CLOCK: u32 = 64;

/// Attempts a wait makes at least before it gives up, whatever the clock says: a thread that was
/// preempted while it waited has not seen the writer for all that time, and a writer that
/// stopped is told from one that is merely fast only by watching it. A stopped writer costs
/// this many loads of the word (tens of microseconds, about [`MAX_WAIT`]).
const MIN_ATTEMPTS: u32 = 1024;

/// A write gave up: another writer held the claim (see [`write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

/// Why a read gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError<R> {
    /// A BPF program held the claim and did not move for all of the wait: a writer that
    /// stopped. The last whole value, which that writer never touched, is here.
    Stalled(R),
    /// No whole copy could be taken: the word is not a latch word (another format, or bytes
    /// nobody meant), or writers kept starting on the copy being taken for all of the wait.
    Busy,
}

thread_local! {
    /// Read attempts of this thread that had to start over or wait.
    static READ_RETRIES: Cell<u64> = const { Cell::new(0) };
    /// Write attempts of this thread that found another writer holding the claim.
    static WRITE_WAITS: Cell<u64> = const { Cell::new(0) };
}

/// How often the calling thread's accesses to consistent hints met another writer.
///
/// Counted only on the slow path (an access that had to try again or wait), so counting costs
/// an uncontended access nothing. For monitoring how contended a hint is; the counts only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retries {
    /// Reads that had to wait for a BPF writer's claim to move, or to take their copy again
    /// because a writer started on it.
    pub reads: u64,
    /// Writes (and replaces) that found another writer holding the claim, and waited.
    pub writes: u64,
}

/// The calling thread's [`Retries`] so far.
pub fn retries() -> Retries {
    Retries {
        reads: READ_RETRIES.try_with(Cell::get).unwrap_or(0),
        writes: WRITE_WAITS.try_with(Cell::get).unwrap_or(0),
    }
}

/// The memory of one consistent entry, as the protocol sees it: the sequence word and the two
/// copies of the value.
pub(crate) trait Latch: Copy {
    /// The value's type.
    type Value: Copy;
    /// Loads the sequence word.
    fn load(self, order: Ordering) -> u64;
    /// Compare-and-swap of the sequence word from `current` to `new`: acquire on success,
    /// relaxed on failure. Whether it succeeded.
    fn claim(self, current: u64, new: u64) -> bool;
    /// Stores `seq` into the sequence word with release ordering.
    fn publish(self, seq: u64);
    /// Adds `delta` to the sequence word, fully ordered (a fetch-add, as BPF publishes).
    fn publish_add(self, delta: u64);
    /// Sets [`SEQ_WANT`] in the sequence word, whatever else it holds (an atomic OR).
    fn announce(self);
    /// Clears [`SEQ_WANT`] in the sequence word, whatever else it holds (an atomic AND).
    fn withdraw(self);
    /// A fence of this memory's atomics.
    fn fence(order: Ordering);
    /// Copy `i` (0 or 1) of the value.
    fn read_copy(self, i: usize) -> Self::Value;
    /// Overwrites copy `i` (0 or 1) of the value.
    fn write_copy(self, i: usize, value: Self::Value);
}

/// How long to keep trying: [`Wait`] in a thread, a step count in the model.
pub(crate) trait Patience {
    /// Whether to try again, after a pause.
    fn again(&mut self) -> bool;
}

/// A bounded wait: spins, and says to stop once [`MAX_WAIT`] has passed and it has made
/// [`MIN_ATTEMPTS`] attempts. Counts each pause in the thread's [`Retries`].
pub(crate) struct Wait {
    spins: u32,
    deadline: Option<Instant>,
    counter: &'static std::thread::LocalKey<Cell<u64>>,
}

impl Wait {
    /// A wait of a read.
    pub(crate) fn read() -> Wait {
        Wait::counting(&READ_RETRIES)
    }

    /// A wait of a write.
    pub(crate) fn write() -> Wait {
        Wait::counting(&WRITE_WAITS)
    }

    fn counting(counter: &'static std::thread::LocalKey<Cell<u64>>) -> Wait {
        Wait {
            spins: 0,
            deadline: None,
            counter,
        }
    }
}

impl Patience for Wait {
    fn again(&mut self) -> bool {
        let _ = self.counter.try_with(|c| c.set(c.get().wrapping_add(1)));
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
            Some(deadline) => now < deadline || self.spins < MIN_ATTEMPTS,
        }
    }
}

/// One read attempt at `seq`, a latch word just loaded with acquire ordering: the copy it names,
/// if no writer started on that copy during the read.
#[inline(always)]
fn try_read<L: Latch>(latch: L, seq: u64) -> Option<L::Value> {
    let value = latch.read_copy(wire::seq_copy(seq));
    L::fence(Ordering::Acquire);
    let after = latch.load(Ordering::Relaxed);
    wire::seq_copy_whole(seq, after).then_some(value)
}

/// A whole copy of the value: the last one published, as the thread reads it.
///
/// The first attempt takes the whole copy between two loads of the word. When that fails (a
/// writer overtook the copy, or a BPF program holds the claim), [`read_slow`] tries again, and
/// when it finds the word unclaimed it claims it for the thread for the length of one copy, so
/// that no writer can start on the copy meanwhile: a reader slower than a writer that writes
/// back to back still gets the last whole value. It waits for a BPF program's claim only until
/// the word moves, up to what `patience` allows.
#[inline(always)]
pub(crate) fn read<L: Latch, P: Patience>(
    latch: L,
    patience: impl FnOnce() -> P,
) -> Result<L::Value, ReadError<L::Value>> {
    let seq = latch.load(Ordering::Acquire);
    if seq & (SEQ_LATCH | SEQ_CLAIM_BPF) == SEQ_LATCH {
        if let Some(value) = try_read(latch, seq) {
            return Ok(value);
        }
    }
    read_slow(latch, seq, patience())
}

#[cold]
#[inline(never)]
fn read_slow<L: Latch, P: Patience>(
    latch: L,
    first: u64,
    patience: P,
) -> Result<L::Value, ReadError<L::Value>> {
    // Whether this read has set SEQ_WANT and still has to clear it.
    let mut announced = false;
    let result = read_waiting(latch, first, patience, &mut announced);
    if announced {
        latch.withdraw();
    }
    result
}

/// The loop of [`read_slow`]; sets `announced` while SEQ_WANT is its to clear.
#[inline(always)]
fn read_waiting<L: Latch, P: Patience>(
    latch: L,
    first: u64,
    mut patience: P,
    announced: &mut bool,
) -> Result<L::Value, ReadError<L::Value>> {
    // Whether the word has moved since `first` (leaving aside the thread's own SEQ_WANT): a BPF
    // program's claim is trusted once it has (its writer is making progress), and one that
    // never moves is a writer that stopped.
    let mut moved = false;
    loop {
        if !patience.again() {
            let seq = latch.load(Ordering::Acquire) & !SEQ_WANT;
            if !moved
                && seq == first & !SEQ_WANT
                && seq & (SEQ_LATCH | SEQ_CLAIM_BPF) == SEQ_LATCH | SEQ_CLAIM_BPF
            {
                // The whole copy is not the one that writer writes: it is still there to take.
                if let Some(value) = try_read(latch, seq) {
                    return Err(ReadError::Stalled(value));
                }
            }
            return Err(ReadError::Busy);
        }
        let seq = latch.load(Ordering::Acquire);
        moved |= (seq ^ first) & !SEQ_WANT != 0;
        if seq & SEQ_LATCH == 0 {
            continue;
        }
        if seq & SEQ_CLAIM_THREAD != 0 {
            // The thread's own write, stopped: this is a signal handler. It does not write the
            // whole copy, and no other writer can start.
            if let Some(value) = try_read(latch, seq) {
                return Ok(value);
            }
            continue;
        }
        if seq & SEQ_CLAIM_BPF == 0 {
            // Nobody writes: hold the claim for the length of one copy, so that no writer
            // starts on the copy being read, then give it back with the version unchanged and
            // SEQ_WANT cleared.
            if let Some(value) = claimed_read(latch, seq) {
                *announced = false;
                return Ok(value);
            }
            continue;
        }
        if moved {
            // A BPF writer that makes progress does not write the whole copy: take it, which
            // succeeds unless it writes again before the copy is done.
            if let Some(value) = try_read(latch, seq) {
                return Ok(value);
            }
        }
        if !*announced {
            // BPF writes keep this read from a whole copy, or one holds the claim: ask BPF
            // writers to hold off after the write in progress, and claim the word then.
            latch.announce();
            *announced = true;
        }
    }
}

/// Claims the word for the thread if it is `seq` (unclaimed, [`SEQ_WANT`] set or not), takes the
/// whole copy, and gives the claim back with the version unchanged and [`SEQ_WANT`] cleared. No
/// writer can start while the claim is held, so the copy needs no check.
#[inline(always)]
fn claimed_read<L: Latch>(latch: L, seq: u64) -> Option<L::Value> {
    let base = seq & !SEQ_WANT;
    if !latch.claim(seq, base | SEQ_CLAIM_THREAD) {
        return None;
    }
    let value = latch.read_copy(wire::seq_copy(base));
    latch.publish(base);
    Some(value)
}

/// One attempt to claim the word for `claim` ([`SEQ_CLAIM_THREAD`] or [`SEQ_CLAIM_BPF`]): the
/// unclaimed word before the claim, without [`SEQ_WANT`]. The thread may claim a word whose
/// [`SEQ_WANT`] is set (its own read, interrupted by a signal handler, set it) and clears it; a
/// BPF writer holds off.
#[inline(always)]
fn try_claim<L: Latch>(latch: L, claim: u64) -> Option<u64> {
    let seq = latch.load(Ordering::Relaxed);
    let free = if claim == SEQ_CLAIM_THREAD {
        SEQ_LATCH | SEQ_CLAIMS
    } else {
        SEQ_LATCH | SEQ_CLAIMS | SEQ_WANT
    };
    let base = seq & !SEQ_WANT;
    if seq & free == SEQ_LATCH && latch.claim(seq, base | claim) {
        // The claim is visible before any byte of the copy that follows.
        L::fence(Ordering::Release);
        return Some(base);
    }
    None
}

/// Claims the word for `claim`, waiting for a BPF program's claim: the unclaimed word before the
/// claim.
#[cold]
#[inline(never)]
fn claim_slow<L: Latch, P: Patience>(latch: L, claim: u64, mut patience: P) -> Result<u64, Busy> {
    loop {
        let seq = latch.load(Ordering::Relaxed);
        if claim == SEQ_CLAIM_THREAD && seq & SEQ_CLAIM_THREAD != 0 {
            // The thread's own write, interrupted by this access (a signal handler): it cannot
            // finish while we wait.
            return Err(Busy);
        }
        if !patience.again() {
            return Err(Busy);
        }
        if let Some(seq) = try_claim(latch, claim) {
            return Ok(seq);
        }
    }
}

/// Writes `value` into the copy that is not whole and publishes it, under the claim for `claim`
/// taken at `seq`. The thread publishes with a plain store (nobody else changes the word while
/// it holds the claim); a BPF writer with a fetch-add, which keeps a [`SEQ_WANT`] that the
/// thread set meanwhile.
#[inline(always)]
fn store<L: Latch>(latch: L, claim: u64, seq: u64, value: L::Value) {
    let next = seq.wrapping_add(SEQ_ONE);
    latch.write_copy(wire::seq_copy(next), value);
    if claim == SEQ_CLAIM_THREAD {
        latch.publish(next);
    } else {
        latch.publish_add(SEQ_ONE - claim);
    }
}

/// Writes the value that `value` makes as one whole, claiming the word for `claim`, or gives up
/// with [`Busy`] without writing.
///
/// `value` runs after the claim, so that the caller's value is not first spilled to the stack:
/// a locked instruction waits for every earlier store to reach the cache, which more than
/// doubles the cost of the claim.
#[inline(always)]
pub(crate) fn write<L: Latch, P: Patience>(
    latch: L,
    claim: u64,
    value: impl FnOnce() -> L::Value,
    patience: impl FnOnce() -> P,
) -> Result<(), Busy> {
    match try_claim(latch, claim) {
        Some(seq) => {
            store(latch, claim, seq, value());
            Ok(())
        }
        None => write_slow(latch, claim, value(), patience()),
    }
}

#[cold]
#[inline(never)]
fn write_slow<L: Latch, P: Patience>(
    latch: L,
    claim: u64,
    value: L::Value,
    patience: P,
) -> Result<(), Busy> {
    let seq = claim_slow(latch, claim, patience)?;
    store(latch, claim, seq, value);
    Ok(())
}

/// Writes the value that `value` makes and returns the value it replaced, as one step for
/// every writer that follows the protocol; or gives up with [`Busy`] without writing.
#[inline(always)]
pub(crate) fn replace<L: Latch, P: Patience>(
    latch: L,
    claim: u64,
    value: impl FnOnce() -> L::Value,
    patience: impl FnOnce() -> P,
) -> Result<L::Value, Busy> {
    match try_claim(latch, claim) {
        Some(seq) => Ok(swap(latch, claim, seq, value())),
        None => replace_slow(latch, claim, value(), patience()),
    }
}

#[cold]
#[inline(never)]
fn replace_slow<L: Latch, P: Patience>(
    latch: L,
    claim: u64,
    value: L::Value,
    patience: P,
) -> Result<L::Value, Busy> {
    let seq = claim_slow(latch, claim, patience)?;
    Ok(swap(latch, claim, seq, value))
}

/// The whole copy, then [`store`], under the claim taken at `seq`: nobody writes the whole copy,
/// so the read needs no check.
#[inline(always)]
fn swap<L: Latch>(latch: L, claim: u64, seq: u64, value: L::Value) -> L::Value {
    let old = latch.read_copy(wire::seq_copy(seq));
    store(latch, claim, seq, value);
    old
}

/// A consistent hint's entry in a thread's page (or in its fallback storage, or, in tests, on
/// the stack): its sequence word and its two copies, valid for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a, R> {
    seq: *const AtomicU64,
    copies: *mut R,
    /// The memory the entry points into, borrowed for `'a`.
    memory: PhantomData<&'a AtomicU64>,
}

impl<'a, R: Copy> Entry<'a, R> {
    /// The entry at `p`, valid for `'a`.
    ///
    /// # Safety
    /// `p` is 8-aligned and valid for reads and writes of [`wire::SEQ_VALUE_OFFSET`] +
    /// `2 * size_of::<R>()` bytes for `'a`; `R` has alignment 8 at most and accepts every bit
    /// pattern; the word is only ever accessed atomically (Rust) or with the protocol's atomics
    /// and aligned loads (BPF).
    #[inline(always)]
    pub(crate) unsafe fn at(p: *mut u8) -> Entry<'a, R> {
        Entry {
            seq: p.cast::<AtomicU64>(),
            // SAFETY: the copies follow the word inside the entry (the caller's promise), and
            // offset 8 keeps any alignment of at most 8.
            copies: unsafe { p.add(wire::SEQ_VALUE_OFFSET) }.cast::<R>(),
            memory: PhantomData,
        }
    }

    /// The sequence word, borrowed for no longer than this handle.
    #[inline(always)]
    fn word(&self) -> &AtomicU64 {
        // SAFETY: `at`'s caller promised an aligned word, valid for `'a` and accessed only
        // atomically; the reference lives no longer than `self`, which lives no longer than
        // `'a`.
        unsafe { &*self.seq }
    }

    /// A whole copy of the value (see [`read`]), waiting at most [`MAX_WAIT`].
    #[inline(always)]
    pub(crate) fn read(self) -> Result<R, ReadError<R>> {
        read(self, Wait::read)
    }

    /// Writes the value that `value` makes as the thread's write (see [`write`]).
    #[inline(always)]
    pub(crate) fn write(self, value: impl FnOnce() -> R) -> Result<(), Busy> {
        write(self, SEQ_CLAIM_THREAD, value, Wait::write)
    }

    /// Replaces the value as the thread's write (see [`replace`]).
    #[inline(always)]
    pub(crate) fn replace(self, value: impl FnOnce() -> R) -> Result<R, Busy> {
        replace(self, SEQ_CLAIM_THREAD, value, Wait::write)
    }
}

impl<R: Copy> Latch for Entry<'_, R> {
    type Value = R;

    #[inline(always)]
    fn load(self, order: Ordering) -> u64 {
        self.word().load(order)
    }

    #[inline(always)]
    fn claim(self, current: u64, new: u64) -> bool {
        self.word()
            .compare_exchange(current, new, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline(always)]
    fn publish(self, seq: u64) {
        self.word().store(seq, Ordering::Release);
    }

    #[inline(always)]
    fn publish_add(self, delta: u64) {
        self.word().fetch_add(delta, Ordering::SeqCst);
    }

    #[inline(always)]
    fn announce(self) {
        self.word().fetch_or(SEQ_WANT, Ordering::Relaxed);
    }

    #[inline(always)]
    fn withdraw(self) {
        self.word().fetch_and(!SEQ_WANT, Ordering::Relaxed);
    }

    #[inline(always)]
    fn fence(order: Ordering) {
        fence(order);
    }

    #[inline(always)]
    fn read_copy(self, i: usize) -> R {
        debug_assert!(i < 2);
        // SAFETY: `i` is 0 or 1 (`wire::seq_copy`), so the copy lies in the entry (see `at`),
        // aligned like `R`; every bit pattern is a valid `R`. A copy that a writer overwrote
        // meanwhile is detected by the caller and thrown away.
        unsafe { self.copies.add(i & 1).read_volatile() }
    }

    #[inline(always)]
    fn write_copy(self, i: usize, value: R) {
        debug_assert!(i < 2);
        // SAFETY: as in `read_copy`; the claim keeps every writer that follows the protocol off
        // this copy, and readers check their copies.
        unsafe { self.copies.add(i & 1).write_volatile(value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::wire::{SEQ_INIT, SEQ_VERSION_SHIFT};

    /// An entry with a 32-byte value: the word and two copies.
    #[repr(C, align(8))]
    struct Cell72([u64; 9]);

    fn entry(cell: &mut Cell72) -> Entry<'_, [u64; 4]> {
        // SAFETY: `cell` is 8-aligned, 72 bytes, and borrowed for the entry's lifetime.
        unsafe { Entry::at((cell as *mut Cell72).cast::<u8>()) }
    }

    fn fresh() -> Cell72 {
        Cell72([SEQ_INIT, 1, 1, 1, 1, 1, 1, 1, 1])
    }

    #[test]
    fn writes_fill_the_other_copy_and_move_the_version() {
        let mut cell = fresh();
        let e = entry(&mut cell);
        assert_eq!(e.read(), Ok([1; 4]));
        e.write(|| [2; 4]).unwrap();
        assert_eq!(e.read(), Ok([2; 4]));
        assert_eq!(e.replace(|| [3; 4]), Ok([2; 4]));
        assert_eq!(e.read(), Ok([3; 4]));
        // Version 2: copy 0 whole (3s), copy 1 the previous value (2s).
        assert_eq!(
            cell.0,
            [2 << SEQ_VERSION_SHIFT | SEQ_LATCH, 3, 3, 3, 3, 2, 2, 2, 2]
        );
    }

    #[test]
    fn a_claim_by_the_thread_never_delays_a_read() {
        // The thread stopped in the middle of writing copy 1 (a signal handler reads).
        let mut cell = Cell72([SEQ_INIT | SEQ_CLAIM_THREAD, 5, 5, 5, 5, 9, 9, 0, 0]);
        let e = entry(&mut cell);
        let before = retries();
        assert_eq!(e.read(), Ok([5; 4]));
        assert_eq!(retries().reads, before.reads, "no wait at all");
        // A write meets the thread's own claim: it gives up at once and writes nothing.
        let start = Instant::now();
        assert_eq!(e.write(|| [7; 4]), Err(Busy));
        assert!(start.elapsed() < MAX_WAIT * 100);
        assert_eq!(cell.0[1..], [5, 5, 5, 5, 9, 9, 0, 0]);
    }

    #[test]
    fn a_stopped_bpf_writer_is_reported_with_the_last_whole_value() {
        let stuck = SEQ_INIT | SEQ_ONE | SEQ_CLAIM_BPF; // version 1: copy 1 whole, copy 0 half
        let mut cell = Cell72([stuck, 9, 9, 6, 6, 6, 6, 6, 6]);
        let e = entry(&mut cell);
        let before = retries();
        let start = Instant::now();
        assert_eq!(e.read(), Err(ReadError::Stalled([6; 4])));
        assert_eq!(e.write(|| [2; 4]), Err(Busy));
        assert_eq!(e.replace(|| [2; 4]), Err(Busy));
        // Bounded spins, not a wait (miri interprets them far slower than a CPU runs them).
        if !cfg!(miri) {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{:?}",
                start.elapsed()
            );
        }
        assert_eq!(cell.0, [stuck, 9, 9, 6, 6, 6, 6, 6, 6], "nothing written");
        let after = retries();
        assert!(after.reads > before.reads && after.writes > before.writes);
    }

    #[test]
    fn a_word_of_another_format_is_never_read() {
        // The one-copy format's even counter, or bytes nobody meant.
        for seq in [0, 2, 4, 6 << SEQ_VERSION_SHIFT] {
            let mut cell = Cell72([seq, 1, 1, 1, 1, 1, 1, 1, 1]);
            let e = entry(&mut cell);
            assert_eq!(e.read(), Err(ReadError::Busy), "{seq:#x}");
            assert_eq!(e.write(|| [2; 4]), Err(Busy), "{seq:#x}");
            assert_eq!(cell.0[0], seq);
        }
    }
}

/// The latch protocol, model-checked with loom: every interleaving (within a preemption bound)
/// of a thread writer, a BPF writer and a reader, over the same functions the runtime uses.
/// Values are two words, stored and loaded one at a time, so that a copy taken during a write
/// would be seen torn.
#[cfg(test)]
mod model {
    use std::sync::Arc;

    use loom::sync::atomic::{fence as loom_fence, AtomicU64 as LoomU64};

    use super::*;
    use crate::page::wire::SEQ_INIT;

    struct Memory {
        seq: LoomU64,
        copies: [[LoomU64; 2]; 2],
    }

    impl Memory {
        fn new(value: u64) -> Arc<Memory> {
            let copy = || [LoomU64::new(value), LoomU64::new(value)];
            Arc::new(Memory {
                seq: LoomU64::new(SEQ_INIT),
                copies: [copy(), copy()],
            })
        }
    }

    #[derive(Clone, Copy)]
    struct Model<'a>(&'a Memory);

    impl Latch for Model<'_> {
        type Value = [u64; 2];

        fn load(self, order: Ordering) -> u64 {
            self.0.seq.load(order)
        }
        fn claim(self, current: u64, new: u64) -> bool {
            self.0
                .seq
                .compare_exchange(current, new, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }
        fn publish(self, seq: u64) {
            self.0.seq.store(seq, Ordering::Release);
        }
        fn publish_add(self, delta: u64) {
            self.0.seq.fetch_add(delta, Ordering::SeqCst);
        }
        fn announce(self) {
            self.0.seq.fetch_or(SEQ_WANT, Ordering::Relaxed);
        }
        fn withdraw(self) {
            self.0.seq.fetch_and(!SEQ_WANT, Ordering::Relaxed);
        }
        fn fence(order: Ordering) {
            loom_fence(order);
        }
        fn read_copy(self, i: usize) -> [u64; 2] {
            let c = &self.0.copies[i];
            [c[0].load(Ordering::Relaxed), c[1].load(Ordering::Relaxed)]
        }
        fn write_copy(self, i: usize, value: [u64; 2]) {
            let c = &self.0.copies[i];
            c[0].store(value[0], Ordering::Relaxed);
            c[1].store(value[1], Ordering::Relaxed);
        }
    }

    /// A few tries, yielding to the other threads in between (loom needs spins to yield).
    struct Tries(u32);

    impl Patience for Tries {
        fn again(&mut self) -> bool {
            loom::thread::yield_now();
            self.0 = self.0.saturating_sub(1);
            self.0 > 0
        }
    }

    fn tries() -> Tries {
        Tries(3)
    }

    fn whole(v: [u64; 2]) -> bool {
        v[0] == v[1]
    }

    /// Explores every interleaving of `f`'s threads with at most `preemptions` preemptions
    /// each (the bound keeps three threads to seconds).
    fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(preemptions);
        builder.check(f);
    }

    /// A BPF reader, as `bpf_tld_read_consistent()` reads: waits a bounded time for a BPF
    /// claim to move, then takes the whole copy between two loads of the word, a bounded number
    /// of times. It never claims. Its loads of the word are ordered around the copy as the
    /// header orders them (plain loads on x86-64, whose loads stay in order; fully ordered
    /// atomics elsewhere): an acquire load before the copy, an acquire fence after it.
    fn bpf_read(l: Model<'_>) -> Option<[u64; 2]> {
        let first = l.load(Ordering::Acquire);
        if first & SEQ_CLAIM_BPF != 0 {
            let mut spins = tries();
            while l.load(Ordering::Acquire) == first {
                if !spins.again() {
                    return None;
                }
            }
        }
        let mut attempts = tries();
        loop {
            let seq = l.load(Ordering::Acquire);
            if seq & SEQ_LATCH != 0 {
                let v = l.read_copy(wire::seq_copy(seq));
                Model::fence(Ordering::Acquire);
                if wire::seq_copy_whole(seq, l.load(Ordering::Relaxed)) {
                    return Some(v);
                }
            }
            if !attempts.again() {
                return None;
            }
        }
    }

    /// The thread writes and then reads, while a BPF program writes and another reads: the
    /// writers exclude each other, every value read is one writer's whole value, and the value
    /// left is whole and is the last write's. (The thread's writes and reads are one loom
    /// thread, as they are one thread in the runtime.)
    #[test]
    fn writers_exclude_each_other_and_readers_find_a_whole_copy() {
        model(2, || {
            let m = Memory::new(0);
            let (m1, m2) = (m.clone(), m.clone());
            let bpf_writer = loom::thread::spawn(move || {
                write(Model(&m1), SEQ_CLAIM_BPF, || [2, 2], tries).is_ok()
            });
            let bpf_reader = loom::thread::spawn(move || {
                if let Some(v) = bpf_read(Model(&m2)) {
                    assert!(whole(v) && v[0] <= 2, "BPF read {v:?}");
                }
            });
            let t = write(Model(&m), SEQ_CLAIM_THREAD, || [1, 1], tries).is_ok();
            match read(Model(&m), tries) {
                Ok(v) | Err(ReadError::Stalled(v)) => {
                    assert!(whole(v), "torn read {v:?}");
                    assert!(v[0] <= 2, "{v:?}");
                }
                Err(ReadError::Busy) => {}
            }
            let b = bpf_writer.join().unwrap();
            bpf_reader.join().unwrap();
            let seq = m.seq.load(Ordering::Relaxed);
            assert_eq!(
                seq & (SEQ_CLAIMS | SEQ_WANT),
                0,
                "a claim left behind: {seq:#x}"
            );
            let writes = u64::from(t) + u64::from(b);
            assert_eq!(
                seq >> wire::SEQ_VERSION_SHIFT,
                writes,
                "one version per write"
            );
            let last = Model(&m).read_copy(wire::seq_copy(seq));
            assert!(whole(last), "the value left is torn: {last:?}");
            if writes == 2 {
                // Both wrote: the one that published second holds the whole copy, and the
                // other's value is in the other copy, whole too.
                let other = Model(&m).read_copy(1 - wire::seq_copy(seq));
                assert!(whole(other) && other[0] != last[0], "{last:?} {other:?}");
            }
        });
    }

    /// Two writes in a row by one writer against a reader: the reader's copy is whole even
    /// though the second write reuses the copy the first one left behind.
    #[test]
    fn a_reader_overtaken_by_two_writes_never_keeps_a_torn_copy() {
        model(3, || {
            let m = Memory::new(0);
            let m1 = m.clone();
            let writer = loom::thread::spawn(move || {
                write(Model(&m1), SEQ_CLAIM_BPF, || [1, 1], tries).unwrap();
                write(Model(&m1), SEQ_CLAIM_BPF, || [2, 2], tries).unwrap();
            });
            if let Ok(v) = read(Model(&m), tries) {
                assert!(whole(v), "torn read {v:?}");
            }
            writer.join().unwrap();
            assert_eq!(read(Model(&m), tries), Ok([2, 2]));
        });
    }

    /// A writer that stops after its claim (it never publishes) never keeps a reader from the
    /// last whole value: at once when the thread holds the claim, reported as stalled when a
    /// BPF program does.
    #[test]
    fn a_stopped_writer_never_blocks_a_reader() {
        for claim in [SEQ_CLAIM_THREAD, SEQ_CLAIM_BPF] {
            model(3, move || {
                let m = Memory::new(7);
                let m1 = m.clone();
                let writer = loom::thread::spawn(move || {
                    let l = Model(&m1);
                    let seq = try_claim(l, claim).expect("nobody else writes");
                    // Half of a write into the other copy, then it stops.
                    l.0.copies[wire::seq_copy(seq + SEQ_ONE)][0].store(9, Ordering::Relaxed);
                });
                let got = read(Model(&m), tries);
                writer.join().unwrap();
                match got {
                    Ok(v) => assert_eq!(v, [7, 7]),
                    Err(ReadError::Stalled(v)) => {
                        assert_eq!(claim, SEQ_CLAIM_BPF, "only BPF's claim is waited for");
                        assert_eq!(v, [7, 7]);
                    }
                    Err(ReadError::Busy) => panic!("a reader found no whole copy"),
                }
            });
        }
    }
}
