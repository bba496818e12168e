//! The Linux kernel's own task local data library and test program, fetched at test time.
//!
//! Linux 7.x's BPF selftests hold a C library (`prog_tests/task_local_data.h`), its BPF header
//! (`progs/task_local_data.bpf.h`), a BPF test program (`progs/test_task_local_data.c`) and the
//! user-space test (`prog_tests/test_task_local_data.c`). The compatibility tests build and run
//! them unmodified against tld, so that code we did not write checks that we speak the kernel's
//! format. They are GPL test code: they are read and compiled here, at test time, and never
//! copied into the repository.
//!
//! They come from Debian's `linux-source-7.N` package in `trixie-backports` (about 160 MB,
//! downloaded once), through the same private apt configuration as the VM's kernel
//! ([`crate::apt`]); only the four files are kept, under `<cache>/sources/<package>/`, where
//! the cache is [`crate::cache_dir`].
//!
//! - `TLD_LINUX_SOURCE=<package>` pins the package, e.g. `linux-source-7.3`.
//! - Without it, a package already in the cache is used with no network access, else the
//!   newest `linux-source-7.N` is fetched.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apt::{version_key, Apt, SUITE};
use crate::{run_output, Error, Result};

/// Pins the source package.
pub const PIN_ENV: &str = "TLD_LINUX_SOURCE";

/// Where the files live in the kernel's tree.
const SELFTESTS: &str = "tools/testing/selftests/bpf";

/// The four files, relative to [`SELFTESTS`].
const FILES: [&str; 4] = [
    "progs/task_local_data.bpf.h",
    "progs/test_task_local_data.c",
    "prog_tests/task_local_data.h",
    "prog_tests/test_task_local_data.c",
];

/// The kernel's task local data selftests, extracted from one source package.
#[derive(Clone, Debug)]
pub struct Selftests {
    /// The Debian package they came from, e.g. `linux-source-7.3`.
    pub package: String,
    /// The directory that stands for `tools/testing/selftests/bpf` of the kernel's tree.
    pub dir: PathBuf,
}

impl Selftests {
    /// The BPF side of the kernel's library: `progs/task_local_data.bpf.h`.
    pub fn bpf_header(&self) -> PathBuf {
        self.dir.join(FILES[0])
    }

    /// The kernel's BPF test program: `progs/test_task_local_data.c`.
    pub fn bpf_program(&self) -> PathBuf {
        self.dir.join(FILES[1])
    }

    /// The user-space C library: `prog_tests/task_local_data.h`.
    pub fn c_library(&self) -> PathBuf {
        self.dir.join(FILES[2])
    }

    /// The kernel's user-space test: `prog_tests/test_task_local_data.c`.
    pub fn c_test(&self) -> PathBuf {
        self.dir.join(FILES[3])
    }
}

/// `linux-source-<major>.<minor>` with a major version of 7 or more: the generation whose map
/// value holds `start`.
pub fn is_source_package(name: &str) -> bool {
    let Some(version) = name.strip_prefix("linux-source-") else {
        return false;
    };
    let mut parts = version.split('.');
    let (Some(major), Some(minor), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    major.parse::<u32>().is_ok_and(|m| m >= 7) && minor.parse::<u32>().is_ok()
}

/// The selftests of the pinned package, else of one in the cache, else of the newest one.
///
/// A download that cannot happen (no apt, no network) is [`Error::Unavailable`]: the caller
/// says SKIPPED, or fails under `TLD_REQUIRE_BPF=1`.
pub fn selftests(cache: &Path) -> Result<Selftests> {
    let root = cache.join("sources");
    fs::create_dir_all(&root).map_err(|e| Error::Failed(format!("{}: {e}", root.display())))?;
    // One fetch at a time: test binaries and the VM runner may ask at once.
    let _lock = Lock::take(&root.join(".lock"))?;
    if let Some(pkg) = std::env::var(PIN_ENV).ok().filter(|p| !p.is_empty()) {
        if !is_source_package(&pkg) {
            return Err(Error::Failed(format!(
                "{PIN_ENV}={pkg} is not a package name like linux-source-7.3"
            )));
        }
        if let Some(found) = cached(&root, &pkg) {
            return Ok(found);
        }
        let apt = Apt::new(cache, "the kernel's selftests")?;
        apt.update()?;
        return download(&apt, &pkg, &root);
    }
    if let Some(found) = newest_cached(&root) {
        return Ok(found);
    }
    let apt = Apt::new(cache, "the kernel's selftests")?;
    apt.update()?;
    let pkg = apt
        .packages("linux-source-", is_source_package)?
        .pop()
        .ok_or_else(|| {
            Error::Unavailable(format!(
                "{SUITE} has no linux-source-7.N package; pin one with {PIN_ENV}"
            ))
        })?;
    download(&apt, &pkg, &root)
}

fn cached(root: &Path, pkg: &str) -> Option<Selftests> {
    let found = Selftests {
        package: pkg.to_string(),
        dir: root.join(pkg).join(SELFTESTS),
    };
    FILES
        .iter()
        .all(|f| found.dir.join(f).is_file())
        .then_some(found)
}

fn newest_cached(root: &Path) -> Option<Selftests> {
    let mut names: Vec<String> = fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_source_package(n))
        .collect();
    names.sort_by_key(|n| version_key(n));
    names.iter().rev().find_map(|n| cached(root, n))
}

/// Downloads `pkg`, unpacks the kernel's tarball from it, takes the four files, and deletes
/// everything else.
fn download(apt: &Apt, pkg: &str, root: &Path) -> Result<Selftests> {
    let work = apt.fetch(pkg, &["*/linux-source-*.tar.xz"])?;
    let tarball = find_tarball(&work)
        .ok_or_else(|| Error::Failed(format!("{pkg} holds no linux-source-*.tar.xz")))?;
    let dest = root.join(pkg);
    let _ = fs::remove_dir_all(&dest);
    fs::create_dir_all(&dest).map_err(|e| Error::Failed(format!("{}: {e}", dest.display())))?;
    // The tarball's members start with its top directory (linux-source-7.N/); it is dropped.
    let mut tar = Command::new("tar");
    tar.arg("-xJf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dest)
        .args(["--strip-components=1", "--wildcards"]);
    for f in FILES {
        tar.arg(format!("*/{SELFTESTS}/{f}"));
    }
    let result = run_output(&mut tar);
    let _ = fs::remove_dir_all(&work);
    result?;
    cached(root, pkg).ok_or_else(|| {
        Error::Failed(format!(
            "{pkg} lacks one of {} under {SELFTESTS}",
            FILES.join(", ")
        ))
    })
}

fn find_tarball(dir: &Path) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_tarball(&path) {
                return Some(found);
            }
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("linux-source-") && n.ends_with(".tar.xz"))
        {
            return Some(path);
        }
    }
    None
}

/// An exclusive `flock` on a file, held until dropped (closing the file lets it go).
struct Lock {
    _file: fs::File,
}

impl Lock {
    fn take(path: &Path) -> Result<Lock> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::Failed(format!("{}: {e}", path.display())))?;
        // SAFETY: flock on a file descriptor that `file` owns and keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::Failed(format!(
                "locking {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_packages_of_the_7x_generation() {
        assert!(is_source_package("linux-source-7.3"));
        assert!(is_source_package("linux-source-8.0"));
        assert!(!is_source_package("linux-source"));
        assert!(!is_source_package("linux-source-6.12"));
        assert!(!is_source_package("linux-source-7.3.4"));
        assert!(!is_source_package("linux-source-7.x"));
    }
}
