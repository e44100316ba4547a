//! `airlock acp`: airlock as an Agent Client Protocol agent on standard
//! input and output, for editors (Zed, JetBrains, ...). Each session the
//! editor opens is an airlock session in the folder it names, sandboxed
//! and on the record; approvals go to the editor and are recorded with it
//! as the approver. Standard output carries protocol messages only; logs
//! go to standard error.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use airlock_policy::{Context, PolicyFiles};
use airlock_session::Mode;
use anyhow::{Context as _, Result, anyhow};

use crate::exec::AgentArgs;

/// `airlock acp`'s arguments: those of the interactive session.
#[derive(clap::Args)]
pub struct AcpArgs {
    /// The permission mode sessions start in: ask (edits and commands ask the editor), edits (edits free),
    /// plan (read-only), auto (everything policy allows runs, sandboxed, without asking).
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    #[command(flatten)]
    agent: AgentArgs,
}

pub fn run(args: AcpArgs) -> Result<ExitCode> {
    // Logs on standard error only: standard output is the protocol's.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let mode = args.mode.as_deref().map(str::parse::<Mode>).transpose()?;
    // With an embedded model the network is forbidden to this process now,
    // before any thread starts (later sessions cannot cover threads that run).
    if let airlock_session::Route::Embedded { .. } = airlock_session::route::route(&args.agent.model_choice()?)? {
        airlock_sandbox::seccomp::forbid_network()
            .map_err(|e| anyhow!("cannot forbid the network to this process (seccomp): {e}"))?;
    }
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .ok_or_else(|| anyhow!("HOME is not set\nhint: set HOME so that ~ in policy files can be expanded"))?;
    let agent = Arc::new(args.agent);
    let session_options: airlock_acp::OptionsFor =
        Box::new(move |workspace: &Path| options(&agent, &home, workspace, mode).map_err(|e| format!("{e:#}")));
    let config = airlock_acp::Config {
        session_options,
        uid: u64::from(crate::gateway::getuid()),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    airlock_acp::serve_stdio(config).context("airlock acp")?;
    Ok(ExitCode::SUCCESS)
}

/// A session's options in `workspace`: as `airlock` builds them, with the
/// policy and the user configuration of that workspace (not of the folder
/// the editor started this process in).
fn options(
    agent: &AgentArgs,
    home: &Path,
    workspace: &Path,
    mode: Option<Mode>,
) -> Result<airlock_session::SessionOptions> {
    let mut options = crate::exec::options(agent, None, None, true, mode)?;
    let cx = Context { home: home.to_path_buf(), workspace: workspace.to_path_buf() };
    options.policy = crate::load_policy(&cx)?;
    options.user_config = PolicyFiles::discover(workspace, &|name| std::env::var(name).ok()).user;
    options.workspace = workspace.to_path_buf();
    Ok(options)
}
