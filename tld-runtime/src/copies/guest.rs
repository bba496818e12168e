//! The joined side of the protocol: a copy of the runtime whose process another copy serves.
//!
//! A joined copy keeps no pages, no layout and no connection of its own. At its first use it
//! joins the serving copy with its static hints, which get their offsets in the published
//! layout (see [`crate::copies::parts`]); after that its hints run exactly the code they run in a
//! copy that serves: a thread-local load of the thread's page, the offset, the access. The only
//! difference is how a thread's page pointer is first set: a joined copy asks the serving copy
//! for the thread's page (giving the thread one if it has none) and keeps it in its own
//! thread-local. The serving copy tells it to forget that pointer, on that thread, before the
//! page goes away.
//!
//! Everything else (connecting, status, keys created at run time, `thread_init`) is a call to
//! the serving copy. A joined copy that is unloaded (`dlclose` of a plugin) leaves first: a
//! destructor in `.fini_array` runs as the object goes, and the serving copy never calls it
//! again. What happens to its keys is described in [`crate::copies::parts`].

use std::sync::atomic::{AtomicBool, Ordering};

use crate::copies::marshal::{error_sink, raw_site, status_sink, Local};
use crate::copies::protocol::{
    phase, ErrorSink, HostTable, RawHint, RawKey, RawPart, RawStatusMore, RawStr, FORGET_EXITING,
};
use crate::copies::role::{self, Role};
use crate::declare::registry::{self, Hint, LayoutToken};
use crate::error::Error;
use crate::page::layout;
use crate::page::metadata::Published;
use crate::status::Status;
use crate::threads::thread_state::{self, Phase};
use crate::{kernel::sys, threads::bindings};

/// A copy of the runtime that joined the one serving the process.
#[derive(Debug)]
pub(crate) struct Guest {
    table: &'static HostTable,
    /// Its index in the serving copy.
    index: u32,
    /// Hints declared in this copy's object.
    hints: usize,
    /// Why this copy's hints are not published, if they are not.
    problem: Option<Error>,
    /// The copy is being unloaded: the serving copy forgot it.
    left: AtomicBool,
}

/// An address in this copy: the part's token while it is loaded.
static TOKEN: u8 = 0;

fn token() -> u64 {
    std::ptr::addr_of!(TOKEN) as u64
}

impl Guest {
    /// Joins the copy that serves the process through `table`.
    ///
    /// A part whose own hints break a rule (two with one key, too many, too large) joins with
    /// none: its threads still share the serving copy's pages, and its hints work as
    /// thread-locals, as they would in a copy on its own.
    pub(crate) fn join(table: &'static HostTable) -> Guest {
        let hints = registry::collect();
        let count = hints.len();
        let mut problem = layout::check(&hints, sys::page_size());
        let published: Vec<&'static dyn Hint> = if problem.is_none() { hints } else { Vec::new() };
        let raw: Vec<RawHint> = published
            .iter()
            .map(|h| RawHint {
                site: raw_site(h.site()),
                size: h.size(),
                consistent: u32::from(h.consistent()),
                init: RawStr::new(h.init_bytes()),
            })
            .collect();
        let part = RawPart {
            token: token(),
            hints: raw.as_ptr(),
            n_hints: raw.len(),
            forget,
        };
        let mut offsets = vec![0u32; raw.len()];
        let mut index = u32::MAX;
        let mut err = None;
        // SAFETY: `part`, its hints and their strings, `offsets` (one per hint) and `index` are
        // valid for the call; the sink stores into `err`, which outlives it. The table belongs
        // to the serving copy, which stays loaded (see `role`).
        let rc = unsafe {
            (table.join)(
                &part,
                offsets.as_mut_ptr(),
                &mut index,
                error_sink(&mut err),
            )
        };
        if rc == 0 {
            for (hint, offset) in published.iter().zip(offsets) {
                hint.place(LayoutToken::new(), offset);
            }
        } else {
            problem = Some(err.unwrap_or_else(|| remote("joining the process's runtime failed")));
        }
        Guest {
            table,
            index,
            hints: count,
            problem,
            left: AtomicBool::new(false),
        }
    }

