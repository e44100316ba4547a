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
    CancelNotification, ContentBlock, Implementation, InitializeRequest, NewSessionRequest, PermissionOptionKind,
    PromptRequest, RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse,
    SelectedPermissionOutcome, SessionNotification, SessionUpdate, StopReason, ToolCallContent, ToolCallStatus,
    ToolKind,
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
