//! The protocol between copies of the runtime: the function table that the copy serving the
//! process publishes (see [`crate::copies::rendezvous`]), and the C types that cross it.
//!
//! Copies may have been built by different compilers and versions of this crate, so nothing of
//! Rust's layout crosses: only `#[repr(C)]` structs of integers, raw pointers and `extern "C"`
//! functions. Data goes in as borrowed pointers valid for the call; data comes out through a
//! sink, a callback that the caller passes and that copies what it needs before it returns.
//! Neither side ever frees the other's memory (their allocators may differ), and nothing
//! unwinds across (an `extern "C"` function aborts on a panic).
//!
//! A copy joins only a table whose protocol is [`PROTOCOL`]. Within one protocol the table may
//! grow at its end: [`HostTable::size`] says how much of it the serving copy has.

use std::ffi::c_void;

/// The protocol this copy of the runtime speaks with the others in its process (see
/// [`crate::copies::rendezvous`]). Copies of one protocol share a runtime; a copy of another one stays
/// on its own ([`crate::Sharing::Isolated`]).
pub const PROTOCOL: u32 = 1;

/// Borrowed bytes (UTF-8 for strings), valid for the duration of a call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawStr {
    /// The first byte; dangling when `len` is 0.
    pub ptr: *const u8,
    /// The number of bytes.
    pub len: usize,
}

impl RawStr {
    /// Borrows `bytes`.
    pub fn new(bytes: &[u8]) -> RawStr {
        RawStr {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The bytes.
    ///
    /// # Safety
    /// `ptr` must be valid for reads of `len` bytes for `'a`, which the caller chooses no
    /// longer than the call that received it.
    pub unsafe fn bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller's promise.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The text, with any invalid UTF-8 replaced.
    ///
    /// # Safety
    /// As for [`RawStr::bytes`].
    pub unsafe fn text(self) -> String {
        // SAFETY: the caller's promise.
        String::from_utf8_lossy(unsafe { self.bytes() }).into_owned()
    }
}

/// A hint's declaration ([`crate::Site`]).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawSite {
    /// The key.
    pub key: RawStr,
    /// The static's name.
    pub rust_name: RawStr,
    /// Its type, as written.
    pub type_name: RawStr,
    /// Its module.
    pub module_path: RawStr,
    /// Its file.
    pub file: RawStr,
    /// Its line.
    pub line: u32,
    /// Its column.
    pub column: u32,
}

/// One static hint of a part that joins.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawHint {
    /// Its declaration.
    pub site: RawSite,
    /// The bytes it takes in a page (for a consistent hint, with its counter).
    pub size: usize,
    /// 1 for a consistent hint.
    pub consistent: u32,
    /// The first bytes of every thread's value; the rest of `size` starts at zero.
    pub init: RawStr,
}

/// A copy of the runtime that joins the one serving the process.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawPart {
    /// Identifies the part for as long as it is loaded (an address in it).
    pub token: u64,
    /// Its static hints, sorted by key.
    pub hints: *const RawHint,
    /// How many.
    pub n_hints: usize,
    /// Called on a thread whose page the serving copy takes away: the part forgets it (its
    /// thread-local pointer to the page goes null). [`FORGET_RELEASED`] or
    /// [`FORGET_EXITING`]. Must return quickly and call nothing of the serving copy.
    pub forget: extern "C" fn(u32),
}

/// [`RawPart::forget`]'s argument: the thread gave its page back and goes on; its next access
/// gets a new one.
pub const FORGET_RELEASED: u32 = 0;
/// [`RawPart::forget`]'s argument: the thread is ending.
pub const FORGET_EXITING: u32 = 1;

/// A key as the serving copy published it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RawKey {
    /// The value's size.
    pub size: usize,
    /// Its offset from the start of a thread's page.
    pub offset: usize,
}

/// An [`crate::Error`]: its kind, and its fields by position (see [`crate::copies::marshal`]).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawError {
    /// Which variant.
    pub kind: u32,
    /// 1 if `errno` holds one.
    pub has_errno: u32,
    /// The errno.
    pub errno: i32,
    /// Text fields, in the variant's order.
    pub texts: [RawStr; 3],
    /// Number fields, in the variant's order.
    pub numbers: [u64; 3],
    /// Declarations, or null.
    pub sites: [*const RawSite; 2],
    /// The error's message, for a kind the receiver does not know.
    pub message: RawStr,
}

/// A [`crate::Status`] of the serving copy.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawStatus {
    /// 0 not attempted, 1 connected, 2 detached.
    pub connection: u32,
    /// The connected map's id.
    pub map_id: u32,
    /// The connected map's name.
    pub map_name: RawStr,
    /// 1 from an fd, 2 pinned at `pin_path`.
    pub source: u32,
    /// The pin path.
    pub pin_path: RawStr,
    /// Why it is detached, or null.
    pub reason: *const RawError,
    /// The last failed change, or null.
    pub last_error: *const RawError,
    /// Keys published in the metadata page.
    pub published_keys: u64,
    /// Data bytes the keys use.
    pub data_bytes: u64,
    /// Data bytes a page has room for.
    pub data_capacity: u64,
    /// The page size.
    pub page_size: u64,
    /// Threads that have a page.
    pub live_threads: u64,
    /// Threads registered in the connected map.
    pub registered_threads: u64,
    /// Pages threads have used.
    pub pool_pages: u64,
    /// Copies of the runtime that share it, the serving one included.
    pub parts: u64,
    /// The serving copy's identity.
    pub runtime_id: u64,
    /// The connected map's generation: 0 none, 1 Linux 6.18's, 2 Linux 7.x's.
    pub generation: u32,
    /// Times the runtime registered every thread again after the guard reported a spoof.
    pub guard_repairs: u64,
    /// The additional maps (`connect_also`): `additional_len` of them at `additional`.
    pub additional: *const RawMapStatus,
    /// How many maps `additional` holds.
    pub additional_len: usize,
}

