//! The prompt driven by crossterm events as a terminal would send them.

use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::{Position, Rect};

use super::*;

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn with(code: KeyCode, modifiers: KeyModifiers) -> Event {
    Event::Key(KeyEvent::new(code, modifiers))
}

fn ctrl(c: char) -> Event {
    with(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn alt(c: char) -> Event {
    with(KeyCode::Char(c), KeyModifiers::ALT)
}

fn typed(prompt: &mut Prompt, text: &str) {
    for c in text.chars() {
        let event = if c == '\n' { with(KeyCode::Enter, KeyModifiers::SHIFT) } else { key(KeyCode::Char(c)) };
        prompt.handle(&event);
    }
}

fn enter(prompt: &mut Prompt) -> PromptAction {
    prompt.handle(&key(KeyCode::Enter))
}

/// The prompt drawn `width` × its own height, as text rows.
fn screen(prompt: &Prompt, width: u16) -> String {
    let height = prompt.height(width);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| {
            let area = frame.area();
            frame.render_widget(prompt, area);
            if let Some(position) = prompt.cursor_position(area) {
                frame.set_cursor_position(position);
            }
        })
        .unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        let mut x = 0;
        while x < buffer.area.width {
            let symbol = buffer[(x, y)].symbol();
            line.push_str(symbol);
            // A wide character hides the cell after it.
            x += ratatui::buffer::CellWidth::cell_width(symbol).max(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn cursor_at(prompt: &Prompt, width: u16) -> Position {
    let area = Rect::new(0, 0, width, prompt.height(width));
    prompt.cursor_position(area).unwrap()
}

#[test]
fn typing_and_enter_submits_and_empties() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "fix the bug");
    assert_eq!(prompt.text(), "fix the bug");
    assert_eq!(enter(&mut prompt), PromptAction::Submit("fix the bug".into()));
    assert!(prompt.is_empty());
    assert_eq!(prompt.history(), ["fix the bug"]);
    // An empty prompt sends nothing.
    assert_eq!(enter(&mut prompt), PromptAction::None);
    typed(&mut prompt, "   ");
    assert_eq!(enter(&mut prompt), PromptAction::None);
}

#[test]
fn every_newline_key_inserts_a_newline_and_enter_sends_all_lines() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "a");
    prompt.handle(&with(KeyCode::Enter, KeyModifiers::SHIFT));
    typed(&mut prompt, "b");
    prompt.handle(&with(KeyCode::Enter, KeyModifiers::ALT));
    typed(&mut prompt, "c");
    prompt.handle(&ctrl('j'));
    typed(&mut prompt, "d\\");
    assert_eq!(enter(&mut prompt), PromptAction::Redraw);
    typed(&mut prompt, "e");
    assert_eq!(prompt.text(), "a\nb\nc\nd\ne");
    assert_eq!(enter(&mut prompt), PromptAction::Submit("a\nb\nc\nd\ne".into()));
}

#[test]
fn key_releases_are_ignored() {
    let mut prompt = Prompt::new();
    let mut release = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(prompt.handle(&Event::Key(release)), PromptAction::None);
    assert!(prompt.is_empty());
}

#[test]
fn motions_and_kills_edit_where_readline_would() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "one two three");
    prompt.handle(&alt('b'));
    assert_eq!(prompt.cursor(), 8);
    prompt.handle(&alt('b'));
    assert_eq!(prompt.cursor(), 4);
    prompt.handle(&alt('f'));
    assert_eq!(prompt.cursor(), 7);
    prompt.handle(&ctrl('k'));
    assert_eq!(prompt.text(), "one two");
    prompt.handle(&ctrl('a'));
    assert_eq!(prompt.cursor(), 0);
    prompt.handle(&ctrl('y'));
    assert_eq!(prompt.text(), " threeone two");
    prompt.handle(&ctrl('e'));
    prompt.handle(&ctrl('w'));
    assert_eq!(prompt.text(), " threeone ");
    prompt.handle(&ctrl('u'));
    assert!(prompt.is_empty());
    typed(&mut prompt, "ab");
    prompt.handle(&key(KeyCode::Left));
    prompt.handle(&key(KeyCode::Backspace));
    assert_eq!(prompt.text(), "b");
    prompt.handle(&key(KeyCode::Delete));
    assert!(prompt.is_empty());
}

