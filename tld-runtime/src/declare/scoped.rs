//! Scoped hints: a value that holds for a closure, a guard's lifetime, or every poll of a future,
//! and is then put back.
//!
//! - [`TaskLocal::scoped`] runs a closure with the hint set and restores the previous value.
//! - [`TaskLocal::set_scoped`] returns a [`HintGuard`] that restores it when dropped.
//! - [`HintFutureExt::with_hint`] wraps a future in [`Hinted`], which carries the hint with the
//!   task: it is set on whichever thread polls the future, for the length of each poll.
//!
//! All three restore on early return and on panic (the restore runs while unwinding). Consistent
//! hints ([`ConsistentTaskLocal`]) have `scoped` and `set_scoped` too, and travel with futures
//! like plain ones, through [`HintFutureExt::with_hint`] or [`HintFutureExt::with_hints`].
//!
//! Hinted futures compose: `join!`, `select!`, `FuturesUnordered` and `spawn` take them like any
//! future. A hint pair `(&HINT, value)` is a [`HintSet`] whatever the reference's lifetime, so
//! that rustc can prove a spawned task `Send` when it holds hinted futures across an `.await`
//! (that proof forgets every lifetime in the types the task holds).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::declare::consistent::ConsistentTaskLocal;
use crate::declare::task_local::TaskLocal;
use crate::declare::types::TldType;

impl<T: TldType> TaskLocal<T> {
    /// Runs `f` with the calling thread's copy set to `value`, then puts back the value it had.
    ///
    /// The previous value comes back however `f` ends: by returning, by an early return or `?`
    /// inside it, or by a panic. Scopes nest: an inner scope puts back the outer scope's value.
    /// Whatever `f` itself stores into the hint is overwritten by the restore.
    ///
    /// ```
    /// use tld_runtime::task_local_data;
    ///
    /// #[task_local_data]
    /// static PRIORITY: i32 = 0;
    ///
    /// let seen = PRIORITY.scoped(10, || {
    ///     let inner = PRIORITY.scoped(20, || PRIORITY.get());
    ///     (PRIORITY.get(), inner)
    /// });
    /// assert_eq!(seen, (10, 20));
    /// assert_eq!(PRIORITY.get(), 0);
    ///
    /// // A panic inside the scope does not leave the value behind.
    /// let caught = std::panic::catch_unwind(|| PRIORITY.scoped(30, || panic!("request failed")));
    /// assert!(caught.is_err());
    /// assert_eq!(PRIORITY.get(), 0);
    /// ```
    #[inline]
    pub fn scoped<R>(&'static self, value: T, f: impl FnOnce() -> R) -> R {
        Handle::scoped(self, value, f)
    }

    /// Sets the calling thread's copy to `value` until the returned guard is dropped, which
    /// puts back the value the hint had when this was called.
    ///
    /// The guard is neither `Send` nor `Sync`: it restores the thread it was made on, so it
    /// cannot move to another one. Holding it across an `.await` therefore makes the future
    /// `!Send`, and `tokio::spawn` refuses it; in async code use
    /// [`with_hint`](HintFutureExt::with_hint), which follows the task from thread to thread.
    ///
    /// Guards of one hint are meant to be dropped in the reverse order of their creation, which
    /// is what Rust does with guards bound to variables in one scope, and in nested scopes. Each
    /// guard puts back exactly the value it saved, so if guards are dropped in another order,
    /// the hint ends at the value saved by the guard dropped last. A guard passed to
    /// [`std::mem::forget`] never restores anything.
    ///
    /// ```
    /// use tld_runtime::task_local_data;
    ///
    /// #[task_local_data]
    /// static BUDGET_US: u32 = 10_000;
    ///
    /// fn handle(urgent: bool) -> Result<u32, String> {
    ///     let _budget = urgent.then(|| BUDGET_US.set_scoped(500));
    ///     if BUDGET_US.get() > 1_000 {
    ///         return Err("not urgent".into()); // the guard restores here too
    ///     }
    ///     Ok(BUDGET_US.get())
    /// }
    ///
    /// assert_eq!(handle(true), Ok(500));
    /// assert_eq!(handle(false), Err("not urgent".into()));
    /// assert_eq!(BUDGET_US.get(), 10_000);
    /// ```
    #[inline]
    #[must_use = "the hint is restored when the guard is dropped: `let _ = ...` restores it at once; \
                  bind it with `let _guard = ...`"]
    pub fn set_scoped(&'static self, value: T) -> HintGuard<T> {
        Handle::set_scoped(self, value)
    }
}

