//! The Rust snippets of the user documentation, as doctests: `cargo test -p tld-tests --doc`
//! compiles every ```` ```rust ```` block of `README.md` and of the guides in `docs/`, and runs
//! those not marked `no_run`. The `docs` integration test checks that every guide with a Rust
//! block is included here, so a new guide cannot go untested.
//!
//! The harness lives in this crate, which is never published, rather than in `tld-runtime`,
//! whose package cannot reach files outside its own directory.

/// `README.md`.
#[doc = include_str!("../../README.md")]
pub struct Readme;

/// `docs/rust.md`.
#[doc = include_str!("../../docs/rust.md")]
pub struct RustGuide;

/// `docs/bpf.md`.
#[doc = include_str!("../../docs/bpf.md")]
pub struct BpfGuide;

/// `docs/scheduling.md`.
#[doc = include_str!("../../docs/scheduling.md")]
pub struct SchedulingGuide;

/// `docs/operations.md`.
#[doc = include_str!("../../docs/operations.md")]
pub struct OperationsGuide;