#[test]
fn home_and_end_work_on_the_current_line() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "first\nsecond");
    prompt.handle(&key(KeyCode::Home));
    assert_eq!(prompt.cursor(), 6);
    prompt.handle(&key(KeyCode::Left));
    prompt.handle(&key(KeyCode::Home));
    assert_eq!(prompt.cursor(), 0);
    prompt.handle(&key(KeyCode::End));
    assert_eq!(prompt.cursor(), 5);
    // Ctrl-K at a line's end joins the next line.
    prompt.handle(&ctrl('k'));
    assert_eq!(prompt.text(), "firstsecond");
}

#[test]
fn up_and_down_move_between_lines_before_walking_history() {
    let mut prompt = Prompt::new();
    prompt.load_history(vec!["older".to_string(), "newest".to_string()]);
    typed(&mut prompt, "abc\ndefgh");
    prompt.handle(&key(KeyCode::Up));
    // Column 5 does not exist on "abc": the end of that line.
    assert_eq!(prompt.cursor(), 3);
    prompt.handle(&key(KeyCode::Down));
    assert_eq!(prompt.cursor(), 9, "the column aimed for is kept");
    prompt.handle(&key(KeyCode::Up));
    assert_eq!(prompt.handle(&key(KeyCode::Up)), PromptAction::Redraw);
    assert_eq!(prompt.text(), "newest");
    prompt.handle(&key(KeyCode::Up));
    assert_eq!(prompt.text(), "older");
    assert_eq!(prompt.handle(&key(KeyCode::Up)), PromptAction::None);
    prompt.handle(&key(KeyCode::Down));
    assert_eq!(prompt.text(), "newest");
    prompt.handle(&key(KeyCode::Down));
    assert_eq!(prompt.text(), "abc\ndefgh", "the draft comes back");
}

#[test]
fn up_moves_within_a_wrapped_line_at_the_drawn_width() {
    let mut prompt = Prompt::new();
    prompt.load_history(vec!["old".to_string()]);
    typed(&mut prompt, "aaaa bbbb cccc");
    // 10 columns: 8 for text after the prefix, so three rows.
    assert_eq!(prompt.height(10), 3);
    prompt.handle(&key(KeyCode::Up));
    assert_eq!(prompt.text(), "aaaa bbbb cccc");
    assert_eq!(prompt.cursor(), 9);
    prompt.handle(&key(KeyCode::Up));
    prompt.handle(&key(KeyCode::Up));
    assert_eq!(prompt.text(), "old");
}

#[test]
fn history_survives_a_save_and_load() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "first");
    enter(&mut prompt);
    typed(&mut prompt, "two\nlines");
    enter(&mut prompt);
    let saved = encode_history(prompt.history());

    let mut next = Prompt::new();
    next.load_history(decode_history(&saved));
    assert_eq!(next.history(), ["first", "two\nlines"]);
    next.handle(&key(KeyCode::Up));
    assert_eq!(next.text(), "two\nlines");
}

#[test]
fn loaded_history_is_sanitised_and_capped() {
    let mut prompt = Prompt::new();
    let mut entries: Vec<String> = (0..HISTORY_CAP + 10).map(|i| format!("p{i}")).collect();
    entries.push("evil\x1b]52;c;aGk=\x07".to_string());
    prompt.load_history(entries);
    assert_eq!(prompt.history().len(), HISTORY_CAP);
    assert_eq!(prompt.history().last().map(String::as_str), Some("evil\u{FFFD}]52;c;aGk=\u{FFFD}"));
}

fn searchable() -> Prompt {
    let mut prompt = Prompt::new();
    prompt.load_history(["cargo build", "git status", "cargo test -p airlock-tui", "ls"].iter().map(|s| s.to_string()));
    prompt
}

#[test]
fn ctrl_r_finds_newest_match_then_older_ones_and_enter_accepts() {
    let mut prompt = searchable();
    typed(&mut prompt, "draft");
    prompt.handle(&ctrl('r'));
    typed(&mut prompt, "car");
    assert_eq!(screen(&prompt, 50), "› (search) 'car': cargo test -p airlock-tui\n");
    prompt.handle(&ctrl('r'));
    assert_eq!(screen(&prompt, 50), "› (search) 'car': cargo build\n");
    // No older match: the last one stays.
    prompt.handle(&ctrl('r'));
    assert_eq!(screen(&prompt, 50), "› (search) 'car': cargo build\n");
    assert_eq!(cursor_at(&prompt, 50), Position::new(15, 0), "the cursor follows the query");
    assert_eq!(enter(&mut prompt), PromptAction::Redraw, "Enter puts the match in the editor");
    assert_eq!(prompt.text(), "cargo build");
    assert_eq!(enter(&mut prompt), PromptAction::Submit("cargo build".into()));
}

