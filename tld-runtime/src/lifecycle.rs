//! A thread's life with the runtime: its first access (a block and a registration) and its
//! exit (the block goes back to the pool, retired). What happens at `fork()` is in
//! [`crate::fork`].

use crate::locks::{lock, read};
use crate::pool;
use crate::runtime::{self, runtime, Runtime};
use crate::sys;
use crate::thread_state::{self, Phase};
use crate::thread_table::ThreadRecord;

thread_local! {
    /// Its destructor releases the thread's block when the thread exits.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
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
    let Ok(block) = pool::take_block(&rt.pool, rt.layout.block_size) else {
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
