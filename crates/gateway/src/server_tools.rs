//! Server-side tools: tools the vendor runs on its own machines (web search
//! and fetch, remote MCP servers, code execution, file search, image
//! generation). With one of them the model reaches the network, or runs code,
//! from the vendor's side, where airlock's egress allowlist and sandbox do not
//! apply. So they are taken out of a request unless the policy names them
//! (`[gateway] allow_server_tools`), and what was taken out is recorded.
//!
//! Client tools stay: ones the agent declares and runs itself (`function`,
//! `custom`), and the vendor-defined ones that the *client* executes inside
//! the sandbox: Anthropic's `bash_*`, `text_editor_*`, `computer_*` and
//! `memory_*`, OpenAI's `local_shell`, `shell`, `apply_patch` and
//! `computer_use_preview` (the model only asks; the agent acts). Any other
//! tool type, including ones invented after this was written, counts as
//! server-side: unknown is stripped, not trusted.
//!
//! Why strip and not refuse: agents declare these tools on every request
//! (Codex CLI always sends `{"type": "web_search"}`), so refusing would make
//! them unusable under airlock while stripping costs the model only a tool
//! it may not use anyway. Stripping is not silent: each removal goes on the
//! record (a `blocked_egress` entry and a note in the request's redactions),
//! and the answer carries `x-airlock-removed-tools`. A request that *forces*
//! a removed tool (`tool_choice`) cannot be served honestly and is refused.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::body::Schema;

/// A server-side tool taken out of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// Its type as the request named it (`web_search_20250305`, `mcp`, `mcp_servers`).
    pub tool: String,
    /// Where it was, as a JSON pointer (`/tools/2`, `/mcp_servers`).
    pub field: String,
    /// SHA-256 of what was removed (its JSON), never the thing itself.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A request that forces a server-side tool the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tool_choice forces the server-side tool {tool:?}, which runs on the vendor's side, outside airlock's egress allowlist, and the policy does not allow it\nhint: name it in [gateway] allow_server_tools (e.g. allow_server_tools = [\"{family}\"]) if it should be used"
)]
pub struct Refused {
    /// The tool forced.
    pub tool: String,
    /// Its family, the name the policy would use.
    pub family: String,
}

/// Which side runs a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolSide {
    /// The agent runs it, inside the sandbox.
    Client,
    /// The vendor runs it; its type.
    Server(String),
}

/// Classifies one entry of a request's `tools` array.
pub fn classify(schema: Schema, tool: &Value) -> ToolSide {
    let Some(kind) = tool.get("type").and_then(Value::as_str) else {
        // Anthropic's custom tools carry no type; OpenAI's always do.
        return match schema {
            Schema::AnthropicMessages => ToolSide::Client,
            _ => ToolSide::Server("(untyped)".into()),
        };
    };
    let client = match schema {
        Schema::AnthropicMessages => {
            kind == "custom" || ["bash_", "text_editor_", "computer_", "memory_"].iter().any(|p| kind.starts_with(p))
        }
        Schema::OpenaiChat => matches!(kind, "function" | "custom"),
        Schema::OpenaiResponses | Schema::OpenaiEmbeddings => {
            matches!(kind, "function" | "custom" | "local_shell" | "shell" | "apply_patch" | "computer_use_preview")
        }
    };
    if client { ToolSide::Client } else { ToolSide::Server(kind.to_string()) }
}

/// A tool type without its version and stage: `web_search_20250305`,
/// `web_search_preview_2025_03_11` and `web_search*` are all `web_search`.
pub fn family(name: &str) -> String {
    let mut name = name.trim_end_matches('*').trim_end_matches('_');
    while let Some((head, last)) = name.rsplit_once('_') {
        if last == "preview" || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())) {
            name = head;
        } else {
            break;
        }
    }
    name.to_string()
}

/// Whether the policy's list names this tool (by exact type or by family).
pub fn allowed(tool: &str, allow: &[String]) -> bool {
    let f = family(tool);
    allow.iter().any(|a| a == tool || family(a) == f)
}

/// The tool family an `anthropic-beta` token turns on, when it turns on a server-side one.
pub fn beta_family(token: &str) -> Option<&'static str> {
    [
        ("web-fetch-", "web_fetch"),
        ("web-search-", "web_search"),
        ("code-execution-", "code_execution"),
        ("mcp-client-", "mcp_servers"),
        ("skills-", "code_execution"),
    ]
    .into_iter()
    .find(|(prefix, _)| token.starts_with(prefix))
    .map(|(_, f)| f)
}

fn stripped(tool: &str, field: String, value: &Value) -> Stripped {
    let json = value.to_string();
    Stripped {
        tool: tool.into(),
        field,
        sha256: hex::encode(Sha256::digest(json.as_bytes())),
        bytes: json.len() as u64,
    }
}

