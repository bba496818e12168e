//! `task_local_data.bpf.h` ported to Rust: the lookups of the fuzz program, with the per-task
//! offset cache carried from case to case ([`predict`]), and an oracle that needs no cache
//! ([`oracle`]).

use super::*;

/// The per-key slots of `struct tld_off_cache`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slots {
    /// Each key's cached offset.
    pub off: [i16; NKEYS],
    /// Each key's cached size.
    pub size: [i16; NKEYS],
}

impl Slots {
    /// A cache as `bpf_tld_init()` clears it: every key unresolved, its scan to resume at
    /// entry 0.
    pub fn cleared() -> Slots {
        Slots {
            off: [resume_at(0) as i16; NKEYS],
            size: [0; NKEYS],
        }
    }
}

/// `__TLD_RESUME(i)`: the offset slot of a key whose next scan resumes at entry `i`.
pub fn resume_at(i: i64) -> i64 {
    -i - 1
}

/// `__bpf_tld_resolve()`.
pub fn resolve(p: &Pages, key: &[u8], off_slot: &mut i16, size_slot: &mut i16) -> i64 {
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
pub fn lookup(p: &Pages, slots: &mut Slots, k: usize, size: i64) -> Option<i64> {
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
pub fn init_var(p: &Pages, slots: &mut Slots, k: usize) -> i64 {
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
pub struct Prediction {
    /// Each key's `bpf_tld_init_var` result ([`NOT_CALLED`] where not called).
    pub init_var_ret: [i64; NKEYS],
    /// Each lookup's offset, or `None` for NULL.
    pub look: [Option<i64>; NLOOKUPS],
}

/// The program, run against the model's cache.
pub fn predict(p: &Pages, slots: &mut Slots, mask: u64) -> Prediction {
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
pub fn place(p: &Pages, key: &[u8]) -> Option<(i64, i64)> {
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
pub fn oracle(p: &Pages, mask: u64) -> Prediction {
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
