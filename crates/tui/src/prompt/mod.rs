//! The prompt: a multi-line editor at the bottom of the session, with
//! history, Ctrl-R search, collapsed large pastes, `@path` and `/command`
//! completion.
//!
//! [`Prompt`] is state; [`Prompt::handle`] takes a crossterm event and says
//! what the app should do ([`PromptAction`]); `&Prompt` is a ratatui
//! [`Widget`](ratatui::widgets::Widget) whose [`height`](Prompt::height)
//! depends only on the width, so the app can size its inline viewport.
//! Nothing here depends on the conversation: a key and a frame of the prompt
//! cost the same whatever the session holds.
//!
//! ```
//! use airlock_tui::prompt::{Prompt, PromptAction};
//! use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
//!
//! let mut prompt = Prompt::new();
//! for c in "hi".chars() {
//!     prompt.handle(&Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
//! }
//! let action = prompt.handle(&Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
//! assert_eq!(action, PromptAction::Submit("hi".into()));
//! ```
//!
//! Keys: Enter submits; Shift+Enter, Alt+Enter, Ctrl+J, or `\` then Enter
//! insert a newline (many terminals cannot tell Shift+Enter from Enter).
//! Arrows, Home/End, Ctrl-A/E (line start/end), Ctrl-B/F, Alt-B/F and
//! Ctrl/Alt+arrows (words), Ctrl-K/U (kill to line end/start), Ctrl-W and
//! Alt+Backspace (word back), Alt-D (word forward), Ctrl-Y (yank). Up on the
//! first row and Down on the last walk history; Ctrl-R searches it. Tab
//! accepts a completion, Up/Down choose one. Esc closes what is open, else
//! asks to interrupt the turn. Ctrl-C clears the text, or (when empty) asks
//! to interrupt and arms exit: a second Ctrl-C within a second exits.
//! Shift+Tab cycles the permission mode. Keys the prompt has no use for
//! return [`PromptAction::None`]; the app may take any key it wants first.
//!
//! The app loop's part:
//! - enable bracketed paste (`crossterm::event::EnableBracketedPaste`):
//!   without it a paste arrives as keys, and its first newline submits;
//! - give the prompt an area `height(width)` rows high (the completion
//!   popup or a hint is drawn in its top rows, above the text), render
//!   `&prompt` there, and put the terminal cursor at
//!   [`cursor_position`](Prompt::cursor_position);
//! - redraw on anything but [`PromptAction::None`], and after a first
//!   Ctrl-C call [`expire_exit_hint`](Prompt::expire_exit_hint) once the
//!   [`EXIT_WINDOW`] has passed, to take the hint down;
//! - load and save [`history`](Prompt::history) (see [`encode_history`]).

mod complete;
mod history;
mod layout;
mod render;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_redact::terminal::one_line;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use unicode_segmentation::UnicodeSegmentation;

pub use complete::{MAX_CANDIDATES, MAX_INDEXED, PathCompleter, SlashCommand, WorkspaceFiles, default_commands};
pub use history::{HISTORY_CAP, HISTORY_ENTRY_MAX_BYTES, decode as decode_history, encode as encode_history};

use history::History;
use layout::Kind;

/// What the app should do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptAction {
    /// Nothing changed.
    None,
    /// The prompt changed: draw it again (its height may have changed).
    Redraw,
    /// The person sent this text (pastes expanded, trailing whitespace
    /// trimmed); the editor is empty again.
    Submit(String),
    /// Interrupt the running turn, if any (Esc with nothing open, or the
    /// first Ctrl-C on an empty prompt). The prompt may have changed: redraw.
    Interrupt,
    /// Leave the session (Ctrl-C twice within [`EXIT_WINDOW`]).
    Exit,
    /// Switch to the next permission mode (Shift+Tab).
    CycleMode,
}

/// How soon a second Ctrl-C must follow the first to exit.
pub const EXIT_WINDOW: Duration = Duration::from_secs(1);

/// A paste longer than this many characters is shown as a placeholder.
pub const PASTE_COLLAPSE_CHARS: usize = 1_000;

