//! The tokio server example (`examples/src/bin/tokio_server.rs`) under scx_tld: its
//! latency-critical requests carry the scheduler's hints for the length of each poll, on
//! whichever of its 4 workers polls them, and under CPU load (4 × vCPUs unhinted CPU-bound
//! threads) their latency should beat that of the unhinted requests the same workers serve.
//! Run under scx_tld, and under `scx_tld --no-hints` as the control, where both kinds should
//! take as long.
//!
//! Why this shape. The scheduler sees a worker's hints only while the worker polls an
//! interactive request: it cannot see the interactive requests queued behind a batch poll on
//! the same worker, and it has nothing to do for a request that runs to its end within the
//! fresh time slice its worker got when it woke up. So the self-test's requests outlast a slice
//! (8 polls of about 5 ms of CPU each under emulation, against scx_tld's 20 ms slice), come a
//! few at a time (4 clients with one request in flight each, on 4 workers), and are timed from
//! the moment the server has read them. A worker preempted in the middle of an interactive
//! request then gets a CPU back within a tick, while one preempted in the middle of a batch
//! request waits behind the CPU hogs.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tld_vm::guest::{bounded, intf, report, Records};

/// Where the example is in the guest.
pub const SERVER: &str = "/bin/tokio_server";
/// Requests of the self-test, half interactive (hinted), half batch (unhinted), from 4 clients
/// that each send one at a time. Each is 8 polls of about 5 ms of CPU under emulation.
pub const REQUESTS: u32 = 200;
/// The server's tokio workers (its default).
pub const WORKERS: usize = 4;
/// How long a run may take before it is killed.
const TIMEOUT: Duration = Duration::from_secs(180);

/// p50 and p99 of one kind of request, in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
}

/// One run of the server's self-test.
#[derive(Debug)]
pub struct Run {
    /// The requests marked with the interactive hints.
    pub interactive: Latency,
    /// The unhinted ones.
    pub batch: Latency,
    /// Unhinted CPU-bound threads the server ran next to its workers.
    pub hogs: usize,
    /// How long the run took.
    pub seconds: f64,
    /// Threads of the server whose hints the scheduler read.
    pub threads_read: usize,
    /// Reads of those threads' hints, and how many were on the fast path.
    pub reads: u64,
    pub fast_reads: u64,
}

impl Run {
    /// How many times longer the median unhinted request took than the median hinted one.
    pub fn ratio(&self) -> f64 {
        self.batch.p50 as f64 / self.interactive.p50.max(1) as f64
    }

    /// The same for p99.
    pub fn p99_ratio(&self) -> f64 {
        self.batch.p99 as f64 / self.interactive.p99.max(1) as f64
    }
}

/// Runs `tokio_server --self-test REQUESTS --hogs (4 × vCPUs)` under the running scheduler and
/// reads its report; `label` names its log file.
pub fn run(label: &str) -> Result<Run, String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hogs = 4 * cpus;
    let log = format!("/tmp/tokio_server.{label}.log");
    let out = fs::File::create(&log).map_err(|e| format!("{log}: {e}"))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let args = [
        "--self-test".to_string(),
        REQUESTS.to_string(),
        "--hogs".to_string(),
        hogs.to_string(),
        "--workers".to_string(),
        WORKERS.to_string(),
    ];
    let start = Instant::now();
    let limit = bounded(TIMEOUT);
    let mut child = Command::new(SERVER)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {SERVER}: {e}"))?;
    let pid = child.id() as i32;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{SERVER} {} still ran after {} s and was killed:\n{}",
                args.join(" "),
                limit.as_secs(),
                fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = start.elapsed().as_secs_f64();
    let text = fs::read_to_string(&log).unwrap_or_default();
    if !status.success() || !text.contains("self-test: passed") {
        return Err(format!(
            "{SERVER} {} failed ({status}):\n{text}",
            args.join(" ")
        ));
    }
    let (Some(p50), Some(p99)) = (
        latencies(&text, "self-test: p50 latency "),
        latencies(&text, "self-test: p99 latency "),
    ) else {
        return Err(format!(
            "no p50 and p99 lines in the output of {SERVER}:\n{text}"
        ));
    };
    // What the scheduler last read for each of the server's threads (none under --no-hints).
    let records = Records::open()?.of_process(pid);
    Ok(Run {
        interactive: Latency {
            p50: p50.0,
            p99: p99.0,
        },
        batch: Latency {
            p50: p50.1,
            p99: p99.1,
        },
        hogs,
        seconds,
        threads_read: records.len(),
        reads: records.iter().map(|(_, r)| r.reads).sum(),
        fast_reads: records
            .iter()
            .filter(|(_, r)| r.flags & intf::TLD_REC_FAST_PATH != 0)
            .map(|(_, r)| r.fast_reads)
            .sum(),
    })
}

