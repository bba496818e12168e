//! Lifecycle under the real scheduler: the application starts first, the scheduler restarts
//! while it runs, 1,000 threads come and go, and a process forks and execs. In each case the
//! scheduler keeps running without an error and reads the hints the threads set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tld_sched_hints::{LatencyHint, LATENCY, PRIORITY};
use tld_vm::guest::{gettid, report, sleep_ms, wake_until_read, Records, DATA_MAP_PIN};

use crate::hints::mismatch;
use crate::sched::{self, Sched};

/// Threads of the application process.
const APP_THREADS: usize = 4;

/// The application: `APP_THREADS` threads with hints, each waking every 5 ms. Commands on
/// stdin: `bump` (every thread adds 100 to its priority), `status`, `quit`.
pub fn app_main() -> i32 {
    let generation = Arc::new(AtomicUsize::new(0));
    let quit = Arc::new(AtomicUsize::new(0));
    let tids = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(Barrier::new(APP_THREADS + 1));
    let mut handles = Vec::new();
    for i in 0..APP_THREADS {
        let (generation, quit, tids, ready) = (
            Arc::clone(&generation),
            Arc::clone(&quit),
            Arc::clone(&tids),
            Arc::clone(&ready),
        );
        handles.push(thread::spawn(move || {
            let mut seen = 0;
            PRIORITY.set(app_priority(i, 0));
            LATENCY.set(app_latency(i));
            tids.lock().unwrap().push((i, gettid()));
            ready.wait();
            while quit.load(Ordering::Relaxed) == 0 {
                let g = generation.load(Ordering::Relaxed);
                if g != seen {
                    PRIORITY.set(app_priority(i, g));
                    seen = g;
                }
                sleep_ms(5);
            }
        }));
    }
    ready.wait();
    let list: Vec<String> = tids
        .lock()
        .unwrap()
        .iter()
        .map(|(i, t)| format!("{i}:{t}"))
        .collect();
    println!("READY {}", list.join(" "));
    for line in std::io::stdin().lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("bump") => {
                let g = generation.fetch_add(1, Ordering::Relaxed) + 1;
                println!("BUMPED {g}");
            }
            Ok("status") => {
                let s = tld_runtime::status();
                println!(
                    "STATUS connected={} registered={}",
                    s.is_connected(),
                    s.registered_threads
                );
            }
            _ => break,
        }
    }
    quit.store(1, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    0
}

fn app_priority(i: usize, generation: usize) -> i32 {
    -10 + 5 * i as i32 + 100 * generation as i32
}

fn app_latency(i: usize) -> LatencyHint {
    LatencyHint {
        budget_us: 700 + i as u32,
        class: LatencyHint::CLASS_INTERACTIVE,
    }
}

/// The application process, driven over its stdin and stdout.
struct App {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// (thread index, tid).
    tids: Vec<(usize, i32)>,
}

