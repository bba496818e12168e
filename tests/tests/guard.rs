//! The guard (`tld-guard`): a reader built with `TLD_GUARD` uses a thread's hints only if a
//! task of its own process registered them.
//!
//! Where the kernel runs the guard (its `fexit` program needs BPF trampolines: the VM's Linux
//! 7.x does, this project's host does not), the guard is attached and attacked: spoofer
//! processes register pages of their own for the threads of this process, alone, from many
//! threads, swapping the pidfd under the key, and while the victim registers again, then across
//! two scheduler restarts (a new map; the same map under a new secret); BPF reads
//! of the victim's threads must never see a spoofed value, and the victim's hints must come
//! back by themselves. Where it does not, the test checks that the guard says so plainly, that
//! a program built with `TLD_GUARD` but not enabled reads as before, and the reader's check on
//! its own, with stamps written by a test program in the guard's place.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};
use tld_tests::*;
use tld_upstream::REPORT_PREFIX as REPORT;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code,
    unused_imports
)]
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
    load_sharing(enabled, None)
}

/// [`load`], with the object's `tld_data_map` being `data_map` when given (a scheduler started
/// again on the map it left pinned).
fn load_sharing(
    enabled: bool,
    data_map: Option<BorrowedFd<'_>>,
) -> Option<&'static TldGuardTestSkel<'static>> {
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let result = TldGuardTestSkelBuilder::default()
        .open(storage)
        .and_then(|mut open| {
            if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                rodata.tld_guard_enabled = enabled;
            }
            if let Some(fd) = data_map {
                open.maps.tld_data_map.reuse_fd(fd)?;
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
    let rc = unsafe { libbpf_rs::libbpf_sys::bpf_map_freeze(key_map.as_raw_fd()) };
    assert_eq!(rc, 0);
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
    // The same binary, run again by the VM's attacks as a spoofer.
    if std::env::var_os(guard_vm::ROLE_ENV).is_some() {
        return guard_vm::spoofer();
    }
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

/// A key map pinned by an earlier guard is found again, write-only; a pin of anything else is
/// refused, and no pin is no key. (Runs wherever BPF does: pinning needs no guard.)
#[test]
fn a_pinned_key_is_opened_write_only_and_checked() {
    let Some(skel) = load(true) else {
        return;
    };
    let dir = format!("/sys/fs/bpf/tld_test_key_{}", std::process::id());
    assert!(tld_guard::open_pinned_key(format!("{dir}_none"))
        .expect("no pin is no error")
        .is_none());
    let data_pin = PinnedMap::pin_at(
        skel.maps.tld_data_map.as_fd(),
        std::path::Path::new(&format!("{dir}_data")),
    );
    let e = tld_guard::open_pinned_key(format!("{dir}_data")).unwrap_err();
    assert!(matches!(e, tld_guard::Error::NotGuardable { .. }), "{e:?}");
    drop(data_pin);
    let key_path = format!("{dir}_key");
    let key_pin = PinnedMap::pin_at(
        skel.maps.tld_guard_key.as_fd(),
        std::path::Path::new(&key_path),
    );
    let key = tld_guard::open_pinned_key(&key_path)
        .expect("a key map")
        .expect("pinned");
    // Write-only: the secret cannot be read back through it.
    let mut back = [0u8; 40];
    let zero = 0u32;
    // SAFETY: key and value are live buffers of the key map's key and value sizes.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_lookup_elem(
            key.as_raw_fd(),
            (&zero as *const u32).cast(),
            back.as_mut_ptr().cast(),
        )
    };
    assert_eq!(rc, -libc::EPERM, "a read through the reopened key");
    drop(key_pin);
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

/// The VM: the guard attached and attacked.
fn guard_in_action(test: &str) {
    guard_vm::run(test);
}

mod guard_vm {
    use super::*;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    pub const ROLE_ENV: &str = "TLD_GUARD_TEST_ROLE";
    const PIN_ENV: &str = "TLD_GUARD_TEST_PIN";
    const TIDS_ENV: &str = "TLD_GUARD_TEST_TIDS";
    const MS_ENV: &str = "TLD_GUARD_TEST_MS";

    /// value1 in the spoofer's pages: what a reader must never see for a victim's thread.
    const SPOOF: i32 = 0x5bad_5bad;
    /// Victim threads.
    const VICTIMS: usize = 1000;
    /// How long each attack lasts.
    const ATTACK: Duration = Duration::from_millis(2500);

    /// What a reader saw of the victims' threads.
    #[derive(Debug, Default, Clone, Copy)]
    struct Reads {
        own: u64,
        nothing: u64,
        spoofed: u64,
        other: u64,
    }

    impl Reads {
        fn add(&mut self, r: &ReadCtx, own: i64) {
            match (r.init_ret, r.found) {
                (0, 1) if r.value1 == own => self.own += 1,
                (0, 1) if r.value1 == i64::from(SPOOF) => self.spoofed += 1,
                (0, 1) => self.other += 1,
                _ => self.nothing += 1,
            }
        }
    }

    fn own_value(i: usize) -> i32 {
        0x1000_0000 + i as i32
    }

    /// Reads every victim thread once.
    fn read_all(skel: &TldGuardTestSkel<'_>, tids: &[i32], reads: &mut Reads) -> usize {
        let mut own = 0;
        for (i, &tid) in tids.iter().enumerate() {
            let r = read(skel, tid);
            let before = reads.own;
            reads.add(&r, i64::from(own_value(i)));
            own += usize::from(reads.own > before);
        }
        own
    }

    /// Starts a spoofer process: this test binary again, in the spoofer's role.
    fn spawn_spoofer(mode: &str, pin: &str, tids: &[i32]) -> std::process::Child {
        let list: Vec<String> = tids.iter().map(|t| t.to_string()).collect();
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_reader_with_the_guard_uses_only_elements_of_the_threads_own_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE_ENV, mode)
            .env(PIN_ENV, pin)
            .env(TIDS_ENV, list.join(","))
            .env(MS_ENV, ATTACK.as_millis().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a spoofer")
    }

    /// Reads the victims while an attack runs, then until they all read their own values
    /// again; returns the reads, the spoofer's own account, and how long the recovery took.
    fn attack(
        skel: &TldGuardTestSkel<'_>,
        mode: &str,
        pin: &str,
        tids: &[i32],
        during: impl Fn(),
    ) -> (Reads, String, Duration) {
        let mut spoofer = spawn_spoofer(mode, pin, tids);
        let mut reads = Reads::default();
        loop {
            read_all(skel, tids, &mut reads);
            during();
            if spoofer.try_wait().expect("wait").is_some() {
                break;
            }
        }
        let out = spoofer.wait_with_output().expect("the spoofer's output");
        assert!(out.status.success(), "the spoofer failed: {}", out.status);
        let said = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("SPOOFER"))
            .unwrap_or("SPOOFER said nothing")
            .to_string();
        // The victim's own hints come back by themselves.
        let stopped = Instant::now();
        loop {
            let mut after = Reads::default();
            let own = read_all(skel, tids, &mut after);
            assert_eq!(
                after.spoofed, 0,
                "{mode}: a spoofed value after the attack: {after:?}"
            );
            reads.spoofed += after.spoofed;
            if own == tids.len() {
                break;
            }
            assert!(
                stopped.elapsed() < Duration::from_secs(20),
                "{mode}: {own} of {} threads read their own values 20 s after the attack",
                tids.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let st = tld_runtime::status();
        eprintln!(
            "{REPORT}{mode}: own values back after {:.0} ms; {} repairs so far, {} failed \
             registrations (last: {:?})",
            stopped.elapsed().as_secs_f64() * 1000.0,
            st.guard_repairs,
            st.registration_failures,
            st.last_registration_error
        );
        (reads, said, stopped.elapsed())
    }

    pub fn run(test: &str) {
        let pin = format!("/sys/fs/bpf/tld_test_guard_{}", std::process::id());
        let events = format!("/sys/fs/bpf/tld_test_guard_events_{}", std::process::id());
        // The runtime's watcher looks for the guard's events there.
        std::env::set_var("TLD_GUARD_EVENTS", &events);

        let began = Instant::now();
        let progress = |what: &str| {
            eprintln!(
                "{REPORT}{test}: {what} at {:.1} s",
                began.elapsed().as_secs_f64()
            )
        };
        // Phase A: the stamp alone (no LSM program), as on a kernel without the bpf LSM.
        let a = load(true).expect("the test object loads");
        let guard_a = tld_guard::Guard::attach_with(
            a.maps.tld_data_map.as_fd(),
            a.maps.tld_guard_key.as_fd(),
            tld_guard::Lsm::Off,
        )
        .expect("the guard attaches here (probe succeeded)");
        guard_a.pin_events(&events).expect("pin the events");
        let pinned = PinnedMap::pin_at(a.maps.tld_data_map.as_fd(), std::path::Path::new(&pin));
        tld_runtime::connect_pinned(&pin).expect("connect_pinned");

        // The victims: this process's threads, each with its own value.
        let done = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(Barrier::new(VICTIMS + 1));
        let (tx, rx) = std::sync::mpsc::channel();
        let victims: Vec<_> = (0..VICTIMS)
            .map(|i| {
                let (done, ready, tx) = (done.clone(), ready.clone(), tx.clone());
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        VALUE1.set(own_value(i));
                        tx.send((i, gettid())).unwrap();
                        ready.wait();
                        while !done.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    })
                    .expect("spawn a victim thread")
            })
            .collect();
        ready.wait();
        let mut tids = vec![0; VICTIMS];
        for (i, tid) in rx.iter().take(VICTIMS) {
            tids[i] = tid;
        }
        progress("1000 victims registered");
        // With the guard on, a legitimate process reads right: every thread, stamped. A stamp
        // the kernel skipped (its program was running on that CPU already) is made by the
        // runtime's watcher within a tick or two: until then that thread reads nothing, never
        // a wrong value.
        let stamped_at = Instant::now();
        let mut first = None;
        loop {
            let mut legit = Reads::default();
            let own = read_all(a, &tids, &mut legit);
            assert_eq!(
                (legit.spoofed, legit.other),
                (0, 0),
                "with the guard on: {legit:?}"
            );
            first.get_or_insert(own);
            if own == VICTIMS {
                break;
            }
            assert!(
                stamped_at.elapsed() < Duration::from_secs(10),
                "with the guard on, 10 s after registering: {legit:?}; guard {:?}",
                guard_a.counts()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut report = vec![format!(
            "registration: {} of {VICTIMS} threads stamped at the first read, all {VICTIMS} \
             after {:.0} ms",
            first.unwrap_or(0),
            stamped_at.elapsed().as_secs_f64() * 1000.0
        )];
        // A BPF writer is not affected (this thread registers first: it has not touched a
        // hint yet).
        tld_runtime::thread_init().expect("register the main thread");
        let w = tld_tests::run(
            &a.progs.write_self,
            WriteCtx {
                value1: 777,
                ret: 1,
            },
        );
        assert_eq!(w.ret, 0, "write_self");
        assert_eq!(VALUE1.get(), 777, "the thread sees what BPF wrote");

        for mode in ["single", "many", "dup2"] {
            progress(&format!("attack {mode}"));
            let (reads, said, recovery) = attack(a, mode, &pin, &tids, || {});
            assert_eq!(
                reads.spoofed, 0,
                "{mode}: spoofed values read: {reads:?}; {said}"
            );
            assert_eq!(reads.other, 0, "{mode}: {reads:?}");
            report.push(format!(
                "{mode} (stamp only): {} reads own, {} nothing, 0 spoofed; {said}; own values \
                 back {:.0} ms after the attack",
                reads.own,
                reads.nothing,
                recovery.as_secs_f64() * 1000.0
            ));
        }
        // The victim registers again while it is attacked (a connect moves every thread).
        let (reads, said, recovery) = attack(a, "many", &pin, &tids, || {
            tld_runtime::connect_pinned(&pin).expect("connect again");
        });
        assert_eq!(reads.spoofed, 0, "registering meanwhile: {reads:?}; {said}");
        report.push(format!(
            "many, the victim registering meanwhile: {} own, {} nothing, 0 spoofed; {said}; \
             back in {:.0} ms",
            reads.own,
            reads.nothing,
            recovery.as_secs_f64() * 1000.0
        ));
        let counts_a = guard_a.counts();
        assert!(
            counts_a.spoofed > 0,
            "the guard saw the spoofs: {counts_a:?}"
        );
        let status = tld_runtime::status();
        assert!(status.guard_repairs > 0, "the runtime repaired: {status}");

        progress("phase B");
        // Phase B: a restarted scheduler, the LSM program on where the kernel runs it. The
        // runtime follows the pin to the new map.
        let b = load(true).expect("loads again");
        let guard_b =
            tld_guard::Guard::attach(b.maps.tld_data_map.as_fd(), b.maps.tld_guard_key.as_fd())
                .expect("the guard attaches again");
        guard_b.pin_events(&events).expect("pin the events");
        drop(pinned);
        let _pinned_b = PinnedMap::pin_at(b.maps.tld_data_map.as_fd(), std::path::Path::new(&pin));
        let restarted = Instant::now();
        loop {
            let mut r = Reads::default();
            if read_all(b, &tids, &mut r) == VICTIMS {
                break;
            }
            assert_eq!(r.spoofed, 0);
            assert!(
                restarted.elapsed() < Duration::from_secs(60),
                "after the restart: {r:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        report.push(format!(
            "restart: every thread read right in the new map {:.0} ms after its pin",
            restarted.elapsed().as_secs_f64() * 1000.0
        ));
        for mode in ["single", "dup2"] {
            let (reads, said, recovery) = attack(b, mode, &pin, &tids, || {});
            assert_eq!(
                reads.spoofed,
                0,
                "{mode}, LSM {}: {reads:?}; {said}",
                guard_b.lsm()
            );
            report.push(format!(
                "{mode} (LSM program {}): {} own, {} nothing, 0 spoofed; {said}; back in {:.0} \
                 ms",
                if guard_b.lsm() { "on" } else { "off" },
                reads.own,
                reads.nothing,
                recovery.as_secs_f64() * 1000.0
            ));
        }
        // fork: the child's thread registers itself, stamped as the child's.
        // SAFETY: the child only calls async-signal-safe code and the runtime's hint access,
        // which its fork handler prepared; it exits without unwinding.
        let child = unsafe { libc::fork() };
        if child == 0 {
            VALUE1.set(4242);
            let r = read(b, 0);
            let ok = r.init_ret == 0 && r.found == 1 && r.value1 == 4242;
            // SAFETY: _exit ends the child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut wstatus = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(child, &mut wstatus, 0) };
        assert!(
            libc::WIFEXITED(wstatus) && libc::WEXITSTATUS(wstatus) == 0,
            "the forked child reads its own hint with the guard on"
        );
        report.push("fork: the child read its own hint".into());

        progress("phase C");
        // Phase C: the scheduler restarted on the map it left pinned (scx_tld's default). Its
        // new guard draws a new secret, so the old stamps no longer verify and the map does not
        // change under the runtime: the new guard's event pin is what tells it to register
        // every thread again.
        let counts_b = guard_b.counts();
        let lsm_b = (guard_b.lsm(), guard_b.lsm_note().map(str::to_string));
        drop(guard_b);
        let c = load_sharing(true, Some(b.maps.tld_data_map.as_fd())).expect("loads a third time");
        let guard_c =
            tld_guard::Guard::attach(c.maps.tld_data_map.as_fd(), c.maps.tld_guard_key.as_fd())
                .expect("the guard attaches on the kept map");
        let restarted = Instant::now();
        guard_c.pin_events(&events).expect("pin the events");
        loop {
            let mut r = Reads::default();
            if read_all(c, &tids, &mut r) == VICTIMS {
                break;
            }
            assert_eq!(r.spoofed, 0);
            assert!(
                restarted.elapsed() < Duration::from_secs(60),
                "after the restart on the kept map: {r:?}; {}",
                tld_runtime::status()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        report.push(format!(
            "restart on the kept map: every thread read right under the new secret {:.0} ms \
             after the new guard's pin",
            restarted.elapsed().as_secs_f64() * 1000.0
        ));
        let (reads, said, _) = attack(c, "single", &pin, &tids, || {});
        assert_eq!(
            reads.spoofed, 0,
            "after the restart on the kept map: {reads:?}; {said}"
        );

        done.store(true, Ordering::Relaxed);
        for v in victims {
            v.join().unwrap();
        }
        progress("done");
        eprintln!("{REPORT}{test}: in the VM with the guard:");
        for line in &report {
            eprintln!("{REPORT}  {line}");
        }
        eprintln!(
            "{REPORT}  guard counts: first {counts_a:?}; after the restart {counts_b:?} (LSM program: \
             {}{})",
            lsm_b.0,
            lsm_b.1.map(|n| format!(", {n}")).unwrap_or_default()
        );
        let _ = std::fs::remove_file(&events);
    }

    /// The spoofer's pages: a metadata page that publishes `value1`, and a data page whose
    /// `value1` is [`SPOOF`].
    fn spoof_pages() -> Pages {
        let pages = Pages::new();
        // SAFETY: writes inside the two fresh pages of the mapping, which nothing else uses.
        unsafe {
            pages.data().add(16).cast::<i32>().write(SPOOF);
            let meta = pages.meta();
            meta.cast::<u16>().write(1); // cnt
            meta.add(2).cast::<u16>().write(4080); // size
            std::ptr::copy_nonoverlapping(c"value1".as_ptr().cast::<u8>(), meta.add(4), 7);
            meta.add(4 + 62).cast::<u16>().write(4); // entry 0's size
        }
        pages
    }

    /// The spoofer: registers its own pages for the victim's threads, in one of three ways, for
    /// the time it is given; each value carries the stamp of the victim thread's current
    /// element (user space can read those).
    pub fn spoofer() {
        // Go with the test if it is killed (a timeout): never outlive the victims.
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes integers and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        let mode = std::env::var(ROLE_ENV).unwrap();
        let pin = std::env::var(PIN_ENV).unwrap();
        let tids: Vec<i32> = std::env::var(TIDS_ENV)
            .unwrap()
            .split(',')
            .map(|t| t.parse().unwrap())
            .collect();
        let ms: u64 = std::env::var(MS_ENV).unwrap().parse().unwrap();
        let c = std::ffi::CString::new(pin).unwrap();
        // SAFETY: a NUL-terminated path.
        let map = unsafe { libbpf_rs::libbpf_sys::bpf_obj_get(c.as_ptr()) };
        assert!(map >= 0, "bpf_obj_get: {map}");
        let pages = spoof_pages();
        let (data, meta) = (pages.data() as u64, pages.meta() as u64);
        let pidfds: Vec<_> = tids.iter().map(|&t| pidfd_of_thread(t)).collect();
        let deadline = Instant::now() + Duration::from_millis(ms);
        let value_for = |pidfd: i32| {
            let mut value = [0u8; 24];
            value[..8].copy_from_slice(&data.to_ne_bytes());
            value[8..16].copy_from_slice(&meta.to_ne_bytes());
            value[16..18].copy_from_slice(&16u16.to_ne_bytes());
            // The victim's current stamp, copied.
            let mut current = [0u8; 24];
            // SAFETY: key and value buffers of the map's sizes.
            let rc = unsafe {
                libbpf_rs::libbpf_sys::bpf_map_lookup_elem(
                    map,
                    (&pidfd as *const i32).cast(),
                    current.as_mut_ptr().cast(),
                )
            };
            if rc == 0 {
                value[18..24].copy_from_slice(&current[18..24]);
            }
            value
        };
        let update = |key: i32, value: &[u8; 24]| -> i32 {
            // SAFETY: key and value buffers of the map's sizes.
            unsafe {
                libbpf_rs::libbpf_sys::bpf_map_update_elem(
                    map,
                    (&key as *const i32).cast(),
                    value.as_ptr().cast(),
                    0,
                )
            }
        };
        let ok = std::sync::atomic::AtomicU64::new(0);
        let refused = std::sync::atomic::AtomicU64::new(0);
        let count = |rc: i32| {
            if rc == 0 {
                ok.fetch_add(1, Ordering::Relaxed);
            } else {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        };
        match mode.as_str() {
            "single" => {
                while Instant::now() < deadline {
                    for fd in &pidfds {
                        let key = fd.as_raw_fd();
                        count(update(key, &value_for(key)));
                    }
                }
            }
            "many" => std::thread::scope(|s| {
                for k in 0..8 {
                    let (pidfds, value_for, update, count) = (&pidfds, &value_for, &update, &count);
                    s.spawn(move || {
                        while Instant::now() < deadline {
                            for fd in pidfds.iter().skip(k).step_by(2) {
                                let key = fd.as_raw_fd();
                                count(update(key, &value_for(key)));
                            }
                        }
                    });
                }
            }),
            "dup2" => {
                // One thread updates through descriptor `slot` while another swaps what it
                // names: a victim's pidfd, then a pidfd of a thread of the spoofer's own.
                let own = pidfd_of_thread(gettid());
                // SAFETY: dup of an fd we own.
                let slot = unsafe { libc::dup(own.as_raw_fd()) };
                let stop = AtomicBool::new(false);
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let mut i = 0;
                        while !stop.load(Ordering::Relaxed) {
                            let victim = pidfds[i % pidfds.len()].as_raw_fd();
                            // SAFETY: dup2 onto `slot`, which this process owns.
                            unsafe { libc::dup2(victim, slot) };
                            // SAFETY: as above.
                            unsafe { libc::dup2(own.as_raw_fd(), slot) };
                            i += 1;
                        }
                    });
                    let value = value_for(pidfds[0].as_raw_fd());
                    while Instant::now() < deadline {
                        count(update(slot, &value));
                    }
                    stop.store(true, Ordering::Relaxed);
                });
            }
            other => panic!("unknown spoofer mode {other}"),
        }
        println!(
            "SPOOFER {mode}: {} updates taken, {} refused",
            ok.into_inner(),
            refused.into_inner()
        );
    }
}

/// Mirror of `struct write_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct WriteCtx {
    value1: i32,
    ret: i32,
}
