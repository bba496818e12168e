//! The registry: every `#[task_local_data]` static in the binary, collected through linkme.
//!
//! The attribute macro adds one `&'static dyn Hint` per static to [`TLD_HINTS`]. The runtime
//! reads the slice once, on first use, sorts it by key (link order is unspecified) and hands it
//! to [`crate::page::layout`].

use std::fmt;

use crate::declare::c_type::CType;

/// Where and how a hint was declared. Built by the attribute macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// The key BPF programs look the hint up by.
    pub key: &'static str,
    /// The static's Rust name.
    pub rust_name: &'static str,
    /// The static's type as written in the source.
    pub type_name: &'static str,
    /// `module_path!()` at the declaration.
    pub module_path: &'static str,
    /// `file!()` at the declaration.
    pub file: &'static str,
    /// `line!()` at the declaration.
    pub line: u32,
    /// `column!()` at the declaration.
    pub column: u32,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}::{} at {}:{}:{}",
            self.module_path, self.rust_name, self.file, self.line, self.column
        )
    }
}

/// A hint as the runtime sees it, with its value type erased.
///
/// Implemented only by [`crate::TaskLocal`] and [`crate::ConsistentTaskLocal`]: the trait is
/// sealed, so no other type can claim to be a hint, and only the layout can give a hint its place
/// in a thread's page (the method that does so takes a `LayoutToken`, which nothing outside this
/// crate can make). Not part of the public API.
///
/// # Safety
/// An implementation promises that `size`, `align` and `init_bytes` describe what it stores
/// exactly (the value, or for a consistent hint its counter and value), that `init_bytes` has at
/// most `size` bytes, and that the hint reads and writes a thread's page only at the offset the
/// layout gave it, for at most `size` bytes.
pub unsafe trait Hint: Sync + 'static + sealed::Sealed {
    /// The declaration.
    fn site(&self) -> &Site;
    /// The bytes the hint takes in a page, as published in the metadata: `size_of` the value,
    /// or for a consistent hint [`wire::consistent_size`](crate::page::wire::consistent_size) of it.
    fn size(&self) -> usize;
    /// The alignment the hint needs in a page.
    fn align(&self) -> usize;
    /// The C description of the value's type (for a consistent hint, of each of the two copies
    /// that follow the sequence word).
    fn c_type(&self) -> &'static CType;
    /// Whether the value is kept in two copies under a sequence word
    /// (`#[task_local_data(consistent)]`): the entry is then a `u64` word followed by the copies.
    fn consistent(&self) -> bool {
        false
    }
    /// The initial bytes of the hint's entry, copied into every new thread's block; the rest of
    /// `size` bytes start at zero.
    fn init_bytes(&self) -> &[u8];
    /// Gives the hint its offset in a thread's block. Only the layout can call it.
    #[doc(hidden)]
    fn place(&self, token: LayoutToken, offset: u32);
}

/// Proof that the caller is this crate's layout: the only way to call [`Hint::place`].
#[derive(Debug, Clone, Copy)]
pub struct LayoutToken(());

impl LayoutToken {
    /// Made only by the layout.
    pub(crate) const fn new() -> LayoutToken {
        LayoutToken(())
    }
}

pub(crate) mod sealed {
    /// Only this crate's types can be hints.
    pub trait Sealed {}
}

/// Every hint linked into this binary (or shared object).
///
/// The name is versioned and unique to this project, so two incompatible copies of the runtime
/// in one binary fail to link instead of sharing a slice.
#[linkme::distributed_slice]
pub static TLD_HINTS_V0_1: [&'static dyn Hint];

/// The hints of this binary, sorted by key and then by declaration site.
pub fn collect() -> Vec<&'static dyn Hint> {
    let mut hints: Vec<&'static dyn Hint> = TLD_HINTS_V0_1.iter().copied().collect();
    hints.sort_by(|a, b| {
        let (a, b) = (a.site(), b.site());
        (a.key, a.file, a.line, a.column).cmp(&(b.key, b.file, b.line, b.column))
    });
    hints
}
