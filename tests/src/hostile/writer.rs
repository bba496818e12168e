//! Case generation: the pages a hostile writer leaves, those a well-behaved writer leaves, and
//! forged cache slots.

use super::*;

/// A key's name with hostile variations: exact, with garbage after the NUL, without any NUL,
/// truncated, extended, altered, the longest key's neighbours, or plain garbage.
pub fn hostile_name(rng: &mut Rng) -> Name {
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
pub fn hostile_size(rng: &mut Rng) -> u16 {
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
        _ => rng.next_u64() as u16,
    }
}

/// An entry count as a hostile writer leaves it: mostly in range, often at or past the end.
pub fn hostile_cnt(rng: &mut Rng) -> u16 {
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

/// A `start` as a hostile writer leaves it: mostly 8, otherwise anywhere.
pub fn hostile_start(rng: &mut Rng) -> u64 {
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
        9 => rng.next_u64(),
        10 => 16,
        // Where the kernel's 7.x C library puts a small block's data: 8 past a power of two.
        11 if rng.chance(50) => (1 << rng.range(4, 11)) * rng.range(0, 3) + 8,
        _ => 8 * rng.range(2, 511),
    }
}

/// An entry index: mostly one the header looks at.
pub fn some_entry(rng: &mut Rng, p: &Pages) -> usize {
    let cnt = p.clamped_cnt();
    if cnt > 0 && rng.chance(80) {
        rng.below(cnt as u64) as usize
    } else {
        rng.below(MAX_ENTRIES as u64) as usize
    }
}

/// A metadata page of random entries.
pub fn hostile_page(rng: &mut Rng, p: &mut Pages) {
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
pub fn mutate(rng: &mut Rng, p: &mut Pages) {
    for _ in 0..rng.range(1, 4) {
        match rng.below(8) {
            0 => {
                let i = rng.below(PAGE as u64) as usize;
                p.meta[i] = rng.next_u64() as u8;
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
pub const DECOYS: [&str; 14] = [
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
pub struct Sane {
    /// Names of the entries below cnt (also the claimed one, if `pending`).
    pub names: Vec<Vec<u8>>,
    /// The last entry below cnt is claimed (size 0), as the C library leaves it between
    /// bumping cnt and publishing.
    pub pending: bool,
}

/// A name a well-behaved writer adds: one of the keys, a decoy or another, never one it has.
pub fn sane_name(rng: &mut Rng, s: &Sane) -> Vec<u8> {
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

/// A size a well-behaved writer gives a key.
pub fn sane_size(rng: &mut Rng) -> u16 {
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
pub fn sane_append(rng: &mut Rng, p: &mut Pages, s: &mut Sane) {
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

/// A fresh page as a well-behaved writer leaves it: a few entries appended.
pub fn sane_page(rng: &mut Rng, p: &mut Pages) -> Sane {
    p.meta = [0; PAGE];
    let mut s = Sane::default();
    p.set_start(8);
    for _ in 0..rng.range(0, 12) {
        sane_append(rng, p, &mut s);
    }
    s
}

/// Publishes a claimed entry and appends a few more.
pub fn sane_evolve(rng: &mut Rng, p: &mut Pages, s: &mut Sane) {
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
pub fn garbage_slot(rng: &mut Rng, current: i16) -> i16 {
    match rng.below(9) {
        0 => 0,
        1 => -(rng.range(0, 70) as i16),
        2 => rng.next_u64() as i16,
        3 => rng.range(1, PAGE as u64 - 1) as i16,
        4 => rng.range(PAGE as u64 - 20, PAGE as u64 + 4) as i16,
        5 => rng.pick(&[i16::MIN, i16::MAX, -1, 1, 8]),
        6 => 8 * rng.range(1, 511) as i16,
        7 => rng.range(1, 4088) as i16,
        _ => current,
    }
}
