//! What can go wrong, each naming the server, tool or path.

use std::path::PathBuf;

/// An MCP server that could not start, a tool not offered, or a call that failed.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The server's name cannot be used.
    #[error("MCP server {server:?}: {reason}")]
    InvalidName {
        /// The name as configured.
        server: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration asks for something not built yet.
    #[error("MCP server {server}: {what} is not supported yet\nhint: {hint}")]
    NotSupported {
        /// The server.
        server: String,
        /// What was asked for.
        what: String,
        /// What to do instead.
        hint: String,
    },
    /// The command was not found.
    #[error("MCP server {server}: command {command:?} not found\nhint: {hint}")]
    CommandNotFound {
        /// The server.
        server: String,
        /// The command as configured.
        command: String,
        /// Where it was looked for.
        hint: String,
    },
    /// A file operation failed.
    #[error("MCP server {server}: cannot {what} {}: {source}", path.display())]
    Io {
        /// The server.
        server: String,
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The server's digest differs from its pin.
    #[error(
        "MCP server {server}: what would run has digest {actual}, not the pinned {expected}; refused\n\
         hint: the executable, or a script or package folder named in its arguments, changed since it was pinned; \
         check the change, then pin the new digest"
    )]
    DigestMismatch {
        /// The server.
        server: String,
        /// The pin.
        expected: String,
        /// What was computed.
        actual: String,
    },
    /// The server did not finish starting in time.
    #[error("MCP server {server} did not start within {secs} s (spawn, initialize, list tools); killed{stderr}")]
    StartTimeout {
        /// The server.
        server: String,
        /// The limit.
        secs: u64,
        /// The end of what it wrote to standard error, if anything (with its separator).
        stderr: String,
    },
    /// The server failed while starting.
    #[error("MCP server {server} did not start: {reason}")]
    Start {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
    /// One of the server's tools is not offered.
    #[error("MCP server {server}: tool {tool:?} is not offered: {reason}")]
    ToolNotOffered {
        /// The server.
        server: String,
        /// The tool's name as the server gave it (sanitised).
        tool: String,
        /// Why.
        reason: String,
    },
    /// No tool of that name.
    #[error("no MCP tool named {name:?}")]
    UnknownTool {
        /// The name asked for.
        name: String,
    },
    /// The arguments cannot be sent.
    #[error("MCP tool {tool}: {reason}")]
    BadArguments {
        /// The qualified tool name.
        tool: String,
        /// What is wrong.
        reason: String,
    },
    /// The person interrupted the call (the server goes on).
    #[error("the call to MCP server {server} was interrupted by the user")]
    Interrupted {
        /// The server.
        server: String,
    },
    /// The server was stopped.
    #[error("server {server} was stopped: {reason}")]
    Stopped {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error (it keeps running).
    #[error("MCP server {server} answered {method} with an error: {message}")]
    Failed {
        /// The server.
        server: String,
        /// The request (`tools/call NAME`, `resources/read`, ...).
        method: String,
        /// The error as the server gave it (sanitised).
        message: String,
    },
}
