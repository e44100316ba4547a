//! The interactive session: `airlock` at a terminal.
//!
//! Three threads: this one owns the terminal and the state; one reads keys
//! (blocking, so an idle session wakes nobody); one runs the session's
//! supervisor ([`airlock_session::Session::serve`]). Both send into one
//! channel, so what the person sees follows what happened in order.
//!
//! The approval panel is drawn by this process, the trusted supervisor; the
//! agent's worker has no way to the terminal, and everything the model or a
//! tool wrote passes the sanitiser before it is drawn, so nothing it writes
//! can look like the panel or answer it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::time::Instant;

use airlock_core::Progress;
use airlock_model::Message;
use airlock_session::{
    Answer, ApprovalRequest, Approver, CheckpointInfo, Ended, Handle, Input, Mode, Place, Session, SessionError,
    SessionEvent, SessionInfo, Shown,
};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::prompt::{Prompt, PromptAction, SlashCommand, WorkspaceFiles};
use crate::screen::Screen;
use crate::view::approval::{ApprovalAction, ApprovalChoice, ApprovalPanel, SessionGrant};
use crate::view::card::{CardOptions, CommandExit, ToolCall, ToolCard, ToolOutcome};
use crate::view::markdown::MarkdownStream;
use crate::view::status::{AuditState, ModelPlace, PermissionMode, StatusLine};
use crate::view::text::clean_line;
use crate::view::theme;

/// What the session needs from its caller besides the session itself.
pub struct AppOptions {
    /// The first message (`airlock "TASK"`).
    pub first: Option<String>,
    /// Where the prompt history is kept (one file per user).
    pub history_file: Option<PathBuf>,
    /// The policy, for "allow for this project" (written to the user's configuration).
    pub policy: Option<airlock_policy::Policy>,
    /// The airlock binary, for `/audit` and `/report`.
    pub exe: PathBuf,
}

/// What reaches the app's thread.
enum AppEvent {
    Term(Event),
    Session(SessionEvent),
    Ended(Result<Ended, SessionError>),
    Output(Vec<String>),
}

/// The slash commands, with their help.
fn commands() -> Vec<SlashCommand> {
    [
        ("/help", "what the keys and commands do"),
        ("/model", "the model and where it runs"),
        ("/mode", "show or set the permission mode: ask, edits, plan, auto"),
        ("/permissions", "the rules in force and where each comes from"),
        ("/rewind", "set the files and the conversation back to before a turn"),
        ("/diff", "what changed in the workspace this session"),
        ("/audit", "this session's records, and whether the log verifies"),
        ("/report", "write the evidence report of this session"),
        ("/compact", "summarise the conversation to free context"),
        ("/clear", "start the conversation afresh (the record stays)"),
        ("/resume", "sessions of this workspace to continue"),
        ("/mcp", "the MCP servers' tools (each server in a sandbox of its own), and servers that did not start"),
        ("/exit", "end the session"),
    ]
    .into_iter()
    .map(|(name, help)| SlashCommand::new(name, help))
    .collect()
}

/// A tool call waiting for its result.
struct Pending {
    call: ToolCall,
    denied: Option<(String, Option<String>)>,
}

/// Where the session stands, and what is on screen.
struct App {
    info: SessionInfo,
    handle: Handle,
    options: AppOptions,
    prompt: Prompt,
    stream: MarkdownStream,
    mode: Mode,
    running: bool,
    ended: bool,
    approval: Option<(ApprovalRequest, ApprovalPanel)>,
    pending: HashMap<String, Pending>,
    checkpoints: Vec<CheckpointInfo>,
    /// Files changed in each turn (by its number), for `/rewind` and `/diff`.
    changed: BTreeMap<usize, Vec<String>>,
    messages: Vec<Message>,
    tokens: u64,
    context: u64,
    audit_entries: u64,
    audit_broken: bool,
    last_checkpoint: Option<(u64, Instant)>,
    rewind_pick: Option<usize>,
    /// Waiting for the summary of `/compact`.
    compacting: bool,
    /// The last command card, for ctrl-o.
    last_command: Option<ToolCard>,
    /// Notices for the live area (a hint, an error), cleared at the next key.
    hint: Option<String>,
    /// Session approvals given, for `/permissions`.
    approved: Vec<String>,
    width: u16,
}

