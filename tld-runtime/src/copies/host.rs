//! The serving side of the protocol: the function table that this copy publishes when it
//! serves the process, and what its functions do in the runtime.
//!
//! Every function here runs the same code as this copy's public API does for its own hints;
//! the only additions are the parts ([`crate::copies::parts`]): joining places a part's hints in the
//! published layout, leaving orphans them, and a thread whose page goes away tells every part
//! to forget it before the page goes back to the pool.

use crate::api;
use crate::copies::marshal::{deliver_error, site_of, with_raw_status};
use crate::copies::parts::{Part, PartHint, Placement};
use crate::copies::protocol::{
    phase, ErrorSink, HostTable, RawKey, RawPart, RawStatusMore, RawStr, StatusSink, PROTOCOL,
};
use crate::declare::dynamic;
use crate::error::Error;
use crate::locks::{lock, read, write};
use crate::page::wire;
use crate::runtime::{runtime, Runtime};
use crate::threads::lifecycle;
use crate::threads::thread_state::{self, Phase};

/// The table this copy publishes when it serves the process.
static HOST_TABLE: HostTable = HostTable {
    size: std::mem::size_of::<HostTable>(),
    protocol: PROTOCOL,
    join,
    leave,
    enter_thread,
    release_thread,
    thread_init,
    connect_fd,
    connect_pinned,
    create_key,
    find_key,
    status,
    set_watcher,
    status_more,
};

/// The address of this copy's table: what the rendezvous publishes, and the identity of the
/// runtime this copy serves.
pub(crate) fn table_address() -> u64 {
    std::ptr::addr_of!(HOST_TABLE) as u64
}

impl Runtime {
    /// Joins a part (see [`crate::copies::parts`]): all or none of its hints are published. Joining
    /// again with the same token gives the same answer.
    /// Returns the part's index and its hints' offsets, or why they are not published.
    pub(crate) fn join_part(
        &self,
        token: u64,
        forget: extern "C" fn(u32),
        hints: Vec<PartHint>,
    ) -> (u32, Result<Vec<u32>, Error>) {
        // The write lock: no thread sets up, exits or registers while live pages are written.
        let _conn = write(&self.conn);
        let mut parts = write(&self.parts);
        if let Some(part) = parts.get(token) {
            return (part.index, part.outcome.clone());
        }
        let outcome = self.place(&parts, &hints);
        let index = parts.next_index();
        parts.add(
            Part {
                token,
                index,
                forget,
                outcome: outcome.clone(),
            },
            &hints,
        );
        (index, outcome)
    }

    /// Publishes `hints` (all or none) and gives each thread, and the template of new
    /// threads, their initial values. Called under the connection's write lock.
    fn place(
        &self,
        parts: &crate::copies::parts::Parts,
        hints: &[PartHint],
    ) -> Result<Vec<u32>, Error> {
        let meta = self.meta.as_ref().map_err(Clone::clone)?;
        let mut meta = lock(meta);
        let data_area = self.layout.page_size - self.layout.plan.start;
        let mut plan = Vec::with_capacity(hints.len());
        let (mut new_entries, mut new_bytes) = (0, 0);
        for (i, hint) in hints.iter().enumerate() {
            let key = hint.site.key;
            if let Some(first) = hints[..i].iter().find(|h| h.site.key == key) {
                return Err(Error::DuplicateKey {
                    key: key.to_string(),
                    first: first.site,
                    second: hint.site,
                });
            }
            if let Err(reason) = crate::page::layout::check_key(key) {
                return Err(Error::InvalidHint {
                    site: hint.site,
                    reason,
                });
            }
            if hint.size == 0 || hint.size > data_area || hint.init.len() > hint.size {
                return Err(Error::InvalidHint {
                    site: hint.site,
                    reason: format!(
                        "it takes {} bytes (with {} initial ones); a page's data area has {}",
                        hint.size,
                        hint.init.len(),
                        data_area
                    ),
                });
            }
            let published = meta
                .entries()
                .iter()
                .find(|e| e.name == key)
                .map(|e| e.offset);
            let placement = parts.placement(hint, published)?;
            if placement == Placement::New {
                new_entries += 1;
                new_bytes += wire::round8(hint.size);
                if meta.count() + new_entries > meta.capacity() {
                    return Err(Error::NoSlots {
                        key: key.to_string(),
                        max: meta.capacity(),
                    });
                }
                if new_bytes > meta.available() {
                    return Err(Error::NoRoom {
                        key: key.to_string(),
                        size: wire::round8(hint.size),
                        available: meta.available() + wire::round8(hint.size) - new_bytes,
                    });
                }
            }
            plan.push(placement);
        }
        let mut template = write(&self.template);
        let mut offsets = Vec::with_capacity(hints.len());
        for (hint, placement) in hints.iter().zip(plan) {
            let offset = match placement {
                Placement::Adopt(offset) => offset,
                Placement::New => meta.next_offset(),
            };
            let mut value = vec![0u8; hint.size];
            value[..hint.init.len()].copy_from_slice(&hint.init);
            template[offset..offset + hint.size].copy_from_slice(&value);
            for (_, record) in self.threads.iter() {
                // Nothing else of this process uses these bytes: the key is not published yet,
                // or its part left. BPF may race on a published key, hence volatile writes.
                // SAFETY: a live thread's block (the write lock keeps every record whole), with
                // `offset + size` in its data area (checked against the metadata page above).
                unsafe { write_bytes_volatile((record.block.addr() + offset) as *mut u8, &value) };
            }
            if placement == Placement::New {
                let at = meta.publish(hint.site.key, hint.size);
                debug_assert_eq!(at, offset, "entries are appended where planned");
            }
            offsets.push(offset as u32);
        }
        Ok(offsets)
    }

