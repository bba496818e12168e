//! Hostile metadata: a thread scribbles random bytes over its own metadata and data pages (and
//! sometimes over its per-task offset cache, and `start`), then BPF (`bpf/tld_fuzz.bpf.c`) looks
//! keys up. It runs once per generation of the format: 7.x's, where `start` comes from the map
//! value (the header's default), and 6.18's, where it comes from the data page's first u64
//! (`bpf/tld_fuzz_618.bpf.c`). In 7.x's, the page's first u64 is garbage that must not matter.
//!
//! Every case checks that
//! - nothing faults (the program runs, `bpf_tld_init` succeeds);
//! - every returned pointer lies wholly inside the data page, and the bytes read through it
//!   are the page's bytes at the offset it reports (the program itself also checks the bounds);
//! - every result (NULL or offset, and each `bpf_tld_init_var` result) is exactly what a Rust
//!   port of `task_local_data.bpf.h`'s documented semantics predicts, with the per-task cache
//!   carried over from case to case as in real life; the cache element the kernel holds
//!   afterwards must equal the model's too;
//! - independently of that port: with a fresh cache, or with a cache that has only seen a sane
//!   page grow by appends and publications, a lookup returns exactly the value at the offset
//!   that the page's bytes describe now (or NULL if they describe none).
//!
//! This test binary never touches a `#[task_local_data]` hint, so the runtime never registers
//! pages of its own; the fuzzing thread registers its two pages itself.
//!
//! `TLD_FUZZ_CASES=N` runs N cases (default 10,000), `TLD_FUZZ_SEED=S` (decimal or 0x hex)
//! replays a seed. A failure prints the seed, the case index and the case's pages.

use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject};
use tld_tests::{bpf_required, gettid, pidfd_of_thread, run};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code,
    unused_imports
)]
mod fuzz_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_fuzz.skel.rs"));
}
use fuzz_skel::{types, TldFuzzSkelBuilder};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code,
    unused_imports
)]
mod fuzz_618_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_fuzz_618.skel.rs"));
}
use fuzz_618_skel::TldFuzz618SkelBuilder;
use tld_runtime::{wire, Generation};

const DEFAULT_SEED: u64 = 0x746c_645f_6675_7a7a; // "tld_fuzz"
const DEFAULT_CASES: u64 = 10_000;

// Wire format constants (tld_runtime::wire, described in docs/wire-format.md;
// tests/tests/wire.rs checks that the BPF header agrees), 4 KiB pages, and the header's cache
// limit.
const PAGE: usize = 4096;
const MAX_ENTRIES: usize = wire::max_entries(PAGE);
const NAME_LEN: usize = wire::NAME_LEN;
const ENTRY_SIZE: usize = wire::META_ENTRY_SIZE;
const ENTRIES_AT: usize = wire::META_ENTRIES_OFFSET;
const S16_MAX: i64 = 32767;

/// The program's keys, in `struct tld_offsets` order.
const LONG_KEY: &str = "k61_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
const KEYS: [&str; NKEYS] = ["k", "k1", "k4", "k8", "k32", "k1000", "k4088", LONG_KEY];
const NKEYS: usize = 8;
const _: () = assert!(
    LONG_KEY.len() == NAME_LEN - 1,
    "the longest key a name field holds"
);

