//! The scripted model server, driven by airlock's real model client in both API styles, over plain HTTP for the
//! Responses API (which that client does not speak) and the routes that take no turn, and the `scripted-model`
//! binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airlock_model::{
    ApiStyle, CancelToken, Client, ContentPart, Endpoint, Message, Request, Response, StopReason, StreamEvent,
    ToolSpec, Usage,
};
use airlock_test_support::scripted::{EXHAUSTED, Listen, ScriptedModel, THINKING_SIGNATURE, Turn};
use serde_json::{Value, json};

const STYLES: [ApiStyle; 2] = [ApiStyle::OpenAi, ApiStyle::Anthropic];

fn client(model: &ScriptedModel, style: ApiStyle) -> Client {
    let unix_socket = match model.listen() {
        Listen::Unix(path) => Some(path.clone()),
        Listen::Port(_) => None,
    };
    Client::new(Endpoint {
        style,
        base_url: model.base_url(),
        api_key: None,
        unix_socket,
        timeout: Duration::from_secs(10),
        max_retries: 0,
    })
    .unwrap()
}

fn request(messages: Vec<Message>) -> Request {
    let tool = |name: &str| ToolSpec { name: name.into(), description: String::new(), parameters: json!({}) };
    Request {
        model: "scripted".into(),
        messages,
        tools: vec![tool("read_file"), tool("grep")],
        max_tokens: 1000,
        ..Request::default()
    }
}

/// One streamed completion: the events as they came, and the response.
async fn ask(client: &Client, request: &Request) -> (Vec<StreamEvent>, Response) {
    let mut events = Vec::new();
    let response = client.complete(request, &mut |e| events.push(e), &CancelToken::new()).await.unwrap();
    (events, response)
}

fn path(request: &Value) -> &str {
    request["path"].as_str().unwrap()
}

#[tokio::test]
async fn parallel_tool_calls_arrive_whole_with_text_and_usage() {
    for style in STYLES {
        let model = ScriptedModel::start(vec![
            Turn::call("read_file", json!({"path": "src/lib.rs"}))
                .and_call("grep", json!({"pattern": "fn main", "path": "."}))
                .with_text("Looking at both.")
                .with_usage(1234, 56),
        ]);
        let (events, response) = ask(&client(&model, style), &request(vec![Message::User("look".into())])).await;
        assert_eq!(response.text, "Looking at both.", "{style:?}");
        assert_eq!(response.stop_reason, StopReason::ToolUse, "{style:?}");
        assert_eq!(response.usage, Usage { input_tokens: 1234, output_tokens: 56 }, "{style:?}");
        assert!(response.invalid_tool_calls.is_empty(), "{style:?}: {:?}", response.invalid_tool_calls);
        let calls: Vec<(&str, &str, &Value)> =
            response.tool_calls.iter().map(|c| (c.id.as_str(), c.name.as_str(), &c.arguments)).collect();
        assert_eq!(
            calls,
            [
                ("call_0_0", "read_file", &json!({"path": "src/lib.rs"})),
                ("call_0_1", "grep", &json!({"pattern": "fn main", "path": "."})),
            ],
            "{style:?}"
        );
        // The arguments came in pieces, each call under its own index.
        for index in 0..2 {
            let pieces = events
                .iter()
                .filter(|e| matches!(e, StreamEvent::ToolCallDelta { index: i, .. } if *i == index))
                .count();
            assert!(pieces > 1, "{style:?}: call {index} came in {pieces} piece(s)");
        }
        let text_pieces = events.iter().filter(|e| matches!(e, StreamEvent::TextDelta(_))).count();
        assert!(text_pieces > 1, "{style:?}");
        let requests = model.requests();
        assert_eq!(requests.len(), 1);
        let expected_path = if style == ApiStyle::OpenAi { "/v1/chat/completions" } else { "/v1/messages" };
        assert_eq!(path(&requests[0]), expected_path);
        assert_eq!(requests[0]["stream"], true);
        assert_eq!(model.raw_bodies().len(), 1);
        assert_eq!(model.violations(), Vec::<String>::new());
        assert_eq!(model.turns_left(), 0);
    }
}