impl<T: TldType> ConsistentTaskLocal<T> {
    /// Runs `f` with the calling thread's copy set to `value`, then puts back the value it had,
    /// as [`TaskLocal::scoped`] does. Each store is whole for every reader.
    ///
    /// ```
    /// use tld_runtime::task_local_data;
    ///
    /// #[task_local_data(consistent)]
    /// static WINDOW: [u64; 2] = [0, 0];
    ///
    /// assert_eq!(WINDOW.scoped([10, 20], || WINDOW.get()), [10, 20]);
    /// assert_eq!(WINDOW.get(), [0, 0]);
    /// ```
    #[inline]
    pub fn scoped<R>(&'static self, value: T, f: impl FnOnce() -> R) -> R {
        Handle::scoped(self, value, f)
    }

    /// Sets the calling thread's copy to `value` until the returned guard is dropped, as
    /// [`TaskLocal::set_scoped`] does.
    #[inline]
    #[must_use = "the hint is restored when the guard is dropped: `let _ = ...` restores it at once; \
                  bind it with `let _guard = ...`"]
    pub fn set_scoped(&'static self, value: T) -> HintGuard<T, ConsistentTaskLocal<T>> {
        Handle::set_scoped(self, value)
    }
}

/// Puts a hint's previous value back when dropped. Made by [`TaskLocal::set_scoped`] and
/// [`ConsistentTaskLocal::set_scoped`] (`H` is the hint's handle type).
///
/// Not `Send` and not `Sync`: it restores the thread it was made on.
#[must_use = "the hint is restored when the guard is dropped"]
pub struct HintGuard<T: TldType, H: sealed::Handle<Value = T> = TaskLocal<T>> {
    hint: &'static H,
    previous: T,
    /// A raw pointer is neither `Send` nor `Sync`, and neither is the guard.
    _not_send: PhantomData<*const ()>,
}

impl<T: TldType, H: sealed::Handle<Value = T>> HintGuard<T, H> {
    #[inline(always)]
    fn new(hint: &'static H, value: T) -> Self {
        let previous = hint.replace(value);
        HintGuard {
            hint,
            previous,
            _not_send: PhantomData,
        }
    }

    /// The value the hint gets back when the guard is dropped.
    pub fn previous(&self) -> T {
        self.previous
    }
}

impl<T: TldType, H: sealed::Handle<Value = T>> Drop for HintGuard<T, H> {
    #[inline]
    fn drop(&mut self) {
        self.hint.set(self.previous);
    }
}

impl<T: TldType + std::fmt::Debug, H: sealed::Handle<Value = T>> std::fmt::Debug
    for HintGuard<T, H>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HintGuard")
            .field("key", &self.hint.key())
            .field("previous", &self.previous)
            .finish()
    }
}

/// Both handles' accesses, which the behaviour written once in [`sealed::Handle`] builds on.
macro_rules! handle {
    ($handle:ident) => {
        impl<T: TldType> sealed::Handle for $handle<T> {
            type Value = T;
            #[inline(always)]
            fn replace(&self, value: T) -> T {
                $handle::replace(self, value)
            }
            #[inline(always)]
            fn set(&self, value: T) {
                $handle::set(self, value)
            }
            #[inline(always)]
            fn get(&self) -> T {
                $handle::get(self)
            }
            fn key(&self) -> &'static str {
                $handle::key(self)
            }
        }
    };
}

