// SPDX-License-Identifier: GPL-2.0-only
//! `scx_tld`: an example sched_ext scheduler driven by per-thread hints that applications set
//! from Rust with tld (see `tld-sched-hints` for the hints and `src/bpf/main.bpf.c` for the
//! policy).
//!
//! The loader opens, loads and attaches the BPF scheduler with scx_utils' `scx_ops_*` macros,
//! pins `tld_data_map` where applications look for it, prints statistics, and detaches cleanly
//! on SIGINT or SIGTERM. If the BPF scheduler exits on its own (an error, a stall the kernel's
//! watchdog caught), it prints scx's exit information and exits non-zero.

mod bpf_skel {
    #![allow(
        clippy::all,
        missing_docs,
        dead_code,
        non_camel_case_types,
        non_snake_case
    )]
    #![allow(non_upper_case_globals, unused_imports)]
    include!(concat!(env!("OUT_DIR"), "/bpf_skel.rs"));
}
mod stats;

use std::fs;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};
use scx_utils::UserExitInfo;
use scx_utils::{scx_ops_attach, scx_ops_load, scx_ops_open, uei_exited, uei_report};
use tld_sched_hints::LatencyHint;

use bpf_skel::{BpfSkel, BpfSkelBuilder};
use stats::Stats;

/// Where `TLD_PIN_DATA_MAP` makes libbpf pin `tld_data_map`, and where tld-runtime looks.
const DATA_MAP_PIN: &str = "/sys/fs/bpf/tld_data_map";

/// A sched_ext scheduler whose policy comes from per-thread hints that applications set with
/// tld: a nice-like priority sets a thread's weight, a latency hint its slice and whether it
/// may preempt. Threads without hints get the default policy.
#[derive(Debug, Parser)]
#[command(name = "scx_tld", version)]
struct Opts {
    /// Default time slice, in microseconds.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    slice_us: u64,

    /// Ignore every hint: run the default policy for all threads. A control for measuring
    /// what the hints change.
    #[arg(long)]
    no_hints: bool,

    /// Print statistics every this many seconds; 0 turns them off.
    #[arg(long, default_value_t = 2)]
    stats: u64,

    /// Pin the map of per-thread records (what the scheduler last read for each thread with
    /// hints) at this path in bpffs while running, for monitoring tools and tests.
    #[arg(long, value_name = "PATH")]
    pin_records: Option<PathBuf>,

    /// Remove the pin of tld_data_map on exit. By default it stays, so that a scheduler
    /// started later finds the applications' threads still registered, with their hints.
    #[arg(long)]
    unpin_on_exit: bool,

    /// Print libbpf's debug messages (the verifier's log on a load failure).
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    Logger::install(opts.verbose);
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scx_tld: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &Opts) -> Result<()> {
    check_kernel()?;
    ensure_bpffs(Path::new("/sys/fs/bpf"))?;
    // Set by SIGINT and SIGTERM.
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))
            .context("installing the signal handlers")?;
    }

    loop {
        let mut storage = MaybeUninit::uninit();
        let mut sched = Scheduler::start(opts, &mut storage)?;
        let uei = sched.run(opts, &shutdown)?;
        if !uei.should_restart() {
            return Ok(());
        }
        eprintln!("scx_tld: the kernel asked for a restart (CPU hotplug); restarting");
    }
}

/// Says clearly why this kernel cannot run a sched_ext scheduler, if it cannot.
fn check_kernel() -> Result<()> {
    if Path::new("/sys/kernel/sched_ext").exists() {
        return Ok(());
    }
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    bail!(
        "this kernel ({}) has no sched_ext: /sys/kernel/sched_ext does not exist. scx_tld needs \
         Linux >= 6.13 built with CONFIG_SCHED_CLASS_EXT=y and CONFIG_DEBUG_INFO_BTF=y.",
        release.trim()
    )
}

/// Mounts bpffs on `dir` unless it already is one: `tld_data_map` is pinned there.
fn ensure_bpffs(dir: &Path) -> Result<()> {
    const BPF_FS_MAGIC: i64 = 0xcafe4a11;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: statfs fills the zeroed struct; `c` is NUL-terminated and outlives the call.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    let fstype = c"bpf";
    // SAFETY: every string is NUL-terminated and outlives the call; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            c.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        bail!(
            "bpffs is not mounted at {} and mounting it failed: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The loaded and attached scheduler.
struct Scheduler<'obj> {
    skel: BpfSkel<'obj>,
    /// The struct_ops link: dropping it detaches the scheduler.
    link: Option<Link>,
    pinned_records: Option<PathBuf>,
    unpin_on_exit: bool,
}

