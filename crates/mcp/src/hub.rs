//! The running servers: started together, each watched, each stopped alone.

use std::collections::{BTreeSet, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, GetPromptRequestParams, Implementation, JsonObject,
    ProtocolVersion, ReadResourceRequestParams,
};
use rmcp::service::{RoleClient, RunningService, ServiceError, serve_client};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::egress;
use crate::http;
use crate::launch::{self, Places};
use crate::lines::LimitedLines;
use crate::{CallOutcome, Launcher, McpError, McpTool, ServerEvent, ServerSpec, Transport, digest_of, names, render};

/// Lines of a server's standard error kept for error messages.
const STDERR_LINES: usize = 50;
/// The longest standard error line kept.
const STDERR_LINE: usize = 500;
/// How long a closed connection waits for the exit status that explains it.
const EXPLAIN_WAIT: Duration = Duration::from_secs(2);

/// The MCP servers of one session. Blocking: it owns its tokio runtime, and
/// must be used from outside any other.
pub struct Hub {
    runtime: Option<tokio::runtime::Runtime>,
    servers: Vec<Arc<Server>>,
    offered: Vec<Offered>,
    events: Arc<Mutex<Vec<ServerEvent>>>,
    interrupt: Interrupter,
}

/// Ends the call in progress, from any thread (the person pressed Esc):
/// it fails as interrupted, and its server goes on.
#[derive(Debug, Clone, Default)]
pub struct Interrupter(Arc<tokio::sync::Notify>);

impl Interrupter {
    /// Interrupts the call in progress, if there is one.
    pub fn interrupt(&self) {
        self.0.notify_waiters();
    }
}

/// A tool offered, and what calling it does.
struct Offered {
    tool: McpTool,
    server: usize,
    route: Route,
}

#[derive(Clone)]
enum Route {
    Tool(String),
    ListResources,
    ReadResource,
    ListPrompts,
    GetPrompt,
}

/// A request ready to send.
enum Request {
    Tool(CallToolRequestParams),
    ListResources,
    ReadResource(String),
    ListPrompts,
    GetPrompt(GetPromptRequestParams),
}

impl Request {
    fn method(&self) -> String {
        match self {
            Request::Tool(p) => format!("tools/call {}", p.name),
            Request::ListResources => "resources/list".into(),
            Request::ReadResource(_) => "resources/read".into(),
            Request::ListPrompts => "prompts/list".into(),
            Request::GetPrompt(_) => "prompts/get".into(),
        }
    }
}

struct Server {
    name: String,
    client: RunningService<RoleClient, ClientConfig>,
    state: Arc<State>,
    call_timeout: Duration,
    /// Ends once the sandbox is gone.
    monitor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What the watchers of one server share.
struct State {
    name: String,
    /// Why it was stopped, once it was (the first reason wins).
    stopped: watch::Sender<Option<String>>,
    /// Past the start: a stop is recorded as `Stopped` (before, the start records `Refused`).
    started: AtomicBool,
    /// Bytes received since the last call began.
    received: Arc<AtomicU64>,
    stderr: Mutex<VecDeque<String>>,
    events: Arc<Mutex<Vec<ServerEvent>>>,
}

impl State {
    /// A server's state before it has started.
    fn new(name: &str, events: Arc<Mutex<Vec<ServerEvent>>>) -> Arc<State> {
        Arc::new(State {
            name: name.to_string(),
            stopped: watch::Sender::new(None),
            started: AtomicBool::new(false),
            received: Arc::new(AtomicU64::new(0)),
            stderr: Mutex::new(VecDeque::new()),
            events,
        })
    }

    /// Marks the server stopped (its monitor then kills the sandbox); false when it already was.
    fn stop(&self, reason: String, record: bool) -> bool {
        let mut first = false;
        self.stopped.send_if_modified(|s| {
            if s.is_none() {
                *s = Some(reason.clone());
                first = true;
            }
            first
        });
        if first && record && self.started.load(Ordering::SeqCst) {
            push(&self.events, ServerEvent::Stopped { server: self.name.clone(), reason });
        }
        first
    }

