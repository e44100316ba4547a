//! `airlock exec "TASK"`: one headless agent session, privilege-separated.
//!
//! This process is the supervisor: it holds the configuration, the audit
//! log and the broker (the gateway on a private Unix socket, the only way
//! out to the model). The agent loop runs in a worker, this same binary
//! re-executed as `airlock __worker` inside `airlock sandbox` (no network,
//! writes only in the workspace), and asks this process for every decision,
//! record and command.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use airlock_core::{Budget, Progress};
use airlock_model::ApiStyle;
use airlock_redact::terminal::{one_line, sanitize as safe};
use airlock_session::{Ended, Mode, ModelChoice, Session, SessionEvent, SessionOptions};
use anyhow::{Context as _, Result};

#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 finished; 3 the turn limit or token budget stopped it; 4 the model \
failed; 5 the worker failed or a record could not be kept (the audit log stays whole); 2 invalid arguments or \
configuration; 125 the sandbox refused to start; 130 cancelled.")]
pub struct ExecArgs {
    /// What to do.
    #[arg(value_name = "TASK")]
    task: Option<String>,
    /// Stream events as JSON lines on standard output (the answer is in the last, `done`).
    #[arg(long)]
    json: bool,
    /// Continue session ID (its conversation is sent again, with TASK as the next message).
    #[arg(long, value_name = "ID")]
    resume: Option<String>,
    #[command(flatten)]
    agent: AgentArgs,
}