/// The program's lookups, in order: (key index, requested size).
const LOOKUPS: [(usize, i64); NLOOKUPS] = [
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
const NLOOKUPS: usize = 11;

/// `init_var_ret` of a key whose `bpf_tld_init_var` the program did not call.
const NOT_CALLED: i64 = 1;

/// Layout of `struct tld_off_cache` in `tld_off_map`: two cookies, then `off` and `size` per
/// key.
const CACHE_SIZE: usize = 16 + 4 * NKEYS;

// ------------------------------------------------------------------------------------------
// Seeded randomness.

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn non_nul(&mut self) -> u8 {
        self.range(1, 255) as u8
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

// ------------------------------------------------------------------------------------------
// The two pages, as the test writes them.

#[derive(Clone)]
struct Pages {
    meta: [u8; PAGE],
    data: [u8; PAGE],
    /// The 7.x generation: `start` is the map value's (`value_start`), and the page's first
    /// u64 is nobody's business. Otherwise (6.18) it is the page's first u64.
    seven: bool,
    /// `start` as registered in the map value, in the 7.x generation.
    value_start: u16,
}

type Name = [u8; NAME_LEN];

impl Pages {
    fn cnt(&self) -> u16 {
        u16::from_le_bytes([self.meta[0], self.meta[1]])
    }

    fn set_cnt(&mut self, cnt: u16) {
        self.meta[..2].copy_from_slice(&cnt.to_le_bytes());
    }

    /// cnt as the header uses it: clamped to the entries a page holds.
    fn clamped_cnt(&self) -> usize {
        usize::from(self.cnt()).min(MAX_ENTRIES)
    }

    fn name(&self, i: usize) -> &[u8] {
        let at = ENTRIES_AT + i * ENTRY_SIZE;
        &self.meta[at..at + NAME_LEN]
    }

    fn size(&self, i: usize) -> u16 {
        let at = ENTRIES_AT + i * ENTRY_SIZE + NAME_LEN;
        u16::from_le_bytes([self.meta[at], self.meta[at + 1]])
    }

    fn set_entry(&mut self, i: usize, name: &Name, size: u16) {
        let at = ENTRIES_AT + i * ENTRY_SIZE;
        self.meta[at..at + NAME_LEN].copy_from_slice(name);
        self.set_size(i, size);
    }

    fn set_size(&mut self, i: usize, size: u16) {
        let at = ENTRIES_AT + i * ENTRY_SIZE + NAME_LEN;
        self.meta[at..at + 2].copy_from_slice(&size.to_le_bytes());
    }

    /// `start` where the generation's reader takes it: the value (7.x) or the page (6.18).
    fn start(&self) -> u64 {
        match self.seven {
            true => u64::from(self.value_start),
            false => u64::from_le_bytes(self.data[..8].try_into().unwrap()),
        }
    }

    /// Sets `start` where the reader takes it; in the value, only its low 16 bits fit.
    fn set_start(&mut self, start: u64) {
        match self.seven {
            true => self.value_start = start as u16,
            false => self.data[..8].copy_from_slice(&start.to_le_bytes()),
        }
    }

    /// Up to 8 bytes of the data page from `off`, little-endian, as the program reads them.
    fn bytes_at(&self, off: usize, len: usize) -> u64 {
        let mut b = [0u8; 8];
        b[..len].copy_from_slice(&self.data[off..off + len]);
        u64::from_le_bytes(b)
    }

    /// A readable account of the metadata the header looks at, for failure messages.
    fn summary(&self) -> String {
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

fn name_of(text: &[u8]) -> Name {
    let mut n = [0u8; NAME_LEN];
    n[..text.len()].copy_from_slice(text);
    n
}

/// `!bpf_strncmp(name, TLD_NAME_LEN, key)`: the kernel's strncmp over at most 62 bytes, against
/// a key of at most 61 bytes and its NUL.
fn name_matches(name: &[u8], key: &[u8]) -> bool {
    name[..key.len()] == *key && name[key.len()] == 0
}

// ------------------------------------------------------------------------------------------
// The model: task_local_data.bpf.h ported to Rust.

/// The per-key slots of `struct tld_off_cache`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slots {
    off: [i16; NKEYS],
    size: [i16; NKEYS],
}

impl Slots {
    /// A cache as `bpf_tld_init()` clears it: every key unresolved, its scan to resume at
    /// entry 0.
    fn cleared() -> Slots {
        Slots {
            off: [resume_at(0) as i16; NKEYS],
            size: [0; NKEYS],
        }
    }
}

/// `__TLD_RESUME(i)`: the offset slot of a key whose next scan resumes at entry `i`.
fn resume_at(i: i64) -> i64 {
    -i - 1
}

/// `__bpf_tld_resolve()`.
fn resolve(p: &Pages, key: &[u8], off_slot: &mut i16, size_slot: &mut i16) -> i64 {
    let mut resume = -i64::from(*off_slot) - 1;
    if resume < 0 || resume > MAX_ENTRIES as i64 {
        resume = 0;
    }
    let cnt = p.clamped_cnt() as i64;
    if resume > cnt {
        resume = 0;
    }
    if resume == cnt {
        return resume_at(resume);
    }
    // The value's u16, or `*(volatile __u64 *)&data->start`: compared as a u64.
    let start = p.start();
    if !(8..PAGE as u64).contains(&start) {
        return resume_at(resume);
    }
    let mut ret = resume_at(cnt);
    let mut off = start as i64;
    for i in 0..cnt {
        let size = i64::from(p.size(i as usize));
        if size == 0 {
            ret = resume_at(i);
            break;
        }
        if i >= resume && name_matches(p.name(i as usize), key) {
            if off >= PAGE as i64 || off > S16_MAX {
                break;
            }
            let size = size.min(PAGE as i64 - off).min(S16_MAX);
            *size_slot = size as i16;
            ret = off;
            break;
        }
        off += (size + 7) & !7;
        if off >= PAGE as i64 {
            break;
        }
    }
    *off_slot = ret as i16;
    ret
}

/// `bpf_tld_lookup()` on the cached path (`__bpf_tld_cached()`): a key is resolved when its
/// size slot is positive; a size slot too small for the request means NULL, unless it is not
/// positive, which resolves the key first. The offset slot must then place `size` bytes in the
/// page.
fn lookup(p: &Pages, slots: &mut Slots, k: usize, size: i64) -> Option<i64> {
    let mut cap = i64::from(slots.size[k]);
    if cap < size {
        if cap > 0 {
            return None;
        }
        resolve(p, KEYS[k].as_bytes(), &mut slots.off[k], &mut slots.size[k]);
        cap = i64::from(slots.size[k]);
        if cap < size {
            return None;
        }
    }
    let off = i64::from(slots.off[k]);
    (0..=PAGE as i64 - size).contains(&off).then_some(off)
}

/// `bpf_tld_init_var()`.
fn init_var(p: &Pages, slots: &mut Slots, k: usize) -> i64 {
    if slots.size[k] > 0
        || resolve(p, KEYS[k].as_bytes(), &mut slots.off[k], &mut slots.size[k]) > 0
    {
        0
    } else {
        -i64::from(libc::ENOENT)
    }
}

/// What one run of the program should report.
#[derive(Debug, PartialEq, Eq)]
struct Prediction {
    init_var_ret: [i64; NKEYS],
    look: [Option<i64>; NLOOKUPS],
}

/// The program, run against the model's cache.
fn predict(p: &Pages, slots: &mut Slots, mask: u64) -> Prediction {
    let mut init_var_ret = [NOT_CALLED; NKEYS];
    for (k, ret) in init_var_ret.iter_mut().enumerate() {
        if mask & (1 << k) != 0 {
            *ret = init_var(p, slots, k);
        }
    }
    let look = LOOKUPS.map(|(k, size)| lookup(p, slots, k, size));
    Prediction { init_var_ret, look }
}

/// The oracle that does not depend on the cache: where the page's bytes place `key` now, as
/// (offset, usable size), if they place it inside the page. The scan stops at the first entry
/// of size 0 (not yet published) and at the first entry that ends past the page.
fn place(p: &Pages, key: &[u8]) -> Option<(i64, i64)> {
    let start = p.start();
    if !(8..PAGE as u64).contains(&start) {
        return None;
    }
    let mut off = start as i64;
    for i in 0..p.clamped_cnt() {
        let size = i64::from(p.size(i));
        if size == 0 {
            return None;
        }
        if name_matches(p.name(i), key) {
            return Some((off, size.min(PAGE as i64 - off)));
        }
        off += (size + 7) & !7;
        if off >= PAGE as i64 {
            return None;
        }
    }
    None
}

/// What a lookup must return when the cache holds nothing stale.
fn oracle(p: &Pages, mask: u64) -> Prediction {
    let mut init_var_ret = [NOT_CALLED; NKEYS];
    for (k, ret) in init_var_ret.iter_mut().enumerate() {
        if mask & (1 << k) != 0 {
            *ret = if place(p, KEYS[k].as_bytes()).is_some() {
                0
            } else {
                -i64::from(libc::ENOENT)
            };
        }
    }
    let look = LOOKUPS.map(|(k, size)| {
        let (off, cap) = place(p, KEYS[k].as_bytes())?;
        (size <= cap && off + size <= PAGE as i64).then_some(off)
    });
    Prediction { init_var_ret, look }
}

// ------------------------------------------------------------------------------------------
// Case generation.

/// A key's name with hostile variations: exact, with garbage after the NUL, without any NUL,
/// truncated, extended, altered, the longest key's neighbours, or plain garbage.
fn hostile_name(rng: &mut Rng) -> Name {
    let key = KEYS[rng.below(NKEYS as u64) as usize].as_bytes();
    let mut n = [0u8; NAME_LEN];
    match rng.below(100) {
        0..=29 => n[..key.len()].copy_from_slice(key),
        30..=39 => {
            n[..key.len()].copy_from_slice(key);
            rng.fill(&mut n[key.len() + 1..]);
        }
        40..=49 => {
            for b in n.iter_mut() {
                *b = rng.non_nul();
            }
            n[..key.len()].copy_from_slice(key);
        }
        50..=57 => {
            let len = rng.below(key.len() as u64) as usize;
            n[..len].copy_from_slice(&key[..len]);
        }
        58..=67 => {
            n[..key.len()].copy_from_slice(key);
            let extra = rng.range(1, 3) as usize;
            let end = (key.len() + extra).min(NAME_LEN);
            for b in &mut n[key.len()..end] {
                *b = rng.pick(b"0148x_K");
            }
        }
        68..=72 => {
            for b in n.iter_mut() {
                *b = rng.non_nul();
            }
        }
        73..=77 => rng.fill(&mut n),
        78..=82 => {}
        83..=89 => {
            n[..key.len()].copy_from_slice(key);
            let i = rng.below(key.len() as u64) as usize;
            n[i] = if rng.chance(50) {
                n[i].to_ascii_uppercase()
            } else {
                rng.non_nul()
            };
        }
        _ => {
            // "k61_" and 55 to 58 'x': the long key, one short of it, or no NUL at all.
            let len = rng.range(LONG_KEY.len() as u64 - 2, NAME_LEN as u64) as usize;
            n[..4].copy_from_slice(b"k61_");
            for b in &mut n[4..len] {
                *b = b'x';
            }
        }
    }
    n
}

/// A declared size: 0 (unpublished), small, the keys' sizes, page-sized, and enormous.
fn hostile_size(rng: &mut Rng) -> u16 {
    match rng.below(100) {
        0..=11 => 0,
        12..=31 => rng.range(1, 8) as u16,
        32..=46 => rng.range(9, 64) as u16,
        47..=61 => 8 * rng.range(1, 128) as u16,
        62..=71 => {
            let s: u16 = rng.pick(&[1, 2, 4, 8, 16, 32, 1000, 4088]);
            s + rng.pick(&[0, 0, 1]) - rng.pick(&[0, 0, 1]).min(s - 1)
        }
        72..=79 => rng.range(4080, 4096) as u16,
        80..=89 => rng.range(4097, 65535) as u16,
        90..=94 => rng.pick(&[65535, 32767, 32768, 65528, 65529]),
        _ => rng.next() as u16,
    }
}

fn hostile_cnt(rng: &mut Rng) -> u16 {
    match rng.below(100) {
        0..=49 => rng.range(0, MAX_ENTRIES as u64) as u16,
        50..=59 => MAX_ENTRIES as u16,
        60..=64 => MAX_ENTRIES as u16 + 1,
        65..=74 => rng.range(MAX_ENTRIES as u64 + 1, 65535) as u16,
        75..=79 => u16::MAX,
        80..=84 => 0,
        _ => rng.range(1, 8) as u16,
    }
}

fn hostile_start(rng: &mut Rng) -> u64 {
    if rng.chance(80) {
        return 8;
    }
    match rng.below(12) {
        0 => 0,
        1 => rng.range(1, 7),
        2 => rng.range(9, PAGE as u64 - 1),
        3 => 4088,
        4 => PAGE as u64 - 1,
        5 => PAGE as u64,
        6 => rng.range(PAGE as u64 + 1, 65535),
        7 => 1 << 63,
        8 => u64::MAX,
        9 => rng.next(),
        10 => 16,
        // Where the kernel's 7.x C library puts a small block's data: 8 past a power of two.
        11 if rng.chance(50) => (1 << rng.range(4, 11)) * rng.range(0, 3) + 8,
        _ => 8 * rng.range(2, 511),
    }
}

/// An entry index: mostly one the header looks at.
fn some_entry(rng: &mut Rng, p: &Pages) -> usize {
    let cnt = p.clamped_cnt();
    if cnt > 0 && rng.chance(80) {
        rng.below(cnt as u64) as usize
    } else {
        rng.below(MAX_ENTRIES as u64) as usize
    }
}

/// A metadata page of random entries.
fn hostile_page(rng: &mut Rng, p: &mut Pages) {
    rng.fill(&mut p.meta);
    p.set_cnt(hostile_cnt(rng));
    for i in 0..MAX_ENTRIES {
        let (name, size) = (hostile_name(rng), hostile_size(rng));
        p.set_entry(i, &name, size);
    }
    let start = hostile_start(rng);
    p.set_start(start);
}

/// A few hostile edits of the previous page.
fn mutate(rng: &mut Rng, p: &mut Pages) {
    for _ in 0..rng.range(1, 4) {
        match rng.below(8) {
            0 => {
                let i = rng.below(PAGE as u64) as usize;
                p.meta[i] = rng.next() as u8;
            }
            1 => {
                let cnt = hostile_cnt(rng);
                p.set_cnt(cnt);
            }
            2 => {
                let (i, name) = (some_entry(rng, p), hostile_name(rng));
                let size = p.size(i);
                p.set_entry(i, &name, size);
            }
            3 => {
                let (i, size) = (some_entry(rng, p), hostile_size(rng));
                p.set_size(i, size);
            }
            4 => {
                let i = some_entry(rng, p);
                p.set_size(i, 0);
            }
            5 => {
                let i = p.clamped_cnt().min(MAX_ENTRIES - 1);
                let (name, size) = (hostile_name(rng), hostile_size(rng));
                p.set_entry(i, &name, size);
                p.set_cnt(p.cnt().wrapping_add(1));
            }
            6 => {
                let start = hostile_start(rng);
                p.set_start(start);
            }
            _ => {
                let (i, j) = (some_entry(rng, p), some_entry(rng, p));
                let (a, b) = (ENTRIES_AT + i * ENTRY_SIZE, ENTRIES_AT + j * ENTRY_SIZE);
                let tmp: [u8; ENTRY_SIZE] = p.meta[a..a + ENTRY_SIZE].try_into().unwrap();
                p.meta.copy_within(b..b + ENTRY_SIZE, a);
                p.meta[b..b + ENTRY_SIZE].copy_from_slice(&tmp);
            }
        }
    }
}

/// Names for sane pages besides the keys: neighbours of the keys, and strangers.
const DECOYS: [&str; 14] = [
    "k2",
    "k10",
    "k100",
    "k40",
    "K1",
    "k_",
    "x",
    "k8x",
    "kk",
    "k1001",
    "value1",
    "prio",
    "k61_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "k40880",
];

/// A sane page as a well-behaved writer leaves it, plus what an evolution needs to know.
#[derive(Clone, Default)]
struct Sane {
    /// Names of the entries below cnt (also the claimed one, if `pending`).
    names: Vec<Vec<u8>>,
    /// The last entry below cnt is claimed (size 0), as the C library leaves it between
    /// bumping cnt and publishing.
    pending: bool,
}

fn sane_name(rng: &mut Rng, s: &Sane) -> Vec<u8> {
    loop {
        let name: Vec<u8> = match rng.below(10) {
            0..=5 => KEYS[rng.below(NKEYS as u64) as usize].into(),
            6..=8 => rng.pick(&DECOYS).into(),
            _ => format!("r{}", rng.below(1_000_000)).into(),
        };
        if !s.names.contains(&name) {
            return name;
        }
    }
}

fn sane_size(rng: &mut Rng) -> u16 {
    match rng.below(10) {
        0..=3 => rng.pick(&[1, 2, 4, 8, 16, 32, 1000, 4088]),
        4..=7 => rng.range(1, 64) as u16,
        8 => rng.range(65, 1500) as u16,
        _ => rng.range(1500, 4096) as u16,
    }
}

/// Appends one entry the way a writer does: fully written, or claimed only (C library order:
/// cnt first, then the name, then the size). Sometimes the next entry is written past cnt,
/// as our runtime does before it raises cnt.
fn sane_append(rng: &mut Rng, p: &mut Pages, s: &mut Sane) {
    let i = s.names.len();
    if i == MAX_ENTRIES || s.pending {
        return;
    }
    let name = sane_name(rng, s);
    let size = sane_size(rng);
    if rng.chance(15) {
        // Claimed, its name partly written.
        let len = rng.below(name.len() as u64 + 1) as usize;
        p.set_entry(i, &name_of(&name[..len]), 0);
        s.pending = true;
    } else {
        p.set_entry(i, &name_of(&name), size);
    }
    s.names.push(name);
    p.set_cnt(s.names.len() as u16);
    if i + 1 < MAX_ENTRIES && rng.chance(10) {
        // Staged past cnt: never looked at.
        let (name, size) = (hostile_name(rng), hostile_size(rng));
        p.set_entry(i + 1, &name, size);
    }
}

fn sane_page(rng: &mut Rng, p: &mut Pages) -> Sane {
    p.meta = [0; PAGE];
    let mut s = Sane::default();
    p.set_start(8);
    for _ in 0..rng.range(0, 12) {
        sane_append(rng, p, &mut s);
    }
    s
}

/// Publishes a claimed entry and appends a few more.
fn sane_evolve(rng: &mut Rng, p: &mut Pages, s: &mut Sane) {
    if s.pending && rng.chance(70) {
        let i = s.names.len() - 1;
        s.names.pop();
        let name = sane_name(rng, s);
        p.set_entry(i, &name_of(&name), sane_size(rng));
        s.names.push(name);
        s.pending = false;
    }
    for _ in 0..rng.range(0, 3) {
        sane_append(rng, p, s);
    }
}

/// Random slot contents for a forged cache: resume indices, offsets and sizes, sane or not.
fn garbage_slot(rng: &mut Rng, current: i16) -> i16 {
    match rng.below(9) {
        0 => 0,
        1 => -(rng.range(0, 70) as i16),
        2 => rng.next() as i16,
        3 => rng.range(1, PAGE as u64 - 1) as i16,
        4 => rng.range(PAGE as u64 - 20, PAGE as u64 + 4) as i16,
        5 => rng.pick(&[i16::MIN, i16::MAX, -1, 1, 8]),
        6 => 8 * rng.range(1, 511) as i16,
        7 => rng.range(1, 4088) as i16,
        _ => current,
    }
}

// ------------------------------------------------------------------------------------------
// The kernel side.

/// One loaded fuzz object (leaked: it stays loaded until the test process exits): its program
/// and its maps.
struct Loaded {
    prog: &'static libbpf_rs::ProgramMut<'static>,
    bss: BorrowedFd<'static>,
    bss_size: usize,
    data_map: BorrowedFd<'static>,
    data_map_value_size: usize,
    /// `tld_off_map`, and its value size.
    off_map: (BorrowedFd<'static>, usize),
}

impl Loaded {
    /// Whether the object reads the 7.x generation (its value holds `start`).
    fn seven(&self) -> bool {
        self.data_map_value_size == wire::MAP_VALUE_SIZE_7
    }
}

/// Opens and loads the skeleton of `$builder`, leaks it, and describes it as a [`Loaded`].
macro_rules! load_leaked {
    ($builder:expr, $storage:expr) => {
        $builder
            .open($storage)
            .and_then(|open| open.load())
            .map(|skel| {
                let skel: &'static _ = Box::leak(Box::new(skel));
                Loaded {
                    prog: &skel.progs.tld_fuzz,
                    bss: skel.maps.bss.as_fd(),
                    bss_size: skel.maps.bss.value_size() as usize,
                    data_map: skel.maps.tld_data_map.as_fd(),
                    data_map_value_size: skel.maps.tld_data_map.value_size() as usize,
                    off_map: (
                        skel.maps.tld_off_map.as_fd(),
                        skel.maps.tld_off_map.value_size() as usize,
                    ),
                }
            })
    };
}

/// Loads `tld_fuzz.bpf.c` (7.x, `seven`) or `tld_fuzz_618.bpf.c`, or says why it cannot and
/// returns `None` (the pattern of `tld_tests::load`, for these skeletons).
fn load(test: &str, seven: bool) -> Option<Loaded> {
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let quiet = libbpf_rs::set_print(None);
    let result = if seven {
        load_leaked!(TldFuzzSkelBuilder::default(), storage)
    } else {
        load_leaked!(TldFuzz618SkelBuilder::default(), storage)
    };
    libbpf_rs::set_print(quiet);
    match result {
        Ok(loaded) => Some(loaded),
        Err(e) if !bpf_required() => {
            eprintln!(
                "SKIPPED {test}: cannot load BPF programs ({e}). This test needs root or \
                 CAP_BPF+CAP_PERFMON on Linux >= 6.13; set TLD_REQUIRE_BPF=1 to make this a \
                 failure."
            );
            None
        }
        Err(e) => panic!("{test}: TLD_REQUIRE_BPF=1 but the BPF programs do not load: {e:#}"),
    }
}

/// Two page-aligned pages of this process, unmapped on drop.
struct Mapping {
    base: *mut u8,
}

impl Mapping {
    fn new() -> Mapping {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            base,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Mapping { base: base.cast() }
    }

    fn data(&self) -> *mut u8 {
        self.base
    }

    fn meta(&self) -> *mut u8 {
        self.base.wrapping_add(PAGE)
    }

    fn write(&self, p: &Pages) {
        // SAFETY: both destinations are whole pages of this live mapping, which nothing else
        // references (BPF reads it only during test_run, from this thread), and the sources
        // are distinct Rust arrays of one page each.
        unsafe {
            std::ptr::copy_nonoverlapping(p.data.as_ptr(), self.data(), PAGE);
            std::ptr::copy_nonoverlapping(p.meta.as_ptr(), self.meta(), PAGE);
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` is the start of our 2-page mapping, and nothing uses it any more. A
        // page the kernel still pins stays alive until it unpins it.
        unsafe { libc::munmap(self.base.cast(), 2 * PAGE) };
    }
}

/// The fuzzing thread's handles on the kernel.
struct Kernel<'a> {
    obj: &'a Loaded,
    pidfd: OwnedFd,
    /// The `start` registered last in the value (7.x).
    start: u16,
}

impl Kernel<'_> {
    /// Registers the pages, with `start` in the value where the generation has it.
    fn register(&mut self, m: &Mapping, start: u16) {
        self.start = start;
        let value = wire::map_value(
            if self.obj.seven() {
                Generation::Linux7
            } else {
                Generation::Linux6_18
            },
            m.data() as u64,
            m.meta() as u64,
            start,
        );
        // The map's key: a pidfd of this thread.
        let key = self.pidfd.as_raw_fd();
        // SAFETY: key and value are live buffers of the map's key (int) and value sizes.
        let rc = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.obj.data_map.as_raw_fd(),
                (&key as *const i32).cast(),
                value.as_ptr().cast(),
                libbpf_sys::BPF_ANY.into(),
            )
        };
        assert_eq!(rc, 0, "registering the pages in tld_data_map");
    }

    fn delete(&self, map: BorrowedFd<'_>) -> i32 {
        // The map's key: a pidfd of this thread.
        let key = self.pidfd.as_raw_fd();
        // SAFETY: the key is a live int, the map's key size.
        unsafe { libbpf_sys::bpf_map_delete_elem(map.as_raw_fd(), (&key as *const i32).cast()) }
    }

    /// Unregisters the thread: deletes its tld_data_map element.
    fn unregister(&self) {
        assert_eq!(self.delete(self.obj.data_map), 0, "unregistering");
    }

    /// Empties the cache: deletes the tld_off_map element.
    fn reset_cache(&self) {
        self.delete(self.obj.off_map.0);
    }

    /// This thread's cache: its cookies (kernel addresses, learned from a run) and slots.
    fn read_cache(&self) -> Option<([u64; 2], Slots)> {
        let (map, size) = self.obj.off_map;
        let mut buf = vec![0u8; size];
        // The map's key: a pidfd of this thread.
        let key = self.pidfd.as_raw_fd();
        // SAFETY: the key is a live int and `buf` has the map's value size.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                map.as_raw_fd(),
                (&key as *const i32).cast(),
                buf.as_mut_ptr().cast(),
            )
        };
        if rc == -libc::ENOENT {
            return None;
        }
        assert_eq!(rc, 0, "reading this thread's cache");
        let word = |i: usize| u64::from_le_bytes(buf[8 * i..8 * i + 8].try_into().unwrap());
        let (tag, slots_at) = ([word(0), word(1)], 16);
        let slot =
            |i: usize| i16::from_le_bytes([buf[slots_at + 2 * i], buf[slots_at + 1 + 2 * i]]);
        let mut slots = Slots::default();
        for k in 0..NKEYS {
            slots.off[k] = slot(k);
            slots.size[k] = slot(NKEYS + k);
        }
        Some((tag, slots))
    }

    /// Rewrites this thread's cache with cookies `tag` and `slots`.
    fn write_cache(&self, tag: [u64; 2], slots: &Slots) {
        let mut buf = Vec::new();
        buf.extend_from_slice(&tag[0].to_le_bytes());
        buf.extend_from_slice(&tag[1].to_le_bytes());
        for v in slots.off.iter().chain(&slots.size) {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        let off_map = self.obj.off_map.0;
        // The map's key: a pidfd of this thread.
        let key = self.pidfd.as_raw_fd();
        // SAFETY: the key is a live int and `buf` has the map's value size (checked at start).
        let rc = unsafe {
            libbpf_sys::bpf_map_update_elem(
                off_map.as_raw_fd(),
                (&key as *const i32).cast(),
                buf.as_ptr().cast(),
                libbpf_sys::BPF_ANY.into(),
            )
        };
        assert_eq!(rc, 0, "writing this thread's tld_off_map element");
    }

    /// Runs the program as this thread and returns what it reported.
    fn run(&self, mask: u64) -> types::fuzz_out {
        run(
            self.obj.prog,
            types::fuzz_ctx {
                init_var_mask: mask,
            },
        );
        let mut out = types::fuzz_out::default();
        let key = 0u32;
        // SAFETY: .bss is an array map with one element of `struct fuzz_out` (checked at
        // start); `out` is that big and valid for any bytes.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                self.obj.bss.as_raw_fd(),
                (&key as *const u32).cast(),
                (&mut out as *mut types::fuzz_out).cast(),
            )
        };
        assert_eq!(rc, 0, "reading the program's output");
        out
    }
}

// ------------------------------------------------------------------------------------------
// The fuzz loop.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageKind {
    /// All 63 entries random.
    Hostile,
    /// A few hostile edits of the previous page.
    Mutated,
    /// A new page as a well-behaved writer leaves it.
    FreshSane,
    /// The previous sane page, grown as a well-behaved writer grows it.
    SaneGrowth,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CacheAction {
    /// The cache carries over from the previous case.
    Keep,
    /// This thread's tld_off_map element is deleted.
    Reset,
    /// The element is rewritten with the right cookies and random slots.
    Forged,
    /// The element is rewritten with random slots and one or both cookies wrong.
    ForgedCookies,
    /// The thread's tld_data_map element is deleted for the run, then restored.
    Unregistered,
}

#[derive(Default)]
struct Stats {
    found: u64,
    null: u64,
    oracle_cases: u64,
    growth_cases: u64,
    forged: u64,
    unregistered: u64,
}

/// One case's choices, for failure messages.
struct Case {
    index: u64,
    kind: PageKind,
    action: CacheAction,
    mask: u64,
    /// The model's cache as the run finds it.
    before: Slots,
    /// bpf_tld_init() empties the cache in this run.
    fresh: bool,
}

/// What the fuzzing thread carries from case to case.
struct Fuzzer<'a> {
    k: Kernel<'a>,
    m: Mapping,
    seed: u64,
    cases: u64,
    rng: Rng,
    pages: Box<Pages>,
    /// The current page as a sane writer left it, if it is one.
    sane: Option<Sane>,
    /// The model's cache.
    slots: Slots,
    /// The next bpf_tld_init() empties the cache: there is no element yet, or its cookies are
    /// not this thread's pages.
    clears: bool,
    /// The cookies bpf_tld_init() stores for our pages, once learned (in its own map), or the
    /// value tag (in tld_data_map's element).
    cookies: Option<[u64; 2]>,
    /// Since the cache was last empty it has seen only a sane page growing.
    growth_only: bool,
    stats: Stats,
}

impl Fuzzer<'_> {
    fn fail(&self, c: &Case, what: String, out: &types::fuzz_out) -> ! {
        panic!(
            "hostile: {what}\n  reproduce with TLD_FUZZ_SEED={:#x} (case {} of {})\n  page \
             {:?}, cache {:?}, init_var mask {:#04x}, cache before {:?} (emptied by init: \
             {})\n  BPF reported {out:?}\n{}",
            self.seed,
            c.index,
            self.cases,
            c.kind,
            c.action,
            c.mask,
            c.before,
            c.fresh,
            self.pages.summary()
        )
    }

    /// Writes this case's pages.
    fn next_pages(&mut self) -> PageKind {
        let (rng, p) = (&mut self.rng, &mut *self.pages);
        // A sane page mostly grows on, so that caches see long runs of appends.
        let kind = match (rng.below(100), self.sane.is_some()) {
            (0..=54, true) => PageKind::SaneGrowth,
            (55..=69, true) | (0..=29, false) => PageKind::FreshSane,
            (70..=84, true) | (30..=64, false) => PageKind::Mutated,
            _ => PageKind::Hostile,
        };
        match kind {
            PageKind::Hostile => {
                hostile_page(rng, p);
                self.sane = None;
            }
            PageKind::Mutated => {
                mutate(rng, p);
                self.sane = None;
            }
            PageKind::FreshSane => self.sane = Some(sane_page(rng, p)),
            PageKind::SaneGrowth => sane_evolve(rng, p, self.sane.as_mut().unwrap()),
        }
        // New values every time, so that a read shows where it came from. In 7.x the page's
        // first u64 is garbage too: readers take start from the value.
        let start = p.start();
        match p.seven {
            true => rng.fill(&mut p.data),
            false => rng.fill(&mut p.data[8..]),
        }
        p.set_start(start);
        if rng.chance(3) {
            // Now and then start is garbage too, whatever the metadata.
            p.set_start(rng.next());
            self.sane = None;
        }
        self.m.write(p);
        kind
    }

    /// Chooses what happens to the cache before the run, and does it (but `Unregistered`).
    fn cache_action(&mut self, kind: PageKind) -> CacheAction {
        let rng = &mut self.rng;
        let action = match rng.below(100) {
            _ if kind == PageKind::SaneGrowth && rng.chance(50) => CacheAction::Keep,
            0..=59 => CacheAction::Keep,
            60..=79 => CacheAction::Reset,
            80..=90 => CacheAction::Forged,
            91..=97 => CacheAction::ForgedCookies,
            _ => CacheAction::Unregistered,
        };
        match action {
            CacheAction::Keep | CacheAction::Unregistered => {}
            CacheAction::Reset => {
                self.k.reset_cache();
                self.clears = true;
            }
            CacheAction::Forged | CacheAction::ForgedCookies => {
                self.stats.forged += 1;
                let mut forged = self.slots;
                for k in 0..NKEYS {
                    forged.off[k] = garbage_slot(rng, forged.off[k]);
                    forged.size[k] = garbage_slot(rng, forged.size[k]);
                }
                match self.cookies {
                    Some(real) if action == CacheAction::Forged => {
                        self.k.write_cache(real, &forged);
                        self.slots = forged;
                        self.clears = false;
                    }
                    real => {
                        let mut bad = real.unwrap_or([rng.next(), rng.next()]);
                        match rng.below(3) {
                            0 => bad[0] ^= 1 << rng.below(64),
                            1 => bad[1] ^= 1 << rng.below(64),
                            _ => bad = [rng.next(), rng.next()],
                        }
                        self.k.write_cache(bad, &forged);
                        self.clears = true;
                    }
                }
            }
        }
        action
    }

    fn case(&mut self, index: u64) {
        let kind = self.next_pages();
        if self.pages.seven && self.pages.value_start != self.k.start {
            // 7.x: a new start is a new registration. The cookies include start, so BPF
            // empties the cache, and the cookies are learned again.
            self.k.register(&self.m, self.pages.value_start);
            self.clears = true;
            self.cookies = None;
        }
        let action = self.cache_action(kind);
        let mask = match self.rng.below(10) {
            0 => 0xff,
            1..=3 => 0,
            _ => self.rng.next() & self.rng.next() & 0xff,
        };
        let fresh = self.clears;
        self.growth_only = match action {
            _ if fresh => self.sane.is_some(),
            CacheAction::Forged | CacheAction::ForgedCookies => false,
            _ => self.growth_only && kind == PageKind::SaneGrowth && self.sane.is_some(),
        };
        let c = Case {
            index,
            kind,
            action,
            mask,
            before: self.slots,
            fresh,
        };
        if action == CacheAction::Unregistered {
            self.unregistered(&c);
        } else {
            self.registered(&c);
        }
    }

    /// A run while the thread has no tld_data_map element: the handle must be inert.
    fn unregistered(&mut self, c: &Case) {
        self.stats.unregistered += 1;
        self.k.unregister();
        let out = self.k.run(c.mask);
        let init_var_0 = if c.mask & 1 != 0 {
            -i64::from(libc::ENOENT)
        } else {
            NOT_CALLED
        };
        if out.init_ret != -i64::from(libc::ENODATA)
            || out.oob != 0
            || out.init_var_ret[0] != init_var_0
            || out.init_var_ret[1..].iter().any(|&r| r != NOT_CALLED)
            || out.look.iter().any(|l| l.off != -1)
        {
            self.fail(
                c,
                "an unregistered thread's handle is not inert".into(),
                &out,
            );
        }
        // Registered again. The pages were unpinned meanwhile and may have moved: start the
        // cache afresh and relearn the cookies.
        self.k.register(&self.m, self.pages.value_start);
        self.k.reset_cache();
        self.clears = true;
        self.cookies = None;
        self.growth_only = false;
    }

    fn registered(&mut self, c: &Case) {
        if self.clears {
            self.slots = Slots::cleared();
            self.clears = false;
        }
        let want = predict(&self.pages, &mut self.slots, c.mask);
        let out = self.k.run(c.mask);
        let p = &*self.pages;

        if out.init_ret != 0 {
            self.fail(c, format!("bpf_tld_init returned {}", out.init_ret), &out);
        }
        if out.oob != 0 {
            let what = format!("{} lookups left the page (BPF's own check)", out.oob);
            self.fail(c, what, &out);
        }
        // The invariants, whatever the model says: in the page, and the page's bytes.
        for (j, (&(key, size), l)) in LOOKUPS.iter().zip(&out.look).enumerate() {
            if l.off == -1 {
                self.stats.null += 1;
                continue;
            }
            self.stats.found += 1;
            let key = KEYS[key];
            if l.off < 0 || l.off + size > PAGE as i64 {
                let what = format!("lookup {j} ({key}, {size} bytes) at {} is outside", l.off);
                self.fail(c, what, &out);
            }
            let (off, size) = (l.off as usize, size as usize);
            let first = p.bytes_at(off, size.min(8));
            let last = if size >= 8 {
                p.bytes_at(off + size - 8, 8)
            } else {
                0
            };
            if (l.first, l.last) != (first, last) {
                let what = format!(
                    "lookup {j} ({key}) at offset {off} read {:#x}/{:#x}, the page holds \
                     {first:#x}/{last:#x} there",
                    l.first, l.last
                );
                self.fail(c, what, &out);
            }
        }
        let got = Prediction {
            init_var_ret: out.init_var_ret,
            look: out.look.map(|l| (l.off != -1).then_some(l.off)),
        };
        // The model of the header.
        if got != want {
            let what = format!("BPF and the model disagree: model {want:?}, BPF {got:?}");
            self.fail(c, what, &out);
        }
        // The cache-independent oracle, where it applies.
        if c.fresh || self.growth_only {
            self.stats.oracle_cases += 1;
            self.stats.growth_cases += u64::from(!c.fresh);
            let truth = oracle(p, c.mask);
            if got != truth {
                let what = format!(
                    "a lookup disagrees with the page's bytes (grown since the cache was \
                     empty: {}): they say {truth:?}, BPF {got:?}",
                    !c.fresh
                );
                self.fail(c, what, &out);
            }
        }
        // The kernel's cache element.
        let Some((seen, kernel)) = self.k.read_cache() else {
            self.fail(c, "no cache element after a run".into(), &out);
        };
        let wrong_tag =
            seen[0] == 0 || seen[1] == 0 || self.cookies.is_some_and(|real| real != seen);
        if wrong_tag {
            let what = format!("cache tag {seen:x?}, earlier {:x?}", self.cookies);
            self.fail(c, what, &out);
        }
        self.cookies = Some(seen);
        if kernel != self.slots {
            let what = format!("the cache holds {kernel:?}, the model {:?}", self.slots);
            self.fail(c, what, &out);
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// The fuzzing thread: registers its own two pages and runs the cases.
fn fuzz(obj: &Loaded, seed: u64, cases: u64) -> Stats {
    let k = Kernel {
        obj,
        pidfd: pidfd_of_thread(gettid()),
        start: 0,
    };
    let mut f = Fuzzer {
        k,
        m: Mapping::new(),
        seed,
        cases,
        rng: Rng(seed),
        pages: Box::new(Pages {
            meta: [0; PAGE],
            data: [0; PAGE],
            seven: obj.seven(),
            value_start: 0,
        }),
        sane: None,
        slots: Slots::cleared(),
        clears: true,
        cookies: None,
        growth_only: false,
        stats: Stats::default(),
    };
    f.pages.set_start(8);
    f.m.write(&f.pages);
    f.k.register(&f.m, f.pages.value_start);
    for index in 0..cases {
        f.case(index);
    }
    f.stats
}

#[test]
fn lookups_over_hostile_pages_stay_in_the_page_and_match_the_model() {
    hostile_pages_and_caches(
        "lookups_over_hostile_pages_stay_in_the_page_and_match_the_model",
        true,
    );
}

#[test]
fn lookups_over_hostile_6_18_pages_stay_in_the_page_and_match_the_model() {
    hostile_pages_and_caches(
        "lookups_over_hostile_6_18_pages_stay_in_the_page_and_match_the_model",
        false,
    );
}

/// Fuzzes the object of the 7.x generation (`seven`), or of 6.18's.
fn hostile_pages_and_caches(test: &str, seven: bool) {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page != PAGE as i64 {
        assert!(
            !bpf_required(),
            "{test}: the fuzz program assumes 4 KiB pages, not {page}"
        );
        eprintln!("SKIPPED {test}: the fuzz program assumes 4 KiB pages, not {page}");
        return;
    }
    let seed = env_u64("TLD_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("TLD_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let home = if seven {
        "7.x: start in the value"
    } else {
        "6.18: start in the page"
    };
    let t = Instant::now();
    // One dedicated thread loads the object and registers its own pages; its storage goes away
    // when it exits.
    let stats = std::thread::scope(|s| {
        s.spawn(|| {
            let obj = load(test, seven)?;
            check_layout(&obj, seven);
            eprintln!(
                "hostile ({home}): seed {seed:#x}, {cases} cases (TLD_FUZZ_SEED, \
                 TLD_FUZZ_CASES)"
            );
            Some(fuzz(&obj, seed, cases))
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    });
    let Some(stats) = stats else {
        return;
    };
    eprintln!(
        "hostile ({home}): {cases} cases in {:.2?}: {} lookups found a value, {} returned NULL; \
         {} cases checked against the page's bytes ({} after growth), {} forged caches, {} \
         unregistered",
        t.elapsed(),
        stats.found,
        stats.null,
        stats.oracle_cases,
        stats.growth_cases,
        stats.forged,
        stats.unregistered
    );
    // The fuzzing must reach both outcomes to mean anything.
    if cases >= 1000 {
        assert!(stats.found >= cases, "too few lookups found a value");
        assert!(stats.null >= cases, "too few lookups returned NULL");
        assert!(stats.growth_cases >= cases / 50, "too few growth cases");
    }
}

/// Checks that the object's maps and output have the sizes this test assumes.
fn check_layout(obj: &Loaded, seven: bool) {
    assert_eq!(obj.off_map.1, CACHE_SIZE, "tld_off_map's value");
    assert_eq!(
        std::mem::size_of::<types::tld_off_cache>(),
        CACHE_SIZE,
        "struct tld_off_cache layout"
    );
    let value = match seven {
        true => wire::MAP_VALUE_SIZE_7,
        false => wire::MAP_VALUE_SIZE,
    };
    assert_eq!(obj.data_map_value_size, value, "tld_data_map's value");
    assert_eq!(obj.bss_size, std::mem::size_of::<types::fuzz_out>());
}
