//! Two statics with one key: nothing is published, both declaration sites are reported by
//! `status()`, `thread_init()` and the header generator, and the hints keep working locally.

use tld_runtime::{task_local_data, Error};
use tld_tests::*;

/// Clashes with `tld_test_hints_a::HINT_A` (key "hint_a").
#[task_local_data(key = "hint_a")]
static CLASH: u32 = 7;

fn check_sites(err: &Error) {
    let Error::DuplicateKey { key, first, second } = err else {
        panic!("expected DuplicateKey, got {err:?}");
    };
    assert_eq!(key, "hint_a");
    let mut names = [first.rust_name, second.rust_name];
    names.sort();
    assert_eq!(names, ["CLASH", "HINT_A"]);
    let text = err.to_string();
    assert!(text.contains("tests/duplicate_keys.rs:"), "{text}");
    assert!(text.contains("hints-a/src/lib.rs:"), "{text}");
}

#[test]
fn duplicate_keys_are_reported_with_both_sites() {
    std::env::set_var("TLD_MAP_PATH", "");
    let status = tld_runtime::status();
    assert!(!status.is_connected());
    check_sites(status.reason().expect("a reason"));
    assert_eq!(status.published_keys, 0, "nothing may be published");

    // The hints still work, each its own value, per thread.
    CLASH.set(70);
    HINT_A.set(71);
    VALUE1.set(72);
    assert_eq!((CLASH.get(), HINT_A.get(), VALUE1.get()), (70, 71, 72));
    std::thread::spawn(|| assert_eq!((CLASH.get(), HINT_A.get()), (7, 0xA0A0_A0A0)))
        .join()
        .unwrap();

    check_sites(&tld_runtime::thread_init().expect_err("cannot register"));
    check_sites(&tld_runtime::header::try_generate().expect_err("no header"));
    let header = tld_runtime::header::generate();
    assert!(
        header.contains("#error \"tld: duplicate task local data key"),
        "{header}"
    );
    let write = tld_runtime::header::write(std::env::temp_dir().join("tld-never-written.h"));
    assert_eq!(write.unwrap_err().kind(), std::io::ErrorKind::InvalidData);

    // connect() refuses too, with the same reason, even given a real map.
    if let Some(skel) = load("duplicate_keys_are_reported_with_both_sites") {
        let err = tld_runtime::connect(std::os::fd::AsFd::as_fd(&skel.maps.tld_data_map))
            .expect_err("connect must refuse");
        check_sites(&err);
        // BPF cannot see the thread: nothing was registered.
        assert_eq!(bpf_read(&skel).init_ret, -i64::from(libc::ENODATA));
    }
}