/// Runs the interactive session until the person ends it, on `screen`
/// (taken before the session started, so that the first frame does not
/// wait for the sandbox). Call with a started session: an embedded model
/// forbids the network to this process before any thread starts, so the
/// session must start before this spawns its threads.
pub fn run(mut screen: Screen, session: Session, options: AppOptions) -> Result<Ended, String> {
    let info = session.info().clone();
    let handle = session.handle();
    let (tx, rx) = channel();
    let sessions = tx.clone();
    std::thread::spawn(move || {
        let to = sessions.clone();
        let ended = session.serve(&mut |event| {
            let _ = to.send(AppEvent::Session(event));
        });
        let _ = sessions.send(AppEvent::Ended(ended));
    });
    let keys = tx.clone();
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            if keys.send(AppEvent::Term(event)).is_err() {
                return;
            }
        }
    });
    let mut prompt = Prompt::new();
    prompt.set_commands(commands());
    prompt.set_path_completer(WorkspaceFiles::new(info.workspace.clone()));
    prompt.set_placeholder("ask for a change, / for commands, @ to mention a file");
    if let Some(lines) = options.history_file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
        prompt.load_history(crate::prompt::decode_history(&lines));
    }
    let mut app = App {
        mode: info.mode,
        messages: info.history.clone(),
        info,
        handle,
        options,
        prompt,
        stream: MarkdownStream::new(),
        running: false,
        ended: false,
        approval: None,
        pending: HashMap::new(),
        checkpoints: Vec::new(),
        changed: BTreeMap::new(),
        tokens: 0,
        context: 0,
        audit_entries: 0,
        audit_broken: false,
        last_checkpoint: None,
        rewind_pick: None,
        compacting: false,
        last_command: None,
        hint: None,
        approved: Vec::new(),
        width: screen.width(),
    };
    app.welcome(&mut screen);
    if let Some(first) = app.options.first.take() {
        app.submit(first, &mut screen, &tx);
    }
    app.refresh_audit();
    app.draw(&mut screen);
    let mut result = None;
    while let Ok(event) = rx.recv() {
        app.sync_size(&mut screen);
        match event {
            AppEvent::Term(event) => app.key(event, &mut screen, &tx),
            AppEvent::Session(event) => app.session(event, &mut screen),
            AppEvent::Output(lines) => {
                let lines: Vec<Line<'static>> = lines.iter().map(|l| Line::raw(clean_line(l))).collect();
                let _ = screen.insert(&lines);
            }
            AppEvent::Ended(ended) => {
                result = Some(ended);
                break;
            }
        }
        app.draw(&mut screen);
    }
    app.save_history();
    let _ = screen.finish();
    match result {
        Some(Ok(ended)) => Ok(ended),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the session stopped without an end".into()),
    }
}

fn dim(text: impl Into<String>) -> Line<'static> {
    Line::styled(clean_line(&text.into()), theme::DIM)
}