#[test]
fn ctrl_r_esc_restores_the_draft_and_a_miss_says_so() {
    let mut prompt = searchable();
    typed(&mut prompt, "draft");
    prompt.handle(&ctrl('r'));
    typed(&mut prompt, "zzz");
    assert_eq!(screen(&prompt, 50), "› (failed search) 'zzz':\n");
    prompt.handle(&key(KeyCode::Backspace));
    prompt.handle(&key(KeyCode::Backspace));
    prompt.handle(&key(KeyCode::Backspace));
    typed(&mut prompt, "st");
    assert_eq!(screen(&prompt, 50), "› (search) 'st': cargo test -p airlock-tui\n");
    assert_eq!(prompt.handle(&key(KeyCode::Esc)), PromptAction::Redraw, "Esc cancels the search, not the turn");
    assert_eq!(prompt.text(), "draft");
}

#[test]
fn a_large_paste_is_collapsed_and_sent_whole() {
    let mut prompt = Prompt::new();
    let big: String = (0..80).map(|i| format!("line {i:02} of the log\n")).collect();
    typed(&mut prompt, "explain ");
    prompt.handle(&Event::Paste(big.clone()));
    typed(&mut prompt, " please");
    assert_eq!(screen(&prompt, 60), "› explain [pasted 1,520 chars, 80 lines] please\n");
    assert_eq!(prompt.text().chars().count(), "explain  please".len() + 1);
    // The placeholder is one step for the cursor and for Backspace.
    for _ in 0.." please".len() {
        prompt.handle(&key(KeyCode::Left));
    }
    prompt.handle(&key(KeyCode::Left));
    assert_eq!(prompt.cursor(), "explain ".len());
    assert_eq!(prompt.handle(&enter_event()), PromptAction::Submit(format!("explain {big} please")));
}

fn enter_event() -> Event {
    key(KeyCode::Enter)
}

#[test]
fn backspace_removes_a_collapsed_paste_whole() {
    let mut prompt = Prompt::new();
    prompt.handle(&Event::Paste("x".repeat(PASTE_COLLAPSE_CHARS + 1)));
    assert_eq!(screen(&prompt, 40), "› [pasted 1,001 chars, 1 line]\n");
    prompt.handle(&key(KeyCode::Backspace));
    assert!(prompt.is_empty());
    assert_eq!(enter(&mut prompt), PromptAction::None);
}

#[test]
fn a_killed_paste_can_be_yanked_back() {
    let mut prompt = Prompt::new();
    let big = "y\n".repeat(PASTE_COLLAPSE_LINES + 1);
    prompt.handle(&Event::Paste(big.clone()));
    prompt.handle(&ctrl('c'));
    assert!(prompt.is_empty());
    prompt.handle(&ctrl('y'));
    assert_eq!(enter(&mut prompt), PromptAction::Submit(big.trim_end().to_string()));
}

#[test]
fn a_small_paste_is_inserted_as_text_with_newlines_normalised() {
    let mut prompt = Prompt::new();
    prompt.handle(&Event::Paste("one\r\ntwo\rthree\tfour".into()));
    assert_eq!(prompt.text(), "one\ntwo\nthree\tfour");
    assert_eq!(screen(&prompt, 30), "› one\n  two\n  three    four\n");
}

#[test]
fn escape_sequences_in_a_paste_never_reach_the_screen() {
    let mut prompt = Prompt::new();
    let hostile = "ok\x1b]52;c;aGk=\x07\x1b[2J\u{9b}31m\u{202e}evil\u{F0000}";
    prompt.handle(&Event::Paste(hostile.into()));
    let text = prompt.text().to_string();
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(!text.contains('\u{202e}'));
    // A private-use marker from outside is no paste placeholder.
    assert!(!text.contains('\u{F0000}'));
    let shown = screen(&prompt, 60);
    assert!(!shown.contains('\x1b') && !shown.contains('\u{9b}'), "{shown:?}");
    assert_eq!(
        enter(&mut prompt),
        PromptAction::Submit("ok\u{FFFD}]52;c;aGk=\u{FFFD}\u{FFFD}[2J\u{FFFD}31m\u{FFFD}evil\u{FFFD}".into())
    );
}

#[test]
fn large_hostile_paste_is_sanitised_before_it_is_kept() {
    let mut prompt = Prompt::new();
    let hostile = "\x1b[31mred\n".repeat(20);
    prompt.handle(&Event::Paste(hostile));
    let PromptAction::Submit(sent) = enter(&mut prompt) else { panic!("not submitted") };
    assert!(!sent.contains('\x1b'));
    assert_eq!(sent.lines().count(), 20);
}

