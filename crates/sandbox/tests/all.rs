//! Library-level tests of `airlock_sandbox::run`. `run` must be called from a
//! single-threaded process, so this binary has its own `main` (no libtest
//! harness, which runs tests on threads) and runs each case in turn.
//!
//! The escape suite, which attacks the sandbox through the `airlock` binary,
//! lives in airlock-cli's tests; these cases check the library's contract:
//! statuses, capture, timeouts, refusals, cleanup, and that the caller is
//! left as it was.

// A test binary without libtest: clippy does not see it as test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_policy::{Context, Policy};
use airlock_sandbox::{SandboxError, SandboxSpec, Status, Stdio, run};

struct Case {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ws: PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let ws = root.join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        Case { _dir: dir, root, ws }
    }

    fn spec(&self) -> SandboxSpec {
        let cx = Context { home: self.root.join("home"), workspace: self.ws.clone() };
        let policy = Policy::defaults(&cx);
        let env = [("PATH".into(), "/usr/bin:/bin".into())];
        SandboxSpec::from_policy(&policy, &self.ws, &self.ws, env, &[]).unwrap()
    }
}

fn sh(script: &str) -> Vec<OsString> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

fn exited(status: Status) -> i32 {
    match status {
        Status::Exited(code) => code,
        other => panic!("ended by {other:?}"),
    }
}

fn exit_status_is_the_commands() {
    let case = Case::new();
    let out = run(&case.spec(), &sh("exit 7"), Stdio::Capture).unwrap();
    assert_eq!(exited(out.status), 7);
    let out = run(&case.spec(), &sh("kill -TERM $$"), Stdio::Capture).unwrap();
    assert_eq!(exited(out.status), 128 + libc::SIGTERM);
}

fn output_is_captured_and_truncation_is_marked() {
    let case = Case::new();
    let mut spec = case.spec();
    let out = run(&spec, &sh("echo out; echo err >&2"), Stdio::Capture).unwrap();
    assert_eq!(out.stdout.to_bytes_marked(), b"out\n");
    assert_eq!(out.stderr.to_bytes_marked(), b"err\n");
    spec.limits.output_bytes = 100;
    let out = run(&spec, &sh("head -c 100000 /dev/zero | tr '\\0' x; echo END"), Stdio::Capture).unwrap();
    let text = String::from_utf8(out.stdout.to_bytes_marked()).unwrap();
    assert!(out.stdout.truncated());
    // 100000 x, then "END\n": 100004 bytes, 100 kept.
    assert_eq!(out.stdout.dropped, 100_004 - 100);
    assert!(text.contains("[airlock: output truncated: 99904 bytes omitted]"), "{text}");
    assert!(text.ends_with("END\n"), "the tail is kept: {text}");
}

fn the_timeout_kills_the_whole_tree() {
    let case = Case::new();
    let mut spec = case.spec();
    spec.limits.timeout = Some(Duration::from_millis(500));
    // A grandchild in its own session keeps writing a heartbeat.
    let script = "setsid sh -c 'while :; do date +%s%N >> beat; sleep 0.05; done' & sleep 30";
    let start = Instant::now();
    let out = run(&spec, &sh(script), Stdio::Capture).unwrap();
    assert_eq!(out.status, Status::TimedOut);
    assert!(start.elapsed() < Duration::from_secs(10));
    let len = std::fs::metadata(case.ws.join("beat")).unwrap().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::metadata(case.ws.join("beat")).unwrap().len(), len, "the grandchild outlived the timeout");
}

fn a_daemon_dies_with_the_command() {
    let case = Case::new();
    let script = "setsid sh -c 'while :; do date +%s%N >> beat; sleep 0.05; done' & sleep 0.3";
    let out = run(&case.spec(), &sh(script), Stdio::Capture).unwrap();
    assert_eq!(exited(out.status), 0);
    let len = std::fs::metadata(case.ws.join("beat")).unwrap().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::metadata(case.ws.join("beat")).unwrap().len(), len, "the daemon outlived the command");
}

fn a_missing_program_is_an_exec_error() {
    let case = Case::new();
    let err = run(&case.spec(), &["no-such-program-anywhere".into()], Stdio::Capture).unwrap_err();
    assert!(matches!(err, SandboxError::Exec { .. }), "{err:?}");
    assert_eq!(err.exit_code(), airlock_sandbox::EXIT_NOT_FOUND);
}

fn writes_land_in_the_workspace_only() {
    let case = Case::new();
    let outside = case.root.join("outside");
    let host_tmp = std::env::temp_dir().join(format!("airlock-test-{}", std::process::id()));
    // The workspace sits under /tmp here, so its parent folder exists inside,
    // but on the private /tmp: writes there never reach the host.
    let script = format!(
        "echo in > inside; echo tmp > {}; echo out > {}; echo etc > /etc/airlock-test",
        host_tmp.display(),
        outside.display()
    );
    let out = run(&case.spec(), &sh(&script), Stdio::Capture).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr.to_bytes_marked()).into_owned();
    assert_ne!(exited(out.status), 0, "writing to /etc succeeded");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(std::fs::read_to_string(case.ws.join("inside")).unwrap(), "in\n");
    assert!(!outside.exists(), "a write next to the workspace reached the host");
    assert!(!host_tmp.exists(), "the sandbox's /tmp is the host's");
    assert!(!Path::new("/etc/airlock-test").exists());
}

