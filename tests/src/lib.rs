//! Shared pieces of the integration tests: the test hints, the BPF skeleton, and mirrors of the
//! BPF programs' context structs.
//!
//! The tests load real BPF programs into the running kernel and run them with
//! `BPF_PROG_TEST_RUN`, which executes a `SEC("syscall")` program as the calling thread: what
//! the program reads through `bpf_get_current_task_btf()` is that thread's task local data.
#![allow(missing_docs)]

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{OpenObject, ProgramInput, ProgramMut};

// The hints of the two fixture crates must be linked in: name the crates.
pub use tld_test_hints_a::{
    Inner, Nested, TestStruct, DUMMY, HINT_A, NESTED, SEQ_BIG, SEQ_SMALL, SEQ_VALUE4, VALUE1,
    VALUE4,
};
pub use tld_test_hints_b::HINT_B;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tld_test.skel.rs"));
}
pub use skel::TldTestSkel;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod skel_618 {
    include!(concat!(env!("OUT_DIR"), "/tld_test_618.skel.rs"));
}
pub use skel_618::TldTest618Skel;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod typed_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_typed.skel.rs"));
}
pub use typed_skel::TldTypedSkel;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod consistent_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_consistent.skel.rs"));
}
pub use consistent_skel::TldConsistentSkel;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod consistent_patterns_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_consistent_patterns.skel.rs"));
}
pub use consistent_patterns_skel::TldConsistentPatternsSkel;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod isolation_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_isolation.skel.rs"));
}
pub use isolation_skel::TldIsolationSkel;

pub mod c;
#[cfg(doctest)]
pub mod docs;
pub mod hostile;
pub mod typed;

/// Mirror of `struct tld_read_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadCtx {
    pub init_ret: i64,
    pub found: u64,
    pub value1: i64,
    pub v4_a: u64,
    pub v4_b: u64,
    pub v4_c: u64,
    pub v4_d: u64,
    pub dummy_sum: u64,
    pub dummy_first: u8,
    pub dummy_last: u8,
    pub pad: [u8; 6],
    pub hint_a: u64,
    pub hint_b: u64,
    pub tid: i32,
    pub tgid: i32,
}

/// Bits of [`ReadCtx::found`].
pub mod found {
    pub const VALUE1: u64 = 1 << 0;
    pub const VALUE4: u64 = 1 << 1;
    pub const DUMMY: u64 = 1 << 2;
    pub const HINT_A: u64 = 1 << 3;
    pub const HINT_B: u64 = 1 << 4;
    pub const ALL: u64 = 0b11111;
}

/// Mirror of `struct tld_write_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteCtx {
    pub init_ret: i64,
    pub ret: i64,
    pub value1: i32,
    pub pad: u32,
    pub v4_a: u64,
    pub v4_b: u64,
    pub v4_c: u64,
    pub v4_d: u64,
}

/// Mirror of `struct tld_negative_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NegativeCtx {
    pub init_ret: i64,
    pub undeclared_is_null: u64,
    pub oversize_is_null: u64,
    pub oversize_after_cache_is_null: u64,
    pub exact_is_nonnull: u64,
}

/// Whether the environment demands that kernel tests run (`TLD_REQUIRE_BPF=1`, as in CI).
pub fn bpf_required() -> bool {
    std::env::var("TLD_REQUIRE_BPF").is_ok_and(|v| v == "1")
}

/// Loads the raw-API test BPF object, or says why it cannot and returns `None` so that the
/// test skips. Under `TLD_REQUIRE_BPF=1` a failure to load fails the test instead.
pub fn load(test: &str) -> Option<TldTestSkel<'static>> {
    load_skel(test, skel::TldTestSkelBuilder::default())
}

/// Loads `tld_test.bpf.c` built for the 6.18 generation of the format (`TLD_GEN_6_18`:
/// `tld_data_map`'s value is 16 bytes, and start is read from the page), as [`load`] does.
pub fn load_618(test: &str) -> Option<TldTest618Skel<'static>> {
    load_skel(test, skel_618::TldTest618SkelBuilder::default())
}

/// Loads the object built against the generated header, as [`load`] does.
pub fn load_typed(test: &str) -> Option<TldTypedSkel<'static>> {
    load_skel(test, typed_skel::TldTypedSkelBuilder::default())
}

/// Loads the object that reads and writes consistent hints, as [`load`] does.
pub fn load_consistent(test: &str) -> Option<TldConsistentSkel<'static>> {
    load_skel(test, consistent_skel::TldConsistentSkelBuilder::default())
}

