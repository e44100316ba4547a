//! The approval panel: what exactly will run, why airlock asks, and the
//! answers a person can give, drawn by the supervisor in the viewport.
//!
//! The panel must not be confusable with anything the model can print. Model
//! text is sanitised (no escape sequence can colour or move anything) and
//! drawn without borders and without background colours; the panel is a box
//! whose border and title carry [`theme::PANEL_BORDER`] and
//! [`theme::PANEL_TITLE`], styles no other view uses. A model that prints
//! `╭─ airlock asks ─╮` gets those characters in default colours, outside
//! the viewport, and never in the live area where the panel is drawn.
//!
//! [`ApprovalPanel::shown_digest`] is the SHA-256 of the panel's text as laid
//! out (title, request and answers, lines joined with `\n`), so that the
//! supervisor can record what the person saw when deciding.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Padding, Widget};
use sha2::{Digest, Sha256};

use super::diff::{diff_lines, diff_stats};
use super::text::{clean, clean_line, plain, truncate, wrap, wrap_columns};
use super::theme;

/// The panel's title.
pub const TITLE: &str = " airlock asks ";

/// What the person is asked to allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalAction {
    /// A command line.
    Command {
        /// The command line as it will run (`sh -c`).
        command: String,
        /// The simple commands it runs, each as its words after quote
        /// removal (the first is the program).
        argv: Vec<Vec<String>>,
        /// The folder it runs in, if worth showing.
        cwd: Option<String>,
    },
    /// A change to a file.
    Edit {
        /// The file.
        path: String,
        /// Its text now (None: the file is new).
        before: Option<String>,
        /// Its text after the change.
        after: String,
    },
    /// Any other tool call.
    Tool {
        /// The tool's name.
        name: String,
        /// Its arguments (JSON text, shown as given).
        arguments: String,
    },
}

/// What "allow for this session" (`a`) would allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionGrant {
    /// This exact command line.
    ExactCommand(String),
    /// Commands whose words start with these.
    CommandPrefix(String),
    /// Every call of this tool.
    Tool(String),
    /// Edits of this file.
    File(String),
}

impl SessionGrant {
    fn describe(&self) -> String {
        match self {
            SessionGrant::ExactCommand(c) => format!("this exact command: {}", clean_line(c)),
            SessionGrant::CommandPrefix(p) => format!("commands starting with: {}", clean_line(p)),
            SessionGrant::Tool(t) => format!("every {} call", clean_line(t)),
            SessionGrant::File(f) => format!("edits of {}", clean_line(f)),
        }
    }
}

/// A request for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// What will run.
    pub action: ApprovalAction,
    /// Why airlock asks: the rule and where it comes from
    /// (`commands ask (default policy)`).
    pub reason: String,
    /// What `a` allows for this session; None: `a` is not offered.
    pub session: Option<SessionGrant>,
    /// What `p` saves for this project in the user's configuration
    /// (`commands starting with: cargo test`); None: `p` is not offered
    /// (a managed policy may forbid it).
    pub project: Option<String>,
}

/// An answer to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalChoice {
    /// `y`: allow this call.
    Once,
    /// `a`: allow what [`ApprovalRequest::session`] names, for this session.
    Session,
    /// `p`: allow what [`ApprovalRequest::project`] names, for this project.
    Project,
    /// `n`: deny.
    Deny,
    /// `d`: deny, with a note for the model (typed next).
    DenyWithNote,
}

impl ApprovalRequest {
    /// The answer `key` gives, if the panel offers it.
    pub fn choice_for_key(&self, key: char) -> Option<ApprovalChoice> {
        match key {
            'y' => Some(ApprovalChoice::Once),
            'a' if self.session.is_some() => Some(ApprovalChoice::Session),
            'p' if self.project.is_some() => Some(ApprovalChoice::Project),
            'n' => Some(ApprovalChoice::Deny),
            'd' => Some(ApprovalChoice::DenyWithNote),
            _ => None,
        }
    }
}

