//! The hints of the standalone example, shared by its program and its build script.

use tld_runtime::task_local_data;

/// What kind of request the thread is serving. BPF reads it under the key "request_class".
#[task_local_data]
pub static REQUEST_CLASS: u32 = 0;
