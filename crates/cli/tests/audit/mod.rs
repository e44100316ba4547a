//! `airlock audit` end to end through the binary: append, show, verify,
//! export (checked by the independent verifier), and a tampered log named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{Verdict, airlock_bin};

struct Log {
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Log {
    fn new() -> Log {
        let dir = tempfile::Builder::new().prefix("airlock-audit-").tempdir().unwrap();
        let path = dir.path().join("log");
        Log { _dir: dir, dir: path }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new(airlock_bin())
            .arg("audit")
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(out.status.success(), "airlock audit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn append(&self, session: &str, event: &str) -> u64 {
        self.ok(&["append", "--session", session], Some(event)).trim().parse().unwrap()
    }
}

const COMMAND: &str = r#"{"kind":"command","argv":["cargo","test"],"cwd":"/w","sandbox_digest":"00",
    "exit_status":0,"duration_ms":12,"output_digest":"11","output_bytes":5}"#;
const TOOL: &str = r#"{"kind":"tool_call","name":"edit_file","argument_digest":"ab","decision":"deny",
    "decided_by":"rule:no-edit-ci"}"#;
const EXTERNAL: &str = r#"{"kind":"external","source":"ci","data":{"job":"deploy","ok":true}}"#;

fn filled() -> Log {
    let log = Log::new();
    assert_eq!(log.append("s1", COMMAND), 0);
    assert_eq!(log.append("s2", TOOL), 1);
    assert_eq!(log.append("s1", EXTERNAL), 2);
    log
}

pub fn audit_show_filters_by_session_kind_and_time() -> Verdict {
    let log = filled();
    let table = log.ok(&["show"], None);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].contains("INDEX") && lines[0].contains("KIND"), "{table}");
    assert!(lines[1].contains("cargo test -> exit 0 in 12 ms"), "{table}");
    assert!(lines[2].contains("edit_file deny (by rule:no-edit-ci)"), "{table}");

    let json = log.ok(&["show", "--json", "--session", "s1"], None);
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.iter().map(|r| r["index"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(rows[1]["payload"]["data"]["job"], "deploy");
    assert!(rows[0]["time"].as_str().unwrap().ends_with('Z'));

    let tools = log.ok(&["show", "--json", "--kind", "tool_call"], None);
    assert_eq!(tools.lines().count(), 1, "{tools}");
    let last = log.ok(&["show", "--json", "--last", "1"], None);
    assert!(last.lines().count() == 1 && last.contains("\"index\":2"), "{last}");
    assert_eq!(log.ok(&["show", "--json", "--since", "1h"], None).lines().count(), 3);
    assert_eq!(log.ok(&["show", "--json", "--until", "1h"], None).lines().count(), 0);
    let bad = log.run(&["show", "--since", "yesterday"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a time"));
    Verdict::Passed
}

pub fn audit_verify_names_an_edited_payload() -> Verdict {
    let log = filled();
    log.ok(&["checkpoint"], None);
    assert!(log.ok(&["verify"], None).starts_with("ok: 3 entries"));
    let db = rusqlite::Connection::open(log.dir.join("audit.db")).unwrap();
    db.execute("UPDATE payloads SET payload = replace(payload, 'deny', 'allow') WHERE idx = 1", []).unwrap();
    let out = log.run(&["verify"], None);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("the payload of entry 1 was edited"), "{said}");
    // `show` reads what is there (it checks nothing), and still lists it.
    assert!(log.ok(&["show", "--kind", "tool_call"], None).contains("edit_file allow"));
    Verdict::Passed
}

pub fn audit_export_verifies_without_airlock() -> Verdict {
    let log = filled();
    // Each `audit append` signed its entry; a session's writer signs on a
    // timer, so its newest entry may be unsigned yet, and is left out.
    log.session_writer().append("s3", &[serde_json::from_str(COMMAND).unwrap()]).unwrap();
    // `verify` says so: a warning, or a failure when signing is required.
    let warned = log.run(&["verify"], None);
    assert!(warned.status.success(), "{}", stdout(&warned));
    assert!(stderr(&warned).contains("the newest 1 entries are after the latest checkpoint"), "{}", stderr(&warned));
    assert_eq!(log.run(&["verify", "--require-signed"], None).status.code(), Some(1));
    let out = log.dir.join("export");
    let exported = log.run(&["export", "--out", out.to_str().unwrap()], None);
    assert!(exported.status.success());
    // Checkpoints at sizes 1, 2, 3 (the appends) and 3 again (`session_writer` signed the log as it found it).
    assert!(
        String::from_utf8_lossy(&exported.stdout).starts_with("exported 3 entries, 3 checkpoints"),
        "{}",
        stdout(&exported)
    );
    assert!(String::from_utf8_lossy(&exported.stderr).contains("1 newer entries are not in a checkpoint"));
    assert!(out.join("tile/0/000.p/3").is_file() && out.join("tile/entries/000.p/3").is_file());
    let again = log.run(&["export", "--out", out.to_str().unwrap()], None);
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));

    let key = log.ok(&["key"], None);
    match independent_verify(&out, key.trim()) {
        Some((true, said)) => assert!(said.starts_with("ok: 3 entries"), "{said}"),
        Some((false, said)) => panic!("the independent verifier rejected the export: {said}"),
        None => return Verdict::SandboxOnly("python3 with `cryptography` is not installed".into()),
    }
    Verdict::Passed
}

