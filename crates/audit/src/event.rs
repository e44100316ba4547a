//! What the log records, and the canonical bytes its hashes are taken over.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One audited event. Payloads are already redacted when they get here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// A session began.
    SessionStart {
        /// Digest of the effective policy.
        policy_digest: String,
        /// Where the model runs.
        model_endpoint: String,
        /// airlock's version.
        airlock_version: String,
        /// Who ran it.
        user: String,
        /// On which host.
        host: String,
        /// In which workspace.
        workspace: String,
    },
    /// A session ended.
    SessionEnd {
        /// Why it ended.
        reason: String,
    },
    /// A request left for a model (recorded before it is sent).
    ModelRequest {
        /// Who sent it: a gateway key's name, or `uid:N` for a local socket peer.
        principal: String,
        /// The API route (`openai.chat`, `anthropic.messages`, …).
        route: String,
        /// The model asked for.
        model: String,
        /// Where it goes: the upstream's name and URL.
        destination: String,
        /// Bytes sent (after redaction).
        bytes: u64,
        /// SHA-256 of what was sent (after redaction).
        content_digest: String,
        /// What redaction replaced, never the secrets.
        redactions: Vec<RedactionNote>,
    },
    /// A model answered (or the exchange failed).
    ModelResponse {
        /// Who sent the request.
        principal: String,
        /// Where from.
        destination: String,
        /// The upstream's HTTP status (0 when there was no answer).
        status: u64,
        /// Bytes received.
        bytes: u64,
        /// SHA-256 of what was received.
        content_digest: String,
        /// Prompt tokens, when the upstream reported them.
        input_tokens: u64,
        /// Completion tokens, when the upstream reported them.
        output_tokens: u64,
        /// Milliseconds from sending to the last byte.
        duration_ms: u64,
        /// How it ended: `complete`, or what went wrong.
        outcome: String,
    },
    /// A tool call and the decision on it.
    ToolCall {
        /// Tool name.
        name: String,
        /// Digest of the arguments.
        argument_digest: String,
        /// allow, ask or deny.
        decision: String,
        /// What decided: a rule id, a human, or a mode.
        decided_by: String,
        /// When a person decided: who, where, when, and what they were shown.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<Approval>,
    },
    /// A command that ran.
    Command {
        /// The argument vector.
        argv: Vec<String>,
        /// Working directory.
        cwd: String,
        /// Digest of the sandbox spec.
        sandbox_digest: String,
        /// Exit status.
        exit_status: i64,
        /// Wall-clock milliseconds.
        duration_ms: u64,
        /// Digest of the output.
        output_digest: String,
        /// Size of the output in bytes.
        output_bytes: u64,
    },
    /// A file changed.
    FileChange {
        /// The path.
        path: String,
        /// Digest before (empty when created).
        before: String,
        /// Digest after (empty when deleted).
        after: String,
    },
    /// Policy was violated (and the action refused).
    PolicyViolation {
        /// The rule.
        rule: String,
        /// What was attempted.
        detail: String,
    },
    /// A connection was refused.
    BlockedEgress {
        /// Where to.
        destination: String,
        /// Why.
        reason: String,
        /// Bytes of the refused request that reached airlock (its body), none
        /// of which went further. Left out when zero, as in older records.
        #[serde(default, skip_serializing_if = "is_zero")]
        bytes: u64,
    },
    /// A command's connection through the egress proxy, recorded before it is made.
    EgressOpen {
        /// Who asked (the proxy's view of the client).
        client: String,
        /// `CONNECT` or the HTTP method.
        method: String,
        /// The host asked for.
        host: String,
        /// The port.
        port: u64,
        /// The address it resolved to, the one connected to.
        addr: String,
    },
    /// That connection closed.
    EgressClose {
        /// Who asked.
        client: String,
        /// The host.
        host: String,
        /// The port.
        port: u64,
        /// Bytes sent out.
        bytes_up: u64,
        /// Bytes received.
        bytes_down: u64,
        /// How long it was open.
        duration_ms: u64,
    },
    /// The workspace and the conversation were set back to a checkpoint
    /// taken before a turn (`/rewind`).
    Rewind {
        /// The checkpoint restored.
        checkpoint: String,
        /// Its label (`turn 3`).
        label: String,
        /// Files written back.
        restored: u64,
        /// Files removed (created after the checkpoint).
        removed: u64,
        /// Messages of the conversation kept.
        messages_kept: u64,
    },
    /// A turn of the person driving a wrapped agent: the newest user message
    /// of the conversation a model request carried, read from the request as
    /// it left (after redaction), the first time the broker saw it. Recorded
    /// right after that request's `model_request`, and only by a broker told
    /// to (`Gateway::recording_conversations`).
    AgentTurn {
        /// The text, redacted, cut at a limit (500 characters).
        text: String,
        /// Whether `text` was cut.
        clipped: bool,
        /// Characters in the whole text.
        chars: u64,
        /// SHA-256 of the whole text (as it left: redacted).
        digest: String,
        /// The conversation it is in: the start of a digest of its first message.
        conversation: String,
        /// Its position among the conversation's messages.
        position: u64,
    },
    /// A tool call a wrapped agent's model made and the agent ran, read from
    /// the next request (which sends the call back with its result), the
    /// first time the broker saw it. The agent ran it, not airlock: this is
    /// what the agent reported, as far as its requests show it.
    AgentToolCall {
        /// The tool's name (empty when only the result was seen).
        name: String,
        /// The call's id in the conversation (`toolu_…`, `call_…`).
        call_id: String,
        /// The command when the arguments hold one, else the arguments as
        /// JSON: redacted, cut at a limit (500 characters).
        arguments: String,
        /// Whether `arguments` was cut.
        clipped: bool,
        /// Whether a result came back in the request.
        answered: bool,
        /// The result's size in bytes (0 when none came back).
        result_bytes: u64,
    },
    /// A witness refused to cosign one of this log's checkpoints for a
    /// reason other than a race between replicas: a bad consistency proof
    /// (the log was rolled back or forked), a signature it does not accept,
    /// or a size it has already passed.
    WitnessRefused {
        /// The witness's name (as configured).
        witness: String,
        /// The size of the checkpoint it refused.
        size: u64,
        /// Its HTTP status (0 when its answer could not be used at all).
        status: u64,
        /// What it said, or what was wrong with its answer.
        message: String,
    },
    /// An MCP server of the session: started in its sandbox (with the
    /// digest of what runs and the tools it offered), refused (a pin that
    /// does not match, a start that failed) or stopped (why).
    McpServer {
        /// The server's name (as configured).
        server: String,
        /// `started`, `refused` or `stopped`.
        action: String,
        /// `sha256:…` of what runs (empty when unknown).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        digest: String,
        /// What happened: the tools offered, or what was wrong.
        detail: String,
    },
    /// The result of an MCP tool call (its `tool_call` came before it).
    McpResult {
        /// The server.
        server: String,
        /// The tool, as the server names it.
        tool: String,
        /// Whether the call failed (the server said so, or it was stopped).
        is_error: bool,
        /// Size of the result the model got, in bytes (after redaction).
        result_bytes: u64,
        /// SHA-256 of the result the model got (after redaction).
        result_digest: String,
        /// Secrets replaced in the result before the model saw it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        redactions: Vec<RedactionNote>,
        /// Wall-clock milliseconds.
        duration_ms: u64,
    },
    /// One HTTP exchange with a remote MCP server (streamable HTTP), made by
    /// the supervisor: recorded before the request is sent (nothing is sent
    /// unless this is kept), and again when its answer ended.
    McpHttp {
        /// The server (as configured).
        server: String,
        /// Where: the URL without its query or user information.
        url: String,
        /// `request` (before it is sent) or `response` (its answer).
        direction: String,
        /// The HTTP method (`POST`, `DELETE`).
        method: String,
        /// The JSON-RPC method sent (`initialize`, `tools/call`), when there is one.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        rpc: String,
        /// Bytes of the body (a request's after redaction).
        bytes: u64,
        /// SHA-256 of the body (a request's after redaction).
        sha256: String,
        /// The answer's HTTP status (0 for a request, or when there was no answer).
        #[serde(default, skip_serializing_if = "is_zero")]
        status: u64,
        /// Secrets replaced in the request before it was sent.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        redactions: Vec<RedactionNote>,
        /// Milliseconds from sending to the answer's last byte.
        #[serde(default, skip_serializing_if = "is_zero")]
        duration_ms: u64,
        /// How the answer ended: `complete`, or what went wrong.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        outcome: String,
    },
    /// A record from outside (`airlock audit append`: hooks, CI pipelines).
    External {
        /// Who sent it.
        source: String,
        /// What it says.
        data: Value,
    },
}

