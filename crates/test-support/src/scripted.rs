//! A scripted model server: answers OpenAI chat completions, OpenAI Responses (what Codex CLI speaks), Anthropic
//! Messages and the Gemini API (`/v1beta/models/MODEL:generateContent` and `:streamGenerateContent`, what Gemini CLI
//! speaks) from a list of [`Turn`]s.
//!
//! Each model request (to any of the four APIs) takes the next turn of the [`Script`] and gets it back in the wire
//! format and streaming mode it asked for. Streamed answers look like what real servers send: text and tool call
//! arguments cut into several pieces, parallel calls told apart by `index` (or by output item), usage at the end. A
//! Responses call to a tool the request declares as `custom` (free-text input, like Codex CLI's `apply_patch`) is
//! sent as a `custom_tool_call`. Every request is recorded, and what went wrong on the server's side (an expectation
//! of a turn not met, the script running out, a body that is not JSON, a request to an unknown path) is recorded as
//! a violation for the test to check, since the client only sees an ordinary answer. `GET /v1/models`, the Gemini
//! API's `:countTokens` and the reachability checks agents make (`HEAD /`, `HEAD /api/hello`) are answered without
//! taking a turn.
//!
//! The server runs on its own thread with its own tokio runtime, so it works the same from `#[test]`,
//! `#[tokio::test]` and single-threaded `harness = false` binaries; it stops when the [`ScriptedModel`] is dropped.
//! The `scripted-model` binary serves a script read from a JSON file (the serde form of [`Script`]) for tests that
//! run the real `airlock` binary.
//!
//! ```
//! use airlock_test_support::scripted::{ScriptedModel, Turn};
//! use serde_json::json;
//!
//! let model = ScriptedModel::start(vec![
//!     Turn::call("read_file", json!({"path": "lib.rs"})).and_raw_call("grep", "{not json").expect_contains("lib.rs"),
//!     Turn::text("done").with_usage(2000, 50),
//! ]);
//! let base_url = model.base_url(); // "http://127.0.0.1:PORT": give it to the client under test
//! # assert!(base_url.starts_with("http://127.0.0.1:"));
//! // ... run the client, then:
//! assert_eq!(model.violations(), Vec::<String>::new());
//! ```

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::future::IntoFuture;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

/// The text answered once the script has no turn left.
pub const EXHAUSTED: &str = "(script exhausted)";

/// The signature sent with a thinking block (Anthropic signs them; clients must pass it back unchanged).
pub const THINKING_SIGNATURE: &str = "scripted-signature";

/// Into how many pieces streamed text, thinking and tool call arguments are cut.
const PIECES: usize = 3;

/// One scripted model answer, and what the request that gets it must (not) contain.
///
/// The serde form is the script file format of the `scripted-model` binary; every field may be left out:
///
/// ```json
/// {"text": "Reading it.", "thinking": "The user wants lib.rs.",
///  "calls": [{"name": "read_file", "arguments": {"path": "lib.rs"}}, {"name": "grep", "arguments": "{not json"}],
///  "usage": {"input": 100, "output": 10},
///  "expect_contains": ["lib.rs"], "expect_absent": ["sk-secret"]}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Turn {
    /// Answer text. `None` sends no text block (Anthropic), `content: null` next to tool calls (OpenAI), or no
    /// `message` item (Responses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Tool calls, all in this one answer (parallel calls), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<Call>,
    /// Reasoning: an Anthropic `thinking` block (signed with [`THINKING_SIGNATURE`]), `reasoning_content` in
    /// OpenAI-style answers as llama.cpp and vLLM send it, or a `reasoning` item with this as its summary
    /// (Responses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Token counts reported for this answer.
    pub usage: Tokens,
    /// Strings the request must contain, each either in the raw body or in one of its JSON string values (so text
    /// with quotes or newlines can be written as is).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expect_contains: Vec<String>,
    /// Strings the request must not contain, neither in the raw body nor in any of its JSON string values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expect_absent: Vec<String>,
    /// Milliseconds to wait between the events of a streamed answer (0, the default: no wait), so that a test can
    /// act while an answer is still arriving (interrupt it, resize the terminal). Non-streamed answers ignore it.
    #[serde(skip_serializing_if = "is_zero")]
    pub delay_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One tool call of a [`Turn`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// Tool name. In a Responses answer, a tool the request declares as `custom` gets a `custom_tool_call` whose
    /// `input` is [`Call::arguments`]; any other a `function_call`.
    pub name: String,
    /// The arguments exactly as sent: raw text, so a test can send arguments that are not JSON. In the script file
    /// a JSON string is taken as this raw text and any other JSON value is serialized; left out, it is `{}`.
    #[serde(default = "empty_arguments", deserialize_with = "raw_arguments")]
    pub arguments: String,
    /// Call id; `call_<turn>_<index>` when `None` (turn and index counted from 0), unique in a conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Token counts of a [`Turn`]; 100 in and 10 out unless set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tokens {
    /// Prompt tokens (`prompt_tokens`, `input_tokens`).
    pub input: u64,
    /// Generated tokens (`completion_tokens`, `output_tokens`).
    pub output: u64,
}

impl Default for Tokens {
    fn default() -> Tokens {
        Tokens { input: 100, output: 10 }
    }
}

fn empty_arguments() -> String {
    "{}".to_owned()
}

fn raw_arguments<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(raw) => raw,
        other => other.to_string(),
    })
}

impl Call {
    /// A call with JSON arguments.
    pub fn new(name: impl Into<String>, arguments: Value) -> Call {
        Call { name: name.into(), arguments: arguments.to_string(), id: None }
    }

    /// A call whose arguments are sent exactly as `arguments` (which need not be JSON).
    pub fn raw(name: impl Into<String>, arguments: impl Into<String>) -> Call {
        Call { name: name.into(), arguments: arguments.into(), id: None }
    }

    /// The id sent for this call as call `index` of turn `turn`.
    fn id_in(&self, turn: usize, index: usize) -> String {
        self.id.clone().unwrap_or_else(|| format!("call_{turn}_{index}"))
    }
}

