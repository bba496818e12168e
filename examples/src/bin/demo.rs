//! `make demo`: Rust threads set per-thread hints, and a BPF program reads them at every context
//! switch and writes one back.
//!
//! 1. Load `bpf/demo.bpf.c` (a `tp_btf/sched_switch` program), attach it, and connect the
//!    runtime to its `tld_data_map`.
//! 2. Start a few named threads. Each sets its own `PRIORITY` and `LATENCY` hints, then sleeps
//!    a few dozen times, so that it is switched out again and again. At each switch-out the BPF
//!    program reads the thread's hints by key, records them in its hash map `seen`, and adds
//!    one to the thread's `SWITCHES_SEEN` hint.
//! 3. Each thread reads `SWITCHES_SEEN` back (BPF wrote it) and reports to `main`, which prints
//!    what each side saw, checks that they agree, and exits non-zero if they do not.
//!
//! Without the privilege to load BPF (root, or CAP_BPF and CAP_PERFMON) or on a kernel without
//! `__uptr` (Linux < 6.13), the demo says what is missing and runs degraded: the hints still
//! work, as plain thread-locals.

use std::fmt;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};
use tld_example_hints::{LatencyHint, LATENCY, PRIORITY, SWITCHES_SEEN};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/demo.skel.rs"));
}
use skel::{types::demo_seen, DemoSkel, DemoSkelBuilder};

/// A worker thread of the demo, and the hints it sets.
struct Worker {
    name: &'static str,
    priority: i32,
    latency: LatencyHint,
    /// How many times it sleeps; each sleep switches it out at least once.
    sleeps: u32,
}

const WORKERS: [Worker; 4] = [
    Worker {
        name: "audio",
        priority: -5,
        latency: LatencyHint {
            budget_us: 500,
            class: LatencyHint::CLASS_INTERACTIVE,
        },
        sleeps: 24,
    },
    Worker {
        name: "render",
        priority: -2,
        latency: LatencyHint {
            budget_us: 4_000,
            class: LatencyHint::CLASS_INTERACTIVE,
        },
        sleeps: 32,
    },
    Worker {
        name: "network",
        priority: 0,
        latency: LatencyHint {
            budget_us: 20_000,
            class: LatencyHint::CLASS_NORMAL,
        },
        sleeps: 40,
    },
    Worker {
        name: "indexer",
        priority: 10,
        latency: LatencyHint {
            budget_us: 0,
            class: LatencyHint::CLASS_BATCH,
        },
        sleeps: 48,
    },
];

/// How long each sleep lasts.
const SLEEP: Duration = Duration::from_micros(500);

/// What a worker thread tells `main` before it exits.
struct Report {
    worker: &'static Worker,
    tid: i32,
    /// `PRIORITY.get()` at the end: Rust's own view of what it set.
    priority_read: i32,
    /// `LATENCY.get()` at the end.
    latency_read: LatencyHint,
    /// `SWITCHES_SEEN.get()` at the end: what BPF wrote, as Rust reads it.
    switches_read: u64,
}

/// The loaded and attached BPF side. Dropping it detaches the program (the link goes first)
/// and then unloads the object; nothing is pinned.
struct Bpf<'obj> {
    link: Link,
    skel: DemoSkel<'obj>,
}

/// Why the BPF side is not running.
enum Unavailable {
    /// Opening or loading the object (the verifier, or missing privilege).
    Load(libbpf_rs::Error),
    /// Attaching the program to the tracepoint.
    Attach(libbpf_rs::Error),
    /// Handing the map to the runtime.
    Connect(tld_runtime::Error),
    /// Anything else before load.
    Setup(&'static str),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Load(e) => write!(f, "loading the BPF object failed: {e}"),
            Unavailable::Attach(e) => write!(f, "attaching tp_btf/sched_switch failed: {e}"),
            Unavailable::Connect(e) => {
                write!(f, "connecting the runtime to tld_data_map failed: {e}")
            }
            Unavailable::Setup(what) => write!(f, "setting up the BPF object failed: {what}"),
        }
    }
}

