//! The worker: the agent loop and its tools, run by the supervisor inside
//! the sandbox (no network, writes only in the workspace). It reaches the
//! model only through the broker's Unix socket, and everything it must not
//! decide or keep for itself (decisions, records, commands) it asks of the
//! supervisor over standard input and output ([`crate::ipc`]).

use std::io::{BufRead, BufReader, Stdout, Write};
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use airlock_audit::event::Event;
use airlock_model::embedded::{Engine, EngineOptions};
use airlock_model::{CancelToken, Client, Endpoint, Model};
use airlock_tools::{CommandResult, CommandRunner, PathPolicy, Tools, Workspace};
use serde_json::Value;

use crate::ipc::{self, Down, Start, Up};
use crate::{Agent, Budget, Decided, Host, Progress};

/// The current turn's cancellation, shared with the thread that reads the
/// supervisor's lines: an interrupt cancels it at once, even while the
/// model says nothing.
type Turn = Arc<Mutex<CancelToken>>;

/// One side of the pipe to the supervisor, shared by the host and the
/// command runner: requests go out on `writer`; a thread reads every line
/// the supervisor sends, cancels the turn on [`Down::Interrupt`], and hands
/// the other lines over as the answers they are.
pub struct Channel<W> {
    writer: W,
    answers: Receiver<Result<Down, String>>,
}

impl<W: Write> Channel<W> {
    /// A channel whose answers are read from `reader` on a thread of their own.
    pub fn new<R: BufRead + Send + 'static>(mut reader: R, writer: W, turn: Turn) -> Channel<W> {
        let (tx, answers) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            loop {
                let line = match ipc::read_line(&mut reader, &mut buf) {
                    Ok(Some(())) => ipc::parse::<Down>(&buf),
                    Ok(None) => Err("the supervisor closed the pipe".into()),
                    Err(e) => Err(e),
                };
                let last = line.is_err();
                match line {
                    Ok(Down::Interrupt) => turn.lock().unwrap_or_else(|e| e.into_inner()).cancel(),
                    other => {
                        if tx.send(other).is_err() || last {
                            return;
                        }
                    }
                }
            }
        });
        Channel { writer, answers }
    }

    /// Sends `up` and waits for the answer.
    pub fn ask(&mut self, up: &Up) -> Result<Down, String> {
        ipc::write(&mut self.writer, up)?;
        self.answers.recv().map_err(|_| "the supervisor closed the pipe".to_string())?
    }
}

type Shared = Arc<Mutex<Channel<Stdout>>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Channel<Stdout>> {
    // A panic while holding the lock leaves the channel usable: lines are whole.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The supervisor, as the loop's [`Host`].
struct PipeHost {
    channel: Shared,
    /// The person's note with the last denial.
    note: Option<String>,
}

impl Host for PipeHost {
    fn decide(&mut self, id: &str, name: &str, arguments: &Value) -> Result<Decided, String> {
        let up = Up::Decide { id: id.into(), name: name.into(), arguments: arguments.clone() };
        match lock(&self.channel).ask(&up)? {
            Down::Decided { decision, source, note } => {
                self.note = note;
                Ok(Decided { decision, source })
            }
            Down::Refused { error } => Err(error),
            other => Err(format!("the supervisor answered {other:?} to a decision")),
        }
    }

    fn record(&mut self, event: Event) -> Result<(), String> {
        ok(lock(&self.channel).ask(&Up::Record { event })?)
    }

    fn progress(&mut self, progress: Progress) -> Result<(), String> {
        // The supervisor made the decision and reports it itself: a
        // decision from this side would be a forgery.
        if let Progress::Decision { .. } = progress {
            return Ok(());
        }
        ok(lock(&self.channel).ask(&Up::Progress { progress })?)
    }

    fn denial_note(&mut self) -> Option<String> {
        self.note.take()
    }
}

fn ok(down: Down) -> Result<(), String> {
    match down {
        Down::Ok => Ok(()),
        Down::Refused { error } => Err(error),
        other => Err(format!("the supervisor answered {other:?}")),
    }
}

/// Commands run by the supervisor, each in a sandbox of its own (the
/// worker's seccomp filter forbids it new namespaces, so it cannot nest one).
struct PipeRunner(Shared);

impl std::fmt::Debug for PipeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PipeRunner")
    }
}

impl CommandRunner for PipeRunner {
    fn run(&mut self, command: &str, _cwd: &Path, timeout: Duration) -> Result<CommandResult, String> {
        let up = Up::Run { command: command.into(), timeout_secs: timeout.as_secs().max(1) };
        match lock(&self.0).ask(&up)? {
            Down::Ran { exit_status, timed_out, output, duration_ms } => {
                Ok(CommandResult { exit_status, timed_out, output, duration_ms })
            }
            Down::Refused { error } => Err(error),
            other => Err(format!("the supervisor answered {other:?} to a command")),
        }
    }
}

