//! The views: cards, diffs, Markdown, the approval panel, the status line.

mod support;

mod approval;
mod cards;
mod forgery;
mod hostile;
mod markdown;
mod narrow;
mod status;
