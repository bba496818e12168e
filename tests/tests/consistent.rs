//! Consistent hints against the real kernel: a 32-byte struct written on one CPU and read on the
//! other, in both directions, for `TLD_CONSISTENT_SECS` seconds each (5 by default): no reader
//! ever gets a torn value; the same loops over a plain hint of the same type do tear, which
//! shows the check can fail. Also: two writers at once (Rust and BPF), a BPF writer that stops
//! in the middle of a write and one of the thread's own writes stopped midway, a probe at
//! `sched_switch` reading a writer as it is preempted, `get()` under back-to-back 1024-byte
//! BPF writes, and round trips on both lookup paths.
//!
//! Every writer writes `(v, v, v, v)`, so a value whose four words differ is torn. The BPF side
//! is `bpf/tld_consistent.bpf.c`, run with `BPF_PROG_TEST_RUN` from a thread pinned to one CPU
//! while the hint's own thread runs pinned to the other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use libbpf_rs::MapCore;
use tld_runtime::wire::{SEQ_CLAIMS, SEQ_CLAIM_BPF, SEQ_CLAIM_THREAD, SEQ_LATCH, SEQ_ONE};
use tld_runtime::{consistent, Error};
use tld_tests::{
    gettid, run, TestStruct, TldConsistentSkel, SEQ_BIG, SEQ_SMALL, SEQ_VALUE4, VALUE4,
};

/// Mirror of `struct seq_loop_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct LoopCtx {
    tid: i32,
    mode: u32,
    iters: u32,
    retries: u32,
    base: u64,
    init_ret: i64,
    ok: u64,
    again: u64,
    busy: u64,
    absent: u64,
    torn: u64,
    last: u64,
}

const MODE_CONSISTENT: u32 = 0;
const MODE_CACHED: u32 = 1;
const MODE_PLAIN: u32 = 2;

/// Mirror of `struct seq_poke_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct PokeCtx {
    step: u32,
    ret: i32,
    v: u64,
    seq: u64,
    value: TestStruct,
    other: TestStruct,
    read_ret: u32,
    write_ret: u32,
    read: TestStruct,
}

/// Mirror of `struct seq_roundtrip_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct RoundtripCtx {
    cached: u32,
    read_ret: i32,
    small_ret: i32,
    write_ret: i32,
    small_write_ret: i32,
    fast: u32,
    value: TestStruct,
    small: [u16; 4],
    seq: u64,
    small_seq: u64,
}

const EAGAIN: u32 = libc::EAGAIN as u32;
const EBUSY: u32 = libc::EBUSY as u32;

/// The test object, loaded once and connected to the runtime; `None` when BPF is unavailable
/// and not required.
fn skel() -> Option<&'static TldConsistentSkel<'static>> {
    static SKEL: OnceLock<Option<TldConsistentSkel<'static>>> = OnceLock::new();
    SKEL.get_or_init(|| {
        let skel = tld_tests::load_consistent("consistent")?;
        use std::os::fd::AsFd;
        tld_runtime::connect(skel.maps.tld_data_map.as_fd()).expect("connect");
        Some(skel)
    })
    .as_ref()
}

/// The tests that load both CPUs run one at a time.
static CPUS: Mutex<()> = Mutex::new(());

fn cpus() -> std::sync::MutexGuard<'static, ()> {
    CPUS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seconds each direction of the acceptance run lasts.
