//! Fetches and caches a kernel with sched_ext: the `vmlinuz` of Debian's newest
//! `linux-binary-*-cloud-amd64` package in `trixie-backports`.
//!
//! The package comes through `apt-get download` under a private apt configuration (its own
//! sources list, lists and cache directories under the cache directory), from the same mirror
//! that the system's Debian sources name. The system's apt configuration is never changed.
//!
//! - `TLD_VM_KERNEL=<package>` pins a package, e.g. `linux-binary-7.3.4+deb13-cloud-amd64`.
//! - Without it, a kernel already in the cache is used with no network access; `tld-vm kernel
//!   --refresh` looks for a newer one.
//! - `TLD_VM_DEBIAN_MIRROR=<url>` overrides the mirror (the URL of a Debian archive, the
//!   directory that holds `dists/`); see [`tld_upstream::apt`].

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Error, Result};
use tld_upstream::apt::{find_file, version_key, Apt, SUITE};

/// Pins the kernel package.
pub const PIN_ENV: &str = "TLD_VM_KERNEL";

/// A kernel ready to boot.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The Debian package it came from.
    pub package: String,
    /// Its `vmlinuz`.
    pub vmlinuz: PathBuf,
}

/// The kernel to boot: the pinned one, else a cached one, else the newest one available.
/// `refresh` looks for a newer one even when one is cached.
pub fn obtain(cache: &Path, refresh: bool) -> Result<Kernel> {
    let kernels = cache.join("kernels");
    if let Some(pkg) = std::env::var(PIN_ENV).ok().filter(|p| !p.is_empty()) {
        if !is_kernel_package(&pkg) {
            return Err(Error::Failed(format!(
                "{PIN_ENV}={pkg} is not a package name like linux-binary-7.3.4+deb13-cloud-amd64"
            )));
        }
        if let Some(k) = cached(&kernels, &pkg) {
            return Ok(k);
        }
        let apt = Apt::new(cache, "the VM's kernel")?;
        apt.update()?;
        return download_kernel(&apt, &pkg, &kernels);
    }
    if !refresh {
        if let Some(k) = newest_cached(&kernels) {
            return Ok(k);
        }
    }
    let apt = Apt::new(cache, "the VM's kernel")?;
    apt.update()?;
    let pkg = newest_kernel(&apt)?;
    if let Some(k) = cached(&kernels, &pkg) {
        return Ok(k);
    }
    download_kernel(&apt, &pkg, &kernels)
}

fn cached(kernels: &Path, pkg: &str) -> Option<Kernel> {
    let vmlinuz = kernels.join(pkg).join("vmlinuz");
    vmlinuz.is_file().then(|| Kernel {
        package: pkg.to_string(),
        vmlinuz,
    })
}

fn newest_cached(kernels: &Path) -> Option<Kernel> {
    let mut names: Vec<String> = fs::read_dir(kernels)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_kernel_package(n))
        .collect();
    names.sort_by_key(|n| version_key(n));
    names.iter().rev().find_map(|n| cached(kernels, n))
}

/// `linux-binary-<version>-cloud-amd64`, where the version starts with a digit (this leaves
/// out `linux-binary-unsigned-*`).
pub fn is_kernel_package(name: &str) -> bool {
    name.strip_prefix("linux-binary-")
        .and_then(|rest| rest.strip_suffix("-cloud-amd64"))
        .is_some_and(|v| {
            v.starts_with(|c: char| c.is_ascii_digit())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.~-".contains(c))
        })
}

/// Downloads kernel package `pkg` and caches its `vmlinuz` under `kernels/<pkg>/`.
fn download_kernel(apt: &Apt, pkg: &str, kernels: &Path) -> Result<Kernel> {
    // Only vmlinuz is needed: the initramfs carries everything else.
    let work = apt.fetch(pkg, &["*/vmlinuz"])?;
    let found = find_file(&work, "vmlinuz")
        .ok_or_else(|| Error::Failed(format!("{pkg} holds no vmlinuz")))?;
    let dest = kernels.join(pkg);
    fs::create_dir_all(&dest).map_err(|e| Error::Failed(format!("{}: {e}", dest.display())))?;
    fs::rename(&found, dest.join("vmlinuz"))
        .map_err(|e| Error::Failed(format!("caching vmlinuz: {e}")))?;
    let _ = fs::remove_dir_all(&work);
    Ok(Kernel {
        package: pkg.to_string(),
        vmlinuz: dest.join("vmlinuz"),
    })
}

/// The newest kernel package of the suite.
fn newest_kernel(apt: &Apt) -> Result<String> {
    apt.packages("linux-binary-", is_kernel_package)?
        .pop()
        .ok_or_else(|| {
            Error::Unavailable(format!(
                "{SUITE} has no linux-binary-*-cloud-amd64 package; pin one with {PIN_ENV}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_newest_cloud_kernel() {
        let mut names = [
            "linux-binary-7.2.12+deb13-cloud-amd64",
            "linux-binary-7.3.4+deb13-cloud-amd64",
            "linux-binary-7.2.6+deb13-cloud-amd64",
        ];
        assert!(names.iter().all(|n| is_kernel_package(n)));
        names.sort_by_key(|n| version_key(n));
        assert_eq!(names.last(), Some(&"linux-binary-7.3.4+deb13-cloud-amd64"));
        assert!(!is_kernel_package(
            "linux-binary-unsigned-7.3.4+deb13-cloud-amd64"
        ));
        assert!(!is_kernel_package("linux-binary-7.3.4+deb13-amd64"));
        assert!(!is_kernel_package("linux-binary-7.3.4 x-cloud-amd64"));
    }
}