/// Opens, loads and attaches the BPF program, then connects the runtime to its map. libbpf is
/// silenced meanwhile: a failure here is expected without privilege, and explained by `main`.
fn start_bpf(storage: &mut MaybeUninit<OpenObject>) -> Result<Bpf<'_>, Unavailable> {
    let previous = libbpf_rs::set_print(None);
    let loaded = load_and_attach(storage);
    libbpf_rs::set_print(previous);
    let bpf = loaded?;
    // From now on every thread that touches a hint is registered in this map.
    tld_runtime::connect(bpf.skel.maps.tld_data_map.as_fd()).map_err(Unavailable::Connect)?;
    Ok(bpf)
}

fn load_and_attach(storage: &mut MaybeUninit<OpenObject>) -> Result<Bpf<'_>, Unavailable> {
    let mut open = DemoSkelBuilder::default()
        .open(storage)
        .map_err(Unavailable::Load)?;
    // Only this process's threads interest the program; it skips every other switch.
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .ok_or(Unavailable::Setup("its .rodata is not mapped"))?;
    rodata.demo_tgid = std::process::id() as i32;
    let skel = open.load().map_err(Unavailable::Load)?;
    // Attach this one program, not `skel.attach()`, which can leave a partial attachment.
    let link = skel
        .progs
        .demo_switch
        .attach()
        .map_err(Unavailable::Attach)?;
    Ok(Bpf { link, skel })
}

impl Bpf<'_> {
    /// What BPF recorded for thread `tid`, if it saw the thread at all.
    fn seen(&self, tid: i32) -> Option<demo_seen> {
        let bytes = self
            .skel
            .maps
            .seen
            .lookup(&tid.to_ne_bytes(), MapFlags::ANY)
            .ok()??;
        parse_seen(&bytes)
    }

    /// Detaches the program, then unloads the object.
    fn stop(self) {
        let Bpf { link, skel } = self;
        drop(link);
        drop(skel);
    }
}

/// Decodes a `struct demo_seen` (see `bpf/demo.bpf.c`) from the map's value bytes.
fn parse_seen(bytes: &[u8]) -> Option<demo_seen> {
    if bytes.len() != std::mem::size_of::<demo_seen>() {
        return None;
    }
    let u64_at = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    Some(demo_seen {
        switches: u64_at(0),
        priority: u32_at(8) as i32,
        budget_us: u32_at(12),
        class: u32_at(16),
        tgid: u32_at(20) as i32,
        found: u32_at(24),
        pad: 0,
    })
}

/// `demo_seen.found` when BPF found all three hints (FOUND_* in `bpf/demo.bpf.c`).
const FOUND_ALL: u32 = 0b111;

/// The calling thread's id, which is what BPF calls the task's `pid`.
fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::gettid() }
}

/// A worker thread's body: set the hints, get switched out a few dozen times, read back.
fn work(worker: &'static Worker, ready: &Barrier) -> Report {
    // The first hint access gives the thread its page and registers it with the kernel.
    PRIORITY.set(worker.priority);
    LATENCY.set(worker.latency);
    ready.wait();
    for _ in 0..worker.sleeps {
        thread::sleep(SLEEP);
    }
    Report {
        worker,
        tid: gettid(),
        priority_read: PRIORITY.get(),
        latency_read: LATENCY.get(),
        switches_read: SWITCHES_SEEN.get(),
    }
}

/// Runs the workers. Returns their reports and `status()` as it was while all were live.
fn run_workers() -> (Vec<Report>, tld_runtime::Status) {
    let ready = Barrier::new(WORKERS.len() + 1);
    thread::scope(|s| {
        let handles: Vec<_> = WORKERS
            .iter()
            .map(|worker| {
                let ready = &ready;
                thread::Builder::new()
                    .name(worker.name.into())
                    .spawn_scoped(s, move || work(worker, ready))
                    .expect("spawn a worker thread")
            })
            .collect();
        // Every worker has set its hints (and is registered, if BPF is up).
        ready.wait();
        let status = tld_runtime::status();
        let reports = handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread panicked"))
            .collect();
        (reports, status)
    })
}

