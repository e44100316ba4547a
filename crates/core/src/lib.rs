//! The agent loop: the task and the workspace's instructions go to the
//! model; each tool call it makes is decided (allow or deny, and by which
//! rule), recorded, run, and its result sent back; until the model answers
//! without a tool call, or a turn limit, a token budget or cancellation
//! stops it.
//!
//! Every decision and every file change is recorded through a [`Recorder`]
//! before the loop goes on; if a record cannot be kept, the loop stops
//! (fail closed) and the action it would have recorded does not happen.
#![deny(missing_docs)]

pub mod decide;

use airlock_audit::event::Event;
use airlock_model::{CancelToken, Client, Message, ModelError, Request, StopReason, ToolSpec, Usage};
use airlock_tools::Tools;
use sha2::{Digest, Sha256};

pub use decide::{Decided, Decision, Rules, decide};

/// Where the loop's events go (the supervisor's audit log).
pub trait Recorder: Send {
    /// Records `event`; an error stops the loop.
    fn record(&mut self, event: Event) -> Result<(), String>;
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The agent: a model, tools, rules, and where its events go.
pub struct Agent<R: Recorder> {
    /// The model.
    pub client: Client,
    /// The model's name.
    pub model: String,
    /// The tools.
    pub tools: Tools,
    /// The decision rules.
    pub rules: Rules,
    /// Where events go.
    pub recorder: R,
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

fn digest(value: &serde_json::Value) -> String {
    let bytes = airlock_audit::event::canonical(value).unwrap_or_else(|_| value.to_string().into_bytes());
    hex::encode(Sha256::digest(bytes))
}

impl<R: Recorder> Agent<R> {
    fn record(&mut self, event: Event) -> Result<(), AgentError> {
        self.recorder.record(event).map_err(AgentError::Record)
    }

    /// Works on `task` until it is done or stopped.
    pub async fn run(&mut self, task: &str, cancel: &CancelToken) -> Result<Outcome, AgentError> {
        let mut system = SYSTEM.to_string();
        if let Some(extra) = workspace_instructions(&mut self.tools) {
            system.push_str("\n\n");
            system.push_str(&extra);
        }
        let tools: Vec<ToolSpec> = self
            .tools
            .specs()
            .iter()
            .map(|s| ToolSpec {
                name: s.name.into(),
                description: s.description.into(),
                parameters: s.parameters.clone(),
            })
            .collect();
        let mut messages = vec![Message::System(system), Message::User(task.to_string())];
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
            let request = Request {
                model: self.model.clone(),
                messages: messages.clone(),
                tools: tools.clone(),
                max_tokens: self.budget.max_answer_tokens,
                temperature: None,
                stop: Vec::new(),
            };
            let response = match self.client.complete(&request, &mut |_| {}, cancel).await {
                Ok(r) => r,
                Err(ModelError::Cancelled) => {
                    return Ok(Outcome { stop: Stop::Cancelled, answer, turns, usage, messages });
                }
                Err(e) => return Err(e.into()),
            };
            turns += 1;
            usage.input_tokens += response.usage.input_tokens;
            usage.output_tokens += response.usage.output_tokens;
            answer = response.text.clone();
            messages.push(Message::from_response(&response));
            if response.tool_calls.is_empty() && response.invalid_tool_calls.is_empty() {
                let stop =
                    if response.stop_reason == StopReason::MaxTokens { Stop::TokenBudget } else { Stop::Finished };
                return Ok(Outcome { stop, answer, turns, usage, messages });
            }
            for bad in &response.invalid_tool_calls {
                messages.push(Message::ToolResult {
                    call_id: bad.id.clone(),
                    content: bad.error_message(),
                    is_error: true,
                });
            }
            for call in &response.tool_calls {
                let decided = decide(&self.rules, &call.name, &call.arguments);
                // On the record before anything runs.
                self.record(Event::ToolCall {
                    name: call.name.clone(),
                    argument_digest: digest(&call.arguments),
                    decision: decided.decision.as_str().into(),
                    decided_by: decided.source.clone(),
                })?;
                let (content, is_error) = if decided.decision == Decision::Allow {
                    let out = self.tools.call(&call.name, &call.arguments);
                    if let Some(change) = &out.changed {
                        self.record(Event::FileChange {
                            path: change.path.clone(),
                            before: change.before_sha256.clone().unwrap_or_default(),
                            after: change.after_sha256.clone().unwrap_or_default(),
                        })?;
                    }
                    (out.content, out.is_error)
                } else {
                    (format!("denied by policy ({}); do not retry this call", decided.source), true)
                };
                messages.push(Message::ToolResult { call_id: call.id.clone(), content, is_error });
            }
        }
    }
}
