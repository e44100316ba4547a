//! `airlock scan` through the binary: exit codes, .gitignore, formats (SARIF
//! checked by Microsoft's SARIF validator when present), and that no secret
//! is ever printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{Verdict, airlock_bin};

/// Fake, shaped like a GitHub token (the checksum is computed below).
fn github_token() -> String {
    // 30 characters, then the base62 CRC32 of them, as GitHub issues tokens.
    let body = "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1";
    let crc = crc32(body.as_bytes());
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc as u64;
    let mut tail = Vec::new();
    while n > 0 {
        tail.push(alphabet[(n % 62) as usize]);
        n /= 62;
    }
    while tail.len() < 6 {
        tail.push(b'0');
    }
    tail.reverse();
    format!("ghp_{body}{}", String::from_utf8(tail).unwrap())
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

const DB_PASSWORD: &str = "Zq8#vLx2!pW9rT4m";

struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::Builder::new().prefix("airlock-scan-").tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() { println!(\"hello\"); }\n").unwrap();
    std::fs::write(root.join(".env"), format!("DATABASE_URL=postgres://app:{DB_PASSWORD}@db:5432/app\n")).unwrap();
    std::fs::write(root.join("build/out.log"), format!("token={}\n", github_token())).unwrap();
    std::fs::write(root.join(".gitignore"), "build/\n").unwrap();
    // .gitignore applies inside a git repository, as in git itself.
    std::fs::create_dir_all(root.join(".git")).unwrap();
    Tree { _dir: dir, root }
}

fn scan(dir: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(airlock_bin())
        .arg("scan")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn never_printed(out: &Output) {
    for secret in [github_token(), DB_PASSWORD.to_string()] {
        for stream in [&out.stdout, &out.stderr] {
            assert!(!String::from_utf8_lossy(stream).contains(&secret), "a secret was printed");
        }
    }
}

pub fn scan_exit_codes_follow_what_was_found() -> Verdict {
    let t = tree();
    std::fs::remove_file(t.root.join(".env")).unwrap();
    let clean = scan(&t.root, &[], "");
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
    std::fs::write(t.root.join(".env"), format!("DATABASE_URL=postgres://app:{DB_PASSWORD}@db:5432/app\n")).unwrap();
    let found = scan(&t.root, &[], "");
    assert_eq!(found.status.code(), Some(1));
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(text.starts_with(".env:1:"), "{text}");
    assert!(!text.contains("build/out.log"), "a .gitignored file was scanned: {text}");
    never_printed(&found);
    let all = scan(&t.root, &["--no-ignore", "--format", "json"], "");
    assert_eq!(all.status.code(), Some(1));
    let records: Vec<serde_json::Value> = serde_json::from_slice(&all.stdout).unwrap();
    let rules: Vec<&str> = records.iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"github-pat") && rules.contains(&"database-url"), "{rules:?}");
    let gh = records.iter().find(|r| r["rule"] == "github-pat").unwrap();
    assert_eq!(gh["path"], "build/out.log");
    assert_eq!(gh["length"], 40);
    assert_eq!((gh["line"].as_u64(), gh["column"].as_u64()), (Some(1), Some(7)));
    never_printed(&all);

    let piped = scan(&t.root, &["--stdin"], &format!("echo {}\n", github_token()));
    assert_eq!(piped.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&piped.stdout).starts_with("<stdin>:1:6: github-pat"));
    let missing = scan(&t.root, &["no-such-dir"], "");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-dir does not exist"));
    Verdict::Passed
}

pub fn scan_reports_an_unreadable_file_as_an_incomplete_scan() -> Verdict {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        return Verdict::Skipped("root reads files whatever their mode".into());
    }
    let t = tree();
    let secret = t.root.join("src/private.txt");
    std::fs::write(&secret, "nothing\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = scan(&t.root, &[], "");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("src/private.txt") && said.contains("incomplete"), "{said}");
    Verdict::Passed
}

pub fn scan_sarif_is_valid_sarif_2_1_0() -> Verdict {
    let t = tree();
    let out = scan(&t.root, &["--no-ignore", "--format", "sarif"], "");
    assert_eq!(out.status.code(), Some(1));
    never_printed(&out);
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let rules = log["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
    }
    // Microsoft's SARIF validator (the Sarif.Multitool that .ci/run fetches), with the official schema.
    let Some(tool) = std::env::var_os("AIRLOCK_SARIF_MULTITOOL").map(PathBuf::from).filter(|p| p.is_file()) else {
        assert!(std::env::var_os("CI").is_none(), "CI must set AIRLOCK_SARIF_MULTITOOL");
        return Verdict::SandboxOnly("the SARIF validator is not installed (AIRLOCK_SARIF_MULTITOOL)".into());
    };
    let file = t.root.join("scan.sarif");
    std::fs::write(&file, &out.stdout).unwrap();
    let schema = tool.parent().unwrap().join("sarif-2.1.0.json");
    let checked = Command::new(&tool).arg("validate").arg(&file).arg("-j").arg(&schema).output().unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "the validator failed: {said}");
    assert!(said.contains("1 files scanned"), "{said}");
    let errors: Vec<&str> = said.lines().filter(|l| l.contains(": error ")).collect();
    assert!(errors.is_empty(), "SARIF validation errors:\n{}", errors.join("\n"));
    // The same validator must reject a broken log, or it proves nothing.
    std::fs::write(&file, String::from_utf8_lossy(&out.stdout).replace("\"ruleId\"", "\"ruleID\"")).unwrap();
    let broken = Command::new(&tool).arg("validate").arg(&file).arg("-j").arg(&schema).output().unwrap();
    assert!(String::from_utf8_lossy(&broken.stdout).contains(": error "), "the validator accepted a broken log");
    Verdict::Passed
}
