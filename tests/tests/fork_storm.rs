//! `fork()` never hangs, whatever other threads are doing in the runtime at that moment:
//! registering new threads, creating dynamic keys, connecting, or reading `status()`.
//!
//! 1,000 forks while four threads hammer each of those operations. Each child uses every part
//! of the runtime (status, a hint, `thread_init`, a dynamic key, a new thread, BPF's view of
//! it) and must exit 0 within its timeout; a child that does not is killed and counted as hung.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tld_runtime::DynamicKey;
use tld_tests::*;

const TEST: &str = "forks_never_hang_while_other_threads_use_the_runtime";
const FORKS: usize = 1_000;
const HAMMERS_PER_KIND: usize = 4;
/// How long a child may take before it counts as hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);

/// A short pause between a hammering thread's operations, so that the 16 of them leave the
/// forking thread and its children some CPU on a small machine; each still runs thousands of
/// operations a second.
fn pace() {
    thread::sleep(Duration::from_micros(20));
}

/// The child's checks; its exit code is the first one that failed (0: all held).
fn child(skel: &TldTestSkel<'_>) -> i32 {
    let _ = tld_runtime::status();
    VALUE1.set(4242);
    if VALUE1.get() != 4242 {
        return 10;
    }
    if tld_runtime::thread_init().is_err() {
        return 11;
    }
    let r = bpf_read(skel);
    if r.init_ret != 0 || r.tid != gettid() || r.value1 != 4242 {
        return 12; // the child's thread is registered with its own page
    }
    let _ = DynamicKey::create("fork_child_key", 8);
    if raw_thread(new_thread_in_child) != 7 {
        return 13;
    }
    if !tld_runtime::status().is_connected() {
        return 14;
    }
    0
}

/// The body of a thread started in the child: a hint works there too.
extern "C" fn new_thread_in_child(_: *mut libc::c_void) -> *mut libc::c_void {
    HINT_A.set(7);
    HINT_A.get() as usize as *mut libc::c_void
}

/// Runs `body` on a new thread made with `pthread_create` and returns what it returned.
///
/// Not `std::thread::spawn`: std registers every new thread under a process-wide lock of its
/// own, which a fork can catch held by one of the parent's threads (the hammering threads
/// spawn threads all the time), and then the child's spawn waits forever. That is std's
/// limitation, not the runtime's; a plain pthread shows the runtime's part.
fn raw_thread(body: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void) -> usize {
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `thread` is writable; `body` is a valid start routine that ignores its argument.
    let rc =
        unsafe { libc::pthread_create(&mut thread, std::ptr::null(), body, std::ptr::null_mut()) };
    if rc != 0 {
        return usize::MAX;
    }
    let mut ret: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: `thread` was just created and is joined once.
    unsafe { libc::pthread_join(thread, &mut ret) };
    ret as usize
}

/// Waits for `pid` up to the timeout; kills it if it is still running. Returns its exit code,
/// or `None` if it hung.
fn wait_child(pid: libc::pid_t) -> Option<i32> {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a writable int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
        assert_eq!(r, 0, "waitpid failed");
        if start.elapsed() > CHILD_TIMEOUT {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn forks_never_hang_while_other_threads_use_the_runtime() {
    let Some(skel) = shared(TEST) else {
        return;
    };
    VALUE1.set(1);
    let stop = AtomicBool::new(false);
    let ops = AtomicU64::new(0);
    let (mut hung, mut failed) = (0usize, Vec::new());
    thread::scope(|s| {
        let (stop, ops) = (&stop, &ops);
        for h in 0..HAMMERS_PER_KIND {
            // New threads registering.
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::spawn(move || VALUE1.set(h as i32)).join().unwrap();
                    ops.fetch_add(1, Ordering::Relaxed);
                    pace();
                }
            });
            // Dynamic keys (they run out of slots soon; failing creations still lock).
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let _ = DynamicKey::create(&format!("storm_{h}_{n}"), 8);
                    let _ = DynamicKey::find("value1");
                    n += 1;
                    ops.fetch_add(1, Ordering::Relaxed);
                    pace();
                }
            });
            // Connecting (again to the same map: every live thread is registered again).
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = tld_runtime::connect(skel.maps.tld_data_map.as_fd());
                    ops.fetch_add(1, Ordering::Relaxed);
                    pace();
                }
            });
            // Status.
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = tld_runtime::status();
                    ops.fetch_add(1, Ordering::Relaxed);
                    pace();
                }
            });
        }

        for i in 0..FORKS {
            // SAFETY: the child runs only `child`, which uses this process's own state and the
            // kernel, and leaves with `_exit`, without unwinding or running exit handlers.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child(skel)))
                    .unwrap_or(99);
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(code) };
            }
            match wait_child(pid) {
                None => hung += 1,
                Some(0) => {}
                Some(code) => failed.push((i, code)),
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    eprintln!(
        "fork storm: {FORKS} forks, {hung} hung, {} failed, {} operations by the hammering \
         threads",
        failed.len(),
        ops.load(Ordering::Relaxed)
    );
    assert_eq!(hung, 0, "{hung} of {FORKS} children hung");
    assert!(
        failed.is_empty(),
        "children failed (fork number, exit code; see fork_storm.rs): {failed:?}"
    );
    assert!(
        ops.load(Ordering::Relaxed) > FORKS as u64,
        "the hammering threads barely ran"
    );
}
