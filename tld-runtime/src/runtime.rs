//! The process-wide runtime: it builds the layout once, gives threads their pages, and keeps
//! them registered with the connected map.
//!
//! Layers, each using only those before it: registry → layout (and metadata page) → thread
//! pages → kernel map. This module ties them together and holds the only global state.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::error::Error;
use crate::kernel::TldMap;
use crate::layout::Layout;
use crate::metadata::MetaPage;
use crate::pages::{self, Pages};
use crate::registry;
use crate::status::{Connection, MapSource, Status};
use crate::sys;

/// Where libbpf's `LIBBPF_PIN_BY_NAME` pins a map named `tld_data_map`.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/tld_data_map";
/// Environment variable naming the pin path for auto-connect; empty switches auto-connect off.
pub const PIN_PATH_ENV: &str = "TLD_MAP_PATH";

struct Runtime {
    layout: Layout,
    /// The published metadata page, or why the layout could not be published.
    meta: Result<MetaPage, Error>,
    pages: Pages,
    conn: Mutex<ConnState>,
}

#[derive(Default)]
struct ConnState {
    map: Option<TldMap>,
    source: Option<MapSource>,
    /// Bumped on every new map; a thread is registered when its record carries the current one.
    generation: u64,
    /// `connect` or `connect_pinned` was called: auto-connect no longer runs.
    explicit: bool,
    /// Why the last attempt failed, while no map is connected.
    failure: Option<Error>,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        let layout = Layout::build(registry::collect(), sys::page_size());
        Runtime {
            meta: layout.publish(),
            pages: Pages::new(layout.block_size),
            layout,
            conn: Mutex::new(ConnState::default()),
        }
    })
}

thread_local! {
    /// Its destructor releases the thread's page when the thread exits.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if let Some(rt) = RUNTIME.get() {
            rt.exit_current_thread();
        }
    }
}

/// Gives the calling thread its page and registers it, if it has none yet. Never fails: a
/// thread that cannot get a page or be registered keeps working (see [`status`]).
pub(crate) fn enter_thread() {
    if !pages::current_block().is_null() || pages::current_thread_exited() {
        return;
    }
    let rt = runtime();
    // The guard must exist before the block, so that its destructor runs at thread exit. If
    // thread-locals are already being torn down, taking a block would leak it: don't.
    if EXIT_GUARD.try_with(|_| ()).is_err() {
        return;
    }
    if rt.pages.attach_current_thread(&rt.layout.template).is_ok() {
        // A failure is recorded for `status()`; the hints work regardless.
        let _ = rt.register_current();
    }
}

impl Runtime {
    fn lock_conn(&self) -> MutexGuard<'_, ConnState> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the calling thread (already attached) with the map, connecting first through
    /// auto-connect if nothing is connected.
    fn register_current(&self) -> Result<(), Error> {
        let meta = self.meta.as_ref().map_err(Clone::clone)?;
        let mut conn = self.lock_conn();
        if conn.map.is_none() {
            // Connecting registers every live thread, this one included.
            return self.auto_connect(&mut conn, meta);
        }
        let tid = sys::gettid();
        let gen = conn.generation;
        let map = conn.map.as_ref().expect("checked above");
        let record = self
            .pages
            .with_threads(|t| t.iter().find(|r| r.tid == tid).copied());
        match record {
            Some(r) if r.registered == gen => Ok(()),
            Some(r) => {
                map.register(r.tid, r.block as u64, meta.addr())?;
                self.pages.with_threads(|t| {
                    if let Some(r) = t.iter_mut().find(|r| r.tid == tid) {
                        r.registered = gen;
                    }
                });
                Ok(())
            }
            None => Err(Error::ThreadExiting),
        }
    }

