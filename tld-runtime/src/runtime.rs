//! The process-wide runtime: it builds the layout once, gives threads their pages, and keeps
//! them registered with the connected map, across thread exit, `fork()`, and map restarts.
//!
//! Layers, each using only those before it: registry → layout (and metadata page) → thread
//! pages → kernel map. This module ties them together and holds the only global state.

use std::cell::RefCell;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::error::Error;
use crate::kernel::TldMap;
use crate::layout::{self, Layout};
use crate::metadata::{MetaPage, Published};
use crate::pages::{self, Pages, PagesForkLock};
use crate::registry;
use crate::status::{Connection, MapSource, Status};
use crate::sys;

/// Where libbpf's `LIBBPF_PIN_BY_NAME` pins a map named `tld_data_map`.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/tld_data_map";
/// Environment variable naming the pin path for auto-connect; empty switches auto-connect off.
pub const PIN_PATH_ENV: &str = "TLD_MAP_PATH";
/// Environment variable setting how often, in milliseconds, the watcher looks at the pin path;
/// 0 switches the watcher off. The default is 1000.
pub const WATCH_INTERVAL_ENV: &str = "TLD_WATCH_INTERVAL_MS";

struct Runtime {
    layout: Layout,
    /// The published metadata page, or why the layout could not be published.
    meta: Result<Mutex<MetaPage>, Error>,
    /// The metadata page's address (fixed for the process's life).
    meta_addr: u64,
    pages: Pages,
    conn: Mutex<ConnState>,
}

#[derive(Default)]
struct ConnState {
    /// Shared so that a thread can register itself without holding the lock.
    map: Option<Arc<TldMap>>,
    source: Option<MapSource>,
    /// Identity (device, inode) of the pin the map was opened from, to notice a new pin.
    pin_identity: Option<(u64, u64)>,
    /// Bumped on every new map; a thread is registered when its record carries the current one.
    generation: u64,
    /// `connect` or `connect_pinned` was called: auto-connect no longer runs.
    explicit: bool,
    /// Why the last attempt failed, while no map is connected.
    failure: Option<Error>,
    /// A watcher thread is following the pin path.
    watching: bool,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        let layout = Layout::build(registry::collect(), sys::page_size());
        let meta = layout.publish();
        let meta_addr = meta.as_ref().map_or(0, MetaPage::addr);
        // SAFETY: the handlers are `extern "C"` functions that live forever and only take the
        // runtime's own locks (see `before_fork`).
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_parent),
                Some(after_fork_child),
            )
        };
        Runtime {
            meta: meta.map(Mutex::new),
            meta_addr,
            pages: Pages::new(layout.block_size),
            layout,
            conn: Mutex::new(ConnState::default()),
        }
    })
}

/// Locks a mutex, recovering from poisoning: every critical section here leaves its data
/// consistent at each step, so a panic elsewhere cannot leave it half-changed.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// Its destructor releases the thread's page when the thread exits.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
    /// The locks the forking thread holds between `before_fork` and the after-fork handlers.
    static FORK_LOCKS: RefCell<Option<(MutexGuard<'static, ConnState>, PagesForkLock)>> =
        const { RefCell::new(None) };
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
    if let Ok(record) = rt.pages.attach_current_thread(&rt.layout.template) {
        // A failure is recorded for `status()`; the hints work regardless.
        let _ = rt.register(record, false);
    }
}

