//! The human-readable output of `ps` and `show`: plain, aligned columns, the same whatever the
//! terminal (no colour, no width detection), so that it can be piped and compared.

use comfy_table::presets::NOTHING;
use comfy_table::{CellAlignment, ContentArrangement, Table};

use crate::report::{Key, Task};
use crate::value::Value;

/// Values longer than this are cut in tables unless `--full` is given.
pub const VALUE_WIDTH: usize = 64;

/// A table with no borders and two spaces between columns, whose columns in `right` are
/// right-aligned.
fn table(header: &[&str], right: &[usize]) -> Table {
    let mut t = Table::new();
    t.load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for i in 0..header.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_padding((0, 2));
            if right.contains(&i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    t
}

/// Trims every line's trailing spaces.
fn finish(t: &Table) -> String {
    let mut s = t.trim_fmt();
    s.push('\n');
    s
}

/// The `ps` table: one row per task. A task whose pages cannot be decoded shows `error` in
/// KEYS (the reason goes to standard error, see [`errors`]).
pub fn ps(tasks: &[Task], map: &str) -> String {
    // With a guard, a column says who registered each element.
    let guarded = tasks.iter().any(|t| t.registered_by.is_some());
    let mut header = vec!["PID", "TID", "COMM", "KEYS", "MAP"];
    if guarded {
        header.push("REGISTERED BY");
    }
    let mut t = table(&header, &[0, 1, 3]);
    for task in tasks {
        let keys = match &task.error {
            Some(_) => "error".to_string(),
            None => task.keys.len().to_string(),
        };
        let mut row = vec![
            task.pid.to_string(),
            task.tid.to_string(),
            task.comm.clone(),
            keys,
            map.to_string(),
        ];
        if guarded {
            row.push(task.registered_by.unwrap_or("-").to_string());
        }
        t.add_row(row);
    }
    finish(&t)
}

/// One line per task that cannot be decoded: `pid P tid T (comm): reason`.
pub fn errors(tasks: &[Task]) -> Vec<String> {
    tasks
        .iter()
        .filter_map(|t| {
            let e = t.error.as_ref()?;
            Some(format!("pid {} tid {} ({}): {e}", t.pid, t.tid, t.comm))
        })
        .collect()
}

/// A value as a table shows it: decoded, or `0x` and the hex when it has no decoded form; a
/// consistent hint whose copy writers overtook says so, with its sequence word, as does one
/// whose word is not of the two-copy format.
fn full_text(key: &Key) -> String {
    match (key.whole, key.seq, &key.value) {
        (Some(false), Some(seq), _) if seq & tld_runtime::wire::SEQ_LATCH == 0 => {
            format!("(not a consistent entry of this format: seq {seq:#x})")
        }
        (Some(false), Some(seq), _) => format!("(being written: seq {seq:#x})"),
        (_, _, Value::Null) => format!("0x{}", key.hex),
        (_, _, v) => v.to_string(),
    }
}

/// Whether a table cuts `key`'s value (without `--full`).
pub fn is_cut(key: &Key) -> bool {
    full_text(key).chars().count() > VALUE_WIDTH
}

/// A value as a table shows it, cut to [`VALUE_WIDTH`] characters (ending in `…`) unless
/// `full`.
pub fn value_text(key: &Key, full: bool) -> String {
    let text = full_text(key);
    if full || text.chars().count() <= VALUE_WIDTH {
        return text;
    }
    let cut: String = text.chars().take(VALUE_WIDTH - 1).collect();
    format!("{cut}…")
}

/// The keys of one task as a table, indented by two spaces.
pub fn keys_table(task: &Task, full: bool) -> String {
    let mut t = table(&["KEY", "SIZE", "OFFSET", "VALUE"], &[1, 2]);
    for k in &task.keys {
        t.add_row(vec![
            k.key.clone(),
            k.size.to_string(),
            k.offset.to_string(),
            value_text(k, full),
        ]);
    }
    finish(&t).lines().map(|l| format!("  {l}\n")).collect()
}

/// The `show` output: a heading for each process, then one section per thread with its keys,
/// and a note when values were cut.
pub fn show(tasks: &[Task], map: &str, full: bool) -> String {
    let mut out = String::new();
    let mut pids: Vec<i32> = tasks.iter().map(|t| t.pid).collect();
    pids.dedup();
    for (i, pid) in pids.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let threads: Vec<&Task> = tasks.iter().filter(|t| t.pid == *pid).collect();
        let process = threads.first().map_or("", |t| t.process.as_str());
        out.push_str(&format!("pid {pid} ({process}), map {map}\n"));
        for task in threads {
            out.push('\n');
            out.push_str(&thread_section(task, full));
        }
    }
    if !full && tasks.iter().flat_map(|t| &t.keys).any(is_cut) {
        out.push_str(&format!(
            "\n(values longer than {VALUE_WIDTH} characters are cut; --full shows them whole)\n"
        ));
    }
    out
}

/// One thread's heading and keys (or its error).
pub fn thread_section(task: &Task, full: bool) -> String {
    let mut out = format!("tid {} ({})", task.tid, task.comm);
    match task.registered_by {
        Some(crate::report::ANOTHER_PROCESS) => {
            out.push_str(" [registered by another process: guarded readers ignore these values]")
        }
        Some(by) => out.push_str(&format!(" [registered by its {by}]")),
        None => {}
    }
    match (&task.error, task.keys.len()) {
        (Some(e), _) => {
            out.push_str(&format!(": cannot be decoded\n  error: {e}\n"));
        }
        (None, 0) => out.push_str(": no keys published\n"),
        (None, n) => {
            out.push_str(&format!(": {n} key{}\n", if n == 1 { "" } else { "s" }));
            out.push_str(&keys_table(task, full));
        }
    }
    out
}
