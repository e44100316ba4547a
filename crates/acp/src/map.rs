//! The pure half of the adapter: how airlock's session events and the
//! editor's answers translate into each other. No I/O here, so every rule
//! of the mapping is unit-tested.

use std::path::Path;
use std::time::Duration;

use agent_client_protocol::v1::schema::{
    ContentBlock, Diff, McpServer, PermissionOption, PermissionOptionKind, RequestPermissionOutcome, StopReason,
    ToolCallContent, ToolKind,
};
use airlock_core::Stop;
use airlock_mcp::{ServerSpec, Transport};
use airlock_session::{Answer, ApprovalRequest, Approver, Shown};
use serde_json::Value;

/// The permission options offered for every approval, by id.
pub const ALLOW_ONCE: &str = "allow_once";
/// Allow this and, for the rest of the session, what the request's first scope covers.
pub const ALLOW_ALWAYS: &str = "allow_always";
/// Do not run it.
pub const REJECT_ONCE: &str = "reject_once";

/// Characters of the editor's name and version kept in the approver's name.
const EDITOR_CHARS: usize = 64;
/// Characters of a tool's result preview sent to the editor.
const PREVIEW_CHARS: usize = 4000;

/// What a tool does, for the editor's icon: from the tool's name.
pub fn tool_kind(tool: &str) -> ToolKind {
    match tool {
        "read_file" | "list_dir" => ToolKind::Read,
        "edit_file" | "write_file" => ToolKind::Edit,
        "run_command" => ToolKind::Execute,
        "glob" | "grep" => ToolKind::Search,
        "todo" => ToolKind::Think,
        _ => ToolKind::Other,
    }
}

/// A one-line title for a tool call: the tool and its main argument.
pub fn tool_title(tool: &str, arguments: &Value) -> String {
    let arg = |key: &str| arguments.get(key).and_then(Value::as_str).map(str::to_string);
    let main = match tool {
        "read_file" | "edit_file" | "write_file" | "list_dir" => arg("path"),
        "run_command" => arg("command"),
        "glob" | "grep" => arg("pattern"),
        _ => None,
    };
    let title = match main {
        Some(main) => format!("{tool} {main}"),
        None => tool.to_string(),
    };
    one_line(&title, 200)
}

/// The files a call touches, relative to the workspace as the model gave them.
pub fn tool_path(tool: &str, arguments: &Value) -> Option<String> {
    match tool {
        "read_file" | "edit_file" | "write_file" | "list_dir" => {
            arguments.get("path").and_then(Value::as_str).map(str::to_string)
        }
        _ => None,
    }
}

/// The diff an edit will make, from its arguments: the whole new file for
/// `write_file`, the replaced fragment for `edit_file`.
pub fn diff_from_arguments(workspace: &Path, tool: &str, arguments: &Value) -> Option<Diff> {
    let text = |key: &str| arguments.get(key).and_then(Value::as_str).map(str::to_string);
    let path = workspace.join(text("path")?);
    match tool {
        "write_file" => Some(Diff::new(path, text("content")?)),
        "edit_file" => Some(Diff::new(path, text("new_string")?).old_text(text("old_string")?)),
        _ => None,
    }
}

/// What the person is asked about, as tool call content: the whole file
/// before and after for an edit, the command line for a command, the
/// arguments otherwise.
pub fn shown_content(workspace: &Path, shown: &Shown) -> ToolCallContent {
    match shown {
        Shown::Change { path, before, after } => {
            let old = if before.is_empty() { None } else { Some(before.clone()) };
            ToolCallContent::Diff(Diff::new(workspace.join(path), after.clone()).old_text(old))
        }
        Shown::Command { line, .. } => text_content(format!("$ {line}")),
        Shown::Call { arguments, problem } => {
            let mut text = serde_json::to_string_pretty(arguments).unwrap_or_default();
            if let Some(problem) = problem {
                text.push_str(&format!("\n(cannot be previewed: {problem})"));
            }
            text_content(text)
        }
    }
}

/// Text as tool call content.
pub fn text_content(text: String) -> ToolCallContent {
    ToolCallContent::from(ContentBlock::from(text))
}

