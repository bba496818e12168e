//! The calling thread's own state: its block (the one TLS load of the hot path), where it is in
//! its life, and private storage for values that have no place in a block.
//!
//! A thread goes through four phases:
//!
//! ```text
//! New --first access--> Busy --block attached--> Active --exit--> Busy --> Exited
//! ```
//!
//! `Busy` is the thread being set up or torn down. Anything that touches a hint during it (a
//! signal handler that interrupts the setup, a thread-local destructor that runs inside it)
//! must not wait for the setup, which it interrupted and which cannot finish until it returns:
//! in `Busy` a read gives the hint's initial value and a store does nothing, as tracing's
//! callsites do while they register. Once the thread has its block, every access is a plain
//! memory access, whatever the phase.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

use crate::threads::thread_table::SlotId;

/// Where the calling thread is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// It has not touched a hint yet.
    New,
    /// It is being set up or torn down: accesses must not block or allocate.
    Busy,
    /// It has its block.
    Active,
    /// It has released its block for good; values live in [`fallback_slot`]s.
    Exited,
}

thread_local! {
    /// The calling thread's block, or null before its first access and after it exits.
    static BLOCK: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
    static PHASE: Cell<Phase> = const { Cell::new(Phase::New) };
    /// The thread's record in the thread table, while it has a block.
    static SLOT: Cell<Option<SlotId>> = const { Cell::new(None) };
    /// The thread has handed its block to the kernel at least once.
    static EXPOSED: Cell<bool> = const { Cell::new(false) };
    /// In a copy that serves other parts: bit `i` is set when part `i` asked for the thread's
    /// block (see [`crate::copies::parts`]).
    static PARTS_SEEN: Cell<u64> = const { Cell::new(0) };
    /// Storage for values that have no place in a block (see [`fallback_slot`]).
    static FALLBACK: RefCell<Vec<Fallback>> = const { RefCell::new(Vec::new()) };
}

/// The calling thread's block, or null. The hot path: one TLS load.
#[inline(always)]
pub fn current_block() -> *mut u8 {
    BLOCK.with(Cell::get)
}

/// The calling thread's phase.
pub fn phase() -> Phase {
    PHASE.with(Cell::get)
}

/// Moves the calling thread to `phase`.
pub fn set_phase(phase: Phase) {
    PHASE.with(|p| p.set(phase));
}

/// The calling thread's slot in the thread table, while it has a block.
pub fn current_slot() -> Option<SlotId> {
    SLOT.with(Cell::get)
}

/// Gives the calling thread `block`, recorded in the thread table at `slot`.
pub fn attach(block: *mut u8, slot: SlotId) {
    SLOT.with(|s| s.set(Some(slot)));
    BLOCK.with(|b| b.set(block));
}

/// Gives the calling thread `block`, in a copy of the runtime that joined another one: the
/// serving copy keeps the thread's record.
pub fn attach_block(block: *mut u8) {
    BLOCK.with(|b| b.set(block));
}

/// Forgets the calling thread's block, in a copy of the runtime that joined another one.
pub fn detach_block() {
    BLOCK.with(|b| b.set(std::ptr::null_mut()));
}

/// Takes the calling thread's block and slot away. From here on its hints have no block.
pub fn detach() -> Option<(*mut u8, SlotId)> {
    let block = BLOCK.with(|b| b.replace(std::ptr::null_mut()));
    let slot = SLOT.with(|s| s.take());
    slot.filter(|_| !block.is_null()).map(|slot| (block, slot))
}

/// Notes that the calling thread is about to hand its block to the kernel: from then on some
/// element may name the block's physical page, and it must be retired when the thread exits.
pub fn mark_exposed() {
    EXPOSED.with(|e| e.set(true));
}

/// Whether the calling thread has handed its block to the kernel (see [`mark_exposed`]).
pub fn exposed() -> bool {
    EXPOSED.with(Cell::get)
}

/// Forgets [`mark_exposed`], in a forked child, whose copy of the page no element names.
pub fn clear_exposed() {
    EXPOSED.with(|e| e.set(false));
}

/// Notes that the part with index `part` asked for the calling thread's block.
pub fn note_part_seen(part: u32) {
    if part < crate::copies::parts::SEEN_BITS {
        PARTS_SEEN.with(|s| s.set(s.get() | 1 << part));
    }
}

/// The parts that asked for the calling thread's block (bits of [`note_part_seen`]), now
/// forgotten.
pub fn take_parts_seen() -> u64 {
    PARTS_SEEN.with(|s| s.replace(0))
}

/// One value in a thread's fallback storage.
struct Fallback {
    /// The value's id (a handle's address).
    id: usize,
    /// The value's length in bytes.
    len: usize,
    /// Its storage, at least `len` bytes, 8-aligned: a boxed slice of words, held by a raw
    /// pointer rather than a `Box`. The thread keeps pointers into it while the record moves
    /// (the vector grows) and is found again by `iter_mut`; a `Box` would assert unique access
    /// each time, which invalidates those pointers under Rust's aliasing rules (miri found
    /// it).
    buf: NonNull<[u64]>,
}

impl Drop for Fallback {
    fn drop(&mut self) {
        // SAFETY: `buf` comes from `Box::into_raw` in `fallback_slot`, and only this drop frees
        // it, once. The thread's pointers into it are not used after its fallback storage is
        // destroyed (the storage lives as long as the thread's thread-locals).
        drop(unsafe { Box::from_raw(self.buf.as_ptr()) });
    }
}

/// Per-thread storage for a value that has no place in the thread's block: a hint that the
/// layout did not place, or any value on a thread whose block is gone. `id` names the value;
/// `init` is its first content. The values stay private to the thread. Returns `None` while
/// the thread's thread-locals are being destroyed, or when called re-entrantly.
///
/// The storage returned is 8-aligned and at least `init.len()` bytes long, whatever other
/// values used the same `id` before: a slot is found by `id` and length together. (A handle's
/// `id` is its address, and a handle that is not a static may die and leave its address to
/// another of another size.)
pub fn fallback_slot(id: usize, init: &[u8]) -> Option<*mut u8> {
    FALLBACK
        .try_with(|slots| {
            let mut slots = slots.try_borrow_mut().ok()?;
            if let Some(slot) = slots.iter().find(|s| s.id == id && s.len == init.len()) {
                return Some(slot.buf.as_ptr().cast::<u8>());
            }
            let words = vec![0u64; init.len().div_ceil(8).max(1)].into_boxed_slice();
            let buf = NonNull::from(Box::leak(words));
            let p = buf.as_ptr().cast::<u8>();
            // SAFETY: `buf` has at least `init.len()` bytes, and the two do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(init.as_ptr(), p, init.len()) };
            slots.push(Fallback {
                id,
                len: init.len(),
                buf,
            });
            Some(p)
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_slot_is_found_by_id_and_length() {
        std::thread::spawn(|| {
            let small = fallback_slot(1, &[7; 4]).unwrap();
            // SAFETY: the slot holds at least 4 bytes.
            unsafe { small.write(9) };
            assert_eq!(fallback_slot(1, &[7; 4]), Some(small), "the same value");
            // Another value of another size under the same id gets storage of its own size.
            let large = fallback_slot(1, &[3; 4000]).unwrap();
            assert_ne!(large, small);
            // SAFETY: the slot holds at least 4000 bytes.
            let bytes = unsafe { std::slice::from_raw_parts(large, 4000) };
            assert!(bytes.iter().all(|&b| b == 3));
            // SAFETY: as above.
            assert_eq!(unsafe { small.read() }, 9);
        })
        .join()
        .unwrap();
    }
}
