//! `edit_file`: exact string replacement. When the text is not found, the error quotes the
//! region of the file most like it, so a small model can correct itself in one turn.

use serde::Deserialize;

use crate::workspace::{Workspace, sha256_hex, show};
use crate::{FileChange, Preview, ToolError};

/// At most this many lines of `old_string` are scored per window, bounding the search cost.
const SCORED_LINES: usize = 20;
/// Below this similarity nothing is quoted.
const MIN_SIMILARITY: f64 = 0.4;
/// Lines of a quoted closest match.
const QUOTE_LINES: usize = 30;
/// Occurrence line numbers listed in messages.
const LISTED_LINES: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditArgs {
    path: String,
    old_string: String,
    new_string: String,
    replace_all: Option<bool>,
}

pub(crate) fn edit_file(ws: &Workspace, args: EditArgs) -> Result<(String, FileChange), ToolError> {
    let (target, bytes, mode, edited) = prepare(ws, &args)?;
    target.write_atomic(edited.text.as_bytes(), Some(mode))?;
    let (minus, plus) = (line_count(&args.old_string), line_count(&args.new_string));
    let summary = match edited.lines.as_slice() {
        [line] => format!("edited {}: replaced 1 occurrence at line {line} (-{minus} +{plus} lines)", target.shown),
        lines => format!(
            "edited {}: replaced {} occurrences at lines {} (-{minus} +{plus} lines each)",
            target.shown,
            lines.len(),
            list(lines)
        ),
    };
    let change = FileChange {
        path: show(&target.resolved),
        before_sha256: Some(sha256_hex(&bytes)),
        after_sha256: Some(sha256_hex(edited.text.as_bytes())),
    };
    Ok((summary, change))
}

/// What `edit_file` would make of the file, without writing it: for an approval.
pub(crate) fn preview(ws: &Workspace, args: EditArgs) -> Result<Preview, ToolError> {
    let (target, bytes, _, edited) = prepare(ws, &args)?;
    Ok(Preview {
        path: show(&target.resolved),
        before: String::from_utf8_lossy(&bytes).into_owned(),
        after: edited.text,
    })
}

/// The target, its content and mode, and the edit applied to it in memory.
fn prepare(
    ws: &Workspace,
    args: &EditArgs,
) -> Result<(crate::workspace::WriteTarget, Vec<u8>, u32, Edited), ToolError> {
    if args.old_string.is_empty() {
        return Err(ToolError::EmptyOldString);
    }
    if args.old_string == args.new_string {
        return Err(ToolError::EditNoChange);
    }
    let target = ws.write_target(&args.path, false)?;
    let Some((bytes, mode)) = target.read_existing(ws.limits().edit_max_bytes)? else {
        return Err(ToolError::NotFound { path: target.shown });
    };
    if bytes.contains(&0) {
        return Err(ToolError::NotText { path: target.shown });
    }
    let Ok(text) = std::str::from_utf8(&bytes) else { return Err(ToolError::NotText { path: target.shown }) };
    let replace_all = args.replace_all.unwrap_or(false);
    let mut edit = plan(text, &args.old_string, &args.new_string, replace_all);
    // The model writes `\n`; a CRLF file should still match, and keep its line endings.
    if matches!(edit, Err(EditFailure::NotFound)) && text.contains("\r\n") && !args.old_string.contains('\r') {
        let crlf = |s: &str| s.replace('\n', "\r\n");
        edit = plan(text, &crlf(&args.old_string), &crlf(&args.new_string), replace_all);
    }
    let edited = match edit {
        Ok(edited) => edited,
        Err(EditFailure::NotFound) => {
            return Err(ToolError::EditNoMatch { path: target.shown, detail: no_match_detail(text, &args.old_string) });
        }
        Err(EditFailure::Ambiguous(lines)) => {
            return Err(ToolError::EditAmbiguous { path: target.shown, count: lines.len(), lines: list(&lines) });
        }
    };
    Ok((target, bytes, mode, edited))
}

/// The file after the edit, and the first line of each replaced occurrence.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Edited {
    pub text: String,
    pub lines: Vec<usize>,
}

/// Why an edit cannot be applied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EditFailure {
    NotFound,
    /// First line of each occurrence.
    Ambiguous(Vec<usize>),
}

/// Replaces `old` by `new` in `text`: exactly once unless `replace_all`.
pub(crate) fn plan(text: &str, old: &str, new: &str, replace_all: bool) -> Result<Edited, EditFailure> {
    let mut lines = Vec::new();
    let (mut line, mut scanned) = (1, 0);
    for (at, _) in text.match_indices(old) {
        line += text.get(scanned..at).map_or(0, |s| s.matches('\n').count());
        scanned = at;
        lines.push(line);
    }
    match lines.len() {
        0 => Err(EditFailure::NotFound),
        1 => Ok(Edited { text: text.replacen(old, new, 1), lines }),
        _ if replace_all => Ok(Edited { text: text.replace(old, new), lines }),
        _ => Err(EditFailure::Ambiguous(lines)),
    }
}

/// The closest region of a file to a string that was not found.
#[derive(Debug, PartialEq)]
pub(crate) struct Closest<'a> {
    /// 1-based first line.
    pub start: usize,
    pub lines: Vec<&'a str>,
    /// Equal but for whitespace (indentation, trailing spaces, line endings).
    pub whitespace_only: bool,
}