/// A latency hint as the table shows it.
fn latency(h: &LatencyHint) -> String {
    match h.budget_us {
        0 => format!("{}, no budget", h.class_name()),
        us => format!("{}, {us} us", h.class_name()),
    }
}

/// A table column: the title of its group (over its first column), its title, its width, and
/// whether it is right-aligned (numbers are).
struct Column(&'static str, &'static str, usize, bool);

/// The columns of the table with BPF.
const BPF_COLUMNS: [Column; 9] = [
    Column("", "thread", 7, false),
    Column("", "tid", 7, true),
    Column("priority", "Rust set", 8, true),
    Column("", "BPF saw", 8, true),
    Column("latency hint", "Rust set", 20, false),
    Column("", "BPF saw", 20, false),
    Column("switches_seen", "BPF count", 9, true),
    Column("", "Rust read", 9, true),
    Column("", "agree", 5, false),
];

/// The columns of the table without BPF.
const DEGRADED_COLUMNS: [Column; 8] = [
    Column("", "thread", 7, false),
    Column("", "tid", 7, true),
    Column("priority", "set", 8, true),
    Column("", "read", 8, true),
    Column("latency hint", "set", 20, false),
    Column("", "read", 20, false),
    Column("switches_seen", "read", 13, true),
    Column("", "agree", 5, false),
];