    fn auto_connect(&self, conn: &mut ConnState, meta: &MetaPage) -> Result<(), Error> {
        if conn.explicit {
            return Err(conn.failure.clone().unwrap_or(Error::AutoConnectDisabled));
        }
        let Some(path) = auto_connect_path() else {
            conn.failure = Some(Error::AutoConnectDisabled);
            return Err(Error::AutoConnectDisabled);
        };
        match TldMap::open_pinned(&path) {
            Ok(map) => self.install(conn, meta, map, MapSource::Pinned(path)),
            Err(e) => {
                conn.failure = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Makes `map` the connected map and registers every live thread in it.
    fn install(
        &self,
        conn: &mut ConnState,
        meta: &MetaPage,
        map: TldMap,
        source: MapSource,
    ) -> Result<(), Error> {
        conn.generation += 1;
        let gen = conn.generation;
        // Registering from this thread works for every thread of the process: the pages are
        // this process's memory, and a pidfd names the thread.
        let result = self.pages.with_threads(|threads| {
            let mut first_error = None;
            for r in threads.iter_mut() {
                match map.register(r.tid, r.block as u64, meta.addr()) {
                    Ok(()) => r.registered = gen,
                    // The thread is exiting; its record is about to go.
                    Err(e) if e.errno() == Some(libc::ESRCH) => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            first_error.map_or(Ok(()), Err)
        });
        match result {
            Ok(()) => {
                conn.map = Some(map);
                conn.source = Some(source);
                conn.failure = None;
                Ok(())
            }
            Err(e) => {
                conn.map = None;
                conn.source = None;
                conn.failure = Some(e.clone());
                Err(e)
            }
        }
    }

    fn connect(
        &self,
        open: impl FnOnce() -> Result<(TldMap, MapSource), Error>,
    ) -> Result<(), Error> {
        let mut conn = self.lock_conn();
        conn.explicit = true;
        let result = self.meta.as_ref().map_err(Clone::clone).and_then(|meta| {
            let (map, source) = open()?;
            self.install(&mut conn, meta, map, source)
        });
        if let Err(e) = &result {
            conn.map = None;
            conn.source = None;
            conn.failure = Some(e.clone());
        }
        result
    }

    fn exit_current_thread(&self) {
        let Some(record) = self.pages.detach_current_thread() else {
            return;
        };
        if record.registered != 0 {
            let conn = self.lock_conn();
            if let Some(map) = conn
                .map
                .as_ref()
                .filter(|_| conn.generation == record.registered)
            {
                // Best effort: if this fails, the kernel frees the storage when the task goes.
                let _ = map.unregister(record.tid);
            }
        }
        // Only after the delete may the page start its wait for reuse.
        self.pages.release(record);
    }

    fn status(&self) -> Status {
        let conn = self.lock_conn();
        let connection = match (&conn.map, &conn.source, &conn.failure, &self.meta) {
            (_, _, _, Err(problem)) => Connection::Detached {
                reason: problem.clone(),
            },
            (Some(map), Some(source), _, _) => Connection::Connected {
                map_id: map.id(),
                map_name: map.name(),
                source: source.clone(),
            },
            (_, _, Some(failure), _) => Connection::Detached {
                reason: failure.clone(),
            },
            _ => Connection::NotAttempted,
        };
        let gen = conn.generation;
        let registered = if conn.map.is_some() {
            self.pages
                .with_threads(|t| t.iter().filter(|r| r.registered == gen).count())
        } else {
            0
        };
        drop(conn);
        let (live, total, _, _) = self.pages.counts();
        Status {
            connection,
            hints: self.layout.entries.len(),
            published_keys: self.meta.as_ref().map_or(0, MetaPage::count),
            data_bytes: self.layout.data_used,
            page_size: self.layout.page_size,
            live_threads: live,
            registered_threads: registered,
            pool_pages: total * (self.layout.block_size / self.layout.page_size),
        }
    }
}

/// The pin path auto-connect tries, or `None` when `TLD_MAP_PATH` is set and empty.
fn auto_connect_path() -> Option<PathBuf> {
    match std::env::var_os(PIN_PATH_ENV) {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => Some(PathBuf::from(DEFAULT_PIN_PATH)),
    }
}

/// Uses `map`, a `tld_data_map`, from now on, and registers every thread that has a page.
///
/// The fd is duplicated; the caller keeps its own. Typically `skel.maps.tld_data_map.as_fd()`
/// right after loading the BPF skeleton. Calling it again with another map (a restarted
/// scheduler) moves every thread to the new map. Auto-connect stops once this is called.
///
/// On error the runtime stays detached, [`status`] says why, and hints keep working as
/// thread-locals.
pub fn connect(map: BorrowedFd<'_>) -> Result<(), Error> {
    runtime().connect(|| Ok((TldMap::from_fd(map)?, MapSource::Fd)))
}

/// Opens the `tld_data_map` pinned at `path` in bpffs and connects to it, as [`connect`] does.
pub fn connect_pinned(path: impl AsRef<Path>) -> Result<(), Error> {
    let path = path.as_ref();
    runtime().connect(|| {
        Ok((
            TldMap::open_pinned(path)?,
            MapSource::Pinned(path.to_path_buf()),
        ))
    })
}

/// Gives the calling thread its page now and registers it, or says why it is not registered.
///
/// Threads are set up on their first hint access anyway; call this to do it at a time of your
/// choosing, or to learn the reason. Without an explicit [`connect`], this tries auto-connect:
/// the pin path in `TLD_MAP_PATH`, else `/sys/fs/bpf/tld_data_map`.
pub fn thread_init() -> Result<(), Error> {
    if pages::current_thread_exited() {
        return Err(Error::ThreadExiting);
    }
    enter_thread();
    if pages::current_block().is_null() {
        return Err(Error::ThreadExiting);
    }
    runtime().register_current()
}

/// A snapshot of the runtime's state: whether it is connected, and if not, why.
pub fn status() -> Status {
    runtime().status()
}
