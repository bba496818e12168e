//! The latency measurement: how long a thread that sleeps about 1 ms waits for a CPU after its
//! timer fires, on an idle VM and under 2 × vCPUs CPU-bound threads, with and without its
//! latency hint, and with the hint set but the scheduler ignoring hints (the control).
//!
//! The tokio server's requests ([`crate::server`]) are measured in the same two scheduler runs,
//! with hints and without, so that the suite attaches and detaches no more often.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use tld_sched_hints::{LatencyHint, LATENCY, PRIORITY};
use tld_vm::console::PREFIX;
use tld_vm::guest::{report, Records};

use crate::sched::Sched;
use crate::server;

/// Samples per case.
pub const SAMPLES: usize = 200;
/// How long the thread sleeps each time.
const SLEEP_NS: u64 = 1_000_000;
/// The hint the measured thread sets: interactive, 500 µs budget.
const HINT: LatencyHint = LatencyHint::interactive(500);

/// p50, p99 and max of one case, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    fn of(mut delays_ns: Vec<u64>) -> Summary {
        delays_ns.sort_unstable();
        let at = |q: f64| {
            let i = ((delays_ns.len() - 1) as f64 * q).round() as usize;
            delays_ns[i] as f64 / 1000.0
        };
        Summary {
            p50: at(0.5),
            p99: at(0.99),
            max: *delays_ns.last().expect("samples") as f64 / 1000.0,
        }
    }
}

/// What the measured thread is asked to do.
enum Job {
    /// Set the hint (or clear it), then sleep `n` times and return the wake-up delays.
    Measure {
        hinted: bool,
        n: usize,
    },
    Quit,
}

/// The one thread all cases measure ("the same thread").
struct Sleeper {
    jobs: mpsc::Sender<Job>,
    results: mpsc::Receiver<(i32, Vec<u64>)>,
    handle: thread::JoinHandle<()>,
}

