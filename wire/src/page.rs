//! The size of a page of memory, which sets how many keys a metadata page holds and how large a
//! thread's data area is.

/// The system's page size, or [`BASE_PAGE_SIZE`](crate::format::BASE_PAGE_SIZE) (4 KiB) if the
/// system does not say.
pub fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the system; it touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(crate::format::BASE_PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_page_is_a_power_of_two_of_at_least_4k() {
        let n = super::page_size();
        assert!(n >= 4096 && n.is_power_of_two(), "{n}");
    }
}