impl Turn {
    /// An answer that is only `text`.
    pub fn text(text: impl Into<String>) -> Turn {
        Turn { text: Some(text.into()), ..Turn::default() }
    }

    /// An answer that is one tool call with JSON arguments.
    pub fn call(name: impl Into<String>, arguments: Value) -> Turn {
        Turn::default().and_call(name, arguments)
    }

    /// An answer that is one tool call whose arguments are sent exactly as `arguments` (which need not be JSON).
    pub fn raw_call(name: impl Into<String>, arguments: impl Into<String>) -> Turn {
        Turn::default().and_raw_call(name, arguments)
    }

    /// Adds a tool call with JSON arguments, after the ones already there.
    pub fn and_call(mut self, name: impl Into<String>, arguments: Value) -> Turn {
        self.calls.push(Call::new(name, arguments));
        self
    }

    /// Adds a tool call whose arguments are sent exactly as `arguments`, after the ones already there.
    pub fn and_raw_call(mut self, name: impl Into<String>, arguments: impl Into<String>) -> Turn {
        self.calls.push(Call::raw(name, arguments));
        self
    }

    /// Sets the answer text (sent before any tool calls).
    pub fn with_text(mut self, text: impl Into<String>) -> Turn {
        self.text = Some(text.into());
        self
    }

    /// Sets the reasoning sent before the text.
    pub fn with_thinking(mut self, thinking: impl Into<String>) -> Turn {
        self.thinking = Some(thinking.into());
        self
    }

    /// Sets the token counts reported.
    pub fn with_usage(mut self, input: u64, output: u64) -> Turn {
        self.usage = Tokens { input, output };
        self
    }

    /// Requires the request that gets this answer to contain `needle`, in the raw body or in one of its JSON string
    /// values.
    pub fn expect_contains(mut self, needle: impl Into<String>) -> Turn {
        self.expect_contains.push(needle.into());
        self
    }

    /// Requires the request that gets this answer not to contain `needle`.
    pub fn expect_absent(mut self, needle: impl Into<String>) -> Turn {
        self.expect_absent.push(needle.into());
        self
    }

    /// Waits `delay_ms` milliseconds between the events of this answer when it is streamed.
    pub fn with_delay_ms(mut self, delay_ms: u64) -> Turn {
        self.delay_ms = delay_ms;
        self
    }

    fn finishes_with_calls(&self) -> bool {
        !self.calls.is_empty()
    }
}

/// The turns a [`ScriptedModel`] answers with, in order. Its serde form is a JSON array of [`Turn`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Script {
    /// The turns, first answer first.
    pub turns: Vec<Turn>,
}

impl From<Vec<Turn>> for Script {
    fn from(turns: Vec<Turn>) -> Script {
        Script { turns }
    }
}

impl FromIterator<Turn> for Script {
    fn from_iter<I: IntoIterator<Item = Turn>>(turns: I) -> Script {
        Script { turns: turns.into_iter().collect() }
    }
}

impl Script {
    /// Reads a script file: a JSON array of turns. The error names the file.
    pub fn load(path: &Path) -> io::Result<Script> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read the script {}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the script {} is not a list of turns: {e}", path.display()),
            )
        })
    }
}

/// Where a [`ScriptedModel`] listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// This TCP port on 127.0.0.1; 0 lets the system pick a free one.
    Port(u16),
    /// A Unix socket created at this path (which must not exist yet); removed again when the server stops.
    Unix(PathBuf),
}

