//! The kernel map: opening and checking a `tld_data_map`, and registering threads' pages in it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::Error;
use crate::sys;

/// Size of `struct tld_map_value`: two user pointers.
const VALUE_SIZE: u32 = 16;

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
        if info.key_size != 4 {
            wrong.push(format!("its key has {} bytes instead of 4", info.key_size));
        }
        if info.value_size != VALUE_SIZE {
            wrong.push(format!(
                "its value has {} bytes instead of {VALUE_SIZE} (struct tld_map_value)",
                info.value_size
            ));
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
        sys::map_update_int_key(self.fd.as_fd(), pidfd.as_raw_fd(), &[data, meta]).map_err(|e| {
            match e {
                libc::EOPNOTSUPP | libc::E2BIG => Error::Unsupported {
                    what: "user pointers (__uptr) in task storage",
                    needs: "6.13",
                    errno: e,
                },
                e => Error::from_errno("registering the thread's page in the map", e),
            }
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
