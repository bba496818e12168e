//! The BPF harness: loads `bpf/bench_tld.bpf.c`, runs its programs with `BPF_PROG_TEST_RUN`
//! and `repeat`, and reads the verifier's statistics for them. The object is built twice, for
//! each generation of the format's map value ([`Bench`]: 7.x's 24 bytes, the header's default;
//! [`Bench618`]: 6.18's 16 bytes); [`Timed`] runs the programs of either.
//!
//! The timed programs are `SEC("xdp")`. The kernel runs an XDP program's test run in the
//! calling thread, so `bpf_get_current_task_btf()` is the benchmark thread, and reports the mean
//! duration of one run over `repeat` runs (in whole nanoseconds). A `SEC("syscall")` program
//! would also run as the calling thread, but its test run refuses `repeat`.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{OpenObject, ProgramInput, ProgramMut};

use crate::skel::{BenchTldSkel, BenchTldSkelBuilder};
use crate::skel_618::{BenchTld618Skel, BenchTld618SkelBuilder};
use crate::skel_guard::{BenchTldGuardSkel, BenchTldGuardSkelBuilder};

/// The program `p` of a skeleton of `bench_tld.bpf.c` (either build).
macro_rules! prog_of {
    ($progs:expr, $p:expr) => {{
        let progs = $progs;
        match $p {
            Prog::Empty => &progs.bench_empty,
            Prog::FloorK1 => &progs.bench_floor_k1,
            Prog::FloorK4 => &progs.bench_floor_k4,
            Prog::FloorK16 => &progs.bench_floor_k16,
            Prog::InlineK1 => &progs.bench_inline_k1,
            Prog::TldK1 => &progs.bench_tld_k1,
            Prog::TldK4 => &progs.bench_tld_k4,
            Prog::TldK16 => &progs.bench_tld_k16,
            Prog::CachedK1 => &progs.bench_cached_k1,
            Prog::CachedK4 => &progs.bench_cached_k4,
            Prog::CachedK16 => &progs.bench_cached_k16,
            Prog::DiagInit => &progs.bench_diag_init,
            Prog::DiagInitCached => &progs.bench_diag_init_cached,
            Prog::DiagTwoGets => &progs.bench_diag_two_gets,
            Prog::FloorX16 => &progs.bench_floor_x16,
            Prog::TldX16 => &progs.bench_tld_x16,
            Prog::CachedX16 => &progs.bench_cached_x16,
            Prog::InitX16 => &progs.bench_init_x16,
            Prog::InitCachedX16 => &progs.bench_init_cached_x16,
        }
    }};
}

/// The timed programs of a loaded build of `bench_tld.bpf.c`, whichever generation it reads.
pub trait Timed: Sync {
    /// The loaded program `p`.
    fn prog(&self, p: Prog) -> &ProgramMut<'static>;

    /// `hint_value_map`: task storage whose value is the hint itself (the syscall approach).
    fn hint_value_map(&'static self) -> BorrowedFd<'static>;

    /// Runs `p` `repeat` times in the calling thread and returns the kernel's mean duration.
    fn run(&self, p: Prog, repeat: u32) -> Result<Run, String> {
        let (ret, ns) = test_run(self.prog(p), p.name(), repeat)?;
        Ok(Run { ret, ns })
    }

    /// The verifier's and the JIT's figures for `p`.
    fn stats(&self, p: Prog) -> Result<ProgStats, String> {
        let info = prog_info(self.prog(p).as_fd(), None)?;
        Ok(ProgStats {
            verified_insns: info.verified_insns,
            xlated_insns: info.xlated_prog_len / 8,
            jited_bytes: info.jited_prog_len,
        })
    }
}

/// The timed BPF programs of `bench_tld.bpf.c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prog {
    /// Returns 0: the cost of one test-run iteration.
    Empty,
    /// Floor: one `bpf_task_storage_get` of `tld_data_map` and 1 read at a fixed offset.
    FloorK1,
    /// Floor with 4 fixed-offset reads.
    FloorK4,
    /// Floor with 16 fixed-offset reads.
    FloorK16,
    /// The syscall approach's BPF side: the hint is the task storage value itself.
    InlineK1,
    /// Ours: `bpf_tld_init` plus 1 lookup and read. The benchmark's pages carry the generated
    /// header's layout fingerprint, so this is the fast path: a constant offset into the page.
    TldK1,
    /// Ours (fast path) with 4 lookups.
    TldK4,
    /// Ours (fast path) with 16 lookups.
    TldK16,
    /// Ours on the cached path (`__bpf_tld_init(task, &tld, 0)`): 1 lookup through the
    /// per-task offset cache and read. What a program without a generated header, or a process
    /// whose layout differs from the header's, runs.
    CachedK1,
    /// The cached path with 4 lookups.
    CachedK4,
    /// The cached path with 16 lookups.
    CachedK16,
    /// `bpf_tld_init` alone (fast path: one storage get and the fingerprint check).
    DiagInit,
    /// The cached path's init alone (two storage gets: the pages, then the per-task cache in
    /// `tld_off_map`, and the cache's cookie check).
    DiagInitCached,
    /// Two `bpf_task_storage_get` calls and nothing else: the least the cached path's init
    /// makes.
    DiagTwoGets,
    /// P3a's floor with 16 pairs per run: 16 times one storage get and a read at a fixed
    /// offset.
    FloorX16,
    /// P3a with 16 pairs per run: 16 times `bpf_tld_init`, 1 lookup and a read (fast path).
    TldX16,
    /// The same on the cached path.
    CachedX16,
    /// G1: `bpf_tld_init` alone, 16 times (fast path).
    InitX16,
    /// G1: the cached path's init alone, 16 times.
    InitCachedX16,
}

