//! The report as Markdown: the ratio table and the notes after it (`docs/performance.md`).

use std::fmt::Write as _;

use super::goals::*;
use super::measuring::*;
use super::{verdict, P5Memory, Results};
use crate::bpf::Prog;
use crate::registration;

/// A marginal cost per read or lookup, as the report prints it.
pub(crate) fn per_read(m: f64) -> String {
    format!("{m:.2} ns")
}

impl G1 {
    /// G1's row of the table.
    pub(crate) fn row(&self, s: &mut String) {
        let (f, c) = self.added();
        let _ = writeln!(
            s,
            "| G1 | `bpf_tld_init` with the guard's check (`TLD_GUARD`, enabled; the element \
             stamped as the guard stamps it): fast path / cached path, 16 inits per run | \
             {:.2} / {:.2} ns per init (least disturbed of {} interleaved rounds) | the same \
             init without the check: {:.2} / {:.2} ns | {f:+.2} / {c:+.2} ns | ≤ \
             +{G1_GOAL_NS} ns | {} |",
            self.fast.1,
            self.cached.1,
            self.rounds,
            self.fast.0,
            self.cached.0,
            verdict(self.met())
        );
    }
}

impl Dist {
    /// The distribution, as the table shows it.
    pub(crate) fn text(&self) -> String {
        format!(
            "mean {:.2} µs, p50 {:.2} µs, p99 {:.2} µs, max {:.0} µs",
            self.mean, self.p50, self.p99, self.max
        )
    }
}

impl P4 {
    /// The ratios, the max and the pool, as the table's "ratio" cell.
    pub(crate) fn result_text(&self) -> String {
        format!(
            "{:.2}× mean, {:.2}× p99; max {:.2} ms ({}); pool {} pages for a peak of {} live \
             threads",
            self.mean_ratio(),
            self.p99_ratio(),
            self.ours.max / 1000.0,
            self.off_run_queue_text(),
            self.pool_pages,
            self.peak_live
        )
    }

    /// The slowest registrations without run-queue waits, as a phrase.
    pub(crate) fn off_run_queue_text(&self) -> String {
        match self.off_run_queue_max {
            Some((ours, bare)) => format!(
                "{ours:.0} µs without the time spent waiting for a CPU (bare: {bare:.0} µs)"
            ),
            None => "the kernel does not account run-queue waits here".to_string(),
        }
    }
}

/// The P3a and P3b rows of one build of the benchmark object: ids and descriptions get
/// `id_suffix` and `what_suffix`.
pub(crate) fn p3_rows(s: &mut String, p3: &P3, id_suffix: &str, what_suffix: &str) {
    let fast = PathVsFloor::new(p3, FAST, PathGoals::FAST);
    let cached = PathVsFloor::new(p3, CACHED, PathGoals::CACHED);
    let m_floor = p3.slope(FLOOR);
    let floor_k1 = format!(
        "floor: 1 `bpf_task_storage_get` + read at a fixed offset: {:.2} ns per pair ({:.2} \
         ns above an empty program)",
        p3.ns(Prog::FloorX16) / 16.0,
        p3.net(Prog::FloorX16) / 16.0
    );
    let floor_marginal = format!(
        "a fixed-offset read (K = 1, 4, 16: {}): {} per read",
        p3.runs(FLOOR),
        per_read(m_floor)
    );
    for (id, path, what) in [
        (
            "P3a",
            &fast,
            "BPF, fast path (the page carries the generated header's layout fingerprint): \
             `bpf_tld_init` + 1 `bpf_tld_get` + read",
        ),
        (
            "P3a, cached",
            &cached,
            "BPF, cached path (no generated header, or a layout other than the header's): \
             init + 1 cached `bpf_tld_get` + read",
        ),
    ] {
        let _ = writeln!(
            s,
            "| {id}{id_suffix} | {what}{what_suffix}, 16 pairs per run | {:.2} ns per pair \
             ({:.2} ns above an empty program) | {floor_k1} | {:.3}× ({:.3}× above the empty \
             program) | {} | {} |",
            p3.ns(pair_prog(path.progs)) / 16.0,
            p3.net(pair_prog(path.progs)) / 16.0,
            path.raw,
            path.net,
            path.goals.p3a_text(),
            verdict(path.p3a_met)
        );
    }
    for (id, path, what) in [
        ("P3b", &fast, "BPF, fast path: each further lookup + read"),
        (
            "P3b, cached",
            &cached,
            "BPF, cached path: each further cached lookup + read",
        ),
    ] {
        let _ = writeln!(
            s,
            "| {id}{id_suffix} | {what}{what_suffix} (runs of K = 1, 4, 16: {}) | {} per lookup | \
             {floor_marginal} | {} | {} | {} |",
            p3.runs(path.progs),
            per_read(path.marginal),
            path.marginal_text,
            path.goals.p3b_text(),
            path.p3b_verdict()
        );
    }
}

