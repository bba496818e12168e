//! The Rust-side operations of P1 and P2: a hint store, a raw thread-local store, and the
//! syscall approach (one `bpf_map_update_elem` per change).

use std::cell::Cell;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use tld_bench_hints::H00;

thread_local! {
    /// P1's floor: a raw const thread-local, the cheapest per-thread store Rust has.
    static RAW: Cell<u64> = const { Cell::new(0) };
}

/// `H00.set(v)`, through a function that is never inlined (P1, P2).
#[inline(never)]
pub fn set_hint(v: u64) {
    H00.set(v);
}

/// A store to a raw const `thread_local!` `Cell`, through a function that is never inlined (P1).
#[inline(never)]
pub fn set_thread_local(v: u64) {
    RAW.with(|c| c.set(v));
}

/// What [`set_thread_local`] stored last on this thread.
pub fn thread_local_value() -> u64 {
    RAW.with(Cell::get)
}

/// The calling thread's id.
pub fn gettid() -> i32 {
    // SAFETY: gettid cannot fail and touches no memory.
    unsafe { libc::gettid() }
}

/// `pidfd_open(gettid(), PIDFD_THREAD)`: a pidfd for the calling thread.
pub fn pidfd_self() -> Result<OwnedFd, i32> {
    // SAFETY: pidfd_open takes its arguments by value and touches no user memory.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, gettid(), libc::PIDFD_THREAD) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A hint kept the way applications do without this library (P2): in a task storage map whose
/// value is the hint itself, written with `bpf_map_update_elem` on every change.
///
/// The pidfd is opened once and kept, which is the cheapest way to do it.
pub struct SyscallHint {
    map: BorrowedFd<'static>,
    pidfd: OwnedFd,
}

impl SyscallHint {
    /// For the calling thread, in `map` (a task storage map with an 8-byte value).
    pub fn for_current_thread(map: BorrowedFd<'static>) -> Result<SyscallHint, i32> {
        Ok(SyscallHint {
            map,
            pidfd: pidfd_self()?,
        })
    }

    /// Sets the hint: one `bpf_map_update_elem(map, &pidfd, &v, BPF_ANY)`. Returns libbpf's
    /// `-errno` on failure.
    #[inline(never)]
    pub fn set(&self, v: u64) -> Result<(), i32> {
        let key: i32 = self.pidfd.as_raw_fd();
        // SAFETY: key and value point at live locals of the map's key (4) and value (8) sizes.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_map_update_elem(
                self.map.as_raw_fd(),
                (&key as *const i32).cast(),
                (&v as *const u64).cast(),
                libbpf_rs::libbpf_sys::BPF_ANY.into(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(rc)
        }
    }
}
