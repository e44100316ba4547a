//! The HTTP side: authenticate, check policy, redact, record, forward, and
//! stream the answer back, recording it too.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use airlock_audit::event::Event;
use airlock_audit::writer::AuditHandle;
use airlock_redact::{Redactor, Scanner};
use axum::body::Body;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use crate::body::scrub;
use crate::config::{ApiStyle, GatewayConfig, Upstream};

/// Who may call.
#[derive(Debug)]
pub enum Auth {
    /// Team mode: a presented key's SHA-256 → its name and what it may use.
    Keys(HashMap<String, crate::keys::KeyPolicy>),
    /// Team mode with the key file read again whenever it changes, so a
    /// revoked key stops working at once.
    KeyFile(KeyFile),
    /// Local mode: only Unix-socket peers with this uid.
    Peer {
        /// The uid allowed.
        uid: u32,
    },
    /// One agent session's broker: only Unix-socket peers with this uid, and
    /// every record under the session's id (not `gateway:uid:N`).
    Session {
        /// The uid allowed.
        uid: u32,
        /// The session the records belong to.
        session: String,
        /// A key the caller must also present (`x-api-key` or a bearer
        /// token): the placeholder a wrapped agent holds instead of the real
        /// credential, which only this broker has.
        key: Option<String>,
    },
}

/// A key file and what it held when last read.
#[derive(Debug)]
pub struct KeyFile {
    path: std::path::PathBuf,
    cached: Mutex<(Option<std::time::SystemTime>, u64, HashMap<String, crate::keys::KeyPolicy>)>,
}

impl KeyFile {
    /// Reads `path` now (it must hold at least one live key) and watches it.
    pub fn open(path: &std::path::Path) -> Result<KeyFile, crate::keys::KeyError> {
        let file = KeyFile { path: path.to_path_buf(), cached: Mutex::new((None, 0, HashMap::new())) };
        file.current()?;
        Ok(file)
    }

    /// The live keys, read again if the file changed (by mtime and size).
    fn current(&self) -> Result<HashMap<String, crate::keys::KeyPolicy>, crate::keys::KeyError> {
        let meta = std::fs::metadata(&self.path)
            .map_err(|source| crate::keys::KeyError::Io { path: self.path.clone(), source })?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut cached = match self.cached.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cached.0.is_none() || (cached.0, cached.1) != stamp {
            let live = crate::keys::KeyStore::open(&self.path)?.live();
            *cached = (stamp.0, stamp.1, live);
        }
        Ok(cached.2.clone())
    }
}

/// The caller, as the connection tells it.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    uid: Option<u32>,
}

impl Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(_: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer { uid: None }
    }
}

impl Connected<axum::serve::IncomingStream<'_, tokio::net::UnixListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Peer {
        Peer { uid: stream.io().peer_cred().ok().map(|c| c.uid()) }
    }
}

/// Everything a request needs.
pub struct Gateway {
    config: GatewayConfig,
    client: reqwest::Client,
    auth: Auth,
    audit: AuditHandle,
    scanner: Arc<Scanner>,
    /// One redactor per caller, so a secret keeps its placeholder across a session's requests.
    redactors: Mutex<HashMap<String, Redactor>>,
}

/// The routes the gateway serves, and the API each belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Responses,
    Embeddings,
    Messages,
    CountTokens,
}

impl Route {
    fn from_path(path: &str) -> Option<Route> {
        Some(match path {
            "/v1/chat/completions" => Route::Chat,
            "/v1/responses" => Route::Responses,
            "/v1/embeddings" => Route::Embeddings,
            "/v1/messages" => Route::Messages,
            "/v1/messages/count_tokens" => Route::CountTokens,
            _ => return None,
        })
    }

    fn api(self) -> ApiStyle {
        match self {
            Route::Chat | Route::Responses | Route::Embeddings => ApiStyle::Openai,
            Route::Messages | Route::CountTokens => ApiStyle::Anthropic,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Chat => "openai.chat",
            Route::Responses => "openai.responses",
            Route::Embeddings => "openai.embeddings",
            Route::Messages => "anthropic.messages",
            Route::CountTokens => "anthropic.count_tokens",
        }
    }
}

/// The key a request presents: a bearer token or `x-api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// The key a request presents, looked up by its digest.
fn key_of(
    keys: &HashMap<String, crate::keys::KeyPolicy>,
    headers: &HeaderMap,
) -> Result<crate::keys::KeyPolicy, &'static str> {
    let presented = presented_key(headers).ok_or("no API key: send Authorization: Bearer <key> or x-api-key: <key>")?;
    keys.get(&crate::keys::digest(presented)).cloned().ok_or("the API key is not valid")
}

