//! `run_command`: a shell command in the workspace, confined by the kernel
//! sandbox. The tools only describe the command; a [`CommandRunner`] runs
//! it, so the agent decides how (by default `airlock sandbox`, a separate
//! process, so the sandbox's single-threaded launch is never this process's
//! concern).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock_redact::{PathDecision, PathPolicy};
use serde::Deserialize;

use crate::ToolError;

/// Arguments of `run_command`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    command: String,
    timeout_secs: Option<u64>,
}

/// Longest a command may be given by the model.
const MAX_TIMEOUT_SECS: u64 = 600;
/// When the model names no timeout.
const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// Its exit status, or `None` when it was killed.
    pub exit_status: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Standard output then standard error, capped (the runner marks a cut).
    pub output: String,
    /// Wall-clock milliseconds.
    pub duration_ms: u64,
}

/// Runs commands for `run_command`.
pub trait CommandRunner: Send + std::fmt::Debug {
    /// Runs `command` with `sh -c` in `cwd`, for at most `timeout`.
    /// `Err` means it could not be run at all (the sandbox refused, say).
    fn run(&mut self, command: &str, cwd: &Path, timeout: Duration) -> Result<CommandResult, String>;
}

/// Runs each command through `airlock sandbox` (a separate process): the
/// workspace writable, no network, the policy's limits, and the files the
/// file tools may never read hidden (each shows empty, each folder empty).
#[derive(Debug, Clone)]
pub struct SandboxRunner {
    program: PathBuf,
    max_output: u64,
    never_read: PathPolicy,
    running: Running,
}

/// The process id of the command sandbox running now, if any: a person's
/// interrupt stops it from another thread ([`Running::interrupt`]).
#[derive(Debug, Clone, Default)]
pub struct Running(std::sync::Arc<std::sync::Mutex<Option<u32>>>);

