//! Shared pieces of airlock's test binaries.
//!
//! Tests that start sandboxes must run on the process's only thread, so
//! those binaries have their own `main` instead of libtest's threaded
//! harness; [`run_cases`] is that `main`'s loop.
//!
//! [`scripted`] is a model server that answers from a script, for tests
//! of the agent, end-to-end tests of the `airlock` binary (through the
//! `scripted-model` binary) and benchmarks.
//!
//! [`postgres`] starts a private PostgreSQL cluster on a Unix socket.
#![deny(missing_docs)]
// Test output is the point of this crate.
#![allow(clippy::print_stdout)]

pub mod postgres;
pub mod scripted;

/// The SmolLM2-135M-Instruct GGUF that tests run a real model on
/// (`AIRLOCK_SMOLLM2_GGUF`, else `~/.cache/airlock/models`, where
/// `scripts/fetch-model` puts it), or `None` with a visible SKIP line when it
/// is missing. When `CI` is set a missing file is a failure, not a skip.
pub fn smollm2_gguf() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("AIRLOCK_SMOLLM2_GGUF").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/airlock/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    if path.is_file() {
        return Some(path);
    }
    let what = format!("{} is missing (scripts/fetch-model fetches it)", path.display());
    assert!(std::env::var_os("CI").is_none(), "{what}");
    println!("SKIP: {what}");
    None
}

/// Runs each case on the calling thread (no thread is started), catching
/// panics; arguments that do not start with `-` filter cases by substring.
/// Prints a line per case and a summary ending with `summary_suffix`, then
/// exits 1 if any case failed, 0 otherwise.
pub fn run_cases(args: &[String], cases: &[(&str, fn())], summary_suffix: &str) -> ! {
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, case) in cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(case) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    println!("\n{passed} passed, {} failed{summary_suffix}", failed.len());
    if !failed.is_empty() {
        println!("failed: {}", failed.join(", "));
        std::process::exit(1);
    }
    std::process::exit(0)
}
