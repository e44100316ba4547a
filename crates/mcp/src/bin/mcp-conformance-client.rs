//! The client under test for the official MCP conformance suite
//! (`tests/mcp/conformance/run`): airlock's [`Hub`] with one remote server,
//! the URL the suite appends as the last argument.
//!
//! It starts the hub (initialize, tools/list), and calls `add_numbers` with
//! `{"a": 1, "b": 2}` when the server offers it (the `tools_call`
//! scenario). Each exchange's record is printed to standard error as a JSON
//! line. Exits 0 when all of it worked, 1 otherwise.
//!
//! usage: mcp-conformance-client [ARGS...] URL
#![allow(clippy::print_stdout, clippy::print_stderr)] // A test program: its output is its report.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use airlock_mcp::{Hub, Launcher, ServerSpec, Transport};

fn main() -> ExitCode {
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("usage: mcp-conformance-client URL");
        return ExitCode::from(2);
    };
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let spec = ServerSpec {
        name: "conformance".into(),
        transport: Transport::Http { url },
        env: Default::default(),
        read: vec![],
        write: vec![],
        hosts: vec![],
        digest: None,
        call_timeout: Duration::from_secs(20),
        start_timeout: Duration::from_secs(20),
    };
    // Nothing runs in a sandbox here: the paths are never used by a remote server.
    let tmp = std::env::temp_dir();
    let mut launcher = Launcher::new("/nonexistent/airlock".into(), tmp.clone(), tmp, Duration::from_secs(60));
    launcher.record = Some(Arc::new(|event| {
        let line = serde_json::to_string(&event).map_err(|e| e.to_string())?;
        eprintln!("record: {line}");
        Ok(())
    }));
    let (hub, errors) = Hub::start(&[spec], &launcher);
    for event in hub.take_events() {
        eprintln!("event: {}", serde_json::to_string(&event).unwrap_or_default());
    }
    if !errors.is_empty() {
        for e in errors {
            eprintln!("error: {e}");
        }
        return ExitCode::FAILURE;
    }
    let tools = hub.tools();
    println!(
        "scenario {scenario:?}: {} tools: {}",
        tools.len(),
        tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    let mut failed = false;
    if tools.iter().any(|t| t.name == "mcp__conformance__add_numbers") {
        match hub.call("mcp__conformance__add_numbers", &serde_json::json!({"a": 1, "b": 2})) {
            Ok(outcome) if !outcome.is_error => println!("add_numbers: {}", outcome.text),
            Ok(outcome) => {
                eprintln!("add_numbers answered with an error: {}", outcome.text);
                failed = true;
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    } else if scenario == "tools_call" {
        eprintln!("error: the server does not offer add_numbers");
        failed = true;
    }
    hub.shutdown();
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
