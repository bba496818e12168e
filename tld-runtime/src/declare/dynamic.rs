//! Keys created at run time, next to the static ones.
//!
//! A dynamic key is appended to the metadata page with the format's rules: the entry is
//! complete before `cnt` counts it, names are unique, and the value must fit in the page's data
//! area, which every thread's page already has room for. BPF programs find dynamic keys exactly
//! like static ones. Every thread's value starts at zero.

use std::marker::PhantomData;

use crate::copies::role;
use crate::declare::task_local::{slot_at, slot_slow_at};
use crate::declare::types::TldType;
use crate::error::Error;
use crate::locks::{lock, read};
use crate::page::layout;
use crate::page::metadata::Published;
use crate::page::wire::{self, Generation};
use crate::runtime::runtime;

/// A key created at run time, with a value of `size` bytes per thread.
///
/// ```
/// use tld_runtime::{DynamicKey, Error};
///
/// let key = DynamicKey::create("request_class", 4)?;
/// key.write(&7u32.to_ne_bytes());
/// let mut buf = [0u8; 4];
/// key.read(&mut buf);
/// assert_eq!(u32::from_ne_bytes(buf), 7);
///
/// // Names are unique in the process.
/// assert!(matches!(DynamicKey::create("request_class", 4), Err(Error::KeyExists { .. })));
/// assert_eq!(DynamicKey::find("request_class").unwrap().offset(), key.offset());
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicKey {
    name: String,
    size: usize,
    offset: usize,
}

impl DynamicKey {
    /// Creates and publishes a key of `size` bytes.
    ///
    /// Safe to call from many threads at once: exactly one creation of a name succeeds.
    ///
    /// # Errors
    /// - [`Error::KeyExists`] (EEXIST): the name is taken, by a static or a dynamic key;
    /// - [`Error::NoRoom`] (E2BIG): the value does not fit in what is left of the data area;
    ///   or, while a map of the 7.x generation is connected, it would end at the page's very
    ///   last byte, where the kernel's 7.x BPF reader does not find values (it wants each to
    ///   end before the page does);
    /// - [`Error::NoSlots`] (ENOSPC): every metadata entry is taken;
    /// - [`Error::InvalidKey`] (EINVAL): not a C identifier of at most 61 bytes, or size 0;
    /// - the layout's own problem (such as [`Error::DuplicateKey`]) if nothing can be published.
    pub fn create(name: &str, size: usize) -> Result<DynamicKey, Error> {
        create_key(name, size).map(DynamicKey::from)
    }

    /// The published key of that name, static or dynamic, if there is one.
    pub fn find(name: &str) -> Option<DynamicKey> {
        find_key(name).map(DynamicKey::from)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The value's offset from the start of a thread's page, as BPF computes it.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Where the calling thread's value lives; `None` while the thread is being set up or torn
    /// down (a re-entrant access).
    fn slot(&self) -> Option<*mut u8> {
        // SAFETY: the offset was published for this process's layout: the value lies wholly
        // inside the first page of every thread's block.
        if let Some(p) = unsafe { slot_at(self.offset) } {
            return Some(p);
        }
        self.slot_slow()
    }

    /// [`DynamicKey::slot`] for a thread without a page yet (it gets one), or without one for
    /// good (it is exiting: a private value, zeroed, for what is left of its life).
    #[cold]
    #[inline(never)]
    fn slot_slow(&self) -> Option<*mut u8> {
        /// The fallback's initial value, without allocating (this may run in a signal
        /// handler); a larger key (only on a system with pages over 64 KiB) allocates.
        static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
        let id = usize::MAX - self.offset;
        let larger;
        let init: &[u8] = match ZEROS.get(..self.size) {
            Some(zeros) => zeros,
            None => {
                larger = vec![0; self.size];
                &larger
            }
        };
        // SAFETY: as in `slot`.
        unsafe { slot_slow_at(|| self.offset, id, init) }
    }

    /// Copies the calling thread's value into `buf`, up to `buf.len()` or the value's size.
    /// Returns the number of bytes copied.
    pub fn read(&self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.size);
        match self.slot() {
            Some(p) => {
                for (i, b) in buf[..n].iter_mut().enumerate() {
                    // SAFETY: `p..p + size` is this thread's value (see `slot`); BPF may write
                    // it concurrently, so each byte is read volatile.
                    *b = unsafe { p.add(i).read_volatile() };
                }
            }
            // A re-entrant read sees the initial value.
            None => buf[..n].fill(0),
        }
        n
    }

    /// Writes `bytes` over the start of the calling thread's value, up to the value's size.
    /// Returns the number of bytes written.
    pub fn write(&self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.size);
        if let Some(p) = self.slot() {
            for (i, &b) in bytes[..n].iter().enumerate() {
                // SAFETY: as in `read`.
                unsafe { p.add(i).write_volatile(b) };
            }
        }
        n
    }
}

/// Creates a key at run time; see [`DynamicKey::create`].
fn create_key(name: &str, size: usize) -> Result<Published, Error> {
    match role::guest() {
        Some(guest) => guest.create_key(name, size),
        None => create_local(name, size),
    }
}