impl App {
    fn welcome(&mut self, screen: &mut Screen) {
        let place = self.info.place.to_string();
        let mut lines = vec![
            Line::from(vec![
                Span::styled("airlock", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(format!(" · {} · {} · session {}", clean_line(&self.info.model), place, self.info.id)),
            ]),
            dim(format!(
                "{} · commands run sandboxed, without network, writing only here · every step is on the record",
                self.info.workspace.display()
            )),
            dim(format!("mode {} (shift+tab to change) · esc interrupts · ctrl-c twice exits · /help", self.mode)),
        ];
        for warning in &self.info.warnings {
            lines.push(dim(format!("warning: {warning}")));
        }
        if !self.info.mcp_tools.is_empty() {
            lines.push(dim(format!("MCP: {} tools, each server sandboxed · /mcp", self.info.mcp_tools.len())));
        }
        if !self.info.history.is_empty() {
            lines.push(dim(format!("resumed: {} messages", self.info.history.len())));
        }
        lines.push(Line::raw(""));
        let _ = screen.insert(&lines);
    }

    fn status(&self) -> StatusLine {
        let place = match &self.info.place {
            Place::Embedded => ModelPlace::Embedded,
            Place::SelfHosted { host } => ModelPlace::SelfHosted { host: host.clone() },
            Place::Cloud { vendor } => ModelPlace::Cloud { vendor: vendor.clone() },
        };
        let mode = match self.mode {
            Mode::Ask => PermissionMode::Ask,
            Mode::Edits => PermissionMode::Edits,
            Mode::Plan => PermissionMode::Plan,
            Mode::Auto => PermissionMode::Auto,
        };
        let audit = if self.audit_broken {
            AuditState::NotVerifying
        } else {
            AuditState::Recording {
                entries: self.audit_entries,
                since_checkpoint: self.last_checkpoint.map(|(_, at)| at.elapsed()),
            }
        };
        let hint = match (&self.approval, self.running) {
            (Some(_), _) => "y allow · n deny · esc stop".to_string(),
            (None, true) => "esc interrupts".to_string(),
            (None, false) => crate::view::status::DEFAULT_HINT.to_string(),
        };
        StatusLine {
            model: self.info.model.clone(),
            place,
            mode,
            tokens_used: self.tokens,
            context_used: self.context,
            context_window: self.info.context_window,
            session_id: self.info.id.clone(),
            audit,
            hint,
        }
    }

    /// The live area: the streaming answer's tail, the approval or the
    /// prompt, a hint, the status line.
    /// A resize is handled before anything is written at the old geometry:
    /// its event may still wait in the queue behind the answer's pieces.
    fn sync_size(&mut self, screen: &mut Screen) {
        if let Ok((cols, rows)) = crossterm::terminal::size()
            && (cols, rows) != (screen.width(), screen.rows())
        {
            let _ = screen.resized(cols, rows);
        }
    }

    fn draw(&mut self, screen: &mut Screen) {
        self.sync_size(screen);
        let width = screen.width();
        let rows = screen.rows();
        let mut live: Vec<Line<'static>> = self.stream.lines(width);
        if live.is_empty() && self.running && self.approval.is_none() {
            live.push(dim("⋯ working (esc to interrupt)"));
        }
        if let Some(pick) = self.rewind_pick {
            live.extend(self.rewind_lines(pick));
        }
        if let Some(hint) = &self.hint {
            live.push(dim(hint.clone()));
        }
        let panel_height = self.approval.as_ref().map_or(0, |(_, p)| p.height(width));
        let prompt_height = if self.approval.is_some() { 0 } else { self.prompt.height(width) };
        let fixed = panel_height + prompt_height + 1;
        let room = rows.saturating_sub(fixed).min(rows / 2);
        if live.len() > usize::from(room) {
            live.drain(..live.len() - usize::from(room));
        }
        let height = (live.len() as u16 + fixed).min(rows);
        let _ = screen.set_height(height);
        let status = self.status();
        let prompt = &self.prompt;
        let approval = self.approval.as_ref().map(|(_, p)| p);
        let mut cursor_row = None;
        let _ = screen.draw(|frame| {
            let area = frame.area();
            let mut y = area.y;
            let live_rows = live.len() as u16;
            Paragraph::new(live.clone()).render(Rect::new(area.x, y, area.width, live_rows), frame.buffer_mut());
            y += live_rows;
            if let Some(panel) = approval {
                let h = panel_height.min(area.bottom().saturating_sub(y + 1));
                panel.render(Rect::new(area.x, y, area.width, h), frame.buffer_mut());
                y += h;
            } else {
                let h = prompt_height.min(area.bottom().saturating_sub(y + 1));
                let prompt_area = Rect::new(area.x, y, area.width, h);
                prompt.render(prompt_area, frame.buffer_mut());
                if let Some(cursor) = prompt.cursor_position(prompt_area) {
                    frame.set_cursor_position(cursor);
                    cursor_row = Some(cursor.y);
                }
                y += h;
            }
            if y < area.bottom() {
                status.render(Rect::new(area.x, y, area.width, 1), frame.buffer_mut());
            }
        });
        screen.note_cursor(cursor_row);
        self.width = width;
    }

    fn key(&mut self, event: Event, screen: &mut Screen, tx: &Sender<AppEvent>) {
        if let Event::Resize(cols, rows) = event {
            if (cols, rows) != (screen.width(), screen.rows()) {
                let _ = screen.resized(cols, rows);
            }
            return;
        }
        if self.ended {
            return;
        }
        if let Some((request, panel)) = self.approval.as_mut() {
            let Event::Key(key) = event else { return };
            if key.kind == KeyEventKind::Release {
                return;
            }
            if let Some(note) = panel.note.as_mut() {
                match key.code {
                    KeyCode::Enter => {
                        let note = std::mem::take(note);
                        let id = request.id;
                        self.answer(id, Answer::Deny { note }, screen);
                    }
                    KeyCode::Esc => panel.note = None,
                    KeyCode::Backspace => {
                        note.pop();
                    }
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        note.push_str(&crate::prompt::sanitize_input(&c.to_string()))
                    }
                    _ => {}
                }
                return;
            }
            match key.code {
                KeyCode::Esc => {
                    let _ = self.handle.send(Input::Interrupt);
                    self.hint = Some("interrupted".into());
                    self.approval = None;
                }
                KeyCode::Up => panel.scroll = panel.scroll.saturating_sub(1),
                KeyCode::Down => panel.scroll += 1,
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    let _ = self.handle.send(Input::Interrupt);
                    self.approval = None;
                }
                KeyCode::Char(c) => {
                    let Some(choice) = panel.request.choice_for_key(c) else { return };
                    let id = request.id;
                    let scope = request.scopes.last().cloned().unwrap_or_default();
                    match choice {
                        ApprovalChoice::Once => self.answer(id, Answer::Once, screen),
                        ApprovalChoice::Session => self.answer(id, Answer::Session { scope }, screen),
                        ApprovalChoice::Project => {
                            self.save_project_rule(&scope, screen);
                            self.answer(id, Answer::Project { scope }, screen);
                        }
                        ApprovalChoice::Deny => self.answer(id, Answer::Deny { note: String::new() }, screen),
                        ApprovalChoice::DenyWithNote => panel.note = Some(String::new()),
                    }
                }
                _ => {}
            }
            return;
        }
        if let (Some(pick), Event::Key(key)) = (self.rewind_pick, &event) {
            {
                match key.code {
                    KeyCode::Up => self.rewind_pick = Some(pick.saturating_sub(1)),
                    KeyCode::Down => self.rewind_pick = Some((pick + 1).min(self.checkpoints.len().saturating_sub(1))),
                    KeyCode::Enter => {
                        self.rewind_pick = None;
                        if let Some(c) = self.checkpoints.get(pick) {
                            let _ = self.handle.send(Input::Rewind { checkpoint: c.id.clone() });
                        }
                    }
                    KeyCode::Esc => self.rewind_pick = None,
                    _ => {}
                }
                return;
            }
        }
        if let Event::Key(KeyEvent { code: KeyCode::Char('o'), modifiers, .. }) = &event
            && modifiers.contains(KeyModifiers::CONTROL)
        {
            {
                if let Some(card) = &self.last_command {
                    let options = CardOptions { expanded: true, ..CardOptions::default() };
                    let _ = screen.insert(&card.lines(screen.width(), &options));
                }
                return;
            }
        }
        self.hint = None;
        match self.prompt.handle(&event) {
            PromptAction::Submit(text) => self.submit(text, screen, tx),
            PromptAction::Interrupt if self.running => {
                let _ = self.handle.send(Input::Interrupt);
                self.hint = Some("interrupting…".into());
            }
            PromptAction::Interrupt => {
                if self.prompt.exit_armed() {
                    self.hint = Some("press ctrl-c again to exit".into());
                }
            }
            PromptAction::Exit => self.exit(),
            PromptAction::CycleMode => {
                let modes = &self.info.modes;
                let at = modes.iter().position(|m| *m == self.mode).unwrap_or(0);
                if let Some(next) = modes.get((at + 1) % modes.len().max(1)) {
                    let _ = self.handle.send(Input::Mode(*next));
                }
            }
            PromptAction::Redraw | PromptAction::None => {}
        }
    }

    fn exit(&mut self) {
        self.ended = true;
        let _ = self.handle.send(Input::End);
    }

    fn answer(&mut self, id: u64, answer: Answer, screen: &mut Screen) {
        if let (Answer::Session { scope } | Answer::Project { scope }, Some((request, _))) = (&answer, &self.approval) {
            self.approved.push(format!("{} {scope}", request.tool));
        }
        let by = approver();
        let shown = match &answer {
            Answer::Once => "allowed once".to_string(),
            Answer::Session { scope } => format!("allowed for this session: {scope}"),
            Answer::Project { scope } => format!("allowed for this project: {scope}"),
            Answer::Deny { note } if note.is_empty() => "denied".to_string(),
            Answer::Deny { note } => format!("denied: {note}"),
        };
        let _ = screen.insert(&[dim(format!("  {shown} (you, {})", by.terminal))]);
        let _ = self.handle.send(Input::Answer { id, answer, by });
        self.approval = None;
    }

    fn save_project_rule(&mut self, scope: &str, screen: &mut Screen) {
        let (Some(policy), Some(config)) = (&self.options.policy, &self.info.user_config) else {
            let _ = screen.insert(&[dim("  no user configuration to save the rule in: allowed for this session only")]);
            return;
        };
        let command = self.approval.as_ref().is_some_and(|(r, _)| r.tool == "run_command");
        let kind = if command { airlock_policy::RuleKind::Command } else { airlock_policy::RuleKind::Tool };
        let line =
            match airlock_policy::add_workspace_rule(config, policy, kind, scope, airlock_policy::Permission::Allow) {
                Ok(_) => format!("  saved in {}: {scope} = allow for this workspace", config.display()),
                Err(e) => format!("  not saved ({e}): allowed for this session only"),
            };
        let _ = screen.insert(&[dim(line)]);
    }

    fn submit(&mut self, text: String, screen: &mut Screen, tx: &Sender<AppEvent>) {
        let text = text.trim_end().to_string();
        if text.is_empty() {
            return;
        }
        if let Some(command) = text.strip_prefix('/') {
            self.slash(command, screen, tx);
            return;
        }
        let mut lines = vec![Line::raw("")];
        for (i, line) in text.lines().enumerate() {
            let lead = if i == 0 { "› " } else { "  " };
            lines.push(Line::from(vec![
                Span::styled(lead, theme::DIM),
                Span::styled(clean_line(line), Style::new().add_modifier(Modifier::BOLD)),
            ]));
        }
        let _ = screen.insert(&lines);
        self.running = true;
        let _ = self.handle.send(Input::Prompt { text });
    }

    fn slash(&mut self, command: &str, screen: &mut Screen, tx: &Sender<AppEvent>) {
        let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
        let rest = rest.trim();
        let say = |screen: &mut Screen, lines: Vec<String>| {
            let lines: Vec<Line<'static>> = lines.into_iter().map(dim).collect();
            let _ = screen.insert(&lines);
        };
        match name {
            "help" => {
                let mut lines: Vec<String> = commands().iter().map(|c| format!("{:<13} {}", c.name, c.help)).collect();
                lines.push("keys: enter send · shift+enter or ctrl-j newline · esc interrupt · shift+tab mode · ctrl-r history search · ctrl-o expand the last command · ctrl-c twice exit".into());
                lines.push(format!("modes: ask (edits and commands ask) · edits (edits free) · plan (read-only) · auto (everything policy allows runs, sandboxed, without network) · allowed here: {}", self.info.modes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")));
                say(screen, lines);
            }
            "model" => say(
                screen,
                vec![format!(
                    "model {} · {} · switching models takes a new session: airlock --model NAME --continue",
                    self.info.model, self.info.place
                )],
            ),
            "mode" if rest.is_empty() => say(screen, vec![format!("mode {}", self.mode)]),
            "mode" => match rest.parse::<Mode>() {
                Ok(mode) => {
                    let _ = self.handle.send(Input::Mode(mode));
                }
                Err(e) => say(screen, vec![e.to_string()]),
            },
            "mcp" => {
                let mut lines = Vec::new();
                if self.info.mcp_tools.is_empty() && self.info.mcp_refused.is_empty() {
                    lines.push("no MCP servers: configure [mcp.servers.NAME] (airlock mcp list)".to_string());
                }
                if !self.info.mcp_tools.is_empty() {
                    lines.push("MCP tools (each server in a sandbox of its own; decided like the other tools):".into());
                    lines.extend(self.info.mcp_tools.iter().map(|t| format!("  {t}")));
                }
                for (server, why) in &self.info.mcp_refused {
                    lines.push(format!("  {server}: not started: {why}"));
                }
                say(screen, lines);
            }
            "permissions" => {
                let mut lines =
                    vec![format!("mode {} · rules in force (first match by tool, longest command prefix):", self.mode)];
                for rule in &self.info.permissions {
                    lines.push(format!(
                        "  {:<28} {:<5}  from {}",
                        format!("{:?}", rule.subject),
                        rule.decision.as_str(),
                        rule.source
                    ));
                }
                for approved in &self.approved {
                    lines.push(format!("  {approved:<28} allow  approved by you this session"));
                }
                say(screen, lines);
            }
            "rewind" => {
                if self.running {
                    say(screen, vec!["rewind waits until the turn is over (esc stops it)".into()]);
                } else if self.checkpoints.is_empty() {
                    say(screen, vec!["no checkpoint yet: one is taken before each turn".into()]);
                } else if let Ok(n) = rest.parse::<usize>() {
                    match self.checkpoints.get(n.saturating_sub(1)) {
                        Some(c) => {
                            let _ = self.handle.send(Input::Rewind { checkpoint: c.id.clone() });
                        }
                        None => say(screen, vec![format!("there is no turn {n}")]),
                    }
                } else {
                    self.rewind_pick = Some(self.checkpoints.len() - 1);
                }
            }
            "diff" => {
                let mut all: Vec<&String> = self.changed.values().flatten().collect();
                all.sort();
                all.dedup();
                let mut lines =
                    vec![format!("{} files changed this session (by the agent's edits and its commands):", all.len())];
                lines.extend(all.iter().map(|p| format!("  {p}")));
                say(screen, lines);
            }
            "audit" => {
                let exe = self.options.exe.clone();
                let (id, dir) = (self.info.id.clone(), self.info.data_dir.clone());
                let tx = tx.clone();
                say(screen, vec!["reading the log…".into()]);
                std::thread::spawn(move || {
                    let run = |args: &[&str]| {
                        std::process::Command::new(&exe)
                            .args(args)
                            .arg("--dir")
                            .arg(&dir)
                            .output()
                            .map(|o| {
                                String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
                            })
                            .unwrap_or_else(|e| format!("cannot run airlock: {e}"))
                    };
                    let mut lines: Vec<String> =
                        run(&["audit", "show", "--session", &id]).lines().map(String::from).collect();
                    lines.extend(run(&["audit", "verify"]).lines().map(String::from));
                    let _ = tx.send(AppEvent::Output(lines));
                });
            }
            "report" => {
                let out = self.info.data_dir.join("reports").join(format!("{}.html", self.info.id));
                let _ = std::fs::create_dir_all(out.parent().unwrap_or(&self.info.data_dir));
                let exe = self.options.exe.clone();
                let (id, dir) = (self.info.id.clone(), self.info.data_dir.clone());
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let done = std::process::Command::new(&exe)
                        .args(["report", &id, "--dir"])
                        .arg(&dir)
                        .arg("--output")
                        .arg(&out)
                        .output();
                    let line = match done {
                        Ok(o) if o.status.success() || o.status.code() == Some(1) => {
                            format!("report written: {}", out.display())
                        }
                        Ok(o) => format!("no report: {}", String::from_utf8_lossy(&o.stderr).trim()),
                        Err(e) => format!("no report: {e}"),
                    };
                    let _ = tx.send(AppEvent::Output(vec![line]));
                });
            }
            "compact" if self.running => say(screen, vec!["compact waits until the turn is over".into()]),
            "compact" => {
                self.compacting = true;
                self.running = true;
                say(screen, vec!["summarising the conversation…".into()]);
                let _ = self.handle.send(Input::Prompt {
                    text: "Summarise this conversation so far for yourself: the task, what was done, the files \
                           involved, decisions made, and what is left. Be concise; do not call tools."
                        .into(),
                });
            }
            "clear" => {
                let _ = self.handle.send(Input::Replace { history: Vec::new() });
                self.messages.clear();
                self.context = 0;
                say(
                    screen,
                    vec!["the conversation starts afresh (the record and the transcript keep what came before)".into()],
                );
            }
            "resume" => {
                let lines =
                    match airlock_core::session::list(&self.info.data_dir.join("sessions"), &self.info.workspace) {
                        Ok(found) if found.is_empty() => vec!["no other session in this workspace".to_string()],
                        Ok(found) => {
                            let mut lines = vec![
                                "sessions of this workspace (continue one with: airlock --resume ID):".to_string(),
                            ];
                            lines.extend(
                                found
                                    .iter()
                                    .take(10)
                                    .map(|s| format!("  {}  {}  {}", s.header.session, s.header.model, s.first_prompt)),
                            );
                            lines
                        }
                        Err(e) => vec![e.to_string()],
                    };
                say(screen, lines);
            }
            "exit" | "quit" => self.exit(),
            other => say(screen, vec![format!("unknown command /{other}: /help lists them")]),
        }
    }

    fn rewind_lines(&self, pick: usize) -> Vec<Line<'static>> {
        let mut lines = vec![
            dim(
                "rewind to before which turn? ↑↓ enter · esc · the files (what commands did included) and the conversation go back",
            ),
            dim(format!(
                "not rewound: {}; and {} (neither kept nor touched)",
                airlock_session::checkpoints::GIT_NOT_REWOUND.split(':').next().unwrap_or_default(),
                airlock_session::checkpoints::excluded_by_default().join(", ")
            )),
        ];
        for (i, c) in self.checkpoints.iter().enumerate() {
            let changed = self.changed.get(&(i + 1)).map_or(0, Vec::len);
            let text = format!(
                "{} {}: {}  ({} files changed in it)",
                if i == pick { "›" } else { " " },
                c.label,
                clean_line(&c.prompt),
                changed
            );
            let style = if i == pick { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
            lines.push(Line::styled(text, style));
        }
        lines
    }

    fn flush_stream(&mut self, screen: &mut Screen) {
        let lines = self.stream.finish(screen.width());
        if !lines.is_empty() {
            let _ = screen.insert(&lines);
        }
    }

    fn session(&mut self, event: SessionEvent, screen: &mut Screen) {
        match event {
            SessionEvent::Progress(progress) => self.progress(progress, screen),
            SessionEvent::Ask(request) => {
                self.flush_stream(screen);
                // The whole file before and after, as the person saw it: the card shows the same diff.
                if let (Shown::Change { path, before, after }, Some(p)) =
                    (&request.shown, self.pending.get_mut(&request.call_id))
                {
                    p.call = ToolCall::Edit {
                        path: path.clone(),
                        before: (!before.is_empty()).then(|| before.clone()),
                        after: after.clone(),
                    };
                }
                // "Allow for this project" is offered only where the rule would hold (managed policy may bound it).
                let kind = if request.tool == "run_command" {
                    airlock_policy::RuleKind::Command
                } else {
                    airlock_policy::RuleKind::Tool
                };
                let scope = request.scopes.last().cloned().unwrap_or_default();
                let can_save =
                    self.info.user_config.is_some()
                        && self.options.policy.as_ref().is_some_and(|p| {
                            p.check_user_rule(kind, &scope, airlock_policy::Permission::Allow).is_ok()
                        });
                let view = view_request(&request, can_save);
                self.approval = Some((request, ApprovalPanel::new(view)));
            }
            SessionEvent::Idle => {
                self.running = false;
                self.flush_stream(screen);
                self.refresh_audit();
                if self.compacting {
                    self.compacting = false;
                    if let Some(summary) = self.messages.iter().rev().find_map(|m| match m {
                        Message::Assistant { text, .. } if !text.is_empty() => Some(text.clone()),
                        _ => None,
                    }) {
                        let system = self.messages.iter().find(|m| matches!(m, Message::System(_))).cloned();
                        let mut history: Vec<Message> = system.into_iter().collect();
                        history.push(Message::User(format!("Summary of the conversation so far:\n{summary}")));
                        let _ = self.handle.send(Input::Replace { history });
                        let _ = screen.insert(&[dim("the conversation is now its summary")]);
                    }
                }
            }
            SessionEvent::Mode(mode) => {
                self.mode = mode;
                self.hint = Some(format!("mode {mode}"));
            }
            SessionEvent::Checkpoint(info) => self.checkpoints.push(info),
            SessionEvent::Rewound { checkpoint, restored, removed, messages_kept, history } => {
                let at = self.checkpoints.iter().position(|c| c.id == checkpoint.id).unwrap_or(0);
                self.checkpoints.truncate(at);
                self.changed.retain(|turn, _| *turn <= at);
                self.messages = history;
                let _ = screen.insert(&[dim(format!(
                    "rewound to before {}: {restored} files written back, {removed} removed, {messages_kept} messages kept (on the record)",
                    checkpoint.label
                ))]);
                self.prompt.set_text(&checkpoint.prompt);
            }
            SessionEvent::Replaced { history } => self.messages = history,
            SessionEvent::Notice(text) => {
                if text.contains("audit log refused") {
                    self.audit_broken = true;
                }
                let _ = screen.insert(&[dim(format!("airlock: {text}"))]);
            }
        }
    }

    fn progress(&mut self, progress: Progress, screen: &mut Screen) {
        let width = screen.width();
        match progress {
            Progress::TurnStart { .. } => self.running = true,
            Progress::TextDelta { text } => {
                self.stream.push(&text);
                let done = self.stream.take_finished(width);
                let _ = screen.insert(&done);
            }
            Progress::ModelText { .. } => self.flush_stream(screen),
            Progress::ToolCall { id, name, arguments } => {
                self.flush_stream(screen);
                self.pending.insert(id, Pending { call: view_call(&name, &arguments), denied: None });
            }
            Progress::Decision { id, decision, source } if decision != "allow" => {
                if let Some(p) = self.pending.get_mut(&id) {
                    p.denied = Some((source, None));
                }
            }
            Progress::Decision { .. } => {}
            Progress::ToolResult { id, is_error, bytes: _, preview } => {
                let Some(p) = self.pending.remove(&id) else { return };
                let outcome = match (p.denied, &p.call) {
                    (Some((by, _)), _) => {
                        let note =
                            preview.split_once("): ").map(|(_, n)| n.to_string()).filter(|_| by.starts_with("person:"));
                        ToolOutcome::Denied { by, note }
                    }
                    (None, ToolCall::Command { .. }) => command_outcome(&preview, is_error),
                    (None, _) if is_error => ToolOutcome::Failed { error: preview },
                    (None, call) => ToolOutcome::Done { count: count_of(call, &preview) },
                };
                let card = ToolCard { call: p.call, outcome };
                let _ = screen.insert(&card.lines(width, &CardOptions::default()));
                if matches!(card.call, ToolCall::Command { .. }) {
                    self.last_command = Some(card);
                }
            }
            Progress::FileChange { path, .. } => {
                self.changed.entry(self.checkpoints.len()).or_default().push(path);
            }
            Progress::ModelCall { input_tokens, output_tokens, .. } => {
                self.tokens += input_tokens + output_tokens;
                self.context = input_tokens + output_tokens;
            }
            Progress::Message { message } => self.messages.push(message),
            Progress::Done { stop, .. } => {
                self.flush_stream(screen);
                if stop == airlock_core::Stop::Cancelled {
                    let _ = screen.insert(&[dim("interrupted")]);
                } else if stop != airlock_core::Stop::Finished {
                    let _ = screen.insert(&[dim(format!("stopped: {stop:?}"))]);
                }
            }
        }
    }

    /// Counts this session's records and notes when a new checkpoint was signed.
    fn refresh_audit(&mut self) {
        use airlock_audit::store::{Durability, Filter, SqliteStore, Store};
        let Ok(store) = SqliteStore::open(&self.info.data_dir.join("audit.db"), Durability::Durable) else { return };
        let mut entries = 0;
        let filter = Filter { session: Some(self.info.id.clone()), ..Filter::default() };
        if store
            .list(&filter, &mut |_| {
                entries += 1;
                true
            })
            .is_ok()
        {
            self.audit_entries = entries;
        }
        if let Ok(Some((size, _))) = store.latest_checkpoint()
            && self.last_checkpoint.is_none_or(|(s, _)| s != size)
        {
            self.last_checkpoint = Some((size, Instant::now()));
        }
    }

    fn save_history(&self) {
        if let Some(file) = &self.options.history_file {
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(file, crate::prompt::encode_history(self.prompt.history()));
        }
    }
}

