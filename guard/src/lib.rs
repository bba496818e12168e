//! # tld-guard: hints that cannot be spoofed
//!
//! A BPF task storage map of task local data (`tld_data_map`) can be written by anyone who
//! holds a writable fd of it: the members of its pin's group, root. Such a writer can open a
//! pidfd of another process's thread and register pages of its own for it; a scheduler would
//! then read the writer's values as the victim's, and could be made to demote the victim or to
//! favour a CPU hog disguised as an interactive thread.
//!
//! The guard closes that hole in the kernel. It is a BPF object with two programs:
//! - a `fexit` program on `bpf_local_storage_update`, the kernel function every task storage
//!   update goes through, which stamps each element of the guarded map that a task of the
//!   thread's own process registered, and leaves the others with a wrong stamp. The stamp is a
//!   keyed hash of the element's pages and process, with a secret that no process can read
//!   (`tld_guard.bpf.h` in `tld-runtime`'s BPF headers);
//! - a sleepable `lsm/bpf` program that refuses such an update before it happens, where the
//!   kernel runs BPF LSM programs. It is a first line of defence only: it reads the update's
//!   key from the caller's memory, which the caller can change meanwhile.
//!
//! A scheduler's BPF built with `TLD_GUARD` (see `task_local_data.bpf.h`) and loaded with
//! `tld_guard_enabled` set then uses a thread's hints only if its element carries the right
//! stamp: `bpf_tld_init()` returns `-EPERM` otherwise. The runtime of a victim process learns of
//! a spoofed update from the guard's event map ([`DEFAULT_EVENTS_PIN`]) and registers its
//! threads again, so its own hints come back without its code doing anything.
//!
//! ```no_run
//! # fn demo(
//! #     data_map: std::os::fd::BorrowedFd<'_>,
//! #     key_map: std::os::fd::BorrowedFd<'_>,
//! # ) -> Result<(), tld_guard::Error> {
//! // Before loading the scheduler: can this kernel run the guard?
//! let available = tld_guard::probe();
//! // ... set the scheduler's `tld_guard_enabled` to `available.is_ok()`, load it ...
//! if available.is_ok() {
//!     // `data_map` and `key_map`: the scheduler's `tld_data_map` and `tld_guard_key`.
//!     let guard = tld_guard::Guard::attach(data_map, key_map)?;
//!     guard.pin_events(tld_guard::DEFAULT_EVENTS_PIN)?;
//!     // Keep `guard` alive as long as the scheduler.
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What it cannot do: root can unload the guard, or load BPF of its own that reads the secret,
//! and a process may set whatever hints it likes for its own threads (hints stay trusted per
//! process). It needs BPF trampolines (`fentry`/`fexit`), which some kernels refuse (a kernel
//! locked down, or one built without them): [`probe`] says so, and a scheduler then runs
//! without it, as before.
#![warn(missing_docs)]

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, OpenObject, ProgramInput};

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    dead_code
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tld_guard.skel.rs"));
}
use skel::{TldGuardSkel, TldGuardSkelBuilder};

/// Where [`Guard::pin_events`] is usually asked to pin the event map, and where a runtime looks
/// for it (unless `TLD_GUARD_EVENTS` names another path).
pub const DEFAULT_EVENTS_PIN: &str = tld_wire::paths::DEFAULT_GUARD_EVENTS_PIN;
/// Environment variable naming another path for the event map's pin.
pub const EVENTS_PIN_ENV: &str = tld_wire::paths::GUARD_EVENTS_ENV;

/// Bytes of the 7.x generation's map value, the only one with room for the stamp.
const VALUE_SIZE_7: u32 = tld_wire::format::MAP_VALUE_SIZE_7 as u32;
/// `TLD_GUARD_READY` of `tld_guard.bpf.h`: the key holds a secret.
const KEY_READY: u64 = 0x3179_656b_6764_6c74;

