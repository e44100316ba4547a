//! `airlock` with no subcommand: the interactive session in the current
//! directory (`airlock_tui::app`), over the same session lifecycle as
//! `airlock exec`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use airlock_core::session::list as list_sessions;
use airlock_redact::terminal::sanitize as safe;
use airlock_session::{Mode, Session};
use anyhow::{Context as _, Result, anyhow, bail};

use crate::exec::AgentArgs;

/// The interactive session's arguments (`airlock [TASK]`).
#[derive(clap::Args)]
pub struct InteractiveArgs {
    /// A first message for the agent.
    #[arg(value_name = "TASK")]
    task: Option<String>,
    /// The permission mode to start in: ask (edits and commands ask), edits (edits free), plan
    /// (read-only), auto (everything policy allows runs, sandboxed, without asking).
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Continue the last session in this workspace.
    #[arg(short = 'c', long = "continue", conflicts_with = "resume")]
    continue_last: bool,
    /// Continue session ID (without an ID: choose from this workspace's sessions).
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    resume: Option<String>,
    #[command(flatten)]
    agent: AgentArgs,
}

pub fn run(args: InteractiveArgs) -> Result<ExitCode> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        bail!(
            "the interactive session needs a terminal\nhint: in scripts and CI use airlock exec \"TASK\" (headless, \
             --json for events)"
        );
    }
    let mode = args.mode.as_deref().map(str::parse::<Mode>).transpose()?;
    let cx = crate::context()?;
    let audit = crate::audit::paths(args.agent.dir.clone())?;
    let sessions = audit.dir.join("sessions");
    let resume = match (&args.resume, args.continue_last) {
        (Some(id), _) if !id.is_empty() => Some(id.clone()),
        (Some(_), _) => Some(pick_session(&sessions, &cx.workspace)?),
        (None, true) => {
            let found = list_sessions(&sessions, &cx.workspace)?;
            let last = found.first().ok_or_else(|| {
                anyhow!("no session to continue in {}\nhint: airlock starts a new one", cx.workspace.display())
            })?;
            Some(last.header.session.clone())
        }
        (None, false) => None,
    };
    let exe = std::env::current_exe().context("cannot find the airlock binary")?;
    let options = crate::exec::options(&args.agent, None, resume, true, mode)?;
    let data_dir = options.data_dir.clone();
    // The first frame now: the session takes a moment to start (the worker's
    // sandbox, the broker, the log). Taking the terminal starts no thread.
    let mut screen = airlock_tui::screen::Screen::start().context("cannot use the terminal")?;
    let _ = screen.starting(&format!(
        "airlock · {} · {} · starting the sandbox…",
        options.route.model(),
        options.route.place()
    ));
    // Before any thread: with an embedded model this forbids the network to the process.
    let session = match Session::start(options) {
        Ok(session) => session,
        Err(e) => {
            let _ = screen.finish();
            return Err(e.into());
        }
    };
    let id = session.info().id.clone();
    let policy = crate::load_policy(&cx).ok();
    let app = airlock_tui::app::AppOptions {
        first: args.task.clone(),
        history_file: Some(data_dir.join("prompt-history")),
        policy,
        exe,
    };
    let ended = airlock_tui::app::run(screen, session, app).map_err(|e| anyhow!(e))?;
    crate::exec::warn_at_end(&ended);
    eprintln!(
        "airlock: session {id} ended ({}). Its record: airlock audit show --session {id} · airlock report {id} · \
         continue: airlock --continue",
        safe(&ended.reason)
    );
    Ok(ExitCode::from(ended.code))
}

/// Lists this workspace's sessions and reads the person's choice.
fn pick_session(dir: &std::path::Path, workspace: &std::path::Path) -> Result<String> {
    let found = list_sessions(dir, workspace)?;
    if found.is_empty() {
        bail!("no session to resume in {}", workspace.display());
    }
    let shown: Vec<_> = found.iter().take(20).collect();
    let mut err = std::io::stderr();
    for (i, s) in shown.iter().enumerate() {
        writeln!(err, "{:>3}  {}  {}  {}", i + 1, s.header.session, safe(&s.header.model), safe(&s.first_prompt))?;
    }
    write!(err, "resume which session? [1] ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let n = match line.trim() {
        "" => 1,
        text => text.parse::<usize>().map_err(|_| anyhow!("{text:?} is not a number from the list"))?,
    };
    shown.get(n.wrapping_sub(1)).map(|s| s.header.session.clone()).ok_or_else(|| anyhow!("there is no session {n}"))
}