fn independent_verify(out: &Path, key: &str) -> Option<(bool, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/audit-verify-export");
    // A copy of this suite run as another user may not see the checkout.
    std::fs::File::open(&script).ok()?;
    let output = Command::new("python3").arg(script).arg(out).arg(key).output().ok()?;
    if output.status.code() == Some(2) {
        assert!(std::env::var_os("CI").is_none(), "CI must have python3 and `cryptography`");
        return None;
    }
    Some((output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned()))
}

pub fn audit_prove_refuses_a_damaged_tree() -> Verdict {
    let log = filled();
    log.ok(&["checkpoint"], None);
    let proof: serde_json::Value = serde_json::from_str(&log.ok(&["prove", "1"], None)).unwrap();
    assert_eq!(proof["size"], 3);
    assert_eq!(proof["proof"].as_array().unwrap().len(), 2);
    log.append("s1", COMMAND);
    log.ok(&["checkpoint"], None);
    assert!(log.ok(&["consistency", "3", "4"], None).contains("\"proof\""));
    // The stored nodes are not covered by the entries' hashes: damage one.
    let db = rusqlite::Connection::open(log.dir.join("audit.db")).unwrap();
    db.execute("UPDATE nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 0", []).unwrap();
    let out = log.run(&["prove", "1"], None);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("does not prove entry 1 in the tree signed at size 4"), "{said}");
    assert!(out.stdout.is_empty(), "a failed proof was printed");
    db.execute("UPDATE nodes SET hash = zeroblob(32) WHERE level = 1 AND idx = 0", []).unwrap();
    let out = log.run(&["consistency", "3", "4"], None);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    Verdict::Passed
}

// ---------------------------------------------------------------------------
// Issue 14, class 8: the log cannot be reshaped. Each case first shows what
// the old airlock saw (the attack passed `verify`), then that it fails now.