fn seconds() -> f64 {
    std::env::var("TLD_CONSISTENT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0)
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only touch it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Whether two CPUs are there to run a writer and a reader at the same time.
fn two_cpus(test: &str) -> bool {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        eprintln!("SKIPPED {test}: needs 2 CPUs to run a writer and a reader at once; has {n}");
    }
    n >= 2
}

fn whole(v: u64) -> TestStruct {
    TestStruct {
        a: v,
        b: v,
        c: v,
        d: v,
    }
}

fn is_torn(v: &TestStruct) -> bool {
    v.a != v.b || v.a != v.c || v.a != v.d
}

fn bpf_loop(prog: &libbpf_rs::ProgramMut<'_>, ctx: LoopCtx) -> LoopCtx {
    let out = run(prog, ctx);
    assert_eq!(
        out.init_ret, 0,
        "bpf_tld_init for thread {}: {out:?}",
        ctx.tid
    );
    out
}

/// Totals of BPF's side of a run.
#[derive(Default, Debug)]
struct BpfTotals {
    ok: u64,
    again: u64,
    busy: u64,
    absent: u64,
    torn: u64,
    retries: u64,
    runs: u64,
}

impl BpfTotals {
    fn add(&mut self, c: &LoopCtx) {
        self.ok += c.ok;
        self.again += c.again;
        self.busy += c.busy;
        self.absent += c.absent;
        self.torn += c.torn;
        self.retries += u64::from(c.retries);
        self.runs += 1;
    }
}

/// Starts the hint's own thread on CPU 0 running `body` until told to stop, and returns its
/// thread id, the stop flag and its handle.
fn owner<R: Send + 'static>(
    body: impl FnOnce(&AtomicBool) -> R + Send + 'static,
) -> (i32, &'static AtomicBool, std::thread::JoinHandle<R>) {
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        pin_to(0);
        tld_runtime::thread_init().expect("register the owner thread");
        tx.send(gettid()).unwrap();
        body(stop)
    });
    (rx.recv().unwrap(), stop, handle)
}