/// Why the guard is not attached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This kernel does not run the guard's programs: BPF trampolines refused (`fexit` needs
    /// them), the function or its BTF missing, or no privilege. The scheduler can run without
    /// the guard.
    #[error("the tld guard cannot run on this kernel: {what}")]
    Unavailable {
        /// What failed, with libbpf's words.
        what: String,
        /// The errno, where there is one (`EPERM` where trampolines are refused).
        errno: Option<i32>,
    },
    /// The map cannot be guarded.
    #[error("map cannot be guarded: {reason}")]
    NotGuardable {
        /// Why.
        reason: String,
    },
    /// A system call failed.
    #[error("{op}: {}", std::io::Error::from_raw_os_error(*errno))]
    Os {
        /// What was being done.
        op: &'static str,
        /// The errno.
        errno: i32,
    },
}

impl Error {
    /// The errno behind the error, where there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Unavailable { errno, .. } => *errno,
            Error::Os { errno, .. } => Some(*errno),
            Error::NotGuardable { .. } => None,
        }
    }
}

/// Whether [`Guard::attach_with`] attaches the `lsm/bpf` program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lsm {
    /// Where the kernel runs BPF LSM programs (what [`Guard::attach`] does).
    WhereAvailable,
    /// Not at all: the stamp alone.
    Off,
}

/// What the guard's programs have done since it was attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Updates by the thread's own process, stamped.
    pub stamped: u64,
    /// Updates by another process, left with a wrong stamp.
    pub spoofed: u64,
    /// Updates by another process refused before they happened (the LSM program).
    pub refused: u64,
    /// Updates whose element another update replaced before it could be stamped (that one's
    /// own run stamps it).
    pub raced: u64,
}

/// Where a scheduler that keeps its data map pinned usually keeps the guard's key map
/// ([`Guard::pin_key`], [`open_pinned_key`]).
pub const DEFAULT_KEY_PIN: &str = tld_wire::paths::DEFAULT_GUARD_KEY_PIN;

/// Opens, write-only, the key map that an earlier guard pinned at `path` ([`Guard::pin_key`]),
/// for a program about to load to reuse as its `tld_guard_key` (libbpf-rs:
/// `open.maps.tld_guard_key.reuse_fd(fd.as_fd())`). Its secret is then kept, and with it the
/// stamps of every thread registered before: a scheduler restarted on the data map it left
/// pinned keeps reading them. `Ok(None)` if nothing is pinned there.
pub fn open_pinned_key(path: impl AsRef<Path>) -> Result<Option<OwnedFd>, Error> {
    let path = path.as_ref();
    if !path.exists() {
        return Ok(None);
    }
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::Os {
        op: "opening the pinned key map (the path contains a NUL byte)",
        errno: libc::EINVAL,
    })?;
    let opts = libbpf_rs::libbpf_sys::bpf_obj_get_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_obj_get_opts>() as _,
        file_flags: libbpf_rs::libbpf_sys::BPF_F_WRONLY,
        ..Default::default()
    };
    // SAFETY: `c` is NUL-terminated and `opts` is a valid options struct of the size it says;
    // both outlive the call.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_obj_get_opts(c.as_ptr(), &opts) };
    if fd < 0 {
        return Err(Error::Os {
            op: "opening the pinned key map",
            errno: -fd,
        });
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    check_key_map(fd.as_fd())?;
    Ok(Some(fd))
}

/// Whether this kernel can run the guard: loads its programs (with maps of their own, attached
/// to nothing) and unloads them. Call it before loading a program built with `TLD_GUARD`, to
/// decide its `tld_guard_enabled`.
pub fn probe() -> Result<(), Error> {
    let storage: &mut MaybeUninit<OpenObject> = &mut MaybeUninit::uninit();
    let quiet = libbpf_rs::set_print(None);
    let loaded = TldGuardSkelBuilder::default()
        .open(storage)
        .and_then(|open| open.load());
    libbpf_rs::set_print(quiet);
    loaded.map(drop).map_err(unavailable)
}

fn unavailable(e: libbpf_rs::Error) -> Error {
    let text = format!("{e:#}");
    let errno = text
        .rfind("(os error ")
        .and_then(|at| text[at + 10..].split(')').next()?.parse().ok());
    let what = match errno {
        Some(libc::EPERM) => format!(
            "{text} (loading fexit programs was refused: the kernel is locked down, has no \
             BPF trampolines, or this process lacks CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)"
        ),
        _ => text,
    };
    Error::Unavailable { what, errno }
}

