//! The session's MCP servers: resolved from the policy (and from the
//! editor, for `airlock acp`), each started by this process in a sandbox of
//! its own, called for the worker only after an allow decision, their
//! results redacted before the model sees them.
//!
//! The supervisor holds the servers' secrets: an `env` value taken from the
//! user's environment or a file is read here and given to the server's
//! sandbox alone; the worker never has it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_audit::event::{Event, RedactionNote};
use airlock_core::supervisor::{McpAnswer, McpCalls};
use airlock_mcp::{Hub, Launcher, McpTool, ServerEvent, ServerSpec, Transport};
use airlock_policy::mcp::{EnvValue, McpServer, McpTransport};
use airlock_redact::{Redactor, Scanner};
use serde_json::Value;

/// How long a server may take to start (spawn, initialize, list its tools).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The servers the policy lets start, as the launcher takes them; a server
/// whose secrets cannot be read is not started, and why is returned.
pub fn specs_from_policy(
    policy: &airlock_policy::Policy,
    workspace: &Path,
) -> (Vec<ServerSpec>, Vec<(String, String)>) {
    let mut specs = Vec::new();
    let mut refused = Vec::new();
    for (name, server) in policy.mcp_servers() {
        match spec(name, server, workspace) {
            Ok(spec) => specs.push(spec),
            Err(why) => refused.push((name.to_string(), why)),
        }
    }
    (specs, refused)
}

/// A path inside the workspace must still be inside it once its links are
/// followed: a committed symlink must not widen what a server may touch.
fn contained(path: &Path, workspace: &Path, key: &str) -> Result<std::path::PathBuf, String> {
    if !path.starts_with(workspace) {
        return Ok(path.to_path_buf());
    }
    let real =
        std::fs::canonicalize(path).map_err(|e| format!("its {key} path {} cannot be used: {e}", path.display()))?;
    let root = std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf());
    match real.starts_with(&root) {
        true => Ok(real),
        false => Err(format!(
            "its {key} path {} leads out of the workspace (to {}) through a link",
            path.display(),
            real.display()
        )),
    }
}

fn spec(name: &str, server: &McpServer, workspace: &Path) -> Result<ServerSpec, String> {
    let transport = match &server.transport.value {
        McpTransport::Stdio { command, args } => Transport::Stdio { command: command.clone(), args: args.clone() },
        McpTransport::Http { url } => Transport::Http { url: url.clone() },
    };
    let mut env = std::collections::BTreeMap::new();
    for (key, value) in &server.env.value {
        let resolved = match value {
            EnvValue::Literal(text) => text.clone(),
            EnvValue::FromEnv(var) => std::env::var(var)
                .map_err(|_| format!("its env {key} comes from ${{{var}}}, which is not set (or not UTF-8)"))?,
            EnvValue::File(path) => std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("its env {key} comes from {}, which cannot be read: {e}", path.display()))?,
        };
        env.insert(key.clone(), resolved);
    }
    Ok(ServerSpec {
        name: name.to_string(),
        transport,
        env,
        read: server.read.value.iter().map(|p| contained(p, workspace, "read")).collect::<Result<_, _>>()?,
        write: server.write.value.iter().map(|p| contained(p, workspace, "write")).collect::<Result<_, _>>()?,
        hosts: server.hosts.value.clone(),
        digest: server.digest.as_ref().map(|d| d.value.clone()),
        call_timeout: Duration::from_secs(server.timeout_secs.value),
        start_timeout: START_TIMEOUT,
    })
}

/// The started servers, as the supervisor calls them.
pub struct SessionMcp {
    hub: Option<Hub>,
    tools: Vec<McpTool>,
    redactor: Redactor,
    /// Refusals at the start, recorded with the first events.
    pending: Vec<Event>,
}

impl SessionMcp {
    /// Starts every server in `specs` (each failure is recorded, the others
    /// go on); `None` when there is none to start.
    pub fn start(specs: &[ServerSpec], launcher: &Launcher, scanner: Arc<Scanner>) -> Option<SessionMcp> {
        if specs.is_empty() {
            return None;
        }
        let (hub, errors) = Hub::start(specs, launcher);
        let mut pending: Vec<Event> = hub.take_events().into_iter().map(record).collect();
        // What the hub reports beside its servers' events: a tool not
        // offered (a description or schema over the caps, a name taken twice).
        pending.extend(errors.iter().filter_map(|e| match e {
            airlock_mcp::McpError::ToolNotOffered { server, .. } => Some(Event::McpServer {
                server: server.clone(),
                action: "tool_refused".into(),
                digest: String::new(),
                detail: e.to_string(),
            }),
            _ => None,
        }));
        let mcp = SessionMcp { tools: hub.tools(), hub: Some(hub), redactor: Redactor::new(scanner), pending };
        Some(mcp)
    }

