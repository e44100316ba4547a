//! The embedded engine: a GGUF model run by llama.cpp inside this process,
//! with no server and no network.
//!
//! The parts that do not need llama.cpp live here and are always built: the
//! chat template (rendered by `minijinja`, a Jinja engine with no file system
//! and no arbitrary code, under a fuel limit), the tool-call format and the
//! schema its grammar is made from, and the parser of what the model wrote.
//! The llama.cpp side is behind the `embedded` feature; without it
//! [`Engine::load`] says so.
//!
//! Tool calls use the `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
//! format (Hermes, Qwen, and the templates that follow them). When the
//! template takes `tools` itself, they go to the template; otherwise they are
//! described in the system message. Either way, from the moment the model
//! writes `<tool_call>`, decoding is constrained by a grammar generated from
//! the tools' JSON Schemas, so every call it completes parses and fits its
//! tool's schema.

#[cfg(feature = "embedded")]
mod llama;

use std::path::Path;

use serde_json::{Value, json};

use crate::{CancelToken, InvalidToolCall, Message, ModelError, Request, Response, StreamEvent, ToolCall, ToolSpec};

/// How to run a model.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Context size in tokens (capped by what the model was trained for).
    pub context: u32,
    /// Threads; `None` for the cores this process may use.
    pub threads: Option<u32>,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions { context: 8192, threads: None }
    }
}

/// How long the last request took, by phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Prompt tokens decoded (after the part the cache already held).
    pub prompt_tokens: u64,
    /// Seconds spent decoding them.
    pub prompt_secs: f64,
    /// Tokens generated.
    pub generated_tokens: u64,
    /// Seconds spent generating them (sampling included).
    pub generate_secs: f64,
}

/// Whether the model must call a tool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// It may answer or call (the grammar starts at `<tool_call>`).
    #[default]
    Auto,
    /// It must call one of the tools (the grammar holds from the first token).
    Required,
}

/// A loaded model.
pub struct Engine {
    #[cfg(feature = "embedded")]
    inner: llama::Llama,
    #[cfg(not(feature = "embedded"))]
    _never: std::convert::Infallible,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine")
    }
}

impl Engine {
    /// Loads the GGUF at `path`.
    pub fn load(path: &Path, options: &EngineOptions) -> Result<Engine, ModelError> {
        #[cfg(feature = "embedded")]
        {
            Ok(Engine { inner: llama::Llama::load(path, options)? })
        }
        #[cfg(not(feature = "embedded"))]
        {
            let _ = options;
            Err(engine_error(format!(
                "cannot load {}: this airlock was built without the embedded engine (cargo feature `embedded`)",
                path.display()
            )))
        }
    }

    /// Generates the answer to `request`, reporting text as it comes.
    pub fn complete(
        &self,
        request: &Request,
        choice: &ToolChoice,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancelToken,
    ) -> Result<Response, ModelError> {
        #[cfg(feature = "embedded")]
        {
            self.inner.complete(request, choice, on_event, cancel)
        }
        #[cfg(not(feature = "embedded"))]
        {
            let _ = (request, choice, on_event, cancel);
            match self._never {}
        }
    }

    /// How long the last request took, by phase.
    pub fn last_timings(&self) -> Timings {
        #[cfg(feature = "embedded")]
        {
            self.inner.last_timings()
        }
        #[cfg(not(feature = "embedded"))]
        {
            match self._never {}
        }
    }

    /// Forgets the cached prompt, so that the next request decodes all of it.
    pub fn clear_cache(&self) {
        #[cfg(feature = "embedded")]
        {
            self.inner.clear_cache()
        }
        #[cfg(not(feature = "embedded"))]
        {
            match self._never {}
        }
    }

    /// The model's name (from its metadata, else its file name).
    pub fn name(&self) -> &str {
        #[cfg(feature = "embedded")]
        {
            self.inner.name()
        }
        #[cfg(not(feature = "embedded"))]
        {
            match self._never {}
        }
    }
}

