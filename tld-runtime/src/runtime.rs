//! The process-wide runtime: the one piece of global state, built on first use, and the public
//! functions that act on it.
//!
//! Layers, each using only those before it: registry → layout (and metadata page) → thread
//! pages (pool, thread table, thread state) → kernel map. The runtime holds one of each; the
//! connection to the kernel ([`crate::connection`]), the threads' lives
//! ([`crate::lifecycle`]) and run-time keys ([`crate::dynamic`]) act on it.
//!
//! # Locks
//!
//! Always taken in this order, never the other way: `conn` → `meta` → `threads` → `pool`.
//! `fork()`'s prepare handler takes all of them (after [`init_lock`]), so that a child never
//! inherits one held by a thread that does not exist in it.
//!
//! `conn` is a read-write lock: threads that register or exit only read the connection, and
//! must not queue behind each other on a machine with more threads than CPUs (a thread woken
//! from a lock's queue may wait milliseconds for a CPU). Each critical section is a few
//! instructions; no system call is made under `threads` or `pool` in the paths every thread
//! takes.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, Once, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::connection::ConnState;
use crate::error::Error;
use crate::kernel::TldMap;
use crate::layout::Layout;
use crate::lifecycle;
use crate::metadata::MetaPage;
use crate::pool::PagePool;
use crate::registry;
use crate::status::{Connection, MapSource, Status};
use crate::sys;
use crate::thread_state::{self, Phase};
use crate::thread_table::ThreadTable;

/// Environment variable that switches page retirement off when set to `0`. For tests that show
/// what goes wrong without it; never set it in production.
pub const RETIRE_ENV: &str = "TLD_TESTING_RETIRE_PAGES";
/// Environment variable that, set to `0`, leaves threads' elements in a map the runtime moves
/// away from (as if deleting them had failed). For tests; never set it in production.
pub const CLEAN_OLD_MAPS_ENV: &str = "TLD_TESTING_CLEAN_OLD_MAPS";

pub(crate) struct Runtime {
    pub layout: Layout,
    /// The published metadata page, or why the layout could not be published.
    pub meta: Result<Mutex<MetaPage>, Error>,
    /// The metadata page's address (fixed for the process's life), 0 if none.
    pub meta_addr: u64,
    pub conn: RwLock<ConnState>,
    /// `conn.generation`, also readable under the table's lock alone: changed only by a
    /// holder of both locks.
    pub generation: AtomicU64,
    pub threads: Mutex<ThreadTable>,
    pub pool: Mutex<PagePool>,
    pub knobs: Knobs,
}

/// Mechanisms that tests can switch off, to show that the tests catch what they prevent.
pub(crate) struct Knobs {
    /// Retire a block's physical pages when its thread leaves it (see [`crate::pool`]).
    pub retire_pages: bool,
    /// Delete threads' elements from a map the runtime moves away from.
    pub clean_old_maps: bool,
}

impl Knobs {
    fn from_env() -> Knobs {
        let on = |var: &str| std::env::var_os(var).is_none_or(|v| v != "0");
        Knobs {
            retire_pages: on(RETIRE_ENV),
            clean_old_maps: on(CLEAN_OLD_MAPS_ENV),
        }
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Held while the runtime is built, and by `fork()`'s prepare handler, so that a child is never
/// forked in the middle of the build (it would wait for it forever).
static INIT: Mutex<()> = Mutex::new(());

/// Locks a mutex, recovering from poisoning: every critical section here leaves its data
/// consistent at each step, so a panic elsewhere cannot leave it half-changed.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a read lock, recovering from poisoning as [`lock`] does.
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

/// Takes a write lock, recovering from poisoning as [`lock`] does.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// The lock that the runtime's build holds.
pub(crate) fn init_lock() -> MutexGuard<'static, ()> {
    lock(&INIT)
}

/// The runtime, if it has been built.
pub(crate) fn get() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// The runtime, built on first use.
pub(crate) fn runtime() -> &'static Runtime {
    match RUNTIME.get() {
        Some(rt) => rt,
        None => build(),
    }
}