/// The panel as drawn: a request, and the note being typed after `d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPanel {
    /// The request.
    pub request: ApprovalRequest,
    /// The note being typed (Some after `d`, until Enter or Esc).
    pub note: Option<String>,
    /// Lines of the request scrolled past (when it is taller than the viewport).
    pub scroll: usize,
}

/// Columns the border and padding take.
const FRAME: usize = 4;

impl ApprovalPanel {
    /// A panel for `request`, scrolled to the top.
    pub fn new(request: ApprovalRequest) -> ApprovalPanel {
        ApprovalPanel { request, note: None, scroll: 0 }
    }

    /// What will run and why, laid out for the inside of a panel `width`
    /// columns wide.
    pub fn body(&self, width: u16) -> Vec<Line<'static>> {
        let inner = (width as usize).saturating_sub(FRAME).max(1);
        let label = |s: &str| Span::styled(s.to_string(), theme::PANEL_LABEL);
        let mut out = Vec::new();
        match &self.request.action {
            ApprovalAction::Command { command, argv, cwd } => {
                out.push(Line::from(label("Run this command")));
                for line in clean(command).split('\n') {
                    out.extend(wrap_columns(
                        &[Span::raw(line.to_string())],
                        inner,
                        &[Span::raw("  ")],
                        &[Span::raw("  ")],
                    ));
                }
                out.push(Line::from(label("argv")));
                if argv.is_empty() {
                    out.push(Line::from(Span::styled("  (not parsed: it runs as written, with sh -c)", theme::DIM)));
                }
                for (i, words) in argv.iter().enumerate() {
                    let quoted: Vec<String> = words.iter().map(|w| quote(w)).collect();
                    let list = format!("[{}]", quoted.join(", "));
                    let number = format!("  {}. ", i + 1);
                    let pad = " ".repeat(number.len());
                    out.extend(wrap(&[Span::raw(list)], inner, &[Span::raw(number)], &[Span::raw(pad)]));
                }
                if let Some(cwd) = cwd {
                    out.extend(wrap(&[label("in "), Span::raw(clean_line(cwd))], inner, &[], &[Span::raw("  ")]));
                }
            }
            ApprovalAction::Edit { path, before, after } => {
                let (added, removed) = diff_stats(before.as_deref().unwrap_or(""), after);
                let (verb, stats) = match before {
                    None => ("Create ", format!(" (+{added})")),
                    Some(_) => ("Edit ", format!(" (+{added} -{removed})")),
                };
                let header = [label(verb), Span::raw(clean_line(path)), Span::styled(stats, theme::DIM)];
                out.extend(wrap(&header, inner, &[], &[Span::raw("  ")]));
                out.extend(diff_lines(before.as_deref().unwrap_or(""), after, inner as u16, None));
            }
            ApprovalAction::Tool { name, arguments } => {
                out.push(Line::from(vec![label("Use the tool "), Span::raw(clean_line(name))]));
                for line in clean(arguments).split('\n') {
                    out.extend(wrap_columns(
                        &[Span::raw(line.to_string())],
                        inner,
                        &[Span::raw("  ")],
                        &[Span::raw("  ")],
                    ));
                }
            }
        }
        out.push(Line::default());
        out.extend(wrap(
            &[label("why "), Span::raw(clean_line(&self.request.reason))],
            inner,
            &[],
            &[Span::raw("    ")],
        ));
        out
    }

    /// The answers offered, with their keys (or, after `d`, the note being typed).
    pub fn answers(&self, width: u16) -> Vec<Line<'static>> {
        let inner = (width as usize).saturating_sub(FRAME).max(1);
        let key = |k: &str| Span::styled(format!("{k} "), theme::PANEL_KEY);
        let mut out = Vec::new();
        if let Some(note) = &self.note {
            let spans = [
                Span::styled("note for the model: ", theme::PANEL_LABEL),
                Span::raw(clean_line(note)),
                Span::styled("▏", theme::PANEL_KEY),
            ];
            out.extend(wrap(&spans, inner, &[], &[]));
            out.push(Line::from(vec![
                key("enter"),
                Span::raw("deny with this note   "),
                key("esc"),
                Span::raw("back"),
            ]));
            return out;
        }
        let mut option = |k: &str, text: String| {
            out.extend(wrap(&[key(k), Span::raw(text)], inner, &[], &[Span::raw("  ")]));
        };
        option("y", "allow once".to_string());
        if let Some(grant) = &self.request.session {
            option("a", format!("allow for this session: {}", grant.describe()));
        }
        if let Some(rule) = &self.request.project {
            option("p", format!("allow for this project: {} (saved in your user configuration)", clean_line(rule)));
        }
        option("n", "deny".to_string());
        option("d", "deny with a note for the model".to_string());
        out
    }

    /// The text the panel shows at `width`: its title, the request and the
    /// answers, lines joined with `\n` (the note being typed is not part of
    /// it: the note is recorded as itself).
    pub fn shown_text(&self, width: u16) -> String {
        let panel = ApprovalPanel { note: None, scroll: 0, ..self.clone() };
        let mut lines = vec![Line::from(TITLE.trim())];
        lines.extend(panel.body(width));
        lines.push(Line::default());
        lines.extend(panel.answers(width));
        plain(&lines)
    }

    /// The SHA-256 (hex) of [`ApprovalPanel::shown_text`].
    pub fn shown_digest(&self, width: u16) -> String {
        hex::encode(Sha256::digest(self.shown_text(width).as_bytes()))
    }

    /// Rows the whole panel takes at `width` (the app gives it at most what
    /// the screen has; the request then scrolls and the answers stay).
    pub fn height(&self, width: u16) -> u16 {
        let rows = self.body(width).len() + 1 + self.answers(width).len() + 2;
        u16::try_from(rows).unwrap_or(u16::MAX)
    }
}

