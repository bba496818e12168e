//! Build BPF C that reads task local data ([`tld_runtime`]) into a libbpf-rs skeleton, from a
//! build script.
//!
//! A scheduler, tracer or policy engine whose BPF side reads the hints of a Rust hints crate
//! needs three things at build time: a C header generated from the hints, the BPF-side library
//! (`task_local_data.bpf.h`) on the include path, and a clang that keeps the `uptr` type tag
//! (clang 19 or later). This crate does all three in one line of `build.rs`:
//!
//! ```no_run
//! // build.rs; `my_hints` (the crate declaring the #[task_local_data] statics) and
//! // `tld-bpf-build` are build-dependencies.
//! use my_hints as _; // link the hints in: the generated header describes what is linked
//! # mod my_hints {}
//!
//! fn main() {
//!     tld_bpf_build::build("src/bpf/sched.bpf.c"); // -> $OUT_DIR/sched.skel.rs
//! }
//! ```
//!
//! ```ignore
//! // src/main.rs
//! mod skel {
//!     include!(concat!(env!("OUT_DIR"), "/sched.skel.rs"));
//! }
//! ```
//!
//! and the BPF source starts with `#include "tld_generated.h"` (see `task_local_data.bpf.h` for
//! the C API). [`Builder`] takes more options: other include directories, another clang, extra
//! flags, another output path, or no generated header.
//!
//! What the build does:
//! - writes `tld_generated.h` for the hints linked into the build script, with
//!   `task_local_data.bpf.h` and `tld_vmlinux.h` next to it, into `OUT_DIR`
//!   ([`tld_runtime::header::write`]);
//! - compiles with `clang-19`, or the clang that `TLD_CLANG` names ([`clang`]), with
//!   `-mcpu=v4` (BPF ISA v4, Linux 6.6 or later: sign-extending loads make lookups shorter),
//!   `-D__TARGET_ARCH_<arch>`, `OUT_DIR` and the library headers on the include path, the
//!   source's directory on the quote-include path (so that a `vmlinux.h` next to the source is
//!   found from the generated header), and the multiarch system include directory last, for
//!   `<linux/...>` headers ([`clang_args`]);
//! - generates the skeleton with libbpf-cargo, and prints the `cargo:rerun-if-changed` lines.
//!
//! BPF programs that read task local data must carry a GPL-compatible licence
//! (`char LICENSE[] SEC("license") = "GPL";`): the key lookup uses `bpf_for()`, whose kfuncs
//! the kernel offers only to GPL-compatible programs.
//!
//! # Kernel types: `tld_vmlinux.h` or a full `vmlinux.h`
//!
//! `tld_vmlinux.h` holds only the few kernel types the BPF-side library needs (`__u32`,
//! `struct task_struct`'s `pid` and `tgid`, a few uapi constants). A program that needs more
//! (`struct pt_regs` to read a syscall's arguments, other kernel structs, every uapi enum) wants
//! a full `vmlinux.h`, every type of a kernel's BTF. [`Builder::vmlinux`] makes or takes one
//! ([`Vmlinux`]): dumped with bpftool from the BTF of the kernel running the build
//! ([`Vmlinux::RunningKernel`]) or from a BTF file ([`Vmlinux::Btf`]), or a `vmlinux.h` you
//! already have ([`Vmlinux::Header`]). It goes into a directory of its own at the front of the
//! include path, so this one build sees it, and the generated header, which looks for
//! `"vmlinux.h"` on the include path before it falls back to `tld_vmlinux.h`, takes it. The two
//! never mix: `tld_vmlinux.h` is still written next to the generated header, but nothing
//! includes it, and it is empty when a full `vmlinux.h` came first.
//!
//! ```no_run
//! // build.rs
//! use tld_bpf_build::{Builder, Vmlinux};
//!
//! Builder::new("src/bpf/trace.bpf.c")
//!     .vmlinux(Vmlinux::RunningKernel) // needs bpftool; or Vmlinux::Header("src/bpf/vmlinux.h".into())
//!     .build()
//!     .unwrap_or_else(|e| panic!("{e}"));
//! ```
//!
//! A `vmlinux.h` dumped from the build machine's kernel describes that kernel: CO-RE relocates
//! field accesses on the machine that loads the program, but a type or field that kernel lacks
//! fails the load there. [`write_vmlinux`] does the same outside a [`Builder`].
#![warn(missing_docs)]

use std::env;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tld_wire::fs::write_if_changed;

