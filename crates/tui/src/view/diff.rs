//! A unified diff of a file's text, coloured, with line numbers and three
//! lines of context, folded when long.

use std::time::Duration;

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use similar::{ChangeTag, TextDiff};

use super::text::{clean, clip, wrap_columns};
use super::theme;

/// Lines of context around each change.
pub const CONTEXT: usize = 3;

/// How long diffing may take before similar falls back to a coarser diff
/// (a correct one, only less minimal): a huge rewrite must not freeze the UI.
const DIFF_TIMEOUT: Duration = Duration::from_millis(100);

/// Lines added and removed between `before` and `after`.
pub fn diff_stats(before: &str, after: &str) -> (usize, usize) {
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(before, after);
    let mut added = 0;
    let mut removed = 0;
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

/// The diff from `before` to `after` (file contents, sanitised here) laid
/// out for `width` columns, each line as `NUMBER SIGN TEXT` (the new line's
/// number, or the old one's for a removed line); hunks are separated by `⋮`.
/// With `max_lines`, lines past it are replaced by `… N more lines`.
pub fn diff_lines(before: &str, after: &str, width: u16, max_lines: Option<usize>) -> Vec<Line<'static>> {
    let before = clean(before);
    let after = clean(after);
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(&before, &after);
    let numbers = before.lines().count().max(after.lines().count()).max(1);
    let gutter = numbers.to_string().len();
    let mut out = Vec::new();
    for (i, group) in diff.grouped_ops(CONTEXT).iter().enumerate() {
        if i > 0 {
            out.push(Line::from(Span::styled(format!("{:>gutter$} ⋮", ""), theme::DIM)));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let (sign, style, number) = match change.tag() {
                    ChangeTag::Insert => ('+', theme::ADDED, change.new_index()),
                    ChangeTag::Delete => ('-', theme::REMOVED, change.old_index()),
                    ChangeTag::Equal => (' ', Style::new(), change.new_index()),
                };
                let number = number.map_or(String::new(), |n| (n + 1).to_string());
                let text = change.value().trim_end_matches('\n').to_string();
                let first = vec![
                    Span::styled(format!("{number:>gutter$} "), theme::DIM),
                    Span::styled(format!("{sign} "), style),
                ];
                let rest = vec![Span::raw(" ".repeat(gutter + 3))];
                out.extend(wrap_columns(&[Span::styled(text, style)], width as usize, &first, &rest));
            }
        }
    }
    if let Some(max) = max_lines
        && out.len() > max
    {
        let hidden = out.len() - max;
        out.truncate(max);
        out.push(Line::from(Span::styled(format!("{:>gutter$} … {hidden} more lines", ""), theme::DIM)));
    }
    clip(out, width as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::text::plain;

    #[test]
    fn numbers_signs_and_context() {
        let before = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let after = "a\nb\nc\nd\nE\nf\ng\nh\ni\n";
        let shown = plain(&diff_lines(before, after, 40, None));
        assert_eq!(shown, "2   b\n3   c\n4   d\n5 - e\n5 + E\n6   f\n7   g\n8   h");
        assert_eq!(diff_stats(before, after), (1, 1));
    }

    #[test]
    fn long_diffs_fold() {
        let after: String = (0..50).map(|i| format!("line {i}\n")).collect();
        let lines = diff_lines("", &after, 40, Some(10));
        assert_eq!(lines.len(), 11);
        assert!(plain(&lines).ends_with("… 40 more lines"), "{}", plain(&lines));
    }

    #[test]
    fn added_and_removed_lines_are_coloured() {
        let lines = diff_lines("x\n", "y\n", 40, None);
        assert_eq!(lines[0].spans[1].style, theme::REMOVED);
        assert_eq!(lines[1].spans[1].style, theme::ADDED);
    }
}
