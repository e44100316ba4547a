//! airlock's agent tools: read, list, glob, grep, edit and write files beneath the workspace,
//! and keep a todo list. Each tool has a lean JSON Schema ([`specs`]) for the model.
//!
//! Every path is resolved by the kernel beneath the workspace root
//! (`openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`), so `..`, absolute symlinks and symlinks
//! escaping the root are refused, and the never-read [`PathPolicy`] is checked on the path as
//! given and on the path it resolved to. Writes go through a temporary file and a rename, never
//! follow a final symlink, and never touch `.git`.
//!
//! [`Tools::call`] never fails: bad arguments, refused paths and I/O errors come back as a
//! [`ToolOutput`] with `is_error` set and a message written for the model.
//!
//! ```
//! use airlock_redact::PathPolicy;
//! use airlock_tools::{Tools, Workspace};
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join(".env"), "TOKEN=hunter2\n")?;
//! let policy = PathPolicy::with_patterns(dir.path(), &[])?;
//! let mut tools = Tools::new(Workspace::open(dir.path(), policy)?);
//!
//! let out = tools.call("write_file", &json!({"path": "src/main.rs", "content": "fn main() {}\n"}));
//! assert_eq!(out.content, "created src/main.rs (1 lines, 13 bytes)");
//! assert!(out.changed.is_some());
//!
//! let out = tools.call("read_file", &json!({"path": "src/main.rs"}));
//! assert_eq!(out.content, "1\tfn main() {}");
//!
//! let out = tools.call("read_file", &json!({"path": ".env"}));
//! assert!(out.is_error && out.content.contains("not readable by policy"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod command;
mod edit;
mod error;
mod list;
mod read;
mod schema;
mod search;
mod sys;
mod todo;
mod workspace;
mod write;

use std::panic::AssertUnwindSafe;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use airlock_redact::{PathDecision, PathPolicy};
pub use command::{CommandResult, CommandRunner, Running, SandboxRunner, never_read_paths};
pub use error::ToolError;
pub use schema::{run_command_spec, specs, validate};
pub use todo::{TodoItem, TodoStatus};
pub use workspace::{Limits, Workspace};

/// A tool as offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The name the model calls.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// JSON Schema of the arguments (an object with `additionalProperties: false`).
    pub parameters: Value,
}

/// The result of a tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// What the model sees.
    pub content: String,
    /// Whether the call failed; `content` then says why.
    pub is_error: bool,
    /// The file the call changed, for the audit log.
    pub changed: Option<FileChange>,
}

impl ToolOutput {
    fn ok(content: String) -> ToolOutput {
        ToolOutput { content, is_error: false, changed: None }
    }

    fn error(err: &ToolError) -> ToolOutput {
        ToolOutput { content: err.to_string(), is_error: true, changed: None }
    }
}

/// A file written by a tool, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Where it is, relative to the workspace root (as resolved).
    pub path: String,
    /// SHA-256 (hex) of the content before, `None` if the file was created.
    pub before_sha256: Option<String>,
    /// SHA-256 (hex) of the content after.
    pub after_sha256: Option<String>,
}

/// A file as a tool call would leave it, before the call runs: what a
/// person approving the call is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Relative to the workspace root (as resolved).
    pub path: String,
    /// The content now (empty when the file does not exist; invalid UTF-8 replaced).
    pub before: String,
    /// The content after the call.
    pub after: String,
}

/// A tool served outside these (an MCP server's, through the supervisor),
/// as offered to the model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExternalSpec {
    /// The name the model calls (`mcp__SERVER__TOOL`).
    pub name: String,
    /// What it does, as its server says.
    pub description: String,
    /// JSON Schema of its arguments, as its server gives it.
    pub parameters: Value,
}

/// Calls the tools of [`ExternalSpec`]s: they are checked and run by
/// whoever serves them (the supervisor), not here.
pub trait ExternalTools: Send + std::fmt::Debug {
    /// Calls `name`: its result and whether it failed; `Err` when it could
    /// not be called at all.
    fn call(&mut self, name: &str, arguments: &Value) -> Result<(String, bool), String>;
}

/// The tools of one session: the workspace and the todo list.
#[derive(Debug)]
pub struct Tools {
    workspace: Workspace,
    specs: Vec<ToolSpec>,
    todos: Vec<TodoItem>,
    runner: Option<Box<dyn CommandRunner>>,
    external: Vec<ExternalSpec>,
    caller: Option<Box<dyn ExternalTools>>,
}

impl Tools {
    /// Tools over `workspace`, with an empty todo list.
    pub fn new(workspace: Workspace) -> Tools {
        Tools { workspace, specs: specs(), todos: Vec::new(), runner: None, external: Vec::new(), caller: None }
    }

    /// Also offers `run_command`, run by `runner` (without one, the tool is
    /// not offered and a call to it is an error).
    pub fn with_runner(mut self, runner: Box<dyn CommandRunner>) -> Tools {
        if self.runner.is_none() {
            self.specs.push(run_command_spec());
        }
        self.runner = Some(runner);
        self
    }

