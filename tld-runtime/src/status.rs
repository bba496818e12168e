//! [`Status`]: what the runtime is doing, and why it is not connected when it is not.

use std::fmt;
use std::path::PathBuf;

use crate::copies::sharing::Sharing;
use crate::error::Error;
use crate::page::wire::Generation;

/// Where the connected map came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapSource {
    /// Given to [`crate::connect`].
    Fd,
    /// Opened from a bpffs pin, by [`crate::connect_pinned`] or by auto-connect.
    Pinned(PathBuf),
}

/// The runtime's link to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Connection {
    /// Nothing has been tried yet: no thread has touched a hint, and neither [`crate::connect`]
    /// nor [`crate::thread_init`] has run.
    NotAttempted,
    /// Threads' pages are registered in this map.
    Connected {
        /// The kernel's id of the map (as `bpftool map show id N` shows it).
        map_id: u32,
        /// The map's name.
        map_name: String,
        /// Where it came from.
        source: MapSource,
    },
    /// Hints work as plain thread-locals, because of `reason`.
    Detached {
        /// Why the runtime is not connected.
        reason: Error,
    },
}

/// A map that threads are registered in, with the generation of the format its readers speak.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapStatus {
    /// The kernel's id of the map.
    pub map_id: u32,
    /// The map's name.
    pub map_name: String,
    /// Which generation of the format the map's value is, and so where its readers find
    /// `start`.
    pub generation: Generation,
}

/// A snapshot of the runtime's state. Get one with [`crate::status`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// The link to the kernel.
    pub connection: Connection,
    /// The generation of the format the connected map speaks (`None` while detached): the
    /// runtime writes what its readers need (`start` in the value for 7.x, and always in the
    /// page for 6.18).
    pub generation: Option<Generation>,
    /// Maps threads are registered in as well, from [`crate::connect_also`].
    pub additional_maps: Vec<MapStatus>,
    /// How many times the runtime registered every thread again because the guard
    /// (`tld-guard`) reported that another process had registered pages for its threads.
    pub guard_repairs: u64,
    /// Whether the watcher thread (`tld-watch`) runs: it follows the pin path (a pin that
    /// appears, is replaced or goes away) and the guard's events. Started on the first hint
    /// access or `connect*` when there is something to follow; switched off by
    /// [`crate::set_watcher`] or `TLD_WATCH_INTERVAL_MS=0` (see the crate documentation).
    pub watcher: bool,
    /// Threads' registrations that failed (a thread's page that could not be registered in a
    /// map), in the process's life. The hints of such a thread work as thread-locals, and
    /// BPF does not see them until it is registered again (by a later connect, or the
    /// watcher).
    pub registration_failures: u64,
    /// Why the last of those failed.
    pub last_registration_error: Option<Error>,
    /// Why the last attempt to change the connection failed (a `connect` to a bad map, a
    /// replaced pin that could not be used), while the previous map stayed connected.
    pub last_error: Option<Error>,
    /// Hints declared in this binary.
    pub hints: usize,
    /// Keys published in the metadata page, where BPF can find them.
    pub published_keys: usize,
    /// Data bytes per thread that the hints use.
    pub data_bytes: usize,
    /// Data bytes a thread's page has room for (the page less its header).
    pub data_capacity: usize,
    /// The page size, which bounds the data area.
    pub page_size: usize,
    /// Threads that currently have a page.
    pub live_threads: usize,
    /// Of those, threads registered with the connected map.
    pub registered_threads: usize,
    /// Pages that threads have used: held by a thread now, or free for the next one. Never
    /// more than the most threads that held a page at once. Address space that the runtime
    /// reserves for pages ahead of need is not counted: it holds no memory until a thread
    /// writes it.
    pub pool_pages: usize,
    /// How this copy of the runtime relates to the other copies in the process (a plugin's,
    /// libtld's): serving them, joined to one, or on its own, and why.
    pub sharing: Sharing,
    /// Copies of the runtime that share it, this one included: 1 for a process with one.
    pub parts: usize,
    /// The identity of the runtime this copy uses: the same number in every part that shares
    /// it, another one in a copy that runs on its own.
    pub runtime_id: u64,
}

impl Status {
    /// Whether threads' pages are being registered with a map.
    pub fn is_connected(&self) -> bool {
        matches!(self.connection, Connection::Connected { .. })
    }

    /// Why the runtime is not connected, if it is not and has tried.
    pub fn reason(&self) -> Option<&Error> {
        match &self.connection {
            Connection::Detached { reason } => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.connection {
            Connection::NotAttempted => write!(f, "not connected yet (nothing tried)")?,
            Connection::Connected {
                map_id,
                map_name,
                source,
            } => {
                write!(f, "connected to map \"{map_name}\" (id {map_id})")?;
                if let MapSource::Pinned(path) = source {
                    write!(f, " pinned at {}", path.display())?;
                }
                if let Some(generation) = self.generation {
                    write!(f, ", format of {generation}")?;
                }
            }
            Connection::Detached { reason } => write!(f, "detached: {reason}")?,
        }
        for m in &self.additional_maps {
            write!(
                f,
                "; also map \"{}\" (id {}), format of {}",
                m.map_name, m.map_id, m.generation
            )?;
        }
        if let Some(e) = &self.last_error {
            write!(f, " (the last change failed: {e})")?;
        }
        write!(
            f,
            "; {} hints ({} published, {} of {} data bytes); {} of {} live threads registered",
            self.hints,
            self.published_keys,
            self.data_bytes,
            self.data_capacity,
            self.registered_threads,
            self.live_threads
        )?;
        if self.registration_failures > 0 {
            write!(
                f,
                "; {} thread registrations failed",
                self.registration_failures
            )?;
            if let Some(e) = &self.last_registration_error {
                write!(f, " (the last: {e})")?;
            }
        }
        write!(
            f,
            "; {}",
            match self.watcher {
                true => "watcher thread running",
                false => "no watcher thread",
            }
        )?;
        match &self.sharing {
            Sharing::Serving | Sharing::Joined if self.parts > 1 => {
                write!(
                    f,
                    "; one runtime for {} parts ({})",
                    self.parts, self.sharing
                )
            }
            Sharing::Serving | Sharing::Joined => Ok(()),
            other => write!(f, "; {other}"),
        }
    }
}
