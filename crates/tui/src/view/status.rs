//! The status line: the model and where it runs, the permission mode,
//! tokens and context, the session and the audit log's state.
//!
//! When the line is too narrow, parts take shorter forms (the model's name
//! cut, `audit 1,234 ✓ 12s`) and the least important go (the hint, the
//! session id, the token count first); the mode and an audit log that is
//! not verifying always stay.

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

/// A part of the status line: how long it stays when the line is too
/// narrow (higher stays longer; 100 never goes) and its forms, longest first.
struct Part {
    importance: u8,
    forms: Vec<Span<'static>>,
}

fn part(importance: u8, style: Style, forms: Vec<String>) -> Part {
    Part { importance, forms: forms.into_iter().map(|f| Span::styled(f, style)).collect() }
}

/// Parts this important or less are extras, shown only where the main
/// parts leave room in their longest forms.
const EXTRA: u8 = 30;

/// `text` cut to `n` characters with `…`.
fn shortened(text: &str, n: usize) -> String {
    if text.chars().count() <= n { text.to_string() } else { text.chars().take(n - 1).chain(['…']).collect() }
}

impl StatusLine {
    /// The parts of the line in order.
    fn parts(&self) -> Vec<Part> {
        let place = match &self.place {
            ModelPlace::Embedded => vec!["embedded".to_string()],
            ModelPlace::SelfHosted { host } => {
                let host = clean_line(host);
                vec![format!("self-hosted {host}"), shortened(&host, 16)]
            }
            ModelPlace::Cloud { vendor } => vec![format!("cloud {}", clean_line(vendor))],
        };
        let context = match self.context_window {
            Some(w) => format!("ctx {}/{}", short_count(self.context_used), short_count(w)),
            None => format!("ctx {}", short_count(self.context_used)),
        };
        let session: String = clean_line(&self.session_id).chars().take(8).collect();
        let audit = match self.audit {
            AuditState::Recording { entries, since_checkpoint } => {
                let (long, short) = match since_checkpoint {
                    Some(d) => (format!("checkpoint {} ago", age(d)), format!("✓ {}", age(d))),
                    None => ("no checkpoint yet".to_string(), "no checkpoint".to_string()),
                };
                let entries = thousands(entries);
                part(
                    40,
                    theme::DIM,
                    vec![format!("audit {entries} entries · {long}"), format!("audit {entries} {short}")],
                )
            }
            AuditState::NotVerifying => part(
                100,
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                vec!["audit: NOT VERIFYING".to_string()],
            ),
        };
        let model = clean_line(&self.model);
        vec![
            part(90, Style::new().add_modifier(Modifier::BOLD), vec![model.clone(), shortened(&model, 16)]),
            part(70, Style::new(), place),
            part(100, self.mode.style(), vec![self.mode.name().to_string()]),
            part(30, theme::DIM, vec![format!("{} tokens", short_count(self.tokens_used))]),
            part(60, Style::new(), vec![context]),
            part(20, theme::DIM, vec![format!("session {session}")]),
            audit,
            part(10, theme::DIM, vec![clean_line(&self.hint)]),
        ]
    }

    /// The status line for `width` columns.
    pub fn line(&self, columns: u16) -> Line<'static> {
        let columns = columns as usize;
        let sep = " · ";
        let parts: Vec<Part> =
            self.parts().into_iter().filter(|p| p.forms.iter().all(|f| !f.content.is_empty())).collect();
        // The form each part is shown in (None: left out).
        let mut shown: Vec<Option<usize>> = vec![None; parts.len()];
        let total = |shown: &[Option<usize>]| {
            let widths: Vec<usize> =
                shown.iter().enumerate().filter_map(|(i, f)| f.map(|f| width(&parts[i].forms[f].content))).collect();
            widths.iter().sum::<usize>() + width(sep) * widths.len().saturating_sub(1)
        };
        let shortest = |i: usize| parts[i].forms.len() - 1;
        let mut by_importance: Vec<usize> = (0..parts.len()).collect();
        by_importance.sort_by_key(|&i| std::cmp::Reverse(parts[i].importance));
        // What must stay; then, most important first, the other main parts
        // in their short forms, then their long forms where they fit, then
        // the extras (tokens, session, hint) where they fit.
        for &i in &by_importance {
            if parts[i].importance >= 100 {
                shown[i] = Some(shortest(i));
            }
        }
        let fits_with = |shown: &[Option<usize>], i: usize, f: usize| {
            let mut trial = shown.to_vec();
            trial[i] = Some(f);
            total(&trial) <= columns
        };
        for &i in &by_importance {
            if parts[i].importance < 100 && parts[i].importance > EXTRA && fits_with(&shown, i, shortest(i)) {
                shown[i] = Some(shortest(i));
            }
        }
        for &i in &by_importance {
            if let Some(current) = shown[i] {
                shown[i] = Some((0..current).find(|&f| fits_with(&shown, i, f)).unwrap_or(current));
            }
        }
        for &i in &by_importance {
            if parts[i].importance <= EXTRA {
                shown[i] = (0..parts[i].forms.len()).find(|&f| fits_with(&shown, i, f));
            }
        }
        let mut spans = Vec::new();
        for (i, f) in shown.iter().enumerate() {
            if let Some(f) = f {
                if !spans.is_empty() {
                    spans.push(Span::styled(sep, theme::DIM));
                }
                spans.push(parts[i].forms[*f].clone());
            }
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
