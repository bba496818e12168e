//! Isolation by construction: a BPF program that can still reach a page after its thread is
//! gone never writes into what the next thread that gets the page sees.
//!
//! Two kinds of stale writer, from `bpf/tld_isolation.bpf.c`:
//! - **an old map**: threads registered in map A move to map B (a restarted scheduler), and A
//!   stays loaded with a `sched_switch` program that writes a marker into every page its
//!   elements name. A's elements are left in place, as if deleting them had failed
//!   (`TLD_TESTING_CLEAN_OLD_MAPS=0`): page retirement must not depend on that cleanup.
//! - **a long-running program**: a `SEC("syscall")` program (a sleepable type) looks a thread's
//!   page up once and keeps writing into it while the thread exits and new threads start.
//!
//! Each scenario runs twice in a child process: with page retirement (the default), no new
//! thread may see a marker; with retirement switched off (`TLD_TESTING_RETIRE_PAGES=0`), the
//! same run must see markers, which proves that the scenario really reaches reused pages and
//! that the first run's zero means something.

use std::os::fd::AsFd;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tld_runtime::{task_local_data, DynamicKey, Error};
use tld_tests::*;

/// The hint every new thread checks: it must start at its initial value.
#[task_local_data]
static CANARY: u64 = CANARY_INIT;
const CANARY_INIT: u64 = 0x5AFE_5AFE_5AFE_5AFE;
/// What the stale writers write.
const MARKER: u64 = 0xBAD0_BAD0_BAD0_BAD0;

/// Rounds of each scenario: one thread leaves its page and one new thread takes it per round.
const ROUNDS: usize = 16;

fn canary_offset() -> u32 {
    CANARY.get();
    DynamicKey::find("canary")
        .expect("the canary is published")
        .offset() as u32
}

/// What a child reports on its last line.
struct Outcome {
    contaminated: usize,
    rounds: usize,
    writes: u64,
}

/// Runs `role` in a child with page retirement on or off, and old maps' elements left behind.
/// `None` if the child skipped (no BPF, and not required).
fn run_child(test: &str, role: &str, retire: bool) -> Option<Outcome> {
    let mut cmd: Command = rerun(test, role);
    cmd.env("TLD_TESTING_RETIRE_PAGES", if retire { "1" } else { "0" })
        .env("TLD_TESTING_CLEAN_OLD_MAPS", "0")
        .env("TLD_MAP_PATH", "");
    let out = cmd.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{role} (retire {retire}) failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("OUTCOME "))
        .unwrap_or_else(|| panic!("{role}: no outcome\n{stdout}\n{stderr}"));
    if line == "skipped" {
        eprint!("{stderr}");
        return None;
    }
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{role}: no {name} in {line:?}"))
    };
    Some(Outcome {
        contaminated: field("contaminated") as usize,
        rounds: field("rounds") as usize,
        writes: field("writes"),
    })
}

/// Checks both runs of a scenario.
fn check_scenario(test: &str, role: &str) {
    if let Some(role_now) = tld_tests::role() {
        if role_now == role {
            let outcome = match role {
                "old_map" => old_map_child(test),
                "long_writer" => long_writer_child(test),
                other => panic!("unknown role {other}"),
            };
            match outcome {
                // On a line of its own: libtest has printed the test's name without a newline.
                Some(o) => println!(
                    "\nOUTCOME contaminated={} rounds={} writes={}",
                    o.contaminated, o.rounds, o.writes
                ),
                None => println!("\nOUTCOME skipped"),
            }
        }
        return;
    }
    let Some(with) = run_child(test, role, true) else {
        return;
    };
    let without = run_child(test, role, false).expect("the first run did not skip");
    eprintln!(
        "{role}: with retirement {} of {} new threads saw a stale write ({} writes); without \
         it {} of {} ({} writes)",
        with.contaminated,
        with.rounds,
        with.writes,
        without.contaminated,
        without.rounds,
        without.writes
    );
    assert!(
        with.writes > 0,
        "{role}: the stale writer never wrote: the scenario tests nothing"
    );
    assert_eq!(
        with.contaminated, 0,
        "{role}: with page retirement, {} of {} new threads saw a stale writer's marker",
        with.contaminated, with.rounds
    );
    assert!(
        without.contaminated > 0,
        "{role}: with page retirement switched off, no new thread saw a marker: the scenario \
         does not reach reused pages, so its zero above proves nothing"
    );
}

/// A new thread's look at its canary: its first value and every value for `watch`. Returns
/// whether it ever saw anything but the initial value.
fn new_thread_sees_stale_write(watch: Duration) -> bool {
    let mut seen_other = CANARY.get() != CANARY_INIT;
    let until = Instant::now() + watch;
    while Instant::now() < until {
        let v = CANARY.get();
        if v != CANARY_INIT {
            assert_eq!(v, MARKER, "a new thread's canary holds neither value");
            seen_other = true;
        }
        thread::sleep(Duration::from_micros(500));
    }
    seen_other
}

