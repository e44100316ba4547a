//! Who may do what: roles, per-key narrowing, limits with 429 and
//! `Retry-After`, a daily budget spent mid-stream, revoked and old keys.

use super::*;
use airlock_gateway::keys::{KeyPolicy, KeyStore, Limits, NewKey, PrincipalKind, Role};

const ADMIN: &str = "alk_a000000000000000000000000000000000000000000000000000000000000000";
const DEV: &str = "alk_d000000000000000000000000000000000000000000000000000000000000000";
const CI: &str = "alk_c000000000000000000000000000000000000000000000000000000000000000";
const AUDITOR: &str = "alk_e000000000000000000000000000000000000000000000000000000000000000";

fn key(name: &str, role: Role, models: &[&str], limits: Limits) -> KeyPolicy {
    KeyPolicy {
        name: name.into(),
        role,
        kind: PrincipalKind::Person,
        models: models.iter().map(|m| m.to_string()).collect(),
        upstreams: Vec::new(),
        limits,
    }
}

/// The scripted upstream, and a gateway in front of it with `auth` and the `[roles]` table `roles`.
async fn start(auth: Auth, roles: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let gate = Arc::new(tokio::sync::Notify::new());
    let up = Upstream { seen: seen.clone(), db: db.clone(), gate: gate.clone() };
    let app = axum::Router::new().fallback(upstream_handler).with_state(up);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = GatewayConfig::parse(
        &format!(
            r#"
            [gateway]
            upstream_timeout_secs = 5
            [[upstream]]
            name = "openai"
            api = "openai"
            base_url = "http://{upstream}"
            models = ["gpt-*"]
            [[upstream]]
            name = "claude"
            api = "anthropic"
            base_url = "http://{upstream}"
            models = ["claude-*"]
            {roles}
            "#
        ),
        Path::new("test.toml"),
        &|_| None,
    )
    .unwrap();
    let store = SqliteStore::open(&db, Durability::Durable).unwrap();
    let signer = Signer::generate("gateway-test").unwrap();
    let log = AuditLog::open(store, signer, "airlock.test/gateway", [3; 32], CheckpointEvery::default()).unwrap();
    let writer = AuditWriter::spawn(log).unwrap();
    let handle = writer.handle();
    std::mem::forget(writer);
    let gw = Gateway::new(config, auth, handle, Arc::new(airlock_redact::Scanner::builtin())).unwrap();
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
    Env { _dir: dir, db, gateway, key: String::new(), seen, gate }
}

fn keys(list: Vec<(&str, KeyPolicy)>) -> Auth {
    Auth::Keys(list.into_iter().map(|(k, p)| (airlock_gateway::keys::digest(k), p)).collect())
}

impl Env {
    fn post_as(&self, key: &str, path: &str, body: serde_json::Value) -> reqwest::RequestBuilder {
        reqwest::Client::new().post(format!("http://{}{path}", self.gateway)).bearer_auth(key).json(&body)
    }

    /// The `blocked_egress` reasons on the record so far (at least `n`).
    async fn refusals(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let all = self.audit(0).await;
            let reasons: Vec<String> = all
                .iter()
                .filter(|(kind, _)| kind == "blocked_egress")
                .map(|(_, p)| p["reason"].as_str().unwrap().to_string())
                .collect();
            if reasons.len() >= n {
                return reasons;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} refusals were recorded");
    }

    fn upstream_requests(&self) -> usize {
        self.seen.lock().unwrap().bodies.len()
    }
}

fn messages(model: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
}

