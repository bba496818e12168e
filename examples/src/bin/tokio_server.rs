//! A small tokio server that marks its latency-critical requests with scoped hints.
//!
//! ```text
//! cargo run -p tld-examples --bin tokio_server                      # serve on 127.0.0.1:7878
//! printf 'interactive 400000\nbatch 4000000\n' | nc -q1 127.0.0.1 7878
//! cargo run -p tld-examples --bin tokio_server -- --self-test 200   # serve, load, check, exit
//! cargo run --release -p tld-examples --bin tokio_server -- --self-test 400 --hogs 8
//! ```
//!
//! Each line a client sends is a request: `interactive N` or `batch N`, where N is how many
//! units of CPU work it takes. The handler is the same async function for both, yielding to the
//! executor every 50,000 units; what differs is how the server runs it:
//!
//! ```ignore
//! handle(work).with_hints(((&PRIORITY, -5), (&LATENCY, LatencyHint::interactive(500)))).await
//! handle(work).await // batch
//! ```
//!
//! The hints are those of `tld-sched-hints`, the crate that `scx_tld`, the example sched_ext
//! scheduler in `examples/scheduler`, reads: a nice-like `priority` and a `latency` hint. This
//! program's hints are exactly that crate's, so the scheduler reads them at constant offsets
//! (its fast path).
//!
//! The four worker threads poll requests of both kinds, and a request may move from one worker
//! to another each time it yields. `with_hints` sets the hints on whichever worker polls an
//! interactive request, for exactly the length of each poll, and gives the worker its own
//! values back afterwards. A scheduler (or any BPF program) that reads `priority` and `latency`
//! for a worker thread therefore sees, at any instant, the request that worker is running.
//! Under scx_tld, a worker preempted in the middle of an interactive request's poll goes ahead
//! of everything else, and stays ahead while it keeps polling interactive requests; a worker
//! busy with a batch request waits its turn with the rest of the load (see
//! `docs/scheduling.md`).
//!
//! The reply tells what the handler itself read at each of its polls, e.g.
//! `ok interactive polls=8 priority=-5..-5 class=interactive..interactive result=0x1f3a…
//! time_us=8412`.
//!
//! `--self-test REQUESTS` serves on a free loopback port and loads the server from 4 clients
//! (2 interactive, 2 batch, one request at a time each) that run on a thread and runtime of
//! their own, as remote clients would; it checks every reply and prints the p50 and p99
//! latency of each kind, from the moment the server has read a request until its reply is
//! ready. `--hogs N` adds N
//! threads that only burn CPU meanwhile: load that carries no hint, against which a scheduler
//! that honours the hints can favour the workers while they poll interactive requests.
//!
//! The runtime connects to a `tld_data_map` pinned by a scheduler on its own (see
//! `docs/rust.md`, "Connecting to the kernel"); without one, the hints work as thread-locals and the server
//! says so at start.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The scheduler's hints: naming the crate links them in, so that the kernel map has them.
use tld_runtime::HintFutureExt;
use tld_sched_hints::{LatencyHint, LATENCY, PRIORITY};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The hints of a latency-critical request: a nice-like priority of -5 (a larger CPU share
/// while its polls run), and an interactive latency hint with a budget of 500 µs, with which
/// scx_tld puts a worker polling it ahead of other work.
const INTERACTIVE_PRIORITY: i32 = -5;
const INTERACTIVE_LATENCY: LatencyHint = LatencyHint::interactive(500);

/// Units of work between two yields: each yield ends a poll.
const UNITS_PER_POLL: u64 = 50_000;
/// The most work one request may ask for.
const MAX_UNITS: u64 = 100_000_000;

/// What a handler saw of the hints over its polls.
#[derive(Debug, Clone, Copy)]
struct Seen {
    polls: u32,
    priority: (i32, i32),
    class: (u32, u32),
}

impl Seen {
    fn record(&mut self) {
        let (p, c) = (PRIORITY.get(), LATENCY.get().class);
        if self.polls == 0 {
            (self.priority, self.class) = ((p, p), (c, c));
        }
        self.polls += 1;
        self.priority = (self.priority.0.min(p), self.priority.1.max(p));
        self.class = (self.class.0.min(c), self.class.1.max(c));
    }
}

/// The request handler, the same for every kind of request: `units` units of CPU work, with a
/// yield every [`UNITS_PER_POLL`] so that other requests get the worker in between.
async fn handle(units: u64) -> (u64, Seen) {
    let mut seen = Seen {
        polls: 0,
        priority: (0, 0),
        class: (0, 0),
    };
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut done = 0;
    loop {
        seen.record(); // at the start of every poll
        let batch = UNITS_PER_POLL.min(units - done);
        for i in 0..batch {
            hash = (hash ^ (done + i)).wrapping_mul(0x0100_0000_01b3);
        }
        done += batch;
        if done == units {
            return (hash, seen);
        }
        tokio::task::yield_now().await;
    }
}

/// A parsed request line.
enum Request {
    Interactive(u64),
    Batch(u64),
}

fn parse(line: &str) -> Result<Request, String> {
    let mut words = line.split_whitespace();
    let (kind, units) = (words.next(), words.next());
    let units = match units.map(str::parse::<u64>) {
        Some(Ok(n)) if (1..=MAX_UNITS).contains(&n) && words.next().is_none() => n,
        _ => {
            return Err(format!(
                "expected `interactive N` or `batch N`, 1 <= N <= {MAX_UNITS}"
            ))
        }
    };
    match kind {
        Some("interactive") => Ok(Request::Interactive(units)),
        Some("batch") => Ok(Request::Batch(units)),
        _ => Err("unknown request kind: expected `interactive` or `batch`".into()),
    }
}

fn class_name(class: u32) -> &'static str {
    LatencyHint {
        budget_us: 0,
        class,
    }
    .class_name()
}

