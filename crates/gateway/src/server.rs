//! The HTTP side: authenticate, check policy, redact, record, forward, and
//! stream the answer back, recording it too.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use airlock_audit::event::{Event, RedactionNote};
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

use crate::body::{Schema, scrub};
use crate::config::{ApiStyle, GatewayConfig, Upstream};
use crate::gemini::GeminiMethod;

/// Who may call.
#[derive(Debug)]
pub enum Auth {
    /// Team mode: a presented key's SHA-256 → its name and what it may use.
    Keys(HashMap<String, crate::keys::KeyPolicy>),
    /// Team mode with the key file read again whenever it changes, so a
    /// revoked key stops working at once.
    KeyFile(KeyFile),
    /// Team mode with keys that can change under the server (the database
    /// replicas share, [`crate::keys_pg::PgKeys`]); while they cannot be
    /// read, no key is honoured.
    Live(Arc<dyn crate::keys::LiveKeys>),
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
        /// A key the caller must also present (`x-api-key`, a bearer
        /// token, or on the Gemini API `x-goog-api-key` or `?key=`): the placeholder a wrapped agent holds instead of the real
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
///
/// A reload ([`Gateway::reconfigured`]) makes a new one over a new
/// configuration; what belongs to the callers and the process (the fields
/// behind an `Arc`) is shared by both.
pub struct Gateway {
    config: GatewayConfig,
    client: reqwest::Client,
    auth: Arc<Auth>,
    audit: AuditHandle,
    scanner: Arc<Scanner>,
    /// Draining, telemetry.
    ops: Arc<crate::ops::Operations>,
    /// One redactor per caller, so a secret keeps its placeholder across a session's requests.
    redactors: Arc<Mutex<HashMap<String, Redactor>>>,
    /// Requests in flight per caller, against `max_requests_per_key`.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    /// Whether each request's new turns and tool calls are recorded
    /// ([`Gateway::recording_conversations`]); off unless asked for.
    record_conversations: std::sync::atomic::AtomicBool,
    /// Per caller, the conversations seen so far (what is new in a request).
    transcripts: Arc<Mutex<HashMap<String, crate::conversation::Transcript>>>,
    /// Roles' limits counted per principal ([`crate::access`]), shared across reloads.
    access: Arc<crate::access::Access>,
    /// A store connection for the read-only audit endpoints ([`Gateway::with_audit_reads`]).
    audit_reads: std::sync::OnceLock<crate::witnessing::ReadStore>,
    /// `[oidc]`: bearer JWTs verified against the identity provider's keys (cached across reloads).
    oidc: Option<Arc<crate::oidc::Verifier>>,
}

/// The routes the gateway serves, and the API each belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Responses,
    Embeddings,
    Messages,
    CountTokens,
    /// The Gemini API; the model is in the path (see [`crate::gemini`]).
    Gemini(GeminiMethod),
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
            Route::Chat | Route::Responses | Route::Embeddings => ApiStyle::OpenAi,
            Route::Messages | Route::CountTokens => ApiStyle::Anthropic,
            Route::Gemini(_) => ApiStyle::Gemini,
        }
    }

    /// The body's schema; `None` for the Gemini API, which [`crate::gemini`] reads.
    fn schema(self) -> Option<Schema> {
        match self {
            Route::Chat => Some(Schema::OpenaiChat),
            Route::Responses => Some(Schema::OpenaiResponses),
            Route::Embeddings => Some(Schema::OpenaiEmbeddings),
            Route::Messages | Route::CountTokens => Some(Schema::AnthropicMessages),
            Route::Gemini(_) => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Chat => "openai.chat",
            Route::Responses => "openai.responses",
            Route::Embeddings => "openai.embeddings",
            Route::Messages => "anthropic.messages",
            Route::CountTokens => "anthropic.count_tokens",
            Route::Gemini(GeminiMethod::GenerateContent) => "gemini.generate_content",
            Route::Gemini(GeminiMethod::StreamGenerateContent) => "gemini.stream_generate_content",
            Route::Gemini(GeminiMethod::CountTokens) => "gemini.count_tokens",
        }
    }
}

/// The key a request presents: a bearer token, `x-api-key`, or the Gemini
/// API's `x-goog-api-key` header or `?key=` (`query_key`, read only on
/// that API's routes).
fn presented_key<'a>(headers: &'a HeaderMap, query_key: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get(GOOG_API_KEY).and_then(|v| v.to_str().ok()))
        .or(query_key)
        .map(str::trim)
}

/// The header the Gemini API takes its key in.
const GOOG_API_KEY: &str = "x-goog-api-key";

/// The key a request presents, looked up by its digest.
fn key_of(
    keys: &HashMap<String, crate::keys::KeyPolicy>,
    headers: &HeaderMap,
    query_key: Option<&str>,
) -> Result<crate::keys::KeyPolicy, &'static str> {
    let presented = presented_key(headers, query_key).ok_or(
        "no API key: send Authorization: Bearer <key>, x-api-key: <key> or (Gemini API) x-goog-api-key: <key>",
    )?;
    keys.get(&crate::keys::digest(presented)).cloned().ok_or("the API key is not valid")
}

/// The `status` word of a Gemini API error for an HTTP status.
fn gemini_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 => "UNIMPLEMENTED",
        408 | 504 => "DEADLINE_EXCEEDED",
        429 => "RESOURCE_EXHAUSTED",
        502 | 503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// The client that sends to upstreams, with the configuration's timeouts.
fn upstream_client(config: &GatewayConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .timeout(config.upstream_timeout)
        // Upstreams are named in the config: never follow a redirect elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
}