handle!(TaskLocal);
handle!(ConsistentTaskLocal);

pub(crate) use sealed::Handle;

mod sealed {
    use super::HintGuard;

    /// A hint handle, [`TaskLocal`](crate::TaskLocal) or
    /// [`ConsistentTaskLocal`](crate::ConsistentTaskLocal): the accesses that differ, and,
    /// written once on top of them, what the two do alike (`update`, `scoped`, `set_scoped`;
    /// the handles' methods of those names call these).
    pub trait Handle: Sync + Sized + 'static {
        /// The hint's type.
        type Value: crate::TldType;
        /// Stores `value` and returns the value before.
        fn replace(&self, value: Self::Value) -> Self::Value;
        /// Stores `value`.
        fn set(&self, value: Self::Value);
        /// Reads the value.
        fn get(&self) -> Self::Value;
        /// The hint's key.
        fn key(&self) -> &'static str;

        /// Reads the calling thread's copy, lets `f` change it, and writes it back.
        #[inline]
        fn update<R>(&self, f: impl FnOnce(&mut Self::Value) -> R) -> R {
            let mut value = self.get();
            let result = f(&mut value);
            self.set(value);
            result
        }

        /// Sets the calling thread's copy until the guard is dropped.
        #[inline(always)]
        fn set_scoped(&'static self, value: Self::Value) -> HintGuard<Self::Value, Self> {
            HintGuard::new(self, value)
        }

        /// Runs `f` with the calling thread's copy set to `value`, then puts back the value
        /// it had.
        #[inline]
        fn scoped<R>(&'static self, value: Self::Value, f: impl FnOnce() -> R) -> R {
            let _guard = self.set_scoped(value);
            f()
        }
    }

    /// The work behind [`HintSet`](super::HintSet), out of users' reach.
    pub trait Apply {
        /// The calling thread's values from before [`Apply::enter`].
        type Saved: Copy;
        /// Saves the calling thread's values, then stores the set's values.
        fn enter(&self) -> Self::Saved;
        /// Takes the calling thread's current values as the set's own (so that what the task
        /// stored, or a BPF program wrote, during the poll stays with the task), then puts
        /// `saved` back. Undoes [`Apply::enter`]s in the reverse order.
        fn leave(&mut self, saved: Self::Saved);
    }
}

/// One or more hints and their values, carried by a [`Hinted`] future.
///
/// Implemented for a pair `(&TaskLocal<T>, T)` or `(&ConsistentTaskLocal<T>, T)`, and for tuples
/// of up to eight `HintSet`s, so several hints travel together:
/// `fut.with_hints(((&PRIORITY, 10), (&LATENCY, hint), (&BUDGET, budget)))`. A pair is a
/// `HintSet` for a reference of any lifetime, which is what lets a task that holds hinted
/// futures across an `.await` (in `join!`, `select!`, a `FuturesUnordered`) be spawned: rustc
/// proves such a task `Send` with the lifetimes of the types it holds forgotten. Sealed: it
/// cannot be implemented outside this crate.
pub trait HintSet: sealed::Apply {}

/// A hint and its value as a `HintSet`: for each handle type with a `replace`, and a reference
/// of any lifetime (the handles' methods take `&self`).
macro_rules! pair_sets {
    ($($handle:ident),+) => {$(
        impl<T: TldType> sealed::Apply for (&$handle<T>, T) {
            type Saved = T;
            #[inline(always)]
            fn enter(&self) -> T {
                self.0.replace(self.1)
            }
            #[inline(always)]
            fn leave(&mut self, saved: T) {
                self.1 = self.0.replace(saved);
            }
        }

        impl<T: TldType> HintSet for (&$handle<T>, T) {}
    )+};
}

pair_sets!(TaskLocal, ConsistentTaskLocal);

