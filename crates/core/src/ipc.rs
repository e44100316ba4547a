//! The wire between supervisor and worker: one JSON object per line, the
//! worker asking and the supervisor answering, strictly in turn (every
//! [`Up`] gets exactly one [`Down`]). The worker's standard output carries
//! `Up`, its standard input carries the [`Start`] line and then `Down`.
//!
//! The worker runs model output, so the supervisor treats every line from
//! it as hostile: lines are capped at [`MAX_LINE`], and a line that is not a
//! valid `Up` ends the session.

use std::io::{BufRead, Write};

use airlock_audit::event::Event;
use airlock_model::{ApiStyle, Message};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Decision, Progress};

/// The longest line either side accepts (a tool result with a whole file in it fits).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// What the worker is to do: the supervisor's first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// The task.
    pub task: String,
    /// The conversation so far, when resuming a session.
    pub history: Vec<Message>,
    /// The model's name.
    pub model: String,
    /// The wire API the worker speaks to the broker.
    pub api: ApiStyle,
    /// The broker's Unix socket.
    pub broker: String,
    /// Model turns at most.
    pub max_turns: u32,
    /// Tokens over the run at most.
    pub max_tokens: u64,
    /// Tokens per answer at most.
    pub max_answer_tokens: u32,
    /// Whether `run_command` is offered.
    pub commands: bool,
    /// Run this GGUF in the worker instead of asking the broker.
    pub embedded: Option<Embedded>,
    /// A person is present: after each turn the worker asks for the next
    /// prompt ([`Up::Next`]) instead of exiting.
    #[serde(default)]
    pub interactive: bool,
    /// Tools of the session's MCP servers (the supervisor runs them and
    /// calls them: [`Up::Mcp`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_tools: Vec<airlock_tools::ExternalSpec>,
}

/// The embedded model the worker loads (the supervisor checked its digest).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedded {
    /// The GGUF file.
    pub path: String,
    /// Context size in tokens.
    pub context: u32,
    /// Threads; `None` for every core the worker may use.
    pub threads: Option<u32>,
}

/// A request from the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Up {
    /// Decide a tool call (and record the decision).
    Decide {
        /// The call's id (as the model gave it).
        id: String,
        /// The tool.
        name: String,
        /// Its arguments.
        arguments: Value,
    },
    /// Record an event the worker witnessed (a file change).
    Record {
        /// The event.
        event: Event,
    },
    /// Run an allowed command in its own sandbox.
    Run {
        /// The shell command.
        command: String,
        /// Seconds before it is killed.
        timeout_secs: u64,
    },
    /// Call an allowed MCP tool (its server runs in a sandbox of its own,
    /// started by the supervisor).
    Mcp {
        /// The tool (`mcp__SERVER__TOOL`).
        name: String,
        /// Its arguments.
        arguments: Value,
    },
    /// Progress, for the person, the script and the transcript.
    Progress {
        /// What happened.
        progress: Progress,
    },
    /// The run failed; the worker exits after the answer.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// The turn is over: the worker waits for the person's next prompt
    /// (answered by [`Down::Prompt`] or [`Down::End`]).
    Next,
}

/// The supervisor's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Down {
    /// A decision, on the record.
    Decided {
        /// Allow or deny.
        decision: Decision,
        /// What decided.
        source: String,
        /// The person's note to the model, with a denial.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Done (recorded, or noted).
    Ok,
    /// Not an answer: sent any time, it stops the current turn (the
    /// person pressed Esc). The worker's reader acts on it at once.
    Interrupt,
    /// The person's next message.
    Prompt {
        /// The message.
        text: String,
        /// The conversation to continue from instead of the worker's own
        /// (after a rewind, `/clear` or `/compact`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history: Option<Vec<Message>>,
    },
    /// The session is over: the worker exits.
    End,
    /// A command's outcome.
    Ran {
        /// Its exit status; `None` when killed.
        exit_status: Option<i32>,
        /// Whether the timeout killed it.
        timed_out: bool,
        /// Its output, capped.
        output: String,
        /// Wall-clock milliseconds.
        duration_ms: u64,
    },
    /// An MCP tool's result (secrets already replaced).
    McpResult {
        /// What the model gets.
        content: String,
        /// Whether the call failed.
        is_error: bool,
    },
    /// Refused or failed: the worker's request did not happen.
    Refused {
        /// Why.
        error: String,
    },
}