/// A running scripted model server. Stops, and removes its Unix socket, when dropped.
#[derive(Debug)]
pub struct ScriptedModel {
    shared: Arc<Mutex<Record>>,
    listen: Listen,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ScriptedModel {
    /// Answers every later request that offers the model no tools with `side`, taking no turn of the script:
    /// the session titles and summaries that agents ask for beside a conversation, at times that vary.
    pub fn set_side_answer(&self, side: Option<Turn>) {
        lock(&self.shared).side = side;
    }

    /// Serves `script` on a free port of 127.0.0.1.
    ///
    /// # Panics
    ///
    /// When no port can be bound; [`ScriptedModel::try_start`] returns that error instead.
    #[track_caller]
    pub fn start(script: impl Into<Script>) -> ScriptedModel {
        match ScriptedModel::try_start(script, Listen::Port(0), None) {
            Ok(model) => model,
            Err(error) => panic!("the scripted model could not listen on 127.0.0.1: {error}"),
        }
    }

    /// Serves `script` on a Unix socket created at `path`.
    ///
    /// # Panics
    ///
    /// When the socket cannot be created (for instance because `path` exists); [`ScriptedModel::try_start`]
    /// returns that error instead.
    #[track_caller]
    pub fn start_unix(script: impl Into<Script>, path: impl AsRef<Path>) -> ScriptedModel {
        let path = path.as_ref();
        match ScriptedModel::try_start(script, Listen::Unix(path.to_owned()), None) {
            Ok(model) => model,
            Err(error) => panic!("the scripted model could not listen on {}: {error}", path.display()),
        }
    }

    /// Serves `script` at `listen`. With a `log`, each model request is also appended to that file as one JSON line
    /// (the body with its `"path"`, as in [`ScriptedModel::requests`]), each other request that is served as a
    /// `{"route": "GET /v1/models"}` line and each violation as a `{"violation": "…"}` line, before the answer is
    /// sent.
    pub fn try_start(script: impl Into<Script>, listen: Listen, log: Option<&Path>) -> io::Result<ScriptedModel> {
        let log = match log {
            None => None,
            Some(path) => Some(OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open the request log {}: {e}", path.display()))
            })?),
        };
        let turns: VecDeque<Turn> = script.into().turns.into();
        let shared = Arc::new(Mutex::new(Record {
            length: turns.len(),
            turns,
            served: 0,
            routes: Vec::new(),
            requests: Vec::new(),
            raw_bodies: Vec::new(),
            violations: Vec::new(),
            log,
            side: None,
        }));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/messages", post(messages))
            .route("/v1/responses", post(responses))
            .route("/v1/models", get(models))
            // `MODEL:generateContent`, `MODEL:streamGenerateContent`, `MODEL:countTokens`: one path segment.
            .route("/v1beta/models/{target}", post(gemini))
            // Claude Code checks that its base URL answers before it sends anything: `HEAD /` (2.1.197),
            // `HEAD /api/hello` (2.1.332).
            .route("/", get(reachable))
            .route("/api/hello", get(reachable))
            .fallback(unexpected)
            // Agent conversations with whole files in them can be large.
            .layer(DefaultBodyLimit::disable())
            .with_state(Arc::clone(&shared));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let (listen, server) = {
            // Turning the std listeners into tokio ones needs the runtime.
            let _entered = runtime.enter();
            match listen {
                Listen::Port(port) => {
                    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
                    listener.set_nonblocking(true)?;
                    let port = listener.local_addr()?.port();
                    let server = axum::serve(tokio::net::TcpListener::from_std(listener)?, app).into_future();
                    let server: Server = Box::pin(server);
                    (Listen::Port(port), server)
                }
                Listen::Unix(path) => serve_unix(path, app)?,
            }
        };
        let thread = std::thread::Builder::new().name("scripted-model".into()).spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    result = server => result,
                    _ = stopped => Ok(()),
                }
            })
            // Dropping the runtime here ends the connections still open.
        });
        let thread = match thread {
            Ok(thread) => thread,
            Err(error) => {
                if let Listen::Unix(path) = &listen {
                    let _ = std::fs::remove_file(path);
                }
                return Err(error);
            }
        };
        Ok(ScriptedModel { shared, listen, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// The base URL to give a client, without `/v1`: `http://127.0.0.1:PORT`, or `http://localhost` on a Unix
    /// socket (where it only names the `Host`).
    pub fn base_url(&self) -> String {
        match &self.listen {
            Listen::Port(port) => format!("http://127.0.0.1:{port}"),
            Listen::Unix(_) => "http://localhost".to_owned(),
        }
    }

    /// Where the server listens; a [`Listen::Port`] here has the port actually bound.
    pub fn listen(&self) -> &Listen {
        &self.listen
    }

    /// Every model request received, in order: its JSON body with a `"path"` field added, and a `"query"` field
    /// when the URL had one (a body that was not a JSON object is `{"path": …, "unparsed": "<body>"}`). Request `i`
    /// got turn `i` as long as all bodies parsed. Other requests are only in [`ScriptedModel::routes`].
    pub fn requests(&self) -> Vec<Value> {
        self.record().requests.clone()
    }

    /// Every HTTP request received, model requests or not, as `METHOD /path?query` in order: which routes a client
    /// calls (`HEAD /`, `GET /v1/models`, `POST /v1/messages?beta=true`, …).
    pub fn routes(&self) -> Vec<String> {
        self.record().routes.clone()
    }

    /// The bodies of [`ScriptedModel::requests`] exactly as received.
    pub fn raw_bodies(&self) -> Vec<String> {
        self.record().raw_bodies.clone()
    }

    /// What went wrong so far, one sentence each: an expectation of a turn not met, a request after the script ran
    /// out, a body that is not JSON, a request to an unknown path. Empty when all went to script.
    pub fn violations(&self) -> Vec<String> {
        self.record().violations.clone()
    }

    /// How many turns of the script have not been answered yet.
    pub fn turns_left(&self) -> usize {
        self.record().turns.len()
    }

    /// Blocks until the server stops, which it only does on an error (the `scripted-model` binary's `main`).
    pub fn join(mut self) -> io::Result<()> {
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(error))) => Err(error),
            Some(Err(_)) => Err(io::Error::other("the scripted model's server thread panicked")),
        }
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        lock(&self.shared)
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // Fails only when the server already stopped.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Listen::Unix(path) = &self.listen {
            let _ = std::fs::remove_file(path);
        }
    }
}

type Server = std::pin::Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

#[cfg(unix)]
fn serve_unix(path: PathBuf, app: Router) -> io::Result<(Listen, Server)> {
    let listener = std::os::unix::net::UnixListener::bind(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create the socket {}: {e}", path.display())))?;
    listener.set_nonblocking(true)?;
    let server = axum::serve(tokio::net::UnixListener::from_std(listener)?, app).into_future();
    Ok((Listen::Unix(path), Box::pin(server)))
}

#[cfg(not(unix))]
fn serve_unix(path: PathBuf, _app: Router) -> io::Result<(Listen, Server)> {
    Err(io::Error::new(io::ErrorKind::Unsupported, format!("no Unix sockets here ({})", path.display())))
}

/// What the server has seen, and the turns it has left.
#[derive(Debug)]
struct Record {
    turns: VecDeque<Turn>,
    /// How many turns the script had.
    length: usize,
    /// Turns taken so far (answers from an exhausted script included).
    served: usize,
    /// `METHOD /path?query` of every request, in order.
    routes: Vec<String>,
    requests: Vec<Value>,
    raw_bodies: Vec<String>,
    violations: Vec<String>,
    log: Option<File>,
    /// The answer to a request that offers the model no tools, which then takes no turn.
    side: Option<Turn>,
}

impl Record {
    /// Notes a request to a path that is served but takes no turn, in [`ScriptedModel::routes`] and the log.
    fn visit(&mut self, method: &Method, uri: &Uri) {
        let route = format!("{method} {uri}");
        self.log(&json!({"route": route}));
        self.routes.push(route);
    }

    fn request(&mut self, request: Value, raw: String) {
        self.log(&request);
        self.requests.push(request);
        self.raw_bodies.push(raw);
    }

    fn violation(&mut self, violation: String) {
        self.log(&json!({"violation": violation}));
        self.violations.push(violation);
    }

    fn log(&mut self, line: &Value) {
        let Some(file) = &mut self.log else { return };
        // One write per line, so a reader never sees half of one.
        if let Err(error) = file.write_all(format!("{line}\n").as_bytes()) {
            self.log = None;
            self.violations.push(format!("could not write the request log, so it stops here: {error}"));
        }
    }
}

fn lock(shared: &Mutex<Record>) -> MutexGuard<'_, Record> {
    // A test that panicked while holding the lock left the record as consistent as any other moment.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The four wire formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
    /// OpenAI's Responses API (what Codex CLI speaks).
    Responses,
    /// Google's Gemini API (what Gemini CLI speaks): the model and whether to stream are in the path.
    Gemini {
        stream: bool,
    },
}

