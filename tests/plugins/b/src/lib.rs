//! Test plugin B: like plugin A, with other hints, one of them consistent
//! (`tests/c/plugin.h`).
#![allow(clippy::missing_safety_doc)]

use tld_runtime::task_local_data;
use tld_test_plugin_common::PluginInfo;

#[task_local_data]
static PLUGIN_B_LEVEL: i32 = -3;

/// A consistent hint: a counter, then the value, which BPF never sees half-written.
#[task_local_data(consistent)]
static PLUGIN_B_BUDGET: [u32; 2] = [5, 6];

/// Sets both hints of the calling thread.
#[no_mangle]
pub extern "C" fn plugin_b_set(level: i32, b0: u32, b1: u32) {
    PLUGIN_B_LEVEL.set(level);
    PLUGIN_B_BUDGET.set([b0, b1]);
}

/// Reads both hints of the calling thread.
///
/// # Safety
/// Every pointer must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn plugin_b_get(level: *mut i32, b0: *mut u32, b1: *mut u32) {
    let [x, y] = PLUGIN_B_BUDGET.get();
    // SAFETY: the caller's promise.
    unsafe {
        level.write(PLUGIN_B_LEVEL.get());
        b0.write(x);
        b1.write(y);
    }
}

/// This part's status.
///
/// # Safety
/// `out` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn plugin_b_info(out: *mut PluginInfo) {
    // SAFETY: the caller's promise.
    unsafe { out.write(tld_test_plugin_common::info()) }
}

/// `tld_runtime::thread_init()`: 0 or -errno.
#[no_mangle]
pub extern "C" fn plugin_b_thread_init() -> i32 {
    tld_test_plugin_common::thread_init()
}