/// An engine failure: a model that cannot load, a template that cannot
/// render, a prompt that does not fit.
pub(crate) fn engine_error(what: impl Into<String>) -> ModelError {
    ModelError::Engine { what: what.into() }
}

/// Where the template gets its special tokens.
#[derive(Debug, Clone, Default)]
pub struct Specials {
    /// Beginning of sequence, as text.
    pub bos: String,
    /// End of sequence, as text.
    pub eos: String,
}

/// The template used when a model carries none: ChatML.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + \
message['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% \
endif %}";

/// Whether a chat template renders the `tools` it is given.
pub fn template_takes_tools(template: &str) -> bool {
    template.contains("tools")
}

const CALL_OPEN: &str = "<tool_call>";
const CALL_CLOSE: &str = "</tool_call>";

/// How the tools are described to a model whose template does not take them.
fn tools_instructions(tools: &[ToolSpec]) -> String {
    let mut s = String::from(
        "\n\nYou can call tools. To call one, write exactly:\n<tool_call>\n{\"name\": \"TOOL\", \"arguments\": \
         {...}}\n</tool_call>\nand nothing after it; the result comes back in the next message. Tools:\n",
    );
    for t in tools {
        s.push_str(&format!("- {}: {} Arguments: {}\n", t.name, t.description, t.parameters));
    }
    s
}

/// The messages as the template sees them (OpenAI-style dictionaries).
/// Without native tool support, calls become `<tool_call>` text in the
/// assistant turn and results become user messages, which every template
/// can render.
fn template_messages(request: &Request, native_tools: bool) -> Vec<Value> {
    let mut out = Vec::new();
    let mut system_seen = false;
    for m in &request.messages {
        match m {
            Message::System(text) => {
                let mut text = text.clone();
                if !native_tools && !request.tools.is_empty() && !system_seen {
                    text.push_str(&tools_instructions(&request.tools));
                }
                system_seen = true;
                out.push(json!({"role": "system", "content": text}));
            }
            Message::User(text) => out.push(json!({"role": "user", "content": text})),
            Message::Assistant { text, tool_calls, .. } => {
                if native_tools {
                    let calls: Vec<Value> = tool_calls
                        .iter()
                        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                        .collect();
                    let mut msg = json!({"role": "assistant", "content": text});
                    if !calls.is_empty() {
                        msg["tool_calls"] = Value::Array(calls);
                    }
                    out.push(msg);
                } else {
                    let mut content = text.clone();
                    for c in tool_calls {
                        if !content.is_empty() {
                            content.push('\n');
                        }
                        let call = json!({"name": c.name, "arguments": c.arguments});
                        content.push_str(&format!("{CALL_OPEN}\n{call}\n{CALL_CLOSE}"));
                    }
                    out.push(json!({"role": "assistant", "content": content}));
                }
            }
            Message::ToolResult { call_id, content, is_error } => {
                let content = if *is_error { format!("error: {content}") } else { content.clone() };
                if native_tools {
                    out.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
                } else {
                    out.push(
                        json!({"role": "user", "content": format!("<tool_response>\n{content}\n</tool_response>")}),
                    );
                }
            }
        }
    }
    if !system_seen && !native_tools && !request.tools.is_empty() {
        out.insert(0, json!({"role": "system", "content": tools_instructions(&request.tools).trim_start()}));
    }
    out
}

/// Renders the prompt for `request` with the chat `template`.
pub fn render_prompt(template: &str, request: &Request, specials: &Specials) -> Result<String, ModelError> {
    let native = template_takes_tools(template);
    let mut env = minijinja::Environment::new();
    // Templates are data from the model file: bounded work, no loader, no escape hatches.
    env.set_fuel(Some(5_000_000));
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |message: String| -> Result<String, minijinja::Error> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
    });
    env.add_template("chat", template).map_err(|e| engine_error(format!("the chat template does not parse: {e}")))?;
    let tmpl = env.get_template("chat").map_err(|e| engine_error(e.to_string()))?;
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
        .collect();
    let ctx = json!({
        "messages": template_messages(request, native),
        "tools": if native && !tools.is_empty() { Value::Array(tools) } else { Value::Null },
        "add_generation_prompt": true,
        "bos_token": specials.bos,
        "eos_token": specials.eos,
    });
    tmpl.render(ctx).map_err(|e| engine_error(format!("the chat template failed to render: {e}")))
}