/// Rust writes `(i, i, i, i)` into `hint` on CPU 0 while BPF reads it on CPU 1 in `mode`
/// (alternating with the cached path for consistent reads), until `done` says so.
fn rust_writes_bpf_reads(
    plain: bool,
    mut done: impl FnMut(&BpfTotals) -> bool,
) -> (BpfTotals, u64, Duration) {
    let skel = skel().unwrap();
    let (tid, stop, writer) = owner(move |stop| {
        let mut i = 0u64;
        loop {
            for _ in 0..1024 {
                i += 1;
                if plain {
                    VALUE4.set(whole(i));
                } else {
                    SEQ_VALUE4.set(whole(i));
                }
            }
            if stop.load(Ordering::Relaxed) {
                return i;
            }
        }
    });
    pin_to(1);
    let start = Instant::now();
    let mut totals = BpfTotals::default();
    while !done(&totals) {
        let mode = match (plain, totals.runs % 2) {
            (true, _) => MODE_PLAIN,
            (false, 0) => MODE_CONSISTENT,
            (false, _) => MODE_CACHED,
        };
        let out = bpf_loop(
            &skel.progs.seq_read_loop,
            LoopCtx {
                tid,
                mode,
                iters: 20_000,
                ..LoopCtx::default()
            },
        );
        totals.add(&out);
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    (totals, writes, elapsed)
}

/// What the Rust reader of [`bpf_writes_rust_reads`] saw.
#[derive(Default, Debug)]
struct RustReads {
    reads: u64,
    torn: u64,
    busy: u64,
    retries: u64,
    changed: u64,
}

/// BPF writes `(v, v, v, v)` into the owner's hint on CPU 1 while the owner reads it on CPU 0
/// with `try_get` (or `get` for the plain hint), until `done` says so.
fn bpf_writes_rust_reads(
    plain: bool,
    mut done: impl FnMut(&BpfTotals, Duration) -> bool,
) -> (BpfTotals, RustReads, Duration) {
    let skel = skel().unwrap();
    let (tid, stop, reader) = owner(move |stop| {
        let before = consistent::retries();
        let mut seen = RustReads::default();
        let mut last = u64::MAX;
        loop {
            for _ in 0..1024 {
                let v = if plain {
                    Ok(VALUE4.get())
                } else {
                    SEQ_VALUE4.try_get()
                };
                match v {
                    Ok(v) => {
                        seen.reads += 1;
                        seen.torn += u64::from(is_torn(&v));
                        seen.changed += u64::from(v.a != last);
                        last = v.a;
                    }
                    Err(Error::HintBusy { .. }) => seen.busy += 1,
                    Err(e) => panic!("try_get: {e}"),
                }
            }
            if stop.load(Ordering::Relaxed) {
                seen.retries = consistent::retries().reads - before.reads;
                return seen;
            }
        }
    });
    pin_to(1);
    let start = Instant::now();
    let mut totals = BpfTotals::default();
    let mut base = 1u64;
    while !done(&totals, start.elapsed()) {
        let iters = 20_000;
        let out = bpf_loop(
            &skel.progs.seq_write_loop,
            LoopCtx {
                tid,
                mode: if plain { MODE_PLAIN } else { MODE_CONSISTENT },
                iters,
                base,
                ..LoopCtx::default()
            },
        );
        base += u64::from(iters);
        totals.add(&out);
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    (totals, seen, elapsed)
}

#[test]
fn rust_writes_while_bpf_reads_and_no_read_is_torn() {
    let Some(_) = skel() else { return };
    if !two_cpus("rust_writes_while_bpf_reads_and_no_read_is_torn") {
        return;
    }
    let _cpus = cpus();
    let secs = seconds();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let (bpf, writes, elapsed) = rust_writes_bpf_reads(false, |_| Instant::now() >= deadline);
    eprintln!(
        "consistent, Rust writes / BPF reads a 32-byte struct for {:.1} s: {} Rust writes; BPF: \
         {} reads, {} torn, {} retries, {} -EAGAIN ({} runs, half of them on the cached path)",
        elapsed.as_secs_f64(),
        writes,
        bpf.ok,
        bpf.torn,
        bpf.retries,
        bpf.again,
        bpf.runs
    );
    assert_eq!(bpf.torn, 0, "BPF read a torn value: {bpf:?}");
    assert_eq!(bpf.absent, 0, "BPF did not find the hint: {bpf:?}");
    assert!(
        bpf.ok > 1000,
        "BPF read too little to mean anything: {bpf:?}"
    );
    assert!(writes > 1000, "the writer barely ran: {writes}");
}

#[test]
fn bpf_writes_while_rust_reads_and_no_read_is_torn() {
    let Some(_) = skel() else { return };
    if !two_cpus("bpf_writes_while_rust_reads_and_no_read_is_torn") {
        return;
    }
    let _cpus = cpus();
    let secs = Duration::from_secs_f64(seconds());
    let (bpf, rust, elapsed) = bpf_writes_rust_reads(false, |_, t| t >= secs);
    eprintln!(
        "consistent, BPF writes / Rust reads a 32-byte struct for {:.1} s: BPF: {} writes, {} \
         -EBUSY; Rust: {} reads ({} saw a new value), {} torn, {} retries, {} HintBusy",
        elapsed.as_secs_f64(),
        bpf.ok,
        bpf.busy,
        rust.reads,
        rust.changed,
        rust.torn,
        rust.retries,
        rust.busy
    );
    assert_eq!(rust.torn, 0, "Rust read a torn value: {rust:?}");
    assert_eq!(bpf.absent, 0, "BPF did not find the hint: {bpf:?}");
    assert!(
        bpf.ok > 1000,
        "BPF wrote too little to mean anything: {bpf:?}"
    );
    assert!(
        rust.changed > 100,
        "the reader saw too few of BPF's writes to mean anything: {rust:?}"
    );
}

/// The same loops over the plain hint `test_basic_value4` (a `TestStruct` without the
/// protocol): reads do tear, in both directions, so the checks above can fail.
#[test]
fn without_the_protocol_the_same_loops_tear() {
    let Some(_) = skel() else { return };
    if !two_cpus("without_the_protocol_the_same_loops_tear") {
        return;
    }
    let _cpus = cpus();
    let limit = Duration::from_secs(3);
    let start = Instant::now();
    let (bpf, writes, t1) = rust_writes_bpf_reads(true, |b| {
        (b.torn > 1000 && start.elapsed() > Duration::from_millis(500)) || start.elapsed() > limit
    });
    eprintln!(
        "plain, Rust writes / BPF reads for {:.2} s: {} writes, {} BPF reads, {} torn",
        t1.as_secs_f64(),
        writes,
        bpf.ok,
        bpf.torn
    );
    assert!(bpf.torn > 0, "no torn read without the protocol: {bpf:?}");

    let (bpf, rust, t2) = bpf_writes_rust_reads(true, |_, t| t > Duration::from_millis(500));
    let (bpf, rust, t2) = if rust.torn > 0 {
        (bpf, rust, t2)
    } else {
        bpf_writes_rust_reads(true, |_, t| t > limit)
    };
    eprintln!(
        "plain, BPF writes / Rust reads for {:.2} s: {} BPF writes, {} Rust reads, {} torn",
        t2.as_secs_f64(),
        bpf.ok,
        rust.reads,
        rust.torn
    );
    assert!(rust.torn > 0, "no torn read without the protocol: {rust:?}");
}

/// Rust and BPF write the same hint at once, and both read it: writers exclude each other, so
/// every value read, and the value left at the end, is one writer's whole value.
#[test]
fn two_writers_at_once_never_mix_their_bytes() {
    let Some(skel) = skel() else { return };
    if !two_cpus("two_writers_at_once_never_mix_their_bytes") {
        return;
    }
    let _cpus = cpus();
    const RUST: u64 = 1 << 62;
    const BPF: u64 = 1 << 61;
    let (tid, stop, owner) = owner(|stop| {
        let before = consistent::retries();
        let (mut writes, mut reads, mut torn, mut saw_bpf, mut lost) = (0u64, 0u64, 0, 0, 0);
        loop {
            for _ in 0..256 {
                writes += 1;
                if SEQ_VALUE4.try_set(whole(RUST | writes)).is_err() {
                    lost += 1;
                }
                let v = SEQ_VALUE4.get();
                reads += 1;
                torn += u64::from(is_torn(&v));
                saw_bpf += u64::from(v.a & BPF != 0);
            }
            if stop.load(Ordering::Relaxed) {
                let after = consistent::retries();
                return (
                    writes,
                    reads,
                    torn,
                    saw_bpf,
                    lost,
                    after.writes - before.writes,
                    SEQ_VALUE4.get(),
                );
            }
        }
    });
    pin_to(1);
    let start = Instant::now();
    let (mut writes, mut reads) = (BpfTotals::default(), BpfTotals::default());
    let mut base = BPF;
    while start.elapsed() < Duration::from_secs(2) {
        let w = bpf_loop(
            &skel.progs.seq_write_loop,
            LoopCtx {
                tid,
                iters: 5_000,
                base,
                ..LoopCtx::default()
            },
        );
        base += 5_000;
        writes.add(&w);
        let r = bpf_loop(
            &skel.progs.seq_read_loop,
            LoopCtx {
                tid,
                iters: 5_000,
                ..LoopCtx::default()
            },
        );
        reads.add(&r);
    }
    stop.store(true, Ordering::Relaxed);
    let (rust_writes, rust_reads, rust_torn, saw_bpf, lost, waits, last) = owner.join().unwrap();
    eprintln!(
        "two writers for 2 s: Rust {rust_writes} writes ({waits} waited for BPF, {lost} gave \
         up after MAX_WAIT), {rust_reads} reads ({saw_bpf} of BPF's values), {rust_torn} torn; BPF {} writes, \
         {} -EBUSY, {} reads, {} torn, {} retries, {} -EAGAIN",
        writes.ok, writes.busy, reads.ok, reads.torn, reads.retries, reads.again
    );
    assert_eq!(rust_torn, 0, "Rust read a mix of two writes");
    assert_eq!(reads.torn, 0, "BPF read a mix of two writes: {reads:?}");
    assert!(!is_torn(&last), "the value left is a mix: {last:?}");
    assert!(
        writes.ok > 0 && rust_writes > lost,
        "both writers must have written"
    );
}

/// Runs `seq_poke` for the calling thread.
fn poke(skel: &TldConsistentSkel<'_>, step: u32, v: u64) -> PokeCtx {
    let out = run(
        &skel.progs.seq_poke,
        PokeCtx {
            step,
            v,
            ..PokeCtx::default()
        },
    );
    assert_eq!(out.ret, 0, "seq_poke found no entry: {out:?}");
    out
}

/// A BPF writer claims the word, writes half of a value into the copy that is not whole and
/// stops, as if aborted. Nobody hangs and nobody gets half a value: BPF readers return -EAGAIN
/// (a BPF claim that does not move is a writer that stopped), BPF writers -EBUSY, Rust's
/// `try_get`/`try_set` return `HintBusy` within bounded time, `get` and `replace` the last whole
/// value, and `set` stores nothing. Once the writer finishes, everything works again.
#[test]
fn a_bpf_writer_that_stops_midway_leaves_readers_an_error_not_half_a_value() {
    let Some(skel) = skel() else { return };
    let _cpus = cpus();
    // Runs on a fresh thread of its own, so that no other test's values interfere.
    std::thread::spawn(move || {
        SEQ_VALUE4.set(whole(5));
        let before = poke(skel, 2, 0);
        assert_eq!(
            before.seq & (SEQ_LATCH | SEQ_CLAIMS),
            SEQ_LATCH,
            "{before:?}"
        );
        assert_eq!(before.value, whole(5), "BPF's plain view of the whole copy");
        assert_eq!((before.read_ret, before.read), (0, whole(5)));

        // The writer stops after half of (9, 9, 9, 9).
        let stuck = poke(skel, 0, 9);
        assert_eq!(stuck.seq, before.seq | SEQ_CLAIM_BPF, "claimed for BPF");
        assert_eq!(stuck.value, whole(5), "the whole copy is untouched");
        assert_eq!((stuck.other.a, stuck.other.b), (9, 9), "half a value");
        assert_eq!(stuck.read_ret, EAGAIN, "a BPF reader gets -EAGAIN");

        let reads = bpf_loop(
            &skel.progs.seq_read_loop,
            LoopCtx {
                tid: gettid(),
                iters: 1000,
                ..LoopCtx::default()
            },
        );
        assert_eq!(
            (reads.ok, reads.again, reads.torn),
            (0, 1000, 0),
            "{reads:?}"
        );

        let t = Instant::now();
        let err = SEQ_VALUE4.try_get().unwrap_err();
        let try_get_took = t.elapsed();
        assert_eq!(err, Error::HintBusy { key: "seq_value4" });
        assert_eq!(err.errno(), Some(libc::EAGAIN));
        let t = Instant::now();
        assert_eq!(SEQ_VALUE4.get(), whole(5), "get gives the last whole value");
        assert_eq!(
            SEQ_VALUE4.try_set(whole(7)),
            Err(Error::HintBusy { key: "seq_value4" })
        );
        SEQ_VALUE4.set(whole(7));
        assert_eq!(
            SEQ_VALUE4.replace(whole(7)),
            whole(5),
            "replace stores nothing and returns the value kept"
        );
        let rest_took = t.elapsed();
        eprintln!(
            "a stopped BPF writer: try_get gave up after {try_get_took:?}; get, try_set, set and \
             replace took {rest_took:?} together (MAX_WAIT {:?} each)",
            consistent::MAX_WAIT
        );
        // MAX_WAIT each; the bounds leave room for a loaded machine to deschedule the thread.
        assert!(
            try_get_took < Duration::from_secs(1),
            "try_get took {try_get_took:?}"
        );
        assert!(rest_took < Duration::from_secs(2), "{rest_took:?}");

        // Nothing was written: the stopped writer's bytes and word are as it left them, and a
        // BPF writer is refused too.
        let look = poke(skel, 3, 20);
        assert_eq!(
            (look.seq, look.value, look.other),
            (stuck.seq, stuck.value, stuck.other)
        );
        assert_eq!(look.write_ret, EBUSY, "a BPF writer gets -EBUSY");

        // The writer finishes: everyone reads its whole value and writes again.
        let done = poke(skel, 1, 9);
        assert_eq!(done.seq, before.seq + SEQ_ONE);
        assert_eq!((done.read_ret, done.read), (0, whole(9)));
        assert_eq!(SEQ_VALUE4.try_get(), Ok(whole(9)));
        SEQ_VALUE4.set(whole(11));
        let after = poke(skel, 3, 30);
        assert_eq!(after.value, whole(11));
        assert_eq!((after.read_ret, after.write_ret), (0, 0));
        assert_eq!(SEQ_VALUE4.get(), whole(31), "BPF's write of (v + 1) x 4");
    })
    .join()
    .unwrap();
}

/// The thread stopped in the middle of its own write (preempted, or interrupted by a signal
/// handler), made by hand at one point so that every reader meets it: BPF reads the whole copy
/// at once, with no retry and no -EAGAIN; a BPF writer gets -EBUSY; the thread's own `get`
/// (a signal handler's) reads the whole copy at once, and its `try_set` gives up at once, since
/// the write it would wait for cannot finish meanwhile.
#[test]
fn a_thread_stopped_midway_never_keeps_a_reader_from_the_whole_value() {
    let Some(skel) = skel() else { return };
    let _cpus = cpus();
    std::thread::spawn(move || {
        SEQ_VALUE4.set(whole(5));
        let before = poke(skel, 2, 0);
        let stopped = poke(skel, 4, 9);
        assert_eq!(stopped.seq, before.seq | SEQ_CLAIM_THREAD);
        assert_eq!((stopped.other.a, stopped.other.b), (9, 9), "half a value");
        assert_eq!((stopped.read_ret, stopped.read), (0, whole(5)));

        let reads = bpf_loop(
            &skel.progs.seq_read_loop,
            LoopCtx {
                tid: gettid(),
                iters: 1000,
                ..LoopCtx::default()
            },
        );
        assert_eq!(
            (reads.ok, reads.again, reads.torn, reads.retries, reads.last),
            (1000, 0, 0, 0, 5),
            "{reads:?}"
        );
        let look = poke(skel, 3, 20);
        assert_eq!(look.write_ret, EBUSY, "a BPF writer waits for the thread");

        let retries = consistent::retries();
        assert_eq!(SEQ_VALUE4.try_get(), Ok(whole(5)));
        assert_eq!(consistent::retries().reads, retries.reads, "no wait");
        let t = Instant::now();
        assert_eq!(
            SEQ_VALUE4.try_set(whole(7)),
            Err(Error::HintBusy { key: "seq_value4" })
        );
        assert!(t.elapsed() < consistent::MAX_WAIT * 20, "{:?}", t.elapsed());

        // The thread resumes and finishes its write.
        let done = poke(skel, 5, 9);
        assert_eq!(done.seq, before.seq + SEQ_ONE);
        assert_eq!((done.read_ret, done.read), (0, whole(9)));
        assert_eq!(SEQ_VALUE4.get(), whole(9));
    })
    .join()
    .unwrap();
}

/// Values round-trip between Rust and BPF on both lookup paths, the version advances by one per
/// write, and a value whose size is not a multiple of 8 keeps its padding out of the way.
#[test]
fn values_round_trip_on_both_paths_and_the_version_counts_writes() {
    let Some(skel) = skel() else { return };
    std::thread::spawn(move || {
        assert_eq!(
            SEQ_SMALL.get(),
            [1, 2, 3],
            "every thread starts from the initializer"
        );
        for cached in [0, 1] {
            SEQ_VALUE4.set(whole(40 + u64::from(cached)));
            SEQ_SMALL.set([7, 8, 9 + cached as u16]);
            let out = run(
                &skel.progs.seq_roundtrip,
                RoundtripCtx {
                    cached,
                    value: whole(100 + u64::from(cached)),
                    small: [10, 11, 12, 0],
                    ..RoundtripCtx::default()
                },
            );
            assert_eq!(out.fast, 1 - cached, "the path taken: {out:?}");
            assert_eq!((out.read_ret, out.small_ret), (0, 0), "{out:?}");
            assert_eq!(out.value, whole(40 + u64::from(cached)));
            assert_eq!(out.small[..3], [7, 8, 9 + cached as u16]);
            assert_eq!((out.write_ret, out.small_write_ret), (0, 0), "{out:?}");
            assert_eq!(SEQ_VALUE4.get(), whole(100 + u64::from(cached)));
            assert_eq!(SEQ_SMALL.get(), [10, 11, 12]);
            assert_eq!(out.seq & (SEQ_LATCH | SEQ_CLAIMS), SEQ_LATCH);
            assert_eq!(out.small_seq & (SEQ_LATCH | SEQ_CLAIMS), SEQ_LATCH);
        }
        // Every write moves the version on by one: Rust's set, BPF's write, Rust's replace.
        let first = run(&skel.progs.seq_roundtrip, RoundtripCtx::default()).seq;
        SEQ_VALUE4.set(whole(1));
        assert_eq!(SEQ_VALUE4.replace(whole(2)), whole(1));
        let second = run(&skel.progs.seq_roundtrip, RoundtripCtx::default()).seq;
        assert_eq!(
            second,
            first + 3 * SEQ_ONE,
            "set, replace and BPF's write: 3 writes"
        );
    })
    .join()
    .unwrap();
}

/// The same programs built with `TLD_SEQ_PORTABLE`, which reads the sequence word with atomic
/// fetch-adds (what the header does on architectures other than x86-64), load and give the same
/// results, sharing the runtime's `tld_data_map`.
#[test]
fn the_portable_ordering_loads_and_gives_the_same_results() {
    let Some(skel) = skel() else { return };
    use std::os::fd::AsFd;
    let scratch = std::env::temp_dir().join(format!("tld-consistent-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let source = scratch.join("portable.bpf.c");
    let program =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bpf/tld_consistent.bpf.c");
    std::fs::write(
        &source,
        format!(
            "#define TLD_SEQ_PORTABLE\n#include \"{}\"\n",
            program.display()
        ),
    )
    .unwrap();
    let object = scratch.join("portable.bpf.o");
    let out = std::path::Path::new(env!("OUT_DIR"));
    tld_bpf_build::compile_object(&source, &[out], &scratch.join("libbpf"), &object)
        .unwrap_or_else(|e| panic!("the portable build does not compile:\n{e}"));
    let mut open = libbpf_rs::ObjectBuilder::default()
        .open_file(&object)
        .expect("open the portable object");
    for mut map in open.maps_mut() {
        if map.name() == "tld_data_map" {
            map.reuse_fd(skel.maps.tld_data_map.as_fd())
                .expect("share tld_data_map");
        }
    }
    let obj = open.load().expect("the portable object loads");
    let prog = |name: &str| {
        obj.progs_mut()
            .find(|p| p.name() == name)
            .unwrap_or_else(|| panic!("no program {name}"))
    };
    // On this test's own thread (the object cannot move to another).
    {
        for cached in [0, 1] {
            SEQ_VALUE4.set(whole(50));
            let out = run(
                &prog("seq_roundtrip"),
                RoundtripCtx {
                    cached,
                    value: whole(60),
                    small: [4, 5, 6, 0],
                    ..RoundtripCtx::default()
                },
            );
            assert_eq!((out.read_ret, out.write_ret), (0, 0), "{out:?}");
            assert_eq!(out.value, whole(50));
            assert_eq!(SEQ_VALUE4.get(), whole(60));
            assert_eq!(SEQ_SMALL.get(), [4, 5, 6]);
        }
        let poke = |step: u32| {
            run(
                &prog("seq_poke"),
                PokeCtx {
                    step,
                    v: 70,
                    ..PokeCtx::default()
                },
            )
        };
        assert_eq!(
            poke(0).read_ret,
            EAGAIN,
            "a reader facing a stopped BPF writer"
        );
        assert_eq!(
            poke(3).write_ret,
            EBUSY,
            "a writer facing a stopped BPF writer"
        );
        assert_eq!(poke(1).read_ret, 0);
        assert_eq!(SEQ_VALUE4.get(), whole(70));
        let stopped = poke(4);
        assert_eq!(
            (stopped.read_ret, stopped.read),
            (0, whole(70)),
            "the thread's claim"
        );
        assert_eq!(poke(5).read_ret, 0);
    }
    std::fs::remove_dir_all(&scratch).ok();
}

/// Mirror of `struct switch_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct SwitchStats {
    tid: i32,
    pad: u32,
    switches: u64,
    mid_write: u64,
    ok: u64,
    again: u64,
    absent: u64,
    torn: u64,
    retries: u64,
}

fn switch_stats(skel: &TldConsistentSkel<'_>) -> SwitchStats {
    let bytes = skel
        .maps
        .switch_map
        .lookup(&0u32.to_ne_bytes(), libbpf_rs::MapFlags::ANY)
        .expect("look up switch_map")
        .expect("switch_map has element 0");
    assert_eq!(bytes.len(), std::mem::size_of::<SwitchStats>());
    // SAFETY: `SwitchStats` is `repr(C)` plain integers, valid for any bytes, and `bytes` holds
    // exactly one.
    unsafe { bytes.as_ptr().cast::<SwitchStats>().read_unaligned() }
}

fn set_switch_stats(skel: &TldConsistentSkel<'_>, stats: SwitchStats) {
    // SAFETY: `stats` is plain integers with no padding; the slice covers exactly it.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&stats as *const SwitchStats).cast::<u8>(),
            std::mem::size_of::<SwitchStats>(),
        )
    };
    skel.maps
        .switch_map
        .update(&0u32.to_ne_bytes(), bytes, libbpf_rs::MapFlags::ANY)
        .expect("update switch_map");
}

/// The hint's own thread writes it back to back on a CPU it shares with a CPU hog, so that it is
/// often preempted in the middle of a write; a BPF program reads it each time the thread is
/// switched out, as a scheduler does, and cannot wait for the write to finish. Every such read
/// gets a whole value at once: none returns -EAGAIN, none is torn.
#[test]
fn a_reader_at_sched_switch_gets_a_whole_value_from_a_preempted_writer() {
    let Some(skel) = skel() else { return };
    let _cpus = cpus();
    let secs = seconds().min(3.0);
    let (tid, stop, writer) = owner(move |stop| {
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..1024 {
                i += 1;
                SEQ_VALUE4.set(whole(i));
            }
        }
        i
    });
    let hog = std::thread::spawn(move || {
        pin_to(0);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n = std::hint::black_box(n + 1);
        }
    });
    set_switch_stats(
        skel,
        SwitchStats {
            tid,
            ..SwitchStats::default()
        },
    );
    let link = skel
        .progs
        .seq_on_switch
        .attach()
        .expect("attach seq_on_switch (tp_btf/sched_switch)");
    std::thread::sleep(Duration::from_secs_f64(secs));
    drop(link);
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    hog.join().unwrap();
    let st = switch_stats(skel);
    set_switch_stats(skel, SwitchStats::default());
    eprintln!(
        "sched_switch for {secs:.1} s, the writer sharing its CPU with a hog: {writes} writes, \
         {} switch-outs, {} of them in the middle of a write; reads: {} whole, {} -EAGAIN, {} \
         torn, {} -ENOENT, {} retries (load average {})",
        st.switches,
        st.mid_write,
        st.ok,
        st.again,
        st.torn,
        st.absent,
        st.retries,
        load_average()
    );
    assert!(
        st.switches >= 50,
        "the writer was barely switched out: {st:?}"
    );
    assert!(
        st.mid_write > 0,
        "the writer was never preempted in the middle of a write, so this run shows nothing: \
         {st:?}"
    );
    assert_eq!(st.torn, 0, "a torn value: {st:?}");
    assert_eq!(st.absent, 0, "the hint was not found: {st:?}");
    assert_eq!(
        st.again, 0,
        "a reader at sched_switch met a preempted writer and gave up: {st:?}"
    );
    assert_eq!(st.ok, st.switches);
}

