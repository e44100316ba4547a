//! The gateway end to end, in process: a scripted upstream on loopback, the
//! gateway in front of it, and clients speaking raw HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod attacks;
mod audit_reads;
mod keys_db;
mod oidc;
mod ops;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_audit::log::{AuditLog, CheckpointEvery};
use airlock_audit::note::Signer;
use airlock_audit::store::{Durability, Filter, Listed, NewEntry, SqliteStore, Store, StoreError, StoredEntry};
use airlock_audit::writer::AuditWriter;
use airlock_gateway::config::GatewayConfig;
use airlock_gateway::server::{Auth, Gateway, serve};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the scripted upstream saw.
#[derive(Default)]
struct Seen {
    bodies: Vec<String>,
    /// Path and query of each request.
    uris: Vec<String>,
    headers: Vec<HeaderMap>,
    /// model_request entries in the audit log when each request arrived.
    recorded_before: Vec<usize>,
}

#[derive(Clone)]
struct Upstream {
    seen: Arc<Mutex<Seen>>,
    db: PathBuf,
    /// Released by the test to let a stream go on after its first chunk.
    gate: Arc<tokio::sync::Notify>,
}

fn model_requests(db: &Path) -> usize {
    let store = SqliteStore::open(db, Durability::Durable).unwrap();
    let mut n = 0;
    store
        .list(&Filter { kind: Some("model_request".into()), ..Filter::default() }, &mut |_| {
            n += 1;
            true
        })
        .unwrap();
    n
}

async fn upstream_handler(
    axum::extract::State(up): axum::extract::State<Upstream>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let recorded = model_requests(&up.db);
    {
        let mut seen = up.seen.lock().unwrap();
        seen.bodies.push(body.clone());
        seen.uris.push(uri.to_string());
        seen.headers.push(headers);
        seen.recorded_before.push(recorded);
    }
    let req: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let model = req["model"].as_str().unwrap_or_default();
    if model == "garbage" {
        return (StatusCode::OK, "<html>upstream exploded</html>").into_response();
    }
    if uri.path().starts_with("/v1beta/models/") {
        return gemini_answer(&up, &uri);
    }
    if uri.path() == "/v1/messages/count_tokens" {
        return axum::Json(serde_json::json!({"input_tokens": 42})).into_response();
    }
    if req["stream"].as_bool() == Some(true) {
        let gate = up.gate.clone();
        let anthropic = uri.path() == "/v1/messages";
        let stream = async_stream(gate, anthropic);
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    if uri.path() == "/v1/messages" {
        return axum::Json(serde_json::json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 11, "output_tokens": 2}
        }))
        .into_response();
    }
    axum::Json(serde_json::json!({
        "id": "c1", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2}
    }))
    .into_response()
}

/// First chunk at once, the rest only when the test opens the gate: a
/// gateway that buffered would never deliver the first chunk.
fn async_stream(
    gate: Arc<tokio::sync::Notify>,
    anthropic: bool,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    let first = if anthropic {
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":13,\"output_tokens\":1}}}\n\n"
    } else {
        "data: {\"choices\":[{\"delta\":{\"content\":\"first\"}}]}\n\n"
    };
    let rest = if anthropic {
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":8}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    } else {
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":13,\"completion_tokens\":8}}\n\ndata: [DONE]\n\n"
    };
    futures_util::stream::unfold(0, move |step| {
        let gate = gate.clone();
        async move {
            match step {
                0 => Some((Ok(first.to_string()), 1)),
                1 => {
                    gate.notified().await;
                    Some((Ok(rest.to_string()), 2))
                }
                _ => None,
            }
        }
    })
}

/// The Gemini API's answers: an SSE stream (first chunk at once, the rest
/// when the gate opens) with `?alt=sse`, else one pretty-printed document
/// (as Google sends them).
fn gemini_answer(up: &Upstream, uri: &axum::http::Uri) -> Response {
    let chunk = |text: &str, out: u64, finish: Option<&str>| {
        let mut c = serde_json::json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 21, "candidatesTokenCount": out, "totalTokenCount": 21 + out}});
        if let Some(f) = finish {
            c["candidates"][0]["finishReason"] = serde_json::json!(f);
        }
        c
    };
    if uri.path().ends_with(":countTokens") {
        return axum::Json(serde_json::json!({"totalTokens": 21})).into_response();
    }
    if uri.query() == Some("alt=sse") {
        let (first, rest) = (chunk("hel", 1, None), chunk("lo", 6, Some("STOP")));
        let gate = up.gate.clone();
        let stream = futures_util::stream::unfold(0, move |step| {
            let gate = gate.clone();
            let (first, rest) = (first.clone(), rest.clone());
            async move {
                match step {
                    0 => Some((Ok::<_, std::io::Error>(format!("data: {first}\r\n\r\n")), 1)),
                    1 => {
                        gate.notified().await;
                        Some((Ok(format!("data: {rest}\r\n\r\n")), 2))
                    }
                    _ => None,
                }
            }
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    let whole = serde_json::to_string_pretty(&chunk("hello", 3, Some("STOP"))).unwrap();
    Response::builder().header("content-type", "application/json; charset=UTF-8").body(Body::from(whole)).unwrap()
}

/// A listener that accepts and then misbehaves: `hang` never answers, else it closes without answering.
async fn broken_upstream(hang: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut sock, _)) = listener.accept().await {
            if hang {
                held.push(sock);
            } else {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                drop(sock);
            }
        }
    });
    addr
}

