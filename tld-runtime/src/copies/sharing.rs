//! [`Sharing`]: how this copy of the runtime relates to the other copies in the process.

use crate::error::Error;

/// How this copy of the runtime relates to the other copies in the process, as
/// [`Status::sharing`](crate::Status::sharing) reports it.
///
/// Every object that links `tld-runtime` (the executable, each Rust shared object such as a
/// plugin or a Python extension, `libtld`) has a copy of it. The first copy to need the runtime
/// serves the whole process, and every other copy joins it: one metadata page, one layout and
/// one page and registration per thread, which every part's hints share. See the crate
/// documentation, "One runtime per process".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sharing {
    /// This copy serves the process: the copies in other objects join it.
    Serving,
    /// This copy joined the runtime that another copy serves. Its hints live in the pages of
    /// that runtime, next to every other part's.
    Joined,
    /// This copy keeps its hints to itself and never registers a thread, because of `reason`
    /// (typically [`Error::OtherRuntime`]: another copy serves the process with a protocol
    /// this one does not speak). Its hints work as plain thread-locals.
    Isolated {
        /// Why it could not join.
        reason: Error,
    },
    /// This copy serves on its own without knowing whether other copies exist, because it
    /// could not look for them (`reason`: no memfd, no free address, no `/proc/self/maps`).
    /// Another copy in the process would register the same threads with pages of its own.
    Unshared {
        /// Why it could not look.
        reason: Error,
    },
}

impl std::fmt::Display for Sharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sharing::Serving => write!(f, "this copy serves the process"),
            Sharing::Joined => write!(f, "this copy joined the process's runtime"),
            Sharing::Isolated { reason } => write!(f, "this copy is isolated: {reason}"),
            Sharing::Unshared { reason } => {
                write!(f, "this copy serves without looking for others: {reason}")
            }
        }
    }
}