/// A paste of more than this many lines is shown as a placeholder.
pub const PASTE_COLLAPSE_LINES: usize = 10;

/// Rows of text shown before the prompt scrolls.
pub const DEFAULT_MAX_HEIGHT: u16 = 10;

/// Rows of candidates shown above the prompt.
pub const POPUP_ROWS: usize = 8;

/// The first of the private-use characters that stand for collapsed pastes
/// in the text (Supplementary Private Use Area-A, which no keyboard types;
/// any such character arriving from outside is replaced).
const PASTE_MARKER_BASE: u32 = 0xF0000;
const PASTE_MARKER_LAST: u32 = 0xFFFFD;

fn paste_id(c: char) -> Option<u32> {
    let code = c as u32;
    (PASTE_MARKER_BASE..=PASTE_MARKER_LAST).contains(&code).then(|| code - PASTE_MARKER_BASE)
}

/// Text from a key or a paste made safe to keep and draw: `\r\n` and `\r`
/// become `\n` (terminals send `\r` for a newline in a paste), every other
/// control and bidirectional character is replaced (see
/// `airlock_redact::terminal`), and so are paste markers.
pub fn sanitize_input(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    airlock_redact::terminal::sanitize(&text)
        .chars()
        .map(|c| if paste_id(c).is_some() { airlock_redact::terminal::REPLACEMENT } else { c })
        .collect()
}

/// `[pasted 2,431 chars, 80 lines]`
fn paste_label(text: &str) -> String {
    let lines = text.lines().count().max(1);
    format!(
        "[pasted {} chars, {} line{}]",
        thousands(text.chars().count()),
        thousands(lines),
        if lines == 1 { "" } else { "s" }
    )
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Which completion a popup offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompletionKind {
    Path,
    Slash,
}

/// An open completion popup.
#[derive(Debug, Clone)]
struct Completion {
    kind: CompletionKind,
    /// Byte range of the token completed (from its `@` or `/`).
    start: usize,
    end: usize,
    /// What was typed after the `@` or `/`.
    query: String,
    /// (text inserted, help shown beside it)
    items: Vec<(String, String)>,
    selected: usize,
}

/// A Ctrl-R search in progress.
#[derive(Debug, Clone)]
struct Search {
    query: String,
    /// The history entry shown.
    matched: Option<usize>,
    /// What the editor held before, restored by Esc.
    saved_text: String,
    saved_cursor: usize,
}

/// The prompt editor's state.
pub struct Prompt {
    text: String,
    /// Byte offset in `text`, always on a grapheme boundary.
    cursor: usize,
    /// Collapsed pastes by id; the text holds a marker character for each.
    pastes: HashMap<u32, Paste>,
    next_paste: u32,
    /// The last killed text (Ctrl-K/U/W), for Ctrl-Y.
    kill: String,
    /// The column Up/Down aim for, kept across rows of different lengths.
    preferred_col: Option<u16>,
    history: History,
    search: Option<Search>,
    completion: Option<Completion>,
    /// A token whose popup Esc closed: not offered again until it changes.
    dismissed: Option<(usize, String)>,
    path_completer: Option<Box<dyn PathCompleter>>,
    commands: Vec<SlashCommand>,
    exit_armed: Option<Instant>,
    placeholder: String,
    max_height: u16,
    /// The width last drawn at: Up/Down move by rows of that width.
    width: Cell<u16>,
    /// The first text row shown when the text is taller than `max_height`.
    scroll_top: Cell<usize>,
    /// The last layout: (hash of the text, pastes, width) and its rows.
    layout_cache: RefCell<Option<LayoutKey>>,
}

type LayoutKey = ((u64, usize, u16), Arc<Vec<layout::Row>>);

/// A paste shown collapsed.
#[derive(Debug)]
struct Paste {
    text: String,
    /// `[pasted 2,431 chars, 80 lines]`, counted once.
    label: String,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt")
            .field("text", &self.text)
            .field("cursor", &self.cursor)
            .field("searching", &self.search.is_some())
            .field("completing", &self.completion.as_ref().map(|c| c.kind))
            .finish_non_exhaustive()
    }
}

