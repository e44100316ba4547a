//! The loop against a scripted model (an OpenAI-compatible server on
//! loopback that answers from a script) and real tools in a temp workspace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_audit::event::Event;
use airlock_core::{Agent, Budget, Decision, LocalHost, Recorder, Rules, Stop};
use airlock_model::{ApiStyle, CancelToken, Client, Endpoint, Model};
use airlock_test_support::scripted::{ScriptedModel, Turn};

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Event>>>, Arc<Mutex<bool>>);

impl Recorder for Log {
    fn record(&mut self, event: Event) -> Result<(), String> {
        if *self.1.lock().unwrap() {
            return Err("disk full".into());
        }
        self.0.lock().unwrap().push(event);
        Ok(())
    }
}

struct World {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    script: ScriptedModel,
    log: Log,
    agent: Agent<LocalHost<Log>>,
}

async fn world(answers: Vec<Turn>, rules: Rules) -> World {
    let script = ScriptedModel::start(answers);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("AGENTS.md"), "Always say please.\n").unwrap();
    std::fs::write(root.join("lib.rs"), "fn main() {}\n").unwrap();
    let ws = airlock_tools::Workspace::open(&root, airlock_tools::PathPolicy::defaults()).unwrap();
    let client = Model::Remote(
        Client::new(Endpoint {
            style: ApiStyle::OpenAi,
            base_url: script.base_url(),
            api_key: None,
            unix_socket: None,
            timeout: Duration::from_secs(10),
            max_retries: 0,
        })
        .unwrap(),
    );
    let log = Log::default();
    let agent = Agent {
        client,
        model: "scripted".into(),
        tools: airlock_tools::Tools::new(ws),
        host: LocalHost { rules, recorder: log.clone() },
        budget: Budget { max_turns: 5, ..Budget::default() },
    };
    World { _dir: dir, root, script, log, agent }
}

fn kinds(log: &Log) -> Vec<String> {
    log.0
        .lock()
        .unwrap()
        .iter()
        .map(|e| match e {
            Event::ToolCall { name, decision, .. } => format!("{name}:{decision}"),
            other => other.kind().to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_decides_records_and_runs_each_call_until_the_model_is_done() {
    let mut rules = Rules::default();
    rules.granted.push("write_file".into());
    let mut w = world(
        vec![
            Turn::call("read_file", serde_json::json!({"path": "lib.rs"}))
                .and_call("write_file", serde_json::json!({"path": "hello.txt", "content": "hi\n"})),
            Turn::call("edit_file", serde_json::json!({"path": "lib.rs", "old_string": "main", "new_string": "start"})),
            Turn::text("Wrote hello.txt, please."),
        ],
        rules,
    )
    .await;
    let outcome = w.agent.run("write hello.txt", &CancelToken::new()).await.unwrap();
    assert_eq!(outcome.stop, Stop::Finished);
    assert_eq!(outcome.answer, "Wrote hello.txt, please.");
    assert_eq!(outcome.turns, 3);
    assert_eq!(outcome.usage.input_tokens, 300);
    assert_eq!(std::fs::read_to_string(w.root.join("hello.txt")).unwrap(), "hi\n");
    // edit_file was not granted: headless ask is deny, and the file is untouched.
    assert_eq!(std::fs::read_to_string(w.root.join("lib.rs")).unwrap(), "fn main() {}\n");
    assert_eq!(kinds(&w.log), ["read_file:allow", "write_file:allow", "file_change", "edit_file:deny"]);
    let requests = w.script.requests();
    let first = requests[0].to_string();
    assert!(first.contains("Always say please."), "AGENTS.md is in the system prompt");
    assert!(first.contains("\"write_file\""), "the tools are offered");
    let third = requests[2]["messages"].as_array().unwrap();
    let denied = third
        .iter()
        .find(|m| m["tool_call_id"] == "call_1_0" && m["content"].as_str().unwrap_or("").contains("denied"))
        .unwrap();
    assert!(denied["content"].as_str().unwrap().contains("mode:headless"), "{denied}");
    let edit = w.log.0.lock().unwrap().iter().find_map(|e| match e {
        Event::ToolCall { name, decided_by, .. } if name == "edit_file" => Some(decided_by.clone()),
        _ => None,
    });
    assert_eq!(edit.unwrap(), "mode:headless (rule:tool:edit_file says ask)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_stops_hits_the_turn_limit() {
    let answers = (0..10).map(|_| Turn::call("list_dir", serde_json::json!({}))).collect();
    let mut w = world(answers, Rules::default()).await;
    let outcome = w.agent.run("loop", &CancelToken::new()).await.unwrap();
    assert_eq!(outcome.stop, Stop::TurnLimit);
    assert_eq!(outcome.turns, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_arguments_go_back_to_the_model_as_a_tool_error() {
    let mut bad = Turn::raw_call("read_file", "{path: lib.rs");
    bad.calls[0].id = Some("c9".into());
    let mut w = world(vec![bad, Turn::text("ok")], Rules::default()).await;
    let outcome = w.agent.run("read", &CancelToken::new()).await.unwrap();
    assert_eq!(outcome.stop, Stop::Finished);
    let requests = w.script.requests();
    let result =
        requests[1]["messages"].as_array().unwrap().iter().find(|m| m["tool_call_id"] == "c9").unwrap().clone();
    assert!(result["content"].as_str().unwrap().contains("read_file"), "{result}");
    assert!(kinds(&w.log).is_empty(), "an unparsable call is not run, so nothing is decided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_runs_when_the_decision_cannot_be_recorded() {
    let mut rules = Rules::default();
    rules.granted.push("write_file".into());
    let mut w =
        world(vec![Turn::call("write_file", serde_json::json!({"path": "x.txt", "content": "x"}))], rules).await;
    *w.log.1.lock().unwrap() = true;
    let err = w.agent.run("write", &CancelToken::new()).await.unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(!w.root.join("x.txt").exists(), "a call ran without being on the record");
}

#[test]
fn default_rules_read_freely_and_ask_before_changing_anything() {
    let r = Rules::default();
    assert!(r.headless);
    for (tool, want) in [
        ("read_file", Decision::Allow),
        ("grep", Decision::Allow),
        ("write_file", Decision::Deny),
        ("run_command", Decision::Deny),
    ] {
        let got = airlock_core::decide(&r, tool, &serde_json::json!({"command": "ls"})).decision;
        assert_eq!(got, want, "{tool}");
    }
}
