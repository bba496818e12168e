//! Unprivileged processes: who may open the pinned map decides who registers pages.
//!
//! # Deployment: the pin's mode is the security boundary
//!
//! Anyone who holds a writable fd of `tld_data_map` can set the storage of any task it can get a
//! pidfd for, and point that storage at its own memory: the kernel then pins pages of the
//! caller's address space under another task's name, and BPF programs (a scheduler) read them
//! as that task's hints. So who may open the map pinned in bpffs is the security boundary, and
//! the pin's owner, group and mode are the policy:
//!
//! - **0660, group `tld`** (recommended): create a dedicated group, say `tld`, whose members are
//!   the applications allowed to publish hints; pin the map `root:tld` with mode 0660. Members
//!   register their threads; every other process gets `Error::PermissionDenied` (EACCES) from
//!   `status()` and `thread_init()`, and its hints keep working as plain thread-locals.
//! - **0600, root only**: only root processes register; every other user is refused as above.
//!   This is what a map pinned by a root loader gets by default.
//! - **0666**: any user can open the map and register pages. For development machines only.
//!
//! The tests below check the two refusals and the group grant from real unprivileged processes:
//! this test binary, re-run as `nobody` through `setpriv` with no capabilities, auto-connecting
//! through `TLD_MAP_PATH`. The root parent reads what BPF sees of the child's threads by tid.
//! They need root (to drop to `nobody` and to own the pin) and `setpriv` (util-linux); without
//! either they are skipped, or fail under `TLD_REQUIRE_BPF=1`.

use std::io::{BufRead, BufReader, Lines, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;

use tld_runtime::{Error, MapSource};
use tld_tests::*;

const ROOT_ONLY: &str = "a_root_only_pin_refuses_other_users";
const LOOKALIKE: &str = "an_unprivileged_process_refuses_a_look_alike_map";
const GROUP: &str = "a_group_pin_admits_its_members_only";

/// Environment variable telling the child which gid it must (role `member`) or must not (role
/// `outsider`) have.
const GROUP_ENV: &str = "TLD_TEST_PIN_GROUP";

// ---------------------------------------------------------------------------------------------
// The child: this binary re-run as `nobody`.

/// Values for the child's two threads: the test thread (0) and one it spawns (1).
fn child_values(thread: u64) -> (i32, u64) {
    (-41 - thread as i32, 0xBEEF_0000 | thread)
}

/// A line `Name:\t...` of /proc/self/status, split into words.
fn proc_status(name: &str) -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The part of a child: `member` must be registered, `outsider` must be refused with EACCES.
/// It checks itself, prints "ready <tid> <tid>", and waits for a line on stdin before it ends,
/// so that the parent can look at its threads from BPF meanwhile.
fn child(role: &str) {
    let member = match role {
        "member" => true,
        "outsider" => false,
        other => panic!("unknown role {other}"),
    };
    // The child really is unprivileged.
    let uids = proc_status("Uid");
    assert!(
        uids.len() == 4 && uids.iter().all(|u| u != "0"),
        "the child runs as uid {uids:?}"
    );
    assert_eq!(
        proc_status("CapEff"),
        ["0000000000000000"],
        "the child has capabilities"
    );
    let groups = proc_status("Groups");
    if let Ok(gid) = std::env::var(GROUP_ENV) {
        assert_eq!(
            groups.contains(&gid),
            member,
            "supplementary groups {groups:?}, pin group {gid}"
        );
    }

    let expect_registration = move |result: Result<(), Error>, who: &str| {
        if member {
            result.unwrap_or_else(|e| panic!("{who}: a group member is not registered: {e}"));
        } else {
            match result {
                Err(Error::PermissionDenied {
                    errno: libc::EACCES,
                    ..
                }) => {}
                other => panic!("{who}: expected PermissionDenied (EACCES), got {other:?}"),
            }
        }
    };

    // The test thread: its hints are thread-locals, registered or not.
    let (v, a) = child_values(0);
    VALUE1.set(v);
    HINT_A.set(a);
    expect_registration(tld_runtime::thread_init(), "the test thread");

    // A second thread, with values of its own.
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let other = thread::spawn(move || {
        assert_eq!(
            VALUE1.get(),
            0,
            "a new thread starts from the initial value"
        );
        let (v, a) = child_values(1);
        VALUE1.set(v);
        HINT_A.set(a);
        expect_registration(tld_runtime::thread_init(), "the second thread");
        tid_tx.send(gettid()).unwrap();
        let _ = done_rx.recv();
        assert_eq!((VALUE1.get(), HINT_A.get()), (v, a));
    });
    let other_tid = tid_rx.recv().expect("the second thread started");
    assert_eq!(
        (VALUE1.get(), HINT_A.get()),
        (v, a),
        "values leaked across threads"
    );

    let status = tld_runtime::status();
    if member {
        assert!(status.is_connected(), "{status}");
        match &status.connection {
            tld_runtime::Connection::Connected { source, .. } => assert_eq!(
                source,
                &MapSource::Pinned(PathBuf::from(
                    std::env::var_os("TLD_MAP_PATH").expect("TLD_MAP_PATH")
                ))
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(status.registered_threads, 2, "{status}");
    } else {
        assert!(!status.is_connected(), "{status}");
        match status.reason() {
            Some(e @ Error::PermissionDenied { errno, .. }) => {
                assert_eq!(*errno, libc::EACCES, "{e}");
                assert_eq!(e.errno(), Some(libc::EACCES));
            }
            other => panic!("expected PermissionDenied from status(), got {other:?} ({status})"),
        }
        assert_eq!(status.registered_threads, 0, "{status}");
    }

    println!("ready {} {other_tid}", gettid());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("read stdin");
    done_tx.send(()).unwrap();
    other.join().expect("the second thread");
    assert_eq!((VALUE1.get(), HINT_A.get()), (v, a));
}

// ---------------------------------------------------------------------------------------------
// The parent: root.

/// Skips the test (after saying why), or fails it under `TLD_REQUIRE_BPF=1`.
fn skip(test: &str, why: &str) {
    if bpf_required() {
        panic!("{test}: TLD_REQUIRE_BPF=1 but {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// `nobody`'s uid and primary gid, from /etc/passwd (65534 for both if it is not listed).
fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == "nobody")
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        })
        .flatten()
        .unwrap_or((65534, 65534))
}

/// A gid that no group in /etc/group has: a group of which `nobody` is certainly not a member,
/// used for the test's pin without adding a group to the system.
fn unused_gid(avoid: u32) -> u32 {
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let used: Vec<u32> = group
        .lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect();
    (50_000..60_000)
        .find(|g| *g != avoid && !used.contains(g))
        .expect("a free gid")
}

/// Why this machine cannot run the test, if it cannot.
fn unsupported() -> Option<String> {
    if proc_status("Uid").get(1).map(String::as_str) != Some("0") {
        return Some("it must run as root, to pin the map and drop to nobody".into());
    }
    let setpriv = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("setpriv").is_file()))
        .unwrap_or(false);
    if !setpriv {
        return Some("setpriv (util-linux) is not installed".into());
    }
    // nobody must be able to reach and run this binary.
    let exe = std::env::current_exe().expect("current_exe");
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    if mode(&exe) & 0o005 != 0o005 {
        return Some(format!(
            "{} is not readable and executable by others",
            exe.display()
        ));
    }
    if let Some(dir) = exe.ancestors().skip(1).find(|d| mode(d) & 0o001 == 0) {
        return Some(format!("{} is not searchable by others", dir.display()));
    }
    None
}

