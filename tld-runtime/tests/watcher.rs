//! The watcher thread can be switched off, and then really stops; it wakes on inotify events
//! in the pin's directory rather than waiting for its poll.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tld_runtime::{task_local_data, Error};

/// A hint whose first access starts the runtime (and the watcher).
#[task_local_data]
static WATCHED: u32 = 0;

/// How many threads of this process are named `tld-watch`.
fn watchers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == "tld-watch")
        .count()
}

fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// One test, in order: the environment and the runtime are the process's.
#[test]
fn the_watcher_wakes_on_inotify_and_stops_when_switched_off() {
    // A pin path in an ordinary directory: nothing is pinned there, so auto-connect fails
    // and the watcher follows the path. No BPF needed.
    let dir = std::env::temp_dir().join(format!("tld_watch_test_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("tld_data_map");
    std::env::set_var("TLD_MAP_PATH", &path);
    // Ten minutes: only an inotify event wakes it within this test.
    std::env::set_var("TLD_WATCH_INTERVAL_MS", "600000");

    WATCHED.set(1);
    assert_eq!(
        tld_runtime::status().reason(),
        Some(&Error::MapNotFound { path: path.clone() })
    );
    assert!(
        wait_for(Duration::from_secs(5), || watchers() == 1),
        "no watcher thread"
    );
    assert!(tld_runtime::status().watcher);

    // Past the watcher's first look (100 ms after it starts); its next poll is minutes away.
    std::thread::sleep(Duration::from_millis(500));
    // Something appears at the path (not a map): the watcher wakes and tries it.
    std::fs::write(&path, b"not a map").unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || tld_runtime::status().reason()
            != Some(&Error::MapNotFound { path: path.clone() })),
        "the watcher did not wake on the new entry: {}",
        tld_runtime::status()
    );

    // Switched off: the thread ends at its next wake, which an inotify event brings now.
    tld_runtime::set_watcher(false);
    std::fs::remove_file(&path).unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || watchers() == 0),
        "the watcher still runs after set_watcher(false)"
    );
    assert!(!tld_runtime::status().watcher);
    // And stays off: nothing starts it again.
    assert!(tld_runtime::thread_init().is_err());
    std::thread::spawn(|| WATCHED.set(2)).join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(watchers(), 0);

    // Switched on again: it starts, since there is a path to follow.
    tld_runtime::set_watcher(true);
    assert!(
        wait_for(Duration::from_secs(5), || watchers() == 1),
        "set_watcher(true) started no watcher"
    );
    assert!(tld_runtime::status().watcher);
    let _ = std::fs::remove_dir_all(&dir);
}
