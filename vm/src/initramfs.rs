//! Builds the guest's initramfs: busybox (static), the programs to run with the shared libraries
//! `ldd` lists for them, and an `/init` script. Packed uncompressed with `cpio -H newc`, which the
//! kernel unpacks fastest.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{on_path, run_output, Error, Result};

/// An initramfs being assembled in a staging directory.
pub struct Initramfs {
    root: PathBuf,
    libs: BTreeSet<PathBuf>,
}

impl Initramfs {
    /// Starts an empty tree at `staging` (removed first) with busybox in `/bin`.
    pub fn new(staging: &Path) -> Result<Initramfs> {
        let busybox = on_path("busybox").ok_or_else(|| {
            Error::Unavailable(
                "busybox is not installed (the VM's userland; `make deps` installs \
                 busybox-static)"
                    .into(),
            )
        })?;
        if on_path("cpio").is_none() {
            return Err(Error::Unavailable(
                "cpio is not installed (it packs the VM's initramfs; `make deps` installs it)"
                    .into(),
            ));
        }
        if !is_static(&busybox) {
            return Err(Error::Unavailable(format!(
                "{} is dynamically linked; the VM needs a static busybox (Debian's \
                 busybox-static, which `make deps` installs)",
                busybox.display()
            )));
        }
        let _ = fs::remove_dir_all(staging);
        for dir in ["bin", "dev", "proc", "sys", "tmp", "run"] {
            fs::create_dir_all(staging.join(dir)).map_err(io(staging))?;
        }
        let me = Initramfs {
            root: staging.to_path_buf(),
            libs: BTreeSet::new(),
        };
        me.copy(&busybox, "bin/busybox", false)?;
        Ok(me)
    }

    /// Adds the program at `src` as `dest` (a path inside the guest, such as `bin/scx_tld`),
    /// without its debug information, plus every shared library it needs.
    pub fn add_program(&mut self, src: &Path, dest: &str) -> Result<()> {
        self.copy(src, dest, true)?;
        for lib in shared_libraries(src)? {
            if self.libs.insert(lib.clone()) {
                let inside = lib.strip_prefix("/").unwrap_or(&lib).to_path_buf();
                self.copy(&lib, &inside.to_string_lossy(), false)?;
            }
        }
        Ok(())
    }

    /// Adds a file with `contents` at `dest`, executable if `exec`.
    pub fn add_file(&mut self, dest: &str, contents: &str, exec: bool) -> Result<()> {
        let path = self.root.join(dest);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::write(&path, contents).map_err(io(&path))?;
        let mode = if exec { 0o755 } else { 0o644 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io(&path))
    }

    /// Packs the tree into `out`.
    pub fn pack(&self, out: &Path) -> Result<()> {
        let script = format!(
            "find . | LC_ALL=C sort | cpio -o -H newc --quiet > '{}'",
            out.display()
        );
        run_output(
            Command::new("sh")
                .args(["-c", &script])
                .current_dir(&self.root),
        )
        .map(drop)
        .map_err(Error::from)
    }

    fn copy(&self, src: &Path, dest: &str, strip: bool) -> Result<()> {
        let path = self.root.join(dest);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        // Debug information is most of a debug build's size; the guest has no use for it.
        let stripped = strip
            && on_path("strip").is_some()
            && Command::new("strip")
                .arg("--strip-debug")
                .arg("-o")
                .arg(&path)
                .arg(src)
                .status()
                .is_ok_and(|s| s.success());
        if !stripped {
            fs::copy(src, &path).map_err(io(src))?;
        }
        let mode = fs::metadata(src).map_err(io(src))?.permissions().mode() | 0o444;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io(&path))
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Failed(format!("{}: {e}", path.display()))
}

fn is_static(program: &Path) -> bool {
    // ldd says "not a dynamic executable" (and fails) for a static binary.
    Command::new("ldd")
        .arg(program)
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.contains("not a dynamic executable") || text.contains("statically linked")
        })
        .unwrap_or(false)
}

/// The shared libraries (and the dynamic loader) that `ldd` lists for `program`.
pub fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>> {
    if is_static(program) {
        return Ok(Vec::new());
    }
    let out = run_output(Command::new("ldd").arg(program))?;
    Ok(parse_ldd(&out))
}

/// The absolute paths in `ldd` output.
pub fn parse_ldd(out: &str) -> Vec<PathBuf> {
    out.lines()
        .filter_map(|line| {
            line.split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_ldd_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x00007f)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let libs = super::parse_ldd(out);
        assert_eq!(
            libs,
            [
                "/lib/x86_64-linux-gnu/libelf.so.1",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(std::path::PathBuf::from)
        );
    }
}
