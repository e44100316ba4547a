//! Provider-neutral conversation types: what the agent loop sends and gets back.

use serde::{Deserialize, Serialize};

/// Who said a message. [`Message`] carries its role in its variant; this is for callers that need it as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions from airlock.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// A tool's result, answering one of the model's tool calls.
    Tool,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name the model calls the tool by.
    pub name: String,
    /// What the tool does, for the model. Left out of the request when empty.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A tool call whose arguments parsed (possibly after a safe repair, see [`crate::repair_json`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id; synthesized as `call_<n>` when the server sent none.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Parsed arguments, always a JSON object.
    pub arguments: serde_json::Value,
    /// The arguments exactly as the model produced them.
    pub raw_arguments: String,
}

/// A tool call whose arguments could not be parsed or safely repaired.
///
/// The agent loop answers it with a tool error (see [`InvalidToolCall::error_message`]) instead of running the tool,
/// so the model can try again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvalidToolCall {
    /// Call id (synthesized as `call_<n>` when the server sent none).
    pub id: String,
    /// Tool name as the model wrote it (may be empty).
    pub name: String,
    /// The arguments exactly as the model produced them.
    pub raw: String,
    /// Why they were rejected.
    pub error: String,
}

impl InvalidToolCall {
    /// The call as it goes back into the conversation's assistant message, with `{}` as arguments: servers that
    /// re-render the conversation through a chat template reject arguments that are not JSON.
    pub fn to_tool_call(&self) -> ToolCall {
        ToolCall {
            id: self.id.clone(),
            name: self.name.clone(),
            arguments: serde_json::Value::Object(serde_json::Map::new()),
            raw_arguments: "{}".to_owned(),
        }
    }

    /// Text for the tool result that tells the model what went wrong.
    pub fn error_message(&self) -> String {
        const MAX: usize = 400;
        let mut raw = self.raw.as_str();
        let mut cut = "";
        if raw.len() > MAX {
            let mut end = MAX;
            while !raw.is_char_boundary(end) {
                end -= 1;
            }
            raw = &raw[..end];
            cut = "…";
        }
        format!(
            "error: the arguments of this call to `{}` could not be used ({}). They were: {raw}{cut}\n\
             Call the tool again with its arguments as one JSON object.",
            self.name, self.error
        )
    }
}

/// A part of an assistant turn that is not plain answer text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentPart {
    /// Text, sent as a text block at this position (lets a caller keep text between thinking blocks in order).
    Text(String),
    /// The model's reasoning. Anthropic requires it back unchanged, signature included.
    Thinking {
        /// The reasoning text.
        text: String,
        /// Anthropic's signature over the block.
        signature: Option<String>,
    },
    /// Reasoning the provider encrypted (Anthropic `redacted_thinking`); passed back unchanged.
    RedactedThinking {
        /// The opaque `data` field.
        data: String,
    },
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// Instructions. For Anthropic all system messages are joined into the top-level `system` field.
    System(String),
    /// The person's message.
    User(String),
    /// A turn of the model.
    Assistant {
        /// Answer text.
        text: String,
        /// Thinking blocks, passed back to Anthropic unchanged (OpenAI-compatible servers do not take them back).
        thinking: Vec<ContentPart>,
        /// Tool calls, including invalid ones turned into calls with [`InvalidToolCall::to_tool_call`].
        tool_calls: Vec<ToolCall>,
    },
    /// A tool's result.
    ToolResult {
        /// Id of the call it answers.
        call_id: String,
        /// The result text.
        content: String,
        /// Whether the tool failed.
        is_error: bool,
    },
}

impl Message {
    /// The role of this message.
    pub fn role(&self) -> Role {
        match self {
            Message::System(_) => Role::System,
            Message::User(_) => Role::User,
            Message::Assistant { .. } => Role::Assistant,
            Message::ToolResult { .. } => Role::Tool,
        }
    }

    /// The assistant message that records `response` in the conversation, invalid tool calls included (so the
    /// tool errors answering them refer to a call the provider knows).
    pub fn from_response(response: &Response) -> Message {
        let mut tool_calls = response.tool_calls.clone();
        tool_calls.extend(response.invalid_tool_calls.iter().map(InvalidToolCall::to_tool_call));
        Message::Assistant { text: response.text.clone(), thinking: response.thinking.clone(), tool_calls }
    }
}

/// One completion request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Request {
    /// Model name as the server knows it.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tools the model may call; the field is left out of the request when empty.
    pub tools: Vec<ToolSpec>,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature; the server's default when `None`.
    pub temperature: Option<f32>,
    /// Stop sequences.
    pub stop: Vec<String>,
}

/// What [`crate::Client::complete`] reports while the response streams in.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// More answer text.
    TextDelta(String),
    /// More reasoning text.
    ThinkingDelta(String),
    /// A tool call began. `index` counts tool calls of this response from 0.
    ToolCallStart {
        /// Which tool call.
        index: usize,
        /// Its id (possibly synthesized).
        id: String,
        /// Tool name.
        name: String,
    },
    /// More of a tool call's arguments, as raw text.
    ToolCallDelta {
        /// Which tool call.
        index: usize,
        /// The fragment.
        arguments: String,
    },
    /// The response is complete; the same value `complete` returns.
    Done(Response),
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Response {
    /// Answer text (all text blocks, concatenated).
    pub text: String,
    /// Thinking blocks in order.
    pub thinking: Vec<ContentPart>,
    /// Tool calls whose arguments parsed.
    pub tool_calls: Vec<ToolCall>,
    /// Tool calls whose arguments did not; the loop returns these to the model as tool errors.
    pub invalid_tool_calls: Vec<InvalidToolCall>,
    /// Token counts.
    pub usage: Usage,
    /// Why generation stopped.
    pub stop_reason: StopReason,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    #[default]
    EndTurn,
    /// The model wants tool results.
    ToolUse,
    /// `max_tokens` was reached.
    MaxTokens,
    /// A stop sequence was generated.
    StopSequence,
    /// Anything else the server said, verbatim.
    Other(String),
}
