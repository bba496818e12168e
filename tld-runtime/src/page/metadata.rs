//! The metadata page: one per process, read by BPF to find keys.
//!
//! Layout (see [`crate::page::wire`] and `docs/wire-format.md`): `u16 cnt; u16 size; struct { char name[62]; u16 size; }
//! metadata[PAGE_SIZE / 64 - 1];`. Entries are published by filling `name` and `size`
//! completely and only then storing `cnt + 1` with release ordering.
//!
//! The page's `size` is what the kernel's C library means by it: the data bytes each thread's
//! page reserves for the process's keys. Every thread here gets a whole page, so that is the
//! data area, `page_size - start`, written once when the page is created. BPF never reads it.
//!
//! BPF programs can write to this page too, so the runtime never reads it back: the number of
//! entries and the bytes used are kept in Rust memory.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::kernel::sys;
use crate::page::wire::{self, max_entries, NAME_LEN};

/// One published entry, as the runtime remembers it (the page itself is never read back).
#[derive(Debug, Clone)]
pub struct Published {
    /// The key.
    pub name: String,
    /// The value's size.
    pub size: usize,
    /// Its offset from the start of a thread's page.
    pub offset: usize,
}

/// The process's metadata page.
pub struct MetaPage {
    page: NonNull<u8>,
    page_size: usize,
    /// Entries published so far, in order.
    entries: Vec<Published>,
    /// Data bytes the entries take, each rounded up to 8.
    used: usize,
    /// Offset of the data area in a thread's page (the data page's `start`).
    start: usize,
}

// SAFETY: the page is process memory that lives forever; `MetaPage` only writes it through
// `&mut self` (callers serialize) and with atomic stores for the fields readers poll.
unsafe impl Send for MetaPage {}
// SAFETY: `&MetaPage` only exposes the page's address and the Rust-side count.
unsafe impl Sync for MetaPage {}

impl MetaPage {
    /// Maps a zeroed page: `cnt` = 0, nothing published, and `size` = the data area of a
    /// thread's page.
    pub fn new(page_size: usize, start: usize) -> Result<MetaPage, i32> {
        let meta = MetaPage {
            page: sys::map_pages(page_size)?,
            page_size,
            entries: Vec::new(),
            used: 0,
            start,
        };
        let reserved = u16::try_from(page_size - start).unwrap_or(u16::MAX);
        // SAFETY: `size` is the page's second u16; nothing has seen the page yet.
        unsafe { meta.atomic_u16(wire::META_SIZE_OFFSET) }.store(reserved, Ordering::Relaxed);
        Ok(meta)
    }

    /// The page's address, as registered with the kernel.
    pub fn addr(&self) -> u64 {
        self.page.as_ptr() as u64
    }

    /// Entries published so far.
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// The entries published so far, in order.
    pub fn entries(&self) -> &[Published] {
        &self.entries
    }

    /// Data bytes used by the entries (each rounded up to 8).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Data bytes still free in a thread's page.
    pub fn available(&self) -> usize {
        self.page_size - self.start - self.used
    }

    /// The offset the next entry published will have in a thread's page.
    pub fn next_offset(&self) -> usize {
        self.start + self.used
    }

    /// Entries the page has room for.
    pub fn capacity(&self) -> usize {
        max_entries(self.page_size)
    }

    /// Appends an entry and publishes it; returns its offset in a thread's page.
    ///
    /// The caller has checked the name (at most 61 bytes, no NUL, not yet published), that a
    /// slot is free, and that the value fits in the page.
    pub fn publish(&mut self, name: &str, size: usize) -> usize {
        let i = self.entries.len();
        assert!(i < max_entries(self.page_size), "metadata page is full");
        assert!(name.len() < NAME_LEN && !name.contains('\0'));
        let offset = self.start + self.used;
        let used = self.used + wire::round8(size);
        assert!(self.start + used <= self.page_size && size <= u16::MAX as usize);
        let entry = wire::entry_offset(i);
        let mut name_field = [0u8; NAME_LEN];
        name_field[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: entry `i` lies within the page (i < max_entries). No reader considers it yet
        // (cnt <= i), but BPF may race on any byte, so the bytes are written volatile.
        unsafe {
            let p = self.page.as_ptr().add(entry);
            p.cast::<[u8; NAME_LEN]>().write_volatile(name_field);
            self.atomic_u16(entry + wire::ENTRY_SIZE_OFFSET)
                .store(size as u16, Ordering::Relaxed);
        }
        self.used = used;
        self.entries.push(Published {
            name: name.to_string(),
            size,
            offset,
        });
        // SAFETY: `cnt` is the page's first u16. Release orders the entry before the count.
        unsafe { self.atomic_u16(wire::META_CNT_OFFSET) }
            .store(self.entries.len() as u16, Ordering::Release);
        offset
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
