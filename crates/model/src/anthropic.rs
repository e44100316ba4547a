//! Anthropic Messages: request body and stream decoder.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::calls::{PartialCall, PartialCalls};
use crate::decode::{DecodeError, Decoder, Flow, api_error};
use crate::sse::SseEvent;
use crate::types::{ContentPart, Message, Request, Response, StopReason, StreamEvent, Usage};

/// The `anthropic-version` header value.
pub(crate) const VERSION: &str = "2023-06-01";

/// The JSON body for `POST /v1/messages`. System messages become the top-level `system` string; consecutive
/// messages of one role are merged (the API requires user and assistant to alternate, and tool results are user
/// content); a message that is one text block is sent as a plain string.
pub(crate) fn request_body(request: &Request) -> Value {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, block: Value| match turns.last_mut() {
        Some((last, blocks)) if *last == role => blocks.push(block),
        _ => turns.push((role, vec![block])),
    };
    for message in &request.messages {
        match message {
            Message::System(text) => system.push(text),
            Message::User(text) => {
                if !text.is_empty() {
                    push("user", json!({"type": "text", "text": text}));
                }
            }
            Message::Assistant { text, thinking, tool_calls } => {
                for part in thinking {
                    push("assistant", content_part(part));
                }
                if !text.is_empty() {
                    push("assistant", json!({"type": "text", "text": text}));
                }
                for call in tool_calls {
                    let input = if call.arguments.is_object() { call.arguments.clone() } else { json!({}) };
                    push("assistant", json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
            }
            Message::ToolResult { call_id, content, is_error } => {
                let mut block = Map::new();
                block.insert("type".into(), json!("tool_result"));
                block.insert("tool_use_id".into(), json!(call_id));
                block.insert("content".into(), json!(content));
                if *is_error {
                    block.insert("is_error".into(), json!(true));
                }
                push("user", Value::Object(block));
            }
        }
    }
    let messages = turns.into_iter().map(|(role, blocks)| {
        let content = match blocks.as_slice() {
            [block] if block["type"] == "text" => block["text"].clone(),
            _ => Value::Array(blocks),
        };
        json!({"role": role, "content": content})
    });

    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("max_tokens".into(), json!(request.max_tokens));
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    body.insert("messages".into(), Value::Array(messages.collect()));
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(|tool| {
            let mut out = Map::new();
            out.insert("name".into(), json!(tool.name));
            if !tool.description.is_empty() {
                out.insert("description".into(), json!(tool.description));
            }
            out.insert("input_schema".into(), tool.parameters.clone());
            Value::Object(out)
        });
        body.insert("tools".into(), Value::Array(tools.collect()));
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(request.stop));
    }
    body.insert("stream".into(), json!(true));
    Value::Object(body)
}

fn content_part(part: &ContentPart) -> Value {
    match part {
        ContentPart::Text(text) => json!({"type": "text", "text": text}),
        ContentPart::Thinking { text, signature } => {
            let mut block = Map::new();
            block.insert("type".into(), json!("thinking"));
            block.insert("thinking".into(), json!(text));
            if let Some(signature) = signature {
                block.insert("signature".into(), json!(signature));
            }
            Value::Object(block)
        }
        ContentPart::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
    }
}

#[derive(Debug)]
enum Block {
    Text,
    /// Position in `thinking`.
    Thinking(usize),
    Tool {
        /// Position in `calls`.
        index: usize,
        /// `input` of `content_block_start` when not empty (servers that do not stream it).
        initial_input: Option<String>,
        streamed: bool,
    },
    Other,
}

/// Decodes a Messages event stream.
#[derive(Debug, Default)]
pub(crate) struct AnthropicDecoder {
    text: String,
    thinking: Vec<ContentPart>,
    calls: PartialCalls,
    blocks: HashMap<u64, Block>,
    usage: Usage,
    stop_reason: Option<String>,
    done: bool,
}