/// Pins `skel`'s map as `name`, owned by root and group `gid`, with `mode`.
fn pin_with(skel: &TldTestSkel<'_>, name: &str, gid: u32, mode: u32) -> Option<PinnedMap> {
    let pin = PinnedMap::pin(skel.maps.tld_data_map.as_fd(), name)?;
    std::os::unix::fs::chown(pin.path(), Some(0), Some(gid)).expect("chown the pin");
    std::fs::set_permissions(pin.path(), std::fs::Permissions::from_mode(mode))
        .expect("chmod the pin");
    Some(pin)
}

/// A child playing `role`, as nobody with no capabilities, with supplementary group `group`
/// (none if `None`), auto-connecting to the map pinned at `pin`.
struct NobodyChild {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl NobodyChild {
    fn spawn(test: &str, role: &str, pin: &Path, group: Option<u32>, pin_gid: u32) -> Self {
        let (uid, gid) = nobody();
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"));
        match group {
            Some(g) => cmd.arg(format!("--groups={g}")),
            None => cmd.arg("--clear-groups"),
        };
        cmd.arg("--inh-caps=-all")
            .arg(std::env::current_exe().expect("current_exe"))
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, role)
            .env("TLD_MAP_PATH", pin)
            .env(GROUP_ENV, pin_gid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn setpriv");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        NobodyChild { child, lines }
    }

    /// The tids of the child's two threads, once it has checked itself.
    fn ready(&mut self) -> [i32; 2] {
        for line in self.lines.by_ref() {
            let line = line.expect("child output");
            // libtest may have written "test ... " on the same line first.
            if let Some((_, tids)) = line.split_once("ready ") {
                let tids: Vec<i32> = tids
                    .split_whitespace()
                    .map(|t| t.parse().expect("a tid"))
                    .collect();
                return tids.try_into().expect("two tids");
            }
        }
        let status = self.child.wait().expect("wait for the child");
        panic!("the child ended before it was ready ({status}); its stderr is above");
    }

