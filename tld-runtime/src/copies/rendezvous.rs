//! How the copies of the runtime in one process find each other: a small read-only table at a
//! fixed address, which names the copy that serves the process.
//!
//! Every object that links `tld-runtime` statically (the executable, each Rust cdylib, libtld)
//! carries a copy of it, and the dynamic linker never merges them: a plugin loaded with
//! `dlopen(RTLD_LOCAL)` does not even see the executable's symbols. So the copies meet through
//! the address space instead, which they all share whatever the symbol scopes:
//!
//! 1. A copy looks in `/proc/self/maps` for a mapping of a memfd named [`NAME`]. If there is
//!    one, it holds the table: the copy reads it and joins the copy it names.
//! 2. Otherwise the copy writes a table into a new memfd of that name, naming itself, and maps
//!    it read-only at the first of [`ADDRESSES`] that is free, with `MAP_FIXED_NOREPLACE`:
//!    the kernel lets exactly one mapping have an address, so of two copies that race, one
//!    gets it. The loser gets `EEXIST`, finds the winner's mapping in `/proc/self/maps` under
//!    that name (the name shows at once, and the table was written before it was mapped, so it
//!    is never seen half-written), and joins it. An address taken by anything else (a
//!    mapping of some library, a sanitizer's shadow memory) is skipped for the next one.
//!
//! The mapping is `MAP_PRIVATE`: a forked child has its own copy of the table, naming the same
//! code at the same address in the child, whose runtime state the serving copy's `fork`
//! handlers reset. `exec` drops it with the rest of the address space.
//!
//! The copy that serves must stay loaded as long as the process runs, since the others call
//! its code: before it publishes the table it pins the object it lives in with
//! `RTLD_NODELETE` (the main program needs nothing). A copy that cannot pin itself publishes
//! nothing and serves on its own.
//!
//! # The table's format
//!
//! The format of the first bytes is fixed for every version of the runtime, so that a copy can
//! tell a copy of another protocol from a foreign mapping and say so (see
//! [`Error::OtherRuntime`]): [`MAGIC`] (16 bytes), the protocol (`u32`), the header's size
//! (`u32`), the address of the serving copy's function table (`u64`), and the pid of the
//! process that claimed it (`i32`; a forked child inherits its parent's). The function table
//! itself is private to the runtime: a copy only calls one whose protocol it speaks.

use std::ffi::CStr;
use std::io::Read;
use std::os::fd::AsRawFd;

use crate::error::Error;
use crate::kernel::sys;

pub use crate::copies::protocol::PROTOCOL;

/// The memfd's name. `/proc/self/maps` shows the mapping as `/memfd:<NAME> (deleted)`.
pub const NAME: &str = "tld-runtime-rendezvous";
/// [`NAME`] for `memfd_create`.
const NAME_C: &CStr = c"tld-runtime-rendezvous";
/// The table's first bytes.
pub const MAGIC: [u8; 16] = *b"tld-rendezvous\0\0";

/// Where the table may be, in the order copies try them. They lie far from where the kernel
/// puts executables, heaps and ordinary mappings; the first two fit in a 39-bit address space
/// (some arm64 kernels), the others lie above the shadow memory of address sanitizers on
/// x86-64. Every version of the runtime uses the same list. (An address a process cannot have,
/// on a 32-bit target, is skipped.)
pub const ADDRESSES: [u64; 6] = [
    0x003d_1d00_0000,
    0x002e_7d00_0000,
    0x5f1d_7d00_0000,
    0x6e2d_1d00_0000,
    0x4c7d_2d00_0000,
    0x3b1d_6e00_0000,
];

/// The table's header, as it lies in the mapping: the part of the format that every version
/// of the runtime keeps.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 16],
    /// The serving copy's protocol ([`crate::copies::protocol::PROTOCOL`] for this version).
    pub protocol: u32,
    /// `size_of::<Header>()` of the copy that wrote it.
    pub header_size: u32,
    /// The address of the serving copy's function table.
    pub table: u64,
    /// The process that claimed the table.
    pub pid: i32,
    /// Zero.
    pub reserved: u32,
}

/// What [`find_or_claim`] found.
#[derive(Debug)]
pub(crate) enum Found {
    /// The calling copy published its table: it serves the process.
    Claimed,
    /// A table is there already.
    Existing(Header),
}

