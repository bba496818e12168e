//! A thread's life with the runtime: its first access (a block and a registration) and its
//! exit (the block goes back to the pool, retired). What happens at `fork()` is in
//! [`crate::threads::fork`].
//!
//! # The exit hook
//!
//! A thread's block is released by the destructor of a POSIX thread-specific key, which the
//! C library runs when the thread ends, after every `thread_local!` destructor (glibc runs
//! those first). So a thread-local destructor that touches a hint still writes the thread's
//! page, and BPF still sees it. The key, not a `thread_local!` value with `Drop`, because
//! registering such a value's destructor takes a lock that the C library shares among all
//! threads, and a thread preempted while holding it stalls every thread that starts
//! meanwhile; setting a key's value is a store into the thread's own descriptor.
//!
//! The process's main thread runs no key destructors when it returns from `main`: its block is
//! released with the process.
//!
//! # Other copies of the runtime
//!
//! In a copy that joined another one ([`crate::copies::guest`]), a thread's first access asks the
//! serving copy for the thread's page. In the serving copy, a page that goes away (the thread
//! exits, or gives it back with [`crate::threads::bindings::release_thread_page`]) is first forgotten
//! everywhere: every joined copy, and every hook of [`crate::threads::bindings::on_page_release`], on
//! the thread, before the page goes back to the pool.

use std::sync::OnceLock;

use crate::copies::protocol::{FORGET_EXITING, FORGET_RELEASED};
use crate::copies::role::{self, Role};
use crate::kernel::sys;
use crate::locks::read;
use crate::runtime::{self, runtime, Runtime};
use crate::threads::thread_state::{self, Phase};
use crate::threads::thread_table::ThreadRecord;
use crate::{threads::bindings, threads::pool, Error};

/// A thread-specific key with destructor `dtor`, created once in `cell`, or the errno of why it
/// could not be.
fn key_in(
    cell: &OnceLock<Result<libc::pthread_key_t, i32>>,
    dtor: extern "C" fn(*mut libc::c_void),
) -> Result<libc::pthread_key_t, i32> {
    *cell.get_or_init(|| {
        let mut key = 0;
        // SAFETY: `key` is a valid place for the new key; `dtor` is an `extern "C"` function,
        // which lives as long as the process and aborts rather than unwind.
        match unsafe { libc::pthread_key_create(&mut key, Some(dtor)) } {
            0 => Ok(key),
            errno => Err(errno),
        }
    })
}

/// The key whose destructor releases a thread's block, or why it could not be created.
fn exit_key() -> Result<libc::pthread_key_t, i32> {
    static KEY: OnceLock<Result<libc::pthread_key_t, i32>> = OnceLock::new();
    key_in(&KEY, on_thread_exit)
}

/// The exit key's destructor, run by the C library as the thread ends.
extern "C" fn on_thread_exit(_value: *mut libc::c_void) {
    if let Some(rt) = runtime::get() {
        give_back(rt, FORGET_EXITING);
    }
}

/// Arms the exit hook of the calling thread: the key's destructor runs only for a thread whose
/// value is not null.
fn arm_exit_hook() -> Result<(), Error> {
    let key = exit_key().map_err(|e| Error::from_errno("creating the thread exit key", e))?;
    // SAFETY: `key` was created by `pthread_key_create` and is never deleted; the value is a
    // marker that is never dereferenced.
    match unsafe {
        libc::pthread_setspecific(key, std::ptr::NonNull::<u8>::dangling().as_ptr().cast())
    } {
        0 => Ok(()),
        errno => Err(Error::from_errno("arming the thread exit hook", errno)),
    }
}

