//! Rendering views into ratatui's test backend.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Widget;

/// `lines` drawn in a buffer `width` wide, as the app draws them.
pub fn buffer_of_lines(lines: &[Line<'_>], width: u16) -> Buffer {
    let height = u16::try_from(lines.len().max(1)).unwrap();
    let mut buf = Buffer::empty(Rect::new(0, 0, width, height));
    for (y, line) in lines.iter().enumerate() {
        buf.set_line(0, y as u16, line, width);
    }
    buf
}

/// `widget` drawn through a terminal on the test backend.
pub fn draw<W: Widget>(widget: W, width: u16, height: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| frame.render_widget(widget, frame.area())).unwrap();
    terminal.backend().clone()
}

/// The buffer's text, rows joined with `\n`, trailing spaces removed.
pub fn text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut rows = Vec::new();
    for y in 0..area.height {
        let mut row = String::new();
        for x in 0..area.width {
            row.push_str(buf[(x, y)].symbol());
        }
        rows.push(row.trim_end().to_string());
    }
    rows.join("\n")
}

/// `lines` as a snapshot: their text, rendered at `width`.
pub fn snapshot_lines(lines: &[Line<'_>], width: u16) -> String {
    text(&buffer_of_lines(lines, width))
}

/// Fails if any cell of `buf` holds something a terminal could act on:
/// a control character or a bidirectional control.
pub fn assert_no_unsafe_cells(buf: &Buffer, what: &str) {
    for (i, cell) in buf.content().iter().enumerate() {
        for c in cell.symbol().chars() {
            let bidi =
                matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}');
            assert!(!c.is_control() && !bidi, "{what}: cell {i} holds {c:?}");
        }
    }
}