/// Run by [`tld_runtime::at_thread_exit`] once the runtime has released the exiting thread's
/// page: tells the test, and keeps the thread switching in and out (each switch runs the old
/// map's program) for a while.
fn after_release(tx: mpsc::Sender<bool>) {
    // The thread no longer has a page.
    let released = matches!(tld_runtime::thread_init(), Err(Error::ThreadExiting));
    let _ = tx.send(released);
    for _ in 0..40 {
        thread::sleep(Duration::from_millis(1));
    }
}

fn old_map_child(test: &str) -> Option<Outcome> {
    let mut old = load_isolation(test)?;
    let offset = canary_offset();
    {
        let bss = old.maps.bss_data.as_deref_mut().expect(".bss is mmap'd");
        bss.target_tgid = std::process::id() as i32;
        bss.mark_off = offset;
        bss.marker = MARKER;
    }
    let _link = old
        .progs
        .stale_switch_writer
        .attach()
        .expect("attach stale_switch_writer");
    let new = load_isolation(test).expect("loaded once, loads twice");
    let mut contaminated = 0;
    for _ in 0..ROUNDS {
        tld_runtime::connect(old.maps.tld_data_map.as_fd()).expect("connect to the old map");
        // The thread that will leave its page: registered in the old map, then moved.
        let (ready_tx, ready_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (released_tx, released_rx) = mpsc::channel();
        let leaving = thread::spawn(move || {
            tld_runtime::at_thread_exit(move || after_release(released_tx)).expect("an exit hook");
            CANARY.set(7);
            ready_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        ready_rx.recv().unwrap();
        tld_runtime::connect(new.maps.tld_data_map.as_fd()).expect("connect to the new map");
        go_tx.send(()).unwrap();
        assert!(
            released_rx.recv().unwrap(),
            "the exit hook ran before the runtime released the page"
        );
        // The page is back in the pool; the old thread is still switching in and out.
        let newcomer = thread::spawn(|| new_thread_sees_stale_write(Duration::from_millis(30)));
        contaminated += usize::from(newcomer.join().unwrap());
        leaving.join().unwrap();
    }
    let writes = old.maps.bss_data.as_deref().unwrap().switch_writes;
    Some(Outcome {
        contaminated,
        rounds: ROUNDS,
        writes,
    })
}

/// Mirror of `struct long_writer_ctx`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct LongWriterCtx {
    tid: i32,
    ret: i32,
    duration_ns: u64,
}

fn long_writer_child(test: &str) -> Option<Outcome> {
    let mut skel = load_isolation(test)?;
    let offset = canary_offset();
    {
        let bss = skel.maps.bss_data.as_deref_mut().expect(".bss is mmap'd");
        bss.mark_off = offset;
        bss.marker = MARKER;
    }
    tld_runtime::connect(skel.maps.tld_data_map.as_fd()).expect("connect");
    let skel = &skel;
    let started = || {
        let bss = skel.maps.bss_data.as_deref().unwrap();
        // SAFETY: the field lies in the mmap'd .bss, which the program writes concurrently:
        // read it volatile, through a raw pointer.
        unsafe { std::ptr::addr_of!(bss.long_started).read_volatile() }
    };
    let mut contaminated = 0;
    let mut rounds = 0;
    for _ in 0..ROUNDS / 4 {
        // SAFETY: as above; the program is not running now.
        unsafe {
            let bss = skel.maps.bss_data.as_deref().unwrap();
            std::ptr::addr_of!(bss.long_started)
                .cast_mut()
                .write_volatile(0)
        };
        let (tid_tx, tid_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let leaving = thread::spawn(move || {
            CANARY.set(7);
            tid_tx.send(gettid()).unwrap();
            go_rx.recv().unwrap();
        });
        let tid = tid_rx.recv().unwrap();
        thread::scope(|s| {
            let writer = s.spawn(move || {
                run(
                    &skel.progs.long_writer,
                    LongWriterCtx {
                        tid,
                        ret: 0,
                        duration_ns: 300_000_000,
                    },
                )
            });
            assert!(
                wait_for(Duration::from_secs(5), || started() != 0),
                "long_writer never started"
            );
            go_tx.send(()).unwrap();
            leaving.join().unwrap();
            // The leaving thread is gone and its page is in the pool; the writer goes on.
            while !writer.is_finished() {
                let newcomer =
                    thread::spawn(|| new_thread_sees_stale_write(Duration::from_millis(5)));
                contaminated += usize::from(newcomer.join().unwrap());
                rounds += 1;
            }
            let ctx = writer.join().unwrap();
            assert_eq!(ctx.ret, 0, "long_writer did not find the thread's page");
        });
    }
    let writes = skel.maps.bss_data.as_deref().unwrap().long_writes;
    Some(Outcome {
        contaminated,
        rounds,
        writes,
    })
}

#[test]
fn an_old_map_never_writes_into_a_reused_page() {
    check_scenario("an_old_map_never_writes_into_a_reused_page", "old_map");
}

#[test]
fn a_long_running_writer_never_reaches_a_reused_page() {
    check_scenario(
        "a_long_running_writer_never_reaches_a_reused_page",
        "long_writer",
    );
}