/// Environment variable that overrides the clang binary.
pub const CLANG_ENV: &str = tld_wire::paths::CLANG_ENV;

/// Environment variable that overrides the bpftool binary ([`Vmlinux::RunningKernel`],
/// [`Vmlinux::Btf`]).
pub const BPFTOOL_ENV: &str = tld_wire::paths::BPFTOOL_ENV;

/// Where the running kernel publishes its BTF.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Where a full `vmlinux.h` comes from: see [`Builder::vmlinux`] and [`write_vmlinux`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Vmlinux {
    /// Dumped with bpftool (`bpftool btf dump file /sys/kernel/btf/vmlinux format c`) from the
    /// BTF of the kernel running the build.
    RunningKernel,
    /// Dumped with bpftool from a BTF file: a copy of another machine's
    /// `/sys/kernel/btf/vmlinux`, or a `vmlinux` image with a `.BTF` section.
    Btf(PathBuf),
    /// A `vmlinux.h` made elsewhere (scx's, one checked into your repository), used as it is.
    Header(PathBuf),
}

/// The bpftool to dump BTF with: `bpftool`, or whatever `TLD_BPFTOOL` names.
pub fn bpftool() -> PathBuf {
    env::var_os(BPFTOOL_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bpftool"))
}

/// Writes the full `vmlinux.h` that `source` names into `dir/vmlinux.h` (creating `dir`, and
/// rewriting the file only when its contents change), and returns `dir`, the directory to put on
/// the include path, before the generated header's.
///
/// In a build script, also prints the `cargo:rerun-if-changed` lines of the file it read.
pub fn write_vmlinux(source: &Vmlinux, dir: &Path) -> Result<PathBuf, Error> {
    let failed = |message: String| Error::Vmlinux {
        source: source.clone(),
        message,
    };
    let text = match source {
        Vmlinux::Header(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| failed(format!("reading {}: {e}", path.display())))?;
            if !text.contains("__VMLINUX_H__") {
                return Err(failed(format!(
                    "{} is not a vmlinux.h: it does not define __VMLINUX_H__, which bpftool's \
                     and scx's do, and which tld_vmlinux.h and the generated header check",
                    path.display()
                )));
            }
            rerun_if_changed(path);
            text
        }
        Vmlinux::RunningKernel => dump_btf(Path::new(KERNEL_BTF)).map_err(failed)?,
        Vmlinux::Btf(path) => dump_btf(path).map_err(failed)?,
    };
    std::fs::create_dir_all(dir).map_err(Error::Io)?;
    write_if_changed(&dir.join("vmlinux.h"), &text).map_err(Error::Io)?;
    Ok(dir.to_path_buf())
}

