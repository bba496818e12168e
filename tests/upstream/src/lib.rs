//! Code we did not write, fetched at test time, for the tests that check tld against it.
//!
//! The Linux kernel's BPF selftests carry a task local data library of their own: a C library
//! for user space and a BPF header, with a test of each. Our compatibility tests build and run
//! them unmodified against tld: the kernel's BPF test program reading hints that tld-runtime
//! publishes, and C programs on the kernel's library publishing hints that our header and our
//! inspector read. They are GPL test code, so they are never copied into the repository:
//! [`mod@selftests`] fetches them from Debian's `linux-source-7.N` package through a private apt
//! configuration ([`apt`]), and [`build`] compiles them.
//!
//! The VM runner (`tld-vm`) fetches its kernel through the same [`apt`] module.
#![warn(missing_docs)]

pub mod apt;
pub mod build;
pub mod selftests;

pub use selftests::{selftests, Selftests};

use std::fmt;

/// Why something could not be fetched or built.
#[derive(Debug)]
pub enum Error {
    /// Something needed is missing on this machine (apt, the network, a compiler): a skip,
    /// unless `TLD_REQUIRE_BPF=1`.
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

/// The start of a line that a kernel test (`tests/tests/`) prints for people to read even when
/// it passes (counts, timings): the VM suite, which shows a passing test's output only in this
/// form, echoes these lines on the console.
pub const REPORT_PREFIX: &str = "tld-report: ";

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, Error>;

/// Whether missing capabilities must fail rather than skip (`TLD_REQUIRE_BPF=1`, as in CI).
pub fn required() -> bool {
    std::env::var("TLD_REQUIRE_BPF").is_ok_and(|v| v == "1")
}

/// The workspace's `target/` directory (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            // This crate is tests/upstream/ in the workspace.
            let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            let workspace = manifest.ancestors().nth(2).unwrap_or(manifest);
            workspace.join("target")
        })
}

/// Where downloads are cached: `$TLD_VM_CACHE`, else `tld-vm/` in the target directory (shared
/// with the VM runner, which caches its kernel there).
pub fn cache_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("TLD_VM_CACHE").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    target_dir().join("tld-vm")
}

/// Runs `cmd`, returning its stdout, or a [`Error::Failed`] with its stderr.
pub fn run_output(cmd: &mut std::process::Command) -> Result<String> {
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
pub fn on_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The last `n` lines of `text` (a console's carriage returns dropped).
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