/// Runs `hook` on the calling thread when it ends, after the runtime has released the thread's
/// page: in the hook, the thread's hints live in private storage again, and
/// [`thread_init`](crate::thread_init) returns [`Error::ThreadExiting`].
///
/// For code that must know the page is gone, such as a test of what BPF can still reach, or a
/// count of the threads that hold a page. Like the runtime's own exit hook, it runs after every
/// `thread_local!` destructor, and not at all on the main thread when it returns from `main`.
/// Hooks given on one thread run in the order they were given. A hook that panics aborts the
/// process, as a panic in any C library callback does. Returns the errno (as [`Error::Os`]) if
/// the C library could not create or set the key that runs it.
///
/// ```
/// tld_runtime::at_thread_exit(|| eprintln!("page released")).unwrap();
/// ```
pub fn at_thread_exit(hook: impl FnOnce() + 'static) -> Result<(), Error> {
    /// What the hook key's value points to.
    struct Pending {
        /// Rounds of key destructors to let pass first.
        wait: u8,
        /// In the order they were given.
        hooks: Vec<Box<dyn FnOnce()>>,
    }
    extern "C" fn run(value: *mut libc::c_void) {
        let pending = value.cast::<Pending>();
        // SAFETY: the key's values are only ever the leaked `Pending` below, and the C library
        // gives each one to this destructor once per setting: this is its only user.
        let wait = unsafe { &mut (*pending).wait };
        if *wait > 0 {
            *wait -= 1;
            if let Ok(key) = hook_key() {
                // SAFETY: the key was created by `pthread_key_create`; the value stays valid.
                if unsafe { libc::pthread_setspecific(key, value) } == 0 {
                    return;
                }
            }
        }
        // SAFETY: as above; the box is taken back exactly once, here.
        let pending = unsafe { Box::from_raw(pending) };
        for hook in pending.hooks {
            hook();
        }
    }
    fn hook_key() -> Result<libc::pthread_key_t, i32> {
        static KEY: OnceLock<Result<libc::pthread_key_t, i32>> = OnceLock::new();
        key_in(&KEY, run)
    }
    let key = hook_key().map_err(|e| Error::from_errno("creating a thread exit key", e))?;
    // SAFETY: the key was created by `pthread_key_create` and is never deleted.
    let earlier = unsafe { libc::pthread_getspecific(key) }.cast::<Pending>();
    if !earlier.is_null() {
        // SAFETY: a value of this key is a leaked `Pending` that only this thread reaches, and
        // its destructor has not run: the thread is still running ordinary code.
        unsafe { (*earlier).hooks.push(Box::new(hook)) };
        return Ok(());
    }
    // The C library runs key destructors in rounds, each key in the order of creation, and
    // another round while a destructor sets a value. Waiting one round puts the hooks after
    // the runtime's exit hook, whichever key was created first.
    let pending = Box::into_raw(Box::new(Pending {
        wait: 1,
        hooks: vec![Box::new(hook)],
    }));
    // SAFETY: the key was created by `pthread_key_create` and is never deleted; the value is
    // the leaked box, which `run` takes back.
    match unsafe { libc::pthread_setspecific(key, pending.cast()) } {
        0 => Ok(()),
        errno => {
            // SAFETY: the key did not take the box: it is still only ours.
            drop(unsafe { Box::from_raw(pending) });
            Err(Error::from_errno("setting a thread exit key", errno))
        }
    }
}

/// Gives the calling thread its block and registers it, if it has none yet. Never fails: a
/// thread that cannot get a block or be registered keeps working (see `status()`). Returns the
/// phase the calling access must act on.
///
/// Re-entrant calls (from a signal handler or a thread-local destructor that interrupts the
/// setup) return at once: the thread is `Busy`.
pub(crate) fn enter_thread() -> Phase {
    let phase = thread_state::phase();
    if phase != Phase::New {
        return phase;
    }
    if let Some(guest) = role::guest() {
        return guest.enter_thread();
    }
    thread_state::set_phase(Phase::Busy);
    let phase = setup();
    thread_state::set_phase(phase);
    phase
}

/// Gives the calling thread's block back now, if it has one: see
/// [`crate::threads::bindings::release_thread_page`]. Its next access gives it a new one.
pub(crate) fn release_thread() {
    if thread_state::phase() != Phase::Active {
        return;
    }
    match role::role() {
        Role::Joined(guest) => guest.release_thread(),
        _ => {
            if let Some(rt) = runtime::get() {
                give_back(rt, FORGET_RELEASED);
            }
        }
    }
}

