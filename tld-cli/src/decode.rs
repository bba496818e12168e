//! Decoding one task's pages into its keys, treating every byte as hostile.
//!
//! The pages belong to the inspected process (and any BPF program may write them), so nothing
//! in them is trusted: every read is bounds-checked against the bytes the iterator copied, every
//! loop is bounded by the page, and anything inconsistent is a [`DecodeError`] for this task
//! alone.
//!
//! The wire format, as every writer lays it out:
//! - metadata page: `u16 cnt; u16 size; struct { char name[62]; u16 size; } entries[]`, with
//!   room for `(page_size - 4) / 64` entries;
//! - data page: entry `i`'s value at `start + sum over j < i of round_up(size_j, 8)`, where
//!   `start`, the data area's offset from the page start, is the map value's (the 7.x
//!   generation) or the page's first `u64` (the 6.18 generation).
//!
//! A reader looks only at the first `cnt` entries. An entry whose size is 0 is claimed but not
//! yet published: it and the entries after it (whose offsets depend on its size) are not shown
//! yet.

use std::fmt;

use tld_runtime::wire::{
    META_ENTRIES_OFFSET as ENTRIES_OFFSET, META_ENTRY_SIZE as ENTRY_SIZE, NAME_LEN,
};

use crate::iter::RawTask;

/// One published key of a task, with the bytes of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawKey {
    /// The key.
    pub name: String,
    /// The value's size in bytes.
    pub size: usize,
    /// The value's offset from the start of the data page.
    pub offset: usize,
    /// The value's bytes.
    pub bytes: Vec<u8>,
}