/// What `exec` and the interactive session share: the model, the limits,
/// the log's folder.
#[derive(clap::Args)]
pub(crate) struct AgentArgs {
    /// The model (default: $AIRLOCK_MODEL, else the first model the configuration names).
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// An OpenAI- or Anthropic-compatible server to use instead of the configuration's upstreams
    /// (vLLM, SGLang, llama.cpp server, Ollama: http://HOST:PORT; a trailing /v1 is accepted).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The wire API of --endpoint.
    #[arg(long, value_enum, default_value = "openai", value_name = "API")]
    api: Api,
    /// The environment variable holding --endpoint's API key (it is read by the broker, never by the agent).
    #[arg(long, value_name = "NAME")]
    api_key_env: Option<String>,
    /// The configuration with the upstreams (default: $XDG_CONFIG_HOME/airlock/models.toml, in the
    /// gateway's format).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Model turns at most, per task.
    #[arg(long, default_value_t = 50, value_name = "N")]
    max_turns: u32,
    /// Input plus output tokens at most, per task.
    #[arg(long, default_value_t = 2_000_000, value_name = "N")]
    max_tokens: u64,
    /// Allow what policy would ask about (headless, nobody is asked): a tool (`write_file`, `edit_file`,
    /// `run_command`, an MCP tool `mcp__SERVER__TOOL` or all of a server's `mcp__SERVER__*`) or a
    /// command prefix (`cargo test`). Denied tools and commands stay denied.
    #[arg(long = "grant", value_name = "TOOL|PREFIX")]
    grant: Vec<String>,
    /// The folder of the audit log and the sessions (default: $XDG_DATA_HOME/airlock).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Kill the whole session after SECS seconds (default: an hour for `exec`, a day for the interactive
    /// session).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Run this model inside airlock (a GGUF from `airlock model list`, or a path): no server, no network.
    #[arg(long, value_name = "MODEL", conflicts_with = "endpoint")]
    local: Option<String>,
    /// No network at all, enforced by the kernel for airlock and everything it starts (the default with
    /// an embedded model; refuses a model server).
    #[arg(long, conflicts_with = "endpoint")]
    offline: bool,
    /// Context size of the embedded model, in tokens (capped by what it was trained for).
    #[arg(long, default_value_t = 8192, value_name = "TOKENS")]
    context: u32,
    /// Threads for the embedded model (default: every core airlock may use).
    #[arg(long, value_name = "N")]
    threads: Option<u32>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Api {
    Openai,
    Anthropic,
}

impl Api {
    pub(crate) fn style(self) -> ApiStyle {
        match self {
            Api::Openai => ApiStyle::OpenAi,
            Api::Anthropic => ApiStyle::Anthropic,
        }
    }
}

impl AgentArgs {
    /// What the arguments say about the model.
    pub(crate) fn model_choice(&self) -> Result<ModelChoice> {
        Ok(ModelChoice {
            endpoint: self.endpoint.clone(),
            api: Some(self.api.style()),
            api_key_env: self.api_key_env.clone(),
            models_file: match &self.config {
                Some(p) => p.clone(),
                None => crate::gateway::config_dir()?.join("models.toml"),
            },
            models_file_given: self.config.is_some(),
            model: self.model.clone(),
            local: self.local.clone(),
            offline: self.offline,
            context: self.context,
            threads: self.threads,
        })
    }
}

/// Everything but the front end's own choices, from the arguments: the
/// route (with an embedded model the network is forbidden from here on),
/// the policy, the audit log.
pub(crate) fn options(
    args: &AgentArgs,
    task: Option<String>,
    resume: Option<String>,
    interactive: bool,
    mode: Option<Mode>,
) -> Result<SessionOptions> {
    let route = airlock_session::route::route(&args.model_choice()?)?;
    let cx = crate::context()?;
    let policy = crate::load_policy(&cx)?;
    let user_config = airlock_policy::PolicyFiles::discover(&cx.workspace, &|name| std::env::var(name).ok()).user;
    let audit_paths = crate::audit::paths(args.dir.clone())?;
    let log = crate::audit::open_log(&audit_paths)?;
    Ok(SessionOptions {
        workspace: cx.workspace.clone(),
        policy,
        log,
        data_dir: audit_paths.dir.clone(),
        route,
        budget: Budget { max_turns: args.max_turns, max_tokens: args.max_tokens, ..Budget::default() },
        grants: args.grant.clone(),
        timeout_secs: args.timeout.unwrap_or(if interactive { 24 * 3600 } else { 3600 }),
        resume,
        task,
        interactive,
        mode,
        user: std::env::var("USER").unwrap_or_else(|_| format!("uid:{}", crate::gateway::getuid())),
        host: crate::audit::host(),
        exe: std::env::current_exe().context("cannot find the airlock binary")?,
        context: args.context,
        threads: args.threads,
        user_config,
        extra_mcp: Vec::new(),
    })
}

pub fn run(args: ExecArgs) -> Result<ExitCode> {
    let options = options(&args.agent, args.task.clone(), args.resume.clone(), false, None)?;
    let session = Session::start(options)?;
    let mut out = Output::new(args.json, &session.info().id);
    for warning in &session.info().warnings {
        eprintln!("airlock: warning: {}", safe(warning));
    }
    let ended = session.serve(&mut |event| out.event(event))?;
    warn_at_end(&ended);
    out.finish(&ended);
    Ok(ExitCode::from(ended.code))
}

/// What a person must hear when a session ends: a transcript line lost,
/// git control files changed by commands.
pub(crate) fn warn_at_end(ended: &Ended) {
    if let Some(e) = &ended.transcript_error {
        eprintln!("airlock: the transcript is incomplete: {}", safe(e));
    }
    // Paths from the workspace: escaped, never raw on the terminal.
    for path in &ended.git_control {
        eprintln!(
            "airlock: warning: a command changed a git control file (it can run code at your next git command): {}",
            path.escape_debug()
        );
    }
}

/// What the person or the script sees.
struct Output {
    json: bool,
    color: bool,
    stdout: std::io::Stdout,
    /// Whether this turn's text was shown as it came.
    streamed: bool,
    /// Whether any text was shown as it came.
    streamed_any: bool,
    /// The model's streamed text, made safe for the terminal piece by piece.
    stream: airlock_redact::terminal::TerminalStream,
}

impl Output {
    fn new(json: bool, session: &str) -> Output {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let mut out = Output {
            json,
            color,
            stdout: std::io::stdout(),
            streamed: false,
            streamed_any: false,
            stream: airlock_redact::terminal::TerminalStream::new(),
        };
        if json {
            out.line(&serde_json::json!({"type": "session", "id": session}));
        } else {
            eprintln!("{}", out.dim(&format!("airlock: session {session}")));
        }
        out
    }

