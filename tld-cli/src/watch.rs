//! `tld watch`: a live view of one process's (or thread's) keys.
//!
//! The screen is redrawn every `--interval` ms from a fresh run of the iterator; a value that
//! changed since the previous refresh (or a key or thread that appeared) is shown in reverse
//! video. `q`, `Esc` or Ctrl-C quits, as do SIGINT, SIGTERM and SIGHUP, and the terminal going
//! away; the terminal is restored in every case, including a panic.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::style::{Attribute, Print, SetAttribute};
use crossterm::terminal::{self, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute, queue};

use crate::cli::WatchArgs;
use crate::error::Error;
use crate::iter::{not_found, select, Inspector};
use crate::map::{Choice, TldMap};
use crate::render::value_text;
use crate::report::{Document, Task};
use crate::schema::Schema;

/// A piece of a line, highlighted or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The text.
    pub text: String,
    /// Shown in reverse video.
    pub highlight: bool,
}

/// One screen line.
pub type Line = Vec<Span>;

fn plain(text: impl Into<String>) -> Span {
    Span {
        text: text.into(),
        highlight: false,
    }
}

/// What the previous refresh showed: each `(tid, key)`'s raw bytes.
pub type Seen = HashMap<(i32, String), String>;

/// The values of a document, for the next refresh's comparison.
pub fn seen(doc: &Document) -> Seen {
    doc.tasks
        .iter()
        .flat_map(|t| {
            t.keys
                .iter()
                .map(|k| ((t.tid, k.key.clone()), k.hex.clone()))
        })
        .collect()
}

/// The body of the screen: one section per thread, with changed values highlighted. On the
/// first refresh (`previous` is `None`) nothing is highlighted.
pub fn body(doc: &Document, previous: Option<&Seen>) -> Vec<Line> {
    let mut lines = Vec::new();
    for task in &doc.tasks {
        section(task, previous, &mut lines);
        lines.push(Vec::new());
    }
    lines
}

fn section(task: &Task, previous: Option<&Seen>, lines: &mut Vec<Line>) {
    let mut head = format!("tid {} ({})", task.tid, task.comm);
    if let Some(e) = &task.error {
        head.push_str(": cannot be decoded");
        lines.push(vec![plain(head)]);
        lines.push(vec![plain(format!("  error: {e}"))]);
        return;
    }
    head.push_str(&format!(": {} keys", task.keys.len()));
    lines.push(vec![plain(head)]);
    let width = |title: &str, f: &dyn Fn(&crate::report::Key) -> usize| {
        task.keys
            .iter()
            .map(f)
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let wk = width("KEY", &|k| k.key.chars().count());
    let ws = width("SIZE", &|k| k.size.to_string().len());
    let wo = width("OFFSET", &|k| k.offset.to_string().len());
    lines.push(vec![plain(format!(
        "  {:<wk$}  {:>ws$}  {:>wo$}  VALUE",
        "KEY", "SIZE", "OFFSET"
    ))]);
    for k in &task.keys {
        let changed = previous.is_some_and(|p| p.get(&(task.tid, k.key.clone())) != Some(&k.hex));
        lines.push(vec![
            plain(format!(
                "  {:<wk$}  {:>ws$}  {:>wo$}  ",
                k.key, k.size, k.offset
            )),
            Span {
                text: value_text(k, false),
                highlight: changed,
            },
        ]);
    }
}

/// Set by the signal handler: quit at the next check.
static QUIT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    QUIT.store(true, Ordering::Relaxed);
}

/// The terminal in raw mode on the alternate screen; restored on drop.
struct Screen;

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        terminal::enable_raw_mode()?;
        let screen = Screen;
        execute!(std::io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(screen)
    }
}

fn restore() {
    let _ = execute!(std::io::stdout(), cursor::Show, LeaveAlternateScreen);
    let _ = terminal::disable_raw_mode();
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Draws `lines` from the top of the screen, cut to its size.
fn draw(lines: &[Line]) -> std::io::Result<()> {
    // A terminal that reports no size (some pseudo-terminals) gets the classic one.
    let (cols, rows) = match terminal::size() {
        Ok((c, r)) if c > 0 && r > 0 => (c, r),
        _ => (80, 24),
    };
    let mut out = std::io::stdout().lock();
    queue!(out, cursor::MoveTo(0, 0))?;
    for (row, line) in lines.iter().take(rows as usize).enumerate() {
        queue!(
            out,
            cursor::MoveTo(0, row as u16),
            Clear(ClearType::CurrentLine)
        )?;
        let mut left = cols as usize;
        for span in line {
            let text: String = span.text.chars().take(left).collect();
            left -= text.chars().count();
            if span.highlight {
                queue!(
                    out,
                    SetAttribute(Attribute::Reverse),
                    Print(text),
                    SetAttribute(Attribute::Reset)
                )?;
            } else {
                queue!(out, Print(text))?;
            }
        }
    }
    queue!(out, Clear(ClearType::FromCursorDown))?;
    out.flush()
}

/// Whether the bytes of one read from the terminal (in raw mode) ask to quit: `q`, Ctrl-C, or
/// a lone Esc (an Esc followed by more bytes is an escape sequence, such as an arrow key).
fn is_quit(input: &[u8]) -> bool {
    input.iter().any(|&b| matches!(b, b'q' | b'Q' | 0x03)) || input == [0x1b]
}

/// Waits until `deadline`; returns `Ok(true)` if the user asked to quit meanwhile, or the
/// terminal went away (its window closed, its ssh session ended): then nobody can see the view
/// or type to it.
///
/// It reads the terminal itself, with `poll(2)` and `read(2)` on stdin, rather than through
/// crossterm's event reader, which keeps retrying a terminal that has hung up and never
/// returns.
fn wait(deadline: Instant) -> std::io::Result<bool> {
    loop {
        if QUIT.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        // Short slices, so that a signal is noticed quickly.
        let slice = (deadline - now).min(Duration::from_millis(100));
        let mut fd = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; poll only writes its `revents`.
        let n = unsafe { libc::poll(&mut fd, 1, slice.as_millis() as libc::c_int) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            continue;
        }
        if fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return Ok(true);
        }
        let mut input = [0u8; 64];
        // SAFETY: `input` is a writable buffer of its length.
        let got = unsafe { libc::read(libc::STDIN_FILENO, input.as_mut_ptr().cast(), input.len()) };
        match got {
            // End of input, or an error such as EIO from a terminal that hung up.
            ..=0 => {
                let e = std::io::Error::last_os_error();
                if got < 0 && e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Ok(true);
            }
            n if is_quit(&input[..n as usize]) => return Ok(true),
            _ => {}
        }
    }
}

