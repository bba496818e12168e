//! Which map to inspect, and checking that it is a task local data map.
//!
//! The default follows the runtime's auto-connect rule: the pin at `$TLD_MAP_PATH`, else
//! `/sys/fs/bpf/tld_data_map` (an empty `TLD_MAP_PATH`, which turns the runtime's
//! auto-connect off, counts as unset here). `--pin PATH` names another pin, and `--map-id ID`
//! reaches a map that nobody pinned, such as a running scheduler's, as bpftool does.
//!
//! Every fd is opened read-only. A candidate must be a `BPF_MAP_TYPE_TASK_STORAGE` map with
//! 4-byte keys whose BTF value is one generation's: two `__uptr` pointers to structs (16 bytes,
//! Linux 6.18 and scx), or those and `__u16 start` (24 bytes, Linux 7.x). The generation says
//! where `start` is; the sizes of the structs are how many bytes of each page the iterator
//! copies. Reading a map's BTF needs `CAP_SYS_ADMIN`: without it the value's size gives the
//! generation and the standard sizes are assumed (a page, and the metadata page of the wire
//! format), and the kernel's verifier still refuses a map whose value is not what they claim.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::privilege;
use crate::sys::{self, MapInfo};
use tld_runtime::btf::{Btf, UptrLayout};
use tld_runtime::wire::Generation;

/// Environment variable that names the pin path, as for the runtime.
pub const PIN_PATH_ENV: &str = tld_wire::paths::MAP_PATH_ENV;
/// Where the map is pinned when `TLD_MAP_PATH` is unset.
pub const DEFAULT_PIN_PATH: &str = tld_wire::paths::DEFAULT_DATA_MAP_PIN;

/// How the user chose the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A pin in bpffs.
    Pin {
        /// Its path.
        path: PathBuf,
        /// Where the path came from, for messages.
        origin: &'static str,
    },
    /// A map id.
    Id(u32),
}

impl Choice {
    /// The choice made by `--pin` and `--map-id` (at most one is given), else the default.
    pub fn new(pin: Option<PathBuf>, id: Option<u32>) -> Choice {
        if let Some(id) = id {
            return Choice::Id(id);
        }
        if let Some(path) = pin {
            return Choice::Pin {
                path,
                origin: "given with --pin",
            };
        }
        match std::env::var_os(PIN_PATH_ENV) {
            Some(p) if !p.is_empty() => Choice::Pin {
                path: PathBuf::from(p),
                origin: "from TLD_MAP_PATH",
            },
            _ => Choice::Pin {
                path: PathBuf::from(DEFAULT_PIN_PATH),
                origin: "the default, as TLD_MAP_PATH is unset or empty",
            },
        }
    }
}

/// An open task local data map.
#[derive(Debug)]
pub struct TldMap {
    /// A read-only fd of the map.
    pub fd: OwnedFd,
    /// What the kernel says about it.
    pub info: MapInfo,
    /// Where it is pinned, when it was opened through a pin.
    pub pin: Option<PathBuf>,
    /// How many bytes of each page the iterator copies.
    pub layout: UptrLayout,
    /// The generation of the format: where readers find `start`.
    pub generation: Generation,
    /// The guard's key map, where a guard (`tld-guard`) stamps this map's elements: the
    /// iterator then tells each thread's element registered by its own process.
    pub guard_key: Option<OwnedFd>,
    /// Whether [`Self::layout`] was read from the map's BTF (else it is the standard one).
    pub layout_from_btf: bool,
}

