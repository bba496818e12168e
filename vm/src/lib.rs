//! Runs `scx_tld` (the example sched_ext scheduler) and a subset of the kernel tests in a Linux
//! VM whose kernel has sched_ext, for `make vm-test`, `make test` and `make demo-sched`.
//!
//! The host side, used by the `tld-vm` binary:
//! - [`kernel`] fetches and caches a Debian cloud kernel with sched_ext, through a private apt
//!   configuration that never touches the system's ([`apt`]);
//! - [`sources`] fetches the kernel's own task local data selftests in the same way, for the
//!   compatibility tests that build them at test time;
//! - [`artifacts`] builds the programs the guest runs, with cargo;
//! - [`initramfs`] packs busybox, those programs and their shared libraries into an initramfs;
//! - [`qemu`] boots it (KVM if it works, TCG otherwise) under a hard timeout, and always kills a
//!   guest that hangs;
//! - [`console`] reads the results the guest prints on its serial console.
//!
//! The guest side, used by the `tld-vm-guest` and `tld-vm-other-layout` binaries, is in
//! [`guest`].
#![warn(missing_docs)]

pub mod apt;
pub mod artifacts;
pub mod console;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod qemu;
pub mod sources;

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

/// Whether missing capabilities must fail rather than skip (`TLD_REQUIRE_BPF=1`, as in CI).
pub fn required() -> bool {
    std::env::var("TLD_REQUIRE_BPF").is_ok_and(|v| v == "1")
}

/// The workspace this crate belongs to.
pub fn workspace_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("vm/ is inside the workspace")
        .to_path_buf()
}

/// Where downloads and VM images go: `$TLD_VM_CACHE`, else `tld-vm/` in cargo's target
/// directory.
pub fn cache_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("TLD_VM_CACHE").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"));
    target.join("tld-vm")
}

/// Runs `cmd`, returning its stdout, or a [`Error::Failed`] with its stderr.
pub(crate) fn run_output(cmd: &mut std::process::Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Failed(format!("running {shown}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `program` is on `PATH`.
pub(crate) fn on_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
