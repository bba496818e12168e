//! A scheduler restart through `connect()` again: every live thread moves to the new map with
//! its values, registered from the calling thread.

use std::os::fd::AsFd;
use std::sync::Barrier;
use std::thread;

use libbpf_rs::MapCore;
use tld_runtime::Connection;
use tld_tests::*;

#[test]
fn connecting_to_a_new_map_moves_every_thread_with_its_values() {
    let test = "connecting_to_a_new_map_moves_every_thread_with_its_values";
    let Some(first) = load(test) else {
        return;
    };
    tld_runtime::connect(first.maps.tld_data_map.as_fd()).expect("connect to the first map");
    let second = load(test).expect("loaded once, loads twice");
    let (first, second) = (&first, &second);
    let set = Barrier::new(5);
    let restarted = Barrier::new(5);
    thread::scope(|s| {
        for i in 0..4i32 {
            let (set, restarted) = (&set, &restarted);
            s.spawn(move || {
                VALUE1.set(700 + i);
                assert_eq!(bpf_read(first).value1, i64::from(700 + i));
                set.wait();
                restarted.wait();
                // Registered in the new map by `connect()`, without touching a hint.
                let r = bpf_read(second);
                assert_eq!((r.init_ret, r.value1), (0, i64::from(700 + i)));
            });
        }
        set.wait();
        tld_runtime::connect(second.maps.tld_data_map.as_fd()).expect("connect to the new map");
        let status = tld_runtime::status();
        assert_eq!(status.registered_threads, 4, "{status}");
        match status.connection {
            Connection::Connected { map_id, .. } => {
                assert_eq!(map_id, second.maps.tld_data_map.info().unwrap().info.id)
            }
            other => panic!("{other:?}"),
        }
        restarted.wait();
    });
}
