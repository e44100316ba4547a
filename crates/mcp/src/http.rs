//! Remote servers over MCP streamable HTTP, reached from this process (the
//! supervisor) and from nowhere else.
//!
//! rmcp's streamable HTTP client speaks the protocol (the session id, the
//! protocol version header, answers as JSON or as an event stream) over
//! [`Remote`], our HTTP client, whose every exchange passes
//! [`Remote::exchange`]. It:
//!
//! - checks the destination: the configured URL's scheme, host and port
//!   only (`https://`, or `http://` to loopback), and follows no redirect;
//! - redacts secrets from the request (every string of the JSON body, and
//!   the headers rmcp derives from it), one [`Redactor`] per server;
//! - records the request before it is sent (a record that cannot be kept:
//!   nothing is sent, and the server is stopped), and the answer once it
//!   ended, as [`Event::McpHttp`];
//! - caps the answer: [`MAX_CALL_BYTES`] during one call and the server's
//!   call timeout for each exchange; past either the server is stopped.
//!
//! The server's credential is its `env`: `AUTHORIZATION` and
//! `HEADER_<NAME>` become request headers, added last, never recorded. The
//! GET stream for messages the server starts on its own is not opened (the
//! server is told the client does not support it): requests, notifications
//! and answers all travel on POSTs.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use airlock_audit::event::{Event, RedactionNote};
use airlock_redact::{Redactor, Scanner};
use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url};
use rmcp::model::{ClientConfig, ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::{RoleClient, RunningService, serve_client};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::NeverRetry;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sse_stream::{Sse, SseStream};
use tokio::sync::watch;

use crate::{MAX_CALL_BYTES, McpError, Record};

const SESSION_ID: &str = "mcp-session-id";
/// Headers rmcp sets that carry nothing of the request's content (not redacted).
const PROTOCOL_HEADERS: [&str; 5] = ["accept", "content-type", SESSION_ID, "mcp-protocol-version", "last-event-id"];
/// Header names a credential may not take (the protocol's own, and HTTP's framing).
const RESERVED: [&str; 11] = [
    "accept",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "te",
    "upgrade",
    SESSION_ID,
    "mcp-protocol-version",
    "last-event-id",
];
/// The most of an error answer's body kept for its message.
const ERROR_TEXT: usize = 500;

/// What an exchange failed on, for rmcp (and, through it, the hub).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(String);

type Failure = StreamableHttpError<HttpError>;

fn failure(text: impl Into<String>) -> Failure {
    StreamableHttpError::Client(HttpError(text.into()))
}

/// What the hub watches one server by.
pub(crate) struct Watch {
    /// Bytes received since the last call began (reset by the hub).
    pub(crate) received: Arc<AtomicU64>,
    /// Says once the server was stopped.
    pub(crate) stopped: watch::Receiver<Option<String>>,
    /// Stops the server, with the reason.
    pub(crate) stop: Arc<dyn Fn(String) + Send + Sync>,
}

/// The HTTP client of one remote server: every exchange checked, redacted,
/// recorded and capped.
#[derive(Clone)]
pub(crate) struct Remote(Arc<Inner>);

struct Inner {
    server: String,
    url: Url,
    /// The URL as recorded: without its query or user information.
    shown: String,
    http: reqwest::Client,
    /// From the server's `env`: added to every request, never recorded.
    credentials: HeaderMap,
    redactor: Mutex<Redactor>,
    record: Record,
    watch: Watch,
    timeout: Duration,
}

/// The URL a remote server may be reached at: `https://`, or `http://` to
/// loopback (`127.0.0.1`, `localhost`, `::1`), without user information.
pub(crate) fn check_url(server: &str, url: &str) -> Result<Url, McpError> {
    let refused = |why: &str| McpError::Start {
        server: server.into(),
        reason: format!("its url {:?} cannot be used: {why}", airlock_redact::terminal::one_line(url)),
    };
    let parsed = Url::parse(url).map_err(|e| refused(&format!("it is not a URL ({e})")))?;
    let loopback = match parsed.host_str() {
        Some(host) => ["localhost", "127.0.0.1", "[::1]"].contains(&host.to_ascii_lowercase().as_str()),
        None => return Err(refused("it names no host")),
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(refused("http:// is for loopback only (127.0.0.1, localhost, ::1); hint: use https://")),
        other => return Err(refused(&format!("the scheme {other:?} is not http(s)"))),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused("it holds user information; hint: give the credential as env AUTHORIZATION"));
    }
    Ok(parsed)
}

