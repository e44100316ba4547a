//! `airlock acp` end to end: a client built on the same ACP crate spawns the
//! real `airlock acp` binary (supervisor, broker, worker in its sandbox)
//! against a scripted model on loopback, in a temporary git repository,
//! and drives a session as an editor would: an edit it allows, a command
//! it rejects, a turn it cancels; then the audit log must name the editor
//! as the approver.
//!
//! The binary is `AIRLOCK_BIN` when set, else `target/debug/airlock` of
//! this workspace (build it with `cargo build -p airlock-cli
//! --no-default-features`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, clippy::panic)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, EnvVariable, Implementation, InitializeRequest, LoadSessionRequest, McpServer,
    McpServerStdio, NewSessionRequest, PermissionOptionKind, PromptRequest, RequestPermissionOutcome,
    RequestPermissionRequest, RequestPermissionResponse, SelectedPermissionOutcome, SessionId, SessionNotification,
    SessionUpdate, SetSessionModeRequest, StopReason, ToolCallContent, ToolCallStatus, ToolKind,
};
use agent_client_protocol::{ByteStreams, Client};
use airlock_test_support::scripted::{ScriptedModel, Turn};
use serde_json::{Value, json};

fn airlock() -> PathBuf {
    let bin = std::env::var_os("AIRLOCK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/airlock"));
    assert!(
        bin.exists(),
        "{} is missing\nhint: cargo build -p airlock-cli --no-default-features, or set AIRLOCK_BIN",
        bin.display()
    );
    bin
}

/// A repository (a git work tree with `a.txt` = "hello"), a home folder and airlock's state folder, all temporary.
struct Fixture {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
    state: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (repo, home, state) = (root.join("repo"), root.join("home"), root.join("state"));
        for d in [&repo, &home, &state] {
            std::fs::create_dir_all(d).unwrap();
        }
        let git = Command::new("git").args(["init", "-q"]).current_dir(&repo).output().unwrap();
        assert!(git.status.success(), "git init: {}", String::from_utf8_lossy(&git.stderr));
        std::fs::write(repo.join("a.txt"), "hello\n").unwrap();
        Fixture { _dir: dir, repo, home, state }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(airlock());
        c.args(args)
            .current_dir(&self.home)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("NO_COLOR", "1");
        c
    }

    /// `airlock audit ARGS --dir STATE`, which must succeed.
    fn audit(&self, args: &[&str]) -> String {
        let out = self.command(&["audit"]).args(args).arg("--dir").arg(&self.state).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "airlock audit {args:?}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
        stdout
    }
}

/// What the editor does when asked for permission.
#[derive(Debug, Clone, Copy)]
enum Choice {
    /// Pick the option of this kind.
    Pick(PermissionOptionKind),
    /// Answer `cancelled` (as an editor does after `session/cancel`).
    Cancel,
}

/// What the editor saw.
#[derive(Default)]
struct Seen {
    updates: Vec<SessionUpdate>,
    asked: Vec<RequestPermissionRequest>,
}