    /// Also offers `specs`, called through `caller` (a name that is also a
    /// built-in tool's is not offered twice: the built-in one wins).
    pub fn with_external(mut self, specs: Vec<ExternalSpec>, caller: Box<dyn ExternalTools>) -> Tools {
        let builtin: Vec<&str> = self.specs.iter().map(|s| s.name).collect();
        self.external = specs.into_iter().filter(|s| !builtin.contains(&s.name.as_str())).collect();
        self.caller = Some(caller);
        self
    }

    /// The tools offered in this session.
    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// The external tools offered in this session (after the built-in ones).
    pub fn external_specs(&self) -> &[ExternalSpec] {
        &self.external
    }

    /// The workspace the tools work in.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The current todo list.
    pub fn todos(&self) -> &[TodoItem] {
        &self.todos
    }

    /// Runs the tool `name`. Never panics and never fails: errors come back with `is_error` set.
    pub fn call(&mut self, name: &str, arguments: &Value) -> ToolOutput {
        // The tools are written not to panic; this is the backstop that keeps a bug in one tool
        // call from taking the agent down.
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.dispatch(name, arguments))) {
            Ok(Ok(output)) => output,
            Ok(Err(err)) => ToolOutput::error(&err),
            Err(_) => ToolOutput {
                content: format!("{name}: internal error (the tool panicked); this is a bug in airlock"),
                is_error: true,
                changed: None,
            },
        }
    }

    /// What `edit_file` or `write_file` would change, without changing it;
    /// `None` for the other tools. Arguments are checked as for [`Tools::call`].
    pub fn preview(&self, name: &str, arguments: &Value) -> Option<Result<Preview, ToolError>> {
        let spec = self.specs.iter().find(|s| s.name == name)?;
        let checked = schema::validate(&spec.parameters, arguments)
            .map_err(|message| ToolError::InvalidArguments { tool: name.to_string(), message });
        let ws = &self.workspace;
        match name {
            "edit_file" => Some(checked.and_then(|()| edit::preview(ws, parse(name, arguments)?))),
            "write_file" => Some(checked.and_then(|()| write::preview(ws, parse(name, arguments)?))),
            _ => None,
        }
    }

    fn dispatch(&mut self, name: &str, arguments: &Value) -> Result<ToolOutput, ToolError> {
        if let (Some(caller), true) = (self.caller.as_mut(), self.external.iter().any(|s| s.name == name)) {
            if !arguments.is_object() {
                let message = "the arguments must be a JSON object".to_string();
                return Err(ToolError::InvalidArguments { tool: name.to_string(), message });
            }
            return Ok(match caller.call(name, arguments) {
                Ok((content, is_error)) => ToolOutput { content, is_error, changed: None },
                Err(error) => ToolOutput { content: format!("{name}: {error}"), is_error: true, changed: None },
            });
        }
        let Some(spec) = self.specs.iter().find(|s| s.name == name) else {
            let mut known: Vec<&str> = self.specs.iter().map(|s| s.name).collect();
            known.extend(self.external.iter().map(|s| s.name.as_str()));
            return Err(ToolError::UnknownTool { name: name.to_string(), known: known.join(", ") });
        };
        let invalid = |message: String| ToolError::InvalidArguments { tool: name.to_string(), message };
        schema::validate(&spec.parameters, arguments).map_err(invalid)?;
        let ws = &self.workspace;
        let changed =
            |(content, change): (String, FileChange)| ToolOutput { content, is_error: false, changed: Some(change) };
        Ok(match name {
            "read_file" => ToolOutput::ok(read::read_file(ws, parse(name, arguments)?)?),
            "list_dir" => ToolOutput::ok(list::list_dir(ws, parse(name, arguments)?)?),
            "glob" => ToolOutput::ok(search::glob(ws, parse(name, arguments)?)?),
            "grep" => ToolOutput::ok(search::grep(ws, parse(name, arguments)?)?),
            "edit_file" => changed(edit::edit_file(ws, parse(name, arguments)?)?),
            "write_file" => changed(write::write_file(ws, parse(name, arguments)?)?),
            "todo" => ToolOutput::ok(todo::todo(&mut self.todos, parse(name, arguments)?)?),
            "run_command" => {
                ToolOutput::ok(command::run_command(self.runner.as_mut(), ws.root(), parse(name, arguments)?)?)
            }
            _ => return Err(invalid("no implementation".to_string())),
        })
    }
}

/// Deserialises already validated arguments (optional `null`s dropped).
fn parse<T: DeserializeOwned>(tool: &str, arguments: &Value) -> Result<T, ToolError> {
    serde_json::from_value(schema::without_nulls(arguments))
        .map_err(|err| ToolError::InvalidArguments { tool: tool.to_string(), message: err.to_string() })
}