impl Log {
    fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.join("audit.db")).unwrap()
    }

    /// `verify` as an airlock without the kept checkpoint saw it: the file
    /// moved aside for the call.
    fn verify_without_kept(&self) -> Output {
        let kept = self.dir.join("audit-latest-checkpoint");
        let aside = self.dir.join("kept-aside");
        std::fs::rename(&kept, &aside).unwrap();
        let out = self.run(&["verify"], None);
        std::fs::rename(&aside, &kept).unwrap();
        out
    }

    /// airlock's own writer for a session, as `exec` and `wrap` open it
    /// (the keys and origin of this log, read from its files).
    fn session_writer(&self) -> airlock_audit::log::AuditLog<airlock_audit::store::SqliteStore> {
        use airlock_audit::store::{Durability, SqliteStore};
        self.ok(&["checkpoint"], None);
        let key = std::fs::read_to_string(self.dir.join("audit-signing-key")).unwrap();
        let signer = airlock_audit::note::Signer::from_key_string(key.trim()).unwrap();
        let mac: [u8; 32] = std::fs::read(self.dir.join("audit-mac-key")).unwrap().try_into().unwrap();
        let note = std::fs::read_to_string(self.dir.join("audit-latest-checkpoint")).unwrap();
        let origin = note.lines().next().unwrap().to_string();
        let store = SqliteStore::open(&self.dir.join("audit.db"), Durability::Durable).unwrap();
        let log = airlock_audit::log::AuditLog::open(store, signer, &origin, mac, Default::default()).unwrap();
        log.keep_latest(airlock_audit::latest::LatestCheckpoint::at(self.dir.join("audit-latest-checkpoint"))).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn audit_verify_names_a_deleted_payload() -> Verdict {
    let log = filled();
    log.sql().execute("DELETE FROM payloads WHERE idx = 1", []).unwrap();
    let out = log.run(&["verify"], None);
    assert_eq!(out.status.code(), Some(1), "a deleted payload passed: {}", stdout(&out));
    assert!(stdout(&out).contains("the payload of entry 1 is missing: it was deleted, not pruned"), "{}", stdout(&out));
    // The report shows the event as missing instead of dropping it.
    let report =
        Command::new(airlock_bin()).args(["report", "s2", "--format", "json", "--dir"]).arg(&log.dir).output().unwrap();
    assert_eq!(report.status.code(), Some(1), "{}", stderr(&report));
    let j: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(j["integrity"]["problem_entry"], 1, "{j}");
    assert_eq!(j["unreadable"][0]["index"], 1, "{j}");
    assert!(j["unreadable"][0]["problem"].as_str().unwrap().contains("missing"), "{j}");
    Verdict::Passed
}

pub fn audit_prune_leaves_a_signed_watermark() -> Verdict {
    let log = filled();
    // The old prune: payload rows deleted, nothing signed. It passed `verify`.
    let bare = filled();
    bare.sql().execute("DELETE FROM payloads", []).unwrap();
    let out = bare.run(&["verify"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("entry 0 is missing") && stdout(&out).contains("hint:"), "{}", stdout(&out));

    let said = log.ok(&["prune", "--before", "2999-01-01"], None);
    assert!(said.contains("pruned 3 payloads") && said.contains("entries below 3"), "{said}");
    let verified = log.ok(&["verify"], None);
    assert!(verified.contains("pruned (signed): the payloads of entries 0 to 2"), "{verified}");
    // The watermark is a checkpoint extension line: C2SP clients still verify the log.
    let out = log.dir.join("export");
    log.ok(&["export", "--out", out.to_str().unwrap()], None);
    let key = log.ok(&["key"], None);
    if let Some((ok, said)) = independent_verify(&out, key.trim()) {
        assert!(ok, "the independent verifier rejected a pruned log: {said}");
    }
    assert_eq!(log.append("s1", COMMAND), 3);
    log.sql().execute("DELETE FROM payloads WHERE idx = 3", []).unwrap();
    let out = log.run(&["verify"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("the payload of entry 3 is missing"), "{}", stdout(&out));
    assert!(stdout(&out).contains("signed prunes cover only entries below 3"), "{}", stdout(&out));
    Verdict::Passed
}

pub fn audit_append_cannot_add_to_a_finished_session() -> Verdict {
    use airlock_audit::event::Event;
    let log = Log::new();
    {
        let mut writer = log.session_writer();
        writer.append("done", &[Event::SessionEnd { reason: "completed".into() }]).unwrap();
    }
    let out = log.run(&["append", "--session", "done"], Some(COMMAND));
    assert_eq!(out.status.code(), Some(2), "an event was filed under a finished session");
    assert!(stderr(&out).contains("session \"done\" ended at entry 0"), "{}", stderr(&out));
    let start = r#"{"kind":"session_start","policy_digest":"p","model_endpoint":"m","airlock_version":"v",
        "user":"u","host":"h","workspace":"/w"}"#;
    for lifecycle in [r#"{"kind":"session_end","reason":"forged"}"#, start] {
        let out = log.run(&["append", "--session", "other"], Some(lifecycle));
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("only by airlock's own session writer"), "{}", stderr(&out));
    }
    // Filed under a live session, an external record is marked in the
    // entry its leaf covers, and the report does not count it as the session's.
    {
        let mut writer = log.session_writer();
        writer.append("live", &[Event::PolicyViolation { rule: "r".into(), detail: "d".into() }]).unwrap();
    }
    let index = log.append("live", COMMAND);
    let entry: Vec<u8> =
        log.sql().query_row("SELECT entry FROM entries WHERE idx = ?1", [index as i64], |r| r.get(0)).unwrap();
    assert!(String::from_utf8(entry).unwrap().contains("\"source\":\"external\""));
    let report = Command::new(airlock_bin())
        .args(["report", "live", "--format", "json", "--dir"])
        .arg(&log.dir)
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(j["integrity"]["verifies"], true, "{j}");
    assert_eq!(j["external_events"], 1, "{j}");
    assert_eq!(j["commands"].as_array().unwrap().len(), 0, "an external record was counted as the session's: {j}");
    assert_eq!(j["policy_violations"].as_array().unwrap().len(), 1, "{j}");
    // The store's session column is not covered by any hash: moving the
    // session's event out of it (the old report followed the column, and
    // lost the event) changes nothing the report shows.
    log.sql().execute("UPDATE entries SET session = 'elsewhere' WHERE session = 'live'", []).unwrap();
    let report = Command::new(airlock_bin())
        .args(["report", "live", "--format", "json", "--dir"])
        .arg(&log.dir)
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(j["policy_violations"].as_array().unwrap().len(), 1, "an event moved out of its session: {j}");
    assert_eq!(j["external_events"], 1, "{j}");
    Verdict::Passed
}

pub fn audit_append_is_signed_before_it_returns() -> Verdict {
    let log = filled();
    // Each append signed its own entry: nothing is left unsigned.
    let ok = log.run(&["verify"], None);
    assert!(stdout(&ok).starts_with("ok: 3 entries") && stdout(&ok).contains("0 entries not yet"), "{}", stdout(&ok));
    assert!(!stderr(&ok).contains("warning"), "{}", stderr(&ok));
    // Delete the newest entry and every trace of it in the database.
    let sql = log.sql();
    sql.execute("DELETE FROM entries WHERE idx = 2", []).unwrap();
    sql.execute("DELETE FROM payloads WHERE idx = 2", []).unwrap();
    sql.execute("DELETE FROM nodes WHERE level = 0 AND idx = 2", []).unwrap();
    sql.execute("DELETE FROM checkpoints WHERE size = 3", []).unwrap();
    // What the old airlock saw: a consistent log of 2.
    let bare = log.verify_without_kept();
    assert!(bare.status.success(), "{}", stdout(&bare));
    assert!(stderr(&bare).contains("no checkpoint is kept outside the database"), "{}", stderr(&bare));
    let out = log.run(&["verify"], None);
    assert_eq!(out.status.code(), Some(1), "deleting the newest entry passed: {}", stdout(&out));
    assert!(stdout(&out).contains("signs 3 entries, the database holds 2"), "{}", stdout(&out));
    assert!(stdout(&out).contains("audit-latest-checkpoint"), "{}", stdout(&out));
    Verdict::Passed
}

pub fn audit_verify_catches_a_rolled_back_database() -> Verdict {
    let log = filled();
    let old = log.dir.join("old.db");
    log.sql().execute("VACUUM INTO ?1", [old.to_str().unwrap()]).unwrap();
    log.append("s1", COMMAND);
    log.append("s1", TOOL);
    for side in ["audit.db-wal", "audit.db-shm"] {
        let _ = std::fs::remove_file(log.dir.join(side));
    }
    std::fs::rename(&old, log.dir.join("audit.db")).unwrap();
    let bare = log.verify_without_kept();
    assert!(bare.status.success(), "the premise: alone, the old copy verifies: {}", stdout(&bare));
    let out = log.run(&["verify"], None);
    assert_eq!(out.status.code(), Some(1), "a rolled-back database passed: {}", stdout(&out));
    assert!(stdout(&out).contains("rolled back or replaced"), "{}", stdout(&out));
    assert!(stdout(&out).contains("signs 5 entries, the database holds 3"), "{}", stdout(&out));
    // Nothing is appended to it: a checkpoint of it would overwrite the evidence.
    let refused = log.run(&["append"], Some(EXTERNAL));
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("signs 5 entries, the database holds 3"), "{}", stderr(&refused));
    Verdict::Passed
}

pub fn audit_files_are_private() -> Verdict {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    let log = Log::new();
    // A folder an older airlock left open, with a database readable by all.
    std::fs::create_dir_all(&log.dir).unwrap();
    std::fs::set_permissions(&log.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = log.dir.join("audit.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    log.append("s", COMMAND);
    assert_eq!(mode(&log.dir), 0o700);
    for f in ["audit.db", "audit-signing-key", "audit-mac-key", "audit-latest-checkpoint"] {
        assert_eq!(mode(&log.dir.join(f)), 0o600, "{f}");
    }
    // A fresh folder, under a permissive umask: created private.
    let fresh = Log::new();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("umask 000 && exec \"$0\" audit --dir \"$1\" append").arg(airlock_bin()).arg(&fresh.dir);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(EXTERNAL.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&fresh.dir), 0o700);
    assert_eq!(mode(&fresh.dir.join("audit.db")), 0o600);
    // A link planted in place of the database is refused; its target is untouched.
    let linked = Log::new();
    std::fs::create_dir_all(&linked.dir).unwrap();
    let victim = linked.dir.parent().unwrap().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, linked.dir.join("audit.db")).unwrap();
    let out = linked.run(&["append"], Some(EXTERNAL));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    Verdict::Passed
}
