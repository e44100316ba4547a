//! One agent session's lifecycle, for every front end: where the model runs
//! ([`route`]), the broker that is the session's only way out, the worker
//! in its sandbox, the supervisor that decides, asks and records, the audit
//! writer, the transcript, and checkpoints for rewind.
//!
//! A front end (`airlock exec`'s printer, the terminal UI, later an editor
//! protocol) is thin: it resolves a [`Route`], opens the audit log, calls
//! [`Session::start`], and then [`Session::serve`] with a
//! [`FrontEnd`] that receives [`SessionEvent`]s; a [`Handle`] sends the
//! person's [`Input`] (prompts, answers to approvals, interrupts, mode
//! changes, rewinds) from any thread.
//!
//! ```no_run
//! # fn demo(options: airlock_session::SessionOptions) -> Result<(), airlock_session::SessionError> {
//! let session = airlock_session::Session::start(options)?;
//! let ended = session.serve(&mut |event| eprintln!("{event:?}"))?;
//! std::process::exit(i32::from(ended.code));
//! # }
//! ```
#![deny(missing_docs)]

pub mod checkpoints;
pub mod mcp;
pub mod route;
pub mod run;

use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use airlock_audit::event::Event;
use airlock_audit::log::AuditLog;
use airlock_audit::store::SqliteStore;
use airlock_audit::writer::{AuditHandle, AuditWriter};
pub use airlock_core::decide::Mode;
use airlock_core::ipc::Start;
use airlock_core::session::{Header, Transcript};
pub use airlock_core::supervisor::{
    Answer, ApprovalRequest, Approver, CheckpointInfo, FrontEnd, Incoming, Input, SessionEvent, Shown,
};
use airlock_core::supervisor::{Served, Supervisor};
use airlock_core::{Budget, Progress, Rules, Stop};
use airlock_gateway::server::{Auth, Gateway, serve_unix};
use airlock_model::{ApiStyle, Message};
use airlock_policy::exit;
pub use route::{ModelChoice, Place, Route};
use run::{KillOnDrop, RemoveOnDrop};
use sha2::{Digest, Sha256};

/// What stops a session from starting or ending properly.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The configuration does not work (no model, a bad endpoint, a resumed session from elsewhere).
    #[error("{0}")]
    Config(String),
    /// The model cannot be used.
    #[error("model: {0}")]
    Model(String),
    /// Reading or writing failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The transcript.
    #[error(transparent)]
    Transcript(#[from] airlock_core::session::SessionError),
    /// The audit log refused.
    #[error("the audit log: {0}")]
    Audit(String),
    /// A protection cannot be applied.
    #[error("{0}")]
    Refused(String),
}

/// Everything a session needs.
pub struct SessionOptions {
    /// The workspace (canonical).
    pub workspace: PathBuf,
    /// The effective policy.
    pub policy: airlock_policy::Policy,
    /// The audit log, opened for appending.
    pub log: AuditLog<SqliteStore>,
    /// airlock's data folder: `sessions/` (transcripts) and `checkpoints/`.
    pub data_dir: PathBuf,
    /// Where the model runs ([`route::route`]).
    pub route: Route,
    /// Limits of each turn.
    pub budget: Budget,
    /// Tools and command prefixes granted on the command line.
    pub grants: Vec<String>,
    /// The whole session is killed after this many seconds.
    pub timeout_secs: u64,
    /// Continue this session's conversation.
    pub resume: Option<String>,
    /// The first message (none: wait for the person's first prompt).
    pub task: Option<String>,
    /// A person is present: approvals are asked, the session goes on after each turn, checkpoints are taken.
    pub interactive: bool,
    /// The permission mode to start in (checked against the policy's
    /// modes); `None` for the policy's default.
    pub mode: Option<Mode>,
    /// Who runs it (for `session_start`).
    pub user: String,
    /// On which host.
    pub host: String,
    /// The airlock binary (the worker and the command sandboxes run it).
    pub exe: PathBuf,
    /// Context of the embedded model, in tokens.
    pub context: u32,
    /// Threads of the embedded model.
    pub threads: Option<u32>,
    /// The user configuration file, for "allow for this project".
    pub user_config: Option<PathBuf>,
    /// MCP servers besides the policy's (an editor's, for `airlock acp`):
    /// each runs in a sandbox of its own like the policy's, and its tools
    /// are decided like theirs (a server the policy does not name is denied
    /// unless granted).
    pub extra_mcp: Vec<airlock_mcp::ServerSpec>,
}

