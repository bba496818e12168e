//! Shared pieces of the inspector's tests: the BPF fixture (a pinned `tld_data_map` and a
//! program that writes into pages), processes with known hints, and running `tld`.
//!
//! The processes under test are this test binary, re-run with a role (`TLD_CLI_TEST_ROLE`):
//! - `app`: a tld-runtime application with static hints (a derived struct among them) and
//!   dynamic keys, on two named threads, auto-connected to the pinned map;
//! - `raw`: another writer, which registers hand-made pages (hostile ones, and one valid page in
//!   another writer's style) with `bpf_map_update_elem`, as any library could;
//! - `churn`: threads that register and exit as fast as they can.
//!
//! Each prints `ready PID TID...` once set up and exits when its stdin closes or gets a line.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Lines, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject, ProgramInput};
use tld_runtime::{task_local_data, DynamicHint, DynamicKey, TldType};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tld_cli_fixture.skel.rs"));
}
use skel::{TldCliFixtureSkel, TldCliFixtureSkelBuilder};

// ---------------------------------------------------------------------------------------------
// The hints of the `app` role.

/// A window of time, nested in [`Latency`].
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Window {
    pub start_us: u32,
    pub len_us: u32,
}

/// A derived struct with integers of both signs and sizes, an array of structs and a float.
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Latency {
    pub budget_us: u32,
    pub class: i16,
    pub urgent: u8,
    pub tier: u8,
    pub windows: [Window; 2],
    pub weight: f64,
}

/// Key "priority".
#[task_local_data]
pub static PRIORITY: i32 = 0;

/// Key "latency".
#[task_local_data]
pub static LATENCY: Latency = Latency {
    budget_us: 0,
    class: 0,
    urgent: 0,
    tier: 0,
    windows: [Window {
        start_us: 0,
        len_us: 0,
    }; 2],
    weight: 0.0,
};

/// Key "active": a bool.
#[task_local_data]
pub static ACTIVE: bool = false;

/// Key "flags": unsigned, so that the schema changes how it decodes.
#[task_local_data]
pub static FLAGS: u16 = 0;

/// Key "blob": 12 bytes, which decode to nothing without a schema.
#[task_local_data]
pub static BLOB: [u8; 12] = [0; 12];

/// Key "bpf_counter": written by BPF in the tests.
#[task_local_data]
pub static BPF_COUNTER: u64 = 0;

/// Each thread of the `app` role: its name and the values it sets.
pub struct AppThread {
    pub name: &'static str,
    pub active: bool,
    pub priority: i32,
    pub latency: Latency,
    pub flags: u16,
    pub blob: [u8; 12],
    /// Written to the dynamic key `dyn_budget_ns` (u64).
    pub budget_ns: u64,
    /// Written to the dynamic key `dyn_raw` (3 bytes).
    pub raw: [u8; 3],
}

pub const APP_THREADS: [AppThread; 2] = [
    AppThread {
        name: "tld-app-a",
        active: true,
        priority: 90,
        latency: Latency {
            budget_us: 500,
            class: -2,
            urgent: 1,
            tier: 3,
            windows: [
                Window {
                    start_us: 1,
                    len_us: 2,
                },
                Window {
                    start_us: 3,
                    len_us: 4,
                },
            ],
            weight: 0.25,
        },
        flags: 0xfffe,
        blob: *b"hello world!",
        budget_ns: 250_000,
        raw: [1, 2, 3],
    },
    AppThread {
        name: "tld-app-b",
        active: false,
        priority: -7,
        latency: Latency {
            budget_us: 0,
            class: 0,
            urgent: 0,
            tier: 0,
            windows: [Window {
                start_us: 0,
                len_us: 0,
            }; 2],
            weight: 0.0,
        },
        flags: 1,
        blob: [0; 12],
        budget_ns: 0,
        raw: [0; 3],
    },
];

/// Offsets of the keys in an `app` thread's page: the static keys sorted by name after the
/// 16-byte header (start and fingerprint), each rounded up to 8 bytes, then the dynamic keys in
/// creation order.
pub mod offsets {
    pub const ACTIVE: usize = 16;
    pub const BLOB: usize = 24;
    pub const BPF_COUNTER: usize = 40;
    pub const FLAGS: usize = 48;
    pub const LATENCY: usize = 56;
    pub const PRIORITY: usize = 88;
    pub const DYN_BUDGET_NS: usize = 96;
    pub const DYN_RAW: usize = 104;
}