async fn chat_completions(State(shared): State<Arc<Mutex<Record>>>, uri: Uri, body: Bytes) -> Response {
    answer(&shared, Api::OpenAi, &uri, &body)
}

async fn messages(State(shared): State<Arc<Mutex<Record>>>, uri: Uri, body: Bytes) -> Response {
    answer(&shared, Api::Anthropic, &uri, &body)
}

async fn responses(State(shared): State<Arc<Mutex<Record>>>, uri: Uri, body: Bytes) -> Response {
    answer(&shared, Api::Responses, &uri, &body)
}

/// `POST /v1beta/models/MODEL:METHOD`: a turn for `generateContent` and `streamGenerateContent` (streamed as SSE
/// with `?alt=sse`, as Gemini CLI asks, else as a JSON array of the same chunks), a count for `countTokens`.
async fn gemini(
    State(shared): State<Arc<Mutex<Record>>>,
    method: Method,
    axum::extract::Path(target): axum::extract::Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    match target.rsplit_once(':').map(|(_, m)| m) {
        Some("generateContent") => answer(&shared, Api::Gemini { stream: false }, &uri, &body),
        Some("streamGenerateContent") => answer(&shared, Api::Gemini { stream: true }, &uri, &body),
        Some("countTokens") => {
            lock(&shared).visit(&method, &uri);
            let tokens = u64::try_from(body.len() / 4).unwrap_or(u64::MAX);
            axum::Json(json!({"totalTokens": tokens})).into_response()
        }
        _ => unexpected(State(shared), method, uri).await,
    }
}

/// `GET` or `HEAD` of `/` or `/api/hello`: the server is there.
async fn reachable(State(shared): State<Arc<Mutex<Record>>>, method: Method, uri: Uri) -> Response {
    lock(&shared).visit(&method, &uri);
    axum::Json(json!({"server": "scripted-model"})).into_response()
}

async fn models(State(shared): State<Arc<Mutex<Record>>>, method: Method, uri: Uri) -> Response {
    lock(&shared).visit(&method, &uri);
    axum::Json(json!({
        "object": "list",
        "data": [{"id": "scripted", "object": "model", "type": "model", "display_name": "scripted", "created": 0,
            "owned_by": "airlock-test-support"}],
        "has_more": false,
    }))
    .into_response()
}

async fn unexpected(State(shared): State<Arc<Mutex<Record>>>, method: Method, uri: Uri) -> Response {
    let message = format!(
        "unexpected request {method} {uri}: only POST /v1/chat/completions, POST /v1/messages, POST /v1/responses, \
         POST /v1beta/models/MODEL:generateContent (also :streamGenerateContent, :countTokens), GET /v1/models, \
         GET / and GET /api/hello are served"
    );
    let mut record = lock(&shared);
    record.routes.push(format!("{method} {uri}"));
    record.violation(message.clone());
    drop(record);
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": {"type": "not_found_error", "message": message}})))
        .into_response()
}

/// Records the request, takes the next turn, checks its expectations and renders it as the request asked.
fn answer(shared: &Mutex<Record>, api: Api, uri: &Uri, body: &[u8]) -> Response {
    let path = uri.path();
    let raw = String::from_utf8_lossy(body).into_owned();
    let mut record = lock(shared);
    record.routes.push(format!("POST {uri}"));
    let number = record.requests.len();
    // Claude Code asks for `/v1/messages?beta=true`; the record keeps the query apart from the path.
    let with_query = |mut fields: serde_json::Map<String, Value>| {
        fields.insert("path".into(), json!(path));
        if let Some(query) = uri.query() {
            fields.insert("query".into(), json!(query));
        }
        Value::Object(fields)
    };
    let parsed = serde_json::from_str::<Value>(&raw);
    let Ok(Value::Object(fields)) = parsed else {
        let why = match parsed {
            Err(error) => format!("not JSON ({error})"),
            Ok(_) => "JSON but not an object".to_owned(),
        };
        let message = format!("request {number} (POST {path}): the body is {why}: {}", excerpt(&raw));
        let unparsed = serde_json::Map::from_iter([("unparsed".to_owned(), json!(raw))]);
        record.request(with_query(unparsed), raw);
        record.violation(message.clone());
        return bad_request(api, &message);
    };
    let stream = match api {
        Api::Gemini { stream } => stream,
        _ => fields.get("stream") == Some(&Value::Bool(true)),
    };
    let include_usage = fields.get("stream_options").and_then(|o| o.get("include_usage")) == Some(&Value::Bool(true));
    let model = match api {
        Api::Gemini { .. } => gemini_model(path),
        _ => fields.get("model").and_then(Value::as_str).unwrap_or("scripted").to_owned(),
    };
    let custom = custom_tools(&fields);
    let request = Value::Object(fields.clone());
    let offers_tools = fields.get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty());
    record.request(with_query(fields), raw.clone());
    if let (Some(side), false) = (&record.side, offers_tools) {
        let side = side.clone();
        drop(record);
        return render(api, stream, &side, 0, &model, include_usage, &custom, sse_wanted(uri));
    }

    let index = record.served;
    record.served += 1;
    let turn = match record.turns.pop_front() {
        Some(turn) => turn,
        None => {
            let length = record.length;
            record.violation(format!(
                "request {number} (POST {path}): the script has no turn left (its {length} were answered), so it got \
                 {EXHAUSTED:?}"
            ));
            Turn::text(EXHAUSTED)
        }
    };
    for needle in &turn.expect_contains {
        if !mentions(&raw, &request, needle) {
            record
                .violation(format!("request {number} (POST {path}), turn {index}: expected it to contain {needle:?}"));
        }
    }
    for needle in &turn.expect_absent {
        if mentions(&raw, &request, needle) {
            record.violation(format!("request {number} (POST {path}), turn {index}: it contains {needle:?}"));
        }
    }
    drop(record);
    render(api, stream, &turn, index, &model, include_usage, &custom, sse_wanted(uri))
}

