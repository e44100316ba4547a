//! The approval panel: for a command, an edit and another tool.

use airlock_tui::view::approval::{ApprovalAction, ApprovalPanel, ApprovalRequest, SessionGrant};
use airlock_tui::view::theme;
use insta::assert_snapshot;

use super::support::{draw, text};

pub fn command_request() -> ApprovalRequest {
    ApprovalRequest {
        action: ApprovalAction::Command {
            command: "cargo test --lib && rm -rf 'target dir'".into(),
            argv: vec![
                vec!["cargo".into(), "test".into(), "--lib".into()],
                vec!["rm".into(), "-rf".into(), "target dir".into()],
            ],
            cwd: Some("/home/ana/src/airlock".into()),
        },
        reason: "commands ask in mode ask (default policy)".into(),
        session: Some(SessionGrant::CommandPrefix("cargo test".into())),
        project: Some("commands starting with: cargo test".into()),
    }
}

fn edit_request() -> ApprovalRequest {
    ApprovalRequest {
        action: ApprovalAction::Edit {
            path: "src/lib.rs".into(),
            before: Some("pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n".into()),
            after: "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n".into(),
        },
        reason: "edits ask in mode ask (default policy)".into(),
        session: Some(SessionGrant::File("src/lib.rs".into())),
        project: None,
    }
}

#[test]
fn a_command_panel() {
    let panel = ApprovalPanel::new(command_request());
    let height = panel.height(70);
    let backend = draw(&panel, 70, height);
    assert_snapshot!("approval_command", text(backend.buffer()));
    // The border carries the panel's style, the title the title's.
    let buf = backend.buffer();
    assert_eq!(buf[(0, 0)].symbol(), "╭");
    assert_eq!(buf[(0, 0)].style().fg, theme::PANEL_BORDER.fg);
    assert_eq!(buf[(0, 1)].style().fg, theme::PANEL_BORDER.fg);
    let title_x = (0..70).find(|&x| buf[(x, 0)].symbol() == "a").unwrap();
    assert_eq!(buf[(title_x, 0)].style().bg, theme::PANEL_TITLE.bg);
}

#[test]
fn an_edit_panel() {
    let panel = ApprovalPanel::new(edit_request());
    let backend = draw(&panel, 60, panel.height(60));
    assert_snapshot!("approval_edit", text(backend.buffer()));
}

#[test]
fn another_tool_and_the_note_being_typed() {
    let request = ApprovalRequest {
        action: ApprovalAction::Tool {
            name: "fetch_url".into(),
            arguments: "{\n  \"url\": \"https://docs.rs/ratatui\"\n}".into(),
        },
        reason: "tool fetch_url asks (user policy ~/.config/airlock/policy.toml)".into(),
        session: Some(SessionGrant::Tool("fetch_url".into())),
        project: None,
    };
    let panel = ApprovalPanel { note: Some("read the local docs instead".into()), ..ApprovalPanel::new(request) };
    let backend = draw(&panel, 60, panel.height(60));
    assert_snapshot!("approval_tool_note", text(backend.buffer()));
}

#[test]
fn a_tall_request_scrolls_and_the_answers_stay() {
    let after: String = (1..=80).map(|i| format!("line {i}\n")).collect();
    let request = ApprovalRequest {
        action: ApprovalAction::Edit { path: "big.txt".into(), before: None, after },
        reason: "edits ask".into(),
        session: None,
        project: None,
    };
    let panel = ApprovalPanel { scroll: 10, ..ApprovalPanel::new(request) };
    let backend = draw(&panel, 50, 16);
    let shown = text(backend.buffer());
    assert_snapshot!("approval_scrolled", shown);
    assert!(shown.contains("y allow once") && shown.contains("d deny with a note"), "{shown}");
    assert!(shown.contains("10 lines above · 64 below"), "{shown}");
}

#[test]
fn the_digest_changes_with_what_is_shown() {
    let panel = ApprovalPanel::new(command_request());
    let digest = panel.shown_digest(70);
    assert_eq!(digest.len(), 64);
    assert_eq!(digest, ApprovalPanel::new(command_request()).shown_digest(70), "stable");
    let mut other = command_request();
    other.reason = "commands ask in mode ask (user policy)".into();
    assert_ne!(digest, ApprovalPanel::new(other).shown_digest(70));
    let text = panel.shown_text(70);
    assert!(text.starts_with("airlock asks\nRun this command\n"), "{text}");
    assert!(text.contains("[\"rm\", \"-rf\", \"target dir\"]"), "{text}");
}

#[test]
fn the_panel_in_colour() {
    let request = ApprovalRequest {
        action: ApprovalAction::Command { command: "ls".into(), argv: vec![vec!["ls".into()]], cwd: None },
        reason: "commands ask".into(),
        session: None,
        project: None,
    };
    let panel = ApprovalPanel::new(request);
    let backend = draw(&panel, 36, panel.height(36));
    assert_snapshot!("approval_styles", format!("{:?}", backend.buffer()));
}
