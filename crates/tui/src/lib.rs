//! airlock's interactive terminal front end. Everything drawn here came
//! from a model, a tool or a file, so every string passes
//! `airlock_redact::terminal` before it reaches a cell.
//!
//! - [`view`]: what a person sees of a session: the model's Markdown, tool
//!   cards, diffs, the approval panel and the status line, each a pure
//!   function from a view model to ratatui lines (snapshot-tested).
//! - [`app`]: the interactive session's loop over a started session;
//!   [`screen`] the terminal it draws on (scrollback and a live area).
//! - [`prompt`]: the multi-line prompt editor (history, search, paste,
//!   `@path` completion).
#![deny(missing_docs)]

pub mod app;
pub mod prompt;
pub mod screen;
pub mod view;
