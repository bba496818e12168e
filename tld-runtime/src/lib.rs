//! # tld: task local data for Rust and BPF
//!
//! Declare per-thread hints as Rust statics, store to them with plain memory writes, and let BPF
//! programs (a sched_ext scheduler, a tracer, a policy engine) read them by name.
//!
//! ```
//! use tld_runtime::{task_local_data, TldType};
//!
//! #[derive(TldType, Clone, Copy, Default)]
//! #[repr(C)]
//! pub struct LatencyHint {
//!     pub budget_ns: u64,
//!     pub class: u32,
//!     pub flags: u32,
//! }
//!
//! /// How urgent this thread's work is; read by the scheduler under the key "priority".
//! #[task_local_data]
//! pub static PRIORITY: i32 = 0;
//!
//! #[task_local_data(key = "latency")]
//! pub static LATENCY: LatencyHint = LatencyHint { budget_ns: 0, class: 0, flags: 0 };
//!
//! PRIORITY.set(5);
//! LATENCY.update(|h| h.budget_ns = 200_000);
//! assert_eq!(PRIORITY.get(), 5);
//! ```
//!
//! A multi-field hint that BPF must never see half-updated is declared
//! `#[task_local_data(consistent)]`: see [`ConsistentTaskLocal`].
//!
//! A hint can also follow a unit of work rather than a thread: [`TaskLocal::scoped`] and
//! [`TaskLocal::set_scoped`] set it for a closure or a guard's lifetime, and
//! [`HintFutureExt::with_hint`] carries it with a future into every poll, on whichever thread
//! polls it (see [`HintFutureExt`]).
//!
//! The runtime lays the hints out on first use, gives each thread a page, and registers that page
//! with the kernel's `tld_data_map` (a BPF task storage map) when one is available: see
//! [`connect`], [`connect_pinned`] and [`status`]. Without a map, hints keep working as plain
//! thread-locals. A thread's page goes back to the runtime when the thread ends, after its
//! `thread_local!` destructors; [`at_thread_exit`] runs code after that.
//!
//! The memory layout is the kernel's, in both of its generations: Linux 7.x's, and Linux 6.18's
//! and sched-ext/scx's. The runtime reads from the map which one its BPF readers speak
//! ([`Generation`]), so BPF programs written against the kernel's or scx's
//! `task_local_data.bpf.h` read these hints unchanged.
//!
//! # One runtime per process
//!
//! A process can hold several copies of this crate: the executable's, one in each Rust shared
//! object it loads (a plugin, a Python extension written with PyO3), and libtld's, the C
//! library built from it. The dynamic linker never merges them, and a plugin loaded with
//! `dlopen(RTLD_LOCAL)` does not even see the executable's symbols. Yet a thread has one
//! element in `tld_data_map`, naming one page and one metadata page: two runtimes registering
//! the same thread would each hide the other's hints from BPF. So the copies share one
//! runtime: one metadata page, one layout, one page and one registration per thread, in which
//! BPF finds every part's keys.
//!
//! - **Finding each other.** The first copy to need the runtime *serves* the process: it
//!   publishes a small read-only table at a fixed address, a memfd named
//!   `tld-runtime-rendezvous` mapped with `MAP_FIXED_NOREPLACE` (the kernel lets one mapping
//!   have an address; a copy that loses the race finds the winner's mapping by its name in
//!   `/proc/self/maps`). The table names a C-ABI function table of the serving copy, with a
//!   protocol number ([`rendezvous`] documents the format, which never changes). This works
//!   whatever the symbol scopes, and needs no cooperation from the program.
//! - **Joining.** Every other copy *joins* at its first use: its static hints are published in
//!   the serving copy's layout as keys created at run time are (appended to the metadata page),
//!   with their initial values written first into the page of every live thread and into the
//!   template of new threads' pages, so that every thread starts from the initializers. A
//!   part's hints are published all or none; a key that another part already has is a
//!   [`Error::DuplicateKey`] naming both declarations, and leaves that part's hints
//!   thread-local, as two statics with one key in one binary do. [`status`] in every part
//!   reports the same runtime ([`Status::runtime_id`], [`Status::parts`]) and the part's own
//!   [`Status::sharing`].
//! - **The hot path is unchanged.** A joined copy's hints run the code a serving copy's run: a
//!   thread-local load of the thread's page (the copy's own thread-local), the hint's offset, the
//!   access. Only a thread's first access differs: it asks the serving copy for the thread's
//!   page. Before a page goes away (the thread exits, or gives it back), the serving copy tells
//!   every joined copy, on that thread, to forget it.
//! - **Unloading.** The serving copy pins the object it lives in (`RTLD_NODELETE`), since the
//!   others call its code. A joined copy can be unloaded: as `dlclose` unloads it, a destructor
//!   in `.fini_array` makes it leave, and it is never called again. Its keys stay published
//!   (BPF programs may have cached their offsets), *orphaned*: each thread keeps its last value,
//!   and new threads start from the part's initializers. A part that declares an orphaned key
//!   again with the same size (the plugin loaded again) takes it over, and every thread's value
//!   goes back to its initializer; any other declaration of it is a duplicate.
//! - **`fork` and `exec`.** The table is mapped privately: a forked child has its own copy of
//!   it, naming the same code in the child, where the serving copy's `fork` handlers reset the
//!   runtime (every part's pointer to the forking thread's page stays right: the page is at
//!   the same address in the child). `exec` starts from nothing.
//! - **Another protocol.** A copy that finds a table of a protocol it does not speak keeps its
//!   hints as thread-locals and never registers a thread: [`Sharing::Isolated`] with
//!   [`Error::OtherRuntime`]. A copy that cannot look for the table at all (no memfd, no free
//!   address, no `/proc/self/maps`) serves on its own and says so: [`Sharing::Unshared`].
//!
//! Language bindings that keep their own pointer to a thread's page (libtld's C fast path) use
//! [`bindings`].
//!
//! # The watcher thread
//!
//! When the runtime has a pin path to follow (auto-connect's, or one given to
//! [`connect_pinned`]), its first connection attempt (a thread's first hint access,
//! [`thread_init`], or `connect*`) starts one thread, named `tld-watch`, with a small stack.
//! It connects to a map pinned later (a scheduler started after the application), moves
//! every thread to a map that replaces the pin (a restarted scheduler), and lets go of a map
//! whose pin goes away. Where `tld-guard` runs, it also follows the guard's event map and
//! registers again the threads whose elements another process spoofed. It never touches a
//! hint and holds no thread page; it ends on its own when it has nothing left to follow.
//!
//! It does not poll blindly: bpffs sends inotify events when a map is pinned (`IN_CREATE`),
//! unpinned (`IN_DELETE`) or its pin renamed (`IN_MOVED_FROM`/`IN_MOVED_TO`), so the watcher
//! sleeps until the pin's directory changes. It still looks once per interval
//! (`TLD_WATCH_INTERVAL_MS`, 1000 by default), for what inotify cannot report: a bpffs
//! mounted over the directory after the watch was set, or a kernel without inotify. The
//! guard's counts are the contents of a map, which make no inotify event: while a guard is
//! pinned, the watcher looks at them every 100 ms.
//!
//! To do without it: call [`set_watcher`]`(false)` (a running watcher ends at its next wake),
//! or set `TLD_WATCH_INTERVAL_MS=0` in the environment. Then the runtime connects only when
//! a thread registers or you call [`connect`] or [`connect_pinned`], and stays on the map it
//! has until you call one again. [`Status::watcher`] says whether the thread runs.
//!
//! # Cargo features
//!
//! - **`codegen`** (on by default): the C header and schema generators, `header` and
//!   `schema`, which a build script calls to write `tld_generated.h` for the hints it links
//!   (usually through `tld-bpf-build`, which turns the feature on for itself). An application
//!   never calls them at run time: it can leave them out of its binary with
//!   `default-features = false`. Cargo builds a build script's dependencies apart from the
//!   application's, so the build script keeps its generator either way.
//!
//! - `testing` (off by default): **for tests only; never enable it in a build you ship.** It
//!   makes the runtime read two environment variables, `TLD_TESTING_RETIRE_PAGES` and
//!   `TLD_TESTING_CLEAN_OLD_MAPS`, which, set to `0`, switch off retiring a thread's pages when
//!   it ends and deleting threads' elements from a map the runtime moves away from. Retirement
//!   is what keeps a BPF program that still reaches a finished thread's page from writing into
//!   the next thread's hints; tests switch it off to show that they would notice. Without the
//!   feature, neither variable is read, and both mechanisms are always on.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