/// Why a task's pages cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The element has no data page (its data pointer is NULL).
    NoDataPage,
    /// The element has no metadata page.
    NoMetaPage,
    /// `cnt` says more entries than the page holds.
    BadCount {
        /// `cnt` as read.
        cnt: u16,
        /// Entries the page holds.
        max: usize,
    },
    /// `start` is not inside the data page.
    BadStart {
        /// `start` as read.
        start: u64,
        /// Bytes of the data page.
        page: usize,
    },
    /// An entry's name is not a NUL-terminated printable string.
    BadName {
        /// The entry's index.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// An entry's value does not fit in the data page.
    Overflow {
        /// The entry's index.
        index: usize,
        /// Its key.
        name: String,
        /// Its offset.
        offset: usize,
        /// Its size.
        size: usize,
        /// Bytes of the data page.
        page: usize,
    },
    /// Two entries have the same key.
    Duplicate {
        /// The key.
        name: String,
        /// The first entry's index.
        first: usize,
        /// The second entry's index.
        second: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NoDataPage => f.write_str("the element has no data page"),
            DecodeError::NoMetaPage => f.write_str("the element has no metadata page"),
            DecodeError::BadCount { cnt, max } => write!(
                f,
                "corrupt metadata page: cnt is {cnt}, but the page holds at most {max} entries"
            ),
            DecodeError::BadStart { start, page } => write!(
                f,
                "corrupt data page: start is {start}, outside the {page}-byte page"
            ),
            DecodeError::BadName { index, why } => {
                write!(f, "corrupt metadata page: entry {index}'s name {why}")
            }
            DecodeError::Overflow {
                index,
                name,
                offset,
                size,
                page,
            } => write!(
                f,
                "corrupt metadata page: entry {index} ({name}) has {size} bytes at offset \
                 {offset}, past the end of the {page}-byte data page"
            ),
            DecodeError::Duplicate {
                name,
                first,
                second,
            } => write!(
                f,
                "corrupt metadata page: key {name} appears twice (entries {first} and {second})"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Rounds `n` up to a multiple of 8.
fn round8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// The name in an entry's 62-byte field.
fn entry_name(field: &[u8], index: usize) -> Result<String, DecodeError> {
    let bad = |why: String| DecodeError::BadName { index, why };
    let end = field
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| bad("is not NUL-terminated".into()))?;
    if end == 0 {
        return Err(bad("is empty".into()));
    }
    if let Some(&c) = field[..end].iter().find(|c| !c.is_ascii_graphic()) {
        return Err(bad(format!(
            "has the byte {c:#04x}, which is not printable"
        )));
    }
    // Printable ASCII is UTF-8.
    Ok(String::from_utf8_lossy(&field[..end]).into_owned())
}

/// Decodes a task's keys from its record: from the value's `start` in a map of the 7.x
/// generation, else from the page's.
pub fn decode_task(raw: &RawTask) -> Result<Vec<RawKey>, DecodeError> {
    decode_at(
        raw.data.as_deref(),
        raw.meta.as_deref(),
        raw.value_start.map(u64::from),
    )
}

/// Decodes a task's keys from copies of its data page and metadata page, with `start` read
/// from the data page's first `u64` (the 6.18 generation).
pub fn decode(data: Option<&[u8]>, meta: Option<&[u8]>) -> Result<Vec<RawKey>, DecodeError> {
    decode_at(data, meta, None)
}

/// Decodes a task's keys from copies of its pages, with `start` given (the 7.x generation's
/// value) or, when it is `None`, read from the data page.
pub fn decode_at(
    data: Option<&[u8]>,
    meta: Option<&[u8]>,
    value_start: Option<u64>,
) -> Result<Vec<RawKey>, DecodeError> {
    let meta = meta.ok_or(DecodeError::NoMetaPage)?;
    let data = data.ok_or(DecodeError::NoDataPage)?;
    let max = meta.len().saturating_sub(ENTRIES_OFFSET) / ENTRY_SIZE;
    let cnt = match meta.get(0..2) {
        Some(b) => u16::from_ne_bytes([b[0], b[1]]),
        None => return Err(DecodeError::BadCount { cnt: 0, max }),
    };
    if usize::from(cnt) > max {
        return Err(DecodeError::BadCount { cnt, max });
    }
    let start = match (value_start, data.get(0..8)) {
        (Some(start), _) => start,
        (None, Some(b)) => u64::from_ne_bytes(b.try_into().expect("8 bytes")),
        (None, None) => {
            return Err(DecodeError::BadStart {
                start: 0,
                page: data.len(),
            })
        }
    };
    if start < 8 || start > data.len() as u64 {
        return Err(DecodeError::BadStart {
            start,
            page: data.len(),
        });
    }

    let mut keys: Vec<RawKey> = Vec::new();
    let mut offset = start as usize;
    for index in 0..usize::from(cnt) {
        let at = ENTRIES_OFFSET + index * ENTRY_SIZE;
        // In bounds: index < cnt <= max, and max entries fit in `meta`.
        let entry = &meta[at..at + ENTRY_SIZE];
        let size = usize::from(u16::from_ne_bytes([entry[NAME_LEN], entry[NAME_LEN + 1]]));
        if size == 0 {
            // Claimed, not yet published: the offsets of later entries are not known yet.
            break;
        }
        let name = entry_name(&entry[..NAME_LEN], index)?;
        let end = offset + size; // offset <= page size and size < 65536: no overflow
        if end > data.len() {
            return Err(DecodeError::Overflow {
                index,
                name,
                offset,
                size,
                page: data.len(),
            });
        }
        if let Some(first) = keys.iter().position(|k| k.name == name) {
            return Err(DecodeError::Duplicate {
                name,
                first,
                second: index,
            });
        }
        keys.push(RawKey {
            name,
            size,
            offset,
            bytes: data[offset..end].to_vec(),
        });
        offset += round8(size);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;
    const META: usize = 4 + 63 * 64;

    /// A metadata page with `entries`, and a data page with `start` and each value's bytes
    /// set to its index + 1.
    fn pages(start: u64, entries: &[(&str, u16)]) -> (Vec<u8>, Vec<u8>) {
        let mut meta = vec![0u8; META];
        meta[0..2].copy_from_slice(&(entries.len() as u16).to_ne_bytes());
        let mut data = vec![0u8; PAGE];
        data[0..8].copy_from_slice(&start.to_ne_bytes());
        let mut off = start as usize;
        for (i, (name, size)) in entries.iter().enumerate() {
            let at = 4 + i * 64;
            meta[at..at + name.len()].copy_from_slice(name.as_bytes());
            meta[at + 62..at + 64].copy_from_slice(&size.to_ne_bytes());
            if off + usize::from(*size) <= PAGE {
                data[off..off + usize::from(*size)].fill(i as u8 + 1);
            }
            off += round8(usize::from(*size));
        }
        (data, meta)
    }

    #[test]
    fn offsets_follow_start_and_eight_byte_rounding() {
        for start in [8, 16] {
            let (data, meta) = pages(start, &[("a", 4), ("b", 12), ("c", 1)]);
            let keys = decode(Some(&data), Some(&meta)).unwrap();
            let got: Vec<(&str, usize, usize)> = keys
                .iter()
                .map(|k| (k.name.as_str(), k.size, k.offset))
                .collect();
            let s = start as usize;
            assert_eq!(got, [("a", 4, s), ("b", 12, s + 8), ("c", 1, s + 24)]);
            assert_eq!(keys[1].bytes, vec![2; 12]);
        }
    }

    #[test]
    fn an_unpublished_entry_ends_the_list() {
        let (data, meta) = pages(16, &[("a", 4), ("b", 0), ("c", 8)]);
        let keys = decode(Some(&data), Some(&meta)).unwrap();
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn hostile_pages_give_per_task_errors() {
        let (data, mut meta) = pages(16, &[("a", 4)]);
        meta[0..2].copy_from_slice(&9999u16.to_ne_bytes());
        assert_eq!(
            decode(Some(&data), Some(&meta)),
            Err(DecodeError::BadCount { cnt: 9999, max: 63 })
        );

        let (data, _) = pages(5000, &[]);
        let (_, meta) = pages(16, &[("a", 4)]);
        assert!(matches!(
            decode(Some(&data), Some(&meta)),
            Err(DecodeError::BadStart { start: 5000, .. })
        ));

        let (data, meta) = pages(16, &[("a", 4000), ("b", 200)]);
        let e = decode(Some(&data), Some(&meta)).unwrap_err();
        assert!(matches!(e, DecodeError::Overflow { index: 1, .. }), "{e}");

        let (data, mut meta) = pages(16, &[("a", 4)]);
        meta[4..4 + 62].fill(b'x');
        assert!(decode(Some(&data), Some(&meta))
            .unwrap_err()
            .to_string()
            .contains("not NUL-terminated"));
        meta[4] = 7;
        meta[5] = 0;
        assert!(decode(Some(&data), Some(&meta))
            .unwrap_err()
            .to_string()
            .contains("0x07"));

        let (data, meta) = pages(16, &[("a", 4), ("a", 4)]);
        assert!(matches!(
            decode(Some(&data), Some(&meta)),
            Err(DecodeError::Duplicate { .. })
        ));

        assert_eq!(decode(None, Some(&meta)), Err(DecodeError::NoDataPage));
        assert_eq!(decode(Some(&data), None), Err(DecodeError::NoMetaPage));
        assert!(decode(Some(&[]), Some(&[])).is_err());
    }

    /// Random pages: decoding never panics, and every key it returns lies in the page.
    #[test]
    fn random_pages_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2000 {
            let mut data = vec![0u8; PAGE];
            let mut meta = vec![0u8; META];
            for b in data.iter_mut().chain(meta.iter_mut()) {
                *b = next() as u8;
            }
            // Keep some rounds plausible so that deeper paths run.
            if round % 2 == 0 {
                meta[0..2].copy_from_slice(&((next() % 64) as u16).to_ne_bytes());
                data[0..8].copy_from_slice(&(8 + (next() % 16)).to_ne_bytes());
                for i in 0..63 {
                    let at = 4 + i * 64;
                    meta[at + 1 + (next() % 60) as usize] = 0;
                    meta[at] = b'a' + (next() % 26) as u8;
                    meta[at + 62..at + 64].copy_from_slice(&((next() % 300) as u16).to_ne_bytes());
                }
            }
            if let Ok(keys) = decode(Some(&data), Some(&meta)) {
                for k in keys {
                    assert!(k.offset + k.size <= PAGE && k.bytes.len() == k.size);
                }
            }
        }
    }
}