/// A store whose every append fails, as on a full disk.
struct FullDisk(SqliteStore);

impl Store for FullDisk {
    fn size(&self) -> Result<u64, StoreError> {
        self.0.size()
    }
    fn append(&mut self, _: u64, _: &[NewEntry], _: &[(u32, u64, [u8; 32])]) -> Result<(), StoreError> {
        Err(StoreError::Corrupt { path: "audit.db".into(), what: "no space left on device".into() })
    }
    fn node(&self, level: u32, index: u64) -> Result<Option<[u8; 32]>, StoreError> {
        self.0.node(level, index)
    }
    fn scan(&self, from: u64, visit: &mut dyn FnMut(StoredEntry<'_>) -> bool) -> Result<(), StoreError> {
        self.0.scan(from, visit)
    }
    fn list(&self, filter: &Filter, visit: &mut dyn FnMut(Listed<'_>) -> bool) -> Result<(), StoreError> {
        self.0.list(filter, visit)
    }
    fn add_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        self.0.add_checkpoint(size, note)
    }
    fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.0.checkpoints()
    }
    fn prune_payloads(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        self.0.prune_payloads(before_ms)
    }
}

struct Env {
    _dir: tempfile::TempDir,
    db: PathBuf,
    gateway: SocketAddr,
    key: String,
    seen: Arc<Mutex<Seen>>,
    gate: Arc<tokio::sync::Notify>,
}

const KEY: &str = "alk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// A key limited to one model.
const CI_KEY: &str = "alk_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

impl Env {
    async fn start() -> Env {
        Env::start_with(true).await
    }

    async fn start_with(audit_works: bool) -> Env {
        Env::start_tuned(audit_works, |_| {}).await
    }

    /// A gateway whose configuration `tune` changes first (limits, policy).
    async fn start_tuned(audit_works: bool, tune: impl FnOnce(&mut GatewayConfig)) -> Env {
        Env::start_full(audit_works, false, tune).await
    }

    /// A gateway that records what each request adds to the conversation.
    async fn start_recording_conversations() -> Env {
        Env::start_full(true, true, |_| {}).await
    }

