//! A thread's life with the runtime: its state and page, the table of live threads, the pool
//! that pages come from, fork and exit, and the page handed to other languages' bindings.

pub mod bindings;
pub(crate) mod fork;
pub(crate) mod index_stack;
pub(crate) mod lifecycle;
pub(crate) mod pool;
pub(crate) mod segments;
pub(crate) mod thread_state;
pub(crate) mod thread_table;
