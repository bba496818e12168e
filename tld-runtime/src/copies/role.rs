//! What this copy of the runtime is in its process, decided once at its first use: the copy
//! that serves, one that joined it, or one on its own (see [`crate::Sharing`]).
//!
//! The decision takes no lock of this copy: looking for the table and claiming it are system
//! calls that the kernel arbitrates, and joining is a call to the serving copy, which takes its
//! own locks (those its `fork` handlers know) and answers the same way if asked twice. So two
//! threads that decide at once agree, and a `fork` in the middle leaves nothing held: the child
//! decides again.

use std::sync::OnceLock;

use crate::copies::guest::Guest;
use crate::copies::host;
use crate::copies::protocol::{HostTable, PROTOCOL};
use crate::copies::rendezvous::{self, Found, MAGIC};
use crate::copies::sharing::Sharing;
use crate::error::Error;

/// What this copy is.
#[derive(Debug)]
pub(crate) enum Role {
    /// It serves the process: its own runtime is everyone's.
    Serving,
    /// It serves on its own: it could not look for other copies.
    Unshared(Error),
    /// It runs on its own and registers nothing: another copy serves, which it cannot join.
    Isolated(Error),
    /// It joined the copy that serves.
    Joined(Guest),
}

impl Role {
    /// How [`crate::Status`] reports it.
    pub(crate) fn sharing(&self) -> Sharing {
        match self {
            Role::Serving => Sharing::Serving,
            Role::Unshared(reason) => Sharing::Unshared {
                reason: reason.clone(),
            },
            Role::Isolated(reason) => Sharing::Isolated {
                reason: reason.clone(),
            },
            Role::Joined(_) => Sharing::Joined,
        }
    }
}

static ROLE: OnceLock<Role> = OnceLock::new();

/// This copy's role, decided at the first call.
pub(crate) fn role() -> &'static Role {
    match ROLE.get() {
        Some(role) => role,
        None => decide(),
    }
}

/// This copy's role, if it has been decided.
pub(crate) fn get() -> Option<&'static Role> {
    ROLE.get()
}

/// The copy that serves the process, if it is another one.
pub(crate) fn guest() -> Option<&'static Guest> {
    match role() {
        Role::Joined(guest) => Some(guest),
        _ => None,
    }
}

#[cold]
fn decide() -> &'static Role {
    let ours = host::table_address();
    let role = match rendezvous::find_or_claim(ours, PROTOCOL) {
        Ok(Found::Claimed) => Role::Serving,
        Ok(Found::Existing(header)) if header.table == ours => Role::Serving,
        Ok(Found::Existing(header)) if header.magic != MAGIC => Role::Unshared(Error::Os {
            op: "reading the process's runtime table (its magic is wrong)",
            errno: libc::EPROTO,
        }),
        Ok(Found::Existing(header)) if header.protocol != PROTOCOL => {
            Role::Isolated(Error::OtherRuntime {
                protocol: header.protocol,
                supported: PROTOCOL,
            })
        }
        Ok(Found::Existing(header)) => {
            // SAFETY: a copy of this protocol wrote the header, naming its own static table,
            // after pinning the object it lives in (`rendezvous::find_or_claim`): the table
            // is valid, and stays so until the process ends.
            let table: &'static HostTable = unsafe { &*(header.table as *const HostTable) };
            if table.protocol != PROTOCOL || table.size < HostTable::FIRST_SIZE {
                Role::Isolated(Error::OtherRuntime {
                    protocol: table.protocol,
                    supported: PROTOCOL,
                })
            } else {
                Role::Joined(Guest::join(table))
            }
        }
        Err(reason) => Role::Unshared(reason),
    };
    // A thread that decided first wins; joining twice gave the same answer.
    let _ = ROLE.set(role);
    ROLE.get().expect("set just above")
}
