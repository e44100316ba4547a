//! The command line's own behaviour: one error message and one exit status
//! per failure, and a reader that goes away (`airlock scan | head -1`) is
//! not an error.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{Verdict, airlock_bin};

/// A fresh home, configuration and workspace, so that no policy or log of
/// the person running the suite is read.
struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new().prefix("airlock-front-").tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for sub in ["home", "config", "ws"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        World { _dir: dir, root }
    }

    fn ws(&self) -> PathBuf {
        self.root.join("ws")
    }

    fn log(&self) -> String {
        self.root.join("log").display().to_string()
    }

    fn airlock(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(airlock_bin());
        cmd.args(args)
            .current_dir(self.ws())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.root.join("home"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_DATA_HOME", self.root.join("data"))
            .env("AIRLOCK_MANAGED_POLICY", self.root.join("managed.toml"))
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }
}

/// The write end of a pipe whose read end is already closed: every write to
/// it fails with EPIPE, at once and every time (no race with a reader).
fn reader_gone() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors, which are owned from here on.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just created and nothing else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

/// Exit 0, nothing said about the pipe, and no panic.
fn ended_quietly(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{what} into a closed pipe: {:?}\n{stderr}", out.status);
    for said in ["Broken pipe", "broken pipe", "panicked", "os error 32"] {
        assert!(!stderr.contains(said), "{what} into a closed pipe said {said:?}:\n{stderr}");
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An AWS-shaped key, different for each `n` (fake: no such key exists).
fn fake_key(n: u32) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut x = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let tail: String = (0..16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % 32) as usize] as char
        })
        .collect();
    format!("AKIA{tail}")
}

/// Files with this many findings print well over a pipe's largest default
/// buffer (1 MiB with pipe-max-size; 64 KiB usually), so that the scan is
/// still writing when its reader goes.
const FILES: u32 = 200;
const KEYS_PER_FILE: u32 = 100;

fn big_tree(root: &Path) {
    for f in 0..FILES {
        let mut text = String::new();
        for k in 0..KEYS_PER_FILE {
            text.push_str(&format!("aws_access_key_id = {}\n", fake_key(f * KEYS_PER_FILE + k)));
        }
        std::fs::write(root.join(format!("config-{f:03}.env")), text).unwrap();
    }
}

