//! The connection's state: which maps threads are registered in, where the main one came
//! from, and why there is none when there is none. The behaviour that changes it is in [`crate::kernel::connection`];
//! the runtime holds it behind a read-write lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use crate::error::Error;
use crate::kernel::tld_map::TldMap;
use crate::status::MapSource;

/// The (device, inode) of a pin: a new pin at the same path has another.
pub(crate) type PinIdentity = (u64, u64);

#[derive(Default)]
pub(crate) struct ConnState {
    /// The map threads are registered in, which `connect`, `connect_pinned` and auto-connect
    /// set. Shared so that a thread can register itself without holding the lock.
    pub map: Option<Arc<TldMap>>,
    /// Maps that threads are registered in as well (`connect_also`): another program's, which
    /// may speak another generation of the format. Kept for the process's life.
    pub also: Vec<Arc<TldMap>>,
    pub source: Option<MapSource>,
    /// Identity of the pin the map was opened from, to notice a new pin.
    pub pin_identity: Option<PinIdentity>,
    /// A pin that failed to connect: the watcher does not retry it until it changes.
    pub rejected_pin: Option<PinIdentity>,
    /// Bumped on every change to the set of maps; a thread is registered (in every map of the
    /// set) when its record carries the current one.
    pub generation: u64,
    /// `connect` or `connect_pinned` was called: auto-connect no longer runs.
    pub explicit: bool,
    /// Why the runtime is not connected, while no map is.
    pub failure: Option<Error>,
    /// Why the last attempt to change the connection failed, while a map stays connected.
    pub last_error: Option<Error>,
    /// A watcher thread is following the pin path, or the guard's events.
    pub watching: bool,
    /// How many times the watcher registered every thread again after the guard reported a
    /// spoofed update.
    pub guard_repairs: u64,
}

impl ConnState {
    /// Every map threads are registered in: the main one first, then the others. Allocates
    /// nothing (the forked child's handler uses it).
    pub fn maps(&self) -> impl Iterator<Item = &Arc<TldMap>> {
        self.map.iter().chain(self.also.iter())
    }

    /// Whether threads are registered in any map.
    pub fn has_maps(&self) -> bool {
        self.map.is_some() || !self.also.is_empty()
    }
}

/// Threads' registrations that failed: how many, and the last error. Recorded by the thread
/// that failed (or the watcher, for a thread it registered again) without waiting for anyone:
/// the count is an atomic, and the last error is kept only when its lock is free, which it is
/// but for the instant of a store or a copy. So no thread ever waits here, and a forked child
/// can never find the lock held for good (at worst, its status lacks the last error).
#[derive(Default)]
pub(crate) struct RegistrationErrors {
    count: AtomicU64,
    last: Mutex<Option<Error>>,
}

impl RegistrationErrors {
    /// Records that registering a thread failed with `e`.
    pub fn record(&self, e: &Error) {
        self.count.fetch_add(1, Ordering::Relaxed);
        match self.last.try_lock() {
            Ok(mut last) => *last = Some(e.clone()),
            Err(TryLockError::Poisoned(p)) => *p.into_inner() = Some(e.clone()),
            Err(TryLockError::WouldBlock) => {}
        }
    }

    /// How many registrations failed, and the last error, if it could be had.
    pub fn snapshot(&self) -> (u64, Option<Error>) {
        let count = self.count.load(Ordering::Relaxed);
        // A few tries: another thread holds the lock only to store or copy an error.
        for _ in 0..100 {
            match self.last.try_lock() {
                Ok(last) => return (count, last.clone()),
                Err(TryLockError::Poisoned(p)) => return (count, p.into_inner().clone()),
                Err(TryLockError::WouldBlock) => std::thread::yield_now(),
            }
        }
        (count, None)
    }
}