/// Prints the two header lines and a rule.
fn header(columns: &[Column]) {
    let mut groups = String::new();
    let mut at = 0usize;
    for c in columns {
        if !c.0.is_empty() {
            groups.push_str(&" ".repeat(at.saturating_sub(groups.len())));
            groups.push_str(c.0);
        }
        at += c.2 + 2;
    }
    println!("{groups}");
    row(columns, &columns.iter().map(|c| c.1).collect::<Vec<_>>());
    let rules: Vec<String> = columns.iter().map(|c| "-".repeat(c.2)).collect();
    row(
        columns,
        &rules.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

/// Prints one table row: `cells` padded to `columns`.
fn row(columns: &[Column], cells: &[&str]) {
    let mut line = String::new();
    for (i, (c, text)) in columns.iter().zip(cells).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let w = c.2;
        if c.3 {
            line.push_str(&format!("{text:>w$}"));
        } else {
            line.push_str(&format!("{text:<w$}"));
        }
    }
    println!("{}", line.trim_end());
}

/// Prints the table of what Rust set and what BPF saw, and returns the disagreements.
fn report_with_bpf(bpf: &Bpf<'_>, reports: &[Report]) -> Vec<String> {
    let mut problems = Vec::new();
    header(&BPF_COLUMNS);
    for r in reports {
        let w = r.worker;
        let before = problems.len();
        let seen = bpf.seen(r.tid);
        check_rust_side(r, &mut problems);
        match &seen {
            Some(s) => check_bpf_side(r, s, &mut problems),
            None => problems.push(format!("{}: BPF never saw thread {}", w.name, r.tid)),
        }
        let bpf_latency = seen.as_ref().map(|s| {
            latency(&LatencyHint {
                budget_us: s.budget_us,
                class: s.class,
            })
        });
        let dash = || "-".to_string();
        row(
            &BPF_COLUMNS,
            &[
                w.name,
                &r.tid.to_string(),
                &w.priority.to_string(),
                &seen.as_ref().map_or_else(dash, |s| s.priority.to_string()),
                &latency(&w.latency),
                &bpf_latency.unwrap_or_else(dash),
                &seen.as_ref().map_or_else(dash, |s| s.switches.to_string()),
                &r.switches_read.to_string(),
                if problems.len() == before {
                    "yes"
                } else {
                    "NO"
                },
            ],
        );
        // BPF may count a switch-out that came after the thread's read, as it exited.
        if let Some(extra) = seen
            .map(|s| s.switches.saturating_sub(r.switches_read))
            .filter(|&n| n > 0)
        {
            println!(
                "{:18}(BPF counted {extra} more after {}'s read, as it exited)",
                "", w.name
            );
        }
    }
    problems
}

/// Checks what BPF recorded for a thread against what the thread set and read back.
fn check_bpf_side(r: &Report, s: &demo_seen, problems: &mut Vec<String>) {
    let w = r.worker;
    if s.found != FOUND_ALL {
        problems.push(format!(
            "{}: BPF did not find every hint (found bits {:#b})",
            w.name, s.found
        ));
    }
    if s.tgid != std::process::id() as i32 {
        problems.push(format!("{}: BPF recorded tgid {}", w.name, s.tgid));
    }
    if s.priority != w.priority {
        problems.push(format!(
            "{}: priority set {} but BPF saw {}",
            w.name, w.priority, s.priority
        ));
    }
    if (s.budget_us, s.class) != (w.latency.budget_us, w.latency.class) {
        problems.push(format!(
            "{}: latency set {} but BPF saw {}",
            w.name,
            latency(&w.latency),
            latency(&LatencyHint {
                budget_us: s.budget_us,
                class: s.class
            })
        ));
    }
    // Each sleep blocks, so BPF counted at least one switch-out per sleep before the read.
    if r.switches_read < u64::from(w.sleeps) {
        problems.push(format!(
            "{}: Rust read {} switches back after {} sleeps",
            w.name, r.switches_read, w.sleeps
        ));
    }
    // BPF's count only grows: it is what Rust read, plus any switch-out between the read and
    // the thread's exit, which unregisters it. Agreement is exact when there was none.
    if s.switches < r.switches_read {
        problems.push(format!(
            "{}: Rust read {} switches, more than BPF counted ({})",
            w.name, r.switches_read, s.switches
        ));
    }
}

/// Prints the table without BPF: what each thread set and read back as a thread-local.
fn report_degraded(reports: &[Report]) -> Vec<String> {
    let mut problems = Vec::new();
    header(&DEGRADED_COLUMNS);
    for r in reports {
        let w = r.worker;
        let before = problems.len();
        check_rust_side(r, &mut problems);
        if r.switches_read != 0 {
            problems.push(format!(
                "{}: SWITCHES_SEEN is {} with no BPF program to write it",
                w.name, r.switches_read
            ));
        }
        row(
            &DEGRADED_COLUMNS,
            &[
                w.name,
                &r.tid.to_string(),
                &w.priority.to_string(),
                &r.priority_read.to_string(),
                &latency(&w.latency),
                &latency(&r.latency_read),
                &r.switches_read.to_string(),
                if problems.len() == before {
                    "yes"
                } else {
                    "NO"
                },
            ],
        );
    }
    problems
}

/// Each thread reads back its own values: the hints are per thread, on either path.
fn check_rust_side(r: &Report, problems: &mut Vec<String>) {
    let w = r.worker;
    if r.priority_read != w.priority || r.latency_read != w.latency {
        problems.push(format!(
            "{}: read back priority {} / latency {} instead of what it set",
            w.name,
            r.priority_read,
            latency(&r.latency_read)
        ));
    }
}

/// Says what the machine lacks for the BPF side, as far as the demo can tell.
fn explain(why: &Unavailable) {
    println!("BPF is not available, so the demo runs degraded.");
    println!("  {why}");
    println!("  What the BPF side needs:");
    let caps = effective_caps();
    let has = |bit: u32| caps.is_some_and(|c| c & (1 << bit) != 0);
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let bpf = has(CAP_BPF) || has(CAP_SYS_ADMIN);
    let perfmon = has(CAP_PERFMON) || has(CAP_SYS_ADMIN);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!(
        "  [{}] root, or CAP_BPF and CAP_PERFMON (this process: CAP_BPF {}, CAP_PERFMON {}{})",
        mark(bpf && perfmon),
        yes_no(bpf),
        yes_no(perfmon),
        if caps.is_none() {
            "; /proc/self/status unreadable"
        } else {
            ""
        }
    );
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    let new_enough = kernel_version(release).is_some_and(|v| v >= (6, 13));
    println!(
        "  [{}] Linux >= 6.13, for __uptr pointers in task storage (running {})",
        mark(new_enough),
        if release.is_empty() { "?" } else { release }
    );
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    println!(
        "  [{}] kernel BTF at /sys/kernel/btf/vmlinux, for tp_btf and CO-RE",
        mark(btf)
    );
    println!("  [ok] clang-19 at build time: the BPF object is built into this binary");
    if bpf && perfmon && new_enough && btf {
        println!("  Everything listed is present; the error above says what else went wrong.");
    } else {
        println!("  Run it as root (sudo make demo) on Linux >= 6.13 to see the BPF side.");
    }
    println!();
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "missing"
    }
}

