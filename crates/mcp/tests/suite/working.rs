//! A well-behaved server: its tools, resources and prompts, and how long things take.

use std::time::Instant;

use airlock_mcp::{Hub, ServerEvent};
use serde_json::json;

use super::support::{Session, spec};

#[test]
fn a_server_offers_its_tools_and_answers_calls() {
    let session = Session::new();
    let (hub, errors) = Hub::start(&[spec("good", "good")], &session.launcher);
    assert!(errors.is_empty(), "{errors:?}");
    let tools = hub.tools();
    let echo = tools.iter().find(|t| t.name == "mcp__good__echo").expect("echo is offered");
    assert!(echo.read_only, "readOnlyHint: true makes it read-only");
    assert_eq!(echo.server, "good");
    assert_eq!(echo.input_schema["required"], json!(["text"]));
    let env = tools.iter().find(|t| t.name == "mcp__good__env").unwrap();
    assert!(!env.read_only, "no annotation: not read-only");
    for extra in ["list_resources", "read_resource", "list_prompts", "get_prompt"] {
        let tool = tools.iter().find(|t| t.name == format!("mcp__good__{extra}")).expect(extra);
        assert!(tool.read_only, "{extra}");
    }

    let out = hub.call("mcp__good__echo", &json!({"text": "hello"})).unwrap();
    assert_eq!((out.text.as_str(), out.is_error), ("hello", false));
    let image = hub.call("mcp__good__image", &json!({})).unwrap();
    assert_eq!(image.text, "[image: image/png, 5 bytes]");

    let listed = hub.call("mcp__good__list_resources", &json!({})).unwrap();
    assert_eq!(listed.text, "mem://hello  hello (text/plain)");
    let read = hub.call("mcp__good__read_resource", &json!({"uri": "mem://hello"})).unwrap();
    assert_eq!(read.text, "hello, resource");
    let missing = hub.call("mcp__good__read_resource", &json!({"uri": "mem://nope"})).unwrap_err().to_string();
    assert!(missing.contains("answered resources/read with an error: no such resource"), "{missing}");
    assert!(hub.call("mcp__good__read_resource", &json!({})).unwrap_err().to_string().contains("\"uri\""));
    let prompts = hub.call("mcp__good__list_prompts", &json!({})).unwrap();
    assert_eq!(prompts.text, "greet(who): Greets");
    let prompt = hub.call("mcp__good__get_prompt", &json!({"name": "greet", "arguments": {"who": "Ada"}})).unwrap();
    assert_eq!(prompt.text, "user: Hello, Ada!");

    let err = hub.call("mcp__good__nothing", &json!({})).unwrap_err().to_string();
    assert_eq!(err, "no MCP tool named \"mcp__good__nothing\"");
    let err = hub.call("mcp__good__echo", &json!([1])).unwrap_err().to_string();
    assert!(err.contains("must be a JSON object"), "{err}");

    let events = hub.take_events();
    let ServerEvent::Started { server, digest, tools: names } = &events[0] else { panic!("{events:?}") };
    assert_eq!(server, "good");
    assert!(digest.starts_with("sha256:"));
    assert!(names.contains(&"mcp__good__echo".to_string()));
    assert!(hub.take_events().is_empty(), "events are taken once");
    hub.shutdown();
}

#[test]
fn start_and_call_times_are_measured() {
    let session = Session::new();
    let started = Instant::now();
    let (hub, errors) = Hub::start(&[spec("timed", "good")], &session.launcher);
    let start = started.elapsed();
    assert!(errors.is_empty(), "{errors:?}");
    hub.call("mcp__timed__echo", &json!({"text": "warm"})).unwrap();
    let rounds = 200;
    let began = Instant::now();
    for i in 0..rounds {
        let out = hub.call("mcp__timed__echo", &json!({"text": i.to_string()})).unwrap();
        assert_eq!(out.text, i.to_string());
    }
    let per_call = began.elapsed() / rounds;
    println!(
        "mcp timing: start (sandbox + initialize + tools/list) {start:?}; call round trip {per_call:?} (mean of {rounds})"
    );
    hub.shutdown();
}
