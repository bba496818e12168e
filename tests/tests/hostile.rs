//! Hostile metadata: a thread scribbles random bytes over its own metadata and data pages (and
//! sometimes over its per-task offset cache, and `start`), then BPF (`bpf/tld_fuzz.bpf.c`) looks
//! keys up. It runs once per generation of the format: 7.x's, where `start` comes from the map
//! value (the header's default), and 6.18's, where it comes from the data page's first u64
//! (`bpf/tld_fuzz_618.bpf.c`). In 7.x's, the page's first u64 is garbage that must not matter.
//!
//! Every case checks that
//! - nothing faults (the program runs, `bpf_tld_init` succeeds);
//! - every returned pointer lies wholly inside the data page, and the bytes read through it
//!   are the page's bytes at the offset it reports (the program itself also checks the bounds);
//! - every result (NULL or offset, and each `bpf_tld_init_var` result) is exactly what a Rust
//!   port of `task_local_data.bpf.h`'s documented semantics predicts, with the per-task cache
//!   carried over from case to case as in real life; the cache element the kernel holds
//!   afterwards must equal the model's too;
//! - independently of that port: with a fresh cache, or with a cache that has only seen a sane
//!   page grow by appends and publications, a lookup returns exactly the value at the offset
//!   that the page's bytes describe now (or NULL if they describe none).
//!
//! This test binary never touches a `#[task_local_data]` hint, so the runtime never registers
//! pages of its own; the fuzzing thread registers its two pages itself.
//!
//! The model (the pages a hostile or a well-behaved writer leaves, and the Rust port of the
//! header's lookups) is in the library, `tld_tests::hostile`; this file loads the programs, runs
//! the cases and compares.
//!
//! `TLD_FUZZ_CASES=N` runs N cases (default 10,000), `TLD_FUZZ_SEED=S` (decimal or 0x hex)
//! replays a seed. A failure prints the seed, the case index and the case's pages.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, OpenObject};
use tld_tests::hostile::{model::*, writer::*, *};
use tld_tests::{bpf_required, gettid, pidfd_of_thread, run};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code,
    unused_imports
)]
mod fuzz_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_fuzz.skel.rs"));
}
use fuzz_skel::{types, TldFuzzSkelBuilder};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code,
    unused_imports
)]
mod fuzz_618_skel {
    include!(concat!(env!("OUT_DIR"), "/tld_fuzz_618.skel.rs"));
}
use fuzz_618_skel::TldFuzz618SkelBuilder;
use tld_runtime::{wire, Generation};

const DEFAULT_SEED: u64 = 0x746c_645f_6675_7a7a; // "tld_fuzz"
const DEFAULT_CASES: u64 = 10_000;

// ------------------------------------------------------------------------------------------
// The kernel side.

/// One loaded fuzz object (leaked: it stays loaded until the test process exits): its program
/// and its maps.
struct Loaded {
    prog: &'static libbpf_rs::ProgramMut<'static>,
    bss: BorrowedFd<'static>,
    bss_size: usize,
    data_map: BorrowedFd<'static>,
    data_map_value_size: usize,
    /// `tld_off_map`, and its value size.
    off_map: (BorrowedFd<'static>, usize),
}

impl Loaded {
    /// Whether the object reads the 7.x generation (its value holds `start`).
    fn seven(&self) -> bool {
        self.data_map_value_size == wire::MAP_VALUE_SIZE_7
    }
}

/// Opens and loads the skeleton of `$builder`, leaks it, and describes it as a [`Loaded`].
macro_rules! load_leaked {
    ($builder:expr, $storage:expr) => {
        $builder
            .open($storage)
            .and_then(|open| open.load())
            .map(|skel| {
                let skel: &'static _ = Box::leak(Box::new(skel));
                Loaded {
                    prog: &skel.progs.tld_fuzz,
                    bss: skel.maps.bss.as_fd(),
                    bss_size: skel.maps.bss.value_size() as usize,
                    data_map: skel.maps.tld_data_map.as_fd(),
                    data_map_value_size: skel.maps.tld_data_map.value_size() as usize,
                    off_map: (
                        skel.maps.tld_off_map.as_fd(),
                        skel.maps.tld_off_map.value_size() as usize,
                    ),
                }
            })
    };
}

/// Loads `tld_fuzz.bpf.c` (7.x, `seven`) or `tld_fuzz_618.bpf.c`, or says why it cannot and
/// returns `None` (the pattern of `tld_tests::load`, for these skeletons).
fn load(test: &str, seven: bool) -> Option<Loaded> {
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let quiet = libbpf_rs::set_print(None);
    let result = if seven {
        load_leaked!(TldFuzzSkelBuilder::default(), storage)
    } else {
        load_leaked!(TldFuzz618SkelBuilder::default(), storage)
    };
    libbpf_rs::set_print(quiet);
    match result {
        Ok(loaded) => Some(loaded),
        Err(e) if !bpf_required() => {
            eprintln!(
                "SKIPPED {test}: cannot load BPF programs ({e}). This test needs root or \
                 CAP_BPF+CAP_PERFMON on Linux >= 6.13; set TLD_REQUIRE_BPF=1 to make this a \
                 failure."
            );
            None
        }
        Err(e) => panic!("{test}: TLD_REQUIRE_BPF=1 but the BPF programs do not load: {e:#}"),
    }
}

/// Two page-aligned pages of this process, unmapped on drop.
struct Mapping {
    base: *mut u8,
}

impl Mapping {
    fn new() -> Mapping {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            base,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Mapping { base: base.cast() }
    }

