//! Errors, statuses and declarations across the protocol: from this crate's types to the C
//! types of [`crate::copies::protocol`] and back.
//!
//! An [`Error`] crosses as its kind (a number per variant, fixed by the protocol) and its
//! fields by position; its message goes along, so that a copy that does not know the kind
//! still says what happened ([`Error::Remote`]). Fields that are `&'static` in this crate (an
//! operation's name, a declaration site) are copied into memory of the receiving copy that
//! lives as long as the process: a copy never keeps a pointer into another one, which may be
//! unloaded. Those copies are interned, so that asking for the same status again and again
//! does not grow memory.

use std::ffi::c_void;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::copies::protocol::{
    ErrorSink, RawError, RawMapStatus, RawSite, RawStatus, RawStr, StatusSink,
};
use crate::copies::sharing::Sharing;
use crate::declare::registry::Site;
use crate::error::Error;
use crate::page::wire::Generation;
use crate::status::{Connection, MapSource, MapStatus, Status};

/// Error kinds, fixed by the protocol.
mod kind {
    pub const MAP_NOT_FOUND: u32 = 1;
    pub const PERMISSION_DENIED: u32 = 2;
    pub const NOT_A_TLD_MAP: u32 = 3;
    pub const UNSUPPORTED: u32 = 4;
    pub const OS: u32 = 5;
    pub const DUPLICATE_KEY: u32 = 6;
    pub const TOO_LARGE: u32 = 7;
    pub const TOO_MANY_KEYS: u32 = 8;
    pub const INVALID_HINT: u32 = 9;
    pub const KEY_EXISTS: u32 = 10;
    pub const NO_ROOM: u32 = 11;
    pub const NO_SLOTS: u32 = 12;
    pub const INVALID_KEY: u32 = 13;
    pub const AUTO_CONNECT_DISABLED: u32 = 14;
    pub const THREAD_EXITING: u32 = 15;
    pub const THREAD_BUSY: u32 = 16;
    pub const HINT_BUSY: u32 = 17;
    pub const OTHER_RUNTIME: u32 = 18;
    pub const REMOTE: u32 = 19;
}

/// `site` as the protocol carries it, borrowing its strings.
pub(crate) fn raw_site(site: &Site) -> RawSite {
    RawSite {
        key: RawStr::new(site.key.as_bytes()),
        rust_name: RawStr::new(site.rust_name.as_bytes()),
        type_name: RawStr::new(site.type_name.as_bytes()),
        module_path: RawStr::new(site.module_path.as_bytes()),
        file: RawStr::new(site.file.as_bytes()),
        line: site.line,
        column: site.column,
    }
}

/// A declaration that lives as long as the process, copied from `raw`.
///
/// # Safety
/// `raw`'s strings must be valid for the call.
pub(crate) unsafe fn site_of(raw: &RawSite) -> &'static Site {
    // SAFETY: the caller's promise, for every string below.
    let text = |s: RawStr| intern_str(&unsafe { s.text() });
    let site = Site {
        key: text(raw.key),
        rust_name: text(raw.rust_name),
        type_name: text(raw.type_name),
        module_path: text(raw.module_path),
        file: text(raw.file),
        line: raw.line,
        column: raw.column,
    };
    intern_site(site)
}

