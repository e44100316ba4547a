//! airlock's MCP client: each stdio server runs in a kernel sandbox of its
//! own, started by the supervisor, and only its pipes are handed to the MCP
//! SDK (`rmcp`).
//!
//! A server is started as
//! `airlock sandbox --private-home --read WORKSPACE ... --dns-log SOCKET -- COMMAND ARGS...`
//! in a fresh private folder (its only writable place besides its private
//! `/tmp` and home): no network, the workspace read-only, none of the user's
//! files or environment beyond what its configuration gives it. Its secrets
//! are set on the `airlock sandbox` process and passed in by name, so they
//! never reach the agent's worker.
//!
//! Everything a server sends passes a limit first (a line over 8 MiB, more
//! than 64 MiB during one call, or a line that is not JSON-RPC stops it), and
//! a call that outlasts its timeout stops it. A stopped server is killed
//! (the whole sandbox), later calls to it fail naming the reason, and the
//! other servers go on.
//!
//! ```no_run
//! use airlock_mcp::{Hub, Launcher, ServerSpec, Transport};
//! use std::time::Duration;
//!
//! let spec = ServerSpec {
//!     name: "files".into(),
//!     transport: Transport::Stdio { command: "python3".into(), args: vec!["/opt/mcp/files.py".into()] },
//!     env: Default::default(),
//!     read: vec![],
//!     write: vec![],
//!     hosts: vec![],
//!     digest: None,
//!     call_timeout: Duration::from_secs(60),
//!     start_timeout: Duration::from_secs(30),
//! };
//! let launcher = Launcher::new(
//!     "/usr/bin/airlock".into(),
//!     "/src/app".into(),
//!     "/run/user/1000/airlock/s1".into(),
//!     Duration::from_secs(3600),
//! );
//! let (hub, errors) = Hub::start(&[spec], &launcher);
//! for tool in hub.tools() {
//!     println!("{}: {}", tool.name, tool.description);
//! }
//! let outcome = hub.call("mcp__files__read", &serde_json::json!({"path": "README.md"}));
//! # let _ = (errors, outcome);
//! hub.shutdown();
//! ```
#![deny(missing_docs)]

mod digest;
mod egress;
mod error;
mod http;
mod hub;
mod launch;
mod lines;
mod names;
mod render;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use digest::digest_of;
#[doc(hidden)]
pub use egress::EgressForTests;
pub use egress::{PROXY_PORT, Record};
pub use error::McpError;
pub use hub::{Hub, Interrupter};

/// One MCP server as the policy configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server's name (`[mcp.servers.NAME]`); tools are offered as `mcp__NAME__TOOL`.
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
    /// Environment given to the server: resolved values, secrets included.
    pub env: BTreeMap<String, String>,
    /// Folders it may read besides the workspace.
    pub read: Vec<PathBuf>,
    /// Folders it may write besides its own private folder.
    pub write: Vec<PathBuf>,
    /// Hosts it may reach through an egress proxy of its own (`api.example.com`, `*.example.com`),
    /// each connection on the record ([`Launcher::record`]; without it a spec with hosts is refused).
    pub hosts: Vec<String>,
    /// A pin, `sha256:HEX` as [`digest_of`] computes it: the server is refused when it differs.
    pub digest: Option<String>,
    /// The longest one call may take; a server past it is stopped.
    pub call_timeout: Duration,
    /// The longest the start (spawn, initialize, listing tools) may take.
    pub start_timeout: Duration,
}

/// How a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A program speaking MCP over its standard input and output, run in the sandbox.
    Stdio {
        /// The executable: a name looked up in `PATH`, or a path (relative to the workspace).
        command: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// A remote server over MCP streamable HTTP, reached from this process
    /// (the supervisor) alone: each exchange with it redacted, on the record
    /// ([`Launcher::record`]) before it is sent, and capped
    /// ([`MAX_CALL_BYTES`], `call_timeout`); no redirect is followed. Without
    /// a record it is refused. Its `env` holds its credential:
    /// `AUTHORIZATION` is sent as the `Authorization` header and each
    /// `HEADER_<NAME>` as the header `<name>` (`HEADER_X_API_KEY` is
    /// `x-api-key`); no other name is accepted, and none is ever recorded or
    /// logged. `read`, `write`, `hosts` and `digest` mean nothing for it and
    /// are refused.
    Http {
        /// Its URL: `https://`, or `http://` to loopback (`127.0.0.1`, `localhost`, `::1`).
        url: String,
    },
}

