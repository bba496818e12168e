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
//! The memory layout is the one Linux 6.18's and sched-ext/scx's `task_local_data.bpf.h` read,
//! so BPF programs written against either read these hints unchanged.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bindings;
pub mod btf;
mod c_type;
mod connection;
mod connection_state;
pub mod consistent;
mod dynamic;
mod error;
mod fork;
mod guest;
mod handle;
pub mod header;
mod host;
mod index_stack;
mod kernel;
mod layout;
mod lifecycle;
mod locks;
mod marshal;
mod metadata;
mod parts;
mod pool;
mod process;
mod protocol;
mod registry;
pub mod rendezvous;
mod role;
mod runtime;
pub mod schema;
mod scoped;
mod segments;
mod seqlock;
mod sharing;
mod status;
mod sys;
mod thread_state;
mod thread_table;
mod types;
pub mod wire;

pub use c_type::{CField, CStruct, CType};
pub use consistent::ConsistentTaskLocal;
pub use dynamic::{DynamicHint, DynamicKey};
pub use error::Error;
pub use handle::TaskLocal;
pub use lifecycle::at_thread_exit;
pub use process::{connect, connect_pinned, status, thread_init};
pub use registry::Site;
pub use scoped::{HintFutureExt, HintGuard, HintSet, Hinted};
pub use sharing::Sharing;
pub use status::{Connection, MapSource, Status};
pub use types::TldType;

/// Turns `static NAME: T = init;` into a [`TaskLocal<T>`] that BPF can find by key.
///
/// The key is the static's name in lower case, or `key = "..."`. It must be a C identifier of at
/// most 61 bytes. See the crate documentation for an example.
///
/// `#[task_local_data(consistent)]` makes it a [`ConsistentTaskLocal<T>`] instead: its value is
/// guarded by a sequence counter, so that no reader, in BPF or Rust, ever sees half of an
/// update. Both arguments combine: `#[task_local_data(key = "budget", consistent)]`.
pub use tld_macros::task_local_data;

/// Derives [`TldType`] for a `#[repr(C)]` struct of plain-data fields, and records its C
/// definition for the generated header.
pub use tld_macros::TldType;

/// Items the macros expand to. Not public API: no stability promise.
#[doc(hidden)]
pub mod __private {
    pub use crate::c_type::{CField, CStruct, CType};
    pub use crate::registry::{Hint, Site, TLD_HINTS_V0_1};
    pub use bytemuck;
    pub use linkme;

    pub use crate::wire::{MAX_CONSISTENT_SIZE, MAX_HINT_ALIGN, MAX_HINT_SIZE, MAX_KEY_LEN};
}
