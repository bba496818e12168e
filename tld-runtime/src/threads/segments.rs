//! A growable array whose elements never move and are never freed, which many threads grow and
//! read at once without a lock.
//!
//! Elements live in segments of [`SEGMENT_LEN`], allocated the first time an index in them is
//! asked for and published with one compare-and-swap; a directory of [`SEGMENTS`] pointers
//! holds them. A reference to an element is therefore valid for as long as the array, which
//! is what lets the pool and the thread table hand out plain indices and follow them later
//! without a lock. The array's capacity is `SEGMENTS * SEGMENT_LEN` (about a million).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Elements per segment.
pub const SEGMENT_LEN: usize = 1024;
/// Segments in the directory.
pub const SEGMENTS: usize = 1024;

/// The array. `T::default()` is the content of an element nobody has written.
///
/// Shared between threads, the array hands each of them `&T` to elements that other threads
/// made and use: it is `Sync` only if `T` is, and `Send` only if `T` is (the marker below gives
/// exactly those bounds; the directory's atomic pointers alone would make it both for every
/// `T`).
pub struct Segments<T> {
    /// Each non-null pointer is the first of `SEGMENT_LEN` elements of a leaked boxed slice.
    directory: [AtomicPtr<T>; SEGMENTS],
    /// The array owns its elements and shares them: it is `Send`/`Sync` as `T` is.
    elements: PhantomData<T>,
}

impl<T> std::fmt::Debug for Segments<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allocated = self
            .directory
            .iter()
            .filter(|s| !s.load(Ordering::Relaxed).is_null())
            .count();
        f.debug_struct("Segments")
            .field("allocated_segments", &allocated)
            .finish()
    }
}

impl<T: Default> Segments<T> {
    /// The maximum number of elements.
    pub const CAPACITY: usize = SEGMENTS * SEGMENT_LEN;

    /// An array with no segment allocated.
    pub const fn new() -> Segments<T> {
        Segments {
            directory: [const { AtomicPtr::new(std::ptr::null_mut()) }; SEGMENTS],
            elements: PhantomData,
        }
    }

    /// Element `index`, if its segment has been allocated.
    pub fn get(&self, index: usize) -> Option<&T> {
        let segment = self
            .directory
            .get(index / SEGMENT_LEN)?
            .load(Ordering::Acquire);
        if segment.is_null() {
            return None;
        }
        let element = segment.wrapping_add(index % SEGMENT_LEN);
        // SAFETY: `segment` starts `SEGMENT_LEN` initialised elements, never freed or moved (see
        // `get_or_allocate`), that the acquire load saw written; `element` is among them. Only
        // shared references are ever made to them.
        Some(unsafe { &*element })
    }

    /// Element `index`, allocating its segment if need be. `None` if `index` is beyond the
    /// capacity. Allocates: never call it where allocating may deadlock (a forked child).
    pub fn get_or_allocate(&self, index: usize) -> Option<&T> {
        let entry = self.directory.get(index / SEGMENT_LEN)?;
        if entry.load(Ordering::Acquire).is_null() {
            let fresh: Box<[T]> = (0..SEGMENT_LEN).map(|_| T::default()).collect();
            let fresh = Box::into_raw(fresh).cast::<T>();
            if entry
                .compare_exchange(
                    std::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                // Another thread published this segment first; ours was never seen.
                let slice = std::ptr::slice_from_raw_parts_mut(fresh, SEGMENT_LEN);
                // SAFETY: `slice` is the boxed slice leaked just above, which nobody else saw.
                drop(unsafe { Box::from_raw(slice) });
            }
        }
        self.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// `Sync` follows `T`: an array of atomics is `Sync`, one of `Cell`s is not. (Method
    /// resolution picks the inherent `is_sync`, which needs `Sync`, over the trait's fallback
    /// whenever the type is `Sync`: for concrete types this asks the compiler.)
    #[test]
    fn is_sync_only_if_its_elements_are() {
        struct Probe<S: ?Sized>(std::marker::PhantomData<S>);
        trait Fallback {
            fn is_sync(&self) -> bool {
                false
            }
        }
        impl<S: ?Sized> Fallback for Probe<S> {}
        impl<S: ?Sized + Sync> Probe<S> {
            fn is_sync(&self) -> bool {
                true
            }
        }
        assert!(Probe::<Segments<AtomicUsize>>(PhantomData).is_sync());
        assert!(!Probe::<Segments<std::cell::Cell<u8>>>(PhantomData).is_sync());
    }

    #[test]
    fn elements_stay_put_while_threads_grow_the_array() {
        let array: &'static Segments<AtomicUsize> = Box::leak(Box::new(Segments::new()));
        assert!(array.get(5).is_none());
        let first: *const AtomicUsize = array.get_or_allocate(5).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in (t..3 * SEGMENT_LEN).step_by(4) {
                        array
                            .get_or_allocate(i)
                            .unwrap()
                            .store(i, Ordering::Relaxed);
                    }
                });
            }
        });
        for i in 0..3 * SEGMENT_LEN {
            assert_eq!(array.get(i).unwrap().load(Ordering::Relaxed), i);
        }
        assert!(std::ptr::eq(first, array.get(5).unwrap()));
        assert!(array
            .get_or_allocate(Segments::<AtomicUsize>::CAPACITY)
            .is_none());
    }
}
