//! The metadata page: one per process, read by BPF to find keys.
//!
//! Layout (see WIRE_FORMAT.md): `u16 cnt; u16 size; struct { char name[62]; u16 size; }
//! metadata[PAGE_SIZE / 64 - 1];`. Entries are published by filling `name` and `size`
//! completely and only then storing `cnt + 1` with release ordering.
//!
//! BPF programs can write to this page too, so the runtime never reads it back: the number of
//! entries and the bytes used are kept in Rust memory.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::sys;

/// Bytes of one metadata entry.
pub const ENTRY_SIZE: usize = 64;
/// Bytes of an entry's name field, NUL included.
pub const NAME_LEN: usize = 62;
/// Offset of `metadata[0]` in the page.
const ENTRIES_OFFSET: usize = 4;

/// The number of entries a metadata page of `page_size` bytes holds.
pub const fn max_entries(page_size: usize) -> usize {
    page_size / ENTRY_SIZE - 1
}

/// The process's metadata page.
pub struct MetaPage {
    page: NonNull<u8>,
    page_size: usize,
    /// Entries published so far.
    count: usize,
}

// SAFETY: the page is process memory that lives forever; `MetaPage` only writes it through
// `&mut self` (callers serialize) and with atomic stores for the fields readers poll.
unsafe impl Send for MetaPage {}
// SAFETY: `&MetaPage` only exposes the page's address and the Rust-side count.
unsafe impl Sync for MetaPage {}

impl MetaPage {
    /// Maps a zeroed page: `cnt` = 0, nothing published.
    pub fn new(page_size: usize) -> Result<MetaPage, i32> {
        Ok(MetaPage {
            page: sys::map_pages(page_size)?,
            page_size,
            count: 0,
        })
    }

    /// The page's address, as registered with the kernel.
    pub fn addr(&self) -> u64 {
        self.page.as_ptr() as u64
    }

    /// Entries published so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Appends an entry and publishes it. `data_size` is the new total of data bytes the
    /// process uses, written to the header's `size` field.
    ///
    /// The caller has checked the name (at most 61 bytes, no NUL) and that a slot is free.
    pub fn publish(&mut self, name: &str, size: u16, data_size: u16) {
        let i = self.count;
        assert!(i < max_entries(self.page_size), "metadata page is full");
        assert!(name.len() < NAME_LEN && !name.contains('\0'));
        let entry = ENTRIES_OFFSET + i * ENTRY_SIZE;
        let mut name_field = [0u8; NAME_LEN];
        name_field[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: entry `i` lies within the page (i < max_entries). No reader considers it yet
        // (cnt <= i), but BPF may race on any byte, so the bytes are written volatile.
        unsafe {
            let p = self.page.as_ptr().add(entry);
            p.cast::<[u8; NAME_LEN]>().write_volatile(name_field);
            self.atomic_u16(entry + NAME_LEN)
                .store(size, Ordering::Relaxed);
            self.atomic_u16(2).store(data_size, Ordering::Relaxed);
        }
        self.count = i + 1;
        // SAFETY: `cnt` is the page's first u16. Release orders the entry before the count.
        unsafe { self.atomic_u16(0) }.store(self.count as u16, Ordering::Release);
    }

    /// The `u16` at `offset` in the page, as an atomic.
    ///
    /// # Safety
    /// `offset` must be even and at most `page_size - 2`.
    unsafe fn atomic_u16(&self, offset: usize) -> &AtomicU16 {
        debug_assert!(offset % 2 == 0 && offset + 2 <= self.page_size);
        // SAFETY: the caller keeps the u16 inside the page and aligned; the page lives forever
        // and is only ever accessed through atomics or volatile operations.
        unsafe { AtomicU16::from_ptr(self.page.as_ptr().add(offset).cast::<u16>()) }
    }
}
