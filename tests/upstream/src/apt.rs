//! Debian packages from `trixie-backports`, fetched without touching the system's apt
//! configuration: `apt-get` and `apt-cache` run with a sources list, package lists and a cache
//! of their own under the cache directory, against the mirror that the system's Debian sources
//! name (`TLD_VM_DEBIAN_MIRROR` overrides it).
//!
//! The kernel's own test sources ([`mod@crate::selftests`]) come this way, and so does the VM
//! runner's kernel.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{on_path, run_output, tail, Error, Result};

/// Overrides the Debian mirror.
pub const MIRROR_ENV: &str = "TLD_VM_DEBIAN_MIRROR";
/// The suite that serves Linux 7.x to Debian 13.
pub const SUITE: &str = "trixie-backports";
/// The keyring Debian's archive is signed with.
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

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

/// Orders package names by the numbers in their version: 7.2.12 < 7.3.4.
pub fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// apt-get and apt-cache with a configuration of their own, under `<cache>/apt`.
pub struct Apt {
    dir: PathBuf,
    mirror: String,
    options: Vec<String>,
}

impl Apt {
    /// Sets up the private configuration; `what` says, in an error, what the package was for.
    pub fn new(cache: &Path, what: &str) -> Result<Apt> {
        for tool in ["apt-get", "apt-cache", "dpkg-deb", "tar"] {
            if on_path(tool).is_none() {
                return Err(Error::Unavailable(format!(
                    "{tool} is not installed: fetching {what} needs apt and dpkg (a Debian or \
                     Ubuntu host)"
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

    /// Reads the suite's package lists.
    pub fn update(&self) -> Result<()> {
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
            "cannot read the package lists of {SUITE} from {}: {}\n(set {MIRROR_ENV} to another \
             Debian mirror if this one is unreachable)",
            self.mirror,
            tail(said.trim(), 3)
        )))
    }

    /// The package names that start with `prefix`, newest version last, that `keep` accepts.
    pub fn packages(&self, prefix: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let names = run_output(self.command("apt-cache").args(["pkgnames", prefix]))?;
        let mut names: Vec<String> = names
            .lines()
            .filter(|n| keep(n))
            .map(str::to_string)
            .collect();
        names.sort_by_key(|n| version_key(n));
        Ok(names)
    }

    /// Downloads `pkg` and extracts the members of its data archive that match `patterns`
    /// (tar wildcards) into a fresh directory, which it returns; the caller moves what it keeps
    /// and deletes the rest. The `.deb` is deleted.
    pub fn fetch(&self, pkg: &str, patterns: &[&str]) -> Result<PathBuf> {
        // A directory per package, so that two fetches of different packages never meet.
        let work = self.dir.join("download").join(pkg);
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).map_err(|e| Error::Failed(format!("{}: {e}", work.display())))?;
        eprintln!("tld: downloading {pkg} from {SUITE}");
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
        let wanted: Vec<String> = patterns.iter().map(|p| format!("'{p}'")).collect();
        let script = format!(
            "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards {}",
            deb.display(),
            work.display(),
            wanted.join(" ")
        );
        let extracted = run_output(Command::new("sh").args(["-c", &script]));
        let _ = fs::remove_file(&deb);
        extracted.map(|_| work)
    }
}

/// The first file named `name` under `dir`, depth first.
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
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

    #[test]
    fn orders_versions_by_their_numbers() {
        let mut names = ["linux-source-7.10", "linux-source-7.3", "linux-source-7.2"];
        names.sort_by_key(|n| version_key(n));
        assert_eq!(
            names,
            ["linux-source-7.2", "linux-source-7.3", "linux-source-7.10"]
        );
    }
}
