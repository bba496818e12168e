//! Test plugin A: a Rust cdylib that declares hints of its own and exports C functions to set
//! and read them (`tests/c/plugin.h`). Loaded with `dlopen(RTLD_LOCAL)` by the C hosts of the
//! libtld tests, it carries its own copy of the runtime, which joins the process's.
#![allow(clippy::missing_safety_doc)]

use tld_runtime::task_local_data;
use tld_test_plugin_common::PluginInfo;

/// Starts at 7 in every thread, including threads that existed before the plugin loaded.
#[task_local_data]
static PLUGIN_A_COUNT: u64 = 7;

#[task_local_data]
static PLUGIN_A_FLAG: u32 = 1;

/// Sets both hints of the calling thread.
#[no_mangle]
pub extern "C" fn plugin_a_set(count: u64, flag: u32) {
    PLUGIN_A_COUNT.set(count);
    PLUGIN_A_FLAG.set(flag);
}

/// Reads both hints of the calling thread.
///
/// # Safety
/// Both pointers must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn plugin_a_get(count: *mut u64, flag: *mut u32) {
    // SAFETY: the caller's promise.
    unsafe {
        count.write(PLUGIN_A_COUNT.get());
        flag.write(PLUGIN_A_FLAG.get());
    }
}

/// This part's status.
///
/// # Safety
/// `out` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn plugin_a_info(out: *mut PluginInfo) {
    // SAFETY: the caller's promise.
    unsafe { out.write(tld_test_plugin_common::info()) }
}

/// `tld_runtime::thread_init()`: 0 or -errno.
#[no_mangle]
pub extern "C" fn plugin_a_thread_init() -> i32 {
    tld_test_plugin_common::thread_init()
}