/// `bpftool btf dump file <btf> format c`.
fn dump_btf(btf: &Path) -> Result<String, String> {
    let tool = bpftool();
    let output = std::process::Command::new(&tool)
        .args(["btf", "dump", "file"])
        .arg(btf)
        .args(["format", "c"])
        .output()
        .map_err(|e| {
            format!(
                "running {}: {e} (Debian's package is bpftool; set {BPFTOOL_ENV} to use another)",
                tool.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "{} btf dump file {} format c failed: {}",
            tool.display(),
            btf.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8(output.stdout)
        .map_err(|e| format!("bpftool wrote something other than text: {e}"))?;
    rerun_if_changed(btf);
    println!("cargo:rerun-if-env-changed={BPFTOOL_ENV}");
    Ok(text)
}

/// Prints a `cargo:rerun-if-changed` line when run by cargo as a build script.
fn rerun_if_changed(path: &Path) {
    if env::var_os("OUT_DIR").is_some() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The directory of the BPF-side library headers: [`include_dir`].
///
/// This once named a directory of the repository this crate is developed in, which does not
/// exist where the crate is used as a dependency. The headers ship inside the crates
/// themselves and are written out on first use, so this now returns the one directory that is
/// valid wherever the crate is built.
///
/// # Panics
///
/// As [`include_dir`].
#[deprecated(note = "use include_dir(), the directory of the BPF-side library headers")]
pub fn bpf_dir() -> PathBuf {
    include_dir()
}

/// The clang to compile BPF C with: `clang-19`, or whatever `TLD_CLANG` names. Older clangs
/// silently drop the `btf_type_tag("uptr")` that the kernel needs to pin user pages.
pub fn clang() -> PathBuf {
    env::var_os(CLANG_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("clang-19"))
}

/// Writes the BPF-side library headers, `task_local_data.bpf.h`, `tld_guard.bpf.h` and
/// `tld_vmlinux.h`, into `dir` (creating it), rewriting them only when their contents change.
pub fn write_headers(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_if_changed(
        &dir.join("task_local_data.bpf.h"),
        tld_runtime::header::BPF_HEADER,
    )?;
    write_if_changed(
        &dir.join("tld_guard.bpf.h"),
        tld_runtime::header::GUARD_HEADER,
    )?;
    write_if_changed(
        &dir.join("tld_vmlinux.h"),
        tld_runtime::header::VMLINUX_SUBSET,
    )
}

/// A directory holding the BPF-side library headers ([`write_headers`]), written on first use:
/// `$OUT_DIR/tld-bpf-include` in a build script, else a directory under the system's temporary
/// directory named for this crate's version. [`clang_args`] puts it on the include path.
///
/// # Panics
///
/// If the headers cannot be written there.
pub fn include_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match env::var_os("OUT_DIR") {
            Some(out) => PathBuf::from(out).join("tld-bpf-include"),
            None => {
                // Per user: another user's directory of the same name is not writable.
                let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
                env::temp_dir().join(format!(
                    "tld-bpf-build-{}-uid{uid}",
                    env!("CARGO_PKG_VERSION")
                ))
            }
        };
        if let Err(e) = write_headers(&dir) {
            panic!("writing the tld BPF headers into {}: {e}", dir.display());
        }
        dir
    })
    .clone()
}

/// The clang arguments for BPF C that reads task local data: `-mcpu=v4`,
/// `-D__TARGET_ARCH_<arch>`, `-Wall`, then `include_dirs` and [`include_dir`] on the include
/// path, in that order, and the multiarch system include directory after everything else.
pub fn clang_args(include_dirs: &[&Path]) -> Vec<String> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| env::consts::ARCH.into());
    let (target_arch, multiarch) = match arch.as_str() {
        "aarch64" => ("arm64", "aarch64-linux-gnu"),
        "riscv64" => ("riscv", "riscv64-linux-gnu"),
        "s390x" => ("s390", "s390x-linux-gnu"),
        _ => ("x86", "x86_64-linux-gnu"),
    };
    let mut args: Vec<String> = vec![
        "-mcpu=v4".into(),
        format!("-D__TARGET_ARCH_{target_arch}"),
        "-Wall".into(),
    ];
    let library = include_dir();
    for dir in include_dirs.iter().copied().chain([library.as_path()]) {
        args.push(format!("-I{}", dir.display()));
    }
    args.push("-idirafter".into());
    args.push(format!("/usr/include/{multiarch}"));
    args
}

