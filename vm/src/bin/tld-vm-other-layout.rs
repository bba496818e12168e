//! Runs in the VM, exec'd by the fork-and-exec test: a program with one hint more than
//! `scx_tld` was built for. Its page therefore does not carry the generated header's layout,
//! and the scheduler reads its hints through the per-task offset cache (the fallback path).
//!
//! It sets its hints, sleeps (each wake-up is an enqueue), and checks the scheduler's record of
//! its thread. Exit codes: 0 ok, 10 no records map, 11 hints not read, 12 read on the fast path.

use tld_runtime::task_local_data;
use tld_sched_hints::{LatencyHint, LATENCY, PRIORITY};
use tld_vm::guest::{gettid, intf, wake_until_read, Records};

/// A hint `scx_tld` does not know: it changes this program's layout.
#[task_local_data]
static REQUEST_ID: u64 = 0;

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let Ok(records) = Records::open() else {
        return 10;
    };
    REQUEST_ID.set(42);
    PRIORITY.set(88);
    LATENCY.set(LatencyHint::batch());
    wake_until_read(&records, 88, 50);
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    match records.get(gettid()) {
        Some(r) if r.tgid == pid && r.priority == 88 && r.class == LatencyHint::CLASS_BATCH => {
            if r.flags & intf::TLD_REC_FAST_PATH != 0 {
                println!("tld-vm-other-layout: read on the fast path, expected the cached one");
                12
            } else {
                println!(
                    "tld-vm-other-layout: priority 88 and a batch latency hint read through the \
                     offset cache ({} reads)",
                    r.reads
                );
                0
            }
        }
        other => {
            println!("tld-vm-other-layout: the scheduler's record is {other:?}");
            11
        }
    }
}
