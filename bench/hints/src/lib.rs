//! The benchmark's hints: sixteen `u64` hints, `bench_h00` to `bench_h15`, and two 32-byte
//! hints for the consistent-hint rows, `bench_plain32` and `bench_seq32` (consistent).
//!
//! They are the only hints in the benchmark binaries, and the 32-byte ones sort after the
//! others, so the layout (entries sorted by key, each padded to 8 bytes after the 8-byte
//! `start` field and the 8-byte layout fingerprint) puts `bench_hNN` at byte `16 + 8 * NN` of a
//! thread's page. The BPF floor programs read those
//! fixed offsets (`TLD_LAYOUT_START + 8 * NN`, checked against the generated header's
//! `TLD_OFF_bench_hNN` at build time), and the report checks at run time that they read the
//! same values as the lookups.
use tld_runtime::task_local_data;

/// Declares the sixteen hints with one macro, so that their names and order stay in step.
macro_rules! hints {
    ($($name:ident = $key:tt),* $(,)?) => {
        $(
            #[doc = concat!("Benchmark hint `", $key, "`.")]
            #[task_local_data(key = $key)]
            pub static $name: u64 = 0;
        )*
        /// Every hint, in key (and therefore layout) order.
        pub static ALL: [&tld_runtime::TaskLocal<u64>; 16] = [$(&$name),*];
    };
}

hints!(
    H00 = "bench_h00",
    H01 = "bench_h01",
    H02 = "bench_h02",
    H03 = "bench_h03",
    H04 = "bench_h04",
    H05 = "bench_h05",
    H06 = "bench_h06",
    H07 = "bench_h07",
    H08 = "bench_h08",
    H09 = "bench_h09",
    H10 = "bench_h10",
    H11 = "bench_h11",
    H12 = "bench_h12",
    H13 = "bench_h13",
    H14 = "bench_h14",
    H15 = "bench_h15",
);

/// A plain 32-byte hint: the baseline of the consistent-hint rows (C1, C2).
#[task_local_data(key = "bench_plain32")]
pub static PLAIN32: [u64; 4] = [0; 4];

/// The same 32 bytes as a consistent hint: two copies under a sequence word (C1, C2).
#[task_local_data(key = "bench_seq32", consistent)]
pub static SEQ32: [u64; 4] = [0; 4];