impl Decoder for AnthropicDecoder {
    fn event(&mut self, event: SseEvent, emit: &mut dyn FnMut(StreamEvent)) -> Result<Flow, DecodeError> {
        if event.data.trim().is_empty() {
            return Ok(Flow::Continue);
        }
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|error| DecodeError::Malformed(format!("`{}` event is not JSON ({error})", event.event)))?;
        let kind = data["type"].as_str().unwrap_or(&event.event);
        let index = data["index"].as_u64().unwrap_or(0);
        match kind {
            "message_start" => self.add_usage(&data["message"]["usage"]),
            "content_block_start" => self.block_start(index, &data["content_block"], emit),
            "content_block_delta" => self.block_delta(index, &data["delta"], emit),
            "content_block_stop" => self.block_stop(index, emit),
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(reason.to_owned());
                }
                self.add_usage(&data["usage"]);
            }
            "message_stop" => {
                self.done = true;
                return Ok(Flow::Done);
            }
            "error" => return Err(api_error(&data["error"])),
            // "ping", and event types added after this was written.
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn finish(self: Box<Self>) -> Result<Response, DecodeError> {
        let mut this = *self;
        if !this.done && this.stop_reason.is_none() {
            return Err(DecodeError::Malformed("the stream ended before message_stop".into()));
        }
        // Tool blocks that never got their content_block_stop.
        let open: Vec<u64> = this.blocks.keys().copied().collect();
        for index in open {
            this.block_stop(index, &mut |_| {});
        }
        let stop_reason = match this.stop_reason.as_deref() {
            Some("end_turn") | None => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopSequence,
            Some(other) => StopReason::Other(other.to_owned()),
        };
        let (tool_calls, invalid_tool_calls) = this.calls.finish(&stop_reason);
        Ok(Response {
            text: this.text,
            thinking: this.thinking,
            tool_calls,
            invalid_tool_calls,
            usage: this.usage,
            stop_reason,
        })
    }
}