/// Loads the object of the common consistent-read patterns, as [`load`] does.
pub fn load_consistent_patterns(test: &str) -> Option<TldConsistentPatternsSkel<'static>> {
    load_skel(
        test,
        consistent_patterns_skel::TldConsistentPatternsSkelBuilder::default(),
    )
}

/// Loads the object with the stale writers and the look-alike maps, as [`load`] does.
pub fn load_isolation(test: &str) -> Option<TldIsolationSkel<'static>> {
    load_skel(test, isolation_skel::TldIsolationSkelBuilder::default())
}

fn load_skel<B, O, S>(test: &str, builder: B) -> Option<S>
where
    B: SkelBuilder<'static, Output = O>,
    O: OpenSkel<'static, Output = S>,
{
    // The storage an open skeleton borrows must outlive it; tests keep it for the process.
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    // libbpf's account of a failed load goes into the message below, not onto stderr.
    LIBBPF_LOG.lock().unwrap().clear();
    let previous = libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, collect_libbpf_log)));
    let result = builder.open(storage).and_then(|open| open.load());
    libbpf_rs::set_print(previous);
    let log = std::mem::take(&mut *LIBBPF_LOG.lock().unwrap());
    match result {
        Ok(skel) => Some(skel),
        Err(e) if bpf_required() => {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{test}: TLD_REQUIRE_BPF=1 but the BPF programs do not load: {e:#}\nlibbpf:\n{}",
                tail.join("\n")
            )
        }
        Err(e) => {
            eprintln!(
                "SKIPPED {test}: cannot load BPF programs ({e}). This test needs root or \
                 CAP_BPF+CAP_PERFMON on Linux >= 6.13; set TLD_REQUIRE_BPF=1 to make this a \
                 failure."
            );
            None
        }
    }
}

static LIBBPF_LOG: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn collect_libbpf_log(_level: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.push_str(&msg);
    }
}

/// Runs a `SEC("syscall")` program as the calling thread with `ctx` as its context, and
/// returns the context as the program left it (the kernel copies it back into the input
/// buffer; syscall programs take no separate output buffer).
pub fn run<C: Copy>(prog: &ProgramMut<'_>, mut ctx: C) -> C {
    let size = std::mem::size_of::<C>();
    // SAFETY: the context structs are #[repr(C)] plain integers, valid for any bytes, and the
    // slice covers exactly `ctx`, which outlives it.
    let bytes = unsafe { std::slice::from_raw_parts_mut((&mut ctx as *mut C).cast::<u8>(), size) };
    let input = ProgramInput {
        context_in: Some(bytes),
        ..ProgramInput::default()
    };
    let output = prog.test_run(input).expect("BPF_PROG_TEST_RUN");
    assert_eq!(output.return_value, 0, "the program reports failure");
    ctx
}

/// What `tld_read` sees for the calling thread.
pub fn bpf_read(skel: &TldTestSkel<'_>) -> ReadCtx {
    run(&skel.progs.tld_read, ReadCtx::default())
}

/// Has `tld_write` store `value1` and `v4` into the calling thread's hints.
pub fn bpf_write(skel: &TldTestSkel<'_>, value1: i32, v4: TestStruct) -> WriteCtx {
    let ctx = WriteCtx {
        value1,
        v4_a: v4.a,
        v4_b: v4.b,
        v4_c: v4.c,
        v4_d: v4.d,
        ..WriteCtx::default()
    };
    run(&skel.progs.tld_write, ctx)
}

/// The negative lookups of `tld_negative` for the calling thread.
pub fn bpf_negative(skel: &TldTestSkel<'_>) -> NegativeCtx {
    run(&skel.progs.tld_negative, NegativeCtx::default())
}

/// Connects the runtime to the skeleton's `tld_data_map`.
pub fn connect(skel: &TldTestSkel<'_>) {
    use std::os::fd::AsFd;
    tld_runtime::connect(skel.maps.tld_data_map.as_fd()).expect("connect to tld_data_map");
}

/// `pidfd_open(tid, PIDFD_THREAD)`: a pidfd for thread `tid` of this process. Panics on
/// failure.
pub fn pidfd_of_thread(tid: i32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes two integers and touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, libc::PIDFD_THREAD) };
    assert!(
        fd >= 0,
        "pidfd_open({tid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }
}

