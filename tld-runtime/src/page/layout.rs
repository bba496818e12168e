//! The layout: where each hint lives in a thread's block, and what the metadata page says.
//!
//! Entries are laid out in key order. Entry `i` sits at `start + sum over j < i of
//! round_up(size_j, 8)` from the start of the page, which is exactly where a BPF reader computes
//! it from the metadata (offsets are implicit in the wire format).
//!
//! `start`, the page's first u64, is 8 (the data area follows it) or, when the data area has 8
//! bytes to spare, 16: bytes 8..16 then hold the layout's *fingerprint*, a hash of the page size
//! and every key and size in order. A header generated for the same hints carries the same
//! fingerprint and each key's offset as a constant; a BPF program compiled against it checks
//! the fingerprint once in `bpf_tld_init` and then reads values at constant offsets, with no
//! per-task cache. Readers that do not know the fingerprint (scx's header, the raw
//! `bpf_tld_lookup`) find the entries from `start` as always.
//!
//! A layout with a problem (duplicate keys, too many or too large hints) is not published: the
//! hints still get offsets, in a block that may span several pages, and work as thread-locals.

use std::collections::HashMap;

use crate::declare::registry::{Hint, LayoutToken};
use crate::error::Error;
use crate::page::metadata::MetaPage;
use crate::page::wire::{self, round8, DATA_START, FINGERPRINT_OFFSET, FINGERPRINT_START};

/// Where a set of hints goes in a page: the part of the layout that the header generator
/// computes too, so that BPF and the runtime agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The data area's offset: [`DATA_START`], or [`FINGERPRINT_START`] with a fingerprint.
    pub start: usize,
    /// Each hint's offset from the start of the page, in key order.
    pub offsets: Vec<usize>,
    /// Data bytes used after `start` (each entry rounded up to 8).
    pub data_used: usize,
    /// The fingerprint stored at bytes 8..16, when there is room for it.
    pub fingerprint: Option<u64>,
}