/// The P6 row of one build of the benchmark object (load times only where measured).
pub(crate) fn p6_row(s: &mut String, p6: &P6, id_suffix: &str, what_suffix: &str) {
    let loads = match (
        p6.load_us.get(&Prog::TldK16),
        p6.load_us.get(&Prog::TldK1),
        p6.load_us.get(&Prog::FloorK1),
    ) {
        (Some(k16), Some(k1), Some(floor)) => (
            format!("; load of `bench_tld_k16` {k16:.0} µs (`bench_tld_k1` {k1:.0} µs)"),
            format!("; load of `bench_floor_k1` {floor:.0} µs"),
        ),
        _ => (String::new(), String::new()),
    };
    let _ = writeln!(
        s,
        "| P6{id_suffix} | BPF verification: verified instructions per additional key (K = 1 to \
         16){what_suffix} | fast path {:.1}, cached path {:.1}{} | the floor: {:.1} per \
         additional fixed-offset read{} | {:.1}× / {:.1}× the goals | ≤ {P6_FAST_GOAL} fast, ≤ \
         {P6_CACHED_GOAL} cached | {} |",
        p6.fast_per_key,
        p6.cached_per_key,
        loads.0,
        p6.floor_per_read,
        loads.1,
        p6.fast_per_key / P6_FAST_GOAL,
        p6.cached_per_key / P6_CACHED_GOAL,
        verdict(p6.met())
    );
}