/// For the `app-both` role: registers every thread in the fixture's 6.18 map too, pinned next
/// to the 7.x one (see [`Fixture::pin_618`]).
fn also_618() {
    let pin = std::env::var("TLD_MAP_PATH").expect("TLD_MAP_PATH");
    let pin = pin.replace("/tld_cli_test_", "/tld_cli_test_618_");
    let path = std::ffi::CString::new(pin).unwrap();
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_obj_get(path.as_ptr()) };
    assert!(fd >= 0, "bpf_obj_get({path:?}): {fd}");
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    tld_runtime::connect_also(fd.as_fd()).expect("connect_also to the 6.18 map");
}

/// The `app` role: two named threads set their hints and register; the parent is told their
/// tids.
fn app() {
    let (tx, rx) = mpsc::channel::<i32>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_rx = std::sync::Arc::new(std::sync::Mutex::new(done_rx));
    let mut handles = Vec::new();
    let mut tids = Vec::new();
    for (i, t) in APP_THREADS.iter().enumerate() {
        let tx = tx.clone();
        let done = done_rx.clone();
        let spawned = std::thread::Builder::new()
            .name(t.name.into())
            .spawn(move || {
                let t = &APP_THREADS[i];
                PRIORITY.set(t.priority);
                ACTIVE.set(t.active);
                LATENCY.set(t.latency);
                FLAGS.set(t.flags);
                BLOB.set(t.blob);
                // The first thread creates the dynamic keys; the second finds them.
                let (budget, raw) = if i == 0 {
                    (
                        DynamicHint::<u64>::create("dyn_budget_ns").expect("create dyn_budget_ns"),
                        DynamicKey::create("dyn_raw", 3).expect("create dyn_raw"),
                    )
                } else {
                    (
                        DynamicHint::<u64>::find("dyn_budget_ns").expect("find dyn_budget_ns"),
                        DynamicKey::find("dyn_raw").expect("find dyn_raw"),
                    )
                };
                assert_eq!(budget.key().offset(), offsets::DYN_BUDGET_NS);
                assert_eq!(raw.offset(), offsets::DYN_RAW);
                budget.set(t.budget_ns);
                raw.write(&t.raw);
                tld_runtime::thread_init().expect("the thread registers");
                // SAFETY: gettid cannot fail.
                tx.send(unsafe { libc::gettid() }).unwrap();
                // Wait for the end (all threads share the receiver; each takes one message).
                let _ = done.lock().unwrap().recv();
            })
            .expect("spawn");
        handles.push(spawned);
        // Strictly one after the other: the second thread finds the first one's keys.
        tids.push(rx.recv().expect("the thread is ready"));
    }
    let status = tld_runtime::status();
    assert!(status.is_connected(), "{status}");
    ready_line(&tids);
    wait_for_parent();
    for _ in &handles {
        let _ = done_tx.send(());
    }
    for h in handles {
        h.join().expect("app thread");
    }
}

// ---------------------------------------------------------------------------------------------
// The `raw` role: another writer's pages, hostile and not.

/// Each thread of the `raw` role, by name.
pub const RAW_THREADS: [&str; 6] = [
    "raw-badcnt",
    "raw-noterm",
    "raw-overflow",
    "raw-nodata",
    "raw-cstyle",
    "raw-7x-block",
];

/// Two zeroed, page-aligned pages that live for the rest of the process.
fn pages() -> (*mut u8, *mut u8) {
    // SAFETY: an anonymous private mapping; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    let p = p.cast::<u8>();
    // SAFETY: the mapping has two pages.
    (p, unsafe { p.add(4096) })
}

/// Writes `bytes` at `offset` of a page from [`pages`].
fn put(page: *mut u8, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= 4096);
    // SAFETY: the range lies inside the page, which nothing else uses yet.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), page.add(offset), bytes.len()) };
}

/// A metadata entry: name and size.
fn entry(meta: *mut u8, index: usize, name: &[u8], size: u16) {
    put(meta, 4 + index * 64, name);
    put(meta, 4 + index * 64 + 62, &size.to_ne_bytes());
}

