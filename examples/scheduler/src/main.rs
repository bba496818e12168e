// SPDX-License-Identifier: GPL-2.0-only
//! `scx_tld`: an example sched_ext scheduler driven by per-thread hints that applications set
//! from Rust with tld (see `tld-sched-hints` for the hints and `src/bpf/main.bpf.c` for the
//! policy).
//!
//! The loader opens, loads and attaches the BPF scheduler with scx_utils' `scx_ops_*` macros,
//! pins `tld_data_map` where applications look for it (with the mode and group asked for),
//! serves its counters on the scx statistics socket, and detaches cleanly on SIGINT or SIGTERM.
//! If the BPF scheduler exits on its own (an error, a stall the kernel's watchdog caught), it
//! prints scx's exit information and exits non-zero.

mod bpf_skel {
    #![allow(
        clippy::all,
        clippy::undocumented_unsafe_blocks,
        missing_docs,
        dead_code,
        non_camel_case_types,
        non_snake_case
    )]
    #![allow(non_upper_case_globals, unused_imports)]
    include!(concat!(env!("OUT_DIR"), "/bpf_skel.rs"));
}
mod stats;

use std::ffi::CString;
use std::fs;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};
use scx_stats::prelude::StatsServer;
use scx_utils::{scx_ops_attach, scx_ops_load, scx_ops_open, uei_exited, uei_report};
use scx_utils::{Topology, UserExitInfo};
use tld_sched_hints::LatencyHint;

use bpf_skel::{BpfSkel, BpfSkelBuilder};
use stats::{CpuStats, Metrics};

/// Where `TLD_PIN_DATA_MAP` makes libbpf pin `tld_data_map`, and where tld-runtime looks.
const DATA_MAP_PIN: &str = tld_wire::paths::DEFAULT_DATA_MAP_PIN;

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

    /// Nice levels a thread's priority hint may take it below its own nice (a hint of -20 asks
    /// for all of them). 0: hints can only lower a thread's weight.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=39))]
    max_boost: u32,

    /// The share of each CPU that boosted (critical) tasks may take, in percent of every 100 ms
    /// window. Past it the CPU serves ordinary work first.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
    boost_cpu_pct: u32,

    /// The share of its own wall time a thread may run boosted, in percent (its budget refills
    /// at this rate, up to four default slices).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
    boost_thread_pct: u32,

    /// The boosted run time all threads of one process may take together, in percent of one
    /// CPU (the budget refills at this rate, up to eight default slices).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    boost_proc_pct: u32,

    /// Print what changed every this many seconds (from the statistics socket); 0 prints
    /// nothing. The counters are served on scx's statistics socket either way.
    #[arg(long, default_value_t = 0)]
    stats: u64,

    /// Do not run a scheduler: print the counters of the running scx_tld every this many
    /// seconds, from its statistics socket.
    #[arg(long, value_name = "SECS")]
    monitor: Option<u64>,

    /// Keep a record of what the scheduler last read for each thread with hints, and pin that
    /// map at this path in bpffs, for monitoring tools and tests. Off by default: the records
    /// cost a hash map update at every enqueue of a hinted thread.
    #[arg(long, value_name = "PATH")]
    pin_records: Option<PathBuf>,

    /// The file mode of tld_data_map's pin, in octal. Whoever can open the pin for writing can
    /// register threads (and so set hints): 0660 with --data-map-group lets that group's
    /// applications publish hints; 0600 (the kernel's default) only root's.
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    data_map_mode: Option<u32>,

    /// The group (name or number) of tld_data_map's pin.
    #[arg(long, value_name = "GROUP")]
    data_map_group: Option<String>,

    /// Remove the pins of tld_data_map and of the guard's key on exit. By default they stay,
    /// so that a scheduler started later finds the applications' threads still registered,
    /// with their hints (and their guard stamps).
    #[arg(long)]
    unpin_on_exit: bool,

    /// The guard (tld-guard): use a thread's hints only if a task of its own process registered
    /// them, so that whoever may write tld_data_map cannot set hints for other processes'
    /// threads. `auto` runs it where the kernel allows it (BPF trampolines) and says why not
    /// elsewhere; `on` refuses to start without it; `off` runs without it.
    #[arg(long, value_enum, default_value_t = GuardMode::Auto)]
    guard: GuardMode,

    /// Print libbpf's debug messages (the verifier's log on a load failure).
    #[arg(short, long)]
    verbose: bool,
}

