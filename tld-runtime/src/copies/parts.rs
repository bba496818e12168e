//! The parts of the process that share the runtime this copy serves: the copies of the runtime
//! that joined it, and who declared each key.
//!
//! A part that joins brings its static hints. They join the published layout as keys created
//! at run time do: appended to the metadata page, at offsets that every thread's page already
//! has room for. Unlike those keys, they start at their initializers: before an entry is
//! published, its initial bytes are written into the page of every live thread and into the
//! template that new threads' pages are copied from. A part's hints are published all or none,
//! so that BPF never sees half of a part: a key that another part (or the serving copy, or a
//! key created at run time) already has fails the whole part with [`Error::DuplicateKey`] (or
//! [`Error::KeyExists`]), as two statics with one key in one binary do.
//!
//! A part that is unloaded leaves: the serving copy no longer calls it, and its keys stay in
//! the metadata page (entries are never taken back, since BPF programs may have cached their
//! offsets), *orphaned*. Each thread's value stays as it was last written, and BPF keeps
//! finding it. A part that declares an orphaned key again with the same size and kind (the
//! same plugin loaded again) takes it over: every thread's value is set back to the new
//! part's initializer. Any other declaration of it is a duplicate.
//!
//! The registry lives in the serving copy's runtime behind a lock taken only under the
//! connection lock: joining and leaving hold the connection's write lock (no thread sets up or
//! exits meanwhile), a thread's exit reads the parts under the read lock.

use std::collections::HashMap;

use crate::declare::registry::Site;
use crate::error::Error;

/// The token of the serving copy itself, as the owner of its own static hints.
pub const SERVING: u64 = 0;

/// One static hint of a part that joins, as the serving copy keeps it.
#[derive(Debug, Clone)]
pub struct PartHint {
    /// The declaration, copied into the serving copy's memory.
    pub site: &'static Site,
    /// Bytes in a page.
    pub size: usize,
    /// Whether it is consistent (a sequence counter, then the value).
    pub consistent: bool,
    /// The first bytes of every thread's value.
    pub init: Vec<u8>,
}

/// Who declared a key.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    /// The declaration.
    pub site: &'static Site,
    /// Bytes in a page.
    pub size: usize,
    /// Whether it is consistent.
    pub consistent: bool,
    /// The part's token ([`SERVING`] for the serving copy), or `None` once the part left.
    pub part: Option<u64>,
}

/// A part that joined.
#[derive(Debug)]
pub struct Part {
    /// Its token.
    pub token: u64,
    /// Its index: which bit of a thread's [`crate::threads::thread_state::parts_seen`] stands for it
    /// (none from [`SEEN_BITS`] on: such a part is told about every thread).
    pub index: u32,
    /// Told when a thread's page goes away.
    pub forget: extern "C" fn(u32),
    /// What joining answered: its hints' offsets, or why they are not published.
    pub outcome: Result<Vec<u32>, Error>,
}

/// How one hint of a joining part gets its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A new entry, appended.
    New,
    /// The orphaned entry of the same key, at this offset.
    Adopt(usize),
}

/// Parts with an index below this have a bit in each thread's record of the parts that
/// asked for its page.
pub const SEEN_BITS: u32 = 64;

/// The parts, and the owners of the keys they declared.
#[derive(Debug, Default)]
pub struct Parts {
    joined: Vec<Part>,
    owners: HashMap<String, KeyOwner>,
    /// The index the next part gets.
    next_index: u32,
}

impl Parts {
    /// Notes the serving copy's own static hint.
    pub fn own(&mut self, site: &'static Site, size: usize, consistent: bool) {
        self.owners.insert(
            site.key.to_string(),
            KeyOwner {
                site,
                size,
                consistent,
                part: Some(SERVING),
            },
        );
    }

    /// The part with `token`, if it joined.
    pub fn get(&self, token: u64) -> Option<&Part> {
        self.joined.iter().find(|p| p.token == token)
    }

    /// The index the next part to join gets.
    pub fn next_index(&self) -> u32 {
        self.next_index
    }

