//! Views of a session: pure functions from view models to ratatui lines,
//! laid out for a given width, and small widgets for what is drawn live.
//!
//! Finished items (a turn's Markdown, a tool card) render to
//! `Vec<Line<'static>>` so that the app can push them into the terminal's
//! scrollback (`Terminal::insert_before`); what changes (the streaming
//! answer, the approval panel, the status line) is drawn in the viewport.
//!
//! - [`markdown`]: the model's text ([`markdown::markdown`],
//!   [`markdown::MarkdownStream`] while it streams), code blocks highlighted
//!   by [`highlight`];
//! - [`card`]: tool calls as cards, edits as [`diff`]s;
//! - [`approval`]: the approval panel and the digest of what it showed;
//! - [`status`]: the status line;
//! - [`notice`]: the person's messages and the session's notices;
//! - [`text`]: sanitising, measuring and wrapping; [`theme`]: the styles.
//!
//! Every string from outside passes `airlock_redact::terminal` here (via
//! [`text::clean`] and [`text::clean_line`]), and the layout functions
//! replace any character without a width, so nothing a terminal could act
//! on reaches a cell.
//!
//! ```
//! use airlock_tui::view::{markdown::markdown, text::plain};
//!
//! let lines = markdown("# Done\n\n- `cargo test` passes\n", 40);
//! assert_eq!(plain(&lines), "Done\n\n• cargo test passes");
//! ```

pub mod approval;
pub mod card;
pub mod diff;
pub mod highlight;
pub mod markdown;
pub mod notice;
pub mod status;
pub mod text;
pub mod theme;