/// `--guard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum GuardMode {
    /// Where the kernel allows it.
    Auto,
    /// Always: refuse to start where the kernel does not allow it.
    On,
    /// Never.
    Off,
}

/// Whether to run the guard, as `mode` and the kernel decide. `on` fails here where the kernel
/// cannot run it; `auto` says why it runs without.
fn want_guard(mode: GuardMode) -> Result<bool> {
    if mode == GuardMode::Off {
        return Ok(false);
    }
    match tld_guard::probe() {
        Ok(()) => Ok(true),
        Err(e) if mode == GuardMode::On => {
            Err(e).context("--guard=on, but this kernel cannot run the guard")
        }
        Err(e) => {
            eprintln!("scx_tld: running without the guard: {e}");
            Ok(false)
        }
    }
}

/// The guard's attach failed after a load that enabled its check: with `--guard=auto` the
/// scheduler is loaded again without it.
#[derive(Debug)]
struct GuardFailed(tld_guard::Error);

impl std::fmt::Display for GuardFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "attaching the guard: {}", self.0)
    }
}

impl std::error::Error for GuardFailed {}

fn parse_mode(text: &str) -> std::result::Result<u32, String> {
    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .map_err(|_| format!("{text:?} is not an octal file mode"))?;
    if mode > 0o777 {
        return Err(format!("{text}: only permission bits (at most 0777)"));
    }
    Ok(mode)
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
    // Set by SIGINT and SIGTERM.
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))
            .context("installing the signal handlers")?;
    }
    if let Some(secs) = opts.monitor {
        return stats::monitor(Duration::from_secs(secs.max(1)), shutdown);
    }
    check_kernel()?;
    ensure_bpffs(Path::new("/sys/fs/bpf"))?;
    let data_map_gid = opts.data_map_group.as_deref().map(group_id).transpose()?;
    if opts.stats > 0 {
        let shutdown = Arc::clone(&shutdown);
        let interval = Duration::from_secs(opts.stats);
        std::thread::spawn(move || {
            if let Err(e) = stats::monitor(interval, shutdown) {
                eprintln!("scx_tld: printing statistics: {e:#}");
            }
        });
    }

    let mut guard = want_guard(opts.guard)?;
    loop {
        let mut storage = MaybeUninit::uninit();
        let mut sched = match Scheduler::start(opts, data_map_gid, guard, &mut storage) {
            Ok(sched) => sched,
            Err(e) if guard && opts.guard == GuardMode::Auto && e.is::<GuardFailed>() => {
                eprintln!("scx_tld: running without the guard: {e:#}");
                guard = false;
                continue;
            }
            Err(e) => return Err(e),
        };
        let uei = sched.run(&shutdown)?;
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

/// The id of group `name` (a name, or a number).
fn group_id(name: &str) -> Result<u32> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    let c = CString::new(name).context("a group name has no NUL byte")?;
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: all-zero bytes are a valid `struct group` (null pointers and zero ids).
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: `c` is NUL-terminated, `grp`, `buf` and `found` are valid for writes of their
    // sizes and outlive the call; the strings it sets point into `buf`, which we do not read.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        bail!("--data-map-group {name}: no such group");
    }
    Ok(grp.gr_gid)
}

/// Sets the mode and the group of the pin at `path`.
fn set_pin_access(path: &Path, mode: Option<u32>, gid: Option<u32>) -> Result<()> {
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("setting the group of {} to {gid}", path.display()))?;
    }
    if let Some(mode) = mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {} to {mode:o}", path.display()))?;
    }
    Ok(())
}

/// A pin that is removed when this is dropped (an error on the way included).
struct Pin(PathBuf);

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
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
    /// The records map's pin, removed on exit.
    _records_pin: Option<Pin>,
    unpin_on_exit: bool,
    /// The statistics socket; it closes when dropped.
    stats_server: Option<StatsServer<(), Metrics>>,
    /// The guard, while it runs, and its event map's pin (removed on exit, which tells the
    /// applications' runtimes that it stopped).
    guard: Option<(tld_guard::Guard, Pin)>,
}

