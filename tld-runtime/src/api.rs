//! The process-level functions: connecting to a map, registering the calling thread, and the
//! runtime's status.

use std::path::Path;

use crate::copies::role;
use crate::error::Error;
use crate::kernel::tld_map::TldMap;
use crate::locks::read;
use crate::runtime::runtime;
use crate::status::{MapSource, Status};
use crate::threads::lifecycle;
use crate::threads::thread_state::{self, Phase};

/// Uses `map`, a `tld_data_map`, from now on, and registers every thread that has a page.
///
/// The fd is duplicated; the caller keeps its own. Typically `skel.maps.tld_data_map.as_fd()`
/// right after loading the BPF skeleton. Calling it again with another map (a restarted
/// scheduler) moves every thread to the new map, with its values, and deletes the threads'
/// elements in the old one. Auto-connect stops once this succeeds.
///
/// A `tld_data_map`'s value is one of the two generations of the format: `{data, meta}` (16
/// bytes: Linux 6.18, scx) or `{data, meta, __u16 start}` (24 bytes: Linux 7.x). The runtime
/// reads which from the map's BTF (or its size), sends exactly that value, and says which in
/// [`status`]; any other value is [`Error::NotATldMap`].
///
/// The change is all or nothing: if the map is not a `tld_data_map` ([`Error::NotATldMap`]) or
/// a thread cannot be registered in it, the elements made so far in it are deleted, and the
/// previous connection, if there was one, stays exactly as it was. Without a previous
/// connection the runtime stays detached, [`status`] says why, and hints keep working as
/// thread-locals.
///
/// In a process where several copies of the runtime share one (see the crate documentation),
/// this connects that one runtime, whichever part calls it. A part whose own hints could not
/// be published (a key that another part has) connects the process all the same, and then
/// returns that problem.
pub fn connect(map: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
    match role::guest() {
        Some(guest) => guest.connect(map),
        None => local_connect(map),
    }
}

/// [`connect`] in this copy's own runtime.
pub(crate) fn local_connect(map: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
    let rt = runtime();
    rt.connect(|conn| {
        let map = TldMap::from_fd(map)?;
        rt.install(conn, map, MapSource::Fd)
    })
}

/// Opens the `tld_data_map` pinned at `path` in bpffs and connects to it, as [`connect`] does.
///
/// The runtime then keeps following the path: if the pin is replaced (a restarted scheduler)
/// every thread moves to the new map, and if it goes away the runtime lets the map go. See
/// `TLD_WATCH_INTERVAL_MS` and [`set_watcher`] in the crate documentation.
pub fn connect_pinned(path: impl AsRef<Path>) -> Result<(), Error> {
    match role::guest() {
        Some(guest) => guest.connect_pinned(path.as_ref()),
        None => local_connect_pinned(path.as_ref()),
    }
}

/// [`connect_pinned`] in this copy's own runtime.
pub(crate) fn local_connect_pinned(path: &Path) -> Result<(), Error> {
    let rt = runtime();
    rt.connect(|conn| rt.connect_pin(conn, path))
}

/// Registers every thread in `map` as well as in the connected map: for a second BPF program
/// with a `tld_data_map` of its own, such as a tracer beside a scheduler, or a program that
/// speaks the other generation of the format (each map's value tells the runtime what its
/// readers need; see [`crate::page::wire::Generation`]).
///
/// The fd is duplicated. From then on every thread is registered in this map too, for the
/// process's life; [`connect`] and the pin watcher change only the main connection. Adding a
/// map already connected does nothing. All or nothing, as [`connect`]: if the map is not a
/// `tld_data_map`, or a thread cannot be registered in it, nothing changes.
pub fn connect_also(map: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
    let rt = runtime();
    let mut conn = crate::locks::write(&rt.conn);
    rt.published()?;
    let map = TldMap::from_fd(map)?;
    rt.install_also(&mut conn, map)
}

/// Gives the calling thread its page now and registers it, or says why it is not registered.
///
/// Threads are set up on their first hint access anyway; call this to do it at a time of your
/// choosing, or to learn the reason. Without an explicit [`connect`], this tries auto-connect:
/// the pin path in `TLD_MAP_PATH`, else `/sys/fs/bpf/tld_data_map`.
pub fn thread_init() -> Result<(), Error> {
    match role::guest() {
        Some(guest) => guest.thread_init(),
        None => local_thread_init(),
    }
}

/// [`thread_init`] in this copy's own runtime.
pub(crate) fn local_thread_init() -> Result<(), Error> {
    lifecycle::enter_thread();
    match (thread_state::phase(), thread_state::current_slot()) {
        (Phase::Active, Some(slot)) => {
            let rt = runtime();
            let (record, registered) = {
                let conn = read(&rt.conn);
                let record = rt.threads.get(slot);
                let registered =
                    record.is_some_and(|r| conn.has_maps() && r.registered == conn.generation);
                (record, registered)
            };
            let Some(record) = record else {
                return Err(Error::ThreadExiting);
            };
            if registered {
                return Ok(());
            }
            rt.register(slot, record.tid, record.block, true)
        }
        // Called while this thread is being set up (from a signal handler, say).
        (Phase::Busy, _) => Err(Error::ThreadBusy),
        (Phase::New, _) => Err(lifecycle::no_block_error()),
        _ => Err(Error::ThreadExiting),
    }
}

/// A snapshot of the runtime's state: whether it is connected, and if not, why.
///
/// Every part of a process that shares one runtime reports the same runtime
/// ([`Status::runtime_id`], [`Status::parts`]), with its own [`Status::sharing`] and its own
/// count of [`Status::hints`].
pub fn status() -> Status {
    match role::guest() {
        Some(guest) => guest.status(),
        None => runtime().status(),
    }
}

/// Allows the watcher thread (`on`), or stops it and keeps it from starting (`!on`).
///
/// The watcher (a thread named `tld-watch`, see the crate documentation) follows the pin path
/// of the map: it connects to a pin that appears, moves every thread to a pin that replaces
/// it, and lets go of one that goes away; it also follows the guard's events. Without it,
/// the runtime connects only at a thread's first registration and at [`connect`] or
/// [`connect_pinned`], and stays on the map it has until you call one again.
///
/// Switching it off stops a running watcher at its next wake (within the watch interval,
/// one second by default); switching it on starts one if there is something to follow. The
/// environment variable `TLD_WATCH_INTERVAL_MS=0` keeps it off whatever this says.
/// [`Status::watcher`] says whether it runs.
pub fn set_watcher(on: bool) {
    match role::guest() {
        Some(guest) => guest.set_watcher(on),
        None => local_set_watcher(on),
    }
}

/// [`set_watcher`] in this copy's own runtime.
pub(crate) fn local_set_watcher(on: bool) {
    crate::kernel::connection::allow_watcher(on);
    // A runtime not built yet starts its watcher when it connects, if allowed then.
    if let Some(rt) = crate::runtime::get() {
        rt.set_watcher(on);
    }
}
