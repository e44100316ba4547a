//! The pure half of the adapter: how airlock's session events and the
//! editor's answers translate into each other. No I/O here, so every rule
//! of the mapping is unit-tested.

use std::path::Path;
use std::time::Duration;

use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, Diff, McpServer, PermissionOption, PermissionOptionKind, RequestPermissionOutcome,
    SessionMode, SessionModeId, SessionModeState, SessionUpdate, StopReason, ToolCall, ToolCallContent,
    ToolCallLocation, ToolCallStatus, ToolKind,
};
use airlock_core::Stop;
use airlock_mcp::{ServerSpec, Transport};
use airlock_model::Message;
use airlock_session::{Answer, ApprovalRequest, Approver, Mode, Shown};
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

/// What the policy says about MCP servers that the editor's must respect.
#[derive(Debug, Default, Clone)]
pub struct PolicyServers {
    /// Every server the policy names, enabled or not: an editor's server
    /// never takes one of these names (and with it that server's rules).
    pub names: Vec<String>,
    /// Managed policy starts only pinned servers: then an editor's server
    /// starts only when the policy pins its name, and only with that digest.
    pub pinned_only: bool,
    /// The pins, by server name.
    pub pinned: Vec<(String, String)>,
}

impl PolicyServers {
    /// What `policy` says.
    pub fn of(policy: &airlock_policy::Policy) -> PolicyServers {
        let mcp = &policy.mcp;
        PolicyServers {
            names: mcp.servers.iter().map(|s| s.name.clone()).collect(),
            pinned_only: mcp.pinned_only.value,
            pinned: mcp.pinned.iter().map(|(name, pin)| (name.clone(), pin.value.clone())).collect(),
        }
    }
}

/// Characters of an editor's server name kept (a policy name has at most 64;
/// room is left for a `-N` suffix).
const SERVER_NAME_CHARS: usize = 48;

