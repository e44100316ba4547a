//! Offline mode, proven: a whole `airlock exec` session on the embedded
//! model, traced with strace across every process it starts, makes no
//! `connect` or `sendto` to an inet address, and every attempt to open an
//! inet socket fails (seccomp). Needs the SmolLM2 GGUF
//! (`scripts/fetch-model`) and strace; without them it says so and passes,
//! unless `CI` is set.
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::Command;

fn airlock() -> PathBuf {
    std::env::var_os("AIRLOCK_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_airlock").into()).into()
}

fn skip(what: &str) {
    assert!(std::env::var_os("CI").is_none(), "{what}");
    eprintln!("SKIP: {what}");
}

fn gguf() -> Option<PathBuf> {
    airlock_test_support::smollm2_gguf()
}

#[test]
fn a_whole_embedded_session_never_touches_the_network() {
    let Some(model) = gguf() else { return };
    if Command::new("strace").arg("-V").output().is_err() {
        return skip("strace is not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let (repo, home, state) = (root.join("repo"), root.join("home"), root.join("state"));
    for d in [&repo, &home, &state] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(repo.join("README.md"), "# Greeter\nPrints a greeting.\n").unwrap();
    std::fs::write(repo.join("greet.py"), "print('hello')\n").unwrap();
    let trace = root.join("strace.log");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=socket,connect,sendto,sendmsg", "-o"])
        .arg(&trace)
        .arg(airlock())
        .args(["exec", "--local"])
        .arg(&model)
        .args(["--max-turns", "2", "--threads", "1", "--json", "--dir"])
        .arg(&state)
        .arg("What does this project do? Answer in one sentence.")
        .current_dir(&repo)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 3)), "exit {code:?}\n{stderr}\n{stdout}");
    assert!(stdout.lines().last().unwrap_or_default().contains("\"type\":\"done\""), "{stdout}");

    let log = std::fs::read_to_string(&trace).unwrap();
    let processes: std::collections::HashSet<&str> = log.lines().filter_map(|l| l.split_whitespace().next()).collect();
    for line in log.lines() {
        let inet = line.contains("AF_INET") || line.contains("AF_INET6");
        if (line.contains("connect(") || line.contains("sendto(") || line.contains("sendmsg(")) && inet {
            panic!("an inet address was reached: {line}");
        }
        if line.contains("socket(AF_INET") || line.contains("socket(AF_PACKET") {
            assert!(line.contains("= -1 EAFNOSUPPORT"), "an inet socket was opened: {line}");
        }
    }
    eprintln!("strace saw {} processes and {} socket calls", processes.len(), log.lines().count());

    let verify = Command::new(airlock()).args(["audit", "verify", "--dir"]).arg(&state).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let show = Command::new(airlock()).args(["audit", "show", "--json", "--dir"]).arg(&state).output().unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("embedded, offline"), "{show}");
    assert!(!show.contains("\"principal\":\"uid:"), "nothing went to a broker: {show}");
    assert!(show.contains("\"route\":\"embedded\""), "the embedded model's calls are on the record: {show}");
}

#[test]
fn offline_refuses_a_model_server() {
    let out =
        Command::new(airlock()).args(["exec", "--offline", "--endpoint", "http://127.0.0.1:9", "hi"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--offline"));
}

#[test]
fn the_stores_model_runs_and_is_refused_once_changed() {
    let Some(model) = gguf() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let (repo, home) = (root.join("repo"), root.join("home"));
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let run = |args: &[&str]| {
        Command::new(airlock())
            .args(args)
            .current_dir(&repo)
            .env_clear()
            .env("HOME", &home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .output()
            .unwrap()
    };
    let pulled = run(&["model", "pull", model.to_str().unwrap()]);
    assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
    // No server configured: exec runs the store's model (the worker can read the store).
    let ran = run(&["exec", "--max-turns", "1", "--threads", "1", "Say hi."]);
    assert!(matches!(ran.status.code(), Some(0 | 3)), "{}", String::from_utf8_lossy(&ran.stderr));
    // The store's copy, changed by one byte in its tensor data.
    let stored = home.join(".local/share/airlock-models").join(model.file_name().unwrap());
    let mut bytes = std::fs::read(&stored).unwrap();
    let at = bytes.len() - 1000;
    bytes[at] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
    // No server configured: exec picks the store's model, and refuses it.
    let out = run(&["exec", "--max-turns", "1", "hello"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SHA-256") || stderr.contains("sha256") || stderr.contains("digest"), "{stderr}");
}