fn fake_files(partial: &str) -> Vec<String> {
    ["src/", "src/main.rs", "src/lib.rs", "README.md"]
        .iter()
        .filter(|p| p.starts_with(partial))
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn at_path_offers_candidates_and_tab_accepts() {
    let mut prompt = Prompt::new();
    prompt.set_path_completer(fake_files);
    typed(&mut prompt, "look at @sr");
    assert_eq!(screen(&prompt, 30), "› @src/\n  @src/main.rs\n  @src/lib.rs\n› look at @sr\n");
    prompt.handle(&key(KeyCode::Tab));
    // A directory keeps completing inside it.
    assert_eq!(prompt.text(), "look at @src/");
    assert_eq!(screen(&prompt, 30), "› @src/main.rs\n  @src/lib.rs\n› look at @src/\n");
    prompt.handle(&key(KeyCode::Down));
    prompt.handle(&key(KeyCode::Tab));
    assert_eq!(prompt.text(), "look at @src/lib.rs ");
    assert_eq!(prompt.height(30), 1, "the popup closed");
    typed(&mut prompt, "now");
    assert_eq!(enter(&mut prompt), PromptAction::Submit("look at @src/lib.rs now".into()));
}

#[test]
fn enter_accepts_a_path_without_sending_and_esc_dismisses() {
    let mut prompt = Prompt::new();
    prompt.set_path_completer(fake_files);
    typed(&mut prompt, "@READ");
    assert_eq!(enter(&mut prompt), PromptAction::Redraw);
    assert_eq!(prompt.text(), "@README.md ");
    typed(&mut prompt, "@s");
    assert_eq!(prompt.height(30), 4);
    assert_eq!(prompt.handle(&key(KeyCode::Esc)), PromptAction::Redraw, "Esc closes the popup first");
    assert_eq!(prompt.height(30), 1);
    assert_eq!(prompt.handle(&key(KeyCode::Esc)), PromptAction::Interrupt);
    // Tab brings it back.
    prompt.handle(&key(KeyCode::Tab));
    assert_eq!(prompt.height(30), 4);
}

#[test]
fn completion_candidates_are_sanitised() {
    let mut prompt = Prompt::new();
    prompt.set_path_completer(|_: &str| vec!["bad\x1b[2Jname".to_string()]);
    typed(&mut prompt, "@b");
    assert!(!screen(&prompt, 30).contains('\x1b'));
    prompt.handle(&key(KeyCode::Tab));
    assert_eq!(prompt.text(), "@bad\u{FFFD}[2Jname ");
}

#[test]
fn default_completer_lists_the_workspace_honouring_gitignore() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for path in ["src/main.rs", "src/lib.rs", "target/debug/main", "notes/ignored.txt", ".hidden/main.rs"] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x").unwrap();
    }
    std::fs::write(root.join(".gitignore"), "target/\n*.txt\n").unwrap();
    let files = WorkspaceFiles::new(root);
    files.wait_until_listed();
    assert_eq!(files.complete("main"), ["src/main.rs"]);
    assert_eq!(files.complete(""), ["notes/", "src/"]);
    assert_eq!(files.complete("src/"), ["src/", "src/lib.rs", "src/main.rs"]);

    let mut prompt = Prompt::new();
    prompt.set_path_completer(files.clone());
    typed(&mut prompt, "@ma");
    prompt.handle(&key(KeyCode::Tab));
    assert_eq!(prompt.text(), "@src/main.rs ");

    std::fs::write(root.join("src/new.rs"), "x").unwrap();
    files.refresh();
    files.wait_until_listed();
    assert_eq!(files.complete("new"), ["src/new.rs"]);
}

#[test]
fn slash_offers_commands_and_enter_runs_the_chosen_one() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "/re");
    assert_eq!(
        screen(&prompt, 70),
        "› /rewind  undo turns: restore files and the conversation\n  \
         /report  write the evidence report\n  \
         /resume  resume an earlier session\n\
         › /re\n"
    );
    prompt.handle(&key(KeyCode::Down));
    assert_eq!(enter(&mut prompt), PromptAction::Submit("/report".into()));
    assert_eq!(prompt.history(), ["/report"]);
}