impl Event {
    /// The `kind` tag, as stored and shown.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::SessionStart { .. } => "session_start",
            Event::SessionEnd { .. } => "session_end",
            Event::ModelRequest { .. } => "model_request",
            Event::ModelResponse { .. } => "model_response",
            Event::ToolCall { .. } => "tool_call",
            Event::Command { .. } => "command",
            Event::FileChange { .. } => "file_change",
            Event::PolicyViolation { .. } => "policy_violation",
            Event::BlockedEgress { .. } => "blocked_egress",
            Event::EgressOpen { .. } => "egress_open",
            Event::EgressClose { .. } => "egress_close",
            Event::Rewind { .. } => "rewind",
            Event::AgentTurn { .. } => "agent_turn",
            Event::AgentToolCall { .. } => "agent_tool_call",
            Event::WitnessRefused { .. } => "witness_refused",
            Event::McpServer { .. } => "mcp_server",
            Event::McpResult { .. } => "mcp_result",
            Event::McpHttp { .. } => "mcp_http",
            Event::External { .. } => "external",
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One secret replaced before a request left: which rule found it, where,
/// the placeholder it became, and a digest of it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionNote {
    /// The rule that found it.
    pub rule: String,
    /// Where in the request, as a JSON pointer (`/messages/2/content`).
    pub field: String,
    /// The placeholder that replaced it.
    pub placeholder: String,
    /// SHA-256 of the secret.
    pub secret_sha256: String,
}

