//! A thread whose registration fails is counted, with the reason, in `status()`; its hints keep
//! working as thread-locals. The failure is real: the thread's registration needs a pidfd, and
//! the process has no file descriptor left when the thread starts.

use std::thread;

use tld_runtime::Error;
use tld_tests::*;

/// Sets the soft limit of open files, returning the previous one.
fn set_nofile(soft: libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let old = lim.rlim_cur;
    lim.rlim_cur = soft;
    // SAFETY: `lim` is a valid rlimit; lowering the soft limit needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    old
}

#[test]
fn a_failed_registration_is_counted_with_its_reason() {
    let test = "a_failed_registration_is_counted_with_its_reason";
    let Some(skel) = load(test) else {
        return;
    };
    connect(&skel);
    VALUE1.set(1);
    let before = tld_runtime::status();
    assert!(before.is_connected(), "{before}");
    assert_eq!(before.registration_failures, 0, "{before}");
    assert_eq!(before.last_registration_error, None);

    // Every descriptor taken: the next thread cannot open its pidfd.
    let old = set_nofile(256);
    let mut held = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        held.push(f);
    }
    let seen = thread::spawn(|| {
        VALUE1.set(42);
        VALUE1.get()
    })
    .join()
    .unwrap();
    drop(held);
    set_nofile(old);
    assert_eq!(seen, 42, "the hint works as a thread-local");

    let after = tld_runtime::status();
    assert_eq!(after.registration_failures, 1, "{after}");
    let errno = after
        .last_registration_error
        .as_ref()
        .and_then(Error::errno);
    assert_eq!(errno, Some(libc::EMFILE), "{after}");
    assert!(
        after.to_string().contains("1 thread registrations failed"),
        "{after}"
    );
}
