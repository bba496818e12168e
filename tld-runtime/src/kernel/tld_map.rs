//! The kernel map: opening and checking a `tld_data_map`, learning which generation of the
//! format its readers speak, and registering threads' pages in it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use crate::error::Error;
use crate::kernel::btf::Btf;
use crate::kernel::sys;
use crate::locks::lock;
use crate::page::wire::{self, Generation};

/// An open, checked `tld_data_map`.
#[derive(Debug)]
pub struct TldMap {
    fd: OwnedFd,
    info: sys::MapInfo,
    /// What its value is, from its BTF (or its size when the BTF cannot be read).
    generation: Generation,
    /// A guard (`tld-guard`) stamps this map's elements: registrations check for the stamp.
    guarded: AtomicBool,
    /// Threads registered since the connection's watcher last looked for their stamps
    /// ([`TldMap::take_pending`]).
    pending: Mutex<Vec<i32>>,
    /// Stamps in a row found missing.
    misses: AtomicU32,
}

/// Stamps in a row found missing after which the connection's watcher asks whether the guard
/// is gone (a scheduler killed before it could remove the guard's pin): if the guard's loader
/// no longer runs, or the guard does not say who loaded it, registrations stop being checked
/// until a guard's pin appears again. A live guard misses stamps when the kernel skips its
/// program (another run of it holds the CPU), which under an attack on a busy machine can
/// happen many times in a row: misses alone never decide.
pub const GUARD_GONE_AFTER: u32 = 16;

/// Where the guard's stamp lies in a 7.x value: the bytes after `start`, to the value's end.
const STAMP_AT: usize = wire::MAP_VALUE_START_OFFSET + 2;
/// The stamp's length in bytes (48 bits).
const STAMP_LEN: usize = wire::MAP_VALUE_SIZE_7 - STAMP_AT;

/// Whether stamp bytes are all zero: what a registration writes, and no guard has stamped.
fn stamp_is_zero(stamp: &[u8]) -> bool {
    stamp.iter().all(|&b| b == 0)
}

/// Whether stamp bytes are the guard's mark of a spoofed element (all ones).
fn stamp_is_spoofed(stamp: &[u8]) -> bool {
    stamp.iter().all(|&b| b == 0xff)
}

impl TldMap {
    /// Duplicates `fd` and checks that it is a task local data map.
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<TldMap, Error> {
        let fd =
            sys::dup_cloexec(fd).map_err(|e| Error::from_errno("duplicating the map fd", e))?;
        TldMap::check(fd)
    }

