//! The guard (`tld-guard`): a reader built with `TLD_GUARD` uses a thread's hints only if a
//! task of its own process registered them.
//!
//! Where the kernel runs the guard (its `fexit` program needs BPF trampolines: the VM's Linux
//! 7.x does, this project's host does not), the guard is attached and attacked: spoofer
//! processes register pages of their own for the threads of this process, alone, from many
//! threads, swapping the pidfd under the key, and while the victim registers again; BPF reads
//! of the victim's threads must never see a spoofed value, and the victim's hints must come
//! back by themselves. Where it does not, the test checks that the guard says so plainly, that
//! a program built with `TLD_GUARD` but not enabled reads as before, and the reader's check on
//! its own, with stamps written by a test program in the guard's place.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};
use tld_tests::*;

#[allow(clippy::all, missing_docs, dead_code, unused_imports)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tld_guard_test.skel.rs"));
}
use skel::{TldGuardTestSkel, TldGuardTestSkelBuilder};

/// Mirror of `struct read_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ReadCtx {
    tid: i32,
    init_ret: i32,
    value1: i64,
    found: u64,
}

/// Mirror of `struct stamp_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct StampCtx {
    wrong: i32,
    ret: i32,
}

/// Loads the test object with `tld_guard_enabled` set to `enabled`, leaked for the process's
/// life; `None` (after saying why) when BPF is unavailable and not required.
fn load(enabled: bool) -> Option<&'static TldGuardTestSkel<'static>> {
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let result = TldGuardTestSkelBuilder::default()
        .open(storage)
        .and_then(|mut open| {
            if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                rodata.tld_guard_enabled = enabled;
            }
            open.load()
        });
    match result {
        Ok(skel) => Some(Box::leak(Box::new(skel))),
        Err(e) if !bpf_required() => {
            eprintln!("SKIPPED: cannot load BPF programs ({e}); set TLD_REQUIRE_BPF=1 to fail");
            None
        }
        Err(e) => panic!("TLD_REQUIRE_BPF=1 but the guard's test object does not load: {e:#}"),
    }
}

/// What `read_tid` sees of thread `tid` (0: the calling thread).
fn read(skel: &TldGuardTestSkel<'_>, tid: i32) -> ReadCtx {
    run(
        &skel.progs.read_tid,
        ReadCtx {
            tid,
            ..ReadCtx::default()
        },
    )
}

/// Has `stamp_self` stamp the calling thread's element, rightly or wrongly.
fn stamp_self(skel: &TldGuardTestSkel<'_>, wrong: bool) {
    let out = run(
        &skel.progs.stamp_self,
        StampCtx {
            wrong: i32::from(wrong),
            ret: 1,
        },
    );
    assert_eq!(out.ret, 0, "stamp_self");
}

/// The calling thread's element of `map`, as user space reads it: 24 bytes, the pointers zero.
fn element(map: &libbpf_rs::Map<'_>) -> Vec<u8> {
    let pidfd = pidfd_of_thread(gettid());
    map.lookup(&pidfd.as_raw_fd().to_ne_bytes(), MapFlags::ANY)
        .expect("lookup")
        .expect("registered")
}

/// Writes a random secret into `key_map` (a `tld_guard_key`) and freezes it, as the guard's
/// loader does.
fn write_key(key_map: BorrowedFd<'_>) {
    let mut value = [0u8; 40];
    for (i, chunk) in value[..32].chunks_mut(8).enumerate() {
        let word = std::collections::hash_map::RandomState::new();
        use std::hash::BuildHasher;
        chunk.copy_from_slice(&word.hash_one(i).to_ne_bytes());
    }
    value[32..].copy_from_slice(&0x3179_656b_6764_6c74u64.to_ne_bytes());
    let key = 0u32;
    // SAFETY: key and value are live buffers of the map's key (u32) and value (40 bytes).
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_update_elem(
            key_map.as_raw_fd(),
            (&key as *const u32).cast(),
            value.as_ptr().cast(),
            0,
        )
    };
    assert_eq!(rc, 0, "writing the key");
    // SAFETY: freezing takes only the fd.
    assert_eq!(
        unsafe { libbpf_rs::libbpf_sys::bpf_map_freeze(key_map.as_raw_fd()) },
        0
    );
    // Nobody reads it back: the map is write-only for user space.
    let mut back = [0u8; 40];
    // SAFETY: as above, with a writable buffer of the value's size.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_lookup_elem(
            key_map.as_raw_fd(),
            (&key as *const u32).cast(),
            back.as_mut_ptr().cast(),
        )
    };
    assert_eq!(
        rc,
        -libc::EPERM,
        "the key map is not readable from user space"
    );
}

#[test]
fn a_reader_with_the_guard_uses_only_elements_of_the_threads_own_process() {
    let test = "a_reader_with_the_guard_uses_only_elements_of_the_threads_own_process";
    let Some(plain) = load(false) else {
        return;
    };
    match tld_guard::probe() {
        Ok(()) => guard_in_action(test),
        Err(e) => {
            eprintln!("{test}: the guard cannot run here: {e}");
            let text = e.to_string();
            assert!(
                text.contains("the tld guard cannot run on this kernel"),
                "a plain reason: {text}"
            );
            assert!(matches!(e, tld_guard::Error::Unavailable { .. }), "{e:?}");
            without_the_guard(plain);
        }
    }
}