/// An error in the wire format of the API the client speaks.
fn error(api: ApiStyle, status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = match api {
        ApiStyle::OpenAi => serde_json::json!({"error": {"message": message, "type": kind, "code": status.as_u16()}}),
        ApiStyle::Anthropic => serde_json::json!({"type": "error", "error": {"type": kind, "message": message}}),
        ApiStyle::Gemini => serde_json::json!({"error": {"code": status.as_u16(), "message": message,
            "status": gemini_status(status), "details": [{"reason": kind}]}}),
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
        Ok(Arc::new(Gateway {
            client: upstream_client(&config)?,
            oidc: config.oidc.clone().map(crate::oidc::Verifier::start).transpose()?,
            config,
            auth: Arc::new(auth),
            audit,
            scanner,
            ops: Arc::default(),
            redactors: Arc::default(),
            in_flight: Arc::default(),
            record_conversations: std::sync::atomic::AtomicBool::new(false),
            transcripts: Arc::default(),
            access: Arc::default(),
            audit_reads: std::sync::OnceLock::new(),
        }))
    }

    /// This gateway over a new configuration (a reload): the callers'
    /// placeholders, requests in flight and conversations, the key file,
    /// the audit log and the telemetry carry over.
    pub fn reconfigured(&self, config: GatewayConfig) -> Result<Arc<Gateway>, reqwest::Error> {
        Ok(Arc::new(Gateway {
            client: upstream_client(&config)?,
            oidc: match (&self.oidc, &config.oidc) {
                (Some(v), Some(c)) if v.config() == c => Some(Arc::clone(v)),
                (_, c) => c.clone().map(crate::oidc::Verifier::start).transpose()?,
            },
            config,
            auth: Arc::clone(&self.auth),
            audit: self.audit.clone(),
            scanner: Arc::clone(&self.scanner),
            ops: Arc::clone(&self.ops),
            redactors: Arc::clone(&self.redactors),
            in_flight: Arc::clone(&self.in_flight),
            record_conversations: std::sync::atomic::AtomicBool::new(
                self.record_conversations.load(std::sync::atomic::Ordering::Relaxed),
            ),
            transcripts: Arc::clone(&self.transcripts),
            access: Arc::clone(&self.access),
            audit_reads: self.audit_reads.clone(),
        }))
    }

    /// The configuration this gateway serves.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Draining and telemetry, shared across reloads.
    pub fn operations(&self) -> &crate::ops::Operations {
        &self.ops
    }

    /// Access control's usage ledger (in memory unless
    /// [`crate::access::Access::set_ledger`] gives a shared one), shared across reloads.
    pub fn access(&self) -> &crate::access::Access {
        &self.access
    }

    /// This gateway, recording after each model request what it adds to the
    /// conversation: the person's new turn (its text, redacted, clipped) and
    /// the tool calls of the model's last answer (name, command or
    /// arguments, redacted and clipped, and the result's size), as
    /// `agent_turn` and `agent_tool_call` events ([`crate::conversation`]).
    ///
    /// For a broker that wraps one person's agent session, whose report
    /// shows the session as it went. Off by default: a team gateway records
    /// digests and sizes of its users' prompts, not their words.
    pub fn recording_conversations(self: Arc<Self>) -> Arc<Self> {
        self.record_conversations.store(true, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// This gateway, serving the read-only audit endpoints (`GET
    /// /v1/audit/checkpoint`, `/v1/audit/consistency?old=N&new=M`,
    /// `/v1/audit/inclusion?index=I&size=N`, see
    /// [`crate::witnessing::audit_endpoint`]) from `store`, to keys whose
    /// role may read the log ([`crate::keys::KeyPolicy::may_read_log`]).
    pub fn with_audit_reads(self: Arc<Self>, store: crate::witnessing::ReadStore) -> Arc<Self> {
        let _ = self.audit_reads.set(store);
        self
    }

    /// The axum router.
    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new().fallback(handle).with_state(self)
    }

    fn principal(
        &self,
        peer: Peer,
        headers: &HeaderMap,
        query_key: Option<&str>,
    ) -> Result<crate::keys::KeyPolicy, &'static str> {
        match &*self.auth {
            Auth::Session { key: Some(key), .. } if presented_key(headers, query_key) != Some(key.as_str()) => {
                Err("this broker serves only its session: present the session's key (the placeholder it was given)")
            }
            Auth::Peer { uid } | Auth::Session { uid, .. } => match peer.uid {
                Some(u) if u == *uid => Ok(crate::keys::KeyPolicy::new(format!("uid:{u}"), crate::access::Role::Admin)),
                Some(_) => Err("this broker serves only its own user"),
                None => Err("the local broker only accepts Unix-socket peers"),
            },
            Auth::Keys(keys) => key_of(keys, headers, query_key),
            Auth::KeyFile(file) => match file.current() {
                Ok(keys) => key_of(&keys, headers, query_key),
                Err(e) => {
                    // Fail closed: no key is honoured while the file cannot be read.
                    tracing::error!("cannot read the key file: {e}");
                    Err("the gateway cannot read its key file")
                }
            },
            Auth::Live(live) => match live.current() {
                Ok(keys) => key_of(&keys, headers, query_key),
                Err(e) => {
                    // Fail closed, as with the file.
                    tracing::error!("cannot read the keys: {e}");
                    Err("the gateway cannot read its keys")
                }
            },
        }
    }

    /// The principal a bearer JWT names, when `[oidc]` is configured on a
    /// team gateway: such a token never goes to the key table.
    async fn oidc_principal(
        &self,
        headers: &HeaderMap,
    ) -> Option<Result<crate::keys::KeyPolicy, crate::oidc::OidcError>> {
        let verifier = self.oidc.as_ref()?;
        if !matches!(&*self.auth, Auth::Keys(_) | Auth::KeyFile(_) | Auth::Live(_)) {
            return None;
        }
        Some(verifier.principal(crate::oidc::bearer_jwt(headers)?).await)
    }

    /// The audit session a caller's records go under.
    fn session_of(&self, principal: &str) -> String {
        match &*self.auth {
            Auth::Session { session, .. } => session.clone(),
            _ => format!("gateway:{principal}"),
        }
    }

    /// Appends an event on a blocking thread (the writer acknowledges after fsync).
    async fn record(&self, principal: &str, event: Event) -> Result<u64, String> {
        self.record_all(principal, vec![event]).await
    }

    /// Appends events as one batch, in order, on a blocking thread.
    async fn record_all(&self, principal: &str, events: Vec<Event>) -> Result<u64, String> {
        let audit = self.audit.clone();
        let session = self.session_of(principal);
        let ops = Arc::clone(&self.ops);
        tokio::task::spawn_blocking(move || {
            let first = audit.append(&session, events.clone())?;
            ops.observe(&events);
            Ok(first)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e: airlock_audit::log::AuditError| e.to_string())
    }

    /// What a request (its body as it leaves) adds to its caller's
    /// conversation, when this gateway records conversations; its keys are
    /// marked seen.
    fn conversation(&self, principal: &str, route: Route, body: &[u8]) -> crate::conversation::Observed {
        let conversational = matches!(
            route,
            Route::Messages
                | Route::Chat
                | Route::Responses
                | Route::Gemini(GeminiMethod::GenerateContent | GeminiMethod::StreamGenerateContent)
        );
        if !conversational || !self.record_conversations.load(std::sync::atomic::Ordering::Relaxed) {
            return crate::conversation::Observed::default();
        }
        let mut transcripts = lock(&self.transcripts);
        let transcript = transcripts.entry(principal.to_string()).or_default();
        let observed = match route.schema() {
            Some(schema) => transcript.observe(schema, body),
            None => transcript.observe_gemini(body),
        };
        drop(transcripts);
        if observed.passed_over > 0 {
            tracing::warn!(
                principal,
                passed_over = observed.passed_over,
                "a request brought more new turns or tool calls than one request records; the newest were recorded"
            );
        }
        observed
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
    if path == "/readyz" && matches!(parts.method, Method::GET | Method::HEAD) {
        return crate::ops::readiness(&gw.ops, &gw.audit).await;
    }
    let gemini = path.starts_with("/v1beta/");
    let api = if path.starts_with("/v1/messages") {
        ApiStyle::Anthropic
    } else if gemini {
        ApiStyle::Gemini
    } else {
        ApiStyle::OpenAi
    };
    // `?key=` is a key only on the Gemini API's routes.
    let query_key = if gemini { crate::gemini::query_key(parts.uri.query()) } else { None };
    let caller = match gw.oidc_principal(&parts.headers).await {
        Some(Ok(p)) => Ok(p),
        Some(Err(why)) => {
            tracing::warn!(path, "refused an ID token: {why}");
            gw.ops.refused(why.reason());
            let status = StatusCode::from_u16(why.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let kind = if why.status() == 403 { "permission_error" } else { "authentication_error" };
            return error(api, status, kind, why.to_string());
        }
        None => gw.principal(peer, &parts.headers, query_key),
    };
    let caller = match caller {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(path, "refused: {why}");
            gw.ops.refused("unauthenticated");
            // A session's broker has one caller: anything else knocking on
            // it is that session's business, and goes on its record.
            if let Auth::Session { .. } = &*gw.auth {
                // Its size is worth waiting for only while few such requests are.
                let bytes = match InFlight::enter(&gw, "unauthenticated") {
                    Some(_counted) => body_size(body, gw.config.max_request_bytes, gw.config.body_timeout).await,
                    None => 0,
                };
                let event = Event::BlockedEgress {
                    destination: format!("broker:{} {}", parts.method, shown_path(&path)),
                    reason: why.into(),
                    bytes,
                };
                if let Err(e) = gw.record("unauthenticated", event).await {
                    return audit_down(api, &e);
                }
            }
            return error(api, StatusCode::UNAUTHORIZED, "authentication_error", why);
        }
    };
    // Per key, for every route: one caller cannot take every connection,
    // upstream slot and task there is (a body read is bounded in time, not
    // in number, without this).
    let Some(in_flight) = InFlight::enter(&gw, &caller.name) else {
        tracing::warn!(principal = caller.name, limit = gw.config.max_requests_per_key, "too many requests in flight");
        gw.ops.refused("too_many_in_flight");
        let mut response = error(
            api,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!(
                "{} already has {} requests in flight, the gateway's limit per key (gateway.max_requests_per_key)",
                caller.name, gw.config.max_requests_per_key
            ),
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    if path == "/v1/models" && parts.method == Method::GET {
        return models(&gw);
    }
    if path.starts_with("/v1/audit/") && parts.method == Method::GET {
        let Some(store) = gw.audit_reads.get() else {
            return error(api, StatusCode::NOT_FOUND, "not_found_error", "this gateway does not serve its audit log");
        };
        if !caller.may_read_log() {
            gw.ops.refused("role");
            return error(api, StatusCode::FORBIDDEN, "permission_error", "this key's role may not read the audit log");
        }
        if let Some((status, text)) = crate::witnessing::audit_endpoint(store, &path, parts.uri.query()).await {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response();
        }
    }
    let (route, model) = match crate::gemini::parse_path(&path) {
        Some(Ok((model, method))) => (Some(Route::Gemini(method)), Some(model)),
        Some(Err(why)) => {
            let event = Event::BlockedEgress {
                destination: format!("broker:{} {}", parts.method, shown_path(&path)),
                reason: format!("{why}: nothing was forwarded"),
                bytes: body_size(body, gw.config.max_request_bytes, gw.config.body_timeout).await,
            };
            if let Err(e) = gw.record(&caller.name, event).await {
                return audit_down(api, &e);
            }
            return error(api, StatusCode::NOT_FOUND, "not_found_error", why.to_string());
        }
        None => (Route::from_path(&path), None),
    };
    let Some(route) = route else {
        // Nothing is forwarded, but an agent's other traffic through its base
        // URL (telemetry, update checks) goes on the record, with its size.
        let event = Event::BlockedEgress {
            destination: format!("broker:{} {}", parts.method, shown_path(&path)),
            reason: "not a model API route: nothing was forwarded".into(),
            bytes: body_size(body, gw.config.max_request_bytes, gw.config.body_timeout).await,
        };
        if let Err(e) = gw.record(&caller.name, event).await {
            return audit_down(api, &e);
        }
        return error(api, StatusCode::NOT_FOUND, "not_found_error", format!("the gateway does not serve {path}"));
    };
    if parts.method != Method::POST {
        return error(api, StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error", format!("{path} takes POST"));
    }
    let read = http_body_util::Limited::new(body, gw.config.max_request_bytes).collect();
    let read = match gw.config.body_timeout {
        Some(limit) => match tokio::time::timeout(limit, read).await {
            Ok(r) => r,
            Err(_) => {
                return error(
                    api,
                    StatusCode::REQUEST_TIMEOUT,
                    "invalid_request_error",
                    format!(
                        "the request body did not arrive within {}s (gateway.body_timeout_secs)",
                        limit.as_secs_f64()
                    ),
                );
            }
        },
        None => read.await,
    };
    let body = match read {
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
    let target = Target { route, model: model.as_deref() };
    let response = forward(&gw, &caller, target, &parts.headers, parts.uri.query(), &body, started).await;
    // A forwarded request's line is written when its answer ends, with its
    // tokens (`Tap::finish`); this is the line of one refused before it left.
    if response.extensions().get::<Tapped>().is_none() {
        tracing::info!(
            principal = caller.name,
            route = route.name(),
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "request"
        );
    }
    // Counted until the answer has been streamed to the end, or dropped.
    holding(response, in_flight)
}

/// Marks a response whose request left for an upstream: its [`Tap`] logs it.
#[derive(Debug, Clone, Copy)]
struct Tapped;

fn tapped(mut response: Response) -> Response {
    response.extensions_mut().insert(Tapped);
    response
}

/// A request counted against its caller's `max_requests_per_key`, until dropped.
struct InFlight {
    gw: Arc<Gateway>,
    key: String,
}

impl InFlight {
    fn enter(gw: &Arc<Gateway>, key: &str) -> Option<InFlight> {
        let mut map = match gw.in_flight.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let n = map.entry(key.to_string()).or_insert(0);
        if *n >= gw.config.max_requests_per_key {
            return None;
        }
        *n += 1;
        Some(InFlight { gw: Arc::clone(gw), key: key.to_string() })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = match self.gw.in_flight.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// `response`, with `guard` kept alive until its body has been sent or dropped.
fn holding<G: Send + Sync + 'static>(response: Response, guard: G) -> Response {
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _ = &guard;
            frame
        }))
    })
}

/// A request path as recorded: at most 200 characters, control characters
/// replaced (the query is never kept: it can carry secrets).
fn shown_path(path: &str) -> String {
    path.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The size of a refused request's body (read and dropped; capped at the limit).
async fn body_size(body: Body, limit: usize, time: Option<std::time::Duration>) -> u64 {
    let read = http_body_util::Limited::new(body, limit).collect();
    let read = match time {
        Some(t) => match tokio::time::timeout(t, read).await {
            Ok(r) => r,
            // A body that trickles is not waited for: its size is unknown.
            Err(_) => return 0,
        },
        None => read.await,
    };
    match read {
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

/// A model route, and the model its path names (the Gemini API's).
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    route: Route,
    model: Option<&'a str>,
}

async fn forward(
    gw: &Arc<Gateway>,
    caller: &crate::keys::KeyPolicy,
    target: Target<'_>,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
    started: Instant,
) -> Response {
    let route = target.route;
    let api = route.api();
    let principal = caller.name.as_str();
    let shown = route_path(route, target.model.unwrap_or("MODEL"));
    if let Err(refusal) = crate::access::may_use_models(caller, &format!("broker:POST {shown}")) {
        return refused(gw, api, principal, refusal, body.len() as u64).await;
    }
    // No query leaves but Claude Code's constant and the Gemini API's
    // `alt=sse` (its `key=` is consumed); the refusal is on the record with
    // the query's size and digest, never the query.
    let checked = match route {
        Route::Gemini(_) => crate::gemini::read_query(query)
            .map(|q| q.sse.then_some("alt=sse"))
            .map_err(|r| (r.bytes, r.sha256.clone(), r.to_string())),
        _ => crate::forwarded::check_query(api, query).map_err(|r| (r.bytes, r.sha256.clone(), r.to_string())),
    };
    let query = match checked {
        Ok(q) => q,
        Err((bytes, sha256, why)) => {
            let event = Event::BlockedEgress {
                destination: format!("broker:POST {shown}?(query: {bytes} bytes, sha256 {sha256})"),
                reason: why.clone(),
                bytes: body.len() as u64,
            };
            if let Err(e) = gw.record(principal, event).await {
                return audit_down(api, &e);
            }
            return error(api, StatusCode::BAD_REQUEST, "invalid_request_error", why);
        }
    };
    // The Gemini key header is the caller's credential, consumed like
    // `x-api-key`: neither forwarded nor a note.
    let mut headers = headers.clone();
    headers.remove(GOOG_API_KEY);
    let plan = crate::forwarded::plan_headers(&headers, api, &gw.config.allow_server_tools);
    let scrubbed = {
        let mut redactors = match gw.redactors.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let redactor = redactors.entry(principal.to_string()).or_insert_with(|| Redactor::new(Arc::clone(&gw.scanner)));
        let allow = &gw.config.allow_server_tools;
        let scrubbed = match (route.schema(), route) {
            (Some(schema), _) => scrub(body, schema, allow, redactor),
            (None, Route::Gemini(method)) => crate::gemini::scrub(
                body,
                target.model.unwrap_or_default(),
                method == GeminiMethod::StreamGenerateContent,
                allow,
                redactor,
            ),
            (None, _) => Err(crate::body::BodyError::NoModel),
        };
        scrubbed.map(|s| (dropped_notes(&plan.dropped, redactor), s))
    };
    let (header_notes, mut scrubbed) = match scrubbed {
        Ok(s) => s,
        Err(crate::body::BodyError::ServerTool(refused)) => {
            let event = Event::BlockedEgress {
                destination: format!("tool:{}", refused.tool),
                reason: refused.to_string(),
                bytes: body.len() as u64,
            };
            if let Err(e) = gw.record(principal, event).await {
                return audit_down(api, &e);
            }
            return error(api, StatusCode::BAD_REQUEST, "invalid_request_error", refused.to_string());
        }
        Err(e) => {
            return error(api, StatusCode::BAD_REQUEST, "invalid_request_error", e.to_string());
        }
    };
    // Every change made to what leaves is a note on the request's record:
    // secrets replaced in the body, headers and beta tokens held back, tools removed.
    scrubbed.notes.extend(header_notes);
    for s in &scrubbed.stripped {
        scrubbed.notes.push(RedactionNote {
            rule: "server-tool-removed".into(),
            field: s.field.clone(),
            placeholder: format!("«removed:{}»", s.tool),
            secret_sha256: s.sha256.clone(),
        });
    }
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
    // The caller's role and key: model, upstream, size, then its counted
    // limits (the request is counted once admitted).
    let roles = &gw.config.roles;
    let now = std::time::SystemTime::now();
    let admitted = match gw.access.admit(roles, caller, &scrubbed.model, &upstream.name, body.len() as u64, now).await {
        Ok(a) => a,
        Err(refusal) => return refused(gw, api, principal, refusal, body.len() as u64).await,
    };
    // Each server-side tool (or the beta that turns one on) kept from the
    // vendor is a refused route out, recorded as such.
    let mut removed: Vec<String> = Vec::new();
    let mut refusals = Vec::new();
    for s in &scrubbed.stripped {
        removed.push(s.tool.clone());
        refusals.push(Event::BlockedEgress {
            destination: format!("tool:{}", s.tool),
            reason: format!(
                "server-side tool {} removed from the request at {}: the vendor would run it outside airlock's egress allowlist\nhint: name it in gateway.allow_server_tools to let it through",
                s.tool, s.field
            ),
            bytes: s.bytes,
        });
    }
    for d in plan.dropped.iter().filter(|d| d.server_tool.is_some()) {
        refusals.push(Event::BlockedEgress {
            destination: format!("tool:{}", d.server_tool.unwrap_or_default()),
            reason: format!("header {} token {:?} held back: {}", d.name, d.value, d.why),
            bytes: d.value.len() as u64,
        });
    }
    for event in refusals {
        if let Err(e) = gw.record(principal, event).await {
            return audit_down(api, &e);
        }
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
    let redaction_count = match &request_event {
        Event::ModelRequest { redactions, .. } => redactions.len() as u64,
        _ => 0,
    };
    // What the request adds to the conversation goes in the same batch,
    // right after it (read from the body as it leaves: redacted).
    let observed = gw.conversation(principal, route, &scrubbed.body);
    let mut batch = vec![request_event];
    batch.extend(observed.events.iter().cloned());
    // On the record before it leaves; if it cannot be recorded, it does not leave.
    if let Err(e) = gw.record_all(principal, batch).await {
        if !observed.events.is_empty() {
            // Not recorded: a retry of the request records them.
            if let Some(t) = lock(&gw.transcripts).get_mut(principal) {
                t.forget(&observed);
            }
        }
        return audit_down(api, &e);
    }

    // The model in the path is the checked (and scanned) one.
    let mut url = format!("{}{}", upstream.base_url, route_path(route, &scrubbed.model));
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    let mut out = gw.client.post(&url).header(header::CONTENT_TYPE, "application/json").body(scrubbed.body);
    for (name, value) in plan.forward {
        out = out.header(name, value);
    }
    out = credentials(out, upstream);
    let call = crate::telemetry::ModelCall {
        route: route.name(),
        operation: crate::telemetry::operation(route.name()),
        api,
        request_model: scrubbed.model.clone(),
        upstream: upstream.name.clone(),
        base_url: upstream.base_url.clone(),
        redactions: redaction_count,
        started: std::time::SystemTime::now() - started.elapsed(),
    };
    let mut tap = Tap::new(Arc::clone(gw), principal.to_string(), destination.clone(), started).calling(call);
    tap.meter = crate::access::Meter::new(caller, roles, admitted, stream_format(route));
    let upstream_response = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            let (status, what) = if e.is_timeout() {
                (StatusCode::GATEWAY_TIMEOUT, format!("upstream {} did not answer in time", upstream.name))
            } else {
                (StatusCode::BAD_GATEWAY, format!("upstream {} failed: {}", upstream.name, error_chain(&e)))
            };
            tap.finish(0, &what);
            return tapped(error(api, status, "api_error", what));
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
    if !removed.is_empty() {
        // Tell the client too: its tools were not all offered to the model.
        if let Ok(v) = HeaderValue::from_str(&removed.join(", ")) {
            builder = builder.header("x-airlock-removed-tools", v);
        }
    }
    if is_stream {
        // Chunk by chunk: nothing is held back but what a chunk already is.
        let stream = TapStream {
            inner: Box::pin(upstream_response.bytes_stream()),
            tap: Some(tap),
            status: status.as_u16(),
            ended: false,
        };
        return tapped(builder.body(Body::from_stream(stream)).unwrap_or_else(|_| internal(api)));
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
            return tapped(error(api, StatusCode::BAD_GATEWAY, "api_error", what));
        }
    };

    tap.feed(&bytes);
    tap.usage.document(&bytes);
    if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
        let what = format!(
            "upstream {} answered HTTP {} with a body that is not JSON ({} bytes)",
            upstream.name,
            status.as_u16(),
            bytes.len()
        );
        tap.finish(status.as_u16(), &what);
        return tapped(error(api, StatusCode::BAD_GATEWAY, "api_error", what));
    }
    tap.finish(status.as_u16(), "complete");
    // The upstream's own content-type was copied above; name one if it gave none.
    let builder = match content_type {
        Some(_) => builder,
        None => builder.header(header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
    };
    tapped(builder.body(Body::from(bytes)).unwrap_or_else(|_| internal(api)))
}

/// The shape of a route's event stream, for the event that ends one early.
fn stream_format(route: Route) -> Option<crate::access::StreamFormat> {
    use crate::access::StreamFormat;
    match route {
        Route::Chat => Some(StreamFormat::OpenAiChat),
        Route::Responses => Some(StreamFormat::OpenAiResponses),
        Route::Messages => Some(StreamFormat::Anthropic),
        Route::Gemini(GeminiMethod::StreamGenerateContent) => Some(StreamFormat::Gemini),
        _ => None,
    }
}

/// A request refused by access control ([`crate::access`]): on the record,
/// then answered in the caller's format, with `Retry-After` for a limit.
async fn refused(
    gw: &Gateway,
    api: ApiStyle,
    principal: &str,
    refusal: crate::access::Refusal,
    bytes: u64,
) -> Response {
    tracing::warn!(principal, status = refusal.status, "refused: {}", refusal.reason);
    let event = Event::BlockedEgress { destination: refusal.destination, reason: refusal.reason.clone(), bytes };
    if let Err(e) = gw.record(principal, event).await {
        return audit_down(api, &e);
    }
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
    let mut response = error(api, status, refusal.kind, refusal.reason);
    if let Some(secs) = refusal.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The upstream path of a route (`model` goes into the Gemini API's).
fn route_path(route: Route, model: &str) -> String {
    match route {
        Route::Chat => "/v1/chat/completions".into(),
        Route::Responses => "/v1/responses".into(),
        Route::Embeddings => "/v1/embeddings".into(),
        Route::Messages => "/v1/messages".into(),
        Route::CountTokens => "/v1/messages/count_tokens".into(),
        Route::Gemini(method) => format!("{}{model}:{}", crate::gemini::MODELS_PREFIX, method.as_str()),
    }
}

/// The record of headers held back: each secret a scan finds in one, or one
/// note naming the header and the digest of its value (never the value).
fn dropped_notes(dropped: &[crate::forwarded::Dropped], redactor: &mut Redactor) -> Vec<RedactionNote> {
    let mut notes = Vec::new();
    for d in dropped {
        let field = format!("header:{}", d.name);
        let found = redactor.redact(&d.value).report;
        if found.is_empty() {
            notes.push(RedactionNote {
                rule: "header-dropped".into(),
                field,
                placeholder: "«dropped»".into(),
                secret_sha256: d.sha256(),
            });
        } else {
            for r in found {
                notes.push(RedactionNote {
                    rule: r.rule_id,
                    field: field.clone(),
                    placeholder: r.placeholder,
                    secret_sha256: r.secret_sha256,
                });
            }
        }
    }
    notes
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
        (Some(key), ApiStyle::OpenAi) => request.bearer_auth(key),
        (Some(key), ApiStyle::Anthropic) => request.header("x-api-key", key),
        (Some(key), ApiStyle::Gemini) => request.header(GOOG_API_KEY, key),
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
    /// What the log line and telemetry say of the request.
    call: Option<crate::telemetry::ModelCall>,
    /// Tokens against the caller's daily budget; ends a stream that spends it.
    meter: crate::access::Meter,
}

#[derive(Default)]
struct Usage {
    input: u64,
    output: u64,
    /// The model the answer names.
    model: Option<String>,
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
        // OpenAI's chunks and documents, Anthropic's message_start, Responses' events, Gemini's.
        let named = ["/model", "/message/model", "/response/model", "/modelVersion"]
            .iter()
            .find_map(|p| v.pointer(p).and_then(serde_json::Value::as_str));
        if let Some(m) = named.filter(|m| !m.is_empty()) {
            self.model = Some(m.chars().take(128).collect());
        }
        let mut found = Vec::new();
        collect_usage(&v, &mut found);
        for u in found {
            let n = |k: &str| u.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            self.input = self.input.max(n("input_tokens").max(n("prompt_tokens")).max(n("promptTokenCount")));
            // Gemini counts its thinking apart from the answer; both are generated.
            let gemini = n("candidatesTokenCount") + n("thoughtsTokenCount");
            self.output = self.output.max(n("output_tokens").max(n("completion_tokens")).max(gemini));
        }
    }

    /// Reads token counts from a whole JSON document (an answer that is not
    /// a stream may be spread over lines, as Google's are).
    fn document(&mut self, body: &[u8]) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            self.line_done(v.to_string().as_bytes());
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
                if (k == "usage" || k == "usageMetadata") && item.is_object() {
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
            call: None,
            meter: crate::access::Meter::unlimited(),
        }
    }

    /// This tap, logging and exporting `call` when the answer ends.
    fn calling(mut self, call: crate::telemetry::ModelCall) -> Tap {
        self.call = Some(call);
        self
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
        self.gw.access.charge(&self.principal, self.meter.charged(self.usage.input, self.usage.output));
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
        if let Some(call) = &self.call {
            let ended = crate::telemetry::Ended {
                status,
                input_tokens: self.usage.input,
                output_tokens: self.usage.output,
                response_model: self.usage.model.as_deref(),
                duration: self.started.elapsed(),
                outcome,
            };
            // One line per forwarded request: names and counts, never content.
            tracing::info!(
                principal = self.principal,
                route = call.route,
                model = call.request_model,
                upstream = call.upstream,
                status,
                duration_ms = ended.duration.as_millis() as u64,
                input_tokens = ended.input_tokens,
                output_tokens = ended.output_tokens,
                redactions = call.redactions,
                outcome,
                "request"
            );
            if let Some(t) = self.gw.ops.telemetry() {
                t.model_call(call, &ended);
            }
        }
        let audit = self.gw.audit.clone();
        let session = self.gw.session_of(&self.principal);
        // Deferred: the answer has gone, so its record need not hold up the
        // next request's (which carries it to the disk in the same commit).
        let record = move || {
            if let Err(e) = audit.append_deferred(&session, vec![event]) {
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
    /// Ended by the gateway (a budget spent): nothing more is read or sent.
    ended: bool,
}

impl Stream for TapStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let status = self.status;
        if self.ended {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(tap) = self.tap.as_mut() {
                    tap.feed(&chunk);
                    let (input, output) = (tap.usage.input, tap.usage.output);
                    if let crate::access::Pass::Last(end) = tap.meter.pass(&chunk, input, output) {
                        // The daily budget is spent: a well-formed end, on the record.
                        let outcome = tap.meter.cut().unwrap_or("cut").to_string();
                        tap.finish(status, &outcome);
                        self.tap = None;
                        self.ended = true;
                        return Poll::Ready(Some(Ok(end)));
                    }
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
    serve_live(crate::ops::LiveGateway::new(gw), listen, shutdown).await
}

/// [`serve`], with the gateway each request goes to read from `live` as
/// the request starts (so a reload reaches open connections too). After
/// `shutdown`, requests in flight get the current configuration's
/// `drain_timeout` to finish; those still running then are cut off.
pub async fn serve_live(
    live: Arc<crate::ops::LiveGateway>,
    listen: &crate::config::Listen,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let gw = live;
    match listen {
        crate::config::Listen::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tracing::info!("listening on {}", listener.local_addr()?);
            serve_on(gw, listener, shutdown).await
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
            serve_on(gw, listener, shutdown).await
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
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    serve_on(crate::ops::LiveGateway::new(gw), listener, shutdown).await
}

/// What the server needs of a listener: the next connection and who is on
/// the other end, and a way to say "full" without waiting on the client.
trait Incoming: Send + 'static {
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn next(&self) -> impl std::future::Future<Output = std::io::Result<(Self::Io, Peer)>> + Send;
    fn refuse(io: &Self::Io);
}

const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 42\r\nretry-after: 1\r\nconnection: close\r\n\r\nthe gateway has too many open connections\n";

impl Incoming for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn next(&self) -> std::io::Result<(Self::Io, Peer)> {
        let (io, _) = self.accept().await?;
        Ok((io, Peer { uid: None }))
    }
    fn refuse(io: &Self::Io) {
        let _ = io.try_write(FULL);
    }
}

impl Incoming for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn next(&self) -> std::io::Result<(Self::Io, Peer)> {
        let (io, _) = self.accept().await?;
        let uid = io.peer_cred().ok().map(|c| c.uid());
        Ok((io, Peer { uid }))
    }
    fn refuse(io: &Self::Io) {
        let _ = io.try_write(FULL);
    }
}

/// The open connections, and which of them are idle (no request in
/// progress: waiting for a first request head, or kept alive between
/// requests), oldest first. A slow client is idle until its head is
/// complete, so when the table is full it is the first to go.
#[derive(Default)]
struct Connections {
    state: Mutex<ConnectionState>,
}

#[derive(Default)]
struct ConnectionState {
    open: usize,
    next: u64,
    idle: std::collections::BTreeMap<u64, Arc<Connection>>,
}

/// One connection's place in the table.
#[derive(Default)]
struct Connection {
    /// Notified to close it (it was the oldest idle one when room was needed).
    close: tokio::sync::Notify,
    /// Guarded by the table's lock: its key in `idle`, when idle.
    idle_since: Mutex<Option<u64>>,
    /// Guarded by the table's lock: requests in progress.
    active: Mutex<usize>,
    evicted: std::sync::atomic::AtomicBool,
    /// Guarded by the table's lock: its task has ended (a request's guard
    /// can outlive it, and must not make it idle again).
    ended: Mutex<bool>,
}

/// Whether a new connection gets in, and what makes room for it: a pure
/// decision over the table's counts.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// There is room.
    Admit,
    /// Full: close the oldest idle connection, then admit.
    Evict,
    /// Full, and every connection has a request in progress.
    Refuse,
}

fn admission(open: usize, idle: usize, limit: usize) -> Admission {
    if open < limit {
        Admission::Admit
    } else if idle > 0 {
        Admission::Evict
    } else {
        Admission::Refuse
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Connections {
    fn admit(&self, limit: usize) -> Option<Arc<Connection>> {
        let mut state = lock(&self.state);
        match admission(state.open, state.idle.len(), limit) {
            Admission::Refuse => return None,
            Admission::Evict => {
                if let Some((_, oldest)) = state.idle.pop_first() {
                    *lock(&oldest.idle_since) = None;
                    oldest.evicted.store(true, std::sync::atomic::Ordering::SeqCst);
                    oldest.close.notify_one();
                    state.open = state.open.saturating_sub(1);
                }
            }
            Admission::Admit => {}
        }
        state.open += 1;
        let connection = Arc::new(Connection::default());
        Self::make_idle(&mut state, &connection);
        Some(connection)
    }

    fn make_idle(state: &mut ConnectionState, connection: &Arc<Connection>) {
        let key = state.next;
        state.next += 1;
        *lock(&connection.idle_since) = Some(key);
        state.idle.insert(key, Arc::clone(connection));
    }

    fn request_started(&self, connection: &Arc<Connection>) {
        let mut state = lock(&self.state);
        if let Some(key) = lock(&connection.idle_since).take() {
            state.idle.remove(&key);
        }
        *lock(&connection.active) += 1;
    }

    fn request_ended(&self, connection: &Arc<Connection>) {
        let mut state = lock(&self.state);
        let mut active = lock(&connection.active);
        *active = active.saturating_sub(1);
        let idle = *active == 0;
        drop(active);
        let gone = connection.evicted.load(std::sync::atomic::Ordering::SeqCst) || *lock(&connection.ended);
        if idle && !gone {
            Self::make_idle(&mut state, connection);
        }
    }

    fn closed(&self, connection: &Arc<Connection>) {
        let mut state = lock(&self.state);
        *lock(&connection.ended) = true;
        if let Some(key) = lock(&connection.idle_since).take() {
            state.idle.remove(&key);
        }
        if !connection.evicted.load(std::sync::atomic::Ordering::SeqCst) {
            state.open = state.open.saturating_sub(1);
        }
    }
}

/// Completes when the server stops (never, if the sender is gone without saying so).
async fn stopping(stop: &mut tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Marks a request as ended when dropped (its answer sent, or abandoned).
struct RequestInProgress {
    table: Arc<Connections>,
    connection: Arc<Connection>,
}

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        self.table.request_ended(&self.connection);
    }
}

/// The accept loop, with the slowloris guards: a request head must arrive
/// within `header_timeout` (hyper's, which also bounds an idle keep-alive
/// connection), a body within `body_timeout` (in the handler), at most
/// `max_connections` open (the oldest idle one closed to make room), and
/// `max_requests_per_key` in flight per caller (in the handler).
async fn serve_on<L: Incoming>(
    live: Arc<crate::ops::LiveGateway>,
    listener: L,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let table = Arc::new(Connections::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let (io, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.next() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off rather than spin or stop serving.
                    tracing::warn!(error = %e, "gateway: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Limits as configured now (a reload changes them for new connections).
        let gw = live.current();
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(gw.config.header_timeout);
        let Some(connection) = table.admit(gw.config.max_connections) else {
            tracing::warn!(limit = gw.config.max_connections, "gateway: too many connections, every one busy");
            L::refuse(&io);
            continue;
        };
        let service = {
            let (table, connection, live) = (Arc::clone(&table), Arc::clone(&connection), Arc::clone(&live));
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                table.request_started(&connection);
                let guard = RequestInProgress { table: Arc::clone(&table), connection: Arc::clone(&connection) };
                request.extensions_mut().insert(ConnectInfo(peer));
                // The gateway as configured when the request starts; it keeps it to the end.
                let hyper_service = hyper_util::service::TowerToHyperService::new(live.router());
                let call = hyper::service::Service::call(&hyper_service, request);
                async move {
                    let response = call.await?;
                    Ok::<_, std::convert::Infallible>(holding(response, guard))
                }
            })
        };
        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
        let mut stop = stop_rx.clone();
        let table = Arc::clone(&table);
        tasks.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("connection ended: {e}");
                    }
                }
                () = connection.close.notified() => {
                    tracing::debug!("closed an idle connection to make room");
                }
                () = stopping(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            table.closed(&connection);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let limit = live.current().config.drain_timeout;
    let finished = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limit, finished).await.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "requests still in flight after {}s (gateway.drain_timeout_secs): cut off",
            limit.as_secs_f64()
        );
        tasks.shutdown().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_key_stops_working_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut store = crate::keys::KeyStore::open(&path).unwrap();
        let key = store.add("alice", &crate::keys::NewKey::default()).unwrap();
        let file = KeyFile::open(&path).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key.parse().unwrap());
        assert_eq!(key_of(&file.current().unwrap(), &headers, None).unwrap().name, "alice");
        store.revoke("alice", None).unwrap();
        assert!(key_of(&file.current().unwrap(), &headers, None).is_err());
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

    #[test]
    fn gemini_token_counts_are_read_from_usage_metadata() {
        let mut u = Usage::default();
        let meta = |out: u64| {
            format!(
                r#"{{"candidates":[],"usageMetadata":{{"promptTokenCount":30,"candidatesTokenCount":{out},"thoughtsTokenCount":4}}}}"#
            )
        };
        u.feed(format!("data: {}\r\n\r\ndata: {}\r\n\r\n", meta(2), meta(7)).as_bytes());
        u.finish();
        assert_eq!((u.input, u.output), (30, 11));
        // Google's whole answers are spread over lines.
        let mut u = Usage::default();
        let pretty = serde_json::to_vec_pretty(&serde_json::from_str::<serde_json::Value>(&meta(5)).unwrap()).unwrap();
        u.feed(&pretty);
        u.document(&pretty);
        u.finish();
        assert_eq!((u.input, u.output), (30, 9));
    }

    #[test]
    fn the_full_answer_is_well_framed() {
        let text = std::str::from_utf8(FULL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())), "{head}");
    }

    #[test]
    fn a_full_table_makes_room_by_closing_an_idle_connection() {
        assert_eq!(admission(3, 3, 4), Admission::Admit);
        assert_eq!(admission(4, 1, 4), Admission::Evict);
        assert_eq!(admission(4, 0, 4), Admission::Refuse);
        let table = Connections::default();
        let first = table.admit(2).unwrap();
        let second = table.admit(2).unwrap();
        table.request_started(&second);
        // Full: the idle one (first) goes, the busy one stays.
        let third = table.admit(2).unwrap();
        assert!(first.evicted.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!second.evicted.load(std::sync::atomic::Ordering::SeqCst));
        table.request_started(&third);
        assert!(table.admit(2).is_none(), "every connection busy: refused");
        table.request_ended(&third);
        assert!(table.admit(2).is_some(), "idle again: it makes room");
        table.closed(&first);
        assert_eq!(lock(&table.state).open, 2);
        // A connection that ends mid-request is not made idle by the request's end.
        let busy = table.admit(3).unwrap();
        table.request_started(&busy);
        table.closed(&busy);
        table.request_ended(&busy);
        assert!(
            lock(&table.state).idle.values().all(|c| !Arc::ptr_eq(c, &busy)),
            "a closed connection came back as idle"
        );
    }
}