impl Results<'_> {
    pub(crate) fn markdown(&self) -> String {
        let Results {
            machine,
            quick,
            p1,
            p2,
            p3,
            p4,
            p6,
            p3_618,
            p6_618,
            g1,
            p5,
            base,
            scoped,
            consistent,
            libtld,
            ..
        } = *self;
        let page = registration::page_size() as f64;

        // P3 (the notes below speak of the default value's build).
        let fast = PathVsFloor::new(p3, FAST, PathGoals::FAST);
        let cached = PathVsFloor::new(p3, CACHED, PathGoals::CACHED);
        // P5.
        let P5Memory {
            tld: mem_tld,
            base: mem_base,
            extra: mem_extra,
            met: p5_met,
        } = self.p5_memory();
        let reg_per_thread = (p5.wall_ms - base.wall_ms) * 1000.0 / p5.threads as f64;

        let p1_met = p1.cmp.ratio <= 1.3;
        let p2_met = p2.cmp.ratio >= 500.0;

        let mut s = String::new();
        let _ = writeln!(s, "## Performance\n");
        let _ = writeln!(
            s,
            "Measured by `make bench` on {machine}{}; the 1-minute load average was {} when the \
             report started. The machines are shared and noisy, so every figure is a ratio of \
             two things measured side by side in the same process run, over interleaved \
             rounds. Absolute times move with the load; the ratios move much less.\n",
            if quick { " (`--quick`)" } else { "" },
            machine.load
        );

        let _ = writeln!(
            s,
            "| id | what | ours | compared with | ratio | goal | |\n\
             |---|---|---|---|---|---|---|"
        );
        let _ = writeln!(
            s,
            "| P1 | `HINT.set(v)` through a non-inlined function | {:.2} ns | raw const \
             `thread_local!` `Cell` store through a non-inlined function: {:.2} ns | {:.2}× | \
             ≤ 1.3× | {} |",
            p1.cmp.a,
            p1.cmp.b,
            p1.cmp.ratio,
            verdict(p1_met)
        );
        let _ = writeln!(
            s,
            "| P2 | `HINT.set(v)` | {:.2} ns | `bpf_map_update_elem` of the value into a task \
             storage map: {:.0} ns | {:.0}× faster | ≥ 500× faster | {} |",
            p2.cmp.b,
            p2.cmp.a,
            p2.cmp.ratio,
            verdict(p2_met)
        );
        p3_rows(&mut s, p3, "", "");
        p3_rows(
            &mut s,
            p3_618,
            " (6.18 value)",
            " (the 6.18 generation's 16-byte value, `TLD_GEN_6_18`)",
        );
        let _ = writeln!(
            s,
            "| P4 | registering threads under sustained churn: `thread_init()` on {} fresh \
             threads, one started every {:.0} µs for {:.1} s | {} | bare `pidfd_open` + \
             pinning update of a pre-allocated, resident page, in the same threads: {} | {} \
             | ≤ {P4_MEAN_GOAL}× mean, ≤ {P4_P99_GOAL}× p99, max ≤ 1 ms (off the run \
             queue), pool ≤ peak + {P4_POOL_SLACK} | {} |",
            p4.samples,
            p4.period_us,
            p4.elapsed_s,
            p4.ours.text(),
            p4.bare.text(),
            p4.result_text(),
            verdict(p4.met())
        );
        let _ = writeln!(
            s,
            "| P5 | {} live registered threads (64 KiB stacks) | registration (first touch): \
             median {:.1} µs, {:.1} µs for the first 1000 threads, {:.1} µs for the last 1000; \
             {:.0} bytes/thread resident | the same threads without hints: {:.0} bytes/thread \
             | +{:.0} bytes/thread ({:.2} pages); {} pool pages for {} registered threads | \
             ≤ 1 page + small change | {} |",
            p5.threads,
            p5.touch_median_us,
            p5.touch_first_us,
            p5.touch_last_us,
            mem_tld,
            mem_base,
            mem_extra,
            mem_extra / page,
            p5.pool_pages,
            p5.registered,
            verdict(p5_met)
        );
        p6_row(&mut s, p6, "", "");
        p6_row(
            &mut s,
            p6_618,
            " (6.18 value)",
            " (the 6.18 generation's 16-byte value)",
        );
        g1.row(&mut s);
        s.push_str(&scoped.rows());
        s.push_str(&consistent.rows());
        if let Some(vm) = &self.vm_guard {
            s.push_str(&vm.rows());
        }
        if let Some(vm) = &self.vm {
            s.push_str(&vm.rows());
        }
        s.push_str(&libtld.rows());

        let _ = writeln!(
            s,
            "\nP3 has two rows per goal: the fast path is what a program compiled against the \
             generated header runs in a process with that header's layout (the common case, \
             and the one the goals are about); the cached path is the fallback for every other \
             reader (no generated header, another library's pages, or a process that links \
             hints the header does not know), with goals of its own. The kernel's timer counts whole \
             nanoseconds per run, so a marginal cost fitted over K = 1, 4, 16 moves in steps of \
             up to {:.2} ns per lookup; when the floor's is within {RESOLVED_TICKS} such steps, \
             P3b is met if ours exceeds it by at most one step.\n\n\
             P5 in full: spawning {} threads that each register took {:.0} ms, against {:.0} \
             ms for the same threads without hints: {:.1} µs per thread at the process level \
             (first-touch mean {:.1} µs). Resident anonymous memory grew by {:.1} MiB, against \
             {:.1} MiB without hints. \"Small change\" is read as at most a quarter page.",
            RESOLUTION,
            p5.threads,
            p5.wall_ms,
            base.wall_ms,
            reg_per_thread,
            p5.touch_mean_us,
            p5.anon_delta / 1048576.0,
            base.anon_delta / 1048576.0
        );

        let _ = writeln!(
            s,
            "\n### BPF programs\n\nEach is a `SEC(\"xdp\")` program in `bpf/bench_tld.bpf.c`, \
             run by `BPF_PROG_TEST_RUN` with `repeat = {}` in the benchmark thread. An XDP test \
             run executes in the calling task, so `bpf_get_current_task_btf()` is that thread; \
             unlike a syscall program's, it accepts `repeat` and reports the mean duration per \
             run. \"ns per run\" is the lowest of {} such test runs, all programs interleaved \
             (interference only adds time, in bursts that can cover half the rounds); the \
             kernel reports whole nanoseconds. Every program's return value is checked \
             against the hints the thread set before timing starts.\n",
            p3.repeat, p3.rounds
        );
        let _ = writeln!(
            s,
            "| program | what | ns per run | verified insns | xlated insns | JIT bytes |\n\
             |---|---|---|---|---|---|"
        );
        for p in Prog::ALL {
            let st = p3.stats[&p];
            let _ = writeln!(
                s,
                "| `{}` | {} | {:.0} | {} | {} | {} |",
                p.name(),
                describe(p),
                p3.ns(p),
                st.verified_insns,
                st.xlated_insns,
                st.jited_bytes
            );
        }
        let loads: Vec<String> = P6_LOADED
            .iter()
            .map(|p| format!("`{}` {:.0} µs", p.name(), p6.load_us[p]))
            .collect();
        let _ = writeln!(
            s,
            "\n**P6.** Keys are resolved by one global BPF function, `__bpf_tld_resolve`, which \
             the verifier checks once per program (its share is in each `_k1` program's \
             figure); a lookup site then adds {:.1} verified instructions on the cached path, \
             and {:.1} on the fast path, whose programs keep the cached branch for pages \
             without the fingerprint ({} for ≤ {P6_FAST_GOAL} on the fast path and \
             ≤ {P6_CACHED_GOAL} on the cached path). The floor adds {:.1} per read. The object \
             is compiled with `-mcpu=v4`, as `tld-bpf-build` does. Loading the object with one \
             program enabled (libbpf's preparation, the verifier, the JIT, and the object's \
             maps), the lowest of {} loads: {}.",
            p6.cached_per_key,
            p6.fast_per_key,
            verdict(p6.met()),
            p6.floor_per_read,
            p6.load_reps,
            loads.join(", ")
        );

        let _ = writeln!(s, "\n### Analysis\n");
        let _ = writeln!(
            s,
            "**P1** ({}). `set`'s fast path ends in the store: the thread's page pointer from \
             TLS, the static's address from the GOT (the hint lives in another crate, as with a \
             hints crate), its offset, a test of each, and the store to page + offset. \
             Everything else (a thread's first access, a hint the layout does not know) is in \
             `#[cold]` out-of-line functions (`set_slow`, `get_slow`), reached by a tail jump. \
             Above the thread-local's single TLS store that leaves the page pointer load, the \
             offset load and the two tests{}",
            verdict(p1_met),
            if p1.cmp.ratio <= 1.05 {
                format!(
                    "; here the two measure the same ({:.2} and {:.2} ns), the call around them \
                     dominating.",
                    p1.cmp.a, p1.cmp.b
                )
            } else {
                format!(": {:.2} ns against {:.2} ns here.", p1.cmp.a, p1.cmp.b)
            }
        );
        let _ = writeln!(
            s,
            "\n**P3a, P3b: the fast path** (P3a {}, P3b {}). Every page the runtime hands \
             out starts with `start` = 16 and, at bytes 8..16, the fingerprint of the layout \
             (page size, each key and size in order); the generated header carries the same \
             fingerprint as `TLD_LAYOUT_FP`, and each key's offset as `TLD_OFF_<key>`. \
             `bpf_tld_init` makes one `bpf_task_storage_get`, as the floor does, then compares \
             the page's first two words with `TLD_LAYOUT_START` and `TLD_LAYOUT_FP`; on a match \
             it never touches the per-task cache, and `bpf_tld_get(&tld, key)` is \
             `data + TLD_OFF_<key>` after a compile-time size check: one load at a constant \
             offset, which the verifier proves in-page at load time. In the JIT output \
             (`--dump-jit`) the fast path's reads are the floor's loads at the same offsets; \
             what it adds is a NULL test of `meta`, the two compares, and a larger frame for \
             the cached branch it keeps for other pages. `bpf_tld_init` alone costs {:.0} ns \
             above the empty program against the floor's {:.0} ns for its storage get and \
             read; the K = 16 runs cost {:.0} and {:.0} ns.",
            verdict(fast.p3a_met),
            fast.p3b_verdict(),
            p3.net(Prog::DiagInit),
            p3.net(Prog::FloorK1),
            p3.ns(Prog::TldK16),
            p3.ns(Prog::FloorK16)
        );
        let two_gets = p3.ns(Prog::DiagTwoGets) / p3.ns(Prog::FloorK1);
        let mut cached_notes = String::new();
        if !cached.p3a_met {
            let _ = write!(
                cached_notes,
                " P3a misses by {:.2}× in this run.",
                cached.raw - cached.goals.p3a_ratio
            );
        }
        if cached.p3b_met == Some(false) {
            let _ = write!(
                cached_notes,
                " P3b misses by {:.2} ns per lookup in this run.",
                cached.extra - 0.5
            );
        }
        let _ = writeln!(
            s,
            "\n**The cached path** (P3a {}, P3b {}). Without the header's fingerprint in the \
             page, lookups go through a per-task cache of resolved offsets, in a task storage \
             map of the program's own (`tld_off_map`), as in the kernel's own library: \
             `tld_data_map`'s value may be no longer than its writers send (the 16 or 24 bytes \
             of the format), so the cache cannot share its element. Init therefore makes a \
             second `bpf_task_storage_get` and checks the cache's cookies (the pages' kernel \
             addresses, and start): {:.0} ns above the empty program, against the floor's \
             {:.0} ns; two storage gets alone cost {:.0} ns, {two_gets:.2}× the floor's get \
             and read, which is what init + 1 lookup on the cached path costs at the least. \
             This is the trade-off of the format's rule: an earlier version kept the cache in \
             the element and made one get, but that value was longer than any writer sends. A \
             lookup through a resolved slot is inline and runs straight through: a \
             sign-extending load of the key's size slot and a compare (a slot smaller than the \
             request jumps to an out-of-line block, which calls the resolver if the slot is \
             ≤ 0), a load of its offset slot and one unsigned compare that bounds it to the \
             page (the cache is map memory, so the verifier needs the check), an add to the \
             data page kept in the handle, and the read: {} per lookup, {:+.2} ns over the \
             floor's fixed-offset read.{cached_notes} The fast path makes one get, whichever \
             generation the map speaks.",
            verdict(cached.p3a_met),
            cached.p3b_verdict(),
            p3.net(Prog::DiagInitCached),
            p3.net(Prog::FloorK1),
            p3.net(Prog::DiagTwoGets),
            per_read(cached.marginal),
            cached.extra,
        );
        let mut p4_misses = Vec::new();
        if !p4.mean_met() {
            p4_misses.push(format!("the mean ({:.2}×)", p4.mean_ratio()));
        }
        if !p4.p99_met() {
            p4_misses.push(format!("the p99 ({:.2}×)", p4.p99_ratio()));
        }
        if !p4.max_met() {
            p4_misses.push(format!("the max ({:.2} ms)", p4.judged_max() / 1000.0));
        }
        if !p4.pool_met() {
            p4_misses.push(format!("the pool ({} pages)", p4.pool_pages));
        }
        let p4_miss_note = if p4_misses.is_empty() {
            String::new()
        } else {
            format!(
                " Missed in this run: {}. Both sides are timed in the same threads, so a \
                 loaded machine moves both.",
                p4_misses.join(", ")
            )
        };
        let _ = writeln!(
            s,
            "\n**P4** ({}). Threads start every {:.0} µs and exit as soon as they have \
             registered, so pages of exited threads are reused all the time. No registration \
             waits for a grace period: a thread that exits retires its page \
             (`madvise(MADV_DONTNEED)`, which leaves whatever BPF still holds pointing at a \
             physical page nobody sees) and puts it straight back in the pool, already faulted \
             in, so the next thread pays only the template copy. The runtime's own work on a \
             first touch (a page from the pool, the copy, a slot in the thread table) is small \
             next to `pidfd_open` and the pinning update: the mean is {:.2}× the bare \
             registration's, the p99 {:.2}×. The pool ended at {} pages for a peak of {} \
             threads holding a page at once: a page is reused before a new one is touched, and \
             new ones come from address space reserved ahead of need, so the pool is the peak.\n\n\
             The slowest registration took {:.2} ms of wall time, the bare one {:.2} ms: with a \
             few hundred threads runnable on {} CPUs, a thread that is preempted waits that long \
             for a CPU whatever it runs. So the max is judged without the time the thread spent \
             runnable but waiting for a CPU (`/proc/thread-self/schedstat`): {}. That part is \
             the registration's own, and nothing in it waits for another thread: the pool and \
             the thread table take no lock, taking a page never maps memory, and the exit hook \
             is a POSIX thread-specific key rather than a `thread_local!` destructor, whose \
             registration takes a lock that the C library shares among all threads.{p4_miss_note}",
            verdict(p4.met()),
            p4.period_us,
            p4.mean_ratio(),
            p4.p99_ratio(),
            p4.pool_pages,
            p4.peak_live,
            p4.ours.max / 1000.0,
            p4.bare.max / 1000.0,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            p4.off_run_queue_text(),
        );
        let trend = if p5.touch_last_us > 1.15 * p5.touch_first_us {
            format!(
                "First touch still slows as threads accumulate, by {:.0}% from the first 1000 \
                 threads to the last; the report times the whole first touch, syscalls \
                 included, and does not attribute the growth further.",
                (p5.touch_last_us / p5.touch_first_us - 1.0) * 100.0
            )
        } else {
            "First touch does not slow as threads accumulate.".to_string()
        };
        let _ = writeln!(
            s,
            "\n**P5** ({}). Memory is the page and little else: +{:.0} bytes per thread, with \
             {:.0}-byte pages. Registration holds the connection lock only to clone the map (an \
             `Arc`) and its generation, and makes `pidfd_open` and the map update without it; \
             each thread keeps its slot in the thread table, so neither registration nor thread \
             exit searches it. Median first touch: {:.1} µs for the first 1000 threads, \
             {:.1} µs for the last 1000. {trend} At the process level registration costs {:.1} \
             µs per thread, against a mean of {:.1} µs under churn (P4).",
            verdict(p5_met),
            mem_extra,
            page,
            p5.touch_first_us,
            p5.touch_last_us,
            reg_per_thread,
            p4.ours.mean
        );

        let _ = writeln!(s, "\n### Method\n");
        let _ = writeln!(
            s,
            "- P1 and P2: the report times batches of calls ({} rounds; P1 1,000,000 calls per \
             batch, P2 2,000 updates against 1,000,000 stores), alternating the two sides and \
             their order every round, and reports the median per-round ratio. The syscall side \
             keeps its pidfd open, the cheapest way to do it.",
            p1.cmp.rounds
        );
        let _ = writeln!(
            s,
            "- P3: ours and the floors are programs of one object, loaded once and run \
             interleaved in one thread, against the same page. The floors read it at \
             `TLD_LAYOUT_START + 8 * i`, which a `_Static_assert` ties to the generated \
             header's `TLD_OFF_bench_hNN`. The `bench_tld_k*` programs call `bpf_tld_init` and \
             take the fast path, since the runtime's pages carry the header's fingerprint; the \
             `bench_cached_k*` programs call `__bpf_tld_init(task, &tld, 0)`, which skips the \
             fingerprint check, so they run the cached path, as a program without the header \
             would. Each program's first, untimed run resolves its keys into the cache. The \
             per-lookup cost is the least-squares slope over K = 1, 4, 16 of the ns per run."
        );
        let _ = writeln!(
            s,
            "- P4: one thread started every {:.0} µs (a sleep with 1 ns timer slack between \
             spawns, never waiting for earlier threads) for {:.1} s, {} threads with 64 KiB \
             stacks. Each first makes one untimed update of another task storage map, so that \
             the kernel's per-task storage exists for both sides; then it times \
             `tld_runtime::thread_init()` and the bare registration (into `bare_reg_map`, laid \
             out like `tld_data_map`, of a page faulted in beforehand, never reused) in \
             alternating order, and exits. The peak counts threads from before their first \
             touch until after the runtime released their page. Spawning is not timed.",
            p4.period_us, p4.elapsed_s, p4.samples
        );
        let _ = writeln!(
            s,
            "- P5: two child processes, one whose threads each set a hint and one whose threads \
             do not, each spawning {} threads with 64 KiB stacks that wait until all have \
             started. Memory is the growth of `RssAnon` (the pinned pages are the process's own \
             anonymous memory); the kernel's task storage elements are not counted.",
            p5.threads
        );
        let _ = writeln!(
            s,
            "- P6: the verifier's count (`bpf_prog_info.verified_insns`) of the programs above, \
             loaded with the report's object; the cost per additional key is (K = 16 less K = \
             1) / 15. Load times: the object opened and loaded anew with only that program \
             enabled, timed around libbpf's load, the lowest of {} loads.",
            p6.load_reps
        );
        s.push_str(&scoped.notes());
        s.push_str(&consistent.notes());
        s.push_str(&libtld.notes());

        let _ = writeln!(
            s,
            "\n### Rerunning\n\n`make bench` (as root, or with CAP_BPF + CAP_PERFMON + \
             CAP_SYS_ADMIN, on Linux ≥ 6.13 with clang-19) runs the criterion benchmarks for \
             P1, P2, P4, S1, S2 and C1 with short measurement times, then `tld-bench-report`, which runs \
             everything above, prints this section and writes it to `target/tld-bench.md`, \
             and the figures, one object per id, to `target/tld-bench.json`. The \
             report alone: `cargo run --release -p tld-bench --bin tld-bench-report` (`--quick` \
             for a smoke run, `--dump-jit DIR` to keep the JIT-compiled BPF for `objdump -D -b \
             binary -m i386:x86-64`). The criterion benchmarks alone: `cargo bench -p \
             tld-bench`. Benchmarks are not part of `make test`."
        );
        s
    }
}