/// The URL as the record shows it: scheme, host, port and path.
fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Whether `uri` is at the same scheme, host and port as `url`.
fn same_origin(url: &Url, uri: &str) -> bool {
    Url::parse(uri).is_ok_and(|u| {
        u.scheme() == url.scheme() && u.host() == url.host() && u.port_or_known_default() == url.port_or_known_default()
    })
}

/// A remote server's `env` as request headers: `AUTHORIZATION` is
/// `Authorization`, `HEADER_X_API_KEY` is `x-api-key`; any other name is an
/// error (it would mean nothing to a remote server).
pub(crate) fn credential_headers(server: &str, env: &BTreeMap<String, String>) -> Result<HeaderMap, McpError> {
    let refused =
        |key: &str, why: String| McpError::Start { server: server.into(), reason: format!("its env {key}: {why}") };
    let mut headers = HeaderMap::new();
    for (key, value) in env {
        let name = if key == "AUTHORIZATION" {
            "authorization".to_string()
        } else if let Some(rest) = key.strip_prefix("HEADER_").filter(|r| !r.is_empty()) {
            rest.to_ascii_lowercase().replace('_', "-")
        } else {
            return Err(refused(
                key,
                "a remote server gets no environment; hint: AUTHORIZATION and HEADER_<NAME> become request headers"
                    .into(),
            ));
        };
        if RESERVED.contains(&name.as_str()) || name.starts_with("mcp-") {
            return Err(refused(key, format!("the header {name} is the protocol's own")));
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| refused(key, format!("{name:?} is not a header name")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| refused(key, "its value cannot be a header value (control characters?)".into()))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// One note per secret replaced in `field`.
fn note(notes: &mut Vec<RedactionNote>, field: &str, report: Vec<airlock_redact::Redaction>) {
    notes.extend(report.into_iter().map(|r| RedactionNote {
        rule: r.rule_id,
        field: field.to_string(),
        placeholder: r.placeholder,
        secret_sha256: r.secret_sha256,
    }));
}

/// Redacts every string and key of `value` (at the JSON pointer `at`).
fn redact_tree(value: &mut Value, at: &str, redactor: &mut Redactor, notes: &mut Vec<RedactionNote>) {
    match value {
        Value::String(text) => {
            let redacted = redactor.redact(text);
            if !redacted.report.is_empty() {
                note(notes, at, redacted.report);
                *text = redacted.text;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                redact_tree(item, &format!("{at}/{i}"), redactor, notes);
            }
        }
        Value::Object(map) => {
            for (key, mut item) in std::mem::take(map) {
                let redacted = redactor.redact(&key);
                let key = if redacted.report.is_empty() {
                    key
                } else {
                    note(notes, &format!("{at}/{}", escape(&redacted.text)), redacted.report);
                    redacted.text
                };
                redact_tree(&mut item, &format!("{at}/{}", escape(&key)), redactor, notes);
                map.insert(key, item);
            }
        }
        _ => {}
    }
}

/// A key as a JSON pointer step (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Remote {
    /// The client of the remote server `spec` at `url` (checked); `record`
    /// keeps each exchange (a remote server without one is refused).
    pub(crate) fn new(
        spec: &crate::ServerSpec,
        url: &str,
        record: Option<Record>,
        watch: Watch,
    ) -> Result<Remote, McpError> {
        let server = spec.name.clone();
        let url = check_url(&server, url)?;
        let Some(record) = record else {
            return Err(McpError::Start {
                server,
                reason: "a remote server needs the session's record (each exchange is recorded before it is sent)"
                    .into(),
            });
        };
        if !(spec.read.is_empty() && spec.write.is_empty() && spec.hosts.is_empty()) {
            return Err(McpError::NotSupported {
                server,
                what: "read, write or hosts for a remote (url) server".into(),
                hint: "remove them: a remote server runs elsewhere and is reached at its url alone".into(),
            });
        }
        let credentials = credential_headers(&server, &spec.env)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(spec.call_timeout.min(Duration::from_secs(30)))
            .build()
            .map_err(|e| McpError::Start { server: server.clone(), reason: format!("its HTTP client: {e}") })?;
        Ok(Remote(Arc::new(Inner {
            shown: shown(&url),
            server,
            url,
            http,
            credentials,
            redactor: Mutex::new(Redactor::new(Arc::new(Scanner::builtin()))),
            record,
            watch,
            timeout: spec.call_timeout,
        })))
    }

    /// Connects rmcp's streamable HTTP client through this one, and initializes.
    pub(crate) async fn connect(
        self,
        config: ClientConfig,
    ) -> Result<RunningService<RoleClient, ClientConfig>, String> {
        let mut transport = StreamableHttpClientTransportConfig::with_uri(self.0.url.as_str())
            .max_json_response_size(usize::try_from(MAX_CALL_BYTES).unwrap_or(usize::MAX))
            .reinit_on_expired_session(false);
        transport.retry_config = Arc::new(NeverRetry::default());
        serve_client(config, StreamableHttpClientTransport::with_client(self, transport))
            .await
            .map_err(|e| e.to_string())
    }

    /// The one way out: checks, redacts and records the request, sends it,
    /// and hands back the answer with what records it when it ends.
    async fn exchange(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        mut headers: HeaderMap,
    ) -> Result<Answer, Failure> {
        let inner = &self.0;
        if let Some(reason) = inner.watch.stopped.borrow().clone() {
            return Err(failure(format!("the server was stopped: {reason}")));
        }
        if !same_origin(&inner.url, uri) {
            return Err(failure(format!(
                "a request to {} was refused: only {} may be reached",
                airlock_redact::terminal::one_line(uri),
                inner.shown
            )));
        }
        let rpc = body.as_ref().and_then(|b| b.get("method")).and_then(Value::as_str).unwrap_or_default().to_string();
        let mut notes = Vec::new();
        let bytes = {
            let mut redactor = inner.redactor.lock().unwrap_or_else(PoisonError::into_inner);
            for (name, value) in headers.iter_mut() {
                if PROTOCOL_HEADERS.contains(&name.as_str()) {
                    continue;
                }
                let Ok(text) = value.to_str() else { continue };
                let redacted = redactor.redact(text);
                if !redacted.report.is_empty() {
                    note(&mut notes, &format!("header:{name}"), redacted.report);
                    *value = HeaderValue::from_str(&redacted.text).unwrap_or_else(|_| HeaderValue::from_static(""));
                }
            }
            match body {
                Some(mut body) => {
                    redact_tree(&mut body, "", &mut redactor, &mut notes);
                    serde_json::to_vec(&body)?
                }
                None => Vec::new(),
            }
        };
        let request = Event::McpHttp {
            server: inner.server.clone(),
            url: inner.shown.clone(),
            direction: "request".into(),
            method: method.to_string(),
            rpc: rpc.clone(),
            bytes: bytes.len() as u64,
            sha256: sha256(&bytes),
            status: 0,
            redactions: notes,
            duration_ms: 0,
            outcome: String::new(),
        };
        if let Err(e) = (inner.record)(request) {
            let reason = format!("its request could not be recorded ({e}); nothing was sent");
            (inner.watch.stop)(reason.clone());
            return Err(failure(reason));
        }
        let mut tally = Tally::new(self.clone(), method.clone(), rpc);
        let deadline = tokio::time::Instant::now() + inner.timeout;
        headers.extend(inner.credentials.clone());
        let mut builder = inner.http.request(method, inner.url.clone()).headers(headers);
        if !bytes.is_empty() {
            builder = builder.body(bytes);
        }
        let response = match self.bounded(deadline, builder.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                let why = format!("no answer: {}", without_url(e));
                let _ = tally.finish(&why);
                return Err(failure(why));
            }
            Err(why) => {
                let _ = tally.finish(&why);
                return Err(failure(why));
            }
        };
        tally.status = response.status();
        if response.status().is_redirection() {
            let to = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("");
            let elsewhere = inner.url.join(to).map_or(true, |u| !same_origin(&inner.url, u.as_str()));
            let why = format!(
                "it answered HTTP {} redirecting to {}{}: refused (airlock follows no redirect)",
                response.status().as_u16(),
                airlock_redact::terminal::one_line(&to.chars().take(200).collect::<String>()),
                if elsewhere { ", another host" } else { "" },
            );
            let _ = tally.finish(&why);
            return Err(failure(format!("{why}; hint: configure the URL it redirects to, if that is the server")));
        }
        Ok(Answer { remote: self.clone(), response, tally, deadline })
    }

    /// Runs `work` until `deadline` or until the server is stopped; past the
    /// deadline the server is stopped.
    async fn bounded<T>(&self, deadline: tokio::time::Instant, work: impl Future<Output = T>) -> Result<T, String> {
        let mut stopped = self.0.watch.stopped.clone();
        tokio::select! {
            out = work => Ok(out),
            () = tokio::time::sleep_until(deadline) => {
                let why = format!("it did not answer within {} s; stopped", self.0.timeout.as_secs_f64());
                (self.0.watch.stop)(why.clone());
                Err(why)
            }
            _ = stopped.wait_for(Option::is_some) => Err("the server was stopped".into()),
        }
    }

    async fn post(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        extra: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let awaits_no_answer = !matches!(message, ClientJsonRpcMessage::Request(_));
        let body = serde_json::to_value(&message)?;
        let mut headers = HeaderMap::new();
        headers.extend(extra);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(id) = &session_id {
            headers.insert(
                SESSION_ID,
                HeaderValue::from_str(id).map_err(|_| failure("its session id is not a header value"))?,
            );
        }
        let answer = self.exchange(Method::POST, &uri, Some(body), headers).await?;
        let status = answer.response.status();
        let session = answer.response.headers().get(SESSION_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = answer
            .response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let media = content_type.split(';').next().unwrap_or("").trim().to_string();
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            answer.read_all().await?;
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == StatusCode::NOT_FOUND && session_id.is_some() {
            answer.read_all().await?;
            return Err(StreamableHttpError::SessionExpired);
        }
        if !status.is_success() {
            let body = answer.read_all().await?;
            // A JSON-RPC error in a failed answer is the server's own answer.
            if let Ok(message @ ServerJsonRpcMessage::Error(_)) = serde_json::from_slice::<ServerJsonRpcMessage>(&body)
            {
                return Ok(StreamableHttpPostResponse::Json(message, session));
            }
            let text = String::from_utf8_lossy(&body[..body.len().min(ERROR_TEXT)]).into_owned();
            return Err(StreamableHttpError::UnexpectedServerResponse(
                format!("HTTP {}: {}", status.as_u16(), airlock_redact::terminal::one_line(&text)).into(),
            ));
        }
        match media.as_str() {
            "text/event-stream" => Ok(StreamableHttpPostResponse::Sse(answer.into_events(), session)),
            "application/json" => {
                let body = answer.read_all().await?;
                match serde_json::from_slice::<ServerJsonRpcMessage>(&body) {
                    Ok(message) => Ok(StreamableHttpPostResponse::Json(message, session)),
                    Err(_) if awaits_no_answer => Ok(StreamableHttpPostResponse::Accepted),
                    Err(e) => Err(StreamableHttpError::Deserialize(e)),
                }
            }
            _ => {
                let body = answer.read_all().await?;
                if body.is_empty() && awaits_no_answer {
                    return Ok(StreamableHttpPostResponse::Accepted);
                }
                Err(StreamableHttpError::UnexpectedContentType(Some(airlock_redact::terminal::one_line(&content_type))))
            }
        }
    }
}

/// A reqwest error with its causes, without its URL (whose query could hold a credential).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    airlock_redact::terminal::one_line(&text)
}

/// The answer being received, and its record once it ends.
struct Tally {
    remote: Remote,
    method: Method,
    rpc: String,
    began: Instant,
    status: StatusCode,
    bytes: u64,
    hash: Sha256,
    done: bool,
}

impl Tally {
    fn new(remote: Remote, method: Method, rpc: String) -> Tally {
        Tally {
            remote,
            method,
            rpc,
            began: Instant::now(),
            status: StatusCode::from_u16(599).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            bytes: 0,
            hash: Sha256::new(),
            done: false,
        }
    }

    /// Counts bytes received: past [`MAX_CALL_BYTES`] during one call the server is stopped.
    fn take(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.bytes += chunk.len() as u64;
        self.hash.update(chunk);
        let watch = &self.remote.0.watch;
        let total = watch.received.fetch_add(chunk.len() as u64, Ordering::SeqCst) + chunk.len() as u64;
        if total > MAX_CALL_BYTES {
            let why = format!("it sent more than {} MiB during one call; stopped", MAX_CALL_BYTES >> 20);
            (watch.stop)(why.clone());
            return Err(why);
        }
        Ok(())
    }

    /// Records the answer (once); a record that cannot be kept stops the server.
    fn finish(&mut self, outcome: &str) -> Result<(), String> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        let inner = &self.remote.0;
        let hash = std::mem::take(&mut self.hash);
        let event = Event::McpHttp {
            server: inner.server.clone(),
            url: inner.shown.clone(),
            direction: "response".into(),
            method: self.method.to_string(),
            rpc: std::mem::take(&mut self.rpc),
            bytes: self.bytes,
            sha256: hex::encode(hash.finalize()),
            status: if self.status.as_u16() == 599 { 0 } else { u64::from(self.status.as_u16()) },
            redactions: Vec::new(),
            duration_ms: self.began.elapsed().as_millis() as u64,
            outcome: outcome.to_string(),
        };
        (inner.record)(event).map_err(|e| {
            let why = format!("its answer could not be recorded ({e})");
            (inner.watch.stop)(why.clone());
            why
        })
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let _ = self.finish("left unread");
    }
}

