//! The supervisor's side of a session: it answers the worker's requests
//! ([`crate::ipc`]) with the rules it holds, keeps every record in the audit
//! log, and runs the commands it allowed, each in a sandbox of its own.
//!
//! The worker runs model output, so nothing it says is taken on trust: it
//! may only record file changes (the other kinds are the supervisor's and
//! the broker's), it may only run a command the supervisor allowed for it
//! just before, and a malformed line ends the session. Whatever it does,
//! the log stays whole: every record is appended by this side.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use airlock_audit::event::Event;
use airlock_audit::writer::AuditHandle;
use airlock_tools::{CommandRunner, PathPolicy};
use sha2::{Digest, Sha256};

use crate::ipc::{self, Down, Start, Up};
use crate::snapshot::Snapshot;
use crate::{Decision, Progress, Rules, Stop, clip, decide, decide_path, tool_call_event};

/// How long one snapshot of the workspace may spend reading files (the
/// first, before the first command, reads them all; later ones only what
/// changed): past it, what changed is recorded as changed and counted.
const SNAPSHOT_BUDGET: Duration = Duration::from_secs(120);

/// What the supervisor holds for one session.
pub struct Supervisor<'a> {
    /// The decision rules.
    pub rules: Rules,
    /// Paths never read (the workspace's `.airlockignore` and the defaults).
    pub paths: PathPolicy,
    /// The audit session id.
    pub session: String,
    /// The audit log.
    pub audit: AuditHandle,
    /// Runs allowed commands (each in its own sandbox).
    pub runner: Box<dyn CommandRunner>,
    /// The workspace, where commands run.
    pub workspace: PathBuf,
    /// Digest of what the command sandbox enforces, for each command's record.
    pub sandbox_digest: String,
    /// Sees each progress report, in order (printing, the transcript).
    pub on_progress: &'a mut dyn FnMut(&Progress),
    /// The embedded model the worker runs (`name`, `sha256:…`), if it runs
    /// one: then no broker sees its model calls, and the supervisor records
    /// them from the worker's reports.
    pub embedded: Option<(String, String)>,
}

/// How a session went, as the supervisor saw it.
#[derive(Debug, Default)]
pub struct Served {
    /// The worker's final report, when it got that far.
    pub done: Option<Done>,
    /// The worker's own account of a failure.
    pub failed: Option<String>,
    /// Something the worker did that ended the session (a protocol violation).
    pub violation: Option<String>,
    /// A record the audit log refused (the worker was refused too).
    pub audit_error: Option<String>,
    /// Git control files that commands changed (on the record too): for a
    /// warning at the end of the run.
    pub git_control: Vec<String>,
}

/// The end of a run, as the worker reported it.
#[derive(Debug, Clone)]
pub struct Done {
    /// Why it ended.
    pub stop: Stop,
    /// The last answer.
    pub answer: String,
    /// Turns taken.
    pub turns: u32,
    /// Tokens in and out.
    pub usage: airlock_model::Usage,
}