impl Prog {
    /// Every timed program, in the order the report lists them.
    pub const ALL: [Prog; 19] = [
        Prog::Empty,
        Prog::FloorK1,
        Prog::FloorK4,
        Prog::FloorK16,
        Prog::InlineK1,
        Prog::TldK1,
        Prog::TldK4,
        Prog::TldK16,
        Prog::CachedK1,
        Prog::CachedK4,
        Prog::CachedK16,
        Prog::DiagInit,
        Prog::DiagInitCached,
        Prog::DiagTwoGets,
        Prog::FloorX16,
        Prog::TldX16,
        Prog::CachedX16,
        Prog::InitX16,
        Prog::InitCachedX16,
    ];

    /// The program's name in the BPF object.
    pub fn name(self) -> &'static str {
        match self {
            Prog::Empty => "bench_empty",
            Prog::FloorK1 => "bench_floor_k1",
            Prog::FloorK4 => "bench_floor_k4",
            Prog::FloorK16 => "bench_floor_k16",
            Prog::InlineK1 => "bench_inline_k1",
            Prog::TldK1 => "bench_tld_k1",
            Prog::TldK4 => "bench_tld_k4",
            Prog::TldK16 => "bench_tld_k16",
            Prog::CachedK1 => "bench_cached_k1",
            Prog::CachedK4 => "bench_cached_k4",
            Prog::CachedK16 => "bench_cached_k16",
            Prog::DiagInit => "bench_diag_init",
            Prog::DiagInitCached => "bench_diag_init_cached",
            Prog::DiagTwoGets => "bench_diag_two_gets",
            Prog::FloorX16 => "bench_floor_x16",
            Prog::TldX16 => "bench_tld_x16",
            Prog::CachedX16 => "bench_cached_x16",
            Prog::InitX16 => "bench_init_x16",
            Prog::InitCachedX16 => "bench_init_cached_x16",
        }
    }

    /// What the program returns for a thread whose hint `bench_hNN` holds `values[NN]` and
    /// whose `hint_value_map` element holds `inline`: the truncated sum of what it reads.
    pub fn expected(self, values: &[u64; 16], inline: u64) -> u32 {
        let sum = |k: usize| values[..k].iter().fold(0u64, |a, &v| a.wrapping_add(v)) as u32;
        match self {
            Prog::Empty => 0,
            Prog::FloorK1 | Prog::TldK1 | Prog::CachedK1 => sum(1),
            Prog::FloorK4 | Prog::TldK4 | Prog::CachedK4 => sum(4),
            Prog::FloorK16 | Prog::TldK16 | Prog::CachedK16 => sum(16),
            Prog::InlineK1 => inline as u32,
            Prog::DiagInit | Prog::DiagInitCached | Prog::DiagTwoGets => 1,
            Prog::FloorX16 | Prog::TldX16 | Prog::CachedX16 => values[0].wrapping_mul(16) as u32,
            Prog::InitX16 | Prog::InitCachedX16 => 1,
        }
    }
}

/// One `BPF_PROG_TEST_RUN` with `repeat`.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// The program's return value (of the last run).
    pub ret: u32,
    /// The kernel's mean duration of one run, in nanoseconds.
    pub ns: u64,
}

/// What the kernel says about a loaded program.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProgStats {
    /// Instructions the verifier processed (`bpf_prog_info.verified_insns`).
    pub verified_insns: u32,
    /// Instructions after the verifier's rewrites (`xlated_prog_len / 8`).
    pub xlated_insns: u32,
    /// Bytes of JIT-compiled machine code.
    pub jited_bytes: u32,
}