#[test]
fn slash_completion_only_at_the_start_and_tab_completes_the_name() {
    let mut prompt = Prompt::new();
    prompt.set_commands(vec![SlashCommand::new("mode", "set the mode"), SlashCommand::new("model", "model")]);
    typed(&mut prompt, "use /mo");
    assert_eq!(prompt.height(40), 1, "not at the start: no popup");
    prompt.handle(&ctrl('u'));
    typed(&mut prompt, "/mode");
    assert_eq!(prompt.height(40), 3);
    prompt.handle(&key(KeyCode::Tab));
    assert_eq!(prompt.text(), "/mode ");
    typed(&mut prompt, "plan");
    assert_eq!(enter(&mut prompt), PromptAction::Submit("/mode plan".into()));
}

#[test]
fn ctrl_c_clears_then_twice_within_a_second_exits() {
    let mut prompt = Prompt::new();
    let t0 = Instant::now();
    typed(&mut prompt, "half a thought");
    assert_eq!(prompt.handle_at(&ctrl('c'), t0), PromptAction::Redraw);
    assert!(prompt.is_empty());
    assert!(!prompt.exit_armed(), "clearing the line does not arm exit");
    assert_eq!(prompt.handle_at(&ctrl('c'), t0), PromptAction::Interrupt);
    assert!(prompt.exit_armed());
    assert_eq!(screen(&prompt, 40), "  Press Ctrl-C again to exit\n›\n");
    assert_eq!(prompt.handle_at(&ctrl('c'), t0 + Duration::from_millis(500)), PromptAction::Exit);
}

#[test]
fn a_slow_second_ctrl_c_or_another_key_does_not_exit() {
    let mut prompt = Prompt::new();
    let t0 = Instant::now();
    prompt.handle_at(&ctrl('c'), t0);
    assert_eq!(prompt.handle_at(&ctrl('c'), t0 + Duration::from_millis(1500)), PromptAction::Interrupt);
    assert_eq!(prompt.handle_at(&key(KeyCode::Left), t0 + Duration::from_millis(1600)), PromptAction::Redraw);
    assert!(!prompt.exit_armed());
    assert_eq!(prompt.handle_at(&ctrl('c'), t0 + Duration::from_millis(1700)), PromptAction::Interrupt);
    assert!(!prompt.expire_exit_hint(t0 + Duration::from_millis(1800)));
    assert!(prompt.expire_exit_hint(t0 + Duration::from_millis(3000)));
    assert_eq!(prompt.height(40), 1);
}

#[test]
fn shift_tab_cycles_the_mode_whatever_is_open() {
    let mut prompt = Prompt::new();
    assert_eq!(prompt.handle(&with(KeyCode::BackTab, KeyModifiers::SHIFT)), PromptAction::CycleMode);
    assert_eq!(prompt.handle(&with(KeyCode::Tab, KeyModifiers::SHIFT)), PromptAction::CycleMode);
    typed(&mut prompt, "/");
    assert_eq!(prompt.handle(&key(KeyCode::BackTab)), PromptAction::CycleMode);
    assert_eq!(prompt.text(), "/");
}

#[test]
fn esc_with_nothing_open_interrupts() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "keep me");
    assert_eq!(prompt.handle(&key(KeyCode::Esc)), PromptAction::Interrupt);
    assert_eq!(prompt.text(), "keep me");
}

#[test]
fn wide_characters_place_the_cursor_by_columns() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "日本語");
    assert_eq!(cursor_at(&prompt, 20), Position::new(2 + 6, 0));
    prompt.handle(&key(KeyCode::Left));
    assert_eq!(cursor_at(&prompt, 20), Position::new(2 + 4, 0));
    prompt.handle(&key(KeyCode::End));
    typed(&mut prompt, "👩‍💻x");
    // The emoji sequence is one grapheme, two columns wide.
    assert_eq!(cursor_at(&prompt, 20), Position::new(2 + 6 + 2 + 1, 0));
    prompt.handle(&key(KeyCode::Left));
    prompt.handle(&key(KeyCode::Left));
    assert_eq!(cursor_at(&prompt, 20), Position::new(2 + 6, 0));
    prompt.handle(&key(KeyCode::Backspace));
    assert_eq!(prompt.text(), "日本👩‍💻x");
}

#[test]
fn wide_characters_wrap_whole() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "日本語");
    // Seven columns leave five for text: two characters fit, the third wraps.
    assert_eq!(screen(&prompt, 7), "› 日本\n  語\n");
    assert_eq!(cursor_at(&prompt, 7), Position::new(4, 1));
}

#[test]
fn a_full_row_puts_the_cursor_on_the_next_row() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "abcd");
    assert_eq!(prompt.height(6), 2);
    assert_eq!(cursor_at(&prompt, 6), Position::new(2, 1));
}