// The folders are the layers, from what users write down to the kernel:
// - declare/: what an application declares (hint handles, scopes, keys made at run time, the
//   types hints may have, the registry of statics);
// - page/: what the pages shared with BPF hold (the format's numbers, the layout, the metadata
//   page, the latch of consistent hints);
// - threads/: a thread's life with the runtime (its page, the pool pages come from, fork, exit);
// - kernel/: the BPF map, its BTF, the connection that follows it, and the system calls;
// - copies/: the copies of the runtime in one process, and the protocol that makes them one;
// - codegen/: the C header and schema that build scripts generate.
// At the top: the runtime (the one piece of global state), the public functions (api.rs),
// status and errors.
mod api;
#[cfg(feature = "codegen")]
mod codegen;
mod copies;
mod declare;
mod error;
mod kernel;
mod locks;
mod page;
mod runtime;
mod status;
mod threads;

#[cfg(feature = "codegen")]
pub use codegen::{header, schema};
pub use copies::rendezvous;
pub use declare::consistent;
pub use kernel::btf;
pub use page::wire;
pub use threads::bindings;

pub use api::{connect, connect_also, connect_pinned, set_watcher, status, thread_init};
pub use copies::sharing::Sharing;
pub use declare::c_type::{CField, CStruct, CType};
pub use declare::consistent::ConsistentTaskLocal;
pub use declare::dynamic::{DynamicHint, DynamicKey};
pub use declare::registry::Site;
pub use declare::scoped::{HintFutureExt, HintGuard, HintSet, Hinted};
pub use declare::task_local::TaskLocal;
pub use declare::types::TldType;
pub use error::Error;
pub use kernel::connection::{
    DEFAULT_GUARD_EVENTS, DEFAULT_PIN_PATH, GUARD_EVENTS_ENV, PIN_PATH_ENV, WATCH_INTERVAL_ENV,
};
pub use page::wire::Generation;
pub use status::{Connection, MapSource, MapStatus, Status};
pub use threads::lifecycle::at_thread_exit;

/// Turns `static NAME: T = init;` into a [`TaskLocal<T>`] that BPF can find by key.
///
/// The key is the static's name in lower case, or `key = "..."`. It must be a C identifier of at
/// most 61 bytes. See the crate documentation for an example.
///
/// `#[task_local_data(consistent)]` makes it a [`ConsistentTaskLocal<T>`] instead: its value is
/// kept in two copies under a sequence word, so that no reader, in BPF or Rust, ever sees half
/// of an update. Both arguments combine: `#[task_local_data(key = "budget", consistent)]`.
pub use tld_macros::task_local_data;

/// Derives [`TldType`] for a `#[repr(C)]` struct of plain-data fields, and records its C
/// definition for the generated header.
pub use tld_macros::TldType;

/// Items the macros expand to. Not public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    pub use crate::declare::c_type::{CField, CStruct, CType};
    pub use crate::declare::registry::{Hint, Site, TLD_HINTS_V0_1};
    pub use bytemuck;
    pub use linkme;

    pub use crate::page::wire::{MAX_CONSISTENT_SIZE, MAX_HINT_ALIGN, MAX_HINT_SIZE, MAX_KEY_LEN};
}
