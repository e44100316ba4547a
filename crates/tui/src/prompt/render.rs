//! Drawing the prompt: the completion popup or a hint above, then the text
//! rows after a `› ` prefix. Everything depends on the width alone.

use std::sync::Arc;

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;

use super::layout::{self, Atom, Kind, Row};
use super::{CompletionKind, POPUP_ROWS, Prompt};

/// Drawn before the first row of text; later rows are indented to match.
const PREFIX: &str = "› ";
const PREFIX_WIDTH: u16 = 2;

/// Shown after a first Ctrl-C on an empty prompt.
pub(crate) const EXIT_HINT: &str = "Press Ctrl-C again to exit";

/// Columns for text in a prompt `width` wide.
pub(crate) fn text_width(width: u16) -> u16 {
    width.saturating_sub(PREFIX_WIDTH).max(1)
}

/// The rows shown and where the cursor stands among them.
struct Frame<'s> {
    rows: Arc<Vec<Row>>,
    /// The text the rows' byte offsets refer to.
    source: &'s str,
    cursor: (usize, u16),
    /// Rows in all, counting one the cursor alone may stand on.
    total: usize,
}

impl Prompt {
    /// Calls `f` with the rows of what the editor shows at `width`: the
    /// text, or a search line.
    fn with_frame<R>(&self, width: u16, f: impl FnOnce(&Frame<'_>) -> R) -> R {
        let text_width = text_width(width);
        let Some(search) = &self.search else {
            let rows = self.rows(text_width);
            let cursor = layout::cursor_cell(&rows, self.cursor, text_width);
            let total = layout::rows_with_cursor(&rows, self.cursor, text_width);
            return f(&Frame { rows, source: &self.text, cursor, total });
        };
        let entry = search.matched.and_then(|m| self.history.get(m));
        let failed = entry.is_none() && !search.query.is_empty();
        let head = if failed { "(failed search) '" } else { "(search) '" };
        let line = format!("{head}{}': {}", search.query, entry.unwrap_or(""));
        let query_end = head.len() + search.query.len();
        let entry_start = query_end + "': ".len();
        let mut atoms = Vec::new();
        layout::atoms(&line[..head.len()], 0, Kind::Label, &|_| None, &mut atoms);
        layout::atoms(&line[head.len()..query_end], head.len(), Kind::Text, &|_| None, &mut atoms);
        layout::atoms(&line[query_end..entry_start], query_end, Kind::Label, &|_| None, &mut atoms);
        let entry_text = &line[entry_start..];
        layout::atoms(entry_text, entry_start, Kind::Text, &|_| None, &mut atoms);
        if let Some((from, to)) = match_range(entry_text, &search.query) {
            for atom in &mut atoms {
                if atom.start >= entry_start + from && atom.end <= entry_start + to {
                    atom.kind = Kind::Matched;
                }
            }
        }
        let rows = layout::wrap(atoms, 0, text_width);
        let cursor = layout::cursor_cell(&rows, query_end, text_width);
        let total = layout::rows_with_cursor(&rows, query_end, text_width);
        f(&Frame { rows: Arc::new(rows), source: &line, cursor, total })
    }

    /// Rows above the text: the popup's candidates, or a hint.
    fn overlay_rows(&self) -> u16 {
        if let Some(completion) = &self.completion {
            completion.items.len().min(POPUP_ROWS) as u16
        } else if self.exit_armed.is_some() {
            1
        } else {
            0
        }
    }

    /// Rows the prompt wants at `width`: the popup or hint, and the text up
    /// to the maximum height. Size the inline viewport with it.
    pub fn height(&self, width: u16) -> u16 {
        self.width.set(width);
        let text_rows = self.with_frame(width, |frame| frame.total);
        self.overlay_rows() + (text_rows.min(usize::from(self.max_height)) as u16)
    }

    /// Where the terminal cursor goes when the prompt is drawn in `area`
    /// (for `frame.set_cursor_position`); `None` if it would fall outside.
    pub fn cursor_position(&self, area: Rect) -> Option<Position> {
        if area.is_empty() {
            return None;
        }
        let placement = self.placement(area);
        let (row, col) = placement.cursor;
        let y = row.checked_sub(placement.top)?;
        if y >= usize::from(placement.text_rows) {
            return None;
        }
        let x = area.x + (PREFIX_WIDTH + col).min(area.width.saturating_sub(1));
        Some(Position::new(x, area.y + placement.overlay + y as u16))
    }

    /// How `area` is shared between the overlay and the text, and which text
    /// rows are shown (scrolled so the cursor is visible).
    fn placement(&self, area: Rect) -> Placement {
        self.width.set(area.width);
        let (total, cursor) = self.with_frame(area.width, |frame| (frame.total, frame.cursor));
        let text_rows = (total.min(usize::from(self.max_height)) as u16).min(area.height).max(1);
        let overlay = self.overlay_rows().min(area.height.saturating_sub(text_rows));
        let visible = usize::from(text_rows);
        let mut top = self.scroll_top.get();
        if cursor.0 < top {
            top = cursor.0;
        }
        if cursor.0 >= top + visible {
            top = cursor.0 + 1 - visible;
        }
        top = top.min(total.saturating_sub(visible));
        self.scroll_top.set(top);
        Placement { overlay, text_rows, top, cursor }
    }

    fn render_overlay(&self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 {
            return;
        }
        let dim = Style::new().add_modifier(Modifier::DIM);
        let Some(completion) = &self.completion else {
            if self.exit_armed.is_some() {
                buf.set_stringn(area.x + PREFIX_WIDTH, area.y, EXIT_HINT, usize::from(area.width), dim);
            }
            return;
        };
        let shown = usize::from(area.height);
        let first = completion.selected.saturating_sub(shown - 1);
        let name_width = completion.items.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0) + 1;
        for (i, (name, help)) in completion.items.iter().enumerate().skip(first).take(shown) {
            let y = area.y + (i - first) as u16;
            let selected = i == completion.selected;
            let style = if selected { Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD) } else { Style::new() };
            let sigil = if completion.kind == CompletionKind::Path { "@" } else { "/" };
            let line = format!("{}{sigil}{name}", if selected { PREFIX } else { "  " });
            let (x, _) = buf.set_stringn(area.x, y, &line, usize::from(area.width), style);
            if !help.is_empty() {
                let pad = (usize::from(PREFIX_WIDTH) + name_width + 2).saturating_sub(usize::from(x - area.x));
                let help = format!("{:pad$}{help}", "");
                buf.set_stringn(x, y, &help, usize::from(area.right().saturating_sub(x)), dim);
            }
        }
    }

    fn render_text(&self, area: Rect, top: usize, buf: &mut Buffer) {
        let prefix_style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
        if top == 0 && area.height > 0 {
            buf.set_stringn(area.x, area.y, PREFIX, usize::from(area.width), prefix_style);
        }
        if self.text.is_empty() && self.search.is_none() {
            let style = Style::new().add_modifier(Modifier::DIM);
            let width = usize::from(area.width.saturating_sub(PREFIX_WIDTH));
            buf.set_stringn(area.x + PREFIX_WIDTH, area.y, &self.placeholder, width, style);
            return;
        }
        let label = |c: char| self.paste_label_of(c);
        self.with_frame(area.width, |frame| {
            for (y, row) in frame.rows.iter().skip(top).take(usize::from(area.height)).enumerate() {
                let mut x = area.x + PREFIX_WIDTH;
                for atom in &row.atoms {
                    let display = layout::display(atom, frame.source, &label);
                    draw_atom(atom, &display, x, area.y + y as u16, area.right(), buf);
                    x = x.saturating_add(atom.width);
                }
            }
        });
    }
}

