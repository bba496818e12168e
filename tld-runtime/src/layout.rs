//! The layout: where each hint lives in a thread's block, and what the metadata page says.
//!
//! Entries are laid out in key order. Entry `i` sits at `8 + sum over j < i of
//! round_up(size_j, 8)` from the start of the page, which is exactly where a BPF reader computes
//! it from the metadata (offsets are implicit in the wire format).
//!
//! A layout with a problem (duplicate keys, too many or too large hints) is not published: the
//! hints still get offsets, in a block that may span several pages, and work as thread-locals.

use std::collections::HashMap;

use crate::error::Error;
use crate::metadata::{self, MetaPage};
use crate::registry::Hint;

/// Offset of the data area in a thread's page: right after the `start` field.
pub const DATA_START: usize = 8;

/// Rounds `n` up to a multiple of 8.
pub const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

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
    /// Data bytes used after `DATA_START` (each entry rounded up to 8).
    pub data_used: usize,
    /// A new thread's block: `start` and every hint's initial value.
    pub template: Vec<u8>,
    /// Why the layout cannot be published, if it cannot.
    pub problem: Option<Error>,
}

impl Layout {
    /// Lays out `hints` (sorted by key) and stores each hint's offset in it.
    pub fn build(hints: Vec<&'static dyn Hint>, page_size: usize) -> Layout {
        let problem = check(&hints, page_size);
        let mut entries = Vec::with_capacity(hints.len());
        let mut next = DATA_START;
        for hint in hints {
            entries.push(Entry { hint, offset: next });
            next += round8(hint.size());
        }
        let data_used = next - DATA_START;
        let block_size = next.max(page_size).div_ceil(page_size) * page_size;

        let mut template = vec![0u8; block_size];
        template[..8].copy_from_slice(&(DATA_START as u64).to_ne_bytes());
        for e in &entries {
            let init = e.hint.init_bytes();
            template[e.offset..e.offset + init.len()].copy_from_slice(init);
            // Relaxed suffices: threads read offsets only after passing the runtime's OnceLock.
            e.hint
                .offset_cell()
                .store(e.offset as u32, std::sync::atomic::Ordering::Relaxed);
        }
        Layout {
            page_size,
            block_size,
            entries,
            data_used,
            template,
            problem,
        }
    }

    /// Writes the metadata page for a layout without problems.
    pub fn publish(&self) -> Result<MetaPage, Error> {
        if let Some(problem) = &self.problem {
            return Err(problem.clone());
        }
        let mut meta = MetaPage::new(self.page_size)
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
    let max = metadata::max_entries(page_size);
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
    if hint.align() > 8 {
        return Err(format!(
            "its type needs alignment {}; at most 8 is possible",
            hint.align()
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

/// Checks that `key` can name a metadata entry and a C struct member.
pub fn check_key(key: &str) -> Result<(), String> {
    let bytes = key.as_bytes();
    if bytes.is_empty() {
        return Err("the key is empty".into());
    }
    if bytes.len() >= metadata::NAME_LEN {
        return Err(format!(
            "the key has {} bytes; at most {} fit",
            bytes.len(),
            metadata::NAME_LEN - 1
        ));
    }
    let ident_start = |b: u8| b.is_ascii_alphabetic() || b == b'_';
    if !ident_start(bytes[0]) || !bytes.iter().all(|&b| ident_start(b) || b.is_ascii_digit()) {
        return Err(format!("the key \"{key}\" is not a C identifier"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(check_key("value1").is_ok());
        assert!(check_key("_x").is_ok());
        assert!(check_key("1x").is_err());
        assert!(check_key("a-b").is_err());
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(61)).is_ok());
        assert!(check_key(&"k".repeat(62)).is_err());
    }

    #[test]
    fn rounding() {
        assert_eq!(round8(1), 8);
        assert_eq!(round8(8), 8);
        assert_eq!(round8(1000), 1000);
        assert_eq!(round8(1001), 1008);
    }
}
