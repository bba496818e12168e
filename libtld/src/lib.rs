//! # libtld: task local data for C, C++ and any language with a C FFI
//!
//! (`README.md` is the overview; `include/tld.h` the reference.)
//!
//! The tld runtime ([`tld_runtime`]) behind a C ABI: `libtld.so` (soname `libtld.so.0`),
//! `libtld.a`, the header `tld.h` (in `include/`, which documents every function) and a
//! pkg-config file (`make install PREFIX=...` installs them).
//!
//! The interface is the one of the user-space task local data library of Linux 7.x's BPF
//! selftests (`TLD_DEFINE_KEY`, `tld_create_key`, `tld_get_data`, `tld_free`,
//! `tld_key_is_err`, `tld_key_err_or_zero`), so that a program written for it builds against
//! `tld.h` with a changed include, plus connecting by fd or pin, status and typed helpers.
//!
//! ```c libtld
//! #include <tld.h>
//!
//! TLD_DEFINE_KEY(prio_key, "priority", sizeof(int));
//!
//! void handle_request(void)
//! {
//!         int *prio = tld_get_data(-1, prio_key);
//!         if (prio)
//!                 *prio = 5;
//! }
//! ```
//!
//! # How it maps onto the runtime
//!
//! - A key is a [`DynamicKey`]; its `off` is the value's offset in a thread's page, which is
//!   never 0 (the page starts with its header).
//! - `tld_get_data()` is inline in `tld.h`: a load of the C thread-local `__tld_thread_page`
//!   and an add. Its slow path ([`tld__get_data_slow`]) asks the runtime for the thread's page
//!   ([`bindings::thread_page`]) and stores it there; a page release hook
//!   ([`bindings::on_page_release`]) clears it before the page goes away.
//! - `tld_free()` is [`bindings::release_thread_page`]: unlike the selftests library, a page
//!   is also released as the thread exits, so calling it is optional.
//! - libtld is a copy of the runtime like any other: in a process with Rust parts (the
//!   executable, plugins, Python extensions) they share one runtime, whichever serves it.
//!
//! Other languages load `libtld.so` and call the exported functions, `tld_get_data` included
//! (exported as a function as well as inline in the header): see `examples/python/`.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Once;

use tld_runtime::{bindings, Connection, DynamicKey, Error, Sharing};

/// `tld_key_t`: the value's offset in a thread's page, or a negative errno.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TldKey {
    /// The offset (> 0), or -errno.
    pub off: i16,
}

impl TldKey {
    fn error(errno: c_int) -> TldKey {
        TldKey {
            off: -(errno as i16),
        }
    }
}

extern "C" {
    /// Sets the C thread-local that `tld_get_data()` reads (`src/page.c`).
    fn tld__set_thread_page(page: *mut c_char);
}

/// Sets the calling thread's C page pointer.
fn set_c_page(page: *mut u8) {
    // SAFETY: the function stores into the calling thread's own thread-local; no other memory.
    unsafe { tld__set_thread_page(page.cast()) }
}

/// The page release hook: the C pointer goes null before the page goes away.
fn forget_c_page() {
    set_c_page(std::ptr::null_mut());
}

static HOOK: Once = Once::new();
static HOOKED: AtomicBool = AtomicBool::new(false);

/// The calling thread's page, kept in the C thread-local when the release hook is in place.
fn thread_page() -> Option<NonNull<u8>> {
    HOOK.call_once(|| {
        let hooked = bindings::on_page_release(forget_c_page).is_ok();
        HOOKED.store(hooked, Ordering::Release);
    });
    let page = bindings::thread_page()?;
    // Without the hook the C thread-local stays null: every call takes the slow path, and no
    // pointer to a page that went away is ever kept.
    if HOOKED.load(Ordering::Acquire) {
        set_c_page(page.as_ptr());
    }
    Some(page)
}

/// The errno that stands for `e` in C.
fn errno_of(e: &Error) -> c_int {
    e.errno().unwrap_or(match e {
        Error::DuplicateKey { .. } => libc::EEXIST,
        Error::NotATldMap { .. } | Error::InvalidHint { .. } => libc::EINVAL,
        Error::TooLarge { .. } => libc::E2BIG,
        Error::TooManyKeys { .. } => libc::ENOSPC,
        Error::AutoConnectDisabled => libc::ENOTCONN,
        Error::ThreadExiting => libc::ESRCH,
        Error::ThreadBusy => libc::EBUSY,
        Error::OtherRuntime { .. } => libc::EPROTO,
        _ => libc::EIO,
    })
}

