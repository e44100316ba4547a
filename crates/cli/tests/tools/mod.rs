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

use airlock_tools::CommandRunner as _;

/// Esc in the interactive session: a running command's whole sandbox stops
/// at once, and the next command is not affected.
pub fn an_interrupt_stops_a_running_command() -> Verdict {
    let dir = tempfile::Builder::new().prefix("airlock-tools-").tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let running = airlock_tools::Running::default();
    assert!(!running.interrupt(), "nothing runs yet");
    let mut runner = airlock_tools::SandboxRunner::new(airlock_bin(), 64 * 1024).interruptible(running.clone());
    let stopper = std::thread::spawn(move || {
        // Until the command is there to stop.
        let began = std::time::Instant::now();
        while !running.interrupt() {
            assert!(began.elapsed() < std::time::Duration::from_secs(20), "the command never ran");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let began = std::time::Instant::now();
    let ran = runner.run("sleep 60 & sleep 60; echo never", &root, std::time::Duration::from_secs(120)).unwrap();
    stopper.join().unwrap();
    assert!(began.elapsed() < std::time::Duration::from_secs(30), "the interrupt did not stop it");
    assert_eq!(ran.exit_status, Some(130), "{ran:?}");
    assert!(!ran.output.contains("never"));
    let next = runner.run("echo next", &root, std::time::Duration::from_secs(60)).unwrap();
    assert_eq!((next.exit_status, next.output.as_str()), (Some(0), "next\n"));
    Verdict::Passed
}
