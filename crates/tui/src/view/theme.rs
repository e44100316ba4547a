//! The styles of the views, in one place.
//!
//! The approval panel's styles ([`PANEL_BORDER`], [`PANEL_TITLE`]) are used
//! by nothing else: model text is drawn without a background colour and
//! never in the panel's yellow, so text that imitates the panel cannot look
//! like it (tested in `tests/all.rs`, `forgery`).

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