/// The attached guard. Dropping it detaches both programs: keep it as long as the guarded
/// program runs.
pub struct Guard {
    // The links go before the skeleton they belong to.
    _stamp: Link,
    lsm: Option<Link>,
    lsm_note: Option<String>,
    secret: Secret,
    skel: TldGuardSkel<'static>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("lsm", &self.lsm.is_some())
            .field("counts", &self.counts())
            .finish()
    }
}

impl Guard {
    /// Guards `data_map`, a `tld_data_map` of the 7.x generation (24-byte value), for readers
    /// that share `key_map`, their `tld_guard_key`: draws a fresh secret from the system's
    /// random source, writes it into `key_map` and freezes that map (after which no process can
    /// read or write it), then loads the guard's programs on those two maps and attaches them.
    /// A `key_map` frozen already (pinned, and written by an earlier guard) keeps its secret
    /// ([`Guard::secret_kept`]).
    ///
    /// From then on every update of `data_map` from user space is stamped, or not, by its
    /// process. Elements registered before carry no stamp, or one made with another secret, so
    /// readers ignore them until their threads register again: a runtime's watcher does that
    /// for all its threads when the guard's event map appears at its pin ([`Guard::pin_events`]).
    ///
    /// The `lsm/bpf` program is attached where the kernel allows it; [`Guard::lsm`] says whether
    /// it runs. The stamp is the guarantee either way.
    pub fn attach(data_map: BorrowedFd<'_>, key_map: BorrowedFd<'_>) -> Result<Guard, Error> {
        Guard::attach_with(data_map, key_map, Lsm::WhereAvailable)
    }

    /// [`Guard::attach`], choosing whether to attach the `lsm/bpf` program: [`Lsm::Off`] gives
    /// what a kernel without the bpf LSM gets, the stamp alone (for tests and comparisons).
    pub fn attach_with(
        data_map: BorrowedFd<'_>,
        key_map: BorrowedFd<'_>,
        lsm: Lsm,
    ) -> Result<Guard, Error> {
        let info = map_info(data_map, "reading the data map's info")?;
        if info.value_size != VALUE_SIZE_7 {
            return Err(Error::NotGuardable {
                reason: format!(
                    "map \"{}\" (id {}) has a {}-byte value; the guard's stamp needs the 7.x \
                     generation's 24-byte value (build the program without TLD_GEN_6_18)",
                    info.name(),
                    info.id,
                    info.value_size
                ),
            });
        }
        let secret = write_secret(key_map)?;
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let quiet = libbpf_rs::set_print(None);
        let loaded = load_on(storage, info.id, data_map, key_map);
        libbpf_rs::set_print(quiet);
        let skel = loaded.map_err(unavailable)?;
        // Key 0 of the event map names the guarded map, for runtimes (see tld_guard.bpf.c).
        let published = skel
            .progs
            .tld_guard_publish
            .test_run(ProgramInput::default())
            .map_err(unavailable)?;
        if published.return_value != 0 {
            return Err(Error::Os {
                op: "naming the guarded map in the event map",
                errno: (published.return_value as i32).saturating_neg(),
            });
        }
        let stamp = skel.progs.tld_guard_stamp.attach().map_err(unavailable)?;
        if lsm == Lsm::Off {
            return Ok(Guard {
                _stamp: stamp,
                lsm: None,
                lsm_note: Some("the lsm/bpf program was not asked for".into()),
                secret,
                skel,
            });
        }
        let (lsm, lsm_note) = match (bpf_lsm_enabled(), skel.progs.tld_guard_refuse.attach_lsm()) {
            (true, Ok(link)) => (Some(link), None),
            (false, _) => (
                None,
                Some(
                    "bpf is not in the kernel's active LSMs (/sys/kernel/security/lsm): \
                     spoofed updates are not refused, only left unstamped"
                        .to_string(),
                ),
            ),
            (true, Err(e)) => (
                None,
                Some(format!(
                    "the lsm/bpf program did not attach ({e}): spoofed updates are not \
                     refused, only left unstamped"
                )),
            ),
        };
        Ok(Guard {
            _stamp: stamp,
            lsm,
            lsm_note,
            secret,
            skel,
        })
    }