pub fn scan_into_a_pipe_closed_early_exits_0() -> Verdict {
    let world = World::new();
    big_tree(&world.ws());
    // Read in full, the findings are more than any pipe holds: the closing
    // below happens while airlock is still writing.
    let full = world.airlock(&["scan"]).stdout(Stdio::piped()).output().unwrap();
    assert_eq!(full.status.code(), Some(1), "{}", stderr(&full));
    assert!(full.stdout.len() > (1 << 20), "only {} bytes of findings", full.stdout.len());

    // `airlock scan | head -1`.
    let mut child = world.airlock(&["scan"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.contains("aws-access-key-id"), "{first}");
    let out = child.wait_with_output().unwrap();
    ended_quietly("airlock scan | head -1", &out);

    // A reader gone before the first line, in every format.
    for format in ["text", "json", "sarif"] {
        let out = world.airlock(&["scan", "--format", format]).stdout(reader_gone()).output().unwrap();
        ended_quietly(&format!("airlock scan --format {format}"), &out);
    }
    Verdict::Passed
}

pub fn audit_show_into_a_closed_pipe_exits_0() -> Verdict {
    let world = World::new();
    let log = world.log();
    for session in ["s1", "s2"] {
        let mut child = world
            .airlock(&["audit", "--dir", &log, "append", "--session", session])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(br#"{"kind":"external","source":"ci","data":{"ok":true}}"#).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for args in [&["show"][..], &["show", "--json"], &["key"], &["verify"], &["checkpoint"]] {
        let all: Vec<&str> = ["audit", "--dir", &log].iter().copied().chain(args.iter().copied()).collect();
        // Each prints something when its output is read.
        let shown = world.airlock(&all).stdout(Stdio::piped()).output().unwrap();
        assert!(shown.status.success() && !shown.stdout.is_empty(), "{all:?}: {}", stderr(&shown));
        let out = world.airlock(&all).stdout(reader_gone()).output().unwrap();
        ended_quietly(&format!("airlock {}", all.join(" ")), &out);
    }
    Verdict::Passed
}

pub fn policy_show_into_a_closed_pipe_exits_0() -> Verdict {
    let world = World::new();
    let shown = world.airlock(&["policy", "show"]).stdout(Stdio::piped()).output().unwrap();
    assert!(shown.status.success() && !shown.stdout.is_empty(), "{}", stderr(&shown));
    let out = world.airlock(&["policy", "show"]).stdout(reader_gone()).output().unwrap();
    ended_quietly("airlock policy show", &out);
    let file = world.root.join("ok.toml");
    std::fs::write(&file, "[limits]\ntimeout_secs = 30\n").unwrap();
    let out = world.airlock(&["policy", "check", &file.display().to_string()]).stdout(reader_gone()).output().unwrap();
    ended_quietly("airlock policy check", &out);
    Verdict::Passed
}

/// Exit 2, nothing on stdout, and exactly one line on stderr that starts
/// `airlock:`, with `expected` in it; returns stderr.
fn one_error(world: &World, args: &[&str], expected: &str) -> String {
    let out = world.airlock(args).stdout(Stdio::piped()).output().unwrap();
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "airlock {args:?}:\n{said}");
    assert!(out.stdout.is_empty(), "airlock {args:?} printed to stdout: {}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = said.lines().filter(|l| l.starts_with("airlock")).collect();
    assert_eq!(lines.len(), 1, "airlock {args:?} should say one airlock: line:\n{said}");
    assert!(lines[0].starts_with("airlock: "), "airlock {args:?}:\n{said}");
    assert!(said.contains(expected), "airlock {args:?} should say {expected:?}:\n{said}");
    said
}

pub fn an_error_is_one_airlock_line_and_exit_2() -> Verdict {
    let world = World::new();
    one_error(&world, &["scan", "no-such-folder"], "no-such-folder does not exist");
    // The hint comes after the message, on its own line.
    let empty = world.root.join("empty").display().to_string();
    let said = one_error(&world, &["audit", "--dir", &empty, "show"], "there is no audit log at");
    assert!(said.trim_end().lines().last().unwrap().starts_with("hint: "), "the hint is not last:\n{said}");
    one_error(&world, &["model", "--dir", &empty, "info", "no-such-model"], "no model named \"no-such-model\"");
    // A name chosen by whoever made the file reaches the terminal sanitised.
    let evil = world.ws().join("x\u{1b}]0;pwned\u{7}.toml");
    std::fs::write(&evil, "[sandbox\n").unwrap();
    let said = one_error(&world, &["policy", "check", &evil.display().to_string()], ".toml");
    assert!(!said.contains('\u{1b}') && !said.contains('\u{7}'), "an escape sequence reached stderr: {said:?}");
    // A wrong call to the sandbox is a usage error (2), not a refusal (125).
    one_error(&world, &["sandbox"], "no command given");
    Verdict::Passed
}

/// An error that carries its own status ends with it, through the same path:
/// a program that is not there is 127, as in a shell.
pub fn an_error_carrying_a_status_exits_with_it() -> Verdict {
    let world = World::new();
    let out = world
        .airlock(&["sandbox", "--unsafe-no-sandbox", "--", "./no-such-program"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(127), "{said}");
    let lines: Vec<&str> = said.lines().filter(|l| l.starts_with("airlock: cannot run")).collect();
    assert_eq!(lines.len(), 1, "{said}");
    assert!(lines[0].contains("./no-such-program"), "{said}");
    Verdict::Passed
}

pub fn clap_keeps_its_own_statuses() -> Verdict {
    let world = World::new();
    let out = world.airlock(&["--no-such-flag"]).stdout(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--no-such-flag"), "{}", stderr(&out));
    for flag in ["--help", "--version"] {
        let out = world.airlock(&[flag]).stdout(Stdio::piped()).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", stderr(&out));
        assert!(!out.stdout.is_empty(), "{flag} printed nothing");
    }
    Verdict::Passed
}
