//! [`TaskLocal`]: the handle a `#[task_local_data]` static becomes.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::declare::c_type::CType;
use crate::declare::registry::{sealed, Hint, LayoutToken, Site};
use crate::declare::scoped::Handle;
use crate::declare::types::TldType;
use crate::page::wire;
use crate::threads::lifecycle;
use crate::threads::thread_state::{self, Phase};

/// Fails constant evaluation (a compile error where it is called in a `const` block) unless `T`
/// is a type the format can hold: not zero-sized, aligned to 8 bytes at most, and no larger than
/// `max_size`, with `too_large` as the message otherwise.
pub(crate) const fn assert_hint_type<T>(max_size: usize, too_large: &'static str) {
    assert!(
        std::mem::size_of::<T>() >= 1,
        "tld: a hint's type must not be zero-sized"
    );
    assert!(
        std::mem::align_of::<T>() <= wire::MAX_HINT_ALIGN,
        "tld: a hint's type may need alignment 8 at most"
    );
    if std::mem::size_of::<T>() > max_size {
        panic!("{}", too_large);
    }
}

/// A per-thread value that BPF programs can read and write by its key.
///
/// Declare one with [`#[task_local_data]`](crate::task_local_data); the attribute turns
/// `static NAME: T = init;` into `static NAME: TaskLocal<T>`. Every thread has its own copy,
/// starting at `init`. Accesses are plain memory operations on the thread's page: no syscall,
/// no lock. Only a thread's first access (to any hint) does more: it gives the thread its page
/// and registers it with the kernel. An access that interrupts that setup on the same thread (a
/// signal handler, a thread-local destructor) does not wait for it: it reads the initial value,
/// and a store is dropped.
///
/// ```
/// use tld_runtime::task_local_data;
///
/// #[task_local_data]
/// static PRIORITY: i32 = 0;
///
/// PRIORITY.set(5);
/// assert_eq!(PRIORITY.get(), 5);
/// assert_eq!(PRIORITY.update(|p| { *p += 1; *p }), 6);
/// assert_eq!(PRIORITY.key(), "priority");
/// // Another thread starts from the initial value.
/// std::thread::spawn(|| assert_eq!(PRIORITY.get(), 0)).join().unwrap();
/// ```
pub struct TaskLocal<T: TldType> {
    /// The offset, declaration and initial value.
    core: HintCore<T>,
}

