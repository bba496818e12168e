//! With no map, hints work as plain thread-locals and `status()` says why.
//!
//! Needs no privilege: this runs everywhere.

use std::thread;

use tld_runtime::{Connection, Error};
use tld_tests::*;

#[test]
fn without_a_map_hints_are_thread_locals_and_status_says_why() {
    let missing = std::env::temp_dir().join(format!("tld-no-such-map-{}", std::process::id()));
    // Set before the runtime's first use; this binary has only this one test.
    std::env::set_var("TLD_MAP_PATH", &missing);

    assert_eq!(tld_runtime::status().connection, Connection::NotAttempted);

    let handles: Vec<_> = (0..8i32)
        .map(|i| {
            let missing = missing.clone();
            thread::spawn(move || {
                assert_eq!(
                    VALUE1.get(),
                    0,
                    "a new thread starts from the initial value"
                );
                VALUE1.set(i * 10);
                VALUE4.update(|v| v.a = i as u64);
                DUMMY.update(|d| d[999] = i as u8);
                thread::yield_now();
                assert_eq!(VALUE1.get(), i * 10);
                assert_eq!(VALUE4.get().a, i as u64);
                assert_eq!(DUMMY.get()[999], i as u8);
                let err = tld_runtime::thread_init().expect_err("there is no map to register in");
                assert_eq!(err, Error::MapNotFound { path: missing });
                assert_eq!(err.errno(), Some(libc::ENOENT));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }

    let status = tld_runtime::status();
    assert!(!status.is_connected());
    match status.reason() {
        Some(Error::MapNotFound { path }) => assert_eq!(path, &missing),
        other => panic!("expected MapNotFound, got {other:?} ({status})"),
    }
    assert!(
        status.to_string().contains("no tld_data_map is pinned at"),
        "{status}"
    );
    assert_eq!(status.registered_threads, 0);
    // The layout is still published, ready for a map.
    assert_eq!((status.hints, status.published_keys), (9, 9), "{status}");
}