#[cold]
fn build() -> &'static Runtime {
    let _init = init_lock();
    static FORK_HANDLERS: Once = Once::new();
    FORK_HANDLERS.call_once(lifecycle::install_fork_handlers);
    RUNTIME.get_or_init(|| {
        let layout = Layout::build(registry::collect(), sys::page_size());
        let meta = layout.publish();
        let meta_addr = meta.as_ref().map_or(0, MetaPage::addr);
        Runtime {
            meta: meta.map(Mutex::new),
            meta_addr,
            conn: RwLock::new(ConnState::default()),
            generation: AtomicU64::new(0),
            threads: Mutex::new(ThreadTable::new()),
            pool: Mutex::new(PagePool::new(layout.block_size)),
            layout,
            knobs: Knobs::from_env(),
        }
    })
}

impl Runtime {
    /// The metadata page's address, or why nothing is published.
    pub fn published(&self) -> Result<u64, Error> {
        self.meta
            .as_ref()
            .map(|_| self.meta_addr)
            .map_err(Clone::clone)
    }

    fn status(&self) -> Status {
        let conn = read(&self.conn);
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
        let last_error = conn.last_error.clone();
        let threads = lock(&self.threads);
        let registered = match conn.map {
            Some(_) => threads.registered_in(conn.generation),
            None => 0,
        };
        let live = threads.len();
        drop(threads);
        drop(conn);
        let pool_blocks = lock(&self.pool).total();
        let (published_keys, data_bytes) = match &self.meta {
            Ok(meta) => {
                let meta = lock(meta);
                (meta.count(), meta.used())
            }
            Err(_) => (0, self.layout.plan.data_used),
        };
        Status {
            connection,
            last_error,
            hints: self.layout.entries.len(),
            published_keys,
            data_bytes,
            data_capacity: self.layout.page_size - self.layout.plan.start,
            page_size: self.layout.page_size,
            live_threads: live,
            registered_threads: registered,
            pool_pages: pool_blocks * (self.layout.block_size / self.layout.page_size),
        }
    }
}

/// Uses `map`, a `tld_data_map`, from now on, and registers every thread that has a page.
///
/// The fd is duplicated; the caller keeps its own. Typically `skel.maps.tld_data_map.as_fd()`
/// right after loading the BPF skeleton. Calling it again with another map (a restarted
/// scheduler) moves every thread to the new map, with its values, and deletes the threads'
/// elements in the old one. Auto-connect stops once this succeeds.
///
/// The change is all or nothing: if the map is not a `tld_data_map` ([`Error::NotATldMap`]) or
/// a thread cannot be registered in it, the elements made so far in it are deleted, and the
/// previous connection, if there was one, stays exactly as it was. Without a previous
/// connection the runtime stays detached, [`status`] says why, and hints keep working as
/// thread-locals.
pub fn connect(map: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
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
/// `TLD_WATCH_INTERVAL_MS` in the crate documentation.
pub fn connect_pinned(path: impl AsRef<Path>) -> Result<(), Error> {
    let rt = runtime();
    let path = path.as_ref();
    rt.connect(|conn| rt.connect_pin(conn, path))
}

/// Gives the calling thread its page now and registers it, or says why it is not registered.
///
/// Threads are set up on their first hint access anyway; call this to do it at a time of your
/// choosing, or to learn the reason. Without an explicit [`connect`], this tries auto-connect:
/// the pin path in `TLD_MAP_PATH`, else `/sys/fs/bpf/tld_data_map`.
pub fn thread_init() -> Result<(), Error> {
    lifecycle::enter_thread();
    match (thread_state::phase(), thread_state::current_slot()) {
        (Phase::Active, Some(slot)) => {
            let rt = runtime();
            let record = lock(&rt.threads).get(slot).copied();
            let Some(record) = record else {
                return Err(Error::ThreadExiting);
            };
            let registered = {
                let conn = read(&rt.conn);
                conn.map.is_some() && record.registered == conn.generation
            };
            if registered {
                return Ok(());
            }
            rt.register(slot, record.tid, record.block, true)
        }
        // Called while this thread is being set up (from a signal handler, say).
        (Phase::Busy, _) => Err(Error::ThreadBusy),
        (Phase::New, _) => Err(Error::Os {
            op: "mapping a page for the thread",
            errno: libc::ENOMEM,
        }),
        _ => Err(Error::ThreadExiting),
    }
}

/// A snapshot of the runtime's state: whether it is connected, and if not, why.
pub fn status() -> Status {
    runtime().status()
}