/// Whether the query asks for server-sent events (`alt=sse`, the Gemini API's way).
fn sse_wanted(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|p| p == "alt=sse"))
}

/// The model a Gemini API path names (`/v1beta/models/MODEL:METHOD`).
fn gemini_model(path: &str) -> String {
    let target = path.rsplit('/').next().unwrap_or_default();
    target.rsplit_once(':').map_or(target, |(model, _)| model).to_owned()
}

/// A turn in the wire form the request asked for.
#[allow(clippy::too_many_arguments)]
fn render(
    api: Api,
    stream: bool,
    turn: &Turn,
    index: usize,
    model: &str,
    include_usage: bool,
    custom: &[String],
    sse_wanted: bool,
) -> Response {
    let delay = std::time::Duration::from_millis(turn.delay_ms);
    match (api, stream) {
        (Api::OpenAi, false) => axum::Json(openai_completion(turn, index, model)).into_response(),
        (Api::OpenAi, true) => sse(openai_chunks(turn, index, model, include_usage), delay),
        (Api::Anthropic, false) => axum::Json(anthropic_message(turn, index, model)).into_response(),
        (Api::Anthropic, true) => sse(anthropic_events(turn, index, model), delay),
        (Api::Responses, false) => axum::Json(responses_document(turn, index, model, custom)).into_response(),
        (Api::Responses, true) => sse(responses_events(turn, index, model, custom), delay),
        (Api::Gemini { .. }, false) => axum::Json(gemini_document(turn, index, model)).into_response(),
        (Api::Gemini { .. }, true) if sse_wanted => {
            let events = gemini_chunks(turn, index, model).iter().map(|c| format!("data: {c}\r\n\r\n")).collect();
            sse(events, delay)
        }
        (Api::Gemini { .. }, true) => axum::Json(Value::Array(gemini_chunks(turn, index, model))).into_response(),
    }
}