/// Where and with what servers are started.
#[derive(Clone)]
pub struct Launcher {
    /// The airlock binary (its `sandbox` subcommand runs each server).
    pub exe: PathBuf,
    /// The workspace: readable by every server, writable by none.
    pub workspace: PathBuf,
    /// The session's private run folder (0700); each server gets `mcp/NAME` in it.
    pub run_dir: PathBuf,
    /// How long a server may live (the session's own limit): its sandbox's
    /// timeout, which otherwise is the policy's limit for one command.
    pub lifetime: Duration,
    /// Keeps the connections of servers with `hosts` on the session's record
    /// (`egress_open` before each is made, `egress_close`, `blocked_egress`);
    /// `None` refuses every server with `hosts`.
    pub record: Option<Record>,
    /// For tests only (production leaves it `None`).
    #[doc(hidden)]
    pub egress_for_tests: Option<EgressForTests>,
}

impl Launcher {
    /// A launcher that keeps no record (servers with `hosts` are refused).
    pub fn new(exe: PathBuf, workspace: PathBuf, run_dir: PathBuf, lifetime: Duration) -> Launcher {
        Launcher { exe, workspace, run_dir, lifetime, record: None, egress_for_tests: None }
    }
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launcher")
            .field("exe", &self.exe)
            .field("workspace", &self.workspace)
            .field("run_dir", &self.run_dir)
            .field("lifetime", &self.lifetime)
            .field("record", &self.record.as_ref().map(|_| "..."))
            .field("egress_for_tests", &self.egress_for_tests)
            .finish()
    }
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    /// The qualified name, `mcp__SERVER__TOOL`.
    pub name: String,
    /// The server's name as configured.
    pub server: String,
    /// The tool's name as the server gives it.
    pub tool: String,
    /// Its description (control characters replaced, at most [`MAX_DESCRIPTION`] bytes).
    pub description: String,
    /// Its JSON Schema for arguments.
    pub input_schema: serde_json::Value,
    /// The server annotates it read-only (`readOnlyHint: true`).
    pub read_only: bool,
}

/// What one call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// The content rendered as text (at most [`MAX_RESULT_TEXT`] bytes, then a marker).
    pub text: String,
    /// The server flagged the result as an error (`isError: true`).
    pub is_error: bool,
}

/// Something for the session's record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerEvent {
    /// A server started and offers these tools (qualified names).
    Started {
        /// The server's name.
        server: String,
        /// What runs, as [`digest_of`] computes it.
        digest: String,
        /// The qualified names of the tools it offers.
        tools: Vec<String>,
    },
    /// A running server was stopped (killed with its whole sandbox).
    Stopped {
        /// The server's name.
        server: String,
        /// Why.
        reason: String,
    },
    /// A server was not started.
    Refused {
        /// The server's name.
        server: String,
        /// Why.
        reason: String,
    },
    /// A server tried to resolve a host name (answered REFUSED: it has no network).
    EgressAttempt {
        /// The server's name.
        server: String,
        /// The name it looked up.
        host: String,
    },
}

/// The longest tool description offered; a longer one keeps the tool from being offered.
pub const MAX_DESCRIPTION: usize = 2 * 1024;
/// The largest input schema (as JSON) offered; a larger one keeps the tool from being offered.
pub const MAX_SCHEMA: usize = 16 * 1024;
/// The longest result text handed on; the rest is cut with a marker.
pub const MAX_RESULT_TEXT: usize = 1024 * 1024;
/// The longest line a server may send; a longer one stops it.
pub const MAX_LINE: usize = 8 * 1024 * 1024;
/// The most a server may send during one call (or between two); more stops it.
pub const MAX_CALL_BYTES: u64 = 64 * 1024 * 1024;
