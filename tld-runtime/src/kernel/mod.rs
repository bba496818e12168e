//! The kernel side: the `tld_data_map` and its BTF, the connection that follows it across
//! restarts, and the system calls.

pub mod btf;
pub(crate) mod connection;
pub(crate) mod connection_state;
pub(crate) mod sys;
pub(crate) mod tld_map;