/// The host: the guard says why it cannot run; everything else works as before; the reader's
/// check works, with stamps written by a test program.
fn without_the_guard(plain: &'static TldGuardTestSkel<'static>) {
    // Built with TLD_GUARD, not enabled: reads as before.
    tld_runtime::connect(plain.maps.tld_data_map.as_fd()).expect("connect");
    VALUE1.set(3101);
    let r = read(plain, 0);
    assert_eq!((r.init_ret, r.found, r.value1), (0, 1, 3101), "{r:?}");

    // Attaching to a fresh program's maps fails the same way, and changes nothing.
    let target = load(true).expect("loads twice");
    let e = tld_guard::Guard::attach(
        target.maps.tld_data_map.as_fd(),
        target.maps.tld_guard_key.as_fd(),
    )
    .unwrap_err();
    assert!(matches!(e, tld_guard::Error::Unavailable { .. }), "{e:?}");
    let r = read(plain, 0);
    assert_eq!((r.init_ret, r.value1), (0, 3101), "{r:?}");

    // Enabled, with a key: an element without the right stamp is not used.
    let checked = load(true).expect("loads thrice");
    write_key(checked.maps.tld_guard_key.as_fd());
    tld_runtime::connect(checked.maps.tld_data_map.as_fd()).expect("connect");
    let r = read(checked, 0);
    assert_eq!(r.init_ret, -libc::EPERM, "an unstamped element: {r:?}");
    stamp_self(checked, true);
    let r = read(checked, 0);
    assert_eq!(r.init_ret, -libc::EPERM, "a wrong stamp: {r:?}");
    stamp_self(checked, false);
    let r = read(checked, 0);
    assert_eq!(
        (r.init_ret, r.found, r.value1),
        (0, 1, 3101),
        "stamped: {r:?}"
    );

    // Another thread's stamp does not fit another element: the stamp covers the pages. A
    // thread registers pages of its own with the first thread's stamp, as a writer that read
    // it (user space may read stamps) would.
    let stamp = element(&checked.maps.tld_data_map)[18..24].to_vec();
    assert_ne!(stamp, [0; 6]);
    std::thread::scope(|s| {
        s.spawn(|| {
            let pages = Pages::new();
            let mut value = [0u8; 24];
            value[..8].copy_from_slice(&(pages.data() as u64).to_ne_bytes());
            value[8..16].copy_from_slice(&(pages.meta() as u64).to_ne_bytes());
            value[16..18].copy_from_slice(&16u16.to_ne_bytes());
            value[18..24].copy_from_slice(&stamp);
            register_raw(checked.maps.tld_data_map.as_fd(), &value);
            let r = read(checked, 0);
            assert_eq!(r.init_ret, -libc::EPERM, "a copied stamp: {r:?}");
            stamp_self(checked, false);
            assert_eq!(read(checked, 0).init_ret, 0, "its own stamp");
            assert_ne!(
                element(&checked.maps.tld_data_map)[18..24],
                stamp[..],
                "stamps differ between elements"
            );
        });
    });

    // Without a key (a guard never attached), nothing is used.
    let keyless = load(true).expect("loads again");
    tld_runtime::connect(keyless.maps.tld_data_map.as_fd()).expect("connect");
    stamp_self_fails_without_key(keyless);
    assert_eq!(read(keyless, 0).init_ret, -libc::EPERM);
}

/// Two page-aligned pages of this process (a data page with start = 16, a zeroed metadata
/// page), unmapped on drop.
struct Pages {
    base: *mut u8,
}

impl Pages {
    fn new() -> Pages {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base.cast::<u8>();
        // SAFETY: the first 8 bytes of the fresh mapping.
        unsafe { base.cast::<u64>().write(16) };
        Pages { base }
    }

    fn data(&self) -> *mut u8 {
        self.base
    }

    fn meta(&self) -> *mut u8 {
        self.base.wrapping_add(4096)
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: our 2-page mapping, which nothing uses any more (the kernel keeps what it
        // pinned until it unpins it).
        unsafe { libc::munmap(self.base.cast(), 8192) };
    }
}

/// Registers the calling thread in `map` with `value` (24 bytes), as a raw writer does.
fn register_raw(map: BorrowedFd<'_>, value: &[u8; 24]) {
    let pidfd = pidfd_of_thread(gettid());
    let key = pidfd.as_raw_fd();
    // SAFETY: key and value are live buffers of the map's key (int) and value (24 bytes).
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_update_elem(
            map.as_raw_fd(),
            (&key as *const i32).cast(),
            value.as_ptr().cast(),
            0,
        )
    };
    assert_eq!(rc, 0, "registering raw pages");
}

fn stamp_self_fails_without_key(skel: &TldGuardTestSkel<'_>) {
    let out = run(&skel.progs.stamp_self, StampCtx { wrong: 0, ret: 1 });
    assert_eq!(out.ret, -libc::EAGAIN, "no key, no stamp");
}

/// The VM: the guard attached and attacked. Filled in below.
fn guard_in_action(test: &str) {
    guard_vm::run(test);
}

mod guard_vm {
    /// Runs the attacks of the issue against the attached guard.
    pub fn run(test: &str) {
        panic!("{test}: the guard loads here, and the attack scenarios are not written yet");
    }
}
