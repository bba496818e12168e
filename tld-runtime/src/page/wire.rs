//! The wire format's numbers: the layout of the pages that user space and BPF share.
//!
//! These are `tld-wire`'s ([`tld_wire::format`]), re-exported: every part of the project that
//! reads or writes the format takes its numbers from there: the runtime (which writes the
//! pages), the header generator (which tells BPF where to read), the procedural macros, the
//! tests, and tools such as an inspector that decode pages of any writer. A test compiles the
//! BPF header against these values, so the two cannot drift apart.
//!
//! ```text
//! tld_data_map value, two generations:
//!   Linux 6.18, scx (16 bytes):    { data __uptr *; meta __uptr *; }
//!   Linux 7.x (24 bytes):          { data __uptr *; meta __uptr *; u16 start; }
//!
//! metadata page (one per process): u16 cnt | u16 size | entry[0] | entry[1] | ...
//!   entry (64 bytes):              char name[62] (NUL-padded) | u16 size (0: not yet published)
//!
//! data page (one per thread):      u64 start | [u64 fingerprint] | value 0 | value 1 | ...
//!   value i lives at start + sum over j < i of round8(entry[j].size)
//!   6.18 readers take start from the page's first u64, 7.x readers from the map value;
//!   tld-runtime writes both
//!
//! a consistent hint's entry:        u64 seq | value copy 0 | value copy 1
//!   seq: bit 0 always 1 | bit 1: the thread writes | bit 2: BPF writes
//!        | bit 3: the thread waits to read | bits 4..: version v
//!   copy (v & 1) holds the last whole value; writers fill the other copy, then publish v + 1
//! ```
//!
//! The full description, with the publication rules and the kernel's lifetime rules, is in
//! `docs/wire-format.md` in the repository.

pub use tld_wire::format::*;