/// Whether `needle` is in the raw body or in one of the JSON string values of the request.
fn mentions(raw: &str, request: &Value, needle: &str) -> bool {
    fn in_strings(value: &Value, needle: &str) -> bool {
        match value {
            Value::String(text) => text.contains(needle),
            Value::Array(items) => items.iter().any(|v| in_strings(v, needle)),
            Value::Object(fields) => fields.values().any(|v| in_strings(v, needle)),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    raw.contains(needle) || in_strings(request, needle)
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn bad_request(api: Api, message: &str) -> Response {
    let body = match api {
        Api::OpenAi | Api::Responses => json!({"error": {"type": "invalid_request_error", "message": message}}),
        Api::Anthropic => json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
        Api::Gemini { .. } => json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}),
    };
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// A server-sent-events response, one write per event (the client reads them as separate pieces), with `delay`
/// between events.
fn sse(events: Vec<String>, delay: std::time::Duration) -> Response {
    let stream = futures_util::stream::unfold((events.into_iter(), true), move |(mut events, first)| async move {
        let event = events.next()?;
        if first || delay.is_zero() {
            // Lets the connection send what it has before the next event.
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<_, Infallible>(event), (events, false)))
    });
    let headers = [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")];
    (StatusCode::OK, headers, Body::from_stream(stream)).into_response()
}

/// `text` cut into up to `n` non-empty pieces of about the same length, at character boundaries.
fn pieces(text: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for k in 1..=n {
        let mut end = text.len() * k / n;
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if end > start {
            out.push(&text[start..end]);
            start = end;
        }
    }
    out
}

fn openai_usage(usage: Tokens) -> Value {
    json!({"prompt_tokens": usage.input, "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output})
}

fn openai_finish_reason(turn: &Turn) -> &'static str {
    if turn.finishes_with_calls() { "tool_calls" } else { "stop" }
}

/// A non-streamed `chat.completion`.
fn openai_completion(turn: &Turn, index: usize, model: &str) -> Value {
    let content = match &turn.text {
        Some(text) => json!(text),
        None if turn.calls.is_empty() => json!(""),
        None => Value::Null,
    };
    let mut message = json!({"role": "assistant", "content": content});
    if let Some(thinking) = &turn.thinking {
        message["reasoning_content"] = json!(thinking);
    }
    if !turn.calls.is_empty() {
        let calls: Vec<Value> = turn
            .calls
            .iter()
            .enumerate()
            .map(|(i, call)| {
                json!({"id": call.id_in(index, i), "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments}})
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": format!("chatcmpl-scripted-{index}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": openai_finish_reason(turn)}],
        "usage": openai_usage(turn.usage),
    })
}

/// The `data:` events of a streamed chat completion, `[DONE]` included.
fn openai_chunks(turn: &Turn, index: usize, model: &str, include_usage: bool) -> Vec<String> {
    let id = format!("chatcmpl-scripted-{index}");
    let chunk = |choices: Value| json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": choices});
    let delta = |delta: Value| chunk(json!([{"index": 0, "delta": delta, "finish_reason": null}]));
    let mut chunks = vec![delta(json!({"role": "assistant"}))];
    for piece in pieces(turn.thinking.as_deref().unwrap_or_default(), PIECES) {
        chunks.push(delta(json!({"reasoning_content": piece})));
    }
    for piece in pieces(turn.text.as_deref().unwrap_or_default(), PIECES) {
        chunks.push(delta(json!({"content": piece})));
    }
    for (i, call) in turn.calls.iter().enumerate() {
        chunks.push(delta(json!({"tool_calls": [{"index": i, "id": call.id_in(index, i), "type": "function",
            "function": {"name": call.name, "arguments": ""}}]})));
        for piece in pieces(&call.arguments, PIECES) {
            chunks.push(delta(json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})));
        }
    }
    chunks.push(chunk(json!([{"index": 0, "delta": {}, "finish_reason": openai_finish_reason(turn)}])));
    if include_usage {
        let mut usage = chunk(json!([]));
        usage["usage"] = openai_usage(turn.usage);
        chunks.push(usage);
    }
    let mut events: Vec<String> = chunks.iter().map(|chunk| format!("data: {chunk}\n\n")).collect();
    events.push("data: [DONE]\n\n".to_owned());
    events
}

/// The names of the request's tools of type `custom` (Responses API): tools whose input is free text, not JSON
/// arguments, such as Codex CLI's `apply_patch` for the models it knows.
fn custom_tools(request: &serde_json::Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(tools)) = request.get("tools") else { return Vec::new() };
    tools
        .iter()
        .filter(|tool| tool["type"] == "custom")
        .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
        .collect()
}

/// The output items of a Responses answer: the reasoning summary, a message with the text, then one item per call:
/// a `custom_tool_call` with the arguments as its `input` when the request declares that tool as `custom`, a
/// `function_call` otherwise.
fn responses_items(turn: &Turn, index: usize, custom: &[String]) -> Vec<Value> {
    let mut items = Vec::new();
    if let Some(thinking) = &turn.thinking {
        items.push(json!({"type": "reasoning", "id": format!("rs_scripted_{index}"),
            "summary": [{"type": "summary_text", "text": thinking}]}));
    }
    if let Some(text) = &turn.text {
        items.push(json!({"type": "message", "id": format!("msg_scripted_{index}"), "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}));
    }
    for (i, call) in turn.calls.iter().enumerate() {
        let (id, call_id) = (format!("fc_scripted_{index}_{i}"), call.id_in(index, i));
        items.push(if custom.contains(&call.name) {
            json!({"type": "custom_tool_call", "id": id, "status": "completed", "call_id": call_id,
                "name": call.name, "input": call.arguments})
        } else {
            json!({"type": "function_call", "id": id, "status": "completed", "call_id": call_id,
                "name": call.name, "arguments": call.arguments})
        });
    }
    items
}

/// `base` (a JSON object) with `key` set to `value`.
fn with_field(base: &Value, key: &str, value: Value) -> Value {
    let mut out = base.clone();
    out[key] = value;
    out
}

fn responses_usage(usage: Tokens) -> Value {
    json!({"input_tokens": usage.input, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": usage.input + usage.output})
}

/// A non-streamed Responses answer.
fn responses_document(turn: &Turn, index: usize, model: &str, custom: &[String]) -> Value {
    json!({"id": format!("resp_scripted_{index}"), "object": "response", "created_at": 0, "status": "completed",
        "error": null, "incomplete_details": null, "model": model, "output": responses_items(turn, index, custom),
        "usage": responses_usage(turn.usage)})
}

/// A streamed Responses answer: the event sequence OpenAI sends, each item added, filled in pieces and done, then
/// `response.completed` with the whole answer and its usage.
fn responses_events(turn: &Turn, index: usize, model: &str, custom: &[String]) -> Vec<String> {
    let mut events = Vec::new();
    let mut push = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(events.len());
        events.push(format!("event: {kind}\ndata: {data}\n\n"));
    };
    let mut shell = responses_document(turn, index, model, custom);
    shell["status"] = json!("in_progress");
    shell["output"] = json!([]);
    shell["usage"] = Value::Null;
    push("response.created", json!({"response": shell}));
    push("response.in_progress", json!({"response": shell}));
    for (at, item) in responses_items(turn, index, custom).into_iter().enumerate() {
        let item_id = item["id"].clone();
        let mut added = item.clone();
        match item["type"].as_str().unwrap_or_default() {
            "reasoning" => {
                added["summary"] = json!([]);
                push("response.output_item.added", json!({"output_index": at, "item": added}));
                let text = item["summary"][0]["text"].as_str().unwrap_or_default().to_owned();
                let at_part = json!({"item_id": item_id, "output_index": at, "summary_index": 0});
                let part = |key: &str, value: Value| with_field(&at_part, key, value);
                let empty = json!({"type": "summary_text", "text": ""});
                push("response.reasoning_summary_part.added", part("part", empty));
                for piece in pieces(&text, PIECES) {
                    push("response.reasoning_summary_text.delta", part("delta", json!(piece)));
                }
                push("response.reasoning_summary_text.done", part("text", json!(text)));
                push("response.reasoning_summary_part.done", part("part", item["summary"][0].clone()));
            }
            "message" => {
                added["status"] = json!("in_progress");
                added["content"] = json!([]);
                push("response.output_item.added", json!({"output_index": at, "item": added}));
                let text = item["content"][0]["text"].as_str().unwrap_or_default().to_owned();
                let at_part = json!({"item_id": item_id, "output_index": at, "content_index": 0});
                let part = |key: &str, value: Value| with_field(&at_part, key, value);
                let empty = json!({"type": "output_text", "text": "", "annotations": []});
                push("response.content_part.added", part("part", empty));
                for piece in pieces(&text, PIECES) {
                    push("response.output_text.delta", part("delta", json!(piece)));
                }
                push("response.output_text.done", part("text", json!(text)));
                push("response.content_part.done", part("part", item["content"][0].clone()));
            }
            kind => {
                // `function_call` sends `arguments`, `custom_tool_call` its free-text `input`.
                let (field, prefix) = if kind == "custom_tool_call" {
                    ("input", "response.custom_tool_call_input")
                } else {
                    ("arguments", "response.function_call_arguments")
                };
                added["status"] = json!("in_progress");
                added[field] = json!("");
                push("response.output_item.added", json!({"output_index": at, "item": added}));
                let whole = item[field].as_str().unwrap_or_default().to_owned();
                let at_item = json!({"item_id": item_id, "output_index": at});
                for piece in pieces(&whole, PIECES) {
                    push(&format!("{prefix}.delta"), with_field(&at_item, "delta", json!(piece)));
                }
                push(&format!("{prefix}.done"), with_field(&at_item, field, json!(whole)));
            }
        }
        push("response.output_item.done", json!({"output_index": at, "item": item}));
    }
    push("response.completed", json!({"response": responses_document(turn, index, model, custom)}));
    events
}

fn gemini_usage(usage: Tokens) -> Value {
    json!({"promptTokenCount": usage.input, "candidatesTokenCount": usage.output,
        "totalTokenCount": usage.input + usage.output})
}

/// A `functionCall` part: `args` must be a JSON object, so arguments that are not JSON are sent as a string (as a
/// broken proxy might); an id only when the script gives one (Google's API mostly sends none).
fn gemini_call(call: &Call) -> Value {
    let mut function_call = json!({"name": call.name, "args": anthropic_input(&call.arguments)});
    if let Some(id) = &call.id {
        function_call["id"] = json!(id);
    }
    json!({"functionCall": function_call})
}

/// A Gemini answer chunk (`GenerateContentResponse`) with these parts.
fn gemini_chunk(parts: Vec<Value>, index: usize, model: &str) -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
        "modelVersion": model, "responseId": format!("scripted-{index}")})
}

/// A non-streamed Gemini answer: the thinking (a `thought` part), the text, the calls, `finishReason`, usage.
fn gemini_document(turn: &Turn, index: usize, model: &str) -> Value {
    let mut parts = Vec::new();
    if let Some(thinking) = &turn.thinking {
        parts.push(json!({"text": thinking, "thought": true}));
    }
    if let Some(text) = &turn.text {
        parts.push(json!({"text": text}));
    }
    parts.extend(turn.calls.iter().map(gemini_call));
    let mut document = gemini_chunk(parts, index, model);
    document["candidates"][0]["finishReason"] = json!("STOP");
    document["usageMetadata"] = gemini_usage(turn.usage);
    document
}

/// The chunks of a streamed Gemini answer: thinking and text in pieces, each call whole (Google sends a call in one
/// chunk), and `finishReason` (always `STOP`, calls or not, as Google does) with usage on the last one.
fn gemini_chunks(turn: &Turn, index: usize, model: &str) -> Vec<Value> {
    let mut parts: Vec<Value> = Vec::new();
    for piece in pieces(turn.thinking.as_deref().unwrap_or_default(), PIECES) {
        parts.push(json!({"text": piece, "thought": true}));
    }
    for piece in pieces(turn.text.as_deref().unwrap_or_default(), PIECES) {
        parts.push(json!({"text": piece}));
    }
    parts.extend(turn.calls.iter().map(gemini_call));
    if parts.is_empty() {
        parts.push(json!({"text": ""}));
    }
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(at, part)| {
            let mut chunk = gemini_chunk(vec![part], index, model);
            if at == last {
                chunk["candidates"][0]["finishReason"] = json!("STOP");
                chunk["usageMetadata"] = gemini_usage(turn.usage);
            }
            chunk
        })
        .collect()
}

fn anthropic_stop_reason(turn: &Turn) -> &'static str {
    if turn.finishes_with_calls() { "tool_use" } else { "end_turn" }
}

/// A tool call's `input` in a non-streamed message, which can only carry JSON: arguments that are not JSON are
/// sent as a JSON string (as a broken proxy might), empty ones as `{}`.
fn anthropic_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| json!(arguments))
}

