//! The kernel map: opening and checking a `tld_data_map`, and registering threads' pages in it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::btf::Btf;
use crate::error::Error;
use crate::{sys, wire};

/// An open, checked `tld_data_map`.
#[derive(Debug)]
pub struct TldMap {
    fd: OwnedFd,
    info: sys::MapInfo,
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
        if info.map_type != sys::BPF_MAP_TYPE_TASK_STORAGE {
            wrong.push(format!(
                "its type is {} instead of BPF_MAP_TYPE_TASK_STORAGE ({})",
                info.map_type,
                sys::BPF_MAP_TYPE_TASK_STORAGE
            ));
        }
        if info.key_size as usize != wire::MAP_KEY_SIZE {
            wrong.push(format!(
                "its key has {} bytes instead of {}",
                info.key_size,
                wire::MAP_KEY_SIZE
            ));
        }
        if let Err(problem) = check_value_size(info.value_size as usize) {
            wrong.push(problem);
        }
        if wrong.is_empty() {
            if let Err(problem) = check_value_btf(&info) {
                wrong.push(problem);
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
        Ok(TldMap { fd, info })
    }

    /// Whether `self` and `other` are the same kernel map.
    pub fn same_map(&self, other: &TldMap) -> bool {
        self.info.id == other.info.id
    }

    /// Bytes of the map's value: the wire format's 16, or more when the BPF program keeps its
    /// own bytes after the two pointers.
    pub fn value_size(&self) -> usize {
        self.info.value_size as usize
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
    /// page). The pages must belong to this process: the kernel pins the caller's memory.
    pub fn register(&self, tid: i32, data: u64, meta: u64) -> Result<(), Error> {
        let pidfd = sys::pidfd_open_thread(tid).map_err(|e| match e {
            libc::EINVAL => Error::Unsupported {
                what: "pidfd_open with PIDFD_THREAD",
                needs: "6.9",
                errno: e,
            },
            e => Error::from_errno("opening a pidfd for the thread", e),
        })?;
        // The two pointers, then zeros over the bytes the BPF program keeps for itself: a
        // new element starts with an empty cache.
        let size = self.value_size();
        with_zeroed_value(size, |value| {
            value[0] = data;
            value[1] = meta;
            sys::map_update_int_key(self.fd.as_fd(), pidfd.as_raw_fd(), size, value)
        })
        .map_err(|e| match e {
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
        let size = self.value_size();
        let pointers = with_zeroed_value(size, |value| {
            sys::map_lookup_int_key(self.fd.as_fd(), pidfd.as_raw_fd(), size, value)
                .map(|()| [value[0], value[1]])
        })
        .map_err(|e| Error::from_errno("reading the thread's map element back", e))?;
        if pointers == [0, 0] {
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

/// Checks a map's value size: see [`wire::is_map_value_size`].
fn check_value_size(size: usize) -> Result<(), String> {
    if !wire::is_map_value_size(size) {
        return Err(format!(
            "its value has {size} bytes; a task local data map's value is the {} bytes of \
             struct tld_map_value, optionally followed by the BPF program's own bytes (a \
             multiple of 8, {} in all at most)",
            wire::MAP_VALUE_SIZE,
            wire::MAP_VALUE_MAX
        ));
    }
    Ok(())
}

/// Runs `f` on a zeroed buffer of `size` bytes (at least the two pointers), rounded up to
/// whole words: on the stack for the sizes the BPF header declares.
fn with_zeroed_value<R>(size: usize, f: impl FnOnce(&mut [u64]) -> R) -> R {
    let words = size.div_ceil(8).max(2);
    if words <= 64 {
        f(&mut [0u64; 64][..words])
    } else {
        f(&mut vec![0u64; words])
    }
}

/// Checks, from the map's BTF, that its value starts with two `__uptr` pointers to complete
/// structs.
///
/// Reading a BTF object by id needs `CAP_SYS_ADMIN`; without it the check passes here, and
/// [`TldMap::check_pins`] settles the question once a thread is registered.
fn check_value_btf(info: &sys::MapInfo) -> Result<(), String> {
    if info.btf_id == 0 || info.btf_value_type_id == 0 {
        return Err("it has no BTF for its value, so its pointers cannot be __uptr".into());
    }
    match sys::btf_data(info.btf_id) {
        Ok(data) => Btf::parse(&data)?.check_tld_value(info.btf_value_type_id, sys::page_size()),
        Err(libc::EPERM | libc::EACCES) => Ok(()),
        Err(e) => Err(format!(
            "its BTF (id {}) cannot be read: {}",
            info.btf_id,
            std::io::Error::from_raw_os_error(e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_the_two_pointers_then_whole_words_of_the_programs_own() {
        for ok in [16, 24, 88, wire::MAP_VALUE_MAX] {
            assert_eq!(check_value_size(ok), Ok(()), "{ok} bytes");
        }
        for bad in [0, 8, 12, 20, 90, wire::MAP_VALUE_MAX + 8] {
            let err = check_value_size(bad).unwrap_err();
            assert!(err.contains(&format!("{bad} bytes")), "{err}");
        }
    }

    #[test]
    fn a_value_buffer_is_zeros_of_at_least_the_value_size() {
        for size in [16, 88, 512, 520, wire::MAP_VALUE_MAX] {
            with_zeroed_value(size, |words| {
                assert!(std::mem::size_of_val(words) >= size, "{size}");
                assert!(words.iter().all(|&w| w == 0));
            });
        }
    }
}