impl AnthropicDecoder {
    /// `message_start` carries the input tokens, `message_delta` the running output count (and, from some
    /// proxies, the input count too). Cached prompt tokens count as input.
    fn add_usage(&mut self, usage: &Value) {
        let input: Option<u64> = ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]
            .iter()
            .filter_map(|field| usage[field].as_u64())
            .reduce(|a, b| a + b);
        if let Some(input) = input {
            self.usage.input_tokens = input;
        }
        if let Some(output) = usage["output_tokens"].as_u64() {
            self.usage.output_tokens = output;
        }
    }

    fn block_start(&mut self, index: u64, block: &Value, emit: &mut dyn FnMut(StreamEvent)) {
        let state = match block["type"].as_str() {
            Some("text") => {
                self.text_delta(&block["text"], emit);
                Block::Text
            }
            Some("thinking") => {
                let text = block["thinking"].as_str().unwrap_or_default().to_owned();
                if !text.is_empty() {
                    emit(StreamEvent::ThinkingDelta(text.clone()));
                }
                let signature = block["signature"].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
                self.thinking.push(ContentPart::Thinking { text, signature });
                Block::Thinking(self.thinking.len() - 1)
            }
            Some("redacted_thinking") => {
                let data = block["data"].as_str().unwrap_or_default().to_owned();
                self.thinking.push(ContentPart::RedactedThinking { data });
                Block::Other
            }
            Some("tool_use") => {
                let call = self.calls.calls.len();
                let id = self.calls.unique_id(call, block["id"].as_str());
                let name = block["name"].as_str().unwrap_or_default().to_owned();
                let initial_input = block.get("input").filter(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                emit(StreamEvent::ToolCallStart { index: call, id: id.clone(), name: name.clone() });
                self.calls.calls.push(PartialCall { id, name, arguments: String::new() });
                Block::Tool { index: call, initial_input: initial_input.map(Value::to_string), streamed: false }
            }
            _ => Block::Other,
        };
        self.blocks.insert(index, state);
    }

    fn block_delta(&mut self, index: u64, delta: &Value, emit: &mut dyn FnMut(StreamEvent)) {
        match (delta["type"].as_str(), self.blocks.get_mut(&index)) {
            (Some("text_delta"), _) => self.text_delta(&delta["text"], emit),
            (Some("thinking_delta"), Some(Block::Thinking(at))) => {
                let Some(text) = delta["thinking"].as_str().filter(|t| !t.is_empty()) else { return };
                if let Some(ContentPart::Thinking { text: all, .. }) = self.thinking.get_mut(*at) {
                    all.push_str(text);
                }
                emit(StreamEvent::ThinkingDelta(text.to_owned()));
            }
            (Some("signature_delta"), Some(Block::Thinking(at))) => {
                let Some(part) = delta["signature"].as_str() else { return };
                if let Some(ContentPart::Thinking { signature, .. }) = self.thinking.get_mut(*at) {
                    signature.get_or_insert_with(String::new).push_str(part);
                }
            }
            (Some("input_json_delta"), Some(Block::Tool { index: call, streamed, .. })) => {
                let Some(json) = delta["partial_json"].as_str().filter(|j| !j.is_empty()) else { return };
                *streamed = true;
                let call = *call;
                if let Some(partial) = self.calls.calls.get_mut(call) {
                    partial.arguments.push_str(json);
                }
                emit(StreamEvent::ToolCallDelta { index: call, arguments: json.to_owned() });
            }
            _ => {}
        }
    }

    fn block_stop(&mut self, index: u64, emit: &mut dyn FnMut(StreamEvent)) {
        if let Some(Block::Tool { index: call, initial_input: Some(input), streamed: false }) =
            self.blocks.remove(&index)
            && let Some(partial) = self.calls.calls.get_mut(call)
        {
            partial.arguments.clone_from(&input);
            emit(StreamEvent::ToolCallDelta { index: call, arguments: input });
        }
    }

    fn text_delta(&mut self, text: &Value, emit: &mut dyn FnMut(StreamEvent)) {
        if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
            self.text.push_str(text);
            emit(StreamEvent::TextDelta(text.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::request_body;
    use crate::types::{ContentPart, Message, Request, ToolCall, ToolSpec};
    use serde_json::json;

    #[test]
    fn redacted_thinking_and_unstreamed_tool_input() {
        use super::AnthropicDecoder;
        use crate::decode::Decoder;
        use crate::sse::SseEvent;
        let mut decoder = Box::new(AnthropicDecoder::default());
        let mut events = Vec::new();
        for data in [
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "opaque"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "name": "f", "input": {"a": 1}}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
            json!({"type": "message_stop"}),
        ] {
            decoder.event(SseEvent { event: String::new(), data: data.to_string() }, &mut |e| events.push(e)).unwrap();
        }
        let response = decoder.finish().unwrap();
        assert_eq!(response.thinking, vec![ContentPart::RedactedThinking { data: "opaque".into() }]);
        assert_eq!(response.tool_calls[0].id, "call_0");
        assert_eq!(response.tool_calls[0].arguments, json!({"a": 1}));
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn roles_are_merged_and_system_is_top_level() {
        let request = Request {
            model: "claude".into(),
            messages: vec![
                Message::System("be brief".into()),
                Message::User("hi".into()),
                Message::Assistant {
                    text: "let me look".into(),
                    thinking: vec![ContentPart::Thinking { text: "hmm".into(), signature: Some("sig".into()) }],
                    tool_calls: vec![ToolCall {
                        id: "t1".into(),
                        name: "read".into(),
                        arguments: json!({"path": "a"}),
                        raw_arguments: "{\"path\":\"a\"}".into(),
                    }],
                },
                Message::ToolResult { call_id: "t1".into(), content: "no such file".into(), is_error: true },
                Message::User("try b".into()),
            ],
            tools: vec![ToolSpec { name: "read".into(), description: String::new(), parameters: json!({}) }],
            max_tokens: 100,
            temperature: None,
            stop: vec![],
        };
        assert_eq!(
            request_body(&request),
            json!({
                "model": "claude",
                "max_tokens": 100,
                "system": "be brief",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "let me look"},
                        {"type": "tool_use", "id": "t1", "name": "read", "input": {"path": "a"}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "no such file", "is_error": true},
                        {"type": "text", "text": "try b"},
                    ]},
                ],
                "tools": [{"name": "read", "input_schema": {}}],
                "stream": true,
            })
        );
    }
}
