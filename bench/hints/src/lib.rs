//! The benchmark's hints: sixteen `u64` hints, `bench_h00` to `bench_h15`.
//!
//! They are the only hints in the benchmark binaries, so the layout (entries sorted by key,
//! each padded to 8 bytes after the 8-byte `start` field) puts `bench_hNN` at byte
//! `8 + 8 * NN` of a thread's page. The BPF floor programs read those fixed offsets, and the
//! report checks at run time that they read the same values as the lookups.
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

/// Byte offset of hint `i` in a thread's page under the layout described above.
pub const fn offset_of(i: usize) -> usize {
    8 + 8 * i
}

/// A model of a leaner `TaskLocal::set` hot path, measured next to the real one by the
/// benchmark report (P1). It lives here, beside the hints, so that both reach their static
/// across a crate boundary in the same way.
pub mod model {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU32, Ordering};

    thread_local! {
        /// The model's per-thread page, like the runtime's `BLOCK`.
        static BLOCK: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
    }

    /// The model's hint: an offset assigned on first use, like `TaskLocal::offset`.
    pub struct ModelHint {
        offset: AtomicU32,
    }

    /// The one model hint, at the offset of `bench_h00`.
    pub static MODEL: ModelHint = ModelHint {
        offset: AtomicU32::new(0),
    };

    impl ModelHint {
        /// The proposed shape: both checks, then the store, with everything else out of line.
        #[inline]
        pub fn set(&'static self, value: u64) {
            let base = BLOCK.with(Cell::get);
            let off = self.offset.load(Ordering::Relaxed) as usize;
            if !base.is_null() && off != 0 {
                // SAFETY: `base` is this thread's page and `off` lies inside it (see
                // `set_slow`), aligned for a u64.
                unsafe { base.add(off).cast::<u64>().write_volatile(value) };
                return;
            }
            self.set_slow(value);
        }

        /// First use on a thread: a page of its own, then the store.
        #[cold]
        #[inline(never)]
        fn set_slow(&'static self, value: u64) {
            self.offset
                .store(super::offset_of(0) as u32, Ordering::Relaxed);
            if BLOCK.with(Cell::get).is_null() {
                let page: &'static mut [u64; 512] = Box::leak(Box::new([0; 512]));
                BLOCK.with(|b| b.set(page.as_mut_ptr().cast()));
            }
            self.set(value);
        }

        /// The calling thread's value (0 before its first `set`).
        pub fn get(&'static self) -> u64 {
            let base = BLOCK.with(Cell::get);
            let off = self.offset.load(Ordering::Relaxed) as usize;
            if base.is_null() || off == 0 {
                return 0;
            }
            // SAFETY: as in `set`.
            unsafe { base.add(off).cast::<u64>().read_volatile() }
        }
    }
}