impl Plan {
    /// Plans `hints` (sorted by key) for pages of `page_size` bytes.
    pub fn new(hints: &[&'static dyn Hint], page_size: usize) -> Plan {
        let data_used: usize = hints.iter().map(|h| round8(h.size())).sum();
        let fits_fingerprint = FINGERPRINT_START + data_used <= page_size;
        let start = if fits_fingerprint {
            FINGERPRINT_START
        } else {
            DATA_START
        };
        let mut next = start;
        let offsets = hints
            .iter()
            .map(|h| {
                let at = next;
                next += round8(h.size());
                at
            })
            .collect();
        Plan {
            start,
            offsets,
            data_used,
            fingerprint: fits_fingerprint.then(|| fingerprint(hints, page_size)),
        }
    }
}

/// FNV-1a over the page size and every key and size in order, and a mark after each consistent
/// hint's size ([`CONSISTENT_MARK`]); never 0. Layouts without consistent hints hash exactly as
/// before they existed.
fn fingerprint(hints: &[&'static dyn Hint], page_size: usize) -> u64 {
    fingerprint_with(hints, page_size, CONSISTENT_MARK)
}

/// [`fingerprint`] with `mark` after each consistent hint's size.
fn fingerprint_with(hints: &[&'static dyn Hint], page_size: usize, mark: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(b"tld-layout-1\0");
    eat(&(page_size as u64).to_le_bytes());
    for hint in hints {
        eat(hint.site().key.as_bytes());
        eat(&[0]);
        eat(&(hint.size() as u64).to_le_bytes());
        if hint.consistent() {
            // No key starts with this byte, so the mark cannot be mistaken for the next key.
            eat(mark);
        }
    }
    h.max(1)
}

/// What the fingerprint adds after the size of a consistent hint: the format of its entry. The
/// first format (one copy under a counter) hashed `\x01seq`; the latch (a sequence word and two
/// copies) hashes `\x02latch`, so that a program compiled for one never takes the fast path on
/// a page laid out for the other, whatever the sizes.
pub const CONSISTENT_MARK: &[u8] = b"\x02latch";

/// One laid-out hint.
pub struct Entry {
    /// The hint.
    pub hint: &'static dyn Hint,
    /// Its offset from the start of a thread's block.
    pub offset: usize,
}

/// The process's layout.
pub struct Layout {
    /// The system page size.
    pub page_size: usize,
    /// Bytes of one thread's block: one page, or more when the layout is not published.
    pub block_size: usize,
    /// The hints in key order.
    pub entries: Vec<Entry>,
    /// The offset of the data area, the bytes used, and the fingerprint.
    pub plan: Plan,
    /// A new thread's block: `start`, the fingerprint, and every hint's initial value.
    pub template: Vec<u8>,
    /// Why the layout cannot be published, if it cannot.
    pub problem: Option<Error>,
}

impl Layout {
    /// Lays out `hints` (sorted by key) and gives each hint its offset.
    ///
    /// A hint that breaks a rule of the format on its own (size 0, alignment over 8, larger
    /// than a page's data area, a key that is not a C identifier) gets no place at all: it
    /// keeps its values in per-thread fallback storage. The others are placed even when the
    /// layout as a whole cannot be published (duplicate keys, too many or too large hints), in a
    /// block of as many pages as they need, so that they work as thread-locals.
    pub fn build(hints: Vec<&'static dyn Hint>, page_size: usize) -> Layout {
        let problem = check(&hints, page_size);
        let hints: Vec<_> = hints
            .into_iter()
            .filter(|h| check_hint(*h, page_size).is_ok())
            .collect();
        let plan = Plan::new(&hints, page_size);
        let entries: Vec<Entry> = hints
            .into_iter()
            .zip(&plan.offsets)
            .map(|(hint, &offset)| Entry { hint, offset })
            .collect();
        let end = plan.start + plan.data_used;
        let block_size = end.max(page_size).div_ceil(page_size) * page_size;

        let mut template = vec![0u8; block_size];
        template[wire::DATA_START_FIELD..wire::DATA_START_FIELD + 8]
            .copy_from_slice(&(plan.start as u64).to_ne_bytes());
        if let Some(fp) = plan.fingerprint {
            template[FINGERPRINT_OFFSET..FINGERPRINT_OFFSET + 8].copy_from_slice(&fp.to_ne_bytes());
        }
        for e in &entries {
            let init = e.hint.init_bytes();
            template[e.offset..e.offset + init.len()].copy_from_slice(init);
            e.hint.place(LayoutToken::new(), e.offset as u32);
        }
        Layout {
            page_size,
            block_size,
            entries,
            plan,
            template,
            problem,
        }
    }

    /// Writes the metadata page for a layout without problems.
    pub fn publish(&self) -> Result<MetaPage, Error> {
        if let Some(problem) = &self.problem {
            return Err(problem.clone());
        }
        let mut meta = MetaPage::new(self.page_size, self.plan.start)
            .map_err(|e| Error::from_errno("mapping the metadata page", e))?;
        for e in &self.entries {
            let offset = meta.publish(e.hint.site().key, e.hint.size());
            debug_assert_eq!(offset, e.offset, "metadata order is layout order");
        }
        Ok(meta)
    }
}

/// Finds the first reason the hints (sorted by key) cannot be published.
pub fn check(hints: &[&'static dyn Hint], page_size: usize) -> Option<Error> {
    let mut seen: HashMap<&str, &'static dyn Hint> = HashMap::new();
    for &hint in hints {
        let site = hint.site();
        if let Some(first) = seen.insert(site.key, hint) {
            return Some(Error::DuplicateKey {
                key: site.key.to_string(),
                first: first.site(),
                second: site,
            });
        }
        if let Err(reason) = check_hint(hint, page_size) {
            return Some(Error::InvalidHint { site, reason });
        }
    }
    let max = wire::max_entries(page_size);
    if hints.len() > max {
        return Some(Error::TooManyKeys {
            count: hints.len(),
            max,
        });
    }
    let needed: usize = hints.iter().map(|h| round8(h.size())).sum();
    let available = page_size - DATA_START;
    if needed > available {
        return Some(Error::TooLarge {
            needed,
            available,
            page_size,
        });
    }
    None
}

/// Checks one hint against the wire format. The macro checks the same at compile time; this
/// guards against hand-made registrations.
pub fn check_hint(hint: &dyn Hint, page_size: usize) -> Result<(), String> {
    let key = hint.site().key;
    check_key(key)?;
    if hint.size() == 0 {
        return Err("its type has size 0".into());
    }
    if hint.align() > wire::MAX_HINT_ALIGN {
        return Err(format!(
            "its type needs alignment {}; at most {} is possible",
            hint.align(),
            wire::MAX_HINT_ALIGN
        ));
    }
    if hint.size() > page_size - DATA_START {
        return Err(format!(
            "its type has {} bytes; a page's data area has {}",
            hint.size(),
            page_size - DATA_START
        ));
    }
    Ok(())
}

/// Checks that `key` can name a metadata entry and a C struct member: a C identifier that is
/// no C keyword, of at most [`wire::MAX_KEY_LEN`] bytes. The rule is `tld-wire`'s
/// ([`tld_wire::key::check_key`]), which the macros apply at compile time.
pub fn check_key(key: &str) -> Result<(), String> {
    tld_wire::key::check_key(key).map_err(|invalid| invalid.describe("key", key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::registry::Site;
    use crate::declare::task_local::TaskLocal;

    const fn site(key: &'static str) -> Site {
        Site {
            key,
            rust_name: "X",
            type_name: "u64",
            module_path: "tests",
            file: "layout.rs",
            line: 1,
            column: 1,
        }
    }

    static GOOD: TaskLocal<u64> = TaskLocal::__new(site("good"), 7);
    static BAD_KEY: TaskLocal<u64> = TaskLocal::__new(site("1-not-an-identifier"), 9);

    #[test]
    fn a_rejected_hint_gets_no_place() {
        let layout = Layout::build(vec![&BAD_KEY, &GOOD], 4096);
        // The layout as a whole is not published, and the bad hint has no offset at all.
        assert!(matches!(layout.problem, Some(Error::InvalidHint { .. })));
        assert_eq!(BAD_KEY.placed_offset(), None);
        assert_eq!(GOOD.placed_offset(), Some(16));
        assert_eq!(layout.entries.len(), 1);
    }

    #[test]
    fn keys() {
        assert!(check_key("value1").is_ok());
        assert!(check_key("_x").is_ok());
        assert!(check_key("1x").is_err());
        assert!(check_key("a-b").is_err());
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(61)).is_ok());
        assert!(check_key(&"k".repeat(62)).is_err());
        assert!(check_key("int").unwrap_err().contains("C keyword"));
    }

    static PLAIN: crate::TaskLocal<[u8; 16]> = crate::TaskLocal::__new(site("a"), [7; 16]);
    static GUARDED: crate::ConsistentTaskLocal<[u16; 3]> =
        crate::ConsistentTaskLocal::__new(site("b"), [0x0101, 0x0202, 0x0303]);
    static PLAIN_LIKE_GUARDED: crate::TaskLocal<[u8; 24]> =
        crate::TaskLocal::__new(site("b"), [0; 24]);

    #[test]
    fn a_consistent_hint_is_its_sequence_word_then_two_copies() {
        let layout = Layout::build(vec![&PLAIN, &GUARDED], 4096);
        assert!(layout.problem.is_none());
        // "a" at 16 (16 bytes), then "b": an 8-byte word and two 6-byte copies, padded to 24.
        assert_eq!(layout.plan.offsets, [16, 32]);
        assert_eq!(GUARDED.size(), 24);
        let entry = &layout.template[32..56];
        assert_eq!(
            entry[..8],
            wire::SEQ_INIT.to_ne_bytes(),
            "version 0, nobody writing"
        );
        assert_eq!(entry[8..14], [1, 1, 2, 2, 3, 3], "copy 0");
        assert_eq!(entry[14..20], [1, 1, 2, 2, 3, 3], "copy 1");
        assert_eq!(entry[20..], [0; 4], "padding");
        assert_eq!(layout.template[16..32], [7; 16]);
    }

    #[test]
    fn the_fingerprint_tells_a_consistent_hint_from_a_plain_one_of_its_size() {
        let guarded = fingerprint(&[&PLAIN, &GUARDED], 4096);
        let plain = fingerprint(&[&PLAIN, &PLAIN_LIKE_GUARDED], 4096);
        assert_eq!(GUARDED.size(), PLAIN_LIKE_GUARDED.size());
        assert_ne!(guarded, plain);
    }

    #[test]
    fn the_fingerprint_tells_the_latch_from_the_first_consistent_format() {
        // A header generated for the one-copy format hashed this mark, whatever its sizes.
        let first = fingerprint_with(&[&PLAIN, &GUARDED], 4096, b"\x01seq");
        assert_ne!(fingerprint(&[&PLAIN, &GUARDED], 4096), first);
    }
}
