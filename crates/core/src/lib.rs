//! The agent loop: the task and the workspace's instructions go to the
//! model; each tool call it makes is decided (allow or deny, and by which
//! rule), recorded, run, and its result sent back; until the model answers
//! without a tool call, or a turn limit, a token budget or cancellation
//! stops it.
//!
//! Each tool call is decided by a [`Host`] (which puts the decision on the
//! record) before it runs, and each file change is recorded after; if a
//! record cannot be kept, the loop stops (fail closed) and the action it
//! would have recorded does not happen. In one process the host is a
//! [`LocalHost`]; privilege-separated, it is the supervisor across a pipe
//! ([`worker`], [`supervisor`]).
#![deny(missing_docs)]

pub mod beneath;
pub mod decide;
pub mod ipc;
pub mod rewind;
pub mod session;
pub mod snapshot;
pub mod supervisor;
pub mod worker;

use airlock_audit::event::Event;
use airlock_model::{CancelToken, Message, Model, ModelError, Request, StopReason, StreamEvent, ToolSpec, Usage};
use airlock_tools::Tools;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use decide::{Decided, Decision, Mode, Rules, decide, decide_in_mode, decide_path};

/// What the loop answers to: who decides its tool calls and keeps its
/// records (the supervisor, or a [`LocalHost`] in one process).
pub trait Host: Send {
    /// Decides a tool call and puts the decision on the record before
    /// anything runs; an error stops the loop.
    fn decide(&mut self, id: &str, name: &str, arguments: &serde_json::Value) -> Result<Decided, String>;
    /// Records `event`; an error stops the loop.
    fn record(&mut self, event: Event) -> Result<(), String>;
    /// Reports progress (for a person, a script, and the transcript).
    fn progress(&mut self, progress: Progress) -> Result<(), String>;
    /// The person's note with the last denial, if they wrote one: the
    /// model gets it with the refusal.
    fn denial_note(&mut self) -> Option<String> {
        None
    }
}

/// Where a [`LocalHost`] keeps its records.
pub trait Recorder: Send {
    /// Records `event`; an error stops the loop.
    fn record(&mut self, event: Event) -> Result<(), String>;
}

/// A host in the agent's own process: rules decide, a recorder records,
/// progress is dropped.
pub struct LocalHost<R: Recorder> {
    /// The decision rules.
    pub rules: Rules,
    /// Where events go.
    pub recorder: R,
}

impl<R: Recorder> Host for LocalHost<R> {
    fn decide(&mut self, _id: &str, name: &str, arguments: &serde_json::Value) -> Result<Decided, String> {
        let decided = decide(&self.rules, name, arguments);
        self.recorder.record(tool_call_event(name, arguments, &decided))?;
        Ok(decided)
    }

    fn record(&mut self, event: Event) -> Result<(), String> {
        self.recorder.record(event)
    }

    fn progress(&mut self, _: Progress) -> Result<(), String> {
        Ok(())
    }
}

/// The audit record of a decided tool call.
pub fn tool_call_event(name: &str, arguments: &serde_json::Value, decided: &Decided) -> Event {
    Event::ToolCall {
        name: name.to_string(),
        argument_digest: digest(arguments),
        decision: decided.decision.as_str().into(),
        decided_by: decided.source.clone(),
        approval: None,
    }
}

