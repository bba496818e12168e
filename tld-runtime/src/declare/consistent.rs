//! Consistent hints: values that BPF programs and Rust never see half-written.
//!
//! `#[task_local_data(consistent)]` makes a static a [`ConsistentTaskLocal<T>`]: its entry in
//! the thread's page holds two copies of the value and a sequence word that says which copy is
//! whole, so that a BPF program reading a multi-field struct while the thread updates it (or
//! the thread reading it while a BPF program writes it) gets either the old value or the new
//! one, never a mix, and never has to wait for a writer that was preempted.
//!
//! ```
//! use tld_runtime::{task_local_data, TldType};
//!
//! #[derive(TldType, Clone, Copy, Debug, Default, PartialEq)]
//! #[repr(C)]
//! pub struct Budget {
//!     pub slice_ns: u64,
//!     pub deadline_ns: u64,
//!     pub class: u32,
//!     pub weight: u32,
//! }
//!
//! /// BPF reads it with bpf_tld_read_consistent(&tld, budget, &out).
//! #[task_local_data(consistent)]
//! pub static BUDGET: Budget = Budget { slice_ns: 0, deadline_ns: 0, class: 0, weight: 100 };
//!
//! BUDGET.set(Budget { slice_ns: 500_000, deadline_ns: 2_000_000, class: 2, weight: 100 });
//! assert_eq!(BUDGET.get().slice_ns, 500_000);
//! assert_eq!(BUDGET.try_get().unwrap().class, 2);
//! ```
//!
//! The protocol, the layout BPF sees, and what is guaranteed when BPF and Rust write at once
//! are described on [`ConsistentTaskLocal`] and in `docs/wire-format.md`.

use crate::declare::c_type::CType;
use crate::declare::registry::{sealed, Hint, LayoutToken, Site};
use crate::declare::scoped::Handle;
use crate::declare::task_local::{assert_hint_type, HintCore};
use crate::declare::types::TldType;
use crate::error::Error;
use crate::page::seqlock::{Busy, Entry, ReadError};
use crate::page::wire;

pub use crate::page::seqlock::{retries, Retries, MAX_WAIT};