impl<'obj> Scheduler<'obj> {
    fn start(opts: &Opts, storage: &'obj mut MaybeUninit<OpenObject>) -> Result<Self> {
        let builder = BpfSkelBuilder::default();
        let mut skel = scx_ops_open!(
            builder,
            storage,
            tld_ops,
            None::<libbpf_rs::libbpf_sys::bpf_object_open_opts>
        )
        .context("opening the BPF scheduler")?;

        let rodata = skel
            .maps
            .rodata_data
            .as_mut()
            .context("the BPF object has no .rodata")?;
        rodata.use_hints = !opts.no_hints;
        rodata.slice_ns = opts.slice_us * 1000;
        rodata.class_interactive = LatencyHint::CLASS_INTERACTIVE;
        rodata.class_batch = LatencyHint::CLASS_BATCH;

        let mut skel = scx_ops_load!(skel, tld_ops, uei).context(
            "loading the BPF scheduler (root, or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, is \
             needed; -v shows the verifier's log)",
        )?;

        let pinned_records = match &opts.pin_records {
            Some(path) => {
                // A pin that a killed run left behind.
                let _ = fs::remove_file(path);
                skel.maps
                    .records
                    .pin(path)
                    .with_context(|| format!("pinning the records map at {}", path.display()))?;
                Some(path.clone())
            }
            None => None,
        };

        let link = scx_ops_attach!(skel, tld_ops).context("attaching the scheduler")?;
        let sched = Scheduler {
            skel,
            link: Some(link),
            pinned_records,
            unpin_on_exit: opts.unpin_on_exit,
        };
        println!(
            "scx_tld: attached as '{}'; hints {}; default slice {} us; tld_data_map pinned at {}",
            ops_name().unwrap_or_else(|| "?".into()),
            if opts.no_hints {
                "ignored (--no-hints)"
            } else {
                "on"
            },
            opts.slice_us,
            DATA_MAP_PIN
        );
        Ok(sched)
    }

    /// Runs until a signal or until the BPF scheduler exits; returns scx's exit information, or
    /// an error carrying it if the scheduler exited with an error.
    fn run(&mut self, opts: &Opts, shutdown: &AtomicBool) -> Result<UserExitInfo> {
        let interval = Duration::from_secs(opts.stats);
        let mut last_print = Instant::now();
        let mut last = Stats::default();
        while !shutdown.load(Ordering::Relaxed) {
            if uei_exited!(&self.skel, uei) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            if opts.stats > 0 && last_print.elapsed() >= interval {
                let now = self.stats();
                println!("scx_tld: {}", now.since(&last));
                last = now;
                last_print = Instant::now();
            }
        }
        // Detach (a no-op if the kernel already ejected the scheduler), then report.
        self.link.take();
        let total = self.stats();
        println!("scx_tld: totals: {total}");
        uei_report!(&self.skel, uei)
    }

    /// The counters of every CPU, summed.
    fn stats(&self) -> Stats {
        let key = 0u32.to_ne_bytes();
        match self.skel.maps.stats.lookup_percpu(&key, MapFlags::ANY) {
            Ok(Some(per_cpu)) => per_cpu
                .iter()
                .filter_map(|b| Stats::from_bytes(b))
                .fold(Stats::default(), |a, b| a.add(&b)),
            _ => Stats::default(),
        }
    }
}

impl Drop for Scheduler<'_> {
    fn drop(&mut self) {
        self.link.take();
        if let Some(path) = &self.pinned_records {
            let _ = fs::remove_file(path);
        }
        if self.unpin_on_exit {
            let _ = fs::remove_file(DATA_MAP_PIN);
        }
    }
}

/// The name the kernel reports for the running scheduler.
fn ops_name() -> Option<String> {
    fs::read_to_string("/sys/kernel/sched_ext/root/ops")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Prints scx_utils' and libbpf's log messages on stderr.
struct Logger {
    verbose: bool,
}

impl Logger {
    fn install(verbose: bool) {
        let logger: &'static Logger = Box::leak(Box::new(Logger { verbose }));
        if log::set_logger(logger).is_ok() {
            log::set_max_level(if verbose {
                log::LevelFilter::Debug
            } else {
                log::LevelFilter::Info
            });
        }
        let level = if verbose {
            libbpf_rs::PrintLevel::Debug
        } else {
            libbpf_rs::PrintLevel::Warn
        };
        scx_utils::init_libbpf_logging(Some(level));
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.verbose || metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let msg = record.args().to_string();
            // libbpf warns that the skeleton has no link for the struct_ops map: scx_ops_attach!
            // attaches it on its own, so the warning says nothing.
            if !self.verbose && msg.contains("BPF map skeleton link is uninitialized") {
                return;
            }
            eprintln!("scx_tld: {}", msg.trim_end());
        }
    }

    fn flush(&self) {}
}