/// [`create_key`] in this copy's own runtime.
pub(crate) fn create_local(name: &str, size: usize) -> Result<Published, Error> {
    let rt = runtime();
    let invalid = |reason: String| Error::InvalidKey {
        key: name.to_string(),
        reason,
    };
    layout::check_key(name).map_err(invalid)?;
    if size == 0 || size > u16::MAX as usize {
        return Err(invalid(format!("size {size} is not in 1..=65535")));
    }
    let meta = rt.meta.as_ref().map_err(Clone::clone)?;
    // The connection first (the runtime's lock order), to learn which generations are read.
    let seven = read(&rt.conn)
        .maps()
        .any(|m| m.generation() == Generation::Linux7);
    let mut meta = lock(meta);
    if meta.entries().iter().any(|e| e.name == name) {
        return Err(Error::KeyExists {
            key: name.to_string(),
        });
    }
    if meta.count() >= meta.capacity() {
        return Err(Error::NoSlots {
            key: name.to_string(),
            max: meta.capacity(),
        });
    }
    let available = meta.available();
    if wire::round8(size) > available {
        return Err(Error::NoRoom {
            key: name.to_string(),
            size: wire::round8(size),
            available,
        });
    }
    // The kernel's 7.x reader finds a value only if it ends before the page's last byte.
    if seven && size >= available {
        return Err(Error::NoRoom {
            key: name.to_string(),
            size: wire::round8(size),
            available: available - 1,
        });
    }
    let offset = meta.publish(name, size);
    Ok(Published {
        name: name.to_string(),
        size,
        offset,
    })
}

/// Finds a published key, static or dynamic.
fn find_key(name: &str) -> Option<Published> {
    match role::guest() {
        Some(guest) => guest.find_key(name),
        None => find_local(name),
    }
}

/// [`find_key`] in this copy's own runtime.
pub(crate) fn find_local(name: &str) -> Option<Published> {
    let meta = runtime().meta.as_ref().ok()?;
    let meta = lock(meta);
    meta.entries().iter().find(|e| e.name == name).cloned()
}

impl From<Published> for DynamicKey {
    fn from(p: Published) -> Self {
        DynamicKey {
            name: p.name,
            size: p.size,
            offset: p.offset,
        }
    }
}

/// A dynamic key with a typed value, the run-time counterpart of a `#[task_local_data]` static.
///
/// ```
/// use tld_runtime::DynamicHint;
///
/// let budget = DynamicHint::<u64>::create("budget_ns")?;
/// assert_eq!(budget.get(), 0);
/// budget.set(250_000);
/// assert_eq!(budget.update(|b| { *b /= 2; *b }), 125_000);
/// # Ok::<(), tld_runtime::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicHint<T: TldType> {
    key: DynamicKey,
    _type: PhantomData<fn() -> T>,
}

impl<T: TldType> DynamicHint<T> {
    /// Creates a key of `size_of::<T>()` bytes; see [`DynamicKey::create`] for the errors.
    pub fn create(name: &str) -> Result<Self, Error> {
        Self::check_type(name)?;
        DynamicKey::create(name, std::mem::size_of::<T>()).map(Self::typed)
    }

    /// The published key of that name, if it exists and its size is `size_of::<T>()`.
    pub fn find(name: &str) -> Option<Self> {
        let key = DynamicKey::find(name)?;
        (key.size == std::mem::size_of::<T>() && Self::check_type(name).is_ok())
            .then(|| Self::typed(key))
    }

    fn check_type(name: &str) -> Result<(), Error> {
        if std::mem::align_of::<T>() > wire::MAX_HINT_ALIGN || std::mem::size_of::<T>() == 0 {
            return Err(Error::InvalidKey {
                key: name.to_string(),
                reason: "the type needs size >= 1 and alignment <= 8".into(),
            });
        }
        Ok(())
    }

    fn typed(key: DynamicKey) -> Self {
        DynamicHint {
            key,
            _type: PhantomData,
        }
    }

    /// The untyped key.
    pub fn key(&self) -> &DynamicKey {
        &self.key
    }

    /// Writes the calling thread's value.
    pub fn set(&self, value: T) {
        if let Some(p) = self.key.slot() {
            // SAFETY: the slot holds `size_of::<T>()` bytes at an offset that is a multiple of
            // 8 (>= `T`'s alignment) in a page-aligned block; volatile because BPF may race.
            unsafe { p.cast::<T::Raw>().write_volatile(value.into_raw()) }
        }
    }

    /// Reads the calling thread's value, including what a BPF program wrote into it.
    pub fn get(&self) -> T {
        match self.key.slot() {
            // SAFETY: as in `set`; any bit pattern is a valid `T::Raw`.
            Some(p) => T::from_raw(unsafe { p.cast::<T::Raw>().read_volatile() }),
            None => T::from_raw(bytemuck::Zeroable::zeroed()),
        }
    }

    /// Reads, lets `f` change, and writes back the calling thread's value.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut value = self.get();
        let result = f(&mut value);
        self.set(value);
        result
    }
}