    /// Pins the key map at `path` (usually [`DEFAULT_KEY_PIN`]), readable and writable by root
    /// only, unless it is pinned there already; a pin of another key map is replaced. A
    /// scheduler restarted on its pins reuses it ([`open_pinned_key`]) and keeps the secret.
    ///
    /// The pin reaches the secret for root alone, which the guard does not defend against
    /// anyway: the kernel keeps the write-only flag with each file descriptor, and a
    /// descriptor opened from the pin by root may read the map.
    pub fn pin_key(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let ours = map_info(
            self.skel.maps.tld_guard_key.as_fd(),
            "reading the key map's info",
        )?;
        if let Ok(Some(pinned)) = open_pinned_key(path) {
            if map_info(pinned.as_fd(), "reading the pinned key map's info")?.id == ours.id {
                return Ok(());
            }
        }
        let _ = std::fs::remove_file(path);
        pin(
            self.skel.maps.tld_guard_key.as_fd(),
            path,
            0o600,
            "pinning the guard's key map",
        )
    }

    /// Whether the key map was frozen already, so that this guard kept the secret of an earlier
    /// one: a pinned `tld_guard_key` (`TLD_PIN_DATA_MAP`) that a scheduler finds again when it
    /// starts on its pins. Elements stamped before then still verify.
    pub fn secret_kept(&self) -> bool {
        self.secret == Secret::Kept
    }

    /// Whether the `lsm/bpf` program runs (spoofed updates are refused before they happen).
    pub fn lsm(&self) -> bool {
        self.lsm.is_some()
    }

    /// Why the `lsm/bpf` program does not run, when it does not.
    pub fn lsm_note(&self) -> Option<&str> {
        self.lsm_note.as_deref()
    }

    /// The event map: one entry per process whose threads saw spoofed updates (key: its thread
    /// group id). User space may read it, and only the guard writes it.
    pub fn events(&self) -> BorrowedFd<'_> {
        self.skel.maps.tld_guard_events.as_fd()
    }

    /// Pins the event map at `path` (replacing a pin left there by an earlier guard), readable
    /// by everyone, so that runtimes find it: [`DEFAULT_EVENTS_PIN`], unless `TLD_GUARD_EVENTS`
    /// says otherwise for them.
    pub fn pin_events(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let _ = std::fs::remove_file(path);
        pin(self.events(), path, 0o444, "pinning the guard's event map")
    }

    /// What the programs have done so far.
    pub fn counts(&self) -> Counts {
        match self.skel.maps.bss_data.as_deref() {
            Some(bss) => Counts {
                stamped: bss.stamped,
                spoofed: bss.spoofed,
                refused: bss.refused,
                raced: bss.raced,
            },
            None => Counts::default(),
        }
    }
}

/// Opens the guard's object, points it at the two maps and the guarded map's id, and loads it.
fn load_on(
    storage: &'static mut MaybeUninit<OpenObject>,
    map_id: u32,
    data_map: BorrowedFd<'_>,
    key_map: BorrowedFd<'_>,
) -> libbpf_rs::Result<TldGuardSkel<'static>> {
    let mut open = TldGuardSkelBuilder::default().open(storage)?;
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.guarded_map_id = map_id;
    }
    open.maps.tld_data_map.reuse_fd(data_map)?;
    open.maps.tld_guard_key.reuse_fd(key_map)?;
    open.load()
}

/// Pins `fd` at `path` with file mode `mode`.
fn pin(fd: BorrowedFd<'_>, path: &Path, mode: u32, op: &'static str) -> Result<(), Error> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::Os {
        op,
        errno: libc::EINVAL,
    })?;
    // SAFETY: `c` is NUL-terminated and outlives the call; the fd is open.
    let rc = unsafe { libbpf_rs::libbpf_sys::bpf_obj_pin(fd.as_raw_fd(), c.as_ptr()) };
    if rc != 0 {
        return Err(Error::Os { op, errno: -rc });
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        let _ = std::fs::remove_file(path);
        Error::Os {
            op,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    })
}

/// Whether `bpf` is among the kernel's active LSMs: only then do `lsm/` programs run.
fn bpf_lsm_enabled() -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .is_ok_and(|list| list.trim().split(',').any(|l| l == "bpf"))
}