macro_rules! tuple_sets {
    ($( ($($name:ident $idx:tt),+) ($($rev:tt),+) ;)*) => {$(
        impl<$($name: HintSet),+> sealed::Apply for ($($name,)+) {
            type Saved = ($($name::Saved,)+);
            #[inline(always)]
            fn enter(&self) -> Self::Saved {
                ($(self.$idx.enter(),)+)
            }
            #[inline(always)]
            fn leave(&mut self, saved: Self::Saved) {
                $( self.$rev.leave(saved.$rev); )+
            }
        }
        impl<$($name: HintSet),+> HintSet for ($($name,)+) {}
    )*};
}

tuple_sets! {
    (A 0) (0);
    (A 0, B 1) (1, 0);
    (A 0, B 1, C 2) (2, 1, 0);
    (A 0, B 1, C 2, D 3) (3, 2, 1, 0);
    (A 0, B 1, C 2, D 3, E 4) (4, 3, 2, 1, 0);
    (A 0, B 1, C 2, D 3, E 4, F 5) (5, 4, 3, 2, 1, 0);
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6) (6, 5, 4, 3, 2, 1, 0);
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7) (7, 6, 5, 4, 3, 2, 1, 0);
}

/// Carries hints with a future: [`with_hint`](HintFutureExt::with_hint) and
/// [`with_hints`](HintFutureExt::with_hints). Implemented for every [`Future`].
///
/// On an async executor a few worker threads poll many tasks, so what a hint should describe is
/// the task being polled, not the thread. A [`Hinted`] future sets its hints on the polling
/// thread at the start of every poll, and puts back that thread's previous values when the poll
/// returns or unwinds. A task that moves between worker threads takes its hints along and leaves
/// nothing behind on the threads it left; a BPF program that runs for a worker thread during a
/// poll (a scheduler at a preemption, a tracer) sees the task's values.
///
/// ```
/// use std::future::Future;
/// use std::pin::pin;
/// use std::sync::Arc;
/// use std::task::{Context, Poll, Wake, Waker};
///
/// use tld_runtime::{task_local_data, HintFutureExt, TldType};
///
/// #[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
/// #[repr(C)]
/// pub struct Latency {
///     pub budget_us: u32,
///     pub class: u32,
/// }
///
/// #[task_local_data]
/// static PRIORITY: i32 = 0;
///
/// #[task_local_data]
/// static LATENCY: Latency = Latency { budget_us: 0, class: 0 };
///
/// async fn handle_request() -> (i32, Latency) {
///     // Code inside the task sees the task's hints, at every poll.
///     (PRIORITY.get(), LATENCY.get())
/// }
///
/// let urgent = Latency { budget_us: 500, class: 2 };
/// let task = handle_request()
///     .with_hint(&PRIORITY, 10)
///     .with_hint(&LATENCY, urgent);
/// // The same with one wrapper: task.with_hints(((&PRIORITY, 10), (&LATENCY, urgent)))
///
/// // Poll it by hand here; an executor such as tokio does this in `spawn` or `block_on`.
/// struct Noop;
/// impl Wake for Noop {
///     fn wake(self: Arc<Self>) {}
/// }
/// let waker = Waker::from(Arc::new(Noop));
/// let result = pin!(task).poll(&mut Context::from_waker(&waker));
/// assert_eq!(result, Poll::Ready((10, urgent)));
/// // The polling thread has its own values back.
/// assert_eq!((PRIORITY.get(), LATENCY.get()), (0, Latency::default()));
/// ```
pub trait HintFutureExt: Future + Sized {
    /// Wraps the future so that `hint` is `value` on the polling thread during each of its
    /// polls. `hint` is a plain hint ([`TaskLocal`]) or a consistent one
    /// ([`ConsistentTaskLocal`]).
    ///
    /// Chain calls to carry several hints, or use [`with_hints`](Self::with_hints). A wrapper
    /// inside another (a hinted future awaited by a hinted task) wins during its own polls, and
    /// the outer value is back when it returns.
    ///
    /// The hint is the task's own while the task runs: if code inside the future stores into
    /// it, or a BPF program writes it during a poll, the wrapper keeps that value for the
    /// task's later polls, and the worker thread still gets its own value back.
    ///
    /// A wrapper that is never polled touches no hint, and dropping a wrapper drops the inner
    /// future without setting the hint.
    ///
    /// ```
    /// use tld_runtime::{task_local_data, HintFutureExt};
    ///
    /// #[task_local_data]
    /// static PRIORITY: i32 = 0;
    /// #[task_local_data(consistent)]
    /// static WINDOW_NS: [u64; 2] = [0, 0];
    ///
    /// async fn handle() {}
    ///
    /// let task = handle().with_hint(&PRIORITY, 10).with_hint(&WINDOW_NS, [100, 200]);
    /// # drop(task);
    /// ```
    fn with_hint<H: sealed::Handle>(
        self,
        hint: &'static H,
        value: H::Value,
    ) -> Hinted<Self, (&'static H, H::Value)> {
        Hinted {
            inner: self,
            hints: (hint, value),
        }
    }