/// An error in the wire format of the API the client speaks.
fn error(api: ApiStyle, status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = match api {
        ApiStyle::Openai => serde_json::json!({"error": {"message": message, "type": kind, "code": status.as_u16()}}),
        ApiStyle::Anthropic => serde_json::json!({"type": "error", "error": {"type": kind, "message": message}}),
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

impl Gateway {
    /// A gateway over `config`, recording to `audit`.
    pub fn new(
        config: GatewayConfig,
        auth: Auth,
        audit: AuditHandle,
        scanner: Arc<Scanner>,
    ) -> Result<Arc<Gateway>, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.upstream_timeout)
            // Upstreams are named in the config: never follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Arc::new(Gateway { config, client, auth, audit, scanner, redactors: Mutex::new(HashMap::new()) }))
    }

    /// The axum router.
    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new().fallback(handle).with_state(self)
    }

    fn principal(&self, peer: Peer, headers: &HeaderMap) -> Result<crate::keys::KeyPolicy, &'static str> {
        match &self.auth {
            Auth::Session { key: Some(key), .. } if presented_key(headers) != Some(key.as_str()) => {
                Err("this broker serves only its session: present the session's key (the placeholder it was given)")
            }
            Auth::Peer { uid } | Auth::Session { uid, .. } => match peer.uid {
                Some(u) if u == *uid => Ok(crate::keys::KeyPolicy { name: format!("uid:{u}"), models: Vec::new() }),
                Some(_) => Err("this broker serves only its own user"),
                None => Err("the local broker only accepts Unix-socket peers"),
            },
            Auth::Keys(keys) => key_of(keys, headers),
            Auth::KeyFile(file) => match file.current() {
                Ok(keys) => key_of(&keys, headers),
                Err(e) => {
                    // Fail closed: no key is honoured while the file cannot be read.
                    tracing::error!("cannot read the key file: {e}");
                    Err("the gateway cannot read its key file")
                }
            },
        }
    }

    /// The audit session a caller's records go under.
    fn session_of(&self, principal: &str) -> String {
        match &self.auth {
            Auth::Session { session, .. } => session.clone(),
            _ => format!("gateway:{principal}"),
        }
    }

    /// Appends events on a blocking thread (the writer acknowledges after fsync).
    async fn record(&self, principal: &str, event: Event) -> Result<u64, String> {
        let audit = self.audit.clone();
        let session = self.session_of(principal);
        tokio::task::spawn_blocking(move || audit.append(&session, vec![event]))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

async fn handle(State(gw): State<Arc<Gateway>>, ConnectInfo(peer): ConnectInfo<Peer>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    // Health checks and clients' connectivity probes (Claude Code sends `HEAD /`) need no key.
    if (path == "/healthz" || path == "/") && matches!(parts.method, Method::GET | Method::HEAD) {
        return (StatusCode::OK, "ok\n").into_response();
    }
    let api = if path.starts_with("/v1/messages") { ApiStyle::Anthropic } else { ApiStyle::Openai };
    let caller = match gw.principal(peer, &parts.headers) {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(path, "refused: {why}");
            // A session's broker has one caller: anything else knocking on
            // it is that session's business, and goes on its record.
            if let Auth::Session { .. } = &gw.auth {
                let event = Event::BlockedEgress {
                    destination: format!("broker:{} {}", parts.method, shown_path(&path)),
                    reason: why.into(),
                    bytes: body_size(body, gw.config.max_request_bytes).await,
                };
                if let Err(e) = gw.record("unauthenticated", event).await {
                    return audit_down(api, &e);
                }
            }
            return error(api, StatusCode::UNAUTHORIZED, "authentication_error", why);
        }
    };
    if path == "/v1/models" && parts.method == Method::GET {
        return models(&gw);
    }
    let Some(route) = Route::from_path(&path) else {
        // Nothing is forwarded, but an agent's other traffic through its base
        // URL (telemetry, update checks) goes on the record, with its size.
        let event = Event::BlockedEgress {
            destination: format!("broker:{} {}", parts.method, shown_path(&path)),
            reason: "not a model API route: nothing was forwarded".into(),
            bytes: body_size(body, gw.config.max_request_bytes).await,
        };
        if let Err(e) = gw.record(&caller.name, event).await {
            return audit_down(api, &e);
        }
        return error(api, StatusCode::NOT_FOUND, "not_found_error", format!("the gateway does not serve {path}"));
    };
    if parts.method != Method::POST {
        return error(api, StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error", format!("{path} takes POST"));
    }
    let body = match http_body_util::Limited::new(body, gw.config.max_request_bytes).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_big = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
            return if too_big {
                error(
                    api,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    format!("the request is larger than the gateway's limit of {} bytes", gw.config.max_request_bytes),
                )
            } else {
                error(api, StatusCode::BAD_REQUEST, "invalid_request_error", format!("reading the request: {e}"))
            };
        }
    };
    let response = forward(&gw, &caller, route, &parts.headers, parts.uri.query(), &body, started).await;
    tracing::info!(
        principal = caller.name,
        route = route.name(),
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// A request path as recorded: at most 200 characters, control characters
/// replaced (the query is never kept: it can carry secrets).
fn shown_path(path: &str) -> String {
    path.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The size of a refused request's body (read and dropped; capped at the limit).
async fn body_size(body: Body, limit: usize) -> u64 {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes().len() as u64,
        Err(_) => limit as u64,
    }
}

fn models(gw: &Gateway) -> Response {
    let data: Vec<serde_json::Value> = gw
        .config
        .upstreams
        .iter()
        .flat_map(|u| u.models.iter().filter(|m| !m.contains('*')).map(move |m| (m, u)))
        .map(|(m, u)| serde_json::json!({"id": m, "object": "model", "created": 0, "owned_by": u.name}))
        .collect();
    let body = serde_json::json!({"object": "list", "data": data});
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn forward(
    gw: &Arc<Gateway>,
    caller: &crate::keys::KeyPolicy,
    route: Route,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
    started: Instant,
) -> Response {
    let api = route.api();
    let principal = caller.name.as_str();
    let scrubbed = {
        let mut redactors = match gw.redactors.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let redactor = redactors.entry(principal.to_string()).or_insert_with(|| Redactor::new(Arc::clone(&gw.scanner)));
        scrub(body, redactor)
    };
    let scrubbed = match scrubbed {
        Ok(s) => s,
        Err(e) => {
            return error(api, StatusCode::BAD_REQUEST, "invalid_request_error", e.to_string());
        }
    };
    if !caller.allows(&scrubbed.model) {
        let reason = format!("the key of {principal} may not use model {:?}", scrubbed.model);
        let event = Event::BlockedEgress {
            destination: format!("model:{}", scrubbed.model),
            reason: reason.clone(),
            bytes: body.len() as u64,
        };
        if let Err(e) = gw.record(principal, event).await {
            return audit_down(api, &e);
        }
        return error(api, StatusCode::FORBIDDEN, "permission_error", reason);
    }
    let Some(upstream) = gw.config.route(&scrubbed.model) else {
        let reason = format!("no upstream serves model {:?}: policy allows only the configured models", scrubbed.model);
        let event = Event::BlockedEgress {
            destination: format!("model:{}", scrubbed.model),
            reason: reason.clone(),
            bytes: body.len() as u64,
        };
        if let Err(e) = gw.record(principal, event).await {
            return audit_down(api, &e);
        }
        return error(api, StatusCode::FORBIDDEN, "permission_error", reason);
    };
    if upstream.api != api {
        return error(
            api,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!(
                "model {:?} is served by an {:?}-style upstream, not through {}",
                scrubbed.model,
                upstream.api,
                route.name()
            ),
        );
    }
    let destination = format!("{} {}", upstream.name, upstream.base_url);
    let request_event = Event::ModelRequest {
        principal: principal.to_string(),
        route: route.name().into(),
        model: scrubbed.model.clone(),
        destination: destination.clone(),
        bytes: scrubbed.body.len() as u64,
        content_digest: hex::encode(Sha256::digest(&scrubbed.body)),
        redactions: scrubbed.notes,
    };
    // On the record before it leaves; if it cannot be recorded, it does not leave.
    if let Err(e) = gw.record(principal, request_event).await {
        return audit_down(api, &e);
    }

    let path = match route {
        Route::Chat => "/v1/chat/completions",
        Route::Responses => "/v1/responses",
        Route::Embeddings => "/v1/embeddings",
        Route::Messages => "/v1/messages",
        Route::CountTokens => "/v1/messages/count_tokens",
    };
    let mut url = format!("{}{path}", upstream.base_url);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    let mut out = gw.client.post(&url).header(header::CONTENT_TYPE, "application/json").body(scrubbed.body);
    for name in ["anthropic-version", "anthropic-beta", "accept", "openai-beta"] {
        for value in headers.get_all(name) {
            out = out.header(name, value.clone());
        }
    }
    out = credentials(out, upstream);
    let mut tap = Tap::new(Arc::clone(gw), principal.to_string(), destination.clone(), started);
    let upstream_response = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            let (status, what) = if e.is_timeout() {
                (StatusCode::GATEWAY_TIMEOUT, format!("upstream {} did not answer in time", upstream.name))
            } else {
                (StatusCode::BAD_GATEWAY, format!("upstream {} failed: {}", upstream.name, error_chain(&e)))
            };
            tap.finish(0, &what);
            return error(api, status, "api_error", what);
        }
    };
    let status = upstream_response.status();
    let content_type = upstream_response.headers().get(header::CONTENT_TYPE).cloned();
    let is_stream =
        content_type.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/event-stream"));
    let mut builder = Response::builder().status(status.as_u16());
    for (name, value) in upstream_response.headers() {
        if passes_back(name.as_str()) {
            builder = builder.header(name, value);
        }
    }
    if is_stream {
        // Chunk by chunk: nothing is held back but what a chunk already is.
        let stream =
            TapStream { inner: Box::pin(upstream_response.bytes_stream()), tap: Some(tap), status: status.as_u16() };
        return builder.body(Body::from_stream(stream)).unwrap_or_else(|_| internal(api));
    }
    // Not a stream: read it whole (it is one JSON document) and check it is one.
    let bytes = match upstream_response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            let what = if e.is_timeout() {
                format!("upstream {} did not finish its answer in time", upstream.name)
            } else {
                format!("upstream {} broke off its answer: {}", upstream.name, error_chain(&e))
            };
            tap.finish(status.as_u16(), &what);
            return error(api, StatusCode::BAD_GATEWAY, "api_error", what);
        }
    };

    tap.feed(&bytes);
    if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
        let what = format!(
            "upstream {} answered HTTP {} with a body that is not JSON ({} bytes)",
            upstream.name,
            status.as_u16(),
            bytes.len()
        );
        tap.finish(status.as_u16(), &what);
        return error(api, StatusCode::BAD_GATEWAY, "api_error", what);
    }
    tap.finish(status.as_u16(), "complete");
    // The upstream's own content-type was copied above; name one if it gave none.
    let builder = match content_type {
        Some(_) => builder,
        None => builder.header(header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
    };
    builder.body(Body::from(bytes)).unwrap_or_else(|_| internal(api))
}

