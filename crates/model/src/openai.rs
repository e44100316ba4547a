//! OpenAI-compatible chat completions: request body and stream decoder.
//!
//! Self-hosted servers (llama.cpp, vLLM, Ollama, LM Studio, …) differ in the details, so the decoder reads chunks as
//! loose JSON: tool call fragments are matched by `index` (or, where a server omits it, by id and name), missing ids
//! are synthesized, `choices: []` chunks carry only usage, and a plain (non-streaming) completion is accepted too.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::calls::{PartialCall, PartialCalls};
use crate::decode::{DecodeError, Decoder, Flow, api_error, excerpt};
use crate::sse::SseEvent;
use crate::types::{ContentPart, Message, Request, Response, StopReason, StreamEvent, ToolCall, Usage};

/// The JSON body for `POST /v1/chat/completions`. Only fields with a value are sent: a local model pays for every
/// prompt token, and servers reject fields they do not know less often when there are fewer.
pub(crate) fn request_body(request: &Request) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(request.messages.iter().map(message).collect()));
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(|tool| {
            let mut function = Map::new();
            function.insert("name".into(), json!(tool.name));
            if !tool.description.is_empty() {
                function.insert("description".into(), json!(tool.description));
            }
            function.insert("parameters".into(), tool.parameters.clone());
            json!({"type": "function", "function": function})
        });
        body.insert("tools".into(), Value::Array(tools.collect()));
    }
    body.insert("max_tokens".into(), json!(request.max_tokens));
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    if !request.stop.is_empty() {
        body.insert("stop".into(), json!(request.stop));
    }
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    Value::Object(body)
}

fn message(message: &Message) -> Value {
    match message {
        Message::System(text) => json!({"role": "system", "content": text}),
        Message::User(text) => json!({"role": "user", "content": text}),
        Message::Assistant { text, thinking, tool_calls } => {
            // OpenAI-compatible servers do not take reasoning back; text parts kept in `thinking` still count.
            let mut content: String = thinking
                .iter()
                .filter_map(|p| if let ContentPart::Text(t) = p { Some(t.as_str()) } else { None })
                .collect();
            content.push_str(text);
            let mut out = Map::new();
            out.insert("role".into(), json!("assistant"));
            // Always a string: llama.cpp's Python server fails on a missing or null content.
            out.insert("content".into(), json!(content));
            if !tool_calls.is_empty() {
                out.insert("tool_calls".into(), Value::Array(tool_calls.iter().map(tool_call).collect()));
            }
            Value::Object(out)
        }
        Message::ToolResult { call_id, content, is_error } => {
            // The wire format has no error flag; say it in the text.
            let content = if *is_error && !content.trim_start().to_ascii_lowercase().starts_with("error") {
                format!("error: {content}")
            } else {
                content.clone()
            };
            json!({"role": "tool", "tool_call_id": call_id, "content": content})
        }
    }
}

fn tool_call(call: &ToolCall) -> Value {
    // The model's own text when it is JSON, so a server's prompt cache still matches; else the parsed value.
    let arguments = if serde_json::from_str::<Value>(&call.raw_arguments).is_ok_and(|v| v.is_object()) {
        call.raw_arguments.clone()
    } else {
        call.arguments.to_string()
    };
    json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}})
}

/// Decodes `data:` chunks of a chat completion stream.
#[derive(Debug, Default)]
pub(crate) struct OpenAiDecoder {
    text: String,
    reasoning: String,
    calls: PartialCalls,
    /// Per call (same positions as `calls`): the id the server sent, and whether `ToolCallStart` was emitted.
    server_ids: Vec<Option<String>>,
    started: Vec<bool>,
    by_wire_index: HashMap<u64, usize>,
    finish_reason: Option<String>,
    /// vLLM names the stop string that ended generation; `finish_reason` is "stop" either way.
    stopped_by_sequence: bool,
    usage: Option<Usage>,
    done: bool,
}