#[test]
fn tall_text_scrolls_within_the_maximum_height() {
    let mut prompt = Prompt::new();
    prompt.set_max_height(3);
    typed(&mut prompt, "1\n2\n3\n4\n5");
    assert_eq!(prompt.height(20), 3);
    assert_eq!(screen(&prompt, 20), "  3\n  4\n  5\n");
    assert_eq!(cursor_at(&prompt, 20), Position::new(3, 2));
    for _ in 0..4 {
        prompt.handle(&key(KeyCode::Up));
    }
    assert_eq!(screen(&prompt, 20), "› 1\n  2\n  3\n");
    assert_eq!(cursor_at(&prompt, 20), Position::new(3, 0));
}

#[test]
fn resizing_only_changes_the_wrapping() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "the quick brown fox jumps");
    assert_eq!(screen(&prompt, 40), "› the quick brown fox jumps\n");
    assert_eq!(screen(&prompt, 14), "› the quick\n  brown fox\n  jumps\n");
    assert_eq!(screen(&prompt, 40), "› the quick brown fox jumps\n");
    assert_eq!(prompt.handle(&Event::Resize(14, 10)), PromptAction::Redraw);
    // Degenerate widths still draw without panicking.
    for width in 1..4 {
        let _ = screen(&prompt, width);
    }
}

#[test]
fn set_text_and_placeholder() {
    let mut prompt = Prompt::new();
    prompt.set_placeholder("Ask airlock\x1b[31m");
    assert_eq!(screen(&prompt, 30), "› Ask airlock\u{FFFD}[31m\n");
    prompt.set_text("start here");
    assert_eq!(prompt.cursor(), 10);
    assert_eq!(enter(&mut prompt), PromptAction::Submit("start here".into()));
}

#[test]
fn snapshot_prompt_with_paste_and_popup() {
    let mut prompt = Prompt::new();
    prompt.set_path_completer(fake_files);
    typed(&mut prompt, "summarise this log:\n");
    prompt.handle(&Event::Paste("error: something\n".repeat(40)));
    typed(&mut prompt, "\nand compare with @src/");
    let height = prompt.height(48);
    let mut terminal = Terminal::new(TestBackend::new(48, height)).unwrap();
    terminal.draw(|frame| frame.render_widget(&prompt, frame.area())).unwrap();
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn snapshot_search() {
    let mut prompt = searchable();
    prompt.handle(&ctrl('r'));
    typed(&mut prompt, "status");
    let mut terminal = Terminal::new(TestBackend::new(40, prompt.height(40))).unwrap();
    terminal.draw(|frame| frame.render_widget(&prompt, frame.area())).unwrap();
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn a_long_candidate_list_scrolls_with_the_selection() {
    let mut prompt = Prompt::new();
    prompt.set_path_completer(|_: &str| (0..12).map(|i| format!("f{i:02}")).collect());
    typed(&mut prompt, "@f");
    assert_eq!(prompt.height(20), POPUP_ROWS as u16 + 1);
    for _ in 0..9 {
        prompt.handle(&key(KeyCode::Down));
    }
    let shown = screen(&prompt, 20);
    let rows: Vec<&str> = shown.lines().collect();
    assert_eq!(rows.len(), POPUP_ROWS + 1);
    assert_eq!(rows[0], "  @f02");
    assert_eq!(rows[POPUP_ROWS - 1], "› @f09");
    // Up from the first wraps to the last.
    for _ in 0..10 {
        prompt.handle(&key(KeyCode::Up));
    }
    assert_eq!(screen(&prompt, 20).lines().nth(POPUP_ROWS - 1), Some("› @f11"));
}

#[test]
fn arrows_choose_in_a_popup_instead_of_walking_history() {
    let mut prompt = Prompt::new();
    prompt.load_history(vec!["previous".to_string()]);
    typed(&mut prompt, "/m");
    prompt.handle(&key(KeyCode::Up));
    assert_eq!(prompt.text(), "/m");
    assert_eq!(enter(&mut prompt), PromptAction::Submit("/mcp".into()), "Up from the first chose the last");
}

#[test]
fn ctrl_p_and_ctrl_n_walk_history_like_the_arrows() {
    let mut prompt = Prompt::new();
    prompt.load_history(vec!["a".to_string(), "b".to_string()]);
    prompt.handle(&ctrl('p'));
    prompt.handle(&ctrl('p'));
    assert_eq!(prompt.text(), "a");
    prompt.handle(&ctrl('n'));
    assert_eq!(prompt.text(), "b");
}

#[test]
fn word_deletion_backwards_and_forwards() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "path/to/file.rs now");
    prompt.handle(&with(KeyCode::Backspace, KeyModifiers::ALT));
    assert_eq!(prompt.text(), "path/to/file.rs ");
    prompt.handle(&with(KeyCode::Backspace, KeyModifiers::ALT));
    assert_eq!(prompt.text(), "path/to/file.");
    prompt.handle(&ctrl('w'));
    assert!(prompt.is_empty(), "Ctrl-W deletes to whitespace: {:?}", prompt.text());
    typed(&mut prompt, "one two");
    prompt.handle(&ctrl('a'));
    prompt.handle(&alt('d'));
    assert_eq!(prompt.text(), " two");
}

