//! Every view at every width from 1 column up: no panic, and no line wider
//! than the width it was laid out for (the scrollback and the viewport clip
//! or wrap what is wider, and either breaks the layout).

use airlock_tui::view::approval::{ApprovalAction, ApprovalPanel, ApprovalRequest, SessionGrant};
use airlock_tui::view::card::{CardOptions, CommandExit, ToolCall, ToolCard, ToolOutcome};
use airlock_tui::view::markdown::markdown;
use airlock_tui::view::status::{AuditState, ModelPlace, PermissionMode, StatusLine};
use ratatui::text::Line;

use super::support::draw;

const WIDE: &str = "世界 👋 ﷽ e\u{301} 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 a\tb";

fn cards() -> Vec<ToolCard> {
    let long = format!("src/{}/{WIDE}.rs", "very-long-folder-name/".repeat(4));
    vec![
        ToolCard { call: ToolCall::Read { path: long.clone() }, outcome: ToolOutcome::Done { count: Some(123_456) } },
        ToolCard {
            call: ToolCall::Search { pattern: WIDE.into(), path: Some(long.clone()) },
            outcome: ToolOutcome::Failed { error: WIDE.repeat(5) },
        },
        ToolCard {
            call: ToolCall::Edit {
                path: long.clone(),
                before: Some(format!("{WIDE}\nx\n")),
                after: format!("{WIDE}!\nx\n"),
            },
            outcome: ToolOutcome::Done { count: None },
        },
        ToolCard {
            call: ToolCall::Command { command: format!("echo {WIDE} && {long}") },
            outcome: ToolOutcome::Command { exit: CommandExit::Code(1), output: format!("{WIDE}\n").repeat(20) },
        },
        ToolCard {
            call: ToolCall::Command { command: "x".into() },
            outcome: ToolOutcome::Denied { by: long.clone(), note: Some(WIDE.repeat(3)) },
        },
        ToolCard { call: ToolCall::Other { name: WIDE.into(), arguments: long }, outcome: ToolOutcome::Running },
    ]
}

fn assert_fits(lines: &[Line<'_>], width: u16, what: &str) {
    for line in lines {
        assert!(line.width() <= (width as usize).max(1), "{what} at {width}: {line:?}");
    }
}

#[test]
fn cards_and_markdown_fit_every_width() {
    let text = format!(
        "# {WIDE}\n\n- {WIDE} `{WIDE}`\n  1. [{WIDE}](https://x.y/{WIDE})\n\n> {WIDE}\n\n```rust\nlet s = \"{WIDE}\";\n```\n\n| {WIDE} | b |\n|---|---|\n| c | {WIDE} |\n\n---\n"
    );
    for width in (1..=40).chain([79, 80, 120]) {
        for card in cards() {
            for expanded in [false, true] {
                let lines = card.lines(width, &CardOptions { expanded, ..CardOptions::default() });
                assert_fits(&lines, width, &format!("{:?}", card.call));
            }
        }
        assert_fits(&markdown(&text, width), width, "markdown");
    }
}

#[test]
fn the_panel_and_the_status_line_draw_in_any_area() {
    let request = ApprovalRequest {
        action: ApprovalAction::Command { command: WIDE.repeat(3), argv: vec![vec![WIDE.into(); 4]], cwd: None },
        reason: WIDE.into(),
        session: Some(SessionGrant::ExactCommand(WIDE.repeat(3))),
        project: Some(WIDE.into()),
    };
    let panel = ApprovalPanel::new(request);
    let status = StatusLine {
        model: WIDE.into(),
        place: ModelPlace::Cloud { vendor: WIDE.into() },
        mode: PermissionMode::Auto,
        tokens_used: u64::MAX,
        context_used: u64::MAX,
        context_window: Some(u64::MAX),
        session_id: WIDE.into(),
        audit: AuditState::Recording { entries: u64::MAX, since_checkpoint: None },
        hint: WIDE.into(),
    };
    for width in 1..=50 {
        for height in [1, 2, 3, 5, 12, 40] {
            draw(&panel, width, height);
        }
        assert_fits(&[status.line(width)], width, "status");
        draw(&status, width, 1);
        assert!(panel.height(width) >= 8);
        assert_eq!(panel.shown_digest(width).len(), 64);
    }
}
