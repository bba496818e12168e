//! Test fixture: hints declared in a crate of their own, found through linkme.
use tld_runtime::task_local_data;

/// A hint from crate A.
#[task_local_data]
pub static HINT_A: u64 = 0xA0A0_A0A0;
