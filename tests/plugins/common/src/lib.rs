//! What the test plugins share: their status, in the C layout of `tests/c/plugin.h`.

use std::ffi::c_char;

use tld_runtime::{Connection, Sharing};

/// `struct plugin_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginInfo {
    /// 0 serving, 1 joined, 2 isolated, 3 unshared.
    pub sharing: i32,
    /// 1 if connected.
    pub connected: i32,
    /// Parts sharing the runtime.
    pub parts: u32,
    /// The plugin's own hints.
    pub hints: u32,
    /// Keys published.
    pub published_keys: u32,
    /// Threads with a page.
    pub live_threads: u32,
    /// The runtime's identity.
    pub runtime_id: u64,
    /// Why detached, or empty.
    pub problem: [c_char; 256],
}

/// The calling part's status, as `struct plugin_info`.
pub fn info() -> PluginInfo {
    let s = tld_runtime::status();
    let mut out = PluginInfo {
        sharing: match s.sharing {
            Sharing::Serving => 0,
            Sharing::Joined => 1,
            Sharing::Isolated { .. } => 2,
            _ => 3,
        },
        connected: i32::from(s.is_connected()),
        parts: s.parts as u32,
        hints: s.hints as u32,
        published_keys: s.published_keys as u32,
        live_threads: s.live_threads as u32,
        runtime_id: s.runtime_id,
        problem: [0; 256],
    };
    if let Connection::Detached { reason } = &s.connection {
        let text = reason.to_string();
        let n = text.len().min(255);
        for (dst, &b) in out.problem.iter_mut().zip(&text.as_bytes()[..n]) {
            *dst = b as c_char;
        }
    }
    out
}

/// `tld_runtime::thread_init()` as 0 or -errno (-EIO without one).
pub fn thread_init() -> i32 {
    match tld_runtime::thread_init() {
        Ok(()) => 0,
        Err(e) => -e.errno().unwrap_or(5),
    }
}