/// What a front end shows about the session before anything happens.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Its id (the audit log's session and the transcript's name).
    pub id: String,
    /// The model.
    pub model: String,
    /// Where it runs.
    pub place: Place,
    /// The workspace.
    pub workspace: PathBuf,
    /// The conversation so far, when resuming.
    pub history: Vec<Message>,
    /// The mode it starts in.
    pub mode: Mode,
    /// The modes policy allows.
    pub modes: Vec<Mode>,
    /// Warnings from the start (a run folder passed over).
    pub warnings: Vec<String>,
    /// The audit log's folder.
    pub data_dir: PathBuf,
    /// The rules in force at the start, each with where it comes from.
    pub permissions: Vec<airlock_core::decide::RuleInForce>,
    /// The user configuration file ("allow for this project" rules go there).
    pub user_config: Option<PathBuf>,
    /// The model's context window in tokens, when known (the embedded model's).
    pub context_window: Option<u64>,
    /// The MCP tools offered (qualified names), and the servers that did
    /// not start, with why.
    pub mcp_tools: Vec<String>,
    /// MCP servers that could not start, with why.
    pub mcp_refused: Vec<(String, String)>,
}

/// Sends the person's input to a running session, from any thread.
#[derive(Debug, Clone)]
pub struct Handle(Sender<Incoming>, airlock_tools::Running, Option<airlock_mcp::Interrupter>);

impl Handle {
    /// Sends `input`; false when the session is over. An interrupt or the
    /// end also stops a command that is running (its sandbox and every
    /// process in it), which the supervisor waits for, and ends an MCP
    /// call in progress (its server goes on).
    pub fn send(&self, input: Input) -> bool {
        if matches!(input, Input::Interrupt | Input::End) {
            self.1.interrupt();
            if let Some(mcp) = &self.2 {
                mcp.interrupt();
            }
        }
        self.0.send(Incoming::Person(input)).is_ok()
    }
}

/// How a session ended.
#[derive(Debug)]
pub struct Ended {
    /// The exit status (`airlock_policy::exit`).
    pub code: u8,
    /// Why, as recorded in `session_end`.
    pub reason: String,
    /// The worker's last report, when it got that far.
    pub done: Option<airlock_core::supervisor::Done>,
    /// Git control files that commands changed.
    pub git_control: Vec<String>,
    /// A transcript line that could not be written.
    pub transcript_error: Option<String>,
}

/// The broker's runtime, its stop signal and its task.
type Broker = (tokio::runtime::Runtime, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>);

/// A started session: the worker is in its sandbox, the broker listens.
pub struct Session {
    info: SessionInfo,
    start: Start,
    tx: Sender<Incoming>,
    rx: Receiver<Incoming>,
    worker: KillOnDrop,
    to_worker: Option<std::process::ChildStdin>,
    worker_stderr: Option<std::thread::JoinHandle<()>>,
    reader: Option<std::thread::JoinHandle<()>>,
    broker: Option<Broker>,
    writer: AuditWriter<SqliteStore>,
    audit: AuditHandle,
    transcript: Transcript,
    rules: Rules,
    paths: airlock_tools::PathPolicy,
    policy_digest: String,
    embedded: Option<(String, String)>,
    exe: PathBuf,
    output_bytes: u64,
    checkpoints: Option<Box<dyn airlock_core::supervisor::Checkpoints>>,
    running: airlock_tools::Running,
    mcp: Option<mcp::SessionMcp>,
    mcp_interrupt: Option<airlock_mcp::Interrupter>,
    _mcp_dir: Option<RemoveOnDrop>,
    _run_dir: RemoveOnDrop,
}

/// Output of a command kept for the model, per stream (head and tail): more
/// would cost a local model minutes of prefill and rarely helps.
const COMMAND_OUTPUT: u64 = 32 * 1024;

