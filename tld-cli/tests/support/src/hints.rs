//! The hints of the `app` role: static hints of several types (a derived struct among them),
//! the values each of its threads sets, and where they lie in a thread's page.

use tld_runtime::{task_local_data, TldType};

/// A window of time, nested in [`Latency`].
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Window {
    /// Its start, in microseconds.
    pub start_us: u32,
    /// Its length, in microseconds.
    pub len_us: u32,
}

/// A derived struct with integers of both signs and sizes, an array of structs and a float.
#[derive(TldType, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Latency {
    /// A budget, in microseconds.
    pub budget_us: u32,
    /// A signed 16-bit class.
    pub class: i16,
    /// A flag, as a byte.
    pub urgent: u8,
    /// A small number.
    pub tier: u8,
    /// Two nested structs.
    pub windows: [Window; 2],
    /// A float.
    pub weight: f64,
}

/// Key "priority".
#[task_local_data]
pub static PRIORITY: i32 = 0;

/// Key "latency".
#[task_local_data]
pub static LATENCY: Latency = Latency {
    budget_us: 0,
    class: 0,
    urgent: 0,
    tier: 0,
    windows: [Window {
        start_us: 0,
        len_us: 0,
    }; 2],
    weight: 0.0,
};

/// Key "active": a bool.
#[task_local_data]
pub static ACTIVE: bool = false;

/// Key "flags": unsigned, so that the schema changes how it decodes.
#[task_local_data]
pub static FLAGS: u16 = 0;

/// Key "blob": 12 bytes, which decode to nothing without a schema.
#[task_local_data]
pub static BLOB: [u8; 12] = [0; 12];

/// Key "bpf_counter": written by BPF in the tests.
#[task_local_data]
pub static BPF_COUNTER: u64 = 0;

/// Each thread of the `app` role: its name and the values it sets.
pub struct AppThread {
    /// The thread's name.
    pub name: &'static str,
    /// Set in [`ACTIVE`].
    pub active: bool,
    /// Set in [`PRIORITY`].
    pub priority: i32,
    /// Set in [`LATENCY`].
    pub latency: Latency,
    /// Set in [`FLAGS`].
    pub flags: u16,
    /// Set in [`BLOB`].
    pub blob: [u8; 12],
    /// Written to the dynamic key `dyn_budget_ns` (u64).
    pub budget_ns: u64,
    /// Written to the dynamic key `dyn_raw` (3 bytes).
    pub raw: [u8; 3],
}

/// The `app` role's threads, in the order they start.
pub const APP_THREADS: [AppThread; 2] = [
    AppThread {
        name: "tld-app-a",
        active: true,
        priority: 90,
        latency: Latency {
            budget_us: 500,
            class: -2,
            urgent: 1,
            tier: 3,
            windows: [
                Window {
                    start_us: 1,
                    len_us: 2,
                },
                Window {
                    start_us: 3,
                    len_us: 4,
                },
            ],
            weight: 0.25,
        },
        flags: 0xfffe,
        blob: *b"hello world!",
        budget_ns: 250_000,
        raw: [1, 2, 3],
    },
    AppThread {
        name: "tld-app-b",
        active: false,
        priority: -7,
        latency: Latency {
            budget_us: 0,
            class: 0,
            urgent: 0,
            tier: 0,
            windows: [Window {
                start_us: 0,
                len_us: 0,
            }; 2],
            weight: 0.0,
        },
        flags: 1,
        blob: [0; 12],
        budget_ns: 0,
        raw: [0; 3],
    },
];

/// Offsets of the keys in an `app` thread's page: the static keys sorted by name after the
/// 16-byte header (start and fingerprint), each rounded up to 8 bytes, then the dynamic keys in
/// creation order.
pub mod offsets {
    /// Of [`super::ACTIVE`].
    pub const ACTIVE: usize = 16;
    /// Of [`super::BLOB`].
    pub const BLOB: usize = 24;
    /// Of [`super::BPF_COUNTER`].
    pub const BPF_COUNTER: usize = 40;
    /// Of [`super::FLAGS`].
    pub const FLAGS: usize = 48;
    /// Of [`super::LATENCY`].
    pub const LATENCY: usize = 56;
    /// Of [`super::PRIORITY`].
    pub const PRIORITY: usize = 88;
    /// Of the dynamic key `dyn_budget_ns`.
    pub const DYN_BUDGET_NS: usize = 96;
    /// Of the dynamic key `dyn_raw`.
    pub const DYN_RAW: usize = 104;
}