/// A [`crate::MapStatus`]: an additional map of the serving copy.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawMapStatus {
    /// The map's id.
    pub map_id: u32,
    /// Its generation, as in [`RawStatus::generation`].
    pub generation: u32,
    /// Its name.
    pub map_name: RawStr,
}

/// What a [`crate::Status`] of the serving copy says beyond [`RawStatus`] (through
/// [`HostTable::status_more`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RawStatusMore {
    /// 1 while the watcher thread runs, else 0.
    pub watcher: u32,
    /// Threads' registrations that failed, in the process's life.
    pub registration_failures: u64,
}

/// Where the callee delivers an error: `call(ctx, error)`, at most once, before it returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ErrorSink {
    /// The caller's state.
    pub ctx: *mut c_void,
    /// Copies the error out. The error is valid only during the call.
    pub call: unsafe extern "C" fn(*mut c_void, *const RawError),
}

/// Where the callee delivers a status: `call(ctx, status)`, once, before it returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StatusSink {
    /// The caller's state.
    pub ctx: *mut c_void,
    /// Copies the status out. The status is valid only during the call.
    pub call: unsafe extern "C" fn(*mut c_void, *const RawStatus),
}

/// Phases of a thread, as [`HostTable::enter_thread`] reports them.
pub mod phase {
    /// It has no page yet (out of memory: try again later).
    pub const NEW: u32 = 0;
    /// It is being set up or torn down: the access must not wait.
    pub const BUSY: u32 = 1;
    /// It has its page.
    pub const ACTIVE: u32 = 2;
    /// It released its page for good.
    pub const EXITED: u32 = 3;
}

/// The serving copy's functions. Calls that can fail return 0, or -1 after delivering the error
/// to their sink.
#[repr(C)]
#[derive(Debug)]
pub struct HostTable {
    /// `size_of::<HostTable>()` of the serving copy.
    pub size: usize,
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// Joins a part: publishes its hints (all or none) and writes their offsets, in the
    /// order given, to `offsets` (room for `n_hints`), and the part's index to `index`
    /// (always, failure or not). The part is joined even when its hints cannot be published:
    /// its threads share pages all the same. Joining again with the same token gives the same
    /// answer.
    pub join: unsafe extern "C" fn(
        part: *const RawPart,
        offsets: *mut u32,
        index: *mut u32,
        err: ErrorSink,
    ) -> i32,
    /// Forgets a part that is being unloaded: its keys stay published (see the crate docs),
    /// and its `forget` is never called again.
    pub leave: extern "C" fn(token: u64),
    /// Gives the calling thread its page if it has none, and returns it (null without one);
    /// writes the thread's [`phase`]. `part` is the caller's index from `join`: the serving
    /// copy tells a part to forget a thread's page only on threads that asked for it.
    pub enter_thread: unsafe extern "C" fn(part: u32, phase: *mut u32) -> *mut u8,
    /// Takes the calling thread's page away now; its next access gets a new one.
    pub release_thread: extern "C" fn(),
    /// [`crate::thread_init`].
    pub thread_init: unsafe extern "C" fn(err: ErrorSink) -> i32,
    /// [`crate::connect`] with a file descriptor of this process.
    pub connect_fd: unsafe extern "C" fn(fd: i32, err: ErrorSink) -> i32,
    /// [`crate::connect_pinned`].
    pub connect_pinned: unsafe extern "C" fn(path: RawStr, err: ErrorSink) -> i32,
    /// [`crate::DynamicKey::create`].
    pub create_key:
        unsafe extern "C" fn(name: RawStr, size: usize, out: *mut RawKey, err: ErrorSink) -> i32,
    /// [`crate::DynamicKey::find`]: 0 and the key, or -1 if there is none.
    pub find_key: unsafe extern "C" fn(name: RawStr, out: *mut RawKey) -> i32,
    /// [`crate::status`].
    pub status: unsafe extern "C" fn(sink: StatusSink),
    // The functions below came later: a serving copy has each one only if `size` reaches
    // past it (see `HostTable::has`); a table that ends before them is still of this protocol.
    /// [`crate::set_watcher`]: 0 off, anything else on.
    pub set_watcher: extern "C" fn(on: u32),
    /// What [`crate::status`] says beyond [`RawStatus`]: written to `out`, with the last
    /// thread's registration error, if there is one, delivered to `err`.
    pub status_more: unsafe extern "C" fn(out: *mut RawStatusMore, err: ErrorSink),
}

impl HostTable {
    /// The size of the table's first version: every serving copy of this protocol has at
    /// least these functions.
    pub const FIRST_SIZE: usize = std::mem::offset_of!(HostTable, set_watcher);

    /// Whether the serving copy's table reaches past the field at `offset` (of `len`
    /// bytes), that is, whether it has that function.
    pub fn has(&self, offset: usize, len: usize) -> bool {
        self.size >= offset + len
    }
}
