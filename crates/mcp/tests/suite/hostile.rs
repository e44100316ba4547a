//! Hostile servers: each misbehaviour stops that server alone, with a clear
//! error, and a well-behaved server beside it keeps answering.

use std::time::{Duration, Instant};

use airlock_mcp::{Hub, McpError, ServerEvent};
use serde_json::json;

use super::support::{Session, server_script, spec};

/// Processes whose command line holds the test server's script and `mode`.
fn processes_of(mode: &str) -> Vec<u32> {
    let script = server_script();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&script.as_bytes()) && args.contains(&mode.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Waits up to 5 s for every process of `mode` to be gone.
fn assert_gone(mode: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_of(mode).is_empty() {
        assert!(Instant::now() < deadline, "the {mode} server still runs: {:?}", processes_of(mode));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stopped_reason(err: McpError, server: &str) -> String {
    match err {
        McpError::Stopped { server: s, reason } if s == server => reason,
        other => panic!("expected {server} stopped, got: {other}"),
    }
}

#[test]
fn each_misbehaviour_stops_only_its_server() {
    let session = Session::new();
    let mut hang = spec("hang", "hang");
    hang.call_timeout = Duration::from_secs(2);
    let modes = ["malformed", "huge", "flood", "exit"];
    let mut specs = vec![spec("good", "good"), hang];
    specs.extend(modes.iter().map(|m| spec(m, m)));
    let (hub, errors) = Hub::start(&specs, &session.launcher);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(!processes_of("hang").is_empty(), "the hang server runs before its call");

    let cases = [
        ("malformed", "it sent a line that is not a JSON-RPC message"),
        ("huge", "it sent a line longer than 8 MiB"),
        ("flood", "it sent more than 64 MiB during one call"),
        ("exit", "it exited with status 3; its standard error ended with: fatal: the server gives up mid-call"),
        ("hang", "it did not answer tools/call misbehave within 2 s; killed"),
    ];
    for (server, expected) in cases {
        let began = Instant::now();
        let err = hub.call(&format!("mcp__{server}__misbehave"), &json!({})).unwrap_err();
        let text = err.to_string();
        let reason = stopped_reason(err, server);
        assert!(reason.contains(expected), "{server}: {reason}");
        assert!(text.starts_with(&format!("server {server} was stopped: ")), "{text}");
        println!("{server}: stopped after {:?}: {reason}", began.elapsed());
        // Later calls fail at once, naming the same reason.
        let again = hub.call(&format!("mcp__{server}__echo"), &json!({"text": "x"})).unwrap_err();
        assert_eq!(stopped_reason(again, server), reason);
        // The other server goes on.
        let out = hub.call("mcp__good__echo", &json!({"text": server})).unwrap();
        assert_eq!(out.text, server);
        assert_gone(server);
    }
    let tools = hub.tools();
    assert!(tools.iter().all(|t| t.server == "good"), "a stopped server's tools are no longer offered");

    let events = hub.take_events();
    for (server, expected) in cases {
        let stopped = events.iter().any(
            |e| matches!(e, ServerEvent::Stopped { server: s, reason } if s == server && reason.contains(expected)),
        );
        assert!(stopped, "no Stopped event for {server} in {events:?}");
    }
    assert!(!events.iter().any(|e| matches!(e, ServerEvent::Stopped { server, .. } if server == "good")));
    hub.shutdown();
    assert_gone("good");
}

#[test]
fn tools_with_injected_or_oversized_descriptions_are_checked() {
    let session = Session::new();
    let (hub, errors) = Hub::start(&[spec("inject", "inject")], &session.launcher);
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(
        has("tool \"long_story\" is not offered: its description is 5200 bytes, more than the 2048 offered"),
        "{errors:?}"
    );
    assert!(has("tool \"big_schema\" is not offered: its input schema is"), "{errors:?}");
    assert!(has("tool \"echo\" is not offered: another tool is already offered as mcp__inject__echo"), "{errors:?}");
    assert_eq!(errors.len(), 3, "{errors:?}");

    let tools = hub.tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(!names.contains(&"mcp__inject__long_story") && !names.contains(&"mcp__inject__big_schema"));
    let dotted = tools.iter().find(|t| t.name == "mcp__inject__dotted_name_v2").expect("renamed tool offered");
    assert_eq!(dotted.tool, "dotted.name/v2");
    // The call goes out under the server's own name (the test server knows no such tool and says so).
    let err = hub.call("mcp__inject__dotted_name_v2", &json!({})).unwrap_err().to_string();
    assert_eq!(err, "MCP server inject answered tools/call dotted.name/v2 with an error: no tool dotted.name/v2");
    let helpful = tools.iter().find(|t| t.name == "mcp__inject__helpful").unwrap();
    assert!(!helpful.description.chars().any(|c| c.is_control()), "{:?}", helpful.description);
    let echo = tools.iter().find(|t| t.name == "mcp__inject__echo").unwrap();
    assert_eq!(echo.description, "Echo the text back.", "the first of two tools with one name is kept");
    hub.shutdown();
}

#[test]
fn a_server_that_does_not_finish_starting_is_refused_and_killed() {
    let session = Session::new();
    let mut slow = spec("slow", "slowstart");
    slow.start_timeout = Duration::from_secs(1);
    let began = Instant::now();
    let (hub, errors) = Hub::start(&[slow, spec("good", "good")], &session.launcher);
    assert!(began.elapsed() < Duration::from_secs(5), "{:?}", began.elapsed());
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(matches!(errors[0], McpError::StartTimeout { secs: 1, .. }), "{text}");
    assert!(text.contains("did not start within 1 s") && text.contains("loading a very large index"), "{text}");
    assert_gone("slowstart");
    assert_eq!(hub.call("mcp__good__echo", &json!({"text": "up"})).unwrap().text, "up");
    let events = hub.take_events();
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Refused { server, .. } if server == "slow")), "{events:?}");
    hub.shutdown();
}

#[test]
fn an_interrupted_call_ends_at_once_and_its_server_goes_on() {
    let session = Session::new();
    let mut s = spec("slow", "hang");
    s.call_timeout = Duration::from_secs(30);
    let (hub, errors) = Hub::start(&[s], &session.launcher);
    assert!(errors.is_empty(), "{errors:?}");
    let interrupter = hub.interrupter();
    let began = Instant::now();
    let pressing = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        interrupter.interrupt();
    });
    let err = hub.call("mcp__slow__misbehave", &json!({})).unwrap_err();
    pressing.join().unwrap();
    assert!(matches!(&err, McpError::Interrupted { server } if server == "slow"), "{err}");
    assert!(began.elapsed() < Duration::from_secs(5), "took {:?}", began.elapsed());
    // Not stopped: the next call is answered.
    let echoed = hub.call("mcp__slow__echo", &json!({"text": "still here"})).unwrap();
    assert_eq!(echoed.text, "still here");
    // An interrupt with no call in progress does not reach the next call.
    hub.interrupter().interrupt();
    assert_eq!(hub.call("mcp__slow__echo", &json!({"text": "again"})).unwrap().text, "again");
    hub.shutdown();
    assert_gone("hang");
}
