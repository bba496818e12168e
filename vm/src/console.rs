//! What the guest prints on its serial console, and how the host reads it.
//!
//! The guest programs print lines that start with [`PREFIX`]:
//! - `TLDVM RESULT <name> PASS|FAIL <details>`: one test's outcome, with its counts;
//! - `TLDVM ROW <cells separated by |>`: a row of the latency table (the first is the header);
//! - `TLDVM FIGURE <name> <value>`: one figure of the performance report's VM row (P7);
//! - `TLDVM DONE`: everything ran.
//!
//! Everything else (the kernel's messages, the scheduler's output, failure details) is there for
//! people reading the console's tail.

/// Starts every line the host reads.
pub const PREFIX: &str = "TLDVM";

/// One test's outcome, as the guest reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Its counts and measurements.
    pub details: String,
}

/// Everything the host reads from a console.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The tests, in the order they finished.
    pub results: Vec<TestResult>,
    /// The latency table's rows, header first.
    pub rows: Vec<Vec<String>>,
    /// The figures for the performance report, by name, in the order printed.
    pub figures: Vec<(String, String)>,
    /// Whether the guest printed `TLDVM DONE`.
    pub done: bool,
}

impl Report {
    /// Reads a console log.
    pub fn parse(console: &str) -> Report {
        let mut report = Report::default();
        for line in console.lines() {
            // The serial console ends lines with \r\n, and kernel messages may come first.
            let line = line.trim_end_matches('\r');
            let Some(at) = line.find(PREFIX) else {
                continue;
            };
            let rest = line[at + PREFIX.len()..].trim();
            let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            match kind {
                "RESULT" => {
                    let mut parts = rest.splitn(3, ' ');
                    let (Some(name), Some(verdict)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    report.results.push(TestResult {
                        name: name.to_string(),
                        passed: verdict == "PASS",
                        details: parts.next().unwrap_or("").to_string(),
                    });
                }
                "ROW" => report
                    .rows
                    .push(rest.split('|').map(|c| c.trim().to_string()).collect()),
                "FIGURE" => {
                    if let Some((name, value)) = rest.split_once(' ') {
                        report
                            .figures
                            .push((name.to_string(), value.trim().to_string()));
                    }
                }
                "DONE" => report.done = true,
                _ => {}
            }
        }
        report
    }

    /// The number of tests that passed and failed.
    pub fn counts(&self) -> (usize, usize) {
        let passed = self.results.iter().filter(|r| r.passed).count();
        (passed, self.results.len() - passed)
    }
}

pub use tld_upstream::tail;

/// Renders rows (header first) as a Markdown table.
pub fn markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        out.push_str("| ");
        out.push_str(&row.join(" | "));
        out.push_str(" |\n");
        if i == 0 {
            out.push('|');
            out.push_str(&"---|".repeat(row.len()));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_results_rows_and_done() {
        let console = "[    1.0] booting\r\n\
                       TLDVM RESULT attach PASS state enabled, ops tld\r\n\
                       noise TLDVM RESULT latency FAIL p50 ratio 3.1x < 20x\n\
                       TLDVM ROW case | p50\nTLDVM ROW hinted | 40 us\n\
                       TLDVM FIGURE p7_hinted_p50_us 41.5\nTLDVM DONE\n";
        let r = Report::parse(console);
        assert_eq!(r.counts(), (1, 1));
        assert_eq!(r.results[0].details, "state enabled, ops tld");
        assert_eq!(r.results[1].name, "latency");
        assert_eq!(r.rows[1], vec!["hinted", "40 us"]);
        assert_eq!(r.figures, vec![("p7_hinted_p50_us".into(), "41.5".into())]);
        assert!(r.done);
        assert!(markdown_table(&r.rows).contains("|---|---|"));
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
    }
}