struct Answer {
    remote: Remote,
    response: reqwest::Response,
    tally: Tally,
    deadline: tokio::time::Instant,
}

impl Answer {
    /// The whole body, within the caps, recorded.
    async fn read_all(mut self) -> Result<Vec<u8>, Failure> {
        let mut body = Vec::new();
        loop {
            let chunk = match self.remote.bounded(self.deadline, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    let why = format!("its answer broke off: {}", without_url(e));
                    let _ = self.tally.finish(&why);
                    return Err(failure(why));
                }
                Err(why) => {
                    let _ = self.tally.finish(&why);
                    return Err(failure(why));
                }
            };
            if let Err(why) = self.tally.take(&chunk) {
                let _ = self.tally.finish(&why);
                return Err(failure(why));
            }
            body.extend_from_slice(&chunk);
        }
        self.tally.finish("complete").map_err(failure)?;
        Ok(body)
    }

    /// The body as server-sent events, within the caps, recorded when it ends.
    fn into_events(self) -> BoxStream<'static, Result<Sse, SseError>> {
        let mut stopped = self.remote.0.watch.stopped.clone();
        let counted = Counted {
            inner: self.response.bytes_stream().boxed(),
            tally: Some(self.tally),
            deadline: Box::pin(tokio::time::sleep_until(self.deadline)),
            stopped: Box::pin(async move {
                let _ = stopped.wait_for(Option::is_some).await;
            }),
        };
        SseStream::from_bytes_stream(counted).boxed()
    }
}