/// What happens during a run, in order: what `--json` prints and what the
/// session transcript keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Progress {
    /// A model turn begins.
    TurnStart {
        /// Its number, from 1.
        turn: u32,
    },
    /// More of the model's text, as it is generated (for display; the
    /// turn's whole text follows as [`Progress::ModelText`]).
    TextDelta {
        /// The new text.
        text: String,
    },
    /// The model's text of a turn.
    ModelText {
        /// The text.
        text: String,
    },
    /// The model asked for a tool.
    ToolCall {
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// Its arguments.
        arguments: serde_json::Value,
    },
    /// What was decided about it.
    Decision {
        /// The call's id.
        id: String,
        /// `allow` or `deny`.
        decision: String,
        /// Which rule, grant or mode decided.
        source: String,
    },
    /// What the tool returned (capped for display; the model got all of it).
    ToolResult {
        /// The call's id.
        id: String,
        /// Whether it failed.
        is_error: bool,
        /// Its size in bytes.
        bytes: usize,
        /// Its start.
        preview: String,
    },
    /// A file changed.
    FileChange {
        /// Relative to the workspace.
        path: String,
        /// SHA-256 before (empty when created).
        before: String,
        /// SHA-256 after (empty when deleted).
        after: String,
    },
    /// A model request was answered (for an embedded model, the only
    /// record of it: no broker sees it).
    ModelCall {
        /// Bytes of the request, as JSON.
        request_bytes: u64,
        /// SHA-256 of the request, as JSON.
        request_digest: String,
        /// Bytes of the response, as JSON.
        response_bytes: u64,
        /// SHA-256 of the response, as JSON.
        response_digest: String,
        /// Tokens in.
        input_tokens: u64,
        /// Tokens out.
        output_tokens: u64,
        /// Wall-clock milliseconds.
        duration_ms: u64,
    },
    /// A message joined the conversation (kept in the transcript).
    Message {
        /// The message.
        message: Message,
    },
    /// The run ended.
    Done {
        /// Why.
        stop: Stop,
        /// The model's last text.
        answer: String,
        /// Model turns taken.
        turns: u32,
        /// Tokens used.
        usage: Usage,
    },
}

/// Limits of one run.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Model turns at most.
    pub max_turns: u32,
    /// Input plus output tokens at most, over the run.
    pub max_tokens: u64,
    /// Tokens a single answer may have.
    pub max_answer_tokens: u32,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget { max_turns: 50, max_tokens: 2_000_000, max_answer_tokens: 4096 }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The model answered without calling a tool.
    Finished,
    /// The turn limit.
    TurnLimit,
    /// The token budget.
    TokenBudget,
    /// Cancelled.
    Cancelled,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Why it ended.
    pub stop: Stop,
    /// The model's last text.
    pub answer: String,
    /// Model turns taken.
    pub turns: u32,
    /// Tokens used.
    pub usage: Usage,
    /// The conversation, for a transcript.
    pub messages: Vec<Message>,
}

/// What stops a run with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The model could not be reached or answered badly.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// A record could not be kept; nothing more was done.
    #[error("the audit log refused a record, so the agent stopped: {0}")]
    Record(String),
}

/// The agent: a model, tools, and the host that decides and records.
pub struct Agent<H: Host> {
    /// The model: a server through the broker, or the embedded engine.
    pub client: Model,
    /// The model's name.
    pub model: String,
    /// The tools.
    pub tools: Tools,
    /// Decides tool calls and keeps the records.
    pub host: H,
    /// Limits.
    pub budget: Budget,
}

/// The system prompt: short, since a local model pays for every token of prefill.
const SYSTEM: &str = "You are airlock, a coding agent working in a repository. Use the tools to read, search, edit \
and run code. Make the smallest change that does the task, check it (run the tests when there are any), and \
finish with a short summary. Commands run sandboxed, without network. Some tool calls may be denied by policy: \
do not retry a denied call; find another way or explain.";

/// Instructions from the workspace (`AGENTS.md`, else `CLAUDE.md`), capped.
fn workspace_instructions(tools: &mut Tools) -> Option<String> {
    for name in ["AGENTS.md", "CLAUDE.md"] {
        let out = tools.call("read_file", &serde_json::json!({"path": name, "limit": 400}));
        if !out.is_error {
            // read_file numbers lines; the model gets the text as written.
            let text: String =
                out.content.lines().filter_map(|l| l.split_once('\t').map(|(_, t)| t)).collect::<Vec<_>>().join("\n");
            return Some(format!("Instructions from {name} in the repository:\n{text}"));
        }
    }
    None
}