/// The loaded benchmark object.
pub struct Bench {
    skel: BenchTldSkel<'static>,
}

impl Bench {
    /// Loads the BPF object. It lives for the rest of the process, so that its maps' fds can be
    /// handed to other threads as `BorrowedFd<'static>`.
    pub fn load() -> Result<&'static Bench, String> {
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let skel = BenchTldSkelBuilder::default()
            .open(storage)
            .and_then(|open| open.load())
            .map_err(|e| {
                format!(
                    "loading bench_tld.bpf.o failed: {e:#}. The benchmarks need root (or \
                     CAP_BPF+CAP_PERFMON) on Linux >= 6.13."
                )
            })?;
        Ok(Box::leak(Box::new(Bench { skel })))
    }

    /// Connects the runtime to this object's `tld_data_map`.
    pub fn connect(&'static self) -> Result<(), tld_runtime::Error> {
        tld_runtime::connect(self.skel.maps.tld_data_map.as_fd())
    }

    /// The skeleton.
    pub fn skel(&'static self) -> &'static BenchTldSkel<'static> {
        &self.skel
    }

    /// `bare_reg_map`: a map laid out like `tld_data_map`, for the bare registration.
    pub fn bare_reg_map(&'static self) -> BorrowedFd<'static> {
        self.skel.maps.bare_reg_map.as_fd()
    }

    /// The JIT-compiled machine code of `p` (x86-64 on this project's machines), for
    /// `objdump -D -b binary -m i386:x86-64`.
    pub fn jited_code(&self, p: Prog) -> Result<Vec<u8>, String> {
        let fd = self.prog(p).as_fd();
        let len = prog_info(fd, None)?.jited_prog_len as usize;
        let mut code = vec![0u8; len];
        let info = prog_info(fd, Some(&mut code))?;
        code.truncate(info.jited_prog_len as usize);
        Ok(code)
    }
}

impl Timed for Bench {
    fn prog(&self, p: Prog) -> &ProgramMut<'static> {
        prog_of!(&self.skel.progs, p)
    }

    fn hint_value_map(&'static self) -> BorrowedFd<'static> {
        self.skel.maps.hint_value_map.as_fd()
    }
}

/// The benchmark object built for the 6.18 generation's value (`TLD_GEN_6_18`).
pub struct Bench618 {
    skel: BenchTld618Skel<'static>,
}

impl Bench618 {
    /// Loads the BPF object, for the rest of the process.
    pub fn load() -> Result<&'static Bench618, String> {
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let skel = BenchTld618SkelBuilder::default()
            .open(storage)
            .and_then(|open| open.load())
            .map_err(|e| format!("loading bench_tld_618.bpf.o failed: {e:#}"))?;
        Ok(Box::leak(Box::new(Bench618 { skel })))
    }

    /// Registers every thread in this object's `tld_data_map` as well
    /// ([`tld_runtime::connect_also`]).
    pub fn connect_also(&'static self) -> Result<(), tld_runtime::Error> {
        tld_runtime::connect_also(self.skel.maps.tld_data_map.as_fd())
    }
}

impl Timed for Bench618 {
    fn prog(&self, p: Prog) -> &ProgramMut<'static> {
        prog_of!(&self.skel.progs, p)
    }

    fn hint_value_map(&'static self) -> BorrowedFd<'static> {
        self.skel.maps.hint_value_map.as_fd()
    }
}

/// The benchmark object built with the guard's check (`TLD_GUARD`), loaded with it enabled.
pub struct BenchGuard {
    skel: BenchTldGuardSkel<'static>,
}