/// A word as a quoted string, so that spaces and empty words show.
fn quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in clean_line(word).chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Which lines of the request a panel of some height shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// Rows for the request (its lines, the scroll line, padding).
    rows: usize,
    /// The first line shown.
    start: usize,
    /// How many lines are shown.
    count: usize,
    /// Whether lines are hidden (then a line says how many).
    clipped: bool,
    /// Rows for the answers.
    answer_rows: usize,
}

/// The window on a request of `body` lines, with `answers` lines of answers
/// below it, in a panel of `height` rows (borders included), scrolled by
/// `scroll`: the answers always show, and the request gets what is left
/// less one blank row before the answers.
fn window(body: usize, answers: usize, height: u16, scroll: usize) -> Window {
    let rows = (height as usize).saturating_sub(2);
    let answer_rows = answers.min(rows);
    let body_rows = rows - answer_rows;
    let room = body_rows.saturating_sub(1);
    let clipped = body > room;
    let count = if clipped { room.saturating_sub(1) } else { body };
    let start = scroll.min(body - count);
    Window { rows: body_rows, start, count, clipped, answer_rows }
}

impl ApprovalPanel {
    /// How far the request can scroll in a panel `width` × `height`.
    pub fn max_scroll(&self, width: u16, height: u16) -> usize {
        let body = self.body(width).len();
        let w = window(body, self.answers(width).len(), height, usize::MAX);
        w.start
    }

    /// Scrolls the request by `lines` (negative: up), within what it has.
    pub fn scroll_by(&mut self, lines: isize, width: u16, height: u16) {
        let max = self.max_scroll(width, height);
        self.scroll = self.scroll.min(max).saturating_add_signed(lines).min(max);
    }
}