/// Who answers at this terminal.
fn approver() -> Approver {
    // SAFETY: getuid cannot fail; ttyname returns null or a C string owned by libc, copied at once.
    let uid = unsafe { libc::getuid() };
    let terminal = unsafe {
        let name = libc::ttyname(0);
        if name.is_null() {
            "no terminal".to_string()
        } else {
            std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    };
    let person = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| format!("uid {uid}"));
    Approver { person, uid: u64::from(uid), terminal }
}

/// The panel's view of a request.
fn view_request(request: &ApprovalRequest, can_save: bool) -> crate::view::approval::ApprovalRequest {
    let action = match &request.shown {
        Shown::Command { line, programs } => {
            ApprovalAction::Command { command: line.clone(), argv: programs.clone(), cwd: None }
        }
        Shown::Change { path, before, after } => ApprovalAction::Edit {
            path: path.clone(),
            before: (!before.is_empty()).then(|| before.clone()),
            after: after.clone(),
        },
        Shown::Call { arguments, problem } => ApprovalAction::Tool {
            name: request.tool.clone(),
            arguments: match problem {
                Some(p) => format!("{arguments}\n(it will probably fail: {p})"),
                None => arguments.to_string(),
            },
        },
    };
    let scope = request.scopes.last().cloned().unwrap_or_default();
    let session = match (&request.shown, request.scopes.len()) {
        (Shown::Command { .. }, 1) => Some(SessionGrant::ExactCommand(scope.clone())),
        (Shown::Command { .. }, _) => Some(SessionGrant::CommandPrefix(scope.clone())),
        _ => Some(SessionGrant::Tool(request.tool.clone())),
    };
    let project =
        (can_save && (request.scopes.len() > 1 || !matches!(request.shown, Shown::Command { .. }))).then(|| {
            match &request.shown {
                Shown::Command { .. } => format!("commands starting with: {scope}"),
                _ => format!("every {} call", request.tool),
            }
        });
    crate::view::approval::ApprovalRequest { action, reason: request.source.clone(), session, project }
}

