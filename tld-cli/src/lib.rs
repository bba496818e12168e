//! The `tld` inspector: every thread's live task local data hints, decoded.
//!
//! This library is the implementation of the `tld` binary (see the crate's README for the
//! commands). Its modules are public for the binary and its tests; they are not a stable API.
//! The stable interfaces are the command line, its exit statuses, and the `--json` document
//! described in [`report`].
//!
//! How it works: [`map`] opens the chosen `tld_data_map` read-only and checks its layout;
//! [`iter`] loads a BPF task iterator against it, which copies every registered task's data
//! page and metadata page in the kernel; [`decode`] reads each task's keys out of the copies,
//! treating every byte as hostile; [`value`] decodes each value with its type from a
//! [`schema`] file, if any, and [`consistent`] shows a consistent hint only when it was copied
//! whole; [`render`], [`report`] and [`watch`] print.
#![warn(missing_docs)]

pub mod cli;
pub mod commands;
pub mod consistent;
pub mod decode;
pub mod error;
pub mod iter;
pub mod map;
pub mod maps;
pub mod privilege;
pub mod render;
pub mod report;
pub mod schema;
pub mod sys;
pub mod value;
pub mod watch;

pub use commands::run;
pub use error::Error;