/// The name an editor's server runs under: what the editor called it, with
/// every character outside `[A-Za-z0-9-]` made `-` (so that
/// `mcp__SERVER__TOOL` splits one way), capped; `-2`, `-3`, ... when the
/// policy or an earlier editor server has that name.
pub fn server_name(given: &str, taken: &[String]) -> String {
    let kept: String = given
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .take(SERVER_NAME_CHARS)
        .collect();
    let base = kept.trim_matches('-');
    let base = if base.is_empty() { "editor" } else { base };
    let mut name = base.to_string();
    let mut n = 2;
    while taken.iter().any(|t| t == &name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// The editor's MCP servers as the session runs them, each in its own
/// sandbox: stdio ones with the command, arguments and environment the
/// editor gave, and nothing more (no hosts, no reads or writes beyond the
/// workspace), under a name of their own ([`server_name`]); the others
/// refused with the reason (airlock reaches remote servers only through its
/// broker, which an editor's server list does not go through yet). Under a
/// managed policy that starts only pinned servers, an editor's server
/// starts only when its name is pinned, and then only with the pinned digest.
pub fn editor_servers(servers: &[McpServer], policy: &PolicyServers) -> (Vec<ServerSpec>, Vec<String>) {
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    let mut taken = policy.names.clone();
    for server in servers {
        match server {
            McpServer::Stdio(s) => {
                let name = server_name(&s.name, &taken);
                let digest = policy.pinned.iter().find(|(n, _)| *n == name).map(|(_, pin)| pin.clone());
                if policy.pinned_only && digest.is_none() {
                    refused.push(format!(
                        "the editor's MCP server {:?} is not started: managed policy starts only the servers it pins",
                        s.name
                    ));
                    continue;
                }
                taken.push(name.clone());
                kept.push(ServerSpec {
                    name,
                    transport: Transport::Stdio { command: s.command.display().to_string(), args: s.args.clone() },
                    env: s.env.iter().map(|e| (e.name.clone(), e.value.clone())).collect(),
                    read: Vec::new(),
                    write: Vec::new(),
                    hosts: Vec::new(),
                    digest,
                    call_timeout: EDITOR_MCP_CALL,
                    start_timeout: EDITOR_MCP_START,
                })
            }
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

/// What each permission mode means, for the editor's mode picker.
fn mode_description(mode: Mode) -> &'static str {
    match mode {
        Mode::Ask => "Reading is free; edits and commands ask",
        Mode::Edits => "Edits are free; commands ask",
        Mode::Plan => "Read-only: edits and commands are refused",
        Mode::Auto => "What policy allows or asks about runs, sandboxed, without asking",
    }
}

/// The session's modes as ACP session modes: the current one and those
/// policy allows, by airlock's names.
pub fn mode_state(current: Mode, modes: &[Mode]) -> SessionModeState {
    let available = modes
        .iter()
        .map(|m| SessionMode::new(m.as_str(), m.as_str()).description(mode_description(*m).to_string()))
        .collect();
    SessionModeState::new(current.as_str(), available)
}

/// The mode the editor picked, if policy allows it in this session.
pub fn mode_of(id: &SessionModeId, modes: &[Mode]) -> Result<Mode, String> {
    let mode: Mode = id.0.parse().map_err(|e: airlock_policy::UnknownMode| e.to_string())?;
    if !modes.contains(&mode) {
        let allowed: Vec<&str> = modes.iter().map(|m| m.as_str()).collect();
        return Err(format!("policy does not allow the {mode} mode (allowed: {})", allowed.join(", ")));
    }
    Ok(mode)
}

/// What the person wrote, without the note airlock put before it for the
/// model (`[airlock: plan mode. ...]`).
fn person_text(text: &str) -> &str {
    match text.strip_prefix("[airlock: ").and_then(|rest| rest.split_once("]\n\n")) {
        Some((_, typed)) => typed,
        None => text,
    }
}

/// A loaded session's conversation as the editor is shown it again: the
/// person's messages, the model's, and each tool call as it ended (with its
/// diff when it was an edit that succeeded, and its result's preview).
/// Instructions are not shown.
pub fn replay(history: &[Message], workspace: &Path) -> Vec<SessionUpdate> {
    let results: std::collections::HashMap<&str, (&str, bool)> = history
        .iter()
        .filter_map(|m| match m {
            Message::ToolResult { call_id, content, is_error } => {
                Some((call_id.as_str(), (content.as_str(), *is_error)))
            }
            _ => None,
        })
        .collect();
    let chunk = |text: &str| ContentChunk::new(ContentBlock::from(text.to_string()));
    let mut updates = Vec::new();
    for message in history {
        match message {
            Message::User(text) => updates.push(SessionUpdate::UserMessageChunk(chunk(person_text(text)))),
            Message::Assistant { text, tool_calls, .. } => {
                if !text.is_empty() {
                    updates.push(SessionUpdate::AgentMessageChunk(chunk(text)));
                }
                for call in tool_calls {
                    let (status, mut content) = match results.get(call.id.as_str()) {
                        Some((_, true)) => (ToolCallStatus::Failed, Vec::new()),
                        Some((_, false)) => {
                            let diff = diff_from_arguments(workspace, &call.name, &call.arguments);
                            (ToolCallStatus::Completed, diff.map(ToolCallContent::Diff).into_iter().collect())
                        }
                        None => (ToolCallStatus::Failed, vec![text_content("no result (the turn was stopped)".into())]),
                    };
                    if let Some((result, _)) = results.get(call.id.as_str()) {
                        content.push(text_content(preview(result)));
                    }
                    let mut update = ToolCall::new(call.id.clone(), tool_title(&call.name, &call.arguments))
                        .kind(tool_kind(&call.name))
                        .status(status)
                        .raw_input(call.arguments.clone())
                        .content(content);
                    if let Some(path) = tool_path(&call.name, &call.arguments) {
                        update = update.locations(vec![ToolCallLocation::new(workspace.join(path))]);
                    }
                    updates.push(SessionUpdate::ToolCall(update));
                }
            }
            Message::System(_) | Message::ToolResult { .. } => {}
        }
    }
    updates
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
        let (kept, refused) = editor_servers(&[stdio, http], &PolicyServers::default());
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

    #[test]
    fn an_editor_server_never_takes_a_policy_servers_name_or_one_that_splits_two_ways() {
        let taken = vec!["github".to_string(), "github-2".to_string()];
        assert_eq!(server_name("github", &taken), "github-3");
        assert_eq!(server_name("my_server", &[]), "my-server");
        assert_eq!(server_name("a__b", &[]), "a--b");
        assert_eq!(server_name("Context 7!", &[]), "Context-7");
        assert_eq!(server_name("___", &[]), "editor");
        assert_eq!(server_name(&"x".repeat(100), &[]).len(), SERVER_NAME_CHARS);
        let policy = PolicyServers { names: taken, ..PolicyServers::default() };
        let two = [
            McpServer::Stdio(McpServerStdio::new("github", "/bin/a")),
            McpServer::Stdio(McpServerStdio::new("github", "/bin/b")),
        ];
        let (kept, _) = editor_servers(&two, &policy);
        let names: Vec<&str> = kept.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["github-3", "github-4"]);
    }

    #[test]
    fn under_pinned_only_an_editor_server_starts_only_pinned_and_with_the_pin() {
        let policy = PolicyServers {
            names: vec![],
            pinned_only: true,
            pinned: vec![("fs".to_string(), "sha256:ab".to_string())],
        };
        let servers = [
            McpServer::Stdio(McpServerStdio::new("fs", "/bin/fs")),
            McpServer::Stdio(McpServerStdio::new("x", "/bin/x")),
        ];
        let (kept, refused) = editor_servers(&servers, &policy);
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].name.as_str(), kept[0].digest.as_deref()), ("fs", Some("sha256:ab")));
        assert_eq!(refused.len(), 1);
        assert!(refused[0].contains("pins"), "{}", refused[0]);
    }

    #[test]
    fn modes_are_offered_as_policy_allows_and_only_those_are_taken() {
        let state = mode_state(Mode::Ask, &[Mode::Ask, Mode::Plan]);
        assert_eq!(&*state.current_mode_id.0, "ask");
        let ids: Vec<&str> = state.available_modes.iter().map(|m| &*m.id.0).collect();
        assert_eq!(ids, ["ask", "plan"]);
        assert_eq!(mode_of(&SessionModeId::new("plan"), &[Mode::Ask, Mode::Plan]), Ok(Mode::Plan));
        assert!(mode_of(&SessionModeId::new("auto"), &[Mode::Ask, Mode::Plan]).unwrap_err().contains("does not allow"));
        assert!(mode_of(&SessionModeId::new("yolo"), &Mode::ALL).unwrap_err().contains("unknown permission mode"));
    }

    #[test]
    fn a_loaded_conversation_is_replayed_without_instructions_and_with_each_call_as_it_ended() {
        use airlock_model::ToolCall as Call;
        let call = |id: &str, name: &str, arguments: Value| Call {
            id: id.into(),
            name: name.into(),
            raw_arguments: arguments.to_string(),
            arguments,
        };
        let history = vec![
            Message::System("you are airlock".into()),
            Message::User("[airlock: plan mode. Propose a plan.]\n\nfix a.txt".into()),
            Message::Assistant {
                text: "Editing.".into(),
                thinking: vec![],
                tool_calls: vec![
                    call("c1", "edit_file", json!({"path": "a.txt", "old_string": "a", "new_string": "b"})),
                    call("c2", "run_command", json!({"command": "false"})),
                    call("c3", "read_file", json!({"path": "b.txt"})),
                ],
            },
            Message::ToolResult { call_id: "c1".into(), content: "edited".into(), is_error: false },
            Message::ToolResult { call_id: "c2".into(), content: "exit 1".into(), is_error: true },
            Message::Assistant { text: "Done.".into(), thinking: vec![], tool_calls: vec![] },
        ];
        let updates = replay(&history, Path::new("/w"));
        let text = |c: &ContentChunk| match &c.content {
            ContentBlock::Text(t) => t.text.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(updates.len(), 6, "{updates:#?}");
        assert!(matches!(&updates[0], SessionUpdate::UserMessageChunk(c) if text(c) == "fix a.txt"));
        assert!(matches!(&updates[1], SessionUpdate::AgentMessageChunk(c) if text(c) == "Editing."));
        let SessionUpdate::ToolCall(edit) = &updates[2] else { panic!("{:?}", updates[2]) };
        assert_eq!((edit.status, edit.kind), (ToolCallStatus::Completed, ToolKind::Edit));
        assert!(matches!(&edit.content[0], ToolCallContent::Diff(d) if d.new_text == "b"));
        let SessionUpdate::ToolCall(failed) = &updates[3] else { panic!() };
        assert_eq!(failed.status, ToolCallStatus::Failed);
        let SessionUpdate::ToolCall(stopped) = &updates[4] else { panic!() };
        assert_eq!(stopped.status, ToolCallStatus::Failed);
        assert!(matches!(&updates[5], SessionUpdate::AgentMessageChunk(c) if text(c) == "Done."));
    }
}