/// Parses `<prefix>X us interactive, Y us batch` into (X, Y).
fn latencies(text: &str, prefix: &str) -> Option<(u64, u64)> {
    let rest = text.lines().find_map(|l| l.strip_prefix(prefix))?;
    let mut words = rest.split_whitespace();
    let interactive = words.next()?.parse().ok()?;
    let batch = words.nth(2)?.parse().ok()?;
    Some((interactive, batch))
}

/// The suite's check, within one run (the same host state for both kinds of request): under
/// scx_tld the unhinted requests' p50 must be at least this many times the hinted ones'.
pub const TEST_RATIO: f64 = 1.5;
/// ... and the hinted run's ratio at least this many times the control's, where the two kinds
/// are treated alike.
pub const TEST_VS_CONTROL: f64 = 1.3;

/// Prints the pass/fail lines of both runs, with their numbers; `repeats` runs were repeated
/// because the host was disturbed during them.
pub fn report_all(hinted: &Run, control: &Run, repeats: usize) {
    let line = |r: &Run| {
        format!(
            "interactive (hinted) p50 {} p99 {}, batch (unhinted) p50 {} p99 {}: p50 ratio \
             {:.2}x, p99 ratio {:.2}x ({:.0} s)",
            ms(r.interactive.p50),
            ms(r.interactive.p99),
            ms(r.batch.p50),
            ms(r.batch.p99),
            r.ratio(),
            r.p99_ratio(),
            r.seconds
        )
    };
    // The workers were read (and the main thread), every time at the constant offsets of the
    // generated header: the server's hints are exactly the scheduler's.
    let read_all_fast =
        hinted.threads_read >= WORKERS && hinted.reads > 0 && hinted.fast_reads == hinted.reads;
    report(
        "tokio/hinted-requests-first",
        hinted.ratio() >= TEST_RATIO && read_all_fast,
        &format!(
            "tokio_server --self-test {REQUESTS} --hogs {} ({WORKERS} workers) under scx_tld: {} \
             (need p50 ratio >= {TEST_RATIO}x); the scheduler read the hints of {} of its \
             threads {} times, {} on the fast path; runs repeated on a disturbed host: {repeats}",
            hinted.hogs,
            line(hinted),
            hinted.threads_read,
            hinted.reads,
            hinted.fast_reads
        ),
    );
    let vs_control = hinted.ratio() / control.ratio().max(f64::MIN_POSITIVE);
    report(
        "tokio/control-no-hints",
        control.reads == 0 && vs_control >= TEST_VS_CONTROL,
        &format!(
            "the same under scx_tld --no-hints (hints read: {}): {}; the hinted run's p50 ratio \
             is {vs_control:.2}x the control's (need >= {TEST_VS_CONTROL}x: without the hints, \
             the two kinds wait alike)",
            control.reads,
            line(control),
        ),
    );
}

fn ms(us: u64) -> String {
    if us >= 1000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} us")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_latency_lines() {
        let text = "self-test: p50 latency 812 us interactive, 4100 us batch (20000 units)\n\
                    self-test: p99 latency 9000 us interactive, 30000 us batch\n";
        assert_eq!(
            super::latencies(text, "self-test: p50 latency "),
            Some((812, 4100))
        );
        assert_eq!(
            super::latencies(text, "self-test: p99 latency "),
            Some((9000, 30000))
        );
        assert_eq!(super::latencies(text, "nothing "), None);
    }
}
