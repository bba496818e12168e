//! Generation of the C header that gives BPF programs typed access to the hints.