impl Session {
    /// Starts a session: the transcript, the worker in its sandbox (built
    /// while the rest starts), the audit writer with `session_start`, the
    /// broker. With an embedded model the network is forbidden to this
    /// process first: call this before starting any thread of your own.
    pub fn start(options: SessionOptions) -> Result<Session, SessionError> {
        let SessionOptions {
            workspace,
            policy,
            log,
            data_dir,
            route,
            budget,
            grants,
            timeout_secs,
            resume,
            task,
            interactive,
            mode,
            user,
            host,
            exe,
            context,
            threads,
            user_config,
            extra_mcp,
        } = options;
        if let Route::Embedded { .. } = route {
            // Offline: from here on no process of this session can open a
            // network socket. Before any thread starts, so every one is covered.
            airlock_sandbox::seccomp::forbid_network().map_err(|e| {
                SessionError::Refused(format!(
                    "cannot forbid the network to this process (seccomp), so offline mode cannot be proven: {e}"
                ))
            })?;
        }
        let io = |what: String| move |source| SessionError::Io { what, source };
        let model = route.model().to_string();
        let sessions = data_dir.join("sessions");
        let (id, transcript, history) = match &resume {
            Some(id) => {
                let (t, loaded) = Transcript::resume(&sessions, id)?;
                let here = workspace.display().to_string();
                if loaded.header.workspace != here {
                    return Err(SessionError::Config(format!(
                        "session {id} ran in {}, not here ({here})",
                        loaded.header.workspace
                    )));
                }
                (id.clone(), t, loaded.messages)
            }
            None => {
                let id = run::new_session_id().map_err(io("cannot make a session id".into()))?;
                let header = Header {
                    session: id.clone(),
                    workspace: workspace.display().to_string(),
                    model: model.clone(),
                    started_ms: now_ms(),
                };
                (id.clone(), Transcript::create(&sessions, &header)?, Vec::new())
            }
        };
        let task = match task {
            Some(t) if !t.trim().is_empty() => Some(t),
            _ if resume.is_some() && !interactive => Some("Continue.".to_string()),
            _ if interactive => None,
            _ => return Err(SessionError::Config("no task given\nhint: airlock exec \"fix the failing test\"".into())),
        };
        let modes = policy.agent.modes.value.clone();
        let mode = mode.unwrap_or(policy.agent.default_mode.value);
        if !modes.contains(&mode) {
            return Err(SessionError::Config(format!(
                "policy does not allow the {mode} mode (allowed: {})",
                modes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut rules = Rules::from_policy(&policy);
        rules.granted.extend(grants);
        rules.headless = !interactive;

        let exe_dir = exe.parent().ok_or_else(|| SessionError::Config(format!("{} has no folder", exe.display())))?;
        // A private folder the worker's sandbox can see: the broker's socket.
        // Not beside the audit log: the sandbox hides airlock's data folder.
        let (root, mut warnings) = run::run_root().map_err(SessionError::Config)?;
        let run_dir = root.join(&id);
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&run_dir)
                .map_err(io(format!("cannot create {}", run_dir.display())))?;
        }
        let run_dir_guard = RemoveOnDrop(run_dir.clone());
        let socket = run_dir.join("broker.sock");
        let listener = match &route {
            Route::Broker { .. } => {
                let _ = std::fs::remove_file(&socket);
                // A long path does not fit sockaddr_un: bind through the folder's descriptor.
                let (short, _folder) = airlock_core::ipc::socket_path(&socket)
                    .map_err(io(format!("cannot open {}", run_dir.display())))?;
                Some(
                    std::os::unix::net::UnixListener::bind(&short)
                        .map_err(io(format!("cannot listen on {}", socket.display())))?,
                )
            }
            Route::Embedded { .. } => None,
        };
        // The model file itself, not its folder: a readable folder is walked,
        // and for a root caller what in it is not world-readable (the store's
        // files are 0600) is hidden; a root that is a file is shown as it is.
        let visible = match &route {
            Route::Broker { .. } => run_dir.clone(),
            Route::Embedded { path, .. } => path.clone(),
        };

        // The worker starts first: its sandbox is built while this process
        // opens the log and the broker. It waits for its task, which comes after.
        let mut worker = Command::new(&exe)
            .arg("sandbox")
            .arg("--worker-openat2")
            .arg("--timeout")
            .arg(timeout_secs.to_string())
            .arg("--read")
            .arg(exe_dir)
            .arg("--read")
            .arg(&visible)
            .args(listener.as_ref().map(|_| ["--socket".as_ref(), socket.as_os_str()]).into_iter().flatten())
            .arg("--")
            .arg(&exe)
            .arg("__worker")
            .current_dir(&workspace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io(format!("cannot start the worker ({})", exe.display())))?;
        let (Some(to_worker), Some(from_worker)) = (worker.stdin.take(), worker.stdout.take()) else {
            return Err(SessionError::Config("the worker's pipes are missing".into()));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        // The worker runs model output: what it writes for the person
        // reaches them only sanitised, as a notice.
        let worker_stderr = worker.stderr.take().map(|stderr| {
            let tx = tx.clone();
            std::thread::spawn(move || relay_stderr(stderr, tx))
        });
        // If anything below fails, the worker goes too (it sees its input close).
        let worker = KillOnDrop(Some(worker));
        let reader = Some(airlock_core::supervisor::read_worker(BufReader::new(from_worker), tx.clone()));

        let writer = AuditWriter::spawn(log).map_err(|e| SessionError::Audit(e.to_string()))?;
        let audit = writer.handle();
        let policy_digest = hex::encode(Sha256::digest(policy.render().as_bytes()));
        let embedded = match &route {
            Route::Embedded { name, sha256, .. } => Some((name.clone(), sha256.clone())),
            Route::Broker { .. } => None,
        };
        audit
            .append(
                &id,
                vec![Event::SessionStart {
                    policy_digest: policy_digest.clone(),
                    model_endpoint: route.describe(),
                    airlock_version: env!("CARGO_PKG_VERSION").into(),
                    user,
                    host,
                    workspace: workspace.display().to_string(),
                }],
            )
            .map_err(|e| SessionError::Audit(e.to_string()))?;

        // The MCP servers, each in a sandbox of its own (started while the
        // worker's is built); what they offer goes into the worker's task.
        let scanner = Arc::new(airlock_redact::Scanner::builtin());
        let (mut specs, mut mcp_refused) = mcp::specs_from_policy(&policy, &workspace);
        specs.extend(extra_mcp);
        // The editor's servers are not in the policy: their tools are decided
        // by the built-in default (read-only ones allow, the others ask), not
        // denied as an unknown server. The policy's servers have their rules.
        for spec in &specs {
            if !rules.mcp.iter().any(|r| r.server == spec.name) {
                let server = spec.name.clone();
                rules.mcp.push(airlock_core::decide::McpServerRules { server, tools: Vec::new(), default: None });
            }
        }
        let mut mcp_events: Vec<Event> = mcp_refused
            .iter()
            .map(|(server, why)| Event::McpServer {
                server: server.clone(),
                action: "refused".into(),
                digest: String::new(),
                detail: why.clone(),
            })
            .collect();
        // Not in the run folder: the worker may read that one.
        let mcp_dir = root.join(format!("{id}.mcp"));
        let mcp_dir_guard = match specs.is_empty() {
            true => None,
            false => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&mcp_dir)
                    .map_err(io(format!("cannot create {}", mcp_dir.display())))?;
                Some(RemoveOnDrop(mcp_dir.clone()))
            }
        };
        let mut session_mcp = mcp::SessionMcp::start(
            &specs,
            &mcp::launcher(
                &exe,
                &workspace,
                &mcp_dir,
                std::time::Duration::from_secs(timeout_secs),
                Some((audit.clone(), id.clone())),
            ),
            scanner.clone(),
        );
        if let Some(started) = session_mcp.as_mut() {
            use airlock_core::supervisor::McpCalls;
            mcp_events.extend(started.events());
            rules.set_mcp_read_only(started.read_only());
        }
        for event in &mcp_events {
            match event {
                Event::McpServer { server, action, detail, .. } if action == "refused" => {
                    mcp_refused.push((server.clone(), detail.clone()))
                }
                Event::McpServer { server, action, detail, .. } if action == "tool_refused" => {
                    warnings.push(format!("MCP server {server}: {detail}"))
                }
                _ => {}
            }
        }
        mcp_refused.dedup();
        warnings.extend(mcp_refused.iter().map(|(server, why)| format!("MCP server {server} was not started: {why}")));
        audit.append(&id, mcp_events).map_err(|e| SessionError::Audit(e.to_string()))?;

        // The broker: the only code of this session that opens a connection.
        let place = route.place();
        let (api, embedded_start, broker) = match route {
            Route::Broker { config, api, .. } => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(io("cannot start the runtime".into()))?;
                // SAFETY: getuid cannot fail.
                let uid = unsafe { libc::getuid() };
                let auth = Auth::Session { uid, session: id.clone(), key: None };
                let gw = Gateway::new(config, auth, audit.clone(), scanner)
                    .map_err(|e| SessionError::Config(e.to_string()))?;
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let listener = listener.ok_or_else(|| SessionError::Config("the broker has no socket".into()))?;
                let task = runtime.spawn(serve_unix(gw, listener, async move {
                    let _ = stopped.await;
                }));
                (api, None, Some((runtime, stop, task)))
            }
            Route::Embedded { path, .. } => (
                ApiStyle::OpenAi,
                Some(airlock_core::ipc::Embedded { path: path.display().to_string(), context, threads }),
                None,
            ),
        };
        let start = Start {
            task: task.unwrap_or_default(),
            history: history.clone(),
            model: model.clone(),
            api,
            broker: socket.display().to_string(),
            max_turns: budget.max_turns,
            max_tokens: budget.max_tokens,
            // A small local model that rambles pays minutes for it.
            max_answer_tokens: if embedded_start.is_some() { 1024 } else { budget.max_answer_tokens },
            commands: true,
            embedded: embedded_start,
            interactive,
            mcp_tools: session_mcp.as_ref().map(mcp::SessionMcp::external_specs).unwrap_or_default(),
        };
        let paths = airlock_tools::PathPolicy::with_patterns(&workspace, &[])
            .map_err(|e| SessionError::Config(e.to_string()))?;
        let checkpoints = if interactive {
            match checkpoints::open(&data_dir, &workspace, &id) {
                Ok(store) => Some(store),
                Err(e) => {
                    return Err(SessionError::Config(format!("cannot keep checkpoints for rewind: {e}")));
                }
            }
        } else {
            None
        };
        let output_bytes = policy.limits.output_bytes.value.min(COMMAND_OUTPUT);
        Ok(Session {
            info: SessionInfo {
                id,
                model,
                place,
                workspace,
                history,
                mode,
                modes,
                warnings,
                data_dir,
                permissions: rules.in_force(),
                user_config,
                context_window: embedded.as_ref().map(|_| u64::from(context)),
                mcp_tools: session_mcp
                    .as_ref()
                    .map(|m| m.tools().iter().map(|t| t.name.clone()).collect())
                    .unwrap_or_default(),
                mcp_refused,
            },
            start,
            tx,
            rx,
            worker,
            to_worker: Some(to_worker),
            worker_stderr,
            reader,
            broker,
            writer,
            audit,
            transcript,
            rules,
            paths,
            policy_digest,
            embedded,
            exe,
            output_bytes,
            checkpoints,
            running: airlock_tools::Running::default(),
            mcp_interrupt: session_mcp.as_ref().map(mcp::SessionMcp::interrupter),
            mcp: session_mcp,
            _mcp_dir: mcp_dir_guard,
            _run_dir: run_dir_guard,
        })
    }