impl Widget for &ApprovalPanel {
    fn render(self, area: Rect, buf: &mut Buffer) {
        Clear.render(area, buf);
        let block = Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(theme::PANEL_BORDER)
            .title(Line::from(Span::styled(TITLE, theme::PANEL_TITLE)))
            .padding(Padding::horizontal(1));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.height == 0 || inner.width == 0 {
            return;
        }
        let answers = self.answers(area.width);
        let body = self.body(area.width);
        let w = window(body.len(), answers.len(), area.height, self.scroll);
        let mut shown: Vec<Line<'static>> = body[w.start..w.start + w.count].to_vec();
        if w.clipped && w.rows > 0 {
            let below = body.len() - w.start - w.count;
            shown.push(Line::from(Span::styled(
                format!("… {} lines above · {below} below (↑/↓ scroll)", w.start),
                theme::PANEL_KEY,
            )));
        }
        shown.resize(w.rows, Line::default());
        shown.extend(answers.into_iter().take(w.answer_rows));
        for (i, line) in shown.iter().enumerate() {
            let y = inner.y + i as u16;
            let spans = truncate(&line.spans, inner.width as usize);
            buf.set_line(inner.x, y, &Line::from(spans), inner.width);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> ApprovalRequest {
        ApprovalRequest {
            action: ApprovalAction::Command {
                command: "cargo test --lib".into(),
                argv: vec![vec!["cargo".into(), "test".into(), "--lib".into()]],
                cwd: None,
            },
            reason: "commands ask (default policy)".into(),
            session: Some(SessionGrant::CommandPrefix("cargo test".into())),
            project: None,
        }
    }

    #[test]
    fn keys_offer_only_what_is_shown() {
        let request = command();
        assert_eq!(request.choice_for_key('a'), Some(ApprovalChoice::Session));
        assert_eq!(request.choice_for_key('p'), None, "not offered");
        assert_eq!(request.choice_for_key('y'), Some(ApprovalChoice::Once));
        assert_eq!(request.choice_for_key('x'), None);
        let text = ApprovalPanel::new(request).shown_text(80);
        assert!(!text.contains("p allow"), "{text}");
        assert!(text.contains("a allow for this session: commands starting with: cargo test"), "{text}");
    }

    #[test]
    fn the_digest_is_of_the_text_shown() {
        let panel = ApprovalPanel::new(command());
        let text = panel.shown_text(80);
        assert_eq!(panel.shown_digest(80), hex::encode(Sha256::digest(text.as_bytes())));
        let mut other = command();
        other.action = ApprovalAction::Command {
            command: "cargo test --lib".into(),
            argv: vec![vec!["cargo".into(), "test".into(), "--lib ".into()]],
            cwd: None,
        };
        assert_ne!(ApprovalPanel::new(other).shown_digest(80), panel.shown_digest(80), "argv is part of it");
        let typing = ApprovalPanel { note: Some("no".into()), ..panel.clone() };
        assert_eq!(typing.shown_digest(80), panel.shown_digest(80), "the note is recorded as itself");
    }

    #[test]
    fn a_command_without_argv_says_so() {
        let mut request = command();
        request.action = ApprovalAction::Command { command: "case $x in a) ls;; esac".into(), argv: vec![], cwd: None };
        let text = ApprovalPanel::new(request).shown_text(80);
        assert!(text.contains("argv\n  (not parsed: it runs as written, with sh -c)"), "{text}");
    }

    #[test]
    fn the_window_keeps_the_answers_and_scrolls_the_request() {
        // 20 rows: 18 inside, 5 answers, 13 for the request (one blank).
        let w = window(100, 5, 20, 0);
        assert_eq!(w, Window { rows: 13, start: 0, count: 11, clipped: true, answer_rows: 5 });
        assert_eq!(window(100, 5, 20, 1000).start, 89, "the last line can be reached");
        let w = window(10, 5, 20, 3);
        assert_eq!((w.start, w.count, w.clipped), (0, 10, false), "nothing to scroll");
        let w = window(10, 5, 4, 0);
        assert_eq!((w.rows, w.count, w.answer_rows), (0, 0, 2), "answers first");
        let mut panel = ApprovalPanel::new(command());
        panel.scroll_by(5, 80, 40);
        assert_eq!(panel.scroll, 0);
        panel.scroll_by(5, 80, 10);
        assert_eq!(panel.scroll, panel.max_scroll(80, 10));
        assert!(panel.scroll > 0);
        panel.scroll_by(-100, 80, 10);
        assert_eq!(panel.scroll, 0);
    }

    #[test]
    fn words_are_quoted() {
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("x\"y\\"), "\"x\\\"y\\\\\"");
    }
}