/// Calls `f` with `e` as the protocol carries it.
pub(crate) fn with_raw_error<R>(e: &Error, f: impl FnOnce(&RawError) -> R) -> R {
    let message = e.to_string();
    let none = RawStr::new(&[]);
    let mut texts = [none; 3];
    let mut numbers = [0u64; 3];
    let mut sites: [Option<&Site>; 2] = [None, None];
    let text = |s: &str| RawStr::new(s.as_bytes());
    let kind = match e {
        Error::MapNotFound { path } => {
            texts[0] = RawStr::new(path.as_os_str().as_bytes());
            kind::MAP_NOT_FOUND
        }
        Error::PermissionDenied { op, .. } => {
            texts[0] = text(op);
            kind::PERMISSION_DENIED
        }
        Error::NotATldMap { reason } => {
            texts[0] = text(reason);
            kind::NOT_A_TLD_MAP
        }
        Error::Unsupported { what, needs, .. } => {
            texts[0] = text(what);
            texts[1] = text(needs);
            kind::UNSUPPORTED
        }
        Error::Os { op, .. } => {
            texts[0] = text(op);
            kind::OS
        }
        Error::DuplicateKey { key, first, second } => {
            texts[0] = text(key);
            sites = [Some(first), Some(second)];
            kind::DUPLICATE_KEY
        }
        Error::TooLarge {
            needed,
            available,
            page_size,
        } => {
            numbers = [*needed as u64, *available as u64, *page_size as u64];
            kind::TOO_LARGE
        }
        Error::TooManyKeys { count, max } => {
            numbers = [*count as u64, *max as u64, 0];
            kind::TOO_MANY_KEYS
        }
        Error::InvalidHint { site, reason } => {
            texts[0] = text(reason);
            sites[0] = Some(site);
            kind::INVALID_HINT
        }
        Error::KeyExists { key } => {
            texts[0] = text(key);
            kind::KEY_EXISTS
        }
        Error::NoRoom {
            key,
            size,
            available,
        } => {
            texts[0] = text(key);
            numbers = [*size as u64, *available as u64, 0];
            kind::NO_ROOM
        }
        Error::NoSlots { key, max } => {
            texts[0] = text(key);
            numbers[0] = *max as u64;
            kind::NO_SLOTS
        }
        Error::InvalidKey { key, reason } => {
            texts[0] = text(key);
            texts[1] = text(reason);
            kind::INVALID_KEY
        }
        Error::AutoConnectDisabled => kind::AUTO_CONNECT_DISABLED,
        Error::ThreadExiting => kind::THREAD_EXITING,
        Error::ThreadBusy => kind::THREAD_BUSY,
        Error::HintBusy { key } => {
            texts[0] = text(key);
            kind::HINT_BUSY
        }
        Error::OtherRuntime {
            protocol,
            supported,
        } => {
            numbers = [u64::from(*protocol), u64::from(*supported), 0];
            kind::OTHER_RUNTIME
        }
        Error::Remote { message, .. } => {
            texts[0] = text(message);
            kind::REMOTE
        }
    };
    let raw_sites = sites.map(|s| s.map(raw_site));
    let site_ptrs = [0, 1].map(|i| {
        raw_sites[i]
            .as_ref()
            .map_or(std::ptr::null(), |s| s as *const RawSite)
    });
    let errno = e.errno();
    f(&RawError {
        kind,
        has_errno: u32::from(errno.is_some()),
        errno: errno.unwrap_or(0),
        texts,
        numbers,
        sites: site_ptrs,
        message: text(&message),
    })
}

/// The error that `raw` carries.
///
/// # Safety
/// Every pointer in `raw` must be valid for the call.
pub(crate) unsafe fn error_of(raw: &RawError) -> Error {
    // SAFETY: the caller's promise, for every string and site below.
    let text = |i: usize| unsafe { raw.texts[i].text() };
    let number = |i: usize| raw.numbers[i] as usize;
    // SAFETY: as above.
    let site = |i: usize| unsafe { raw.sites[i].as_ref() }.map(|s| unsafe { site_of(s) });
    let errno = raw.errno;
    let decoded = match raw.kind {
        kind::MAP_NOT_FOUND => Some(Error::MapNotFound {
            // SAFETY: as above.
            path: PathBuf::from(std::ffi::OsString::from_vec(
                unsafe { raw.texts[0].bytes() }.to_vec(),
            )),
        }),
        kind::PERMISSION_DENIED => Some(Error::PermissionDenied {
            op: intern_str(&text(0)),
            errno,
        }),
        kind::NOT_A_TLD_MAP => Some(Error::NotATldMap { reason: text(0) }),
        kind::UNSUPPORTED => Some(Error::Unsupported {
            what: intern_str(&text(0)),
            needs: intern_str(&text(1)),
            errno,
        }),
        kind::OS => Some(Error::Os {
            op: intern_str(&text(0)),
            errno,
        }),
        kind::DUPLICATE_KEY => match (site(0), site(1)) {
            (Some(first), Some(second)) => Some(Error::DuplicateKey {
                key: text(0),
                first,
                second,
            }),
            _ => None,
        },
        kind::TOO_LARGE => Some(Error::TooLarge {
            needed: number(0),
            available: number(1),
            page_size: number(2),
        }),
        kind::TOO_MANY_KEYS => Some(Error::TooManyKeys {
            count: number(0),
            max: number(1),
        }),
        kind::INVALID_HINT => site(0).map(|site| Error::InvalidHint {
            site,
            reason: text(0),
        }),
        kind::KEY_EXISTS => Some(Error::KeyExists { key: text(0) }),
        kind::NO_ROOM => Some(Error::NoRoom {
            key: text(0),
            size: number(0),
            available: number(1),
        }),
        kind::NO_SLOTS => Some(Error::NoSlots {
            key: text(0),
            max: number(0),
        }),
        kind::INVALID_KEY => Some(Error::InvalidKey {
            key: text(0),
            reason: text(1),
        }),
        kind::AUTO_CONNECT_DISABLED => Some(Error::AutoConnectDisabled),
        kind::THREAD_EXITING => Some(Error::ThreadExiting),
        kind::THREAD_BUSY => Some(Error::ThreadBusy),
        kind::HINT_BUSY => Some(Error::HintBusy {
            key: intern_str(&text(0)),
        }),
        kind::OTHER_RUNTIME => Some(Error::OtherRuntime {
            protocol: raw.numbers[0] as u32,
            supported: raw.numbers[1] as u32,
        }),
        _ => None,
    };
    decoded.unwrap_or_else(|| Error::Remote {
        // SAFETY: as above.
        message: unsafe { raw.message.text() },
        errno: (raw.has_errno != 0).then_some(errno),
    })
}

