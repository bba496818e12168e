//! The two generations of the format, through the runtime's registrations:
//! - Linux 7.x's map value, `{data, meta, __u16 start}` (24 bytes, the header's default): the
//!   runtime writes `start` into the value, where 7.x readers take it;
//! - Linux 6.18's and scx's, `{data, meta}` (16 bytes, `TLD_GEN_6_18`): readers take `start`
//!   from the page, where the runtime always keeps it too.
//!
//! And both at once: two programs of different generations, each with its own map, read the
//! same threads (`connect` to one, `connect_also` to the other). Both objects are written
//! against the raw API with a hand-written `struct tld_offsets`, so every lookup takes the
//! cached path, whose per-task cache lives in `tld_off_map`. One test, because the runtime's
//! connection is per process.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Barrier;

use libbpf_rs::{MapCore, MapFlags};
use tld_runtime::{wire, Generation};
use tld_tests::*;

/// Keys of `struct tld_offsets` in `bpf/tld_test.bpf.c`; `value1` is the first.
const TEST_KEYS: usize = 16;

/// This thread's element of `map`, as user space reads it.
fn element(map: &libbpf_rs::Map<'_>) -> Option<Vec<u8>> {
    let pidfd = pidfd_of_thread(gettid());
    map.lookup(&pidfd.as_raw_fd().to_ne_bytes(), MapFlags::ANY)
        .expect("reading this thread's element")
}

fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn slot(bytes: &[u8], at: usize) -> i16 {
    i16::from_ne_bytes([bytes[at], bytes[at + 1]])
}

/// What `prog` (a `tld_read`) sees for this thread: value1, and the other keys all found.
fn read_all(prog: &libbpf_rs::ProgramMut<'_>, want: i32, what: &str) {
    let r = run(prog, ReadCtx::default());
    assert_eq!(r.init_ret, 0, "{what}: bpf_tld_init");
    assert_eq!(r.found, found::ALL, "{what}: keys found");
    assert_eq!(r.value1, i64::from(want), "{what}: value1");
    assert_eq!(r.tid, gettid(), "{what}: the program ran as this thread");
}

/// The data area's start in this process's pages.
fn start() -> usize {
    let status = tld_runtime::status();
    status.page_size - status.data_capacity
}

#[test]
fn each_map_is_served_in_its_generation_and_both_at_once() {
    let test = "each_map_is_served_in_its_generation_and_both_at_once";
    let Some(seven) = load(test) else {
        return;
    };
    let six = load_618(test).expect("loaded once, loads twice");
    assert_eq!(
        seven.maps.tld_data_map.value_size() as usize,
        wire::MAP_VALUE_SIZE_7,
        "the header declares 7.x's value by default"
    );
    assert_eq!(
        six.maps.tld_data_map.value_size() as usize,
        wire::MAP_VALUE_SIZE,
        "TLD_GEN_6_18 declares 6.18's"
    );

    // 7.x: start is in the value, which user space reads back (the pointers stay hidden).
    tld_runtime::connect(seven.maps.tld_data_map.as_fd()).expect("connect to the 7.x map");
    let status = tld_runtime::status();
    assert_eq!(status.generation, Some(Generation::Linux7), "{status}");
    assert!(status.to_string().contains("Linux 7.x"), "{status}");
    VALUE1.set(4101);
    let elem = element(&seven.maps.tld_data_map).expect("registered");
    assert_eq!(elem.len(), 24);
    assert_eq!((word(&elem, 0), word(&elem, 8)), (0, 0), "pointers hidden");
    let start = start();
    assert!(start == wire::FINGERPRINT_START || start == wire::DATA_START);
    assert_eq!(
        u16::from_ne_bytes([elem[16], elem[17]]) as usize,
        start,
        "the value's start is the page's"
    );
    assert_eq!(
        elem[18..],
        [0; 6],
        "padding is zero: nothing a writer did not mean"
    );
    read_all(&seven.progs.tld_read, 4101, "7.x");
    // The cached path's cache is in tld_off_map, never in the element.
    let cache = element(&seven.maps.tld_off_map).expect("BPF created the cache");
    assert_ne!(word(&cache, 0), 0, "the metadata page's cookie");
    assert_ne!(word(&cache, 8), 0, "the data page's cookie");
    assert_eq!(slot(&cache, 16 + 2 * TEST_KEYS), 4, "value1's size slot");
    assert_eq!(
        element(&seven.maps.tld_data_map).expect("registered"),
        elem,
        "BPF leaves the element as user space wrote it"
    );

    // Both at once: the 6.18 map as well.
    tld_runtime::connect_also(six.maps.tld_data_map.as_fd()).expect("connect_also to 6.18");
    tld_runtime::connect_also(six.maps.tld_data_map.as_fd()).expect("a second time: no-op");
    let status = tld_runtime::status();
    assert_eq!(status.additional_maps.len(), 1, "{status}");
    assert_eq!(
        status.additional_maps[0].generation,
        Generation::Linux6_18,
        "{status}"
    );
    assert_eq!(status.generation, Some(Generation::Linux7));
    assert_eq!(
        element(&six.maps.tld_data_map).expect("registered in 6.18 too"),
        vec![0u8; 16],
        "6.18's value is the two pointers alone"
    );
    read_all(&six.progs.tld_read, 4101, "6.18");
    VALUE1.set(4102);
    read_all(&seven.progs.tld_read, 4102, "7.x after a change");
    read_all(&six.progs.tld_read, 4102, "6.18 after a change");

    // A map that is an additional one cannot also be the main one.
    let e = tld_runtime::connect(six.maps.tld_data_map.as_fd()).unwrap_err();
    assert!(e.to_string().contains("connect_also"), "{e}");

    // Threads started now register in both maps on their first access, each with its own
    // values, and both programs read each thread's own.
    const THREADS: usize = 8;
    let gate = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for i in 0..THREADS {
            let (six, seven, gate) = (&six, &seven, &gate);
            s.spawn(move || {
                let mine = 5000 + i as i32;
                VALUE1.set(mine);
                gate.wait();
                read_all(&seven.progs.tld_read, mine, "7.x, a new thread");
                read_all(&six.progs.tld_read, mine, "6.18, a new thread");
            });
        }
    });
    let status = tld_runtime::status();
    assert_eq!(status.registered_threads, status.live_threads, "{status}");

    // 7.x's limits. A key too large for what is left: E2BIG. One that would end at the page's
    // last byte: E2BIG too while a 7.x map is connected (its reader wants values to end
    // before the page does). One byte less fits, and both programs find it.
    let left = status.data_capacity - status.data_bytes;
    assert!(left >= 16, "{status}");
    let e = tld_runtime::DynamicKey::create("too_big", left + 1).unwrap_err();
    assert_eq!(e.errno(), Some(libc::E2BIG), "{e}");
    let e = tld_runtime::DynamicKey::create("to_the_end", left).unwrap_err();
    assert_eq!(e.errno(), Some(libc::E2BIG), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("only {} are left", left - 1)),
        "{e}"
    );
    let last = tld_runtime::DynamicKey::create("to_the_end", left - 1).expect("one byte less");
    assert_eq!(last.offset() + last.size(), status.page_size - 1);
}