impl Default for Prompt {
    fn default() -> Prompt {
        Prompt::new()
    }
}

impl Prompt {
    /// An empty prompt with the default slash commands and no path completion.
    pub fn new() -> Prompt {
        Prompt {
            text: String::new(),
            cursor: 0,
            pastes: HashMap::new(),
            next_paste: 0,
            kill: String::new(),
            preferred_col: None,
            history: History::default(),
            search: None,
            completion: None,
            dismissed: None,
            path_completer: None,
            commands: default_commands(),
            exit_armed: None,
            placeholder: String::new(),
            max_height: DEFAULT_MAX_HEIGHT,
            width: Cell::new(80),
            scroll_top: Cell::new(0),
            layout_cache: RefCell::new(None),
        }
    }

    /// Completes `@path` with `completer` (e.g. [`WorkspaceFiles`]).
    pub fn set_path_completer(&mut self, completer: impl PathCompleter + 'static) {
        self.path_completer = Some(Box::new(completer));
    }

    /// The commands `/` offers.
    pub fn set_commands(&mut self, commands: Vec<SlashCommand>) {
        self.commands = commands;
    }

    /// Dim text shown while the prompt is empty.
    pub fn set_placeholder(&mut self, text: &str) {
        self.placeholder = airlock_redact::terminal::one_line(text);
    }

    /// Rows of text shown before the prompt scrolls (at least 1).
    pub fn set_max_height(&mut self, rows: u16) {
        self.max_height = rows.max(1);
    }

    /// Replaces the history with `entries`, oldest first (as saved from
    /// [`history`](Self::history)); entries are sanitised and the newest
    /// [`HISTORY_CAP`] kept (of at most [`HISTORY_ENTRY_MAX_BYTES`] each).
    pub fn load_history(&mut self, entries: impl IntoIterator<Item = String>) {
        self.history.load(entries.into_iter().map(|e| sanitize_input(&e)).collect());
    }

    /// The history, oldest first, for the app to save (see
    /// [`encode_history`] for a file format that keeps multi-line prompts).
    pub fn history(&self) -> &[String] {
        self.history.entries()
    }

