//! Where the cached path keeps its per-task offset cache, through the runtime's registrations:
//! - by default, in the thread's `tld_data_map` element after the two page pointers. The
//!   runtime registers threads with zeros there, and BPF tags the cache once it has cleared it;
//! - with `TLD_SEPARATE_CACHE` (implied by `TLD_PIN_DATA_MAP`), in `tld_off_map`, with
//!   `tld_data_map`'s value the wire format's 16 bytes.
//!
//! Both objects are written against the raw API with a hand-written `struct tld_offsets`, so
//! every lookup takes the cached path. One test, because the runtime registers a process's
//! threads in one map at a time.

use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::{MapCore, MapFlags};
use tld_runtime::wire;
use tld_tests::*;

/// `TLD_CACHE_VALID` of the BPF header.
const CACHE_VALID: u64 = 0x3168_6361_636c_6474;
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

/// Reads through `prog` (a `tld_read`) as this thread and checks that it found `value1`.
fn read_value1(prog: &libbpf_rs::ProgramMut<'_>, want: i32, what: &str) {
    let r = run(prog, ReadCtx::default());
    assert_eq!(r.init_ret, 0, "{what}: bpf_tld_init");
    assert_ne!(r.found & found::VALUE1, 0, "{what}: value1 not found");
    assert_eq!(r.value1, i64::from(want), "{what}: value1");
}

#[test]
fn the_cache_lives_in_the_element_by_default_and_in_its_own_map_when_separate() {
    let test = "the_cache_lives_in_the_element_by_default_and_in_its_own_map_when_separate";
    let Some(inline) = load(test) else {
        return;
    };
    let separate = load_separate(test).expect("loaded once, loads twice");
    // The cache after the pointers: a tag, then off and size per key.
    let cached_value = wire::MAP_VALUE_SIZE + 8 + 4 * TEST_KEYS;
    assert_eq!(inline.maps.tld_data_map.value_size() as usize, cached_value);
    assert_eq!(
        separate.maps.tld_data_map.value_size() as usize,
        wire::MAP_VALUE_SIZE
    );

    // The default: the runtime's registration leaves zeros after the pointers.
    tld_runtime::connect(inline.maps.tld_data_map.as_fd()).expect("connect");
    VALUE1.set(4101);
    let fresh = element(&inline.maps.tld_data_map).expect("registered");
    assert_eq!(fresh.len(), cached_value);
    assert!(
        fresh.iter().all(|&b| b == 0),
        "a new element reads as zeros (the kernel hides the pointers; the cache is empty): \
         {fresh:?}"
    );
    read_value1(&inline.progs.tld_read, 4101, "cache in the element");
    let used = element(&inline.maps.tld_data_map).expect("registered");
    assert_eq!(
        word(&used, 0),
        0,
        "the data pointer is hidden from user space"
    );
    assert_eq!(
        word(&used, 8),
        0,
        "the meta pointer is hidden from user space"
    );
    assert_eq!(
        word(&used, 16),
        CACHE_VALID,
        "BPF tagged the cache it cleared"
    );
    let (off, size) = (slot(&used, 24), slot(&used, 24 + 2 * TEST_KEYS));
    assert_eq!(size, 4, "value1's size slot: resolved, an i32");
    assert!(
        off >= 8 && off % 8 == 0,
        "value1's offset slot: a resolved offset, {off}"
    );

    // With the cache in its own map, the element is the two pointers alone.
    tld_runtime::connect(separate.maps.tld_data_map.as_fd()).expect("connect to the separate");
    assert!(
        element(&separate.maps.tld_off_map).is_none(),
        "no cache yet"
    );
    read_value1(&separate.progs.tld_read, 4101, "cache in tld_off_map");
    VALUE1.set(4102);
    read_value1(
        &separate.progs.tld_read,
        4102,
        "cache in tld_off_map, again",
    );
    assert_eq!(
        element(&separate.maps.tld_data_map).expect("registered"),
        vec![0u8; 16],
        "the kernel hides both pointers"
    );
    let cache = element(&separate.maps.tld_off_map).expect("BPF created the cache");
    assert_ne!(word(&cache, 0), 0, "the metadata page's cookie");
    assert_ne!(word(&cache, 8), 0, "the data page's cookie");
    assert_eq!(slot(&cache, 16 + 2 * TEST_KEYS), 4, "value1's size slot");

    // Back to the first map: a new registration, so a new, empty cache, resolved again.
    tld_runtime::connect(inline.maps.tld_data_map.as_fd()).expect("connect back");
    let again = element(&inline.maps.tld_data_map).expect("registered again");
    assert!(
        again.iter().all(|&b| b == 0),
        "registering again starts an empty cache: {again:?}"
    );
    read_value1(
        &inline.progs.tld_read,
        4102,
        "cache in the element, registered again",
    );
    let used = element(&inline.maps.tld_data_map).expect("registered");
    assert_eq!(word(&used, 16), CACHE_VALID);
    assert_eq!(slot(&used, 24 + 2 * TEST_KEYS), 4);
}
