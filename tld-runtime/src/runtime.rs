//! The process-wide runtime: the one piece of global state, built on first use, and the public
//! functions that act on it.
//!
//! Layers, each using only those before it: registry → layout (and metadata page) → thread
//! pages (pool, thread table, thread state) → kernel map. The runtime holds one of each; the
//! connection to the kernel ([`crate::kernel::connection`]), the threads' lives
//! ([`crate::threads::lifecycle`]), `fork()` ([`crate::threads::fork`]) and run-time keys ([`crate::declare::dynamic`])
//! act on it, and [`crate::api`] is the public face.
//!
//! A copy of the crate builds this runtime only when it serves the process, or runs on its own
//! ([`crate::copies::role`]); a copy that joined another one has none, and the parts that joined this
//! one are in [`crate::copies::parts`].
//!
//! # Locks
//!
//! Two locks, always taken in this order: `conn` → `meta`. `fork()`'s prepare handler takes
//! both (after [`fork::init_lock`]), so that a child never inherits one held by a thread that
//! does not exist in it. Two more, `parts` and `template`, are only ever taken while `conn` is
//! held, for reading under its read lock and for writing under its write lock (in the order
//! `conn` → `parts` → `meta` → `template`): nobody holds them when `fork()`'s handler holds
//! `conn`.
//!
//! The paths every thread takes, its first access and its exit, take only `conn`'s read lock,
//! which readers share: a thread never waits for another one to register or exit. The pool and
//! the thread table have no lock at all ([`crate::threads::pool`], [`crate::threads::thread_table`]); on a
//! machine with more threads than CPUs, a thread preempted while holding a lock that others
//! need stalls them all for as long as it waits for a CPU, milliseconds when hundreds of
//! threads are runnable. A thread inserts and removes its record in the thread table, and notes
//! its registration there, under `conn`'s read lock; connecting, detaching and the forked child
//! walk the table under the write lock, so they see every record whole and nothing changes
//! under them. The connection's generation, which a connect increments under the write lock,
//! tells a registration made outside the lock whether a connect came in between.

use std::sync::{Mutex, OnceLock, RwLock};

use crate::copies::host;
use crate::copies::parts::Parts;
use crate::copies::role::{self, Role};
use crate::declare::registry;
use crate::error::Error;
use crate::kernel::connection_state::{ConnState, RegistrationErrors};
use crate::kernel::sys;
use crate::locks::{lock, read};
use crate::page::layout::Layout;
use crate::page::metadata::MetaPage;
use crate::status::{Connection, MapStatus, Status};
use crate::threads::fork;
use crate::threads::pool::PagePool;
use crate::threads::thread_table::ThreadTable;

/// Environment variable that switches page retirement off when set to `0`. Read only in a
/// build with the `testing` feature, for tests that show what goes wrong without retirement.
#[cfg(feature = "testing")]
pub const RETIRE_ENV: &str = "TLD_TESTING_RETIRE_PAGES";
/// Environment variable that, set to `0`, leaves threads' elements in a map the runtime moves
/// away from (as if deleting them had failed). Read only in a build with the `testing` feature.
#[cfg(feature = "testing")]
pub const CLEAN_OLD_MAPS_ENV: &str = "TLD_TESTING_CLEAN_OLD_MAPS";

pub(crate) struct Runtime {
    pub layout: Layout,
    /// The published metadata page, or why the layout could not be published.
    pub meta: Result<Mutex<MetaPage>, Error>,
    /// The metadata page's address (fixed for the process's life), 0 if none.
    pub meta_addr: u64,
    pub conn: RwLock<ConnState>,
    pub threads: ThreadTable,
    pub pool: PagePool,
    pub knobs: Knobs,
    /// A new thread's block: the layout's template, with the initial values of the hints of
    /// the parts that joined since (see [`crate::copies::parts`]).
    pub template: RwLock<Box<[u8]>>,
    /// The parts that joined this runtime, and who declared which key.
    pub parts: RwLock<Parts>,
    /// Threads' registrations that failed, for `status()`.
    pub registration_errors: RegistrationErrors,
}

/// Mechanisms that tests can switch off, to show that the tests catch what they prevent. Only a
/// build with the `testing` feature (tests only) reads the switches; any other build has both
/// always on, whatever the environment says.
pub(crate) struct Knobs {
    /// Retire a block's physical pages when its thread leaves it (see [`crate::threads::pool`]).
    pub retire_pages: bool,
    /// Delete threads' elements from a map the runtime moves away from.
    pub clean_old_maps: bool,
}

impl Knobs {
    /// Both mechanisms on, unless a test build's environment switches one off.
    #[cfg(feature = "testing")]
    fn from_env() -> Knobs {
        let on = |var: &str| std::env::var_os(var).is_none_or(|v| v != "0");
        Knobs {
            retire_pages: on(RETIRE_ENV),
            clean_old_maps: on(CLEAN_OLD_MAPS_ENV),
        }
    }

