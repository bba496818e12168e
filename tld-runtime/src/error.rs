//! [`Error`]: everything that can go wrong, with the errno where the kernel gave one.

use std::fmt;
use std::path::PathBuf;

use crate::declare::registry::Site;

/// Why the runtime could not do what was asked.
///
/// Errors never stop hints from working: a thread whose page could not be registered keeps its
/// values as a plain thread-local. [`crate::status`] reports the same errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing is pinned at the path: no BPF program has created and pinned a `tld_data_map` yet.
    #[error("no tld_data_map is pinned at {}", path.display())]
    MapNotFound {
        /// The pin path that was tried.
        path: PathBuf,
    },

    /// The kernel refused for lack of privilege: EPERM or EACCES.
    #[error("permission denied while {op}: {}", Errno(*errno))]
    PermissionDenied {
        /// What the runtime was doing.
        op: &'static str,
        /// EPERM or EACCES.
        errno: i32,
    },

    /// The map given is not a task local data map.
    #[error("the map is not a tld_data_map: {reason}")]
    NotATldMap {
        /// What does not match.
        reason: String,
    },

    /// The running kernel lacks a feature the runtime needs.
    #[error("the kernel does not support {what} (needs Linux {needs}): {}", Errno(*errno))]
    Unsupported {
        /// The missing feature.
        what: &'static str,
        /// The first kernel version that has it.
        needs: &'static str,
        /// What the kernel answered.
        errno: i32,
    },

    /// A system call failed.
    #[error("{op} failed: {}", Errno(*errno))]
    Os {
        /// What the runtime was doing.
        op: &'static str,
        /// The errno.
        errno: i32,
    },

    /// Two hints in one binary have the same key. Neither can be published, since a BPF program
    /// could not tell them apart; all hints stay thread-local.
    #[error("duplicate task local data key \"{key}\": declared by {first} and by {second}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// One declaration.
        first: &'static Site,
        /// The other declaration.
        second: &'static Site,
    },

    /// The hints do not fit in the data area of one page.
    #[error(
        "the hints need {needed} bytes per thread, but a {page_size}-byte page has a data area \
         of {available} bytes"
    )]
    TooLarge {
        /// Bytes the hints need (each rounded up to 8).
        needed: usize,
        /// Bytes available.
        available: usize,
        /// The page size.
        page_size: usize,
    },

    /// More hints than the metadata page has entries for.
    #[error("{count} hints are declared, but the metadata page holds at most {max}")]
    TooManyKeys {
        /// Keys declared.
        count: usize,
        /// Entries available.
        max: usize,
    },

    /// A hint's declaration breaks a rule of the wire format.
    #[error("hint {site} is invalid: {reason}")]
    InvalidHint {
        /// The declaration.
        site: &'static Site,
        /// The rule broken.
        reason: String,
    },

    /// A key of that name exists already in this process (EEXIST).
    #[error("task local data key \"{key}\" exists already")]
    KeyExists {
        /// The key.
        key: String,
    },

    /// The value no longer fits in the page's data area (E2BIG).
    #[error(
        "task local data key \"{key}\" needs {size} bytes, but only {available} are left in the \
         page's data area"
    )]
    NoRoom {
        /// The key.
        key: String,
        /// Bytes asked for (rounded up to 8).
        size: usize,
        /// Bytes left.
        available: usize,
    },

    /// Every metadata entry is taken (ENOSPC).
    #[error("no metadata entry is left for task local data key \"{key}\" (all {max} are taken)")]
    NoSlots {
        /// The key.
        key: String,
        /// Entries a metadata page holds.
        max: usize,
    },

    /// A key name or size breaks a rule of the wire format (EINVAL).
    #[error("invalid task local data key \"{key}\": {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// The rule broken.
        reason: String,
    },

    /// No map is connected, and auto-connect is switched off.
    #[error("not connected to a tld_data_map (auto-connect is off: TLD_MAP_PATH is empty)")]
    AutoConnectDisabled,

    /// The calling thread is exiting; its hints are no longer registered.
    #[error("the calling thread is exiting")]
    ThreadExiting,

    /// The calling thread is in the middle of its own setup or teardown: the call came from a
    /// signal handler or a thread-local destructor that interrupted it.
    #[error("the calling thread is being set up or torn down (a re-entrant call)")]
    ThreadBusy,

    /// A consistent hint could not be read or written (EAGAIN): a BPF program held its claim
    /// without moving for all of [`consistent::MAX_WAIT`](crate::declare::consistent::MAX_WAIT) (a writer
    /// that stopped in the middle of a write), or, for a write, this is a signal handler that
    /// interrupted the thread's own write of the hint. Nothing was written; `get` still returns
    /// the last whole value.
    #[error(
        "the consistent hint \"{key}\" is held by a writer that does not move: a BPF program \
         held its claim for {} µs (a writer stopped mid-write?), or a signal handler interrupted \
         this thread's own write",
        crate::page::seqlock::MAX_WAIT.as_micros()
    )]
    HintBusy {
        /// The hint's key.
        key: &'static str,
    },
    /// Another copy of the runtime serves this process (a shared object or the executable
    /// linked another version of `tld-runtime`) and speaks a protocol this copy does not. This
    /// copy never registers a thread over it: its hints work as plain thread-locals. See
    /// [`Sharing::Isolated`](crate::Sharing::Isolated).
    #[error(
        "another copy of the task local data runtime serves this process with protocol \
         {protocol}; this copy speaks protocol {supported}, so its hints stay thread-local"
    )]
    OtherRuntime {
        /// The protocol of the copy that serves the process.
        protocol: u32,
        /// The protocol of this copy.
        supported: u32,
    },

    /// An error that the copy serving the process reported, of a kind this copy does not know
    /// (the serving copy is a newer version of the same protocol).
    #[error("{message}")]
    Remote {
        /// The serving copy's description of it.
        message: String,
        /// The errno, if there was one.
        errno: Option<i32>,
    },
}

