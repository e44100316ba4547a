//! MCP servers under `airlock exec`, end to end: real third-party servers
//! (the npm `server-everything` and `server-filesystem`, and one written on
//! the official Python SDK from PyPI), each started by the supervisor in a
//! sandbox of its own, their tools offered to a scripted model as
//! `mcp__SERVER__TOOL`, decided, called, redacted and recorded.
//!
//! The servers come from `tests/mcp/setup` (`~/.cache/airlock-ci/mcp`, or
//! `$AIRLOCK_MCP_CACHE`). Without them these tests say so and pass, unless
//! `AIRLOCK_CI` or `CI` is set: then a missing server is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_test_support::scripted::{ScriptedModel, Turn};
use serde_json::{Value, json};

fn airlock() -> PathBuf {
    std::env::var_os("AIRLOCK_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_airlock").into()).into()
}

/// The planted secrets of tests/mcp/servers/pypi_server.py (fake, rule-shaped).
const PLANTED_AWS_KEY_ID: &str = "AKIA2MCPFIXTURE7ZQ4W";
const PLANTED_AWS_SECRET: &str = "r8Vq2NwX5kTz9LmB3pYc7HdJ1sFg4QaE6uWo0KiR";

/// A fixture server script: from `$AIRLOCK_MCP_SERVERS` when set (a copy
/// that an unprivileged user can read), else from the checkout.
fn server_script(name: &str) -> PathBuf {
    let path = match std::env::var_os("AIRLOCK_MCP_SERVERS") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            match name {
                "server.py" => root.join("crates/mcp/tests/servers/server.py"),
                _ => root.join("tests/mcp/servers").join(name),
            }
        }
    };
    path.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture cache, or `None` (and why) when it is missing outside CI.
fn cache() -> Option<PathBuf> {
    let dir = match std::env::var_os("AIRLOCK_MCP_CACHE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/airlock-ci/mcp"),
    };
    let needed = [
        dir.join("venv/bin/python"),
        dir.join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
        dir.join("npm/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"),
    ];
    if let Some(missing) = needed.iter().find(|p| !p.exists()) {
        assert!(
            std::env::var_os("AIRLOCK_CI").is_none() && std::env::var_os("CI").is_none(),
            "{} is missing: run tests/mcp/setup (CI is set, so this is a failure)",
            missing.display()
        );
        eprintln!("skipped: {} is missing (run tests/mcp/setup)", missing.display());
        return None;
    }
    Some(dir)
}

/// A repository, a home folder with a planted SSH key, airlock's state folder.
struct Fixture {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
    state: PathBuf,
}

