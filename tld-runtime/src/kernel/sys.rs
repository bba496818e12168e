//! Thin, checked wrappers around the system calls the runtime makes.
//!
//! Every call returns `Result<_, i32>` with the errno, so that callers can classify failures.
//! The runtime talks to the kernel directly instead of through libbpf: applications that only
//! set hints then need no C library beyond libc, and libbpf never prints on their stderr.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// `BPF_MAP_TYPE_TASK_STORAGE` from `<linux/bpf.h>`.
pub const BPF_MAP_TYPE_TASK_STORAGE: u32 = 29;

const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_OBJ_GET: libc::c_int = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_BTF_GET_FD_BY_ID: libc::c_int = 19;
const BPF_ANY: u64 = 0;

/// The calling thread's errno.
fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Calls `bpf(cmd, attr, sizeof *attr)`.
///
/// # Safety
/// `attr` must be the attribute struct the kernel expects for `cmd`, and every pointer in it
/// must be valid for the access `cmd` makes.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> Result<libc::c_long, i32> {
    // SAFETY: the caller guarantees `attr` is the right struct for `cmd`; the size passed is
    // its exact size, and the kernel treats bytes past it as zero.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// The head of `struct bpf_map_info`: the fields the runtime checks.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct MapInfo {
    /// Map type.
    pub map_type: u32,
    /// Kernel-wide map id.
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags`.
    pub map_flags: u32,
    /// The map's name, NUL-padded.
    pub name: [u8; 16],
    /// `ifindex` (unused here).
    pub ifindex: u32,
    /// `btf_vmlinux_value_type_id` (unused here).
    pub btf_vmlinux_value_type_id: u32,
    /// `netns_dev` (unused here).
    pub netns_dev: u64,
    /// `netns_ino` (unused here).
    pub netns_ino: u64,
    /// The id of the BTF object that describes the key and value, 0 if none.
    pub btf_id: u32,
    /// The key's type in that BTF.
    pub btf_key_type_id: u32,
    /// The value's type in that BTF.
    pub btf_value_type_id: u32,
    /// `btf_vmlinux_id` (unused here).
    pub btf_vmlinux_id: u32,
}

impl MapInfo {
    /// The map's name as text.
    pub fn name(&self) -> String {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }
}

/// `BPF_OBJ_GET_INFO_BY_FD`: fills `info` (a `struct bpf_*_info` prefix) for the object `fd`.
///
/// # Safety
/// `T` must be a prefix of the info struct of the object's kind, and every pointer in it must
/// be valid for the writes the kernel makes through it.
unsafe fn obj_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> Result<(), i32> {
    #[repr(C)]
    struct Attr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut attr = Attr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<T>() as u32,
        info: info as *mut T as u64,
    };
    // SAFETY: `Attr` is the `info` member of `union bpf_attr`; `info` points at a writable
    // buffer of `info_len` bytes that outlives the call, and the caller vouches for its
    // pointers.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }.map(drop)
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a map.
pub fn map_info(fd: BorrowedFd<'_>) -> Result<MapInfo, i32> {
    let mut info = MapInfo::default();
    // SAFETY: `MapInfo` is a prefix of `struct bpf_map_info` and holds no pointers.
    unsafe { obj_info(fd, &mut info) }?;
    Ok(info)
}

/// The raw BTF (header, types and strings) of the BTF object with id `btf_id`.
pub fn btf_data(btf_id: u32) -> Result<Vec<u8>, i32> {
    #[repr(C)]
    struct GetFdAttr {
        btf_id: u32,
        next_id: u32,
        open_flags: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    struct BtfInfo {
        btf: u64,
        btf_size: u32,
        id: u32,
        name: u64,
        name_len: u32,
        kernel_btf: u32,
    }
    let mut attr = GetFdAttr {
        btf_id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: `GetFdAttr` is the `*_get_fd_by_id` member of `union bpf_attr`; no pointers.
    let fd = unsafe { bpf(BPF_BTF_GET_FD_BY_ID, &mut attr) }?;
    // SAFETY: on success the kernel returned a new file descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut info = BtfInfo::default();
    // SAFETY: `BtfInfo` is `struct bpf_btf_info`; with null buffers the kernel writes only the
    // sizes.
    unsafe { obj_info(fd.as_fd(), &mut info) }?;
    let mut data = vec![0u8; info.btf_size as usize];
    let mut info = BtfInfo {
        btf: data.as_mut_ptr() as u64,
        btf_size: data.len() as u32,
        ..BtfInfo::default()
    };
    // SAFETY: `info.btf` points at `data`, writable for `btf_size` bytes, which outlives the
    // call; the name buffer is null with length 0.
    unsafe { obj_info(fd.as_fd(), &mut info) }?;
    data.truncate(info.btf_size as usize);
    Ok(data)
}

/// `BPF_OBJ_GET`: opens a pinned BPF object.
pub fn obj_get(path: &CStr) -> Result<OwnedFd, i32> {
    obj_get_flags(path, 0)
}

/// `BPF_F_RDONLY`: open a BPF object for reading only.
pub const BPF_F_RDONLY: u32 = 1 << 3;

/// `BPF_OBJ_GET` with `file_flags` (0, or [`BPF_F_RDONLY`]).
pub fn obj_get_flags(path: &CStr, file_flags: u32) -> Result<OwnedFd, i32> {
    #[repr(C)]
    struct Attr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let mut attr = Attr {
        pathname: path.as_ptr() as u64,
        bpf_fd: 0,
        file_flags,
    };
    // SAFETY: `Attr` is the `obj` member of `union bpf_attr`; `pathname` is a NUL-terminated
    // string that outlives the call.
    let fd = unsafe { bpf(BPF_OBJ_GET, &mut attr) }?;
    // SAFETY: on success the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `BPF_MAP_LOOKUP_ELEM(map, &key, value)` for a map with an `int` key and values of
/// `value_size` bytes (from the map's info: the kernel copies that many). `EINVAL` if `value`
/// is shorter.
pub fn map_lookup_int_key(
    map: BorrowedFd<'_>,
    key: i32,
    value_size: usize,
    value: &mut [u8],
) -> Result<(), i32> {
    if value.len() < value_size {
        return Err(libc::EINVAL);
    }
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: &key as *const i32 as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    // SAFETY: `ElemAttr` is the element member of `union bpf_attr`; `key` points at a readable
    // int and `value` at a writable buffer of at least the map's `value_size` bytes (checked
    // above; the size comes from the kernel's info on this map, and never changes).
    unsafe { bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) }?;
    Ok(())
}

/// `BPF_MAP_UPDATE_ELEM(map, &key, value, BPF_ANY)` for a map with an `int` key and values of
/// `value_size` bytes (from the map's info: the kernel reads that many). `EINVAL` if `value`
/// is shorter.
pub fn map_update_int_key(
    map: BorrowedFd<'_>,
    key: i32,
    value_size: usize,
    value: &[u8],
) -> Result<(), i32> {
    if value.len() < value_size {
        return Err(libc::EINVAL);
    }
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: &key as *const i32 as u64,
        value: value.as_ptr() as u64,
        flags: BPF_ANY,
    };
    // SAFETY: `ElemAttr` is the element member of `union bpf_attr`; `key` points at a readable
    // int and `value` at a readable buffer of at least the map's `value_size` bytes (checked
    // above; the size comes from the kernel's info on this map, and never changes).
    unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }.map(drop)
}

/// `BPF_MAP_DELETE_ELEM(map, &key)` for a map with an `int` key.
pub fn map_delete_int_key(map: BorrowedFd<'_>, key: i32) -> Result<(), i32> {
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: &key as *const i32 as u64,
        value: 0,
        flags: 0,
    };
    // SAFETY: as in `map_update_int_key`; delete reads only the key.
    unsafe { bpf(BPF_MAP_DELETE_ELEM, &mut attr) }.map(drop)
}

/// Whether a process with thread group id `pid` exists (`kill(pid, 0)`: it may belong to
/// another user, which `EPERM` says).
pub fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it takes its arguments by value and touches no
    // user memory.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || errno() != libc::ESRCH
}

/// `pidfd_open(tid, PIDFD_THREAD)`: a pidfd for one thread of this process.
pub fn pidfd_open_thread(tid: i32) -> Result<OwnedFd, i32> {
    // SAFETY: pidfd_open takes a pid and flags by value and touches no user memory.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, libc::PIDFD_THREAD) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: on success the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// An inotify instance, non-blocking and close-on-exec, that watches directories for entries
/// created, deleted or moved in or out (bpffs reports pins and unpins so).
pub struct Inotify(OwnedFd);

impl Inotify {
    /// A new instance, watching nothing yet.
    pub fn new() -> Result<Inotify, i32> {
        // SAFETY: inotify_init1 takes flags by value and touches no user memory.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(errno());
        }
        // SAFETY: on success the kernel returned a new file descriptor that nothing else owns.
        Ok(Inotify(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watches the directory `dir` (again: the same directory keeps one watch).
    pub fn watch_dir(&self, dir: &CStr) -> Result<(), i32> {
        let mask = libc::IN_CREATE
            | libc::IN_DELETE
            | libc::IN_MOVED_FROM
            | libc::IN_MOVED_TO
            | libc::IN_DELETE_SELF
            | libc::IN_ONLYDIR;
        // SAFETY: `dir` is a NUL-terminated string valid for the call; the fd is ours.
        let wd = unsafe { libc::inotify_add_watch(self.0.as_raw_fd(), dir.as_ptr(), mask) };
        if wd < 0 {
            return Err(errno());
        }
        Ok(())
    }

    /// Waits up to `timeout` for events, and returns those that arrived: the name of the
    /// entry each concerns, or `None` for an event about no entry (a lost event queue, a
    /// watched directory that went away or was unmounted).
    pub fn wait(&self, timeout: std::time::Duration) -> Vec<Option<std::ffi::OsString>> {
        use std::os::unix::ffi::OsStrExt;
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one valid pollfd, writable for the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        let mut events = Vec::new();
        if ready <= 0 {
            return events;
        }
        const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: `buf` is writable for its length; the fd is ours.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else {
                return events;
            };
            if n == 0 {
                return events;
            }
            let mut at = 0;
            while at + HEADER <= n {
                // SAFETY: `HEADER` bytes at `at` are within what the kernel wrote; the read
                // makes no assumption about their alignment.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(at).cast()) };
                let name_len = event.len as usize;
                let name = buf.get(at + HEADER..at + HEADER + name_len).unwrap_or(&[]);
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                events.push(
                    (!name.is_empty()).then(|| std::ffi::OsStr::from_bytes(name).to_os_string()),
                );
                at += HEADER + name_len;
            }
        }
    }
}

/// The calling thread's id.
pub fn gettid() -> i32 {
    // SAFETY: gettid cannot fail and touches no memory.
    unsafe { libc::gettid() }
}

/// Duplicates `fd` with close-on-exec set.
pub fn dup_cloexec(fd: BorrowedFd<'_>) -> Result<OwnedFd, i32> {
    fd.try_clone_to_owned()
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EBADF))
}

/// The size of a page of memory ([`tld_wire::page_size`]).
pub fn page_size() -> usize {
    tld_wire::page_size()
}

/// Maps `len` bytes of zeroed, page-aligned, private anonymous memory. Never unmapped: the
/// kernel may keep such pages pinned, and BPF may write them, after their user is gone.
pub fn map_pages(len: usize) -> Result<NonNull<u8>, i32> {
    map_anonymous(len, 0)
}

/// Reserves `len` bytes of page-aligned, private anonymous address space, readable and
/// writable, without charging it as committed memory (`MAP_NORESERVE`): a page becomes memory
/// when it is first written. Never unmapped, like [`map_pages`].
pub fn reserve_pages(len: usize) -> Result<NonNull<u8>, i32> {
    map_anonymous(len, libc::MAP_NORESERVE)
}

/// A private anonymous read-write mapping of `len` bytes, with `flags` added.
fn map_anonymous(len: usize, flags: libc::c_int) -> Result<NonNull<u8>, i32> {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    NonNull::new(p.cast::<u8>()).ok_or(libc::ENOMEM)
}

/// `madvise(addr, len, advice)`.
///
/// # Safety
/// `addr..addr + len` must be memory that this module mapped ([`map_pages`],
/// [`reserve_pages`]) and that no Rust
/// reference points into: `MADV_DONTNEED` replaces its contents with zeros.
pub unsafe fn madvise(addr: usize, len: usize, advice: libc::c_int) -> Result<(), i32> {
    // SAFETY: the caller vouches for the range; madvise touches no other memory.
    let ret = unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// A new memfd named `name` (close-on-exec), `size` bytes long, starting with `content`.
pub fn memfd_with(name: &CStr, content: &[u8], size: usize) -> Result<OwnedFd, i32> {
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: on success the kernel returned a new file descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate takes its arguments by value.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } != 0 {
        return Err(errno());
    }
    let mut written = 0;
    while written < content.len() {
        let rest = &content[written..];
        // SAFETY: `rest` is readable for its length, which is what pwrite reads.
        let n = unsafe {
            libc::pwrite(
                fd.as_raw_fd(),
                rest.as_ptr().cast(),
                rest.len(),
                written as libc::off_t,
            )
        };
        match n {
            n if n > 0 => written += n as usize,
            0 => return Err(libc::EIO),
            _ if errno() == libc::EINTR => continue,
            _ => return Err(errno()),
        }
    }
    Ok(fd)
}

/// Maps the first `len` bytes of `fd` read-only and private at exactly `addr`, if nothing is
/// mapped there: `EEXIST` if something is.
pub fn map_fixed_noreplace(fd: libc::c_int, addr: usize, len: usize) -> Result<(), i32> {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping: the call either maps the
    // file at `addr`, where nothing was, or fails and touches nothing.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_FIXED_NOREPLACE,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    if p as usize != addr {
        // A kernel older than 4.17 takes the flag for a hint: give the mapping back.
        // SAFETY: `p` is the mapping just made, which nothing else knows of.
        unsafe { libc::munmap(p, len) };
        return Err(libc::EEXIST);
    }
    Ok(())
}

/// The path and base address of the loaded object that contains `addr`, from `dladdr`.
pub fn object_of(addr: *const libc::c_void) -> Option<(std::ffi::CString, usize)> {
    // SAFETY: an all-zero Dl_info is valid (null pointers); dladdr only writes it.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr reads no memory at `addr`; it looks the address up in the loader's tables.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: on success dli_fname is a NUL-terminated string owned by the loader, valid while
    // the object is loaded, which it is (it holds the caller's code); it is copied at once.
    let name = unsafe { CStr::from_ptr(info.dli_fname) }.to_owned();
    Some((name, info.dli_fbase as usize))
}

/// Marks the loaded shared object `path` `RTLD_NODELETE`, so that it stays loaded for the rest
/// of the process. Returns whether it is.
pub fn pin_loaded_object(path: &CStr) -> bool {
    // SAFETY: with RTLD_NOLOAD, dlopen loads nothing and runs no constructor: it returns a
    // handle to the object if it is loaded, and sets its flags. The handle is kept for ever.
    let handle = unsafe {
        libc::dlopen(
            path.as_ptr(),
            libc::RTLD_LAZY | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
        )
    };
    !handle.is_null()
}