/// Runs the live view until the user quits.
pub fn run(choice: &Choice, schema: &Schema, args: &WatchArgs) -> Result<u8, Error> {
    crate::privilege::require_iterator()?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Other(
            "watch needs a terminal; use `tld show --json` from scripts".into(),
        ));
    }
    let map = TldMap::open(choice)?;
    let inspector = Inspector::new(&map, Some(args.id))?;
    let first = select(inspector.snapshot()?, args.id, args.thread);
    if first.is_empty() {
        return Err(not_found(args.id, &map));
    }

    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        hook(info);
    }));

    let io = |e: std::io::Error| Error::Io {
        action: "drawing on the terminal".into(),
        source: e,
    };
    let _screen = Screen::enter().map_err(io)?;
    let interval = Duration::from_millis(args.interval);
    let mut previous: Option<Seen> = None;
    let pick = |raw| select(raw, args.id, args.thread);
    let mut raw = first;
    for refresh in 1u64.. {
        let started = Instant::now();
        let doc = crate::consistent::document(&inspector, schema, raw, pick)?;
        let what = match doc.tasks.first() {
            Some(t) if t.pid == args.id => format!("pid {} ({})", t.pid, t.process),
            Some(t) => format!("tid {} ({}) of pid {}", t.tid, t.comm, t.pid),
            None => format!("id {}", args.id),
        };
        let mut lines: Vec<Line> = vec![
            vec![plain(format!(
                "tld watch: {what}, refresh {refresh} every {} ms, map {}; q quits",
                args.interval,
                map.label(),
            ))],
            Vec::new(),
        ];
        if doc.tasks.is_empty() {
            lines.push(vec![plain(format!(
                "no registered thread with id {} any more (exited?); still watching",
                args.id
            ))]);
        }
        lines.extend(body(&doc, previous.as_ref()));
        draw(&lines).map_err(io)?;
        previous = Some(seen(&doc));
        if wait(started + interval).map_err(io)? {
            break;
        }
        raw = pick(inspector.snapshot()?);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Key;
    use crate::value::Value;

    fn doc(value: i64) -> Document {
        Document {
            tasks: vec![Task {
                pid: 1,
                tid: 1,
                comm: "main".into(),
                process: "app".into(),
                keys: vec![
                    Key {
                        key: "stable".into(),
                        size: 4,
                        offset: 16,
                        value: Value::Int(7),
                        hex: "07000000".into(),
                        seq: None,
                        whole: None,
                    },
                    Key {
                        key: "moving".into(),
                        size: 8,
                        offset: 24,
                        value: Value::Int(value),
                        hex: crate::value::hex(&value.to_ne_bytes()),
                        seq: None,
                        whole: None,
                    },
                ],
                error: None,
                registered_by: None,
            }],
        }
    }

    fn highlighted(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .flatten()
            .filter(|s| s.highlight)
            .map(|s| s.text.clone())
            .collect()
    }

    #[test]
    fn only_changed_values_are_highlighted() {
        let first = doc(1);
        assert!(highlighted(&body(&first, None)).is_empty());
        let prev = seen(&first);
        assert!(highlighted(&body(&doc(1), Some(&prev))).is_empty());
        assert_eq!(highlighted(&body(&doc(2), Some(&prev))), ["2"]);
    }

    #[test]
    fn quit_keys() {
        assert!(is_quit(b"q") && is_quit(b"Q") && is_quit(&[0x03]) && is_quit(&[0x1b]));
        // An arrow key is an escape sequence, not Esc.
        assert!(!is_quit(b"\x1b[A"));
        assert!(!is_quit(b"x"));
    }

    #[test]
    fn rows_are_aligned() {
        let lines = body(&doc(12345), None);
        let text: Vec<String> = lines
            .iter()
            .map(|l| l.iter().map(|s| s.text.as_str()).collect())
            .collect();
        assert_eq!(
            text,
            [
                "tid 1 (main): 2 keys",
                "  KEY     SIZE  OFFSET  VALUE",
                "  stable     4      16  7",
                "  moving     8      24  12345",
                "",
            ]
        );
    }
}