    fn reason(&self) -> Option<String> {
        self.stopped.borrow().clone()
    }

    /// `; its standard error ended with: A | B` (the last few lines), or nothing.
    fn stderr_suffix(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        let tail: Vec<&str> = lines.iter().rev().take(5).rev().map(String::as_str).collect();
        if tail.is_empty() { String::new() } else { format!("; its standard error ended with: {}", tail.join(" | ")) }
    }
}

/// Returns once `rx` says the server was stopped (or its sender is gone).
async fn until_stopped(mut rx: watch::Receiver<Option<String>>) {
    let stopped = rx.wait_for(Option::is_some).await.is_ok();
    let _ = stopped;
}

fn push(events: &Mutex<Vec<ServerEvent>>, event: ServerEvent) {
    events.lock().unwrap_or_else(PoisonError::into_inner).push(event);
}

/// One server started, before its tools are merged with the others'.
struct Started {
    server: Server,
    digest: String,
    tools: Vec<(McpTool, Route)>,
    refused_tools: Vec<McpError>,
}

impl Hub {
    /// Starts every server (at once); one that fails is reported and the others go on.
    pub fn start(specs: &[ServerSpec], launcher: &Launcher) -> (Hub, Vec<McpError>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut errors = Vec::new();
        let runtime =
            match tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("mcp").enable_all().build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    for spec in specs {
                        let reason = format!("cannot start the MCP runtime: {e}");
                        push(&events, ServerEvent::Refused { server: spec.name.clone(), reason: reason.clone() });
                        errors.push(McpError::Start { server: spec.name.clone(), reason });
                    }
                    let hub = Hub {
                        runtime: None,
                        servers: Vec::new(),
                        offered: Vec::new(),
                        events,
                        interrupt: Interrupter::default(),
                    };
                    return (hub, errors);
                }
            };
        let mut seen = BTreeSet::new();
        let mut handles = Vec::new();
        for spec in specs {
            let spec = spec.clone();
            if !seen.insert(spec.name.clone()) {
                let reason = "another server has the same name".to_string();
                push(&events, ServerEvent::Refused { server: spec.name.clone(), reason: reason.clone() });
                errors.push(McpError::InvalidName { server: spec.name, reason });
                continue;
            }
            let (launcher, events) = (launcher.clone(), events.clone());
            handles.push((spec.name.clone(), runtime.spawn(async move { start_one(spec, &launcher, events).await })));
        }
        let mut servers = Vec::new();
        let mut offered: Vec<Offered> = Vec::new();
        for (name, handle) in handles {
            let started = match runtime.block_on(handle) {
                Ok(Ok(started)) => started,
                Ok(Err(e)) => {
                    push(&events, ServerEvent::Refused { server: name, reason: e.to_string() });
                    errors.push(e);
                    continue;
                }
                Err(e) => {
                    let e = McpError::Start { server: name.clone(), reason: format!("its start failed: {e}") };
                    push(&events, ServerEvent::Refused { server: name, reason: e.to_string() });
                    errors.push(e);
                    continue;
                }
            };
            errors.extend(started.refused_tools);
            let index = servers.len();
            let mut names = Vec::new();
            for (tool, route) in started.tools {
                if offered.iter().any(|o| o.tool.name == tool.name) {
                    errors.push(McpError::ToolNotOffered {
                        server: tool.server.clone(),
                        tool: tool.tool.clone(),
                        reason: format!("another tool is already offered as {}", tool.name),
                    });
                    continue;
                }
                names.push(tool.name.clone());
                offered.push(Offered { tool, server: index, route });
            }
            started.server.state.started.store(true, Ordering::SeqCst);
            push(
                &events,
                ServerEvent::Started { server: started.server.name.clone(), digest: started.digest, tools: names },
            );
            // Stopped between its start and now (it exited at once): on the record after its start.
            if let Some(reason) = started.server.state.reason() {
                push(&events, ServerEvent::Stopped { server: started.server.name.clone(), reason });
            }
            servers.push(Arc::new(started.server));
        }
        (Hub { runtime: Some(runtime), servers, offered, events, interrupt: Interrupter::default() }, errors)
    }

    /// The tools offered by the servers still running.
    pub fn tools(&self) -> Vec<McpTool> {
        self.offered
            .iter()
            .filter(|o| self.servers[o.server].state.reason().is_none())
            .map(|o| o.tool.clone())
            .collect()
    }

    /// Calls a tool by its qualified name, waiting at most the server's call timeout.
    pub fn call(&self, qualified: &str, arguments: &Value) -> Result<CallOutcome, McpError> {
        let offered = self
            .offered
            .iter()
            .find(|o| o.tool.name == qualified)
            .ok_or_else(|| McpError::UnknownTool { name: airlock_redact::terminal::one_line(qualified) })?;
        let server = &self.servers[offered.server];
        if let Some(reason) = server.state.reason() {
            return Err(McpError::Stopped { server: server.name.clone(), reason });
        }
        let request = request_for(qualified, &offered.route, arguments)?;
        let runtime = self.runtime.as_ref().ok_or_else(|| McpError::Stopped {
            server: server.name.clone(),
            reason: "the MCP runtime is gone".into(),
        })?;
        let interrupted = self.interrupt.0.notified();
        runtime.block_on(async {
            tokio::select! {
                answer = server.request(request) => answer,
                () = interrupted => Err(McpError::Interrupted { server: server.name.clone() }),
            }
        })
    }

    /// What interrupts a call in progress, from another thread.
    pub fn interrupter(&self) -> Interrupter {
        self.interrupt.clone()
    }

    /// What happened since the last call, for the record.
    pub fn take_events(&self) -> Vec<ServerEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Stops every server (each whole sandbox) and waits for them to go.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else { return };
        for server in &self.servers {
            server.state.stop("the session ended".into(), false);
        }
        let monitors: Vec<_> = self
            .servers
            .iter()
            .filter_map(|s| s.monitor.lock().unwrap_or_else(PoisonError::into_inner).take())
            .collect();
        runtime.block_on(async {
            for monitor in monitors {
                let _ = tokio::time::timeout(Duration::from_secs(2), monitor).await;
            }
        });
        self.servers.clear();
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

