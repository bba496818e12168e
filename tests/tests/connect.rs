//! `connect()` is all or nothing: a map that is not a `tld_data_map`, or one in which a thread
//! cannot be registered, leaves the previous connection and every registration exactly as they
//! were; a map that works takes every live thread, and the old map's elements are deleted.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::thread;

use libbpf_rs::{MapCore, MapFlags};
use tld_runtime::{Connection, Error};
use tld_tests::*;

const TEST: &str = "a_failed_connect_changes_nothing_and_a_good_one_moves_everything";

/// An fd of `map` through which user space may only read: updates fail with EPERM.
fn read_only_fd(map: &libbpf_rs::Map<'_>) -> OwnedFd {
    let id = map.info().expect("map info").info.id;
    let opts = libbpf_rs::libbpf_sys::bpf_get_fd_by_id_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_get_fd_by_id_opts>() as _,
        open_flags: libbpf_rs::libbpf_sys::BPF_F_RDONLY,
        ..Default::default()
    };
    // SAFETY: `opts` is a valid, sized options struct that outlives the call.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_map_get_fd_by_id_opts(id, &opts) };
    assert!(fd >= 0, "bpf_map_get_fd_by_id_opts: {fd}");
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Whether thread `tid` has an element in `map`.
fn has_element(map: &libbpf_rs::Map<'_>, tid: i32) -> bool {
    let pidfd = pidfd_of_thread(tid);
    map.lookup(&pidfd.as_raw_fd().to_ne_bytes(), MapFlags::ANY)
        .expect("look the element up")
        .is_some()
}

fn connected_map_id() -> Option<u32> {
    match tld_runtime::status().connection {
        Connection::Connected { map_id, .. } => Some(map_id),
        _ => None,
    }
}