thread_local! {
    /// Why the calling thread's last setup found no block: the errno of taking one, 0 if none.
    static NO_BLOCK: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// Why the calling thread has no block after its setup left it [`Phase::New`]: the errno of
/// the failure to take one.
pub(crate) fn no_block_error() -> Error {
    let errno = NO_BLOCK.try_with(std::cell::Cell::get).unwrap_or(0);
    Error::Os {
        op: "mapping a page for the thread",
        errno: if errno == 0 { libc::ENOMEM } else { errno },
    }
}

/// The setup of a new thread; returns the phase it ends in.
fn setup() -> Phase {
    let rt = runtime();
    // The hook must be armed before the thread has a block, or the block would never come
    // back. Without it, the thread keeps working on fallback storage.
    if arm_exit_hook().is_err() {
        return Phase::Exited;
    }
    let block = match rt.pool.take() {
        Ok(block) => block,
        Err(errno) => {
            // No memory: the next access tries again. `thread_init` reports why.
            let _ = NO_BLOCK.try_with(|e| e.set(errno));
            return Phase::New;
        }
    };
    let tid = sys::gettid();
    let record = ThreadRecord {
        tid,
        block,
        registered: 0,
        exposed: false,
    };
    // Under the connection's read lock: a connect either sees the record or comes after it,
    // and a part that joins either writes its initial values into this block or into the
    // template before it is copied.
    let slot = {
        let _conn = read(&rt.conn);
        let template = read(&rt.template);
        // SAFETY: `block` is a whole block of `block_size` bytes that no thread uses (it came
        // from the pool); the template has `block_size` bytes; the two do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                template.as_ptr(),
                block.addr() as *mut u8,
                rt.layout.block_size,
            )
        };
        rt.threads.insert(record)
    };
    let Some(slot) = slot else {
        // The table is full: the thread keeps working without a block.
        rt.pool.put(block);
        return Phase::Exited;
    };
    thread_state::attach(block.addr() as *mut u8, slot);
    // A failure is recorded for `status()` (`Runtime::register` records a failed registration
    // in a map; no map at all is the connection's own failure); the hints work regardless.
    let _ = rt.register(slot, tid, block, false);
    Phase::Active
}

/// Releases the calling thread's block: every part forgets it, its element is deleted, its
/// pages retired, and it goes back to the pool. `reason` is [`FORGET_EXITING`] as the thread
/// ends (from here on its hints live in fallback storage), or [`FORGET_RELEASED`] (its next
/// access gets a new block).
fn give_back(rt: &'static Runtime, reason: u32) {
    let after = if reason == FORGET_EXITING {
        Phase::Exited
    } else {
        Phase::New
    };
    thread_state::set_phase(Phase::Busy);
    if let Some((_, slot)) = thread_state::detach() {
        // Under the connection's read lock, for the reason `setup` inserts under it; the
        // elements to delete are in the connected maps if the thread is registered in them.
        let (record, maps) = {
            let conn = read(&rt.conn);
            // Every other holder of the block forgets it before it can go to another thread.
            rt.tell_parts(reason);
            bindings::run_release_hooks();
            let Some(record) = rt.threads.remove(slot) else {
                drop(conn);
                thread_state::set_phase(after);
                return;
            };
            let registered_here = record.registered != 0 && record.registered == conn.generation;
            let maps: Vec<_> = match registered_here {
                true => conn.maps().cloned().collect(),
                false => Vec::new(),
            };
            (record, maps)
        };
        for map in maps {
            // Best effort: retirement below isolates the block anyway, and the kernel frees
            // the element when the task goes.
            let _ = map.unregister(record.tid);
        }
        release(rt, &record);
    }
    thread_state::set_phase(after);
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
        if !unsafe { pool::retire(record.block.addr(), rt.layout.block_size) } {
            // Never reuse a block that BPF might still reach.
            return;
        }
    }
    rt.pool.put(record.block);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_without_a_block_reports_the_errno_of_the_failure() {
        std::thread::spawn(|| {
            NO_BLOCK.with(|e| e.set(libc::EAGAIN));
            assert_eq!(no_block_error().errno(), Some(libc::EAGAIN));
        })
        .join()
        .unwrap();
    }
}
