//! The rules of the task local data format that tld's crates share, each written once.
//!
//! - [`format`](mod@format): the numbers of the pages user space and BPF share, and the two generations of
//!   the `tld_data_map` value;
//! - [`key`]: what a key (and any name in the generated C header) may be;
//! - [`shape`]: which map values mean which generation, and how a wrong one is described;
//! - [`paths`]: the default pins and the environment variables that change them;
//! - [`page`]: the system's page size;
//! - [`schema`]: the hints schema, written next to the generated header and read by tools;
//! - [`fs`]: writing generated files only when their contents change.
//!
//! `tld-runtime` re-exports what applications need (its `wire` module is [`format`](mod@format)); the
//! procedural macros check keys with [`key`] at compile time, and the runtime with the same
//! functions at run time.
#![warn(missing_docs)]

pub mod format;
pub mod fs;
mod json;
pub mod key;
pub mod page;
pub mod paths;
pub mod schema;
pub mod shape;

pub use format::Generation;
pub use page::page_size;