impl Decoder for OpenAiDecoder {
    fn event(&mut self, event: SseEvent, emit: &mut dyn FnMut(StreamEvent)) -> Result<Flow, DecodeError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Flow::Continue);
        }
        match serde_json::from_str::<Value>(data) {
            Ok(chunk) => self.chunk(&chunk, emit)?,
            Err(_) if data == "[DONE]" => self.done = true,
            Err(error) => {
                // Some servers put several `data:` lines in one event (no blank line between chunks); the SSE
                // parser joins those with newlines.
                if !data.contains('\n') {
                    return Err(DecodeError::Malformed(format!("chunk is not JSON ({error}): {}", excerpt(data, 200))));
                }
                for line in data.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    if line == "[DONE]" {
                        self.done = true;
                        continue;
                    }
                    let chunk = serde_json::from_str::<Value>(line).map_err(|error| {
                        DecodeError::Malformed(format!("chunk is not JSON ({error}): {}", excerpt(line, 200)))
                    })?;
                    self.chunk(&chunk, emit)?;
                }
            }
        }
        Ok(if self.done { Flow::Done } else { Flow::Continue })
    }

    fn finish(self: Box<Self>) -> Result<Response, DecodeError> {
        let this = *self;
        if !this.done && this.finish_reason.is_none() {
            return Err(DecodeError::Malformed("the stream ended before the response was complete".into()));
        }
        let has_calls = !this.calls.calls.is_empty();
        let stop_reason = match this.finish_reason.as_deref() {
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            // Some servers (Ollama) finish with "stop" after tool calls.
            _ if has_calls => StopReason::ToolUse,
            Some("stop") if this.stopped_by_sequence => StopReason::StopSequence,
            Some("stop" | "eos" | "end_turn") | None => StopReason::EndTurn,
            Some(other) => StopReason::Other(other.to_owned()),
        };
        let (tool_calls, invalid_tool_calls) = this.calls.finish(&stop_reason);
        let thinking = if this.reasoning.is_empty() {
            Vec::new()
        } else {
            vec![ContentPart::Thinking { text: this.reasoning, signature: None }]
        };
        Ok(Response {
            text: this.text,
            thinking,
            tool_calls,
            invalid_tool_calls,
            usage: this.usage.unwrap_or_default(),
            stop_reason,
        })
    }
}

impl OpenAiDecoder {
    fn chunk(&mut self, chunk: &Value, emit: &mut dyn FnMut(StreamEvent)) -> Result<(), DecodeError> {
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            return Err(api_error(error));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(Usage {
                input_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
                output_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
            });
        }
        let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
            return Ok(());
        };
        // Only the first choice: airlock never asks for more than one.
        for choice in choices.iter().filter(|c| c["index"].as_u64().unwrap_or(0) == 0) {
            // `message` instead of `delta`: a server that answered without streaming.
            let delta = choice.get("delta").filter(|d| d.is_object()).or_else(|| choice.get("message"));
            if let Some(delta) = delta {
                self.delta(delta, emit);
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finish_reason = Some(reason.to_owned());
            }
            if choice["stop_reason"].is_string() {
                self.stopped_by_sequence = true;
            }
        }
        Ok(())
    }

    fn delta(&mut self, delta: &Value, emit: &mut dyn FnMut(StreamEvent)) {
        for field in ["reasoning_content", "reasoning"] {
            if let Some(text) = delta[field].as_str().filter(|t| !t.is_empty()) {
                self.reasoning.push_str(text);
                emit(StreamEvent::ThinkingDelta(text.to_owned()));
            }
        }
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text.push_str(text);
            emit(StreamEvent::TextDelta(text.to_owned()));
        }
        for fragment in delta["tool_calls"].as_array().map(Vec::as_slice).unwrap_or_default() {
            self.tool_call_fragment(fragment, emit);
        }
    }

    fn tool_call_fragment(&mut self, fragment: &Value, emit: &mut dyn FnMut(StreamEvent)) {
        let server_id = fragment["id"].as_str().filter(|id| !id.trim().is_empty());
        let function = &fragment["function"];
        let name = function["name"].as_str().filter(|n| !n.is_empty());
        let arguments = match &function["arguments"] {
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            // Some servers send the arguments as an object.
            other => other.to_string(),
        };
        let index = match fragment["index"].as_u64() {
            Some(wire) => match self.by_wire_index.get(&wire) {
                Some(&index) => index,
                None => {
                    let index = self.new_call(server_id);
                    self.by_wire_index.insert(wire, index);
                    index
                }
            },
            None => {
                // No index: a new call starts with a new id, or with a name when the last call already has one.
                let last = self.calls.calls.len().checked_sub(1);
                let is_new = match last {
                    None => true,
                    Some(last) => match server_id {
                        Some(id) => self.server_ids[last].as_deref() != Some(id),
                        None => name.is_some() && !self.calls.calls[last].name.is_empty(),
                    },
                };
                match last {
                    Some(last) if !is_new => last,
                    _ => self.new_call(server_id),
                }
            }
        };
        let call = &mut self.calls.calls[index];
        if let Some(name) = name
            && call.name.is_empty()
        {
            name.clone_into(&mut call.name);
        }
        call.arguments.push_str(&arguments);
        if self.started[index] {
            if !arguments.is_empty() {
                emit(StreamEvent::ToolCallDelta { index, arguments });
            }
        } else if !call.name.is_empty() {
            // Start once the name is known; arguments that came before it follow at once.
            self.started[index] = true;
            emit(StreamEvent::ToolCallStart { index, id: call.id.clone(), name: call.name.clone() });
            if !call.arguments.is_empty() {
                emit(StreamEvent::ToolCallDelta { index, arguments: call.arguments.clone() });
            }
        }
    }

    fn new_call(&mut self, server_id: Option<&str>) -> usize {
        let index = self.calls.calls.len();
        let id = self.calls.unique_id(index, server_id);
        self.calls.calls.push(PartialCall { id, ..PartialCall::default() });
        self.server_ids.push(server_id.map(str::to_owned));
        self.started.push(false);
        index
    }
}