fn placeholders_are_removed_after_the_run() {
    let case = Case::new();
    let out = run(&case.spec(), &sh("ls -a; test -d .claude && ! touch .claude/x"), Stdio::Capture).unwrap();
    assert_eq!(exited(out.status), 0, "{}", String::from_utf8_lossy(&out.stderr.to_bytes_marked()));
    let listing = String::from_utf8(out.stdout.to_bytes_marked()).unwrap();
    assert!(listing.contains(".claude") && listing.contains(".envrc"), "{listing}");
    let left: Vec<_> = std::fs::read_dir(&case.ws).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "placeholders left behind: {left:?}");
}

fn a_placeholder_that_was_filled_is_kept() {
    // A protected path created on the host during the run (by the user, not
    // the sandbox) must survive the cleanup.
    let case = Case::new();
    let ws = case.ws.clone();
    let script = "sleep 0.5";
    let writer = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("sleep 0.2; echo user > {}/.envrc", ws.display()))
        .spawn()
        .unwrap();
    // The writer is a separate process, so this one stays single-threaded.
    let out = run(&case.spec(), &sh(script), Stdio::Capture).unwrap();
    assert_eq!(exited(out.status), 0);
    let mut writer = writer;
    writer.wait().unwrap();
    assert_eq!(std::fs::read_to_string(ws.join(".envrc")).unwrap(), "user\n");
}

fn a_simulated_missing_layer_refuses_and_runs_nothing() {
    let case = Case::new();
    for layer in ["landlock", "landlock-abi5", "seccomp", "userns"] {
        // SAFETY: this process is single-threaded.
        unsafe { std::env::set_var(airlock_sandbox::kernel::SIMULATE_MISSING_ENV, layer) };
        let err = run(&case.spec(), &sh("echo ran > marker"), Stdio::Capture).unwrap_err();
        // SAFETY: as above.
        unsafe { std::env::remove_var(airlock_sandbox::kernel::SIMULATE_MISSING_ENV) };
        assert!(matches!(err, SandboxError::Unavailable(_)), "{layer}: {err:?}");
        assert_eq!(err.exit_code(), airlock_sandbox::EXIT_REFUSED);
        assert!(err.to_string().contains("hint:"), "{err}");
        assert!(!case.ws.join("marker").exists(), "{layer}: the command ran");
    }
}

fn a_signal_to_the_caller_kills_the_tree_and_cleans_up() {
    let case = Case::new();
    // Another process sends SIGTERM to this one while the command runs.
    let me = std::process::id();
    let mut sender =
        std::process::Command::new("/bin/sh").arg("-c").arg(format!("sleep 0.5; kill -TERM {me}")).spawn().unwrap();
    let start = Instant::now();
    let script = "setsid sh -c 'while :; do date +%s%N >> beat; sleep 0.05; done' & sleep 30";
    let out = run(&case.spec(), &sh(script), Stdio::Capture).unwrap();
    sender.wait().unwrap();
    assert_eq!(out.status, Status::Interrupted(libc::SIGTERM));
    assert!(start.elapsed() < Duration::from_secs(10));
    let len = std::fs::metadata(case.ws.join("beat")).unwrap().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::metadata(case.ws.join("beat")).unwrap().len(), len, "the tree outlived the signal");
    let left: Vec<_> = std::fs::read_dir(&case.ws).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["beat"], "placeholders left behind");
}

/// Regression: the caller once unshared its own namespaces, so a second
/// run, or any new thread, failed afterwards.
fn the_caller_is_unchanged_by_a_run() {
    let case = Case::new();
    let before = std::fs::read_link("/proc/self/ns/user").unwrap();
    for _ in 0..3 {
        let out = run(&case.spec(), &sh("true"), Stdio::Capture).unwrap();
        assert_eq!(exited(out.status), 0);
    }
    assert_eq!(std::fs::read_link("/proc/self/ns/user").unwrap(), before);
    std::thread::spawn(|| ()).join().unwrap();
    let out = run(&case.spec(), &sh("true"), Stdio::Capture).unwrap();
    assert_eq!(exited(out.status), 0);
}

fn a_multithreaded_caller_is_refused() {
    let case = Case::new();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || rx.recv());
    let err = run(&case.spec(), &sh("true"), Stdio::Capture).unwrap_err();
    drop(tx);
    thread.join().unwrap().ok();
    assert!(err.to_string().contains("single-threaded"), "{err}");
}

