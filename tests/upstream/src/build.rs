//! Builds of the kernel's task local data code at test time: its BPF test program, unmodified,
//! and C programs of ours written against its user-space library.
//!
//! - [`kernel_bpf_program`] compiles `progs/test_task_local_data.c` with its header,
//!   `progs/task_local_data.bpf.h`, the way the kernel's selftests build it: clang 19 for the BPF
//!   target, a `vmlinux.h` dumped from the running kernel's BTF (bpftool, which also gives the
//!   program `__PAGE_SIZE`, an enumerator of the kernel's), and libbpf's BPF headers. Its `<errno.h>` resolves to the kernel's `asm-generic/errno.h`
//!   (glibc's does not compile for BPF), through a one-line shim in the build's own include
//!   directory.
//! - [`c_program`] compiles a C source of ours that includes the kernel's
//!   `prog_tests/task_local_data.h` against libbpf (Debian's `libbpf-dev`), with the two helpers
//!   the selftests' environment gives that header (`sys_gettid()` and a two-argument
//!   `strscpy()`) defined by the source itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{on_path, run_output, Error, Result, Selftests};

/// A directory for build products under the target directory.
pub fn scratch(name: &str) -> Result<PathBuf> {
    let dir = crate::target_dir().join("tld-upstream").join(name);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Failed(format!("creating {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Writes the running kernel's BTF as C (`vmlinux.h`) into `dir`, with bpftool.
pub fn vmlinux_h(dir: &Path) -> Result<PathBuf> {
    let bpftool = ["bpftool", "/usr/sbin/bpftool"]
        .iter()
        .find_map(|b| on_path(b).or_else(|| Path::new(b).is_file().then(|| PathBuf::from(b))))
        .ok_or_else(|| {
            Error::Unavailable("bpftool is not installed (`make deps` installs it)".into())
        })?;
    let out = dir.join("vmlinux.h");
    let text = run_output(Command::new(bpftool).args([
        "btf",
        "dump",
        "file",
        "/sys/kernel/btf/vmlinux",
        "format",
        "c",
    ]))?;
    std::fs::write(&out, text).map_err(|e| Error::Failed(format!("{}: {e}", out.display())))?;
    Ok(out)
}

/// Compiles the kernel's BPF test program, unmodified, into `<dir>/test_task_local_data.bpf.o`.
///
/// With `header`, the directory of another `task_local_data.bpf.h` of the same API (scx's, of
/// the 6.18 generation), the program is compiled against that one instead: it is copied into
/// `dir` first, because a quoted include looks next to the source before the include path.
pub fn kernel_bpf_program(tests: &Selftests, dir: &Path, header: Option<&Path>) -> Result<PathBuf> {
    vmlinux_h(dir)?;
    // The program and its header include <errno.h>: the kernel's numbers, for BPF.
    let shim = dir.join("shim");
    std::fs::create_dir_all(&shim).map_err(|e| Error::Failed(format!("{e}")))?;
    std::fs::write(shim.join("errno.h"), "#include <asm-generic/errno.h>\n")
        .map_err(|e| Error::Failed(format!("writing the errno.h shim: {e}")))?;
    let libbpf = tld_bpf_build::write_libbpf_headers(&dir.join("libbpf"))
        .map_err(|e| Error::Failed(format!("writing libbpf's BPF headers: {e}")))?;
    let (source, headers) = match header {
        None => (
            tests.bpf_program(),
            tests.bpf_program().parent().unwrap().to_path_buf(),
        ),
        Some(h) => {
            let copy = dir.join("src");
            std::fs::create_dir_all(&copy).map_err(|e| Error::Failed(format!("{e}")))?;
            let source = copy.join("test_task_local_data.c");
            std::fs::copy(tests.bpf_program(), &source)
                .map_err(|e| Error::Failed(format!("copying the test program: {e}")))?;
            (source, h.to_path_buf())
        }
    };
    let out = dir.join("test_task_local_data.bpf.o");
    let mut clang = Command::new(tld_bpf_build::clang());
    clang
        .args(["-g", "-O2", "-target", "bpf", "-mcpu=v3"])
        .arg("-D__TARGET_ARCH_x86")
        .arg("-I")
        .arg(&headers)
        .arg("-I")
        .arg(dir)
        .arg("-I")
        .arg(&shim)
        .arg("-I")
        .arg(&libbpf)
        .args(["-idirafter", "/usr/include/x86_64-linux-gnu"])
        .arg("-c")
        .arg(&source)
        .arg("-o")
        .arg(&out);
    run_output(&mut clang).map_err(|e| match on_path("clang-19") {
        None if std::env::var_os(tld_bpf_build::CLANG_ENV).is_none() => {
            Error::Unavailable(format!("clang-19 is not installed: {e}"))
        }
        _ => e,
    })?;
    Ok(out)
}

/// Compiles `source`, a C program of ours that includes the kernel's user-space library
/// (`#include "task_local_data.h"`), into `<dir>/<name>`, with `defines` (`NAME=VALUE` or
/// `NAME`) passed as `-D`. Links libbpf, libelf, zlib and pthreads statically where the
/// system has the archives, so that the binary also runs in the VM.
pub fn c_program(
    tests: &Selftests,
    source: &Path,
    dir: &Path,
    name: &str,
    defines: &[&str],
) -> Result<PathBuf> {
    if on_path("gcc").is_none() {
        return Err(Error::Unavailable("gcc is not installed".into()));
    }
    if !Path::new("/usr/include/bpf/bpf.h").is_file() {
        return Err(Error::Unavailable(
            "libbpf's headers are not installed (Debian's libbpf-dev; `make deps` installs it)"
                .into(),
        ));
    }
    let prog_tests = tests.c_library().parent().unwrap().to_path_buf();
    let out = dir.join(name);
    let mut gcc = Command::new("gcc");
    gcc.args(["-O2", "-g", "-Wall", "-pthread"])
        .arg("-I")
        .arg(&prog_tests);
    for d in defines {
        gcc.arg(format!("-D{d}"));
    }
    gcc.arg(source).arg("-o").arg(&out);
    // Static libbpf (and its libelf and zlib) where available: the VM has no libbpf.
    if Path::new("/usr/lib/x86_64-linux-gnu/libbpf.a").is_file() {
        gcc.args(["-Wl,-Bstatic", "-lbpf", "-lelf", "-lz", "-Wl,-Bdynamic"]);
    } else {
        gcc.args(["-lbpf", "-lelf", "-lz"]);
    }
    run_output(&mut gcc)?;
    Ok(out)
}
