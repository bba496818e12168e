//! Procedural macros for tld (`tld-runtime`), task local data for Rust and BPF.
//!
//! Do not depend on this crate directly: use the macros through `tld_runtime`, which re-exports
//! them as `tld_runtime::task_local_data` and `tld_runtime::TldType`. The code they generate
//! names items under `::tld_runtime`, so a crate that uses them must depend on `tld-runtime`.
//!
//! - `#[task_local_data]` turns `static NAME: T = init;` into a `tld_runtime::TaskLocal<T>` and
//!   registers it, under its key, for the runtime and the C header generator;
//!   `#[task_local_data(consistent)]` into a `tld_runtime::ConsistentTaskLocal<T>`, whose value is
//!   kept in two copies under a sequence word.
//! - `#[derive(TldType)]` implements `tld_runtime::TldType` for a `#[repr(C)]` struct of plain
//!   data, after checking at compile time that its layout can be shared with C and BPF.
#![warn(missing_docs)]

mod derive;
mod errors;
mod task_local_data;

use proc_macro::TokenStream;

/// Turns `static NAME: T = init;` into a `tld_runtime::TaskLocal<T>` that BPF programs find by
/// key.
///
/// Use it as `tld_runtime::task_local_data`. The key is `NAME` in lower case, or the one given
/// with `#[task_local_data(key = "...")]`; it must be a C identifier of at most 61 bytes that is
/// not a C keyword. `T` must implement `tld_runtime::TldType` and have a size from 1 to 4088
/// bytes and an alignment of at most 8. Attributes, doc comments and visibility carry over.
///
/// `#[task_local_data(consistent)]` (with or without `key = "..."`) makes it a
/// `tld_runtime::ConsistentTaskLocal<T>` instead: the value is kept in two copies under a
/// sequence word in the page, so that no reader ever sees half of an update and none waits for a
/// writer that was preempted; `T` may then have 2040 bytes at most.
#[proc_macro_attribute]
pub fn task_local_data(args: TokenStream, input: TokenStream) -> TokenStream {
    task_local_data::expand_attribute(args.into(), input.into()).into()
}

/// Implements `tld_runtime::TldType` for a `#[repr(C)]` or `#[repr(transparent)]` struct of
/// plain-data fields.
///
/// Use it as `tld_runtime::TldType`. The struct must also be `Clone + Copy`, and must not also
/// derive or implement `bytemuck::Pod` or `bytemuck::Zeroable`: this derive implements both,
/// after checking at compile time that every field is `Pod + TldType` and that the struct has no
/// padding. Fields of type `bool`, `char`, references, pointers and the like are rejected because
/// a BPF program may write any bytes into a hint.
#[proc_macro_derive(TldType)]
pub fn tld_type(input: TokenStream) -> TokenStream {
    derive::expand_derive(input.into()).into()
}