    fn dim(&self, text: &str) -> String {
        if self.color { format!("\x1b[2m{text}\x1b[0m") } else { text.to_string() }
    }

    fn line(&mut self, value: &serde_json::Value) {
        // JSON escapes C0 controls but not C1 ones or bidi controls: escape
        // those too (they only occur inside strings, so the line stays JSON).
        let text = value.to_string();
        let text = airlock_redact::terminal::escape_for_json(&text);
        let _ = writeln!(self.stdout, "{text}");
        let _ = self.stdout.flush();
    }

    fn event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Progress(p) => self.progress(&p),
            SessionEvent::Notice(text) if !self.json => eprintln!("airlock: {}", safe(&text)),
            _ => {}
        }
    }

    fn progress(&mut self, p: &Progress) {
        if self.json {
            // Messages are the transcript's, and text deltas add up to
            // `model_text`: the events carry the same content.
            if !matches!(p, Progress::Message { .. } | Progress::TextDelta { .. }) {
                self.line(&serde_json::to_value(p).unwrap_or_default());
            }
            return;
        }
        match p {
            Progress::TurnStart { turn } => {
                self.streamed = false;
                eprintln!("{}", self.dim(&format!("· turn {turn}")));
            }
            // Everything below came from the model, a tool or a file: it
            // passes the terminal sanitiser before it is printed.
            Progress::TextDelta { text } => {
                self.streamed = true;
                self.streamed_any = true;
                let mut err = std::io::stderr();
                let _ = write!(err, "{}", self.stream.push(text));
                let _ = err.flush();
            }
            Progress::ModelText { text } if !self.streamed => eprintln!("{}", safe(text.trim_end())),
            Progress::ModelText { .. } => eprintln!("{}", self.stream.finish()),
            Progress::ToolCall { name, arguments, .. } => {
                let args = arguments.to_string();
                let shown: String = args.chars().take(160).collect();
                let more = if shown.len() < args.len() { "…" } else { "" };
                eprintln!("→ {} {}{more}", one_line(name), one_line(&shown));
            }
            Progress::Decision { decision, source, .. } if decision != "allow" => {
                eprintln!("  denied ({})", one_line(source));
            }
            Progress::ToolResult { is_error: true, preview, .. } => {
                let first = preview.lines().next().unwrap_or_default();
                eprintln!("  {}", self.dim(&format!("error: {}", one_line(first))));
            }
            Progress::FileChange { path, .. } => {
                eprintln!("  {}", self.dim(&format!("changed {}", one_line(path))))
            }
            _ => {}
        }
    }

    fn finish(&mut self, ended: &Ended) {
        if self.json {
            if ended.done.is_none() {
                self.line(&serde_json::json!({"type": "error", "exit_status": ended.code, "reason": ended.reason}));
            }
            return;
        }
        match &ended.done {
            Some(done) => {
                if ended.code != 0 {
                    eprintln!("airlock: stopped: {}", safe(&ended.reason));
                }
                eprintln!(
                    "{}",
                    self.dim(&format!(
                        "airlock: {} turns, {} tokens in, {} out",
                        done.turns, done.usage.input_tokens, done.usage.output_tokens
                    ))
                );
                // The answer goes to standard output once: when it was
                // streamed to the same terminal already, not again.
                if !(self.streamed_any && same_terminal()) {
                    let _ = writeln!(self.stdout, "{}", safe(done.answer.trim_end()));
                }
            }
            None => eprintln!("airlock: {}", safe(&ended.reason)),
        }
    }
}

/// Whether standard output and standard error are the same terminal.
fn same_terminal() -> bool {
    use std::os::unix::fs::MetadataExt;
    if !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal()) {
        return false;
    }
    let (Ok(out), Ok(err)) = (std::fs::metadata("/proc/self/fd/1"), std::fs::metadata("/proc/self/fd/2")) else {
        return false;
    };
    out.rdev() == err.rdev()
}