    fn data(&self) -> *mut u8 {
        self.base
    }

    fn meta(&self) -> *mut u8 {
        self.base.wrapping_add(PAGE)
    }

    fn write(&self, p: &Pages) {
        // SAFETY: both destinations are whole pages of this live mapping, which nothing else
        // references (BPF reads it only during test_run, from this thread), and the sources
        // are distinct Rust arrays of one page each.
        unsafe {
            std::ptr::copy_nonoverlapping(p.data.as_ptr(), self.data(), PAGE);
            std::ptr::copy_nonoverlapping(p.meta.as_ptr(), self.meta(), PAGE);
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` is the start of our 2-page mapping, and nothing uses it any more. A
        // page the kernel still pins stays alive until it unpins it.
        unsafe { libc::munmap(self.base.cast(), 2 * PAGE) };
    }
}

/// The fuzzing thread's handles on the kernel.
struct Kernel<'a> {
    obj: &'a Loaded,
    pidfd: OwnedFd,
    /// The `start` registered last in the value (7.x).
    start: u16,
}

impl Kernel<'_> {
    /// Registers the pages, with `start` in the value where the generation has it.
    fn register(&mut self, m: &Mapping, start: u16) {
        self.start = start;
        let value = wire::map_value(
            if self.obj.seven() {
                Generation::Linux7
            } else {
                Generation::Linux6_18
            },
            m.data() as u64,
            m.meta() as u64,
            start,
        );
        // The map's key: a pidfd of this thread.
        let key = self.pidfd.as_raw_fd();
        // SAFETY: key and value are live buffers of the map's key (int) and value sizes.
        let rc = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.obj.data_map.as_raw_fd(),
                (&key as *const i32).cast(),
                value.as_ptr().cast(),
                libbpf_sys::BPF_ANY.into(),
            )
        };
        assert_eq!(rc, 0, "registering the pages in tld_data_map");
    }

    fn delete(&self, map: BorrowedFd<'_>) -> i32 {
        // The map's key: a pidfd of this thread.
        let key = self.pidfd.as_raw_fd();
        // SAFETY: the key is a live int, the map's key size.
        unsafe { libbpf_sys::bpf_map_delete_elem(map.as_raw_fd(), (&key as *const i32).cast()) }
    }

    /// Unregisters the thread: deletes its tld_data_map element.
    fn unregister(&self) {
        assert_eq!(self.delete(self.obj.data_map), 0, "unregistering");
    }

    /// Empties the cache: deletes the tld_off_map element.
    fn reset_cache(&self) {
        self.delete(self.obj.off_map.0);
    }

    /// This thread's cache: its cookies (kernel addresses, learned from a run) and slots.
    fn read_cache(&self) -> Option<([u64; 2], Slots)> {
        let (map, size) = self.obj.off_map;
        let mut buf = vec![0u8; size];
        // The map's key: a pidfd of this thread.
        let key = self.pidfd.as_raw_fd();
        // SAFETY: the key is a live int and `buf` has the map's value size.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                map.as_raw_fd(),
                (&key as *const i32).cast(),
                buf.as_mut_ptr().cast(),
            )
        };
        if rc == -libc::ENOENT {
            return None;
        }
        assert_eq!(rc, 0, "reading this thread's cache");
        let word = |i: usize| u64::from_le_bytes(buf[8 * i..8 * i + 8].try_into().unwrap());
        let (tag, slots_at) = ([word(0), word(1)], 16);
        let slot =
            |i: usize| i16::from_le_bytes([buf[slots_at + 2 * i], buf[slots_at + 1 + 2 * i]]);
        let mut slots = Slots::default();
        for k in 0..NKEYS {
            slots.off[k] = slot(k);
            slots.size[k] = slot(NKEYS + k);
        }
        Some((tag, slots))
    }

    /// Rewrites this thread's cache with cookies `tag` and `slots`.
    fn write_cache(&self, tag: [u64; 2], slots: &Slots) {
        let mut buf = Vec::new();
        buf.extend_from_slice(&tag[0].to_le_bytes());
        buf.extend_from_slice(&tag[1].to_le_bytes());
        for v in slots.off.iter().chain(&slots.size) {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        let off_map = self.obj.off_map.0;
        // The map's key: a pidfd of this thread.
        let key = self.pidfd.as_raw_fd();
        // SAFETY: the key is a live int and `buf` has the map's value size (checked at start).
        let rc = unsafe {
            libbpf_sys::bpf_map_update_elem(
                off_map.as_raw_fd(),
                (&key as *const i32).cast(),
                buf.as_ptr().cast(),
                libbpf_sys::BPF_ANY.into(),
            )
        };
        assert_eq!(rc, 0, "writing this thread's tld_off_map element");
    }

    /// Runs the program as this thread and returns what it reported.
    fn run(&self, mask: u64) -> types::fuzz_out {
        run(
            self.obj.prog,
            types::fuzz_ctx {
                init_var_mask: mask,
            },
        );
        let mut out = types::fuzz_out::default();
        let key = 0u32;
        // SAFETY: .bss is an array map with one element of `struct fuzz_out` (checked at
        // start); `out` is that big and valid for any bytes.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                self.obj.bss.as_raw_fd(),
                (&key as *const u32).cast(),
                (&mut out as *mut types::fuzz_out).cast(),
            )
        };
        assert_eq!(rc, 0, "reading the program's output");
        out
    }
}

// ------------------------------------------------------------------------------------------
// The fuzz loop.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageKind {
    /// All 63 entries random.
    Hostile,
    /// A few hostile edits of the previous page.
    Mutated,
    /// A new page as a well-behaved writer leaves it.
    FreshSane,
    /// The previous sane page, grown as a well-behaved writer grows it.
    SaneGrowth,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CacheAction {
    /// The cache carries over from the previous case.
    Keep,
    /// This thread's tld_off_map element is deleted.
    Reset,
    /// The element is rewritten with the right cookies and random slots.
    Forged,
    /// The element is rewritten with random slots and one or both cookies wrong.
    ForgedCookies,
    /// The thread's tld_data_map element is deleted for the run, then restored.
    Unregistered,
}

#[derive(Default)]
struct Stats {
    found: u64,
    null: u64,
    oracle_cases: u64,
    growth_cases: u64,
    forged: u64,
    unregistered: u64,
}

/// One case's choices, for failure messages.
struct Case {
    index: u64,
    kind: PageKind,
    action: CacheAction,
    mask: u64,
    /// The model's cache as the run finds it.
    before: Slots,
    /// bpf_tld_init() empties the cache in this run.
    fresh: bool,
}

/// What the fuzzing thread carries from case to case.
struct Fuzzer<'a> {
    k: Kernel<'a>,
    m: Mapping,
    seed: u64,
    cases: u64,
    rng: Rng,
    pages: Box<Pages>,
    /// The current page as a sane writer left it, if it is one.
    sane: Option<Sane>,
    /// The model's cache.
    slots: Slots,
    /// The next bpf_tld_init() empties the cache: there is no element yet, or its cookies are
    /// not this thread's pages.
    clears: bool,
    /// The cookies bpf_tld_init() stores for our pages, once learned (in its own map), or the
    /// value tag (in tld_data_map's element).
    cookies: Option<[u64; 2]>,
    /// Since the cache was last empty it has seen only a sane page growing.
    growth_only: bool,
    stats: Stats,
}

impl Fuzzer<'_> {
    fn fail(&self, c: &Case, what: String, out: &types::fuzz_out) -> ! {
        panic!(
            "hostile: {what}\n  reproduce with TLD_FUZZ_SEED={:#x} (case {} of {})\n  page \
             {:?}, cache {:?}, init_var mask {:#04x}, cache before {:?} (emptied by init: \
             {})\n  BPF reported {out:?}\n{}",
            self.seed,
            c.index,
            self.cases,
            c.kind,
            c.action,
            c.mask,
            c.before,
            c.fresh,
            self.pages.summary()
        )
    }

    /// Writes this case's pages.
    fn next_pages(&mut self) -> PageKind {
        let (rng, p) = (&mut self.rng, &mut *self.pages);
        // A sane page mostly grows on, so that caches see long runs of appends.
        let kind = match (rng.below(100), self.sane.is_some()) {
            (0..=54, true) => PageKind::SaneGrowth,
            (55..=69, true) | (0..=29, false) => PageKind::FreshSane,
            (70..=84, true) | (30..=64, false) => PageKind::Mutated,
            _ => PageKind::Hostile,
        };
        match kind {
            PageKind::Hostile => {
                hostile_page(rng, p);
                self.sane = None;
            }
            PageKind::Mutated => {
                mutate(rng, p);
                self.sane = None;
            }
            PageKind::FreshSane => self.sane = Some(sane_page(rng, p)),
            PageKind::SaneGrowth => sane_evolve(rng, p, self.sane.as_mut().unwrap()),
        }
        // New values every time, so that a read shows where it came from. In 7.x the page's
        // first u64 is garbage too: readers take start from the value.
        let start = p.start();
        match p.seven {
            true => rng.fill(&mut p.data),
            false => rng.fill(&mut p.data[8..]),
        }
        p.set_start(start);
        if rng.chance(3) {
            // Now and then start is garbage too, whatever the metadata.
            p.set_start(rng.next_u64());
            self.sane = None;
        }
        self.m.write(p);
        kind
    }

    /// Chooses what happens to the cache before the run, and does it (but `Unregistered`).
    fn cache_action(&mut self, kind: PageKind) -> CacheAction {
        let rng = &mut self.rng;
        let action = match rng.below(100) {
            _ if kind == PageKind::SaneGrowth && rng.chance(50) => CacheAction::Keep,
            0..=59 => CacheAction::Keep,
            60..=79 => CacheAction::Reset,
            80..=90 => CacheAction::Forged,
            91..=97 => CacheAction::ForgedCookies,
            _ => CacheAction::Unregistered,
        };
        match action {
            CacheAction::Keep | CacheAction::Unregistered => {}
            CacheAction::Reset => {
                self.k.reset_cache();
                self.clears = true;
            }
            CacheAction::Forged | CacheAction::ForgedCookies => {
                self.stats.forged += 1;
                let mut forged = self.slots;
                for k in 0..NKEYS {
                    forged.off[k] = garbage_slot(rng, forged.off[k]);
                    forged.size[k] = garbage_slot(rng, forged.size[k]);
                }
                match self.cookies {
                    Some(real) if action == CacheAction::Forged => {
                        self.k.write_cache(real, &forged);
                        self.slots = forged;
                        self.clears = false;
                    }
                    real => {
                        let mut bad = real.unwrap_or([rng.next_u64(), rng.next_u64()]);
                        match rng.below(3) {
                            0 => bad[0] ^= 1 << rng.below(64),
                            1 => bad[1] ^= 1 << rng.below(64),
                            _ => bad = [rng.next_u64(), rng.next_u64()],
                        }
                        self.k.write_cache(bad, &forged);
                        self.clears = true;
                    }
                }
            }
        }
        action
    }

    fn case(&mut self, index: u64) {
        let kind = self.next_pages();
        if self.pages.seven && self.pages.value_start != self.k.start {
            // 7.x: a new start is a new registration. The cookies include start, so BPF
            // empties the cache, and the cookies are learned again.
            self.k.register(&self.m, self.pages.value_start);
            self.clears = true;
            self.cookies = None;
        }
        let action = self.cache_action(kind);
        let mask = match self.rng.below(10) {
            0 => 0xff,
            1..=3 => 0,
            _ => self.rng.next_u64() & self.rng.next_u64() & 0xff,
        };
        let fresh = self.clears;
        self.growth_only = match action {
            _ if fresh => self.sane.is_some(),
            CacheAction::Forged | CacheAction::ForgedCookies => false,
            _ => self.growth_only && kind == PageKind::SaneGrowth && self.sane.is_some(),
        };
        let c = Case {
            index,
            kind,
            action,
            mask,
            before: self.slots,
            fresh,
        };
        if action == CacheAction::Unregistered {
            self.unregistered(&c);
        } else {
            self.registered(&c);
        }
    }

    /// A run while the thread has no tld_data_map element: the handle must be inert.
    fn unregistered(&mut self, c: &Case) {
        self.stats.unregistered += 1;
        self.k.unregister();
        let out = self.k.run(c.mask);
        let init_var_0 = if c.mask & 1 != 0 {
            -i64::from(libc::ENOENT)
        } else {
            NOT_CALLED
        };
        if out.init_ret != -i64::from(libc::ENODATA)
            || out.oob != 0
            || out.init_var_ret[0] != init_var_0
            || out.init_var_ret[1..].iter().any(|&r| r != NOT_CALLED)
            || out.look.iter().any(|l| l.off != -1)
        {
            self.fail(
                c,
                "an unregistered thread's handle is not inert".into(),
                &out,
            );
        }
        // Registered again. The pages were unpinned meanwhile and may have moved: start the
        // cache afresh and relearn the cookies.
        self.k.register(&self.m, self.pages.value_start);
        self.k.reset_cache();
        self.clears = true;
        self.cookies = None;
        self.growth_only = false;
    }

    fn registered(&mut self, c: &Case) {
        if self.clears {
            self.slots = Slots::cleared();
            self.clears = false;
        }
        let want = predict(&self.pages, &mut self.slots, c.mask);
        let out = self.k.run(c.mask);
        let p = &*self.pages;

        if out.init_ret != 0 {
            self.fail(c, format!("bpf_tld_init returned {}", out.init_ret), &out);
        }
        if out.oob != 0 {
            let what = format!("{} lookups left the page (BPF's own check)", out.oob);
            self.fail(c, what, &out);
        }
        // The invariants, whatever the model says: in the page, and the page's bytes.
        for (j, (&(key, size), l)) in LOOKUPS.iter().zip(&out.look).enumerate() {
            if l.off == -1 {
                self.stats.null += 1;
                continue;
            }
            self.stats.found += 1;
            let key = KEYS[key];
            if l.off < 0 || l.off + size > PAGE as i64 {
                let what = format!("lookup {j} ({key}, {size} bytes) at {} is outside", l.off);
                self.fail(c, what, &out);
            }
            let (off, size) = (l.off as usize, size as usize);
            let first = p.bytes_at(off, size.min(8));
            let last = if size >= 8 {
                p.bytes_at(off + size - 8, 8)
            } else {
                0
            };
            if (l.first, l.last) != (first, last) {
                let what = format!(
                    "lookup {j} ({key}) at offset {off} read {:#x}/{:#x}, the page holds \
                     {first:#x}/{last:#x} there",
                    l.first, l.last
                );
                self.fail(c, what, &out);
            }
        }
        let got = Prediction {
            init_var_ret: out.init_var_ret,
            look: out.look.map(|l| (l.off != -1).then_some(l.off)),
        };
        // The model of the header.
        if got != want {
            let what = format!("BPF and the model disagree: model {want:?}, BPF {got:?}");
            self.fail(c, what, &out);
        }
        // The cache-independent oracle, where it applies.
        if c.fresh || self.growth_only {
            self.stats.oracle_cases += 1;
            self.stats.growth_cases += u64::from(!c.fresh);
            let truth = oracle(p, c.mask);
            if got != truth {
                let what = format!(
                    "a lookup disagrees with the page's bytes (grown since the cache was \
                     empty: {}): they say {truth:?}, BPF {got:?}",
                    !c.fresh
                );
                self.fail(c, what, &out);
            }
        }
        // The kernel's cache element.
        let Some((seen, kernel)) = self.k.read_cache() else {
            self.fail(c, "no cache element after a run".into(), &out);
        };
        let wrong_tag =
            seen[0] == 0 || seen[1] == 0 || self.cookies.is_some_and(|real| real != seen);
        if wrong_tag {
            let what = format!("cache tag {seen:x?}, earlier {:x?}", self.cookies);
            self.fail(c, what, &out);
        }
        self.cookies = Some(seen);
        if kernel != self.slots {
            let what = format!("the cache holds {kernel:?}, the model {:?}", self.slots);
            self.fail(c, what, &out);
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// The fuzzing thread: registers its own two pages and runs the cases.
fn fuzz(obj: &Loaded, seed: u64, cases: u64) -> Stats {
    let k = Kernel {
        obj,
        pidfd: pidfd_of_thread(gettid()),
        start: 0,
    };
    let mut f = Fuzzer {
        k,
        m: Mapping::new(),
        seed,
        cases,
        rng: Rng(seed),
        pages: Box::new(Pages {
            meta: [0; PAGE],
            data: [0; PAGE],
            seven: obj.seven(),
            value_start: 0,
        }),
        sane: None,
        slots: Slots::cleared(),
        clears: true,
        cookies: None,
        growth_only: false,
        stats: Stats::default(),
    };
    f.pages.set_start(8);
    f.m.write(&f.pages);
    f.k.register(&f.m, f.pages.value_start);
    for index in 0..cases {
        f.case(index);
    }
    f.stats
}

#[test]
fn lookups_over_hostile_pages_stay_in_the_page_and_match_the_model() {
    hostile_pages_and_caches(
        "lookups_over_hostile_pages_stay_in_the_page_and_match_the_model",
        true,
    );
}

#[test]
fn lookups_over_hostile_6_18_pages_stay_in_the_page_and_match_the_model() {
    hostile_pages_and_caches(
        "lookups_over_hostile_6_18_pages_stay_in_the_page_and_match_the_model",
        false,
    );
}

/// Fuzzes the object of the 7.x generation (`seven`), or of 6.18's.
fn hostile_pages_and_caches(test: &str, seven: bool) {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page != PAGE as i64 {
        assert!(
            !bpf_required(),
            "{test}: the fuzz program assumes 4 KiB pages, not {page}"
        );
        eprintln!("SKIPPED {test}: the fuzz program assumes 4 KiB pages, not {page}");
        return;
    }
    let seed = env_u64("TLD_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("TLD_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let home = if seven {
        "7.x: start in the value"
    } else {
        "6.18: start in the page"
    };
    let t = Instant::now();
    // One dedicated thread loads the object and registers its own pages; its storage goes away
    // when it exits.
    let stats = std::thread::scope(|s| {
        s.spawn(|| {
            let obj = load(test, seven)?;
            check_layout(&obj, seven);
            eprintln!(
                "hostile ({home}): seed {seed:#x}, {cases} cases (TLD_FUZZ_SEED, \
                 TLD_FUZZ_CASES)"
            );
            Some(fuzz(&obj, seed, cases))
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    });
    let Some(stats) = stats else {
        return;
    };
    eprintln!(
        "hostile ({home}): {cases} cases in {:.2?}: {} lookups found a value, {} returned NULL; \
         {} cases checked against the page's bytes ({} after growth), {} forged caches, {} \
         unregistered",
        t.elapsed(),
        stats.found,
        stats.null,
        stats.oracle_cases,
        stats.growth_cases,
        stats.forged,
        stats.unregistered
    );
    // The fuzzing must reach both outcomes to mean anything.
    if cases >= 1000 {
        assert!(stats.found >= cases, "too few lookups found a value");
        assert!(stats.null >= cases, "too few lookups returned NULL");
        assert!(stats.growth_cases >= cases / 50, "too few growth cases");
    }
}

/// Checks that the object's maps and output have the sizes this test assumes.
fn check_layout(obj: &Loaded, seven: bool) {
    assert_eq!(obj.off_map.1, CACHE_SIZE, "tld_off_map's value");
    assert_eq!(
        std::mem::size_of::<types::tld_off_cache>(),
        CACHE_SIZE,
        "struct tld_off_cache layout"
    );
    let value = match seven {
        true => wire::MAP_VALUE_SIZE_7,
        false => wire::MAP_VALUE_SIZE,
    };
    assert_eq!(obj.data_map_value_size, value, "tld_data_map's value");
    assert_eq!(obj.bss_size, std::mem::size_of::<types::fuzz_out>());
}