/// Offline mode: after `forbid_network`, neither this process nor a program
/// it starts can open an inet socket, while Unix sockets and a sandbox
/// still work. Runs in a forked child, so the test process stays unfiltered.
fn forbid_network_covers_the_process_and_its_children() {
    // A listener the child could reach without the filter (the backlog accepts).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bare = std::process::Command::new("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port} 2>/dev/null; echo $?")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&bare.stdout).trim(), "0", "without the filter the connection works");
    // SAFETY: the test process is single-threaded here; the child only makes
    // system calls and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = std::panic::catch_unwind(|| {
            airlock_sandbox::seccomp::forbid_network().ok()?;
            // SAFETY: plain socket calls.
            let inet = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
            let errno = std::io::Error::last_os_error().raw_os_error();
            if inet >= 0 || errno != Some(libc::EAFNOSUPPORT) {
                return Some(10);
            }
            // SAFETY: as above.
            let unix = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
            if unix < 0 {
                return Some(11);
            }
            // A program started after it is covered too.
            let child = std::process::Command::new("bash")
                .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port} 2>/dev/null; echo $?")])
                .output()
                .ok()?;
            let shell = String::from_utf8_lossy(&child.stdout).trim().to_string();
            if shell == "0" {
                return Some(12);
            }
            // The sandbox is still built under it.
            let case = Case::new();
            let outcome = run(&case.spec(), &sh("exit 7"), Stdio::Capture).ok()?;
            if exited(outcome.status) != 7 {
                return Some(13);
            }
            Some(0)
        })
        .ok()
        .flatten()
        .unwrap_or(14);
        // SAFETY: leaves the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "status {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "10: inet socket opened, 11: unix socket refused, 12: a child connected, 13: the sandbox failed, 14: setup failed"
    );
}

/// The command holds no descriptor but its standard streams: nothing the
/// caller or init opened (the cgroups' `tasks` files init joins through,
/// the status pipe) reaches it. As root it runs in the run's own pids
/// cgroup, joined before it started.
fn the_command_holds_only_its_stdio_and_runs_in_its_cgroups() {
    let case = Case::new();
    let out = run(&case.spec(), &sh("ls /proc/$$/fd; cat /proc/self/cgroup"), Stdio::Capture).unwrap();
    assert_eq!(exited(out.status), 0, "{}", String::from_utf8_lossy(&out.stderr.to_bytes_marked()));
    let text = String::from_utf8(out.stdout.to_bytes_marked()).unwrap();
    let mut lines = text.lines();
    let fds: Vec<&str> = lines.by_ref().take_while(|l| !l.contains(':')).collect();
    assert_eq!(fds, ["0", "1", "2"], "{text}");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // cgroup v1 names the controller (`N:pids:/airlock-PID`); v2 has one line for all.
        let own = format!("/airlock-{}", std::process::id());
        let v1_pids = text.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "pids")));
        let v2 = text.lines().find(|l| l.starts_with("0::"));
        let line = v1_pids.or(v2).unwrap_or_default();
        assert!(line.ends_with(&own), "not in the run's cgroup {own}: {text}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases: &[(&str, fn())] = &[
        ("exit_status_is_the_commands", exit_status_is_the_commands),
        ("output_is_captured_and_truncation_is_marked", output_is_captured_and_truncation_is_marked),
        ("the_timeout_kills_the_whole_tree", the_timeout_kills_the_whole_tree),
        ("a_daemon_dies_with_the_command", a_daemon_dies_with_the_command),
        ("a_missing_program_is_an_exec_error", a_missing_program_is_an_exec_error),
        ("writes_land_in_the_workspace_only", writes_land_in_the_workspace_only),
        ("placeholders_are_removed_after_the_run", placeholders_are_removed_after_the_run),
        ("a_placeholder_that_was_filled_is_kept", a_placeholder_that_was_filled_is_kept),
        ("a_simulated_missing_layer_refuses_and_runs_nothing", a_simulated_missing_layer_refuses_and_runs_nothing),
        ("the_caller_is_unchanged_by_a_run", the_caller_is_unchanged_by_a_run),
        ("a_signal_to_the_caller_kills_the_tree_and_cleans_up", a_signal_to_the_caller_kills_the_tree_and_cleans_up),
        ("forbid_network_covers_the_process_and_its_children", forbid_network_covers_the_process_and_its_children),
        (
            "the_command_holds_only_its_stdio_and_runs_in_its_cgroups",
            the_command_holds_only_its_stdio_and_runs_in_its_cgroups,
        ),
        // Last: it starts a thread (joined before it returns).
        ("a_multithreaded_caller_is_refused", a_multithreaded_caller_is_refused),
    ];
    // SAFETY: geteuid has no preconditions.
    let who = if unsafe { libc::geteuid() } == 0 { "root" } else { "an unprivileged user" };
    airlock_test_support::run_cases(&args, cases, &format!(" (as {who})"))
}
