//! A thread's life with the runtime: its first access (a block and a registration), its exit
//! (the block goes back to the pool, retired), and `fork()`.
//!
//! # fork
//!
//! A child has only the thread that forked, and inherits every lock in the state it had. So
//! the prepare handler takes all of the runtime's locks (and waits for a runtime being built),
//! and both after-fork handlers release them: the child never finds one held by a thread that
//! does not exist in it. The kernel does not copy task storage, so none of the child's pages
//! are registered; the child's handler registers its one thread, with system calls only, and
//! allocates nothing (the prepare handler reserved what it needs).

use std::cell::RefCell;
use std::sync::{MutexGuard, RwLockWriteGuard};

use crate::connection::ConnState;
use crate::metadata::MetaPage;
use crate::pool::{self, PagePool};
use crate::runtime::{self, lock, read, runtime, write, Runtime};
use crate::sys;
use crate::thread_state::{self, Phase};
use crate::thread_table::{ThreadRecord, ThreadTable};

thread_local! {
    /// Its destructor releases the thread's block when the thread exits.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
    /// The locks the forking thread holds between the prepare and after-fork handlers.
    static FORK_LOCKS: RefCell<Option<ForkLocks>> = const { RefCell::new(None) };
}

struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if let Some(rt) = runtime::get() {
            exit_current_thread(rt);
        }
    }
}

/// Gives the calling thread its block and registers it, if it has none yet. Never fails: a
/// thread that cannot get a block or be registered keeps working (see `status()`).
///
/// Re-entrant calls (from a signal handler or a thread-local destructor that interrupts the
/// setup) return at once: the thread is `Busy`.
pub(crate) fn enter_thread() {
    if thread_state::phase() != Phase::New {
        return;
    }
    thread_state::set_phase(Phase::Busy);
    let phase = setup();
    thread_state::set_phase(phase);
}

/// The setup of a new thread; returns the phase it ends in.
fn setup() -> Phase {
    let rt = runtime();
    // The guard must exist before the block, so that its destructor runs at thread exit. If
    // thread-locals are already being torn down, taking a block would leak it: don't.
    if EXIT_GUARD.try_with(|_| ()).is_err() {
        return Phase::Exited;
    }
    let Ok(block) = lock(&rt.pool).take() else {
        // No memory: the next access tries again.
        return Phase::New;
    };
    // SAFETY: `block` is a whole block of `block_size` bytes that no thread uses (it came from
    // the pool); the template has `block_size` bytes; the two do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            rt.layout.template.as_ptr(),
            block as *mut u8,
            rt.layout.block_size,
        )
    };
    let tid = sys::gettid();
    let slot = lock(&rt.threads).insert(ThreadRecord {
        tid,
        block,
        registered: 0,
        exposed: false,
    });
    thread_state::attach(block as *mut u8, slot);
    // A failure is recorded for `status()`; the hints work regardless.
    let _ = rt.register(slot, tid, block, false);
    Phase::Active
}

/// Releases the calling thread's block: deletes its element, retires its pages, and returns it
/// to the pool. From here on the thread's hints live in fallback storage.
fn exit_current_thread(rt: &'static Runtime) {
    thread_state::set_phase(Phase::Busy);
    if let Some((_, slot)) = thread_state::detach() {
        // Bound first: the table's lock must be released before the connection's is taken.
        let record = lock(&rt.threads).remove(slot);
        if let Some(record) = record {
            if record.registered != 0 {
                let map = {
                    let conn = read(&rt.conn);
                    conn.map
                        .clone()
                        .filter(|_| conn.generation == record.registered)
                };
                if let Some(map) = map {
                    // Best effort: retirement below isolates the block anyway, and the kernel
                    // frees the element when the task goes.
                    let _ = map.unregister(record.tid);
                }
            }
            release(rt, &record);
        }
    }
    thread_state::set_phase(Phase::Exited);
}

/// Returns a block that its thread no longer uses to the pool, retiring its pages first if any
/// element may name them.
fn release(rt: &Runtime, record: &ThreadRecord) {
    // Exposed by this thread's own registration (noted in its thread state), or by a connect
    // that registered it (noted in its record).
    let exposed = record.exposed || thread_state::exposed();
    if exposed && rt.knobs.retire_pages {
        // SAFETY: the block's thread has detached it and removed its record, and the block is
        // not in the pool: nobody uses it.
        if !unsafe { pool::retire(record.block, rt.layout.block_size) } {
            // Never reuse a block that BPF might still reach.
            return;
        }
    }
    lock(&rt.pool).put(record.block);
}

/// Registers the `fork()` handlers. Called once, while the runtime is built.
pub(crate) fn install_fork_handlers() {
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
    rt: &'static Runtime,
    conn: RwLockWriteGuard<'static, ConnState>,
    _meta: Option<MutexGuard<'static, MetaPage>>,
    threads: MutexGuard<'static, ThreadTable>,
    pool: MutexGuard<'static, PagePool>,
}

/// `fork()` prepare handler: takes every lock, in the runtime's order, and reserves what the
/// child's handler needs.
extern "C" fn before_fork() {
    let init = runtime::init_lock();
    let held = runtime::get().map(|rt| {
        let conn = write(&rt.conn);
        let meta = rt.meta.as_ref().ok().map(lock);
        let mut threads = lock(&rt.threads);
        let mut pool = lock(&rt.pool);
        threads.reserve_for_fork();
        pool.reserve(threads.len());
        Held {
            rt,
            conn,
            _meta: meta,
            threads,
            pool,
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

/// `fork()` child handler: keeps only the forking thread, frees every other thread's block (the
/// child's private copies, which nothing pins), registers the thread, and releases the locks.
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
        rt,
        mut conn,
        _meta,
        mut threads,
        mut pool,
    } = held;
    // No watcher thread survives fork.
    conn.watching = false;
    conn.generation += 1;
    let generation = conn.generation;
    rt.generation
        .store(generation, std::sync::atomic::Ordering::Relaxed);
    // The child's copy of the thread's page is its own: no element names it.
    thread_state::clear_exposed();
    let me = thread_state::current_slot();
    threads.keep_only(me, sys::gettid(), |block| pool.put(block));
    let (Some(slot), Some(map), Ok(meta)) = (me, conn.map.clone(), rt.published()) else {
        return;
    };
    let Some(record) = threads.get(slot).copied() else {
        return;
    };
    thread_state::mark_exposed();
    match map.register(record.tid, record.block as u64, meta) {
        Ok(()) => threads.mark_registered(slot, generation),
        Err(e) => conn.last_error = Some(e),
    }
}
