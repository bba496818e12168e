//! The format's numbers: the layout of the pages that user space and BPF share.
//!
//! Every part of the project that reads or writes the format takes its numbers from here: the
//! runtime (which writes the pages), the header generator (which tells BPF where to read), the
//! procedural macros (which check limits at compile time), the tests, and tools such as an
//! inspector that decode pages of any writer. A test compiles the BPF header against these
//! values, so the two cannot drift apart.
//!
//! ```text
//! tld_data_map value, two generations:
//!   Linux 6.18, scx (16 bytes):    { data __uptr *; meta __uptr *; }
//!   Linux 7.x (24 bytes):          { data __uptr *; meta __uptr *; u16 start; }
//!
//! metadata page (one per process): u16 cnt | u16 size | entry[0] | entry[1] | ...
//!   entry (64 bytes):              char name[62] (NUL-padded) | u16 size (0: not yet published)
//!
//! data page (one per thread):      u64 start | [u64 fingerprint] | value 0 | value 1 | ...
//!   value i lives at start + sum over j < i of round8(entry[j].size)
//!   6.18 readers take start from the page's first u64, 7.x readers from the map value;
//!   tld-runtime writes both
//!
//! a consistent hint's entry:        u64 seq | value copy 0 | value copy 1
//!   seq: bit 0 always 1 | bit 1: the thread writes | bit 2: BPF writes
//!        | bit 3: the thread waits to read | bits 4..: version v
//!   copy (v & 1) holds the last whole value; writers fill the other copy, then publish v + 1
//! ```
//!
//! The full description, with the publication rules and the kernel's lifetime rules, is in
//! `docs/wire-format.md` in the repository.

/// Bytes of the two user pointers (`data`, then `meta`) that start every `tld_data_map` value,
/// and so the whole value of the 6.18 generation ([`Generation::Linux6_18`]).
pub const MAP_VALUE_SIZE: usize = 16;
/// Offset, in the 7.x generation's value, of `start` (a `u16`).
pub const MAP_VALUE_START_OFFSET: usize = 16;
/// Bytes of the 7.x generation's value ([`Generation::Linux7`]): the pointers, `start`, and
/// padding to 8 bytes.
pub const MAP_VALUE_SIZE_7: usize = 24;
/// The longest `tld_data_map` value of any generation, in bytes.
pub const MAP_VALUE_MAX: usize = MAP_VALUE_SIZE_7;

/// Whether a map value of `size` bytes is one of the generations' values: 16 or 24 bytes.
pub const fn is_map_value_size(size: usize) -> bool {
    Generation::from_value_size(size).is_some()
}

/// A generation of the format: where BPF readers find `start`, and so what a writer sends.
///
/// Both generations share the metadata page and the data page; they differ in the map's
/// value. A writer sends exactly the map's value size (the kernel copies that many bytes from
/// its buffer), so the map's value tells a writer which generation its readers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Generation {
    /// Linux 6.18's selftests library and sched-ext/scx's `task_local_data.bpf.h`: the value is
    /// `{data, meta}` (16 bytes), and readers take `start` from the data page's first `u64`.
    Linux6_18,
    /// Linux 7.x's selftests library and BPF header: the value is `{data, meta, u16 start}`
    /// (24 bytes), and readers take `start` from the value.
    Linux7,
}

impl Generation {
    /// The bytes of this generation's map value.
    pub const fn value_size(self) -> usize {
        match self {
            Generation::Linux6_18 => MAP_VALUE_SIZE,
            Generation::Linux7 => MAP_VALUE_SIZE_7,
        }
    }

    /// The generation whose value has `size` bytes, if any.
    pub const fn from_value_size(size: usize) -> Option<Generation> {
        match size {
            MAP_VALUE_SIZE => Some(Generation::Linux6_18),
            MAP_VALUE_SIZE_7 => Some(Generation::Linux7),
            _ => None,
        }
    }

    /// Whether readers of this generation take `start` from the map value.
    pub const fn start_in_value(self) -> bool {
        matches!(self, Generation::Linux7)
    }

