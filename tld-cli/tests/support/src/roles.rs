//! The processes under test: this test binary, re-run with a role ([`ROLE_ENV`]).
//!
//! - `app`: a tld-runtime application with the static hints of [`crate::hints`] and dynamic
//!   keys, on two named threads, auto-connected to the pinned map (`app-both`: registered in the
//!   fixture's 6.18 map too);
//! - `raw`: another writer, which registers hand-made pages (hostile ones, and one valid page in
//!   another writer's style) with `bpf_map_update_elem`, as any library could;
//! - `churn`: threads that register and exit as fast as they can.
//!
//! Each prints `ready PID TID...` once set up and exits when its stdin closes or gets a line.
//! [`RoleChild`] starts one and reads that line.

use std::io::{BufRead, BufReader, Lines, Write};
use std::os::fd::{AsFd, FromRawFd};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;

use tld_runtime::{DynamicHint, DynamicKey};

use crate::hints::*;

/// For the `app-both` role: registers every thread in the fixture's 6.18 map too, pinned next
/// to the 7.x one (see [`crate::bpf::Fixture::pin_618`]).
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