/// `0` or `-errno`.
fn answer(result: Result<(), Error>) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => -errno_of(&e),
    }
}

/// A C string argument as UTF-8, or `EINVAL`.
///
/// # Safety
/// `s` must be null or a NUL-terminated string valid for `'a`.
unsafe fn text<'a>(s: *const c_char) -> Result<&'a str, c_int> {
    if s.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: the caller's promise.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| libc::EINVAL)
}

/// `tld_create_key()`: see `tld.h`.
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn tld_create_key(name: *const c_char, size: usize) -> TldKey {
    // SAFETY: the caller's promise.
    let name = match unsafe { text(name) } {
        Ok(name) => name,
        Err(errno) => return TldKey::error(errno),
    };
    if size > u16::MAX as usize {
        // Larger than any page's data area that a key's offset can reach.
        return TldKey::error(libc::E2BIG);
    }
    match DynamicKey::create(name, size) {
        Ok(key) => match i16::try_from(key.offset()) {
            Ok(off) => TldKey { off },
            // Only on pages of 64 KiB: the key exists, but tld_key_t cannot say where.
            Err(_) => TldKey::error(libc::E2BIG),
        },
        Err(e) => TldKey::error(errno_of(&e)),
    }
}

/// `tld_find_key()`: see `tld.h`.
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn tld_find_key(name: *const c_char) -> TldKey {
    // SAFETY: the caller's promise.
    let name = match unsafe { text(name) } {
        Ok(name) => name,
        Err(errno) => return TldKey::error(errno),
    };
    DynamicKey::find(name)
        .and_then(|key| i16::try_from(key.offset()).ok())
        .map_or(TldKey::error(libc::ENOENT), |off| TldKey { off })
}

/// The id of the map behind `fd`, from `BPF_OBJ_GET_INFO_BY_FD`.
fn map_id(fd: c_int) -> Option<u32> {
    #[repr(C)]
    struct Attr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    // The head of struct bpf_map_info: type, then id.
    let mut info = [0u32; 2];
    let mut attr = Attr {
        bpf_fd: fd as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
    };
    const BPF_OBJ_GET_INFO_BY_FD: c_int = 15;
    // SAFETY: `Attr` is the `info` member of `union bpf_attr`; `info` points at a writable
    // buffer of `info_len` bytes that outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &mut attr as *mut Attr,
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    (rc == 0).then_some(info[1])
}

/// The id of the map `tld_get_data()` last connected to.
static FOLLOWED: AtomicU32 = AtomicU32::new(0);

/// Connects to the map behind `fd` if it is not the last one `tld_get_data()` connected to.
fn follow(fd: c_int) {
    let Some(id) = map_id(fd) else {
        return;
    };
    if FOLLOWED.load(Ordering::Acquire) == id {
        return;
    }
    // SAFETY: the caller lent the descriptor for the call; the runtime only duplicates it.
    let map = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    if tld_runtime::connect(map).is_ok() {
        FOLLOWED.store(id, Ordering::Release);
    }
}

/// `tld_get_data()` when the thread's C page pointer is null (its first call, or after
/// `tld_free()`) or the key is not valid: see `tld.h`. Not for direct use.
#[no_mangle]
pub extern "C" fn tld__get_data_slow(map_fd: c_int, key: TldKey) -> *mut c_void {
    if key.off <= 0 {
        return std::ptr::null_mut();
    }
    if map_fd >= 0 {
        follow(map_fd);
    }
    let Some(page) = thread_page() else {
        return std::ptr::null_mut();
    };
    let off = key.off as usize;
    if off >= tld_wire::page_size() {
        return std::ptr::null_mut();
    }
    // SAFETY: `off` lies within the page.
    unsafe { page.as_ptr().add(off) }.cast()
}