/// Writes a fresh secret into the key map and freezes it, or keeps the secret of a key map that
/// an earlier guard froze.
fn write_secret(key_map: BorrowedFd<'_>) -> Result<Secret, Error> {
    check_key_map(key_map)?;
    if frozen(key_map)? {
        // A pinned key map that an earlier guard wrote (a scheduler started again on its
        // pins): its secret stays, and so do the stamps made with it.
        return Ok(Secret::Kept);
    }
    let mut secret = [0u8; 32];
    let mut got = 0;
    while got < secret.len() {
        // SAFETY: the buffer is writable for the remaining length.
        let n =
            unsafe { libc::getrandom(secret[got..].as_mut_ptr().cast(), secret.len() - got, 0) };
        if n < 0 {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            if errno == libc::EINTR {
                continue;
            }
            return Err(Error::Os {
                op: "drawing the guard's secret (getrandom)",
                errno,
            });
        }
        got += n as usize;
    }
    // struct tld_guard_key: four words of secret, then the ready word.
    let mut value = [0u8; 40];
    value[..32].copy_from_slice(&secret);
    value[32..].copy_from_slice(&KEY_READY.to_ne_bytes());
    let key = 0u32;
    // SAFETY: key and value are live buffers of the map's key (u32) and value (40 bytes) sizes,
    // which `check_key_map` found it has.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_update_elem(
            key_map.as_raw_fd(),
            (&key as *const u32).cast(),
            value.as_ptr().cast(),
            0,
        )
    };
    secret.fill(0);
    value.fill(0);
    if rc != 0 {
        return Err(Error::Os {
            op: "writing the guard's secret into the key map",
            errno: -rc,
        });
    }
    // SAFETY: freezing takes only the fd.
    let rc = unsafe { libbpf_rs::libbpf_sys::bpf_map_freeze(key_map.as_raw_fd()) };
    if rc != 0 {
        return Err(Error::Os {
            op: "freezing the guard's key map",
            errno: -rc,
        });
    }
    Ok(Secret::Fresh)
}

/// Checks that `fd` is a `tld_guard_key`: an array of one 40-byte value.
fn check_key_map(fd: BorrowedFd<'_>) -> Result<(), Error> {
    let info = map_info(fd, "reading the key map's info")?;
    if info.map_type != 2 || info.key_size != 4 || info.value_size != 40 || info.max_entries != 1 {
        return Err(Error::NotGuardable {
            reason: format!(
                "map \"{}\" (id {}) is not a tld_guard_key (an array of one 40-byte value)",
                info.name(),
                info.id
            ),
        });
    }
    Ok(())
}

/// Whether the map behind `fd` is frozen, as the kernel shows it in the fd's `fdinfo` (the map's
/// info has no such field; an update of a frozen map and a freeze both fail with `EPERM`, as
/// they do without the right to write).
fn frozen(fd: BorrowedFd<'_>) -> Result<bool, Error> {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Os {
        op: "reading the key map's fdinfo (is /proc mounted?)",
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    })?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("frozen:"))
        .is_some_and(|v| v.trim() == "1"))
}

/// Where the guard's secret came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Secret {
    /// Drawn now and written into the key map.
    Fresh,
    /// The key map was frozen already, by an earlier guard: its secret is kept.
    Kept,
}

/// `struct bpf_map_info`, the part used here.
struct MapInfo {
    id: u32,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    name: [u8; 16],
}

impl MapInfo {
    fn name(&self) -> String {
        let end = self.name.iter().position(|&c| c == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }
}

fn map_info(fd: BorrowedFd<'_>, op: &'static str) -> Result<MapInfo, Error> {
    let mut info = libbpf_rs::libbpf_sys::bpf_map_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `info` is a `bpf_map_info` of `len` bytes with no pointers in it.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_obj_get_info_by_fd(
            fd.as_raw_fd(),
            (&mut info as *mut libbpf_rs::libbpf_sys::bpf_map_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(Error::Os { op, errno: -rc });
    }
    let mut name = [0u8; 16];
    for (d, s) in name.iter_mut().zip(info.name.iter()) {
        *d = *s as u8;
    }
    Ok(MapInfo {
        id: info.id,
        map_type: info.type_,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        name,
    })
}