impl App {
    fn start() -> Result<App, String> {
        let mut child = Command::new("/proc/self/exe")
            .arg("app")
            .env("TLD_WATCH_INTERVAL_MS", "100")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the app: {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut app = App {
            child,
            stdin,
            stdout,
            tids: Vec::new(),
        };
        let ready = app.line()?;
        let list = ready
            .strip_prefix("READY ")
            .ok_or_else(|| format!("the app said {ready:?}"))?;
        for pair in list.split_whitespace() {
            let (i, t) = pair.split_once(':').ok_or("bad READY line")?;
            app.tids.push((
                i.parse().map_err(|_| "bad index")?,
                t.parse().map_err(|_| "bad tid")?,
            ));
        }
        Ok(app)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err("the app exited".into()),
            Ok(_) => Ok(line.trim().to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn ask(&mut self, command: &str) -> Result<String, String> {
        writeln!(self.stdin, "{command}").map_err(|e| e.to_string())?;
        self.line()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` until the scheduler's records show every thread's hints for
    /// `generation`; returns how many threads match and what is wrong with the others.
    fn wait_seen(&self, generation: usize, timeout: Duration) -> (usize, Vec<String>) {
        let start = Instant::now();
        let timeout = tld_vm::guest::bounded(timeout);
        loop {
            let records = Records::open();
            let mut wrong = Vec::new();
            for &(i, tid) in &self.tids {
                let rec = records.as_ref().ok().and_then(|r| r.get(tid));
                if let Some(why) =
                    mismatch(rec, self.pid(), app_priority(i, generation), app_latency(i))
                {
                    wrong.push(format!("tid {tid}: {why}"));
                }
            }
            if wrong.is_empty() || start.elapsed() > timeout {
                return (self.tids.len() - wrong.len(), wrong);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn quit(mut self) -> bool {
        let _ = writeln!(self.stdin, "quit");
        self.child.wait().is_ok_and(|s| s.success())
    }
}

fn detail(n: usize, wrong: &[String]) -> String {
    if wrong.is_empty() {
        format!("{n}/{APP_THREADS} threads")
    } else {
        format!("{n}/{APP_THREADS} threads ({})", wrong.join("; "))
    }
}

/// The application starts before the scheduler: no map exists, so its threads keep their
/// hints as thread-locals; when the scheduler pins `tld_data_map`, the runtime's watcher
/// connects and registers them, and the scheduler reads their hints. Then the scheduler
/// restarts (SIGTERM, start again) while the application runs, and a change made after the
/// restart is read too. Takes the running scheduler and returns the one running at the end.
pub fn app_first_and_restart(sched: Sched) -> Result<Sched, String> {
    let stopped = sched.stop(libc::SIGINT);
    if !stopped.clean() {
        return Err(format!("scx_tld did not stop cleanly ({})", stopped.status));
    }
    // No map anywhere: the application cannot connect.
    let _ = std::fs::remove_file(DATA_MAP_PIN);
    let mut app = App::start()?;
    let before = app.ask("status")?;
    let sched = Sched::start(&[])?;
    let (n, wrong) = app.wait_seen(0, Duration::from_secs(15));
    let after = app.ask("status")?;
    report(
        "lifecycle/app-before-scheduler",
        wrong.is_empty() && before.contains("connected=false") && after.contains("connected=true"),
        &format!(
            "app status before the scheduler: {before}; after: {after}; the scheduler read the \
             hints of {}",
            detail(n, &wrong)
        ),
    );

    // Restart while the application runs: the pin stays, the new scheduler reuses the map.
    let stopped = sched.stop(libc::SIGTERM);
    let clean = stopped.clean();
    let disabled = sched::wait_state("disabled", Duration::from_secs(10));
    let sched = Sched::start(&[])?;
    let (n0, wrong0) = app.wait_seen(0, Duration::from_secs(15));
    let bumped = app.ask("bump")?;
    let (n1, wrong1) = app.wait_seen(1, Duration::from_secs(15));
    let status = app.ask("status")?;
    let app_ok = app.quit();
    report(
        "lifecycle/scheduler-restart",
        clean && disabled && wrong0.is_empty() && wrong1.is_empty() && app_ok,
        &format!(
            "SIGTERM: exit {} ({}), state disabled: {disabled}; after the restart the new \
             scheduler read {}, and after a change ({bumped}) {}; app {status}, exited cleanly: \
             {app_ok}",
            stopped.status,
            if clean { "clean" } else { "NOT clean" },
            detail(n0, &wrong0),
            detail(n1, &wrong1)
        ),
    );
    Ok(sched)
}

/// 1,000 threads, 50 at a time, each with a priority of its own, are created and exit; the
/// scheduler read each one's hints, and keeps running.
pub fn churn(sched: &mut Sched) {
    const THREADS: usize = 1000;
    const WAVE: usize = 50;
    let records = match Records::open() {
        Ok(r) => r,
        Err(e) => return report("lifecycle/1000-threads", false, &e),
    };
    let start = Instant::now();
    let mut tids = Vec::with_capacity(THREADS);
    let mut most_wakeups = 0;
    for wave in 0..THREADS / WAVE {
        thread::scope(|s| {
            let handles: Vec<_> = (0..WAVE)
                .map(|j| {
                    let i = wave * WAVE + j;
                    let records = &records;
                    s.spawn(move || {
                        PRIORITY.set(1000 + i as i32);
                        LATENCY.set(LatencyHint {
                            budget_us: i as u32,
                            class: LatencyHint::CLASS_NORMAL,
                        });
                        let wakeups = wake_until_read(records, 1000 + i as i32, 50);
                        (i, gettid(), wakeups)
                    })
                })
                .collect();
            for (i, tid, wakeups) in handles.into_iter().filter_map(|h| h.join().ok()) {
                most_wakeups = most_wakeups.max(wakeups);
                tids.push((i, tid));
            }
        });
    }
    let elapsed = start.elapsed();
    let pid = std::process::id();
    let mut wrong = Vec::new();
    for &(i, tid) in &tids {
        let lat = LatencyHint {
            budget_us: i as u32,
            class: LatencyHint::CLASS_NORMAL,
        };
        if let Some(why) = mismatch(records.get(tid), pid, 1000 + i as i32, lat) {
            wrong.push(format!("thread {i} (tid {tid}): {why}"));
        }
    }
    let alive = sched.alive() && sched::state() == "enabled";
    let status = tld_runtime::status();
    report(
        "lifecycle/1000-threads",
        tids.len() == THREADS && wrong.is_empty() && alive,
        &format!(
            "{} threads created and exited in {:.1} s; the scheduler read the hints of {}/{THREADS} \
             (each within {most_wakeups} wake-ups of 1 ms); scheduler still running: {alive}; \
             runtime: {} threads registered now{}",
            tids.len(),
            elapsed.as_secs_f64(),
            tids.len() - wrong.len(),
            status.registered_threads,
            if wrong.is_empty() {
                String::new()
            } else {
                format!("; {}", wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; "))
            }
        ),
    );
}

/// Exit codes of the fork-exec role, by what went wrong.
const FORK_CODES: [&str; 6] = [
    "ok",
    "the parent's hint was not read before fork",
    "fork failed",
    "the child's hint was not read (or read with the parent's tgid)",
    "exec failed",
    "the parent's hint was not read after the child ran",
];

/// The role: set a hint, fork; the child sets its own hint, checks the scheduler read it, and
/// execs `tld-vm-other-layout`, a program with one more hint than the scheduler was built for
/// (so the scheduler reads it through the offset cache), which checks again. Returns the exit
/// code (see `FORK_CODES`; the exec'd program's codes are its own).
pub fn fork_exec_main() -> i32 {
    let Ok(records) = Records::open() else {
        return 1;
    };
    let lat = LatencyHint::interactive(900);
    PRIORITY.set(66);
    LATENCY.set(lat);
    wake_until_read(&records, 66, 50);
    if mismatch(records.get(gettid()), std::process::id(), 66, lat).is_some() {
        return 1;
    }
    // SAFETY: fork in a process with this one thread; the child only runs Rust code that is
    // fine after fork (the runtime's atfork handler has set its thread up).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return 2;
    }
    if pid == 0 {
        PRIORITY.set(77);
        wake_until_read(&records, 77, 50);
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() } as u32;
        let code = if mismatch(records.get(gettid()), me, 77, lat).is_some() {
            3
        } else {
            let prog = c"/bin/tld-vm-other-layout";
            let args = [prog.as_ptr(), std::ptr::null()];
            // SAFETY: a NUL-terminated path and a NULL-terminated argument list of C strings
            // that outlive the call; execv returns only on failure.
            unsafe { libc::execv(prog.as_ptr(), args.as_ptr()) };
            4
        };
        // SAFETY: _exit ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `status` is a valid int for waitpid to write.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let child_code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        100
    };
    wake_until_read(&records, 66, 50);
    if mismatch(records.get(gettid()), std::process::id(), 66, lat).is_some() {
        return 5;
    }
    child_code
}

/// Runs the fork-exec role in a process of its own and reports.
pub fn fork_exec(sched: &mut Sched) {
    let out = Command::new("/proc/self/exe")
        .arg("fork-exec")
        .stdin(Stdio::null())
        .output();
    let alive = sched.alive() && sched::state() == "enabled";
    match out {
        Ok(out) => {
            let code = out.status.code().unwrap_or(-1);
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            let what = FORK_CODES
                .get(code as usize)
                .copied()
                .unwrap_or("see the program's output");
            report(
                "lifecycle/fork-and-exec",
                code == 0 && alive,
                &format!(
                    "exit code {code} ({what}): parent priority 66 read before and after fork; \
                     the child's own 77 read with its own tgid; after exec, \
                     tld-vm-other-layout's hints read through the offset cache; scheduler still \
                     running: {alive}. {}",
                    text.trim()
                ),
            );
        }
        Err(e) => report("lifecycle/fork-and-exec", false, &format!("{e}")),
    }
}

/// The launcher role of the exec test: sets priority -20 and an interactive latency hint,
/// checks that the scheduler read them, and execs a shell (a program without tld) that says
/// `EXECED`, wakes up 100 times, says `WOKEN` and waits for a line on stdin. Exit codes: 1 no
/// records map, 2 the hints were not read before exec, 3 exec failed.
pub fn exec_launcher_main() -> i32 {
    let Ok(records) = Records::open() else {
        return 1;
    };
    PRIORITY.set(-20);
    LATENCY.set(LatencyHint::interactive(500));
    wake_until_read(&records, -20, 50);
    match records.get(gettid()) {
        Some(r) if r.priority == -20 && r.flags & tld_vm::guest::intf::TLD_REC_CRITICAL != 0 => {}
        _ => return 2,
    }
    let sh = c"/bin/sh";
    let script = c"echo EXECED; i=0; while [ $i -lt 100 ]; do usleep 2000; i=$((i+1)); done; echo WOKEN; read x";
    let args = [
        sh.as_ptr(),
        c"-c".as_ptr(),
        script.as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: a NUL-terminated path and a NULL-terminated argument list of C strings that
    // outlive the call; execv returns only on failure.
    unsafe { libc::execv(sh.as_ptr(), args.as_ptr()) };
    3
}

/// Hints do not outlive exec: a launcher sets -20 and interactive, the scheduler reads them,
/// and the launcher execs a program without tld. From then on the scheduler reads no hints for
/// that thread: its `tld_data_map` element is gone (deleted at exec), its record too, and the
/// 100 wake-ups of the new program leave none.
pub fn exec_clears(sched: &mut Sched) {
    let before = tld_vm::guest::sched_stats();
    let child = Command::new("/proc/self/exe")
        .arg("exec-launcher")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return report("lifecycle/exec-clears-hints", false, &e.to_string()),
    };
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        lines.push(line.trim().to_string());
    }
    let execed = lines.first().is_some_and(|l| l == "EXECED");
    let woken = lines.get(1).is_some_and(|l| l == "WOKEN");
    // While the new program runs: no element, no record.
    let element = data_map_element(pid);
    let record = Records::open().ok().and_then(|r| r.get(pid));
    let after = tld_vm::guest::sched_stats();
    let _ = writeln!(stdin, "done");
    drop(stdin);
    let status = child.wait();
    let code = status.as_ref().ok().and_then(|s| s.code()).unwrap_or(-1);
    let clears = match (&before, &after) {
        (Ok(b), Ok(a)) => {
            a["total"]["exec_clears"].as_u64().unwrap_or(0)
                - b["total"]["exec_clears"].as_u64().unwrap_or(0)
        }
        _ => 0,
    };
    let alive = sched.alive();
    report(
        "lifecycle/exec-clears-hints",
        execed
            && woken
            && element == Ok(false)
            && record.is_none()
            && clears >= 1
            && code == 0
            && alive,
        &format!(
            "a launcher set priority -20 and interactive (read by the scheduler{}), then exec'd \
             a shell without tld, which woke up 100 times: its tld_data_map element {}, its \
             record {}, elements deleted at exec {clears}; exit code {code}; scheduler running: \
             {alive}; the new program said {lines:?}",
            if code == 2 { ": NOT read" } else { "" },
            match &element {
                Ok(false) => "is gone".to_string(),
                Ok(true) => "STILL EXISTS".to_string(),
                Err(e) => format!("could not be looked up ({e})"),
            },
            match record {
                None => "is gone".to_string(),
                Some(r) => format!(
                    "still shows priority {} (read {} times)",
                    r.priority, r.reads
                ),
            }
        ),
    );
}

/// Whether thread `tid` has an element in the pinned `tld_data_map`.
fn data_map_element(tid: i32) -> Result<bool, String> {
    use libbpf_rs::{MapCore, MapFlags, MapHandle};
    let map = MapHandle::from_pinned_path(DATA_MAP_PIN).map_err(|e| e.to_string())?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, 0) } as i32;
    if fd < 0 {
        return Err(format!("pidfd_open: {}", std::io::Error::last_os_error()));
    }
    let found = map.lookup(&fd.to_ne_bytes(), MapFlags::ANY);
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    found.map(|v| v.is_some()).map_err(|e| e.to_string())
}