impl Runtime {
    fn lock_conn(&self) -> MutexGuard<'_, ConnState> {
        lock(&self.conn)
    }

    /// The metadata page's address, or why nothing is published.
    fn published(&self) -> Result<u64, Error> {
        self.meta
            .as_ref()
            .map(|_| self.meta_addr)
            .map_err(Clone::clone)
    }

    /// Registers the calling thread (already attached) with the map, as [`Runtime::register`],
    /// trying auto-connect even while the watcher is waiting for a pin.
    fn register_current(&'static self) -> Result<(), Error> {
        let block = pages::current_block() as usize;
        let record = self.pages.with_threads(|t| t.get(&block).copied());
        self.register(record.ok_or(Error::ThreadExiting)?, true)
    }

    /// Registers the calling thread, whose record is `record`, with the map, connecting first
    /// through auto-connect if nothing is connected. While the watcher waits for a pin to
    /// appear, a new thread leaves the looking to it (`retry` false), which saves a syscall.
    fn register(&'static self, record: pages::ThreadRecord, retry: bool) -> Result<(), Error> {
        let meta = self.published()?;
        let (map, gen) = {
            let mut conn = self.lock_conn();
            match &conn.map {
                None if !retry && conn.watching => {
                    return Err(conn.failure.clone().unwrap_or(Error::AutoConnectDisabled))
                }
                // Connecting registers every live thread, this one included.
                None => return self.auto_connect(&mut conn),
                Some(_) if record.registered == conn.generation => return Ok(()),
                Some(map) => (map.clone(), conn.generation),
            }
        };
        // The syscalls run without the lock, so that new threads register in parallel. A
        // `connect()` in between registers this thread in its own map by itself.
        map.register(record.tid, record.block as u64, meta)?;
        self.pages.with_threads(|t| {
            if let Some(r) = t.get_mut(&record.block) {
                r.registered = r.registered.max(gen);
            }
        });
        Ok(())
    }

    fn auto_connect(&'static self, conn: &mut ConnState) -> Result<(), Error> {
        if conn.explicit {
            return Err(conn.failure.clone().unwrap_or(Error::AutoConnectDisabled));
        }
        let Some(path) = auto_connect_path() else {
            conn.failure = Some(Error::AutoConnectDisabled);
            return Err(Error::AutoConnectDisabled);
        };
        let result = self.connect_pin(conn, &path);
        self.start_watcher(conn);
        result
    }

    /// Opens the map pinned at `path` and makes it the connected map.
    fn connect_pin(&self, conn: &mut ConnState, path: &Path) -> Result<(), Error> {
        let identity = pin_identity(path);
        let result = TldMap::open_pinned(path)
            .and_then(|map| self.install(conn, map, MapSource::Pinned(path.to_path_buf())));
        match &result {
            Ok(()) => conn.pin_identity = identity,
            Err(e) => self.detach(conn, e.clone()),
        }
        result
    }

    /// Makes `map` the connected map and registers every live thread in it, from this thread:
    /// that works for every thread of the process, since the pages are this process's memory
    /// and a pidfd names the thread.
    fn install(&self, conn: &mut ConnState, map: TldMap, source: MapSource) -> Result<(), Error> {
        let meta = self.published()?;
        conn.generation += 1;
        let gen = conn.generation;
        let result = self.pages.with_threads(|threads| {
            let mut first_error = None;
            for r in threads.values_mut() {
                match map.register(r.tid, r.block as u64, meta) {
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
                conn.map = Some(Arc::new(map));
                conn.source = Some(source);
                conn.failure = None;
                Ok(())
            }
            Err(e) => {
                self.detach(conn, e.clone());
                Err(e)
            }
        }
    }

    /// Drops the map (the kernel then frees its elements and unpins the pages) and records why.
    fn detach(&self, conn: &mut ConnState, reason: Error) {
        conn.map = None;
        conn.source = None;
        conn.pin_identity = None;
        conn.failure = Some(reason);
    }

    fn connect(
        &'static self,
        open: impl FnOnce(&mut ConnState) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut conn = self.lock_conn();
        conn.explicit = true;
        let result = self.published().and_then(|_| open(&mut conn));
        if let Err(e) = &result {
            self.detach(&mut conn, e.clone());
        }
        self.start_watcher(&mut conn);
        result
    }

    /// Starts the thread that follows the pin path, if the connection has one to follow.
    fn start_watcher(&'static self, conn: &mut ConnState) {
        if conn.watching || watch_interval().is_none() || self.watched_path(conn).is_none() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("tld-watch".into())
            .stack_size(64 * 1024)
            .spawn(move || self.watch());
        conn.watching = spawned.is_ok();
    }

    /// The pin path the watcher follows: the one connected to, or auto-connect's.
    fn watched_path(&self, conn: &ConnState) -> Option<PathBuf> {
        match &conn.source {
            Some(MapSource::Pinned(path)) => Some(path.clone()),
            Some(MapSource::Fd) => None,
            None if conn.explicit => match &conn.failure {
                Some(Error::MapNotFound { path }) => Some(path.clone()),
                _ => None,
            },
            None => auto_connect_path(),
        }
    }

    /// The watcher's loop: a `stat` of the pin path per interval. A pin that appears is
    /// connected to, a pin that is replaced (a restarted scheduler) is reconnected to, and a pin
    /// that goes away is let go of. It never touches a hint, so it has no page of its own.
    fn watch(&'static self) {
        let Some(interval) = watch_interval() else {
            return;
        };
        loop {
            std::thread::sleep(interval);
            let mut conn = self.lock_conn();
            let Some(path) = self.watched_path(&conn) else {
                conn.watching = false;
                return;
            };
            let now = pin_identity(&path);
            if now == conn.pin_identity {
                continue;
            }
            match now {
                None => self.detach(&mut conn, Error::MapNotFound { path }),
                Some(_) => {
                    // A failure is recorded in the state for `status()`.
                    let _ = self.connect_pin(&mut conn, &path);
                }
            }
        }
    }

    fn exit_current_thread(&self) {
        let Some(record) = self.pages.detach_current_thread() else {
            return;
        };
        if record.registered != 0 {
            let map = {
                let conn = self.lock_conn();
                conn.map
                    .clone()
                    .filter(|_| conn.generation == record.registered)
            };
            if let Some(map) = map {
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
                .with_threads(|t| t.values().filter(|r| r.registered == gen).count())
        } else {
            0
        };
        drop(conn);
        let (live, total) = self.pages.counts();
        let (published_keys, data_bytes) = match &self.meta {
            Ok(meta) => {
                let meta = lock(meta);
                (meta.count(), meta.used())
            }
            Err(_) => (0, self.layout.plan.data_used),
        };
        Status {
            connection,
            hints: self.layout.entries.len(),
            published_keys,
            data_bytes,
            data_capacity: self.layout.page_size - self.layout.plan.start,
            page_size: self.layout.page_size,
            live_threads: live,
            registered_threads: registered,
            pool_pages: total * (self.layout.block_size / self.layout.page_size),
        }
    }
}

/// `fork()` prepare handler: holds the runtime's locks so that the child gets consistent state.
extern "C" fn before_fork() {
    if let Some(rt) = RUNTIME.get() {
        let conn = rt.lock_conn();
        let pages = rt.pages.lock_for_fork();
        let _ = FORK_LOCKS.try_with(|l| *l.borrow_mut() = Some((conn, pages)));
    }
}

/// `fork()` parent handler: releases the locks.
extern "C" fn after_fork_parent() {
    let _ = FORK_LOCKS.try_with(|l| l.borrow_mut().take());
}

/// `fork()` child handler. The kernel does not copy task storage, so none of the child's pages
/// are registered, and the child has only the forking thread. Its hot path never comes back to
/// the runtime (it has a page), so it is registered here, with syscalls only.
extern "C" fn after_fork_child() {
    let Some(rt) = RUNTIME.get() else { return };
    let Ok(Some((mut conn, mut pages))) = FORK_LOCKS.try_with(|l| l.borrow_mut().take()) else {
        return;
    };
    // No watcher thread survives fork.
    conn.watching = false;
    conn.generation += 1;
    let gen = conn.generation;
    if let (Some(record), Some(map), Ok(meta)) = (pages.reset_in_child(), &conn.map, rt.published())
    {
        match map.register(record.tid, record.block as u64, meta) {
            Ok(()) => pages.set_registered(record.block, gen),
            Err(e) => conn.failure = Some(e),
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

/// How often the watcher looks, or `None` if it is off.
fn watch_interval() -> Option<Duration> {
    let ms = std::env::var(WATCH_INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1000);
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// The (device, inode) of the pin at `path`, if there is one.
fn pin_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Creates a key at run time; see [`crate::DynamicKey::create`].
pub(crate) fn create_key(name: &str, size: usize) -> Result<Published, Error> {
    let rt = runtime();
    let invalid = |reason: String| Error::InvalidKey {
        key: name.to_string(),
        reason,
    };
    layout::check_key(name).map_err(invalid)?;
    if size == 0 || size > u16::MAX as usize {
        return Err(invalid(format!("size {size} is not in 1..=65535")));
    }
    let meta = rt.meta.as_ref().map_err(Clone::clone)?;
    let mut meta = lock(meta);
    if meta.entries().iter().any(|e| e.name == name) {
        return Err(Error::KeyExists {
            key: name.to_string(),
        });
    }
    if meta.count() >= meta.capacity() {
        return Err(Error::NoSlots {
            key: name.to_string(),
            max: meta.capacity(),
        });
    }
    let available = meta.available();
    if layout::round8(size) > available {
        return Err(Error::NoRoom {
            key: name.to_string(),
            size: layout::round8(size),
            available,
        });
    }
    let offset = meta.publish(name, size);
    Ok(Published {
        name: name.to_string(),
        size,
        offset,
    })
}

/// Finds a published key, static or dynamic.
pub(crate) fn find_key(name: &str) -> Option<Published> {
    let meta = runtime().meta.as_ref().ok()?;
    let meta = lock(meta);
    meta.entries().iter().find(|e| e.name == name).cloned()
}

/// Uses `map`, a `tld_data_map`, from now on, and registers every thread that has a page.
///
/// The fd is duplicated; the caller keeps its own. Typically `skel.maps.tld_data_map.as_fd()`
/// right after loading the BPF skeleton. Calling it again with another map (a restarted
/// scheduler) moves every thread to the new map, with its values. Auto-connect stops once this
/// is called.
///
/// On error the runtime stays detached, [`status`] says why, and hints keep working as
/// thread-locals.
pub fn connect(map: BorrowedFd<'_>) -> Result<(), Error> {
    runtime().connect(|conn| {
        let map = TldMap::from_fd(map)?;
        runtime().install(conn, map, MapSource::Fd)
    })
}

/// Opens the `tld_data_map` pinned at `path` in bpffs and connects to it, as [`connect`] does.
///
/// The runtime then keeps following the path: if the pin is replaced (a restarted scheduler)
/// every thread moves to the new map, and if it goes away the runtime lets the map go. See
/// `TLD_WATCH_INTERVAL_MS` in the crate documentation.
pub fn connect_pinned(path: impl AsRef<Path>) -> Result<(), Error> {
    let path = path.as_ref();
    runtime().connect(|conn| runtime().connect_pin(conn, path))
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