#[tokio::test]
async fn thinking_arrives_before_the_text() {
    for style in STYLES {
        let model = ScriptedModel::start(vec![Turn::text("All done.").with_thinking("Check the tests first.")]);
        let (events, response) = ask(&client(&model, style), &request(vec![Message::User("go".into())])).await;
        assert_eq!(response.text, "All done.", "{style:?}");
        assert_eq!(response.stop_reason, StopReason::EndTurn, "{style:?}");
        assert_eq!(response.usage, Usage { input_tokens: 100, output_tokens: 10 }, "{style:?}");
        let signature = (style == ApiStyle::Anthropic).then(|| THINKING_SIGNATURE.to_owned());
        assert_eq!(
            response.thinking,
            [ContentPart::Thinking { text: "Check the tests first.".into(), signature }],
            "{style:?}"
        );
        let first_text = events.iter().position(|e| matches!(e, StreamEvent::TextDelta(_))).unwrap();
        let last_thinking = events.iter().rposition(|e| matches!(e, StreamEvent::ThinkingDelta(_))).unwrap();
        assert!(last_thinking < first_text, "{style:?}");
        assert!(model.violations().is_empty(), "{:?}", model.violations());
    }
}

#[tokio::test]
async fn each_request_is_checked_against_its_turn() {
    for style in STYLES {
        let model = ScriptedModel::start(vec![
            Turn::call("read_file", json!({"path": "a.txt"})).expect_contains("read the \"file\"\nplease"),
            Turn::text("It says hello.")
                .expect_contains("hello from a.txt")
                .expect_absent("sk-secret")
                .expect_contains("never sent")
                .expect_absent("read_file"),
        ]);
        let client = client(&model, style);
        let mut messages = vec![Message::User("read the \"file\"\nplease".into())];
        let (_, first) = ask(&client, &request(messages.clone())).await;
        messages.push(Message::from_response(&first));
        messages.push(Message::ToolResult {
            call_id: first.tool_calls[0].id.clone(),
            content: "hello from a.txt".into(),
            is_error: false,
        });
        let (_, second) = ask(&client, &request(messages)).await;
        assert_eq!(second.text, "It says hello.");
        let violations = model.violations();
        assert_eq!(violations.len(), 2, "{style:?}: {violations:?}");
        assert!(violations[0].contains("request 1") && violations[0].contains("\"never sent\""), "{violations:?}");
        assert!(violations[1].contains("request 1") && violations[1].contains("\"read_file\""), "{violations:?}");
    }
}

#[tokio::test]
async fn malformed_arguments_arrive_as_an_invalid_tool_call() {
    for style in STYLES {
        let model = ScriptedModel::start(vec![
            Turn::raw_call("read_file", "{path: lib.rs").and_call("grep", json!({"pattern": "x"})),
        ]);
        let (_, response) = ask(&client(&model, style), &request(vec![Message::User("read".into())])).await;
        assert_eq!(response.tool_calls.len(), 1, "{style:?}");
        assert_eq!(response.tool_calls[0].name, "grep");
        assert_eq!(response.invalid_tool_calls.len(), 1, "{style:?}");
        let invalid = &response.invalid_tool_calls[0];
        assert_eq!(
            (invalid.id.as_str(), invalid.name.as_str(), invalid.raw.as_str()),
            ("call_0_0", "read_file", "{path: lib.rs")
        );
        assert!(model.violations().is_empty());
    }
}

