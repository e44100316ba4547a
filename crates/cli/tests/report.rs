//! `airlock report` end to end: a session appended to a real log by the real
//! binary, reported as text, JSON and HTML with the right numbers; a log
//! edited behind airlock's back reported as not verifying; event strings
//! escaped in the page; and the page rendered by headless Chromium (which
//! is skipped, visibly, when Chromium is not installed, unless `CI` is set).
//!
//! `AIRLOCK_BIN` names the binary when set. `AIRLOCK_REPORT_SCREENSHOT=FILE`
//! keeps the screenshot, to look at the page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn airlock() -> PathBuf {
    std::env::var_os("AIRLOCK_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_airlock").into()).into()
}

/// A log in a temporary folder, with a home of its own.
struct Log {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
}

impl Log {
    fn new() -> Log {
        let tmp = tempfile::Builder::new().prefix("airlock-report-").tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        Log { dir: root.join("log"), root, _tmp: tmp }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(airlock());
        cmd.env("HOME", self.root.join("home"))
            .env("XDG_DATA_HOME", self.root.join("home/.local/share"))
            .env("XDG_CONFIG_HOME", self.root.join("home/.config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Appends `event` to `session` as airlock's own session writer does
    /// (`exec`, `wrap`): `airlock audit append` files records from outside,
    /// which a report never counts as the session's. The log's keys and
    /// origin are the binary's, read from the files it made.
    fn try_append(&self, session: &str, event: &Value) -> Result<u64, String> {
        use airlock_audit::store::{Durability, SqliteStore};
        if !self.dir.join("audit-signing-key").exists() {
            let out = self.command().args(["audit", "--dir"]).arg(&self.dir).arg("checkpoint").output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let key = std::fs::read_to_string(self.dir.join("audit-signing-key")).unwrap();
        let signer = airlock_audit::note::Signer::from_key_string(key.trim()).unwrap();
        let mac: [u8; 32] = std::fs::read(self.dir.join("audit-mac-key")).unwrap().try_into().unwrap();
        let note = std::fs::read_to_string(self.dir.join("audit-latest-checkpoint")).unwrap();
        let origin = note.lines().next().unwrap().to_string();
        let event: airlock_audit::event::Event = serde_json::from_value(event.clone()).map_err(|e| e.to_string())?;
        let store = SqliteStore::open(&self.dir.join("audit.db"), Durability::Durable).map_err(|e| e.to_string())?;
        let mut log = airlock_audit::log::AuditLog::open(store, signer, &origin, mac, Default::default())
            .map_err(|e| e.to_string())?;
        log.append(session, &[event]).map_err(|e| e.to_string())
    }

    fn append(&self, session: &str, event: Value) -> u64 {
        self.try_append(session, &event).unwrap_or_else(|e| panic!("appending {event}: {e}"))
    }

    fn checkpoint(&self) {
        let out = self.command().args(["audit", "--dir"]).arg(&self.dir).arg("checkpoint").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn report(&self, args: &[&str]) -> Output {
        let mut child = self.command().arg("report").args(args).arg("--dir").arg(&self.dir).spawn().unwrap();
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// The report's standard output, and its exit status.
    fn report_ok(&self, args: &[&str]) -> (i32, String) {
        let out = self.report(args);
        let code = out.status.code().unwrap();
        assert!(
            code == 0 || code == 1,
            "airlock report {args:?}: exit {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (code, String::from_utf8(out.stdout).unwrap())
    }

    fn json(&self, session: &str) -> (i32, Value) {
        let (code, out) = self.report_ok(&[session, "--format", "json"]);
        (code, serde_json::from_str(&out).unwrap())
    }

    fn edit_payload(&self, index: u64, from: &str, to: &str) {
        let db = rusqlite::Connection::open(self.dir.join("audit.db")).unwrap();
        let n = db
            .execute("UPDATE payloads SET payload = replace(payload, ?1, ?2) WHERE idx = ?3", (from, to, index as i64))
            .unwrap();
        assert_eq!(n, 1);
    }
}

const SESSION: &str = "s-2026-greeter";
const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn start() -> Value {
    json!({"kind": "session_start", "policy_digest": DIGEST,
        "model_endpoint": "gpt-4o via broker to openai https://api.openai.com/v1",
        "airlock_version": "0.1.0", "user": "alice", "host": "devbox", "workspace": "/home/alice/greeter"})
}

fn request(bytes: u64, redactions: Value) -> Value {
    json!({"kind": "model_request", "principal": "uid:1000", "route": "openai.chat", "model": "gpt-4o",
        "destination": "openai https://api.openai.com/v1", "bytes": bytes, "content_digest": DIGEST,
        "redactions": redactions})
}

fn redaction(rule: &str, placeholder: &str) -> Value {
    json!({"rule": rule, "field": "/messages/1/content", "placeholder": placeholder, "secret_sha256": DIGEST})
}

fn response(bytes: u64, input: u64, output: u64) -> Value {
    json!({"kind": "model_response", "principal": "uid:1000", "destination": "openai https://api.openai.com/v1",
        "status": 200, "bytes": bytes, "content_digest": DIGEST, "input_tokens": input, "output_tokens": output,
        "duration_ms": 900, "outcome": "complete"})
}

fn command(script: &str, exit_status: i64) -> Value {
    json!({"kind": "command", "argv": ["sh", "-c", script], "cwd": "/home/alice/greeter", "sandbox_digest": DIGEST,
        "exit_status": exit_status, "duration_ms": 1234, "output_digest": DIGEST, "output_bytes": 2048})
}

fn tool(name: &str, decision: &str, by: &str) -> Value {
    json!({"kind": "tool_call", "name": name, "argument_digest": DIGEST, "decision": decision, "decided_by": by})
}

fn blocked(destination: &str, reason: &str) -> Value {
    json!({"kind": "blocked_egress", "destination": destination, "reason": reason})
}

fn egress_open() -> Value {
    json!({"kind": "egress_open", "client": "10.0.2.2", "method": "CONNECT", "host": "registry.npmjs.org",
        "port": 443, "addr": "104.16.0.35:443"})
}

fn egress_close(up: u64, down: u64) -> Value {
    json!({"kind": "egress_close", "client": "10.0.2.2", "host": "registry.npmjs.org", "port": 443,
        "bytes_up": up, "bytes_down": down, "duration_ms": 40})
}

/// A whole session.
fn session(log: &Log) {
    log.append("other", command("make other", 0));
    log.append(SESSION, start());
    log.append(
        SESSION,
        request(
            1200,
            json!([
                redaction("aws-access-key-id", "[REDACTED:aws-access-key-id:1]"),
                redaction("aws-access-key-id", "[REDACTED:aws-access-key-id:1]"),
                redaction("github-token", "[REDACTED:github-token:1]"),
            ]),
        ),
    );
    log.append(SESSION, response(3400, 310, 42));
    log.append(SESSION, tool("run_command", "allow", "rule:allow-cargo"));
    log.append(SESSION, egress_open());
    log.append(SESSION, egress_close(300, 4096));
    log.append(SESSION, egress_open());
    log.append(SESSION, egress_close(212, 1000));
    log.append(SESSION, blocked("evil.example:443", "no rule allows it (client 10.0.2.2)"));
    let mut with_body = blocked("evil.example:443", "no rule allows it (client 10.0.2.2)");
    with_body["bytes"] = json!(517);
    log.append(SESSION, with_body);
    log.append(SESSION, blocked("169.254.169.254:80", "link-local address"));
    log.append(SESSION, command("cargo test", 0));
    log.append(SESSION, tool("run_command", "allow", "rule:allow-cargo"));
    log.append(SESSION, command("npm publish", 1));
    log.append(SESSION, tool("edit_file", "deny", "rule:no-edit-ci"));
    log.append(
        SESSION,
        json!({"kind": "policy_violation", "rule": "tools.edit", "detail": "edit .github/workflows/ci.yml"}),
    );
    log.append(SESSION, json!({"kind": "file_change", "path": "src/greet.rs", "before": "", "after": DIGEST}));
    log.append(
        SESSION,
        json!({"kind": "file_change", "path": "README.md", "before": DIGEST, "after": "0123456789abcdef0123"}),
    );
    log.append(SESSION, request(800, json!([])));
    log.append(SESSION, response(600, 120, 30));
    log.append(SESSION, json!({"kind": "session_end", "reason": "completed"}));
}

#[test]
fn the_report_holds_the_sessions_numbers() {
    let log = Log::new();
    session(&log);

    let (code, j) = log.json(SESSION);
    assert_eq!(code, 0, "{j:#}");
    let s = &j["session"];
    assert_eq!(s["id"], SESSION);
    assert_eq!(s["workspace"], "/home/alice/greeter");
    assert_eq!((s["user"].as_str(), s["host"].as_str()), (Some("alice"), Some("devbox")));
    assert_eq!(s["airlock_version"], "0.1.0");
    assert_eq!(s["model_endpoint"], "gpt-4o via broker to openai https://api.openai.com/v1");
    assert_eq!(s["end_reason"], "completed");
    assert_eq!(s["entries"], 21);
    assert_eq!((s["first_index"].as_u64(), s["last_index"].as_u64()), (Some(1), Some(21)));
    assert!(s["started_at"].as_str().unwrap().ends_with('Z') && s["ended_at"].as_str().unwrap().ends_with('Z'));

    let i = &j["integrity"];
    assert_eq!(i["verdict"], "verified");
    assert_eq!(i["verifies"], true);
    assert_eq!(i["log_entries"], 22);
    assert_eq!(i["payloads_checked"], 22);
    // The session's end is signed at once.
    assert_eq!((i["session_signed"].as_bool(), i["signed_entries"].as_u64()), (Some(true), Some(22)));

    let m = &j["summary"];
    assert_eq!(m["model_requests"], 2);
    assert_eq!(m["model_bytes_sent"], 2000);
    assert_eq!(m["model_bytes_received"], 4000);
    assert_eq!((m["input_tokens"].as_u64(), m["output_tokens"].as_u64()), (Some(430), Some(72)));
    assert_eq!(m["bytes_out"], 2000 + 512);
    assert_eq!(m["bytes_in"], 4000 + 5096);
    assert_eq!((m["refused_destinations"].as_u64(), m["refused_attempts"].as_u64()), (Some(2), Some(3)));
    assert_eq!(m["redactions"], 3);
    assert_eq!((m["commands"].as_u64(), m["commands_failed"].as_u64()), (Some(2), Some(1)));
    assert_eq!((m["file_changes"].as_u64(), m["files_created"].as_u64()), (Some(2), Some(1)));
    assert_eq!(m["files_modified"], 1);
    assert_eq!((m["tool_calls"].as_u64(), m["tool_calls_allowed"].as_u64()), (Some(3), Some(2)));
    assert_eq!(m["tool_calls_denied"], 1);
    assert_eq!(m["policy_violations"], 1);

    assert_eq!(
        j["egress"],
        json!([{"destination": "registry.npmjs.org:443", "connections": 2, "closed": 2, "bytes_up": 512, "bytes_down": 5096}])
    );
    let model = &j["model_destinations"][0];
    assert_eq!(model["destination"], "openai https://api.openai.com/v1");
    assert_eq!((model["requests"].as_u64(), model["bytes_sent"].as_u64()), (Some(2), Some(2000)));
    assert_eq!((model["bytes_received"].as_u64(), model["local"].as_bool()), (Some(4000), Some(false)));
    assert_eq!(j["model_requests"], json!([{"route": "openai.chat", "model": "gpt-4o", "requests": 2, "bytes": 2000}]));
    assert_eq!(
        j["redactions"],
        json!([{"rule": "aws-access-key-id", "count": 2, "placeholders": 1},
               {"rule": "github-token", "count": 1, "placeholders": 1}])
    );
    let refused = j["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2);
    assert_eq!((refused[0]["destination"].as_str(), refused[0]["count"].as_u64()), (Some("evil.example:443"), Some(2)));
    assert_eq!(refused[0]["bytes"], 517);
    assert_eq!(refused[1]["bytes"], 0);
    assert_eq!(refused[1]["reason"], "link-local address");
    let tools = j["tool_calls"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(
        tools[0],
        json!({"name": "run_command", "decision": "allow", "decided_by": "rule:allow-cargo", "count": 2})
    );
    assert_eq!(j["commands"][1]["argv"], json!(["sh", "-c", "npm publish"]));
    assert_eq!(j["commands"][1]["exit_status"], 1);
    assert_eq!(j["file_changes"][0]["change"], "created");
    assert_eq!(j["policy_violations"][0]["rule"], "tools.edit");
    // The other session's command is not this session's.
    assert!(!j.to_string().contains("make other"));
    // The log holds digests of secrets; the report does not repeat them.
    assert!(!j["redactions"].to_string().contains(DIGEST));

    let (code, text) = log.report_ok(&[SESSION]);
    assert_eq!(code, 0);
    for expected in [
        "airlock report: session s-2026-greeter",
        "VERIFIES: 22 entries",
        "all 21 entries of this session are under a signed checkpoint",
        "alice@devbox (airlock 0.1.0)",
        "Summary: 2 model requests · 2.5 KiB out · 2 refused destinations · 3 redactions · 2 commands · 2 file changes",
        "registry.npmjs.org:443",
        "2 connections",
        "512 B up",
        "5.0 KiB down",
        "2 requests",
        "430 in / 72 out tokens",
        "evil.example:443",
        "2×  517 B held back",
        "aws-access-key-id",
        "Tool calls: 3 (2 allowed, 1 denied, 0 asked)",
        "Commands: 2 (1 failed)",
        "sh -c 'npm publish'",
        "created",
        "— → 9f86d081884c",
        "tools.edit",
        "Ended      completed",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    assert!(text.lines().count() < 60, "{text}");

    let (code, html) = log.report_ok(&[SESSION, "--format", "html"]);
    assert_eq!(code, 0);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("class=\"verdict ok\"") && html.contains("Log verifies"));
    for (label, value) in [
        ("Model requests", "2"),
        ("Bytes out", "2.5 KiB"),
        ("Refused destinations", "2"),
        ("Redactions", "3"),
        ("Commands", "2"),
        ("File changes", "2"),
    ] {
        let card = format!("<div class=\"label\">{label}</div><div class=\"value\">{value}</div>");
        assert!(html.contains(&card), "{card} missing");
    }
    for expected in
        ["registry.npmjs.org:443", "evil.example:443", "517 B", "aws-access-key-id", "edit .github/workflows/ci.yml"]
    {
        assert!(html.contains(expected), "{expected} missing");
    }
    assert_self_contained(&html);
}

/// No script, no link, no resource from anywhere: no tag names one, and the
/// style sheet loads nothing. (Escaped event text holds no `<`, so every tag
/// found is the page's own.)
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').map_or(rest.len(), |e| start + e + 1);
        let tag = &rest[start..end];
        for banned in ["<script", "<link", "<img", "<iframe", "<object", "<embed", "<base", "href=", "src=", "on"] {
            let found = match banned {
                // An event handler attribute: ` onload=`, ` onerror=`, …
                "on" => tag.split_whitespace().skip(1).any(|attr| attr.starts_with("on") && attr.contains('=')),
                _ => tag.contains(banned),
            };
            assert!(!found, "the page has the tag {tag:?}");
        }
        rest = &rest[end..];
    }
    let style = &lower[lower.find("<style>").unwrap()..lower.find("</style>").unwrap()];
    for banned in ["url(", "@import", "@font-face"] {
        assert!(!style.contains(banned), "the style sheet has {banned:?}");
    }
}

#[test]
fn a_session_is_signed_only_once_a_checkpoint_covers_it() {
    let log = Log::new();
    log.append(SESSION, start());
    log.append(SESSION, command("cargo build", 0));
    let (code, j) = log.json(SESSION);
    assert_eq!(code, 0, "the log verifies, it is only not signed yet");
    assert_eq!(j["integrity"]["session_signed"], false);
    assert_eq!(j["integrity"]["session_unsigned_entries"], 2);
    assert!(j["session"]["ended_at"].is_null());
    let (_, text) = log.report_ok(&[SESSION]);
    assert!(text.contains("no entry of this session is under a signed checkpoint yet"), "{text}");
    assert!(text.contains("(no session_end recorded)"), "{text}");
    assert!(text.contains("\nDestinations refused: none\n") && text.contains("\nFile changes: none\n"), "{text}");

    log.append(SESSION, json!({"kind": "session_end", "reason": "completed"}));
    let (_, j) = log.json(SESSION);
    assert_eq!(j["integrity"]["session_signed"], true);
    assert_eq!(j["integrity"]["session_unsigned_entries"], 0);
}

#[test]
fn a_tampered_log_is_reported_as_not_verifying() {
    let log = Log::new();
    session(&log);
    // Entry 12 is `cargo test`: make it look like something else ran.
    log.edit_payload(12, "cargo test", "cargo bench");

    let (code, j) = log.json(SESSION);
    assert_eq!(code, 1);
    assert_eq!(j["integrity"]["verdict"], "tampered");
    assert_eq!(j["integrity"]["verifies"], false);
    let problem = j["integrity"]["problem"].as_str().unwrap();
    assert!(problem.contains("the payload of entry 12 was edited"), "{problem}");

    let (code, text) = log.report_ok(&[SESSION]);
    assert_eq!(code, 1);
    assert!(text.contains("DOES NOT VERIFY"), "{text}");
    assert!(text.contains("the payload of entry 12 was edited"), "{text}");
    assert!(!text.contains("VERIFIES"), "{text}");

    let (code, html) = log.report_ok(&[SESSION, "--format", "html"]);
    assert_eq!(code, 1);
    assert!(html.contains("class=\"verdict bad\"") && html.contains("Log does NOT verify"));
    assert!(html.contains("the payload of entry 12 was edited"));
    assert!(!html.contains("Log verifies"));
    // The edited entry is marked where it is listed.
    assert!(html.contains("<span class=\"pill bad\">edited</span> 12</td>"));
    assert_eq!(j["integrity"]["problem_entry"], 12);
}

#[test]
fn a_log_without_its_key_is_not_called_verified() {
    let log = Log::new();
    log.append(SESSION, start());
    std::fs::remove_file(log.dir.join("audit-signing-key")).unwrap();
    let (code, j) = log.json(SESSION);
    assert_eq!(code, 1);
    assert_eq!(j["integrity"]["verdict"], "unverifiable");
    assert!(j["integrity"]["problem"].as_str().unwrap().contains("audit-signing-key"));
}

/// An interactive session under `airlock wrap`, as its broker records it:
/// each turn and each tool call of the agent right after the request that
/// carried it.
#[test]
fn a_wrapped_sessions_turns_verify_and_read_in_order() {
    let log = Log::new();
    let turn = |text: &str, position: u64| {
        json!({"kind": "agent_turn", "text": text, "clipped": false, "chars": text.chars().count(),
            "digest": DIGEST, "conversation": "c0ffee0123456789", "position": position})
    };
    let call = |id: &str, arguments: &str| {
        json!({"kind": "agent_tool_call", "name": "Bash", "call_id": id, "arguments": arguments,
            "clipped": false, "answered": true, "result_bytes": 300})
    };
    log.append(SESSION, start());
    log.append(SESSION, request(1000, json!([])));
    log.append(SESSION, turn("fix the <failing> test", 0));
    log.append(SESSION, response(500, 100, 20));
    log.append(SESSION, request(1200, json!([])));
    log.append(SESSION, call("toolu_1", "cargo test 2>&1 | tail"));
    log.append(SESSION, response(500, 110, 20));
    log.append(SESSION, blocked("crates.io:443", "no rule allows it"));
    log.append(SESSION, request(1400, json!([])));
    log.append(SESSION, turn("now commit", 4));
    log.append(SESSION, response(500, 120, 20));
    log.append(SESSION, json!({"kind": "session_end", "reason": "completed"}));

    // The log with the new events verifies as any other.
    let out = log.command().args(["audit", "--dir"]).arg(&log.dir).arg("verify").output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    let (code, j) = log.json(SESSION);
    assert_eq!(code, 0, "{j:#}");
    assert_eq!((j["summary"]["turns"].as_u64(), j["summary"]["agent_tool_calls"].as_u64()), (Some(2), Some(1)));
    let turns = j["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(
        (turns[0]["text"].as_str(), turns[0]["model_requests"].as_u64()),
        (Some("fix the <failing> test"), Some(2))
    );
    assert_eq!(turns[0]["steps"][0]["arguments"], "cargo test 2>&1 | tail");
    assert_eq!(turns[0]["steps"][1]["kind"], "refused");
    assert_eq!((turns[1]["text"].as_str(), turns[1]["model_requests"].as_u64()), (Some("now commit"), Some(1)));

    let (_, text) = log.report_ok(&[SESSION]);
    assert!(text.contains("Session: 2 turns · 1 tool call by the agent\n"), "{text}");
    assert!(text.contains("#1 “fix the <failing> test”"), "{text}");
    assert!(text.contains("      Bash  cargo test 2>&1 | tail  → 300 B\n"), "{text}");
    let (_, html) = log.report_ok(&[SESSION, "--format", "html"]);
    assert_self_contained(&html);
    assert!(html.contains("<p class=\"said\">fix the &lt;failing&gt; test</p>"), "{html}");
    assert!(html.contains("<code>cargo test 2&gt;&amp;1 | tail</code>"), "{html}");
}

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(2)>:443";

/// A session whose strings try to become markup.
fn hostile(log: &Log) {
    log.append(SESSION, start());
    log.append(SESSION, command(SCRIPT, 0));
    log.append(SESSION, blocked(IMG, "<b>refused</b> & 'quoted'"));
    log.append(SESSION, tool("<i>edit</i>", "<u>allow</u>", "rule:</td></tr></table>"));
    log.append(
        SESSION,
        json!({"kind": "file_change", "path": "<svg onload=alert(3)>", "before": "\"'<>", "after": ""}),
    );
    log.append(SESSION, json!({"kind": "session_end", "reason": "</title><script>alert(4)</script>"}));
}

#[test]
fn event_strings_are_escaped_in_the_page() {
    let log = Log::new();
    hostile(&log);
    let (_, html) = log.report_ok(&[SESSION, "--format", "html"]);
    assert_self_contained(&html);
    for raw in ["<b>refused", "<i>edit", "<u>allow", "<svg onload", "rule:</td>", "</title><script>"] {
        assert!(!html.contains(raw), "{raw:?} is not escaped");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the command is not shown escaped");
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;:443"), "the destination is not shown escaped");
    assert!(html.contains("&lt;b&gt;refused&lt;/b&gt; &amp; &#39;quoted&#39;"));
    // Exactly the page's own tables: the tool's decided_by did not close one.
    assert_eq!(html.matches("<table>").count(), html.matches("</table>").count());
}

/// A server name that tries to act on a terminal (an escape sequence, a
/// C1 control, a bidirectional override) and to become markup.
const SERVER: &str = "evil\u{1b}[2J\u{9b}31m\u{202e}<img src=x onerror=alert(5)>";

fn mcp_server(server: &str, action: &str, digest: &str, detail: &str) -> Value {
    json!({"kind": "mcp_server", "server": server, "action": action, "digest": digest, "detail": detail})
}

fn mcp_result(server: &str, tool: &str, is_error: bool, bytes: u64, redactions: Value) -> Value {
    json!({"kind": "mcp_result", "server": server, "tool": tool, "is_error": is_error, "result_bytes": bytes,
        "result_digest": DIGEST, "redactions": redactions, "duration_ms": 42})
}

/// A session with MCP servers: one started that answered twice (one result
/// redacted) and tried a name lookup, one (with a hostile name) started and
/// stopped, and one refused.
fn mcp_session(log: &Log) {
    log.append(SESSION, start());
    log.append(SESSION, mcp_server("files", "started", &format!("sha256:{DIGEST}"), "tools: read_file, list_dir"));
    log.append(SESSION, mcp_server(SERVER, "started", "sha256:0123456789abcdef", "tools: fetch"));
    log.append(SESSION, mcp_server("pinned", "refused", "", "its digest does not match the managed pin"));
    log.append(SESSION, tool("mcp__files__read_file", "allow", "rule:mcp-read-only"));
    let note = json!([{"rule": "github-token", "field": "result", "placeholder": "[REDACTED:github-token:1]",
        "secret_sha256": DIGEST}]);
    log.append(SESSION, mcp_result("files", "read_file", false, 2048, note));
    log.append(SESSION, blocked("exfil.example", "MCP server files has no network (a name lookup was refused)"));
    log.append(SESSION, tool("mcp__files__list_dir", "allow", "rule:mcp-read-only"));
    log.append(SESSION, mcp_result("files", "list_dir", true, 30, json!([])));
    log.append(
        SESSION,
        mcp_server(SERVER, "stopped", "", "it sent a flood \u{1b}]0;owned\u{7} <script>alert(6)</script>"),
    );
    log.append(SESSION, json!({"kind": "session_end", "reason": "completed"}));
}

#[test]
fn mcp_servers_are_reported_in_every_format() {
    let log = Log::new();
    mcp_session(&log);

    let (code, j) = log.json(SESSION);
    assert_eq!(code, 0, "{j:#}");
    let servers = j["mcp_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3, "{j:#}");
    assert_eq!(
        servers[0],
        json!({"server": "files", "state": "started", "digest": format!("sha256:{DIGEST}"),
            "tools": ["read_file", "list_dir"], "refused": null, "stopped": null, "tools_refused": [], "notes": [],
            "calls": 2, "errors": 1, "result_bytes": 2078,
            "redactions": [{"rule": "github-token", "count": 1, "placeholders": 1}],
            "lookups_refused": 1, "lookup_hosts": ["exfil.example"]})
    );
    // JSON keeps the name as recorded (escaped as JSON); the other formats make it visible.
    assert_eq!((servers[1]["server"].as_str(), servers[1]["state"].as_str()), (Some(SERVER), Some("stopped")));
    assert_eq!(servers[1]["calls"], 0);
    assert!(servers[1]["stopped"].as_str().unwrap().starts_with("it sent a flood"));
    assert_eq!((servers[2]["state"].as_str(), servers[2]["calls"].as_u64()), (Some("refused"), Some(0)));
    assert_eq!(servers[2]["refused"], "its digest does not match the managed pin");
    // The lookup is a refused destination as before, and the calls are tool calls as before.
    assert_eq!(j["refused"][0]["destination"], "exfil.example");
    assert_eq!(j["summary"]["tool_calls"], 2);
    // The log holds the secret's digest; the report does not repeat it.
    assert!(!j["mcp_servers"][0]["redactions"].to_string().contains(DIGEST));

    let (code, text) = log.report_ok(&[SESSION]);
    assert_eq!(code, 0);
    assert!(
        text.contains("MCP servers: 3 (2 calls, 1 failed, 2.0 KiB returned, 1 redaction, 1 lookup refused)\n"),
        "{text}"
    );
    let files = text.lines().find(|l| l.starts_with("  files ")).unwrap_or_else(|| panic!("{text}"));
    for part in ["started", &DIGEST[..12], "2 calls", "1 failed", "2.0 KiB returned", "1 redaction", "1 lookup refused"]
    {
        assert!(files.contains(part), "{part:?} not in {files:?}");
    }
    for line in [
        "      tools: read_file, list_dir",
        "      redacted from results: github-token ×1",
        "      names refused: exfil.example",
        "      refused: its digest does not match the managed pin",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
    }
    // The hostile name and reason are shown, with nothing a terminal acts on.
    // (the table's column cuts the name: its start is enough)
    let shown = "evil\u{fffd}[2J\u{fffd}31m\u{fffd}<img src=x onerr";
    assert!(text.lines().any(|l| l.starts_with(&format!("  {shown}"))), "{text}");
    assert!(text.contains("stopped: it sent a flood \u{fffd}]0;owned\u{fffd} <script>alert(6)</script>"), "{text}");
    assert!(!text.chars().any(|c| c.is_control() && c != '\n' || c == '\u{202e}'), "{text:?}");
    // The order of the summary: tool calls, then the servers, then commands.
    let at = |title: &str| text.find(title).unwrap_or_else(|| panic!("no {title}:\n{text}"));
    assert!(at("Tool calls: 2") < at("MCP servers: 3") && at("MCP servers: 3") < at("Commands"));

    let (code, html) = log.report_ok(&[SESSION, "--format", "html"]);
    assert_eq!(code, 0);
    assert_self_contained(&html);
    assert!(!html.chars().any(|c| c.is_control() && c != '\n' || c == '\u{202e}'), "a control character");
    for raw in ["<img", "<script>alert(6)"] {
        assert!(!html.contains(raw), "{raw:?} is not escaped");
    }
    for expected in [
        "<h3>MCP servers</h3>".to_string(),
        "<h3>Secrets redacted from MCP results</h3>".into(),
        "<td><code>files</code></td><td><span class=\"pill good\">started</span></td>".into(),
        "<td><code>read_file, list_dir</code></td><td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">2.0 KiB</td><td class=\"num\">1</td><td class=\"num\">1</td>".into(),
        "<td><code>pinned</code></td><td><span class=\"pill bad\">refused</span></td>".into(),
        "<td>refused: its digest does not match the managed pin</td>".into(),
        "<td><code>files</code></td><td><code>github-token</code></td><td class=\"num\">1</td>".into(),
        "<td><code>evil\u{fffd}[2J\u{fffd}31m\u{fffd}&lt;img src=x onerror=alert(5)&gt;</code></td><td><span class=\"pill bad\">stopped</span></td>".into(),
        "<td>stopped: it sent a flood \u{fffd}]0;owned\u{fffd} &lt;script&gt;alert(6)&lt;/script&gt;</td>".into(),
    ] {
        assert!(html.contains(&expected), "{expected} missing from:\n{html}");
    }
    assert_eq!(html.matches("<table>").count(), html.matches("</table>").count());
}

#[test]
fn a_session_without_mcp_servers_has_no_mcp_part() {
    let log = Log::new();
    session(&log);
    let (_, j) = log.json(SESSION);
    assert_eq!(j["mcp_servers"], json!([]));
    let (_, text) = log.report_ok(&[SESSION]);
    assert!(!text.contains("MCP"), "{text}");
    let (_, html) = log.report_ok(&[SESSION, "--format", "html"]);
    assert!(!html.contains("MCP"), "{html}");
}

#[test]
fn the_output_file_names_the_format() {
    let log = Log::new();
    log.append(SESSION, start());
    log.append(SESSION, json!({"kind": "session_end", "reason": "completed"}));
    let out = log.root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let path = |name: &str| out.join(name).to_str().unwrap().to_string();

    let run = |args: &[&str]| {
        let o = log.report(args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stdout.is_empty(), "written to the file, not standard output");
    };
    run(&[SESSION, "--output", &path("r.html")]);
    assert!(std::fs::read_to_string(path("r.html")).unwrap().starts_with("<!DOCTYPE html>"));
    run(&[SESSION, "--output", &path("r.json")]);
    let j: Value = serde_json::from_str(&std::fs::read_to_string(path("r.json")).unwrap()).unwrap();
    assert_eq!(j["session"]["id"], SESSION);
    run(&[SESSION, "--output", &path("r.txt")]);
    assert!(std::fs::read_to_string(path("r.txt")).unwrap().starts_with("airlock report: session"));
    run(&[SESSION, "--format", "text", "--output", &path("forced.html")]);
    assert!(std::fs::read_to_string(path("forced.html")).unwrap().starts_with("airlock report: session"));

    let missing = log.report(&["no-such-session"]);
    assert_eq!(missing.status.code(), Some(2));
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.starts_with("airlock: ") && said.contains("no entries for session \"no-such-session\""), "{said}");
    let nowhere =
        Command::new(airlock()).args(["report", SESSION, "--dir"]).arg(log.root.join("nothing-here")).output().unwrap();
    assert_eq!(nowhere.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("there is no audit log at"));
}

// ---------------------------------------------------------------------------
// The page in a browser

fn chromium() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("chromium")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from("/usr/bin/chromium")]).find(|p| p.is_file())
}

/// Runs headless Chromium on `page` with a fresh profile; its standard
/// output goes to `stdout`. Killed after two minutes: a hung browser must
/// fail the test, not stall the suite.
fn run_chromium(bin: &Path, scratch: &Path, page: &Path, args: &[String], stdout: &Path) {
    let profile = tempfile::Builder::new().prefix("profile-").tempdir_in(scratch).unwrap();
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env("HOME", scratch)
        .env("XDG_CONFIG_HOME", scratch.join(".config"))
        .env("XDG_CACHE_HOME", scratch.join(".cache"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {args:?} failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish in 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Width and height from a PNG's IHDR chunk (the first, right after the signature).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 33, "{} bytes is not a PNG", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR", "the first chunk is not IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

/// Screenshots `page` at 1280×2000; returns the PNG's bytes.
fn screenshot(bin: &Path, scratch: &Path, page: &Path, png: &Path) -> Vec<u8> {
    let args = [format!("--screenshot={}", png.display()), "--window-size=1280,2000".into()];
    run_chromium(bin, scratch, page, &args, &scratch.join("screenshot.out"));
    std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()))
}

#[test]
fn the_page_renders_in_a_browser() {
    let Some(bin) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "CI must have chromium (.ci/run installs it)");
        // Straight to the terminal: libtest would hide a passing test's eprintln.
        let _ = writeln!(std::io::stderr(), "skipped: chromium not installed");
        return;
    };
    let log = Log::new();
    session(&log);
    log.append(SESSION, command(SCRIPT, 0));
    log.checkpoint();
    let scratch = log.root.join("browser");
    std::fs::create_dir_all(&scratch).unwrap();
    let page = scratch.join("report.html");
    let out = log.report(&[SESSION, "--output", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // What the browser made of it: the verdict and the numbers are in the
    // rendered document, and the hostile command stayed text.
    let dom_file = scratch.join("dom.html");
    run_chromium(&bin, &scratch, &page, &["--dump-dom".into()], &dom_file);
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    assert!(dom.contains("Log verifies"), "{dom}");
    for (label, value) in [("Model requests", "2"), ("Bytes out", "2.5 KiB"), ("Refused destinations", "2")] {
        let card = format!("<div class=\"label\">{label}</div><div class=\"value\">{value}</div>");
        assert!(dom.contains(&card), "{card} missing from the rendered page");
    }
    assert!(dom.contains("sh -c '&lt;script&gt;alert(1)&lt;/script&gt;'"), "{dom}");
    assert!(!dom.to_ascii_lowercase().contains("<script"), "a script element was rendered");

    let png = screenshot(&bin, &scratch, &page, &scratch.join("report.png"));
    assert_eq!(png_size(&png), (1280, 2000));
    // A blank page of the same size compresses to almost nothing; the
    // report's text, tables and colours do not.
    let empty = scratch.join("empty.html");
    std::fs::write(&empty, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body></body></html>").unwrap();
    let blank = screenshot(&bin, &scratch, &empty, &scratch.join("blank.png"));
    assert_eq!(png_size(&blank), (1280, 2000));
    assert!(
        png.len() > 3 * blank.len() && png.len() > blank.len() + 30_000,
        "the report's screenshot ({} bytes) is hardly bigger than a blank page's ({} bytes)",
        png.len(),
        blank.len()
    );
    if let Some(keep) = std::env::var_os("AIRLOCK_REPORT_SCREENSHOT") {
        std::fs::write(&keep, &png).unwrap();
    }
}