/// The effective capability set of this process, from `/proc/self/status`.
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// `(major, minor)` of a kernel release such as `6.18.4-foo`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn main() -> ExitCode {
    println!(
        "tld demo: per-thread hints set in Rust, read (and written) by BPF at context switches"
    );
    println!();

    // The open object the skeleton borrows; declared first so that it outlives the skeleton.
    let mut storage = MaybeUninit::uninit();
    let bpf = match start_bpf(&mut storage) {
        Ok(bpf) => {
            println!(
                "Loaded bpf/demo.bpf.c, attached its tp_btf/sched_switch program, and connected \
                 the runtime to its tld_data_map."
            );
            Some(bpf)
        }
        Err(why) => {
            explain(&why);
            None
        }
    };
    println!(
        "{} threads set their own hints, then sleep a few dozen times each.",
        WORKERS.len()
    );
    println!();

    let (reports, status) = run_workers();

    let problems = match &bpf {
        Some(bpf) => report_with_bpf(bpf, &reports),
        None => report_degraded(&reports),
    };

    // Detach and unload before exiting: nothing stays attached, and nothing was pinned.
    let had_bpf = bpf.is_some();
    if let Some(bpf) = bpf {
        bpf.stop();
    }

    println!();
    if problems.is_empty() {
        if had_bpf {
            println!(
                "OK: for every thread, BPF saw the hints Rust set, and Rust read back BPF's count."
            );
        } else {
            println!("OK: every thread read back the hints it set (as thread-locals).");
        }
    } else {
        println!("MISMATCH: Rust and BPF disagree:");
        for p in &problems {
            println!("  - {p}");
        }
    }
    println!();
    println!("tld_runtime::status() while the threads ran: {status}");
    println!();
    println!("What just happened:");
    if had_bpf {
        println!("  - Each thread stored its hints with PRIORITY.set() and LATENCY.set(): plain");
        println!("    stores into a page of its own, which the runtime registered in the BPF task");
        println!("    storage map tld_data_map when the thread first touched a hint.");
        println!("  - At each switch-out of one of these threads, the tp_btf/sched_switch program");
        println!("    found that page through the map, looked up \"priority\" and \"latency\"");
        println!("    by key, and recorded them in its hash map `seen` (the BPF columns).");
        println!("  - It also added 1 to \"switches_seen\" in the page, and each thread read the");
        println!("    count back with SWITCHES_SEEN.get(): a plain load, no system call.");
    } else {
        println!("  - No BPF program ran, so nothing read the hints in the kernel. Each thread");
        println!("    still stored and read back its own hints, as thread-locals, and");
        println!("    SWITCHES_SEEN stayed 0 because only BPF writes it.");
        if status.is_connected() {
            println!("  - With no map given to connect(), the runtime found one pinned in");
            println!("    bpffs and registered the threads there; but this demo's program,");
            println!("    which reads them, did not load.");
        } else {
            println!("  - With no map given to connect(), the runtime looked for one pinned in");
            println!("    bpffs; status() above says why it stayed detached.");
        }
    }

    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
