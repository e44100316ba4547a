//! The person's own messages and the session's notices in the conversation
//! (`interrupted`, `rewound to turn 3`, an error), so that the scrollback
//! reads as one conversation.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::text::{clean, clip, wrap};
use super::theme;

/// The person's message as sent, after `› `.
pub fn user_message(message: &str, width: u16) -> Vec<Line<'static>> {
    let text = clean(message);
    let style = Style::new().add_modifier(Modifier::BOLD);
    let mut out = Vec::new();
    for (i, line) in text.trim_end_matches('\n').split('\n').enumerate() {
        let first = if i == 0 { Span::styled("› ", theme::DIM) } else { Span::raw("  ") };
        out.extend(wrap(&[Span::styled(line.to_string(), style)], width as usize, &[first], &[Span::raw("  ")]));
    }
    clip(out, width as usize)
}

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    /// Something that happened (`interrupted`, `rewound to turn 3`).
    Info,
    /// Something to know (`target/ is not snapshotted`).
    Warning,
    /// Something that failed.
    Error,
}

/// A notice from the session (text from airlock itself; sanitised anyway,
/// as it may quote a path or an error from outside).
pub fn notice(level: NoticeLevel, message: &str, width: u16) -> Vec<Line<'static>> {
    let (mark, style) = match level {
        NoticeLevel::Info => ("· ", theme::DIM),
        NoticeLevel::Warning => ("! ", Style::new().fg(Color::Yellow)),
        NoticeLevel::Error => ("✗ ", theme::FAIL),
    };
    let text = clean(message);
    let spans = [Span::styled(text.trim_end().to_string(), style)];
    clip(wrap(&spans, width as usize, &[Span::styled(mark, style)], &[Span::raw("  ")]), width as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::text::plain;

    #[test]
    fn a_message_keeps_its_lines() {
        let shown = plain(&user_message("fix the parser\nand add a test\x1b[2J", 40));
        assert_eq!(shown, "› fix the parser\n  and add a test\u{FFFD}[2J");
    }

    #[test]
    fn notices_are_marked_by_level() {
        assert_eq!(plain(&notice(NoticeLevel::Info, "interrupted", 40)), "· interrupted");
        let lines = notice(NoticeLevel::Error, "cannot write the audit log: disk full", 20);
        assert_eq!(plain(&lines), "✗ cannot write the\n  audit log: disk\n  full");
        assert_eq!(lines[0].spans[0].style, theme::FAIL);
    }
}