    /// What the session is.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Sends the person's input, from any thread.
    pub fn handle(&self) -> Handle {
        Handle(self.tx.clone(), self.running.clone(), self.mcp_interrupt.clone())
    }

    /// Runs the session on this thread until the worker is done (headless)
    /// or the person ends it; `front` sees every event. Then the worker is
    /// reaped, the broker stopped, `session_end` recorded and the log's tail
    /// signed.
    pub fn serve(mut self, front: &mut dyn FrontEnd) -> Result<Ended, SessionError> {
        let mut transcript_error = None;
        let served = {
            let transcript = &mut self.transcript;
            let mut noting = |event: SessionEvent| {
                let noted = match &event {
                    SessionEvent::Progress(p @ (Progress::Message { .. } | Progress::Done { .. })) => {
                        transcript.note(p)
                    }
                    SessionEvent::Rewound { history, .. } | SessionEvent::Replaced { history } => {
                        transcript.replace(history)
                    }
                    _ => Ok(()),
                };
                if let Err(e) = noted {
                    transcript_error.get_or_insert(e.to_string());
                }
                front.event(event);
            };
            let mut supervisor = Supervisor {
                rules: self.rules.clone(),
                mode: self.info.mode,
                modes: self.info.modes.clone(),
                paths: self.paths.clone(),
                session: self.info.id.clone(),
                audit: self.audit.clone(),
                // Commands see the never-read files hidden, as the file tools refuse them.
                runner: Box::new(
                    airlock_tools::SandboxRunner::new(&self.exe, self.output_bytes)
                        .hiding(self.paths.clone())
                        .interruptible(self.running.clone()),
                ),
                workspace: self.info.workspace.clone(),
                sandbox_digest: self.policy_digest.clone(),
                front: &mut noting,
                embedded: self.embedded.clone(),
                checkpoints: self.checkpoints.take(),
                mcp: self.mcp.take().map(|m| Box::new(m) as Box<dyn airlock_core::supervisor::McpCalls>),
            };
            let to_worker = self.to_worker.take().ok_or_else(|| SessionError::Config("served twice".into()))?;
            supervisor.serve(&self.start, to_worker, &self.rx)
        };
        // A worker that broke the protocol is not waited for politely.
        let mut worker = self.worker.0.take().ok_or_else(|| SessionError::Config("the worker is gone".into()))?;
        if served.violation.is_some() || served.ended {
            let _ = worker.kill();
        }
        let status = worker.wait().map_err(|source| SessionError::Io { what: "the worker".into(), source })?;
        drop(self.rx);
        if let Some(relay) = self.worker_stderr.take() {
            let _ = relay.join();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if let Some((runtime, stop, task)) = self.broker.take() {
            let _ = stop.send(());
            let _ = runtime.block_on(task);
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
        let (code, reason) = outcome(&served, status.code());
        let ended = self.audit.append(&self.info.id, vec![Event::SessionEnd { reason: reason.clone() }]);
        drop(self.audit);
        let closed = self.writer.close();
        ended.map_err(|e| SessionError::Audit(e.to_string()))?;
        closed.map_err(|e| SessionError::Audit(e.to_string()))?;
        Ok(Ended { code, reason, done: served.done, git_control: served.git_control, transcript_error })
    }
}

/// The worker's standard error, line by line, as notices.
fn relay_stderr(from: impl std::io::Read, to: Sender<Incoming>) {
    use std::io::BufRead;
    let mut from = BufReader::new(from);
    let mut line = Vec::new();
    let mut shown = 0;
    loop {
        line.clear();
        match std::io::Read::take(&mut from, 64 * 1024).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            // The worker runs model output: a flood is drained, not shown
            // (it would bury the conversation and grow the queue without end).
            Ok(_) if shown > STDERR_LINES => {}
            Ok(_) => {
                shown += 1;
                let text = if shown > STDERR_LINES {
                    format!("wrote more than {STDERR_LINES} lines on its error stream; the rest is not shown")
                } else {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end();
                    match text.char_indices().nth(STDERR_LINE_CHARS) {
                        Some((cut, _)) => format!("{}…", &text[..cut]),
                        None => text.to_string(),
                    }
                };
                if to.send(Incoming::WorkerStderr(text)).is_err() {
                    return;
                }
            }
        }
    }
}

/// Lines of the worker's error stream shown to the person, at most.
const STDERR_LINES: usize = 200;
/// Characters of one such line shown, at most.
const STDERR_LINE_CHARS: usize = 2000;

/// The exit status and the session's end, from what the supervisor saw.
fn outcome(served: &Served, worker_status: Option<i32>) -> (u8, String) {
    let code = exit::to_u8;
    if let Some(v) = &served.violation {
        return (code(exit::WORKER), format!("worker misbehaved: {v}"));
    }
    if let Some(e) = &served.audit_error {
        return (code(exit::WORKER), format!("stopped: {e}"));
    }
    if served.ended {
        return (code(exit::SUCCESS), "ended by the user".into());
    }
    if let Some(done) = &served.done {
        return match done.stop {
            Stop::Finished => (code(exit::SUCCESS), "finished".into()),
            Stop::TurnLimit => (code(exit::LIMIT), "turn limit".into()),
            Stop::TokenBudget => (code(exit::LIMIT), "token budget".into()),
            Stop::Cancelled => (code(exit::CANCELLED), "cancelled".into()),
        };
    }
    if let Some(e) = &served.failed {
        let c = if e.starts_with("model:") { exit::MODEL } else { exit::WORKER };
        return (code(c), format!("failed: {e}"));
    }
    match worker_status {
        Some(s) if s == exit::REFUSED => (code(exit::REFUSED), "the sandbox refused to start the worker".into()),
        Some(s) if s == exit::TIMEOUT => (code(exit::LIMIT), "the session timeout killed the worker".into()),
        Some(c) if c >= 128 => (code(c), format!("the worker was killed by signal {}", c - 128)),
        other => (code(exit::WORKER), format!("the worker ended without finishing (status {other:?})")),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_on_the_workers_error_stream_is_drained_not_shown() {
        let flood = format!("{}\n", "x".repeat(100_000)) + &"line\n".repeat(50_000);
        let (tx, rx) = std::sync::mpsc::channel();
        relay_stderr(flood.as_bytes(), tx);
        let shown: Vec<String> = rx
            .try_iter()
            .map(|i| match i {
                Incoming::WorkerStderr(text) => text,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(shown.len(), STDERR_LINES + 1, "the cap and one line saying so");
        assert!(shown.iter().all(|l| l.chars().count() <= STDERR_LINE_CHARS + 1));
        assert!(shown.last().unwrap().contains("the rest is not shown"));
    }
}
