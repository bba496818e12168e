//! The model of the hostile-metadata tests (`tests/hostile.rs`): what a thread that
//! scribbles over its own metadata and data pages writes, and what `task_local_data.bpf.h`
//! must answer then, computed in Rust.
//!
//! - this module: the format's constants as the fuzz program (`bpf/tld_fuzz.bpf.c`) uses them,
//!   seeded randomness ([`Rng`]) and the two pages as the test writes them ([`Pages`]);
//! - [`model`]: the header's documented lookup semantics ported to Rust, with its per-task
//!   offset cache, and an independent oracle;
//! - [`writer`]: the pages a hostile writer leaves (random, mutated) and those a well-behaved
//!   one leaves (fresh and grown by appends), and forged cache slots.

#![warn(missing_docs)]

use std::fmt::Write as _;

use tld_runtime::wire;

pub mod model;
pub mod writer;

// Wire format constants (tld_runtime::wire, described in docs/wire-format.md;
// tests/tests/wire.rs checks that the BPF header agrees), 4 KiB pages, and the header's cache
// limit.
/// The page size the test uses.
pub const PAGE: usize = 4096;
/// The metadata entries a page holds.
pub const MAX_ENTRIES: usize = wire::max_entries(PAGE);
/// A key's name field, NUL included.
pub const NAME_LEN: usize = wire::NAME_LEN;
/// One metadata entry: name and size.
pub const ENTRY_SIZE: usize = wire::META_ENTRY_SIZE;
/// Where the metadata entries start in the metadata page.
pub const ENTRIES_AT: usize = wire::META_ENTRIES_OFFSET;
/// The largest offset or size a cache slot (an `s16`) holds.
pub const S16_MAX: i64 = 32767;

/// The program's keys, in `struct tld_offsets` order.
pub const LONG_KEY: &str = "k61_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
/// The keys, in `struct tld_offsets` order.
pub const KEYS: [&str; NKEYS] = ["k", "k1", "k4", "k8", "k32", "k1000", "k4088", LONG_KEY];
/// How many keys the program looks up.
pub const NKEYS: usize = 8;
const _: () = assert!(
    LONG_KEY.len() == NAME_LEN - 1,
    "the longest key a name field holds"
);

/// The program's lookups, in order: (key index, requested size).
pub const LOOKUPS: [(usize, i64); NLOOKUPS] = [
    (0, 2),
    (1, 1),
    (2, 4),
    (3, 8),
    (4, 32),
    (5, 1000),
    (6, 4088),
    (7, 16),
    (4, 8),
    (2, 8),
    (1, 1),
];
/// How many lookups the program makes.
pub const NLOOKUPS: usize = 11;

/// `init_var_ret` of a key whose `bpf_tld_init_var` the program did not call.
pub const NOT_CALLED: i64 = 1;

/// Layout of `struct tld_off_cache` in `tld_off_map`: two cookies, then `off` and `size` per
/// key.
pub const CACHE_SIZE: usize = 16 + 4 * NKEYS;

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True in `percent` percent of the calls.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// A random byte other than NUL.
    pub fn non_nul(&mut self) -> u8 {
        self.range(1, 255) as u8
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[derive(Clone)]
/// A thread's metadata and data pages, and the `start` its map value holds.
pub struct Pages {
    /// The metadata page: count, size, then the entries.
    pub meta: [u8; PAGE],
    /// The data page.
    pub data: [u8; PAGE],
    /// The 7.x generation: `start` is the map value's (`value_start`), and the page's first
    /// u64 is nobody's business. Otherwise (6.18) it is the page's first u64.
    pub seven: bool,
    /// `start` as registered in the map value, in the 7.x generation.
    pub value_start: u16,
}

/// A name field.
pub type Name = [u8; NAME_LEN];

impl Pages {
    /// The entry count, as written.
    pub fn cnt(&self) -> u16 {
        u16::from_le_bytes([self.meta[0], self.meta[1]])
    }

    /// Writes the entry count.
    pub fn set_cnt(&mut self, cnt: u16) {
        self.meta[..2].copy_from_slice(&cnt.to_le_bytes());
    }

    /// cnt as the header uses it: clamped to the entries a page holds.
    pub fn clamped_cnt(&self) -> usize {
        usize::from(self.cnt()).min(MAX_ENTRIES)
    }

    /// Entry `i`'s name field.
    pub fn name(&self, i: usize) -> &[u8] {
        let at = ENTRIES_AT + i * ENTRY_SIZE;
        &self.meta[at..at + NAME_LEN]
    }

    /// Entry `i`'s size.
    pub fn size(&self, i: usize) -> u16 {
        let at = ENTRIES_AT + i * ENTRY_SIZE + NAME_LEN;
        u16::from_le_bytes([self.meta[at], self.meta[at + 1]])
    }

    /// Writes entry `i`.
    pub fn set_entry(&mut self, i: usize, name: &Name, size: u16) {
        let at = ENTRIES_AT + i * ENTRY_SIZE;
        self.meta[at..at + NAME_LEN].copy_from_slice(name);
        self.set_size(i, size);
    }

    /// Writes entry `i`'s size.
    pub fn set_size(&mut self, i: usize, size: u16) {
        let at = ENTRIES_AT + i * ENTRY_SIZE + NAME_LEN;
        self.meta[at..at + 2].copy_from_slice(&size.to_le_bytes());
    }

    /// `start` where the generation's reader takes it: the value (7.x) or the page (6.18).
    pub fn start(&self) -> u64 {
        match self.seven {
            true => u64::from(self.value_start),
            false => u64::from_le_bytes(self.data[..8].try_into().unwrap()),
        }
    }

    /// Sets `start` where the reader takes it; in the value, only its low 16 bits fit.
    pub fn set_start(&mut self, start: u64) {
        match self.seven {
            true => self.value_start = start as u16,
            false => self.data[..8].copy_from_slice(&start.to_le_bytes()),
        }
    }

    /// Up to 8 bytes of the data page from `off`, little-endian, as the program reads them.
    pub fn bytes_at(&self, off: usize, len: usize) -> u64 {
        let mut b = [0u8; 8];
        b[..len].copy_from_slice(&self.data[off..off + len]);
        u64::from_le_bytes(b)
    }

    /// A readable account of the metadata the header looks at, for failure messages.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "cnt {} (clamped {}), meta.size {}, start {:#x}\n",
            self.cnt(),
            self.clamped_cnt(),
            u16::from_le_bytes([self.meta[2], self.meta[3]]),
            self.start()
        );
        for i in 0..self.clamped_cnt() {
            let name = self.name(i);
            let (text, nul) = match name.iter().position(|&b| b == 0) {
                Some(n) => (&name[..n], format!("NUL at {n}")),
                None => (name, "no NUL".to_string()),
            };
            let _ = writeln!(
                s,
                "  [{i:2}] size {:5} name {:?} ({nul})",
                self.size(i),
                String::from_utf8_lossy(text)
            );
        }
        s
    }
}

/// `text` in a name field, NUL-padded.
pub fn name_of(text: &[u8]) -> Name {
    let mut n = [0u8; NAME_LEN];
    n[..text.len()].copy_from_slice(text);
    n
}

/// `!bpf_strncmp(name, TLD_NAME_LEN, key)`: the kernel's strncmp over at most 62 bytes, against
/// a key of at most 61 bytes and its NUL.
pub fn name_matches(name: &[u8], key: &[u8]) -> bool {
    name[..key.len()] == *key && name[key.len()] == 0
}