impl<T: TldType> TaskLocal<T> {
    /// Used by the `#[task_local_data]` expansion. Not public API.
    ///
    /// A type the format cannot hold (size 0, alignment over 8, larger than a 4 KiB page's
    /// data area) is a compile-time error here too, whoever calls it.
    #[doc(hidden)]
    pub const fn __new(site: Site, init: T) -> Self {
        const {
            assert_hint_type::<T>(
                wire::MAX_HINT_SIZE,
                "tld: a hint's type must fit in a page's data area (4088 bytes)",
            )
        }
        TaskLocal {
            core: HintCore::new(site, init),
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

    /// The offset the layout gave this hint, if it gave one.
    #[cfg(test)]
    pub(crate) fn placed_offset(&self) -> Option<u32> {
        self.core.placed_offset()
    }

    /// The value every thread starts with.
    pub fn initial_value(&self) -> T {
        self.core.init
    }

    /// Where the calling thread's copy lives, if it has a page and the layout knows this hint.
    #[inline(always)]
    fn slot(&self) -> Option<*mut T::Raw> {
        // SAFETY: only the layout sets `offset` (through `Hint::place`), for this hint's
        // `size_of::<T>()` bytes at a multiple of 8, which suffices for `T` (alignment <= 8,
        // checked in `__new`).
        unsafe { self.core.slot() }.map(|p| p.cast::<T::Raw>())
    }

    /// Where the calling thread's copy lives, giving the thread its page first if needed.
    /// `None` while the thread is being set up or torn down (a re-entrant access).
    ///
    /// A handle that the layout did not place (one made by hand with `__new`, which need not be
    /// a static) lives in the thread's fallback storage under its address. Another handle may
    /// take that address once this one is gone; the fallback finds storage by address and
    /// length, so the slot always has `size_of::<T>()` bytes, and any bytes are a valid
    /// `T::Raw`.
    #[cold]
    #[inline(never)]
    fn slot_slow(&self) -> Option<*mut T::Raw> {
        // SAFETY: as in `slot`; the fallback is `init_bytes().len()` bytes, 8-aligned.
        unsafe { self.core.slot_slow(self.init_bytes()) }.map(|p| p.cast::<T::Raw>())
    }

    #[cold]
    #[inline(never)]
    fn set_slow(&self, raw: T::Raw) {
        if let Some(p) = self.slot_slow() {
            // SAFETY: as in `set`.
            unsafe { p.write_volatile(raw) }
        }
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&self) -> T {
        match self.slot_slow() {
            // SAFETY: as in `get`.
            Some(p) => T::from_raw(unsafe { p.read_volatile() }),
            None => self.core.init,
        }
    }

    /// Writes the calling thread's copy.
    ///
    /// A plain store to the thread's page. BPF programs that look the key up see it at once.
    #[inline]
    pub fn set(&self, value: T) {
        let raw = value.into_raw();
        match self.slot() {
            // SAFETY: `p` points at this thread's aligned, live copy (see `slot`). BPF may
            // write the same bytes concurrently, so the access is volatile, never via `&mut`.
            Some(p) => unsafe { p.write_volatile(raw) },
            None => self.set_slow(raw),
        }
    }

    /// Reads the calling thread's copy, including whatever a BPF program wrote into it.
    #[inline]
    pub fn get(&self) -> T {
        match self.slot() {
            // SAFETY: as in `set`; every bit pattern is a valid `T::Raw` (it is `Pod`).
            Some(p) => T::from_raw(unsafe { p.read_volatile() }),
            None => self.get_slow(),
        }
    }

    /// Reads the calling thread's copy, lets `f` change it, and writes it back.
    ///
    /// This is not atomic with respect to BPF programs writing the same hint in between.
    #[inline]
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        Handle::update(self, f)
    }
}

impl<T: TldType> sealed::Sealed for TaskLocal<T> {}

// SAFETY: `size`, `align` and `init_bytes` come from `T` itself, and the handle accesses a
// thread's block only at the offset `place` stores, for `size_of::<T>()` bytes.
unsafe impl<T: TldType> Hint for TaskLocal<T> {
    fn site(&self) -> &Site {
        self.core.site()
    }
    fn size(&self) -> usize {
        std::mem::size_of::<T>()
    }
    fn align(&self) -> usize {
        std::mem::align_of::<T>()
    }
    fn c_type(&self) -> &'static CType {
        T::C_TYPE
    }
    fn init_bytes(&self) -> &[u8] {
        // SAFETY: `TldType` promises that `T` has no padding, so all `size_of::<T>()` bytes
        // of the initial value are initialized; the slice borrows `self`.
        unsafe {
            std::slice::from_raw_parts(
                (&self.core.init as *const T).cast::<u8>(),
                std::mem::size_of::<T>(),
            )
        }
    }
    fn place(&self, _token: LayoutToken, offset: u32) {
        self.core.place(offset);
    }
}

impl<T: TldType + std::fmt::Debug> std::fmt::Debug for TaskLocal<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.debug("TaskLocal", &self.core.init, f)
    }
}

/// What both hint handles ([`TaskLocal`] and
/// [`ConsistentTaskLocal`](crate::ConsistentTaskLocal)) hold, and what they do alike with it:
/// where the layout placed the hint, its declaration, and its initial value (`I`: the value,
/// or a consistent hint's initial entry).
pub(crate) struct HintCore<I> {
    /// Byte offset of the hint (a consistent hint's entry) in a thread's block; 0 until the
    /// layout has run, or for a hint the layout never saw.
    offset: AtomicU32,
    site: Site,
    /// The initial value, or entry.
    pub(crate) init: I,
}