impl Error {
    /// The errno the kernel gave, if this error came from a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::PermissionDenied { errno, .. }
            | Error::Unsupported { errno, .. }
            | Error::Os { errno, .. } => Some(*errno),
            Error::MapNotFound { .. } => Some(libc::ENOENT),
            Error::KeyExists { .. } => Some(libc::EEXIST),
            Error::NoRoom { .. } => Some(libc::E2BIG),
            Error::NoSlots { .. } => Some(libc::ENOSPC),
            Error::InvalidKey { .. } => Some(libc::EINVAL),
            Error::HintBusy { .. } => Some(libc::EAGAIN),
            Error::Remote { errno, .. } => *errno,
            _ => None,
        }
    }

    /// Classifies a failed system call.
    pub(crate) fn from_errno(op: &'static str, errno: i32) -> Error {
        match errno {
            libc::EPERM | libc::EACCES => Error::PermissionDenied { op, errno },
            _ => Error::Os { op, errno },
        }
    }
}

/// Displays an errno as `ENAME (message)`.
struct Errno(i32);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::ESRCH => "ESRCH",
            libc::EBADF => "EBADF",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EAGAIN => "EAGAIN",
            libc::EEXIST => "EEXIST",
            libc::EINVAL => "EINVAL",
            libc::ENOSPC => "ENOSPC",
            libc::ENOSYS => "ENOSYS",
            libc::E2BIG => "E2BIG",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            _ => "errno",
        };
        write!(f, "{name} ({})", std::io::Error::from_raw_os_error(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_errno() {
        let e = Error::from_errno("opening the pinned map", libc::EACCES);
        assert_eq!(e.errno(), Some(libc::EACCES));
        let text = e.to_string();
        assert!(text.starts_with("permission denied while opening the pinned map: EACCES"));
        let e = Error::from_errno("pidfd_open", libc::ESRCH);
        assert!(matches!(
            e,
            Error::Os {
                errno: libc::ESRCH,
                ..
            }
        ));
    }
}