impl Supervisor<'_> {
    fn append(&self, event: Event, served: &mut Served) -> Result<(), String> {
        self.audit.append(&self.session, vec![event]).map(|_| ()).map_err(|e| {
            let error = format!("the audit log refused a record: {e}");
            served.audit_error.get_or_insert_with(|| error.clone());
            error
        })
    }

    /// Sends `start`, then answers the worker until it closes its end or
    /// breaks the protocol.
    pub fn serve(&mut self, start: &Start, mut to_worker: impl Write, mut from_worker: impl BufRead) -> Served {
        let mut served = Served::default();
        if let Err(e) = ipc::write(&mut to_worker, start) {
            served.failed = Some(format!("the worker did not take its task: {e}"));
            return served;
        }
        // Commands decided `allow` and not run yet: the only ones `Run` may ask for.
        let mut allowed: Vec<String> = Vec::new();
        // The workspace as the last command left it: the next one's snapshot
        // reads only what changed since (the worker's own edits).
        let mut last = Snapshot::default();
        let mut buf = Vec::new();
        loop {
            let up = match ipc::read_line(&mut from_worker, &mut buf).and_then(|line| match line {
                Some(()) => ipc::parse::<Up>(&buf).map(Some),
                None => Ok(None),
            }) {
                Ok(Some(up)) => up,
                Ok(None) => break,
                Err(e) => {
                    self.violation(format!("the worker broke the protocol: {e}"), &mut served);
                    break;
                }
            };
            let down = match up {
                Up::Decide { id: _, name, arguments } => {
                    let decided = decide_path(&self.paths, &self.workspace, &name, &arguments)
                        .unwrap_or_else(|| decide(&self.rules, &name, &arguments));
                    match self.append(tool_call_event(&name, &arguments, &decided), &mut served) {
                        Ok(()) => {
                            let command = arguments.get("command").and_then(|c| c.as_str());
                            if let (true, Some(command)) =
                                (name == "run_command" && decided.decision == Decision::Allow, command)
                            {
                                allowed.push(command.to_string());
                            }
                            Down::Decided { decision: decided.decision, source: decided.source, note: None }
                        }
                        Err(error) => Down::Refused { error },
                    }
                }
                Up::Record { event } => match event {
                    Event::FileChange { .. } => match self.append(event, &mut served) {
                        Ok(()) => Down::Ok,
                        Err(error) => Down::Refused { error },
                    },
                    other => {
                        let error = format!("the worker may not record a {} event", other.kind());
                        self.violation(error.clone(), &mut served);
                        Down::Refused { error }
                    }
                },
                Up::Run { command, timeout_secs } => match allowed.iter().position(|c| *c == command) {
                    Some(i) => {
                        allowed.remove(i);
                        self.run(&command, timeout_secs, &mut last, &mut served)
                    }
                    None => {
                        let error = format!("the worker asked to run a command that was not allowed: {command}");
                        self.violation(error.clone(), &mut served);
                        Down::Refused { error }
                    }
                },
                Up::Progress { progress } => {
                    if let Progress::Done { stop, answer, turns, usage } = &progress {
                        served.done = Some(Done { stop: *stop, answer: answer.clone(), turns: *turns, usage: *usage });
                    }
                    let recorded = match (&progress, &self.embedded) {
                        (Progress::ModelCall { .. }, Some(model)) => {
                            self.append_many(embedded_call(&progress, model), &mut served)
                        }
                        _ => Ok(()),
                    };
                    (self.on_progress)(&progress);
                    match recorded {
                        Ok(()) => Down::Ok,
                        Err(error) => Down::Refused { error },
                    }
                }
                Up::Failed { error } => {
                    served.failed = Some(error);
                    Down::Ok
                }
                Up::Next => Down::End,
            };
            if ipc::write(&mut to_worker, &down).is_err() {
                // The worker is gone; what it left unanswered did not happen.
                break;
            }
            if served.violation.is_some() {
                break;
            }
        }
        served
    }

    fn append_many(&self, events: Vec<Event>, served: &mut Served) -> Result<(), String> {
        if events.is_empty() {
            return Ok(());
        }
        self.audit.append(&self.session, events).map(|_| ()).map_err(|e| {
            let error = format!("the audit log refused a record: {e}");
            served.audit_error.get_or_insert_with(|| error.clone());
            error
        })
    }

    /// Records a protocol violation; the session ends after it.
    fn violation(&self, detail: String, served: &mut Served) {
        let event = Event::PolicyViolation { rule: "worker.protocol".into(), detail: clip(&detail, 1000) };
        let _ = self.append(event, served);
        served.violation.get_or_insert(detail);
    }

    /// Runs an allowed command and records how it ended, and every change it
    /// made in the workspace, before the worker sees it.
    fn run(&mut self, command: &str, timeout_secs: u64, last: &mut Snapshot, served: &mut Served) -> Down {
        let timeout = Duration::from_secs(timeout_secs.clamp(1, 3600));
        let before = Snapshot::take_after(&self.workspace, last, SNAPSHOT_BUDGET);
        let ran = self.runner.run(command, &self.workspace, timeout);
        let after = Snapshot::take_after(&self.workspace, &before, SNAPSHOT_BUDGET);
        let changes = before.changes(&after, "");
        *last = after;
        served.git_control.extend(changes.git_control);
        match ran {
            Ok(result) => {
                let event = Event::Command {
                    argv: vec!["sh".into(), "-c".into(), command.into()],
                    cwd: self.workspace.display().to_string(),
                    sandbox_digest: self.sandbox_digest.clone(),
                    exit_status: match (result.timed_out, result.exit_status) {
                        (true, _) => 124,
                        (false, Some(code)) => i64::from(code),
                        (false, None) => -1,
                    },
                    duration_ms: result.duration_ms,
                    output_digest: hex::encode(Sha256::digest(result.output.as_bytes())),
                    output_bytes: result.output.len() as u64,
                };
                let mut events = vec![event];
                events.extend(changes.events);
                match self.append_many(events, served) {
                    Ok(()) => Down::Ran {
                        exit_status: result.exit_status,
                        timed_out: result.timed_out,
                        output: result.output,
                        duration_ms: result.duration_ms,
                    },
                    // Not on the record: the model does not see its output.
                    Err(error) => Down::Refused { error },
                }
            }
            Err(error) => match self.append_many(changes.events, served) {
                Ok(()) => Down::Refused { error },
                Err(audit) => Down::Refused { error: format!("{error}; {audit}") },
            },
        }
    }
}

/// The records of an embedded model's call, as the worker reported it (it
/// never left the machine; there was nothing to redact).
fn embedded_call(progress: &Progress, (name, sha256): &(String, String)) -> Vec<Event> {
    let Progress::ModelCall {
        request_bytes,
        request_digest,
        response_bytes,
        response_digest,
        input_tokens,
        output_tokens,
        duration_ms,
    } = progress
    else {
        return Vec::new();
    };
    let destination = format!("embedded {name} sha256:{sha256}");
    vec![
        Event::ModelRequest {
            principal: "worker".into(),
            route: "embedded".into(),
            model: name.clone(),
            destination: destination.clone(),
            bytes: *request_bytes,
            content_digest: request_digest.clone(),
            redactions: Vec::new(),
        },
        Event::ModelResponse {
            principal: "worker".into(),
            destination,
            status: 200,
            bytes: *response_bytes,
            content_digest: response_digest.clone(),
            input_tokens: *input_tokens,
            output_tokens: *output_tokens,
            duration_ms: *duration_ms,
            outcome: "complete".into(),
        },
    ]
}
