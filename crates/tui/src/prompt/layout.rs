//! Wrapping the prompt's text to a width: which cells each piece takes and
//! where the cursor is. Pure functions of the text and the width, so that
//! drawing, cursor placement and up/down motion agree, and a resize needs
//! nothing but a new width.

use std::borrow::Cow;

use ratatui::buffer::CellWidth;
use unicode_segmentation::UnicodeSegmentation;

/// How a piece of the prompt is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Text the person typed.
    Text,
    /// The placeholder of a large paste.
    Paste,
    /// Fixed text around a search (`(search) 'query': `).
    Label,
    /// The part of a search result that matched the query.
    Matched,
}

/// The smallest piece the cursor can stand before or after: a grapheme, a
/// tab, or a paste's placeholder. It holds no text, so a layout can be kept
/// while the text is unchanged; [`display`] finds what to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Atom {
    /// Byte range in the text.
    pub start: usize,
    pub end: usize,
    /// Columns it takes.
    pub width: u16,
    pub kind: Kind,
    /// A place to break a line after (whitespace).
    pub breaks_after: bool,
    /// A hard line break (`\n`): never drawn, ends the row.
    pub newline: bool,
    /// A tab, drawn as spaces.
    pub tab: bool,
}

/// What `atom` of `source` draws: the grapheme, spaces for a tab, a paste's
/// label, or nothing for a line break or a control character.
pub(crate) fn display<'s>(atom: &Atom, source: &'s str, paste_label: &dyn Fn(char) -> Option<String>) -> Cow<'s, str> {
    if atom.tab {
        return Cow::Borrowed("    ");
    }
    let Some(text) = source.get(atom.start..atom.end) else { return Cow::Borrowed("") };
    if atom.newline || text.contains(char::is_control) {
        return Cow::Borrowed("");
    }
    if atom.kind == Kind::Paste {
        return text.chars().next().and_then(paste_label).map_or(Cow::Borrowed(""), Cow::Owned);
    }
    Cow::Borrowed(text)
}

/// How many columns a tab takes: fixed, because a tab stop depends on where
/// the row starts, and a prompt's rows start at a prefix.
const TAB_WIDTH: u16 = 4;

/// Splits `text` (whose byte offsets start at `base`) into atoms of `kind`.
/// `paste_label` names the placeholder of a paste marker character, or
/// `None` for a character that is not one.
pub(crate) fn atoms(
    text: &str,
    base: usize,
    kind: Kind,
    paste_label: &dyn Fn(char) -> Option<String>,
    out: &mut Vec<Atom>,
) {
    for (offset, grapheme) in text.grapheme_indices(true) {
        let start = base + offset;
        let end = start + grapheme.len();
        if grapheme == "\n" || grapheme == "\r\n" {
            out.push(Atom { start, end, width: 0, kind, breaks_after: true, newline: true, tab: false });
            continue;
        }
        if grapheme == "\t" {
            out.push(Atom { start, end, width: TAB_WIDTH, kind, breaks_after: true, newline: false, tab: true });
            continue;
        }
        // A combining mark typed after a placeholder joins its grapheme: the
        // marker still draws as its label, and the mark as a text atom.
        let mut rest_start = 0;
        for (i, c) in grapheme.char_indices() {
            if let Some(label) = paste_label(c) {
                if i > rest_start {
                    push_text(&grapheme[rest_start..i], start + rest_start, kind, out);
                }
                let width = label.as_str().cell_width();
                out.push(Atom {
                    start: start + i,
                    end: start + i + c.len_utf8(),
                    width,
                    kind: Kind::Paste,
                    breaks_after: true,
                    newline: false,
                    tab: false,
                });
                rest_start = i + c.len_utf8();
            }
        }
        if rest_start < grapheme.len() {
            push_text(&grapheme[rest_start..], start + rest_start, kind, out);
        }
    }
}

fn push_text(grapheme: &str, start: usize, kind: Kind, out: &mut Vec<Atom>) {
    // Control characters never reach the buffer (input is sanitised); a
    // stray one is drawn as nothing rather than passed to the terminal.
    let safe = !grapheme.contains(char::is_control);
    let width = if safe { grapheme.cell_width() } else { 0 };
    out.push(Atom {
        start,
        end: start + grapheme.len(),
        width,
        kind,
        breaks_after: grapheme.chars().all(char::is_whitespace),
        newline: false,
        tab: false,
    });
}

/// One row on the screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Row {
    pub atoms: Vec<Atom>,
    /// Byte offset where the row starts (the first atom's start, or where an
    /// empty row stands).
    pub start: usize,
    /// Byte offset where the row ends (after its last atom, before a `\n`).
    pub end: usize,
    /// Whether the next row continues this line (a soft wrap): then `end`
    /// belongs to the next row.
    pub wrapped: bool,
}