    /// The tools offered to the model.
    pub fn tools(&self) -> &[McpTool] {
        &self.tools
    }

    /// The tools as the worker offers them.
    pub fn external_specs(&self) -> Vec<airlock_tools::ExternalSpec> {
        self.tools
            .iter()
            .map(|t| airlock_tools::ExternalSpec {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.input_schema.clone(),
            })
            .collect()
    }

    /// What interrupts a call in progress (Esc).
    pub fn interrupter(&self) -> airlock_mcp::Interrupter {
        self.hub.as_ref().map(Hub::interrupter).unwrap_or_default()
    }

    /// The tools their servers annotate read-only.
    pub fn read_only(&self) -> Vec<String> {
        self.tools.iter().filter(|t| t.read_only).map(|t| t.name.clone()).collect()
    }
}

impl McpCalls for SessionMcp {
    fn call(&mut self, name: &str, arguments: &Value) -> McpAnswer {
        let began = Instant::now();
        let (server, tool) = match self.tools.iter().find(|t| t.name == name) {
            Some(t) => (t.server.clone(), t.tool.clone()),
            None => split(name),
        };
        let (text, is_error) = match self.hub.as_ref().map(|hub| hub.call(name, arguments)) {
            Some(Ok(outcome)) => (outcome.text, outcome.is_error),
            Some(Err(e)) => (e.to_string(), true),
            None => ("the MCP servers were shut down".to_string(), true),
        };
        let redacted = self.redactor.redact(&text);
        let redactions = redacted
            .report
            .into_iter()
            .map(|r| RedactionNote {
                rule: r.rule_id,
                field: "result".into(),
                placeholder: r.placeholder,
                secret_sha256: r.secret_sha256,
            })
            .collect();
        McpAnswer {
            server,
            tool,
            content: redacted.text,
            is_error,
            redactions,
            duration_ms: began.elapsed().as_millis() as u64,
        }
    }

    fn events(&mut self) -> Vec<Event> {
        let mut events = std::mem::take(&mut self.pending);
        if let Some(hub) = &self.hub {
            events.extend(hub.take_events().into_iter().map(record));
        }
        events
    }
}

impl Drop for SessionMcp {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.shutdown();
        }
    }
}

/// `mcp__SERVER__TOOL` as (SERVER, TOOL), for a name no server offers.
fn split(name: &str) -> (String, String) {
    let rest = name.strip_prefix("mcp__").unwrap_or(name);
    match rest.split_once("__") {
        Some((server, tool)) => (server.to_string(), tool.to_string()),
        None => (rest.to_string(), String::new()),
    }
}

/// A server's event as the audit log keeps it.
pub fn record(event: ServerEvent) -> Event {
    match event {
        ServerEvent::Started { server, digest, tools } => Event::McpServer {
            server,
            action: "started".into(),
            digest,
            detail: format!("tools: {}", tools.join(", ")),
        },
        ServerEvent::Stopped { server, reason } => {
            Event::McpServer { server, action: "stopped".into(), digest: String::new(), detail: reason }
        }
        ServerEvent::Refused { server, reason } => {
            Event::McpServer { server, action: "refused".into(), digest: String::new(), detail: reason }
        }
        ServerEvent::EgressAttempt { server, host } => Event::BlockedEgress {
            destination: host,
            reason: format!("MCP server {server} has no network (a name lookup was refused)"),
            bytes: 0,
        },
    }
}

/// The launcher for a session's servers: what a server sends out (through
/// its egress proxy, or to a remote server) goes on the session's record,
/// each exchange before it is made; without `audit`, servers with hosts and
/// remote servers are refused.
pub fn launcher(
    exe: &Path,
    workspace: &Path,
    run_dir: &Path,
    lifetime: Duration,
    audit: Option<(airlock_audit::writer::AuditHandle, String)>,
) -> Launcher {
    let mut launcher = Launcher::new(exe.to_path_buf(), workspace.to_path_buf(), run_dir.to_path_buf(), lifetime);
    if let Some((audit, session)) = audit {
        let record: airlock_mcp::Record =
            Arc::new(move |event| audit.append(&session, vec![event]).map(|_| ()).map_err(|e| e.to_string()));
        launcher.record = Some(record);
    }
    launcher
}