/// Delivers `e` to `sink`, and returns -1 (the protocol's failure).
///
/// # Safety
/// `sink` must be a sink a caller passed across the protocol.
pub(crate) unsafe fn deliver_error(sink: ErrorSink, e: &Error) -> i32 {
    // SAFETY: the caller's promise; the error is valid during the call.
    with_raw_error(e, |raw| unsafe { (sink.call)(sink.ctx, raw) });
    -1
}

/// A sink that stores the error it receives in the `Option<Error>` at `ctx`.
pub(crate) fn error_sink(slot: &mut Option<Error>) -> ErrorSink {
    unsafe extern "C" fn store(ctx: *mut c_void, raw: *const RawError) {
        // SAFETY: `ctx` is the `&mut Option<Error>` of `error_sink`, borrowed for the call the
        // sink was passed to; `raw` is valid during this call (the protocol's rule).
        unsafe { *ctx.cast::<Option<Error>>() = Some(error_of(&*raw)) };
    }
    ErrorSink {
        ctx: (slot as *mut Option<Error>).cast(),
        call: store,
    }
}

/// Calls `f` with `status` as the protocol carries it.
pub(crate) fn with_raw_status<R>(status: &Status, f: impl FnOnce(&RawStatus) -> R) -> R {
    let none = RawStr::new(&[]);
    let (connection, map_id, map_name, source, pin_path, reason) = match &status.connection {
        Connection::NotAttempted => (0, 0, none, 0, none, None),
        Connection::Connected {
            map_id,
            map_name,
            source,
        } => {
            let (source, path) = match source {
                MapSource::Fd => (1, none),
                MapSource::Pinned(p) => (2, RawStr::new(p.as_os_str().as_bytes())),
            };
            (
                1,
                *map_id,
                RawStr::new(map_name.as_bytes()),
                source,
                path,
                None,
            )
        }
        Connection::Detached { reason } => (2, 0, none, 0, none, Some(reason)),
    };
    let additional: Vec<RawMapStatus> = status
        .additional_maps
        .iter()
        .map(|m| RawMapStatus {
            map_id: m.map_id,
            generation: raw_generation(Some(m.generation)),
            map_name: RawStr::new(m.map_name.as_bytes()),
        })
        .collect();
    with_optional_error(reason, |reason| {
        with_optional_error(status.last_error.as_ref(), |last_error| {
            f(&RawStatus {
                connection,
                map_id,
                map_name,
                source,
                pin_path,
                reason,
                last_error,
                published_keys: status.published_keys as u64,
                data_bytes: status.data_bytes as u64,
                data_capacity: status.data_capacity as u64,
                page_size: status.page_size as u64,
                live_threads: status.live_threads as u64,
                registered_threads: status.registered_threads as u64,
                pool_pages: status.pool_pages as u64,
                parts: status.parts as u64,
                runtime_id: status.runtime_id,
                generation: raw_generation(status.generation),
                guard_repairs: status.guard_repairs,
                additional: additional.as_ptr(),
                additional_len: additional.len(),
            })
        })
    })
}

