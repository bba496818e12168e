//! Compiles BPF C programs into libbpf-rs skeletons from a build script, with the flags that
//! this project's BPF code needs (see PLATFORM.md):
//!
//! - the compiler is `clang-19`, or whatever `TLD_CLANG` names: older clangs silently drop the
//!   `btf_type_tag("uptr")` that the kernel needs to pin user pages;
//! - `bpf/` (with `task_local_data.bpf.h` and `tld_vmlinux.h`) is on the include path, plus any
//!   extra directory such as `OUT_DIR` for a generated header;
//! - the multiarch system include directory comes after everything else, for `<linux/...>` and
//!   `<asm-generic/...>` headers.
#![warn(missing_docs)]

use std::env;
use std::path::{Path, PathBuf};

/// Environment variable that overrides the clang binary.
pub const CLANG_ENV: &str = "TLD_CLANG";

/// The workspace's `bpf/` directory.
pub fn bpf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("bpf")
}

/// The clang to compile BPF C with.
pub fn clang() -> PathBuf {
    env::var_os(CLANG_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("clang-19"))
}

/// The clang arguments this project's BPF C needs, with `include_dirs` searched before `bpf/`.
pub fn clang_args(include_dirs: &[&Path]) -> Vec<String> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| env::consts::ARCH.into());
    let (target_arch, multiarch) = match arch.as_str() {
        "aarch64" => ("arm64", "aarch64-linux-gnu"),
        "riscv64" => ("riscv", "riscv64-linux-gnu"),
        "s390x" => ("s390", "s390x-linux-gnu"),
        _ => ("x86", "x86_64-linux-gnu"),
    };
    let mut args: Vec<String> = vec![format!("-D__TARGET_ARCH_{target_arch}"), "-Wall".into()];
    for dir in include_dirs.iter().copied().chain([bpf_dir().as_path()]) {
        args.push(format!("-I{}", dir.display()));
    }
    args.push("-idirafter".into());
    args.push(format!("/usr/include/{multiarch}"));
    args
}

/// Compiles `source` (a `*.bpf.c` file) into a skeleton written to `out` (a `.rs` file),
/// with `include_dirs` searched before `bpf/`. Also prints the `rerun-if-changed` lines.
///
/// Panics with the compiler's message on failure: this runs in build scripts, where a panic is
/// how an error is reported.
pub fn build_skeleton(source: &Path, out: &Path, include_dirs: &[&Path]) {
    if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
        .source(source)
        .clang(clang())
        .clang_args(clang_args(include_dirs))
        .build_and_generate(out)
    {
        panic!(
            "compiling {} with {} failed: {e:#}\n(is clang-19 installed? `make deps` installs \
             it; set {CLANG_ENV} to use another clang >= 19)",
            source.display(),
            clang().display()
        );
    }
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed={}", bpf_dir().display());
    println!("cargo:rerun-if-env-changed={CLANG_ENV}");
}

/// Writes libbpf's BPF-side headers (`bpf/bpf_helpers.h` and friends) under `dir`, and returns
/// the directory to pass with `-I`.
pub fn write_libbpf_headers(dir: &Path) -> std::io::Result<PathBuf> {
    let bpf = dir.join("bpf");
    std::fs::create_dir_all(&bpf)?;
    for (name, contents) in libbpf_rs::libbpf_sys::API_HEADERS.iter() {
        std::fs::write(bpf.join(name), contents)?;
    }
    Ok(dir.to_path_buf())
}

/// Compiles `source` to BPF and throws the object away: a check that it compiles. Returns the
/// compiler's diagnostics on failure. `scratch` is a directory for libbpf's headers.
pub fn compile_check(source: &Path, include_dirs: &[&Path], scratch: &Path) -> Result<(), String> {
    let headers = write_libbpf_headers(scratch).map_err(|e| e.to_string())?;
    let mut dirs = include_dirs.to_vec();
    dirs.push(&headers);
    let output = std::process::Command::new(clang())
        .args(["-g", "-O2", "-target", "bpf", "-c", "-o", "/dev/null"])
        .args(clang_args(&dirs))
        .arg(source)
        .output()
        .map_err(|e| format!("running {}: {e}", clang().display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