fn wait_until(seen: &Mutex<Seen>, what: &str, test: impl Fn(&Seen) -> bool) {
    let start = Instant::now();
    while !test(&seen.lock().unwrap()) {
        assert!(start.elapsed() < Duration::from_secs(60), "waited a minute for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_drives_a_session_with_an_edit_a_rejected_command_and_a_cancel() {
    let f = Fixture::new();
    let model = ScriptedModel::start(vec![
        // The first prompt: an edit (allowed once), a command (rejected), an answer.
        Turn::call("edit_file", json!({"path": "a.txt", "old_string": "hello", "new_string": "hello world"}))
            .with_text("I will edit a.txt."),
        Turn::call("run_command", json!({"command": "rm -rf a.txt"})),
        Turn::text("Leaving a.txt alone."),
        // The second: a slow answer, cancelled while it streams.
        Turn::text("This answer takes a long time to write, and it is never finished.").with_delay_ms(3000),
        // The third: a command whose question the editor cancels.
        Turn::call("run_command", json!({"command": "touch never.txt"})),
        Turn::text("Not run."),
    ]);
    let mut child = f
        .command(&["acp", "--endpoint", &model.base_url(), "--model", "scripted", "--dir"])
        .arg(&f.state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let transport = ByteStreams::new(
        blocking::Unblock::new(child.stdin.take().unwrap()),
        blocking::Unblock::new(child.stdout.take().unwrap()),
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    let choices = Arc::new(Mutex::new(VecDeque::from([
        Choice::Pick(PermissionOptionKind::AllowOnce),
        Choice::Pick(PermissionOptionKind::RejectOnce),
        Choice::Cancel,
    ])));
    let (seen1, seen2, seen3) = (seen.clone(), seen.clone(), seen.clone());
    let repo = f.repo.clone();
    let session_id = Client
        .v1()
        .name("test-editor")
        .on_receive_notification(
            async move |n: SessionNotification, _cx| {
                seen1.lock().unwrap().updates.push(n.update);
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |request: RequestPermissionRequest, responder, cx| {
                let choice = choices.lock().unwrap().pop_front().expect("an unexpected permission request");
                seen2.lock().unwrap().asked.push(request.clone());
                let outcome = match choice {
                    Choice::Pick(kind) => {
                        let option = request.options.iter().find(|o| o.kind == kind).expect("the option is offered");
                        RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option.option_id.clone()))
                    }
                    Choice::Cancel => {
                        cx.send_notification(CancelNotification::new(request.session_id.clone()))?;
                        RequestPermissionOutcome::Cancelled
                    }
                };
                responder.respond(RequestPermissionResponse::new(outcome))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(transport, async move |cx| {
            let init = cx
                .send_request(
                    InitializeRequest::new(ProtocolVersion::V1)
                        .client_info(Implementation::new("test-editor", "1.2.3")),
                )
                .block_task()
                .await?;
            assert_eq!(init.protocol_version, ProtocolVersion::V1);
            assert_eq!(init.agent_info.as_ref().map(|i| i.name.as_str()), Some("airlock"));

            // A relative or missing cwd is refused with the reason.
            let bad = cx.send_request(NewSessionRequest::new("relative/dir")).block_task().await;
            assert!(format!("{:?}", bad.unwrap_err()).contains("not an absolute path"));

            let session = cx.send_request(NewSessionRequest::new(repo.clone())).block_task().await?.session_id;
            let prompt = |text: &str| PromptRequest::new(session.clone(), vec![ContentBlock::from(text.to_string())]);

            // 1. An edit the editor allows once, a command it rejects.
            let done = cx.send_request(prompt("make a.txt say hello world")).block_task().await?;
            assert_eq!(done.stop_reason, StopReason::EndTurn);

            // 2. A turn cancelled while the answer streams.
            let before = seen3.lock().unwrap().updates.len();
            let slow = cx.send_request(prompt("write something long"));
            let waiter = seen3.clone();
            tokio::task::spawn_blocking(move || {
                wait_until(&waiter, "the slow answer's first words", |s| {
                    s.updates[before..].iter().any(|u| matches!(u, SessionUpdate::AgentMessageChunk(_)))
                })
            })
            .await
            .unwrap();
            cx.send_notification(CancelNotification::new(session.clone()))?;
            let cancelled = slow.block_task().await?;
            assert_eq!(cancelled.stop_reason, StopReason::Cancelled);

            // 3. A question the editor cancels: the command does not run, the turn is cancelled.
            let third = cx.send_request(prompt("touch a file")).block_task().await?;
            assert_eq!(third.stop_reason, StopReason::Cancelled);
            Ok(session)
        })
        .await
        .unwrap();

    // The editor hangs up: airlock ends its sessions and exits.
    let status = child.wait().unwrap();
    assert!(status.success(), "airlock acp exited with {status}");

    assert_eq!(std::fs::read_to_string(f.repo.join("a.txt")).unwrap(), "hello world\n", "edited, not removed");
    assert!(!f.repo.join("never.txt").exists(), "a cancelled question runs nothing");
    assert_eq!(model.violations(), Vec::<String>::new());

    let seen = seen.lock().unwrap();
    // The edit: reported as an edit with its diff, asked with the whole file before and after, completed.
    let edit = seen
        .updates
        .iter()
        .find_map(|u| match u {
            SessionUpdate::ToolCall(call) if call.kind == ToolKind::Edit => Some(call.clone()),
            _ => None,
        })
        .expect("a tool_call for the edit");
    assert!(edit.title.contains("a.txt"), "{edit:?}");
    match edit.content.first() {
        Some(ToolCallContent::Diff(d)) => {
            assert_eq!(d.path, f.repo.join("a.txt"));
            assert_eq!((d.old_text.as_deref(), d.new_text.as_str()), (Some("hello"), "hello world"));
        }
        other => panic!("the edit's tool_call has no diff: {other:?}"),
    }
    let asked_edit = &seen.asked[0];
    assert_eq!(asked_edit.tool_call.tool_call_id, edit.tool_call_id);
    match asked_edit.tool_call.fields.content.as_deref() {
        Some([ToolCallContent::Diff(d)]) => {
            assert_eq!((d.old_text.as_deref(), d.new_text.as_str()), (Some("hello\n"), "hello world\n"));
        }
        other => panic!("the question shows no diff: {other:?}"),
    }
    let kinds: Vec<_> = asked_edit.options.iter().map(|o| o.kind).collect();
    assert!(kinds.contains(&PermissionOptionKind::AllowOnce) && kinds.contains(&PermissionOptionKind::RejectOnce));
    let status_of = |id: &agent_client_protocol::v1::schema::ToolCallId| {
        seen.updates
            .iter()
            .filter_map(|u| match u {
                SessionUpdate::ToolCallUpdate(up) if &up.tool_call_id == id => up.fields.status,
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(status_of(&edit.tool_call_id), [ToolCallStatus::InProgress, ToolCallStatus::Completed]);
    // The command: asked with its line, rejected, failed.
    let asked_command = &seen.asked[1];
    let shown = serde_json::to_string(&asked_command.tool_call).unwrap();
    assert!(shown.contains("rm -rf a.txt"), "{shown}");
    assert_eq!(status_of(&asked_command.tool_call.tool_call_id).last(), Some(&ToolCallStatus::Failed));
    // The text streamed as message chunks.
    let text: String = seen
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::AgentMessageChunk(c) => match &c.content {
                ContentBlock::Text(t) => Some(t.text.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(text.contains("I will edit a.txt.") && text.contains("Leaving a.txt alone."), "{text}");
    assert!(!text.contains("never finished"), "the cancelled answer was cut short: {text}");

    // The record: each answer by the editor, named with its version, at `acp`.
    let entries: Vec<Value> = f.audit(&["show", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let calls: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "tool_call").map(|e| &e["payload"]).collect();
    let answered: Vec<(String, String, String, String)> = calls
        .iter()
        .filter(|c| !c["approval"].is_null())
        .map(|c| {
            let a = &c["approval"];
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&c["name"]), s(&a["answer"]), s(&a["person"]), s(&a["terminal"]))
        })
        .collect();
    let editor = "editor:test-editor 1.2.3".to_string();
    assert_eq!(
        answered,
        [
            ("edit_file".into(), "once".into(), editor.clone(), "acp".into()),
            ("run_command".into(), "deny".into(), editor.clone(), "acp".into()),
        ],
        "{calls:#?}"
    );
    let uid = calls[0]["approval"]["uid"].as_u64().unwrap();
    // SAFETY: getuid cannot fail.
    assert_eq!(uid, u64::from(unsafe { libc::getuid() }));
    let shown = f.audit(&["show", "--session", &session_id.0]);
    assert!(shown.contains("editor:test-editor 1.2.3"), "{shown}");
    let ends: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "session_end").collect();
    assert_eq!(ends.len(), 1, "the session's end is on the record: {ends:?}");
    assert_eq!(ends[0]["payload"]["reason"], "ended by the user", "{ends:?}");
    let verify = f.audit(&["verify"]);
    assert!(verify.starts_with("ok"), "{verify}");
}

/// An editor for the tests below: it keeps what it sees and answers each
/// question with the next choice (a question beyond them fails the test).
#[derive(Clone, Default)]
struct Editor {
    seen: Arc<Mutex<Seen>>,
    choices: Arc<Mutex<VecDeque<Choice>>>,
}

impl Editor {
    fn answering(choices: &[Choice]) -> Editor {
        Editor { seen: Arc::default(), choices: Arc::new(Mutex::new(choices.iter().copied().collect())) }
    }

    /// `airlock acp` started for `f` against `model`, with `env` added to its environment.
    fn spawn(f: &Fixture, model: &ScriptedModel, env: &[(&str, &str)]) -> std::process::Child {
        let mut command = f.command(&["acp", "--endpoint", &model.base_url(), "--model", "scripted", "--dir"]);
        command.arg(&f.state).envs(env.iter().copied());
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap()
    }

    /// Connects to `child` as `test-editor 1.2.3`, initializes, runs `op`,
    /// hangs up and waits for airlock to exit (successfully).
    async fn drive<T: Send + 'static>(
        &self,
        child: &mut std::process::Child,
        op: impl AsyncFnOnce(
            agent_client_protocol::v1::ConnectionTo<agent_client_protocol::Agent>,
        ) -> Result<T, agent_client_protocol::Error>
        + Send,
    ) -> T {
        let transport = ByteStreams::new(
            blocking::Unblock::new(child.stdin.take().unwrap()),
            blocking::Unblock::new(child.stdout.take().unwrap()),
        );
        let (seen1, seen2, choices) = (self.seen.clone(), self.seen.clone(), self.choices.clone());
        let out = Client
            .v1()
            .name("test-editor")
            .on_receive_notification(
                async move |n: SessionNotification, _cx| {
                    seen1.lock().unwrap().updates.push(n.update);
                    Ok(())
                },
                agent_client_protocol::on_receive_notification!(),
            )
            .on_receive_request(
                async move |request: RequestPermissionRequest, responder, _cx| {
                    let choice = choices.lock().unwrap().pop_front();
                    seen2.lock().unwrap().asked.push(request.clone());
                    let outcome = match choice {
                        Some(Choice::Pick(kind)) => {
                            let option =
                                request.options.iter().find(|o| o.kind == kind).expect("the option is offered");
                            RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option.option_id.clone()))
                        }
                        Some(Choice::Cancel) | None => RequestPermissionOutcome::Cancelled,
                    };
                    responder.respond(RequestPermissionResponse::new(outcome))
                },
                agent_client_protocol::on_receive_request!(),
            )
            .connect_with(transport, async move |cx| {
                cx.send_request(
                    InitializeRequest::new(ProtocolVersion::V1)
                        .client_info(Implementation::new("test-editor", "1.2.3")),
                )
                .block_task()
                .await?;
                op(cx).await
            })
            .await
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "airlock acp exited with {status}");
        out
    }

    fn updates(&self) -> Vec<SessionUpdate> {
        self.seen.lock().unwrap().updates.clone()
    }

    fn asked(&self) -> Vec<RequestPermissionRequest> {
        self.seen.lock().unwrap().asked.clone()
    }
}

fn agent_text(updates: &[SessionUpdate]) -> String {
    updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::AgentMessageChunk(c) => match &c.content {
                ContentBlock::Text(t) => Some(t.text.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn text_prompt(session: &SessionId, text: &str) -> PromptRequest {
    PromptRequest::new(session.clone(), vec![ContentBlock::from(text.to_string())])
}

/// Where tests/mcp/setup put the official Python SDK, and the PyPI fixture
/// server; `None` (the test is skipped, saying why) when missing outside CI.
fn pypi_fixture() -> Option<(PathBuf, PathBuf)> {
    let cache = std::env::var_os("AIRLOCK_MCP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/airlock-ci/mcp"));
    let servers = std::env::var_os("AIRLOCK_MCP_SERVERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp/servers"));
    let (python, server) = (cache.join("venv/bin/python"), servers.join("pypi_server.py"));
    if python.exists() && server.exists() {
        // Canonical: inside its sandbox the server sees only the folders it is given, not those `..` passes through.
        return Some((python, server.canonicalize().unwrap()));
    }
    let why = format!("{} or {} is missing (run tests/mcp/setup)", python.display(), server.display());
    assert!(std::env::var_os("AIRLOCK_CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editors_mcp_server_runs_sandboxed_with_the_editors_env_and_its_tools_decided() {
    let Some((python, server)) = pypi_fixture() else { return };
    let f = Fixture::new();
    let model = ScriptedModel::start(vec![
        // Both tools are offered under the name the editor gave the server.
        Turn::call("mcp__fixture__echo", json!({"text": "hello from the editor's server"}))
            .expecting(&["mcp__fixture__echo", "mcp__fixture__env"]),
        // echo is read-only (allowed without a question); its result reached the model.
        Turn::call("mcp__fixture__env", json!({})).expecting(&["hello from the editor's server"]),
        // env asked the editor; its result shows the env the editor gave, and
        // nothing of airlock's own environment.
        Turn::text("The server's environment is known.")
            .expecting(&["EDITOR_GIVEN", "from-the-editor"])
            .refusing(&["AIRLOCK_PROCESS_ONLY", "from-the-airlock-process"]),
    ]);
    let mut child = Editor::spawn(&f, &model, &[("AIRLOCK_PROCESS_ONLY", "from-the-airlock-process")]);
    let editor = Editor::answering(&[Choice::Pick(PermissionOptionKind::AllowOnce)]);
    let repo = f.repo.clone();
    let stdio = McpServerStdio::new("fixture", &python)
        .args(vec![server.display().to_string()])
        .env(vec![EnvVariable::new("EDITOR_GIVEN", "from-the-editor")]);
    let session = editor
        .drive(&mut child, async move |cx| {
            let new = NewSessionRequest::new(repo).mcp_servers(vec![McpServer::Stdio(stdio)]);
            let session = cx.send_request(new).block_task().await?.session_id;
            let done = cx.send_request(text_prompt(&session, "what does the server see?")).block_task().await?;
            assert_eq!(done.stop_reason, StopReason::EndTurn);
            Ok(session)
        })
        .await;
    assert_eq!(model.violations(), Vec::<String>::new());

    // One question, for env (echo is read-only), answered once.
    let asked = editor.asked();
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert_eq!(asked[0].tool_call.fields.title.as_deref(), Some("mcp__fixture__env"));
    let updates = editor.updates();
    let results: Vec<String> = updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::ToolCallUpdate(up) if up.fields.status == Some(ToolCallStatus::Completed) => {
                Some(serde_json::to_string(&up.fields.content).unwrap())
            }
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 2, "{updates:#?}");
    assert!(results[0].contains("hello from the editor's server"), "{results:?}");
    assert!(results[1].contains("from-the-editor") && !results[1].contains("from-the-airlock-process"), "{results:?}");

    let entries: Vec<Value> = f.audit(&["show", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of =
        |kind: &str| entries.iter().filter(|e| e["kind"] == kind).map(|e| e["payload"].clone()).collect::<Vec<_>>();
    let servers = of("mcp_server");
    assert!(servers.iter().any(|s| s["server"] == "fixture" && s["action"] == "started"), "{servers:#?}");
    let mcp_results = of("mcp_result");
    let tools: Vec<(&str, bool)> =
        mcp_results.iter().map(|r| (r["tool"].as_str().unwrap(), r["is_error"].as_bool().unwrap())).collect();
    assert_eq!(tools, [("echo", false), ("env", false)], "{mcp_results:#?}");
    let calls = of("tool_call");
    let env_call = calls.iter().find(|c| c["name"] == "mcp__fixture__env").expect("env's tool_call");
    assert_eq!(env_call["approval"]["person"], "editor:test-editor 1.2.3", "{env_call:#}");
    let echo_call = calls.iter().find(|c| c["name"] == "mcp__fixture__echo").expect("echo's tool_call");
    assert!(echo_call["approval"].is_null(), "echo is allowed without a question: {echo_call:#}");
    let verify = f.audit(&["verify"]);
    assert!(verify.starts_with("ok"), "{verify}");
    let _ = session;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_changes_mode_to_plan_and_is_loaded_again_with_its_conversation_replayed() {
    let f = Fixture::new();
    let model = ScriptedModel::start(vec![
        // The first airlock: an edit allowed once, then plan mode refuses one without asking.
        Turn::call("edit_file", json!({"path": "a.txt", "old_string": "hello", "new_string": "hello world"}))
            .with_text("Editing a.txt."),
        Turn::text("Edited."),
        Turn::call("write_file", json!({"path": "b.txt", "content": "not in plan mode"})),
        Turn::text("Plan mode refused it.").expecting(&["mode:plan"]),
        // The second airlock: the loaded conversation goes on.
        Turn::text("Continuing.").expecting(&["make a.txt say hello world", "Edited.", "and now?"]),
    ]);
    let editor = Editor::answering(&[Choice::Pick(PermissionOptionKind::AllowOnce)]);
    let mut first = Editor::spawn(&f, &model, &[]);
    let repo = f.repo.clone();
    let session = editor
        .drive(&mut first, async move |cx| {
            let created = cx.send_request(NewSessionRequest::new(repo)).block_task().await?;
            let modes = created.modes.expect("the session offers its modes");
            assert_eq!(&*modes.current_mode_id.0, "ask");
            let ids: Vec<&str> = modes.available_modes.iter().map(|m| &*m.id.0).collect();
            assert_eq!(ids, ["ask", "edits", "plan", "auto"]);
            let session = created.session_id;
            let done = cx.send_request(text_prompt(&session, "make a.txt say hello world")).block_task().await?;
            assert_eq!(done.stop_reason, StopReason::EndTurn);
            let bad = cx.send_request(SetSessionModeRequest::new(session.clone(), "yolo")).block_task().await;
            assert!(format!("{:?}", bad.unwrap_err()).contains("unknown permission mode"));
            cx.send_request(SetSessionModeRequest::new(session.clone(), "plan")).block_task().await?;
            let planned = cx.send_request(text_prompt(&session, "create b.txt")).block_task().await?;
            assert_eq!(planned.stop_reason, StopReason::EndTurn);
            Ok(session)
        })
        .await;
    assert_eq!(std::fs::read_to_string(f.repo.join("a.txt")).unwrap(), "hello world\n");
    assert!(!f.repo.join("b.txt").exists(), "plan mode wrote nothing");
    assert_eq!(editor.asked().len(), 1, "plan mode asked nothing: {:#?}", editor.asked());
    let updates = editor.updates();
    assert!(
        updates.iter().any(|u| matches!(u, SessionUpdate::CurrentModeUpdate(m) if &*m.current_mode_id.0 == "plan")),
        "{updates:#?}"
    );
    let refused = updates.iter().any(|u| match u {
        SessionUpdate::ToolCallUpdate(up) => {
            up.fields.status == Some(ToolCallStatus::Failed)
                && serde_json::to_string(&up.fields.content).unwrap().contains("mode:plan")
        }
        _ => false,
    });
    assert!(refused, "the write failed, denied by plan mode: {updates:#?}");

    // A second airlock acp loads the session: the conversation comes back, then it goes on.
    let later = Editor::answering(&[]);
    let mut second = Editor::spawn(&f, &model, &[]);
    let (repo, id) = (f.repo.clone(), session.clone());
    let replayed_before_answer = later
        .drive(&mut second, {
            let later = later.clone();
            async move |cx| {
                // A session that does not exist, or is in another workspace, is refused.
                let missing =
                    cx.send_request(LoadSessionRequest::new("20990101-nothing", repo.clone())).block_task().await;
                assert!(missing.is_err());
                let elsewhere = cx.send_request(LoadSessionRequest::new(id.clone(), "/tmp")).block_task().await;
                assert!(format!("{:?}", elsewhere.unwrap_err()).contains("not here"));
                let loaded = cx.send_request(LoadSessionRequest::new(id.clone(), repo)).block_task().await?;
                assert!(loaded.modes.is_some());
                let replayed = later.updates().len();
                let next = cx.send_request(text_prompt(&id, "and now?")).block_task().await?;
                assert_eq!(next.stop_reason, StopReason::EndTurn);
                Ok(replayed)
            }
        })
        .await;
    let updates = later.updates();
    let replay = &updates[..replayed_before_answer];
    let users: Vec<String> = replay
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::UserMessageChunk(c) => match &c.content {
                ContentBlock::Text(t) => Some(t.text.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(users, ["make a.txt say hello world", "create b.txt"], "{replay:#?}");
    let replayed_text = agent_text(replay);
    assert!(replayed_text.contains("Editing a.txt.") && replayed_text.contains("Edited."), "{replayed_text}");
    let calls: Vec<(ToolKind, ToolCallStatus)> = replay
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::ToolCall(c) => Some((c.kind, c.status)),
            _ => None,
        })
        .collect();
    assert_eq!(calls, [(ToolKind::Edit, ToolCallStatus::Completed), (ToolKind::Edit, ToolCallStatus::Failed)]);
    assert!(agent_text(&updates[replayed_before_answer..]).contains("Continuing."));
    assert_eq!(model.violations(), Vec::<String>::new());
    let verify = f.audit(&["verify"]);
    assert!(verify.starts_with("ok"), "{verify}");
}

/// Several needles at once.
trait Expecting {
    fn expecting(self, needles: &[&str]) -> Turn;
    fn refusing(self, needles: &[&str]) -> Turn;
}

impl Expecting for Turn {
    fn expecting(self, needles: &[&str]) -> Turn {
        needles.iter().fold(self, |t, n| t.expect_contains(*n))
    }

    fn refusing(self, needles: &[&str]) -> Turn {
        needles.iter().fold(self, |t, n| t.expect_absent(*n))
    }
}