/// A tool call as a card shows it.
fn view_call(name: &str, arguments: &serde_json::Value) -> ToolCall {
    let s = |key: &str| arguments.get(key).and_then(|v| v.as_str()).map(str::to_string);
    match name {
        "read_file" => ToolCall::Read { path: s("path").unwrap_or_default() },
        "list_dir" => ToolCall::List { path: s("path").unwrap_or_else(|| ".".into()) },
        "glob" => ToolCall::Glob { pattern: s("pattern").unwrap_or_default(), path: s("path") },
        "grep" => ToolCall::Search { pattern: s("pattern").unwrap_or_default(), path: s("path") },
        "edit_file" => ToolCall::Edit {
            path: s("path").unwrap_or_default(),
            before: s("old_string"),
            after: s("new_string").unwrap_or_default(),
        },
        "write_file" => ToolCall::Edit {
            path: s("path").unwrap_or_default(),
            before: None,
            after: s("content").unwrap_or_default(),
        },
        "run_command" => ToolCall::Command { command: s("command").unwrap_or_default() },
        other => ToolCall::Other { name: other.to_string(), arguments: arguments.to_string() },
    }
}

/// How a command ended, from its result (`exit 0 (12 ms)\n…`).
fn command_outcome(preview: &str, is_error: bool) -> ToolOutcome {
    let (head, output) = preview.split_once('\n').unwrap_or((preview, ""));
    let head_code = head.strip_prefix("exit ").and_then(|r| r.split(' ').next()).and_then(|c| c.parse::<i32>().ok());
    let exit = if head.starts_with("killed after") {
        CommandExit::TimedOut
    } else if head.starts_with("killed by a signal") {
        CommandExit::Signal(9)
    } else if let Some(code) = head_code {
        CommandExit::Code(code)
    } else if is_error {
        return ToolOutcome::Failed { error: preview.to_string() };
    } else {
        CommandExit::Code(0)
    };
    ToolOutcome::Command { exit, output: output.to_string() }
}

