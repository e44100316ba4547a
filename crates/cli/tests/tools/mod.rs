//! The agent's `run_command` tool through the real `airlock sandbox`.

use crate::support::{Verdict, airlock_bin};

pub fn run_command_runs_confined_in_the_workspace() -> Verdict {
    let dir = tempfile::Builder::new().prefix("airlock-tools-").tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let ws = airlock_tools::Workspace::open(&root, airlock_tools::PathPolicy::defaults()).unwrap();
    let runner = airlock_tools::SandboxRunner::new(airlock_bin(), 64 * 1024);
    let mut tools = airlock_tools::Tools::new(ws).with_runner(Box::new(runner));
    let outside = std::env::temp_dir().join(format!("airlock-run-command-escape-{}", std::process::id()));
    let command = format!(
        "echo made > made.txt && cat made.txt; echo no > {}; echo wrote-outside=$?; echo oops >&2; exit 3",
        outside.display()
    );
    let out = tools.call("run_command", &serde_json::json!({"command": command, "timeout_secs": 60}));
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.starts_with("exit 3 ("), "{}", out.content);
    assert!(out.content.contains("made\n") && out.content.contains("oops"), "{}", out.content);
    assert_eq!(std::fs::read_to_string(root.join("made.txt")).unwrap(), "made\n");
    // The sandbox's /tmp is private: the write landed there, not on the host.
    assert!(!outside.exists(), "a command wrote outside the workspace");
    let slow = tools.call("run_command", &serde_json::json!({"command": "sleep 30", "timeout_secs": 1}));
    assert!(slow.content.starts_with("killed after the 1 s timeout"), "{}", slow.content);
    Verdict::Passed
}