impl Fixture {
    fn new(config: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (repo, home, state) = (root.join("repo"), root.join("home"), root.join("state"));
        for d in [&repo, &home, &state, &home.join(".ssh"), &home.join(".config/airlock")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(repo.join("README.md"), "fixture\n").unwrap();
        std::fs::write(home.join(".ssh/id_ed25519"), "PLANTED-SSH-KEY-CONTENT\n").unwrap();
        std::fs::write(home.join(".config/airlock/config.toml"), config).unwrap();
        Fixture { _dir: dir, repo, home, state }
    }

    fn exec(&self, model: &ScriptedModel, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        let out = Command::new(airlock())
            .arg("exec")
            .args(["--endpoint", &model.base_url(), "--model", "scripted", "--json", "--dir"])
            .arg(&self.state)
            .args(args)
            .current_dir(&self.repo)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!(
            "--- airlock exec: {:?}\n{stderr}\n--- stdout:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        (out.status.code().unwrap_or(-1), stderr)
    }

    /// Every entry of the audit log, after checking that it verifies.
    fn audit(&self) -> Vec<Value> {
        let verify = Command::new(airlock()).args(["audit", "verify", "--dir"]).arg(&self.state).output().unwrap();
        assert!(verify.status.success(), "the log does not verify: {}", String::from_utf8_lossy(&verify.stdout));
        let show =
            Command::new(airlock()).args(["audit", "show", "--json", "--dir"]).arg(&self.state).output().unwrap();
        String::from_utf8_lossy(&show.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

fn of_kind<'a>(entries: &'a [Value], kind: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["kind"] == kind).collect()
}

/// The tool results the model got back in the request after `turn` calls.
fn tool_results(model: &ScriptedModel, request: usize) -> String {
    model.requests().get(request).map(|r| r.to_string()).unwrap_or_default()
}

#[test]
fn a_pypi_server_is_contained_its_secrets_redacted_and_every_call_on_the_record() {
    let Some(cache) = cache() else { return };
    let python = cache.join("venv/bin/python");
    let server = server_script("pypi_server.py");
    let config = format!(
        r#"
[mcp.servers.py]
command = "{python}"
args = ["{server}"]
read = ["{venv}", "{servers}"]
env = {{ FIXTURE_TOKEN = "${{FIXTURE_TOKEN}}" }}
tools = {{ write_path = "deny" }}
"#,
        python = python.display(),
        server = server.display(),
        venv = cache.join("venv").display(),
        servers = server.parent().unwrap().display(),
    );
    let f = Fixture::new(&config);
    let ssh_key = f.home.join(".ssh/id_ed25519");
    let outside = f.repo.join("written-by-server.txt");
    let model = ScriptedModel::start(vec![
        Turn::call("mcp__py__secret", json!({}))
            .and_call("mcp__py__env", json!({}))
            .and_call("mcp__py__read_path", json!({"path": ssh_key.display().to_string()}))
            .and_call("mcp__py__fetch", json!({"host": "example.com", "port": 443}))
            .and_call("mcp__py__write_path", json!({"path": outside.display().to_string(), "content": "x"}))
            .and_call("mcp__py__echo", json!({"text": "echoed through the sandbox"}))
            .and_call("mcp__py__list_resources", json!({}))
            .and_call("mcp__py__read_resource", json!({"uri": "note://readme"}))
            .and_call("mcp__py__get_prompt", json!({"name": "review", "arguments": {"path": "src/lib.rs"}})),
        Turn::text("done")
            .expect_contains("«secret:")
            .expect_absent(PLANTED_AWS_SECRET)
            .expect_absent(PLANTED_AWS_KEY_ID)
            .expect_contains("given-to-the-server")
            .expect_absent("the-users-own-secret")
            .expect_absent("PLANTED-SSH-KEY-CONTENT")
            .expect_contains("echoed through the sandbox")
            .expect_contains("note://readme")
            .expect_contains("this resource is note://readme")
            .expect_contains("Review the file src/lib.rs"),
    ]);
    let (code, stderr) = f.exec(
        &model,
        &[
            "--grant",
            "mcp__py__secret",
            "--grant",
            "mcp__py__env",
            "--grant",
            "mcp__py__read_path",
            "--grant",
            "mcp__py__fetch",
            "use the tools",
        ],
        &[("FIXTURE_TOKEN", "given-to-the-server"), ("OTHER_TOKEN", "the-users-own-secret")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(model.violations(), Vec::<String>::new());
    let offered = tool_results(&model, 0);
    assert!(offered.contains("mcp__py__echo") && offered.contains("mcp__py__secret"), "{offered}");
    assert!(!outside.exists(), "a server wrote into the workspace");

    let entries = f.audit();
    let started = of_kind(&entries, "mcp_server");
    assert!(
        started.iter().any(|e| e["payload"]["server"] == "py"
            && e["payload"]["action"] == "started"
            && e["payload"]["digest"].as_str().unwrap_or("").starts_with("sha256:")),
        "{started:?}"
    );
    let calls: Vec<(String, String)> = of_kind(&entries, "tool_call")
        .iter()
        .map(|e| (e["payload"]["name"].as_str().unwrap().to_string(), e["payload"]["decision"].to_string()))
        .collect();
    for name in ["mcp__py__secret", "mcp__py__env", "mcp__py__read_path", "mcp__py__fetch", "mcp__py__echo"] {
        assert!(calls.contains(&(name.to_string(), "\"allow\"".to_string())), "{name}: {calls:?}");
    }
    assert!(calls.contains(&("mcp__py__write_path".to_string(), "\"deny\"".to_string())), "{calls:?}");
    let results = of_kind(&entries, "mcp_result");
    assert_eq!(results.len(), 8, "one result per allowed call: {results:?}");
    let secret = results.iter().find(|e| e["payload"]["tool"] == "secret").unwrap();
    assert!(secret["payload"]["redactions"].as_array().is_some_and(|r| r.len() >= 2), "{secret}");
    assert!(results.iter().all(|e| e["payload"]["result_digest"].as_str().unwrap().len() == 64));
    // The lookup the server tried is on the record, refused.
    assert!(
        of_kind(&entries, "blocked_egress").iter().any(|e| e["payload"]["destination"] == "example.com"),
        "{entries:?}"
    );
    // The log never holds a secret either.
    let all = serde_json::to_string(&entries).unwrap();
    assert!(!all.contains(PLANTED_AWS_SECRET) && !all.contains("the-users-own-secret"));
}

#[test]
fn the_npm_servers_answer_from_their_sandboxes_and_cannot_write_the_workspace() {
    let Some(cache) = cache() else { return };
    let npm = cache.join("npm/node_modules/@modelcontextprotocol");
    let f = Fixture::new("");
    let config = format!(
        r#"
[mcp.servers.everything]
command = "node"
args = ["{everything}", "stdio"]
env = {{ AIRLOCK_FIXTURE_VAR = "visible" }}

[mcp.servers.fs]
command = "node"
args = ["{filesystem}", "{repo}"]
"#,
        everything = npm.join("server-everything/dist/index.js").display(),
        filesystem = npm.join("server-filesystem/dist/index.js").display(),
        repo = f.repo.display(),
    );
    std::fs::write(f.home.join(".config/airlock/config.toml"), config).unwrap();
    let target = f.repo.join("from-fs-server.txt");
    let model = ScriptedModel::start(vec![
        // get-env is annotated read-only: allowed without a grant.
        Turn::call("mcp__everything__get-env", json!({}))
            .and_call("mcp__everything__echo", json!({"message": "hello from node"}))
            .and_call("mcp__fs__read_text_file", json!({"path": f.repo.join("README.md").display().to_string()}))
            .and_call("mcp__fs__write_file", json!({"path": target.display().to_string(), "content": "x"})),
        Turn::text("done")
            .expect_contains("visible")
            .expect_absent("the-users-own-secret")
            .expect_contains("hello from node")
            .expect_contains("fixture"),
    ]);
    let (code, stderr) = f.exec(
        &model,
        &[
            "--grant",
            "mcp__everything__echo",
            "--grant",
            "mcp__fs__read_text_file",
            "--grant",
            "mcp__fs__write_file",
            "go",
        ],
        &[("OTHER_TOKEN", "the-users-own-secret")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(model.violations(), Vec::<String>::new());
    assert!(!target.exists(), "the filesystem server wrote into the read-only workspace");
    let entries = f.audit();
    let results = of_kind(&entries, "mcp_result");
    let write = results.iter().find(|e| e["payload"]["tool"] == "write_file").expect("write_file was called");
    assert_eq!(write["payload"]["is_error"], true, "{write}");
    let decided: Vec<String> = of_kind(&entries, "tool_call")
        .iter()
        .filter(|e| e["payload"]["name"] == "mcp__everything__get-env")
        .map(|e| e["payload"]["decided_by"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(decided.len(), 1);
    assert!(decided[0].contains("read-only"), "{decided:?}");
}

#[test]
fn hostile_servers_are_stopped_one_by_one_and_the_session_goes_on() {
    let Some(cache) = cache() else { return };
    let python = cache.join("venv/bin/python");
    let server = server_script("pypi_server.py");
    let hostile = server_script("server.py");
    let mut config = format!(
        r#"
[mcp.servers.py]
command = "{python}"
args = ["{server}"]
read = ["{venv}", "{servers}"]
"#,
        python = python.display(),
        server = server.display(),
        venv = cache.join("venv").display(),
        servers = server.parent().unwrap().display(),
    );
    let modes = ["hang", "huge", "malformed", "flood", "exit"];
    for mode in modes.iter().chain(&["inject"]) {
        config.push_str(&format!(
            "\n[mcp.servers.{mode}]\ncommand = \"python3\"\nargs = [\"{}\", \"{mode}\"]\ntimeout_secs = 3\n",
            hostile.display()
        ));
    }
    let f = Fixture::new(&config);
    let mut first = Turn::call("mcp__hang__misbehave", json!({}));
    for mode in &modes[1..] {
        first = first.and_call(format!("mcp__{mode}__misbehave"), json!({}));
    }
    let model = ScriptedModel::start(vec![
        first.expect_contains("mcp__inject__echo"),
        Turn::call("mcp__py__echo", json!({"text": "still here"}))
            .and_call("mcp__hang__echo", json!({"text": "again"}))
            .expect_contains("stopped"),
        Turn::text("done").expect_contains("still here").expect_contains("was stopped"),
    ]);
    let mut args = Vec::new();
    for mode in modes {
        args.push("--grant".to_string());
        args.push(format!("mcp__{mode}__*"));
    }
    args.push("go".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stderr) = f.exec(&model, &args, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(model.violations(), Vec::<String>::new());
    // What the model was offered from the injecting server: no escape sequence, no oversized description.
    let offered = model.requests()[0].to_string();
    assert!(!offered.contains("\\u001b") && !offered.contains('\u{1b}'), "an escape sequence reached the model");
    assert!(!offered.contains("mcp__inject__long_story") && !offered.contains("mcp__inject__big_schema"));
    let entries = f.audit();
    let servers = of_kind(&entries, "mcp_server");
    for mode in modes {
        assert!(
            servers.iter().any(|e| e["payload"]["server"] == mode && e["payload"]["action"] == "stopped"),
            "{mode} was not stopped: {servers:?}"
        );
    }
    assert!(servers.iter().any(|e| e["payload"]["server"] == "py" && e["payload"]["action"] == "started"));
    // Each call has its decision and its result; the py server answered after all of it.
    let results = of_kind(&entries, "mcp_result");
    assert_eq!(results.iter().filter(|e| e["payload"]["is_error"] == true).count(), modes.len() + 1, "{results:?}");
    assert!(results.iter().any(|e| e["payload"]["server"] == "py" && e["payload"]["is_error"] == false));
    assert_eq!(of_kind(&entries, "session_end").len(), 1);
}

#[test]
fn a_managed_policy_pins_servers_by_digest() {
    let Some(cache) = cache() else { return };
    let python = cache.join("venv/bin/python");
    let server = server_script("pypi_server.py");
    let py = format!(
        "[mcp.servers.py]\ncommand = \"{}\"\nargs = [\"{}\"]\nread = [\"{}\", \"{}\"]\n",
        python.display(),
        server.display(),
        cache.join("venv").display(),
        server.parent().unwrap().display(),
    );
    let f = Fixture::new(&py);
    let managed = f.home.join("managed.toml");
    let airlock_here = |args: &[&str]| {
        Command::new(airlock())
            .args(args)
            .current_dir(&f.repo)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &f.home)
            .env("XDG_CONFIG_HOME", f.home.join(".config"))
            .env("AIRLOCK_MANAGED_POLICY", &managed)
            .output()
            .unwrap()
    };
    std::fs::write(&managed, "").unwrap();
    let digest = airlock_here(&["mcp", "digest", "py"]);
    assert!(digest.status.success(), "{}", String::from_utf8_lossy(&digest.stderr));
    let digest = String::from_utf8(digest.stdout).unwrap().trim().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");

    // Pinned to what runs: it starts and its tools are offered.
    std::fs::write(&managed, format!("[mcp]\npinned_only = true\n\n[mcp.pinned]\npy = \"{digest}\"\n")).unwrap();
    let listed = airlock_here(&["mcp", "tools", "py", "--json"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\"mcp__py__echo\""));
    let model = ScriptedModel::start(vec![Turn::text("done").expect_contains("mcp__py__echo")]);
    let (code, stderr) = f.exec(&model, &["hello"], &[("AIRLOCK_MANAGED_POLICY", managed.to_str().unwrap())]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(model.violations(), Vec::<String>::new());

    // A server the managed policy did not pin is refused when the policy loads.
    let other = format!("{py}\n[mcp.servers.other]\ncommand = \"python3\"\nargs = [\"-c\", \"pass\"]\n");
    std::fs::write(f.home.join(".config/airlock/config.toml"), other).unwrap();
    let refused = airlock_here(&["mcp", "list"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("other"), "{}", String::from_utf8_lossy(&refused.stderr));
    std::fs::write(f.home.join(".config/airlock/config.toml"), &py).unwrap();

    // Pinned to something else: not started, on the record, its tools not offered.
    let wrong = format!("sha256:{}", "0".repeat(64));
    std::fs::write(&managed, format!("[mcp]\npinned_only = true\n\n[mcp.pinned]\npy = \"{wrong}\"\n")).unwrap();
    let model = ScriptedModel::start(vec![Turn::text("done").expect_absent("mcp__py__echo")]);
    let (code, stderr) = f.exec(&model, &["hello"], &[("AIRLOCK_MANAGED_POLICY", managed.to_str().unwrap())]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("MCP server py was not started"), "{stderr}");
    assert_eq!(model.violations(), Vec::<String>::new());
    let entries = f.audit();
    let refused: Vec<&Value> = of_kind(&entries, "mcp_server")
        .into_iter()
        .filter(|e| e["payload"]["server"] == "py" && e["payload"]["action"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{entries:?}");
    let detail = refused[0]["payload"]["detail"].as_str().unwrap();
    assert!(detail.contains(&wrong) && detail.contains(&digest), "{detail}");
}