/// The request a call makes, its arguments checked.
fn request_for(qualified: &str, route: &Route, arguments: &Value) -> Result<Request, McpError> {
    let bad = |reason: &str| McpError::BadArguments { tool: qualified.into(), reason: reason.into() };
    let object: Option<JsonObject> = match arguments {
        Value::Null => None,
        Value::Object(map) => Some(map.clone()),
        _ => return Err(bad("the arguments must be a JSON object")),
    };
    let text = |key: &str| object.as_ref().and_then(|o| o.get(key)).and_then(Value::as_str).map(str::to_owned);
    Ok(match route {
        Route::Tool(name) => {
            let mut params = CallToolRequestParams::new(name.clone());
            params.arguments = object;
            Request::Tool(params)
        }
        Route::ListResources => Request::ListResources,
        Route::ReadResource => Request::ReadResource(text("uri").ok_or_else(|| bad("\"uri\" (a string) is required"))?),
        Route::ListPrompts => Request::ListPrompts,
        Route::GetPrompt => {
            let name = text("name").ok_or_else(|| bad("\"name\" (a string) is required"))?;
            let mut params = GetPromptRequestParams::new(name);
            params.arguments = match object.as_ref().and_then(|o| o.get("arguments")) {
                None | Some(Value::Null) => None,
                Some(Value::Object(map)) => Some(map.clone()),
                Some(_) => return Err(bad("\"arguments\" must be an object of strings")),
            };
            Request::GetPrompt(params)
        }
    })
}

