//! Where things are printed.
//!
//! stdout carries data only: a hash, a table, or with `--json` one JSON value
//! per line (JSON Lines). Everything else — status lines, warnings, progress —
//! goes to stderr. Progress bars appear only when stderr is a terminal, never
//! with `--json` or `-q`.
//!
//! # `--json` documents
//!
//! Each command prints the API type it got (field names are those of
//! `xxfunc_api`, shared with the gateway, so they cannot drift):
//!
//! | command | one line per | type |
//! |---|---|---|
//! | `build` | build | [`BuildOutput`](crate::wasm_build::BuildOutput) |
//! | `deploy` | deploy | [`DeployOutput`](crate::backend::DeployOutput) (`BindResponse` + size, path) |
//! | `start`, `stop`, `status NAME` | function | `FunctionView` |
//! | `list`, `status` | function | `FunctionView` |
//! | `pin`, `unpin` | call | `PinResponse` |
//! | `logs` | invocation | `InvocationRecord` |
//! | `gc` | call | `GcResponse` |
//! | `test` | event, then a summary | `{"type":"event",..}` / `{"type":"summary",..}` |
//! | `dev` | event | `{"type":"listening",..}` / `{"type":"invocation",..}` / `{"type":"deployed",..}` |
//! | `new` | call | `{"name","path"}` |

use std::{
    fmt,
    io::{IsTerminal, Write},
    time::Duration,
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// How loud to be and in which format.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Output {
    json: bool,
    quiet: bool,
    verbose: u8,
    stderr_tty: bool,
}

impl Output {
    pub(crate) fn new(json: bool, quiet: bool, verbose: u8) -> Self {
        Self {
            json,
            quiet,
            verbose,
            stderr_tty: std::io::stderr().is_terminal(),
        }
    }

    /// `--json` was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// `-v` count.
    pub(crate) fn verbose(&self) -> u8 {
        self.verbose
    }

    /// `-q` was given.
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }

    /// One line of data on stdout.
    pub(crate) fn data(&self, line: impl fmt::Display) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").context("writing to stdout")?;
        out.flush().context("writing to stdout")
    }

    /// One JSON value on one line of stdout.
    pub(crate) fn json_line<T: Serialize + ?Sized>(&self, value: &T) -> anyhow::Result<()> {
        let line = serde_json::to_string(value).context("serialising JSON output")?;
        self.data(line)
    }

    /// A cargo-style status line on stderr (`   Deployed hello v3`), unless `-q`.
    pub(crate) fn status(&self, verb: &str, message: impl fmt::Display) {
        if self.quiet {
            return;
        }
        if self.stderr_tty {
            eprintln!("\x1b[1;32m{verb:>12}\x1b[0m {message}");
        } else {
            eprintln!("{verb:>12} {message}");
        }
    }

    /// A note on stderr, unless `-q`.
    pub(crate) fn note(&self, message: impl fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A detail shown with `-v`.
    pub(crate) fn detail(&self, message: impl fmt::Display) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A warning on stderr (shown even with `-q`).
    pub(crate) fn warn(&self, message: impl fmt::Display) {
        if self.stderr_tty {
            eprintln!("\x1b[1;33mwarning\x1b[0m: {message}");
        } else {
            eprintln!("warning: {message}");
        }
    }

    fn bars(&self) -> bool {
        self.stderr_tty && !self.json && !self.quiet
    }

    /// A progress bar of `len` steps, hidden unless stderr is a terminal.
    pub(crate) fn progress(&self, len: u64, message: impl Into<String>) -> ProgressBar {
        if !self.bars() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len).with_message(message.into());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({elapsed})")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// A spinner for work of unknown length, hidden unless stderr is a terminal.
    pub(crate) fn spinner(&self, message: impl Into<String>) -> ProgressBar {
        if !self.bars() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_message(message.into());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .expect("the template is valid"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// A plain text table with left-aligned columns, for `list` and `status`.
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: Vec<&'static str>) -> Self {
        Self {
            header,
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table as lines, columns separated by two spaces, no trailing blanks.
    pub(crate) fn lines(&self) -> Vec<String> {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let render = |cells: Vec<&str>| {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < cells.len() {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_string()
        };
        let mut lines = vec![render(self.header.clone())];
        for row in &self.rows {
            lines.push(render(row.iter().map(String::as_str).collect()));
        }
        lines
    }
}

/// Human-readable byte size: `81.2 KiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Human-readable duration from microseconds: `29µs`, `1.3ms`, `2.10s`.
pub(crate) fn human_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(vec!["NAME", "STATE"]);
        t.row(vec!["erc20-transfers".into(), "started".into()]);
        t.row(vec!["a".into(), "".into()]);
        assert_eq!(
            t.lines(),
            ["NAME             STATE", "erc20-transfers  started", "a"]
        );
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(83_149), "81.2 KiB");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
        assert_eq!(human_us(29), "29µs");
        assert_eq!(human_us(1_300), "1.3ms");
        assert_eq!(human_us(2_100_000), "2.10s");
    }
}