impl Running {
    /// Waits for `child` with its id in the slot. The child is reaped only
    /// while the slot's lock is held, and the slot cleared at once: an
    /// interrupt never signals an id the kernel may have given to another
    /// process. Polls every 20 ms while it runs.
    fn wait(&self, mut child: std::process::Child) -> std::io::Result<std::process::Output> {
        use std::io::Read;
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(child.id());
        let status = loop {
            {
                let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
                match child.try_wait() {
                    Ok(None) => {}
                    done => {
                        *slot = None;
                        break done?;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let status = status.ok_or_else(|| std::io::Error::other("the command's status is missing"))?;
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        Ok(std::process::Output { status, stdout, stderr })
    }

    /// Sends SIGINT to the running command's sandbox, which kills its whole
    /// process tree and exits 130; false when nothing runs.
    pub fn interrupt(&self) -> bool {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(pid) = *guard else { return false };
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        // SAFETY: kill has no memory effects. The child is reaped only under
        // this lock, which clears the slot: the id is still the child's.
        unsafe { libc::kill(pid, libc::SIGINT) == 0 }
    }
}

/// Never-read paths one command may hide at most: each is a mount. Past it
/// the command is refused (a folder in `.airlockignore` is one mount for all
/// that it holds).
const MAX_HIDDEN: usize = 2000;

/// `airlock sandbox`'s exit status when the timeout killed the command.
const EXIT_TIMEOUT: i32 = airlock_policy::exit::TIMEOUT;
/// `airlock sandbox`'s exit status when it refused to run.
const EXIT_REFUSED: i32 = airlock_policy::exit::REFUSED;

impl SandboxRunner {
    /// Runs commands with the `airlock` binary at `program`, keeping at most
    /// `max_output` bytes of each stream.
    pub fn new(program: impl Into<PathBuf>, max_output: u64) -> SandboxRunner {
        SandboxRunner {
            program: program.into(),
            max_output,
            never_read: PathPolicy::defaults(),
            running: Running::default(),
        }
    }

    /// Lets `running` interrupt the command that runs.
    pub fn interruptible(mut self, running: Running) -> SandboxRunner {
        self.running = running;
        self
    }

    /// Hides what `policy` forbids reading (the session's, with the
    /// workspace's `.airlockignore` as it was at the start) instead of the
    /// built-in patterns alone.
    pub fn hiding(mut self, policy: PathPolicy) -> SandboxRunner {
        self.never_read = policy;
        self
    }
}

/// The paths under `root` that `policy` forbids reading: files, links and
/// whole folders (a denied folder is not entered). A command can read what
/// a file tool may not, unless its sandbox hides these; they are found again
/// before every command, since the last one may have made some.
pub fn never_read_paths(root: &Path, policy: &PathPolicy) -> Result<Vec<PathBuf>, String> {
    let mut denied = Vec::new();
    let walker = ignore::WalkBuilder::new(root).standard_filters(false).follow_links(false).build();
    let mut skip: Vec<PathBuf> = Vec::new();
    for entry in walker {
        // An entry that cannot be read cannot be read by the command either.
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        if skip.iter().any(|s| path.starts_with(s)) {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else { continue };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        if let PathDecision::Denied { .. } = policy.check(rel, is_dir) {
            if is_dir {
                skip.push(path.to_path_buf());
            }
            denied.push(path.to_path_buf());
            if denied.len() > MAX_HIDDEN {
                return Err(format!(
                    "more than {MAX_HIDDEN} never-read files in {} to hide from the command\nhint: list the folders \
                     that hold them in .airlockignore (a folder is hidden whole)",
                    root.display()
                ));
            }
        }
    }
    Ok(denied)
}

impl CommandRunner for SandboxRunner {
    fn run(&mut self, command: &str, cwd: &Path, timeout: Duration) -> Result<CommandResult, String> {
        let started = Instant::now();
        let hidden = never_read_paths(cwd, &self.never_read)?;
        let mut sandbox = Command::new(&self.program);
        sandbox
            .arg("sandbox")
            .arg("--timeout")
            .arg(timeout.as_secs().max(1).to_string())
            .arg("--max-output")
            .arg(self.max_output.to_string());
        for path in &hidden {
            sandbox.arg("--deny-read").arg(path);
        }
        let child = sandbox
            .arg("--")
            .args(["sh", "-c", command])
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        let out = self.running.wait(child).map_err(|e| format!("cannot wait for {}: {e}", self.program.display()))?;
        let code = out.status.code();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if code == Some(EXIT_REFUSED) {
            return Err(format!("the sandbox refused to run the command: {}", stderr.trim()));
        }
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        if !stderr.is_empty() {
            if !output.is_empty() && !output.ends_with('\n') {
                output.push('\n');
            }
            output.push_str(&stderr);
        }
        let timed_out = code == Some(EXIT_TIMEOUT);
        Ok(CommandResult {
            exit_status: if timed_out { None } else { code },
            timed_out,
            output,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// Runs the tool: checks the arguments, runs, and says how it ended.
pub(crate) fn run_command(
    runner: Option<&mut Box<dyn CommandRunner>>,
    root: &Path,
    args: Args,
) -> Result<String, ToolError> {
    let invalid = |message: String| ToolError::InvalidArguments { tool: "run_command".into(), message };
    let Some(runner) = runner else {
        return Err(invalid("run_command is not available in this session".into()));
    };
    if args.command.trim().is_empty() {
        return Err(invalid("`command` is empty".into()));
    }
    let secs = args.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
        return Err(invalid(format!("`timeout_secs` must be between 1 and {MAX_TIMEOUT_SECS}")));
    }
    let result = runner.run(&args.command, root, Duration::from_secs(secs)).map_err(invalid)?;
    let head = match (result.timed_out, result.exit_status) {
        (true, _) => format!("killed after the {secs} s timeout ({} ms)", result.duration_ms),
        (false, Some(code)) => format!("exit {code} ({} ms)", result.duration_ms),
        (false, None) => format!("killed by a signal ({} ms)", result.duration_ms),
    };
    Ok(if result.output.is_empty() { format!("{head}; no output") } else { format!("{head}\n{}", result.output) })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a runner was asked: command, directory, timeout.
    type Asked = Arc<Mutex<Vec<(String, PathBuf, Duration)>>>;

    /// Records what it was asked and answers as told.
    #[derive(Debug)]
    struct Scripted {
        asked: Asked,
        answer: Result<CommandResult, String>,
    }

    impl CommandRunner for Scripted {
        fn run(&mut self, command: &str, cwd: &Path, timeout: Duration) -> Result<CommandResult, String> {
            self.asked.lock().unwrap().push((command.into(), cwd.into(), timeout));
            self.answer.clone()
        }
    }

    fn tools(answer: Result<CommandResult, String>) -> (crate::Tools, Asked, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let ws = crate::Workspace::open(dir.path(), crate::PathPolicy::defaults()).unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let tools = crate::Tools::new(ws).with_runner(Box::new(Scripted { asked: asked.clone(), answer }));
        (tools, asked, dir)
    }

    fn done(code: i32, output: &str) -> CommandResult {
        CommandResult { exit_status: Some(code), timed_out: false, output: output.into(), duration_ms: 7 }
    }

    #[test]
    fn a_command_runs_in_the_workspace_and_says_how_it_ended() {
        let (mut t, asked, dir) = tools(Ok(done(1, "boom\n")));
        assert!(t.specs().iter().any(|s| s.name == "run_command"));
        let out = t.call("run_command", &serde_json::json!({"command": "cargo test", "timeout_secs": 30}));
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(out.content, "exit 1 (7 ms)\nboom\n");
        let asked = asked.lock().unwrap();
        assert_eq!(asked[0].0, "cargo test");
        assert_eq!(asked[0].1, dir.path().canonicalize().unwrap());
        assert_eq!(asked[0].2, Duration::from_secs(30));
    }

    #[test]
    fn timeouts_refusals_and_bad_arguments_are_reported() {
        let killed = CommandResult { exit_status: None, timed_out: true, output: String::new(), duration_ms: 2000 };
        let (mut t, _, _dir) = tools(Ok(killed));
        let out = t.call("run_command", &serde_json::json!({"command": "sleep 9", "timeout_secs": 2}));
        assert_eq!(out.content, "killed after the 2 s timeout (2000 ms); no output");
        for bad in [
            serde_json::json!({"command": "  "}),
            serde_json::json!({"command": "x", "timeout_secs": 601}),
            serde_json::json!({"command": "x", "timeout_secs": 0}),
            serde_json::json!({"cmd": "x"}),
        ] {
            assert!(t.call("run_command", &bad).is_error, "{bad}");
        }
        let (mut t, _, _dir) = tools(Err("the sandbox refused to run the command: no Landlock".into()));
        let out = t.call("run_command", &serde_json::json!({"command": "ls"}));
        assert!(out.is_error && out.content.contains("no Landlock"), "{}", out.content);
    }

    #[test]
    fn never_read_files_are_found_at_any_depth_and_denied_folders_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for file in [
            ".env",
            "app/config/.env.local",
            "certs/server.pem",
            "deep/a/b/c/id_ed25519",
            "private/one.txt",
            "private/sub/two.pem",
            ".env.example",
            "src/main.rs",
            "id_ed25519.pub",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        std::fs::write(root.join(".airlockignore"), "private/\n").unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join("prod.env")).unwrap();
        let policy = PathPolicy::with_patterns(&root, &[]).unwrap();
        let mut found: Vec<String> = never_read_paths(&root, &policy)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        found.sort();
        assert_eq!(
            found,
            [".env", "app/config/.env.local", "certs/server.pem", "deep/a/b/c/id_ed25519", "private", "prod.env"]
        );
        // Without the workspace's own file, the built-in patterns still hold.
        let found = never_read_paths(&root, &PathPolicy::defaults()).unwrap();
        assert!(found.contains(&root.join("private/sub/two.pem")) && !found.contains(&root.join("private")));
    }

    #[test]
    fn without_a_runner_the_tool_is_not_offered() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = crate::Tools::new(crate::Workspace::open(dir.path(), crate::PathPolicy::defaults()).unwrap());
        assert!(!t.specs().iter().any(|s| s.name == "run_command"));
        assert!(t.call("run_command", &serde_json::json!({"command": "ls"})).is_error);
    }
}