impl Server {
    async fn request(&self, request: Request) -> Result<CallOutcome, McpError> {
        let method = request.method();
        self.state.received.store(0, Ordering::SeqCst);
        let client = &self.client;
        let work = async move {
            Ok::<_, ServiceError>(match request {
                Request::Tool(params) => {
                    let result = client.call_tool(params).await?;
                    let value = serde_json::to_value(&result).unwrap_or(Value::Null);
                    CallOutcome { text: render::call_result(&value), is_error: result.is_error == Some(true) }
                }
                Request::ListResources => {
                    let list = client.list_all_resources().await?;
                    let values: Vec<Value> = list.iter().filter_map(|r| serde_json::to_value(r).ok()).collect();
                    CallOutcome { text: render::resource_list(&values), is_error: false }
                }
                Request::ReadResource(uri) => {
                    let result = client.read_resource(ReadResourceRequestParams::new(uri)).await?;
                    let value = serde_json::to_value(&result).unwrap_or(Value::Null);
                    CallOutcome { text: render::read_resource(&value), is_error: false }
                }
                Request::ListPrompts => {
                    let list = client.list_all_prompts().await?;
                    let values: Vec<Value> = list.iter().filter_map(|p| serde_json::to_value(p).ok()).collect();
                    CallOutcome { text: render::prompt_list(&values), is_error: false }
                }
                Request::GetPrompt(params) => {
                    let result = client.get_prompt(params).await?;
                    let value = serde_json::to_value(&result).unwrap_or(Value::Null);
                    CallOutcome { text: render::prompt(&value), is_error: false }
                }
            })
        };
        let stopped = |reason: String| McpError::Stopped { server: self.name.clone(), reason };
        match tokio::time::timeout(self.call_timeout, work).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Err(_) => {
                let reason = format!(
                    "it did not answer {} within {} s; killed",
                    airlock_redact::terminal::one_line(&method),
                    self.call_timeout.as_secs_f64()
                );
                self.state.stop(reason, true);
                Err(stopped(self.state.reason().unwrap_or_default()))
            }
            Ok(Err(ServiceError::McpError(e))) => Err(McpError::Failed {
                server: self.name.clone(),
                method: airlock_redact::terminal::one_line(&method),
                message: short(&e.message),
            }),
            Ok(Err(ServiceError::TransportClosed | ServiceError::TransportSend(_))) => {
                // The monitor or the limit may be about to say why.
                let _ = tokio::time::timeout(EXPLAIN_WAIT, until_stopped(self.state.stopped.subscribe())).await;
                self.state.stop(format!("it closed the connection during {method}"), true);
                Err(stopped(self.state.reason().unwrap_or_default()))
            }
            Ok(Err(other)) => Err(McpError::Failed {
                server: self.name.clone(),
                method: airlock_redact::terminal::one_line(&method),
                message: short(&other.to_string()),
            }),
        }
    }
}

/// Text from a server, on one line and at most 1000 bytes.
fn short(text: &str) -> String {
    let mut line = airlock_redact::terminal::one_line(text);
    if line.len() > 1000 {
        let mut end = 1000;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str(" [...]");
    }
    line
}

