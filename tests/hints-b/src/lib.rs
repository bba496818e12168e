//! Test fixture: a second crate of hints.
use tld_runtime::task_local_data;

/// A hint from crate B.
#[task_local_data]
pub static HINT_B: u32 = 0xB0B0;