    /// The text as typed, pastes as their markers (for tests and status).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text with every collapsed paste expanded: what Enter would send.
    pub fn expanded_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        for c in self.text.chars() {
            match paste_id(c).and_then(|id| self.pastes.get(&id)) {
                Some(paste) => out.push_str(&paste.text),
                // A marker whose paste is gone stands for nothing.
                None if paste_id(c).is_some() => {}
                None => out.push(c),
            }
        }
        out
    }

    /// The cursor's byte offset in [`text`](Self::text).
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Empties the editor (keeping history).
    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
        // A paste killed (Ctrl-K, Ctrl-C) can still be yanked back.
        let kill = &self.kill;
        self.pastes.retain(|id, _| kill.chars().any(|c| paste_id(c) == Some(*id)));
        self.search = None;
        self.completion = None;
        self.dismissed = None;
        self.preferred_col = None;
        self.history.stop_walk();
    }

    /// Replaces the text (e.g. `airlock "TASK"` or a rewound prompt), the
    /// cursor at its end.
    pub fn set_text(&mut self, text: &str) {
        self.clear();
        self.text = sanitize_input(text);
        self.cursor = self.text.len();
    }

    /// Handles one terminal event.
    pub fn handle(&mut self, event: &Event) -> PromptAction {
        self.handle_at(event, Instant::now())
    }

    /// [`handle`](Self::handle) at time `now` (the double Ctrl-C window is
    /// measured against it).
    pub fn handle_at(&mut self, event: &Event, now: Instant) -> PromptAction {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                let was_armed = self.exit_armed.take();
                if is_ctrl(key, 'c') {
                    return self.ctrl_c(was_armed, now);
                }
                let action = self.key(key);
                // A key other than Ctrl-C disarms exit, and its hint goes.
                if was_armed.is_some() && action == PromptAction::None {
                    return PromptAction::Redraw;
                }
                action
            }
            Event::Paste(text) => {
                self.exit_armed = None;
                if self.search.is_some() {
                    self.search_insert(&sanitize_input(text));
                } else {
                    self.paste(text);
                }
                PromptAction::Redraw
            }
            Event::Resize(..) => PromptAction::Redraw,
            _ => PromptAction::None,
        }
    }

    fn ctrl_c(&mut self, was_armed: Option<Instant>, now: Instant) -> PromptAction {
        if self.search.is_some() {
            self.cancel_search();
            return PromptAction::Redraw;
        }
        if !self.text.is_empty() {
            self.kill = std::mem::take(&mut self.text);
            self.clear();
            return PromptAction::Redraw;
        }
        if was_armed.is_some_and(|armed| now.saturating_duration_since(armed) <= EXIT_WINDOW) {
            return PromptAction::Exit;
        }
        self.exit_armed = Some(now);
        self.completion = None;
        PromptAction::Interrupt
    }

    /// Whether a first Ctrl-C is waiting for a second (the hint is shown).
    pub fn exit_armed(&self) -> bool {
        self.exit_armed.is_some()
    }

    /// Forgets a first Ctrl-C whose window has passed (the app may call this
    /// on a timer to take the hint down; returns whether it changed).
    pub fn expire_exit_hint(&mut self, now: Instant) -> bool {
        match self.exit_armed {
            Some(armed) if now.saturating_duration_since(armed) > EXIT_WINDOW => {
                self.exit_armed = None;
                true
            }
            _ => false,
        }
    }

    fn key(&mut self, key: &KeyEvent) -> PromptAction {
        if key.code == KeyCode::BackTab || (key.code == KeyCode::Tab && key.modifiers.contains(KeyModifiers::SHIFT)) {
            return PromptAction::CycleMode;
        }
        if self.search.is_some() {
            return self.search_key(key);
        }
        if self.completion.is_some()
            && let Some(action) = self.completion_key(key)
        {
            return action;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        let vertical =
            matches!(key.code, KeyCode::Up | KeyCode::Down) || (ctrl && matches!(key.code, KeyCode::Char('p' | 'n')));
        let action = match key.code {
            KeyCode::Enter if shift || alt || ctrl => self.insert_newline(),
            KeyCode::Char('j') if ctrl => self.insert_newline(),
            KeyCode::Enter => return self.enter(),
            // A popup or search would have taken Esc: nothing here to cancel.
            KeyCode::Esc => return PromptAction::Interrupt,
            KeyCode::Char('r') if ctrl => self.start_search(),
            KeyCode::Left if ctrl || alt => self.move_to(self.word_left()),
            KeyCode::Right if ctrl || alt => self.move_to(self.word_right()),
            KeyCode::Char('b') if alt => self.move_to(self.word_left()),
            KeyCode::Char('f') if alt => self.move_to(self.word_right()),
            KeyCode::Left => self.move_to(self.grapheme_left()),
            KeyCode::Right => self.move_to(self.grapheme_right()),
            KeyCode::Char('b') if ctrl => self.move_to(self.grapheme_left()),
            KeyCode::Char('f') if ctrl => self.move_to(self.grapheme_right()),
            KeyCode::Home if ctrl => self.move_to(0),
            KeyCode::End if ctrl => self.move_to(self.text.len()),
            KeyCode::Home => self.move_to(self.line_start()),
            KeyCode::End => self.move_to(self.line_end()),
            KeyCode::Char('a') if ctrl => self.move_to(self.line_start()),
            KeyCode::Char('e') if ctrl => self.move_to(self.line_end()),
            KeyCode::Up => self.up(),
            KeyCode::Down => self.down(),
            KeyCode::Char('p') if ctrl => self.up(),
            KeyCode::Char('n') if ctrl => self.down(),
            KeyCode::Backspace if alt || ctrl => self.delete_range(self.word_left(), self.cursor, true),
            KeyCode::Char('h') if ctrl => self.delete_range(self.grapheme_left(), self.cursor, false),
            KeyCode::Backspace => self.delete_range(self.grapheme_left(), self.cursor, false),
            KeyCode::Delete if alt || ctrl => self.delete_range(self.cursor, self.word_right(), true),
            KeyCode::Delete => self.delete_range(self.cursor, self.grapheme_right(), false),
            KeyCode::Char('d') if alt => self.delete_range(self.cursor, self.word_right(), true),
            KeyCode::Char('d') if ctrl => self.delete_range(self.cursor, self.grapheme_right(), false),
            KeyCode::Char('w') if ctrl => self.delete_range(self.whitespace_word_left(), self.cursor, true),
            KeyCode::Char('u') if ctrl => self.delete_range(self.line_start(), self.cursor, true),
            KeyCode::Char('k') if ctrl => {
                let end = self.line_end();
                // At a line's end, Ctrl-K joins the next line (as in readline).
                let end = if end == self.cursor && end < self.text.len() { end + 1 } else { end };
                self.delete_range(self.cursor, end, true)
            }
            KeyCode::Char('y') if ctrl => {
                let kill = self.kill.clone();
                // Markers of pastes already sent are gone: drop them.
                let kill: String =
                    kill.chars().filter(|&c| paste_id(c).is_none_or(|id| self.pastes.contains_key(&id))).collect();
                self.insert_raw(&kill)
            }
            KeyCode::Tab => {
                self.refresh_completion(true);
                if self.completion.is_some() { PromptAction::Redraw } else { PromptAction::None }
            }
            // Ctrl and Alt together is AltGr on some systems: a character.
            KeyCode::Char(c) if ctrl == alt => {
                let typed = sanitize_input(c.encode_utf8(&mut [0; 4]));
                self.insert_raw(&typed)
            }
            _ => PromptAction::None,
        };
        if !vertical {
            self.preferred_col = None;
        }
        action
    }

    /// Keys a completion popup takes; `None` lets the editor have the key.
    fn completion_key(&mut self, key: &KeyEvent) -> Option<PromptAction> {
        let completion = self.completion.as_mut()?;
        let count = completion.items.len();
        let plain = key.modifiers.difference(KeyModifiers::SHIFT).is_empty();
        match key.code {
            KeyCode::Up if plain => {
                completion.selected = (completion.selected + count - 1) % count.max(1);
                Some(PromptAction::Redraw)
            }
            KeyCode::Down if plain => {
                completion.selected = (completion.selected + 1) % count.max(1);
                Some(PromptAction::Redraw)
            }
            KeyCode::Tab => Some(self.accept_completion()),
            KeyCode::Enter if plain => {
                if completion.kind == CompletionKind::Slash {
                    // Enter on a command runs it, as the list suggests.
                    let (name, _) = completion.items.get(completion.selected)?.clone();
                    let rest = self.text[completion.end..].to_string();
                    let submitted = format!("/{name}{}", rest.trim_end());
                    self.history.push(&submitted);
                    self.clear();
                    Some(PromptAction::Submit(submitted))
                } else {
                    Some(self.accept_completion())
                }
            }
            KeyCode::Esc => {
                self.dismissed = Some((completion.start, completion.query.clone()));
                self.completion = None;
                Some(PromptAction::Redraw)
            }
            _ => None,
        }
    }

    /// Puts the selected candidate in place of the token. A directory keeps
    /// the popup open on its contents; anything else is followed by a space.
    fn accept_completion(&mut self) -> PromptAction {
        let Some(completion) = self.completion.take() else { return PromptAction::None };
        let Some((item, _)) = completion.items.get(completion.selected) else { return PromptAction::None };
        let sigil = if completion.kind == CompletionKind::Path { "@" } else { "/" };
        let item = airlock_redact::terminal::one_line(item);
        let is_dir = completion.kind == CompletionKind::Path && item.ends_with('/');
        let mut replacement = format!("{sigil}{item}");
        let next_is_space = self.text[completion.end..].starts_with(char::is_whitespace);
        if !is_dir && !next_is_space {
            replacement.push(' ');
        }
        self.text.replace_range(completion.start..completion.end, &replacement);
        self.cursor = completion.start + replacement.len();
        if !is_dir && next_is_space {
            self.cursor += 1;
        }
        self.history.stop_walk();
        self.refresh_completion(false);
        PromptAction::Redraw
    }

    /// Finds the completion token at the cursor and opens, updates or
    /// closes the popup. `forced` reopens a dismissed one (Tab).
    fn refresh_completion(&mut self, forced: bool) {
        let Some((kind, start, end)) = self.completion_token() else {
            self.completion = None;
            return;
        };
        let query = self.text[start + 1..self.cursor].to_string();
        if !forced && self.dismissed.as_ref().is_some_and(|(s, q)| *s == start && *q == query) {
            self.completion = None;
            return;
        }
        self.dismissed = None;
        if let Some(open) = &mut self.completion
            && open.kind == kind
            && open.start == start
            && open.query == query
        {
            // Same candidates; the token may end elsewhere (Delete after the cursor).
            open.end = end;
            return;
        }
        let items: Vec<(String, String)> = match kind {
            CompletionKind::Slash => complete::match_commands(&self.commands, &query)
                .into_iter()
                .map(|c| (c.name.clone(), c.help.clone()))
                .collect(),
            CompletionKind::Path => match &self.path_completer {
                Some(completer) => {
                    let candidates = completer.complete(&query).into_iter().map(|p| one_line(&p));
                    path_choices(candidates, &query).into_iter().map(|p| (p, String::new())).collect()
                }
                None => Vec::new(),
            },
        };
        self.completion = (!items.is_empty()).then_some(Completion { kind, start, end, query, items, selected: 0 });
    }

    /// The `@path` or leading `/command` token the cursor is in or just after:
    /// its kind and byte range.
    fn completion_token(&self) -> Option<(CompletionKind, usize, usize)> {
        let before = &self.text[..self.cursor];
        let start = before.len() - before.rsplit(char::is_whitespace).next().map_or(0, str::len);
        let after = &self.text[self.cursor..];
        let end = self.cursor + after.split(char::is_whitespace).next().map_or(0, str::len);
        let token = &self.text[start..self.cursor];
        if token.contains(|c| paste_id(c).is_some()) {
            return None;
        }
        if start == 0 && token.starts_with('/') {
            Some((CompletionKind::Slash, start, end))
        } else if token.starts_with('@') {
            Some((CompletionKind::Path, start, end))
        } else {
            None
        }
    }

    fn enter(&mut self) -> PromptAction {
        // `\` then Enter: a newline, for terminals that send Shift+Enter as Enter.
        if self.text[..self.cursor].ends_with('\\') {
            self.text.replace_range(self.cursor - 1..self.cursor, "\n");
            self.after_edit();
            return PromptAction::Redraw;
        }
        if self.text.trim().is_empty() {
            return PromptAction::None;
        }
        // Trailing blanks (the space after an accepted completion, a
        // paste's last newline) mean nothing to the model.
        let submitted = self.expanded_text().trim_end().to_string();
        self.history.push(&submitted);
        self.clear();
        PromptAction::Submit(submitted)
    }

    fn insert_newline(&mut self) -> PromptAction {
        self.insert_raw("\n")
    }

    /// Inserts text already sanitised.
    fn insert_raw(&mut self, text: &str) -> PromptAction {
        if text.is_empty() {
            return PromptAction::None;
        }
        self.text.insert_str(self.cursor, text);
        self.cursor += text.len();
        self.after_edit();
        PromptAction::Redraw
    }

    fn paste(&mut self, raw: &str) {
        let text = sanitize_input(raw);
        let large = text.chars().count() > PASTE_COLLAPSE_CHARS || text.lines().count() > PASTE_COLLAPSE_LINES;
        let marker = char::from_u32(PASTE_MARKER_BASE + self.next_paste).filter(|&c| paste_id(c).is_some());
        match marker {
            Some(marker) if large => {
                let label = paste_label(&text);
                self.pastes.insert(self.next_paste, Paste { text, label });
                self.next_paste += 1;
                self.insert_raw(marker.encode_utf8(&mut [0; 4]));
            }
            _ => {
                self.insert_raw(&text);
            }
        }
    }

    fn after_edit(&mut self) {
        self.history.stop_walk();
        self.preferred_col = None;
        self.refresh_completion(false);
    }

    fn move_to(&mut self, offset: usize) -> PromptAction {
        if offset == self.cursor {
            return PromptAction::None;
        }
        self.cursor = offset;
        self.refresh_completion(false);
        PromptAction::Redraw
    }

    /// Deletes `start..end`; `kill` keeps it for Ctrl-Y.
    fn delete_range(&mut self, start: usize, end: usize, kill: bool) -> PromptAction {
        if start >= end {
            return PromptAction::None;
        }
        let removed: String = self.text.drain(start..end).collect();
        if kill {
            self.kill = removed;
        }
        self.cursor = start;
        self.after_edit();
        PromptAction::Redraw
    }

    fn grapheme_left(&self) -> usize {
        self.text[..self.cursor].grapheme_indices(true).next_back().map_or(0, |(i, _)| i)
    }

    fn grapheme_right(&self) -> usize {
        self.text[self.cursor..].graphemes(true).next().map_or(self.cursor, |g| self.cursor + g.len())
    }

    /// The start of the word before the cursor (letters, digits, `_`).
    fn word_left(&self) -> usize {
        let before = &self.text[..self.cursor];
        before.trim_end_matches(|c| !is_word(c)).trim_end_matches(is_word).len()
    }

    /// The end of the word after the cursor.
    fn word_right(&self) -> usize {
        let after = &self.text[self.cursor..];
        let rest = after.trim_start_matches(|c| !is_word(c)).trim_start_matches(is_word);
        self.cursor + after.len() - rest.len()
    }

    /// The start of the whitespace-delimited word before the cursor (Ctrl-W).
    fn whitespace_word_left(&self) -> usize {
        let before = &self.text[..self.cursor];
        before.trim_end_matches(char::is_whitespace).trim_end_matches(|c: char| !c.is_whitespace()).len()
    }

    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self) -> usize {
        self.text[self.cursor..].find('\n').map_or(self.text.len(), |i| self.cursor + i)
    }

    fn up(&mut self) -> PromptAction {
        match self.vertical_target(false) {
            Some(target) => self.move_to(target),
            None => {
                let draft = self.text.clone();
                let Some(entry) = self.history.older(&draft).map(str::to_string) else { return PromptAction::None };
                self.show_history_entry(&entry);
                PromptAction::Redraw
            }
        }
    }

    fn down(&mut self) -> PromptAction {
        match self.vertical_target(true) {
            Some(target) => self.move_to(target),
            None => {
                let Some(entry) = self.history.newer() else { return PromptAction::None };
                self.show_history_entry(&entry);
                PromptAction::Redraw
            }
        }
    }

    /// Where Up (or Down) moves the cursor in the text as last drawn, or
    /// `None` on the first (last) row, where it walks history instead.
    fn vertical_target(&mut self, down: bool) -> Option<usize> {
        let width = render::text_width(self.width.get());
        let rows = self.rows(width);
        let (row, col) = layout::cursor_cell(&rows, self.cursor, width);
        let target_row = if down { row + 1 } else { row.checked_sub(1)? };
        if target_row >= rows.len() {
            return None;
        }
        let col = self.preferred_col.unwrap_or(col);
        let target = layout::offset_at(&rows, target_row, col);
        drop(rows);
        self.preferred_col = Some(col);
        target
    }

    /// Shows a history entry (or the draft) without ending the walk.
    fn show_history_entry(&mut self, entry: &str) {
        self.text = entry.to_string();
        self.cursor = self.text.len();
        self.preferred_col = None;
        self.completion = None;
    }

    /// The text's rows at `width` columns of text, kept until the text or
    /// the width changes: a frame asks for them several times (its height,
    /// the cursor, the drawing), and a keystroke that only moves the cursor
    /// needs no new layout.
    fn rows(&self, width: u16) -> Arc<Vec<layout::Row>> {
        let mut hasher = DefaultHasher::new();
        self.text.hash(&mut hasher);
        let key = (hasher.finish(), self.pastes.len(), width);
        if let Ok(cache) = self.layout_cache.try_borrow()
            && let Some((cached_key, rows)) = cache.as_ref()
            && *cached_key == key
        {
            return Arc::clone(rows);
        }
        let mut atoms = Vec::new();
        layout::atoms(&self.text, 0, Kind::Text, &|c| self.paste_label_of(c), &mut atoms);
        let rows = Arc::new(layout::wrap(atoms, 0, width));
        if let Ok(mut cache) = self.layout_cache.try_borrow_mut() {
            *cache = Some((key, Arc::clone(&rows)));
        }
        rows
    }

    /// The placeholder drawn for paste marker `c`, `None` for another character.
    fn paste_label_of(&self, c: char) -> Option<String> {
        paste_id(c).map(|id| self.pastes.get(&id).map_or_else(String::new, |p| p.label.clone()))
    }

    fn start_search(&mut self) -> PromptAction {
        self.completion = None;
        self.search = Some(Search {
            query: String::new(),
            matched: None,
            saved_text: self.text.clone(),
            saved_cursor: self.cursor,
        });
        PromptAction::Redraw
    }

    fn search_key(&mut self, key: &KeyEvent) -> PromptAction {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('r') if ctrl => {
                if let Some(search) = &mut self.search {
                    let before = search.matched;
                    // Ctrl-R on an empty query repeats nothing: wait for a letter.
                    if let Some(found) = self.history.search(&search.query, before)
                        && !search.query.is_empty()
                    {
                        search.matched = Some(found);
                    }
                }
                PromptAction::Redraw
            }
            KeyCode::Esc => {
                self.cancel_search();
                PromptAction::Redraw
            }
            KeyCode::Char('g') if ctrl => {
                self.cancel_search();
                PromptAction::Redraw
            }
            KeyCode::Enter => {
                self.accept_search();
                PromptAction::Redraw
            }
            KeyCode::Backspace => {
                if let Some(search) = &mut self.search {
                    search.query.pop();
                    search.matched =
                        if search.query.is_empty() { None } else { self.history.search(&search.query, None) };
                }
                PromptAction::Redraw
            }
            KeyCode::Char(c) if !ctrl => {
                self.search_insert(&sanitize_input(c.encode_utf8(&mut [0; 4])));
                PromptAction::Redraw
            }
            // Any other key takes the match into the editor and acts there.
            _ => {
                self.accept_search();
                self.key(key);
                PromptAction::Redraw
            }
        }
    }

    fn search_insert(&mut self, text: &str) {
        let Some(search) = &mut self.search else { return };
        search.query.push_str(&text.replace('\n', " "));
        // Typing narrows from the entry shown (or the newest) backwards.
        let from = search.matched.map(|m| m + 1);
        search.matched = self.history.search(&search.query, from);
    }

    fn cancel_search(&mut self) {
        if let Some(search) = self.search.take() {
            self.text = search.saved_text;
            self.cursor = search.saved_cursor;
        }
    }

    fn accept_search(&mut self) {
        let Some(search) = self.search.take() else { return };
        match search.matched.and_then(|m| self.history.get(m)) {
            Some(entry) => {
                self.text = entry.to_string();
                self.cursor = self.text.len();
            }
            None => {
                self.text = search.saved_text;
                self.cursor = search.saved_cursor;
            }
        }
        self.history.stop_walk();
    }
}

/// The candidates a popup offers for `query`: a directory already typed
/// (just accepted) is no choice, while a file typed in full comes first, so
/// that Enter takes it rather than a longer name that starts the same.
fn path_choices(candidates: impl Iterator<Item = String>, query: &str) -> Vec<String> {
    let mut choices: Vec<String> =
        candidates.filter(|p| !(p == query && p.ends_with('/'))).take(MAX_CANDIDATES).collect();
    if let Some(exact) = choices.iter().position(|p| p == query) {
        let typed = choices.remove(exact);
        choices.insert(0, typed);
    }
    choices
}

fn is_ctrl(key: &KeyEvent, c: char) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char(c)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || paste_id(c).is_some()
}

#[cfg(test)]
mod tests;
