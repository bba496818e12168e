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
//!   directory that holds `dists/`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{on_path, run_output, Error, Result};

/// Pins the kernel package.
pub const PIN_ENV: &str = "TLD_VM_KERNEL";
/// Overrides the Debian mirror.
pub const MIRROR_ENV: &str = "TLD_VM_DEBIAN_MIRROR";
/// The suite that serves Linux 7.x to Debian 13.
pub const SUITE: &str = "trixie-backports";
/// The keyring Debian's archive is signed with.
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

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
        let apt = Apt::new(cache)?;
        apt.update()?;
        return apt.download_kernel(&pkg, &kernels);
    }
    if !refresh {
        if let Some(k) = newest_cached(&kernels) {
            return Ok(k);
        }
    }
    let apt = Apt::new(cache)?;
    apt.update()?;
    let pkg = apt.newest_kernel()?;
    if let Some(k) = cached(&kernels, &pkg) {
        return Ok(k);
    }
    apt.download_kernel(&pkg, &kernels)
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

/// Orders package names by the numbers in their version: 7.2.12 < 7.3.4.
pub fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The Debian archive that the system's apt sources name (`$TLD_VM_DEBIAN_MIRROR` wins).
pub fn debian_mirror() -> Result<String> {
    if let Some(m) = std::env::var(MIRROR_ENV).ok().filter(|m| !m.is_empty()) {
        return Ok(m.trim_end_matches('/').to_string());
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let name = file.to_string_lossy().into_owned();
        if !(name.ends_with(".list") || name.ends_with(".sources")) {
            continue;
        }
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        if let Some(uri) = mirror_in(&text) {
            return Ok(uri);
        }
    }
    Err(Error::Unavailable(format!(
        "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/ (a URI \
         ending in /debian); set {MIRROR_ENV} to one"
    )))
}

/// The first Debian archive URI in a sources file, one-line (`deb URI suite ...`) or deb822
/// (`URIs: ...`) format.
pub fn mirror_in(text: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let uris: Vec<&str> = if let Some(rest) = line.strip_prefix("URIs:") {
            rest.split_whitespace().collect()
        } else if line.starts_with("deb ") {
            let mut words = line.split_whitespace().skip(1).peekable();
            // Options: `[arch=amd64 signed-by=...]`, possibly over several words.
            if words.peek().is_some_and(|w| w.starts_with('[')) {
                for w in words.by_ref() {
                    if w.ends_with(']') {
                        break;
                    }
                }
            }
            words.take(1).collect()
        } else {
            continue;
        };
        for uri in uris {
            let uri = uri.trim_end_matches('/');
            if (uri.starts_with("http://") || uri.starts_with("https://"))
                && uri.ends_with("/debian")
            {
                return Some(uri.to_string());
            }
        }
    }
    None
}

/// apt-get and apt-cache with a configuration of their own, under `<cache>/apt`.
struct Apt {
    dir: PathBuf,
    mirror: String,
    options: Vec<String>,
}

impl Apt {
    fn new(cache: &Path) -> Result<Apt> {
        for tool in ["apt-get", "apt-cache", "dpkg-deb", "tar"] {
            if on_path(tool).is_none() {
                return Err(Error::Unavailable(format!(
                    "{tool} is not installed: fetching the VM's kernel needs apt and dpkg \
                     (a Debian or Ubuntu host), or put a kernel in {}/kernels/<package>/vmlinuz",
                    cache.display()
                )));
            }
        }
        let mirror = debian_mirror()?;
        let dir = cache.join("apt");
        for sub in ["lists/partial", "cache/archives/partial", "download"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(|e| Error::Failed(format!("creating {}: {e}", dir.display())))?;
        }
        let signed = if Path::new(KEYRING).exists() {
            format!("[signed-by={KEYRING}] ")
        } else {
            String::new()
        };
        let sources = dir.join("sources.list");
        fs::write(&sources, format!("deb {signed}{mirror} {SUITE} main\n"))
            .map_err(|e| Error::Failed(format!("writing {}: {e}", sources.display())))?;
        let options = [
            format!("Dir::Etc::sourcelist={}", sources.display()),
            "Dir::Etc::sourceparts=-".to_string(),
            format!("Dir::State::Lists={}", dir.join("lists").display()),
            format!("Dir::Cache={}", dir.join("cache").display()),
            "Dir::State::status=/dev/null".to_string(),
            // Downloads go to a directory the unprivileged _apt user may not write.
            "APT::Sandbox::User=root".to_string(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect();
        Ok(Apt {
            dir,
            mirror,
            options,
        })
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.args(&self.options);
        cmd
    }

    fn update(&self) -> Result<()> {
        // --error-on=any: without it, apt-get update exits 0 when it could not fetch anything.
        let out = self
            .command("apt-get")
            .args(["-q", "--error-on=any", "update"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::Failed(format!("running apt-get: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr);
        Err(Error::Unavailable(format!(
            "cannot read the package lists of {SUITE} from {}: {}\n(the VM's kernel comes from \
             there; set {MIRROR_ENV} to another Debian mirror if this one is unreachable)",
            self.mirror,
            crate::console::tail(said.trim(), 3)
        )))
    }

    fn newest_kernel(&self) -> Result<String> {
        let names = run_output(
            self.command("apt-cache")
                .args(["pkgnames", "linux-binary-"]),
        )?;
        let mut names: Vec<&str> = names.lines().filter(|n| is_kernel_package(n)).collect();
        names.sort_by_key(|n| version_key(n));
        names.last().map(|n| n.to_string()).ok_or_else(|| {
            Error::Unavailable(format!(
                "{SUITE} has no linux-binary-*-cloud-amd64 package; pin one with {PIN_ENV}"
            ))
        })
    }

    fn download_kernel(&self, pkg: &str, kernels: &Path) -> Result<Kernel> {
        let work = self.dir.join("download");
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).map_err(|e| Error::Failed(format!("{}: {e}", work.display())))?;
        eprintln!("tld-vm: downloading {pkg} from {SUITE}");
        run_output(
            self.command("apt-get")
                .current_dir(&work)
                .args(["-q", "download", pkg]),
        )
        .map_err(|e| Error::Unavailable(format!("cannot download {pkg}: {e}")))?;
        let deb = fs::read_dir(&work)
            .ok()
            .and_then(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "deb"))
            })
            .ok_or_else(|| Error::Failed(format!("apt-get download {pkg} left no .deb")))?;
        // Only vmlinuz is needed: the initramfs carries everything else.
        let script = format!(
            "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards '*/vmlinuz'",
            deb.display(),
            work.display()
        );
        run_output(Command::new("sh").args(["-c", &script]))?;
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
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
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

    #[test]
    fn finds_the_mirror_in_both_source_formats() {
        let deb822 = "Types: deb\n# http://snapshot.example/debian\nURIs: http://mirror.example/debian\n\
                      Suites: bookworm\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let one_line = "# deb http://old.example/debian sid main\n\
                        deb [arch=amd64 signed-by=/k.gpg] https://m.example/debian/ bookworm main\n";
        assert_eq!(
            mirror_in(one_line).as_deref(),
            Some("https://m.example/debian")
        );
        assert_eq!(
            mirror_in("deb https://other.example/apt stable main\n"),
            None
        );
    }
}