/// Which rows go where in an area.
struct Placement {
    overlay: u16,
    text_rows: u16,
    /// First text row shown.
    top: usize,
    cursor: (usize, u16),
}

fn draw_atom(atom: &Atom, display: &str, x: u16, y: u16, right: u16, buf: &mut Buffer) {
    if x >= right || display.is_empty() {
        return;
    }
    let style = match atom.kind {
        Kind::Text => Style::new(),
        Kind::Paste => Style::new().fg(Color::Magenta),
        Kind::Label => Style::new().add_modifier(Modifier::DIM),
        Kind::Matched => Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
    };
    buf.set_stringn(x, y, display, usize::from(right - x), style);
}

/// Byte range of the first case-insensitive occurrence of `query` in
/// `text`, where lowercasing keeps byte offsets (else none is marked).
fn match_range(text: &str, query: &str) -> Option<(usize, usize)> {
    if query.is_empty() {
        return None;
    }
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        return None;
    }
    let start = lower.find(&query.to_lowercase())?;
    let end = start + query.len();
    (text.is_char_boundary(start) && text.is_char_boundary(end)).then_some((start, end))
}

impl Widget for &Prompt {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let placement = self.placement(area);
        let overlay = Rect { height: placement.overlay, ..area };
        self.render_overlay(overlay, buf);
        let text = Rect {
            y: area.y + placement.overlay,
            height: placement.text_rows.min(area.height - placement.overlay),
            ..area
        };
        self.render_text(text, placement.top, buf);
    }
}
