//! The tokio_server example builds, serves, and marks its interactive requests: run as a user
//! would, once in its self-test mode and once as a server that this test talks to.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tokio_server"))
}

#[test]
fn the_self_test_passes() {
    let out = server()
        .args(["--self-test", "200", "--hogs", "1"])
        .output()
        .expect("run tokio_server");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tokio_server --self-test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("100 interactive requests saw priority=-5"),
        "{stdout}"
    );
    assert!(stdout.contains("100 batch requests never did"), "{stdout}");
    assert!(stdout.contains("self-test: p50 latency "), "{stdout}");
    assert!(stdout.contains("self-test: p99 latency "), "{stdout}");
    assert!(stdout.contains("self-test: passed"), "{stdout}");
}

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_server_marks_interactive_requests_only() {
    let mut child = Running(
        server()
            .args(["--addr", "127.0.0.1:0", "--workers", "2"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tokio_server"),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    stdout
        .read_line(&mut first)
        .expect("the server's first line");
    let addr = first
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"));

    let mut conn = TcpStream::connect(addr).expect("connect to the server");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(b"interactive 300000\nbatch 300000\nbatch x\n")
        .unwrap();
    let mut replies = BufReader::new(conn.try_clone().unwrap()).lines();
    let mut next = || replies.next().expect("a reply").expect("a readable reply");

    let interactive = next();
    assert!(
        interactive.starts_with("ok interactive polls=6 "),
        "{interactive}"
    );
    assert!(
        interactive.contains("priority=-5..-5 class=interactive..interactive"),
        "{interactive}"
    );
    let batch = next();
    assert!(batch.starts_with("ok batch polls=6 "), "{batch}");
    assert!(
        batch.contains("priority=0..0 class=normal..normal"),
        "{batch}"
    );
    let error = next();
    assert!(
        error.starts_with("error expected `interactive N` or `batch N`"),
        "{error}"
    );
}
