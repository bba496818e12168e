//! A scheduler restart through `connect()` again: every live thread moves to the new map with
//! its values, registered from the calling thread.

use std::os::fd::AsFd;
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
    let set = Rendezvous::new(5);
    let restarted = Rendezvous::new(5);
    // Nothing panics between the barriers: a failure is returned and reported after both, so
    // that a failing check never leaves the other threads waiting at a barrier.
    let (main, workers) = thread::scope(|s| {
        let workers: Vec<_> = (0..4i32)
            .map(|i| {
                let (set, restarted) = (&set, &restarted);
                s.spawn(move || {
                    VALUE1.set(700 + i);
                    let before = bpf_read(first).value1;
                    set.wait();
                    restarted.wait();
                    // Registered in the new map by `connect()`, without touching a hint.
                    let r = bpf_read(second);
                    let want = i64::from(700 + i);
                    if before != want || (r.init_ret, r.value1) != (0, want) {
                        return Err(format!(
                            "thread {i}: the first map read {before}, the new one (init {}) \
                             {}; expected {want} in both",
                            r.init_ret, r.value1
                        ));
                    }
                    Ok(())
                })
            })
            .collect();
        set.wait();
        let main = connect_again(second);
        restarted.wait();
        let workers: Vec<_> = workers
            .into_iter()
            .map(|h| h.join().expect("a worker panicked"))
            .collect();
        (main, workers)
    });
    main.unwrap();
    for w in workers {
        w.unwrap();
    }
}

/// Connects to `second` and checks that the four workers moved to it.
fn connect_again(second: &TldTestSkel<'_>) -> Result<(), String> {
    tld_runtime::connect(second.maps.tld_data_map.as_fd())
        .map_err(|e| format!("connect to the new map: {e}"))?;
    let status = tld_runtime::status();
    if status.registered_threads != 4 {
        return Err(format!("4 threads should be registered: {status}"));
    }
    let want = second
        .maps
        .tld_data_map
        .info()
        .map_err(|e| e.to_string())?
        .info
        .id;
    match status.connection {
        Connection::Connected { map_id, .. } if map_id == want => Ok(()),
        other => Err(format!("connected to map {want} expected: {other:?}")),
    }
}