/// BPF writes 1024-byte values into the hint back to back on one CPU while the thread reads it
/// with `get()` on the other. Every read is one of BPF's whole values: never a mix, and never
/// the hint's initial value, which nobody wrote.
#[test]
fn rust_get_under_back_to_back_1024_byte_writes_returns_the_last_whole_value() {
    let Some(skel) = skel() else { return };
    if !two_cpus("rust_get_under_back_to_back_1024_byte_writes_returns_the_last_whole_value") {
        return;
    }
    let _cpus = cpus();
    const MARK: u64 = 1 << 63;
    let (tid, stop, reader) = owner(move |stop| {
        // A value of the thread's own first: from here on, a read of the initial value (all
        // zeros) is one that nobody wrote.
        SEQ_BIG.set([MARK; 128]);
        let before = consistent::retries();
        let (mut reads, mut initial, mut torn, mut changed, mut last) = (0u64, 0u64, 0u64, 0u64, 0);
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..256 {
                let v = SEQ_BIG.get();
                reads += 1;
                initial += u64::from(v == [0; 128]);
                torn += u64::from(v.iter().any(|&w| w != v[0]));
                changed += u64::from(v[0] != last);
                last = v[0];
            }
        }
        let retries = consistent::retries().reads - before.reads;
        (reads, initial, torn, changed, retries)
    });
    pin_to(1);
    let secs = seconds().min(3.0);
    let start = Instant::now();
    let mut totals = BpfTotals::default();
    let mut base = 1u64;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        let out = bpf_loop(
            &skel.progs.seq_big_write_loop,
            LoopCtx {
                tid,
                iters: 2_000,
                base,
                ..LoopCtx::default()
            },
        );
        base += 2;
        totals.add(&out);
    }
    stop.store(true, Ordering::Relaxed);
    let (reads, initial, torn, changed, retries) = reader.join().unwrap();
    eprintln!(
        "1024-byte values, BPF writes / Rust get() for {:.1} s: BPF {} writes, {} -EBUSY; Rust {} \
         reads ({} saw a new value), {} of the initial value, {} torn, {} retries (load average {})",
        start.elapsed().as_secs_f64(),
        totals.ok,
        totals.busy,
        reads,
        changed,
        initial,
        torn,
        retries,
        load_average()
    );
    assert_eq!(torn, 0, "get() returned a mix of two writes");
    assert_eq!(
        initial, 0,
        "get() returned the initial value while BPF wrote"
    );
    assert_eq!(totals.absent, 0, "BPF did not find seq_big: {totals:?}");
    assert!(
        changed > 100,
        "the reader saw too few of BPF's writes to mean anything"
    );
}

/// The 1-minute load average, as `/proc/loadavg` has it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}
