//! `tld watch` in a real pseudo-terminal (util-linux `script`): it draws the keys, highlights a
//! value that BPF changes, notices the process exit, and on `q` or Ctrl-C exits with status 0
//! and restores the terminal (leaves the alternate screen, shows the cursor).
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tld_cli_test_support::{bpf::*, hints::*, roles::*, run::*};

/// `tld watch` running under `script`, with everything it draws collected.
struct Pty {
    child: Child,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn spawn(args: &[String]) -> Pty {
        let command: Vec<String> = std::iter::once(tld_bin().display().to_string())
            .chain(args.iter().cloned())
            .map(|a| format!("'{a}'"))
            .collect();
        let mut child = Command::new("script")
            .args(["-q", "-f", "-e", "-c", &command.join(" "), "/dev/null"])
            .env_remove("TLD_MAP_PATH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run script");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty { child, screen }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the screen shows `what`.
    fn wait_for(&self, what: &str) {
        let start = Instant::now();
        while !self.text().contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "`{what}` never appeared; the screen so far:\n{}",
                self.text().escape_debug()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `keys`, and waits for tld to exit; returns what the terminal got.
    fn quit_with(mut self, keys: &[u8]) -> String {
        self.child.stdin.as_mut().unwrap().write_all(keys).unwrap();
        self.child.stdin.as_mut().unwrap().flush().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("tld watch did not exit on {keys:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        std::thread::sleep(Duration::from_millis(100));
        let mut err = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
        let text = self.text();
        assert!(
            status.success(),
            "tld watch failed: {status} {err}\n{text:?}"
        );
        text
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // A test that failed half-way must not leave `script` (and the watch under it) behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids of `tld watch` processes whose command line mentions `needle`.
fn watch_processes(needle: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("watch") && c.contains(needle) && !c.contains("script")
            })
        })
        .collect()
}

/// Checks that the terminal was restored after the last frame.
fn restored(text: &str) {
    let enter = text
        .find("\x1b[?1049h")
        .expect("entered the alternate screen");
    let leave = text
        .rfind("\x1b[?1049l")
        .expect("left the alternate screen");
    assert!(enter < leave);
    assert!(
        text[..leave]
            .rfind("\x1b[?25h")
            .is_some_and(|show| show > enter)
            || text[leave..].contains("\x1b[?25h"),
        "the cursor is shown again"
    );
    // Nothing is drawn after the screen is restored.
    assert!(!text[leave..].contains("tld-app"), "{:?}", &text[leave..]);
}

fn script_missing() -> bool {
    !std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("script").is_file()))
        .unwrap_or(false)
}

const WATCH: &str = "watch_highlights_changes_and_restores_the_terminal";

#[test]
fn watch_highlights_changes_and_restores_the_terminal() {
    if let Some(role) = role() {
        return play(&role);
    }
    if script_missing() {
        return skip(WATCH, "script (util-linux) is not installed");
    }
    let Some(fixture) = Fixture::load(WATCH) else {
        return;
    };
    let pin = fixture.pin().to_str().unwrap().to_string();
    let app = RoleChild::spawn(WATCH, "app", fixture.pin());
    let args: Vec<String> = [
        "watch",
        "--pin",
        &pin,
        "--interval",
        "50",
        &app.pid.to_string(),
    ]
    .map(String::from)
    .to_vec();

    // q quits.
    let pty = Pty::spawn(&args);
    pty.wait_for("tld-app-b");
    pty.wait_for("refresh 3");
    // A value BPF changes is shown in reverse video.
    assert_eq!(
        fixture.write(
            app.tids[0],
            Page::Data,
            offsets::BPF_COUNTER,
            &4242u64.to_ne_bytes()
        ),
        0
    );
    pty.wait_for("\x1b[7m4242");
    let text = pty.quit_with(b"q");
    restored(&text);
    // Values that did not change were never highlighted.
    assert!(!text.contains("\x1b[7m90"), "priority was highlighted");

    // A terminal that goes away (its window closed: here `script` is killed) ends the view.
    let mut pty = Pty::spawn(&args);
    pty.wait_for("refresh 2");
    assert!(!watch_processes(&pin).is_empty(), "the watch is not found");
    let _ = pty.child.kill();
    let start = Instant::now();
    while !watch_processes(&pin).is_empty() {
        if start.elapsed() > Duration::from_secs(10) {
            for pid in watch_processes(&pin) {
                // SAFETY: killing a process this test started (through script).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            panic!("tld watch went on after its terminal went away");
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Ctrl-C quits too, and so does Esc; a process that exits is reported, not fatal.
    let pty = Pty::spawn(&args);
    pty.wait_for("tld-app-a");
    app.finish();
    pty.wait_for("any more (exited?); still watching");
    restored(&pty.quit_with(b"\x03"));
}

#[test]
fn watch_needs_a_terminal() {
    if role().is_some() {
        return;
    }
    let Some(fixture) = Fixture::load("watch_needs_a_terminal") else {
        return;
    };
    let out = tld(&["watch", "--pin", fixture.pin().to_str().unwrap(), "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("watch needs a terminal; use `tld show --json` from scripts"),
        "{}",
        stderr(&out)
    );
}