/// Registers the calling thread with `data` and `meta` in the map at `fd` (the fixture's 7.x
/// map), with `start` in the value.
fn register_raw(fd: i32, data: *mut u8, meta: *mut u8, start: u16) {
    // SAFETY: gettid cannot fail; pidfd_open takes integers.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::gettid(), libc::PIDFD_THREAD) };
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    let pidfd = pidfd as i32;
    let value: [u64; 3] = [data as u64, meta as u64, u64::from(start)];
    // SAFETY: key and value are valid for the map's 4 and 24 bytes.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_update_elem(
            fd,
            (&pidfd as *const i32).cast(),
            value.as_ptr().cast(),
            0,
        )
    };
    assert_eq!(rc, 0, "bpf_map_update_elem");
    // SAFETY: the fd is ours.
    unsafe { libc::close(pidfd) };
}

/// Fills the pages of raw thread `which`; returns them and the `start` for the value.
fn raw_pages(which: &str) -> (*mut u8, *mut u8, u16) {
    let (data, meta) = pages();
    put(data, 0, &16u64.to_ne_bytes());
    let mut start = 16;
    match which {
        "raw-badcnt" => {
            put(meta, 0, &0xffffu16.to_ne_bytes());
            entry(meta, 0, b"a\0", 4);
        }
        "raw-noterm" => {
            put(meta, 0, &1u16.to_ne_bytes());
            entry(meta, 0, &[b'x'; 62], 4);
        }
        "raw-overflow" => {
            put(meta, 0, &2u16.to_ne_bytes());
            entry(meta, 0, b"big\0", 4000);
            entry(meta, 1, b"past_the_end\0", 200);
        }
        "raw-nodata" => {
            put(meta, 0, &1u16.to_ne_bytes());
            entry(meta, 0, b"a\0", 4);
        }
        "raw-cstyle" => {
            // The kernel's C library: a u8 count, data right after `start` (start = 8).
            put(meta, 0, &[3]);
            entry(meta, 0, b"prio\0", 4);
            entry(meta, 1, b"in_cs\0", 1);
            entry(meta, 2, b"tag\0", 3);
            put(data, 0, &8u64.to_ne_bytes());
            put(data, 8, &7i32.to_ne_bytes());
            put(data, 16, &[1]);
            put(data, 24, b"abc");
            start = 8;
        }
        "raw-7x-block" => {
            // The kernel's 7.x C library with a small block in the middle of a page: start
            // (1032) is in the value only; the page's first word is someone else's bytes.
            put(meta, 0, &2u16.to_ne_bytes());
            entry(meta, 0, b"prio\0", 4);
            entry(meta, 1, b"in_cs\0", 1);
            put(data, 0, &0x5a5a_dead_beef_5a5au64.to_ne_bytes());
            put(data, 1032, &9i32.to_ne_bytes());
            put(data, 1040, &[1]);
            start = 1032;
        }
        other => panic!("unknown raw thread {other}"),
    }
    (data, meta, start)
}

