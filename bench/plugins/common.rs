// The body of the two benchmark plugins (row L2), included by each after it declares `HINT`.

/// `HINT.set(v)` through a function that is never inlined, as P1 measures it.
#[inline(never)]
fn set(v: u64) {
    HINT.set(v);
}

/// Sets the hint `n` times; returns the nanoseconds per call.
#[no_mangle]
pub extern "C" fn tld_bench_plugin_batch(n: u64) -> f64 {
    let start = std::time::Instant::now();
    for i in 0..n {
        set(std::hint::black_box(i));
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The calling thread's value of the hint.
#[no_mangle]
pub extern "C" fn tld_bench_plugin_value() -> u64 {
    HINT.get()
}

/// This plugin's place in the process: 0 it serves, 1 it joined, 2 or 3 on its own; with the
/// number of parts times 16 added.
#[no_mangle]
pub extern "C" fn tld_bench_plugin_sharing() -> i32 {
    let status = tld_runtime::status();
    let role = match status.sharing {
        tld_runtime::Sharing::Serving => 0,
        tld_runtime::Sharing::Joined => 1,
        tld_runtime::Sharing::Isolated { .. } => 2,
        _ => 3,
    };
    role + 16 * status.parts as i32
}
