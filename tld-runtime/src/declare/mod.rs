//! What an application declares: the handles `#[task_local_data]` statics become, scoped
//! hints, keys created at run time, the types hints may have, and the registry of statics.

pub(crate) mod c_type;
pub mod consistent;
pub(crate) mod dynamic;
pub(crate) mod registry;
pub(crate) mod scoped;
pub(crate) mod task_local;
pub(crate) mod types;
