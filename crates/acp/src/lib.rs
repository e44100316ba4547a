//! airlock as an Agent Client Protocol agent (stable protocol version 1),
//! for editors that drive agents over stdio (Zed, JetBrains, ...).
//!
//! Each ACP session is one airlock session ([`airlock_session::Session`]),
//! in the workspace the editor names (`cwd`), with its worker sandboxed and
//! every step on the record as for the terminal UI. The editor is the
//! person: its prompts become [`Input::Prompt`], `session/cancel` becomes
//! [`Input::Interrupt`], and each approval policy leaves open goes to the
//! editor as `session/request_permission`; the answer is recorded with the
//! editor as the approver (`editor:NAME VERSION`, from `clientInfo`).
//!
//! Sessions advertise airlock's permission modes that policy allows (ask,
//! edits, plan, auto) as ACP session modes (`session/set_mode`), and an
//! earlier session of the same workspace can be continued with
//! `session/load`: its conversation is replayed to the editor from the
//! transcript, then it goes on as it was. The editor's own stdio MCP
//! servers run each in a sandbox of its own, their tools decided like
//! those of a server policy names without rules.
//!
//! ```no_run
//! # fn demo() -> Result<(), airlock_acp::AcpError> {
//! let config = airlock_acp::Config {
//!     session_options: Box::new(|_workspace| Err("build the options here".into())),
//!     uid: 1000,
//!     version: "0.1.0".into(),
//! };
//! airlock_acp::serve_stdio(config)
//! # }
//! ```
#![deny(missing_docs)]

pub mod map;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use agent_client_protocol::v1::schema::{
    AgentCapabilities, CancelNotification, ContentBlock, ContentChunk, CurrentModeUpdate, Implementation,
    InitializeRequest, InitializeResponse, LoadSessionRequest, LoadSessionResponse, McpCapabilities, McpServer,
    NewSessionRequest, NewSessionResponse, PromptCapabilities, PromptRequest, PromptResponse, RequestPermissionRequest,
    SessionNotification, SessionUpdate, SetSessionModeRequest, SetSessionModeResponse, ToolCall, ToolCallContent,
    ToolCallLocation, ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{ByteStreams, Client, ConnectTo};
use airlock_core::{Progress, Stop};
use airlock_model::Message;
use airlock_session::{Ended, Input, Mode, Session, SessionError, SessionEvent, SessionOptions};
use tokio::sync::{mpsc, oneshot};

/// What stops the agent.
#[derive(Debug, thiserror::Error)]
pub enum AcpError {
    /// The connection to the editor failed.
    #[error("the connection to the editor: {0}")]
    Protocol(String),
    /// Standard input or output cannot be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Builds a session's options for a workspace (canonical, an existing folder).
pub type OptionsFor = Box<dyn Fn(&Path) -> Result<SessionOptions, String> + Send + Sync>;

/// What the agent needs from its front end.
pub struct Config {
    /// The options of a session in a workspace: the policy and the
    /// configuration are per workspace.
    pub session_options: OptionsFor,
    /// This process's uid (the approver's).
    pub uid: u64,
    /// airlock's version, for `agentInfo`.
    pub version: String,
}

/// Serves one editor on standard input and output until it closes its end.
/// Standard output carries protocol messages only: it is moved to a
/// descriptor of its own, and descriptor 1 then points at standard error,
/// so that nothing else this process or a child prints can corrupt the
/// stream.
pub fn serve_stdio(config: Config) -> Result<(), AcpError> {
    let protocol_out = take_stdout()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| AcpError::Io { what: "cannot start the runtime".into(), source })?;
    let transport = ByteStreams::new(blocking::Unblock::new(protocol_out), blocking::Unblock::new(std::io::stdin()));
    runtime.block_on(serve(config, transport))
}

/// Standard output as a file of its own; descriptor 1 becomes a copy of 2.
fn take_stdout() -> Result<std::fs::File, AcpError> {
    use std::os::fd::FromRawFd;
    let io = |what: &str| {
        let what = what.to_string();
        move |source| AcpError::Io { what, source }
    };
    // SAFETY: dup and dup2 take descriptors only; the new descriptor is owned by the File alone.
    unsafe {
        let fd = libc::fcntl(libc::STDOUT_FILENO, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return Err(io("cannot duplicate standard output")(std::io::Error::last_os_error()));
        }
        if libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) < 0 {
            return Err(io("cannot point standard output at standard error")(std::io::Error::last_os_error()));
        }
        Ok(std::fs::File::from_raw_fd(fd))
    }
}