impl BenchGuard {
    /// Loads the object with the check enabled and nothing else: for the real guard
    /// (`tld_guard::Guard::attach`), which writes the key itself.
    pub fn load_enabled() -> Result<&'static BenchGuard, String> {
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let skel = BenchTldGuardSkelBuilder::default()
            .open(storage)
            .and_then(|mut open| {
                if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                    rodata.tld_guard_enabled = true;
                }
                open.load()
            })
            .map_err(|e| format!("loading bench_tld_guard.bpf.o failed: {e:#}"))?;
        Ok(Box::leak(Box::new(BenchGuard { skel })))
    }

    /// Its `tld_data_map`.
    pub fn data_map(&'static self) -> BorrowedFd<'static> {
        self.skel.maps.tld_data_map.as_fd()
    }

    /// Its `tld_guard_key`.
    pub fn key_map(&'static self) -> BorrowedFd<'static> {
        self.skel.maps.tld_guard_key.as_fd()
    }

    /// Loads the object, gives its key map a secret (as the guard's loader does), registers
    /// every thread in its map too ([`tld_runtime::connect_also`]), and stamps the calling
    /// thread's element as the guard would: `bpf_tld_init` then passes the check for this
    /// thread.
    pub fn load_and_stamp() -> Result<&'static BenchGuard, String> {
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let skel = BenchTldGuardSkelBuilder::default()
            .open(storage)
            .and_then(|mut open| {
                if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                    rodata.tld_guard_enabled = true;
                }
                open.load()
            })
            .map_err(|e| format!("loading bench_tld_guard.bpf.o failed: {e:#}"))?;
        let bench: &'static BenchGuard = Box::leak(Box::new(BenchGuard { skel }));
        let key_map = bench.skel.maps.tld_guard_key.as_fd();
        let mut value = [0u8; 40];
        for (i, b) in value[..32].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151).wrapping_add(7);
        }
        value[32..].copy_from_slice(&0x3179_656b_6764_6c74u64.to_ne_bytes());
        let key = 0u32;
        // SAFETY: key and value are live buffers of the key map's key (u32) and value (40
        // bytes) sizes.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_map_update_elem(
                key_map.as_raw_fd(),
                (&key as *const u32).cast(),
                value.as_ptr().cast(),
                0,
            )
        };
        if rc != 0 {
            return Err(format!("writing the guard's key: {rc}"));
        }
        tld_runtime::connect_also(bench.skel.maps.tld_data_map.as_fd())
            .map_err(|e| format!("tld_runtime::connect_also: {e}"))?;
        let packet_free = ProgramInput::default();
        let out = bench
            .skel
            .progs
            .bench_stamp_self
            .test_run(packet_free)
            .map_err(|e| format!("bench_stamp_self: {e:#}"))?;
        if out.return_value != 0 {
            return Err(format!("bench_stamp_self returned {}", out.return_value));
        }
        Ok(bench)
    }
}

impl Timed for BenchGuard {
    fn prog(&self, p: Prog) -> &ProgramMut<'static> {
        prog_of!(&self.skel.progs, p)
    }

    fn hint_value_map(&'static self) -> BorrowedFd<'static> {
        self.skel.maps.hint_value_map.as_fd()
    }
}

/// The time to load the benchmark object with only `p` enabled: libbpf's preparation, the
/// kernel's verification of `p` and its JIT, and the creation of the object's maps. The lowest
/// of `reps` loads (each a fresh object, dropped afterwards), in microseconds.
pub fn load_time_us(p: Prog, reps: usize) -> Result<f64, String> {
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let mut storage = MaybeUninit::<OpenObject>::uninit();
        let mut open = BenchTldSkelBuilder::default()
            .open(&mut storage)
            .map_err(|e| format!("opening bench_tld.bpf.o: {e:#}"))?;
        for mut prog in open.open_object_mut().progs_mut() {
            let keep = prog.name().to_str() == Some(p.name());
            prog.set_autoload(keep);
        }
        let start = std::time::Instant::now();
        let skel = open
            .load()
            .map_err(|e| format!("loading {} alone: {e:#}", p.name()))?;
        best = best.min(start.elapsed().as_secs_f64() * 1e6);
        drop(skel);
    }
    Ok(best)
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a program, optionally copying its JIT-compiled code out.
fn prog_info(
    fd: BorrowedFd<'_>,
    jited: Option<&mut Vec<u8>>,
) -> Result<libbpf_rs::libbpf_sys::bpf_prog_info, String> {
    let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
    if let Some(buf) = jited {
        info.jited_prog_len = buf.len() as u32;
        info.jited_prog_insns = buf.as_mut_ptr() as u64;
    }
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `info` is a `bpf_prog_info` of `len` bytes; the only pointer in it, if any, names
    // `buf`, which has `jited_prog_len` writable bytes and outlives the call.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_obj_get_info_by_fd(
            fd.as_raw_fd(),
            (&mut info as *mut libbpf_rs::libbpf_sys::bpf_prog_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!("bpf_obj_get_info_by_fd: {rc}"));
    }
    Ok(info)
}

/// Runs the XDP program `prog` (called `name` in errors) `repeat` times in the calling thread
/// with `BPF_PROG_TEST_RUN`: its return value and the kernel's mean ns per run.
pub fn test_run(prog: &ProgramMut<'_>, name: &str, repeat: u32) -> Result<(u32, u64), String> {
    // An XDP test run needs at least an Ethernet header of packet data.
    let packet = [0u8; 64];
    let input = ProgramInput {
        data_in: Some(&packet),
        repeat,
        ..ProgramInput::default()
    };
    let out = prog
        .test_run(input)
        .map_err(|e| format!("BPF_PROG_TEST_RUN of {name}: {e:#}"))?;
    Ok((out.return_value, out.duration.as_nanos() as u64))
}