    /// Forgets a part that is being unloaded; its keys are orphaned.
    pub(crate) fn leave_part(&self, token: u64) {
        let _conn = write(&self.conn);
        write(&self.parts).remove(token);
    }

    /// Tells every part that asked for the calling thread's page that it goes away. Called
    /// with the connection's read lock held, before the page goes back to the pool.
    pub(crate) fn tell_parts(&self, reason: u32) {
        let seen = thread_state::take_parts_seen();
        for forget in read(&self.parts).forgets(seen) {
            forget(reason);
        }
    }
}

/// Writes `bytes` to `dst` one volatile byte at a time.
///
/// # Safety
/// `dst` must be valid for writes of `bytes.len()` bytes.
unsafe fn write_bytes_volatile(dst: *mut u8, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        // SAFETY: the caller's promise covers `dst + i`.
        unsafe { dst.add(i).write_volatile(b) };
    }
}

/// # Safety
/// The protocol's rules: `part` and what it points to are valid for the call, `offsets` has
/// room for `n_hints` offsets, `index` for one, `err` is a caller's sink.
unsafe extern "C" fn join(
    part: *const RawPart,
    offsets: *mut u32,
    index: *mut u32,
    err: ErrorSink,
) -> i32 {
    // SAFETY: the protocol's rules.
    let part = unsafe { &*part };
    let raw = if part.n_hints == 0 {
        &[][..]
    } else {
        // SAFETY: `hints` points to `n_hints` hints, valid for the call.
        unsafe { std::slice::from_raw_parts(part.hints, part.n_hints) }
    };
    let hints = raw
        .iter()
        .map(|h| PartHint {
            // SAFETY: the hint's strings are valid for the call; `site_of` copies them.
            site: unsafe { site_of(&h.site) },
            size: h.size,
            consistent: h.consistent != 0,
            // SAFETY: as above.
            init: unsafe { h.init.bytes() }.to_vec(),
        })
        .collect();
    let (part_index, outcome) = runtime().join_part(part.token, part.forget, hints);
    // SAFETY: the caller's promise.
    unsafe { index.write(part_index) };
    match outcome {
        Ok(placed) => {
            for (i, offset) in placed.into_iter().enumerate() {
                // SAFETY: `offsets` has room for `n_hints`, and there is one offset per hint.
                unsafe { offsets.add(i).write(offset) };
            }
            0
        }
        // SAFETY: `err` is the caller's sink.
        Err(e) => unsafe { deliver_error(err, &e) },
    }
}

extern "C" fn leave(token: u64) {
    runtime().leave_part(token);
}