    async fn start_full(audit_works: bool, conversations: bool, tune: impl FnOnce(&mut GatewayConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let gate = Arc::new(tokio::sync::Notify::new());
        let up = Upstream { seen: seen.clone(), db: db.clone(), gate: gate.clone() };
        let app = axum::Router::new().fallback(upstream_handler).with_state(up);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let hang = broken_upstream(true).await;
        let reset = broken_upstream(false).await;

        let mut config = GatewayConfig::parse(
            &format!(
                r#"
                [gateway]
                upstream_timeout_secs = 2
                connect_timeout_secs = 2
                max_request_bytes = 200000
                [[upstream]]
                name = "scripted"
                api = "openai"
                base_url = "http://{upstream}"
                models = ["gpt-*", "garbage"]
                api_key_env = "OPENAI_UPSTREAM"
                [[upstream]]
                name = "claude"
                api = "anthropic"
                base_url = "http://{upstream}"
                models = ["claude-*"]
                api_key_env = "ANTHROPIC_UPSTREAM"
                [[upstream]]
                name = "gemini"
                api = "gemini"
                base_url = "http://{upstream}"
                models = ["gemini-*"]
                api_key_env = "GEMINI_UPSTREAM"
                [[upstream]]
                name = "hangs"
                api = "openai"
                base_url = "http://{hang}"
                models = ["slow"]
                [[upstream]]
                name = "resets"
                api = "openai"
                base_url = "http://{reset}"
                models = ["flaky"]
                "#
            ),
            Path::new("test.toml"),
            &|v| Some(format!("upstream-secret-for-{v}")),
        )
        .unwrap();
        tune(&mut config);
        let signer = Signer::generate("gateway-test").unwrap();
        let store = SqliteStore::open(&db, Durability::Durable).unwrap();
        let handle = if audit_works {
            let log =
                AuditLog::open(store, signer, "airlock.test/gateway", [3; 32], CheckpointEvery::default()).unwrap();
            let writer = AuditWriter::spawn(log).unwrap();
            let handle = writer.handle();
            // The gateway's tasks outlive the test body; the writer's thread
            // lives until the process ends rather than waiting for them.
            std::mem::forget(writer);
            handle
        } else {
            let log =
                AuditLog::open(FullDisk(store), signer, "airlock.test/gateway", [3; 32], CheckpointEvery::default())
                    .unwrap();
            let writer = AuditWriter::spawn(log).unwrap();
            let handle = writer.handle();
            std::mem::forget(writer);
            handle
        };
        let policy = airlock_gateway::keys::KeyPolicy::developer;
        let keys = [
            (airlock_gateway::keys::digest(KEY), policy("alice", &[])),
            (airlock_gateway::keys::digest(CI_KEY), policy("ci", &["gpt-4o-mini"])),
        ]
        .into_iter()
        .collect();
        let scanner = Arc::new(airlock_redact::Scanner::builtin());
        let gw = Gateway::new(config, Auth::Keys(keys), handle, scanner).unwrap();
        let gw = if conversations { gw.recording_conversations() } else { gw };
        let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = probe.local_addr().unwrap();
        drop(probe);
        let listen = airlock_gateway::config::Listen::Tcp(gateway);
        tokio::spawn(async move { serve(gw, &listen, std::future::pending()).await.unwrap() });
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(gateway).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Env { _dir: dir, db, gateway, key: KEY.into(), seen, gate }
    }

    fn post(&self, path: &str, body: serde_json::Value) -> reqwest::RequestBuilder {
        reqwest::Client::new().post(format!("http://{}{path}", self.gateway)).bearer_auth(&self.key).json(&body)
    }

    /// The audit entries so far, as (kind, payload), after the writer caught up.
    async fn audit(&self, at_least: usize) -> Vec<(String, serde_json::Value)> {
        for _ in 0..200 {
            let store = SqliteStore::open(&self.db, Durability::Durable).unwrap();
            let mut out = Vec::new();
            store
                .list(&Filter::default(), &mut |e| {
                    out.push((e.kind.to_string(), serde_json::from_slice(e.payload.unwrap()).unwrap()));
                    true
                })
                .unwrap();
            if out.len() >= at_least {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the audit log never reached {at_least} entries");
    }
}

/// An event stream's first chunk, which must arrive while the upstream is
/// held at `gate` (the gateway passes chunks on, it does not buffer), and
/// the rest once the upstream is let go.
async fn streamed_in_pieces(r: reqwest::Response, gate: &tokio::sync::Notify) -> (String, String) {
    use futures_util::StreamExt;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the first chunk did not arrive before the upstream finished: the gateway buffers")
        .unwrap()
        .unwrap();
    gate.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    (String::from_utf8_lossy(&first).into_owned(), String::from_utf8_lossy(&rest).into_owned())
}

fn chat(model: &str, content: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_recorded_before_it_leaves_and_its_answer_after() {
    let env = Env::start().await;
    let r = env.post("/v1/chat/completions", chat("gpt-4o", "hello")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get_all("content-type").iter().count(), 1, "{:?}", r.headers());
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "hello");
    {
        let seen = env.seen.lock().unwrap();
        assert_eq!(seen.recorded_before, [1], "the upstream got the request before it was on the record");
        // The client's gateway key never leaves; the upstream's own credential is sent.
        let auth = seen.headers[0].get("authorization").unwrap().to_str().unwrap().to_string();
        assert_eq!(auth, "Bearer upstream-secret-for-OPENAI_UPSTREAM");
    }
    let log = env.audit(2).await;
    assert_eq!(log[0].0, "model_request");
    assert_eq!(log[0].1["route"], "openai.chat");
    assert_eq!(log[0].1["principal"], "alice");
    assert_eq!(log[1].0, "model_response");
    assert_eq!(log[1].1["outcome"], "complete");
    assert_eq!((log[1].1["input_tokens"].as_u64(), log[1].1["output_tokens"].as_u64()), (Some(9), Some(2)));
}

/// A conversation two requests long: a turn, a command the model ran with a
/// secret in it and in its result, then the person's next turn.
fn conversation_requests() -> [serde_json::Value; 2] {
    let secret = "AKIAZ7Q3JXVB4HNW2KDE";
    let tools = serde_json::json!([{"type": "function", "function": {"name": "shell", "parameters": {}}}]);
    let first = serde_json::json!({"model": "gpt-4o", "tools": tools, "messages": [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "deploy it"},
    ]});
    let second = serde_json::json!({"model": "gpt-4o", "tools": tools, "messages": [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "deploy it"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "shell", "arguments": format!("{{\"command\":\"AWS_ACCESS_KEY_ID={secret} ./deploy\"}}")}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": format!("deployed with aws_access_key_id = {secret}")},
        {"role": "assistant", "content": "Deployed."},
        {"role": "user", "content": "now tag the release"},
    ]});
    [first, second]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_and_tool_calls_are_recorded_right_after_their_request_once_and_redacted() {
    let env = Env::start_recording_conversations().await;
    let [first, second] = conversation_requests();
    for body in [&first, &second, &second] {
        let r = env.post("/v1/chat/completions", body.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let log = env.audit(9).await;
    let kinds: Vec<&str> = log.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "model_request",
            "agent_turn",
            "model_response",
            "model_request",
            "agent_tool_call",
            "agent_turn",
            "model_response",
            // The same history again adds nothing.
            "model_request",
            "model_response",
        ]
    );
    assert_eq!(log[1].1["text"], "deploy it");
    assert_eq!(log[4].1["name"], "shell");
    assert_eq!(log[4].1["call_id"], "call_1");
    assert_eq!(log[4].1["answered"], true);
    let command = log[4].1["arguments"].as_str().unwrap();
    assert!(command.ends_with(" ./deploy"), "{command}");
    assert_eq!(log[5].1["text"], "now tag the release");
    let recorded = serde_json::to_string(&log).unwrap();
    assert!(!recorded.contains("AKIAZ7Q3JXVB4HNW2KDE"), "a secret reached the log: {recorded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_records_no_conversation_unless_asked() {
    let env = Env::start().await;
    let [_, second] = conversation_requests();
    let r = env.post("/v1/chat/completions", second).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let log = env.audit(2).await;
    let kinds: Vec<&str> = log.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["model_request", "model_response"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_pass_chunk_by_chunk() {
    let env = Env::start().await;
    for (path, model, body) in [
        ("/v1/chat/completions", "gpt-4o", serde_json::json!({"model": "gpt-4o", "stream": true, "messages": []})),
        (
            "/v1/messages",
            "claude-sonnet-4",
            serde_json::json!({"model": "claude-sonnet-4", "stream": true, "max_tokens": 10, "messages": []}),
        ),
    ] {
        let r = env.post(path, body).send().await.unwrap();
        assert_eq!(r.status(), 200, "{model}");
        let (first, rest) = streamed_in_pieces(r, &env.gate).await;
        assert!(first.contains("data:"));
        assert!(rest.contains("usage"), "{model}");
    }
    let log = env.audit(4).await;
    let responses: Vec<&serde_json::Value> = log.iter().filter(|e| e.0 == "model_response").map(|e| &e.1).collect();
    assert_eq!((responses[0]["input_tokens"].as_u64(), responses[0]["output_tokens"].as_u64()), (Some(13), Some(8)));
    assert_eq!((responses[1]["input_tokens"].as_u64(), responses[1]["output_tokens"].as_u64()), (Some(13), Some(8)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_headers_pass_unchanged_and_count_tokens_works() {
    let env = Env::start().await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", env.gateway))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31,tools-2024-05-16")
        .json(&serde_json::json!({"model": "claude-sonnet-4", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let counted = env
        .post("/v1/messages/count_tokens", serde_json::json!({"model": "claude-sonnet-4", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(counted.json::<serde_json::Value>().await.unwrap()["input_tokens"], 42);
    let seen = env.seen.lock().unwrap();
    let h = &seen.headers[0];
    assert_eq!(h["anthropic-version"], "2023-06-01");
    assert_eq!(h["anthropic-beta"], "prompt-caching-2024-07-31,tools-2024-05-16");
    assert_eq!(h["x-api-key"], "upstream-secret-for-ANTHROPIC_UPSTREAM");
    assert!(h.get("authorization").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_valid_key_are_refused_in_their_apis_format() {
    let env = Env::start().await;
    let client = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", env.gateway);
    let none = client.post(url("/v1/chat/completions")).json(&chat("gpt-4o", "x")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    let wrong = client
        .post(url("/v1/messages"))
        .header("x-api-key", "alk_nope")
        .json(&chat("claude-x", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!((body["type"].as_str(), body["error"]["type"].as_str()), (Some("error"), Some("authentication_error")));
    assert!(env.seen.lock().unwrap().bodies.is_empty());
    assert_eq!(client.get(url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_no_upstream_serves_is_refused_and_recorded() {
    let env = Env::start().await;
    let r = env.post("/v1/chat/completions", chat("o3-secret-model", "x")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("no upstream serves model"));
    let log = env.audit(1).await;
    assert_eq!(log[0].0, "blocked_egress");
    assert_eq!(log[0].1["destination"], "model:o3-secret-model");
    // A key limited to one model gets that model only.
    let limited = |model: &str| {
        reqwest::Client::new()
            .post(format!("http://{}/v1/chat/completions", env.gateway))
            .bearer_auth(CI_KEY)
            .json(&chat(model, "x"))
            .send()
    };
    assert_eq!(limited("gpt-4o-mini").await.unwrap().status(), 200);
    let r = limited("gpt-4o").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("the key of ci may not use model"));
    env.seen.lock().unwrap().bodies.clear();
    // An Anthropic model asked for on the OpenAI route is refused too.
    let r = env.post("/v1/chat/completions", chat("claude-sonnet-4", "x")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(env.seen.lock().unwrap().bodies.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_to_a_path_that_is_not_a_model_api_is_refused_and_recorded_with_its_size() {
    let env = Env::start().await;
    let telemetry = serde_json::json!({"events": "x".repeat(1000)});
    let sent = telemetry.to_string().len() as u64;
    let r = env.post("/api/event_logging/batch?token=abc", telemetry).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let log = env.audit(1).await;
    assert_eq!(log[0].0, "blocked_egress");
    assert_eq!(log[0].1["destination"], "broker:POST /api/event_logging/batch", "the query is not kept");
    assert_eq!(log[0].1["bytes"], sent);
    assert!(env.seen.lock().unwrap().bodies.is_empty(), "nothing reached the upstream");
    // Without a valid key nothing is recorded: only callers are.
    let r = reqwest::Client::new().post(format!("http://{}/api/x", env.gateway)).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_upstream_gets_a_clear_error_and_a_record_never_a_hang() {
    let env = Env::start().await;
    let started = std::time::Instant::now();
    let slow = env.post("/v1/chat/completions", chat("slow", "x")).send().await.unwrap();
    assert_eq!(slow.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(10));
    let reset = env.post("/v1/chat/completions", chat("flaky", "x")).send().await.unwrap();
    assert_eq!(reset.status(), 502);
    let said: serde_json::Value = reset.json().await.unwrap();
    assert!(said["error"]["message"].as_str().unwrap().contains("upstream resets failed"), "{said}");
    let garbage = env.post("/v1/chat/completions", chat("garbage", "x")).send().await.unwrap();
    assert_eq!(garbage.status(), 502);
    let said: serde_json::Value = garbage.json().await.unwrap();
    assert!(said["error"]["message"].as_str().unwrap().contains("not JSON"), "{said}");
    let log = env.audit(6).await;
    let outcomes: Vec<String> =
        log.iter().filter(|e| e.0 == "model_response").map(|e| e.1["outcome"].as_str().unwrap().to_string()).collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(outcomes[0].contains("did not answer in time"), "{outcomes:?}");
    assert!(outcomes[1].contains("failed"), "{outcomes:?}");
    assert!(outcomes[2].contains("not JSON"), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_stream_is_recorded() {
    use futures_util::StreamExt;
    let env = Env::start().await;
    let r = env
        .post("/v1/chat/completions", serde_json::json!({"model": "gpt-4o", "stream": true, "messages": []}))
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let log = env.audit(2).await;
    assert_eq!(log[1].0, "model_response");
    assert!(log[1].1["outcome"].as_str().unwrap().contains("client disconnected"), "{:?}", log[1]);
    env.gate.notify_one();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_leaves_when_the_audit_log_cannot_record_it() {
    let env = Env::start_with(false).await;
    let r = env.post("/v1/chat/completions", chat("gpt-4o", "x")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let said: serde_json::Value = r.json().await.unwrap();
    assert!(said["error"]["message"].as_str().unwrap().contains("was not sent"), "{said}");
    assert!(env.seen.lock().unwrap().bodies.is_empty(), "the upstream got a request that was not recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_are_refused() {
    let env = Env::start().await;
    let big = chat("gpt-4o", &"x".repeat(300_000));
    assert_eq!(env.post("/v1/chat/completions", big).send().await.unwrap().status(), 413);
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", env.gateway))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(env.post("/v1/nope", chat("gpt-4o", "x")).send().await.unwrap().status(), 404);
    assert!(env.seen.lock().unwrap().bodies.is_empty());
}

/// One planted secret of every built-in rule kind (from the redaction
/// corpus), in system text, messages, tool results and tool definitions:
/// the upstream receives none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_no_secret_of_any_kind_reaches_the_upstream() {
    let env = Env::start().await;
    let labels =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../redact/tests/corpus/labels.jsonl"))
            .unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../redact/tests/corpus");
    let mut secrets: Vec<(String, String)> = Vec::new();
    // The corpus line each secret sits on, for rules that need the words around it.
    let mut lines: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for line in labels.lines() {
        let l: serde_json::Value = serde_json::from_str(line).unwrap();
        let rule = l["rule"].as_str().unwrap().to_string();
        if l["encoding"] == "plain" && !secrets.iter().any(|(r, _)| *r == rule) {
            let secret = l["secret"].as_str().unwrap().to_string();
            let text = std::fs::read_to_string(corpus.join(l["file"].as_str().unwrap())).unwrap_or_default();
            let at = l["line"].as_u64().and_then(|n| text.lines().nth((n as usize).saturating_sub(1)));
            if let Some(at) = at.filter(|at| at.contains(&secret)) {
                lines.insert(rule.clone(), at.to_string());
            }
            secrets.push((rule, secret));
        }
    }
    assert!(secrets.len() >= 25, "the corpus names {} rules", secrets.len());
    let context = |rule: &str, secret: &str| match rule {
        "dotenv-secret" => format!("cat .env\nSESSION_SECRET={secret}\n"),
        "generic-secret" => format!("config: password = \"{secret}\""),
        "aws-secret-access-key" => format!("aws_secret_access_key = {secret}"),
        "azure-client-secret" => format!("AZURE_CLIENT_SECRET={secret}"),
        "azure-storage-key" => {
            format!(
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={secret};EndpointSuffix=core.windows.net"
            )
        }
        "database-url" => format!("DATABASE_URL=postgres://app:{secret}@db.internal:5432/app"),
        _ => match lines.get(rule) {
            Some(line) => format!("here it is:\n{line}\n"),
            None => format!("here it is: {secret}"),
        },
    };
    for (i, (rule, secret)) in secrets.iter().enumerate() {
        let text = context(rule, secret);
        let body = match i % 4 {
            0 => serde_json::json!({"model": "claude-sonnet-4", "max_tokens": 5, "system": text, "messages": []}),
            1 => {
                serde_json::json!({"model": "claude-sonnet-4", "max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": text}]}]}]})
            }
            2 => serde_json::json!({"model": "claude-sonnet-4", "max_tokens": 5, "messages": [],
                "tools": [{"name": "deploy", "description": text, "input_schema": {"type": "object"}}]}),
            _ => {
                serde_json::json!({"model": "claude-sonnet-4", "max_tokens": 5, "messages": [{"role": "user", "content": text}]})
            }
        };
        let r = env.post("/v1/messages", body).send().await.unwrap();
        assert_eq!(r.status(), 200, "{rule}");
    }
    let bodies = env.seen.lock().unwrap().bodies.clone();
    let mut leaked = Vec::new();
    for ((rule, secret), body) in secrets.iter().zip(&bodies) {
        // JSON escaping: a PEM's newlines arrive as \n.
        let escaped = serde_json::to_string(secret).unwrap();
        if body.contains(secret.as_str()) || body.contains(escaped.trim_matches('"')) {
            leaked.push(rule.clone());
        }
    }
    assert!(leaked.is_empty(), "secrets reached the upstream: {leaked:?}");
    let log = env.audit(2 * secrets.len()).await;
    let redactions: usize =
        log.iter().filter(|e| e.0 == "model_request").map(|e| e.1["redactions"].as_array().unwrap().len()).sum();
    assert!(redactions >= secrets.len(), "{redactions} redactions recorded for {} secrets", secrets.len());
    for (_, payload) in &log {
        let text = payload.to_string();
        for (rule, secret) in &secrets {
            assert!(!text.contains(secret.as_str()), "the audit log holds a {rule} secret");
        }
    }
}

/// Resolves every name to loopback, as a test DNS.
struct Loopback;

impl airlock_gateway::egress::Resolver for Loopback {
    fn resolve(&self, _host: &str, port: u16) -> futures_util::future::BoxFuture<'_, std::io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_connections_are_on_the_record_before_they_are_made() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let store = SqliteStore::open(&db, Durability::Durable).unwrap();
    let log = AuditLog::open(store, Signer::generate("t").unwrap(), "o", [1; 32], CheckpointEvery::default()).unwrap();
    let writer = AuditWriter::spawn(log).unwrap();
    let recorder = Arc::new(airlock_gateway::egress_audit::AuditRecorder::new(writer.handle(), "egress"));
    std::mem::forget(writer);
    // An echo server standing in for an allowed host.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = echo.accept().await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
    });
    let config = airlock_gateway::egress::EgressConfig {
        allow_domains: vec!["crates.io".into()],
        allow_ports: vec![port],
        allow_private: true,
        ..Default::default()
    };
    let proxy = airlock_gateway::egress::EgressProxy::new(config, recorder, Arc::new(Loopback));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(proxy.serve_tcp(listener, std::future::pending()));

    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("CONNECT crates.io:{port} HTTP/1.1\r\nHost: crates.io:{port}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = vec![0u8; 39];
    c.read_exact(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    c.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello");
    drop(c);

    let mut d = tokio::net::TcpStream::connect(addr).await.unwrap();
    d.write_all(b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    d.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

    let mut kinds = Vec::new();
    for _ in 0..200 {
        let store = SqliteStore::open(&db, Durability::Durable).unwrap();
        kinds.clear();
        store
            .list(&Filter::default(), &mut |e| {
                kinds.push((
                    e.kind.to_string(),
                    serde_json::from_slice::<serde_json::Value>(e.payload.unwrap()).unwrap(),
                ));
                true
            })
            .unwrap();
        if kinds.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The refusal may be recorded before the first tunnel's close: only open-before-close is ordered.
    let at = |kind: &str| kinds.iter().position(|k| k.0 == kind).unwrap_or_else(|| panic!("no {kind}: {kinds:?}"));
    let (open, close, blocked) = (at("egress_open"), at("egress_close"), at("blocked_egress"));
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(open < close);
    assert_eq!(kinds[open].1["host"], "crates.io");
    assert_eq!((kinds[close].1["bytes_up"].as_u64(), kinds[close].1["bytes_down"].as_u64()), (Some(5), Some(5)));
    assert!(kinds[blocked].1["destination"].as_str().unwrap().contains("evil.example"));
}

/// A Gemini API request body with a secret in the person's text and in a tool's result.
fn gemini_body(secret: &str) -> serde_json::Value {
    serde_json::json!({
        "contents": [
            {"role": "user", "parts": [{"text": format!("deploy with {secret}")}]},
            {"role": "model", "parts": [{"functionCall": {"name": "run_shell_command", "args": {"command": "env"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"id": "run_shell_command-1", "name": "run_shell_command",
                "response": {"output": format!("AWS_ACCESS_KEY_ID={secret}")}}}]},
        ],
        "tools": [{"functionDeclarations": [{"name": "run_shell_command", "description": "runs a command"}]}],
        "generationConfig": {"temperature": 0},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_requests_are_redacted_recorded_and_sent_with_the_upstreams_key() {
    let env = Env::start_recording_conversations().await;
    let secret = "AKIAZ7Q3JXVB4HNW2KDE";
    let url = |rest: &str| format!("http://{}/v1beta/models/gemini-2.5-pro:{rest}", env.gateway);
    // The key as Gemini CLI sends it, then as `?key=`.
    let by_header = reqwest::Client::new()
        .post(url("generateContent"))
        .header("x-goog-api-key", KEY)
        .header("x-goog-api-client", "gl-node/22")
        .json(&gemini_body(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
    let answer: serde_json::Value = by_header.json().await.unwrap();
    assert_eq!(answer["candidates"][0]["content"]["parts"][0]["text"], "hello");
    let by_query = reqwest::Client::new()
        .post(url(&format!("countTokens?key={KEY}")))
        .json(&serde_json::json!({"contents": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.json::<serde_json::Value>().await.unwrap()["totalTokens"], 21);
    {
        let seen = env.seen.lock().unwrap();
        assert_eq!(
            seen.uris,
            ["/v1beta/models/gemini-2.5-pro:generateContent", "/v1beta/models/gemini-2.5-pro:countTokens"]
        );
        assert_eq!(seen.recorded_before[0], 1, "recorded before it left");
        for (h, body) in seen.headers.iter().zip(&seen.bodies) {
            // The caller's key never leaves (neither header nor query); the upstream's own goes as x-goog-api-key.
            assert_eq!(h["x-goog-api-key"], "upstream-secret-for-GEMINI_UPSTREAM");
            assert!(
                h.get("authorization").is_none()
                    && h.get("x-api-key").is_none()
                    && h.get("x-goog-api-client").is_none()
            );
            assert!(!body.contains(KEY) && !body.contains(secret), "{body}");
        }
        let sent: serde_json::Value = serde_json::from_str(&seen.bodies[0]).unwrap();
        assert_eq!(sent["generationConfig"]["temperature"], 0);
        assert!(sent["contents"][0]["parts"][0]["text"].as_str().unwrap().starts_with("deploy with "));
    }
    let log = env.audit(6).await;
    let kinds: Vec<&str> = log.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["model_request", "agent_tool_call", "agent_turn", "model_response", "model_request", "model_response"]
    );
    assert_eq!(log[0].1["route"], "gemini.generate_content");
    assert_eq!(log[0].1["model"], "gemini-2.5-pro");
    let fields: Vec<&str> =
        log[0].1["redactions"].as_array().unwrap().iter().map(|n| n["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"/contents/0/parts/0/text"), "{fields:?}");
    assert!(fields.contains(&"/contents/2/parts/0/functionResponse/response/output"), "{fields:?}");
    assert_eq!(
        (log[1].1["name"].as_str(), log[1].1["call_id"].as_str()),
        (Some("run_shell_command"), Some("run_shell_command-1"))
    );
    assert_eq!((log[3].1["input_tokens"].as_u64(), log[3].1["output_tokens"].as_u64()), (Some(21), Some(3)));
    assert_eq!(log[4].1["route"], "gemini.count_tokens");
    let recorded = serde_json::to_string(&log).unwrap();
    assert!(!recorded.contains(secret) && !recorded.contains(KEY), "{recorded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_streams_pass_chunk_by_chunk_with_only_alt_sse_forwarded() {
    let env = Env::start().await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={KEY}", env.gateway))
        .json(&gemini_body("nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (first, rest) = streamed_in_pieces(r, &env.gate).await;
    assert!(first.starts_with("data: {"), "{first:?}");
    assert!(rest.contains("\"finishReason\":\"STOP\""));
    assert_eq!(env.seen.lock().unwrap().uris, ["/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"]);
    let log = env.audit(2).await;
    assert_eq!(log[0].1["route"], "gemini.stream_generate_content");
    assert_eq!((log[1].1["input_tokens"].as_u64(), log[1].1["output_tokens"].as_u64()), (Some(21), Some(6)));
    assert_eq!(log[1].1["outcome"], "complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_requests_the_gateway_does_not_understand_are_refused_in_its_format() {
    let env = Env::start().await;
    let client = reqwest::Client::new();
    let post = |path: &str| client.post(format!("http://{}{path}", env.gateway)).header("x-goog-api-key", KEY);
    let body = serde_json::json!({"contents": []});
    let gemini_error = |status: u16, word: &'static str| {
        move |v: serde_json::Value| {
            assert_eq!(
                (v["error"]["code"].as_u64(), v["error"]["status"].as_str()),
                (Some(u64::from(status)), Some(word)),
                "{v}"
            );
        }
    };
    // No key, a wrong one: refused before anything, in the Gemini API's error format.
    let none = client
        .post(format!("http://{}/v1beta/models/gemini-2.5-pro:generateContent", env.gateway))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    gemini_error(401, "UNAUTHENTICATED")(none.json().await.unwrap());
    let wrong = client
        .post(format!("http://{}/v1beta/models/gemini-2.5-pro:generateContent?key=alk_nope", env.gateway))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // A method not served, a model name that could change the path, a query with more than key and alt=sse.
    let r = post("/v1beta/models/gemini-2.5-pro:embedContent").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 404);
    gemini_error(404, "NOT_FOUND")(r.json().await.unwrap());
    let r = post("/v1beta/models/gemini%2F..%2Fx:generateContent").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = post("/v1beta/models/gemini-2.5-pro:generateContent?alt=sse&upload=AKIAZ7Q3JXVB4HNW2KDE")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    gemini_error(400, "INVALID_ARGUMENT")(r.json().await.unwrap());
    // Not a model route; a model no upstream serves; a Gemini model on another API's route, and the reverse.
    let r = post("/v1beta/cachedContents").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = post("/v1beta/models/palm-2:generateContent").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = post("/v1beta/models/gpt-4o:generateContent").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("OpenAi"));
    let r = env.post("/v1/chat/completions", chat("gemini-2.5-pro", "x")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post("/v1beta/models/gemini-2.5-pro:generateContent").body("not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(env.seen.lock().unwrap().bodies.is_empty(), "nothing reached the upstream");
    let log = env.audit(5).await;
    let destinations: Vec<&str> =
        log.iter().filter(|e| e.0 == "blocked_egress").map(|e| e.1["destination"].as_str().unwrap()).collect();
    let wanted = [
        "broker:POST /v1beta/models/gemini-2.5-pro:embedContent",
        "broker:POST /v1beta/models/gemini%2F..%2Fx:generateContent",
        // The query is not kept: its size and digest are.
        "broker:POST /v1beta/models/gemini-2.5-pro:generateContent?(query: 35 bytes, sha256 ",
        "broker:POST /v1beta/cachedContents",
        "model:palm-2",
    ];
    assert_eq!(destinations.len(), wanted.len(), "{destinations:?}");
    for (got, want) in destinations.iter().zip(wanted) {
        assert!(got.starts_with(want), "{got} is not {want}");
    }
    let recorded = serde_json::to_string(&log).unwrap();
    assert!(!recorded.contains("AKIAZ7Q3JXVB4HNW2KDE"), "{recorded}");
}