pub(crate) fn digest(value: &serde_json::Value) -> String {
    let bytes = airlock_audit::event::canonical(value).unwrap_or_else(|_| value.to_string().into_bytes());
    hex::encode(Sha256::digest(bytes))
}

impl<H: Host> Agent<H> {
    fn record(&mut self, event: Event) -> Result<(), AgentError> {
        self.host.record(event).map_err(AgentError::Record)
    }

    fn progress(&mut self, progress: Progress) -> Result<(), AgentError> {
        self.host.progress(progress).map_err(AgentError::Record)
    }

    /// Adds `message` to the conversation and to the transcript.
    fn push(&mut self, messages: &mut Vec<Message>, message: Message) -> Result<(), AgentError> {
        self.progress(Progress::Message { message: message.clone() })?;
        messages.push(message);
        Ok(())
    }

    /// Works on `task` until it is done or stopped.
    pub async fn run(&mut self, task: &str, cancel: &CancelToken) -> Result<Outcome, AgentError> {
        self.resume(Vec::new(), task, cancel).await
    }

    /// Continues the conversation `history` (empty for a new one) with `task`.
    pub async fn resume(
        &mut self,
        history: Vec<Message>,
        task: &str,
        cancel: &CancelToken,
    ) -> Result<Outcome, AgentError> {
        let outcome = self.run_inner(history, task, cancel).await?;
        self.progress(Progress::Done {
            stop: outcome.stop,
            answer: outcome.answer.clone(),
            turns: outcome.turns,
            usage: outcome.usage,
        })?;
        Ok(outcome)
    }