#[tokio::test]
async fn an_exhausted_script_answers_and_says_so() {
    for style in STYLES {
        let model = ScriptedModel::start(vec![Turn::text("only one")]);
        let client = client(&model, style);
        let (_, first) = ask(&client, &request(vec![Message::User("1".into())])).await;
        assert_eq!(first.text, "only one");
        let (_, second) = ask(&client, &request(vec![Message::User("2".into())])).await;
        assert_eq!(second.text, EXHAUSTED);
        assert_eq!(second.stop_reason, StopReason::EndTurn);
        let violations = model.violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("no turn left"), "{violations:?}");
    }
}

#[tokio::test]
async fn a_unix_socket_serves_the_same_script() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("model.sock");
    let model = ScriptedModel::start_unix(vec![Turn::call("grep", json!({"pattern": "a"})), Turn::text("ok")], &socket);
    let (_, first) = ask(&client(&model, ApiStyle::OpenAi), &request(vec![Message::User("1".into())])).await;
    assert_eq!(first.tool_calls[0].arguments, json!({"pattern": "a"}));
    let (_, second) = ask(&client(&model, ApiStyle::Anthropic), &request(vec![Message::User("2".into())])).await;
    assert_eq!(second.text, "ok");
    assert_eq!(model.violations(), Vec::<String>::new());
    drop(model);
    assert!(!socket.exists(), "the socket is removed when the server stops");
}