/// A generation as the protocol carries it.
fn raw_generation(g: Option<Generation>) -> u32 {
    match g {
        None => 0,
        Some(Generation::Linux6_18) => 1,
        Some(Generation::Linux7) => 2,
        // A generation this protocol has no number for (the enum is non-exhaustive): the other
        // copy reads it as none, as it would read a number it does not know.
        Some(_) => 0,
    }
}

/// The generation that `raw` carries (an unknown one reads as none).
fn generation_of(raw: u32) -> Option<Generation> {
    match raw {
        1 => Some(Generation::Linux6_18),
        2 => Some(Generation::Linux7),
        _ => None,
    }
}

/// Calls `f` with `e` as the protocol carries it, or with null.
fn with_optional_error<R>(e: Option<&Error>, f: impl FnOnce(*const RawError) -> R) -> R {
    match e {
        Some(e) => with_raw_error(e, |raw| f(raw)),
        None => f(std::ptr::null()),
    }
}

/// What a joined copy adds to the serving copy's status: its own hints, and its own problem.
pub(crate) struct Local {
    /// Hints declared in this copy's object.
    pub hints: usize,
    /// Why this copy's hints are not published, if they are not.
    pub problem: Option<Error>,
}

/// The status that `raw` carries, as a joined copy reports it.
///
/// # Safety
/// Every pointer in `raw` must be valid for the call.
pub(crate) unsafe fn status_of(raw: &RawStatus, local: Local) -> Status {
    // SAFETY: the caller's promise, for every pointer below.
    let error = |e: *const RawError| unsafe { e.as_ref() }.map(|e| unsafe { error_of(e) });
    let connection = match (local.problem, raw.connection) {
        (Some(reason), _) => Connection::Detached { reason },
        (None, 1) => Connection::Connected {
            map_id: raw.map_id,
            // SAFETY: as above.
            map_name: unsafe { raw.map_name.text() },
            source: match raw.source {
                // SAFETY: as above.
                2 => MapSource::Pinned(PathBuf::from(std::ffi::OsStr::from_bytes(unsafe {
                    raw.pin_path.bytes()
                }))),
                _ => MapSource::Fd,
            },
        },
        (None, 2) => Connection::Detached {
            reason: error(raw.reason).unwrap_or(Error::Remote {
                message: "detached".into(),
                errno: None,
            }),
        },
        (None, _) => Connection::NotAttempted,
    };
    Status {
        connection,
        last_error: error(raw.last_error),
        hints: local.hints,
        published_keys: raw.published_keys as usize,
        data_bytes: raw.data_bytes as usize,
        data_capacity: raw.data_capacity as usize,
        page_size: raw.page_size as usize,
        live_threads: raw.live_threads as usize,
        registered_threads: raw.registered_threads as usize,
        pool_pages: raw.pool_pages as usize,
        sharing: Sharing::Joined,
        parts: raw.parts as usize,
        runtime_id: raw.runtime_id,
        generation: generation_of(raw.generation),
        guard_repairs: raw.guard_repairs,
        // From the serving copy's `status_more`, where it has one.
        watcher: false,
        registration_failures: 0,
        last_registration_error: None,
        additional_maps: if raw.additional.is_null() || raw.additional_len == 0 {
            Vec::new()
        } else {
            // SAFETY: the caller's promise: `additional` points at `additional_len` entries.
            unsafe { std::slice::from_raw_parts(raw.additional, raw.additional_len) }
                .iter()
                .filter_map(|m| {
                    Some(MapStatus {
                        map_id: m.map_id,
                        generation: generation_of(m.generation)?,
                        // SAFETY: as above, for the name's bytes.
                        map_name: unsafe { m.map_name.text() },
                    })
                })
                .collect()
        },
    }
}

/// A sink that stores the status it receives, as `status_of` makes it, in the
/// `(Local, Option<Status>)` at `ctx`.
pub(crate) fn status_sink(slot: &mut (Option<Local>, Option<Status>)) -> StatusSink {
    unsafe extern "C" fn store(ctx: *mut c_void, raw: *const RawStatus) {
        // SAFETY: `ctx` is the slot of `status_sink`, borrowed for the call the sink was
        // passed to; `raw` is valid during this call (the protocol's rule).
        unsafe {
            let slot = &mut *ctx.cast::<(Option<Local>, Option<Status>)>();
            if let Some(local) = slot.0.take() {
                slot.1 = Some(status_of(&*raw, local));
            }
        }
    }
    StatusSink {
        ctx: (slot as *mut (Option<Local>, Option<Status>)).cast(),
        call: store,
    }
}