async fn start_one(
    spec: ServerSpec,
    launcher: &Launcher,
    events: Arc<Mutex<Vec<ServerEvent>>>,
) -> Result<Started, McpError> {
    names::check_server_name(&spec.name)?;
    let (command, args) = match &spec.transport {
        Transport::Stdio { command, args } => (command.clone(), args.clone()),
        Transport::Http { url } => return start_remote(spec.clone(), url.clone(), launcher, events).await,
    };
    if !spec.hosts.is_empty() {
        // Its connections go through a proxy of its own, each on the record: no record, no network.
        if launcher.record.is_none() {
            return Err(egress::no_record(&spec.name, &spec.hosts));
        }
        egress::check_hosts(&spec.name, &spec.hosts)?;
    }
    let (name, workspace) = (spec.name.clone(), launcher.workspace.clone());
    let pinned = spec.clone();
    let digest = tokio::task::spawn_blocking(move || digest_of(&pinned, &workspace))
        .await
        .map_err(|e| McpError::Start { server: name, reason: format!("computing its digest failed: {e}") })??;
    if let Some(expected) = &spec.digest
        && !expected.eq_ignore_ascii_case(&digest)
    {
        return Err(McpError::DigestMismatch { server: spec.name.clone(), expected: expected.clone(), actual: digest });
    }
    let exe = launch::resolve_command(&spec.name, &command, &launcher.workspace)?;
    let places = Places::of(launcher, &spec.name);
    launch::fresh_folder(&spec.name, &places.work)?;
    let dns = launch::bind_datagram(&spec.name, &places.dns)?;

    let state = State::new(&spec.name, events.clone());
    let proxy = match spec.hosts.is_empty() {
        true => None,
        false => Some(egress::start(
            &spec.name,
            &spec.hosts,
            &places.egress,
            launcher,
            until_stopped(state.stopped.subscribe()),
        )?),
    };
    let mut child = tokio::process::Command::new(&launcher.exe)
        .args(launch::sandbox_args(&spec, launcher, &places, &exe, &args))
        .current_dir(&places.work)
        .envs(launch::server_env(&spec))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| McpError::Io {
            server: spec.name.clone(),
            what: "run",
            path: launcher.exe.clone(),
            source,
        })?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(McpError::Start { server: spec.name.clone(), reason: "its pipes were not made".into() });
    };
    let stderr_task = tokio::spawn(keep_stderr(stderr, state.clone()));
    tokio::spawn(record_lookups(dns, state.clone()));
    // Its proxy (if it has one) ends with it, its last records kept before the monitor ends.
    let monitor = tokio::spawn(egress::then_proxy(watch_child(child, state.clone(), stderr_task), proxy));

    let told = state.clone();
    let stdout = LimitedLines::new(
        stdout,
        state.received.clone(),
        Box::new(move |reason| {
            told.stop(format!("{reason}; killed"), true);
        }),
    );
    let config =
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("airlock", env!("CARGO_PKG_VERSION")));
    let handshake = async {
        let client = serve_client(config, (stdout, stdin)).await.map_err(|e| e.to_string())?;
        let tools = client.list_all_tools().await.map_err(|e| format!("tools/list failed: {e}"))?;
        Ok::<_, String>((client, tools))
    };
    let failed = |reason: String| {
        state.stop(reason.clone(), false);
        McpError::Start { server: spec.name.clone(), reason }
    };
    let (client, tools) = match tokio::time::timeout(spec.start_timeout, handshake).await {
        Ok(Ok(done)) => done,
        Ok(Err(reason)) => {
            // The exit status or the limit explains more than "connection closed".
            let _ = tokio::time::timeout(EXPLAIN_WAIT, until_stopped(state.stopped.subscribe())).await;
            let why = state.reason().unwrap_or(reason);
            let stderr = if why.contains("standard error") { String::new() } else { state.stderr_suffix() };
            return Err(failed(format!("{why}{stderr}")));
        }
        Err(_) => {
            let stderr = state.stderr_suffix();
            state.stop("it did not start in time".into(), false);
            return Err(McpError::StartTimeout {
                server: spec.name.clone(),
                secs: spec.start_timeout.as_secs(),
                stderr,
            });
        }
    };
    Ok(offer(&spec, client, tools, state, digest, monitor))
}