fn audit_down(api: ApiStyle, e: &str) -> Response {
    tracing::error!("audit log unavailable: {e}");
    error(
        api,
        StatusCode::SERVICE_UNAVAILABLE,
        "api_error",
        format!("the audit log cannot record this request, so it was not sent: {e}"),
    )
}

fn internal(api: ApiStyle) -> Response {
    error(api, StatusCode::INTERNAL_SERVER_ERROR, "api_error", "the gateway could not build the response")
}

/// The upstream's credential, in the header its API expects.
fn credentials(request: reqwest::RequestBuilder, upstream: &Upstream) -> reqwest::RequestBuilder {
    match (&upstream.api_key, upstream.api) {
        (None, _) => request,
        (Some(key), ApiStyle::Openai) => request.bearer_auth(key),
        (Some(key), ApiStyle::Anthropic) => request.header("x-api-key", key),
    }
}

/// Response headers passed back to the client (hop-by-hop and framing ones are not).
fn passes_back(name: &str) -> bool {
    !matches!(
        name,
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "content-length"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authenticate"
            | "set-cookie"
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Watches an answer go by: its size, its digest, the token counts it
/// reports, and records it once when it ends, however it ends.
struct Tap {
    gw: Arc<Gateway>,
    principal: String,
    destination: String,
    started: Instant,
    bytes: u64,
    digest: Sha256,
    usage: Usage,
    done: bool,
}

#[derive(Default)]
struct Usage {
    input: u64,
    output: u64,
    /// A partial line carried between chunks.
    line: Vec<u8>,
}

impl Usage {
    /// Reads token counts from JSON lines and SSE `data:` lines as they pass.
    fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line);
            } else if self.line.len() < 1 << 20 {
                self.line.push(b);
            }
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        let json = line.strip_prefix(b"data:").unwrap_or(line);
        if !json.windows(5).any(|w| w == b"usage") {
            return;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(json.trim_ascii()) else { return };
        let mut found = Vec::new();
        collect_usage(&v, &mut found);
        for u in found {
            let n = |k: &str| u.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            self.input = self.input.max(n("input_tokens").max(n("prompt_tokens")));
            self.output = self.output.max(n("output_tokens").max(n("completion_tokens")));
        }
    }

    fn finish(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.line_done(&line);
    }
}