    /// A short name: `6.18` or `7.x`.
    pub const fn name(self) -> &'static str {
        match self {
            Generation::Linux6_18 => "6.18",
            Generation::Linux7 => "7.x",
        }
    }
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Generation::Linux6_18 => {
                f.write_str("Linux 6.18 / scx (16-byte value, start in the page)")
            }
            Generation::Linux7 => f.write_str("Linux 7.x (24-byte value, start in the value)"),
        }
    }
}

/// The bytes a writer sends for thread registration in a map of generation `generation`: the
/// data page's and the metadata page's addresses, and `start` where the value has it. Padding
/// is zero. Only the first `generation.value_size()` bytes belong to the value.
pub fn map_value(generation: Generation, data: u64, meta: u64, start: u16) -> [u8; MAP_VALUE_MAX] {
    let mut value = [0u8; MAP_VALUE_MAX];
    value[..8].copy_from_slice(&data.to_ne_bytes());
    value[8..16].copy_from_slice(&meta.to_ne_bytes());
    if generation.start_in_value() {
        value[MAP_VALUE_START_OFFSET..MAP_VALUE_START_OFFSET + 2]
            .copy_from_slice(&start.to_ne_bytes());
    }
    value
}

/// Bytes of a `tld_data_map` key: an `int` (a pidfd, for user space).
pub const MAP_KEY_SIZE: usize = 4;

/// Offset in the metadata page of `cnt`, the number of entries readers may look at (a `u16`,
/// stored with release ordering after the entry it counts).
pub const META_CNT_OFFSET: usize = 0;
/// Offset in the metadata page of `size`, the data bytes a thread's page reserves for the
/// process's keys (a `u16`).
pub const META_SIZE_OFFSET: usize = 2;
/// Offset in the metadata page of the first entry.
pub const META_ENTRIES_OFFSET: usize = 4;
/// Bytes of one metadata entry.
pub const META_ENTRY_SIZE: usize = 64;
/// Bytes of an entry's name field, the terminating NUL included.
pub const NAME_LEN: usize = 62;
/// The longest key, in bytes: the name field less its NUL.
pub const MAX_KEY_LEN: usize = NAME_LEN - 1;
/// Offset of an entry's `size` (a `u16`) within the entry.
pub const ENTRY_SIZE_OFFSET: usize = NAME_LEN;

/// Offset in a data page of `start`, the `u64` that says where the data area begins.
pub const DATA_START_FIELD: usize = 0;
/// `start` when the data area follows `start` directly.
pub const DATA_START: usize = 8;
/// Offset in a data page of the layout fingerprint, when `start` is [`FINGERPRINT_START`].
pub const FINGERPRINT_OFFSET: usize = 8;
/// `start` when bytes 8..16 hold the layout fingerprint.
pub const FINGERPRINT_START: usize = 16;

/// Every value is placed at a multiple of this many bytes from the page's start, so a hint's
/// type may need at most this alignment.
pub const VALUE_ALIGN: usize = 8;
/// The largest alignment a hint's type may have.
pub const MAX_HINT_ALIGN: usize = VALUE_ALIGN;

/// Offset of the sequence word in a consistent hint's entry: a `u64` that says which of the
/// entry's two copies of the value is whole, and who is writing the other (the `SEQ_*`
/// constants below).
pub const SEQ_OFFSET: usize = 0;
/// Offset of the first copy of the value in a consistent hint's entry, after its sequence word.
/// The second copy follows the first directly, at `SEQ_VALUE_OFFSET + size_of::<T>()` (C's
/// `T value[2]`).
pub const SEQ_VALUE_OFFSET: usize = 8;