/// MCP tools, called by the supervisor (it started their servers, each in
/// a sandbox of its own, and holds their secrets).
struct PipeMcp(Shared);

impl std::fmt::Debug for PipeMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PipeMcp")
    }
}

impl airlock_tools::ExternalTools for PipeMcp {
    fn call(&mut self, name: &str, arguments: &Value) -> Result<(String, bool), String> {
        let up = Up::Mcp { name: name.into(), arguments: arguments.clone() };
        match lock(&self.0).ask(&up)? {
            Down::McpResult { content, is_error } => Ok((content, is_error)),
            Down::Refused { error } => Err(error),
            other => Err(format!("the supervisor answered {other:?} to an MCP call")),
        }
    }
}

/// `airlock __worker`: reads the task from standard input and runs the loop
/// in the current directory (the workspace). Returns an error to print when
/// the run could not be done; the supervisor has been told already when it
/// could be.
pub fn main() -> Result<(), String> {
    let mut stdin = BufReader::new(std::io::stdin());
    let mut buf = Vec::new();
    let start: Start = match ipc::read_line(&mut stdin, &mut buf)? {
        Some(()) => ipc::parse(&buf)?,
        None => return Err("the supervisor sent no task".into()),
    };
    let turn: Turn = Arc::new(Mutex::new(CancelToken::new()));
    let shared: Shared = Arc::new(Mutex::new(Channel::new(stdin, std::io::stdout(), Arc::clone(&turn))));
    let result = run(&shared, start, &turn);
    if let Err(error) = &result {
        // The supervisor records why; if it cannot be told, it sees the pipe close.
        let _ = lock(&shared).ask(&Up::Failed { error: error.clone() });
    }
    result
}

fn run(shared: &Shared, start: Start, turn: &Turn) -> Result<(), String> {
    let root = std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    let paths = PathPolicy::with_patterns(&root, &[]).map_err(|e| e.to_string())?;
    let workspace = Workspace::open(&root, paths).map_err(|e| e.to_string())?;
    let mut tools = Tools::new(workspace);
    if start.commands {
        tools = tools.with_runner(Box::new(PipeRunner(Arc::clone(shared))));
    }
    if !start.mcp_tools.is_empty() {
        tools = tools.with_external(start.mcp_tools.clone(), Box::new(PipeMcp(Arc::clone(shared))));
    }
    let client = match &start.embedded {
        Some(e) => {
            let options = EngineOptions { context: e.context, threads: e.threads };
            Model::Embedded(Box::new(Engine::load(Path::new(&e.path), &options).map_err(|e| e.to_string())?))
        }
        None => {
            // A descriptor of the broker's folder, kept for the process's life, when its path is too long.
            let (broker, folder) =
                ipc::socket_path(Path::new(&start.broker)).map_err(|e| format!("the broker's socket: {e}"))?;
            std::mem::forget(folder);
            let style = start.api;
            let client = Client::new(Endpoint {
                style,
                // The broker routes by model; the host name is only for the Host header.
                base_url: "http://broker".into(),
                api_key: None,
                unix_socket: Some(broker),
                timeout: Duration::from_secs(600),
                max_retries: 2,
            })
            .map_err(|e| e.to_string())?;
            Model::Remote(client)
        }
    };
    let mut agent = Agent {
        client,
        model: start.model.clone(),
        tools,
        host: PipeHost { channel: Arc::clone(shared), note: None },
        budget: Budget {
            max_turns: start.max_turns,
            max_tokens: start.max_tokens,
            max_answer_tokens: start.max_answer_tokens,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut history = start.history;
    let mut task = start.task;
    if task.is_empty() && start.interactive {
        // A session opened without a first message waits for the person's.
        let Some((text, replaced)) = next_prompt(shared)? else { return Ok(()) };
        task = text;
        history = replaced.unwrap_or(history);
    }
    loop {
        let cancel = CancelToken::new();
        *turn.lock().unwrap_or_else(|e| e.into_inner()) = cancel.clone();
        let outcome = runtime.block_on(agent.resume(history, &task, &cancel)).map_err(|e| e.to_string())?;
        if !start.interactive {
            return Ok(());
        }
        let Some((text, replaced)) = next_prompt(shared)? else { return Ok(()) };
        task = text;
        history = replaced.unwrap_or(outcome.messages);
    }
}

/// The person's next message, and the conversation to continue from when it was replaced.
type NextPrompt = (String, Option<Vec<airlock_model::Message>>);

/// Waits for the person's next message; `None` when the session ends.
fn next_prompt(shared: &Shared) -> Result<Option<NextPrompt>, String> {
    match lock(shared).ask(&Up::Next)? {
        Down::Prompt { text, history } => Ok(Some((text, history))),
        Down::End => Ok(None),
        other => Err(format!("the supervisor answered {other:?} when asked for the next prompt")),
    }
}
