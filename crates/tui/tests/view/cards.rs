//! Tool cards and diffs as a person sees them.

use airlock_tui::view::card::{CardOptions, CommandExit, ToolCall, ToolCard, ToolOutcome};
use airlock_tui::view::diff::diff_lines;
use airlock_tui::view::theme;
use insta::assert_snapshot;

use super::support::snapshot_lines;

fn show(call: ToolCall, outcome: ToolOutcome, width: u16, options: CardOptions) -> String {
    snapshot_lines(&ToolCard { call, outcome }.lines(width, &options), width)
}

#[test]
fn one_line_cards() {
    let cards = [
        (ToolCall::Read { path: "src/main.rs".into() }, ToolOutcome::Done { count: Some(120) }),
        (ToolCall::List { path: "crates".into() }, ToolOutcome::Done { count: Some(14) }),
        (ToolCall::Glob { pattern: "**/*.rs".into(), path: Some("src".into()) }, ToolOutcome::Done { count: Some(1) }),
        (ToolCall::Search { pattern: "foo".into(), path: Some("src".into()) }, ToolOutcome::Done { count: Some(7) }),
        (ToolCall::Search { pattern: "TODO".into(), path: None }, ToolOutcome::Running),
        (
            ToolCall::Read { path: "missing.txt".into() },
            ToolOutcome::Failed { error: "no such file: missing.txt\nhint: x".into() },
        ),
        (
            ToolCall::Other { name: "fetch_docs".into(), arguments: "{\"crate\":\"ratatui\"}".into() },
            ToolOutcome::Done { count: None },
        ),
    ];
    let shown: Vec<String> =
        cards.into_iter().map(|(call, outcome)| show(call, outcome, 60, CardOptions::default())).collect();
    assert_snapshot!("one_line_cards", shown.join("\n"));
}

#[test]
fn an_edit_is_a_diff() {
    let before = "fn main() {\n    let x = 1;\n    let y = 2;\n    println!(\"{}\", x + y);\n}\n";
    let after = "fn main() {\n    let x = 1;\n    let y = 3;\n    println!(\"{}\", x * y);\n}\n";
    let call = ToolCall::Edit { path: "src/main.rs".into(), before: Some(before.into()), after: after.into() };
    let card = ToolCard { call, outcome: ToolOutcome::Done { count: None } };
    let lines = card.lines(60, &CardOptions::default());
    assert_snapshot!("edit_card", snapshot_lines(&lines, 60));
    // Removed lines red, added lines green (the sign's span).
    let signs: Vec<_> = lines.iter().filter_map(|l| l.spans.get(2)).map(|s| (s.content.to_string(), s.style)).collect();
    assert!(signs.contains(&("- ".to_string(), theme::REMOVED)), "{signs:?}");
    assert!(signs.contains(&("+ ".to_string(), theme::ADDED)), "{signs:?}");
}

#[test]
fn a_new_file_and_a_long_diff_fold() {
    let after: String = (1..=60).map(|i| format!("line {i}\n")).collect();
    let call = ToolCall::Edit { path: "notes.txt".into(), before: None, after };
    let options = CardOptions { diff_lines: 6, ..CardOptions::default() };
    assert_snapshot!("create_card_folded", show(call, ToolOutcome::Done { count: None }, 50, options));
}

#[test]
fn diff_hunks_are_separated() {
    let before: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    let after = before.replace("line 3\n", "line three\n").replace("line 25\n", "");
    assert_snapshot!("diff_two_hunks", snapshot_lines(&diff_lines(&before, &after, 40, None), 40));
}

fn output(n: usize) -> String {
    (1..=n).map(|i| format!("   Compiling crate-{i} v0.1.0\n")).collect()
}

#[test]
fn commands() {
    let run = |command: &str, outcome: ToolOutcome, options: CardOptions| {
        show(ToolCall::Command { command: command.into() }, outcome, 60, options)
    };
    let folded = CardOptions::default();
    let shown = [
        run("cargo build", ToolOutcome::Command { exit: CommandExit::Code(0), output: output(12) }, folded),
        run("cargo test", ToolOutcome::Command { exit: CommandExit::Code(101), output: output(3) }, folded),
        run("sleep 600", ToolOutcome::Command { exit: CommandExit::TimedOut, output: String::new() }, folded),
        run("yes", ToolOutcome::Command { exit: CommandExit::Signal(9), output: "y\n".into() }, folded),
        run(
            "rm -rf target",
            ToolOutcome::Denied { by: "you (uid 1000, /dev/pts/3)".into(), note: Some("use cargo clean".into()) },
            folded,
        ),
        run(
            "git push",
            ToolOutcome::Denied { by: "rule:command:git push (managed policy)".into(), note: None },
            folded,
        ),
        run("make", ToolOutcome::Running, folded),
        run(
            "cargo build --release --target x86_64-unknown-linux-musl --features embedded,llama --locked",
            ToolOutcome::Command { exit: CommandExit::Code(0), output: "done\n".into() },
            folded,
        ),
    ];
    assert_snapshot!("command_cards", shown.join("\n\n"));
    let expanded = CardOptions { expanded: true, ..CardOptions::default() };
    assert_snapshot!(
        "command_card_expanded",
        run("cargo build", ToolOutcome::Command { exit: CommandExit::Code(0), output: output(8) }, expanded)
    );
}

#[test]
fn tabs_in_output_are_expanded() {
    let shown = show(
        ToolCall::Command { command: "printf".into() },
        ToolOutcome::Command { exit: CommandExit::Code(0), output: "a\tb\n\tc\n".into() },
        40,
        CardOptions::default(),
    );
    assert!(!shown.contains('\t'));
    assert!(shown.contains("│ a   b") && shown.contains("│     c"), "{shown}");
}

#[test]
fn an_edit_in_colour() {
    let call =
        ToolCall::Edit { path: "a.rs".into(), before: Some("let x = 1;\n".into()), after: "let x = 2;\n".into() };
    let card = ToolCard { call, outcome: ToolOutcome::Done { count: None } };
    let buf = super::support::buffer_of_lines(&card.lines(24, &CardOptions::default()), 24);
    // The buffer's debug form lists each row and the styles of its cells.
    assert_snapshot!("edit_card_styles", format!("{buf:?}"));
}
