//! Prompt processing and generation speed of the embedded engine, one JSON
//! line per run, for `bench/embedded` to set against llama.cpp itself.
//!
//! ```sh
//! cargo bench -p airlock-model --features embedded --bench engine -- --runs 3
//! ```
//!
//! Every run starts from an empty KV cache (`Engine::clear_cache`), so the
//! whole prompt is decoded, then generates greedily up to `--max-tokens`.
//! The numbers are the engine's own [`Timings`]: wall clock around the
//! prompt's decode calls, and around the generation loop (sampling,
//! detokenising and one decode call per token).
//!
//! Options: `--model PATH` (else `AIRLOCK_BENCH_GGUF`, else
//! `~/.cache/airlock/models/SmolLM2-135M-Instruct.Q4_1.gguf`, which
//! `scripts/fetch-model` fetches), `--threads N` (2), `--context N` (4096),
//! `--max-tokens N` (128), `--runs N` (5), `--warmup N` (1 per prompt, not
//! printed), `--prompts short,long`, and `--print-prompts`, which prints the
//! messages of each prompt as JSON and exits (the Python side sends the same
//! ones). Without a model file it says so and exits with success, so that a
//! workspace-wide `cargo bench` does not need one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::Instant;

use airlock_model::embedded::{Engine, EngineOptions, Timings, ToolChoice};
use airlock_model::{CancelToken, Message, Request};
use serde_json::json;

/// The start of the project's README (as of the commit that added this
/// bench), fixed here so that the long prompt stays the same length: about
/// 420 tokens with SmolLM2's template.
const README_EXCERPT: &str = r#"airlock is a coding agent being built so that an organization can answer,
with proof, the questions it asks before letting an AI tool near its code:
where does the model run, what data leaves, what can be audited, and can the
tool itself be trusted. See [docs/ARCHITECTURE.md](docs/ARCHITECTURE.md) for
the whole design.

**What exists today**: the agent, `airlock exec "TASK"` (below), and the
foundation it stands on:

- **`airlock sandbox -- CMD`** runs a command confined by the kernel: new
  user, mount, pid, net, ipc and uts namespaces (no setuid helper, no
  bubblewrap); a root that holds only read-only system and toolchain folders,
  the workspace, a private `/tmp`, its own `/proc` and a minimal `/dev`;
  credentials such as `~/.ssh`, `~/.aws` and `/etc/shadow` hidden; `.git/hooks`,
  `.git/config`, `.claude/`, `.envrc` and other protected paths read-only even
  before they exist; Landlock (files, TCP, abstract unix sockets, signals);
  seccomp (no sockets but unix ones, no ptrace, io_uring, bpf, mounts, new
  namespaces, terminal injection); no capabilities; a clean environment;
  memory, process, file-size and CPU limits; a timeout that kills the whole
  process tree. If any layer cannot be applied in full it refuses to run
  (exit 125) and says what is missing."#;

const SYSTEM: &str = "You are a helpful assistant.";

/// The two prompts: (name, system message, user message). Both ask for a
/// long answer, so that generation usually runs to `--max-tokens`.
fn prompts() -> Vec<(&'static str, String, String)> {
    vec![
        ("short", SYSTEM.to_string(), "Write a long story about a lighthouse keeper.".to_string()),
        (
            "long",
            SYSTEM.to_string(),
            format!(
                "Here is the start of a project's README:\n\n{README_EXCERPT}\n\nExplain in detail, point by point, \
                 what this project does and how each part works."
            ),
        ),
    ]
}

struct Options {
    model: Option<PathBuf>,
    threads: u32,
    context: u32,
    max_tokens: u32,
    runs: usize,
    warmup: usize,
    prompts: Vec<String>,
    print_prompts: bool,
}