/// A per-thread value kept in two copies under a sequence word, so that no reader, in BPF or in
/// Rust, ever sees half of an update, and none waits for a writer that stopped.
///
/// Declare one with `#[task_local_data(consistent)]`, which turns `static NAME: T = init;` into
/// `static NAME: ConsistentTaskLocal<T>`. It has the methods of [`TaskLocal`](crate::TaskLocal)
/// and works the same way (a plain memory access on the thread's page, no syscall, no lock
/// shared between threads), with the sequence word around every access:
///
/// - [`set`](Self::set) claims the word, writes the copy that is not whole, and publishes it as
///   the whole one;
/// - [`get`](Self::get) copies the whole copy between two loads of the word and takes it again
///   if a writer started on it meanwhile, so it never returns a mix of two writes;
/// - [`try_get`](Self::try_get) and [`try_set`](Self::try_set) say when they had to give up.
///
/// Scoped hints work the same way: [`scoped`](Self::scoped), [`set_scoped`](Self::set_scoped),
/// and futures carry it like a plain hint, with [`with_hint`](crate::HintFutureExt::with_hint) or
/// [`with_hints`](crate::HintFutureExt::with_hints) (`fut.with_hint(&BUDGET, budget)`).
///
/// # In the page
///
/// The hint is published under its key with the size `8 + round_up(2 * size_of::<T>(), 8)`: a
/// `u64` sequence word, then two copies of the value, from byte 8. In C:
///
/// ```text
/// struct tld_consistent_<key> { __u64 seq; T value[2]; };   /* value[(seq >> 3) & 1] is whole */
/// ```
///
/// The word's bit 0 is always 1; bit 1 is set while the thread writes, bit 2 while a BPF
/// program writes; the rest is a version that each write moves on by one, and whose lowest bit
/// names the whole copy. BPF programs read it with `bpf_tld_read_consistent(&tld, key, &out)`
/// and write it with `bpf_tld_write_consistent(&tld, key, &in)` (`task_local_data.bpf.h`), which
/// follow the same protocol. A program that does not know the protocol (scx's header, a raw
/// `bpf_tld_lookup`) still finds the key, and sees the word followed by the two copies.
///
/// # Two writers
///
/// Writers claim the word with a compare-and-swap, so they exclude each other: when the
/// thread's `set` and a BPF program's write (or BPF programs on two CPUs) meet, one of them
/// completes first and the other then writes its whole value; the last one wins. Bytes of two
/// writes are never mixed, in the page or in what any reader returns. A BPF writer never waits
/// long: it retries a few times and returns `-EBUSY`. A Rust writer waits for up to
/// [`MAX_WAIT`] for a BPF writer.
///
/// # A writer that stops in the middle
///
/// No writer ever touches the whole copy, so a writer that stops never keeps a reader from
/// it. What readers do depends on who stopped:
///
/// - **The thread**, preempted in the middle of a `set` (or interrupted there by a signal
///   handler of its own): BPF readers, at `sched_switch` say, read the whole copy at once,
///   never `-EAGAIN`. A BPF writer returns `-EBUSY` until the thread has finished.
/// - **A BPF program** that claimed the word and never published (a writer that crashed, or a
///   buggy hand-written one): BPF programs run to completion, so a claim that does not move is
///   treated as dead. BPF readers wait a bounded time and return `-EAGAIN`, BPF writers
///   `-EBUSY`; in Rust, after [`MAX_WAIT`] at most:
///   - [`try_get`](Self::try_get) returns [`Error::HintBusy`], and [`get`](Self::get) returns
///     the last whole value (which that writer never touched);
///   - [`try_set`](Self::try_set) returns [`Error::HintBusy`] and [`set`](Self::set) stores
///     nothing: the word stays as the other writer left it, so that a writer that was only slow
///     still finishes its own, whole write;
///   - [`replace`](Self::replace) stores nothing and returns the value the hint keeps.
///
///   The hint works again as soon as the claim is released.
///
/// A `get` returns the hint's initial value only when no whole copy can be had at all: the
/// entry's word is not one this protocol wrote (bytes a writer did not mean), or writers kept
/// overwriting the copy being taken for all of [`MAX_WAIT`].
///
/// Without a page (before the runtime is set up, or for a thread being torn down) the hint
/// behaves like a [`TaskLocal`](crate::TaskLocal): see there.
///
/// ```
/// use tld_runtime::task_local_data;
///
/// #[task_local_data(consistent)]
/// static WINDOW: [u64; 4] = [0; 4];
///
/// WINDOW.set([1, 2, 3, 4]);
/// assert_eq!(WINDOW.replace([5, 6, 7, 8]), [1, 2, 3, 4]);
/// assert_eq!(WINDOW.update(|w| { w[0] += 10; w[0] }), 15);
/// assert_eq!(WINDOW.get(), [15, 6, 7, 8]);
/// assert_eq!(WINDOW.key(), "window");
/// ```
pub struct ConsistentTaskLocal<T: TldType> {
    /// The offset of the entry (its sequence word), the declaration, and the initial entry: a
    /// new sequence word and the initial value in both copies.
    core: HintCore<InitEntry<T>>,
}

/// The first bytes of a consistent hint's entry in a new thread's block.
#[repr(C)]
struct InitEntry<T> {
    seq: u64,
    value: [T; 2],
}

impl<T: TldType> ConsistentTaskLocal<T> {
    /// Used by the `#[task_local_data(consistent)]` expansion. Not public API.
    ///
    /// A type the format cannot hold (size 0, alignment over 8, too large to fit a 4 KiB page's
    /// data area twice, with the sequence word) is a compile-time error here too, whoever calls
    /// it.
    #[doc(hidden)]
    pub const fn __new(site: Site, init: T) -> Self {
        const {
            assert_hint_type::<T>(
                wire::MAX_CONSISTENT_SIZE,
                "tld: a consistent hint's type must fit in a page's data area twice, with its \
                 8-byte sequence word (2040 bytes at most)",
            )
        }
        ConsistentTaskLocal {
            core: HintCore::new(
                site,
                InitEntry {
                    seq: wire::SEQ_INIT,
                    value: [init, init],
                },
            ),
        }
    }

