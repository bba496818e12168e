//! After `fork()`, the child's thread is registered with its own page and BPF sees the child's
//! values; the parent is unaffected.

use std::thread;

use tld_tests::*;

/// Runs in the child, which has only the forking thread. Returns an exit code: 0 if all held.
fn child(skel: &'static TldTestSkel<'static>) -> i32 {
    let r = bpf_read(skel);
    if r.init_ret != 0 {
        return 10; // the child was not registered
    }
    if r.tid != gettid() {
        return 11;
    }
    if r.value1 != 10 || r.hint_a != 1010 {
        return 12; // the child starts with a copy of the parent's values
    }
    VALUE1.set(20);
    if bpf_read(skel).value1 != 20 {
        return 13; // BPF must see the child's own page
    }
    // A thread started in the child gets a page and is registered too.
    let spawned = thread::spawn(move || {
        VALUE1.set(30);
        let r = bpf_read(skel);
        (r.init_ret, r.value1)
    })
    .join();
    if spawned.ok() != Some((0, 30)) {
        return 14;
    }
    if tld_runtime::status().live_threads != 1 {
        return 15; // only the forking thread's record survives
    }
    0
}

#[test]
fn a_forked_child_registers_its_own_page_and_the_parent_is_unaffected() {
    let Some(skel) = shared("a_forked_child_registers_its_own_page") else {
        return;
    };
    VALUE1.set(10);
    HINT_A.set(1010);
    assert_eq!(bpf_read(skel).value1, 10);

    // SAFETY: the child runs only `child`, which touches this process's own state and the
    // kernel, and leaves with `_exit` without unwinding or running the parent's exit handlers.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(|| child(skel)).unwrap_or(99);
        // SAFETY: `_exit` ends the child at once; nothing of it is used afterwards.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a writable int.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status),
        "the child died: status {status:#x}"
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child's check failed (see fork.rs)"
    );

    let r = bpf_read(skel);
    assert_eq!((r.init_ret, r.value1, r.hint_a), (0, 10, 1010));
    assert_eq!(VALUE1.get(), 10);
}
