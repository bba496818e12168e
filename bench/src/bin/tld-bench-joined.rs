//! `tld-bench-joined PLUGIN_A PLUGIN_B ROUNDS`: row L2 of the benchmark report, in a process of
//! its own, started by `tld-bench-report`. Loads the two benchmark plugins with
//! `dlopen(RTLD_LOCAL)`: plugin a is used first and serves the process, plugin b joins it.
//! Then times batches of each plugin's `HINT.set` (the same code), alternating them and their
//! order, and prints `L2 serving=NS joined=NS ratio=R rounds=N best_ratio=R`.
//!
//! It uses nothing of tld itself, so that no copy of the runtime but the plugins' is in it.

use std::ffi::CString;

type Batch = extern "C" fn(u64) -> f64;
type Sharing = extern "C" fn() -> i32;
type Value = extern "C" fn() -> u64;

struct Plugin {
    batch: Batch,
    sharing: Sharing,
    value: Value,
}

/// The exported function `name` of the plugin `handle`, as an `F`.
fn function<F: Copy>(handle: *mut libc::c_void, name: &str) -> Result<F, String> {
    let c_name = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: `handle` is a live handle from dlopen; the name is NUL-terminated.
    let f = unsafe { libc::dlsym(handle, c_name.as_ptr()) };
    if f.is_null() || std::mem::size_of::<F>() != std::mem::size_of_val(&f) {
        return Err(format!("the plugin does not export {name}"));
    }
    // SAFETY: the plugins export these names with the types of this file's aliases, and `F`
    // is one of them: a function pointer of the size of a data pointer (checked above).
    Ok(unsafe { std::mem::transmute_copy(&f) })
}

fn load(path: &str) -> Result<Plugin, String> {
    let c_path = CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: loading a benchmark plugin runs no initializer of consequence.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(format!("dlopen {path} failed"));
    }
    Ok(Plugin {
        batch: function(handle, "tld_bench_plugin_batch")?,
        sharing: function(handle, "tld_bench_plugin_sharing")?,
        value: function(handle, "tld_bench_plugin_value")?,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, a, b, rounds] = &args[..] else {
        return Err("usage: tld-bench-joined PLUGIN_A PLUGIN_B ROUNDS".into());
    };
    let rounds: usize = rounds.parse().map_err(|_| "ROUNDS is a number")?;
    const CALLS: u64 = 1_000_000;
    let serving = load(a)?;
    (serving.batch)(CALLS);
    let joined = load(b)?;
    (joined.batch)(CALLS);
    let (sa, sb) = ((serving.sharing)(), (joined.sharing)());
    if sa != 2 * 16 || sb != 1 + 2 * 16 {
        return Err(format!(
            "plugin a should serve and plugin b join, in one runtime of 2 parts: {sa} {sb}"
        ));
    }
    let (mut xs, mut ys, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (s, j) = if round % 2 == 0 {
            let s = (serving.batch)(CALLS);
            (s, (joined.batch)(CALLS))
        } else {
            let j = (joined.batch)(CALLS);
            ((serving.batch)(CALLS), j)
        };
        xs.push(s);
        ys.push(j);
        ratios.push(j / s);
    }
    if (serving.value)() != CALLS - 1 || (joined.value)() != CALLS - 1 {
        return Err("a plugin's store did not happen".into());
    }
    let best = ys.iter().copied().fold(f64::INFINITY, f64::min)
        / xs.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "L2 serving={} joined={} ratio={} rounds={rounds} best_ratio={best}",
        median(&mut xs),
        median(&mut ys),
        median(&mut ratios)
    );
    Ok(())
}
