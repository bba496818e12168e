//! The few `bpf(2)` calls the inspector makes itself, each returning the errno on failure.
//!
//! libbpf-rs hides errnos in its error type, and the inspector needs them to tell a missing
//! privilege from a missing map. Every fd is opened read-only where the kernel allows it: the
//! inspector never changes a map.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use libbpf_rs::libbpf_sys;

/// `BPF_MAP_TYPE_TASK_STORAGE`.
pub const MAP_TYPE_TASK_STORAGE: u32 = 29;

/// What the kernel says about a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// The map's id.
    pub id: u32,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// The name given at creation (at most 15 bytes).
    pub name: String,
    /// Bytes of a key.
    pub key_size: u32,
    /// Bytes of a value.
    pub value_size: u32,
    /// `BPF_F_*` creation flags.
    pub map_flags: u32,
    /// The id of the map's BTF object, 0 if it has none.
    pub btf_id: u32,
    /// The value's type id in that BTF.
    pub btf_value_type_id: u32,
}

/// A `-errno` return of libbpf, as an `io::Error`.
fn errno_of(ret: i32) -> io::Error {
    io::Error::from_raw_os_error(-ret)
}

/// Takes ownership of an fd that libbpf returned, or its `-errno`.
fn owned(ret: i32) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(errno_of(ret));
    }
    // SAFETY: libbpf just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// Opens the BPF object pinned at `path`, read-only.
pub fn open_pinned(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let opts = libbpf_sys::bpf_obj_get_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_obj_get_opts>() as _,
        file_flags: libbpf_sys::BPF_F_RDONLY,
        ..Default::default()
    };
    // SAFETY: `c` is NUL-terminated and `opts` is a valid options struct; both outlive the call.
    owned(unsafe { libbpf_sys::bpf_obj_get_opts(c.as_ptr(), &opts) })
}

/// Opens the map with id `id`, read-only. Needs `CAP_SYS_ADMIN`.
pub fn open_map_by_id(id: u32) -> io::Result<OwnedFd> {
    let opts = libbpf_sys::bpf_get_fd_by_id_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_get_fd_by_id_opts>() as _,
        open_flags: libbpf_sys::BPF_F_RDONLY,
        ..Default::default()
    };
    // SAFETY: `opts` is a valid options struct that outlives the call.
    owned(unsafe { libbpf_sys::bpf_map_get_fd_by_id_opts(id, &opts) })
}

/// The next map id after `id`, or `None` after the last. Needs `CAP_SYS_ADMIN`.
pub fn next_map_id(id: u32) -> io::Result<Option<u32>> {
    let mut next = 0u32;
    // SAFETY: `next` is a valid u32 for the call to write.
    let ret = unsafe { libbpf_sys::bpf_map_get_next_id(id, &mut next) };
    match ret {
        0 => Ok(Some(next)),
        r if -r == libc::ENOENT => Ok(None),
        r => Err(errno_of(r)),
    }
}

/// What the kernel says about the map behind `fd`.
pub fn map_info(fd: BorrowedFd<'_>) -> io::Result<MapInfo> {
    let mut info = libbpf_sys::bpf_map_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_map_info>() as u32;
    // SAFETY: `info` is a zeroed bpf_map_info of `len` bytes, which the kernel fills.
    let ret = unsafe {
        libbpf_sys::bpf_obj_get_info_by_fd(
            fd.as_raw_fd(),
            (&mut info as *mut libbpf_sys::bpf_map_info).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(errno_of(ret));
    }
    let name: Vec<u8> = info
        .name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(MapInfo {
        id: info.id,
        map_type: info.type_,
        name: String::from_utf8_lossy(&name).into_owned(),
        key_size: info.key_size,
        value_size: info.value_size,
        map_flags: info.map_flags,
        btf_id: info.btf_id,
        btf_value_type_id: info.btf_value_type_id,
    })
}

/// The raw bytes of the BTF object with id `id`. Needs `CAP_SYS_ADMIN`.
pub fn btf_bytes(id: u32) -> io::Result<Vec<u8>> {
    // SAFETY: a plain call with an integer argument.
    let fd = owned(unsafe { libbpf_sys::bpf_btf_get_fd_by_id(id) })?;
    let get = |info: &mut libbpf_sys::bpf_btf_info| {
        let mut len = std::mem::size_of::<libbpf_sys::bpf_btf_info>() as u32;
        // SAFETY: `info` is a bpf_btf_info of `len` bytes whose `btf` pointer is either 0 or
        // names a buffer of `btf_size` bytes that outlives the call.
        let ret = unsafe {
            libbpf_sys::bpf_obj_get_info_by_fd(
                fd.as_raw_fd(),
                (info as *mut libbpf_sys::bpf_btf_info).cast(),
                &mut len,
            )
        };
        if ret < 0 {
            Err(errno_of(ret))
        } else {
            Ok(())
        }
    };
    let mut info = libbpf_sys::bpf_btf_info::default();
    get(&mut info)?;
    let mut bytes = vec![0u8; info.btf_size as usize];
    let mut info = libbpf_sys::bpf_btf_info {
        btf: bytes.as_mut_ptr() as u64,
        btf_size: bytes.len() as u32,
        ..Default::default()
    };
    get(&mut info)?;
    bytes.truncate(info.btf_size as usize);
    Ok(bytes)
}

/// Whether `fd` is a BPF map (and not a program, link or BTF object).
pub fn is_map_fd(fd: BorrowedFd<'_>) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .is_ok_and(|target| target.as_os_str() == "anon_inode:bpf-map")
}

/// The effective capabilities of this process, from `/proc/self/status`.
pub fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}
