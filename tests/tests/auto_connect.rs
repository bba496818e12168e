//! Auto-connect: with no `connect()` call, the runtime finds the map pinned at `TLD_MAP_PATH`.

use std::os::fd::AsFd;
use std::thread;

use tld_runtime::MapSource;
use tld_tests::*;

#[test]
fn the_runtime_finds_a_map_pinned_at_tld_map_path() {
    let Some(skel) = load("the_runtime_finds_a_map_pinned_at_tld_map_path") else {
        return;
    };
    let Some(pin) = PinnedMap::pin(skel.maps.tld_data_map.as_fd(), "auto_connect") else {
        return;
    };
    // Before the runtime's first use; this binary has only this test.
    std::env::set_var("TLD_MAP_PATH", pin.path());

    thread::scope(|s| {
        s.spawn(|| {
            VALUE1.set(99);
            let r = bpf_read(&skel);
            assert_eq!(r.init_ret, 0, "the first touch did not auto-connect");
            assert_eq!(r.value1, 99);
        });
    });
    let status = tld_runtime::status();
    assert!(status.is_connected(), "{status}");
    match &status.connection {
        tld_runtime::Connection::Connected { source, .. } => {
            assert_eq!(source, &MapSource::Pinned(pin.path().to_path_buf()))
        }
        other => panic!("{other:?}"),
    }
    assert!(tld_runtime::thread_init().is_ok());
}
