//! Benchmark plugin b (row L2): one hint, set through a non-inlined function. Plugins a and b
//! differ only in the hint's key, so that both can be loaded into one process.

#[tld_runtime::task_local_data(key = "bench_plugin_b")]
static HINT: u64 = 0;

include!("../../common.rs");