/// Bit 0 of a consistent hint's sequence word, always set: it marks the two-copy format. A
/// reader or writer of the earlier one-copy format (whose counter was even at rest) sees a
/// write that never ends and gives up, instead of reading or writing the wrong bytes.
pub const SEQ_LATCH: u64 = 1;
/// Bit 1 of the sequence word: the thread itself (user space) is writing the copy that is not
/// whole.
pub const SEQ_CLAIM_THREAD: u64 = 2;
/// Bit 2 of the sequence word: a BPF program is writing the copy that is not whole.
pub const SEQ_CLAIM_BPF: u64 = 4;
/// Both claim bits.
pub const SEQ_CLAIMS: u64 = SEQ_CLAIM_THREAD | SEQ_CLAIM_BPF;
/// Bit 3 of the sequence word: the thread waits to read, and BPF writers hold off until it has.
/// The thread sets it when BPF writers keep it from taking a whole copy (writing back to back,
/// faster than it copies), then claims the word between two writes and reads under its claim.
pub const SEQ_WANT: u64 = 8;
/// The version is the sequence word shifted right by this many bits; each write adds 1.
pub const SEQ_VERSION_SHIFT: u32 = 4;
/// What one write adds to the sequence word (one version).
pub const SEQ_ONE: u64 = 1 << SEQ_VERSION_SHIFT;
/// The sequence word of a new entry: version 0, nobody writing, copy 0 whole.
pub const SEQ_INIT: u64 = SEQ_LATCH;

/// Which copy (0 or 1) of a consistent hint's value is whole while the sequence word is `seq`:
/// the version's lowest bit.
pub const fn seq_copy(seq: u64) -> usize {
    ((seq >> SEQ_VERSION_SHIFT) & 1) as usize
}

/// Whether a copy of the value taken while the sequence word read `before` (and was a latch
/// word) is whole, given the word read again after the copy, `after`: true if no writer has
/// started on that copy since, that is if at most the write in progress at `before` has been
/// published (`after` is at most version + 1, unclaimed).
pub const fn seq_copy_whole(before: u64, after: u64) -> bool {
    (after & !SEQ_WANT).wrapping_sub(before & !(SEQ_ONE - 1)) <= SEQ_ONE | SEQ_LATCH
}

/// The offset of copy `i` (0 or 1) of a consistent hint's value of `value_size` bytes, from
/// the start of its entry.
pub const fn seq_copy_offset(value_size: usize, i: usize) -> usize {
    SEQ_VALUE_OFFSET + i * value_size
}

/// The size a consistent hint whose value has `value_size` bytes publishes: the sequence word,
/// then two copies of the value, padded to 8 bytes (the size of C's
/// `struct { __u64 seq; T value[2]; }`).
pub const fn consistent_size(value_size: usize) -> usize {
    SEQ_VALUE_OFFSET + round8(2 * value_size)
}

/// The page size the compile-time limits assume (4 KiB, as on x86-64).
pub const BASE_PAGE_SIZE: usize = 4096;
/// The largest hint on 4 KiB pages: the page less `start`.
pub const MAX_HINT_SIZE: usize = BASE_PAGE_SIZE - DATA_START;
/// The largest value of a consistent hint on 4 KiB pages: its sequence word and two copies of it
/// must fit.
pub const MAX_CONSISTENT_SIZE: usize = (MAX_HINT_SIZE - SEQ_VALUE_OFFSET) / 2;

/// The number of entries a metadata page of `page_size` bytes holds: 63 on 4 KiB pages.
pub const fn max_entries(page_size: usize) -> usize {
    page_size / META_ENTRY_SIZE - 1
}

/// The bytes a metadata page of `page_size` bytes uses: `cnt`, `size` and every entry.
pub const fn meta_bytes(page_size: usize) -> usize {
    META_ENTRIES_OFFSET + max_entries(page_size) * META_ENTRY_SIZE
}

/// The largest data area of a page of `page_size` bytes: the page less `start`.
pub const fn max_data(page_size: usize) -> usize {
    page_size - DATA_START
}

/// Offset in the metadata page of entry `i`.
pub const fn entry_offset(i: usize) -> usize {
    META_ENTRIES_OFFSET + i * META_ENTRY_SIZE
}