/// `tld_get_data()` as a function, for languages that cannot use the inline one of `tld.h`
/// (Python's ctypes, other FFIs): the same answer.
#[no_mangle]
pub extern "C" fn tld_get_data(map_fd: c_int, key: TldKey) -> *mut c_void {
    tld__get_data_slow(map_fd, key)
}

/// `tld_free()`: see `tld.h`.
#[no_mangle]
pub extern "C" fn tld_free() {
    bindings::release_thread_page();
    // The hook cleared it if it ran; without a page there was nothing to clear.
    forget_c_page();
}

/// `tld_connect_fd()`: see `tld.h`.
#[no_mangle]
pub extern "C" fn tld_connect_fd(map_fd: c_int) -> c_int {
    if map_fd < 0 {
        return -libc::EBADF;
    }
    // SAFETY: the caller lent the descriptor for the call; the runtime only duplicates it.
    let map = unsafe { std::os::fd::BorrowedFd::borrow_raw(map_fd) };
    let result = tld_runtime::connect(map);
    if result.is_ok() {
        if let Some(id) = map_id(map_fd) {
            FOLLOWED.store(id, Ordering::Release);
        }
    }
    answer(result)
}

/// `tld_connect_pinned()`: see `tld.h`.
///
/// # Safety
/// `path` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn tld_connect_pinned(path: *const c_char) -> c_int {
    if path.is_null() {
        return -libc::EINVAL;
    }
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: the caller's promise.
    let path = std::ffi::OsStr::from_bytes(unsafe { CStr::from_ptr(path) }.to_bytes());
    answer(tld_runtime::connect_pinned(path))
}

/// `tld_thread_init()`: see `tld.h`.
#[no_mangle]
pub extern "C" fn tld_thread_init() -> c_int {
    let result = tld_runtime::thread_init();
    // Let the C fast path see the page too.
    let _ = thread_page();
    answer(result)
}

/// `struct tld_status`: see `tld.h`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TldStatus {
    /// `enum tld_connection`.
    pub connection: c_int,
    /// Why it is detached, as -errno.
    pub error: c_int,
    /// The connected map's id.
    pub map_id: u32,
    /// The connected map's name.
    pub map_name: [c_char; 16],
    /// Why it is detached, in words.
    pub reason: [c_char; 256],
    /// Why the last change of map failed.
    pub last_error: [c_char; 256],
    /// Keys BPF can find.
    pub published_keys: u32,
    /// Bytes of a page the values use.
    pub data_bytes: u32,
    /// Bytes of a page for values.
    pub data_capacity: u32,
    /// Threads that have a page.
    pub live_threads: u32,
    /// Threads registered in the map.
    pub registered_threads: u32,
    /// Copies of the runtime sharing it.
    pub parts: u32,
    /// `enum tld_sharing`.
    pub sharing: c_int,
    /// The runtime's identity.
    pub runtime_id: u64,
    /// Threads whose registration in a map failed.
    pub registration_failures: u64,
    /// The last such failure, in words.
    pub last_registration_error: [c_char; 256],
    /// 1 while the watcher thread runs.
    pub watcher: c_int,
}

/// `tld_set_watcher()`: see `tld.h`.
#[no_mangle]
pub extern "C" fn tld_set_watcher(on: c_int) {
    tld_runtime::set_watcher(on != 0);
}

