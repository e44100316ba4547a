//! Tool calls as compact cards for the conversation: a read or a search as
//! one line, an edit as a diff, a command as its line, its exit status and
//! its output folded to a few lines.
//!
//! ```
//! use airlock_tui::view::card::{CardOptions, ToolCall, ToolCard, ToolOutcome};
//! use airlock_tui::view::text::plain;
//!
//! let card = ToolCard {
//!     call: ToolCall::Read { path: "src/main.rs".into() },
//!     outcome: ToolOutcome::Done { count: Some(120) },
//! };
//! assert_eq!(plain(&card.lines(80, &CardOptions::default())), "● Read src/main.rs (120 lines)");
//! ```

use ratatui::text::{Line, Span};

use super::diff::{diff_lines, diff_stats};
use super::text::{clean, clean_line, clip, spans_width, truncate, wrap, wrap_columns};
use super::theme;

/// What a tool was asked to do (arguments as the model gave them; they are
/// sanitised when drawn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    /// Read a file.
    Read {
        /// The file.
        path: String,
    },
    /// List a folder.
    List {
        /// The folder.
        path: String,
    },
    /// Find files by a glob pattern.
    Glob {
        /// The pattern.
        pattern: String,
        /// Where (None: the workspace).
        path: Option<String>,
    },
    /// Search file contents.
    Search {
        /// What is searched for.
        pattern: String,
        /// Where (None: the workspace).
        path: Option<String>,
    },
    /// Change or create a file (`edit_file`, `write_file`).
    Edit {
        /// The file.
        path: String,
        /// Its text before (None: the file is new).
        before: Option<String>,
        /// Its text after.
        after: String,
    },
    /// Run a command line.
    Command {
        /// The command line as the model wrote it.
        command: String,
    },
    /// Any other tool.
    Other {
        /// The tool's name.
        name: String,
        /// Its arguments (JSON text).
        arguments: String,
    },
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandExit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// It ran past its time limit and was stopped.
    TimedOut,
}

/// Where a tool call stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutcome {
    /// Not finished (waiting for approval or running).
    Running,
    /// Done; for reads, lists, globs and searches the number of lines,
    /// entries, files or matches.
    Done {
        /// The count shown in brackets, if known.
        count: Option<usize>,
    },
    /// A command ran.
    Command {
        /// How it ended.
        exit: CommandExit,
        /// Its output (stdout and stderr as captured).
        output: String,
    },
    /// The tool failed.
    Failed {
        /// The error (its first line is shown).
        error: String,
    },
    /// The call was refused.
    Denied {
        /// What decided (`you on /dev/pts/3`, `rule:command:rm (user policy)`).
        by: String,
        /// The person's note to the model, if any.
        note: Option<String>,
    },
}

/// A tool call and where it stands: one card in the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCard {
    /// What was asked.
    pub call: ToolCall,
    /// What came of it.
    pub outcome: ToolOutcome,
}

/// How much of a card to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardOptions {
    /// Lines of command output shown when folded.
    pub output_lines: usize,
    /// Lines of an edit's diff shown when folded.
    pub diff_lines: usize,
    /// Show all output and the whole diff (ctrl-o).
    pub expanded: bool,
}

impl Default for CardOptions {
    fn default() -> CardOptions {
        CardOptions { output_lines: 5, diff_lines: 40, expanded: false }
    }
}