    /// Both mechanisms on: a build without the `testing` feature reads no switch.
    #[cfg(not(feature = "testing"))]
    fn from_env() -> Knobs {
        Knobs {
            retire_pages: true,
            clean_old_maps: true,
        }
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

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
    let _init = fork::init_lock();
    if let Some(rt) = RUNTIME.get() {
        return rt;
    }
    let rt = RUNTIME.get_or_init(|| {
        let layout = Layout::build(registry::collect(), sys::page_size());
        let meta = match role::role() {
            // Another copy serves the process: never publish or register anything over it.
            Role::Isolated(reason) => Err(reason.clone()),
            Role::Joined(_) => Err(Error::OtherRuntime {
                protocol: crate::copies::protocol::PROTOCOL,
                supported: crate::copies::protocol::PROTOCOL,
            }),
            Role::Serving | Role::Unshared(_) => layout.publish(),
        };
        let meta_addr = meta.as_ref().map_or(0, MetaPage::addr);
        let mut parts = Parts::default();
        if meta.is_ok() {
            for e in &layout.entries {
                parts.own(e.hint.site(), e.hint.size(), e.hint.consistent());
            }
        }
        Runtime {
            template: RwLock::new(layout.template.clone().into_boxed_slice()),
            parts: RwLock::new(parts),
            meta: meta.map(Mutex::new),
            meta_addr,
            conn: RwLock::new(ConnState::default()),
            threads: ThreadTable::new(),
            pool: {
                let pool = PagePool::new(layout.block_size);
                // Best effort: if it fails, the first thread that needs a block tries again.
                let _ = pool.prepare();
                pool
            },
            layout,
            knobs: Knobs::from_env(),
            registration_errors: RegistrationErrors::default(),
        }
    });
    fork::install(fork::Targets {
        conn: &rt.conn,
        meta: rt.meta.as_ref().ok(),
        meta_addr: rt.published().ok(),
        start: rt.layout.plan.start,
        threads: &rt.threads,
        pool: &rt.pool,
    });
    rt
}

impl Runtime {
    /// The metadata page's address, or why nothing is published.
    pub fn published(&self) -> Result<u64, Error> {
        self.meta
            .as_ref()
            .map(|_| self.meta_addr)
            .map_err(Clone::clone)
    }

    pub fn status(&self) -> Status {
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
        let guard_repairs = conn.guard_repairs;
        let watcher = conn.watching;
        let generation = conn.map.as_ref().map(|m| m.generation());
        let additional_maps = conn
            .also
            .iter()
            .map(|m| MapStatus {
                map_id: m.id(),
                map_name: m.name(),
                generation: m.generation(),
            })
            .collect();
        let registered = match conn.has_maps() {
            true => self.threads.registered_in(conn.generation),
            false => 0,
        };
        let live = self.threads.len();
        let parts = read(&self.parts).count();
        drop(conn);
        let pool_blocks = self.pool.total();
        let (registration_failures, last_registration_error) = self.registration_errors.snapshot();
        let (published_keys, data_bytes) = match &self.meta {
            Ok(meta) => {
                let meta = lock(meta);
                (meta.count(), meta.used())
            }
            Err(_) => (0, self.layout.plan.data_used),
        };
        Status {
            connection,
            generation,
            additional_maps,
            guard_repairs,
            watcher,
            registration_failures,
            last_registration_error,
            last_error,
            hints: self.layout.entries.len(),
            published_keys,
            data_bytes,
            data_capacity: self.layout.page_size - self.layout.plan.start,
            page_size: self.layout.page_size,
            live_threads: live,
            registered_threads: registered,
            pool_pages: pool_blocks * (self.layout.block_size / self.layout.page_size),
            sharing: role::role().sharing(),
            parts,
            runtime_id: host::table_address(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Knobs;

    /// Without the `testing` feature, the switches' variables change nothing.
    #[cfg(not(feature = "testing"))]
    #[test]
    fn switches_are_ignored_without_the_testing_feature() {
        std::env::set_var("TLD_TESTING_RETIRE_PAGES", "0");
        std::env::set_var("TLD_TESTING_CLEAN_OLD_MAPS", "0");
        let knobs = Knobs::from_env();
        assert!(knobs.retire_pages && knobs.clean_old_maps);
    }

    /// With it, they switch the mechanisms off.
    #[cfg(feature = "testing")]
    #[test]
    fn switches_work_with_the_testing_feature() {
        std::env::set_var(super::RETIRE_ENV, "0");
        std::env::set_var(super::CLEAN_OLD_MAPS_ENV, "0");
        let knobs = Knobs::from_env();
        assert!(!knobs.retire_pages && !knobs.clean_old_maps);
        std::env::remove_var(super::RETIRE_ENV);
        std::env::remove_var(super::CLEAN_OLD_MAPS_ENV);
    }
}
