//! Text from outside made safe, measured and laid out for a given width.
//!
//! Every view builds its spans from [`clean`] or [`clean_line`], which pass
//! `airlock_redact::terminal`; the layout functions here then replace any
//! character that still has no width (a control that slipped through a
//! caller) with U+FFFD, so a cell never receives one.

use airlock_redact::terminal;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use std::borrow::Cow;

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns between tab stops when tabs are expanded.
pub const TAB_WIDTH: usize = 4;

/// `text` for the terminal, its lines kept: sanitised and tabs expanded.
pub fn clean(text: &str) -> String {
    expand_tabs(&terminal::sanitize(text))
}

/// `text` for one line of the terminal: sanitised, line breaks and tabs as spaces.
pub fn clean_line(text: &str) -> String {
    terminal::one_line(text)
}

/// `text` with each tab replaced by the spaces up to the next tab stop, per line.
fn expand_tabs(text: &str) -> String {
    if !text.contains('\t') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut column = 0;
    for c in text.chars() {
        match c {
            '\t' => {
                let n = TAB_WIDTH - column % TAB_WIDTH;
                out.extend(std::iter::repeat_n(' ', n));
                column += n;
            }
            '\n' => {
                out.push(c);
                column = 0;
            }
            c => {
                out.push(c);
                column += char_width(c);
            }
        }
    }
    out
}

/// The columns `c` takes; a character without a width counts as the U+FFFD
/// that replaces it.
fn char_width(c: char) -> usize {
    c.width().unwrap_or(1)
}

/// The columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    text.width()
}

/// The columns `spans` take on a terminal.
pub fn spans_width(spans: &[Span<'_>]) -> usize {
    spans.iter().map(|s| s.content.width()).sum()
}

/// The text of `lines`, one per line joined with `\n`, without styles:
/// what a person reads (used for digests and tests).
pub fn plain(lines: &[Line<'_>]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for span in &line.spans {
            out.push_str(&span.content);
        }
    }
    out
}

/// One grapheme (what a terminal draws in one cell, or two when wide) with
/// its style: the unit of layout, measured as ratatui measures it when
/// drawing, so that a line laid out for a width fits in it.
#[derive(Clone, Copy)]
struct Glyph<'a> {
    text: &'a str,
    width: usize,
    style: Style,
}

impl Glyph<'_> {
    fn is_newline(&self) -> bool {
        self.text == "\n"
    }

    fn is_space(&self) -> bool {
        self.text == " "
    }
}