    /// Gives the calling thread its page through the serving copy, if it has none yet. Returns
    /// the phase that the access which asked should act on.
    pub(crate) fn enter_thread(&self) -> Phase {
        let phase = thread_state::phase();
        if phase != Phase::New {
            return phase;
        }
        if self.left.load(Ordering::Acquire) {
            thread_state::set_phase(Phase::Exited);
            return Phase::Exited;
        }
        thread_state::set_phase(Phase::Busy);
        let mut host_phase = phase::NEW;
        // SAFETY: the serving copy's table stays valid (see `role`); `host_phase` is writable.
        let block = unsafe { (self.table.enter_thread)(self.index, &mut host_phase) };
        if !block.is_null() {
            thread_state::attach_block(block);
            thread_state::set_phase(Phase::Active);
            return Phase::Active;
        }
        let (kept, now) = match host_phase {
            // The serving copy is setting this thread up (this access interrupted it): this
            // access reads the initial value, and a later one asks again.
            phase::BUSY => (Phase::New, Phase::Busy),
            phase::EXITED => (Phase::Exited, Phase::Exited),
            _ => (Phase::New, Phase::New),
        };
        thread_state::set_phase(kept);
        now
    }

    /// [`crate::thread_init`] for this part.
    pub(crate) fn thread_init(&self) -> Result<(), Error> {
        let mut err = None;
        // SAFETY: as in `enter_thread`; the sink stores into `err`.
        let rc = unsafe { (self.table.thread_init)(error_sink(&mut err)) };
        let phase = self.enter_thread();
        if let Some(problem) = &self.problem {
            return Err(problem.clone());
        }
        if rc != 0 {
            return Err(err.unwrap_or_else(|| remote("thread_init failed")));
        }
        match phase {
            Phase::Active => Ok(()),
            Phase::Busy => Err(Error::ThreadBusy),
            Phase::New => Err(Error::Os {
                op: "mapping a page for the thread",
                errno: libc::ENOMEM,
            }),
            Phase::Exited => Err(Error::ThreadExiting),
        }
    }

    /// [`crate::connect`], for the whole process; then this part's own problem, if it has one.
    pub(crate) fn connect(&self, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
        use std::os::fd::AsRawFd;
        let mut err = None;
        // SAFETY: as in `enter_thread`; the fd stays open for the call (it is borrowed).
        let rc = unsafe { (self.table.connect_fd)(fd.as_raw_fd(), error_sink(&mut err)) };
        self.answer(rc, err)
    }

    /// [`crate::connect_pinned`], as [`Guest::connect`] does.
    pub(crate) fn connect_pinned(&self, path: &std::path::Path) -> Result<(), Error> {
        use std::os::unix::ffi::OsStrExt;
        let mut err = None;
        let path = RawStr::new(path.as_os_str().as_bytes());
        // SAFETY: as in `enter_thread`; `path` is valid for the call.
        let rc = unsafe { (self.table.connect_pinned)(path, error_sink(&mut err)) };
        self.answer(rc, err)
    }

    fn answer(&self, rc: i32, err: Option<Error>) -> Result<(), Error> {
        if rc != 0 {
            return Err(err.unwrap_or_else(|| remote("the serving copy failed")));
        }
        match &self.problem {
            Some(problem) => Err(problem.clone()),
            None => Ok(()),
        }
    }

    /// [`crate::status`], as this part sees it.
    pub(crate) fn status(&self) -> Status {
        let mut slot = (
            Some(Local {
                hints: self.hints,
                problem: self.problem.clone(),
            }),
            None,
        );
        // SAFETY: as in `enter_thread`; the sink stores into `slot`, which outlives the call.
        unsafe { (self.table.status)(status_sink(&mut slot)) };
        let mut status = slot.1.expect("the serving copy delivers its status");
        if let Some(status_more) = self.status_more() {
            let mut more = RawStatusMore::default();
            let mut err = None;
            // SAFETY: as in `enter_thread`; `more` is writable, and the sink stores into
            // `err`, which outlives the call.
            unsafe { status_more(&mut more, error_sink(&mut err)) };
            status.watcher = more.watcher != 0;
            status.registration_failures = more.registration_failures;
            status.last_registration_error = err;
        }
        status
    }

