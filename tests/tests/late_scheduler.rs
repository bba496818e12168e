//! An application started before any scheduler is picked up once the map is pinned, without
//! doing anything itself; a scheduler that restarts (a new map pinned at the same path) gets
//! every live thread again, with its values; a scheduler that goes away is let go of.

use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread;
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

/// What BPF sees of each worker, read from this thread by tid.
fn check_workers(skel: &TldTestSkel<'_>, workers: &[(i32, i32)]) {
    for &(tid, value) in workers {
        let r = bpf_read_pid(skel, tid);
        assert_eq!(
            (r.init_ret, r.value1),
            (0, i64::from(value)),
            "worker {tid}"
        );
    }
}

#[test]
fn the_watcher_follows_the_pin_path() {
    let test = "the_watcher_follows_the_pin_path";
    let path =
        std::path::PathBuf::from(format!("/sys/fs/bpf/tld_test_late_{}", std::process::id()));
    // Before the runtime's first use; this binary has only this test.
    std::env::set_var("TLD_MAP_PATH", &path);
    std::env::set_var("TLD_WATCH_INTERVAL_MS", "20");

    let done = Rendezvous::new(4);
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        for i in 0..3i32 {
            let (tx, done) = (tx.clone(), &done);
            s.spawn(move || {
                VALUE1.set(40 + i);
                tx.send((gettid(), 40 + i)).unwrap();
                // The workers never touch a hint again: the runtime registers them.
                done.wait();
            });
        }
        let workers: Vec<(i32, i32)> = (0..3).map(|_| rx.recv().unwrap()).collect();

        // No scheduler yet: the hints are thread-locals, and status() says why.
        assert_eq!(
            tld_runtime::status().reason(),
            Some(&Error::MapNotFound { path: path.clone() })
        );

        let Some(first) = load(test) else {
            done.wait();
            return;
        };
        let first_id = first.maps.tld_data_map.info().unwrap().info.id;
        let pin = PinnedMap::pin_at(first.maps.tld_data_map.as_fd(), &path);
        assert!(
            wait_for(Duration::from_secs(10), || connected_map_id()
                == Some(first_id)),
            "the watcher did not connect: {}",
            tld_runtime::status()
        );
        assert_eq!(tld_runtime::status().registered_threads, 3);
        check_workers(&first, &workers);

        // The scheduler restarts: a new map at the same path.
        drop(pin);
        let second = load(test).expect("loaded once, loads twice");
        let second_id = second.maps.tld_data_map.info().unwrap().info.id;
        let pin = PinnedMap::pin_at(second.maps.tld_data_map.as_fd(), &path);
        assert!(
            wait_for(Duration::from_secs(10), || connected_map_id()
                == Some(second_id)),
            "the watcher did not follow the restart: {}",
            tld_runtime::status()
        );
        check_workers(&second, &workers);

        // The scheduler goes away for good: the runtime lets the map go.
        drop(pin);
        assert!(
            wait_for(Duration::from_secs(10), || tld_runtime::status().reason()
                == Some(&Error::MapNotFound { path: path.clone() })),
            "the watcher did not notice the pin going: {}",
            tld_runtime::status()
        );
        done.wait();
    });
}