/// A remote server: reached over streamable HTTP from this process, each
/// exchange checked, redacted, recorded and capped ([`crate::http`]).
async fn start_remote(
    spec: ServerSpec,
    url: String,
    launcher: &Launcher,
    events: Arc<Mutex<Vec<ServerEvent>>>,
) -> Result<Started, McpError> {
    if spec.digest.is_some() {
        return Err(McpError::NotSupported {
            server: spec.name.clone(),
            what: "a pin (digest) of a remote (url) server".into(),
            hint: "only stdio servers can be pinned: what runs behind a URL cannot be seen from here".into(),
        });
    }
    let state = State::new(&spec.name, events);
    let told = state.clone();
    let watch = http::Watch {
        received: state.received.clone(),
        stopped: state.stopped.subscribe(),
        stop: Arc::new(move |reason| {
            told.stop(reason, true);
        }),
    };
    let remote = http::Remote::new(&spec, &url, launcher.record.clone(), watch)?;
    // 2025-11-25: the newest version with an `initialize` handshake, which servers of today speak.
    let config =
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("airlock", env!("CARGO_PKG_VERSION")))
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
    let handshake = async {
        let client = remote.connect(config).await?;
        let tools = client.list_all_tools().await.map_err(|e| format!("tools/list failed: {e}"))?;
        Ok::<_, String>((client, tools))
    };
    let (client, tools) = match tokio::time::timeout(spec.start_timeout, handshake).await {
        Ok(Ok(done)) => done,
        Ok(Err(reason)) => {
            let why = state.reason().unwrap_or(reason);
            state.stop(why.clone(), false);
            return Err(McpError::Start { server: spec.name.clone(), reason: why });
        }
        Err(_) => {
            state.stop("it did not start in time".into(), false);
            let secs = spec.start_timeout.as_secs();
            return Err(McpError::StartTimeout { server: spec.name.clone(), secs, stderr: String::new() });
        }
    };
    // A stop ends its connection (rmcp's worker, and with it any exchange in progress).
    let (ended, stopped) = (client.cancellation_token(), state.stopped.subscribe());
    let monitor = tokio::spawn(async move {
        until_stopped(stopped).await;
        ended.cancel();
    });
    Ok(offer(&spec, client, tools, state, String::new(), monitor))
}

/// What a started server offers (its tools within the caps, its resources
/// and prompts as tools), and the server as the hub keeps it.
fn offer(
    spec: &ServerSpec,
    client: RunningService<RoleClient, ClientConfig>,
    tools: Vec<rmcp::model::Tool>,
    state: Arc<State>,
    digest: String,
    monitor: tokio::task::JoinHandle<()>,
) -> Started {
    let mut offered = Vec::new();
    let mut refused_tools = Vec::new();
    for tool in tools {
        let shown = airlock_redact::terminal::one_line(&tool.name);
        let schema = Value::Object((*tool.input_schema).clone());
        let description = names::offered_description(tool.description.as_deref().unwrap_or(""))
            .and_then(|d| names::offered_schema(&schema).map(|()| d));
        match description {
            Ok(description) => offered.push((
                McpTool {
                    name: names::qualified(&spec.name, &tool.name),
                    server: spec.name.clone(),
                    tool: tool.name.to_string(),
                    description,
                    input_schema: schema,
                    read_only: tool.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true),
                },
                Route::Tool(tool.name.to_string()),
            )),
            Err(reason) => {
                refused_tools.push(McpError::ToolNotOffered { server: spec.name.clone(), tool: shown, reason })
            }
        }
    }
    let capabilities = client.peer_info().map(|info| info.capabilities.clone());
    let has = |f: fn(&rmcp::model::ServerCapabilities) -> bool| capabilities.as_ref().is_some_and(f);
    if has(|c| c.resources.is_some()) {
        offered.push(extra(
            &spec.name,
            "list_resources",
            "List the resources this MCP server offers (URI, name, type).",
            no_args(),
            Route::ListResources,
        ));
        offered.push(extra(
            &spec.name,
            "read_resource",
            "Read one resource of this MCP server by its URI.",
            serde_json::json!({"type": "object", "properties": {"uri": {"type": "string"}}, "required": ["uri"]}),
            Route::ReadResource,
        ));
    }
    if has(|c| c.prompts.is_some()) {
        offered.push(extra(
            &spec.name,
            "list_prompts",
            "List the prompts this MCP server offers, with their arguments.",
            no_args(),
            Route::ListPrompts,
        ));
        offered.push(extra(
            &spec.name,
            "get_prompt",
            "Get one prompt of this MCP server, filled in with its arguments.",
            serde_json::json!({"type": "object", "properties": {
                "name": {"type": "string"},
                "arguments": {"type": "object", "additionalProperties": {"type": "string"}}
            }, "required": ["name"]}),
            Route::GetPrompt,
        ));
    }
    let server = Server {
        name: spec.name.clone(),
        client,
        state,
        call_timeout: spec.call_timeout,
        monitor: Mutex::new(Some(monitor)),
    };
    Started { server, digest, tools: offered, refused_tools }
}

