//! The status line at three widths.

use std::time::Duration;

use airlock_tui::view::status::{AuditState, DEFAULT_HINT, ModelPlace, PermissionMode, StatusLine};
use insta::assert_snapshot;
use ratatui::style::Color;

use super::support::{draw, text};

fn status(place: ModelPlace, mode: PermissionMode, audit: AuditState) -> StatusLine {
    StatusLine {
        model: "qwen2.5-coder-7b-instruct".into(),
        place,
        mode,
        tokens_used: 48_213,
        context_used: 12_345,
        context_window: Some(128_000),
        session_id: "01JF3K9QZ8X7R2M4N6P8T0V2W4".into(),
        audit,
        hint: DEFAULT_HINT.into(),
    }
}

const RECORDING: AuditState = AuditState::Recording { entries: 1234, since_checkpoint: Some(Duration::from_secs(12)) };

#[test]
fn at_three_widths() {
    let lines = [
        status(ModelPlace::Embedded, PermissionMode::Ask, RECORDING),
        status(ModelPlace::SelfHosted { host: "gpu-box:8080".into() }, PermissionMode::Plan, RECORDING),
        status(ModelPlace::Cloud { vendor: "anthropic".into() }, PermissionMode::Auto, AuditState::NotVerifying),
        status(
            ModelPlace::Embedded,
            PermissionMode::Edits,
            AuditState::Recording { entries: 3, since_checkpoint: None },
        ),
    ];
    for width in [40u16, 80, 120] {
        let shown: Vec<String> = lines.iter().map(|s| text(draw(s, width, 1).buffer())).collect();
        assert_snapshot!(format!("status_{width}"), shown.join("\n"));
    }
}

#[test]
fn modes_are_coloured() {
    let auto = status(ModelPlace::Embedded, PermissionMode::Auto, RECORDING);
    let line = auto.line(120);
    let mode = line.spans.iter().find(|s| s.content == "auto").unwrap();
    assert_eq!(mode.style.fg, Some(Color::Red));
    let plan = status(ModelPlace::Embedded, PermissionMode::Plan, RECORDING).line(120);
    assert_eq!(plan.spans.iter().find(|s| s.content == "plan").unwrap().style.fg, Some(Color::Blue));
    let failing = status(ModelPlace::Embedded, PermissionMode::Ask, AuditState::NotVerifying).line(40);
    let audit = failing.spans.iter().find(|s| s.content.contains("NOT VERIFYING")).unwrap();
    assert_eq!(audit.style.fg, Some(Color::Red));
}
