//! The status line: the model and where it runs, the permission mode,
//! tokens and context, the session and the audit log's state.
//!
//! When the line is too narrow, the least important parts go first (the
//! hint, the session id, the token count); the mode and an audit log that
//! is not verifying are never dropped.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::text::{clean_line, short_count, thousands, truncate, width};
use super::theme;

/// Where the model runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelPlace {
    /// In this process (the embedded model).
    Embedded,
    /// On a server the person runs.
    SelfHosted {
        /// Its host (and port).
        host: String,
    },
    /// At a cloud vendor.
    Cloud {
        /// The vendor's name.
        vendor: String,
    },
}

/// The permission mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionMode {
    /// Reading is free; edits and commands ask.
    Ask,
    /// Edits are free; commands ask.
    Edits,
    /// Read-only: edits and commands are refused.
    Plan,
    /// Everything policy allows runs without asking, in the sandbox.
    Auto,
}

impl PermissionMode {
    /// The mode's name as typed (`--mode`, `/mode`).
    pub fn name(self) -> &'static str {
        match self {
            PermissionMode::Ask => "ask",
            PermissionMode::Edits => "edits",
            PermissionMode::Plan => "plan",
            PermissionMode::Auto => "auto",
        }
    }

    /// The mode's colour: plan blue, edits yellow, auto red.
    pub fn style(self) -> Style {
        match self {
            PermissionMode::Ask => Style::new().fg(Color::Green),
            PermissionMode::Edits => Style::new().fg(Color::Yellow),
            PermissionMode::Plan => Style::new().fg(Color::Blue),
            PermissionMode::Auto => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }
}

/// The audit log's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditState {
    /// Recording, and verifying.
    Recording {
        /// Entries in this session's log.
        entries: u64,
        /// Time since the last signed checkpoint (None: none yet).
        since_checkpoint: Option<Duration>,
    },
    /// The log does not verify (or cannot be written): shown in red.
    NotVerifying,
}

/// What the status line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// The model's name.
    pub model: String,
    /// Where it runs.
    pub place: ModelPlace,
    /// The permission mode.
    pub mode: PermissionMode,
    /// Tokens used in this session (prompt and completion).
    pub tokens_used: u64,
    /// Tokens in the current context.
    pub context_used: u64,
    /// The model's context window, if known.
    pub context_window: Option<u64>,
    /// The session's id (shown shortened).
    pub session_id: String,
    /// The audit log's state.
    pub audit: AuditState,
    /// A hint at the end (`shift+tab mode · /help`).
    pub hint: String,
}

/// The hint shown when nothing else is to be said.
pub const DEFAULT_HINT: &str = "shift+tab mode · /help";

/// `d` as `12s`, `4m`, `2h`, `3d`.
fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

impl StatusLine {
    /// The parts of the line in order, each with how long it stays when
    /// the line is too narrow (higher stays longer).
    fn parts(&self) -> Vec<(u8, Vec<Span<'static>>)> {
        let place = match &self.place {
            ModelPlace::Embedded => "embedded".to_string(),
            ModelPlace::SelfHosted { host } => format!("self-hosted {}", clean_line(host)),
            ModelPlace::Cloud { vendor } => format!("cloud {}", clean_line(vendor)),
        };
        let context = match self.context_window {
            Some(w) => format!("ctx {}/{}", short_count(self.context_used), short_count(w)),
            None => format!("ctx {}", short_count(self.context_used)),
        };
        let session: String = clean_line(&self.session_id).chars().take(8).collect();
        let audit = match self.audit {
            AuditState::Recording { entries, since_checkpoint } => {
                let checkpoint = match since_checkpoint {
                    Some(d) => format!("checkpoint {} ago", age(d)),
                    None => "no checkpoint yet".to_string(),
                };
                (40, vec![Span::styled(format!("audit {} entries · {checkpoint}", thousands(entries)), theme::DIM)])
            }
            AuditState::NotVerifying => (
                100,
                vec![Span::styled("audit: NOT VERIFYING", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD))],
            ),
        };
        vec![
            (90, vec![Span::styled(clean_line(&self.model), Style::new().add_modifier(Modifier::BOLD))]),
            (70, vec![Span::raw(place)]),
            (100, vec![Span::styled(self.mode.name(), self.mode.style())]),
            (30, vec![Span::styled(format!("{} tokens", short_count(self.tokens_used)), theme::DIM)]),
            (60, vec![Span::raw(context)]),
            (20, vec![Span::styled(format!("session {session}"), theme::DIM)]),
            audit,
            (10, vec![Span::styled(clean_line(&self.hint), theme::DIM)]),
        ]
    }

    /// The status line for `width` columns.
    pub fn line(&self, columns: u16) -> Line<'static> {
        let columns = columns as usize;
        let sep = " · ";
        let mut parts = self.parts();
        parts.retain(|(_, spans)| spans.iter().any(|s| !s.content.is_empty()));
        let total = |parts: &[(u8, Vec<Span<'static>>)]| {
            parts.iter().map(|(_, s)| s.iter().map(|s| width(&s.content)).sum::<usize>()).sum::<usize>()
                + width(sep) * parts.len().saturating_sub(1)
        };
        while total(&parts) > columns {
            let Some(lowest) = parts.iter().enumerate().filter(|(_, (p, _))| *p < 100).min_by_key(|(_, (p, _))| *p)
            else {
                break;
            };
            let i = lowest.0;
            parts.remove(i);
        }
        let mut spans = Vec::new();
        for (i, (_, part)) in parts.into_iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(sep, theme::DIM));
            }
            spans.extend(part);
        }
        Line::from(truncate(&spans, columns))
    }
}

impl Widget for &StatusLine {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 {
            return;
        }
        buf.set_line(area.x, area.y, &self.line(area.width), area.width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::text::plain;

    fn status(audit: AuditState) -> StatusLine {
        StatusLine {
            model: "qwen3-coder-30b".into(),
            place: ModelPlace::SelfHosted { host: "gpu1:8080".into() },
            mode: PermissionMode::Plan,
            tokens_used: 45_100,
            context_used: 12_300,
            context_window: Some(128_000),
            session_id: "7f3a9c2e-1b44-4d0e".into(),
            audit,
            hint: DEFAULT_HINT.into(),
        }
    }

    #[test]
    fn everything_fits_on_a_wide_line() {
        let line =
            status(AuditState::Recording { entries: 1234, since_checkpoint: Some(Duration::from_secs(12)) }).line(200);
        assert_eq!(
            plain(&[line]),
            "qwen3-coder-30b · self-hosted gpu1:8080 · plan · 45.1k tokens · ctx 12.3k/128k · session 7f3a9c2e · audit 1,234 entries · checkpoint 12s ago · shift+tab mode · /help"
        );
    }

    #[test]
    fn the_mode_and_a_failing_audit_are_never_dropped() {
        for w in [20u16, 30, 40, 60, 80] {
            let shown = plain(&[status(AuditState::NotVerifying).line(w)]);
            assert!(unicode_width::UnicodeWidthStr::width(shown.as_str()) <= w as usize, "{w}: {shown}");
            assert!(shown.contains("plan"), "{w}: {shown}");
            if w >= 40 {
                assert!(shown.contains("audit: NOT VERIFYING"), "{w}: {shown}");
            }
        }
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age(Duration::from_secs(12)), "12s");
        assert_eq!(age(Duration::from_secs(125)), "2m");
        assert_eq!(age(Duration::from_secs(7_300)), "2h");
    }
}