/// The directory of `source`, for `-iquote`.
fn source_dir(source: &Path) -> PathBuf {
    match source.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Compiles `source` (a `*.bpf.c` file) into a skeleton written to `out` (a `.rs` file), with
/// `include_dirs` searched before the library headers. Also prints the `rerun-if-changed` lines.
///
/// This does not generate `tld_generated.h`: call [`tld_runtime::header::write`] first and pass
/// its directory in `include_dirs`, or use [`Builder`], which does both.
///
/// # Panics
///
/// With the compiler's message on failure: this runs in build scripts, where a panic is how an
/// error is reported. [`Builder::build`] returns the error instead.
pub fn build_skeleton(source: &Path, out: &Path, include_dirs: &[&Path]) {
    if let Err(e) = compile_skeleton(source, out, include_dirs, &clang(), &[]) {
        panic!("{e}");
    }
}

fn compile_skeleton(
    source: &Path,
    out: &Path,
    include_dirs: &[&Path],
    clang: &Path,
    extra_args: &[String],
) -> Result<(), Error> {
    let mut args = clang_args(include_dirs);
    args.push("-iquote".into());
    args.push(source_dir(source).display().to_string());
    args.extend(extra_args.iter().cloned());
    if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
        .source(source)
        .clang(clang)
        .clang_args(args)
        .build_and_generate(out)
    {
        return Err(Error::Compile {
            source: source.to_path_buf(),
            clang: clang.to_path_buf(),
            message: format!("{e:#}"),
        });
    }
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed={}", source_dir(source).display());
    println!("cargo:rerun-if-env-changed={CLANG_ENV}");
    Ok(())
}

/// Writes libbpf's BPF-side headers (`bpf/bpf_helpers.h` and friends) under `dir`, and returns
/// the directory to pass with `-I`. libbpf-cargo's skeleton builder provides them itself; this
/// is for compiling with clang directly, as [`compile_check`] does.
pub fn write_libbpf_headers(dir: &Path) -> std::io::Result<PathBuf> {
    let bpf = dir.join("bpf");
    std::fs::create_dir_all(&bpf)?;
    for (name, contents) in libbpf_rs::libbpf_sys::API_HEADERS.iter() {
        write_if_changed(&bpf.join(name), contents)?;
    }
    Ok(dir.to_path_buf())
}

/// Compiles `source` to BPF with [`clang_args`] and throws the object away: a check that it
/// compiles. Returns the compiler's diagnostics on failure. `scratch` is a directory for
/// libbpf's headers.
pub fn compile_check(source: &Path, include_dirs: &[&Path], scratch: &Path) -> Result<(), String> {
    compile_object(source, include_dirs, scratch, Path::new("/dev/null"))
}

/// Compiles `source` to the BPF object `object` with [`clang_args`], for a caller that loads
/// it. Returns the compiler's diagnostics on failure. `scratch` is a directory for libbpf's
/// headers.
pub fn compile_object(
    source: &Path,
    include_dirs: &[&Path],
    scratch: &Path,
    object: &Path,
) -> Result<(), String> {
    let headers = write_libbpf_headers(scratch).map_err(|e| e.to_string())?;
    let mut dirs = include_dirs.to_vec();
    dirs.push(&headers);
    let output = std::process::Command::new(clang())
        .args(["-g", "-O2", "-target", "bpf", "-c", "-o"])
        .arg(object)
        .args(clang_args(&dirs))
        .arg("-iquote")
        .arg(source_dir(source))
        .arg(source)
        .output()
        .map_err(|e| format!("running {}: {e}", clang().display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Why a [`Builder`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Not run by cargo as a build script: `OUT_DIR` is not set, and no output was given.
    NoOutDir,
    /// The source path has no file name to name the skeleton after.
    BadSource(PathBuf),
    /// The hints linked into the build script cannot be published (say two statics share a
    /// key), or the header could not be written: [`tld_runtime::header::write`]'s error.
    Header(std::io::Error),
    /// Writing the library headers failed.
    Io(std::io::Error),
    /// A full `vmlinux.h` could not be made or taken ([`Builder::vmlinux`]).
    Vmlinux {
        /// Where it was to come from.
        source: Vmlinux,
        /// What went wrong.
        message: String,
    },
    /// clang or the skeleton generator failed.
    Compile {
        /// The BPF source.
        source: PathBuf,
        /// The clang used.
        clang: PathBuf,
        /// What they said.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoOutDir => write!(
                f,
                "OUT_DIR is not set: run from a build script, or give the output paths"
            ),
            Error::BadSource(p) => write!(f, "{} is not a file name", p.display()),
            Error::Header(e) => write!(f, "generating tld_generated.h: {e}"),
            Error::Io(e) => write!(f, "writing the tld BPF headers: {e}"),
            Error::Vmlinux { source, message } => {
                write!(f, "making a vmlinux.h from {source:?}: {message}")
            }
            Error::Compile {
                source,
                clang,
                message,
            } => write!(
                f,
                "compiling {} with {} failed: {message}\n(is clang-19 installed? Debian's \
                 package is clang-19; set {CLANG_ENV} to use another clang >= 19)",
                source.display(),
                clang.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Header(e) | Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Compiles one BPF C source against the hints linked into the build script; see the
/// [crate documentation](crate) for what it does.
///
/// ```no_run
/// // build.rs
/// use std::path::PathBuf;
///
/// let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
/// tld_bpf_build::Builder::new("src/bpf/sched.bpf.c")
///     .include_dir("src/bpf/include")
///     .clang_arg("-DMAX_CPUS=512")
///     .skeleton(out.join("scheduler.skel.rs"))
///     .build()
///     .unwrap_or_else(|e| panic!("{e}"));
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    source: PathBuf,
    out_dir: Option<PathBuf>,
    skeleton: Option<PathBuf>,
    include_dirs: Vec<PathBuf>,
    clang: Option<PathBuf>,
    clang_args: Vec<String>,
    generated_header: bool,
    vmlinux: Option<Vmlinux>,
}

impl Builder {
    /// A build of `source`, a `*.bpf.c` file.
    pub fn new(source: impl AsRef<Path>) -> Builder {
        Builder {
            source: source.as_ref().to_path_buf(),
            out_dir: None,
            skeleton: None,
            include_dirs: Vec::new(),
            clang: None,
            clang_args: Vec::new(),
            generated_header: true,
            vmlinux: None,
        }
    }

    /// Where `tld_generated.h` and the library headers go (default: `OUT_DIR`); created if
    /// missing.
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Builder {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Where the skeleton goes (default: `<out dir>/<name>.skel.rs` for a source `<name>.bpf.c`).
    pub fn skeleton(mut self, path: impl AsRef<Path>) -> Builder {
        self.skeleton = Some(path.as_ref().to_path_buf());
        self
    }

    /// Another directory to search for includes, before the generated and library headers.
    pub fn include_dir(mut self, dir: impl AsRef<Path>) -> Builder {
        self.include_dirs.push(dir.as_ref().to_path_buf());
        self
    }

    /// The clang to use (default: [`clang`]).
    pub fn clang(mut self, clang: impl AsRef<Path>) -> Builder {
        self.clang = Some(clang.as_ref().to_path_buf());
        self
    }

    /// Another clang argument, after [`clang_args`].
    pub fn clang_arg(mut self, arg: impl Into<String>) -> Builder {
        self.clang_args.push(arg.into());
        self
    }

    /// Whether to write `tld_generated.h` for the hints linked into the build script (default:
    /// yes). Without it, the source defines `struct tld_offsets` itself and includes
    /// `task_local_data.bpf.h`.
    pub fn generated_header(mut self, yes: bool) -> Builder {
        self.generated_header = yes;
        self
    }

    /// Builds against a full `vmlinux.h` from `source` instead of `tld_vmlinux.h` (see the
    /// [crate documentation](crate#kernel-types-tld_vmlinuxh-or-a-full-vmlinuxh)): it is written
    /// to `<out dir>/tld-vmlinux/vmlinux.h`, whose directory goes first on this build's include
    /// path.
    pub fn vmlinux(mut self, source: Vmlinux) -> Builder {
        self.vmlinux = Some(source);
        self
    }

    /// Writes the headers, compiles the source and writes its skeleton; returns the skeleton's
    /// path.
    pub fn build(self) -> Result<PathBuf, Error> {
        let out_dir = match (&self.out_dir, env::var_os("OUT_DIR")) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => return Err(Error::NoOutDir),
        };
        let skeleton = match &self.skeleton {
            Some(path) => path.clone(),
            None => {
                let name = self
                    .source
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| Error::BadSource(self.source.clone()))?;
                let stem = name
                    .strip_suffix(".bpf.c")
                    .or_else(|| name.strip_suffix(".c"))
                    .unwrap_or(name);
                out_dir.join(format!("{stem}.skel.rs"))
            }
        };
        std::fs::create_dir_all(&out_dir).map_err(Error::Io)?;
        if self.generated_header {
            tld_runtime::header::write(out_dir.join("tld_generated.h")).map_err(Error::Header)?;
        } else {
            write_headers(&out_dir).map_err(Error::Io)?;
        }
        let vmlinux = match &self.vmlinux {
            Some(source) => Some(write_vmlinux(source, &out_dir.join("tld-vmlinux"))?),
            None => None,
        };
        let mut dirs: Vec<&Path> = vmlinux.iter().map(PathBuf::as_path).collect();
        dirs.extend(self.include_dirs.iter().map(PathBuf::as_path));
        dirs.push(&out_dir);
        let clang = self.clang.clone().unwrap_or_else(clang);
        compile_skeleton(&self.source, &skeleton, &dirs, &clang, &self.clang_args)?;
        Ok(skeleton)
    }
}

/// Compiles `source` against the hints linked into the build script into
/// `$OUT_DIR/<name>.skel.rs` (for a source `<name>.bpf.c`), and returns that path: the
/// one-line build script. See the [crate documentation](crate).
///
/// # Panics
///
/// On any [`Error`], with its message: this is for build scripts.
pub fn build(source: impl AsRef<Path>) -> PathBuf {
    Builder::new(source)
        .build()
        .unwrap_or_else(|e| panic!("tld-bpf-build: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_include_dir_holds_the_library_headers() {
        let dir = super::include_dir();
        for name in ["task_local_data.bpf.h", "tld_guard.bpf.h", "tld_vmlinux.h"] {
            let text = std::fs::read_to_string(dir.join(name))
                .unwrap_or_else(|e| panic!("{name} in {}: {e}", dir.display()));
            assert!(!text.is_empty(), "{name}");
        }
        #[allow(deprecated)]
        let old = super::bpf_dir();
        assert_eq!(old, dir, "the old name gives the same directory");
    }
}
