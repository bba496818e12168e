//! What the pages shared with BPF hold: the format's numbers, the layout of a thread's page,
//! the metadata page, and the latch protocol of consistent hints.

pub(crate) mod layout;
pub(crate) mod metadata;
pub(crate) mod seqlock;
pub mod wire;
