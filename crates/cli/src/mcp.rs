//! `airlock mcp …`: the MCP servers the policy configures, what each runs
//! (the digest a managed policy pins), and what it offers once started in
//! its sandbox, with the decision the rules give each tool.

use std::io::Write;
use std::process::ExitCode;

use airlock_audit::writer::AuditWriter;
use airlock_core::Rules;
use airlock_mcp::{Hub, ServerSpec};
use airlock_policy::mcp::{EnvValue, McpTransport};
use airlock_redact::terminal::sanitize as safe;
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Subcommand;

#[derive(clap::Args)]
pub struct McpArgs {
    #[command(subcommand)]
    command: McpCommand,
}

#[derive(Subcommand)]
enum McpCommand {
    /// The servers the effective policy lets start here, and how each is configured.
    List,
    /// The digest of what NAME runs (its executable, and every file or folder its arguments
    /// name), for `[mcp.pinned]` in a managed policy.
    Digest {
        /// The server's name.
        name: String,
    },
    /// Start NAME in its sandbox (on the record) and list the tools it offers, each with the
    /// decision the rules give it; then stop it.
    Tools {
        /// The server's name.
        name: String,
        /// One JSON object per tool.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: McpArgs) -> Result<ExitCode> {
    let cx = crate::context()?;
    let policy = crate::load_policy(&cx)?;
    let mut out = std::io::stdout().lock();
    match args.command {
        McpCommand::List => {
            let servers = policy.mcp_servers();
            if servers.is_empty() {
                writeln!(out, "no MCP servers (configure [mcp.servers.NAME] in ~/.config/airlock/config.toml)")?;
            }
            for (name, server) in servers {
                let what = match &server.transport.value {
                    McpTransport::Stdio { command, args } => format!("{command} {}", args.join(" ")),
                    McpTransport::Http { url } => url.clone(),
                };
                writeln!(out, "{name}  ({})", server.defined_by)?;
                writeln!(out, "  runs     {}", safe(what.trim_end()))?;
                if let Some(pin) = &server.digest {
                    writeln!(out, "  pinned   {} ({})", pin.value, pin.source)?;
                }
                let env: Vec<String> = server
                    .env
                    .value
                    .iter()
                    .map(|(k, v)| match v {
                        EnvValue::Literal(_) => format!("{k} (a literal)"),
                        other => format!("{k} from {other}"),
                    })
                    .collect();
                for (label, list) in [
                    ("env", env),
                    ("reads", server.read.value.iter().map(|p| p.display().to_string()).collect()),
                    ("writes", server.write.value.iter().map(|p| p.display().to_string()).collect()),
                    ("hosts", server.hosts.value.clone()),
                ] {
                    if !list.is_empty() {
                        writeln!(out, "  {label:<8} {}", safe(&list.join(", ")))?;
                    }
                }
                writeln!(out, "  timeout  {} s per call", server.timeout_secs.value)?;
            }
        }
        McpCommand::Digest { name } => {
            let spec = spec(&policy, &cx.workspace, &name)?;
            let digest = airlock_mcp::digest_of(&spec, &cx.workspace)?;
            writeln!(out, "{digest}")?;
        }
        McpCommand::Tools { name, json } => {
            let spec = spec(&policy, &cx.workspace, &name)?;
            let audit = crate::audit::paths(None)?;
            let writer = AuditWriter::spawn(crate::audit::open_log(&audit)?).map_err(|e| anyhow!(e))?;
            let handle = writer.handle();
            let session = airlock_session::run::new_session_id().context("cannot make a session id")?;
            let (root, _) = airlock_session::run::run_root().map_err(|e| anyhow!(e))?;
            let run_dir = root.join(format!("{session}.mcp"));
            std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
            let exe = std::env::current_exe().context("cannot find the airlock binary")?;
            let launcher = airlock_session::mcp::launcher(
                &exe,
                &cx.workspace,
                &run_dir,
                std::time::Duration::from_secs(spec.start_timeout.as_secs() + 60),
                Some((handle.clone(), session.clone())),
            );
            let (hub, _) = Hub::start(std::slice::from_ref(&spec), &launcher);
            let events: Vec<_> = hub.take_events().into_iter().map(airlock_session::mcp::record).collect();
            let refused = events.iter().find_map(|e| match e {
                airlock_audit::event::Event::McpServer { action, detail, .. } if action == "refused" => {
                    Some(detail.clone())
                }
                _ => None,
            });
            let recorded = handle.append(&session, events);
            let tools = hub.tools();
            hub.shutdown();
            // The launcher records through a handle too: the writer closes once every handle is gone.
            drop(launcher);
            drop(handle);
            let _ = std::fs::remove_dir_all(&run_dir);
            writer.close().map_err(|e| anyhow!(e))?;
            recorded.map_err(|e| anyhow!("the audit log refused the record: {e}"))?;
            if let Some(why) = refused {
                bail!("{}", safe(&why));
            }
            let mut rules = Rules::from_policy(&policy);
            // The rule itself (ask), not what a headless run makes of it.
            rules.headless = false;
            rules.set_mcp_read_only(tools.iter().filter(|t| t.read_only).map(|t| t.name.clone()));
            for tool in &tools {
                let decided = airlock_core::decide(&rules, &tool.name, &serde_json::json!({}));
                if json {
                    let line = serde_json::json!({
                        "name": tool.name,
                        "tool": tool.tool,
                        "read_only": tool.read_only,
                        "decision": decided.decision.as_str(),
                        "source": decided.source,
                        "description": tool.description,
                    });
                    writeln!(out, "{line}")?;
                } else {
                    let first = tool.description.lines().next().unwrap_or("");
                    writeln!(
                        out,
                        "{:<40} {:<5} {:<28} {}",
                        tool.name,
                        decided.decision.as_str(),
                        decided.source,
                        safe(first)
                    )?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The launcher's view of server `name`, or why there is none.
fn spec(policy: &airlock_policy::Policy, workspace: &std::path::Path, name: &str) -> Result<ServerSpec> {
    let (specs, refused) = airlock_session::mcp::specs_from_policy(policy, workspace);
    if let Some((_, why)) = refused.iter().find(|(n, _)| n == name) {
        bail!("MCP server {name}: {}", safe(why));
    }
    specs.into_iter().find(|s| s.name == name).ok_or_else(|| {
        let known: Vec<&str> = policy.mcp_servers().into_iter().map(|(n, _)| n).collect();
        anyhow!(
            "no MCP server {name} may start here (configured: {})\nhint: airlock mcp list",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )
    })
}