/// Runs one request and formats the reply.
async fn serve_request(line: &str) -> String {
    let start = Instant::now();
    let (kind, (hash, seen)) = match parse(line) {
        // The one line that makes a request latency-critical: its hints follow it into every
        // poll, on whichever worker runs it.
        Ok(Request::Interactive(units)) => (
            "interactive",
            handle(units)
                .with_hints((
                    (&PRIORITY, INTERACTIVE_PRIORITY),
                    (&LATENCY, INTERACTIVE_LATENCY),
                ))
                .await,
        ),
        Ok(Request::Batch(units)) => ("batch", handle(units).await),
        Err(e) => return format!("error {e}\n"),
    };
    format!(
        "ok {kind} polls={} priority={}..{} class={}..{} result={hash:#018x} time_us={}\n",
        seen.polls,
        seen.priority.0,
        seen.priority.1,
        class_name(seen.class.0),
        class_name(seen.class.1),
        start.elapsed().as_micros()
    )
}

/// Serves one connection: one request per line, replies in order.
async fn serve_connection(stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        write
            .write_all(serve_request(&line).await.as_bytes())
            .await?;
    }
    Ok(())
}

async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(stream).await {
                        eprintln!("connection: {e}");
                    }
                });
            }
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// --self-test: the server under load from its own clients, with the replies checked.

/// One client: a connection that sends `requests` requests of one kind and checks each reply.
async fn client(
    addr: SocketAddr,
    kind: &'static str,
    requests: u32,
    units: u64,
) -> Result<Vec<u128>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut times = Vec::new();
    let expect = match kind {
        "interactive" => format!(
            "priority={p}..{p} class=interactive..interactive",
            p = INTERACTIVE_PRIORITY
        ),
        _ => format!(
            "priority={p}..{p} class=normal..normal",
            p = PRIORITY.initial_value()
        ),
    };
    for _ in 0..requests {
        write
            .write_all(format!("{kind} {units}\n").as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let reply = lines
            .next_line()
            .await
            .map_err(|e| format!("receive: {e}"))?
            .ok_or("the server closed the connection")?;
        if !reply.starts_with(&format!("ok {kind} ")) || !reply.contains(&expect) {
            return Err(format!(
                "{kind} request: expected `{expect}` in every poll, got: {reply}"
            ));
        }
        let time = reply
            .rsplit_once("time_us=")
            .and_then(|(_, t)| t.parse().ok())
            .ok_or_else(|| format!("no time in: {reply}"))?;
        times.push(time);
    }
    Ok(times)
}

/// The `q` quantile (0.5: the median) of `times`, which must be sorted.
fn quantile(times: &[u128], q: f64) -> u128 {
    let last = times.len().saturating_sub(1);
    times
        .get((last as f64 * q).round() as usize)
        .copied()
        .unwrap_or(0)
}

