//! Issue 14, class 5: nothing leaves that was not redacted and recorded.
//! Each test plants a canary secret where the old gateway let it through
//! (the query string, a protocol-named key in tool arguments, a header, the
//! model name) and checks the upstream never sees it, the audit log never
//! holds it, and the record shows what was done.

use super::*;

/// An AWS access key id the built-in rules find.
const CANARY: &str = "AKIAZ7Q3JXVB4HNW2KDE";

/// The audit database as bytes: a canary must be nowhere in it.
fn db_holds(env: &Env, needle: &str) -> bool {
    let bytes = std::fs::read(&env.db).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn upstream_saw(env: &Env, needle: &str) -> bool {
    let seen = env.seen.lock().unwrap();
    seen.bodies.iter().any(|b| b.contains(needle))
        || seen.uris.iter().any(|u| u.contains(needle))
        || seen.headers.iter().any(|h| h.values().any(|v| String::from_utf8_lossy(v.as_bytes()).contains(needle)))
}

fn notes(entry: &serde_json::Value) -> Vec<(String, String)> {
    entry["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["rule"].as_str().unwrap().to_string(), n["field"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_string_never_leaves_and_its_refusal_is_recorded() {
    let env = Env::start().await;
    let r = env.post(&format!("/v1/chat/completions?key={CANARY}"), chat("gpt-4o", "hi")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("query string"));
    let log = env.audit(1).await;
    assert_eq!(log[0].0, "blocked_egress");
    let destination = log[0].1["destination"].as_str().unwrap();
    assert!(destination.starts_with("broker:POST /v1/chat/completions?(query: 24 bytes"), "{destination}");
    assert!(env.seen.lock().unwrap().bodies.is_empty(), "nothing reached the upstream");

    // The one query passed on is Claude Code's constant, and the upstream
    // records queries: a leaked one would be seen.
    let r = env
        .post(
            "/v1/messages?beta=true",
            serde_json::json!({"model": "claude-sonnet-4", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.seen.lock().unwrap().uris, ["/v1/messages?beta=true"]);
    assert!(!upstream_saw(&env, CANARY));
    env.audit(3).await;
    assert!(!db_holds(&env, CANARY), "the audit log holds the query");
}

/// The old gateway skipped every string under `id`, `type`, `object`,
/// `media_type`, … at any depth (see body.rs's `old_rule_skips`): a tool's
/// arguments with such keys went out as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_named_keys_in_tool_arguments_are_redacted() {
    let env = Env::start().await;
    let body = serde_json::json!({
        "model": "claude-sonnet-4", "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "deploy"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "deploy", "input": {"id": CANARY, "type": CANARY, "object": CANARY, "media_type": CANARY}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                "content": "ok"}]},
        ],
    });
    let r = env.post("/v1/messages", body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!upstream_saw(&env, CANARY), "a protocol-named key carried the canary out");
    let sent = env.seen.lock().unwrap().bodies[0].clone();
    assert!(sent.contains("\"id\":\"toolu_01A09q90qw90lq917835lq9\""), "the real protocol id was kept: {sent}");
    let log = env.audit(2).await;
    let fields: Vec<String> = notes(&log[0].1).into_iter().map(|(_, f)| f).collect();
    for key in ["id", "type", "object", "media_type"] {
        assert!(fields.contains(&format!("/messages/1/content/0/input/{key}")), "{key}: {fields:?}");
    }
    assert!(!db_holds(&env, CANARY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_allowlisted_and_what_was_held_back_is_recorded() {
    let env = Env::start().await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", env.gateway))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", format!("prompt-caching-2024-07-31,{CANARY}"))
        .header("accept", format!("application/json, text/{CANARY}"))
        .header("x-stainless-os", "Linux")
        .header("x-trace", format!("token={CANARY}"))
        .json(&serde_json::json!({"model": "claude-sonnet-4", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!upstream_saw(&env, CANARY), "a header carried the canary out");
    {
        let seen = env.seen.lock().unwrap();
        let h = &seen.headers[0];
        assert_eq!(h["anthropic-version"], "2023-06-01");
        assert_eq!(h["anthropic-beta"], "prompt-caching-2024-07-31");
        // (The gateway's own client sends its default `accept: */*`.)
        assert!(h.get("accept").is_none_or(|v| v == "*/*"), "{h:?}");
        assert!(h.get("x-stainless-os").is_none() && h.get("x-trace").is_none());
    }
    let log = env.audit(2).await;
    let noted = notes(&log[0].1);
    for field in ["header:anthropic-beta", "header:accept", "header:x-stainless-os", "header:x-trace"] {
        assert!(noted.iter().any(|(_, f)| f == field), "{field} not on the record: {noted:?}");
    }
    // Where a scan finds a secret in a held-back header, the record names its rule.
    assert!(noted.contains(&("aws-access-key-id".to_string(), "header:x-trace".to_string())), "{noted:?}");
    assert!(!db_holds(&env, CANARY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_the_model_name_reaches_neither_the_upstream_nor_the_log() {
    let env = Env::start().await;
    // Routed by the `gpt-*` pattern: the upstream gets the placeholder.
    let r = env.post("/v1/chat/completions", chat(&format!("gpt-{CANARY}"), "hi")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Not routed: refused, and the refusal names the placeholder.
    let r = env.post("/v1/chat/completions", chat(&format!("o3-{CANARY}"), "hi")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.text().await.unwrap().contains(CANARY));
    assert!(!upstream_saw(&env, CANARY), "the model name carried the canary out");
    let log = env.audit(3).await;
    let request = log.iter().find(|e| e.0 == "model_request").unwrap();
    assert!(notes(&request.1).iter().any(|(rule, f)| rule == "aws-access-key-id" && f == "/model"), "{request:?}");
    assert!(request.1["model"].as_str().unwrap().starts_with("gpt-«"), "{request:?}");
    assert!(!db_holds(&env, CANARY), "the model name is in the audit log in plaintext");
}

/// The record's count is every change made to what left, wherever it was
/// made: body, model, headers, removed tools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redaction_count_covers_every_change() {
    let env = Env::start().await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/responses", env.gateway))
        .bearer_auth(KEY)
        .header("originator", "codex_exec")
        .header("x-leak", CANARY)
        .json(&serde_json::json!({
            "model": format!("gpt-{CANARY}"),
            "input": [{"role": "user", "content": [{"type": "input_text", "text": format!("key {CANARY}")}]}],
            "tools": [{"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
                      {"type": "web_search"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!upstream_saw(&env, CANARY));
    let log = env.audit(3).await;
    let request = log.iter().find(|e| e.0 == "model_request").unwrap();
    let mut noted = notes(&request.1);
    noted.sort();
    assert_eq!(
        noted,
        [
            ("aws-access-key-id".to_string(), "/input/0/content/0/text".to_string()),
            ("aws-access-key-id".into(), "/model".into()),
            ("aws-access-key-id".into(), "header:x-leak".into()),
            ("header-dropped".into(), "header:originator".into()),
            ("server-tool-removed".into(), "/tools/1".into()),
        ]
    );
}