#[cfg(test)]
mod tests {
    use super::{OpenAiDecoder, request_body};
    use crate::decode::{Decoder, Flow};
    use crate::sse::SseEvent;
    use crate::types::{Message, Request, StopReason, StreamEvent, ToolCall};
    use serde_json::json;

    fn run(chunks: &[serde_json::Value]) -> (Vec<StreamEvent>, crate::Response) {
        let mut decoder = Box::new(OpenAiDecoder::default());
        let mut events = Vec::new();
        for chunk in chunks {
            let flow = decoder
                .event(SseEvent { event: String::new(), data: chunk.to_string() }, &mut |e| events.push(e))
                .unwrap();
            assert_eq!(flow, Flow::Continue);
        }
        (events, decoder.finish().unwrap())
    }

    #[test]
    fn tool_calls_without_index_are_told_apart_by_id() {
        let (events, response) = run(&[json!({"choices": [{"index": 0, "message": {"role": "assistant",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "read", "arguments": "{\"path\":\"x\"}"}},
                {"id": "b", "type": "function", "function": {"name": "read", "arguments": {"path": "y"}}}
            ]}, "finish_reason": "tool_calls"}]})]);
        assert_eq!(response.tool_calls.len(), 2);
        assert_eq!(response.tool_calls[1].id, "b");
        assert_eq!(response.tool_calls[1].arguments, json!({"path": "y"}));
        assert_eq!(events.len(), 4);
        assert_eq!(response.stop_reason, StopReason::ToolUse);
    }

    #[test]
    fn arguments_before_the_name_are_not_lost() {
        let (events, response) = run(&[
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1}"}}]}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
        ]);
        assert_eq!(response.tool_calls[0].arguments, json!({"a": 1}));
        assert_eq!(response.tool_calls[0].id, "call_0");
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(
            events,
            vec![
                StreamEvent::ToolCallStart { index: 0, id: "call_0".into(), name: "f".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "{\"a\":1}".into() },
            ]
        );
    }

    #[test]
    fn chunks_without_blank_lines_between_them() {
        let first = json!({"choices": [{"delta": {"content": "a"}}]});
        let second = json!({"choices": [{"delta": {"content": "b"}, "finish_reason": "stop"}]});
        let mut decoder = Box::new(OpenAiDecoder::default());
        let data = format!("{first}\n{second}\n[DONE]");
        let flow = decoder.event(SseEvent { event: String::new(), data }, &mut |_| {}).unwrap();
        assert_eq!(flow, Flow::Done);
        assert_eq!(decoder.finish().unwrap().text, "ab");
    }

    #[test]
    fn reasoning_content_is_thinking() {
        let (events, response) = run(&[
            json!({"choices": [{"delta": {"reasoning_content": "hmm"}}]}),
            json!({"choices": [{"delta": {"content": "yes"}, "finish_reason": "stop", "stop_reason": "</s>"}]}),
        ]);
        assert_eq!(events[0], StreamEvent::ThinkingDelta("hmm".into()));
        assert_eq!(response.thinking, vec![crate::ContentPart::Thinking { text: "hmm".into(), signature: None }]);
        assert_eq!(response.stop_reason, StopReason::StopSequence);
    }

    #[test]
    fn chunk_that_is_not_json_is_an_error_not_a_panic() {
        let mut decoder = Box::new(OpenAiDecoder::default());
        assert!(decoder.event(SseEvent { event: String::new(), data: "{oops".into() }, &mut |_| {}).is_err());
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let mut decoder = Box::new(OpenAiDecoder::default());
        let chunk = json!({"choices": [{"delta": {"content": "hel"}}]}).to_string();
        decoder.event(SseEvent { event: String::new(), data: chunk }, &mut |_| {}).unwrap();
        assert!(decoder.finish().is_err());
    }

    #[test]
    fn request_is_lean() {
        let request = Request {
            model: "m".into(),
            messages: vec![
                Message::User("hi".into()),
                Message::Assistant {
                    text: String::new(),
                    thinking: vec![],
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "f".into(),
                        arguments: json!({"a": 1}),
                        raw_arguments: "{\"a\":1,}".into(),
                    }],
                },
                Message::ToolResult { call_id: "c1".into(), content: "boom".into(), is_error: true },
            ],
            max_tokens: 10,
            ..Request::default()
        };
        let body = request_body(&request);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "error: boom"},
                ],
                "max_tokens": 10,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
    }
}
