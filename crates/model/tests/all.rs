//! airlock-model against a scripted server on 127.0.0.1 (and a Unix socket) that replays canned streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use airlock_model::{
        ApiStyle, CancelToken, Client, Endpoint, Message, ModelError, Request, Response, StreamEvent, ToolSpec,
    };
    use axum::body::{Body, Bytes};
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;
    use serde_json::{Value, json};

    /// What the server does for one request.
    #[derive(Clone, Debug)]
    pub enum Reply {
        /// An event stream, sent as these chunks.
        Sse(Vec<Vec<u8>>),
        /// These chunks, then nothing, with the connection left open.
        SseThenHang(Vec<Vec<u8>>),
        /// A plain response.
        Status { status: u16, headers: Vec<(&'static str, &'static str)>, body: String },
        /// One JSON document.
        Json(Value),
        /// Never answers.
        Hang,
    }

    /// What the server received.
    #[derive(Clone, Debug)]
    pub struct Received {
        pub path: String,
        pub headers: HeaderMap,
        pub body: Value,
    }

    #[derive(Clone, Default)]
    struct State {
        replies: Arc<Mutex<Vec<Reply>>>,
        received: Arc<Mutex<Vec<Received>>>,
    }

    pub struct Server {
        pub base_url: String,
        state: State,
    }

    impl Server {
        pub fn received(&self) -> Vec<Received> {
            self.state.received.lock().unwrap().clone()
        }
    }

    fn router(replies: Vec<Reply>) -> (axum::Router, State) {
        let state = State { replies: Arc::new(Mutex::new(replies)), received: Arc::default() };
        let handler_state = state.clone();
        let router = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = handler_state.clone();
            async move {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                state.received.lock().unwrap().push(Received { path: uri.path().to_owned(), headers, body });
                // Replies are used in order; the last one repeats.
                let reply = {
                    let mut replies = state.replies.lock().unwrap();
                    if replies.len() > 1 { replies.remove(0) } else { replies[0].clone() }
                };
                respond(reply).await
            }
        });
        (router, state)
    }

    async fn respond(reply: Reply) -> axum::response::Response {
        match reply {
            Reply::Sse(chunks) => sse(chunks, false),
            Reply::SseThenHang(chunks) => sse(chunks, true),
            Reply::Status { status, headers, body } => {
                let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
                for (name, value) in headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
            Reply::Json(value) => axum::Json(value).into_response(),
            Reply::Hang => std::future::pending().await,
        }
    }

    fn sse(chunks: Vec<Vec<u8>>, hang: bool) -> axum::response::Response {
        let stream = futures_util::stream::unfold(chunks.into_iter(), move |mut chunks| async move {
            match chunks.next() {
                Some(chunk) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Some((Ok::<_, Infallible>(Bytes::from(chunk)), chunks))
                }
                None => {
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    None
                }
            }
        });
        let mut response = Body::from_stream(stream).into_response();
        response.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
        response
    }

    pub async fn serve(replies: Vec<Reply>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (router, state) = router(replies);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Server { base_url: format!("http://{addr}"), state }
    }

    pub async fn serve_unix(socket: &std::path::Path, replies: Vec<Reply>) -> Server {
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        let (router, state) = router(replies);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Server { base_url: "http://broker".to_owned(), state }
    }

    /// OpenAI-style SSE: one `data:` event per chunk value, then `[DONE]`; the whole text cut into `piece`-byte
    /// chunks so events and tokens are split mid-way.
    pub fn openai_sse(chunks: &[Value], piece: usize) -> Vec<Vec<u8>> {
        let mut text = String::new();
        for chunk in chunks {
            text.push_str(&format!("data: {chunk}\n\n"));
        }
        text.push_str("data: [DONE]\n\n");
        cut(text.as_bytes(), piece)
    }

    /// Anthropic-style SSE with `event:` lines.
    pub fn anthropic_sse(events: &[Value], piece: usize) -> Vec<Vec<u8>> {
        let mut text = String::new();
        for event in events {
            text.push_str(&format!("event: {}\ndata: {event}\n\n", event["type"].as_str().unwrap()));
        }
        cut(text.as_bytes(), piece)
    }

    pub fn cut(bytes: &[u8], piece: usize) -> Vec<Vec<u8>> {
        bytes.chunks(piece).map(<[u8]>::to_vec).collect()
    }

    pub fn endpoint(base_url: &str, style: ApiStyle) -> Endpoint {
        Endpoint {
            style,
            base_url: base_url.to_owned(),
            api_key: Some("test-key".to_owned()),
            unix_socket: None,
            timeout: Duration::from_secs(10),
            max_retries: 3,
        }
    }

    pub fn request(messages: Vec<Message>) -> Request {
        Request {
            model: "test-model".into(),
            messages,
            tools: vec![ToolSpec {
                name: "read_file".into(),
                description: "Read a file".into(),
                parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
            }],
            max_tokens: 512,
            temperature: Some(0.0),
            stop: vec![],
        }
    }

    pub async fn complete(client: &Client, request: &Request) -> (Vec<StreamEvent>, Result<Response, ModelError>) {
        let mut events = Vec::new();
        let result = client.complete(request, &mut |e| events.push(e), &CancelToken::new()).await;
        (events, result)
    }

    /// Text of all deltas of one kind.
    pub fn texts(events: &[StreamEvent]) -> (String, String) {
        let (mut text, mut thinking) = (String::new(), String::new());
        for event in events {
            match event {
                StreamEvent::TextDelta(t) => text.push_str(t),
                StreamEvent::ThinkingDelta(t) => thinking.push_str(t),
                _ => {}
            }
        }
        (text, thinking)
    }

    /// Arguments of tool call `index` as streamed.
    pub fn streamed_arguments(events: &[StreamEvent], index: usize) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallDelta { index: i, arguments } if *i == index => Some(arguments.as_str()),
                _ => None,
            })
            .collect()
    }
}