/// The glyphs of `spans`, lazily (a long line cut to a width is not read
/// past the cut).
fn glyph_iter<'a>(spans: &'a [Span<'_>]) -> impl Iterator<Item = Glyph<'a>> {
    spans.iter().flat_map(|span| {
        span.content.graphemes(true).map(move |g| {
            // A newline is a break and a tab a space; anything else that a
            // terminal could act on never reaches a cell.
            let text = match g {
                "\n" => g,
                "\t" => " ",
                g if matches!(terminal::sanitize(g), Cow::Owned(_)) => REPLACEMENT,
                g => g,
            };
            let width = if text == "\n" { 0 } else { text.width() };
            Glyph { text, width, style: span.style }
        })
    })
}

fn glyphs<'a>(spans: &'a [Span<'_>]) -> Vec<Glyph<'a>> {
    glyph_iter(spans).collect()
}

/// U+FFFD as a string, for glyphs.
const REPLACEMENT: &str = "\u{FFFD}";

/// Consecutive glyphs of one style as spans.
fn to_spans(glyphs: &[Glyph<'_>]) -> Vec<Span<'static>> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut text = String::new();
    let mut style: Option<Style> = None;
    for g in glyphs {
        if style != Some(g.style) {
            if let Some(s) = style {
                spans.push(Span::styled(std::mem::take(&mut text), s));
            }
            style = Some(g.style);
        }
        text.push_str(g.text);
    }
    if let Some(s) = style {
        spans.push(Span::styled(text, s));
    }
    spans
}

/// How a paragraph breaks into lines.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Breaks {
    /// At spaces where possible (prose).
    Words,
    /// At the last column (code, command output, diffs: every space kept).
    Columns,
}

/// Lays `spans` out in lines of at most `width` columns, breaking at spaces
/// (a word longer than a line is cut); `\n` in a span starts a new line.
/// The first line starts with `first`, the others with `rest`.
pub fn wrap(spans: &[Span<'_>], width: usize, first: &[Span<'static>], rest: &[Span<'static>]) -> Vec<Line<'static>> {
    layout(spans, width, first, rest, Breaks::Words)
}

/// As [`wrap`], but lines break at the last column whatever the character,
/// and spaces are kept: for code and output, where spaces mean something.
pub fn wrap_columns(
    spans: &[Span<'_>],
    width: usize,
    first: &[Span<'static>],
    rest: &[Span<'static>],
) -> Vec<Line<'static>> {
    layout(spans, width, first, rest, Breaks::Columns)
}

fn layout(
    spans: &[Span<'_>],
    width: usize,
    first: &[Span<'static>],
    rest: &[Span<'static>],
    breaks: Breaks,
) -> Vec<Line<'static>> {
    let glyphs = glyphs(spans);
    let avail_first = width.saturating_sub(spans_width(first)).max(1);
    let avail_rest = width.saturating_sub(spans_width(rest)).max(1);
    let mut rows: Vec<Vec<Glyph>> = Vec::new();
    let mut row: Vec<Glyph> = Vec::new();
    let mut used = 0;
    // Whether the current row began because the previous one was full
    // (then spaces at its start are dropped, in prose).
    let mut continued = false;
    let avail = |rows: &Vec<Vec<Glyph>>| if rows.is_empty() { avail_first } else { avail_rest };

    let mut i = 0;
    while i < glyphs.len() {
        let g = glyphs[i];
        if g.is_newline() {
            rows.push(std::mem::take(&mut row));
            used = 0;
            continued = false;
            i += 1;
            continue;
        }
        if breaks == Breaks::Columns {
            if used + g.width > avail(&rows) && !row.is_empty() {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            row.push(g);
            used += g.width;
            i += 1;
            continue;
        }
        let is_space = g.is_space();
        let end =
            glyphs[i..].iter().position(|h| h.is_newline() || h.is_space() != is_space).map_or(glyphs.len(), |n| i + n);
        let run = &glyphs[i..end];
        let run_width: usize = run.iter().map(|g| g.width).sum();
        if is_space {
            if !(continued && row.is_empty()) {
                for g in run {
                    if used + g.width > avail(&rows) {
                        break;
                    }
                    row.push(*g);
                    used += g.width;
                }
            }
        } else if used + run_width <= avail(&rows) {
            row.extend_from_slice(run);
            used += run_width;
        } else if run_width <= avail_rest && !row.is_empty() {
            while row.last().is_some_and(Glyph::is_space) {
                row.pop();
            }
            rows.push(std::mem::take(&mut row));
            continued = true;
            row.extend_from_slice(run);
            used = run_width;
        } else {
            for g in run {
                if used + g.width > avail(&rows) && !row.is_empty() {
                    rows.push(std::mem::take(&mut row));
                    continued = true;
                    used = 0;
                }
                row.push(*g);
                used += g.width;
            }
        }
        i = end;
    }
    if breaks == Breaks::Words {
        while row.last().is_some_and(Glyph::is_space) {
            row.pop();
        }
    }
    rows.push(row);
    rows.iter()
        .enumerate()
        .map(|(n, row)| {
            let mut spans: Vec<Span<'static>> = if n == 0 { first.to_vec() } else { rest.to_vec() };
            spans.extend(to_spans(row));
            Line::from(spans)
        })
        .collect()
}

/// `spans` cut to at most `width` columns, ending in `…` when cut.
pub fn truncate(spans: &[Span<'_>], width: usize) -> Vec<Span<'static>> {
    let mut kept = Vec::new();
    let mut used = 0;
    let mut cut_style = None;
    for g in glyph_iter(spans) {
        if used + g.width > width {
            cut_style = Some(g.style);
            break;
        }
        used += g.width;
        kept.push(g);
    }
    let Some(style) = cut_style else {
        return to_spans(&kept);
    };
    // Room for the ellipsis.
    while used + 1 > width {
        let Some(g) = kept.pop() else { break };
        used -= g.width;
    }
    if width > 0 {
        kept.push(Glyph { text: "…", width: 1, style });
    }
    to_spans(&kept)
}

/// `lines` cut to `width` columns where they are wider: what the layout
/// functions produce only when the width cannot hold even their prefixes
/// (a gutter, an indentation), so that no line is wider than the screen.
pub fn clip(mut lines: Vec<Line<'static>>, width: usize) -> Vec<Line<'static>> {
    for line in &mut lines {
        if line.width() > width {
            let spans = {
                let mut used = 0;
                let kept: Vec<Glyph<'_>> = glyphs(&line.spans)
                    .into_iter()
                    .take_while(|g| {
                        used += g.width;
                        used <= width
                    })
                    .collect();
                to_spans(&kept)
            };
            *line = Line::from(spans);
        }
    }
    lines
}

/// `n` with thousands separated by commas: `1,234`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` in short form: `950`, `12.3k`, `128k`, `1.2M`.
pub fn short_count(n: u64) -> String {
    fn scaled(n: u64, unit: u64, suffix: &str) -> String {
        // In u128: `n * 10` must not overflow for the largest counts.
        let (n, unit) = (u128::from(n), u128::from(unit));
        let tenths = (n * 10 + unit / 2) / unit;
        if tenths >= 1000 || tenths.is_multiple_of(10) {
            format!("{}{suffix}", (n + unit / 2) / unit)
        } else {
            format!("{}.{}{suffix}", tenths / 10, tenths % 10)
        }
    }
    match n {
        0..1_000 => n.to_string(),
        1_000..999_500 => scaled(n, 1_000, "k"),
        _ => scaled(n, 1_000_000, "M"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(lines: &[Line<'_>]) -> Vec<String> {
        plain(lines).split('\n').map(str::to_string).collect()
    }

    #[test]
    fn prose_breaks_at_spaces_and_cuts_long_words() {
        let lines = wrap(&[Span::raw("the quick brown fox jumps")], 10, &[], &[]);
        assert_eq!(rows(&lines), ["the quick", "brown fox", "jumps"]);
        let lines = wrap(&[Span::raw("abcdefghijklmnop")], 6, &[Span::raw("> ")], &[Span::raw("  ")]);
        assert_eq!(rows(&lines), ["> abcd", "  efgh", "  ijkl", "  mnop"]);
        for line in &lines {
            assert!(line.width() <= 6);
        }
    }

    #[test]
    fn wide_characters_are_measured() {
        let lines = wrap(&[Span::raw("世界世界世界")], 5, &[], &[]);
        assert_eq!(rows(&lines), ["世界", "世界", "世界"]);
        assert!(lines.iter().all(|l| l.width() <= 5));
    }

    #[test]
    fn columns_keep_spaces_and_newlines_break() {
        let lines = wrap_columns(&[Span::raw("  a  b\nccccc")], 3, &[], &[]);
        assert_eq!(rows(&lines), ["  a", "  b", "ccc", "cc"]);
    }

    #[test]
    fn controls_that_slip_through_never_reach_a_line() {
        let lines = wrap(&[Span::raw("a\x1b[2Jb\u{9b}c")], 80, &[], &[]);
        assert_eq!(plain(&lines), "a\u{FFFD}[2Jb\u{FFFD}c");
    }

    #[test]
    fn graphemes_are_measured_as_ratatui_draws_them() {
        // A heart with the emoji presentation selector takes two cells.
        let lines = wrap(&[Span::raw("ab\u{2764}\u{FE0F}cd")], 3, &[], &[]);
        assert_eq!(rows(&lines), ["ab", "\u{2764}\u{FE0F}c", "d"]);
        // A combining accent stays with its letter.
        let lines = wrap_columns(&[Span::raw("ae\u{301}b")], 2, &[], &[]);
        assert_eq!(rows(&lines), ["ae\u{301}", "b"]);
        for line in &lines {
            assert!(line.width() <= 2);
        }
    }

    #[test]
    fn tabs_expand_to_stops() {
        assert_eq!(clean("a\tb\n\tc"), "a   b\n    c");
        assert_eq!(clean("\x1b]0;t\x07"), "\u{FFFD}]0;t\u{FFFD}");
    }

    #[test]
    fn truncation_ends_with_an_ellipsis() {
        assert_eq!(plain(&[Line::from(truncate(&[Span::raw("abcdef")], 4))]), "abc…");
        assert_eq!(plain(&[Line::from(truncate(&[Span::raw("abc")], 4))]), "abc");
        assert_eq!(plain(&[Line::from(truncate(&[Span::raw("abcd")], 4))]), "abcd");
        assert_eq!(plain(&[Line::from(truncate(&[Span::raw("世界世界")], 5))]), "世界…");
        assert_eq!(plain(&[Line::from(truncate(&[Span::raw("abc")], 0))]), "");
    }

    #[test]
    fn counts_read_short() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(short_count(950), "950");
        assert_eq!(short_count(12_345), "12.3k");
        assert_eq!(short_count(128_000), "128k");
        assert_eq!(short_count(1_000), "1k");
        assert_eq!(short_count(999_999), "1M");
        assert_eq!(short_count(1_250_000), "1.3M");
        assert_eq!(short_count(u64::MAX), "18446744073710M");
    }
}