/// Atoms wrapped to rows of at most `width` columns, at whitespace where a
/// row has some, else anywhere. Always at least one row.
pub(crate) fn wrap(atoms: Vec<Atom>, start: usize, width: u16) -> Vec<Row> {
    let width = width.max(1);
    let mut rows = vec![Row { start, end: start, ..Row::default() }];
    let mut col: u16 = 0;
    // Index in the current row after its last whitespace atom.
    let mut last_break: Option<usize> = None;
    for atom in atoms {
        let Some(row) = rows.last_mut() else { break };
        if atom.newline {
            row.end = atom.start;
            let next = atom.end;
            rows.push(Row { start: next, end: next, ..Row::default() });
            col = 0;
            last_break = None;
            continue;
        }
        if col.saturating_add(atom.width) > width && !row.atoms.is_empty() && atom.width > 0 {
            let carried: Vec<Atom> = match last_break {
                Some(i) if i < row.atoms.len() => row.atoms.split_off(i),
                _ => Vec::new(),
            };
            row.wrapped = true;
            row.end = carried.first().map_or(atom.start, |a| a.start);
            col = carried.iter().map(|a| a.width).sum();
            let next_start = row.end;
            rows.push(Row { atoms: carried, start: next_start, end: next_start, wrapped: false });
            last_break = None;
        }
        let Some(row) = rows.last_mut() else { break };
        col = col.saturating_add(atom.width);
        row.end = atom.end;
        let breaks = atom.breaks_after;
        row.atoms.push(atom);
        if breaks {
            last_break = Some(row.atoms.len());
        }
    }
    rows
}

/// The row and column of byte offset `cursor` (on an atom boundary). A
/// cursor after a row that fills the width stands at the start of the row
/// below, which may be one past the last (the caller makes room for it).
pub(crate) fn cursor_cell(rows: &[Row], cursor: usize, width: u16) -> (usize, u16) {
    let width = width.max(1);
    let mut found = (rows.len().saturating_sub(1), 0);
    for (i, row) in rows.iter().enumerate() {
        let at_wrap_end = row.wrapped && cursor == row.end;
        if cursor >= row.start && cursor <= row.end && !at_wrap_end {
            let col: u16 = row.atoms.iter().take_while(|a| a.end <= cursor).map(|a| a.width).sum();
            found = (i, col);
            break;
        }
    }
    if found.1 >= width { (found.0 + 1, 0) } else { found }
}

/// The byte offset in row `row` nearest to column `col` without passing it.
pub(crate) fn offset_at(rows: &[Row], row: usize, col: u16) -> Option<usize> {
    let target = rows.get(row)?;
    let mut offset = target.start;
    let mut acc: u16 = 0;
    for atom in &target.atoms {
        if acc.saturating_add(atom.width) > col {
            break;
        }
        acc = acc.saturating_add(atom.width);
        offset = atom.end;
    }
    // The end of a soft-wrapped row is the start of the next one: stop
    // before its last atom so the cursor stays on this row.
    if target.wrapped && offset == target.end {
        offset = target.atoms.last().map_or(target.start, |a| a.start);
    }
    Some(offset)
}

/// The number of rows `rows` takes with the cursor at `cursor`, counting a
/// row the cursor alone stands on after a full last row.
pub(crate) fn rows_with_cursor(rows: &[Row], cursor: usize, width: u16) -> usize {
    let (row, _) = cursor_cell(rows, cursor, width);
    rows.len().max(row + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(text: &str, width: u16) -> Vec<Row> {
        let mut out = Vec::new();
        atoms(text, 0, Kind::Text, &|_| None, &mut out);
        wrap(out, 0, width)
    }

    fn row_texts(text: &str, rows: &[Row]) -> Vec<String> {
        rows.iter().map(|r| r.atoms.iter().map(|a| display(a, text, &|_| None)).collect()).collect()
    }

    #[test]
    fn wraps_at_whitespace_and_keeps_newlines() {
        let text = "hello wide world\nnext";
        let rows = layout(text, 9);
        assert_eq!(row_texts(text, &rows), ["hello ", "wide ", "world", "next"]);
        assert!(rows[0].wrapped && rows[1].wrapped && !rows[2].wrapped);
    }

    #[test]
    fn a_word_longer_than_the_row_is_cut() {
        let rows = layout("abcdefghij", 4);
        assert_eq!(row_texts("abcdefghij", &rows), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn wide_characters_never_straddle_a_row() {
        // Three columns: two CJK characters take four, so the second wraps.
        let rows = layout("日本", 3);
        assert_eq!(row_texts("日本", &rows), ["日", "本"]);
        assert_eq!(cursor_cell(&rows, "日".len(), 3), (1, 0));
        assert_eq!(cursor_cell(&rows, "日本".len(), 3), (1, 2));
    }

    #[test]
    fn cursor_after_a_full_row_stands_below() {
        let rows = layout("abcd", 4);
        assert_eq!(cursor_cell(&rows, 4, 4), (1, 0));
        assert_eq!(rows_with_cursor(&rows, 4, 4), 2);
        assert_eq!(rows_with_cursor(&rows, 3, 4), 1);
    }

    #[test]
    fn offsets_on_a_column_stay_on_their_row() {
        let rows = layout("abcdefgh", 4);
        assert_eq!(offset_at(&rows, 0, 10), Some(3));
        assert_eq!(offset_at(&rows, 1, 2), Some(6));
        assert_eq!(offset_at(&rows, 1, 10), Some(8));
    }

    #[test]
    fn emoji_sequences_are_one_atom() {
        let text = "a👩‍💻b";
        let rows = layout(text, 20);
        assert_eq!(rows[0].atoms.len(), 3);
        assert_eq!(rows[0].atoms[1].width, 2);
    }
}