    /// [`crate::set_watcher`], if the serving copy has it (an older one does not).
    pub(crate) fn set_watcher(&self, on: bool) {
        let offset = std::mem::offset_of!(HostTable, set_watcher);
        if self
            .table
            .has(offset, std::mem::size_of::<extern "C" fn(u32)>())
        {
            (self.table.set_watcher)(u32::from(on));
        }
    }

    /// The serving copy's `status_more`, if it has one.
    fn status_more(&self) -> Option<unsafe extern "C" fn(*mut RawStatusMore, ErrorSink)> {
        let offset = std::mem::offset_of!(HostTable, status_more);
        let len = std::mem::size_of::<unsafe extern "C" fn(*mut RawStatusMore, ErrorSink)>();
        self.table
            .has(offset, len)
            .then_some(self.table.status_more)
    }

    /// [`crate::DynamicKey::create`].
    pub(crate) fn create_key(&self, name: &str, size: usize) -> Result<Published, Error> {
        let mut out = RawKey::default();
        let mut err = None;
        // SAFETY: as in `enter_thread`; `name` and `out` are valid for the call.
        let rc = unsafe {
            (self.table.create_key)(
                RawStr::new(name.as_bytes()),
                size,
                &mut out,
                error_sink(&mut err),
            )
        };
        if rc != 0 {
            return Err(err.unwrap_or_else(|| remote("creating a key failed")));
        }
        Ok(Published {
            name: name.to_string(),
            size: out.size,
            offset: out.offset,
        })
    }

    /// [`crate::DynamicKey::find`].
    pub(crate) fn find_key(&self, name: &str) -> Option<Published> {
        let mut out = RawKey::default();
        // SAFETY: as in `enter_thread`; `name` and `out` are valid for the call.
        let rc = unsafe { (self.table.find_key)(RawStr::new(name.as_bytes()), &mut out) };
        (rc == 0).then(|| Published {
            name: name.to_string(),
            size: out.size,
            offset: out.offset,
        })
    }

    /// Gives the calling thread's page back now (see [`crate::threads::bindings`]).
    pub(crate) fn release_thread(&self) {
        if !self.left.load(Ordering::Acquire) {
            (self.table.release_thread)();
        }
    }

    /// Leaves the serving copy, as this copy is unloaded.
    fn leave(&self) {
        if !self.left.swap(true, Ordering::AcqRel) {
            (self.table.leave)(token());
        }
    }
}

fn remote(message: &str) -> Error {
    Error::Remote {
        message: message.to_string(),
        errno: None,
    }
}

/// Called by the serving copy on a thread whose page goes away: this copy's pointer to it goes
/// null, so that the page, which may go to another thread, is never reached from here again.
extern "C" fn forget(reason: u32) {
    thread_state::detach_block();
    thread_state::set_phase(if reason == FORGET_EXITING {
        Phase::Exited
    } else {
        Phase::New
    });
    bindings::run_release_hooks();
}

/// Run by the dynamic loader when this copy's object is unloaded (and at exit): a joined copy
/// leaves the serving one, which then never calls into code that is about to be unmapped.
extern "C" fn leave_on_unload() {
    if let Some(Role::Joined(guest)) = role::get() {
        guest.leave();
    }
}

/// `.fini_array` holds the destructors the dynamic loader runs when it unloads the object (and
/// at exit); `#[used]` keeps the entry although nothing names it.
#[used]
#[link_section = ".fini_array"]
static LEAVE_ON_UNLOAD: extern "C" fn() = leave_on_unload;
