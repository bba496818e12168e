//! Errors that stop a command, each with the exit status it maps to.
//!
//! A page that cannot be decoded does not stop anything: it is a per-task error
//! ([`crate::decode::DecodeError`]) and the other tasks still print.

use std::fmt;
use std::io;

/// Exit status: a command failed (no map, not a task local data map, no such task, ...).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: the command line is wrong (clap's own status).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: tld lacks a privilege it needs (`EX_NOPERM` of sysexits.h).
pub const EXIT_NO_PERMISSION: u8 = 77;

/// Why a command cannot run.
#[derive(Debug)]
pub enum Error {
    /// The process lacks a capability (or file permission) that the action needs.
    Privilege {
        /// What tld was doing, e.g. "loading the task iterator".
        action: String,
        /// What it needs, naming the capabilities.
        needs: String,
        /// The errno the kernel returned, if it got that far.
        errno: Option<i32>,
    },
    /// No map at the pin path.
    NoPin {
        /// The path tried.
        path: String,
        /// Where the path came from ("--pin", "TLD_MAP_PATH", "the default").
        origin: &'static str,
    },
    /// No map with that id.
    NoMapId(u32),
    /// The object is a map, but not one whose elements are task local data.
    NotTldMap {
        /// Which map.
        map: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing matched what the command asked for.
    NotFound(String),
    /// A system call failed.
    Io {
        /// What tld was doing.
        action: String,
        /// The error.
        source: io::Error,
    },
    /// Loading or running the BPF iterator failed for another reason.
    Bpf {
        /// What tld was doing.
        action: String,
        /// libbpf's and the verifier's account.
        detail: String,
    },
    /// Any other failure, already worded for the user.
    Other(String),
}

impl Error {
    /// The exit status this error maps to.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Privilege { .. } => EXIT_NO_PERMISSION,
            _ => EXIT_FAILURE,
        }
    }

    /// An I/O error while doing `action`; permission errors become [`Error::Privilege`] with
    /// `needs` as the remedy.
    pub fn io(action: impl Into<String>, source: io::Error, needs: &str) -> Error {
        let action = action.into();
        match source.raw_os_error() {
            Some(e @ (libc::EPERM | libc::EACCES)) => Error::Privilege {
                action,
                needs: needs.to_string(),
                errno: Some(e),
            },
            _ => Error::Io { action, source },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Privilege {
                action,
                needs,
                errno,
            } => {
                write!(f, "permission denied: {action} needs {needs}")?;
                if let Some(e) = errno {
                    write!(f, " ({})", io::Error::from_raw_os_error(*e))?;
                }
                Ok(())
            }
            Error::NoPin { path, origin } => write!(
                f,
                "no BPF object is pinned at {path} ({origin}); load the scheduler or tool that \
                 pins tld_data_map, or choose a map with --pin PATH or --map-id ID \
                 (`tld maps` lists the candidates)"
            ),
            Error::NoMapId(id) => write!(f, "no BPF map has id {id} (`tld maps` lists them)"),
            Error::NotTldMap { map, reason } => {
                write!(f, "{map} is not a task local data map: {reason}")
            }
            Error::NotFound(what) => f.write_str(what),
            Error::Io { action, source } => write!(f, "{action}: {source}"),
            Error::Bpf { action, detail } => write!(f, "{action} failed: {detail}"),
            Error::Other(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}
