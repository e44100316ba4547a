//! `scripted-model`: serves a scripted model (see `airlock_test_support::scripted`) until killed, for tests that
//! run the real `airlock` binary against it.
//!
//! ```text
//! scripted-model --script FILE.json --log REQUESTS.jsonl [--port N | --unix PATH] [--port-file F] [--side-answer TEXT]
//! ```
//!
//! The script is a JSON array of turns. Each model request is appended to the log as one JSON line (its body with a
//! `"path"` field, and `"query"` when the URL had one), each other request served as a `{"route": "GET /v1/models"}`
//! line and each violation as a `{"violation": "..."}` line, before the request is answered.

// A command-line front end: its errors and usage go to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_test_support::scripted::{Listen, Script, ScriptedModel, Turn};

const USAGE: &str = "\
usage: scripted-model --script FILE.json --log REQUESTS.jsonl [--port N | --unix PATH] [--port-file F]
                      [--side-answer TEXT]

Serves the turns of FILE.json (a JSON array of turns) as an OpenAI-compatible (chat completions and Responses),
Anthropic and Gemini API model on 127.0.0.1 (port N, default: a free one) or on a Unix socket, until killed. Appends every
request body, the route of every other request and every violation to REQUESTS.jsonl as JSON lines. With
--port-file, writes the port to F once it listens. With --side-answer, a request that offers the model no tools
(an agent's request for a session title, beside the conversation) is answered with TEXT and takes no turn.";

/// The command line, parsed.
#[derive(Debug)]
struct Options {
    script: PathBuf,
    log: PathBuf,
    listen: Listen,
    port_file: Option<PathBuf>,
    side_answer: Option<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("scripted-model: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args).map_err(|e| format!("{e}\n{USAGE}"))?;
    let script = Script::load(&options.script).map_err(|e| e.to_string())?;
    let turns = script.turns.len();
    let model = ScriptedModel::try_start(script, options.listen, Some(&options.log))
        .map_err(|e| format!("cannot serve: {e}"))?;
    model.set_side_answer(options.side_answer.as_deref().map(Turn::text));
    if let (Some(path), Listen::Port(port)) = (&options.port_file, model.listen()) {
        write_port(path, *port)?;
    }
    let at = match model.listen() {
        Listen::Port(_) => model.base_url(),
        Listen::Unix(path) => path.display().to_string(),
    };
    eprintln!("scripted-model: serving {turns} turns at {at}");
    model.join().map_err(|e| format!("the server stopped: {e}"))
}

fn parse(args: &[String]) -> Result<Options, String> {
    let (mut script, mut log, mut port, mut unix, mut port_file) = (None, None, None, None, None);
    let mut side_answer = None;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--script" => script = Some(PathBuf::from(value()?)),
            "--log" => log = Some(PathBuf::from(value()?)),
            "--port" => {
                let text = value()?;
                port = Some(text.parse::<u16>().map_err(|_| format!("--port takes a port number, not {text:?}"))?);
            }
            "--unix" => unix = Some(PathBuf::from(value()?)),
            "--port-file" => port_file = Some(PathBuf::from(value()?)),
            "--side-answer" => side_answer = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let listen = match (port, unix) {
        (Some(_), Some(_)) => return Err("--port and --unix exclude each other".into()),
        (_, Some(path)) => Listen::Unix(path),
        (port, None) => Listen::Port(port.unwrap_or(0)),
    };
    if port_file.is_some() && matches!(listen, Listen::Unix(_)) {
        return Err("--port-file goes with a TCP port, not --unix (wait for the socket to appear instead)".into());
    }
    Ok(Options {
        script: script.ok_or("--script is required")?,
        log: log.ok_or("--log is required")?,
        listen,
        port_file,
        side_answer,
    })
}

/// Writes the port under a temporary name and renames it, so a test polling for the file never reads half of it.
fn write_port(path: &Path, port: u16) -> Result<(), String> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, format!("{port}\n"))
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| format!("cannot write the port file {}: {e}", path.display()))
}