/// Slides a window as tall as `old` over the file's lines and keeps the one whose lines are most
/// similar (bigram Dice coefficient of the trimmed lines, averaged).
pub(crate) fn closest_match<'a>(text: &'a str, old: &str) -> Option<Closest<'a>> {
    let file: Vec<&str> = text.lines().collect();
    let wanted: Vec<&str> = old.lines().collect();
    if file.is_empty() || wanted.is_empty() {
        return None;
    }
    let height = wanted.len().min(file.len());
    let scored = height.min(SCORED_LINES);
    let file_grams: Vec<Vec<(char, char)>> = file.iter().map(|l| bigrams(l.trim())).collect();
    let wanted_grams: Vec<Vec<(char, char)>> = wanted.iter().take(scored).map(|l| bigrams(l.trim())).collect();
    let mut best = (0.0, 0);
    for start in 0..=(file.len() - height) {
        let mut score = 0.0;
        for (i, grams) in wanted_grams.iter().enumerate() {
            let (Some(line), Some(want), Some(line_grams)) =
                (file.get(start + i), wanted.get(i), file_grams.get(start + i))
            else {
                continue;
            };
            score += if line.trim() == want.trim() { 1.0 } else { dice(line_grams, grams) };
        }
        let score = score / scored as f64;
        if score > best.0 {
            best = (score, start);
        }
    }
    let (score, start) = best;
    if score < MIN_SIMILARITY {
        return None;
    }
    let lines: Vec<&str> = file.get(start..start + height)?.to_vec();
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    let whitespace_only = squash(&lines.join("\n")) == squash(old);
    Some(Closest { start: start + 1, lines, whitespace_only })
}

fn bigrams(line: &str) -> Vec<(char, char)> {
    let chars: Vec<char> = line.chars().collect();
    let mut grams: Vec<(char, char)> = chars.windows(2).filter_map(|w| Some((*w.first()?, *w.get(1)?))).collect();
    grams.sort_unstable();
    grams
}

/// `2|A∩B| / (|A|+|B|)` over sorted bigram multisets.
fn dice(a: &[(char, char)], b: &[(char, char)]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * shared as f64 / (a.len() + b.len()) as f64
}

/// The message tail for a failed match: the closest region, and hints.
fn no_match_detail(text: &str, old: &str) -> String {
    let mut out = String::new();
    match closest_match(text, old) {
        Some(closest) => {
            let end = closest.start + closest.lines.len() - 1;
            let range =
                if end == closest.start { format!("line {end}") } else { format!("lines {}-{end}", closest.start) };
            let why = if closest.whitespace_only { ", differs only in whitespace/indentation" } else { "" };
            out.push_str(&format!("; closest match ({range}{why}):\n"));
            let width = end.to_string().len();
            for (i, line) in closest.lines.iter().take(QUOTE_LINES).enumerate() {
                let text = crate::read::cut_line(line, 200);
                out.push_str(&format!("{:>width$}\t{text}\n", closest.start + i));
            }
            if closest.lines.len() > QUOTE_LINES {
                out.push_str(&format!("[{} more lines]\n", closest.lines.len() - QUOTE_LINES));
            }
            out.push_str("hint: old_string must match the file exactly, including indentation");
        }
        None => {
            out.push_str(" (nothing similar either)\nhint: read_file again; the file may differ from what you expect")
        }
    }
    if has_line_number_prefixes(old) {
        out.push_str("\nhint: old_string contains read_file's `N<TAB>` line-number prefixes; leave them out");
    }
    out
}

/// Whether every non-empty line starts with `  12\t`, as `read_file` output does.
fn has_line_number_prefixes(old: &str) -> bool {
    let mut lines = old.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some()
        && lines.all(|l| {
            l.trim_start().split_once('\t').is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

fn line_count(s: &str) -> usize {
    s.lines().count()
}

/// `3, 9, 20` (and `…` past [`LISTED_LINES`]).
fn list(lines: &[usize]) -> String {
    let mut out: Vec<String> = lines.iter().take(LISTED_LINES).map(usize::to_string).collect();
    if lines.len() > LISTED_LINES {
        out.push("…".to_string());
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_replaces_a_unique_occurrence() {
        let edited = plan("a\nfoo\nb\n", "foo", "bar", false).unwrap();
        assert_eq!(edited, Edited { text: "a\nbar\nb\n".into(), lines: vec![2] });
    }

    #[test]
    fn plan_refuses_ambiguity_and_lists_lines() {
        assert_eq!(plan("x\nx\ny\nx", "x", "z", false), Err(EditFailure::Ambiguous(vec![1, 2, 4])));
        assert_eq!(plan("x\nx\ny\nx", "x", "z", true).unwrap().text, "z\nz\ny\nz");
        assert_eq!(plan("abc", "d", "e", false), Err(EditFailure::NotFound));
    }

    #[test]
    fn closest_match_finds_the_indentation_difference() {
        let text = "fn a() {\n    let x = 1;\n    let y = 2;\n}\nfn b() {}\n";
        let closest = closest_match(text, "let x = 1;\nlet y = 2;").unwrap();
        assert_eq!(
            closest,
            Closest { start: 2, lines: vec!["    let x = 1;", "    let y = 2;"], whitespace_only: true }
        );
    }

    #[test]
    fn closest_match_finds_a_near_miss() {
        let text = "one\ntwo\nfn compute_total(items: &[Item]) -> u64 {\nthree\n";
        let closest = closest_match(text, "fn compute_totals(items: &[Item]) -> u32 {").unwrap();
        assert_eq!(closest.start, 3);
        assert!(!closest.whitespace_only);
        assert_eq!(closest_match(text, "zzzzqqqq"), None);
    }

    #[test]
    fn line_number_prefixes_are_detected() {
        assert!(has_line_number_prefixes("  12\tlet x = 1;\n  13\tlet y;"));
        assert!(!has_line_number_prefixes("let x = 1;\n\tindented"));
    }
}
