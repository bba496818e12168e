// Visibility, doc comments and other attributes carry over to the TaskLocal static.
#![deny(missing_docs)]
//! A crate whose public items must all be documented.

/// Hints that other modules read.
pub mod hints {
    use tld_runtime::task_local_data;

    /// How urgent this thread's work is.
    #[task_local_data]
    pub static PRIORITY: i32 = 0;

    /// Visible in the crate only.
    #[task_local_data(key = "crate_only")]
    pub(crate) static CRATE_ONLY: u64 = 1;

    #[task_local_data]
    #[allow(dead_code)]
    static UNUSED: u8 = 0;

    #[task_local_data]
    #[cfg(any())]
    static COMPILED_OUT: u8 = 0;

    #[cfg(any())]
    #[task_local_data]
    static ALSO_COMPILED_OUT: u8 = 0;

    /// A raw identifier: key "type".
    #[task_local_data]
    pub static r#TYPE: u32 = 0;
}

fn main() {
    let handle: &'static tld_runtime::TaskLocal<i32> = &hints::PRIORITY;
    assert_eq!(handle.key(), "priority");
    assert_eq!(hints::CRATE_ONLY.key(), "crate_only");
    assert_eq!(hints::r#TYPE.key(), "type");
    assert_eq!(hints::r#TYPE.site().rust_name, "TYPE");
}
