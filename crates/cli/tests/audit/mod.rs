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
    let empty = log.run(&["export", "--out", log.dir.join("x").to_str().unwrap()], None);
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no signed checkpoint yet"));
    log.ok(&["checkpoint"], None);
    log.append("s3", COMMAND);
    let out = log.dir.join("export");
    let exported = log.run(&["export", "--out", out.to_str().unwrap()], None);
    assert!(exported.status.success());
    assert!(String::from_utf8_lossy(&exported.stdout).starts_with("exported 3 entries, 1 checkpoints"));
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