/// The JSON Schema every tool call must fit: one of the tools, by name, with
/// its arguments. Written out by hand so that `name` comes before
/// `arguments` (the grammar follows the schema's order, and a model should
/// pick the tool before it writes the arguments).
pub fn calls_schema(tools: &[ToolSpec]) -> String {
    let one: Vec<String> = tools
        .iter()
        .map(|t| {
            format!(
                "{{\"type\":\"object\",\"properties\":{{\"name\":{{\"const\":{}}},\"arguments\":{}}},\
                 \"required\":[\"name\",\"arguments\"],\"additionalProperties\":false}}",
                Value::String(t.name.clone()),
                t.parameters
            )
        })
        .collect();
    format!("{{\"oneOf\":[{}]}}", one.join(","))
}

/// The GBNF grammar of a tool call, from the grammar of [`calls_schema`]
/// (whose start rule is `root`): `<tool_call>`, the call, `</tool_call>`.
pub fn call_grammar(schema_grammar: &str) -> String {
    let mut out = String::new();
    for line in schema_grammar.lines() {
        match line.strip_prefix("root ::=") {
            Some(rest) => out.push_str(&format!("call ::={rest}\n")),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    format!("root ::= \"{CALL_OPEN}\" [ \\n]* call [ \\n]* \"{CALL_CLOSE}\"\n{out}")
}

/// Splits what the model wrote into its text and its tool calls.
pub fn parse_output(output: &str, first_id: usize) -> (String, Vec<ToolCall>, Vec<InvalidToolCall>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut invalid = Vec::new();
    let mut rest = output;
    let mut n = first_id;
    while let Some(start) = rest.find(CALL_OPEN) {
        text.push_str(&rest[..start]);
        let after = &rest[start + CALL_OPEN.len()..];
        let (body, next, closed) = match after.find(CALL_CLOSE) {
            Some(end) => (&after[..end], &after[end + CALL_CLOSE.len()..], true),
            None => (after, "", false),
        };
        let id = format!("call_{n}");
        n += 1;
        if !closed && serde_json::from_str::<Value>(body.trim()).is_err() {
            invalid.push(InvalidToolCall {
                id,
                name: String::new(),
                raw: body.trim().to_string(),
                error: "the tool call was cut off before it ended (the answer reached its token limit)".into(),
            });
            break;
        }
        match crate::repair_json(body.trim()) {
            Some(Value::Object(mut call)) => {
                let name = call.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                let arguments = call.remove("arguments").unwrap_or_else(|| json!({}));
                if name.is_empty() || !arguments.is_object() {
                    invalid.push(InvalidToolCall {
                        id,
                        name,
                        raw: body.trim().to_string(),
                        error: "a tool call needs a \"name\" and an \"arguments\" object".into(),
                    });
                } else {
                    calls.push(ToolCall { id, name, raw_arguments: arguments.to_string(), arguments });
                }
            }
            _ => invalid.push(InvalidToolCall {
                id,
                name: String::new(),
                raw: body.trim().to_string(),
                error: "the tool call is not a JSON object".into(),
            }),
        }
        rest = next;
    }
    text.push_str(rest);
    (text.trim().to_string(), calls, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "read_file".into(),
            description: "Read a file.".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        }]
    }

    fn request() -> Request {
        Request {
            model: "m".into(),
            messages: vec![
                Message::System("sys".into()),
                Message::User("read a".into()),
                Message::Assistant {
                    text: String::new(),
                    thinking: vec![],
                    tool_calls: vec![ToolCall {
                        id: "call_0".into(),
                        name: "read_file".into(),
                        arguments: json!({"path": "a"}),
                        raw_arguments: String::new(),
                    }],
                },
                Message::ToolResult { call_id: "call_0".into(), content: "1\thello".into(), is_error: false },
            ],
            tools: tools(),
            ..Request::default()
        }
    }

    #[test]
    fn chatml_renders_tools_calls_and_results_as_text() {
        let prompt = render_prompt(CHATML, &request(), &Specials::default()).unwrap();
        assert!(prompt.starts_with("<|im_start|>system\nsys\n\nYou can call tools."), "{prompt}");
        assert!(prompt.contains("- read_file: Read a file. Arguments: {"));
        // Key order is the JSON map's (insertion order when a dependency turns on serde_json's `preserve_order`).
        let call = |json: &str| format!("<|im_start|>assistant\n<tool_call>\n{json}\n</tool_call><|im_end|>");
        assert!(
            prompt.contains(&call(r#"{"arguments":{"path":"a"},"name":"read_file"}"#))
                || prompt.contains(&call(r#"{"name":"read_file","arguments":{"path":"a"}}"#)),
            "{prompt}"
        );
        assert!(prompt.contains("<|im_start|>user\n<tool_response>\n1\thello\n</tool_response><|im_end|>"));
        assert!(prompt.ends_with("<|im_start|>assistant\n"));
    }

    #[test]
    fn a_template_that_takes_tools_gets_them() {
        let template = "{% if tools %}TOOLS:{% for t in tools %}{{ t.function.name }}{% endfor %}\n{% endif %}\
{% for m in messages %}[{{ m.role }}]{{ m.content }}{% if m.tool_calls %}{{ m.tool_calls[0].function.name }}{% endif %}\n{% endfor %}";
        let prompt = render_prompt(template, &request(), &Specials::default()).unwrap();
        assert!(prompt.starts_with("TOOLS:read_file\n[system]sys\n"), "{prompt}");
        assert!(prompt.contains("[assistant]read_file"));
        assert!(prompt.contains("[tool]1\thello"));
    }

    #[test]
    fn broken_and_hostile_templates_are_errors() {
        let bad = render_prompt("{% for %}", &request(), &Specials::default()).unwrap_err();
        assert!(bad.to_string().contains("does not parse"), "{bad}");
        let raised =
            render_prompt("{{ raise_exception('no tools here') }}", &request(), &Specials::default()).unwrap_err();
        assert!(raised.to_string().contains("no tools here"), "{raised}");
        // Unbounded work runs out of fuel instead of hanging.
        let endless = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(render_prompt(endless, &request(), &Specials::default()).is_err());
        // Python-style string methods work, as in Hugging Face templates.
        let py = "{{ messages[0]['content'].strip().upper() }}";
        assert_eq!(render_prompt(py, &request(), &Specials::default()).unwrap().lines().next().unwrap(), "SYS");
    }

    #[test]
    fn output_splits_into_text_and_calls() {
        let (text, calls, invalid) = parse_output(
            "Let me look.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}\n</tool_call>",
            0,
        );
        assert_eq!(text, "Let me look.");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].arguments, json!({"path": "a"}));
        assert!(invalid.is_empty());
        let (_, calls, invalid) = parse_output("<tool_call>{\"name\": \"x\"</tool_call><tool_call>[1]</tool_call>", 3);
        assert_eq!(calls.len(), 1, "a missing arguments object is repaired or refused, never a crash");
        assert_eq!(invalid.len(), 1);
        assert_eq!(invalid[0].id, "call_4");
    }

    #[test]
    fn the_call_grammar_wraps_the_schema_grammar() {
        let g = call_grammar("root ::= object\nobject ::= \"{\" \"}\"\n");
        assert!(g.starts_with("root ::= \"<tool_call>\""));
        assert!(g.contains("call ::= object\n"));
        let schema = calls_schema(&tools());
        let parsed: Value = serde_json::from_str(&schema).unwrap();
        assert_eq!(parsed["oneOf"][0]["properties"]["name"]["const"], "read_file");
        assert!(schema.find("\"name\"").unwrap() < schema.find("\"arguments\"").unwrap());
        let (_, calls, invalid) = parse_output("<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": \"a", 0);
        assert!(calls.is_empty());
        assert!(invalid[0].error.contains("cut off"), "{invalid:?}");
    }
}
