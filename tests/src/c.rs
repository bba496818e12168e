//! Support for the libtld tests: libtld and the Rust test plugins (built with cargo), C and C++
//! programs compiled at test time against them, and the BPF programs that check what those
//! programs set (`bpf/tld_c.bpf.c`; the kernel's selftest scenario uses the kernel's own BPF
//! program).
//!
//! The C programs get the BPF programs and maps as inherited file descriptors, whose numbers
//! are in environment variables (`TLD_TEST_MAP_FD`, `TLD_TEST_PROG_FD`, ...), and run
//! `BPF_PROG_TEST_RUN` themselves, so that BPF reads the thread that sets the hints.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod c_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_c.skel.rs"));
}
pub use c_skel::TldCSkel;

/// Loads `bpf/tld_c.bpf.c`, as [`crate::load`] does.
pub fn load_c(test: &str) -> Option<TldCSkel<'static>> {
    crate::load_skel(test, c_skel::TldCSkelBuilder::default())
}

/// Mirror of `struct tld_c_read` (`bpf/tld_c.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CRead {
    pub pid: i32,
    pub tgid: i32,
    pub init_ret: i64,
    pub found: u64,
    pub host_value: u64,
    pub host_typed: i64,
    pub plugin_a_count: u64,
    pub plugin_a_flag: u64,
    pub plugin_b_level: i64,
    pub plugin_b_seq: u64,
    pub plugin_b_budget: [u32; 2],
    pub py_hint: u64,
}

/// Bits of [`CRead::found`].
pub mod found {
    pub const HOST_VALUE: u64 = 1 << 0;
    pub const HOST_TYPED: u64 = 1 << 1;
    pub const PLUGIN_A_COUNT: u64 = 1 << 2;
    pub const PY_HINT: u64 = 1 << 6;
}

/// What `tld_c_read_pid` sees of the thread `tid`, run from the calling thread.
pub fn bpf_read_c_pid(skel: &TldCSkel<'_>, tid: i32) -> CRead {
    crate::run(
        &skel.progs.tld_c_read_pid,
        CRead {
            pid: tid,
            ..CRead::default()
        },
    )
}

/// What the libtld tests build with cargo.
#[derive(Debug)]
pub struct Artifacts {
    /// `libtld.so`, whose soname is `libtld.so.0`.
    pub libtld_so: PathBuf,
    /// `libtld.a`.
    pub libtld_a: PathBuf,
    /// A directory with `libtld.so` and `libtld.so.0`, for `-L` and the run-time path.
    pub lib_dir: PathBuf,
    /// The test plugins (Rust cdylibs).
    pub plugin_a: PathBuf,
    pub plugin_b: PathBuf,
    /// Where test programs and copies go.
    pub work: PathBuf,
}

/// The workspace's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// `libtld/include`, where `tld.h` is.
pub fn include_dir() -> PathBuf {
    workspace().join("libtld/include")
}

/// libtld and the plugins, built once per test process with the test's own cargo profile.
/// Panics if cargo fails.
pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        // This test runs from <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("current_exe");
        let out = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>")
            .to_path_buf();
        let profile = out.file_name().and_then(|p| p.to_str()).unwrap_or("debug");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace()).args([
            "build",
            "-q",
            "-p",
            "libtld",
            "-p",
            "tld-test-plugin-a",
            "-p",
            "tld-test-plugin-b",
        ]);
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().expect("run cargo");
        assert!(
            status.success(),
            "cargo build of libtld and the plugins failed"
        );
        let work = out.join("tld-c-tests");
        let lib_dir = work.join("lib");
        std::fs::create_dir_all(&lib_dir).expect("create the test directory");
        let libtld_so = out.join("libtld.so");
        for name in ["libtld.so", "libtld.so.0"] {
            link(&libtld_so, &lib_dir.join(name));
        }
        Artifacts {
            libtld_a: out.join("libtld.a"),
            plugin_a: out.join("libtld_test_plugin_a.so"),
            plugin_b: out.join("libtld_test_plugin_b.so"),
            libtld_so,
            lib_dir,
            work,
        }
    })
}