    async fn run_inner(
        &mut self,
        history: Vec<Message>,
        task: &str,
        cancel: &CancelToken,
    ) -> Result<Outcome, AgentError> {
        let mut tools: Vec<ToolSpec> = self
            .tools
            .specs()
            .iter()
            .map(|s| ToolSpec {
                name: s.name.into(),
                description: s.description.into(),
                parameters: s.parameters.clone(),
            })
            .collect();
        tools.extend(self.tools.external_specs().iter().map(|s| ToolSpec {
            name: s.name.clone(),
            description: s.description.clone(),
            parameters: s.parameters.clone(),
        }));
        let mut messages = history;
        if messages.is_empty() {
            let mut system = SYSTEM.to_string();
            if let Some(extra) = workspace_instructions(&mut self.tools) {
                system.push_str("\n\n");
                system.push_str(&extra);
            }
            self.push(&mut messages, Message::System(system))?;
        }
        self.push(&mut messages, Message::User(task.to_string()))?;
        let mut usage = Usage::default();
        let mut turns = 0;
        let mut answer = String::new();
        loop {
            if cancel.is_cancelled() {
                return Ok(Outcome { stop: Stop::Cancelled, answer, turns, usage, messages });
            }
            if turns >= self.budget.max_turns {
                return Ok(Outcome { stop: Stop::TurnLimit, answer, turns, usage, messages });
            }
            if usage.input_tokens + usage.output_tokens >= self.budget.max_tokens {
                return Ok(Outcome { stop: Stop::TokenBudget, answer, turns, usage, messages });
            }
            self.progress(Progress::TurnStart { turn: turns + 1 })?;
            let request = Request {
                model: self.model.clone(),
                messages: messages.clone(),
                tools: tools.clone(),
                max_tokens: self.budget.max_answer_tokens,
                temperature: None,
                stop: Vec::new(),
            };
            let began = std::time::Instant::now();
            let host = &mut self.host;
            // Display only: a report that cannot be delivered is not a record lost.
            let mut on_event = |event: StreamEvent| {
                if let StreamEvent::TextDelta(text) = event {
                    let _ = host.progress(Progress::TextDelta { text });
                }
            };
            let response = match self.client.complete(&request, &mut on_event, cancel).await {
                Ok(r) => r,
                Err(ModelError::Cancelled) => {
                    return Ok(Outcome { stop: Stop::Cancelled, answer, turns, usage, messages });
                }
                Err(e) => return Err(e.into()),
            };
            let (request_bytes, request_digest) = sized_digest(&request);
            let (response_bytes, response_digest) = sized_digest(&response);
            self.progress(Progress::ModelCall {
                request_bytes,
                request_digest,
                response_bytes,
                response_digest,
                input_tokens: response.usage.input_tokens,
                output_tokens: response.usage.output_tokens,
                duration_ms: began.elapsed().as_millis() as u64,
            })?;
            turns += 1;
            usage.input_tokens += response.usage.input_tokens;
            usage.output_tokens += response.usage.output_tokens;
            answer = response.text.clone();
            if !response.text.is_empty() {
                self.progress(Progress::ModelText { text: response.text.clone() })?;
            }
            self.push(&mut messages, Message::from_response(&response))?;
            if response.tool_calls.is_empty() && response.invalid_tool_calls.is_empty() {
                let stop =
                    if response.stop_reason == StopReason::MaxTokens { Stop::TokenBudget } else { Stop::Finished };
                return Ok(Outcome { stop, answer, turns, usage, messages });
            }
            for bad in &response.invalid_tool_calls {
                let content = bad.error_message();
                self.progress(Progress::ToolResult {
                    id: bad.id.clone(),
                    is_error: true,
                    bytes: content.len(),
                    preview: preview(&content),
                })?;
                self.push(&mut messages, Message::ToolResult { call_id: bad.id.clone(), content, is_error: true })?;
            }
            for call in &response.tool_calls {
                self.progress(Progress::ToolCall {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                })?;
                if cancel.is_cancelled() {
                    // Every call of the answer gets a result, or the next request is invalid.
                    let content = "not run: the user interrupted the turn".to_string();
                    self.push(
                        &mut messages,
                        Message::ToolResult { call_id: call.id.clone(), content, is_error: true },
                    )?;
                    continue;
                }
                // Decided and on the record before anything runs.
                let decided = self.host.decide(&call.id, &call.name, &call.arguments).map_err(AgentError::Record)?;
                self.progress(Progress::Decision {
                    id: call.id.clone(),
                    decision: decided.decision.as_str().into(),
                    source: decided.source.clone(),
                })?;
                let (content, is_error) = if decided.decision == Decision::Allow {
                    let out = self.tools.call(&call.name, &call.arguments);
                    if let Some(change) = &out.changed {
                        let before = change.before_sha256.clone().unwrap_or_default();
                        let after = change.after_sha256.clone().unwrap_or_default();
                        self.record(Event::FileChange {
                            path: change.path.clone(),
                            before: before.clone(),
                            after: after.clone(),
                        })?;
                        self.progress(Progress::FileChange { path: change.path.clone(), before, after })?;
                    }
                    (out.content, out.is_error)
                } else {
                    match self.host.denial_note() {
                        Some(note) => (format!("denied by the user ({}): {note}", decided.source), true),
                        None if decided.source.starts_with("person:") => {
                            (format!("denied by the user ({}); do not retry this call", decided.source), true)
                        }
                        None => (format!("denied by policy ({}); do not retry this call", decided.source), true),
                    }
                };
                self.progress(Progress::ToolResult {
                    id: call.id.clone(),
                    is_error,
                    bytes: content.len(),
                    preview: preview(&content),
                })?;
                self.push(&mut messages, Message::ToolResult { call_id: call.id.clone(), content, is_error })?;
            }
        }
    }
}

/// Size and SHA-256 of a value as JSON.
fn sized_digest(value: &impl Serialize) -> (u64, String) {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    (bytes.len() as u64, hex::encode(Sha256::digest(&bytes)))
}

/// The start of a tool result, for display.
fn preview(text: &str) -> String {
    clip(text, 400)
}

/// At most `max` bytes of `text` (cut at a character boundary), with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
