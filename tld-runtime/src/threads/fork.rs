//! `fork()`: a child that never hangs, and whose thread is registered with its own page.
//!
//! A child has only the thread that forked, and inherits every lock in the state it had. So
//! the prepare handler takes all of the runtime's locks, in the runtime's order (and first
//! [`init_lock`], to wait for a runtime being built), and both after-fork handlers release
//! them: the child never finds one held by a thread that does not exist in it. Holding the
//! connection's write lock also means that no thread is halfway through changing its record in
//! the thread table. The pool has no lock: a block that another thread was taking or returning
//! at the moment of the fork may be lost to the child, which costs it a page and nothing else.
//!
//! The kernel does not copy task storage, so none of the child's pages are registered; the
//! child's handler keeps only the forking thread, frees the other threads' blocks (the child's
//! private copies, which nothing pins) and registers its one thread, with system calls only. It
//! allocates nothing.
//!
//! The handlers reach the runtime's state through [`Targets`], which the runtime hands over
//! when it is built.

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock, RwLockWriteGuard};

use crate::kernel::connection_state::ConnState;
use crate::kernel::sys;
use crate::locks::{lock, write};
use crate::page::metadata::MetaPage;
use crate::threads::pool::PagePool;
use crate::threads::thread_state;
use crate::threads::thread_table::ThreadTable;

/// Held while the runtime is built, and by the prepare handler, so that a child is never
/// forked in the middle of the build (it would wait for it forever).
static INIT: Mutex<()> = Mutex::new(());

/// The runtime's state, once it is built.
static TARGETS: OnceLock<Targets> = OnceLock::new();

thread_local! {
    /// The locks the forking thread holds between the prepare and after-fork handlers.
    static FORK_LOCKS: RefCell<Option<ForkLocks>> = const { RefCell::new(None) };
}

/// The lock that the runtime's build holds.
pub(crate) fn init_lock() -> MutexGuard<'static, ()> {
    lock(&INIT)
}

/// What of the runtime the handlers lock and reset.
pub(crate) struct Targets {
    pub conn: &'static RwLock<ConnState>,
    pub meta: Option<&'static Mutex<MetaPage>>,
    /// The published metadata page's address, if there is one.
    pub meta_addr: Option<u64>,
    /// Where the data area starts in a thread's page.
    pub start: usize,
    pub threads: &'static ThreadTable,
    pub pool: &'static PagePool,
}

/// Hands the runtime's state to the handlers and registers them. Called once, while the
/// runtime is built (under [`init_lock`]).
pub(crate) fn install(targets: Targets) {
    if TARGETS.set(targets).is_err() {
        return;
    }
    // SAFETY: the handlers are `extern "C"` functions that live forever, never unwind, and only
    // take the runtime's own locks.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_parent),
            Some(after_fork_child),
        )
    };
}

/// Every lock of the runtime, held across `fork()`.
struct ForkLocks {
    _init: MutexGuard<'static, ()>,
    held: Option<Held>,
}

struct Held {
    targets: &'static Targets,
    conn: RwLockWriteGuard<'static, ConnState>,
    _meta: Option<MutexGuard<'static, MetaPage>>,
}

/// `fork()` prepare handler: takes every lock, in the runtime's order.
extern "C" fn before_fork() {
    let init = init_lock();
    let held = TARGETS.get().map(|targets| {
        let conn = write(targets.conn);
        let meta = targets.meta.map(lock);
        Held {
            targets,
            conn,
            _meta: meta,
        }
    });
    let locks = ForkLocks { _init: init, held };
    let _ = FORK_LOCKS.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            *l = Some(locks);
        }
    });
}

/// `fork()` parent handler: releases the locks.
extern "C" fn after_fork_parent() {
    let _ = FORK_LOCKS.try_with(|l| l.try_borrow_mut().map(|mut l| l.take()));
}

/// `fork()` child handler: resets the runtime for the child, and releases the locks.
extern "C" fn after_fork_child() {
    let Ok(Some(locks)) =
        FORK_LOCKS.try_with(|l| l.try_borrow_mut().ok().and_then(|mut l| l.take()))
    else {
        return;
    };
    if let Some(held) = locks.held {
        child_reset(held);
    }
}

fn child_reset(held: Held) {
    let Held {
        targets,
        mut conn,
        _meta,
    } = held;
    let (threads, pool) = (targets.threads, targets.pool);
    // No watcher thread survives fork.
    conn.watching = false;
    conn.generation += 1;
    let generation = conn.generation;
    // The child's copy of the thread's page is its own: no element names it.
    thread_state::clear_exposed();
    let me = thread_state::current_slot();
    pool.forget_growth();
    threads.keep_only(me, sys::gettid(), |block| pool.put(block));
    let (Some(slot), Some(meta)) = (me, targets.meta_addr) else {
        return;
    };
    let Some(record) = threads.get(slot) else {
        return;
    };
    if !conn.has_maps() {
        return;
    }
    thread_state::mark_exposed();
    let mut failure = None;
    for map in conn.maps() {
        if let Err(e) = map.register(record.tid, record.block.addr() as u64, meta, targets.start) {
            failure.get_or_insert(e);
        }
    }
    match failure {
        None => threads.mark_registered(slot, generation),
        Some(e) => conn.last_error = Some(e),
    }
}