    /// The key BPF programs use to find this hint.
    pub fn key(&self) -> &'static str {
        self.core.key()
    }

    /// The declaration: key, Rust name, type, file and line.
    pub fn site(&self) -> &Site {
        self.core.site()
    }

    /// The value every thread starts with.
    pub fn initial_value(&self) -> T {
        self.core.init.value[0]
    }

    /// The calling thread's entry, if it has a page and the layout knows this hint.
    #[inline(always)]
    fn entry(&self) -> Option<Entry<'_, T::Raw>> {
        // SAFETY: only the layout places the hint (through `Hint::place`), for its
        // `Hint::size()` bytes at a multiple of 8; the entry stays within them.
        let p = unsafe { self.core.slot() }?;
        // The entry lives only for the calling thread's current access (every caller drops it
        // before returning), and a thread's page (or fallback storage) stays while the thread
        // runs an access: it goes only when the thread ends or releases it.
        // SAFETY: `p` is 8-aligned, the word and both copies lie inside the block, `T::Raw` has
        // `T`'s alignment (<= 8) and is `Pod`; the word is only accessed through `Entry`.
        Some(unsafe { Entry::at(p) })
    }

    /// The calling thread's entry, giving the thread its page first if needed. `None` while the
    /// thread is being set up or torn down (a re-entrant access).
    ///
    /// A handle that the layout did not place (one made by hand with `__new`, which need not be
    /// a static) lives in the thread's fallback storage under its address and length (see
    /// `TaskLocal::slot_slow`): the storage always covers the whole entry.
    #[cold]
    #[inline(never)]
    fn entry_slow(&self) -> Option<Entry<'_, T::Raw>> {
        // SAFETY: as in `entry`; the fallback storage holds `init_bytes()` (the word and both
        // copies), 8-aligned.
        let p = unsafe { self.core.slot_slow(self.init_bytes()) }?;
        // SAFETY: as in `entry`.
        Some(unsafe { Entry::at(p) })
    }

    fn busy(&self) -> Error {
        Error::HintBusy {
            key: self.core.key(),
        }
    }

    /// The value `get` returns for a read that gave up: the last whole value of a stopped
    /// writer, or the initial value when there is no whole copy at all.
    #[cold]
    fn fallback(&self, e: ReadError<T::Raw>) -> T {
        match e {
            ReadError::Stalled(raw) => T::from_raw(raw),
            ReadError::Busy => self.core.init.value[0],
        }
    }

    /// Writes the calling thread's copy, as one whole for every reader.
    ///
    /// If a BPF program holds the hint for all of [`MAX_WAIT`] (see the type's documentation),
    /// nothing is stored; [`try_set`](Self::try_set) says so.
    #[inline]
    pub fn set(&self, value: T) {
        match self.entry() {
            Some(e) => {
                let _ = e.write(|| value.into_raw());
            }
            None => {
                let _ = self.try_set_slow(value);
            }
        }
    }

    /// Writes the calling thread's copy, as one whole for every reader, or says why not:
    /// [`Error::HintBusy`] if a BPF program held the hint for all of [`MAX_WAIT`] (or this is a
    /// signal handler interrupting the thread's own write of it), [`Error::ThreadBusy`] in a
    /// re-entrant access during the thread's setup. Nothing is stored on error.
    #[inline]
    pub fn try_set(&self, value: T) -> Result<(), Error> {
        match self.entry() {
            Some(e) => e.write(|| value.into_raw()).map_err(|Busy| self.busy()),
            None => self.try_set_slow(value),
        }
    }

    #[cold]
    #[inline(never)]
    fn try_set_slow(&self, value: T) -> Result<(), Error> {
        let e = self.entry_slow().ok_or(Error::ThreadBusy)?;
        e.write(|| value.into_raw()).map_err(|Busy| self.busy())
    }

    /// Reads the calling thread's copy, including whatever a BPF program wrote into it: the last
    /// value written whole, never half of a write.
    ///
    /// A read never waits for the thread's own write (preempted, or interrupted by a signal
    /// handler), and waits for a BPF writer only until its write is published. If a BPF program
    /// held the hint without publishing for all of [`MAX_WAIT`] (a writer that stopped), this
    /// returns the last whole value, which that writer never touched; [`try_get`](Self::try_get)
    /// says so instead. Only when no whole copy can be had at all (see the type's documentation)
    /// does it return the hint's initial value.
    #[inline]
    pub fn get(&self) -> T {
        match self.entry() {
            Some(e) => match e.read() {
                Ok(raw) => T::from_raw(raw),
                Err(err) => self.fallback(err),
            },
            None => self.get_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&self) -> T {
        match self.entry_slow().map(Entry::read) {
            Some(Ok(raw)) => T::from_raw(raw),
            Some(Err(err)) => self.fallback(err),
            None => self.core.init.value[0],
        }
    }

    /// Reads the calling thread's copy, never half of a write, or says why it cannot:
    /// [`Error::HintBusy`] if a BPF program held the hint without publishing for all of
    /// [`MAX_WAIT`] (a writer that stopped) or no whole copy could be had, [`Error::ThreadBusy`]
    /// in a re-entrant access during the thread's setup.
    ///
    /// ```
    /// use tld_runtime::{task_local_data, Error};
    ///
    /// #[task_local_data(consistent)]
    /// static RANGE: [u32; 2] = [0, 100];
    ///
    /// match RANGE.try_get() {
    ///     Ok([lo, hi]) => assert!(lo <= hi),
    ///     Err(Error::HintBusy { key }) => eprintln!("{key}: a BPF writer stopped mid-write"),
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// ```
    #[inline]
    pub fn try_get(&self) -> Result<T, Error> {
        match self.entry() {
            Some(e) => e.read().map(T::from_raw).map_err(|_| self.busy()),
            None => self.try_get_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn try_get_slow(&self) -> Result<T, Error> {
        let e = self.entry_slow().ok_or(Error::ThreadBusy)?;
        e.read().map(T::from_raw).map_err(|_| self.busy())
    }

    /// Writes the calling thread's copy and returns the value it replaces, like
    /// [`Cell::replace`](std::cell::Cell::replace).
    ///
    /// Unlike [`TaskLocal::replace`](crate::TaskLocal::replace), this is one step for every
    /// writer that follows the protocol: no BPF write can fall between the read and the store.
    /// If a BPF program holds the hint for all of [`MAX_WAIT`], nothing is stored and the value
    /// the hint keeps is returned (as [`get`](Self::get) reads it).
    #[inline]
    pub fn replace(&self, value: T) -> T {
        match self.entry() {
            Some(e) => match e.replace(|| value.into_raw()) {
                Ok(old) => T::from_raw(old),
                Err(Busy) => self.get(),
            },
            None => self.replace_slow(value),
        }
    }

    #[cold]
    #[inline(never)]
    fn replace_slow(&self, value: T) -> T {
        match self.entry_slow().map(|e| e.replace(|| value.into_raw())) {
            Some(Ok(old)) => T::from_raw(old),
            Some(Err(Busy)) => self.get_slow(),
            None => self.core.init.value[0],
        }
    }

    /// Reads the calling thread's copy, lets `f` change it, and writes it back.
    ///
    /// Each of the read and the write is whole, but the two are not one step: a BPF program
    /// that writes the hint in between loses its write. (`f` runs without holding the claim,
    /// so it may be slow, and may access this hint itself.)
    #[inline]
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        Handle::update(self, f)
    }
}

impl<T: TldType> sealed::Sealed for ConsistentTaskLocal<T> {}

// SAFETY: `size` is the entry of `init_bytes` (the word and two copies) rounded up as the wire
// format says, `align` is 8 (the word's), `init_bytes` covers the word and both copies of `T`,
// and the handle accesses a thread's block only through `Entry` at the offset `place` stores,
// within `size` bytes.
unsafe impl<T: TldType> Hint for ConsistentTaskLocal<T> {
    fn site(&self) -> &Site {
        self.core.site()
    }
    fn size(&self) -> usize {
        wire::consistent_size(std::mem::size_of::<T>())
    }
    fn align(&self) -> usize {
        wire::VALUE_ALIGN
    }
    fn c_type(&self) -> &'static CType {
        T::C_TYPE
    }
    fn consistent(&self) -> bool {
        true
    }
    fn init_bytes(&self) -> &[u8] {
        // `InitEntry` is `repr(C)`: the word's 8 bytes, then `[T; 2]` at offset 8 (alignment at
        // most 8), two `T`s with nothing between them. Trailing padding is left out.
        // SAFETY: so the first `8 + 2 * size_of::<T>()` bytes are initialized (`TldType`
        // promises `T` has no padding), and they lie inside `self.core.init`.
        unsafe {
            std::slice::from_raw_parts(
                (&self.core.init as *const InitEntry<T>).cast::<u8>(),
                wire::seq_copy_offset(std::mem::size_of::<T>(), 2),
            )
        }
    }
    fn place(&self, _token: LayoutToken, offset: u32) {
        self.core.place(offset);
    }
}

impl<T: TldType + std::fmt::Debug> std::fmt::Debug for ConsistentTaskLocal<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core
            .debug("ConsistentTaskLocal", &self.core.init.value[0], f)
    }
}