/// Rounds `n` up to a multiple of [`VALUE_ALIGN`]: the room a value of `n` bytes takes.
pub const fn round8(n: usize) -> usize {
    (n + VALUE_ALIGN - 1) & !(VALUE_ALIGN - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_of_a_4k_page() {
        assert_eq!(max_entries(4096), 63);
        assert_eq!(meta_bytes(4096), 4036);
        assert_eq!(max_data(4096), 4088);
        assert_eq!(max_entries(65536), 1023);
        assert_eq!(entry_offset(1), 68);
        assert_eq!(round8(1), 8);
        assert_eq!(round8(8), 8);
        assert_eq!(round8(1001), 1008);
        assert_eq!(consistent_size(32), 72);
        assert_eq!(consistent_size(6), 24);
        assert_eq!(consistent_size(MAX_CONSISTENT_SIZE), MAX_HINT_SIZE);
        assert_eq!(MAX_CONSISTENT_SIZE, 2040);
        assert_eq!(seq_copy_offset(6, 1), 14);
    }

    #[test]
    fn the_sequence_word() {
        assert_eq!(seq_copy(SEQ_INIT), 0);
        let v7 = (7 * SEQ_ONE) | SEQ_LATCH;
        assert_eq!(seq_copy(v7), 1);
        assert_eq!(
            seq_copy(v7 | SEQ_CLAIM_BPF),
            1,
            "a claim does not move the whole copy"
        );
        assert_eq!(seq_copy(v7 | SEQ_CLAIM_BPF | SEQ_WANT), 1);
        assert_eq!(seq_copy(v7 + SEQ_ONE), 0);
        // Taken at version 7: whole while nobody has started on copy 1 again.
        for before in [v7, v7 | SEQ_CLAIM_THREAD, v7 | SEQ_CLAIM_BPF] {
            assert!(seq_copy_whole(before, v7));
            assert!(seq_copy_whole(before, v7 | SEQ_CLAIM_BPF));
            assert!(seq_copy_whole(before, v7 + SEQ_ONE));
            assert!(
                seq_copy_whole(before, (v7 + SEQ_ONE) | SEQ_WANT),
                "a reader waits"
            );
            assert!(seq_copy_whole(before, v7 | SEQ_WANT | SEQ_CLAIM_BPF));
            assert!(!seq_copy_whole(before, (v7 + SEQ_ONE) | SEQ_CLAIM_THREAD));
            assert!(!seq_copy_whole(before, (v7 + SEQ_ONE) | SEQ_CLAIM_BPF));
            assert!(!seq_copy_whole(before, v7 + 2 * SEQ_ONE));
            assert!(
                !seq_copy_whole(before, v7 - SEQ_ONE),
                "a word that went back"
            );
        }
        // Around the wrap of the version.
        let last = !(SEQ_ONE - 1) | SEQ_LATCH;
        assert!(seq_copy_whole(last, last.wrapping_add(SEQ_ONE)));
        assert!(!seq_copy_whole(
            last,
            last.wrapping_add(SEQ_ONE) | SEQ_CLAIM_BPF
        ));
    }

    #[test]
    fn generations_by_value_size() {
        assert_eq!(Generation::from_value_size(16), Some(Generation::Linux6_18));
        assert_eq!(Generation::from_value_size(24), Some(Generation::Linux7));
        for bad in [0, 8, 20, 32, 40, 4096] {
            assert_eq!(Generation::from_value_size(bad), None, "{bad}");
            assert!(!is_map_value_size(bad));
        }
        for g in [Generation::Linux6_18, Generation::Linux7] {
            assert_eq!(Generation::from_value_size(g.value_size()), Some(g));
        }
    }

    #[test]
    fn a_7x_value_carries_start_and_a_6_18_one_does_not() {
        let v = map_value(Generation::Linux7, 0x1000, 0x2000, 16);
        assert_eq!(v[..8], 0x1000u64.to_ne_bytes());
        assert_eq!(v[8..16], 0x2000u64.to_ne_bytes());
        assert_eq!(v[16..18], 16u16.to_ne_bytes());
        assert_eq!(v[18..], [0; 6], "padding is zero");
        let v = map_value(Generation::Linux6_18, 0x1000, 0x2000, 16);
        assert_eq!(v[16..], [0; 8]);
    }
}