/// # Safety
/// `phase_out` must be valid for a write.
unsafe extern "C" fn enter_thread(part: u32, phase_out: *mut u32) -> *mut u8 {
    let phase = lifecycle::enter_thread();
    if phase == Phase::Active {
        thread_state::note_part_seen(part);
    }
    let code = match phase {
        Phase::New => phase::NEW,
        Phase::Busy => phase::BUSY,
        Phase::Active => phase::ACTIVE,
        Phase::Exited => phase::EXITED,
    };
    // SAFETY: the caller's promise.
    unsafe { phase_out.write(code) };
    thread_state::current_block()
}

extern "C" fn release_thread() {
    lifecycle::release_thread();
}

/// Turns a result into the protocol's return value.
///
/// # Safety
/// `err` must be a caller's sink.
unsafe fn answer(result: Result<(), Error>, err: ErrorSink) -> i32 {
    match result {
        Ok(()) => 0,
        // SAFETY: the caller's promise.
        Err(e) => unsafe { deliver_error(err, &e) },
    }
}

/// # Safety
/// `err` must be a caller's sink.
unsafe extern "C" fn thread_init(err: ErrorSink) -> i32 {
    // SAFETY: the caller's promise.
    unsafe { answer(api::local_thread_init(), err) }
}

/// # Safety
/// `err` must be a caller's sink; `fd` a file descriptor of this process.
unsafe extern "C" fn connect_fd(fd: i32, err: ErrorSink) -> i32 {
    let result = if fd < 0 {
        Err(Error::from_errno("duplicating the map fd", libc::EBADF))
    } else {
        // SAFETY: the joined copy passes a descriptor its caller lent it for the call, which
        // the runtime only duplicates.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        api::local_connect(fd)
    };
    // SAFETY: the caller's promise.
    unsafe { answer(result, err) }
}

/// # Safety
/// `path` must be valid for the call; `err` a caller's sink.
unsafe extern "C" fn connect_pinned(path: RawStr, err: ErrorSink) -> i32 {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: the caller's promise.
    let path = std::ffi::OsStr::from_bytes(unsafe { path.bytes() });
    // SAFETY: the caller's promise.
    unsafe { answer(api::local_connect_pinned(path.as_ref()), err) }
}

/// # Safety
/// `name` valid for the call, `out` for a write, `err` a caller's sink.
unsafe extern "C" fn create_key(
    name: RawStr,
    size: usize,
    out: *mut RawKey,
    err: ErrorSink,
) -> i32 {
    // SAFETY: the caller's promise.
    let name = unsafe { name.text() };
    match dynamic::create_local(&name, size) {
        Ok(key) => {
            // SAFETY: the caller's promise.
            unsafe {
                out.write(RawKey {
                    size: key.size,
                    offset: key.offset,
                })
            };
            0
        }
        // SAFETY: the caller's promise.
        Err(e) => unsafe { deliver_error(err, &e) },
    }
}

/// # Safety
/// `name` valid for the call, `out` for a write.
unsafe extern "C" fn find_key(name: RawStr, out: *mut RawKey) -> i32 {
    // SAFETY: the caller's promise.
    let name = unsafe { name.text() };
    match dynamic::find_local(&name) {
        Some(key) => {
            // SAFETY: the caller's promise.
            unsafe {
                out.write(RawKey {
                    size: key.size,
                    offset: key.offset,
                })
            };
            0
        }
        None => -1,
    }
}

/// # Safety
/// `sink` must be a caller's sink.
unsafe extern "C" fn status(sink: StatusSink) {
    let status = runtime().status();
    // SAFETY: the caller's promise; the status is valid during the call.
    with_raw_status(&status, |raw| unsafe { (sink.call)(sink.ctx, raw) });
}

/// [`crate::set_watcher`] in this copy's runtime.
extern "C" fn set_watcher(on: u32) {
    api::local_set_watcher(on != 0);
}

/// # Safety
/// `out` must be valid for a write, `err` a caller's sink.
unsafe extern "C" fn status_more(out: *mut RawStatusMore, err: ErrorSink) {
    let status = runtime().status();
    // SAFETY: the caller's promise.
    unsafe {
        out.write(RawStatusMore {
            watcher: u32::from(status.watcher),
            registration_failures: status.registration_failures,
        })
    };
    if let Some(e) = &status.last_registration_error {
        // SAFETY: the caller's promise.
        unsafe { deliver_error(err, e) };
    }
}