/// Takes the server-side tools the policy does not name out of a request body.
pub fn strip(body: &mut Value, schema: Schema, allow: &[String]) -> Result<Vec<Stripped>, Refused> {
    let Value::Object(map) = body else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let mut names = Vec::new();
    if let Some(Value::Array(tools)) = map.get_mut("tools") {
        let mut at = 0;
        tools.retain(|tool| {
            let keep = match classify(schema, tool) {
                ToolSide::Client => true,
                ToolSide::Server(kind) if allowed(&kind, allow) => true,
                ToolSide::Server(kind) => {
                    out.push(stripped(&kind, format!("/tools/{at}"), tool));
                    if let Some(name) = tool.get("name").and_then(Value::as_str) {
                        names.push(name.to_string());
                    }
                    names.push(kind);
                    false
                }
            };
            at += 1;
            keep
        });
    }
    // Top-level switches that turn a server-side tool on.
    for (key, tool) in [("mcp_servers", "mcp_servers"), ("web_search_options", "web_search")] {
        if allowed(tool, allow) {
            continue;
        }
        if let Some(v) = map.remove(key) {
            out.push(stripped(tool, format!("/{key}"), &v));
        }
    }
    if let Some(choice) = map.get("tool_choice") {
        let forced = [choice.get("name"), choice.get("type")]
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|n| names.iter().any(|s| s == n));
        if let Some(tool) = forced {
            return Err(Refused { tool: tool.to_string(), family: family(tool) });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn families_drop_versions_and_stages() {
        assert_eq!(family("web_search_20250305"), "web_search");
        assert_eq!(family("web_search_preview_2025_03_11"), "web_search");
        assert_eq!(family("web_search*"), "web_search");
        assert_eq!(family("code_execution_20250825"), "code_execution");
        assert_eq!(family("mcp"), "mcp");
        assert!(allowed("web_fetch_20250910", &["web_fetch".into()]));
        assert!(!allowed("web_fetch_20250910", &["web_search".into()]));
        assert!(!allowed("mcp", &[]));
    }

    #[test]
    fn server_side_tools_are_told_from_client_ones() {
        use ToolSide::*;
        let a = Schema::AnthropicMessages;
        let r = Schema::OpenaiResponses;
        let side = |s, t: Value| classify(s, &t);
        assert_eq!(side(a, json!({"name": "Bash", "input_schema": {}})), Client);
        assert_eq!(side(a, json!({"type": "bash_20250124", "name": "bash"})), Client);
        assert_eq!(side(a, json!({"type": "text_editor_20250728", "name": "e"})), Client);
        assert_eq!(side(a, json!({"type": "computer_20250124", "name": "c"})), Client);
        for t in ["web_search_20250305", "web_fetch_20250910", "code_execution_20250825", "tool_search_tool_regex"] {
            assert_eq!(side(a, json!({"type": t, "name": "x"})), Server(t.into()), "{t}");
        }
        assert_eq!(side(r, json!({"type": "function", "name": "exec_command"})), Client);
        assert_eq!(side(r, json!({"type": "custom", "name": "apply_patch"})), Client);
        assert_eq!(side(r, json!({"type": "local_shell"})), Client);
        for t in ["web_search", "web_search_preview", "file_search", "code_interpreter", "image_generation", "mcp"] {
            assert_eq!(side(r, json!({"type": t})), Server(t.into()), "{t}");
        }
        assert_eq!(side(Schema::OpenaiChat, json!({"type": "function"})), Client);
        assert_eq!(side(r, json!({"type": "something_new"})), Server("something_new".into()));
    }

    #[test]
    fn unlisted_server_tools_are_stripped_and_forcing_one_is_refused() {
        let mut body = json!({"model": "m", "tools": [
            {"type": "function", "name": "exec_command"},
            {"type": "web_search"},
            {"type": "mcp", "server_label": "x", "server_url": "https://evil.example/mcp"},
        ]});
        let out = strip(&mut body, Schema::OpenaiResponses, &[]).unwrap();
        assert_eq!(
            out.iter().map(|s| (s.tool.as_str(), s.field.as_str())).collect::<Vec<_>>(),
            [("web_search", "/tools/1"), ("mcp", "/tools/2")]
        );
        assert_eq!(body["tools"].as_array().unwrap().len(), 1);
        assert!(!body.to_string().contains("evil.example"));

        let mut allowed_body = json!({"model": "m", "tools": [{"type": "web_search_preview"}]});
        assert!(strip(&mut allowed_body, Schema::OpenaiResponses, &["web_search".into()]).unwrap().is_empty());

        let mut anthropic = json!({"model": "m", "mcp_servers": [{"url": "https://evil.example"}],
            "tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}]});
        let out = strip(&mut anthropic, Schema::AnthropicMessages, &[]).unwrap();
        assert_eq!(out.len(), 2);
        assert!(anthropic.get("mcp_servers").is_none());

        let mut forced = json!({"model": "m", "tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}],
            "tool_choice": {"type": "tool", "name": "web_fetch"}});
        let err = strip(&mut forced, Schema::AnthropicMessages, &[]).unwrap_err();
        assert!(err.to_string().contains("allow_server_tools"), "{err}");
    }

    #[test]
    fn betas_that_turn_on_server_tools_are_known() {
        assert_eq!(beta_family("web-fetch-2025-09-10"), Some("web_fetch"));
        assert_eq!(beta_family("mcp-client-2025-04-04"), Some("mcp_servers"));
        assert_eq!(beta_family("code-execution-2025-08-25"), Some("code_execution"));
        assert_eq!(beta_family("prompt-caching-2024-07-31"), None);
        assert_eq!(beta_family("computer-use-2025-01-24"), None, "computer use runs on the client");
    }
}