/// The `raw` role.
fn raw() {
    let pin = std::env::var_os("TLD_MAP_PATH").expect("TLD_MAP_PATH");
    let path = std::ffi::CString::new(pin.as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_obj_get(path.as_ptr()) };
    assert!(fd >= 0, "bpf_obj_get: {fd}");
    let (tx, rx) = mpsc::channel::<i32>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_rx = std::sync::Arc::new(std::sync::Mutex::new(done_rx));
    let mut handles = Vec::new();
    let mut tids = Vec::new();
    for name in RAW_THREADS {
        let tx = tx.clone();
        let done = done_rx.clone();
        handles.push(
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let (data, meta, start) = raw_pages(name);
                    let data = if name == "raw-nodata" {
                        std::ptr::null_mut()
                    } else {
                        data
                    };
                    register_raw(fd, data, meta, start);
                    // SAFETY: gettid cannot fail.
                    tx.send(unsafe { libc::gettid() }).unwrap();
                    let _ = done.lock().unwrap().recv();
                })
                .expect("spawn"),
        );
        tids.push(rx.recv().unwrap());
    }
    ready_line(&tids);
    wait_for_parent();
    for _ in &handles {
        let _ = done_tx.send(());
    }
    for h in handles {
        h.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The `churn` role.

/// Threads that set a hint (and so register) and exit, until the parent says stop.
fn churn() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::Builder::new()
                        .name("churn".into())
                        .spawn(move || PRIORITY.set(n as i32))
                        .unwrap()
                        .join()
                        .unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    ready_line(&[]);
    wait_for_parent();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Roles and children.

/// Environment variable that tells a re-run test binary which role it plays.
pub const ROLE_ENV: &str = "TLD_CLI_TEST_ROLE";

/// The role this process plays, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// Plays `role` (call first thing in the test function that spawned it).
pub fn play(role: &str) {
    match role {
        "app" => app(),
        "app-both" => {
            also_618();
            app()
        }
        "raw" => raw(),
        "churn" => churn(),
        other => panic!("unknown role {other}"),
    }
}

/// Tells the parent: `ready PID TID...`, on a line of its own.
pub fn ready_line(tids: &[i32]) {
    let tids: Vec<String> = tids.iter().map(i32::to_string).collect();
    println!("\nready {} {}", std::process::id(), tids.join(" "));
    std::io::stdout().flush().unwrap();
}

/// Waits until the parent closes stdin or sends a line.
pub fn wait_for_parent() {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// A child playing a role.
pub struct RoleChild {
    /// `None` once finished.
    child: Option<Child>,
    lines: Lines<BufReader<ChildStdout>>,
    /// Its pid.
    pub pid: i32,
    /// The tids it reported (threads it registered).
    pub tids: Vec<i32>,
}

impl RoleChild {
    /// Re-runs this test binary for `test`, playing `role`, with `TLD_MAP_PATH` = `pin`.
    pub fn spawn(test: &str, role: &str, pin: &Path) -> RoleChild {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, role)
            .env("TLD_MAP_PATH", pin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut tids = Vec::new();
        let mut pid = None;
        for line in lines.by_ref() {
            let line = line.expect("child output");
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"ready") {
                pid = words.get(1).and_then(|p| p.parse().ok());
                tids = words[2..]
                    .iter()
                    .map(|t| t.parse().expect("a tid"))
                    .collect();
                break;
            }
        }
        let Some(pid) = pid else {
            let status = child.wait().unwrap();
            panic!("the {role} child ended before it was ready ({status})");
        };
        RoleChild {
            child: Some(child),
            lines,
            pid,
            tids,
        }
    }

    /// Lets the child end and checks that it passed.
    pub fn finish(mut self) {
        let mut child = self.child.take().expect("not finished yet");
        let _ = writeln!(child.stdin.take().unwrap(), "done");
        let status = child.wait().unwrap();
        for line in self.lines.by_ref().map_while(Result::ok) {
            eprintln!("child: {line}");
        }
        assert!(status.success(), "the child failed: {status}");
    }

    /// Kills the child at once.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RoleChild {
    /// A child left behind by a failing test is killed, not left waiting.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Privileges and skipping.

/// Whether kernel tests must run (`TLD_REQUIRE_BPF=1`, as in CI).
pub fn bpf_required() -> bool {
    std::env::var("TLD_REQUIRE_BPF").is_ok_and(|v| v == "1")
}

/// Skips the test after saying why, or fails it under `TLD_REQUIRE_BPF=1`.
pub fn skip(test: &str, why: &str) {
    if bpf_required() {
        panic!("{test}: TLD_REQUIRE_BPF=1 but {why}");
    }
    eprintln!("SKIPPED {test}: {why}; set TLD_REQUIRE_BPF=1 to make this a failure");
}

// ---------------------------------------------------------------------------------------------
// The BPF fixture.

/// The fixture object, loaded, with its map pinned under a name unique to this test process.
pub struct Fixture {
    skel: TldCliFixtureSkel<'static>,
    /// Where the 7.x map is pinned.
    pin: PathBuf,
    /// Where the 6.18 map is pinned.
    pin_618: PathBuf,
}

/// Mirrors `struct write_ctx` of the fixture.
#[repr(C)]
#[derive(Clone, Copy)]
struct WriteCtx {
    tid: i32,
    which: u32,
    offset: u32,
    len: u32,
    bytes: [u8; 64],
    ret: i64,
}

/// Which page [`Fixture::write`] writes.
#[derive(Clone, Copy, Debug)]
pub enum Page {
    Data = 0,
    Meta = 1,
}

static LOG: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn log(_: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut l) = LOG.lock() {
        l.push_str(&msg);
    }
}

impl Fixture {
    /// Loads the fixture and pins its map, or says why not and returns `None` (a failure under
    /// `TLD_REQUIRE_BPF=1`).
    pub fn load(test: &str) -> Option<Fixture> {
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let previous = libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, log)));
        let result = TldCliFixtureSkelBuilder::default()
            .open(storage)
            .and_then(|o| o.load());
        libbpf_rs::set_print(previous);
        let skel = match result {
            Ok(skel) => skel,
            Err(e) => {
                let log = LOG.lock().unwrap().clone();
                skip(
                    test,
                    &format!(
                        "the BPF fixture does not load ({e}); these tests need root (or \
                         CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN) on Linux >= 6.13\n{log}"
                    ),
                );
                return None;
            }
        };
        let dir = Path::new("/sys/fs/bpf");
        if let Err(e) = ensure_bpffs(dir) {
            skip(test, &format!("bpffs is not mounted at /sys/fs/bpf: {e}"));
            return None;
        }
        remove_stale_pins(dir);
        let pin = dir.join(format!("tld_cli_test_{test}_{}", std::process::id()));
        let _ = std::fs::remove_file(&pin);
        let c = std::ffi::CString::new(pin.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and an open fd.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_obj_pin(
                skel.maps.tld_data_map.as_fd().as_raw_fd(),
                c.as_ptr(),
            )
        };
        assert_eq!(rc, 0, "pinning at {}", pin.display());
        // The 6.18 map next to it.
        let pin_618 = dir.join(format!("tld_cli_test_618_{test}_{}", std::process::id()));
        let _ = std::fs::remove_file(&pin_618);
        let c = std::ffi::CString::new(pin_618.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and an open fd.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_obj_pin(
                skel.maps.tld_data_map_618.as_fd().as_raw_fd(),
                c.as_ptr(),
            )
        };
        assert_eq!(rc, 0, "pinning at {}", pin_618.display());
        Some(Fixture { skel, pin, pin_618 })
    }

    /// Where the map is pinned (the 7.x generation).
    pub fn pin(&self) -> &Path {
        &self.pin
    }

    /// Where the fixture's map of the 6.18 generation is pinned.
    pub fn pin_618(&self) -> &Path {
        &self.pin_618
    }

    /// The map's id.
    pub fn map_id(&self) -> u32 {
        self.skel
            .maps
            .tld_data_map
            .info()
            .expect("map info")
            .info
            .id
    }

    /// The id of another map of the fixture, which is not a task local data map (an array).
    pub fn other_map_id(&self) -> u32 {
        self.skel.maps.bss.info().expect("map info").info.id
    }

    /// Has BPF write `bytes` at `offset` of thread `tid`'s page; returns the program's result.
    pub fn write(&self, tid: i32, page: Page, offset: usize, bytes: &[u8]) -> i64 {
        let mut ctx = WriteCtx {
            tid,
            which: page as u32,
            offset: offset as u32,
            len: bytes.len() as u32,
            bytes: [0; 64],
            ret: 1,
        };
        ctx.bytes[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: WriteCtx is plain integers, and the slice covers exactly `ctx`.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(
                (&mut ctx as *mut WriteCtx).cast::<u8>(),
                std::mem::size_of::<WriteCtx>(),
            )
        };
        let input = ProgramInput {
            context_in: Some(buf),
            ..ProgramInput::default()
        };
        self.skel
            .progs
            .write_page
            .test_run(input)
            .expect("run write_page");
        ctx.ret
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pin);
        let _ = std::fs::remove_file(&self.pin_618);
    }
}