fn parse_args() -> Options {
    let mut o = Options {
        model: std::env::var_os("AIRLOCK_BENCH_GGUF").map(PathBuf::from),
        threads: 2,
        context: 4096,
        max_tokens: 128,
        runs: 5,
        warmup: 1,
        prompts: vec!["short".into(), "long".into()],
        print_prompts: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--model" => o.model = Some(PathBuf::from(value())),
            "--threads" => o.threads = number(&value()),
            "--context" => o.context = number(&value()),
            "--max-tokens" => o.max_tokens = number(&value()),
            "--runs" => o.runs = number(&value()),
            "--warmup" => o.warmup = number(&value()),
            "--prompts" => o.prompts = value().split(',').map(str::to_string).collect(),
            "--print-prompts" => o.print_prompts = true,
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            _ => usage(&format!("unknown argument {arg}")),
        }
    }
    let known: Vec<&str> = prompts().iter().map(|p| p.0).collect();
    if let Some(p) = o.prompts.iter().find(|p| !known.contains(&p.as_str())) {
        usage(&format!("unknown prompt {p} (known: {})", known.join(", ")));
    }
    o
}

fn number<T: std::str::FromStr>(s: &str) -> T {
    s.parse().unwrap_or_else(|_| usage(&format!("{s} is not a number")))
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "engine bench: {problem}\nusage: engine [--model PATH] [--threads N] [--context N] [--max-tokens N] [--runs N] \
         [--warmup N] [--prompts short,long] [--print-prompts]"
    );
    std::process::exit(2)
}

fn request(system: &str, user: &str, max_tokens: u32) -> Request {
    Request {
        model: "bench".into(),
        messages: vec![Message::System(system.into()), Message::User(user.into())],
        max_tokens,
        // Greedy: the same tokens on every run, and on llama.cpp's side.
        temperature: None,
        ..Request::default()
    }
}

fn per_second(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

fn main() {
    let o = parse_args();
    let selected: Vec<_> = prompts().into_iter().filter(|p| o.prompts.iter().any(|s| s == p.0)).collect();
    if o.print_prompts {
        for (name, system, user) in &selected {
            let messages = json!([{"role": "system", "content": system}, {"role": "user", "content": user}]);
            println!("{}", json!({"prompt": name, "messages": messages}));
        }
        return;
    }
    let model = o.model.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/airlock/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    if !model.is_file() {
        eprintln!(
            "engine bench: SKIP: {} is missing (scripts/fetch-model fetches it; --model or AIRLOCK_BENCH_GGUF name another)",
            model.display()
        );
        return;
    }
    let began = Instant::now();
    let engine = Engine::load(&model, &EngineOptions { context: o.context, threads: Some(o.threads) })
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", model.display()));
    eprintln!(
        "engine bench: loaded {} ({}) in {:.0} ms",
        model.display(),
        engine.name(),
        began.elapsed().as_secs_f64() * 1e3
    );

    let cancel = CancelToken::new();
    for (name, system, user) in &selected {
        let request = request(system, user, o.max_tokens);
        for run in 0..o.warmup + o.runs {
            engine.clear_cache();
            let began = Instant::now();
            let response = engine
                .complete(&request, &ToolChoice::Auto, &mut |_event| {}, &cancel)
                .unwrap_or_else(|e| panic!("prompt {name}: {e}"));
            let wall_secs = began.elapsed().as_secs_f64();
            let Timings { prompt_tokens, prompt_secs, generated_tokens, generate_secs } = engine.last_timings();
            if run < o.warmup {
                continue;
            }
            let line = json!({
                "engine": "airlock",
                "prompt": name,
                "run": run - o.warmup,
                "threads": o.threads,
                "prompt_tokens": prompt_tokens,
                "prompt_secs": prompt_secs,
                "pp_tps": per_second(prompt_tokens, prompt_secs),
                "gen_tokens": generated_tokens,
                "gen_secs": generate_secs,
                "tg_tps": per_second(generated_tokens, generate_secs),
                "wall_secs": wall_secs,
                "stop": format!("{:?}", response.stop_reason),
                "text": response.text,
            });
            println!("{line}");
        }
    }
}