impl Sleeper {
    fn start() -> Sleeper {
        let (jobs, job_rx) = mpsc::channel();
        let (result_tx, results) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("sleeper".into())
            .spawn(move || {
                // A timer slack of 1 ns: the delay measured is the scheduler's, not the timer's.
                // SAFETY: prctl with integer arguments touches no memory of ours.
                unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
                PRIORITY.set(0);
                while let Ok(Job::Measure { hinted, n }) = job_rx.recv() {
                    LATENCY.set(if hinted { HINT } else { LatencyHint::default() });
                    // A few sleeps to settle (the first wake-up after a change already reads it).
                    sleep_delays(5);
                    let delays = sleep_delays(n);
                    if result_tx.send((tld_vm::guest::gettid(), delays)).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the sleeper");
        Sleeper {
            jobs,
            results,
            handle,
        }
    }

    fn measure(&self, hinted: bool, n: usize) -> (i32, Vec<u64>) {
        self.jobs
            .send(Job::Measure { hinted, n })
            .expect("the sleeper runs");
        self.results.recv().expect("the sleeper answers")
    }

    fn stop(self) {
        let _ = self.jobs.send(Job::Quit);
        let _ = self.handle.join();
    }
}

/// Sleeps `n` times until an absolute deadline 1 ms ahead; returns how late each wake-up was.
fn sleep_delays(n: usize) -> Vec<u64> {
    let mut delays = Vec::with_capacity(n);
    for _ in 0..n {
        let deadline = tld_vm::guest::monotonic_ns() + SLEEP_NS;
        let ts = libc::timespec {
            tv_sec: (deadline / 1_000_000_000) as libc::time_t,
            tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: `ts` is a valid timespec; no remaining-time pointer with TIMER_ABSTIME.
        while unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        } == libc::EINTR
        {}
        delays.push(tld_vm::guest::monotonic_ns().saturating_sub(deadline));
    }
    delays
}

/// CPU-bound threads without hints.
struct Hogs {
    stop: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<u64>>,
}

impl Hogs {
    fn start(n: usize) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..n)
            .map(|i| {
                let stop = Arc::clone(&stop);
                thread::Builder::new()
                    .name(format!("hog{i}"))
                    .spawn(move || {
                        let mut x = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..1000 {
                                x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
                            }
                        }
                        x
                    })
                    .expect("spawn a hog")
            })
            .collect();
        Hogs { stop, handles }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// The four cases, measured in one run.
pub struct Measured {
    pub idle: Summary,
    pub hinted: Summary,
    pub unhinted: Summary,
    pub control: Summary,
    pub hogs: usize,
    /// The scheduler read the measured thread's hint as critical (a check that the hint
    /// reached it).
    pub seen_critical: bool,
    /// The tokio server's self-test under scx_tld and under `scx_tld --no-hints`.
    pub server: Result<(server::Run, server::Run), String>,
}

/// Runs every case. `sched` is a running scx_tld with hints on; it is restarted with
/// `--no-hints` for the control and again with hints on at the end, and returned.
pub fn measure(sched: Sched) -> Result<(Measured, Sched), String> {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let hogs_n = 2 * cpus;
    let sleeper = Sleeper::start();

    // Idle, hinted and unhinted alternate in rounds, so that all three see the same host noise
    // (under TCG the host's load moves every figure).
    let rounds = 4;
    let (mut idle, mut hinted, mut unhinted) = (Vec::new(), Vec::new(), Vec::new());
    let mut tid = 0;
    for _ in 0..rounds {
        idle.extend(sleeper.measure(true, SAMPLES / rounds).1);
        let hogs = Hogs::start(hogs_n);
        let (t, d) = sleeper.measure(true, SAMPLES / rounds);
        tid = t;
        hinted.extend(d);
        unhinted.extend(sleeper.measure(false, SAMPLES / rounds).1);
        hogs.stop();
    }
    let hogs = Hogs::start(hogs_n);
    let seen_critical = {
        // Set the hint once more and check what the scheduler recorded for the thread.
        sleeper.measure(true, 3);
        Records::open()
            .ok()
            .and_then(|r| r.get(tid))
            .is_some_and(|r| r.flags & tld_vm::guest::flags::CRITICAL != 0 && r.budget_us == 500)
    };
    // The tokio server brings its own CPU load; the hogs come back for the SIGINT below.
    hogs.stop();
    let hinted_server = server::run("hints");
    let hogs = Hogs::start(hogs_n);

    // The control: the same thread, with its hint, under a scheduler that ignores hints.
    let stopped = sched.stop(libc::SIGINT);
    let disabled = crate::sched::wait_state("disabled", std::time::Duration::from_secs(10));
    report(
        "scheduler/detach-on-sigint",
        stopped.clean() && disabled,
        &format!(
            "SIGINT under load: exit {}, {}, state disabled: {disabled}",
            stopped.status,
            if stopped.clean() {
                "unregistered from user space"
            } else {
                "NOT clean"
            }
        ),
    );
    if !stopped.clean() {
        hogs.stop();
        sleeper.stop();
        return Err(format!("scx_tld did not stop cleanly: {}", stopped.status));
    }
    let control_sched = match Sched::start(&["--no-hints"]) {
        Ok(s) => s,
        Err(e) => {
            hogs.stop();
            sleeper.stop();
            return Err(e);
        }
    };
    let (_, control) = sleeper.measure(true, SAMPLES);
    hogs.stop();
    sleeper.stop();
    let server = hinted_server.and_then(|h| Ok((h, server::run("no-hints")?)));
    let stopped = control_sched.stop(libc::SIGINT);
    if !stopped.clean() {
        return Err(format!(
            "scx_tld --no-hints did not stop cleanly: {}",
            stopped.status
        ));
    }
    let sched = Sched::start(&[])?;
    Ok((
        Measured {
            idle: Summary::of(idle),
            hinted: Summary::of(hinted),
            unhinted: Summary::of(unhinted),
            control: Summary::of(control),
            hogs: hogs_n,
            seen_critical,
            server,
        },
        sched,
    ))
}

/// The ratio a must reach: the unhinted and control p50 over the hinted p50.
pub const MIN_RATIO: f64 = 20.0;
/// The hinted p50 under load should be within this factor of the idle p50.
pub const IDLE_FACTOR: f64 = 2.0;

/// Prints the table rows for the host and the pass/fail results with their numbers.
pub fn report_all(m: &Measured) {
    let row = |cells: &[String]| println!("{PREFIX} ROW {}", cells.join(" | "));
    row(&[
        "case".into(),
        "latency hint".into(),
        "scheduler".into(),
        "p50".into(),
        "p99".into(),
        "max".into(),
        "p50 / hinted p50".into(),
    ]);
    let cases = [
        (
            "idle VM (the limit)",
            "interactive, 500 us",
            "scx_tld",
            &m.idle,
        ),
        (
            &*format!("{} CPU hogs", m.hogs),
            "interactive, 500 us",
            "scx_tld",
            &m.hinted,
        ),
        (
            &*format!("{} CPU hogs", m.hogs),
            "none",
            "scx_tld",
            &m.unhinted,
        ),
        (
            &*format!("{} CPU hogs", m.hogs),
            "interactive, 500 us",
            "scx_tld --no-hints (control)",
            &m.control,
        ),
    ];
    for (case, hint, sched, s) in cases {
        row(&[
            case.into(),
            hint.into(),
            sched.into(),
            us(s.p50),
            us(s.p99),
            us(s.max),
            format!("{:.1}x", s.p50 / m.hinted.p50),
        ]);
    }

    let vs_unhinted = m.unhinted.p50 / m.hinted.p50;
    let vs_control = m.control.p50 / m.hinted.p50;
    let vs_idle = m.hinted.p50 / m.idle.p50;
    let line = |s: &Summary| format!("p50 {} p99 {} max {}", us(s.p50), us(s.p99), us(s.max));
    report(
        "latency/hint-vs-no-hint",
        vs_unhinted >= MIN_RATIO,
        &format!(
            "{SAMPLES} wake-ups each under {} hogs: hinted {}; same thread without the hint {}; \
             p50 ratio {vs_unhinted:.1}x (need >= {MIN_RATIO}x)",
            m.hogs,
            line(&m.hinted),
            line(&m.unhinted)
        ),
    );
    report(
        "latency/hint-vs-control",
        vs_control >= MIN_RATIO,
        &format!(
            "hinted {}; hint set but scx_tld --no-hints {}; p50 ratio {vs_control:.1}x (need >= \
             {MIN_RATIO}x)",
            line(&m.hinted),
            line(&m.control)
        ),
    );
    report(
        "latency/hint-vs-idle",
        vs_idle <= IDLE_FACTOR,
        &format!(
            "hinted under hogs {} vs idle VM {}: p50 ratio {vs_idle:.2}x (want <= {IDLE_FACTOR}x)",
            line(&m.hinted),
            line(&m.idle)
        ),
    );
    report(
        "latency/scheduler-saw-the-hint",
        m.seen_critical,
        if m.seen_critical {
            "the record of the measured thread shows budget 500 us, queued as critical"
        } else {
            "the record of the measured thread does not show the hint"
        },
    );
    match &m.server {
        Ok((hinted, control)) => server::report_all(hinted, control),
        Err(e) => report("tokio/hinted-requests-first", false, e),
    }
}

fn us(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} us")
    }
}