impl TldMap {
    /// Opens and checks the chosen map.
    pub fn open(choice: &Choice) -> Result<TldMap, Error> {
        let (fd, pin, what) = match choice {
            Choice::Pin { path, origin } => (
                open_pin(path, origin)?,
                Some(path.clone()),
                format!("the object pinned at {}", path.display()),
            ),
            Choice::Id(id) => {
                privilege::require_sys_admin("opening a map by id")?;
                let fd = sys::open_map_by_id(*id).map_err(|e| match e.raw_os_error() {
                    Some(libc::ENOENT) => Error::NoMapId(*id),
                    _ => Error::io(format!("opening map id {id}"), e, privilege::BY_ID_NEEDS),
                })?;
                (fd, None, format!("map id {id}"))
            }
        };
        if !sys::is_map_fd(fd.as_fd()) {
            return Err(Error::NotTldMap {
                map: what,
                reason: "it is not a BPF map".into(),
            });
        }
        let info = sys::map_info(fd.as_fd())
            .map_err(|e| Error::io(format!("reading the info of {what}"), e, "CAP_BPF"))?;
        let label = format!("map {} ({})", info.id, info.name);
        let (layout, generation, layout_from_btf) =
            check(&info).map_err(|reason| Error::NotTldMap {
                map: label.clone(),
                reason,
            })?;
        let guard_key = guard_key_of(info.id);
        Ok(TldMap {
            fd,
            info,
            pin,
            layout,
            generation,
            guard_key,
            layout_from_btf,
        })
    }

    /// How tables name the map: `id:name`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.info.id, self.info.name)
    }
}

/// Opens a pin read-only, turning each failure into a message that says what to do.
fn open_pin(path: &Path, origin: &'static str) -> Result<OwnedFd, Error> {
    sys::open_pinned(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => Error::NoPin {
            path: path.display().to_string(),
            origin,
        },
        Some(libc::EACCES | libc::EPERM) => {
            let owner = std::fs::metadata(path)
                .map(|m| {
                    format!(
                        " (owner uid {}, group gid {}, mode {:o})",
                        m.uid(),
                        m.gid(),
                        m.mode() & 0o7777
                    )
                })
                .unwrap_or_default();
            Error::Privilege {
                action: format!("opening the map pinned at {}", path.display()),
                needs: format!(
                    "read permission on the pin{owner}; run tld as root or as a member of \
                     the pin's group"
                ),
                errno: e.raw_os_error(),
            }
        }
        _ => Error::Io {
            action: format!("opening the BPF object pinned at {}", path.display()),
            source: e,
        },
    })
}

/// Checks that `info` describes a task local data map; returns the page sizes, the generation,
/// and whether they come from its BTF.
pub fn check(info: &MapInfo) -> Result<(UptrLayout, Generation, bool), String> {
    if info.map_type != sys::MAP_TYPE_TASK_STORAGE {
        return Err(format!(
            "its type is {}, not task storage ({})",
            info.map_type,
            sys::MAP_TYPE_TASK_STORAGE
        ));
    }
    let by_size =
        tld_wire::shape::generation_of_sizes(info.key_size as usize, info.value_size as usize)?;
    if info.btf_id == 0 {
        return Err("it has no BTF, so its value cannot hold __uptr pointers".into());
    }
    if !privilege::has_sys_admin() {
        return Ok((UptrLayout::standard(page_size()), by_size, false));
    }
    let bytes = sys::btf_bytes(info.btf_id).map_err(|e| format!("reading its BTF: {e}"))?;
    let btf = Btf::parse(&bytes)?;
    let shape = btf.value_shape(info.btf_value_type_id, page_size() as usize)?;
    Ok((shape.layout, shape.generation, true))
}

/// The key map of the guard that stamps map `map_id`'s elements, if one does: the map named
/// `tld_guard_key` of the guard's program (`tld_guard_stamp`, which uses both maps). Finding
/// it takes listing programs and opening a map by id (`CAP_SYS_ADMIN`); without that, `None`.
fn guard_key_of(map_id: u32) -> Option<OwnedFd> {
    use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};
    if !privilege::has_sys_admin() {
        return None;
    }
    let opts = ProgInfoQueryOptions::default().include_map_ids(true);
    for prog in ProgInfoIter::with_query_opts(opts) {
        if prog.name != "tld_guard_stamp" || !prog.map_ids.contains(&map_id) {
            continue;
        }
        for &id in &prog.map_ids {
            let Ok(fd) = sys::open_map_by_id(id) else {
                continue;
            };
            if sys::map_info(fd.as_fd()).is_ok_and(|i| i.name == "tld_guard_key") {
                return Some(fd);
            }
        }
    }
    None
}

/// The system page size ([`tld_wire::page_size`]).
pub fn page_size() -> u32 {
    u32::try_from(tld_wire::page_size()).unwrap_or(tld_wire::format::BASE_PAGE_SIZE as u32)
}