/// The indentation of what a card shows under its header.
const INDENT: &str = "  ";

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl ToolCard {
    /// The card laid out for `width` columns.
    pub fn lines(&self, width: u16, options: &CardOptions) -> Vec<Line<'static>> {
        let width = width as usize;
        let bullet = match &self.outcome {
            ToolOutcome::Running => Span::styled("● ", theme::DIM),
            ToolOutcome::Failed { .. } | ToolOutcome::Denied { .. } => Span::styled("● ", theme::FAIL),
            ToolOutcome::Command { exit: CommandExit::Code(0), .. } | ToolOutcome::Done { .. } => {
                Span::styled("● ", theme::OK)
            }
            ToolOutcome::Command { .. } => Span::styled("● ", theme::FAIL),
        };
        let count = |unit: (&str, &str)| match &self.outcome {
            ToolOutcome::Done { count: Some(n) } => format!(" ({})", plural(*n, unit.0, unit.1)),
            _ => String::new(),
        };
        let place = |path: &Option<String>| path.as_ref().map_or(String::new(), |p| format!(" in {}", clean_line(p)));
        let (name, subject, detail) = match &self.call {
            ToolCall::Read { path } => ("Read", clean_line(path), count(("line", "lines"))),
            ToolCall::List { path } => ("List", clean_line(path), count(("entry", "entries"))),
            ToolCall::Glob { pattern, path } => {
                ("Find", format!("{}{}", clean_line(pattern), place(path)), count(("file", "files")))
            }
            ToolCall::Search { pattern, path } => {
                ("Search", format!("\"{}\"{}", clean_line(pattern), place(path)), count(("match", "matches")))
            }
            ToolCall::Edit { path, before, after } => {
                let (added, removed) = diff_stats(before.as_deref().unwrap_or(""), after);
                let detail = match before {
                    None => format!(" (+{added})"),
                    Some(_) => format!(" (+{added} -{removed})"),
                };
                (if before.is_none() { "Create" } else { "Edit" }, clean_line(path), detail)
            }
            ToolCall::Command { command } => ("Run", clean_line(command), String::new()),
            ToolCall::Other { name, arguments } => {
                return self.other(bullet, &clean_line(name), &clean_line(arguments), width);
            }
        };
        let header = vec![bullet, Span::styled(format!("{name} "), theme::TOOL), Span::raw(subject)];
        let mut out = Vec::new();
        if matches!(self.call, ToolCall::Command { .. }) {
            // The whole command line: what ran is never cut off.
            out.extend(wrap(&header, width, &[], &[Span::raw("    ")]));
        } else {
            let mut spans = header;
            let room = width.saturating_sub(detail.chars().count());
            spans = truncate(&spans, room.max(width.min(12)));
            spans.push(Span::styled(detail, theme::DIM));
            out.push(Line::from(truncate(&spans, width)));
        }
        match (&self.call, &self.outcome) {
            (_, ToolOutcome::Denied { by, note }) => out.extend(denied(by, note.as_deref(), width)),
            (_, ToolOutcome::Failed { error }) => out.extend(failed(error, width)),
            (ToolCall::Edit { before, after, .. }, ToolOutcome::Done { .. }) => {
                let max = if options.expanded { None } else { Some(options.diff_lines) };
                let diff = diff_lines(before.as_deref().unwrap_or(""), after, width.saturating_sub(2) as u16, max);
                out.extend(diff.into_iter().map(|l| indent(l, INDENT)));
            }
            (ToolCall::Command { .. }, ToolOutcome::Command { exit, output }) => {
                out.extend(command_result(*exit, output, width, options));
            }
            (ToolCall::Command { .. } | ToolCall::Edit { .. }, ToolOutcome::Running) => {
                out.push(Line::from(Span::styled(format!("{INDENT}…"), theme::DIM)));
            }
            _ => {}
        }
        clip(out, width)
    }

    /// A card for a tool without its own form: name and arguments in one line.
    fn other(&self, bullet: Span<'static>, name: &str, arguments: &str, width: usize) -> Vec<Line<'static>> {
        let spans = vec![
            bullet,
            Span::styled(format!("{name} "), theme::TOOL),
            Span::styled(arguments.to_string(), theme::DIM),
        ];
        let mut out = vec![Line::from(truncate(&spans, width))];
        match &self.outcome {
            ToolOutcome::Denied { by, note } => out.extend(denied(by, note.as_deref(), width)),
            ToolOutcome::Failed { error } => out.extend(failed(error, width)),
            _ => {}
        }
        out
    }
}

fn indent(line: Line<'static>, by: &str) -> Line<'static> {
    let mut spans = vec![Span::raw(by.to_string())];
    spans.extend(line.spans);
    Line::from(spans)
}

fn denied(by: &str, note: Option<&str>, width: usize) -> Vec<Line<'static>> {
    let mut out = wrap(
        &[Span::styled(format!("✗ denied by {}", clean_line(by)), theme::FAIL)],
        width,
        &[Span::raw(INDENT)],
        &[Span::raw("    ")],
    );
    if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
        out.extend(wrap(
            &[Span::styled("note: ", theme::DIM), Span::raw(clean_line(note))],
            width,
            &[Span::raw("    ")],
            &[Span::raw("          ")],
        ));
    }
    out
}

fn failed(error: &str, width: usize) -> Vec<Line<'static>> {
    let first = error.lines().find(|l| !l.trim().is_empty()).unwrap_or("failed");
    let spans = [Span::styled(format!("✗ {}", clean_line(first.trim())), theme::FAIL)];
    vec![Line::from(truncate(&[vec![Span::raw(INDENT)], spans.to_vec()].concat(), width))]
}