#[test]
fn a_failed_connect_changes_nothing_and_a_good_one_moves_everything() {
    let Some(a) = load(TEST) else {
        return;
    };
    let b = load(TEST).expect("loaded once, loads twice");
    let lookalikes = load_isolation(TEST).expect("the test objects load");
    let (a, b) = (&a, &b);
    // The main thread has a page too.
    VALUE1.set(1);
    tld_runtime::connect(a.maps.tld_data_map.as_fd()).expect("connect to A");
    let a_id = connected_map_id().expect("connected");

    const THREADS: i32 = 4;
    let registered = Rendezvous::new(THREADS as usize + 1);
    let checked = Rendezvous::new(THREADS as usize + 1);
    let read_a = Rendezvous::new(THREADS as usize + 1);
    let moved = Rendezvous::new(THREADS as usize + 1);
    let (tid_tx, tid_rx) = mpsc::channel();
    thread::scope(|s| {
        for i in 0..THREADS {
            let (registered, checked, read_a, moved) = (&registered, &checked, &read_a, &moved);
            let tid_tx = tid_tx.clone();
            s.spawn(move || {
                VALUE1.set(900 + i);
                tid_tx.send(gettid()).unwrap();
                registered.wait();
                // Every failed connect has happened: still registered in A, values intact.
                checked.wait();
                let in_a = bpf_read(a);
                read_a.wait();
                moved.wait();
                // Moved to B, with its values. Checked only now, so that a failure cannot leave
                // the main thread waiting at a barrier.
                let in_b = bpf_read(b);
                assert_eq!(
                    (in_a.init_ret, in_a.value1),
                    (0, i64::from(900 + i)),
                    "thread {i} in A"
                );
                assert_eq!(
                    (in_b.init_ret, in_b.value1),
                    (0, i64::from(900 + i)),
                    "thread {i} in B"
                );
            });
        }
        drop(tid_tx);
        let tids: Vec<i32> = tid_rx.iter().take(THREADS as usize).collect();
        registered.wait();
        // The main thread's own checks; the worker threads are released at each step whatever
        // they find, so that a failure here is reported instead of leaving them waiting.
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            refuse_bad_maps(a, b, &lookalikes, a_id, &tids);
            s.spawn(move || {
                VALUE1.set(77);
                assert_eq!(bpf_read(a).value1, 77, "a new thread is registered in A");
            })
            .join()
            .expect("a new thread is registered in A");
        }));
        checked.wait();
        // Not before every worker has looked at A: moving deletes their elements there.
        read_a.wait();
        let failed = failed.and_then(|()| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| move_to(a, b, &tids)))
        });
        moved.wait();
        if let Err(panic) = failed {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Every kind of failed connect, each leaving the connection to A as it was.
fn refuse_bad_maps(
    a: &TldTestSkel<'_>,
    b: &TldTestSkel<'_>,
    lookalikes: &TldIsolationSkel<'_>,
    a_id: u32,
    tids: &[i32],
) {
    // 1. Look-alike maps: refused by name of what is wrong.
    let e = tld_runtime::connect(lookalikes.maps.plain_map.as_fd()).unwrap_err();
    assert!(
        matches!(&e, Error::NotATldMap { reason } if reason.contains("not a __uptr pointer")),
        "{e}"
    );
    let e = tld_runtime::connect(lookalikes.maps.untagged_map.as_fd()).unwrap_err();
    assert!(
        matches!(&e, Error::NotATldMap { reason } if reason.contains("lacks the __uptr tag")),
        "{e}"
    );
    // Values of neither generation: the shape found is named, with the two that are wanted.
    let e = tld_runtime::connect(lookalikes.maps.old_cached_map.as_fd()).unwrap_err();
    assert!(
        matches!(&e, Error::NotATldMap { reason } if reason.contains("has 40 bytes")
            && reason.contains("{data, meta, __u16 start} (24 bytes: Linux 7.x)")),
        "{e}"
    );
    let e = tld_runtime::connect(lookalikes.maps.wide_start_map.as_fd()).unwrap_err();
    assert!(
        matches!(&e, Error::NotATldMap { reason } if reason.contains("of 24 bytes")
            && reason.contains("start: `unsigned long long` at byte 16")),
        "{e}"
    );
    // 2. A map in which no thread can be registered (a read-only fd).
    let e = tld_runtime::connect(read_only_fd(&b.maps.tld_data_map).as_fd()).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e}");
    for &tid in tids.iter().chain([&gettid()]) {
        assert!(!has_element(&b.maps.tld_data_map, tid), "left behind in B");
    }
    // 3. A pin that does not exist.
    let e = tld_runtime::connect_pinned("/sys/fs/bpf/tld_test_no_such_pin").unwrap_err();
    assert!(matches!(e, Error::MapNotFound { .. }), "{e}");

    let status = tld_runtime::status();
    assert_eq!(connected_map_id(), Some(a_id), "{status}");
    assert_eq!(status.registered_threads, tids.len() + 1, "{status}");
    assert!(
        matches!(status.last_error, Some(Error::MapNotFound { .. })),
        "the last failure is reported: {status}"
    );
    for &tid in tids.iter().chain([&gettid()]) {
        assert!(has_element(&a.maps.tld_data_map, tid), "no longer in A");
    }
}

/// A good map: everyone moves, and A keeps no element of ours.
fn move_to(a: &TldTestSkel<'_>, b: &TldTestSkel<'_>, tids: &[i32]) {
    tld_runtime::connect(b.maps.tld_data_map.as_fd()).expect("connect to B");
    let status = tld_runtime::status();
    assert!(status.last_error.is_none(), "{status}");
    assert_eq!(status.registered_threads, tids.len() + 1, "{status}");
    for &tid in tids.iter().chain([&gettid()]) {
        assert!(!has_element(&a.maps.tld_data_map, tid), "left behind in A");
        assert!(
            has_element(&b.maps.tld_data_map, tid),
            "not registered in B"
        );
    }
}