impl<'obj> Scheduler<'obj> {
    fn start(
        opts: &Opts,
        data_map_gid: Option<u32>,
        with_guard: bool,
        storage: &'obj mut MaybeUninit<OpenObject>,
    ) -> Result<Self> {
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
        rodata.keep_records = opts.pin_records.is_some();
        rodata.slice_ns = opts.slice_us * 1000;
        rodata.class_interactive = LatencyHint::CLASS_INTERACTIVE;
        rodata.class_batch = LatencyHint::CLASS_BATCH;
        rodata.max_boost = opts.max_boost;
        rodata.boost_cpu_pct = opts.boost_cpu_pct;
        rodata.boost_thread_pct = opts.boost_thread_pct;
        rodata.boost_proc_pct = opts.boost_proc_pct;
        // Before loading: the verifier drops the check where it is off.
        rodata.tld_guard_enabled = with_guard;
        if with_guard {
            // The key an earlier run pinned beside the data map: its stamps stay valid.
            if let Some(key) = tld_guard::open_pinned_key(tld_guard::DEFAULT_KEY_PIN)
                .map_err(|e| anyhow::Error::new(GuardFailed(e)))?
            {
                skel.maps
                    .tld_guard_key
                    .reuse_fd(key.as_fd())
                    .context("reusing the pinned guard key")?;
            }
        }
        let (nr_llcs, cpu_llc) = llcs()?;
        rodata.nr_llcs = nr_llcs;
        for (slot, llc) in rodata.cpu_llc.iter_mut().zip(cpu_llc) {
            *slot = llc;
        }

        let mut skel = scx_ops_load!(skel, tld_ops, uei).context(
            "loading the BPF scheduler (root, or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, is \
             needed; -v shows the verifier's log)",
        )?;

        set_pin_access(Path::new(DATA_MAP_PIN), opts.data_map_mode, data_map_gid)?;
        let records_pin = match &opts.pin_records {
            Some(path) => {
                // A pin that a killed run left behind.
                let _ = fs::remove_file(path);
                skel.maps
                    .records
                    .pin(path)
                    .with_context(|| format!("pinning the records map at {}", path.display()))?;
                // From here on, an error on the way out removes the pin.
                Some(Pin(path.clone()))
            }
            None => None,
        };

        // The guard goes on before the scheduler does, so that no hint is read unchecked.
        let guard = if with_guard {
            let guard = tld_guard::Guard::attach(
                skel.maps.tld_data_map.as_fd(),
                skel.maps.tld_guard_key.as_fd(),
            )
            .map_err(|e| anyhow::Error::new(GuardFailed(e)))?;
            guard
                .pin_key(tld_guard::DEFAULT_KEY_PIN)
                .and_then(|()| guard.pin_events(tld_guard::DEFAULT_EVENTS_PIN))
                .map_err(|e| anyhow::Error::new(GuardFailed(e)))?;
            Some((guard, Pin(PathBuf::from(tld_guard::DEFAULT_EVENTS_PIN))))
        } else {
            None
        };

        let link = scx_ops_attach!(skel, tld_ops).context("attaching the scheduler")?;
        let stats_server = StatsServer::new(stats::server_data())
            .launch()
            .context("starting the statistics socket")?;
        let sched = Scheduler {
            skel,
            link: Some(link),
            _records_pin: records_pin,
            unpin_on_exit: opts.unpin_on_exit,
            stats_server: Some(stats_server),
            guard,
        };
        println!(
            "scx_tld: attached as '{}'; hints {}; guard {}; default slice {} us; tld_data_map \
             pinned at {}",
            ops_name().unwrap_or_else(|| "?".into()),
            if opts.no_hints {
                "ignored (--no-hints)"
            } else {
                "on"
            },
            sched.guard_state(),
            opts.slice_us,
            DATA_MAP_PIN
        );
        Ok(sched)
    }

