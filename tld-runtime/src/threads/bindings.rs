//! The calling thread's page, for bindings to other languages that keep their own pointer to it.
//!
//! A language binding (libtld, the C library, is one) reaches hints by offset: it keeps the
//! thread's page in a thread-local of its own, so that its fast path is one load and an add,
//! and asks for the page only when that thread-local is null. Keys come from
//! [`DynamicKey`](crate::DynamicKey), whose offsets are relative to the page.
//!
//! The page can go away while the thread lives on ([`release_thread_page`]) and goes away as
//! the thread exits; the next thread to start may then get it. So a binding must forget its
//! pointer at that moment, not later: [`on_page_release`] runs its hook on the thread, right
//! before the page goes back to the runtime, in whichever copy of the runtime it was
//! registered (see "One runtime per process" in the crate documentation).
//!
//! ```
//! use std::cell::Cell;
//! use tld_runtime::{bindings, DynamicKey};
//!
//! thread_local! {
//!     static PAGE: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
//! }
//!
//! fn forget() {
//!     PAGE.with(|p| p.set(std::ptr::null_mut()));
//! }
//!
//! bindings::on_page_release(forget)?;
//! let key = DynamicKey::create("binding_value", 8)?;
//! let page = bindings::thread_page().expect("this thread has a page");
//! PAGE.with(|p| p.set(page.as_ptr()));
//! // The value lies at the key's offset in the page, for as long as the thread keeps it.
//! // SAFETY: the key's 8 bytes lie in the page, 8-aligned; this thread owns the page.
//! unsafe { page.as_ptr().add(key.offset()).cast::<u64>().write_volatile(42) };
//! let mut value = [0u8; 8];
//! key.read(&mut value);
//! assert_eq!(u64::from_ne_bytes(value), 42);
//!
//! bindings::release_thread_page();
//! assert!(PAGE.with(|p| p.get()).is_null(), "the hook ran");
//! # Ok::<(), tld_runtime::Error>(())
//! ```

use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::error::Error;
use crate::threads::lifecycle;
use crate::threads::thread_state::{self, Phase};

/// The calling thread's page, giving the thread one (and registering it) if it has none.
///
/// `None` while the thread is being set up or torn down (a call from a signal handler that
/// interrupted its setup, or from a thread-specific destructor after its page went), or when no
/// memory could be had. The page is the runtime's: the binding may read and write the values of
/// published keys at their offsets, with volatile accesses (BPF may write them at any time),
/// until its [`on_page_release`] hook runs on this thread.
pub fn thread_page() -> Option<NonNull<u8>> {
    if let Some(page) = NonNull::new(thread_state::current_block()) {
        return Some(page);
    }
    match lifecycle::enter_thread() {
        Phase::Active => NonNull::new(thread_state::current_block()),
        _ => None,
    }
}

/// Gives the calling thread's page back now: its element is deleted, the page retired, every
/// [`on_page_release`] hook (and every copy of the runtime) forgets it. The thread's next
/// access gives it a new page, starting from every hint's initial value, as a new thread's
/// does. This is what C's `tld_free()` does; a thread's page is released as it exits anyway.
///
/// Pointers into the old page must not be used again: the page may go to another thread.
pub fn release_thread_page() {
    lifecycle::release_thread();
}

/// Hooks registered with [`on_page_release`], in this copy of the runtime.
static HOOKS: [OnceLock<fn()>; MAX_HOOKS] = [const { OnceLock::new() }; MAX_HOOKS];

/// The most hooks a copy of the runtime keeps.
pub const MAX_HOOKS: usize = 8;

/// Runs `hook` on every thread whose page goes away ([`release_thread_page`], or the thread's
/// exit), right before the page goes back to the runtime and may go to another thread.
///
/// The hook runs on the thread itself, with the runtime's connection lock held for reading: it
/// must only forget the page (clear a thread-local), never block, and never call the runtime.
/// Registering the same function twice runs it twice. Returns [`Error::Os`] with `ENOSPC` once
/// [`MAX_HOOKS`] are registered.
pub fn on_page_release(hook: fn()) -> Result<(), Error> {
    for slot in &HOOKS {
        if slot.set(hook).is_ok() {
            return Ok(());
        }
    }
    Err(Error::Os {
        op: "registering a page release hook",
        errno: libc::ENOSPC,
    })
}

/// Runs this copy's hooks on the calling thread, whose page goes away.
pub(crate) fn run_release_hooks() {
    for hook in HOOKS.iter().map_while(OnceLock::get) {
        hook();
    }
}
