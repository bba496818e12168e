//! Where things are pinned by default, and the environment variables that change it or the
//! tools the build uses.
//!
//! The runtime, the guard, the inspector, the build helper and the example scheduler agree on
//! these names: a scheduler pins its map where the runtime looks for it.

/// Where the runtime looks for `tld_data_map` when no map was given and [`MAP_PATH_ENV`] is
/// unset: the path libbpf's `LIBBPF_PIN_BY_NAME` pins a map of that name at.
pub const DEFAULT_DATA_MAP_PIN: &str = "/sys/fs/bpf/tld_data_map";

/// Environment variable naming the pin of `tld_data_map` (an empty value turns the runtime's
/// auto-connect off; the inspector then uses [`DEFAULT_DATA_MAP_PIN`]).
pub const MAP_PATH_ENV: &str = "TLD_MAP_PATH";

/// Where a guard (`tld-guard`) pins its events ring buffer by default.
pub const DEFAULT_GUARD_EVENTS_PIN: &str = "/sys/fs/bpf/tld_guard_events";

/// Environment variable naming the pin of a guard's events ring buffer.
pub const GUARD_EVENTS_ENV: &str = "TLD_GUARD_EVENTS";

/// Where a guard pins its key map by default, so that its stamps survive a restart.
pub const DEFAULT_GUARD_KEY_PIN: &str = "/sys/fs/bpf/tld_guard_key";

/// Environment variable that sets, in milliseconds, how often the runtime's watcher looks at
/// the pin path for a map that appeared or was replaced; 0 switches the watcher off. The
/// default is 1000.
pub const WATCH_INTERVAL_ENV: &str = "TLD_WATCH_INTERVAL_MS";

/// Environment variable naming the clang that build scripts compile BPF C with (`tld-bpf-build`,
/// the example scheduler's build script); clang 19 or later keeps the `uptr` type tag.
pub const CLANG_ENV: &str = "TLD_CLANG";

/// Environment variable naming the bpftool that `tld-bpf-build` dumps kernel BTF with.
pub const BPFTOOL_ENV: &str = "TLD_BPFTOOL";
