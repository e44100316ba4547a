//! The styles of the views, in one place.
//!
//! The approval panel's styles ([`PANEL_BORDER`], [`PANEL_TITLE`]) are used
//! by nothing else: model text is drawn without a background colour and
//! never in the panel's yellow, so text that imitates the panel cannot look
//! like it (tested in `tests/view/forgery.rs`).

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};

/// The approval panel's border.
pub const PANEL_BORDER: Style = Style::new().fg(Color::LightYellow).add_modifier(Modifier::BOLD);
/// The approval panel's title: dark on the panel's yellow.
pub const PANEL_TITLE: Style = Style::new().fg(Color::Black).bg(Color::LightYellow).add_modifier(Modifier::BOLD);
/// A key offered in the approval panel.
pub const PANEL_KEY: Style = Style::new().fg(Color::LightYellow).add_modifier(Modifier::BOLD);
/// A label in the approval panel ("argv", "why").
pub const PANEL_LABEL: Style = Style::new().add_modifier(Modifier::BOLD);

/// Secondary text: hints, counts, folded lines.
pub const DIM: Style = Style::new().fg(Color::DarkGray);
/// Something that went well.
pub const OK: Style = Style::new().fg(Color::Green);
/// Something that failed or was refused.
pub const FAIL: Style = Style::new().fg(Color::Red);
/// A tool card's name ("Read", "Edit").
pub const TOOL: Style = Style::new().add_modifier(Modifier::BOLD);

/// A level-1 heading.
pub const H1: Style = Style::new().add_modifier(Modifier::BOLD).add_modifier(Modifier::UNDERLINED);
/// A level-2 heading.
pub const H2: Style = Style::new().add_modifier(Modifier::BOLD);
/// Headings of level 3 and below.
pub const H3: Style = Style::new().add_modifier(Modifier::BOLD).add_modifier(Modifier::ITALIC);
/// Inline code.
pub const INLINE_CODE: Style = Style::new().fg(Color::Cyan);
/// A link's text.
pub const LINK: Style = Style::new().fg(Color::Blue).add_modifier(Modifier::UNDERLINED);
/// A block quote's bar.
pub const QUOTE: Style = Style::new().fg(Color::DarkGray);
/// A list's bullet or number.
pub const BULLET: Style = Style::new().fg(Color::DarkGray);

/// A keyword in highlighted code.
pub const KEYWORD: Style = Style::new().fg(Color::Magenta);
/// A string literal in highlighted code.
pub const STRING: Style = Style::new().fg(Color::Green);
/// A comment in highlighted code.
pub const COMMENT: Style = Style::new().fg(Color::DarkGray).add_modifier(Modifier::ITALIC);
/// A number or a constant (`true`, `null`) in highlighted code.
pub const NUMBER: Style = Style::new().fg(Color::Cyan);
/// A key (JSON, YAML, TOML) or a section header in highlighted code.
pub const KEY: Style = Style::new().fg(Color::Blue);

/// An added line of a diff.
pub const ADDED: Style = Style::new().fg(Color::Green);
/// A removed line of a diff.
pub const REMOVED: Style = Style::new().fg(Color::Red);
/// A diff's hunk header.
pub const HUNK: Style = Style::new().fg(Color::Cyan);

/// Removes the colours from what was drawn in `buf`, for a terminal where
/// `NO_COLOR` is set: the app calls it on each frame and on each buffer it
/// inserts into the scrollback. Modifiers stay; a cell that had a background
/// (the approval panel's title) is shown reversed instead, which model text
/// never is, so the panel stays distinct.
pub fn without_colors(buf: &mut Buffer) {
    for cell in &mut buf.content {
        if cell.bg != Color::Reset {
            cell.modifier |= Modifier::REVERSED;
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
        cell.underline_color = Color::Reset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::text::{Line, Span};

    #[test]
    fn without_colors_keeps_modifiers_and_marks_backgrounds() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 1));
        buf.set_line(0, 0, &Line::from(vec![Span::styled("a", PANEL_TITLE), Span::styled("b", KEYWORD)]), 4);
        without_colors(&mut buf);
        assert_eq!(buf[(0, 0)].fg, Color::Reset);
        assert_eq!(buf[(0, 0)].bg, Color::Reset);
        assert!(buf[(0, 0)].modifier.contains(Modifier::REVERSED | Modifier::BOLD));
        assert_eq!(buf[(1, 0)].fg, Color::Reset);
        assert!(!buf[(1, 0)].modifier.contains(Modifier::REVERSED));
    }
}
