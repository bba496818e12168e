//! What tld-cli's integration tests share, one module per concern; each test imports the
//! modules it uses:
//! - [`hints`]: the static hints of the `app` process, and where they lie in its pages;
//! - [`roles`]: the processes under test (this test binary, re-run with a role) and the
//!   children that play them;
//! - [`bpf`]: the BPF fixture, and skipping where it cannot load;
//! - [`run`]: running the `tld` binary.
//!
//! A test binary that declares no hint of its own but needs the `app` hints in its schema names
//! this crate (`use tld_cli_test_support as _;`), so that they are linked in.
#![warn(missing_docs)]

pub mod bpf;
pub mod hints;
pub mod roles;
pub mod run;