/// Copies `text` into `field`, truncated, NUL-terminated.
fn put<const N: usize>(field: &mut [c_char; N], text: &str) {
    let n = text.len().min(N - 1);
    for (dst, &b) in field.iter_mut().zip(&text.as_bytes()[..n]) {
        *dst = b as c_char;
    }
    field[n] = 0;
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `tld_get_status()`: see `tld.h`.
///
/// # Safety
/// `status` must be null or valid for writes of `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn tld_get_status(status: *mut TldStatus, size: usize) -> c_int {
    if status.is_null() {
        return -libc::EINVAL;
    }
    let s = tld_runtime::status();
    let mut out = TldStatus {
        connection: 0,
        error: 0,
        map_id: 0,
        map_name: [0; 16],
        reason: [0; 256],
        last_error: [0; 256],
        published_keys: saturate(s.published_keys),
        data_bytes: saturate(s.data_bytes),
        data_capacity: saturate(s.data_capacity),
        live_threads: saturate(s.live_threads),
        registered_threads: saturate(s.registered_threads),
        parts: saturate(s.parts),
        sharing: match s.sharing {
            Sharing::Serving => 0,
            Sharing::Joined => 1,
            Sharing::Isolated { .. } => 2,
            _ => 3,
        },
        runtime_id: s.runtime_id,
        registration_failures: s.registration_failures,
        last_registration_error: [0; 256],
        watcher: c_int::from(s.watcher),
    };
    if let Some(e) = &s.last_registration_error {
        put(&mut out.last_registration_error, &e.to_string());
    }
    match &s.connection {
        Connection::Connected {
            map_id, map_name, ..
        } => {
            out.connection = 1;
            out.map_id = *map_id;
            put(&mut out.map_name, map_name);
        }
        Connection::Detached { reason } => {
            out.connection = 2;
            out.error = -errno_of(reason);
            put(&mut out.reason, &reason.to_string());
        }
        _ => {}
    }
    if let Some(e) = &s.last_error {
        put(&mut out.last_error, &e.to_string());
    }
    let n = size.min(std::mem::size_of::<TldStatus>());
    // SAFETY: `status` is valid for `size` bytes (the caller's promise) and `out` for its own
    // size; `n` is at most both, and the two do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&out as *const TldStatus).cast::<u8>(),
            status.cast::<u8>(),
            n,
        )
    };
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_pages_from_rust() {
        let name = c"libtld_unit".as_ptr();
        // SAFETY: `name` is a NUL-terminated string.
        let key = unsafe { tld_create_key(name, 8) };
        assert!(key.off > 0);
        // SAFETY: as above.
        let again = unsafe { tld_create_key(name, 8) };
        assert_eq!(again, TldKey::error(libc::EEXIST));
        // SAFETY: as above.
        assert_eq!(unsafe { tld_find_key(name) }, key);
        let p = tld_get_data(-1, key).cast::<u64>();
        assert!(!p.is_null());
        // SAFETY: the key's 8 bytes in this thread's page.
        unsafe { p.write_volatile(77) };
        assert_eq!(tld_get_data(-1, key).cast::<u64>(), p);
        assert!(tld_get_data(-1, TldKey { off: 0 }).is_null());
        assert!(tld_get_data(-1, TldKey::error(libc::E2BIG)).is_null());
        // After tld_free the values start again at zero.
        tld_free();
        let q = tld_get_data(-1, key).cast::<u64>();
        // SAFETY: as above.
        assert_eq!(unsafe { q.read_volatile() }, 0);
        let mut st = std::mem::MaybeUninit::<TldStatus>::zeroed();
        let size = std::mem::size_of::<TldStatus>();
        // SAFETY: `st` has room for the whole struct.
        let rc = unsafe { tld_get_status(st.as_mut_ptr(), size) };
        assert_eq!(rc, 0);
        // SAFETY: fully written above.
        let st = unsafe { st.assume_init() };
        assert_eq!(st.live_threads, 1);
        assert_eq!((st.sharing, st.parts), (0, 1));
        assert!(st.published_keys >= 1);

        // The watcher switch, seen through the status: a running watcher ends at its next wake
        // (the watch interval, 1 s by default).
        tld_set_watcher(0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let watcher = loop {
            let mut st = std::mem::MaybeUninit::<TldStatus>::zeroed();
            // SAFETY: `st` has room for the whole struct.
            assert_eq!(unsafe { tld_get_status(st.as_mut_ptr(), size) }, 0);
            // SAFETY: fully written above.
            let watcher = unsafe { st.assume_init() }.watcher;
            if watcher == 0 || std::time::Instant::now() > deadline {
                break watcher;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(
            watcher, 0,
            "the watcher still runs 10 s after tld_set_watcher(0)"
        );
        tld_set_watcher(1);

        // A caller built before the fields added at the end passes a smaller size: nothing
        // past it is written.
        let old = std::mem::offset_of!(TldStatus, registration_failures);
        let mut buf = vec![0xaau8; size];
        // SAFETY: `buf` has room for `old` bytes (and more).
        assert_eq!(unsafe { tld_get_status(buf.as_mut_ptr().cast(), old) }, 0);
        assert!(buf[old..].iter().all(|&b| b == 0xaa));
    }
}