fn no_args() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

fn extra(server: &str, tool: &str, description: &str, schema: Value, route: Route) -> (McpTool, Route) {
    let tool = McpTool {
        name: names::qualified(server, tool),
        server: server.into(),
        tool: tool.into(),
        description: description.into(),
        input_schema: schema,
        read_only: true,
    };
    (tool, route)
}

/// Waits for the sandbox to end, or for a stop and then kills it (killing
/// `airlock sandbox` kills its whole namespace: its init dies with it).
async fn watch_child(mut child: tokio::process::Child, state: Arc<State>, stderr_task: tokio::task::JoinHandle<()>) {
    tokio::select! {
        status = child.wait() => {
            // What it wrote last explains its exit: wait for the pipe to close.
            let _ = tokio::time::timeout(Duration::from_millis(500), stderr_task).await;
            let how = match status {
                Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                    (Some(125), _) => "the sandbox refused to run it (status 125)".to_string(),
                    (Some(code), _) => format!("it exited with status {code}"),
                    (None, Some(signal)) => format!("it was killed by signal {signal}"),
                    (None, None) => "it ended".to_string(),
                },
                Err(e) => format!("it could not be waited for: {e}"),
            };
            state.stop(format!("{how}{}", state.stderr_suffix()), true);
        }
        () = until_stopped(state.stopped.subscribe()) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// Keeps the last [`STDERR_LINES`] lines of standard error, each on one line and cut short.
async fn keep_stderr(mut stderr: tokio::process::ChildStderr, state: Arc<State>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut line: Vec<u8> = Vec::new();
    let keep = |line: &mut Vec<u8>| {
        let text = airlock_redact::terminal::one_line(&String::from_utf8_lossy(line));
        line.clear();
        let text = short(&text);
        let mut lines = state.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(text);
    };
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                keep(&mut line);
            } else if line.len() < STDERR_LINE {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        keep(&mut line);
    }
}

/// Each name the server looked up, once, as an egress attempt (the
/// sandbox's resolver answers REFUSED once the name was taken here).
async fn record_lookups(socket: std::os::unix::net::UnixDatagram, state: Arc<State>) {
    let socket = match socket.set_nonblocking(true).and_then(|()| tokio::net::UnixDatagram::from_std(socket)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("server {}: the name lookups cannot be read: {e}", state.name);
            return;
        }
    };
    let mut seen = BTreeSet::new();
    let mut buf = [0u8; 2048];
    let stopped = until_stopped(state.stopped.subscribe());
    tokio::pin!(stopped);
    loop {
        let n = tokio::select! {
            got = socket.recv(&mut buf) => match got { Ok(n) => n, Err(_) => return },
            () = &mut stopped => return,
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let host = match text.strip_prefix("#dropped ") {
            Some(count) => format!("({} lookups whose names were not recorded)", count.trim()),
            // `TYPE NAME` (`A example.com`): the name is what is recorded, once for all types.
            None => airlock_redact::terminal::one_line(text.split_once(' ').map_or(text.as_str(), |(_, name)| name)),
        };
        if seen.len() < 10_000 && seen.insert(host.clone()) {
            push(&state.events, ServerEvent::EgressAttempt { server: state.name.clone(), host });
        }
    }
}