pub(crate) fn describe(p: Prog) -> &'static str {
    match p {
        Prog::Empty => "returns 0 (the harness)",
        Prog::FloorK1 => "floor: storage get + 1 fixed-offset read",
        Prog::FloorK4 => "floor: storage get + 4 fixed-offset reads",
        Prog::FloorK16 => "floor: storage get + 16 fixed-offset reads",
        Prog::InlineK1 => "storage get of `hint_value_map` + read (the syscall approach)",
        Prog::TldK1 => "ours, fast path: `bpf_tld_init` + 1 lookup + read",
        Prog::TldK4 => "ours, fast path: `bpf_tld_init` + 4 lookups + reads",
        Prog::TldK16 => "ours, fast path: `bpf_tld_init` + 16 lookups + reads",
        Prog::CachedK1 => "ours, cached path: init + 1 cached lookup + read",
        Prog::CachedK4 => "ours, cached path: init + 4 cached lookups + reads",
        Prog::CachedK16 => "ours, cached path: init + 16 cached lookups + reads",
        Prog::DiagInit => "`bpf_tld_init` alone (fast path: 1 storage get, fingerprint check)",
        Prog::DiagInitCached => {
            "the cached path's init alone (2 storage gets, the cache's cookie check)"
        }
        Prog::DiagTwoGets => "two storage gets alone (the least a cached init costs)",
        Prog::FloorX16 => "floor, 16 pairs: 16 × (storage get + 1 fixed-offset read)",
        Prog::TldX16 => "ours, fast path, 16 pairs: 16 × (`bpf_tld_init` + 1 lookup + read)",
        Prog::CachedX16 => "ours, cached path, 16 pairs: 16 × (init + 1 cached lookup + read)",
        Prog::InitX16 => "`bpf_tld_init` alone, 16 times (fast path)",
        Prog::InitCachedX16 => "the cached path's init alone, 16 times",
    }
}
