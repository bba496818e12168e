//! Which capabilities each action needs, checked before the kernel is asked, so that a missing
//! privilege gets a message that names it rather than a bare `EPERM`.
//!
//! | action | needs |
//! |---|---|
//! | load and run the task iterator (`ps`, `show`, `watch`) | `CAP_BPF` and `CAP_PERFMON`, or `CAP_SYS_ADMIN` |
//! | open a map by id (`--map-id`), list maps (`maps`), read a map's BTF | `CAP_SYS_ADMIN` |
//! | open a pinned map (`--pin`, the default) | read permission on the pin |
//!
//! Root has all of them. Without `CAP_SYS_ADMIN` the inspector cannot read the map's BTF and
//! assumes the standard page sizes (see [`crate::map`]).

use crate::error::Error;
use crate::sys;

/// `CAP_SYS_ADMIN`.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_PERFMON`.
pub const CAP_PERFMON: u32 = 38;
/// `CAP_BPF`.
pub const CAP_BPF: u32 = 39;

/// What running the task iterator needs, in words.
pub const ITERATOR_NEEDS: &str = "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN; root has all three)";
/// What opening maps by id needs, in words.
pub const BY_ID_NEEDS: &str = "CAP_SYS_ADMIN (root has it)";

fn has(caps: u64, cap: u32) -> bool {
    caps & (1 << cap) != 0
}

/// Whether the effective set is known to lack `cap`. When it cannot be read, the kernel decides.
fn lacks(cap: u32) -> bool {
    sys::effective_caps().is_some_and(|caps| !has(caps, cap))
}

/// Whether this process may read the BTF of maps and open them by id.
pub fn has_sys_admin() -> bool {
    !lacks(CAP_SYS_ADMIN)
}

/// Checks that the task iterator can be loaded.
pub fn require_iterator() -> Result<(), Error> {
    if !lacks(CAP_SYS_ADMIN) || (!lacks(CAP_BPF) && !lacks(CAP_PERFMON)) {
        return Ok(());
    }
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(cap, _)| lacks(cap))
        .map(|(_, name)| name)
        .collect();
    Err(Error::Privilege {
        action: "reading task local data (tld loads a BPF task iterator)".into(),
        needs: format!(
            "{ITERATOR_NEEDS}; this process lacks {}. Run it as root, e.g. `sudo tld ...`",
            missing.join(" and ")
        ),
        errno: None,
    })
}

/// Checks that maps can be opened by id and enumerated, for `action`.
pub fn require_sys_admin(action: &str) -> Result<(), Error> {
    if lacks(CAP_SYS_ADMIN) {
        return Err(Error::Privilege {
            action: action.into(),
            needs: format!(
                "{BY_ID_NEEDS}; this process lacks it. Run it as root, e.g. `sudo tld ...`, or \
                 name a pinned map with --pin PATH"
            ),
            errno: None,
        });
    }
    Ok(())
}
