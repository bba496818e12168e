//! Runs `scx_tld` (the example sched_ext scheduler) and a subset of the kernel tests in a Linux
//! VM whose kernel has sched_ext, for `make vm-test`, `make test` and `make demo-sched`.
//!
//! The host side, used by the `tld-vm` binary:
//! - [`kernel`] fetches and caches a Debian cloud kernel with sched_ext, through a private apt
//!   configuration that never touches the system's ([`tld_upstream::apt`]);
//! - [`artifacts`] builds the programs the guest runs, with cargo;
//! - [`initramfs`] packs busybox, those programs and their shared libraries into an initramfs;
//! - [`qemu`] boots it (KVM if it works, TCG otherwise) under a hard timeout, and always kills a
//!   guest that hangs;
//! - [`console`] reads the results the guest prints on its serial console.
//!
//! The guest side, used by the `tld-vm-guest` and `tld-vm-other-layout` binaries, is in
//! [`guest`].
#![warn(missing_docs)]

pub mod artifacts;
pub mod console;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod qemu;

use std::fmt;

/// Why a VM run could not happen or did not succeed.
#[derive(Debug)]
pub enum Error {
    /// Something the VM needs is missing on this machine (qemu, cpio, busybox, the kernel
    /// package): a skip, unless `TLD_REQUIRE_BPF=1`.
    Unavailable(String),
    /// Something went wrong that should not have: always a failure.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(why) | Error::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, Error>;

pub use tld_upstream::{cache_dir, required};
pub(crate) use tld_upstream::{on_path, run_output};

impl From<tld_upstream::Error> for Error {
    fn from(e: tld_upstream::Error) -> Error {
        match e {
            tld_upstream::Error::Unavailable(why) => Error::Unavailable(why),
            tld_upstream::Error::Failed(why) => Error::Failed(why),
        }
    }
}

/// The workspace this crate belongs to.
pub fn workspace_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("vm/ is inside the workspace")
        .to_path_buf()
}