    /// Runs until a signal or until the BPF scheduler exits, answering the statistics socket;
    /// returns scx's exit information, or an error carrying it if the scheduler exited with an
    /// error.
    fn run(&mut self, shutdown: &AtomicBool) -> Result<UserExitInfo> {
        let (res_ch, req_ch) = self
            .stats_server
            .as_ref()
            .map(|s| s.channels())
            .expect("the statistics socket runs");
        while !shutdown.load(Ordering::Relaxed) {
            if uei_exited!(&self.skel, uei) {
                break;
            }
            match req_ch.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => {
                    let _ = res_ch.send(self.metrics());
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        // Detach (a no-op if the kernel already ejected the scheduler), then report.
        self.link.take();
        println!("scx_tld: totals: {}", self.metrics().total);
        if let Some((guard, _)) = &self.guard {
            let c = guard.counts();
            println!(
                "scx_tld: guard: {} registrations stamped, {} spoofed left unstamped, {} refused",
                c.stamped, c.spoofed, c.refused
            );
        }
        uei_report!(&self.skel, uei)
    }

    /// What the guard does, in a few words.
    fn guard_state(&self) -> String {
        let Some((guard, _)) = &self.guard else {
            return "off".into();
        };
        format!(
            "on ({}; {})",
            if guard.secret_kept() {
                "the pinned key's secret kept"
            } else {
                "a fresh secret"
            },
            match guard.lsm_note() {
                None if guard.lsm() => "spoofed updates refused by the lsm/bpf program".into(),
                None => "spoofed updates left unstamped".to_string(),
                Some(note) => note.to_string(),
            }
        )
    }

    /// Every CPU's counters.
    fn metrics(&self) -> Metrics {
        let key = 0u32.to_ne_bytes();
        match self.skel.maps.stats.lookup_percpu(&key, MapFlags::ANY) {
            Ok(Some(per_cpu)) => Metrics::from_cpus(
                per_cpu
                    .iter()
                    .map(|b| CpuStats::from_bytes(b).unwrap_or_default()),
            ),
            _ => Metrics::default(),
        }
    }
}

impl Drop for Scheduler<'_> {
    fn drop(&mut self) {
        self.link.take();
        // After the scheduler: the guard, then its event map's pin.
        self.guard.take();
        self.stats_server.take();
        if self.unpin_on_exit {
            let _ = fs::remove_file(DATA_MAP_PIN);
            let _ = fs::remove_file(tld_guard::DEFAULT_KEY_PIN);
        }
    }
}

/// The machine's last-level caches: how many, and each CPU's (by CPU number). One queue of
/// each kind per cache keeps CPUs of different caches off each other's locks.
fn llcs() -> Result<(u32, Vec<u32>)> {
    let topo = Topology::new().context("reading the CPU topology")?;
    let mut cpu_llc = Vec::new();
    let mut nr = 0u32;
    for llc in topo.all_llcs.values() {
        for cpu in llc.all_cpus.keys() {
            if *cpu >= cpu_llc.len() {
                cpu_llc.resize(cpu + 1, 0);
            }
            cpu_llc[*cpu] = nr;
        }
        nr += 1;
    }
    if nr == 0 || nr > 64 || cpu_llc.len() > 1024 {
        // Not what this example is built for: one queue of each kind for all CPUs.
        return Ok((1, Vec::new()));
    }
    Ok((nr, cpu_llc))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The BPF side's compiled-in classes (before the loader sets them from the hints crate)
    /// are the hints crate's, so that the object agrees even where a loader forgets them.
    #[test]
    fn bpf_classes_are_the_hints_crate_ones() {
        use libbpf_rs::skel::SkelBuilder;
        let mut storage = MaybeUninit::uninit();
        let skel = BpfSkelBuilder::default().open(&mut storage).unwrap();
        let rodata = skel.maps.rodata_data.as_ref().unwrap();
        assert_eq!(rodata.class_interactive, LatencyHint::CLASS_INTERACTIVE);
        assert_eq!(rodata.class_batch, LatencyHint::CLASS_BATCH);
    }

    #[test]
    fn pin_modes_are_octal_permission_bits() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o644"), Ok(0o644));
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("4755").is_err());
        assert!(parse_mode("rw").is_err());
    }

    #[test]
    fn guard_modes() {
        let parse = |args: &[&str]| {
            Opts::try_parse_from(std::iter::once("scx_tld").chain(args.iter().copied()))
                .map(|o| o.guard)
        };
        assert_eq!(parse(&[]).unwrap(), GuardMode::Auto);
        assert_eq!(parse(&["--guard=on"]).unwrap(), GuardMode::On);
        assert_eq!(parse(&["--guard", "off"]).unwrap(), GuardMode::Off);
        let err = parse(&["--guard=maybe"]).unwrap_err().to_string();
        assert!(err.contains("auto") && err.contains("off"), "{err}");
    }

    #[test]
    fn groups_by_number_or_name() {
        assert_eq!(group_id("0").unwrap(), 0);
        assert_eq!(group_id("root").unwrap(), 0);
        let err = group_id("no-such-group-tld").unwrap_err().to_string();
        assert!(err.contains("no such group"), "{err}");
    }

    #[test]
    fn pin_access_sets_mode_and_group() {
        let path = std::env::temp_dir().join(format!("scx_tld-pin-{}", std::process::id()));
        fs::write(&path, "").unwrap();
        set_pin_access(&path, Some(0o640), Some(0)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 0);
        let _ = fs::remove_file(&path);
    }
}