#[test]
fn search_takes_pastes_into_the_query_and_other_keys_accept() {
    let mut prompt = searchable();
    prompt.handle(&ctrl('r'));
    prompt.handle(&Event::Paste("git\r\n".into()));
    assert_eq!(screen(&prompt, 40), "› (search) 'git ': git status\n");
    assert_eq!(prompt.handle(&key(KeyCode::BackTab)), PromptAction::CycleMode);
    prompt.handle(&key(KeyCode::Home));
    assert_eq!(prompt.text(), "git status");
    assert_eq!(prompt.cursor(), 0, "Home acted on the accepted match");
}

#[test]
fn an_empty_area_has_no_cursor() {
    let prompt = Prompt::new();
    assert_eq!(prompt.cursor_position(Rect::new(0, 0, 0, 0)), None);
    assert_eq!(prompt.cursor_position(Rect::new(3, 7, 30, 1)), Some(Position::new(5, 7)));
}

#[test]
fn workspace_completion_narrows_and_widens_as_the_query_changes() {
    let dir = tempfile::tempdir().unwrap();
    for path in ["main.md", "src/main.rs", "src/domain.rs", "docs/manual.md"] {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x").unwrap();
    }
    let files = WorkspaceFiles::new(dir.path());
    files.wait_until_listed();
    let all_m = ["main.md", "docs/manual.md", "src/main.rs", "src/domain.rs"];
    assert_eq!(files.complete("ma"), all_m);
    assert_eq!(files.complete("main"), ["main.md", "src/main.rs", "src/domain.rs"]);
    assert_eq!(files.complete("main.r"), ["src/main.rs", "src/domain.rs"]);
    assert_eq!(files.complete("/main.r"), ["src/main.rs"]);
    // Backspacing widens again: the narrowed set is not reused.
    assert_eq!(files.complete("ma"), all_m);
    assert_eq!(files.complete("SRC/MAIN"), ["src/main.rs"], "case is ignored");
}

#[test]
fn the_prompt_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    let mut prompt = Prompt::new();
    prompt.set_path_completer(fake_files);
    send(&prompt);
}

#[test]
fn deleting_after_the_cursor_inside_a_command_keeps_completion_in_bounds() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "/model");
    for _ in 0..3 {
        prompt.handle(&key(KeyCode::Left));
    }
    prompt.handle(&key(KeyCode::Delete));
    prompt.handle(&key(KeyCode::Delete));
    assert_eq!(prompt.text(), "/mol");
    // The token is "/mol" now, still completing "mo": the first is /model.
    assert_eq!(enter(&mut prompt), PromptAction::Submit("/model".into()));
    typed(&mut prompt, "@x /b");
    prompt.set_path_completer(fake_files);
    typed(&mut prompt, " @sxyz");
    for _ in 0..3 {
        prompt.handle(&key(KeyCode::Left));
    }
    for _ in 0..3 {
        prompt.handle(&key(KeyCode::Delete));
    }
    prompt.handle(&key(KeyCode::Tab));
    assert_eq!(prompt.text(), "@x /b @src/");
}