    /// Opens the map pinned at `path` in bpffs.
    pub fn open_pinned(path: &Path) -> Result<TldMap, Error> {
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Os {
            op: "opening the pinned map (the path contains a NUL byte)",
            errno: libc::EINVAL,
        })?;
        let fd = sys::obj_get(&c_path).map_err(|e| match e {
            libc::ENOENT => Error::MapNotFound {
                path: path.to_path_buf(),
            },
            e => Error::from_errno("opening the pinned map", e),
        })?;
        TldMap::check(fd)
    }

    fn check(fd: OwnedFd) -> Result<TldMap, Error> {
        let info = sys::map_info(fd.as_fd()).map_err(|e| match e {
            libc::EINVAL | libc::EBADF => Error::NotATldMap {
                reason: "the file descriptor is not a BPF map".into(),
            },
            e => Error::from_errno("reading the map's info", e),
        })?;
        let mut wrong = Vec::new();
        let mut generation = None;
        if info.map_type != sys::BPF_MAP_TYPE_TASK_STORAGE {
            wrong.push(format!(
                "its type is {} instead of BPF_MAP_TYPE_TASK_STORAGE ({})",
                info.map_type,
                sys::BPF_MAP_TYPE_TASK_STORAGE
            ));
        }
        if let Err(problem) = tld_wire::shape::check_key_size(info.key_size as usize) {
            wrong.push(problem);
        }
        match tld_wire::shape::generation_of_size(info.value_size as usize) {
            Ok(by_size) => generation = Some(by_size),
            Err(problem) => wrong.push(problem),
        }
        if wrong.is_empty() {
            match check_value_btf(&info) {
                Ok(Some(by_btf)) => generation = Some(by_btf),
                Ok(None) => {}
                Err(problem) => wrong.push(problem),
            }
        }
        if !wrong.is_empty() {
            return Err(Error::NotATldMap {
                reason: format!(
                    "map \"{}\" (id {}): {}",
                    info.name(),
                    info.id,
                    wrong.join("; ")
                ),
            });
        }
        let generation = generation.expect("a map without a problem has a generation");
        Ok(TldMap {
            fd,
            info,
            generation,
            guarded: AtomicBool::new(false),
            pending: Mutex::new(Vec::new()),
            misses: AtomicU32::new(0),
        })
    }

    /// Whether `self` and `other` are the same kernel map.
    pub fn same_map(&self, other: &TldMap) -> bool {
        self.info.id == other.info.id
    }

    /// Bytes of the map's value: 16 or 24, by its generation.
    pub fn value_size(&self) -> usize {
        self.info.value_size as usize
    }

    /// The generation of the format the map's readers speak.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// Notes whether a guard stamps this map's elements (7.x maps only: the stamp lives in
    /// the value's padding).
    pub fn set_guarded(&self, guarded: bool) {
        self.misses.store(0, Ordering::Relaxed);
        self.guarded.store(
            guarded && self.generation.start_in_value(),
            Ordering::Relaxed,
        );
    }

    /// Whether registrations check for the guard's stamp.
    pub fn guarded(&self) -> bool {
        self.guarded.load(Ordering::Relaxed)
    }

    /// Whether threads were registered since the last [`TldMap::take_pending`] in a guarded
    /// map.
    pub fn has_pending(&self) -> bool {
        !lock(&self.pending).is_empty()
    }

    /// The threads registered in this guarded map since the last call, whose stamps the
    /// connection's watcher looks for ([`TldMap::stamp_missing`]).
    pub fn take_pending(&self) -> Vec<i32> {
        std::mem::take(&mut *lock(&self.pending))
    }

    /// Puts threads back among those whose stamps the watcher looks for: their registration
    /// again failed (the element's lock was contended, say), so their elements are as they
    /// were and are looked at next time.
    pub fn look_again(&self, tids: &[i32]) {
        if self.guarded() && !tids.is_empty() {
            lock(&self.pending).extend_from_slice(tids);
        }
    }

    /// Whether thread `tid`'s element lacks the guard's stamp: the guard's program, which
    /// stamps an element right after the update, was skipped (the kernel skips a tracing
    /// program while another run of it holds the CPU). `false` if the thread is gone or its
    /// element cannot be read. Misses in a row are counted ([`TldMap::many_misses`]).
    pub fn stamp_missing(&self, tid: i32) -> bool {
        let Ok(pidfd) = sys::pidfd_open_thread(tid) else {
            return false;
        };
        let missing = !self.stamped(pidfd.as_fd());
        if missing {
            self.misses.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.store(0, Ordering::Relaxed);
        }
        missing
    }

    /// Whether [`GUARD_GONE_AFTER`] stamps or more in a row were found missing.
    pub fn many_misses(&self) -> bool {
        self.misses.load(Ordering::Relaxed) >= GUARD_GONE_AFTER
    }

    /// The kernel's id of the map.
    pub fn id(&self) -> u32 {
        self.info.id
    }

    /// The map's name.
    pub fn name(&self) -> String {
        self.info.name()
    }

    /// Points thread `tid`'s storage at `data` (its page) and `meta` (the process's metadata
    /// page), with the data area at `start` in the page (written into the value when the map's
    /// generation has it there). The pages must belong to this process: the kernel pins the
    /// caller's memory.
    pub fn register(&self, tid: i32, data: u64, meta: u64, start: usize) -> Result<(), Error> {
        let pidfd = sys::pidfd_open_thread(tid).map_err(|e| match e {
            libc::EINVAL => Error::Unsupported {
                what: "pidfd_open with PIDFD_THREAD",
                needs: "6.9",
                errno: e,
            },
            e => Error::from_errno("opening a pidfd for the thread", e),
        })?;
        // Exactly the map's value: the kernel copies that many bytes, and no more is sent.
        let start = u16::try_from(start).map_err(|_| Error::Os {
            op: "registering the thread's page (its start does not fit in 16 bits)",
            errno: libc::EINVAL,
        })?;
        let value = wire::map_value(self.generation, data, meta, start);
        let update = || {
            sys::map_update_int_key(
                self.fd.as_fd(),
                pidfd.as_raw_fd(),
                self.value_size(),
                &value,
            )
        };
        let result = update();
        // The guard stamps the element right after the update; the connection's watcher
        // checks that it did, off this thread, and registers the thread again if not.
        if result.is_ok() && self.guarded() {
            lock(&self.pending).push(tid);
        }
        result.map_err(|e| match e {
            libc::EOPNOTSUPP | libc::E2BIG => Error::Unsupported {
                what: "user pointers (__uptr) in task storage",
                needs: "6.13",
                errno: e,
            },
            e => Error::from_errno("registering the thread's page in the map", e),
        })
    }

    /// Checks, with thread `tid`'s element (just registered), that the kernel treats the
    /// value's fields as user pointers: it never shows them to user space, so a lookup reads
    /// zeros. A map whose fields are plain integers (no `__uptr` tag, or a pointee the kernel
    /// does not know) reads back the addresses just stored, and pins nothing. This works
    /// without the privilege that reading the map's BTF needs.
    pub fn check_pins(&self, tid: i32) -> Result<(), Error> {
        let pidfd = sys::pidfd_open_thread(tid)
            .map_err(|e| Error::from_errno("opening a pidfd for the thread", e))?;
        let mut value = [0u8; wire::MAP_VALUE_MAX];
        sys::map_lookup_int_key(
            self.fd.as_fd(),
            pidfd.as_raw_fd(),
            self.value_size(),
            &mut value,
        )
        .map_err(|e| Error::from_errno("reading the thread's map element back", e))?;
        if value[..wire::MAP_VALUE_SIZE].iter().all(|&b| b == 0) {
            return Ok(());
        }
        Err(Error::NotATldMap {
            reason: format!(
                "map \"{}\" (id {}): its value's fields are not __uptr pointers (the kernel \
                 shows user space the addresses stored in them, so it pins nothing); the BPF \
                 program must be compiled with clang 19 or later and carry the pointee structs' \
                 definitions in its BTF",
                self.name(),
                self.id()
            ),
        })
    }

    /// Whether thread `tid`'s element must be registered again while an attack goes on: it
    /// carries the guard's mark of a spoofed element, or no stamp at all (the guard's program
    /// was skipped for another process's update, so nothing marked it), or it is gone (another
    /// process deleted it). `false` if the thread is gone or the element cannot be read.
    pub fn needs_repair(&self, tid: i32) -> bool {
        match self.stamp_of_thread(tid) {
            Some(Ok(stamp)) => stamp_is_zero(&stamp) || stamp_is_spoofed(&stamp),
            Some(Err(e)) => e == libc::ENOENT,
            None => false,
        }
    }

    /// Whether thread `tid`'s element carries the guard's mark of a spoofed element (all ones
    /// where the stamp goes: the guard writes it on an element another process registered,
    /// and no right stamp takes that value). `false` if the thread is gone or its element
    /// cannot be read.
    pub fn spoofed(&self, tid: i32) -> bool {
        matches!(self.stamp_of_thread(tid), Some(Ok(stamp)) if stamp_is_spoofed(&stamp))
    }

    /// Whether the element of the thread behind `pidfd` carries a stamp: the guard's bytes after
    /// `start`, which a registration writes as zeros (a real stamp is zero once in 2^48).
    fn stamped(&self, pidfd: BorrowedFd<'_>) -> bool {
        // An element that cannot be read cannot tell: do not insist.
        self.stamp_of(pidfd)
            .map_or(true, |stamp| !stamp_is_zero(&stamp))
    }

    /// The stamp bytes of thread `tid`'s element, or the lookup's errno; `None` if the thread
    /// is gone.
    fn stamp_of_thread(&self, tid: i32) -> Option<Result<[u8; STAMP_LEN], i32>> {
        let pidfd = sys::pidfd_open_thread(tid).ok()?;
        Some(self.stamp_of(pidfd.as_fd()))
    }

    /// The stamp bytes (the guard's, after `start`) of the element of the thread behind
    /// `pidfd`, or the lookup's errno.
    fn stamp_of(&self, pidfd: BorrowedFd<'_>) -> Result<[u8; STAMP_LEN], i32> {
        let mut value = [0u8; wire::MAP_VALUE_MAX];
        sys::map_lookup_int_key(
            self.fd.as_fd(),
            pidfd.as_raw_fd(),
            self.value_size(),
            &mut value,
        )?;
        let mut stamp = [0u8; STAMP_LEN];
        stamp.copy_from_slice(&value[STAMP_AT..STAMP_AT + STAMP_LEN]);
        Ok(stamp)
    }

    /// Deletes thread `tid`'s storage. A thread that is already gone is not an error.
    pub fn unregister(&self, tid: i32) -> Result<(), Error> {
        let pidfd = match sys::pidfd_open_thread(tid) {
            Ok(fd) => fd,
            Err(libc::ESRCH) => return Ok(()),
            Err(e) => return Err(Error::from_errno("opening a pidfd for the thread", e)),
        };
        match sys::map_delete_int_key(self.fd.as_fd(), pidfd.as_raw_fd()) {
            Ok(()) | Err(libc::ENOENT) => Ok(()),
            Err(e) => Err(Error::from_errno("deleting the thread's map element", e)),
        }
    }
}

/// Checks, from the map's BTF, that its value is one generation's: two `__uptr` pointers to
/// complete structs, then `__u16 start` in 7.x's. Returns the generation.
///
/// Reading a BTF object by id needs `CAP_SYS_ADMIN`; without it the check passes here (the
/// value's size tells the generation), and [`TldMap::check_pins`] settles the question of the
/// pointers once a thread is registered.
fn check_value_btf(info: &sys::MapInfo) -> Result<Option<Generation>, String> {
    if info.btf_id == 0 || info.btf_value_type_id == 0 {
        return Err("it has no BTF for its value, so its pointers cannot be __uptr".into());
    }
    match sys::btf_data(info.btf_id) {
        Ok(data) => Btf::parse(&data)?
            .value_shape(info.btf_value_type_id, sys::page_size())
            .map(|shape| Some(shape.generation)),
        Err(libc::EPERM | libc::EACCES) => Ok(None),
        Err(e) => Err(format!(
            "its BTF (id {}) cannot be read: {}",
            info.btf_id,
            std::io::Error::from_raw_os_error(e)
        )),
    }
}