/// A person's answer to an approval, with its provenance: the supervisor
/// (never the agent's worker) showed the call and took the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// `once`, `session`, `project` or `deny`.
    pub answer: String,
    /// Who answered: the user's name.
    pub person: String,
    /// Their uid.
    pub uid: u64,
    /// Where: the terminal (`/dev/pts/3`), or the editor for ACP.
    pub terminal: String,
    /// When, in Unix milliseconds.
    pub time_ms: i64,
    /// SHA-256 of exactly what the person was shown.
    pub shown_digest: String,
    /// What the rule for the session or project covers (`cargo test`), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The person's note to the model, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    /// RFC 8785 numbers are IEEE doubles; the log only takes integers, which
    /// serialize the same everywhere.
    #[error("{0} is not an integer: the audit log only records integer numbers")]
    NotAnInteger(String),
    /// The value could not be turned into JSON.
    #[error("cannot serialize: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Canonical JSON (RFC 8785 for the subset the log uses: objects with keys
/// sorted, no whitespace, integers only, strings escaped as serde_json does,
/// which matches RFC 8785 for these characters).
pub fn canonical<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_canonical(&value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => out.extend(serde_json::to_vec(value)?),
        Value::Number(n) if n.is_i64() || n.is_u64() => out.extend(n.to_string().as_bytes()),
        Value::Number(n) => return Err(CanonicalError::NotAnInteger(n.to_string())),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // RFC 8785 sorts by UTF-16 code units; for the keys the log
            // writes (ASCII) that is byte order.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key)?);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_there_is_no_whitespace() {
        let v = serde_json::json!({"b": 1, "a": [true, null, "x\n"], "c": {"z": 0, "y": -3}});
        assert_eq!(
            String::from_utf8(canonical(&v).unwrap()).unwrap(),
            r#"{"a":[true,null,"x\n"],"b":1,"c":{"y":-3,"z":0}}"#
        );
    }

    #[test]
    fn floats_are_refused() {
        let err = canonical(&serde_json::json!({"x": 1.5})).unwrap_err();
        assert!(err.to_string().contains("1.5"));
    }

    #[test]
    fn events_round_trip_and_serialize_stably() {
        let e = Event::Command {
            argv: vec!["cargo".into(), "test".into()],
            cwd: "/w".into(),
            sandbox_digest: "ab".into(),
            exit_status: 0,
            duration_ms: 12,
            output_digest: "cd".into(),
            output_bytes: 3,
        };
        let bytes = canonical(&e).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"argv":["cargo","test"],"cwd":"/w","duration_ms":12,"exit_status":0,"kind":"command","output_bytes":3,"output_digest":"cd","sandbox_digest":"ab"}"#
        );
        let back: Event = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.kind(), "command");
    }

    #[test]
    fn agent_events_serialize_stably() {
        let turn = Event::AgentTurn {
            text: "fix the test".into(),
            clipped: false,
            chars: 12,
            digest: "ab".into(),
            conversation: "cd".into(),
            position: 2,
        };
        assert_eq!(
            String::from_utf8(canonical(&turn).unwrap()).unwrap(),
            r#"{"chars":12,"clipped":false,"conversation":"cd","digest":"ab","kind":"agent_turn","position":2,"text":"fix the test"}"#
        );
        let call = Event::AgentToolCall {
            name: "Bash".into(),
            call_id: "toolu_1".into(),
            arguments: "cargo test".into(),
            clipped: false,
            answered: true,
            result_bytes: 40,
        };
        assert_eq!(
            String::from_utf8(canonical(&call).unwrap()).unwrap(),
            r#"{"answered":true,"arguments":"cargo test","call_id":"toolu_1","clipped":false,"kind":"agent_tool_call","name":"Bash","result_bytes":40}"#
        );
        for e in [turn, call] {
            let back: Event = serde_json::from_slice(&canonical(&e).unwrap()).unwrap();
            assert_eq!(back, e);
        }
        let err = serde_json::from_str::<Event>(
            r#"{"kind":"agent_tool_call","name":"x","call_id":"","arguments":"","clipped":false,"answered":false,"result_bytes":0,"extra":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Event>(r#"{"kind":"session_end","reason":"x","extra":1}"#).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}