/// The calling thread's id.
pub fn gettid() -> i32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::gettid() }
}

/// The process's one loaded test object, connected to the runtime; `None` (after saying why)
/// when BPF is unavailable and not required.
///
/// Tests in one binary share it: the runtime registers threads in one map at a time, so a second
/// object would move every thread to its own map.
pub fn shared(test: &str) -> Option<&'static TldTestSkel<'static>> {
    static SKEL: std::sync::OnceLock<Option<TldTestSkel<'static>>> = std::sync::OnceLock::new();
    SKEL.get_or_init(|| {
        let skel = load(test)?;
        connect(&skel);
        Some(skel)
    })
    .as_ref()
}

/// The byte sum `tld_read` reports for a `dummy` value.
pub fn byte_sum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

/// A map pinned in bpffs for the length of a test; unpinned on drop, so that tests leave no pin
/// behind.
pub struct PinnedMap {
    path: std::path::PathBuf,
}

impl PinnedMap {
    /// Pins `map` under a unique name in bpffs (mounting bpffs on /sys/fs/bpf if needed).
    /// Returns `None` after saying why if that is impossible and BPF is not required.
    pub fn pin(map: std::os::fd::BorrowedFd<'_>, name: &str) -> Option<PinnedMap> {
        use std::os::fd::AsRawFd;
        let dir = std::path::Path::new("/sys/fs/bpf");
        if let Err(e) = ensure_bpffs(dir) {
            if bpf_required() {
                panic!("TLD_REQUIRE_BPF=1 but bpffs is not available: {e}");
            }
            eprintln!(
                "SKIPPED: bpffs is not mounted at {} and cannot be: {e}",
                dir.display()
            );
            return None;
        }
        remove_stale_pins(dir);
        let path = dir.join(format!("tld_test_{name}_{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is NUL-terminated; the fd is open for the call.
        let rc = unsafe { libbpf_rs::libbpf_sys::bpf_obj_pin(map.as_raw_fd(), c.as_ptr()) };
        assert_eq!(rc, 0, "pinning the map at {} failed: {rc}", path.display());
        Some(PinnedMap { path })
    }

    /// Pins `map` at exactly `path` (bpffs must be mounted there). Panics on failure.
    pub fn pin_at(map: std::os::fd::BorrowedFd<'_>, path: &std::path::Path) -> PinnedMap {
        use std::os::fd::AsRawFd;
        let _ = std::fs::remove_file(path);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is NUL-terminated; the fd is open for the call.
        let rc = unsafe { libbpf_rs::libbpf_sys::bpf_obj_pin(map.as_raw_fd(), c.as_ptr()) };
        assert_eq!(rc, 0, "pinning the map at {} failed: {rc}", path.display());
        PinnedMap {
            path: path.to_path_buf(),
        }
    }

    /// Where the map is pinned.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for PinnedMap {
    fn drop(&mut self) {
        // Unpinning a BPF object is unlinking its file.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes pins that test processes which no longer exist left behind (a test killed before its
/// `PinnedMap` was dropped): every pin is named `tld_test_<what>_<pid>`.
fn remove_stale_pins(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name
            .strip_prefix("tld_test_")
            .and_then(|rest| rest.rsplit('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Mounts bpffs on `dir` unless it already is one.
pub fn ensure_bpffs(dir: &std::path::Path) -> Result<(), String> {
    const BPF_FS_MAGIC: i64 = 0xcafe4a11;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is NUL-terminated and `st` is a writable statfs.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    let fstype = c"bpf";
    // SAFETY: all strings are NUL-terminated; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            c.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

/// Mirror of `struct tld_read_pid_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadPidCtx {
    pub pid: i32,
    pub pad: i32,
    pub init_ret: i64,
    pub found: u64,
    pub value1: i64,
    pub hint_a: u64,
}

/// What `tld_read_pid` sees of the task with thread id `tid`, run from the calling thread.
pub fn bpf_read_pid(skel: &TldTestSkel<'_>, tid: i32) -> ReadPidCtx {
    run(
        &skel.progs.tld_read_pid,
        ReadPidCtx {
            pid: tid,
            ..ReadPidCtx::default()
        },
    )
}

/// Mirror of `struct tld_dyn_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DynCtx {
    pub init_ret: i64,
    pub found: u64,
    pub values: [u64; 10],
}

/// The values of the dynamic keys `dyn_0` .. `dyn_9` that BPF sees for the calling thread.
pub fn bpf_read_dyn(skel: &TldTestSkel<'_>) -> DynCtx {
    run(&skel.progs.tld_read_dyn, DynCtx::default())
}

/// Environment variable that tells a re-run test binary which part it plays.
pub const ROLE_ENV: &str = "TLD_TEST_ROLE";

/// The role this process plays, when a test re-ran its own binary.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// A command that re-runs this test binary for just `test`, playing `role`.
pub fn rerun(test: &str, role: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role);
    cmd
}

/// Waits up to `timeout` for `cond`, checking every few milliseconds.
pub fn wait_for(timeout: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    cond()
}

/// A barrier for test threads that fails instead of hanging. When a thread panics before it
/// reaches the barrier, the others would wait at a [`std::sync::Barrier`] for ever, and the
/// test would hang instead of reporting the panic. Here they give up after [`Self::TIMEOUT`]
/// with a panic of their own, so that the test ends and shows the first one.
pub struct Rendezvous {
    threads: usize,
    /// Threads arrived in the current round, and the round's number.
    state: std::sync::Mutex<(usize, u64)>,
    all_arrived: std::sync::Condvar,
}

impl Rendezvous {
    /// How long a thread waits for the others.
    pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

    /// A rendezvous of `threads` threads, reusable round after round as a `Barrier` is.
    pub fn new(threads: usize) -> Rendezvous {
        Rendezvous {
            threads,
            state: std::sync::Mutex::new((0, 0)),
            all_arrived: std::sync::Condvar::new(),
        }
    }

    /// Waits until all the threads have called `wait` in this round; panics if they have not
    /// within [`Self::TIMEOUT`].
    pub fn wait(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let round = state.1;
        state.0 += 1;
        if state.0 == self.threads {
            *state = (0, round + 1);
            self.all_arrived.notify_all();
            return;
        }
        let (state, _) = self
            .all_arrived
            .wait_timeout_while(state, Self::TIMEOUT, |s| s.1 == round)
            .unwrap_or_else(|e| e.into_inner());
        if state.1 == round {
            let arrived = state.0;
            drop(state);
            panic!(
                "only {arrived} of {} threads reached the rendezvous within {:?}: another one \
                 failed (see its panic above)",
                self.threads,
                Self::TIMEOUT
            );
        }
    }
}

/// The kernel's own task local data selftests (fetched at test time, see [`tld_upstream`]), or
/// `None` after saying SKIPPED and why when they cannot be had. Under `TLD_REQUIRE_BPF=1` that
/// is a failure instead.
pub fn kernel_selftests(test: &str) -> Option<tld_upstream::Selftests> {
    match tld_upstream::selftests(&tld_upstream::cache_dir()) {
        Ok(s) => Some(s),
        Err(e) => {
            upstream_unavailable(test, &e);
            None
        }
    }
}

/// Reports that something fetched or built from upstream is not available: SKIPPED, or a panic
/// under `TLD_REQUIRE_BPF=1` (or for a failure that is not about availability).
pub fn upstream_unavailable(test: &str, e: &tld_upstream::Error) {
    match e {
        tld_upstream::Error::Unavailable(why) if !bpf_required() => eprintln!(
            "SKIPPED {test}: {why} (the kernel's selftests are fetched at test time; set \
             TLD_REQUIRE_BPF=1 to make this a failure)"
        ),
        e => panic!("{test}: {e}"),
    }
}

/// A child process of a test whose lines on standard output the test reads; killed and reaped
/// when dropped. Its standard input stays open until [`Child::finish`], which programs that
/// wait for it to close take as the signal to exit.
pub struct Child {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Child {
    /// Starts `cmd` with piped standard input and output.
    pub fn spawn(mut cmd: std::process::Command) -> Child {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let out = child.stdout.take().expect("piped");
        Child {
            child,
            lines: std::io::BufReader::new(out).lines(),
        }
    }

    /// The next line the child prints that starts with `prefix`, without it. Panics if the
    /// child exits first.
    pub fn line(&mut self, prefix: &str) -> String {
        for line in self.lines.by_ref() {
            let line = line.expect("reading the child's output");
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_string();
            }
        }
        let status = self.child.wait().expect("wait");
        panic!("the child exited ({status}) before printing a line starting with {prefix:?}");
    }

    /// The child's process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Closes the child's standard input and waits for it; panics unless it exits with 0.
    pub fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "the child exited with {status}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
