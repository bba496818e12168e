//! The copies of the runtime in one process (plugins, libtld, a binary's own copy): how they find
//! each other, which one serves, and the protocol between them.

pub(crate) mod guest;
pub(crate) mod host;
pub(crate) mod marshal;
pub(crate) mod parts;
pub(crate) mod protocol;
pub mod rendezvous;
pub(crate) mod role;
pub(crate) mod sharing;