/// Interned strings and sites: small, and bounded by what the serving copy can say.
static STRINGS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
static SITES: Mutex<Vec<&'static Site>> = Mutex::new(Vec::new());

/// `s`, in memory that lives as long as the process. Never waits for a lock: if another
/// thread holds the table (or held it across a `fork`), the copy is simply not shared.
fn intern_str(s: &str) -> &'static str {
    let Ok(mut table) = STRINGS.try_lock() else {
        return Box::leak(s.into());
    };
    if let Some(found) = table.iter().find(|t| **t == s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.into());
    table.push(leaked);
    leaked
}

/// `site`, in memory that lives as long as the process; interned as [`intern_str`] does.
fn intern_site(site: Site) -> &'static Site {
    let Ok(mut table) = SITES.try_lock() else {
        return Box::leak(Box::new(site));
    };
    if let Some(found) = table.iter().find(|t| ***t == site) {
        return found;
    }
    let leaked: &'static Site = Box::leak(Box::new(site));
    table.push(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: Site = Site {
        key: "k",
        rust_name: "K",
        type_name: "u32",
        module_path: "m",
        file: "a.rs",
        line: 3,
        column: 1,
    };
    static B: Site = Site {
        key: "k",
        rust_name: "K2",
        type_name: "u64",
        module_path: "n",
        file: "b.rs",
        line: 9,
        column: 5,
    };

    fn round_trip(e: &Error) -> Error {
        // SAFETY: `raw` is valid during the closure.
        with_raw_error(e, |raw| unsafe { error_of(raw) })
    }

    #[test]
    fn every_error_crosses_whole() {
        let errors = [
            Error::MapNotFound {
                path: "/sys/fs/bpf/x".into(),
            },
            Error::PermissionDenied {
                op: "opening",
                errno: libc::EACCES,
            },
            Error::NotATldMap { reason: "r".into() },
            Error::Unsupported {
                what: "w",
                needs: "6.13",
                errno: libc::EOPNOTSUPP,
            },
            Error::Os {
                op: "o",
                errno: libc::EIO,
            },
            Error::DuplicateKey {
                key: "k".into(),
                first: &A,
                second: &B,
            },
            Error::TooLarge {
                needed: 5000,
                available: 4080,
                page_size: 4096,
            },
            Error::TooManyKeys { count: 70, max: 63 },
            Error::InvalidHint {
                site: &A,
                reason: "r".into(),
            },
            Error::KeyExists { key: "k".into() },
            Error::NoRoom {
                key: "k".into(),
                size: 16,
                available: 8,
            },
            Error::NoSlots {
                key: "k".into(),
                max: 63,
            },
            Error::InvalidKey {
                key: "k".into(),
                reason: "r".into(),
            },
            Error::AutoConnectDisabled,
            Error::ThreadExiting,
            Error::ThreadBusy,
            Error::HintBusy { key: "budget" },
            Error::OtherRuntime {
                protocol: 2,
                supported: 1,
            },
            Error::Remote {
                message: "m".into(),
                errno: Some(5),
            },
        ];
        for e in &errors {
            assert_eq!(&round_trip(e), e);
            assert_eq!(round_trip(e).errno(), e.errno());
        }
    }

    #[test]
    fn an_unknown_kind_keeps_its_message_and_errno() {
        let e = with_raw_error(&Error::ThreadBusy, |raw| {
            let mut raw = *raw;
            raw.kind = 999;
            raw.has_errno = 1;
            raw.errno = libc::EPROTO;
            // SAFETY: `raw` still borrows the message of the error being encoded.
            unsafe { error_of(&raw) }
        });
        assert_eq!(
            e,
            Error::Remote {
                message: Error::ThreadBusy.to_string(),
                errno: Some(libc::EPROTO)
            }
        );
    }

    #[test]
    fn interned_copies_are_shared() {
        assert!(std::ptr::eq(intern_str("abc"), intern_str("abc")));
        assert!(std::ptr::eq(intern_site(A), intern_site(A)));
    }
}