/// A non-streamed Messages answer.
fn anthropic_message(turn: &Turn, index: usize, model: &str) -> Value {
    let mut content = Vec::new();
    if let Some(thinking) = &turn.thinking {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": THINKING_SIGNATURE}));
    }
    if let Some(text) = &turn.text {
        content.push(json!({"type": "text", "text": text}));
    }
    for (i, call) in turn.calls.iter().enumerate() {
        content.push(json!({"type": "tool_use", "id": call.id_in(index, i), "name": call.name,
            "input": anthropic_input(&call.arguments)}));
    }
    json!({
        "id": format!("msg_scripted_{index}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": anthropic_stop_reason(turn),
        "stop_sequence": null,
        "usage": {"input_tokens": turn.usage.input, "output_tokens": turn.usage.output},
    })
}

/// The events of a streamed Messages answer, `message_start` to `message_stop`.
fn anthropic_events(turn: &Turn, index: usize, model: &str) -> Vec<String> {
    let mut events = vec![
        json!({"type": "message_start", "message": {"id": format!("msg_scripted_{index}"), "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": turn.usage.input, "output_tokens": 1}}}),
        json!({"type": "ping"}),
    ];
    let mut block = 0;
    let mut add_block = |events: &mut Vec<Value>, start: Value, deltas: Vec<Value>| {
        events.push(json!({"type": "content_block_start", "index": block, "content_block": start}));
        for delta in deltas {
            events.push(json!({"type": "content_block_delta", "index": block, "delta": delta}));
        }
        events.push(json!({"type": "content_block_stop", "index": block}));
        block += 1;
    };
    if let Some(thinking) = &turn.thinking {
        let mut deltas: Vec<Value> =
            pieces(thinking, PIECES).into_iter().map(|p| json!({"type": "thinking_delta", "thinking": p})).collect();
        deltas.push(json!({"type": "signature_delta", "signature": THINKING_SIGNATURE}));
        add_block(&mut events, json!({"type": "thinking", "thinking": "", "signature": ""}), deltas);
    }
    if let Some(text) = &turn.text {
        let deltas = pieces(text, PIECES).into_iter().map(|p| json!({"type": "text_delta", "text": p})).collect();
        add_block(&mut events, json!({"type": "text", "text": ""}), deltas);
    }
    for (i, call) in turn.calls.iter().enumerate() {
        let deltas = pieces(&call.arguments, PIECES)
            .into_iter()
            .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
            .collect();
        let start = json!({"type": "tool_use", "id": call.id_in(index, i), "name": call.name, "input": {}});
        add_block(&mut events, start, deltas);
    }
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": anthropic_stop_reason(turn), "stop_sequence": null},
        "usage": {"output_tokens": turn.usage.output}}));
    events.push(json!({"type": "message_stop"}));
    events
        .iter()
        .map(|event| format!("event: {}\ndata: {event}\n\n", event["type"].as_str().unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{
        Call, Script, Tokens, Turn, anthropic_events, custom_tools, mentions, openai_chunks, pieces, responses_events,
        responses_items,
    };
    use serde_json::Value;
    use serde_json::json;

    #[test]
    fn pieces_cover_the_text_at_char_boundaries() {
        assert_eq!(pieces("", 3), Vec::<&str>::new());
        assert_eq!(pieces("ab", 3), ["a", "b"]);
        assert_eq!(pieces("abcdef", 3), ["ab", "cd", "ef"]);
        let text = "ééé€x";
        assert_eq!(pieces(text, 3).concat(), text);
    }

    #[test]
    fn the_script_format_reads_json_and_raw_arguments() {
        let script: Script = serde_json::from_value(json!([
            {"text": "hi", "usage": {"input": 5}},
            {"calls": [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": "{not json"}, {"name": "c"}],
             "thinking": "hmm", "expect_contains": ["x"], "expect_absent": ["y"]},
        ]))
        .unwrap();
        assert_eq!(script.turns[0], Turn::text("hi").with_usage(5, 10));
        assert_eq!(
            script.turns[1],
            Turn::call("a", json!({"x": 1}))
                .and_raw_call("b", "{not json")
                .and_raw_call("c", "{}")
                .with_thinking("hmm")
                .expect_contains("x")
                .expect_absent("y")
        );
        // Written out and read back, raw arguments stay raw.
        let again: Script = serde_json::from_str(&serde_json::to_string(&script).unwrap()).unwrap();
        assert_eq!(again, script);
        assert_eq!(Tokens::default(), Tokens { input: 100, output: 10 });
        assert!(serde_json::from_value::<Script>(json!([{"txt": "typo"}])).is_err());
        let slow: Script = serde_json::from_value(json!([{"text": "slow", "delay_ms": 250}])).unwrap();
        assert_eq!(slow.turns[0], Turn::text("slow").with_delay_ms(250));
        assert!(!serde_json::to_string(&Turn::text("fast")).unwrap().contains("delay_ms"), "left out when 0");
        assert_eq!(Call::new("f", json!({})).arguments, "{}");
    }

    #[test]
    fn expectations_match_raw_text_or_decoded_strings() {
        let request = json!({"messages": [{"content": "say \"please\"\nnow"}]});
        let raw = request.to_string();
        assert!(mentions(&raw, &request, "say \"please\"\nnow"));
        assert!(mentions(&raw, &request, "\"messages\""));
        assert!(!mentions(&raw, &request, "thanks"));
    }

    #[test]
    fn responses_calls_to_custom_tools_send_free_text_input() {
        let turn = Turn::raw_call("apply_patch", "*** Begin Patch").and_call("exec_command", json!({"cmd": "ls"}));
        let tools =
            [json!({"type": "custom", "name": "apply_patch"}), json!({"type": "function", "name": "exec_command"})];
        let request = json!({"tools": [tools[0], tools[1], {"type": "web_search"}]});
        let custom = custom_tools(request.as_object().unwrap());
        assert_eq!(custom, ["apply_patch"]);
        let items = responses_items(&turn, 0, &custom);
        assert_eq!(items[0]["type"], "custom_tool_call");
        assert_eq!(items[0]["input"], "*** Begin Patch");
        assert_eq!(items[1]["type"], "function_call");
        assert_eq!(items[1]["arguments"], r#"{"cmd":"ls"}"#);
        assert_eq!(responses_items(&turn, 0, &[])[0]["type"], "function_call", "undeclared: a function call");
    }

    #[test]
    fn responses_stream_sends_items_in_pieces_and_completes_with_usage() {
        let turn = Turn::text("hello there").and_call("shell", json!({"command": ["ls"]})).with_usage(30, 4);
        let events = responses_events(&turn, 2, "m", &[]);
        let data: Vec<Value> =
            events.iter().map(|e| serde_json::from_str(e.split_once("data: ").unwrap().1.trim()).unwrap()).collect();
        let kinds: Vec<&str> = data.iter().map(|d| d["type"].as_str().unwrap()).collect();
        assert_eq!(kinds[..2], ["response.created", "response.in_progress"]);
        assert_eq!(kinds.last(), Some(&"response.completed"));
        let text: String = data
            .iter()
            .filter(|d| d["type"] == "response.output_text.delta")
            .map(|d| d["delta"].as_str().unwrap())
            .collect();
        assert_eq!(text, "hello there");
        let args: String = data
            .iter()
            .filter(|d| d["type"] == "response.function_call_arguments.delta")
            .map(|d| d["delta"].as_str().unwrap())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({"command": ["ls"]}));
        let done = &data[data.len() - 1]["response"];
        assert_eq!(done["usage"]["input_tokens"], 30);
        assert_eq!(done["output"][1]["type"], "function_call");
        assert_eq!(done["output"][1]["name"], "shell");
        let numbers: Vec<u64> = data.iter().map(|d| d["sequence_number"].as_u64().unwrap()).collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn openai_stream_splits_calls_and_ends_with_usage_and_done() {
        let turn = Turn::call("read", json!({"path": "a.txt"})).and_call("list", json!({}));
        let events = openai_chunks(&turn, 2, "m", true);
        assert_eq!(events.last().unwrap(), "data: [DONE]\n\n");
        let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap().trim()).unwrap())
            .collect();
        let arguments: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0].as_object())
            .filter(|call| call["index"] == 0)
            .map(|call| call["function"]["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(arguments, r#"{"path":"a.txt"}"#);
        assert_eq!(chunks.iter().filter(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"] == "call_2_1").count(), 1);
        assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[chunks.len() - 1]["usage"]["prompt_tokens"], 100);
        assert!(!openai_chunks(&turn, 2, "m", false).iter().any(|e| e.contains("prompt_tokens")));
    }

    #[test]
    fn anthropic_stream_has_one_block_per_part() {
        let turn = Turn::text("ok").with_thinking("think").and_raw_call("f", "{bad");
        let events = anthropic_events(&turn, 0, "m");
        let kinds: Vec<&str> = events.iter().map(|e| e.lines().next().unwrap()).collect();
        assert_eq!(kinds.first(), Some(&"event: message_start"));
        assert_eq!(kinds.last(), Some(&"event: message_stop"));
        assert_eq!(kinds.iter().filter(|k| **k == "event: content_block_start").count(), 3);
        assert!(events.iter().any(|e| e.contains(r#""stop_reason":"tool_use""#)));
        let arguments: String = events
            .iter()
            .filter_map(|e| serde_json::from_str::<serde_json::Value>(e.lines().nth(1)?.strip_prefix("data: ")?).ok())
            .filter_map(|e| e["delta"]["partial_json"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(arguments, "{bad");
    }
}