#[tokio::test]
async fn unstreamed_answers_models_and_bad_requests() {
    let model = ScriptedModel::start(vec![
        Turn::call("read_file", json!({"path": "a"})).with_thinking("hm").with_usage(5, 6),
        Turn::raw_call("read_file", "{path: a").with_text("t"),
    ]);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", model.base_url());
    let post = |path: &str, body: String| http.post(url(path)).body(body).send();

    let openai: Value = post("/v1/chat/completions", json!({"model": "m", "messages": []}).to_string())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "chat.completion");
    assert_eq!(openai["model"], "m");
    let choice = &openai["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(choice["message"]["reasoning_content"], "hm");
    assert_eq!(choice["message"]["tool_calls"][0]["function"]["arguments"], r#"{"path":"a"}"#);
    assert_eq!(openai["usage"], json!({"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}));

    let anthropic: Value =
        post("/v1/messages", json!({"model": "m", "messages": []}).to_string()).await.unwrap().json().await.unwrap();
    assert_eq!(anthropic["type"], "message");
    assert_eq!(anthropic["stop_reason"], "tool_use");
    assert_eq!(anthropic["content"][0], json!({"type": "text", "text": "t"}));
    // Input that is not JSON can only be sent as a string.
    assert_eq!(anthropic["content"][1]["input"], "{path: a");

    let models: Value = http.get(url("/v1/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "scripted");

    let bad = post("/v1/chat/completions", "{oops".into()).await.unwrap();
    assert_eq!(bad.status(), 400);
    let unknown = post("/chat/completions", "{}".into()).await.unwrap();
    assert_eq!(unknown.status(), 404);

    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[2], json!({"path": "/v1/chat/completions", "unparsed": "{oops"}));
    assert_eq!(model.raw_bodies()[2], "{oops");
    let violations = model.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("not JSON"), "{violations:?}");
    assert!(violations[1].contains("POST /chat/completions"), "{violations:?}");
    assert_eq!(model.turns_left(), 0, "a body that is not JSON takes no turn");
}

/// A Responses request as Codex CLI sends it: a function tool, a custom (free-text) tool, the conversation as input.
fn responses_request(stream: bool, input: Value) -> String {
    json!({
        "model": "gpt-5.5",
        "instructions": "You are a coding agent.",
        "input": input,
        "tools": [
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}, "strict": false},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": ""}},
            {"type": "web_search"},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "stream": stream,
        "store": false,
    })
    .to_string()
}

/// The `(event, data)` pairs of a server-sent-events body.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap().to_owned();
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (event, serde_json::from_str(data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn responses_stream_items_in_the_order_codex_reads_them() {
    let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n";
    let model = ScriptedModel::start(vec![
        Turn::text("Running it.")
            .with_thinking("List first.")
            .and_call("exec_command", json!({"cmd": "ls"}))
            .and_raw_call("apply_patch", patch)
            .with_usage(300, 20),
    ]);
    let user = json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}]);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/responses", model.base_url()))
        .body(responses_request(true, user))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_events(&response.text().await.unwrap());
    for (event, data) in &events {
        assert_eq!(data["type"], event.as_str(), "the event name and the data's type agree");
    }
    let numbers: Vec<u64> = events.iter().map(|(_, d)| d["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    // Repeated deltas collapsed: the shape of the stream, item by item.
    let mut kinds: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let joined = |kind: &str| -> String {
        events.iter().filter(|(e, _)| e == kind).map(|(_, d)| d["delta"].as_str().unwrap()).collect()
    };
    assert_eq!(joined("response.reasoning_summary_text.delta"), "List first.");
    assert_eq!(joined("response.output_text.delta"), "Running it.");
    assert_eq!(joined("response.function_call_arguments.delta"), r#"{"cmd":"ls"}"#);
    assert_eq!(joined("response.custom_tool_call_input.delta"), patch);
    assert!(events.iter().filter(|(e, _)| e.ends_with(".delta")).count() > 4, "the deltas come in pieces");

    let done: Vec<&Value> =
        events.iter().filter(|(e, _)| e == "response.output_item.done").map(|(_, d)| &d["item"]).collect();
    assert_eq!(done[0]["type"], "reasoning");
    assert_eq!(done[0]["summary"], json!([{"type": "summary_text", "text": "List first."}]));
    assert_eq!(done[1]["content"], json!([{"type": "output_text", "text": "Running it.", "annotations": []}]));
    assert_eq!(
        (&done[2]["type"], &done[2]["call_id"], &done[2]["name"]),
        (&json!("function_call"), &json!("call_0_0"), &json!("exec_command"))
    );
    assert_eq!(
        (&done[3]["type"], &done[3]["call_id"], &done[3]["input"]),
        (&json!("custom_tool_call"), &json!("call_0_1"), &json!(patch)),
        "a tool the request declares as custom gets its input as free text"
    );
    let added = &events[2].1;
    assert_eq!(added["item"]["summary"], json!([]), "items are added empty");
    let created = &events[0].1["response"];
    assert_eq!((&created["status"], &created["output"]), (&json!("in_progress"), &json!([])));
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"].as_array().unwrap().len(), 4);
    assert_eq!(completed["usage"]["input_tokens"], 300);
    assert_eq!(completed["usage"]["output_tokens"], 20);
    assert_eq!(completed["usage"]["total_tokens"], 320);
    assert_eq!(model.requests()[0]["path"], "/v1/responses");
    assert_eq!(model.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn responses_unstreamed_answer_and_expectations_on_the_tool_output() {
    let model = ScriptedModel::start(vec![
        Turn::call("exec_command", json!({"cmd": "echo MARKER-$((6*7))"})),
        Turn::text("done").expect_contains("MARKER-42").expect_absent("sk-secret").expect_contains("never sent"),
    ]);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/responses", model.base_url());
    let user = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]});
    let first: Value =
        http.post(&url).body(responses_request(false, json!([user]))).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (&first["object"], &first["status"], &first["model"]),
        (&json!("response"), &json!("completed"), &json!("gpt-5.5"))
    );
    let call = &first["output"][0];
    assert_eq!(first["output"].as_array().unwrap().len(), 1, "no text, no message item");
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["arguments"], r#"{"cmd":"echo MARKER-$((6*7))"}"#);
    assert_eq!(first["usage"]["total_tokens"], 110);

    // The next request carries the call and its output, as Codex sends them back.
    let output = json!({"type": "function_call_output", "call_id": call["call_id"], "output": "MARKER-42\n"});
    let input = json!([user, call, output]);
    let second: Value =
        http.post(&url).body(responses_request(false, input)).send().await.unwrap().json().await.unwrap();
    assert_eq!(second["output"][0]["content"][0]["text"], "done");
    let violations = model.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("request 1 (POST /v1/responses), turn 1") && violations[0].contains("\"never sent\""),
        "{violations:?}"
    );

    let bad = http.post(&url).body("{oops").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn every_route_is_recorded_and_reachability_checks_are_answered() {
    let model = ScriptedModel::start(vec![Turn::text("hi")]);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", model.base_url());
    // Claude Code's checks that the base URL answers: `HEAD /`, later `HEAD /api/hello`.
    assert_eq!(http.head(url("/")).send().await.unwrap().status(), 200);
    assert_eq!(http.head(url("/api/hello")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(url("/v1/models")).send().await.unwrap().status(), 200);
    let body = json!({"model": "m", "max_tokens": 10, "messages": []}).to_string();
    let answer: Value = http.post(url("/v1/messages?beta=true")).body(body).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], "hi");
    assert_eq!(http.get(url("/api/event_logging/batch")).send().await.unwrap().status(), 404);
    assert_eq!(
        model.routes(),
        ["HEAD /", "HEAD /api/hello", "GET /v1/models", "POST /v1/messages?beta=true", "GET /api/event_logging/batch"]
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 1, "only model requests take a turn and are in requests()");
    assert_eq!((&requests[0]["path"], &requests[0]["query"]), (&json!("/v1/messages"), &json!("beta=true")));
    let violations = model.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("GET /api/event_logging/batch"), "{violations:?}");
}

#[tokio::test]
async fn the_binary_serves_a_script_file_and_logs_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.json");
    let log = dir.path().join("requests.jsonl");
    let port_file = dir.path().join("port");
    std::fs::write(
        &script,
        json!([
            {"calls": [{"name": "read_file", "arguments": {"path": "a"}}, {"name": "grep", "arguments": "{bad"}],
             "usage": {"input": 7, "output": 8}},
            {"text": "done", "expect_contains": ["not in the request"]},
        ])
        .to_string(),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scripted-model"))
        .args(["--script".as_ref(), script.as_os_str(), "--log".as_ref(), log.as_os_str()])
        .args(["--port-file".as_ref(), port_file.as_os_str()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            break text.trim().parse::<u16>().unwrap();
        }
        assert!(child.try_wait().unwrap().is_none(), "scripted-model exited early");
        assert!(std::time::Instant::now() < deadline, "scripted-model wrote no port file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let client = Client::new(Endpoint {
        style: ApiStyle::Anthropic,
        base_url: format!("http://127.0.0.1:{port}"),
        api_key: None,
        unix_socket: None,
        timeout: Duration::from_secs(10),
        max_retries: 0,
    })
    .unwrap();
    let (_, first) = ask(&client, &request(vec![Message::User("1".into())])).await;
    let models = reqwest::get(format!("http://127.0.0.1:{port}/v1/models")).await.unwrap();
    assert_eq!(models.status(), 200);
    let (_, second) = ask(&client, &request(vec![Message::User("2".into())])).await;
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(first.tool_calls[0].arguments, json!({"path": "a"}));
    assert_eq!(first.invalid_tool_calls[0].raw, "{bad");
    assert_eq!(first.usage, Usage { input_tokens: 7, output_tokens: 8 });
    assert_eq!(second.text, "done");
    let lines: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(path(&lines[0]), "/v1/messages");
    assert_eq!(lines[1], json!({"route": "GET /v1/models"}), "a request that takes no turn is logged as its route");
    assert_eq!(lines[2]["messages"][0]["content"], "2");
    assert!(lines[3]["violation"].as_str().unwrap().contains("not in the request"), "{lines:?}");
}

#[tokio::test]
async fn a_side_answer_takes_requests_without_tools_and_leaves_the_turns() {
    let model = ScriptedModel::start(vec![Turn::call("Bash", json!({"command": "ls"})), Turn::text("done")]);
    model.set_side_answer(Some(Turn::text("A title")));
    let ask = |tools: serde_json::Value| {
        let body = json!({"model": "m", "max_tokens": 10, "tools": tools,
                          "messages": [{"role": "user", "content": "go"}]});
        let url = format!("{}/v1/messages", model.base_url());
        async move { reqwest::Client::new().post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let bash = json!([{"name": "Bash", "input_schema": {"type": "object"}}]);
    let title = ask(json!([])).await;
    assert_eq!(title["content"][0]["text"], "A title");
    let first = ask(bash.clone()).await;
    assert_eq!(first["content"][0]["name"], "Bash", "the side request took no turn: {first}");
    assert_eq!(ask(json!([])).await["content"][0]["text"], "A title");
    assert_eq!(ask(bash).await["content"][0]["text"], "done");
    assert_eq!(model.violations(), Vec::<String>::new());
}

/// The `data:` chunks of a Gemini API stream.
fn gemini_chunks(text: &str) -> Vec<Value> {
    text.split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn the_gemini_api_streams_calls_and_text_and_counts_tokens_without_a_turn() {
    let model = ScriptedModel::start(vec![
        Turn::call("run_shell_command", json!({"command": "ls", "description": "list"}))
            .with_text("Listing.")
            .expect_contains("run_shell_command"),
        Turn::text("done").with_usage(300, 4).expect_contains("MARKER"),
    ]);
    let http = reqwest::Client::new();
    let url = |rest: &str| format!("{}/v1beta/models/gemini-2.5-pro:{rest}", model.base_url());
    let tools = json!([{"functionDeclarations": [{"name": "run_shell_command"}]}]);
    let first = json!({"contents": [{"role": "user", "parts": [{"text": "list the files"}]}], "tools": tools});
    let counted: Value = http.post(url("countTokens")).json(&first).send().await.unwrap().json().await.unwrap();
    assert!(counted["totalTokens"].as_u64().unwrap() > 0);

    let r = http.post(url("streamGenerateContent?alt=sse")).json(&first).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let chunks = gemini_chunks(&r.text().await.unwrap());
    assert!(chunks.len() > 2, "text in pieces, then the call: {chunks:?}");
    let parts: Vec<&Value> = chunks.iter().map(|c| &c["candidates"][0]["content"]["parts"][0]).collect();
    let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
    assert_eq!(text, "Listing.");
    let call = &parts.last().unwrap()["functionCall"];
    assert_eq!(
        (call["name"].as_str(), &call["args"]),
        (Some("run_shell_command"), &json!({"command": "ls", "description": "list"}))
    );
    assert!(call.get("id").is_none(), "no id unless the script names one");
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["promptTokenCount"], 100);
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c["candidates"][0].get("finishReason").is_none()));

    let second = json!({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "run_shell_command",
        "response": {"output": "MARKER-RAN-42"}}}]}], "tools": tools});
    let whole: Value = http.post(url("generateContent")).json(&second).send().await.unwrap().json().await.unwrap();
    assert_eq!(whole["candidates"][0]["content"]["parts"], json!([{"text": "done"}]));
    assert_eq!(whole["candidates"][0]["finishReason"], "STOP");
    assert_eq!(whole["usageMetadata"]["candidatesTokenCount"], 4);

    assert_eq!(model.violations(), Vec::<String>::new());
    let requests = model.requests();
    assert_eq!(
        requests.iter().map(|r| (path(r), r["query"].as_str())).collect::<Vec<_>>(),
        [
            ("/v1beta/models/gemini-2.5-pro:streamGenerateContent", Some("alt=sse")),
            ("/v1beta/models/gemini-2.5-pro:generateContent", None)
        ]
    );
    assert_eq!(model.routes()[0], "POST /v1beta/models/gemini-2.5-pro:countTokens");
    // An unknown method is a violation, in the Gemini API's error format.
    let r = http.post(url("embedContent")).json(&first).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(model.violations().len(), 1);
}