/// A Unix socket's path short enough for `sockaddr_un` (108 bytes): the path
/// itself when it fits, else `/proc/self/fd/N/NAME` through a descriptor of
/// its folder, which the caller keeps open while it binds or connects.
pub fn socket_path(path: &std::path::Path) -> std::io::Result<(std::path::PathBuf, Option<std::fs::File>)> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().as_bytes().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::other(format!("{} is not a socket path", path.display())));
    };
    let folder = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_DIRECTORY).open(dir)?;
    use std::os::fd::AsRawFd;
    let short = std::path::PathBuf::from(format!("/proc/self/fd/{}", folder.as_raw_fd())).join(name);
    Ok((short, Some(folder)))
}

/// Reads one line of at most [`MAX_LINE`] bytes; `Ok(None)` at end of input.
pub fn read_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>) -> Result<Option<()>, String> {
    buf.clear();
    let mut limited: std::io::Take<&mut R> = std::io::Read::take(reader, MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', buf).map_err(|e| format!("cannot read from the other side: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_LINE {
            return Err(format!("a line longer than {MAX_LINE} bytes"));
        }
        return Err("the last line is cut short".into());
    }
    buf.pop();
    Ok(Some(()))
}

/// Parses one line as `T`, naming what was wrong.
pub fn parse<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T, String> {
    serde_json::from_slice(line).map_err(|e| {
        let shown = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
        format!("not a valid message ({e}): {shown}")
    })
}

/// Writes `message` as one line and flushes.
pub fn write(writer: &mut impl Write, message: &impl Serialize) -> Result<(), String> {
    let mut line = serde_json::to_vec(message).map_err(|e| format!("cannot encode a message: {e}"))?;
    line.push(b'\n');
    writer.write_all(&line).and_then(|()| writer.flush()).map_err(|e| format!("cannot write to the other side: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_single_lines() {
        let ups = [
            Up::Next,
            Up::Decide { id: "c1".into(), name: "read_file".into(), arguments: serde_json::json!({"path": "a\nb"}) },
            Up::Record { event: Event::FileChange { path: "x".into(), before: String::new(), after: "ab".into() } },
            Up::Run { command: "cargo test".into(), timeout_secs: 60 },
            Up::Mcp { name: "mcp__fs__read".into(), arguments: serde_json::json!({"path": "a"}) },
            Up::Progress { progress: Progress::TurnStart { turn: 1 } },
            Up::Failed { error: "model: 500".into() },
        ];
        for up in ups {
            let mut out = Vec::new();
            write(&mut out, &up).unwrap();
            assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
            let mut reader = std::io::BufReader::new(&out[..]);
            let mut buf = Vec::new();
            read_line(&mut reader, &mut buf).unwrap().unwrap();
            assert_eq!(parse::<Up>(&buf).unwrap(), up);
        }
    }

    #[test]
    fn long_socket_paths_are_reached_through_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a".repeat(60)).join("b".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("broker.sock");
        assert!(std::os::unix::net::UnixListener::bind(&path).is_err(), "too long for sockaddr_un");
        let (short, _folder) = socket_path(&path).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&short).unwrap();
        assert!(path.exists());
        let (short, _folder) = socket_path(&path).unwrap();
        std::os::unix::net::UnixStream::connect(&short).unwrap();
        drop(listener);
        let near = dir.path().join("s.sock");
        assert_eq!(socket_path(&near).unwrap().0, near);
    }

    #[test]
    fn hostile_lines_are_named() {
        let mut buf = Vec::new();
        let err = read_line(&mut std::io::BufReader::new(&b"{\"op\":\"ok\""[..]), &mut buf).unwrap_err();
        assert!(err.contains("cut short"), "{err}");
        let huge = vec![b'a'; MAX_LINE + 10];
        let err = read_line(&mut std::io::BufReader::new(&huge[..]), &mut buf).unwrap_err();
        assert!(err.contains("longer than"), "{err}");
        let err = parse::<Up>(br#"{"op":"run","command":"ls","timeout_secs":1,"extra":1}"#).unwrap_err();
        assert!(err.contains("not a valid message"), "{err}");
        assert!(parse::<Up>(br#"{"op":"record","event":{"kind":"nope"}}"#).is_err());
        assert_eq!(read_line(&mut std::io::BufReader::new(&b""[..]), &mut buf).unwrap(), None);
    }
}