async fn self_test(addr: SocketAddr, requests: u32) -> Result<(), String> {
    const CLIENTS: u32 = 4;
    const UNITS: u64 = 8 * UNITS_PER_POLL;
    let per_client = requests.div_ceil(CLIENTS).max(1);
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let kind = if c % 2 == 0 { "interactive" } else { "batch" };
        tasks.push((kind, tokio::spawn(client(addr, kind, per_client, UNITS))));
    }
    let (mut interactive, mut batch) = (Vec::new(), Vec::new());
    for (kind, task) in tasks {
        let times = task.await.map_err(|e| format!("client task: {e}"))??;
        if kind == "interactive" {
            &mut interactive
        } else {
            &mut batch
        }
        .extend(times);
    }
    interactive.sort_unstable();
    batch.sort_unstable();
    let (ni, nb) = (interactive.len(), batch.len());
    println!(
        "self-test: {ni} interactive requests saw priority={INTERACTIVE_PRIORITY} and class \
         interactive in every poll; {nb} batch requests never did"
    );
    println!(
        "self-test: p50 latency {} us interactive, {} us batch ({} units of work each, \
         {} polls); they differ only under CPU load and a scheduler that reads the hints",
        quantile(&interactive, 0.5),
        quantile(&batch, 0.5),
        UNITS,
        UNITS / UNITS_PER_POLL
    );
    println!(
        "self-test: p99 latency {} us interactive, {} us batch",
        quantile(&interactive, 0.99),
        quantile(&batch, 0.99),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------

struct Options {
    addr: SocketAddr,
    workers: usize,
    self_test: Option<u32>,
    hogs: usize,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:7878".parse().expect("a valid address"),
        workers: 4,
        self_test: None,
        hogs: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => o.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--workers" => {
                o.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?;
                if o.workers == 0 {
                    return Err("--workers: at least 1".into());
                }
            }
            "--hogs" => o.hogs = value()?.parse().map_err(|e| format!("--hogs: {e}"))?,
            "--self-test" => {
                o.self_test = Some(value()?.parse().map_err(|e| format!("--self-test: {e}"))?)
            }
            "-h" | "--help" => {
                println!(
                    "usage: tokio_server [--addr IP:PORT] [--workers N] \
                     [--self-test REQUESTS [--hogs N]]\n\
                     Serves `interactive N` and `batch N` requests, one per line; with \
                     --self-test, serves on a free loopback port, sends REQUESTS requests \
                     from 4 clients (half interactive, half batch), checks the replies, \
                     prints each kind's p50 and p99 latency and exits; --hogs N burns CPU on \
                     N more threads meanwhile."
                );
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a:?} (try --help)")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tokio_server: {e}");
            return ExitCode::from(2);
        }
    };
    let violations = Arc::new(AtomicU64::new(0));
    let parked = violations.clone();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.workers)
        .enable_all()
        // Between polls a worker holds its own values, whatever it ran: check it as it parks.
        .on_thread_park(move || {
            if PRIORITY.get() != PRIORITY.initial_value()
                || LATENCY.get() != LATENCY.initial_value()
            {
                parked.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio_server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    let addr = if opts.self_test.is_some() {
        "127.0.0.1:0".parse().expect("a valid address")
    } else {
        opts.addr
    };
    let listener = match rt.block_on(TcpListener::bind(addr)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tokio_server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().expect("a bound address");
    // Register this thread now, so that the status below says whether the kernel sees hints.
    let _ = tld_runtime::thread_init();
    println!("listening on {local} with {} workers", opts.workers);
    println!("{}", tld_runtime::status());
    rt.spawn(serve(listener));

    let Some(requests) = opts.self_test else {
        rt.block_on(std::future::pending::<()>());
        return ExitCode::SUCCESS;
    };
    let stop_hogs = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..opts.hogs)
        .map(|_| {
            let stop = stop_hogs.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect();
    // The clients run apart from the server's workers, on a runtime of their own, as real
    // clients would: the workers then poll only the server's requests.
    let result = std::thread::Builder::new()
        .name("clients".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the clients' runtime: {e}"))?
                .block_on(self_test(local, requests))
        })
        .map_err(|e| format!("cannot start the clients' thread: {e}"))
        .and_then(|clients| {
            clients
                .join()
                .unwrap_or_else(|_| Err("the clients' thread panicked".into()))
        });
    stop_hogs.store(true, Ordering::Relaxed);
    for hog in hogs {
        let _ = hog.join();
    }
    let bad_parks = violations.load(Ordering::Relaxed);
    match result {
        Ok(()) if bad_parks == 0 => {
            println!("self-test: passed (no worker ever parked holding a request's hints)");
            ExitCode::SUCCESS
        }
        Ok(()) => {
            eprintln!("self-test: FAILED: {bad_parks} workers parked holding a request's hints");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("self-test: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