/// Waits for a fresh UTC minute when this one is nearly over, so that a
/// test counting requests in one minute does not straddle two.
async fn early_in_a_minute() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let into = now.as_millis() % 60_000;
    if into > 50_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into) as u64 + 50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_may_do_what_it_is_allowed_and_no_more() {
    let roles = r#"
        [roles.developer]
        models = ["gpt-*"]
        [roles.ci]
        models = ["gpt-4o-mini"]
        upstreams = ["openai"]
    "#;
    let auth = keys(vec![
        (ADMIN, key("root", Role::Admin, &[], Limits::default())),
        (DEV, key("alice", Role::Developer, &[], Limits::default())),
        (CI, key("build", Role::Ci, &[], Limits::default())),
        (AUDITOR, key("eve", Role::Auditor, &[], Limits::default())),
    ]);
    let env = start(auth, roles).await;
    let status = |r: reqwest::Response| r.status().as_u16();
    // admin: every model.
    assert_eq!(status(env.post_as(ADMIN, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap()), 200);
    assert_eq!(status(env.post_as(ADMIN, "/v1/messages", messages("claude-sonnet-4")).send().await.unwrap()), 200);
    // developer: the role's models only, refused in the caller's API format.
    assert_eq!(status(env.post_as(DEV, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap()), 200);
    let r = env.post_as(DEV, "/v1/messages", messages("claude-sonnet-4")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "permission_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("alice (developer) may not use model \"claude-sonnet-4\": its role"), "{message}");
    // ci: its one model.
    assert_eq!(status(env.post_as(CI, "/v1/chat/completions", chat("gpt-4o-mini", "hi")).send().await.unwrap()), 200);
    assert_eq!(status(env.post_as(CI, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap()), 403);
    let sent = env.upstream_requests();
    assert_eq!(sent, 4);
    // auditor: no model at all, on any API.
    for (path, body) in [("/v1/chat/completions", chat("gpt-4o", "hi")), ("/v1/messages", messages("claude-sonnet-4"))]
    {
        let r = env.post_as(AUDITOR, path, body).send().await.unwrap();
        assert_eq!(r.status(), 403);
        let text = r.text().await.unwrap();
        assert!(text.contains("eve is an auditor: an auditor may read the audit log but not use models"), "{text}");
    }
    assert_eq!(env.upstream_requests(), sent, "an auditor's request reached the upstream");
    let reasons = env.refusals(4).await;
    assert!(reasons.iter().any(|r| r.contains("alice (developer) may not use model")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("build (ci) may not use model \"gpt-4o\"")), "{reasons:?}");
    assert_eq!(reasons.iter().filter(|r| r.contains("eve is an auditor")).count(), 2, "{reasons:?}");
    // What the audit endpoints ask of a principal.
    let may =
        |role| (key("x", role, &[], Limits::default()).may_use_models(), KeyPolicy::new("x", role).may_read_log());
    assert_eq!(may(Role::Admin), (true, true));
    assert_eq!(may(Role::Developer), (true, false));
    assert_eq!(may(Role::Ci), (true, false));
    assert_eq!(may(Role::Auditor), (false, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_narrows_its_role_and_never_widens_it() {
    let roles = r#"
        [roles.developer]
        models = ["gpt-*"]
        max_request_bytes = 100000
    "#;
    // The key names every model and a larger size: the role's still hold.
    let wide =
        key("wide", Role::Developer, &["*"], Limits { max_request_bytes: Some(10_000_000), ..Limits::default() });
    let narrow =
        key("narrow", Role::Developer, &["gpt-4o-mini"], Limits { max_request_bytes: Some(300), ..Limits::default() });
    let env = start(keys(vec![(DEV, wide), (CI, narrow)]), roles).await;
    let r = env.post_as(DEV, "/v1/messages", messages("claude-sonnet-4")).send().await.unwrap();
    assert_eq!(r.status(), 403, "a key widened its role's models");
    let big = chat("gpt-4o", &"x".repeat(150_000));
    let r = env.post_as(DEV, "/v1/chat/completions", big).send().await.unwrap();
    assert_eq!(r.status(), 413, "a key widened its role's max_request_bytes");
    let text = r.text().await.unwrap();
    assert!(text.contains("more than the 100000 bytes wide (developer) may send"), "{text}");
    // The narrow key: its own model list and size.
    let r = env.post_as(CI, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["message"], "the key of narrow may not use model \"gpt-4o\"");
    let r = env.post_as(CI, "/v1/chat/completions", chat("gpt-4o-mini", &"y".repeat(400))).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let r = env.post_as(CI, "/v1/chat/completions", chat("gpt-4o-mini", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.upstream_requests(), 1);
    let reasons = env.refusals(4).await;
    assert_eq!(reasons.len(), 4, "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_over_the_limit_get_429_with_retry_after_and_a_record() {
    // The role allows 5 a minute, the key 2: the key's holds.
    let roles = "[roles.ci]\nrequests_per_minute = 5\n";
    let k = key("build", Role::Ci, &[], Limits { requests_per_minute: Some(2), ..Limits::default() });
    let other = key("other", Role::Ci, &[], Limits::default());
    let env = start(keys(vec![(CI, k), (DEV, other)]), roles).await;
    early_in_a_minute().await;
    for _ in 0..2 {
        let r = env.post_as(CI, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let r = env.post_as(CI, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    // When this minute ends.
    let expected = 60 - before % 60;
    assert!((1..=60).contains(&retry) && retry.abs_diff(expected) <= 1, "Retry-After {retry}, expected {expected}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], 429);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("build (ci) has used 2 of its requests_per_minute = 2")
    );
    // On the Anthropic API, its own format.
    let r = env.post_as(CI, "/v1/messages", messages("claude-sonnet-4")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!((body["type"].as_str(), body["error"]["type"].as_str()), (Some("error"), Some("rate_limit_error")));
    // Another principal of the same role is counted apart.
    let r = env.post_as(DEV, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.upstream_requests(), 3);
    let reasons = env.refusals(2).await;
    assert!(reasons.iter().all(|r| r.contains("requests_per_minute = 2") && r.contains("retry after")), "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_the_upstream_reports_are_counted_against_tokens_per_minute() {
    let k = key("alice", Role::Developer, &[], Limits { tokens_per_minute: Some(10), ..Limits::default() });
    let env = start(keys(vec![(DEV, k)]), "").await;
    early_in_a_minute().await;
    // The answer reports 9 + 2 tokens: the budget was not spent when it was
    // admitted, and is after.
    let r = env.post_as(DEV, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    let r = env.post_as(DEV, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("has used 11 of its tokens_per_minute = 10"));
}

/// The events of an SSE body, each a (event name, data) pair; panics on a
/// body that does not end with a complete event.
fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    let body = body.replace("\r\n", "\n");
    assert!(body.ends_with("\n\n"), "the stream does not end at an event boundary: {body:?}");
    body.trim_end()
        .split("\n\n")
        .map(|event| {
            let mut name = None;
            let mut data = String::new();
            for line in event.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                } else {
                    panic!("not an SSE line: {line:?}");
                }
            }
            (name, data)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_budget_spent_mid_stream_ends_the_stream_cleanly_and_is_recorded() {
    // 15 tokens a day: the stream's first event (5 bytes of text: about 2
    // tokens) passes; its next reports 13 + 8 = 21, over the budget.
    let roles = "[roles.developer]\ndaily_tokens = 1000\n";
    let k = key("alice", Role::Developer, &[], Limits { daily_tokens: Some(15), ..Limits::default() });
    let env = start(keys(vec![(DEV, k)]), roles).await;
    let body = serde_json::json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let r = env.post_as(DEV, "/v1/chat/completions", body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (first, rest) = streamed_in_pieces(r, &env.gate).await;
    assert!(first.contains("\"first\""), "{first}");
    let events = sse_events(&format!("{first}{rest}"));
    // The upstream's usage event was held back; an error event in OpenAI's format, then [DONE].
    assert!(!rest.contains("completion_tokens"), "{rest}");
    assert_eq!(events.len(), 3, "{events:?}");
    let error: serde_json::Value = serde_json::from_str(&events[1].1).unwrap();
    assert_eq!(error["error"]["type"], "rate_limit_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("daily token budget of alice (daily_tokens = 15, UTC day) is spent"), "{message}");
    assert_eq!(events[2].1, "[DONE]");
    // On the record: the answer was cut for the budget, with what the upstream reported.
    let entries = env.audit(2).await;
    let response = entries.iter().find(|(k, _)| k == "model_response").map(|(_, p)| p.clone()).unwrap();
    let outcome = response["outcome"].as_str().unwrap();
    assert!(outcome.starts_with("cut: the daily token budget of alice"), "{outcome}");
    assert_eq!((response["input_tokens"].as_u64(), response["output_tokens"].as_u64()), (Some(13), Some(8)));
    // The budget is spent: the next request waits for the next UTC day.
    let r = env.post_as(DEV, "/v1/messages", messages("claude-sonnet-4")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(retry.abs_diff(86_400 - now % 86_400) <= 1, "Retry-After {retry}");
    assert!(r.text().await.unwrap().contains("daily_tokens = 15 (UTC day)"));
    let reasons = env.refusals(1).await;
    assert!(reasons[0].contains("has used 21 of its daily_tokens = 15"), "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_stream_over_budget_ends_with_an_anthropic_error_event() {
    // message_start alone reports 13 input tokens, over a budget of 10: not
    // even it is passed on, only the error.
    let k = key("alice", Role::Developer, &[], Limits { daily_tokens: Some(10), ..Limits::default() });
    let env = start(keys(vec![(DEV, k)]), "").await;
    let mut body = messages("claude-sonnet-4");
    body["stream"] = serde_json::json!(true);
    let r = env.post_as(DEV, "/v1/messages", body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Nothing waits on the upstream's gate: the gateway ended the stream itself.
    let text = tokio::time::timeout(Duration::from_secs(5), r.text()).await.unwrap().unwrap();
    let events = sse_events(&text);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0.as_deref(), Some("error"));
    let error: serde_json::Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!((error["type"].as_str(), error["error"]["type"].as_str()), (Some("error"), Some("rate_limit_error")));
    env.gate.notify_one();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_key_files_are_read_and_a_revoked_key_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway-keys.json");
    // As `airlock gateway key add` wrote it before principals had roles.
    let old = serde_json::json!([{"name": "alice", "sha256": airlock_gateway::keys::digest(DEV),
        "created_ms": 1_700_000_000_000_i64, "revoked_ms": null, "models": ["gpt-*"]}]);
    std::fs::write(&path, old.to_string()).unwrap();
    let mut store = KeyStore::open(&path).unwrap();
    let ci = store
        .add(
            "build",
            &NewKey {
                role: Some(Role::Ci),
                kind: Some(PrincipalKind::Ci),
                limits: Limits { requests_per_minute: Some(100), ..Limits::default() },
                ..NewKey::default()
            },
        )
        .unwrap();
    let auditor = store.add("eve", &NewKey { role: Some(Role::Auditor), ..NewKey::default() }).unwrap();
    let env = start(Auth::KeyFile(airlock_gateway::server::KeyFile::open(&path).unwrap()), "").await;
    // The old key: a developer, limited to its models.
    let r = env.post_as(DEV, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = env.post_as(DEV, "/v1/messages", messages("claude-sonnet-4")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(env.post_as(&ci, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap().status(), 200);
    assert_eq!(env.post_as(&auditor, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap().status(), 403);
    // Rotation: a second key for build, then the first revoked; the gateway is not restarted.
    let rotated = store.add("build", &NewKey::default()).unwrap();
    let first = store.list().iter().find(|k| k.sha256 == airlock_gateway::keys::digest(&ci)).unwrap().id().to_string();
    store.revoke("build", Some(&first)).unwrap();
    let r = env.post_as(&ci, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 401, "a revoked key was still honoured");
    assert_eq!(env.post_as(&rotated, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap().status(), 200);
    store.revoke("alice", None).unwrap();
    let r = env.post_as(DEV, "/v1/chat/completions", chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(env.upstream_requests(), 3);
}