impl<I> HintCore<I> {
    /// A hint not placed yet.
    pub(crate) const fn new(site: Site, init: I) -> Self {
        HintCore {
            offset: AtomicU32::new(0),
            site,
            init,
        }
    }

    /// The key BPF programs use to find the hint.
    #[inline(always)]
    pub(crate) fn key(&self) -> &'static str {
        self.site.key
    }

    /// The declaration.
    pub(crate) fn site(&self) -> &Site {
        &self.site
    }

    /// Places the hint at `offset` (the layout's [`Hint::place`]).
    pub(crate) fn place(&self, offset: u32) {
        // Relaxed suffices: threads read offsets only after passing the runtime's OnceLock.
        self.offset.store(offset, Ordering::Relaxed);
    }

    /// The offset the layout gave the hint, if it gave one.
    #[cfg(test)]
    pub(crate) fn placed_offset(&self) -> Option<u32> {
        Some(self.offset.load(Ordering::Relaxed)).filter(|&o| o != 0)
    }

    /// Where the calling thread's copy (or entry) lives, if it has a page and the layout placed
    /// the hint: [`block_slot`].
    ///
    /// # Safety
    /// Only the layout places a hint (through [`HintCore::place`]), at the offset of a slot of
    /// the hint's size aligned to 8: the caller accesses no more than that.
    #[inline(always)]
    pub(crate) unsafe fn slot(&self) -> Option<*mut u8> {
        // SAFETY: the offset is one the layout gave (the caller's promise).
        unsafe { block_slot(&self.offset) }
    }

    /// [`HintCore::slot`], giving the thread its page first if needed; for a hint the layout
    /// did not place, the thread's fallback storage under this core's address, filled from
    /// `init_bytes`: [`slot_slow`].
    ///
    /// # Safety
    /// As for [`HintCore::slot`]; `init_bytes` has the size of the hint's slot.
    #[cold]
    pub(crate) unsafe fn slot_slow(&self, init_bytes: &[u8]) -> Option<*mut u8> {
        // SAFETY: as in `slot`.
        unsafe { slot_slow(&self.offset, self as *const Self as usize, init_bytes) }
    }

    /// The handles' `Debug`: the handle's `name`, the key, the type and `init`.
    pub(crate) fn debug(
        &self,
        name: &str,
        init: &dyn std::fmt::Debug,
        f: &mut std::fmt::Formatter<'_>,
    ) -> std::fmt::Result {
        f.debug_struct(name)
            .field("key", &self.site.key)
            .field("type", &self.site.type_name)
            .field("init", init)
            .finish()
    }
}

/// The swap that scoped hints are built on (see `scoped.rs`): one slot lookup for the read and
/// the write.
impl<T: TldType> TaskLocal<T> {
    /// Writes the calling thread's copy and returns the value it replaces, like
    /// [`Cell::replace`](std::cell::Cell::replace).
    ///
    /// A read and a store of the thread's page, with one lookup of the slot. It is not atomic
    /// with respect to a BPF program writing the same hint in between.
    ///
    /// ```
    /// use tld_runtime::task_local_data;
    ///
    /// #[task_local_data]
    /// static PRIORITY: i32 = 0;
    ///
    /// assert_eq!(PRIORITY.replace(5), 0);
    /// assert_eq!(PRIORITY.replace(7), 5);
    /// assert_eq!(PRIORITY.get(), 7);
    /// ```
    #[inline]
    pub fn replace(&self, value: T) -> T {
        let raw = value.into_raw();
        match self.slot() {
            // SAFETY: as in `set` and `get`: `p` points at this thread's aligned, live copy,
            // accessed only by volatile reads and writes.
            Some(p) => T::from_raw(unsafe { replace_volatile(p, raw) }),
            None => self.replace_slow(raw),
        }
    }

    #[cold]
    #[inline(never)]
    fn replace_slow(&self, raw: T::Raw) -> T {
        match self.slot_slow() {
            // SAFETY: as in `replace`.
            Some(p) => T::from_raw(unsafe { replace_volatile(p, raw) }),
            None => self.core.init,
        }
    }
}