/// Makes `at` a symbolic link to `to`, atomically.
fn link(to: &Path, at: &Path) {
    let tmp = at.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(to, &tmp).expect("symlink");
    std::fs::rename(&tmp, at).expect("rename the symlink");
}

/// A copy of `file` at `name` in the work directory (a second instance of a plugin for
/// `dlopen`, which loads a file once).
pub fn copy(file: &Path, name: &str) -> PathBuf {
    let work = &artifacts().work;
    let to = work.join(name);
    let tmp = work.join(format!("{name}.tmp{}", std::process::id()));
    std::fs::copy(file, &tmp).expect("copy");
    std::fs::rename(&tmp, &to).expect("rename the copy");
    to
}

/// A C or C++ compilation.
#[derive(Debug)]
pub struct Compile {
    compiler: &'static str,
    args: Vec<String>,
    out: PathBuf,
}

impl Compile {
    /// Compiles `sources` (under `tests/c/` unless absolute) with gcc into the program `name`,
    /// with warnings as errors, against libtld.so and the test headers.
    pub fn c(name: &str, sources: &[&str]) -> Compile {
        Compile::new("gcc", name, sources, &["-std=gnu11"])
    }

    /// As [`Compile::c`], with g++.
    pub fn cxx(name: &str, sources: &[&str]) -> Compile {
        Compile::new("g++", name, sources, &["-std=c++17"])
    }

    fn new(compiler: &'static str, name: &str, sources: &[&str], std: &[&str]) -> Compile {
        let a = artifacts();
        let c_dir = workspace().join("tests/c");
        let mut args: Vec<String> = std.iter().map(|s| s.to_string()).collect();
        args.extend(
            ["-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"]
                .iter()
                .map(|s| s.to_string()),
        );
        for dir in [include_dir(), workspace().join("bpf"), c_dir.clone()] {
            args.push(format!("-I{}", dir.display()));
        }
        for s in sources {
            let path = Path::new(s);
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                c_dir.join(path)
            };
            args.push(path.display().to_string());
        }
        Compile {
            compiler,
            args,
            out: a.work.join(name),
        }
    }

    /// Adds arguments.
    pub fn args(mut self, args: &[&str]) -> Compile {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Links against `libtld.so` (found at run time through the soname) and libdl.
    pub fn link_libtld(self) -> Compile {
        let lib = artifacts().lib_dir.display().to_string();
        self.args(&[
            &format!("-L{lib}"),
            "-ltld",
            "-ldl",
            &format!("-Wl,-rpath,{lib}"),
        ])
    }

    /// Runs the compiler and returns the program; panics with its messages if it fails.
    pub fn build(self) -> PathBuf {
        let tmp = self
            .out
            .with_extension(format!("tmp{}", std::process::id()));
        let output = Command::new(self.compiler)
            .args(&self.args)
            .arg("-o")
            .arg(&tmp)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.compiler));
        assert!(
            output.status.success(),
            "{} {} failed:\n{}",
            self.compiler,
            self.args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::rename(&tmp, &self.out).expect("rename the program");
        self.out
    }
}

/// Lets the program `cmd` starts inherit `fds` (which the runtime and libbpf open
/// close-on-exec), under their own numbers.
pub fn inherit<'c>(cmd: &'c mut Command, fds: &[BorrowedFd<'_>]) -> &'c mut Command {
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    // SAFETY: the closure runs in the child between fork and exec, and makes only fcntl
    // calls, which are async-signal-safe; it allocates nothing (`raw` was built before).
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &raw {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    }
}

/// The number of `fd`, for an environment variable.
pub fn fd_env(fd: BorrowedFd<'_>) -> String {
    fd.as_raw_fd().to_string()
}

/// Runs `cmd`, prints what it printed, and panics unless it exited with 0.
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{what}:\n{stdout}{stderr}");
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}{stderr}",
        output.status
    );
    stdout
}