mod openai {
    use crate::support::*;
    use airlock_model::{ApiStyle, Client, Message, StopReason, StreamEvent, ToolCall, Usage};
    use serde_json::json;

    fn delta(delta: serde_json::Value) -> serde_json::Value {
        json!({"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    }

    fn finish(reason: &str) -> serde_json::Value {
        json!({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
    }

    fn tool_fragment(index: usize, id: Option<&str>, name: Option<&str>, arguments: &str) -> serde_json::Value {
        let mut fragment = json!({"index": index, "function": {"arguments": arguments}});
        if let Some(id) = id {
            fragment["id"] = json!(id);
            fragment["type"] = json!("function");
        }
        if let Some(name) = name {
            fragment["function"]["name"] = json!(name);
        }
        delta(json!({"tool_calls": [fragment]}))
    }

    #[tokio::test]
    async fn text_stream_with_usage_only_final_chunk() {
        let chunks = [
            delta(json!({"role": "assistant", "content": ""})),
            delta(json!({"content": "Hel"})),
            delta(json!({"content": "lo, wörld"})),
            finish("stop"),
            json!({"id": "x", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}),
        ];
        let server = serve(vec![Reply::Sse(openai_sse(&chunks, 7))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        let request = request(vec![Message::System("You are terse.".into()), Message::User("Hi".into())]);
        let (events, response) = complete(&client, &request).await;
        let response = response.unwrap();

        assert_eq!(response.text, "Hello, wörld");
        assert_eq!(texts(&events).0, "Hello, wörld");
        assert_eq!(response.usage, Usage { input_tokens: 12, output_tokens: 3 });
        assert_eq!(response.stop_reason, StopReason::EndTurn);
        assert_eq!(events.last(), Some(&StreamEvent::Done(response.clone())));

        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].path, "/v1/chat/completions");
        assert_eq!(received[0].headers["authorization"], "Bearer test-key");
        assert_eq!(
            received[0].body,
            json!({
                "model": "test-model",
                "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
                "tools": [{"type": "function", "function": {"name": "read_file", "description": "Read a file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}],
                "max_tokens": 512,
                "temperature": 0.0,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
    }

    #[tokio::test]
    async fn parallel_tool_calls_split_and_interleaved() {
        let chunks = [
            delta(json!({"role": "assistant", "content": null})),
            tool_fragment(0, Some("call_a"), Some("read_file"), ""),
            tool_fragment(1, Some("call_b"), Some("read_file"), "{\"pa"),
            tool_fragment(0, None, None, "{\"path\""),
            tool_fragment(1, None, None, "th\": \"b.rs"),
            tool_fragment(0, None, None, ": \"a.rs\"}"),
            tool_fragment(1, None, None, "\"}"),
            finish("tool_calls"),
            json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}}),
        ];
        let server = serve(vec![Reply::Sse(openai_sse(&chunks, 5))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        // The conversation so far includes an earlier round of tool calls and results.
        let earlier = ToolCall {
            id: "call_0".into(),
            name: "read_file".into(),
            arguments: json!({"path": "x"}),
            raw_arguments: "{\"path\": \"x\"}".into(),
        };
        let request = request(vec![
            Message::User("Read a.rs and b.rs".into()),
            Message::Assistant { text: "Looking.".into(), thinking: vec![], tool_calls: vec![earlier] },
            Message::ToolResult { call_id: "call_0".into(), content: "fn x() {}".into(), is_error: false },
        ]);
        let (events, response) = complete(&client, &request).await;
        let response = response.unwrap();

        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(response.tool_calls.len(), 2);
        assert!(response.invalid_tool_calls.is_empty());
        assert_eq!(
            (response.tool_calls[0].id.as_str(), &response.tool_calls[0].arguments),
            ("call_a", &json!({"path": "a.rs"}))
        );
        assert_eq!(
            (response.tool_calls[1].id.as_str(), &response.tool_calls[1].arguments),
            ("call_b", &json!({"path": "b.rs"}))
        );
        assert_eq!(streamed_arguments(&events, 0), "{\"path\": \"a.rs\"}");
        assert_eq!(streamed_arguments(&events, 1), "{\"path\": \"b.rs\"}");
        let starts: Vec<_> = events.iter().filter(|e| matches!(e, StreamEvent::ToolCallStart { .. })).collect();
        assert_eq!(
            starts,
            [
                &StreamEvent::ToolCallStart { index: 0, id: "call_a".into(), name: "read_file".into() },
                &StreamEvent::ToolCallStart { index: 1, id: "call_b".into(), name: "read_file".into() },
            ]
        );

        let body = &server.received()[0].body;
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Read a.rs and b.rs"},
                {"role": "assistant", "content": "Looking.", "tool_calls": [{"id": "call_0", "type": "function",
                    "function": {"name": "read_file", "arguments": "{\"path\": \"x\"}"}}]},
                {"role": "tool", "tool_call_id": "call_0", "content": "fn x() {}"},
            ])
        );
    }

    #[tokio::test]
    async fn missing_ids_are_synthesized() {
        let chunks = [
            tool_fragment(0, None, Some("read_file"), "{\"path\": \"a\"}"),
            tool_fragment(1, None, Some("read_file"), "{\"path\": \"b\"}"),
            // An id that repeats the first call's would make tool results ambiguous.
            tool_fragment(2, Some("call_0"), Some("read_file"), "{\"path\": \"c\"}"),
            finish("tool_calls"),
        ];
        let server = serve(vec![Reply::Sse(openai_sse(&chunks, 1000))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        let (_, response) = complete(&client, &request(vec![Message::User("go".into())])).await;
        let ids: Vec<String> = response.unwrap().tool_calls.into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["call_0", "call_1", "call_2"]);
    }

    #[tokio::test]
    async fn trailing_comma_is_repaired_and_garbage_is_an_invalid_call() {
        let chunks = [
            tool_fragment(0, Some("c1"), Some("read_file"), "{\"path\": \"a.rs\",}"),
            tool_fragment(1, Some("c2"), Some("read_file"), "path=a.rs please"),
            finish("tool_calls"),
        ];
        let server = serve(vec![Reply::Sse(openai_sse(&chunks, 3))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        let (_, response) = complete(&client, &request(vec![Message::User("go".into())])).await;
        let response = response.unwrap();
        assert_eq!(response.tool_calls.len(), 1);
        assert_eq!(response.tool_calls[0].arguments, json!({"path": "a.rs"}));
        assert_eq!(response.tool_calls[0].raw_arguments, "{\"path\": \"a.rs\",}");
        assert_eq!(response.invalid_tool_calls.len(), 1);
        let invalid = &response.invalid_tool_calls[0];
        assert_eq!(
            (invalid.id.as_str(), invalid.name.as_str(), invalid.raw.as_str()),
            ("c2", "read_file", "path=a.rs please")
        );
        assert!(invalid.error.contains("not valid JSON"), "{}", invalid.error);

        // The loop records the invalid call and answers it with an error; the next request must be well-formed.
        let follow_up = request(vec![
            Message::User("go".into()),
            Message::from_response(&response),
            Message::ToolResult { call_id: "c1".into(), content: "ok".into(), is_error: false },
            Message::ToolResult { call_id: "c2".into(), content: invalid.error_message(), is_error: true },
        ]);
        let server = serve(vec![Reply::Sse(openai_sse(&[delta(json!({"content": "ok"})), finish("stop")], 50))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        complete(&client, &follow_up).await.1.unwrap();
        let body = &server.received()[0].body;
        assert_eq!(body["messages"][1]["tool_calls"][0]["function"]["arguments"], "{\"path\":\"a.rs\"}");
        assert_eq!(body["messages"][1]["tool_calls"][1]["function"]["arguments"], "{}");
        assert_eq!(body["messages"][3]["tool_call_id"], "c2");
        assert!(body["messages"][3]["content"].as_str().unwrap().starts_with("error: "));
    }

    #[tokio::test]
    async fn arguments_cut_off_by_max_tokens_are_not_repaired() {
        let chunks =
            [tool_fragment(0, Some("c1"), Some("write_file"), "{\"content\": \"fn main() {"), finish("length")];
        let server = serve(vec![Reply::Sse(openai_sse(&chunks, 1000))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        let (_, response) = complete(&client, &request(vec![Message::User("go".into())])).await;
        let response = response.unwrap();
        assert_eq!(response.stop_reason, StopReason::MaxTokens);
        assert!(response.tool_calls.is_empty());
        assert!(response.invalid_tool_calls[0].error.contains("max_tokens"));
    }

    #[tokio::test]
    async fn unstreamed_json_answer_is_accepted() {
        let answer = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi",
            "tool_calls": [{"id": "t", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}});
        let server = serve(vec![Reply::Json(answer)]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        let (events, response) = complete(&client, &request(vec![Message::User("go".into())])).await;
        let response = response.unwrap();
        assert_eq!(response.text, "hi");
        assert_eq!(response.tool_calls[0].id, "t");
        assert_eq!(response.usage.input_tokens, 3);
        assert_eq!(texts(&events).0, "hi");
    }

    #[tokio::test]
    async fn stream_error_chunk_is_an_api_error() {
        let chunks = [json!({"error": {"message": "the model crashed", "type": "server_error"}})];
        let server = serve(vec![Reply::Sse(openai_sse(&chunks, 1000))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        let error = complete(&client, &request(vec![])).await.1.unwrap_err();
        assert!(error.to_string().contains("the model crashed"), "{error}");
    }
}

mod anthropic {
    use crate::support::*;
    use airlock_model::{ApiStyle, Client, ContentPart, Message, ModelError, StopReason, StreamEvent, Usage};
    use serde_json::json;

    fn transcript() -> Vec<serde_json::Value> {
        vec![
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                "content": [], "model": "claude", "stop_reason": null,
                "usage": {"input_tokens": 40, "cache_read_input_tokens": 2, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "The user wants "}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "a file."}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA=="}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Reading it."}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "read_file", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"pa"}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "th\": \"src/ma"}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "in.rs\"}"}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 57}}),
            json!({"type": "message_stop"}),
        ]
    }

    #[tokio::test]
    async fn thinking_text_and_tool_use_then_thinking_passed_back_unchanged() {
        let done = vec![
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 80, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Done."}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
            json!({"type": "message_stop"}),
        ];
        let server =
            serve(vec![Reply::Sse(anthropic_sse(&transcript(), 9)), Reply::Sse(anthropic_sse(&done, 9))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::Anthropic)).unwrap();
        let first = request(vec![Message::System("Be careful.".into()), Message::User("Show main.rs".into())]);
        let (events, response) = complete(&client, &first).await;
        let response = response.unwrap();

        let signature = "EqQBCgIYAhIM1gbcDa9GJwZA==".to_owned();
        assert_eq!(
            response.thinking,
            vec![ContentPart::Thinking { text: "The user wants a file.".into(), signature: Some(signature.clone()) }]
        );
        assert_eq!(texts(&events), ("Reading it.".to_owned(), "The user wants a file.".to_owned()));
        assert_eq!(response.text, "Reading it.");
        assert_eq!(response.tool_calls.len(), 1);
        assert_eq!(response.tool_calls[0].id, "toolu_01");
        assert_eq!(response.tool_calls[0].arguments, json!({"path": "src/main.rs"}));
        assert_eq!(streamed_arguments(&events, 0), "{\"path\": \"src/main.rs\"}");
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(response.usage, Usage { input_tokens: 42, output_tokens: 57 });
        assert!(events.contains(&StreamEvent::ToolCallStart {
            index: 0,
            id: "toolu_01".into(),
            name: "read_file".into()
        }));

        let second = request(vec![
            Message::System("Be careful.".into()),
            Message::User("Show main.rs".into()),
            Message::from_response(&response),
            Message::ToolResult { call_id: "toolu_01".into(), content: "fn main() {}".into(), is_error: false },
        ]);
        let (_, done) = complete(&client, &second).await;
        assert_eq!(done.unwrap().text, "Done.");

        let received = server.received();
        assert_eq!(received.len(), 2);
        assert_eq!(received[0].path, "/v1/messages");
        assert_eq!(received[0].headers["x-api-key"], "test-key");
        assert_eq!(received[0].headers["anthropic-version"], "2023-06-01");
        assert!(received[0].headers.get("authorization").is_none());
        assert_eq!(
            received[0].body,
            json!({
                "model": "test-model",
                "max_tokens": 512,
                "system": "Be careful.",
                "messages": [{"role": "user", "content": "Show main.rs"}],
                "tools": [{"name": "read_file", "description": "Read a file",
                    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}],
                "temperature": 0.0,
                "stream": true,
            })
        );
        assert_eq!(
            received[1].body["messages"],
            json!([
                {"role": "user", "content": "Show main.rs"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "The user wants a file.", "signature": signature},
                    {"type": "text", "text": "Reading it."},
                    {"type": "tool_use", "id": "toolu_01", "name": "read_file", "input": {"path": "src/main.rs"}},
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "fn main() {}"}]},
            ])
        );
    }

    #[tokio::test]
    async fn error_event_is_an_error_and_not_retried_after_output() {
        let events = [
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 1, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Partial"}}),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ];
        let server = serve(vec![Reply::Sse(anthropic_sse(&events, 1000))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::Anthropic)).unwrap();
        let (seen, result) = complete(&client, &request(vec![Message::User("hi".into())])).await;
        let error = result.unwrap_err();
        assert!(
            matches!(&error, ModelError::Api { kind, message } if kind == "overloaded_error" && message == "Overloaded"),
            "{error:?}"
        );
        assert_eq!(texts(&seen).0, "Partial");
        assert_eq!(server.received().len(), 1, "output was streamed, so no retry");
    }

    #[tokio::test]
    async fn stream_without_message_stop_is_a_protocol_error() {
        let server = serve(vec![Reply::Sse(anthropic_sse(&transcript()[..9], 1000))]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::Anthropic)).unwrap();
        let error = complete(&client, &request(vec![Message::User("hi".into())])).await.1.unwrap_err();
        assert!(matches!(error, ModelError::Protocol { .. }), "{error:?}");
    }
}

mod transport {
    use std::time::{Duration, Instant};

    use crate::support::*;
    use airlock_model::{ApiStyle, CancelToken, Client, Message, ModelError, StreamEvent};
    use serde_json::json;

    fn hello() -> Vec<Vec<u8>> {
        openai_sse(
            &[
                json!({"choices": [{"index": 0, "delta": {"content": "hello"}}]}),
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            ],
            1000,
        )
    }

    #[tokio::test]
    async fn rate_limit_with_retry_after_then_success() {
        let limited = Reply::Status { status: 429, headers: vec![("retry-after", "1")], body: "slow down".into() };
        let server = serve(vec![limited, Reply::Sse(hello())]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        let started = Instant::now();
        let (events, response) = complete(&client, &request(vec![Message::User("hi".into())])).await;
        assert_eq!(response.unwrap().text, "hello");
        assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
        assert_eq!(server.received().len(), 2);
        assert_eq!(texts(&events).0, "hello");
    }

    #[tokio::test]
    async fn server_error_three_times_names_the_status() {
        let failing = Reply::Status {
            status: 500,
            headers: vec![("content-type", "application/json")],
            body: json!({"error": {"message": "CUDA out of memory", "type": "server_error"}}).to_string(),
        };
        let server = serve(vec![failing]).await;
        let mut endpoint = endpoint(&server.base_url, ApiStyle::OpenAi);
        endpoint.max_retries = 2;
        let client = Client::new(endpoint).unwrap();
        let error = complete(&client, &request(vec![Message::User("hi".into())])).await.1.unwrap_err();
        assert!(matches!(error, ModelError::Http { status: 500, attempts: 3, .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("HTTP 500") && message.contains("CUDA out of memory"), "{message}");
        assert!(message.contains("after 3 attempts"), "{message}");
        assert_eq!(server.received().len(), 3);
    }

    #[tokio::test]
    async fn unauthorized_is_not_retried_and_hints_at_the_key() {
        let server = serve(vec![Reply::Status { status: 401, headers: vec![], body: "bad key".into() }]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::Anthropic)).unwrap();
        let error = complete(&client, &request(vec![])).await.1.unwrap_err();
        assert!(error.to_string().contains("hint: check the API key"), "{error}");
        assert_eq!(server.received().len(), 1);
    }

    #[tokio::test]
    async fn hanging_server_times_out() {
        let server = serve(vec![Reply::Hang]).await;
        let mut endpoint = endpoint(&server.base_url, ApiStyle::OpenAi);
        endpoint.timeout = Duration::from_millis(300);
        let client = Client::new(endpoint).unwrap();
        let started = Instant::now();
        let error = complete(&client, &request(vec![])).await.1.unwrap_err();
        assert!(matches!(error, ModelError::Timeout { .. }), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn stalled_stream_times_out() {
        // No finish_reason and no [DONE]: the server stops sending but keeps the connection open.
        let chunks =
            vec![format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {"content": "hel"}}]})).into_bytes()];
        let server = serve(vec![Reply::SseThenHang(chunks)]).await;
        let mut endpoint = endpoint(&server.base_url, ApiStyle::OpenAi);
        endpoint.timeout = Duration::from_millis(300);
        let client = Client::new(endpoint).unwrap();
        let error = complete(&client, &request(vec![])).await.1.unwrap_err();
        assert!(matches!(error, ModelError::Timeout { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn cancellation_mid_stream_is_quick() {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": "thinking hard"}}]});
        let chunks = vec![format!("data: {chunk}\n\n").into_bytes()];
        let server = serve(vec![Reply::SseThenHang(chunks)]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        let cancel = CancelToken::new();
        let canceller = cancel.clone();
        let (first_text, got_text) = tokio::sync::oneshot::channel::<Instant>();
        let mut first_text = Some(first_text);
        tokio::spawn(async move {
            let _ = got_text.await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            canceller.cancel();
        });
        let request = request(vec![Message::User("hi".into())]);
        let mut on_event = |event: StreamEvent| {
            if let (StreamEvent::TextDelta(_), Some(sender)) = (&event, first_text.take()) {
                let _ = sender.send(Instant::now());
            }
        };
        let started = Instant::now();
        let error = client.complete(&request, &mut on_event, &cancel).await.unwrap_err();
        assert!(matches!(error, ModelError::Cancelled), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn cancelled_before_start_sends_nothing() {
        let server = serve(vec![Reply::Sse(hello())]).await;
        let client = Client::new(endpoint(&server.base_url, ApiStyle::OpenAi)).unwrap();
        let cancel = CancelToken::new();
        cancel.cancel();
        let error = client.complete(&request(vec![]), &mut |_| {}, &cancel).await.unwrap_err();
        assert!(matches!(error, ModelError::Cancelled));
        assert!(server.received().is_empty());
    }

    #[tokio::test]
    async fn connection_refused_hints_at_the_server() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut endpoint = endpoint(&format!("http://127.0.0.1:{port}"), ApiStyle::OpenAi);
        endpoint.max_retries = 1;
        let client = Client::new(endpoint).unwrap();
        let error = complete(&client, &request(vec![])).await.1.unwrap_err();
        assert!(matches!(error, ModelError::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains(&format!("is the server running at http://127.0.0.1:{port}")), "{error}");
    }

    #[tokio::test]
    async fn unix_socket_transport() {
        let dir = std::env::temp_dir().join(format!("airlock-model-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("broker.sock");
        let _ = std::fs::remove_file(&socket);
        let server = serve_unix(
            &socket,
            vec![
                Reply::Status { status: 503, headers: vec![("retry-after", "0")], body: String::new() },
                Reply::Sse(hello()),
            ],
        )
        .await;
        let mut endpoint = endpoint(&server.base_url, ApiStyle::OpenAi);
        endpoint.unix_socket = Some(socket.clone());
        let client = Client::new(endpoint).unwrap();
        let (_, response) = complete(&client, &request(vec![Message::User("hi".into())])).await;
        assert_eq!(response.unwrap().text, "hello");
        let received = server.received();
        assert_eq!(received.len(), 2);
        assert_eq!(received[1].path, "/v1/chat/completions");
        assert_eq!(received[1].headers["host"], "broker");
        assert_eq!(received[1].body["messages"][0]["content"], "hi");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