    /// The `forget` of every part that asked for a page on a thread whose `seen` bits are
    /// given.
    pub fn forgets(&self, seen: u64) -> impl Iterator<Item = extern "C" fn(u32)> + '_ {
        self.joined
            .iter()
            .filter(move |p| p.index >= SEEN_BITS || seen & (1 << p.index) != 0)
            .map(|p| p.forget)
    }

    /// Parts that share the runtime, the serving copy included.
    pub fn count(&self) -> usize {
        self.joined.len() + 1
    }

    /// Decides where `hint`, whose key `published` says is (or is not) in the metadata page,
    /// goes; an error if the key is someone else's.
    pub fn placement(&self, hint: &PartHint, published: Option<usize>) -> Result<Placement, Error> {
        let Some(offset) = published else {
            return Ok(Placement::New);
        };
        let key = hint.site.key;
        match self.owners.get(key) {
            Some(owner)
                if owner.part.is_none()
                    && owner.size == hint.size
                    && owner.consistent == hint.consistent =>
            {
                Ok(Placement::Adopt(offset))
            }
            Some(owner) => Err(Error::DuplicateKey {
                key: key.to_string(),
                first: owner.site,
                second: hint.site,
            }),
            None => Err(Error::KeyExists {
                key: key.to_string(),
            }),
        }
    }

    /// Records a part that joined (with the index [`Parts::next_index`] gave), and the keys it
    /// now owns.
    pub fn add(&mut self, part: Part, hints: &[PartHint]) {
        self.next_index = self.next_index.max(part.index + 1);
        if part.outcome.is_ok() {
            for hint in hints {
                self.owners.insert(
                    hint.site.key.to_string(),
                    KeyOwner {
                        site: hint.site,
                        size: hint.size,
                        consistent: hint.consistent,
                        part: Some(part.token),
                    },
                );
            }
        }
        self.joined.push(part);
    }

    /// Forgets the part with `token`, and orphans its keys.
    pub fn remove(&mut self, token: u64) {
        self.joined.retain(|p| p.token != token);
        for owner in self.owners.values_mut() {
            if owner.part == Some(token) {
                owner.part = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SITE: Site = Site {
        key: "k",
        rust_name: "K",
        type_name: "u32",
        module_path: "m",
        file: "f.rs",
        line: 1,
        column: 1,
    };
    static OTHER: Site = Site {
        key: "k",
        rust_name: "K",
        type_name: "u32",
        module_path: "n",
        file: "g.rs",
        line: 2,
        column: 1,
    };

    extern "C" fn nothing(_: u32) {}

    fn hint(site: &'static Site, size: usize) -> PartHint {
        PartHint {
            site,
            size,
            consistent: false,
            init: vec![1; size],
        }
    }

    #[test]
    fn a_key_is_new_adopted_duplicate_or_taken() {
        let mut parts = Parts::default();
        assert_eq!(parts.placement(&hint(&SITE, 4), None), Ok(Placement::New));
        // Published, but by nobody's static: a key created at run time.
        assert!(matches!(
            parts.placement(&hint(&SITE, 4), Some(16)),
            Err(Error::KeyExists { .. })
        ));
        let part = Part {
            token: 7,
            index: parts.next_index(),
            forget: nothing,
            outcome: Ok(vec![16]),
        };
        parts.add(part, &[hint(&SITE, 4)]);
        assert_eq!(parts.count(), 2);
        // Told about the threads where it asked for a page, only.
        assert_eq!(parts.forgets(0b1).count(), 1);
        assert_eq!(parts.forgets(0b10).count(), 0);
        assert_eq!(parts.next_index(), 1);
        // While the part is there, another declaration is a duplicate naming both sites.
        match parts.placement(&hint(&OTHER, 4), Some(16)) {
            Err(Error::DuplicateKey { first, second, .. }) => {
                assert_eq!((first, second), (&SITE, &OTHER));
            }
            other => panic!("{other:?}"),
        }
        // Once it left, the same size takes the key over; another size is a duplicate.
        parts.remove(7);
        assert_eq!(parts.count(), 1);
        assert_eq!(
            parts.placement(&hint(&OTHER, 4), Some(16)),
            Ok(Placement::Adopt(16))
        );
        assert!(parts.placement(&hint(&OTHER, 8), Some(16)).is_err());
    }
}