/// The count a read or search card shows, from its result.
fn count_of(call: &ToolCall, preview: &str) -> Option<usize> {
    match call {
        ToolCall::Edit { .. } | ToolCall::Other { .. } => None,
        _ => Some(preview.lines().filter(|l| !l.trim().is_empty()).count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_results_become_card_outcomes() {
        assert_eq!(
            command_outcome("exit 0 (3 ms)\nok", false),
            ToolOutcome::Command { exit: CommandExit::Code(0), output: "ok".into() }
        );
        assert_eq!(
            command_outcome("exit 2 (3 ms); no output", true),
            ToolOutcome::Command { exit: CommandExit::Code(2), output: String::new() }
        );
        assert!(matches!(
            command_outcome("killed after the 5 s timeout (5001 ms)", true),
            ToolOutcome::Command { exit: CommandExit::TimedOut, .. }
        ));
        assert!(matches!(command_outcome("the sandbox refused to run the command", true), ToolOutcome::Failed { .. }));
    }

    #[test]
    fn requests_offer_the_prefix_for_the_session_and_the_project() {
        let request = ApprovalRequest {
            id: 1,
            call_id: "c".into(),
            tool: "run_command".into(),
            shown: Shown::Command {
                line: "cargo test --lib".into(),
                programs: vec![vec!["cargo".into(), "test".into(), "--lib".into()]],
            },
            digest: String::new(),
            source: "rule:tool:run_command".into(),
            scopes: vec!["cargo test --lib".into(), "cargo test".into()],
        };
        let view = view_request(&request, true);
        assert_eq!(view.session, Some(SessionGrant::CommandPrefix("cargo test".into())));
        assert_eq!(view.project.as_deref(), Some("commands starting with: cargo test"));
        assert_eq!(view_request(&request, false).project, None);
    }
}