    /// Lets the child end, and checks that it passed.
    fn finish(mut self) {
        writeln!(self.child.stdin.take().unwrap(), "go").expect("write to the child");
        let status = self.child.wait().expect("wait for the child");
        assert!(
            status.success(),
            "the child failed ({status}); its stderr is above"
        );
    }
}

/// Checks what BPF sees of the child's threads: their values if `registered`, else nothing.
fn check_child_threads(skel: &TldTestSkel<'_>, tids: [i32; 2], registered: bool) {
    for (i, tid) in tids.into_iter().enumerate() {
        let r = bpf_read_pid(skel, tid);
        if registered {
            let (v, a) = child_values(i as u64);
            assert_eq!(
                (r.init_ret, r.value1, r.hint_a),
                (0, i64::from(v), a),
                "BPF does not see the values of the child's thread {i} (tid {tid})"
            );
        } else {
            assert_eq!(
                r.init_ret,
                -i64::from(libc::ENODATA),
                "the refused child's thread {i} (tid {tid}) has storage: {r:?}"
            );
        }
    }
}

#[test]
fn a_root_only_pin_refuses_other_users() {
    if let Some(role) = role() {
        return child(&role);
    }
    if let Some(why) = unsupported() {
        return skip(ROOT_ONLY, &why);
    }
    let Some(skel) = load(ROOT_ONLY) else {
        return;
    };
    let Some(pin) = pin_with(&skel, "unpriv_root_only", 0, 0o600) else {
        return;
    };
    let mut child = NobodyChild::spawn(ROOT_ONLY, "outsider", pin.path(), None, 0);
    let tids = child.ready();
    check_child_threads(&skel, tids, false);
    child.finish();
}

#[test]
fn a_group_pin_admits_its_members_only() {
    if let Some(role) = role() {
        return child(&role);
    }
    if let Some(why) = unsupported() {
        return skip(GROUP, &why);
    }
    let Some(skel) = load(GROUP) else {
        return;
    };
    let gid = unused_gid(nobody().1);
    let Some(pin) = pin_with(&skel, "unpriv_group", gid, 0o660) else {
        return;
    };

    // nobody, with the pin's group: registered, and BPF sees its threads' values.
    let mut member = NobodyChild::spawn(GROUP, "member", pin.path(), Some(gid), gid);
    let tids = member.ready();
    check_child_threads(&skel, tids, true);
    member.finish();

    // nobody, without it: refused.
    let mut outsider = NobodyChild::spawn(GROUP, "outsider", pin.path(), None, gid);
    let tids = outsider.ready();
    check_child_threads(&skel, tids, false);
    outsider.finish();
}

/// The child of [`an_unprivileged_process_refuses_a_look_alike_map`]: it may open the pinned
/// map but not read its BTF, so only the registration's read-back can tell that the map pins
/// nothing. It must refuse the map, and keep its hints as thread-locals.
fn lookalike_child() {
    let e = tld_runtime::thread_init().unwrap_err();
    assert!(
        matches!(&e, Error::NotATldMap { reason } if reason.contains("not __uptr pointers")),
        "the look-alike map was not refused: {e}"
    );
    let status = tld_runtime::status();
    assert!(!status.is_connected(), "{status}");
    VALUE1.set(5);
    assert_eq!(VALUE1.get(), 5);
    let tid = gettid();
    println!("ready {tid} {tid}");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn an_unprivileged_process_refuses_a_look_alike_map() {
    if role().is_some() {
        return lookalike_child();
    }
    if let Some(why) = unsupported() {
        return skip(LOOKALIKE, &why);
    }
    let Some(skel) = load_isolation(LOOKALIKE) else {
        return;
    };
    let Some(pin) = PinnedMap::pin(skel.maps.plain_map.as_fd(), "unpriv_lookalike") else {
        return;
    };
    std::fs::set_permissions(pin.path(), std::fs::Permissions::from_mode(0o666))
        .expect("chmod the pin");
    let mut child = NobodyChild::spawn(LOOKALIKE, "lookalike", pin.path(), None, 0);
    let [tid, _] = child.ready();
    // The element made to check the map was deleted again.
    let pidfd = pidfd_of_thread(tid);
    let left = libbpf_rs::MapCore::lookup(
        &skel.maps.plain_map,
        &std::os::fd::AsRawFd::as_raw_fd(&pidfd).to_ne_bytes(),
        libbpf_rs::MapFlags::ANY,
    )
    .expect("look the element up");
    assert!(left.is_none(), "the probe's element was left in the map");
    child.finish();
}
