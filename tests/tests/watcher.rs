//! The watcher wakes on bpffs's inotify events: with a poll interval of ten minutes, it still
//! connects to a map pinned at the watched path, and lets go of it when the pin goes, within
//! seconds. Only an inotify event can wake it that soon.

use std::os::fd::AsFd;
use std::time::Duration;

use libbpf_rs::MapCore;
use tld_runtime::{Connection, Error};
use tld_tests::*;

fn connected_map_id() -> Option<u32> {
    match tld_runtime::status().connection {
        Connection::Connected { map_id, .. } => Some(map_id),
        _ => None,
    }
}

#[test]
fn the_watcher_wakes_on_a_pin_long_before_its_poll() {
    let test = "the_watcher_wakes_on_a_pin_long_before_its_poll";
    let dir = std::path::Path::new("/sys/fs/bpf");
    // The watch is set on the directory as the watcher starts: bpffs must be there first.
    if let Err(e) = ensure_bpffs(dir) {
        assert!(
            !bpf_required(),
            "TLD_REQUIRE_BPF=1 but bpffs is unavailable: {e}"
        );
        eprintln!("SKIPPED: bpffs is unavailable: {e}");
        return;
    }
    let path = dir.join(format!("tld_test_watch_{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    // Before the runtime's first use; this binary has only this test.
    std::env::set_var("TLD_MAP_PATH", &path);
    std::env::set_var("TLD_WATCH_INTERVAL_MS", "600000");

    VALUE1.set(7);
    assert_eq!(
        tld_runtime::status().reason(),
        Some(&Error::MapNotFound { path: path.clone() })
    );
    assert!(tld_runtime::status().watcher, "{}", tld_runtime::status());
    let Some(skel) = load(test) else {
        return;
    };
    let id = skel.maps.tld_data_map.info().unwrap().info.id;
    let pin = PinnedMap::pin_at(skel.maps.tld_data_map.as_fd(), &path);
    assert!(
        wait_for(Duration::from_secs(5), || connected_map_id() == Some(id)),
        "the watcher did not wake on the pin: {}",
        tld_runtime::status()
    );
    let r = bpf_read(&skel);
    assert_eq!((r.init_ret, r.value1), (0, 7));

    drop(pin);
    assert!(
        wait_for(Duration::from_secs(5), || tld_runtime::status().reason()
            == Some(&Error::MapNotFound { path: path.clone() })),
        "the watcher did not wake on the unpin: {}",
        tld_runtime::status()
    );
}