/// Thousands of random edits, pastes, searches and completions at random
/// widths: nothing panics, the cursor stays on a character boundary inside
/// the text, the drawing fits the height asked for, the cursor is inside
/// the area, and nothing drawn is a control character.
#[test]
fn random_editing_keeps_every_invariant() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let keys: Vec<Event> = vec![
        key(KeyCode::Char('a')),
        key(KeyCode::Char(' ')),
        key(KeyCode::Char('日')),
        key(KeyCode::Char('@')),
        key(KeyCode::Char('/')),
        key(KeyCode::Char('\\')),
        key(KeyCode::Char('\u{301}')),
        key(KeyCode::Char('\u{1b}')),
        key(KeyCode::Enter),
        with(KeyCode::Enter, KeyModifiers::SHIFT),
        key(KeyCode::Left),
        key(KeyCode::Right),
        key(KeyCode::Up),
        key(KeyCode::Down),
        key(KeyCode::Home),
        key(KeyCode::End),
        key(KeyCode::Backspace),
        key(KeyCode::Delete),
        key(KeyCode::Tab),
        key(KeyCode::Esc),
        key(KeyCode::BackTab),
        ctrl('a'),
        ctrl('e'),
        ctrl('k'),
        ctrl('u'),
        ctrl('w'),
        ctrl('y'),
        ctrl('r'),
        ctrl('c'),
        alt('b'),
        alt('f'),
        alt('d'),
        with(KeyCode::Backspace, KeyModifiers::ALT),
        Event::Paste("x\ty\r\nz".into()),
        Event::Paste("👩‍💻 e\u{301}\u{202e}\x1b[2J".into()),
        Event::Paste("line\n".repeat(12)),
        Event::Resize(10, 10),
    ];
    let mut prompt = Prompt::new();
    prompt.set_max_height(4);
    prompt.set_path_completer(fake_files);
    prompt.load_history(vec!["a b".into(), "日本\nx".into(), "@src/main.rs".into()]);
    let t0 = Instant::now();
    let (mut submitted, mut cursors, mut searched, mut popups) = (0, 0, 0, 0);
    for step in 0..20_000u64 {
        let event = &keys[next(keys.len() as u64) as usize];
        if let PromptAction::Submit(_) = prompt.handle_at(event, t0 + Duration::from_millis(step * 700)) {
            submitted += 1;
        }
        searched += usize::from(prompt.search.is_some());
        popups += usize::from(prompt.completion.is_some());
        let text = prompt.text();
        assert!(prompt.cursor() <= text.len() && text.is_char_boundary(prompt.cursor()), "step {step}: {prompt:?}");
        assert!(!text.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "step {step}: {text:?}");
        if step % 7 == 0 {
            let width = 1 + next(50) as u16;
            let height = prompt.height(width);
            assert!(height >= 1 && height <= 4 + POPUP_ROWS as u16, "step {step}: height {height}");
            let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
            let mut cursor = None;
            terminal
                .draw(|frame| {
                    frame.render_widget(&prompt, frame.area());
                    cursor = prompt.cursor_position(frame.area());
                })
                .unwrap();
            let area = Rect::new(0, 0, width, height);
            if let Some(position) = cursor {
                cursors += 1;
                assert!(area.contains(position), "step {step}: {position:?} outside {area:?}");
            }
            let buffer = terminal.backend().buffer();
            assert!(buffer.content().iter().all(|cell| !cell.symbol().contains(char::is_control)), "step {step}");
        }
    }
    // The walk went through every kind of state, or it proved little.
    assert!(
        submitted > 100 && cursors > 1_000 && searched > 100 && popups > 100,
        "{submitted} {cursors} {searched} {popups}"
    );
}

fn snapshot_of(prompt: &Prompt, width: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, prompt.height(width))).unwrap();
    terminal.draw(|frame| frame.render_widget(prompt, frame.area())).unwrap();
    terminal.backend().clone()
}

#[test]
fn snapshot_slash_commands() {
    let mut prompt = Prompt::new();
    typed(&mut prompt, "/");
    insta::assert_snapshot!(snapshot_of(&prompt, 72));
}

#[test]
fn snapshot_wide_text_wrapped() {
    let mut prompt = Prompt::new();
    prompt.handle(&ctrl('c'));
    assert_eq!(prompt.height(24), 2, "the hint is up");
    typed(&mut prompt, "日本語のテキストと絵文字 👩‍💻🎉 mixed with ASCII words\ttab");
    assert_eq!(prompt.height(24), 3, "typing took the hint down");
    insta::assert_snapshot!(snapshot_of(&prompt, 24));
}

#[test]
fn a_file_typed_in_full_is_what_enter_takes() {
    let mut prompt = Prompt::new();
    prompt.set_path_completer(|_: &str| vec!["src/main.rs.bak".to_string(), "src/main.rs".to_string()]);
    typed(&mut prompt, "see @src/main.rs");
    assert_eq!(enter(&mut prompt), PromptAction::Redraw);
    assert_eq!(prompt.text(), "see @src/main.rs ");
    assert_eq!(enter(&mut prompt), PromptAction::Submit("see @src/main.rs".into()));
}