/// Finds the process's table, or publishes one that names `table` (the calling copy's
/// function table, whose `protocol` is given).
///
/// `Err` when neither can be done: no memfd, no free address, or a table that cannot be told
/// from a foreign mapping because `/proc/self/maps` cannot be read. The copy then serves on its
/// own, and says so.
pub(crate) fn find_or_claim(table: u64, protocol: u32) -> Result<Found, Error> {
    let maps = read_maps();
    if let Some(addr) = maps.as_deref().and_then(find_mapping) {
        return Ok(Found::Existing(read_header(addr)));
    }
    if !pin_self() {
        return Err(Error::Os {
            op: "pinning the object that holds the runtime (dlopen with RTLD_NODELETE)",
            errno: libc::ENOENT,
        });
    }
    let header = Header {
        magic: MAGIC,
        protocol,
        header_size: std::mem::size_of::<Header>() as u32,
        table,
        // SAFETY: getpid has no preconditions.
        pid: unsafe { libc::getpid() },
        reserved: 0,
    };
    let fd = sys::memfd_with(NAME_C, &header_bytes(&header), sys::page_size())
        .map_err(|e| Error::from_errno("creating the runtime's rendezvous memfd", e))?;
    let mut last = libc::EEXIST;
    for addr in ADDRESSES
        .into_iter()
        .filter_map(|a| usize::try_from(a).ok())
    {
        match sys::map_fixed_noreplace(fd.as_raw_fd(), addr, sys::page_size()) {
            Ok(()) => return Ok(Found::Claimed),
            Err(libc::EEXIST) => {
                // Another copy may have claimed it since the look above.
                match read_maps() {
                    Some(maps) => {
                        if let Some(existing) = find_mapping(&maps) {
                            return Ok(Found::Existing(read_header(existing)));
                        }
                    }
                    // Without the maps the table cannot be told from a foreign mapping, and
                    // claiming the next address could make a second table.
                    None => {
                        return Err(Error::Os {
                            op: "reading /proc/self/maps to find the process's runtime",
                            errno: libc::ENOENT,
                        })
                    }
                }
                last = libc::EEXIST;
            }
            Err(e) => last = e,
        }
    }
    Err(Error::Os {
        op: "mapping the runtime's rendezvous table at a free address",
        errno: last,
    })
}

/// The header's bytes.
fn header_bytes(header: &Header) -> [u8; std::mem::size_of::<Header>()] {
    let mut bytes = [0u8; std::mem::size_of::<Header>()];
    bytes[..16].copy_from_slice(&header.magic);
    bytes[16..20].copy_from_slice(&header.protocol.to_ne_bytes());
    bytes[20..24].copy_from_slice(&header.header_size.to_ne_bytes());
    bytes[24..32].copy_from_slice(&header.table.to_ne_bytes());
    bytes[32..36].copy_from_slice(&header.pid.to_ne_bytes());
    bytes[36..40].copy_from_slice(&header.reserved.to_ne_bytes());
    bytes
}

/// `/proc/self/maps`, if it can be read.
fn read_maps() -> Option<String> {
    let mut text = String::new();
    std::fs::File::open("/proc/self/maps")
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The lowest address of a mapping of the rendezvous memfd in `maps`.
fn find_mapping(maps: &str) -> Option<usize> {
    maps.lines()
        .filter(|line| is_rendezvous(line))
        .filter_map(|line| usize::from_str_radix(line.split('-').next()?, 16).ok())
        .min()
}

/// Whether a line of `/proc/self/maps` is a mapping of the rendezvous memfd.
fn is_rendezvous(line: &str) -> bool {
    // The path is the sixth field; " (deleted)" may follow it.
    line.split_whitespace()
        .nth(5)
        .and_then(|path| path.strip_prefix("/memfd:"))
        .is_some_and(|name| name == NAME)
}

/// Reads the header of the table mapped at `addr`.
fn read_header(addr: usize) -> Header {
    // SAFETY: `/proc/self/maps` shows a mapping of the rendezvous memfd at `addr`: at least one
    // page, readable, written by a copy of the runtime before it was mapped, and never
    // unmapped by any copy. `Header` is plain integers, valid for any bytes.
    unsafe { (addr as *const Header).read_volatile() }
}

/// Pins the object that holds this copy, so that `dlclose` never unloads it: other copies will
/// call its code. Returns whether it is pinned (the main program always is).
fn pin_self() -> bool {
    static MARKER: u8 = 0;
    let Some((name, base)) = sys::object_of(std::ptr::addr_of!(MARKER).cast()) else {
        return false;
    };
    // SAFETY: getauxval has no preconditions; AT_ENTRY is the main program's entry point.
    let entry = unsafe { libc::getauxval(libc::AT_ENTRY) } as usize;
    if sys::object_of(entry as *const libc::c_void).is_some_and(|(_, b)| b == base) {
        return true;
    }
    sys::pin_loaded_object(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_found_by_its_memfd_name() {
        let maps = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 1234   /usr/bin/x
3d1d000000-3d1d001000 r--p 00000000 00:01 77     /memfd:tld-runtime-rendezvous (deleted)
7f0000000000-7f0000001000 rw-p 00000000 00:00 0
";
        assert_eq!(find_mapping(maps), Some(0x3d1d000000));
        assert_eq!(
            find_mapping("3d1d000000-3d1d001000 r--p 0 00:01 7 /memfd:other (deleted)"),
            None
        );
        assert_eq!(
            find_mapping(
                "3d1d000000-3d1d001000 r--p 0 00:01 7 /memfd:tld-runtime-rendezvous-x (deleted)"
            ),
            None
        );
    }

    #[test]
    fn the_header_format_is_fixed() {
        assert_eq!(std::mem::size_of::<Header>(), 40);
        let h = Header {
            magic: MAGIC,
            protocol: 7,
            header_size: 40,
            table: 0x1122_3344_5566_7788,
            pid: 42,
            reserved: 0,
        };
        let bytes = header_bytes(&h);
        // SAFETY: `bytes` has exactly the size of `Header`, which is plain integers.
        let back: Header = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        assert_eq!(back, h);
        for addr in ADDRESSES {
            assert_eq!(addr % (64 * 1024), 0, "aligned for 64 KiB pages");
        }
    }
}