/// A tool's result preview, capped.
pub fn preview(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The options of a permission request: allow once, allow for the session
/// (only when the request names a scope), reject once.
pub fn permission_options(request: &ApprovalRequest) -> Vec<PermissionOption> {
    let mut options = vec![PermissionOption::new(ALLOW_ONCE, "Allow once", PermissionOptionKind::AllowOnce)];
    if let Some(scope) = request.scopes.first() {
        let name = one_line(&format!("Allow {scope} for this session"), 200);
        options.push(PermissionOption::new(ALLOW_ALWAYS, name, PermissionOptionKind::AllowAlways));
    }
    options.push(PermissionOption::new(REJECT_ONCE, "Reject", PermissionOptionKind::RejectOnce));
    options
}

/// The editor's answer as airlock's: an unknown option or a cancelled
/// request is a denial (fail closed).
pub fn answer(request: &ApprovalRequest, outcome: &RequestPermissionOutcome) -> Answer {
    let deny = |note: &str| Answer::Deny { note: note.to_string() };
    match outcome {
        RequestPermissionOutcome::Selected(selected) => match &*selected.option_id.0 {
            ALLOW_ONCE => Answer::Once,
            ALLOW_ALWAYS => match request.scopes.first() {
                Some(scope) => Answer::Session { scope: scope.clone() },
                None => deny("the editor chose an option that was not offered"),
            },
            REJECT_ONCE => deny(""),
            _ => deny("the editor chose an option that was not offered"),
        },
        RequestPermissionOutcome::Cancelled => deny("the editor cancelled the question"),
        _ => deny("the editor's answer is not understood"),
    }
}

/// Who answers in the editor: `editor:NAME VERSION` from the client's
/// `clientInfo` (sanitised, capped), this process's uid, terminal `acp`.
pub fn approver(client: Option<(&str, &str)>, uid: u64) -> Approver {
    let editor = match client {
        Some((name, version)) => {
            let name = sanitise(name);
            let version = sanitise(version);
            let both = if version.is_empty() { name } else { format!("{name} {version}") };
            if both.is_empty() { "unknown".to_string() } else { both }
        }
        None => "unknown".to_string(),
    };
    Approver { person: format!("editor:{editor}"), uid, terminal: "acp".into() }
}

/// Keeps letters, digits and a few punctuation marks, one line, capped: the
/// name goes into the audit log and later to terminals.
fn sanitise(text: &str) -> String {
    let kept: String =
        text.chars().filter(|c| c.is_ascii_alphanumeric() || " .-_+/@()".contains(*c)).take(EDITOR_CHARS).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One line of at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Why a turn ended, as ACP says it.
pub fn stop_reason(stop: Option<Stop>, cancelled: bool) -> StopReason {
    if cancelled {
        return StopReason::Cancelled;
    }
    match stop {
        Some(Stop::Finished) | None => StopReason::EndTurn,
        Some(Stop::TurnLimit) => StopReason::MaxTurnRequests,
        Some(Stop::TokenBudget) => StopReason::MaxTokens,
        Some(Stop::Cancelled) => StopReason::Cancelled,
    }
}

/// The prompt's text: text blocks as they are, links and embedded
/// resources named (airlock reads files itself, through its tools).
pub fn prompt_text(blocks: &[ContentBlock]) -> String {
    let mut parts = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text(t) => parts.push(t.text.clone()),
            ContentBlock::ResourceLink(link) => parts.push(format!("[{}]({})", link.name, link.uri)),
            ContentBlock::Resource(resource) => {
                use agent_client_protocol::v1::schema::EmbeddedResourceResource as R;
                match &resource.resource {
                    R::TextResourceContents(t) => {
                        parts.push(format!("<resource uri=\"{}\">\n{}\n</resource>", t.uri, t.text))
                    }
                    R::BlobResourceContents(b) => parts.push(format!("[binary resource {}]", b.uri)),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    parts.join("\n")
}

/// How long one call to an editor's MCP server may take.
const EDITOR_MCP_CALL: Duration = Duration::from_secs(120);
/// How long an editor's MCP server may take to start.
const EDITOR_MCP_START: Duration = Duration::from_secs(30);

/// The editor's MCP servers as the session runs them, each in its own
/// sandbox: stdio ones with the command, arguments and environment the
/// editor gave, and nothing more (no hosts, no reads or writes beyond the
/// workspace, no pin); the others refused with the reason (airlock reaches
/// remote servers only through its broker, which an editor's server list
/// does not go through yet).
pub fn editor_servers(servers: &[McpServer]) -> (Vec<ServerSpec>, Vec<String>) {
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for server in servers {
        match server {
            McpServer::Stdio(s) => kept.push(ServerSpec {
                name: s.name.clone(),
                transport: Transport::Stdio { command: s.command.display().to_string(), args: s.args.clone() },
                env: s.env.iter().map(|e| (e.name.clone(), e.value.clone())).collect(),
                read: Vec::new(),
                write: Vec::new(),
                hosts: Vec::new(),
                digest: None,
                call_timeout: EDITOR_MCP_CALL,
                start_timeout: EDITOR_MCP_START,
            }),
            McpServer::Http(s) => refused.push(format!(
                "the editor's MCP server {:?} ({}) is not started: remote MCP servers from an editor are not supported yet",
                s.name, s.url
            )),
            McpServer::Sse(s) => refused.push(format!(
                "the editor's MCP server {:?} ({}) is not started: SSE MCP servers are not supported",
                s.name, s.url
            )),
            _ => refused.push("an MCP server of a transport airlock does not know is not started".into()),
        }
    }
    (kept, refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_client_protocol::v1::schema::{McpServerHttp, McpServerStdio, SelectedPermissionOutcome};
    use serde_json::json;

    fn request(scopes: &[&str]) -> ApprovalRequest {
        ApprovalRequest {
            id: 7,
            call_id: "c1".into(),
            tool: "run_command".into(),
            shown: Shown::Command { line: "cargo test -q".into(), programs: vec![] },
            digest: "d".into(),
            source: "policy".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn selected(id: &'static str) -> RequestPermissionOutcome {
        RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(id))
    }

    #[test]
    fn the_editors_answers_map_to_airlocks_and_anything_else_denies() {
        let r = request(&["cargo test", "cargo test -q"]);
        assert_eq!(answer(&r, &selected(ALLOW_ONCE)), Answer::Once);
        assert_eq!(answer(&r, &selected(ALLOW_ALWAYS)), Answer::Session { scope: "cargo test".into() });
        assert!(matches!(answer(&r, &selected(REJECT_ONCE)), Answer::Deny { .. }));
        assert!(matches!(answer(&r, &selected("allow_everything")), Answer::Deny { .. }));
        assert!(matches!(answer(&r, &RequestPermissionOutcome::Cancelled), Answer::Deny { .. }));
        // No scope: "always" is not offered, and choosing it anyway denies.
        let bare = request(&[]);
        assert!(!permission_options(&bare).iter().any(|o| &*o.option_id.0 == ALLOW_ALWAYS));
        assert!(matches!(answer(&bare, &selected(ALLOW_ALWAYS)), Answer::Deny { .. }));
        assert_eq!(permission_options(&r).len(), 3);
    }

    #[test]
    fn the_approver_names_the_editor_sanitised_and_capped() {
        let a = approver(Some(("Zed", "0.190.1")), 1000);
        assert_eq!((a.person.as_str(), a.uid, a.terminal.as_str()), ("editor:Zed 0.190.1", 1000, "acp"));
        let hostile = approver(Some(("Ed\x1b]52;c;aGk=\x07itor\nuid=0", &"9".repeat(500))), 1);
        assert!(hostile.person.chars().all(|c| !c.is_control()), "{}", hostile.person);
        assert!(hostile.person.len() <= "editor:".len() + 2 * EDITOR_CHARS + 1, "{}", hostile.person);
        assert_eq!(approver(None, 1).person, "editor:unknown");
        assert_eq!(approver(Some(("\u{202e}", "")), 1).person, "editor:unknown");
    }

    #[test]
    fn tools_have_kinds_titles_and_diffs() {
        assert_eq!(tool_kind("edit_file"), ToolKind::Edit);
        assert_eq!(tool_kind("run_command"), ToolKind::Execute);
        assert_eq!(tool_kind("grep"), ToolKind::Search);
        assert_eq!(tool_kind("read_file"), ToolKind::Read);
        assert_eq!(tool_kind("mcp__x__y"), ToolKind::Other);
        assert_eq!(tool_title("run_command", &json!({"command": "ls\n-la"})), "run_command ls -la");
        let ws = Path::new("/w");
        let d = diff_from_arguments(ws, "edit_file", &json!({"path": "a.txt", "old_string": "a", "new_string": "b"}))
            .unwrap();
        assert_eq!(
            (d.path.as_path(), d.old_text.as_deref(), d.new_text.as_str()),
            (Path::new("/w/a.txt"), Some("a"), "b")
        );
        let d = diff_from_arguments(ws, "write_file", &json!({"path": "n.txt", "content": "new"})).unwrap();
        assert_eq!((d.old_text, d.new_text.as_str()), (None, "new"));
        assert!(diff_from_arguments(ws, "run_command", &json!({"command": "ls"})).is_none());
        let shown = Shown::Change { path: "a.txt".into(), before: "x\n".into(), after: "y\n".into() };
        match shown_content(ws, &shown) {
            ToolCallContent::Diff(d) => assert_eq!((d.old_text.as_deref(), d.new_text.as_str()), (Some("x\n"), "y\n")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stop_reasons_follow_the_turns_end() {
        assert_eq!(stop_reason(Some(Stop::Finished), false), StopReason::EndTurn);
        assert_eq!(stop_reason(Some(Stop::Finished), true), StopReason::Cancelled);
        assert_eq!(stop_reason(Some(Stop::TokenBudget), false), StopReason::MaxTokens);
        assert_eq!(stop_reason(Some(Stop::TurnLimit), false), StopReason::MaxTurnRequests);
        assert_eq!(stop_reason(Some(Stop::Cancelled), false), StopReason::Cancelled);
    }

    #[test]
    fn editor_mcp_servers_over_stdio_are_kept_and_remote_ones_refused() {
        let stdio = McpServer::Stdio(McpServerStdio::new("fs", "/usr/bin/mcp-fs").args(vec!["--ro".to_string()]));
        let http = McpServer::Http(McpServerHttp::new("remote", "https://example.com/mcp"));
        let (kept, refused) = editor_servers(&[stdio, http]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "fs");
        assert_eq!(
            kept[0].transport,
            Transport::Stdio { command: "/usr/bin/mcp-fs".into(), args: vec!["--ro".into()] }
        );
        assert!(kept[0].hosts.is_empty() && kept[0].read.is_empty() && kept[0].write.is_empty());
        assert_eq!(refused.len(), 1);
        assert!(refused[0].contains("remote"), "{}", refused[0]);
    }
}