fn collect_usage<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                if k == "usage" && item.is_object() {
                    out.push(item);
                } else {
                    collect_usage(item, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_usage(i, out)),
        _ => {}
    }
}

impl Tap {
    fn new(gw: Arc<Gateway>, principal: String, destination: String, started: Instant) -> Tap {
        Tap {
            gw,
            principal,
            destination,
            started,
            bytes: 0,
            digest: Sha256::new(),
            usage: Usage::default(),
            done: false,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        self.digest.update(chunk);
        self.usage.feed(chunk);
    }

    /// Records the answer (once), on a blocking thread: the client already has it.
    fn finish(&mut self, status: u16, outcome: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.usage.finish();
        let event = Event::ModelResponse {
            principal: self.principal.clone(),
            destination: self.destination.clone(),
            status: u64::from(status),
            bytes: self.bytes,
            content_digest: hex::encode(std::mem::take(&mut self.digest).finalize()),
            input_tokens: self.usage.input,
            output_tokens: self.usage.output,
            duration_ms: self.started.elapsed().as_millis() as u64,
            outcome: outcome.to_string(),
        };
        let audit = self.gw.audit.clone();
        let session = self.gw.session_of(&self.principal);
        let record = move || {
            if let Err(e) = audit.append(&session, vec![event]) {
                tracing::error!("cannot record a model response: {e}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(record)),
            Err(_) => record(),
        }
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// The upstream's event stream on its way to the client, through a [`Tap`].
struct TapStream {
    inner: ByteStream,
    tap: Option<Tap>,
    status: u16,
}

impl Stream for TapStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let status = self.status;
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(tap) = self.tap.as_mut() {
                    tap.feed(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let what = if e.is_timeout() {
                    "the upstream did not finish its stream in time".to_string()
                } else {
                    format!("the upstream broke off its stream: {}", error_chain(&e))
                };
                if let Some(mut tap) = self.tap.take() {
                    tap.finish(status, &what);
                }
                Poll::Ready(Some(Err(std::io::Error::other(what))))
            }
            Poll::Ready(None) => {
                if let Some(mut tap) = self.tap.take() {
                    tap.finish(status, "complete");
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for TapStream {
    fn drop(&mut self) {
        // Dropped before the end: the client went away mid-stream. Dropping
        // `inner` closes the upstream connection.
        if let Some(mut tap) = self.tap.take() {
            let outcome = format!("the client disconnected after {} bytes", tap.bytes);
            tap.finish(self.status, &outcome);
        }
    }
}

/// Serves until `shutdown` completes, then lets requests in flight finish.
/// A Unix socket is made 0600 (and a stale one from a previous run replaced).
pub async fn serve(
    gw: Arc<Gateway>,
    listen: &crate::config::Listen,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = gw.router().into_make_service_with_connect_info::<Peer>();
    match listen {
        crate::config::Listen::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tracing::info!("listening on {}", listener.local_addr()?);
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
        crate::config::Listen::Unix(path) => {
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if !meta.file_type().is_socket() {
                    return Err(std::io::Error::other(format!("{} exists and is not a socket", path.display())));
                }
                std::fs::remove_file(path)?;
            }
            let listener = tokio::net::UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            tracing::info!("listening on unix:{}", path.display());
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
    }
}

/// Serves the broker on a Unix socket the caller bound already (so the
/// caller knows it is ready before it starts a client).
pub async fn serve_unix(
    gw: Arc<Gateway>,
    listener: std::os::unix::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = gw.router().into_make_service_with_connect_info::<Peer>();
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_key_stops_working_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut store = crate::keys::KeyStore::open(&path).unwrap();
        let key = store.add("alice", &[]).unwrap();
        let file = KeyFile::open(&path).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key.parse().unwrap());
        assert_eq!(key_of(&file.current().unwrap(), &headers).unwrap().name, "alice");
        store.revoke("alice").unwrap();
        assert!(key_of(&file.current().unwrap(), &headers).is_err());
        std::fs::write(&path, "garbage").unwrap();
        assert!(file.current().is_err(), "a corrupt key file must not keep the old keys");
    }

    #[test]
    fn token_counts_are_read_from_streams_and_documents() {
        let mut u = Usage::default();
        u.feed(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output");
        u.feed(b"_tokens\":1}}}\n\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n");
        u.finish();
        assert_eq!((u.input, u.output), (25, 15));
        let mut u = Usage::default();
        u.feed(br#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#);
        u.finish();
        assert_eq!((u.input, u.output), (9, 12));
    }
}