/// The exit status line and the output, folded unless expanded: the first
/// and last lines (where commands say what they do and how they ended).
fn command_result(exit: CommandExit, output: &str, width: usize, options: &CardOptions) -> Vec<Line<'static>> {
    let (status, style) = match exit {
        CommandExit::Code(0) => ("✓ 0".to_string(), theme::OK),
        CommandExit::Code(n) => (format!("✗ {n}"), theme::FAIL),
        CommandExit::Signal(n) => (format!("✗ signal {n}"), theme::FAIL),
        CommandExit::TimedOut => ("✗ timed out".to_string(), theme::FAIL),
    };
    // Lines are cleaned one by one as they are shown: a folded card of a
    // large output reads only its first and last lines.
    let lines: Vec<&str> =
        output.trim_end_matches(['\n', '\r']).split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let empty = output.trim().is_empty();
    let mut out = vec![Line::from(vec![
        Span::raw(INDENT),
        Span::styled(status, style),
        Span::styled(if empty { " · no output".to_string() } else { String::new() }, theme::DIM),
    ])];
    if empty {
        return out;
    }
    let gutter = vec![Span::raw(INDENT), Span::styled("│ ", theme::DIM)];
    let show = |line: &str, out: &mut Vec<Line<'static>>| {
        if options.expanded {
            let text = [Span::raw(clean(line))];
            out.extend(wrap_columns(&text, width, &gutter, &gutter));
        } else {
            // Only the start of a long line can show: a bounded prefix is
            // cleaned, and the ellipsis still says that the line goes on.
            let limit = width.saturating_mul(8).max(64);
            let text = match line.char_indices().nth(limit) {
                Some((cut, _)) => [Span::raw(clean(&line[..cut]) + "…")],
                None => [Span::raw(clean(line))],
            };
            let mut spans = gutter.clone();
            spans.extend(truncate(&text, width.saturating_sub(spans_width(&gutter))));
            out.push(Line::from(spans));
        }
    };
    // Folding hides at least two lines, or it costs as much as it saves.
    if options.expanded || lines.len() <= options.output_lines + 1 {
        for line in &lines {
            show(line, &mut out);
        }
        return out;
    }
    let head = options.output_lines / 2;
    let tail = options.output_lines - head;
    for line in &lines[..head] {
        show(line, &mut out);
    }
    let hidden = lines.len() - head - tail;
    out.push(Line::from(vec![
        Span::raw(INDENT),
        Span::styled(format!("… {hidden} more lines (ctrl-o to expand)"), theme::DIM),
    ]));
    for line in &lines[lines.len() - tail..] {
        show(line, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::text::plain;

    fn card(call: ToolCall, outcome: ToolOutcome) -> String {
        plain(&ToolCard { call, outcome }.lines(60, &CardOptions::default()))
    }

    #[test]
    fn reads_and_searches_are_one_line() {
        let read = card(ToolCall::Read { path: "src/main.rs".into() }, ToolOutcome::Done { count: Some(1) });
        assert_eq!(read, "● Read src/main.rs (1 line)");
        let search = card(
            ToolCall::Search { pattern: "foo".into(), path: Some("src".into()) },
            ToolOutcome::Done { count: Some(7) },
        );
        assert_eq!(search, "● Search \"foo\" in src (7 matches)");
    }

    #[test]
    fn a_long_path_is_cut_but_the_count_stays() {
        let long = format!("src/{}/main.rs", "deep/".repeat(30));
        let read = card(ToolCall::Read { path: long }, ToolOutcome::Done { count: Some(120) });
        assert!(read.ends_with("… (120 lines)"), "{read}");
        assert!(unicode_width::UnicodeWidthStr::width(read.as_str()) <= 60);
    }

    #[test]
    fn output_folds_to_head_and_tail() {
        let output: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let shown = card(
            ToolCall::Command { command: "make".into() },
            ToolOutcome::Command { exit: CommandExit::Code(2), output: output.clone() },
        );
        assert_eq!(
            shown,
            "● Run make\n  ✗ 2\n  │ line 1\n  │ line 2\n  … 15 more lines (ctrl-o to expand)\n  │ line 18\n  │ line 19\n  │ line 20"
        );
        let options = CardOptions { expanded: true, ..CardOptions::default() };
        let card = ToolCard {
            call: ToolCall::Command { command: "make".into() },
            outcome: ToolOutcome::Command { exit: CommandExit::Code(2), output },
        };
        assert_eq!(card.lines(60, &options).len(), 22);
    }

    #[test]
    fn a_huge_line_is_cut_and_crlf_is_a_line_end() {
        let output = format!("{}\r\nok\r\n", "x".repeat(1_000_000));
        let shown = card(
            ToolCall::Command { command: "gen".into() },
            ToolOutcome::Command { exit: CommandExit::Code(0), output },
        );
        let rows: Vec<&str> = shown.lines().collect();
        assert_eq!(rows.len(), 4, "{shown}");
        assert!(rows[2].starts_with("  │ xxx") && rows[2].ends_with('…'), "{}", rows[2]);
        assert_eq!(rows[3], "  │ ok");
    }

    #[test]
    fn a_denial_names_who_and_the_note() {
        let shown = card(
            ToolCall::Command { command: "rm -rf build".into() },
            ToolOutcome::Denied { by: "you on /dev/pts/3".into(), note: Some("use make clean".into()) },
        );
        assert_eq!(shown, "● Run rm -rf build\n  ✗ denied by you on /dev/pts/3\n    note: use make clean");
    }

    #[test]
    fn an_error_shows_its_first_line() {
        let shown = card(
            ToolCall::Read { path: "x".into() },
            ToolOutcome::Failed { error: "\nno such file: x\nhint: check the path".into() },
        );
        assert_eq!(shown, "● Read x\n  ✗ no such file: x");
    }
}