/// An event stream's bytes, counted, capped and recorded when it ends.
struct Counted {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    tally: Option<Tally>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Counted {
    fn end(&mut self, why: String) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        if let Some(mut tally) = self.tally.take() {
            let _ = tally.finish(&why);
        }
        Poll::Ready(Some(Err(std::io::Error::other(why))))
    }
}

impl Stream for Counted {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(tally) = this.tally.as_mut() else { return Poll::Ready(None) };
        if this.stopped.as_mut().poll(cx).is_ready() {
            return this.end("the server was stopped".into());
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            let remote = &tally.remote.0;
            let why = format!("its answer did not end within {} s; stopped", remote.timeout.as_secs_f64());
            (remote.watch.stop)(why.clone());
            return this.end(why);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => match tally.take(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(why) => this.end(why),
            },
            Poll::Ready(Some(Err(e))) => this.end(format!("its answer broke off: {}", without_url(e))),
            Poll::Ready(None) => {
                let mut tally = this.tally.take();
                match tally.as_mut().map(|t| t.finish("complete")) {
                    Some(Err(why)) => Poll::Ready(Some(Err(std::io::Error::other(why)))),
                    _ => Poll::Ready(None),
                }
            }
        }
    }
}

impl StreamableHttpClient for Remote {
    type Error = HttpError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        self.post(uri, message, session_id, custom_headers).await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        _limits: rmcp::transport::streamable_http_client::StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        // Our own caps apply instead (MAX_CALL_BYTES, the call timeout).
        self.post(uri, message, session_id, custom_headers).await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        let mut headers = HeaderMap::new();
        headers.extend(custom_headers);
        headers.insert(SESSION_ID, HeaderValue::from_str(&session_id).map_err(|_| failure("bad session id"))?);
        let answer = self.exchange(Method::DELETE, &uri, None, headers).await?;
        let status = answer.response.status();
        answer.read_all().await?;
        match status {
            s if s.is_success() || s == StatusCode::METHOD_NOT_ALLOWED => Ok(()),
            s => Err(failure(format!("ending the session: HTTP {}", s.as_u16()))),
        }
    }

    async fn get_stream(
        &self,
        _uri: Arc<str>,
        _session_id: Option<Arc<str>>,
        _last_event_id: Option<String>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Failure> {
        // Not opened: what a server starts on its own is not taken (nothing is sent either).
        Err(StreamableHttpError::ServerDoesNotSupportSse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_for_loopback_only_and_urls_hold_no_credentials() {
        for ok in
            ["https://mcp.example.com/mcp", "http://127.0.0.1:8000/mcp", "http://localhost/mcp", "http://[::1]:9/x"]
        {
            assert!(check_url("s", ok).is_ok(), "{ok}");
        }
        let refused = |url: &str| check_url("s", url).unwrap_err().to_string();
        assert!(refused("http://mcp.example.com/mcp").contains("loopback only"));
        assert!(refused("http://127.0.0.2/mcp").contains("loopback only"));
        assert!(refused("ftp://example.com/").contains("not http(s)"));
        assert!(refused("https://user:pw@example.com/").contains("user information"));
        assert!(refused("not a url").contains("not a URL"));
    }

    #[test]
    fn only_the_configured_origin_is_the_same() {
        let url = Url::parse("https://mcp.example.com/mcp").unwrap();
        assert!(same_origin(&url, "https://mcp.example.com:443/other"));
        assert!(!same_origin(&url, "https://evil.example.com/mcp"));
        assert!(!same_origin(&url, "http://mcp.example.com/mcp"));
        assert!(!same_origin(&url, "https://mcp.example.com:8443/mcp"));
        assert_eq!(shown(&Url::parse("https://h.example/mcp?key=SECRET#x").unwrap()), "https://h.example/mcp");
    }

    #[test]
    fn env_of_a_remote_server_becomes_headers_and_nothing_else() {
        let env = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let headers =
            credential_headers("s", &env(&[("AUTHORIZATION", "Bearer abc"), ("HEADER_X_API_KEY", "k1")])).unwrap();
        assert_eq!(headers["authorization"], "Bearer abc");
        assert_eq!(headers["x-api-key"], "k1");
        assert!(headers["authorization"].is_sensitive());
        let refused = |pairs: &[(&str, &str)]| credential_headers("s", &env(pairs)).unwrap_err().to_string();
        assert!(refused(&[("TOKEN", "x")]).contains("HEADER_<NAME>"));
        assert!(refused(&[("HEADER_MCP_SESSION_ID", "x")]).contains("protocol's own"));
        assert!(refused(&[("HEADER_HOST", "x")]).contains("protocol's own"));
        let bad = refused(&[("AUTHORIZATION", "a\nb SECRETVALUE")]);
        assert!(bad.contains("cannot be a header value") && !bad.contains("SECRETVALUE"), "{bad}");
    }

    #[test]
    fn every_string_and_key_of_a_body_is_redacted_and_noted() {
        let token = "AKIA2MCPFIXTURE7ZQ4W";
        let mut body = serde_json::json!({"method": "tools/call", "params": {"arguments": {"text": format!("use {token}"), token: 1}}});
        let mut redactor = Redactor::new(Arc::new(Scanner::builtin()));
        let mut notes = Vec::new();
        redact_tree(&mut body, "", &mut redactor, &mut notes);
        let text = body.to_string();
        assert!(!text.contains(token), "{text}");
        assert_eq!(body["method"], "tools/call");
        let fields: Vec<&str> = notes.iter().map(|n| n.field.as_str()).collect();
        assert!(fields.contains(&"/params/arguments/text"), "{fields:?}");
        assert_eq!(notes.len(), 2, "{fields:?}");
    }
}
