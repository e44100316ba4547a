//! airlock-tui's integration tests: what a person sees, as snapshots, and
//! the guarantees about it (nothing from outside reaches a cell raw; model
//! text cannot look like the approval panel).
//!
//! ```text
//! cargo test -p airlock-tui --test all
//! INSTA_UPDATE=always cargo test -p airlock-tui --test all   # after a deliberate change; review the .snap diffs
//! ```

// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod view;
