//! A thread that set hints before the runtime connected is visible to BPF right after
//! `connect()`, without touching a hint again: `connect()` registers every live thread.

use std::thread;

use tld_runtime::Connection;
use tld_tests::*;

#[test]
fn threads_that_set_hints_before_connect_are_registered_by_it() {
    // No auto-connect: the runtime must stay detached until `connect()`. This binary has only
    // this test, so nothing else reads the environment concurrently.
    std::env::set_var("TLD_MAP_PATH", "");
    let Some(skel) = load("threads_that_set_hints_before_connect_are_registered_by_it") else {
        return;
    };
    let skel = &skel;
    let before = Rendezvous::new(3);
    let after = Rendezvous::new(3);

    thread::scope(|s| {
        for i in 0..2i32 {
            let (before, after) = (&before, &after);
            s.spawn(move || {
                VALUE1.set(500 + i);
                HINT_A.set(0xFEED + i as u64);
                before.wait(); // values set; not registered anywhere
                after.wait(); // the main thread has connected
                let r = bpf_read(skel);
                assert_eq!(r.init_ret, 0, "worker {i} was not registered by connect()");
                assert_eq!(r.value1, i64::from(500 + i));
                assert_eq!(r.hint_a, 0xFEED + i as u64);
            });
        }

        before.wait();
        VALUE1.set(-1);
        let status = tld_runtime::status();
        assert!(
            matches!(status.connection, Connection::Detached { .. }),
            "{status}"
        );
        assert_eq!(status.live_threads, 3, "{status}");
        assert_eq!(status.registered_threads, 0, "{status}");

        connect(skel);
        let status = tld_runtime::status();
        assert!(status.is_connected(), "{status}");
        assert_eq!(status.registered_threads, 3, "{status}");
        assert_eq!(bpf_read(skel).value1, -1);
        after.wait();
    });
}