/// Serves one editor over `transport` until it closes its end.
pub async fn serve(
    config: Config,
    transport: impl ConnectTo<agent_client_protocol::Agent> + 'static,
) -> Result<(), AcpError> {
    let agent = Arc::new(AgentState {
        config,
        client: Mutex::new(None),
        sessions: Mutex::new(HashMap::new()),
        loading: Mutex::new(HashSet::new()),
        threads: Mutex::new(Vec::new()),
    });
    let (a1, a2, a3, a4) = (agent.clone(), agent.clone(), agent.clone(), agent.clone());
    let (a5, a6) = (agent.clone(), agent.clone());
    let served = agent_client_protocol::Agent
        .v1()
        .name("airlock")
        .on_receive_request(
            async move |request: InitializeRequest, responder, _cx| responder.respond(a1.initialize(request)),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: NewSessionRequest, responder, cx| {
                a2.open(&request.cwd, &request.mcp_servers, Opening::New(responder), cx)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: LoadSessionRequest, responder, cx| a5.load_session(request, responder, cx),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: SetSessionModeRequest, responder, _cx| a6.set_mode(request, responder),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: PromptRequest, responder, _cx| a3.prompt(request, responder),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |notification: CancelNotification, _cx| {
                a4.cancel(&notification.session_id.0);
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(transport)
        .await;
    // The editor is gone: every session ends, and is waited for (each
    // records its end and reaps its worker; one still starting ends as
    // soon as it has started, seeing nobody waits for it).
    let sessions: Vec<_> = lock(&agent.sessions).drain().map(|(_, s)| s).collect();
    for session in sessions {
        session.handle.send(Input::End);
    }
    let threads = std::mem::take(&mut *lock(&agent.threads));
    for thread in threads {
        let _ = thread.join();
    }
    match served {
        Err(e) if !hung_up(&e.to_string()) => Err(AcpError::Protocol(e.to_string())),
        _ => Ok(()),
    }
}

/// Whether the connection failed only because the editor had closed its end
/// while airlock was still writing to it (`EPIPE`): that is the editor
/// hanging up, the normal end, not a failure.
fn hung_up(error: &str) -> bool {
    error.contains(&std::io::Error::from_raw_os_error(libc::EPIPE).to_string())
}

/// The agent's state, shared by the handlers.
struct AgentState {
    config: Config,
    /// The editor's name and version, from `initialize`.
    client: Mutex<Option<(String, String)>>,
    /// The open sessions, by id.
    sessions: Mutex<HashMap<String, Arc<Slot>>>,
    /// The sessions being loaded (`session/load`), until they are open.
    loading: Mutex<HashSet<String>>,
    /// The threads that serve them.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// One open session.
struct Slot {
    handle: airlock_session::Handle,
    workspace: PathBuf,
    /// The modes policy allows in this session.
    modes: Vec<Mode>,
    turn: Mutex<Turn>,
}

/// A session that started, as its thread reports it.
struct Started {
    id: String,
    handle: airlock_session::Handle,
    mode: Mode,
    modes: Vec<Mode>,
    /// The conversation so far (a loaded session's).
    history: Vec<Message>,
}

/// The request that opens a session, answered once it is ready.
enum Opening {
    /// `session/new`.
    New(Responder<NewSessionResponse>),
    /// `session/load` of this session: the conversation is replayed first.
    Load(String, Responder<LoadSessionResponse>),
}

impl Opening {
    fn fail(self, error: agent_client_protocol::Error) -> Result<(), agent_client_protocol::Error> {
        match self {
            Opening::New(responder) => responder.respond_with_error(error),
            Opening::Load(_, responder) => responder.respond_with_error(error),
        }
    }
}

/// The turn under way, if any.
#[derive(Default)]
struct Turn {
    /// The prompt request to answer when the turn is over.
    responder: Option<Responder<PromptResponse>>,
    /// The editor cancelled it.
    cancelled: bool,
    /// Why the worker's run ended.
    stop: Option<Stop>,
    /// Whether this model turn's text was streamed (deltas) already.
    streamed: bool,
    /// The calls of this session: their tool, and the diff shown for edits.
    calls: HashMap<String, Call>,
}

/// What the adapter keeps of a tool call.
struct Call {
    tool: String,
    diff: Option<ToolCallContent>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What reaches the session's pump from the thread that serves it.
enum FromSession {
    Event(SessionEvent),
    Ended(Result<Ended, SessionError>),
}

impl AgentState {
    fn initialize(&self, request: InitializeRequest) -> InitializeResponse {
        if let Some(info) = &request.client_info {
            *lock(&self.client) = Some((info.name.clone(), info.version.clone()));
        }
        tracing::info!(client = ?request.client_info.as_ref().map(|i| (&i.name, &i.version)), "initialize");
        // Only version 1 exists; a client asking for another gets 1 and decides.
        InitializeResponse::new(agent_client_protocol::schema::ProtocolVersion::V1)
            .agent_capabilities(
                AgentCapabilities::new()
                    .load_session(true)
                    .prompt_capabilities(PromptCapabilities::new())
                    .mcp_capabilities(McpCapabilities::new()),
            )
            .agent_info(Implementation::new("airlock", self.config.version.clone()).title("airlock"))
    }

    fn approver(&self) -> airlock_session::Approver {
        let client = lock(&self.client).clone();
        map::approver(client.as_ref().map(|(n, v)| (n.as_str(), v.as_str())), self.config.uid)
    }

    /// `session/new` and `session/load`: the session starts on a thread of
    /// its own (the sandbox takes a moment), with the options of its
    /// workspace; the answer comes when its worker waits for the first
    /// prompt, or the error that stopped it.
    fn open(
        self: &Arc<Self>,
        cwd: &Path,
        mcp_servers: &[McpServer],
        opening: Opening,
        cx: ConnectionTo<Client>,
    ) -> Result<(), agent_client_protocol::Error> {
        let workspace = match workspace(cwd) {
            Ok(w) => w,
            Err(message) => {
                self.done_loading(&opening);
                return opening.fail(invalid_params(message));
            }
        };
        let resume = match &opening {
            Opening::Load(id, _) => Some(id.clone()),
            Opening::New(_) => None,
        };
        let mcp_servers = mcp_servers.to_vec();
        let (tx, rx) = mpsc::unbounded_channel();
        let (started_tx, started_rx) = oneshot::channel();
        let (agent, dir) = (self.clone(), workspace.clone());
        let thread = std::thread::spawn(move || {
            // Building the options reads the policy and opens the log: off the dispatch loop.
            match (agent.config.session_options)(&dir) {
                Ok(mut options) => {
                    // Each runs in a sandbox of its own, under the session's rules for MCP tools.
                    let (servers, refused) =
                        map::editor_servers(&mcp_servers, &map::PolicyServers::of(&options.policy));
                    for reason in &refused {
                        tracing::warn!("{reason}");
                    }
                    options.extra_mcp = servers;
                    options.resume = resume;
                    run_session(options, tx, started_tx);
                }
                Err(message) => {
                    let _ = started_tx.send(Err(message));
                }
            }
        });
        lock(&self.threads).push(thread);
        let agent = self.clone();
        cx.clone().spawn(async move {
            let started = match started_rx.await {
                Ok(Ok(started)) => started,
                Ok(Err(message)) => {
                    agent.done_loading(&opening);
                    return opening.fail(internal(message));
                }
                Err(_) => {
                    agent.done_loading(&opening);
                    return opening.fail(internal("the session did not start".into()));
                }
            };
            let slot = Arc::new(Slot {
                handle: started.handle.clone(),
                workspace,
                modes: started.modes.clone(),
                turn: Mutex::new(Turn::default()),
            });
            agent.pump(started, slot, rx, opening, cx).await
        })
    }

    /// `session/load`: an earlier session of this workspace, continued.
    fn load_session(
        self: &Arc<Self>,
        request: LoadSessionRequest,
        responder: Responder<LoadSessionResponse>,
        cx: ConnectionTo<Client>,
    ) -> Result<(), agent_client_protocol::Error> {
        let id = request.session_id.0.to_string();
        // One process serves a session at a time: its transcript has one writer.
        if lock(&self.sessions).contains_key(&id) || !lock(&self.loading).insert(id.clone()) {
            return responder.respond_with_error(invalid_params(format!("session {id} is open already")));
        }
        self.open(&request.cwd, &request.mcp_servers, Opening::Load(id, responder), cx)
    }

    /// A session being loaded is open, or failed to open.
    fn done_loading(&self, opening: &Opening) {
        if let Opening::Load(id, _) = opening {
            lock(&self.loading).remove(id);
        }
    }

    /// `session/set_mode`: one of the modes policy allows in the session.
    fn set_mode(
        &self,
        request: SetSessionModeRequest,
        responder: Responder<SetSessionModeResponse>,
    ) -> Result<(), agent_client_protocol::Error> {
        let Some(slot) = lock(&self.sessions).get(&*request.session_id.0).cloned() else {
            return responder.respond_with_error(invalid_params(format!("no session {}", request.session_id.0)));
        };
        let mode = match map::mode_of(&request.mode_id, &slot.modes) {
            Ok(mode) => mode,
            Err(message) => return responder.respond_with_error(invalid_params(message)),
        };
        if !slot.handle.send(Input::Mode(mode)) {
            return responder.respond_with_error(internal("the session has ended".into()));
        }
        responder.respond(SetSessionModeResponse::new())
    }

    /// Turns one session's events into updates, answers and permission
    /// requests, until the session ends.
    async fn pump(
        self: Arc<Self>,
        started: Started,
        slot: Arc<Slot>,
        mut rx: mpsc::UnboundedReceiver<FromSession>,
        opening: Opening,
        cx: ConnectionTo<Client>,
    ) -> Result<(), agent_client_protocol::Error> {
        let Started { id, mode, modes, history, .. } = started;
        let mut created = Some(opening);
        while let Some(next) = rx.recv().await {
            let event = match next {
                FromSession::Event(event) => event,
                FromSession::Ended(ended) => {
                    let why = match ended {
                        Ok(ended) => ended.reason,
                        Err(e) => e.to_string(),
                    };
                    tracing::info!(session = %id, "the session ended: {why}");
                    lock(&self.sessions).remove(&id);
                    if let Some(created) = created.take() {
                        self.done_loading(&created);
                        created.fail(internal(format!("the session ended before it started: {why}")))?;
                    }
                    if let Some(responder) = lock(&slot.turn).responder.take() {
                        responder.respond_with_error(internal(format!("the session ended: {why}")))?;
                    }
                    return Ok(());
                }
            };
            if created.is_some() {
                // The session is ready when its worker waits for the first prompt.
                match event {
                    SessionEvent::Idle => {
                        lock(&self.sessions).insert(id.clone(), slot.clone());
                        let state = map::mode_state(mode, &modes);
                        match created.take() {
                            Some(Opening::New(responder)) => {
                                responder.respond(NewSessionResponse::new(id.clone()).modes(state))?
                            }
                            Some(opening @ Opening::Load(..)) => {
                                self.done_loading(&opening);
                                // The conversation first, then the answer (as the protocol asks).
                                for update in map::replay(&history, &slot.workspace) {
                                    cx.send_notification(SessionNotification::new(id.clone(), update))?;
                                }
                                if let Opening::Load(_, responder) = opening {
                                    responder.respond(LoadSessionResponse::new().modes(state))?;
                                }
                            }
                            None => {}
                        }
                    }
                    other => tracing::info!(session = %id, "before the first prompt: {other:?}"),
                }
                continue;
            }
            self.event(&id, &slot, event, &cx)?;
        }
        Ok(())
    }

    fn event(
        &self,
        id: &str,
        slot: &Arc<Slot>,
        event: SessionEvent,
        cx: &ConnectionTo<Client>,
    ) -> Result<(), agent_client_protocol::Error> {
        let update = |update: SessionUpdate| cx.send_notification(SessionNotification::new(id.to_string(), update));
        match event {
            SessionEvent::Progress(progress) => {
                for u in self.progress(slot, progress) {
                    update(u)?;
                }
            }
            SessionEvent::Ask(request) => {
                let mut content = vec![map::shown_content(&slot.workspace, &request.shown)];
                {
                    let mut turn = lock(&slot.turn);
                    if let (Some(call), ToolCallContent::Diff(_)) = (turn.calls.get_mut(&request.call_id), &content[0])
                    {
                        call.diff = Some(content[0].clone());
                    }
                    if request.tool.starts_with("mcp__") {
                        content.truncate(1);
                    }
                }
                let tool_call = ToolCallUpdate::new(
                    request.call_id.clone(),
                    ToolCallUpdateFields::new()
                        .title(map::tool_title(&request.tool, &serde_json::Value::Null))
                        .kind(map::tool_kind(&request.tool))
                        .status(ToolCallStatus::Pending)
                        .content(content),
                );
                let options = map::permission_options(&request);
                let asked = cx.send_request(RequestPermissionRequest::new(id.to_string(), tool_call, options));
                let (handle, by) = (slot.handle.clone(), self.approver());
                cx.spawn(async move {
                    let answer = match asked.block_task().await {
                        Ok(response) => map::answer(&request, &response.outcome),
                        Err(e) => {
                            tracing::warn!("the permission request failed: {e}");
                            airlock_session::Answer::Deny { note: "the editor did not answer".into() }
                        }
                    };
                    handle.send(Input::Answer { id: request.id, answer, by });
                    Ok(())
                })?;
            }
            SessionEvent::Idle => {
                let mut turn = lock(&slot.turn);
                let reason = map::stop_reason(turn.stop.take(), std::mem::take(&mut turn.cancelled));
                if let Some(responder) = turn.responder.take() {
                    responder.respond(PromptResponse::new(reason))?;
                }
            }
            SessionEvent::Mode(mode) => {
                update(SessionUpdate::CurrentModeUpdate(CurrentModeUpdate::new(mode.as_str())))?;
            }
            SessionEvent::Notice(text) => tracing::info!(session = %id, "{text}"),
            other => tracing::debug!(session = %id, "{other:?}"),
        }
        Ok(())
    }

    /// The updates one step of progress makes.
    fn progress(&self, slot: &Slot, progress: Progress) -> Vec<SessionUpdate> {
        let mut turn = lock(&slot.turn);
        let text = |text: String| SessionUpdate::AgentMessageChunk(ContentChunk::new(ContentBlock::from(text)));
        match progress {
            Progress::TurnStart { .. } => {
                turn.streamed = false;
                vec![]
            }
            Progress::TextDelta { text: delta } => {
                turn.streamed = true;
                vec![text(delta)]
            }
            Progress::ModelText { text: whole } if !turn.streamed && !whole.is_empty() => vec![text(whole)],
            Progress::ToolCall { id, name, arguments } => {
                let diff = map::diff_from_arguments(&slot.workspace, &name, &arguments).map(ToolCallContent::Diff);
                let mut call = ToolCall::new(id.clone(), map::tool_title(&name, &arguments))
                    .kind(map::tool_kind(&name))
                    .status(ToolCallStatus::Pending)
                    .raw_input(arguments.clone());
                if let Some(path) = map::tool_path(&name, &arguments) {
                    call = call.locations(vec![ToolCallLocation::new(slot.workspace.join(path))]);
                }
                if let Some(diff) = &diff {
                    call = call.content(vec![diff.clone()]);
                }
                turn.calls.insert(id, Call { tool: name, diff });
                vec![SessionUpdate::ToolCall(call)]
            }
            Progress::Decision { id, decision, source } => {
                let fields = if decision == "allow" {
                    ToolCallUpdateFields::new().status(ToolCallStatus::InProgress)
                } else {
                    ToolCallUpdateFields::new()
                        .status(ToolCallStatus::Failed)
                        .content(vec![map::text_content(format!("denied ({source})"))])
                };
                vec![SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(id, fields))]
            }
            Progress::ToolResult { id, is_error, preview, .. } => {
                let mut content = Vec::new();
                if let Some(Call { diff: Some(diff), .. }) = turn.calls.get(&id).filter(|_| !is_error) {
                    content.push(diff.clone());
                }
                content.push(map::text_content(map::preview(&preview)));
                let status = if is_error { ToolCallStatus::Failed } else { ToolCallStatus::Completed };
                let tool = turn.calls.get(&id).map(|c| c.tool.clone()).unwrap_or_default();
                tracing::debug!(call = %id, %tool, is_error, "tool result");
                vec![SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                    id,
                    ToolCallUpdateFields::new().status(status).content(content),
                ))]
            }
            Progress::Done { stop, .. } => {
                turn.stop = Some(stop);
                vec![]
            }
            _ => vec![],
        }
    }

    /// `session/prompt`: the answer waits for the end of the turn.
    fn prompt(
        &self,
        request: PromptRequest,
        responder: Responder<PromptResponse>,
    ) -> Result<(), agent_client_protocol::Error> {
        let Some(slot) = lock(&self.sessions).get(&*request.session_id.0).cloned() else {
            return responder.respond_with_error(invalid_params(format!("no session {}", request.session_id.0)));
        };
        let text = map::prompt_text(&request.prompt);
        if text.trim().is_empty() {
            return responder.respond_with_error(invalid_params("the prompt has no text".into()));
        }
        let mut turn = lock(&slot.turn);
        if turn.responder.is_some() {
            drop(turn);
            return responder
                .respond_with_error(invalid_params("a prompt is already under way in this session".into()));
        }
        turn.responder = Some(responder);
        turn.cancelled = false;
        turn.stop = None;
        if !slot.handle.send(Input::Prompt { text })
            && let Some(responder) = turn.responder.take()
        {
            return responder.respond_with_error(internal("the session has ended".into()));
        }
        Ok(())
    }

    /// `session/cancel`: the turn stops; its prompt answers `cancelled`.
    fn cancel(&self, session: &str) {
        let Some(slot) = lock(&self.sessions).get(session).cloned() else { return };
        let mut turn = lock(&slot.turn);
        if turn.responder.is_some() {
            turn.cancelled = true;
            drop(turn);
            slot.handle.send(Input::Interrupt);
        }
    }
}

/// Starts the session, reports its id and handle, and serves it on this
/// thread, sending each event to the pump.
fn run_session(
    options: SessionOptions,
    tx: mpsc::UnboundedSender<FromSession>,
    started: oneshot::Sender<Result<Started, String>>,
) {
    let session = match Session::start(options) {
        Ok(session) => session,
        Err(e) => {
            let _ = started.send(Err(e.to_string()));
            return;
        }
    };
    for warning in &session.info().warnings {
        tracing::warn!("{warning}");
    }
    let handle = session.handle();
    let info = session.info();
    let report = Started {
        id: info.id.clone(),
        handle: handle.clone(),
        mode: info.mode,
        modes: info.modes.clone(),
        history: info.history.clone(),
    };
    if started.send(Ok(report)).is_err() {
        handle.send(Input::End);
    }
    let events = tx.clone();
    let ended = session.serve(&mut |event| {
        let _ = events.send(FromSession::Event(event));
    });
    let _ = tx.send(FromSession::Ended(ended));
}

/// The editor's `cwd` as a workspace: absolute, an existing folder, canonical.
fn workspace(cwd: &Path) -> Result<PathBuf, String> {
    if !cwd.is_absolute() {
        return Err(format!("cwd {} is not an absolute path", cwd.display()));
    }
    let real = std::fs::canonicalize(cwd).map_err(|e| format!("cwd {}: {e}", cwd.display()))?;
    if !real.is_dir() {
        return Err(format!("cwd {} is not a folder", cwd.display()));
    }
    Ok(real)
}

fn invalid_params(message: String) -> agent_client_protocol::Error {
    agent_client_protocol::Error::invalid_params().data(serde_json::Value::String(message))
}

fn internal(message: String) -> agent_client_protocol::Error {
    agent_client_protocol::Error::internal_error().data(serde_json::Value::String(message))
}

#[cfg(test)]
mod tests {
    use super::hung_up;

    #[test]
    fn a_broken_pipe_is_the_editor_hanging_up_and_nothing_else_is() {
        // As the connection reports a write to an editor that has gone.
        assert!(hung_up("Internal error: \"Broken pipe (os error 32)\""));
        assert!(!hung_up("Parse error: \"expected value at line 1 column 1\""));
        assert!(!hung_up("Internal error: \"Permission denied (os error 13)\""));
    }
}