/// A volatile read of `p` followed by a volatile write of `value` to it.
///
/// # Safety
/// `p` must be valid for volatile reads and writes of `R`.
#[inline(always)]
unsafe fn replace_volatile<R>(p: *mut R, value: R) -> R {
    // SAFETY: the caller promises that `p` is valid for volatile reads and writes.
    unsafe {
        let old = p.read_volatile();
        p.write_volatile(value);
        old
    }
}

/// Where the calling thread's copy of the hint placed at `offset` lives: its block plus the
/// offset, if it has a block and the layout placed the hint.
///
/// # Safety
/// `offset` must be the offset the layout gave a hint (through `Hint::place`), so that the
/// pointer stays inside the block, aligned to 8.
#[inline(always)]
pub(crate) unsafe fn block_slot(offset: &AtomicU32) -> Option<*mut u8> {
    // Relaxed is enough: the offset was stored before this thread's block was published to it
    // (the layout runs inside a `OnceLock` that the thread passed through first).
    // SAFETY: the caller's promise.
    unsafe { slot_in_block(|| offset.load(Ordering::Relaxed) as usize) }
}

/// The calling thread's block plus `off`, if it has a block and `off` is not 0 (0: a hint the
/// layout did not place); for keys created at run time.
///
/// # Safety
/// `off` must be 0 or an offset the layout gave a value (a hint's, or a published key's), so
/// that the pointer stays inside the block, aligned to 8.
#[inline(always)]
pub(crate) unsafe fn slot_at(off: usize) -> Option<*mut u8> {
    // SAFETY: the caller's promise.
    unsafe { slot_in_block(|| off) }
}

/// The one place that turns an offset into a thread's value, for static hints and keys
/// created at run time alike: the block (the hot path's one thread-local load) first, then the
/// offset that `off` reads. In this order the compiler keeps the hot path to those two loads,
/// two tests and the access, with no register saved (measured: the other order costs P1 two
/// pushes and pops).
///
/// # Safety
/// As for [`slot_at`], for the offset `off` returns.
#[inline(always)]
unsafe fn slot_in_block(off: impl FnOnce() -> usize) -> Option<*mut u8> {
    let base = thread_state::current_block();
    let off = off();
    if base.is_null() || off == 0 {
        return None;
    }
    // SAFETY: the caller's promise: `off` lies inside every block; `base` is this thread's.
    Some(unsafe { base.add(off) })
}

/// [`block_slot`], giving the thread its page first if needed; for a hint that the layout did
/// not place, the thread's private fallback storage for `id`, filled from `init` at first use.
/// `None` while the thread is being set up or torn down (a re-entrant access).
///
/// # Safety
/// As for [`block_slot`].
#[cold]
pub(crate) unsafe fn slot_slow(offset: &AtomicU32, id: usize, init: &[u8]) -> Option<*mut u8> {
    // The offset is read after the thread's setup, which lays the hints out if nobody has.
    // SAFETY: the caller's promise.
    unsafe { slot_slow_at(|| offset.load(Ordering::Relaxed) as usize, id, init) }
}

/// [`slot_at`] of the offset `off()` reads once the thread has its page (it gets one first
/// if needed, which lays the hints out); without a page (or for offset 0), the thread's
/// private fallback storage for `id`, filled from `init` at first use. `None` while the thread
/// is being set up or torn down (a re-entrant access).
///
/// # Safety
/// As for [`slot_at`], for what `off` returns.
#[cold]
pub(crate) unsafe fn slot_slow_at(
    off: impl FnOnce() -> usize,
    id: usize,
    init: &[u8],
) -> Option<*mut u8> {
    let phase = lifecycle::enter_thread();
    // SAFETY: the caller's promise.
    if let Some(p) = unsafe { slot_at(off()) } {
        return Some(p);
    }
    match phase {
        Phase::Busy => None,
        Phase::New | Phase::Active | Phase::Exited => thread_state::fallback_slot(id, init),
    }
}