    /// Wraps the future so that every hint in `hints` has its value on the polling thread
    /// during each of its polls: a pair `(&HINT, value)` or a tuple of them.
    ///
    /// One wrapper with a tuple costs a little less per poll than a chain of wrappers. If a
    /// hint appears twice, the later value wins during the poll.
    ///
    /// ```
    /// use tld_runtime::{task_local_data, HintFutureExt};
    ///
    /// #[task_local_data]
    /// static PRIORITY: i32 = 0;
    /// #[task_local_data]
    /// static BUDGET_US: u32 = 0;
    ///
    /// async fn handle() {}
    ///
    /// let task = handle().with_hints(((&PRIORITY, 10), (&BUDGET_US, 500)));
    /// # drop(task);
    /// ```
    fn with_hints<H: HintSet>(self, hints: H) -> Hinted<Self, H> {
        Hinted { inner: self, hints }
    }
}

impl<F: Future> HintFutureExt for F {}

/// A future whose hints are set on the polling thread for each of its polls. Made by
/// [`HintFutureExt::with_hint`] and [`HintFutureExt::with_hints`].
///
/// `Send`, `Sync` and `Unpin` when the inner future and the hint values are.
#[must_use = "futures do nothing unless polled"]
pub struct Hinted<F, H> {
    inner: F,
    hints: H,
}

impl<F, H> Hinted<F, H> {
    /// The inner future.
    pub fn get_ref(&self) -> &F {
        &self.inner
    }

    /// The inner future, mutably.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.inner
    }

    /// Unwraps the inner future; its later polls do not set the hints.
    pub fn into_inner(self) -> F {
        self.inner
    }
}

/// Undoes a [`sealed::Apply::enter`] when dropped: at the end of a poll, or while a panic from
/// it unwinds.
struct Leave<'a, H: sealed::Apply> {
    hints: &'a mut H,
    saved: H::Saved,
}

impl<H: sealed::Apply> Drop for Leave<'_, H> {
    #[inline(always)]
    fn drop(&mut self) {
        self.hints.leave(self.saved);
    }
}

impl<F: Future, H: HintSet> Future for Hinted<F, H> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Pinning: `inner` is structurally pinned and `hints` is not. Nothing moves `inner` out
        // of a pinned `Hinted`: there is no `Drop` impl, and `get_mut` and `into_inner` need an
        // unpinned `Hinted` (or `F: Unpin`, through the auto `Unpin` impl).
        // SAFETY: `inner` is never moved out of `this` (above); `hints` is only reached as `&mut H`.
        let this = unsafe { self.get_unchecked_mut() };
        let saved = this.hints.enter();
        let _leave = Leave {
            hints: &mut this.hints,
            saved,
        };
        // SAFETY: `this.inner` lives in the pinned `Hinted` and is never moved (see above).
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        inner.poll(cx)
    }
}

impl<F: std::fmt::Debug, H: std::fmt::Debug> std::fmt::Debug for Hinted<F, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hinted")
            .field("inner", &self.inner)
            .field("hints", &self.hints)
            .finish()
    }
}