/// Removes pins of test processes that are gone: `tld_cli_test_<test>_<pid>`.
fn remove_stale_pins(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name
            .strip_prefix("tld_cli_test_")
            .and_then(|rest| rest.rsplit('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Mounts bpffs on `dir` unless it already is one.
fn ensure_bpffs(dir: &Path) -> Result<(), String> {
    const BPF_FS_MAGIC: i64 = 0xcafe4a11;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and a writable statfs.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    // SAFETY: NUL-terminated strings, no data argument.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            c.as_ptr(),
            c"bpf".as_ptr(),
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

// ---------------------------------------------------------------------------------------------
// Running tld.

/// The `tld` binary under test.
pub fn tld_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tld"))
}

/// How long one run of `tld` may take before the test calls it hung.
pub const TLD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion, killing it and failing the test if it takes longer than
/// [`TLD_TIMEOUT`].
pub fn run_bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tld");
    // Read the pipes on threads so that a full pipe cannot stall the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).map(|_| v)
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).map(|_| v)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TLD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tld did not finish within {TLD_TIMEOUT:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// Runs `tld` with `args`, with `TLD_MAP_PATH` unset.
pub fn tld(args: &[&str]) -> Output {
    let mut cmd = Command::new(tld_bin());
    cmd.args(args).env_remove("TLD_MAP_PATH");
    run_bounded(cmd)
}

/// Runs `tld` with `args` and expects success; returns its standard output.
pub fn tld_ok(args: &[&str]) -> String {
    let out = tld(args);
    assert!(
        out.status.success(),
        "tld {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Standard error of a run, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
