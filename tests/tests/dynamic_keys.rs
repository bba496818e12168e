//! Keys created at run time: the format's rules, and 100 rounds of 60 threads racing to create
//! them, with BPF resolving every key to the right value.
//!
//! A process has room for 63 keys and keys cannot be removed, so each round runs in a process
//! of its own (this test binary, re-run for one round).

use std::collections::HashMap;
use std::sync::Mutex;
use std::thread;

use tld_runtime::{DynamicHint, DynamicKey, Error};
use tld_tests::*;

const RACE: &str = "racing_threads_create_each_key_exactly_once";
const THREADS: usize = 60;
const NAMES: usize = 10;

/// `dyn_i` holds a u64 for even i and a u32 for odd i, as `tld_read_dyn` reads them.
fn size_of_dyn(i: usize) -> usize {
    match i % 2 {
        0 => 8,
        _ => 4,
    }
}

fn value_for(thread: usize, i: usize, round: u64) -> u64 {
    let v = (thread as u64) << 20 | (i as u64) << 12 | round;
    if size_of_dyn(i) == 4 {
        v & 0xffff_ffff
    } else {
        v | 0xdd << 48
    }
}

/// One round: 60 threads race to create dyn_0..dyn_9 (6 per name), in this process.
fn round(round: u64) {
    let skel = shared(RACE).expect("the parent only runs rounds when BPF loads");
    let barrier = Rendezvous::new(THREADS);
    let wins = Mutex::new(HashMap::<usize, usize>::new());
    let offsets = Mutex::new(Vec::<Vec<usize>>::new());
    thread::scope(|s| {
        for t in 0..THREADS {
            let (barrier, wins, offsets) = (&barrier, &wins, &offsets);
            s.spawn(move || {
                // Rotate who races for which name from round to round.
                let i = (t + round as usize) % NAMES;
                let name = format!("dyn_{i}");
                VALUE1.set(t as i32); // a page, registered, before the race
                barrier.wait();
                match DynamicKey::create(&name, size_of_dyn(i)) {
                    Ok(key) => {
                        assert_eq!(key.size(), size_of_dyn(i));
                        *wins.lock().unwrap().entry(i).or_default() += 1;
                    }
                    Err(Error::KeyExists { key }) => assert_eq!(key, name),
                    Err(e) => panic!("unexpected error creating {name}: {e}"),
                }
                barrier.wait();

                // Every thread sees every key at the same offset...
                let keys: Vec<DynamicKey> = (0..NAMES)
                    .map(|i| DynamicKey::find(&format!("dyn_{i}")).expect("created"))
                    .collect();
                offsets
                    .lock()
                    .unwrap()
                    .push(keys.iter().map(DynamicKey::offset).collect());
                // ...and BPF resolves each one to this thread's value.
                for (i, key) in keys.iter().enumerate() {
                    let v = value_for(t, i, round);
                    key.write(&v.to_ne_bytes()[..key.size()]);
                }
                let r = bpf_read_dyn(skel);
                assert_eq!(r.init_ret, 0);
                assert_eq!(r.found, (1 << NAMES) - 1, "not every dynamic key was found");
                for i in 0..NAMES {
                    assert_eq!(r.values[i], value_for(t, i, round), "dyn_{i} on thread {t}");
                }
            });
        }
    });
    let wins = wins.into_inner().unwrap();
    assert_eq!(wins.len(), NAMES, "some name was never created: {wins:?}");
    assert!(
        wins.values().all(|&n| n == 1),
        "a name was created twice: {wins:?}"
    );
    let offsets = offsets.into_inner().unwrap();
    assert!(
        offsets.windows(2).all(|w| w[0] == w[1]),
        "threads disagree on offsets"
    );
}

#[test]
fn racing_threads_create_each_key_exactly_once() {
    if let Some(r) = role() {
        return round(r.parse().expect("a round number"));
    }
    if load(RACE).is_none() {
        return;
    }
    let rounds: u64 = std::env::var("TLD_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    for r in 0..rounds {
        let out = rerun(RACE, &r.to_string()).output().expect("run a round");
        assert!(
            out.status.success(),
            "round {r} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The format's rules, each with its own error and errno. Runs in its own process.
#[test]
fn dynamic_keys_follow_the_format_rules() {
    if role().is_some() {
        return;
    }
    let out = rerun(
        "dynamic_keys_follow_the_format_rules_in_a_fresh_process",
        "rules",
    )
    .output()
    .expect("run");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}

#[test]
fn dynamic_keys_follow_the_format_rules_in_a_fresh_process() {
    if role().as_deref() != Some("rules") {
        return; // only meaningful alone in a process: it fills the metadata page
    }
    std::env::set_var("TLD_MAP_PATH", "");
    let errno = |e: Error| e.errno();

    // A static key's name is taken.
    assert_eq!(
        errno(DynamicKey::create("value1", 4).unwrap_err()),
        Some(libc::EEXIST)
    );
    // Not a C identifier, too long, or empty.
    for bad in ["has-dash", "9lives", "", &"k".repeat(62)] {
        assert_eq!(
            errno(DynamicKey::create(bad, 4).unwrap_err()),
            Some(libc::EINVAL),
            "{bad:?}"
        );
    }
    assert_eq!(
        errno(DynamicKey::create("zero", 0).unwrap_err()),
        Some(libc::EINVAL)
    );

    // Typed keys read and write per thread, starting at zero.
    let typed = DynamicHint::<u64>::create("typed_u64").unwrap();
    typed.set(5);
    thread::spawn(move || assert_eq!(typed.get(), 0))
        .join()
        .unwrap();
    assert_eq!(DynamicHint::<u64>::find("typed_u64").unwrap().get(), 5);
    assert!(
        DynamicHint::<u32>::find("typed_u64").is_none(),
        "size mismatch"
    );

    // Too large for what is left of the page: E2BIG, and nothing is published.
    let before = tld_runtime::status().published_keys;
    let e = DynamicKey::create("huge", 4000).unwrap_err();
    assert!(matches!(e, Error::NoRoom { .. }), "{e}");
    assert_eq!(errno(e), Some(libc::E2BIG));
    assert_eq!(tld_runtime::status().published_keys, before);

    // Fill every slot: then ENOSPC.
    let mut n = 0;
    let full = loop {
        match DynamicKey::create(&format!("fill_{n}"), 8) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(full, Error::NoSlots { max: 63, .. }), "{full}");
    assert_eq!(errno(full), Some(libc::ENOSPC));
    assert_eq!(tld_runtime::status().published_keys, 63);
}
